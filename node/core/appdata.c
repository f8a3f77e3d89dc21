/* appdata.c — AppData encoded and decoded without copying its payload (see appdata.h). */
#include "core/appdata.h"

#include <protobuf-c/protobuf-c.h>
#include <string.h>

#include "core/frame.h"
#include "core/pad.h"

/* ---- sending: the frame streamed ----------------------------------------------------------- */

/* Passes the frame's bytes on in order. Every write starts a whole number of units from the
 * frame's start and all but the last are whole units: that keeps the records the same as one
 * write of the frame. */
typedef struct writer {
    ProtobufCBuffer base; /* first member: protobuf-c appends through it */
    mesh_appdata_write_fn write;
    void *ctx;
    size_t unit;
    uint8_t *stage; /* the bytes of the current unit not written yet */
    size_t staged, cap;
    size_t written; /* bytes the callback took */
    int rc;         /* first failure; later bytes are dropped */
} writer;

static void w_write(writer *w, const uint8_t *data, size_t len)
{
    w->rc = w->write(w->ctx, data, len);
    if (w->rc == MESH_OK)
        w->written += len;
}

/* len bytes of data in order, or len zero bytes when data is NULL. */
static void w_put(writer *w, const uint8_t *data, size_t len)
{
    while (len > 0 && w->rc == MESH_OK) {
        if (w->staged == 0 && data && len >= w->unit) {
            size_t n = len / w->unit * w->unit;
            w_write(w, data, n);
            data += n;
            len -= n;
            continue;
        }
        size_t take = w->cap - w->staged < len ? w->cap - w->staged : len;
        if (data) {
            memcpy(w->stage + w->staged, data, take);
            data += take;
        } else {
            memset(w->stage + w->staged, 0, take);
        }
        w->staged += take;
        len -= take;
        if (w->staged == w->cap) {
            w_write(w, w->stage, w->staged);
            w->staged = 0;
        }
    }
}

static void w_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
    w_put((writer *)(void *)b, data, len);
}

int mesh_appdata_is_plain(const mesh_envelope *e)
{
    return e && e->base.descriptor == &meshara__wire__envelope__descriptor &&
           e->body_case == MESHARA__WIRE__ENVELOPE__BODY_DATA && e->data &&
           e->data->base.descriptor == &meshara__wire__app_data__descriptor;
}

int mesh_appdata_write(const mesh_envelope *e, size_t max_frame, size_t unit,
                       mesh_appdata_write_fn write, void *ctx, size_t *written)
{
    if (written)
        *written = 0;
    if (!mesh_appdata_is_plain(e) || !write || unit == 0 || unit > MESH_APPDATA_UNIT_MAX)
        return MESH_ERR_INVAL;
    if (max_frame == 0)
        max_frame = MESH_FRAME_DEFAULT_MAX;
    mesh_envelope v = *e; /* shallow: only the version differs (as mesh_wire_encode) */
    v.version = MESH_WIRE_VERSION;
    size_t wlen = meshara__wire__envelope__get_packed_size(&v);
    size_t padded = mesh_pad_size(wlen);
    uint8_t hdr[MESH_FRAME_HDR_LEN + MESH_PAD_HDR_LEN];
    if (padded == 0 || mesh_frame_header(hdr, padded, max_frame) != MESH_OK ||
        mesh_pad_header(hdr + MESH_FRAME_HDR_LEN, wlen) != MESH_OK)
        return MESH_ERR_TOO_BIG;
    size_t total = MESH_FRAME_HDR_LEN + padded;
    uint8_t stage[MESH_APPDATA_UNIT_MAX];
    writer w = {.base.append = w_append, .write = write, .ctx = ctx, .unit = unit, .stage = stage};
    w.cap = total < unit ? total : unit;
    w_put(&w, hdr, sizeof hdr);
    size_t packed = meshara__wire__envelope__pack_to_buffer(&v, &w.base);
    w_put(&w, NULL, padded - MESH_PAD_HDR_LEN - wlen);
    if (w.staged && w.rc == MESH_OK)
        w_write(&w, w.stage, w.staged);
    if (written)
        *written = w.written;
    if (w.rc == MESH_OK && packed != wlen)
        return MESH_ERR_INTERNAL;
    return w.rc;
}

/* ---- receiving: the view ------------------------------------------------------------------- */

/* A protobuf varint of at most max bytes at p (< end). Returns the byte after it, or NULL. */
static const uint8_t *varint(const uint8_t *p, const uint8_t *end, int max, uint64_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < max && p < end; i++) {
        uint8_t b = *p++;
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return p;
        }
    }
    return NULL;
}

enum view_tags { /* one-byte protobuf tags: field number << 3 | wire type */
                 TAG_VERSION = 1 << 3 | 0,
                 TAG_DATA = MESHARA__WIRE__ENVELOPE__BODY_DATA << 3 | 2,
                 TAG_MSG_ID = 1 << 3 | 0,
                 TAG_PAYLOAD = 2 << 3 | 2,
                 TAG_ACK = 3 << 3 | 0,
                 VARINT_MAX = 9, /* bytes: values < 2^63, read exactly as protobuf-c reads them */
                 LENGTH_MAX = 5, /* bytes of a length prefix (protobuf-c's limit) */
};
_Static_assert(TAG_DATA < 0x80, "the data tag is one byte");

/* The AppData fields after the envelope's data tag and length: [msg_id][payload][ack], each
 * optional, in this order, nothing else. 1 with d filled, else 0. */
static int view_body(const uint8_t *p, const uint8_t *end, Meshara__Wire__AppData *d)
{
    uint64_t v = 0;
    *d = (Meshara__Wire__AppData)MESHARA__WIRE__APP_DATA__INIT;
    if (p < end && *p == TAG_MSG_ID && !(p = varint(p + 1, end, VARINT_MAX, &d->msg_id)))
        return 0;
    if (p < end && *p == TAG_PAYLOAD) {
        if (!(p = varint(p + 1, end, LENGTH_MAX, &v)) || v > (uint64_t)(end - p))
            return 0;
        d->payload.len = (size_t)v;
        d->payload.data = v ? (uint8_t *)p : NULL;
        p += v;
    }
    if (p < end && *p == TAG_ACK) {
        if (end - p < 2 || p[1] > 1) /* a bool as 0 or 1 in one byte */
            return 0;
        d->ack_requested = p[1];
        p += 2;
    }
    return p == end;
}

int mesh_appdata_view(const uint8_t *p, size_t len, mesh_envelope *e, Meshara__Wire__AppData *d)
{
    if (!p || !e || !d)
        return 0;
    const uint8_t *end = p + len;
    uint64_t v = 0;
    if (p == end || *p++ != TAG_VERSION || !(p = varint(p, end, VARINT_MAX, &v)) ||
        v != MESH_WIRE_VERSION)
        return 0;
    if (p == end || *p++ != TAG_DATA || !(p = varint(p, end, LENGTH_MAX, &v)) ||
        v != (uint64_t)(end - p) || !view_body(p, end, d))
        return 0;
    *e = (mesh_envelope)MESHARA__WIRE__ENVELOPE__INIT;
    e->version = MESH_WIRE_VERSION;
    e->body_case = MESHARA__WIRE__ENVELOPE__BODY_DATA;
    e->data = d;
    return 1;
}
