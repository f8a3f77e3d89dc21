/* test_censor.c — the DPI middlebox against real TLS bytes on simulated TCP.
 *
 * Topology: client hosts on a LAN "region" whose gateway carries the censor; servers on the
 * core. Links: 5 ms access, 20 ms core (RTT 60 ms), no rate limit. The ClientHellos are made
 * by OpenSSL in the test (a stock SSL client over memory BIOs with a chosen SNI, ALPN list and
 * cipher suites) or by the node's own TLS module (mesh_tls); the first flight is written on a
 * sim_tcp stream and the censor sees it in segments. Servers are byte sinks that record what
 * arrived and how their stream ended. All OpenSSL objects live in library contexts whose
 * randomness comes from a seeded test env, so the hellos are the same bytes on every run. */
#include "mesh_test.h"

#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>

#include "core/identity.h"
#include "core/tls.h"
#include "sim/censor.h"
#include "sim/driver.h"

/* The TLS profile these tests were written for (the web profile's: test_tls_web.c). */
static const mesh_tls_cfg SEED_PROFILE = {.profile = MESH_PROFILE_SEED};

enum {
    MAX_CONNS = 16,
    MAX_DECISIONS = 32,
    HELLO_CAP = 4096,
    PORT_TLS = 443,
    PORT_ALT = 8443,
    EVENT_CAP = 2000000,
};

#define MS(x) ((mesh_time)(x)*MESH_NS_PER_MS)
#define SEC(x) ((mesh_time)(x)*MESH_NS_PER_S)

static const uint32_t IP_CLI = SIM_IP4(198, 18, 0, 10);
static const uint32_t IP_CLI2 = SIM_IP4(198, 18, 0, 11);
static const uint32_t IP_SRV = SIM_IP4(203, 0, 113, 10);
static const uint32_t IP_SRV2 = SIM_IP4(203, 0, 113, 20);
static const uint32_t IP_SRV_OTHER = SIM_IP4(192, 0, 2, 5);

typedef struct end {
    sim_tcp_conn *c;
    size_t rx;
    mesh_time first_rx, last_rx, connected_at, closed_at;
    int connected, closed, reason;
} end;

typedef struct tconn {
    struct tw *w;
    end cli, srv;
    uint8_t *bytes;
    size_t len;
    sim_host *from;
    mesh_addr to;
    mesh_addr cli_local; /* to recognise the connection at the server */
} tconn;

typedef struct rec_decision {
    int rule, action, residual, label;
    mesh_time at;
    uint16_t client_port;
    char what[SIM_CENSOR_WHAT_MAX];
} rec_decision;

typedef struct tw {
    sim_world *world;
    sim_sched *s;
    sim_net *net;
    sim_tcp *tcp;
    sim_lan *lan;
    sim_host *cli, *cli2, *srv, *srv2, *srv_other;
    sim_censor *cen;
    sim_censor *spare; /* a censor a test replaced: still attached, so freed last */
    tconn conns[MAX_CONNS];
    int nconns;
    rec_decision dec[MAX_DECISIONS];
    int ndec;
} tw;

/* ---- harness ------------------------------------------------------------------------------ */

static void on_decision(void *ud, const sim_censor_decision *d)
{
    tw *w = ud;
    CU_ASSERT_FATAL(w->ndec < MAX_DECISIONS);
    rec_decision *r = &w->dec[w->ndec++];
    r->rule = d->rule;
    r->action = d->action;
    r->residual = d->residual;
    r->label = d->label;
    r->at = d->at;
    r->client_port = d->client.port;
    snprintf(r->what, sizeof r->what, "%s", d->what);
    CU_ASSERT_STRING_EQUAL(d->rule_name, sim_censor_rule_name(w->cen, d->rule));
}

/* Ground truth for the statistics: the first client host runs Meshara, the second is a
 * background browser. */
static int classify(void *ud, const mesh_addr *client, const mesh_addr *server, uint8_t proto)
{
    (void)ud, (void)server, (void)proto;
    uint32_t ip = sim_addr_ip4(client);
    return ip == IP_CLI    ? SIM_CENSOR_LABEL_MESHARA
           : ip == IP_CLI2 ? SIM_CENSOR_LABEL_BACKGROUND
                           : SIM_CENSOR_LABEL_UNKNOWN;
}

static void end_data(sim_tcp_conn *c, const uint8_t *data, size_t len, void *ud)
{
    (void)data;
    end *e = ud;
    mesh_time now = sim_net_now(sim_host_net(sim_tcp_host(c)));
    if (!e->rx)
        e->first_rx = now;
    e->rx += len;
    e->last_rx = now;
}

static void end_closed(sim_tcp_conn *c, int reason, void *ud)
{
    end *e = ud;
    e->closed = 1;
    e->reason = reason;
    e->closed_at = sim_net_now(sim_host_net(sim_tcp_host(c)));
    e->c = NULL;
}

static void cli_connected(sim_tcp_conn *c, void *ud)
{
    tconn *t = (tconn *)((char *)ud - offsetof(tconn, cli));
    t->cli.connected = 1;
    t->cli.connected_at = sim_net_now(t->w->net);
    if (t->len)
        CU_ASSERT_EQUAL(sim_tcp_write(c, t->bytes, t->len), MESH_OK);
}

static const sim_tcp_cbs CLI_CBS = {cli_connected, end_data, NULL, end_closed};
static const sim_tcp_cbs SRV_CBS = {NULL, end_data, NULL, end_closed};

static void on_accept(sim_tcp_listener *l, sim_tcp_conn *c, const mesh_addr *peer, void *ud)
{
    (void)l;
    tw *w = ud;
    for (int i = 0; i < w->nconns; i++) {
        tconn *t = &w->conns[i];
        if (!t->srv.connected && mesh_addr_equal(&t->cli_local, peer)) {
            t->srv.c = c;
            t->srv.connected = 1;
            t->srv.connected_at = sim_net_now(w->net);
            sim_tcp_set_cbs(c, &SRV_CBS, &t->srv);
            return;
        }
    }
    CU_FAIL("accepted a connection no test started");
    sim_tcp_close(c, MESH_CLOSE_ABORT);
}

static sim_host *add_host(tw *w, const char *name, uint32_t ip, sim_lan *lan)
{
    sim_link_cfg access = {.latency = MS(5)};
    sim_host_cfg hc = {name, ip, lan, access, access};
    sim_host *h = NULL;
    CU_ASSERT_EQUAL_FATAL(sim_net_add_host(w->net, &hc, &h), MESH_OK);
    return h;
}

