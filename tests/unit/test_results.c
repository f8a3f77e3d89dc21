/* test_results.c — the SQLite results recorder (sim/results.c): the schema is created, rows
 * land in their tables with NULLs where asked, two recordings of the same data dump to the
 * same bytes whatever their wall-clock columns, batches commit every SIM_RES_BATCH_ROWS rows,
 * and the open modes (create, replace, append) and error paths behave as documented. */
#include "mesh_test.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim/results.h"

static char tmpdir[] = "/tmp/mesh_results_XXXXXX";

static int suite_init(void)
{
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int suite_clean(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *tmp(const char *name)
{
    static char buf[4][256];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", tmpdir, name);
    return buf[i];
}

static sim_results_run run_info(int64_t started)
{
    sim_results_run run = {
        .scenario = "unit",
        .scenario_file = "scenarios/unit.yaml",
        .scenario_sha256 = "ab12",
        .seed = 7,
        .git_rev = "v0.1-3-gdeadbee",
        .parameters = "{\"seed\":\"7\"}",
        .duration = 600000000000ULL,
        .started_at_ns = started,
    };
    return run;
}

/* One integer (or -1 for NULL / no row) from a query on a separate connection. */
static long long query_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    long long v = -1;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    } else {
        fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
    }
    sqlite3_close(db);
    return v;
}

static void query_text(const char *path, const char *sql, char *out, size_t cap)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    out[0] = '\0';
    CU_ASSERT_EQUAL_FATAL(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
            snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
}

static void test_schema(void)
{
    const char *path = tmp("schema.db");
    sim_results *r = NULL;
    sim_results_run run = run_info(1700000000123456789LL);
    char err[256];
    CU_ASSERT_EQUAL_FATAL(sim_results_open(&r, path, SIM_RES_CREATE, &run, err, sizeof err),
                          MESH_OK);
    CU_ASSERT_EQUAL(sim_results_run_id(r), 1);
    /* the runs row is committed at open: visible to another reader at once */
    CU_ASSERT_EQUAL(query_int(path, "SELECT count(*) FROM runs"), 1);
    CU_ASSERT_EQUAL(sim_results_close(r), MESH_OK);

    static const char *const tables[] = {"runs", "nodes", "events", "series", "summary"};
    for (size_t i = 0; i < 5; i++) {
        char sql[128];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='%s'", tables[i]);
        CU_ASSERT_EQUAL(query_int(path, sql), 1);
    }
    CU_ASSERT_EQUAL(query_int(path, "PRAGMA user_version"), SIM_RES_SCHEMA_VERSION);
    CU_ASSERT_EQUAL(query_int(path, "SELECT count(*) FROM sqlite_master WHERE type='index' AND "
                                    "name LIKE 'events_by_%'"),
                    2);
    /* the documented columns exist */
    CU_ASSERT_EQUAL(query_int(path, "SELECT count(*) FROM pragma_table_info('runs') WHERE name IN"
                                    " ('scenario','scenario_sha256','seed','git_rev','parameters',"
                                    "'started_at','finished_at','wall_s','fingerprint')"),
                    9);
    CU_ASSERT_EQUAL(query_int(path, "SELECT count(*) FROM pragma_table_info('events') WHERE name "
                                    "IN ('t_ns','node','kind','peer','detail')"),
                    5);
    char text[128];
    query_text(path, "SELECT started_at FROM runs", text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "2023-11-14T22:13:20.123Z");
    query_text(path, "SELECT status FROM runs", text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "running"); /* never finished */
    query_text(path, "SELECT parameters FROM runs", text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "{\"seed\":\"7\"}");
    CU_ASSERT_EQUAL(query_int(path, "SELECT seed FROM runs"), 7);
    CU_ASSERT_EQUAL(query_int(path, "SELECT duration_ns FROM runs"), 600000000000LL);
}

