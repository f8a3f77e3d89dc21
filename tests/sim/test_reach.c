/* test_reach.c — how a node learns its own reachability, in the simulator: the address a
 * peer saw its connection come from (Hello.observed_address, session.h), the node's
 * reachability state made of it (core/reach.h, mesh_node_stats reach4), and dial-back
 * (node_reach.c): which addresses get confirmed into the signed record, and what an asker
 * cannot make a node dial.
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

/* The NAT kinds (RFC 4787 words): mapping / filtering. */
static const sim_nat_cfg NAT_FULL_CONE = {.mapping = SIM_NAT_ENDPOINT_INDEPENDENT,
                                          .filtering = SIM_NAT_ENDPOINT_INDEPENDENT};
static const sim_nat_cfg NAT_PORT_RESTRICTED = {.mapping = SIM_NAT_ENDPOINT_INDEPENDENT,
                                                .filtering = SIM_NAT_ADDRESS_PORT_DEPENDENT};
static const sim_nat_cfg NAT_SYMMETRIC = {.mapping = SIM_NAT_ADDRESS_PORT_DEPENDENT,
                                          .filtering = SIM_NAT_ADDRESS_PORT_DEPENDENT,
                                          .port_alloc = SIM_NAT_PORT_RANDOM};

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
    const sim_nat_cfg kinds[] = {NAT_FULL_CONE, NAT_SYMMETRIC};
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

/* ---- dial-back ---------------------------------------------------------------------------- */

static int record_has(nworld *W, int i, const mesh_addr *a)
{
    const mesh_peer_record *rec = mesh_node_record(W->n[i]);
    for (size_t k = 0; k < rec->naddrs; k++)
        if (mesh_addr_equal(&rec->addrs[k], a))
            return 1;
    return 0;
}

/* Everyone up: boot0, boot1, pub; inside with both bootstrap nodes (started last, so its
 * sessions to them are outbound). */
static void start_all(nworld *W)
{
    nworld_start(W, N_BOOT0);
    nworld_start(W, N_BOOT1);
    for (int i = N_PUB; i <= N_INSIDE; i++) {
        nworld_boot(W, i, N_BOOT0);
        nworld_boot(W, i, N_BOOT1);
        nworld_start(W, i);
    }
}

static mesh_node_stats nstats(nworld *W, int i)
{
    mesh_node_stats st;
    mesh_node_get_stats(W->n[i], &st);
    return st;
}

/* A public node is confirmed by the first two peers it asks (each dialed it once), and its
 * record carries its address once. */
static void test_dialback_public(void)
{
    sim_nat_cfg full = {0};
    nworld W;
    nworld_init(&W, &full);
    start_all(&W);
    mesh_addr want = mesh_addr_v4(NODE_IP[N_PUB], PORT);
    CU_ASSERT_EQUAL(sim_sched_run_until(sim_world_sched(W.w), MS(5000)), MESH_OK);
    mesh_node_stats st = nstats(&W, N_PUB);
    CU_ASSERT_EQUAL(st.reach4.state, MESH_NODE_REACH_PUBLIC);
    CU_ASSERT(mesh_addr_equal(&st.dialback_confirmed, &want));
    CU_ASSERT_EQUAL(record_has(&W, N_PUB, &want), 1);
    CU_ASSERT_EQUAL(mesh_node_record(W.n[N_PUB])->naddrs, 1);
    CU_ASSERT_EQUAL(st.dialback_asked, 2);
    CU_ASSERT_EQUAL(st.dialback_ok, 2);
    CU_ASSERT_EQUAL(nstats(&W, N_BOOT0).dialback_dials + nstats(&W, N_BOOT1).dialback_dials, 4);
    nworld_free(&W);
}

/* Behind NATs that let nobody in unasked (port-restricted, symmetric), nothing is
 * confirmed and nothing advertised; a round asks 3 peers at most and the next waits 10 min. */
static void test_dialback_not_reachable(void)
{
    const sim_nat_cfg kinds[] = {NAT_PORT_RESTRICTED, NAT_SYMMETRIC};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        nworld W;
        nworld_init(&W, &kinds[k]);
        start_all(&W);
        CU_ASSERT_EQUAL(sim_sched_run_until(sim_world_sched(W.w), MS(60000)), MESH_OK);
        mesh_node_stats st = nstats(&W, N_INSIDE);
        CU_ASSERT_EQUAL(st.reach4.state, MESH_NODE_REACH_NAT);
        CU_ASSERT_EQUAL(st.dialback_confirmed.family, MESH_AF_NONE);
        CU_ASSERT(st.dialback_asked >= 2 && st.dialback_asked <= 3);
        CU_ASSERT_EQUAL(st.dialback_ok, 0);
        mesh_addr nat = mesh_addr_v4(IP_NAT, PORT);
        CU_ASSERT(!record_has(&W, N_INSIDE, &nat));
        CU_ASSERT_EQUAL(sim_sched_run_until(sim_world_sched(W.w), MS(9 * 60000)), MESH_OK);
        CU_ASSERT_EQUAL(nstats(&W, N_INSIDE).dialback_asked, st.dialback_asked);
        nworld_free(&W);
    }
}

/* A UPnP/NAT-PMP mapping of the listening port is confirmed and advertised; so is a port
 * the router's administrator forwarded (the NAT state's candidate: NAT address, our port). */
