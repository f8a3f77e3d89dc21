/* bench_nat.c — NAT traversal timings in the simulator (issue 10's "ci/bench nat" figures).
 *
 * STUN: how long a node needs to learn its public address, in round trips to the STUN server.
 * CLIENTS nodes, each on its own home LAN behind a NAT (full cone, restricted, port-restricted,
 * symmetric in turn), start one Binding transaction each at a time spread over the first
 * second, against one STUN server (the core responder, sim/stun_host.h, with its partner
 * address). Latencies are drawn per client from the seed: access link 1-20 ms, home site link
 * 1-10 ms, core 10-80 ms (a pure function of the pair), 1 % loss on the core (so some requests
 * are retransmitted, RTO 500 ms); the server's access link is 2 ms. Each client's RTT is what
 * the link model gives, 2 x (access + site + core + server access); a client's figure is the
 * time from its start to its answer, in those RTTs. Prints:
 *     BENCH stun_address_rtts <p50 over UDP> ratio=<goal 2 / that>
 *     BENCH stun_address_rtts_p99 <p99 over UDP: the retransmitted ones>
 *     BENCH stun_tcp_address_rtts <p50 over TCP: connect + request> ratio=<goal 2 / that>
 * (ratio >= 1 means the goal, "STUN address known p50 <= 2 RTT to the server", is met).
 * Everything is virtual time: the figures are the same on any machine for a given seed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/stun_client.h"
#include "sim/driver.h"
#include "sim/nat.h"
#include "sim/rng.h"
#include "sim/stun_host.h"

#define MS MESH_NS_PER_MS
enum { CLIENTS = 1000, SEED = 7 };
#define SERVER_ACCESS (2 * MS)
#define CORE_LOSS 0.01

typedef struct client {
    struct bench *b;
    mesh_time rtt, start, took;
    int status, done;
    mesh_stun_client *c;
    sim_driver *d;
    mesh_env env;
} client;

typedef struct bench {
    sim_world *w;
    sim_nat *nats[CLIENTS];
    client cl[CLIENTS];
    int tcp;
} bench;

/* The core's one-way latency between two sites: 10-80 ms, symmetric, from the pair alone. */
static mesh_time core_latency(void *ud, uint64_t a, uint64_t b)
{
    (void)ud;
    uint64_t lo = a < b ? a : b, hi = a < b ? b : a;
    sim_rng r;
    sim_rng_derive(&r, SEED, lo * 1000003ULL + hi);
    return (10 + sim_rng_below(&r, 71)) * MS;
}

static void on_result(void *ud, const mesh_stun_result *r)
{
    client *c = ud;
    c->done = 1;
    c->status = r->status;
    c->took = r->rtt;
}

static void start_ev(void *ctx, void *arg)
{
    (void)ctx;
    client *c = arg;
    mesh_addr server = mesh_addr_v4(SIM_IP4(198, 51, 100, 1), SIM_STUN_PORT);
    int rc = c->b->tcp ? mesh_stun_client_binding_tcp(c->c, &server, NULL, on_result, c)
                       : mesh_stun_client_binding(c->c, &server, 0, on_result, c);
    if (rc != MESH_OK) {
        c->done = 1;
        c->status = rc;
    }
}

