/* node_run.c — meshara-node's run and send commands: one mesh_node on the real driver.
 * See node_run.h; the log lines a script may rely on are listed in meshara-node.c. */
#include "node_run.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "real/mdns.h"
#include "real/peerstore.h"
#include "real/portmap.h"
#include "real/webroot_net.h"

enum node_run_limits {
    NODE_RECONNECT_JITTER_PCT = 25, /* ± on every retry delay */
    NODE_SHUTDOWN_MAX_MS = 3000,    /* flushing after a signal stops after this */
    NODE_SHUTDOWN_POLL_MS = 5,      /* how often shutdown checks for open sockets */
    NODE_LOG_TEXT_MAX = 200,        /* message bytes shown in a log line */
};

typedef struct cli cli;

/* A --peer: the node pins it; this program probes it while it is not connected, so a
 * failure is logged with its reason and retried with backoff. */
typedef struct manual {
    cli *c;
    mesh_node_peer p;
    mesh_timer *retry;
    uint64_t backoff_ms; /* next retry delay */
    int probing;         /* a probe (connect + PING) is in flight */
} manual;

struct cli {
    const node_opts *o;
    mesh_real *r;
    mesh_env env;
    const mesh_identity *id;   /* borrowed */
    const mesh_certfile *cert; /* borrowed; empty in the seed profile */
    const char *turn_pass;     /* borrowed: --turn-pass-file's line ("" without --turn) */
    mesh_peerstore *store;
    mesh_node *node;
    manual *peers;
    size_t npeers;
    int result;                 /* send: exit code once finished, -1 while running */
    int op_begun;               /* send: the message or ping was handed to the node */
    mesh_timer *deadline;       /* send: --timeout, then --linger's end */
    int lingering;              /* send: answered, serving on for --linger */
    mesh_webroot_net *site;     /* run, --web-root: the decoy's upstreams, served here */
    mesh_addr site_h1, site_h2; /* their loopback listeners */
};

static char *key_hex(const uint8_t *key, char out[MESH_NODE_KEY_HEX_LEN + 1])
{
    if (!key)
        return strcpy(out, "-");
    return mesh_hex_encode(key, MESH_NODE_KEY_BYTES, out);
}

/* Printable form of message bytes for a log line: at most NODE_LOG_TEXT_MAX bytes shown,
 * quotes, backslashes and non-printable bytes escaped. out needs 4 * NODE_LOG_TEXT_MAX + 1. */
static char *printable(const uint8_t *data, size_t len, char *out)
{
    char *w = out;
    size_t n = len < NODE_LOG_TEXT_MAX ? len : NODE_LOG_TEXT_MAX;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = data[i];
        if (b == '"' || b == '\\')
            w += sprintf(w, "\\%c", b);
        else if (b >= 0x20 && b < 0x7f)
            *w++ = (char)b;
        else
            w += sprintf(w, "\\x%02x", b);
    }
    *w = '\0';
    return out;
}

static manual *manual_of(cli *c, const uint8_t *key)
{
    for (size_t i = 0; i < c->npeers; i++)
        if (memcmp(c->peers[i].p.key, key, MESH_NODE_KEY_BYTES) == 0)
            return &c->peers[i];
    return NULL;
}

/* Arm m's retry timer with the current backoff (jittered) and double the backoff for next
 * time. Returns the delay chosen, in ms. */
static uint64_t schedule_retry(manual *m)
{
    cli *c = m->c;
    uint64_t span = m->backoff_ms * NODE_RECONNECT_JITTER_PCT / 100;
    uint64_t ms = m->backoff_ms - span + mesh_env_random_below(&c->env, 2 * span + 1);
    c->env.ops->timer_set(c->env.obj, m->retry, mesh_env_now(&c->env) + ms * MESH_NS_PER_MS);
    m->backoff_ms =
        m->backoff_ms * 2 > c->o->reconnect_max_ms ? c->o->reconnect_max_ms : m->backoff_ms * 2;
    return ms;
}

static void probe_done(mesh_node *n, const mesh_node_answer *a, void *ud)
{
    (void)n;
    manual *m = ud;
    cli *c = m->c;
    char at[MESH_ADDR_STRLEN], k[MESH_NODE_KEY_HEX_LEN + 1];
    m->probing = 0;
    if (a->status == MESH_OK) {
        m->backoff_ms = c->o->reconnect_min_ms;
        return;
    }
    mesh_log(&c->env, MESH_LOG_WARN,
             "connect failed: out %s key=%s reason=%s (%s); retry in %" PRIu64 " ms",
             mesh_addr_format(&m->p.addr, at, sizeof at), key_hex(m->p.key, k),
             mesh_errname(a->status), mesh_strerror(a->status), schedule_retry(m));
}

