/* test_link.c — the network model: exact link maths (latency + serialisation), FIFO
 * queueing and tail drop, seeded loss, jitter bounds without reordering, private LANs, and
 * the middlebox hook (sees payload, drops, rewrites, injects). */
#include "mesh_test.h"

#include <string.h>

#include "sim/net.h"

enum { MAXREC = 2048 };

typedef struct rec {
    sim_net *net;
    int n;
    mesh_time at[MAXREC];
    uint32_t tag[MAXREC]; /* first 4 payload bytes */
    mesh_addr dst[MAXREC], src[MAXREC];
    uint32_t host[MAXREC];
} rec;

static void on_udp(void *ctx, sim_host *h, const sim_pkt *p)
{
    rec *r = ctx;
    CU_ASSERT_FATAL(r->n < MAXREC);
    r->at[r->n] = sim_net_now(r->net);
    uint32_t tag = 0;
    if (p->len >= 4)
        memcpy(&tag, p->data, 4);
    r->tag[r->n] = tag;
    r->dst[r->n] = p->dst;
    r->src[r->n] = p->src;
    r->host[r->n] = sim_host_id(h);
    r->n++;
}

typedef struct world {
    sim_sched *s;
    sim_net *net;
    rec r;
} world;

static void world_init(world *w, uint64_t seed)
{
    memset(w, 0, sizeof *w);
    CU_ASSERT_EQUAL_FATAL(sim_sched_new(&w->s), MESH_OK);
    sim_sched_set_event_cap(w->s, 1000000);
    CU_ASSERT_EQUAL_FATAL(sim_net_new(&w->net, w->s, seed), MESH_OK);
    w->r.net = w->net;
    sim_net_set_transport(w->net, SIM_PROTO_UDP, on_udp, &w->r);
}

static void world_free(world *w)
{
    sim_net_free(w->net);
    sim_sched_free(w->s);
}

static sim_host *add_host(world *w, uint32_t ip, sim_lan *lan, const sim_link_cfg *up,
                          const sim_link_cfg *down)
{
    sim_host_cfg c = {"h", ip, lan, {0}, {0}};
    if (up)
        c.up = *up;
    if (down)
        c.down = *down;
    sim_host *h = NULL;
    CU_ASSERT_EQUAL_FATAL(sim_net_add_host(w->net, &c, &h), MESH_OK);
    return h;
}

static void send_udp(world *w, sim_host *from, uint32_t dst_ip, uint16_t port, uint32_t tag,
                     size_t len)
{
    uint8_t buf[2048] = {0};
    memcpy(buf, &tag, 4);
    sim_pkt *p;
    CU_ASSERT_EQUAL_FATAL(sim_pkt_new(w->net, &p, buf, len), MESH_OK);
    p->proto = SIM_PROTO_UDP;
    p->src = mesh_addr_v4(sim_host_ip(from), 1000);
    p->dst = mesh_addr_v4(dst_ip, port);
    CU_ASSERT_EQUAL(sim_net_send(w->net, from, p), MESH_OK);
}

static mesh_time ser_ns(size_t wire, uint64_t bps)
{
    return (mesh_time)((wire * 8 * MESH_NS_PER_S + bps - 1) / bps);
}

