/* results.c — SQLite results recorder (see results.h; schema in docs/results.md).
 *
 * One connection, five prepared statements, one open transaction committed every
 * SIM_RES_BATCH_ROWS rows. The journal lives in memory and nothing is fsynced: a results file
 * is written once, by one process, and a crashed run is rerun rather than recovered. After
 * any SQLite failure the recorder refuses further rows (a half-written table is worse than an
 * error the caller sees at once).
 */
#include "sim/results.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "meshara/error.h"
#include "sim/path.h"

/* Wall-clock columns are the last three of runs: the dump leaves them out. */
static const char SCHEMA[] = "CREATE TABLE IF NOT EXISTS runs ("
                             " run INTEGER PRIMARY KEY,"
                             " scenario TEXT NOT NULL,"
                             " scenario_file TEXT,"
                             " scenario_sha256 TEXT,"
                             " seed INTEGER NOT NULL,"
                             " git_rev TEXT,"
                             " parameters TEXT NOT NULL,"
                             " duration_ns INTEGER NOT NULL,"
                             " end_ns INTEGER,"
                             " events_processed INTEGER,"
                             " fingerprint TEXT,"
                             " status TEXT NOT NULL,"
                             " schema_version INTEGER NOT NULL,"
                             " started_at TEXT,"
                             " finished_at TEXT,"
                             " wall_s REAL);"
                             "CREATE TABLE IF NOT EXISTS nodes ("
                             " run INTEGER NOT NULL REFERENCES runs(run),"
                             " node INTEGER NOT NULL,"
                             " name TEXT,"
                             " grp TEXT,"
                             " lan TEXT,"
                             " ip TEXT,"
                             " nat TEXT,"
                             " role TEXT,"
                             " node_id TEXT,"
                             " join_ns INTEGER,"
                             " PRIMARY KEY (run, node));"
                             "CREATE TABLE IF NOT EXISTS events ("
                             " seq INTEGER PRIMARY KEY,"
                             " run INTEGER NOT NULL REFERENCES runs(run),"
                             " t_ns INTEGER NOT NULL,"
                             " node INTEGER,"
                             " kind TEXT NOT NULL,"
                             " peer INTEGER,"
                             " detail TEXT);"
                             "CREATE TABLE IF NOT EXISTS series ("
                             " seq INTEGER PRIMARY KEY,"
                             " run INTEGER NOT NULL REFERENCES runs(run),"
                             " t_ns INTEGER NOT NULL,"
                             " node INTEGER,"
                             " name TEXT NOT NULL,"
                             " value REAL);"
                             "CREATE TABLE IF NOT EXISTS summary ("
                             " run INTEGER NOT NULL REFERENCES runs(run),"
                             " name TEXT NOT NULL,"
                             " value REAL,"
                             " PRIMARY KEY (run, name));";

/* Created at close, not at open: building them once is cheaper than maintaining them per
 * insert. */
static const char INDEXES[] =
    "CREATE INDEX IF NOT EXISTS events_by_kind ON events(run, kind, t_ns);"
    "CREATE INDEX IF NOT EXISTS events_by_node ON events(run, node, t_ns);"
    "CREATE INDEX IF NOT EXISTS series_by_name ON series(run, name, node, t_ns);";

enum stmt_id { ST_NODE, ST_EVENT, ST_SERIES, ST_SUMMARY, ST_COUNT };

