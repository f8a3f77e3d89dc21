/* test_frame.c — the length-prefix decoder (node/core/frame.c), in push mode (feed) and pull
 * mode (reserve/commit/next): any split of a stream gives the same frames, limits are
 * enforced on the prefix before allocation, failures stick; in pull mode reads never cross
 * the end of a frame whose length is known, and frames are handed out in place. */
#include "mesh_test.h"

#include <stdlib.h>
#include <string.h>

#include "core/frame.h"
#include "frame_pull.h"

/* Accumulator: every delivered frame is re-encoded (prefix + body) into out, so a correct
 * decoder reproduces its input byte for byte. stop_at: return stop_rc on that frame (1-based). */
typedef struct acc {
    uint8_t *out;
    size_t outlen, outcap;
    unsigned frames;
    unsigned stop_at;
    int stop_rc;
    const mesh_frame_dec *dec; /* to check the decoder's state seen from inside cb */
    int dec_busy_in_cb;
} acc;

static int acc_cb(void *ud, const uint8_t *p, size_t len)
{
    acc *a = ud;
    CU_ASSERT_FATAL(a->outlen + MESH_FRAME_HDR_LEN + len <= a->outcap);
    CU_ASSERT_FATAL(len == 0 || p != NULL);
    CU_ASSERT_EQUAL(mesh_frame_header(a->out + a->outlen, len, SIZE_MAX), MESH_OK);
    if (len)
        memcpy(a->out + a->outlen + MESH_FRAME_HDR_LEN, p, len);
    a->outlen += MESH_FRAME_HDR_LEN + len;
    a->frames++;
    if (a->dec && mesh_frame_partial(a->dec) != 0)
        a->dec_busy_in_cb = 1;
    if (a->stop_at && a->frames == a->stop_at)
        return a->stop_rc;
    return MESH_OK;
}

static void acc_init(acc *a, size_t cap)
{
    memset(a, 0, sizeof *a);
    a->out = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a->out);
    a->outcap = cap;
}

/* A stream of frames of the given body sizes; body bytes are a position pattern. */
static uint8_t *make_stream(const size_t *sizes, size_t n, size_t *outlen)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += MESH_FRAME_HDR_LEN + sizes[i];
    uint8_t *s = malloc(total ? total : 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT_EQUAL_FATAL(mesh_frame_header(s + off, sizes[i], MESH_FRAME_ABS_MAX), MESH_OK);
        off += MESH_FRAME_HDR_LEN;
        for (size_t j = 0; j < sizes[i]; j++)
            s[off + j] = (uint8_t)(j * 7 + i * 31 + 1);
        off += sizes[i];
    }
    *outlen = total;
    return s;
}

static const size_t MIX[] = {0, 1, 3, 4, 5, 0, 0, 17, 255, 256, 1, 600, 0};
#define NMIX (sizeof MIX / sizeof MIX[0])

static void test_header(void)
{
    uint8_t h[MESH_FRAME_HDR_LEN];
    CU_ASSERT_EQUAL(mesh_frame_header(h, 0x01020304, MESH_FRAME_ABS_MAX), MESH_OK);
    CU_ASSERT_EQUAL(memcmp(h, "\x01\x02\x03\x04", 4), 0);
    CU_ASSERT_EQUAL(mesh_frame_header(h, 0, 0), MESH_OK);
    CU_ASSERT_EQUAL(memcmp(h, "\0\0\0\0", 4), 0);
    CU_ASSERT_EQUAL(mesh_frame_header(h, 100, 100), MESH_OK);
    CU_ASSERT_EQUAL(mesh_frame_header(h, 101, 100), MESH_ERR_TOO_BIG);
    CU_ASSERT_EQUAL(mesh_frame_header(h, (size_t)UINT32_MAX + 1, SIZE_MAX), MESH_ERR_TOO_BIG);
}