static void tw_init(tw *w, uint32_t mss)
{
    memset(w, 0, sizeof *w);
    sim_tcp_cfg tc = {.mss = mss, .connect_timeout = SEC(3), .max_retries = 3};
    CU_ASSERT_EQUAL_FATAL(sim_world_new(&w->world, 42, &tc), MESH_OK);
    w->s = sim_world_sched(w->world);
    w->net = sim_world_net(w->world);
    w->tcp = sim_world_tcp(w->world);
    sim_sched_set_event_cap(w->s, EVENT_CAP);
    sim_net_set_core(w->net, &(sim_link_cfg){.latency = MS(20)}, NULL, NULL);
    sim_lan_cfg lc = {.name = "region"};
    CU_ASSERT_EQUAL_FATAL(sim_net_add_lan(w->net, &lc, &w->lan), MESH_OK);
    w->cli = add_host(w, "cli", IP_CLI, w->lan);
    w->cli2 = add_host(w, "cli2", IP_CLI2, w->lan);
    w->srv = add_host(w, "srv", IP_SRV, NULL);
    w->srv2 = add_host(w, "srv2", IP_SRV2, NULL);
    w->srv_other = add_host(w, "other", IP_SRV_OTHER, NULL);
    sim_host *servers[] = {w->srv, w->srv2, w->srv_other};
    for (size_t i = 0; i < 3; i++) {
        sim_tcp_listener *l;
        CU_ASSERT_EQUAL_FATAL(sim_tcp_listen(w->tcp, servers[i], PORT_TLS, on_accept, w, &l),
                              MESH_OK);
        CU_ASSERT_EQUAL_FATAL(sim_tcp_listen(w->tcp, servers[i], PORT_ALT, on_accept, w, &l),
                              MESH_OK);
    }
    CU_ASSERT_EQUAL_FATAL(sim_censor_new(&w->cen, &(sim_censor_cfg){.name = "gfw"}), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_censor_attach_lan(w->cen, w->net, w->lan), MESH_OK);
    sim_censor_set_decision_cb(w->cen, on_decision, w);
    sim_censor_set_classifier(w->cen, classify, w);
}

static void tw_free(tw *w)
{
    sim_world_free(w->world); /* the net goes first: it holds the censor */
    sim_censor_free(w->cen);
    sim_censor_free(w->spare);
    for (int i = 0; i < w->nconns; i++)
        free(w->conns[i].bytes);
}

static void start_ev(void *ctx, void *arg)
{
    (void)arg;
    tconn *t = ctx;
    CU_ASSERT_EQUAL_FATAL(sim_tcp_connect(t->w->tcp, t->from, &t->to, &CLI_CBS, &t->cli, &t->cli.c),
                          MESH_OK);
    t->cli_local = sim_tcp_local(t->cli.c);
}

/* A connection from `from` to ip:port at virtual time `at` that writes bytes once connected. */
static tconn *flow_at(tw *w, mesh_time at, sim_host *from, uint32_t ip, uint16_t port,
                      const uint8_t *bytes, size_t len)
{
    CU_ASSERT_FATAL(w->nconns < MAX_CONNS);
    tconn *t = &w->conns[w->nconns++];
    t->w = w;
    t->from = from;
    t->to = mesh_addr_v4(ip, port);
    t->len = len;
    t->bytes = malloc(len ? len : 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t->bytes);
    if (len)
        memcpy(t->bytes, bytes, len);
    CU_ASSERT_EQUAL_FATAL(sim_sched_at(w->s, at, SIM_EV_USER, 0, start_ev, t, NULL, NULL), MESH_OK);
    return t;
}

static void run_until(tw *w, mesh_time t)
{
    CU_ASSERT_EQUAL(sim_sched_run_until(w->s, t), MESH_OK);
}

/* ---- ClientHellos from OpenSSL -------------------------------------------------------------- */

typedef struct hello {
    uint8_t b[HELLO_CAP];
    size_t len;
} hello;

/* Seeded randomness for every OpenSSL object of the suite: the library context of a node TLS
 * context on a test env. */
static mesh_test_env g_env;
static mesh_identity *g_id;
static mesh_tls_ctx *g_tls;

static int suite_init(void)
{
    mesh_test_env_init(&g_env, 2024);
    if (mesh_identity_generate(&g_id, &g_env.env) != MESH_OK ||
        mesh_tls_ctx_new(&g_tls, &g_env.env, g_id, &SEED_PROFILE) != MESH_OK)
        return 1;
    return 0;
}

static int suite_clean(void)
{
    mesh_tls_ctx_free(g_tls);
    mesh_identity_free(g_id);
    return 0;
}

/* The first flight of an OpenSSL client: sni (NULL = none), alpn NULL-terminated (NULL =
 * none), suites = TLS 1.3 cipher suites (NULL = OpenSSL's default). */
static void make_hello(hello *h, const char *sni, const char *const *alpn, const char *suites)
{
    SSL_CTX *ctx = SSL_CTX_new_ex(mesh_tls_ctx_libctx(g_tls), NULL, TLS_client_method());
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    if (suites)
        CU_ASSERT_FATAL(SSL_CTX_set_ciphersuites(ctx, suites) == 1);
    SSL *s = SSL_new(ctx);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    CU_ASSERT_FATAL(s && rb && wb);
    SSL_set_bio(s, rb, wb);
    SSL_set_connect_state(s);
    if (sni)
        CU_ASSERT_FATAL(SSL_set_tlsext_host_name(s, sni) == 1);
    if (alpn) {
        uint8_t wire[256];
        size_t n = 0;
        for (size_t i = 0; alpn[i]; i++) {
            size_t l = strlen(alpn[i]);
            wire[n++] = (uint8_t)l;
            memcpy(wire + n, alpn[i], l);
            n += l;
        }
        CU_ASSERT_FATAL(SSL_set_alpn_protos(s, wire, (unsigned)n) == 0);
    }
    CU_ASSERT_EQUAL(SSL_do_handshake(s), -1);
    CU_ASSERT_EQUAL(SSL_get_error(s, -1), SSL_ERROR_WANT_READ);
    int n = BIO_read(wb, h->b, sizeof h->b);
    CU_ASSERT_FATAL(n > 0);
    h->len = (size_t)n;
    SSL_free(s);
    SSL_CTX_free(ctx);
}

static const char *const ALPN_MESH[] = {"meshara/1.0", NULL};
static const char *const ALPN_BROWSER[] = {"h2", "http/1.1", NULL};

static int add_rule(tw *w, const sim_censor_rule *r)
{
    int idx = -1;
    CU_ASSERT_EQUAL_FATAL(sim_censor_add_rule(w->cen, r, &idx), MESH_OK);
    return idx;
}

/* The server got every byte and nothing was cut. */
static void assert_passed(const tconn *t)
{
    CU_ASSERT_TRUE(t->cli.connected);
    CU_ASSERT_EQUAL(t->srv.rx, t->len);
    CU_ASSERT_FALSE(t->cli.closed);
    CU_ASSERT_FALSE(t->srv.closed);
}

/* ---- rules over the ClientHello ------------------------------------------------------------ */

