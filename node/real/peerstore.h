/* real/peerstore.h — the node's peer store on SQLite: the signed records of peers it talked
 * to, so a restarted node joins without bootstrap nodes (meshara.h, mesh_peer_store).
 *
 * One table, peers(node_id BLOB PRIMARY KEY, seq, record BLOB, saved): the record is the
 * protobuf PeerRecord exactly as the node handed it over (the node verifies every record it
 * loads back, so the store itself trusts nothing and checks nothing but sizes). A record
 * replaces the one held for its node only with a seq at least as high. `saved` is the
 * store's own insertion counter (no clock): loads come newest first, and beyond max_records
 * the oldest-saved rows go.
 *
 * The database runs in WAL mode with synchronous=NORMAL: a save is one short transaction that
 * does not wait for fsync, a crash loses at most the last few saves (never the file), and a
 * reader (a second tool looking at the file) never blocks the node. PRAGMA user_version marks
 * the schema (MESH_PEERSTORE_SCHEMA); a file with another version is refused, not rewritten.
 *
 * Blocking: calls touch the disk synchronously on the caller's thread (the node's loop); a
 * save costs a WAL append, made only when a peer announces a record. busy_timeout bounds the
 * wait on a lock held by another process.
 */
#ifndef MESH_REAL_PEERSTORE_H
#define MESH_REAL_PEERSTORE_H

#include <stddef.h>

#include "meshara/env.h"
#include "meshara/meshara.h"

enum mesh_peerstore_limits {
    MESH_PEERSTORE_SCHEMA = 1,
    MESH_PEERSTORE_DEFAULT_MAX = 10000, /* rows kept; the oldest-saved go beyond */
    MESH_PEERSTORE_RECORD_MAX = 4096,   /* bytes of one record (= MESH_NODE_STORE_RECORD_MAX) */
    MESH_PEERSTORE_BUSY_MS = 1000,      /* wait on another process's lock at most this long */
};

typedef struct mesh_peerstore mesh_peerstore;

typedef struct mesh_peerstore_cfg {
    size_t max_records; /* 0 = MESH_PEERSTORE_DEFAULT_MAX */
} mesh_peerstore_cfg;

/* Open (creating if needed) the store at path. log (may be NULL; copied) receives a line for
 * every failure. cfg NULL = defaults. *out untouched on failure. MESH_OK; MESH_ERR_INVAL;
 * MESH_ERR_NOMEM; MESH_ERR_IO (cannot open or create); MESH_ERR_CORRUPT (not an SQLite
 * database, or another schema version); MESH_ERR_PERM (read-only). */
int mesh_peerstore_open(mesh_peerstore **out, const char *path, const mesh_env *log,
                        const mesh_peerstore_cfg *cfg);
/* Close (checkpointing the WAL). NULL: no-op. */
void mesh_peerstore_close(mesh_peerstore *s);
/* The ops table and object to put in mesh_node_cfg.store; valid while s is open. */
mesh_peer_store mesh_peerstore_store(mesh_peerstore *s);
/* Rows held, or 0 on error. */
size_t mesh_peerstore_count(mesh_peerstore *s);

#endif
