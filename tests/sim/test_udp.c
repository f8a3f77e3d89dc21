/* test_udp.c — datagram sockets (sim/udp.h): unicast delivery at exact virtual times,
 * datagrams to unbound ports vanishing, LAN-scoped multicast (sender included, nobody on
 * another LAN or the core), ports shared by several sockets, closing inside callbacks, and
 * the size limit.
 *
 * Topology (latencies one way):
 *
 *     lan1 (10.1.0.0/16, public)        lan2 (10.2.0.0/16)     lan3 (private, 203.0.113.3)
 *      h1 10.1.0.1  h2 10.1.0.2          h4 10.2.0.1            h6 10.1.0.2 (same as h2!)
 *      h3 10.1.0.3
 *        site links 3 ms                   site links 3 ms        site links 3 ms
 *             \__________________ core 10 ms ___________________/
 *                                     |
 *                               h5 198.51.100.5 (on the core)
 *
 * Every host: up link 1 ms, down link 2 ms. */
#include "mesh_test.h"

#include <stdlib.h>
#include <string.h>

#include "sim/udp.h"

#define MS MESH_NS_PER_MS
#define UP_LAT (1 * MS)
#define DOWN_LAT (2 * MS)
#define SITE_LAT (3 * MS)
#define CORE_LAT (10 * MS)

#define GROUP SIM_IP4(224, 0, 0, 251)
#define GROUP2 SIM_IP4(239, 1, 2, 3)
enum { MDNS_PORT = 5353, MAX_RX = 64, NHOSTS = 6 };

typedef struct sock_rec {
    struct uw *w;
    sim_udp_sock *s;
    int n;
    mesh_time at[MAX_RX];
    size_t len[MAX_RX];
    mesh_addr from[MAX_RX];
    uint8_t first[MAX_RX]; /* first payload byte */
    int after_close;
    int closed;
    /* behaviour knobs */
    int close_self;               /* close this socket inside its callback */
    struct sock_rec *close_other; /* ... and/or this one */
    uint8_t *copy;                /* a copy of the last datagram */
    size_t copy_len;
} sock_rec;

typedef struct uw {
    sim_sched *s;
    sim_net *net;
    sim_udp *udp;
    sim_lan *lan1, *lan2, *lan3;
    sim_host *h[NHOSTS + 1]; /* h[1]..h[6] */
} uw;

static void uw_init(uw *w, const sim_link_cfg *h5_up)
{
    memset(w, 0, sizeof *w);
    CU_ASSERT_EQUAL_FATAL(sim_sched_new(&w->s), MESH_OK);
    sim_sched_set_event_cap(w->s, 1000000);
    CU_ASSERT_EQUAL_FATAL(sim_net_new(&w->net, w->s, 9), MESH_OK);
    sim_net_set_core(w->net, &(sim_link_cfg){.latency = CORE_LAT}, NULL, NULL);
    sim_link_cfg site = {.latency = SITE_LAT};
    sim_lan_cfg l1 = {"lan1", site, site, 0, 0};
    sim_lan_cfg l2 = {"lan2", site, site, 0, 0};
    sim_lan_cfg l3 = {"lan3", site, site, SIM_IP4(203, 0, 113, 3), 1};
    CU_ASSERT_EQUAL_FATAL(sim_net_add_lan(w->net, &l1, &w->lan1), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_net_add_lan(w->net, &l2, &w->lan2), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_net_add_lan(w->net, &l3, &w->lan3), MESH_OK);
    sim_link_cfg up = {.latency = UP_LAT}, down = {.latency = DOWN_LAT};
    struct {
        uint32_t ip;
        sim_lan *lan;
    } hosts[NHOSTS] = {
        {SIM_IP4(10, 1, 0, 1), w->lan1},  {SIM_IP4(10, 1, 0, 2), w->lan1},
        {SIM_IP4(10, 1, 0, 3), w->lan1},  {SIM_IP4(10, 2, 0, 1), w->lan2},
        {SIM_IP4(198, 51, 100, 5), NULL}, {SIM_IP4(10, 1, 0, 2), w->lan3},
    };
    for (int i = 0; i < NHOSTS; i++) {
        sim_host_cfg c = {"h", hosts[i].ip, hosts[i].lan, up, down};
        if (i == 4 && h5_up)
            c.up = *h5_up;
        CU_ASSERT_EQUAL_FATAL(sim_net_add_host(w->net, &c, &w->h[i + 1]), MESH_OK);
    }
    CU_ASSERT_EQUAL_FATAL(sim_udp_new(&w->udp, w->net), MESH_OK);
}

