/* meshara-sim — run Meshara scenarios in the deterministic simulator.
 *
 *   meshara-sim run FILE.yaml [--seed N] [--db PATH] [--force] [--set key=value ...]
 *                             [--rev REV] [--quiet] [--no-progress]
 *   meshara-sim check FILE.yaml [--seed N] [--set key=value ...]
 *   meshara-sim dump DB
 *
 * `check` and `run` load and validate a scenario the same way (sim_scenario_load, then
 * sim_run_check): whatever `run` would refuse before its first event, `check` refuses too.
 *
 * Exit codes: 0 success; 1 the run failed (results not written, out of memory...); 2 bad
 * usage or a bad scenario (the error names file:line:col); 3 the run finished but an
 * `expect:` bound was not met. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
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

static const char USAGE_RUN[] =
    "usage: meshara-sim run FILE.yaml [options]   run a scenario, write one SQLite db\n"
    "\n"
    "  --seed N          override the scenario's seed (same seed: same results)\n"
    "  --db PATH         results database (default results/out/NAME-seedN.db); an existing\n"
    "                    results database is replaced, any other file is refused\n"
    "  --force           replace PATH even when it is not a results database\n"
    "  --set KEY=VALUE   override one scenario value, e.g. --set network.core.latency=80ms\n"
    "                    (repeatable; recorded in the runs table)\n"
    "  --rev REV         source revision recorded in the runs table\n"
    "                    (default: $MESHARA_GIT_REV, else 'unknown')\n"
    "  --quiet           no summary table (expectation lines still print)\n"
    "  --no-progress     no progress bar (default: shown when stderr is a terminal)\n";

static const char USAGE_CHECK[] =
    "usage: meshara-sim check FILE.yaml [--seed N] [--set KEY=VALUE ...]\n"
    "  validate without running: the file's format and cross-field rules, then what the\n"
    "  simulator can build (NAT levels, censor actions and rules, middleboxes per host,\n"
    "  expect: summary names) -- everything `run` checks before its first event\n";

static const char USAGE_DUMP[] =
    "usage: meshara-sim dump DB\n"
    "  print every deterministic column of a results database (two runs with one scenario\n"
    "  and seed print the same bytes)\n";

static void usage(FILE *f)
{
    fprintf(f, "meshara-sim: run Meshara scenarios in the deterministic simulator\n\n%s\n%s\n%s\n",
            USAGE_RUN, USAGE_CHECK, USAGE_DUMP);
    fputs("       meshara-sim --help | --version     (COMMAND --help: that command only)\n"
          "\n"
          "environment: MESHARA_GIT_REV (see --rev); MESHARA_SIM_LOG=1 prints every simulated\n"
          "             node's log lines to stderr (large: for debugging one run)\n"
          "\n"
          "exit codes: 0 ok, 1 run failed, 2 bad usage or scenario, 3 expect: bound not met\n"
          "docs: docs/scenarios.md (format), docs/results.md (database schema)\n",
          f);
}

typedef struct cli {
    int is_run;
    const char *file, *seed, *db, *rev;
    const char *sets[MAX_SETS];
    size_t nsets;
    int force, quiet, progress;
    const char *run_only; /* the first run-only option given (check refuses it) */
} cli;

