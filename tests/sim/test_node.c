/* test_node.c — the Meshara node (meshara.h) in the simulator: joining through bootstrap
 * nodes, peer-addressed messaging, the connection pool's bounds, eviction and simultaneous
 * open, impostors, restarts from a peer store, hostile peers, mDNS on a LAN.
 *
 * Topology (unless a test says otherwise): every host hangs off the core with a 10 ms access
 * link each way, so any two hosts are 20 ms apart one way (RTT 40 ms):
 *
 *     host0 ──10ms── core ──10ms── host1        (hostN likewise; "rng" feeds the shared
 *                      │                          TLS library context of the world)
 *                    ...
 */
#include "mesh_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/node.h"
#include "core/peer.h"
#include "core/session.h"
#include "core/tls.h"
#include "meshara/meshara.h"
#include "sim/driver.h"

enum {
    ACCESS_MS = 10,
    PORT = 7000,
    MAX_NODES = 256,
    EVENT_CAP = 400 * 1000 * 1000,
    MSG_MAX = 256,
    STORE_MAX = 64,
};

#define MS(x) ((mesh_time)(x)*MESH_NS_PER_MS)
#define SEC(x) ((mesh_time)(x)*MESH_NS_PER_S)

/* ---- world ------------------------------------------------------------------------------- */

typedef struct tworld tworld;

typedef struct tnode {
    tworld *W;
    int idx;
    sim_host *h;
    sim_driver *d;
    mesh_env env;
    mesh_identity *id;
    mesh_node *n;
    mesh_node_cfg cfg;
    /* what the callbacks saw */
    int joined_calls, joined_status;
    mesh_time joined_at;
    int msgs;
    uint8_t last_from[32];
    char last_msg[MSG_MAX];
    int peers_up, peers_down;
} tnode;

struct tworld {
    sim_world *w;
    sim_host *rng_host;
    sim_driver *rng_driver;
    mesh_env rng_env;
    mesh_tls_lib *lib;
    sim_lan *lan;
    tnode t[MAX_NODES];
    int n;
};

static mesh_time now_of(tworld *W)
{
    return sim_sched_now(sim_world_sched(W->w));
}

static void run_until(tworld *W, mesh_time t)
{
    CU_ASSERT_EQUAL(sim_sched_run_until(sim_world_sched(W->w), t), MESH_OK);
}

static void run_for(tworld *W, mesh_time d)
{
    run_until(W, now_of(W) + d);
}

static mesh_addr addr_of(tworld *W, int i)
{
    return mesh_addr_v4(sim_host_ip(W->t[i].h), PORT);
}

static const uint8_t *key_of(tworld *W, int i)
{
    return mesh_identity_pubkey(W->t[i].id);
}

/* n hosts; on_lan: all on one LAN with 1 ms links and mDNS enabled. */
static void world_init(tworld *W, int n, uint64_t seed, int on_lan)
{
    memset(W, 0, sizeof *W);
    CU_ASSERT_FATAL(n <= MAX_NODES);
    W->n = n;
    CU_ASSERT_EQUAL_FATAL(sim_world_new(&W->w, seed, NULL), MESH_OK);
    sim_sched_set_event_cap(sim_world_sched(W->w), EVENT_CAP);
    sim_net *net = sim_world_net(W->w);
    sim_link_cfg l = {.latency = MS(on_lan ? 1 : ACCESS_MS)};
    if (on_lan) {
        sim_lan_cfg lc = {.name = "lan", .public_ip = SIM_IP4(198, 51, 100, 1)};
        CU_ASSERT_EQUAL_FATAL(sim_net_add_lan(net, &lc, &W->lan), MESH_OK);
    }
    sim_host_cfg rc = {"rng", SIM_IP4(10, 9, 9, 9), NULL, l, l};
    CU_ASSERT_EQUAL_FATAL(sim_net_add_host(net, &rc, &W->rng_host), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_driver_new(&W->rng_driver, W->w, W->rng_host), MESH_OK);
    W->rng_env = sim_driver_env(W->rng_driver);
    CU_ASSERT_EQUAL_FATAL(mesh_tls_lib_new(&W->lib, &W->rng_env), MESH_OK);
    for (int i = 0; i < n; i++) {
        tnode *t = &W->t[i];
        char name[16];
        snprintf(name, sizeof name, "n%d", i);
        sim_host_cfg hc = {name, SIM_IP4(10, 0, i / 200, 1 + i % 200), W->lan, l, l};
        CU_ASSERT_EQUAL_FATAL(sim_net_add_host(net, &hc, &t->h), MESH_OK);
        CU_ASSERT_EQUAL_FATAL(sim_driver_new(&t->d, W->w, t->h), MESH_OK);
        if (on_lan)
            CU_ASSERT_EQUAL_FATAL(sim_driver_enable_mdns(t->d), MESH_OK);
        t->env = sim_driver_env(t->d);
        CU_ASSERT_EQUAL_FATAL(mesh_identity_generate(&t->id, &t->env), MESH_OK);
        t->W = W;
        t->idx = i;
        mesh_node_cfg *c = &t->cfg;
        c->identity = t->id;
        c->listen = addr_of(W, i);
        c->tls_lib = W->lib;
        c->mdns = on_lan;
    }
}

static void world_free(tworld *W)
{
    for (int i = 0; i < W->n; i++)
        mesh_node_free(W->t[i].n);
    mesh_tls_lib_free(W->lib);
    for (int i = 0; i < W->n; i++) {
        sim_driver_free(W->t[i].d);
        mesh_identity_free(W->t[i].id);
    }
    sim_driver_free(W->rng_driver);
    sim_world_free(W->w);
}

static void add_bootstrap(tworld *W, int i, int boot, const uint8_t *key)
{
    mesh_node_cfg *c = &W->t[i].cfg;
    c->bootstrap[c->n_bootstrap].addr = addr_of(W, boot);
    memcpy(c->bootstrap[c->n_bootstrap].key, key ? key : key_of(W, boot), 32);
    c->n_bootstrap++;
}

/* ---- callbacks ---------------------------------------------------------------------------- */

static void on_message(mesh_node *n, const uint8_t from[32], const uint8_t *data, size_t len,
                       void *ud)
{
    (void)n;
    tnode *t = ud;
    t->msgs++;
    memcpy(t->last_from, from, 32);
    size_t k = len < MSG_MAX - 1 ? len : MSG_MAX - 1;
    memcpy(t->last_msg, data, k);
    t->last_msg[k] = '\0';
}

static void on_peer(mesh_node *n, const uint8_t key[32], int connected, int reason, void *ud)
{
    (void)n, (void)key, (void)reason;
    tnode *t = ud;
    if (connected)
        t->peers_up++;
    else
        t->peers_down++;
}

static void on_joined(mesh_node *n, int status, void *ud)
{
    (void)n;
    tnode *t = ud;
    t->joined_calls++;
    t->joined_status = status;
    t->joined_at = now_of(t->W);
}

static const mesh_node_cbs CBS = {on_message, on_peer, on_joined};

static void node_start(tworld *W, int i)
{
    tnode *t = &W->t[i];
    CU_ASSERT_EQUAL_FATAL(mesh_node_new(&t->n, &t->env, &t->cfg, &CBS, t), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_node_start(t->n), MESH_OK);
}

static void node_stop(tworld *W, int i)
{
    mesh_node_free(W->t[i].n);
    W->t[i].n = NULL;
}

/* A completion record for sends and queries. */
typedef struct done_rec {
    int calls, result;
    mesh_time at;
    tworld *W;
    mesh_node_answer ans; /* queries: status, rtt, npeers (pointers not kept) */
    char payload[64];
} done_rec;

