/* identity.c — Ed25519 identity over OpenSSL EVP, node ids, hex, and the key file.
 * See identity.h for the file format and the error contract. */
#include "core/identity.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEYFILE_TAG "meshara-ed25519-v1 "
enum {
    KEYFILE_TAG_LEN = sizeof(KEYFILE_TAG) - 1,
    KEYFILE_LINE_LEN = KEYFILE_TAG_LEN + 2 * MESH_SEED_LEN + 1 /* '\n' */
};

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

static int hexdigit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int mesh_hex_decode(const char *hex, uint8_t *out, size_t len)
{
    if (!hex || strlen(hex) != 2 * len)
        return MESH_ERR_MALFORMED;
    for (size_t i = 0; i < len; i++) {
        int hi = hexdigit(hex[2 * i]), lo = hexdigit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return MESH_ERR_MALFORMED;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return MESH_OK;
}

/* ---- key file ------------------------------------------------------------------------- */

static int file_err(const mesh_env *env, const char *path, int rc, const char *what, int err)
{
    if (env) {
        if (err)
            mesh_log(env, MESH_LOG_ERROR, "key file %s: %s (%s)", path, what, strerror(err));
        else
            mesh_log(env, MESH_LOG_ERROR, "key file %s: %s", path, what);
    }
    return rc;
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

int mesh_identity_create_file(mesh_identity **out, const char *path, const mesh_env *env)
{
    if (!path || !env)
        return MESH_ERR_INVAL;
    mesh_identity *id = NULL;
    int rc = mesh_identity_generate(&id, env);
    if (rc != MESH_OK)
        return rc;
    char line[KEYFILE_LINE_LEN + 1];
    memcpy(line, KEYFILE_TAG, KEYFILE_TAG_LEN);
    mesh_hex_encode(id->seed, MESH_SEED_LEN, line + KEYFILE_TAG_LEN);
    line[KEYFILE_LINE_LEN - 1] = '\n';

    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int e = errno;
        rc = e == EEXIST ? file_err(env, path, MESH_ERR_EXISTS, "exists; not overwritten", 0)
                         : file_err(env, path, MESH_ERR_IO, "cannot create", e);
        goto out;
    }
    /* The umask may have cleared bits but never adds any; fchmod makes 0600 exact. */
    if (fchmod(fd, 0600) != 0 || write_all(fd, line, KEYFILE_LINE_LEN) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(path);
        rc = file_err(env, path, MESH_ERR_IO, "cannot write", e);
        goto out;
    }
    if (close(fd) != 0) {
        int e = errno;
        unlink(path);
        rc = file_err(env, path, MESH_ERR_IO, "cannot write", e);
        goto out;
    }
    if (out) {
        *out = id;
        id = NULL;
    }
    rc = MESH_OK;
out:
    OPENSSL_cleanse(line, sizeof line);
    mesh_identity_free(id);
    return rc;
}

int mesh_identity_parse_keyfile(const char *buf, size_t len, uint8_t seed[MESH_SEED_LEN])
{
    char hex[2 * MESH_SEED_LEN + 1];
    if (len != KEYFILE_LINE_LEN || memcmp(buf, KEYFILE_TAG, KEYFILE_TAG_LEN) != 0 ||
        buf[KEYFILE_LINE_LEN - 1] != '\n')
        return MESH_ERR_CORRUPT;
    memcpy(hex, buf + KEYFILE_TAG_LEN, 2 * MESH_SEED_LEN);
    hex[2 * MESH_SEED_LEN] = '\0';
    int rc = mesh_hex_decode(hex, seed, MESH_SEED_LEN) == MESH_OK ? MESH_OK : MESH_ERR_CORRUPT;
    OPENSSL_cleanse(hex, sizeof hex);
    return rc;
}

int mesh_identity_load_file(mesh_identity **out, const char *path, const mesh_env *env)
{
    if (!out || !path)
        return MESH_ERR_INVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            return file_err(env, path, MESH_ERR_NOT_FOUND, "does not exist", 0);
        if (e == ELOOP)
            return file_err(env, path, MESH_ERR_PERM, "is a symbolic link; refused", 0);
        return file_err(env, path, MESH_ERR_IO, "cannot open", e);
    }
    char buf[MESH_KEYFILE_MAX + 1];
    uint8_t seed[MESH_SEED_LEN];
    int rc;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = file_err(env, path, MESH_ERR_IO, "cannot stat", errno);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = file_err(env, path, MESH_ERR_PERM, "is not a regular file", 0);
        goto out;
    }
    if (st.st_mode & 077) {
        rc = file_err(env, path, MESH_ERR_PERM,
                      "is accessible by group or others; run chmod 600 on it", 0);
        goto out;
    }
    size_t have = 0;
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof buf - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = file_err(env, path, MESH_ERR_IO, "cannot read", errno);
            goto out;
        }
        if (n == 0 || (have += (size_t)n) == sizeof buf)
            break;
    }
    rc = mesh_identity_parse_keyfile(buf, have, seed);
    if (rc != MESH_OK) {
        rc = file_err(env, path, rc,
                      have < KEYFILE_LINE_LEN ? "is truncated or not a meshara key file"
                                              : "is not a meshara key file",
                      0);
        goto out;
    }
    rc = mesh_identity_from_seed(out, seed);
out:
    OPENSSL_cleanse(buf, sizeof buf);
    OPENSSL_cleanse(seed, sizeof seed);
    close(fd);
    return rc;
}
