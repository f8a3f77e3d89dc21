/* test_simdriver.c — the env seam (meshara/env.h) over the simulator's driver (sim/driver.h).
 *
 * The contract's cases are the env conformance suite (tests/common/env_conformance.c), run
 * here on two hosts of a simulated world; the real driver runs the same cases. This file adds
 * what only the simulator promises: exact virtual times (timers, connects, failures, closes
 * inside callbacks), per-host reproducible randomness, listen and bind rules of a simulated
 * host, datagrams across LANs and the core, log lines, and sim_driver_free releasing what the
 * core forgot.
 *
 * Every env call in this file goes through ENV(), which marks "inside an env call"; every
 * callback asserts that mark is clear (rule 1).
 *
 * Topology: alice 198.51.100.1 and bob 198.51.100.2 on the core (access links 5 ms, core
 * 10 ms: RTT 40 ms); a LAN "home" with carol 10.0.0.1 and dave 10.0.0.2 (access links 1 ms);
 * erin 10.9.0.1 on another LAN "office". */
#include "mesh_test.h"

#include <stdlib.h>
#include <string.h>

#include "env_conformance.h"
#include "sim/driver.h"

#define MS MESH_NS_PER_MS
#define ONE_WAY (20 * MS)
#define RTT (2 * ONE_WAY)
#define CONNECT_TIMEOUT (2 * MESH_NS_PER_S)

#define IP_ALICE SIM_IP4(198, 51, 100, 1)
#define IP_BOB SIM_IP4(198, 51, 100, 2)
#define IP_CAROL SIM_IP4(10, 0, 0, 1)
#define IP_DAVE SIM_IP4(10, 0, 0, 2)
#define IP_ERIN SIM_IP4(10, 9, 0, 1)
#define IP_NOBODY SIM_IP4(203, 0, 113, 9)

enum { ALICE, BOB, CAROL, DAVE, ERIN, NDRV };
enum { MAX_LOG = 256, MDNS_PORT = 5353, ECHO_PORT = 7 };

/* Test code is not core code: one global marks "inside an env call" for rule 1. */
static int g_in_env;
#define ENV(expr) (g_in_env++, (expr), g_in_env--)
#define CB_ENTER() CU_ASSERT_EQUAL(g_in_env, 0)

typedef struct dw {
    sim_world *w;
    sim_driver *d[NDRV];
    mesh_env env[NDRV];
    sim_host *h[NDRV];
} dw;

static void dw_init(dw *x, uint64_t seed)
{
    memset(x, 0, sizeof *x);
    g_in_env = 0;
    sim_tcp_cfg tcp = {.connect_timeout = CONNECT_TIMEOUT};
    CU_ASSERT_EQUAL_FATAL(sim_world_new(&x->w, seed, &tcp), MESH_OK);
    sim_sched_set_event_cap(sim_world_sched(x->w), 10000000);
    sim_net *net = sim_world_net(x->w);
    sim_net_set_core(net, &(sim_link_cfg){.latency = 10 * MS}, NULL, NULL);
    sim_lan *home, *office;
    CU_ASSERT_EQUAL_FATAL(sim_net_add_lan(net, &(sim_lan_cfg){.name = "home"}, &home), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_net_add_lan(net, &(sim_lan_cfg){.name = "office"}, &office), MESH_OK);
    sim_link_cfg core5 = {.latency = 5 * MS}, lan1 = {.latency = 1 * MS};
    const sim_host_cfg hosts[NDRV] = {
        {"alice", IP_ALICE, NULL, core5, core5}, {"bob", IP_BOB, NULL, core5, core5},
        {"carol", IP_CAROL, home, lan1, lan1},   {"dave", IP_DAVE, home, lan1, lan1},
        {"erin", IP_ERIN, office, lan1, lan1},
    };
    for (int i = 0; i < NDRV; i++) {
        CU_ASSERT_EQUAL_FATAL(sim_net_add_host(net, &hosts[i], &x->h[i]), MESH_OK);
        CU_ASSERT_EQUAL_FATAL(sim_driver_new(&x->d[i], x->w, x->h[i]), MESH_OK);
        x->env[i] = sim_driver_env(x->d[i]);
    }
}

static void dw_free(dw *x)
{
    for (int i = 0; i < NDRV; i++)
        sim_driver_free(x->d[i]);
    sim_world_free(x->w);
}

/* Free what two recording streams received, then the world. */
static void dw_free_streams(dw *x, uint8_t *rx1, uint8_t *rx2)
{
    free(rx1);
    free(rx2);
    dw_free(x);
}

static sim_sched *dw_sched(const dw *x)
{
    return sim_world_sched(x->w);
}
static mesh_time dw_now(const dw *x)
{
    return sim_sched_now(dw_sched(x));
}
static void dw_run(dw *x)
{
    CU_ASSERT_EQUAL(sim_sched_run(dw_sched(x)), MESH_OK);
}
static void dw_run_until(dw *x, mesh_time t)
{
    CU_ASSERT_EQUAL(sim_sched_run_until(dw_sched(x), t), MESH_OK);
}

/* ---- timers ------------------------------------------------------------------------------- */

typedef struct tlog {
    int n;
    int id[MAX_LOG];
    mesh_time at[MAX_LOG];
} tlog;