/* One option into o; -1 when parsing stops with exit code *code. */
static int take_opt(cli *o, int c, const char *name, char **argv, int *code)
{
    if (!o->run_only && (c == 'd' || c == 'f' || c == 'r' || c == 'q' || c == 'P'))
        o->run_only = name;
    switch (c) {
    case 's':
        o->seed = optarg;
        return 0;
    case 'd':
        o->db = optarg;
        return 0;
    case 'f':
        o->force = 1;
        return 0;
    case 'S':
        if (o->nsets == MAX_SETS) {
            fprintf(stderr, "meshara-sim: at most %d --set options\n", MAX_SETS);
            *code = EXIT_BAD_INPUT;
            return -1;
        }
        o->sets[o->nsets++] = optarg;
        return 0;
    case 'r':
        o->rev = optarg;
        return 0;
    case 'q':
        o->quiet = 1;
        return 0;
    case 'P':
        o->progress = 0;
        return 0;
    case 'h':
        fputs(o->is_run ? USAGE_RUN : USAGE_CHECK, stdout);
        *code = 0;
        return -1;
    case ':':
        fprintf(stderr, "meshara-sim: %s: option '%s' needs a value (meshara-sim %s --help)\n",
                argv[0], argv[optind - 1], argv[0]);
        *code = EXIT_BAD_INPUT;
        return -1;
    default:
        fprintf(stderr, "meshara-sim: %s: unknown option '%s' (meshara-sim %s --help)\n", argv[0],
                argv[optind - 1], argv[0]);
        *code = EXIT_BAD_INPUT;
        return -1;
    }
}

/* argv[0] is the command ("run" or "check"); options and the one FILE may come in any order.
 * 0 when o is ready; else the exit code (+1, so 0 stays "go on"). */
static int parse(int argc, char **argv, cli *o)
{
    static const struct option longopts[] = {
        {"seed", required_argument, NULL, 's'},
        {"db", required_argument, NULL, 'd'},
        {"force", no_argument, NULL, 'f'},
        {"set", required_argument, NULL, 'S'},
        {"rev", required_argument, NULL, 'r'},
        {"quiet", no_argument, NULL, 'q'},
        {"no-progress", no_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = argv[0];
    o->is_run = !strcmp(cmd, "run");
    o->rev = getenv("MESHARA_GIT_REV");
    o->progress = isatty(STDERR_FILENO);
    optind = 1;
    opterr = 0; /* our messages name the command */
    int c, code = 0, li = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, &li)) != -1)
        if (take_opt(o, c, longopts[li].name, argv, &code) < 0)
            return code + 1;
    if (!o->is_run && o->run_only) {
        fprintf(stderr,
                "meshara-sim: check does not take --%s (only --seed and --set: it runs and "
                "writes nothing)\n",
                o->run_only);
        return EXIT_BAD_INPUT + 1;
    }
    if (optind >= argc) {
        fprintf(stderr, "meshara-sim: %s needs a scenario file (meshara-sim %s --help)\n", cmd,
                cmd);
        return EXIT_BAD_INPUT + 1;
    }
    if (optind + 1 < argc) {
        fprintf(stderr, "meshara-sim: unexpected argument '%s' (one scenario file at a time)\n",
                argv[optind + 1]);
        return EXIT_BAD_INPUT + 1;
    }
    o->file = argv[optind];
    return 0;
}

/* Load, apply the overrides, and check what the runner can build: the one validation `check`
 * and `run` share. NULL (with the message printed and *code set) on failure. */
