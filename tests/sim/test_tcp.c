/* test_tcp.c — the TCP-like stream model (sim/tcp.h) at exact virtual times: the handshake's
 * cost (1 RTT to on_connected, 1.5 RTT to accept), refused and timed-out connects, delivery
 * maths under serialisation and a window, loss recovery (RTO, fast retransmit, give-up), FIN
 * and RST, closing inside callbacks, and seeded reproducibility under loss and jitter.
 *
 * Unless a test says otherwise the topology is two hosts on the core: every access link has
 * 5 ms latency and the core 10 ms, so one way is 20 ms and the RTT 40 ms. */
#include "mesh_test.h"

#include <stdlib.h>
#include <string.h>

#include "sim/tcp.h"

#define MS MESH_NS_PER_MS
#define ACCESS_LAT (5 * MS)
#define CORE_LAT (10 * MS)
#define ONE_WAY (2 * ACCESS_LAT + CORE_LAT)
#define RTT (2 * ONE_WAY)

enum {
    SRV_PORT = 8443,
    MAX_DATA_EVENTS = 8192,
    EVENT_CAP = 20000000,
};

#define IP_A SIM_IP4(198, 51, 100, 1)
#define IP_B SIM_IP4(198, 51, 100, 2)
#define IP_NOBODY SIM_IP4(203, 0, 113, 77)

/* What one end of a connection saw. */
typedef struct ep {
    struct tw *w;
    sim_tcp_conn *c;
    int connected, accepted, closed, writable;
    mesh_time connected_at, accepted_at, closed_at, writable_at;
    int reason;
    int after_close;  /* callbacks received after on_closed or our own close: must stay 0 */
    int released;     /* we closed it ourselves */
    mesh_test_buf rx; /* bytes received */
    int ndata;
    mesh_time data_at[MAX_DATA_EVENTS];
    size_t data_len[MAX_DATA_EVENTS];
    /* behaviour knobs */
    int close_in_data;      /* close (how = close_how) on the first on_data */
    int close_in_connected; /* close (how = close_how) in on_connected */
    int close_how;
    const uint8_t *send_on_connect; /* written in on_connected */
    size_t send_on_connect_len;
} ep;

typedef struct tw {
    sim_sched *s;
    sim_net *net;
    sim_tcp *tcp;
    sim_host *a, *b;
    sim_tcp_listener *lst;
    ep cli, srv;
    int refuse_in_accept;    /* server closes new streams inside accept */
    int close_lst_in_accept; /* server closes its listener inside accept */
} tw;

typedef struct links {
    sim_link_cfg a_up, a_down, b_up, b_down;
} links;

static links default_links(void)
{
    sim_link_cfg l = {.latency = ACCESS_LAT};
    return (links){l, l, l, l};
}

static void tw_init(tw *w, uint64_t seed, const sim_tcp_cfg *cfg, const links *lk)
{
    memset(w, 0, sizeof *w);
    links d = lk ? *lk : default_links();
    CU_ASSERT_EQUAL_FATAL(sim_sched_new(&w->s), MESH_OK);
    sim_sched_set_event_cap(w->s, EVENT_CAP);
    CU_ASSERT_EQUAL_FATAL(sim_net_new(&w->net, w->s, seed), MESH_OK);
    sim_net_set_core(w->net, &(sim_link_cfg){.latency = CORE_LAT}, NULL, NULL);
    sim_host_cfg ha = {"a", IP_A, NULL, d.a_up, d.a_down};
    sim_host_cfg hb = {"b", IP_B, NULL, d.b_up, d.b_down};
    CU_ASSERT_EQUAL_FATAL(sim_net_add_host(w->net, &ha, &w->a), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_net_add_host(w->net, &hb, &w->b), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_tcp_new(&w->tcp, w->net, cfg), MESH_OK);
    w->cli.w = w->srv.w = w;
}

static void tw_free(tw *w)
{
    sim_tcp_free(w->tcp);
    sim_net_free(w->net);
    sim_sched_free(w->s);
    free(w->cli.rx.b);
    free(w->srv.rx.b);
}

static mesh_time now_of(const ep *e)
{
    return sim_sched_now(e->w->s);
}

static void ep_close(ep *e, sim_tcp_conn *c, int how)
{
    e->released = 1;
    sim_tcp_close(c, how);
}

static void on_connected(sim_tcp_conn *c, void *ud)
{
    ep *e = ud;
    if (e->closed || e->released)
        e->after_close++;
    e->connected++;
    e->connected_at = now_of(e);
    if (e->send_on_connect)
        CU_ASSERT_EQUAL(sim_tcp_write(c, e->send_on_connect, e->send_on_connect_len), MESH_OK);
    if (e->close_in_connected)
        ep_close(e, c, e->close_how);
}

static void on_data(sim_tcp_conn *c, const uint8_t *data, size_t len, void *ud)
{
    ep *e = ud;
    if (e->closed || e->released)
        e->after_close++;
    CU_ASSERT_FATAL(len > 0);
    if (e->ndata < MAX_DATA_EVENTS) {
        e->data_at[e->ndata] = now_of(e);
        e->data_len[e->ndata] = len;
    }
    e->ndata++;
    mesh_test_buf_add(&e->rx, data, len);
    if (e->close_in_data)
        ep_close(e, c, e->close_how);
}

static void on_writable(sim_tcp_conn *c, void *ud)
{
    ep *e = ud;
    if (e->closed || e->released)
        e->after_close++;
    e->writable++;
    e->writable_at = now_of(e);
    CU_ASSERT_EQUAL(sim_tcp_pending(c), 0);
}

static void on_closed(sim_tcp_conn *c, int reason, void *ud)
{
    ep *e = ud;
    (void)c;
    if (e->closed || e->released)
        e->after_close++;
    e->closed++;
    e->closed_at = now_of(e);
    e->reason = reason;
}

static const sim_tcp_cbs ep_cbs = {on_connected, on_data, on_writable, on_closed};

static void on_accept(sim_tcp_listener *l, sim_tcp_conn *c, const mesh_addr *peer, void *ud)
{
    tw *w = ud;
    ep *e = &w->srv;
    e->accepted++;
    e->accepted_at = sim_sched_now(w->s);
    e->c = c;
    /* The peer is the client's own end of the connection. */
    if (w->cli.c && !w->cli.released && !w->cli.closed) { /* else the handle is gone */
        mesh_addr cl = sim_tcp_local(w->cli.c);
        CU_ASSERT_TRUE(mesh_addr_equal(peer, &cl));
    }
    CU_ASSERT_EQUAL(sim_tcp_host(c), w->b);
    if (w->close_lst_in_accept)
        sim_tcp_listener_close(l);
    if (w->refuse_in_accept) {
        ep_close(e, c, MESH_CLOSE_ABORT);
        return;
    }
    sim_tcp_set_cbs(c, &ep_cbs, e);
}

static void tw_listen(tw *w)
{
    CU_ASSERT_EQUAL_FATAL(sim_tcp_listen(w->tcp, w->b, SRV_PORT, on_accept, w, &w->lst), MESH_OK);
}

