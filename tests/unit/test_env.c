/* test_env.c — address text forms, error names and env helpers (node/core/env.c, error.c). */
#include "mesh_test.h"

#include <string.h>

static void roundtrip(const char *in, const char *expect)
{
    mesh_addr a;
    char buf[MESH_ADDR_STRLEN];
    CU_ASSERT_EQUAL_FATAL(mesh_addr_parse(&a, in), MESH_OK);
    CU_ASSERT_STRING_EQUAL(mesh_addr_format(&a, buf, sizeof buf), expect);
}

static void test_addr_parse_format(void)
{
    roundtrip("127.0.0.1:8443", "127.0.0.1:8443");
    roundtrip("0.0.0.0:0", "0.0.0.0:0");
    roundtrip("[::1]:443", "[::1]:443");
    roundtrip("[::]:1", "[::]:1");
    roundtrip("[2001:db8::1:0:0:1]:80", "[2001:db8::1:0:0:1]:80");
    roundtrip("[fe80:0:0:0:1:2:3:4]:9", "[fe80::1:2:3:4]:9");
    roundtrip("[1:2:3:4:5:6:7:8]:9", "[1:2:3:4:5:6:7:8]:9");
    roundtrip("[1::]:9", "[1::]:9");
    roundtrip("[::ffff:10.0.0.1]:5", "[::ffff:a00:1]:5");
}

static void test_addr_reject(void)
{
    const char *bad[] = {
        "",           "1.2.3.4",   "1.2.3:80", "256.1.1.1:1", "1.2.3.4:65536",         "1.2.3.4:",
        "01.2.3.4:1", "[::1]",     "[::1:80",  "[1:::2]:1",   "[1:2:3:4:5:6:7:8:9]:1", "[:1]:1",
        "a.b.c.d:1",  "1.2.3.4:8x"};
    mesh_addr a;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = mesh_addr_parse(&a, bad[i]);
        if (rc != MESH_ERR_INVAL)
            fprintf(stderr, "accepted bad address '%s'\n", bad[i]);
        CU_ASSERT_EQUAL(rc, MESH_ERR_INVAL);
    }
}

static void test_addr_equal_v4(void)
{
    mesh_addr a = mesh_addr_v4(0x7f000001, 80), b;
    CU_ASSERT_EQUAL(mesh_addr_parse(&b, "127.0.0.1:80"), MESH_OK);
    CU_ASSERT_TRUE(mesh_addr_equal(&a, &b));
    b.port = 81;
    CU_ASSERT_FALSE(mesh_addr_equal(&a, &b));
}

static void test_errors_named(void)
{
    CU_ASSERT_STRING_EQUAL(mesh_errname(MESH_ERR_TIMEOUT), "MESH_ERR_TIMEOUT");
    CU_ASSERT_STRING_EQUAL(mesh_errname(12345), "MESH_ERR_UNKNOWN");
    for (int c = -599; c <= 0; c++)
        CU_ASSERT_PTR_NOT_NULL(mesh_strerror(c));
}

static void test_random_below(void)
{
    mesh_test_env t;
    mesh_test_env_init(&t, 42);
    unsigned hist[7] = {0};
    for (int i = 0; i < 7000; i++) {
        uint64_t v = mesh_env_random_below(&t.env, 7);
        CU_ASSERT_TRUE_FATAL(v < 7);
        hist[v]++;
    }
    for (int i = 0; i < 7; i++)
        CU_ASSERT_TRUE(hist[i] > 800 && hist[i] < 1200);
    CU_ASSERT_EQUAL(mesh_env_random_below(&t.env, 0), 0);
}

static CU_TestInfo tests[] = {
    {"addr parse/format round trip", test_addr_parse_format},
    {"addr rejects bad text", test_addr_reject},
    {"addr equality", test_addr_equal_v4},
    {"error names", test_errors_named},
    {"random_below is bounded and spread", test_random_below},
    CU_TEST_INFO_NULL,
};
static CU_SuiteInfo suites[] = {{"env", NULL, NULL, NULL, NULL, tests}, CU_SUITE_INFO_NULL};

int main(void)
{
    return mesh_test_main(suites);
}
