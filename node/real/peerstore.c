/* real/peerstore.c — the SQLite peer store (peerstore.h). Statements are prepared once at
 * open; every save is one transaction (upsert, then trim beyond max_records).
 */
#include "real/peerstore.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

struct mesh_peerstore {
    sqlite3 *db;
    sqlite3_stmt *save, *trim, *load, *count;
    mesh_env log;
    int has_log;
    size_t max_records;
    int64_t saved; /* the last `saved` counter used */
};

static const char SCHEMA[] = "CREATE TABLE IF NOT EXISTS peers ("
                             " node_id BLOB PRIMARY KEY,"
                             " seq INTEGER NOT NULL,"
                             " record BLOB NOT NULL,"
                             " saved INTEGER NOT NULL);"
                             "CREATE INDEX IF NOT EXISTS peers_saved ON peers(saved);";

/* A higher or equal seq replaces the row; a lower one leaves it alone. */
static const char SAVE[] = "INSERT INTO peers(node_id, seq, record, saved) VALUES(?1, ?2, ?3, ?4)"
                           " ON CONFLICT(node_id) DO UPDATE SET seq = excluded.seq,"
                           " record = excluded.record, saved = excluded.saved"
                           " WHERE excluded.seq >= peers.seq";
static const char TRIM[] = "DELETE FROM peers WHERE saved <= (SELECT saved FROM peers"
                           " ORDER BY saved DESC LIMIT 1 OFFSET ?1)";
static const char LOAD[] = "SELECT record FROM peers ORDER BY saved DESC LIMIT ?1";
static const char COUNT[] = "SELECT count(*) FROM peers";

static int fail(mesh_peerstore *s, int rc, const char *what)
{
    if (s->has_log)
        mesh_log(&s->log, MESH_LOG_WARN, "peer store: %s: %s", what,
                 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        return MESH_ERR_NOMEM;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        return MESH_ERR_CORRUPT;
    case SQLITE_READONLY:
    case SQLITE_PERM:
        return MESH_ERR_PERM;
    default:
        return MESH_ERR_IO;
    }
}

static int exec(mesh_peerstore *s, const char *sql)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? MESH_OK : fail(s, rc, sql);
}

/* One integer from a single-row query. */
static int query_int(mesh_peerstore *s, const char *sql, int64_t *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fail(s, rc, sql);
    rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? MESH_OK : fail(s, rc, sql);
}

static int st_save(void *obj, const uint8_t node_id[MESH_NODE_ID_BYTES], uint64_t seq,
                   const uint8_t *record, size_t len)
{
    mesh_peerstore *s = obj;
    if (!node_id || !record || !len || len > MESH_PEERSTORE_RECORD_MAX || seq > INT64_MAX)
        return MESH_ERR_INVAL;
    int rc = exec(s, "BEGIN");
    if (rc != MESH_OK)
        return rc;
    sqlite3_stmt *st = s->save;
    sqlite3_bind_blob(st, 1, node_id, MESH_NODE_ID_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)seq);
    sqlite3_bind_blob(st, 3, record, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, s->saved + 1);
    int src = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (src != SQLITE_DONE) {
        rc = fail(s, src, "save");
        goto rollback;
    }
    s->saved++;
    sqlite3_bind_int64(s->trim, 1, (int64_t)s->max_records);
    src = sqlite3_step(s->trim);
    sqlite3_reset(s->trim);
    if (src != SQLITE_DONE) {
        rc = fail(s, src, "trim");
        goto rollback;
    }
    return exec(s, "COMMIT");
rollback:
    (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int st_load(void *obj, mesh_peer_store_each_fn each, void *ud)
{
    mesh_peerstore *s = obj;
    sqlite3_stmt *st = s->load;
    sqlite3_bind_int64(st, 1, (int64_t)s->max_records);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int len = sqlite3_column_bytes(st, 0);
        const void *rec = sqlite3_column_blob(st, 0);
        if (rec && len > 0 && (size_t)len <= MESH_PEERSTORE_RECORD_MAX)
            each(ud, rec, (size_t)len);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? MESH_OK : fail(s, rc, "load");
}

static const mesh_peer_store_ops OPS = {st_load, st_save};

static int prepare(mesh_peerstore *s, const char *sql, sqlite3_stmt **out)
{
    int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
    return rc == SQLITE_OK ? MESH_OK : fail(s, rc, sql);
}

int mesh_peerstore_open(mesh_peerstore **out, const char *path, const mesh_env *log,
                        const mesh_peerstore_cfg *cfg)
{
    if (!out || !path)
        return MESH_ERR_INVAL;
    mesh_peerstore *s = calloc(1, sizeof *s);
    if (!s)
        return MESH_ERR_NOMEM;
    if (log) {
        s->log = *log;
        s->has_log = 1;
    }
    s->max_records = cfg && cfg->max_records ? cfg->max_records : MESH_PEERSTORE_DEFAULT_MAX;
    int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        rc = fail(s, rc, path);
        goto fail;
    }
    sqlite3_busy_timeout(s->db, MESH_PEERSTORE_BUSY_MS);
    int64_t version = 0, saved = 0;
    /* The first statement reads the file: a file that is not a database fails here. */
    if ((rc = query_int(s, "PRAGMA user_version", &version)) != MESH_OK)
        goto fail;
    if (version != 0 && version != MESH_PEERSTORE_SCHEMA) {
        if (s->has_log)
            mesh_log(&s->log, MESH_LOG_WARN, "peer store %s: schema version %lld, not %d", path,
                     (long long)version, MESH_PEERSTORE_SCHEMA);
        rc = MESH_ERR_CORRUPT;
        goto fail;
    }
    if ((rc = exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL")) != MESH_OK ||
        (rc = exec(s, SCHEMA)) != MESH_OK || (rc = exec(s, "PRAGMA user_version=1")) != MESH_OK ||
        (rc = query_int(s, "SELECT coalesce(max(saved), 0) FROM peers", &saved)) != MESH_OK)
        goto fail;
    s->saved = saved;
    if ((rc = prepare(s, SAVE, &s->save)) != MESH_OK ||
        (rc = prepare(s, TRIM, &s->trim)) != MESH_OK ||
        (rc = prepare(s, LOAD, &s->load)) != MESH_OK ||
        (rc = prepare(s, COUNT, &s->count)) != MESH_OK)
        goto fail;
    *out = s;
    return MESH_OK;
fail:
    mesh_peerstore_close(s);
    return rc;
}

void mesh_peerstore_close(mesh_peerstore *s)
{
    if (!s)
        return;
    sqlite3_finalize(s->save);
    sqlite3_finalize(s->trim);
    sqlite3_finalize(s->load);
    sqlite3_finalize(s->count);
    sqlite3_close(s->db); /* the last connection checkpoints and removes the WAL */
    free(s);
}

mesh_peer_store mesh_peerstore_store(mesh_peerstore *s)
{
    return (mesh_peer_store){&OPS, s};
}

size_t mesh_peerstore_count(mesh_peerstore *s)
{
    int rc = sqlite3_step(s->count);
    size_t n = rc == SQLITE_ROW ? (size_t)sqlite3_column_int64(s->count, 0) : 0;
    sqlite3_reset(s->count);
    return n;
}