static void send_done(mesh_node *n, int result, void *ud)
{
    (void)n;
    done_rec *r = ud;
    r->calls++;
    r->result = result;
    r->at = now_of(r->W);
}

static void query_done(mesh_node *n, const mesh_node_answer *a, void *ud)
{
    (void)n;
    done_rec *r = ud;
    r->calls++;
    r->result = a->status;
    r->at = now_of(r->W);
    r->ans = *a;
    size_t k = a->payload_len < sizeof r->payload - 1 ? a->payload_len : sizeof r->payload - 1;
    if (k)
        memcpy(r->payload, a->payload, k);
    r->payload[k] = '\0';
}

static int send_text(tworld *W, int from, int to, const char *text, done_rec *r)
{
    memset(r, 0, sizeof *r);
    r->W = W;
    return mesh_node_send(W->t[from].n, key_of(W, to), (const uint8_t *)text, strlen(text),
                          send_done, r);
}

static mesh_node_stats stats_of(tworld *W, int i)
{
    mesh_node_stats st;
    mesh_node_get_stats(W->t[i].n, &st);
    return st;
}

static mesh_node_peer_stats peer_stats(tworld *W, int i, int j, int *rc)
{
    mesh_node_peer_stats ps;
    memset(&ps, 0, sizeof ps);
    *rc = mesh_node_get_peer_stats(W->t[i].n, key_of(W, j), &ps);
    return ps;
}

/* ---- tests: joining and messaging ---------------------------------------------------------- */

/* B bootstraps X and Y; X sends to Y by key alone: lookup (or the DHT's record), connect with
 * Y's key pinned, AppData, AppAck. In profile (enum mesh_profile), X and Y join at rtts
 * round trips (access links of 20 ms each way). */
static void send_through_bootstrap(int profile, int rtts)
{
    tworld W;
    world_init(&W, 3, 11, 0);
    enum { B = 0, X = 1, Y = 2 };
    for (int i = B; i <= Y; i++)
        W.t[i].cfg.profile = profile;
    add_bootstrap(&W, X, B, NULL);
    add_bootstrap(&W, Y, B, NULL);
    node_start(&W, B);
    node_start(&W, X);
    node_start(&W, Y);
    run_for(&W, SEC(5));
    CU_ASSERT_EQUAL(W.t[B].joined_calls, 1);
    CU_ASSERT_EQUAL(W.t[B].joined_status, MESH_OK); /* nothing to join: the first node */
    CU_ASSERT_EQUAL(W.t[B].joined_at, 0);
    for (int i = X; i <= Y; i++) {
        CU_ASSERT_EQUAL(W.t[i].joined_calls, 1);
        CU_ASSERT_EQUAL(W.t[i].joined_status, MESH_OK);
        CU_ASSERT(stats_of(&W, i).joined);
        /* joined when the bootstrap node answers: seed: connect + TLS with the server's
         * 0.5-RTT hello (2 RTT) + GET_PEERS (1 RTT); web: the server's hello answers the
         * client's, after its Finished (3 RTT) + GET_PEERS. The self lookup goes on
         * afterwards. */
        CU_ASSERT_EQUAL(W.t[i].joined_at, MS(rtts * 40));
        mesh_node_bootstrap_stats bs;
        CU_ASSERT_EQUAL(mesh_node_get_bootstrap_stats(W.t[i].n, 0, &bs), MESH_OK);
        CU_ASSERT_EQUAL(bs.answers, 1);
        CU_ASSERT_EQUAL(bs.score, MESH_BOOTSTRAP_SCORE_OK);
        CU_ASSERT_EQUAL(bs.last_result, MESH_OK);
    }
    /* The bootstrap node learnt both records from their announces. */
    CU_ASSERT_EQUAL(stats_of(&W, B).dht_entries, 2);
    CU_ASSERT(stats_of(&W, B).records_accepted >= 2);

    done_rec r;
    CU_ASSERT_EQUAL(send_text(&W, X, Y, "hello Y", &r), MESH_OK);
    CU_ASSERT_EQUAL(r.calls, 0); /* never from inside the call */
    run_for(&W, SEC(5));
    CU_ASSERT_EQUAL(r.calls, 1);
    CU_ASSERT_EQUAL(r.result, MESH_OK);
    CU_ASSERT_EQUAL(W.t[Y].msgs, 1);
    CU_ASSERT_STRING_EQUAL(W.t[Y].last_msg, "hello Y");
    CU_ASSERT_EQUAL(memcmp(W.t[Y].last_from, key_of(&W, X), 32), 0);
    int rc;
    mesh_node_peer_stats ps = peer_stats(&W, X, Y, &rc);
    CU_ASSERT_EQUAL(rc, MESH_OK);
    CU_ASSERT(ps.connected && ps.outbound && ps.sessions == 1);
    CU_ASSERT(ps.msgs_sent >= 1); /* the message, and any DHT query X sent Y */

    /* Over the session now up: one RTT from send to acknowledgement. */
    mesh_time t0 = now_of(&W);
    CU_ASSERT_EQUAL(send_text(&W, X, Y, "again", &r), MESH_OK);
    run_for(&W, SEC(1));
    CU_ASSERT_EQUAL(r.result, MESH_OK);
    CU_ASSERT_EQUAL(r.at - t0, MS(40));
    CU_ASSERT_EQUAL(W.t[Y].msgs, 2);

    /* And the other way, over the same session (Y is its server side). */
    CU_ASSERT_EQUAL(send_text(&W, Y, X, "hi X", &r), MESH_OK);
    run_for(&W, SEC(1));
    CU_ASSERT_EQUAL(r.result, MESH_OK);
    CU_ASSERT_STRING_EQUAL(W.t[X].last_msg, "hi X");
    ps = peer_stats(&W, Y, X, &rc);
    CU_ASSERT(rc == MESH_OK && !ps.outbound && ps.sessions == 1);

    /* A query: PING echoes its payload, in one RTT. */
    done_rec q = {.W = &W};
    t0 = now_of(&W);
    CU_ASSERT_EQUAL(mesh_node_query(W.t[X].n, key_of(&W, Y), MESH_QUERY_PING,
                                    (const uint8_t *)"echo me", 7, 0, query_done, &q),
                    MESH_OK);
    run_for(&W, SEC(1));
    CU_ASSERT_EQUAL(q.calls, 1);
    CU_ASSERT_EQUAL(q.result, MESH_OK);
    CU_ASSERT_STRING_EQUAL(q.payload, "echo me");
    CU_ASSERT_EQUAL(q.ans.rtt, MS(40));
    /* GET_PEERS from the bootstrap node: it knows Y (X's own record is never sent back). */
    memset(&q, 0, sizeof q);
    q.W = &W;
    CU_ASSERT_EQUAL(
        mesh_node_query(W.t[X].n, key_of(&W, B), MESH_QUERY_GET_PEERS, NULL, 0, 0, query_done, &q),
        MESH_OK);
    run_for(&W, SEC(1));
    CU_ASSERT_EQUAL(q.result, MESH_OK);
    CU_ASSERT_EQUAL(q.ans.npeers, 1);

    /* Refusals made at once, with no callback. */
    CU_ASSERT_EQUAL(send_text(&W, X, X, "self", &r), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_node_send(W.t[X].n, key_of(&W, Y), NULL, 5, send_done, &r),
                    MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_node_query(W.t[X].n, key_of(&W, Y), MESH_QUERY_FIND_NODE,
                                    (const uint8_t *)"short", 5, 0, query_done, &q),
                    MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_node_query(W.t[X].n, key_of(&W, Y), 99, NULL, 0, 0, query_done, &q),
                    MESH_ERR_INVAL);
    run_for(&W, SEC(1));
    CU_ASSERT_EQUAL(r.calls, 0);
    world_free(&W);
}