static void test_init_limits(void)
{
    mesh_frame_dec d;
    mesh_frame_dec_init(&d, 0);
    CU_ASSERT_EQUAL(d.max, MESH_FRAME_DEFAULT_MAX);
    CU_ASSERT_PTR_NULL(d.buf);
    mesh_frame_dec_init(&d, (size_t)MESH_FRAME_ABS_MAX + 1);
    CU_ASSERT_EQUAL(d.max, MESH_FRAME_ABS_MAX);
    mesh_frame_dec_init(&d, 1);
    CU_ASSERT_EQUAL(d.max, 1);
}

/* Feed s in pieces cut at the given points (ascending): the output equals s, the decoder is
 * empty at the end, and it is between frames whenever the callback runs. */
static void feed_cuts(const uint8_t *s, size_t n, const size_t *cuts, size_t ncuts)
{
    mesh_frame_dec d;
    acc a;
    acc_init(&a, n);
    mesh_frame_dec_init(&d, 0);
    a.dec = &d;
    size_t prev = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : n;
        CU_ASSERT_EQUAL(mesh_frame_feed(&d, s + prev, end - prev, acc_cb, &a), MESH_OK);
        prev = end;
    }
    CU_ASSERT_EQUAL(a.outlen, n);
    CU_ASSERT_EQUAL(memcmp(a.out, s, n), 0);
    CU_ASSERT_EQUAL(mesh_frame_partial(&d), 0);
    CU_ASSERT_PTR_NULL(d.buf);
    CU_ASSERT_FALSE(a.dec_busy_in_cb);
    mesh_frame_dec_free(&d);
    free(a.out);
}

/* The whole stream in one feed: several frames (including empty ones) in one call. */
static void test_many_in_one_feed(void)
{
    size_t n;
    uint8_t *s = make_stream(MIX, NMIX, &n);
    feed_cuts(s, n, NULL, 0);
    free(s);
}

static void test_every_split_point(void)
{
    size_t n;
    uint8_t *s = make_stream(MIX, NMIX, &n);
    for (size_t c = 0; c <= n; c++)
        feed_cuts(s, n, &c, 1);
    free(s);
}

/* Every pair of cut points over a shorter stream: covers a piece that holds the end of one
 * frame's prefix, a whole frame and the start of the next, etc. */
static void test_every_pair_of_splits(void)
{
    static const size_t sizes[] = {2, 0, 9, 1, 0, 6};
    size_t n;
    uint8_t *s = make_stream(sizes, sizeof sizes / sizeof sizes[0], &n);
    for (size_t i = 0; i <= n; i++)
        for (size_t j = i; j <= n; j++) {
            size_t cuts[2] = {i, j};
            feed_cuts(s, n, cuts, 2);
        }
    free(s);
}

static void test_one_byte_at_a_time(void)
{
    static const size_t sizes[] = {0, 1, 600, 70000, 0, 3};
    size_t n;
    uint8_t *s = make_stream(sizes, sizeof sizes / sizeof sizes[0], &n);
    size_t *cuts = malloc(n * sizeof *cuts);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cuts);
    for (size_t i = 0; i < n; i++)
        cuts[i] = i;
    feed_cuts(s, n, cuts, n);
    free(cuts);
    free(s);
}

static void test_zero_length(void)
{
    static const uint8_t z[4] = {0, 0, 0, 0};
    mesh_frame_dec d;
    acc a;
    acc_init(&a, 64);
    mesh_frame_dec_init(&d, 1);
    CU_ASSERT_EQUAL(mesh_frame_feed(&d, z, 4, acc_cb, &a), MESH_OK);
    CU_ASSERT_EQUAL(a.frames, 1);
    CU_ASSERT_PTR_NULL(d.buf);
    /* an empty feed is a no-op, even with a NULL pointer */
    CU_ASSERT_EQUAL(mesh_frame_feed(&d, NULL, 0, acc_cb, &a), MESH_OK);
    CU_ASSERT_EQUAL(a.frames, 1);
    mesh_frame_dec_free(&d);
    free(a.out);
}

