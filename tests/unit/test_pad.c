/* test_pad.c — size padding (node/core/pad.c): every length round-trips into the right
 * bucket, and every malformed block is refused. */
#include "mesh_test.h"

#include <stdlib.h>
#include <string.h>

#include "core/pad.h"

enum { ALL_MAX = 70000 }; /* every length 0..ALL_MAX is checked */

/* The bucket for a payload of len bytes, computed independently of pad.c. */
static size_t ref_bucket(size_t len)
{
    static const size_t small[] = {256, 512, 1024, 2048, 4096, 8192, 16384};
    size_t need = len + 4;
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++)
        if (need <= small[i])
            return small[i];
    return (need / 16384 + (need % 16384 != 0)) * 16384;
}

static void test_sizes(void)
{
    CU_ASSERT_EQUAL(mesh_pad_size(0), 256);
    CU_ASSERT_EQUAL(mesh_pad_size(252), 256);
    CU_ASSERT_EQUAL(mesh_pad_size(253), 512);
    CU_ASSERT_EQUAL(mesh_pad_size(16380), 16384);
    CU_ASSERT_EQUAL(mesh_pad_size(16381), 32768);
    CU_ASSERT_EQUAL(mesh_pad_size(32764), 32768);
    CU_ASSERT_EQUAL(mesh_pad_size(32765), 49152);
    CU_ASSERT_EQUAL(mesh_pad_size(MESH_PAD_MAX_PAYLOAD), (size_t)64 << 20);
    CU_ASSERT_EQUAL(mesh_pad_size((size_t)MESH_PAD_MAX_PAYLOAD + 1), 0);
    CU_ASSERT_EQUAL(mesh_pad_size(SIZE_MAX), 0);
}

/* Every length 0..ALL_MAX: the right bucket, the exact layout, and a round trip that points
 * into the block. */
