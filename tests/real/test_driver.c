/* test_driver.c — the libevent driver against the env.h contract, over loopback only.
 *
 * Every case runs a real event loop on 127.0.0.1 or ::1. Cases that need a packet filter
 * (connect timeout) or a multicast route run in a child process inside a network namespace
 * the test creates with unshare(CLONE_NEWNET) (root only); the namespace, its iptables rule
 * and its route vanish with the child on every exit path. A case that cannot run prints
 * "SKIP: <reason>" and passes. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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
    cfg.dns_hosts_only = 1; /* tests never talk to a nameserver */
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

/* ---- streams ---------------------------------------------------------------------------- */

/* Echo ECHO_BYTES through a server on listen_text; 0 = ran, 1 = could not listen. */
static int echo_case(const char *listen_text)
{
    mesh_real *r = new_driver(0);
    mesh_env e = mesh_real_env(r);
    server sv;
    mesh_addr bound;
    int rc = server_start(&sv, e, listen_text, &bound);
    if (rc != MESH_OK) {
        CU_ASSERT_EQUAL(rc, MESH_ERR_ADDR);
        mesh_real_free(r);
        return 1;
    }
    sv.sd.echo = 1;
    side c;
    client_connect(&c, e, &bound);
    CU_ASSERT_FATAL(RUN_UNTIL(r, c.connected));
    CU_ASSERT_EQUAL(c.connected, 1);

    mesh_addr local, remote;
    CU_ASSERT_EQUAL(e.ops->stream_addrs(e.obj, c.s, &local, &remote), MESH_OK);
    CU_ASSERT(mesh_addr_equal(&remote, &bound));
    CU_ASSERT_EQUAL(local.family, bound.family);

    write_pattern(&c, ECHO_BYTES);
    CU_ASSERT(RUN_UNTIL(r, c.rxlen >= ECHO_BYTES));
    CU_ASSERT_EQUAL(c.rxlen, ECHO_BYTES);
    CU_ASSERT(c.rxlen == ECHO_BYTES && check_pattern(c.rx, c.rxlen));
    CU_ASSERT_EQUAL(sv.sd.rxlen, ECHO_BYTES);
    CU_ASSERT_EQUAL(sv.accepts, 1);
    CU_ASSERT(mesh_addr_equal(&sv.peer, &local)); /* the accept saw the client's address */

    mesh_addr slocal, sremote;
    CU_ASSERT_EQUAL(e.ops->stream_addrs(e.obj, sv.sd.s, &slocal, &sremote), MESH_OK);
    CU_ASSERT(mesh_addr_equal(&slocal, &bound));
    CU_ASSERT(mesh_addr_equal(&sremote, &local));

    e.ops->stream_close(e.obj, c.s, MESH_CLOSE_GRACEFUL);
    CU_ASSERT(RUN_UNTIL(r, sv.sd.closed));
    CU_ASSERT_EQUAL(sv.sd.reason, MESH_OK);
    e.ops->listener_close(e.obj, sv.l);
    mesh_real_free(r);
    side_free(&c);
    side_free(&sv.sd);
    return 0;
}

static void test_echo_ipv4(void)
{
    CU_ASSERT_EQUAL(echo_case("127.0.0.1:0"), 0);
}

