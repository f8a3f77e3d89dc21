/* tls.c — TLS 1.3 over OpenSSL with an env-driven random provider and callback BIOs.
 * See tls.h for the contract. */
#include "core/tls.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/record.h"

/* ---- the env RAND provider ------------------------------------------------------------- */

#define ENVRAND_PROVIDER "meshara-env-rand"
#define ENVRAND_ALG "MESH-ENV"
#define ENVRAND_PROPQ "provider=" ENVRAND_PROVIDER

enum { ENVRAND_STRENGTH = 256, ENVRAND_MAX_REQUEST = 1 << 16 };

/* The provider's init function gets no user pointer, yet each node's provider instance
 * must reach that node's env. OSSL_PROVIDER_load() runs the init synchronously on the
 * calling thread, so mesh_tls_ctx_new() parks the env here for exactly the duration of that
 * call and clears it after. This is the core's one piece of thread-scoped mutable state:
 * it is never read outside that window, and _Thread_local keeps nodes built concurrently on
 * other threads apart. */
static _Thread_local const mesh_env *envrand_loading;

typedef struct envrand_prov {
    mesh_env env; /* copy of the node's env (a plain value) */
} envrand_prov;

typedef struct envrand_ctx {
    envrand_prov *prov;
    int state; /* EVP_RAND_STATE_* */
} envrand_ctx;

static void *envrand_newctx(void *provctx, void *parent, const OSSL_DISPATCH *parent_calls)
{
    (void)parent; /* never asks a parent for entropy: the env is the source */
    (void)parent_calls;
    envrand_ctx *r = OPENSSL_zalloc(sizeof *r);
    if (r) {
        r->prov = provctx;
        r->state = EVP_RAND_STATE_UNINITIALISED;
    }
    return r;
}

static void envrand_freectx(void *vctx)
{
    OPENSSL_free(vctx);
}

static int envrand_instantiate(void *vctx, unsigned int strength, int prediction_resistance,
                               const unsigned char *pstr, size_t pstr_len,
                               const OSSL_PARAM params[])
{
    (void)strength, (void)prediction_resistance, (void)pstr, (void)pstr_len, (void)params;
    ((envrand_ctx *)vctx)->state = EVP_RAND_STATE_READY;
    return 1;
}

static int envrand_uninstantiate(void *vctx)
{
    ((envrand_ctx *)vctx)->state = EVP_RAND_STATE_UNINITIALISED;
    return 1;
}

static int envrand_generate(void *vctx, unsigned char *out, size_t outlen, unsigned int strength,
                            int prediction_resistance, const unsigned char *adin, size_t adinlen)
{
    (void)strength, (void)prediction_resistance, (void)adin, (void)adinlen;
    envrand_ctx *r = vctx;
    mesh_env_random(&r->prov->env, out, outlen);
    return 1;
}

static int envrand_reseed(void *vctx, int prediction_resistance, const unsigned char *ent,
                          size_t ent_len, const unsigned char *adin, size_t adin_len)
{
    (void)vctx, (void)prediction_resistance, (void)ent, (void)ent_len, (void)adin, (void)adin_len;
    return 1; /* the env needs no reseeding */
}

/* As a seed source for OpenSSL's own DRBGs (not used when every DRBG is ours, but OpenSSL
 * may ask a parent for seed material). */
static size_t envrand_get_seed(void *vctx, unsigned char **buf, int entropy, size_t min_len,
                               size_t max_len, int prediction_resistance, const unsigned char *adin,
                               size_t adin_len)
{
    (void)entropy, (void)max_len, (void)prediction_resistance, (void)adin, (void)adin_len;
    envrand_ctx *r = vctx;
    unsigned char *p = OPENSSL_secure_malloc(min_len ? min_len : 1);
    if (!p)
        return 0;
    mesh_env_random(&r->prov->env, p, min_len);
    *buf = p;
    return min_len;
}

static void envrand_clear_seed(void *vctx, unsigned char *buf, size_t len)
{
    (void)vctx;
    OPENSSL_secure_clear_free(buf, len);
}

/* One thread uses a node's library context: no lock needed, but OpenSSL insists the
 * primary DRBG can be locked. */
static int envrand_enable_locking(void *vctx)
{
    (void)vctx;
    return 1;
}
static int envrand_lock(void *vctx)
{
    (void)vctx;
    return 1;
}
static void envrand_unlock(void *vctx)
{
    (void)vctx;
}

static int envrand_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    envrand_ctx *r = vctx;
    OSSL_PARAM *p = OSSL_PARAM_locate(params, OSSL_RAND_PARAM_STATE);
    if (p && !OSSL_PARAM_set_int(p, r->state))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_RAND_PARAM_STRENGTH);
    if (p && !OSSL_PARAM_set_uint(p, ENVRAND_STRENGTH))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_RAND_PARAM_MAX_REQUEST);
    if (p && !OSSL_PARAM_set_size_t(p, ENVRAND_MAX_REQUEST))
        return 0;
    return 1;
}