static void test_dialback_mapped_and_forwarded(void)
{
    for (int forwarded = 0; forwarded <= 1; forwarded++) {
        sim_nat_cfg cfg = {.filtering = SIM_NAT_ADDRESS_PORT_DEPENDENT, .portmap = !forwarded};
        nworld W;
        nworld_init(&W, &cfg);
        mesh_addr in = mesh_addr_v4(IP_INSIDE, PORT);
        if (forwarded) {
            CU_ASSERT_EQUAL_FATAL(sim_nat_add_static(W.nat, SIM_PROTO_TCP, &in, PORT, NULL),
                                  MESH_OK);
        } else {
            /* the driver's own service: NAT-PMP, then UPnP, on the inside host's NAT */
            CU_ASSERT_EQUAL_FATAL(sim_driver_enable_portmap(W.d[N_INSIDE], W.nat), MESH_OK);
        }
        start_all(&W);
        CU_ASSERT_EQUAL(sim_sched_run_until(sim_world_sched(W.w), MS(5000)), MESH_OK);
        mesh_node_stats st = nstats(&W, N_INSIDE);
        mesh_addr want = mesh_addr_v4(IP_NAT, PORT);
        CU_ASSERT_EQUAL(st.reach4.state, forwarded ? MESH_NODE_REACH_NAT : MESH_NODE_REACH_MAPPED);
        CU_ASSERT(mesh_addr_equal(&st.dialback_confirmed, &want));
        CU_ASSERT(record_has(&W, N_INSIDE, &want));
        CU_ASSERT_EQUAL(st.dialback_ok, 2);
        nworld_free(&W);
    }
}

/* A raw client asking boot0 for dial-backs: the answers by query id. */
enum { RAW_Q = 6 };
static struct raw {
    int connected;
    int status[RAW_Q + 1];
    int answered[RAW_Q + 1];
} RAW;

static void raw_send(mesh_session *s, uint64_t id, const char *payload)
{
    Meshara__Wire__Query q = MESHARA__WIRE__QUERY__INIT;
    q.query_id = id;
    q.type = MESHARA__WIRE__QUERY_TYPE__QUERY_DIAL_BACK;
    q.payload.data = (uint8_t *)payload;
    q.payload.len = strlen(payload);
    mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
    e.body_case = MESHARA__WIRE__ENVELOPE__BODY_QUERY;
    e.query = &q;
    CU_ASSERT_EQUAL(mesh_session_send(s, &e), MESH_OK);
}

static void raw_connected(mesh_session *s, void *ud)
{
    (void)ud;
    RAW.connected = 1;
    raw_send(s, 1, "198.51.101.1:7000"); /* a third party (boot1): refused */
    raw_send(s, 2, "10.0.0.2:7000");     /* a private address: refused */
    raw_send(s, 3, "not an address");
    raw_send(s, 4, "192.0.2.5:7001"); /* our own IP, where nothing listens: dialed, fails */
    raw_send(s, 5, "192.0.2.5:7002"); /* again at once: limited */
}

static void raw_message(mesh_session *s, const mesh_envelope *e, void *ud)
{
    (void)s;
    (void)ud;
    if (e->body_case != MESHARA__WIRE__ENVELOPE__BODY_RESPONSE)
        return;
    uint64_t id = e->response->query_id;
    CU_ASSERT_FATAL(id >= 1 && id <= RAW_Q);
    RAW.answered[id]++;
    RAW.status[id] = e->response->status;
}

/* The answering side's bounds: only the asker's own IP is dialed (no third party, no
 * private address for a public asker), garbage is refused, one dial per asker per minute. */
static void test_dialback_refusals(void)
{
    sim_nat_cfg full = {0};
    nworld W;
    nworld_init(&W, &full);
    nworld_start(&W, N_BOOT0);
    memset(&RAW, 0, sizeof RAW);
    mesh_tls_ctx *tls = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_tls_ctx_new(&tls, &W.env[N_PUB], W.id[N_PUB], NULL), MESH_OK);
    mesh_session *s = NULL;
    mesh_addr to = mesh_addr_v4(NODE_IP[N_BOOT0], PORT);
    const mesh_session_cbs cbs = {raw_connected, raw_message, NULL, NULL};
    CU_ASSERT_EQUAL_FATAL(mesh_session_connect(&s, &W.env[N_PUB], tls, &to, NULL, NULL, &cbs, NULL),
                          MESH_OK);
    CU_ASSERT_EQUAL(sim_sched_run_until(sim_world_sched(W.w), MS(10000)), MESH_OK);
    CU_ASSERT_EQUAL(RAW.connected, 1);
    static const int want[RAW_Q] = {MESH_ERR_REFUSED, MESH_ERR_REFUSED, MESH_ERR_INVAL,
                                    MESH_ERR_REFUSED, MESH_ERR_LIMIT};
    for (int id = 1; id < RAW_Q; id++) {
        CU_ASSERT_EQUAL(RAW.answered[id], 1);
        CU_ASSERT_EQUAL(RAW.status[id], want[id - 1]);
    }
    mesh_node_stats st = nstats(&W, N_BOOT0);
    CU_ASSERT_EQUAL(st.dialback_refused, 2);
    CU_ASSERT_EQUAL(st.dialback_limited, 1);
    CU_ASSERT_EQUAL(st.dialback_dials, 1);
    CU_ASSERT_EQUAL(st.connected, 1); /* still serving the asker */
    mesh_session_free(s);
    mesh_tls_ctx_free(tls);
    nworld_free(&W);
}

static CU_TestInfo sim_tests[] = {
    {"observed address through a NAT", test_observed_through_nat},
    {"a node's reachability state", test_node_reach_state},
    {"dial-back: public", test_dialback_public},
    {"dial-back: port-restricted and symmetric", test_dialback_not_reachable},
    {"dial-back: mapped, forwarded", test_dialback_mapped_and_forwarded},
    {"dial-back: what an asker cannot make us dial", test_dialback_refusals},
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
