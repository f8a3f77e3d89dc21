/* test_nat.c — the NAT middlebox: every mapping × filtering combination as a table, TCP
 * through the NAT (out, unsolicited in: drop or RST, static forward in), hairpinning on and
 * off, mapping timeouts with exact virtual times (outbound refresh, no inbound refresh unless
 * asked), TCP transitory vs established timeouts, port preservation vs random ports, the
 * port-mapping service, and the table limits.
 *
 * Topology of every test (links ideal, core latency CORE_LAT each way):
 *
 *     H  10.0.0.2 ─┐                               ┌─ S1 198.51.100.1
 *                  ├─ LAN "home" ─ NAT 203.0.113.1 ─ core ─┤
 *     H2 10.0.0.3 ─┘     (private)                 └─ S2 198.51.100.2
 */
#include "mesh_test.h"

#include <string.h>

#include "sim/nat.h"
#include "sim/tcp.h"
#include "sim/udp.h"

#define PUB SIM_IP4(203, 0, 113, 1)
#define H_IP SIM_IP4(10, 0, 0, 2)
#define H2_IP SIM_IP4(10, 0, 0, 3)
#define S1_IP SIM_IP4(198, 51, 100, 1)
#define S2_IP SIM_IP4(198, 51, 100, 2)
#define CORE_LAT (5 * MESH_NS_PER_MS)
#define SEC MESH_NS_PER_S

enum { MAXRX = 64, MAXEV = 512, P1 = 3478, P2 = 3479, HPORT = 5000 };

typedef struct rx {
    sim_net *net;
    int n;
    mesh_addr from[MAXRX];
    mesh_time at[MAXRX];
    char text[MAXRX][16];
} rx;

typedef struct world {
    sim_sched *s;
    sim_net *net;
    sim_udp *udp;
    sim_tcp *tcp;
    sim_lan *lan;
    sim_nat *nat;
    sim_host *h, *h2, *s1, *s2;
    int nev;
    sim_nat_event ev[MAXEV];
} world;

static void on_event(void *ud, const sim_nat_event *ev)
{
    world *w = ud;
    if (w->nev < MAXEV)
        w->ev[w->nev++] = *ev;
}

static sim_host *add_host(world *w, const char *name, uint32_t ip, sim_lan *lan)
{
    sim_host_cfg c = {name, ip, lan, {0}, {0}};
    sim_host *h = NULL;
    CU_ASSERT_EQUAL_FATAL(sim_net_add_host(w->net, &c, &h), MESH_OK);
    return h;
}

static void world_init(world *w, uint64_t seed, const sim_nat_cfg *cfg)
{
    memset(w, 0, sizeof *w);
    CU_ASSERT_EQUAL_FATAL(sim_sched_new(&w->s), MESH_OK);
    sim_sched_set_event_cap(w->s, 2000000);
    CU_ASSERT_EQUAL_FATAL(sim_net_new(&w->net, w->s, seed), MESH_OK);
    sim_net_set_core(w->net, &(sim_link_cfg){.latency = CORE_LAT}, NULL, NULL);
    sim_lan_cfg lc = {"home", {0}, {0}, PUB, 1};
    CU_ASSERT_EQUAL_FATAL(sim_net_add_lan(w->net, &lc, &w->lan), MESH_OK);
    w->h = add_host(w, "h", H_IP, w->lan);
    w->h2 = add_host(w, "h2", H2_IP, w->lan);
    w->s1 = add_host(w, "s1", S1_IP, NULL);
    w->s2 = add_host(w, "s2", S2_IP, NULL);
    CU_ASSERT_EQUAL_FATAL(sim_udp_new(&w->udp, w->net), MESH_OK);
    sim_tcp_cfg tc = {.connect_timeout = 3 * SEC};
    CU_ASSERT_EQUAL_FATAL(sim_tcp_new(&w->tcp, w->net, &tc), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_nat_new(&w->nat, w->net, w->lan, cfg), MESH_OK);
    sim_nat_set_observer(w->nat, on_event, w, SIM_NAT_OBSERVE_DEFAULT);
}

static void world_free(world *w)
{
    sim_tcp_free(w->tcp);
    sim_udp_free(w->udp);
    sim_nat_free(w->nat);
    sim_net_free(w->net);
    sim_sched_free(w->s);
}

static int count_events(const world *w, int kind)
{
    int n = 0;
    for (int i = 0; i < w->nev; i++)
        n += w->ev[i].kind == kind;
    return n;
}

/* ---- UDP helpers ----------------------------------------------------------------------- */

static void on_rx(sim_udp_sock *s, const mesh_addr *from, const uint8_t *data, size_t len, void *ud)
{
    rx *r = ud;
    (void)s;
    CU_ASSERT_FATAL(r->n < MAXRX);
    r->from[r->n] = *from;
    r->at[r->n] = sim_net_now(r->net);
    size_t k = len < sizeof r->text[0] - 1 ? len : sizeof r->text[0] - 1;
    memcpy(r->text[r->n], data, k);
    r->text[r->n][k] = 0;
    r->n++;
}

static sim_udp_sock *bind_rx(world *w, sim_host *h, uint16_t port, rx *r)
{
    memset(r, 0, sizeof *r);
    r->net = w->net;
    sim_udp_sock *s = NULL;
    CU_ASSERT_EQUAL_FATAL(sim_udp_bind(w->udp, h, port, on_rx, r, &s), MESH_OK);
    return s;
}

static void say(sim_udp_sock *s, uint32_t ip, uint16_t port, const char *text)
{
    mesh_addr to = mesh_addr_v4(ip, port);
    CU_ASSERT_EQUAL(sim_udp_send(s, &to, text, strlen(text)), MESH_OK);
}

static void run(world *w)
{
    CU_ASSERT_EQUAL(sim_sched_run(w->s), MESH_OK);
}
static void run_to(world *w, mesh_time t)
{
    CU_ASSERT_EQUAL(sim_sched_run_until(w->s, t), MESH_OK);
}

/* Did r receive a datagram from ip:port? */
static int got_from(const rx *r, uint32_t ip, uint16_t port)
{
    for (int i = 0; i < r->n; i++)
        if (sim_addr_ip4(&r->from[i]) == ip && r->from[i].port == port)
            return 1;
    return 0;
}

/* ---- the 3 × 3 table ------------------------------------------------------------------- */

