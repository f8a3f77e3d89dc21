/* test_driver.c — the libevent driver against the env.h contract, over loopback only.
 *
 * The contract's cases are the env conformance suite (tests/common/env_conformance.c), run
 * here over 127.0.0.1 and ::1; the simulator's driver runs the same cases. This file adds what
 * only this driver has: zero-copy writes, the connect timeout and "no route" (real sockets),
 * its datagram limits, the log level filter, signals, mesh_real_free reclaiming open handles.
 *
 * Every case runs a real event loop on 127.0.0.1 or ::1. Cases that need a packet filter
 * (connect timeout) or no route at all run in a child process inside a network namespace the
 * test creates with unshare(CLONE_NEWNET) (root only); the namespace and its iptables rule
 * vanish with the child on every exit path. A case that cannot run prints
 * "SKIP: <reason>" and passes. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "env_conformance.h"
#include "mesh_test.h"
#include "real/driver.h"

enum {
    RUN_SLICE_MS = 5,        /* loop slice between condition checks */
    WAIT_LIMIT_MS = 10000,   /* upper bound on any wait in these tests */
    ECHO_BYTES = 1 << 20,    /* 1 MiB echoed intact */
    FIN_BYTES = 100 * 1024,  /* sent before a graceful close */
    BACKLOG_BYTES = 8 << 20, /* 8 MiB queued at once for the backpressure case */
    TEST_CONNECT_TIMEOUT_MS = 300,
    NTIMERS = 6,
};

/* ---- harness ------------------------------------------------------------------------- */

static unsigned g_log_lines;

static void quiet_sink(void *ud, int level, mesh_time now, const char *msg)
{
    (void)ud;
    g_log_lines++;
    if (getenv("MESH_TEST_LOG"))
        fprintf(stderr, "[%llu] %d %s\n", (unsigned long long)now, level, msg);
}

static mesh_real *new_driver(uint32_t connect_timeout_ms)
{
    mesh_real_config cfg;
    mesh_real_config_default(&cfg);
    cfg.log_level = MESH_LOG_DEBUG;
    cfg.log_sink = quiet_sink;
    if (connect_timeout_ms)
        cfg.connect_timeout_ms = connect_timeout_ms;
    mesh_real *r = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_real_new(&r, NULL, &cfg), MESH_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    return r;
}

#define RUN_SLICE_NS ((mesh_time)RUN_SLICE_MS * MESH_NS_PER_MS)

/* Run the loop until cond holds or WAIT_LIMIT_MS passed; evaluates to cond (a GNU statement
 * expression, as gcc and clang accept in C11 mode). */
#define RUN_UNTIL(r, cond)                                                                         \
    ({                                                                                             \
        for (int waited_ = 0; !(cond) && waited_ < WAIT_LIMIT_MS; waited_ += RUN_SLICE_MS)         \
            mesh_real_run_for((r), RUN_SLICE_NS);                                                  \
        (cond);                                                                                    \
    })

static void skip_case(const char *why)
{
    printf("\n  SKIP: %s\n", why);
    fflush(stdout);
}

static uint8_t pattern_byte(size_t i)
{
    return (uint8_t)((i * 2654435761u) >> 13);
}

/* One side of a TCP conversation, with everything the callbacks saw. */
typedef struct side {
    mesh_env env;
    mesh_stream *s;
    uint8_t *rx;
    size_t rxlen, rxcap;
    int connected;
    int closed;
    int reason;
    size_t rx_at_close;
    int writable;
    size_t pending_at_writable;
    int data_calls;
    int echo;              /* write back whatever arrives */
    int close_in_data;     /* -1 none, else how to close from inside the first on_data */
    size_t send_on_accept; /* bytes of pattern to send as soon as accepted */
    int close_after_send;  /* -1 none, else how to close right after send_on_accept */
} side;

static void side_init(side *p, mesh_env env)
{
    memset(p, 0, sizeof *p);
    p->env = env;
    p->close_in_data = -1;
    p->close_after_send = -1;
}

