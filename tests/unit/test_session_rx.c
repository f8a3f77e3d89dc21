/* test_session_rx.c — a session's receive path against protobuf-c, byte for byte.
 *
 * The session reads frames in place (frame.h, pull mode) and views AppData envelopes without
 * protobuf-c (appdata.h, mesh_appdata_view). Whatever it hands to on_message, and whatever it
 * refuses, must be exactly what mesh_wire_decode makes of the same bytes; and whatever
 * mesh_appdata_view accepts on its own must be what protobuf-c decodes (the differential test
 * proper is tests/unit/test_appdata.c; here every envelope also goes through the view
 * directly, and through a session). A server session runs on a hand-driven env (one fake
 * stream, timers that never fire); a raw client (mesh_tls plus our hello) writes frames
 * through TLS: canonical AppData of many sizes, non-canonical encodings (field order,
 * repeats, overlong varints, unknown fields, other versions) and seeded random mutations,
 * delivered whole, in pieces and batched. Also: a peer that closes in order before it has
 * authenticated (close_notify, HTTP/2 GOAWAY without error) ends the session with
 * MESH_ERR_CLOSED, not MESH_OK — a server's on_failed must not read it as success. */
#include <stdlib.h>
#include <string.h>

#include "core/appdata.h"
#include "core/frame.h"
#include "core/identity.h"
#include "core/pad.h"
#include "core/session.h"
#include "core/tls.h"
#include "core/wire.h"
#include "mesh_test.h"

enum { MAX_MSGS = 64, BIG = 300000 };

typedef mesh_test_buf bytes;

/* The server side's env: a test env for clock/rng/log plus one fake stream and dummy timers. */
typedef struct harness {
    mesh_test_env te;
    mesh_env_ops ops;
    mesh_env env;
    mesh_stream_cbs scbs;
    void *sud;
    int stream_closed;
    bytes to_client, to_server;
    mesh_identity *id_s, *id_c;
    mesh_tls_ctx *ctx_s, *ctx_c;
    mesh_session *srv;
    mesh_tls *cli;
    int connected, closed;
    bytes msgs[MAX_MSGS]; /* on_message envelopes, re-encoded */
    size_t nmsgs;
} harness;

static struct fake {
    int unused;
} g_stream, g_timer;

static mesh_time h_now(void *o)
{
    harness *h = o;
    return h->te.env.ops->now(h->te.env.obj);
}
static void h_random(void *o, uint8_t *b, size_t n)
{
    harness *h = o;
    h->te.env.ops->random(h->te.env.obj, b, n);
}
static void h_log(void *o, int level, const char *msg)
{
    harness *h = o;
    h->te.env.ops->log(h->te.env.obj, level, msg);
}
static mesh_timer *h_timer_new(void *o, mesh_timer_cb cb, void *ud)
{
    (void)o, (void)cb, (void)ud;
    return (mesh_timer *)(void *)&g_timer;
}
static void h_timer_set(void *o, mesh_timer *t, mesh_time when)
{
    (void)o, (void)t, (void)when;
}
static void h_timer_stop(void *o, mesh_timer *t)
{
    (void)o, (void)t;
}
static void h_set_cbs(void *o, mesh_stream *s, const mesh_stream_cbs *cbs, void *ud)
{
    (void)s;
    harness *h = o;
    h->scbs = *cbs;
    h->sud = ud;
}
static int h_write(void *o, mesh_stream *s, const void *d, size_t n)
{
    (void)s;
    harness *h = o;
    if (h->stream_closed)
        return MESH_ERR_CLOSED;
    mesh_test_buf_add(&h->to_client, d, n);
    return MESH_OK;
}
static size_t h_pending(void *o, mesh_stream *s)
{
    (void)o, (void)s;
    return 0;
}
static int h_addrs(void *o, mesh_stream *s, mesh_addr *l, mesh_addr *r)
{
    (void)o, (void)s;
    if (l)
        memset(l, 0, sizeof *l);
    if (r)
        memset(r, 0, sizeof *r);
    return MESH_OK;
}
static void h_close(void *o, mesh_stream *s, int how)
{
    (void)s, (void)how;
    ((harness *)o)->stream_closed = 1;
}

static void cli_out(void *ud, const uint8_t *d, size_t n)
{
    mesh_test_buf_add(&((harness *)ud)->to_server, d, n);
}

