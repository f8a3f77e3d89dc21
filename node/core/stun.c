/* stun.c — the STUN codec (see stun.h): header and attributes, typed values, integrity. */
#include "core/stun.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <string.h>

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}
static uint32_t rd32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static size_t pad4(size_t n)
{
    return (n + 3) & ~(size_t)3;
}

/* ---- CRC-32 and HMAC ---------------------------------------------------------------------- */

/* Reflected CRC-32 (polynomial 0xedb88320), four bits at a time: a 16-entry constant table
 * keeps the code short and needs no initialisation (no global state). */
uint32_t mesh_stun_crc32(const uint8_t *data, size_t len)
{
    static const uint32_t T[16] = {
        0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4,
        0x4db26158, 0x5005713c, 0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
        0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
    };
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < len; i++) {
        c ^= data[i];
        c = (c >> 4) ^ T[c & 15];
        c = (c >> 4) ^ T[c & 15];
    }
    return c ^ 0xffffffffu;
}

/* HMAC over a header whose length field is replaced by hdr_len, then body[0 .. body_len):
 * what an integrity attribute covers (§14.5: the length as if the message ended right after
 * the integrity attribute). */
static int hmac_msg(const char *digest, const uint8_t *key, size_t keylen, const uint8_t *msg,
                    size_t body_len, uint16_t hdr_len, uint8_t *out, size_t outlen)
{
    uint8_t hdr[MESH_STUN_HDR_LEN];
    memcpy(hdr, msg, sizeof hdr);
    wr16(hdr + 2, hdr_len);
    int rc = MESH_ERR_CRYPTO;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    if (!ctx)
        goto out;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)digest, 0),
        OSSL_PARAM_construct_end(),
    };
    /* An empty key is legal for HMAC; OpenSSL wants a non-NULL pointer for it. */
    static const uint8_t nokey[1] = {0};
    size_t got = 0;
    if (EVP_MAC_init(ctx, keylen ? key : nokey, keylen, params) == 1 &&
        EVP_MAC_update(ctx, hdr, sizeof hdr) == 1 &&
        EVP_MAC_update(ctx, msg + MESH_STUN_HDR_LEN, body_len) == 1 &&
        EVP_MAC_final(ctx, out, &got, outlen) == 1 && got == outlen)
        rc = MESH_OK;
out:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return rc;
}

int mesh_stun_long_term_key(uint8_t out[MESH_STUN_LONG_TERM_KEY_LEN], const char *username,
                            size_t ulen, const char *realm, size_t rlen, const char *password,
                            size_t plen)
{
    if (!out || (ulen && !username) || (rlen && !realm) || (plen && !password) ||
        ulen > MESH_STUN_MAX_USERNAME || rlen > MESH_STUN_MAX_TEXT || plen > MESH_STUN_MAX_TEXT)
        return MESH_ERR_INVAL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned got = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, username, ulen) == 1 && EVP_DigestUpdate(ctx, ":", 1) == 1 &&
             EVP_DigestUpdate(ctx, realm, rlen) == 1 && EVP_DigestUpdate(ctx, ":", 1) == 1 &&
             EVP_DigestUpdate(ctx, password, plen) == 1 &&
             EVP_DigestFinal_ex(ctx, out, &got) == 1 && got == MESH_STUN_LONG_TERM_KEY_LEN;
    EVP_MD_CTX_free(ctx);
    return ok ? MESH_OK : MESH_ERR_CRYPTO;
}

/* ---- decoding ------------------------------------------------------------------------------ */

int mesh_stun_looks_like(const uint8_t *buf, size_t len)
{
    return buf && len >= MESH_STUN_HDR_LEN && (buf[0] & 0xc0) == 0 &&
           rd32(buf + 4) == MESH_STUN_MAGIC;
}

