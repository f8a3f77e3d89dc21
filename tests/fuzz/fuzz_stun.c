/* fuzz_stun.c — the STUN decoder (core/stun.h, the one decoder of STUN) on any bytes, then
 * everything the client and the responder do with a decoded message:
 *  - a message that decodes re-encodes to the same bytes (padding set to zero, the format's
 *    only freedom): every attribute in order, integrity attributes passed through raw;
 *  - every typed getter on every attribute must not crash; an address that decodes
 *    re-encodes to the same value bytes (the XOR is undone and redone);
 *  - FINGERPRINT and both MESSAGE-INTEGRITY checks run (with a fixed key) and never crash;
 *  - the responder's answer to it as a request (mesh_stun_server_answer) is either nothing
 *    or a message that itself decodes, carries the request's transaction id and a
 *    right FINGERPRINT;
 *  - the stream framing agrees with the decoder.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/stun.h"
#include "core/stun_server.h"

static const uint8_t KEY[] = "fuzz-key";

static void getters(const mesh_stun_msg *m, const mesh_stun_attr *a)
{
    mesh_addr addr;
    uint32_t u;
    unsigned flags;
    int code;
    const char *text;
    size_t n;
    uint16_t types[MESH_STUN_MAX_UNKNOWN];
    uint8_t proto;
    if (mesh_stun_get_addr(m, a, &addr) == MESH_OK) {
        uint8_t buf[64];
        mesh_stun_enc e;
        mesh_stun_enc_init(&e, buf, sizeof buf, m->type, m->tid);
        mesh_stun_enc_addr(&e, a->type, &addr);
        size_t len = 0;
        if (mesh_stun_enc_finish(&e, &len) != MESH_OK || len != 24u + a->len ||
            memcmp(buf + 24, mesh_stun_value(m, a), a->len) != 0)
            __builtin_trap();
    }
    (void)mesh_stun_get_u32(m, a, &u);
    (void)mesh_stun_get_change(m, a, &flags);
    if (mesh_stun_get_error(m, a, &code, &text, &n) == MESH_OK && (code < 300 || code > 699))
        __builtin_trap();
    if (mesh_stun_get_text(m, a, &text, &n) == MESH_OK && n != a->len)
        __builtin_trap();
    if (mesh_stun_get_unknown(m, a, types, MESH_STUN_MAX_UNKNOWN, &n) == MESH_OK &&
        n > MESH_STUN_MAX_UNKNOWN)
        __builtin_trap();
    (void)mesh_stun_get_transport(m, a, &proto);
}

static void reencode(const mesh_stun_msg *m, const uint8_t *data, size_t size)
{
    static uint8_t out[MESH_STUN_MAX_MSG], want[MESH_STUN_MAX_MSG];
    memcpy(want, data, size);
    mesh_stun_enc e;
    mesh_stun_enc_init(&e, out, sizeof out, m->type, m->tid);
    for (size_t i = 0; i < m->nattrs; i++) {
        const mesh_stun_attr *a = &m->attrs[i];
        size_t padded = (a->len + 3u) & ~3u;
        memset(want + a->off + a->len, 0, padded - a->len);
        mesh_stun_enc_attr_raw(&e, a->type, mesh_stun_value(m, a), a->len);
    }
    size_t len = 0;
    if (mesh_stun_enc_finish(&e, &len) != MESH_OK || len != size || memcmp(out, want, size) != 0)
        __builtin_trap();
}

static void answer(const mesh_stun_msg *m)
{
    static uint8_t out[MESH_STUN_SERVER_MAX_ANSWER];
    mesh_stun_server_cfg cfg;
    mesh_stun_server_cfg_default(&cfg);
    cfg.primary = mesh_addr_v4(0x0b000001, 3478);
    cfg.alternate = mesh_addr_v4(0x0b000002, 3479);
    cfg.software = "fuzz";
    mesh_addr from = mesh_addr_v4(0x0c000001, 40000);
    unsigned via = 0;
    for (int where = 0; where < 4; where++) {
        size_t len = 0;
        int rc =
            mesh_stun_server_answer(&cfg, m, &from, where, where == 3, out, sizeof out, &len, &via);
        if (rc == MESH_ERR_PROTOCOL)
            continue; /* not a request, or a wrong FINGERPRINT: no answer */
        if (rc != MESH_OK || via > 3)
            __builtin_trap();
        mesh_stun_msg r;
        if (mesh_stun_decode(&r, out, len) != MESH_OK || memcmp(r.tid, m->tid, 12) != 0 ||
            r.method != m->method || mesh_stun_check_fingerprint(&r) != MESH_OK)
            __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t total = 0;
    int frc = mesh_stun_frame_len(data, size, &total);
    mesh_stun_msg m;
    int rc = mesh_stun_decode(&m, data, size);
    if (rc == MESH_OK && (frc != MESH_OK || total != size))
        __builtin_trap();
    if (rc != MESH_OK)
        return 0;
    if (m.nvisible > m.nattrs || m.nattrs > MESH_STUN_MAX_ATTRS)
        __builtin_trap();
    reencode(&m, data, size);
    for (size_t i = 0; i < m.nattrs; i++)
        getters(&m, &m.attrs[i]);
    uint16_t unk[8];
    (void)mesh_stun_unknown_required(&m, unk, 8);
    (void)mesh_stun_check_fingerprint(&m);
    for (int kind = MESH_STUN_MI_ANY; kind <= MESH_STUN_MI_SHA256; kind++)
        (void)mesh_stun_check_integrity(&m, KEY, sizeof KEY - 1, kind);
    answer(&m);
    return 0;
}