typedef struct trec {
    const mesh_env *env;
    tlog *log;
    int id;
    mesh_timer *t;
    int rearm_left; /* re-arm this many times, `period` apart ... */
    mesh_time period;
    int free_when_done; /* ... then free the timer inside its own callback */
    int freed;
} trec;

static void on_timer(mesh_timer *t, void *ud)
{
    CB_ENTER();
    trec *r = ud;
    CU_ASSERT_PTR_EQUAL(t, r->t);
    CU_ASSERT_FALSE(r->freed);
    CU_ASSERT_FATAL(r->log->n < MAX_LOG);
    r->log->id[r->log->n] = r->id;
    r->log->at[r->log->n] = mesh_env_now(r->env);
    r->log->n++;
    if (r->rearm_left > 0) {
        r->rearm_left--;
        r->env->ops->timer_set(r->env->obj, t, mesh_env_now(r->env) + r->period);
    } else if (r->free_when_done) {
        r->env->ops->timer_free(r->env->obj, t);
        r->freed = 1;
    }
}

static void trec_new(dw *x, trec *r, tlog *log, int id)
{
    memset(r, 0, sizeof *r);
    r->env = &x->env[ALICE];
    r->log = log;
    r->id = id;
    ENV(r->t = r->env->ops->timer_new(r->env->obj, on_timer, r));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->t);
}

static void tset(trec *r, mesh_time when)
{
    ENV(r->env->ops->timer_set(r->env->obj, r->t, when));
}

static void test_timers(void)
{
    dw x;
    dw_init(&x, 1);
    const mesh_env *e = &x.env[ALICE];
    CU_ASSERT_EQUAL(mesh_env_now(e), 0);
    static tlog log;
    memset(&log, 0, sizeof log);
    trec r[8];
    for (int i = 0; i < 8; i++)
        trec_new(&x, &r[i], &log, i);

    /* order: by time, ties in the order they were set */
    tset(&r[3], 30 * MS);
    tset(&r[1], 10 * MS);
    tset(&r[2], 20 * MS);
    tset(&r[4], 20 * MS);
    /* re-arming replaces: r0 fires once, at the later setting's time */
    tset(&r[0], 50 * MS);
    tset(&r[0], 40 * MS);
    /* stop and MESH_TIME_NEVER disarm */
    tset(&r[5], 45 * MS);
    ENV(e->ops->timer_stop(e->obj, r[5].t));
    tset(&r[6], 46 * MS);
    tset(&r[6], MESH_TIME_NEVER);
    /* freed before it fires: never fires */
    tset(&r[7], 47 * MS);
    ENV(e->ops->timer_free(e->obj, r[7].t));
    r[7].freed = 1;
    CU_ASSERT_EQUAL(log.n, 0);
    dw_run(&x);
    static const int order[] = {1, 2, 4, 3, 0};
    static const mesh_time when[] = {10 * MS, 20 * MS, 20 * MS, 30 * MS, 40 * MS};
    CU_ASSERT_EQUAL_FATAL(log.n, 5);
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(log.id[i], order[i]);
        CU_ASSERT_EQUAL(log.at[i], when[i]);
    }

    /* a time in the past fires on the next turn, at now, never inside timer_set */
    dw_run_until(&x, 100 * MS);
    log.n = 0;
    tset(&r[1], 10 * MS);
    tset(&r[2], 100 * MS); /* exactly now: also later */
    CU_ASSERT_EQUAL(log.n, 0);
    dw_run(&x);
    CU_ASSERT_EQUAL_FATAL(log.n, 2);
    CU_ASSERT_EQUAL(log.id[0], 1);
    CU_ASSERT_EQUAL(log.at[0], 100 * MS);
    CU_ASSERT_EQUAL(log.at[1], 100 * MS);

    /* a periodic timer re-arms itself from its callback, then frees itself there */
    log.n = 0;
    r[3].rearm_left = 2;
    r[3].period = 10 * MS;
    r[3].free_when_done = 1;
    tset(&r[3], 200 * MS);
    dw_run(&x);
    CU_ASSERT_EQUAL_FATAL(log.n, 3);
    CU_ASSERT_EQUAL(log.at[0], 200 * MS);
    CU_ASSERT_EQUAL(log.at[1], 210 * MS);
    CU_ASSERT_EQUAL(log.at[2], 220 * MS);
    CU_ASSERT_TRUE(r[3].freed);

    /* a timer can fire again after it fired */
    log.n = 0;
    tset(&r[4], 300 * MS);
    dw_run(&x);
    tset(&r[4], 301 * MS);
    dw_run(&x);
    CU_ASSERT_EQUAL(log.n, 2);
    CU_ASSERT_EQUAL(log.at[1], 301 * MS);
    /* the rest (r0..r2, r4..r6) are released by sim_driver_free */
    dw_free(&x);
}

/* ---- streams: recording callbacks ----------------------------------------------------------- */