int mesh_stun_frame_len(const uint8_t *buf, size_t len, size_t *total)
{
    if (!buf)
        return MESH_ERR_TRUNCATED;
    /* Refuse as soon as the bytes present cannot start a message (a peer sending a short line
     * of text must not leave the reader waiting for a header that never completes). */
    static const uint8_t cookie[4] = {0x21, 0x12, 0xa4, 0x42};
    if (len >= 1 && (buf[0] & 0xc0))
        return MESH_ERR_MALFORMED;
    for (size_t i = 4; i < 8 && i < len; i++)
        if (buf[i] != cookie[i - 4])
            return MESH_ERR_MALFORMED;
    if (len < MESH_STUN_HDR_LEN)
        return MESH_ERR_TRUNCATED;
    uint16_t body = rd16(buf + 2);
    if (!mesh_stun_looks_like(buf, len) || (body & 3))
        return MESH_ERR_MALFORMED;
    if (total)
        *total = MESH_STUN_HDR_LEN + (size_t)body;
    return MESH_OK;
}

/* Where an attribute of this type may stand, given the integrity attributes seen so far;
 * records the integrity attributes' indexes. */
static int place_attr(mesh_stun_msg *m, const mesh_stun_attr *a, size_t idx)
{
    if (m->fp >= 0)
        return MESH_ERR_MALFORMED; /* FINGERPRINT is the last attribute */
    int after_integrity = m->mi >= 0 || m->mi256 >= 0;
    switch (a->type) {
    case MESH_STUN_A_MESSAGE_INTEGRITY:
        if (a->len != MESH_STUN_MI_LEN)
            return MESH_ERR_MALFORMED;
        if (!after_integrity)
            m->mi = (int)idx;
        break; /* a later one is ignored (§14.5) */
    case MESH_STUN_A_MESSAGE_INTEGRITY_SHA256:
        if (a->len < MESH_STUN_MI256_MIN || a->len > MESH_STUN_MI256_LEN || (a->len & 3))
            return MESH_ERR_MALFORMED;
        if (m->mi256 < 0)
            m->mi256 = (int)idx;
        break;
    case MESH_STUN_A_FINGERPRINT:
        if (a->len != 4)
            return MESH_ERR_MALFORMED;
        m->fp = (int)idx;
        break;
    default:
        break;
    }
    if (!after_integrity && m->mi < 0 && m->mi256 < 0 && m->fp < 0)
        m->nvisible = idx + 1;
    return MESH_OK;
}

int mesh_stun_decode(mesh_stun_msg *m, const uint8_t *buf, size_t len)
{
    if (!m || !buf)
        return MESH_ERR_INVAL;
    size_t total = 0;
    int rc = mesh_stun_frame_len(buf, len, &total);
    if (rc != MESH_OK)
        return rc;
    if (len < total)
        return MESH_ERR_TRUNCATED;
    if (len > total)
        return MESH_ERR_MALFORMED; /* bytes after the message */
    m->buf = buf;
    m->len = total;
    m->type = rd16(buf);
    m->method = (uint16_t)mesh_stun_type_method(m->type);
    m->cls = (uint8_t)mesh_stun_type_class(m->type);
    memcpy(m->tid, buf + 8, MESH_STUN_TID_LEN);
    m->nattrs = m->nvisible = 0;
    m->mi = m->mi256 = m->fp = -1;
    size_t pos = MESH_STUN_HDR_LEN;
    while (pos < total) {
        if (total - pos < MESH_STUN_ATTR_HDR_LEN)
            return MESH_ERR_TRUNCATED;
        mesh_stun_attr a = {rd16(buf + pos), rd16(buf + pos + 2), (uint32_t)(pos + 4)};
        if (pad4(a.len) > total - pos - MESH_STUN_ATTR_HDR_LEN)
            return MESH_ERR_TRUNCATED;
        if (m->nattrs == MESH_STUN_MAX_ATTRS)
            return MESH_ERR_LIMIT;
        if ((rc = place_attr(m, &a, m->nattrs)) != MESH_OK)
            return rc;
        m->attrs[m->nattrs++] = a;
        pos += MESH_STUN_ATTR_HDR_LEN + pad4(a.len);
    }
    return MESH_OK;
}