#define EI SIM_NAT_ENDPOINT_INDEPENDENT
#define AD SIM_NAT_ADDRESS_DEPENDENT
#define APD SIM_NAT_ADDRESS_PORT_DEPENDENT

static const struct nat_row {
    uint8_t mapping, filtering;
    int same_port_s1p2, same_port_s2p1; /* external port reused towards S1:P2 / S2:P1? */
    int in_s1p1, in_s1p2, in_s2p1;      /* inbound probe from there gets through? */
} table[] = {
    {EI, EI, 1, 1, 1, 1, 1},  {EI, AD, 1, 1, 1, 1, 0},  {EI, APD, 1, 1, 1, 0, 0},
    {AD, EI, 1, 0, 1, 1, 1},  {AD, AD, 1, 0, 1, 1, 0},  {AD, APD, 1, 0, 1, 0, 0},
    {APD, EI, 0, 0, 1, 1, 1}, {APD, AD, 0, 0, 1, 1, 0}, {APD, APD, 0, 0, 1, 0, 0},
};

static void table_row(const struct nat_row *row)
{
    world w;
    sim_nat_cfg cfg = {.mapping = row->mapping, .filtering = row->filtering};
    world_init(&w, 42, &cfg);
    rx rh, r11, r12, r21;
    sim_udp_sock *hs = bind_rx(&w, w.h, HPORT, &rh);
    sim_udp_sock *s11 = bind_rx(&w, w.s1, P1, &r11);
    sim_udp_sock *s12 = bind_rx(&w, w.s1, P2, &r12);
    sim_udp_sock *s21 = bind_rx(&w, w.s2, P1, &r21);

    /* 1. H → S1:P1 makes the first mapping; port preservation keeps H's port */
    say(hs, S1_IP, P1, "out");
    run(&w);
    CU_ASSERT_EQUAL_FATAL(r11.n, 1);
    CU_ASSERT_EQUAL(sim_addr_ip4(&r11.from[0]), PUB);
    CU_ASSERT_EQUAL(r11.from[0].port, HPORT);
    uint16_t x1 = r11.from[0].port;

    /* 2. probes to PUB:x1 from S1:P1, S1:P2, S2:P1 (before H sent anything else) */
    say(s11, PUB, x1, "p11");
    say(s12, PUB, x1, "p12");
    say(s21, PUB, x1, "p21");
    run(&w);
    CU_ASSERT_EQUAL(got_from(&rh, S1_IP, P1), row->in_s1p1);
    CU_ASSERT_EQUAL(got_from(&rh, S1_IP, P2), row->in_s1p2);
    CU_ASSERT_EQUAL(got_from(&rh, S2_IP, P1), row->in_s2p1);
    int passed = row->in_s1p1 + row->in_s1p2 + row->in_s2p1;
    CU_ASSERT_EQUAL(rh.n, passed);
    sim_nat_stats st = sim_nat_get_stats(w.nat);
    CU_ASSERT_EQUAL(st.in_pkts, (uint64_t)passed);
    CU_ASSERT_EQUAL(st.in_filtered, (uint64_t)(3 - passed));
    CU_ASSERT_EQUAL(st.in_no_mapping, 0);
    CU_ASSERT_EQUAL(count_events(&w, SIM_NAT_EV_IN_FILTERED), 3 - passed);

    /* 3. H → S1:P2 and H → S2:P1: which external port? */
    say(hs, S1_IP, P2, "out2");
    say(hs, S2_IP, P1, "out3");
    run(&w);
    CU_ASSERT_EQUAL_FATAL(r12.n, 1);
    CU_ASSERT_EQUAL_FATAL(r21.n, 1);
    uint16_t x2 = r12.from[0].port, x3 = r21.from[0].port;
    CU_ASSERT_EQUAL(sim_addr_ip4(&r12.from[0]), PUB);
    CU_ASSERT_EQUAL(sim_addr_ip4(&r21.from[0]), PUB);
    CU_ASSERT_EQUAL(x2 == x1, row->same_port_s1p2);
    CU_ASSERT_EQUAL(x3 == x1, row->same_port_s2p1);
    CU_ASSERT_TRUE(row->mapping == EI || x3 != x2); /* S2 never shares S1's port here */
    uint64_t maps = 1 + !row->same_port_s1p2 + !row->same_port_s2p1;
    st = sim_nat_get_stats(w.nat);
    CU_ASSERT_EQUAL(st.maps_created, maps);
    CU_ASSERT_EQUAL(st.maps_live, maps);
    CU_ASSERT_EQUAL(count_events(&w, SIM_NAT_EV_MAP_CREATE), (int)maps);
    /* the lookup agrees with what the servers saw */
    mesh_addr in = mesh_addr_v4(H_IP, HPORT), rem = mesh_addr_v4(S2_IP, P1), ext;
    CU_ASSERT_EQUAL(sim_nat_lookup(w.nat, SIM_PROTO_UDP, &in, &rem, &ext), MESH_OK);
    CU_ASSERT_EQUAL(ext.port, x3);
    CU_ASSERT_EQUAL(sim_addr_ip4(&ext), PUB);
    world_free(&w);
}

static void test_table(void)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        table_row(&table[i]);
}

/* ---- TCP ---------------------------------------------------------------------------------- */

/* A host middlebox that remembers the RSTs reaching its host. */
typedef struct rst_tap {
    int n;
    uint32_t ack[8];
    mesh_addr src[8];
} rst_tap;

static int tap_on_packet(void *obj, sim_mbox *mb, sim_pkt *p, int dir, mesh_time *delay)
{
    rst_tap *t = obj;
    (void)mb;
    (void)delay;
    if (dir == SIM_DIR_IN && (p->flags & SIM_TCP_RST) && t->n < 8) {
        t->ack[t->n] = p->ack;
        t->src[t->n++] = p->src;
    }
    return SIM_PASS;
}

static const sim_mbox_ops tap_ops = {tap_on_packet};

typedef struct app {
    sim_net *net;
    sim_tcp_conn *c;
    const char *say; /* written when connected / accepted */
    char got[128];
    size_t ngot;
    int connected, accepted, closed, reason;
    mesh_time connected_at, closed_at;
    mesh_addr peer;
} app;

static void app_connected(sim_tcp_conn *c, void *ud)
{
    app *a = ud;
    a->connected = 1;
    a->connected_at = sim_net_now(a->net);
    if (a->say)
        CU_ASSERT_EQUAL(sim_tcp_write(c, a->say, strlen(a->say)), MESH_OK);
}

