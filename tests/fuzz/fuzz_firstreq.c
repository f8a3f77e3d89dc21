/* fuzz_firstreq.c — the first-request classifier on any bytes. "Verifies" stands for a body
 * that decodes as a hello envelope (bare or padded; no signature can verify against a
 * fuzzer's exporter), so inputs reach every branch up to the verdict. Checked: a verdict is
 * one of the three, OTHER always with a reason; the same bytes give the same verdict; a prefix
 * is MORE or already the verdict of the whole (more bytes never change a decision). */
#include <stddef.h>
#include <stdint.h>

#include "core/firstreq.h"
#include "core/session.h"
#include "meshara/error.h"

static int verify(void *ud, const uint8_t *body, size_t len)
{
    (void)ud;
    mesh_envelope *e = NULL;
    /* bare as the web profile sends it, or padded as the seed corpus still has it */
    if (mesh_wire_decode(body, len, &e) != MESH_OK &&
        mesh_session_frame_consume(body, len, &e) != MESH_OK)
        return MESH_ERR_MALFORMED;
    int rc = e->body_case == MESHARA__WIRE__ENVELOPE__BODY_HELLO ? MESH_OK : MESH_ERR_PROTOCOL;
    mesh_wire_free(e);
    return rc;
}

static mesh_firstreq_verdict classify(const uint8_t *data, size_t size)
{
    mesh_firstreq_result r;
    if (mesh_firstreq_classify(data, size, 1024, verify, NULL, &r) != MESH_OK)
        return (mesh_firstreq_verdict)-1; /* out of memory: no verdict */
    if (r.verdict != MESH_FIRSTREQ_MORE && r.verdict != MESH_FIRSTREQ_HELLO &&
        r.verdict != MESH_FIRSTREQ_OTHER)
        __builtin_trap();
    if ((r.verdict == MESH_FIRSTREQ_OTHER) != (r.why && r.why[0] != '\0'))
        __builtin_trap();
    return r.verdict;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mesh_firstreq_verdict v = classify(data, size);
    if ((int)v < 0)
        return 0;
    if (classify(data, size) != v)
        __builtin_trap();
    size_t cuts[] = {size / 2, size ? size - 1 : 0, size > 24 ? 24 : 0};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        mesh_firstreq_verdict pv = classify(data, cuts[i]);
        if ((int)pv < 0)
            continue;
        if (pv != MESH_FIRSTREQ_MORE && pv != v) /* a verdict, once reached, is final */
            __builtin_trap();
    }
    return 0;
}