static void test_send_through_bootstrap(void)
{
    send_through_bootstrap(MESH_PROFILE_SEED, 3);
}

static void test_send_through_bootstrap_web(void)
{
    send_through_bootstrap(MESH_PROFILE_WEB, 4);
}

/* The same exchange with messages carried over HTTP/2 (ALPN h2) and a custom SNI. */
static void test_send_http2(void)
{
    tworld W;
    world_init(&W, 2, 21, 0);
    for (int i = 0; i < 2; i++) {
        W.t[i].cfg.http2 = 1;
        W.t[i].cfg.sni = "cdn.example.org";
    }
    add_bootstrap(&W, 1, 0, NULL);
    node_start(&W, 0);
    node_start(&W, 1);
    run_for(&W, SEC(3));
    CU_ASSERT_EQUAL(W.t[1].joined_status, MESH_OK);
    done_rec r;
    CU_ASSERT_EQUAL(send_text(&W, 1, 0, "over h2", &r), MESH_OK);
    run_for(&W, SEC(1));
    CU_ASSERT_EQUAL(r.result, MESH_OK);
    CU_ASSERT_STRING_EQUAL(W.t[0].last_msg, "over h2");
    CU_ASSERT_EQUAL(send_text(&W, 0, 1, "back over h2", &r), MESH_OK);
    run_for(&W, SEC(1));
    CU_ASSERT_EQUAL(r.result, MESH_OK);
    CU_ASSERT_STRING_EQUAL(W.t[1].last_msg, "back over h2");
    world_free(&W);
}

static void test_unknown_key_not_found(void)
{
    tworld W;
    world_init(&W, 4, 12, 0);
    for (int i = 1; i < 4; i++)
        add_bootstrap(&W, i, 0, NULL);
    for (int i = 0; i < 4; i++)
        node_start(&W, i);
    run_for(&W, SEC(5));
    uint8_t nobody[32];
    memset(nobody, 0x5a, sizeof nobody);
    done_rec r = {.W = &W};
    CU_ASSERT_EQUAL(mesh_node_send(W.t[1].n, nobody, (const uint8_t *)"x", 1, send_done, &r),
                    MESH_OK);
    run_for(&W, SEC(20));
    CU_ASSERT_EQUAL(r.calls, 1);
    CU_ASSERT_EQUAL(r.result, MESH_ERR_NOT_FOUND);
    CU_ASSERT(stats_of(&W, 1).lookups >= 2); /* the join's own, then this one */
    CU_ASSERT_EQUAL(stats_of(&W, 1).msgs_failed, 1);
    /* A lookup of a node that exists finds it. */
    world_free(&W);
}

/* ---- tests: impostors and join failures ---------------------------------------------------- */

/* I sits at the address configured for bootstrap node K (which is not running) and proves
 * its own key, not K's. */