/* Connect to a manual peer (pinned) and ping it: the answer, or the failure, tells. */
static void probe(manual *m)
{
    cli *c = m->c;
    mesh_node_peer_stats ps;
    if (m->probing || (mesh_node_get_peer_stats(c->node, m->p.key, &ps) == MESH_OK && ps.connected))
        return;
    int rc = mesh_node_connect(c->node, &m->p.addr, m->p.key, 1);
    if (rc == MESH_OK)
        rc = mesh_node_query(c->node, m->p.key, MESH_QUERY_PING, NULL, 0, 0, probe_done, m);
    if (rc == MESH_OK) {
        m->probing = 1;
        return;
    }
    mesh_node_answer a = {.status = rc};
    probe_done(c->node, &a, m);
}

static void on_retry(mesh_timer *t, void *ud)
{
    (void)t;
    probe(ud);
}

/* ---- node callbacks ------------------------------------------------------------------------ */

static void on_message(mesh_node *n, const uint8_t from[MESH_NODE_KEY_BYTES], const uint8_t *data,
                       size_t len, void *ud)
{
    (void)n;
    cli *c = ud;
    char k[MESH_NODE_KEY_HEX_LEN + 1], text[4 * NODE_LOG_TEXT_MAX + 1];
    mesh_log(&c->env, MESH_LOG_INFO, "message from %s: len=%zu text=\"%s\"%s", key_hex(from, k),
             len, printable(data, len, text), len > NODE_LOG_TEXT_MAX ? " (cut)" : "");
}

static void on_peer(mesh_node *n, const uint8_t key[MESH_NODE_KEY_BYTES], int connected, int reason,
                    void *ud)
{
    cli *c = ud;
    char k[MESH_NODE_KEY_HEX_LEN + 1];
    manual *m = manual_of(c, key);
    key_hex(key, k);
    if (connected) {
        mesh_node_peer_stats ps;
        int known = mesh_node_get_peer_stats(n, key, &ps) == MESH_OK;
        mesh_log(&c->env, MESH_LOG_INFO, "peer up: %s key=%s%s path=%s",
                 known && ps.outbound ? "out" : "in", k, m ? " (manual)" : "",
                 known ? mesh_node_path_name(ps.path) : "?");
        if (m)
            m->backoff_ms = c->o->reconnect_min_ms;
        return;
    }
    char retry[48] = "";
    if (m && c->o->cmd == CMD_RUN)
        snprintf(retry, sizeof retry, "; retry in %" PRIu64 " ms", schedule_retry(m));
    mesh_log(&c->env, reason == MESH_OK ? MESH_LOG_INFO : MESH_LOG_WARN,
             "peer down: key=%s reason=%s%s", k, mesh_errname(reason), retry);
}

static void finish(cli *c, int result)
{
    if (c->result < 0)
        c->result = result;
    if (c->result == NODE_EXIT_OK && c->o->linger_ms && c->deadline && !c->lingering) {
        c->lingering = 1; /* send --linger: the node serves on a while (the deadline timer) */
        c->env.ops->timer_set(c->env.obj, c->deadline,
                              mesh_env_now(&c->env) + c->o->linger_ms * MESH_NS_PER_MS);
        return;
    }
    mesh_real_stop(c->r);
}

static void send_failed(cli *c, const char *what, int rc)
{
    char k[MESH_NODE_KEY_HEX_LEN + 1];
    fprintf(stderr, "meshara-node: %s %s failed: %s (%s)\n", what, key_hex(c->o->to.key, k),
            mesh_errname(rc), mesh_strerror(rc));
    finish(c, NODE_EXIT_FAIL);
}

static void sent(mesh_node *n, int result, void *ud)
{
    (void)n;
    cli *c = ud;
    char k[MESH_NODE_KEY_HEX_LEN + 1];
    if (result != MESH_OK) {
        send_failed(c, "send to", result);
        return;
    }
    printf("delivered to %s\n", key_hex(c->o->to.key, k));
    fflush(stdout);
    finish(c, NODE_EXIT_OK);
}

