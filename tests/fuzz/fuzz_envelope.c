/* fuzz_envelope.c — decoding any bytes as an Envelope: never a crash or leak; what is
 * accepted must encode again and decode again to the same body case (and the checks the
 * receiver made must hold for the encoder too). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mesh_envelope *e = NULL;
    int rc = mesh_wire_decode(data, size, &e);
    if (rc != MESH_OK) {
        if (e != NULL)
            __builtin_trap(); /* *out is untouched on failure */
        if (rc != MESH_ERR_MALFORMED && rc != MESH_ERR_VERSION && rc != MESH_ERR_LIMIT &&
            rc != MESH_ERR_NOMEM)
            __builtin_trap();
        return 0;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    if (mesh_wire_encode(e, &buf, &len) != MESH_OK)
        __builtin_trap();
    mesh_envelope *e2 = NULL;
    if (mesh_wire_decode(buf, len, &e2) != MESH_OK || e2->body_case != e->body_case ||
        e2->version != MESH_WIRE_VERSION)
        __builtin_trap();
    mesh_wire_free(e2);
    free(buf);
    mesh_wire_free(e);
    return 0;
}
