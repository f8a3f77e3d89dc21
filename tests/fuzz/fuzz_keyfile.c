/* fuzz_keyfile.c — the key file's decoder (mesh_identity_keyfile_decode: what
 * mesh_keyfile_load runs on the bytes it read) must refuse every malformed file without
 * crashing, and whatever it accepts must re-encode to the very line it was given, up to the
 * case of the hex. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "core/identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mesh_identity *id = NULL;
    if (size > MESH_KEYFILE_MAX + 1) /* the loader reads no more than this */
        return 0;
    if (mesh_identity_keyfile_decode(&id, (const char *)data, size) == MESH_OK) {
        char line[MESH_KEYFILE_LINE_LEN];
        mesh_identity_keyfile_encode(id, line);
        if (size != sizeof line || strncasecmp(line, (const char *)data, size) != 0)
            __builtin_trap();
        mesh_identity_free(id);
    } else if (id) {
        __builtin_trap(); /* *out untouched on failure */
    }
    return 0;
}