static const OSSL_PARAM *envrand_gettable_ctx_params(void *vctx, void *provctx)
{
    (void)vctx, (void)provctx;
    static const OSSL_PARAM known[] = {
        OSSL_PARAM_int(OSSL_RAND_PARAM_STATE, NULL),
        OSSL_PARAM_uint(OSSL_RAND_PARAM_STRENGTH, NULL),
        OSSL_PARAM_size_t(OSSL_RAND_PARAM_MAX_REQUEST, NULL),
        OSSL_PARAM_END,
    };
    return known;
}

typedef void (*dispatch_fn)(void);
static const OSSL_DISPATCH ENVRAND_FUNCS[] = {
    {OSSL_FUNC_RAND_NEWCTX, (dispatch_fn)envrand_newctx},
    {OSSL_FUNC_RAND_FREECTX, (dispatch_fn)envrand_freectx},
    {OSSL_FUNC_RAND_INSTANTIATE, (dispatch_fn)envrand_instantiate},
    {OSSL_FUNC_RAND_UNINSTANTIATE, (dispatch_fn)envrand_uninstantiate},
    {OSSL_FUNC_RAND_GENERATE, (dispatch_fn)envrand_generate},
    {OSSL_FUNC_RAND_RESEED, (dispatch_fn)envrand_reseed},
    {OSSL_FUNC_RAND_GET_SEED, (dispatch_fn)envrand_get_seed},
    {OSSL_FUNC_RAND_CLEAR_SEED, (dispatch_fn)envrand_clear_seed},
    {OSSL_FUNC_RAND_ENABLE_LOCKING, (dispatch_fn)envrand_enable_locking},
    {OSSL_FUNC_RAND_LOCK, (dispatch_fn)envrand_lock},
    {OSSL_FUNC_RAND_UNLOCK, (dispatch_fn)envrand_unlock},
    {OSSL_FUNC_RAND_GETTABLE_CTX_PARAMS, (dispatch_fn)envrand_gettable_ctx_params},
    {OSSL_FUNC_RAND_GET_CTX_PARAMS, (dispatch_fn)envrand_get_ctx_params},
    {0, NULL},
};

static const OSSL_ALGORITHM ENVRAND_ALGS[] = {
    {ENVRAND_ALG, ENVRAND_PROPQ, ENVRAND_FUNCS, "randomness from the Meshara env"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM *envrand_query(void *provctx, int operation_id, int *no_cache)
{
    (void)provctx;
    *no_cache = 0;
    return operation_id == OSSL_OP_RAND ? ENVRAND_ALGS : NULL;
}

static void envrand_teardown(void *provctx)
{
    OPENSSL_free(provctx);
}

static const OSSL_DISPATCH ENVRAND_PROVIDER_FUNCS[] = {
    {OSSL_FUNC_PROVIDER_TEARDOWN, (dispatch_fn)envrand_teardown},
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (dispatch_fn)envrand_query},
    {0, NULL},
};

static int envrand_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                        const OSSL_DISPATCH **out, void **provctx)
{
    (void)handle, (void)in;
    if (!envrand_loading)
        return 0; /* activated outside mesh_tls_ctx_new(): no env to draw from */
    envrand_prov *p = OPENSSL_zalloc(sizeof *p);
    if (!p)
        return 0;
    p->env = *envrand_loading;
    *out = ENVRAND_PROVIDER_FUNCS;
    *provctx = p;
    return 1;
}

/* ---- the node context ------------------------------------------------------------------- */

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
    uint64_t key_update_after; /* records per key before a KeyUpdate */
    mesh_rec_suite *suites[3]; /* record algorithms by suite (0x1301..0x1303), on first use */
};

/* Log OpenSSL's error queue through the env and empty it. Returns the last packed error. */
static unsigned long drain_errors(const mesh_env *env, const char *what, char *keep, size_t keeplen)
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

/* RFC 7301 wire form of a NULL-terminated list. MESH_OK or MESH_ERR_INVAL. */
static int alpn_encode(const char *const *list, uint8_t *out, size_t cap, size_t *outlen)
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
static int accept_any_cert(X509_STORE_CTX *store, void *arg)
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

/* The certificate: self-signed, Ed25519, CN = the SNI name, random serial, fixed dates. */
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
    int len = i2d_X509(x, NULL);
    if (len <= 0)
        goto out;
    c->cert_der = malloc((size_t)len);
    if (!c->cert_der) {
        rc = MESH_ERR_NOMEM;
        goto out;
    }
    uint8_t *p = c->cert_der;
    if (i2d_X509(x, &p) != len)
        goto out;
    c->cert_der_len = (size_t)len;
    c->cert = x;
    x = NULL;
    rc = MESH_OK;
out:
    X509_free(x);
    X509_NAME_free(name);
    BN_free(bn);
    return rc;
}

/* Callback BIOs (methods made per context: BIO_METHODs are immutable once built). */
static int bio_out_write(BIO *b, const char *data, int len);
static int bio_in_read(BIO *b, char *data, int len);
static long bio_ctrl(BIO *b, int cmd, long num, void *ptr);
static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

/* The type index is a fixed private number, not BIO_get_new_index(): that is a process-wide
 * counter, and nothing here looks BIOs up by type. */
#define MESH_TLS_BIO_TYPE (0xe0 | BIO_TYPE_SOURCE_SINK)

