/* test_https_bg.c — background HTTPS traffic through the simulator and a censor.
 *
 * Topology: a "browser" host and a "meshara" host on a LAN whose gateway carries the censor,
 * a web server on the core. Links: 5 ms access, 20 ms core (RTT 60 ms), no rate limit. Both
 * clients are sim_https clients (OpenSSL over the sim driver's env streams); the meshara one
 * only plays Meshara's SNI and ALPN so the censor has something to block. The classifier
 * labels flows by client host, which gives collateral damage (background flows blocked)
 * beside the blocked fraction of Meshara's flows. */
#include "mesh_test.h"

#include <string.h>

#include "sim/censor.h"
#include "sim/driver.h"
#include "sim/https_bg.h"

#define MS(x) ((mesh_time)(x)*MESH_NS_PER_MS)
#define SEC(x) ((mesh_time)(x)*MESH_NS_PER_S)

enum { EXCHANGES = 5, RESPONSE = 20000, REQUEST = 400, MAX_RESULTS = 64 };

static const uint32_t IP_BROWSER = SIM_IP4(198, 18, 0, 10);
static const uint32_t IP_MESH = SIM_IP4(198, 18, 0, 11);
static const uint32_t IP_WEB = SIM_IP4(203, 0, 113, 80);
static const char *const ALPN_MESH[] = {"meshara/1.0", NULL};

typedef struct bw {
    sim_world *world;
    sim_sched *s;
    sim_net *net;
    sim_lan *lan;
    sim_host *browser, *mesh, *web;
    sim_driver *d_browser, *d_mesh, *d_web;
    mesh_env e_browser, e_mesh, e_web;
    sim_censor *cen;
    sim_https_server *srv;
    sim_https_client *bg, *mc;
    int results[MAX_RESULTS];
    int nresults;
    uint64_t hash, bytes; /* every TCP payload byte the LAN gateway saw (FNV-1a) */
} bw;

static int classify(void *ud, const mesh_addr *client, const mesh_addr *server, uint8_t proto)
{
    (void)ud, (void)server, (void)proto;
    uint32_t ip = sim_addr_ip4(client);
    return ip == IP_MESH      ? SIM_CENSOR_LABEL_MESHARA
           : ip == IP_BROWSER ? SIM_CENSOR_LABEL_BACKGROUND
                              : SIM_CENSOR_LABEL_UNKNOWN;
}

static int hash_bytes(void *obj, sim_mbox *mb, sim_pkt *p, int dir, mesh_time *delay)
{
    (void)mb, (void)dir, (void)delay;
    bw *w = obj;
    for (size_t i = 0; i < p->len; i++)
        w->hash = (w->hash ^ p->data[i]) * 0x100000001b3ULL;
    w->bytes += p->len;
    return SIM_PASS;
}

static void on_exchange(void *ud, int result, const mesh_addr *local, mesh_time started,
                        mesh_time latency)
{
    (void)local, (void)started, (void)latency;
    bw *w = ud;
    CU_ASSERT_FATAL(w->nresults < MAX_RESULTS);
    w->results[w->nresults++] = result;
}

static sim_host *add_host(bw *w, const char *name, uint32_t ip, sim_lan *lan)
{
    sim_link_cfg access = {.latency = MS(5)};
    sim_host_cfg hc = {name, ip, lan, access, access};
    sim_host *h = NULL;
    CU_ASSERT_EQUAL_FATAL(sim_net_add_host(w->net, &hc, &h), MESH_OK);
    return h;
}

static mesh_env driver_env(bw *w, sim_host *h, sim_driver **d)
{
    CU_ASSERT_EQUAL_FATAL(sim_driver_new(d, w->world, h), MESH_OK);
    return sim_driver_env(*d);
}

