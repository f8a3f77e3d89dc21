/* test_node_relay.c — the node's use of relays (node_relay.c, docs/nat.md), in the simulator:
 * a node behind a port-restricted NAT (no address reachable from outside, none advertised)
 * reserves on a configured relay, advertises it in its signed record, shows RELAYED, and a
 * public node that knows only that record reaches it through a circuit: the message arrives,
 * both ends record the path "relayed". A relay that does not run the service refuses (named
 * error) and the next configured relay is used. Behind a router with UPnP, the reservation
 * is released once the mapping is confirmed by dial-back.
 *
 *   boot0 198.51.100.1 (relay service)   boot1 198.51.101.1   pub 192.0.2.5
 *   inside 10.0.0.2 behind NAT 203.0.113.7 (port-restricted)       core 10 ms, access 5 ms
 */
#include "mesh_test.h"

#include <stdio.h>
#include <string.h>

#include "core/node.h"
#include "core/peer.h"
#include "sim/driver.h"
#include "sim/nat.h"

#define MS(x) ((mesh_time)(x)*MESH_NS_PER_MS)
enum { PORT = 7000, N_BOOT0 = 0, N_BOOT1, N_PUB, N_INSIDE, NN };
static const uint32_t NODE_IP[NN] = {SIM_IP4(198, 51, 100, 1), SIM_IP4(198, 51, 101, 1),
                                     SIM_IP4(192, 0, 2, 5), SIM_IP4(10, 0, 0, 2)};

typedef struct nworld {
    sim_world *w;
    sim_nat *nat;
    sim_host *h[NN];
    sim_driver *d[NN];
    mesh_env env[NN];
    mesh_identity *id[NN];
    mesh_node_cfg cfg[NN];
    mesh_node *n[NN];
    int got, done, result;
} nworld;

/* upnp: the NAT offers UPnP IGD to the inside node (the driver's port-mapping service). */
static void init_nat(nworld *W, int upnp)
{
    memset(W, 0, sizeof *W);
    CU_ASSERT_EQUAL_FATAL(sim_world_new(&W->w, 21, NULL), MESH_OK);
    sim_net *net = sim_world_net(W->w);
    sim_net_set_core(net, &(sim_link_cfg){.latency = MS(10)}, NULL, NULL);
    sim_lan_cfg lc = {"home", {0}, {0}, SIM_IP4(203, 0, 113, 7), 1};
    sim_lan *lan = NULL;
    CU_ASSERT_EQUAL_FATAL(sim_net_add_lan(net, &lc, &lan), MESH_OK);
    sim_nat_cfg nc = {.mapping = SIM_NAT_ENDPOINT_INDEPENDENT,
                      .filtering = SIM_NAT_ADDRESS_PORT_DEPENDENT,
                      .portmap = upnp};
    CU_ASSERT_EQUAL_FATAL(sim_nat_new(&W->nat, net, lan, &nc), MESH_OK);
    sim_link_cfg l5 = {.latency = MS(5)};
    static const char *const names[NN] = {"boot0", "boot1", "pub", "inside"};
    for (int i = 0; i < NN; i++) {
        sim_host_cfg hc = {names[i], NODE_IP[i], i == N_INSIDE ? lan : NULL, l5, l5};
        CU_ASSERT_EQUAL_FATAL(sim_net_add_host(net, &hc, &W->h[i]), MESH_OK);
        CU_ASSERT_EQUAL_FATAL(sim_driver_new(&W->d[i], W->w, W->h[i]), MESH_OK);
        W->env[i] = sim_driver_env(W->d[i]);
        CU_ASSERT_EQUAL_FATAL(mesh_identity_generate(&W->id[i], &W->env[i]), MESH_OK);
        W->cfg[i].identity = W->id[i];
        W->cfg[i].listen = mesh_addr_v4(NODE_IP[i], PORT);
    }
    W->cfg[N_INSIDE].advertise_none = 1;
    if (upnp)
        CU_ASSERT_EQUAL_FATAL(sim_driver_enable_portmap(W->d[N_INSIDE], W->nat), MESH_OK);
}

static void init(nworld *W)
{
    init_nat(W, 0);
}