static int make_bio_methods(mesh_tls_lib *l)
{
    l->bio_out = BIO_meth_new(MESH_TLS_BIO_TYPE, "mesh-tls-out");
    l->bio_in = BIO_meth_new(MESH_TLS_BIO_TYPE, "mesh-tls-in");
    if (!l->bio_out || !l->bio_in || !BIO_meth_set_write(l->bio_out, bio_out_write) ||
        !BIO_meth_set_ctrl(l->bio_out, bio_ctrl) || !BIO_meth_set_create(l->bio_out, bio_create) ||
        !BIO_meth_set_read(l->bio_in, bio_in_read) || !BIO_meth_set_ctrl(l->bio_in, bio_ctrl) ||
        !BIO_meth_set_create(l->bio_in, bio_create))
        return MESH_ERR_NOMEM;
    return MESH_OK;
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
    rc = MESH_ERR_CRYPTO;
    /* Randomness first: the DRBG types must be set before anything draws from them. */
    if (!OSSL_PROVIDER_add_builtin(l->libctx, ENVRAND_PROVIDER, envrand_init) ||
        !RAND_set_seed_source_type(l->libctx, ENVRAND_ALG, ENVRAND_PROPQ) ||
        !RAND_set_DRBG_type(l->libctx, ENVRAND_ALG, ENVRAND_PROPQ, NULL, NULL))
        goto fail;
    envrand_loading = env;
    l->prov_rand = OSSL_PROVIDER_load(l->libctx, ENVRAND_PROVIDER);
    envrand_loading = NULL;
    l->prov_default = OSSL_PROVIDER_load(l->libctx, "default");
    if (!l->prov_rand || !l->prov_default)
        goto fail;
    if ((rc = make_bio_methods(l)) != MESH_OK)
        goto fail;
    *out = l;
    return MESH_OK;
fail:
    drain_errors(env, "library context setup", NULL, 0);
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
    if (l->prov_rand)
        OSSL_PROVIDER_unload(l->prov_rand);
    OSSL_LIB_CTX_free(l->libctx);
    ERR_clear_error();
    free(l);
}

/* TLS 1.3 suites in the order Chrome and Firefox offer them: AES-128-GCM first (OpenSSL's
 * default list starts with AES-256-GCM, 40 % slower per byte and a rarer first choice on the
 * wire), ChaCha20 for machines without AES instructions, AES-256-GCM last. */
#define MESH_TLS_CIPHERSUITES                                                                      \
    "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384"

static void keylog(const SSL *ssl, const char *line);

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
    SSL_CTX_set_cert_verify_callback(c->ssl, accept_any_cert, NULL);
    SSL_CTX_set_alpn_select_cb(c->ssl, alpn_select, c);
    SSL_CTX_set_keylog_callback(c->ssl, keylog);
    return MESH_OK;
}

int mesh_tls_ctx_new(mesh_tls_ctx **out, const mesh_env *env, const mesh_identity *id,
                     const mesh_tls_cfg *cfg)
{
    if (!out || !env || !id)
        return MESH_ERR_INVAL;
    mesh_tls_cfg dflt = {0};
    if (!cfg)
        cfg = &dflt;
    const char *sni = cfg->sni ? cfg->sni : MESH_TLS_DEFAULT_SNI;
    if (strlen(sni) == 0 || strlen(sni) > MESH_TLS_SNI_MAX)
        return MESH_ERR_INVAL;
    if (cfg->max_version && cfg->max_version != TLS1_2_VERSION &&
        cfg->max_version != TLS1_3_VERSION)
        return MESH_ERR_INVAL;
    mesh_tls_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return MESH_ERR_NOMEM;
    c->env = env;
    c->id = id;
    strcpy(c->sni, sni);
    c->key_update_after = cfg->key_update_after ? cfg->key_update_after : MESH_REC_UPDATE_AFTER;
    int rc = alpn_encode(cfg->alpn, c->alpn_wire, sizeof c->alpn_wire, &c->alpn_len);
    if (rc != MESH_OK)
        goto fail;
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
    if ((rc = mesh_identity_pkey_in(id, c->libctx, &c->pkey)) != MESH_OK)
        goto fail;
    if ((rc = make_cert(c)) != MESH_OK)
        goto fail;
    if ((rc = make_ssl_ctx(c, cfg->max_version)) != MESH_OK)
        goto fail;
    *out = c;
    return MESH_OK;
fail:
    drain_errors(env, "context setup", NULL, 0);
    mesh_log(env, MESH_LOG_ERROR, "tls: context setup failed: %s", mesh_errname(rc));
    mesh_tls_ctx_free(c);
    return rc;
}