static const char *const STMT_SQL[ST_COUNT] = {
    ("INSERT INTO nodes (run, node, name, grp, lan, ip, nat, role, node_id, join_ns)"
     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
    "INSERT INTO events (run, t_ns, node, kind, peer, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    "INSERT INTO series (run, t_ns, node, name, value) VALUES (?1, ?2, ?3, ?4, ?5)",
    "INSERT OR REPLACE INTO summary (run, name, value) VALUES (?1, ?2, ?3)",
};

struct sim_results {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    int64_t run;
    uint64_t rows, pending;
    int failed;   /* a SQLite error: no more rows */
    int finished; /* sim_results_finish done */
    int first_err;
    int created; /* the file is this recorder's own (sim_results_discard deletes it) */
    char *path;
    char errmsg[256];
};

/* ---- helpers ------------------------------------------------------------------------------ */

static void note_err(sim_results *r, const char *what)
{
    snprintf(r->errmsg, sizeof r->errmsg, "%s: %s", what, sqlite3_errmsg(r->db));
}

static int fail(sim_results *r, const char *what)
{
    note_err(r, what);
    r->failed = 1;
    if (!r->first_err)
        r->first_err = MESH_ERR_IO;
    return MESH_ERR_IO;
}

/* Bytes of s kept: at most SIM_RES_MAX_TEXT, never splitting a UTF-8 sequence. */
static int text_len(const char *s)
{
    size_t n = strnlen(s, SIM_RES_MAX_TEXT + 1);
    if (n > SIM_RES_MAX_TEXT) {
        n = SIM_RES_MAX_TEXT;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    return (int)n;
}

/* Text bound for the duration of one step (SQLITE_STATIC: bindings are cleared after it). */
static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
    return s ? sqlite3_bind_text(st, i, s, text_len(s), SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

static int bind_node(sqlite3_stmt *st, int i, int64_t node)
{
    return node < 0 ? sqlite3_bind_null(st, i) : sqlite3_bind_int64(st, i, node);
}

/* "2024-05-01T12:00:00.123Z" from Unix ns; NULL when ns is 0. */
static const char *iso_time(int64_t ns, char buf[32])
{
    if (ns == 0)
        return NULL;
    time_t sec = (time_t)(ns / 1000000000);
    struct tm tm;
    if (!gmtime_r(&sec, &tm))
        return NULL;
    size_t n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, 32 - n, ".%03dZ", (int)(ns % 1000000000 / 1000000));
    return buf;
}

static int exec(sim_results *r, const char *sql, const char *what)
{
    if (sqlite3_exec(r->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return fail(r, what);
    return MESH_OK;
}

static int commit(sim_results *r)
{
    if (exec(r, "COMMIT", "commit") != MESH_OK)
        return MESH_ERR_IO;
    r->pending = 0;
    return exec(r, "BEGIN", "begin");
}

/* Run a bound statement for one row, then count it (and commit a full batch). */
static int row_done(sim_results *r, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        note_err(r, what);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_CONSTRAINT)
        return MESH_ERR_EXISTS; /* the statement alone was rolled back */
    if (rc != SQLITE_DONE)
        return fail(r, what);
    r->rows++;
    if (++r->pending >= SIM_RES_BATCH_ROWS)
        return commit(r);
    return MESH_OK;
}

static int usable(const sim_results *r)
{
    return r && !r->failed;
}

/* ---- open ----------------------------------------------------------------------------------- */

__attribute__((format(printf, 4, 5))) static int open_err(char *err, size_t errlen, int code,
                                                          const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* APPEND to a file written by another schema version (or not by us at all) is refused. */
static int check_version(sim_results *r, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int version = -1, tables = 0;
    if (sqlite3_prepare_v2(r->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            version = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    if (sqlite3_prepare_v2(r->db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) ==
        SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            tables = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    if (version < 0) {
        fail(r, "read schema version");
        return open_err(err, errlen, MESH_ERR_IO, "%s", r->errmsg);
    }
    if ((version == 0 && tables > 0) || (version != 0 && version != SIM_RES_SCHEMA_VERSION))
        return open_err(err, errlen, MESH_ERR_CORRUPT,
                        "schema version %d, this build writes %d (or not a results file)", version,
                        SIM_RES_SCHEMA_VERSION);
    return MESH_OK;
}

static int insert_run(sim_results *r, const sim_results_run *run)
{
    sqlite3_stmt *st;
    char started[32];
    if (sqlite3_prepare_v2(r->db,
                           "INSERT INTO runs (scenario, scenario_file, scenario_sha256, seed,"
                           " git_rev, parameters, duration_ns, status, schema_version,"
                           " started_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'running', ?8, ?9)",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(r, "prepare runs");
    bind_text(st, 1, run->scenario);
    bind_text(st, 2, run->scenario_file);
    bind_text(st, 3, run->scenario_sha256);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)run->seed);
    bind_text(st, 5, run->git_rev);
    bind_text(st, 6, run->parameters ? run->parameters : "{}");
    sqlite3_bind_int64(st, 7, (sqlite3_int64)run->duration);
    sqlite3_bind_int(st, 8, SIM_RES_SCHEMA_VERSION);
    bind_text(st, 9, iso_time(run->started_at_ns, started));
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return fail(r, "insert run");
    r->run = sqlite3_last_insert_rowid(r->db);
    return MESH_OK;
}

static void free_handles(sim_results *r)
{
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(r->st[i]);
    sqlite3_close(r->db);
    free(r->path);
    free(r);
}

/* ---- what a path holds ------------------------------------------------------------------- */

/* What an existing path is, before anything opens it (so a FIFO is never read, a file that is
 * not ours never replaced). */
typedef enum db_kind {
    DB_ABSENT,   /* no such file */
    DB_STAT_ERR, /* stat failed otherwise (errno kept) */
    DB_NOT_FILE, /* a directory, FIFO, device or socket */
    DB_EMPTY,    /* a regular file of 0 bytes: nothing to lose */
    DB_RESULTS,  /* a Meshara results database */
    DB_OTHER,    /* any other regular file */
} db_kind;

static int query_int(sqlite3 *db, const char *sql, int *out)
{
    sqlite3_stmt *st;
    int ok = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) {
            *out = sqlite3_column_int(st, 0);
            ok = 1;
        }
        sqlite3_finalize(st);
    }
    return ok;
}

/* Ours: our application_id, or (a file written before the id existed) user_version 1 with a
 * runs table that has a schema_version column. Anything SQLite cannot read is not ours. */
static int is_results_db(const char *path)
{
    sqlite3 *db = NULL;
    int app = 0, version = 0, col = 0, ours = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        query_int(db, "PRAGMA application_id", &app) &&
        query_int(db, "PRAGMA user_version", &version) &&
        query_int(db, "SELECT count(*) FROM pragma_table_info('runs') WHERE name='schema_version'",
                  &col))
        ours = app == SIM_RES_APPLICATION_ID ||
               (app == 0 && version == SIM_RES_SCHEMA_VERSION && col == 1);
    sqlite3_close(db);
    return ours;
}

static db_kind identify(const char *path, const char **what)
{
    struct stat st;
    *what = "";
    if (stat(path, &st) != 0)
        return errno == ENOENT ? DB_ABSENT : DB_STAT_ERR;
    if (!S_ISREG(st.st_mode)) {
        *what = sim_path_kind(st.st_mode);
        return DB_NOT_FILE;
    }
    if (st.st_size == 0)
        return DB_EMPTY;
    return is_results_db(path) ? DB_RESULTS : DB_OTHER;
}

/* Whether open with these flags may use the existing path; MESH_OK with *remove set when the
 * file is to be deleted first. */
static int may_open(const char *path, unsigned flags, int *remove, char *err, size_t errlen)
{
    const char *what;
    db_kind k = identify(path, &what);
    *remove = 0;
    if (k == DB_ABSENT)
        return MESH_OK;
    if (k == DB_STAT_ERR)
        return open_err(err, errlen, MESH_ERR_IO, "%s: %s", path, strerror(errno));
    if (k == DB_NOT_FILE)
        return open_err(err, errlen, MESH_ERR_EXISTS, "%s: is %s, not a results database", path,
                        what);
    if (!(flags & (SIM_RES_REPLACE | SIM_RES_APPEND)))
        return open_err(err, errlen, MESH_ERR_EXISTS,
                        "%s: exists (replace it, or append a run to it)", path);
    if (flags & SIM_RES_APPEND)
        return k == DB_OTHER ? open_err(err, errlen, MESH_ERR_CORRUPT,
                                        "%s: not a Meshara results database", path)
                             : MESH_OK;
    if (k == DB_OTHER && !(flags & SIM_RES_FORCE))
        return open_err(err, errlen, MESH_ERR_EXISTS,
                        "%s: exists and is not a Meshara results database: not replaced", path);
    *remove = 1;
    return MESH_OK;
}

int sim_results_check_path(const char *path, unsigned flags, char *err, size_t errlen)
{
    int remove;
    if (!path)
        return open_err(err, errlen, MESH_ERR_INVAL, "(null): bad arguments");
    return may_open(path, flags, &remove, err, errlen);
}

int sim_results_open(sim_results **out, const char *path, unsigned flags,
                     const sim_results_run *run, char *err, size_t errlen)
{
    if (!out || !path || !run || !run->scenario || run->seed > INT64_MAX ||
        (flags & ~(unsigned)(SIM_RES_REPLACE | SIM_RES_APPEND | SIM_RES_FORCE)) ||
        ((flags & SIM_RES_REPLACE) && (flags & SIM_RES_APPEND)) ||
        ((flags & SIM_RES_FORCE) && !(flags & SIM_RES_REPLACE)))
        return open_err(err, errlen, MESH_ERR_INVAL, "%s: bad arguments", path ? path : "(null)");
    int remove, rc = may_open(path, flags, &remove, err, errlen);
    if (rc != MESH_OK)
        return rc;
    int existed = access(path, F_OK) == 0;
    if (remove && unlink(path) != 0)
        return open_err(err, errlen, MESH_ERR_IO, "%s: cannot replace: %s", path, strerror(errno));
    int created = !existed || remove;

    sim_results *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path))) {
        free(r);
        return open_err(err, errlen, MESH_ERR_NOMEM, "out of memory");
    }
    r->created = created;
    char app_id_sql[64]; /* how a results database says what it is: identify() reads it back */
    snprintf(app_id_sql, sizeof app_id_sql, "PRAGMA application_id=%d", SIM_RES_APPLICATION_ID);
    rc = MESH_ERR_IO;
    if (sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        open_err(err, errlen, MESH_ERR_IO, "%s: %s", path,
                 r->db ? sqlite3_errmsg(r->db) : "cannot open");
        goto fail_db;
    }
    if ((flags & SIM_RES_APPEND) && (rc = check_version(r, err, errlen)) != MESH_OK)
        goto fail_db;
    rc = MESH_ERR_IO;
    if (exec(r, "PRAGMA journal_mode=MEMORY; PRAGMA synchronous=OFF", "pragmas") ||
        exec(r, "BEGIN", "begin") || exec(r, SCHEMA, "create schema") ||
        exec(r, app_id_sql, "set application id") ||
        exec(r, "PRAGMA user_version=1", "set schema version") || insert_run(r, run))
        goto fail_sql;
    for (int i = 0; i < ST_COUNT; i++)
        if (sqlite3_prepare_v3(r->db, STMT_SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &r->st[i],
                               NULL) != SQLITE_OK) {
            fail(r, "prepare");
            goto fail_sql;
        }
    if (commit(r) != MESH_OK) /* the runs row is visible at once; rows follow in batches */
        goto fail_sql;
    *out = r;
    return MESH_OK;

fail_sql:
    open_err(err, errlen, rc, "%s: %s", path, r->errmsg);
fail_db:
    free_handles(r);
    if (created)
        unlink(path);
    return rc;
}

int64_t sim_results_run_id(const sim_results *r)
{
    return r ? r->run : 0;
}

/* ---- rows --------------------------------------------------------------------------------------
 */

int sim_results_node(sim_results *r, const sim_results_node_info *n)
{
    if (!usable(r) || !n)
        return MESH_ERR_INVAL;
    sqlite3_stmt *st = r->st[ST_NODE];
    char ip[16];
    snprintf(ip, sizeof ip, "%u.%u.%u.%u", n->ip >> 24, n->ip >> 16 & 0xff, n->ip >> 8 & 0xff,
             n->ip & 0xff);
    sqlite3_bind_int64(st, 1, r->run);
    sqlite3_bind_int64(st, 2, n->node);
    bind_text(st, 3, n->name);
    bind_text(st, 4, n->group);
    bind_text(st, 5, n->lan);
    bind_text(st, 6, n->ip ? ip : NULL);
    bind_text(st, 7, n->nat);
    bind_text(st, 8, n->role);
    bind_text(st, 9, n->node_id);
    sqlite3_bind_int64(st, 10, (sqlite3_int64)n->join_ns);
    return row_done(r, st, "insert node");
}

int sim_results_event(sim_results *r, mesh_time t, int64_t node, const char *kind, int64_t peer,
                      const char *detail)
{
    if (!usable(r) || !kind)
        return MESH_ERR_INVAL;
    sqlite3_stmt *st = r->st[ST_EVENT];
    sqlite3_bind_int64(st, 1, r->run);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)t);
    bind_node(st, 3, node);
    bind_text(st, 4, kind);
    bind_node(st, 5, peer);
    bind_text(st, 6, detail);
    return row_done(r, st, "insert event");
}

