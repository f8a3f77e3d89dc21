/* env_conformance.c — the env.h contract cases both drivers run (env_conformance.h).
 *
 * Every env call a case makes goes through ENV(), which marks "inside an env call"; every
 * callback starts with cb_enter(), which asserts that mark is clear (rule 1) and that the
 * clock did not go back (rule 5). Waits are bounded: RUN_UNTIL gives up after WAIT_LIMIT_MS
 * of the driver's clock and the assertion after it fails. */
#include "env_conformance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh_test.h"

enum {
    SLICE_MS = 5,            /* loop slice between condition checks */
    WAIT_LIMIT_MS = 10000,   /* upper bound on any wait */
    ECHO_BYTES = 256 * 1024, /* echoed intact */
    FIN_BYTES = 100 * 1024,  /* sent before a graceful close */
    BIG_BYTES = 4 << 20,     /* queued at once for pending / on_writable */
    NTIMERS = 6,
    NDGRAMS = 5,
};

#define MS MESH_NS_PER_MS

static const mesh_conf_driver *D;
static mesh_conf_world W;
static int g_in_env;         /* > 0 while a case is inside an env call */
static mesh_time g_last_now; /* the latest clock reading a callback saw */

void mesh_conf_use(const mesh_conf_driver *d)
{
    D = d;
}

/* An env call made by a case: callbacks must not run inside it (rule 1). */
#define ENV(expr) (g_in_env++, (void)(expr), g_in_env--)

#define RUN_UNTIL(cond)                                                                            \
    ({                                                                                             \
        for (int waited_ = 0; !(cond) && waited_ < WAIT_LIMIT_MS; waited_ += SLICE_MS)             \
            run_ms(SLICE_MS);                                                                      \
        (cond);                                                                                    \
    })

static void run_ms(unsigned ms)
{
    D->run_for(&W, (mesh_time)ms * MS);
}

static mesh_time now(void)
{
    return W.client.ops->now(W.client.obj);
}

static void cb_enter(void)
{
    CU_ASSERT_EQUAL(g_in_env, 0);
    mesh_time t = now();
    CU_ASSERT(t >= g_last_now);
    g_last_now = t;
}

/* Make the case's world; 0 (and SKIP printed) when the driver cannot. */
static int world_begin(void)
{
    char why[256] = "";
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    memset(&W, 0, sizeof W);
    g_in_env = 0;
    g_last_now = 0;
    if (D->world_new(&W, why, sizeof why) != 0) {
        printf("\n  SKIP (%s): %s\n", D->name, why);
        fflush(stdout);
        return 0;
    }
    return 1;
}

static void world_end(void)
{
    D->world_free(&W);
}

static uint8_t pattern_byte(size_t i)
{
    return (uint8_t)((i * 2654435761u) >> 13);
}

static int check_pattern(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] != pattern_byte(i))
            return 0;
    return 1;
}

/* ---- timers -------------------------------------------------------------------------------- */

typedef struct tbox {
    const mesh_env *env;
    mesh_timer *t;
    mesh_time deadline, fired_at;
    int fired, order;
    int *next_order;
    int rearm_left; /* re-arm this many times, 10 ms apart, then ... */
    int free_self;  /* ... free the timer inside its own callback */
    mesh_timer *free_other;
} tbox;

static void on_timer(mesh_timer *t, void *ud)
{
    cb_enter();
    tbox *b = ud;
    CU_ASSERT_PTR_EQUAL(t, b->t);
    b->fired++;
    b->fired_at = now();
    b->order = (*b->next_order)++;
    if (b->free_other) {
        b->env->ops->timer_free(b->env->obj, b->free_other);
        b->free_other = NULL;
    }
    if (b->rearm_left > 0) {
        b->rearm_left--;
        b->deadline = b->fired_at + 10 * MS;
        b->env->ops->timer_set(b->env->obj, t, b->deadline);
    } else if (b->free_self) {
        b->env->ops->timer_free(b->env->obj, t);
        b->t = NULL;
    }
}

static void tbox_new(tbox *b, int *next)
{
    memset(b, 0, sizeof *b);
    b->env = &W.client;
    b->next_order = next;
    ENV(b->t = W.client.ops->timer_new(W.client.obj, on_timer, b));
    CU_ASSERT_PTR_NOT_NULL_FATAL(b->t);
}

static void tbox_set(tbox *b, mesh_time when)
{
    b->deadline = when;
    ENV(W.client.ops->timer_set(W.client.obj, b->t, when));
}

static void tbox_free(tbox *b)
{
    if (b->t)
        ENV(W.client.ops->timer_free(W.client.obj, b->t));
    b->t = NULL;
}

/* Timers fire once each, in deadline order, never before their deadline and never from
 * inside timer_set (a deadline in the past fires on a later turn); re-arming replaces the
 * deadline; stop, MESH_TIME_NEVER and free disarm. */