void mesh_tls_ctx_free(mesh_tls_ctx *c)
{
    if (!c)
        return;
    SSL_CTX_free(c->ssl);
    for (size_t i = 0; i < sizeof c->suites / sizeof c->suites[0]; i++)
        mesh_rec_suite_free(c->suites[i]);
    X509_free(c->cert);
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
const mesh_env *mesh_tls_ctx_env(const mesh_tls_ctx *c)
{
    return c->env;
}
void *mesh_tls_ctx_libctx(const mesh_tls_ctx *c)
{
    return c->libctx;
}
const char *mesh_tls_ctx_sni(const mesh_tls_ctx *c)
{
    return c->sni;
}

int mesh_tls_ctx_cert_der(const mesh_tls_ctx *c, const uint8_t **der, size_t *len)
{
    if (!c || !der || !len)
        return MESH_ERR_INVAL;
    *der = c->cert_der;
    *len = c->cert_der_len;
    return MESH_OK;
}

/* ---- connections ------------------------------------------------------------------------ */

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
    /* Application records, once the handshake is complete (record.h): OpenSSL's traffic
     * secrets arrive through the key-log callback and are wiped once the keys are made. */
    mesh_rec *rx, *tx;
    uint8_t secret[2][MESH_REC_SECRET_MAX]; /* [0] client's, [1] server's */
    size_t secret_len[2];
    uint8_t *pt; /* opened content not read yet: [pt_off, pt_len) (room MESH_REC_INNER_MAX) */
    size_t pt_off, pt_len;
    int is_server;
    int done;        /* handshake complete */
    int failed;      /* sticky error code (0 = none) */
    int closed_sent; /* close_notify went out */
    int peer_closed; /* close_notify read */
    char alpn[MESH_TLS_ALPN_NAME_MAX + 1];
    char err[160];
};

static int bio_out_write(BIO *b, const char *data, int len)
{
    mesh_tls *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len > 0)
        t->out_fn(t->out_ud, (const uint8_t *)data, (size_t)len);
    return len;
}

/* The traffic secrets, as OpenSSL derives them: "CLIENT_TRAFFIC_SECRET_0 <random> <hex>" and
 * the server's. The only lines kept; handshake_done() turns them into keys and wipes them. */
static void keylog(const SSL *ssl, const char *line)
{
    mesh_tls *t = SSL_get_app_data((SSL *)ssl);
    int which = strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24) == 0   ? 0
                : strncmp(line, "SERVER_TRAFFIC_SECRET_0 ", 24) == 0 ? 1
                                                                     : -1;
    if (!t || which < 0)
        return;
    const char *hex = strchr(line + 24, ' ');
    size_t n = 0;
    for (hex = hex ? hex + 1 : ""; hex[0] && hex[1] && n < MESH_REC_SECRET_MAX; hex += 2) {
        int hi = OPENSSL_hexchar2int((unsigned char)hex[0]);
        int lo = OPENSSL_hexchar2int((unsigned char)hex[1]);
        if (hi < 0 || lo < 0)
            break;
        t->secret[which][n++] = (uint8_t)(hi << 4 | lo);
    }
    t->secret_len[which] = hex[0] ? 0 : n; /* anything unparsed: no secret */
}

static size_t in_held(const mesh_tls *t)
{
    return (t->in_len - t->in_off) + (t->lent_len - t->lent_off);
}

/* Append len bytes to the owned input buffer. */
static int in_append(mesh_tls *t, const uint8_t *data, size_t len)
{
    size_t held = t->in_len - t->in_off;
    if (held + len > MESH_TLS_IN_MAX)
        return MESH_ERR_LIMIT;
    if (t->in_off && held + len > t->in_cap - t->in_off) { /* compact first */
        memmove(t->in, t->in + t->in_off, held);
        t->in_off = 0;
        t->in_len = held;
    }
    if (t->in_len + len > t->in_cap) {
        size_t cap = t->in_cap ? t->in_cap : 4096;
        while (cap < t->in_len + len)
            cap *= 2;
        uint8_t *n = realloc(t->in, cap);
        if (!n)
            return MESH_ERR_NOMEM;
        t->in = n;
        t->in_cap = cap;
    }
    memcpy(t->in + t->in_len, data, len);
    t->in_len += len;
    return MESH_OK;
}

/* OpenSSL's input (the handshake): the owned bytes first, then the lent ones. */
static int bio_in_read(BIO *b, char *data, int len)
{
    mesh_tls *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    const uint8_t *src;
    size_t avail;
    if (t->in_len > t->in_off) {
        src = t->in + t->in_off;
        avail = t->in_len - t->in_off;
    } else {
        src = t->lent ? t->lent + t->lent_off : NULL;
        avail = t->lent_len - t->lent_off;
    }
    if (avail == 0) {
        BIO_set_retry_read(b);
        return -1;
    }
    size_t n = len > 0 && (size_t)len < avail ? (size_t)len : avail;
    memcpy(data, src, n);
    if (src == t->in + t->in_off) {
        t->in_off += n;
        if (t->in_off == t->in_len)
            t->in_off = t->in_len = 0; /* kept: in_release_if_idle() decides */
    } else {
        t->lent_off += n;
    }
    return (int)n;
}

/* Free the buffers once nothing at all is held: while a record is half there (in OpenSSL, in
 * our buffer, or among lent bytes about to be kept) more ciphertext is on its way and they are
 * about to be needed again (freeing and refilling them on every input event of a bulk stream
 * cost page faults). An idle connection holds none. */
static void in_release_if_idle(mesh_tls *t)
{
    if (in_held(t) || t->pt_len > t->pt_off || (t->ssl && SSL_has_pending(t->ssl)))
        return;
    if (t->in && t->in_cap > (size_t)MESH_TLS_IN_KEEP) {
        free(t->in);
        t->in = NULL;
        t->in_cap = t->in_off = t->in_len = 0;
    }
    free(t->pt);
    t->pt = NULL;
    t->pt_off = t->pt_len = 0;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b, (void)num, (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH: /* out_fn already took every byte */
        return 1;
    case BIO_CTRL_PENDING:
    case BIO_CTRL_WPENDING:
        return 0;
    default:
        return 0;
    }
}