const mesh_stun_attr *mesh_stun_find(const mesh_stun_msg *m, uint16_t type)
{
    if (!m)
        return NULL;
    if (type == MESH_STUN_A_MESSAGE_INTEGRITY)
        return m->mi >= 0 ? &m->attrs[m->mi] : NULL;
    if (type == MESH_STUN_A_MESSAGE_INTEGRITY_SHA256)
        return m->mi256 >= 0 ? &m->attrs[m->mi256] : NULL;
    if (type == MESH_STUN_A_FINGERPRINT)
        return m->fp >= 0 ? &m->attrs[m->fp] : NULL;
    for (size_t i = 0; i < m->nvisible; i++)
        if (m->attrs[i].type == type)
            return &m->attrs[i];
    return NULL;
}

static int is_xor_addr(uint16_t type)
{
    return type == MESH_STUN_A_XOR_MAPPED_ADDRESS || type == MESH_STUN_A_XOR_PEER_ADDRESS ||
           type == MESH_STUN_A_XOR_RELAYED_ADDRESS;
}

/* XOR an address value in place: port with the cookie's top 16 bits, the address with the
 * cookie (IPv4) or the cookie and the transaction id (IPv6). RFC 8489 §14.2. */
static void xor_addr(uint8_t *port2, uint8_t *ip, size_t iplen, const uint8_t *tid)
{
    uint8_t key[16];
    wr32(key, MESH_STUN_MAGIC);
    memcpy(key + 4, tid, MESH_STUN_TID_LEN);
    port2[0] ^= key[0];
    port2[1] ^= key[1];
    for (size_t i = 0; i < iplen; i++)
        ip[i] ^= key[i];
}

static int is_addr(uint16_t type)
{
    return is_xor_addr(type) || type == MESH_STUN_A_MAPPED_ADDRESS ||
           type == MESH_STUN_A_RESPONSE_ORIGIN || type == MESH_STUN_A_OTHER_ADDRESS ||
           type == MESH_STUN_A_ALTERNATE_SERVER;
}

int mesh_stun_get_addr(const mesh_stun_msg *m, const mesh_stun_attr *a, mesh_addr *out)
{
    if (!m || !a || !out || !is_addr(a->type))
        return MESH_ERR_INVAL;
    const uint8_t *v = mesh_stun_value(m, a);
    if (a->len < 4 || v[0] != 0)
        return MESH_ERR_MALFORMED;
    size_t iplen = v[1] == 0x01 ? 4 : v[1] == 0x02 ? 16 : 0;
    if (!iplen || a->len != 4 + iplen)
        return MESH_ERR_MALFORMED;
    uint8_t port[2] = {v[2], v[3]}, ip[16];
    memcpy(ip, v + 4, iplen);
    if (is_xor_addr(a->type))
        xor_addr(port, ip, iplen, m->tid);
    memset(out, 0, sizeof *out);
    out->family = iplen == 4 ? MESH_AF_INET4 : MESH_AF_INET6;
    out->port = rd16(port);
    memcpy(out->ip, ip, iplen);
    return MESH_OK;
}

int mesh_stun_get_u32(const mesh_stun_msg *m, const mesh_stun_attr *a, uint32_t *out)
{
    if (!m || !a || !out)
        return MESH_ERR_INVAL;
    if (a->len != 4)
        return MESH_ERR_MALFORMED;
    *out = rd32(mesh_stun_value(m, a));
    return MESH_OK;
}

