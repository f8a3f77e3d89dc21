/* test_vstream.c — the overlay env of core/vstream.h on a simulated base env.
 *
 * First the five rules of env.h as the overlay keeps them, with a recording provider whose
 * reports the test makes by hand: deferred delivery from a base-env timer, the order
 * connected → data → writable → closed, closes inside each callback, exactly one provider
 * close (none once the provider gave the stream up), and the overlay's free releasing every
 * stream without a callback. Then the env conformance suite (tests/common/env_conformance.c)
 * on two overlays whose streams are joined by a loopback provider (tests/common/vpipe.h):
 * listen and connect there are the test's (a table of listeners), everything else is the
 * overlay's, so the suite's stream cases check the overlay as they check a driver. */
#include <stdlib.h>
#include <string.h>

#include "core/session.h"
#include "core/vstream.h"
#include "env_conformance.h"
#include "mesh_test.h"
#include "sim/driver.h"
#include "vpipe.h"

#define MS MESH_NS_PER_MS
#define IP_A SIM_IP4(198, 51, 100, 1)
#define IP_B SIM_IP4(198, 51, 100, 2)

/* Test code: one global marks "inside a call the core makes" for rule 1. */
static int g_in_env;
#define ENV(expr) (g_in_env++, (expr), g_in_env--)

/* ---- a small simulated world: two hosts, their drivers --------------------------------------- */

typedef struct world {
    sim_world *w;
    sim_driver *d[2];
    mesh_env base[2];
} world;

static void world_init(world *x)
{
    memset(x, 0, sizeof *x);
    g_in_env = 0;
    CU_ASSERT_EQUAL_FATAL(sim_world_new(&x->w, 1, NULL), MESH_OK);
    sim_sched_set_event_cap(sim_world_sched(x->w), 10000000);
    sim_net *net = sim_world_net(x->w);
    sim_net_set_core(net, &(sim_link_cfg){.latency = 5 * MS}, NULL, NULL);
    sim_link_cfg l = {.latency = 1 * MS};
    const sim_host_cfg hc[2] = {{"a", IP_A, NULL, l, l}, {"b", IP_B, NULL, l, l}};
    for (int i = 0; i < 2; i++) {
        sim_host *h;
        CU_ASSERT_EQUAL_FATAL(sim_net_add_host(net, &hc[i], &h), MESH_OK);
        CU_ASSERT_EQUAL_FATAL(sim_driver_new(&x->d[i], x->w, h), MESH_OK);
        x->base[i] = sim_driver_env(x->d[i]);
    }
}

static void world_free(world *x)
{
    for (int i = 0; i < 2; i++)
        sim_driver_free(x->d[i]);
    sim_world_free(x->w);
}

static mesh_time world_now(world *x)
{
    return sim_sched_now(sim_world_sched(x->w));
}

static void world_run(world *x, mesh_time dt)
{
    CU_ASSERT_EQUAL(sim_sched_run_until(sim_world_sched(x->w), world_now(x) + dt), MESH_OK);
}

/* ---- a provider the test drives by hand, and a consumer that logs ------------------------------
 */

typedef struct prov {
    int writes, closes, close_how, delivered_calls;
    size_t delivered, pending;
    mesh_test_buf got;
    mesh_stream *push_in_close; /* report on this stream from inside close (must be ignored) */
    int push_in_close_rc;
} prov;

static int p_write(void *pud, const uint8_t *data, size_t len)
{
    CU_ASSERT_EQUAL(g_in_env, 1); /* only from inside the consumer's stream_write */
    prov *p = pud;
    p->writes++;
    mesh_test_buf_add(&p->got, data, len);
    return MESH_OK;
}

static size_t p_pending(void *pud)
{
    return ((prov *)pud)->pending;
}

static void p_delivered(void *pud, size_t len)
{
    CU_ASSERT_EQUAL(g_in_env, 0); /* from the stream's timer */
    prov *p = pud;
    p->delivered_calls++;
    p->delivered += len;
}

static void p_close(void *pud, int how)
{
    prov *p = pud;
    p->closes++;
    p->close_how = how;
    if (p->push_in_close)
        p->push_in_close_rc = mesh_vstream_push(p->push_in_close, (const uint8_t *)"x", 1);
}

static const mesh_vstream_provider PROV = {p_write, p_pending, p_delivered, p_close};

