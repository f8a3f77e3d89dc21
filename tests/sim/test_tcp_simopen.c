/* test_tcp_simopen.c — TCP simultaneous open in the stream model (sim/tcp.h, RFC 9293 §3.5)
 * at exact virtual times: crossing SYNs give each side on_connected and no accept; a SYN that
 * arrives before the local connect goes to the listener and connect_from then finds the
 * four-tuple taken; lost SYN-ACKs are resent from SYN-RECEIVED (and an ACK carrying data
 * completes it); a RST refuses, and the connect timeout ends, an open stuck in SYN-RECEIVED.
 *
 * Topology: hosts a and b on the core, both listening on PORT; access links 5 ms, core
 * 10 ms: one way 20 ms. A middlebox on a's access link drops what a test asks it to. */
#include "mesh_test.h"

#include <stdlib.h>
#include <string.h>

#include "sim/tcp.h"

#define MS MESH_NS_PER_MS
#define ONE_WAY (20 * MS)
#define IP_A SIM_IP4(198, 51, 100, 1)
#define IP_B SIM_IP4(198, 51, 100, 2)

enum { PORT = 7000 };

typedef struct end {
    struct world *w;
    sim_host *h;
    sim_tcp_listener *l;
    sim_tcp_conn *c, *acc;
    int connected, accepted, closed, reason;
    mesh_time connected_at, accepted_at, closed_at, data_at;
    mesh_test_buf rx;
    const char *say; /* written in on_connected */
} end;

typedef struct world {
    sim_sched *s;
    sim_net *net;
    sim_tcp *tcp;
    end a, b;
    /* a's inbound filter: drop SYN-ACKs (how many; -1 = all), plain ACKs, RSTs */
    int drop_synack, drop_ack, drop_rst;
} world;

static mesh_time now(world *w)
{
    return sim_sched_now(w->s);
}

static void on_connected(sim_tcp_conn *c, void *ud)
{
    end *e = ud;
    e->connected++;
    e->connected_at = now(e->w);
    if (e->say)
        CU_ASSERT_EQUAL(sim_tcp_write(c, e->say, strlen(e->say)), MESH_OK);
}

static void on_data(sim_tcp_conn *c, const uint8_t *d, size_t n, void *ud)
{
    end *e = ud;
    (void)c;
    e->data_at = now(e->w);
    mesh_test_buf_add(&e->rx, d, n);
}

static void on_closed(sim_tcp_conn *c, int reason, void *ud)
{
    end *e = ud;
    (void)c;
    e->closed++;
    e->reason = reason;
    e->closed_at = now(e->w);
    e->c = NULL;
}

static const sim_tcp_cbs CBS = {on_connected, on_data, NULL, on_closed};

static void on_accept(sim_tcp_listener *l, sim_tcp_conn *c, const mesh_addr *peer, void *ud)
{
    end *e = ud;
    (void)l;
    (void)peer;
    e->accepted++;
    e->accepted_at = now(e->w);
    e->acc = c;
    sim_tcp_set_cbs(c, &CBS, e);
}

static int filter(void *obj, sim_mbox *mb, sim_pkt *p, int dir, mesh_time *delay)
{
    world *w = obj;
    (void)mb;
    (void)delay;
    if (dir != SIM_DIR_IN)
        return SIM_PASS;
    uint8_t f = p->flags & (SIM_TCP_SYN | SIM_TCP_ACK | SIM_TCP_RST);
    if (f == (SIM_TCP_SYN | SIM_TCP_ACK) && w->drop_synack) {
        if (w->drop_synack > 0)
            w->drop_synack--;
        return SIM_DROP;
    }
    if (f == SIM_TCP_ACK && w->drop_ack)
        return SIM_DROP;
    if ((f & SIM_TCP_RST) && w->drop_rst)
        return SIM_DROP;
    return SIM_PASS;
}

static const sim_mbox_ops FILTER = {filter};

