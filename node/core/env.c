/* env.c — helpers over the env seam: address text form, bounded random, formatted log.
 * Address parsing is done here by hand because core code may not include the OS's socket
 * headers (see docs/architecture.md, "the seam"). */
#include "meshara/env.h"

#include <stdio.h>
#include <string.h>

#include "core/bytes.h"

/* Parse a dotted quad into 4 bytes; the whole string must be consumed. */
static int parse_v4(const char *s, size_t n, uint8_t out[4])
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= n || s[i] != '.')
                return -1;
            i++;
        }
        unsigned v = 0;
        size_t digits = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9' && digits < 4) {
            v = v * 10 + (unsigned)(s[i] - '0');
            i++;
            digits++;
        }
        if (digits == 0 || digits > 3 || v > 255 || (digits > 1 && s[i - digits] == '0'))
            return -1;
        out[part] = (uint8_t)v;
    }
    return i == n ? 0 : -1;
}

/* Parse an RFC 4291 text IPv6 address (with "::" and an optional trailing dotted quad). */
static int parse_v6(const char *s, size_t n, uint8_t out[16])
{
    uint16_t groups[8];
    int ngroups = 0, gap = -1;
    size_t i = 0;
    if (n >= 2 && s[0] == ':' && s[1] == ':') {
        gap = 0;
        i = 2;
    } else if (n >= 1 && s[0] == ':') {
        return -1;
    }
    while (i < n) {
        if (ngroups >= 8)
            return -1;
        /* trailing IPv4 part? */
        size_t j = i;
        while (j < n && s[j] != ':' && s[j] != '.')
            j++;
        if (j < n && s[j] == '.') {
            uint8_t v4[4];
            if (ngroups > 6 || parse_v4(s + i, n - i, v4) != 0)
                return -1;
            groups[ngroups++] = (uint16_t)(v4[0] << 8 | v4[1]);
            groups[ngroups++] = (uint16_t)(v4[2] << 8 | v4[3]);
            i = n;
            break;
        }
        unsigned v = 0;
        size_t digits = 0;
        while (i < n && mesh_hex_digit(s[i]) >= 0) {
            if (++digits > 4)
                return -1;
            v = v << 4 | (unsigned)mesh_hex_digit(s[i]);
            i++;
        }
        if (digits == 0)
            return -1;
        groups[ngroups++] = (uint16_t)v;
        if (i == n)
            break;
        if (s[i] != ':')
            return -1;
        i++;
        if (i < n && s[i] == ':') {
            if (gap >= 0)
                return -1;
            gap = ngroups;
            i++;
        } else if (i == n) {
            return -1; /* trailing single colon */
        }
    }
    if (gap < 0 && ngroups != 8)
        return -1;
    if (gap >= 0 && ngroups > 7)
        return -1;
    memset(out, 0, 16);
    int tail = gap < 0 ? 0 : ngroups - gap;
    int head = gap < 0 ? ngroups : gap;
    for (int g = 0; g < head; g++) {
        out[2 * g] = (uint8_t)(groups[g] >> 8);
        out[2 * g + 1] = (uint8_t)groups[g];
    }
    for (int g = 0; g < tail; g++) {
        int dst = 8 - tail + g;
        out[2 * dst] = (uint8_t)(groups[head + g] >> 8);
        out[2 * dst + 1] = (uint8_t)groups[head + g];
    }
    return 0;
}

static int parse_port(const char *s, uint16_t *port)
{
    unsigned long v = 0;
    if (*s == '\0')
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > 65535)
            return -1;
    }
    *port = (uint16_t)v;
    return 0;
}

int mesh_addr_parse(mesh_addr *out, const char *text)
{
    mesh_addr a;
    memset(&a, 0, sizeof a);
    if (!out || !text)
        return MESH_ERR_INVAL;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':')
            return MESH_ERR_INVAL;
        if (parse_v6(text + 1, (size_t)(close - text - 1), a.ip) != 0 ||
            parse_port(close + 2, &a.port) != 0)
            return MESH_ERR_INVAL;
        a.family = MESH_AF_INET6;
    } else {
        const char *colon = strrchr(text, ':');
        if (!colon || parse_v4(text, (size_t)(colon - text), a.ip) != 0 ||
            parse_port(colon + 1, &a.port) != 0)
            return MESH_ERR_INVAL;
        a.family = MESH_AF_INET4;
    }
    *out = a;
    return MESH_OK;
}