typedef struct cons {
    mesh_env env;
    mesh_stream *s;
    char log[32]; /* C connected, D data, W writable, X closed */
    size_t nlog;
    mesh_test_buf rx;
    int reason;
    char close_in; /* close (GRACEFUL) inside this callback */
    mesh_time at[8];
} cons;

static void c_event(cons *c, mesh_stream *s, char what)
{
    CU_ASSERT_EQUAL(g_in_env, 0); /* rule 1 */
    CU_ASSERT_PTR_EQUAL(s, c->s);
    if (c->nlog < sizeof c->log - 1) {
        c->at[c->nlog % 8] = c->env.ops->now(c->env.obj);
        c->log[c->nlog++] = what;
    }
}

static void c_maybe_close(cons *c, char what)
{
    if (c->close_in == what) {
        c->env.ops->stream_close(c->env.obj, c->s, MESH_CLOSE_GRACEFUL);
        c->s = NULL;
    }
}

static void c_connected(mesh_stream *s, void *ud)
{
    c_event(ud, s, 'C');
    c_maybe_close(ud, 'C');
}

static void c_data(mesh_stream *s, const uint8_t *d, size_t len, void *ud)
{
    cons *c = ud;
    c_event(c, s, 'D');
    mesh_test_buf_add(&c->rx, d, len);
    c_maybe_close(c, 'D');
}

static void c_writable(mesh_stream *s, void *ud)
{
    c_event(ud, s, 'W');
    c_maybe_close(ud, 'W');
}

static void c_closed(mesh_stream *s, int reason, void *ud)
{
    cons *c = ud;
    c_event(c, s, 'X');
    c->reason = reason;
    c->s = NULL; /* released (rule 4) */
}

static const mesh_stream_cbs CONS_CBS = {c_connected, c_data, c_writable, c_closed};

/* A new world and an overlay on its host a; overlay_end frees both. */
static mesh_vstream_env *overlay(world *x)
{
    world_init(x);
    mesh_vstream_env *v = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_vstream_env_new(&v, &x->base[0]), MESH_OK);
    return v;
}

static void overlay_end(mesh_vstream_env *v, world *x)
{
    mesh_vstream_env_free(v);
    world_free(x);
}

/* A stream of v for consumer c (adopted at once when accepted and adopt is set). */

static void cons_open(cons *c, mesh_vstream_env *v, prov *p, int connecting)
{
    memset(c, 0, sizeof *c);
    c->env = mesh_vstream_env_env(v);
    int err = 0;
    mesh_addr la = mesh_addr_v4(IP_A, 1000), ra = mesh_addr_v4(IP_B, 2000);
    c->s = mesh_vstream_open(v, &PROV, p, connecting, &la, &ra, &CONS_CBS, c, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c->s);
}

/* cons_open of an accepted stream, adopted at once. */
static void cons_adopt(cons *c, mesh_vstream_env *v, prov *p)
{
    cons_open(c, v, p, 0);
    ENV(c->env.ops->stream_set_cbs(c->env.obj, c->s, &CONS_CBS, c));
}

/* Connected, bytes, drained, more bytes, end — all reported at once: nothing runs inside the
 * reports; one later event at the same instant delivers C, D (all six bytes, once), W, X. */
static void test_deferred_delivery_and_order(void)
{
    world x;
    mesh_vstream_env *v = overlay(&x);
    world_run(&x, 7 * MS);
    prov p = {0};
    cons c;
    cons_open(&c, v, &p, 1);
    int rc;
    ENV(rc = mesh_vstream_push(c.s, (const uint8_t *)"early", 5));
    CU_ASSERT_EQUAL(rc, MESH_ERR_STATE); /* still connecting */
    mesh_time t0 = world_now(&x);
    ENV(mesh_vstream_connected(c.s));
    ENV(rc = mesh_vstream_push(c.s, (const uint8_t *)"abc", 3));
    CU_ASSERT_EQUAL(rc, MESH_OK);
    ENV(mesh_vstream_drained(c.s));
    ENV(rc = mesh_vstream_push(c.s, (const uint8_t *)"def", 3));
    CU_ASSERT_EQUAL(rc, MESH_OK);
    mesh_stream *was = c.s;
    ENV(mesh_vstream_end(c.s, MESH_OK));
    CU_ASSERT_EQUAL(c.nlog, 0); /* nothing from inside the reports */
    ENV(rc = mesh_vstream_push(was, (const uint8_t *)"late", 4));
    CU_ASSERT_EQUAL(rc, MESH_ERR_STATE); /* after the end */
    world_run(&x, 1 * MS);
    CU_ASSERT_STRING_EQUAL(c.log, "CDWX");
    CU_ASSERT(c.rx.len == 6 && memcmp(c.rx.b, "abcdef", 6) == 0);
    CU_ASSERT_EQUAL(c.reason, MESH_OK);
    CU_ASSERT_EQUAL(c.at[0], t0); /* a later event at the same instant (rule 5: base's time) */
    CU_ASSERT_EQUAL(c.at[3], t0);
    /* the provider gave it up at the end: no delivered report, no close op */
    CU_ASSERT_EQUAL(p.delivered_calls + p.closes, 0);
    CU_ASSERT_EQUAL(mesh_vstream_env_count(v), 0); /* released by on_closed */
    free(c.rx.b);
    overlay_end(v, &x);
}

