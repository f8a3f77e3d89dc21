/* fuzz_punch.c — Punch messages on arbitrary bytes, through the one envelope decoder (wire.c)
 * and the candidate parser every received Punch goes through (mesh_punch_candidates). Never
 * a crash or a leak; only documented codes; at most MESH_PUNCH_MAX_CANDS candidates, each
 * usable (a port, a family) and distinct, and each formats to text that parses back to
 * itself; an accepted Punch encodes again (the receiver would accept what we relay). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/punch.h"
#include "core/wire.h"

static void check_candidates(const Meshara__Wire__Punch *m)
{
    mesh_addr c[MESH_PUNCH_MAX_CANDS + 1];
    size_t n = mesh_punch_candidates(m, c, MESH_PUNCH_MAX_CANDS + 1);
    if (n > MESH_PUNCH_MAX_CANDS || n > m->n_addresses)
        __builtin_trap();
    for (size_t i = 0; i < n; i++) {
        if (c[i].port == 0 || (c[i].family != MESH_AF_INET4 && c[i].family != MESH_AF_INET6))
            __builtin_trap();
        for (size_t j = 0; j < i; j++)
            if (mesh_addr_equal(&c[i], &c[j]))
                __builtin_trap();
        char t[MESH_ADDR_STRLEN];
        mesh_addr back;
        if (mesh_addr_parse(&back, mesh_addr_format(&c[i], t, sizeof t)) != MESH_OK ||
            !mesh_addr_equal(&back, &c[i]))
            __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mesh_envelope *e = NULL;
    int rc = mesh_wire_decode(data, size, &e);
    if (rc != MESH_OK) {
        if (e != NULL)
            __builtin_trap();
        if (rc != MESH_ERR_MALFORMED && rc != MESH_ERR_VERSION && rc != MESH_ERR_LIMIT &&
            rc != MESH_ERR_NOMEM && rc != MESH_ERR_TOO_BIG)
            __builtin_trap();
        return 0;
    }
    if (e->body_case == MESHARA__WIRE__ENVELOPE__BODY_PUNCH) {
        check_candidates(e->punch);
        uint8_t *out = NULL;
        size_t n = 0;
        rc = mesh_wire_encode(e, &out, &n);
        if (rc != MESH_OK && rc != MESH_ERR_NOMEM)
            __builtin_trap();
        free(out);
    }
    mesh_wire_free(e);
    return 0;
}