static void test_impostor_bootstrap(void)
{
    tworld W;
    world_init(&W, 5, 13, 0);
    enum { B = 0, I = 1, X = 2, Z = 3, K = 4 };
    add_bootstrap(&W, X, I, key_of(&W, K)); /* "K's key at I's address" */
    add_bootstrap(&W, X, B, NULL);
    add_bootstrap(&W, Z, I, key_of(&W, K)); /* Z knows only the impostor */
    for (int i = 0; i < 4; i++)
        node_start(&W, i);
    run_for(&W, SEC(10));

    CU_ASSERT_EQUAL(W.t[X].joined_calls, 1);
    CU_ASSERT_EQUAL(W.t[X].joined_status, MESH_OK); /* through the real one */
    mesh_node_bootstrap_stats bs;
    CU_ASSERT_EQUAL(mesh_node_get_bootstrap_stats(W.t[X].n, 0, &bs), MESH_OK);
    CU_ASSERT_EQUAL(bs.last_result, MESH_ERR_KEY_MISMATCH);
    CU_ASSERT_EQUAL(bs.score, MESH_BOOTSTRAP_SCORE_IMPOSTOR);
    CU_ASSERT_EQUAL(bs.failures, 1);
    CU_ASSERT_EQUAL(mesh_node_get_bootstrap_stats(W.t[X].n, 1, &bs), MESH_OK);
    CU_ASSERT_EQUAL(bs.last_result, MESH_OK);
    CU_ASSERT_EQUAL(mesh_node_get_bootstrap_stats(W.t[X].n, 2, &bs), MESH_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(stats_of(&W, X).key_mismatches, 1);
    /* Nothing of the impostor entered X's pool or DHT. */
    int rc;
    (void)peer_stats(&W, X, I, &rc);
    CU_ASSERT_EQUAL(rc, MESH_ERR_NOT_FOUND);

    CU_ASSERT_EQUAL(W.t[Z].joined_calls, 1);
    CU_ASSERT_EQUAL(W.t[Z].joined_status, MESH_ERR_UNREACHABLE);
    CU_ASSERT(!stats_of(&W, Z).joined);
    world_free(&W);
}

/* ---- tests: the pool ---------------------------------------------------------------------- */

typedef struct sampler {
    tworld *W;
    int node;
    mesh_timer *t;
    size_t max_peers, max_sessions;
    unsigned samples;
} sampler;

static void sample(mesh_timer *t, void *ud)
{
    sampler *s = ud;
    tnode *x = &s->W->t[s->node];
    mesh_node_stats st;
    mesh_node_get_stats(x->n, &st);
    if (st.peers > s->max_peers)
        s->max_peers = st.peers;
    if (st.sessions > s->max_sessions)
        s->max_sessions = st.sessions;
    s->samples++;
    x->env.ops->timer_set(x->env.obj, t, now_of(s->W) + MS(5));
}

static void sampler_start(sampler *s, tworld *W, int node)
{
    memset(s, 0, sizeof *s);
    s->W = W;
    s->node = node;
    tnode *x = &W->t[node];
    s->t = x->env.ops->timer_new(x->env.obj, sample, s);
    x->env.ops->timer_set(x->env.obj, s->t, now_of(W));
}

static void sampler_stop(sampler *s)
{
    tnode *x = &s->W->t[s->node];
    x->env.ops->timer_free(x->env.obj, s->t);
}

/* X with max 4 peers, 20 candidates (5x): all of them connect to X at once, then X sends to
 * each in turn. The bound holds at every 5 ms sample; every send succeeds because a peer
 * whose exchange completed leaves its grace period and can be evicted. */
enum { POOL_MAX = 4, CANDIDATES = 5 * POOL_MAX };

typedef struct seq_sender {
    tworld *W;
    int from, next, ok, failed, limit;
    done_rec r;
} seq_sender;

static void seq_send_next(seq_sender *ss);

static void seq_done(mesh_node *n, int result, void *ud)
{
    (void)n;
    seq_sender *ss = ud;
    if (result == MESH_OK)
        ss->ok++;
    else
        ss->failed++;
    seq_send_next(ss);
}

static void seq_send_next(seq_sender *ss)
{
    while (ss->next <= CANDIDATES) {
        int to = ss->next++;
        int rc = mesh_node_send(ss->W->t[ss->from].n, key_of(ss->W, to), (const uint8_t *)"m", 1,
                                seq_done, ss);
        if (rc == MESH_OK)
            return;
        if (rc == MESH_ERR_LIMIT)
            ss->limit++;
        else
            ss->failed++;
    }
}

static void test_pool_bounds(void)
{
    tworld W;
    world_init(&W, CANDIDATES + 1, 14, 0);
    enum { X = 0 };
    W.t[X].cfg.pool_max = POOL_MAX;
    W.t[X].cfg.pool_min = 2;
    W.t[X].cfg.grace = SEC(1);
    for (int i = 0; i <= CANDIDATES; i++)
        node_start(&W, i);
    sampler s;
    sampler_start(&s, &W, X);
    for (int i = 1; i <= CANDIDATES; i++)
        CU_ASSERT_EQUAL(mesh_node_connect(W.t[i].n, &W.t[X].cfg.listen, key_of(&W, X), 0), MESH_OK);
    run_for(&W, SEC(3));
    mesh_node_stats st = stats_of(&W, X);
    CU_ASSERT_EQUAL(s.max_peers, POOL_MAX);
    CU_ASSERT_EQUAL(st.peers, POOL_MAX);
    /* All 20 arrived within the grace period of the first four: 16 refused. */
    CU_ASSERT_EQUAL(st.accepted, POOL_MAX);
    CU_ASSERT_EQUAL(st.refused_full, CANDIDATES - POOL_MAX);
    /* Every candidate announced its record before being refused or kept? Refused sessions
     * are closed unread: only the kept ones are known. */
    CU_ASSERT(st.dht_entries >= POOL_MAX);

    /* X learns the others' records from a node that knows them all. */
    for (int i = 1; i <= CANDIDATES; i++) {
        const mesh_peer_record *r = mesh_node_record(W.t[i].n);
        int rc = mesh_dht_add(mesh_node_dht(W.t[X].n), r, 0);
        CU_ASSERT(rc == MESH_OK || rc == MESH_ERR_EXISTS || rc == MESH_ERR_LIMIT);
    }
    seq_sender ss = {.W = &W, .from = X, .next = 1};
    seq_send_next(&ss);
    run_for(&W, SEC(60));
    CU_ASSERT_EQUAL(ss.ok, CANDIDATES);
    CU_ASSERT_EQUAL(ss.failed, 0);
    CU_ASSERT_EQUAL(ss.limit, 0);
    st = stats_of(&W, X);
    CU_ASSERT(st.evicted >= CANDIDATES - POOL_MAX);
    CU_ASSERT_EQUAL(s.max_peers, POOL_MAX);
    CU_ASSERT(st.peers <= POOL_MAX);
    CU_ASSERT(s.samples > 1000);
    sampler_stop(&s);
    world_free(&W);
}

/* X (max 3, grace 2 s) keeps a pinned peer P and a fresh peer R; the LRU peer Q past its
 * grace goes; when only pinned and fresh peers are left, a new one is refused. */
static void test_eviction_spares_pinned_and_new(void)
{
    tworld W;
    world_init(&W, 6, 15, 0);
    enum { X = 0, P = 1, Q = 2, R = 3, S = 4, T = 5 };
    W.t[X].cfg.pool_max = 3;
    W.t[X].cfg.pool_min = 1;
    W.t[X].cfg.grace = SEC(2);
    for (int i = 0; i < 6; i++)
        node_start(&W, i);
    mesh_node *x = W.t[X].n;
    mesh_addr a;
    a = addr_of(&W, P);
    CU_ASSERT_EQUAL(mesh_node_connect(x, &a, key_of(&W, P), 1), MESH_OK);
    run_for(&W, MS(10));
    a = addr_of(&W, Q);
    CU_ASSERT_EQUAL(mesh_node_connect(x, &a, key_of(&W, Q), 0), MESH_OK);
    run_until(&W, SEC(3)); /* P and Q past their grace; P is the least recently used */
    a = addr_of(&W, R);
    CU_ASSERT_EQUAL(mesh_node_connect(x, &a, key_of(&W, R), 0), MESH_OK);
    run_for(&W, MS(500));
    CU_ASSERT_EQUAL(stats_of(&W, X).peers, 3);
    a = addr_of(&W, S);
    CU_ASSERT_EQUAL(mesh_node_connect(x, &a, key_of(&W, S), 0), MESH_OK); /* Q goes */
    run_for(&W, MS(500));
    a = addr_of(&W, T);
    CU_ASSERT_EQUAL(mesh_node_connect(x, &a, key_of(&W, T), 0), MESH_ERR_LIMIT);
    run_for(&W, MS(500));
    int rc;
    mesh_node_peer_stats ps = peer_stats(&W, X, P, &rc);
    CU_ASSERT(rc == MESH_OK && ps.pinned && ps.connected);
    (void)peer_stats(&W, X, Q, &rc);
    CU_ASSERT_EQUAL(rc, MESH_ERR_NOT_FOUND);
    ps = peer_stats(&W, X, R, &rc);
    CU_ASSERT(rc == MESH_OK && ps.connected);
    ps = peer_stats(&W, X, S, &rc);
    CU_ASSERT(rc == MESH_OK && ps.connected);
    (void)peer_stats(&W, X, T, &rc);
    CU_ASSERT_EQUAL(rc, MESH_ERR_NOT_FOUND);
    mesh_node_stats st = stats_of(&W, X);
    CU_ASSERT_EQUAL(st.evicted, 1);
    CU_ASSERT_EQUAL(st.peers, 3);
    CU_ASSERT_EQUAL(st.pinned, 1);
    /* Q saw X close the session in order; X reported Q gone. */
    CU_ASSERT_EQUAL(W.t[X].peers_down, 1);
    CU_ASSERT_EQUAL(W.t[Q].peers_down, 1);
    /* Once R's grace is over (2 s after it came up), T fits: R is evicted, not P. */
    run_for(&W, SEC(2));
    CU_ASSERT_EQUAL(mesh_node_connect(x, &a, key_of(&W, T), 0), MESH_OK);
    run_for(&W, MS(500));
    (void)peer_stats(&W, X, R, &rc);
    CU_ASSERT_EQUAL(rc, MESH_ERR_NOT_FOUND);
    ps = peer_stats(&W, X, P, &rc);
    CU_ASSERT(rc == MESH_OK && ps.connected);
    world_free(&W);
}

/* A and B connect to each other at the same instant and each sends at once: both messages
 * arrive, and after the duplicate's linger exactly one session remains, the same one on both
 * sides (the one whose client has the smaller node id). Several seeds: both id orders. */
static void test_simultaneous_open(void)
{
    int saw_a_wins = 0, saw_b_wins = 0;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        tworld W;
        world_init(&W, 2, 100 + seed, 0);
        node_start(&W, 0);
        node_start(&W, 1);
        mesh_addr a0 = addr_of(&W, 0), a1 = addr_of(&W, 1);
        CU_ASSERT_EQUAL(mesh_node_connect(W.t[0].n, &a1, key_of(&W, 1), 0), MESH_OK);
        CU_ASSERT_EQUAL(mesh_node_connect(W.t[1].n, &a0, key_of(&W, 0), 0), MESH_OK);
        done_rec r0, r1;
        CU_ASSERT_EQUAL(send_text(&W, 0, 1, "from 0", &r0), MESH_OK);
        CU_ASSERT_EQUAL(send_text(&W, 1, 0, "from 1", &r1), MESH_OK);
        run_for(&W, MS(300));
        CU_ASSERT_EQUAL(r0.result, MESH_OK);
        CU_ASSERT_EQUAL(r1.result, MESH_OK);
        CU_ASSERT_EQUAL(W.t[0].msgs, 1);
        CU_ASSERT_EQUAL(W.t[1].msgs, 1);
        run_for(&W, MS(MESH_POOL_DUP_LINGER_MS) + SEC(1));
        int rc0, rc1;
        mesh_node_peer_stats p0 = peer_stats(&W, 0, 1, &rc0);
        mesh_node_peer_stats p1 = peer_stats(&W, 1, 0, &rc1);
        CU_ASSERT(rc0 == MESH_OK && rc1 == MESH_OK);
        CU_ASSERT_EQUAL(p0.sessions, 1);
        CU_ASSERT_EQUAL(p1.sessions, 1);
        CU_ASSERT(p0.connected && p1.connected);
        CU_ASSERT_NOT_EQUAL(p0.outbound, p1.outbound); /* the same session seen from both ends */
        CU_ASSERT_EQUAL(stats_of(&W, 0).sessions, 1);
        CU_ASSERT_EQUAL(stats_of(&W, 1).sessions, 1);
        /* The winner's client has the smaller node id. */
        int zero_smaller = memcmp(mesh_node_id(W.t[0].n), mesh_node_id(W.t[1].n), 32) < 0;
        CU_ASSERT_EQUAL(p0.outbound, zero_smaller);
        if (zero_smaller)
            saw_a_wins = 1;
        else
            saw_b_wins = 1;
        /* Still usable, both ways. */
        CU_ASSERT_EQUAL(send_text(&W, 0, 1, "after", &r0), MESH_OK);
        CU_ASSERT_EQUAL(send_text(&W, 1, 0, "after", &r1), MESH_OK);
        run_for(&W, SEC(1));
        CU_ASSERT_EQUAL(r0.result, MESH_OK);
        CU_ASSERT_EQUAL(r1.result, MESH_OK);
        CU_ASSERT_EQUAL(W.t[0].msgs + W.t[1].msgs, 4);
        CU_ASSERT_EQUAL(stats_of(&W, 0).msgs_duplicate + stats_of(&W, 1).msgs_duplicate, 0);
        world_free(&W);
    }
    CU_ASSERT(saw_a_wins && saw_b_wins);
}

