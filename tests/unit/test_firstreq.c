/* test_firstreq.c — the first-request classifier (node/core/firstreq.c) on the flights of
 * tests/fuzz/corpus/fuzz_firstreq (gen_firstreq_corpus.py): the hello-shaped flight is a hello
 * when its body verifies and the decoy's when it does not; every prefix of it waits; every
 * other client's first bytes, and every variant with one thing wrong, go to the decoy at once;
 * SETTINGS frames are counted (the server acks each before the verdict). */
#include "mesh_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/firstreq.h"

static uint8_t *load(const char *name, size_t *len)
{
    const char *src = getenv("MESH_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fuzz/corpus/fuzz_firstreq/%s", src ? src : ".", name);
    FILE *f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    uint8_t *b = malloc(16384);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    *len = fread(b, 1, 16384, f);
    fclose(f);
    return b;
}

static int verdicts; /* verify calls */

static int verify_yes(void *ud, const uint8_t *body, size_t len)
{
    (void)ud;
    verdicts++;
    /* the body handed over is the request's, whole: a 256-byte padded block */
    return len == 256 && body[0] == 0 && body[1] == 0 ? MESH_OK : MESH_ERR_MALFORMED;
}

static int verify_no(void *ud, const uint8_t *body, size_t len)
{
    (void)ud;
    (void)body;
    (void)len;
    verdicts++;
    return MESH_ERR_BAD_SIGNATURE;
}

static mesh_firstreq_result run(const uint8_t *b, size_t n, mesh_firstreq_verify_fn v)
{
    mesh_firstreq_result r;
    memset(&r, 0xAB, sizeof r);
    CU_ASSERT_EQUAL_FATAL(mesh_firstreq_classify(b, n, 1024, v, NULL, &r), MESH_OK);
    return r;
}

static void test_hello(void)
{
    static const char *const ok[] = {"hello", "hello_two_data", "hello_padded_data"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t n;
        uint8_t *b = load(ok[i], &n);
        verdicts = 0;
        mesh_firstreq_result r = run(b, n, verify_yes);
        CU_ASSERT_EQUAL(r.verdict, MESH_FIRSTREQ_HELLO);
        CU_ASSERT_EQUAL(verdicts, 1);
        CU_ASSERT_EQUAL(r.settings, 1);
        CU_ASSERT_STRING_EQUAL(r.why, "");
        /* a hello that does not verify (replayed from another connection, another key...) */
        r = run(b, n, verify_no);
        CU_ASSERT_EQUAL(r.verdict, MESH_FIRSTREQ_OTHER);
        CU_ASSERT_STRING_EQUAL(r.why, "hello does not verify");
        /* every prefix waits, and asks nothing of the verifier */
        verdicts = 0;
        unsigned early = 0;
        for (size_t k = 0; k < n; k++)
            early += run(b, k, verify_yes).verdict != MESH_FIRSTREQ_MORE;
        CU_ASSERT_EQUAL(early, 0);
        CU_ASSERT_EQUAL(verdicts, 0);
        free(b);
    }
}

static void test_others(void)
{
    static const struct {
        const char *name, *why;
    } cases[] = {
        {"http11_get", "not an HTTP/2 connection preface"},
        {"garbage", "not an HTTP/2 connection preface"},
        {"curl_get", "request without a body"},
        {"hello_ping_between", "frame type a hello flight never has"},
        {"hello_continuation", "CONTINUATION"},
        {"hello_stream3", "HEADERS not opening stream 1"},
        {"hello_bad_length", "body length is not content-length"},
        {"settings_push2", "bad SETTINGS"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        uint8_t *b = load(cases[i].name, &n);
        verdicts = 0;
        mesh_firstreq_result r = run(b, n, verify_yes);
        CU_ASSERT_EQUAL(r.verdict, MESH_FIRSTREQ_OTHER);
        if (strcmp(r.why, cases[i].why) != 0)
            fprintf(stderr, "%s: %s\n", cases[i].name, r.why);
        CU_ASSERT_STRING_EQUAL(r.why, cases[i].why);
        CU_ASSERT_EQUAL(verdicts, 0); /* decided before any body was checked */
        free(b);
    }
    /* HTTP/1.1 is told from its first byte */
    CU_ASSERT_EQUAL(run((const uint8_t *)"G", 1, verify_yes).verdict, MESH_FIRSTREQ_OTHER);
}

static void test_waits_and_bounds(void)
{
    size_t n;
    uint8_t *b = load("hello_half", &n);
    CU_ASSERT_EQUAL(run(b, n, verify_yes).verdict, MESH_FIRSTREQ_MORE);
    free(b);
    b = load("preface_only", &n);
    mesh_firstreq_result r = run(b, n, verify_yes);
    CU_ASSERT_EQUAL(r.verdict, MESH_FIRSTREQ_MORE);
    CU_ASSERT_EQUAL(r.settings, 0);
    CU_ASSERT_EQUAL(run(NULL, 0, verify_yes).verdict, MESH_FIRSTREQ_MORE);
    /* SETTINGS ACKs and WINDOW_UPDATEs forever: no hello within the bound */
    uint8_t *many = calloc(1, MESH_FIRSTREQ_MAX_BYTES + 16);
    CU_ASSERT_PTR_NOT_NULL_FATAL(many);
    memcpy(many, b, 24);
    for (size_t off = 24; off + 9 <= MESH_FIRSTREQ_MAX_BYTES + 16; off += 9)
        many[off + 3] = 4, many[off + 4] = 1; /* empty SETTINGS ACK */
    CU_ASSERT_EQUAL(run(many, MESH_FIRSTREQ_MAX_BYTES - 1, verify_yes).verdict, MESH_FIRSTREQ_MORE);
    r = run(many, MESH_FIRSTREQ_MAX_BYTES + 15, verify_yes);
    CU_ASSERT_EQUAL(r.verdict, MESH_FIRSTREQ_OTHER);
    CU_ASSERT_STRING_EQUAL(r.why, "no hello within the first bytes");
    free(many);
    free(b);
    mesh_firstreq_result keep = {.verdict = MESH_FIRSTREQ_HELLO};
    CU_ASSERT_EQUAL(mesh_firstreq_classify(NULL, 1, 1024, verify_yes, NULL, &keep), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_firstreq_classify((const uint8_t *)"x", 1, 0, verify_yes, NULL, &keep),
                    MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_firstreq_classify((const uint8_t *)"x", 1, 10, NULL, NULL, &keep),
                    MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(keep.verdict, MESH_FIRSTREQ_HELLO);
}

static CU_TestInfo firstreq_tests[] = {
    {"hello flight: verified, refused, every prefix waits", test_hello},
    {"other first bytes go to the decoy at once", test_others},
    {"waiting, the byte bound, bad arguments", test_waits_and_bounds},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"firstreq", NULL, NULL, NULL, NULL, firstreq_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
