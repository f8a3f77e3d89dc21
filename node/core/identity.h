/* identity.h — a node's Ed25519 identity: key pair, node id, hex forms, the key file.
 *
 * node id = SHA-256(raw 32-byte public key): the DHT's 256-bit id. Keys are generated from
 * 32 bytes of env randomness (an Ed25519 private key is exactly a 32-byte seed), so a
 * simulated node's identity is reproducible from the simulation seed, and core code never
 * touches a random source itself. Signing is deterministic (RFC 8032).
 *
 * Key file: one line "meshara-ed25519-v1 <64 hex chars of the private seed>\n", mode 0600.
 * Creation uses O_CREAT|O_EXCL, so an existing file is never overwritten. Loading refuses a
 * file readable or writable by group or others (MESH_ERR_PERM) and a file that is not
 * exactly that line (MESH_ERR_CORRUPT). Every error is also logged naming the file.
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
    MESH_KEYFILE_MAX = 256,   /* a longer key file is corrupt */
};

typedef struct mesh_identity mesh_identity;
struct evp_pkey_st; /* OpenSSL's EVP_PKEY */

/* A fresh identity from env randomness. MESH_OK, MESH_ERR_NOMEM, MESH_ERR_CRYPTO. */
int mesh_identity_generate(mesh_identity **out, const mesh_env *env);
/* From a 32-byte seed (copied). MESH_OK, MESH_ERR_INVAL, MESH_ERR_NOMEM, MESH_ERR_CRYPTO. */
int mesh_identity_from_seed(mesh_identity **out, const uint8_t seed[MESH_SEED_LEN]);
/* Wipes the seed. NULL: no-op. */
void mesh_identity_free(mesh_identity *id);

/* Generate a new identity and write it to path (mode 0600, O_EXCL). *out may be NULL when
 * only the file is wanted. MESH_OK; MESH_ERR_EXISTS (file exists: untouched); MESH_ERR_IO
 * (cannot create or write: a partial file is removed); MESH_ERR_NOMEM; MESH_ERR_CRYPTO. */
int mesh_identity_create_file(mesh_identity **out, const char *path, const mesh_env *env);
/* Load from path. MESH_OK; MESH_ERR_NOT_FOUND; MESH_ERR_PERM (group/other bits set, or not a
 * regular file); MESH_ERR_CORRUPT (wrong header, length or hex, truncated); MESH_ERR_IO;
 * MESH_ERR_NOMEM; MESH_ERR_CRYPTO. env (may be NULL) receives a log line naming the file. */
int mesh_identity_load_file(mesh_identity **out, const char *path, const mesh_env *env);

/* The key file's bytes (len of them) to the 32-byte seed: exactly one line in the format
 * above. MESH_OK or MESH_ERR_CORRUPT. (mesh_identity_load_file's parser, exposed for fuzzing.) */
int mesh_identity_parse_keyfile(const char *buf, size_t len, uint8_t seed[MESH_SEED_LEN]);

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
