/* test_nat_chain.c — NATs in series and in front of single hosts (LANs behind LANs, sim/net.h),
 * and TCP through NAT pairs: a home router behind a carrier NAT (addresses at each level, the
 * carrier's inside in 100.64/10), hairpinning at the carrier between two of its homes and
 * between homes over the carrier's inside, a router in front of one host on an office LAN,
 * the topology's limits; TCP simultaneous open through two NATs at exact virtual times; and
 * sim_nat_pair_paths() checked against the model itself for every pair of a dozen NAT kinds.
 *
 * Topology of the carrier tests (links ideal unless a test says so, core CORE_LAT each way):
 *
 *   H1 10.0.0.2 ─ home1 NAT 100.64.0.2 ─┐                                  S 198.51.100.1
 *                                         ├─ carrier (100.64/10) ─ CGN 203.0.113.1 ─ core ─┤
 *   H2 10.0.0.2 ─ home2 NAT 100.64.0.3 ─┤                                  T 198.51.100.2
 *   P  100.64.0.9 (a phone on the carrier) ┘
 */
#include "mesh_test.h"

#include <stdlib.h>
#include <string.h>

#include "sim/nat.h"
#include "sim/tcp.h"
#include "sim/udp.h"

#define MS MESH_NS_PER_MS
#define SEC MESH_NS_PER_S
#define CORE_LAT (10 * MS)
#define CGN_PUB SIM_IP4(203, 0, 113, 1)
#define WAN1 SIM_IP4(100, 64, 0, 2)
#define WAN2 SIM_IP4(100, 64, 0, 3)
#define PHONE SIM_IP4(100, 64, 0, 9)
#define INNER SIM_IP4(10, 0, 0, 2)
#define S_IP SIM_IP4(198, 51, 100, 1)
#define T_IP SIM_IP4(198, 51, 100, 2)

enum { MAXRX = 16, MAXEV = 256, PORT = 7000, SPORT = 3478 };

/* ---- a world with a carrier ------------------------------------------------------------------ */

typedef struct rx {
    sim_net *net;
    int n;
    mesh_addr from[MAXRX];
    mesh_time at[MAXRX];
} rx;

typedef struct cworld {
    sim_sched *s;
    sim_net *net;
    sim_udp *udp;
    sim_lan *carrier, *home1, *home2;
    sim_nat *cgn, *nat1, *nat2;
    sim_host *h1, *h2, *phone, *srv, *t;
    int nev;
    sim_nat_event ev[MAXEV];
} cworld;

static void on_event(void *ud, const sim_nat_event *ev)
{
    cworld *w = ud;
    if (w->nev < MAXEV)
        w->ev[w->nev++] = *ev;
}

static int count_events(const cworld *w, int kind)
{
    int n = 0;
    for (int i = 0; i < w->nev; i++)
        n += w->ev[i].kind == kind;
    return n;
}

static sim_host *add_host(sim_net *net, const char *name, uint32_t ip, sim_lan *lan)
{
    sim_host_cfg c = {name, ip, lan, {0}, {0}};
    sim_host *h = NULL;
    CU_ASSERT_EQUAL_FATAL(sim_net_add_host(net, &c, &h), MESH_OK);
    return h;
}

static sim_lan *add_lan(sim_net *net, const char *name, uint32_t pub, sim_lan *up)
{
    sim_lan_cfg c = {name, {0}, {0}, pub, 1, up};
    sim_lan *l = NULL;
    CU_ASSERT_EQUAL_FATAL(sim_net_add_lan(net, &c, &l), MESH_OK);
    return l;
}

static sim_nat *add_nat(cworld *w, sim_lan *lan, const sim_nat_cfg *cfg)
{
    sim_nat *n = NULL;
    CU_ASSERT_EQUAL_FATAL(sim_nat_new(&n, w->net, lan, cfg), MESH_OK);
    sim_nat_set_observer(n, on_event, w, SIM_NAT_OBSERVE_DEFAULT);
    return n;
}

