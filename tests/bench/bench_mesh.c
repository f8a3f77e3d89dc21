/* bench_mesh.c — mesh formation versus size: N nodes (default 100 and 1,000; argv overrides,
 * e.g. `bench_mesh 100 1000 10000`) join through 5 bootstrap nodes over 60 s, every path
 * 2 x (1 ms access + 40 ms core) = an 84 ms round trip; each joined node then looks a random
 * live node up every minute. The simulator runs the real node code (TLS, sessions, DHT).
 * Prints, per N:
 *     BENCH mesh_<N>_join_p50_rtts <join time p50 / RTT> ratio=<goal 4 / that>
 *     BENCH mesh_<N>_lookup_hops_p95 <hops> ratio=<goal ceil(log20 N)+2 / that>
 *     BENCH mesh_<N>_lookup_success <ratio>
 *     BENCH mesh_<N>_wall_s <seconds>
 * (ratio >= 1 means the goal is met). MESH_BENCH_PROFILE=web|seed: the nodes' profile
 * (default web, the scenario default: curl's ClientHello, an ECDSA certificate, HTTP/2). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/runner.h"
#include "sim/scenario.h"

enum { BOOT = 5 };
#define RTT_MS 84.0

typedef struct figures {
    double join_p50_ms, hops_p95, lookup_ok;
} figures;

static void grab(void *ud, const char *name, double v)
{
    figures *f = ud;
    if (!strcmp(name, "join_time_p50_ms"))
        f->join_p50_ms = v;
    else if (!strcmp(name, "lookup_hops_p95"))
        f->hops_p95 = v;
    else if (!strcmp(name, "lookup_success_ratio"))
        f->lookup_ok = v;
}

static int run(unsigned n, const char *profile)
{
    char yaml[1024];
    int len = snprintf(yaml, sizeof yaml,
                       "name: bench-mesh-%u\nseed: 1\nduration: 3m\n"
                       "network:\n  core:\n    latency: 40ms\n"
                       "  access: {latency: 1ms, bandwidth: 100Mbit}\n"
                       "groups:\n  - {name: boot, count: %d, role: bootstrap, join: 0s,"
                       " profile: %s}\n"
                       "  - {name: nodes, count: %u, join: {spread: [1s, 60s]}, profile: %s}\n",
                       n, BOOT, profile, n, profile);
    char err[SIM_SCN_ERR_MAX];
    sim_scenario *scn = NULL;
    if (sim_scenario_load_mem(&scn, "bench", yaml, (size_t)len, err, sizeof err) != MESH_OK) {
        fprintf(stderr, "bench_mesh: %s\n", err);
        return 1;
    }
    FILE *devnull = fopen("/dev/null", "w");
    figures f = {NAN, NAN, NAN};
    sim_run_opts opts = {.quiet = 1, .out = devnull, .on_summary = grab, .summary_ud = &f};
    sim_run_result res = {0};
    char rerr[512];
    int rc = sim_run(scn, &opts, &res, rerr, sizeof rerr);
    if (devnull)
        fclose(devnull);
    sim_scenario_free(scn);
    if (rc != MESH_OK) {
        fprintf(stderr, "bench_mesh: %s\n", rerr);
        return 1;
    }
    double goal_hops = ceil(log((double)n + BOOT) / log(20.0)) + 2;
    double rtts = f.join_p50_ms / RTT_MS;
    printf("BENCH mesh_%u_join_p50_rtts %.2f ratio=%.2f\n", n, rtts, 4.0 / rtts);
    printf("BENCH mesh_%u_lookup_hops_p95 %.0f ratio=%.2f\n", n, f.hops_p95,
           goal_hops / (f.hops_p95 > 0 ? f.hops_p95 : 1));
    printf("BENCH mesh_%u_lookup_success %.3f\n", n, f.lookup_ok);
    printf("BENCH mesh_%u_wall_s %.1f\n", n, res.wall_s);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    static const unsigned dflt[] = {100, 1000};
    const char *profile = getenv("MESH_BENCH_PROFILE");
    if (!profile)
        profile = "web";
    if (strcmp(profile, "web") != 0 && strcmp(profile, "seed") != 0) {
        fprintf(stderr, "bench_mesh: MESH_BENCH_PROFILE: expected web or seed, got '%s'\n",
                profile);
        return 2;
    }
    printf("# profile %s\n", profile);
    int rc = 0;
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            rc |= run((unsigned)strtoul(argv[i], NULL, 10), profile);
    } else {
        for (size_t i = 0; i < sizeof dflt / sizeof dflt[0]; i++)
            rc |= run(dflt[i], profile);
    }
    return rc;
}
