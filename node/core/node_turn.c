/* node_turn.c — the node's TURN allocation (cfg.turn_server; core/turn.h, docs/nat.md).
 *
 * Started with the node: a mesh_turn client allocates; once allocated the relayed address
 * joins our signed record (seq + 1), and the IPs of our bootstrap nodes and manual peers
 * get permissions (RFC 6062 lets only permitted IPs connect to the relayed address). Those
 * of them the pool has no session with, and whose direct attempt failed or has run for
 * NT_HEAD, are dialled through the server (Connect) — a node that reaches only its TURN
 * server still joins; checked every NT_CHECK.
 *
 * Sessions through the server run end to end inside the data connections' virtual streams
 * (TLS 1.3 + the exporter-bound hello, as over TCP): a peer connecting to the relayed
 * address is accepted here (mesh_session_accept), a dial is mesh_session_connect_stream
 * pinned to the peer's key. Once CONNECTED a session is handed to the pool like any other
 * (mesh_pool_adopt_as, so the simultaneous-open rule knows its client); its path is "turn"
 * (logged, counted in the stats). At most NT_HANDSHAKES are handshaking at once.
 *
 * A failure (MESH_ERR_AUTH for refused credentials, a timeout, the server gone) is logged,
 * the relayed address leaves the record, and a new client tries again after a backoff
 * (NT_RETRY_MIN doubling to NT_RETRY_MAX). The old client is freed only once none of its
 * virtual streams is left (sessions in the pool borrow its overlay env).
 */
#include <stdlib.h>
#include <string.h>

#include "core/node_impl.h"
#include "core/turn.h"

#define NT_RETRY_MIN (5ULL * MESH_NS_PER_S)
#define NT_RETRY_MAX (300ULL * MESH_NS_PER_S)
#define NT_CHECK (1ULL * MESH_NS_PER_S)
#define NT_HEAD (2ULL * MESH_NS_PER_S)
#define NT_LINGER (1ULL * MESH_NS_PER_S)
enum { NT_HANDSHAKES = 16, NT_OLD = 4 };

typedef struct nt_hs {
    node_turn *nt;
    mesh_session *s; /* NULL: free slot */
    int outbound;
    uint8_t key[MESH_PUBKEY_LEN]; /* outbound: the key dialled */
} nt_hs;

struct node_turn {
    mesh_node *n;
    mesh_addr server;
    char *user, *pass;
    mesh_turn *t;
    mesh_turn *old[NT_OLD]; /* failed clients whose streams are still in use */
    mesh_env venv;          /* t's overlay env (sessions copy it) */
    mesh_timer *timer;      /* retry after a failure, or the periodic check */
    mesh_time backoff;
    nt_hs hs[NT_HANDSHAKES];
    mesh_time pending_since[MESH_NODE_MAX_BOOTSTRAP + MESH_NODE_MAX_MANUAL]; /* see dial() */
};

static void nt_log_addr(mesh_node *n, int level, const char *what, const mesh_addr *a, int rc)
{
    char t[MESH_ADDR_STRLEN] = "-";
    if (a && a->family != MESH_AF_NONE)
        mesh_addr_format(a, t, sizeof t);
    mesh_log(&n->env, level, "node: turn: %s %s%s%s", what, t, rc == MESH_OK ? "" : ": ",
             rc == MESH_OK ? "" : mesh_errname(rc));
}

/* ---- sessions through the server ------------------------------------------------------------ */

static void hs_connected(mesh_session *s, void *ud)
{
    nt_hs *h = ud;
    mesh_node *n = h->nt->n;
    h->s = NULL;
    if (h->outbound)
        n->st.turn_sessions_out++;
    else
        n->st.turn_sessions_in++;
    char hex[2 * MESH_PUBKEY_LEN + 1];
    mesh_hex_encode(mesh_session_peer_key(s), MESH_PUBKEY_LEN, hex);
    mesh_log(&n->env, MESH_LOG_INFO, "node: session %s key=%s path=turn",
             h->outbound ? "out" : "in", hex);
    mesh_pool_adopt_as(n->pool, s, h->outbound); /* the pool's from now on */
}

static void hs_closed(mesh_session *s, int reason, void *ud)
{
    nt_hs *h = ud;
    mesh_node *n = h->nt->n;
    mesh_log(&n->env, MESH_LOG_INFO, "node: turn: session %s failed: %s",
             h->outbound ? "out" : "in", mesh_errname(reason));
    n->st.turn_failures++;
    h->s = NULL;
    mesh_session_free(s); /* inside its callback: freed when it unwinds */
}

static const mesh_session_cbs HS_CBS = {.on_connected = hs_connected, .on_closed = hs_closed};

static nt_hs *hs_slot(node_turn *nt)
{
    for (size_t i = 0; i < NT_HANDSHAKES; i++)
        if (!nt->hs[i].s)
            return &nt->hs[i];
    return NULL;
}

