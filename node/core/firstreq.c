/* firstreq.c — the first-request classifier (firstreq.h): a small HTTP/2 frame walk over the
 * client's first bytes, HPACK through nghttp2's inflater, the body handed to the caller's
 * verifier. One pass per call over the whole buffer (stateless: the same bytes always give
 * the same verdict, which is what the fuzz target checks).
 */
#include "core/firstreq.h"

#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>

#include "meshara/error.h"

enum {
    PREFACE_LEN = 24,
    FRAME_HDR = 9,
    T_DATA = 0,
    T_HEADERS = 1,
    T_SETTINGS = 4,
    T_WINDOW_UPDATE = 8,
    F_END_STREAM = 0x1,
    F_ACK = 0x1,
    F_END_HEADERS = 0x4,
    F_PADDED = 0x8,
    F_PRIORITY = 0x20,
    REQ_STREAM = 1,
};

static const char PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

typedef struct walk {
    mesh_firstreq_result *r;
    size_t max_body;
    int opened;             /* HEADERS of stream 1 seen */
    int64_t content_length; /* -1: none announced */
    uint8_t *body;
    size_t blen;
    int nomem; /* the inflater could not be made: no verdict */
} walk;

static mesh_firstreq_verdict other(walk *w, const char *why)
{
    w->r->why = why;
    return MESH_FIRSTREQ_OTHER;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int eq(const nghttp2_nv *nv, const char *name, const char *value)
{
    return nv->namelen == strlen(name) && memcmp(nv->name, name, nv->namelen) == 0 &&
           (!value ||
            (nv->valuelen == strlen(value) && memcmp(nv->value, value, nv->valuelen) == 0));
}

/* RFC 9113 §6.5.2's ranges: values nginx would answer with a GOAWAY rather than an ack. */
static int settings_ok(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i += 6) {
        unsigned id = (unsigned)p[i] << 8 | p[i + 1];
        uint32_t v = be32(p + i + 2);
        if ((id == 2 && v > 1) || (id == 4 && v > 0x7fffffffu) ||
            (id == 5 && (v < 16384 || v > 0xffffffu)))
            return 0;
    }
    return 1;
}

/* The request's header block: POST MESH_FIRSTREQ_PATH over https, a content-length within
 * max_body if any. NGHTTP2 inflater errors (bad HPACK) are OTHER like any mismatch. */
static mesh_firstreq_verdict headers(walk *w, const uint8_t *p, size_t n)
{
    nghttp2_hd_inflater *inf = NULL;
    if (nghttp2_hd_inflate_new(&inf) != 0) {
        w->nomem = 1;
        return MESH_FIRSTREQ_MORE;
    }
    int post = 0, path = 0, https = 0, fields = 0;
    const char *why = NULL;
    for (;;) {
        nghttp2_nv nv;
        int fl = 0;
        ssize_t used = nghttp2_hd_inflate_hd2(inf, &nv, &fl, p, n, 1);
        if (used < 0) {
            why = "bad HPACK block";
            break;
        }
        p += used;
        n -= (size_t)used;
        if (fl & NGHTTP2_HD_INFLATE_EMIT) {
            if (++fields > MESH_FIRSTREQ_MAX_HEADERS) {
                why = "too many header fields";
                break;
            }
            post |= eq(&nv, ":method", "POST");
            path |= eq(&nv, ":path", MESH_FIRSTREQ_PATH);
            https |= eq(&nv, ":scheme", "https");
            if (eq(&nv, "content-length", NULL)) {
                int64_t v = 0;
                for (size_t i = 0; i < nv.valuelen && v <= (int64_t)w->max_body; i++)
                    v = nv.value[i] >= '0' && nv.value[i] <= '9' ? v * 10 + (nv.value[i] - '0')
                                                                 : INT64_MAX;
                if (nv.valuelen == 0 || v > (int64_t)w->max_body) {
                    why = "content-length not a hello's";
                    break;
                }
                w->content_length = v;
            }
        }
        if (fl & NGHTTP2_HD_INFLATE_FINAL)
            break;
        if (used == 0 && !(fl & NGHTTP2_HD_INFLATE_EMIT)) {
            why = "truncated HPACK block";
            break;
        }
    }
    nghttp2_hd_inflate_del(inf);
    if (!why && !(post && path && https))
        why = "not the hello request";
    return why ? other(w, why) : MESH_FIRSTREQ_MORE;
}

/* The payload of a PADDED (and, for HEADERS, PRIORITY) frame without them; 0 if malformed. */
static int unpad(uint8_t flags, int prio, const uint8_t **p, size_t *n)
{
    size_t pad = 0;
    if (flags & F_PADDED) {
        if (*n < 1)
            return 0;
        pad = (*p)[0];
        (*p)++;
        (*n)--;
    }
    if (prio && (flags & F_PRIORITY)) {
        if (*n < 5)
            return 0;
        *p += 5;
        *n -= 5;
    }
    if (pad > *n)
        return 0;
    *n -= pad;
    return 1;
}

