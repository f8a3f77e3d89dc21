/* test_tls_cert.c — the web profile's certificate (tls_cert.c; meshara.h's mesh_tls_cert_*):
 * made in memory as `openssl req -x509` makes one (every field compared with what that
 * command wrote for the same name, read back by OpenSSL), ECDSA P-256 by default and RSA-2048
 * when asked, never the identity key, named after the host (never an address), dated from
 * the epoch it is given, reproducible from the seed; generated as PEM, checked, loaded as a
 * chain that a TLS client then receives as given; damaged, mismatched and encrypted files
 * refused without a prompt. */
#include "mesh_test.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "core/tls.h"

enum {
    DAY = 86400,
    EPOCH = 1700000000, /* 2023-11-14T22:13:20Z */
    SERIAL_MAX = 20,    /* bytes: openssl req's 159 random bits */
};

/* Written by `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365
 * -subj /CN=localhost -addext subjectAltName=DNS:localhost` (OpenSSL 3.0.19): the
 * extensions a certificate made here must carry, in this order, with this criticality. */
static const struct {
    int nid, critical;
} REQ_EXTS[] = {{NID_subject_key_identifier, 0},
                {NID_authority_key_identifier, 0},
                {NID_basic_constraints, 1},
                {NID_subject_alt_name, 0}};
enum { REQ_NEXTS = sizeof REQ_EXTS / sizeof REQ_EXTS[0] };

typedef struct made {
    mesh_test_env env;
    mesh_identity *id;
    mesh_tls_ctx *ctx;
    X509 *x; /* the context's certificate, parsed back */
} made;

static int made_init(made *m, uint64_t seed, const mesh_tls_cfg *cfg)
{
    memset(m, 0, sizeof *m);
    mesh_test_env_init(&m->env, seed);
    CU_ASSERT_EQUAL_FATAL(mesh_identity_generate(&m->id, &m->env.env), MESH_OK);
    int rc = mesh_tls_ctx_new(&m->ctx, &m->env.env, m->id, cfg);
    if (rc != MESH_OK)
        return rc;
    const uint8_t *der = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(mesh_tls_ctx_cert_der(m->ctx, &der, &len), MESH_OK);
    m->x = d2i_X509(NULL, &der, (long)len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m->x);
    return MESH_OK;
}

static void made_free(made *m)
{
    X509_free(m->x);
    mesh_tls_ctx_free(m->ctx);
    mesh_identity_free(m->id);
}

/* The single DNS name of the SAN and the CN of x must both be name. */
static void check_names(X509 *x, const char *name)
{
    char cn[256] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
    CU_ASSERT_STRING_EQUAL(cn, name);
    CU_ASSERT_EQUAL(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
    GENERAL_NAMES *san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    CU_ASSERT_FATAL(san && sk_GENERAL_NAME_num(san) == 1);
    int type = 0;
    ASN1_STRING *dns = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(san, 0), &type);
    CU_ASSERT_EQUAL(type, GEN_DNS);
    CU_ASSERT_EQUAL((size_t)ASN1_STRING_length(dns), strlen(name));
    CU_ASSERT(memcmp(ASN1_STRING_get0_data(dns), name, strlen(name)) == 0);
    GENERAL_NAMES_free(san);
}

/* Seconds from the Unix epoch to t. */
static long long unix_of(const ASN1_TIME *t)
{
    ASN1_TIME *zero = ASN1_TIME_set(NULL, 0);
    int days = 0, secs = 0;
    CU_ASSERT_FATAL(zero && ASN1_TIME_diff(&days, &secs, zero, t));
    ASN1_TIME_free(zero);
    return (long long)days * DAY + secs;
}

