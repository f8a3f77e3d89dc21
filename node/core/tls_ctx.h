/* tls_ctx.h — inside the TLS module (tls.h is its interface; no other module includes this):
 * what a node's TLS context, its library context and a connection hold, shared by the files
 * of the module, and the few functions each lends the others:
 *   tls_ctx.c   the library context (env randomness), the node's context, the seed profile's
 *               SSL_CTX and certificate;
 *   tls_web.c   the web profile's two SSL_CTXs: curl's client, nginx's server;
 *   tls_cert.c  the web profile's certificate: made in memory, or the configured PEM chain;
 *   tls_io.c    a connection's input (fed, lent, kept), callback BIOs, the key-log callback;
 *   tls.c       a connection's handshake and records. */
#ifndef MESH_CORE_TLS_CTX_H
#define MESH_CORE_TLS_CTX_H

#include <openssl/ssl.h>

#include "core/record.h"
#include "core/tls.h"

enum { MESH_TLS_ERR_TEXT = 160 }; /* mesh_tls_error_text() */

/* An OpenSSL library context with env randomness, and the BIO methods of its connections. */
struct mesh_tls_lib {
    OSSL_LIB_CTX *libctx;
    OSSL_PROVIDER *prov_rand, *prov_default;
    BIO_METHOD *bio_out, *bio_in;
};

struct mesh_tls_ctx {
    const mesh_env *env;
    const mesh_identity *id;
    int profile;                  /* enum mesh_profile */
    mesh_tls_lib *own_lib;        /* NULL when the configuration lent one */
    OSSL_LIB_CTX *libctx;         /* the lib's */
    BIO_METHOD *bio_out, *bio_in; /* the lib's */
    EVP_PKEY *pkey;               /* the certificate's key (seed: the identity's) */
    X509 *cert;                   /* the certificate (web: the first of the chain) */
    STACK_OF(X509) * chain;       /* web: the certificates after it (NULL: none) */
    uint8_t *cert_der;
    size_t cert_der_len;
    SSL_CTX *ssl;        /* seed: both roles; web: the server's (nginx) */
    SSL_CTX *ssl_client; /* web: the client's (curl); NULL in the seed profile */
    uint8_t alpn_wire[MESH_TLS_ALPN_MAX * (MESH_TLS_ALPN_NAME_MAX + 1)]; /* RFC 7301 list */
    size_t alpn_len;
    char sni[MESH_TLS_SNI_MAX + 1];          /* mesh_tls_ctx_sni() */
    int send_sni;                            /* clients put sni in their ClientHello */
    int64_t unix_epoch;                      /* Unix seconds at the env's time 0 */
    uint64_t key_update_after;               /* records per key before a KeyUpdate */
    mesh_rec_suite *suites[MESH_REC_SUITES]; /* record algorithms by suite, on first use */
};

struct mesh_tls {
    mesh_tls_ctx *ctx;
    SSL *ssl;
    mesh_tls_out_fn out_fn;
    mesh_tls_reserve_fn reserve; /* optional: seal into the sink's memory */
    mesh_tls_commit_fn commit;
    void *out_ud;
    uint8_t *in; /* ciphertext fed (copied), [in_off, in_len) not yet consumed */
    size_t in_off, in_len, in_cap;
    const uint8_t *lent; /* ciphertext lent (mesh_tls_lend), consumed after in */
    size_t lent_off, lent_len;
    /* Application records, once a TLS 1.3 handshake is complete (record.h): OpenSSL's traffic
     * secrets arrive through the key-log callback and are wiped once the keys are made. */
    mesh_rec *rx, *tx;
    uint8_t secret[2][MESH_REC_SECRET_MAX]; /* [0] client's, [1] server's */
    size_t secret_len[2];
    unsigned tickets; /* server: NewSessionTickets OpenSSL sealed under our sending key */
    uint8_t *pt;      /* opened content not read yet: [pt_off, pt_len) (room MESH_REC_INNER_MAX) */
    size_t pt_off, pt_len;
    int is_server;
    int done;          /* handshake complete */
    int version;       /* negotiated, once done (mesh_tls_version) */
    int legacy;        /* done below TLS 1.3: OpenSSL keeps the records (web servers only) */
    int failed;        /* sticky error code (0 = none) */
    int closed_sent;   /* close_notify went out */
    int peer_closed;   /* close_notify read */
    int no_alpn;       /* server: the ClientHello offered no ALPN (mesh_tls_client_hello) */
    char *server_name; /* client: mesh_tls_set_server_name's copy (malloc'd); NULL = ctx's */
    char alpn[MESH_TLS_ALPN_NAME_MAX + 1];
    char err[MESH_TLS_ERR_TEXT];
};

