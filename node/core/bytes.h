/* bytes.h — big-endian integers in byte buffers: the one place the wire's 4-byte lengths
 * (frame prefixes, pad headers, HTTP/2 event prefixes) are read and written; and the value of
 * a hex digit, which hex strings (mesh_hex_decode) and IPv6 text (env.c) share. Header-only:
 * inline functions the compiler folds into a load, a store or a few compares. */
#ifndef MESH_CORE_BYTES_H
#define MESH_CORE_BYTES_H

#include <stdint.h>

/* The 4 bytes at p as a big-endian unsigned integer. */
static inline uint32_t mesh_be32_get(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* v as 4 big-endian bytes at p. */
static inline void mesh_be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* The value of hex digit c (either case), or -1. */
static inline int mesh_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
