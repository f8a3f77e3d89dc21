/* pad.h — size padding: hides a message's exact length inside a TLS session.
 *
 * Format of a padded block: [4-byte big-endian payload length L][L payload bytes][zero
 * bytes], total size T = the smallest bucket >= L + 4, where the buckets are 256, 512, 1024,
 * 2048, 4096, 8192, 16384 and then every multiple of 16384. Every L from 0 to
 * MESH_PAD_MAX_PAYLOAD round-trips. Unpadding rejects: T not a bucket, L > T - 4, T not the
 * smallest bucket for L (a second encoding of one message), any non-zero padding byte.
 * (This replaces the seed's pad_message, which underflowed above 16384 bytes, overwrote
 * payload when fewer than 4 padding bytes were added, and trusted the attacker's length.)
 */
#ifndef MESH_CORE_PAD_H
#define MESH_CORE_PAD_H

#include <stddef.h>
#include <stdint.h>

#include "meshara/env.h"

enum mesh_pad_limits {
    MESH_PAD_HDR_LEN = 4,
    MESH_PAD_MIN_BUCKET = 256,
    MESH_PAD_STEP = 16384, /* above this, buckets are its multiples */
    MESH_PAD_MAX_PAYLOAD = (64 << 20) - MESH_PAD_HDR_LEN,
};

/* Padded size for a payload of len bytes; 0 if len > MESH_PAD_MAX_PAYLOAD. */
size_t mesh_pad_size(size_t len);
/* The block's header for a len-byte payload (what mesh_pad_encode writes first), for a
 * writer that streams the payload and the zero padding after it itself (appdata.h).
 * MESH_OK, or MESH_ERR_TOO_BIG (len > MESH_PAD_MAX_PAYLOAD). */
int mesh_pad_header(uint8_t hdr[MESH_PAD_HDR_LEN], size_t len);
/* Write the padded block for payload (len bytes) into out (outcap >= mesh_pad_size(len)).
 * payload and out must not overlap. Returns the padded size, or MESH_ERR_TOO_BIG /
 * MESH_ERR_INVAL (outcap too small) as a negative value. */
long mesh_pad_encode(const uint8_t *payload, size_t len, uint8_t *out, size_t outcap);
/* Check a padded block and point at its payload (borrowed from in). MESH_OK;
 * MESH_ERR_TRUNCATED (shorter than a header); MESH_ERR_MALFORMED (see above). */
int mesh_pad_decode(const uint8_t *in, size_t len, const uint8_t **payload, size_t *plen);

#endif