static void ponged(mesh_node *n, const mesh_node_answer *a, void *ud)
{
    (void)n;
    cli *c = ud;
    char k[MESH_NODE_KEY_HEX_LEN + 1];
    if (a->status != MESH_OK) {
        send_failed(c, "ping of", a->status);
        return;
    }
    mesh_time rtt = a->rtt ? a->rtt : 1;
    printf("pong from %s rtt_us=%" PRIu64 "\n", key_hex(c->o->to.key, k),
           (uint64_t)((rtt + MESH_NS_PER_US - 1) / MESH_NS_PER_US));
    fflush(stdout);
    finish(c, NODE_EXIT_OK);
}

/* send: hand the message or ping to the node (once). */
static void send_begin(cli *c)
{
    const node_opts *o = c->o;
    if (c->op_begun)
        return;
    c->op_begun = 1;
    int rc;
    if (o->ping)
        rc = mesh_node_query(c->node, o->to.key, MESH_QUERY_PING, NULL, 0, 0, ponged, c);
    else
        rc = mesh_node_send(c->node, o->to.key, (const uint8_t *)o->message, strlen(o->message),
                            sent, c);
    if (rc != MESH_OK)
        send_failed(c, o->ping ? "ping of" : "send to", rc);
}

static void on_joined(mesh_node *n, int status, void *ud)
{
    cli *c = ud;
    mesh_node_stats st;
    mesh_node_get_stats(n, &st);
    if (status == MESH_OK)
        mesh_log(&c->env, MESH_LOG_INFO, "joined the mesh: %zu peers connected, %zu known",
                 st.connected, st.dht_entries);
    else
        mesh_log(&c->env, MESH_LOG_WARN, "join failed: %s (%s)", mesh_errname(status),
                 mesh_strerror(status));
    if (c->o->cmd != CMD_SEND || c->o->to.has_addr)
        return;
    /* A key alone is looked up in the DHT, which needs someone to ask: with mDNS only, the
     * join has nothing to do, so wait for the first peer found (on_peer_send below). */
    if (st.connected || !c->o->mdns)
        send_begin(c);
}

static void on_peer_send(mesh_node *n, const uint8_t key[MESH_NODE_KEY_BYTES], int connected,
                         int reason, void *ud)
{
    cli *c = ud;
    on_peer(n, key, connected, reason, ud);
    mesh_node_stats st;
    mesh_node_get_stats(n, &st);
    if (connected && st.joined && !c->o->to.has_addr)
        send_begin(c);
}
/* ---- setup, shutdown ------------------------------------------------------------------------ */
/* Let the driver flush and close the sockets we released gracefully: run until nothing but
 * our own poll timer and run_for's limit are left, at most NODE_SHUTDOWN_MAX_MS. */
static void poll_idle(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mesh_real *r = arg;
    if (event_base_get_num_events(mesh_real_base(r), EVENT_BASE_COUNT_ADDED) <= 2)
        mesh_real_stop(r);
}

static void flush_and_wait(mesh_real *r)
{
    struct timeval tv = {0, NODE_SHUTDOWN_POLL_MS * 1000};
    struct event *poll = event_new(mesh_real_base(r), -1, EV_PERSIST, poll_idle, r);
    if (poll && event_add(poll, &tv) == 0)
        (void)mesh_real_run_for(r, (mesh_time)NODE_SHUTDOWN_MAX_MS * MESH_NS_PER_MS);
    if (poll)
        event_free(poll);
}

static void on_send_deadline(mesh_timer *t, void *ud)
{
    (void)t;
    cli *c = ud;
    if (c->lingering) {
        mesh_real_stop(c->r);
        return;
    }
    if (c->result < 0)
        fprintf(stderr, "meshara-node: send timed out after %" PRIu64 " ms (%s)\n",
                c->o->timeout_ms, c->op_begun ? "no answer" : "still joining");
    finish(c, NODE_EXIT_FAIL);
}

