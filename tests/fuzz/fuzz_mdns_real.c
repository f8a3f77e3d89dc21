/* fuzz_mdns_real.c — the real mDNS adapter's reading of a resolved answer
 * (mesh_real_mdns_answer, node/real/mdns.c): the TXT record's wire bytes through avahi's
 * parser and our conversion, and the address. It must never crash, and its result is checked
 * against a plain reading of the same bytes: a string running past the record is
 * MESH_ERR_MALFORMED; otherwise the first MESH_REAL_MDNS_MAX_TXT non-empty strings come out
 * in wire order, each cut at its first NUL; an IPv6 link-local address is refused, any other
 * is carried with its port.
 * Input: byte 0 bit 0 = IPv6, then the address (16 or 4 bytes), 2 bytes of port, and the rest
 * is the TXT record. Seeds: tests/fuzz/corpus/fuzz_mdns_real/ (MESH_FUZZ_SEEDS=DIR writes
 * them anew). Links meshara_real (tests/CMakeLists.txt: fuzz targets named *_real). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "real/mdns.h"

enum { TXT_STR_MAX = 255 };

/* The plain reading: 1 if every length fits, with the non-empty strings' offsets. */
static int read_txt(const uint8_t *p, size_t n, size_t *offs, size_t *nstr)
{
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t len = p[i];
        if (len > n - i - 1)
            return 0;
        if (len)
            offs[k++] = i;
        i += 1 + len;
    }
    *nstr = k;
    return 1;
}

static void check(const uint8_t *txt, size_t n, int inet6, const uint8_t *ip, uint16_t port)
{
    mesh_addr a;
    char **out = NULL;
    int rc = mesh_real_mdns_answer(txt, n, inet6, ip, port, &a, &out);
    if (inet6 && ip[0] == 0xfe && (ip[1] & 0xc0) == 0x80) {
        if (rc != MESH_ERR_UNSUPPORTED)
            __builtin_trap();
        return;
    }
    size_t *offs = malloc((n + 1) * sizeof *offs), nstr = 0;
    if (!offs)
        return;
    int ok = read_txt(txt, n, offs, &nstr);
    if (!ok) {
        if (rc != MESH_ERR_MALFORMED)
            __builtin_trap();
        free(offs);
        return;
    }
    if (rc == MESH_ERR_NOMEM) {
        free(offs);
        return;
    }
    if (rc != MESH_OK || a.port != port || a.family != (inet6 ? MESH_AF_INET6 : MESH_AF_INET4) ||
        memcmp(a.ip, ip, inet6 ? 16 : 4) != 0)
        __builtin_trap();
    size_t want = nstr < MESH_REAL_MDNS_MAX_TXT ? nstr : MESH_REAL_MDNS_MAX_TXT;
    for (size_t i = 0; i < want; i++) {
        const uint8_t *s = txt + offs[i] + 1;
        size_t len = txt[offs[i]];
        const uint8_t *nul = memchr(s, 0, len);
        size_t cut = nul ? (size_t)(nul - s) : len;
        if (!out[i] || strlen(out[i]) != cut || memcmp(out[i], s, cut) != 0 || cut > TXT_STR_MAX)
            __builtin_trap();
    }
    if (out[want])
        __builtin_trap();
    mesh_real_mdns_txt_free(out);
    free(offs);
}

/* Seeds: a node's publication as avahi would carry it (our TXT keys), IPv4 and IPv6. */
static void write_seeds(const char *dir)
{
    static const uint8_t v4[] = {0,   192, 168, 1,   7,   0x11, 0x51, 6,   'v', '=', '1', '.',
                                 '0', '.', 20,  'k', '=', 'a',  'b',  'c', 'd', '0', '1', '2',
                                 '3', '4', '5', '6', '7', '8',  '9',  0,   3,   'x', 0,   'y'};
    static const uint8_t v6[] = {1, 0x20, 1, 0x0d, 0xb8, 0,    0, 0,   0,   0,   0,   0,  0,
                                 0, 0,    0, 1,    0x1f, 0x90, 5, 'p', 'o', 'r', 't', '='};
    static const uint8_t bad[] = {0, 10, 0, 0, 1, 0, 80, 3, 'a', '=', 'b', 9, 'c'};
    mesh_fuzz_seed(dir, "ipv4_txt", NULL, 0, v4, sizeof v4);
    mesh_fuzz_seed(dir, "ipv6_txt", NULL, 0, v6, sizeof v6);
    mesh_fuzz_seed(dir, "txt_past_end", NULL, 0, bad, sizeof bad);
}

MESH_FUZZ_SEED_WRITER(write_seeds)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int inet6 = data[0] & 1;
    size_t iplen = inet6 ? 16 : 4;
    if (size < 1 + iplen + 2)
        return 0;
    const uint8_t *ip = data + 1;
    uint16_t port = (uint16_t)(data[1 + iplen] << 8 | data[2 + iplen]);
    size_t off = 1 + iplen + 2;
    check(data + off, size - off, inet6, ip, port);
    return 0;
}
