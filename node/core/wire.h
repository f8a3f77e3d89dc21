/* wire.h — Envelope encode/decode over the protobuf-c code generated from
 * node/wire/meshara.proto, with the checks every receiver needs: the version, a body, and
 * sizes of fixed-length fields (keys 32 bytes, signatures 64, node ids 32).
 *
 * Messages on a session are: frame(pad(Envelope)). See docs/wire.md.
 */
#ifndef MESH_CORE_WIRE_H
#define MESH_CORE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "meshara.pb-c.h"
#include "meshara/env.h"

#define MESH_WIRE_VERSION 1

enum mesh_wire_limits {
    MESH_WIRE_KEY_LEN = 32,     /* Hello/PeerRecord.public_key, RelayIncoming.from_key */
    MESH_WIRE_SIG_LEN = 64,     /* Hello.signature, PeerRecord.signature */
    MESH_WIRE_NODE_ID_LEN = 32, /* Query.target (or empty), RelayConnect.target */
    /* Decoding may allocate at most FACTOR * input length + BASE bytes, each allocation
     * charged OVERHEAD more for the allocator's bookkeeping (protobuf-c's own scratch space
     * included). Measured: a 1 MiB AppData needs 1x, a Response of 5000 PeerRecords 2.7x, a
     * Heartbeat 120 bytes; hostile input made of empty sub-messages, empty strings or unknown
     * fields needs 30-80x and is refused with MESH_ERR_LIMIT. */
    MESH_WIRE_ALLOC_FACTOR = 8,
    MESH_WIRE_ALLOC_BASE = 64 * 1024,
    MESH_WIRE_ALLOC_OVERHEAD = 16,
};

typedef Meshara__Wire__Envelope mesh_envelope;

/* The allocation budget above, for any protobuf-c unpack of input_len bytes of untrusted
 * input: mesh_wire_budget_init() sets up b and an allocator a drawing on it (a points at b:
 * keep both alive during the unpack); free what was unpacked with the *_free_unpacked(.., NULL)
 * of its type (the memory comes from malloc). After a failed unpack,
 * mesh_wire_budget_error() names why: MESH_ERR_NOMEM, MESH_ERR_LIMIT (budget spent: hostile
 * input) or MESH_ERR_MALFORMED. */
typedef struct mesh_wire_budget {
    size_t left;
    int over, nomem;
} mesh_wire_budget;
void mesh_wire_budget_init(mesh_wire_budget *b, ProtobufCAllocator *a, size_t input_len);
int mesh_wire_budget_error(const mesh_wire_budget *b);

/* Pack env (version forced to MESH_WIRE_VERSION; env itself is not modified) into a malloc'd
 * buffer the caller frees with free(); *out and *outlen are set only on success. MESH_OK;
 * MESH_ERR_INVAL (no body, a NULL or uninitialised message, or a fixed-size field of the
 * wrong length: what the receiver would refuse is never sent); MESH_ERR_NOMEM;
 * MESH_ERR_INTERNAL (protobuf-c packed another size than it announced: a bug). */
int mesh_wire_encode(const mesh_envelope *env, uint8_t **out, size_t *outlen);
/* Unpack and validate buf (copied: it may be freed once this returns). *out is set only on
 * success and is freed with mesh_wire_free(). MESH_OK; MESH_ERR_MALFORMED (not protobuf, no
 * body, a fixed-size field of the wrong length); MESH_ERR_VERSION (checked before the body,
 * which a later version may have changed); MESH_ERR_LIMIT (would allocate beyond the budget
 * above); MESH_ERR_TOO_BIG (len > MESH_FRAME_ABS_MAX); MESH_ERR_NOMEM; MESH_ERR_INVAL (out
 * NULL, or buf NULL with len > 0). Any error from a peer's bytes means it is broken or
 * hostile: close the session. */
int mesh_wire_decode(const uint8_t *buf, size_t len, mesh_envelope **out);
/* Free a decoded envelope; NULL does nothing. */
void mesh_wire_free(mesh_envelope *env);

#endif
