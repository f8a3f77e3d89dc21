/* test_node_stun.c — a node's STUN Bindings (cfg.stun, node_stun.c) in the simulator: a node
 * behind a NAT learns the NAT's mapping of its listening port from a STUN server (stats, log,
 * refreshed every 10 min); the answer is one observer's claim (with one peer it makes the NAT
 * address believed, but never advertised without dial-back); servers that fail or answer
 * garbage are logged by name, backed off, and leave the node serving.
 *
 * Topology (one-way latencies): every access link 5 ms, the core 10 ms.
 *
 *   inside 10.0.0.2 (LAN "home", NAT on 203.0.113.7)
 *            \
 *             core ── boot 198.51.100.1:7000 ── stun 192.0.2.1:3478 ── forger 192.0.2.66:3478
 */
#include "mesh_test.h"

#include <stdio.h>
#include <string.h>

#include "core/node.h"
#include "core/peer.h"
#include "sim/driver.h"
#include "sim/nat.h"
#include "sim/stun_host.h"

#define MS(x) ((mesh_time)(x)*MESH_NS_PER_MS)
#define MIN(x) ((mesh_time)(x)*60 * MESH_NS_PER_S)
#define IP_BOOT SIM_IP4(198, 51, 100, 1)
#define IP_STUN SIM_IP4(192, 0, 2, 1)
#define IP_FORGER SIM_IP4(192, 0, 2, 66)
#define IP_INSIDE SIM_IP4(10, 0, 0, 2)
#define IP_NAT SIM_IP4(203, 0, 113, 7)
enum { PORT = 7000, H_BOOT = 0, H_STUN, H_FORGER, H_INSIDE, NH, MAX_LINES = 64 };

typedef struct world {
    sim_world *w;
    sim_nat *nat;
    sim_host *h[NH];
    sim_driver *d[NH];
    mesh_env env[NH];
    mesh_identity *id[NH];
    mesh_node *n[NH]; /* H_BOOT and H_INSIDE */
    sim_stun_host *stun;
    mesh_listener *forger;
    mesh_addr listen_mapped; /* the NAT's mapping of inside:PORT (TCP) */
    char line[MAX_LINES][160];
    int nlines;
} world;

static void nat_seen(void *ud, const sim_nat_event *ev)
{
    world *W = ud;
    mesh_addr lp = mesh_addr_v4(IP_INSIDE, PORT);
    if (ev->proto == SIM_PROTO_TCP && mesh_addr_equal(&ev->internal, &lp))
        W->listen_mapped = ev->external;
}

static void on_log(void *ud, mesh_time t, const char *host, int level, const char *line)
{
    (void)t, (void)level;
    world *W = ud;
    const char *p = strstr(line, "node: stun ");
    if (!p || strcmp(host, "inside") != 0 || W->nlines >= MAX_LINES)
        return;
    snprintf(W->line[W->nlines++], sizeof W->line[0], "%s", p);
}

static int logged(const world *W, const char *want)
{
    for (int i = 0; i < W->nlines; i++)
        if (strstr(W->line[i], want))
            return 1;
    return 0;
}