int mesh_stun_get_change(const mesh_stun_msg *m, const mesh_stun_attr *a, unsigned *flags)
{
    uint32_t v = 0;
    int rc = mesh_stun_get_u32(m, a, &v);
    if (rc != MESH_OK)
        return rc;
    if (v & ~(uint32_t)(MESH_STUN_CHANGE_IP | MESH_STUN_CHANGE_PORT))
        return MESH_ERR_MALFORMED;
    if (flags)
        *flags = v;
    return MESH_OK;
}

int mesh_stun_get_error(const mesh_stun_msg *m, const mesh_stun_attr *a, int *code,
                        const char **reason, size_t *reason_len)
{
    if (!m || !a)
        return MESH_ERR_INVAL;
    const uint8_t *v = mesh_stun_value(m, a);
    if (a->len < 4 || a->len - 4 > MESH_STUN_MAX_TEXT || v[0] || v[1] || (v[2] & 0xf8))
        return MESH_ERR_MALFORMED;
    int cls = v[2] & 7, num = v[3];
    if (cls < 3 || cls > 6 || num > 99)
        return MESH_ERR_MALFORMED;
    if (code)
        *code = cls * 100 + num;
    if (reason)
        *reason = (const char *)v + 4;
    if (reason_len)
        *reason_len = a->len - 4u;
    return MESH_OK;
}

static size_t text_max(uint16_t type)
{
    switch (type) {
    case MESH_STUN_A_USERNAME:
        return MESH_STUN_MAX_USERNAME;
    case MESH_STUN_A_REALM:
    case MESH_STUN_A_NONCE:
    case MESH_STUN_A_SOFTWARE:
        return MESH_STUN_MAX_TEXT;
    default:
        return 0;
    }
}

int mesh_stun_get_text(const mesh_stun_msg *m, const mesh_stun_attr *a, const char **text,
                       size_t *len)
{
    if (!m || !a || !text_max(a->type))
        return MESH_ERR_INVAL;
    if (a->len > text_max(a->type))
        return MESH_ERR_MALFORMED;
    if (text)
        *text = (const char *)mesh_stun_value(m, a);
    if (len)
        *len = a->len;
    return MESH_OK;
}

int mesh_stun_get_unknown(const mesh_stun_msg *m, const mesh_stun_attr *a, uint16_t *types,
                          size_t max, size_t *n)
{
    if (!m || !a || (max && !types))
        return MESH_ERR_INVAL;
    if ((a->len & 1) || a->len / 2 > MESH_STUN_MAX_UNKNOWN)
        return MESH_ERR_MALFORMED;
    size_t k = a->len / 2u, i;
    const uint8_t *v = mesh_stun_value(m, a);
    for (i = 0; i < k && i < max; i++)
        types[i] = rd16(v + 2 * i);
    if (n)
        *n = i;
    return MESH_OK;
}

int mesh_stun_get_transport(const mesh_stun_msg *m, const mesh_stun_attr *a, uint8_t *proto)
{
    if (!m || !a || !proto)
        return MESH_ERR_INVAL;
    if (a->len != 4)
        return MESH_ERR_MALFORMED;
    *proto = mesh_stun_value(m, a)[0];
    return MESH_OK;
}

static int known_type(uint16_t t)
{
    static const uint16_t KNOWN[] = {
        MESH_STUN_A_MAPPED_ADDRESS,
        MESH_STUN_A_CHANGE_REQUEST,
        MESH_STUN_A_USERNAME,
        MESH_STUN_A_MESSAGE_INTEGRITY,
        MESH_STUN_A_ERROR_CODE,
        MESH_STUN_A_UNKNOWN_ATTRIBUTES,
        MESH_STUN_A_CHANNEL_NUMBER,
        MESH_STUN_A_LIFETIME,
        MESH_STUN_A_XOR_PEER_ADDRESS,
        MESH_STUN_A_DATA,
        MESH_STUN_A_REALM,
        MESH_STUN_A_NONCE,
        MESH_STUN_A_XOR_RELAYED_ADDRESS,
        MESH_STUN_A_REQUESTED_TRANSPORT,
        MESH_STUN_A_MESSAGE_INTEGRITY_SHA256,
        MESH_STUN_A_XOR_MAPPED_ADDRESS,
        MESH_STUN_A_PADDING,
        MESH_STUN_A_RESPONSE_PORT,
        MESH_STUN_A_CONNECTION_ID,
    };
    for (size_t i = 0; i < sizeof KNOWN / sizeof KNOWN[0]; i++)
        if (KNOWN[i] == t)
            return 1;
    return 0;
}

