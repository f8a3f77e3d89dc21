/* test_clienthello.c — the censor's ClientHello parser (sim/clienthello.c) on real hellos
 * produced by OpenSSL, on hellos split across records, and on malformed input. */
#include "mesh_test.h"

#include <openssl/ssl.h>
#include <string.h>

#include "sim/clienthello.h"

/* Produce the first flight of an OpenSSL TLS client: a real ClientHello record. */
static size_t make_hello(uint8_t *out, size_t cap, const char *sni, const unsigned char *alpn,
                         unsigned alpn_len, int max_version)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    if (max_version)
        SSL_CTX_set_max_proto_version(ctx, max_version);
    SSL *ssl = SSL_new(ctx);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, rb, wb);
    if (sni)
        SSL_set_tlsext_host_name(ssl, sni);
    if (alpn)
        SSL_set_alpn_protos(ssl, alpn, alpn_len);
    SSL_set_connect_state(ssl);
    CU_ASSERT_EQUAL(SSL_do_handshake(ssl), -1); /* wants to read the ServerHello */
    int n = BIO_read(wb, out, (int)cap);
    CU_ASSERT_TRUE_FATAL(n > 0);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return (size_t)n;
}

static const unsigned char ALPN2[] = "\x0bmeshara/1.0\x02h2";

static void test_real_hello(void)
{
    uint8_t hello[4096];
    size_t n = make_hello(hello, sizeof hello, "meshara.node", ALPN2, sizeof ALPN2 - 1, 0);
    sim_client_hello h;
    CU_ASSERT_EQUAL_FATAL(sim_client_hello_parse(hello, n, &h), MESH_OK);
    CU_ASSERT_STRING_EQUAL(h.sni, "meshara.node");
    CU_ASSERT_EQUAL_FATAL(h.alpn_count, 2);
    CU_ASSERT_STRING_EQUAL(h.alpn[0], "meshara/1.0");
    CU_ASSERT_STRING_EQUAL(h.alpn[1], "h2");
    CU_ASSERT_TRUE(h.offers_tls13);
    CU_ASSERT_EQUAL(h.legacy_version, 0x0303);
    CU_ASSERT_EQUAL(h.hello_len, n);
    /* JA3: "771,<ciphers>,<exts>,<groups>,<points>"; TLS_AES_128_GCM_SHA256 = 4865 offered,
     * SNI (0) and ALPN (16) extensions present, x25519 (29) offered. */
    CU_ASSERT_EQUAL(strncmp(h.ja3, "771,", 4), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(h.ja3, "4865"));
    int commas = 0;
    for (const char *p = h.ja3; *p; p++)
        commas += *p == ',';
    CU_ASSERT_EQUAL(commas, 4);
    CU_ASSERT_PTR_NOT_NULL(strstr(h.ja3, ",0-") ? h.ja3 : strstr(h.ja3, "-0-"));
    CU_ASSERT_PTR_NOT_NULL(strstr(h.ja3, "-16-"));
    CU_ASSERT_PTR_NOT_NULL(strstr(h.ja3, ",29"));
    CU_ASSERT_EQUAL(strlen(h.ja3_md5), 32);
    CU_ASSERT_FALSE(h.truncated_fields);
}

static void test_fingerprint_differs(void)
{
    uint8_t a[4096], b[4096];
    size_t na = make_hello(a, sizeof a, "example.org", ALPN2, sizeof ALPN2 - 1, 0);
    size_t nb = make_hello(b, sizeof b, "example.org", NULL, 0, TLS1_2_VERSION);
    sim_client_hello ha, hb, ha2;
    CU_ASSERT_EQUAL_FATAL(sim_client_hello_parse(a, na, &ha), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_client_hello_parse(b, nb, &hb), MESH_OK);
    CU_ASSERT_STRING_NOT_EQUAL(ha.ja3_md5, hb.ja3_md5);
    CU_ASSERT_FALSE(hb.offers_tls13);
    CU_ASSERT_EQUAL(hb.alpn_count, 0);
    /* same client configuration, fresh randoms: same fingerprint */
    size_t na2 = make_hello(a, sizeof a, "other.example", ALPN2, sizeof ALPN2 - 1, 0);
    CU_ASSERT_EQUAL_FATAL(sim_client_hello_parse(a, na2, &ha2), MESH_OK);
    CU_ASSERT_STRING_EQUAL(ha.ja3_md5, ha2.ja3_md5);
}