/* cgn: the carrier NAT's configuration; homes: both home routers'. */
static void cworld_init(cworld *w, const sim_nat_cfg *cgn, const sim_nat_cfg *homes)
{
    memset(w, 0, sizeof *w);
    CU_ASSERT_EQUAL_FATAL(sim_sched_new(&w->s), MESH_OK);
    sim_sched_set_event_cap(w->s, 1000000);
    CU_ASSERT_EQUAL_FATAL(sim_net_new(&w->net, w->s, 11), MESH_OK);
    sim_net_set_core(w->net, &(sim_link_cfg){.latency = CORE_LAT}, NULL, NULL);
    w->carrier = add_lan(w->net, "carrier", CGN_PUB, NULL);
    w->home1 = add_lan(w->net, "home1", WAN1, w->carrier);
    w->home2 = add_lan(w->net, "home2", WAN2, w->carrier);
    w->h1 = add_host(w->net, "h1", INNER, w->home1);
    w->h2 = add_host(w->net, "h2", INNER, w->home2);
    w->phone = add_host(w->net, "phone", PHONE, w->carrier);
    w->srv = add_host(w->net, "s", S_IP, NULL);
    w->t = add_host(w->net, "t", T_IP, NULL);
    CU_ASSERT_EQUAL_FATAL(sim_udp_new(&w->udp, w->net), MESH_OK);
    w->cgn = add_nat(w, w->carrier, cgn);
    w->nat1 = add_nat(w, w->home1, homes);
    w->nat2 = add_nat(w, w->home2, homes);
}

static void cworld_free(cworld *w)
{
    sim_udp_free(w->udp);
    sim_nat_free(w->nat2);
    sim_nat_free(w->nat1);
    sim_nat_free(w->cgn);
    sim_net_free(w->net);
    sim_sched_free(w->s);
}

static void on_rx(sim_udp_sock *s, const mesh_addr *from, const uint8_t *d, size_t n, void *ud)
{
    rx *r = ud;
    (void)s;
    (void)d;
    (void)n;
    CU_ASSERT_FATAL(r->n < MAXRX);
    r->from[r->n] = *from;
    r->at[r->n++] = sim_net_now(r->net);
}

static sim_udp_sock *bind_rx(cworld *w, sim_host *h, uint16_t port, rx *r)
{
    memset(r, 0, sizeof *r);
    r->net = w->net;
    sim_udp_sock *s = NULL;
    CU_ASSERT_EQUAL_FATAL(sim_udp_bind(w->udp, h, port, on_rx, r, &s), MESH_OK);
    return s;
}

static void say(sim_udp_sock *s, const mesh_addr *to)
{
    CU_ASSERT_EQUAL(sim_udp_send(s, to, "x", 1), MESH_OK);
}

static void run(cworld *w)
{
    CU_ASSERT_EQUAL(sim_sched_run(w->s), MESH_OK);
}

/* H1's datagram leaves through its home router (10.0.0.2:7000 → 100.64.0.2:7000, ports
 * preserved) and the carrier NAT (→ 203.0.113.1:7000); S's answer comes back down both. */
static void test_two_levels(void)
{
    cworld w;
    cworld_init(&w, NULL, NULL);
    rx r1, rs;
    sim_udp_sock *u1 = bind_rx(&w, w.h1, PORT, &r1), *us = bind_rx(&w, w.srv, SPORT, &rs);
    mesh_addr s = mesh_addr_v4(S_IP, SPORT);
    say(u1, &s);
    run(&w);
    CU_ASSERT_EQUAL_FATAL(rs.n, 1);
    mesh_addr seen = mesh_addr_v4(CGN_PUB, PORT);
    CU_ASSERT(mesh_addr_equal(&rs.from[0], &seen));
    CU_ASSERT_EQUAL(rs.at[0], CORE_LAT);
    mesh_addr wan = mesh_addr_v4(WAN1, PORT), got;
    mesh_addr inner = mesh_addr_v4(INNER, PORT);
    CU_ASSERT_EQUAL(sim_nat_lookup(w.nat1, SIM_PROTO_UDP, &inner, &s, &got), MESH_OK);
    CU_ASSERT(mesh_addr_equal(&got, &wan));
    CU_ASSERT_EQUAL(sim_nat_lookup(w.cgn, SIM_PROTO_UDP, &wan, &s, &got), MESH_OK);
    CU_ASSERT(mesh_addr_equal(&got, &seen));
    say(us, &rs.from[0]);
    run(&w);
    CU_ASSERT_EQUAL_FATAL(r1.n, 1);
    CU_ASSERT(mesh_addr_equal(&r1.from[0], &s));
    CU_ASSERT_EQUAL(r1.at[0], 2 * CORE_LAT);
    CU_ASSERT_EQUAL(count_events(&w, SIM_NAT_EV_MAP_CREATE), 2); /* one per level */
    /* the home router's public address is the carrier's inside: not on the core */
    CU_ASSERT_EQUAL(sim_nat_public_ip(w.nat1), WAN1);
    CU_ASSERT(!sim_lan_public_is_global(w.home1));
    CU_ASSERT(sim_lan_public_is_global(w.carrier));
    CU_ASSERT_PTR_EQUAL(sim_lan_upstream(w.home1), w.carrier);
    CU_ASSERT_PTR_NULL(sim_net_find_host(w.net, NULL, WAN1));
    mesh_addr to_wan = mesh_addr_v4(WAN1, PORT);
    say(us, &to_wan); /* from the core: no route to 100.64/10 */
    sim_net_stats before = sim_net_get_stats(w.net);
    run(&w);
    CU_ASSERT_EQUAL(r1.n, 1);
    CU_ASSERT_EQUAL(sim_net_get_stats(w.net).no_route, before.no_route + 1);
    cworld_free(&w);
}

