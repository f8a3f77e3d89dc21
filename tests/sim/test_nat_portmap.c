/* test_nat_portmap.c — the NAT's port-mapping services (sim/nat.h) and the sim driver's env
 * portmap ops over them (sim/driver.h): NAT-PMP's public address and epoch, lifetimes cut and
 * expiring at exact times, renewal, deletion, restarts; UPnP and NAT-PMP sharing one table;
 * requests from outside the NAT's LAN refused; the driver's answers at the times a real
 * client's exchanges take, the double-NAT answer, superseded requests, release, limits.
 *
 * Topology (links ideal except the hosts' access links, 3 ms each way: LAN RTT 6 ms):
 *
 *   h 10.0.0.2 ─ home NAT 100.64.0.2 ─┐
 *   g 10.0.0.2 ─ gw NAT 203.0.113.2 ──┤               (gw: on the core)
 *                                      ├─ carrier NAT 203.0.113.1 ─ core ─ s 198.51.100.1
 *   c 100.64.0.9 (on the carrier) ─────┘
 */
#include "mesh_test.h"

#include <stdlib.h>
#include <string.h>

#include "sim/driver.h"

#define MS MESH_NS_PER_MS
#define SEC MESH_NS_PER_S
#define ACCESS (3 * MS)
#define RTT (2 * ACCESS)
#define PROC ((mesh_time)SIM_DRIVER_PORTMAP_PROC_MS * MS)
#define SSDP ((mesh_time)SIM_DRIVER_PORTMAP_SSDP_MS * MS)
#define INNER SIM_IP4(10, 0, 0, 2)
#define CGN_PUB SIM_IP4(203, 0, 113, 1)
#define GW_PUB SIM_IP4(203, 0, 113, 2)
#define HOME_WAN SIM_IP4(100, 64, 0, 2)
#define S_IP SIM_IP4(198, 51, 100, 1)

enum { PORT = 7000 };

typedef struct world {
    sim_world *w;
    sim_net *net;
    sim_lan *carrier, *home, *gwlan;
    sim_nat *cgn, *home_nat, *gw;
    sim_host *h, *g, *c, *s;
    sim_driver *dh, *dg, *dc;
} world;

static sim_host *add_host(world *w, const char *name, uint32_t ip, sim_lan *lan)
{
    sim_link_cfg l = {.latency = ACCESS};
    sim_host_cfg c = {name, ip, lan, l, l};
    sim_host *h = NULL;
    CU_ASSERT_EQUAL_FATAL(sim_net_add_host(w->net, &c, &h), MESH_OK);
    return h;
}

static sim_lan *add_lan(world *w, const char *name, uint32_t pub, sim_lan *up)
{
    sim_lan_cfg c = {name, {0}, {0}, pub, 1, up};
    sim_lan *l = NULL;
    CU_ASSERT_EQUAL_FATAL(sim_net_add_lan(w->net, &c, &l), MESH_OK);
    return l;
}

/* home: the home router's config (behind the carrier); gw: the router on the core. */
static void world_init(world *w, const sim_nat_cfg *home, const sim_nat_cfg *gw)
{
    memset(w, 0, sizeof *w);
    sim_tcp_cfg tc = {.connect_timeout = 2 * SEC};
    CU_ASSERT_EQUAL_FATAL(sim_world_new(&w->w, 9, &tc), MESH_OK);
    w->net = sim_world_net(w->w);
    w->carrier = add_lan(w, "carrier", CGN_PUB, NULL);
    w->home = add_lan(w, "home", HOME_WAN, w->carrier);
    w->gwlan = add_lan(w, "gwlan", GW_PUB, NULL);
    w->h = add_host(w, "h", INNER, w->home);
    w->g = add_host(w, "g", INNER, w->gwlan);
    w->c = add_host(w, "c", SIM_IP4(100, 64, 0, 9), w->carrier);
    w->s = add_host(w, "s", S_IP, NULL);
    CU_ASSERT_EQUAL_FATAL(sim_nat_new(&w->cgn, w->net, w->carrier, NULL), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_nat_new(&w->home_nat, w->net, w->home, home), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_nat_new(&w->gw, w->net, w->gwlan, gw), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_driver_new(&w->dh, w->w, w->h), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_driver_new(&w->dg, w->w, w->g), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_driver_new(&w->dc, w->w, w->c), MESH_OK);
}

