/* real/keyfile.h — a node's key file on disk: created once, loaded at every start.
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

#endif
