/* tls_ctx.h — inside the TLS module (tls.h is its interface; no other module includes this):
 * what a node's TLS context and its library context hold, shared by tls_ctx.c, which makes
 * them (library context with the env's randomness, certificate, SSL_CTX), and tls.c, which
 * runs the connections in them; and the few functions each file lends the other. */
#ifndef MESH_CORE_TLS_CTX_H
#define MESH_CORE_TLS_CTX_H

#include <openssl/ssl.h>

#include "core/record.h"
#include "core/tls.h"

/* An OpenSSL library context with env randomness, and the BIO methods of its connections. */
struct mesh_tls_lib {
    OSSL_LIB_CTX *libctx;
    OSSL_PROVIDER *prov_rand, *prov_default;
    BIO_METHOD *bio_out, *bio_in;
};

struct mesh_tls_ctx {
    const mesh_env *env;
    const mesh_identity *id;
    mesh_tls_lib *own_lib;        /* NULL when the configuration lent one */
    OSSL_LIB_CTX *libctx;         /* the lib's */
    BIO_METHOD *bio_out, *bio_in; /* the lib's */
    EVP_PKEY *pkey;
    X509 *cert;
    uint8_t *cert_der;
    size_t cert_der_len;
    SSL_CTX *ssl;
    uint8_t alpn_wire[MESH_TLS_ALPN_MAX * (MESH_TLS_ALPN_NAME_MAX + 1)]; /* RFC 7301 list */
    size_t alpn_len;
    char sni[MESH_TLS_SNI_MAX + 1];
    uint64_t key_update_after;               /* records per key before a KeyUpdate */
    mesh_rec_suite *suites[MESH_REC_SUITES]; /* record algorithms by suite, on first use */
};

/* Log OpenSSL's error queue through env (NULL: not logged) at DEBUG and empty it; the last
 * error's text goes to keep (keeplen bytes; NULL: not kept). Returns the last packed error,
 * 0 if the queue was empty. */
unsigned long mesh_tls_drain_errors(const mesh_env *env, const char *what, char *keep,
                                    size_t keeplen);
/* RFC 7301 wire form of a NULL-terminated protocol list (NULL: {MESH_TLS_DEFAULT_ALPN}) into
 * out (cap bytes), its length in *outlen. MESH_OK or MESH_ERR_INVAL (empty list or name, too
 * many or too long). */
int mesh_tls_alpn_encode(const char *const *list, uint8_t *out, size_t cap, size_t *outlen);

/* tls.c's side, installed by tls_ctx.c. The BIO methods of a library context's connections
 * (made once per library context: a BIO_METHOD cannot change once in use): MESH_OK or
 * MESH_ERR_NOMEM (whatever was made is in *out / *in, for BIO_meth_free). */
int mesh_tls_bio_methods(BIO_METHOD **out, BIO_METHOD **in);
/* The SSL_CTX key-log callback: keeps the connection's traffic secrets (tls.c makes the
 * record keys from them). */
void mesh_tls_keylog(const SSL *ssl, const char *line);
/* The SSL_CTX ClientHello callback (servers): a TLS 1.3 ClientHello that offers no ALPN is
 * refused with no_application_protocol, before any answer (RFC 7301 §3.2). */
int mesh_tls_client_hello(SSL *ssl, int *alert, void *arg);

#endif