/* Two homes behind one carrier NAT with hairpinning: H2 reaches H1 at H1's carrier mapping
 * (the address S saw); the packet turns at the carrier's gateway and H1 sees H2's own carrier
 * mapping as the source (RFC 4787 REQ-9: external source). Without hairpinning at the
 * carrier, the same packet is dropped there. */
static void test_hairpin_at_carrier(void)
{
    for (int hp = 0; hp <= 1; hp++) {
        cworld w;
        sim_nat_cfg cgn = {.hairpin = hp};
        cworld_init(&w, &cgn, NULL);
        rx r1, r2, rs;
        sim_udp_sock *u1 = bind_rx(&w, w.h1, PORT, &r1), *u2 = bind_rx(&w, w.h2, PORT, &r2);
        bind_rx(&w, w.srv, SPORT, &rs);
        mesh_addr s = mesh_addr_v4(S_IP, SPORT);
        say(u1, &s);
        say(u2, &s);
        run(&w);
        CU_ASSERT_EQUAL_FATAL(rs.n, 2);
        mesh_addr e1 = rs.from[0], e2 = rs.from[1];
        CU_ASSERT_EQUAL(sim_addr_ip4(&e1), CGN_PUB);
        CU_ASSERT_EQUAL(sim_addr_ip4(&e2), CGN_PUB);
        CU_ASSERT_NOT_EQUAL(e1.port, e2.port); /* one carrier port each */
        mesh_time t0 = sim_net_now(w.net);
        say(u2, &e1);
        run(&w);
        if (hp) {
            CU_ASSERT_EQUAL_FATAL(r1.n, 1);
            CU_ASSERT(mesh_addr_equal(&r1.from[0], &e2));
            CU_ASSERT_EQUAL(r1.at[0], t0); /* ideal links, no core: all at the gateway */
            CU_ASSERT_EQUAL(count_events(&w, SIM_NAT_EV_HAIRPIN), 1);
        } else {
            CU_ASSERT_EQUAL(r1.n, 0);
            CU_ASSERT_EQUAL(count_events(&w, SIM_NAT_EV_HAIRPIN_DROP), 1);
        }
        cworld_free(&w);
    }
}

/* Customers of one carrier reach each other over its inside, no carrier NAT involved: the
 * phone (on the carrier LAN) sends to home1's router mapping 100.64.0.2:7000, which H1 made
 * towards it; H1 answers the phone at its own address. */
static void test_over_the_carrier_inside(void)
{
    cworld w;
    cworld_init(&w, NULL, NULL);
    rx r1, rp;
    sim_udp_sock *u1 = bind_rx(&w, w.h1, PORT, &r1), *up = bind_rx(&w, w.phone, PORT, &rp);
    mesh_addr phone = mesh_addr_v4(PHONE, PORT), wan1 = mesh_addr_v4(WAN1, PORT);
    say(u1, &phone);
    run(&w);
    CU_ASSERT_EQUAL_FATAL(rp.n, 1);
    CU_ASSERT(mesh_addr_equal(&rp.from[0], &wan1));
    CU_ASSERT_EQUAL(rp.at[0], 0);
    say(up, &wan1);
    run(&w);
    CU_ASSERT_EQUAL_FATAL(r1.n, 1);
    CU_ASSERT(mesh_addr_equal(&r1.from[0], &phone));
    CU_ASSERT_EQUAL(sim_nat_get_stats(w.cgn).out_pkts, 0);
    cworld_free(&w);
}

/* A router in front of one host on a private office LAN: the host's packets are translated
 * twice (router, office NAT); a neighbour on the office LAN reaches the host only through the
 * router's public (office) address. With links: each level's site link adds its latency. */