static void uw_free(uw *w)
{
    sim_udp_free(w->udp);
    sim_net_free(w->net);
    sim_sched_free(w->s);
}

static void on_recv(sim_udp_sock *s, const mesh_addr *from, const uint8_t *data, size_t len,
                    void *ud)
{
    sock_rec *r = ud;
    CU_ASSERT_PTR_EQUAL(s, r->s);
    if (r->closed)
        r->after_close++;
    CU_ASSERT_FATAL(r->n < MAX_RX);
    r->at[r->n] = sim_sched_now(r->w->s);
    r->len[r->n] = len;
    r->from[r->n] = *from;
    r->first[r->n] = len ? data[0] : 0;
    r->n++;
    free(r->copy);
    r->copy = malloc(len ? len : 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->copy);
    if (len)
        memcpy(r->copy, data, len);
    r->copy_len = len;
    if (r->close_other) {
        r->close_other->closed = 1;
        sim_udp_close(r->close_other->s);
    }
    if (r->close_self) {
        r->closed = 1;
        sim_udp_close(s);
    }
}

static void bind_rec(uw *w, sock_rec *r, int host, uint16_t port)
{
    memset(r, 0, sizeof *r);
    r->w = w;
    CU_ASSERT_EQUAL_FATAL(sim_udp_bind(w->udp, w->h[host], port, on_recv, r, &r->s), MESH_OK);
}

static void rec_free(sock_rec *r)
{
    free(r->copy);
}

static void send_byte(sock_rec *from, uint32_t ip, uint16_t port, uint8_t tag, size_t len)
{
    uint8_t buf[2048];
    CU_ASSERT_FATAL(len <= sizeof buf);
    memset(buf, tag, len);
    mesh_addr to = mesh_addr_v4(ip, port);
    CU_ASSERT_EQUAL(sim_udp_send(from->s, &to, buf, len), MESH_OK);
}

static void run(uw *w)
{
    CU_ASSERT_EQUAL(sim_sched_run(w->s), MESH_OK);
}

/* ---- unicast ------------------------------------------------------------------------------ */

static void test_unicast_delivery_time(void)
{
    /* h5's uplink: 1 Mbit/s, so a 472-byte datagram (500 on the wire) serialises in 4 ms. */
    sim_link_cfg h5_up = {.latency = UP_LAT, .rate_bps = 1000000};
    uw w;
    uw_init(&w, &h5_up);
    sock_rec s5, s4, s2, s1;
    bind_rec(&w, &s5, 5, 4000);
    bind_rec(&w, &s4, 4, 4000);
    bind_rec(&w, &s2, 2, 4000);
    bind_rec(&w, &s1, 1, 4000);
    send_byte(&s5, sim_host_ip(w.h[4]), 4000, 0x55, 472); /* core host -> lan2 */
    send_byte(&s1, sim_host_ip(w.h[2]), 4000, 0x12, 10);  /* within lan1 */
    send_byte(&s1, sim_host_ip(w.h[4]), 4000, 0x14, 10);  /* lan1 -> lan2 */
    CU_ASSERT_EQUAL(s4.n + s2.n, 0);                      /* nothing from inside the send call */
    run(&w);
    CU_ASSERT_EQUAL_FATAL(s4.n, 2);
    CU_ASSERT_EQUAL_FATAL(s2.n, 1);
    /* lan1 -> lan2: up + site up + core + site down + down */
    CU_ASSERT_EQUAL(s4.first[0], 0x14);
    CU_ASSERT_EQUAL(s4.at[0], UP_LAT + SITE_LAT + CORE_LAT + SITE_LAT + DOWN_LAT);
    /* core host -> lan2: serialisation + up + core + site down + down */
    CU_ASSERT_EQUAL(s4.first[1], 0x55);
    CU_ASSERT_EQUAL(s4.len[1], 472);
    CU_ASSERT_EQUAL(s4.at[1], 4 * MS + UP_LAT + CORE_LAT + SITE_LAT + DOWN_LAT);
    mesh_addr from5 = sim_udp_local(s5.s);
    CU_ASSERT_TRUE(mesh_addr_equal(&s4.from[1], &from5));
    /* same LAN: up + down only */
    CU_ASSERT_EQUAL(s2.at[0], UP_LAT + DOWN_LAT);
    mesh_addr from1 = sim_udp_local(s1.s);
    CU_ASSERT_TRUE(mesh_addr_equal(&s2.from[0], &from1));
    CU_ASSERT_EQUAL(s5.n + s1.n, 0);
    rec_free(&s5);
    rec_free(&s4);
    rec_free(&s2);
    rec_free(&s1);
    uw_free(&w);
}

