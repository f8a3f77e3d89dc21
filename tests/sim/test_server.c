/* test_server.c — the server's admission policy in the simulator (core/server.h): which
 * pending handshake is evicted, the per-source cap, the first-byte timeout and the log's rate
 * limit, each asserted at its exact virtual time.
 *
 * Topology: every host on the core with a 20 ms access link each way, so any two hosts are
 * D = 40 ms apart one way, rate 0 (no serialisation):
 *
 *     S (server) ── core ── G (a real client)      X1 … X6: clients that hold a slot
 *
 * A connection opened at t is accepted by S at t + 3D (SYN, SYN-ACK, final ACK — with the
 * client's first bytes right behind it); an RST sent by S at t' reaches the client at t' + D.
 * Hogs: SILENT sends nothing; HALF the first half of a real ClientHello; HELLO all of it (S
 * answers with its flight: progress) and then nothing.
 */
#include "mesh_test.h"

#include <stdlib.h>
#include <string.h>

#include "core/server.h"
#include "core/session.h"
#include "core/tls.h"
#include "sim/driver.h"

/* The TLS profile these tests were written for (the web profile's: test_tls_web.c). */
static const mesh_tls_cfg SEED_PROFILE = {.profile = MESH_PROFILE_SEED};

enum {
    ACCESS_MS = 20,
    ONE_WAY_MS = 2 * ACCESS_MS,
    PORT = 4433,
    NHOSTS = 8,
    MAX_HOGS = 32,
    MAX_FAILS = 32,
    MAX_LINES = 16,
    CH_MAX = 4096,
};

#define MS(x) ((mesh_time)(x)*MESH_NS_PER_MS)
#define D MS(ONE_WAY_MS)
#define ACCEPTED(t) ((t) + 3 * D)

enum { S = 0, G = 1, X1 = 2, X2, X3, X4, X5, X6 };
enum hog_mode { SILENT, HALF, HELLO };

typedef struct world world;

typedef struct hog {
    world *W;
    mesh_env env;
    mesh_stream *st;
    int mode, closed, reason;
    mesh_time closed_at;
    uint64_t bytes_in;
} hog;

struct world {
    sim_world *w;
    sim_host *h[NHOSTS];
    sim_driver *d[NHOSTS];
    mesh_env env[NHOSTS];
    mesh_identity *id[2];
    mesh_tls_ctx *tls[2]; /* S's and G's */
    uint8_t ch[CH_MAX];   /* a ClientHello from G's context, replayed by the hogs */
    size_t ch_len;
    /* the server and what it reported */
    mesh_server *srv;
    mesh_session *up[4];
    size_t nup;
    int fails, fail_reason[MAX_FAILS];
    mesh_time fail_at[MAX_FAILS];
    mesh_addr fail_peer[MAX_FAILS];
    int free_in_failed; /* mesh_server_free() from inside on_failed */
    /* "server:" log lines and their times */
    int nlines;
    char line[MAX_LINES][256];
    mesh_time line_at[MAX_LINES];
    hog hogs[MAX_HOGS];
    int nhogs;
};

static mesh_time now_of(world *W)
{
    return sim_sched_now(sim_world_sched(W->w));
}

static void run_until(world *W, mesh_time t)
{
    CU_ASSERT_EQUAL(sim_sched_run_until(sim_world_sched(W->w), t), MESH_OK);
    CU_ASSERT_EQUAL(now_of(W), t);
}

static void on_log(void *ud, mesh_time t, const char *host, int level, const char *line)
{
    (void)host, (void)level;
    world *W = ud;
    const char *p = strstr(line, "server: ");
    if (!p || W->nlines >= MAX_LINES)
        return;
    snprintf(W->line[W->nlines], sizeof W->line[0], "%s", p);
    W->line_at[W->nlines++] = t;
}

static void ch_out(void *ud, const uint8_t *d, size_t n)
{
    world *W = ud;
    CU_ASSERT_FATAL(W->ch_len + n <= sizeof W->ch);
    memcpy(W->ch + W->ch_len, d, n);
    W->ch_len += n;
}

