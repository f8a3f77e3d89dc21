/* test_session.c — secure sessions in the simulator: TLS 1.3 + identity hello over simulated
 * TCP, with every assertion in exact virtual time where the design predicts one.
 *
 * Topology: hosts on the core, each with a 20 ms access link each way, so any two hosts are
 * 40 ms apart one way (RTT 80 ms); rate 0 (no serialisation) so the arithmetic is exact:
 *
 *     A (client) ──20ms── core ──20ms── B (server)        C: a third party (bad client, MITM)
 */
#include "mesh_test.h"

#include <math.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/frame.h"
#include "core/pad.h"
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
    MAX_NODES = 4,
    MAX_APPS = 16,
    EVENT_CAP = 200 * 1000 * 1000,
    PATTERN_LEN = (1 << 20) + 256,
};

#define MS(x) ((mesh_time)(x)*MESH_NS_PER_MS)
#define D MS(ONE_WAY_MS)

/* ---- world ------------------------------------------------------------------------------- */

typedef struct node {
    sim_host *h;
    sim_driver *d;
    mesh_env env;
    mesh_identity *id;
    mesh_tls_ctx *tls;
} node;

typedef struct world {
    sim_world *w;
    node n[MAX_NODES];
} world;

enum { A = 0, B = 1, C = 2 };

static void world_init(world *W, uint64_t seed)
{
    memset(W, 0, sizeof *W);
    CU_ASSERT_EQUAL_FATAL(sim_world_new(&W->w, seed, NULL), MESH_OK);
    sim_sched_set_event_cap(sim_world_sched(W->w), EVENT_CAP);
    sim_link_cfg l = {.latency = MS(ACCESS_MS)};
    static const char *const names[] = {"a", "b", "c", "d"};
    for (int i = 0; i < MAX_NODES; i++) {
        node *n = &W->n[i];
        sim_host_cfg hc = {names[i], SIM_IP4(10, 0, 0, 1 + i), NULL, l, l};
        CU_ASSERT_EQUAL_FATAL(sim_net_add_host(sim_world_net(W->w), &hc, &n->h), MESH_OK);
        CU_ASSERT_EQUAL_FATAL(sim_driver_new(&n->d, W->w, n->h), MESH_OK);
        n->env = sim_driver_env(n->d);
        CU_ASSERT_EQUAL_FATAL(mesh_identity_generate(&n->id, &n->env), MESH_OK);
        CU_ASSERT_EQUAL_FATAL(mesh_tls_ctx_new(&n->tls, &n->env, n->id, &SEED_PROFILE), MESH_OK);
    }
}

/* Give node i a TLS context that also offers/accepts HTTP/2 ("h2" after the default). */
static void node_allow_h2(world *W, int i)
{
    static const char *const list[] = {MESH_TLS_DEFAULT_ALPN, MESH_SESSION_H2_ALPN, NULL};
    mesh_tls_cfg tc = {.profile = MESH_PROFILE_SEED, .alpn = list};
    node *n = &W->n[i];
    mesh_tls_ctx_free(n->tls);
    n->tls = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_tls_ctx_new(&n->tls, &n->env, n->id, &tc), MESH_OK);
}

static void world_free(world *W)
{
    for (int i = 0; i < MAX_NODES; i++) {
        sim_driver_free(W->n[i].d);
        mesh_tls_ctx_free(W->n[i].tls);
        mesh_identity_free(W->n[i].id);
    }
    sim_world_free(W->w);
}

static mesh_time now_of(world *W)
{
    return sim_sched_now(sim_world_sched(W->w));
}

static void run_until(world *W, mesh_time t)
{
    CU_ASSERT_EQUAL(sim_sched_run_until(sim_world_sched(W->w), t), MESH_OK);
}

static mesh_addr addr_of(world *W, int i)
{
    return mesh_addr_v4(sim_host_ip(W->n[i].h), PORT);
}

/* ---- the application on either end of a session --------------------------------------- */

static uint8_t *g_pattern; /* PATTERN_LEN bytes: message i carries pattern + (i % 256) */

typedef struct app {
    world *W;
    mesh_session *s;
    int connected, closed, reason, peer_reason;
    mesh_time connected_at, closed_at;
    uint64_t msgs, expect_id, bad, bytes;
    int echo;
    int close_on_message; /* mesh_session_close() from inside on_message (after the echo) */
    int in_use;
    /* sender side of the bulk test */
    const uint32_t *sizes;
    uint64_t to_send, sent, again;
    size_t max_queued;
} app;

static void app_pump(app *p);

static void app_connected(mesh_session *s, void *ud)
{
    app *p = ud;
    CU_ASSERT_PTR_EQUAL(s, p->s);
    p->connected++;
    p->connected_at = now_of(p->W);
    app_pump(p);
}

static void app_message(mesh_session *s, const mesh_envelope *e, void *ud)
{
    app *p = ud;
    if (e->body_case != MESHARA__WIRE__ENVELOPE__BODY_DATA) {
        p->bad++;
        return;
    }
    const Meshara__Wire__AppData *d = e->data;
    if (d->msg_id != p->expect_id ||
        (d->payload.len &&
         memcmp(d->payload.data, g_pattern + d->msg_id % 256, d->payload.len) != 0) ||
        (p->sizes && d->payload.len != p->sizes[d->msg_id]))
        p->bad++;
    p->expect_id = d->msg_id + 1;
    p->msgs++;
    p->bytes += d->payload.len;
    if (p->echo)
        CU_ASSERT_EQUAL(mesh_session_send_data(s, d->msg_id, d->payload.data, d->payload.len),
                        MESH_OK);
    if (p->close_on_message)
        CU_ASSERT_EQUAL(mesh_session_close(s), MESH_OK);
}

static void app_writable(mesh_session *s, void *ud)
{
    (void)s;
    app_pump(ud);
}

static void app_closed(mesh_session *s, int reason, void *ud)
{
    app *p = ud;
    CU_ASSERT_PTR_EQUAL(s, p->s);
    CU_ASSERT_EQUAL(p->closed, 0);
    CU_ASSERT_EQUAL(mesh_session_get_state(s), MESH_SESSION_CLOSED);
    p->closed++;
    p->reason = reason;
    p->peer_reason = mesh_session_peer_reason(s);
    p->closed_at = now_of(p->W);
}

static const mesh_session_cbs APP_CBS = {app_connected, app_message, app_writable, app_closed};

/* Send the bulk messages until done or backpressure. */
static void app_pump(app *p)
{
    while (p->sent < p->to_send) {
        size_t len = p->sizes[p->sent];
        int rc = mesh_session_send_data(p->s, p->sent, g_pattern + p->sent % 256, len);
        size_t q = mesh_session_queued(p->s);
        if (q > p->max_queued)
            p->max_queued = q;
        if (rc == MESH_ERR_AGAIN) {
            p->again++;
            return;
        }
        CU_ASSERT_EQUAL_FATAL(rc, MESH_OK);
        p->sent++;
    }
}

/* A server on B whose accepted sessions become apps (echoing). */
typedef struct srv_side {
    world *W;
    mesh_server *srv;
    app apps[MAX_APPS];
    int napps;
    int failed;
    int fail_reasons[64];
    mesh_time fail_at[64];
} srv_side;

static void srv_on_session(mesh_server *srv, mesh_session *s, void *ud)
{
    (void)srv;
    srv_side *ss = ud;
    CU_ASSERT_FATAL(ss->napps < MAX_APPS);
    app *p = &ss->apps[ss->napps++];
    memset(p, 0, sizeof *p);
    p->W = ss->W;
    p->s = s;
    p->echo = 1;
    p->in_use = 1;
    p->connected = 1;
    p->connected_at = now_of(ss->W);
    mesh_session_set_cbs(s, &APP_CBS, p);
}