static void test_echo_ipv6(void)
{
    if (echo_case("[::1]:0") != 0)
        skip_case("cannot listen on ::1 (IPv6 disabled on this host)");
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

/* The server sends FIN_BYTES and closes gracefully at once: the client must get every byte,
 * then on_closed(MESH_OK) — the driver flushed before the FIN. */
static void test_fin_after_data(void)
{
    mesh_real *r = new_driver(0);
    mesh_env e = mesh_real_env(r);
    server sv;
    mesh_addr bound;
    CU_ASSERT_EQUAL_FATAL(server_start(&sv, e, "127.0.0.1:0", &bound), MESH_OK);
    sv.sd.send_on_accept = FIN_BYTES;
    sv.sd.close_after_send = MESH_CLOSE_GRACEFUL;
    side c;
    client_connect(&c, e, &bound);
    CU_ASSERT(RUN_UNTIL(r, c.closed));
    CU_ASSERT_EQUAL(c.reason, MESH_OK);
    CU_ASSERT_EQUAL(c.rx_at_close, FIN_BYTES);
    CU_ASSERT(c.rxlen == FIN_BYTES && check_pattern(c.rx, c.rxlen));
    /* the handle is released by on_closed: writing through a new stream still works, and
     * the listener is unaffected */
    CU_ASSERT_EQUAL(sv.accepts, 1);
    e.ops->listener_close(e.obj, sv.l);
    mesh_real_free(r);
    side_free(&c);
    side_free(&sv.sd);
}

/* A client writes 1 MiB and closes gracefully in the same turn: the linger path must still
 * deliver all of it before the server sees the FIN. */
static void test_graceful_close_flushes(void)
{
    mesh_real *r = new_driver(0);
    mesh_env e = mesh_real_env(r);
    server sv;
    mesh_addr bound;
    CU_ASSERT_EQUAL_FATAL(server_start(&sv, e, "127.0.0.1:0", &bound), MESH_OK);
    side c;
    client_connect(&c, e, &bound);
    CU_ASSERT_FATAL(RUN_UNTIL(r, c.connected));
    write_pattern(&c, ECHO_BYTES);
    e.ops->stream_close(e.obj, c.s, MESH_CLOSE_GRACEFUL);
    c.s = NULL;
    CU_ASSERT(RUN_UNTIL(r, sv.sd.closed));
    CU_ASSERT_EQUAL(sv.sd.reason, MESH_OK);
    CU_ASSERT_EQUAL(sv.sd.rx_at_close, ECHO_BYTES);
    CU_ASSERT(sv.sd.rxlen == ECHO_BYTES && check_pattern(sv.sd.rx, sv.sd.rxlen));
    CU_ASSERT_EQUAL(c.closed, 0); /* no callback after our own close */
    e.ops->listener_close(e.obj, sv.l);
    mesh_real_free(r);
    side_free(&c);
    side_free(&sv.sd);
}

/* Bytes written while the connect is still in progress are queued and sent once connected;
 * a graceful close right after them still delivers them all, then the FIN. */
static void test_write_before_connected(void)
{
    mesh_real *r = new_driver(0);
    mesh_env e = mesh_real_env(r);
    server sv;
    mesh_addr bound;
    CU_ASSERT_EQUAL_FATAL(server_start(&sv, e, "127.0.0.1:0", &bound), MESH_OK);
    side c;
    client_connect(&c, e, &bound);
    write_pattern(&c, FIN_BYTES);
    CU_ASSERT_EQUAL(e.ops->stream_pending(e.obj, c.s), FIN_BYTES);
    CU_ASSERT(RUN_UNTIL(r, c.connected && sv.sd.rxlen >= FIN_BYTES));
    CU_ASSERT(sv.sd.rxlen == FIN_BYTES && check_pattern(sv.sd.rx, sv.sd.rxlen));
    CU_ASSERT(RUN_UNTIL(r, c.writable));
    e.ops->stream_close(e.obj, c.s, MESH_CLOSE_GRACEFUL);
    CU_ASSERT(RUN_UNTIL(r, sv.sd.closed));
    CU_ASSERT_EQUAL(sv.sd.reason, MESH_OK);
    CU_ASSERT_EQUAL(sv.sd.rx_at_close, FIN_BYTES);
    e.ops->listener_close(e.obj, sv.l);
    mesh_real_free(r);
    side_free(&c);
    side_free(&sv.sd);
}

/* ABORT on one side shows as MESH_ERR_RESET on the other, even with data queued. */
static void test_abort_is_reset(void)
{
    mesh_real *r = new_driver(0);
    mesh_env e = mesh_real_env(r);
    server sv;
    mesh_addr bound;
    CU_ASSERT_EQUAL_FATAL(server_start(&sv, e, "127.0.0.1:0", &bound), MESH_OK);
    side c;
    client_connect(&c, e, &bound);
    CU_ASSERT_FATAL(RUN_UNTIL(r, c.connected && sv.accepts));
    write_pattern(&sv.sd, 4096);
    e.ops->stream_close(e.obj, sv.sd.s, MESH_CLOSE_ABORT);
    sv.sd.s = NULL;
    CU_ASSERT(RUN_UNTIL(r, c.closed));
    CU_ASSERT_EQUAL(c.reason, MESH_ERR_RESET);
    CU_ASSERT_EQUAL(sv.sd.closed, 0);
    e.ops->listener_close(e.obj, sv.l);
    mesh_real_free(r);
    side_free(&c);
    side_free(&sv.sd);
}

/* A port nobody listens on answers RST: MESH_ERR_REFUSED, reported from the loop. */
static void test_connect_refused(void)
{
    mesh_real *r = new_driver(0);
    mesh_env e = mesh_real_env(r);
    server sv;
    mesh_addr bound;
    CU_ASSERT_EQUAL_FATAL(server_start(&sv, e, "127.0.0.1:0", &bound), MESH_OK);
    e.ops->listener_close(e.obj, sv.l); /* the port is now closed */
    side c;
    client_connect(&c, e, &bound);
    CU_ASSERT(RUN_UNTIL(r, c.closed));
    CU_ASSERT_EQUAL(c.reason, MESH_ERR_REFUSED);
    CU_ASSERT_EQUAL(c.connected, 0);
    mesh_real_free(r);
    side_free(&c);
}

/* Writing 8 MiB at once: all of it is pending right away (nothing is written from inside
 * the call), and on_writable comes later, when the buffer has drained to zero. */
static void test_backpressure(void)
{
    mesh_real *r = new_driver(0);
    mesh_env e = mesh_real_env(r);
    server sv;
    mesh_addr bound;
    CU_ASSERT_EQUAL_FATAL(server_start(&sv, e, "127.0.0.1:0", &bound), MESH_OK);
    side c;
    client_connect(&c, e, &bound);
    CU_ASSERT_FATAL(RUN_UNTIL(r, c.connected));
    CU_ASSERT_EQUAL(e.ops->stream_pending(e.obj, c.s), 0);
    write_pattern(&c, BACKLOG_BYTES);
    CU_ASSERT_EQUAL(e.ops->stream_pending(e.obj, c.s), BACKLOG_BYTES);
    CU_ASSERT_EQUAL(c.writable, 0);
    CU_ASSERT(RUN_UNTIL(r, c.writable > 0));
    CU_ASSERT_EQUAL(c.pending_at_writable, 0);
    CU_ASSERT_EQUAL(e.ops->stream_pending(e.obj, c.s), 0);
    CU_ASSERT(RUN_UNTIL(r, sv.sd.rxlen >= BACKLOG_BYTES));
    CU_ASSERT(sv.sd.rxlen == BACKLOG_BYTES && check_pattern(sv.sd.rx, sv.sd.rxlen));
    e.ops->stream_close(e.obj, c.s, MESH_CLOSE_ABORT);
    e.ops->listener_close(e.obj, sv.l);
    mesh_real_free(r);
    side_free(&c);
    side_free(&sv.sd);
}

/* Closing a stream from inside its own on_data: no further on_data or on_closed for it, no
 * use after free (ASan build), and a graceful close still reaches the peer as a FIN. */
static void test_close_inside_on_data(void)
{
    mesh_real *r = new_driver(0);
    mesh_env e = mesh_real_env(r);
    server sv;
    mesh_addr bound;
    CU_ASSERT_EQUAL_FATAL(server_start(&sv, e, "127.0.0.1:0", &bound), MESH_OK);
    side c;
    client_connect(&c, e, &bound);
    c.close_in_data = MESH_CLOSE_GRACEFUL;
    CU_ASSERT_FATAL(RUN_UNTIL(r, c.connected && sv.accepts));
    write_pattern(&sv.sd, ECHO_BYTES); /* many chunks: the close lands mid-delivery */
    CU_ASSERT(RUN_UNTIL(r, sv.sd.closed));
    CU_ASSERT_EQUAL(sv.sd.reason, MESH_OK);
    CU_ASSERT_EQUAL(c.data_calls, 1);
    CU_ASSERT_EQUAL(c.closed, 1); /* our own mark, not an on_closed */
    e.ops->listener_close(e.obj, sv.l);
    mesh_real_free(r);
    side_free(&c);
    side_free(&sv.sd);
}

/* Refusing a connection from inside the accept callback, and closing the listener there. */
static int refuse_accepts;
static void refuse_on_accept(mesh_listener *l, mesh_stream *s, const mesh_addr *peer, void *ud)
{
    (void)peer;
    mesh_env *e = ud;
    refuse_accepts++;
    e->ops->stream_close(e->obj, s, MESH_CLOSE_ABORT);
    e->ops->listener_close(e->obj, l);
}

static void test_refuse_in_accept(void)
{
    mesh_real *r = new_driver(0);
    mesh_env e = mesh_real_env(r);
    mesh_addr a;
    CU_ASSERT_EQUAL_FATAL(mesh_addr_parse(&a, "127.0.0.1:0"), MESH_OK);
    int err = 0;
    refuse_accepts = 0;
    mesh_listener *l = e.ops->listen(e.obj, &a, refuse_on_accept, &e, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    mesh_addr bound;
    CU_ASSERT_EQUAL(e.ops->listener_addr(e.obj, l, &bound), MESH_OK);
    side c;
    client_connect(&c, e, &bound);
    CU_ASSERT(RUN_UNTIL(r, c.closed));
    CU_ASSERT_EQUAL(c.reason, MESH_ERR_RESET);
    CU_ASSERT_EQUAL(refuse_accepts, 1);
    /* the listener is gone: a second connect is refused */
    side c2;
    client_connect(&c2, e, &bound);
    CU_ASSERT(RUN_UNTIL(r, c2.closed));
    CU_ASSERT_EQUAL(c2.reason, MESH_ERR_REFUSED);
    CU_ASSERT_EQUAL(refuse_accepts, 1);
    mesh_real_free(r);
    side_free(&c);
    side_free(&c2);
}

/* Bad input gets an error, never a crash. */
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
    CU_ASSERT_PTR_NULL(e.ops->connect(e.obj, NULL, &SIDE_CBS, NULL, &err));
    CU_ASSERT_EQUAL(err, MESH_ERR_INVAL);
    mesh_addr zero_port = mesh_addr_v4(0x7f000001u, 0);
    err = 0;
    CU_ASSERT_PTR_NULL(e.ops->connect(e.obj, &zero_port, &SIDE_CBS, NULL, &err));
    CU_ASSERT_EQUAL(err, MESH_ERR_INVAL);
    err = 0;
    CU_ASSERT_PTR_NULL(e.ops->listen(e.obj, &none, on_accept, NULL, &err));
    CU_ASSERT_EQUAL(err, MESH_ERR_INVAL);

    /* the same port twice: the second listen fails with MESH_ERR_ADDR */
    server sv;
    mesh_addr bound;
    CU_ASSERT_EQUAL_FATAL(server_start(&sv, e, "127.0.0.1:0", &bound), MESH_OK);
    err = 0;
    CU_ASSERT_PTR_NULL(e.ops->listen(e.obj, &bound, on_accept, NULL, &err));
    CU_ASSERT_EQUAL(err, MESH_ERR_ADDR);
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
    CU_ASSERT_EQUAL(e.ops->resolve(e.obj, "", 1, NULL, NULL), MESH_ERR_INVAL);
    mesh_real_free(r);
    side_free(&c);
    side_free(&sv.sd);
}

typedef struct rbox {
    int calls;
    int result;
    size_t n;
    mesh_addr addrs[MESH_REAL_RESOLVE_MAX_ADDRS];
} rbox;

static void on_resolved(int result, const mesh_addr *addrs, size_t n, void *ud)
{
    rbox *b = ud;
    b->calls++;
    b->result = result;
    b->n = n;
    if (result == MESH_OK) {
        CU_ASSERT_PTR_NOT_NULL(addrs);
        memcpy(b->addrs, addrs, n * sizeof *addrs);
    } else {
        CU_ASSERT_PTR_NULL(addrs);
        CU_ASSERT_EQUAL(n, 0);
    }
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
    rbox pending = {0};
    CU_ASSERT_EQUAL(e.ops->resolve(e.obj, "127.0.0.1", 1, on_resolved, &pending), MESH_OK);
    /* evdns still holds this one (its cancel answers later, from the loop) */
    CU_ASSERT_EQUAL(e.ops->resolve(e.obj, "no-such-host.invalid", 1, on_resolved, &pending),
                    MESH_OK);
    mesh_real_free(r); /* no callback may run from here */
    CU_ASSERT_EQUAL(pending.calls, 0);
    mesh_real_free(NULL);
    side_free(&c);
    side_free(&sv.sd);
}

/* ---- connect timeout and multicast, inside a namespace of our own -------------------------- */

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

/* ---- datagrams ------------------------------------------------------------------------------ */

typedef struct dg_box {
    int count;
    mesh_addr from;
    uint8_t data[64];
    size_t len;
} dg_box;

static void on_dgram(mesh_dgram *d, const mesh_addr *from, const uint8_t *data, size_t len,
                     void *ud)
{
    (void)d;
    dg_box *b = ud;
    b->count++;
    b->from = *from;
    b->len = len < sizeof b->data ? len : sizeof b->data;
    memcpy(b->data, data, b->len);
}

static void test_dgram_unicast(void)
{
    mesh_real *r = new_driver(0);
    mesh_env e = mesh_real_env(r);
    mesh_addr lo0 = mesh_addr_v4(0x7f000001u, 0);
    dg_box ba = {0}, bb = {0};
    int err = 0;
    mesh_dgram *a = e.ops->dgram_bind(e.obj, &lo0, on_dgram, &ba, &err);
    mesh_dgram *b = e.ops->dgram_bind(e.obj, &lo0, on_dgram, &bb, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    mesh_addr aa, ab;
    CU_ASSERT_EQUAL(e.ops->dgram_addr(e.obj, a, &aa), MESH_OK);
    CU_ASSERT_EQUAL(e.ops->dgram_addr(e.obj, b, &ab), MESH_OK);
    CU_ASSERT_NOT_EQUAL(aa.port, 0);
    CU_ASSERT_NOT_EQUAL(aa.port, ab.port);

    CU_ASSERT_EQUAL(e.ops->dgram_send(e.obj, a, &ab, "ping", 4), MESH_OK);
    CU_ASSERT_EQUAL(bb.count, 0); /* rule 1 */
    CU_ASSERT(RUN_UNTIL(r, bb.count == 1));
    CU_ASSERT_EQUAL(bb.len, 4);
    CU_ASSERT(memcmp(bb.data, "ping", 4) == 0);
    CU_ASSERT(mesh_addr_equal(&bb.from, &aa));
    CU_ASSERT_EQUAL(e.ops->dgram_send(e.obj, b, &bb.from, "pong!", 5), MESH_OK);
    CU_ASSERT(RUN_UNTIL(r, ba.count == 1));
    CU_ASSERT(ba.len == 5 && memcmp(ba.data, "pong!", 5) == 0);
    CU_ASSERT(mesh_addr_equal(&ba.from, &ab));

    /* limits and bad input */
    static uint8_t big[MESH_REAL_DGRAM_MAX + 1];
    CU_ASSERT_EQUAL(e.ops->dgram_send(e.obj, a, &ab, big, sizeof big), MESH_ERR_TOO_BIG);
    mesh_addr v6;
    CU_ASSERT_EQUAL(mesh_addr_parse(&v6, "[::1]:9"), MESH_OK);
    CU_ASSERT_EQUAL(e.ops->dgram_send(e.obj, a, &v6, "x", 1), MESH_ERR_INVAL);
    mesh_addr unicast = mesh_addr_v4(0x7f000001u, aa.port);
    CU_ASSERT_EQUAL(e.ops->dgram_join(e.obj, a, &unicast), MESH_ERR_INVAL);
    mesh_addr wrong_port = mesh_addr_v4(0xef010203u, (uint16_t)(aa.port + 1));
    CU_ASSERT_EQUAL(e.ops->dgram_join(e.obj, a, &wrong_port), MESH_ERR_INVAL);

    e.ops->dgram_close(e.obj, a);
    e.ops->dgram_close(e.obj, b);
    mesh_real_free(r);
}

/* Closing a datagram socket from inside its own callback stops delivery at once. */
static mesh_env close_env;
static int close_count;
static void on_dgram_close(mesh_dgram *d, const mesh_addr *from, const uint8_t *data, size_t len,
                           void *ud)
{
    (void)from;
    (void)data;
    (void)len;
    (void)ud;
    close_count++;
    close_env.ops->dgram_close(close_env.obj, d);
}

static void test_dgram_close_in_callback(void)
{
    mesh_real *r = new_driver(0);
    mesh_env e = mesh_real_env(r);
    close_env = e;
    close_count = 0;
    mesh_addr lo0 = mesh_addr_v4(0x7f000001u, 0);
    int err = 0;
    mesh_dgram *rx = e.ops->dgram_bind(e.obj, &lo0, on_dgram_close, NULL, &err);
    mesh_dgram *tx = e.ops->dgram_bind(e.obj, &lo0, NULL, NULL, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tx);
    mesh_addr to;
    CU_ASSERT_EQUAL(e.ops->dgram_addr(e.obj, rx, &to), MESH_OK);
    for (int i = 0; i < 5; i++) /* several queued: only the first may be delivered */
        CU_ASSERT_EQUAL(e.ops->dgram_send(e.obj, tx, &to, "x", 1), MESH_OK);
    CU_ASSERT(RUN_UNTIL(r, close_count > 0));
    mesh_real_run_for(r, 20 * MESH_NS_PER_MS);
    CU_ASSERT_EQUAL(close_count, 1);
    e.ops->dgram_close(e.obj, tx);
    mesh_real_free(r);
}

enum { MCAST_GROUP = 0xef2a0001u /* 239.42.0.1 */ };

/* In the namespace: a multicast route on lo, two members on the group's port, a sender bound
 * to 127.0.0.1. Both members (on one host, thanks to IP_MULTICAST_LOOP) get the datagram. */
static int child_multicast(void)
{
    if (system("ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo") != 0) {
        fprintf(stderr, "cannot add a multicast route on lo in the namespace\n");
        return CHILD_SKIP;
    }
    int verdict = CHILD_PASS;
    mesh_real_config cfg;
    mesh_real_config_default(&cfg);
    cfg.log_sink = quiet_sink;
    mesh_real *r = NULL;
    if (mesh_real_new(&r, NULL, &cfg) != MESH_OK)
        return CHILD_FAIL;
    mesh_env e = mesh_real_env(r);
    dg_box b1 = {0}, b2 = {0}, bs = {0};
    int err = 0;
    mesh_addr any0 = mesh_addr_v4(0, 0);
    mesh_dgram *m1 = e.ops->dgram_bind(e.obj, &any0, on_dgram, &b1, &err);
    CHILD_CHECK(m1 != NULL);
    if (!m1)
        return CHILD_FAIL;
    mesh_addr bound;
    CHILD_CHECK(e.ops->dgram_addr(e.obj, m1, &bound) == MESH_OK);
    mesh_addr anyp = mesh_addr_v4(0, bound.port);
    mesh_dgram *m2 = e.ops->dgram_bind(e.obj, &anyp, on_dgram, &b2, &err);
    CHILD_CHECK(m2 != NULL);
    mesh_addr group = mesh_addr_v4(MCAST_GROUP, bound.port);
    CHILD_CHECK(e.ops->dgram_join(e.obj, m1, &group) == MESH_OK);
    CHILD_CHECK(m2 && e.ops->dgram_join(e.obj, m2, &group) == MESH_OK);
    mesh_addr lo0 = mesh_addr_v4(0x7f000001u, 0);
    mesh_dgram *snd = e.ops->dgram_bind(e.obj, &lo0, on_dgram, &bs, &err);
    CHILD_CHECK(snd != NULL);
    mesh_addr sa;
    CHILD_CHECK(snd && e.ops->dgram_addr(e.obj, snd, &sa) == MESH_OK);
    CHILD_CHECK(snd && e.ops->dgram_send(e.obj, snd, &group, "hello-group", 11) == MESH_OK);
    (void)RUN_UNTIL(r, b1.count && b2.count);
    CHILD_CHECK(b1.count == 1 && b2.count == 1);
    CHILD_CHECK(b1.len == 11 && memcmp(b1.data, "hello-group", 11) == 0);
    CHILD_CHECK(mesh_addr_equal(&b1.from, &sa));
    CHILD_CHECK(bs.count == 0); /* the sender did not join */
    mesh_real_free(r);
    return verdict;
}

static void test_dgram_multicast(void)
{
    char why[256] = "";
    int v = in_netns(child_multicast, why, sizeof why);
    if (v == CHILD_SKIP)
        skip_case(why);
    else
        CU_ASSERT_EQUAL(v, CHILD_PASS);
}

/* ---- timers ------------------------------------------------------------------------------- */

typedef struct tbox {
    mesh_env env;
    mesh_timer *t;
    mesh_time deadline;
    mesh_time fired_at;
    int fired;
    int order;
    int *next_order;
    int free_self;
    mesh_timer *free_other;
} tbox;

static void on_timer(mesh_timer *t, void *ud)
{
    tbox *b = ud;
    CU_ASSERT_PTR_EQUAL(t, b->t);
    b->fired++;
    b->fired_at = b->env.ops->now(b->env.obj);
    b->order = (*b->next_order)++;
    if (b->free_other) {
        b->env.ops->timer_free(b->env.obj, b->free_other);
        b->free_other = NULL;
    }
    if (b->free_self) {
        b->env.ops->timer_free(b->env.obj, t);
        b->t = NULL;
    }
}

static void test_timers_order(void)
{
    mesh_real *r = new_driver(0);
    mesh_env e = mesh_real_env(r);
    static const int delays_ms[NTIMERS] = {50, 10, 30, 20, 40, 0};
    tbox box[NTIMERS];
    int next = 1;
    mesh_time t0 = e.ops->now(e.obj);
    for (int i = 0; i < NTIMERS; i++) {
        box[i] = (tbox){.env = e, .next_order = &next};
        box[i].t = e.ops->timer_new(e.obj, on_timer, &box[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(box[i].t);
        box[i].deadline = t0 + (mesh_time)delays_ms[i] * MESH_NS_PER_MS;
    }
    /* the last one is set in the past: it fires on the next turn, not from timer_set */
    box[NTIMERS - 1].deadline = t0 - MESH_NS_PER_MS;
    for (int i = 0; i < NTIMERS; i++)
        e.ops->timer_set(e.obj, box[i].t, box[i].deadline);
    CU_ASSERT_EQUAL(box[NTIMERS - 1].fired, 0);
    /* re-arming replaces the deadline; stop disarms */
    tbox rearm = {.env = e, .next_order = &next};
    rearm.t = e.ops->timer_new(e.obj, on_timer, &rearm);
    e.ops->timer_set(e.obj, rearm.t, t0 + 5 * MESH_NS_PER_MS);
    rearm.deadline = t0 + 60 * MESH_NS_PER_MS;
    e.ops->timer_set(e.obj, rearm.t, rearm.deadline);
    tbox stopped = {.env = e, .next_order = &next};
    stopped.t = e.ops->timer_new(e.obj, on_timer, &stopped);
    e.ops->timer_set(e.obj, stopped.t, t0 + 15 * MESH_NS_PER_MS);
    e.ops->timer_stop(e.obj, stopped.t);

    CU_ASSERT(RUN_UNTIL(r, rearm.fired));
    mesh_real_run_for(r, 20 * MESH_NS_PER_MS);
    for (int i = 0; i < NTIMERS; i++) {
        CU_ASSERT_EQUAL(box[i].fired, 1);
        CU_ASSERT(box[i].fired_at >= box[i].deadline); /* never early */
        for (int j = 0; j < NTIMERS; j++)
            if (box[i].deadline < box[j].deadline)
                CU_ASSERT(box[i].order < box[j].order);
    }
    CU_ASSERT_EQUAL(rearm.fired, 1);
    CU_ASSERT(rearm.fired_at >= rearm.deadline);
    CU_ASSERT(rearm.order > box[0].order); /* after the 50 ms timer, not at 5 ms */
    CU_ASSERT_EQUAL(stopped.fired, 0);
    for (int i = 0; i < NTIMERS; i++)
        e.ops->timer_free(e.obj, box[i].t);
    e.ops->timer_free(e.obj, rearm.t);
    e.ops->timer_free(e.obj, stopped.t);
    mesh_real_free(r);
}

/* A timer frees itself from its own callback, and frees another timer before it fires. */
static void test_timer_free_in_callback(void)
{
    mesh_real *r = new_driver(0);
    mesh_env e = mesh_real_env(r);
    int next = 1;
    tbox self = {.env = e, .next_order = &next, .free_self = 1};
    tbox victim = {.env = e, .next_order = &next};
    self.t = e.ops->timer_new(e.obj, on_timer, &self);
    victim.t = e.ops->timer_new(e.obj, on_timer, &victim);
    CU_ASSERT_PTR_NOT_NULL_FATAL(self.t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(victim.t);
    self.free_other = victim.t;
    mesh_time now = e.ops->now(e.obj);
    e.ops->timer_set(e.obj, self.t, now + 5 * MESH_NS_PER_MS);
    e.ops->timer_set(e.obj, victim.t, now + 10 * MESH_NS_PER_MS);
    CU_ASSERT(RUN_UNTIL(r, self.fired));
    mesh_real_run_for(r, 30 * MESH_NS_PER_MS);
    CU_ASSERT_EQUAL(self.fired, 1);
    CU_ASSERT_EQUAL(victim.fired, 0);
    CU_ASSERT_PTR_NULL(self.t);
    mesh_real_free(r);
}

/* ---- resolve, clock, randomness, loop control --------------------------------------------- */

static void test_resolve(void)
{
    mesh_real *r = new_driver(0);
    mesh_env e = mesh_real_env(r);
    rbox v4 = {0}, v6 = {0}, missing = {0}, local = {0};
    CU_ASSERT_EQUAL(e.ops->resolve(e.obj, "127.0.0.1", 4433, on_resolved, &v4), MESH_OK);
    CU_ASSERT_EQUAL(e.ops->resolve(e.obj, "::1", 80, on_resolved, &v6), MESH_OK);
    CU_ASSERT_EQUAL(v4.calls, 0); /* numeric answers too are deferred (rule 1) */
    CU_ASSERT_EQUAL(v6.calls, 0);
    /* hosts-only mode: no nameserver is ever asked, an unknown name is simply not found */
    CU_ASSERT_EQUAL(e.ops->resolve(e.obj, "no-such-host.invalid", 1, on_resolved, &missing),
                    MESH_OK);
    CU_ASSERT_EQUAL(e.ops->resolve(e.obj, "localhost", 7, on_resolved, &local), MESH_OK);
    CU_ASSERT(RUN_UNTIL(r, v4.calls && v6.calls && missing.calls && local.calls));

    mesh_addr want4 = mesh_addr_v4(0x7f000001u, 4433);
    CU_ASSERT_EQUAL(v4.result, MESH_OK);
    CU_ASSERT(v4.n == 1 && mesh_addr_equal(&v4.addrs[0], &want4));
    mesh_addr want6;
    CU_ASSERT_EQUAL(mesh_addr_parse(&want6, "[::1]:80"), MESH_OK);
    CU_ASSERT_EQUAL(v6.result, MESH_OK);
    CU_ASSERT(v6.n == 1 && mesh_addr_equal(&v6.addrs[0], &want6));
    CU_ASSERT_EQUAL(missing.result, MESH_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(v4.calls + v6.calls + missing.calls + local.calls, 4);
    if (local.result != MESH_OK) {
        skip_case("\"localhost\" is not in /etc/hosts here");
    } else {
        mesh_addr lo6;
        CU_ASSERT_EQUAL(mesh_addr_parse(&lo6, "[::1]:7"), MESH_OK);
        CU_ASSERT(local.n >= 1);
        for (size_t i = 0; i < local.n; i++) {
            const mesh_addr *a = &local.addrs[i];
            CU_ASSERT(a->family == MESH_AF_INET4 ? (a->ip[0] == 127 && a->port == 7)
                                                 : mesh_addr_equal(a, &lo6));
        }
    }

    /* the number of resolves in flight is bounded */
    static rbox many[MESH_REAL_RESOLVE_MAX_PENDING];
    memset(many, 0, sizeof many);
    for (size_t i = 0; i < MESH_REAL_RESOLVE_MAX_PENDING; i++)
        CU_ASSERT_EQUAL(e.ops->resolve(e.obj, "127.0.0.1", 1, on_resolved, &many[i]), MESH_OK);
    rbox over = {0};
    CU_ASSERT_EQUAL(e.ops->resolve(e.obj, "127.0.0.1", 1, on_resolved, &over), MESH_ERR_LIMIT);
    CU_ASSERT(RUN_UNTIL(r, many[MESH_REAL_RESOLVE_MAX_PENDING - 1].calls));
    mesh_real_run_for(r, MESH_NS_PER_MS);
    for (size_t i = 0; i < MESH_REAL_RESOLVE_MAX_PENDING; i++)
        CU_ASSERT_EQUAL(many[i].calls, 1);
    CU_ASSERT_EQUAL(over.calls, 0);
    /* answered requests free their slots */
    CU_ASSERT_EQUAL(e.ops->resolve(e.obj, "127.0.0.1", 1, on_resolved, &over), MESH_OK);
    CU_ASSERT(RUN_UNTIL(r, over.calls == 1));
    mesh_real_free(r);
}

static void test_clock_and_random(void)
{
    mesh_real *r = new_driver(0);
    mesh_env e = mesh_real_env(r);
    mesh_time a = e.ops->now(e.obj);
    mesh_real_run_for(r, 10 * MESH_NS_PER_MS);
    mesh_time b = e.ops->now(e.obj);
    CU_ASSERT(b >= a + 10 * MESH_NS_PER_MS);
    CU_ASSERT(b - a < 5 * MESH_NS_PER_S);
    uint8_t x[32] = {0}, y[32] = {0}, zero[32] = {0};
    e.ops->random(e.obj, x, sizeof x);
    e.ops->random(e.obj, y, sizeof y);
    CU_ASSERT(memcmp(x, y, sizeof x) != 0);
    CU_ASSERT(memcmp(x, zero, sizeof x) != 0);
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
    {"echo 1 MiB over 127.0.0.1", test_echo_ipv4},
    {"echo 1 MiB over ::1", test_echo_ipv6},
    {"FIN after all data", test_fin_after_data},
    {"zero-copy reserve/commit keeps order", test_reserve_commit},
    {"graceful close flushes queued output", test_graceful_close_flushes},
    {"write before connected is queued", test_write_before_connected},
    {"ABORT is seen as RESET", test_abort_is_reset},
    {"connect to a closed port is REFUSED", test_connect_refused},
    {"connect timeout (namespace + DROP rule)", test_connect_timeout},
    {"connect without a route is UNREACHABLE", test_connect_unreachable},
    {"8 MiB backpressure and on_writable", test_backpressure},
    {"close inside on_data", test_close_inside_on_data},
    {"refuse and close listener inside accept", test_refuse_in_accept},
    {"bad input", test_bad_input},
    {"free with open handles", test_free_with_open_handles},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo dgram_tests[] = {
    {"unicast send/receive", test_dgram_unicast},
    {"close inside callback", test_dgram_close_in_callback},
    {"multicast loopback (namespace)", test_dgram_multicast},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo misc_tests[] = {
    {"timers fire in order, never early", test_timers_order},
    {"timer freed inside callbacks", test_timer_free_in_callback},
    {"resolve numeric and hosts-only", test_resolve},
    {"clock, randomness, log", test_clock_and_random},
    {"run until signal / stop", test_run_until_signal},
    {"constructor arguments", test_new_bad_args},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"real driver: streams", NULL, NULL, NULL, NULL, stream_tests},
    {"real driver: datagrams", NULL, NULL, NULL, NULL, dgram_tests},
    {"real driver: timers, dns, loop", NULL, NULL, NULL, NULL, misc_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