static void side_free(side *p)
{
    free(p->rx);
}

static void on_connected(mesh_stream *s, void *ud)
{
    side *p = ud;
    CU_ASSERT_PTR_EQUAL(s, p->s);
    p->connected++;
}

static void on_data(mesh_stream *s, const uint8_t *data, size_t len, void *ud)
{
    side *p = ud;
    p->data_calls++;
    CU_ASSERT(len > 0);
    if (p->rxlen + len > p->rxcap) {
        size_t cap = p->rxcap ? p->rxcap : 4096;
        while (cap < p->rxlen + len)
            cap *= 2;
        uint8_t *n = realloc(p->rx, cap);
        CU_ASSERT_PTR_NOT_NULL_FATAL(n);
        p->rx = n;
        p->rxcap = cap;
    }
    memcpy(p->rx + p->rxlen, data, len);
    p->rxlen += len;
    if (p->echo)
        CU_ASSERT_EQUAL(p->env.ops->stream_write(p->env.obj, s, data, len), MESH_OK);
    if (p->close_in_data >= 0) {
        p->env.ops->stream_close(p->env.obj, s, p->close_in_data);
        p->s = NULL;
        p->close_in_data = -1;
        p->closed = 1; /* released by us: no on_closed may follow */
    }
}

static void on_writable(mesh_stream *s, void *ud)
{
    side *p = ud;
    p->writable++;
    p->pending_at_writable = p->env.ops->stream_pending(p->env.obj, s);
}

static void on_closed(mesh_stream *s, int reason, void *ud)
{
    side *p = ud;
    CU_ASSERT_PTR_EQUAL(s, p->s);
    CU_ASSERT_EQUAL(p->closed, 0); /* exactly once, and never after our own close */
    p->closed++;
    p->reason = reason;
    p->rx_at_close = p->rxlen;
    p->s = NULL;
}

static const mesh_stream_cbs SIDE_CBS = {on_connected, on_data, on_writable, on_closed};

static void write_pattern(side *p, size_t n)
{
    uint8_t *buf = malloc(n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = pattern_byte(i);
    CU_ASSERT_EQUAL(p->env.ops->stream_write(p->env.obj, p->s, buf, n), MESH_OK);
    free(buf); /* the driver copied it (rule 3) */
}

static int check_pattern(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] != pattern_byte(i))
            return 0;
    return 1;
}

/* The server: one accepted stream handled by a side. */
typedef struct server {
    mesh_listener *l;
    side sd;
    int accepts;
    mesh_addr peer;
} server;

static void on_accept(mesh_listener *l, mesh_stream *s, const mesh_addr *peer, void *ud)
{
    server *sv = ud;
    CU_ASSERT_PTR_EQUAL(l, sv->l);
    sv->accepts++;
    sv->peer = *peer;
    sv->sd.s = s;
    mesh_env e = sv->sd.env;
    e.ops->stream_set_cbs(e.obj, s, &SIDE_CBS, &sv->sd);
    if (sv->sd.send_on_accept)
        write_pattern(&sv->sd, sv->sd.send_on_accept);
    if (sv->sd.close_after_send >= 0) {
        e.ops->stream_close(e.obj, s, sv->sd.close_after_send);
        sv->sd.s = NULL;
        sv->sd.closed = 1;
    }
}

/* Listen on text ("127.0.0.1:0"); returns 0 and fills *bound, or the env error. */
static int server_start(server *sv, mesh_env e, const char *text, mesh_addr *bound)
{
    memset(sv, 0, sizeof *sv);
    side_init(&sv->sd, e);
    mesh_addr a;
    CU_ASSERT_EQUAL_FATAL(mesh_addr_parse(&a, text), MESH_OK);
    int err = 0;
    sv->l = e.ops->listen(e.obj, &a, on_accept, sv, &err);
    if (!sv->l)
        return err;
    CU_ASSERT_EQUAL(e.ops->listener_addr(e.obj, sv->l, bound), MESH_OK);
    CU_ASSERT_EQUAL(bound->family, a.family);
    CU_ASSERT_NOT_EQUAL(bound->port, 0);
    return MESH_OK;
}