static void srv_on_failed(mesh_server *srv, int reason, const mesh_addr *peer, void *ud)
{
    (void)srv, (void)peer;
    srv_side *ss = ud;
    if (ss->failed < 64) {
        ss->fail_reasons[ss->failed] = reason;
        ss->fail_at[ss->failed] = now_of(ss->W);
    }
    ss->failed++;
}

static void srv_start(srv_side *ss, world *W, const mesh_server_cfg *cfg)
{
    memset(ss, 0, sizeof *ss);
    ss->W = W;
    mesh_server_cbs cbs = {srv_on_session, srv_on_failed};
    mesh_addr la = addr_of(W, B);
    CU_ASSERT_EQUAL_FATAL(mesh_server_new(&ss->srv, &W->n[B].env, W->n[B].tls, &la, cfg, &cbs, ss),
                          MESH_OK);
}

static void srv_stop(srv_side *ss)
{
    for (int i = 0; i < ss->napps; i++)
        mesh_session_free(ss->apps[i].s);
    mesh_server_free(ss->srv);
}

static void app_connect(app *p, world *W, int from, int to, const uint8_t *pin,
                        const mesh_session_cfg *cfg)
{
    memset(p, 0, sizeof *p);
    p->W = W;
    mesh_addr ta = addr_of(W, to);
    CU_ASSERT_EQUAL_FATAL(
        mesh_session_connect(&p->s, &W->n[from].env, W->n[from].tls, &ta, pin, cfg, &APP_CBS, p),
        MESH_OK);
    CU_ASSERT_EQUAL(mesh_session_get_state(p->s), MESH_SESSION_CONNECTING);
}

/* ---- handshake in round trips ------------------------------------------------------------ */

/* TCP: SYN at 0, SYN-ACK back at 2D: the client's TCP is up and its ClientHello leaves.
 * TLS 1.3, 1 RTT: the ClientHello reaches B at 3D (with the final ACK: accept), B answers
 * ServerHello..Finished and, in frame mode, its hello right behind (0.5-RTT data), which
 * reach A at 4D. A's TLS is done: it verifies B's hello → A CONNECTED at 4D, and sends
 * Finished and its hello together. B gets them at 5D: TLS done, verifies A's → B CONNECTED
 * at 5D. So 2 RTT for the client (what TCP + TLS alone take), 2.5 RTT after the SYN for the
 * server. In HTTP/2 mode B may only answer a stream A opened: B sends its hello at 5D and A
 * is CONNECTED at 6D (3 RTT). */
static void handshake_round_trips(int http2)
{
    world W;
    world_init(&W, 1);
    if (http2)
        node_allow_h2(&W, B);
    srv_side ss;
    srv_start(&ss, &W, NULL);
    app a;
    mesh_session_cfg cfg = {.http2 = http2};
    app_connect(&a, &W, A, B, NULL, &cfg);
    run_until(&W, MS(1000));
    CU_ASSERT_EQUAL(a.connected, 1);
    CU_ASSERT_EQUAL(ss.napps, 1);
    const mesh_time client_at = (http2 ? 6 : 4) * D;
    CU_ASSERT_EQUAL(a.connected_at, client_at);
    CU_ASSERT_EQUAL(ss.apps[0].connected_at, 5 * D);
    CU_ASSERT_EQUAL(mesh_session_get_state(a.s), MESH_SESSION_CONNECTED);
    CU_ASSERT_STRING_EQUAL(mesh_session_alpn(a.s),
                           http2 ? MESH_SESSION_H2_ALPN : MESH_TLS_DEFAULT_ALPN);
    CU_ASSERT_STRING_EQUAL(mesh_session_alpn(ss.apps[0].s),
                           http2 ? MESH_SESSION_H2_ALPN : MESH_TLS_DEFAULT_ALPN);
    /* Each side proved the key it holds. */
    CU_ASSERT_EQUAL(memcmp(mesh_session_peer_key(a.s), mesh_identity_pubkey(W.n[B].id), 32), 0);
    CU_ASSERT_EQUAL(memcmp(mesh_session_peer_id(a.s), mesh_identity_node_id(W.n[B].id), 32), 0);
    CU_ASSERT_EQUAL(
        memcmp(mesh_session_peer_key(ss.apps[0].s), mesh_identity_pubkey(W.n[A].id), 32), 0);
    CU_ASSERT(mesh_session_is_client(a.s));
    CU_ASSERT(!mesh_session_is_client(ss.apps[0].s));
    mesh_session_stats st;
    mesh_session_get_stats(a.s, &st);
    CU_ASSERT_EQUAL(st.connected_at, client_at);
    CU_ASSERT_EQUAL(st.msgs_sent, 1); /* the hello */
    CU_ASSERT_EQUAL(st.msgs_received, 1);
    CU_ASSERT(st.bytes_sent > 0 && st.bytes_received > st.bytes_sent); /* the certificate */
    mesh_server_stats sst;
    mesh_server_get_stats(ss.srv, &sst);
    CU_ASSERT_EQUAL(sst.accepted, 1);
    CU_ASSERT_EQUAL(sst.connected, 1);
    CU_ASSERT_EQUAL(sst.handshaking, 0);

    /* What the application may not send, or not at this size. */
    Meshara__Wire__Heartbeat hb = MESHARA__WIRE__HEARTBEAT__INIT;
    mesh_envelope he = MESHARA__WIRE__ENVELOPE__INIT;
    he.body_case = MESHARA__WIRE__ENVELOPE__BODY_HEARTBEAT;
    he.heartbeat = &hb;
    CU_ASSERT_EQUAL(mesh_session_send(a.s, &he), MESH_ERR_INVAL);
    mesh_envelope none = MESHARA__WIRE__ENVELOPE__INIT;
    CU_ASSERT_EQUAL(mesh_session_send(a.s, &none), MESH_ERR_INVAL);
    static uint8_t too_big[(1 << 20) + 65536];
    CU_ASSERT_EQUAL(mesh_session_send_data(a.s, 0, too_big, sizeof too_big), MESH_ERR_TOO_BIG);
    CU_ASSERT_EQUAL(mesh_session_get_state(a.s), MESH_SESSION_CONNECTED); /* nothing broke */

    /* One message and its echo: one RTT. */
    mesh_time t0 = now_of(&W);
    CU_ASSERT_EQUAL(mesh_session_send_data(a.s, 0, g_pattern, 1000), MESH_OK);
    run_until(&W, t0 + 2 * D);
    CU_ASSERT_EQUAL(a.msgs, 1);
    CU_ASSERT_EQUAL(ss.apps[0].msgs, 1);
    CU_ASSERT_EQUAL(a.bad + ss.apps[0].bad, 0);

    /* Orderly close: both sides MESH_OK; on_closed never from inside the call. */
    CU_ASSERT_EQUAL(mesh_session_close(a.s), MESH_OK);
    CU_ASSERT_EQUAL(a.closed, 0);
    CU_ASSERT_EQUAL(mesh_session_get_state(a.s), MESH_SESSION_CLOSING);
    CU_ASSERT_EQUAL(mesh_session_close(a.s), MESH_ERR_STATE);
    CU_ASSERT_EQUAL(mesh_session_send_data(a.s, 1, g_pattern, 1), MESH_ERR_STATE);
    run_until(&W, now_of(&W) + MS(500));
    CU_ASSERT_EQUAL(a.closed, 1);
    CU_ASSERT_EQUAL(a.reason, MESH_OK);
    CU_ASSERT_EQUAL(a.closed_at, t0 + 2 * D);
    CU_ASSERT_EQUAL(ss.apps[0].closed, 1);
    CU_ASSERT_EQUAL(ss.apps[0].reason, MESH_OK);
    CU_ASSERT_EQUAL(ss.apps[0].closed_at, t0 + 3 * D);
    mesh_session_free(a.s);
    srv_stop(&ss);
    world_free(&W);
}

