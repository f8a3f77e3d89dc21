/* test_failmalloc.c — out of memory: allocation N of a complete run is failed, for N over
 * the run (tests/common/failmalloc.h), in four subjects:
 *   session   a session pair: connect, TLS handshake, hello, messages both ways, close;
 *   nodes     B bootstraps X and Y; X sends to Y by key (lookup, pool, connect) and looks
 *             Y up in the DHT; X restarts and joins from its peer store;
 *   scenario  scenarios/default.yaml loaded, two --set overrides, checked;
 *   results   a results database opened, rows recorded, finished, closed (SQLite).
 * Each run must end MESH_OK (the failure was absorbed), MESH_ERR_NOMEM or a named clean
 * error allowed per subject, with every object freed (LeakSanitizer in the ASan build),
 * nothing crashed, nothing left hanging (every callback came), no message silently lost,
 * no results database left 'running'. Within ctest's time, large walks take a stride of N
 * (SESSION_MAX_RUNS...); MESH_FM_FULL=1 walks every N.
 *
 * Topology (simulator): hosts on the core with 10 ms access links (RTT 40 ms).
 *
 *     a (client) ──10ms── core ──10ms── b (server)          (nodes: B, X, Y likewise)
 */
#include "mesh_test.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/server.h"
#include "core/session.h"
#include "core/tls.h"
#include "failmalloc.h"
#include "meshara/meshara.h"
#include "sim/driver.h"
#include "sim/results.h"
#include "sim/scenario.h"

enum {
    ACCESS_MS = 10,
    PORT = 4433,
    EVENT_CAP = 1000 * 1000, /* a run that schedules forever fails instead of hanging */
    PAIR_MSGS = 3,           /* messages each way */
    /* Runs per walk (failmalloc.h: every allocation of our own code, a stride of OpenSSL's
     * and SQLite's). MESH_FM_FULL=1 walks them all. */
    SESSION_MAX_RUNS = 400,
    NODES_MAX_RUNS = 150,
    RES_MAX_RUNS = 400,
};

#define MS(x) ((mesh_time)(x)*MESH_NS_PER_MS)

/* Keep the first error: the outcome of a run. */
static void first_err(int *out, int rc)
{
    if (*out == MESH_OK && rc != MESH_OK)
        *out = rc;
}

/* ---- a world of hosts ----------------------------------------------------------------------- */

enum { MAX_HOSTS = 4 };

typedef struct host {
    sim_host *h;
    sim_driver *d;
    mesh_env env;
    mesh_identity *id;
    mesh_tls_ctx *tls;
} host;

typedef struct world {
    sim_world *w;
    mesh_tls_lib *lib;
    host hs[MAX_HOSTS];
    int n;
} world;

static mesh_time now_of(world *W)
{
    return sim_sched_now(sim_world_sched(W->w));
}

static mesh_addr addr_of(world *W, int i)
{
    return mesh_addr_v4(sim_host_ip(W->hs[i].h), PORT);
}

static void world_free(world *W)
{
    for (int i = 0; i < W->n; i++) {
        mesh_tls_ctx_free(W->hs[i].tls);
        mesh_identity_free(W->hs[i].id);
    }
    mesh_tls_lib_free(W->lib);
    for (int i = 0; i < W->n; i++)
        sim_driver_free(W->hs[i].d);
    sim_world_free(W->w);
    memset(W, 0, sizeof *W);
}

enum { WORLD_LIB = 1, WORLD_CTX = 2 }; /* world_new's tls flags */

/* n hosts, each with an identity; tls WORLD_LIB: and an OpenSSL library context (shared),
 * WORLD_CTX: and a TLS context per host.
 * MESH_OK or the first failure (everything made is freed). */