/* Exactly max is accepted, in one feed and assembled from pieces. */
static void test_exactly_max(void)
{
    enum { MAX = 1000 };
    size_t sizes[] = {MAX};
    size_t n;
    uint8_t *s = make_stream(sizes, 1, &n);
    for (size_t cut = 0; cut <= n; cut += 333) {
        mesh_frame_dec d;
        acc a;
        acc_init(&a, n);
        mesh_frame_dec_init(&d, MAX);
        CU_ASSERT_EQUAL(mesh_frame_feed(&d, s, cut, acc_cb, &a), MESH_OK);
        CU_ASSERT_EQUAL(mesh_frame_feed(&d, s + cut, n - cut, acc_cb, &a), MESH_OK);
        CU_ASSERT_EQUAL(a.frames, 1);
        CU_ASSERT_EQUAL(memcmp(a.out, s, n), 0);
        mesh_frame_dec_free(&d);
        free(a.out);
    }
    free(s);
}

/* max+1 is refused as soon as the prefix is complete, before any body byte is held. */
static void test_max_plus_one_refused(void)
{
    enum { MAX = 1000 };
    uint8_t h[MESH_FRAME_HDR_LEN];
    CU_ASSERT_EQUAL(mesh_frame_header(h, MAX + 1, MAX + 1), MESH_OK);
    mesh_frame_dec d;
    acc a;
    acc_init(&a, 64);
    mesh_frame_dec_init(&d, MAX);
    CU_ASSERT_EQUAL(mesh_frame_feed(&d, h, 3, acc_cb, &a), MESH_OK);
    CU_ASSERT_EQUAL(mesh_frame_partial(&d), 3);
    size_t used = 0;
    CU_ASSERT_EQUAL(mesh_frame_feed_n(&d, h + 3, 1, acc_cb, &a, &used), MESH_ERR_TOO_BIG);
    CU_ASSERT_EQUAL(used, 1);
    CU_ASSERT_PTR_NULL(d.buf);
    CU_ASSERT_EQUAL(a.frames, 0);
    mesh_frame_dec_free(&d);
    free(a.out);
}

/* A hostile 0xFFFFFFFF prefix, with the default and the absolute maximum: refused with
 * nothing allocated (buf stays NULL), and the failure sticks — a valid frame afterwards is
 * not delivered. */
static void test_huge_prefix_allocates_nothing(void)
{
    static const uint8_t ff[4] = {0xff, 0xff, 0xff, 0xff};
    static const uint8_t ok[5] = {0, 0, 0, 1, 'x'};
    size_t maxes[] = {0, MESH_FRAME_ABS_MAX};
    for (size_t i = 0; i < 2; i++) {
        mesh_frame_dec d;
        acc a;
        acc_init(&a, 64);
        mesh_frame_dec_init(&d, maxes[i]);
        CU_ASSERT_EQUAL(mesh_frame_feed(&d, ff, 4, acc_cb, &a), MESH_ERR_TOO_BIG);
        CU_ASSERT_PTR_NULL(d.buf);
        CU_ASSERT_EQUAL(mesh_frame_partial(&d), 0);
        /* sticky */
        CU_ASSERT_EQUAL(mesh_frame_feed(&d, ok, sizeof ok, acc_cb, &a), MESH_ERR_TOO_BIG);
        CU_ASSERT_EQUAL(mesh_frame_feed(&d, NULL, 0, acc_cb, &a), MESH_ERR_TOO_BIG);
        CU_ASSERT_PTR_NULL(d.buf);
        CU_ASSERT_EQUAL(a.frames, 0);
        mesh_frame_dec_free(&d);
        free(a.out);
    }
}

/* Bytes after a valid frame in the same feed as a hostile prefix: the good frame is delivered,
 * then the failure. */