/* ---- tls_ctx.c ---- */

/* Log OpenSSL's error queue through env (NULL: not logged) at DEBUG and empty it; the last
 * error's text goes to keep (keeplen bytes; NULL: not kept). Returns the last packed error,
 * 0 if the queue was empty. */
unsigned long mesh_tls_drain_errors(const mesh_env *env, const char *what, char *keep,
                                    size_t keeplen);
/* RFC 7301 wire form of a NULL-terminated protocol list (NULL: {MESH_TLS_DEFAULT_ALPN}) into
 * out (cap bytes), its length in *outlen. MESH_OK or MESH_ERR_INVAL (empty list or name, too
 * many or too long). */
int mesh_tls_alpn_encode(const char *const *list, uint8_t *out, size_t cap, size_t *outlen);
/* The peer's certificate is accepted as-is (the seed profile's verify callback). */
int mesh_tls_accept_any_cert(X509_STORE_CTX *store, void *arg);

/* ---- tls_web.c ---- */

/* 1 if name is an IPv4 address in dotted decimal or an IPv6 address (anything with a ':'):
 * what curl sends no SNI for. */
int mesh_tls_is_ip_literal(const char *name);
/* The web profile's SSL_CTXs into c->ssl (server) and c->ssl_client, for the certificate and
 * key already in c (mesh_tls_web_cert). max_version: the test hook of mesh_tls_cfg.
 * MESH_OK; MESH_ERR_TLS (logged by the caller); MESH_ERR_NOMEM. */
int mesh_tls_web_ctxs(mesh_tls_ctx *c, int max_version);

/* ---- tls_cert.c ---- */

/* The web profile's certificate into c->cert, c->chain, c->pkey and c->cert_der: cfg's PEM
 * chain and key, or one made in memory (cfg->cert_type, named c->sni when it is a host name,
 * valid from c->unix_epoch). MESH_OK; MESH_ERR_INVAL (unknown type); MESH_ERR_CORRUPT (the
 * PEM does not parse or the key does not match); MESH_ERR_NOMEM; MESH_ERR_CRYPTO. */
int mesh_tls_web_cert(mesh_tls_ctx *c, const mesh_tls_cfg *cfg);
/* c->cert in DER into c->cert_der. MESH_OK; MESH_ERR_NOMEM; MESH_ERR_CRYPTO. */
int mesh_tls_cert_der_keep(mesh_tls_ctx *c);

/* ---- tls_io.c ---- */

/* The BIO methods of a library context's connections (made once per library context: a
 * BIO_METHOD cannot change once in use): MESH_OK or MESH_ERR_NOMEM (whatever was made is in
 * *out / *in, for BIO_meth_free). */
int mesh_tls_bio_methods(BIO_METHOD **out, BIO_METHOD **in);
/* The SSL_CTX key-log callback: keeps the connection's traffic secrets (tls.c makes the
 * record keys from them). */
void mesh_tls_keylog(const SSL *ssl, const char *line);
/* Ciphertext held: fed and not consumed, plus lent and not consumed. */
size_t mesh_tls_in_held(const mesh_tls *t);
/* Append len bytes to the owned input. MESH_OK; MESH_ERR_LIMIT; MESH_ERR_NOMEM. */
int mesh_tls_in_append(mesh_tls *t, const uint8_t *data, size_t len);
/* Free the input buffers when nothing at all is held (see tls_io.c). */
void mesh_tls_in_release(mesh_tls *t);

/* ---- tls.c ---- */

/* The seed profile's SSL_CTX ClientHello callback (servers): a TLS 1.3 ClientHello that
 * offers no ALPN is refused with no_application_protocol, before any answer (RFC 7301
 * §3.2). */
int mesh_tls_client_hello(SSL *ssl, int *alert, void *arg);

#endif
