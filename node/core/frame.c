/* frame.c — the decoder for 4-byte big-endian length-prefixed frames (frame.h).
 *
 * Invariants between calls: off <= len <= cap; [off, len) of buf holds bytes not handed out,
 * starting at a frame boundary, and never a whole frame after a feed (feeds hand them out);
 * a held prefix never announces more than max (that fails at once); failed != 0 implies
 * buf == NULL. One function (frame_at) reads prefixes; every path goes through it.
 */
#include "core/frame.h"

#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"

int mesh_frame_header(uint8_t hdr[MESH_FRAME_HDR_LEN], size_t len, size_t max)
{
    if (len > max || len > UINT32_MAX)
        return MESH_ERR_TOO_BIG;
    mesh_be32_put(hdr, (uint32_t)len);
    return MESH_OK;
}

void mesh_frame_dec_init(mesh_frame_dec *d, size_t max)
{
    memset(d, 0, sizeof *d);
    if (max == 0)
        max = MESH_FRAME_DEFAULT_MAX;
    /* A configuration above the absolute maximum is clamped rather than trusted. */
    d->max = max > MESH_FRAME_ABS_MAX ? MESH_FRAME_ABS_MAX : max;
}

static void release(mesh_frame_dec *d)
{
    free(d->buf);
    d->buf = NULL;
    d->cap = d->off = d->len = 0;
}

void mesh_frame_dec_free(mesh_frame_dec *d)
{
    release(d);
}

/* Sticky failure: the stream's frame boundaries are lost, so nothing held is worth keeping. */
static int fail(mesh_frame_dec *d, int code)
{
    release(d);
    d->failed = code;
    return code;
}

/* What the n bytes at p, a frame start, hold: MESH_OK, a whole frame of *flen payload bytes;
 * MESH_ERR_AGAIN, not yet, *need more bytes complete the prefix (if n < 4) or the frame;
 * MESH_ERR_TOO_BIG, the prefix announces more than max. */
static int frame_at(const uint8_t *p, size_t n, size_t max, size_t *flen, size_t *need)
{
    if (n < MESH_FRAME_HDR_LEN) {
        *need = MESH_FRAME_HDR_LEN - n;
        return MESH_ERR_AGAIN;
    }
    size_t len = mesh_be32_get(p);
    if (len > max)
        return MESH_ERR_TOO_BIG;
    *flen = len;
    if (n - MESH_FRAME_HDR_LEN < len) {
        *need = MESH_FRAME_HDR_LEN + len - n;
        return MESH_ERR_AGAIN;
    }
    return MESH_OK;
}

size_t mesh_frame_partial(const mesh_frame_dec *d)
{
    return d->len - d->off;
}

void mesh_frame_trim(mesh_frame_dec *d)
{
    if (d->off == d->len) {
        d->off = d->len = 0;
        if (d->buf && d->cap > d->keep)
            release(d);
    }
}

/* Room for want more bytes at buf + len: the held bytes move to the front first (reads stop
 * at frame ends, so they are at most the start of one frame), then buf grows. */
static int grow(mesh_frame_dec *d, size_t want)
{
    size_t held = d->len - d->off;
    if (held == 0)
        d->off = d->len = 0;
    if (want <= d->cap - d->len)
        return MESH_OK;
    if (d->off > 0) {
        memmove(d->buf, d->buf + d->off, held);
        d->off = 0;
        d->len = held;
    }
    if (want <= d->cap - held)
        return MESH_OK;
    uint8_t *b = realloc(d->buf, held + want);
    if (!b)
        return fail(d, MESH_ERR_NOMEM);
    d->buf = b;
    d->cap = held + want;
    return MESH_OK;
}

/* The held bytes (a frame start), or NULL when there are none. */
static const uint8_t *held(const mesh_frame_dec *d)
{
    return d->buf ? d->buf + d->off : NULL;
}

int mesh_frame_next(mesh_frame_dec *d, const uint8_t **payload, size_t *len)
{
    if (d->failed)
        return d->failed;
    size_t flen = 0, need = 0;
    int rc = frame_at(held(d), d->len - d->off, d->max, &flen, &need);
    if (rc == MESH_ERR_TOO_BIG)
        return fail(d, rc);
    if (rc != MESH_OK)
        return rc;
    *payload = d->buf + d->off + MESH_FRAME_HDR_LEN;
    *len = flen;
    d->off += MESH_FRAME_HDR_LEN + flen;
    return MESH_OK;
}