/* Closing inside on_connected, on_data or on_writable: no callback after it, the provider's
 * close runs once with the consumer's how, no delivered report after the close, and the
 * stream is gone. */
static void test_close_inside_callbacks(void)
{
    static const char *const want[] = {"C", "CD", "CDW"};
    static const char where[] = {'C', 'D', 'W'};
    for (int k = 0; k < 3; k++) {
        world x;
        mesh_vstream_env *v = overlay(&x);
        prov p = {0};
        cons c;
        cons_open(&c, v, &p, 1);
        c.close_in = where[k];
        ENV(mesh_vstream_connected(c.s));
        ENV(mesh_vstream_push(c.s, (const uint8_t *)"data", 4));
        ENV(mesh_vstream_drained(c.s));
        ENV(mesh_vstream_end(c.s, MESH_ERR_RESET));
        world_run(&x, 5 * MS);
        CU_ASSERT_STRING_EQUAL(c.log, want[k]);
        CU_ASSERT_EQUAL(p.closes, 0); /* ended before the close: the provider had let go */
        CU_ASSERT_EQUAL(p.delivered_calls, 0);
        CU_ASSERT_EQUAL(mesh_vstream_env_count(v), 0);
        free(c.rx.b);

        /* the same without the end: the close reaches the provider, once */
        prov q = {0};
        cons_open(&c, v, &q, 1);
        c.close_in = where[k];
        ENV(mesh_vstream_connected(c.s));
        ENV(mesh_vstream_push(c.s, (const uint8_t *)"data", 4));
        ENV(mesh_vstream_drained(c.s));
        world_run(&x, 5 * MS);
        CU_ASSERT_STRING_EQUAL(c.log, want[k]);
        CU_ASSERT_EQUAL(q.closes, 1);
        CU_ASSERT_EQUAL(q.close_how, MESH_CLOSE_GRACEFUL);
        CU_ASSERT_EQUAL(q.delivered_calls, k >= 2); /* delivered only if on_data returned open */
        CU_ASSERT_EQUAL(mesh_vstream_env_count(v), 0);
        free(c.rx.b);
        overlay_end(v, &x);
    }
}

/* The provider's close runs exactly once per consumer close, at once; never when the provider
 * had ended the stream (even if on_closed was not delivered yet); reports made from inside
 * the close op are refused. */
static void test_exactly_once_close(void)
{
    world x;
    mesh_vstream_env *v = overlay(&x);
    prov p = {0};
    cons c;
    cons_adopt(&c, v, &p);
    p.push_in_close = c.s;
    p.push_in_close_rc = 1;
    ENV(c.env.ops->stream_close(c.env.obj, c.s, MESH_CLOSE_ABORT));
    CU_ASSERT_EQUAL(p.closes, 1);
    CU_ASSERT_EQUAL(p.close_how, MESH_CLOSE_ABORT);
    CU_ASSERT_EQUAL(p.push_in_close_rc, MESH_ERR_STATE);
    CU_ASSERT_EQUAL(mesh_vstream_env_count(v), 0);
    world_run(&x, 5 * MS);
    CU_ASSERT_EQUAL(c.nlog, 0);
    CU_ASSERT_EQUAL(p.closes, 1);

    /* ended, then closed by the consumer before on_closed came: no close op, no on_closed */
    prov q = {0};
    cons_adopt(&c, v, &q);
    ENV(mesh_vstream_end(c.s, MESH_OK));
    ENV(c.env.ops->stream_close(c.env.obj, c.s, MESH_CLOSE_GRACEFUL));
    world_run(&x, 5 * MS);
    CU_ASSERT_EQUAL(q.closes, 0);
    CU_ASSERT_EQUAL(c.nlog, 0);
    CU_ASSERT_EQUAL(mesh_vstream_env_count(v), 0);
    overlay_end(v, &x);
}

