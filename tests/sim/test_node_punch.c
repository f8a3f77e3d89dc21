/* test_node_punch.c — the node's hole punching (node_punch.c, docs/nat.md), in the simulator:
 * two nodes, each behind its own NAT, reserve on a relay; A sends to B, which it reaches
 * through a circuit; over that relayed session they punch. Behind port-restricted cone NATs
 * the punched session replaces the relayed one at both ends (path "punched", counted), the
 * relayed one closes (its circuit with it) and messages go both ways on the punched one.
 * Behind symmetric NATs the punch fails, named (MESH_ERR_TIMEOUT), bounded, and the nodes
 * stay on the relayed session, which still carries messages both ways.
 *
 *   boot0 198.51.100.1 (relay service)   boot1 198.51.101.1
 *   a 10.0.0.2 behind NAT 203.0.113.7    b 10.0.1.2 behind NAT 203.0.113.9
 *   core 10 ms, access 5 ms
 */
#include "mesh_test.h"

#include <string.h>

#include "core/node.h"
#include "sim/driver.h"
#include "sim/nat.h"

#define MS(x) ((mesh_time)(x)*MESH_NS_PER_MS)
enum { PORT = 7000, N_BOOT0 = 0, N_BOOT1, N_A, N_B, NN };
static const uint32_t NODE_IP[NN] = {SIM_IP4(198, 51, 100, 1), SIM_IP4(198, 51, 101, 1),
                                     SIM_IP4(10, 0, 0, 2), SIM_IP4(10, 0, 1, 2)};
static const uint32_t NAT_IP[NN] = {0, 0, SIM_IP4(203, 0, 113, 7), SIM_IP4(203, 0, 113, 9)};

static const sim_nat_cfg PORT_RESTRICTED = {.mapping = SIM_NAT_ENDPOINT_INDEPENDENT,
                                            .filtering = SIM_NAT_ADDRESS_PORT_DEPENDENT};
static const sim_nat_cfg SYMMETRIC = {.mapping = SIM_NAT_ADDRESS_PORT_DEPENDENT,
                                      .filtering = SIM_NAT_ADDRESS_PORT_DEPENDENT};

typedef struct pworld {
    sim_world *w;
    sim_nat *nat[NN];
    sim_host *h[NN];
    sim_driver *d[NN];
    mesh_env env[NN];
    mesh_identity *id[NN];
    mesh_node_cfg cfg[NN];
    mesh_node *n[NN];
    int got[NN]; /* "hello" messages received by each node */
    int done, ok;
} pworld;

static mesh_node_peer peer_of(pworld *W, int i)
{
    mesh_node_peer p = {.addr = mesh_addr_v4(NODE_IP[i], PORT)};
    memcpy(p.key, mesh_identity_pubkey(W->id[i]), 32);
    return p;
}

static void on_message(mesh_node *n, const uint8_t *from, const uint8_t *data, size_t len, void *ud)
{
    (void)from;
    pworld *W = ud;
    for (int i = 0; i < NN; i++)
        W->got[i] += W->n[i] == n && len == 5 && memcmp(data, "hello", 5) == 0;
}

static void sent(mesh_node *n, int result, void *ud)
{
    (void)n;
    pworld *W = ud;
    W->done++;
    W->ok += result == MESH_OK;
}

static void run(pworld *W, mesh_time t)
{
    CU_ASSERT_EQUAL(sim_sched_run_until(sim_world_sched(W->w), t), MESH_OK);
}

static mesh_time now(pworld *W)
{
    return mesh_env_now(&W->env[0]);
}

