/* bench_nat_portmap.c — port mapping to confirmed-reachable, in the simulator (issue 10's
 * "ci/bench nat" figure: p50 <= 1 s on a 20 ms LAN; the seed says 1-3 s).
 *
 * CLIENTS nodes, each alone on its home LAN behind its own router (port-restricted cone, so
 * nothing reaches it unasked), run the whole node (core/node.c): the join through BOOTS public
 * bootstrap nodes (each in its own /24, so their observations count apart), the core's port
 * mapping over the simulator driver's service (sim/driver_portmap.c: NAT-PMP first, then
 * UPnP IGD with its 2 s SSDP wait, as the real driver), and the dial-back that confirms the
 * mapping (node_reach.c). Every link is 5 ms one way and the core adds nothing, so every
 * host-to-host round trip is 20 ms (10 ms to the router). Clients start GAP apart so that the
 * bootstrap nodes' dial-back limits (4 dials at a time) do not queue them. A client's figure
 * is the time from mesh_node_start (when it asks its router) to the moment its node reports a
 * dial-back-confirmed address (on_reach). Prints:
 *     BENCH portmap_confirmed_s <p50, routers offering NAT-PMP and UPnP> ratio=<1 s / that>
 *     BENCH portmap_mapped_s <p50 of the mapping alone, same routers>
 *     BENCH portmap_confirmed_upnp_s <p50, routers offering UPnP only: the SSDP wait>
 * Everything is virtual time: the figures are the same on any machine for a given seed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meshara/meshara.h"
#include "sim/driver.h"
#include "sim/nat.h"

#define MS MESH_NS_PER_MS
enum { CLIENTS = 40, BOOTS = 3, SEED = 7, PORT = 7000 };
#define GAP (500 * MS)
#define LINK (5 * MS)

typedef struct peer {
    struct bench *b;
    sim_driver *d;
    mesh_env env;
    mesh_identity *id;
    mesh_node *n;
    sim_nat *nat;
    mesh_time start, mapped, confirmed;
} peer;

typedef struct bench {
    sim_world *w;
    peer boot[BOOTS];
    peer cl[CLIENTS];
    int upnp_only;
} bench;

static mesh_time now(const bench *b)
{
    return sim_sched_now(sim_world_sched(b->w));
}

static void on_reach(mesh_node *n, void *ud)
{
    peer *p = ud;
    mesh_node_stats st;
    mesh_node_get_stats(n, &st);
    if (!p->mapped && st.portmap_state == MESH_NODE_PORTMAP_MAPPED)
        p->mapped = now(p->b);
    if (!p->confirmed && st.dialback_confirmed.family != MESH_AF_NONE)
        p->confirmed = now(p->b);
}

static const mesh_node_cbs CBS = {.on_reach = on_reach};

static int node_new(bench *b, peer *p, sim_host *h, uint32_t ip, int client)
{
    p->b = b;
    if (sim_driver_new(&p->d, b->w, h) != MESH_OK)
        return 1;
    p->env = sim_driver_env(p->d);
    if (client && sim_driver_enable_portmap(p->d, p->nat) != MESH_OK)
        return 1;
    if (mesh_identity_generate(&p->id, &p->env) != MESH_OK)
        return 1;
    mesh_node_cfg cfg = {0};
    cfg.identity = p->id;
    cfg.listen = mesh_addr_v4(ip, PORT);
    cfg.advertise_none = client; /* nothing until a dial-back confirmed the mapping */
    for (int i = 0; client && i < BOOTS; i++) {
        cfg.bootstrap[i].addr = mesh_addr_v4(SIM_IP4(198, 51, 100 + i, 1), PORT);
        memcpy(cfg.bootstrap[i].key, mesh_identity_pubkey(b->boot[i].id), MESH_NODE_KEY_BYTES);
        cfg.n_bootstrap++;
    }
    return mesh_node_new(&p->n, &p->env, &cfg, &CBS, p) != MESH_OK;
}

static void start_ev(void *ctx, void *arg)
{
    bench *b = ctx;
    peer *p = arg;
    p->start = now(b);
    if (mesh_node_start(p->n) != MESH_OK)
        p->start = 0;
}