static void test_good_then_bad_in_one_feed(void)
{
    static const uint8_t s[] = {0, 0, 0, 2, 'h', 'i', 0x7f, 0xff, 0xff, 0xff, 'z'};
    mesh_frame_dec d;
    acc a;
    acc_init(&a, 64);
    mesh_frame_dec_init(&d, 0);
    CU_ASSERT_EQUAL(mesh_frame_feed(&d, s, sizeof s, acc_cb, &a), MESH_ERR_TOO_BIG);
    CU_ASSERT_EQUAL(a.frames, 1);
    CU_ASSERT_EQUAL(memcmp(a.out, s, 6), 0);
    CU_ASSERT_PTR_NULL(d.buf);
    mesh_frame_dec_free(&d);
    free(a.out);
}

/* The callback's stop value comes back at once; the bytes after the stopping frame are not
 * consumed, and feeding them later resumes exactly there. Not sticky. */
static void test_callback_stop(void)
{
    size_t n;
    uint8_t *s = make_stream(MIX, NMIX, &n);
    size_t stop_end = 0; /* end of the 4th frame */
    for (size_t i = 0; i < 4; i++)
        stop_end += MESH_FRAME_HDR_LEN + MIX[i];
    for (int split = 0; split < 2; split++) {
        mesh_frame_dec d;
        acc a;
        acc_init(&a, n);
        a.stop_at = 4;
        a.stop_rc = MESH_ERR_PROTOCOL;
        mesh_frame_dec_init(&d, 0);
        size_t used = 0, first = split ? 20 : 0; /* 20: the 4th body is assembled in buf */
        CU_ASSERT_EQUAL(mesh_frame_feed(&d, s, first, acc_cb, &a), MESH_OK);
        if (split)
            CU_ASSERT_PTR_NOT_NULL(d.buf);
        CU_ASSERT_EQUAL(mesh_frame_feed_n(&d, s + first, n - first, acc_cb, &a, &used),
                        MESH_ERR_PROTOCOL);
        CU_ASSERT_EQUAL(a.frames, 4);
        CU_ASSERT_EQUAL(first + used, stop_end);
        CU_ASSERT_EQUAL(mesh_frame_partial(&d), 0);
        /* resume with the rest */
        CU_ASSERT_EQUAL(mesh_frame_feed_n(&d, s + stop_end, n - stop_end, acc_cb, &a, &used),
                        MESH_OK);
        CU_ASSERT_EQUAL(used, n - stop_end);
        CU_ASSERT_EQUAL(a.frames, NMIX);
        CU_ASSERT_EQUAL(a.outlen, n);
        CU_ASSERT_EQUAL(memcmp(a.out, s, n), 0);
        mesh_frame_dec_free(&d);
        free(a.out);
    }
    free(s);
}

/* The stream ends mid-frame: partial() reports the bytes held, prefix included. */
static void test_partial_after_truncation(void)
{
    static const size_t sizes[] = {10, 20};
    size_t n;
    uint8_t *s = make_stream(sizes, 2, &n);
    for (size_t cut = 0; cut <= n; cut++) {
        mesh_frame_dec d;
        acc a;
        acc_init(&a, n);
        mesh_frame_dec_init(&d, 0);
        CU_ASSERT_EQUAL(mesh_frame_feed(&d, s, cut, acc_cb, &a), MESH_OK);
        size_t expect = cut < 14 ? cut : cut == n ? 0 : cut - 14;
        CU_ASSERT_EQUAL(mesh_frame_partial(&d), expect);
        CU_ASSERT_EQUAL(a.frames, (cut >= 14) + (cut == n));
        mesh_frame_dec_free(&d); /* frees a half-assembled body (ASan checks the leak) */
        CU_ASSERT_PTR_NULL(d.buf);
        CU_ASSERT_EQUAL(mesh_frame_partial(&d), 0);
        free(a.out);
    }
    free(s);
}

/* ---- pull mode ------------------------------------------------------------------------- */

/* Read s into the decoder `step` bytes at a time at most (as a TLS read would), asking for
 * chunk when no length is known: the frames come out in order and in place, and no write
 * crosses the end of a frame whose length was known when it was reserved. */