static mesh_node_peer peer_of(nworld *W, int i)
{
    mesh_node_peer p = {.addr = mesh_addr_v4(NODE_IP[i], PORT)};
    memcpy(p.key, mesh_identity_pubkey(W->id[i]), 32);
    return p;
}

static void on_message(mesh_node *n, const uint8_t *from, const uint8_t *data, size_t len, void *ud)
{
    (void)n, (void)from;
    nworld *W = ud;
    W->got += len == 5 && memcmp(data, "hello", 5) == 0;
}

static void start(nworld *W, int i)
{
    static const mesh_node_cbs cbs = {.on_message = on_message};
    CU_ASSERT_EQUAL_FATAL(mesh_node_new(&W->n[i], &W->env[i], &W->cfg[i], &cbs, W), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_node_start(W->n[i]), MESH_OK);
}

static void fin(nworld *W)
{
    for (int i = 0; i < NN; i++)
        mesh_node_free(W->n[i]);
    for (int i = 0; i < NN; i++) {
        sim_driver_free(W->d[i]);
        mesh_identity_free(W->id[i]);
    }
    sim_nat_free(W->nat);
    sim_world_free(W->w);
}

static void sent(mesh_node *n, int result, void *ud)
{
    (void)n;
    nworld *W = ud;
    W->done++;
    W->result = result;
}

static void run(nworld *W, mesh_time t)
{
    CU_ASSERT_EQUAL(sim_sched_run_until(sim_world_sched(W->w), t), MESH_OK);
}

static mesh_node_stats nstats(nworld *W, int i)
{
    mesh_node_stats st;
    mesh_node_get_stats(W->n[i], &st);
    return st;
}

/* relays: the inside node's configured relays, in order. */
static void setup(nworld *W, const int *relays, int nrelays)
{
    init(W);
    W->cfg[N_BOOT0].relay_service = 1;
    for (int k = 0; k < nrelays; k++)
        W->cfg[N_INSIDE].relays[W->cfg[N_INSIDE].n_relays++] = peer_of(W, relays[k]);
    start(W, N_BOOT0);
    start(W, N_BOOT1);
    for (int i = N_PUB; i <= N_INSIDE; i++) {
        W->cfg[i].bootstrap[0] = peer_of(W, N_BOOT0);
        W->cfg[i].bootstrap[1] = peer_of(W, N_BOOT1);
        W->cfg[i].n_bootstrap = 2;
    }
    start(W, N_INSIDE);
    /* NAT state after the join, then the reservation; pub joins later, so that it holds no
     * session the inside node opened (it would carry the message without any relay). */
    run(W, MS(60000));
    start(W, N_PUB);
    run(W, MS(65000));
}

static void run(nworld *W, mesh_time t);

static void check_relayed_delivery(nworld *W)
{
    const mesh_peer_record *rec = mesh_node_record(W->n[N_INSIDE]);
    CU_ASSERT_EQUAL(rec->naddrs, 0);
    CU_ASSERT_EQUAL_FATAL(rec->nrelays, 1);
    CU_ASSERT_EQUAL(memcmp(rec->relays[0].key, mesh_identity_pubkey(W->id[N_BOOT0]), 32), 0);
    mesh_node_stats in = nstats(W, N_INSIDE);
    CU_ASSERT_EQUAL(in.reach4.state, MESH_NODE_REACH_RELAYED);
    CU_ASSERT_EQUAL(in.relays_reserved, 1);

    const uint8_t *key = mesh_identity_pubkey(W->id[N_INSIDE]);
    CU_ASSERT_EQUAL(mesh_node_send(W->n[N_PUB], key, (const uint8_t *)"hello", 5, sent, W),
                    MESH_OK);
    /* checked when the answer comes: later the two punch a hole (test_node_punch.c) */
    mesh_time end = mesh_env_now(&W->env[0]) + MS(30000);
    while (!W->done && mesh_env_now(&W->env[0]) < end)
        run(W, mesh_env_now(&W->env[0]) + MS(10));
    CU_ASSERT_EQUAL(W->done, 1);
    CU_ASSERT_EQUAL(W->result, MESH_OK);
    CU_ASSERT_EQUAL(W->got, 1);
    mesh_node_peer_stats ps;
    CU_ASSERT_EQUAL_FATAL(mesh_node_get_peer_stats(W->n[N_PUB], key, &ps), MESH_OK);
    CU_ASSERT_EQUAL(ps.path, MESH_NODE_PATH_RELAYED);
    CU_ASSERT_STRING_EQUAL(mesh_node_path_name(ps.path), "relayed");
    CU_ASSERT_EQUAL_FATAL(
        mesh_node_get_peer_stats(W->n[N_INSIDE], mesh_identity_pubkey(W->id[N_PUB]), &ps), MESH_OK);
    CU_ASSERT_EQUAL(ps.path, MESH_NODE_PATH_RELAYED);
    /* the relay's own sessions are direct ones */
    CU_ASSERT_EQUAL_FATAL(
        mesh_node_get_peer_stats(W->n[N_PUB], mesh_identity_pubkey(W->id[N_BOOT0]), &ps), MESH_OK);
    CU_ASSERT_EQUAL(ps.path, MESH_NODE_PATH_DIRECT);
    mesh_node_stats pub = nstats(W, N_PUB), relay = nstats(W, N_BOOT0);
    CU_ASSERT_EQUAL(pub.relay_dials, 1);
    CU_ASSERT_EQUAL(pub.relay_dial_failures, 0);
    CU_ASSERT(relay.relay_circuits_served >= 1);
}

