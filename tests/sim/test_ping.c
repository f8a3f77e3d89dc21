/* test_ping.c — proof of the seam, simulated half: the core's PING exchange between two
 * simulated hosts over 50 ms access links. The round trip measured by the core in virtual
 * time must equal what the link model predicts, to the nanosecond. The same core code runs
 * over the real driver in tests/real/test_ping.c. */
#include "mesh_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/frame.h"
#include "core/wire.h"
#include "ping.h"
#include "sim/driver.h"

enum { LINK_MS = 50, SERVER_PORT = 7000 };

typedef struct result {
    int calls, rc;
    mesh_time rtt;
} result;

static void on_ping(mesh_ping *p, int rc, mesh_time rtt, void *ud)
{
    result *r = ud;
    r->calls++;
    r->rc = rc;
    r->rtt = rtt;
    mesh_ping_free(p); /* freeing inside the callback is allowed */
}

typedef struct two_hosts {
    sim_world *w;
    sim_host *a, *b;
    sim_driver *da, *db;
} two_hosts;

static void setup(two_hosts *t, uint64_t rate_bps)
{
    memset(t, 0, sizeof *t);
    CU_ASSERT_EQUAL_FATAL(sim_world_new(&t->w, 1, NULL), MESH_OK);
    sim_sched_set_event_cap(sim_world_sched(t->w), 1000000);
    sim_link_cfg l = {.latency = LINK_MS * MESH_NS_PER_MS, .rate_bps = rate_bps};
    sim_host_cfg ca = {"a", SIM_IP4(198, 51, 100, 1), NULL, l, l};
    sim_host_cfg cb = {"b", SIM_IP4(203, 0, 113, 1), NULL, l, l};
    CU_ASSERT_EQUAL_FATAL(sim_net_add_host(sim_world_net(t->w), &ca, &t->a), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_net_add_host(sim_world_net(t->w), &cb, &t->b), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_driver_new(&t->da, t->w, t->a), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_driver_new(&t->db, t->w, t->b), MESH_OK);
}

static void teardown(two_hosts *t)
{
    sim_driver_free(t->da);
    sim_driver_free(t->db);
    sim_world_free(t->w);
}

/* ceil(bytes * 8e9 / rate): net.h's serialisation time. */
static mesh_time ser(uint64_t bytes, uint64_t rate)
{
    return rate ? (bytes * 8 * MESH_NS_PER_S + rate - 1) / rate : 0;
}

/* Run one ping of payload_len bytes; returns the result and the query id it used. */
static result run_ping(two_hosts *t, size_t payload_len, uint64_t *query_id)
{
    mesh_env eb = sim_driver_env(t->db), ea = sim_driver_env(t->da);
    mesh_ping_server *srv = NULL;
    mesh_addr la = mesh_addr_v4(sim_host_ip(t->b), SERVER_PORT);
    CU_ASSERT_EQUAL_FATAL(mesh_ping_server_new(&srv, &eb, &la), MESH_OK);
    result r = {0};
    mesh_ping *p = NULL;
    CU_ASSERT_EQUAL_FATAL(
        mesh_ping_start(&p, &ea, &la, payload_len, 10 * MESH_NS_PER_S, on_ping, &r), MESH_OK);
    *query_id = mesh_ping_query_id(p);
    CU_ASSERT_EQUAL(r.calls, 0); /* env rule 1: nothing from inside the call */
    sim_sched_run_until(sim_world_sched(t->w),
                        sim_sched_now(sim_world_sched(t->w)) + 20 * MESH_NS_PER_S);
    CU_ASSERT_EQUAL(mesh_ping_server_answered(srv), 1);
    mesh_ping_server_free(srv);
    return r;
}

/* Rate 0: no serialisation; one way = up 50 ms + down 50 ms, so RTT = 200 ms exactly. */
static void test_rtt_exact_latency_only(void)
{
    two_hosts t;
    setup(&t, 0);
    uint64_t id;
    for (size_t len = 0; len <= 4096; len += 1024) {
        result r = run_ping(&t, len, &id);
        CU_ASSERT_EQUAL(r.calls, 1);
        CU_ASSERT_EQUAL(r.rc, MESH_OK);
        CU_ASSERT_EQUAL(r.rtt, 4 * LINK_MS * MESH_NS_PER_MS);
    }
    teardown(&t);
}