int mesh_tls_new(mesh_tls **out, mesh_tls_ctx *ctx, int is_server, const char *const *alpn,
                 mesh_tls_out_fn out_fn, void *out_ud)
{
    if (!out || !ctx || !out_fn)
        return MESH_ERR_INVAL;
    uint8_t wire[sizeof ctx->alpn_wire];
    size_t wlen = 0;
    if (alpn && !is_server && alpn_encode(alpn, wire, sizeof wire, &wlen) != MESH_OK)
        return MESH_ERR_INVAL;
    mesh_tls *t = calloc(1, sizeof *t);
    if (!t)
        return MESH_ERR_NOMEM;
    t->ctx = ctx;
    t->out_fn = out_fn;
    t->out_ud = out_ud;
    t->is_server = is_server ? 1 : 0;
    ERR_clear_error();
    int rc = MESH_ERR_NOMEM;
    BIO *rb = NULL, *wb = NULL;
    t->ssl = SSL_new(ctx->ssl);
    rb = BIO_new(ctx->bio_in);
    wb = BIO_new(ctx->bio_out);
    if (!t->ssl || !rb || !wb)
        goto fail;
    BIO_set_data(rb, t);
    BIO_set_data(wb, t);
    SSL_set_app_data(t->ssl, t);
    SSL_set_bio(t->ssl, rb, wb); /* the SSL owns both now */
    rb = wb = NULL;
    rc = MESH_ERR_TLS;
    if (is_server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        SSL_set_verify(t->ssl, SSL_VERIFY_PEER, NULL);
        if (!wlen) {
            memcpy(wire, ctx->alpn_wire, ctx->alpn_len);
            wlen = ctx->alpn_len;
        }
        /* SSL_set_alpn_protos returns 0 on success (sic). */
        if (SSL_set_alpn_protos(t->ssl, wire, (unsigned int)wlen) != 0 ||
            SSL_set_tlsext_host_name(t->ssl, ctx->sni) != 1)
            goto fail;
    }
    *out = t;
    return MESH_OK;
fail:
    drain_errors(ctx->env, "connection setup", NULL, 0);
    BIO_free(rb);
    BIO_free(wb);
    mesh_tls_free(t);
    return rc;
}

void mesh_tls_set_reserve(mesh_tls *t, mesh_tls_reserve_fn reserve, mesh_tls_commit_fn commit)
{
    t->reserve = reserve && commit ? reserve : NULL;
    t->commit = reserve && commit ? commit : NULL;
}

void mesh_tls_free(mesh_tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    mesh_rec_free(t->rx);
    mesh_rec_free(t->tx);
    free(t->in);
    free(t->pt);
    OPENSSL_clear_free(t, sizeof *t);
    ERR_clear_error();
}

int mesh_tls_feed(mesh_tls *t, const uint8_t *data, size_t len)
{
    if (t->lent)
        return MESH_ERR_STATE;
    return len ? in_append(t, data, len) : MESH_OK;
}

int mesh_tls_lend(mesh_tls *t, const uint8_t *data, size_t len)
{
    if (t->lent)
        return MESH_ERR_STATE;
    if ((t->in_len - t->in_off) + len > MESH_TLS_IN_MAX)
        return MESH_ERR_LIMIT;
    t->lent = data;
    t->lent_off = 0;
    t->lent_len = len;
    return MESH_OK;
}

int mesh_tls_keep(mesh_tls *t)
{
    if (!t->lent)
        return MESH_OK;
    const uint8_t *rest = t->lent + t->lent_off;
    size_t n = t->lent_len - t->lent_off;
    t->lent = NULL;
    t->lent_off = t->lent_len = 0;
    int rc = n ? in_append(t, rest, n) : MESH_OK;
    in_release_if_idle(t);
    return rc;
}

/* Classify a failed SSL call. Empties the error queue (logging it) and makes the failure
 * sticky unless it is only "want more input". */
static int ssl_failure(mesh_tls *t, int ret, const char *what)
{
    int e = SSL_get_error(t->ssl, ret);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return MESH_ERR_AGAIN;
    }
    if (e == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        t->peer_closed = 1;
        return MESH_ERR_CLOSED;
    }
    unsigned long last = drain_errors(t->ctx->env, what, t->err, sizeof t->err);
    int rc = MESH_ERR_TLS;
    if (e == SSL_ERROR_SSL && ERR_GET_LIB(last) == ERR_LIB_SSL) {
        switch (ERR_GET_REASON(last)) {
        case SSL_R_UNSUPPORTED_PROTOCOL:
        case SSL_R_NO_PROTOCOLS_AVAILABLE:
        case SSL_R_UNSUPPORTED_SSL_VERSION:
        case SSL_AD_REASON_OFFSET + SSL_AD_PROTOCOL_VERSION:
            rc = MESH_ERR_VERSION;
            break;
        case SSL_R_NO_APPLICATION_PROTOCOL:
        case SSL_AD_REASON_OFFSET + SSL_AD_NO_APPLICATION_PROTOCOL:
            rc = MESH_ERR_ALPN;
            break;
        default:
            break;
        }
    } else if (e == SSL_ERROR_SSL && last == 0) {
        snprintf(t->err, sizeof t->err, "TLS failure without an error code");
    }
    if (ERR_GET_REASON(last) == ERR_R_MALLOC_FAILURE)
        rc = MESH_ERR_NOMEM;
    t->failed = rc;
    return rc;
}