static int world_new(world *W, int n, uint64_t seed, int tls)
{
    memset(W, 0, sizeof *W);
    int rc = sim_world_new(&W->w, seed, NULL);
    if (rc != MESH_OK)
        return rc;
    sim_sched_set_event_cap(sim_world_sched(W->w), EVENT_CAP);
    sim_link_cfg l = {.latency = MS(ACCESS_MS)};
    static const char *const names[MAX_HOSTS] = {"a", "b", "c", "d"};
    for (int i = 0; i < n && rc == MESH_OK; i++) {
        host *h = &W->hs[i];
        sim_host_cfg hc = {names[i], SIM_IP4(10, 0, 0, 1 + i), NULL, l, l};
        rc = sim_net_add_host(sim_world_net(W->w), &hc, &h->h);
        if (rc == MESH_OK)
            rc = sim_driver_new(&h->d, W->w, h->h);
        if (rc != MESH_OK)
            break;
        W->n = i + 1;
        h->env = sim_driver_env(h->d);
        rc = mesh_identity_generate(&h->id, &h->env);
    }
    if (rc == MESH_OK && tls)
        rc = mesh_tls_lib_new(&W->lib, &W->hs[0].env);
    mesh_tls_cfg tc = {.lib = W->lib};
    for (int i = 0; i < n && rc == MESH_OK && (tls & WORLD_CTX); i++)
        rc = mesh_tls_ctx_new(&W->hs[i].tls, &W->hs[i].env, W->hs[i].id, &tc);
    if (rc != MESH_OK)
        world_free(W);
    return rc;
}

/* ---- subject: a session pair ---------------------------------------------------------------- */

typedef struct end {
    mesh_session *s;
    int connected, closed, reason;
    unsigned sent, got, bad;
    int err; /* first send error */
} end;

typedef struct pair {
    world W;
    mesh_server *srv;
    end cli, srv_end;
    int srv_sessions, srv_failed, srv_fail_reason;
} pair;

static void end_send(end *e)
{
    for (; e->sent < PAIR_MSGS; e->sent++) {
        uint8_t msg[64];
        memset(msg, (int)e->sent, sizeof msg);
        int rc = mesh_session_send_data(e->s, e->sent, msg, sizeof msg);
        if (rc != MESH_OK) {
            first_err(&e->err, rc);
            return;
        }
    }
}

static void end_connected(mesh_session *s, void *ud)
{
    (void)s;
    end *e = ud;
    e->connected = 1;
    end_send(e);
}

static void end_message(mesh_session *s, const mesh_envelope *m, void *ud)
{
    (void)s;
    end *e = ud;
    if (m->body_case != MESHARA__WIRE__ENVELOPE__BODY_DATA || m->data->msg_id != e->got ||
        m->data->payload.len != 64 || m->data->payload.data[63] != (uint8_t)e->got)
        e->bad++;
    e->got++;
}

static void end_closed(mesh_session *s, int reason, void *ud)
{
    (void)s;
    end *e = ud;
    e->closed++;
    e->reason = reason;
}

static const mesh_session_cbs END_CBS = {end_connected, end_message, NULL, end_closed};

static void pair_on_session(mesh_server *srv, mesh_session *s, void *ud)
{
    (void)srv;
    pair *p = ud;
    p->srv_sessions++;
    if (p->srv_end.s) { /* only one client: a second session would be a bug */
        mesh_session_free(s);
        return;
    }
    p->srv_end.s = s;
    p->srv_end.connected = 1;
    mesh_session_set_cbs(s, &END_CBS, &p->srv_end);
    end_send(&p->srv_end);
}

static void pair_on_failed(mesh_server *srv, int reason, const mesh_addr *peer, void *ud)
{
    (void)srv, (void)peer;
    pair *p = ud;
    p->srv_failed++;
    first_err(&p->srv_fail_reason, reason);
}

/* What must hold of one end whatever failed: it ended (no hang), and a clean end means every
 * message arrived (nothing silently lost). Returns the end's outcome. */
static int end_check(const end *e, const end *peer)
{
    int rc = e->err;
    if (!e->s)
        return rc;
    CU_ASSERT_EQUAL(mesh_session_get_state(e->s), MESH_SESSION_CLOSED);
    CU_ASSERT_EQUAL(e->closed, 1);
    CU_ASSERT_EQUAL(e->bad, 0);
    first_err(&rc, e->reason);
    if (e->reason == MESH_OK && peer->s && peer->reason == MESH_OK && peer->err == MESH_OK)
        CU_ASSERT_EQUAL(e->got, PAIR_MSGS);
    return rc;
}

