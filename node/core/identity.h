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
#include "meshara/meshara.h" /* the public part of this module, declared there too */

enum mesh_identity_limits {
    MESH_PUBKEY_LEN = 32,
    MESH_SEED_LEN = 32,
    MESH_SIG_LEN = 64,
    MESH_NODE_ID_LEN = 32,
    MESH_PUBKEY_HEX_LEN = 64, /* without the NUL */
    MESH_KEYFILE_LINE_LEN = MESH_NODE_KEYFILE_LINE_LEN,
    MESH_KEYFILE_MAX = MESH_NODE_KEYFILE_MAX,
};

struct evp_pkey_st; /* OpenSSL's EVP_PKEY */

/* Public (declared in meshara/meshara.h, with their contracts): mesh_identity_generate,
 * _from_seed, _free, _pubkey, _node_id, _keyfile_encode, _keyfile_decode. */

struct evp_pkey_st *mesh_identity_pkey(const mesh_identity *id); /* default library context */
/* A new EVP_PKEY for this identity inside OpenSSL library context libctx (an OSSL_LIB_CTX *,
 * NULL = default): the TLS module keeps each node's OpenSSL objects in the node's own
 * context. The caller frees it with EVP_PKEY_free. MESH_OK, MESH_ERR_CRYPTO. */
int mesh_identity_pkey_in(const mesh_identity *id, void *libctx, struct evp_pkey_st **out);

/* Ed25519 signature of msg. MESH_OK or MESH_ERR_CRYPTO. */
int mesh_identity_sign(const mesh_identity *id, const uint8_t *msg, size_t len,
                       uint8_t sig[MESH_SIG_LEN]);
/* Verify sig over msg with a raw public key. MESH_OK, MESH_ERR_BAD_SIGNATURE (the signature
 * is wrong, or the key is not a curve point), MESH_ERR_NOMEM or MESH_ERR_CRYPTO (OpenSSL
 * could not check it: out of memory; never reported as a bad signature). */
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