/* Bytes to take into the buffer next: the rest of the prefix or of the frame being
 * assembled (0 when a whole frame is held already). MESH_OK; MESH_ERR_TOO_BIG (sticky). */
static int wanted(mesh_frame_dec *d, size_t *want)
{
    size_t flen = 0;
    *want = 0;
    int rc = frame_at(held(d), d->len - d->off, d->max, &flen, want);
    if (rc == MESH_ERR_TOO_BIG)
        return fail(d, rc);
    return MESH_OK;
}

int mesh_frame_reserve(mesh_frame_dec *d, size_t chunk, uint8_t **space, size_t *room)
{
    if (d->failed)
        return d->failed;
    size_t want = 0;
    int rc = wanted(d, &want);
    /* No length to stop at yet (or a whole frame waiting): as much as the caller likes. */
    if (rc == MESH_OK && (want == 0 || d->len - d->off < MESH_FRAME_HDR_LEN) && chunk > want)
        want = chunk;
    if (rc == MESH_OK)
        rc = grow(d, want);
    if (rc != MESH_OK)
        return rc;
    *space = d->buf ? d->buf + d->len : NULL;
    *room = want;
    return MESH_OK;
}

void mesh_frame_commit(mesh_frame_dec *d, size_t n)
{
    d->len += n;
}

/* Push mode, bytes that do not make a whole frame by themselves: copy into the buffer up to
 * the end of the prefix or frame being assembled (never beyond, so every frame after it is
 * handed out from the caller's bytes again). fresh_need: frame_at's need for data when
 * nothing was held. *took = bytes taken. MESH_OK or a sticky failure. */
static int take_some(mesh_frame_dec *d, const uint8_t *data, size_t n, size_t fresh_need,
                     size_t *took)
{
    size_t want = n + fresh_need; /* the whole prefix, or the whole frame once its length is in */
    int rc = d->len == d->off ? MESH_OK : wanted(d, &want);
    if (rc == MESH_OK)
        rc = grow(d, want);
    if (rc != MESH_OK)
        return rc;
    *took = want < n ? want : n;
    if (*took)
        memcpy(d->buf + d->len, data, *took);
    d->len += *took;
    return MESH_OK;
}

int mesh_frame_feed_n(mesh_frame_dec *d, const uint8_t *data, size_t len, mesh_frame_cb cb,
                      void *ud, size_t *consumed)
{
    size_t pos = 0;
    int rc = MESH_OK;
    while (!d->failed && pos < len) {
        const uint8_t *p = NULL;
        size_t flen = 0, need = 0;
        if (d->len == d->off) { /* between frames: look at the caller's bytes in place */
            int r = frame_at(data + pos, len - pos, d->max, &flen, &need);
            if (r == MESH_OK) {
                p = data + pos + MESH_FRAME_HDR_LEN;
                pos += MESH_FRAME_HDR_LEN + flen;
            } else if (r == MESH_ERR_TOO_BIG) {
                /* Refused on the prefix alone: nothing is allocated for a hostile length. */
                fail(d, r);
                break;
            }
        }
        if (!p) {
            size_t took = 0;
            if (take_some(d, data + pos, len - pos, need, &took) != MESH_OK)
                break;
            pos += took;
            int r = mesh_frame_next(d, &p, &flen);
            if (r == MESH_ERR_AGAIN)
                continue;
            if (r != MESH_OK)
                break;
        }
        if ((rc = cb(ud, p, flen)) != MESH_OK)
            break;
    }
    mesh_frame_trim(d);
    if (consumed)
        *consumed = d->failed ? len : pos; /* a failure has no boundary to resume from */
    return d->failed ? d->failed : rc;
}

int mesh_frame_feed(mesh_frame_dec *d, const uint8_t *data, size_t len, mesh_frame_cb cb, void *ud)
{
    return mesh_frame_feed_n(d, data, len, cb, ud, NULL);
}