static void test_router_in_front_of_a_host(void)
{
    cworld w;
    memset(&w, 0, sizeof w);
    CU_ASSERT_EQUAL_FATAL(sim_sched_new(&w.s), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_net_new(&w.net, w.s, 1), MESH_OK);
    sim_net_set_core(w.net, &(sim_link_cfg){.latency = CORE_LAT}, NULL, NULL);
    sim_link_cfg two = {.latency = 2 * MS}, three = {.latency = 3 * MS};
    sim_lan_cfg oc = {"office", three, three, CGN_PUB, 1, NULL};
    CU_ASSERT_EQUAL_FATAL(sim_net_add_lan(w.net, &oc, &w.carrier), MESH_OK);
    sim_lan_cfg rc = {"router", two, two, SIM_IP4(10, 1, 0, 5), 1, w.carrier};
    CU_ASSERT_EQUAL_FATAL(sim_net_add_lan(w.net, &rc, &w.home1), MESH_OK);
    w.h1 = add_host(w.net, "h", SIM_IP4(192, 168, 1, 2), w.home1);
    w.h2 = add_host(w.net, "neighbour", SIM_IP4(10, 1, 0, 6), w.carrier);
    w.srv = add_host(w.net, "s", S_IP, NULL);
    CU_ASSERT_EQUAL_FATAL(sim_udp_new(&w.udp, w.net), MESH_OK);
    w.cgn = add_nat(&w, w.carrier, NULL);
    w.nat1 = add_nat(&w, w.home1, NULL);
    rx rh, rn, rs;
    sim_udp_sock *uh = bind_rx(&w, w.h1, PORT, &rh), *un = bind_rx(&w, w.h2, PORT, &rn);
    bind_rx(&w, w.srv, SPORT, &rs);
    mesh_addr s = mesh_addr_v4(S_IP, SPORT), n = mesh_addr_v4(SIM_IP4(10, 1, 0, 6), PORT);
    say(uh, &s);
    say(uh, &n);
    run(&w);
    CU_ASSERT_EQUAL_FATAL(rs.n, 1);
    CU_ASSERT_EQUAL(rs.at[0], 2 * MS + 3 * MS + CORE_LAT); /* router link, office link, core */
    CU_ASSERT_EQUAL(sim_addr_ip4(&rs.from[0]), CGN_PUB);
    CU_ASSERT_EQUAL_FATAL(rn.n, 1);
    CU_ASSERT_EQUAL(rn.at[0], 2 * MS);
    mesh_addr router = mesh_addr_v4(SIM_IP4(10, 1, 0, 5), PORT);
    CU_ASSERT(mesh_addr_equal(&rn.from[0], &router));
    say(un, &router); /* the neighbour answers the router's address: in to the host */
    run(&w);
    CU_ASSERT_EQUAL_FATAL(rh.n, 1);
    CU_ASSERT_EQUAL(sim_host_lan(w.h1), w.home1);
    CU_ASSERT(sim_lan_has_host(w.home1, SIM_IP4(192, 168, 1, 2)));
    CU_ASSERT(!sim_lan_has_host(w.carrier, SIM_IP4(10, 1, 0, 5))); /* a LAN, not a host */
    cworld_free(&w);
}

/* What sim_net_add_lan refuses for a LAN behind another. */
static void test_topology_limits(void)
{
    sim_sched *s;
    sim_net *net;
    CU_ASSERT_EQUAL_FATAL(sim_sched_new(&s), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_net_new(&net, s, 1), MESH_OK);
    sim_lan *pub = NULL, *top, *l;
    sim_lan_cfg c = {"pub", {0}, {0}, SIM_IP4(12, 0, 0, 1), 0, NULL};
    CU_ASSERT_EQUAL(sim_net_add_lan(net, &c, &pub), MESH_OK);
    top = add_lan(net, "top", SIM_IP4(12, 0, 0, 2), NULL);
    sim_lan_cfg bad = {"bad", {0}, {0}, SIM_IP4(100, 64, 0, 2), 0, top}; /* not private */
    CU_ASSERT_EQUAL(sim_net_add_lan(net, &bad, &l), MESH_ERR_INVAL);
    sim_host *h = add_host(net, "h", SIM_IP4(100, 64, 0, 3), top);
    (void)h;
    sim_lan_cfg clash = {"clash", {0}, {0}, SIM_IP4(100, 64, 0, 3), 1, top};
    CU_ASSERT_EQUAL(sim_net_add_lan(net, &clash, &l), MESH_ERR_EXISTS);
    /* behind a public LAN the public address is global: it clashes with the core's */
    sim_lan_cfg glob = {"glob", {0}, {0}, SIM_IP4(12, 0, 0, 2), 1, pub};
    CU_ASSERT_EQUAL(sim_net_add_lan(net, &glob, &l), MESH_ERR_EXISTS);
    glob.public_ip = SIM_IP4(12, 0, 0, 9);
    CU_ASSERT_EQUAL(sim_net_add_lan(net, &glob, &l), MESH_OK);
    CU_ASSERT(sim_lan_public_is_global(l));
    sim_lan *up = top;
    for (int depth = 2; depth <= SIM_NET_MAX_LAN_DEPTH; depth++)
        up = add_lan(net, "deep", SIM_IP4(100, 64, 1, depth), up);
    sim_lan_cfg deeper = {"deeper", {0}, {0}, SIM_IP4(100, 64, 2, 1), 1, up};
    CU_ASSERT_EQUAL(sim_net_add_lan(net, &deeper, &l), MESH_ERR_LIMIT);
    sim_net_free(net);
    sim_sched_free(s);
}