static void test_handshake_round_trips(void)
{
    handshake_round_trips(0);
}
static void test_handshake_round_trips_h2(void)
{
    handshake_round_trips(1);
}

/* A server that allows HTTP/2 still speaks 4-byte frames to a client that did not ask. */
static void test_h2_server_frame_client(void)
{
    world W;
    world_init(&W, 2);
    node_allow_h2(&W, B);
    srv_side ss;
    srv_start(&ss, &W, NULL);
    app a;
    app_connect(&a, &W, A, B, NULL, NULL);
    run_until(&W, MS(1000));
    CU_ASSERT_EQUAL_FATAL(a.connected, 1);
    CU_ASSERT_STRING_EQUAL(mesh_session_alpn(ss.apps[0].s), MESH_TLS_DEFAULT_ALPN);
    CU_ASSERT_EQUAL(mesh_session_send_data(a.s, 0, g_pattern, 70000), MESH_OK);
    run_until(&W, MS(2000));
    CU_ASSERT_EQUAL(a.msgs, 1);
    CU_ASSERT_EQUAL(a.bad, 0);
    mesh_session_free(a.s);
    srv_stop(&ss);
    world_free(&W);
}

/* A session closed from inside on_message, in either framing: what the callback sent (the
 * echo) and the Goodbye still reach the peer before close_notify and FIN. In HTTP/2 mode the
 * message is delivered from inside nghttp2, which must not be re-entered to send: the close
 * waits until it returns (this lost both before). */
static void close_inside_message(int http2)
{
    world W;
    world_init(&W, 12);
    if (http2)
        node_allow_h2(&W, B);
    srv_side ss;
    srv_start(&ss, &W, NULL);
    app a;
    mesh_session_cfg cfg = {.http2 = http2};
    app_connect(&a, &W, A, B, NULL, &cfg);
    run_until(&W, MS(1000));
    CU_ASSERT_FATAL(a.connected == 1 && ss.napps == 1);
    ss.apps[0].close_on_message = 1;
    CU_ASSERT_EQUAL(mesh_session_send_data(a.s, 0, g_pattern, 1000), MESH_OK);
    run_until(&W, MS(3000));
    CU_ASSERT_EQUAL(ss.apps[0].closed, 1);
    CU_ASSERT_EQUAL(ss.apps[0].reason, MESH_OK);
    CU_ASSERT_EQUAL(a.msgs, 1); /* the echo */
    CU_ASSERT_EQUAL(a.bad, 0);
    CU_ASSERT_EQUAL(a.closed, 1);
    CU_ASSERT_EQUAL(a.reason, MESH_OK);
    mesh_session_stats st;
    mesh_session_get_stats(a.s, &st);
    CU_ASSERT_EQUAL(st.msgs_received, 3); /* hello, echo, Goodbye */
    mesh_session_free(a.s);
    srv_stop(&ss);
    world_free(&W);
}

static void test_close_inside_message(void)
{
    close_inside_message(0);
}

static void test_close_inside_message_h2(void)
{
    close_inside_message(1);
}

/* ---- reproducible TLS bytes ----------------------------------------------------------------- */

typedef struct tap {
    EVP_MD_CTX *h[2]; /* per direction */
    uint64_t bytes[2];
} tap;

static int tap_packet(void *obj, sim_mbox *mb, sim_pkt *p, int dir, mesh_time *delay)
{
    (void)mb, (void)delay;
    tap *t = obj;
    if (p->proto == SIM_PROTO_TCP && p->len) {
        EVP_DigestUpdate(t->h[dir], p->data, p->len);
        t->bytes[dir] += p->len;
    }
    return SIM_PASS;
}

static const sim_mbox_ops TAP_OPS = {tap_packet};

/* Handshake, 20 messages each way, then 100 s of heartbeats (jittered from env randomness);
 * digests of every TCP payload byte A sent and received, and the scheduler's fingerprint. */
static void transcript(uint64_t seed, uint8_t out[2][32], uint64_t *fp)
{
    world W;
    world_init(&W, seed);
    tap t = {{EVP_MD_CTX_new(), EVP_MD_CTX_new()}, {0, 0}};
    CU_ASSERT_FATAL(EVP_DigestInit_ex(t.h[0], EVP_sha256(), NULL) == 1 &&
                    EVP_DigestInit_ex(t.h[1], EVP_sha256(), NULL) == 1);
    CU_ASSERT_EQUAL_FATAL(
        sim_net_attach_host_mbox(sim_world_net(W.w), W.n[A].h, &TAP_OPS, &t, NULL), MESH_OK);
    srv_side ss;
    srv_start(&ss, &W, NULL);
    app a;
    app_connect(&a, &W, A, B, NULL, NULL);
    run_until(&W, MS(1000));
    CU_ASSERT_FATAL(a.connected == 1);
    for (int i = 0; i < 20; i++)
        CU_ASSERT_EQUAL(mesh_session_send_data(a.s, (uint64_t)i, g_pattern + i, 100u * i), MESH_OK);
    run_until(&W, MS(101000));
    CU_ASSERT_EQUAL(ss.apps[0].msgs, 20);
    mesh_session_stats st;
    mesh_session_get_stats(a.s, &st);
    CU_ASSERT(st.heartbeats_sent >= 3);
    CU_ASSERT_EQUAL(st.heartbeat_replies, st.heartbeats_sent);
    CU_ASSERT_EQUAL(st.rtt_last, 2 * D);
    CU_ASSERT_EQUAL(st.rtt_smoothed, 2 * D);
    CU_ASSERT(t.bytes[0] > 0 && t.bytes[1] > 0);
    EVP_DigestFinal_ex(t.h[0], out[0], NULL);
    EVP_DigestFinal_ex(t.h[1], out[1], NULL);
    *fp = sim_sched_fingerprint(sim_world_sched(W.w));
    EVP_MD_CTX_free(t.h[0]);
    EVP_MD_CTX_free(t.h[1]);
    mesh_session_free(a.s);
    srv_stop(&ss);
    world_free(&W);
}

static void test_deterministic_tls_bytes(void)
{
    uint8_t r1[2][32], r2[2][32], r3[2][32];
    uint64_t f1, f2, f3;
    transcript(11, r1, &f1);
    transcript(11, r2, &f2);
    transcript(12, r3, &f3);
    CU_ASSERT_EQUAL(memcmp(r1, r2, sizeof r1), 0);
    CU_ASSERT_EQUAL(f1, f2);
    CU_ASSERT_NOT_EQUAL(memcmp(r1[0], r3[0], 32), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(r1[1], r3[1], 32), 0);
    printf("\n  seed 11: A->B %02x%02x%02x%02x.. B->A %02x%02x%02x%02x.. fingerprint %016llx"
           "\n  seed 12: A->B %02x%02x%02x%02x.. fingerprint %016llx\n",
           r1[0][0], r1[0][1], r1[0][2], r1[0][3], r1[1][0], r1[1][1], r1[1][2], r1[1][3],
           (unsigned long long)f1, r3[0][0], r3[0][1], r3[0][2], r3[0][3], (unsigned long long)f3);
}

/* ---- many messages ------------------------------------------------------------------------ */

/* Sizes log-uniform over [0, 1 MiB]: size = floor(2^(20u)) - 1 + ... with u uniform, from a
 * test-local xorshift (deterministic). The median is ~1 KiB and the mean ~75 KiB, so small
 * and large frames both get exercised while 10,000 messages stay ~0.7 GB in total. */