/* The same recording, with wall-clock values of its own. */
static void record(const char *path, int64_t started, int64_t finished, double wall, int tweak)
{
    sim_results *r = NULL;
    sim_results_run run = run_info(started);
    CU_ASSERT_EQUAL_FATAL(sim_results_open(&r, path, SIM_RES_REPLACE, &run, NULL, 0), MESH_OK);
    for (uint32_t i = 0; i < 5; i++) {
        char name[32], id[65];
        snprintf(name, sizeof name, "peers-%u", i);
        snprintf(id, sizeof id, "%064x", i * 0x1234567u);
        sim_results_node_info n = {.node = i,
                                   .name = name,
                                   .group = "peers",
                                   .lan = i < 2 ? "home" : NULL,
                                   .ip = 0x0a000002 + i,
                                   .nat = i < 2 ? "endpoint-independent/address-dependent" : NULL,
                                   .role = i == 0 ? "bootstrap" : "normal",
                                   .node_id = id,
                                   .join_ns = (mesh_time)i * 1000000000ULL};
        CU_ASSERT_EQUAL(sim_results_node(r, &n), MESH_OK);
    }
    for (int i = 0; i < 50; i++) {
        CU_ASSERT_EQUAL(sim_results_eventf(r, (mesh_time)i * 1000003ULL, i % 5, SIM_RES_EV_MSG_SENT,
                                           (i + 1) % 5, "bytes=%d id=%d\ttab \"q\"", 100 + i,
                                           i + tweak),
                        MESH_OK);
        CU_ASSERT_EQUAL(
            sim_results_series(r, (mesh_time)i * 1000000000ULL, i % 5, "connections", i * 0.1),
            MESH_OK);
    }
    CU_ASSERT_EQUAL(sim_results_event(r, 77, SIM_RES_NONE, SIM_RES_EV_SCENARIO, SIM_RES_NONE, NULL),
                    MESH_OK);
    CU_ASSERT_EQUAL(sim_results_summary(r, "delivery_ratio", 0.987654321), MESH_OK);
    CU_ASSERT_EQUAL(sim_results_summary(r, "nodes", 5), MESH_OK);
    sim_results_end end = {.end_ns = 600000000000ULL,
                           .events_processed = 12345,
                           .fingerprint = "00ff00ff00ff00ff",
                           .status = "ok",
                           .finished_at_ns = finished,
                           .wall_s = wall};
    CU_ASSERT_EQUAL(sim_results_finish(r, &end), MESH_OK);
    CU_ASSERT_EQUAL(sim_results_finish(r, &end), MESH_ERR_STATE);
    CU_ASSERT_EQUAL(sim_results_close(r), MESH_OK);
}

static char *dump(const char *path, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(sim_results_dump_deterministic(path, f, NULL, 0), MESH_OK);
    fclose(f);
    return buf;
}