static void test_unbound_port_vanishes(void)
{
    uw w;
    uw_init(&w, NULL);
    sock_rec s1, s2;
    bind_rec(&w, &s1, 1, 4000);
    bind_rec(&w, &s2, 2, 4000);
    send_byte(&s1, sim_host_ip(w.h[2]), 4001, 1, 10); /* nobody on 4001 */
    run(&w);
    CU_ASSERT_EQUAL(s2.n, 0);
    CU_ASSERT_EQUAL(s1.n, 0);                               /* no ICMP, no error of any kind */
    CU_ASSERT_EQUAL(sim_net_get_stats(w.net).delivered, 1); /* it did reach the host */
    /* binding the port afterwards does not resurrect the datagram */
    sock_rec late;
    bind_rec(&w, &late, 2, 4001);
    run(&w);
    CU_ASSERT_EQUAL(late.n, 0);
    /* a send-only socket (no callback) swallows what is sent to it */
    sim_udp_sock *quiet;
    CU_ASSERT_EQUAL(sim_udp_bind(w.udp, w.h[3], 4000, NULL, NULL, &quiet), MESH_OK);
    send_byte(&s1, sim_host_ip(w.h[3]), 4000, 2, 10);
    run(&w);
    CU_ASSERT_EQUAL(s1.n + s2.n + late.n, 0);
    /* an address nobody owns: dropped in the core */
    send_byte(&s1, SIM_IP4(192, 0, 2, 99), 4000, 3, 10);
    run(&w);
    CU_ASSERT_EQUAL(sim_net_get_stats(w.net).no_route, 1);
    rec_free(&s1);
    rec_free(&s2);
    rec_free(&late);
    uw_free(&w);
}

static void test_ephemeral_ports(void)
{
    uw w;
    uw_init(&w, NULL);
    sim_udp_sock *a, *b;
    CU_ASSERT_EQUAL(sim_udp_bind(w.udp, w.h[1], 0, NULL, NULL, &a), MESH_OK);
    CU_ASSERT_EQUAL(sim_udp_bind(w.udp, w.h[1], 0, NULL, NULL, &b), MESH_OK);
    mesh_addr la = sim_udp_local(a), lb = sim_udp_local(b);
    CU_ASSERT_TRUE(la.port >= SIM_UDP_EPHEMERAL_LO && lb.port >= SIM_UDP_EPHEMERAL_LO);
    CU_ASSERT_NOT_EQUAL(la.port, lb.port);
    CU_ASSERT_EQUAL(sim_addr_ip4(&la), sim_host_ip(w.h[1]));
    CU_ASSERT_PTR_EQUAL(sim_udp_host(a), w.h[1]);
    uw_free(&w);
}

/* ---- multicast ------------------------------------------------------------------------------ */