size_t mesh_stun_unknown_required(const mesh_stun_msg *m, uint16_t *types, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; m && i < m->nvisible; i++) {
        uint16_t t = m->attrs[i].type;
        if (t >= 0x8000 || known_type(t))
            continue;
        if (n < max && types)
            types[n] = t;
        n++;
    }
    return n;
}

int mesh_stun_check_fingerprint(const mesh_stun_msg *m)
{
    if (!m)
        return MESH_ERR_INVAL;
    if (m->fp < 0)
        return MESH_ERR_NOT_FOUND;
    const mesh_stun_attr *a = &m->attrs[m->fp];
    /* FINGERPRINT is last, so the header's length already ends right after it. */
    uint32_t want = mesh_stun_crc32(m->buf, a->off - MESH_STUN_ATTR_HDR_LEN);
    return rd32(mesh_stun_value(m, a)) == (want ^ MESH_STUN_FINGERPRINT_XOR) ? MESH_OK
                                                                             : MESH_ERR_MALFORMED;
}

int mesh_stun_check_integrity(const mesh_stun_msg *m, const uint8_t *key, size_t keylen, int kind)
{
    if (!m || (keylen && !key))
        return MESH_ERR_INVAL;
    int sha256 = kind == MESH_STUN_MI_SHA256 || (kind == MESH_STUN_MI_ANY && m->mi256 >= 0);
    int idx = sha256 ? m->mi256 : m->mi;
    if (idx < 0)
        return MESH_ERR_NOT_FOUND;
    const mesh_stun_attr *a = &m->attrs[idx];
    uint8_t mac[MESH_STUN_MI256_LEN];
    size_t body = a->off - MESH_STUN_ATTR_HDR_LEN - MESH_STUN_HDR_LEN;
    uint16_t hdr_len = (uint16_t)(body + MESH_STUN_ATTR_HDR_LEN + pad4(a->len));
    int rc = hmac_msg(sha256 ? "SHA256" : "SHA1", key, keylen, m->buf, body, hdr_len, mac,
                      sha256 ? MESH_STUN_MI256_LEN : MESH_STUN_MI_LEN);
    if (rc != MESH_OK)
        return rc;
    /* Constant time: the MAC is a secret-dependent value an attacker may probe for. */
    return CRYPTO_memcmp(mac, mesh_stun_value(m, a), a->len) == 0 ? MESH_OK
                                                                  : MESH_ERR_BAD_SIGNATURE;
}

/* ---- encoding ------------------------------------------------------------------------------ */

static void enc_fail(mesh_stun_enc *e, int err)
{
    if (e->err == MESH_OK)
        e->err = err;
}

void mesh_stun_enc_init(mesh_stun_enc *e, uint8_t *buf, size_t cap, uint16_t type,
                        const uint8_t tid[MESH_STUN_TID_LEN])
{
    memset(e, 0, sizeof *e);
    e->buf = buf;
    e->cap = cap > MESH_STUN_MAX_MSG ? MESH_STUN_MAX_MSG : cap;
    if (!buf || !tid || cap < MESH_STUN_HDR_LEN) {
        enc_fail(e, buf && tid ? MESH_ERR_TOO_BIG : MESH_ERR_INVAL);
        return;
    }
    wr16(buf, (uint16_t)(type & 0x3fff));
    wr16(buf + 2, 0);
    wr32(buf + 4, MESH_STUN_MAGIC);
    memcpy(buf + 8, tid, MESH_STUN_TID_LEN);
    e->len = MESH_STUN_HDR_LEN;
}