static void case_timers(void)
{
    if (!world_begin())
        return;
    const mesh_env *e = &W.client;
    run_ms(2); /* so that "1 ms ago" exists on a clock that starts at 0 */
    static const int delays_ms[NTIMERS] = {50, 10, 30, 20, 40, -1};
    tbox box[NTIMERS], rearm, stopped, never, freed;
    int next = 1;
    mesh_time t0 = now();
    for (int i = 0; i < NTIMERS; i++) {
        tbox_new(&box[i], &next);
        tbox_set(&box[i], t0 + (mesh_time)((int64_t)delays_ms[i] * (int64_t)MS));
    }
    CU_ASSERT_EQUAL(box[NTIMERS - 1].fired, 0);
    tbox_new(&rearm, &next);
    tbox_set(&rearm, t0 + 5 * MS);
    tbox_set(&rearm, t0 + 60 * MS);
    tbox_new(&stopped, &next);
    tbox_set(&stopped, t0 + 15 * MS);
    ENV(e->ops->timer_stop(e->obj, stopped.t));
    tbox_new(&never, &next);
    tbox_set(&never, t0 + 16 * MS);
    tbox_set(&never, MESH_TIME_NEVER);
    tbox_new(&freed, &next);
    tbox_set(&freed, t0 + 17 * MS);
    tbox_free(&freed);

    CU_ASSERT(RUN_UNTIL(rearm.fired));
    run_ms(20);
    for (int i = 0; i < NTIMERS; i++) {
        CU_ASSERT_EQUAL(box[i].fired, 1);
        CU_ASSERT(box[i].fired_at >= box[i].deadline); /* never early */
        for (int j = 0; j < NTIMERS; j++)
            if (box[i].deadline < box[j].deadline)
                CU_ASSERT(box[i].order < box[j].order);
    }
    CU_ASSERT_EQUAL(rearm.fired, 1);
    CU_ASSERT(rearm.fired_at >= t0 + 60 * MS);
    CU_ASSERT(rearm.order > box[0].order); /* after the 50 ms timer, not at 5 ms */
    CU_ASSERT_EQUAL(stopped.fired + never.fired + freed.fired, 0);
    for (int i = 0; i < NTIMERS; i++)
        tbox_free(&box[i]);
    tbox_free(&rearm);
    tbox_free(&stopped);
    tbox_free(&never);
    world_end();
}

/* A timer re-arms itself from its callback, fires again, then frees itself there; another
 * frees a victim that has not fired yet; a timer that fired can be set again. */
static void case_timer_callbacks(void)
{
    if (!world_begin())
        return;
    int next = 1;
    tbox periodic, killer, victim, again;
    tbox_new(&periodic, &next);
    tbox_new(&killer, &next);
    tbox_new(&victim, &next);
    tbox_new(&again, &next);
    periodic.rearm_left = 2;
    periodic.free_self = 1;
    killer.free_other = victim.t;
    killer.free_self = 1;
    mesh_time t0 = now();
    tbox_set(&periodic, t0 + 5 * MS);
    tbox_set(&killer, t0 + 5 * MS);
    tbox_set(&victim, t0 + 10 * MS);
    tbox_set(&again, t0 + 1 * MS);
    CU_ASSERT(RUN_UNTIL(periodic.t == NULL && again.fired));
    tbox_set(&again, now() + 1 * MS);
    CU_ASSERT(RUN_UNTIL(again.fired == 2));
    run_ms(20);
    CU_ASSERT_EQUAL(periodic.fired, 3);
    CU_ASSERT(periodic.fired_at >= periodic.deadline);
    CU_ASSERT_EQUAL(killer.fired, 1);
    CU_ASSERT_PTR_NULL(killer.t);
    CU_ASSERT_EQUAL(victim.fired, 0);
    CU_ASSERT_EQUAL(again.fired, 2);
    tbox_free(&again);
    world_end();
}

/* ---- streams: one endpoint and what its callbacks saw ---------------------------------------- */

typedef struct side {
    const mesh_env *env;
    mesh_stream *s;
    mesh_test_buf rx;
    int connected, closed, reason, writable, data_calls;
    size_t rx_at_close, pending_at_writable;
    int echo;          /* write back whatever arrives */
    int close_in_data; /* -1 none, else close(how) inside the first on_data */
    int released;      /* we closed it: no callback may follow */
    int after_release; /* callbacks that came anyway (must stay 0) */
} side;

static void side_init(side *p, const mesh_env *env)
{
    memset(p, 0, sizeof *p);
    p->env = env;
    p->close_in_data = -1;
}

static void side_close(side *p, int how)
{
    p->env->ops->stream_close(p->env->obj, p->s, how);
    p->s = NULL;
    p->released = 1;
}