static void test_sni_rule(void)
{
    tw w;
    tw_init(&w, 0);
    sim_censor_rule r = {.name = "sni-meshara", .match.sni = "meshara.node"};
    add_rule(&w, &r);
    hello mesh, web;
    make_hello(&mesh, "meshara.node", ALPN_MESH, NULL);
    make_hello(&web, "www.example.org", ALPN_BROWSER, NULL);
    tconn *a = flow_at(&w, 0, w.cli, IP_SRV, PORT_TLS, mesh.b, mesh.len);
    tconn *b = flow_at(&w, 0, w.cli2, IP_SRV, PORT_TLS, web.b, web.len);
    run_until(&w, SEC(2));
    /* the blocked flow connected (the SYN passed: an SNI rule cannot decide there) but not
     * one byte of the hello reached the server */
    CU_ASSERT_TRUE(a->cli.connected);
    CU_ASSERT_TRUE(a->srv.connected);
    CU_ASSERT_EQUAL(a->srv.rx, 0);
    assert_passed(b);
    CU_ASSERT_EQUAL_FATAL(w.ndec, 1);
    CU_ASSERT_EQUAL(w.dec[0].rule, 0);
    CU_ASSERT_EQUAL(w.dec[0].action, SIM_CENSOR_DROP);
    CU_ASSERT_STRING_EQUAL(w.dec[0].what, "sni=meshara.node");
    CU_ASSERT_EQUAL(w.dec[0].client_port, sim_tcp_local(a->cli.c).port);
    /* decided when the hello crossed the gateway: connect (1 RTT) + the client's 5 ms */
    CU_ASSERT_EQUAL(w.dec[0].at, a->cli.connected_at + MS(5));
    sim_censor_stats st = sim_censor_get_stats(w.cen);
    CU_ASSERT_EQUAL(st.hellos_parsed, 2);
    CU_ASSERT_EQUAL(st.flows[SIM_CENSOR_LABEL_MESHARA], 1);
    CU_ASSERT_EQUAL(st.flows[SIM_CENSOR_LABEL_BACKGROUND], 1);
    CU_ASSERT_EQUAL(st.blocked[SIM_CENSOR_LABEL_MESHARA], 1);
    CU_ASSERT_EQUAL(st.blocked[SIM_CENSOR_LABEL_BACKGROUND], 0);
    sim_censor_rule_stats rs;
    CU_ASSERT_EQUAL(sim_censor_get_rule_stats(w.cen, 0, &rs), MESH_OK);
    CU_ASSERT_EQUAL(rs.evaluated[SIM_CENSOR_LABEL_MESHARA], 1);
    CU_ASSERT_EQUAL(rs.evaluated[SIM_CENSOR_LABEL_BACKGROUND], 1);
    CU_ASSERT_EQUAL(rs.matched[SIM_CENSOR_LABEL_MESHARA], 1);
    CU_ASSERT_EQUAL(rs.matched[SIM_CENSOR_LABEL_BACKGROUND], 0);
    tw_free(&w);
}

static void test_sni_suffix(void)
{
    tw w;
    tw_init(&w, 0);
    /* domain mode on port 443, subdomains-only ("*.example.org") on 8443 */
    add_rule(&w, &(sim_censor_rule){.match = {.dst_port_lo = PORT_TLS,
                                              .sni = "Example.ORG",
                                              .sni_suffix = SIM_CENSOR_SNI_DOMAIN}});
    add_rule(&w, &(sim_censor_rule){.match = {.dst_port_lo = PORT_ALT,
                                              .sni = "example.org",
                                              .sni_suffix = SIM_CENSOR_SNI_SUBDOMAINS}});
    const char *names[] = {"www.example.org", "example.org", "badexample.org", "example.org.evil"};
    const int passes[2][4] = {{0, 0, 1, 1}, {0, 1, 1, 1}};
    tconn *t[2][4];
    hello h;
    for (int p = 0; p < 2; p++) {
        for (int i = 0; i < 4; i++) {
            make_hello(&h, names[i], ALPN_BROWSER, NULL);
            t[p][i] = flow_at(&w, MS(10) * (mesh_time)i, w.cli2, IP_SRV, p ? PORT_ALT : PORT_TLS,
                              h.b, h.len);
        }
    }
    run_until(&w, SEC(2));
    for (int p = 0; p < 2; p++)
        for (int i = 0; i < 4; i++)
            CU_ASSERT_EQUAL(t[p][i]->srv.rx, passes[p][i] ? t[p][i]->len : 0);
    CU_ASSERT_EQUAL(w.ndec, 3);
    CU_ASSERT_STRING_EQUAL(w.dec[0].what, "dst=203.0.113.10:443 sni=www.example.org");
    tw_free(&w);
}

static void test_alpn_rule_rst(void)
{
    tw w;
    tw_init(&w, 0);
    add_rule(&w, &(sim_censor_rule){
                     .name = "alpn", .match.alpn = "meshara/1.0", .action = SIM_CENSOR_RST});
    hello mesh, web;
    /* the SNI looks innocent: only the ALPN gives the flow away */
    make_hello(&mesh, "www.example.org", ALPN_MESH, NULL);
    make_hello(&web, "www.example.org", ALPN_BROWSER, NULL);
    tconn *a = flow_at(&w, 0, w.cli, IP_SRV, PORT_TLS, mesh.b, mesh.len);
    tconn *b = flow_at(&w, 0, w.cli2, IP_SRV, PORT_TLS, web.b, web.len);
    run_until(&w, SEC(2));
    /* both ends see a reset: the client at once (5 ms back from the gateway), the server
     * when the injected RST crosses the core and its access link */
    CU_ASSERT_TRUE(a->cli.closed);
    CU_ASSERT_EQUAL(a->cli.reason, MESH_ERR_RESET);
    CU_ASSERT_TRUE(a->srv.closed);
    CU_ASSERT_EQUAL(a->srv.reason, MESH_ERR_RESET);
    CU_ASSERT_EQUAL(a->srv.rx, 0);
    CU_ASSERT_EQUAL_FATAL(w.ndec, 1);
    CU_ASSERT_EQUAL(a->cli.closed_at, w.dec[0].at + MS(5));
    CU_ASSERT_EQUAL(a->srv.closed_at, w.dec[0].at + MS(25));
    CU_ASSERT_STRING_EQUAL(w.dec[0].what, "alpn=meshara/1.0");
    CU_ASSERT_EQUAL(w.dec[0].action, SIM_CENSOR_RST);
    CU_ASSERT_EQUAL(sim_censor_get_stats(w.cen).rsts_injected, 2);
    assert_passed(b);
    tw_free(&w);
}

/* The same box in front of the server (at its host): the SYN comes IN, RSTs go both ways. */
static void test_at_server_side(void)
{
    tw w;
    tw_init(&w, 0);
    w.spare = w.cen;
    CU_ASSERT_EQUAL_FATAL(sim_censor_new(&w.cen, NULL), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_censor_attach_host(w.cen, w.net, w.srv2), MESH_OK);
    sim_censor_set_decision_cb(w.cen, on_decision, &w);
    add_rule(&w, &(sim_censor_rule){.match.sni = "meshara.node", .action = SIM_CENSOR_RST});
    hello h;
    make_hello(&h, "meshara.node", ALPN_MESH, NULL);
    tconn *a = flow_at(&w, 0, w.cli, IP_SRV2, PORT_TLS, h.b, h.len);
    tconn *b = flow_at(&w, 0, w.cli, IP_SRV, PORT_TLS, h.b, h.len); /* not behind this box */
    run_until(&w, SEC(2));
    CU_ASSERT_EQUAL_FATAL(w.ndec, 1);
    /* a host's box sits between the host and its access link: the hello meets it after the
     * client's link, the core and the server's link (30 ms); the server's RST is delivered
     * at once, the client's travels the whole path back */
    CU_ASSERT_EQUAL(w.dec[0].at, a->cli.connected_at + MS(30));
    CU_ASSERT_EQUAL(a->cli.reason, MESH_ERR_RESET);
    CU_ASSERT_EQUAL(a->cli.closed_at, w.dec[0].at + MS(30));
    CU_ASSERT_EQUAL(a->srv.reason, MESH_ERR_RESET);
    CU_ASSERT_EQUAL(a->srv.closed_at, w.dec[0].at);
    assert_passed(b);
    tw_free(&w);
}

