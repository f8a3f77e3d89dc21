/* envrand.c — the env RAND provider (see envrand.h): an EVP_RAND whose generate() is
 * mesh_env_random, registered as a built-in provider of one library context. */
#include "core/envrand.h"

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rand.h>

#define ENVRAND_PROVIDER "meshara-env-rand"
#define ENVRAND_ALG "MESH-ENV"
#define ENVRAND_PROPQ "provider=" ENVRAND_PROVIDER

enum { ENVRAND_STRENGTH = 256, ENVRAND_MAX_REQUEST = 1 << 16 };

/* The provider's init function gets no user pointer, yet each node's provider instance
 * must reach that node's env. OSSL_PROVIDER_load() runs the init synchronously on the
 * calling thread, so mesh_envrand_load() parks the env here for exactly the duration of that
 * call and clears it after. This is the core's one piece of thread-scoped mutable state:
 * it is never read outside that window, and _Thread_local keeps nodes built concurrently on
 * other threads apart. */
static _Thread_local const mesh_env *envrand_loading;

typedef struct envrand_prov {
    mesh_env env; /* copy of the node's env (a plain value) */
} envrand_prov;

typedef struct envrand_ctx {
    envrand_prov *prov;
    int state; /* EVP_RAND_STATE_* */
} envrand_ctx;

static void *envrand_newctx(void *provctx, void *parent, const OSSL_DISPATCH *parent_calls)
{
    (void)parent; /* never asks a parent for entropy: the env is the source */
    (void)parent_calls;
    envrand_ctx *r = OPENSSL_zalloc(sizeof *r);
    if (r) {
        r->prov = provctx;
        r->state = EVP_RAND_STATE_UNINITIALISED;
    }
    return r;
}

static void envrand_freectx(void *vctx)
{
    OPENSSL_free(vctx);
}

static int envrand_instantiate(void *vctx, unsigned int strength, int prediction_resistance,
                               const unsigned char *pstr, size_t pstr_len,
                               const OSSL_PARAM params[])
{
    (void)strength, (void)prediction_resistance, (void)pstr, (void)pstr_len, (void)params;
    ((envrand_ctx *)vctx)->state = EVP_RAND_STATE_READY;
    return 1;
}

static int envrand_uninstantiate(void *vctx)
{
    ((envrand_ctx *)vctx)->state = EVP_RAND_STATE_UNINITIALISED;
    return 1;
}

static int envrand_generate(void *vctx, unsigned char *out, size_t outlen, unsigned int strength,
                            int prediction_resistance, const unsigned char *adin, size_t adinlen)
{
    (void)strength, (void)prediction_resistance, (void)adin, (void)adinlen;
    envrand_ctx *r = vctx;
    mesh_env_random(&r->prov->env, out, outlen);
    return 1;
}

static int envrand_reseed(void *vctx, int prediction_resistance, const unsigned char *ent,
                          size_t ent_len, const unsigned char *adin, size_t adin_len)
{
    (void)vctx, (void)prediction_resistance, (void)ent, (void)ent_len, (void)adin, (void)adin_len;
    return 1; /* the env needs no reseeding */
}

/* As a seed source for OpenSSL's own DRBGs (not used when every DRBG is ours, but OpenSSL
 * may ask a parent for seed material). */
static size_t envrand_get_seed(void *vctx, unsigned char **buf, int entropy, size_t min_len,
                               size_t max_len, int prediction_resistance, const unsigned char *adin,
                               size_t adin_len)
{
    (void)entropy, (void)max_len, (void)prediction_resistance, (void)adin, (void)adin_len;
    envrand_ctx *r = vctx;
    unsigned char *p = OPENSSL_secure_malloc(min_len ? min_len : 1);
    if (!p)
        return 0;
    mesh_env_random(&r->prov->env, p, min_len);
    *buf = p;
    return min_len;
}

static void envrand_clear_seed(void *vctx, unsigned char *buf, size_t len)
{
    (void)vctx;
    OPENSSL_secure_clear_free(buf, len);
}

/* One thread uses a node's library context: no lock needed, but OpenSSL insists the
 * primary DRBG can be locked. */
static int envrand_enable_locking(void *vctx)
{
    (void)vctx;
    return 1;
}
static int envrand_lock(void *vctx)
{
    (void)vctx;
    return 1;
}
static void envrand_unlock(void *vctx)
{
    (void)vctx;
}

static int envrand_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    envrand_ctx *r = vctx;
    OSSL_PARAM *p = OSSL_PARAM_locate(params, OSSL_RAND_PARAM_STATE);
    if (p && !OSSL_PARAM_set_int(p, r->state))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_RAND_PARAM_STRENGTH);
    if (p && !OSSL_PARAM_set_uint(p, ENVRAND_STRENGTH))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_RAND_PARAM_MAX_REQUEST);
    if (p && !OSSL_PARAM_set_size_t(p, ENVRAND_MAX_REQUEST))
        return 0;
    return 1;
}