static void test_exact_latency_plus_serialisation(void)
{
    world w;
    world_init(&w, 1);
    const mesh_time L = 5 * MESH_NS_PER_MS;
    const uint64_t R = 10000000; /* 10 Mbit/s */
    sim_link_cfg up = {.latency = L, .rate_bps = R};
    sim_host *a = add_host(&w, SIM_IP4(198, 51, 100, 1), NULL, &up, NULL);
    add_host(&w, SIM_IP4(198, 51, 100, 2), NULL, NULL, NULL);
    send_udp(&w, a, SIM_IP4(198, 51, 100, 2), 9, 1, 1000);
    CU_ASSERT_EQUAL(sim_sched_run(w.s), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(w.r.n, 1);
    /* 1000 payload + 28 header bytes = 8224 bits at 10 Mbit/s = 822400 ns */
    CU_ASSERT_EQUAL(w.r.at[0], L + 822400);
    CU_ASSERT_EQUAL(w.r.at[0], L + ser_ns(1000 + SIM_UDP_HDR_BYTES, R));
    world_free(&w);
}

static void test_back_to_back_queueing(void)
{
    world w;
    world_init(&w, 1);
    const mesh_time L = 2 * MESH_NS_PER_MS;
    const uint64_t R = 1000000; /* 1 Mbit/s */
    sim_link_cfg up = {.latency = L, .rate_bps = R};
    sim_link_cfg down = {.latency = 3 * MESH_NS_PER_MS}; /* a second stage adds its latency */
    sim_host *a = add_host(&w, SIM_IP4(198, 51, 100, 1), NULL, &up, NULL);
    add_host(&w, SIM_IP4(198, 51, 100, 2), NULL, NULL, &down);
    sim_net_set_core(w.net, &(sim_link_cfg){.latency = 7 * MESH_NS_PER_MS}, NULL, NULL);
    for (uint32_t i = 0; i < 4; i++)
        send_udp(&w, a, SIM_IP4(198, 51, 100, 2), 9, i, 472); /* 500 wire bytes = 4 ms */
    CU_ASSERT_EQUAL(sim_sched_run(w.s), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(w.r.n, 4);
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(w.r.tag[i], (uint32_t)i);
        CU_ASSERT_EQUAL(w.r.at[i], (mesh_time)(i + 1) * 4 * MESH_NS_PER_MS + L +
                                       7 * MESH_NS_PER_MS + 3 * MESH_NS_PER_MS);
    }
    world_free(&w);
}

static void test_tail_drop(void)
{
    world w;
    world_init(&w, 1);
    sim_link_cfg up = {.rate_bps = 1000000, .queue_bytes = 3000};
    sim_host *a = add_host(&w, SIM_IP4(198, 51, 100, 1), NULL, &up, NULL);
    add_host(&w, SIM_IP4(198, 51, 100, 2), NULL, NULL, NULL);
    for (uint32_t i = 0; i < 10; i++)
        send_udp(&w, a, SIM_IP4(198, 51, 100, 2), 9, i, 1000);
    /* backlog before each packet: 0, 1028, 2056 (+1028 > 3000: dropped), ... */
    CU_ASSERT_EQUAL(sim_host_up_stats(a).tail_drops, 8);
    CU_ASSERT_EQUAL(sim_sched_run(w.s), MESH_OK);
    CU_ASSERT_EQUAL(w.r.n, 2);
    /* once the queue drained, the link accepts again */
    send_udp(&w, a, SIM_IP4(198, 51, 100, 2), 9, 99, 1000);
    CU_ASSERT_EQUAL(sim_sched_run(w.s), MESH_OK);
    CU_ASSERT_EQUAL(w.r.n, 3);
    CU_ASSERT_EQUAL(sim_net_get_stats(w.net).link_drops, 8);
    world_free(&w);
}

/* Bitmap of which of 1000 packets survive a 30%-loss link, for a seed. */
static void loss_pattern(uint64_t seed, uint8_t out[1000], int *count)
{
    world w;
    world_init(&w, seed);
    sim_link_cfg up = {.latency = MESH_NS_PER_MS, .loss = 0.3};
    sim_host *a = add_host(&w, SIM_IP4(198, 51, 100, 1), NULL, &up, NULL);
    add_host(&w, SIM_IP4(198, 51, 100, 2), NULL, NULL, NULL);
    for (uint32_t i = 0; i < 1000; i++)
        send_udp(&w, a, SIM_IP4(198, 51, 100, 2), 9, i, 20);
    CU_ASSERT_EQUAL(sim_sched_run(w.s), MESH_OK);
    memset(out, 0, 1000);
    for (int i = 0; i < w.r.n; i++)
        out[w.r.tag[i]] = 1;
    *count = w.r.n;
    CU_ASSERT_EQUAL(sim_host_up_stats(a).lost, (uint64_t)(1000 - w.r.n));
    world_free(&w);
}

static void test_seeded_loss(void)
{
    uint8_t a[1000], b[1000], c[1000];
    int na, nb, nc;
    loss_pattern(11, a, &na);
    loss_pattern(11, b, &nb);
    loss_pattern(12, c, &nc);
    CU_ASSERT_EQUAL(na, nb);
    CU_ASSERT_EQUAL(memcmp(a, b, sizeof a), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(a, c, sizeof a), 0);
    CU_ASSERT_TRUE(na > 620 && na < 780); /* 700 expected */
    CU_ASSERT_TRUE(nc > 620 && nc < 780);
}

typedef struct pacer {
    world *w;
    sim_host *from;
    uint32_t next, total;
    mesh_time sent[MAXREC];
} pacer;

static void pace_send(void *ctx, void *arg)
{
    pacer *p = ctx;
    (void)arg;
    p->sent[p->next] = sim_net_now(p->w->net);
    send_udp(p->w, p->from, SIM_IP4(198, 51, 100, 2), 9, p->next, 100);
    if (++p->next < p->total)
        sim_sched_after(p->w->s, 100 * MESH_NS_PER_US, SIM_EV_USER, 0, pace_send, p, NULL, NULL);
}

static void test_jitter_bounds_no_reorder(void)
{
    world w;
    world_init(&w, 5);
    const mesh_time L = 10 * MESH_NS_PER_MS, J = 2 * MESH_NS_PER_MS;
    sim_link_cfg up = {.latency = L, .jitter = J};
    sim_host *a = add_host(&w, SIM_IP4(198, 51, 100, 1), NULL, &up, NULL);
    add_host(&w, SIM_IP4(198, 51, 100, 2), NULL, NULL, NULL);
    static pacer p;
    memset(&p, 0, sizeof p);
    p.w = &w;
    p.from = a;
    p.total = 500; /* one every 100 us: far closer than the jitter */
    sim_sched_at(w.s, 0, SIM_EV_USER, 0, pace_send, &p, NULL, NULL);
    CU_ASSERT_EQUAL(sim_sched_run(w.s), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(w.r.n, 500);
    mesh_time dmin = MESH_TIME_NEVER, dmax = 0;
    for (int i = 0; i < w.r.n; i++) {
        CU_ASSERT_EQUAL(w.r.tag[i], (uint32_t)i); /* FIFO: never reordered */
        mesh_time d = w.r.at[i] - p.sent[i];
        CU_ASSERT_TRUE(d >= L && d <= L + J);
        dmin = d < dmin ? d : dmin;
        dmax = d > dmax ? d : dmax;
    }
    /* jitter really varies the delay: the spread covers most of [L, L+J] */
    CU_ASSERT_TRUE(dmax - dmin > J / 2);
    world_free(&w);
}

static void test_private_lans(void)
{
    world w;
    world_init(&w, 1);
    sim_lan *l1, *l2;
    sim_lan_cfg c1 = {"home1", {0}, {0}, SIM_IP4(203, 0, 113, 1), 1};
    sim_lan_cfg c2 = {"home2", {0}, {0}, SIM_IP4(203, 0, 113, 2), 1};
    CU_ASSERT_EQUAL_FATAL(sim_net_add_lan(w.net, &c1, &l1), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_net_add_lan(w.net, &c2, &l2), MESH_OK);
    CU_ASSERT_EQUAL(sim_net_add_lan(w.net, &c2, NULL), MESH_ERR_EXISTS);
    sim_lan_cfg bad = {"bad", {0}, {0}, 0, 1};
    CU_ASSERT_EQUAL(sim_net_add_lan(w.net, &bad, NULL), MESH_ERR_INVAL);
    /* the same private address in two LANs is fine; twice in one LAN is not */
    sim_host *a1 = add_host(&w, SIM_IP4(10, 0, 0, 2), l1, NULL, NULL);
    sim_host *b1 = add_host(&w, SIM_IP4(10, 0, 0, 3), l1, NULL, NULL);
    add_host(&w, SIM_IP4(10, 0, 0, 2), l2, NULL, NULL);
    sim_host_cfg dup = {"dup", SIM_IP4(10, 0, 0, 2), l1, {0}, {0}};
    CU_ASSERT_EQUAL(sim_net_add_host(w.net, &dup, NULL), MESH_ERR_EXISTS);
    sim_host_cfg mc = {"mc", SIM_IP4(224, 0, 0, 1), NULL, {0}, {0}};
    CU_ASSERT_EQUAL(sim_net_add_host(w.net, &mc, NULL), MESH_ERR_INVAL);
    sim_host *pub = add_host(&w, SIM_IP4(198, 51, 100, 7), NULL, NULL, NULL);
    CU_ASSERT_PTR_EQUAL(sim_net_find_host(w.net, a1, SIM_IP4(10, 0, 0, 3)), b1);
    CU_ASSERT_PTR_NULL(sim_net_find_host(w.net, pub, SIM_IP4(10, 0, 0, 3)));
    /* inside the LAN: delivered; from outside to a private address: no route */
    send_udp(&w, a1, SIM_IP4(10, 0, 0, 3), 9, 1, 10);
    send_udp(&w, pub, SIM_IP4(10, 0, 0, 3), 9, 2, 10);
    CU_ASSERT_EQUAL(sim_sched_run(w.s), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(w.r.n, 1);
    CU_ASSERT_EQUAL(w.r.host[0], sim_host_id(b1));
    CU_ASSERT_EQUAL(sim_net_get_stats(w.net).no_route, 1);
    world_free(&w);
}

/* A middlebox that records what it sees and acts on payload tags. */
typedef struct box {
    sim_net *net;
    int seen;
    uint8_t last[64];
    size_t last_len;
    int dir_seen[2];
    sim_mbox *mb;
} box;

static int box_on_packet(void *obj, sim_mbox *mb, sim_pkt *p, int dir, mesh_time *delay)
{
    box *b = obj;
    b->seen++;
    b->dir_seen[dir]++;
    b->last_len = p->len < sizeof b->last ? p->len : sizeof b->last;
    memcpy(b->last, p->data, b->last_len);
    if (p->len >= 4 && memcmp(p->data, "DROP", 4) == 0)
        return SIM_DROP;
    if (p->len >= 4 && memcmp(p->data, "SLOW", 4) == 0) {
        *delay = 50 * MESH_NS_PER_MS;
        return SIM_DELAY;
    }
    if (p->len >= 4 && memcmp(p->data, "EDIT", 4) == 0) {
        p->dst.port = 4242; /* rewrite the port and the bytes */
        CU_ASSERT_EQUAL(sim_pkt_set_payload(p, "edited", 6), MESH_OK);
    }
    if (p->len >= 4 && memcmp(p->data, "PING", 4) == 0 && dir == SIM_DIR_OUT) {
        /* answer in place of the destination: inject back towards the sender */
        sim_pkt *ans;
        CU_ASSERT_EQUAL_FATAL(sim_pkt_new(b->net, &ans, "PONG", 4), MESH_OK);
        ans->proto = SIM_PROTO_UDP;
        ans->src = p->dst;
        ans->dst = p->src;
        CU_ASSERT_EQUAL(sim_mbox_inject(mb, SIM_DIR_IN, ans), MESH_OK);
        return SIM_DROP;
    }
    return SIM_PASS;
}

static const sim_mbox_ops box_ops = {box_on_packet};

static void send_text(world *w, sim_host *from, uint32_t dst, const char *text)
{
    sim_pkt *p;
    CU_ASSERT_EQUAL_FATAL(sim_pkt_new(w->net, &p, text, strlen(text)), MESH_OK);
    p->proto = SIM_PROTO_UDP;
    p->src = mesh_addr_v4(sim_host_ip(from), 1000);
    p->dst = mesh_addr_v4(dst, 9);
    sim_net_send(w->net, from, p);
}

static void test_middlebox_hook(void)
{
    world w;
    world_init(&w, 1);
    sim_lan *l;
    sim_lan_cfg lc = {"site", {0}, {0}, SIM_IP4(203, 0, 113, 1), 0};
    CU_ASSERT_EQUAL_FATAL(sim_net_add_lan(w.net, &lc, &l), MESH_OK);
    sim_host *in = add_host(&w, SIM_IP4(203, 0, 113, 10), l, NULL, NULL);
    sim_host *in2 = add_host(&w, SIM_IP4(203, 0, 113, 11), l, NULL, NULL);
    sim_host *out = add_host(&w, SIM_IP4(198, 51, 100, 1), NULL, NULL, NULL);
    box b = {w.net};
    CU_ASSERT_EQUAL_FATAL(sim_net_attach_lan_mbox(w.net, l, &box_ops, &b, &b.mb), MESH_OK);
    CU_ASSERT_EQUAL(sim_net_attach_lan_mbox(w.net, l, NULL, &b, NULL), MESH_ERR_INVAL);

    /* sees the real bytes, in both directions; LAN-local traffic does not cross it */
    send_text(&w, in, SIM_IP4(198, 51, 100, 1), "hello world");
    send_text(&w, out, SIM_IP4(203, 0, 113, 10), "reply");
    send_text(&w, in, SIM_IP4(203, 0, 113, 11), "local");
    CU_ASSERT_EQUAL(sim_sched_run(w.s), MESH_OK);
    CU_ASSERT_EQUAL(b.seen, 2);
    CU_ASSERT_EQUAL(b.dir_seen[SIM_DIR_OUT], 1);
    CU_ASSERT_EQUAL(b.dir_seen[SIM_DIR_IN], 1);
    CU_ASSERT_EQUAL(w.r.n, 3);

    /* drop */
    w.r.n = 0;
    send_text(&w, in, SIM_IP4(198, 51, 100, 1), "DROP me");
    CU_ASSERT_EQUAL(sim_sched_run(w.s), MESH_OK);
    CU_ASSERT_EQUAL(w.r.n, 0);
    CU_ASSERT_EQUAL(sim_net_get_stats(w.net).mbox_drops, 1);
    CU_ASSERT_EQUAL(memcmp(b.last, "DROP me", 7), 0);

    /* rewrite: port and payload changed on the way */
    send_text(&w, in, SIM_IP4(198, 51, 100, 1), "EDIT this");
    CU_ASSERT_EQUAL(sim_sched_run(w.s), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(w.r.n, 1);
    CU_ASSERT_EQUAL(w.r.dst[0].port, 4242);
    CU_ASSERT_EQUAL(w.r.tag[0], *(const uint32_t *)"edit");

    /* delay */
    w.r.n = 0;
    mesh_time t0 = sim_net_now(w.net);
    send_text(&w, in, SIM_IP4(198, 51, 100, 1), "SLOW");
    CU_ASSERT_EQUAL(sim_sched_run(w.s), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(w.r.n, 1);
    CU_ASSERT_EQUAL(w.r.at[0] - t0, 50 * MESH_NS_PER_MS);

    /* inject: the box answers a probe itself; the answer reaches the inside host */
    w.r.n = 0;
    send_text(&w, in2, SIM_IP4(198, 51, 100, 1), "PING");
    CU_ASSERT_EQUAL(sim_sched_run(w.s), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(w.r.n, 1);
    CU_ASSERT_EQUAL(w.r.host[0], sim_host_id(in2));
    CU_ASSERT_EQUAL(w.r.tag[0], *(const uint32_t *)"PONG");
    CU_ASSERT_EQUAL(sim_addr_ip4(&w.r.src[0]), SIM_IP4(198, 51, 100, 1));
    world_free(&w);
}

static void test_host_down(void)
{
    world w;
    world_init(&w, 1);
    sim_host *a = add_host(&w, SIM_IP4(198, 51, 100, 1), NULL, NULL, NULL);
    sim_host *b = add_host(&w, SIM_IP4(198, 51, 100, 2), NULL, NULL, NULL);
    sim_host_set_up(b, 0);
    send_udp(&w, a, SIM_IP4(198, 51, 100, 2), 9, 1, 10);
    send_udp(&w, a, SIM_IP4(198, 51, 100, 99), 9, 1, 10); /* nobody */
    CU_ASSERT_EQUAL(sim_sched_run(w.s), MESH_OK);
    CU_ASSERT_EQUAL(w.r.n, 0);
    CU_ASSERT_EQUAL(sim_net_get_stats(w.net).host_down, 1);
    CU_ASSERT_EQUAL(sim_net_get_stats(w.net).no_route, 1);
    sim_host_set_up(b, 1);
    send_udp(&w, a, SIM_IP4(198, 51, 100, 2), 9, 1, 10);
    CU_ASSERT_EQUAL(sim_sched_run(w.s), MESH_OK);
    CU_ASSERT_EQUAL(w.r.n, 1);
    /* bad input gets an error, not a crash */
    sim_pkt *p;
    CU_ASSERT_EQUAL(sim_pkt_new(w.net, &p, "x", SIM_PKT_MAX_PAYLOAD + 1), MESH_ERR_TOO_BIG);
    CU_ASSERT_EQUAL_FATAL(sim_pkt_new(w.net, &p, "x", 1), MESH_OK);
    CU_ASSERT_EQUAL(sim_net_send(w.net, a, p), MESH_ERR_INVAL); /* no addresses set */
    world_free(&w);
}

static CU_TestInfo tests[] = {
    {"arrival = latency + bytes*8/rate, exact ns", test_exact_latency_plus_serialisation},
    {"back-to-back packets queue FIFO", test_back_to_back_queueing},
    {"queue limit tail-drops", test_tail_drop},
    {"loss is seeded and reproducible", test_seeded_loss},
    {"jitter within bounds, no reordering", test_jitter_bounds_no_reorder},
    {"private LANs and address scopes", test_private_lans},
    {"middlebox sees, drops, rewrites, delays, injects", test_middlebox_hook},
    {"host down, no route, bad packets", test_host_down},
    CU_TEST_INFO_NULL,
};
static CU_SuiteInfo suites[] = {{"link", NULL, NULL, NULL, NULL, tests}, CU_SUITE_INFO_NULL};

int main(void)
{
    return mesh_test_main(suites);
}