static void client_connect(side *c, mesh_env e, const mesh_addr *to)
{
    side_init(c, e);
    int err = 0;
    c->s = e.ops->connect(e.obj, to, &SIDE_CBS, c, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c->s);
    /* rule 1: nothing is reported from inside connect() */
    CU_ASSERT_EQUAL(c->connected, 0);
    CU_ASSERT_EQUAL(c->closed, 0);
}

/* Zero-copy writes (stream_reserve/commit) interleaved with copied ones keep the byte order:
 * the pattern goes out as record-sized reserved pieces, small stream_write pieces between
 * them, and rooms given back unused (commit 0) or partly used. Sizes the driver does not pool
 * and a second reservation get NULL; a commit without a reservation is refused. */
static void test_reserve_commit(void)
{
    mesh_real *r = new_driver(0);
    mesh_env e = mesh_real_env(r);
    server sv;
    mesh_addr bound;
    CU_ASSERT_EQUAL_FATAL(server_start(&sv, e, "127.0.0.1:0", &bound), MESH_OK);
    side c;
    client_connect(&c, e, &bound);
    CU_ASSERT_FATAL(RUN_UNTIL(r, c.connected));
    CU_ASSERT_PTR_NULL(e.ops->stream_reserve(e.obj, c.s, 100));     /* small: copy instead */
    CU_ASSERT_PTR_NULL(e.ops->stream_reserve(e.obj, c.s, 1 << 20)); /* larger than a block */
    CU_ASSERT_EQUAL(e.ops->stream_commit(e.obj, c.s, 10), MESH_ERR_INVAL);
    enum { PIECE = 16406, SMALL = 77 };
    size_t off = 0;
    for (int i = 0; off < ECHO_BYTES; i++) {
        size_t n = ECHO_BYTES - off < PIECE ? ECHO_BYTES - off : PIECE;
        if (i % 3 == 2 && n > SMALL) { /* a small copied write between reserved pieces */
            uint8_t small[SMALL];
            for (size_t k = 0; k < SMALL; k++)
                small[k] = pattern_byte(off + k);
            CU_ASSERT_EQUAL(e.ops->stream_write(e.obj, c.s, small, SMALL), MESH_OK);
            off += SMALL;
            continue;
        }
        uint8_t *room = e.ops->stream_reserve(e.obj, c.s, PIECE);
        CU_ASSERT_PTR_NOT_NULL_FATAL(room);
        CU_ASSERT_PTR_NULL(e.ops->stream_reserve(e.obj, c.s, PIECE)); /* one at a time */
        if (i % 5 == 4) { /* given back unused: nothing goes out */
            memset(room, 0xee, PIECE);
            CU_ASSERT_EQUAL(e.ops->stream_commit(e.obj, c.s, 0), MESH_OK);
            continue;
        }
        for (size_t k = 0; k < n; k++)
            room[k] = pattern_byte(off + k);
        CU_ASSERT_EQUAL(e.ops->stream_commit(e.obj, c.s, n), MESH_OK);
        off += n;
    }
    CU_ASSERT(e.ops->stream_pending(e.obj, c.s) > 0);
    CU_ASSERT(RUN_UNTIL(r, sv.sd.rxlen >= ECHO_BYTES));
    CU_ASSERT_EQUAL(sv.sd.rxlen, ECHO_BYTES);
    CU_ASSERT(sv.sd.rxlen == ECHO_BYTES && check_pattern(sv.sd.rx, sv.sd.rxlen));
    e.ops->stream_close(e.obj, sv.sd.s, MESH_CLOSE_GRACEFUL);
    sv.sd.s = NULL;
    sv.sd.closed = 1;
    CU_ASSERT(RUN_UNTIL(r, c.closed));
    e.ops->listener_close(e.obj, sv.l);
    mesh_real_free(r);
    side_free(&c);
    side_free(&sv.sd);
}