int sim_results_eventf(sim_results *r, mesh_time t, int64_t node, const char *kind, int64_t peer,
                       const char *fmt, ...)
{
    char detail[SIM_RES_MAX_TEXT + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return sim_results_event(r, t, node, kind, peer, detail);
}

int sim_results_series(sim_results *r, mesh_time t, int64_t node, const char *name, double value)
{
    if (!usable(r) || !name)
        return MESH_ERR_INVAL;
    sqlite3_stmt *st = r->st[ST_SERIES];
    sqlite3_bind_int64(st, 1, r->run);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)t);
    bind_node(st, 3, node);
    bind_text(st, 4, name);
    sqlite3_bind_double(st, 5, value);
    return row_done(r, st, "insert series");
}

int sim_results_summary(sim_results *r, const char *name, double value)
{
    if (!usable(r) || !name)
        return MESH_ERR_INVAL;
    sqlite3_stmt *st = r->st[ST_SUMMARY];
    sqlite3_bind_int64(st, 1, r->run);
    bind_text(st, 2, name);
    sqlite3_bind_double(st, 3, value);
    return row_done(r, st, "insert summary");
}

int sim_results_flush(sim_results *r)
{
    if (!usable(r))
        return MESH_ERR_INVAL;
    return commit(r);
}

uint64_t sim_results_rows(const sim_results *r)
{
    return r ? r->rows : 0;
}
uint64_t sim_results_pending(const sim_results *r)
{
    return r ? r->pending : 0;
}
const char *sim_results_errmsg(const sim_results *r)
{
    return r ? r->errmsg : "";
}

