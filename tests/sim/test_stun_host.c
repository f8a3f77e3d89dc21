/* test_stun_host.c — the simulator's STUN host (sim/stun_host.h): a primary host and a
 * partner host answer as one RFC 5780 server, so a client behind a port-restricted cone NAT
 * learns its public address, endpoint-independent mapping and address-and-port-dependent
 * filtering; without a partner, discovery reports the server cannot tell; argument and port
 * errors.
 *
 * Topology: stun 198.51.100.1 + partner 14.0.0.1 on the core; the client 10.0.0.2 on LAN
 * "home" behind a NAT on 203.0.113.7. Access links 5 ms, core 10 ms. */
#include "mesh_test.h"

#include <string.h>

#include "core/stun_client.h"
#include "sim/nat.h"
#include "sim/stun_host.h"

#define MS MESH_NS_PER_MS
#define IP_STUN SIM_IP4(198, 51, 100, 1)
#define IP_ALT SIM_IP4(14, 0, 0, 1)
#define IP_NAT SIM_IP4(203, 0, 113, 7)

typedef struct tw {
    sim_world *w;
    sim_host *stun, *alt, *client;
    sim_driver *cd;
    sim_nat *nat;
} tw;

static void tw_init(tw *t)
{
    memset(t, 0, sizeof *t);
    CU_ASSERT_EQUAL_FATAL(sim_world_new(&t->w, 11, NULL), MESH_OK);
    sim_net *net = sim_world_net(t->w);
    sim_net_set_core(net, &(sim_link_cfg){.latency = 10 * MS}, NULL, NULL);
    sim_link_cfg l5 = {.latency = 5 * MS};
    sim_lan *lan;
    sim_lan_cfg lc = {"home", {0}, {0}, IP_NAT, 1};
    CU_ASSERT_EQUAL_FATAL(sim_net_add_lan(net, &lc, &lan), MESH_OK);
    sim_nat_cfg nc = {.mapping = SIM_NAT_ENDPOINT_INDEPENDENT,
                      .filtering = SIM_NAT_ADDRESS_PORT_DEPENDENT};
    CU_ASSERT_EQUAL_FATAL(sim_nat_new(&t->nat, net, lan, &nc), MESH_OK);
    sim_host_cfg hs = {"stun", IP_STUN, NULL, l5, l5}, ha = {"alt", IP_ALT, NULL, l5, l5},
                 hc = {"client", SIM_IP4(10, 0, 0, 2), lan, l5, l5};
    CU_ASSERT_EQUAL_FATAL(sim_net_add_host(net, &hs, &t->stun), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_net_add_host(net, &ha, &t->alt), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_net_add_host(net, &hc, &t->client), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_driver_new(&t->cd, t->w, t->client), MESH_OK);
}

static void tw_free(tw *t)
{
    sim_driver_free(t->cd);
    sim_nat_free(t->nat);
    sim_world_free(t->w);
}

static void on_behaviour(void *ud, const mesh_stun_behaviour *b)
{
    *(mesh_stun_behaviour *)ud = *b;
}

static mesh_stun_behaviour run_discovery(tw *t, sim_stun_host *s)
{
    mesh_env env = sim_driver_env(t->cd);
    mesh_stun_client_cfg cfg;
    mesh_stun_client_cfg_default(&cfg);
    cfg.rto = 100 * MS;
    cfg.rc = 3;
    cfg.rm = 4;
    mesh_stun_client *c = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_client_new(&c, &env, &cfg), MESH_OK);
    mesh_stun_behaviour b = {.status = 1};
    mesh_addr server = sim_stun_host_addr(s);
    CU_ASSERT_EQUAL(mesh_stun_client_discover(c, &server, on_behaviour, &b), MESH_OK);
    sim_sched *sched = sim_world_sched(t->w);
    CU_ASSERT_EQUAL(sim_sched_run_until(sched, sim_sched_now(sched) + 20 * MESH_NS_PER_S), MESH_OK);
    mesh_stun_client_free(c);
    return b;
}

static void test_pair_answers_rfc5780(void)
{
    tw t;
    tw_init(&t);
    sim_stun_host *s = NULL;
    CU_ASSERT_EQUAL_FATAL(sim_stun_host_new(&s, t.w, t.stun, t.alt), MESH_OK);
    mesh_addr want = mesh_addr_v4(IP_STUN, SIM_STUN_PORT);
    mesh_addr got = sim_stun_host_addr(s);
    CU_ASSERT(mesh_addr_equal(&got, &want));
    mesh_stun_behaviour b = run_discovery(&t, s);
    CU_ASSERT_EQUAL(b.status, MESH_OK);
    CU_ASSERT_EQUAL(sim_addr_ip4(&b.mapped), IP_NAT);
    mesh_addr other = mesh_addr_v4(IP_ALT, SIM_STUN_ALT_PORT);
    CU_ASSERT(mesh_addr_equal(&b.other, &other));
    CU_ASSERT_EQUAL(b.mapping, MESH_STUN_BEHAVIOUR_ENDPOINT_INDEPENDENT);
    CU_ASSERT_EQUAL(b.filtering, MESH_STUN_BEHAVIOUR_ADDRESS_PORT_DEPENDENT);
    sim_stun_host_stats st = sim_stun_host_get_stats(s);
    /* test I, then each filtering test's 3 requests (answered, filtered by the NAT), then
     * mapping test II */
    CU_ASSERT_EQUAL(st.answered, 1 + 3 + 3 + 1);
    CU_ASSERT_EQUAL(st.changed, 3 + 3);
    sim_stun_host_free(s);
    tw_free(&t);
}

static void test_single_and_errors(void)
{
    tw t;
    tw_init(&t);
    sim_stun_host *s = NULL, *s2 = NULL;
    CU_ASSERT_EQUAL(sim_stun_host_new(&s, t.w, t.stun, t.stun), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(sim_stun_host_new(&s, NULL, t.stun, NULL), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL_FATAL(sim_stun_host_new(&s, t.w, t.stun, NULL), MESH_OK);
    CU_ASSERT_EQUAL(sim_stun_host_new(&s2, t.w, t.stun, NULL), MESH_ERR_ADDR); /* port taken */
    CU_ASSERT_PTR_NULL(s2);
    mesh_stun_behaviour b = run_discovery(&t, s);
    CU_ASSERT_EQUAL(b.status, MESH_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(sim_addr_ip4(&b.mapped), IP_NAT);
    sim_stun_host_free(s);
    sim_stun_host_free(NULL);
    tw_free(&t);
}

static CU_TestInfo stun_host_tests[] = {
    {"a host pair answers as one RFC 5780 server", test_pair_answers_rfc5780},
    {"one host; argument and port errors", test_single_and_errors},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"stun_host", NULL, NULL, NULL, NULL, stun_host_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