static void world_free(world *w)
{
    sim_driver_free(w->dh);
    sim_driver_free(w->dg);
    sim_driver_free(w->dc);
    sim_nat_free(w->gw);
    sim_nat_free(w->home_nat);
    sim_nat_free(w->cgn);
    sim_world_free(w->w);
}

static mesh_time now(world *w)
{
    return sim_sched_now(sim_world_sched(w->w));
}

static void run_to(world *w, mesh_time t)
{
    CU_ASSERT_EQUAL(sim_sched_run_until(sim_world_sched(w->w), t), MESH_OK);
}

static void advance(world *w, mesh_time dt)
{
    run_to(w, now(w) + dt);
}

/* ---- the model ------------------------------------------------------------------------------ */

/* NAT-PMP on the router on the core: its public address with the epoch; a mapping on the
 * suggested port with the lifetime cut to pmp_max_lease_s, renewed on the same port, expiring
 * at its exact time; lifetime 0 deletes (nothing to delete is no error). */
static void test_pmp_lifetimes(void)
{
    world w;
    sim_nat_cfg gw = {.natpmp = 1, .pmp_max_lease_s = 600};
    world_init(&w, NULL, &gw);
    uint32_t ip = 0, epoch = 99;
    advance(&w, 5 * SEC);
    CU_ASSERT_EQUAL(sim_nat_pmp_external(w.gw, INNER, &ip, &epoch), MESH_OK);
    CU_ASSERT_EQUAL(ip, GW_PUB);
    CU_ASSERT_EQUAL(epoch, 5);
    mesh_addr in = mesh_addr_v4(INNER, PORT);
    sim_nat_pmp_answer a;
    CU_ASSERT_EQUAL(sim_nat_pmp_map(w.gw, SIM_PROTO_TCP, &in, 8000, 7200, &a), MESH_OK);
    mesh_addr want = mesh_addr_v4(GW_PUB, 8000);
    CU_ASSERT(mesh_addr_equal(&a.external, &want));
    CU_ASSERT_EQUAL(a.lifetime_s, 600);
    CU_ASSERT_EQUAL(a.epoch_s, 5);
    advance(&w, 300 * SEC);
    CU_ASSERT_EQUAL(sim_nat_pmp_map(w.gw, SIM_PROTO_TCP, &in, 0, 100, &a), MESH_OK);
    CU_ASSERT_EQUAL(a.external.port, 8000); /* renewed: the same port, whatever is suggested */
    CU_ASSERT_EQUAL(a.lifetime_s, 100);
    mesh_addr s = mesh_addr_v4(S_IP, 1), got;
    run_to(&w, 405 * SEC - 1);
    CU_ASSERT_EQUAL(sim_nat_lookup(w.gw, SIM_PROTO_TCP, &in, &s, &got), MESH_OK);
    run_to(&w, 405 * SEC);
    CU_ASSERT_EQUAL(sim_nat_lookup(w.gw, SIM_PROTO_TCP, &in, &s, &got), MESH_ERR_NOT_FOUND);
    /* delete: nothing there is fine; a live one goes */
    CU_ASSERT_EQUAL(sim_nat_pmp_map(w.gw, SIM_PROTO_TCP, &in, 0, 0, &a), MESH_OK);
    CU_ASSERT_EQUAL(a.external.port, 0);
    CU_ASSERT_EQUAL(sim_nat_pmp_map(w.gw, SIM_PROTO_UDP, &in, 0, 60, &a), MESH_OK);
    CU_ASSERT_EQUAL(a.external.port, PORT); /* suggested 0: the internal port */
    CU_ASSERT_EQUAL(sim_nat_pmp_map(w.gw, SIM_PROTO_UDP, &in, 0, 0, &a), MESH_OK);
    CU_ASSERT_EQUAL(a.lifetime_s, 0);
    CU_ASSERT_EQUAL(sim_nat_lookup(w.gw, SIM_PROTO_UDP, &in, &s, &got), MESH_ERR_NOT_FOUND);
    sim_nat_stats st = sim_nat_get_stats(w.gw);
    CU_ASSERT_EQUAL(st.portmaps_added, 2);
    CU_ASSERT_EQUAL(st.portmaps_released, 2); /* the expiry and the deletion */
    world_free(&w);
}