static sim_https_client_cfg client_cfg(void)
{
    return (sim_https_client_cfg){.server = mesh_addr_v4(IP_WEB, SIM_HTTPS_DEFAULT_PORT),
                                  .request_bytes = REQUEST,
                                  .response_bytes = RESPONSE,
                                  .interval = SEC(1),
                                  .count = EXCHANGES,
                                  .timeout = SEC(5)};
}

/* The world, a server, and the browser client (the meshara client only if with_mesh). */
static void bw_init(bw *w, uint64_t seed, int with_mesh)
{
    memset(w, 0, sizeof *w);
    CU_ASSERT_EQUAL_FATAL(sim_world_new(&w->world, seed, NULL), MESH_OK);
    w->s = sim_world_sched(w->world);
    w->net = sim_world_net(w->world);
    sim_sched_set_event_cap(w->s, 5000000);
    sim_net_set_core(w->net, &(sim_link_cfg){.latency = MS(20)}, NULL, NULL);
    CU_ASSERT_EQUAL_FATAL(sim_net_add_lan(w->net, &(sim_lan_cfg){.name = "region"}, &w->lan),
                          MESH_OK);
    w->browser = add_host(w, "browser", IP_BROWSER, w->lan);
    w->mesh = add_host(w, "meshara", IP_MESH, w->lan);
    w->web = add_host(w, "web", IP_WEB, NULL);
    static const sim_mbox_ops hash_ops = {hash_bytes};
    CU_ASSERT_EQUAL_FATAL(sim_net_attach_lan_mbox(w->net, w->lan, &hash_ops, w, NULL), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_censor_new(&w->cen, NULL), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_censor_attach_lan(w->cen, w->net, w->lan), MESH_OK);
    sim_censor_set_classifier(w->cen, classify, w);
    w->e_web = driver_env(w, w->web, &w->d_web);
    w->e_browser = driver_env(w, w->browser, &w->d_browser);
    w->e_mesh = driver_env(w, w->mesh, &w->d_mesh);
    CU_ASSERT_EQUAL_FATAL(sim_https_server_new(&w->srv, &w->e_web, NULL), MESH_OK);
    sim_https_client_cfg bc = client_cfg();
    CU_ASSERT_EQUAL_FATAL(sim_https_client_new(&w->bg, &w->e_browser, &bc), MESH_OK);
    sim_https_client_set_cb(w->bg, on_exchange, w);
    if (with_mesh) {
        sim_https_client_cfg mc = client_cfg();
        mc.sni = "meshara.node";
        mc.alpn = ALPN_MESH;
        mc.start = MS(500);
        CU_ASSERT_EQUAL_FATAL(sim_https_client_new(&w->mc, &w->e_mesh, &mc), MESH_OK);
    }
}

static void bw_free(bw *w)
{
    sim_https_client_free(w->bg);
    sim_https_client_free(w->mc);
    sim_https_server_free(w->srv);
    sim_driver_free(w->d_browser);
    sim_driver_free(w->d_mesh);
    sim_driver_free(w->d_web);
    sim_world_free(w->world);
    sim_censor_free(w->cen);
}

static void run(bw *w, mesh_time until)
{
    CU_ASSERT_EQUAL(sim_sched_run_until(w->s, until), MESH_OK);
}

