/* fuzz_keyfile.c — the key file parser must refuse every malformed file without crashing,
 * and whatever it accepts must be exactly the canonical line for the seed it returns. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t seed[MESH_SEED_LEN];
    if (mesh_identity_parse_keyfile((const char *)data, size, seed) == MESH_OK) {
        char line[19 + 2 * MESH_SEED_LEN + 2] = "meshara-ed25519-v1 ";
        mesh_hex_encode(seed, MESH_SEED_LEN, line + 19);
        line[19 + 2 * MESH_SEED_LEN] = '\n';
        /* accepted input differs from the canonical line only in hex case */
        if (size != 19 + 2 * MESH_SEED_LEN + 1 || strncasecmp(line, (const char *)data, size) != 0)
            __builtin_trap();
    }
    return 0;
}