static uint32_t *log_uniform_sizes(size_t n, uint64_t seed)
{
    uint32_t *s = malloc(n * sizeof *s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    uint64_t x = seed;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double u = (double)(x >> 11) / (double)(1ULL << 53);
        double v = exp(u * log((double)(1 << 20) + 1.0)) - 1.0;
        s[i] = (uint32_t)v;
        if (s[i] > (1u << 20))
            s[i] = 1u << 20;
    }
    s[0] = 0; /* the extremes, always */
    s[n - 1] = 1u << 20;
    return s;
}

static void many_messages(int http2)
{
    const char *env_n = getenv("MESH_SESSION_MSGS");
    size_t n = env_n ? (size_t)strtoul(env_n, NULL, 10) : 10000;
    if (n < 2)
        n = 2;
    uint32_t *sizes = log_uniform_sizes(n, 0x5eed);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += sizes[i];
    world W;
    world_init(&W, 3);
    if (http2)
        node_allow_h2(&W, B);
    srv_side ss;
    srv_start(&ss, &W, NULL);
    mesh_session_cfg cfg = {.send_queue_max = 1 << 20, .http2 = http2};
    app a;
    app_connect(&a, &W, A, B, NULL, &cfg);
    a.sizes = sizes;
    a.to_send = n;
    /* The server's app checks sizes too (no echo: one direction is enough here). */
    mesh_time t = MS(1000);
    run_until(&W, t);
    CU_ASSERT_FATAL(ss.napps == 1);
    ss.apps[0].echo = 0;
    ss.apps[0].sizes = sizes;
    while (ss.apps[0].msgs < n && t < MS(3600 * 1000)) {
        t += MS(1000);
        run_until(&W, t);
    }
    CU_ASSERT_EQUAL(a.sent, n);
    CU_ASSERT_EQUAL(ss.apps[0].msgs, n);
    CU_ASSERT_EQUAL(ss.apps[0].bytes, total);
    CU_ASSERT_EQUAL(ss.apps[0].bad, 0);
    CU_ASSERT(a.again > 0);                                     /* backpressure happened... */
    CU_ASSERT(a.max_queued <= cfg.send_queue_max + (2u << 20)); /* ...and bounded the queue */
    CU_ASSERT_EQUAL(a.closed + ss.apps[0].closed, 0);
    mesh_session_stats st;
    mesh_session_get_stats(ss.apps[0].s, &st);
    CU_ASSERT_STRING_EQUAL(mesh_session_alpn(a.s),
                           http2 ? MESH_SESSION_H2_ALPN : MESH_TLS_DEFAULT_ALPN);
    printf("\n  %s: %zu messages, %llu payload bytes, %llu bytes on the wire, %llu AGAIN, "
           "virtual %.1f s\n",
           http2 ? "HTTP/2" : "frames", n, (unsigned long long)total,
           (unsigned long long)st.bytes_received, (unsigned long long)a.again,
           (double)now_of(&W) / 1e9);
    mesh_session_free(a.s);
    srv_stop(&ss);
    world_free(&W);
    free(sizes);
}

static void test_many_messages(void)
{
    many_messages(0);
}
static void test_many_messages_h2(void)
{
    many_messages(1);
}

/* ---- MITM relay and pinning ---------------------------------------------------------------- */

/* A middleman on C: terminates TLS with A (as a server, its own certificate) and with B (as
 * a client), and relays the plaintext — hello envelopes included — verbatim both ways. */
typedef struct mitm_side {
    struct mitm *m;
    mesh_stream *st;
    mesh_tls *tls;
    mesh_test_buf pending; /* plaintext for this side, waiting for its TLS */
    int closed;
} mitm_side;

typedef struct mitm {
    world *W;
    mesh_env env;
    mesh_listener *l;
    mitm_side a, b; /* a: towards the victim client; b: towards the real server */
    uint64_t relayed;
} mitm;

static void mitm_out(void *ud, const uint8_t *d, size_t n)
{
    mitm_side *s = ud;
    if (s->st)
        s->m->env.ops->stream_write(s->m->env.obj, s->st, d, n);
}

static void mitm_pump(mitm_side *from, mitm_side *to)
{
    if (mesh_tls_handshake(from->tls) != MESH_OK)
        return;
    if (from->pending.len && mesh_tls_is_done(from->tls)) { /* what waited for this side */
        CU_ASSERT_EQUAL(mesh_tls_write(from->tls, from->pending.b, from->pending.len), MESH_OK);
        from->pending.len = 0;
    }
    uint8_t tmp[MESH_TLS_RECORD_MAX];
    long n;
    while ((n = mesh_tls_read(from->tls, tmp, sizeof tmp)) > 0) {
        from->m->relayed += (uint64_t)n;
        if (mesh_tls_is_done(to->tls)) {
            CU_ASSERT_EQUAL(mesh_tls_write(to->tls, tmp, (size_t)n), MESH_OK);
        } else {
            mesh_test_buf_add(&to->pending, tmp, (size_t)n);
        }
    }
}

static mitm_side *other(mitm_side *s)
{
    return s == &s->m->a ? &s->m->b : &s->m->a;
}

static void mitm_connected(mesh_stream *st, void *ud)
{
    (void)st;
    mitm_side *s = ud;
    mitm_pump(s, other(s));
}

static void mitm_data(mesh_stream *st, const uint8_t *d, size_t n, void *ud)
{
    (void)st;
    mitm_side *s = ud;
    CU_ASSERT_EQUAL(mesh_tls_feed(s->tls, d, n), MESH_OK);
    mitm_pump(s, other(s));
    mitm_pump(other(s), s); /* a side that just finished flushes what waited */
}

static void mitm_closed(mesh_stream *st, int reason, void *ud)
{
    (void)st, (void)reason;
    mitm_side *s = ud;
    s->st = NULL;
    s->closed = 1;
}

static const mesh_stream_cbs MITM_CBS = {mitm_connected, mitm_data, NULL, mitm_closed};

static void mitm_accept(mesh_listener *l, mesh_stream *st, const mesh_addr *peer, void *ud)
{
    (void)l, (void)peer;
    mitm *m = ud;
    node *c = &m->W->n[C];
    m->a.m = m->b.m = m;
    m->a.st = st;
    m->env.ops->stream_set_cbs(m->env.obj, st, &MITM_CBS, &m->a);
    CU_ASSERT_EQUAL(mesh_tls_new(&m->a.tls, c->tls, 1, NULL, mitm_out, &m->a), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_new(&m->b.tls, c->tls, 0, NULL, mitm_out, &m->b), MESH_OK);
    mesh_addr to = addr_of(m->W, B);
    int err = 0;
    m->b.st = m->env.ops->connect(m->env.obj, &to, &MITM_CBS, &m->b, &err);
    CU_ASSERT_PTR_NOT_NULL(m->b.st);
}

static void test_mitm_relay_fails(void)
{
    world W;
    world_init(&W, 5);
    srv_side ss;
    srv_start(&ss, &W, NULL);
    mitm m = {.W = &W, .env = W.n[C].env};
    mesh_addr ca = addr_of(&W, C);
    int err = 0;
    m.l = m.env.ops->listen(m.env.obj, &ca, mitm_accept, &m, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m.l);
    app a; /* A believes C is the server (a hijacked address) */
    app_connect(&a, &W, A, C, NULL, NULL);
    run_until(&W, MS(5000));
    CU_ASSERT(m.relayed > 0); /* the hellos really went through */
    CU_ASSERT_EQUAL(a.connected, 0);
    CU_ASSERT_EQUAL(a.closed, 1);
    CU_ASSERT_EQUAL(a.reason, MESH_ERR_BAD_SIGNATURE);
    CU_ASSERT_EQUAL(ss.napps, 0);
    CU_ASSERT_EQUAL(ss.failed, 1);
    CU_ASSERT_EQUAL(ss.fail_reasons[0], MESH_ERR_BAD_SIGNATURE);
    m.env.ops->listener_close(m.env.obj, m.l);
    mesh_session_free(a.s);
    srv_stop(&ss);
    mesh_tls_free(m.a.tls);
    mesh_tls_free(m.b.tls);
    free(m.a.pending.b);
    free(m.b.pending.b);
    world_free(&W);
}

