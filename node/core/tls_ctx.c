/* tls_ctx.c — a node's TLS context: the OpenSSL library context (randomness from the env:
 * envrand.h), the context of either profile, and the seed profile's certificate (made from
 * the identity) and SSL_CTX (TLS 1.3 only, suites in browsers' order, ALPN selection, any
 * certificate accepted). The web profile's: tls_web.c and tls_cert.c. Connections: tls.c.
 * See tls.h for the contract. */
#include "core/tls_ctx.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "core/envrand.h"

unsigned long mesh_tls_drain_errors(const mesh_env *env, const char *what, char *keep,
                                    size_t keeplen)
{
    unsigned long e, last = 0;
    char buf[256];
    while ((e = ERR_get_error()) != 0) {
        last = e;
        ERR_error_string_n(e, buf, sizeof buf);
        if (env)
            mesh_log(env, MESH_LOG_DEBUG, "tls: %s: %s", what, buf);
    }
    if (last && keep && keeplen) {
        ERR_error_string_n(last, keep, keeplen);
    }
    return last;
}

int mesh_tls_alpn_encode(const char *const *list, uint8_t *out, size_t cap, size_t *outlen)
{
    static const char *const dflt[] = {MESH_TLS_DEFAULT_ALPN, NULL};
    if (!list)
        list = dflt;
    size_t n = 0, count = 0;
    for (; list[count]; count++) {
        size_t l = strlen(list[count]);
        if (l == 0 || l > MESH_TLS_ALPN_NAME_MAX || count >= MESH_TLS_ALPN_MAX || n + 1 + l > cap)
            return MESH_ERR_INVAL;
        out[n++] = (uint8_t)l;
        memcpy(out + n, list[count], l);
        n += l;
    }
    if (count == 0)
        return MESH_ERR_INVAL;
    *outlen = n;
    return MESH_OK;
}

/* The peer's certificate is accepted as-is: identity is proven by the hello (session.h),
 * bound to this TLS session by the exporter. Replacing X509_verify_cert() entirely also
 * keeps OpenSSL from comparing validity dates with the real clock. */
int mesh_tls_accept_any_cert(X509_STORE_CTX *store, void *arg)
{
    (void)store, (void)arg;
    return 1;
}

/* Server: pick the first protocol of our list that the client offered. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    const mesh_tls_ctx *c = arg;
    for (size_t i = 0; i < c->alpn_len; i += 1 + c->alpn_wire[i]) {
        const uint8_t *mine = c->alpn_wire + i;
        for (unsigned int j = 0; j < inlen; j += 1u + in[j]) {
            if (j + 1u + in[j] > inlen)
                break; /* OpenSSL checked the list; be safe anyway */
            if (in[j] == mine[0] && memcmp(in + j + 1, mine + 1, mine[0]) == 0) {
                *out = in + j + 1;
                *outlen = in[j];
                return SSL_TLSEXT_ERR_OK;
            }
        }
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL; /* no_application_protocol (RFC 7301 §3.2) */
}

int mesh_tls_cert_der_keep(mesh_tls_ctx *c)
{
    int len = i2d_X509(c->cert, NULL);
    if (len <= 0)
        return MESH_ERR_CRYPTO;
    c->cert_der = malloc((size_t)len);
    if (!c->cert_der)
        return MESH_ERR_NOMEM;
    uint8_t *p = c->cert_der;
    if (i2d_X509(c->cert, &p) != len)
        return MESH_ERR_CRYPTO;
    c->cert_der_len = (size_t)len;
    return MESH_OK;
}

/* The seed profile's certificate: self-signed, Ed25519 (the identity key), CN = the SNI name,
 * random serial, fixed dates. */
static int make_cert(mesh_tls_ctx *c)
{
    int rc = MESH_ERR_CRYPTO;
    uint8_t serial[MESH_TLS_SERIAL_LEN];
    BIGNUM *bn = NULL;
    X509_NAME *name = NULL;
    X509 *x = X509_new_ex(c->libctx, NULL);
    if (!x)
        goto out;
    mesh_env_random(c->env, serial, sizeof serial);
    serial[0] &= 0x7f; /* a positive INTEGER */
    serial[0] |= 0x40; /* and a fixed length in DER */
    bn = BN_bin2bn(serial, sizeof serial, NULL);
    name = X509_NAME_new();
    if (!bn || !name || !X509_set_version(x, X509_VERSION_3) ||
        !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ||
        !ASN1_TIME_set_string_X509(X509_getm_notBefore(x), MESH_TLS_CERT_NOT_BEFORE) ||
        !ASN1_TIME_set_string_X509(X509_getm_notAfter(x), MESH_TLS_CERT_NOT_AFTER) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)c->sni, -1,
                                    -1, 0) ||
        !X509_set_subject_name(x, name) || !X509_set_issuer_name(x, name) ||
        !X509_set_pubkey(x, c->pkey) || X509_sign(x, c->pkey, NULL) <= 0)
        goto out;
    c->cert = x;
    x = NULL;
    rc = mesh_tls_cert_der_keep(c);