typedef struct sep {
    dw *x;
    int drv;
    mesh_stream *s;
    int connected, closed, writable, accepted;
    mesh_time connected_at, closed_at, accepted_at;
    int reason;
    int after_release; /* callbacks after on_closed or our own close */
    int released;
    uint8_t *rx;
    size_t rxlen;
    /* knobs */
    int echo;          /* write back whatever arrives */
    int close_in_data; /* close(how) on the first on_data */
    int close_how;
    int misuse_in_closed; /* call close and write on the handle inside on_closed */
    size_t close_after;   /* close gracefully once this many bytes arrived (0 = never) */
    const uint8_t *greet; /* written in on_connected */
    size_t greet_len;
    size_t pending_at_write; /* stream_pending() right after the greeting write */
} sep;

static const mesh_env *sep_env(const sep *p)
{
    return &p->x->env[p->drv];
}

static void sep_close(sep *p, mesh_stream *s, int how)
{
    const mesh_env *e = sep_env(p);
    p->released = 1;
    e->ops->stream_close(e->obj, s, how);
}

static void s_connected(mesh_stream *s, void *ud)
{
    CB_ENTER();
    sep *p = ud;
    const mesh_env *e = sep_env(p);
    if (p->released || p->closed)
        p->after_release++;
    p->connected++;
    p->connected_at = mesh_env_now(e);
    if (p->greet) {
        CU_ASSERT_EQUAL(e->ops->stream_write(e->obj, s, p->greet, p->greet_len), MESH_OK);
        p->pending_at_write = e->ops->stream_pending(e->obj, s);
    }
}

static void s_data(mesh_stream *s, const uint8_t *data, size_t len, void *ud)
{
    CB_ENTER();
    sep *p = ud;
    const mesh_env *e = sep_env(p);
    if (p->released || p->closed)
        p->after_release++;
    p->rx = realloc(p->rx, p->rxlen + len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->rx);
    memcpy(p->rx + p->rxlen, data, len);
    p->rxlen += len;
    if (p->echo)
        CU_ASSERT_EQUAL(e->ops->stream_write(e->obj, s, data, len), MESH_OK);
    if (p->close_in_data)
        sep_close(p, s, p->close_how);
    else if (p->close_after && p->rxlen >= p->close_after)
        sep_close(p, s, MESH_CLOSE_GRACEFUL);
}

static void s_writable(mesh_stream *s, void *ud)
{
    CB_ENTER();
    sep *p = ud;
    const mesh_env *e = sep_env(p);
    if (p->released || p->closed)
        p->after_release++;
    p->writable++;
    CU_ASSERT_EQUAL(e->ops->stream_pending(e->obj, s), 0);
}

static void s_closed(mesh_stream *s, int reason, void *ud)
{
    CB_ENTER();
    sep *p = ud;
    const mesh_env *e = sep_env(p);
    if (p->released || p->closed)
        p->after_release++;
    p->closed++;
    p->closed_at = mesh_env_now(e);
    p->reason = reason;
    if (p->misuse_in_closed) {
        /* rule 4: the handle is being released; a close here is ignored, a write refused */
        CU_ASSERT_EQUAL(e->ops->stream_write(e->obj, s, "x", 1), MESH_ERR_CLOSED);
        e->ops->stream_close(e->obj, s, MESH_CLOSE_ABORT);
    }
}

static const mesh_stream_cbs sep_cbs = {s_connected, s_data, s_writable, s_closed};

typedef struct srv {
    dw *x;
    int drv;
    mesh_listener *l;
    sep conn; /* the (last) accepted stream */
    int accepted;
    mesh_addr peer;
    int refuse;         /* close new streams inside accept */
    int close_listener; /* close the listener inside accept */
} srv;

static void on_accept(mesh_listener *l, mesh_stream *s, const mesh_addr *peer, void *ud)
{
    CB_ENTER();
    srv *v = ud;
    const mesh_env *e = &v->x->env[v->drv];
    CU_ASSERT_PTR_EQUAL(l, v->l);
    v->accepted++;
    v->peer = *peer;
    v->conn.s = s;
    v->conn.accepted_at = mesh_env_now(e);
    if (v->close_listener) {
        e->ops->listener_close(e->obj, l);
        v->l = NULL;
    }
    if (v->refuse) {
        sep_close(&v->conn, s, MESH_CLOSE_ABORT);
        return;
    }
    e->ops->stream_set_cbs(e->obj, s, &sep_cbs, &v->conn);
}