static void test_exchanges_complete(void)
{
    bw w;
    bw_init(&w, 1, 0);
    run(&w, SEC(10));
    sim_https_stats st = sim_https_client_get_stats(w.bg);
    CU_ASSERT_EQUAL(st.started, EXCHANGES);
    CU_ASSERT_EQUAL(st.completed, EXCHANGES);
    CU_ASSERT_EQUAL(st.failed, 0);
    CU_ASSERT_EQUAL(st.bytes_received, (uint64_t)EXCHANGES * RESPONSE);
    CU_ASSERT_EQUAL(st.bytes_sent, (uint64_t)EXCHANGES * (8 + REQUEST));
    /* TCP connect, TLS 1.3 handshake, request/response: three round trips of 60 ms */
    CU_ASSERT_EQUAL(st.latency_max, MS(180));
    CU_ASSERT_EQUAL(st.latency_sum, EXCHANGES * MS(180));
    CU_ASSERT_TRUE(sim_https_client_done(w.bg));
    CU_ASSERT_EQUAL(w.nresults, EXCHANGES);
    sim_https_server_stats ss = sim_https_server_get_stats(w.srv);
    CU_ASSERT_EQUAL(ss.accepted, EXCHANGES);
    CU_ASSERT_EQUAL(ss.served, EXCHANGES);
    CU_ASSERT_EQUAL(ss.failed, 0);
    /* every connection was closed by both sides: nothing left in the TCP model */
    CU_ASSERT_EQUAL(sim_tcp_get_stats(sim_world_tcp(w.world)).conns_live, 0);
    /* the censor (no rules) parsed each hello: the browser-like SNI and ALPN were on the wire */
    sim_censor_stats cs = sim_censor_get_stats(w.cen);
    CU_ASSERT_EQUAL(cs.flows[SIM_CENSOR_LABEL_BACKGROUND], EXCHANGES);
    bw_free(&w);
}

static void test_sni_censor_spares_background(void)
{
    bw w;
    bw_init(&w, 2, 1);
    int ri = -1;
    CU_ASSERT_EQUAL_FATAL(
        sim_censor_add_rule(
            w.cen, &(sim_censor_rule){.name = "sni-meshara", .match.sni = "meshara.node"}, &ri),
        MESH_OK);
    run(&w, SEC(20));
    sim_https_stats bg = sim_https_client_get_stats(w.bg);
    sim_https_stats mc = sim_https_client_get_stats(w.mc);
    CU_ASSERT_EQUAL(bg.completed, EXCHANGES);
    CU_ASSERT_EQUAL(bg.failed, 0);
    CU_ASSERT_EQUAL(mc.completed, 0);
    CU_ASSERT_EQUAL(mc.failed, EXCHANGES);
    CU_ASSERT_EQUAL(mc.failed_by[SIM_HTTPS_FAIL_TIMEOUT], EXCHANGES); /* dropped hellos */
    sim_censor_stats cs = sim_censor_get_stats(w.cen);
    CU_ASSERT_EQUAL(cs.flows[SIM_CENSOR_LABEL_MESHARA], EXCHANGES);
    CU_ASSERT_EQUAL(cs.blocked[SIM_CENSOR_LABEL_MESHARA], EXCHANGES);
    CU_ASSERT_EQUAL(cs.flows[SIM_CENSOR_LABEL_BACKGROUND], EXCHANGES);
    CU_ASSERT_EQUAL(cs.blocked[SIM_CENSOR_LABEL_BACKGROUND], 0);
    sim_censor_rule_stats rs;
    sim_censor_get_rule_stats(w.cen, ri, &rs);
    CU_ASSERT_EQUAL(rs.matched[SIM_CENSOR_LABEL_MESHARA], EXCHANGES);
    CU_ASSERT_EQUAL(rs.evaluated[SIM_CENSOR_LABEL_BACKGROUND], EXCHANGES);
    CU_ASSERT_EQUAL(rs.matched[SIM_CENSOR_LABEL_BACKGROUND], 0);
    printf("\n  sni rule: meshara blocked %llu/%llu, background blocked %llu/%llu ",
           (unsigned long long)cs.blocked[1], (unsigned long long)cs.flows[1],
           (unsigned long long)cs.blocked[2], (unsigned long long)cs.flows[2]);
    bw_free(&w);
}

/* The curl kind: exchanges complete against the stock server; its hello carries the JA3
 * sim_https_curl_ja3 computes for the same name (the web-profile node's, test_tls_web.c), so
 * a rule on it blocks the curl client and spares the OpenSSL one; to an address curl sends no
 * SNI, hence another JA3 the rule does not match. */