static void test_reserve_and_reach(void)
{
    nworld W;
    setup(&W, (int[]){N_BOOT0}, 1);
    check_relayed_delivery(&W);
    fin(&W);
}

/* boot1 runs no relay service: its refusal is named and the node moves on to boot0. */
static void test_refused_moves_on(void)
{
    nworld W;
    setup(&W, (int[]){N_BOOT1, N_BOOT0}, 2);
    mesh_node_stats b1 = nstats(&W, N_BOOT1);
    CU_ASSERT_EQUAL(b1.relay_circuits_served, 0);
    check_relayed_delivery(&W);
    fin(&W);
}

/* pub sends to the inside node, which it cannot reach: the send fails, named, by `until`. */
static void send_fails(nworld *W, mesh_time until)
{
    const uint8_t *key = mesh_identity_pubkey(W->id[N_INSIDE]);
    CU_ASSERT_EQUAL(mesh_node_send(W->n[N_PUB], key, (const uint8_t *)"hello", 5, sent, W),
                    MESH_OK);
    run(W, until);
    CU_ASSERT_EQUAL(W->done, 1);
    CU_ASSERT_NOT_EQUAL(W->result, MESH_OK);
    CU_ASSERT_EQUAL(W->got, 0);
}

/* Without relays the same node stays unreachable: the message fails, named. */
static void test_no_relay_unreachable(void)
{
    nworld W;
    setup(&W, NULL, 0);
    mesh_node_stats in = nstats(&W, N_INSIDE);
    CU_ASSERT_EQUAL(in.reach4.state, MESH_NODE_REACH_NAT);
    CU_ASSERT_EQUAL(mesh_node_record(W.n[N_INSIDE])->nrelays, 0);
    send_fails(&W, MS(120000));
    fin(&W);
}

/* The relay goes away (its node stops: every session reset): the reservation is lost, named
 * in the log, the record drops the relay and the state leaves RELAYED; a send to the node
 * then fails (named) while the sender goes on serving its other peers. */
static void test_relay_gone(void)
{
    nworld W;
    setup(&W, (int[]){N_BOOT0}, 1);
    CU_ASSERT_EQUAL(nstats(&W, N_INSIDE).relays_reserved, 1);
    mesh_node_free(W.n[N_BOOT0]);
    W.n[N_BOOT0] = NULL;
    run(&W, MS(70000));
    mesh_node_stats in = nstats(&W, N_INSIDE);
    CU_ASSERT_EQUAL(in.relays_reserved, 0);
    CU_ASSERT_NOT_EQUAL(in.reach4.state, MESH_NODE_REACH_RELAYED);
    CU_ASSERT_EQUAL(mesh_node_record(W.n[N_INSIDE])->nrelays, 0);
    send_fails(&W, MS(130000));
    /* the sender serves others as before */
    W.done = 0;
    CU_ASSERT_EQUAL(mesh_node_send(W.n[N_PUB], mesh_identity_pubkey(W.id[N_BOOT1]),
                                   (const uint8_t *)"x", 1, sent, &W),
                    MESH_OK);
    run(&W, MS(140000));
    CU_ASSERT_EQUAL(W.done, 1);
    CU_ASSERT_EQUAL(W.result, MESH_OK);
    fin(&W);
}