static void test_rows(void)
{
    const char *path = tmp("rows.db");
    record(path, 1, 2, 0.5, 0);
    CU_ASSERT_EQUAL(query_int(path, "SELECT count(*) FROM nodes"), 5);
    CU_ASSERT_EQUAL(query_int(path, "SELECT count(*) FROM events"), 51);
    CU_ASSERT_EQUAL(query_int(path, "SELECT count(*) FROM series"), 50);
    CU_ASSERT_EQUAL(query_int(path, "SELECT count(*) FROM summary"), 2);
    /* NULLs where asked */
    CU_ASSERT_EQUAL(query_int(path, "SELECT count(*) FROM events WHERE node IS NULL AND peer IS "
                                    "NULL AND detail IS NULL AND kind='scenario' AND t_ns=77"),
                    1);
    CU_ASSERT_EQUAL(query_int(path, "SELECT count(*) FROM nodes WHERE lan IS NULL AND nat IS NULL"),
                    3);
    char text[256];
    query_text(path, "SELECT ip FROM nodes WHERE node=3", text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "10.0.0.5");
    query_text(path, "SELECT detail FROM events WHERE seq=3", text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "bytes=102 id=2\ttab \"q\"");
    CU_ASSERT_EQUAL(query_int(path, "SELECT t_ns FROM events WHERE seq=50"), 49 * 1000003LL);
    CU_ASSERT_EQUAL(query_int(path, "SELECT events_processed FROM runs"), 12345);
    query_text(path, "SELECT fingerprint || ' ' || status FROM runs", text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "00ff00ff00ff00ff ok");
    CU_ASSERT_EQUAL(query_int(path, "SELECT count(*) FROM runs WHERE wall_s = 0.5"), 1);
    /* the same node twice is refused without poisoning the recorder */
    sim_results *r = NULL;
    sim_results_run run = run_info(0);
    CU_ASSERT_EQUAL_FATAL(sim_results_open(&r, tmp("dup.db"), SIM_RES_REPLACE, &run, NULL, 0),
                          MESH_OK);
    sim_results_node_info n = {.node = 1, .name = "a"};
    CU_ASSERT_EQUAL(sim_results_node(r, &n), MESH_OK);
    CU_ASSERT_EQUAL(sim_results_node(r, &n), MESH_ERR_EXISTS);
    CU_ASSERT_EQUAL(sim_results_summary(r, "x", 1), MESH_OK);
    CU_ASSERT_EQUAL(sim_results_summary(r, "x", 2), MESH_OK); /* replaces */
    CU_ASSERT_EQUAL(sim_results_event(r, 1, 0, NULL, 0, NULL), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(sim_results_series(r, 1, 0, NULL, 0), MESH_ERR_INVAL);
    /* text longer than SIM_RES_MAX_TEXT is cut */
    char *big = malloc(SIM_RES_MAX_TEXT * 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    memset(big, 'a', SIM_RES_MAX_TEXT * 2 - 1);
    big[SIM_RES_MAX_TEXT * 2 - 1] = '\0';
    CU_ASSERT_EQUAL(sim_results_event(r, 5, 0, "long", 1, big), MESH_OK);
    free(big);
    CU_ASSERT_EQUAL(sim_results_close(r), MESH_OK);
    CU_ASSERT_EQUAL(query_int(tmp("dup.db"), "SELECT count(*) FROM nodes"), 1);
    CU_ASSERT_EQUAL(query_int(tmp("dup.db"), "SELECT value FROM summary WHERE name='x'"), 2);
    CU_ASSERT_EQUAL(query_int(tmp("dup.db"), "SELECT length(detail) FROM events WHERE kind='long'"),
                    SIM_RES_MAX_TEXT);
    CU_ASSERT_EQUAL(sim_results_close(NULL), MESH_OK);
}

static void test_deterministic_dump(void)
{
    const char *a = tmp("a.db"), *b = tmp("b.db"), *c = tmp("c.db");
    /* different wall clocks, same data */
    record(a, 1700000000000000000LL, 1700000001000000000LL, 1.0, 0);
    record(b, 1800000000000000000LL, 1800000009000000000LL, 9.0, 0);
    record(c, 1700000000000000000LL, 1700000001000000000LL, 1.0, 1); /* one detail differs */
    size_t la, lb, lc;
    char *da = dump(a, &la), *db = dump(b, &lb), *dc = dump(c, &lc);
    CU_ASSERT_TRUE(la > 1000);
    CU_ASSERT_EQUAL(la, lb);
    CU_ASSERT_EQUAL(memcmp(da, db, la < lb ? la : lb), 0);
    CU_ASSERT_TRUE(la != lc || memcmp(da, dc, la) != 0);
    /* the wall-clock columns really differ between a and b, and are not in the dump */
    char ta[64], tb[64];
    query_text(a, "SELECT finished_at FROM runs", ta, sizeof ta);
    query_text(b, "SELECT finished_at FROM runs", tb, sizeof tb);
    CU_ASSERT_STRING_NOT_EQUAL(ta, tb);
    CU_ASSERT_PTR_NULL(strstr(da, ta));
    /* every table is in it, values escaped, schema first */
    CU_ASSERT_EQUAL(strncmp(da, "# schema\n", 9), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(da, "# events: seq, run, t_ns, node, kind, peer, detail\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(da, "\"bytes=102 id=2\\ttab \\\"q\\\"\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(da, "\"scenario\"\tNULL\tNULL\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(da, "1\t\"delivery_ratio\"\t0.98765432099999995\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(da, "\"00ff00ff00ff00ff\"\t\"ok\"\t1\n"));
    free(da);
    free(db);
    free(dc);
}

/* Write text to a file (for "not a database" cases). */
static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

/* What the dump says about paths that are not results databases, and that it prints nothing
 * for them (the "# schema" line once came before the failure). */
static void test_dump_errors(void)
{
    char *buf = NULL;
    size_t len = 0;
    char err[256];
    FILE *f = open_memstream(&buf, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(sim_results_dump_deterministic(tmp("none.db"), f, err, sizeof err),
                    MESH_ERR_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "none.db: no such file"));
    write_file(tmp("scenario.yaml"), "name: t\nduration: 1m\n");
    CU_ASSERT_EQUAL(sim_results_dump_deterministic(tmp("scenario.yaml"), f, err, sizeof err),
                    MESH_ERR_CORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a Meshara results database"));
    CU_ASSERT_EQUAL(sim_results_dump_deterministic(tmpdir, f, err, sizeof err), MESH_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "is a directory"));
    /* another program's SQLite database */
    sqlite3 *db;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(tmp("theirs.db"), &db), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    CU_ASSERT_EQUAL(sim_results_dump_deterministic(tmp("theirs.db"), f, err, sizeof err),
                    MESH_ERR_CORRUPT);
    CU_ASSERT_EQUAL(sim_results_dump_deterministic(NULL, f, NULL, 0), MESH_ERR_INVAL);
    fclose(f);
    CU_ASSERT_EQUAL(len, 0); /* not a byte printed */
    free(buf);
}

static void test_batching(void)
{
    const char *path = tmp("batch.db");
    sim_results *r = NULL;
    sim_results_run run = run_info(0);
    CU_ASSERT_EQUAL_FATAL(sim_results_open(&r, path, SIM_RES_REPLACE, &run, NULL, 0), MESH_OK);
    const int batches = 3, extra = 7;
    for (int i = 0; i < batches * SIM_RES_BATCH_ROWS; i++)
        if (sim_results_event(r, (mesh_time)i, i % 100, "msg_delivered", (i + 1) % 100, "hops=3") !=
            MESH_OK) {
            CU_FAIL_FATAL("insert failed");
        }
    /* three full batches committed automatically: another reader sees them all */
    CU_ASSERT_EQUAL(sim_results_pending(r), 0);
    CU_ASSERT_EQUAL(query_int(path, "SELECT count(*) FROM events"), batches * SIM_RES_BATCH_ROWS);
    for (int i = 0; i < extra; i++)
        CU_ASSERT_EQUAL(sim_results_series(r, (mesh_time)i, SIM_RES_NONE, "rtt_ms", 1.5 * i),
                        MESH_OK);
    /* a partial batch is not visible until it commits */
    CU_ASSERT_EQUAL(sim_results_pending(r), extra);
    CU_ASSERT_EQUAL(query_int(path, "SELECT count(*) FROM series"), 0);
    CU_ASSERT_EQUAL(sim_results_flush(r), MESH_OK);
    CU_ASSERT_EQUAL(query_int(path, "SELECT count(*) FROM series"), extra);
    CU_ASSERT_EQUAL(sim_results_rows(r), (uint64_t)(batches * SIM_RES_BATCH_ROWS + extra));
    CU_ASSERT_EQUAL(sim_results_summary(r, "after_flush", 1), MESH_OK);
    CU_ASSERT_EQUAL(sim_results_close(r), MESH_OK); /* commits the rest */
    CU_ASSERT_EQUAL(query_int(path, "SELECT count(*) FROM summary"), 1);
    CU_ASSERT_EQUAL(query_int(path, "SELECT max(seq) FROM events"), batches * SIM_RES_BATCH_ROWS);
}

static void test_open_modes(void)
{
    const char *path = tmp("modes.db");
    sim_results *r = NULL;
    sim_results_run run = run_info(0);
    char err[256];
    unlink(path);
    CU_ASSERT_EQUAL_FATAL(sim_results_open(&r, path, SIM_RES_CREATE, &run, err, sizeof err),
                          MESH_OK);
    CU_ASSERT_EQUAL(sim_results_event(r, 1, 0, "x", 1, "first"), MESH_OK);
    CU_ASSERT_EQUAL(sim_results_close(r), MESH_OK);
    /* CREATE refuses an existing file and leaves it alone */
    r = NULL;
    CU_ASSERT_EQUAL(sim_results_open(&r, path, SIM_RES_CREATE, &run, err, sizeof err),
                    MESH_ERR_EXISTS);
    CU_ASSERT_PTR_NULL(r);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "exists"));
    CU_ASSERT_EQUAL(query_int(path, "SELECT count(*) FROM events"), 1);
    /* APPEND adds run 2 beside run 1 */
    CU_ASSERT_EQUAL_FATAL(sim_results_open(&r, path, SIM_RES_APPEND, &run, err, sizeof err),
                          MESH_OK);
    CU_ASSERT_EQUAL(sim_results_run_id(r), 2);
    CU_ASSERT_EQUAL(sim_results_event(r, 1, 0, "x", 1, "second"), MESH_OK);
    CU_ASSERT_EQUAL(sim_results_close(r), MESH_OK);
    CU_ASSERT_EQUAL(query_int(path, "SELECT count(*) FROM runs"), 2);
    CU_ASSERT_EQUAL(query_int(path, "SELECT run FROM events WHERE detail='second'"), 2);
    /* REPLACE starts over */
    CU_ASSERT_EQUAL_FATAL(sim_results_open(&r, path, SIM_RES_REPLACE, &run, err, sizeof err),
                          MESH_OK);
    CU_ASSERT_EQUAL(sim_results_run_id(r), 1);
    CU_ASSERT_EQUAL(sim_results_close(r), MESH_OK);
    CU_ASSERT_EQUAL(query_int(path, "SELECT count(*) FROM events"), 0);

    /* APPEND to something that is not a results file */
    const char *other = tmp("other.db");
    sqlite3 *db;
    unlink(other);
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(other, &db), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    r = NULL;
    CU_ASSERT_EQUAL(sim_results_open(&r, other, SIM_RES_APPEND, &run, err, sizeof err),
                    MESH_ERR_CORRUPT);
    CU_ASSERT_PTR_NULL(r);
    CU_ASSERT_EQUAL(access(other, F_OK), 0); /* not ours to delete */

    /* a directory that does not exist: no file, an error naming the path */
    CU_ASSERT_EQUAL(
        sim_results_open(&r, "/nonexistent/dir/x.db", SIM_RES_CREATE, &run, err, sizeof err),
        MESH_ERR_IO);
    CU_ASSERT_EQUAL(strncmp(err, "/nonexistent/dir/x.db: ", 23), 0);
    /* bad arguments */
    run.seed = (uint64_t)INT64_MAX + 1;
    CU_ASSERT_EQUAL(sim_results_open(&r, tmp("bad.db"), 0, &run, NULL, 0), MESH_ERR_INVAL);
    run = run_info(0);
    run.scenario = NULL;
    CU_ASSERT_EQUAL(sim_results_open(&r, tmp("bad.db"), 0, &run, NULL, 0), MESH_ERR_INVAL);
    run = run_info(0);
    CU_ASSERT_EQUAL(
        sim_results_open(&r, tmp("bad.db"), SIM_RES_REPLACE | SIM_RES_APPEND, &run, NULL, 0),
        MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(sim_results_open(&r, tmp("bad.db"), 1u << 7, &run, NULL, 0), MESH_ERR_INVAL);
    CU_ASSERT_NOT_EQUAL(access(tmp("bad.db"), F_OK), 0);
}

/* REPLACE replaces only a results database (or an empty file); FORCE any regular file; a
 * path that is not a regular file never; the id a database carries is what tells them apart. */
static void test_replace_only_ours(void)
{
    sim_results *r = NULL;
    sim_results_run run = run_info(0);
    char err[256];
    const char *yaml = tmp("my.yaml"), *ours = tmp("ours.db"), *empty = tmp("empty.db");
    write_file(yaml, "name: precious\nduration: 1m\n");
    CU_ASSERT_EQUAL(sim_results_open(&r, yaml, SIM_RES_REPLACE, &run, err, sizeof err),
                    MESH_ERR_EXISTS);
    CU_ASSERT_PTR_NULL(r);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "is not a Meshara results database: not replaced"));
    char text[64];
    FILE *f = fopen(yaml, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_PTR_NOT_NULL(fgets(text, sizeof text, f));
    fclose(f);
    CU_ASSERT_STRING_EQUAL(text, "name: precious\n"); /* untouched */
    /* FORCE replaces it; then it is ours, carries the id, and REPLACE alone replaces it */
    CU_ASSERT_EQUAL_FATAL(
        sim_results_open(&r, yaml, SIM_RES_REPLACE | SIM_RES_FORCE, &run, err, sizeof err),
        MESH_OK);
    CU_ASSERT_EQUAL(sim_results_close(r), MESH_OK);
    CU_ASSERT_EQUAL(query_int(yaml, "PRAGMA application_id"), SIM_RES_APPLICATION_ID);
    CU_ASSERT_EQUAL_FATAL(sim_results_open(&r, yaml, SIM_RES_REPLACE, &run, err, sizeof err),
                          MESH_OK);
    CU_ASSERT_EQUAL(sim_results_close(r), MESH_OK);
    /* a database written before the id existed is recognised by its schema */
    CU_ASSERT_EQUAL_FATAL(sim_results_open(&r, ours, SIM_RES_REPLACE, &run, err, sizeof err),
                          MESH_OK);
    CU_ASSERT_EQUAL(sim_results_close(r), MESH_OK);
    sqlite3 *db;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(ours, &db), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_exec(db, "PRAGMA application_id=0", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    CU_ASSERT_EQUAL_FATAL(sim_results_open(&r, ours, SIM_RES_REPLACE, &run, err, sizeof err),
                          MESH_OK);
    CU_ASSERT_EQUAL(sim_results_close(r), MESH_OK);
    /* an empty file (mktemp's) holds nothing to lose */
    write_file(empty, "");
    CU_ASSERT_EQUAL_FATAL(sim_results_open(&r, empty, SIM_RES_REPLACE, &run, err, sizeof err),
                          MESH_OK);
    CU_ASSERT_EQUAL(sim_results_close(r), MESH_OK);
    /* not a regular file: refused even with FORCE, and a FIFO is never opened (no hang) */
    CU_ASSERT_EQUAL(
        sim_results_open(&r, tmpdir, SIM_RES_REPLACE | SIM_RES_FORCE, &run, err, sizeof err),
        MESH_ERR_EXISTS);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "is a directory"));
    const char *fifo = tmp("fifo.db");
    CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
    alarm(10); /* a regression would block in open: fail instead of hanging */
    CU_ASSERT_EQUAL(
        sim_results_open(&r, fifo, SIM_RES_REPLACE | SIM_RES_FORCE, &run, err, sizeof err),
        MESH_ERR_EXISTS);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "is a FIFO"));
    CU_ASSERT_EQUAL(sim_results_dump_deterministic(fifo, stdout, err, sizeof err), MESH_ERR_INVAL);
    alarm(0);
    struct stat st;
    CU_ASSERT_TRUE(stat(fifo, &st) == 0 && S_ISFIFO(st.st_mode));
    /* FORCE alone is a bad argument */
    CU_ASSERT_EQUAL(sim_results_open(&r, tmp("x.db"), SIM_RES_FORCE, &run, NULL, 0),
                    MESH_ERR_INVAL);
}

