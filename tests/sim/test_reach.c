/* test_reach.c — how a node learns its own reachability, in the simulator: the address a
 * peer saw its connection come from (Hello.observed_address, session.h), and the node's
 * reachability state made of it (core/reach.h, mesh_node_stats reach4).
 *
 * Topology (one-way latencies): every access link 5 ms, the core 10 ms.
 *
 *   inside 10.0.0.2 (LAN "home", NAT on 203.0.113.7)      public 198.51.100.1:7000
 *                               \                           /
 *                                ───────── core 10 ms ─────
 */
#include "mesh_test.h"

#include <string.h>

#include "core/node.h"
#include "core/peer.h"
#include "core/session.h"
#include "core/tls.h"
#include "sim/driver.h"
#include "sim/nat.h"

#define MS(x) ((mesh_time)(x)*MESH_NS_PER_MS)
#define IP_PUBLIC SIM_IP4(198, 51, 100, 1)
#define IP_INSIDE SIM_IP4(10, 0, 0, 2)
#define IP_NAT SIM_IP4(203, 0, 113, 7)
enum { PORT = 7000, H_PUBLIC = 0, H_INSIDE, NH };

typedef struct end {
    sim_host *h;
    sim_driver *d;
    mesh_env env;
    mesh_identity *id;
    mesh_tls_ctx *tls;
    mesh_session *s;
    int connected, closed;
} end;

typedef struct world {
    sim_world *w;
    sim_nat *nat;
    end e[NH];
    mesh_listener *l;
    mesh_addr mapped; /* the external side of the NAT's last new TCP mapping */
} world;

static void nat_seen(void *ud, const sim_nat_event *ev)
{
    world *W = ud;
    if (ev->kind == SIM_NAT_EV_MAP_CREATE && ev->proto == SIM_PROTO_TCP)
        W->mapped = ev->external;
}

/* A world with the core (10 ms) and the "home" LAN behind a NAT of kind nat on IP_NAT. */
static sim_lan *net_init(sim_world **w, sim_nat **natp, uint64_t seed, const sim_nat_cfg *nat)
{
    CU_ASSERT_EQUAL_FATAL(sim_world_new(w, seed, NULL), MESH_OK);
    sim_net *net = sim_world_net(*w);
    sim_net_set_core(net, &(sim_link_cfg){.latency = MS(10)}, NULL, NULL);
    sim_lan_cfg lc = {"home", {0}, {0}, IP_NAT, 1};
    sim_lan *lan = NULL;
    CU_ASSERT_EQUAL_FATAL(sim_net_add_lan(net, &lc, &lan), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_nat_new(natp, net, lan, nat), MESH_OK);
    return lan;
}

static void world_init(world *W, const sim_nat_cfg *nat)
{
    memset(W, 0, sizeof *W);
    sim_lan *lan = net_init(&W->w, &W->nat, 11, nat);
    sim_net *net = sim_world_net(W->w);
    sim_nat_set_observer(W->nat, nat_seen, W, 1u << SIM_NAT_EV_MAP_CREATE);
    sim_link_cfg l5 = {.latency = MS(5)};
    const sim_host_cfg hosts[NH] = {{"public", IP_PUBLIC, NULL, l5, l5},
                                    {"inside", IP_INSIDE, lan, l5, l5}};
    for (int i = 0; i < NH; i++) {
        end *x = &W->e[i];
        CU_ASSERT_EQUAL_FATAL(sim_net_add_host(net, &hosts[i], &x->h), MESH_OK);
        CU_ASSERT_EQUAL_FATAL(sim_driver_new(&x->d, W->w, x->h), MESH_OK);
        x->env = sim_driver_env(x->d);
        CU_ASSERT_EQUAL_FATAL(mesh_identity_generate(&x->id, &x->env), MESH_OK);
        CU_ASSERT_EQUAL_FATAL(mesh_tls_ctx_new(&x->tls, &x->env, x->id, NULL), MESH_OK);
    }
}

static void world_free(world *W)
{
    for (int i = 0; i < NH; i++) {
        end *x = &W->e[i];
        mesh_session_free(x->s);
        mesh_tls_ctx_free(x->tls);
        mesh_identity_free(x->id);
    }
    if (W->l)
        W->e[H_PUBLIC].env.ops->listener_close(W->e[H_PUBLIC].env.obj, W->l);
    for (int i = 0; i < NH; i++)
        sim_driver_free(W->e[i].d);
    sim_nat_free(W->nat);
    sim_world_free(W->w);
}