/* Room for an attribute of value length len; writes its header and padding, keeps the
 * header's length current (integrity attributes need it), returns where the value goes. */
static uint8_t *enc_reserve(mesh_stun_enc *e, uint16_t type, size_t len)
{
    if (e->err != MESH_OK)
        return NULL;
    if (len > 0xffff) {
        enc_fail(e, MESH_ERR_INVAL);
        return NULL;
    }
    size_t need = MESH_STUN_ATTR_HDR_LEN + pad4(len);
    if (need > e->cap - e->len) {
        enc_fail(e, MESH_ERR_TOO_BIG);
        return NULL;
    }
    uint8_t *p = e->buf + e->len;
    wr16(p, type);
    wr16(p + 2, (uint16_t)len);
    memset(p + 4 + len, e->pad, pad4(len) - len);
    e->len += need;
    wr16(e->buf + 2, (uint16_t)(e->len - MESH_STUN_HDR_LEN));
    return p + 4;
}

static int integrity_type(uint16_t type)
{
    return type == MESH_STUN_A_MESSAGE_INTEGRITY || type == MESH_STUN_A_MESSAGE_INTEGRITY_SHA256 ||
           type == MESH_STUN_A_FINGERPRINT;
}

void mesh_stun_enc_attr_raw(mesh_stun_enc *e, uint16_t type, const void *value, size_t len)
{
    if (e->err == MESH_OK && e->stage == 3)
        enc_fail(e, MESH_ERR_STATE);
    if (len && !value)
        enc_fail(e, MESH_ERR_INVAL);
    uint8_t *p = enc_reserve(e, type, len);
    if (!p)
        return;
    if (len)
        memmove(p, value, len); /* a value may come from the buffer being written */
    if (type == MESH_STUN_A_FINGERPRINT)
        e->stage = 3;
}

void mesh_stun_enc_attr(mesh_stun_enc *e, uint16_t type, const void *value, size_t len)
{
    if (integrity_type(type) || e->stage != 0)
        enc_fail(e, MESH_ERR_STATE);
    mesh_stun_enc_attr_raw(e, type, value, len);
}

void mesh_stun_enc_addr(mesh_stun_enc *e, uint16_t type, const mesh_addr *a)
{
    size_t iplen = !a ? 0 : a->family == MESH_AF_INET4 ? 4 : a->family == MESH_AF_INET6 ? 16 : 0;
    if (!iplen || !is_addr(type)) {
        enc_fail(e, MESH_ERR_INVAL);
        return;
    }
    uint8_t v[20] = {0, iplen == 4 ? 0x01 : 0x02};
    wr16(v + 2, a->port);
    memcpy(v + 4, a->ip, iplen);
    if (is_xor_addr(type))
        xor_addr(v + 2, v + 4, iplen, e->buf ? e->buf + 8 : v);
    mesh_stun_enc_attr(e, type, v, 4 + iplen);
}

void mesh_stun_enc_u32(mesh_stun_enc *e, uint16_t type, uint32_t v)
{
    uint8_t b[4];
    wr32(b, v);
    mesh_stun_enc_attr(e, type, b, 4);
}

void mesh_stun_enc_change(mesh_stun_enc *e, unsigned flags)
{
    mesh_stun_enc_u32(e, MESH_STUN_A_CHANGE_REQUEST,
                      flags & (MESH_STUN_CHANGE_IP | MESH_STUN_CHANGE_PORT));
}