static void srv_listen(dw *x, srv *v, int drv, uint16_t port)
{
    memset(v, 0, sizeof *v);
    v->x = x;
    v->drv = drv;
    v->conn.x = x;
    v->conn.drv = drv;
    const mesh_env *e = &x->env[drv];
    mesh_addr any = mesh_addr_v4(0, port);
    int err = 0;
    ENV(v->l = e->ops->listen(e->obj, &any, on_accept, v, &err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(v->l);
}

static void sep_init(sep *p, dw *x, int drv)
{
    memset(p, 0, sizeof *p);
    p->x = x;
    p->drv = drv;
}

static void sep_connect(sep *p, dw *x, int drv, const mesh_addr *to)
{
    const mesh_env *e = &x->env[drv];
    int err = 12345;
    ENV(p->s = e->ops->connect(e->obj, to, &sep_cbs, p, &err));
    CU_ASSERT_PTR_NOT_NULL(p->s);
    CU_ASSERT_EQUAL(err, 12345); /* untouched on success */
}

/* ---- rule 1 ---------------------------------------------------------------------------------- */

static void test_rule1_outcomes_come_later(void)
{
    dw x;
    dw_init(&x, 1);
    const mesh_env *a = &x.env[ALICE];
    sep unreachable, v6, refused, bad;
    sep_init(&unreachable, &x, ALICE);
    sep_init(&v6, &x, ALICE);
    sep_init(&refused, &x, ALICE);
    sep_init(&bad, &x, ALICE);

    /* an address no host owns: a handle now, MESH_ERR_TIMEOUT at the connect timeout */
    mesh_addr nobody = mesh_addr_v4(IP_NOBODY, 80);
    sep_connect(&unreachable, &x, ALICE, &nobody);
    /* IPv6 (not modelled): a handle now, MESH_ERR_UNREACHABLE on the next turn */
    mesh_addr six;
    CU_ASSERT_EQUAL(mesh_addr_parse(&six, "[2001:db8::1]:80"), MESH_OK);
    sep_connect(&v6, &x, ALICE, &six);
    int rc;
    ENV(rc = a->ops->stream_write(a->obj, v6.s, "x", 1));
    CU_ASSERT_EQUAL(rc, MESH_ERR_CLOSED); /* refused at once, no callback */
    /* no listener: MESH_ERR_REFUSED one RTT later */
    mesh_addr bob80 = mesh_addr_v4(IP_BOB, 80);
    sep_connect(&refused, &x, ALICE, &bob80);
    /* port 0 is an immediate local failure: NULL and *err, no callback ever */
    mesh_addr port0 = mesh_addr_v4(IP_BOB, 0);
    int err = 0;
    mesh_stream *none;
    ENV(none = a->ops->connect(a->obj, &port0, &sep_cbs, &bad, &err));
    CU_ASSERT_PTR_NULL(none);
    CU_ASSERT_EQUAL(err, MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(unreachable.closed + v6.closed + refused.closed, 0);

    dw_run(&x);
    CU_ASSERT_EQUAL(v6.closed, 1);
    CU_ASSERT_EQUAL(v6.reason, MESH_ERR_UNREACHABLE);
    CU_ASSERT_EQUAL(v6.closed_at, 0);
    CU_ASSERT_EQUAL(refused.reason, MESH_ERR_REFUSED);
    CU_ASSERT_EQUAL(refused.closed_at, RTT);
    CU_ASSERT_EQUAL(unreachable.closed, 1);
    CU_ASSERT_EQUAL(unreachable.reason, MESH_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(unreachable.closed_at, CONNECT_TIMEOUT);
    CU_ASSERT_EQUAL(unreachable.connected + v6.connected + refused.connected, 0);
    CU_ASSERT_EQUAL(bad.closed + bad.connected, 0);
    dw_free(&x);
}

/* ---- random -----------------------------------------------------------------------------------
 */

static void draw(uint64_t seed, int drv, uint8_t out[64])
{
    dw x;
    dw_init(&x, seed);
    const mesh_env *e = &x.env[drv];
    ENV(mesh_env_random(e, out, 32));
    ENV(mesh_env_random(e, out + 32, 32));
    dw_free(&x);
}

static void test_random_per_seed_and_host(void)
{
    uint8_t a1[64], a2[64], b1[64], a_other_seed[64];
    draw(77, ALICE, a1);
    draw(77, ALICE, a2);
    draw(77, BOB, b1);
    draw(78, ALICE, a_other_seed);
    CU_ASSERT_EQUAL(memcmp(a1, a2, 64), 0);     /* reproducible per (seed, host) */
    CU_ASSERT_NOT_EQUAL(memcmp(a1, b1, 64), 0); /* different between hosts */
    CU_ASSERT_NOT_EQUAL(memcmp(a1, a_other_seed, 64), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(a1, a1 + 32, 32), 0); /* the stream advances */
    /* a host's stream does not depend on what other hosts drew */
    dw x;
    dw_init(&x, 77);
    uint8_t junk[100], again[64];
    ENV(mesh_env_random(&x.env[BOB], junk, sizeof junk));
    ENV(mesh_env_random(&x.env[ALICE], again, 64));
    CU_ASSERT_EQUAL(memcmp(a1, again, 64), 0);
    uint64_t v;
    for (int i = 0; i < 100; i++) {
        ENV(v = mesh_env_random_below(&x.env[ALICE], 6));
        CU_ASSERT_TRUE(v < 6);
    }
    dw_free(&x);
}

/* ---- streams through the env ------------------------------------------------------------------
 */

static void test_listen_connect_echo(void)
{
    enum { N = 50000 };
    dw x;
    dw_init(&x, 1);
    const mesh_env *b = &x.env[BOB];
    srv v;
    srv_listen(&x, &v, BOB, ECHO_PORT);
    v.conn.echo = 1;
    mesh_addr la;
    CU_ASSERT_EQUAL(b->ops->listener_addr(b->obj, v.l, &la), MESH_OK);
    mesh_addr expect = mesh_addr_v4(IP_BOB, ECHO_PORT);
    CU_ASSERT_TRUE(mesh_addr_equal(&la, &expect));
    /* the port is taken now; another host's address cannot be bound; no IPv6 */
    int err = 0;
    mesh_listener *l2;
    mesh_addr same = mesh_addr_v4(IP_BOB, ECHO_PORT), foreign = mesh_addr_v4(IP_ALICE, 9);
    ENV(l2 = b->ops->listen(b->obj, &same, on_accept, &v, &err));
    CU_ASSERT_PTR_NULL(l2);
    CU_ASSERT_EQUAL(err, MESH_ERR_ADDR);
    ENV(l2 = b->ops->listen(b->obj, &foreign, on_accept, &v, &err));
    CU_ASSERT_PTR_NULL(l2);
    CU_ASSERT_EQUAL(err, MESH_ERR_ADDR);
    mesh_addr six;
    CU_ASSERT_EQUAL(mesh_addr_parse(&six, "[::]:9"), MESH_OK);
    ENV(l2 = b->ops->listen(b->obj, &six, on_accept, &v, &err));
    CU_ASSERT_PTR_NULL(l2);
    CU_ASSERT_EQUAL(err, MESH_ERR_ADDR);
    /* port 0: an ephemeral port */
    mesh_addr any0 = mesh_addr_v4(0, 0), eph;
    ENV(l2 = b->ops->listen(b->obj, &any0, on_accept, &v, &err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(l2);
    CU_ASSERT_EQUAL(b->ops->listener_addr(b->obj, l2, &eph), MESH_OK);
    CU_ASSERT_TRUE(eph.port >= SIM_TCP_EPHEMERAL_LO);
    ENV(b->ops->listener_close(b->obj, l2));

    uint8_t *msg = malloc(N);
    CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
    for (size_t i = 0; i < N; i++)
        msg[i] = (uint8_t)(i * 31 + 7);
    sep cli;
    sep_init(&cli, &x, ALICE);
    cli.greet = msg;
    cli.greet_len = N;
    cli.close_after = N; /* close once the whole echo is back */
    sep_connect(&cli, &x, ALICE, &la);
    dw_run(&x);
    CU_ASSERT_EQUAL(cli.connected, 1);
    CU_ASSERT_EQUAL(cli.connected_at, RTT);
    CU_ASSERT_EQUAL(cli.pending_at_write, N); /* queued in the driver, then handed over */
    CU_ASSERT_TRUE(cli.writable >= 1);
    CU_ASSERT_EQUAL(v.accepted, 1);
    CU_ASSERT_EQUAL(v.conn.accepted_at, RTT + ONE_WAY);
    CU_ASSERT_EQUAL_FATAL(v.conn.rxlen, N);
    CU_ASSERT_EQUAL(memcmp(v.conn.rx, msg, N), 0);
    CU_ASSERT_EQUAL_FATAL(cli.rxlen, N);
    CU_ASSERT_EQUAL(memcmp(cli.rx, msg, N), 0);
    /* the client closed gracefully: the server saw an orderly close after every byte */
    CU_ASSERT_EQUAL(v.conn.closed, 1);
    CU_ASSERT_EQUAL(v.conn.reason, MESH_OK);
    CU_ASSERT_EQUAL(cli.closed, 0);
    CU_ASSERT_EQUAL(cli.after_release + v.conn.after_release, 0);
    CU_ASSERT_EQUAL(sim_tcp_get_stats(sim_world_tcp(x.w)).conns_live, 0);
    free(msg);
    dw_free_streams(&x, cli.rx, v.conn.rx);
}

static void test_connect_to_self(void)
{
    /* A node may dial its own address (e.g. its own entry in a bootstrap list): the segments
     * go out through the access link and back, RTT = 2 * (up + core + down) = 40 ms. */
    dw x;
    dw_init(&x, 1);
    srv v;
    srv_listen(&x, &v, ALICE, ECHO_PORT);
    v.conn.echo = 1;
    sep cli;
    sep_init(&cli, &x, ALICE);
    cli.greet = (const uint8_t *)"mirror";
    cli.greet_len = 6;
    cli.close_after = 6;
    mesh_addr me = mesh_addr_v4(IP_ALICE, ECHO_PORT);
    sep_connect(&cli, &x, ALICE, &me);
    dw_run(&x);
    CU_ASSERT_EQUAL(cli.connected_at, RTT);
    CU_ASSERT_EQUAL(v.accepted, 1);
    CU_ASSERT_EQUAL_FATAL(cli.rxlen, 6);
    CU_ASSERT_EQUAL(memcmp(cli.rx, "mirror", 6), 0);
    CU_ASSERT_EQUAL(v.conn.reason, MESH_OK);
    CU_ASSERT_EQUAL(sim_tcp_get_stats(sim_world_tcp(x.w)).conns_live, 0);
    dw_free_streams(&x, cli.rx, v.conn.rx);
}

/* ---- rules 2 and 4 ----------------------------------------------------------------------------
 */

static void test_rule2_close_inside_callbacks(void)
{
    enum { N = 20000 };
    uint8_t *msg = calloc(1, N);
    CU_ASSERT_PTR_NOT_NULL_FATAL(msg);

    /* (a) the server aborts inside its first on_data: no further callback for it, the
     * client is reset */
    dw x;
    dw_init(&x, 1);
    srv v;
    srv_listen(&x, &v, BOB, ECHO_PORT);
    v.conn.close_in_data = 1;
    v.conn.close_how = MESH_CLOSE_ABORT;
    sep cli;
    sep_init(&cli, &x, ALICE);
    cli.greet = msg;
    cli.greet_len = N;
    cli.misuse_in_closed = 1;
    mesh_addr to = mesh_addr_v4(IP_BOB, ECHO_PORT);
    sep_connect(&cli, &x, ALICE, &to);
    dw_run(&x);
    CU_ASSERT_EQUAL(v.conn.rxlen, SIM_TCP_DEFAULT_MSS);
    CU_ASSERT_EQUAL(v.conn.after_release + v.conn.closed, 0);
    CU_ASSERT_EQUAL(cli.closed, 1);
    CU_ASSERT_EQUAL(cli.reason, MESH_ERR_RESET);
    CU_ASSERT_EQUAL(cli.closed_at, RTT + 2 * ONE_WAY);
    CU_ASSERT_EQUAL(cli.after_release, 0);
    dw_free_streams(&x, cli.rx, v.conn.rx);

    /* (b) the listener is closed inside its accept callback; the accepted stream lives on,
     * the next connect is refused */
    dw_init(&x, 1);
    srv_listen(&x, &v, BOB, ECHO_PORT);
    v.close_listener = 1;
    v.conn.echo = 1;
    sep_init(&cli, &x, ALICE);
    cli.greet = (const uint8_t *)"ping";
    cli.greet_len = 4;
    sep_connect(&cli, &x, ALICE, &to);
    dw_run(&x);
    CU_ASSERT_EQUAL(v.accepted, 1);
    CU_ASSERT_EQUAL(cli.rxlen, 4);
    sep second;
    sep_init(&second, &x, ALICE);
    sep_connect(&second, &x, ALICE, &to);
    dw_run(&x);
    CU_ASSERT_EQUAL(second.reason, MESH_ERR_REFUSED);
    CU_ASSERT_EQUAL(v.accepted, 1);
    dw_free_streams(&x, cli.rx, v.conn.rx);

    /* (c) the new stream is refused inside accept: the client connected, then is reset */
    dw_init(&x, 1);
    srv_listen(&x, &v, BOB, ECHO_PORT);
    v.refuse = 1;
    sep_init(&cli, &x, ALICE);
    sep_connect(&cli, &x, ALICE, &to);
    dw_run(&x);
    CU_ASSERT_EQUAL(cli.connected_at, RTT);
    CU_ASSERT_EQUAL(cli.reason, MESH_ERR_RESET);
    CU_ASSERT_EQUAL(cli.closed_at, 2 * RTT);
    CU_ASSERT_EQUAL(v.conn.closed + v.conn.after_release, 0);
    dw_free(&x);

    /* (d) a stream closed before its deferred failure is reported gets no callback */
    dw_init(&x, 1);
    const mesh_env *a = &x.env[ALICE];
    mesh_addr six;
    CU_ASSERT_EQUAL(mesh_addr_parse(&six, "[2001:db8::1]:80"), MESH_OK);
    sep_init(&cli, &x, ALICE);
    sep_connect(&cli, &x, ALICE, &six);
    ENV(sep_close(&cli, cli.s, MESH_CLOSE_GRACEFUL));
    mesh_addr nobody = mesh_addr_v4(IP_NOBODY, 80);
    sep_init(&second, &x, ALICE);
    sep_connect(&second, &x, ALICE, &nobody);
    ENV(a->ops->stream_close(a->obj, second.s, MESH_CLOSE_ABORT));
    second.released = 1;
    dw_run(&x);
    CU_ASSERT_EQUAL(cli.closed + cli.connected + second.closed + second.connected, 0);
    /* the SYN and the RST die in the core at 5 ms; no SYN retry or connect timer is left */
    CU_ASSERT_EQUAL(dw_now(&x), 5 * MS);
    dw_free(&x);
    free(msg);
}

/* ---- datagrams ---------------------------------------------------------------------------------
 */

typedef struct drec {
    dw *x;
    int drv;
    mesh_dgram *g;
    int n;
    mesh_time at[8];
    mesh_addr from[8];
    char text[8][32];
    int reply;      /* answer every datagram to its sender with "pong" */
    int close_self; /* close inside the callback */
    int after_close;
    int closed;
} drec;

static void on_dgram(mesh_dgram *g, const mesh_addr *from, const uint8_t *data, size_t len,
                     void *ud)
{
    CB_ENTER();
    drec *r = ud;
    const mesh_env *e = &r->x->env[r->drv];
    CU_ASSERT_PTR_EQUAL(g, r->g);
    if (r->closed)
        r->after_close++;
    CU_ASSERT_FATAL(r->n < 8);
    r->at[r->n] = mesh_env_now(e);
    r->from[r->n] = *from;
    size_t n = len < 31 ? len : 31;
    memcpy(r->text[r->n], data, n);
    r->text[r->n][n] = 0;
    r->n++;
    if (r->reply)
        CU_ASSERT_EQUAL(e->ops->dgram_send(e->obj, g, from, "pong", 4), MESH_OK);
    if (r->close_self) {
        r->closed = 1;
        e->ops->dgram_close(e->obj, g);
    }
}

static void dbind(dw *x, drec *r, int drv, uint32_t ip, uint16_t port)
{
    memset(r, 0, sizeof *r);
    r->x = x;
    r->drv = drv;
    const mesh_env *e = &x->env[drv];
    mesh_addr at = mesh_addr_v4(ip, port);
    int err = 0;
    ENV(r->g = e->ops->dgram_bind(e->obj, &at, on_dgram, r, &err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->g);
}

static int dsend(drec *r, const mesh_addr *to, const char *text)
{
    const mesh_env *e = &r->x->env[r->drv];
    int rc;
    ENV(rc = e->ops->dgram_send(e->obj, r->g, to, text, strlen(text)));
    return rc;
}

/* The simulated host's bind rules (its own address or 0.0.0.0, IPv4 only) and the paths a
 * datagram takes: across a LAN in 2 ms, from the core to a public LAN with an ephemeral
 * source port. */
static void test_dgram_paths(void)
{
    dw x;
    dw_init(&x, 1);
    drec c, d, a;
    dbind(&x, &c, CAROL, 0, MDNS_PORT); /* 0.0.0.0 */
    dbind(&x, &d, DAVE, IP_DAVE, MDNS_PORT);
    dbind(&x, &a, ALICE, 0, 0);
    mesh_addr ca;
    CU_ASSERT_EQUAL(x.env[CAROL].ops->dgram_addr(x.env[CAROL].obj, c.g, &ca), MESH_OK);
    mesh_addr expect = mesh_addr_v4(IP_CAROL, MDNS_PORT);
    CU_ASSERT_TRUE(mesh_addr_equal(&ca, &expect));
    /* binding someone else's address, or IPv6, fails at once */
    mesh_dgram *bad;
    int err = 0;
    mesh_addr foreign = mesh_addr_v4(IP_DAVE, 1), six;
    ENV(bad = x.env[CAROL].ops->dgram_bind(x.env[CAROL].obj, &foreign, on_dgram, &c, &err));
    CU_ASSERT_PTR_NULL(bad);
    CU_ASSERT_EQUAL(err, MESH_ERR_ADDR);
    CU_ASSERT_EQUAL(mesh_addr_parse(&six, "[::]:5353"), MESH_OK);
    ENV(bad = x.env[CAROL].ops->dgram_bind(x.env[CAROL].obj, &six, on_dgram, &c, &err));
    CU_ASSERT_PTR_NULL(bad);
    CU_ASSERT_EQUAL(err, MESH_ERR_ADDR);

    /* across the LAN and back: one access link each way */
    d.reply = 1;
    mesh_addr dave = mesh_addr_v4(IP_DAVE, MDNS_PORT);
    CU_ASSERT_EQUAL(dsend(&c, &dave, "ping"), MESH_OK);
    dw_run(&x);
    CU_ASSERT_EQUAL_FATAL(d.n, 1);
    CU_ASSERT_EQUAL(d.at[0], 2 * MS);
    CU_ASSERT_TRUE(mesh_addr_equal(&d.from[0], &expect));
    CU_ASSERT_EQUAL_FATAL(c.n, 1);
    CU_ASSERT_STRING_EQUAL(c.text[0], "pong");
    CU_ASSERT_EQUAL(c.at[0], 4 * MS);

    /* alice on the core reaches dave (the LAN is public) with an ephemeral source port */
    CU_ASSERT_EQUAL(dsend(&a, &dave, "from afar"), MESH_OK);
    dw_run(&x);
    CU_ASSERT_EQUAL_FATAL(a.n, 1);
    CU_ASSERT_STRING_EQUAL(a.text[0], "pong");
    CU_ASSERT_TRUE(a.from[0].port == MDNS_PORT);
    CU_ASSERT_TRUE(d.from[1].port >= SIM_UDP_EPHEMERAL_LO);
    dw_free(&x);
}

/* ---- log --------------------------------------------------------------------------------------
 */

typedef struct lrec {
    int n;
    char last[SIM_DRIVER_LOG_LINE_MAX + 8];
    char host[16];
    int level;
    mesh_time t;
} lrec;

static void on_log(void *ud, mesh_time t, const char *host, int level, const char *line)
{
    lrec *r = ud;
    r->n++;
    r->t = t;
    r->level = level;
    snprintf(r->host, sizeof r->host, "%s", host);
    snprintf(r->last, sizeof r->last, "%s", line);
}

static void test_log(void)
{
    dw x;
    dw_init(&x, 1);
    mesh_log(&x.env[ALICE], MESH_LOG_INFO, "nobody listens"); /* no sink: dropped */
    lrec r = {0};
    sim_world_set_log(x.w, on_log, &r);
    dw_run_until(&x, 1500 * MS);
    mesh_log(&x.env[BOB], MESH_LOG_WARN, "peer %d gone", 7);
    CU_ASSERT_EQUAL(r.n, 1);
    CU_ASSERT_STRING_EQUAL(r.last, "1.500000000 bob WARN peer 7 gone");
    CU_ASSERT_STRING_EQUAL(r.host, "bob");
    CU_ASSERT_EQUAL(r.level, MESH_LOG_WARN);
    CU_ASSERT_EQUAL(r.t, 1500 * MS);
    char longmsg[3000];
    memset(longmsg, 'z', sizeof longmsg - 1);
    longmsg[sizeof longmsg - 1] = 0;
    x.env[ALICE].ops->log(x.env[ALICE].obj, MESH_LOG_DEBUG, longmsg);
    CU_ASSERT_EQUAL(r.n, 2);
    CU_ASSERT_TRUE(strlen(r.last) < SIM_DRIVER_LOG_LINE_MAX);
    CU_ASSERT_EQUAL(strncmp(r.last, "1.500000000 alice DEBUG zzz", 27), 0);
    dw_free(&x);
}

/* ---- sim_driver_free --------------------------------------------------------------------------
 */

static void test_driver_free_releases_everything(void)
{
    /* Alice holds a timer, a listener, a datagram socket, an established stream and a connect
     * in progress, then her driver is freed while the world runs on. Bob's end of the
     * established stream is reset; nothing calls back into alice's freed core; the ASan build
     * checks that nothing leaks. */
    dw x;
    dw_init(&x, 1);
    static tlog log;
    memset(&log, 0, sizeof log);
    trec t;
    trec_new(&x, &t, &log, 1);
    tset(&t, 500 * MS);
    srv mine;
    srv_listen(&x, &mine, ALICE, 80);
    drec g;
    dbind(&x, &g, ALICE, 0, 9999);
    srv v;
    srv_listen(&x, &v, BOB, ECHO_PORT);
    sep est, pending;
    sep_init(&est, &x, ALICE);
    sep_init(&pending, &x, ALICE);
    mesh_addr to = mesh_addr_v4(IP_BOB, ECHO_PORT), nobody = mesh_addr_v4(IP_NOBODY, 1);
    sep_connect(&est, &x, ALICE, &to);
    dw_run_until(&x, 100 * MS);
    CU_ASSERT_EQUAL_FATAL(v.accepted, 1);
    sep_connect(&pending, &x, ALICE, &nobody);
    sim_driver_free(x.d[ALICE]);
    x.d[ALICE] = NULL;
    /* bob sends to alice's (now closed) datagram port: vanishes */
    drec bg;
    dbind(&x, &bg, BOB, 0, 0);
    mesh_addr alice9999 = mesh_addr_v4(IP_ALICE, 9999);
    CU_ASSERT_EQUAL(dsend(&bg, &alice9999, "late"), MESH_OK);
    dw_run(&x);
    CU_ASSERT_EQUAL(log.n, 0);
    CU_ASSERT_EQUAL(est.closed + pending.closed + g.n, 0);
    CU_ASSERT_EQUAL(v.conn.closed, 1);
    CU_ASSERT_EQUAL(v.conn.reason, MESH_ERR_RESET);
    CU_ASSERT_EQUAL(v.conn.closed_at, 100 * MS + ONE_WAY);
    CU_ASSERT_EQUAL(sim_tcp_get_stats(sim_world_tcp(x.w)).conns_live, 0);
    dw_free(&x);
}

/* ---- the env conformance suite on this driver ----------------------------------------------
 */

/* Alice is the client host, Bob the server host, both on the core (RTT 40 ms). */
static int conf_world_new(mesh_conf_world *w, char *why, size_t whylen)
{
    (void)why;
    (void)whylen;
    dw *x = calloc(1, sizeof *x);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    dw_init(x, 1);
    w->impl = x;
    w->client = x->env[ALICE];
    w->server = x->env[BOB];
    w->client_addr = mesh_addr_v4(IP_ALICE, 0);
    w->server_addr = mesh_addr_v4(IP_BOB, 0);
    w->dgram_max = SIM_PKT_MAX_PAYLOAD;
    return 0;
}

static void conf_world_free(mesh_conf_world *w)
{
    dw_free(w->impl);
    free(w->impl);
}

static void conf_run_for(mesh_conf_world *w, mesh_time dt)
{
    dw *x = w->impl;
    dw_run_until(x, dw_now(x) + dt);
}

static const mesh_conf_driver CONF_SIM = {"sim driver", conf_world_new, conf_world_free,
                                          conf_run_for};

static int use_sim(void)
{
    mesh_conf_use(&CONF_SIM);
    return 0;
}

static const CU_TestInfo driver_tests[] = {
    {"timers: order, past, re-arm, stop, free inside callback", test_timers},
    {"rule 1: outcomes are reported later, never inside the call", test_rule1_outcomes_come_later},
    {"random: reproducible per (seed, host)", test_random_per_seed_and_host},
    {"listen, connect and echo through the env", test_listen_connect_echo},
    {"connect to one's own address", test_connect_to_self},
    {"rules 2 and 4: close inside callbacks", test_rule2_close_inside_callbacks},
    {"datagrams: bind rules, LAN and core paths", test_dgram_paths},
    {"log lines", test_log},
    {"sim_driver_free releases what the core holds", test_driver_free_releases_everything},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"env conformance: sim driver", use_sim, NULL, NULL, NULL, mesh_conf_tests},
    {"sim_driver", NULL, NULL, NULL, NULL, (CU_TestInfo *)driver_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