static void run_until(world *W, mesh_time t)
{
    CU_ASSERT_EQUAL(sim_sched_run_until(sim_world_sched(W->w), t), MESH_OK);
}

/* ---- sessions ----------------------------------------------------------------------------- */

static void on_connected(mesh_session *s, void *ud)
{
    (void)s;
    ((end *)ud)->connected++;
}

static void on_closed(mesh_session *s, int reason, void *ud)
{
    (void)s;
    (void)reason;
    ((end *)ud)->closed++;
}

static const mesh_session_cbs CBS = {on_connected, NULL, NULL, on_closed};

static void on_accept(mesh_listener *l, mesh_stream *st, const mesh_addr *peer, void *ud)
{
    (void)l;
    (void)peer;
    end *x = ud;
    CU_ASSERT_PTR_NULL_FATAL(x->s); /* one connection in these tests */
    CU_ASSERT_EQUAL(mesh_session_accept(&x->s, &x->env, x->tls, st, NULL, &CBS, x), MESH_OK);
}

/* The inside host opens a session to the public one; both are CONNECTED after. */
static void connect_out(world *W)
{
    end *p = &W->e[H_PUBLIC], *in = &W->e[H_INSIDE];
    mesh_addr la = mesh_addr_v4(IP_PUBLIC, PORT);
    int err = 0;
    W->l = p->env.ops->listen(p->env.obj, &la, on_accept, p, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(W->l);
    CU_ASSERT_EQUAL_FATAL(
        mesh_session_connect(&in->s, &in->env, in->tls, &la, NULL, NULL, &CBS, in), MESH_OK);
    run_until(W, MS(1000));
    CU_ASSERT_EQUAL_FATAL(in->connected, 1);
    CU_ASSERT_EQUAL_FATAL(p->connected, 1);
}

/* Behind a NAT, the inside node learns the NAT's external address and port for this
 * connection from the public peer's hello; the server learns nothing (it is not told). */
static void test_observed_through_nat(void)
{
    static const sim_nat_cfg kinds[] = {
        {.mapping = SIM_NAT_ENDPOINT_INDEPENDENT, .filtering = SIM_NAT_ENDPOINT_INDEPENDENT},
        {.mapping = SIM_NAT_ADDRESS_PORT_DEPENDENT,
         .filtering = SIM_NAT_ADDRESS_PORT_DEPENDENT,
         .port_alloc = SIM_NAT_PORT_RANDOM},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        world W;
        world_init(&W, &kinds[k]);
        connect_out(&W);
        end *in = &W.e[H_INSIDE];
        mesh_addr obs, local;
        CU_ASSERT_EQUAL(mesh_session_observed_addr(in->s, &obs, &local), MESH_OK);
        /* the NAT's mapping for this connection, as the server's stream sees it */
        CU_ASSERT(mesh_addr_equal(&obs, &W.mapped));
        mesh_addr at_server = mesh_session_peer_addr(W.e[H_PUBLIC].s);
        CU_ASSERT(mesh_addr_equal(&obs, &at_server));
        CU_ASSERT_EQUAL(sim_addr_ip4(&obs), IP_NAT);
        CU_ASSERT_EQUAL(sim_addr_ip4(&local), IP_INSIDE); /* what the NAT translated */
        /* the server side is never told an address */
        CU_ASSERT_EQUAL(mesh_session_observed_addr(W.e[H_PUBLIC].s, &obs, NULL),
                        MESH_ERR_NOT_FOUND);
        world_free(&W);
    }
}

/* ---- nodes ---------------------------------------------------------------------------------- */

/* Nodes: two public bootstrap nodes in two /24s, one node behind the NAT, one public node.
 *
 *   boot0 198.51.100.1   boot1 198.51.101.1   pub 192.0.2.5   inside 10.0.0.2 (NAT 203.0.113.7)
 */
enum { N_BOOT0 = 0, N_BOOT1, N_PUB, N_INSIDE, NN };

typedef struct nworld {
    sim_world *w;
    sim_nat *nat;
    sim_host *h[NN];
    sim_driver *d[NN];
    mesh_env env[NN];
    mesh_identity *id[NN];
    mesh_node_cfg cfg[NN];
    mesh_node *n[NN];
} nworld;

static const uint32_t NODE_IP[NN] = {SIM_IP4(198, 51, 100, 1), SIM_IP4(198, 51, 101, 1),
                                     SIM_IP4(192, 0, 2, 5), IP_INSIDE};

static void nworld_init(nworld *W, const sim_nat_cfg *nat)
{
    memset(W, 0, sizeof *W);
    sim_lan *lan = net_init(&W->w, &W->nat, 13, nat);
    sim_net *net = sim_world_net(W->w);
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
}

static void nworld_boot(nworld *W, int i, int boot)
{
    mesh_node_cfg *c = &W->cfg[i];
    c->bootstrap[c->n_bootstrap].addr = mesh_addr_v4(NODE_IP[boot], PORT);
    memcpy(c->bootstrap[c->n_bootstrap].key, mesh_identity_pubkey(W->id[boot]), 32);
    c->n_bootstrap++;
}

static void nworld_start(nworld *W, int i)
{
    CU_ASSERT_EQUAL_FATAL(mesh_node_new(&W->n[i], &W->env[i], &W->cfg[i], NULL, NULL), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_node_start(W->n[i]), MESH_OK);
}

static void nworld_free(nworld *W)
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

static mesh_node_reach reach4(nworld *W, int i)
{
    mesh_node_stats st;
    mesh_node_get_stats(W->n[i], &st);
    CU_ASSERT_EQUAL(st.reach6.state, MESH_NODE_REACH_UNKNOWN); /* no IPv6 here */
    return st.reach4;
}

/* A node behind a NAT that joined through two public peers believes it is behind a NAT at
 * the NAT's address; a public node believes it is public; a node with one peer only (the
 * other bootstrap node down) knows nothing yet. */
static void test_node_reach_state(void)
{
    sim_nat_cfg full = {0};
    nworld W;
    nworld_init(&W, &full);
    nworld_start(&W, N_BOOT0);
    nworld_start(&W, N_BOOT1);
    for (int i = N_PUB; i <= N_INSIDE; i++) {
        nworld_boot(&W, i, N_BOOT0);
        nworld_boot(&W, i, N_BOOT1);
        nworld_start(&W, i);
    }
    CU_ASSERT_EQUAL(sim_sched_run_until(sim_world_sched(W.w), MS(2000)), MESH_OK);
    mesh_node_reach in = reach4(&W, N_INSIDE), pub = reach4(&W, N_PUB);
    CU_ASSERT_EQUAL(in.state, MESH_NODE_REACH_NAT);
    CU_ASSERT_EQUAL(sim_addr_ip4(&in.external), IP_NAT);
    CU_ASSERT(in.observers >= 2); /* the bootstrap nodes, and pub if the DHT led there */
    CU_ASSERT_EQUAL(pub.state, MESH_NODE_REACH_PUBLIC);
    mesh_addr want = mesh_addr_v4(NODE_IP[N_PUB], PORT);
    CU_ASSERT(mesh_addr_equal(&pub.external, &want));
    /* the record still carries only what the node was told to advertise */
    const mesh_peer_record *rec = mesh_node_record(W.n[N_INSIDE]);
    for (size_t k = 0; k < rec->naddrs; k++)
        CU_ASSERT_NOT_EQUAL(sim_addr_ip4(&rec->addrs[k]), IP_NAT);
    nworld_free(&W);

    nworld_init(&W, &full);
    nworld_start(&W, N_BOOT0); /* boot1 never starts */
    nworld_boot(&W, N_INSIDE, N_BOOT0);
    nworld_boot(&W, N_INSIDE, N_BOOT1);
    nworld_start(&W, N_INSIDE);
    CU_ASSERT_EQUAL(sim_sched_run_until(sim_world_sched(W.w), MS(60000)), MESH_OK);
    in = reach4(&W, N_INSIDE);
    CU_ASSERT_EQUAL(in.state, MESH_NODE_REACH_UNKNOWN);
    CU_ASSERT_EQUAL(in.claims, 1);
    nworld_free(&W);
}

static CU_TestInfo sim_tests[] = {
    {"observed address through a NAT", test_observed_through_nat},
    {"a node's reachability state", test_node_reach_state},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"reach_sim", NULL, NULL, NULL, NULL, sim_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