/* A fresh world with the server listening on SRV_PORT. */
static void tw_init_listening(tw *w, uint64_t seed, const sim_tcp_cfg *cfg, const links *lk)
{
    tw_init(w, seed, cfg, lk);
    tw_listen(w);
}

static void tw_connect_to(tw *w, uint32_t ip, uint16_t port)
{
    mesh_addr to = mesh_addr_v4(ip, port);
    int before = w->cli.connected + w->cli.closed + w->srv.accepted;
    CU_ASSERT_EQUAL_FATAL(sim_tcp_connect(w->tcp, w->a, &to, &ep_cbs, &w->cli, &w->cli.c), MESH_OK);
    /* Rule 1: nothing is reported from inside the call. */
    CU_ASSERT_EQUAL(w->cli.connected + w->cli.closed + w->srv.accepted, before);
}

static void tw_connect(tw *w)
{
    tw_connect_to(w, IP_B, SRV_PORT);
}

static void tw_run(tw *w)
{
    CU_ASSERT_EQUAL(sim_sched_run(w->s), MESH_OK);
}

/* A new client connecting now is refused one RTT later (the old client record is dropped). */
static void expect_refused_now(tw *w)
{
    free(w->cli.rx.b);
    memset(&w->cli, 0, sizeof w->cli);
    w->cli.w = w;
    mesh_time t0 = sim_sched_now(w->s);
    tw_connect(w);
    tw_run(w);
    CU_ASSERT_EQUAL(w->cli.reason, MESH_ERR_REFUSED);
    CU_ASSERT_EQUAL(w->cli.closed_at, t0 + RTT);
}

static uint8_t *pattern(size_t n, uint32_t salt)
{
    uint8_t *b = malloc(n ? n : 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    uint32_t x = 0x9e3779b9u ^ salt;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b[i] = (uint8_t)x;
    }
    return b;
}

/* Have e write n pattern bytes from on_connected; returns the bytes (caller frees). */
static uint8_t *send_on_connect(ep *e, size_t n, uint32_t salt)
{
    uint8_t *b = pattern(n, salt);
    e->send_on_connect = b;
    e->send_on_connect_len = n;
    return b;
}

/* e received exactly these n bytes, in order. */
static void expect_rx(const ep *e, const void *bytes, size_t n)
{
    CU_ASSERT_EQUAL_FATAL(e->rx.len, n);
    CU_ASSERT_EQUAL(memcmp(e->rx.b, bytes, n), 0);
}

/* ---- a middlebox that counts (and optionally drops) matching TCP segments ---------------- */

enum { PAYLOAD_ANY = 0, PAYLOAD_SOME = 1, PAYLOAD_NONE = -1 };

typedef struct dropper {
    sim_net *net;
    int dir; /* SIM_DIR_OUT or SIM_DIR_IN */
    uint8_t mask, value;
    int payload;    /* PAYLOAD_* */
    int skip;       /* matching packets to let through before dropping */
    int drops_left; /* matching packets still to drop; -1 = all */
    int seen, dropped;
    mesh_time seen_at[64];
} dropper;

static int dropper_on_packet(void *obj, sim_mbox *mb, sim_pkt *p, int dir, mesh_time *delay)
{
    dropper *d = obj;
    (void)mb;
    (void)delay;
    if (p->proto != SIM_PROTO_TCP || dir != d->dir || (p->flags & d->mask) != d->value)
        return SIM_PASS;
    if ((d->payload == PAYLOAD_SOME && p->len == 0) || (d->payload == PAYLOAD_NONE && p->len))
        return SIM_PASS;
    if (d->seen < 64)
        d->seen_at[d->seen] = sim_net_now(d->net);
    d->seen++;
    if (d->skip > 0) {
        d->skip--;
        return SIM_PASS;
    }
    if (d->drops_left == 0)
        return SIM_PASS;
    if (d->drops_left > 0)
        d->drops_left--;
    d->dropped++;
    return SIM_DROP;
}

static const sim_mbox_ops dropper_ops = {dropper_on_packet};

/* A dropper of data segments (payload, PSH) in direction dir: lets `skip` through, then
 * drops `drops` (-1 = all). */
static dropper data_dropper(int dir, int skip, int drops)
{
    return (dropper){.dir = dir,
                     .mask = SIM_TCP_PSH,
                     .value = SIM_TCP_PSH,
                     .payload = PAYLOAD_SOME,
                     .skip = skip,
                     .drops_left = drops};
}

static void attach_dropper(tw *w, sim_host *h, dropper *d)
{
    d->net = w->net;
    CU_ASSERT_EQUAL_FATAL(sim_net_attach_host_mbox(w->net, h, &dropper_ops, d, NULL), MESH_OK);
}

/* ---- connect -------------------------------------------------------------------------------- */

static void test_connect_costs_one_rtt(void)
{
    /* Symmetric paths (RTT 40 ms), then asymmetric ones: forward 20 ms, back 35 ms. */
    for (int asym = 0; asym < 2; asym++) {
        links lk = default_links();
        if (asym)
            lk.b_up.latency = 20 * MS;
        mesh_time fwd = ONE_WAY, back = asym ? 35 * MS : ONE_WAY;
        tw w;
        tw_init_listening(&w, 1, NULL, &lk);
        tw_connect(&w);
        tw_run(&w);
        CU_ASSERT_EQUAL(w.cli.connected, 1);
        CU_ASSERT_EQUAL(w.cli.connected_at, fwd + back); /* SYN out, SYN-ACK back */
        CU_ASSERT_EQUAL(w.srv.accepted, 1);
        CU_ASSERT_EQUAL(w.srv.accepted_at, 2 * fwd + back); /* + the final ACK */
        CU_ASSERT_EQUAL(w.srv.connected, 0);                /* never for accepted streams */
        CU_ASSERT_EQUAL(w.cli.closed + w.srv.closed, 0);
        mesh_addr remote = sim_tcp_remote(w.cli.c), local = sim_tcp_local(w.cli.c);
        mesh_addr lst = sim_tcp_listener_addr(w.lst);
        CU_ASSERT_TRUE(mesh_addr_equal(&remote, &lst));
        CU_ASSERT_EQUAL(sim_addr_ip4(&local), IP_A);
        CU_ASSERT_TRUE(local.port >= SIM_TCP_EPHEMERAL_LO);
        mesh_addr srv_remote = sim_tcp_remote(w.srv.c);
        CU_ASSERT_TRUE(mesh_addr_equal(&srv_remote, &local));
        sim_tcp_stats st = sim_tcp_get_stats(w.tcp);
        CU_ASSERT_EQUAL(st.conns_opened, 2);
        CU_ASSERT_EQUAL(st.conns_live, 2);
        CU_ASSERT_EQUAL(st.segs_sent, 3); /* SYN, SYN-ACK, ACK: nothing else */
        CU_ASSERT_EQUAL(st.retransmits, 0);
        tw_free(&w);
    }
}

