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
#include "session_pair.h"
#include "wire_cases.h"

enum { BIG = MESH_WIRE_PATTERN_LEN };

typedef mesh_test_buf bytes;

/* A server session on a hand-driven env facing a raw TLS client (session_pair.h). */
typedef mesh_pair harness;

/* TLS between a server session and a raw client (offering only "h2" if h2); with hello, the
 * client's hello too, so the session is CONNECTED. */
static void harness_tls(harness *h, int h2, int hello)
{
    CU_ASSERT_EQUAL_FATAL(mesh_pair_start(h, h2, hello), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_session_get_state(h->srv),
                          hello ? MESH_SESSION_CONNECTED : MESH_SESSION_AUTHENTICATING);
}

static void harness_start(harness *h)
{
    harness_tls(h, 0, 1);
}

static void harness_stop(harness *h)
{
    mesh_pair_stop(h);
}

static void pump(harness *h, size_t piece)
{
    mesh_pair_pump(h, piece);
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
            mesh_wire_canonical(&env, ids[k % 8], sizes[i], mode == 2);
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
        mesh_wire_canonical(&env, (uint64_t)i, (size_t)i * 37, 0);
        frame_of(env.b, env.len, &frames);
    }
    mesh_wire_canonical(&env, 99, 50000, 1);
    frame_of(env.b, env.len, &frames);
    CU_ASSERT_EQUAL(mesh_tls_write(h.cli, frames.b, frames.len), MESH_OK);
    pump(&h, 5000);
    CU_ASSERT_EQUAL_FATAL(h.nmsgs, 21);
    for (int i = 0; i < 21; i++) {
        bytes ref = {0};
        int body = 0;
        if (i < 20)
            mesh_wire_canonical(&env, (uint64_t)i, (size_t)i * 37, 0);
        else
            mesh_wire_canonical(&env, 99, 50000, 1);
        CU_ASSERT_EQUAL(reference(env.b, env.len, &ref, &body), MESH_OK);
        CU_ASSERT(h.msgs[i].len == ref.len && memcmp(h.msgs[i].b, ref.b, ref.len) == 0);
        free(ref.b);
    }
    CU_ASSERT_EQUAL(mesh_session_get_state(h.srv), MESH_SESSION_CONNECTED);
    free(env.b);
    free(frames.b);
    harness_stop(&h);
}

/* Hand-made encodings protobuf-c accepts or refuses in its own way (wire_cases.h). */
static void test_noncanonical(void)
{
    bytes env = {0};
    harness h;
    harness_start(&h);
    for (int c = 0; mesh_wire_case(c, mesh_wire_pattern(), &env, NULL) >= 0; c++) {
        if (!check_one(&h, env.b, env.len, 0, 0)) {
            harness_stop(&h);
            harness_start(&h);
        }
    }
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
        mesh_wire_canonical(&env, x % 3 ? x >> 40 : 0, (size_t)(x % 61), (int)(x >> 5) & 1);
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
    h.scbs.on_closed(h.stream, MESH_OK, h.sud);
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

/* mesh_pair_renew (mesh_session_accept_clone underneath) gives what reconnect gives without
 * its handshake: the same exporter, so the same client hello verifies; a session that
 * authenticates and delivers data; and a fresh one each time, whatever the last one met. */
static void test_renew(void)
{
    harness h;
    harness_tls(&h, 0, 0);
    uint8_t exporter[MESH_SESSION_EXPORTER_LEN];
    memcpy(exporter, h.exporter, sizeof exporter);
    for (int round = 0; round < 3; round++) {
        CU_ASSERT_EQUAL_FATAL(mesh_pair_renew(&h, 0, round != 1), MESH_OK);
        CU_ASSERT_EQUAL(memcmp(h.exporter, exporter, sizeof exporter), 0);
        if (round == 1) { /* the hello by hand, as a fuzz seed carries it */
            CU_ASSERT_EQUAL(mesh_session_get_state(h.srv), MESH_SESSION_AUTHENTICATING);
            uint8_t *f = NULL;
            size_t flen = 0;
            CU_ASSERT_EQUAL_FATAL(
                mesh_hello_create(h.id_c, MESH_SESSION_ROLE_CLIENT, exporter, NULL, &f, &flen),
                MESH_OK);
            CU_ASSERT_EQUAL(mesh_pair_write(&h, f, flen, 7), MESH_OK);
            free(f);
            pump(&h, 3);
        }
        CU_ASSERT_EQUAL(mesh_session_get_state(h.srv), MESH_SESSION_CONNECTED);
        bytes env = {0}, in = {0};
        mesh_wire_canonical(&env, 40 + (uint64_t)round, 300, 0);
        frame_of(env.b, env.len, &in);
        free(env.b);
        CU_ASSERT_EQUAL(mesh_pair_write(&h, in.b, in.len, 0), MESH_OK);
        pump(&h, 0);
        CU_ASSERT_EQUAL(h.msgs_total, 1);
        static const uint8_t junk[] = "\x7f\xff\xff\xff"; /* oversize: ends the session */
        CU_ASSERT_EQUAL(mesh_pair_write(&h, junk, 4, 0), MESH_OK);
        pump(&h, 0);
        CU_ASSERT_EQUAL(mesh_session_get_state(h.srv), MESH_SESSION_CLOSING);
        free(in.b);
    }
    harness_stop(&h);
}

static CU_TestInfo tests[] = {
    {"canonical AppData of many sizes, whole and in pieces", test_canonical_sizes},
    {"frames batched in one write and split over records", test_batched_frames},
    {"non-canonical encodings decoded as protobuf-c does", test_noncanonical},
    {"random mutations: the same outcome as protobuf-c", test_random_mutations},
    {"an orderly close before authentication is MESH_ERR_CLOSED", test_closed_before_auth},
    {"a renewed pair: reconnect's exporter and hello, a fresh session", test_renew},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"session receive path", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