/* A restart loses every mapping but the static forwards and starts the epoch again. */
static void test_pmp_restart(void)
{
    world w;
    sim_nat_cfg gw = {.natpmp = 1, .portmap = 1};
    world_init(&w, NULL, &gw);
    advance(&w, 50 * SEC);
    mesh_addr in = mesh_addr_v4(INNER, PORT), in2 = mesh_addr_v4(INNER, PORT + 1), ext;
    sim_nat_pmp_answer a;
    CU_ASSERT_EQUAL(sim_nat_pmp_map(w.gw, SIM_PROTO_TCP, &in, 0, 3600, &a), MESH_OK);
    CU_ASSERT_EQUAL(sim_nat_add_static(w.gw, SIM_PROTO_TCP, &in2, 9001, NULL), MESH_OK);
    /* UPnP finds the entry NAT-PMP made (one table) */
    CU_ASSERT_EQUAL(sim_nat_portmap_request(w.gw, SIM_PROTO_TCP, &in, 0, &ext), MESH_OK);
    CU_ASSERT_EQUAL(ext.port, a.external.port);
    advance(&w, 10 * SEC);
    sim_nat_restart(w.gw);
    uint32_t ip, epoch = 99;
    CU_ASSERT_EQUAL(sim_nat_pmp_external(w.gw, INNER, &ip, &epoch), MESH_OK);
    CU_ASSERT_EQUAL(epoch, 0);
    mesh_addr s = mesh_addr_v4(S_IP, 1), got;
    CU_ASSERT_EQUAL(sim_nat_lookup(w.gw, SIM_PROTO_TCP, &in, &s, &got), MESH_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(sim_nat_lookup(w.gw, SIM_PROTO_TCP, &in2, &s, &got), MESH_OK);
    CU_ASSERT_EQUAL(got.port, 9001);
    sim_nat_stats st = sim_nat_get_stats(w.gw);
    CU_ASSERT_EQUAL(st.restarts, 1);
    CU_ASSERT_EQUAL(st.restart_losses, 1);
    CU_ASSERT_EQUAL(st.maps_live, 1);
    advance(&w, 3 * SEC);
    CU_ASSERT_EQUAL(sim_nat_pmp_external(w.gw, INNER, &ip, &epoch), MESH_OK);
    CU_ASSERT_EQUAL(epoch, 3);
    world_free(&w);
}

/* The services answer their own LAN only, and only when on; a home router behind the carrier
 * reports (and maps on) its private public address; the carrier's NAT offers nothing. */
static void test_services_scope(void)
{
    world w;
    sim_nat_cfg home = {.natpmp = 1, .portmap = 1};
    world_init(&w, &home, NULL);
    uint32_t ip;
    mesh_addr in = mesh_addr_v4(INNER, PORT), stranger = mesh_addr_v4(SIM_IP4(10, 0, 0, 3), PORT);
    mesh_addr ext;
    sim_nat_pmp_answer a;
    CU_ASSERT_EQUAL(sim_nat_pmp_external(w.home_nat, SIM_IP4(10, 0, 0, 3), &ip, NULL),
                    MESH_ERR_REFUSED);
    CU_ASSERT_EQUAL(sim_nat_pmp_map(w.home_nat, SIM_PROTO_TCP, &stranger, 0, 60, &a),
                    MESH_ERR_REFUSED);
    CU_ASSERT_EQUAL(sim_nat_portmap_request(w.home_nat, SIM_PROTO_TCP, &stranger, 60, &ext),
                    MESH_ERR_REFUSED);
    CU_ASSERT_EQUAL(sim_nat_pmp_external(w.home_nat, INNER, &ip, NULL), MESH_OK);
    CU_ASSERT_EQUAL(ip, HOME_WAN);
    CU_ASSERT_EQUAL(sim_nat_pmp_map(w.home_nat, SIM_PROTO_TCP, &in, 0, 60, &a), MESH_OK);
    mesh_addr want = mesh_addr_v4(HOME_WAN, PORT);
    CU_ASSERT(mesh_addr_equal(&a.external, &want)); /* 100.64.0.2: a double NAT */
    mesh_addr wan = mesh_addr_v4(HOME_WAN, PORT);
    CU_ASSERT_EQUAL(sim_nat_pmp_map(w.cgn, SIM_PROTO_TCP, &wan, 0, 60, &a), MESH_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(sim_nat_portmap_request(w.cgn, SIM_PROTO_TCP, &wan, 60, &ext),
                    MESH_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(sim_nat_services(w.home_nat), SIM_NAT_SVC_UPNP | SIM_NAT_SVC_NATPMP);
    CU_ASSERT_EQUAL(sim_nat_services(w.cgn), 0);
    world_free(&w);
}

/* ---- the driver's env ops ------------------------------------------------------------------- */

typedef struct answer {
    world *w;
    int n, result;
    mesh_addr ext;
    uint32_t lease;
    mesh_time at;
} answer;

static int g_in_request;

static void on_answer(int result, const mesh_addr *ext, uint32_t lease_s, void *ud)
{
    answer *a = ud;
    CU_ASSERT_EQUAL(g_in_request, 0); /* env rule 1 */
    a->n++;
    a->result = result;
    a->lease = lease_s;
    a->at = now(a->w);
    CU_ASSERT((result == MESH_OK) == (ext != NULL));
    CU_ASSERT(result == MESH_OK || lease_s == 0);
    if (ext)
        a->ext = *ext;
}

static int request(sim_driver *d, uint16_t port, uint32_t lease, answer *a)
{
    mesh_env e = sim_driver_env(d);
    g_in_request = 1;
    int rc = e.ops->portmap->request(e.obj, 1, port, lease, on_answer, a);
    g_in_request = 0;
    return rc;
}

static void count_accept(sim_tcp_listener *l, sim_tcp_conn *c, const mesh_addr *peer, void *ud)
{
    (void)l;
    (void)peer;
    ++*(int *)ud;
    sim_tcp_set_cbs(c, NULL, NULL); /* left open: sim_world_free frees it */
}

/* NAT-PMP: two exchanges of one LAN round trip and the gateway's processing each; the mapping
 * then carries a connection from the core to the host's listener. */
static void test_driver_natpmp(void)
{
    world w;
    sim_nat_cfg gw = {.natpmp = 1, .portmap = 1};
    world_init(&w, NULL, &gw);
    mesh_env e = sim_driver_env(w.dg);
    CU_ASSERT_PTR_NULL(e.ops->portmap);
    CU_ASSERT_EQUAL(sim_driver_enable_portmap(w.dg, w.gw), MESH_OK);
    CU_ASSERT_PTR_NOT_NULL(e.ops->portmap); /* envs handed out earlier see it */
    CU_ASSERT_EQUAL(sim_driver_enable_portmap(w.dg, w.gw), MESH_ERR_EXISTS);
    CU_ASSERT_EQUAL(sim_driver_enable_portmap(w.dh, w.gw), MESH_ERR_INVAL); /* not h's LAN */
    answer a = {.w = &w};
    advance(&w, SEC);
    CU_ASSERT_EQUAL(request(w.dg, PORT, 0, &a), MESH_OK);
    CU_ASSERT_EQUAL(a.n, 0);
    run_to(&w, 10 * SEC);
    CU_ASSERT_EQUAL(a.n, 1);
    CU_ASSERT_EQUAL(a.result, MESH_OK);
    CU_ASSERT_EQUAL(a.at, SEC + 2 * (RTT + PROC));
    mesh_addr want = mesh_addr_v4(GW_PUB, PORT);
    CU_ASSERT(mesh_addr_equal(&a.ext, &want));
    CU_ASSERT_EQUAL(a.lease, SIM_NAT_PMP_LEASE_S); /* 0 asked: NAT-PMP's two hours granted */
    /* a connection from the core comes in through it */
    sim_tcp *tcp = sim_world_tcp(w.w);
    sim_tcp_listener *l;
    int accepted = 0;
    CU_ASSERT_EQUAL(sim_tcp_listen(tcp, w.g, PORT, count_accept, &accepted, &l), MESH_OK);
    sim_tcp_conn *conn;
    CU_ASSERT_EQUAL(sim_tcp_connect(tcp, w.s, &a.ext, NULL, NULL, &conn), MESH_OK);
    advance(&w, SEC);
    CU_ASSERT_EQUAL(accepted, 1);
    /* the mapping is NAT-PMP's: a lease (RFC 6886's two hours for "no expiry"), not forever */
    mesh_addr in = mesh_addr_v4(INNER, PORT), s = mesh_addr_v4(S_IP, 1), got;
    run_to(&w, a.at + (mesh_time)SIM_NAT_PMP_LEASE_S * SEC - 1);
    CU_ASSERT_EQUAL(sim_nat_lookup(w.gw, SIM_PROTO_TCP, &in, &s, &got), MESH_OK);
    run_to(&w, a.at + (mesh_time)SIM_NAT_PMP_LEASE_S * SEC);
    CU_ASSERT_EQUAL(sim_nat_lookup(w.gw, SIM_PROTO_TCP, &in, &s, &got), MESH_ERR_NOT_FOUND);
    world_free(&w);
}

/* UPnP only: NAT-PMP's port unreachable (one RTT), the SSDP wait, four HTTP exchanges. A
 * permanent lease stays. */
static void test_driver_upnp(void)
{
    world w;
    sim_nat_cfg gw = {.portmap = 1};
    world_init(&w, NULL, &gw);
    CU_ASSERT_EQUAL(sim_driver_enable_portmap(w.dg, w.gw), MESH_OK);
    answer a = {.w = &w};
    CU_ASSERT_EQUAL(request(w.dg, PORT, 0, &a), MESH_OK);
    run_to(&w, 10 * SEC);
    CU_ASSERT_EQUAL(a.result, MESH_OK);
    CU_ASSERT_EQUAL(a.lease, 0); /* permanent */
    CU_ASSERT_EQUAL(a.at, RTT + SSDP + 4 * (2 * RTT + PROC));
    mesh_addr in = mesh_addr_v4(INNER, PORT), s = mesh_addr_v4(S_IP, 1), got;
    run_to(&w, 30 * 24 * 3600 * SEC);
    CU_ASSERT_EQUAL(sim_nat_lookup(w.gw, SIM_PROTO_TCP, &in, &s, &got), MESH_OK);
    /* release: at once, and a second time there is nothing */
    mesh_env e = sim_driver_env(w.dg);
    CU_ASSERT_EQUAL(e.ops->portmap->release(e.obj, 1, PORT), MESH_OK);
    CU_ASSERT_EQUAL(sim_nat_lookup(w.gw, SIM_PROTO_TCP, &in, &s, &got), MESH_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(e.ops->portmap->release(e.obj, 1, PORT), MESH_ERR_NOT_FOUND);
    world_free(&w);
}

/* A home router behind the carrier: its external address is the carrier's inside. NAT-PMP
 * says so after the first exchange, UPnP after GetExternalIPAddress: MESH_ERR_UNREACHABLE, no
 * mapping made. No service at all, or no gateway: MESH_ERR_UNSUPPORTED after the SSDP wait. */
static void test_driver_double_nat_and_none(void)
{
    for (int method = 0; method < 2; method++) {
        world w;
        sim_nat_cfg home = {.natpmp = method == 0, .portmap = method == 1};
        world_init(&w, &home, NULL);
        CU_ASSERT_EQUAL(sim_driver_enable_portmap(w.dh, w.home_nat), MESH_OK);
        CU_ASSERT_EQUAL(sim_driver_enable_portmap(w.dg, w.gw), MESH_OK); /* gw: no service */
        CU_ASSERT_EQUAL(sim_driver_enable_portmap(w.dc, NULL), MESH_OK); /* no gateway */
        answer a = {.w = &w}, b = {.w = &w}, c = {.w = &w};
        CU_ASSERT_EQUAL(request(w.dh, PORT, 3600, &a), MESH_OK);
        CU_ASSERT_EQUAL(request(w.dg, PORT, 3600, &b), MESH_OK);
        CU_ASSERT_EQUAL(request(w.dc, PORT, 3600, &c), MESH_OK);
        run_to(&w, 10 * SEC);
        CU_ASSERT_EQUAL(a.result, MESH_ERR_UNREACHABLE);
        CU_ASSERT_EQUAL(a.at, method == 0 ? RTT + PROC : RTT + SSDP + 2 * (2 * RTT + PROC));
        CU_ASSERT_EQUAL(sim_nat_get_stats(w.home_nat).portmaps_added, 0);
        CU_ASSERT_EQUAL(b.result, MESH_ERR_UNSUPPORTED);
        CU_ASSERT_EQUAL(b.at, RTT + SSDP);
        CU_ASSERT_EQUAL(c.result, MESH_ERR_UNSUPPORTED);
        CU_ASSERT_EQUAL(c.n + b.n + a.n, 3);
        world_free(&w);
    }
}

/* A second request for the same port supersedes the first (whose callback never runs); a
 * release cancels what is in flight; the table holds SIM_DRIVER_PORTMAP_MAX ports; bad input;
 * freeing the driver with an answer due makes no callback. */
static void test_driver_requests(void)
{
    world w;
    sim_nat_cfg gw = {.natpmp = 1};
    world_init(&w, NULL, &gw);
    CU_ASSERT_EQUAL(sim_driver_enable_portmap(w.dg, w.gw), MESH_OK);
    mesh_env e = sim_driver_env(w.dg);
    answer a = {.w = &w}, b = {.w = &w}, c = {.w = &w};
    CU_ASSERT_EQUAL(request(w.dg, PORT, 60, &a), MESH_OK);
    advance(&w, 5 * MS);
    CU_ASSERT_EQUAL(request(w.dg, PORT, 60, &b), MESH_OK);
    CU_ASSERT_EQUAL(request(w.dg, PORT + 1, 60, &c), MESH_OK);
    CU_ASSERT_EQUAL(e.ops->portmap->release(e.obj, 1, PORT + 1), MESH_OK);
    run_to(&w, SEC);
    CU_ASSERT_EQUAL(a.n, 0);
    CU_ASSERT_EQUAL(b.n, 1);
    CU_ASSERT_EQUAL(b.at, 5 * MS + 2 * (RTT + PROC));
    CU_ASSERT_EQUAL(c.n, 0);
    CU_ASSERT_EQUAL(sim_nat_get_stats(w.gw).portmaps_added, 1);
    CU_ASSERT_EQUAL(e.ops->portmap->request(e.obj, 1, 0, 60, on_answer, &a), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(e.ops->portmap->request(e.obj, 1, 1, 60, NULL, &a), MESH_ERR_INVAL);
    answer many[SIM_DRIVER_PORTMAP_MAX];
    for (int i = 0; i < SIM_DRIVER_PORTMAP_MAX; i++) {
        many[i] = (answer){.w = &w};
        int rc = request(w.dg, (uint16_t)(8000 + i), 60, &many[i]);
        CU_ASSERT_EQUAL(rc, i < SIM_DRIVER_PORTMAP_MAX - 1 ? MESH_OK : MESH_ERR_LIMIT);
    }
    CU_ASSERT_EQUAL(request(w.dg, PORT, 60, &a), MESH_OK); /* a known port still renews */
    sim_driver_free(w.dg);                                 /* answers still due: never delivered */
    w.dg = NULL;
    run_to(&w, 2 * SEC);
    CU_ASSERT_EQUAL(a.n, 0);
    for (int i = 0; i < SIM_DRIVER_PORTMAP_MAX; i++)
        CU_ASSERT_EQUAL(many[i].n, 0);
    world_free(&w);
}

static CU_TestInfo tests[] = {
    {"NAT-PMP: address, epoch, lifetimes, renewal, deletion", test_pmp_lifetimes},
    {"NAT-PMP: restart loses mappings, keeps forwards, new epoch", test_pmp_restart},
    {"services: own LAN only, double NAT's address, none at the carrier", test_services_scope},
    {"driver: NAT-PMP answer after two LAN round trips", test_driver_natpmp},
    {"driver: UPnP answer after the SSDP wait and four HTTP exchanges", test_driver_upnp},
    {"driver: double NAT is UNREACHABLE, no service UNSUPPORTED", test_driver_double_nat_and_none},
    {"driver: superseded, released, bounded, freed", test_driver_requests},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"nat port mapping", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