static void test_every_length_round_trips(void)
{
    size_t cap = ref_bucket(ALL_MAX);
    uint8_t *src = malloc(ALL_MAX), *blk = malloc(cap);
    CU_ASSERT_FATAL(src && blk);
    for (size_t i = 0; i < ALL_MAX; i++)
        src[i] = (uint8_t)(i * 13 + 5) | 1; /* never zero: a lost byte cannot hide as padding */
    unsigned bad = 0;
    for (size_t len = 0; len <= ALL_MAX; len++) {
        size_t want = ref_bucket(len);
        memset(blk, 0xAA, want); /* the encoder must write every byte of the block */
        long n = mesh_pad_encode(src, len, blk, cap);
        const uint8_t *p = NULL;
        size_t plen = 0;
        int ok = n == (long)want && mesh_pad_size(len) == want && blk[0] == (uint8_t)(len >> 24) &&
                 blk[1] == (uint8_t)(len >> 16) && blk[2] == (uint8_t)(len >> 8) &&
                 blk[3] == (uint8_t)len && mesh_pad_decode(blk, want, &p, &plen) == MESH_OK &&
                 p == blk + 4 && plen == len && memcmp(p, src, len) == 0;
        for (size_t i = 4 + len; ok && i < want; i++)
            ok = blk[i] == 0;
        if (!ok && bad++ < 5)
            fprintf(stderr, "length %zu: encode %ld, want %zu\n", len, n, want);
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(src);
    free(blk);
}

static void test_encode_errors(void)
{
    uint8_t out[512];
    uint8_t one = 1;
    CU_ASSERT_EQUAL(mesh_pad_encode(&one, 1, out, 255), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_pad_encode(&one, 1, out, 256), 256);
    static const uint8_t big[253];
    CU_ASSERT_EQUAL(mesh_pad_encode(big, 253, out, 511), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_pad_encode(big, 253, out, sizeof out), 512);
    CU_ASSERT_EQUAL(mesh_pad_encode(NULL, 1, out, sizeof out), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_pad_encode(NULL, 0, out, sizeof out), 256);
    CU_ASSERT_EQUAL(mesh_pad_encode(&one, 1, NULL, 0), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_pad_encode(&one, (size_t)MESH_PAD_MAX_PAYLOAD + 1, out, sizeof out),
                    MESH_ERR_TOO_BIG);
}

/* A valid block for len payload bytes in a buffer with room for extra bytes. */
static size_t make_block(uint8_t *buf, size_t cap, size_t len)
{
    static uint8_t src[40000];
    memset(src, 'm', sizeof src);
    long n = mesh_pad_encode(src, len, buf, cap);
    CU_ASSERT_FATAL(n > 0);
    return (size_t)n;
}

static void put_len(uint8_t *b, uint32_t l)
{
    b[0] = (uint8_t)(l >> 24);
    b[1] = (uint8_t)(l >> 16);
    b[2] = (uint8_t)(l >> 8);
    b[3] = (uint8_t)l;
}

static int dec(const uint8_t *b, size_t n)
{
    const uint8_t *p = NULL;
    size_t plen = 0;
    int rc = mesh_pad_decode(b, n, &p, &plen);
    if (rc != MESH_OK)
        CU_ASSERT_PTR_NULL(p); /* outputs untouched on failure */
    return rc;
}

static void test_truncated_header(void)
{
    static const uint8_t b[4] = {0, 0, 0, 0};
    for (size_t n = 0; n < 4; n++)
        CU_ASSERT_EQUAL(dec(b, n), MESH_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(dec(NULL, 0), MESH_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(dec(b, 4), MESH_ERR_MALFORMED); /* 4 bytes is no bucket */
}

static void test_wrong_total_size(void)
{
    static uint8_t b[70000];
    size_t n = make_block(b, sizeof b, 10);
    CU_ASSERT_EQUAL(n, 256);
    CU_ASSERT_EQUAL(dec(b, n), MESH_OK);
    CU_ASSERT_EQUAL(dec(b, n - 1), MESH_ERR_MALFORMED); /* cut short */
    CU_ASSERT_EQUAL(dec(b, n + 1), MESH_ERR_MALFORMED); /* one extra (zero) byte */
    CU_ASSERT_EQUAL(dec(b, 300), MESH_ERR_MALFORMED);   /* no bucket */
    CU_ASSERT_EQUAL(dec(b, 16384 + 256), MESH_ERR_MALFORMED);
    /* every non-bucket total up to 3 steps, with a length that fits it */
    memset(b, 0, sizeof b);
    unsigned accepted = 0;
    for (size_t t = 4; t <= 3 * 16384; t++) {
        put_len(b, 0);
        accepted += dec(b, t) == MESH_OK;
    }
    CU_ASSERT_EQUAL(accepted, 1); /* only 256 is the bucket for an empty payload */
    n = make_block(b, sizeof b, 20000);
    CU_ASSERT_EQUAL(n, 32768);
    CU_ASSERT_EQUAL(dec(b, n), MESH_OK);
    CU_ASSERT_EQUAL(dec(b, n - 16384), MESH_ERR_MALFORMED);
}

static void test_length_too_big(void)
{
    static uint8_t b[1024];
    size_t n = make_block(b, sizeof b, 100);
    put_len(b, 253); /* 253 + 4 > 256 */
    CU_ASSERT_EQUAL(dec(b, n), MESH_ERR_MALFORMED);
    put_len(b, 256);
    CU_ASSERT_EQUAL(dec(b, n), MESH_ERR_MALFORMED);
    put_len(b, 0xFFFFFFFFu);
    CU_ASSERT_EQUAL(dec(b, n), MESH_ERR_MALFORMED);
    put_len(b, 0x80000000u);
    CU_ASSERT_EQUAL(dec(b, n), MESH_ERR_MALFORMED);
    put_len(b, 252); /* the largest that fits: payload then no padding */
    memset(b + 4, 'x', 252);
    CU_ASSERT_EQUAL(dec(b, n), MESH_OK);
}

static void test_non_minimal_bucket(void)
{
    static uint8_t b[40000];
    memset(b, 0, sizeof b);
    /* l fits a smaller bucket than the block's total: a second encoding, refused */
    struct {
        uint32_t l;
        size_t total;
    } cases[] = {{0, 512}, {10, 512}, {252, 512}, {253, 1024}, {16380, 32768}, {0, 32768}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        put_len(b, cases[i].l);
        CU_ASSERT_EQUAL(dec(b, cases[i].total), MESH_ERR_MALFORMED);
        CU_ASSERT_EQUAL(dec(b, mesh_pad_size(cases[i].l)), MESH_OK);
    }
}

static void test_nonzero_padding(void)
{
    static uint8_t b[1024];
    size_t n = make_block(b, sizeof b, 100);
    CU_ASSERT_EQUAL(n, 256);
    unsigned refused = 0;
    for (size_t i = 104; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t)(1u << bit);
            refused += dec(b, n) == MESH_ERR_MALFORMED;
            b[i] ^= (uint8_t)(1u << bit);
        }
    }
    CU_ASSERT_EQUAL(refused, (n - 104) * 8);
    CU_ASSERT_EQUAL(dec(b, n), MESH_OK);
    /* payload bytes are the caller's business: changing one still decodes */
    b[50] ^= 0xff;
    CU_ASSERT_EQUAL(dec(b, n), MESH_OK);
}

static CU_TestInfo pad_tests[] = {
    {"bucket sizes", test_sizes},
    {"every length 0..70000 round-trips", test_every_length_round_trips},
    {"encode errors", test_encode_errors},
    {"truncated header", test_truncated_header},
    {"wrong total size", test_wrong_total_size},
    {"length too big for the block", test_length_too_big},
    {"non-minimal bucket", test_non_minimal_bucket},
    {"non-zero padding byte", test_nonzero_padding},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"pad", NULL, NULL, NULL, NULL, pad_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
