/* frame_pull.c — frame.h's pull mode over a stream in memory (see frame_pull.h). */
#include "frame_pull.h"

#include <string.h>

#include "core/bytes.h"

/* Every whole frame held to cb. MESH_ERR_AGAIN when none is left, or the failure. */
static int take_frames(mesh_frame_dec *d, mesh_frame_cb cb, void *ud, mesh_pull_run *out)
{
    const uint8_t *p = NULL;
    size_t len = 0;
    int rc;
    while ((rc = mesh_frame_next(d, &p, &len)) == MESH_OK) {
        if (len && (p < d->buf || p + len > d->buf + d->len))
            out->outside = 1;
        (void)cb(ud, p, len);
    }
    return rc;
}

void mesh_frame_pull_stream(mesh_frame_dec *d, const uint8_t *s, size_t n, size_t step,
                            size_t chunk, mesh_frame_cb cb, void *ud, mesh_pull_run *out)
{
    memset(out, 0, sizeof *out);
    size_t pos = 0;
    int rc;
    while ((rc = take_frames(d, cb, ud, out)) == MESH_ERR_AGAIN && pos < n) {
        uint8_t *space = NULL;
        size_t room = 0, held = mesh_frame_partial(d);
        if ((rc = mesh_frame_reserve(d, chunk, &space, &room)) != MESH_OK)
            break;
        if (room == 0 || !space) {
            out->no_room = 1;
            break;
        }
        if (held >= MESH_FRAME_HDR_LEN &&
            held + room != MESH_FRAME_HDR_LEN + mesh_be32_get(d->buf + d->off))
            out->crossed = 1;
        size_t w = room < step ? room : step;
        if (w > n - pos)
            w = n - pos;
        memcpy(space, s + pos, w);
        mesh_frame_commit(d, w);
        pos += w;
    }
    out->rc = rc == MESH_ERR_AGAIN ? MESH_OK : rc;
    out->partial = mesh_frame_partial(d);
}