static int build(bench *b, sim_stun_host **srv)
{
    static const sim_nat_cfg KINDS[4] = {
        {.mapping = SIM_NAT_ENDPOINT_INDEPENDENT, .filtering = SIM_NAT_ENDPOINT_INDEPENDENT},
        {.mapping = SIM_NAT_ENDPOINT_INDEPENDENT, .filtering = SIM_NAT_ADDRESS_DEPENDENT},
        {.mapping = SIM_NAT_ENDPOINT_INDEPENDENT, .filtering = SIM_NAT_ADDRESS_PORT_DEPENDENT},
        {.mapping = SIM_NAT_ADDRESS_PORT_DEPENDENT, .filtering = SIM_NAT_ADDRESS_PORT_DEPENDENT},
    };
    if (sim_world_new(&b->w, SEED, NULL) != MESH_OK)
        return 1;
    sim_net *net = sim_world_net(b->w);
    sim_net_set_core(net, &(sim_link_cfg){.loss = CORE_LOSS}, core_latency, NULL);
    sim_link_cfg sa = {.latency = SERVER_ACCESS};
    sim_host *s1, *s2;
    sim_host_cfg h1 = {"stun", SIM_IP4(198, 51, 100, 1), NULL, sa, sa};
    sim_host_cfg h2 = {"stun-alt", SIM_IP4(198, 51, 100, 2), NULL, sa, sa};
    if (sim_net_add_host(net, &h1, &s1) || sim_net_add_host(net, &h2, &s2) ||
        sim_stun_host_new(srv, b->w, s1, s2))
        return 1;
    sim_rng rng;
    sim_rng_derive(&rng, SEED, 1);
    for (int i = 0; i < CLIENTS; i++) {
        client *c = &b->cl[i];
        c->b = b;
        char name[32];
        snprintf(name, sizeof name, "home%d", i);
        sim_link_cfg site = {.latency = (1 + sim_rng_below(&rng, 10)) * MS};
        sim_link_cfg acc = {.latency = (1 + sim_rng_below(&rng, 20)) * MS};
        sim_lan_cfg lc = {name, site, site, SIM_IP4(100, 0, 0, 0) + (uint32_t)i + 1, 1};
        sim_lan *lan;
        sim_host *h;
        sim_host_cfg hc = {name, SIM_IP4(10, 0, 0, 2), NULL, acc, acc};
        if (sim_net_add_lan(net, &lc, &lan) || sim_nat_new(&b->nats[i], net, lan, &KINDS[i % 4]))
            return 1;
        hc.lan = lan;
        if (sim_net_add_host(net, &hc, &h) || sim_driver_new(&c->d, b->w, h))
            return 1;
        c->rtt = 2 * (acc.latency + site.latency +
                      core_latency(NULL, sim_lan_id(lan), sim_host_id(s1) | SIM_NET_ATTACH_HOST) +
                      SERVER_ACCESS);
        c->env = sim_driver_env(c->d);
        mesh_stun_client_cfg cfg;
        mesh_stun_client_cfg_default(&cfg);
        cfg.udp = !b->tcp;
        if (mesh_stun_client_new(&c->c, &c->env, &cfg) != MESH_OK)
            return 1;
        c->start = sim_rng_below(&rng, MESH_NS_PER_S);
        if (sim_sched_at(sim_world_sched(b->w), c->start, 0, (uint64_t)i, start_ev, b, c, NULL))
            return 1;
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Run one transport; returns 0 and the p50 and p99 in RTTs. */
static int run(int tcp, double *p50, double *p99)
{
    bench *b = calloc(1, sizeof *b);
    sim_stun_host *srv = NULL;
    if (!b)
        return 1;
    b->tcp = tcp;
    int rc = build(b, &srv);
    if (rc == 0)
        rc = sim_sched_run_until(sim_world_sched(b->w), 120 * MESH_NS_PER_S) != MESH_OK;
    static double v[CLIENTS];
    int n = 0;
    for (int i = 0; i < CLIENTS && rc == 0; i++) {
        client *c = &b->cl[i];
        if (!c->done || c->status != MESH_OK) {
            fprintf(stderr, "bench_nat: client %d: %s\n", i,
                    c->done ? mesh_strerror(c->status) : "no answer");
            rc = 1;
            break;
        }
        v[n++] = (double)c->took / (double)c->rtt;
    }
    for (int i = 0; i < CLIENTS; i++) {
        mesh_stun_client_free(b->cl[i].c);
        sim_driver_free(b->cl[i].d);
    }
    sim_stun_host_free(srv);
    for (int i = 0; i < CLIENTS; i++)
        sim_nat_free(b->nats[i]);
    sim_world_free(b->w);
    free(b);
    if (rc)
        return rc;
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    *p50 = v[n / 2];
    *p99 = v[(n * 99) / 100];
    return 0;
}

int main(void)
{
    double udp50, udp99, tcp50, tcp99;
    if (run(0, &udp50, &udp99) || run(1, &tcp50, &tcp99))
        return 1;
    printf("BENCH stun_address_rtts %.2f ratio=%.2f\n", udp50, 2.0 / udp50);
    printf("BENCH stun_address_rtts_p99 %.2f\n", udp99);
    printf("BENCH stun_tcp_address_rtts %.2f ratio=%.2f\n", tcp50, 2.0 / tcp50);
    return 0;
}