static void test_pinned_key(void)
{
    world W;
    world_init(&W, 6);
    srv_side ss;
    srv_start(&ss, &W, NULL);
    app good, bad;
    app_connect(&good, &W, A, B, mesh_identity_pubkey(W.n[B].id), NULL);
    app_connect(&bad, &W, C, B, mesh_identity_pubkey(W.n[A].id), NULL); /* wrong pin */
    run_until(&W, MS(2000));
    CU_ASSERT_EQUAL(good.connected, 1);
    CU_ASSERT_EQUAL(good.closed, 0);
    CU_ASSERT_EQUAL(bad.connected, 0);
    CU_ASSERT_EQUAL(bad.closed, 1);
    CU_ASSERT_EQUAL(bad.reason, MESH_ERR_KEY_MISMATCH);
    CU_ASSERT_EQUAL(bad.closed_at, 4 * D); /* decided on the server's (0.5-RTT) hello */
    CU_ASSERT_PTR_NULL(mesh_session_peer_key(bad.s));
    /* The server had accepted C (C's hello was fine) and learns why it left. */
    CU_ASSERT_EQUAL(ss.napps, 2);
    int found = 0;
    for (int i = 0; i < ss.napps; i++)
        if (ss.apps[i].closed) {
            found++;
            CU_ASSERT_EQUAL(ss.apps[i].reason, MESH_OK);
            CU_ASSERT_EQUAL(ss.apps[i].peer_reason, MESH_ERR_KEY_MISMATCH);
        }
    CU_ASSERT_EQUAL(found, 1);
    mesh_session_free(good.s);
    mesh_session_free(bad.s);
    srv_stop(&ss);
    world_free(&W);
}

/* ---- dead peer ------------------------------------------------------------------------------ */

/* After both are CONNECTED (A at 4D, B at 5D) B's host is cut off at 300 ms. Nothing arrives
 * any more; each side closes at (last byte received) + heartbeat_timeout = 75 s by default:
 * A at 4D + 75 s (B's flight and hello were its last input), B at 5D + 75 s. Heartbeats sent
 * meanwhile are lost; TCP's own give-up (8 retransmissions) would come later. */
