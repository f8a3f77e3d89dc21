/* fuzz_tlscert.c — the web certificate's decoder (mesh_tls_cert_check: what meshara-node runs on
 * FILE.crt / FILE.crt.key and on --tls-cert / --tls-key before a node gets them) must refuse
 * every malformed pair without crashing, and what it accepts a node must accept too: the same
 * PEM given to a web-profile TLS context (which reads it again, in its own library context)
 * makes a context whose certificate is the chain's first. Input: the certificate text, a NUL,
 * the key text (no NUL: the key text is empty). Seed corpus: a generated ECDSA pair and an
 * RSA one (tests/fuzz/corpus/fuzz_tlscert). */
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/identity.h"
#include "core/tls.h"
#include "mesh_test.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

/* The clock never moves (the node's certificate validity is relative to its epoch); randomness
 * is mesh_test_env's seeded xorshift. */
static mesh_test_env E;
static mesh_tls_lib *LIB;
static mesh_identity *ID;

/* The first certificate of the text, DER-compared with the context's. */
static void same_first_cert(const char *pem, size_t len, const mesh_tls_ctx *ctx)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    CHECK(x);
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    const uint8_t *got = NULL;
    size_t got_len = 0;
    CHECK(n > 0 && mesh_tls_ctx_cert_der(ctx, &got, &got_len) == MESH_OK);
    CHECK(got_len == (size_t)n && memcmp(got, der, got_len) == 0);
    OPENSSL_free(der);
    X509_free(x);
    BIO_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!LIB) {
        static const uint8_t seed[MESH_SEED_LEN] = {1};
        mesh_test_env_init(&E, 0);
        CHECK(mesh_tls_lib_new(&LIB, &E.env) == MESH_OK);
        CHECK(mesh_identity_from_seed(&ID, seed) == MESH_OK);
    }
    const uint8_t *nul = memchr(data, 0, size);
    size_t cert_len = nul ? (size_t)(nul - data) : size;
    const char *key = nul ? (const char *)nul + 1 : "";
    size_t key_len = nul ? size - cert_len - 1 : 0;
    mesh_tls_cert_info info = {.type = 99};
    int rc = mesh_tls_cert_check((const char *)data, cert_len, key, key_len, &info);
    if (rc != MESH_OK) {
        CHECK(rc == MESH_ERR_CORRUPT || rc == MESH_ERR_INVAL || rc == MESH_ERR_NOMEM);
        CHECK(info.type == 99); /* untouched */
        return 0;
    }
    CHECK(info.chain_len >= 1 && info.type >= -1 && info.type <= MESH_CERT_RSA_2048);
    mesh_tls_cfg cfg = {.lib = LIB,
                        .cert_pem = (const char *)data,
                        .cert_pem_len = cert_len,
                        .key_pem = key,
                        .key_pem_len = key_len};
    mesh_tls_ctx *ctx = NULL;
    rc = mesh_tls_ctx_new(&ctx, &E.env, ID, &cfg);
    /* an exotic key OpenSSL parses but TLS cannot use is refused by the SSL_CTX, named */
    CHECK(rc == MESH_OK || rc == MESH_ERR_TLS);
    if (rc == MESH_OK)
        same_first_cert((const char *)data, cert_len, ctx);
    mesh_tls_ctx_free(ctx);
    return 0;
}
