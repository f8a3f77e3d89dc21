/* fuzz_appdata.c — the AppData fast path (node/core/appdata.c) against protobuf-c on every
 * input, both directions:
 *  - view: any bytes as an unpadded envelope. If mesh_appdata_view takes them, mesh_wire_decode
 *    must decode them to the same version, msg_id, payload and ack_requested (the view never
 *    decides anything protobuf-c would decide otherwise);
 *  - completeness: whatever mesh_wire_decode reads as AppData, re-encoded by protobuf-c, the
 *    view must take with the same values (unless msg_id needs a 10-byte varint or unknown
 *    fields were kept, both left to protobuf-c) — the fast path serves what encoders send;
 *  - writer: for that AppData, mesh_appdata_write must produce exactly the bytes of
 *    mesh_session_frame_create, in writes shaped by a unit taken from the last input byte.
 * Seeds: tests/fuzz/corpus/fuzz_appdata/ (MESH_FUZZ_SEEDS=DIR writes them anew). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/appdata.h"
#include "core/frame.h"
#include "core/session.h"
#include "fuzz_util.h"
#include "mesh_test.h"

static void same_data(const Meshara__Wire__AppData *a, const Meshara__Wire__AppData *b)
{
    if (a->msg_id != b->msg_id || a->ack_requested != b->ack_requested ||
        a->payload.len != b->payload.len ||
        (a->payload.len && memcmp(a->payload.data, b->payload.data, a->payload.len) != 0))
        __builtin_trap();
}

/* The view on p: agrees with ref (protobuf-c's decode of p, NULL if it refused p). */
static void check_view(const uint8_t *p, size_t n, const mesh_envelope *ref)
{
    mesh_envelope v;
    Meshara__Wire__AppData d;
    if (!mesh_appdata_view(p, n, &v, &d))
        return;
    if (!ref || ref->version != v.version || v.version != MESH_WIRE_VERSION ||
        ref->body_case != MESHARA__WIRE__ENVELOPE__BODY_DATA || v.data != &d ||
        v.body_case != MESHARA__WIRE__ENVELOPE__BODY_DATA)
        __builtin_trap();
    if (d.payload.len && (d.payload.data < p || d.payload.data + d.payload.len > p + n))
        __builtin_trap(); /* not a view into the input */
    same_data(ref->data, &d);
}

typedef struct sink {
    mesh_test_buf out;
    size_t unit;
    int bad_shape;
} sink;

static int sink_write(void *ctx, const uint8_t *p, size_t n)
{
    sink *k = ctx;
    if (k->out.len % k->unit != 0)
        k->bad_shape = 1; /* a write after one of no whole number of units */
    mesh_test_buf_add(&k->out, p, n);
    return MESH_OK;
}

/* e (decoded AppData): its canonical bytes are viewed, and streamed as frame_create makes. */
static void check_canonical(const mesh_envelope *e, size_t unit)
{
    uint8_t *w = NULL, *frame = NULL;
    size_t wlen = 0, flen = 0;
    if (mesh_wire_encode(e, &w, &wlen) != MESH_OK)
        __builtin_trap(); /* what decode accepted must encode */
    mesh_envelope v;
    Meshara__Wire__AppData d;
    int viewed = mesh_appdata_view(w, wlen, &v, &d);
    int plain = e->data->msg_id < (1ULL << 63) && e->base.n_unknown_fields == 0 &&
                e->data->base.n_unknown_fields == 0;
    if (viewed != plain)
        __builtin_trap();
    if (viewed)
        same_data(e->data, &d);
    sink k = {.unit = unit};
    size_t written = 0;
    int rc = mesh_session_frame_create(e, MESH_FRAME_ABS_MAX, &frame, &flen);
    int wrc = mesh_appdata_write(e, MESH_FRAME_ABS_MAX, unit, sink_write, &k, &written);
    if (rc != wrc || (rc == MESH_OK && (written != flen || k.out.len != flen || k.bad_shape ||
                                        memcmp(k.out.b, frame, flen) != 0)))
        __builtin_trap();
    free(k.out.b);
    free(frame);
    free(w);
}

static void write_seed(const char *dir, const char *name, const mesh_envelope *e)
{
    uint8_t *w = NULL;
    size_t wlen = 0;
    if (mesh_wire_encode(e, &w, &wlen) != MESH_OK)
        exit(1);
    mesh_fuzz_seed(dir, name, NULL, 0, w, wlen);
    free(w);
}

static void write_seeds(const char *dir)
{
    static uint8_t payload[300];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 7 + 1);
    Meshara__Wire__AppData d = MESHARA__WIRE__APP_DATA__INIT;
    mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
    e.body_case = MESHARA__WIRE__ENVELOPE__BODY_DATA;
    e.data = &d;
    write_seed(dir, "empty", &e);
    d.msg_id = 42;
    d.payload = (ProtobufCBinaryData){5, payload};
    write_seed(dir, "small", &e);
    d.msg_id = (1ULL << 63) - 1;
    d.payload.len = sizeof payload;
    d.ack_requested = 1;
    write_seed(dir, "ack_300", &e);
    d.msg_id = UINT64_MAX;
    write_seed(dir, "id_10_bytes", &e);
    Meshara__Wire__Heartbeat hb = MESHARA__WIRE__HEARTBEAT__INIT;
    hb.seq = 3;
    mesh_envelope h = MESHARA__WIRE__ENVELOPE__INIT;
    h.body_case = MESHARA__WIRE__ENVELOPE__BODY_HEARTBEAT;
    h.heartbeat = &hb;
    write_seed(dir, "heartbeat", &h);
}

MESH_FUZZ_SEED_WRITER(write_seeds)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mesh_envelope *ref = NULL;
    if (mesh_wire_decode(data, size, &ref) != MESH_OK)
        ref = NULL;
    check_view(data, size, ref);
    if (ref && ref->body_case == MESHARA__WIRE__ENVELOPE__BODY_DATA) {
        size_t unit = size ? 1 + (size_t)data[size - 1] * 64 : MESH_APPDATA_UNIT_MAX;
        check_canonical(ref, unit);
    }
    mesh_wire_free(ref);
    return 0;
}