static void test_silent_link_detected(void)
{
    world W;
    world_init(&W, 7);
    srv_side ss;
    srv_start(&ss, &W, NULL);
    app a;
    app_connect(&a, &W, A, B, NULL, NULL);
    run_until(&W, MS(300));
    CU_ASSERT_FATAL(a.connected == 1 && ss.napps == 1);
    sim_host_set_up(W.n[B].h, 0);
    const mesh_time timeout = (mesh_time)MESH_SESSION_DEFAULT_HEARTBEAT_MS * MESH_NS_PER_MS *
                              MESH_SESSION_HEARTBEAT_TIMEOUT_NUM /
                              MESH_SESSION_HEARTBEAT_TIMEOUT_DEN;
    CU_ASSERT_EQUAL(timeout, MS(75000));
    run_until(&W, MS(200000));
    CU_ASSERT_EQUAL(a.closed, 1);
    CU_ASSERT_EQUAL(a.reason, MESH_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(a.closed_at, 4 * D + timeout);
    CU_ASSERT_EQUAL(ss.apps[0].closed, 1);
    CU_ASSERT_EQUAL(ss.apps[0].reason, MESH_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(ss.apps[0].closed_at, 5 * D + timeout);
    mesh_session_stats st;
    mesh_session_get_stats(a.s, &st);
    CU_ASSERT(st.heartbeats_sent >= 2);
    CU_ASSERT_EQUAL(st.heartbeat_replies, 0);
    mesh_session_free(a.s);
    srv_stop(&ss);
    world_free(&W);
}

/* ---- bad input against a server, with a good session alongside ----------------------------- */

/* A raw client on C: a plain stream, optionally with our TLS (C's context) and a script run
 * when TLS completes; or an OpenSSL client of its own limited to TLS 1.2. */
typedef struct rawc rawc;
typedef void (*rawc_script)(rawc *r);
struct rawc {
    world *W;
    mesh_env env;
    mesh_stream *st;
    mesh_tls *tls;
    rawc_script script;
    const uint8_t *garbage;
    size_t garbage_len;
    int closed, reason, tls_rc, scripted;
    SSL_CTX *octx; /* the TLS 1.2 client */
    SSL *ossl;
    BIO *orb, *owb;
    unsigned long ossl_err;
};

static void rawc_out(void *ud, const uint8_t *d, size_t n)
{
    rawc *r = ud;
    if (r->st)
        r->env.ops->stream_write(r->env.obj, r->st, d, n);
}

static void ossl_flush(rawc *r)
{
    char tmp[4096];
    int n;
    while ((n = BIO_read(r->owb, tmp, sizeof tmp)) > 0)
        if (r->st)
            r->env.ops->stream_write(r->env.obj, r->st, tmp, (size_t)n);
}

static void ossl_step(rawc *r)
{
    ERR_clear_error();
    int ret = SSL_do_handshake(r->ossl);
    if (ret != 1 && SSL_get_error(r->ossl, ret) == SSL_ERROR_SSL)
        r->ossl_err = ERR_peek_last_error();
    ERR_clear_error();
    ossl_flush(r);
}

static void rawc_drive(rawc *r)
{
    if (r->ossl) {
        ossl_step(r);
        return;
    }
    if (!r->tls)
        return;
    r->tls_rc = mesh_tls_handshake(r->tls);
    if (r->tls_rc == MESH_OK && !r->scripted && r->script) {
        r->scripted = 1;
        r->script(r);
    }
    uint8_t tmp[MESH_TLS_RECORD_MAX];
    while (r->tls && r->tls_rc == MESH_OK && mesh_tls_read(r->tls, tmp, sizeof tmp) > 0) {
    }
}

static void rawc_connected(mesh_stream *st, void *ud)
{
    rawc *r = ud;
    if (r->garbage)
        r->env.ops->stream_write(r->env.obj, st, r->garbage, r->garbage_len);
    rawc_drive(r);
}

static void rawc_data(mesh_stream *st, const uint8_t *d, size_t n, void *ud)
{
    (void)st;
    rawc *r = ud;
    if (r->ossl)
        BIO_write(r->orb, d, (int)n);
    else if (r->tls) {
        CU_ASSERT_EQUAL(mesh_tls_feed(r->tls, d, n), MESH_OK);
    }
    rawc_drive(r);
}

static void rawc_closed(mesh_stream *st, int reason, void *ud)
{
    (void)st;
    rawc *r = ud;
    r->st = NULL;
    r->closed = 1;
    r->reason = reason;
}

static const mesh_stream_cbs RAWC_CBS = {rawc_connected, rawc_data, NULL, rawc_closed};

enum rawc_kind { RAW_PLAIN, RAW_MESH_TLS, RAW_TLS12 };

static void rawc_start(rawc *r, world *W, int from, int kind, rawc_script script)
{
    memset(r, 0, sizeof *r);
    r->W = W;
    r->env = W->n[from].env;
    r->script = script;
    r->tls_rc = MESH_ERR_AGAIN;
    if (kind == RAW_MESH_TLS)
        CU_ASSERT_EQUAL_FATAL(mesh_tls_new(&r->tls, W->n[from].tls, 0, NULL, rawc_out, r), MESH_OK);
    if (kind == RAW_TLS12) {
        r->octx = SSL_CTX_new(TLS_client_method());
        CU_ASSERT_PTR_NOT_NULL_FATAL(r->octx);
        SSL_CTX_set_max_proto_version(r->octx, TLS1_2_VERSION);
        r->ossl = SSL_new(r->octx);
        r->orb = BIO_new(BIO_s_mem());
        r->owb = BIO_new(BIO_s_mem());
        BIO_set_mem_eof_return(r->orb, -1);
        SSL_set_bio(r->ossl, r->orb, r->owb);
        SSL_set_connect_state(r->ossl);
        SSL_set_tlsext_host_name(r->ossl, MESH_TLS_DEFAULT_SNI);
    }
    mesh_addr to = addr_of(W, B);
    int err = 0;
    r->st = r->env.ops->connect(r->env.obj, &to, &RAWC_CBS, r, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->st);
}

static void rawc_free(rawc *r)
{
    if (r->st)
        r->env.ops->stream_close(r->env.obj, r->st, MESH_CLOSE_ABORT);
    mesh_tls_free(r->tls);
    SSL_free(r->ossl);
    SSL_CTX_free(r->octx);
}

/* Send our hello (optionally signing the wrong exporter value), then the extra bytes. */
static void rawc_hello(rawc *r, int corrupt)
{
    uint8_t exp[MESH_SESSION_EXPORTER_LEN], *f = NULL;
    size_t flen = 0;
    CU_ASSERT_EQUAL(mesh_tls_export(r->tls, MESH_SESSION_EXPORTER_LABEL, exp, sizeof exp), MESH_OK);
    if (corrupt)
        exp[0] ^= 1;
    CU_ASSERT_EQUAL(mesh_hello_create(mesh_tls_ctx_identity(r->W->n[C].tls),
                                      MESH_SESSION_ROLE_CLIENT, exp, NULL, &f, &flen),
                    MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_write(r->tls, f, flen), MESH_OK);
    free(f);
}

static void script_bad_signature(rawc *r)
{
    rawc_hello(r, 1);
}

static void script_oversize(rawc *r)
{
    rawc_hello(r, 0);
    static const uint8_t huge[4] = {0xff, 0xff, 0xff, 0xff};
    CU_ASSERT_EQUAL(mesh_tls_write(r->tls, huge, 4), MESH_OK);
}

static void script_truncated(rawc *r)
{
    rawc_hello(r, 0);
    uint8_t part[4 + 100] = {0, 0, 4, 0}; /* announces 1024 bytes, delivers 100 */
    CU_ASSERT_EQUAL(mesh_tls_write(r->tls, part, sizeof part), MESH_OK);
    r->env.ops->stream_close(r->env.obj, r->st, MESH_CLOSE_GRACEFUL); /* FIN, no close_notify */
    r->st = NULL;
}

static void script_malformed(rawc *r)
{
    rawc_hello(r, 0);
    /* Valid frame and padding, but the payload is not an Envelope. */
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02};
    uint8_t frame[4 + 256];
    long n = mesh_pad_encode(junk, sizeof junk, frame + 4, sizeof frame - 4);
    CU_ASSERT_EQUAL_FATAL(n, 256);
    CU_ASSERT_EQUAL(mesh_frame_header(frame, (size_t)n, MESH_FRAME_DEFAULT_MAX), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_write(r->tls, frame, sizeof frame), MESH_OK);
}

static void script_not_hello(rawc *r)
{
    Meshara__Wire__AppData d = MESHARA__WIRE__APP_DATA__INIT;
    mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
    e.body_case = MESHARA__WIRE__ENVELOPE__BODY_DATA;
    e.data = &d;
    uint8_t *f = NULL;
    size_t flen = 0;
    CU_ASSERT_EQUAL(mesh_session_frame_create(&e, 0, &f, &flen), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_write(r->tls, f, flen), MESH_OK);
    free(f);
}

/* The fixture: server on B (limit max_hs), good client A connected and echoing. */
typedef struct bad_fixture {
    world W;
    srv_side ss;
    app good;
    mesh_time t_bad; /* when the bad actor starts */
} bad_fixture;

static void fixture_start(bad_fixture *f, size_t max_hs)
{
    world_init(&f->W, 21);
    mesh_server_cfg cfg = {.max_handshakes = max_hs};
    srv_start(&f->ss, &f->W, &cfg);
    app_connect(&f->good, &f->W, A, B, mesh_identity_pubkey(f->W.n[B].id), NULL);
    f->t_bad = MS(1000);
    run_until(&f->W, f->t_bad);
    CU_ASSERT_FATAL(f->good.connected == 1 && f->ss.napps == 1);
}

/* The good session still works: a message goes out and its echo comes back in one RTT. */
static void fixture_check_and_stop(bad_fixture *f)
{
    uint64_t before = f->good.msgs;
    mesh_time t = now_of(&f->W);
    CU_ASSERT_EQUAL(
        mesh_session_send_data(f->good.s, f->good.msgs, g_pattern + f->good.msgs % 256, 4321),
        MESH_OK);
    f->good.expect_id = f->good.msgs; /* echo of the id just sent */
    f->ss.apps[0].expect_id = f->good.msgs;
    run_until(&f->W, t + 2 * D);
    CU_ASSERT_EQUAL(f->good.msgs, before + 1);
    CU_ASSERT_EQUAL(f->good.closed, 0);
    CU_ASSERT_EQUAL(f->ss.apps[0].closed, 0);
    CU_ASSERT_EQUAL(f->good.bad, 0);
    mesh_session_free(f->good.s);
    srv_stop(&f->ss);
    world_free(&f->W);
}

/* A bad client whose session fails before CONNECTED: the server reports reason. */
static void expect_failed(bad_fixture *f, int reason)
{
    CU_ASSERT_EQUAL(f->ss.failed, 1);
    CU_ASSERT_EQUAL(f->ss.fail_reasons[0], reason);
    CU_ASSERT_EQUAL(f->ss.napps, 1); /* only the good one ever connected */
}

/* A bad client that got CONNECTED and then broke the framing: its session (handed to the
 * server's owner) closes with reason. */
static void expect_closed_after_auth(bad_fixture *f, int reason)
{
    CU_ASSERT_EQUAL(f->ss.failed, 0);
    CU_ASSERT_EQUAL_FATAL(f->ss.napps, 2);
    CU_ASSERT_EQUAL(f->ss.apps[1].closed, 1);
    CU_ASSERT_EQUAL(f->ss.apps[1].reason, reason);
}

/* What a raw client saw by the end of its case. */
typedef struct rawc_seen {
    int closed, tls_rc;
    unsigned long ossl_err;
} rawc_seen;

/* One bad client from C against the fixture's server, given 1 s: the server side must end it
 * with reason — through on_failed before CONNECTED, or (after_auth) in the session handed to
 * the owner — and the good session must still work afterwards. */
static rawc_seen bad_raw_case(int kind, rawc_script script, const char *garbage, int after_auth,
                              int reason)
{
    bad_fixture f;
    fixture_start(&f, 0);
    rawc r;
    rawc_start(&r, &f.W, C, kind, script);
    if (garbage) {
        r.garbage = (const uint8_t *)garbage;
        r.garbage_len = strlen(garbage);
    }
    run_until(&f.W, f.t_bad + MS(1000));
    if (after_auth)
        expect_closed_after_auth(&f, reason);
    else
        expect_failed(&f, reason);
    rawc_seen seen = {r.closed, r.tls_rc, r.ossl_err};
    rawc_free(&r);
    fixture_check_and_stop(&f);
    return seen;
}

static void test_bad_garbage(void)
{
    rawc_seen r = bad_raw_case(RAW_PLAIN, NULL, "GET / HTTP/1.1\r\nHost: meshara.node\r\n\r\n", 0,
                               MESH_ERR_TLS);
    CU_ASSERT_EQUAL(r.closed, 1); /* the server hung up */
}

static void test_bad_tls12_client(void)
{
    rawc_seen r = bad_raw_case(RAW_TLS12, NULL, NULL, 0, MESH_ERR_VERSION);
    /* The OpenSSL client got a protocol_version alert. */
    CU_ASSERT_EQUAL(ERR_GET_REASON(r.ossl_err), SSL_AD_REASON_OFFSET + SSL_AD_PROTOCOL_VERSION);
}

static void test_bad_alpn(void)
{
    bad_fixture f;
    fixture_start(&f, 0);
    static const char *const other[] = {"other/2", NULL};
    mesh_tls_cfg tc = {.profile = MESH_PROFILE_SEED, .alpn = other};
    mesh_tls_ctx *ctx = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_tls_ctx_new(&ctx, &f.W.n[C].env, f.W.n[C].id, &tc), MESH_OK);
    app c;
    memset(&c, 0, sizeof c);
    c.W = &f.W;
    mesh_addr to = addr_of(&f.W, B);
    CU_ASSERT_EQUAL_FATAL(
        mesh_session_connect(&c.s, &f.W.n[C].env, ctx, &to, NULL, NULL, &APP_CBS, &c), MESH_OK);
    run_until(&f.W, f.t_bad + MS(1000));
    expect_failed(&f, MESH_ERR_ALPN);
    CU_ASSERT_EQUAL(c.closed, 1);
    CU_ASSERT_EQUAL(c.reason, MESH_ERR_ALPN);
    mesh_session_free(c.s);
    mesh_tls_ctx_free(ctx);
    fixture_check_and_stop(&f);
}