/* Freeing the overlay releases every stream — connecting, adopted, not yet adopted, with
 * reports waiting — without a callback or a provider op (ASan: nothing leaks). */
static void test_free_releases_all(void)
{
    world x;
    mesh_vstream_env *v = overlay(&x);
    prov p = {0};
    cons c[3];
    cons_open(&c[0], v, &p, 1);
    cons_adopt(&c[1], v, &p);
    cons_open(&c[2], v, &p, 0);
    ENV(mesh_vstream_connected(c[0].s));
    for (int i = 1; i < 3; i++) {
        ENV(mesh_vstream_push(c[i].s, (const uint8_t *)"pending", 7));
        ENV(mesh_vstream_end(c[i].s, MESH_OK));
    }
    CU_ASSERT_EQUAL(mesh_vstream_env_count(v), 3);
    mesh_vstream_env_free(v);
    world_run(&x, 10 * MS);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(c[i].nlog, 0);
    CU_ASSERT_EQUAL(p.closes + p.writes + p.delivered_calls, 0);
    mesh_vstream_env_free(NULL);
    world_free(&x);
}

/* An accepted stream holds its reports until adopted; a write the provider takes at once
 * (pending 0) is followed by on_writable; writes after the end fail without reaching the
 * provider; listen and connect are not the overlay's; clock and timers are the base's. */
