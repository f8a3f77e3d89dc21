/* frame.h — length-prefixed framing: a 4-byte big-endian length, then that many bytes.
 *
 * The decoder is incremental: feed it whatever a stream delivered (any split, down to one
 * byte at a time) and it hands out each complete frame. A length above the configured
 * maximum is refused as soon as the 4 prefix bytes are in, before anything is allocated;
 * the decoder then stays failed (the stream must be closed: its byte boundaries are lost).
 * A zero-length frame is valid and delivered as (NULL or any pointer, 0).
 */
#ifndef MESH_CORE_FRAME_H
#define MESH_CORE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "meshara/env.h"

enum mesh_frame_limits {
    MESH_FRAME_HDR_LEN = 4,
    /* Default maximum frame: a 1 MiB message, padded (pad.h), with envelope overhead. */
    MESH_FRAME_DEFAULT_MAX = (1 << 20) + 64 * 1024,
    MESH_FRAME_ABS_MAX = 64 << 20, /* no configuration may exceed this */
};

/* Write the 4-byte prefix for a len-byte frame. MESH_OK, or MESH_ERR_TOO_BIG if len > max. */
int mesh_frame_header(uint8_t hdr[MESH_FRAME_HDR_LEN], size_t len, size_t max);

/* One complete frame; payload is borrowed until the callback returns. Return MESH_OK to go
 * on, anything else to stop: mesh_frame_feed() then returns that value at once. */
typedef int (*mesh_frame_cb)(void *ud, const uint8_t *payload, size_t len);

typedef struct mesh_frame_dec {
    size_t max; /* largest accepted frame length */
    uint8_t hdr[MESH_FRAME_HDR_LEN];
    size_t hdr_have;  /* prefix bytes held */
    uint8_t *buf;     /* body being assembled (NULL between frames) */
    size_t len, have; /* body length announced, bytes held */
    int failed;       /* a frame was refused: every feed returns this code */
} mesh_frame_dec;

/* max: 1..MESH_FRAME_ABS_MAX (0 = MESH_FRAME_DEFAULT_MAX). Allocates nothing. */
void mesh_frame_dec_init(mesh_frame_dec *d, size_t max);
/* Drop any partial frame and free the buffer (the struct can be re-initialised). */
void mesh_frame_dec_free(mesh_frame_dec *d);
/* Consume len bytes, calling cb for each complete frame in order. Returns MESH_OK;
 * MESH_ERR_TOO_BIG (a prefix above max: sticky); MESH_ERR_NOMEM (sticky); or what cb
 * returned (not sticky: bytes after the stopping frame are not consumed — feed them again
 * only if you mean to). */
int mesh_frame_feed(mesh_frame_dec *d, const uint8_t *data, size_t len, mesh_frame_cb cb, void *ud);
/* mesh_frame_feed(), and *consumed (may be NULL) = bytes of data taken: all of them unless cb
 * stopped, in which case data + *consumed is the first byte after the stopping frame (pass
 * it to a later feed to resume). On a sticky failure *consumed = len. */
int mesh_frame_feed_n(mesh_frame_dec *d, const uint8_t *data, size_t len, mesh_frame_cb cb,
                      void *ud, size_t *consumed);
/* Bytes of an unfinished frame held (prefix included): non-zero at end of stream means the
 * peer closed mid-frame (MESH_ERR_TRUNCATED for the caller to report). */
size_t mesh_frame_partial(const mesh_frame_dec *d);

#endif
