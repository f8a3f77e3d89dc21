/* fuzz_mdns.c — the simulator's mDNS messages (sim/mdns.h): any bytes the decoder accepts
 * must re-encode to exactly the same bytes (one encoding per message, nothing trailing), and
 * no accepted string may contain a NUL or be empty. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sim/mdns.h"

static void check_str(const sim_mdns_str *s, const uint8_t *data, size_t size)
{
    if (s->len == 0 || s->len > SIM_MDNS_STR_MAX || memchr(s->p, '\0', s->len) ||
        (const uint8_t *)s->p < data || (const uint8_t *)s->p + s->len > data + size)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sim_mdns_msg m;
    if (sim_mdns_msg_consume(&m, data, size) != MESH_OK)
        return 0;
    if (m.kind != SIM_MDNS_QUERY)
        check_str(&m.name, data, size);
    check_str(&m.type, data, size);
    for (size_t i = 0; i < m.ntxt; i++)
        check_str(&m.txt[i], data, size);
    uint8_t again[2 * SIM_MDNS_MSG_MAX + 70000];
    size_t len = 0;
    if (sim_mdns_msg_create(&m, again, sizeof again, &len) != MESH_OK || len != size ||
        memcmp(again, data, size))
        __builtin_trap();
    return 0;
}