static void test_bad_signature(void)
{
    rawc_seen r = bad_raw_case(RAW_MESH_TLS, script_bad_signature, NULL, 0, MESH_ERR_BAD_SIGNATURE);
    CU_ASSERT_EQUAL(r.tls_rc, MESH_OK); /* TLS itself was fine */
}

static void test_bad_first_message(void)
{
    bad_raw_case(RAW_MESH_TLS, script_not_hello, NULL, 0, MESH_ERR_PROTOCOL);
}

static void test_bad_oversize_prefix(void)
{
    bad_raw_case(RAW_MESH_TLS, script_oversize, NULL, 1, MESH_ERR_TOO_BIG);
}

static void test_bad_truncated_frame(void)
{
    bad_raw_case(RAW_MESH_TLS, script_truncated, NULL, 1, MESH_ERR_TRUNCATED);
}

static void test_bad_malformed_protobuf(void)
{
    bad_raw_case(RAW_MESH_TLS, script_malformed, NULL, 1, MESH_ERR_MALFORMED);
}

/* Connects and sends nothing: accepted at t_bad + 1.5 RTT (the final ACK), closed exactly
 * the server's first-byte timeout later (tests/sim/test_server.c has the rest of it). */
static void test_bad_silent_client(void)
{
    bad_fixture f;
    fixture_start(&f, 0);
    rawc r;
    rawc_start(&r, &f.W, C, RAW_PLAIN, NULL);
    run_until(&f.W, f.t_bad + MS(20000));
    expect_failed(&f, MESH_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(f.ss.fail_at[0],
                    f.t_bad + 3 * D + MESH_SERVER_DEFAULT_FIRST_BYTE_TIMEOUT_MS * MESH_NS_PER_MS);
    CU_ASSERT_EQUAL(r.closed, 1);
    rawc_free(&r);
    fixture_check_and_stop(&f);
}

static void script_nothing(rawc *r)
{
    (void)r;
}

/* Completes TLS and never sends a hello: the server's TLS is done at t_bad + 5D (its
 * client's Finished arrives), and the auth timeout runs from there. */
static void test_bad_no_hello(void)
{
    bad_fixture f;
    fixture_start(&f, 0);
    rawc r;
    rawc_start(&r, &f.W, C, RAW_MESH_TLS, script_nothing);
    run_until(&f.W, f.t_bad + MS(20000));
    CU_ASSERT_EQUAL(r.tls_rc, MESH_OK);
    expect_failed(&f, MESH_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(f.ss.fail_at[0],
                    f.t_bad + 5 * D + MESH_SESSION_DEFAULT_AUTH_TIMEOUT_MS * MESH_NS_PER_MS);
    rawc_free(&r);
    fixture_check_and_stop(&f);
}

/* Limit 3 handshakes; 5 silent clients at once from one address: the 4th and 5th take the
 * places of the two oldest (the source is at its limit, clamped to 3, and none of them made
 * progress), which are reset (the RST reaches them one way later); the 3 left are closed at
 * the first-byte timeout; then a real client gets in. */
static void test_bad_handshake_limit(void)
{
    enum { LIMIT = 3, FLOOD = 5 };
    bad_fixture f;
    fixture_start(&f, LIMIT);
    rawc r[FLOOD];
    for (int i = 0; i < FLOOD; i++)
        rawc_start(&r[i], &f.W, C, RAW_PLAIN, NULL);
    run_until(&f.W, f.t_bad + MS(1000));
    mesh_server_stats st;
    mesh_server_get_stats(f.ss.srv, &st);
    CU_ASSERT_EQUAL(st.handshaking, LIMIT);
    CU_ASSERT_EQUAL(st.rejected, 0);
    CU_ASSERT_EQUAL(st.evicted, FLOOD - LIMIT);
    CU_ASSERT_EQUAL(st.crowded, FLOOD - LIMIT);
    for (int i = 0; i < FLOOD; i++) {
        CU_ASSERT_EQUAL(r[i].closed, i < FLOOD - LIMIT);
        if (r[i].closed)
            CU_ASSERT_EQUAL(r[i].reason, MESH_ERR_RESET);
    }
    /* While the limit is full, the established session still works. */
    uint64_t before = f.good.msgs;
    CU_ASSERT_EQUAL(
        mesh_session_send_data(f.good.s, f.good.msgs, g_pattern + f.good.msgs % 256, 10), MESH_OK);
    f.ss.apps[0].expect_id = f.good.expect_id = f.good.msgs;
    run_until(&f.W, now_of(&f.W) + 2 * D);
    CU_ASSERT_EQUAL(f.good.msgs, before + 1);
    /* After the first-byte timeout the slots free up and a real client connects. */
    run_until(&f.W, f.t_bad + MS(12000));
    mesh_server_get_stats(f.ss.srv, &st);
    CU_ASSERT_EQUAL(st.handshaking, 0);
    CU_ASSERT_EQUAL(st.failed, LIMIT);
    app late;
    app_connect(&late, &f.W, C, B, NULL, NULL);
    run_until(&f.W, now_of(&f.W) + MS(1000));
    CU_ASSERT_EQUAL(late.connected, 1);
    mesh_session_free(late.s);
    for (int i = 0; i < FLOOD; i++)
        rawc_free(&r[i]);
    fixture_check_and_stop(&f);
}

/* ---- API edges ---------------------------------------------------------------------------- */

static void free_in_connected(mesh_session *s, void *ud)
{
    (void)ud;
    mesh_session_free(s);
}

static void test_free_inside_callback_and_connect_timeout(void)
{
    world W;
    world_init(&W, 9);
    srv_side ss;
    srv_start(&ss, &W, NULL);
    /* Freed from inside on_connected: nothing else happens, no leak (ASan). */
    mesh_session *s = NULL;
    mesh_session_cbs cbs = {.on_connected = free_in_connected};
    mesh_addr to = addr_of(&W, B);
    CU_ASSERT_EQUAL_FATAL(
        mesh_session_connect(&s, &W.n[A].env, W.n[A].tls, &to, NULL, NULL, &cbs, NULL), MESH_OK);
    run_until(&W, MS(1000));
    /* Connect to a host that is down: the session's connect timeout (1 s) fires first. */
    sim_host_set_up(W.n[C].h, 0);
    app c;
    mesh_session_cfg cfg = {.connect_timeout = MS(1000)};
    app_connect(&c, &W, A, C, NULL, &cfg);
    mesh_time t0 = now_of(&W);
    run_until(&W, t0 + MS(5000));
    CU_ASSERT_EQUAL(c.closed, 1);
    CU_ASSERT_EQUAL(c.reason, MESH_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(c.closed_at, t0 + MS(1000));
    mesh_session_free(c.s);
    srv_stop(&ss);
    world_free(&W);
}

/* The hello's checks one by one, without a network (the order session.h documents). */
static void test_hello_checks(void)
{
    mesh_test_env te;
    mesh_test_env_init(&te, 99);
    mesh_identity *id = NULL, *other = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_identity_generate(&id, &te.env), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_identity_generate(&other, &te.env), MESH_OK);
    uint8_t exp[MESH_SESSION_EXPORTER_LEN], exp2[MESH_SESSION_EXPORTER_LEN], key[32];
    for (int i = 0; i < MESH_SESSION_EXPORTER_LEN; i++)
        exp[i] = exp2[i] = (uint8_t)i;
    exp2[31] ^= 0x80;
    uint8_t *f = NULL;
    size_t flen = 0;
    mesh_addr seen;
    CU_ASSERT_EQUAL_FATAL(mesh_addr_parse(&seen, "[2001:db8::7]:40123"), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_hello_create(id, MESH_SESSION_ROLE_SERVER, exp, &seen, &f, &flen),
                          MESH_OK);
    CU_ASSERT_EQUAL(flen, MESH_FRAME_HDR_LEN + 256); /* one padding bucket */
    mesh_envelope *e = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_session_frame_consume(f + 4, flen - 4, &e), MESH_OK);
    CU_ASSERT_STRING_EQUAL(e->hello->observed_address, "[2001:db8::7]:40123");
    const uint8_t *pk = mesh_identity_pubkey(id);
    CU_ASSERT_EQUAL(mesh_hello_consume(e, MESH_SESSION_ROLE_SERVER, exp, NULL, key), MESH_OK);
    CU_ASSERT_EQUAL(memcmp(key, pk, 32), 0);
    CU_ASSERT_EQUAL(mesh_hello_consume(e, MESH_SESSION_ROLE_SERVER, exp, pk, key), MESH_OK);
    /* reflected to its sender (who expects the other role) */
    CU_ASSERT_EQUAL(mesh_hello_consume(e, MESH_SESSION_ROLE_CLIENT, exp, NULL, key),
                    MESH_ERR_PROTOCOL);
    /* another TLS session */
    CU_ASSERT_EQUAL(mesh_hello_consume(e, MESH_SESSION_ROLE_SERVER, exp2, NULL, key),
                    MESH_ERR_BAD_SIGNATURE);
    /* a valid proof of the wrong key; the signature is checked before the pin */
    CU_ASSERT_EQUAL(
        mesh_hello_consume(e, MESH_SESSION_ROLE_SERVER, exp, mesh_identity_pubkey(other), key),
        MESH_ERR_KEY_MISMATCH);
    CU_ASSERT_EQUAL(
        mesh_hello_consume(e, MESH_SESSION_ROLE_SERVER, exp2, mesh_identity_pubkey(other), key),
        MESH_ERR_BAD_SIGNATURE);
    /* a key swapped in: the signature no longer matches it */
    memcpy(e->hello->public_key.data, mesh_identity_pubkey(other), 32);
    CU_ASSERT_EQUAL(mesh_hello_consume(e, MESH_SESSION_ROLE_SERVER, exp, NULL, key),
                    MESH_ERR_BAD_SIGNATURE);
    e->hello->protocol_version = 2;
    CU_ASSERT_EQUAL(mesh_hello_consume(e, MESH_SESSION_ROLE_SERVER, exp, NULL, key),
                    MESH_ERR_VERSION);
    mesh_wire_free(e);
    free(f);
    /* not a hello at all */
    Meshara__Wire__Goodbye g = MESHARA__WIRE__GOODBYE__INIT;
    mesh_envelope ge = MESHARA__WIRE__ENVELOPE__INIT;
    ge.body_case = MESHARA__WIRE__ENVELOPE__BODY_GOODBYE;
    ge.goodbye = &g;
    CU_ASSERT_EQUAL(mesh_hello_consume(&ge, MESH_SESSION_ROLE_SERVER, exp, NULL, key),
                    MESH_ERR_PROTOCOL);
    /* frames above the maximum are refused by the builder */
    Meshara__Wire__AppData d = MESHARA__WIRE__APP_DATA__INIT;
    d.payload.data = g_pattern;
    d.payload.len = 1 << 20;
    mesh_envelope de = MESHARA__WIRE__ENVELOPE__INIT;
    de.body_case = MESHARA__WIRE__ENVELOPE__BODY_DATA;
    de.data = &d;
    CU_ASSERT_EQUAL(mesh_session_frame_create(&de, 0, &f, &flen), MESH_OK);
    free(f);
    CU_ASSERT_EQUAL(mesh_session_frame_create(&de, 1 << 20, &f, &flen), MESH_ERR_TOO_BIG);
    mesh_identity_free(id);
    mesh_identity_free(other);
}

static int suite_init(void)
{
    g_pattern = malloc(PATTERN_LEN);
    if (!g_pattern)
        return -1;
    uint64_t x = 0x1234567;
    for (size_t i = 0; i < PATTERN_LEN; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        g_pattern[i] = (uint8_t)(x >> 32);
    }
    return 0;
}

static int suite_clean(void)
{
    free(g_pattern);
    return 0;
}

static CU_TestInfo tests[] = {
    {"hello checks: role, exporter, pin, key swap, version", test_hello_checks},
    {"TLS + auth in 2 RTT (A) / 2.5 RTT (B), exact virtual times", test_handshake_round_trips},
    {"HTTP/2 mode: 3 RTT (A) / 2.5 RTT (B)", test_handshake_round_trips_h2},
    {"HTTP/2-capable server, frame client", test_h2_server_frame_client},
    {"close inside on_message: echo and Goodbye still go out", test_close_inside_message},
    {"same over HTTP/2 (close waits for nghttp2 to return)", test_close_inside_message_h2},
    {"same seed: byte-identical TLS; other seed differs", test_deterministic_tls_bytes},
    {"many messages, log-uniform 0..1 MiB, intact and in order", test_many_messages},
    {"many messages over HTTP/2", test_many_messages_h2},
    {"MITM relaying hellos: BAD_SIGNATURE on both sides", test_mitm_relay_fails},
    {"pinned key mismatch: KEY_MISMATCH", test_pinned_key},
    {"silent link: heartbeat timeout at the predicted time", test_silent_link_detected},
    {"bad input: non-TLS garbage", test_bad_garbage},
    {"bad input: TLS 1.2-only client", test_bad_tls12_client},
    {"bad input: wrong ALPN", test_bad_alpn},
    {"bad input: bad hello signature", test_bad_signature},
    {"bad input: first message not a hello", test_bad_first_message},
    {"bad input: oversize length prefix", test_bad_oversize_prefix},
    {"bad input: truncated frame then FIN", test_bad_truncated_frame},
    {"bad input: malformed protobuf", test_bad_malformed_protobuf},
    {"bad input: silent client closed at the first-byte timeout", test_bad_silent_client},
    {"bad input: TLS but no hello, closed at the auth timeout", test_bad_no_hello},
    {"bad input: more handshakes than the limit", test_bad_handshake_limit},
    {"free inside a callback; connect timeout", test_free_inside_callback_and_connect_timeout},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"session", suite_init, suite_clean, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