/* Frame bytes (prefix + envelope) of a PING query or response, from the encoder itself. */
static size_t frame_bytes(int response, uint64_t id, size_t n)
{
    uint8_t payload[MESH_PING_MAX_PAYLOAD] = {0};
    mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
    Meshara__Wire__Query q = MESHARA__WIRE__QUERY__INIT;
    Meshara__Wire__Response rs = MESHARA__WIRE__RESPONSE__INIT;
    if (response) {
        rs.query_id = id;
        rs.type = MESHARA__WIRE__QUERY_TYPE__QUERY_PING;
        rs.payload.data = payload;
        rs.payload.len = n;
        e.body_case = MESHARA__WIRE__ENVELOPE__BODY_RESPONSE;
        e.response = &rs;
    } else {
        q.query_id = id;
        q.type = MESHARA__WIRE__QUERY_TYPE__QUERY_PING;
        q.payload.data = payload;
        q.payload.len = n;
        e.body_case = MESHARA__WIRE__ENVELOPE__BODY_QUERY;
        e.query = &q;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(mesh_wire_encode(&e, &buf, &len), MESH_OK);
    free(buf);
    return len + MESH_FRAME_HDR_LEN;
}

/* With a 10 Mbit/s rate on every access link the RTT adds serialisation, store-and-forward
 * on each link, exactly as net.h defines it. The query leaves A behind the handshake's final
 * ACK (40 wire bytes, written just before on_connected runs), and the response leaves B
 * behind the ACK of the query (the TCP model acks a segment right after delivering it,
 * before the write made in on_data is pushed):
 *   RTT = 4*latency + 2*ser(ACK) + 2*ser(query) + 2*ser(response). */
static void test_rtt_exact_with_serialisation(void)
{
    const uint64_t rate = 10 * 1000 * 1000;
    two_hosts t;
    setup(&t, rate);
    uint64_t id;
    for (size_t len = 0; len <= 1200; len += 400) {
        result r = run_ping(&t, len, &id);
        CU_ASSERT_EQUAL(r.rc, MESH_OK);
        size_t q = frame_bytes(0, id, len) + SIM_TCP_HDR_BYTES;
        size_t rs = frame_bytes(1, id, len) + SIM_TCP_HDR_BYTES;
        mesh_time want = 4 * LINK_MS * MESH_NS_PER_MS + 2 * ser(SIM_TCP_HDR_BYTES, rate) +
                         2 * ser(q, rate) + 2 * ser(rs, rate);
        CU_ASSERT_EQUAL(r.rtt, want);
        if (r.rtt != want)
            fprintf(stderr, "len %zu: rtt %llu, model says %llu\n", len, (unsigned long long)r.rtt,
                    (unsigned long long)want);
    }
    teardown(&t);
}

static void test_refused_and_timeout(void)
{
    two_hosts t;
    setup(&t, 0);
    mesh_env ea = sim_driver_env(t.da);
    result r = {0};
    mesh_ping *p = NULL;
    mesh_addr nobody = mesh_addr_v4(sim_host_ip(t.b), 9); /* host there, no listener */
    CU_ASSERT_EQUAL_FATAL(mesh_ping_start(&p, &ea, &nobody, 8, 10 * MESH_NS_PER_S, on_ping, &r),
                          MESH_OK);
    sim_sched_run_until(sim_world_sched(t.w), 20 * MESH_NS_PER_S);
    CU_ASSERT_EQUAL(r.calls, 1);
    CU_ASSERT_EQUAL(r.rc, MESH_ERR_REFUSED);

    /* a server whose host goes dark after the connect: the ping times out at its deadline */
    mesh_env eb = sim_driver_env(t.db);
    mesh_ping_server *srv = NULL;
    mesh_addr la = mesh_addr_v4(sim_host_ip(t.b), SERVER_PORT);
    CU_ASSERT_EQUAL_FATAL(mesh_ping_server_new(&srv, &eb, &la), MESH_OK);
    memset(&r, 0, sizeof r);
    mesh_time t0 = sim_sched_now(sim_world_sched(t.w));
    sim_host_set_up(t.b, 0);
    CU_ASSERT_EQUAL_FATAL(mesh_ping_start(&p, &ea, &la, 8, 3 * MESH_NS_PER_S, on_ping, &r),
                          MESH_OK);
    sim_sched_run_until(sim_world_sched(t.w), t0 + 3 * MESH_NS_PER_S - 1);
    CU_ASSERT_EQUAL(r.calls, 0);
    sim_sched_run_until(sim_world_sched(t.w), t0 + 3 * MESH_NS_PER_S);
    CU_ASSERT_EQUAL(r.calls, 1);
    CU_ASSERT_EQUAL(r.rc, MESH_ERR_TIMEOUT);
    mesh_ping_server_free(srv);
    teardown(&t);
}

static CU_TestInfo ping_tests[] = {
    {"RTT over 50 ms links is exactly 4 x latency", test_rtt_exact_latency_only},
    {"RTT with 10 Mbit/s links adds exact serialisation", test_rtt_exact_with_serialisation},
    {"refused and timed-out pings report the named error", test_refused_and_timeout},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"ping over the simulator", NULL, NULL, NULL, NULL, ping_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