static void world_init(world *w, const sim_tcp_cfg *cfg)
{
    memset(w, 0, sizeof *w);
    CU_ASSERT_EQUAL_FATAL(sim_sched_new(&w->s), MESH_OK);
    sim_sched_set_event_cap(w->s, 1000000);
    CU_ASSERT_EQUAL_FATAL(sim_net_new(&w->net, w->s, 3), MESH_OK);
    sim_net_set_core(w->net, &(sim_link_cfg){.latency = 10 * MS}, NULL, NULL);
    sim_link_cfg l = {.latency = 5 * MS};
    sim_host_cfg ha = {"a", IP_A, NULL, l, l}, hb = {"b", IP_B, NULL, l, l};
    CU_ASSERT_EQUAL_FATAL(sim_net_add_host(w->net, &ha, &w->a.h), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_net_add_host(w->net, &hb, &w->b.h), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_net_attach_host_mbox(w->net, w->a.h, &FILTER, w, NULL), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_tcp_new(&w->tcp, w->net, cfg), MESH_OK);
    w->a.w = w->b.w = w;
    CU_ASSERT_EQUAL(sim_tcp_listen(w->tcp, w->a.h, PORT, on_accept, &w->a, &w->a.l), MESH_OK);
    CU_ASSERT_EQUAL(sim_tcp_listen(w->tcp, w->b.h, PORT, on_accept, &w->b, &w->b.l), MESH_OK);
}

static void world_free(world *w)
{
    sim_tcp_free(w->tcp);
    sim_net_free(w->net);
    sim_sched_free(w->s);
    free(w->a.rx.b);
    free(w->b.rx.b);
}

/* e connects from its listening port to the other end's. */
static int punch(world *w, end *e)
{
    end *o = e == &w->a ? &w->b : &w->a;
    mesh_addr to = mesh_addr_v4(sim_host_ip(o->h), PORT);
    return sim_tcp_connect_from(w->tcp, e->h, PORT, &to, &CBS, e, &e->c);
}

static void punch_ev(void *ctx, void *arg)
{
    CU_ASSERT_EQUAL(punch(ctx, arg), MESH_OK);
}

static void run_until(world *w, mesh_time t)
{
    CU_ASSERT_EQUAL(sim_sched_run_until(w->s, t), MESH_OK);
}

/* The SYNs cross: each side answers SYN-ACK at 20 ms and is connected by the other's at 40;
 * no listener accepts anything; bytes written on connect arrive one way later. */
static void test_crossing_syns(void)
{
    world w;
    world_init(&w, NULL);
    w.a.say = "from a";
    w.b.say = "from b";
    CU_ASSERT_EQUAL(punch(&w, &w.a), MESH_OK);
    CU_ASSERT_EQUAL(punch(&w, &w.b), MESH_OK);
    CU_ASSERT_EQUAL(w.a.connected + w.b.connected, 0); /* nothing from inside the calls */
    run_until(&w, 1000 * MS);
    CU_ASSERT_EQUAL(w.a.connected, 1);
    CU_ASSERT_EQUAL(w.b.connected, 1);
    CU_ASSERT_EQUAL(w.a.connected_at, 2 * ONE_WAY);
    CU_ASSERT_EQUAL(w.b.connected_at, 2 * ONE_WAY);
    CU_ASSERT_EQUAL(w.a.accepted + w.b.accepted, 0);
    CU_ASSERT_EQUAL(w.a.data_at, 3 * ONE_WAY);
    CU_ASSERT(w.a.rx.len == 6 && !memcmp(w.a.rx.b, "from b", 6));
    CU_ASSERT(w.b.rx.len == 6 && !memcmp(w.b.rx.b, "from a", 6));
    mesh_addr la = sim_tcp_local(w.a.c), ra = sim_tcp_remote(w.a.c);
    mesh_addr lb = mesh_addr_v4(IP_B, PORT);
    CU_ASSERT_EQUAL(la.port, PORT);
    CU_ASSERT(mesh_addr_equal(&ra, &lb));
    sim_tcp_stats st = sim_tcp_get_stats(w.tcp);
    CU_ASSERT_EQUAL(st.conns_opened, 2);
    CU_ASSERT_EQUAL(st.rsts_sent, 0);
    CU_ASSERT_EQUAL(st.retransmits, 0);
    world_free(&w);
}

/* b connects 1 ms before a's SYN reaches it: a's SYN finds b in SYN-SENT (b: SYN-RECEIVED at
 * 20 ms), b's reaches a at 39 ms (a: SYN-RECEIVED); b's SYN-ACK connects a at 40, a's
 * SYN-ACK connects b at 59. */
