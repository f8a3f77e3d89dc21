/* bench_mdns.c — the simulator's mDNS on one LAN of N hosts (sim/mdns.h).
 *
 * Every host publishes _meshara._tcp and browses it, joining at a random time in the first
 * 60 s (seeded); the run lasts 180 s of virtual time. Printed per N: how long after a
 * service's publish() each other host present saw it (p50 / p95 / max), datagrams sent,
 * events processed and the wall time the simulation took.
 *
 * Usage: bench_mdns [N...]   (default 10 50 200) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim/driver.h"

#define SEC MESH_NS_PER_S
#define MS MESH_NS_PER_MS

typedef struct bhost {
    sim_driver *d;
    mesh_env env;
    mesh_time join;
    struct bench *b;
} bhost;

typedef struct bench {
    bhost *h;
    int n;
    mesh_time *lat; /* publish → found, for pairs where the browser was already there */
    size_t nlat, cap;
} bench;

static void on_found(const mesh_mdns_found *f, int removed, void *ud)
{
    bhost *me = ud;
    bench *b = me->b;
    int j = atoi(f->name + strlen("bench-"));
    if (removed || j < 0 || j >= b->n)
        return;
    mesh_time now = mesh_env_now(&me->env);
    mesh_time since = b->h[j].join > me->join ? b->h[j].join : me->join;
    if (b->nlat < b->cap)
        b->lat[b->nlat++] = now - since;
}

static void join(void *ctx, void *arg)
{
    (void)arg;
    bhost *h = ctx;
    char name[32];
    snprintf(name, sizeof name, "bench-%d", (int)(h - h->b->h));
    const char *txt[] = {"pk=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                         NULL};
    h->env.ops->mdns->publish(h->env.obj, name, "_meshara._tcp", 4000, txt);
    h->env.ops->mdns->browse(h->env.obj, "_meshara._tcp", on_found, h);
}

static int cmp(const void *a, const void *b)
{
    mesh_time x = *(const mesh_time *)a, y = *(const mesh_time *)b;
    return x < y ? -1 : x > y;
}

static int run(int n)
{
    sim_world *w;
    if (sim_world_new(&w, 42, NULL) != MESH_OK)
        return 1;
    sim_net *net = sim_world_net(w);
    sim_lan *lan;
    sim_net_add_lan(net, &(sim_lan_cfg){.name = "lan"}, &lan);
    sim_link_cfg link = {.latency = 200 * MESH_NS_PER_US, .rate_bps = 100000000ULL};
    bench b = {.n = n, .cap = (size_t)n * n};
    b.h = calloc((size_t)n, sizeof *b.h);
    b.lat = calloc(b.cap, sizeof *b.lat);
    if (!b.h || !b.lat)
        return 1;
    sim_rng rng;
    sim_rng_seed(&rng, 42);
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "h%d", i);
        sim_host *h;
        sim_host_cfg hc = {name, SIM_IP4(10, 0, i / 250, i % 250 + 1), lan, link, link};
        if (sim_net_add_host(net, &hc, &h) != MESH_OK || sim_driver_new(&b.h[i].d, w, h) ||
            sim_driver_enable_mdns(b.h[i].d))
            return 1;
        b.h[i].env = sim_driver_env(b.h[i].d);
        b.h[i].b = &b;
        b.h[i].join = sim_rng_below(&rng, 60 * SEC);
        sim_sched_at(sim_world_sched(w), b.h[i].join, SIM_EV_USER, (uint64_t)i, join, &b.h[i], NULL,
                     NULL);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sim_sched_run_until(sim_world_sched(w), 180 * SEC);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    uint64_t sent = 0;
    for (int i = 0; i < n; i++)
        sent += sim_mdns_get_stats(sim_driver_mdns(b.h[i].d)).sent;
    qsort(b.lat, b.nlat, sizeof *b.lat, cmp);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("mdns N=%-4d found %zu/%d pairs  publish->found p50 %.0f ms  p95 %.0f ms  max %.0f ms"
           "  datagrams %llu  events %llu  wall %.2f s\n",
           n, b.nlat, n * n, b.nlat ? (double)b.lat[b.nlat / 2] / MS : 0,
           b.nlat ? (double)b.lat[b.nlat * 95 / 100] / MS : 0,
           b.nlat ? (double)b.lat[b.nlat - 1] / MS : 0, (unsigned long long)sent,
           (unsigned long long)sim_sched_processed(sim_world_sched(w)), wall);
    for (int i = 0; i < n; i++)
        sim_driver_free(b.h[i].d);
    sim_world_free(w);
    free(b.h);
    free(b.lat);
    return 0;
}

int main(int argc, char **argv)
{
    static const int def[] = {10, 50, 200};
    int rc = 0;
    if (argc > 1)
        for (int i = 1; i < argc; i++)
            rc |= run(atoi(argv[i]));
    else
        for (size_t i = 0; i < sizeof def / sizeof def[0]; i++)
            rc |= run(def[i]);
    return rc;
}