static sim_scenario *load(const cli *o, int *code)
{
    char err[SIM_SCN_ERR_MAX];
    sim_scenario *scn = NULL;
    int rc = sim_scenario_load(&scn, o->file, err, sizeof err);
    for (size_t i = 0; i < o->nsets && rc == MESH_OK; i++)
        rc = sim_scenario_set_arg(scn, o->sets[i], err, sizeof err);
    if (rc == MESH_OK && o->seed)
        rc = sim_scenario_set(scn, "seed", o->seed, err, sizeof err);
    if (rc == MESH_OK)
        rc = sim_run_check(scn, err, sizeof err);
    if (rc == MESH_OK)
        return scn;
    fprintf(stderr, "meshara-sim: %s\n", err);
    sim_scenario_free(scn);
    *code = rc == MESH_ERR_NOMEM ? EXIT_RUN_FAILED : EXIT_BAD_INPUT;
    return NULL;
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

/* Set by SIGINT/SIGTERM: the run stops at its next slice and its results say `interrupted`.
 * The handler is reset after one signal, so a second Ctrl-C kills at once. */
static volatile sig_atomic_t g_stop;

static void on_stop_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = (int)SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static int cmd_run(const cli *o, sim_scenario *scn)
{
    char dbbuf[4096];
    const char *db = o->db;
    if (!db) {
        if (mkdir_p("results/out") != 0) {
            fprintf(stderr, "meshara-sim: cannot create results/out: %s\n", strerror(errno));
            return EXIT_RUN_FAILED;
        }
        snprintf(dbbuf, sizeof dbbuf, "results/out/%s-seed%llu.db", scn->name,
                 (unsigned long long)scn->seed);
        db = dbbuf;
    }
    sim_run_opts opts = {.db_path = db,
                         .force = o->force,
                         .git_rev = o->rev,
                         .progress = o->progress,
                         .quiet = o->quiet,
                         .stop = &g_stop};
    sim_run_result res = {0};
    catch_stop_signals();
    char rerr[1024];
    int rc = sim_run(scn, &opts, &res, rerr, sizeof rerr);
    if (rc == MESH_ERR_EXISTS) {
        fprintf(stderr, "meshara-sim: %s (hint: choose another --db, or add --force)\n", rerr);
        return EXIT_BAD_INPUT;
    }
    if (rc == MESH_ERR_STATE && g_stop) {
        fprintf(stderr, "meshara-sim: %s; %s says so (status 'interrupted')\n", rerr, db);
        return EXIT_RUN_FAILED;
    }
    if (rc != MESH_OK) {
        fprintf(stderr, "meshara-sim: %s\n", rerr);
        return EXIT_RUN_FAILED;
    }
    printf("results: %s (%.1f s wall)\n", db, res.wall_s);
    if (res.expects_failed) {
        fprintf(stderr, "meshara-sim: %zu expectation(s) not met\n", res.expects_failed);
        return EXIT_EXPECT;
    }
    return 0;
}

static int cmd_dump(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(USAGE_DUMP, stdout);
        return 0;
    }
    if (argc != 2) {
        fputs(USAGE_DUMP, stderr);
        return EXIT_BAD_INPUT;
    }
    char err[512];
    int rc = sim_results_dump_deterministic(argv[1], stdout, err, sizeof err);
    if (rc != MESH_OK)
        fprintf(stderr, "meshara-sim: cannot dump %s\n", err);
    return rc == MESH_OK ? 0 : rc == MESH_ERR_IO ? EXIT_RUN_FAILED : EXIT_BAD_INPUT;
}

static int unknown_command(const char *word)
{
    static const char *const COMMANDS[] = {"run", "check", "dump"};
    const char *near = sim_scn_nearest(word, COMMANDS, 3);
    char hint[64] = "";
    if (near)
        snprintf(hint, sizeof hint, "did you mean '%s'? ", near);
    fprintf(stderr,
            "meshara-sim: unknown command '%s' (%scommands: run, check, dump; see "
            "meshara-sim --help)\n",
            word, hint);
    return EXIT_BAD_INPUT;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_BAD_INPUT;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("%s\n", sim_version());
        return 0;
    }
    if (!strcmp(cmd, "dump"))
        return cmd_dump(argc - 1, argv + 1);
    if (strcmp(cmd, "run") && strcmp(cmd, "check"))
        return unknown_command(cmd);
    cli o = {0};
    int code = parse(argc - 1, argv + 1, &o);
    if (code)
        return code - 1;
    sim_scenario *scn = load(&o, &code);
    if (!scn)
        return code;
    if (o.is_run) {
        code = cmd_run(&o, scn);
    } else {
        printf("%s: ok (%s: %u nodes in %zu groups, %zu LANs, %zu censors, %zu events, "
               "%zu traffic patterns, %zu expectations)\n",
               o.file, scn->name, scn->node_count, scn->group_count, scn->lan_count,
               scn->censor_count, scn->event_count, scn->traffic_count, scn->expect_count);
        code = 0;
    }
    sim_scenario_free(scn);
    return code;
}
