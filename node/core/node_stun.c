/* node_stun.c — the node's STUN Bindings (cfg.stun; core/stun_client.h, docs/nat.md).
 *
 * After start the node asks each configured server for a Binding over TCP from its listening
 * address (the env's connect_from), so that the XOR-MAPPED-ADDRESS is the NAT's mapping of
 * the port peers would dial. When connect_from is refused at once (an env without it, the
 * port not shareable) the request leaves from any port: the mapped IP is still the NAT's.
 *
 * An answer is one observer's claim in the reachability state (core/reach.h), under an id
 * naming the server's slot: with min_agree 2 a STUN server alone never makes an address
 * believed, and a believed address enters our record only after dial-back (node_reach.c).
 * The answer is refreshed every NS_REFRESH (the claims live 30 min); a failure is logged
 * with its name and retried after a backoff, NS_RETRY_MIN doubling to NS_REFRESH. At most
 * one transaction per server at a time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/node_impl.h"
#include "core/stun_client.h"

#define NS_REFRESH (10ULL * 60 * MESH_NS_PER_S)
#define NS_RETRY_MIN (30ULL * MESH_NS_PER_S)
#define NS_TIMEOUT (15ULL * MESH_NS_PER_S)

typedef struct ns_server {
    struct node_stun *ns;
    mesh_addr addr;
    int busy;
    mesh_time next_at, backoff;
    mesh_addr mapped; /* the last answer (family NONE: none) */
} ns_server;

struct node_stun {
    mesh_node *n;
    mesh_stun_client *c;
    mesh_timer *timer;
    size_t count;
    ns_server srv[MESH_NODE_MAX_STUN];
};

static void schedule(node_stun *ns);

/* The claim's observer id: "stun#" and the slot, never a node key's first 8 bytes in
 * practice (those are random). */
static void server_id(size_t i, uint8_t id[MESH_REACH_ID_LEN])
{
    memset(id, 0, MESH_REACH_ID_LEN);
    memcpy(id, "stun#", 5);
    id[5] = (uint8_t)('0' + i);
}

static void answered(mesh_node *n, ns_server *s, size_t i, const mesh_stun_result *r)
{
    char srv[MESH_ADDR_STRLEN], m[MESH_ADDR_STRLEN];
    mesh_addr_format(&s->addr, srv, sizeof srv);
    mesh_addr_format(&r->mapped, m, sizeof m);
    n->st.stun_answers++;
    n->st.stun_error = MESH_OK;
    n->st.stun_mapped = r->mapped;
    s->backoff = NS_RETRY_MIN;
    s->next_at = mesh_env_now(&n->env) + NS_REFRESH;
    if (!mesh_addr_equal(&s->mapped, &r->mapped)) {
        mesh_log(&n->env, MESH_LOG_INFO, "node: stun %s: mapped %s", srv, m);
        s->mapped = r->mapped;
        mesh_node_notify(n, NOTE_REACH, NULL, 0, MESH_OK);
    } else {
        mesh_log(&n->env, MESH_LOG_DEBUG, "node: stun %s: mapped %s (unchanged)", srv, m);
    }
    uint8_t id[MESH_REACH_ID_LEN];
    server_id(i, id);
    if (mesh_reach_observed(n->reach, mesh_env_now(&n->env), id, sizeof id, &s->addr, &r->local,
                            &r->mapped) == 1)
        mesh_node_reach_changed(n, r->mapped.family);
}

static void failed(mesh_node *n, ns_server *s, int status, int code)
{
    char srv[MESH_ADDR_STRLEN];
    mesh_addr_format(&s->addr, srv, sizeof srv);
    n->st.stun_failures++;
    n->st.stun_error = status;
    s->next_at = mesh_env_now(&n->env) + s->backoff;
    char why[32] = "";
    if (code) /* the server's own ERROR-CODE (300..699) */
        snprintf(why, sizeof why, " (STUN error %d)", code);
    mesh_log(&n->env, MESH_LOG_WARN, "node: stun %s: %s%s; retry in %llu s", srv,
             mesh_errname(status), why, (unsigned long long)(s->backoff / MESH_NS_PER_S));
    s->backoff = s->backoff * 2 > NS_REFRESH ? NS_REFRESH : s->backoff * 2;
}

