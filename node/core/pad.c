/* pad.c — size padding into buckets (format and rules in pad.h).
 *
 * Every padded block has exactly one valid form for a given payload: the length prefix is
 * exact, the total is the smallest bucket for it and the padding is zeros. The decoder checks
 * all three, so a peer cannot smuggle bytes in the padding or make two encodings of one
 * message (which would also be a fingerprint).
 */
#include "core/pad.h"

#include <string.h>

#include "core/bytes.h"

size_t mesh_pad_size(size_t len)
{
    if (len > MESH_PAD_MAX_PAYLOAD)
        return 0;
    size_t need = len + MESH_PAD_HDR_LEN;
    if (need > MESH_PAD_STEP)
        return (need + MESH_PAD_STEP - 1) / MESH_PAD_STEP * MESH_PAD_STEP;
    size_t b = MESH_PAD_MIN_BUCKET;
    while (b < need)
        b <<= 1;
    return b;
}

int mesh_pad_header(uint8_t hdr[MESH_PAD_HDR_LEN], size_t len)
{
    if (len > MESH_PAD_MAX_PAYLOAD)
        return MESH_ERR_TOO_BIG;
    mesh_be32_put(hdr, (uint32_t)len);
    return MESH_OK;
}

long mesh_pad_encode(const uint8_t *payload, size_t len, uint8_t *out, size_t outcap)
{
    size_t total = mesh_pad_size(len);
    if (total == 0)
        return MESH_ERR_TOO_BIG;
    if (!out || outcap < total || (len && !payload))
        return MESH_ERR_INVAL;
    (void)mesh_pad_header(out, len); /* len is in range: total != 0 */
    if (len)
        memcpy(out + MESH_PAD_HDR_LEN, payload, len);
    memset(out + MESH_PAD_HDR_LEN + len, 0, total - MESH_PAD_HDR_LEN - len);
    return (long)total;
}

/* 1 if all n bytes are zero (a branch-free loop the compiler vectorises). */
static int all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

int mesh_pad_decode(const uint8_t *in, size_t len, const uint8_t **payload, size_t *plen)
{
    if (!in || len < MESH_PAD_HDR_LEN)
        return MESH_ERR_TRUNCATED;
    size_t l = mesh_be32_get(in);
    /* The announced length is the attacker's: check it against the block before use. */
    if (l > len - MESH_PAD_HDR_LEN)
        return MESH_ERR_MALFORMED;
    /* Exactly the smallest bucket for l: rejects a total that is no bucket at all, and a
     * larger bucket than needed (a second encoding of the same message). */
    if (mesh_pad_size(l) != len)
        return MESH_ERR_MALFORMED;
    if (!all_zero(in + MESH_PAD_HDR_LEN + l, len - MESH_PAD_HDR_LEN - l))
        return MESH_ERR_MALFORMED;
    *payload = in + MESH_PAD_HDR_LEN;
    *plen = l;
    return MESH_OK;
}
