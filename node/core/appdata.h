/* appdata.h — the AppData fast path: the one message that carries bulk bytes, encoded and
 * decoded without copying its payload. Both directions make or take exactly the bytes of the
 * plain path (mesh_session_frame_create, mesh_wire_decode); they only copy less.
 *
 * Sending: mesh_appdata_write() produces frame(pad(wire(e))) in order through a write
 * callback — frame prefix, pad header, protobuf-c packing, zero padding — without building
 * the frame: whole units of the payload go to the callback straight from the caller's
 * memory, only the rest is staged (at most one unit). Every write but the last is a whole
 * number of units and starts a whole number of units from the frame's start, so with unit =
 * one TLS record's plaintext the records on the wire are those of one write of the frame.
 *
 * Receiving: mesh_appdata_view() recognises the exact form every encoder (ours included)
 * gives Envelope{version 1, data AppData{msg_id, payload, ack_requested}} — fields in order,
 * each at most once, one-byte tags, no unknown fields — and fills an envelope whose payload
 * points into the input instead of protobuf-c copying it. For anything else it declines, and
 * the caller decodes with mesh_wire_decode(), which alone decides what is rejected: for
 * every input the view accepts, protobuf-c accepts it too and yields the same values
 * (tests/unit/test_appdata.c checks this against protobuf-c on hand-made and mutated
 * encodings, tests/fuzz/fuzz_appdata.c on every input the fuzzer makes).
 */
#ifndef MESH_CORE_APPDATA_H
#define MESH_CORE_APPDATA_H

#include <stddef.h>
#include <stdint.h>

#include "core/wire.h"

enum mesh_appdata_limits {
    MESH_APPDATA_UNIT_MAX = 16384, /* largest unit (= MESH_TLS_RECORD_MAX): the stage's size */
};

/* 1 if e is an initialised envelope carrying an initialised AppData: the envelopes
 * mesh_appdata_write() takes. */
int mesh_appdata_is_plain(const mesh_envelope *e);

/* Takes len bytes in order; MESH_OK or an error that stops the writing. */
typedef int (*mesh_appdata_write_fn)(void *ctx, const uint8_t *data, size_t len);

/* Write the complete frame of e (mesh_appdata_is_plain) through write, in writes shaped by
 * unit (1..MESH_APPDATA_UNIT_MAX) as described above; max_frame 0 = MESH_FRAME_DEFAULT_MAX.
 * *written (may be NULL) = bytes the callback accepted. MESH_OK; MESH_ERR_INVAL (arguments,
 * or e not plain AppData); MESH_ERR_TOO_BIG (the padded frame is above max_frame: nothing
 * written); what write returned (the first failure: nothing more is written);
 * MESH_ERR_INTERNAL (protobuf-c packed another size than it announced: the frame written
 * has a wrong length, the stream is lost). */
int mesh_appdata_write(const mesh_envelope *e, size_t max_frame, size_t unit,
                       mesh_appdata_write_fn write, void *ctx, size_t *written);

/* View the len envelope bytes at p (unpadded protobuf). Returns 1 with *e set to an
 * envelope whose data is d and whose d->payload points into p (both borrowed as long as p);
 * e needs no freeing. Returns 0 for any other form: decode with mesh_wire_decode(). */
int mesh_appdata_view(const uint8_t *p, size_t len, mesh_envelope *e, Meshara__Wire__AppData *d);

#endif