static void pull_stream(const uint8_t *s, size_t n, size_t step, size_t chunk)
{
    mesh_frame_dec d;
    acc a;
    acc_init(&a, n);
    mesh_frame_dec_init(&d, 0);
    mesh_pull_run run;
    mesh_frame_pull_stream(&d, s, n, step, chunk, acc_cb, &a, &run);
    CU_ASSERT_EQUAL(run.rc, MESH_OK);
    CU_ASSERT_FALSE(run.no_room);
    CU_ASSERT_EQUAL(a.outlen, n);
    CU_ASSERT(memcmp(a.out, s, n) == 0);
    CU_ASSERT_EQUAL(run.partial, 0);
    CU_ASSERT_FALSE(run.crossed);
    CU_ASSERT_FALSE(run.outside);
    mesh_frame_trim(&d);
    CU_ASSERT_PTR_NULL(d.buf); /* idle: no memory held */
    mesh_frame_dec_free(&d);
    free(a.out);
}

static void test_pull_reads(void)
{
    static const size_t sizes[] = {0, 1, 600, 70000, 0, 3, 16384, 16380, 2};
    static const size_t steps[] = {1, 3, 4, 5, 100, 16384, 1 << 20};
    static const size_t chunks[] = {0, 1, 16384};
    size_t n;
    uint8_t *s = make_stream(sizes, sizeof sizes / sizeof sizes[0], &n);
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        for (size_t j = 0; j < sizeof chunks / sizeof chunks[0]; j++)
            pull_stream(s, n, steps[i], chunks[j]);
    free(s);
    s = make_stream(MIX, NMIX, &n);
    for (size_t step = 1; step <= n; step += 7)
        pull_stream(s, n, step, 16384);
    free(s);
}

/* Pull mode refuses an oversize prefix once its 4 bytes are held: sticky, memory released. */
static void test_pull_oversize(void)
{
    static const uint8_t s[] = {0, 0, 0, 1, 'a', 0, 0, 0x10, 0x01, 'z'}; /* 1, then 4097 */
    mesh_frame_dec d;
    mesh_frame_dec_init(&d, 4096);
    uint8_t *space = NULL;
    size_t room = 0;
    CU_ASSERT_EQUAL_FATAL(mesh_frame_reserve(&d, 64, &space, &room), MESH_OK);
    CU_ASSERT_EQUAL(room, 64);
    memcpy(space, s, sizeof s);
    mesh_frame_commit(&d, sizeof s);
    const uint8_t *p = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL(mesh_frame_next(&d, &p, &len), MESH_OK);
    CU_ASSERT(len == 1 && p[0] == 'a');
    CU_ASSERT_EQUAL(mesh_frame_next(&d, &p, &len), MESH_ERR_TOO_BIG);
    CU_ASSERT_PTR_NULL(d.buf);
    CU_ASSERT_EQUAL(mesh_frame_partial(&d), 0);
    CU_ASSERT_EQUAL(mesh_frame_next(&d, &p, &len), MESH_ERR_TOO_BIG);
    CU_ASSERT_EQUAL(mesh_frame_reserve(&d, 64, &space, &room), MESH_ERR_TOO_BIG);
    CU_ASSERT_EQUAL(mesh_frame_feed(&d, s, 5, acc_cb, NULL), MESH_ERR_TOO_BIG);
    mesh_frame_dec_free(&d);

    /* a prefix split over two reads: refused when its last byte arrives, not before */
    mesh_frame_dec_init(&d, 4096);
    CU_ASSERT_EQUAL_FATAL(mesh_frame_reserve(&d, 0, &space, &room), MESH_OK);
    CU_ASSERT_EQUAL(room, MESH_FRAME_HDR_LEN); /* chunk 0: just the prefix */
    memcpy(space, s + 5, 3);
    mesh_frame_commit(&d, 3);
    CU_ASSERT_EQUAL(mesh_frame_next(&d, &p, &len), MESH_ERR_AGAIN);
    CU_ASSERT_EQUAL_FATAL(mesh_frame_reserve(&d, 0, &space, &room), MESH_OK);
    CU_ASSERT_EQUAL(room, 1);
    *space = s[8];
    mesh_frame_commit(&d, 1);
    CU_ASSERT_EQUAL(mesh_frame_next(&d, &p, &len), MESH_ERR_TOO_BIG);
    mesh_frame_dec_free(&d);
}