/* Connect, handshake, hello, PAIR_MSGS messages each way, orderly close. */
static int run_pair(void *ud)
{
    (void)ud;
    pair P, *p = &P;
    memset(p, 0, sizeof *p);
    int rc = world_new(&p->W, 2, 1, WORLD_LIB | WORLD_CTX);
    if (rc != MESH_OK)
        return rc;
    world *W = &p->W;
    mesh_server_cbs scbs = {pair_on_session, pair_on_failed};
    mesh_addr la = addr_of(W, 1), ta = la;
    rc = mesh_server_new(&p->srv, &W->hs[1].env, W->hs[1].tls, &la, NULL, &scbs, p);
    if (rc == MESH_OK)
        rc = mesh_session_connect(&p->cli.s, &W->hs[0].env, W->hs[0].tls, &ta, NULL, NULL, &END_CBS,
                                  &p->cli);
    if (rc == MESH_OK) {
        sim_sched *sc = sim_world_sched(W->w);
        /* Past every handshake-stage timeout (10 s) and SYN retransmission, so a session that
         * will connect has connected: then close it. */
        first_err(&rc, sim_sched_run_until(sc, MS(12000)));
        if (p->cli.connected && mesh_session_get_state(p->cli.s) == MESH_SESSION_CONNECTED)
            mesh_session_close(p->cli.s);
        /* Every wait ends by 10 s (connect, handshake, auth timeouts): 30 s is ample. */
        first_err(&rc, sim_sched_run_until(sc, now_of(W) + MS(30000)));
        first_err(&rc, end_check(&p->cli, &p->srv_end));
        first_err(&rc, end_check(&p->srv_end, &p->cli));
        if (!p->srv_end.s)
            first_err(&rc, p->srv_fail_reason);
        CU_ASSERT(p->srv_sessions <= 1);
        if (rc == MESH_OK) /* a clean run got everything across */
            CU_ASSERT(p->cli.connected && p->srv_end.connected);
    }
    mesh_session_free(p->cli.s);
    mesh_session_free(p->srv_end.s);
    mesh_server_free(p->srv);
    world_free(W);
    return rc;
}

/* Outcomes a run may end in besides MESH_OK and MESH_ERR_NOMEM: OpenSSL reports its own
 * allocation failures as errors of the operation (MESH_ERR_TLS, MESH_ERR_CRYPTO); a side
 * that failed closes its stream, which the other sees as MESH_ERR_CLOSED / RESET /
 * TRUNCATED, or, when the failure stopped it from answering, as a timeout. */
static const int NET_ALLOWED[] = {MESH_ERR_TLS,
                                  MESH_ERR_CRYPTO,
                                  MESH_ERR_CLOSED,
                                  MESH_ERR_RESET,
                                  MESH_ERR_TRUNCATED,
                                  MESH_ERR_TIMEOUT,
                                  0};

/* Only when OpenSSL's allocation failed: its Ed25519 verify cannot tell its own
 * out-of-memory from a wrong signature (identity.c). */
static const int FOREIGN_ALLOWED[] = {MESH_ERR_BAD_SIGNATURE, 0};

static void test_session_pair(void)
{
    if (!mesh_fm_selected("session"))
        return;
    mesh_fm_walk_cfg cfg = {
        .allowed = NET_ALLOWED, .foreign_allowed = FOREIGN_ALLOWED, .max_runs = SESSION_MAX_RUNS};
    mesh_fm_report r;
    CU_ASSERT_EQUAL_FATAL(mesh_fm_walk("session", run_pair, NULL, &cfg, &r), 0);
    CU_ASSERT(r.runs > 0);
    CU_ASSERT_EQUAL(r.bad, 0);
}

/* ---- subject: nodes (pool, DHT, peer store) ---------------------------------------------- */