static void test_like_openssl_req(void)
{
    made m;
    CU_ASSERT_EQUAL_FATAL(made_init(&m, 1, &(mesh_tls_cfg){.unix_epoch = EPOCH}), MESH_OK);
    X509 *x = m.x;
    CU_ASSERT_EQUAL(X509_get_version(x), X509_VERSION_3);
    const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
    CU_ASSERT(ASN1_STRING_length(serial) >= SERIAL_MAX - 2 &&
              ASN1_STRING_length(serial) <= SERIAL_MAX);
    CU_ASSERT_EQUAL(ASN1_STRING_type(serial), V_ASN1_INTEGER); /* positive */
    CU_ASSERT_EQUAL(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
    EVP_PKEY *k = X509_get0_pubkey(x);
    CU_ASSERT(EVP_PKEY_is_a(k, "EC") && EVP_PKEY_get_bits(k) == 256);
    char group[32] = "";
    CU_ASSERT(EVP_PKEY_get_group_name(k, group, sizeof group, NULL) == 1);
    CU_ASSERT_STRING_EQUAL(group, "prime256v1");
    CU_ASSERT_EQUAL_FATAL(X509_get_ext_count(x), REQ_NEXTS);
    for (int i = 0; i < REQ_NEXTS; i++) {
        X509_EXTENSION *e = X509_get_ext(x, i);
        CU_ASSERT_EQUAL(OBJ_obj2nid(X509_EXTENSION_get_object(e)), REQ_EXTS[i].nid);
        CU_ASSERT_EQUAL(X509_EXTENSION_get_critical(e), REQ_EXTS[i].critical);
    }
    CU_ASSERT(X509_check_ca(x) >= 1);
    CU_ASSERT_EQUAL(X509_verify(x, k), 1); /* self-signed */
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);
    const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(x);
    CU_ASSERT_FATAL(ski && aki);
    CU_ASSERT_EQUAL(ASN1_OCTET_STRING_cmp(ski, aki), 0);
    check_names(x, MESH_TLS_WEB_NO_HOST);
    CU_ASSERT_EQUAL(unix_of(X509_get0_notBefore(x)), EPOCH);
    CU_ASSERT_EQUAL(unix_of(X509_get0_notAfter(x)), EPOCH + (long long)MESH_TLS_CERT_DAYS * DAY);
    CU_ASSERT_EQUAL(ASN1_STRING_type(X509_get0_notBefore(x)), V_ASN1_UTCTIME);
    /* the identity key is Ed25519: the certificate's is another */
    EVP_PKEY *idk = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_identity_pkey_in(m.id, NULL, &idk), MESH_OK);
    CU_ASSERT(EVP_PKEY_is_a(idk, "ED25519"));
    CU_ASSERT(EVP_PKEY_eq(idk, k) != 1);
    EVP_PKEY_free(idk);
    made_free(&m);
}

static void test_names_and_type(void)
{
    made m;
    CU_ASSERT_EQUAL_FATAL(made_init(&m, 1, &(mesh_tls_cfg){.sni = "www.example.org"}), MESH_OK);
    check_names(m.x, "www.example.org");
    /* no clock: the default epoch */
    CU_ASSERT_EQUAL(unix_of(X509_get0_notBefore(m.x)), (long long)MESH_NODE_DEFAULT_EPOCH);
    made_free(&m);
    CU_ASSERT_EQUAL_FATAL(made_init(&m, 1, &(mesh_tls_cfg){.sni = "192.0.2.1"}), MESH_OK);
    check_names(m.x, MESH_TLS_WEB_NO_HOST); /* an address is not a certificate's name */
    made_free(&m);
    CU_ASSERT_EQUAL_FATAL(made_init(&m, 1, &(mesh_tls_cfg){.cert_type = MESH_CERT_RSA_2048}),
                          MESH_OK);
    EVP_PKEY *k = X509_get0_pubkey(m.x);
    CU_ASSERT(EVP_PKEY_is_a(k, "RSA") && EVP_PKEY_get_bits(k) == 2048);
    CU_ASSERT_EQUAL(X509_get_signature_nid(m.x), NID_sha256WithRSAEncryption);
    made_free(&m);
    CU_ASSERT_EQUAL(made_init(&m, 1, &(mesh_tls_cfg){.cert_type = 2}), MESH_ERR_INVAL);
    made_free(&m);
}