/* The connection fails with rc; why goes to the error text and the debug log. */
static int rec_fail(mesh_tls *t, int rc, const char *why)
{
    if (why != t->err)
        snprintf(t->err, sizeof t->err, "%s", why);
    mesh_log(t->ctx->env, MESH_LOG_DEBUG, "tls: %s", t->err);
    return t->failed = rc;
}

/* One record of type with content data (≤ MESH_REC_PLAIN_MAX) out through out_fn. */
static int seal_out(mesh_tls *t, int type, const uint8_t *data, size_t len)
{
    uint8_t local[MESH_REC_SEAL_MAX];
    size_t want = MESH_REC_HDR + len + 1 + MESH_REC_TAG;
    uint8_t *room = t->reserve ? t->reserve(t->out_ud, want) : NULL;
    long n = mesh_rec_seal(t->tx, type, data, len, room ? room : local);
    if (room)
        t->commit(t->out_ud, n < 0 ? 0 : (size_t)n);
    if (n < 0)
        return rec_fail(t, MESH_ERR_TLS,
                        n == MESH_ERR_LIMIT ? "record sequence exhausted"
                                            : "record sealing failed");
    if (!room)
        t->out_fn(t->out_ud, local, (size_t)n);
    return MESH_OK;
}

/* KeyUpdate(update_not_requested) under the current key, then the next key (RFC 8446 §4.6.3). */
static int send_key_update(mesh_tls *t)
{
    static const uint8_t msg[5] = {24, 0, 0, 1, 0};
    int rc = seal_out(t, MESH_REC_HANDSHAKE, msg, sizeof msg);
    if (rc == MESH_OK && mesh_rec_update(t->tx) != MESH_OK)
        rc = rec_fail(t, MESH_ERR_TLS, "key update failed");
    return rc;
}

/* Keys for one direction (own: ours, to seal; else the peer's, to open) from the traffic
 * secret OpenSSL logged, for the negotiated suite. */
static int make_rec(mesh_tls *t, int own, mesh_rec **out)
{
    int suite = SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(t->ssl));
    mesh_rec_suite **su =
        suite >= 0x1301 && suite <= 0x1303 ? &t->ctx->suites[suite - 0x1301] : NULL;
    int which = own ? t->is_server : !t->is_server; /* secret[0] client's, [1] server's */
    int rc = !su ? MESH_ERR_INVAL : *su ? MESH_OK : mesh_rec_suite_new(su, t->ctx->libctx, suite);
    if (rc == MESH_OK)
        rc = mesh_rec_new(out, *su, t->secret[which], t->secret_len[which], own);
    if (rc != MESH_OK)
        rc = rec_fail(t, rc == MESH_ERR_NOMEM ? rc : MESH_ERR_TLS,
                      "no traffic keys from the handshake");
    return rc;
}

/* Handshake complete: application records from now on are ours (record.h), keyed with the
 * traffic secrets OpenSSL logged. OpenSSL must not hold input past its Finished (it reads
 * record by record without read-ahead, so the next record is still in our input). A server
 * that wrote early (mesh_tls_early) has its sealing keys already. */
static int switch_records(mesh_tls *t)
{
    int rc = MESH_OK;
    if (SSL_version(t->ssl) != TLS1_3_VERSION)
        rc = rec_fail(t, MESH_ERR_VERSION, "not TLS 1.3");
    else if (SSL_has_pending(t->ssl))
        rc = rec_fail(t, MESH_ERR_TLS, "OpenSSL holds input past the handshake");
    if (rc == MESH_OK && !t->tx)
        rc = make_rec(t, 1, &t->tx);
    if (rc == MESH_OK)
        rc = make_rec(t, 0, &t->rx);
    OPENSSL_cleanse(t->secret, sizeof t->secret);
    ERR_clear_error();
    if (rc == MESH_OK)
        t->done = 1;
    return rc;
}

/* The protocol OpenSSL selected into t->alpn; 0 when none (yet). */
static size_t take_alpn(mesh_tls *t)
{
    const unsigned char *sel = NULL;
    unsigned int sel_len = 0;
    SSL_get0_alpn_selected(t->ssl, &sel, &sel_len);
    if (sel_len) /* sel is NULL when there is none */
        memcpy(t->alpn, sel, sel_len);
    t->alpn[sel_len] = '\0';
    return sel_len;
}

int mesh_tls_early(mesh_tls *t)
{
    if (t->failed)
        return t->failed;
    if (t->done || t->tx)
        return MESH_OK;
    if (!t->is_server || !t->secret_len[1] || SSL_version(t->ssl) != TLS1_3_VERSION ||
        take_alpn(t) == 0)
        return MESH_ERR_AGAIN;
    int rc = make_rec(t, 1, &t->tx);
    ERR_clear_error();
    return rc;
}