enum {
    NODES = 3,           /* B (bootstrap), X, Y */
    STORE_RECS = 8,      /* records a node's peer store keeps */
    STORE_REC_MAX = 512, /* bytes of one record (a PeerRecord is well under) */
};
enum { B = 0, X = 1, Y = 2 };

/* An in-memory peer store (fixed arrays: test scaffolding that never allocates). */
typedef struct mstore {
    uint8_t rec[STORE_RECS][STORE_REC_MAX];
    size_t len[STORE_RECS];
    uint8_t id[STORE_RECS][MESH_NODE_ID_BYTES];
    size_t n;
} mstore;

static int mstore_load(void *obj, mesh_peer_store_each_fn each, void *ud)
{
    mstore *m = obj;
    for (size_t i = 0; i < m->n; i++)
        each(ud, m->rec[i], m->len[i]);
    return MESH_OK;
}

static int mstore_save(void *obj, const uint8_t node_id[MESH_NODE_ID_BYTES], uint64_t seq,
                       const uint8_t *record, size_t len)
{
    (void)seq;
    mstore *m = obj;
    if (len > STORE_REC_MAX)
        return MESH_ERR_TOO_BIG;
    size_t i = 0;
    while (i < m->n && memcmp(m->id[i], node_id, MESH_NODE_ID_BYTES) != 0)
        i++;
    if (i == STORE_RECS)
        return MESH_ERR_LIMIT;
    memcpy(m->rec[i], record, len);
    memcpy(m->id[i], node_id, MESH_NODE_ID_BYTES);
    m->len[i] = len;
    m->n += i == m->n;
    return MESH_OK;
}

static const mesh_peer_store_ops MSTORE_OPS = {mstore_load, mstore_save};

typedef struct nnode {
    mesh_node *n;
    mesh_node_cfg cfg;
    mstore store;
    int joined_calls, joined_first, joined_status; /* calls, first and last status */
    unsigned msgs;
} nnode;

typedef struct op_rec {
    int started, calls, result;
} op_rec;

typedef struct mesh_fm_nodes {
    world W;
    nnode t[NODES];
    op_rec send, lookup;
} mesh_fm_nodes;

static void n_message(mesh_node *n, const uint8_t from[32], const uint8_t *data, size_t len,
                      void *ud)
{
    (void)n, (void)from;
    nnode *t = ud;
    CU_ASSERT(len == 5 && memcmp(data, "hello", 5) == 0);
    t->msgs++;
}

static void n_joined(mesh_node *n, int status, void *ud)
{
    (void)n;
    nnode *t = ud;
    if (!t->joined_calls++)
        t->joined_first = status;
    t->joined_status = status;
}

static const mesh_node_cbs NODE_CBS = {n_message, NULL, n_joined};

static void send_done(mesh_node *n, int result, void *ud)
{
    (void)n;
    op_rec *o = ud;
    o->calls++;
    o->result = result;
}

static void lookup_done(mesh_node *n, int status, const uint8_t *key, unsigned hops,
                        unsigned queries, void *ud)
{
    (void)n, (void)key, (void)hops, (void)queries;
    op_rec *o = ud;
    o->calls++;
    o->result = status;
}

/* Make and start node i (its cfg filled in). MESH_OK or the first error (nothing kept). */
static int node_up(mesh_fm_nodes *N, int i)
{
    nnode *t = &N->t[i];
    t->joined_calls = 0;
    int rc = mesh_node_new(&t->n, &N->W.hs[i].env, &t->cfg, &NODE_CBS, t);
    if (rc == MESH_OK && (rc = mesh_node_start(t->n)) != MESH_OK) {
        mesh_node_free(t->n);
        t->n = NULL;
    }
    return rc;
}

/* Close the node in order, let the closes finish, free it. */
static void node_down(mesh_fm_nodes *N, int i, mesh_time settle)
{
    if (!N->t[i].n)
        return;
    mesh_node_close(N->t[i].n);
    (void)sim_sched_run_until(sim_world_sched(N->W.w), now_of(&N->W) + settle);
    mesh_node_free(N->t[i].n);
    N->t[i].n = NULL;
}

