/* fuzz_pad.c — unpadding any bytes: an accepted block must re-encode to exactly the same
 * bytes (one valid encoding per payload); and the input taken as a payload must pad and
 * unpad back to itself. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/pad.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = NULL;
    size_t plen = 0;
    if (mesh_pad_decode(data, size, &p, &plen) == MESH_OK) {
        if (p < data || plen > size || p + plen > data + size)
            __builtin_trap();
        uint8_t *again = malloc(size);
        if (!again)
            return 0;
        if (mesh_pad_encode(p, plen, again, size) != (long)size || memcmp(again, data, size))
            __builtin_trap();
        free(again);
    }

    size_t total = mesh_pad_size(size);
    if (total < size + MESH_PAD_HDR_LEN)
        __builtin_trap();
    uint8_t *blk = malloc(total);
    if (!blk)
        return 0;
    if (mesh_pad_encode(data, size, blk, total) != (long)total)
        __builtin_trap();
    if (mesh_pad_decode(blk, total, &p, &plen) != MESH_OK || plen != size ||
        (size && memcmp(p, data, size)))
        __builtin_trap();
    free(blk);
    return 0;
}
