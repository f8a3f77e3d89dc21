/* frame.h — length-prefixed framing: a 4-byte big-endian length, then that many bytes.
 *
 * The one decoder of this format. The session's framed receive path, the HTTP/2 events
 * stream (h2.c) and the test-only ping (tests/common/ping.c) all use it. It is incremental:
 * bytes may arrive split anywhere, down to one at a time. A length above the configured
 * maximum is refused as soon as the 4 prefix bytes are in, before anything is allocated for
 * it; the decoder then stays failed (the stream must be closed: its byte boundaries are lost)
 * and holds no memory. A zero-length frame is valid and delivered as (some pointer, 0).
 *
 * Two ways to give it bytes, both zero-copy for the common case:
 *  - push (mesh_frame_feed): the caller's bytes. A frame that arrives whole inside one feed is
 *    handed out straight from them; only a frame split across feeds is assembled in the
 *    decoder's buffer (allocated to exactly its size once its prefix is known).
 *  - pull (mesh_frame_reserve / commit / next): the caller writes its input straight into the
 *    decoder's buffer (the session has TLS open its records there), asking for no more than
 *    the end of the frame being assembled, so a frame of any size is contiguous there and is
 *    handed out in place.
 * The two may be mixed on one decoder. Between calls the buffer holds only bytes not handed
 * out yet: [off, len) of buf, starting at a frame boundary.
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
    size_t max;      /* largest accepted frame length */
    size_t keep;     /* buffer capacity kept while idle (mesh_frame_trim); 0 after init */
    uint8_t *buf;    /* bytes not handed out yet, or NULL */
    size_t cap;      /* allocated size of buf */
    size_t off, len; /* [off, len) of buf: held bytes; off is a frame start */
    int failed;      /* a frame was refused: every call returns this code */
} mesh_frame_dec;

/* max: 1..MESH_FRAME_ABS_MAX (0 = MESH_FRAME_DEFAULT_MAX; larger values are clamped).
 * Allocates nothing. */
void mesh_frame_dec_init(mesh_frame_dec *d, size_t max);
/* Drop any partial frame and free the buffer (the struct can be re-initialised). */
void mesh_frame_dec_free(mesh_frame_dec *d);

/* ---- push ------------------------------------------------------------------------------ */

/* Consume len bytes, calling cb for each complete frame in order. Returns MESH_OK;
 * MESH_ERR_TOO_BIG (a prefix above max: sticky); MESH_ERR_NOMEM (sticky); or what cb
 * returned (not sticky: bytes after the stopping frame are not consumed — feed them again
 * only if you mean to). Ends with mesh_frame_trim(). */
int mesh_frame_feed(mesh_frame_dec *d, const uint8_t *data, size_t len, mesh_frame_cb cb, void *ud);
/* mesh_frame_feed(), and *consumed (may be NULL) = bytes of data taken: all of them unless cb
 * stopped, in which case data + *consumed is the first byte after the stopping frame (pass
 * it to a later feed to resume). On a sticky failure *consumed = len. */
int mesh_frame_feed_n(mesh_frame_dec *d, const uint8_t *data, size_t len, mesh_frame_cb cb,
                      void *ud, size_t *consumed);

/* ---- pull ------------------------------------------------------------------------------ */

/* Room for the next input: *space = where to write, *room = how many bytes to write at most
 * there: up to the end of the frame being assembled once its length is known, else
 * max(chunk, what completes the prefix). Call mesh_frame_next() until MESH_ERR_AGAIN first
 * (a reserve may move the held bytes, ending the life of payloads handed out). MESH_OK;
 * MESH_ERR_NOMEM (sticky); MESH_ERR_TOO_BIG (sticky, from before). */
int mesh_frame_reserve(mesh_frame_dec *d, size_t chunk, uint8_t **space, size_t *room);
/* n bytes (at most *room of the last reserve) were written at *space. */
void mesh_frame_commit(mesh_frame_dec *d, size_t n);
/* The next complete frame held: MESH_OK with *payload (inside the buffer; borrowed until the
 * next reserve, feed, trim or free of d) and *len; MESH_ERR_AGAIN when no whole frame is
 * held; MESH_ERR_TOO_BIG (sticky: the held prefix announces more than max). */
int mesh_frame_next(mesh_frame_dec *d, const uint8_t **payload, size_t *len);

/* ---- state ----------------------------------------------------------------------------- */

/* Bytes of an unfinished frame held (prefix included): non-zero at end of stream means the
 * peer closed mid-frame (MESH_ERR_TRUNCATED for the caller to report). 0 after a failure. */
size_t mesh_frame_partial(const mesh_frame_dec *d);
/* Free the buffer if it holds nothing and is larger than d->keep (an idle stream holds no
 * memory; keep spares the allocator a decoder that assembles many small split frames). */
void mesh_frame_trim(mesh_frame_dec *d);

#endif