static void test_ja3_rule(void)
{
    tw w;
    tw_init(&w, 0);
    hello dflt, chacha;
    make_hello(&dflt, "www.example.org", ALPN_BROWSER, NULL);
    make_hello(&chacha, "www.example.org", ALPN_BROWSER, "TLS_CHACHA20_POLY1305_SHA256");
    sim_client_hello ch1, ch2;
    CU_ASSERT_EQUAL_FATAL(sim_client_hello_parse(dflt.b, dflt.len, &ch1), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_client_hello_parse(chacha.b, chacha.len, &ch2), MESH_OK);
    CU_ASSERT_STRING_NOT_EQUAL(ch1.ja3_md5, ch2.ja3_md5);
    /* upper case in the rule: fingerprints compare case-insensitively */
    char upper[33];
    for (int i = 0; i < 33; i++)
        upper[i] = (char)(ch1.ja3_md5[i] >= 'a' && ch1.ja3_md5[i] <= 'f' ? ch1.ja3_md5[i] - 32
                                                                         : ch1.ja3_md5[i]);
    add_rule(&w, &(sim_censor_rule){.name = "openssl-default", .match.ja3_md5 = upper});
    tconn *a = flow_at(&w, 0, w.cli, IP_SRV, PORT_TLS, dflt.b, dflt.len);
    tconn *b = flow_at(&w, 0, w.cli2, IP_SRV, PORT_TLS, chacha.b, chacha.len);
    run_until(&w, SEC(2));
    CU_ASSERT_EQUAL(a->srv.rx, 0);
    assert_passed(b);
    CU_ASSERT_EQUAL_FATAL(w.ndec, 1);
    char want[64];
    snprintf(want, sizeof want, "ja3=%s", ch1.ja3_md5);
    CU_ASSERT_STRING_EQUAL(w.dec[0].what, want);
    tw_free(&w);
}

/* The first flight of the node's own TLS module (tls.h) for cfg. */
static void hello_out(void *ud, const uint8_t *data, size_t len)
{
    hello *h = ud;
    CU_ASSERT_FATAL(h->len + len <= sizeof h->b);
    memcpy(h->b + h->len, data, len);
    h->len += len;
}

static void make_mesh_hello(hello *h, const mesh_tls_cfg *cfg)
{
    mesh_tls_ctx *ctx;
    mesh_tls *t;
    h->len = 0;
    CU_ASSERT_EQUAL_FATAL(mesh_tls_ctx_new(&ctx, &g_env.env, g_id, cfg), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_tls_new(&t, ctx, 0, NULL, hello_out, h), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_handshake(t), MESH_ERR_AGAIN);
    CU_ASSERT_FATAL(h->len > 0);
    mesh_tls_free(t);
    mesh_tls_ctx_free(ctx);
}

/* What Meshara's own TLS code puts on the wire: its default SNI and ALPN are one-line rules
 * (design §4.1); with a cover SNI and browser ALPN those rules pass it, but its TLS 1.3-only
 * fingerprint still singles it out from a stock OpenSSL client with the same SNI and ALPN. */
static void test_node_tls_hello(void)
{
    tw w;
    tw_init(&w, 0);
    hello dflt, cover, stock;
    make_mesh_hello(&dflt, &SEED_PROFILE);
    static const char *const browser_alpn[] = {"h2", "http/1.1", NULL};
    make_mesh_hello(&cover, &(mesh_tls_cfg){.profile = MESH_PROFILE_SEED,
                                            .sni = "www.example.org",
                                            .alpn = browser_alpn});
    make_hello(&stock, "www.example.org", ALPN_BROWSER, NULL);
    sim_client_hello ch_cover, ch_stock;
    CU_ASSERT_EQUAL_FATAL(sim_client_hello_parse(cover.b, cover.len, &ch_cover), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_client_hello_parse(stock.b, stock.len, &ch_stock), MESH_OK);
    CU_ASSERT_STRING_EQUAL(ch_cover.sni, "www.example.org");
    CU_ASSERT_STRING_NOT_EQUAL(ch_cover.ja3_md5, ch_stock.ja3_md5);
    int sni = add_rule(&w, &(sim_censor_rule){.name = "sni", .match.sni = MESH_TLS_DEFAULT_SNI});
    int alpn = add_rule(&w, &(sim_censor_rule){.name = "alpn",
                                               .match.alpn = MESH_TLS_DEFAULT_ALPN,
                                               .action = SIM_CENSOR_RST});
    int ja3 = add_rule(&w, &(sim_censor_rule){.name = "ja3",
                                              .match.ja3_md5 = ch_cover.ja3_md5,
                                              .action = SIM_CENSOR_RST});
    tconn *a = flow_at(&w, 0, w.cli, IP_SRV, PORT_TLS, dflt.b, dflt.len);
    tconn *b = flow_at(&w, MS(100), w.cli, IP_SRV, PORT_TLS, cover.b, cover.len);
    tconn *c = flow_at(&w, MS(200), w.cli2, IP_SRV, PORT_TLS, stock.b, stock.len);
    run_until(&w, SEC(2));
    CU_ASSERT_EQUAL(a->srv.rx, 0);
    CU_ASSERT_EQUAL(b->cli.reason, MESH_ERR_RESET);
    assert_passed(c);
    CU_ASSERT_EQUAL_FATAL(w.ndec, 2);
    CU_ASSERT_EQUAL(w.dec[0].rule, sni); /* the first matching rule at the HELLO stage */
    CU_ASSERT_EQUAL(w.dec[1].rule, ja3);
    sim_censor_rule_stats rs;
    sim_censor_get_rule_stats(w.cen, alpn, &rs);
    CU_ASSERT_EQUAL(rs.matched[SIM_CENSOR_LABEL_MESHARA], 0);   /* sni decided first */
    CU_ASSERT_EQUAL(rs.evaluated[SIM_CENSOR_LABEL_MESHARA], 1); /* ruled out on b */
    tw_free(&w);
}

/* A hello cut into 100-byte segments, the first of them overtaken by the others (a middlebox
 * at the client host holds it back 3 ms), is still reassembled and read. */
typedef struct holder {
    int held;
} holder;

static int hold_first_data(void *obj, sim_mbox *mb, sim_pkt *p, int dir, mesh_time *delay)
{
    (void)mb;
    holder *h = obj;
    if (dir == SIM_DIR_OUT && p->proto == SIM_PROTO_TCP && p->len && !h->held) {
        h->held = 1;
        *delay = MS(3);
        return SIM_DELAY;
    }
    return SIM_PASS;
}

static void test_segmented_reordered_hello(void)
{
    tw w;
    tw_init(&w, 100);
    static const sim_mbox_ops hold_ops = {hold_first_data};
    holder hd = {0};
    CU_ASSERT_EQUAL_FATAL(sim_net_attach_host_mbox(w.net, w.cli, &hold_ops, &hd, NULL), MESH_OK);
    add_rule(&w, &(sim_censor_rule){.match.sni = "meshara.node", .action = SIM_CENSOR_RST});
    hello h;
    make_hello(&h, "meshara.node", ALPN_MESH, NULL);
    CU_ASSERT_FATAL(h.len > 200); /* three segments at least */
    tconn *a = flow_at(&w, 0, w.cli, IP_SRV, PORT_TLS, h.b, h.len);
    run_until(&w, SEC(2));
    CU_ASSERT_TRUE(hd.held);
    CU_ASSERT_EQUAL_FATAL(w.ndec, 1);
    /* decided only when the held first segment completed the prefix */
    CU_ASSERT_EQUAL(w.dec[0].at, a->cli.connected_at + MS(5) + MS(3));
    CU_ASSERT_EQUAL(a->cli.reason, MESH_ERR_RESET);
    CU_ASSERT_EQUAL(a->srv.reason, MESH_ERR_RESET);
    CU_ASSERT_EQUAL(sim_censor_get_stats(w.cen).hellos_parsed, 1);
    tw_free(&w);
}

