/* identity.c — Ed25519 identity over OpenSSL EVP, node ids, hex, and the key file's line
 * (encoded and decoded in memory: the file itself is node/real/keyfile.c's). See identity.h
 * for the format and the error contract. */
#include "core/identity.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"

#define KEYFILE_TAG "meshara-ed25519-v1 "
enum { KEYFILE_TAG_LEN = sizeof(KEYFILE_TAG) - 1 };
_Static_assert(MESH_KEYFILE_LINE_LEN == KEYFILE_TAG_LEN + 2 * MESH_SEED_LEN + 1 /* '\n' */,
               "the key file line is the tag, the seed in hex and a newline");

struct mesh_identity {
    EVP_PKEY *pkey;
    uint8_t seed[MESH_SEED_LEN];
    uint8_t pub[MESH_PUBKEY_LEN];
    uint8_t node_id[MESH_NODE_ID_LEN];
};

int mesh_identity_from_seed(mesh_identity **out, const uint8_t seed[MESH_SEED_LEN])
{
    if (!out || !seed)
        return MESH_ERR_INVAL;
    mesh_identity *id = calloc(1, sizeof *id);
    if (!id)
        return MESH_ERR_NOMEM;
    int rc = MESH_ERR_CRYPTO;
    id->pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, MESH_SEED_LEN);
    if (!id->pkey)
        goto fail;
    size_t publen = MESH_PUBKEY_LEN;
    if (EVP_PKEY_get_raw_public_key(id->pkey, id->pub, &publen) != 1 || publen != MESH_PUBKEY_LEN)
        goto fail;
    memcpy(id->seed, seed, MESH_SEED_LEN);
    mesh_node_id_of(id->pub, id->node_id);
    *out = id;
    return MESH_OK;
fail:
    mesh_identity_free(id);
    return rc;
}

int mesh_identity_generate(mesh_identity **out, const mesh_env *env)
{
    if (!out || !env)
        return MESH_ERR_INVAL;
    uint8_t seed[MESH_SEED_LEN];
    mesh_env_random(env, seed, sizeof seed);
    int rc = mesh_identity_from_seed(out, seed);
    OPENSSL_cleanse(seed, sizeof seed);
    return rc;
}

void mesh_identity_free(mesh_identity *id)
{
    if (!id)
        return;
    EVP_PKEY_free(id->pkey);
    OPENSSL_cleanse(id, sizeof *id);
    free(id);
}

const uint8_t *mesh_identity_pubkey(const mesh_identity *id)
{
    return id->pub;
}
const uint8_t *mesh_identity_node_id(const mesh_identity *id)
{
    return id->node_id;
}
struct evp_pkey_st *mesh_identity_pkey(const mesh_identity *id)
{
    return id->pkey;
}

int mesh_identity_pkey_in(const mesh_identity *id, void *libctx, struct evp_pkey_st **out)
{
    EVP_PKEY *pk =
        EVP_PKEY_new_raw_private_key_ex(libctx, "ED25519", NULL, id->seed, MESH_SEED_LEN);
    if (!pk)
        return MESH_ERR_CRYPTO;
    *out = pk;
    return MESH_OK;
}

int mesh_identity_sign(const mesh_identity *id, const uint8_t *msg, size_t len,
                       uint8_t sig[MESH_SIG_LEN])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return MESH_ERR_CRYPTO;
    size_t siglen = MESH_SIG_LEN;
    int ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, id->pkey) == 1 &&
             EVP_DigestSign(ctx, sig, &siglen, msg, len) == 1 && siglen == MESH_SIG_LEN;
    EVP_MD_CTX_free(ctx);
    return ok ? MESH_OK : MESH_ERR_CRYPTO;
}

int mesh_ed25519_verify(const uint8_t pub[MESH_PUBKEY_LEN], const uint8_t *msg, size_t len,
                        const uint8_t sig[MESH_SIG_LEN])
{
    EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, MESH_PUBKEY_LEN);
    if (!pk)
        return MESH_ERR_INVAL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx) {
        EVP_PKEY_free(pk);
        return MESH_ERR_NOMEM;
    }
    int rc = MESH_ERR_BAD_SIGNATURE;
    if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) == 1 &&
        EVP_DigestVerify(ctx, sig, MESH_SIG_LEN, msg, len) == 1)
        rc = MESH_OK;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pk);
    return rc;
}

void mesh_node_id_of(const uint8_t pub[MESH_PUBKEY_LEN], uint8_t id[MESH_NODE_ID_LEN])
{
    SHA256(pub, MESH_PUBKEY_LEN, id);
}

char *mesh_hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
    return out;
}

int mesh_hex_decode(const char *hex, uint8_t *out, size_t len)
{
    if (!hex || strlen(hex) != 2 * len)
        return MESH_ERR_MALFORMED;
    for (size_t i = 0; i < len; i++) {
        int hi = mesh_hex_digit(hex[2 * i]), lo = mesh_hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return MESH_ERR_MALFORMED;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return MESH_OK;
}

/* ---- the key file's line ------------------------------------------------------------- */

void mesh_identity_keyfile_encode(const mesh_identity *id, char line[MESH_KEYFILE_LINE_LEN])
{
    char hex[2 * MESH_SEED_LEN + 1];
    memcpy(line, KEYFILE_TAG, KEYFILE_TAG_LEN);
    mesh_hex_encode(id->seed, MESH_SEED_LEN, hex);
    memcpy(line + KEYFILE_TAG_LEN, hex, 2 * MESH_SEED_LEN);
    line[MESH_KEYFILE_LINE_LEN - 1] = '\n';
    OPENSSL_cleanse(hex, sizeof hex);
}

/* The seed of exactly one key file line; MESH_OK or MESH_ERR_CORRUPT. */
static int parse_line(const char *buf, size_t len, uint8_t seed[MESH_SEED_LEN])
{
    char hex[2 * MESH_SEED_LEN + 1];
    if (len != MESH_KEYFILE_LINE_LEN || memcmp(buf, KEYFILE_TAG, KEYFILE_TAG_LEN) != 0 ||
        buf[MESH_KEYFILE_LINE_LEN - 1] != '\n')
        return MESH_ERR_CORRUPT;
    memcpy(hex, buf + KEYFILE_TAG_LEN, 2 * MESH_SEED_LEN);
    hex[2 * MESH_SEED_LEN] = '\0';
    int rc = mesh_hex_decode(hex, seed, MESH_SEED_LEN) == MESH_OK ? MESH_OK : MESH_ERR_CORRUPT;
    OPENSSL_cleanse(hex, sizeof hex);
    return rc;
}

int mesh_identity_keyfile_decode(mesh_identity **out, const char *buf, size_t len)
{
    if (!out || (!buf && len))
        return MESH_ERR_INVAL;
    uint8_t seed[MESH_SEED_LEN];
    int rc = parse_line(buf, len, seed);
    if (rc == MESH_OK)
        rc = mesh_identity_from_seed(out, seed);
    OPENSSL_cleanse(seed, sizeof seed);
    return rc;
}
