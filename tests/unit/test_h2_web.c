/* test_h2_web.c — the web profile's HTTP/2 shape (h2.h): DATA frames padded by nghttp2 within
 * MESH_H2_PAD_MAX from the env's randomness, PINGs and their ACKs. A web client and server
 * mesh_h2 wired back to back in memory; every byte between them is parsed as HTTP/2 frames
 * here (RFC 9113 §4.1), so what is checked is what a peer receives. */
#include "mesh_test.h"

#include <stdlib.h>
#include <string.h>

#include "core/h2.h"
#include "meshara/error.h"

enum { FRAME_HDR = 9, PREFACE = 24, T_DATA = 0, T_HEADERS = 1, T_PING = 6, F_PADDED = 0x8 };

/* ---- what one direction carried, frame by frame ------------------------------------------ */

typedef struct wire {
    mesh_test_buf raw; /* every byte, in order */
    size_t data, data_padded, data_bytes, pad_max, pad_total, headers_padded, pings, ping_acks;
    unsigned pad_seen[256]; /* pad lengths drawn */
    uint8_t last_ping[8];
} wire;

/* Parse w->raw as a sequence of frames (after the client's preface when client is set). */
static void wire_parse(wire *w, int client)
{
    const uint8_t *p = w->raw.b;
    size_t n = w->raw.len, off = client ? PREFACE : 0;
    CU_ASSERT_FATAL(n >= off);
    while (off + FRAME_HDR <= n) {
        size_t len = (size_t)p[off] << 16 | (size_t)p[off + 1] << 8 | p[off + 2];
        uint8_t type = p[off + 3], flags = p[off + 4];
        const uint8_t *pl = p + off + FRAME_HDR;
        CU_ASSERT_FATAL(off + FRAME_HDR + len <= n);
        if (type == T_DATA) {
            w->data++;
            size_t pad = 0;
            if (flags & F_PADDED) {
                CU_ASSERT_FATAL(len >= 1);
                pad = pl[0];
                CU_ASSERT_FATAL(pad + 1 <= len);
                w->data_padded++;
                w->pad_seen[pad]++;
                w->pad_total += pad;
                if (pad > w->pad_max)
                    w->pad_max = pad;
            }
            w->data_bytes += len - pad - ((flags & F_PADDED) ? 1 : 0);
        } else if (type == T_HEADERS && (flags & F_PADDED)) {
            w->headers_padded++;
        } else if (type == T_PING) {
            CU_ASSERT_EQUAL(len, 8);
            if (flags & 1) {
                w->ping_acks++;
            } else {
                w->pings++;
                memcpy(w->last_ping, pl, 8);
            }
        }
        off += FRAME_HDR + len;
    }
    CU_ASSERT_EQUAL(off, n); /* whole frames only */
}

/* ---- a web pair -------------------------------------------------------------------------- */

typedef struct side {
    mesh_h2 *h;
    int rc;
    size_t msgs, bytes, bad;
    unsigned acks;
    uint8_t ack[8];
} side;

static uint8_t pat(size_t i)
{
    return (uint8_t)(i * 7u + (i >> 8));
}

static int on_msg(void *ud, const uint8_t *d, size_t len)
{
    side *s = ud;
    for (size_t i = 0; i < len; i++)
        s->bad += d[i] != pat(i);
    s->msgs++;
    s->bytes += len;
    return MESH_OK;
}

static void on_ack(void *ud, const uint8_t opaque[MESH_H2_PING_LEN])
{
    side *s = ud;
    s->acks++;
    memcpy(s->ack, opaque, 8);
}

static const mesh_h2_cbs CBS = {.on_message = on_msg, .on_ping_ack = on_ack};

/* from → to, recording the bytes in w; returns the bytes moved. */
static size_t xfer(side *from, side *to, wire *w)
{
    size_t total = 0;
    const uint8_t *d;
    long n;
    while ((n = mesh_h2_pull(from->h, &d)) > 0) {
        mesh_test_buf_add(&w->raw, d, (size_t)n);
        if (!to->rc)
            to->rc = mesh_h2_recv(to->h, d, (size_t)n);
        total += (size_t)n;
    }
    CU_ASSERT_EQUAL(n, 0);
    return total;
}