/* What must hold of a started node: its join ended, once; or it failed and a later retry
 * joined (meshara.h: on_joined). Returns the first outcome. */
static int joined_check(const nnode *t)
{
    CU_ASSERT(t->joined_calls == 1 ||
              (t->joined_calls == 2 && t->joined_first != MESH_OK && t->joined_status == MESH_OK));
    return t->joined_calls ? t->joined_first : MESH_ERR_STATE;
}

/* What must hold of an operation that was started: done called exactly once. */
static int op_check(const op_rec *o)
{
    if (!o->started)
        return MESH_OK;
    CU_ASSERT_EQUAL(o->calls, 1);
    return o->result;
}

/* B is a bootstrap node for X and Y; X sends to Y by key (lookup, connect, pool) and looks
 * Y's id up in the DHT; then X restarts and joins from its peer store alone. */
static int nodes_phase1(mesh_fm_nodes *N)
{
    world *W = &N->W;
    sim_sched *sc = sim_world_sched(W->w);
    int rc = MESH_OK;
    for (int i = 0; i < NODES && rc == MESH_OK; i++)
        rc = node_up(N, i);
    if (rc != MESH_OK)
        return rc;
    first_err(&rc, sim_sched_run_until(sc, MS(3000)));
    const uint8_t *ykey = mesh_identity_pubkey(W->hs[Y].id);
    int r = mesh_node_send(N->t[X].n, ykey, (const uint8_t *)"hello", 5, send_done, &N->send);
    N->send.started = r == MESH_OK;
    first_err(&rc, r);
    r = mesh_node_lookup(N->t[X].n, mesh_identity_node_id(W->hs[Y].id), lookup_done, &N->lookup);
    N->lookup.started = r == MESH_OK;
    first_err(&rc, r);
    /* Past the send timeout (30 s): every operation has ended. */
    first_err(&rc, sim_sched_run_until(sc, now_of(W) + MS(32000)));
    for (int i = 0; i < NODES; i++)
        first_err(&rc, joined_check(&N->t[i]));
    first_err(&rc, op_check(&N->send));
    first_err(&rc, op_check(&N->lookup));
    CU_ASSERT(N->t[Y].msgs <= 1); /* delivered once even if retransmitted */
    if (N->send.started && N->send.result == MESH_OK)
        CU_ASSERT_EQUAL(N->t[Y].msgs, 1); /* acknowledged means delivered */
    return rc;
}

static int run_nodes(void *ud)
{
    (void)ud;
    mesh_fm_nodes *N = calloc(1, sizeof *N); /* ~15 KiB of stores: not on the stack */
    if (!N)
        return MESH_ERR_NOMEM;
    int rc = world_new(&N->W, NODES, 2, WORLD_LIB);
    if (rc != MESH_OK) {
        free(N);
        return rc;
    }
    world *W = &N->W;
    for (int i = 0; i < NODES; i++) {
        mesh_node_cfg *c = &N->t[i].cfg;
        c->identity = W->hs[i].id;
        c->listen = addr_of(W, i);
        c->tls_lib = W->lib;
        c->store = (mesh_peer_store){&MSTORE_OPS, &N->t[i].store};
        if (i != B) {
            c->bootstrap[0].addr = addr_of(W, B);
            memcpy(c->bootstrap[0].key, mesh_identity_pubkey(W->hs[B].id), 32);
            c->n_bootstrap = 1;
        }
    }
    rc = nodes_phase1(N);
    /* X again, from its peer store only (records of B and Y saved in phase 1). */
    node_down(N, X, MS(2000));
    if (rc == MESH_OK) {
        N->t[X].cfg.n_bootstrap = 0;
        N->t[X].cfg.record_seq = 2;
        rc = node_up(N, X);
        if (rc == MESH_OK) {
            first_err(&rc, sim_sched_run_until(sim_world_sched(W->w), now_of(W) + MS(20000)));
            first_err(&rc, joined_check(&N->t[X]));
        }
    }
    for (int i = 0; i < NODES; i++)
        node_down(N, i, MS(1000));
    world_free(W);
    free(N);
    return rc;
}

