/* fuzz_frame.c — the frame decoder (node/core/frame.c) on any byte stream, in both modes:
 * push (the stream cut in two at a point taken from the first byte, fed with callback stops
 * and resumes) and pull (read into the decoder's buffer in reads of at most a size taken from
 * the second byte, as the session's TLS reads do). It must never crash; the frames each mode
 * delivers, re-encoded, must be a prefix of the stream (nothing invented, nothing reordered,
 * nothing skipped); both modes must agree on the frames, the failure and the partial bytes;
 * and a pull read must never run past the end of a frame whose length is known. A small
 * maximum makes the oversize path reachable. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/frame.h"
#include "frame_pull.h"

enum { FUZZ_FRAME_MAX = 4096 };

typedef struct check {
    const uint8_t *in;
    size_t inlen;
    size_t pos; /* bytes of in matched by delivered frames */
    unsigned frames;
} check;

static int on_frame(void *ud, const uint8_t *p, size_t len)
{
    check *c = ud;
    uint8_t hdr[MESH_FRAME_HDR_LEN];
    if (mesh_frame_header(hdr, len, FUZZ_FRAME_MAX) != MESH_OK)
        __builtin_trap(); /* delivered a frame above the maximum */
    if (c->pos + sizeof hdr + len > c->inlen || memcmp(c->in + c->pos, hdr, sizeof hdr) != 0 ||
        (len && memcmp(c->in + c->pos + sizeof hdr, p, len) != 0))
        __builtin_trap();
    c->pos += sizeof hdr + len;
    c->frames++;
    /* stop now and then, to exercise feed_n's resume point */
    return (c->frames % 7 == 0) ? MESH_ERR_PROTOCOL : MESH_OK;
}

/* Feed data, resuming after every callback stop. */
static int feed_all(mesh_frame_dec *d, const uint8_t *data, size_t len, check *c)
{
    for (;;) {
        size_t used = 0;
        int rc = mesh_frame_feed_n(d, data, len, on_frame, c, &used);
        if (rc != MESH_ERR_PROTOCOL)
            return rc;
        if (used > len)
            __builtin_trap();
        data += used;
        len -= used;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t split = data[0] % size; /* data[0] is part of the stream too */
    check c = {data, size, 0, 0};
    mesh_frame_dec d;
    mesh_frame_dec_init(&d, FUZZ_FRAME_MAX);
    int rc = feed_all(&d, data, split, &c);
    if (rc == MESH_OK)
        rc = feed_all(&d, data + split, size - split, &c);
    if (rc == MESH_OK) {
        /* everything is accounted for: frames delivered plus the unfinished one */
        if (c.pos + mesh_frame_partial(&d) != size)
            __builtin_trap();
    } else if (rc != MESH_ERR_TOO_BIG || d.buf != NULL) {
        __builtin_trap(); /* only oversize can fail here, and it holds no buffer */
    }
    size_t push_partial = mesh_frame_partial(&d);
    mesh_frame_dec_free(&d);

    check pc = {data, size, 0, 0};
    mesh_frame_dec_init(&d, FUZZ_FRAME_MAX);
    mesh_pull_run run;
    mesh_frame_pull_stream(&d, data, size, size > 1 ? 1 + (size_t)data[1] * 67 : 1, 1000, on_frame,
                           &pc, &run);
    if (run.no_room || run.outside || run.crossed)
        __builtin_trap(); /* reads must stop at frame ends, frames come from the buffer */
    if (run.rc != MESH_OK && d.buf != NULL)
        __builtin_trap(); /* a failed decoder holds nothing */
    mesh_frame_dec_free(&d);
    if (run.rc != rc || pc.pos != c.pos || run.partial != push_partial)
        __builtin_trap(); /* the two modes disagree */
    return 0;
}
