/* test_node_portmap.c — the node's use of the env's port-mapping service (mesh_node_cfg
 * no_port_mapping, mesh_node_stats portmap_*), in the simulator.
 *
 *     node host 10.0.0.1 ──10ms── core        (one node; its env is the sim driver's with a
 *                                              scripted port-mapping service added)
 *
 * The scripted service answers each request 5 ms later (from an env timer: rule 1) with what
 * the test sets, and records requests and releases. Checked: the node asks for its listening
 * port at start, shows the mapping in its stats without putting it in its signed record,
 * renews it at half the lease, releases it on close (and on free without close), reports a
 * refusal in its stats and goes on, and asks nothing when told not to or when the env has no
 * service (the simulator today).
 */
#include "mesh_test.h"

#include <string.h>

#include "core/node.h"
#include "core/peer.h"
#include "core/portmap.h"
#include "meshara/meshara.h"
#include "sim/driver.h"

#define MS(x) ((mesh_time)(x)*MESH_NS_PER_MS)
#define SEC(x) ((mesh_time)(x)*MESH_NS_PER_S)

enum { PORT = 7000, MAX_REQS = 16 };

static struct fake {
    mesh_env base; /* the sim driver's env */
    mesh_env_ops ops;
    mesh_env env; /* base + the scripted service */
    int result;   /* what the next answers say */
    uint32_t lease;
    struct {
        mesh_time at;
        int tcp;
        uint16_t port;
        uint32_t lease;
    } reqs[MAX_REQS];
    int nreqs, releases;
    mesh_portmap_cb cb;
    void *ud;
    mesh_timer *answer;
} F;

static void answer_fired(mesh_timer *t, void *ud)
{
    (void)t;
    (void)ud;
    mesh_portmap_cb cb = F.cb;
    F.cb = NULL;
    mesh_addr ext = mesh_addr_v4(0x0bfa2a01, PORT); /* 11.250.42.1 */
    if (cb)
        cb(F.result, F.result == MESH_OK ? &ext : NULL, F.result == MESH_OK ? F.lease : 0, F.ud);
}

static int f_request(void *obj, int tcp, uint16_t port, uint32_t lease, mesh_portmap_cb cb,
                     void *ud)
{
    CU_ASSERT_PTR_EQUAL(obj, F.base.obj);
    CU_ASSERT_FATAL(F.nreqs < MAX_REQS);
    F.reqs[F.nreqs].at = mesh_env_now(&F.base);
    F.reqs[F.nreqs].tcp = tcp;
    F.reqs[F.nreqs].port = port;
    F.reqs[F.nreqs].lease = lease;
    F.nreqs++;
    F.cb = cb;
    F.ud = ud;
    F.base.ops->timer_set(F.base.obj, F.answer, mesh_env_now(&F.base) + MS(5));
    return MESH_OK;
}

static int f_release(void *obj, int tcp, uint16_t port)
{
    (void)obj;
    CU_ASSERT_EQUAL(tcp, 1);
    CU_ASSERT_EQUAL(port, PORT);
    F.releases++;
    F.cb = NULL; /* cancelled */
    return MESH_OK;
}

static const mesh_portmap_ops F_PM = {f_request, f_release};

typedef struct world {
    sim_world *w;
    sim_host *h;
    sim_driver *d;
    mesh_identity *id;
    mesh_node *n;
    mesh_node_cfg cfg;
} world;

static void run_until(world *W, mesh_time t)
{
    CU_ASSERT_EQUAL(sim_sched_run_until(sim_world_sched(W->w), t), MESH_OK);
}