static void world_init(world *W)
{
    memset(W, 0, sizeof *W);
    CU_ASSERT_EQUAL_FATAL(sim_world_new(&W->w, 7, NULL), MESH_OK);
    sim_world_set_log(W->w, on_log, W);
    sim_link_cfg l = {.latency = MS(ACCESS_MS)};
    for (int i = 0; i < NHOSTS; i++) {
        char name[8];
        snprintf(name, sizeof name, "h%d", i);
        sim_host_cfg hc = {name, SIM_IP4(10, 0, 0, 1 + i), NULL, l, l};
        CU_ASSERT_EQUAL_FATAL(sim_net_add_host(sim_world_net(W->w), &hc, &W->h[i]), MESH_OK);
        CU_ASSERT_EQUAL_FATAL(sim_driver_new(&W->d[i], W->w, W->h[i]), MESH_OK);
        W->env[i] = sim_driver_env(W->d[i]);
    }
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL_FATAL(mesh_identity_generate(&W->id[i], &W->env[i]), MESH_OK);
        CU_ASSERT_EQUAL_FATAL(mesh_tls_ctx_new(&W->tls[i], &W->env[i], W->id[i], &SEED_PROFILE),
                              MESH_OK);
    }
    mesh_tls *t = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_tls_new(&t, W->tls[1], 0, NULL, ch_out, W), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_handshake(t), MESH_ERR_AGAIN);
    mesh_tls_free(t);
    CU_ASSERT_FATAL(W->ch_len > 100);
}

static void world_free(world *W)
{
    for (int i = 0; i < W->nhogs; i++)
        if (W->hogs[i].st)
            W->hogs[i].env.ops->stream_close(W->hogs[i].env.obj, W->hogs[i].st, MESH_CLOSE_ABORT);
    for (size_t i = 0; i < W->nup; i++)
        mesh_session_free(W->up[i]);
    mesh_server_free(W->srv);
    for (int i = 0; i < NHOSTS; i++)
        sim_driver_free(W->d[i]);
    for (int i = 0; i < 2; i++) {
        mesh_tls_ctx_free(W->tls[i]);
        mesh_identity_free(W->id[i]);
    }
    sim_world_free(W->w);
}

/* ---- the server ---------------------------------------------------------------------------- */

static void srv_session(mesh_server *srv, mesh_session *s, void *ud)
{
    (void)srv;
    world *W = ud;
    CU_ASSERT_FATAL(W->nup < 4);
    W->up[W->nup++] = s;
    mesh_session_set_cbs(s, NULL, NULL);
}

static void srv_failed(mesh_server *srv, int reason, const mesh_addr *peer, void *ud)
{
    world *W = ud;
    if (W->fails < MAX_FAILS) {
        W->fail_reason[W->fails] = reason;
        W->fail_at[W->fails] = now_of(W);
        W->fail_peer[W->fails] = *peer;
    }
    W->fails++;
    if (W->free_in_failed) {
        mesh_server_free(srv);
        W->srv = NULL;
    }
}

static void srv_start_on(world *W, const mesh_env *env, const mesh_server_cfg *cfg)
{
    mesh_server_cbs cbs = {srv_session, srv_failed};
    mesh_addr la = mesh_addr_v4(sim_host_ip(W->h[S]), PORT);
    CU_ASSERT_EQUAL_FATAL(mesh_server_new(&W->srv, env, W->tls[0], &la, cfg, &cbs, W), MESH_OK);
}

static void srv_start(world *W, const mesh_server_cfg *cfg)
{
    srv_start_on(W, &W->env[S], cfg);
}

static mesh_server_stats stats(world *W)
{
    mesh_server_stats st;
    mesh_server_get_stats(W->srv, &st);
    return st;
}

