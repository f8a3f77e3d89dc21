/* clienthello.c — ClientHello parsing for the censor model (see clienthello.h).
 *
 * Layout (RFC 8446 §4.1.2, §5.1): record header {type 0x16, version u16, length u16}, then a
 * handshake message {type 0x01, length u24, legacy_version u16, random[32], session_id<0..32>,
 * cipher_suites<2..2^16-2>, compression_methods<1..255>, extensions<8..2^16-1>}. The hello may
 * span several records; they are concatenated before parsing. JA3 follows the public
 * definition: version, ciphers, extension types, groups, point formats, GREASE values
 * (0x?A?A) excluded. */
#include "sim/clienthello.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "meshara/error.h"

enum {
    REC_HANDSHAKE = 0x16,
    HS_CLIENT_HELLO = 0x01,
    EXT_SNI = 0x0000,
    EXT_GROUPS = 0x000a,
    EXT_POINT_FORMATS = 0x000b,
    EXT_ALPN = 0x0010,
    EXT_SUPPORTED_VERSIONS = 0x002b,
};

typedef struct {
    const uint8_t *p;
    size_t n;
    int bad;
} rd;

static uint32_t rd_u(rd *r, size_t bytes)
{
    uint32_t v = 0;
    if (r->bad || r->n < bytes) {
        r->bad = 1;
        return 0;
    }
    for (size_t i = 0; i < bytes; i++)
        v = v << 8 | r->p[i];
    r->p += bytes;
    r->n -= bytes;
    return v;
}

/* A sub-reader over the next len bytes (marks r bad if they are not there). */
static rd rd_sub(rd *r, size_t len)
{
    rd s = {r->p, len, 0};
    if (r->bad || r->n < len) {
        r->bad = 1;
        s.bad = 1;
        s.n = 0;
        return s;
    }
    r->p += len;
    r->n -= len;
    return s;
}