/* The node's configuration from the options. */
static void node_cfg(const cli *c, mesh_node_cfg *cfg)
{
    const node_opts *o = c->o;
    memset(cfg, 0, sizeof *cfg);
    cfg->identity = c->id;
    cfg->listen = o->listen;
    memcpy(cfg->advertised, o->advertise, o->nadvertise * sizeof o->advertise[0]);
    cfg->n_advertised = o->nadvertise;
    /* a send node is gone in seconds: an address in its record would only mislead */
    cfg->advertise_none = o->cmd == CMD_SEND && !o->nadvertise;
    /* must grow across restarts so peers replace the record they hold */
    time_t wall = time(NULL);
    cfg->record_seq = (uint64_t)wall;
    /* the wall clock at the env's time 0: what the node dates its session tickets with */
    cfg->unix_epoch = (int64_t)wall - (int64_t)(mesh_env_now(&c->env) / MESH_NS_PER_S);
    cfg->profile = o->profile;
    cfg->tls_cert_pem = c->cert->cert;
    cfg->tls_cert_pem_len = c->cert->cert_len;
    cfg->tls_key_pem = c->cert->key;
    cfg->tls_key_pem_len = c->cert->key_len;
    cfg->sni = o->sni;
    cfg->host_name = o->host_name;
    cfg->alpn = o->alpn[0] ? o->alpn : NULL;
    cfg->http2 = o->http2;
    cfg->web_upstream = c->site ? c->site_h1 : o->web_upstream;
    cfg->web_upstream_h2 = c->site ? c->site_h2 : o->web_upstream_h2;
    cfg->connect_timeout = o->connect_ms * MESH_NS_PER_MS;
    cfg->handshake_timeout = o->handshake_ms * MESH_NS_PER_MS;
    cfg->auth_timeout = o->auth_ms * MESH_NS_PER_MS;
    cfg->heartbeat_interval = o->heartbeat_ms * MESH_NS_PER_MS;
    cfg->max_handshakes = o->max_handshakes;
    cfg->pool_max = o->pool_max;
    cfg->pool_min = o->pool_min;
    if (o->pool_max && !o->pool_min && o->pool_max < MESH_NODE_DEFAULT_POOL_MIN)
        cfg->pool_min = o->pool_max;
    cfg->maintain_interval = o->maintain_ms * MESH_NS_PER_MS;
    if (o->cmd == CMD_SEND) {
        cfg->send_timeout = o->timeout_ms * MESH_NS_PER_MS;
        cfg->query_timeout = o->timeout_ms * MESH_NS_PER_MS;
        cfg->bootstrap_timeout = o->timeout_ms * MESH_NS_PER_MS;
    }
    for (size_t i = 0; i < o->nboot; i++) {
        cfg->bootstrap[i].addr = o->boot[i].addr;
        memcpy(cfg->bootstrap[i].key, o->boot[i].key, MESH_NODE_KEY_BYTES);
        cfg->bootstrap[i].host_name = o->boot[i].host_name[0] ? o->boot[i].host_name : NULL;
    }
    cfg->n_bootstrap = o->nboot;
    for (size_t i = 0; i < c->npeers; i++)
        cfg->manual[i] = c->peers[i].p;
    cfg->n_manual = c->npeers;
    for (size_t i = 0; i < o->nrelays; i++) {
        cfg->relays[i].addr = o->relays[i].addr;
        memcpy(cfg->relays[i].key, o->relays[i].key, MESH_NODE_KEY_BYTES);
        cfg->relays[i].host_name = o->relays[i].host_name[0] ? o->relays[i].host_name : NULL;
    }
    cfg->n_relays = o->nrelays;
    cfg->relay_service = o->relay_service;
    cfg->store = c->store ? mesh_peerstore_store(c->store) : (mesh_peer_store){0};
    cfg->mdns = o->mdns;
    /* a send node is gone in seconds: a mapping would outlive its use */
    cfg->no_port_mapping = o->no_port_mapping || o->cmd != CMD_RUN;
    if (o->has_turn) {
        cfg->turn_server = o->turn;
        cfg->turn_user = o->turn_user;
        cfg->turn_password = c->turn_pass;
    }
    memcpy(cfg->stun, o->stun, o->nstun * sizeof o->stun[0]);
    cfg->n_stun = o->nstun;
}

/* Open the local services the options ask for: mDNS (a warning without a daemon), port
 * mapping (run, unless --no-port-mapping), the peer store. NODE_EXIT_OK or NODE_EXIT_FAIL
 * (message printed). */