/* ---- tests: restarts from the peer store ------------------------------------------------- */

typedef struct mem_store {
    uint8_t ids[STORE_MAX][32];
    uint8_t *recs[STORE_MAX];
    size_t lens[STORE_MAX];
    int n;
    int saves, loads;
} mem_store;

static int store_load(void *obj, mesh_peer_store_each_fn each, void *ud)
{
    mem_store *s = obj;
    s->loads++;
    for (int i = 0; i < s->n; i++)
        each(ud, s->recs[i], s->lens[i]);
    return MESH_OK;
}

static int store_put(mem_store *s, const uint8_t id[32], const uint8_t *rec, size_t len)
{
    int i = 0;
    while (i < s->n && memcmp(s->ids[i], id, 32) != 0)
        i++;
    if (i == STORE_MAX)
        return MESH_ERR_LIMIT;
    if (i == s->n)
        s->n++;
    else
        free(s->recs[i]);
    memcpy(s->ids[i], id, 32);
    s->recs[i] = malloc(len ? len : 1);
    memcpy(s->recs[i], rec, len);
    s->lens[i] = len;
    return MESH_OK;
}

static int store_save(void *obj, const uint8_t id[32], uint64_t seq, const uint8_t *rec, size_t len)
{
    (void)seq;
    mem_store *s = obj;
    s->saves++;
    return store_put(s, id, rec, len);
}

static const mesh_peer_store_ops STORE_OPS = {store_load, store_save};

static void store_free(mem_store *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->recs[i]);
}

static void test_restart_from_store(void)
{
    tworld W;
    world_init(&W, 4, 16, 0);
    enum { B = 0, X = 1, Y = 2, Z = 3 };
    mem_store store;
    memset(&store, 0, sizeof store);
    W.t[X].cfg.store = (mesh_peer_store){&STORE_OPS, &store};
    for (int i = X; i <= Z; i++)
        add_bootstrap(&W, i, B, NULL);
    for (int i = 0; i < 4; i++)
        node_start(&W, i);
    run_for(&W, SEC(5));
    CU_ASSERT_EQUAL(W.t[X].joined_status, MESH_OK);
    CU_ASSERT_EQUAL(store.loads, 1);
    CU_ASSERT(store.n >= 1); /* at least the bootstrap node's record */
    done_rec r;
    CU_ASSERT_EQUAL(send_text(&W, X, Y, "before", &r), MESH_OK);
    run_for(&W, SEC(5));
    CU_ASSERT_EQUAL(r.result, MESH_OK);
    int before = store.n;
    CU_ASSERT(before >= 2); /* B and Y at least */

    /* X restarts with no bootstrap node at all, and the bootstrap node is gone too. */
    node_stop(&W, X);
    node_stop(&W, B);
    sim_host_set_up(W.t[B].h, 0);
    run_for(&W, SEC(1));
    W.t[X].cfg.n_bootstrap = 0;
    W.t[X].cfg.record_seq = 2;
    W.t[X].joined_calls = 0;
    node_start(&W, X);
    run_for(&W, SEC(15));
    CU_ASSERT_EQUAL(store.loads, 2);
    CU_ASSERT_EQUAL(W.t[X].joined_calls, 1);
    CU_ASSERT_EQUAL(W.t[X].joined_status, MESH_OK);
    CU_ASSERT(stats_of(&W, X).records_accepted >= (uint64_t)before);
    /* And it reaches Z, a node it never talked to, by key. */
    CU_ASSERT_EQUAL(send_text(&W, X, Z, "after restart", &r), MESH_OK);
    run_for(&W, SEC(15));
    CU_ASSERT_EQUAL(r.result, MESH_OK);
    CU_ASSERT_STRING_EQUAL(W.t[Z].last_msg, "after restart");
    world_free(&W);
    store_free(&store);
}

/* ---- tests: hostile peers ------------------------------------------------------------------- */

typedef struct raw_peer {
    mesh_session *s;
    mesh_tls_ctx *tls;
    int connected, closed, reason;
} raw_peer;

static void raw_connected(mesh_session *s, void *ud)
{
    (void)s;
    ((raw_peer *)ud)->connected = 1;
}

static void raw_closed(mesh_session *s, int reason, void *ud)
{
    (void)s;
    raw_peer *p = ud;
    p->closed = 1;
    p->reason = reason;
}

static const mesh_session_cbs RAW_CBS = {raw_connected, NULL, NULL, raw_closed};

static void send_record_env(mesh_session *s, Meshara__Wire__PeerRecord *pb, int as_announce)
{
    mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
    Meshara__Wire__Announce an = MESHARA__WIRE__ANNOUNCE__INIT;
    Meshara__Wire__PeerList list = MESHARA__WIRE__PEER_LIST__INIT;
    Meshara__Wire__Response r = MESHARA__WIRE__RESPONSE__INIT;
    if (as_announce > 0) {
        an.record = pb;
        e.body_case = MESHARA__WIRE__ENVELOPE__BODY_ANNOUNCE;
        e.announce = &an;
    } else {
        list.n_peers = 1;
        list.peers = &pb;
        r.peers = &list;
        r.query_id = 12345;
        e.body_case = MESHARA__WIRE__ENVELOPE__BODY_RESPONSE;
        e.response = &r;
    }
    CU_ASSERT_EQUAL(mesh_session_send(s, &e), MESH_OK);
}