/* Bad input gets an error, never a crash (beyond the conformance suite's cases). */
static void test_bad_input(void)
{
    mesh_real *r = new_driver(0);
    mesh_env e = mesh_real_env(r);
    mesh_addr none;
    memset(&none, 0, sizeof none);
    int err = 0;
    CU_ASSERT_PTR_NULL(e.ops->connect(e.obj, &none, &SIDE_CBS, NULL, &err));
    CU_ASSERT_EQUAL(err, MESH_ERR_INVAL);
    err = 0;
    CU_ASSERT_PTR_NULL(e.ops->listen(e.obj, &none, on_accept, NULL, &err));
    CU_ASSERT_EQUAL(err, MESH_ERR_INVAL);

    server sv;
    mesh_addr bound;
    CU_ASSERT_EQUAL_FATAL(server_start(&sv, e, "127.0.0.1:0", &bound), MESH_OK);
    /* an address that is not ours cannot be bound */
    mesh_addr foreign = mesh_addr_v4(0xc0000201u, 0); /* 192.0.2.1, TEST-NET-1: never sent to */
    err = 0;
    CU_ASSERT_PTR_NULL(e.ops->dgram_bind(e.obj, &foreign, NULL, NULL, &err));
    CU_ASSERT_EQUAL(err, MESH_ERR_ADDR);

    side c;
    client_connect(&c, e, &bound);
    CU_ASSERT_EQUAL(e.ops->stream_write(e.obj, c.s, NULL, 5), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(e.ops->stream_write(e.obj, c.s, "", 0), MESH_OK);
    e.ops->stream_close(e.obj, c.s, MESH_CLOSE_ABORT);
    e.ops->listener_close(e.obj, sv.l);
    mesh_real_free(r);
    side_free(&c);
    side_free(&sv.sd);
}

/* mesh_real_free reclaims everything the core left open (checked by the ASan build). */
static void test_free_with_open_handles(void)
{
    mesh_real *r = new_driver(0);
    mesh_env e = mesh_real_env(r);
    server sv;
    mesh_addr bound;
    CU_ASSERT_EQUAL_FATAL(server_start(&sv, e, "127.0.0.1:0", &bound), MESH_OK);
    side c;
    client_connect(&c, e, &bound);
    CU_ASSERT(RUN_UNTIL(r, c.connected && sv.accepts));
    write_pattern(&c, FIN_BYTES);
    mesh_timer *t = e.ops->timer_new(e.obj, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL(t);
    e.ops->timer_set(e.obj, t, e.ops->now(e.obj) + MESH_NS_PER_S);
    mesh_addr any = mesh_addr_v4(0x7f000001u, 0);
    int err = 0;
    CU_ASSERT_PTR_NOT_NULL(e.ops->dgram_bind(e.obj, &any, NULL, NULL, &err));
    mesh_real_free(r); /* no callback may run from here */
    mesh_real_free(NULL);
    side_free(&c);
    side_free(&sv.sd);
}

/* ---- connect timeout and no route, inside a namespace of our own -------------------------- */

enum { CHILD_PASS = 0, CHILD_FAIL = 1, CHILD_SKIP = 77 };

/* Fork; the child enters a new network namespace with only lo (up) and runs fn. Returns the
 * child's verdict; CHILD_SKIP with why filled when the case cannot run here. */
static int in_netns(int (*fn)(void), char *why, size_t whylen)
{
    if (geteuid() != 0) {
        snprintf(why, whylen, "needs root to create a network namespace");
        return CHILD_SKIP;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, whylen, "fork: %s", strerror(errno));
        return CHILD_SKIP;
    }
    if (pid == 0) {
        if (unshare(CLONE_NEWNET) != 0) {
            fprintf(stderr, "unshare(CLONE_NEWNET): %s\n", strerror(errno));
            _exit(CHILD_SKIP);
        }
        if (system("ip link set lo up") != 0)
            _exit(CHILD_SKIP);
        _exit(fn());
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status)) {
        snprintf(why, whylen, "child died");
        return CHILD_FAIL;
    }
    if (WEXITSTATUS(status) == CHILD_SKIP)
        snprintf(why, whylen, "the namespace could not be set up (see stderr)");
    return WEXITSTATUS(status);
}

