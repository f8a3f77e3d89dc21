/* test_ping.c — proof of the seam, real half: the very core PING exchange that
 * tests/sim/test_ping.c runs in virtual time, here through the libevent driver on loopback
 * (IPv4 and IPv6), plus a refused connect and garbage sent to the server. */
#include <stdio.h>
#include <string.h>

#include "mesh_test.h"
#include "ping.h"
#include "real/driver.h"

enum { WAIT_MS = 5000, SLICE_MS = 2 };

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
    mesh_ping_free(p);
}

static mesh_real *new_driver(void)
{
    mesh_real_config cfg;
    mesh_real_config_default(&cfg);
    cfg.log_level = MESH_LOG_ERROR;
    mesh_real *r = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_real_new(&r, NULL, &cfg), MESH_OK);
    return r;
}

static void run_until_called(mesh_real *r, const result *res)
{
    for (int i = 0; i < WAIT_MS / SLICE_MS && res->calls == 0; i++)
        mesh_real_run_for(r, SLICE_MS * MESH_NS_PER_MS);
}

static void ping_on(const char *listen_text, size_t payload)
{
    mesh_real *r = new_driver();
    mesh_env env = mesh_real_env(r);
    mesh_addr la, bound;
    CU_ASSERT_EQUAL_FATAL(mesh_addr_parse(&la, listen_text), MESH_OK);
    mesh_ping_server *srv = NULL;
    int rc = mesh_ping_server_new(&srv, &env, &la);
    if (rc == MESH_ERR_ADDR && la.family == MESH_AF_INET6) {
        printf("\n  SKIP: no IPv6 loopback here\n");
        mesh_real_free(r);
        return;
    }
    CU_ASSERT_EQUAL_FATAL(rc, MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_ping_server_addr(srv, &bound), MESH_OK);
    CU_ASSERT_NOT_EQUAL(bound.port, 0);
    result res = {0};
    mesh_ping *p = NULL;
    CU_ASSERT_EQUAL_FATAL(
        mesh_ping_start(&p, &env, &bound, payload, 3 * MESH_NS_PER_S, on_ping, &res), MESH_OK);
    CU_ASSERT_EQUAL(res.calls, 0); /* env rule 1 */
    run_until_called(r, &res);
    CU_ASSERT_EQUAL(res.calls, 1);
    CU_ASSERT_EQUAL(res.rc, MESH_OK);
    CU_ASSERT(res.rtt > 0 && res.rtt < MESH_NS_PER_S);
    CU_ASSERT_EQUAL(mesh_ping_server_answered(srv), 1);
    mesh_ping_server_free(srv);
    mesh_real_free(r);
}

static void test_ping_ipv4(void)
{
    ping_on("127.0.0.1:0", 0);
    ping_on("127.0.0.1:0", MESH_PING_MAX_PAYLOAD);
}

static void test_ping_ipv6(void)
{
    ping_on("[::1]:0", 1000);
}

static void test_refused(void)
{
    mesh_real *r = new_driver();
    mesh_env env = mesh_real_env(r);
    /* find a free port: bind a server, note its port, close it */
    mesh_addr la = mesh_addr_v4(0x7f000001, 0), bound;
    mesh_ping_server *srv = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_ping_server_new(&srv, &env, &la), MESH_OK);
    mesh_ping_server_addr(srv, &bound);
    mesh_ping_server_free(srv);
    result res = {0};
    mesh_ping *p = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_ping_start(&p, &env, &bound, 8, MESH_NS_PER_S, on_ping, &res),
                          MESH_OK);
    run_until_called(r, &res);
    CU_ASSERT_EQUAL(res.calls, 1);
    CU_ASSERT_EQUAL(res.rc, MESH_ERR_REFUSED);
    mesh_real_free(r);
}

/* A raw client sends an oversize length prefix: the server closes that client and still
 * answers a proper ping afterwards. */
typedef struct raw {
    int closed, reason;
} raw;
static void raw_closed(mesh_stream *s, int reason, void *ud)
{
    (void)s;
    raw *w = ud;
    w->closed = 1;
    w->reason = reason;
}

static void test_garbage_then_ping(void)
{
    mesh_real *r = new_driver();
    mesh_env env = mesh_real_env(r);
    mesh_addr la = mesh_addr_v4(0x7f000001, 0), bound;
    mesh_ping_server *srv = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_ping_server_new(&srv, &env, &la), MESH_OK);
    mesh_ping_server_addr(srv, &bound);
    raw w = {0};
    mesh_stream_cbs cbs = {.on_closed = raw_closed};
    int err = 0;
    mesh_stream *s = env.ops->connect(env.obj, &bound, &cbs, &w, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    const uint8_t bad[] = {0xff, 0xff, 0xff, 0xff, 1, 2, 3};
    env.ops->stream_write(env.obj, s, bad, sizeof bad);
    for (int i = 0; i < WAIT_MS / SLICE_MS && !w.closed; i++)
        mesh_real_run_for(r, SLICE_MS * MESH_NS_PER_MS);
    CU_ASSERT_EQUAL(w.closed, 1);
    CU_ASSERT_EQUAL(w.reason, MESH_ERR_RESET);
    CU_ASSERT_EQUAL(mesh_ping_server_rejected(srv), 1);
    result res = {0};
    mesh_ping *p = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_ping_start(&p, &env, &bound, 64, MESH_NS_PER_S, on_ping, &res),
                          MESH_OK);
    run_until_called(r, &res);
    CU_ASSERT_EQUAL(res.rc, MESH_OK);
    mesh_ping_server_free(srv);
    mesh_real_free(r);
}

static CU_TestInfo ping_tests[] = {
    {"ping over IPv4 loopback", test_ping_ipv4},
    {"ping over IPv6 loopback", test_ping_ipv6},
    {"ping to a closed port is refused", test_refused},
    {"garbage closes one client, the next is answered", test_garbage_then_ping},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"ping over the real driver", NULL, NULL, NULL, NULL, ping_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
