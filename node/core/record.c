/* record.c — TLS 1.3 record protection for one direction. See record.h. */
#include "core/record.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <string.h>

#include "meshara/error.h"

enum {
    IV_LEN = 12,
    KEY_MAX = 32,
    SEQ_LEN = 8,              /* the sequence number XORed into the IV's last bytes */
    LEGACY_VERSION = 0x0303,  /* every TLS 1.3 record header says TLS 1.2 (RFC 8446 §5.1) */
    FINAL_MAX = MESH_REC_TAG, /* room for what DecryptFinal may write (AEADs write none) */
    LABEL_PREFIX_LEN = 6,     /* "tls13 " */
    LABEL_MAX = 32,           /* longest label passed here ("traffic upd" is 11) */
    HKDF_LABEL_MAX = 2 + 1 + LABEL_PREFIX_LEN + LABEL_MAX + 1,
    /* RFC 8446 §7.1 HkdfLabel: uint16 length, then label<7..255> (its length byte, "tls13 ",
     * the label), then context<0..255> (its length byte; the context is always empty here) */
};

struct mesh_rec_suite {
    EVP_CIPHER *cipher;
    EVP_KDF *hkdf;
    const char *md; /* the suite's hash, for HKDF */
    size_t key_len, hash_len;
};

struct mesh_rec {
    EVP_CIPHER_CTX *ctx;
    const mesh_rec_suite *suite;
    uint8_t secret[MESH_REC_SECRET_MAX];
    uint8_t iv[IV_LEN];
    uint64_t seq;
    int seal;
};

int mesh_rec_suite_new(mesh_rec_suite **out, void *libctx, int suite)
{
    const char *cipher, *md;
    size_t key_len, hash_len;
    switch (suite) {
    case MESH_REC_AES_128_GCM_SHA256:
        cipher = "AES-128-GCM", md = "SHA256", key_len = 16, hash_len = 32;
        break;
    case MESH_REC_AES_256_GCM_SHA384:
        cipher = "AES-256-GCM", md = "SHA384", key_len = 32, hash_len = 48;
        break;
    case MESH_REC_CHACHA20_POLY1305_SHA256:
        cipher = "ChaCha20-Poly1305", md = "SHA256", key_len = 32, hash_len = 32;
        break;
    default:
        return MESH_ERR_INVAL;
    }
    if (!out)
        return MESH_ERR_INVAL;
    mesh_rec_suite *s = OPENSSL_zalloc(sizeof *s);
    if (!s)
        return MESH_ERR_NOMEM;
    s->md = md;
    s->key_len = key_len;
    s->hash_len = hash_len;
    s->cipher = EVP_CIPHER_fetch(libctx, cipher, NULL);
    s->hkdf = EVP_KDF_fetch(libctx, "HKDF", NULL);
    if (!s->cipher || !s->hkdf) {
        mesh_rec_suite_free(s);
        return MESH_ERR_CRYPTO;
    }
    *out = s;
    return MESH_OK;
}

void mesh_rec_suite_free(mesh_rec_suite *s)
{
    if (!s)
        return;
    EVP_CIPHER_free(s->cipher);
    EVP_KDF_free(s->hkdf);
    OPENSSL_free(s);
}

/* HKDF-Expand-Label(secret, label, "", len) (RFC 8446 §7.1). */
static int expand_label(const mesh_rec_suite *su, const uint8_t *secret, const char *label,
                        uint8_t *out, size_t len)
{
    uint8_t info[HKDF_LABEL_MAX];
    size_t ll = strlen(label);
    if (ll > LABEL_MAX)
        return MESH_ERR_INTERNAL;
    size_t n = 0;
    info[n++] = (uint8_t)(len >> 8);
    info[n++] = (uint8_t)len;
    info[n++] = (uint8_t)(LABEL_PREFIX_LEN + ll);
    memcpy(info + n, "tls13 ", LABEL_PREFIX_LEN);
    n += LABEL_PREFIX_LEN;
    memcpy(info + n, label, ll);
    n += ll;
    info[n++] = 0; /* empty context */
    EVP_KDF_CTX *k = EVP_KDF_CTX_new(su->hkdf);
    if (!k)
        return MESH_ERR_NOMEM;
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)su->md, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, su->hash_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n),
        OSSL_PARAM_construct_end(),
    };
    int ok = EVP_KDF_derive(k, out, len, p) == 1;
    EVP_KDF_CTX_free(k);
    return ok ? MESH_OK : MESH_ERR_CRYPTO;
}