static void test_curl_kind_and_ja3(void)
{
    bw w;
    bw_init(&w, 9, 0);
    char named[SIM_HTTPS_JA3_LEN + 1], bare[SIM_HTTPS_JA3_LEN + 1];
    CU_ASSERT_EQUAL_FATAL(sim_https_curl_ja3(&w.e_web, SIM_HTTPS_DEFAULT_SNI, named), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_https_curl_ja3(&w.e_web, NULL, bare), MESH_OK);
    CU_ASSERT_STRING_EQUAL(named, "0149f47eabf9a20d0893e2a44e5a6323"); /* curl's, with SNI */
    CU_ASSERT_STRING_EQUAL(bare, "78f0dc5ac5b19daf131a133cfdee9691");  /* and without */
    CU_ASSERT_EQUAL(sim_https_curl_ja3(&w.e_web, "10.0.0.1", bare), MESH_ERR_INVAL);
    int ri = -1;
    CU_ASSERT_EQUAL_FATAL(
        sim_censor_add_rule(
            w.cen,
            &(sim_censor_rule){.name = "curl", .match.ja3_md5 = named, .action = SIM_CENSOR_RST},
            &ri),
        MESH_OK);
    sim_https_client_cfg cc = client_cfg();
    cc.kind = SIM_HTTPS_CURL;
    CU_ASSERT_EQUAL_FATAL(sim_https_client_new(&w.mc, &w.e_mesh, &cc), MESH_OK);
    sim_https_client *ip = NULL;
    cc.sni = "203.0.113.80"; /* https://203.0.113.80/ */
    CU_ASSERT_EQUAL_FATAL(sim_https_client_new(&ip, &w.e_mesh, &cc), MESH_OK);
    run(&w, SEC(20));
    sim_https_stats bg = sim_https_client_get_stats(w.bg);
    sim_https_stats curl = sim_https_client_get_stats(w.mc);
    sim_https_stats curl_ip = sim_https_client_get_stats(ip);
    CU_ASSERT_EQUAL(bg.completed, EXCHANGES);
    CU_ASSERT_EQUAL(curl.completed, 0);
    CU_ASSERT_EQUAL(curl.failed_by[SIM_HTTPS_FAIL_RESET], EXCHANGES);
    CU_ASSERT_EQUAL(curl_ip.completed, EXCHANGES); /* another JA3: untouched, and it works */
    sim_censor_rule_stats rs;
    sim_censor_get_rule_stats(w.cen, ri, &rs);
    CU_ASSERT_EQUAL(rs.matched[SIM_CENSOR_LABEL_MESHARA], EXCHANGES);
    CU_ASSERT_EQUAL(rs.matched[SIM_CENSOR_LABEL_BACKGROUND], 0);
    sim_https_client_free(ip);
    cc.kind = 7;
    CU_ASSERT_EQUAL(sim_https_client_new(&ip, &w.e_mesh, &cc), MESH_ERR_INVAL);
    bw_free(&w);
}

static void test_broad_alpn_rule_collateral(void)
{
    bw w;
    bw_init(&w, 3, 1);
    int ri = -1;
    CU_ASSERT_EQUAL_FATAL(
        sim_censor_add_rule(
            w.cen,
            &(sim_censor_rule){.name = "alpn-h2", .match.alpn = "h2", .action = SIM_CENSOR_RST},
            &ri),
        MESH_OK);
    run(&w, SEC(20));
    sim_https_stats bg = sim_https_client_get_stats(w.bg);
    sim_https_stats mc = sim_https_client_get_stats(w.mc);
    /* every browser exchange was reset: collateral damage; Meshara's ALPN slipped by */
    CU_ASSERT_EQUAL(bg.completed, 0);
    CU_ASSERT_EQUAL(bg.failed_by[SIM_HTTPS_FAIL_RESET], EXCHANGES);
    CU_ASSERT_EQUAL(mc.completed, EXCHANGES);
    CU_ASSERT_EQUAL(w.nresults, EXCHANGES);
    for (int i = 0; i < w.nresults; i++)
        CU_ASSERT_EQUAL(w.results[i], MESH_ERR_RESET);
    sim_censor_rule_stats rs;
    sim_censor_get_rule_stats(w.cen, ri, &rs);
    CU_ASSERT_EQUAL(rs.matched[SIM_CENSOR_LABEL_BACKGROUND], EXCHANGES);
    CU_ASSERT_EQUAL(rs.evaluated[SIM_CENSOR_LABEL_BACKGROUND], EXCHANGES);
    CU_ASSERT_EQUAL(rs.matched[SIM_CENSOR_LABEL_MESHARA], 0);
    /* the server saw each reset connection fail */
    CU_ASSERT_EQUAL(sim_https_server_get_stats(w.srv).failed, EXCHANGES);
    bw_free(&w);
}