static void on_incoming(mesh_turn *t, mesh_stream *s, const mesh_addr *peer, void *ud)
{
    node_turn *nt = ud;
    nt_hs *h = hs_slot(nt);
    if (!h || nt->n->closing) {
        nt_log_addr(nt->n, MESH_LOG_INFO, "refused a connection from", peer, MESH_ERR_LIMIT);
        mesh_env v = mesh_turn_env(t);
        v.ops->stream_close(v.obj, s, MESH_CLOSE_ABORT);
        return;
    }
    h->nt = nt;
    h->outbound = 0;
    mesh_session_cfg cfg = nt->n->scfg;
    cfg.http2 = 0; /* a server follows the negotiated ALPN */
    if (mesh_session_accept(&h->s, &nt->venv, nt->n->tls, s, &cfg, &HS_CBS, h) != MESH_OK)
        h->s = NULL; /* the session closed the stream */
}

/* Dial peer p (known peer number k) through the server: the fallback, so not while the pool
 * has a session with it, nor while a direct attempt younger than NT_HEAD has not failed yet
 * (a head start, as happy eyeballs gives IPv6), nor while a dial of ours runs. */
static void dial(node_turn *nt, const mesh_node_peer *p, size_t k)
{
    mesh_node *n = nt->n;
    uint8_t id[MESH_NODE_ID_LEN];
    mesh_node_id_of(p->key, id);
    mesh_pool_conn *c = mesh_pool_find(n->pool, id);
    mesh_time now = mesh_env_now(&n->env);
    if (c) {
        mesh_node_peer_stats ps;
        mesh_pool_conn_stats(c, &ps);
        if (ps.connected) {
            nt->pending_since[k] = 0;
            return;
        }
        if (ps.sessions && !ps.connect_failures) {
            if (!nt->pending_since[k])
                nt->pending_since[k] = now ? now : 1;
            if (now - nt->pending_since[k] < NT_HEAD)
                return;
        }
    }
    for (size_t i = 0; i < NT_HANDSHAKES; i++)
        if (nt->hs[i].s && nt->hs[i].outbound &&
            memcmp(nt->hs[i].key, p->key, MESH_PUBKEY_LEN) == 0)
            return;
    nt_hs *h = hs_slot(nt);
    if (!h)
        return;
    int err = MESH_OK;
    mesh_stream *vs = mesh_turn_connect(nt->t, &p->addr, &(mesh_stream_cbs){0}, NULL, &err);
    if (!vs) {
        nt_log_addr(n, MESH_LOG_INFO, "cannot dial", &p->addr, err);
        return;
    }
    h->nt = nt;
    h->outbound = 1;
    memcpy(h->key, p->key, MESH_PUBKEY_LEN);
    if (mesh_session_connect_stream(&h->s, &nt->venv, n->tls, vs, p->key, &n->scfg, &HS_CBS, h) !=
        MESH_OK)
        h->s = NULL;
    else
        nt_log_addr(n, MESH_LOG_INFO, "dialling through the server:", &p->addr, MESH_OK);
}

/* Permissions for, and dials to, the bootstrap nodes and manual peers. */
static void reach_known(node_turn *nt)
{
    mesh_node *n = nt->n;
    const mesh_node_peer *lists[2] = {n->cfg.bootstrap, n->cfg.manual};
    size_t counts[2] = {n->cfg.n_bootstrap, n->cfg.n_manual};
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; i < counts[l]; i++) {
            int rc = mesh_turn_permit(nt->t, &lists[l][i].addr);
            if (rc != MESH_OK)
                nt_log_addr(n, MESH_LOG_WARN, "no permission for", &lists[l][i].addr, rc);
            else if (!n->closing)
                dial(nt, &lists[l][i], l ? MESH_NODE_MAX_BOOTSTRAP + i : i);
        }
}

/* ---- the allocation ------------------------------------------------------------------------- */

static void start_client(node_turn *nt);

static void on_allocated(mesh_turn *t, int status, const mesh_addr *relayed,
                         const mesh_addr *mapped, void *ud)
{
    (void)t;
    node_turn *nt = ud;
    mesh_node *n = nt->n;
    if (status == MESH_OK) {
        n->st.turn_state = MESH_NODE_TURN_ALLOCATED;
        n->st.turn_relayed = *relayed;
        n->st.turn_error = MESH_OK;
        nt->backoff = NT_RETRY_MIN;
        nt_log_addr(n, MESH_LOG_INFO, "allocated, relayed address", relayed, MESH_OK);
        nt_log_addr(n, MESH_LOG_INFO, "our address as the server sees it:", mapped, MESH_OK);
        mesh_node_record_update(n);
        reach_known(nt);
        n->env.ops->timer_set(n->env.obj, nt->timer, mesh_env_now(&n->env) + NT_CHECK);
        return;
    }
    int was = n->st.turn_state == MESH_NODE_TURN_ALLOCATED;
    n->st.turn_state = MESH_NODE_TURN_FAILED;
    n->st.turn_error = status;
    n->st.turn_relayed = (mesh_addr){0};
    if (was)
        mesh_node_record_update(n);
    mesh_log(&n->env, MESH_LOG_WARN, "node: turn: %s via server: %s (%s); retry in %llu s",
             was ? "allocation lost" : "no allocation", mesh_errname(status), mesh_strerror(status),
             (unsigned long long)(nt->backoff / MESH_NS_PER_S));
    n->env.ops->timer_set(n->env.obj, nt->timer, mesh_env_now(&n->env) + nt->backoff);
    nt->backoff = nt->backoff * 2 > NT_RETRY_MAX ? NT_RETRY_MAX : nt->backoff * 2;
}