int sim_results_finish(sim_results *r, const sim_results_end *end)
{
    if (!usable(r) || !end)
        return MESH_ERR_INVAL;
    if (r->finished)
        return MESH_ERR_STATE;
    sqlite3_stmt *st;
    char finished[32];
    if (sqlite3_prepare_v2(r->db,
                           "UPDATE runs SET end_ns = ?1, events_processed = ?2, fingerprint = ?3,"
                           " status = ?4, finished_at = ?5, wall_s = ?6 WHERE run = ?7",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(r, "prepare finish");
    sqlite3_bind_int64(st, 1, (sqlite3_int64)end->end_ns);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)end->events_processed);
    bind_text(st, 3, end->fingerprint);
    bind_text(st, 4, end->status ? end->status : "ok");
    bind_text(st, 5, iso_time(end->finished_at_ns, finished));
    if (end->wall_s >= 0)
        sqlite3_bind_double(st, 6, end->wall_s);
    sqlite3_bind_int64(st, 7, r->run);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return fail(r, "finish run");
    r->finished = 1;
    return commit(r);
}

int sim_results_close(sim_results *r)
{
    if (!r)
        return MESH_OK;
    if (!r->failed && commit(r) == MESH_OK)
        exec(r, INDEXES, "create indexes");
    if (!r->failed)
        exec(r, "COMMIT", "final commit");
    else
        sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL); /* keep what was committed */
    int rc = r->first_err;
    free_handles(r);
    return rc;
}

