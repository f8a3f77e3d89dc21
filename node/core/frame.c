/* frame.c — incremental decoder for 4-byte big-endian length-prefixed frames (frame.h).
 *
 * Invariants between calls: hdr_have < 4 and buf == NULL while a prefix is being read;
 * hdr_have == 4, 0 < len <= max, buf != NULL and have < len while a body is being assembled.
 * A frame that arrives whole inside one feed is handed out straight from the caller's bytes,
 * so the common case copies nothing and allocates nothing.
 */
#include "core/frame.h"

#include <stdlib.h>
#include <string.h>

int mesh_frame_header(uint8_t hdr[MESH_FRAME_HDR_LEN], size_t len, size_t max)
{
    if (len > max || len > UINT32_MAX)
        return MESH_ERR_TOO_BIG;
    hdr[0] = (uint8_t)(len >> 24);
    hdr[1] = (uint8_t)(len >> 16);
    hdr[2] = (uint8_t)(len >> 8);
    hdr[3] = (uint8_t)len;
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

/* Back to "between frames"; failed is left alone (it is sticky). */
static void reset_frame(mesh_frame_dec *d)
{
    free(d->buf);
    d->buf = NULL;
    d->hdr_have = 0;
    d->len = 0;
    d->have = 0;
}

void mesh_frame_dec_free(mesh_frame_dec *d)
{
    reset_frame(d);
}

int mesh_frame_feed_n(mesh_frame_dec *d, const uint8_t *data, size_t len, mesh_frame_cb cb,
                      void *ud, size_t *consumed)
{
    size_t pos = 0;
    int rc = MESH_OK;

    while (!d->failed && pos < len) {
        if (d->hdr_have < MESH_FRAME_HDR_LEN) {
            size_t take = MESH_FRAME_HDR_LEN - d->hdr_have;
            if (take > len - pos)
                take = len - pos;
            memcpy(d->hdr + d->hdr_have, data + pos, take);
            d->hdr_have += take;
            pos += take;
            if (d->hdr_have < MESH_FRAME_HDR_LEN)
                break;
            d->len = (size_t)d->hdr[0] << 24 | (size_t)d->hdr[1] << 16 | (size_t)d->hdr[2] << 8 |
                     d->hdr[3];
            if (d->len > d->max) {
                /* Refused on the prefix alone: nothing is allocated for a hostile length,
                 * and the stream's frame boundaries are lost for good. */
                d->failed = MESH_ERR_TOO_BIG;
                break;
            }
            if (d->len == 0 || len - pos >= d->len) {
                /* Whole body (or none) already here: deliver from the caller's bytes. */
                const uint8_t *body = data + pos;
                size_t blen = d->len;
                pos += blen;
                reset_frame(d);
                rc = cb(ud, body, blen);
                if (rc != MESH_OK)
                    break;
                continue;
            }
            d->buf = malloc(d->len);
            if (!d->buf) {
                d->failed = MESH_ERR_NOMEM;
                break;
            }
        }
        size_t take = d->len - d->have;
        if (take > len - pos)
            take = len - pos;
        memcpy(d->buf + d->have, data + pos, take);
        d->have += take;
        pos += take;
        if (d->have < d->len)
            break;
        /* Detach the buffer first so the callback sees a decoder ready for the next frame. */
        uint8_t *body = d->buf;
        size_t blen = d->len;
        d->buf = NULL;
        reset_frame(d);
        rc = cb(ud, body, blen);
        free(body);
        if (rc != MESH_OK)
            break;
    }
    if (consumed)
        *consumed = pos;
    if (d->failed) {
        /* A failure has no frame boundary to resume from: report everything as taken. */
        if (consumed)
            *consumed = len;
        return d->failed;
    }
    return rc;
}

int mesh_frame_feed(mesh_frame_dec *d, const uint8_t *data, size_t len, mesh_frame_cb cb, void *ud)
{
    return mesh_frame_feed_n(d, data, len, cb, ud, NULL);
}

size_t mesh_frame_partial(const mesh_frame_dec *d)
{
    return d->hdr_have + d->have;
}
