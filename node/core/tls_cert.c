/* tls_cert.c — the web profile's certificate (tls.h; the public half in meshara.h): a
 * self-signed one made as `openssl req -x509 -newkey ec|rsa -days 365 -subj /CN=host -addext
 * subjectAltName=DNS:host` makes it (the most common way a server gets a certificate that no
 * CA signed), or the configured PEM chain and key. Its key is never the identity key: the
 * identity is proven by the exporter-bound hello (session.h), and a web server's certificate
 * has an ECDSA or RSA key (no browser accepts Ed25519). Nothing here reads a clock: dates
 * come from the caller. */
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tls_ctx.h"

enum cert_limits {
    CERT_SERIAL_LEN = 20, /* openssl req: 159 random bits */
    CERT_DAY_S = 86400,
    CERT_RSA_BITS = 2048,
    CERT_EC_BITS = 256,
};

/* ---- making one ------------------------------------------------------------------------- */

static EVP_PKEY *new_key(OSSL_LIB_CTX *lib, int type)
{
    if (type == MESH_CERT_ECDSA_P256)
        return EVP_PKEY_Q_keygen(lib, NULL, "EC", "P-256");
    if (type == MESH_CERT_RSA_2048)
        return EVP_PKEY_Q_keygen(lib, NULL, "RSA", (size_t)CERT_RSA_BITS);
    return NULL;
}

/* One X509v3 extension of x (its own issuer) from its openssl.cnf text. */
static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, &v3, nid, value);
    int ok = e && X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok;
}

/* Version 3, random serial, CN = SAN = host, validity, the extensions openssl req writes
 * (v3_ca of Debian's openssl.cnf, then the SAN), signed with SHA-256. */
static int fill_cert(X509 *x, EVP_PKEY *key, const mesh_env *env, const char *host,
                     int64_t not_before)
{
    uint8_t serial[CERT_SERIAL_LEN];
    char san[MESH_TLS_SNI_MAX + 8];
    mesh_env_random(env, serial, sizeof serial);
    serial[0] &= 0x7f; /* a positive INTEGER */
    snprintf(san, sizeof san, "DNS:%s", host);
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    X509_NAME *name = X509_NAME_new();
    int ok = bn && name && X509_set_version(x, X509_VERSION_3) &&
             BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) &&
             ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before) &&
             ASN1_TIME_set(X509_getm_notAfter(x),
                           (time_t)(not_before + (int64_t)MESH_TLS_CERT_DAYS * CERT_DAY_S)) &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)host, -1,
                                        -1, 0) &&
             X509_set_subject_name(x, name) && X509_set_issuer_name(x, name) &&
             X509_set_pubkey(x, key) && add_ext(x, NID_subject_key_identifier, "hash") &&
             add_ext(x, NID_authority_key_identifier, "keyid:always") &&
             add_ext(x, NID_basic_constraints, "critical,CA:TRUE") &&
             add_ext(x, NID_subject_alt_name, san) && X509_sign(x, key, EVP_sha256()) > 0;
    X509_NAME_free(name);
    BN_free(bn);
    return ok;
}

/* A self-signed certificate for host and its new key of type, in library context lib. */
static int make_cert(OSSL_LIB_CTX *lib, const mesh_env *env, int type, const char *host,
                     int64_t not_before, X509 **xo, EVP_PKEY **ko)
{
    if (type != MESH_CERT_ECDSA_P256 && type != MESH_CERT_RSA_2048)
        return MESH_ERR_INVAL;
    EVP_PKEY *key = new_key(lib, type);
    X509 *x = key ? X509_new_ex(lib, NULL) : NULL;
    if (!x || !fill_cert(x, key, env, host, not_before)) {
        X509_free(x);
        EVP_PKEY_free(key);
        return MESH_ERR_CRYPTO;
    }
    *xo = x;
    *ko = key;
    return MESH_OK;
}

/* The name a certificate made here carries: a host name, never an address. */
static const char *cert_host(const char *host)
{
    return host && *host && strlen(host) <= MESH_TLS_SNI_MAX && !mesh_tls_is_ip_literal(host)
               ? host
               : MESH_TLS_WEB_NO_HOST;
}

