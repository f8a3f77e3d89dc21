/* bench_sched.c — scheduler throughput in the "hold" model: 1,000,000 events stay pending
 * while each processed event schedules one successor at a random future time (delays
 * spread over 0..10 ms virtual, like packet hops). Prints one line:
 *     BENCH sched_events_per_s <n>
 * The wall clock is read here only to time the loop (this is not simulation code). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "sim/rng.h"
#include "sim/sched.h"

enum { BENCH_PENDING = 1000000, BENCH_EVENTS = 10000000, BENCH_MAX_DELAY_NS = 10000000 };

typedef struct bench {
    sim_sched *s;
    sim_rng rng;
} bench;

static void hold(void *ctx, void *arg)
{
    bench *b = ctx;
    mesh_time d = sim_rng_below(&b->rng, BENCH_MAX_DELAY_NS);
    if (sim_sched_after(b->s, d, SIM_EV_USER, 1, hold, b, arg, NULL) != MESH_OK)
        abort();
}

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(void)
{
    bench b;
    if (sim_sched_new(&b.s) != MESH_OK)
        return 1;
    sim_rng_seed(&b.rng, 1);
    for (int i = 0; i < BENCH_PENDING; i++)
        if (sim_sched_at(b.s, sim_rng_below(&b.rng, BENCH_MAX_DELAY_NS), SIM_EV_USER, 1, hold, &b,
                         NULL, NULL) != MESH_OK)
            return 1;
    sim_sched_set_event_cap(b.s, BENCH_EVENTS);
    double t0 = wall();
    while (sim_sched_step(b.s) == 1)
        ;
    double t1 = wall();
    if (sim_sched_processed(b.s) != BENCH_EVENTS || sim_sched_pending(b.s) != BENCH_PENDING) {
        fprintf(stderr, "bench_sched: wrong counts\n");
        return 1;
    }
    printf("BENCH sched_events_per_s %.0f\n", (double)BENCH_EVENTS / (t1 - t0));
    sim_sched_free(b.s);
    return 0;
}