static void test_multicast_scope(void)
{
    uw w;
    uw_init(&w, NULL);
    sock_rec r[NHOSTS + 1], other_port, plain;
    for (int i = 1; i <= NHOSTS; i++) {
        bind_rec(&w, &r[i], i, MDNS_PORT);
        if (i != 3) /* h3 is bound on the port but does not join */
            CU_ASSERT_EQUAL(sim_udp_join(r[i].s, GROUP), MESH_OK);
    }
    CU_ASSERT_EQUAL(sim_udp_join(r[1].s, GROUP), MESH_OK); /* twice: a no-op */
    bind_rec(&w, &other_port, 2, MDNS_PORT + 1);           /* joined, but another port */
    CU_ASSERT_EQUAL(sim_udp_join(other_port.s, GROUP), MESH_OK);
    bind_rec(&w, &plain, 2, 6000); /* not joined at all */

    send_byte(&r[1], GROUP, MDNS_PORT, 0xaa, 100);
    run(&w);
    /* the sender itself (loopback) and h2, through their own down links */
    CU_ASSERT_EQUAL_FATAL(r[1].n, 1);
    CU_ASSERT_EQUAL_FATAL(r[2].n, 1);
    CU_ASSERT_EQUAL(r[1].at[0], UP_LAT + DOWN_LAT);
    CU_ASSERT_EQUAL(r[2].at[0], UP_LAT + DOWN_LAT);
    mesh_addr src = sim_udp_local(r[1].s);
    CU_ASSERT_TRUE(mesh_addr_equal(&r[2].from[0], &src));
    CU_ASSERT_EQUAL(r[2].len[0], 100);
    CU_ASSERT_EQUAL(r[2].first[0], 0xaa);
    /* not h3 (not joined), not h4 (another LAN), not h5 (the core), not h6 (a private LAN
     * whose host has h2's very address), not another port */
    CU_ASSERT_EQUAL(r[3].n + r[4].n + r[5].n + r[6].n, 0);
    CU_ASSERT_EQUAL(other_port.n + plain.n, 0);
    /* one copy per joined host on the LAN; nothing crossed a site link */
    CU_ASSERT_EQUAL(sim_net_get_stats(w.net).delivered, 2);

    /* From lan2, only h4 hears it (itself). */
    send_byte(&r[4], GROUP, MDNS_PORT, 0xbb, 10);
    run(&w);
    CU_ASSERT_EQUAL(r[4].n, 1);
    CU_ASSERT_EQUAL(r[1].n + r[2].n + r[3].n + r[5].n + r[6].n, 2);

    /* From the core, nobody: a host on the core has no LAN to copy to. */
    uint64_t no_route = sim_net_get_stats(w.net).no_route;
    send_byte(&r[5], GROUP, MDNS_PORT, 0xcc, 10);
    run(&w);
    CU_ASSERT_EQUAL(r[5].n + r[4].n, 1);
    CU_ASSERT_EQUAL(sim_net_get_stats(w.net).no_route, no_route + 1);

    /* Another group on the same port reaches nobody who joined only GROUP. */
    send_byte(&r[1], GROUP2, MDNS_PORT, 0xdd, 10);
    run(&w);
    CU_ASSERT_EQUAL(r[1].n + r[2].n, 2);

    /* Closing a socket leaves the group: h2 no longer hears it. */
    sim_udp_close(r[2].s);
    r[2].closed = 1;
    send_byte(&r[1], GROUP, MDNS_PORT, 0xee, 10);
    run(&w);
    CU_ASSERT_EQUAL(r[1].n, 2);
    CU_ASSERT_EQUAL(r[2].n, 1);
    CU_ASSERT_EQUAL(other_port.n, 0);

    for (int i = 1; i <= NHOSTS; i++)
        rec_free(&r[i]);
    rec_free(&other_port);
    rec_free(&plain);
    uw_free(&w);
}