static void test_not_tls(void)
{
    tw w;
    tw_init(&w, 0);
    add_rule(&w, &(sim_censor_rule){.match.sni = "meshara.node"});
    const char *req = "GET / HTTP/1.1\r\nHost: meshara.node\r\n\r\n";
    tconn *a = flow_at(&w, 0, w.cli, IP_SRV, PORT_TLS, (const uint8_t *)req, strlen(req));
    run_until(&w, SEC(2));
    assert_passed(a);
    CU_ASSERT_EQUAL(w.ndec, 0);
    sim_censor_stats st = sim_censor_get_stats(w.cen);
    CU_ASSERT_EQUAL(st.hellos_failed, 1);
    CU_ASSERT_EQUAL(st.hellos_parsed, 0);
    tw_free(&w);
}

/* ---- rules at the SYN ---------------------------------------------------------------------- */

static void test_ip_rule_at_syn(void)
{
    tw w;
    tw_init(&w, 0);
    /* an SNI rule listed first does not delay the cheaper IP rule's decision */
    add_rule(&w, &(sim_censor_rule){.name = "sni", .match.sni = "meshara.node"});
    add_rule(&w,
             &(sim_censor_rule){.name = "ip",
                                .match = {.dst_ip = IP_SRV, .dst_prefix = 24, .dst_port_lo = 443}});
    hello h;
    make_hello(&h, "www.example.org", ALPN_BROWSER, NULL);
    tconn *a = flow_at(&w, 0, w.cli, IP_SRV, PORT_TLS, h.b, h.len);
    tconn *b = flow_at(&w, 0, w.cli, IP_SRV2, PORT_TLS, h.b, h.len);      /* same /24 */
    tconn *c = flow_at(&w, 0, w.cli, IP_SRV, PORT_ALT, h.b, h.len);       /* other port */
    tconn *d = flow_at(&w, 0, w.cli, IP_SRV_OTHER, PORT_TLS, h.b, h.len); /* other net */
    run_until(&w, SEC(5));
    for (int i = 0; i < 2; i++) {
        tconn *t = i ? b : a;
        CU_ASSERT_FALSE(t->cli.connected);
        CU_ASSERT_FALSE(t->srv.connected);
        CU_ASSERT_TRUE(t->cli.closed);
        CU_ASSERT_EQUAL(t->cli.reason, MESH_ERR_TIMEOUT);
        CU_ASSERT_EQUAL(t->cli.closed_at, SEC(3));
    }
    assert_passed(c);
    assert_passed(d);
    CU_ASSERT_EQUAL_FATAL(w.ndec, 2);
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(w.dec[i].rule, 1);
        CU_ASSERT_EQUAL(w.dec[i].at, MS(5)); /* the first SYN at the gateway */
    }
    CU_ASSERT_STRING_EQUAL(w.dec[0].what, "dst=203.0.113.10:443");
    CU_ASSERT_STRING_EQUAL(w.dec[1].what, "dst=203.0.113.20:443");
    sim_censor_stats st = sim_censor_get_stats(w.cen);
    CU_ASSERT_TRUE(st.pkts_dropped >= 4); /* each SYN and its retries */
    CU_ASSERT_EQUAL(st.hellos_parsed, 2); /* only the two flows that passed the SYN */
    tw_free(&w);
}

static void test_rst_at_syn_refuses(void)
{
    tw w;
    tw_init(&w, 0);
    add_rule(&w, &(sim_censor_rule){.match = {.dst_ip = IP_SRV, .dst_prefix = 32},
                                    .action = SIM_CENSOR_RST});
    tconn *a = flow_at(&w, 0, w.cli, IP_SRV, PORT_TLS, (const uint8_t *)"x", 1);
    run_until(&w, SEC(1));
    CU_ASSERT_EQUAL(a->cli.reason, MESH_ERR_REFUSED);
    CU_ASSERT_EQUAL(a->cli.closed_at, MS(10)); /* 5 ms up to the gateway, 5 ms back */
    CU_ASSERT_FALSE(a->srv.connected);
    /* the server never saw the SYN, so no RST goes its way */
    CU_ASSERT_EQUAL(sim_censor_get_stats(w.cen).rsts_injected, 1);
    tw_free(&w);
}

static void test_drop_data_times_out(void)
{
    tw w;
    tw_init(&w, 0);
    add_rule(&w, &(sim_censor_rule){.match.alpn = "meshara/1.0", .action = SIM_CENSOR_DROP});
    hello h;
    make_hello(&h, "meshara.node", ALPN_MESH, NULL);
    tconn *a = flow_at(&w, 0, w.cli, IP_SRV, PORT_TLS, h.b, h.len);
    run_until(&w, SEC(30));
    CU_ASSERT_TRUE(a->srv.connected);
    CU_ASSERT_EQUAL(a->srv.rx, 0);
    CU_ASSERT_TRUE(a->cli.closed);
    CU_ASSERT_EQUAL(a->cli.reason, MESH_ERR_TIMEOUT);
    /* every retransmission vanished too */
    CU_ASSERT_EQUAL(sim_censor_get_stats(w.cen).pkts_dropped, 4);
    CU_ASSERT_EQUAL(w.ndec, 1);
    tw_free(&w);
}

static void test_throttle_rate(void)
{
    tw w;
    tw_init(&w, 0);
    const uint64_t rate = 2000000; /* 2 Mbit/s */
    add_rule(&w, &(sim_censor_rule){
                     .match = {.dst_ip = IP_SRV, .dst_prefix = 32, .dst_port_lo = PORT_TLS},
                     .action = SIM_CENSOR_THROTTLE,
                     .rate_bps = rate});
    enum { N = 100000 };
    uint8_t *buf = calloc(1, N);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    tconn *a = flow_at(&w, 0, w.cli, IP_SRV, PORT_TLS, buf, N);
    tconn *b = flow_at(&w, 0, w.cli, IP_SRV, PORT_ALT, buf, N);
    free(buf);
    run_until(&w, SEC(5));
    CU_ASSERT_EQUAL(a->srv.rx, N);
    CU_ASSERT_EQUAL(b->srv.rx, N);
    /* Wire bytes through the client->server bucket after the handshake: the final ACK (40)
     * and ceil(N/1460) segments of 40 header bytes each. The first of them reaches the
     * gateway 5 ms after connected; the last leaves it when the bucket has passed them all,
     * then crosses the core and the server's link (25 ms). */
    const uint64_t segs = (N + SIM_TCP_DEFAULT_MSS - 1) / SIM_TCP_DEFAULT_MSS;
    const uint64_t wire = 40 + N + segs * SIM_TCP_HDR_BYTES;
    mesh_time expect = a->cli.connected_at + MS(5) + wire * 8 * MESH_NS_PER_S / rate + MS(25);
    mesh_time got = a->srv.last_rx;
    CU_ASSERT_TRUE(got >= expect && got - expect < 100 * MESH_NS_PER_US);
    printf("\n  throttle: %d bytes at %llu bit/s delivered in %.3f ms (expected %.3f ms) ", N,
           (unsigned long long)rate, (double)(got - a->cli.connected_at - MS(5) - MS(25)) / 1e6,
           (double)(wire * 8 * MESH_NS_PER_S / rate) / 1e6);
    /* the unthrottled flow took a few ms: no rate anywhere else */
    CU_ASSERT_TRUE(b->srv.last_rx - b->cli.connected_at < MS(40));
    CU_ASSERT_TRUE(sim_censor_get_stats(w.cen).pkts_delayed > segs);
    tw_free(&w);
}