out:
    X509_free(x);
    X509_NAME_free(name);
    BN_free(bn);
    return rc;
}

int mesh_tls_lib_new(mesh_tls_lib **out, const mesh_env *env)
{
    if (!out || !env)
        return MESH_ERR_INVAL;
    mesh_tls_lib *l = calloc(1, sizeof *l);
    if (!l)
        return MESH_ERR_NOMEM;
    ERR_clear_error();
    int rc = MESH_ERR_NOMEM;
    l->libctx = OSSL_LIB_CTX_new();
    if (!l->libctx)
        goto fail;
    /* Randomness first: the DRBG types must be set before anything draws from them. */
    if ((rc = mesh_envrand_load(l->libctx, env, &l->prov_rand)) != MESH_OK)
        goto fail;
    rc = MESH_ERR_CRYPTO;
    l->prov_default = OSSL_PROVIDER_load(l->libctx, "default");
    if (!l->prov_default)
        goto fail;
    if ((rc = mesh_tls_bio_methods(&l->bio_out, &l->bio_in)) != MESH_OK)
        goto fail;
    *out = l;
    return MESH_OK;
fail:
    mesh_tls_drain_errors(env, "library context setup", NULL, 0);
    mesh_log(env, MESH_LOG_ERROR, "tls: library context setup failed: %s", mesh_errname(rc));
    mesh_tls_lib_free(l);
    return rc;
}

void mesh_tls_lib_free(mesh_tls_lib *l)
{
    if (!l)
        return;
    BIO_meth_free(l->bio_out);
    BIO_meth_free(l->bio_in);
    if (l->prov_default)
        OSSL_PROVIDER_unload(l->prov_default);
    mesh_envrand_unload(l->prov_rand);
    OSSL_LIB_CTX_free(l->libctx);
    ERR_clear_error();
    free(l);
}

/* TLS 1.3 suites in the order Chrome and Firefox offer them: AES-128-GCM first (OpenSSL's
 * default list starts with AES-256-GCM, 40 % slower per byte and a rarer first choice on the
 * wire), ChaCha20 for machines without AES instructions, AES-256-GCM last. */
#define MESH_TLS_CIPHERSUITES                                                                      \
    "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384"