static void test_shared_port(void)
{
    uw w;
    uw_init(&w, NULL);
    sock_rec src, old, young, unjoined;
    bind_rec(&w, &src, 1, 4000);
    bind_rec(&w, &old, 2, MDNS_PORT);
    bind_rec(&w, &young, 2, MDNS_PORT);
    bind_rec(&w, &unjoined, 2, MDNS_PORT);
    CU_ASSERT_EQUAL(sim_udp_join(old.s, GROUP), MESH_OK);
    CU_ASSERT_EQUAL(sim_udp_join(young.s, GROUP), MESH_OK);
    uint32_t ip2 = sim_host_ip(w.h[2]);

    /* unicast: the oldest socket only */
    send_byte(&src, ip2, MDNS_PORT, 1, 10);
    run(&w);
    CU_ASSERT_EQUAL(old.n, 1);
    CU_ASSERT_EQUAL(young.n + unjoined.n, 0);

    /* multicast: every socket on the port that joined, each once */
    send_byte(&src, GROUP, MDNS_PORT, 2, 10);
    run(&w);
    CU_ASSERT_EQUAL(old.n, 2);
    CU_ASSERT_EQUAL(young.n, 1);
    CU_ASSERT_EQUAL(unjoined.n, 0);
    CU_ASSERT_EQUAL(young.first[0], 2);

    /* the oldest closed: unicast moves to the next oldest */
    sim_udp_close(old.s);
    old.closed = 1;
    send_byte(&src, ip2, MDNS_PORT, 3, 10);
    run(&w);
    CU_ASSERT_EQUAL(old.n, 2);
    CU_ASSERT_EQUAL_FATAL(young.n, 2);
    CU_ASSERT_EQUAL(young.first[1], 3);
    CU_ASSERT_EQUAL(unjoined.n, 0);
    /* the host still is in the group through young */
    send_byte(&src, GROUP, MDNS_PORT, 4, 10);
    run(&w);
    CU_ASSERT_EQUAL(young.n, 3);
    CU_ASSERT_EQUAL(old.after_close, 0);
    rec_free(&src);
    rec_free(&old);
    rec_free(&young);
    rec_free(&unjoined);
    uw_free(&w);
}

static void test_close_inside_callback(void)
{
    uw w;
    uw_init(&w, NULL);
    sock_rec src, a, b;
    bind_rec(&w, &src, 1, 4000);
    bind_rec(&w, &a, 2, MDNS_PORT);
    bind_rec(&w, &b, 2, MDNS_PORT);
    CU_ASSERT_EQUAL(sim_udp_join(a.s, GROUP), MESH_OK);
    CU_ASSERT_EQUAL(sim_udp_join(b.s, GROUP), MESH_OK);
    /* a (first in line) closes itself and b inside its callback: b gets nothing of this
     * datagram nor of the ones already in flight */
    a.close_self = 1;
    a.close_other = &b;
    for (uint8_t i = 0; i < 3; i++)
        send_byte(&src, GROUP, MDNS_PORT, i, 10);
    send_byte(&src, sim_host_ip(w.h[2]), MDNS_PORT, 9, 10);
    run(&w);
    CU_ASSERT_EQUAL(a.n, 1);
    CU_ASSERT_EQUAL(b.n, 0);
    CU_ASSERT_EQUAL(a.after_close + b.after_close, 0);
    /* the port is free again: a new socket binds it and receives */
    sock_rec c;
    bind_rec(&w, &c, 2, MDNS_PORT);
    send_byte(&src, sim_host_ip(w.h[2]), MDNS_PORT, 10, 10);
    run(&w);
    CU_ASSERT_EQUAL(c.n, 1);
    /* until the reap event, a closed socket refuses to send or join, and closing it again
     * is a no-op (after that the handle is gone, like freed memory) */
    uint64_t sent = sim_net_get_stats(w.net).sent;
    sim_udp_close(c.s);
    mesh_addr to = mesh_addr_v4(sim_host_ip(w.h[1]), 4000);
    CU_ASSERT_EQUAL(sim_udp_send(c.s, &to, "x", 1), MESH_ERR_CLOSED);
    CU_ASSERT_EQUAL(sim_udp_join(c.s, GROUP2), MESH_ERR_CLOSED);
    sim_udp_close(c.s);
    run(&w);
    CU_ASSERT_EQUAL(sim_net_get_stats(w.net).sent, sent); /* nothing left after the close */
    rec_free(&src);
    rec_free(&a);
    rec_free(&b);
    rec_free(&c);
    uw_free(&w);
}

