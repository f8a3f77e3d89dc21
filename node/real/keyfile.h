/* real/keyfile.h — a node's key file on disk: created once, loaded at every start; and the
 * web profile's TLS certificate, kept next to it (until the node has a data directory).
 *
 * The file holds one line, the identity's key (format and its one decoder: core/identity.h,
 * mesh_identity_keyfile_encode/_decode). This module does only the file: the core touches no
 * file system (docs/architecture.md), so meshara-node and the tests call it.
 *
 * Creation writes a new identity (from env randomness) with O_CREAT|O_EXCL|O_NOFOLLOW, so
 * nothing that exists at the path, a symbolic link included, is ever overwritten; the mode
 * is exactly 0600 (fchmod after open: the umask can only clear bits); the bytes are fsync'd
 * before success; a partial file is removed.
 *
 * Loading opens with O_NONBLOCK|O_NOFOLLOW and looks at what it opened before reading: a FIFO
 * (whose open or read would otherwise wait for a writer for ever), a device, a socket or a
 * directory is refused at once, as is a symbolic link and a file readable or writable by group
 * or others. It reads at most MESH_NODE_KEYFILE_MAX + 1 bytes and hands them to the decoder.
 *
 * Every error is also logged through env (level ERROR) as "key file PATH: what is wrong".
 */
#ifndef MESHARA_REAL_KEYFILE_H
#define MESHARA_REAL_KEYFILE_H

#include "meshara/env.h"
#include "meshara/meshara.h"

/* Generate a new identity and write it to path. *out may be NULL when only the file is
 * wanted. MESH_OK; MESH_ERR_INVAL (path or env NULL); MESH_ERR_EXISTS (something exists at
 * path: untouched); MESH_ERR_IO (cannot create or write: a partial file is removed);
 * MESH_ERR_NOMEM; MESH_ERR_CRYPTO. *out untouched on failure. */
int mesh_keyfile_create(mesh_identity **out, const char *path, const mesh_env *env);

/* Load the identity in path. env may be NULL (no log line). MESH_OK; MESH_ERR_INVAL (out or
 * path NULL); MESH_ERR_NOT_FOUND; MESH_ERR_PERM (a symbolic link, not a regular file, or
 * group/other permission bits set); MESH_ERR_CORRUPT (not exactly a key file line: wrong
 * tag, length or hex, truncated); MESH_ERR_IO; MESH_ERR_NOMEM; MESH_ERR_CRYPTO. *out
 * untouched on failure. */
int mesh_keyfile_load(mesh_identity **out, const char *path, const mesh_env *env);

/* A secret in a file of its own (the TURN password of `meshara-node run --turn-pass-file`):
 * its first line (a trailing CR/LF dropped) into out (cap bytes with the NUL; the line must
 * fit), opened and refused as the key file is (a link, not a regular file, any group/other
 * permission bit: "is accessible by group or others; run chmod 600 on it"). Logged through
 * env (label "password file"). MESH_OK; MESH_ERR_INVAL; MESH_ERR_NOT_FOUND; MESH_ERR_PERM;
 * MESH_ERR_CORRUPT (empty, too long, a NUL byte); MESH_ERR_IO. out is wiped on failure. */
int mesh_secretfile_load(char *out, size_t cap, const char *path, const mesh_env *env);

/* ---- the web profile's certificate ----------------------------------------------------------
 *
 * A web-profile node shows TLS clients a web server's certificate (meshara.h,
 * mesh_tls_cert_generate): made once and kept as <key file>.crt and <key file>.crt.key (PEM,
 * mode 0600, written through a temporary file renamed over the old one), so a prober sees the
 * same certificate across restarts; made anew when it is missing, unreadable, of another key
 * type or for another host name (its CN) than asked, or within MESH_CERTFILE_RENEW_DAYS of its
 * end. A symbolic link, a FIFO or
 * loose permissions there are refused as for the key file. Or the operator's own chain and
 * key (mesh_certfile_load): links followed, the key not readable by others. */
enum { MESH_CERTFILE_RENEW_DAYS = 30 };
#define MESH_CERTFILE_CERT_SUFFIX ".crt"
#define MESH_CERTFILE_KEY_SUFFIX ".crt.key"

typedef struct mesh_certfile {
    char *cert, *key; /* PEM, NUL-terminated; the key is wiped by mesh_certfile_clear */
    size_t cert_len, key_len;
} mesh_certfile;

/* The certificate kept next to key_path (see above), for host (NULL: none; see
 * mesh_tls_cert_generate) with a key of type (enum mesh_cert_type); now: the wall clock in
 * Unix seconds. MESH_OK; MESH_ERR_INVAL; MESH_ERR_PERM (a link, not a regular file, loose
 * permissions: logged); MESH_ERR_IO (cannot write: logged); MESH_ERR_NOMEM;
 * MESH_ERR_CRYPTO. *out untouched on failure. */
int mesh_certfile_own(mesh_certfile *out, const char *key_path, const mesh_env *env, int type,
                      const char *host, int64_t now);
/* The operator's chain (cert_path: PEM, the node's certificate first) and its key, checked
 * with mesh_tls_cert_check. env may be NULL (no log line). MESH_OK; MESH_ERR_INVAL;
 * MESH_ERR_NOT_FOUND; MESH_ERR_PERM; MESH_ERR_CORRUPT (not a chain and its key, or an
 * encrypted key); MESH_ERR_IO; MESH_ERR_NOMEM. *out untouched on failure. */
int mesh_certfile_load(mesh_certfile *out, const char *cert_path, const char *key_path,
                       const mesh_env *env);
/* Wipe and free what f holds (NULL: no-op); f is then empty. */
void mesh_certfile_clear(mesh_certfile *f);

#endif