/* ---- reading one ------------------------------------------------------------------------- */

/* A key file with a passphrase is refused rather than asked for (OpenSSL's default would
 * read the terminal). */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

/* The certificates of a PEM chain (the first into *xo, the rest into *chain: NULL when none)
 * and the key of another PEM, in library context lib (NULL = default). MESH_OK;
 * MESH_ERR_CORRUPT; MESH_ERR_NOMEM. */
static int read_pem(OSSL_LIB_CTX *lib, const char *cert, size_t cert_len, const char *key,
                    size_t key_len, X509 **xo, STACK_OF(X509) * *chain, EVP_PKEY **ko)
{
    int rc = MESH_ERR_NOMEM;
    X509 *first = NULL, *x = NULL;
    STACK_OF(X509) *rest = sk_X509_new_null();
    EVP_PKEY *k = NULL;
    BIO *cb = BIO_new_mem_buf(cert, (int)cert_len), *kb = BIO_new_mem_buf(key, (int)key_len);
    if (!rest || !cb || !kb)
        goto out;
    /* Certificates up to the first thing that is not one: the end of the text ("no start
     * line": done) or a damaged one (refused). */
    for (;;) {
        if (!(x = X509_new_ex(lib, NULL)))
            goto out;
        if (!PEM_read_bio_X509(cb, &x, no_passphrase, NULL))
            break;
        if (!first)
            first = x;
        else if (!sk_X509_push(rest, x))
            goto out;
        x = NULL;
    }
    rc = MESH_ERR_CORRUPT;
    if (!first || ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE)
        goto out;
    ERR_clear_error();
    k = PEM_read_bio_PrivateKey_ex(kb, NULL, no_passphrase, NULL, lib, NULL);
    if (!k || X509_check_private_key(first, k) != 1)
        goto out;
    *xo = first;
    *ko = k;
    *chain = sk_X509_num(rest) ? rest : NULL;
    if (!*chain)
        sk_X509_free(rest);
    first = NULL, k = NULL, rest = NULL;
    rc = MESH_OK;
out:
    X509_free(x);
    X509_free(first);
    EVP_PKEY_free(k);
    sk_X509_pop_free(rest, X509_free);
    BIO_free(cb);
    BIO_free(kb);
    return rc;
}

int mesh_tls_web_cert(mesh_tls_ctx *c, const mesh_tls_cfg *cfg)
{
    int rc;
    if (cfg->cert_pem || cfg->key_pem) {
        if (!cfg->cert_pem || !cfg->key_pem || cfg->cert_pem_len > MESH_TLS_PEM_MAX ||
            cfg->key_pem_len > MESH_TLS_PEM_MAX)
            return MESH_ERR_INVAL;
        rc = read_pem(c->libctx, cfg->cert_pem, cfg->cert_pem_len, cfg->key_pem, cfg->key_pem_len,
                      &c->cert, &c->chain, &c->pkey);
    } else {
        const char *host = cfg->host_name ? cfg->host_name : c->send_sni ? c->sni : NULL;
        rc = make_cert(c->libctx, c->env, cfg->cert_type, cert_host(host), c->unix_epoch, &c->cert,
                       &c->pkey);
    }
    return rc == MESH_OK ? mesh_tls_cert_der_keep(c) : rc;
}

/* ---- the public half (meshara.h) ----------------------------------------------------------- */

/* The PEM text a BIO holds, NUL-terminated, into *out (*len without the NUL). */
static int bio_text(BIO *b, char **out, size_t *len)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    char *copy = n > 0 ? malloc((size_t)n + 1) : NULL;
    if (!copy)
        return n > 0 ? MESH_ERR_NOMEM : MESH_ERR_CRYPTO;
    memcpy(copy, data, (size_t)n);
    copy[n] = '\0';
    *out = copy;
    *len = (size_t)n;
    return MESH_OK;
}