static void side_enter(side *p, mesh_stream *s)
{
    cb_enter();
    if (p->released || p->closed)
        p->after_release++;
    CU_ASSERT_PTR_EQUAL(s, p->s);
}

static void c_connected(mesh_stream *s, void *ud)
{
    side *p = ud;
    side_enter(p, s);
    p->connected++;
}

static void c_data(mesh_stream *s, const uint8_t *data, size_t len, void *ud)
{
    side *p = ud;
    side_enter(p, s);
    CU_ASSERT(len > 0);
    p->data_calls++;
    mesh_test_buf_add(&p->rx, data, len);
    if (p->echo)
        CU_ASSERT_EQUAL(p->env->ops->stream_write(p->env->obj, s, data, len), MESH_OK);
    if (p->close_in_data >= 0)
        side_close(p, p->close_in_data);
}

static void c_writable(mesh_stream *s, void *ud)
{
    side *p = ud;
    side_enter(p, s);
    p->writable++;
    p->pending_at_writable = p->env->ops->stream_pending(p->env->obj, s);
}

static void c_closed(mesh_stream *s, int reason, void *ud)
{
    side *p = ud;
    side_enter(p, s);
    p->closed++;
    p->reason = reason;
    p->rx_at_close = p->rx.len;
    p->s = NULL; /* released by on_closed (rule 4) */
}

static const mesh_stream_cbs SIDE_CBS = {c_connected, c_data, c_writable, c_closed};