static void test_adopt_write_and_base(void)
{
    world x;
    mesh_vstream_env *v = overlay(&x);
    prov p = {0};
    cons c;
    cons_open(&c, v, &p, 0);
    ENV(mesh_vstream_push(c.s, (const uint8_t *)"held", 4));
    world_run(&x, 5 * MS);
    CU_ASSERT_EQUAL(c.nlog, 0);
    ENV(c.env.ops->stream_set_cbs(c.env.obj, c.s, &CONS_CBS, &c));
    CU_ASSERT_EQUAL(c.nlog, 0);
    world_run(&x, 1 * MS);
    CU_ASSERT_STRING_EQUAL(c.log, "D");
    CU_ASSERT(p.delivered_calls == 1 && p.delivered == 4); /* a window may reopen */
    char msg[] = "hello";
    int rc;
    ENV(rc = c.env.ops->stream_write(c.env.obj, c.s, msg, 5));
    CU_ASSERT_EQUAL(rc, MESH_OK);
    memset(msg, 0, sizeof msg); /* rule 3: the provider copied */
    CU_ASSERT(p.got.len == 5 && memcmp(p.got.b, "hello", 5) == 0);
    p.pending = 3; /* this one waits in the provider: no on_writable until drained */
    ENV(rc = c.env.ops->stream_write(c.env.obj, c.s, "abc", 3));
    CU_ASSERT_EQUAL(c.env.ops->stream_pending(c.env.obj, c.s), 3);
    world_run(&x, 1 * MS);
    CU_ASSERT_STRING_EQUAL(c.log, "DW");
    p.pending = 0;
    ENV(mesh_vstream_drained(c.s));
    world_run(&x, 1 * MS);
    CU_ASSERT_STRING_EQUAL(c.log, "DWW");
    mesh_addr la, ra;
    CU_ASSERT_EQUAL(c.env.ops->stream_addrs(c.env.obj, c.s, &la, &ra), MESH_OK);
    CU_ASSERT(la.port == 1000 && ra.port == 2000);
    ENV(mesh_vstream_end(c.s, MESH_ERR_RESET));
    ENV(rc = c.env.ops->stream_write(c.env.obj, c.s, "zz", 2));
    CU_ASSERT_EQUAL(rc, MESH_ERR_CLOSED);
    CU_ASSERT_EQUAL(p.writes, 2);
    CU_ASSERT_EQUAL(c.env.ops->stream_pending(c.env.obj, c.s), 0);
    world_run(&x, 1 * MS);
    CU_ASSERT_STRING_EQUAL(c.log, "DWWX");
    CU_ASSERT_EQUAL(c.reason, MESH_ERR_RESET);

    int err = 0;
    mesh_addr to = mesh_addr_v4(IP_B, 80);
    CU_ASSERT_PTR_NULL(c.env.ops->connect(c.env.obj, &to, &CONS_CBS, &c, &err));
    CU_ASSERT_EQUAL(err, MESH_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NULL(c.env.ops->listen(c.env.obj, &to, NULL, NULL, &err));
    CU_ASSERT_EQUAL(c.env.ops->now(c.env.obj), world_now(&x));
    CU_ASSERT_PTR_NULL(mesh_vstream_open(v, NULL, NULL, 0, NULL, NULL, NULL, NULL, &err));
    CU_ASSERT_EQUAL(err, MESH_ERR_INVAL);
    mesh_vstream_env *bad = NULL;
    CU_ASSERT_EQUAL(mesh_vstream_env_new(&bad, NULL), MESH_ERR_INVAL);
    CU_ASSERT_PTR_NULL(bad);
    free(c.rx.b);
    free(p.got.b);
    overlay_end(v, &x);
}

/* ---- a Meshara session inside two virtual streams ------------------------------------------- */

enum { PAYLOAD_LEN = 64 };

typedef struct peer {
    mesh_vstream_env *v;
    mesh_env env;
    mesh_identity *id;
    mesh_tls_ctx *tls;
    mesh_session *s;
    int connected, closed, reason, msgs, bad;
    mesh_test_buf got; /* payloads received */
} peer;

typedef struct spair {
    world x;
    peer p[2]; /* 0 client on host a, 1 server on host b */
    mesh_vpipe *pipe;
} spair;

static void sp_connected(mesh_session *s, void *ud)
{
    (void)s;
    ((peer *)ud)->connected++;
}

static void sp_message(mesh_session *s, const mesh_envelope *e, void *ud)
{
    (void)s;
    peer *p = ud;
    if (e->body_case != MESHARA__WIRE__ENVELOPE__BODY_DATA) {
        p->bad++;
        return;
    }
    p->msgs++;
    mesh_test_buf_add(&p->got, e->data->payload.data, e->data->payload.len);
}

static void sp_closed(mesh_session *s, int reason, void *ud)
{
    (void)s;
    peer *p = ud;
    p->closed++;
    p->reason = reason;
}

static const mesh_session_cbs SP_CBS = {sp_connected, sp_message, NULL, sp_closed};

static void payload(uint8_t *b, int from)
{
    for (int i = 0; i < PAYLOAD_LEN; i++)
        b[i] = (uint8_t)(0x5a ^ (i * 7) ^ from);
}

/* Two overlays (client on host a, server on host b) whose streams the test pipe joins, a
 * client session over side 0 (pinning pin, NULL = the server's key) and a server session
 * accepting side 1. Bytes are recorded; flip_from >= 0 flips the byte at flip_at. */
static void spair_start(spair *sp, const uint8_t *pin, int flip_from, uint64_t flip_at)
{
    memset(sp, 0, sizeof *sp);
    world_init(&sp->x);
    for (int i = 0; i < 2; i++) {
        peer *p = &sp->p[i];
        CU_ASSERT_EQUAL_FATAL(mesh_vstream_env_new(&p->v, &sp->x.base[i]), MESH_OK);
        p->env = mesh_vstream_env_env(p->v);
        CU_ASSERT_EQUAL_FATAL(mesh_identity_generate(&p->id, &p->env), MESH_OK);
        CU_ASSERT_EQUAL_FATAL(mesh_tls_ctx_new(&p->tls, &p->env, p->id, NULL), MESH_OK);
    }
    sp->pipe = mesh_vpipe_new(&sp->x.base[0]);
    mesh_vpipe_record(sp->pipe);
    if (flip_from >= 0)
        mesh_vpipe_flip(sp->pipe, flip_from, flip_at);
    mesh_addr a = mesh_addr_v4(IP_A, 50000), b = mesh_addr_v4(IP_B, 443);
    mesh_stream *sa = mesh_vpipe_open(sp->pipe, 0, sp->p[0].v, 0, &a, &b, NULL, NULL);
    mesh_stream *sb = mesh_vpipe_open(sp->pipe, 1, sp->p[1].v, 0, &b, &a, NULL, NULL);
    const uint8_t *key = pin ? pin : mesh_identity_pubkey(sp->p[1].id);
    CU_ASSERT_EQUAL_FATAL(mesh_session_connect_stream(&sp->p[0].s, &sp->p[0].env, sp->p[0].tls, sa,
                                                      key, NULL, &SP_CBS, &sp->p[0]),
                          MESH_OK);
    CU_ASSERT_EQUAL(mesh_session_get_state(sp->p[0].s), MESH_SESSION_HANDSHAKING);
    CU_ASSERT_EQUAL_FATAL(
        mesh_session_accept(&sp->p[1].s, &sp->p[1].env, sp->p[1].tls, sb, NULL, &SP_CBS, &sp->p[1]),
        MESH_OK);
}

static void spair_stop(spair *sp)
{
    for (int i = 0; i < 2; i++) {
        peer *p = &sp->p[i];
        mesh_session_free(p->s);
        mesh_vstream_env_free(p->v);
        mesh_tls_ctx_free(p->tls);
        mesh_identity_free(p->id);
        free(p->got.b);
    }
    mesh_vpipe_free(sp->pipe);
    world_free(&sp->x);
}

/* 1 if needle occurs in hay. */
static int contains(const mesh_test_buf *hay, const uint8_t *needle, size_t n)
{
    for (size_t i = 0; i + n <= hay->len; i++)
        if (memcmp(hay->b + i, needle, n) == 0)
            return 1;
    return 0;
}

/* TLS 1.3 and the exporter-bound hello inside the pipe: both ends CONNECTED with each other's
 * key, data both ways, an orderly close; the pipe saw only ciphertext. */
static void test_session_inside(void)
{
    spair sp;
    spair_start(&sp, NULL, -1, 0);
    world_run(&sp.x, 200 * MS);
    CU_ASSERT_FATAL(sp.p[0].connected == 1 && sp.p[1].connected == 1);
    CU_ASSERT(memcmp(mesh_session_peer_key(sp.p[0].s), mesh_identity_pubkey(sp.p[1].id),
                     MESH_PUBKEY_LEN) == 0);
    CU_ASSERT(memcmp(mesh_session_peer_key(sp.p[1].s), mesh_identity_pubkey(sp.p[0].id),
                     MESH_PUBKEY_LEN) == 0);
    CU_ASSERT(mesh_session_is_client(sp.p[0].s) && !mesh_session_is_client(sp.p[1].s));
    uint8_t m[2][PAYLOAD_LEN];
    for (int i = 0; i < 2; i++) {
        payload(m[i], i);
        CU_ASSERT_EQUAL(mesh_session_send_data(sp.p[i].s, 1, m[i], PAYLOAD_LEN), MESH_OK);
    }
    world_run(&sp.x, 100 * MS);
    for (int i = 0; i < 2; i++) {
        peer *rx = &sp.p[1 - i];
        CU_ASSERT(rx->msgs == 1 && rx->got.len == PAYLOAD_LEN &&
                  memcmp(rx->got.b, m[i], PAYLOAD_LEN) == 0);
        CU_ASSERT_FALSE(contains(mesh_vpipe_seen(sp.pipe, i), m[i], 16)); /* ciphertext only */
        CU_ASSERT(mesh_vpipe_moved(sp.pipe, i) > PAYLOAD_LEN);
    }
    CU_ASSERT_EQUAL(mesh_session_close(sp.p[0].s), MESH_OK);
    world_run(&sp.x, 100 * MS);
    CU_ASSERT(sp.p[0].closed == 1 && sp.p[0].reason == MESH_OK);
    CU_ASSERT(sp.p[1].closed == 1 && sp.p[1].reason == MESH_OK);
    CU_ASSERT_EQUAL(sp.p[0].bad + sp.p[1].bad, 0);
    CU_ASSERT_EQUAL(mesh_vstream_env_count(sp.p[0].v) + mesh_vstream_env_count(sp.p[1].v), 0);
    spair_stop(&sp);
}

/* The hello is checked inside the pipe as over TCP: a client pinning another key refuses. */
static void test_session_inside_pin(void)
{
    uint8_t wrong[MESH_PUBKEY_LEN];
    memset(wrong, 0x42, sizeof wrong);
    spair sp;
    spair_start(&sp, wrong, -1, 0);
    world_run(&sp.x, 200 * MS);
    CU_ASSERT_EQUAL(sp.p[0].connected, 0);
    CU_ASSERT(sp.p[0].closed == 1 && sp.p[0].reason == MESH_ERR_KEY_MISMATCH);
    spair_stop(&sp);
}

/* A carrier that flips one byte: during the handshake (either direction) both ends fail with
 * MESH_ERR_TLS; after it, the receiver fails with MESH_ERR_TLS and delivers nothing of the
 * altered record, the sender sees the stream end without a goodbye (MESH_ERR_CLOSED). */
static void test_session_inside_flipped(void)
{
    static const struct {
        int from;
        uint64_t at;
    } hs[] = {{0, 60}, {1, 100}, {1, 600}};
    for (size_t k = 0; k < sizeof hs / sizeof hs[0]; k++) {
        spair sp;
        spair_start(&sp, NULL, hs[k].from, hs[k].at);
        world_run(&sp.x, 500 * MS);
        for (int i = 0; i < 2; i++) {
            CU_ASSERT_EQUAL(sp.p[i].connected, 0);
            CU_ASSERT_EQUAL(sp.p[i].closed, 1);
            CU_ASSERT_EQUAL(sp.p[i].reason, MESH_ERR_TLS);
        }
        spair_stop(&sp);
    }
    for (int from = 0; from < 2; from++) {
        spair sp;
        spair_start(&sp, NULL, -1, 0);
        world_run(&sp.x, 200 * MS);
        CU_ASSERT_FATAL(sp.p[0].connected == 1 && sp.p[1].connected == 1);
        mesh_vpipe_flip(sp.pipe, from, mesh_vpipe_moved(sp.pipe, from) + 20);
        uint8_t m[PAYLOAD_LEN];
        payload(m, from);
        CU_ASSERT_EQUAL(mesh_session_send_data(sp.p[from].s, 7, m, PAYLOAD_LEN), MESH_OK);
        world_run(&sp.x, 200 * MS);
        peer *rx = &sp.p[1 - from], *tx = &sp.p[from];
        CU_ASSERT(rx->closed == 1 && rx->reason == MESH_ERR_TLS);
        CU_ASSERT_EQUAL(rx->msgs + rx->bad, 0); /* nothing altered delivered */
        CU_ASSERT(tx->closed == 1 && tx->reason == MESH_ERR_CLOSED);
        spair_stop(&sp);
    }
}

/* ---- the env conformance suite on overlays joined by vpipe ----------------------------------- */

enum { MAX_LISTENERS = 8, MAX_PIPES = 64, FIRST_PORT = 40000, FIRST_EPHEMERAL = 50000 };

typedef struct lst {
    mesh_vstream_env *v;
    mesh_addr addr;
    mesh_accept_cb cb;
    void *ud;
    int open;
} lst;

typedef struct vworld {
    world x;
    mesh_vstream_env *v[2];
    mesh_env_ops ops; /* the overlay's ops with the test's listen and connect */
    lst l[MAX_LISTENERS];
    mesh_vpipe *pipes[MAX_PIPES];
    size_t npipes;
    uint16_t next_port, next_ephemeral;
} vworld;

static vworld *g_vw; /* the conformance world now running (the ops find it here) */

static mesh_listener *vw_listen(void *obj, const mesh_addr *addr, mesh_accept_cb cb, void *ud,
                                int *err)
{
    if (!addr || !cb) {
        *err = MESH_ERR_INVAL;
        return NULL;
    }
    mesh_addr a = *addr;
    if (!a.port)
        a.port = g_vw->next_port++;
    lst *free_slot = NULL;
    for (int i = 0; i < MAX_LISTENERS; i++) {
        lst *l = &g_vw->l[i];
        if (l->open && mesh_addr_equal(&l->addr, &a)) {
            *err = MESH_ERR_ADDR;
            return NULL;
        }
        if (!l->open && !free_slot)
            free_slot = l;
    }
    if (!free_slot) {
        *err = MESH_ERR_NOMEM;
        return NULL;
    }
    *free_slot = (lst){obj, a, cb, ud, 1};
    return (mesh_listener *)(void *)free_slot;
}

static int vw_listener_addr(void *obj, mesh_listener *l, mesh_addr *out)
{
    (void)obj;
    *out = ((lst *)(void *)l)->addr;
    return MESH_OK;
}

static void vw_listener_close(void *obj, mesh_listener *l)
{
    (void)obj;
    ((lst *)(void *)l)->open = 0;
}

typedef struct dial {
    mesh_addr from, to;
} dial;

static dial g_dials[MAX_PIPES];

/* The SYN arrives: a listener takes it (side 1 opened and accepted, side 0 connected), or
 * nobody listens (side 0 refused). */
static void vw_arrive(mesh_vpipe *p, void *ud)
{
    dial *d = ud;
    for (int i = 0; i < MAX_LISTENERS; i++) {
        lst *l = &g_vw->l[i];
        if (!l->open || !mesh_addr_equal(&l->addr, &d->to))
            continue;
        mesh_stream *s = mesh_vpipe_open(p, 1, l->v, 0, &d->to, &d->from, NULL, NULL);
        mesh_vpipe_connected(p, 0);
        l->cb((mesh_listener *)(void *)l, s, &d->from, l->ud);
        return;
    }
    mesh_vpipe_end(p, 0, MESH_ERR_REFUSED);
}

static mesh_stream *vw_connect(void *obj, const mesh_addr *to, const mesh_stream_cbs *cbs, void *ud,
                               int *err)
{
    if (!to || !to->port) {
        *err = MESH_ERR_INVAL;
        return NULL;
    }
    if (g_vw->npipes == MAX_PIPES) {
        *err = MESH_ERR_NOMEM;
        return NULL;
    }
    size_t k = g_vw->npipes;
    mesh_vstream_env *v = obj;
    int side = v == g_vw->v[0] ? 0 : 1;
    dial *d = &g_dials[k];
    d->from = mesh_addr_v4(side == 0 ? IP_A : IP_B, g_vw->next_ephemeral++);
    d->to = *to;
    mesh_vpipe *p = mesh_vpipe_new(&g_vw->x.base[side]);
    g_vw->pipes[g_vw->npipes++] = p;
    mesh_stream *s = mesh_vpipe_open(p, 0, v, 1, &d->from, to, cbs, ud);
    mesh_vpipe_on_arrive(p, vw_arrive, d);
    return s;
}

static int conf_world_new(mesh_conf_world *w, char *why, size_t whylen)
{
    (void)why, (void)whylen;
    vworld *vw = calloc(1, sizeof *vw);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vw);
    world_init(&vw->x);
    for (int i = 0; i < 2; i++)
        CU_ASSERT_EQUAL_FATAL(mesh_vstream_env_new(&vw->v[i], &vw->x.base[i]), MESH_OK);
    vw->ops = *mesh_vstream_env_env(vw->v[0]).ops;
    vw->ops.listen = vw_listen;
    vw->ops.listener_addr = vw_listener_addr;
    vw->ops.listener_close = vw_listener_close;
    vw->ops.connect = vw_connect;
    vw->next_port = FIRST_PORT;
    vw->next_ephemeral = FIRST_EPHEMERAL;
    g_vw = vw;
    w->impl = vw;
    w->client = (mesh_env){&vw->ops, vw->v[0]};
    w->server = (mesh_env){&vw->ops, vw->v[1]};
    w->client_addr = mesh_addr_v4(IP_A, 0);
    w->server_addr = mesh_addr_v4(IP_B, 0);
    w->dgram_max = SIM_PKT_MAX_PAYLOAD;
    return 0;
}