/* The forger answers every connection with bytes that are not STUN. */
static void forger_accept(mesh_listener *l, mesh_stream *s, const mesh_addr *peer, void *ud)
{
    (void)l, (void)peer;
    mesh_env *e = ud;
    static const char junk[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
    CU_ASSERT_EQUAL(e->ops->stream_write(e->obj, s, junk, sizeof junk - 1), MESH_OK);
}

static void world_init(world *W, const sim_nat_cfg *nat)
{
    memset(W, 0, sizeof *W);
    CU_ASSERT_EQUAL_FATAL(sim_world_new(&W->w, 17, NULL), MESH_OK);
    sim_world_set_log(W->w, on_log, W);
    sim_net *net = sim_world_net(W->w);
    sim_net_set_core(net, &(sim_link_cfg){.latency = MS(10)}, NULL, NULL);
    sim_lan_cfg lc = {"home", {0}, {0}, IP_NAT, 1};
    sim_lan *lan = NULL;
    CU_ASSERT_EQUAL_FATAL(sim_net_add_lan(net, &lc, &lan), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_nat_new(&W->nat, net, lan, nat), MESH_OK);
    sim_nat_set_observer(W->nat, nat_seen, W, 1u << SIM_NAT_EV_MAP_CREATE);
    sim_link_cfg l5 = {.latency = MS(5)};
    const sim_host_cfg hosts[NH] = {{"boot", IP_BOOT, NULL, l5, l5},
                                    {"stun", IP_STUN, NULL, l5, l5},
                                    {"forger", IP_FORGER, NULL, l5, l5},
                                    {"inside", IP_INSIDE, lan, l5, l5}};
    for (int i = 0; i < NH; i++) {
        CU_ASSERT_EQUAL_FATAL(sim_net_add_host(net, &hosts[i], &W->h[i]), MESH_OK);
        CU_ASSERT_EQUAL_FATAL(sim_driver_new(&W->d[i], W->w, W->h[i]), MESH_OK);
        W->env[i] = sim_driver_env(W->d[i]);
        CU_ASSERT_EQUAL_FATAL(mesh_identity_generate(&W->id[i], &W->env[i]), MESH_OK);
    }
    CU_ASSERT_EQUAL_FATAL(sim_stun_host_new(&W->stun, W->w, W->h[H_STUN], NULL), MESH_OK);
    mesh_addr fa = mesh_addr_v4(IP_FORGER, SIM_STUN_PORT);
    mesh_env *fe = &W->env[H_FORGER];
    int err = 0;
    W->forger = fe->ops->listen(fe->obj, &fa, forger_accept, fe, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(W->forger);
}

/* Start boot, then inside (bootstrapping from boot) with the STUN servers given. */
static void world_start(world *W, const mesh_addr *stun, size_t n_stun)
{
    mesh_node_cfg cb = {.identity = W->id[H_BOOT], .listen = mesh_addr_v4(IP_BOOT, PORT)};
    CU_ASSERT_EQUAL_FATAL(mesh_node_new(&W->n[H_BOOT], &W->env[H_BOOT], &cb, NULL, NULL), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_node_start(W->n[H_BOOT]), MESH_OK);
    mesh_node_cfg ci = {.identity = W->id[H_INSIDE], .listen = mesh_addr_v4(IP_INSIDE, PORT)};
    ci.bootstrap[0].addr = cb.listen;
    memcpy(ci.bootstrap[0].key, mesh_identity_pubkey(W->id[H_BOOT]), MESH_PUBKEY_LEN);
    ci.n_bootstrap = 1;
    memcpy(ci.stun, stun, n_stun * sizeof *stun);
    ci.n_stun = n_stun;
    CU_ASSERT_EQUAL_FATAL(mesh_node_new(&W->n[H_INSIDE], &W->env[H_INSIDE], &ci, NULL, NULL),
                          MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_node_start(W->n[H_INSIDE]), MESH_OK);
}

static void world_free(world *W)
{
    for (int i = 0; i < NH; i++)
        mesh_node_free(W->n[i]);
    sim_stun_host_free(W->stun);
    W->env[H_FORGER].ops->listener_close(W->env[H_FORGER].obj, W->forger);
    for (int i = 0; i < NH; i++) {
        sim_driver_free(W->d[i]);
        mesh_identity_free(W->id[i]);
    }
    sim_nat_free(W->nat);
    sim_world_free(W->w);
}

static mesh_node_stats stats(world *W)
{
    mesh_node_stats st;
    mesh_node_get_stats(W->n[H_INSIDE], &st);
    return st;
}

static void run_until(world *W, mesh_time t)
{
    CU_ASSERT_EQUAL(sim_sched_run_until(sim_world_sched(W->w), t), MESH_OK);
}

/* Behind a full-cone NAT the node learns the NAT's mapping of its listening port (the
 * request left from it) within a second, logs it, and asks again every 10 min. With one
 * peer besides the server, two observers agree: the state is NAT at the NAT's address. Yet
 * only that one peer can dial back, and two must: the address is never advertised. */
static void test_stun_mapped(void)
{
    world W;
    sim_nat_cfg full = {0};
    world_init(&W, &full);
    mesh_addr srv = mesh_addr_v4(IP_STUN, SIM_STUN_PORT);
    world_start(&W, &srv, 1);
    run_until(&W, MS(1000));
    mesh_node_stats st = stats(&W);
    CU_ASSERT_EQUAL(st.stun_answers, 1);
    CU_ASSERT_EQUAL(st.stun_error, MESH_OK);
    CU_ASSERT_EQUAL(sim_addr_ip4(&st.stun_mapped), IP_NAT);
    CU_ASSERT_EQUAL(W.listen_mapped.family, MESH_AF_INET4); /* the listening port was mapped */
    CU_ASSERT(mesh_addr_equal(&st.stun_mapped, &W.listen_mapped));
    char want[160], m[MESH_ADDR_STRLEN];
    mesh_addr_format(&st.stun_mapped, m, sizeof m);
    snprintf(want, sizeof want, "node: stun 192.0.2.1:3478: mapped %s", m);
    CU_ASSERT(logged(&W, want));
    CU_ASSERT_EQUAL(st.reach4.state, MESH_NODE_REACH_NAT);
    CU_ASSERT_EQUAL(sim_addr_ip4(&st.reach4.external), IP_NAT);
    CU_ASSERT_EQUAL(st.reach4.observers, 2); /* boot and the server */

    run_until(&W, MIN(25));
    st = stats(&W);
    CU_ASSERT_EQUAL(st.stun_answers, 3); /* at 0, 10 and 20 min */
    CU_ASSERT_EQUAL(st.stun_failures, 0);
    CU_ASSERT_EQUAL(sim_stun_host_get_stats(W.stun).tcp_accepted, 3);
    CU_ASSERT_EQUAL(st.dialback_confirmed.family, MESH_AF_NONE);
    const mesh_peer_record *rec = mesh_node_record(W.n[H_INSIDE]);
    for (size_t k = 0; k < rec->naddrs; k++)
        CU_ASSERT_NOT_EQUAL(sim_addr_ip4(&rec->addrs[k]), IP_NAT);
    world_free(&W);
}

/* A server answering garbage and a port where nothing listens: both failures are logged by
 * name and retried with a doubling backoff (at most 7 tries each in 30 min), no claim is
 * made, and the node stays joined and connected to its peer. */
static void test_stun_failing(void)
{
    world W;
    sim_nat_cfg full = {0};
    world_init(&W, &full);
    const mesh_addr srv[2] = {mesh_addr_v4(IP_FORGER, SIM_STUN_PORT),
                              mesh_addr_v4(IP_STUN, SIM_STUN_PORT + 20)};
    world_start(&W, srv, 2);
    run_until(&W, MS(2000));
    mesh_node_stats st = stats(&W);
    CU_ASSERT_EQUAL(st.stun_failures, 2);
    CU_ASSERT_EQUAL(st.stun_answers, 0);
    CU_ASSERT_EQUAL(st.stun_mapped.family, MESH_AF_NONE);
    CU_ASSERT(logged(&W, "node: stun 192.0.2.66:3478: MESH_ERR_MALFORMED"));
    CU_ASSERT(logged(&W, "node: stun 192.0.2.1:3498: MESH_ERR_"));
    run_until(&W, MIN(30));
    st = stats(&W);
    /* tries at 0, 30, 90, 210, 450, 930 s, 1530 s (30 s doubling, capped at 10 min) */
    CU_ASSERT_EQUAL(st.stun_failures, 14);
    CU_ASSERT_NOT_EQUAL(st.stun_error, MESH_OK);
    CU_ASSERT_EQUAL(st.reach4.state, MESH_NODE_REACH_UNKNOWN); /* boot's claim alone */
    CU_ASSERT_EQUAL(st.joined, 1);
    CU_ASSERT(st.connected >= 1);
    world_free(&W);
}

/* Bad configurations are refused by mesh_node_new. */
static void test_stun_cfg(void)
{
    world W;
    sim_nat_cfg full = {0};
    world_init(&W, &full);
    mesh_node *n = NULL;
    mesh_node_cfg c = {.identity = W.id[H_INSIDE], .listen = mesh_addr_v4(IP_INSIDE, PORT)};
    c.n_stun = MESH_NODE_MAX_STUN + 1;
    for (size_t i = 0; i < MESH_NODE_MAX_STUN; i++)
        c.stun[i] = mesh_addr_v4(IP_STUN, SIM_STUN_PORT);
    CU_ASSERT_EQUAL(mesh_node_new(&n, &W.env[H_INSIDE], &c, NULL, NULL), MESH_ERR_INVAL);
    c.n_stun = 1;
    c.stun[0].port = 0;
    CU_ASSERT_EQUAL(mesh_node_new(&n, &W.env[H_INSIDE], &c, NULL, NULL), MESH_ERR_INVAL);
    c.stun[0] = (mesh_addr){0};
    c.stun[0].port = SIM_STUN_PORT;
    CU_ASSERT_EQUAL(mesh_node_new(&n, &W.env[H_INSIDE], &c, NULL, NULL), MESH_ERR_INVAL);
    CU_ASSERT_PTR_NULL(n);
    world_free(&W);
}

static CU_TestInfo sim_tests[] = {
    {"the NAT's mapping from a STUN server", test_stun_mapped},
    {"failing STUN servers", test_stun_failing},
    {"STUN configuration checked", test_stun_cfg},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"node_stun_sim", NULL, NULL, NULL, NULL, sim_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