static void test_size_and_argument_limits(void)
{
    uw w;
    uw_init(&w, NULL);
    sock_rec s1, s2;
    bind_rec(&w, &s1, 1, 4000);
    bind_rec(&w, &s2, 2, 4000);
    uint8_t *big = malloc(SIM_PKT_MAX_PAYLOAD + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    for (size_t i = 0; i <= SIM_PKT_MAX_PAYLOAD; i++)
        big[i] = (uint8_t)(i * 7 + (i >> 9));
    mesh_addr to = mesh_addr_v4(sim_host_ip(w.h[2]), 4000);
    CU_ASSERT_EQUAL(sim_udp_send(s1.s, &to, big, SIM_PKT_MAX_PAYLOAD + 1), MESH_ERR_TOO_BIG);
    CU_ASSERT_EQUAL(sim_net_get_stats(w.net).sent, 0);
    CU_ASSERT_EQUAL(sim_udp_send(s1.s, &to, big, SIM_PKT_MAX_PAYLOAD), MESH_OK);
    CU_ASSERT_EQUAL(sim_udp_send(s1.s, &to, NULL, 0), MESH_OK); /* empty datagram */
    run(&w);
    CU_ASSERT_EQUAL_FATAL(s2.n, 2);
    CU_ASSERT_EQUAL(s2.len[0], SIM_PKT_MAX_PAYLOAD);
    CU_ASSERT_EQUAL(s2.len[1], 0);
    /* the big one arrived intact (checked before the empty one replaced the copy) */
    CU_ASSERT_EQUAL(s2.first[0], big[0]);
    /* send it again alone and compare every byte */
    CU_ASSERT_EQUAL(sim_udp_send(s1.s, &to, big, SIM_PKT_MAX_PAYLOAD), MESH_OK);
    run(&w);
    CU_ASSERT_EQUAL_FATAL(s2.copy_len, SIM_PKT_MAX_PAYLOAD);
    CU_ASSERT_EQUAL(memcmp(s2.copy, big, SIM_PKT_MAX_PAYLOAD), 0);
    free(big);

    mesh_addr port0 = mesh_addr_v4(sim_host_ip(w.h[2]), 0);
    CU_ASSERT_EQUAL(sim_udp_send(s1.s, &port0, "x", 1), MESH_ERR_INVAL);
    mesh_addr v6 = {.family = MESH_AF_INET6, .port = 4000};
    CU_ASSERT_EQUAL(sim_udp_send(s1.s, &v6, "x", 1), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(sim_udp_send(s1.s, &to, NULL, 1), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(sim_udp_join(s1.s, sim_host_ip(w.h[2])), MESH_ERR_INVAL); /* not multicast */
    for (uint32_t g = 0; g < SIM_UDP_MAX_GROUPS_PER_SOCK; g++)
        CU_ASSERT_EQUAL(sim_udp_join(s1.s, SIM_IP4(239, 0, 0, 1 + g)), MESH_OK);
    CU_ASSERT_EQUAL(sim_udp_join(s1.s, SIM_IP4(239, 0, 1, 1)), MESH_ERR_LIMIT);
    rec_free(&s1);
    rec_free(&s2);
    uw_free(&w);
}

static const CU_TestInfo udp_tests[] = {
    {"unicast delivery time", test_unicast_delivery_time},
    {"datagram to an unbound port vanishes", test_unbound_port_vanishes},
    {"ephemeral ports", test_ephemeral_ports},
    {"multicast: sender's LAN only, sender included", test_multicast_scope},
    {"shared ports: unicast to the oldest, multicast to all", test_shared_port},
    {"close inside a callback", test_close_inside_callback},
    {"too-big datagram refused; argument limits", test_size_and_argument_limits},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"sim_udp", NULL, NULL, NULL, NULL, (CU_TestInfo *)udp_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