/* Key and IV from r->secret into the cipher context; sequence 0. */
static int set_keys(mesh_rec *r)
{
    uint8_t key[KEY_MAX];
    int rc = expand_label(r->suite, r->secret, "key", key, r->suite->key_len);
    if (rc == MESH_OK)
        rc = expand_label(r->suite, r->secret, "iv", r->iv, IV_LEN);
    if (rc == MESH_OK && EVP_CipherInit_ex(r->ctx, NULL, NULL, key, NULL, r->seal) != 1)
        rc = MESH_ERR_CRYPTO;
    OPENSSL_cleanse(key, sizeof key);
    r->seq = 0;
    return rc;
}

int mesh_rec_new(mesh_rec **out, const mesh_rec_suite *suite, const uint8_t *secret,
                 size_t secret_len, int seal)
{
    if (!out || !suite || !secret || secret_len != suite->hash_len)
        return MESH_ERR_INVAL;
    mesh_rec *r = OPENSSL_zalloc(sizeof *r);
    if (!r)
        return MESH_ERR_NOMEM;
    r->suite = suite;
    r->seal = seal ? 1 : 0;
    memcpy(r->secret, secret, secret_len);
    r->ctx = EVP_CIPHER_CTX_new();
    int rc = r->ctx ? MESH_OK : MESH_ERR_NOMEM;
    if (rc == MESH_OK &&
        (EVP_CipherInit_ex(r->ctx, suite->cipher, NULL, NULL, NULL, r->seal) != 1 ||
         EVP_CIPHER_CTX_ctrl(r->ctx, EVP_CTRL_AEAD_SET_IVLEN, IV_LEN, NULL) != 1))
        rc = MESH_ERR_CRYPTO;
    if (rc == MESH_OK)
        rc = set_keys(r);
    if (rc != MESH_OK) {
        mesh_rec_free(r);
        return rc;
    }
    *out = r;
    return MESH_OK;
}

void mesh_rec_free(mesh_rec *r)
{
    if (!r)
        return;
    EVP_CIPHER_CTX_free(r->ctx);
    OPENSSL_clear_free(r, sizeof *r);
}

int mesh_rec_dup(mesh_rec **out, const mesh_rec *r)
{
    if (!out || !r)
        return MESH_ERR_INVAL;
    mesh_rec *d = OPENSSL_malloc(sizeof *d);
    if (!d)
        return MESH_ERR_NOMEM;
    *d = *r;
    d->ctx = EVP_CIPHER_CTX_new();
    int rc = !d->ctx                                    ? MESH_ERR_NOMEM
             : EVP_CIPHER_CTX_copy(d->ctx, r->ctx) != 1 ? MESH_ERR_CRYPTO
                                                        : MESH_OK;
    if (rc != MESH_OK) {
        mesh_rec_free(d);
        return rc;
    }
    *out = d;
    return MESH_OK;
}

static void nonce_of(const mesh_rec *r, uint8_t nonce[IV_LEN])
{
    memcpy(nonce, r->iv, IV_LEN);
    for (int i = 0; i < SEQ_LEN; i++)
        nonce[IV_LEN - 1 - i] ^= (uint8_t)(r->seq >> (8 * i));
}

long mesh_rec_seal(mesh_rec *r, int type, const uint8_t *data, size_t len, uint8_t *out)
{
    if (len > MESH_REC_PLAIN_MAX || !r->seal)
        return MESH_ERR_INVAL;
    if (r->seq == UINT64_MAX)
        return MESH_ERR_LIMIT;
    size_t body = len + 1 + MESH_REC_TAG;
    out[0] = MESH_REC_APPDATA;
    out[1] = (uint8_t)(LEGACY_VERSION >> 8);
    out[2] = (uint8_t)LEGACY_VERSION;
    out[3] = (uint8_t)(body >> 8);
    out[4] = (uint8_t)body;
    uint8_t nonce[IV_LEN], t = (uint8_t)type;
    nonce_of(r, nonce);
    int l1 = 0, l2 = 0, l3 = 0, l4 = 0;
    if (EVP_EncryptInit_ex(r->ctx, NULL, NULL, NULL, nonce) != 1 ||
        EVP_EncryptUpdate(r->ctx, NULL, &l1, out, MESH_REC_HDR) != 1 ||
        (len && EVP_EncryptUpdate(r->ctx, out + MESH_REC_HDR, &l2, data, (int)len) != 1) ||
        EVP_EncryptUpdate(r->ctx, out + MESH_REC_HDR + len, &l3, &t, 1) != 1 ||
        EVP_EncryptFinal_ex(r->ctx, out + MESH_REC_HDR + len + 1, &l4) != 1 ||
        (size_t)l2 + (size_t)l3 + (size_t)l4 != len + 1 ||
        EVP_CIPHER_CTX_ctrl(r->ctx, EVP_CTRL_AEAD_GET_TAG, MESH_REC_TAG,
                            out + MESH_REC_HDR + len + 1) != 1)
        return MESH_ERR_CRYPTO;
    r->seq++;
    return (long)(MESH_REC_HDR + body);
}