/* Push and pull on one decoder: a frame started by a feed is finished by reads, and the other
 * way round; trim keeps up to `keep` bytes of buffer while idle. */
static void test_push_pull_mixed(void)
{
    static const size_t sizes[] = {10, 20, 5};
    size_t n;
    uint8_t *s = make_stream(sizes, 3, &n); /* frames at 0, 14, 38; n = 47 */
    mesh_frame_dec d;
    acc a;
    acc_init(&a, n);
    mesh_frame_dec_init(&d, 0);
    d.keep = 64;
    CU_ASSERT_EQUAL(mesh_frame_feed(&d, s, 20, acc_cb, &a), MESH_OK); /* 1 frame + 6 bytes */
    CU_ASSERT_EQUAL(a.frames, 1);
    CU_ASSERT_EQUAL(mesh_frame_partial(&d), 6);
    uint8_t *space = NULL;
    size_t room = 0;
    CU_ASSERT_EQUAL_FATAL(mesh_frame_reserve(&d, 1000, &space, &room), MESH_OK);
    CU_ASSERT_EQUAL(room, 18); /* the rest of the 20-byte frame, not the chunk */
    memcpy(space, s + 20, room);
    mesh_frame_commit(&d, room);
    const uint8_t *p = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(mesh_frame_next(&d, &p, &len), MESH_OK);
    CU_ASSERT_EQUAL(acc_cb(&a, p, len), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_frame_reserve(&d, 2, &space, &room), MESH_OK);
    CU_ASSERT_EQUAL(room, 4); /* no length known: at least the prefix */
    memcpy(space, s + 38, 2);
    mesh_frame_commit(&d, 2);
    CU_ASSERT_EQUAL(mesh_frame_feed(&d, s + 40, n - 40, acc_cb, &a), MESH_OK);
    CU_ASSERT_EQUAL(a.frames, 3);
    CU_ASSERT(a.outlen == n && memcmp(a.out, s, n) == 0);
    CU_ASSERT_PTR_NOT_NULL(d.buf); /* kept: 38 bytes <= keep */
    d.keep = 0;
    mesh_frame_trim(&d);
    CU_ASSERT_PTR_NULL(d.buf);
    mesh_frame_dec_free(&d);
    free(a.out);
    free(s);
}

static CU_TestInfo frame_tests[] = {
    {"header bytes and limit", test_header},
    {"init clamps the maximum", test_init_limits},
    {"several frames in one feed", test_many_in_one_feed},
    {"every split point", test_every_split_point},
    {"every pair of split points", test_every_pair_of_splits},
    {"one byte at a time", test_one_byte_at_a_time},
    {"zero-length frame", test_zero_length},
    {"exactly max accepted", test_exactly_max},
    {"max+1 refused on the prefix", test_max_plus_one_refused},
    {"0xFFFFFFFF allocates nothing, sticky", test_huge_prefix_allocates_nothing},
    {"good frame then bad prefix", test_good_then_bad_in_one_feed},
    {"callback stop value and resume", test_callback_stop},
    {"partial after a truncated frame", test_partial_after_truncation},
    {"pull: any read size, frames in place, reads stop at frame ends", test_pull_reads},
    {"pull: oversize prefix refused and sticky", test_pull_oversize},
    {"push and pull mixed on one decoder; trim and keep", test_push_pull_mixed},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"frame", NULL, NULL, NULL, NULL, frame_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
