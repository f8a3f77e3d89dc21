/* test_appdata.c — the AppData fast path (node/core/appdata.c) against the plain path.
 *
 * Writer: for many payload sizes and units, the bytes streamed are exactly the frame
 * mesh_session_frame_create builds, every write but the last is a whole number of units
 * starting a whole number of units into the frame, and failures stop at once.
 * View: the differential test against protobuf-c. Whatever the view accepts, mesh_wire_decode
 * accepts too, with the same version, msg_id, payload and ack_requested; every canonical
 * encoding (what protobuf-c itself packs) is accepted, so the fast path really runs; and on
 * hand-made non-canonical encodings (field order, repeats, overlong varints, unknown fields,
 * other versions), every single-byte change and every truncation of small encodings, the
 * view never claims what protobuf-c would decode otherwise. (test_session_rx.c checks the
 * same through a session; tests/fuzz/fuzz_appdata.c on every input the fuzzer makes.) */
#include "mesh_test.h"

#include <stdlib.h>
#include <string.h>

#include "core/appdata.h"
#include "core/frame.h"
#include "core/session.h"
#include "wire_cases.h"

enum { BIG = MESH_WIRE_PATTERN_LEN };

static mesh_envelope data_env(Meshara__Wire__AppData *d, uint64_t id, size_t plen, int ack)
{
    *d = (Meshara__Wire__AppData)MESHARA__WIRE__APP_DATA__INIT;
    d->msg_id = id;
    d->payload.data = plen ? (uint8_t *)mesh_wire_pattern() : NULL;
    d->payload.len = plen;
    d->ack_requested = ack;
    mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
    e.body_case = MESHARA__WIRE__ENVELOPE__BODY_DATA;
    e.data = d;
    return e;
}

/* ---- writer ------------------------------------------------------------------------------ */

typedef struct sink {
    mesh_test_buf out;
    size_t unit;
    unsigned calls;
    int shape_ok;    /* every write started at a unit boundary */
    int short_write; /* a write of not a whole number of units was seen (must be the last) */
    size_t fail_after;
    int fail_rc;
    int failed, called_after_failure;
} sink;

static int sink_write(void *ctx, const uint8_t *p, size_t n)
{
    sink *k = ctx;
    k->calls++;
    if (k->failed)
        k->called_after_failure = 1;
    if (k->short_write || k->out.len % k->unit != 0 || n == 0)
        k->shape_ok = 0;
    if (n % k->unit != 0)
        k->short_write = 1;
    if (k->fail_rc && k->out.len + n > k->fail_after) {
        k->failed = 1;
        return k->fail_rc;
    }
    mesh_test_buf_add(&k->out, p, n);
    return MESH_OK;
}

static void check_write(uint64_t id, size_t plen, int ack, size_t unit)
{
    Meshara__Wire__AppData d;
    mesh_envelope e = data_env(&d, id, plen, ack);
    uint8_t *ref = NULL;
    size_t rlen = 0;
    CU_ASSERT_EQUAL_FATAL(mesh_session_frame_create(&e, MESH_FRAME_ABS_MAX, &ref, &rlen), MESH_OK);
    sink k = {.unit = unit, .shape_ok = 1};
    size_t written = 0;
    CU_ASSERT_EQUAL(mesh_appdata_write(&e, MESH_FRAME_ABS_MAX, unit, sink_write, &k, &written),
                    MESH_OK);
    CU_ASSERT_EQUAL(written, rlen);
    CU_ASSERT_EQUAL_FATAL(k.out.len, rlen);
    CU_ASSERT(memcmp(k.out.b, ref, rlen) == 0);
    CU_ASSERT(k.shape_ok);
    free(k.out.b);
    free(ref);
}

static void test_write_same_bytes(void)
{
    static const size_t sizes[] = {0,     1,     100,   243,   244,   1000,  16000,
                                   16372, 16373, 16380, 16384, 16385, 70000, BIG};
    static const size_t units[] = {MESH_APPDATA_UNIT_MAX, 1000, 7, 1};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
            if (units[u] < 7 && sizes[i] > 20000)
                continue; /* a write per byte of a large frame proves nothing more */
            check_write(i * 977 + (i > 5 ? 1ULL << 40 : 0), sizes[i], (int)(i & 1), units[u]);
        }
    check_write(UINT64_MAX, 5, 1, MESH_APPDATA_UNIT_MAX);
}

