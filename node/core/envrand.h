/* envrand.h — an OpenSSL RAND provider whose randomness comes from a mesh_env.
 *
 * OpenSSL draws randomness for TLS (client/server randoms, key shares, signatures' nonces
 * where the algorithm wants them) from the DRBGs of a library context. Loading this provider
 * into a library context makes it both the seed source and the DRBG type there, and its
 * generate() calls mesh_env_random(): so the real driver's TLS gets the OS's randomness
 * (getrandom) and simulated TLS bytes are a pure function of the simulation seed, and core
 * code never calls RAND_bytes. Only tls.c uses it (one provider per mesh_tls_lib).
 *
 * The provider keeps a copy of the env (a plain value): the env's driver object must outlive
 * the library context. No locking: a library context is used by one thread (the node's loop,
 * or one simulated world), which OpenSSL is told through the provider's lock functions.
 */
#ifndef MESH_CORE_ENVRAND_H
#define MESH_CORE_ENVRAND_H

#include <openssl/types.h>

#include "meshara/env.h"

/* Register the provider in libctx, make it the seed source and the DRBG type there, and load
 * it drawing from env (copied). Call before anything in libctx draws randomness. *out: the
 * loaded provider, for mesh_envrand_unload. MESH_OK; MESH_ERR_INVAL (an argument NULL: the
 * default library context, shared by the whole process, is never changed); MESH_ERR_CRYPTO
 * (OpenSSL refused; its error queue says why). *out untouched on failure. */
int mesh_envrand_load(OSSL_LIB_CTX *libctx, const mesh_env *env, OSSL_PROVIDER **out);

/* Unload it (before freeing the library context). NULL: no-op. */
void mesh_envrand_unload(OSSL_PROVIDER *prov);

#endif