static void write_pattern(side *p, size_t n)
{
    uint8_t *buf = malloc(n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = pattern_byte(i);
    int rc;
    ENV(rc = p->env->ops->stream_write(p->env->obj, p->s, buf, n));
    CU_ASSERT_EQUAL(rc, MESH_OK);
    memset(buf, 0xa5, n); /* rule 3: the driver copied it */
    free(buf);
}

/* A listener on the server host; the accepted stream is handled by sd. */
typedef struct server {
    mesh_listener *l;
    mesh_addr bound, peer;
    side sd;
    int accepts;
    size_t send_on_accept; /* pattern bytes written as soon as accepted */
    int close_on_accept;   /* -1 none, else close(how) right after that */
    int refuse;            /* close the new stream inside accept */
    int close_listener;    /* close the listener inside accept */
} server;

static void on_accept(mesh_listener *l, mesh_stream *s, const mesh_addr *peer, void *ud)
{
    cb_enter();
    server *sv = ud;
    const mesh_env *e = &W.server;
    CU_ASSERT_PTR_EQUAL(l, sv->l);
    sv->accepts++;
    sv->peer = *peer;
    sv->sd.s = s;
    if (sv->close_listener) {
        e->ops->listener_close(e->obj, l);
        sv->l = NULL;
    }
    if (sv->refuse) {
        side_close(&sv->sd, MESH_CLOSE_ABORT);
        return;
    }
    e->ops->stream_set_cbs(e->obj, s, &SIDE_CBS, &sv->sd);
    if (sv->send_on_accept)
        write_pattern(&sv->sd, sv->send_on_accept);
    if (sv->close_on_accept >= 0)
        side_close(&sv->sd, sv->close_on_accept);
}

static void server_start(server *sv)
{
    memset(sv, 0, sizeof *sv);
    side_init(&sv->sd, &W.server);
    sv->close_on_accept = -1;
    const mesh_env *e = &W.server;
    int err = 0;
    ENV(sv->l = e->ops->listen(e->obj, &W.server_addr, on_accept, sv, &err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(sv->l);
    int rc;
    ENV(rc = e->ops->listener_addr(e->obj, sv->l, &sv->bound));
    CU_ASSERT_EQUAL(rc, MESH_OK);
    CU_ASSERT_EQUAL(sv->bound.family, W.server_addr.family);
    CU_ASSERT_NOT_EQUAL(sv->bound.port, 0); /* port 0: one was assigned */
}

static void server_stop(server *sv)
{
    if (sv->l)
        ENV(W.server.ops->listener_close(W.server.obj, sv->l));
    sv->l = NULL;
    if (sv->sd.s)
        ENV(side_close(&sv->sd, MESH_CLOSE_ABORT));
    free(sv->sd.rx.b);
}

static void client_connect(side *c, const mesh_addr *to)
{
    side_init(c, &W.client);
    int err = 12345;
    ENV(c->s = W.client.ops->connect(W.client.obj, to, &SIDE_CBS, c, &err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c->s);
    CU_ASSERT_EQUAL(err, 12345); /* untouched on success */
}

static void client_done(side *c)
{
    if (c->s)
        ENV(side_close(c, MESH_CLOSE_ABORT));
    free(c->rx.b);
}

/* ---- streams ------------------------------------------------------------------------------- */

/* Connect, accept, ECHO_BYTES there and back intact; both ends agree on the addresses (and the
 * accept callback saw the client's); a graceful close reaches the server as on_closed(OK). */
static void case_echo(void)
{
    if (!world_begin())
        return;
    const mesh_env *ce = &W.client, *se = &W.server;
    server sv;
    server_start(&sv);
    sv.sd.echo = 1;
    side c;
    client_connect(&c, &sv.bound);
    CU_ASSERT_EQUAL(c.connected + c.closed, 0);
    CU_ASSERT_FATAL(RUN_UNTIL(c.connected && sv.accepts));
    CU_ASSERT_EQUAL(c.connected, 1);
    mesh_addr cl, cr, sl, sr;
    CU_ASSERT_EQUAL(ce->ops->stream_addrs(ce->obj, c.s, &cl, &cr), MESH_OK);
    CU_ASSERT_EQUAL(se->ops->stream_addrs(se->obj, sv.sd.s, &sl, &sr), MESH_OK);
    CU_ASSERT(mesh_addr_equal(&cr, &sv.bound));
    CU_ASSERT(mesh_addr_equal(&sl, &sv.bound));
    CU_ASSERT(mesh_addr_equal(&sr, &cl));
    CU_ASSERT(mesh_addr_equal(&sv.peer, &cl));
    CU_ASSERT_EQUAL(ce->ops->stream_addrs(ce->obj, c.s, NULL, NULL), MESH_OK);

    write_pattern(&c, ECHO_BYTES);
    CU_ASSERT(RUN_UNTIL(c.rx.len >= ECHO_BYTES));
    CU_ASSERT_EQUAL(c.rx.len, ECHO_BYTES);
    CU_ASSERT(c.rx.len == ECHO_BYTES && check_pattern(c.rx.b, c.rx.len));
    CU_ASSERT_EQUAL(sv.sd.rx.len, ECHO_BYTES);
    CU_ASSERT_EQUAL(sv.accepts, 1);

    ENV(side_close(&c, MESH_CLOSE_GRACEFUL));
    CU_ASSERT(RUN_UNTIL(sv.sd.closed));
    CU_ASSERT_EQUAL(sv.sd.reason, MESH_OK);
    CU_ASSERT_EQUAL(c.after_release + sv.sd.after_release, 0);
    client_done(&c);
    server_stop(&sv);
    world_end();
}

/* A graceful close is a half close as far as the bytes go: what the closer queued arrives,
 * all of it, before the FIN — whichever side closes, even in the turn it wrote. */
static void case_graceful_close_after_data(void)
{
    if (!world_begin())
        return;
    /* the server writes and closes inside accept */
    server sv;
    server_start(&sv);
    sv.send_on_accept = FIN_BYTES;
    sv.close_on_accept = MESH_CLOSE_GRACEFUL;
    side c;
    client_connect(&c, &sv.bound);
    CU_ASSERT(RUN_UNTIL(c.closed));
    CU_ASSERT_EQUAL(c.reason, MESH_OK);
    CU_ASSERT_EQUAL(c.rx_at_close, FIN_BYTES);
    CU_ASSERT(c.rx.len == FIN_BYTES && check_pattern(c.rx.b, c.rx.len));
    CU_ASSERT_EQUAL(sv.sd.after_release, 0);
    client_done(&c);
    server_stop(&sv);

    /* the client writes and closes in one turn */
    server_start(&sv);
    client_connect(&c, &sv.bound);
    CU_ASSERT_FATAL(RUN_UNTIL(c.connected));
    write_pattern(&c, FIN_BYTES);
    ENV(side_close(&c, MESH_CLOSE_GRACEFUL));
    CU_ASSERT(RUN_UNTIL(sv.sd.closed));
    CU_ASSERT_EQUAL(sv.sd.reason, MESH_OK);
    CU_ASSERT_EQUAL(sv.sd.rx_at_close, FIN_BYTES);
    CU_ASSERT(sv.sd.rx.len == FIN_BYTES && check_pattern(sv.sd.rx.b, sv.sd.rx.len));
    CU_ASSERT_EQUAL(c.after_release, 0); /* no callback after our own close */
    client_done(&c);
    server_stop(&sv);
    world_end();
}

/* Bytes written while the connect is in progress are queued (pending at once) and sent once
 * it completes. */
static void case_write_before_connected(void)
{
    if (!world_begin())
        return;
    server sv;
    server_start(&sv);
    side c;
    client_connect(&c, &sv.bound);
    write_pattern(&c, FIN_BYTES);
    size_t pending;
    ENV(pending = W.client.ops->stream_pending(W.client.obj, c.s));
    CU_ASSERT_EQUAL(pending, FIN_BYTES);
    CU_ASSERT(RUN_UNTIL(c.connected && sv.sd.rx.len >= FIN_BYTES));
    CU_ASSERT(sv.sd.rx.len == FIN_BYTES && check_pattern(sv.sd.rx.b, sv.sd.rx.len));
    client_done(&c);
    server_stop(&sv);
    world_end();
}

/* BIG_BYTES written at once are all pending right after the call (nothing is sent from inside
 * it); on_writable comes later, when stream_pending() is back to 0, and every byte arrives. */
static void case_pending_and_writable(void)
{
    if (!world_begin())
        return;
    const mesh_env *ce = &W.client;
    server sv;
    server_start(&sv);
    side c;
    client_connect(&c, &sv.bound);
    CU_ASSERT_FATAL(RUN_UNTIL(c.connected));
    CU_ASSERT_EQUAL(ce->ops->stream_pending(ce->obj, c.s), 0);
    write_pattern(&c, BIG_BYTES);
    CU_ASSERT_EQUAL(ce->ops->stream_pending(ce->obj, c.s), BIG_BYTES);
    CU_ASSERT_EQUAL(c.writable, 0);
    CU_ASSERT(RUN_UNTIL(c.writable > 0));
    CU_ASSERT_EQUAL(c.pending_at_writable, 0);
    CU_ASSERT(RUN_UNTIL(sv.sd.rx.len >= BIG_BYTES));
    CU_ASSERT(sv.sd.rx.len == BIG_BYTES && check_pattern(sv.sd.rx.b, sv.sd.rx.len));
    client_done(&c);
    server_stop(&sv);
    world_end();
}

/* ABORT on one side is MESH_ERR_RESET on the other, even with data queued; the aborting side
 * hears nothing more. */
static void case_abort_is_reset(void)
{
    if (!world_begin())
        return;
    server sv;
    server_start(&sv);
    side c;
    client_connect(&c, &sv.bound);
    CU_ASSERT_FATAL(RUN_UNTIL(c.connected && sv.accepts));
    write_pattern(&sv.sd, 4096);
    ENV(side_close(&sv.sd, MESH_CLOSE_ABORT));
    CU_ASSERT(RUN_UNTIL(c.closed));
    CU_ASSERT_EQUAL(c.reason, MESH_ERR_RESET);
    CU_ASSERT_EQUAL(sv.sd.closed + sv.sd.after_release, 0);
    client_done(&c);
    server_stop(&sv);
    world_end();
}

/* A port nobody listens on: on_closed(MESH_ERR_REFUSED) from the loop, never on_connected. */
static void case_connect_refused(void)
{
    if (!world_begin())
        return;
    server sv;
    server_start(&sv);
    ENV(W.server.ops->listener_close(W.server.obj, sv.l));
    sv.l = NULL;
    side c;
    client_connect(&c, &sv.bound);
    CU_ASSERT_EQUAL(c.closed, 0); /* not from inside connect() */
    CU_ASSERT(RUN_UNTIL(c.closed));
    CU_ASSERT_EQUAL(c.reason, MESH_ERR_REFUSED);
    CU_ASSERT_EQUAL(c.connected, 0);
    client_done(&c);
    server_stop(&sv);
    world_end();
}

/* Closing a stream inside its own on_data: no further callback for it; a graceful close still
 * reaches the peer as an orderly close. */
static void case_close_inside_on_data(void)
{
    if (!world_begin())
        return;
    server sv;
    server_start(&sv);
    side c;
    client_connect(&c, &sv.bound);
    c.close_in_data = MESH_CLOSE_GRACEFUL;
    CU_ASSERT_FATAL(RUN_UNTIL(c.connected && sv.accepts));
    write_pattern(&sv.sd, ECHO_BYTES); /* many pieces: the close lands mid-delivery */
    CU_ASSERT(RUN_UNTIL(sv.sd.closed));
    CU_ASSERT_EQUAL(sv.sd.reason, MESH_OK);
    CU_ASSERT_EQUAL(c.data_calls, 1);
    CU_ASSERT_EQUAL(c.closed + c.after_release, 0);
    client_done(&c);
    server_stop(&sv);
    world_end();
}

/* Refusing a connection inside the accept callback and closing the listener there: the
 * client is reset, the next connect refused. */
static void case_refuse_inside_accept(void)
{
    if (!world_begin())
        return;
    server sv;
    server_start(&sv);
    sv.refuse = 1;
    sv.close_listener = 1;
    side c, c2;
    client_connect(&c, &sv.bound);
    CU_ASSERT(RUN_UNTIL(c.closed));
    CU_ASSERT_EQUAL(c.reason, MESH_ERR_RESET);
    CU_ASSERT_EQUAL(sv.accepts, 1);
    CU_ASSERT_PTR_NULL(sv.l);
    client_connect(&c2, &sv.bound);
    CU_ASSERT(RUN_UNTIL(c2.closed));
    CU_ASSERT_EQUAL(c2.reason, MESH_ERR_REFUSED);
    CU_ASSERT_EQUAL(sv.accepts, 1);
    CU_ASSERT_EQUAL(sv.sd.after_release, 0);
    client_done(&c);
    client_done(&c2);
    server_stop(&sv);
    world_end();
}

/* Immediate local failures: NULL and *err, no callback ever. */
static void case_bad_input(void)
{
    if (!world_begin())
        return;
    const mesh_env *ce = &W.client, *se = &W.server;
    server sv;
    server_start(&sv);
    mesh_addr port0 = sv.bound;
    port0.port = 0;
    side c;
    side_init(&c, ce);
    int err = 0;
    mesh_stream *s;
    ENV(s = ce->ops->connect(ce->obj, &port0, &SIDE_CBS, &c, &err));
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_EQUAL(err, MESH_ERR_INVAL);
    err = 0;
    ENV(s = ce->ops->connect(ce->obj, NULL, &SIDE_CBS, &c, &err));
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_EQUAL(err, MESH_ERR_INVAL);
    /* the bound port is taken */
    mesh_listener *l2;
    err = 0;
    ENV(l2 = se->ops->listen(se->obj, &sv.bound, on_accept, &sv, &err));
    CU_ASSERT_PTR_NULL(l2);
    CU_ASSERT_EQUAL(err, MESH_ERR_ADDR);
    run_ms(20);
    CU_ASSERT_EQUAL(c.connected + c.closed + sv.accepts, 0);
    server_stop(&sv);
    world_end();
}

/* ---- simultaneous open (connect_from) ---------------------------------------------------- */

/* One end of a hole punch: a listener, the stream it connects from the listening port, and
 * whatever the listener accepted. */
typedef struct punch_end {
    const mesh_env *env;
    const char *name;
    mesh_listener *l;
    mesh_addr bound; /* the listening address (and the connecting stream's local one) */
    side out, in;    /* connect_from's stream; the accepted one */
    int accepts, out_err;
    mesh_addr peer; /* what accept said */
} punch_end;

static void p_accept(mesh_listener *l, mesh_stream *s, const mesh_addr *peer, void *ud)
{
    cb_enter();
    punch_end *p = ud;
    CU_ASSERT_PTR_EQUAL(l, p->l);
    p->accepts++;
    p->peer = *peer;
    if (p->in.s) { /* a second stream: refuse it (the case counts it) */
        p->env->ops->stream_close(p->env->obj, s, MESH_CLOSE_ABORT);
        return;
    }
    p->in.s = s;
    p->env->ops->stream_set_cbs(p->env->obj, s, &SIDE_CBS, &p->in);
}

static void punch_listen(punch_end *p, const mesh_env *env, const mesh_addr *at, const char *name)
{
    memset(p, 0, sizeof *p);
    p->env = env;
    p->name = name;
    side_init(&p->out, env);
    side_init(&p->in, env);
    int err = 0, rc;
    ENV(p->l = env->ops->listen(env->obj, at, p_accept, p, &err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->l);
    ENV(rc = env->ops->listener_addr(env->obj, p->l, &p->bound));
    CU_ASSERT_EQUAL_FATAL(rc, MESH_OK);
}

static void punch_connect(punch_end *p, const punch_end *to)
{
    p->out_err = 12345;
    ENV(p->out.s = p->env->ops->connect_from(p->env->obj, &p->bound, &to->bound, &SIDE_CBS, &p->out,
                                             &p->out_err));
    /* NULL: the peer's SYN came first, the four-tuple is taken */
    CU_ASSERT_EQUAL(p->out_err, p->out.s ? 12345 : MESH_ERR_ADDR);
}

/* The stream this end ended up with: its own connect, or the accepted one. */
static side *punch_up(punch_end *p)
{
    if (p->out.connected && !p->out.closed)
        return &p->out;
    if (p->accepts && p->in.s && !p->in.closed)
        return &p->in;
    return NULL;
}

static void punch_end_free(punch_end *p)
{
    if (p->l)
        ENV(p->env->ops->listener_close(p->env->obj, p->l));
    if (p->out.s)
        ENV(side_close(&p->out, MESH_CLOSE_ABORT));
    if (p->in.s)
        ENV(side_close(&p->in, MESH_CLOSE_ABORT));
    free(p->out.rx.b);
    free(p->in.rx.b);
}

/* What happened at one end, for the log: "connected", or "accepted (connect_from: ...)". */
static const char *punch_how(const punch_end *p, char *buf, size_t cap)
{
    if (p->out.connected)
        snprintf(buf, cap, "connected%s", p->accepts ? " and accepted" : "");
    else if (!p->out.s && !p->out.closed)
        snprintf(buf, cap, "%s (connect_from: NULL, %s)", p->accepts ? "accepted" : "nothing",
                 mesh_strerror(p->out_err));
    else
        snprintf(buf, cap, "%s (connect_from: on_closed %s)", p->accepts ? "accepted" : "nothing",
                 p->out.closed ? mesh_strerror(p->out.reason) : "not yet");
    return buf;
}

/* Both ends listen, then in one turn each connects from its listening port to the other's.
 * Each must end with exactly one working stream — its own (the SYNs crossed: simultaneous
 * open) or the one its listener accepted (the other SYN came first) — connected to the other
 * end's listening address; a connecting stream that lost fails only as env.h says. */
static void case_simultaneous_open(void)
{
    if (!world_begin())
        return;
    if (!W.client.ops->connect_from || !W.server.ops->connect_from) {
        printf("\n  SKIP (%s): no connect_from\n", D->name);
        world_end();
        return;
    }
    punch_end a, b;
    punch_listen(&a, &W.client, &W.client_addr, "a");
    punch_listen(&b, &W.server, &W.server_addr, "b");
    punch_connect(&a, &b);
    punch_connect(&b, &a);
    CU_ASSERT(RUN_UNTIL(punch_up(&a) && punch_up(&b)));
    run_ms(50); /* whatever else was on its way arrives */
    punch_end *ends[2] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        punch_end *p = ends[i], *q = ends[1 - i];
        CU_ASSERT_EQUAL(p->out.connected + (p->accepts > 0), 1);
        CU_ASSERT(p->accepts <= 1);
        /* the losing stream: refused, reset or the taken four-tuple */
        int lost = p->out.reason;
        CU_ASSERT(!p->out.closed || lost == MESH_ERR_ADDR || lost == MESH_ERR_REFUSED ||
                  lost == MESH_ERR_RESET);
        CU_ASSERT(!p->accepts || mesh_addr_equal(&p->peer, &q->bound));
        side *u = punch_up(p);
        CU_ASSERT_PTR_NOT_NULL_FATAL(u);
        mesh_addr local, remote;
        int rc;
        ENV(rc = p->env->ops->stream_addrs(p->env->obj, u->s, &local, &remote));
        CU_ASSERT_EQUAL(rc, MESH_OK);
        CU_ASSERT(mesh_addr_equal(&local, &p->bound));
        CU_ASSERT(mesh_addr_equal(&remote, &q->bound));
        ENV(rc = p->env->ops->stream_write(p->env->obj, u->s, p->name, 1));
        CU_ASSERT_EQUAL(rc, MESH_OK);
    }
    CU_ASSERT(RUN_UNTIL(punch_up(&a)->rx.len == 1 && punch_up(&b)->rx.len == 1));
    CU_ASSERT(punch_up(&a)->rx.len == 1 && punch_up(&a)->rx.b[0] == 'b');
    CU_ASSERT(punch_up(&b)->rx.len == 1 && punch_up(&b)->rx.b[0] == 'a');
    char ha[96], hb[96];
    printf("\n  simultaneous open (%s): a %s, b %s ", D->name, punch_how(&a, ha, sizeof ha),
           punch_how(&b, hb, sizeof hb));
    CU_ASSERT_EQUAL(
        a.out.after_release + a.in.after_release + b.out.after_release + b.in.after_release, 0);
    punch_end_free(&a);
    punch_end_free(&b);
    world_end();
}

/* ---- datagrams ---------------------------------------------------------------------------- */

typedef struct dbox {
    const mesh_env *env;
    mesh_dgram *d;
    int count;
    mesh_addr from;
    uint8_t data[64];
    size_t len;
    int reply;      /* answer each datagram to its sender with "pong!" */
    int close_self; /* close inside the callback */
    int after_close;
} dbox;

static void on_dgram(mesh_dgram *d, const mesh_addr *from, const uint8_t *data, size_t len,
                     void *ud)
{
    cb_enter();
    dbox *b = ud;
    CU_ASSERT_PTR_EQUAL(d, b->d);
    if (!b->d)
        b->after_close++;
    b->count++;
    b->from = *from;
    b->len = len < sizeof b->data ? len : sizeof b->data;
    memcpy(b->data, data, b->len);
    if (b->reply)
        CU_ASSERT_EQUAL(b->env->ops->dgram_send(b->env->obj, d, from, "pong!", 5), MESH_OK);
    if (b->close_self) {
        b->env->ops->dgram_close(b->env->obj, d);
        b->d = NULL;
    }
}

static void dbox_bind(dbox *b, const mesh_env *env, const mesh_addr *at, mesh_addr *bound)
{
    memset(b, 0, sizeof *b);
    b->env = env;
    int err = 0, rc;
    ENV(b->d = env->ops->dgram_bind(env->obj, at, on_dgram, b, &err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(b->d);
    ENV(rc = env->ops->dgram_addr(env->obj, b->d, bound));
    CU_ASSERT_EQUAL(rc, MESH_OK);
    CU_ASSERT_NOT_EQUAL(bound->port, 0);
}

static int dbox_send(dbox *b, const mesh_addr *to, const void *data, size_t len)
{
    int rc;
    ENV(rc = b->env->ops->dgram_send(b->env->obj, b->d, to, data, len));
    return rc;
}

static void dbox_close(dbox *b)
{
    if (b->d)
        ENV(b->env->ops->dgram_close(b->env->obj, b->d));
    b->d = NULL;
}

/* One datagram each way: delivered later (never inside the send), intact although the
 * sender's buffer was overwritten at once, from the sender's bound address; one byte over
 * the driver's limit is MESH_ERR_TOO_BIG. */
static void case_dgrams(void)
{
    if (!world_begin())
        return;
    dbox a, b;
    mesh_addr aa, ab;
    dbox_bind(&a, &W.client, &W.client_addr, &aa);
    dbox_bind(&b, &W.server, &W.server_addr, &ab);
    CU_ASSERT(!mesh_addr_equal(&aa, &ab));
    b.reply = 1;
    char buf[8];
    memcpy(buf, "ping", 4);
    CU_ASSERT_EQUAL(dbox_send(&a, &ab, buf, 4), MESH_OK);
    memset(buf, 'x', sizeof buf); /* rule 3 */
    CU_ASSERT_EQUAL(b.count, 0);
    CU_ASSERT(RUN_UNTIL(b.count == 1 && a.count == 1));
    CU_ASSERT(b.len == 4 && memcmp(b.data, "ping", 4) == 0);
    CU_ASSERT(mesh_addr_equal(&b.from, &aa));
    CU_ASSERT(a.len == 5 && memcmp(a.data, "pong!", 5) == 0);
    CU_ASSERT(mesh_addr_equal(&a.from, &ab));

    uint8_t *big = calloc(1, W.dgram_max + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    CU_ASSERT_EQUAL(dbox_send(&a, &ab, big, W.dgram_max + 1), MESH_ERR_TOO_BIG);
    free(big);
    run_ms(20);
    CU_ASSERT_EQUAL(b.count, 1);
    dbox_close(&a);
    dbox_close(&b);
    world_end();
}

/* A datagram socket closed inside its own callback gets nothing more, though more datagrams
 * were on their way. */
static void case_dgram_close_inside_callback(void)
{
    if (!world_begin())
        return;
    dbox rx, tx;
    mesh_addr arx, atx;
    dbox_bind(&rx, &W.server, &W.server_addr, &arx);
    dbox_bind(&tx, &W.client, &W.client_addr, &atx);
    rx.close_self = 1;
    for (int i = 0; i < NDGRAMS; i++)
        CU_ASSERT_EQUAL(dbox_send(&tx, &arx, "x", 1), MESH_OK);
    CU_ASSERT(RUN_UNTIL(rx.count > 0));
    run_ms(20);
    CU_ASSERT_EQUAL(rx.count, 1);
    CU_ASSERT_EQUAL(rx.after_close, 0);
    dbox_close(&tx);
    world_end();
}

/* ---- clock and randomness ------------------------------------------------------------------ */

/* The clock moves forward with the loop; randomness is not a constant. */
static void case_clock_and_random(void)
{
    if (!world_begin())
        return;
    const mesh_env *e = &W.client;
    mesh_time a = now();
    run_ms(10);
    mesh_time b = now();
    CU_ASSERT(b >= a + 10 * MS);
    uint8_t x[32] = {0}, y[32] = {0}, zero[32] = {0};
    ENV(mesh_env_random(e, x, sizeof x));
    ENV(mesh_env_random(e, y, sizeof y));
    CU_ASSERT(memcmp(x, y, sizeof x) != 0);
    CU_ASSERT(memcmp(x, zero, sizeof x) != 0);
    for (int i = 0; i < 100; i++) {
        uint64_t v;
        ENV(v = mesh_env_random_below(e, 6));
        CU_ASSERT(v < 6);
    }
    world_end();
}

CU_TestInfo mesh_conf_tests[] = {
    {"timers: order, never early, re-arm, stop, NEVER, free", case_timers},
    {"timers: re-arm and free inside callbacks", case_timer_callbacks},
    {"streams: connect, accept, echo, addresses", case_echo},
    {"streams: graceful close after data, either side", case_graceful_close_after_data},
    {"streams: writes before the connect completes", case_write_before_connected},
    {"streams: pending and on_writable", case_pending_and_writable},
    {"streams: ABORT is seen as RESET", case_abort_is_reset},
    {"streams: connect to a closed port is REFUSED", case_connect_refused},
    {"streams: close inside on_data", case_close_inside_on_data},
    {"streams: refuse and close the listener inside accept", case_refuse_inside_accept},
    {"streams: bad input fails at once", case_bad_input},
    {"streams: simultaneous open from the listening ports", case_simultaneous_open},
    {"datagrams: both ways, sender address, size limit", case_dgrams},
    {"datagrams: close inside the callback", case_dgram_close_inside_callback},
    {"clock and randomness", case_clock_and_random},
    CU_TEST_INFO_NULL,
};