/* Node outcomes besides the network ones: a send or lookup that found nobody (NOT_FOUND), a
 * join nobody answered (UNREACHABLE), a full pool (LIMIT), a full send queue (AGAIN). */
static const int NODE_ALLOWED[] = {MESH_ERR_TLS,
                                   MESH_ERR_CRYPTO,
                                   MESH_ERR_CLOSED,
                                   MESH_ERR_RESET,
                                   MESH_ERR_TRUNCATED,
                                   MESH_ERR_TIMEOUT,
                                   MESH_ERR_NOT_FOUND,
                                   MESH_ERR_UNREACHABLE,
                                   MESH_ERR_LIMIT,
                                   MESH_ERR_AGAIN,
                                   0};

static void test_nodes(void)
{
    if (!mesh_fm_selected("nodes"))
        return;
    mesh_fm_walk_cfg cfg = {
        .allowed = NODE_ALLOWED, .foreign_allowed = FOREIGN_ALLOWED, .max_runs = NODES_MAX_RUNS};
    mesh_fm_report r;
    CU_ASSERT_EQUAL_FATAL(mesh_fm_walk("nodes", run_nodes, NULL, &cfg, &r), 0);
    CU_ASSERT(r.runs > 0);
    CU_ASSERT_EQUAL(r.bad, 0);
}

/* ---- subject: the scenario loader ------------------------------------------------------------ */

typedef struct scn_input {
    char *data;
    size_t len;
} scn_input;

/* Load, override, check, print the parameters, free. libyaml's own allocations are not
 * counted (a shared library): what fails is the loader's tree, decode and check. */
static int run_scenario(void *ud)
{
    const scn_input *in = ud;
    sim_scenario *s = NULL;
    char err[256] = "";
    int rc = sim_scenario_load_mem(&s, "default.yaml", in->data, in->len, err, sizeof err);
    if (rc != MESH_OK) {
        CU_ASSERT_PTR_NULL(s); /* *out untouched */
        CU_ASSERT(err[0] != '\0');
        return rc;
    }
    rc = sim_scenario_set_arg(s, "network.core.jitter=3ms", err, sizeof err);
    if (rc == MESH_OK)
        rc = sim_scenario_set_arg(s, "groups.eu_peers.count=5", err, sizeof err);
    if (rc == MESH_OK) {
        CU_ASSERT_EQUAL(sim_scenario_check(s, err, sizeof err), MESH_OK);
        CU_ASSERT_STRING_EQUAL(sim_scenario_params_json(s),
                               "{\"network.core.jitter\":\"3ms\",\"groups.eu_peers.count\":\"5\"}");
    } else {
        /* a failed override leaves the scenario as it was: still valid */
        CU_ASSERT_EQUAL(sim_scenario_check(s, err, sizeof err), MESH_OK);
    }
    sim_scenario_free(s);
    return rc;
}

static void test_scenario(void)
{
    if (!mesh_fm_selected("scenario"))
        return;
    const char *dir = getenv("MESH_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/scenarios/default.yaml", dir ? dir : ".");
    FILE *f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    mesh_test_buf b = {0};
    char chunk[4096];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0)
        mesh_test_buf_add(&b, chunk, k);
    fclose(f);
    scn_input in = {(char *)b.b, b.len};
    /* Only MESH_ERR_NOMEM may come of a failed allocation: never "malformed". */
    mesh_fm_walk_cfg cfg = {.max_runs = 0};
    mesh_fm_report r;
    CU_ASSERT_EQUAL_FATAL(mesh_fm_walk("scenario", run_scenario, &in, &cfg, &r), 0);
    CU_ASSERT(r.runs > 0);
    CU_ASSERT_EQUAL(r.bad, 0);
    free(b.b);
}

/* ---- subject: the results recorder (SQLite) ------------------------------------------------- */

typedef struct res_ctx {
    char path[512];
} res_ctx;

/* Rows of each kind one run records. */
enum { RES_NODES = 3, RES_EVENTS = 12, RES_SERIES = 6 };