static void test_reproducible(void)
{
    made a, b, c;
    CU_ASSERT_EQUAL_FATAL(made_init(&a, 9, NULL), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(made_init(&b, 9, NULL), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(made_init(&c, 10, NULL), MESH_OK);
    CU_ASSERT_EQUAL(X509_cmp(a.x, b.x), 0);
    CU_ASSERT_NOT_EQUAL(X509_cmp(a.x, c.x), 0);
    CU_ASSERT_NOT_EQUAL(ASN1_INTEGER_cmp(X509_get0_serialNumber(a.x), X509_get0_serialNumber(c.x)),
                        0);
    made_free(&a);
    made_free(&b);
    made_free(&c);
}

/* ---- PEM: generated, checked, loaded -------------------------------------------------------- */

typedef struct pem {
    char *cert, *key;
    size_t cert_len, key_len;
} pem;

static void pem_make(pem *p, uint64_t seed, int type, const char *host)
{
    mesh_test_env e;
    mesh_test_env_init(&e, seed);
    CU_ASSERT_EQUAL_FATAL(mesh_tls_cert_generate(&e.env, type, host, EPOCH, &p->cert, &p->cert_len,
                                                 &p->key, &p->key_len),
                          MESH_OK);
    CU_ASSERT_EQUAL(strlen(p->cert), p->cert_len);
    CU_ASSERT(strncmp(p->key, "-----BEGIN PRIVATE KEY-----\n", 28) == 0); /* PKCS#8 */
}

static void pem_free(pem *p)
{
    mesh_tls_pem_free(p->cert, p->cert_len);
    mesh_tls_pem_free(p->key, p->key_len);
}

static void buf_out(void *ud, const uint8_t *data, size_t len)
{
    mesh_test_buf_add(ud, data, len);
}

/* A TLS client's view of a server made from cfg: the chain it was sent. */
static STACK_OF(X509) * served_chain(const mesh_tls_cfg *cfg, X509 **leaf)
{
    made m;
    CU_ASSERT_EQUAL_FATAL(made_init(&m, 3, cfg), MESH_OK);
    mesh_test_buf out = {0};
    mesh_tls *t = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_tls_new(&t, m.ctx, 1, NULL, buf_out, &out), MESH_OK);
    SSL_CTX *cc = SSL_CTX_new(TLS_client_method());
    SSL *c = SSL_new(cc);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(rb, -1);
    SSL_set_bio(c, rb, wb);
    SSL_set_connect_state(c);
    for (int i = 0; i < 8; i++) {
        SSL_do_handshake(c);
        char *d = NULL;
        long n = BIO_get_mem_data(wb, &d);
        if (n > 0)
            mesh_tls_feed(t, (const uint8_t *)d, (size_t)n);
        (void)BIO_reset(wb);
        (void)mesh_tls_handshake(t);
        BIO_write(rb, out.b, (int)out.len);
        out.len = 0;
    }
    CU_ASSERT_EQUAL(mesh_tls_is_done(t), 1);
    STACK_OF(X509) *got = X509_chain_up_ref(SSL_get_peer_cert_chain(c));
    *leaf = SSL_get1_peer_certificate(c);
    SSL_free(c);
    SSL_CTX_free(cc);
    mesh_tls_free(t);
    free(out.b);
    made_free(&m);
    ERR_clear_error();
    return got;
}

static void test_generate_check_load(void)
{
    pem p;
    pem_make(&p, 5, MESH_CERT_ECDSA_P256, "node.example.net");
    mesh_tls_cert_info info = {0};
    CU_ASSERT_EQUAL(mesh_tls_cert_check(p.cert, p.cert_len, p.key, p.key_len, &info), MESH_OK);
    CU_ASSERT_EQUAL(info.type, MESH_CERT_ECDSA_P256);
    CU_ASSERT_EQUAL(info.not_after, EPOCH + (long long)MESH_TLS_CERT_DAYS * DAY);
    CU_ASSERT_EQUAL(info.chain_len, 1);
    /* the same PEM, loaded by a node, is what a client receives */
    X509 *leaf = NULL;
    STACK_OF(X509) *chain = served_chain(&(mesh_tls_cfg){.cert_pem = p.cert,
                                                         .cert_pem_len = p.cert_len,
                                                         .key_pem = p.key,
                                                         .key_pem_len = p.key_len},
                                         &leaf);
    BIO *b = BIO_new_mem_buf(p.cert, (int)p.cert_len);
    X509 *want = PEM_read_bio_X509(b, NULL, NULL, NULL);
    CU_ASSERT_FATAL(leaf && want && chain);
    CU_ASSERT_EQUAL(X509_cmp(leaf, want), 0);
    CU_ASSERT_EQUAL(sk_X509_num(chain), 1);
    check_names(leaf, "node.example.net");
    X509_free(want);
    X509_free(leaf);
    BIO_free(b);
    sk_X509_pop_free(chain, X509_free);
    pem_free(&p);

    pem_make(&p, 6, MESH_CERT_RSA_2048, NULL);
    CU_ASSERT_EQUAL(mesh_tls_cert_check(p.cert, p.cert_len, p.key, p.key_len, &info), MESH_OK);
    CU_ASSERT_EQUAL(info.type, MESH_CERT_RSA_2048);
    pem_free(&p);
}

/* An operator's chain (here: a certificate and another one after it, standing for an
 * intermediate) goes out exactly as given, nothing added, nothing dropped. */
static void test_chain_as_given(void)
{
    pem a, b;
    pem_make(&a, 7, MESH_CERT_ECDSA_P256, "leaf.example.org");
    pem_make(&b, 8, MESH_CERT_RSA_2048, "intermediate.example.org");
    size_t len = a.cert_len + b.cert_len;
    char *two = malloc(len + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(two);
    memcpy(two, a.cert, a.cert_len);
    memcpy(two + a.cert_len, b.cert, b.cert_len + 1);
    mesh_tls_cert_info info = {0};
    CU_ASSERT_EQUAL(mesh_tls_cert_check(two, len, a.key, a.key_len, &info), MESH_OK);
    CU_ASSERT_EQUAL(info.chain_len, 2);
    X509 *leaf = NULL;
    STACK_OF(X509) *chain = served_chain(
        &(mesh_tls_cfg){
            .cert_pem = two, .cert_pem_len = len, .key_pem = a.key, .key_pem_len = a.key_len},
        &leaf);
    CU_ASSERT_FATAL(chain && leaf);
    CU_ASSERT_EQUAL_FATAL(sk_X509_num(chain), 2);
    check_names(sk_X509_value(chain, 0), "leaf.example.org");
    check_names(sk_X509_value(chain, 1), "intermediate.example.org");
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    free(two);
    pem_free(&a);
    pem_free(&b);
}

/* The key of a with a passphrase, as PEM. */
static char *encrypted_key(const pem *a)
{
    BIO *in = BIO_new_mem_buf(a->key, (int)a->key_len), *out = BIO_new(BIO_s_mem());
    EVP_PKEY *k = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL);
    CU_ASSERT_FATAL(k && PEM_write_bio_PKCS8PrivateKey(out, k, EVP_aes_128_cbc(), "secret", 6, NULL,
                                                       NULL) == 1);
    char *d = NULL;
    long n = BIO_get_mem_data(out, &d);
    char *copy = calloc(1, (size_t)n + 1);
    memcpy(copy, d, (size_t)n);
    EVP_PKEY_free(k);
    BIO_free(in);
    BIO_free(out);
    return copy;
}

static void test_bad_files(void)
{
    pem a, b;
    pem_make(&a, 7, MESH_CERT_ECDSA_P256, NULL);
    pem_make(&b, 8, MESH_CERT_ECDSA_P256, NULL);
    CU_ASSERT_EQUAL(mesh_tls_cert_check(a.cert, a.cert_len, b.key, b.key_len, NULL),
                    MESH_ERR_CORRUPT); /* not its key */
    CU_ASSERT_EQUAL(mesh_tls_cert_check(a.key, a.key_len, a.key, a.key_len, NULL),
                    MESH_ERR_CORRUPT); /* no certificate */
    CU_ASSERT_EQUAL(mesh_tls_cert_check(a.cert, a.cert_len, a.cert, a.cert_len, NULL),
                    MESH_ERR_CORRUPT); /* no key */
    CU_ASSERT_EQUAL(mesh_tls_cert_check(a.cert, a.cert_len / 2, a.key, a.key_len, NULL),
                    MESH_ERR_CORRUPT); /* cut */
    char *damaged = strdup(a.cert);
    damaged[100] = damaged[100] == 'A' ? 'B' : 'A';
    CU_ASSERT_EQUAL(mesh_tls_cert_check(damaged, a.cert_len, a.key, a.key_len, NULL),
                    MESH_ERR_CORRUPT);
    /* a good certificate followed by a damaged one: the chain is refused, not cut short */
    char *two = malloc(2 * a.cert_len + 1);
    memcpy(two, a.cert, a.cert_len);
    memcpy(two + a.cert_len, damaged, a.cert_len + 1);
    CU_ASSERT_EQUAL(mesh_tls_cert_check(two, 2 * a.cert_len, a.key, a.key_len, NULL),
                    MESH_ERR_CORRUPT);
    char *enc = encrypted_key(&a); /* refused, no prompt */
    CU_ASSERT_EQUAL(mesh_tls_cert_check(a.cert, a.cert_len, enc, strlen(enc), NULL),
                    MESH_ERR_CORRUPT);
    CU_ASSERT_EQUAL(mesh_tls_cert_check(NULL, 0, a.key, a.key_len, NULL), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(
        mesh_tls_cert_check(a.cert, (size_t)MESH_TLS_PEM_MAX + 1, a.key, a.key_len, NULL),
        MESH_ERR_INVAL);
    /* and a node given them */
    made m;
    CU_ASSERT_EQUAL(made_init(&m, 1,
                              &(mesh_tls_cfg){.cert_pem = a.cert,
                                              .cert_pem_len = a.cert_len,
                                              .key_pem = b.key,
                                              .key_pem_len = b.key_len}),
                    MESH_ERR_CORRUPT);
    made_free(&m);
    CU_ASSERT_EQUAL(
        made_init(&m, 1, &(mesh_tls_cfg){.cert_pem = a.cert, .cert_pem_len = a.cert_len}),
        MESH_ERR_INVAL);
    made_free(&m);
    free(enc);
    free(two);
    free(damaged);
    pem_free(&a);
    pem_free(&b);
    char *c = NULL, *k = NULL;
    size_t cl = 0, kl = 0;
    mesh_test_env e;
    mesh_test_env_init(&e, 1);
    CU_ASSERT_EQUAL(mesh_tls_cert_generate(&e.env, 5, NULL, EPOCH, &c, &cl, &k, &kl),
                    MESH_ERR_INVAL);
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_PTR_NULL(k);
}

static CU_TestInfo tests[] = {
    {"made in memory as openssl req makes one; not the identity key", test_like_openssl_req},
    {"named after the host, never an address; RSA-2048 when asked", test_names_and_type},
    {"same seed, same certificate; other seed, other serial", test_reproducible},
    {"generated as PEM, checked, loaded, received by a client", test_generate_check_load},
    {"an operator's chain goes out as given", test_chain_as_given},
    {"damaged, mismatched, encrypted or missing parts refused", test_bad_files},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"tls_cert", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
