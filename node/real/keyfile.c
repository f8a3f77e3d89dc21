/* real/keyfile.c — the key file on disk, and the web certificate kept next to it. See
 * keyfile.h for what is refused and why. */
#include "real/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    KEYFILE_MODE = 0600,
    PRIVATE_BITS = 077, /* none allowed on our own files */
    OTHER_BITS = 007,   /* none allowed on an operator's key (group: e.g. Debian's ssl-cert) */
    PATH_MAX_LEN = 4096,
};

/* What each kind of file is called in messages. */
static const char *const LABEL_KEY = "key file";
static const char *const LABEL_CERT = "certificate file";
static const char *const LABEL_SECRET = "password file";

static int file_err_as(const mesh_env *env, const char *label, const char *path, int rc,
                       const char *what, int err)
{
    if (env) {
        if (err)
            mesh_log(env, MESH_LOG_ERROR, "%s %s: %s (%s)", label, path, what, strerror(err));
        else
            mesh_log(env, MESH_LOG_ERROR, "%s %s: %s", label, path, what);
    }
    return rc;
}

static int file_err(const mesh_env *env, const char *path, int rc, const char *what, int err)
{
    return file_err_as(env, LABEL_KEY, path, rc, what, err);
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

int mesh_keyfile_create(mesh_identity **out, const char *path, const mesh_env *env)
{
    if (!path || !env)
        return MESH_ERR_INVAL;
    mesh_identity *id = NULL;
    int rc = mesh_identity_generate(&id, env);
    if (rc != MESH_OK)
        return rc;
    char line[MESH_NODE_KEYFILE_LINE_LEN];
    mesh_identity_keyfile_encode(id, line);

    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, KEYFILE_MODE);
    if (fd < 0) {
        int e = errno;
        rc = e == EEXIST ? file_err(env, path, MESH_ERR_EXISTS, "exists; not overwritten", 0)
                         : file_err(env, path, MESH_ERR_IO, "cannot create", e);
        goto out;
    }
    /* The umask may have cleared bits but never adds any; fchmod makes 0600 exact. */
    if (fchmod(fd, KEYFILE_MODE) != 0 || write_all(fd, line, sizeof line) != 0 || fsync(fd) != 0) {
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

/* What a path that is not a regular file is, for the message. */
static const char *kind_of(mode_t mode)
{
    if (S_ISDIR(mode))
        return "is a directory, not a regular file";
    if (S_ISFIFO(mode))
        return "is a FIFO (named pipe), not a regular file";
    if (S_ISSOCK(mode))
        return "is a socket, not a regular file";
    if (S_ISCHR(mode) || S_ISBLK(mode))
        return "is a device, not a regular file";
    return "is not a regular file";
}

/* Open path for reading without following a link (unless follow: an operator's files, often
 * links into a certificate manager's tree) and without blocking (a FIFO's open waits for a
 * writer otherwise), and refuse anything but a regular file with none of the mode bits in
 * refused. label names the file in messages. *fd on MESH_OK. */
static int open_checked_as(const char *path, const mesh_env *env, const char *label, mode_t refused,
                           int follow, int *fd)
{
    int f = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | (follow ? 0 : O_NOFOLLOW));
    if (f < 0) {
        int e = errno;
        if (e == ENOENT)
            return file_err_as(env, label, path, MESH_ERR_NOT_FOUND, "does not exist", 0);
        if (e == ELOOP)
            return file_err_as(env, label, path, MESH_ERR_PERM, "is a symbolic link; refused", 0);
        struct stat lst; /* a socket cannot be opened at all (ENXIO): say what it is */
        if (lstat(path, &lst) == 0 && !S_ISREG(lst.st_mode))
            return file_err_as(env, label, path, MESH_ERR_PERM, kind_of(lst.st_mode), 0);
        return file_err_as(env, label, path, MESH_ERR_IO, "cannot open", e);
    }
    struct stat st;
    int rc = MESH_OK;
    if (fstat(f, &st) != 0)
        rc = file_err_as(env, label, path, MESH_ERR_IO, "cannot stat", errno);
    else if (!S_ISREG(st.st_mode))
        rc = file_err_as(env, label, path, MESH_ERR_PERM, kind_of(st.st_mode), 0);
    else if (st.st_mode & refused)
        rc = file_err_as(env, label, path, MESH_ERR_PERM,
                         refused == PRIVATE_BITS
                             ? "is accessible by group or others; run chmod 600 on it"
                             : "is accessible by others; run chmod o-rwx on it",
                         0);
    if (rc != MESH_OK) {
        close(f);
        return rc;
    }
    *fd = f;
    return MESH_OK;
}

static int open_checked(const char *path, const mesh_env *env, int *fd)
{
    return open_checked_as(path, env, LABEL_KEY, PRIVATE_BITS, 0, fd);
}

/* Up to cap bytes of fd into buf (*have of them); stops at end of file. 0 or an errno. */
static int read_upto(int fd, char *buf, size_t cap, size_t *have)
{
    *have = 0;
    while (*have < cap) {
        ssize_t n = read(fd, buf + *have, cap - *have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        if (n == 0)
            break;
        *have += (size_t)n;
    }
    return 0;
}

int mesh_keyfile_load(mesh_identity **out, const char *path, const mesh_env *env)
{
    if (!out || !path)
        return MESH_ERR_INVAL;
    int fd = -1;
    int rc = open_checked(path, env, &fd);
    if (rc != MESH_OK)
        return rc;
    char buf[MESH_NODE_KEYFILE_MAX + 1]; /* one more than allowed: a longer file is seen as such */
    size_t have = 0;
    int e = read_upto(fd, buf, sizeof buf, &have);
    close(fd);
    if (e != 0) {
        rc = file_err(env, path, MESH_ERR_IO, "cannot read", e);
    } else {
        rc = mesh_identity_keyfile_decode(out, buf, have);
        if (rc == MESH_ERR_CORRUPT)
            file_err(env, path, rc,
                     have < MESH_NODE_KEYFILE_LINE_LEN ? "is truncated or not a meshara key file"
                                                       : "is not a meshara key file",
                     0);
    }
    OPENSSL_cleanse(buf, sizeof buf);
    return rc;
}

int mesh_secretfile_load(char *out, size_t cap, const char *path, const mesh_env *env)
{
    if (!out || cap < 2 || !path)
        return MESH_ERR_INVAL;
    int fd = -1;
    int rc = open_checked_as(path, env, LABEL_SECRET, PRIVATE_BITS, 0, &fd);
    if (rc != MESH_OK)
        return rc;
    size_t have = 0;
    int e = read_upto(fd, out, cap - 1, &have);
    close(fd);
    out[have] = '\0';
    size_t line = strcspn(out, "\r\n");
    if (e)
        rc = file_err_as(env, LABEL_SECRET, path, MESH_ERR_IO, "cannot read", e);
    else if (memchr(out, '\0', have))
        rc = file_err_as(env, LABEL_SECRET, path, MESH_ERR_CORRUPT, "holds a NUL byte", 0);
    else if (line == 0)
        rc = file_err_as(env, LABEL_SECRET, path, MESH_ERR_CORRUPT, "is empty", 0);
    else if (line == have && have == cap - 1)
        rc = file_err_as(env, LABEL_SECRET, path, MESH_ERR_CORRUPT, "first line is too long", 0);
    if (rc != MESH_OK) {
        OPENSSL_cleanse(out, cap);
        return rc;
    }
    OPENSSL_cleanse(out + line, cap - line); /* the rest of the file is not ours to keep */
    return MESH_OK;
}

/* ---- the web certificate ------------------------------------------------------------------ */

void mesh_certfile_clear(mesh_certfile *f)
{
    if (!f)
        return;
    mesh_tls_pem_free(f->cert, f->cert_len);
    mesh_tls_pem_free(f->key, f->key_len);
    memset(f, 0, sizeof *f);
}

/* A whole PEM file (at most MESH_TLS_PEM_MAX bytes) into a new NUL-terminated buffer. */
static int read_pem_file(const char *path, const mesh_env *env, const char *label, mode_t refused,
                         int follow, char **out, size_t *len)
{
    int fd = -1;
    int rc = open_checked_as(path, env, label, refused, follow, &fd);
    if (rc != MESH_OK)
        return rc;
    char *buf = malloc((size_t)MESH_TLS_PEM_MAX + 2);
    if (!buf) {
        close(fd);
        return MESH_ERR_NOMEM;
    }
    size_t have = 0;
    int e = read_upto(fd, buf, (size_t)MESH_TLS_PEM_MAX + 1, &have);
    close(fd);
    if (e)
        rc = file_err_as(env, label, path, MESH_ERR_IO, "cannot read", e);
    else if (have > MESH_TLS_PEM_MAX)
        rc = file_err_as(env, label, path, MESH_ERR_CORRUPT, "is longer than 64 KiB", 0);
    if (rc != MESH_OK) {
        mesh_tls_pem_free(buf, have);
        return rc;
    }
    buf[have] = '\0';
    *out = buf;
    *len = have;
    return MESH_OK;
}

/* data to path, through path.tmp (created 0600 with O_EXCL, fsync'd) renamed over it: a
 * reader sees the old file or the new one, never half of one. */
static int write_private(const char *path, const mesh_env *env, const char *label, const char *data,
                         size_t len)
{
    char tmp[PATH_MAX_LEN];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return file_err_as(env, label, path, MESH_ERR_INVAL, "path too long", 0);
    unlink(tmp); /* left by a crash (a link is removed, not followed) */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, KEYFILE_MODE);
    if (fd < 0)
        return file_err_as(env, label, tmp, MESH_ERR_IO, "cannot create", errno);
    int e = 0;
    if (fchmod(fd, KEYFILE_MODE) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0)
        e = errno ? errno : EIO;
    if (close(fd) != 0 && !e)
        e = errno;
    if (!e && rename(tmp, path) != 0)
        e = errno;
    if (e) {
        unlink(tmp);
        return file_err_as(env, label, path, MESH_ERR_IO, "cannot write", e);
    }
    return MESH_OK;
}

/* path + suffix into out (PATH_MAX_LEN bytes). */
static int path_with(char *out, const char *path, const char *suffix)
{
    return snprintf(out, PATH_MAX_LEN, "%s%s", path, suffix) < PATH_MAX_LEN ? MESH_OK
                                                                            : MESH_ERR_INVAL;
}

/* A new certificate and key, written to cp and kp (the key first). */
static int make_pair(mesh_certfile *f, const char *cp, const char *kp, const mesh_env *env,
                     int type, const char *host, int64_t now)
{
    int rc =
        mesh_tls_cert_generate(env, type, host, now, &f->cert, &f->cert_len, &f->key, &f->key_len);
    if (rc != MESH_OK)
        mesh_log(env, MESH_LOG_ERROR, "certificate file %s: cannot make one: %s", cp,
                 mesh_errname(rc));
    if (rc == MESH_OK)
        rc = write_private(kp, env, LABEL_KEY, f->key, f->key_len);
    if (rc == MESH_OK)
        rc = write_private(cp, env, LABEL_CERT, f->cert, f->cert_len);
    if (rc != MESH_OK)
        mesh_certfile_clear(f);
    return rc;
}

/* Why a stored pair is not used as it is (NULL: it is), for the log line. host as for
 * mesh_tls_cert_generate (NULL: "localhost"). */
static const char *stale(const mesh_certfile *f, int type, const char *host, int64_t now)
{
    mesh_tls_cert_info info;
    if (mesh_tls_cert_check(f->cert, f->cert_len, f->key, f->key_len, &info) != MESH_OK)
        return "not a certificate and its key";
    if (info.type != type)
        return "another type of key than asked for";
    if (strcmp(info.common_name,
               host && mesh_host_name_check(host) == MESH_OK ? host : "localhost"))
        return "made for another host name";
    if (info.not_after - now < (int64_t)MESH_CERTFILE_RENEW_DAYS * 86400)
        return "expired or about to";
    return NULL;
}

int mesh_certfile_own(mesh_certfile *out, const char *key_path, const mesh_env *env, int type,
                      const char *host, int64_t now)
{
    if (!out || !key_path || !env)
        return MESH_ERR_INVAL;
    char cp[PATH_MAX_LEN], kp[PATH_MAX_LEN];
    if (path_with(cp, key_path, MESH_CERTFILE_CERT_SUFFIX) != MESH_OK ||
        path_with(kp, key_path, MESH_CERTFILE_KEY_SUFFIX) != MESH_OK)
        return file_err(env, key_path, MESH_ERR_INVAL, "path too long", 0);
    mesh_certfile f = {0};
    struct stat st;
    int have_c = lstat(cp, &st) == 0, have_k = lstat(kp, &st) == 0;
    const char *why = "none yet";
    if (have_c || have_k) {
        int rc = MESH_OK;
        if (have_c && have_k &&
            (rc = read_pem_file(cp, env, LABEL_CERT, PRIVATE_BITS, 0, &f.cert, &f.cert_len)) ==
                MESH_OK)
            rc = read_pem_file(kp, env, LABEL_KEY, PRIVATE_BITS, 0, &f.key, &f.key_len);
        if (rc != MESH_OK && rc != MESH_ERR_CORRUPT) { /* a link, a FIFO, loose permissions */
            mesh_certfile_clear(&f);
            return rc;
        }
        why = rc != MESH_OK         ? "unreadable"
              : !(have_c && have_k) ? "half a pair"
                                    : stale(&f, type, host, now);
        if (!why) {
            *out = f;
            return MESH_OK;
        }
        mesh_certfile_clear(&f);
    }
    mesh_log(env, MESH_LOG_INFO, "certificate file %s: %s; making a new one", cp, why);
    int rc = make_pair(&f, cp, kp, env, type, host, now);
    if (rc == MESH_OK)
        *out = f;
    return rc;
}

int mesh_certfile_load(mesh_certfile *out, const char *cert_path, const char *key_path,
                       const mesh_env *env)
{
    if (!out || !cert_path || !key_path)
        return MESH_ERR_INVAL;
    mesh_certfile f = {0};
    int rc = read_pem_file(cert_path, env, LABEL_CERT, 0, 1, &f.cert, &f.cert_len);
    if (rc == MESH_OK)
        rc = read_pem_file(key_path, env, LABEL_KEY, OTHER_BITS, 1, &f.key, &f.key_len);
    if (rc == MESH_OK &&
        (rc = mesh_tls_cert_check(f.cert, f.cert_len, f.key, f.key_len, NULL)) != MESH_OK)
        file_err_as(env, LABEL_CERT, cert_path, rc,
                    rc == MESH_ERR_CORRUPT ? "and its key file are not a PEM certificate chain "
                                             "and its key (or the key is encrypted)"
                                           : "cannot be read",
                    0);
    if (rc != MESH_OK) {
        mesh_certfile_clear(&f);
        return rc;
    }
    *out = f;
    return MESH_OK;
}