static int open_services(cli *c)
{
    const node_opts *o = c->o;
    int rc;
    if (o->mdns && (rc = mesh_real_mdns_attach(c->r)) != MESH_OK)
        mesh_log(&c->env, MESH_LOG_WARN, "mdns: %s (%s): running without mDNS", mesh_errname(rc),
                 mesh_strerror(rc)); /* the node then logs and ignores cfg.mdns */
    if (o->cmd == CMD_RUN && !o->no_port_mapping &&
        (rc = mesh_real_portmap_attach(c->r, NULL)) != MESH_OK)
        mesh_log(&c->env, MESH_LOG_WARN, "portmap: %s (%s): running without port mapping",
                 mesh_errname(rc), mesh_strerror(rc));
    if (o->web_root && (rc = mesh_webroot_net_new(&c->site, mesh_real_base(c->r), o->web_root,
                                                  &c->site_h1, &c->site_h2)) != MESH_OK) {
        fprintf(stderr, "meshara-node: cannot serve --web-root %s: %s (%s)\n", o->web_root,
                mesh_errname(rc), mesh_strerror(rc));
        return NODE_EXIT_FAIL;
    }
    if (c->site) {
        char a1[MESH_ADDR_STRLEN], a2[MESH_ADDR_STRLEN];
        mesh_log(&c->env, MESH_LOG_INFO, "web root %s served on %s (HTTP/1.1), %s (HTTP/2)",
                 o->web_root, mesh_addr_format(&c->site_h1, a1, sizeof a1),
                 mesh_addr_format(&c->site_h2, a2, sizeof a2));
    }
    if (o->peers_db &&
        (rc = mesh_peerstore_open(&c->store, o->peers_db, &c->env, NULL)) != MESH_OK) {
        fprintf(stderr, "meshara-node: cannot open --peers-db %s: %s (%s)\n", o->peers_db,
                mesh_errname(rc), mesh_strerror(rc));
        return NODE_EXIT_FAIL;
    }
    return NODE_EXIT_OK;
}

/* The manual peers this program supervises: run's --peer list; for send, --to when it gives
 * an address (connected to directly, like a manual peer). MESH_OK or MESH_ERR_NOMEM. */
static int make_manuals(cli *c)
{
    const node_opts *o = c->o;
    c->npeers = o->cmd == CMD_SEND ? (size_t)o->to.has_addr : o->npeers;
    if (c->npeers && !(c->peers = calloc(c->npeers, sizeof *c->peers)))
        return MESH_ERR_NOMEM;
    for (size_t i = 0; i < c->npeers; i++) {
        manual *m = &c->peers[i];
        const peer_opt *po = o->cmd == CMD_SEND ? &o->to : &o->peers[i];
        m->c = c;
        m->p.addr = po->addr;
        memcpy(m->p.key, po->key, MESH_NODE_KEY_BYTES);
        m->p.host_name = po->host_name[0] ? po->host_name : NULL;
        m->backoff_ms = o->reconnect_min_ms;
        if (!(m->retry = c->env.ops->timer_new(c->env.obj, on_retry, m)))
            return MESH_ERR_NOMEM;
    }
    return MESH_OK;
}

/* Make the node and start it listening; logs (and, for run, prints) the bound address. */
static int node_make(cli *c)
{
    const node_opts *o = c->o;
    char a[MESH_ADDR_STRLEN], k[MESH_NODE_KEY_HEX_LEN + 1];
    mesh_node_cfg cfg;
    node_cfg(c, &cfg);
    mesh_node_cbs cbs = {.on_message = on_message,
                         .on_peer = o->cmd == CMD_SEND ? on_peer_send : on_peer,
                         .on_joined = on_joined};
    int rc = mesh_node_new(&c->node, &c->env, &cfg, &cbs, c);
    if (rc != MESH_OK) {
        fprintf(stderr, "meshara-node: cannot make the node: %s (%s)\n", mesh_errname(rc),
                mesh_strerror(rc));
        return NODE_EXIT_FAIL;
    }
    mesh_addr bound;
    rc = mesh_node_start(c->node);
    if (rc == MESH_OK)
        rc = mesh_node_addr(c->node, &bound);
    if (rc != MESH_OK) {
        fprintf(stderr, "meshara-node: cannot listen on %s: %s (%s)\n",
                mesh_addr_format(&o->listen, a, sizeof a), mesh_errname(rc), mesh_strerror(rc));
        if (rc == MESH_ERR_PERM) /* EACCES: a port below 1024 without the capability */
            fprintf(stderr,
                    "meshara-node: binding port %u needs CAP_NET_BIND_SERVICE (systemd: "
                    "AmbientCapabilities=CAP_NET_BIND_SERVICE; or setcap "
                    "cap_net_bind_service=+ep on the binary), or choose a port >= 1024 "
                    "with --listen ADDR:PORT\n",
                    (unsigned)o->listen.port);
        return NODE_EXIT_FAIL;
    }
    mesh_addr_format(&bound, a, sizeof a);
    key_hex(mesh_node_key(c->node), k);
    mesh_log(&c->env, MESH_LOG_INFO, "listening on %s as %s (%s profile%s)%s", a, k,
             o->profile == MESH_PROFILE_WEB ? "web" : "seed",
             o->profile == MESH_PROFILE_SEED && o->http2 ? ", HTTP/2 framing" : "",
             c->store ? " (peer store open)" : "");
    if (o->cmd == CMD_RUN) {
        printf("listening %s\npubkey %s\n", a, k);
        fflush(stdout);
    }
    return NODE_EXIT_OK;
}