static int build(bench *b)
{
    if (sim_world_new(&b->w, SEED, NULL) != MESH_OK)
        return 1;
    sim_net *net = sim_world_net(b->w);
    sim_net_set_core(net, &(sim_link_cfg){0}, NULL, NULL);
    sim_link_cfg l = {.latency = LINK};
    for (int i = 0; i < BOOTS; i++) {
        char name[16];
        snprintf(name, sizeof name, "boot%d", i);
        uint32_t ip = SIM_IP4(198, 51, 100 + i, 1);
        sim_host_cfg hc = {name, ip, NULL, l, l};
        sim_host *h;
        if (sim_net_add_host(net, &hc, &h) || node_new(b, &b->boot[i], h, ip, 0) ||
            mesh_node_start(b->boot[i].n) != MESH_OK)
            return 1;
    }
    sim_nat_cfg nc = {.mapping = SIM_NAT_ENDPOINT_INDEPENDENT,
                      .filtering = SIM_NAT_ADDRESS_PORT_DEPENDENT,
                      .portmap = 1,
                      .natpmp = !b->upnp_only};
    for (int i = 0; i < CLIENTS; i++) {
        peer *p = &b->cl[i];
        char name[16];
        snprintf(name, sizeof name, "home%d", i);
        sim_lan_cfg lc = {name, {0}, {0}, SIM_IP4(203, 0, 113, 0) + (uint32_t)i + 1, 1};
        sim_lan *lan;
        sim_host *h;
        sim_host_cfg hc = {name, SIM_IP4(10, 0, 0, 2), NULL, l, l};
        if (sim_net_add_lan(net, &lc, &lan) || sim_nat_new(&p->nat, net, lan, &nc))
            return 1;
        hc.lan = lan;
        if (sim_net_add_host(net, &hc, &h) || node_new(b, p, h, SIM_IP4(10, 0, 0, 2), 1))
            return 1;
        if (sim_sched_at(sim_world_sched(b->w), MESH_NS_PER_S + (mesh_time)i * GAP, 0, (uint64_t)i,
                         start_ev, b, p, NULL))
            return 1;
    }
    return 0;
}

static void peer_free(peer *p)
{
    mesh_node_free(p->n);
    sim_driver_free(p->d);
    mesh_identity_free(p->id);
    sim_nat_free(p->nat);
}

static int cmp_time(const void *a, const void *b)
{
    mesh_time x = *(const mesh_time *)a, y = *(const mesh_time *)b;
    return x < y ? -1 : x > y;
}

/* One run; 0 and the p50s in seconds (mapping, confirmation), else 1. */
static int run(int upnp_only, double *mapped50, double *confirmed50)
{
    bench *b = calloc(1, sizeof *b);
    if (!b)
        return 1;
    b->upnp_only = upnp_only;
    int rc = build(b);
    if (rc == 0)
        rc = sim_sched_run_until(sim_world_sched(b->w),
                                 MESH_NS_PER_S + CLIENTS * GAP + 30 * MESH_NS_PER_S) != MESH_OK;
    static mesh_time m[CLIENTS], c[CLIENTS];
    for (int i = 0; i < CLIENTS && rc == 0; i++) {
        peer *p = &b->cl[i];
        if (!p->start || !p->mapped || !p->confirmed) {
            fprintf(stderr, "bench_nat_portmap: client %d: %s\n", i,
                    !p->start    ? "did not start"
                    : !p->mapped ? "no mapping"
                                 : "not confirmed");
            rc = 1;
            break;
        }
        m[i] = p->mapped - p->start;
        c[i] = p->confirmed - p->start;
    }
    for (int i = 0; i < CLIENTS; i++)
        peer_free(&b->cl[i]);
    for (int i = 0; i < BOOTS; i++)
        peer_free(&b->boot[i]);
    sim_world_free(b->w);
    free(b);
    if (rc)
        return rc;
    qsort(m, CLIENTS, sizeof m[0], cmp_time);
    qsort(c, CLIENTS, sizeof c[0], cmp_time);
    *mapped50 = (double)m[CLIENTS / 2] / MESH_NS_PER_S;
    *confirmed50 = (double)c[CLIENTS / 2] / MESH_NS_PER_S;
    return 0;
}

int main(void)
{
    double m, c, um, uc;
    if (run(0, &m, &c) || run(1, &um, &uc))
        return 1;
    printf("BENCH portmap_confirmed_s %.3f ratio=%.2f\n", c, 1.0 / c);
    printf("BENCH portmap_mapped_s %.3f\n", m);
    printf("BENCH portmap_confirmed_upnp_s %.3f\n", uc);
    return 0;
}