static void test_bad_peers(void)
{
    tworld W;
    world_init(&W, 3, 17, 0);
    enum { X = 0, E = 1, Y = 2 };
    /* A store full of garbage: random bytes, a truncated record, a forged signature. */
    mem_store store;
    memset(&store, 0, sizeof store);
    uint8_t junk[300];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 37 + 11);
    uint8_t id[32] = {1};
    store_put(&store, id, junk, sizeof junk);
    id[0] = 2;
    store_put(&store, id, junk, 0);
    mesh_peer_record good;
    mesh_addr ya = addr_of(&W, Y);
    CU_ASSERT_EQUAL(mesh_peer_record_make(&good, W.t[Y].id, &ya, 1, 1), MESH_OK);
    mesh_peer_record forged = good;
    forged.sig[5] ^= 1;
    Meshara__Wire__PeerRecord pb;
    mesh_peer_pb_scratch sc;
    mesh_peer_record_to_pb(&forged, &pb, &sc);
    uint8_t buf[512];
    size_t len = meshara__wire__peer_record__pack(&pb, buf);
    id[0] = 3;
    store_put(&store, id, buf, len);
    id[0] = 4;
    store_put(&store, id, buf, len / 2);
    W.t[X].cfg.store = (mesh_peer_store){&STORE_OPS, &store};
    node_start(&W, X);
    node_start(&W, Y);
    run_for(&W, SEC(1));
    mesh_node_stats st = stats_of(&W, X);
    CU_ASSERT_EQUAL(st.records_rejected, 4);
    CU_ASSERT_EQUAL(st.records_accepted, 0);
    CU_ASSERT_EQUAL(st.dht_entries, 0);
    CU_ASSERT_EQUAL(W.t[X].joined_status, MESH_OK); /* nothing usable: a first node */

    /* E connects with a raw session and sends records that must all be dropped. */
    raw_peer rp;
    memset(&rp, 0, sizeof rp);
    mesh_tls_cfg tc = {.lib = W.lib};
    CU_ASSERT_EQUAL_FATAL(mesh_tls_ctx_new(&rp.tls, &W.t[E].env, W.t[E].id, &tc), MESH_OK);
    mesh_addr xa = addr_of(&W, X);
    CU_ASSERT_EQUAL_FATAL(
        mesh_session_connect(&rp.s, &W.t[E].env, rp.tls, &xa, key_of(&W, X), NULL, &RAW_CBS, &rp),
        MESH_OK);
    run_for(&W, SEC(1));
    CU_ASSERT_FATAL(rp.connected);
    st = stats_of(&W, X);
    uint64_t rej0 = st.records_rejected;
    /* 1. Y's valid record announced by E: a record claiming someone else's key. */
    mesh_peer_record_to_pb(&good, &pb, &sc);
    send_record_env(rp.s, &pb, 1);
    /* 2. A forged signature. */
    mesh_peer_record_to_pb(&forged, &pb, &sc);
    send_record_env(rp.s, &pb, 1);
    /* 3. Garbage: random key, unparsable address. */
    static char bad_addr[] = "not an address";
    char *bad_ptrs[1] = {bad_addr};
    uint8_t rk[32], rs[64];
    memset(rk, 0x42, sizeof rk);
    memset(rs, 0x24, sizeof rs);
    Meshara__Wire__PeerRecord g = MESHARA__WIRE__PEER_RECORD__INIT;
    g.public_key.data = rk;
    g.public_key.len = 32;
    g.signature.data = rs;
    g.signature.len = 64;
    g.n_addresses = 1;
    g.addresses = bad_ptrs;
    send_record_env(rp.s, &g, 1);
    /* 4. An answer to a query X never asked, with garbage in it. */
    send_record_env(rp.s, &g, -1);
    run_for(&W, SEC(1));
    st = stats_of(&W, X);
    CU_ASSERT(st.records_rejected >= rej0 + 3);
    CU_ASSERT_EQUAL(st.records_accepted, 0);
    CU_ASSERT_EQUAL(st.dht_entries, 0);
    CU_ASSERT(!rp.closed); /* dropping records is not a protocol error */

    /* X still works: Y reaches it, and its E session is still served. */
    done_rec r;
    CU_ASSERT_EQUAL(mesh_node_connect(W.t[Y].n, &xa, key_of(&W, X), 0), MESH_OK);
    run_for(&W, SEC(1));
    CU_ASSERT_EQUAL(send_text(&W, Y, X, "still alive?", &r), MESH_OK);
    run_for(&W, SEC(1));
    CU_ASSERT_EQUAL(r.result, MESH_OK);
    CU_ASSERT_EQUAL(stats_of(&W, X).dht_entries, 1); /* Y, from its own announce */
    mesh_session_free(rp.s);
    mesh_tls_ctx_free(rp.tls);
    world_free(&W);
    store_free(&store);
}

/* Peer entries' host names (SNI on first contact) are checked at creation, in every list,
 * and so is the relay count: a bad entry is refused before anything runs. */
static void test_bad_peer_entries(void)
{
    tworld W;
    world_init(&W, 2, 18, 0);
    mesh_node_cfg *c = &W.t[0].cfg;
    mesh_node *sentinel = (mesh_node *)&W, *n = sentinel;
    mesh_node_peer *lists[3] = {c->bootstrap, c->manual, c->relays};
    size_t *counts[3] = {&c->n_bootstrap, &c->n_manual, &c->n_relays};
    for (int l = 0; l < 3; l++) {
        lists[l][0] = (mesh_node_peer){addr_of(&W, 1), {0}, "bad_name.example"};
        memcpy(lists[l][0].key, key_of(&W, 1), 32);
        *counts[l] = 1;
        CU_ASSERT_EQUAL(mesh_node_new(&n, &W.t[0].env, c, &CBS, NULL), MESH_ERR_INVAL);
        CU_ASSERT_PTR_EQUAL(n, sentinel);
        lists[l][0].host_name = "10.0.0.1"; /* an address is no host name */
        CU_ASSERT_EQUAL(mesh_node_new(&n, &W.t[0].env, c, &CBS, NULL), MESH_ERR_INVAL);
        lists[l][0].host_name = "n1.example.net";
    }
    c->n_relays = MESH_NODE_MAX_RELAYS + 1;
    CU_ASSERT_EQUAL(mesh_node_new(&n, &W.t[0].env, c, &CBS, NULL), MESH_ERR_INVAL);
    CU_ASSERT_PTR_EQUAL(n, sentinel);
    c->n_relays = 1;
    CU_ASSERT_EQUAL_FATAL(mesh_node_new(&n, &W.t[0].env, c, &CBS, NULL), MESH_OK);
    mesh_node_free(n);
    world_free(&W);
}

/* ---- tests: timeouts and freeing --------------------------------------------------------- */