/* send: connect first when --to gives an address (the send then waits on that very
 * connection, pinned), hand the message over, and arm --timeout. */
static int send_start(cli *c)
{
    const node_opts *o = c->o;
    if (o->to.has_addr) {
        int rc = mesh_node_connect(c->node, &o->to.addr, o->to.key, 1);
        if (rc != MESH_OK) {
            send_failed(c, "connect to", rc);
            return NODE_EXIT_FAIL;
        }
        send_begin(c);
        if (c->result >= 0)
            return c->result;
    }
    if (!(c->deadline = c->env.ops->timer_new(c->env.obj, on_send_deadline, c)))
        return NODE_EXIT_FAIL;
    c->env.ops->timer_set(c->env.obj, c->deadline,
                          mesh_env_now(&c->env) + o->timeout_ms * MESH_NS_PER_MS);
    return NODE_EXIT_OK;
}

/* Open what the node needs (mDNS, peer store, manual peers), make and start it. */
static int node_start(cli *c)
{
    int ex = open_services(c);
    if (ex != NODE_EXIT_OK)
        return ex;
    if (make_manuals(c) != MESH_OK)
        return NODE_EXIT_FAIL;
    if ((ex = node_make(c)) != NODE_EXIT_OK)
        return ex;
    if (c->o->cmd == CMD_SEND)
        return send_start(c);
    for (size_t i = 0; i < c->npeers; i++)
        probe(&c->peers[i]);
    return NODE_EXIT_OK;
}

/* Free the node (its sessions go with it), then everything else but the driver. */
static void node_close_all(cli *c)
{
    if (c->node) {
        mesh_node_stats st;
        mesh_node_get_stats(c->node, &st);
        if (st.sessions)
            mesh_log(&c->env, MESH_LOG_INFO, "closing %zu sessions", st.sessions);
        /* Goodbye, close_notify and FIN on every session, then let them finish */
        if (mesh_node_close(c->node) == MESH_OK)
            for (int i = 0; i < NODE_SHUTDOWN_MAX_MS / NODE_SHUTDOWN_POLL_MS && st.sessions; i++) {
                (void)mesh_real_run_for(c->r, (mesh_time)NODE_SHUTDOWN_POLL_MS * MESH_NS_PER_MS);
                mesh_node_get_stats(c->node, &st);
            }
    }
    mesh_node_free(c->node);
    c->node = NULL;
    for (size_t i = 0; i < c->npeers; i++)
        if (c->peers[i].retry)
            c->env.ops->timer_free(c->env.obj, c->peers[i].retry);
    free(c->peers);
    c->peers = NULL;
    c->npeers = 0;
    if (c->deadline)
        c->env.ops->timer_free(c->env.obj, c->deadline);
    c->deadline = NULL;
    mesh_peerstore_close(c->store);
    c->store = NULL;
    mesh_webroot_net_free(c->site); /* after the node: no decoy is spliced to it any more */
    c->site = NULL;
}

int node_run(const node_opts *o, mesh_real *r, const mesh_identity *id, const mesh_certfile *cert,
             const char *turn_pass)
{
    cli c = {.o = o,
             .r = r,
             .env = mesh_real_env(r),
             .id = id,
             .cert = cert,
             .turn_pass = turn_pass,
             .result = -1};
    int ex = node_start(&c);
    if (ex == NODE_EXIT_OK && o->cmd == CMD_RUN) {
        int sig = mesh_real_run_until_signal(c.r);
        if (sig < 0) {
            fprintf(stderr, "meshara-node: event loop failed: %s\n", mesh_errname(sig));
            ex = NODE_EXIT_FAIL;
        } else {
            mesh_log(&c.env, MESH_LOG_INFO, "shutting down (signal %d)", sig);
        }
    } else if (ex == NODE_EXIT_OK) {
        if (mesh_real_run(c.r) != MESH_OK)
            c.result = NODE_EXIT_FAIL;
        ex = c.result < 0 ? NODE_EXIT_FAIL : c.result;
    }
    node_close_all(&c);
    flush_and_wait(c.r);
    return ex;
}