static void test_throttle_queue_drops(void)
{
    tw w;
    tw_init(&w, 0);
    /* 100 kbit/s, a 3000-byte burst and a 100 ms queue: 20 kB sent at once overflow it */
    add_rule(&w, &(sim_censor_rule){.match.dst_port_lo = PORT_TLS,
                                    .action = SIM_CENSOR_THROTTLE,
                                    .rate_bps = 100000,
                                    .burst_bytes = 3000,
                                    .throttle_queue = MS(100)});
    uint8_t buf[20000] = {0};
    tconn *a = flow_at(&w, 0, w.cli, IP_SRV, PORT_TLS, buf, sizeof buf);
    run_until(&w, SEC(1));
    sim_censor_stats st = sim_censor_get_stats(w.cen);
    CU_ASSERT_TRUE(st.pkts_dropped > 0);
    /* never more than the burst plus the rate: 3000 + 12500 bytes in the first second */
    CU_ASSERT_TRUE(a->srv.rx > 0);
    CU_ASSERT_TRUE(a->srv.rx <= 3000 + 12500);
    tw_free(&w);
}

/* ---- residual blocking ---------------------------------------------------------------------- */

static void test_residual(void)
{
    tw w;
    tw_init(&w, 0);
    int ri = add_rule(&w, &(sim_censor_rule){.name = "sni-residual",
                                             .match.sni = "meshara.node",
                                             .action = SIM_CENSOR_RST,
                                             .residual = SEC(60)});
    hello mesh, web;
    make_hello(&mesh, "meshara.node", ALPN_MESH, NULL);
    make_hello(&web, "www.example.org", ALPN_BROWSER, NULL);
    tconn *first = flow_at(&w, 0, w.cli, IP_SRV, PORT_TLS, mesh.b, mesh.len);
    /* 10 s later an innocent flow to the same server and port, even from another client */
    tconn *during = flow_at(&w, SEC(10), w.cli2, IP_SRV, PORT_TLS, web.b, web.len);
    tconn *other_port = flow_at(&w, SEC(10), w.cli2, IP_SRV, PORT_ALT, web.b, web.len);
    /* and after the window */
    tconn *after = flow_at(&w, SEC(61), w.cli2, IP_SRV, PORT_TLS, web.b, web.len);
    run_until(&w, SEC(70));
    CU_ASSERT_EQUAL(first->cli.reason, MESH_ERR_RESET);
    CU_ASSERT_FALSE(during->cli.connected);
    CU_ASSERT_EQUAL(during->cli.reason, MESH_ERR_REFUSED); /* RST at the SYN */
    assert_passed(other_port);
    assert_passed(after);
    CU_ASSERT_EQUAL_FATAL(w.ndec, 2);
    CU_ASSERT_EQUAL(w.dec[0].residual, 0);
    CU_ASSERT_EQUAL(w.dec[1].residual, 1);
    CU_ASSERT_EQUAL(w.dec[1].rule, ri);
    CU_ASSERT_EQUAL(w.dec[1].label, SIM_CENSOR_LABEL_BACKGROUND);
    CU_ASSERT_EQUAL(strncmp(w.dec[1].what, "residual dst=203.0.113.10:443", 29), 0);
    sim_censor_rule_stats rs;
    sim_censor_get_rule_stats(w.cen, ri, &rs);
    CU_ASSERT_EQUAL(rs.matched[SIM_CENSOR_LABEL_MESHARA], 1);
    CU_ASSERT_EQUAL(rs.residual_hits[SIM_CENSOR_LABEL_BACKGROUND], 1);
    /* the residual entry was removed when found expired */
    CU_ASSERT_EQUAL(sim_censor_get_stats(w.cen).live_residual, 0);
    tw_free(&w);
}

static void test_residual_per_client_drop(void)
{
    tw w;
    tw_init(&w, 0);
    add_rule(&w, &(sim_censor_rule){.match.sni = "meshara.node",
                                    .action = SIM_CENSOR_DROP,
                                    .residual = SEC(30),
                                    .residual_per_client = 1});
    hello mesh, web;
    make_hello(&mesh, "meshara.node", ALPN_MESH, NULL);
    make_hello(&web, "www.example.org", ALPN_BROWSER, NULL);
    flow_at(&w, 0, w.cli, IP_SRV, PORT_TLS, mesh.b, mesh.len);
    tconn *same = flow_at(&w, SEC(5), w.cli, IP_SRV, PORT_TLS, web.b, web.len);
    tconn *other = flow_at(&w, SEC(5), w.cli2, IP_SRV, PORT_TLS, web.b, web.len);
    run_until(&w, SEC(20));
    CU_ASSERT_EQUAL(same->cli.reason, MESH_ERR_TIMEOUT); /* its SYNs vanish */
    CU_ASSERT_FALSE(same->srv.connected);
    assert_passed(other);
    tw_free(&w);
}

/* ---- payload statistics -------------------------------------------------------------------- */