int mesh_tls_handshake(mesh_tls *t)
{
    if (t->failed)
        return t->failed;
    if (t->done)
        return MESH_OK;
    ERR_clear_error();
    int ret = SSL_do_handshake(t->ssl);
    in_release_if_idle(t);
    if (ret != 1) {
        int rc = ssl_failure(t, ret, "handshake");
        if (rc == MESH_ERR_CLOSED) { /* close_notify during the handshake */
            snprintf(t->err, sizeof t->err, "peer closed during the handshake");
            rc = t->failed = MESH_ERR_TLS;
        }
        return rc;
    }
    if (take_alpn(t) == 0) {
        /* We require a protocol. A client met a server that ignored its offer; a server met
         * a client that offered none (alpn_select only runs for a client that offers). */
        snprintf(t->err, sizeof t->err,
                 t->is_server ? "client offered no application protocol"
                              : "server selected no application protocol");
        mesh_log(t->ctx->env, MESH_LOG_DEBUG, "tls: %s", t->err);
        return t->failed = MESH_ERR_ALPN;
    }
    return switch_records(t);
}

int mesh_tls_is_done(const mesh_tls *t)
{
    return t->done;
}

/* The next whole record of the input, contiguous: in the owned buffer (topped up from the lent
 * bytes just enough to complete it: only a record split between two feeds is copied) or in
 * place among the lent bytes. Consumed from the input. MESH_OK; MESH_ERR_AGAIN (incomplete);
 * or the connection fails (not application data, oversize: record_overflow). */
static int next_record(mesh_tls *t, const uint8_t **rec, size_t *len)
{
    const char *why = NULL;
    size_t owned = t->in_len - t->in_off;
    const uint8_t *lent = t->lent ? t->lent + t->lent_off : NULL;
    size_t lent_n = t->lent_len - t->lent_off;
    long n;
    if (owned) {
        for (size_t need = MESH_REC_HDR;;) {
            if (owned < need) {
                size_t k = need - owned < lent_n ? need - owned : lent_n;
                if (k == 0) /* nothing lent (or all of it used): wait for more */
                    return MESH_ERR_AGAIN;
                int rc = in_append(t, lent, k);
                if (rc != MESH_OK)
                    return rec_fail(t, rc, "input buffer");
                t->lent_off += k, lent += k, lent_n -= k, owned += k;
                if (owned < need)
                    return MESH_ERR_AGAIN;
            }
            if ((n = mesh_rec_length(t->in + t->in_off, &why)) < 0)
                return rec_fail(t, MESH_ERR_TLS, why);
            if ((size_t)n <= owned)
                break;
            need = (size_t)n;
        }
        *rec = t->in + t->in_off;
        t->in_off += (size_t)n;
        if (t->in_off == t->in_len)
            t->in_off = t->in_len = 0; /* *rec stays valid: nothing is appended before use */
    } else {
        if (lent_n < MESH_REC_HDR)
            return MESH_ERR_AGAIN;
        if ((n = mesh_rec_length(lent, &why)) < 0)
            return rec_fail(t, MESH_ERR_TLS, why);
        if (lent_n < (size_t)n)
            return MESH_ERR_AGAIN;
        *rec = lent;
        t->lent_off += (size_t)n;
    }
    *len = (size_t)n;
    return MESH_OK;
}