static int make_ssl_ctx(mesh_tls_ctx *c, int max_version)
{
    c->ssl = SSL_CTX_new_ex(c->libctx, NULL, TLS_method());
    if (!c->ssl)
        return MESH_ERR_TLS;
    int min_version = max_version ? max_version : TLS1_3_VERSION;
    if (max_version == TLS1_2_VERSION)
        min_version = TLS1_2_VERSION;
    if (!SSL_CTX_set_min_proto_version(c->ssl, min_version) ||
        !SSL_CTX_set_max_proto_version(c->ssl, max_version ? max_version : TLS1_3_VERSION) ||
        !SSL_CTX_set_num_tickets(c->ssl, 0) ||
        SSL_CTX_set_ciphersuites(c->ssl, MESH_TLS_CIPHERSUITES) != 1 ||
        SSL_CTX_use_certificate(c->ssl, c->cert) != 1 ||
        SSL_CTX_use_PrivateKey(c->ssl, c->pkey) != 1 || SSL_CTX_check_private_key(c->ssl) != 1)
        return MESH_ERR_TLS;
    SSL_CTX_set_options(c->ssl, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(c->ssl, SSL_SESS_CACHE_OFF);
    /* Idle connections hold no record buffers. */
    SSL_CTX_set_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_cert_verify_callback(c->ssl, mesh_tls_accept_any_cert, NULL);
    SSL_CTX_set_alpn_select_cb(c->ssl, alpn_select, c);
    SSL_CTX_set_client_hello_cb(c->ssl, mesh_tls_client_hello, NULL);
    SSL_CTX_set_keylog_callback(c->ssl, mesh_tls_keylog);
    return MESH_OK;
}

/* The names of c from cfg: what clients send (sni, send_sni) and its bounds. MESH_OK or
 * MESH_ERR_INVAL. */
static int take_names(mesh_tls_ctx *c, const mesh_tls_cfg *cfg)
{
    const char *sni = cfg->sni;
    if (sni && (strlen(sni) == 0 || strlen(sni) > MESH_TLS_SNI_MAX))
        return MESH_ERR_INVAL;
    if (cfg->host_name && mesh_host_name_check(cfg->host_name) != MESH_OK)
        return MESH_ERR_INVAL;
    if (c->profile == MESH_PROFILE_SEED) {
        c->send_sni = 1;
        sni = sni ? sni : MESH_TLS_DEFAULT_SNI;
    } else {
        /* curl sends no server name for an address; the :authority still names one */
        c->send_sni = sni && !mesh_tls_is_ip_literal(sni);
        sni = sni ? sni : MESH_TLS_WEB_NO_HOST;
    }
    strcpy(c->sni, sni);
    return MESH_OK;
}

/* The profile's certificate and SSL_CTX(s). */
static int make_profile(mesh_tls_ctx *c, const mesh_tls_cfg *cfg)
{
    int rc;
    if (c->profile == MESH_PROFILE_WEB) {
        if ((rc = mesh_tls_web_cert(c, cfg)) != MESH_OK)
            return rc;
        return mesh_tls_web_ctxs(c, cfg->max_version);
    }
    if ((rc = mesh_tls_alpn_encode(cfg->alpn, c->alpn_wire, sizeof c->alpn_wire, &c->alpn_len)) !=
            MESH_OK ||
        (rc = mesh_identity_pkey_in(c->id, c->libctx, &c->pkey)) != MESH_OK ||
        (rc = make_cert(c)) != MESH_OK)
        return rc;
    return make_ssl_ctx(c, cfg->max_version);
}

int mesh_tls_ctx_new(mesh_tls_ctx **out, const mesh_env *env, const mesh_identity *id,
                     const mesh_tls_cfg *cfg)
{
    if (!out || !env || !id)
        return MESH_ERR_INVAL;
    mesh_tls_cfg dflt = {0};
    if (!cfg)
        cfg = &dflt;
    if ((cfg->profile != MESH_PROFILE_WEB && cfg->profile != MESH_PROFILE_SEED) ||
        (cfg->max_version && cfg->max_version != TLS1_2_VERSION &&
         cfg->max_version != TLS1_3_VERSION))
        return MESH_ERR_INVAL;
    mesh_tls_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return MESH_ERR_NOMEM;
    c->env = env;
    c->id = id;
    c->profile = cfg->profile;
    c->unix_epoch = cfg->unix_epoch ? cfg->unix_epoch : MESH_NODE_DEFAULT_EPOCH;
    c->key_update_after = cfg->key_update_after ? cfg->key_update_after : MESH_REC_UPDATE_AFTER;
    int rc = take_names(c, cfg);
    if (rc != MESH_OK) {
        free(c);
        return rc;
    }
    mesh_tls_lib *lib = cfg->lib;
    if (!lib) {
        if ((rc = mesh_tls_lib_new(&c->own_lib, env)) != MESH_OK)
            goto fail;
        lib = c->own_lib;
    }
    c->libctx = lib->libctx;
    c->bio_out = lib->bio_out;
    c->bio_in = lib->bio_in;
    ERR_clear_error();
    if ((rc = make_profile(c, cfg)) != MESH_OK)
        goto fail;
    *out = c;
    return MESH_OK;
fail:
    mesh_tls_drain_errors(env, "context setup", NULL, 0);
    mesh_log(env, MESH_LOG_ERROR, "tls: context setup failed: %s", mesh_errname(rc));
    mesh_tls_ctx_free(c);
    return rc;
}

void mesh_tls_ctx_free(mesh_tls_ctx *c)
{
    if (!c)
        return;
    SSL_CTX_free(c->ssl);
    SSL_CTX_free(c->ssl_client);
    for (size_t i = 0; i < sizeof c->suites / sizeof c->suites[0]; i++)
        mesh_rec_suite_free(c->suites[i]);
    X509_free(c->cert);
    sk_X509_pop_free(c->chain, X509_free);
    free(c->cert_der);
    EVP_PKEY_free(c->pkey);
    mesh_tls_lib_free(c->own_lib);
    ERR_clear_error();
    free(c);
}

const mesh_identity *mesh_tls_ctx_identity(const mesh_tls_ctx *c)
{
    return c->id;
}
void *mesh_tls_ctx_libctx(const mesh_tls_ctx *c)
{
    return c->libctx;
}
const char *mesh_tls_ctx_sni(const mesh_tls_ctx *c)
{
    return c->sni;
}
int mesh_tls_ctx_profile(const mesh_tls_ctx *c)
{
    return c->profile;
}

int mesh_tls_ctx_cert_der(const mesh_tls_ctx *c, const uint8_t **der, size_t *len)
{
    if (!c || !der || !len)
        return MESH_ERR_INVAL;
    *der = c->cert_der;
    *len = c->cert_der_len;
    return MESH_OK;
}