static const OSSL_PARAM *envrand_gettable_ctx_params(void *vctx, void *provctx)
{
    (void)vctx, (void)provctx;
    static const OSSL_PARAM known[] = {
        OSSL_PARAM_int(OSSL_RAND_PARAM_STATE, NULL),
        OSSL_PARAM_uint(OSSL_RAND_PARAM_STRENGTH, NULL),
        OSSL_PARAM_size_t(OSSL_RAND_PARAM_MAX_REQUEST, NULL),
        OSSL_PARAM_END,
    };
    return known;
}

typedef void (*dispatch_fn)(void);
static const OSSL_DISPATCH ENVRAND_FUNCS[] = {
    {OSSL_FUNC_RAND_NEWCTX, (dispatch_fn)envrand_newctx},
    {OSSL_FUNC_RAND_FREECTX, (dispatch_fn)envrand_freectx},
    {OSSL_FUNC_RAND_INSTANTIATE, (dispatch_fn)envrand_instantiate},
    {OSSL_FUNC_RAND_UNINSTANTIATE, (dispatch_fn)envrand_uninstantiate},
    {OSSL_FUNC_RAND_GENERATE, (dispatch_fn)envrand_generate},
    {OSSL_FUNC_RAND_RESEED, (dispatch_fn)envrand_reseed},
    {OSSL_FUNC_RAND_GET_SEED, (dispatch_fn)envrand_get_seed},
    {OSSL_FUNC_RAND_CLEAR_SEED, (dispatch_fn)envrand_clear_seed},
    {OSSL_FUNC_RAND_ENABLE_LOCKING, (dispatch_fn)envrand_enable_locking},
    {OSSL_FUNC_RAND_LOCK, (dispatch_fn)envrand_lock},
    {OSSL_FUNC_RAND_UNLOCK, (dispatch_fn)envrand_unlock},
    {OSSL_FUNC_RAND_GETTABLE_CTX_PARAMS, (dispatch_fn)envrand_gettable_ctx_params},
    {OSSL_FUNC_RAND_GET_CTX_PARAMS, (dispatch_fn)envrand_get_ctx_params},
    {0, NULL},
};

static const OSSL_ALGORITHM ENVRAND_ALGS[] = {
    {ENVRAND_ALG, ENVRAND_PROPQ, ENVRAND_FUNCS, "randomness from the Meshara env"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM *envrand_query(void *provctx, int operation_id, int *no_cache)
{
    (void)provctx;
    *no_cache = 0;
    return operation_id == OSSL_OP_RAND ? ENVRAND_ALGS : NULL;
}

static void envrand_teardown(void *provctx)
{
    OPENSSL_free(provctx);
}

static const OSSL_DISPATCH ENVRAND_PROVIDER_FUNCS[] = {
    {OSSL_FUNC_PROVIDER_TEARDOWN, (dispatch_fn)envrand_teardown},
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (dispatch_fn)envrand_query},
    {0, NULL},
};

static int envrand_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                        const OSSL_DISPATCH **out, void **provctx)
{
    (void)handle, (void)in;
    if (!envrand_loading)
        return 0; /* activated outside mesh_envrand_load(): no env to draw from */
    envrand_prov *p = OPENSSL_zalloc(sizeof *p);
    if (!p)
        return 0;
    p->env = *envrand_loading;
    *out = ENVRAND_PROVIDER_FUNCS;
    *provctx = p;
    return 1;
}

int mesh_envrand_load(OSSL_LIB_CTX *libctx, const mesh_env *env, OSSL_PROVIDER **out)
{
    if (!libctx || !env || !out) /* never the default context: it is the whole process's */
        return MESH_ERR_INVAL;
    if (!OSSL_PROVIDER_add_builtin(libctx, ENVRAND_PROVIDER, envrand_init) ||
        !RAND_set_seed_source_type(libctx, ENVRAND_ALG, ENVRAND_PROPQ) ||
        !RAND_set_DRBG_type(libctx, ENVRAND_ALG, ENVRAND_PROPQ, NULL, NULL))
        return MESH_ERR_CRYPTO;
    envrand_loading = env;
    OSSL_PROVIDER *p = OSSL_PROVIDER_load(libctx, ENVRAND_PROVIDER);
    envrand_loading = NULL;
    if (!p)
        return MESH_ERR_CRYPTO;
    *out = p;
    return MESH_OK;
}

void mesh_envrand_unload(OSSL_PROVIDER *prov)
{
    if (prov)
        OSSL_PROVIDER_unload(prov);
}