static void run(side *c, side *s, wire *cw, wire *sw)
{
    int rounds = 0;
    while (rounds++ < 10000 && xfer(c, s, cw) + xfer(s, c, sw) > 0)
        ;
    CU_ASSERT(rounds < 10000);
    CU_ASSERT_EQUAL(c->rc, MESH_OK);
    CU_ASSERT_EQUAL(s->rc, MESH_OK);
}

static uint8_t *msg_of(size_t len)
{
    uint8_t *b = malloc(len ? len : 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (size_t i = 0; i < len; i++)
        b[i] = pat(i);
    return b;
}

/* Messages of the given sizes each way (the client's first is its events body, the hello's
 * place), over a web pair padding with max_pad (0: none). */
static void exchange(const size_t *sizes, size_t n, unsigned max_pad, wire *cw, wire *sw)
{
    mesh_test_env ce, se;
    mesh_test_env_init(&ce, 1);
    mesh_test_env_init(&se, 2);
    side c = {0}, s = {0};
    CU_ASSERT_EQUAL_FATAL(mesh_h2_new_web(&c.h, 0, 1 << 20, &CBS, &c), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_h2_new_web(&s.h, 1, 1 << 20, &CBS, &s), MESH_OK);
    CU_ASSERT_EQUAL(mesh_h2_set_padding(c.h, &ce.env, max_pad), MESH_OK);
    CU_ASSERT_EQUAL(mesh_h2_set_padding(s.h, &se.env, max_pad), MESH_OK);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t *m = msg_of(sizes[i]);
        CU_ASSERT_EQUAL(mesh_h2_send(c.h, m, sizes[i]), MESH_OK);
        run(&c, &s, cw, sw);
        CU_ASSERT_EQUAL(mesh_h2_send(s.h, m, sizes[i]), MESH_OK);
        run(&c, &s, cw, sw);
        free(m);
        total += sizes[i];
    }
    CU_ASSERT_EQUAL(s.msgs, n);
    CU_ASSERT_EQUAL(c.msgs, n);
    CU_ASSERT_EQUAL(s.bytes, total);
    CU_ASSERT_EQUAL(c.bytes, total);
    CU_ASSERT_EQUAL(s.bad + c.bad, 0);
    wire_parse(cw, 1);
    wire_parse(sw, 0);
    mesh_h2_free(c.h);
    mesh_h2_free(s.h);
}

static size_t distinct(const wire *w)
{
    size_t k = 0;
    for (int i = 0; i < 256; i++)
        k += w->pad_seen[i] != 0;
    return k;
}

/* ---- tests ------------------------------------------------------------------------------- */

/* Small messages (as a mesh's are): every DATA frame padded, 0..255 bytes, the amounts
 * varying; messages intact; HEADERS never padded. */
static void test_data_padded(void)
{
    size_t sizes[40];
    for (size_t i = 0; i < 40; i++)
        sizes[i] = (i * 97) % 3000 + 1;
    wire cw = {0}, sw = {0};
    exchange(sizes, 40, MESH_H2_PAD_MAX, &cw, &sw);
    for (int k = 0; k < 2; k++) {
        wire *w = k ? &sw : &cw;
        CU_ASSERT(w->data >= 40);
        CU_ASSERT_EQUAL(w->data_padded, w->data);
        CU_ASSERT(w->pad_max <= MESH_H2_PAD_MAX);
        CU_ASSERT(distinct(w) >= 20); /* drawn, not a constant */
        /* uniform on 0..255: the mean is near 127 */
        CU_ASSERT(w->pad_total / w->data_padded > 80 && w->pad_total / w->data_padded < 175);
        CU_ASSERT_EQUAL(w->headers_padded, 0);
    }
    free(cw.raw.b);
    free(sw.raw.b);
}

/* Large messages: frames stay within the bound, full frames are not padded beyond it, all
 * arrives intact. A smaller bound holds too. */
static void test_bound(void)
{
    static const size_t sizes[] = {0, 1, 16383, 16384, 70000, 300000};
    wire cw = {0}, sw = {0};
    exchange(sizes, 6, 16, &cw, &sw);
    CU_ASSERT(cw.data_padded > 0 && sw.data_padded > 0);
    CU_ASSERT(cw.pad_max <= 16 && sw.pad_max <= 16);
    free(cw.raw.b);
    free(sw.raw.b);
}