static const mesh_turn_cbs NT_CBS = {on_allocated, on_incoming};

/* Free the retired clients none of whose virtual streams is left. */
static void reap_old(node_turn *nt)
{
    for (size_t i = 0; i < NT_OLD; i++)
        if (nt->old[i] && mesh_turn_streams(nt->old[i]) == 0) {
            mesh_turn_free(nt->old[i]);
            nt->old[i] = NULL;
        }
}

static void start_client(node_turn *nt)
{
    mesh_node *n = nt->n;
    reap_old(nt);
    if (nt->t) { /* retire the failed client: its sessions may still be in the pool */
        size_t i = 0;
        while (i < NT_OLD && nt->old[i])
            i++;
        if (i == NT_OLD) { /* all slots busy: look again soon */
            n->env.ops->timer_set(n->env.obj, nt->timer, mesh_env_now(&n->env) + NT_LINGER);
            return;
        }
        nt->old[i] = nt->t;
        nt->t = NULL;
    }
    mesh_turn_cfg tc = {.server = nt->server, .username = nt->user, .password = nt->pass};
    n->st.turn_state = MESH_NODE_TURN_ALLOCATING;
    int rc = mesh_turn_new(&nt->t, &n->env, &tc, &NT_CBS, nt);
    if (rc != MESH_OK) {
        nt->t = NULL;
        n->st.turn_state = MESH_NODE_TURN_FAILED;
        n->st.turn_error = rc;
        nt_log_addr(n, MESH_LOG_WARN, "cannot reach the server", &nt->server, rc);
        n->env.ops->timer_set(n->env.obj, nt->timer, mesh_env_now(&n->env) + nt->backoff);
        return;
    }
    nt->venv = mesh_turn_env(nt->t);
}

static void on_timer(mesh_timer *tm, void *ud)
{
    (void)tm;
    node_turn *nt = ud;
    mesh_node *n = nt->n;
    if (n->closing)
        return;
    reap_old(nt);
    if (nt->t && mesh_turn_allocated(nt->t)) {
        reach_known(nt);
        n->env.ops->timer_set(n->env.obj, nt->timer, mesh_env_now(&n->env) + NT_CHECK);
        return;
    }
    start_client(nt);
}

/* ---- life (node_impl.h) --------------------------------------------------------------------- */

int mesh_node_turn_new(mesh_node *n, const mesh_node_cfg *cfg)
{
    if (!cfg->turn_server.port)
        return MESH_OK;
    if (!cfg->turn_user || !cfg->turn_password)
        return MESH_ERR_INVAL;
    node_turn *nt = calloc(1, sizeof *nt);
    if (!nt)
        return MESH_ERR_NOMEM;
    nt->n = n;
    nt->server = cfg->turn_server;
    nt->backoff = NT_RETRY_MIN;
    nt->user = strdup(cfg->turn_user);
    nt->pass = strdup(cfg->turn_password);
    nt->timer = n->env.ops->timer_new(n->env.obj, on_timer, nt);
    if (!nt->user || !nt->pass || !nt->timer) {
        n->turn = nt;
        mesh_node_turn_free(n);
        return MESH_ERR_NOMEM;
    }
    n->turn = nt;
    return MESH_OK;
}

void mesh_node_turn_start(mesh_node *n)
{
    if (n->turn)
        start_client(n->turn);
}

int mesh_node_turn_addr(const mesh_node *n, mesh_addr *out)
{
    if (!n->turn || n->st.turn_state != MESH_NODE_TURN_ALLOCATED)
        return MESH_ERR_NOT_FOUND;
    *out = n->st.turn_relayed;
    return MESH_OK;
}

void mesh_node_turn_free(mesh_node *n)
{
    node_turn *nt = n->turn;
    if (!nt)
        return;
    for (size_t i = 0; i < NT_HANDSHAKES; i++)
        mesh_session_free(nt->hs[i].s);
    mesh_turn_free(nt->t); /* gives the allocation back */
    for (size_t i = 0; i < NT_OLD; i++)
        mesh_turn_free(nt->old[i]);
    if (nt->timer)
        n->env.ops->timer_free(n->env.obj, nt->timer);
    if (nt->pass)
        memset(nt->pass, 0, strlen(nt->pass));
    free(nt->user);
    free(nt->pass);
    free(nt);
    n->turn = NULL;
}