/* A run that cannot record its end: discard deletes the file it created, so no database stays
 * marked 'running'; an appended run's file is never deleted. */
static void test_discard(void)
{
    sim_results *r = NULL;
    sim_results_run run = run_info(0);
    const char *path = tmp("discard.db");
    CU_ASSERT_EQUAL_FATAL(sim_results_open(&r, path, SIM_RES_REPLACE, &run, NULL, 0), MESH_OK);
    CU_ASSERT_EQUAL(sim_results_event(r, 1, 0, "x", 1, "y"), MESH_OK);
    sim_results_discard(r);
    CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0);
    CU_ASSERT_EQUAL_FATAL(sim_results_open(&r, path, SIM_RES_CREATE, &run, NULL, 0), MESH_OK);
    CU_ASSERT_EQUAL(sim_results_close(r), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_results_open(&r, path, SIM_RES_APPEND, &run, NULL, 0), MESH_OK);
    sim_results_discard(r);
    CU_ASSERT_EQUAL(access(path, F_OK), 0);
    CU_ASSERT_EQUAL(query_int(path, "SELECT count(*) FROM runs"), 2);
    sim_results_discard(NULL);
}

static CU_TestInfo tests[] = {
    {"schema created with the documented tables and columns", test_schema},
    {"rows written, NULLs, duplicates, long text cut", test_rows},
    {"same data, different wall clocks: identical deterministic dumps", test_deterministic_dump},
    {"batches commit every SIM_RES_BATCH_ROWS rows and at flush/close", test_batching},
    {"create, replace, append and open errors", test_open_modes},
    {"dump: missing, non-database, directory: an error and nothing printed", test_dump_errors},
    {"replace only a results database; --force; never a directory or FIFO", test_replace_only_ours},
    {"discard deletes the file a failed run created", test_discard},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"results", suite_init, suite_clean, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
