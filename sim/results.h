/* results.h — the simulator's results recorder: one SQLite database per run.
 *
 * A run writes five tables (schema and meaning in docs/results.md): `runs` (one row: the
 * scenario, its file hash, seed, git revision, --set parameters as JSON, and the outcome),
 * `nodes` (one row per simulated node), `events` (what happened, when, to whom: sessions,
 * messages, lookups, censor decisions...), `series` (time series samples) and `summary`
 * (named figures that `expect:` bounds are checked against). Virtual times are integer
 * nanoseconds. Every column is a pure function of the run's inputs except the three wall-clock
 * columns of `runs` (started_at, finished_at, wall_s), which the caller passes in — this
 * module never reads a clock. sim_results_dump_deterministic() prints everything else in a
 * fixed order, so two runs compare byte for byte.
 *
 * Speed: inserts go through prepared statements inside transactions of SIM_RES_BATCH_ROWS
 * rows (committed automatically, and at sim_results_flush/finish/close), with the journal in
 * memory and no fsync: recording must never dominate a run. A database whose process died
 * (SIGKILL, a crash) is not to be trusted: its `runs.status` stays 'running'. A run that fails
 * while it can still act ends 'failed' (sim_results_finish) or is deleted
 * (sim_results_discard).
 *
 * Rows are numbered (`seq`) in the order they are recorded, so the recorder adds no ordering
 * of its own: determinism of the tables is exactly the determinism of the calls.
 *
 * Not thread-safe: one recorder per run, used from the simulation's thread.
 */
#ifndef SIM_RESULTS_H
#define SIM_RESULTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "meshara/env.h"

typedef struct sim_results sim_results;

enum sim_results_limits {
    SIM_RES_SCHEMA_VERSION = 1,          /* PRAGMA user_version and runs.schema_version */
    SIM_RES_APPLICATION_ID = 0x4D455348, /* PRAGMA application_id: "MESH" */
    SIM_RES_BATCH_ROWS = 10000,          /* rows per transaction */
    SIM_RES_MAX_TEXT = 4096,             /* bytes of one text value kept; longer values are cut */
};

/* sim_results_open flags. A results database is recognised by SIM_RES_APPLICATION_ID (or,
 * written before that id, by user_version 1 and a runs table with schema_version). Paths that
 * are not regular files (directories, FIFOs, devices) are never opened nor replaced. */
enum sim_results_flags {
    SIM_RES_CREATE = 0,       /* a new file; MESH_ERR_EXISTS if path exists */
    SIM_RES_REPLACE = 1 << 0, /* replace an existing results database or empty file; any other
                               * file is refused (MESH_ERR_EXISTS) unless SIM_RES_FORCE */
    SIM_RES_APPEND = 1 << 1,  /* add a run to an existing database (a sweep); created if absent */
    SIM_RES_FORCE = 1 << 2,   /* with REPLACE: replace whatever regular file path is */
};

/* "No node" for the node and peer columns (stored as NULL). */
#define SIM_RES_NONE (-1)

/* Standard event kinds (docs/results.md lists their detail text). Any other kind is allowed. */
#define SIM_RES_EV_NODE_UP "node_up"
#define SIM_RES_EV_NODE_DOWN "node_down"
#define SIM_RES_EV_SESSION_ESTABLISHED "session_established"
#define SIM_RES_EV_SESSION_FAILED "session_failed"
#define SIM_RES_EV_SESSION_CLOSED "session_closed"
#define SIM_RES_EV_MSG_SENT "msg_sent"
#define SIM_RES_EV_MSG_DELIVERED "msg_delivered"
#define SIM_RES_EV_MSG_FAILED "msg_failed"
#define SIM_RES_EV_LOOKUP "lookup"
#define SIM_RES_EV_CENSOR "censor"
#define SIM_RES_EV_NAT "nat"
#define SIM_RES_EV_SCENARIO "scenario"

/* What the runs row records at open. Strings are copied; NULL = SQL NULL (parameters:
 * "{}"). */
typedef struct sim_results_run {
    const char *scenario;        /* the scenario's name (required) */
    const char *scenario_file;   /* path it was loaded from */
    const char *scenario_sha256; /* hex SHA-256 of the file (sim_scenario.sha256) */
    uint64_t seed;               /* <= INT64_MAX (SQLite integers are signed) */
    const char *git_rev;         /* passed in by the caller (e.g. from `git describe`) */
    const char *parameters;      /* the --set overrides as a JSON object */
    mesh_time duration;          /* the scenario's duration, ns */
    int64_t started_at_ns;       /* wall clock, Unix ns (non-deterministic); 0 = NULL */
} sim_results_run;

/* How the run ended (sim_results_finish). Strings copied; NULL = SQL NULL. */
typedef struct sim_results_end {
    mesh_time end_ns;          /* virtual time when the run stopped */
    uint64_t events_processed; /* scheduler events */
    const char *fingerprint;   /* the scheduler's determinism fingerprint, hex */
    const char *status;        /* "ok", "failed", "expect_failed"... (NULL: "ok") */
    int64_t finished_at_ns;    /* wall clock, Unix ns (non-deterministic); 0 = NULL */
    double wall_s;             /* wall seconds the run took (non-deterministic); < 0 = NULL */
} sim_results_end;