/* ---- TCP through NAT pairs ----------------------------------------------------------------- */

/* A node: its NATs (nearest first) and host, a listener on PORT, the stream it opens and the
 * one it accepts. */
typedef struct tnode {
    struct tworld *w;
    size_t n;
    sim_lan *lan[SIM_NET_MAX_LAN_DEPTH];
    sim_nat *nat[SIM_NET_MAX_LAN_DEPTH];
    sim_host *h;
    sim_tcp_listener *l;
    sim_tcp_conn *out, *in;
    int connected, accepted, closed;
    mesh_time connected_at;
    mesh_addr seen; /* the address the rendezvous server saw its registration come from */
} tnode;

typedef struct tworld {
    sim_sched *s;
    sim_net *net;
    sim_tcp *tcp;
    sim_host *srv;
    sim_tcp_listener *sl;
    tnode a, b;
} tworld;

static void t_connected(sim_tcp_conn *c, void *ud)
{
    tnode *x = ud;
    (void)c;
    x->connected++;
    x->connected_at = sim_sched_now(x->w->s);
}

static void t_closed(sim_tcp_conn *c, int reason, void *ud)
{
    tnode *x = ud;
    (void)reason;
    if (c == x->out)
        x->out = NULL;
    x->closed++;
}

static const sim_tcp_cbs T_CBS = {t_connected, NULL, NULL, t_closed};

static void t_accept(sim_tcp_listener *l, sim_tcp_conn *c, const mesh_addr *peer, void *ud)
{
    tnode *x = ud;
    (void)l;
    (void)peer;
    x->accepted++;
    x->in = c;
    sim_tcp_set_cbs(c, &T_CBS, x);
}

/* The rendezvous server records what address each registration came from. */
static void s_accept(sim_tcp_listener *l, sim_tcp_conn *c, const mesh_addr *peer, void *ud)
{
    tworld *w = ud;
    (void)l;
    sim_lan *top = w->a.n ? w->a.lan[w->a.n - 1] : NULL;
    uint32_t a_pub = top ? sim_lan_public_ip(top) : sim_host_ip(w->a.h);
    (sim_addr_ip4(peer) == a_pub ? &w->a : &w->b)->seen = *peer;
    sim_tcp_set_cbs(c, NULL, NULL);
}

/* Node x behind the NATs cfg[0..n-1] (nearest first); its outermost public address pub. */
static void tnode_build(tworld *w, tnode *x, uint32_t pub, const sim_nat_cfg *cfg, size_t n)
{
    x->w = w;
    x->n = n;
    sim_lan *up = NULL;
    for (size_t i = n; i-- > 0;) {
        sim_lan_cfg lc = {"lan", {0}, {0}, up ? SIM_IP4(100, 64, 0, 2) : pub, 1, up};
        CU_ASSERT_EQUAL_FATAL(sim_net_add_lan(w->net, &lc, &x->lan[i]), MESH_OK);
        CU_ASSERT_EQUAL_FATAL(sim_nat_new(&x->nat[i], w->net, x->lan[i], &cfg[i]), MESH_OK);
        up = x->lan[i];
    }
    sim_link_cfg acc = {.latency = MS};
    sim_host_cfg hc = {"node", n ? INNER : pub, n ? x->lan[0] : NULL, acc, acc};
    CU_ASSERT_EQUAL_FATAL(sim_net_add_host(w->net, &hc, &x->h), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_tcp_listen(w->tcp, x->h, PORT, t_accept, x, &x->l), MESH_OK);
}