static void test_ip_drop_times_out(void)
{
    bw w;
    bw_init(&w, 4, 0);
    CU_ASSERT_EQUAL_FATAL(
        sim_censor_add_rule(
            w.cen, &(sim_censor_rule){.match = {.dst_ip = IP_WEB, .dst_prefix = 32}}, NULL),
        MESH_OK);
    run(&w, SEC(20));
    sim_https_stats bg = sim_https_client_get_stats(w.bg);
    CU_ASSERT_EQUAL(bg.failed_by[SIM_HTTPS_FAIL_TIMEOUT], EXCHANGES);
    CU_ASSERT_EQUAL(sim_https_server_get_stats(w.srv).accepted, 0);
    CU_ASSERT_TRUE(sim_https_client_done(w.bg));
    bw_free(&w);
}

/* One run's bytes on the wire and the scheduler's fingerprint. */
static void run_hash(uint64_t seed, uint64_t *hash, uint64_t *bytes, uint64_t *fp)
{
    bw w;
    bw_init(&w, seed, 1);
    w.hash = 0xcbf29ce484222325ULL;
    run(&w, SEC(10));
    CU_ASSERT_EQUAL(sim_https_client_get_stats(w.bg).completed, EXCHANGES);
    *hash = w.hash;
    *bytes = w.bytes;
    *fp = sim_sched_fingerprint(w.s);
    bw_free(&w);
}

static void test_deterministic_bytes(void)
{
    uint64_t h1, h2, h3, b1, b2, b3, f1, f2, f3;
    run_hash(11, &h1, &b1, &f1);
    run_hash(11, &h2, &b2, &f2);
    run_hash(12, &h3, &b3, &f3);
    CU_ASSERT_TRUE(b1 > 2 * EXCHANGES * RESPONSE);
    CU_ASSERT_EQUAL(h1, h2); /* same seed: the same ciphertext, byte for byte */
    CU_ASSERT_EQUAL(b1, b2);
    CU_ASSERT_EQUAL(f1, f2);
    CU_ASSERT_NOT_EQUAL(h1, h3); /* another seed: other keys, other bytes */
}

static void stop_ev(void *ctx, void *arg)
{
    (void)arg;
    sim_https_client_stop(ctx);
}

static void test_jitter_and_stop(void)
{
    bw w;
    bw_init(&w, 5, 0);
    sim_https_client_cfg cfg = client_cfg();
    cfg.count = 0; /* until stopped */
    cfg.interval = MS(400);
    cfg.jitter = MS(200);
    sim_https_client *c;
    CU_ASSERT_EQUAL_FATAL(sim_https_client_new(&c, &w.e_mesh, &cfg), MESH_OK);
    sim_sched_at(w.s, SEC(4), SIM_EV_USER, 0, stop_ev, c, NULL, NULL);
    run(&w, SEC(4));
    /* starts at 0, then every 400..600 ms: 7 to 10 starts in [0, 4 s] (a fixed 400 ms grid,
     * without jitter, would give 10 or 11) */
    sim_https_stats st = sim_https_client_get_stats(c);
    CU_ASSERT_TRUE(st.started >= 7 && st.started <= 10);
    run(&w, SEC(10));
    sim_https_stats end = sim_https_client_get_stats(c);
    CU_ASSERT_EQUAL(end.started, st.started); /* stopped: nothing new */
    CU_ASSERT_EQUAL(end.completed, end.started);
    CU_ASSERT_TRUE(sim_https_client_done(c));
    printf("\n  %llu exchanges started in 4 s at 400 ms + [0, 200] ms ",
           (unsigned long long)end.started);
    sim_https_client_free(c);
    bw_free(&w);
}