static int res_rows(sim_results *r)
{
    int rc = MESH_OK;
    for (int i = 0; i < RES_NODES && rc == MESH_OK; i++) {
        sim_results_node_info ni = {.node = (uint32_t)i,
                                    .name = "n",
                                    .group = "g",
                                    .ip = SIM_IP4(10, 0, 0, 1 + i),
                                    .role = "normal",
                                    .node_id = "00ff"};
        rc = sim_results_node(r, &ni);
    }
    for (int i = 0; i < RES_EVENTS && rc == MESH_OK; i++)
        rc = sim_results_eventf(r, MS(i), i % RES_NODES, SIM_RES_EV_MSG_SENT, SIM_RES_NONE,
                                "bytes=%d", 100 * i);
    for (int i = 0; i < RES_SERIES && rc == MESH_OK; i++)
        rc = sim_results_series(r, MS(100 * i), SIM_RES_NONE, "peers", (double)i);
    if (rc == MESH_OK)
        rc = sim_results_summary(r, "delivery_ratio", 0.5);
    return rc;
}

/* Open, record, finish, close; a failure after open discards the file. Whatever failed, no
 * database is left marked 'running'. */
static int run_results(void *ud)
{
    res_ctx *c = ud;
    mesh_fm_pause();
    (void)remove(c->path);
    mesh_fm_resume();
    sim_results_run run = {
        .scenario = "failmalloc", .seed = 1, .parameters = "{}", .duration = MS(1000)};
    sim_results *r = NULL;
    char err[256] = "";
    int rc = sim_results_open(&r, c->path, SIM_RES_CREATE, &run, err, sizeof err);
    if (rc != MESH_OK) {
        CU_ASSERT_PTR_NULL(r);
    } else {
        rc = res_rows(r);
        sim_results_end end = {
            .end_ns = MS(1000), .events_processed = 42, .fingerprint = "ab", .wall_s = -1};
        if (rc == MESH_OK)
            rc = sim_results_finish(r, &end);
        if (rc == MESH_OK) {
            rc = sim_results_close(r);
        } else {
            sim_results_discard(r);
        }
    }
    mesh_fm_pause();
    /* What is left at path is a complete database or nothing ('running' only if the
     * process had died). */
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(c->path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, "SELECT status FROM runs", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW) {
            const char *status = (const char *)sqlite3_column_text(st, 0);
            CU_ASSERT(status && strcmp(status, "running") != 0);
            if (rc == MESH_OK)
                CU_ASSERT_STRING_EQUAL(status, "ok");
        } else {
            CU_ASSERT(rc != MESH_OK); /* a clean run left a complete database */
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    mesh_fm_resume();
    return rc;
}

/* A recorder reports SQLite's out-of-memory as MESH_ERR_IO ("SQLite failed") once open. */
static const int RES_ALLOWED[] = {MESH_ERR_IO, 0};

static void test_results(void)
{
    if (!mesh_fm_selected("results"))
        return;
    char dir[] = "/tmp/mesh_failmalloc_XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    res_ctx c;
    snprintf(c.path, sizeof c.path, "%s/results.db", dir);
    mesh_fm_walk_cfg cfg = {.allowed = RES_ALLOWED, .max_runs = RES_MAX_RUNS};
    mesh_fm_report r;
    CU_ASSERT_EQUAL_FATAL(mesh_fm_walk("results", run_results, &c, &cfg, &r), 0);
    CU_ASSERT(r.runs > 0);
    CU_ASSERT_EQUAL(r.bad, 0);
    (void)remove(c.path);
    (void)rmdir(dir);
}

static CU_TestInfo tests[] = {
    {"session pair: connect, hello, messages both ways, close", test_session_pair},
    {"nodes: bootstrap, send by key, DHT lookup, rejoin from the peer store", test_nodes},
    {"scenario loader: load, override, check", test_scenario},
    {"results recorder: open, rows, finish, close", test_results},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"failmalloc", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    if (mesh_fm_init() != 0)
        return 1;
    return mesh_test_main(suites);
}