static void tworld_init(tworld *w, const sim_nat_cfg *ca, size_t na, const sim_nat_cfg *cb,
                        size_t nb)
{
    memset(w, 0, sizeof *w);
    CU_ASSERT_EQUAL_FATAL(sim_sched_new(&w->s), MESH_OK);
    sim_sched_set_event_cap(w->s, 1000000);
    CU_ASSERT_EQUAL_FATAL(sim_net_new(&w->net, w->s, 5), MESH_OK);
    sim_net_set_core(w->net, &(sim_link_cfg){.latency = CORE_LAT}, NULL, NULL);
    sim_tcp_cfg tc = {.connect_timeout = 3 * SEC};
    CU_ASSERT_EQUAL_FATAL(sim_tcp_new(&w->tcp, w->net, &tc), MESH_OK);
    w->srv = add_host(w->net, "s", S_IP, NULL);
    CU_ASSERT_EQUAL_FATAL(sim_tcp_listen(w->tcp, w->srv, SPORT, s_accept, w, &w->sl), MESH_OK);
    tnode_build(w, &w->a, SIM_IP4(203, 0, 113, 1), ca, na);
    tnode_build(w, &w->b, SIM_IP4(203, 0, 113, 2), cb, nb);
}

static void tworld_free(tworld *w)
{
    sim_tcp_free(w->tcp);
    for (size_t i = 0; i < w->a.n; i++)
        sim_nat_free(w->a.nat[i]);
    for (size_t i = 0; i < w->b.n; i++)
        sim_nat_free(w->b.nat[i]);
    sim_net_free(w->net);
    sim_sched_free(w->s);
}

static void trun(tworld *w, mesh_time until)
{
    CU_ASSERT_EQUAL(sim_sched_run_until(w->s, until), MESH_OK);
}

/* Both nodes tell the rendezvous server their listening port (a connection from it), which
 * sees the address each is mapped to. */
static void register_both(tworld *w)
{
    mesh_addr s = mesh_addr_v4(S_IP, SPORT);
    sim_tcp_conn *c;
    CU_ASSERT_EQUAL(sim_tcp_connect_from(w->tcp, w->a.h, PORT, &s, NULL, NULL, &c), MESH_OK);
    CU_ASSERT_EQUAL(sim_tcp_connect_from(w->tcp, w->b.h, PORT, &s, NULL, NULL, &c), MESH_OK);
    trun(w, SEC);
    CU_ASSERT_EQUAL(w->a.seen.family, MESH_AF_INET4);
    CU_ASSERT_EQUAL(w->b.seen.family, MESH_AF_INET4);
}

static void punch_from(tnode *x, const mesh_addr *to)
{
    CU_ASSERT_EQUAL(sim_tcp_connect_from(x->w->tcp, x->h, PORT, to, &T_CBS, x, &x->out), MESH_OK);
}

/* Two port-restricted cones (EIM + address-and-port-dependent filtering): each NAT drops the
 * other's SYN until its own SYN left; sent at once, the SYNs cross between the NATs and both
 * sides are connected one RTT later (1 ms access + 10 ms core each way: 24 ms), no accept. */
static void test_punch_port_restricted(void)
{
    sim_nat_cfg prc = {.mapping = SIM_NAT_ENDPOINT_INDEPENDENT,
                       .filtering = SIM_NAT_ADDRESS_PORT_DEPENDENT};
    tworld w;
    tworld_init(&w, &prc, 1, &prc, 1);
    register_both(&w);
    /* before the punch, B's NAT refuses A's unannounced SYN (OBSERVED does not hold) */
    CU_ASSERT(!(sim_nat_pair_paths(&(sim_nat_chain){1, {sim_nat_hop_of(&prc)}},
                                   &(sim_nat_chain){1, {sim_nat_hop_of(&prc)}}) &
                SIM_NAT_PATH_OBSERVED));
    mesh_time t0 = sim_sched_now(w.s);
    punch_from(&w.a, &w.b.seen);
    punch_from(&w.b, &w.a.seen);
    trun(&w, t0 + 5 * SEC);
    CU_ASSERT_EQUAL(w.a.connected, 1);
    CU_ASSERT_EQUAL(w.b.connected, 1);
    CU_ASSERT_EQUAL(w.a.connected_at, t0 + 2 * (2 * MS + CORE_LAT));
    CU_ASSERT_EQUAL(w.b.connected_at, t0 + 2 * (2 * MS + CORE_LAT));
    CU_ASSERT_EQUAL(w.a.accepted + w.b.accepted, 0);
    sim_nat_stats st = sim_nat_get_stats(w.b.nat[0]);
    CU_ASSERT_EQUAL(st.in_filtered + st.in_no_mapping, 0); /* nothing came early */
    tworld_free(&w);
}