/* The i-th failure: reason, time, and the host it came from. */
static void expect_fail(world *W, int i, int reason, mesh_time at, int host)
{
    CU_ASSERT_FATAL(i < W->fails && i < MAX_FAILS);
    CU_ASSERT_EQUAL(W->fail_reason[i], reason);
    CU_ASSERT_EQUAL(W->fail_at[i], at);
    CU_ASSERT_EQUAL(W->fail_peer[i].family, MESH_AF_INET4);
    CU_ASSERT_EQUAL(memcmp(W->fail_peer[i].ip, (uint8_t[]){10, 0, 0, (uint8_t)(1 + host)}, 4), 0);
}

/* ---- hogs ------------------------------------------------------------------------------------ */

static void hog_connected(mesh_stream *st, void *ud)
{
    hog *h = ud;
    size_t n = h->mode == HELLO ? h->W->ch_len : h->mode == HALF ? h->W->ch_len / 2 : 0;
    if (n)
        CU_ASSERT_EQUAL(h->env.ops->stream_write(h->env.obj, st, h->W->ch, n), MESH_OK);
}

static void hog_data(mesh_stream *st, const uint8_t *d, size_t n, void *ud)
{
    (void)st, (void)d;
    hog *h = ud;
    h->bytes_in += n;
}

static void hog_closed(mesh_stream *st, int reason, void *ud)
{
    (void)st;
    hog *h = ud;
    h->st = NULL;
    h->closed = 1;
    h->reason = reason;
    h->closed_at = now_of(h->W);
}

static const mesh_stream_cbs HOG_CBS = {hog_connected, hog_data, NULL, hog_closed};

/* Run to time at, then open a hog from host; returns it. */
static hog *hog_at(world *W, mesh_time at, int host, int mode)
{
    run_until(W, at);
    CU_ASSERT_FATAL(W->nhogs < MAX_HOGS);
    hog *h = &W->hogs[W->nhogs++];
    h->W = W;
    h->env = W->env[host];
    h->mode = mode;
    mesh_addr to = mesh_addr_v4(sim_host_ip(W->h[S]), PORT);
    int err = 0;
    h->st = h->env.ops->connect(h->env.obj, &to, &HOG_CBS, h, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h->st);
    return h;
}

/* Reset by S at t (it arrives one way later). */
static void expect_reset(const hog *h, mesh_time t)
{
    CU_ASSERT_EQUAL(h->closed, 1);
    CU_ASSERT_EQUAL(h->reason, MESH_ERR_RESET);
    CU_ASSERT_EQUAL(h->closed_at, t + D);
}

/* ---- a real client ------------------------------------------------------------------------- */

typedef struct good {
    world *W;
    mesh_session *s;
    mesh_time connected_at;
    int closed;
} good;

static void good_connected(mesh_session *s, void *ud)
{
    (void)s;
    good *g = ud;
    g->connected_at = now_of(g->W);
}

static void good_closed(mesh_session *s, int reason, void *ud)
{
    (void)s, (void)reason;
    good *g = ud;
    g->closed = 1;
}

static const mesh_session_cbs GOOD_CBS = {.on_connected = good_connected, .on_closed = good_closed};

/* G connects at time at: CONNECTED at at + 4D on its side (session.h's handshake timing). */
static void good_at(world *W, good *g, mesh_time at)
{
    run_until(W, at);
    memset(g, 0, sizeof *g);
    g->W = W;
    mesh_addr to = mesh_addr_v4(sim_host_ip(W->h[S]), PORT);
    CU_ASSERT_EQUAL_FATAL(mesh_session_connect(&g->s, &W->env[G], W->tls[1], &to,
                                               mesh_identity_pubkey(W->id[0]), NULL, &GOOD_CBS, g),
                          MESH_OK);
}

/* ---- tests --------------------------------------------------------------------------------- */

/* Three slots. A silent, a half-hello and a hello hog take them; G comes: the silent one
 * (the oldest without progress) makes room. Later newcomers evict the half-hello, then the
 * silent ones in accept order; the hello hogs, which made progress, are never evicted, and
 * once only they are left a newcomer is refused. */