static void app_data(sim_tcp_conn *c, const uint8_t *data, size_t len, void *ud)
{
    app *a = ud;
    (void)c;
    CU_ASSERT_FATAL(a->ngot + len < sizeof a->got);
    memcpy(a->got + a->ngot, data, len);
    a->ngot += len;
}

static void app_closed(sim_tcp_conn *c, int reason, void *ud)
{
    app *a = ud;
    (void)c;
    a->closed = 1;
    a->reason = reason;
    a->closed_at = sim_net_now(a->net);
    a->c = NULL;
}

static const sim_tcp_cbs app_cbs = {app_connected, app_data, NULL, app_closed};

static void app_accept(sim_tcp_listener *l, sim_tcp_conn *c, const mesh_addr *peer, void *ud)
{
    app *a = ud;
    (void)l;
    a->accepted = 1;
    a->peer = *peer;
    a->c = c;
    sim_tcp_set_cbs(c, &app_cbs, a);
    if (a->say)
        CU_ASSERT_EQUAL(sim_tcp_write(c, a->say, strlen(a->say)), MESH_OK);
}

static void app_init(app *a, world *w, const char *text)
{
    memset(a, 0, sizeof *a);
    a->net = w->net;
    a->say = text;
}

static sim_tcp_listener *listen_on(world *w, sim_host *h, uint16_t port, app *a)
{
    sim_tcp_listener *l = NULL;
    CU_ASSERT_EQUAL_FATAL(sim_tcp_listen(w->tcp, h, port, app_accept, a, &l), MESH_OK);
    return l;
}

static void connect_to(world *w, sim_host *h, uint32_t ip, uint16_t port, app *a)
{
    mesh_addr to = mesh_addr_v4(ip, port);
    CU_ASSERT_EQUAL_FATAL(sim_tcp_connect(w->tcp, h, &to, &app_cbs, a, &a->c), MESH_OK);
}