/* One complete frame. MORE to go on, or the verdict. */
static mesh_firstreq_verdict frame(walk *w, uint8_t type, uint8_t flags, uint32_t sid,
                                   const uint8_t *p, size_t n, mesh_firstreq_verify_fn verify,
                                   void *ud)
{
    switch (type) {
    case T_SETTINGS:
        if (sid != 0 || ((flags & F_ACK) ? n != 0 : n % 6 != 0) || !settings_ok(p, n))
            return other(w, "bad SETTINGS");
        if (!(flags & F_ACK))
            w->r->settings++;
        return MESH_FIRSTREQ_MORE;
    case T_WINDOW_UPDATE:
        if (n != 4 || (be32(p) & 0x7fffffffu) == 0 ||
            !(sid == 0 || (sid == REQ_STREAM && w->opened)))
            return other(w, "bad WINDOW_UPDATE");
        return MESH_FIRSTREQ_MORE;
    case T_HEADERS:
        if (sid != REQ_STREAM || w->opened)
            return other(w, "HEADERS not opening stream 1");
        if (!(flags & F_END_HEADERS))
            return other(w, "CONTINUATION");
        if (flags & F_END_STREAM)
            return other(w, "request without a body");
        if (!unpad(flags, 1, &p, &n))
            return other(w, "bad HEADERS padding");
        w->opened = 1;
        return headers(w, p, n);
    case T_DATA:
        if (sid != REQ_STREAM || !w->opened)
            return other(w, "DATA before the request");
        if (!unpad(flags, 0, &p, &n))
            return other(w, "bad DATA padding");
        if (n > w->max_body - w->blen)
            return other(w, "body larger than a hello");
        memcpy(w->body + w->blen, p, n);
        w->blen += n;
        if (!(flags & F_END_STREAM))
            return MESH_FIRSTREQ_MORE;
        if (w->content_length >= 0 && (size_t)w->content_length != w->blen)
            return other(w, "body length is not content-length");
        if (verify(ud, w->body, w->blen) != MESH_OK)
            return other(w, "hello does not verify");
        return MESH_FIRSTREQ_HELLO;
    default:
        return other(w, "frame type a hello flight never has");
    }
}

static mesh_firstreq_verdict walk_frames(walk *w, const uint8_t *buf, size_t len,
                                         mesh_firstreq_verify_fn verify, void *ud)
{
    size_t cmp = len < PREFACE_LEN ? len : PREFACE_LEN;
    if (memcmp(buf, PREFACE, cmp) != 0)
        return other(w, "not an HTTP/2 connection preface");
    size_t off = PREFACE_LEN;
    while (off + FRAME_HDR <= len) {
        const uint8_t *h = buf + off;
        size_t flen = (size_t)h[0] << 16 | (size_t)h[1] << 8 | h[2];
        uint32_t sid = be32(h + 5);
        if (flen > MESH_FIRSTREQ_MAX_FRAME)
            return other(w, "frame above the default maximum size");
        if (sid & 0x80000000u)
            return other(w, "reserved stream bit set");
        if (off + FRAME_HDR + flen > len)
            break;
        mesh_firstreq_verdict v = frame(w, h[3], h[4], sid, h + FRAME_HDR, flen, verify, ud);
        if (v != MESH_FIRSTREQ_MORE || w->nomem)
            return v;
        off += FRAME_HDR + flen;
    }
    if (len >= MESH_FIRSTREQ_MAX_BYTES)
        return other(w, "no hello within the first bytes");
    return MESH_FIRSTREQ_MORE;
}

int mesh_firstreq_classify(const uint8_t *buf, size_t len, size_t max_body,
                           mesh_firstreq_verify_fn verify, void *ud, mesh_firstreq_result *out)
{
    if (!out || !verify || (!buf && len) || max_body == 0 || max_body > MESH_FIRSTREQ_MAX_BYTES)
        return MESH_ERR_INVAL;
    mesh_firstreq_result r = {.verdict = MESH_FIRSTREQ_MORE, .why = ""};
    walk w = {.r = &r, .max_body = max_body, .content_length = -1};
    if (len > 0) {
        w.body = malloc(max_body);
        if (!w.body)
            return MESH_ERR_NOMEM;
        r.verdict = walk_frames(&w, buf, len, verify, ud);
        free(w.body);
        if (w.nomem)
            return MESH_ERR_NOMEM;
    }
    *out = r;
    return MESH_OK;
}