/* No padding asked (the seed profile's HTTP/2, or max 0): not one PADDED frame. */
static void test_unpadded_default(void)
{
    static const size_t sizes[] = {5, 500, 5000};
    wire cw = {0}, sw = {0};
    exchange(sizes, 3, 0, &cw, &sw);
    CU_ASSERT(cw.data > 0 && sw.data > 0);
    CU_ASSERT_EQUAL(cw.data_padded + sw.data_padded, 0);
    free(cw.raw.b);
    free(sw.raw.b);
}

/* A PING from either side: one PING frame out, nghttp2's ACK back with the same opaque data,
 * reported to the sender only; no DATA for it. */
static void test_ping(void)
{
    side c = {0}, s = {0};
    wire cw = {0}, sw = {0};
    CU_ASSERT_EQUAL_FATAL(mesh_h2_new_web(&c.h, 0, 4096, &CBS, &c), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_h2_new_web(&s.h, 1, 4096, &CBS, &s), MESH_OK);
    static const uint8_t hello[3] = {0, 1, 2};
    CU_ASSERT_EQUAL(mesh_h2_send(c.h, hello, sizeof hello), MESH_OK);
    run(&c, &s, &cw, &sw);
    wire_parse(&cw, 1);
    wire_parse(&sw, 0);
    size_t cdata = cw.data, sdata = sw.data;
    free(cw.raw.b);
    free(sw.raw.b);
    memset(&cw, 0, sizeof cw);
    memset(&sw, 0, sizeof sw);

    static const uint8_t op[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    CU_ASSERT_EQUAL(mesh_h2_ping(c.h, op), MESH_OK);
    run(&c, &s, &cw, &sw);
    static const uint8_t op2[8] = {9, 9, 9, 9, 0, 0, 0, 1};
    CU_ASSERT_EQUAL(mesh_h2_ping(s.h, op2), MESH_OK);
    run(&c, &s, &cw, &sw);
    /* the idle exchange after the start: PING frames only, 17 bytes each */
    CU_ASSERT_EQUAL(cw.raw.len, 2 * (FRAME_HDR + 8));
    CU_ASSERT_EQUAL(sw.raw.len, 2 * (FRAME_HDR + 8));
    wire_parse(&cw, 0);
    wire_parse(&sw, 0);
    CU_ASSERT_EQUAL(cw.pings, 1);
    CU_ASSERT_EQUAL(cw.ping_acks, 1);
    CU_ASSERT_EQUAL(sw.pings, 1);
    CU_ASSERT_EQUAL(sw.ping_acks, 1);
    CU_ASSERT_EQUAL(cw.data + sw.data, 0);
    CU_ASSERT_EQUAL(memcmp(cw.last_ping, op, 8), 0);
    CU_ASSERT_EQUAL(c.acks, 1);
    CU_ASSERT_EQUAL(memcmp(c.ack, op, 8), 0);
    CU_ASSERT_EQUAL(s.acks, 1);
    CU_ASSERT_EQUAL(memcmp(s.ack, op2, 8), 0);
    CU_ASSERT(cdata > 0); /* the hello; the server answered with HEADERS only */
    (void)sdata;
    free(cw.raw.b);
    free(sw.raw.b);

    CU_ASSERT_EQUAL(mesh_h2_ping(NULL, op), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_h2_ping(c.h, NULL), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_h2_set_padding(NULL, NULL, 0), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_h2_set_padding(c.h, NULL, MESH_H2_PAD_MAX + 1), MESH_ERR_INVAL);
    mesh_h2_free(c.h);
    mesh_h2_free(s.h);
}

static CU_TestInfo tests[] = {
    {"web: every small DATA frame padded 0..255, drawn; HEADERS never", test_data_padded},
    {"web: large messages intact, padding within a smaller bound", test_bound},
    {"no padding unless asked (seed profile)", test_unpadded_default},
    {"PING both ways: one frame, ACK with its data, no DATA", test_ping},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"h2_web", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