/* One node on the sim driver; with_service: its env gets the scripted service. */
static void world_init(world *W, int with_service)
{
    memset(W, 0, sizeof *W);
    memset(&F, 0, sizeof F);
    CU_ASSERT_EQUAL_FATAL(sim_world_new(&W->w, 7, NULL), MESH_OK);
    sim_link_cfg l = {.latency = MS(10)};
    sim_host_cfg hc = {"n0", SIM_IP4(10, 0, 0, 1), NULL, l, l};
    CU_ASSERT_EQUAL_FATAL(sim_net_add_host(sim_world_net(W->w), &hc, &W->h), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_driver_new(&W->d, W->w, W->h), MESH_OK);
    F.base = sim_driver_env(W->d);
    F.ops = *F.base.ops;
    F.ops.portmap = with_service ? &F_PM : NULL;
    F.env = (mesh_env){&F.ops, F.base.obj};
    F.answer = F.base.ops->timer_new(F.base.obj, answer_fired, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(F.answer);
    F.result = MESH_OK;
    F.lease = 3600;
    CU_ASSERT_EQUAL_FATAL(mesh_identity_generate(&W->id, &F.base), MESH_OK);
    W->cfg.identity = W->id;
    W->cfg.listen = mesh_addr_v4(SIM_IP4(10, 0, 0, 1), PORT);
}

static void node_start(world *W)
{
    CU_ASSERT_EQUAL_FATAL(mesh_node_new(&W->n, &F.env, &W->cfg, NULL, NULL), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_node_start(W->n), MESH_OK);
}

static void world_free(world *W)
{
    mesh_node_free(W->n);
    F.base.ops->timer_free(F.base.obj, F.answer);
    sim_driver_free(W->d);
    mesh_identity_free(W->id);
    sim_world_free(W->w);
}

static mesh_node_stats stats(world *W)
{
    mesh_node_stats st;
    mesh_node_get_stats(W->n, &st);
    return st;
}

static void test_maps_renews_releases(void)
{
    world W;
    world_init(&W, 1);
    node_start(&W);
    CU_ASSERT_EQUAL(F.nreqs, 1);
    CU_ASSERT_EQUAL(F.reqs[0].at, 0);
    CU_ASSERT_EQUAL(F.reqs[0].tcp, 1);
    CU_ASSERT_EQUAL(F.reqs[0].port, PORT);
    CU_ASSERT_EQUAL(F.reqs[0].lease, 3600);
    CU_ASSERT_EQUAL(stats(&W).portmap_state, MESH_NODE_PORTMAP_REQUESTING);
    run_until(&W, MS(10));
    mesh_node_stats st = stats(&W);
    CU_ASSERT_EQUAL(st.portmap_state, MESH_NODE_PORTMAP_MAPPED);
    mesh_addr want = mesh_addr_v4(0x0bfa2a01, PORT);
    CU_ASSERT(mesh_addr_equal(&st.portmap_external, &want));
    CU_ASSERT_EQUAL(st.portmap_error, MESH_OK);
    /* not advertised: the record holds the listen address only */
    const mesh_peer_record *rec = mesh_node_record(W.n);
    CU_ASSERT_EQUAL(rec->naddrs, 1);
    CU_ASSERT(mesh_addr_equal(&rec->addrs[0], &W.cfg.listen));
    run_until(&W, MS(5) + SEC(1800) + MS(10));
    CU_ASSERT_EQUAL(F.nreqs, 2);
    CU_ASSERT_EQUAL(F.reqs[1].at, MS(5) + SEC(1800));
    CU_ASSERT_EQUAL(stats(&W).portmap_renewals, 1);
    CU_ASSERT_EQUAL(mesh_node_close(W.n), MESH_OK);
    CU_ASSERT_EQUAL(F.releases, 1);
    CU_ASSERT_EQUAL(stats(&W).portmap_state, MESH_NODE_PORTMAP_OFF);
    run_until(&W, SEC(10000));
    CU_ASSERT_EQUAL(F.nreqs, 2);
    world_free(&W);
    CU_ASSERT_EQUAL(F.releases, 1); /* free after close releases nothing more */
}

static void test_refused_and_free(void)
{
    world W;
    world_init(&W, 1);
    F.result = MESH_ERR_REFUSED;
    node_start(&W);
    run_until(&W, MS(10));
    mesh_node_stats st = stats(&W);
    CU_ASSERT_EQUAL(st.portmap_state, MESH_NODE_PORTMAP_FAILED);
    CU_ASSERT_EQUAL(st.portmap_error, MESH_ERR_REFUSED);
    CU_ASSERT_EQUAL(st.portmap_failures, 1);
    CU_ASSERT_EQUAL(st.portmap_external.family, MESH_AF_NONE);
    /* retried after the default backoff */
    run_until(&W, MS(5) + MS(MESH_PORTMAP_DEFAULT_RETRY_MIN_MS));
    CU_ASSERT_EQUAL(F.nreqs, 2);
    world_free(&W); /* a request in flight: free releases (cancels) it */
    CU_ASSERT_EQUAL(F.releases, 1);
}

static void test_not_asked(void)
{
    world W;
    world_init(&W, 1);
    W.cfg.no_port_mapping = 1;
    node_start(&W);
    run_until(&W, SEC(60));
    CU_ASSERT_EQUAL(F.nreqs, 0);
    CU_ASSERT_EQUAL(stats(&W).portmap_state, MESH_NODE_PORTMAP_OFF);
    world_free(&W);
    CU_ASSERT_EQUAL(F.releases, 0);

    world_init(&W, 0); /* no service in the env */
    node_start(&W);
    run_until(&W, SEC(60));
    CU_ASSERT_EQUAL(stats(&W).portmap_state, MESH_NODE_PORTMAP_OFF);
    world_free(&W);

    world_init(&W, 1); /* loopback: nothing a gateway could forward to */
    W.cfg.listen = mesh_addr_v4(0x7f000001, PORT);
    CU_ASSERT_EQUAL_FATAL(mesh_node_new(&W.n, &F.env, &W.cfg, NULL, NULL), MESH_OK);
    (void)mesh_node_start(W.n); /* the sim host has no 127.0.0.1: may fail to listen */
    CU_ASSERT_EQUAL(F.nreqs, 0);
    world_free(&W);
}

static CU_TestInfo tests[] = {
    {"maps the listening port, renews, releases on close", test_maps_renews_releases},
    {"a refusal is in the stats; free releases", test_refused_and_free},
    {"not asked: no_port_mapping, no service, loopback", test_not_asked},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"node portmap", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