/* Behind a router with UPnP the node reserves first (NAT state at once; the mapping waits for
 * UPnP's 2 s SSDP search), then its mapping is confirmed by dial-back (the round asked in the
 * NAT state for the same address, kept while RELAYED hid it: the peers' SYN retransmission
 * finds the new mapping): the reservation is released at the next relay tick, the record
 * drops the relay and carries the mapping (seq grows each time), and the state is MAPPED, no
 * longer RELAYED. */
static void test_release_once_confirmed(void)
{
    nworld W;
    init_nat(&W, 1);
    W.cfg[N_BOOT0].relay_service = 1;
    W.cfg[N_INSIDE].relays[W.cfg[N_INSIDE].n_relays++] = peer_of(&W, N_BOOT0);
    start(&W, N_BOOT0);
    start(&W, N_BOOT1);
    W.cfg[N_INSIDE].bootstrap[0] = peer_of(&W, N_BOOT0);
    W.cfg[N_INSIDE].bootstrap[1] = peer_of(&W, N_BOOT1);
    W.cfg[N_INSIDE].n_bootstrap = 2;
    start(&W, N_INSIDE);
    mesh_time reserved_at = 0, confirmed_at = 0;
    uint64_t seq_reserved = 0;
    for (mesh_time t = MS(50); t <= MS(20000) && !confirmed_at; t += MS(50)) {
        run(&W, t);
        mesh_node_stats in = nstats(&W, N_INSIDE);
        if (!reserved_at && in.relays_reserved == 1) {
            reserved_at = t;
            CU_ASSERT_EQUAL(mesh_node_record(W.n[N_INSIDE])->nrelays, 1);
            CU_ASSERT_EQUAL(in.reach4.state, MESH_NODE_REACH_RELAYED);
            seq_reserved = mesh_node_record(W.n[N_INSIDE])->seq;
        }
        if (in.dialback_confirmed.family != MESH_AF_NONE)
            confirmed_at = t;
    }
    CU_ASSERT_FATAL(reserved_at != 0);
    CU_ASSERT_FATAL(confirmed_at > reserved_at);
    run(&W, confirmed_at + MS(1100)); /* the next relay tick */
    mesh_node_stats in = nstats(&W, N_INSIDE);
    const mesh_peer_record *rec = mesh_node_record(W.n[N_INSIDE]);
    CU_ASSERT_EQUAL(in.relays_reserved, 0);
    CU_ASSERT_EQUAL(rec->nrelays, 0);
    CU_ASSERT(rec->seq >= seq_reserved + 2); /* + the mapping, + the release */
    CU_ASSERT_EQUAL(in.reach4.state, MESH_NODE_REACH_MAPPED);
    CU_ASSERT_EQUAL_FATAL(rec->naddrs, 1);
    CU_ASSERT(mesh_addr_equal(&rec->addrs[0], &in.portmap_external));
    /* and it stays released: no new reservation while the address holds */
    run(&W, confirmed_at + MS(60000));
    CU_ASSERT_EQUAL(nstats(&W, N_INSIDE).relays_reserved, 0);
    CU_ASSERT_EQUAL(mesh_node_record(W.n[N_INSIDE])->nrelays, 0);
    fin(&W);
}

static CU_TestInfo sim_tests[] = {
    {"a confirmed mapping releases the reservation", test_release_once_confirmed},
    {"reserve on a relay, reached through it", test_reserve_and_reach},
    {"a relay without the service refuses: the next one", test_refused_moves_on},
    {"no relay: unreachable, named", test_no_relay_unreachable},
    {"the relay goes away: reservation lost, record without it", test_relay_gone},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"node_relay_sim", NULL, NULL, NULL, NULL, sim_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