static void test_tcp_out_and_unsolicited(void)
{
    world w;
    world_init(&w, 1, NULL);
    app srv, cli;
    app_init(&srv, &w, "world");
    app_init(&cli, &w, "hello");
    listen_on(&w, w.s1, 80, &srv);
    connect_to(&w, w.h, S1_IP, 80, &cli);
    uint16_t lport = sim_tcp_local(cli.c).port;
    run(&w);
    /* connect costs one RTT through the NAT; bytes flow both ways */
    CU_ASSERT_TRUE(cli.connected);
    CU_ASSERT_EQUAL(cli.connected_at, 2 * CORE_LAT);
    CU_ASSERT_TRUE(srv.accepted);
    CU_ASSERT_EQUAL(sim_addr_ip4(&srv.peer), PUB);
    CU_ASSERT_EQUAL(srv.peer.port, lport); /* preserved */
    CU_ASSERT_EQUAL(srv.ngot, 5);
    CU_ASSERT_EQUAL(memcmp(srv.got, "hello", 5), 0);
    CU_ASSERT_EQUAL(cli.ngot, 5);
    CU_ASSERT_EQUAL(memcmp(cli.got, "world", 5), 0);
    sim_nat_stats st = sim_nat_get_stats(w.nat);
    CU_ASSERT_EQUAL(st.maps_created, 1);
    CU_ASSERT_TRUE(st.out_pkts >= 3 && st.in_pkts >= 2);
    CU_ASSERT_EQUAL(st.in_no_mapping + st.in_filtered, 0);

    /* unsolicited: S2 connects to the public address; the SYNs vanish → connect timeout */
    app out;
    app_init(&out, &w, NULL);
    listen_on(&w, w.h, 8080, &srv); /* even with a listener inside */
    mesh_time t0 = sim_net_now(w.net);
    connect_to(&w, w.s2, PUB, 8080, &out);
    run(&w);
    CU_ASSERT_TRUE(out.closed);
    CU_ASSERT_EQUAL(out.reason, MESH_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(out.closed_at - t0, 3 * SEC);
    st = sim_nat_get_stats(w.nat);
    CU_ASSERT_TRUE(st.in_no_mapping >= 2); /* the SYN and its retries */
    CU_ASSERT_EQUAL(st.in_rst, 0);
    /* S2 cannot ride on the client's mapping either: filtered (EIF would let it through,
     * so check APDF in its own world below) */
    world_free(&w);

    /* the RST choice: refused after one RTT; a filtered SYN too (APDF) */
    sim_nat_cfg cfg = {.filtering = APD, .tcp_unsolicited = SIM_NAT_UNSOLICITED_RST};
    world_init(&w, 1, &cfg);
    app_init(&srv, &w, "world");
    app_init(&cli, &w, "hello");
    listen_on(&w, w.s1, 80, &srv);
    connect_to(&w, w.h, S1_IP, 80, &cli);
    lport = sim_tcp_local(cli.c).port;
    run(&w);
    CU_ASSERT_EQUAL(cli.ngot, 5);
    app a1, a2;
    app_init(&a1, &w, NULL);
    app_init(&a2, &w, NULL);
    rst_tap tap = {0};
    CU_ASSERT_EQUAL_FATAL(sim_net_attach_host_mbox(w.net, w.s2, &tap_ops, &tap, NULL), MESH_OK);
    t0 = sim_net_now(w.net);
    connect_to(&w, w.s2, PUB, 8080, &a1);  /* no mapping */
    connect_to(&w, w.s2, PUB, lport, &a2); /* the client's mapping, wrong remote */
    run(&w);
    CU_ASSERT_EQUAL(a1.reason, MESH_ERR_REFUSED);
    CU_ASSERT_EQUAL(a1.closed_at - t0, 2 * CORE_LAT);
    CU_ASSERT_EQUAL(a2.reason, MESH_ERR_REFUSED);
    CU_ASSERT_EQUAL(a2.closed_at - t0, 2 * CORE_LAT);
    st = sim_nat_get_stats(w.nat);
    CU_ASSERT_EQUAL(st.in_rst, 2);
    CU_ASSERT_EQUAL(st.in_no_mapping, 1);
    CU_ASSERT_EQUAL(st.in_filtered, 1);
    CU_ASSERT_EQUAL(count_events(&w, SIM_NAT_EV_IN_RST), 2);
    /* each RST comes from the address the SYN was sent to and acknowledges the SYN */
    CU_ASSERT_EQUAL_FATAL(tap.n, 2);
    int seen_syn = 0;
    for (int i = 0; i < w.nev; i++)
        if (w.ev[i].kind == SIM_NAT_EV_IN_RST) {
            CU_ASSERT_EQUAL(tap.ack[seen_syn], w.ev[i].seq + 1);
            CU_ASSERT_TRUE(mesh_addr_equal(&tap.src[seen_syn], &w.ev[i].dst));
            seen_syn++;
        }
    CU_ASSERT_FALSE(cli.closed); /* the client's own connection is untouched */
    world_free(&w);
}

static void test_tcp_static_forward(void)
{
    sim_nat_cfg cfg = {.filtering = APD}; /* the forward must work even under APDF */
    world w;
    world_init(&w, 1, &cfg);
    app inside, outside;
    app_init(&inside, &w, "from-inside");
    app_init(&outside, &w, "from-outside");
    listen_on(&w, w.h, 8080, &inside);
    mesh_addr in = mesh_addr_v4(H_IP, 8080), ext;
    CU_ASSERT_EQUAL(sim_nat_add_static(w.nat, SIM_PROTO_TCP, &in, 8443, &ext), MESH_OK);
    CU_ASSERT_EQUAL(sim_addr_ip4(&ext), PUB);
    CU_ASSERT_EQUAL(ext.port, 8443);
    CU_ASSERT_EQUAL(sim_nat_add_static(w.nat, SIM_PROTO_TCP, &in, 9000, NULL), MESH_ERR_EXISTS);
    mesh_addr other = mesh_addr_v4(H2_IP, 22);
    CU_ASSERT_EQUAL(sim_nat_add_static(w.nat, SIM_PROTO_TCP, &other, 8443, NULL), MESH_ERR_EXISTS);
    CU_ASSERT_EQUAL(sim_nat_add_static(w.nat, SIM_PROTO_TCP, &in, 0, NULL), MESH_ERR_INVAL);
    connect_to(&w, w.s2, PUB, 8443, &outside);
    run(&w);
    CU_ASSERT_TRUE(outside.connected);
    CU_ASSERT_EQUAL(outside.connected_at, 2 * CORE_LAT);
    CU_ASSERT_TRUE(inside.accepted);
    CU_ASSERT_EQUAL(sim_addr_ip4(&inside.peer), S2_IP); /* no source translation inbound */
    CU_ASSERT_EQUAL(inside.ngot, strlen("from-outside"));
    CU_ASSERT_EQUAL(outside.ngot, strlen("from-inside"));
    CU_ASSERT_EQUAL(memcmp(outside.got, "from-inside", 11), 0);
    sim_nat_stats st = sim_nat_get_stats(w.nat);
    CU_ASSERT_EQUAL(st.portmaps_added, 1);
    CU_ASSERT_EQUAL(st.maps_created, 0); /* the replies used the forward, no new mapping */
    CU_ASSERT_EQUAL(count_events(&w, SIM_NAT_EV_PORTMAP_ADD), 1);

    /* a forward takes its port from a dynamic mapping that held it */
    rx r2, rs;
    sim_udp_sock *h2s = bind_rx(&w, w.h2, 9000, &r2);
    sim_udp_sock *ss = bind_rx(&w, w.s1, P1, &rs);
    bind_rx(&w, w.h, 9001, &r2);
    say(h2s, S1_IP, P1, "x");
    run(&w);
    CU_ASSERT_EQUAL_FATAL(rs.n, 1);
    CU_ASSERT_EQUAL(rs.from[0].port, 9000);
    mesh_addr hin = mesh_addr_v4(H_IP, 9001);
    CU_ASSERT_EQUAL(sim_nat_add_static(w.nat, SIM_PROTO_UDP, &hin, 9000, NULL), MESH_OK);
    mesh_addr h2in = mesh_addr_v4(H2_IP, 9000), s1p1 = mesh_addr_v4(S1_IP, P1), ext2;
    CU_ASSERT_EQUAL(sim_nat_lookup(w.nat, SIM_PROTO_UDP, &h2in, &s1p1, &ext2), MESH_ERR_NOT_FOUND);
    say(ss, PUB, 9000, "to the forward");
    run(&w);
    CU_ASSERT_EQUAL_FATAL(r2.n, 1); /* r2 now records H:9001 */
    CU_ASSERT_STRING_EQUAL(r2.text[0], "to the forward");
    world_free(&w);
}

/* ---- hairpinning ---------------------------------------------------------------------------- */

static void hairpin_udp(int on)
{
    sim_nat_cfg cfg = {.hairpin = on};
    world w;
    world_init(&w, 3, &cfg);
    rx rh, rh2, rs;
    sim_udp_sock *hs = bind_rx(&w, w.h, HPORT, &rh);
    sim_udp_sock *h2s = bind_rx(&w, w.h2, 7000, &rh2);
    bind_rx(&w, w.s1, P1, &rs);
    say(h2s, S1_IP, P1, "reg"); /* H2 gets PUB:7000 */
    run(&w);
    CU_ASSERT_EQUAL_FATAL(rs.n, 1);
    CU_ASSERT_EQUAL(rs.from[0].port, 7000);
    mesh_time t0 = sim_net_now(w.net);
    say(hs, PUB, 7000, "hi h2");
    run(&w);
    sim_nat_stats st = sim_nat_get_stats(w.nat);
    if (!on) {
        CU_ASSERT_EQUAL(rh2.n, 0);
        CU_ASSERT_EQUAL(st.hairpin_drops, 1);
        CU_ASSERT_EQUAL(st.hairpin, 0);
        CU_ASSERT_EQUAL(count_events(&w, SIM_NAT_EV_HAIRPIN_DROP), 1);
        world_free(&w);
        return;
    }
    /* H2 sees H's mapped public address, not its private one; no core crossing */
    CU_ASSERT_EQUAL_FATAL(rh2.n, 1);
    CU_ASSERT_EQUAL(sim_addr_ip4(&rh2.from[0]), PUB);
    CU_ASSERT_EQUAL(rh2.from[0].port, HPORT);
    CU_ASSERT_EQUAL(rh2.at[0], t0);
    CU_ASSERT_STRING_EQUAL(rh2.text[0], "hi h2");
    /* and the answer to that address goes back round to H */
    say(h2s, PUB, rh2.from[0].port, "hi h");
    run(&w);
    CU_ASSERT_EQUAL_FATAL(rh.n, 1);
    CU_ASSERT_EQUAL(sim_addr_ip4(&rh.from[0]), PUB);
    CU_ASSERT_EQUAL(rh.from[0].port, 7000);
    st = sim_nat_get_stats(w.nat);
    CU_ASSERT_EQUAL(st.hairpin, 2);
    CU_ASSERT_EQUAL(st.hairpin_drops, 0);
    CU_ASSERT_EQUAL(count_events(&w, SIM_NAT_EV_HAIRPIN), 2);
    world_free(&w);
}

static void test_hairpin(void)
{
    hairpin_udp(1);
    hairpin_udp(0);

    /* TCP through the hairpin to a forwarded port */
    sim_nat_cfg cfg = {.hairpin = 1, .filtering = APD};
    world w;
    world_init(&w, 3, &cfg);
    app srv, cli;
    app_init(&srv, &w, "pong");
    app_init(&cli, &w, "ping");
    listen_on(&w, w.h2, 8080, &srv);
    mesh_addr in = mesh_addr_v4(H2_IP, 8080);
    CU_ASSERT_EQUAL(sim_nat_add_static(w.nat, SIM_PROTO_TCP, &in, 8080, NULL), MESH_OK);
    connect_to(&w, w.h, PUB, 8080, &cli);
    uint16_t lport = sim_tcp_local(cli.c).port;
    run(&w);
    CU_ASSERT_TRUE(cli.connected);
    CU_ASSERT_EQUAL(cli.connected_at, 0); /* ideal LAN links, no core */
    CU_ASSERT_EQUAL(sim_addr_ip4(&srv.peer), PUB);
    CU_ASSERT_EQUAL(srv.peer.port, lport);
    CU_ASSERT_EQUAL(srv.ngot, 4);
    CU_ASSERT_EQUAL(cli.ngot, 4);
    CU_ASSERT_EQUAL(memcmp(cli.got, "pong", 4), 0);
    world_free(&w);
}

/* ---- timeouts --------------------------------------------------------------------------- */

static void test_udp_timeout(void)
{
    const mesh_time T = 30 * SEC;
    sim_nat_cfg cfg = {.udp_timeout = T, .port_alloc = SIM_NAT_PORT_RANDOM};
    world w;
    world_init(&w, 9, &cfg);
    rx rh, rs;
    sim_udp_sock *hs = bind_rx(&w, w.h, HPORT, &rh);
    sim_udp_sock *ss = bind_rx(&w, w.s1, P1, &rs);
    say(hs, S1_IP, P1, "a"); /* t = 0: the mapping lives until T */
    run(&w);
    CU_ASSERT_EQUAL_FATAL(rs.n, 1);
    uint16_t x1 = rs.from[0].port;
    CU_ASSERT_NOT_EQUAL(x1, HPORT);
    CU_ASSERT_TRUE(x1 >= SIM_NAT_DEFAULT_PORT_LO);
    /* a probe reaching the NAT 1 ns before T passes; inbound does not refresh ... */
    run_to(&w, T - CORE_LAT - 1);
    say(ss, PUB, x1, "b");
    run(&w);
    CU_ASSERT_EQUAL_FATAL(rh.n, 1);
    CU_ASSERT_EQUAL(rh.at[0], T - 1);
    /* ... so one reaching it at T finds the mapping gone */
    run_to(&w, T - CORE_LAT);
    say(ss, PUB, x1, "c");
    run(&w);
    CU_ASSERT_EQUAL(rh.n, 1);
    sim_nat_stats st = sim_nat_get_stats(w.nat);
    CU_ASSERT_EQUAL(st.maps_expired, 1);
    CU_ASSERT_EQUAL(st.in_no_mapping, 1);
    CU_ASSERT_EQUAL(st.maps_live, 0);
    CU_ASSERT_EQUAL_FATAL(count_events(&w, SIM_NAT_EV_MAP_EXPIRE), 1);
    for (int i = 0; i < w.nev; i++)
        if (w.ev[i].kind == SIM_NAT_EV_MAP_EXPIRE) {
            CU_ASSERT_EQUAL(w.ev[i].t, T); /* when it ran out, not when it was noticed */
            CU_ASSERT_EQUAL(w.ev[i].external.port, x1);
            CU_ASSERT_EQUAL(sim_addr_ip4(&w.ev[i].internal), H_IP);
        }
    /* a new outbound gets a new (random) mapping */
    run_to(&w, 31 * SEC);
    say(hs, S1_IP, P1, "d");
    run(&w);
    CU_ASSERT_EQUAL_FATAL(rs.n, 2);
    CU_ASSERT_EQUAL(rs.at[1], 31 * SEC + CORE_LAT);
    CU_ASSERT_NOT_EQUAL(rs.from[1].port, x1);
    CU_ASSERT_EQUAL(sim_nat_get_stats(w.nat).maps_created, 2);
    world_free(&w);

    /* outbound exactly at the expiry time already finds the mapping gone */
    world_init(&w, 9, &cfg);
    hs = bind_rx(&w, w.h, HPORT, &rh);
    bind_rx(&w, w.s1, P1, &rs);
    say(hs, S1_IP, P1, "a");
    run_to(&w, T - 1);
    say(hs, S1_IP, P1, "b"); /* refreshes: lives until 2T - 1 */
    run_to(&w, 2 * T - 1);
    say(hs, S1_IP, P1, "c");
    run(&w);
    CU_ASSERT_EQUAL_FATAL(rs.n, 3);
    CU_ASSERT_EQUAL(rs.from[1].port, rs.from[0].port);
    CU_ASSERT_NOT_EQUAL(rs.from[2].port, rs.from[0].port);
    CU_ASSERT_EQUAL(sim_nat_get_stats(w.nat).maps_expired, 1);
    world_free(&w);
}

static void test_refresh(void)
{
    const mesh_time T = 30 * SEC;
    for (int inbound = 0; inbound <= 1; inbound++) {
        sim_nat_cfg cfg = {.udp_timeout = T, .inbound_refresh = inbound};
        world w;
        world_init(&w, 9, &cfg);
        rx rh, rs;
        sim_udp_sock *hs = bind_rx(&w, w.h, HPORT, &rh);
        sim_udp_sock *ss = bind_rx(&w, w.s1, P1, &rs);
        say(hs, S1_IP, P1, "a");
        run_to(&w, 20 * SEC);
        say(hs, S1_IP, P1, "keepalive"); /* outbound refresh: now lives until 50 s */
        run_to(&w, 45 * SEC);
        say(ss, PUB, HPORT, "in@45"); /* passes; with inbound refresh: lives until 75 s */
        run_to(&w, 60 * SEC);
        say(ss, PUB, HPORT, "in@60");
        run(&w);
        CU_ASSERT_EQUAL_FATAL(rh.n, 1 + inbound);
        CU_ASSERT_EQUAL(rh.at[0], 45 * SEC + CORE_LAT);
        CU_ASSERT_EQUAL(sim_nat_get_stats(w.nat).maps_expired, (uint64_t)!inbound);
        world_free(&w);
    }
}

/* With an endpoint-independent mapping, traffic to S2 keeps the mapping alive but the
 * permit for S1 runs out on its own (address-dependent filtering). */
static void test_permit_expiry(void)
{
    const mesh_time T = 30 * SEC;
    sim_nat_cfg cfg = {.filtering = AD, .udp_timeout = T};
    world w;
    world_init(&w, 9, &cfg);
    rx rh, r1, r2;
    sim_udp_sock *hs = bind_rx(&w, w.h, HPORT, &rh);
    sim_udp_sock *s1 = bind_rx(&w, w.s1, P1, &r1);
    sim_udp_sock *s2 = bind_rx(&w, w.s2, P1, &r2);
    say(hs, S1_IP, P1, "to s1"); /* permit for S1 until T */
    run_to(&w, 20 * SEC);
    say(hs, S2_IP, P1, "to s2"); /* mapping and S2's permit until 50 s */
    run_to(&w, 40 * SEC);
    say(s1, PUB, HPORT, "s1@40");
    say(s2, PUB, HPORT, "s2@40");
    run(&w);
    CU_ASSERT_EQUAL_FATAL(rh.n, 1);
    CU_ASSERT_STRING_EQUAL(rh.text[0], "s2@40");
    sim_nat_stats st = sim_nat_get_stats(w.nat);
    CU_ASSERT_EQUAL(st.in_filtered, 1);
    CU_ASSERT_EQUAL(st.maps_live, 1);
    CU_ASSERT_EQUAL(st.permits_live, 1); /* S1's was removed when found expired */
    CU_ASSERT_EQUAL(sim_nat_sweep(w.nat), 0);
    world_free(&w);
}

static void test_tcp_timeouts(void)
{
    /* transitory 20 s, established 100 s, sweeping every second */
    sim_nat_cfg cfg = {
        .tcp_trans_timeout = 20 * SEC, .tcp_timeout = 100 * SEC, .sweep_interval = SEC};
    world w;
    world_init(&w, 5, &cfg);
    sim_nat_set_observer(w.nat, on_event, &w, SIM_NAT_OBSERVE_ALL);
    app srv, cli;
    app_init(&srv, &w, "hi");
    app_init(&cli, &w, "yo");
    listen_on(&w, w.s1, 80, &srv);
    connect_to(&w, w.h, S1_IP, 80, &cli);
    run_to(&w, SEC);
    CU_ASSERT_EQUAL(cli.ngot, 2);
    /* established: idle for longer than the transitory timeout, still mapped */
    run_to(&w, 60 * SEC);
    CU_ASSERT_EQUAL(sim_nat_get_stats(w.nat).maps_live, 1);
    CU_ASSERT_EQUAL(sim_tcp_write(srv.c, "late", 4), MESH_OK);
    run_to(&w, 61 * SEC);
    CU_ASSERT_EQUAL(cli.ngot, 6);
    /* FIN both ways: transitory timeout after the last outbound packet */
    sim_tcp_close(cli.c, MESH_CLOSE_GRACEFUL);
    cli.c = NULL;
    run(&w); /* ends: the sweep stops once nothing can expire */
    CU_ASSERT_TRUE(srv.closed);
    CU_ASSERT_EQUAL(srv.reason, MESH_OK);
    mesh_time last_out = 0, expired_at = 0;
    int fin_out = 0, fin_in = 0;
    for (int i = 0; i < w.nev; i++) {
        const sim_nat_event *e = &w.ev[i];
        if (e->kind == SIM_NAT_EV_OUT_PASS) {
            last_out = e->t;
            fin_out |= (e->flags & SIM_TCP_FIN) != 0;
        }
        fin_in |= e->kind == SIM_NAT_EV_IN_PASS && (e->flags & SIM_TCP_FIN);
        if (e->kind == SIM_NAT_EV_MAP_EXPIRE)
            expired_at = e->t;
    }
    CU_ASSERT_TRUE(fin_out && fin_in);
    CU_ASSERT_TRUE(last_out >= 61 * SEC);
    CU_ASSERT_EQUAL(expired_at, last_out + 20 * SEC);
    /* noticed at the first sweep after it (sweeps at whole seconds from the first mapping) */
    CU_ASSERT_TRUE(sim_net_now(w.net) >= expired_at && sim_net_now(w.net) < expired_at + SEC);
    sim_nat_stats st = sim_nat_get_stats(w.nat);
    CU_ASSERT_EQUAL(st.maps_live, 0);
    CU_ASSERT_EQUAL(st.maps_expired, 1);
    world_free(&w);

    /* a SYN nobody answers: transitory timeout too */
    world_init(&w, 5, &cfg);
    app a;
    app_init(&a, &w, NULL);
    connect_to(&w, w.h, S2_IP, 81, &a); /* no listener: RST comes back, mapping stays */
    run(&w);
    CU_ASSERT_EQUAL(a.reason, MESH_ERR_REFUSED);
    CU_ASSERT_EQUAL(sim_nat_get_stats(w.nat).maps_expired, 1);
    CU_ASSERT_EQUAL_FATAL(count_events(&w, SIM_NAT_EV_MAP_EXPIRE), 1);
    for (int i = 0; i < w.nev; i++)
        if (w.ev[i].kind == SIM_NAT_EV_MAP_EXPIRE)
            CU_ASSERT_EQUAL(w.ev[i].t, 20 * SEC); /* created at 0; the RST closes it */
    world_free(&w);

    /* an established mapping reset from outside: the RST coming in shortens its life to
     * the transitory timeout at once (no outbound packet follows a RST) */
    world_init(&w, 5, &cfg);
    app_init(&srv, &w, "hi");
    app_init(&cli, &w, "yo");
    listen_on(&w, w.s1, 80, &srv);
    connect_to(&w, w.h, S1_IP, 80, &cli);
    run_to(&w, 10 * SEC);
    CU_ASSERT_EQUAL(cli.ngot, 2);
    sim_tcp_close(srv.c, MESH_CLOSE_ABORT);
    run(&w);
    CU_ASSERT_EQUAL(cli.reason, MESH_ERR_RESET);
    CU_ASSERT_EQUAL_FATAL(count_events(&w, SIM_NAT_EV_MAP_EXPIRE), 1);
    for (int i = 0; i < w.nev; i++)
        if (w.ev[i].kind == SIM_NAT_EV_MAP_EXPIRE)
            CU_ASSERT_EQUAL(w.ev[i].t, 10 * SEC + CORE_LAT + 20 * SEC);
    world_free(&w);
}

/* ---- ports -------------------------------------------------------------------------------- */

/* External ports H and H2 (both bound to HPORT) get towards S1. */
static void two_ports(uint64_t seed, uint8_t alloc, uint16_t out[2], uint64_t *fp)
{
    sim_nat_cfg cfg = {.port_alloc = alloc, .port_lo = 20000, .port_hi = 29999};
    world w;
    world_init(&w, seed, &cfg);
    rx rh, rh2, rs;
    sim_udp_sock *a = bind_rx(&w, w.h, 25000, &rh);
    sim_udp_sock *b = bind_rx(&w, w.h2, 25000, &rh2);
    bind_rx(&w, w.s1, P1, &rs);
    say(a, S1_IP, P1, "a");
    run(&w);
    say(b, S1_IP, P1, "b");
    run(&w);
    CU_ASSERT_EQUAL_FATAL(rs.n, 2);
    out[0] = rs.from[0].port;
    out[1] = rs.from[1].port;
    *fp = sim_sched_fingerprint(w.s);
    world_free(&w);
}

static void test_ports(void)
{
    uint16_t p[2], q[2], r[2];
    uint64_t fp1, fp2, fp3;
    /* preservation: the first keeps its port, the second (taken) gets one from the range */
    two_ports(1, SIM_NAT_PORT_PRESERVE, p, &fp1);
    CU_ASSERT_EQUAL(p[0], 25000);
    CU_ASSERT_NOT_EQUAL(p[1], 25000);
    CU_ASSERT_TRUE(p[1] >= 20000 && p[1] <= 29999);
    /* random: neither keeps it; same seed → same ports and run; other seed → other ports */
    two_ports(1, SIM_NAT_PORT_RANDOM, q, &fp1);
    two_ports(1, SIM_NAT_PORT_RANDOM, r, &fp2);
    CU_ASSERT_TRUE(q[0] != 25000 && q[1] != 25000 && q[0] != q[1]);
    CU_ASSERT_TRUE(q[0] >= 20000 && q[0] <= 29999 && q[1] >= 20000 && q[1] <= 29999);
    CU_ASSERT_EQUAL(memcmp(q, r, sizeof q), 0);
    CU_ASSERT_EQUAL(fp1, fp2);
    two_ports(2, SIM_NAT_PORT_RANDOM, r, &fp3);
    CU_ASSERT_NOT_EQUAL(memcmp(q, r, sizeof q), 0);
}

/* ---- the port-mapping service ------------------------------------------------------------ */

static void test_portmap(void)
{
    sim_nat_cfg off = {0};
    world w;
    world_init(&w, 4, &off);
    mesh_addr in = mesh_addr_v4(H_IP, 6000), ext;
    CU_ASSERT_EQUAL(sim_nat_portmap_request(w.nat, SIM_PROTO_UDP, &in, 60, &ext),
                    MESH_ERR_UNSUPPORTED);
    world_free(&w);

    sim_nat_cfg cfg = {.portmap = 1, .filtering = APD};
    world_init(&w, 4, &cfg);
    rx rh, rs;
    bind_rx(&w, w.h, 6000, &rh);
    sim_udp_sock *ss = bind_rx(&w, w.s2, P1, &rs);
    CU_ASSERT_EQUAL(sim_nat_portmap_request(w.nat, SIM_PROTO_UDP, &in, 60, &ext), MESH_OK);
    CU_ASSERT_EQUAL(sim_addr_ip4(&ext), PUB);
    CU_ASSERT_EQUAL(ext.port, 6000);
    CU_ASSERT_EQUAL(sim_nat_portmap_request(w.nat, 1, &in, 60, &ext), MESH_ERR_INVAL);
    /* anyone may send in, though H never sent anything (APDF does not apply) */
    say(ss, PUB, 6000, "in");
    run(&w);
    CU_ASSERT_EQUAL(rh.n, 1);
    /* renewal at 50 s keeps the port and moves the lease end to 110 s */
    run_to(&w, 50 * SEC);
    mesh_addr ext2;
    CU_ASSERT_EQUAL(sim_nat_portmap_request(w.nat, SIM_PROTO_UDP, &in, 60, &ext2), MESH_OK);
    CU_ASSERT_EQUAL(ext2.port, 6000);
    run_to(&w, 100 * SEC);
    say(ss, PUB, 6000, "in@100");
    run(&w);
    CU_ASSERT_EQUAL(rh.n, 2);
    run_to(&w, 110 * SEC);
    say(ss, PUB, 6000, "in@110"); /* reaches the NAT after the lease ran out */
    run(&w);
    CU_ASSERT_EQUAL(rh.n, 2);
    sim_nat_stats st = sim_nat_get_stats(w.nat);
    CU_ASSERT_EQUAL(st.portmaps_added, 1);
    CU_ASSERT_EQUAL(st.portmaps_released, 1);
    CU_ASSERT_EQUAL(count_events(&w, SIM_NAT_EV_PORTMAP_RELEASE), 1);
    /* a TCP mapping for the same port is separate; a taken port gives another one */
    mesh_addr in2 = mesh_addr_v4(H2_IP, 6000);
    CU_ASSERT_EQUAL(sim_nat_portmap_request(w.nat, SIM_PROTO_TCP, &in, 0, &ext), MESH_OK);
    CU_ASSERT_EQUAL(ext.port, 6000);
    CU_ASSERT_EQUAL(sim_nat_portmap_request(w.nat, SIM_PROTO_TCP, &in2, 0, &ext2), MESH_OK);
    CU_ASSERT_NOT_EQUAL(ext2.port, 6000);
    CU_ASSERT_EQUAL(sim_nat_portmap_release(w.nat, SIM_PROTO_TCP, &in), MESH_OK);
    CU_ASSERT_EQUAL(sim_nat_portmap_release(w.nat, SIM_PROTO_TCP, &in), MESH_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(sim_nat_get_stats(w.nat).maps_live, 1);
    world_free(&w);
}

/* ---- limits and bad input ------------------------------------------------------------------ */

static void test_limits(void)
{
    sim_nat_cfg cfg = {.max_mappings = 2, .udp_timeout = 10 * SEC, .portmap = 1};
    world w;
    world_init(&w, 6, &cfg);
    rx r1, r2, r3, rs;
    sim_udp_sock *a = bind_rx(&w, w.h, 5001, &r1);
    sim_udp_sock *b = bind_rx(&w, w.h, 5002, &r2);
    sim_udp_sock *c = bind_rx(&w, w.h, 5003, &r3);
    bind_rx(&w, w.s1, P1, &rs);
    say(a, S1_IP, P1, "a");
    say(b, S1_IP, P1, "b");
    say(c, S1_IP, P1, "c"); /* a third flow: table full, dropped */
    run(&w);
    CU_ASSERT_EQUAL(rs.n, 2);
    CU_ASSERT_FALSE(got_from(&rs, PUB, 5003));
    sim_nat_stats st = sim_nat_get_stats(w.nat);
    CU_ASSERT_EQUAL(st.limit_drops, 1);
    CU_ASSERT_EQUAL(st.maps_live, 2);
    CU_ASSERT_EQUAL(count_events(&w, SIM_NAT_EV_LIMIT_DROP), 1);
    mesh_addr in = mesh_addr_v4(H_IP, 7000), ext;
    CU_ASSERT_EQUAL(sim_nat_portmap_request(w.nat, SIM_PROTO_UDP, &in, 60, &ext), MESH_ERR_LIMIT);
    /* existing flows keep working */
    say(a, S1_IP, P1, "a2");
    run(&w);
    CU_ASSERT_EQUAL(rs.n, 3);
    /* once they expired, a new flow finds room (the full table is swept) */
    run_to(&w, 30 * SEC);
    say(c, S1_IP, P1, "c2");
    run(&w);
    CU_ASSERT_EQUAL(rs.n, 4);
    CU_ASSERT_TRUE(got_from(&rs, PUB, 5003));
    CU_ASSERT_EQUAL(sim_nat_get_stats(w.nat).maps_expired, 2);
    world_free(&w);

    /* the permit table: APDF with room for one remote */
    sim_nat_cfg pc = {.filtering = APD, .max_permits = 1};
    world_init(&w, 6, &pc);
    a = bind_rx(&w, w.h, 5001, &r1);
    rx rs2;
    bind_rx(&w, w.s1, P1, &rs);
    bind_rx(&w, w.s2, P1, &rs2);
    say(a, S1_IP, P1, "a");
    say(a, S2_IP, P1, "b"); /* needs a second permit: dropped */
    run(&w);
    CU_ASSERT_EQUAL(rs.n, 1);
    CU_ASSERT_EQUAL(rs2.n, 0);
    st = sim_nat_get_stats(w.nat);
    CU_ASSERT_EQUAL(st.limit_drops, 1);
    CU_ASSERT_EQUAL(st.permits_live, 1);
    CU_ASSERT_EQUAL(st.maps_live, 1);
    world_free(&w);
}

static void test_bad_config(void)
{
    sim_sched *s;
    sim_net *net;
    CU_ASSERT_EQUAL_FATAL(sim_sched_new(&s), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_net_new(&net, s, 1), MESH_OK);
    sim_lan *pub, *priv;
    sim_lan_cfg pc = {"dc", {0}, {0}, SIM_IP4(192, 0, 2, 1), 0};
    sim_lan_cfg hc = {"home", {0}, {0}, PUB, 1};
    CU_ASSERT_EQUAL_FATAL(sim_net_add_lan(net, &pc, &pub), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_net_add_lan(net, &hc, &priv), MESH_OK);
    sim_nat *n = NULL;
    CU_ASSERT_EQUAL(sim_nat_new(&n, net, pub, NULL), MESH_ERR_INVAL); /* not private */
    sim_nat_cfg bad1 = {.mapping = 3};
    sim_nat_cfg bad2 = {.port_lo = 2000, .port_hi = 1000};
    sim_nat_cfg bad3 = {.max_mappings = SIM_NAT_MAX_MAPPINGS + 1};
    CU_ASSERT_EQUAL(sim_nat_new(&n, net, priv, &bad1), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(sim_nat_new(&n, net, priv, &bad2), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(sim_nat_new(&n, net, priv, &bad3), MESH_ERR_INVAL);
    CU_ASSERT_PTR_NULL(n);
    CU_ASSERT_EQUAL_FATAL(sim_nat_new(&n, net, priv, NULL), MESH_OK);
    CU_ASSERT_EQUAL(sim_nat_public_ip(n), PUB);
    CU_ASSERT_PTR_EQUAL(sim_nat_lan(n), priv);
    mesh_addr in = mesh_addr_v4(H_IP, 1), rem = mesh_addr_v4(S1_IP, 2), ext;
    CU_ASSERT_EQUAL(sim_nat_lookup(n, SIM_PROTO_UDP, &in, &rem, &ext), MESH_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(sim_nat_lookup(n, 99, &in, &rem, &ext), MESH_ERR_INVAL);
    sim_nat_free(n);
    sim_nat_free(NULL);
    sim_net_free(net);
    sim_sched_free(s);
}

static CU_TestInfo tests[] = {
    {"3x3 mapping x filtering table (UDP)", test_table},
    {"TCP out through the NAT; unsolicited in dropped or RST", test_tcp_out_and_unsolicited},
    {"TCP in through a static forward", test_tcp_static_forward},
    {"hairpinning on and off (UDP, TCP)", test_hairpin},
    {"UDP mapping timeout: exact times, new random mapping", test_udp_timeout},
    {"outbound refresh; inbound refresh only when asked", test_refresh},
    {"permits expire on their own", test_permit_expiry},
    {"TCP established vs transitory timeouts, sweep", test_tcp_timeouts},
    {"port preservation vs random, seeded", test_ports},
    {"port-mapping service: lease, renewal, release", test_portmap},
    {"mapping and permit limits", test_limits},
    {"bad configuration and lookups", test_bad_config},
    CU_TEST_INFO_NULL,
};
static CU_SuiteInfo suites[] = {{"nat", NULL, NULL, NULL, NULL, tests}, CU_SUITE_INFO_NULL};

int main(void)
{
    return mesh_test_main(suites);
}