/* A record of another type than application data, its content contiguous at p. */
static int control_record(mesh_tls *t, int type, const uint8_t *p, size_t n)
{
    if (type == MESH_REC_ALERT) {
        if (n != 2)
            return rec_fail(t, MESH_ERR_TLS, "malformed alert");
        if (p[1] == 0) { /* close_notify */
            t->peer_closed = 1;
            return MESH_ERR_CLOSED;
        }
        snprintf(t->err, sizeof t->err, "peer sent alert %u", p[1]);
        return rec_fail(t, MESH_ERR_TLS, t->err);
    }
    if (type != MESH_REC_HANDSHAKE) {
        snprintf(t->err, sizeof t->err, "unexpected content type %d after the handshake", type);
        return rec_fail(t, MESH_ERR_TLS, t->err);
    }
    if (n == 0) /* RFC 8446 §5.1: no zero-length handshake fragments */
        return rec_fail(t, MESH_ERR_TLS, "empty handshake record");
    while (n > 0) { /* whole handshake messages (one split over records is refused) */
        if (n < 4 || 4 + ((size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3]) > n)
            return rec_fail(t, MESH_ERR_TLS, "post-handshake message split across records");
        size_t ml = (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
        if (p[0] == 24 && ml == 1 && p[4] <= 1) { /* KeyUpdate */
            if (n != 5) /* a key change must end its record (RFC 8446 §5.1) */
                return rec_fail(t, MESH_ERR_TLS, "KeyUpdate not at the end of its record");
            if (mesh_rec_update(t->rx) != MESH_OK)
                return rec_fail(t, MESH_ERR_TLS, "key update failed");
            if (p[4] == 1 && !t->closed_sent) { /* update_requested: answer before any data */
                int rc = send_key_update(t);
                if (rc != MESH_OK)
                    return rc;
            }
        } else if (p[0] != 4 || t->is_server) { /* a client ignores NewSessionTicket */
            snprintf(t->err, sizeof t->err, "unexpected handshake message %u after the handshake",
                     p[0]);
            return rec_fail(t, MESH_ERR_TLS, t->err);
        }
        p += 4 + ml;
        n -= 4 + ml;
    }
    return MESH_OK;
}

long mesh_tls_read(mesh_tls *t, uint8_t *buf, size_t cap)
{
    if (t->failed)
        return t->failed;
    if (!t->done)
        return MESH_ERR_STATE;
    if (t->peer_closed)
        return MESH_ERR_CLOSED;
    if (cap == 0)
        return 0;
    for (;;) {
        if (t->pt_len > t->pt_off) { /* the rest of a record opened for a smaller buffer */
            size_t n = t->pt_len - t->pt_off < cap ? t->pt_len - t->pt_off : cap;
            memcpy(buf, t->pt + t->pt_off, n);
            t->pt_off += n;
            if (t->pt_off == t->pt_len)
                t->pt_off = t->pt_len = 0;
            return (long)n;
        }
        const uint8_t *rec = NULL;
        size_t len = 0;
        int rc = next_record(t, &rec, &len);
        if (rc == MESH_ERR_AGAIN) {
            in_release_if_idle(t);
            return 0;
        }
        if (rc != MESH_OK)
            return rc;
        /* room for what does not fit in buf (only then: most records fit) */
        if (len - MESH_REC_HDR - MESH_REC_TAG > cap && !t->pt &&
            !(t->pt = malloc(MESH_REC_INNER_MAX)))
            return rec_fail(t, MESH_ERR_NOMEM, "out of memory");
        int type = 0;
        const char *why = NULL;
        long n = mesh_rec_open(t->rx, rec, len, buf, cap, t->pt, &type, &why);
        if (n < 0)
            return rec_fail(t, MESH_ERR_TLS, why);
        if (type == MESH_REC_APPDATA) {
            if ((size_t)n > cap) { /* the rest waits in pt */
                t->pt_len = (size_t)n - cap;
                return (long)cap;
            }
            if (n > 0)
                return n;
            continue; /* an empty record is legal */
        }
        const uint8_t *p = buf;
        if ((size_t)n > cap) { /* make the content contiguous in pt */
            memmove(t->pt + cap, t->pt, (size_t)n - cap);
            memcpy(t->pt, buf, cap);
            p = t->pt;
        }
        if ((rc = control_record(t, type, p, (size_t)n)) != MESH_OK)
            return rc;
    }
}

int mesh_tls_write(mesh_tls *t, const uint8_t *data, size_t len)
{
    if (t->failed)
        return t->failed;
    if (!t->tx || t->closed_sent)
        return MESH_ERR_STATE;
    while (len > 0) {
        int rc = MESH_OK;
        if (mesh_rec_seq(t->tx) >= t->ctx->key_update_after)
            rc = send_key_update(t);
        size_t k = len < MESH_REC_PLAIN_MAX ? len : MESH_REC_PLAIN_MAX;
        if (rc == MESH_OK)
            rc = seal_out(t, MESH_REC_APPDATA, data, k);
        if (rc != MESH_OK)
            return rc;
        data += k;
        len -= k;
    }
    return MESH_OK;
}

int mesh_tls_send_record(mesh_tls *t, int type, const uint8_t *data, size_t len)
{
    if (type < 0 || type > 255 || len > MESH_REC_PLAIN_MAX || (!data && len))
        return MESH_ERR_INVAL;
    if (t->failed)
        return t->failed;
    if (!t->tx || t->closed_sent)
        return MESH_ERR_STATE;
    return seal_out(t, type, data, len);
}

int mesh_tls_close(mesh_tls *t)
{
    if (!t->done)
        return MESH_ERR_STATE;
    if (t->closed_sent || t->failed)
        return MESH_OK;
    t->closed_sent = 1;
    static const uint8_t close_notify[2] = {1, 0}; /* level warning, description 0 */
    (void)seal_out(t, MESH_REC_ALERT, close_notify, sizeof close_notify);
    return MESH_OK;
}

size_t mesh_tls_partial(const mesh_tls *t)
{
    return in_held(t) + (t->pt_len - t->pt_off) +
           (!t->done && t->ssl && SSL_has_pending(t->ssl) ? 1 : 0);
}

int mesh_tls_export(mesh_tls *t, const char *label, uint8_t *out, size_t len)
{
    if (!label || !out || len == 0 || len > MESH_TLS_EXPORT_MAX)
        return MESH_ERR_INVAL;
    if (!(t->done || t->tx) || t->failed || !t->ssl)
        return MESH_ERR_STATE;
    ERR_clear_error();
    if (SSL_export_keying_material(t->ssl, out, len, label, strlen(label), NULL, 0, 0) != 1) {
        drain_errors(t->ctx->env, "export", t->err, sizeof t->err);
        return MESH_ERR_TLS;
    }
    return MESH_OK;
}

void mesh_tls_drop_handshake(mesh_tls *t)
{
    if (!t || !t->done || !t->ssl)
        return;
    SSL_free(t->ssl); /* its BIOs too; nothing reads or writes through them any more */
    t->ssl = NULL;
    ERR_clear_error();
}

const char *mesh_tls_alpn(const mesh_tls *t)
{
    return t->alpn;
}
const char *mesh_tls_error_text(const mesh_tls *t)
{
    return t->err;
}
