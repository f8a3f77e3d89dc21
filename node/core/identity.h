/* identity.h — a node's Ed25519 identity: key pair, node id, hex forms, the key file's line.
 *
 * node id = SHA-256(raw 32-byte public key): the DHT's 256-bit id. Keys are generated from
 * 32 bytes of env randomness (an Ed25519 private key is exactly a 32-byte seed), so a
 * simulated node's identity is reproducible from the simulation seed, and core code never
 * touches a random source itself. Signing is deterministic (RFC 8032).
 *
 * Key file: one line "meshara-ed25519-v1 <64 hex chars of the private seed>\n". This module
 * encodes and decodes that line in memory only (the core touches no file: docs/architecture.md);
 * creating, reading and refusing the file itself (mode 0600, O_EXCL, no symbolic links, regular
 * files only) is node/real/keyfile.h's.
 *
 * Ownership: mesh_identity_* objects own an OpenSSL EVP_PKEY and wipe the seed on free.
 */
#ifndef MESH_CORE_IDENTITY_H
#define MESH_CORE_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "meshara/env.h"

enum mesh_identity_limits {
    MESH_PUBKEY_LEN = 32,
    MESH_SEED_LEN = 32,
    MESH_SIG_LEN = 64,
    MESH_NODE_ID_LEN = 32,
    MESH_PUBKEY_HEX_LEN = 64,   /* without the NUL */
    MESH_KEYFILE_LINE_LEN = 84, /* "meshara-ed25519-v1 " + 64 hex + '\n' */
    MESH_KEYFILE_MAX = 256,     /* a loader reads no more: a longer key file is corrupt */
};

typedef struct mesh_identity mesh_identity;
struct evp_pkey_st; /* OpenSSL's EVP_PKEY */

/* A fresh identity from env randomness. MESH_OK, MESH_ERR_NOMEM, MESH_ERR_CRYPTO. */
int mesh_identity_generate(mesh_identity **out, const mesh_env *env);
/* From a 32-byte seed (copied). MESH_OK, MESH_ERR_INVAL, MESH_ERR_NOMEM, MESH_ERR_CRYPTO. */
int mesh_identity_from_seed(mesh_identity **out, const uint8_t seed[MESH_SEED_LEN]);
/* Wipes the seed. NULL: no-op. */
void mesh_identity_free(mesh_identity *id);

/* The key file's line for id into line (MESH_KEYFILE_LINE_LEN bytes, no NUL). It holds the
 * private key: the caller wipes it (OPENSSL_cleanse) once written. */
void mesh_identity_keyfile_encode(const mesh_identity *id, char line[MESH_KEYFILE_LINE_LEN]);
/* An identity from a key file's len bytes, which must be exactly one line in the format above
 * (the seed's hex in either case). The one decoder of the format: the loader and the fuzzer
 * (fuzz_keyfile) both run it. MESH_OK; MESH_ERR_CORRUPT (wrong tag, length, hex or line end);
 * MESH_ERR_INVAL (out NULL, or buf NULL with len > 0); MESH_ERR_NOMEM; MESH_ERR_CRYPTO.
 * *out untouched on failure. */
int mesh_identity_keyfile_decode(mesh_identity **out, const char *buf, size_t len);

/* Borrowed views, valid as long as id. */
const uint8_t *mesh_identity_pubkey(const mesh_identity *id);    /* MESH_PUBKEY_LEN bytes */
const uint8_t *mesh_identity_node_id(const mesh_identity *id);   /* MESH_NODE_ID_LEN bytes */
struct evp_pkey_st *mesh_identity_pkey(const mesh_identity *id); /* default library context */
/* A new EVP_PKEY for this identity inside OpenSSL library context libctx (an OSSL_LIB_CTX *,
 * NULL = default): the TLS module keeps each node's OpenSSL objects in the node's own
 * context. The caller frees it with EVP_PKEY_free. MESH_OK, MESH_ERR_CRYPTO. */
int mesh_identity_pkey_in(const mesh_identity *id, void *libctx, struct evp_pkey_st **out);

/* Ed25519 signature of msg. MESH_OK or MESH_ERR_CRYPTO. */
int mesh_identity_sign(const mesh_identity *id, const uint8_t *msg, size_t len,
                       uint8_t sig[MESH_SIG_LEN]);
/* Verify sig over msg with a raw public key. MESH_OK, MESH_ERR_BAD_SIGNATURE,
 * MESH_ERR_INVAL (not a valid key), MESH_ERR_NOMEM. */
int mesh_ed25519_verify(const uint8_t pub[MESH_PUBKEY_LEN], const uint8_t *msg, size_t len,
                        const uint8_t sig[MESH_SIG_LEN]);
/* node id of a raw public key. */
void mesh_node_id_of(const uint8_t pub[MESH_PUBKEY_LEN], uint8_t id[MESH_NODE_ID_LEN]);

/* Lower-case hex of len bytes into out (2*len+1 bytes, NUL-terminated). Returns out. */
char *mesh_hex_encode(const uint8_t *in, size_t len, char *out);
/* Decode exactly 2*len hex chars (either case) from a NUL-terminated string.
 * MESH_OK or MESH_ERR_MALFORMED (wrong length or a non-hex char). */
int mesh_hex_decode(const char *hex, uint8_t *out, size_t len);

#endif