static void test_write_refusals(void)
{
    Meshara__Wire__AppData d;
    mesh_envelope e = data_env(&d, 1, 100, 0);
    sink k = {.unit = 1, .shape_ok = 1};
    size_t w = 99;
    CU_ASSERT_EQUAL(mesh_appdata_write(&e, 0, 0, sink_write, &k, &w), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(w, 0);
    CU_ASSERT_EQUAL(mesh_appdata_write(&e, 0, MESH_APPDATA_UNIT_MAX + 1, sink_write, &k, NULL),
                    MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_appdata_write(&e, 0, 1, NULL, &k, NULL), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_appdata_write(NULL, 0, 1, sink_write, &k, NULL), MESH_ERR_INVAL);
    /* other bodies are not for this path */
    Meshara__Wire__Heartbeat hb = MESHARA__WIRE__HEARTBEAT__INIT;
    mesh_envelope h = MESHARA__WIRE__ENVELOPE__INIT;
    h.body_case = MESHARA__WIRE__ENVELOPE__BODY_HEARTBEAT;
    h.heartbeat = &hb;
    CU_ASSERT_FALSE(mesh_appdata_is_plain(&h));
    CU_ASSERT_TRUE(mesh_appdata_is_plain(&e));
    CU_ASSERT_EQUAL(mesh_appdata_write(&h, 0, 1, sink_write, &k, NULL), MESH_ERR_INVAL);
    mesh_envelope bare = {0}; /* never initialised */
    bare.body_case = MESHARA__WIRE__ENVELOPE__BODY_DATA;
    bare.data = &d;
    CU_ASSERT_FALSE(mesh_appdata_is_plain(&bare));
    /* above max_frame: refused before anything is written (256-byte bucket > 255) */
    CU_ASSERT_EQUAL(mesh_appdata_write(&e, 255, 1, sink_write, &k, &w), MESH_ERR_TOO_BIG);
    CU_ASSERT_EQUAL(w, 0);
    CU_ASSERT_EQUAL(mesh_appdata_write(&e, 256, 1000, sink_write, &k, &w), MESH_OK);
    CU_ASSERT_EQUAL(w, MESH_FRAME_HDR_LEN + 256);
    CU_ASSERT_EQUAL(k.calls, 1); /* a frame under one unit: one write */
    free(k.out.b);
}

/* The callback's first failure comes back, with the bytes it took, and nothing is written
 * after it. */
static void test_write_failure_stops(void)
{
    Meshara__Wire__AppData d;
    mesh_envelope e = data_env(&d, 9, 70000, 1);
    static const size_t after[] = {0, 3, 16384, 40000, 70000};
    for (size_t i = 0; i < sizeof after / sizeof after[0]; i++) {
        sink k = {.unit = 16384, .shape_ok = 1, .fail_after = after[i], .fail_rc = MESH_ERR_TLS};
        size_t w = 0;
        CU_ASSERT_EQUAL(mesh_appdata_write(&e, 0, 16384, sink_write, &k, &w), MESH_ERR_TLS);
        CU_ASSERT_EQUAL(w, k.out.len);
        CU_ASSERT(w <= after[i]);
        CU_ASSERT(k.failed && !k.called_after_failure);
        free(k.out.b);
    }
}

/* ---- view: the differential test against protobuf-c ------------------------------------- */

static unsigned g_accepted; /* inputs the view took, over the whole run */

/* View p; whatever it accepts, protobuf-c must decode to the same envelope. Returns the
 * view's verdict. */
static int view_agrees(const uint8_t *p, size_t len)
{
    mesh_envelope v;
    Meshara__Wire__AppData d;
    if (!mesh_appdata_view(p, len, &v, &d))
        return 0;
    g_accepted++;
    mesh_envelope *ref = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_wire_decode(p, len, &ref), MESH_OK);
    CU_ASSERT_EQUAL(ref->version, v.version);
    CU_ASSERT_EQUAL_FATAL(ref->body_case, MESHARA__WIRE__ENVELOPE__BODY_DATA);
    CU_ASSERT_PTR_EQUAL(v.data, &d);
    CU_ASSERT_EQUAL(ref->data->msg_id, d.msg_id);
    CU_ASSERT_EQUAL(ref->data->ack_requested, d.ack_requested);
    CU_ASSERT_EQUAL_FATAL(ref->data->payload.len, d.payload.len);
    if (d.payload.len) {
        CU_ASSERT(d.payload.data >= p && d.payload.data + d.payload.len <= p + len);
        CU_ASSERT(memcmp(ref->data->payload.data, d.payload.data, d.payload.len) == 0);
    }
    mesh_wire_free(ref);
    return 1;
}