/* Two symmetric NATs with random ports: each punch leaves from a new external port, so each
 * SYN finds no mapping at the other NAT; both opens time out (3 s). */
static void test_punch_symmetric_fails(void)
{
    sim_nat_cfg sym = {.mapping = SIM_NAT_ADDRESS_PORT_DEPENDENT,
                       .filtering = SIM_NAT_ADDRESS_PORT_DEPENDENT,
                       .port_alloc = SIM_NAT_PORT_RANDOM};
    tworld w;
    tworld_init(&w, &sym, 1, &sym, 1);
    register_both(&w);
    mesh_time t0 = sim_sched_now(w.s);
    punch_from(&w.a, &w.b.seen);
    punch_from(&w.b, &w.a.seen);
    trun(&w, t0 + 5 * SEC);
    CU_ASSERT_EQUAL(w.a.connected + w.b.connected + w.a.accepted + w.b.accepted, 0);
    CU_ASSERT_EQUAL(w.a.closed, 1);
    CU_ASSERT_EQUAL(w.b.closed, 1);
    CU_ASSERT(sim_nat_get_stats(w.a.nat[0]).in_filtered +
                  sim_nat_get_stats(w.a.nat[0]).in_no_mapping >
              0);
    tworld_free(&w);
}

/* ---- sim_nat_pair_paths against the model -----------------------------------------------------
 */

typedef struct kind {
    const char *name;
    size_t n;
    sim_nat_cfg cfg[2]; /* nearest first */
} kind;

#define EI SIM_NAT_ENDPOINT_INDEPENDENT
#define AD SIM_NAT_ADDRESS_DEPENDENT
#define APD SIM_NAT_ADDRESS_PORT_DEPENDENT
#define RND SIM_NAT_PORT_RANDOM

static const kind KINDS[] = {
    {"public", 0, {{0}}},
    {"full-cone", 1, {{.mapping = EI, .filtering = EI}}},
    {"restricted", 1, {{.mapping = EI, .filtering = AD}}},
    {"port-restricted", 1, {{.mapping = EI, .filtering = APD}}},
    {"symmetric", 1, {{.mapping = APD, .filtering = APD, .port_alloc = RND}}},
    {"apdm-eif", 1, {{.mapping = APD, .filtering = EI}}},
    {"adm-adf", 1, {{.mapping = AD, .filtering = AD}}},
    {"full-cone+upnp", 1, {{.mapping = EI, .filtering = EI, .portmap = 1}}},
    {"symmetric+natpmp", 1, {{.mapping = APD, .filtering = APD, .natpmp = 1}}},
    {"cone behind prc cgn",
     2,
     {{.mapping = EI, .filtering = EI}, {.mapping = EI, .filtering = APD}}},
    {"prc behind sym cgn",
     2,
     {{.mapping = EI, .filtering = APD}, {.mapping = APD, .filtering = APD}}},
    {"upnp behind cone cgn",
     2,
     {{.mapping = EI, .filtering = EI, .portmap = 1}, {.mapping = EI, .filtering = EI}}},
    {"adm-eif", 1, {{.mapping = AD, .filtering = EI}}},
    {"prc behind apdm-eif cgn",
     2,
     {{.mapping = EI, .filtering = APD}, {.mapping = APD, .filtering = EI}}},
    {"apdm-eif behind restricted cgn",
     2,
     {{.mapping = APD, .filtering = EI}, {.mapping = EI, .filtering = AD}}},
};
#define NKINDS (sizeof KINDS / sizeof KINDS[0])

static sim_nat_chain chain_of(const kind *k)
{
    sim_nat_chain c = {0};
    c.n = k->n;
    for (size_t i = 0; i < k->n; i++)
        c.hop[i] = sim_nat_hop_of(&k->cfg[i]);
    return c;
}

static void world_of(tworld *w, const kind *a, const kind *b)
{
    tworld_init(w, a->cfg, a->n, b->cfg, b->n);
}

/* A connects (from an ephemeral port) to `to` and is connected within the timeout. */
static int plain_connect(tworld *w, const mesh_addr *to)
{
    mesh_time t0 = sim_sched_now(w->s);
    CU_ASSERT_EQUAL(sim_tcp_connect(w->tcp, w->a.h, to, &T_CBS, &w->a, &w->a.out), MESH_OK);
    trun(w, t0 + 5 * SEC);
    return w->a.connected > 0;
}