static void test_evicts_oldest_without_progress(void)
{
    world W;
    world_init(&W);
    mesh_server_cfg cfg = {.max_handshakes = 3};
    srv_start(&W, &cfg);
    hog *x1 = hog_at(&W, MS(0), X1, SILENT);
    hog *x2 = hog_at(&W, MS(10), X2, HALF);
    hog *x3 = hog_at(&W, MS(20), X3, HELLO);
    run_until(&W, MS(500));
    mesh_server_stats st = stats(&W);
    CU_ASSERT_EQUAL(st.accepted, 3);
    CU_ASSERT_EQUAL(st.handshaking, 3);
    CU_ASSERT(x3->bytes_in > 0); /* S answered the whole ClientHello: progress */
    CU_ASSERT_EQUAL(x2->bytes_in, 0);

    good g;
    good_at(&W, &g, MS(1000));
    run_until(&W, MS(1500));
    CU_ASSERT_EQUAL(g.connected_at, MS(1000) + 4 * D);
    CU_ASSERT_EQUAL(W.nup, 1);
    expect_fail(&W, 0, MESH_ERR_LIMIT, ACCEPTED(MS(1000)), X1);
    expect_reset(x1, ACCEPTED(MS(1000)));
    CU_ASSERT(!x2->closed && !x3->closed);
    st = stats(&W);
    CU_ASSERT_EQUAL(st.evicted, 1);
    CU_ASSERT_EQUAL(st.rejected, 0);
    CU_ASSERT_EQUAL(st.handshaking, 2); /* G left for its owner */

    hog *x4 = hog_at(&W, MS(1500), X4, SILENT);  /* a free slot: nobody evicted */
    hog *x5 = hog_at(&W, MS(1600), X5, SILENT);  /* the half-hello goes */
    hog *x6 = hog_at(&W, MS(1800), X6, HELLO);   /* x4 goes */
    hog *x1b = hog_at(&W, MS(2000), X1, HELLO);  /* x5 goes */
    hog *x2b = hog_at(&W, MS(2200), X2, SILENT); /* all progressed: refused */
    run_until(&W, MS(2500));
    CU_ASSERT_EQUAL(W.fails, 4);
    expect_fail(&W, 1, MESH_ERR_LIMIT, ACCEPTED(MS(1600)), X2);
    expect_fail(&W, 2, MESH_ERR_LIMIT, ACCEPTED(MS(1800)), X4);
    expect_fail(&W, 3, MESH_ERR_LIMIT, ACCEPTED(MS(2000)), X5);
    expect_reset(x2, ACCEPTED(MS(1600)));
    expect_reset(x4, ACCEPTED(MS(1800)));
    expect_reset(x5, ACCEPTED(MS(2000)));
    expect_reset(x2b, ACCEPTED(MS(2200)));
    CU_ASSERT(!x3->closed && !x6->closed && !x1b->closed);
    st = stats(&W);
    CU_ASSERT_EQUAL(st.accepted, 8); /* G included */
    CU_ASSERT_EQUAL(st.evicted, 4);
    CU_ASSERT_EQUAL(st.rejected, 1);
    CU_ASSERT_EQUAL(st.crowded, 0);
    CU_ASSERT_EQUAL(st.failed, 0);
    CU_ASSERT_EQUAL(st.handshaking, 3);

    /* The log: the first eviction at once, the other four events in one summary line at the
     * end of the interval. By then the hello hogs hit the handshake timeout (the session's,
     * not the server's business: counted in failed, not in the summary). */
    run_until(&W, MS(20000));
    CU_ASSERT_EQUAL_FATAL(W.nlines, 2);
    CU_ASSERT_EQUAL(W.line_at[0], ACCEPTED(MS(1000)));
    CU_ASSERT_PTR_NOT_NULL(strstr(W.line[0], "3 handshakes in progress: evicted 10.0.0.3:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(W.line[0], "room for 10.0.0.2:"));
    CU_ASSERT_EQUAL(W.line_at[1], ACCEPTED(MS(1000)) + MS(MESH_SERVER_LOG_INTERVAL_MS));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(W.line[1], "in the last 10 s: 1 refused, 3 evicted, 0 closed silent; 2 "));
    st = stats(&W);
    CU_ASSERT_EQUAL(st.failed, 3);
    CU_ASSERT_EQUAL(st.handshaking, 0);
    mesh_session_free(g.s);
    world_free(&W);
}

/* Two per source: a third connection from X1 takes the place of X1's oldest without progress
 * (never another source's); when both of X1's made progress, X1's newcomer is refused while
 * X2 still gets in. */
static void test_per_source_cap(void)
{
    world W;
    world_init(&W);
    mesh_server_cfg cfg = {.max_handshakes = 8, .max_per_source = 2};
    srv_start(&W, &cfg);
    hog *a = hog_at(&W, MS(0), X1, SILENT);
    hog *b = hog_at(&W, MS(10), X1, SILENT);
    hog *c = hog_at(&W, MS(20), X1, SILENT); /* a goes */
    hog *o = hog_at(&W, MS(30), X2, SILENT); /* another source: in */
    hog *d = hog_at(&W, MS(40), X1, HELLO);  /* b goes */
    hog *e = hog_at(&W, MS(50), X1, HELLO);  /* c goes (d made progress on arrival) */
    hog *f = hog_at(&W, MS(60), X1, SILENT); /* d and e progressed: refused */
    hog *o2 = hog_at(&W, MS(70), X2, SILENT);
    run_until(&W, MS(500));
    expect_reset(a, ACCEPTED(MS(20)));
    expect_reset(b, ACCEPTED(MS(40)));
    expect_reset(c, ACCEPTED(MS(50)));
    expect_reset(f, ACCEPTED(MS(60)));
    CU_ASSERT(!d->closed && !e->closed && !o->closed && !o2->closed);
    CU_ASSERT_EQUAL(W.fails, 3);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(W.fail_reason[i], MESH_ERR_LIMIT);
    mesh_server_stats st = stats(&W);
    CU_ASSERT_EQUAL(st.accepted, 7);
    CU_ASSERT_EQUAL(st.evicted, 3);
    CU_ASSERT_EQUAL(st.crowded, 4);
    CU_ASSERT_EQUAL(st.rejected, 1);
    CU_ASSERT_EQUAL(st.handshaking, 4);
    world_free(&W);
}

/* First-byte timeout 500 ms: a silent connection is closed exactly 500 ms after its accept; one
 * whose bytes came (half a ClientHello, or a single late byte) is left to the session's
 * handshake timeout. */
static void test_first_byte_timeout(void)
{
    world W;
    world_init(&W);
    mesh_server_cfg cfg = {.first_byte_timeout = MS(500)};
    srv_start(&W, &cfg);
    hog *x1 = hog_at(&W, MS(0), X1, SILENT);
    hog *x2 = hog_at(&W, MS(0), X2, HALF);
    hog *x3 = hog_at(&W, MS(100), X3, SILENT);
    hog *x4 = hog_at(&W, MS(300), X4, SILENT);
    run_until(&W, ACCEPTED(MS(0)) + MS(500) - 1);
    CU_ASSERT_EQUAL(W.fails, 0);
    run_until(&W, ACCEPTED(MS(300)) + MS(400) - D); /* one byte, arriving 400 ms in */
    CU_ASSERT_EQUAL(x4->env.ops->stream_write(x4->env.obj, x4->st, W.ch, 1), MESH_OK);
    run_until(&W, MS(2000));
    CU_ASSERT_EQUAL(W.fails, 2);
    expect_fail(&W, 0, MESH_ERR_TIMEOUT, ACCEPTED(MS(0)) + MS(500), X1);
    expect_fail(&W, 1, MESH_ERR_TIMEOUT, ACCEPTED(MS(100)) + MS(500), X3);
    expect_reset(x1, ACCEPTED(MS(0)) + MS(500));
    expect_reset(x3, ACCEPTED(MS(100)) + MS(500));
    CU_ASSERT(!x2->closed && !x4->closed);
    mesh_server_stats st = stats(&W);
    CU_ASSERT_EQUAL(st.silent, 2);
    CU_ASSERT_EQUAL(st.failed, 2);
    const mesh_time hs = MESH_SESSION_DEFAULT_HANDSHAKE_TIMEOUT_MS * MESH_NS_PER_MS;
    run_until(&W, MS(20000));
    CU_ASSERT_EQUAL_FATAL(W.fails, 4);
    expect_fail(&W, 2, MESH_ERR_TIMEOUT, ACCEPTED(MS(0)) + hs, X2);
    expect_fail(&W, 3, MESH_ERR_TIMEOUT, ACCEPTED(MS(300)) + hs, X4);
    st = stats(&W);
    CU_ASSERT_EQUAL(st.silent, 2);
    CU_ASSERT_EQUAL(st.failed, 4);
    CU_ASSERT_EQUAL(st.evicted + st.rejected, 0);
    world_free(&W);
}

/* Twenty refusals in 200 ms cost two lines: the first at once, a summary of the other 19 when
 * the interval ends. A quiet interval writes nothing; the next event, an eviction much later,
 * is logged at once again. */
static void test_log_rate_limit(void)
{
    world W;
    world_init(&W);
    mesh_server_cfg cfg = {.max_handshakes = 2};
    srv_start(&W, &cfg);
    hog_at(&W, MS(0), X1, HELLO);
    hog_at(&W, MS(0), X2, HELLO);
    for (int i = 0; i < 20; i++)
        hog_at(&W, MS(1000 + 10 * i), X3 + i % 4, SILENT);
    hog_at(&W, MS(40000), X3, SILENT); /* the hello hogs are gone: two free slots */
    hog_at(&W, MS(40010), X4, SILENT);
    hog_at(&W, MS(40020), X5, SILENT); /* evicts X3's */
    run_until(&W, MS(41000));
    CU_ASSERT_EQUAL(stats(&W).rejected, 20);
    CU_ASSERT_EQUAL(stats(&W).evicted, 1);
    CU_ASSERT_EQUAL_FATAL(W.nlines, 3);
    CU_ASSERT_EQUAL(W.line_at[0], ACCEPTED(MS(1000)));
    CU_ASSERT_PTR_NOT_NULL(strstr(W.line[0], "2 handshakes in progress: refused 10.0.0.5:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(W.line[0], "all slots taken"));
    CU_ASSERT_EQUAL(W.line_at[1], ACCEPTED(MS(1000)) + MS(MESH_SERVER_LOG_INTERVAL_MS));
    CU_ASSERT_PTR_NOT_NULL(strstr(W.line[1], ": 19 refused, 0 evicted, 0 closed silent"));
    CU_ASSERT_EQUAL(W.line_at[2], ACCEPTED(MS(40020)));
    CU_ASSERT_PTR_NOT_NULL(strstr(W.line[2], "2 handshakes in progress: evicted 10.0.0.5:"));
    world_free(&W);
}

/* IPv6 peers count by /64 and an IPv4-mapped address as the IPv4 one. The simulator is IPv4,
 * so S's env is wrapped: its accept callback sees each host under the address below. */
static struct {
    mesh_env_ops ops;
    mesh_env inner;
    mesh_accept_cb cb;
    void *ud;
} g_v6;

static void v6_accept(mesh_listener *l, mesh_stream *s, const mesh_addr *peer, void *ud)
{
    (void)ud;
    mesh_addr a;
    memset(&a, 0, sizeof a);
    a.port = peer->port;
    a.family = MESH_AF_INET6;
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t net1[8] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1};
    static const uint8_t net2[8] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 2};
    switch (peer->ip[3] - 1) {
    case X1: /* 2001:db8:0:1::a */
    case X2: /* 2001:db8:0:1::b: the same /64 */
        memcpy(a.ip, net1, 8);
        a.ip[15] = peer->ip[3] - 1 == X1 ? 0xa : 0xb;
        break;
    case X3: /* 2001:db8:0:2::1 */
        memcpy(a.ip, net2, 8);
        a.ip[15] = 1;
        break;
    case X4: /* ::ffff:192.0.2.99 */
        memcpy(a.ip, v4mapped, 12);
        memcpy(a.ip + 12, (uint8_t[]){192, 0, 2, 99}, 4);
        break;
    default: /* 192.0.2.99 */
        a.family = MESH_AF_INET4;
        memcpy(a.ip, (uint8_t[]){192, 0, 2, 99}, 4);
    }
    g_v6.cb(l, s, &a, g_v6.ud);
}

static mesh_listener *v6_listen(void *obj, const mesh_addr *addr, mesh_accept_cb cb, void *ud,
                                int *err)
{
    g_v6.cb = cb;
    g_v6.ud = ud;
    return g_v6.inner.ops->listen(obj, addr, v6_accept, NULL, err);
}

static void test_sources_ipv6_prefix(void)
{
    world W;
    world_init(&W);
    g_v6.inner = W.env[S];
    g_v6.ops = *W.env[S].ops;
    g_v6.ops.listen = v6_listen;
    mesh_env wrapped = {&g_v6.ops, W.env[S].obj};
    mesh_server_cfg cfg = {.max_handshakes = 8, .max_per_source = 1};
    srv_start_on(&W, &wrapped, &cfg);
    hog *x1 = hog_at(&W, MS(0), X1, SILENT);
    hog *x2 = hog_at(&W, MS(10), X2, SILENT); /* same /64 as x1: x1 goes */
    hog *x3 = hog_at(&W, MS(20), X3, SILENT); /* another /64 */
    hog *x4 = hog_at(&W, MS(30), X4, SILENT); /* ::ffff:192.0.2.99 */
    hog *x5 = hog_at(&W, MS(40), X5, SILENT); /* 192.0.2.99, the same source: x4 goes */
    run_until(&W, MS(500));
    expect_reset(x1, ACCEPTED(MS(10)));
    expect_reset(x4, ACCEPTED(MS(40)));
    CU_ASSERT(!x2->closed && !x3->closed && !x5->closed);
    mesh_server_stats st = stats(&W);
    CU_ASSERT_EQUAL(st.accepted, 5);
    CU_ASSERT_EQUAL(st.evicted, 2);
    CU_ASSERT_EQUAL(st.crowded, 2);
    CU_ASSERT_EQUAL(st.handshaking, 3);
    world_free(&W);
}

/* The owner frees the server from inside on_failed for an eviction: the newcomer is closed,
 * nothing else is called, nothing leaks (ASan). And the configuration's bounds. */
static void test_free_inside_eviction_and_bounds(void)
{
    world W;
    world_init(&W);
    mesh_server_cfg cfg = {.max_handshakes = 1};
    srv_start(&W, &cfg);
    hog_at(&W, MS(0), X1, SILENT);
    hog *x2 = hog_at(&W, MS(10), X2, SILENT);
    W.free_in_failed = 1;
    run_until(&W, MS(500));
    CU_ASSERT_EQUAL(W.fails, 1);
    CU_ASSERT_PTR_NULL(W.srv);
    expect_reset(x2, ACCEPTED(MS(10)));

    mesh_server *srv = NULL;
    mesh_server_cbs cbs = {srv_session, srv_failed};
    mesh_addr la = mesh_addr_v4(sim_host_ip(W.h[S]), PORT + 1);
    mesh_server_cfg big = {.max_handshakes = MESH_SERVER_MAX_HANDSHAKES + 1};
    CU_ASSERT_EQUAL(mesh_server_new(&srv, &W.env[S], W.tls[0], &la, &big, &cbs, &W),
                    MESH_ERR_INVAL);
    CU_ASSERT_PTR_NULL(srv);
    world_free(&W);
}

static CU_TestInfo tests[] = {
    {"full: the oldest handshake without progress makes room", test_evicts_oldest_without_progress},
    {"per-source cap: a source only displaces its own", test_per_source_cap},
    {"first-byte timeout at its exact time; bytes stop it", test_first_byte_timeout},
    {"refusal log: one line, then one summary per interval", test_log_rate_limit},
    {"sources: IPv6 by /64, IPv4-mapped as IPv4", test_sources_ipv6_prefix},
    {"free inside on_failed(LIMIT); configuration bounds", test_free_inside_eviction_and_bounds},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"server", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