static void test_view_canonical(void)
{
    static const size_t sizes[] = {0, 1, 127, 128, 16383, 16384, 70000, BIG};
    static const uint64_t ids[] = {0,          1,         127, 128, 1ULL << 62, (1ULL << 63) - 1,
                                   1ULL << 63, UINT64_MAX};
    mesh_test_buf b = {0};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (size_t j = 0; j < sizeof ids / sizeof ids[0]; j++) {
            mesh_wire_canonical(&b, ids[j], sizes[i], (int)((i + j) & 1));
            int took = view_agrees(b.b, b.len);
            /* protobuf-c reads varints of 10 bytes (ids >= 2^63) the view leaves to it */
            CU_ASSERT_EQUAL(took, ids[j] < 1ULL << 63);
        }
    free(b.b);
}

/* Hand-made AppData envelopes protobuf-c takes (or refuses) in its own way (wire_cases.h):
 * the view must either decline them or agree, and decline those protobuf-c refuses or reads
 * otherwise than first-come. Overlong varints it reads as protobuf-c does. */
static void test_view_noncanonical(void)
{
    mesh_test_buf env = {0};
    int may, taken = 0;
    const char *what = NULL;
    for (int c = 0; (may = mesh_wire_case(c, mesh_wire_pattern(), &env, &what)) >= 0; c++) {
        int took = view_agrees(env.b, env.len);
        if (!may && took)
            CU_FAIL(what);
        taken += took;
    }
    CU_ASSERT(taken >= 2); /* the overlong forms */
    /* other bodies: a heartbeat */
    static const uint8_t hb[] = {0x08, 1, 12 << 3 | 2, 2, 0x08, 1};
    CU_ASSERT_FALSE(view_agrees(hb, sizeof hb));
    CU_ASSERT_FALSE(view_agrees(NULL, 0));
    free(env.b);
}

/* Every single-byte value at every position, and every truncation, of small canonical
 * encodings: the view agrees with protobuf-c on all of them. */
static void test_view_every_byte(void)
{
    mesh_test_buf b = {0}, m = {0};
    static const size_t sizes[] = {0, 1, 5, 130};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        mesh_wire_canonical(&b, i ? 300 + i : 0, sizes[i], (int)(i & 1));
        for (size_t cut = 0; cut <= b.len; cut++)
            (void)view_agrees(b.b, cut);
        for (size_t pos = 0; pos < b.len && pos < 24; pos++)
            for (unsigned x = 0; x < 256; x++) {
                m.len = 0;
                mesh_test_buf_add(&m, b.b, b.len);
                m.b[pos] = (uint8_t)x;
                (void)view_agrees(m.b, m.len);
            }
    }
    CU_ASSERT(g_accepted > 0);
    free(b.b);
    free(m.b);
}

static CU_TestInfo tests[] = {
    {"writer: the bytes of mesh_session_frame_create, in unit-shaped writes",
     test_write_same_bytes},
    {"writer: bad arguments, other bodies, oversize", test_write_refusals},
    {"writer: a failing write stops it at once", test_write_failure_stops},
    {"view: every canonical encoding is viewed as protobuf-c decodes it", test_view_canonical},
    {"view: non-canonical encodings are left to protobuf-c", test_view_noncanonical},
    {"view: every byte value and truncation agrees with protobuf-c", test_view_every_byte},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"appdata", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
