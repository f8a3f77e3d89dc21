/* meshara-sim — run Meshara scenarios in the deterministic simulator.
 *
 *   meshara-sim run FILE.yaml [--seed N] [--db PATH] [--set key=value ...] [--rev REV]
 *                             [--quiet] [--no-progress]
 *   meshara-sim check FILE.yaml [--set key=value ...]
 *   meshara-sim dump DB
 *
 * Exit codes: 0 success; 1 the run failed (results not written, out of memory...); 2 bad
 * usage or a bad scenario (the error names file:line:col); 3 the run finished but an
 * `expect:` bound was not met. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim/results.h"
#include "sim/runner.h"
#include "sim/scenario.h"
#include "sim/version.h"

enum { EXIT_RUN_FAILED = 1, EXIT_BAD_INPUT = 2, EXIT_EXPECT = 3, MAX_SETS = 256 };

static void usage(FILE *f)
{
    fprintf(
        f, "usage: meshara-sim run FILE.yaml [options]   run a scenario, write one SQLite db\n"
           "       meshara-sim check FILE.yaml [--set k=v ...]   validate without running\n"
           "       meshara-sim dump DB   print every deterministic column of a results db\n"
           "                             (two runs with one scenario and seed print the same)\n"
           "       meshara-sim --help | --version\n"
           "\n"
           "options (run):\n"
           "  --seed N          override the scenario's seed (same seed: same results)\n"
           "  --db PATH         results database (default results/out/NAME-seedN.db;\n"
           "                    an existing file is replaced)\n"
           "  --set KEY=VALUE   override one scenario value, e.g. --set network.core.latency=80ms\n"
           "                    (repeatable; recorded in the runs table)\n"
           "  --rev REV         source revision recorded in the runs table\n"
           "                    (default: $MESHARA_GIT_REV, else 'unknown')\n"
           "  --quiet           no summary table (expectation lines still print)\n"
           "  --no-progress     no progress bar (default: shown when stderr is a terminal)\n"
           "\n"
           "environment: MESHARA_GIT_REV (see --rev); MESHARA_SIM_LOG=1 prints every simulated\n"
           "             node's log lines to stderr (large: for debugging one run)\n"
           "\n"
           "exit codes: 0 ok, 1 run failed, 2 bad usage or scenario, 3 expect: bound not met\n"
           "docs: docs/scenarios.md (format), docs/results.md (database schema)\n");
}

static int mkdir_p(const char *dir)
{
    char buf[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return -1;
            buf[i] = c;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "--version")) {
        printf("%s\n", sim_version());
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "dump")) {
        int rc = sim_results_dump_deterministic(argv[2], stdout);
        if (rc != MESH_OK)
            fprintf(stderr, "meshara-sim: cannot read %s: %s\n", argv[2], mesh_strerror(rc));
        return rc == MESH_OK ? 0 : EXIT_RUN_FAILED;
    }
    if (argc < 3 || (strcmp(argv[1], "run") && strcmp(argv[1], "check"))) {
        usage(stderr);
        return EXIT_BAD_INPUT;
    }
    int is_run = !strcmp(argv[1], "run");
    const char *file = argv[2];
    const char *seed = NULL, *db = NULL, *rev = getenv("MESHARA_GIT_REV");
    const char *sets[MAX_SETS];
    size_t nsets = 0;
    int quiet = 0, progress = isatty(STDERR_FILENO);
    static const struct option longopts[] = {
        {"seed", required_argument, NULL, 's'}, {"db", required_argument, NULL, 'd'},
        {"set", required_argument, NULL, 'S'},  {"rev", required_argument, NULL, 'r'},
        {"quiet", no_argument, NULL, 'q'},      {"no-progress", no_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    optind = 3;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            seed = optarg;
            break;
        case 'd':
            db = optarg;
            break;
        case 'S':
            if (nsets == MAX_SETS) {
                fprintf(stderr, "meshara-sim: at most %d --set options\n", MAX_SETS);
                return EXIT_BAD_INPUT;
            }
            sets[nsets++] = optarg;
            break;
        case 'r':
            rev = optarg;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'P':
            progress = 0;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EXIT_BAD_INPUT;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "meshara-sim: unexpected argument '%s'\n", argv[optind]);
        return EXIT_BAD_INPUT;
    }
    if (!is_run && (seed || db || rev != getenv("MESHARA_GIT_REV") || quiet)) {
        fprintf(stderr, "meshara-sim: check takes only --set\n");
        return EXIT_BAD_INPUT;
    }

    char err[SIM_SCN_ERR_MAX];
    sim_scenario *scn = NULL;
    int rc = sim_scenario_load(&scn, file, err, sizeof err);
    if (rc != MESH_OK) {
        fprintf(stderr, "meshara-sim: %s\n", err);
        return rc == MESH_ERR_NOMEM ? EXIT_RUN_FAILED : EXIT_BAD_INPUT;
    }
    for (size_t i = 0; i < nsets && rc == MESH_OK; i++)
        rc = sim_scenario_set_arg(scn, sets[i], err, sizeof err);
    if (rc == MESH_OK && seed)
        rc = sim_scenario_set(scn, "seed", seed, err, sizeof err);
    if (rc != MESH_OK) {
        fprintf(stderr, "meshara-sim: %s\n", err);
        sim_scenario_free(scn);
        return EXIT_BAD_INPUT;
    }
    if (!is_run) {
        printf("%s: ok (%s: %u nodes in %zu groups, %zu LANs, %zu censors, %zu events, "
               "%zu traffic patterns, %zu expectations)\n",
               file, scn->name, scn->node_count, scn->group_count, scn->lan_count,
               scn->censor_count, scn->event_count, scn->traffic_count, scn->expect_count);
        sim_scenario_free(scn);
        return 0;
    }

    char dbbuf[4096];
    if (!db) {
        if (mkdir_p("results/out") != 0) {
            fprintf(stderr, "meshara-sim: cannot create results/out: %s\n", strerror(errno));
            sim_scenario_free(scn);
            return EXIT_RUN_FAILED;
        }
        snprintf(dbbuf, sizeof dbbuf, "results/out/%s-seed%llu.db", scn->name,
                 (unsigned long long)scn->seed);
        db = dbbuf;
    }
    sim_run_opts opts = {.db_path = db, .git_rev = rev, .progress = progress, .quiet = quiet};
    sim_run_result res = {0};
    char rerr[1024];
    rc = sim_run(scn, &opts, &res, rerr, sizeof rerr);
    sim_scenario_free(scn);
    if (rc != MESH_OK) {
        fprintf(stderr, "meshara-sim: %s\n", rerr);
        return rc == MESH_ERR_UNSUPPORTED ? EXIT_BAD_INPUT : EXIT_RUN_FAILED;
    }
    printf("results: %s (%.1f s wall)\n", db, res.wall_s);
    if (res.expects_failed) {
        fprintf(stderr, "meshara-sim: %zu expectation(s) not met\n", res.expects_failed);
        return EXIT_EXPECT;
    }
    return 0;
}