static void test_timeouts_and_free(void)
{
    tworld W;
    world_init(&W, 3, 18, 0);
    enum { X = 0, Y = 1, D = 2 };
    W.t[X].cfg.query_timeout = SEC(2);
    W.t[X].cfg.send_timeout = SEC(3);
    for (int i = 0; i < 3; i++)
        node_start(&W, i);
    mesh_addr ya = addr_of(&W, Y), da = addr_of(&W, D);
    CU_ASSERT_EQUAL(mesh_node_connect(W.t[X].n, &ya, key_of(&W, Y), 0), MESH_OK);
    CU_ASSERT_EQUAL(mesh_node_connect(W.t[X].n, &da, key_of(&W, D), 0), MESH_OK);
    run_for(&W, SEC(1));
    /* D goes silent: a query to it times out at exactly its timeout, a send at its own. */
    sim_host_set_up(W.t[D].h, 0);
    done_rec q = {.W = &W}, r = {.W = &W};
    mesh_time t0 = now_of(&W);
    CU_ASSERT_EQUAL(
        mesh_node_query(W.t[X].n, key_of(&W, D), MESH_QUERY_PING, NULL, 0, 0, query_done, &q),
        MESH_OK);
    CU_ASSERT_EQUAL(mesh_node_send(W.t[X].n, key_of(&W, D), (const uint8_t *)"x", 1, send_done, &r),
                    MESH_OK);
    run_for(&W, SEC(4));
    CU_ASSERT_EQUAL(q.calls, 1);
    CU_ASSERT_EQUAL(q.result, MESH_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(q.at - t0, SEC(2));
    CU_ASSERT_EQUAL(r.calls, 1);
    CU_ASSERT_EQUAL(r.result, MESH_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(r.at - t0, SEC(3));

    /* Y closes: a send in flight to it when its node goes away fails with MESH_ERR_CLOSED
     * (the session ends before any acknowledgement). */
    memset(&r, 0, sizeof r);
    r.W = &W;
    CU_ASSERT_EQUAL(send_text(&W, X, Y, "lost", &r), MESH_OK);
    node_stop(&W, Y); /* aborts its sessions: X sees a reset */
    run_for(&W, SEC(1));
    CU_ASSERT_EQUAL(r.calls, 1);
    CU_ASSERT_EQUAL(r.result, MESH_ERR_CLOSED);

    /* Freeing a node with operations pending makes no callback, now or later. */
    done_rec f1 = {.W = &W}, f2 = {.W = &W};
    uint8_t nobody[32];
    memset(nobody, 7, sizeof nobody);
    CU_ASSERT_EQUAL(
        mesh_node_send(W.t[X].n, key_of(&W, D), (const uint8_t *)"x", 1, send_done, &f1), MESH_OK);
    CU_ASSERT_EQUAL(mesh_node_query(W.t[X].n, nobody, MESH_QUERY_PING, NULL, 0, 0, query_done, &f2),
                    MESH_OK);
    CU_ASSERT(stats_of(&W, X).pending >= 2); /* and the lookup's own queries */
    node_stop(&W, X);
    run_for(&W, SEC(30));
    CU_ASSERT_EQUAL(f1.calls, 0);
    CU_ASSERT_EQUAL(f2.calls, 0);
    world_free(&W);
}

/* ---- tests: mDNS -------------------------------------------------------------------------- */

/* Ten nodes on one LAN, no bootstrap node: each publishes and browses; all 45 pairs are
 * connected (exactly one session each) shortly after the announcements (750-1000 ms after
 * publish on a quiet LAN: sim/mdns.h). */
static void test_mdns_lan(void)
{
    enum { N = 10 };
    tworld W;
    world_init(&W, N, 19, 1);
    for (int i = 0; i < N; i++)
        node_start(&W, i);
    mesh_time all_at = 0;
    while (now_of(&W) < SEC(3) && !all_at) {
        run_for(&W, MS(10));
        int ok = 1;
        for (int i = 0; i < N && ok; i++)
            ok = stats_of(&W, i).connected == N - 1;
        if (ok)
            all_at = now_of(&W);
    }
    printf("\n    mDNS: 10 nodes fully connected at %.3f s virtual\n", (double)all_at / 1e9);
    CU_ASSERT(all_at > 0 && all_at < SEC(1));
    run_for(&W, MS(MESH_POOL_DUP_LINGER_MS) + SEC(1));
    for (int i = 0; i < N; i++) {
        mesh_node_stats st = stats_of(&W, i);
        CU_ASSERT_EQUAL(st.connected, N - 1);
        CU_ASSERT_EQUAL(st.sessions, N - 1); /* duplicates from simultaneous opens are gone */
        CU_ASSERT_EQUAL(st.dht_entries, N - 1);
        CU_ASSERT_EQUAL(st.mdns_found, N - 1);
    }
    done_rec r;
    CU_ASSERT_EQUAL(send_text(&W, 0, N - 1, "over the LAN", &r), MESH_OK);
    run_for(&W, SEC(1));
    CU_ASSERT_EQUAL(r.result, MESH_OK);
    world_free(&W);
}

/* ---- tests: a 200-node mesh (issue 4's mesh-200, until its scenario file runs) ------------ */

/* 5 bootstrap nodes and 200 nodes whose access links take 10-100 ms each way (so 20-200 ms
 * between two hosts), joining at times spread over 60 s; then every node sends to a random
 * other by key, and looks a random other up. Everything must succeed. */
enum { MESH_BOOT = 5, MESH_N = 200, MESH_JOIN_S = 60 };

typedef struct starter {
    tworld *W;
    int node;
    mesh_timer *t;
} starter;

static void start_fired(mesh_timer *t, void *ud)
{
    (void)t;
    starter *s = ud;
    node_start(s->W, s->node);
}

typedef struct lookup_rec {
    int calls, status;
    unsigned hops;
} lookup_rec;

static void lookup_cb(mesh_node *n, int status, const uint8_t *key, unsigned hops, unsigned queries,
                      void *ud)
{
    (void)n, (void)key, (void)queries;
    lookup_rec *l = ud;
    l->calls++;
    l->status = status;
    l->hops = hops;
}

static uint64_t lcg(uint64_t *x)
{
    *x = *x * 6364136223846793005ULL + 1442695040888963407ULL;
    return *x >> 33;
}

static void test_mesh_200(void)
{
    enum { TOTAL = MESH_BOOT + MESH_N };
    static tworld W;
    static starter st[TOTAL];
    static done_rec sends[TOTAL];
    static lookup_rec looks[TOTAL];
    static mesh_time start_at[TOTAL], join_took[TOTAL];
    world_init(&W, TOTAL, 20, 0);
    uint64_t x = 20;
    for (int i = 0; i < TOTAL; i++) {
        sim_link_cfg l = {.latency = MS(10 + lcg(&x) % 91)};
        CU_ASSERT_EQUAL(sim_host_set_links(W.t[i].h, &l, &l), MESH_OK);
        for (int b = 0; b < MESH_BOOT; b++)
            if (b != i)
                add_bootstrap(&W, i, b, NULL);
    }
    for (int i = 0; i < TOTAL; i++) {
        st[i] = (starter){.W = &W, .node = i};
        st[i].t = W.t[i].env.ops->timer_new(W.t[i].env.obj, start_fired, &st[i]);
        mesh_time at = i < MESH_BOOT ? 0 : MS(lcg(&x) % (MESH_JOIN_S * 1000));
        start_at[i] = at;
        W.t[i].env.ops->timer_set(W.t[i].env.obj, st[i].t, at);
    }
    run_until(&W, SEC(MESH_JOIN_S + 30));
    int joined = 0;
    uint64_t connects = 0, qfail = 0, qok = 0, refused = 0, evicted = 0;
    for (int i = MESH_BOOT; i < TOTAL; i++) {
        if (W.t[i].joined_calls == 1 && W.t[i].joined_status == MESH_OK)
            join_took[joined++] = W.t[i].joined_at - start_at[i];
        mesh_node_stats ns = stats_of(&W, i);
        CU_ASSERT(ns.peers <= MESH_NODE_DEFAULT_POOL_MAX);
        connects += ns.connects;
        qfail += ns.queries_failed;
        qok += ns.queries_ok;
        refused += ns.refused_full;
        evicted += ns.evicted;
    }
    printf("\n    mesh-200: queries ok %llu failed %llu; refused %llu evicted %llu",
           (unsigned long long)qok, (unsigned long long)qfail, (unsigned long long)refused,
           (unsigned long long)evicted);
    /* median join time (insertion sort: 200 values) */
    for (int i = 1; i < joined; i++)
        for (int j = i; j > 0 && join_took[j] < join_took[j - 1]; j--) {
            mesh_time tmp = join_took[j];
            join_took[j] = join_took[j - 1];
            join_took[j - 1] = tmp;
        }
    printf("\n    mesh-200: join p50 %.0f ms, p95 %.0f ms; %llu outbound sessions opened",
           (double)join_took[joined / 2] / 1e6, (double)join_took[joined * 95 / 100] / 1e6,
           (unsigned long long)connects);
    for (int i = MESH_BOOT; i < TOTAL; i++) {
        int to = MESH_BOOT + (int)(lcg(&x) % MESH_N);
        if (to == i)
            to = MESH_BOOT + (to - MESH_BOOT + 1) % MESH_N;
        char text[32];
        snprintf(text, sizeof text, "from %d", i);
        CU_ASSERT_EQUAL(send_text(&W, i, to, text, &sends[i]), MESH_OK);
        int target = MESH_BOOT + (int)(lcg(&x) % MESH_N);
        if (target == i)
            target = MESH_BOOT + (target - MESH_BOOT + 1) % MESH_N;
        CU_ASSERT_EQUAL(
            mesh_node_lookup(W.t[i].n, mesh_node_id(W.t[target].n), lookup_cb, &looks[i]), MESH_OK);
    }
    run_for(&W, SEC(40));
    int delivered = 0, found = 0;
    unsigned hops_hist[8] = {0};
    for (int i = MESH_BOOT; i < TOTAL; i++) {
        delivered += sends[i].calls == 1 && sends[i].result == MESH_OK;
        if (sends[i].result != MESH_OK)
            printf("\n    send from %d: %d calls, %s at %.3f", i, sends[i].calls,
                   mesh_errname(sends[i].result), (double)sends[i].at / 1e9);
        found += looks[i].calls == 1 && looks[i].status == MESH_OK;
        if (looks[i].calls == 1 && looks[i].status == MESH_OK)
            hops_hist[looks[i].hops < 7 ? looks[i].hops : 7]++;
    }
    printf("\n    mesh-200: join_ratio %.3f delivery_ratio %.3f lookup_success_ratio %.3f; "
           "hops:",
           (double)joined / MESH_N, (double)delivered / MESH_N, (double)found / MESH_N);
    for (int h = 0; h < 8; h++)
        printf(" %d:%u", h, hops_hist[h]);
    printf("\n");
    CU_ASSERT_EQUAL(joined, MESH_N);
    CU_ASSERT_EQUAL(delivered, MESH_N);
    CU_ASSERT_EQUAL(found, MESH_N);
    /* ceil(log20(200)) + 2 = 4 hops at p95 */
    unsigned within = 0;
    for (int h = 0; h <= 4; h++)
        within += hops_hist[h];
    CU_ASSERT(within * 100 >= 95u * (unsigned)found);
    for (int i = 0; i < TOTAL; i++)
        W.t[i].env.ops->timer_free(W.t[i].env.obj, st[i].t);
    world_free(&W);
}

/* 60 nodes joined through 2 bootstrap nodes; then 30 % of them vanish at once (host cut off,
 * no goodbye). Lookups and sends from live nodes to live targets all still succeed: dead
 * contacts cost their query or connect timeouts, nothing more. */
static void test_churn(void)
{
    enum { NB = 2, NC = 60, DEAD = NC * 30 / 100, ALL = NB + NC };
    static tworld W;
    static done_rec sends[ALL];
    static lookup_rec looks[ALL];
    static int dead[ALL];
    world_init(&W, ALL, 22, 0);
    uint64_t x = 22;
    for (int i = 0; i < ALL; i++) {
        mesh_node_cfg *c = &W.t[i].cfg;
        c->connect_timeout = SEC(2);
        c->query_timeout = SEC(2);
        c->send_timeout = SEC(30);
        for (int b = 0; b < NB; b++)
            if (b != i)
                add_bootstrap(&W, i, b, NULL);
        node_start(&W, i);
        run_for(&W, MS(200));
    }
    run_for(&W, SEC(20));
    for (int i = NB; i < ALL; i++)
        CU_ASSERT_EQUAL(W.t[i].joined_status, MESH_OK);
    for (int k = 0; k < DEAD;) {
        int v = NB + (int)(lcg(&x) % NC);
        if (dead[v])
            continue;
        dead[v] = 1;
        k++;
        sim_host_set_up(W.t[v].h, 0);
    }
    int live = 0;
    for (int i = NB; i < ALL; i++) {
        if (dead[i])
            continue;
        live++;
        int to;
        do
            to = NB + (int)(lcg(&x) % NC);
        while (to == i || dead[to]);
        CU_ASSERT_EQUAL(mesh_node_lookup(W.t[i].n, mesh_node_id(W.t[to].n), lookup_cb, &looks[i]),
                        MESH_OK);
        do
            to = NB + (int)(lcg(&x) % NC);
        while (to == i || dead[to]);
        CU_ASSERT_EQUAL(send_text(&W, i, to, "through churn", &sends[i]), MESH_OK);
    }
    run_for(&W, SEC(60));
    int found = 0, delivered = 0;
    for (int i = NB; i < ALL; i++) {
        found += looks[i].calls == 1 && looks[i].status == MESH_OK;
        delivered += sends[i].calls == 1 && sends[i].result == MESH_OK;
    }
    printf("\n    churn: %d of %d live nodes found their target, %d delivered\n", found, live,
           delivered);
    CU_ASSERT_EQUAL(found, live);
    CU_ASSERT_EQUAL(delivered, live);
    world_free(&W);
}

static CU_TestInfo mesh_tests[] = {
    {"30% of the nodes vanish: lookups and sends to live ones succeed", test_churn},
    {"200 nodes join, deliver and look up", test_mesh_200},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo node_tests[] = {
    {"send to a key through a bootstrap node", test_send_through_bootstrap},
    {"the same in the web profile (one round trip more)", test_send_through_bootstrap_web},
    {"send over HTTP/2 framing", test_send_http2},
    {"send to an unknown key: MESH_ERR_NOT_FOUND", test_unknown_key_not_found},
    {"impostor at a bootstrap address", test_impostor_bootstrap},
    {"restart joins from the peer store alone", test_restart_from_store},
    {"garbage records and hostile peers", test_bad_peers},
    {"bad peer entries refused at creation", test_bad_peer_entries},
    {"timeouts, closes, and free without callbacks", test_timeouts_and_free},
    CU_TEST_INFO_NULL,
};

/* Maintenance (every 1 s here, jittered ±10 %) tops the pool up to min from the DHT. */
static void test_top_up(void)
{
    tworld W;
    world_init(&W, 6, 23, 0);
    enum { X = 0 };
    W.t[X].cfg.pool_min = 3;
    W.t[X].cfg.maintain_interval = SEC(1);
    for (int i = 0; i < 6; i++)
        node_start(&W, i);
    for (int i = 1; i < 6; i++)
        CU_ASSERT_EQUAL(mesh_dht_add(mesh_node_dht(W.t[X].n), mesh_node_record(W.t[i].n), 0),
                        MESH_OK);
    run_for(&W, MS(800)); /* before the first run (0.9-1.1 s) */
    CU_ASSERT_EQUAL(stats_of(&W, X).peers, 0);
    run_for(&W, MS(1000));
    mesh_node_stats st = stats_of(&W, X);
    CU_ASSERT_EQUAL(st.peers, 3);
    CU_ASSERT_EQUAL(st.connected, 3);
    CU_ASSERT_EQUAL(W.t[X].peers_up, 3);
    run_for(&W, SEC(5)); /* at min: no more */
    CU_ASSERT_EQUAL(stats_of(&W, X).peers, 3);
    world_free(&W);
}

static CU_TestInfo pool_tests[] = {
    {"maintenance tops up to min from the DHT", test_top_up},
    {"bounds hold with 5x more candidates than max", test_pool_bounds},
    {"eviction spares pinned and new connections", test_eviction_spares_pinned_and_new},
    {"simultaneous open leaves one session", test_simultaneous_open},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo mdns_tests[] = {
    {"ten nodes on a LAN find each other", test_mdns_lan},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"node", NULL, NULL, NULL, NULL, node_tests},
    {"pool", NULL, NULL, NULL, NULL, pool_tests},
    {"mdns", NULL, NULL, NULL, NULL, mdns_tests},
    {"mesh", NULL, NULL, NULL, NULL, mesh_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
