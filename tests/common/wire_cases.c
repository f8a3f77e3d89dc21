/* wire_cases.c — hand-made AppData envelopes (see wire_cases.h). */
#include "wire_cases.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/wire.h"

/* One-byte protobuf tags: field number << 3 | wire type (node/wire/meshara.proto). */
enum { T_VERSION = 0x08, T_DATA = 14 << 3 | 2, T_MSG = 0x08, T_PAY = 0x12, T_ACK = 0x18 };

void mesh_wire_put_varint(mesh_test_buf *b, uint64_t v, int extra)
{
    uint8_t t[16];
    size_t n = 0;
    do {
        t[n++] = (uint8_t)(v & 0x7f) | 0x80;
        v >>= 7;
    } while (v);
    for (int i = 0; i < extra; i++)
        t[n++] = 0x80;
    t[n - 1] &= 0x7f;
    if (extra)
        t[n - 1] = 0; /* the last of the overlong bytes */
    mesh_test_buf_add(b, t, n);
}

void mesh_wire_put_byte(mesh_test_buf *b, uint8_t x)
{
    mesh_test_buf_add(b, &x, 1);
}

const uint8_t *mesh_wire_pattern(void)
{
    static uint8_t pattern[MESH_WIRE_PATTERN_LEN];
    static int made;
    for (size_t i = 0; !made && i < sizeof pattern; i++)
        pattern[i] = (uint8_t)(i * 131 + 7);
    made = 1;
    return pattern;
}

void mesh_wire_canonical(mesh_test_buf *out, uint64_t id, size_t plen, int ack)
{
    Meshara__Wire__AppData d = MESHARA__WIRE__APP_DATA__INIT;
    d.msg_id = id;
    d.payload.data = plen ? (uint8_t *)mesh_wire_pattern() : NULL;
    d.payload.len = plen;
    d.ack_requested = ack;
    mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
    e.body_case = MESHARA__WIRE__ENVELOPE__BODY_DATA;
    e.data = &d;
    uint8_t *w = NULL;
    size_t wlen = 0;
    if (plen > MESH_WIRE_PATTERN_LEN || mesh_wire_encode(&e, &w, &wlen) != MESH_OK) {
        fputs("mesh_wire_canonical: cannot encode\n", stderr);
        abort();
    }
    out->len = 0;
    mesh_test_buf_add(out, w, wlen);
    free(w);
}

#define VARINT mesh_wire_put_varint
#define BYTE mesh_wire_put_byte

/* Envelope{version (overlong by vextra), data = inner with its length overlong by extra}. */
static void wrap(mesh_test_buf *out, uint64_t version, int vextra, const mesh_test_buf *inner,
                 int extra)
{
    out->len = 0;
    BYTE(out, T_VERSION), VARINT(out, version, vextra);
    BYTE(out, T_DATA), VARINT(out, inner->len, extra);
    mesh_test_buf_add(out, inner->b, inner->len);
}

typedef struct wcase {
    const char *what;
    int view_may;
    uint64_t version;
    int vextra, extra;
} wcase;

static const wcase CASES[] = {
    {"payload before msg_id", 1, 1, 0, 0},
    {"msg_id twice: the last wins", 0, 1, 0, 0},
    {"payload twice", 0, 1, 0, 0},
    {"overlong varints", 1, 1, 0, 0},
    {"overlong data length", 1, 1, 0, 2},
    {"unknown field 9 in AppData", 0, 1, 0, 0},
    {"ack_requested = 2, then as a 2-byte varint", 0, 1, 0, 0},
    {"ack before payload", 1, 1, 0, 0},
    {"version 2", 0, 2, 0, 0},
    {"payload length beyond the message", 0, 1, 0, 0},
    {"a 10-byte msg_id", 0, 1, 0, 0},
    {"version spelt overlong, payload explicitly empty", 1, 1, 1, 1},
    {"the data field twice (protobuf-c merges them)", 0, 1, 0, 0},
};

/* The AppData body of case c. */
static void body(int c, const uint8_t *pl, mesh_test_buf *in)
{
    switch (c) {
    case 0:
        BYTE(in, T_PAY), VARINT(in, 3, 0), mesh_test_buf_add(in, pl, 3);
        BYTE(in, T_MSG), VARINT(in, 5, 0);
        break;
    case 1:
        BYTE(in, T_MSG), VARINT(in, 5, 0), BYTE(in, T_MSG), VARINT(in, 6, 0);
        break;
    case 2:
        for (int i = 0; i < 2; i++)
            BYTE(in, T_PAY), VARINT(in, 4, 0), mesh_test_buf_add(in, pl + i, 4);
        break;
    case 3:
        BYTE(in, T_MSG), VARINT(in, 5, 3);
        BYTE(in, T_PAY), VARINT(in, 10, 2), mesh_test_buf_add(in, pl, 10);
        break;
    case 5:
        BYTE(in, T_MSG), VARINT(in, 5, 0), BYTE(in, 9 << 3), VARINT(in, 1, 0);
        break;
    case 6:
        BYTE(in, T_ACK), VARINT(in, 2, 0), BYTE(in, T_ACK), VARINT(in, 1, 1);
        break;
    case 7:
        BYTE(in, T_ACK), VARINT(in, 1, 0);
        BYTE(in, T_PAY), VARINT(in, 2, 0), mesh_test_buf_add(in, pl, 2);
        break;
    case 9:
        BYTE(in, T_PAY), VARINT(in, 50, 0), mesh_test_buf_add(in, pl, 10);
        break;
    case 10:
        BYTE(in, T_MSG), VARINT(in, UINT64_MAX, 0);
        break;
    case 11:
        BYTE(in, T_PAY), VARINT(in, 0, 0);
        break;
    default: /* 4, 8, 12: a plain msg_id */
        BYTE(in, T_MSG), VARINT(in, 5, 0);
        break;
    }
}

int mesh_wire_case(int c, const uint8_t *payload, mesh_test_buf *out, const char **what)
{
    if (c < 0 || (size_t)c >= sizeof CASES / sizeof CASES[0])
        return -1;
    const wcase *k = &CASES[c];
    mesh_test_buf in = {0};
    body(c, payload, &in);
    wrap(out, k->version, k->vextra, &in, k->extra);
    if (c == 12) { /* a second data field after the first */
        in.len = 0;
        BYTE(&in, T_PAY), VARINT(&in, 2, 0), mesh_test_buf_add(&in, payload, 2);
        BYTE(out, T_DATA), VARINT(out, in.len, 0), mesh_test_buf_add(out, in.b, in.len);
    }
    free(in.b);
    if (what)
        *what = k->what;
    return k->view_may;
}