static void on_result(void *ud, const mesh_stun_result *r)
{
    ns_server *s = ud;
    node_stun *ns = s->ns;
    mesh_node *n = ns->n;
    s->busy = 0;
    size_t i = (size_t)(s - ns->srv);
    if (r->status == MESH_OK && r->mapped.family == s->addr.family)
        answered(n, s, i, r);
    else
        failed(n, s, r->status == MESH_OK ? MESH_ERR_MALFORMED : r->status, r->error_code);
    if (!n->closing)
        schedule(ns);
}

/* Start server s's transaction (from our listening address when the env lets us). */
static void ask(node_stun *ns, ns_server *s)
{
    mesh_node *n = ns->n;
    int rc = mesh_stun_client_binding_tcp(ns->c, &s->addr, &n->bound, on_result, s);
    if (rc == MESH_ERR_UNSUPPORTED || rc == MESH_ERR_ADDR)
        rc = mesh_stun_client_binding_tcp(ns->c, &s->addr, NULL, on_result, s);
    if (rc == MESH_OK) {
        s->busy = 1;
        return;
    }
    failed(n, s, rc, 0);
}

/* Ask the servers that are due; set the timer to the next one due. */
static void schedule(node_stun *ns)
{
    mesh_node *n = ns->n;
    mesh_time now = mesh_env_now(&n->env), next = 0;
    for (size_t i = 0; i < ns->count; i++) {
        ns_server *s = &ns->srv[i];
        if (!s->busy && s->next_at <= now)
            ask(ns, s);
        if (!s->busy && (!next || s->next_at < next))
            next = s->next_at;
    }
    if (next)
        n->env.ops->timer_set(n->env.obj, ns->timer, next);
}

static void on_timer(mesh_timer *t, void *ud)
{
    (void)t;
    node_stun *ns = ud;
    if (!ns->n->closing)
        schedule(ns);
}

/* ---- life (node_impl.h) --------------------------------------------------------------------- */

int mesh_node_stun_new(mesh_node *n, const mesh_node_cfg *cfg)
{
    if (cfg->n_stun > MESH_NODE_MAX_STUN)
        return MESH_ERR_INVAL;
    for (size_t i = 0; i < cfg->n_stun; i++)
        if (cfg->stun[i].family == MESH_AF_NONE || !cfg->stun[i].port)
            return MESH_ERR_INVAL;
    if (!cfg->n_stun)
        return MESH_OK;
    node_stun *ns = calloc(1, sizeof *ns);
    if (!ns)
        return MESH_ERR_NOMEM;
    ns->n = n;
    ns->count = cfg->n_stun;
    for (size_t i = 0; i < ns->count; i++)
        ns->srv[i] = (ns_server){.ns = ns, .addr = cfg->stun[i], .backoff = NS_RETRY_MIN};
    mesh_stun_client_cfg sc;
    mesh_stun_client_cfg_default(&sc);
    sc.udp = 0;
    sc.tcp_timeout = NS_TIMEOUT;
    int rc = mesh_stun_client_new(&ns->c, &n->env, &sc);
    if (rc != MESH_OK) {
        free(ns);
        return rc;
    }
    if (!(ns->timer = n->env.ops->timer_new(n->env.obj, on_timer, ns))) {
        mesh_stun_client_free(ns->c);
        free(ns);
        return MESH_ERR_NOMEM;
    }
    n->stun = ns;
    return MESH_OK;
}

void mesh_node_stun_start(mesh_node *n)
{
    if (n->stun)
        schedule(n->stun); /* every next_at is 0: all are asked now */
}

void mesh_node_stun_free(mesh_node *n)
{
    node_stun *ns = n->stun;
    if (!ns)
        return;
    mesh_stun_client_free(ns->c); /* cancels the transactions: no callback follows */
    n->env.ops->timer_free(n->env.obj, ns->timer);
    free(ns);
    n->stun = NULL;
}