static void silent_connected(sim_tcp_conn *c, void *ud)
{
    (void)c, (void)ud;
}

static void silent_closed(sim_tcp_conn *c, int reason, void *ud)
{
    (void)c;
    *(int *)ud = reason;
}

static void test_server_resets_idle(void)
{
    bw w;
    bw_init(&w, 6, 0);
    sim_https_client_stop(w.bg);
    static const sim_tcp_cbs cbs = {silent_connected, NULL, NULL, silent_closed};
    int reason = 1;
    mesh_addr to = mesh_addr_v4(IP_WEB, SIM_HTTPS_DEFAULT_PORT);
    sim_tcp_conn *c;
    CU_ASSERT_EQUAL_FATAL(sim_tcp_connect(sim_world_tcp(w.world), w.mesh, &to, &cbs, &reason, &c),
                          MESH_OK);
    run(&w, SEC(SIM_HTTPS_SERVER_IDLE_S));
    CU_ASSERT_EQUAL(reason, 1); /* still open just before the idle limit */
    CU_ASSERT_EQUAL(sim_https_server_get_stats(w.srv).accepted, 1);
    run(&w, SEC(SIM_HTTPS_SERVER_IDLE_S + 1));
    CU_ASSERT_EQUAL(reason, MESH_ERR_RESET);
    CU_ASSERT_EQUAL(sim_https_server_get_stats(w.srv).failed, 1);
    bw_free(&w);
}

static void test_bad_config(void)
{
    mesh_test_env te;
    mesh_test_env_init(&te, 1);
    sim_https_client *c = NULL;
    sim_https_client_cfg cfg = {0};
    CU_ASSERT_EQUAL(sim_https_client_new(&c, &te.env, &cfg), MESH_ERR_INVAL); /* no server */
    cfg.server = mesh_addr_v4(IP_WEB, 443);
    cfg.sni = "";
    CU_ASSERT_EQUAL(sim_https_client_new(&c, &te.env, &cfg), MESH_ERR_INVAL);
    cfg.sni = NULL;
    const char *const empty[] = {"", NULL};
    cfg.alpn = empty;
    CU_ASSERT_EQUAL(sim_https_client_new(&c, &te.env, &cfg), MESH_ERR_INVAL);
    cfg.alpn = NULL;
    cfg.response_bytes = SIM_HTTPS_MAX_BODY + 1;
    CU_ASSERT_EQUAL(sim_https_client_new(&c, &te.env, &cfg), MESH_ERR_INVAL);
    CU_ASSERT_PTR_NULL(c);
    sim_https_client_free(NULL);
    sim_https_server_free(NULL);
}

static CU_TestInfo tests[] = {
    {"exchanges complete in three round trips", test_exchanges_complete},
    {"SNI censor blocks meshara, spares background", test_sni_censor_spares_background},
    {"broad ALPN h2 rule: collateral counted", test_broad_alpn_rule_collateral},
    {"curl kind: the web profile's hello, its JA3 with and without SNI", test_curl_kind_and_ja3},
    {"IP drop: exchanges time out", test_ip_drop_times_out},
    {"same seed, same ciphertext", test_deterministic_bytes},
    {"jitter and stop", test_jitter_and_stop},
    {"server resets an idle connection", test_server_resets_idle},
    {"bad configuration", test_bad_config},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"https_bg", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
