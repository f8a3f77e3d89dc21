/* real/keyfile.c — the key file on disk. See keyfile.h for what is refused and why. */
#include "real/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { KEYFILE_MODE = 0600 };

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

/* Open path for reading without following a link and without blocking (a FIFO's open waits
 * for a writer otherwise), and refuse anything but a private regular file. *fd on MESH_OK. */
static int open_checked(const char *path, const mesh_env *env, int *fd)
{
    int f = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (f < 0) {
        int e = errno;
        if (e == ENOENT)
            return file_err(env, path, MESH_ERR_NOT_FOUND, "does not exist", 0);
        if (e == ELOOP)
            return file_err(env, path, MESH_ERR_PERM, "is a symbolic link; refused", 0);
        struct stat lst; /* a socket cannot be opened at all (ENXIO): say what it is */
        if (lstat(path, &lst) == 0 && !S_ISREG(lst.st_mode))
            return file_err(env, path, MESH_ERR_PERM, kind_of(lst.st_mode), 0);
        return file_err(env, path, MESH_ERR_IO, "cannot open", e);
    }
    struct stat st;
    int rc = MESH_OK;
    if (fstat(f, &st) != 0)
        rc = file_err(env, path, MESH_ERR_IO, "cannot stat", errno);
    else if (!S_ISREG(st.st_mode))
        rc = file_err(env, path, MESH_ERR_PERM, kind_of(st.st_mode), 0);
    else if (st.st_mode & 077)
        rc = file_err(env, path, MESH_ERR_PERM,
                      "is accessible by group or others; run chmod 600 on it", 0);
    if (rc != MESH_OK) {
        close(f);
        return rc;
    }
    *fd = f;
    return MESH_OK;
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