static void init(pworld *W, const sim_nat_cfg *kind)
{
    memset(W, 0, sizeof *W);
    CU_ASSERT_EQUAL_FATAL(sim_world_new(&W->w, 23, NULL), MESH_OK);
    sim_net *net = sim_world_net(W->w);
    sim_net_set_core(net, &(sim_link_cfg){.latency = MS(10)}, NULL, NULL);
    sim_link_cfg l5 = {.latency = MS(5)};
    static const char *const names[NN] = {"boot0", "boot1", "a", "b"};
    for (int i = 0; i < NN; i++) {
        sim_lan *lan = NULL;
        if (NAT_IP[i]) {
            sim_lan_cfg lc = {names[i], {0}, {0}, NAT_IP[i], 1};
            CU_ASSERT_EQUAL_FATAL(sim_net_add_lan(net, &lc, &lan), MESH_OK);
            CU_ASSERT_EQUAL_FATAL(sim_nat_new(&W->nat[i], net, lan, kind), MESH_OK);
        }
        sim_host_cfg hc = {names[i], NODE_IP[i], lan, l5, l5};
        CU_ASSERT_EQUAL_FATAL(sim_net_add_host(net, &hc, &W->h[i]), MESH_OK);
        CU_ASSERT_EQUAL_FATAL(sim_driver_new(&W->d[i], W->w, W->h[i]), MESH_OK);
        W->env[i] = sim_driver_env(W->d[i]);
        CU_ASSERT_EQUAL_FATAL(mesh_identity_generate(&W->id[i], &W->env[i]), MESH_OK);
        W->cfg[i].identity = W->id[i];
        W->cfg[i].listen = mesh_addr_v4(NODE_IP[i], PORT);
    }
    W->cfg[N_BOOT0].relay_service = 1;
    for (int i = N_A; i <= N_B; i++) {
        W->cfg[i].advertise_none = 1;
        W->cfg[i].relays[W->cfg[i].n_relays++] = peer_of(W, N_BOOT0);
        W->cfg[i].bootstrap[0] = peer_of(W, N_BOOT0);
        W->cfg[i].bootstrap[1] = peer_of(W, N_BOOT1);
        W->cfg[i].n_bootstrap = 2;
    }
    static const mesh_node_cbs cbs = {.on_message = on_message};
    for (int i = 0; i < NN; i++) {
        CU_ASSERT_EQUAL_FATAL(mesh_node_new(&W->n[i], &W->env[i], &W->cfg[i], &cbs, W), MESH_OK);
        CU_ASSERT_EQUAL_FATAL(mesh_node_start(W->n[i]), MESH_OK);
    }
    run(W, MS(60000)); /* joined, NAT state known, reservations held */
}

static void fin(pworld *W)
{
    for (int i = 0; i < NN; i++)
        mesh_node_free(W->n[i]);
    for (int i = 0; i < NN; i++) {
        sim_driver_free(W->d[i]);
        mesh_identity_free(W->id[i]);
        sim_nat_free(W->nat[i]);
    }
    sim_world_free(W->w);
}

static mesh_node_stats nstats(pworld *W, int i)
{
    mesh_node_stats st;
    mesh_node_get_stats(W->n[i], &st);
    return st;
}

/* from sends "hello" to to; run until its completion (at most 30 s): delivered. */
static void send_ok(pworld *W, int from, int to)
{
    int done = W->done, ok = W->ok, got = W->got[to];
    CU_ASSERT_EQUAL(mesh_node_send(W->n[from], mesh_identity_pubkey(W->id[to]),
                                   (const uint8_t *)"hello", 5, sent, W),
                    MESH_OK);
    mesh_time end = now(W) + MS(30000);
    while (W->done == done && now(W) < end)
        run(W, now(W) + MS(10));
    CU_ASSERT_EQUAL(W->done, done + 1);
    CU_ASSERT_EQUAL(W->ok, ok + 1);
    CU_ASSERT_EQUAL(W->got[to], got + 1);
}

static int path(pworld *W, int at, int peer)
{
    mesh_node_peer_stats ps;
    if (mesh_node_get_peer_stats(W->n[at], mesh_identity_pubkey(W->id[peer]), &ps) != MESH_OK)
        return -1;
    return ps.path;
}