static void test_nearly_crossing(void)
{
    world w;
    world_init(&w, NULL);
    CU_ASSERT_EQUAL(punch(&w, &w.a), MESH_OK);
    sim_sched_at(w.s, ONE_WAY - MS, SIM_EV_USER, 0, punch_ev, &w, &w.b, NULL);
    run_until(&w, 1000 * MS);
    CU_ASSERT_EQUAL(w.a.connected_at, 2 * ONE_WAY);
    CU_ASSERT_EQUAL(w.b.connected_at, 3 * ONE_WAY - MS);
    CU_ASSERT_EQUAL(w.a.accepted + w.b.accepted, 0);
    CU_ASSERT_EQUAL(w.a.closed + w.b.closed, 0);
    world_free(&w);
}

/* b is too late: a's SYN reached b's listener at 20 ms, which holds that four-tuple, so b's
 * connect_from is refused at once; b accepts a's connection at 1.5 RTT. */
static void test_too_late(void)
{
    world w;
    world_init(&w, NULL);
    CU_ASSERT_EQUAL(punch(&w, &w.a), MESH_OK);
    run_until(&w, ONE_WAY + MS);
    sim_tcp_conn *c = NULL;
    mesh_addr to = mesh_addr_v4(IP_A, PORT);
    CU_ASSERT_EQUAL(sim_tcp_connect_from(w.tcp, w.b.h, PORT, &to, &CBS, &w.b, &c), MESH_ERR_ADDR);
    CU_ASSERT_PTR_NULL(c);
    run_until(&w, 1000 * MS);
    CU_ASSERT_EQUAL(w.a.connected_at, 2 * ONE_WAY);
    CU_ASSERT_EQUAL(w.b.accepted, 1);
    CU_ASSERT_EQUAL(w.b.accepted_at, 3 * ONE_WAY);
    /* port 0 and a port without a listener are fine and refused as for connect */
    CU_ASSERT_EQUAL(sim_tcp_connect_from(w.tcp, w.b.h, 0, &to, &CBS, &w.b, &c), MESH_ERR_INVAL);
    world_free(&w);
}

/* a loses b's SYN-ACK and stays in SYN-RECEIVED; b is connected by a's SYN-ACK at 40 ms. a's
 * retransmission timer (armed with the SYN at 0, syn_rto 1 s) resends its SYN-ACK at 1 s; b,
 * connected, answers with an ACK that connects a at 1040 ms. */
static void test_lost_synack(void)
{
    world w;
    world_init(&w, NULL);
    w.drop_synack = 1;
    CU_ASSERT_EQUAL(punch(&w, &w.a), MESH_OK);
    CU_ASSERT_EQUAL(punch(&w, &w.b), MESH_OK);
    run_until(&w, 5000 * MS);
    CU_ASSERT_EQUAL(w.b.connected_at, 2 * ONE_WAY);
    CU_ASSERT_EQUAL(w.a.connected, 1);
    CU_ASSERT_EQUAL(w.a.connected_at, 1000 * MS + 2 * ONE_WAY);
    CU_ASSERT_EQUAL(w.a.accepted + w.b.accepted, 0);
    world_free(&w);
}

/* The same, but b writes as soon as it is connected: its data segment carries the ACK that
 * completes a's open at 60 ms, with the bytes. */
static void test_ack_with_data_completes(void)
{
    world w;
    world_init(&w, NULL);
    w.drop_synack = 1;
    w.b.say = "hello";
    CU_ASSERT_EQUAL(punch(&w, &w.a), MESH_OK);
    CU_ASSERT_EQUAL(punch(&w, &w.b), MESH_OK);
    run_until(&w, 5000 * MS);
    CU_ASSERT_EQUAL(w.a.connected_at, 3 * ONE_WAY);
    CU_ASSERT_EQUAL(w.a.data_at, 3 * ONE_WAY);
    CU_ASSERT(w.a.rx.len == 5 && !memcmp(w.a.rx.b, "hello", 5));
    world_free(&w);
}

static void abort_b_ev(void *ctx, void *arg)
{
    world *w = ctx;
    (void)arg;
    sim_tcp_close(w->b.c, MESH_CLOSE_ABORT);
    w->b.c = NULL;
}