void sim_results_discard(sim_results *r)
{
    if (!r)
        return;
    sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    int created = r->created;
    char *path = r->path;
    r->path = NULL;
    free_handles(r);
    if (created && path)
        unlink(path);
    free(path);
}

/* ---- deterministic dump -----------------------------------------------------------------------
 */

static const struct {
    const char *table, *cols, *order;
} DUMP[] = {
    {"runs",
     "run, scenario, scenario_file, scenario_sha256, seed, git_rev, parameters, duration_ns,"
     " end_ns, events_processed, fingerprint, status, schema_version",
     "run"},
    {"nodes", "run, node, name, grp, lan, ip, nat, role, node_id, join_ns", "run, node"},
    {"events", "seq, run, t_ns, node, kind, peer, detail", "seq"},
    {"series", "seq, run, t_ns, node, name, value", "seq"},
    {"summary", "run, name, value", "run, name"},
};

static void dump_text(FILE *out, const unsigned char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        switch (*s) {
        case '"':
        case '\\':
            fputc('\\', out);
            fputc(*s, out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        default:
            if (*s < 0x20)
                fprintf(out, "\\x%02x", *s);
            else
                fputc(*s, out);
        }
    }
    fputc('"', out);
}

/* Print each row of sql, values tab-separated. */
static int dump_query(sqlite3 *db, const char *sql, FILE *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return MESH_ERR_IO;
    int rc, n = sqlite3_column_count(st);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int i = 0; i < n; i++) {
            if (i)
                fputc('\t', out);
            switch (sqlite3_column_type(st, i)) {
            case SQLITE_INTEGER:
                fprintf(out, "%lld", (long long)sqlite3_column_int64(st, i));
                break;
            case SQLITE_FLOAT:
                fprintf(out, "%.17g", sqlite3_column_double(st, i));
                break;
            case SQLITE_TEXT:
                dump_text(out, sqlite3_column_text(st, i));
                break;
            case SQLITE_BLOB: {
                const unsigned char *b = sqlite3_column_blob(st, i);
                int len = sqlite3_column_bytes(st, i);
                fputs("x'", out);
                for (int j = 0; j < len; j++)
                    fprintf(out, "%02x", b[j]);
                fputc('\'', out);
                break;
            }
            default:
                fputs("NULL", out);
            }
        }
        fputc('\n', out);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? MESH_OK : MESH_ERR_IO;
}