static void test_entropy_and_length(void)
{
    tw w;
    tw_init(&w, 0);
    /* the "fully encrypted" detector: a first payload that looks uniformly random */
    add_rule(&w,
             &(sim_censor_rule){
                 .name = "fully-encrypted",
                 .match = {.len_min = 100, .len_max = 1460, .entropy_min = 7.2, .entropy_max = 8}});
    uint8_t rnd[600];
    sim_rng rng;
    sim_rng_seed(&rng, 7);
    sim_rng_fill(&rng, rnd, sizeof rnd);
    hello h;
    make_hello(&h, "www.example.org", ALPN_BROWSER, NULL);
    double h_rnd = sim_censor_entropy(rnd, sizeof rnd), h_tls = sim_censor_entropy(h.b, h.len);
    CU_ASSERT_TRUE(h_rnd > 7.2);
    CU_ASSERT_TRUE(h_tls < 7.2);
    tconn *a = flow_at(&w, 0, w.cli, IP_SRV, PORT_TLS, rnd, sizeof rnd);
    tconn *b = flow_at(&w, 0, w.cli2, IP_SRV, PORT_TLS, h.b, h.len);
    tconn *c = flow_at(&w, 0, w.cli, IP_SRV, PORT_ALT, rnd, 50); /* too short to judge */
    run_until(&w, SEC(2));
    CU_ASSERT_EQUAL(a->srv.rx, 0);
    assert_passed(b);
    assert_passed(c);
    CU_ASSERT_EQUAL_FATAL(w.ndec, 1);
    char want[64];
    snprintf(want, sizeof want, "len=600 entropy=%.3f", h_rnd);
    CU_ASSERT_STRING_EQUAL(w.dec[0].what, want);
    CU_ASSERT_DOUBLE_EQUAL(sim_censor_entropy((const uint8_t *)"aaaa", 4), 0.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(sim_censor_entropy((const uint8_t *)"abab", 4), 1.0, 1e-12);
    tw_free(&w);
}

/* ---- UDP ------------------------------------------------------------------------------------ */

typedef struct udp_count {
    int n;
} udp_count;

static void udp_recv(sim_udp_sock *s, const mesh_addr *from, const uint8_t *data, size_t len,
                     void *ud)
{
    (void)s, (void)from, (void)data, (void)len;
    ((udp_count *)ud)->n++;
}

static void test_udp_port_rule(void)
{
    tw w;
    tw_init(&w, 0);
    add_rule(&w, &(sim_censor_rule){.match = {.proto = SIM_PROTO_UDP, .dst_port_lo = 53}});
    sim_udp *u = sim_world_udp(w.world);
    udp_count c53 = {0}, c54 = {0};
    sim_udp_sock *s53, *s54, *cs;
    CU_ASSERT_EQUAL_FATAL(sim_udp_bind(u, w.srv, 53, udp_recv, &c53, &s53), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_udp_bind(u, w.srv, 54, udp_recv, &c54, &s54), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_udp_bind(u, w.cli, 0, NULL, NULL, &cs), MESH_OK);
    mesh_addr to53 = mesh_addr_v4(IP_SRV, 53), to54 = mesh_addr_v4(IP_SRV, 54);
    for (int i = 0; i < 3; i++) {
        sim_udp_send(cs, &to53, "q", 1);
        sim_udp_send(cs, &to54, "q", 1);
    }
    run_until(&w, SEC(1));
    CU_ASSERT_EQUAL(c53.n, 0);
    CU_ASSERT_EQUAL(c54.n, 3);
    CU_ASSERT_EQUAL(w.ndec, 1); /* one decision per flow, not per datagram */
    CU_ASSERT_STRING_EQUAL(w.dec[0].what, "proto=udp dst=203.0.113.10:53");
    /* a TCP flow to port 53 is not the UDP rule's business */
    sim_tcp_listener *l;
    CU_ASSERT_EQUAL_FATAL(sim_tcp_listen(w.tcp, w.srv, 53, on_accept, &w, &l), MESH_OK);
    tconn *t = flow_at(&w, SEC(1), w.cli, IP_SRV, 53, (const uint8_t *)"x", 1);
    run_until(&w, SEC(2));
    assert_passed(t);
    tw_free(&w);
}

/* ---- switching, ordering, labels, limits ---------------------------------------------------- */

static void toggle_ev(void *ctx, void *arg)
{
    sim_censor_set_enabled(ctx, arg != NULL);
}

static void test_switch_off_and_on(void)
{
    tw w;
    tw_init(&w, 0);
    add_rule(&w, &(sim_censor_rule){.match.sni = "meshara.node", .residual = SEC(600)});
    hello mesh;
    make_hello(&mesh, "meshara.node", ALPN_MESH, NULL);
    static int on = 1;
    sim_sched_at(w.s, SEC(1), SIM_EV_USER, 0, toggle_ev, w.cen, NULL, NULL); /* off */
    sim_sched_at(w.s, SEC(3), SIM_EV_USER, 0, toggle_ev, w.cen, &on, NULL);  /* on */
    tconn *before = flow_at(&w, 0, w.cli, IP_SRV, PORT_TLS, mesh.b, mesh.len);
    tconn *off = flow_at(&w, SEC(2), w.cli, IP_SRV, PORT_TLS, mesh.b, mesh.len);
    tconn *again = flow_at(&w, SEC(4), w.cli, IP_SRV, PORT_ALT, mesh.b, mesh.len);
    hello web;
    make_hello(&web, "www.example.org", ALPN_BROWSER, NULL);
    tconn *web_after = flow_at(&w, SEC(4), w.cli2, IP_SRV, PORT_TLS, web.b, web.len);
    run_until(&w, SEC(6));
    /* blocked at first; once the box was off, the client's retransmitted hello went through */
    CU_ASSERT_EQUAL(before->srv.rx, before->len);
    CU_ASSERT_TRUE(before->srv.first_rx > SEC(1));
    assert_passed(off);                /* switched off: everything passes */
    CU_ASSERT_EQUAL(again->srv.rx, 0); /* on again: inspecting new flows */
    assert_passed(web_after);          /* the residual entry was forgotten with the rest */
    CU_ASSERT_EQUAL(w.ndec, 2);
    CU_ASSERT_TRUE(sim_censor_enabled(w.cen));
    tw_free(&w);
}

static void off_after_decision(void *ud, const sim_censor_decision *d)
{
    tw *w = ud;
    on_decision(ud, d);
    sim_censor_set_enabled(w->cen, 0); /* from inside packet processing */
}

static void test_switch_off_inside_callback(void)
{
    tw w;
    tw_init(&w, 0);
    sim_censor_set_decision_cb(w.cen, off_after_decision, &w);
    add_rule(&w, &(sim_censor_rule){.match.sni = "meshara.node", .residual = SEC(60)});
    hello mesh;
    make_hello(&mesh, "meshara.node", ALPN_MESH, NULL);
    tconn *a = flow_at(&w, 0, w.cli, IP_SRV, PORT_TLS, mesh.b, mesh.len);
    run_until(&w, SEC(2));
    CU_ASSERT_EQUAL(w.ndec, 1);
    CU_ASSERT_FALSE(sim_censor_enabled(w.cen));
    /* the triggering segment was dropped; its retransmission found the box off */
    CU_ASSERT_EQUAL(a->srv.rx, a->len);
    CU_ASSERT_TRUE(a->srv.first_rx > w.dec[0].at + MS(100));
    sim_censor_stats st = sim_censor_get_stats(w.cen);
    CU_ASSERT_EQUAL(st.pkts_dropped, 1);
    CU_ASSERT_EQUAL(st.live_flows, 0);
    CU_ASSERT_EQUAL(st.live_residual, 0);
    tw_free(&w);
}

static void test_allow_and_order(void)
{
    tw w;
    tw_init(&w, 0);
    /* allow one server, block the SNI everywhere else; the decisions name their rule */
    int allow = add_rule(&w, &(sim_censor_rule){.name = "allow-other",
                                                .match = {.dst_ip = IP_SRV_OTHER, .dst_prefix = 32},
                                                .action = SIM_CENSOR_ALLOW});
    int block = add_rule(&w, &(sim_censor_rule){.name = "sni", .match.sni = "meshara.node"});
    hello mesh;
    make_hello(&mesh, "meshara.node", ALPN_MESH, NULL);
    tconn *a = flow_at(&w, 0, w.cli, IP_SRV_OTHER, PORT_TLS, mesh.b, mesh.len);
    tconn *b = flow_at(&w, MS(1), w.cli, IP_SRV, PORT_TLS, mesh.b, mesh.len);
    run_until(&w, SEC(2));
    assert_passed(a);
    CU_ASSERT_EQUAL(b->srv.rx, 0);
    CU_ASSERT_EQUAL_FATAL(w.ndec, 2);
    CU_ASSERT_EQUAL(w.dec[0].rule, allow);
    CU_ASSERT_EQUAL(w.dec[0].action, SIM_CENSOR_ALLOW);
    CU_ASSERT_EQUAL(w.dec[1].rule, block);
    CU_ASSERT_STRING_EQUAL(sim_censor_rule_name(w.cen, block), "sni");
    CU_ASSERT_EQUAL(sim_censor_get_stats(w.cen).blocked[SIM_CENSOR_LABEL_MESHARA], 1);
    tw_free(&w);
}

static void test_flow_limit_fails_open(void)
{
    tw w;
    tw_init(&w, 0);
    w.spare = w.cen; /* ruleless: passes everything; a one-flow censor on the client host */
    CU_ASSERT_EQUAL_FATAL(sim_censor_new(&w.cen, &(sim_censor_cfg){.max_flows = 1}), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_censor_attach_host(w.cen, w.net, w.cli2), MESH_OK);
    sim_censor_set_decision_cb(w.cen, on_decision, &w);
    add_rule(&w, &(sim_censor_rule){.match.sni = "meshara.node"});
    hello mesh;
    make_hello(&mesh, "meshara.node", ALPN_MESH, NULL);
    tconn *a = flow_at(&w, 0, w.cli2, IP_SRV, PORT_TLS, mesh.b, mesh.len);
    tconn *b = flow_at(&w, 0, w.cli2, IP_SRV, PORT_ALT, mesh.b, mesh.len);
    run_until(&w, SEC(2));
    CU_ASSERT_EQUAL(a->srv.rx, 0);
    assert_passed(b);
    sim_censor_stats st = sim_censor_get_stats(w.cen);
    CU_ASSERT_EQUAL(st.untracked, 1);
    CU_ASSERT_EQUAL(st.flows[0], 1);
    tw_free(&w);
}

static void test_idle_flows_forgotten(void)
{
    tw w;
    tw_init(&w, 0);
    w.spare = w.cen;
    CU_ASSERT_EQUAL_FATAL(sim_censor_new(&w.cen, &(sim_censor_cfg){.flow_idle = SEC(5)}), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_censor_attach_lan(w.cen, w.net, w.lan), MESH_OK);
    add_rule(&w, &(sim_censor_rule){.match.sni = "meshara.node"});
    tconn *a = flow_at(&w, 0, w.cli, IP_SRV, PORT_TLS, NULL, 0); /* connects, stays silent */
    run_until(&w, SEC(1));
    CU_ASSERT_TRUE(a->cli.connected);
    CU_ASSERT_EQUAL(sim_censor_get_stats(w.cen).live_flows, 1);
    /* a packet of another flow at 10 s finds the silent one expired */
    flow_at(&w, SEC(10), w.cli, IP_SRV, PORT_ALT, (const uint8_t *)"x", 1);
    run_until(&w, SEC(11));
    CU_ASSERT_EQUAL(sim_censor_get_stats(w.cen).live_flows, 1);
    /* the silent flow's late hello is not inspected: it was forgotten, it has no SYN now */
    hello mesh;
    make_hello(&mesh, "meshara.node", ALPN_MESH, NULL);
    CU_ASSERT_EQUAL(sim_tcp_write(a->cli.c, mesh.b, mesh.len), MESH_OK);
    run_until(&w, SEC(12));
    CU_ASSERT_EQUAL(a->srv.rx, mesh.len);
    tw_free(&w);
}

static void test_rule_validation(void)
{
    sim_censor *c;
    CU_ASSERT_EQUAL_FATAL(sim_censor_new(&c, NULL), MESH_OK);
    const sim_censor_rule bad[] = {
        {.action = 9},
        {.match = {.dst_prefix = 33}},
        {.match = {.dst_port_lo = 100, .dst_port_hi = 99}},
        {.match = {.len_min = 10}},
        {.match = {.len_min = 10, .len_max = 5}},
        {.match = {.entropy_min = 1}},
        {.match = {.entropy_max = 9}},
        {.match = {.entropy_min = 5, .entropy_max = 4}},
        {.match = {.sni = ""}},
        {.match = {.alpn = ""}},
        {.match = {.ja3_md5 = "abc"}},
        {.match = {.ja3_md5 = "zz112233445566778899aabbccddeeff"}},
        {.match = {.proto = SIM_PROTO_UDP, .sni = "x"}},
        {.match = {.proto = 1}},
        {.match = {.sni = "x", .sni_suffix = 3}},
        {.action = SIM_CENSOR_THROTTLE},
        {.action = SIM_CENSOR_ALLOW, .residual = 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CU_ASSERT_EQUAL(sim_censor_add_rule(c, &bad[i], NULL), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(sim_censor_rule_count(c), 0);
    for (int i = 0; i < SIM_CENSOR_MAX_RULES; i++) {
        int idx = -1;
        CU_ASSERT_EQUAL(sim_censor_add_rule(c, &(sim_censor_rule){.match.dst_port_lo = 1}, &idx),
                        MESH_OK);
        CU_ASSERT_EQUAL(idx, i);
    }
    CU_ASSERT_EQUAL(sim_censor_add_rule(c, &(sim_censor_rule){0}, NULL), MESH_ERR_LIMIT);
    CU_ASSERT_STRING_EQUAL(sim_censor_rule_name(c, 3), "rule3");
    CU_ASSERT_PTR_NULL(sim_censor_rule_name(c, SIM_CENSOR_MAX_RULES));
    CU_ASSERT_EQUAL(sim_censor_get_rule_stats(c, -1, &(sim_censor_rule_stats){{0}}),
                    MESH_ERR_INVAL);
    CU_ASSERT_STRING_EQUAL(sim_censor_action_name(SIM_CENSOR_THROTTLE), "throttle");
    CU_ASSERT_STRING_EQUAL(sim_censor_action_name(42), "?");
    sim_censor_free(c);
    sim_censor_free(NULL);
}

static CU_TestInfo tests[] = {
    {"SNI rule blocks meshara.node, not www.example.org", test_sni_rule},
    {"SNI domain and subdomain modes", test_sni_suffix},
    {"ALPN rule with RST resets both ends", test_alpn_rule_rst},
    {"JA3 rule tells two cipher lists apart", test_ja3_rule},
    {"censor in front of the server", test_at_server_side},
    {"hellos from the node's own TLS module", test_node_tls_hello},
    {"hello in reordered segments is reassembled", test_segmented_reordered_hello},
    {"non-TLS first bytes never match a hello rule", test_not_tls},
    {"IP rule decides at the SYN: connect times out", test_ip_rule_at_syn},
    {"RST at the SYN: connect refused", test_rst_at_syn_refuses},
    {"drop after the hello: the stream times out", test_drop_data_times_out},
    {"throttle delivers at the configured rate", test_throttle_rate},
    {"throttle drops beyond its queue", test_throttle_queue_drops},
    {"residual blocking within the window, not after", test_residual},
    {"residual blocking per client", test_residual_per_client_drop},
    {"entropy and length of the first payload", test_entropy_and_length},
    {"UDP port rule", test_udp_port_rule},
    {"switched off passes everything", test_switch_off_and_on},
    {"switched off from its own decision callback", test_switch_off_inside_callback},
    {"allow rule and decision order", test_allow_and_order},
    {"flow table full fails open", test_flow_limit_fails_open},
    {"idle flows are forgotten", test_idle_flows_forgotten},
    {"rule validation and limits", test_rule_validation},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"censor", suite_init, suite_clean, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