/* Port-restricted cone on both sides: relayed first, then punched at both ends. */
static void test_port_restricted_punched(void)
{
    pworld W;
    init(&W, &PORT_RESTRICTED);
    CU_ASSERT_EQUAL(nstats(&W, N_A).relays_reserved, 1);
    CU_ASSERT_EQUAL(nstats(&W, N_B).relays_reserved, 1);
    send_ok(&W, N_A, N_B); /* through the relay (B advertises nothing else) */
    CU_ASSERT_EQUAL(path(&W, N_A, N_B), MESH_NODE_PATH_RELAYED);
    CU_ASSERT_EQUAL(nstats(&W, N_A).relay_dials, 1);
    run(&W, now(&W) + MS(10000)); /* the punch, and the relayed session's linger */
    CU_ASSERT_EQUAL(path(&W, N_A, N_B), MESH_NODE_PATH_PUNCHED);
    CU_ASSERT_EQUAL(path(&W, N_B, N_A), MESH_NODE_PATH_PUNCHED);
    CU_ASSERT_STRING_EQUAL(mesh_node_path_name(path(&W, N_A, N_B)), "punched");
    mesh_node_stats a = nstats(&W, N_A), b = nstats(&W, N_B);
    CU_ASSERT_EQUAL(a.sessions_punched, 1);
    CU_ASSERT_EQUAL(b.sessions_punched, 1);
    CU_ASSERT_EQUAL(a.punch_failures, 0);
    CU_ASSERT_EQUAL(b.punch_failures, 0);
    CU_ASSERT_EQUAL(a.relayed_sessions, 0); /* retired, closed: the circuit is released */
    CU_ASSERT_EQUAL(b.relayed_sessions, 0);
    send_ok(&W, N_B, N_A);
    send_ok(&W, N_A, N_B);
    CU_ASSERT_EQUAL(path(&W, N_A, N_B), MESH_NODE_PATH_PUNCHED);
    CU_ASSERT_EQUAL(nstats(&W, N_A).relay_dials, 1); /* no new circuit */
    fin(&W);
}

/* Symmetric on both sides: the punch fails, named; attempts are bounded; still relayed. */
static void test_symmetric_stays_relayed(void)
{
    pworld W;
    init(&W, &SYMMETRIC);
    send_ok(&W, N_A, N_B);
    run(&W, now(&W) + MS(20000)); /* one punch: 3 rounds, then given up */
    mesh_node_stats a = nstats(&W, N_A), b = nstats(&W, N_B);
    CU_ASSERT_EQUAL(a.punches, 1);
    CU_ASSERT_EQUAL(a.punch_failures, 1);
    CU_ASSERT_EQUAL(a.punch_error, MESH_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(b.punch_failures, 1);
    CU_ASSERT_EQUAL(a.sessions_punched + b.sessions_punched, 0);
    CU_ASSERT_EQUAL(path(&W, N_A, N_B), MESH_NODE_PATH_RELAYED);
    CU_ASSERT_EQUAL(path(&W, N_B, N_A), MESH_NODE_PATH_RELAYED);
    send_ok(&W, N_B, N_A);
    send_ok(&W, N_A, N_B);
    run(&W, MS(600000)); /* ten minutes: a few more punches, then none */
    a = nstats(&W, N_A);
    CU_ASSERT(a.punches >= 2 && a.punches <= 3);
    CU_ASSERT_EQUAL(a.punch_failures, a.punches);
    CU_ASSERT_EQUAL(path(&W, N_A, N_B), MESH_NODE_PATH_RELAYED);
    fin(&W);
}

static CU_TestInfo sim_tests[] = {
    {"port-restricted NATs: relayed, then punched both ways", test_port_restricted_punched},
    {"symmetric NATs: the punch fails, named, stays relayed", test_symmetric_stays_relayed},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"node_punch_sim", NULL, NULL, NULL, NULL, sim_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