int sim_results_dump_deterministic(const char *db_path, FILE *out, char *err, size_t errlen)
{
    if (!db_path || !out)
        return open_err(err, errlen, MESH_ERR_INVAL, "bad arguments");
    const char *what;
    switch (identify(db_path, &what)) {
    case DB_ABSENT:
        return open_err(err, errlen, MESH_ERR_NOT_FOUND, "%s: no such file", db_path);
    case DB_STAT_ERR:
        return open_err(err, errlen, MESH_ERR_IO, "%s: %s", db_path, strerror(errno));
    case DB_NOT_FILE:
        return open_err(err, errlen, MESH_ERR_INVAL, "%s: is %s, not a results database", db_path,
                        what);
    case DB_EMPTY:
    case DB_OTHER:
        return open_err(err, errlen, MESH_ERR_CORRUPT,
                        "%s: not a Meshara results database (no runs table of this schema)",
                        db_path);
    case DB_RESULTS:
        break;
    }
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        open_err(err, errlen, MESH_ERR_IO, "%s: %s", db_path,
                 db ? sqlite3_errmsg(db) : "cannot open");
        sqlite3_close(db);
        return MESH_ERR_IO;
    }
    fputs("# schema\n", out);
    int rc = dump_query(db, "SELECT type, name, sql FROM sqlite_master ORDER BY type, name", out);
    for (size_t i = 0; rc == MESH_OK && i < sizeof DUMP / sizeof DUMP[0]; i++) {
        char sql[512];
        snprintf(sql, sizeof sql, "SELECT %s FROM %s ORDER BY %s", DUMP[i].cols, DUMP[i].table,
                 DUMP[i].order);
        fprintf(out, "# %s: %s\n", DUMP[i].table, DUMP[i].cols);
        rc = dump_query(db, sql, out);
    }
    if (rc != MESH_OK)
        open_err(err, errlen, rc, "%s: %s", db_path, sqlite3_errmsg(db));
    sqlite3_close(db);
    return rc;
}