/* One simulated node. Strings copied; NULL = SQL NULL. */
typedef struct sim_results_node_info {
    uint32_t node;       /* global node index (sim_scn_group.first_node + i) */
    const char *name;    /* e.g. "clients-3" */
    const char *group;   /* group name */
    const char *lan;     /* LAN name; NULL on the internet */
    uint32_t ip;         /* IPv4, host order; 0 = NULL */
    const char *nat;     /* e.g. "address-dependent/address-and-port-dependent"; NULL: none */
    const char *role;    /* "bootstrap" / "normal" / "stun" */
    const char *node_id; /* hex node id */
    mesh_time join_ns;   /* planned join time */
} sim_results_node_info;

/* Create (or, with SIM_RES_APPEND, open) the database at path, create the schema if needed
 * and insert the runs row (status 'running'). err (may be NULL) receives a one-line reason
 * on failure (SQLite's message included), cut to errlen.
 * MESH_OK; MESH_ERR_INVAL (NULL argument, no scenario name, seed > INT64_MAX, unknown flag,
 * REPLACE with APPEND, FORCE without REPLACE); MESH_ERR_EXISTS (the file exists and neither
 * REPLACE nor APPEND; REPLACE of a file that is not a results database, without FORCE; path is
 * not a regular file); MESH_ERR_IO (SQLite could not open or write it); MESH_ERR_CORRUPT
 * (APPEND to a file that is not a results database, or of another schema version);
 * MESH_ERR_NOMEM. *out is untouched on failure. */
int sim_results_open(sim_results **out, const char *path, unsigned flags,
                     const sim_results_run *run, char *err, size_t errlen);

/* What sim_results_open with these flags would refuse because of what is at path (the
 * MESH_ERR_EXISTS / MESH_ERR_CORRUPT / MESH_ERR_IO cases above), without creating, opening
 * for writing or deleting anything: a caller checks it before an expensive set-up. */
int sim_results_check_path(const char *path, unsigned flags, char *err, size_t errlen);

/* The run's id in its database (1 for a fresh file). */
int64_t sim_results_run_id(const sim_results *r);

/* Record rows. Text is copied (cut to SIM_RES_MAX_TEXT bytes). node and peer may be
 * SIM_RES_NONE. Each returns MESH_OK, MESH_ERR_INVAL (NULL r/kind/name, or after a failed
 * commit) or MESH_ERR_IO (SQLite failed: the recorder is then unusable; close it). */
int sim_results_node(sim_results *r, const sim_results_node_info *info);
int sim_results_event(sim_results *r, mesh_time t, int64_t node, const char *kind, int64_t peer,
                      const char *detail);
/* The same with a printf-style detail. */
int sim_results_eventf(sim_results *r, mesh_time t, int64_t node, const char *kind, int64_t peer,
                       const char *fmt, ...) __attribute__((format(printf, 6, 7)));
int sim_results_series(sim_results *r, mesh_time t, int64_t node, const char *name, double value);
/* A summary figure; recording a name again replaces its value. */
int sim_results_summary(sim_results *r, const char *name, double value);

/* Commit the rows recorded so far (they become visible to other readers). MESH_OK or
 * MESH_ERR_IO. */
int sim_results_flush(sim_results *r);
/* Rows recorded (all tables, runs excluded) and rows not yet committed. */
uint64_t sim_results_rows(const sim_results *r);
uint64_t sim_results_pending(const sim_results *r);
/* The last SQLite error message ("" when none). Valid until the next call on r. */
const char *sim_results_errmsg(const sim_results *r);

/* Complete the runs row and commit. May be called once; MESH_OK, MESH_ERR_STATE (twice),
 * MESH_ERR_IO, MESH_ERR_INVAL. */
int sim_results_finish(sim_results *r, const sim_results_end *end);
/* Commit, create the query indexes, and close. Always frees r (NULL: MESH_OK). Returns the
 * first error met (MESH_ERR_IO) so a caller knows whether the file is complete. */
int sim_results_close(sim_results *r);
/* For a run whose end cannot be recorded (sim_results_finish failed): roll back what is not
 * committed, close, and delete the file when this recorder created it, so no database is left
 * marked 'running'. (A run appended to an existing file keeps its committed rows and its
 * 'running' status.) Always frees r; NULL: no-op. */
void sim_results_discard(sim_results *r);

/* Print every deterministic column of every table of the database at path, in a fixed order
 * (schema SQL first, then runs minus its wall-clock columns, nodes, events, series, summary,
 * each ordered by its key), one row per line with tab-separated values. Two runs of the same
 * scenario and seed must print identical bytes. The file is identified first (nothing is
 * printed for a file that is not a results database). err (may be NULL) gets one line.
 * MESH_OK; MESH_ERR_NOT_FOUND (no such file); MESH_ERR_INVAL (NULL argument, or path is not a
 * regular file); MESH_ERR_CORRUPT (not a Meshara results database); MESH_ERR_IO (cannot
 * read). */
int sim_results_dump_deterministic(const char *db_path, FILE *out, char *err, size_t errlen);

#endif