static void srv_connected(mesh_session *s, void *ud)
{
    (void)s;
    ((harness *)ud)->connected = 1;
}
static void srv_message(mesh_session *s, const mesh_envelope *e, void *ud)
{
    (void)s;
    harness *h = ud;
    CU_ASSERT_FATAL(h->nmsgs < MAX_MSGS);
    uint8_t *w = NULL;
    size_t wlen = 0;
    CU_ASSERT_EQUAL_FATAL(mesh_wire_encode(e, &w, &wlen), MESH_OK);
    bytes *b = &h->msgs[h->nmsgs++];
    b->len = 0;
    mesh_test_buf_add(b, w, wlen);
    free(w);
}
static void srv_closed(mesh_session *s, int reason, void *ud)
{
    (void)s, (void)reason;
    ((harness *)ud)->closed = 1;
}

/* Move bytes both ways until neither side has anything more to say. The server's input may
 * be cut into pieces of at most `piece` bytes (0: as written). */
static void pump(harness *h, size_t piece)
{
    uint8_t tmp[MESH_TLS_RECORD_MAX];
    while (h->to_server.len || h->to_client.len) {
        if (h->to_server.len) {
            bytes in = h->to_server;
            h->to_server = (bytes){0};
            for (size_t off = 0; off < in.len && !h->stream_closed;) {
                size_t n = piece && in.len - off > piece ? piece : in.len - off;
                h->scbs.on_data((mesh_stream *)(void *)&g_stream, in.b + off, n, h->sud);
                off += n;
            }
            free(in.b);
        }
        if (h->to_client.len) {
            CU_ASSERT_EQUAL(mesh_tls_feed(h->cli, h->to_client.b, h->to_client.len), MESH_OK);
            h->to_client.len = 0;
            if (mesh_tls_handshake(h->cli) == MESH_OK)
                while (mesh_tls_read(h->cli, tmp, sizeof tmp) > 0) {
                }
        }
    }
}

/* TLS between a server session and a raw client (offering only "h2" if h2); with hello, the
 * client's hello too, so the session is CONNECTED. */