static int is_grease(uint32_t v)
{
    return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

/* Append text to the JA3 buffer; flags truncation instead of overflowing. */
static void ja3_put(sim_client_hello *h, size_t *o, const char *text)
{
    if (*o >= SIM_CH_MAX_JA3) { /* full: also tells gcc -O3 the copy below stays in bounds */
        h->truncated_fields = 1;
        return;
    }
    size_t len = strlen(text);
    if (*o + len > SIM_CH_MAX_JA3) {
        h->truncated_fields = 1;
        len = SIM_CH_MAX_JA3 - *o;
    }
    memcpy(h->ja3 + *o, text, len);
    *o += len;
    h->ja3[*o] = '\0';
}

/* Append a '-'-joined list of non-GREASE values of width `w` bytes read from r. */
static void ja3_list(sim_client_hello *h, size_t *o, rd r, size_t w)
{
    int first = 1;
    char num[16];
    while (r.n >= w && !r.bad) {
        uint32_t v = rd_u(&r, w);
        if (w == 2 && is_grease(v))
            continue;
        snprintf(num, sizeof num, first ? "%u" : "-%u", v);
        ja3_put(h, o, num);
        first = 0;
    }
}

static void copy_name(char *dst, size_t cap, const uint8_t *src, size_t len, int *cut)
{
    if (len > cap) {
        len = cap;
        *cut = 1;
    }
    for (size_t i = 0; i < len; i++)
        dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? (char)src[i] : '?';
    dst[len] = '\0';
}

/* Gather the handshake bytes from consecutive handshake records into buf. */
static int reassemble(const uint8_t *data, size_t len, uint8_t *buf, size_t *hs_len,
                      size_t *consumed)
{
    size_t off = 0, have = 0, need = 0;
    int know_need = 0;
    for (;;) {
        if (len - off < 5)
            return MESH_ERR_TRUNCATED;
        if (data[off] != REC_HANDSHAKE || data[off + 1] != 0x03)
            return MESH_ERR_MALFORMED;
        size_t rlen = (size_t)data[off + 3] << 8 | data[off + 4];
        if (rlen == 0 || rlen > 16384 + 256)
            return MESH_ERR_MALFORMED;
        if (len - off - 5 < rlen)
            return MESH_ERR_TRUNCATED;
        if (have + rlen > SIM_CH_MAX_HELLO + 4)
            return MESH_ERR_TOO_BIG;
        memcpy(buf + have, data + off + 5, rlen);
        have += rlen;
        off += 5 + rlen;
        if (!know_need && have >= 4) {
            if (buf[0] != HS_CLIENT_HELLO)
                return MESH_ERR_MALFORMED;
            need = 4 + ((size_t)buf[1] << 16 | (size_t)buf[2] << 8 | buf[3]);
            if (need > SIM_CH_MAX_HELLO + 4)
                return MESH_ERR_TOO_BIG;
            know_need = 1;
        }
        if (know_need && have >= need) {
            *hs_len = need;
            *consumed = off;
            return MESH_OK;
        }
    }
}

/* server_name: the first host_name entry (RFC 6066). */
static int ext_sni(sim_client_hello *h, rd body)
{
    rd list = rd_sub(&body, rd_u(&body, 2));
    while (list.n > 0 && !list.bad) {
        uint32_t kind = rd_u(&list, 1);
        rd name = rd_sub(&list, rd_u(&list, 2));
        if (!list.bad && kind == 0 && h->sni[0] == '\0')
            copy_name(h->sni, SIM_CH_MAX_SNI, name.p, name.n, &h->truncated_fields);
    }
    return body.bad || list.bad ? MESH_ERR_MALFORMED : MESH_OK;
}

/* application_layer_protocol_negotiation: every protocol (RFC 7301), SIM_CH_MAX_ALPN kept. */
static int ext_alpn(sim_client_hello *h, rd body)
{
    rd list = rd_sub(&body, rd_u(&body, 2));
    while (list.n > 0 && !list.bad) {
        rd proto = rd_sub(&list, rd_u(&list, 1));
        if (list.bad)
            break;
        if (h->alpn_count < SIM_CH_MAX_ALPN)
            copy_name(h->alpn[h->alpn_count++], SIM_CH_MAX_ALPN_LEN, proto.p, proto.n,
                      &h->truncated_fields);
        else
            h->truncated_fields = 1;
    }
    return body.bad || list.bad ? MESH_ERR_MALFORMED : MESH_OK;
}

/* One extension: what the censor matches on (SNI, ALPN, TLS 1.3), and the lists JA3 needs. */
static int ext_one(sim_client_hello *h, uint32_t type, rd body, rd *groups, rd *points)
{
    switch (type) {
    case EXT_SNI:
        return ext_sni(h, body);
    case EXT_ALPN:
        return ext_alpn(h, body);
    case EXT_GROUPS:
        *groups = rd_sub(&body, rd_u(&body, 2));
        return body.bad || groups->n % 2 ? MESH_ERR_MALFORMED : MESH_OK;
    case EXT_POINT_FORMATS:
        *points = rd_sub(&body, rd_u(&body, 1));
        return body.bad ? MESH_ERR_MALFORMED : MESH_OK;
    case EXT_SUPPORTED_VERSIONS: {
        rd list = rd_sub(&body, rd_u(&body, 1));
        while (list.n >= 2)
            if (rd_u(&list, 2) == 0x0304)
                h->offers_tls13 = 1;
        return body.bad ? MESH_ERR_MALFORMED : MESH_OK;
    }
    default:
        return MESH_OK;
    }
}

/* The extensions block, adding the JA3 extension list to h->ja3 at *o. */
static int exts_parse(sim_client_hello *h, rd exts, size_t *o, rd *groups, rd *points)
{
    char num[16];
    int first_ext = 1;
    while (exts.n > 0) {
        uint32_t type = rd_u(&exts, 2);
        rd body = rd_sub(&exts, rd_u(&exts, 2));
        if (exts.bad)
            return MESH_ERR_MALFORMED;
        if (!is_grease(type)) {
            snprintf(num, sizeof num, first_ext ? "%u" : "-%u", type);
            ja3_put(h, o, num);
            first_ext = 0;
        }
        int rc = ext_one(h, type, body, groups, points);
        if (rc != MESH_OK)
            return rc;
    }
    return MESH_OK;
}

int sim_client_hello_parse(const uint8_t *data, size_t len, sim_client_hello *h)
{
    uint8_t buf[SIM_CH_MAX_HELLO + 4 + 16384 + 256];
    size_t hs_len = 0, consumed = 0;
    int rc = reassemble(data, len, buf, &hs_len, &consumed);
    if (rc != MESH_OK)
        return rc;

    memset(h, 0, sizeof *h);
    h->hello_len = consumed;
    rd r = {buf + 4, hs_len - 4, 0};
    h->legacy_version = (uint16_t)rd_u(&r, 2);
    rd_sub(&r, 32);          /* random */
    rd_sub(&r, rd_u(&r, 1)); /* session id */
    rd ciphers = rd_sub(&r, rd_u(&r, 2));
    rd_sub(&r, rd_u(&r, 1)); /* compression methods */
    rd exts = r.n > 0 ? rd_sub(&r, rd_u(&r, 2)) : (rd){NULL, 0, 0};
    if (r.bad || ciphers.n % 2 != 0)
        return MESH_ERR_MALFORMED;

    size_t o = 0;
    char num[16];
    snprintf(num, sizeof num, "%u,", h->legacy_version);
    ja3_put(h, &o, num);
    ja3_list(h, &o, ciphers, 2);
    ja3_put(h, &o, ",");
    rd groups = {NULL, 0, 0}, points = {NULL, 0, 0};
    if ((rc = exts_parse(h, exts, &o, &groups, &points)) != MESH_OK)
        return rc;
    ja3_put(h, &o, ",");
    ja3_list(h, &o, groups, 2);
    ja3_put(h, &o, ",");
    ja3_list(h, &o, points, 1);

    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (!EVP_Digest(h->ja3, strlen(h->ja3), md, &mdlen, EVP_md5(), NULL) || mdlen != 16)
        return MESH_ERR_INTERNAL;
    for (unsigned i = 0; i < 16; i++)
        snprintf(h->ja3_md5 + 2 * i, 3, "%02x", md[i]);
    return MESH_OK;
}
