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

typedef Meshara__Wire__Envelope mesh_envelope;

/* Pack env (version forced to MESH_WIRE_VERSION) into a malloc'd buffer the caller frees.
 * MESH_OK, MESH_ERR_INVAL (no body), MESH_ERR_NOMEM. */
int mesh_wire_encode(const mesh_envelope *env, uint8_t **out, size_t *outlen);
/* Unpack and validate. *out is freed with mesh_wire_free(). MESH_OK; MESH_ERR_MALFORMED
 * (not protobuf, no body, a fixed-size field of the wrong length); MESH_ERR_VERSION;
 * MESH_ERR_NOMEM. */
int mesh_wire_decode(const uint8_t *buf, size_t len, mesh_envelope **out);
void mesh_wire_free(mesh_envelope *env);

#endif