static void test_every_prefix_truncated(void)
{
    uint8_t hello[4096];
    size_t n = make_hello(hello, sizeof hello, "meshara.node", ALPN2, sizeof ALPN2 - 1, 0);
    sim_client_hello h;
    for (size_t i = 0; i < n; i++) {
        int rc = sim_client_hello_parse(hello, i, &h);
        if (rc != MESH_ERR_TRUNCATED)
            fprintf(stderr, "prefix %zu: %s\n", i, mesh_errname(rc));
        CU_ASSERT_EQUAL(rc, MESH_ERR_TRUNCATED);
    }
}

static void test_split_records(void)
{
    uint8_t hello[4096], split[4200];
    size_t n = make_hello(hello, sizeof hello, "split.example", ALPN2, sizeof ALPN2 - 1, 0);
    size_t body = n - 5, first = 40;
    /* record 1: 40 bytes of the handshake; record 2: the rest */
    memcpy(split, hello, 3);
    split[3] = 0;
    split[4] = (uint8_t)first;
    memcpy(split + 5, hello + 5, first);
    memcpy(split + 5 + first, hello, 3);
    split[5 + first + 3] = (uint8_t)((body - first) >> 8);
    split[5 + first + 4] = (uint8_t)(body - first);
    memcpy(split + 10 + first, hello + 5 + first, body - first);
    sim_client_hello h;
    CU_ASSERT_EQUAL_FATAL(sim_client_hello_parse(split, n + 5, &h), MESH_OK);
    CU_ASSERT_STRING_EQUAL(h.sni, "split.example");
    CU_ASSERT_EQUAL(h.hello_len, n + 5);
}

static void test_malformed(void)
{
    sim_client_hello h;
    const uint8_t http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    CU_ASSERT_EQUAL(sim_client_hello_parse(http, sizeof http - 1, &h), MESH_ERR_MALFORMED);
    /* a ServerHello-type handshake in a handshake record is not a ClientHello */
    const uint8_t sh[] = {0x16, 0x03, 0x03, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00};
    CU_ASSERT_EQUAL(sim_client_hello_parse(sh, sizeof sh, &h), MESH_ERR_MALFORMED);

    uint8_t hello[4096];
    size_t n = make_hello(hello, sizeof hello, "meshara.node", ALPN2, sizeof ALPN2 - 1, 0);
    /* session id length pointing past the end of the hello */
    uint8_t bad[4096];
    memcpy(bad, hello, n);
    bad[5 + 4 + 2 + 32] = 0xff;
    CU_ASSERT_EQUAL(sim_client_hello_parse(bad, n, &h), MESH_ERR_MALFORMED);
    /* handshake length larger than the limit */
    memcpy(bad, hello, n);
    bad[6] = 0x01;
    CU_ASSERT_EQUAL(sim_client_hello_parse(bad, n, &h), MESH_ERR_TOO_BIG);
}

static CU_TestInfo tests[] = {
    {"real OpenSSL hello: SNI, ALPN, TLS 1.3, JA3", test_real_hello},
    {"JA3 tells client configurations apart", test_fingerprint_differs},
    {"every prefix asks for more bytes", test_every_prefix_truncated},
    {"hello split across two records", test_split_records},
    {"malformed input rejected", test_malformed},
    CU_TEST_INFO_NULL,
};
static CU_SuiteInfo suites[] = {{"clienthello", NULL, NULL, NULL, NULL, tests}, CU_SUITE_INFO_NULL};

int main(void)
{
    return mesh_test_main(suites);
}