int mesh_tls_cert_generate(const mesh_env *env, int type, const char *host, int64_t not_before,
                           char **cert_pem, size_t *cert_len, char **key_pem, size_t *key_len)
{
    if (!env || !cert_pem || !cert_len || !key_pem || !key_len ||
        (host && strlen(host) > MESH_TLS_SNI_MAX))
        return MESH_ERR_INVAL;
    mesh_tls_lib *lib = NULL;
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    BIO *cb = NULL, *kb = NULL;
    char *cp = NULL;
    size_t cl = 0;
    int rc = mesh_tls_lib_new(&lib, env);
    if (rc == MESH_OK)
        rc = make_cert(lib->libctx, env, type, cert_host(host), not_before, &x, &k);
    if (rc == MESH_OK) {
        rc = MESH_ERR_NOMEM;
        cb = BIO_new(BIO_s_mem());
        kb = BIO_new(BIO_s_secmem()); /* wiped when freed */
    }
    if (cb && kb) {
        rc = MESH_ERR_CRYPTO;
        if (PEM_write_bio_X509(cb, x) && PEM_write_bio_PrivateKey(kb, k, NULL, NULL, 0, NULL, NULL))
            rc = bio_text(cb, &cp, &cl);
        if (rc == MESH_OK && (rc = bio_text(kb, key_pem, key_len)) == MESH_OK) {
            *cert_pem = cp;
            *cert_len = cl;
            cp = NULL;
        }
    }
    free(cp);
    BIO_free(cb);
    BIO_free(kb);
    X509_free(x);
    EVP_PKEY_free(k);
    mesh_tls_lib_free(lib);
    ERR_clear_error();
    return rc;
}

/* enum mesh_cert_type of a key, or -1. */
static int key_type(const EVP_PKEY *k)
{
    char group[32] = "";
    size_t glen = 0;
    if (EVP_PKEY_is_a(k, "RSA") && EVP_PKEY_get_bits(k) == CERT_RSA_BITS)
        return MESH_CERT_RSA_2048;
    if (EVP_PKEY_is_a(k, "EC") && EVP_PKEY_get_bits(k) == CERT_EC_BITS &&
        EVP_PKEY_get_group_name(k, group, sizeof group, &glen) &&
        (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0))
        return MESH_CERT_ECDSA_P256;
    return -1;
}

int mesh_tls_cert_check(const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
                        mesh_tls_cert_info *info)
{
    if (!cert_pem || !key_pem || cert_len > MESH_TLS_PEM_MAX || key_len > MESH_TLS_PEM_MAX)
        return MESH_ERR_INVAL;
    X509 *x = NULL;
    STACK_OF(X509) *chain = NULL;
    EVP_PKEY *k = NULL;
    ERR_clear_error();
    int rc = read_pem(NULL, cert_pem, cert_len, key_pem, key_len, &x, &chain, &k);
    if (rc == MESH_OK && info) {
        int days = 0, secs = 0;
        ASN1_TIME *epoch = ASN1_TIME_set(NULL, 0);
        if (!epoch || !ASN1_TIME_diff(&days, &secs, epoch, X509_get0_notAfter(x)))
            rc = epoch ? MESH_ERR_CORRUPT : MESH_ERR_NOMEM;
        ASN1_TIME_free(epoch);
        if (rc == MESH_OK) {
            info->type = key_type(k);
            info->not_after = (int64_t)days * CERT_DAY_S + secs;
            info->chain_len = 1 + (size_t)(chain ? sk_X509_num(chain) : 0);
            info->common_name[0] = '\0'; /* none, or longer than a host name: "" */
            X509_NAME *subject = X509_get_subject_name(x);
            if (subject && X509_NAME_get_text_by_NID(subject, NID_commonName, info->common_name,
                                                     sizeof info->common_name) < 0)
                info->common_name[0] = '\0';
        }
    }
    X509_free(x);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(k);
    ERR_clear_error();
    return rc;
}

void mesh_tls_pem_free(char *pem, size_t len)
{
    if (!pem)
        return;
    OPENSSL_cleanse(pem, len);
    free(pem);
}