static void test_refused_without_listener(void)
{
    tw w;
    tw_init(&w, 1, NULL, NULL);
    tw_connect(&w); /* nobody listens on b */
    tw_run(&w);
    CU_ASSERT_EQUAL(w.cli.connected, 0);
    CU_ASSERT_EQUAL(w.cli.closed, 1);
    CU_ASSERT_EQUAL(w.cli.reason, MESH_ERR_REFUSED);
    CU_ASSERT_EQUAL(w.cli.closed_at, RTT); /* the RST answers the SYN */
    CU_ASSERT_EQUAL(sim_tcp_get_stats(w.tcp).rsts_sent, 1);
    CU_ASSERT_EQUAL(sim_tcp_get_stats(w.tcp).conns_live, 0);
    /* a closed listener refuses just the same */
    tw_listen(&w);
    sim_tcp_listener_close(w.lst);
    expect_refused_now(&w);
    CU_ASSERT_EQUAL(w.srv.accepted, 0);
    tw_free(&w);
}

static void test_timeout_no_host(void)
{
    /* Default configuration: SYNs at 0, 1, 3, 7 s (doubling RTO from 1 s), give-up at 10 s. */
    tw w;
    tw_init(&w, 1, NULL, NULL);
    dropper syns = {.dir = SIM_DIR_OUT, .mask = SIM_TCP_SYN, .value = SIM_TCP_SYN};
    attach_dropper(&w, w.a, &syns);
    syns.drops_left = 0; /* count only */
    tw_connect_to(&w, IP_NOBODY, 80);
    tw_run(&w);
    CU_ASSERT_EQUAL(w.cli.closed, 1);
    CU_ASSERT_EQUAL(w.cli.reason, MESH_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(w.cli.closed_at, SIM_TCP_DEFAULT_CONNECT_TIMEOUT_MS * MS);
    CU_ASSERT_EQUAL(w.cli.connected, 0);
    CU_ASSERT_EQUAL_FATAL(syns.seen, 4);
    CU_ASSERT_EQUAL(syns.seen_at[0], 0);
    CU_ASSERT_EQUAL(syns.seen_at[1], 1000 * MS);
    CU_ASSERT_EQUAL(syns.seen_at[2], 3000 * MS);
    CU_ASSERT_EQUAL(syns.seen_at[3], 7000 * MS);
    CU_ASSERT_EQUAL(sim_net_get_stats(w.net).no_route, 4);
    CU_ASSERT_EQUAL(sim_tcp_get_stats(w.tcp).conns_live, 0);
    tw_free(&w);

    /* A configured timeout is honoured to the nanosecond. */
    sim_tcp_cfg cfg = {.connect_timeout = 2500 * MS};
    tw_init(&w, 1, &cfg, NULL);
    tw_connect_to(&w, IP_NOBODY, 80);
    tw_run(&w);
    CU_ASSERT_EQUAL(w.cli.reason, MESH_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(w.cli.closed_at, 2500 * MS);
    tw_free(&w);
}

static void test_timeout_syns_dropped(void)
{
    /* A middlebox in front of the server eats every SYN: the listener never hears of it. */
    sim_tcp_cfg cfg = {.connect_timeout = 4 * MESH_NS_PER_S};
    tw w;
    tw_init_listening(&w, 1, &cfg, NULL);
    dropper d = {.dir = SIM_DIR_IN,
                 .mask = SIM_TCP_SYN | SIM_TCP_ACK,
                 .value = SIM_TCP_SYN,
                 .drops_left = -1};
    attach_dropper(&w, w.b, &d);
    tw_connect(&w);
    tw_run(&w);
    CU_ASSERT_EQUAL(w.cli.reason, MESH_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(w.cli.closed_at, 4 * MESH_NS_PER_S);
    CU_ASSERT_EQUAL(w.srv.accepted, 0);
    CU_ASSERT_EQUAL(d.dropped, 3); /* 0, 1 and 3 s; the next retry (7 s) is after the timeout */
    CU_ASSERT_EQUAL(d.seen_at[2], 3000 * MS + ONE_WAY);
    CU_ASSERT_EQUAL(sim_tcp_get_stats(w.tcp).conns_live, 0);
    tw_free(&w);
}

static void test_syn_lost_once_connects_after_retry(void)
{
    tw w;
    tw_init_listening(&w, 1, NULL, NULL);
    dropper d = {.dir = SIM_DIR_IN,
                 .mask = SIM_TCP_SYN | SIM_TCP_ACK,
                 .value = SIM_TCP_SYN,
                 .drops_left = 1};
    attach_dropper(&w, w.b, &d);
    tw_connect(&w);
    tw_run(&w);
    CU_ASSERT_EQUAL(w.cli.connected, 1);
    CU_ASSERT_EQUAL(w.cli.connected_at, SIM_TCP_DEFAULT_SYN_RTO_MS * MS + RTT);
    CU_ASSERT_EQUAL(w.srv.accepted_at, SIM_TCP_DEFAULT_SYN_RTO_MS * MS + RTT + ONE_WAY);
    tw_free(&w);
}

/* ---- data ------------------------------------------------------------------------------------ */

static void test_write_before_connect(void)
{
    tw w;
    tw_init_listening(&w, 1, NULL, NULL);
    tw_connect(&w);
    enum { N = 3000 }; /* three segments */
    uint8_t *buf = pattern(N, 1);
    CU_ASSERT_EQUAL(sim_tcp_write(w.cli.c, buf, 1000), MESH_OK);
    CU_ASSERT_EQUAL(sim_tcp_write(w.cli.c, buf + 1000, N - 1000), MESH_OK);
    CU_ASSERT_EQUAL(sim_tcp_pending(w.cli.c), N);
    tw_run(&w);
    CU_ASSERT_EQUAL(w.srv.accepted_at, RTT + ONE_WAY);
    expect_rx(&w.srv, buf, N);
    CU_ASSERT_EQUAL(w.srv.data_at[0], RTT + ONE_WAY); /* sent right behind the final ACK */
    CU_ASSERT_EQUAL(w.srv.data_at[w.srv.ndata - 1], RTT + ONE_WAY);
    CU_ASSERT_EQUAL(w.cli.writable, 1);
    CU_ASSERT_EQUAL(w.cli.writable_at, RTT);
    CU_ASSERT_EQUAL(sim_tcp_pending(w.cli.c), 0);
    free(buf);
    tw_free(&w);
}

static void test_first_data_carries_the_ack(void)
{
    /* The handshake's final ACK is lost; the data segment behind it completes the accept. */
    tw w;
    tw_init_listening(&w, 1, NULL, NULL);
    dropper d = {.dir = SIM_DIR_OUT,
                 .mask = 0xff,
                 .value = SIM_TCP_ACK,
                 .payload = PAYLOAD_NONE,
                 .drops_left = 1};
    attach_dropper(&w, w.a, &d);
    tw_connect(&w);
    CU_ASSERT_EQUAL(sim_tcp_write(w.cli.c, "hello", 5), MESH_OK);
    tw_run(&w);
    CU_ASSERT_EQUAL(d.dropped, 1);
    CU_ASSERT_EQUAL(w.srv.accepted, 1);
    CU_ASSERT_EQUAL(w.srv.accepted_at, RTT + ONE_WAY);
    expect_rx(&w.srv, "hello", 5);
    CU_ASSERT_EQUAL(sim_tcp_get_stats(w.tcp).retransmits, 0);
    tw_free(&w);
}

static mesh_time ser_ns(uint64_t wire_bytes, uint64_t bps)
{
    return (mesh_time)((wire_bytes * 8 * MESH_NS_PER_S + bps - 1) / bps);
}

static void test_large_write_serialisation_maths(void)
{
    /* A 10 Mbit/s uplink is the bottleneck. The model paces the sender on its uplink, so the
     * link never idles: the last byte arrives after the handshake ACK and every segment have
     * serialised back to back, plus the one-way latency. */
    const uint64_t R = 10000000;
    enum { N = 1000000 };
    links lk = default_links();
    lk.a_up.rate_bps = R;
    tw w;
    tw_init_listening(&w, 1, NULL, &lk);
    uint8_t *buf = send_on_connect(&w.cli, N, 2);
    tw_connect(&w);
    tw_run(&w);
    expect_rx(&w.srv, buf, N);
    const uint64_t mss = SIM_TCP_DEFAULT_MSS, full = N / mss, rest = N % mss;
    /* the SYN left at 0 (its serialisation is part of the first RTT) */
    mesh_time syn_ser = ser_ns(SIM_TCP_HDR_BYTES, R);
    mesh_time connected = syn_ser + RTT;
    CU_ASSERT_EQUAL(w.cli.connected_at, connected);
    mesh_time last = connected + ser_ns(SIM_TCP_HDR_BYTES, R) +
                     full * ser_ns(mss + SIM_TCP_HDR_BYTES, R) +
                     ser_ns(rest + SIM_TCP_HDR_BYTES, R) + ONE_WAY;
    CU_ASSERT_EQUAL(w.srv.data_at[w.srv.ndata - 1], last);
    /* every segment is at most one MSS */
    for (int i = 0; i < w.srv.ndata && i < MAX_DATA_EVENTS; i++)
        CU_ASSERT_TRUE(w.srv.data_len[i] <= mss);
    CU_ASSERT_EQUAL(w.srv.ndata, (int)(full + (rest ? 1 : 0)));
    CU_ASSERT_EQUAL(sim_tcp_get_stats(w.tcp).retransmits, 0);
    CU_ASSERT_EQUAL(sim_host_up_stats(w.a).tail_drops, 0);
    free(buf);
    tw_free(&w);
}

static void test_window_limits_inflight(void)
{
    /* Infinite rate, a 4-segment window: one window per RTT. */
    enum { SEGS_PER_WIN = 4, WINDOWS = 10 };
    sim_tcp_cfg cfg = {.window = SEGS_PER_WIN * SIM_TCP_DEFAULT_MSS};
    const size_t n = (size_t)WINDOWS * SEGS_PER_WIN * SIM_TCP_DEFAULT_MSS;
    tw w;
    tw_init_listening(&w, 1, &cfg, NULL);
    uint8_t *buf = send_on_connect(&w.cli, n, 3);
    tw_connect(&w);
    tw_run(&w);
    expect_rx(&w.srv, buf, n);
    CU_ASSERT_EQUAL_FATAL(w.srv.ndata, WINDOWS * SEGS_PER_WIN);
    for (int i = 0; i < w.srv.ndata; i++)
        CU_ASSERT_EQUAL(w.srv.data_at[i], RTT + (mesh_time)(i / SEGS_PER_WIN) * RTT + ONE_WAY);
    free(buf);
    tw_free(&w);
}

/* ---- close ----------------------------------------------------------------------------------- */

static void test_fin_after_last_byte(void)
{
    /* The client writes 200 kB and closes gracefully in the same callback: the server gets
     * every byte, then on_closed(MESH_OK); the client hears nothing more; both ends are
     * forgotten once the FINs are acknowledged. */
    enum { N = 200000 };
    links lk = default_links();
    lk.a_up.rate_bps = 50000000;
    tw w;
    tw_init_listening(&w, 1, NULL, &lk);
    dropper fins = {.dir = SIM_DIR_OUT, .mask = SIM_TCP_FIN, .value = SIM_TCP_FIN};
    attach_dropper(&w, w.a, &fins);
    uint8_t *buf = send_on_connect(&w.cli, N, 4);
    w.cli.close_in_connected = 1;
    w.cli.close_how = MESH_CLOSE_GRACEFUL;
    tw_connect(&w);
    tw_run(&w);
    expect_rx(&w.srv, buf, N);
    CU_ASSERT_EQUAL(w.srv.closed, 1);
    CU_ASSERT_EQUAL(w.srv.reason, MESH_OK);
    /* the FIN rides on the last data segment: closed in the same instant, after the bytes */
    CU_ASSERT_EQUAL(w.srv.closed_at, w.srv.data_at[w.srv.ndata - 1]);
    CU_ASSERT_EQUAL(fins.seen, 1);
    CU_ASSERT_EQUAL(w.srv.after_close, 0);
    CU_ASSERT_EQUAL(w.cli.closed, 0); /* released by close(): no callback */
    CU_ASSERT_EQUAL(w.cli.after_close, 0);
    CU_ASSERT_EQUAL(w.cli.writable, 0);
    CU_ASSERT_EQUAL(sim_tcp_get_stats(w.tcp).conns_live, 0);
    CU_ASSERT_EQUAL(sim_tcp_get_stats(w.tcp).rsts_sent, 0);
    CU_ASSERT_EQUAL(sim_tcp_get_stats(w.tcp).retransmits, 0);
    CU_ASSERT_EQUAL(sim_sched_pending(w.s), 0);
    free(buf);
    tw_free(&w);
}

static void test_fin_lost_is_retransmitted(void)
{
    /* A bare FIN (sent after the data was acknowledged) is lost once: the RTO resends it. */
    tw w;
    tw_init_listening(&w, 1, NULL, NULL);
    dropper fins = {.dir = SIM_DIR_OUT, .mask = SIM_TCP_FIN, .value = SIM_TCP_FIN, .drops_left = 1};
    attach_dropper(&w, w.a, &fins);
    w.cli.close_in_connected = 1;
    w.cli.close_how = MESH_CLOSE_GRACEFUL;
    tw_connect(&w);
    tw_run(&w);
    CU_ASSERT_EQUAL(fins.seen, 2);
    CU_ASSERT_EQUAL(w.srv.closed, 1);
    CU_ASSERT_EQUAL(w.srv.reason, MESH_OK);
    /* FIN at 1 RTT, lost; resent one RTO (min_rto: 2 * srtt = 80 ms is below it) later */
    CU_ASSERT_EQUAL(fins.seen_at[1], RTT + SIM_TCP_DEFAULT_MIN_RTO_MS * MS);
    CU_ASSERT_EQUAL(w.srv.closed_at, RTT + SIM_TCP_DEFAULT_MIN_RTO_MS * MS + ONE_WAY);
    CU_ASSERT_EQUAL(sim_tcp_get_stats(w.tcp).conns_live, 0);
    tw_free(&w);
}

static void abort_cli(void *ctx, void *arg)
{
    tw *w = ctx;
    (void)arg;
    ep_close(&w->cli, w->cli.c, MESH_CLOSE_ABORT);
}

static void test_abort_resets_peer(void)
{
    tw w;
    tw_init_listening(&w, 1, NULL, NULL);
    tw_connect(&w);
    const mesh_time T = 100 * MS;
    CU_ASSERT_EQUAL(sim_sched_at(w.s, T, SIM_EV_USER, 0, abort_cli, &w, NULL, NULL), MESH_OK);
    tw_run(&w);
    CU_ASSERT_EQUAL(w.srv.accepted, 1);
    CU_ASSERT_EQUAL(w.srv.closed, 1);
    CU_ASSERT_EQUAL(w.srv.reason, MESH_ERR_RESET);
    CU_ASSERT_EQUAL(w.srv.closed_at, T + ONE_WAY);
    CU_ASSERT_EQUAL(w.cli.closed, 0);
    CU_ASSERT_EQUAL(w.cli.after_close, 0);
    CU_ASSERT_EQUAL(sim_tcp_get_stats(w.tcp).conns_live, 0);
    tw_free(&w);
}

static void test_abort_drops_queued_bytes(void)
{
    /* On a slow uplink most of a write is still queued when the client aborts: the server
     * gets a prefix of the bytes (never more than was handed to the network), then RESET. */
    enum { N = 100000 };
    links lk = default_links();
    lk.a_up.rate_bps = 1000000; /* 12 ms per full segment */
    tw w;
    tw_init_listening(&w, 1, NULL, &lk);
    uint8_t *buf = send_on_connect(&w.cli, N, 5);
    tw_connect(&w);
    const mesh_time T = 200 * MS;
    CU_ASSERT_EQUAL(sim_sched_at(w.s, T, SIM_EV_USER, 0, abort_cli, &w, NULL, NULL), MESH_OK);
    tw_run(&w);
    CU_ASSERT_EQUAL(w.srv.reason, MESH_ERR_RESET);
    CU_ASSERT_TRUE(w.srv.rx.len > 0 && w.srv.rx.len < N);
    CU_ASSERT_EQUAL(memcmp(w.srv.rx.b, buf, w.srv.rx.len), 0);
    CU_ASSERT_EQUAL(w.srv.after_close, 0);
    free(buf);
    tw_free(&w);
}

/* ---- loss ------------------------------------------------------------------------------------ */

static void test_lost_segment_waits_for_rto(void)
{
    /* One small segment, lost once: no duplicate ACKs can come, so only the RTO resends it.
     * srtt = 40 ms from the handshake, RTO = max(min_rto, 2 * srtt) = 200 ms. */
    for (int lose = 0; lose < 2; lose++) {
        tw w;
        tw_init_listening(&w, 1, NULL, NULL);
        dropper d = data_dropper(SIM_DIR_OUT, 0, lose);
        attach_dropper(&w, w.a, &d);
        static const uint8_t msg[100] = {1, 2, 3};
        w.cli.send_on_connect = msg;
        w.cli.send_on_connect_len = sizeof msg;
        tw_connect(&w);
        tw_run(&w);
        CU_ASSERT_EQUAL_FATAL(w.srv.ndata, 1);
        CU_ASSERT_EQUAL(w.srv.rx.len, sizeof msg);
        CU_ASSERT_EQUAL(memcmp(w.srv.rx.b, msg, sizeof msg), 0);
        mesh_time expect = RTT + ONE_WAY + (lose ? SIM_TCP_DEFAULT_MIN_RTO_MS * MS : 0);
        CU_ASSERT_EQUAL(w.srv.data_at[0], expect);
        CU_ASSERT_EQUAL(sim_tcp_get_stats(w.tcp).retransmits, (uint64_t)lose);
        tw_free(&w);
    }
}

static void test_fast_retransmit(void)
{
    /* Ten segments at once, the first lost: nine duplicate ACKs come back one RTT later and
     * the third resends the hole, so everything is delivered at 2.5 RTT, long before the
     * 200 ms RTO. */
    enum { N = 10 * SIM_TCP_DEFAULT_MSS };
    tw w;
    tw_init_listening(&w, 1, NULL, NULL);
    dropper d = data_dropper(SIM_DIR_OUT, 0, 1);
    attach_dropper(&w, w.a, &d);
    uint8_t *buf = send_on_connect(&w.cli, N, 6);
    tw_connect(&w);
    tw_run(&w);
    expect_rx(&w.srv, buf, N);
    for (int i = 0; i < w.srv.ndata; i++)
        CU_ASSERT_EQUAL(w.srv.data_at[i], 2 * RTT + ONE_WAY);
    CU_ASSERT_EQUAL(sim_tcp_get_stats(w.tcp).retransmits, 1);
    CU_ASSERT_EQUAL(d.seen, 11);
    free(buf);
    tw_free(&w);
}

static void cut_b_and_write(void *ctx, void *arg)
{
    tw *w = ctx;
    (void)arg;
    sim_host_set_up(w->b, 0);
    CU_ASSERT_EQUAL(sim_tcp_write(w->cli.c, "ping", 4), MESH_OK);
}

static void test_max_retries_timeout(void)
{
    /* The server vanishes at 100 ms, right when the client writes. RTO 200 ms doubling:
     * resends at 300, 700, 1500 ms; the fourth expiry (3100 ms) exceeds max_retries = 3. */
    sim_tcp_cfg cfg = {.max_retries = 3};
    tw w;
    tw_init_listening(&w, 1, &cfg, NULL);
    dropper d = data_dropper(SIM_DIR_OUT, 0, 0);
    attach_dropper(&w, w.a, &d);
    tw_connect(&w);
    CU_ASSERT_EQUAL(sim_sched_at(w.s, 100 * MS, SIM_EV_USER, 0, cut_b_and_write, &w, NULL, NULL),
                    MESH_OK);
    tw_run(&w);
    CU_ASSERT_EQUAL(w.cli.closed, 1);
    CU_ASSERT_EQUAL(w.cli.reason, MESH_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(w.cli.closed_at, 3100 * MS);
    CU_ASSERT_EQUAL_FATAL(d.seen, 4);
    CU_ASSERT_EQUAL(d.seen_at[0], 100 * MS);
    CU_ASSERT_EQUAL(d.seen_at[1], 300 * MS);
    CU_ASSERT_EQUAL(d.seen_at[2], 700 * MS);
    CU_ASSERT_EQUAL(d.seen_at[3], 1500 * MS);
    CU_ASSERT_EQUAL(sim_tcp_get_stats(w.tcp).retransmits, 3);
    CU_ASSERT_EQUAL(w.srv.closed, 0); /* the server never heard anything */
    tw_free(&w);
}

/* Arrival trace of a transfer over lossy, jittery links. */
typedef struct trace {
    size_t n;
    mesh_time at[MAX_DATA_EVENTS];
    size_t len[MAX_DATA_EVENTS];
    uint64_t fingerprint, retransmits;
    mesh_time closed_at;
} trace;

static void lossy_transfer(uint64_t seed, trace *out)
{
    enum { N = 300000 };
    links lk = default_links();
    lk.a_up.loss = lk.b_up.loss = 0.03;
    lk.a_up.jitter = lk.b_up.jitter = 3 * MS;
    lk.a_up.rate_bps = 20000000;
    tw w;
    tw_init_listening(&w, seed, NULL, &lk);
    uint8_t *buf = send_on_connect(&w.cli, N, 7);
    w.cli.close_in_connected = 1;
    w.cli.close_how = MESH_CLOSE_GRACEFUL;
    tw_connect(&w);
    tw_run(&w);
    expect_rx(&w.srv, buf, N); /* in order and intact */
    CU_ASSERT_EQUAL(w.srv.closed, 1);
    CU_ASSERT_EQUAL(w.srv.reason, MESH_OK);
    CU_ASSERT_TRUE(w.srv.closed_at >= w.srv.data_at[w.srv.ndata - 1]);
    CU_ASSERT_FATAL(w.srv.ndata <= MAX_DATA_EVENTS);
    memset(out, 0, sizeof *out);
    out->n = (size_t)w.srv.ndata;
    memcpy(out->at, w.srv.data_at, out->n * sizeof out->at[0]);
    memcpy(out->len, w.srv.data_len, out->n * sizeof out->len[0]);
    out->fingerprint = sim_sched_fingerprint(w.s);
    out->retransmits = sim_tcp_get_stats(w.tcp).retransmits;
    out->closed_at = w.srv.closed_at;
    free(buf);
    tw_free(&w);
}

static void test_loss_and_jitter_seeded(void)
{
    static trace t1, t2, t3;
    lossy_transfer(42, &t1);
    lossy_transfer(42, &t2);
    lossy_transfer(43, &t3);
    CU_ASSERT_TRUE(t1.retransmits > 0); /* loss really happened and was repaired */
    CU_ASSERT_TRUE(t3.retransmits > 0);
    /* same seed: the same arrival times, byte counts and event fingerprint */
    CU_ASSERT_EQUAL(t1.n, t2.n);
    CU_ASSERT_EQUAL(memcmp(t1.at, t2.at, t1.n * sizeof t1.at[0]), 0);
    CU_ASSERT_EQUAL(memcmp(t1.len, t2.len, t1.n * sizeof t1.len[0]), 0);
    CU_ASSERT_EQUAL(t1.fingerprint, t2.fingerprint);
    CU_ASSERT_EQUAL(t1.closed_at, t2.closed_at);
    /* another seed: another run */
    CU_ASSERT_NOT_EQUAL(t1.fingerprint, t3.fingerprint);
    CU_ASSERT_TRUE(t1.n != t3.n || memcmp(t1.at, t3.at, t1.n * sizeof t1.at[0]) != 0);
}

static void test_bottleneck_tail_drops_recovered(void)
{
    /* A fast sender into a slow, short-queued downlink: the bottleneck tail-drops bursts
     * (no congestion control in the model), and retransmission must still deliver every
     * byte, in order, for several seeds. */
    enum { N = 2000000 };
    uint8_t *buf = pattern(N, 9);
    for (uint64_t seed = 1; seed <= 4; seed++) {
        links lk = default_links();
        lk.a_up.rate_bps = 100000000;
        lk.b_down.rate_bps = 10000000;
        lk.b_down.queue_bytes = 64 * 1024;
        lk.b_down.jitter = seed > 2 ? 2 * MS : 0;
        lk.b_up.loss = seed > 3 ? 0.02 : 0;
        tw w;
        tw_init_listening(&w, seed, NULL, &lk);
        w.cli.send_on_connect = buf;
        w.cli.send_on_connect_len = N;
        w.cli.close_in_connected = 1;
        w.cli.close_how = MESH_CLOSE_GRACEFUL;
        tw_connect(&w);
        tw_run(&w);
        CU_ASSERT_EQUAL(w.srv.rx.len, N);
        CU_ASSERT_TRUE(w.srv.rx.len == N && memcmp(w.srv.rx.b, buf, N) == 0);
        CU_ASSERT_EQUAL(w.srv.reason, MESH_OK);
        CU_ASSERT_TRUE(sim_host_down_stats(w.b).tail_drops > 0);
        CU_ASSERT_TRUE(sim_tcp_get_stats(w.tcp).retransmits > 0);
        CU_ASSERT_EQUAL(sim_tcp_get_stats(w.tcp).conns_live, 0);
        /* no faster than the bottleneck allows */
        CU_ASSERT_TRUE(w.srv.closed_at > (mesh_time)N * 8 * MESH_NS_PER_S / 10000000);
        tw_free(&w);
    }
    free(buf);
}

/* A middlebox that shifts a host's sequence space so its ISN sits just below 2^32: the peer
 * then sees sequence numbers wrap a few kB into the stream. Outgoing seq += k, incoming
 * ack -= k, as a sequence-randomising firewall does. */
typedef struct seqshift {
    int set;
    uint32_t k;
} seqshift;

static int seqshift_on_packet(void *obj, sim_mbox *mb, sim_pkt *p, int dir, mesh_time *delay)
{
    seqshift *x = obj;
    (void)mb;
    (void)delay;
    if (p->proto != SIM_PROTO_TCP)
        return SIM_PASS;
    if (dir == SIM_DIR_OUT) {
        if (!x->set && (p->flags & SIM_TCP_SYN)) {
            x->k = (0xffffffffu - 3000u) - p->seq;
            x->set = 1;
        }
        p->seq += x->k;
    } else if (x->set && (p->flags & SIM_TCP_ACK)) {
        p->ack -= x->k;
    }
    return SIM_PASS;
}

static const sim_mbox_ops seqshift_ops = {seqshift_on_packet};

static void echo_data(sim_tcp_conn *c, const uint8_t *data, size_t len, void *ud)
{
    on_data(c, data, len, ud);
    CU_ASSERT_EQUAL(sim_tcp_write(c, data, len), MESH_OK);
}

static void accept_echo(sim_tcp_listener *l, sim_tcp_conn *c, const mesh_addr *peer, void *ud)
{
    static const sim_tcp_cbs echo_cbs = {on_connected, echo_data, on_writable, on_closed};
    tw *w = ud;
    (void)l;
    (void)peer;
    w->srv.accepted++;
    w->srv.c = c;
    sim_tcp_set_cbs(c, &echo_cbs, &w->srv);
}

static void test_sequence_numbers_wrap(void)
{
    /* Both directions wrap (each side's ISN is moved next to 2^32 by its own middlebox),
     * with a lost segment on each side so retransmission and out-of-order holding cross the
     * wrap too. */
    enum { N = 100000 };
    tw w;
    tw_init(&w, 1, NULL, NULL);
    CU_ASSERT_EQUAL_FATAL(sim_tcp_listen(w.tcp, w.b, SRV_PORT, accept_echo, &w, &w.lst), MESH_OK);
    seqshift sa = {0}, sb = {0};
    /* drop the 4th data segment each way: it lies past the wrap point (3000 bytes) */
    dropper da = data_dropper(SIM_DIR_OUT, 3, 1);
    dropper db = da;
    CU_ASSERT_EQUAL_FATAL(sim_net_attach_host_mbox(w.net, w.a, &seqshift_ops, &sa, NULL), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_net_attach_host_mbox(w.net, w.b, &seqshift_ops, &sb, NULL), MESH_OK);
    attach_dropper(&w, w.a, &da);
    attach_dropper(&w, w.b, &db);
    uint8_t *buf = send_on_connect(&w.cli, N, 11);
    tw_connect(&w);
    tw_run(&w);
    CU_ASSERT_TRUE(sa.set && sb.set);
    CU_ASSERT_EQUAL(da.dropped, 1);
    CU_ASSERT_EQUAL(db.dropped, 1);
    CU_ASSERT_EQUAL(sim_tcp_get_stats(w.tcp).retransmits, 2);
    expect_rx(&w.srv, buf, N);
    expect_rx(&w.cli, buf, N);
    CU_ASSERT_EQUAL(w.cli.closed + w.srv.closed, 0);
    free(buf);
    tw_free(&w);
}

/* ---- closing inside callbacks ---------------------------------------------------------------- */

static void test_close_inside_on_data(void)
{
    /* The server aborts inside its first on_data while more segments are on the way: no
     * further callback reaches it, and the client is reset. */
    enum { N = 20 * SIM_TCP_DEFAULT_MSS };
    tw w;
    tw_init_listening(&w, 1, NULL, NULL);
    uint8_t *buf = send_on_connect(&w.cli, N, 8);
    w.srv.close_in_data = 1;
    w.srv.close_how = MESH_CLOSE_ABORT;
    tw_connect(&w);
    tw_run(&w);
    CU_ASSERT_EQUAL(w.srv.ndata, 1);
    CU_ASSERT_EQUAL(w.srv.rx.len, SIM_TCP_DEFAULT_MSS);
    CU_ASSERT_EQUAL(w.srv.after_close, 0);
    CU_ASSERT_EQUAL(w.srv.closed, 0);
    CU_ASSERT_EQUAL(w.cli.closed, 1);
    CU_ASSERT_EQUAL(w.cli.reason, MESH_ERR_RESET);
    CU_ASSERT_EQUAL(w.cli.closed_at, RTT + 2 * ONE_WAY);
    CU_ASSERT_EQUAL(sim_tcp_get_stats(w.tcp).conns_live, 0);
    tw_free(&w);

    /* Graceful close inside on_data: the rest of the bytes are acked and discarded (no
     * half-close), the client sees on_closed(MESH_OK). */
    tw_init_listening(&w, 1, NULL, NULL);
    w.cli.send_on_connect = buf;
    w.cli.send_on_connect_len = N;
    w.srv.close_in_data = 1;
    w.srv.close_how = MESH_CLOSE_GRACEFUL;
    tw_connect(&w);
    tw_run(&w);
    CU_ASSERT_EQUAL(w.srv.ndata, 1);
    CU_ASSERT_EQUAL(w.srv.after_close, 0);
    CU_ASSERT_EQUAL(w.cli.closed, 1);
    CU_ASSERT_EQUAL(w.cli.reason, MESH_OK);
    CU_ASSERT_EQUAL(w.cli.closed_at, RTT + 2 * ONE_WAY);
    tw_free(&w);
    free(buf);
}

static void test_close_inside_on_connected(void)
{
    tw w;
    tw_init_listening(&w, 1, NULL, NULL);
    w.cli.close_in_connected = 1;
    w.cli.close_how = MESH_CLOSE_ABORT;
    tw_connect(&w);
    CU_ASSERT_EQUAL(sim_tcp_write(w.cli.c, "x", 1), MESH_OK); /* queued, then dropped */
    tw_run(&w);
    CU_ASSERT_EQUAL(w.cli.connected, 1);
    CU_ASSERT_EQUAL(w.cli.after_close, 0);
    CU_ASSERT_EQUAL(w.cli.writable + w.cli.closed, 0);
    /* the RST follows the handshake ACK: accepted, then reset, both at 1.5 RTT */
    CU_ASSERT_EQUAL(w.srv.accepted_at, RTT + ONE_WAY);
    CU_ASSERT_EQUAL(w.srv.reason, MESH_ERR_RESET);
    CU_ASSERT_EQUAL(w.srv.closed_at, RTT + ONE_WAY);
    CU_ASSERT_EQUAL(w.srv.rx.len, 0);
    CU_ASSERT_EQUAL(sim_tcp_get_stats(w.tcp).conns_live, 0);
    tw_free(&w);
}

static void test_close_inside_accept(void)
{
    /* Refusing inside accept resets the client; closing the listener inside accept keeps
     * the accepted stream and refuses the next connect. */
    tw w;
    tw_init_listening(&w, 1, NULL, NULL);
    w.refuse_in_accept = 1;
    tw_connect(&w);
    tw_run(&w);
    CU_ASSERT_EQUAL(w.cli.connected_at, RTT);
    CU_ASSERT_EQUAL(w.cli.reason, MESH_ERR_RESET);
    CU_ASSERT_EQUAL(w.cli.closed_at, 2 * RTT);
    CU_ASSERT_EQUAL(w.srv.closed + w.srv.after_close, 0);
    tw_free(&w);

    tw_init_listening(&w, 1, NULL, NULL);
    w.close_lst_in_accept = 1;
    static const uint8_t msg[] = "still here";
    w.cli.send_on_connect = msg;
    w.cli.send_on_connect_len = sizeof msg;
    tw_connect(&w);
    tw_run(&w);
    CU_ASSERT_EQUAL(w.srv.accepted, 1);
    CU_ASSERT_EQUAL(w.srv.rx.len, sizeof msg);
    CU_ASSERT_EQUAL(w.cli.closed + w.srv.closed, 0);
    /* a second client: refused now */
    expect_refused_now(&w);
    CU_ASSERT_EQUAL(w.srv.accepted, 1);
    tw_free(&w);
}

static void test_write_after_close_fails(void)
{
    tw w;
    tw_init_listening(&w, 1, NULL, NULL);
    tw_connect(&w);
    tw_run(&w);
    CU_ASSERT_EQUAL(sim_tcp_write(w.cli.c, NULL, 3), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(sim_tcp_write(w.cli.c, "", 0), MESH_OK);
    sim_tcp_close(w.cli.c, MESH_CLOSE_GRACEFUL);
    CU_ASSERT_EQUAL(sim_tcp_write(w.cli.c, "late", 4), MESH_ERR_CLOSED);
    sim_tcp_close(w.cli.c, MESH_CLOSE_ABORT); /* a second close is ignored */
    tw_run(&w);
    CU_ASSERT_EQUAL(w.srv.reason, MESH_OK);
    CU_ASSERT_EQUAL(sim_tcp_get_stats(w.tcp).rsts_sent, 0);
    CU_ASSERT_EQUAL(sim_tcp_get_stats(w.tcp).conns_live, 0);
    tw_free(&w);
}

static void test_simultaneous_close(void)
{
    /* Both ends close gracefully at the same instant: FINs cross, both are acknowledged,
     * nobody is reset, and both connections are forgotten. */
    tw w;
    tw_init_listening(&w, 1, NULL, NULL);
    tw_connect(&w);
    CU_ASSERT_EQUAL(sim_sched_run_until(w.s, 100 * MS), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(w.srv.accepted, 1);
    ep_close(&w.cli, w.cli.c, MESH_CLOSE_GRACEFUL);
    ep_close(&w.srv, w.srv.c, MESH_CLOSE_GRACEFUL);
    tw_run(&w);
    CU_ASSERT_EQUAL(w.cli.closed + w.srv.closed, 0);
    CU_ASSERT_EQUAL(w.cli.after_close + w.srv.after_close, 0);
    sim_tcp_stats st = sim_tcp_get_stats(w.tcp);
    CU_ASSERT_EQUAL(st.conns_live, 0);
    CU_ASSERT_EQUAL(st.rsts_sent, 0);
    CU_ASSERT_EQUAL(st.retransmits, 0);
    tw_free(&w);
}

static void test_free_mid_handshake(void)
{
    /* Freeing the transport while a handshake is half done, and after its listener was
     * closed, releases everything (the ASan build checks for leaks). */
    tw w;
    tw_init_listening(&w, 1, NULL, NULL);
    static const uint8_t msg[] = "queued";
    tw_connect(&w);
    CU_ASSERT_EQUAL(sim_tcp_write(w.cli.c, msg, sizeof msg), MESH_OK);
    CU_ASSERT_EQUAL(sim_sched_run_until(w.s, ONE_WAY + MS), MESH_OK); /* SYN_RCVD on b */
    CU_ASSERT_EQUAL(sim_tcp_get_stats(w.tcp).conns_live, 2);
    sim_tcp_listener_close(w.lst);
    tw_free(&w);

    /* The same, but the handshake completes after the close: it is reset, never accepted. */
    tw_init_listening(&w, 1, NULL, NULL);
    tw_connect(&w);
    CU_ASSERT_EQUAL(sim_sched_run_until(w.s, ONE_WAY + MS), MESH_OK);
    sim_tcp_listener_close(w.lst);
    tw_run(&w);
    CU_ASSERT_EQUAL(w.srv.accepted, 0);
    CU_ASSERT_EQUAL(w.cli.connected_at, RTT);
    CU_ASSERT_EQUAL(w.cli.reason, MESH_ERR_RESET);
    CU_ASSERT_EQUAL(w.cli.closed_at, 2 * RTT);
    CU_ASSERT_EQUAL(sim_tcp_get_stats(w.tcp).conns_live, 0);
    tw_free(&w);
}

static void test_bad_arguments(void)
{
    tw w;
    tw_init(&w, 1, NULL, NULL);
    sim_tcp_conn *c = NULL;
    mesh_addr zero_port = mesh_addr_v4(IP_B, 0);
    CU_ASSERT_EQUAL(sim_tcp_connect(w.tcp, w.a, &zero_port, &ep_cbs, NULL, &c), MESH_ERR_INVAL);
    mesh_addr v6 = {.family = MESH_AF_INET6, .port = 80};
    CU_ASSERT_EQUAL(sim_tcp_connect(w.tcp, w.a, &v6, &ep_cbs, NULL, &c), MESH_ERR_INVAL);
    CU_ASSERT_PTR_NULL(c);
    sim_tcp_listener *l1, *l2;
    CU_ASSERT_EQUAL(sim_tcp_listen(w.tcp, w.b, 80, on_accept, &w, &l1), MESH_OK);
    CU_ASSERT_EQUAL(sim_tcp_listen(w.tcp, w.b, 80, on_accept, &w, &l2), MESH_ERR_ADDR);
    CU_ASSERT_EQUAL(sim_tcp_listen(w.tcp, w.a, 80, on_accept, &w, &l2), MESH_OK); /* per host */
    CU_ASSERT_EQUAL(sim_tcp_listen(w.tcp, w.b, 0, on_accept, &w, &l2), MESH_OK);
    CU_ASSERT_TRUE(sim_tcp_listener_addr(l2).port >= SIM_TCP_EPHEMERAL_LO);
    sim_tcp_listener_close(l1);
    sim_tcp_listener_close(l1); /* idempotent */
    CU_ASSERT_EQUAL(sim_tcp_listen(w.tcp, w.b, 80, on_accept, &w, &l1), MESH_OK);
    tw_run(&w);
    tw_free(&w);
}

static const CU_TestInfo tcp_tests[] = {
    {"connect costs one RTT; accept at 1.5 RTT", test_connect_costs_one_rtt},
    {"no listener: MESH_ERR_REFUSED after one RTT", test_refused_without_listener},
    {"no host: SYN retries, MESH_ERR_TIMEOUT at the timeout", test_timeout_no_host},
    {"SYNs dropped by a middlebox: timeout", test_timeout_syns_dropped},
    {"one SYN lost: connect after the SYN RTO", test_syn_lost_once_connects_after_retry},
    {"writes before connect are queued and delivered", test_write_before_connect},
    {"lost final ACK: first data segment completes accept", test_first_data_carries_the_ack},
    {"large write: serialisation + latency maths", test_large_write_serialisation_maths},
    {"window limits bytes in flight", test_window_limits_inflight},
    {"FIN after the last byte: peer on_closed(MESH_OK)", test_fin_after_last_byte},
    {"lost FIN is retransmitted", test_fin_lost_is_retransmitted},
    {"abort: peer on_closed(MESH_ERR_RESET)", test_abort_resets_peer},
    {"abort drops queued bytes", test_abort_drops_queued_bytes},
    {"lost segment: delay of one RTO", test_lost_segment_waits_for_rto},
    {"three duplicate ACKs: fast retransmit", test_fast_retransmit},
    {"max retries: MESH_ERR_TIMEOUT", test_max_retries_timeout},
    {"loss and jitter: intact, in order, seeded", test_loss_and_jitter_seeded},
    {"bottleneck tail drops are recovered", test_bottleneck_tail_drops_recovered},
    {"sequence numbers wrap", test_sequence_numbers_wrap},
    {"close inside on_data", test_close_inside_on_data},
    {"close inside on_connected", test_close_inside_on_connected},
    {"close inside accept", test_close_inside_accept},
    {"write after close fails", test_write_after_close_fails},
    {"simultaneous graceful close", test_simultaneous_close},
    {"free mid-handshake, listener closed", test_free_mid_handshake},
    {"bad arguments and port clashes", test_bad_arguments},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"sim_tcp", NULL, NULL, NULL, NULL, (CU_TestInfo *)tcp_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