long mesh_rec_length(const uint8_t hdr[MESH_REC_HDR], const char **why)
{
    size_t body = (size_t)hdr[3] << 8 | hdr[4];
    if (hdr[0] != MESH_REC_APPDATA) {
        *why = "unexpected record type after the handshake";
        return MESH_ERR_MALFORMED;
    }
    if (body > MESH_REC_BODY_MAX) {
        *why = "record overflow";
        return MESH_ERR_MALFORMED;
    }
    if (body < 1 + MESH_REC_TAG) {
        *why = "record too short to hold a content type";
        return MESH_ERR_MALFORMED;
    }
    return (long)(MESH_REC_HDR + body);
}

long mesh_rec_open(mesh_rec *r, const uint8_t *rec, size_t len, uint8_t *out1, size_t cap1,
                   uint8_t *out2, int *type, const char **why)
{
    if (r->seal || len < MESH_REC_HDR + 1 + MESH_REC_TAG ||
        len > MESH_REC_HDR + MESH_REC_BODY_MAX) {
        *why = "bad record length";
        return MESH_ERR_INVAL;
    }
    if (r->seq == UINT64_MAX) {
        *why = "record sequence exhausted";
        return MESH_ERR_LIMIT;
    }
    size_t n = len - MESH_REC_HDR - MESH_REC_TAG; /* inner plaintext */
    size_t n1 = n < cap1 ? n : cap1;
    uint8_t nonce[IV_LEN];
    nonce_of(r, nonce);
    int l0 = 0, l1 = 0, l2 = 0, l3 = 0;
    uint8_t fin[FINAL_MAX];
    if (EVP_DecryptInit_ex(r->ctx, NULL, NULL, NULL, nonce) != 1 ||
        EVP_DecryptUpdate(r->ctx, NULL, &l0, rec, MESH_REC_HDR) != 1 ||
        (n1 && EVP_DecryptUpdate(r->ctx, out1, &l1, rec + MESH_REC_HDR, (int)n1) != 1) ||
        (n > n1 &&
         EVP_DecryptUpdate(r->ctx, out2, &l2, rec + MESH_REC_HDR + n1, (int)(n - n1)) != 1) ||
        EVP_CIPHER_CTX_ctrl(r->ctx, EVP_CTRL_AEAD_SET_TAG, MESH_REC_TAG,
                            (void *)(rec + len - MESH_REC_TAG)) != 1 ||
        EVP_DecryptFinal_ex(r->ctx, fin, &l3) != 1 || (size_t)l1 + (size_t)l2 + (size_t)l3 != n) {
        *why = "record authentication failed (bad_record_mac)";
        return MESH_ERR_CRYPTO;
    }
    r->seq++;
    size_t i = n; /* the type is the last non-zero byte; zeros after it are padding */
    while (i > 0) {
        uint8_t b = i - 1 < n1 ? out1[i - 1] : out2[i - 1 - n1];
        if (b)
            break;
        i--;
    }
    if (i == 0) {
        *why = "record without a content type";
        return MESH_ERR_MALFORMED;
    }
    i--;
    *type = i < n1 ? out1[i] : out2[i - n1];
    if (i > MESH_REC_PLAIN_MAX) {
        *why = "record overflow";
        return MESH_ERR_MALFORMED;
    }
    return (long)i;
}

int mesh_rec_update(mesh_rec *r)
{
    uint8_t next[MESH_REC_SECRET_MAX];
    int rc = expand_label(r->suite, r->secret, "traffic upd", next, r->suite->hash_len);
    if (rc == MESH_OK) {
        memcpy(r->secret, next, r->suite->hash_len);
        rc = set_keys(r);
    }
    OPENSSL_cleanse(next, sizeof next);
    return rc;
}

uint64_t mesh_rec_seq(const mesh_rec *r)
{
    return r->seq;
}

int mesh_rec_skip(mesh_rec *r, uint64_t n)
{
    if (r->seq != 0)
        return MESH_ERR_STATE;
    r->seq = n;
    return MESH_OK;
}
