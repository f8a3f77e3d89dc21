/* runner.h — runs a scenario (scenario.h) in one simulated world and records it (results.h).
 *
 * What a run builds, from the scenario struct:
 *  - the core (constant latency, per-pair uniform latency drawn from the seed, or a region
 *    matrix), LANs with their site links and NATs, one host per node with its access link
 *    (what the models cannot build is refused first, by sim_run_check);
 *  - censors attached in front of their targets (a LAN's gateway, or each host of a group),
 *    with one background HTTPS client per censor target and one server on the core, so
 *    collateral damage is measured beside Meshara's blocked fraction;
 *  - a mesh_node (meshara.h) per host, started at its join time on MESH_RUNNER_NODE_PORT:
 *    identity from the host's seeded randomness, every `role: bootstrap` node as a pinned
 *    bootstrap node, mDNS on LANs when the group has it, an in-memory peer store, one shared
 *    OpenSSL library context for the world. It advertises its public address (the host's,
 *    or its UPnP mapping) or, behind a NAT without a mapping, none;
 *  - traffic: mesh_node_send to the target's key (the node looks it up in the DHT, connects,
 *    authenticates, sends, waits for the acknowledgement); the message's first 8 bytes carry
 *    its id, so the receiver records delivery and one-way latency; a failed completion is
 *    recorded with its reason;
 *  - lookups: every joined node looks a random joined, reachable node up every
 *    SIM_RUNNER_LOOKUP_EVERY_S, recording hops (summary: lookup_success_ratio, hop
 *    percentiles);
 *  - timed events: churn (a node's host goes down and its mesh_node is freed — its process
 *    died; back after down_for it restarts and rejoins through its peer store), partitions (a
 *    middlebox at each member drops traffic to non-members until healed), link changes,
 *    censors switched on and off.
 * Nothing reads the real clock or real randomness except the progress display (wall time
 * to stderr) and the wall-clock columns of the runs row.
 */
#ifndef SIM_RUNNER_H
#define SIM_RUNNER_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "sim/scenario.h"

enum sim_runner_limits {
    MESH_RUNNER_NODE_PORT = 443,
    SIM_RUNNER_SAMPLE_S = 10,         /* series sampled every this many virtual seconds */
    SIM_RUNNER_STORE_MAX = 256,       /* records a node's in-memory peer store keeps */
    SIM_RUNNER_LOOKUP_FIRST_S = 30,   /* a joined node's first lookup comes 30..90 s later */
    SIM_RUNNER_LOOKUP_EVERY_S = 60,   /* then one lookup of a random live node a minute */
    SIM_RUNNER_MAX_MSG = 16 << 20,    /* largest message a traffic pattern may draw */
    SIM_RUNNER_BG_INTERVAL_MS = 2000, /* background HTTPS: one exchange per client per 2 s */
    SIM_RUNNER_BG_RESPONSE = 32768,   /* background HTTPS response size, bytes */
};

typedef struct sim_run_opts {
    const char *db_path; /* results database; NULL: no database. An existing results database
                          * is replaced; any other file only with force (sim_results_open) */
    int force;           /* 1: replace db_path whatever regular file it is */
    /* when set (to non-zero, e.g. from a SIGINT handler), the run stops at the end of the
     * current slice (1/200 of the duration) as `interrupted`; NULL: never */
    const volatile sig_atomic_t *stop;
    const char *git_rev; /* recorded in the runs row; NULL = "unknown" */
    int progress;        /* 1: progress bar on stderr (a terminal) */
    int quiet;           /* 1: no summary table on out */
    FILE *out;           /* summary table and expectation report; NULL = stdout */
    /* called for every summary figure at the end (benchmarks read them here); may be NULL */
    void (*on_summary)(void *ud, const char *name, double value);
    void *summary_ud;
} sim_run_opts;

typedef struct sim_run_result {
    uint64_t events;       /* scheduler events processed */
    uint64_t fingerprint;  /* the scheduler's running hash of every event */
    double wall_s;         /* wall-clock seconds (not part of the results' determinism) */
    size_t expects_failed; /* expect: bounds not met */
} sim_run_result;

/* What a loaded scenario may say but the runner cannot build, refused before anything is
 * built, with the element's position in err (FILE:LINE:COL: message (hint: ...)): a NAT per
 * node inside a LAN (the network model has one NAT level per LAN), the censor action `probe`,
 * a censor rule the censor model refuses (sim_censor_rule_problem), more middleboxes at one
 * host or LAN gateway than SIM_MBOX_MAX_PER_POINT (censors, partitions, the LAN's NAT), and an
 * `expect:` on a summary figure no run records. `meshara-sim check` and sim_run both call it.
 * MESH_OK; MESH_ERR_UNSUPPORTED (not modelled yet); MESH_ERR_MALFORMED (bad rule, unknown
 * summary name); MESH_ERR_LIMIT (middleboxes); MESH_ERR_INVAL (NULL scenario). */
int sim_run_check(const sim_scenario *scn, char *err, size_t errlen);

/* Run scn (with its seed) to its duration: sim_run_check first, then the world is built and
 * run. err gets one line on failure. When the run fails after the results database was
 * opened, its runs row is marked `failed` (or, when even that cannot be written, the file is
 * deleted): no database is left marked `running`.
 * MESH_OK (whether or not expectations hold: see res->expects_failed); the codes of
 * sim_run_check; MESH_ERR_STATE (interrupted through opts->stop; the results say
 * `interrupted`); MESH_ERR_EXISTS (db_path is something other than a results database, and
 * opts->force is 0: see SIM_RES_REPLACE); MESH_ERR_IO (the database could not be written);
 * MESH_ERR_LIMIT; MESH_ERR_NOMEM. */
int sim_run(const sim_scenario *scn, const sim_run_opts *opts, sim_run_result *res, char *err,
            size_t errlen);

#endif