/* A RST in SYN-RECEIVED refuses an active open: a lost b's SYN-ACK, b aborts at 25 ms, its
 * RST reaches a at 45 ms. */
static void test_rst_refuses(void)
{
    world w;
    world_init(&w, NULL);
    w.drop_synack = -1;
    CU_ASSERT_EQUAL(punch(&w, &w.a), MESH_OK);
    CU_ASSERT_EQUAL(punch(&w, &w.b), MESH_OK);
    sim_sched_at(w.s, 25 * MS, SIM_EV_USER, 0, abort_b_ev, &w, NULL, NULL);
    run_until(&w, 5000 * MS);
    CU_ASSERT_EQUAL(w.a.closed, 1);
    CU_ASSERT_EQUAL(w.a.reason, MESH_ERR_REFUSED);
    CU_ASSERT_EQUAL(w.a.closed_at, 25 * MS + ONE_WAY);
    CU_ASSERT_EQUAL(w.a.connected, 0);
    world_free(&w);
}

/* Nothing of b's but its SYN reaches a: a sits in SYN-RECEIVED resending its SYN-ACK until
 * the connect timeout (3 s here) ends it with MESH_ERR_TIMEOUT, exactly then. */
static void test_timeout_in_syn_received(void)
{
    world w;
    sim_tcp_cfg cfg = {.connect_timeout = 3000 * MS};
    world_init(&w, &cfg);
    w.drop_synack = -1;
    w.drop_ack = 1;
    w.drop_rst = 1;
    CU_ASSERT_EQUAL(punch(&w, &w.a), MESH_OK);
    CU_ASSERT_EQUAL(punch(&w, &w.b), MESH_OK);
    run_until(&w, 10000 * MS);
    CU_ASSERT_EQUAL(w.a.closed, 1);
    CU_ASSERT_EQUAL(w.a.reason, MESH_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(w.a.closed_at, 3000 * MS);
    CU_ASSERT_EQUAL(w.b.connected_at, 2 * ONE_WAY);
    CU_ASSERT(sim_tcp_get_stats(w.tcp).retransmits == 0); /* SYN-ACK resends are not data */
    world_free(&w);
}

/* connect_from towards a listener that does not connect back is an ordinary open. */
static void test_one_sided(void)
{
    world w;
    world_init(&w, NULL);
    CU_ASSERT_EQUAL(punch(&w, &w.a), MESH_OK);
    run_until(&w, 1000 * MS);
    CU_ASSERT_EQUAL(w.a.connected_at, 2 * ONE_WAY);
    CU_ASSERT_EQUAL(w.b.accepted_at, 3 * ONE_WAY);
    /* the same four-tuple again is taken; another remote port is not */
    sim_tcp_conn *c = NULL;
    mesh_addr to = mesh_addr_v4(IP_B, PORT), other = mesh_addr_v4(IP_B, PORT + 1);
    CU_ASSERT_EQUAL(sim_tcp_connect_from(w.tcp, w.a.h, PORT, &to, &CBS, &w.a, &c), MESH_ERR_ADDR);
    end e2 = {.w = &w};
    CU_ASSERT_EQUAL(sim_tcp_connect_from(w.tcp, w.a.h, PORT, &other, &CBS, &e2, &c), MESH_OK);
    run_until(&w, 2000 * MS);
    CU_ASSERT_EQUAL(e2.closed, 1);
    CU_ASSERT_EQUAL(e2.reason, MESH_ERR_REFUSED); /* no listener on PORT + 1 */
    free(e2.rx.b);
    world_free(&w);
}

static CU_TestInfo tests[] = {
    {"crossing SYNs: both connected after 1 RTT, no accept", test_crossing_syns},
    {"SYNs 1 ms short of crossing", test_nearly_crossing},
    {"the peer's SYN first: listener accepts, connect_from refused", test_too_late},
    {"lost SYN-ACK resent from SYN-RECEIVED", test_lost_synack},
    {"an ACK with data completes SYN-RECEIVED", test_ack_with_data_completes},
    {"RST in SYN-RECEIVED refuses the open", test_rst_refuses},
    {"connect timeout in SYN-RECEIVED", test_timeout_in_syn_received},
    {"connect_from to a plain listener", test_one_sided},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"tcp simultaneous open", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