void mesh_stun_enc_error(mesh_stun_enc *e, int code, const char *reason)
{
    size_t rlen = reason ? strlen(reason) : 0;
    if (code < 300 || code > 699 || rlen > MESH_STUN_MAX_TEXT) {
        enc_fail(e, MESH_ERR_INVAL);
        return;
    }
    uint8_t v[4 + MESH_STUN_MAX_TEXT] = {0, 0, (uint8_t)(code / 100), (uint8_t)(code % 100)};
    if (rlen)
        memcpy(v + 4, reason, rlen);
    mesh_stun_enc_attr(e, MESH_STUN_A_ERROR_CODE, v, 4 + rlen);
}

void mesh_stun_enc_text(mesh_stun_enc *e, uint16_t type, const char *text, size_t len)
{
    size_t max = text_max(type);
    if (!max || len > max) {
        enc_fail(e, MESH_ERR_INVAL);
        return;
    }
    mesh_stun_enc_attr(e, type, text, len);
}

void mesh_stun_enc_unknown(mesh_stun_enc *e, const uint16_t *types, size_t n)
{
    if (n > MESH_STUN_MAX_UNKNOWN || (n && !types)) {
        enc_fail(e, MESH_ERR_INVAL);
        return;
    }
    uint8_t v[2 * MESH_STUN_MAX_UNKNOWN];
    for (size_t i = 0; i < n; i++)
        wr16(v + 2 * i, types[i]);
    mesh_stun_enc_attr(e, MESH_STUN_A_UNKNOWN_ATTRIBUTES, v, 2 * n);
}

void mesh_stun_enc_transport(mesh_stun_enc *e, uint8_t proto)
{
    uint8_t v[4] = {proto, 0, 0, 0};
    mesh_stun_enc_attr(e, MESH_STUN_A_REQUESTED_TRANSPORT, v, sizeof v);
}

static void enc_mac(mesh_stun_enc *e, int sha256, const uint8_t *key, size_t keylen)
{
    int stage = sha256 ? 2 : 1;
    if (e->err == MESH_OK && e->stage >= stage)
        enc_fail(e, MESH_ERR_STATE);
    if (keylen && !key)
        enc_fail(e, MESH_ERR_INVAL);
    size_t maclen = sha256 ? MESH_STUN_MI256_LEN : MESH_STUN_MI_LEN;
    size_t body = e->len - MESH_STUN_HDR_LEN;
    uint8_t *p = enc_reserve(
        e, sha256 ? MESH_STUN_A_MESSAGE_INTEGRITY_SHA256 : MESH_STUN_A_MESSAGE_INTEGRITY, maclen);
    if (!p)
        return;
    int rc = hmac_msg(sha256 ? "SHA256" : "SHA1", key, keylen, e->buf, body,
                      (uint16_t)(body + MESH_STUN_ATTR_HDR_LEN + maclen), p, maclen);
    if (rc != MESH_OK)
        enc_fail(e, rc);
    e->stage = stage;
}

void mesh_stun_enc_integrity(mesh_stun_enc *e, const uint8_t *key, size_t keylen)
{
    enc_mac(e, 0, key, keylen);
}

void mesh_stun_enc_integrity_sha256(mesh_stun_enc *e, const uint8_t *key, size_t keylen)
{
    enc_mac(e, 1, key, keylen);
}

void mesh_stun_enc_fingerprint(mesh_stun_enc *e)
{
    if (e->err == MESH_OK && e->stage == 3)
        enc_fail(e, MESH_ERR_STATE);
    size_t before = e->len;
    uint8_t *p = enc_reserve(e, MESH_STUN_A_FINGERPRINT, 4);
    if (!p)
        return;
    wr32(p, mesh_stun_crc32(e->buf, before) ^ MESH_STUN_FINGERPRINT_XOR);
    e->stage = 3;
}

int mesh_stun_enc_finish(mesh_stun_enc *e, size_t *len)
{
    if (!e)
        return MESH_ERR_INVAL;
    if (e->err != MESH_OK)
        return e->err;
    if (len)
        *len = e->len;
    return MESH_OK;
}