#define CHILD_CHECK(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            verdict = CHILD_FAIL;                                                                  \
        }                                                                                          \
    } while (0)

/* In the namespace: an iptables rule drops SYNs to 127.0.0.1:9, so the connect can only end
 * by the driver's timeout. */
static int child_connect_timeout(void)
{
    if (system("iptables -A INPUT -p tcp --syn --dport 9 -j DROP 2>/dev/null") != 0) {
        fprintf(stderr, "iptables is not usable in the namespace\n");
        return CHILD_SKIP;
    }
    int verdict = CHILD_PASS;
    mesh_real_config cfg;
    mesh_real_config_default(&cfg);
    cfg.log_sink = quiet_sink;
    cfg.connect_timeout_ms = TEST_CONNECT_TIMEOUT_MS;
    mesh_real *r = NULL;
    if (mesh_real_new(&r, NULL, &cfg) != MESH_OK)
        return CHILD_FAIL;
    mesh_env e = mesh_real_env(r);
    side c;
    side_init(&c, e);
    mesh_addr to = mesh_addr_v4(0x7f000001u, 9);
    int err = 0;
    mesh_time t0 = e.ops->now(e.obj);
    c.s = e.ops->connect(e.obj, &to, &SIDE_CBS, &c, &err);
    CHILD_CHECK(c.s != NULL);
    if (c.s)
        (void)RUN_UNTIL(r, c.closed);
    mesh_time took = e.ops->now(e.obj) - t0;
    CHILD_CHECK(c.closed == 1);
    CHILD_CHECK(c.reason == MESH_ERR_TIMEOUT);
    CHILD_CHECK(c.connected == 0);
    CHILD_CHECK(took >= TEST_CONNECT_TIMEOUT_MS * MESH_NS_PER_MS);
    CHILD_CHECK(took < 5 * TEST_CONNECT_TIMEOUT_MS * MESH_NS_PER_MS);
    mesh_real_free(r);
    side_free(&c);
    return verdict;
}

static void test_connect_timeout(void)
{
    char why[256] = "";
    int v = in_netns(child_connect_timeout, why, sizeof why);
    if (v == CHILD_SKIP)
        skip_case(why);
    else
        CU_ASSERT_EQUAL(v, CHILD_PASS);
}

/* In the namespace only lo exists, so 10.0.0.0/8 has no route: connect() fails at once with
 * ENETUNREACH, and the driver must still report it later, from the loop (rule 1). */
static int child_unreachable(void)
{
    int verdict = CHILD_PASS;
    mesh_real_config cfg;
    mesh_real_config_default(&cfg);
    cfg.log_sink = quiet_sink;
    mesh_real *r = NULL;
    if (mesh_real_new(&r, NULL, &cfg) != MESH_OK)
        return CHILD_FAIL;
    mesh_env e = mesh_real_env(r);
    side c;
    side_init(&c, e);
    mesh_addr to = mesh_addr_v4(0x0a000001u, 443); /* 10.0.0.1: no route in the namespace */
    int err = 0;
    c.s = e.ops->connect(e.obj, &to, &SIDE_CBS, &c, &err);
    CHILD_CHECK(c.s != NULL);
    CHILD_CHECK(c.closed == 0); /* not from inside connect() */
    if (c.s)
        (void)RUN_UNTIL(r, c.closed);
    CHILD_CHECK(c.closed == 1);
    CHILD_CHECK(c.reason == MESH_ERR_UNREACHABLE);
    mesh_addr lo0 = mesh_addr_v4(0x7f000001u, 0);
    mesh_dgram *d = e.ops->dgram_bind(e.obj, &lo0, NULL, NULL, &err);
    CHILD_CHECK(d != NULL);
    CHILD_CHECK(d && e.ops->dgram_send(e.obj, d, &to, "x", 1) == MESH_ERR_UNREACHABLE);
    mesh_real_free(r);
    side_free(&c);
    return verdict;
}

