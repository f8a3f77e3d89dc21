/* bench_scenario.c — whole-simulation speed: a generated scenario of N nodes (default 1,000;
 * argv[1] overrides) running the real node code (TLS 1.3 sessions, DHT, pool) with traffic,
 * run by the same runner as meshara-sim, without a results database. Prints
 *     BENCH sim_nodes_<N>_wall_s <seconds>
 *     BENCH sim_nodes_<N>_speed <virtual seconds per wall second> ratio=<same>
 *     BENCH sim_nodes_<N>_events_per_s <scheduler events per wall second>
 * The scenario: 5 bootstrap nodes and N nodes on the internet (20-120 ms per pair), joining
 * over the first 30 s; every node sends a 2 KiB message by key to a random node every 30 s
 * for 2 minutes of virtual time (each send: DHT lookup, authenticated session, ack). */
#include <stdio.h>
#include <stdlib.h>

#include "sim/runner.h"
#include "sim/scenario.h"

int main(int argc, char **argv)
{
    unsigned n = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 1000;
    if (n < 2 || n > SIM_SCN_MAX_NODES) {
        fprintf(stderr, "usage: bench_scenario [NODES 2..%d]\n", SIM_SCN_MAX_NODES);
        return 2;
    }
    char yaml[1024];
    int len = snprintf(yaml, sizeof yaml,
                       "name: bench-%u\nseed: 1\nduration: 2m\n"
                       "network:\n  core:\n    latency: {uniform: [20ms, 120ms]}\n"
                       "  access: {latency: 2ms, bandwidth: 100Mbit}\n"
                       "groups:\n  - {name: boot, count: 5, role: bootstrap, join: 0s}\n"
                       "  - {name: nodes, count: %u, join: {spread: [1s, 30s]}}\n"
                       "traffic:\n  - {name: t, from: nodes, to: nodes, size: 2KiB, "
                       "interval: 30s, start: 30s}\n",
                       n, n);
    char err[SIM_SCN_ERR_MAX];
    sim_scenario *scn = NULL;
    if (sim_scenario_load_mem(&scn, "bench", yaml, (size_t)len, err, sizeof err) != MESH_OK) {
        fprintf(stderr, "bench_scenario: %s\n", err);
        return 1;
    }
    FILE *devnull = fopen("/dev/null", "w");
    sim_run_opts opts = {.quiet = 1, .out = devnull};
    sim_run_result res = {0};
    char rerr[512];
    int rc = sim_run(scn, &opts, &res, rerr, sizeof rerr);
    if (devnull)
        fclose(devnull);
    double virt = (double)scn->duration / 1e9;
    sim_scenario_free(scn);
    if (rc != MESH_OK) {
        fprintf(stderr, "bench_scenario: %s\n", rerr);
        return 1;
    }
    printf("BENCH sim_nodes_%u_wall_s %.2f\n", n, res.wall_s);
    printf("BENCH sim_nodes_%u_speed %.2f ratio=%.2f\n", n, virt / res.wall_s, virt / res.wall_s);
    printf("BENCH sim_nodes_%u_events_per_s %.0f\n", n, (double)res.events / res.wall_s);
    return 0;
}