char *mesh_addr_format(const mesh_addr *a, char *buf, size_t buflen)
{
    if (!buf || buflen == 0)
        return buf;
    if (a->family == MESH_AF_INET4) {
        snprintf(buf, buflen, "%u.%u.%u.%u:%u", a->ip[0], a->ip[1], a->ip[2], a->ip[3], a->port);
    } else if (a->family == MESH_AF_INET6) {
        /* compress the longest run of zero groups (RFC 5952) */
        int best = -1, bestlen = 0;
        for (int g = 0; g < 8;) {
            int len = 0;
            while (g + len < 8 && a->ip[2 * (g + len)] == 0 && a->ip[2 * (g + len) + 1] == 0)
                len++;
            if (len > bestlen && len >= 2) {
                best = g;
                bestlen = len;
            }
            g += len ? len : 1;
        }
        char tmp[48];
        size_t o = 0;
        tmp[o++] = '[';
        for (int g = 0; g < 8; g++) {
            if (g == best) {
                tmp[o++] = ':';
                if (g == 0)
                    tmp[o++] = ':';
                g += bestlen - 1;
                continue;
            }
            o += (size_t)snprintf(tmp + o, sizeof tmp - o, "%x%s",
                                  (unsigned)(a->ip[2 * g] << 8 | a->ip[2 * g + 1]),
                                  g < 7 ? ":" : "");
        }
        if (o > 1 && tmp[o - 1] == ':' && !(best >= 0 && best + bestlen == 8))
            o--;
        tmp[o] = '\0';
        snprintf(buf, buflen, "%s]:%u", tmp, a->port);
    } else {
        snprintf(buf, buflen, "(none)");
    }
    return buf;
}

mesh_addr mesh_addr_v4(uint32_t ip, uint16_t port)
{
    mesh_addr a;
    memset(&a, 0, sizeof a);
    a.family = MESH_AF_INET4;
    a.port = port;
    a.ip[0] = (uint8_t)(ip >> 24);
    a.ip[1] = (uint8_t)(ip >> 16);
    a.ip[2] = (uint8_t)(ip >> 8);
    a.ip[3] = (uint8_t)ip;
    return a;
}

int mesh_addr_equal(const mesh_addr *a, const mesh_addr *b)
{
    size_t n = a->family == MESH_AF_INET6 ? 16 : 4;
    return a->family == b->family && a->port == b->port && memcmp(a->ip, b->ip, n) == 0;
}

uint64_t mesh_env_random_below(const mesh_env *e, uint64_t bound)
{
    if (bound == 0)
        return 0;
    /* rejection sampling: discard the top partial range */
    uint64_t limit = UINT64_MAX - (UINT64_MAX % bound);
    uint64_t v;
    do {
        mesh_env_random(e, &v, sizeof v);
    } while (v >= limit);
    return v % bound;
}

void mesh_log(const mesh_env *e, int level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    e->ops->log(e->obj, level, line);
}

int mesh_host_name_check(const char *name)
{
    if (!name)
        return MESH_ERR_INVAL;
    size_t n = strnlen(name, MESH_HOST_NAME_MAX + 1), label = 0;
    int digits_only = 1;
    if (n == 0 || n > MESH_HOST_NAME_MAX)
        return MESH_ERR_INVAL;
    for (size_t i = 0; i <= n; i++) {
        char c = name[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || name[i - 1] == '-')
                return MESH_ERR_INVAL; /* empty label, trailing dot, or ends with a hyphen */
            if (c == '\0')
                break;
            label = 0;
            digits_only = 1;
            continue;
        }
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        int digit = c >= '0' && c <= '9';
        if ((!alpha && !digit && c != '-') || (c == '-' && label == 0) || ++label > 63)
            return MESH_ERR_INVAL;
        digits_only &= digit;
    }
    return digits_only ? MESH_ERR_INVAL : MESH_OK; /* "10.0.0.1" is an address, not a name */
}