static void test_connect_unreachable(void)
{
    char why[256] = "";
    int v = in_netns(child_unreachable, why, sizeof why);
    if (v == CHILD_SKIP)
        skip_case(why);
    else
        CU_ASSERT_EQUAL(v, CHILD_PASS);
}

/* ---- datagrams, log, loop control ---------------------------------------------------------- */

/* This driver's datagram limits: a datagram to the other address family is refused. */
static void test_dgram_limits(void)
{
    mesh_real *r = new_driver(0);
    mesh_env e = mesh_real_env(r);
    mesh_addr lo0 = mesh_addr_v4(0x7f000001u, 0);
    int err = 0;
    mesh_dgram *a = e.ops->dgram_bind(e.obj, &lo0, NULL, NULL, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    mesh_addr v6;
    CU_ASSERT_EQUAL(mesh_addr_parse(&v6, "[::1]:9"), MESH_OK);
    CU_ASSERT_EQUAL(e.ops->dgram_send(e.obj, a, &v6, "x", 1), MESH_ERR_INVAL);
    static uint8_t big[MESH_REAL_DGRAM_MAX + 1];
    CU_ASSERT_EQUAL(e.ops->dgram_send(e.obj, a, &v6, big, sizeof big), MESH_ERR_TOO_BIG);
    e.ops->dgram_close(e.obj, a);
    mesh_real_free(r);
}

/* The clock is the wall's pace (not faster), log lines reach the sink, and the level filter
 * drops what is below it. */
static void test_clock_and_log(void)
{
    mesh_real *r = new_driver(0);
    mesh_env e = mesh_real_env(r);
    mesh_time a = e.ops->now(e.obj);
    mesh_real_run_for(r, 10 * MESH_NS_PER_MS);
    mesh_time b = e.ops->now(e.obj);
    CU_ASSERT(b - a < 5 * MESH_NS_PER_S);
    unsigned before = g_log_lines;
    mesh_log(&e, MESH_LOG_INFO, "hello %d", 42);
    CU_ASSERT_EQUAL(g_log_lines, before + 1);
    mesh_real_free(r);

    /* level filter: DEBUG lines are dropped at the default INFO level */
    mesh_real_config cfg;
    mesh_real_config_default(&cfg);
    cfg.log_sink = quiet_sink;
    CU_ASSERT_EQUAL_FATAL(mesh_real_new(&r, NULL, &cfg), MESH_OK);
    e = mesh_real_env(r);
    before = g_log_lines;
    mesh_log(&e, MESH_LOG_DEBUG, "dropped");
    mesh_log(&e, MESH_LOG_WARN, "kept");
    CU_ASSERT_EQUAL(g_log_lines, before + 1);
    mesh_real_free(r);
}

static void raise_term(mesh_timer *t, void *ud)
{
    (void)t;
    (void)ud;
    raise(SIGTERM);
}

static void stop_loop(mesh_timer *t, void *ud)
{
    (void)t;
    mesh_real_stop(ud);
}

static void test_run_until_signal(void)
{
    mesh_real *r = new_driver(0);
    mesh_env e = mesh_real_env(r);
    mesh_timer *t = e.ops->timer_new(e.obj, raise_term, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    e.ops->timer_set(e.obj, t, e.ops->now(e.obj) + 10 * MESH_NS_PER_MS);
    mesh_timer *guard = e.ops->timer_new(e.obj, stop_loop, r); /* test bound, not expected */
    e.ops->timer_set(e.obj, guard, e.ops->now(e.obj) + WAIT_LIMIT_MS * MESH_NS_PER_MS);
    CU_ASSERT_EQUAL(mesh_real_run_until_signal(r), SIGTERM);
    /* stopped programmatically: returns 0 */
    e.ops->timer_set(e.obj, guard, e.ops->now(e.obj) + 5 * MESH_NS_PER_MS);
    CU_ASSERT_EQUAL(mesh_real_run_until_signal(r), 0);
    /* the driver's handler is gone again: SIGTERM is back to its previous disposition */
    struct sigaction sa;
    CU_ASSERT_EQUAL(sigaction(SIGTERM, NULL, &sa), 0);
    CU_ASSERT(sa.sa_handler == SIG_DFL);
    e.ops->timer_free(e.obj, t);
    e.ops->timer_free(e.obj, guard);
    mesh_real_free(r);
}

static void test_new_bad_args(void)
{
    CU_ASSERT_EQUAL(mesh_real_new(NULL, NULL, NULL), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_real_run(NULL), MESH_ERR_INVAL);
    CU_ASSERT_PTR_NULL(mesh_real_base(NULL));
}

static CU_TestInfo stream_tests[] = {
    {"zero-copy reserve/commit keeps order", test_reserve_commit},
    {"connect timeout (namespace + DROP rule)", test_connect_timeout},
    {"connect without a route is UNREACHABLE", test_connect_unreachable},
    {"bad input", test_bad_input},
    {"free with open handles", test_free_with_open_handles},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo misc_tests[] = {
    {"datagram limits", test_dgram_limits},
    {"clock pace, log sink and level", test_clock_and_log},
    {"run until signal / stop", test_run_until_signal},
    {"constructor arguments", test_new_bad_args},
    CU_TEST_INFO_NULL,
};

/* ---- the env conformance suite on this driver, over IPv4 and IPv6 loopback ----------------- */

static int conf_world_new(mesh_conf_world *w, const char *at, char *why, size_t whylen)
{
    mesh_real *r = new_driver(0);
    w->impl = r;
    w->client = w->server = mesh_real_env(r);
    CU_ASSERT_EQUAL_FATAL(mesh_addr_parse(&w->client_addr, at), MESH_OK);
    w->server_addr = w->client_addr;
    w->dgram_max = MESH_REAL_DGRAM_MAX;
    int err = 0;
    mesh_listener *probe = w->server.ops->listen(w->server.obj, &w->server_addr, NULL, NULL, &err);
    if (!probe) {
        snprintf(why, whylen, "cannot listen on %s (%s)", at, mesh_errname(err));
        mesh_real_free(r);
        return -1;
    }
    w->server.ops->listener_close(w->server.obj, probe);
    return 0;
}

static int conf_world_v4(mesh_conf_world *w, char *why, size_t whylen)
{
    return conf_world_new(w, "127.0.0.1:0", why, whylen);
}

static int conf_world_v6(mesh_conf_world *w, char *why, size_t whylen)
{
    return conf_world_new(w, "[::1]:0", why, whylen);
}

static void conf_world_free(mesh_conf_world *w)
{
    mesh_real_free(w->impl);
}

static void conf_run_for(mesh_conf_world *w, mesh_time dt)
{
    mesh_real_run_for(w->impl, dt);
}

static const mesh_conf_driver CONF_V4 = {"real driver, 127.0.0.1", conf_world_v4, conf_world_free,
                                         conf_run_for};
static const mesh_conf_driver CONF_V6 = {"real driver, ::1", conf_world_v6, conf_world_free,
                                         conf_run_for};

static int use_v4(void)
{
    mesh_conf_use(&CONF_V4);
    return 0;
}

static int use_v6(void)
{
    mesh_conf_use(&CONF_V6);
    return 0;
}

static CU_SuiteInfo suites[] = {
    {"env conformance: real driver over 127.0.0.1", use_v4, NULL, NULL, NULL, mesh_conf_tests},
    {"env conformance: real driver over ::1 (skips without IPv6)", use_v6, NULL, NULL, NULL,
     mesh_conf_tests},
    {"real driver: streams", NULL, NULL, NULL, NULL, stream_tests},
    {"real driver: datagrams, log, loop", NULL, NULL, NULL, NULL, misc_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
