/* fuzz_clienthello.c — the censor's ClientHello parser must never crash on any bytes. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "meshara/error.h"
#include "sim/clienthello.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sim_client_hello h;
    if (sim_client_hello_parse(data, size, &h) == MESH_OK) {
        /* the outputs must be NUL-terminated within their bounds */
        if (strlen(h.sni) > SIM_CH_MAX_SNI || strlen(h.ja3) > SIM_CH_MAX_JA3 ||
            h.alpn_count > SIM_CH_MAX_ALPN || strlen(h.ja3_md5) != 32 || h.hello_len > size)
            __builtin_trap();
    }
    return 0;
}