static void conf_world_free(mesh_conf_world *w)
{
    vworld *vw = w->impl;
    for (int i = 0; i < 2; i++)
        mesh_vstream_env_free(vw->v[i]);
    for (size_t i = 0; i < vw->npipes; i++)
        mesh_vpipe_free(vw->pipes[i]);
    world_free(&vw->x);
    free(vw);
    g_vw = NULL;
}

static void conf_run_for(mesh_conf_world *w, mesh_time dt)
{
    vworld *vw = w->impl;
    world_run(&vw->x, dt);
}

static const mesh_conf_driver CONF_VSTREAM = {"vstream overlay + loopback provider", conf_world_new,
                                              conf_world_free, conf_run_for};

static int use_vstream(void)
{
    mesh_conf_use(&CONF_VSTREAM);
    return 0;
}

static const CU_TestInfo rules_tests[] = {
    {"rule 1: deferred delivery, order connected/data/writable/closed",
     test_deferred_delivery_and_order},
    {"rule 2: close inside each callback", test_close_inside_callbacks},
    {"rule 4: exactly one provider close, none after the provider's end", test_exactly_once_close},
    {"free releases every stream without callbacks", test_free_releases_all},
    {"adoption, writes, on_writable, base clock, no listen/connect", test_adopt_write_and_base},
    CU_TEST_INFO_NULL,
};

static const CU_TestInfo session_tests[] = {
    {"TLS 1.3 + hello inside two vstreams, ciphertext only", test_session_inside},
    {"a wrong pin fails inside as over TCP", test_session_inside_pin},
    {"a flipped byte fails the session, nothing altered delivered", test_session_inside_flipped},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"vstream: env.h's rules", NULL, NULL, NULL, NULL, (CU_TestInfo *)rules_tests},
    {"vstream: a session inside (mesh_session_connect_stream)", NULL, NULL, NULL, NULL,
     (CU_TestInfo *)session_tests},
    {"env conformance: vstream overlay", use_vstream, NULL, NULL, NULL, mesh_conf_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