static unsigned simulate(const kind *ka, const kind *kb)
{
    unsigned got = 0;
    tworld w;
    /* DIRECT: B's own address (its outermost NAT's when it has one) */
    world_of(&w, ka, kb);
    uint32_t b_pub = kb->n ? sim_lan_public_ip(w.b.lan[kb->n - 1]) : sim_host_ip(w.b.h);
    mesh_addr own = mesh_addr_v4(b_pub, PORT);
    if (plain_connect(&w, &own))
        got |= SIM_NAT_PATH_DIRECT;
    tworld_free(&w);
    /* OBSERVED: what the rendezvous server saw of B, A alone */
    world_of(&w, ka, kb);
    register_both(&w);
    if (plain_connect(&w, &w.b.seen))
        got |= SIM_NAT_PATH_OBSERVED;
    tworld_free(&w);
    /* PUNCHED: both at once from their listening ports */
    world_of(&w, ka, kb);
    register_both(&w);
    mesh_time t0 = sim_sched_now(w.s);
    punch_from(&w.a, &w.b.seen);
    punch_from(&w.b, &w.a.seen);
    trun(&w, t0 + 5 * SEC);
    if (w.a.connected + w.a.accepted > 0 && w.b.connected + w.b.accepted > 0)
        got |= SIM_NAT_PATH_PUNCHED;
    tworld_free(&w);
    /* MAPPED: B asks its nearest NAT for its listening port (NAT-PMP or UPnP) */
    world_of(&w, ka, kb);
    mesh_addr in = mesh_addr_v4(INNER, PORT), ext = {0};
    int rc = MESH_ERR_UNSUPPORTED;
    if (kb->n && kb->cfg[0].natpmp) {
        sim_nat_pmp_answer ans;
        rc = sim_nat_pmp_map(w.b.nat[0], SIM_PROTO_TCP, &in, 0, 3600, &ans);
        ext = ans.external;
    } else if (kb->n && kb->cfg[0].portmap) {
        rc = sim_nat_portmap_request(w.b.nat[0], SIM_PROTO_TCP, &in, 3600, &ext);
    }
    if (rc == MESH_OK && plain_connect(&w, &ext))
        got |= SIM_NAT_PATH_MAPPED;
    tworld_free(&w);
    return got;
}

static void test_pair_paths_match_the_model(void)
{
    unsigned connectable = 0;
    for (size_t i = 0; i < NKINDS; i++)
        for (size_t j = 0; j < NKINDS; j++) {
            sim_nat_chain a = chain_of(&KINDS[i]), b = chain_of(&KINDS[j]);
            unsigned want = sim_nat_pair_paths(&a, &b), got = simulate(&KINDS[i], &KINDS[j]);
            if (want != got)
                printf("\n  %s -> %s: function %#x, model %#x", KINDS[i].name, KINDS[j].name, want,
                       got);
            CU_ASSERT_EQUAL(want, got);
            connectable += (want | sim_nat_pair_paths(&b, &a)) != 0;
        }
    /* the matrix is not trivial either way */
    CU_ASSERT(connectable > NKINDS && connectable < NKINDS * NKINDS);
    /* the ones the brief names */
    sim_nat_chain eim = chain_of(&KINDS[3]), sym = chain_of(&KINDS[4]);
    CU_ASSERT(sim_nat_pair_paths(&eim, &eim) & SIM_NAT_PATH_PUNCHED);
    CU_ASSERT_EQUAL(sim_nat_pair_paths(&sym, &sym), 0);
    CU_ASSERT_EQUAL(sim_nat_pair_paths(NULL, NULL),
                    SIM_NAT_PATH_DIRECT | SIM_NAT_PATH_OBSERVED | SIM_NAT_PATH_PUNCHED);
    CU_ASSERT_STRING_EQUAL(sim_nat_path_name(SIM_NAT_PATH_PUNCHED), "punched");
    CU_ASSERT_STRING_EQUAL(sim_nat_path_name(3), "?");
}

static CU_TestInfo tests[] = {
    {"home router behind a carrier NAT: two translations", test_two_levels},
    {"hairpinning at the carrier NAT, on and off", test_hairpin_at_carrier},
    {"homes reach each other over the carrier's inside", test_over_the_carrier_inside},
    {"a router in front of one host on an office LAN", test_router_in_front_of_a_host},
    {"LANs behind LANs: what is refused", test_topology_limits},
    {"TCP punch through two port-restricted cones", test_punch_port_restricted},
    {"TCP punch through two symmetric NATs fails", test_punch_symmetric_fails},
    {"sim_nat_pair_paths agrees with the model, all pairs", test_pair_paths_match_the_model},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"nat chains", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