static void harness_tls(harness *h, int h2, int hello)
{
    static const uint8_t seed_s[MESH_SEED_LEN] = {1}, seed_c[MESH_SEED_LEN] = {2};
    static const char *const srv_alpn[] = {MESH_TLS_DEFAULT_ALPN, MESH_SESSION_H2_ALPN, NULL};
    static const char *const h2_only[] = {MESH_SESSION_H2_ALPN, NULL};
    memset(h, 0, sizeof *h);
    mesh_test_env_init(&h->te, 7);
    h->ops = (mesh_env_ops){.now = h_now,
                            .random = h_random,
                            .log = h_log,
                            .timer_new = h_timer_new,
                            .timer_set = h_timer_set,
                            .timer_stop = h_timer_stop,
                            .timer_free = h_timer_stop,
                            .stream_set_cbs = h_set_cbs,
                            .stream_write = h_write,
                            .stream_pending = h_pending,
                            .stream_addrs = h_addrs,
                            .stream_close = h_close};
    h->env = (mesh_env){.ops = &h->ops, .obj = h};
    CU_ASSERT_EQUAL_FATAL(mesh_identity_from_seed(&h->id_s, seed_s), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_identity_from_seed(&h->id_c, seed_c), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(
        mesh_tls_ctx_new(&h->ctx_s, &h->env, h->id_s, &(mesh_tls_cfg){.alpn = srv_alpn}), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_tls_ctx_new(&h->ctx_c, &h->env, h->id_c, NULL), MESH_OK);
    static const mesh_session_cbs cbs = {
        .on_connected = srv_connected, .on_message = srv_message, .on_closed = srv_closed};
    CU_ASSERT_EQUAL_FATAL(mesh_session_accept(&h->srv, &h->env, h->ctx_s,
                                              (mesh_stream *)(void *)&g_stream, NULL, &cbs, h),
                          MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_tls_new(&h->cli, h->ctx_c, 0, h2 ? h2_only : NULL, cli_out, h),
                          MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_handshake(h->cli), MESH_ERR_AGAIN);
    pump(h, 0);
    CU_ASSERT_EQUAL_FATAL(mesh_tls_is_done(h->cli), 1);
    CU_ASSERT_EQUAL_FATAL(mesh_session_get_state(h->srv), MESH_SESSION_AUTHENTICATING);
    if (!hello)
        return;
    uint8_t exp[MESH_SESSION_EXPORTER_LEN], *f = NULL;
    size_t flen = 0;
    CU_ASSERT_EQUAL_FATAL(mesh_tls_export(h->cli, MESH_SESSION_EXPORTER_LABEL, exp, sizeof exp),
                          MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_hello_create(h->id_c, MESH_SESSION_ROLE_CLIENT, exp, &f, &flen),
                          MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_tls_write(h->cli, f, flen), MESH_OK);
    free(f);
    pump(h, 0);
    CU_ASSERT_EQUAL_FATAL(h->connected, 1);
}

static void harness_start(harness *h)
{
    harness_tls(h, 0, 1);
}

static void harness_stop(harness *h)
{
    mesh_session_free(h->srv);
    mesh_tls_free(h->cli);
    mesh_tls_ctx_free(h->ctx_s);
    mesh_tls_ctx_free(h->ctx_c);
    mesh_identity_free(h->id_s);
    mesh_identity_free(h->id_c);
    free(h->to_client.b);
    free(h->to_server.b);
    for (size_t i = 0; i < MAX_MSGS; i++)
        free(h->msgs[i].b);
}

/* Envelope bytes → one frame (prefix + padded block), appended to out. */
static void frame_of(const uint8_t *env, size_t len, bytes *out)
{
    size_t padded = mesh_pad_size(len);
    CU_ASSERT_FATAL(padded > 0);
    uint8_t *f = malloc(MESH_FRAME_HDR_LEN + padded);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL_FATAL(mesh_pad_encode(env, len, f + MESH_FRAME_HDR_LEN, padded), (long)padded);
    CU_ASSERT_EQUAL_FATAL(mesh_frame_header(f, padded, MESH_FRAME_ABS_MAX), MESH_OK);
    mesh_test_buf_add(out, f, MESH_FRAME_HDR_LEN + padded);
    free(f);
}

/* What mesh_wire_decode makes of env: MESH_OK and its re-encoding, or its error. */
static int reference(const uint8_t *env, size_t len, bytes *enc, int *body)
{
    mesh_envelope *e = NULL;
    int rc = mesh_wire_decode(env, len, &e);
    if (rc != MESH_OK)
        return rc;
    *body = (int)e->body_case;
    uint8_t *w = NULL;
    size_t wlen = 0;
    CU_ASSERT_EQUAL_FATAL(mesh_wire_encode(e, &w, &wlen), MESH_OK);
    enc->len = 0;
    mesh_test_buf_add(enc, w, wlen);
    free(w);
    mesh_wire_free(e);
    return MESH_OK;
}

static unsigned g_viewed; /* envelopes mesh_appdata_view took */

/* mesh_appdata_view on env directly: if it accepts, the reference decoded it as AppData and
 * the view's envelope re-encodes to the same bytes. */
static void check_view(const uint8_t *env, size_t len, int rc, int body, const bytes *ref)
{
    mesh_envelope v;
    Meshara__Wire__AppData d;
    if (!mesh_appdata_view(env, len, &v, &d))
        return;
    g_viewed++;
    CU_ASSERT_EQUAL_FATAL(rc, MESH_OK);
    CU_ASSERT_EQUAL(body, MESHARA__WIRE__ENVELOPE__BODY_DATA);
    uint8_t *w = NULL;
    size_t wlen = 0;
    CU_ASSERT_EQUAL_FATAL(mesh_wire_encode(&v, &w, &wlen), MESH_OK);
    CU_ASSERT(wlen == ref->len && memcmp(w, ref->b, wlen) == 0);
    free(w);
}

/* Send one envelope's bytes to a connected session (TLS writes of at most `chunk` bytes,
 * server input in pieces of `piece`) and check the outcome against the reference. Returns 1
 * when the session is still usable. */
static int check_one(harness *h, const uint8_t *env, size_t len, size_t chunk, size_t piece)
{
    bytes ref = {0}, frame = {0};
    int body = 0;
    int rc = reference(env, len, &ref, &body);
    check_view(env, len, rc, body, &ref);
    frame_of(env, len, &frame);
    size_t before = h->nmsgs;
    for (size_t off = 0; off < frame.len;) {
        size_t n = chunk && frame.len - off > chunk ? chunk : frame.len - off;
        CU_ASSERT_EQUAL_FATAL(mesh_tls_write(h->cli, frame.b + off, n), MESH_OK);
        off += n;
    }
    pump(h, piece);
    int usable = 1;
    if (rc != MESH_OK) {
        CU_ASSERT_EQUAL(mesh_session_get_state(h->srv), MESH_SESSION_CLOSING);
        CU_ASSERT_EQUAL(mesh_session_reason(h->srv), rc);
        CU_ASSERT_EQUAL(h->nmsgs, before);
        usable = 0;
    } else if (body == MESHARA__WIRE__ENVELOPE__BODY_DATA) {
        CU_ASSERT_EQUAL_FATAL(h->nmsgs, before + 1);
        CU_ASSERT_EQUAL(h->msgs[before].len, ref.len);
        CU_ASSERT(memcmp(h->msgs[before].b, ref.b, ref.len) == 0);
        h->nmsgs = 0;
    } else {
        usable = 0; /* hello, goodbye, heartbeat...: the session's own business */
    }
    free(ref.b);
    free(frame.b);
    return usable && mesh_session_get_state(h->srv) == MESH_SESSION_CONNECTED;
}

/* Protobuf pieces for hand-made envelopes. */
static void put_varint(bytes *b, uint64_t v, int extra) /* extra: overlong by this many bytes */
{
    uint8_t t[16];
    size_t n = 0;
    do {
        t[n++] = (uint8_t)(v & 0x7f) | 0x80;
        v >>= 7;
    } while (v);
    for (int i = 0; i < extra; i++)
        t[n++] = 0x80;
    t[n - 1] &= 0x7f;
    if (extra)
        t[n - 1] = 0; /* the last of the overlong bytes */
    mesh_test_buf_add(b, t, n);
}
static void put_byte(bytes *b, uint8_t x)
{
    mesh_test_buf_add(b, &x, 1);
}

enum { T_VERSION = 0x08, T_DATA = 14 << 3 | 2, T_MSG = 0x08, T_PAY = 0x12, T_ACK = 0x18 };

/* Envelope{version, data = inner} with the data length written overlong by `extra`. */
static void wrap(bytes *out, uint64_t version, const bytes *inner, int extra)
{
    out->len = 0;
    put_byte(out, T_VERSION);
    put_varint(out, version, 0);
    put_byte(out, T_DATA);
    put_varint(out, inner->len, extra);
    mesh_test_buf_add(out, inner->b, inner->len);
}

static uint8_t *g_payload; /* BIG bytes of a pattern */

static void canonical(bytes *out, uint64_t id, size_t plen, int ack)
{
    Meshara__Wire__AppData d = MESHARA__WIRE__APP_DATA__INIT;
    d.msg_id = id;
    d.payload.data = g_payload;
    d.payload.len = plen;
    d.ack_requested = ack;
    mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
    e.body_case = MESHARA__WIRE__ENVELOPE__BODY_DATA;
    e.data = &d;
    uint8_t *w = NULL;
    size_t wlen = 0;
    CU_ASSERT_EQUAL_FATAL(mesh_wire_encode(&e, &w, &wlen), MESH_OK);
    out->len = 0;
    mesh_test_buf_add(out, w, wlen);
    free(w);
}

static int suite_init(void)
{
    g_payload = malloc(BIG);
    if (!g_payload)
        return 1;
    for (size_t i = 0; i < BIG; i++)
        g_payload[i] = (uint8_t)(i * 131 + 7);
    return 0;
}
static int suite_clean(void)
{
    free(g_payload);
    return 0;
}

/* Canonical AppData of many sizes and ids on one session: whole, as 1000-byte TLS writes
 * read in 777-byte pieces, and with ack_requested. */
static void test_canonical_sizes(void)
{
    static const size_t sizes[] = {0, 1, 100, 243, 244, 16000, 16372, 16373, 16384, 70000, BIG};
    static const uint64_t ids[] = {0,          1,         127, 128, 1ULL << 62, (1ULL << 63) - 1,
                                   1ULL << 63, UINT64_MAX};
    harness h;
    harness_start(&h);
    bytes env = {0};
    size_t k = 0;
    unsigned viewed = g_viewed;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (int mode = 0; mode < 3; mode++, k++) {
            canonical(&env, ids[k % 8], sizes[i], mode == 2);
            CU_ASSERT_FATAL(
                check_one(&h, env.b, env.len, mode == 1 ? 1000 : 0, mode == 1 ? 777 : 0));
        }
    CU_ASSERT(g_viewed - viewed >= 20); /* the fast path ran (ids >= 2^63 are left to protobuf-c) */
    free(env.b);
    harness_stop(&h);
}

/* Several frames in one TLS write (read as a batch), then one split over many records. */
static void test_batched_frames(void)
{
    harness h;
    harness_start(&h);
    bytes env = {0}, frames = {0};
    for (int i = 0; i < 20; i++) {
        canonical(&env, (uint64_t)i, (size_t)i * 37, 0);
        frame_of(env.b, env.len, &frames);
    }
    canonical(&env, 99, 50000, 1);
    frame_of(env.b, env.len, &frames);
    CU_ASSERT_EQUAL(mesh_tls_write(h.cli, frames.b, frames.len), MESH_OK);
    pump(&h, 5000);
    CU_ASSERT_EQUAL_FATAL(h.nmsgs, 21);
    for (int i = 0; i < 21; i++) {
        bytes ref = {0};
        int body = 0;
        if (i < 20)
            canonical(&env, (uint64_t)i, (size_t)i * 37, 0);
        else
            canonical(&env, 99, 50000, 1);
        CU_ASSERT_EQUAL(reference(env.b, env.len, &ref, &body), MESH_OK);
        CU_ASSERT(h.msgs[i].len == ref.len && memcmp(h.msgs[i].b, ref.b, ref.len) == 0);
        free(ref.b);
    }
    CU_ASSERT_EQUAL(mesh_session_get_state(h.srv), MESH_SESSION_CONNECTED);
    free(env.b);
    free(frames.b);
    harness_stop(&h);
}

/* Hand-made encodings protobuf-c accepts or refuses in its own way. */
static void test_noncanonical(void)
{
    bytes in = {0}, env = {0};
    harness h;
    harness_start(&h);
    for (int c = 0;; c++) {
        in.len = 0;
        uint64_t version = 1;
        int extra = 0;
        switch (c) {
        case 0: /* payload before msg_id */
            put_byte(&in, T_PAY), put_varint(&in, 3, 0), mesh_test_buf_add(&in, g_payload, 3);
            put_byte(&in, T_MSG), put_varint(&in, 5, 0);
            break;
        case 1: /* msg_id twice: the last wins */
            put_byte(&in, T_MSG), put_varint(&in, 5, 0), put_byte(&in, T_MSG);
            put_varint(&in, 6, 0);
            break;
        case 2: /* payload twice */
            for (int i = 0; i < 2; i++)
                put_byte(&in, T_PAY), put_varint(&in, 4, 0),
                    mesh_test_buf_add(&in, g_payload + i, 4);
            break;
        case 3: /* overlong varints */
            put_byte(&in, T_MSG), put_varint(&in, 5, 3);
            put_byte(&in, T_PAY), put_varint(&in, 10, 2), mesh_test_buf_add(&in, g_payload, 10);
            break;
        case 4: /* overlong data length */
            put_byte(&in, T_MSG), put_varint(&in, 5, 0);
            extra = 2;
            break;
        case 5: /* unknown field 9 in AppData */
            put_byte(&in, T_MSG), put_varint(&in, 5, 0), put_byte(&in, 9 << 3);
            put_varint(&in, 1, 0);
            break;
        case 6: /* ack_requested = 2, and as a 2-byte varint */
            put_byte(&in, T_ACK), put_varint(&in, 2, 0), put_byte(&in, T_ACK);
            put_varint(&in, 1, 1);
            break;
        case 7: /* ack before payload */
            put_byte(&in, T_ACK), put_varint(&in, 1, 0);
            put_byte(&in, T_PAY), put_varint(&in, 2, 0), mesh_test_buf_add(&in, g_payload, 2);
            break;
        case 8: /* version 2 (refused: MESH_ERR_VERSION) */
            put_byte(&in, T_MSG), put_varint(&in, 5, 0);
            version = 2;
            break;
        case 9: /* payload length beyond the message (malformed) */
            put_byte(&in, T_PAY), put_varint(&in, 50, 0), mesh_test_buf_add(&in, g_payload, 10);
            break;
        case 10: /* a 10-byte msg_id */
            put_byte(&in, T_MSG), put_varint(&in, UINT64_MAX, 0);
            break;
        case 11: /* version 1 spelt overlong, payload explicitly empty */
            put_byte(&in, T_PAY), put_varint(&in, 0, 0);
            version = 1;
            extra = 1;
            break;
        default:
            goto done;
        }
        wrap(&env, version, &in, extra);
        if (c == 11) { /* rewrite the version as 0x81 0x00 */
            bytes v = {0};
            put_byte(&v, T_VERSION), put_varint(&v, 1, 1);
            mesh_test_buf_add(&v, env.b + 2, env.len - 2);
            free(env.b);
            env = v;
        }
        if (!check_one(&h, env.b, env.len, 0, 0)) {
            harness_stop(&h);
            harness_start(&h);
        }
    }
done:
    /* an Envelope whose data field comes twice (protobuf-c merges them) */
    in.len = 0;
    put_byte(&in, T_MSG), put_varint(&in, 5, 0);
    wrap(&env, 1, &in, 0);
    bytes twice = {0};
    mesh_test_buf_add(&twice, env.b, env.len);
    in.len = 0;
    put_byte(&in, T_PAY), put_varint(&in, 2, 0), mesh_test_buf_add(&in, g_payload, 2);
    put_byte(&twice, T_DATA), put_varint(&twice, in.len, 0),
        mesh_test_buf_add(&twice, in.b, in.len);
    (void)check_one(&h, twice.b, twice.len, 0, 0);
    free(twice.b);
    free(in.b);
    free(env.b);
    harness_stop(&h);
}

/* Seeded random mutations of canonical AppData: every outcome as protobuf-c decides. */
static void test_random_mutations(void)
{
    uint64_t x = 0x243f6a8885a308d3ULL;
    harness h;
    harness_start(&h);
    bytes env = {0};
    for (int i = 0; i < 400; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        canonical(&env, x % 3 ? x >> 40 : 0, (size_t)(x % 61), (int)(x >> 5) & 1);
        int flips = 1 + (int)(x >> 9) % 3;
        for (int j = 0; j < flips; j++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            env.b[x % env.len] ^= (uint8_t)(1u << (x >> 8) % 8);
        }
        if (!check_one(&h, env.b, env.len, 0, 0)) {
            harness_stop(&h);
            harness_start(&h);
        }
    }
    free(env.b);
    harness_stop(&h);
}

/* Orderly closes by a peer that never sent its hello: the session fails with
 * MESH_ERR_CLOSED (before, close_notify and GOAWAY reported MESH_OK). */
static void test_closed_before_auth(void)
{
    harness h;
    harness_tls(&h, 0, 0); /* close_notify */
    CU_ASSERT_EQUAL(mesh_tls_close(h.cli), MESH_OK);
    pump(&h, 0);
    CU_ASSERT_EQUAL(mesh_session_get_state(h.srv), MESH_SESSION_CLOSING);
    CU_ASSERT_EQUAL(mesh_session_reason(h.srv), MESH_ERR_CLOSED);
    harness_stop(&h);

    harness_tls(&h, 0, 0); /* FIN alone */
    h.scbs.on_closed((mesh_stream *)(void *)&g_stream, MESH_OK, h.sud);
    CU_ASSERT_EQUAL(mesh_session_reason(h.srv), MESH_ERR_CLOSED);
    harness_stop(&h);

    harness_tls(&h, 1, 0); /* HTTP/2: preface, empty SETTINGS, GOAWAY(NO_ERROR) */
    CU_ASSERT_STRING_EQUAL(mesh_session_alpn(h.srv), MESH_SESSION_H2_ALPN);
    static const uint8_t goaway[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                    "\0\0\0\4\0\0\0\0\0"
                                    "\0\0\x08\x07\0\0\0\0\0\0\0\0\0\0\0\0\0";
    CU_ASSERT_EQUAL(mesh_tls_write(h.cli, goaway, sizeof goaway - 1), MESH_OK);
    pump(&h, 0);
    CU_ASSERT_EQUAL(mesh_session_get_state(h.srv), MESH_SESSION_CLOSING);
    CU_ASSERT_EQUAL(mesh_session_reason(h.srv), MESH_ERR_CLOSED);
    harness_stop(&h);

    harness_start(&h); /* after authentication the same close is orderly */
    CU_ASSERT_EQUAL(mesh_tls_close(h.cli), MESH_OK);
    pump(&h, 0);
    CU_ASSERT_EQUAL(mesh_session_get_state(h.srv), MESH_SESSION_CLOSING);
    CU_ASSERT_EQUAL(mesh_session_reason(h.srv), MESH_OK);
    harness_stop(&h);
}

static CU_TestInfo tests[] = {
    {"canonical AppData of many sizes, whole and in pieces", test_canonical_sizes},
    {"frames batched in one write and split over records", test_batched_frames},
    {"non-canonical encodings decoded as protobuf-c does", test_noncanonical},
    {"random mutations: the same outcome as protobuf-c", test_random_mutations},
    {"an orderly close before authentication is MESH_ERR_CLOSED", test_closed_before_auth},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"session receive path", suite_init, suite_clean, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
