/* test_stun_server.c — the STUN responder (node/core/stun_server.h): the answer builder for
 * every kind of request (RFC 8489 §6.3, RFC 5780 §7 and §6 of the header's list), its
 * configuration checks, and the server in the simulator over UDP (four sockets, CHANGE-REQUEST
 * answered from the other host) and TCP (pipelined requests, bad bytes, the connection bound,
 * idle connections closed on time).
 *
 * Topology: s1 198.51.100.1 (primary, :3478) and s2 198.51.100.2 (alternate, :3479) and a
 * client 198.51.100.9, all on the core; access links 5 ms, core 10 ms (RTT 40 ms). */
#include "mesh_test.h"

#include <stdlib.h>
#include <string.h>

#include "core/stun_server.h"
#include "sim/driver.h"

#define MS MESH_NS_PER_MS
#define RTT (40 * MS)
#define IP_S1 SIM_IP4(198, 51, 100, 1)
#define IP_S2 SIM_IP4(198, 51, 100, 2)
#define IP_C SIM_IP4(198, 51, 100, 9)
enum { P1 = 3478, P2 = 3479, H_S1 = 0, H_S2, H_C, NH, MAX_RX = 16 };

static mesh_stun_server_cfg cfg_alt(void)
{
    mesh_stun_server_cfg c;
    mesh_stun_server_cfg_default(&c);
    c.primary = mesh_addr_v4(IP_S1, P1);
    c.alternate = mesh_addr_v4(IP_S2, P2);
    return c;
}

/* A request of method/class with optional CHANGE-REQUEST flags and an extra attribute. */
static size_t request(uint8_t *b, size_t cap, unsigned method, unsigned cls, int change,
                      uint16_t extra, int fp)
{
    static const uint8_t tid[12] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2};
    mesh_stun_enc e;
    mesh_stun_enc_init(&e, b, cap, mesh_stun_type(method, cls), tid);
    if (change >= 0) /* raw, so that bad flags can be sent */
        mesh_stun_enc_u32(&e, MESH_STUN_A_CHANGE_REQUEST, (uint32_t)change);
    if (extra)
        mesh_stun_enc_attr(&e, extra, "abcd", 4);
    if (fp)
        mesh_stun_enc_fingerprint(&e);
    size_t len = 0;
    CU_ASSERT_EQUAL(mesh_stun_enc_finish(&e, &len), MESH_OK);
    return len;
}

/* Run the answer builder; returns its code, decodes the answer into *r (buffer ans). */
static int answer(const mesh_stun_server_cfg *cfg, const uint8_t *req, size_t len, unsigned where,
                  int tcp, uint8_t *ans, mesh_stun_msg *r, unsigned *via)
{
    mesh_stun_msg m;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_decode(&m, req, len), MESH_OK);
    mesh_addr from = mesh_addr_v4(IP_C, 40000);
    size_t alen = 0;
    int rc = mesh_stun_server_answer(cfg, &m, &from, where, tcp, ans, MESH_STUN_SERVER_MAX_ANSWER,
                                     &alen, via);
    if (rc == MESH_OK) {
        CU_ASSERT_EQUAL_FATAL(mesh_stun_decode(r, ans, alen), MESH_OK);
        CU_ASSERT(memcmp(r->tid, m.tid, 12) == 0);
    }
    return rc;
}

static mesh_addr get(const mesh_stun_msg *r, uint16_t type)
{
    mesh_addr a = {0};
    const mesh_stun_attr *at = mesh_stun_find(r, type);
    if (at)
        CU_ASSERT_EQUAL(mesh_stun_get_addr(r, at, &a), MESH_OK);
    return a;
}

static int error_code(const mesh_stun_msg *r)
{
    int code = 0;
    const mesh_stun_attr *a = mesh_stun_find(r, MESH_STUN_A_ERROR_CODE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(mesh_stun_get_error(r, a, &code, NULL, NULL), MESH_OK);
    return code;
}

/* Every socket x every CHANGE-REQUEST: the answer leaves from the changed socket, names it
 * in RESPONSE-ORIGIN, and OTHER-ADDRESS is the receiving socket's opposite in IP and port. */
static void test_answer_change_matrix(void)
{
    mesh_stun_server_cfg cfg = cfg_alt();
    uint8_t req[256], ans[MESH_STUN_SERVER_MAX_ANSWER];
    const mesh_addr socks[4] = {mesh_addr_v4(IP_S1, P1), mesh_addr_v4(IP_S2, P1),
                                mesh_addr_v4(IP_S1, P2), mesh_addr_v4(IP_S2, P2)};
    for (unsigned where = 0; where < 4; where++)
        for (unsigned change = 0; change < 4; change++) {
            size_t n = request(req, sizeof req, MESH_STUN_BINDING, MESH_STUN_REQUEST,
                               (int)(change * 2), 0, 1);
            mesh_stun_msg r;
            unsigned via = 99;
            CU_ASSERT_EQUAL_FATAL(answer(&cfg, req, n, where, 0, ans, &r, &via), MESH_OK);
            unsigned want = where ^ ((change & 2) ? 1u : 0u) ^ ((change & 1) ? 2u : 0u);
            CU_ASSERT_EQUAL(via, want);
            CU_ASSERT_EQUAL(r.cls, MESH_STUN_SUCCESS);
            mesh_addr from = mesh_addr_v4(IP_C, 40000);
            mesh_addr mapped = get(&r, MESH_STUN_A_XOR_MAPPED_ADDRESS);
            mesh_addr origin = get(&r, MESH_STUN_A_RESPONSE_ORIGIN);
            mesh_addr other = get(&r, MESH_STUN_A_OTHER_ADDRESS);
            CU_ASSERT(mesh_addr_equal(&mapped, &from));
            CU_ASSERT(mesh_addr_equal(&origin, &socks[want]));
            CU_ASSERT(mesh_addr_equal(&other, &socks[where ^ 3]));
            CU_ASSERT_EQUAL(mesh_stun_check_fingerprint(&r), MESH_OK);
        }
}

static void test_answer_refusals(void)
{
    mesh_stun_server_cfg cfg = cfg_alt(), plain;
    mesh_stun_server_cfg_default(&plain);
    plain.primary = mesh_addr_v4(IP_S1, P1);
    uint8_t req[256], ans[MESH_STUN_SERVER_MAX_ANSWER];
    mesh_stun_msg r;
    unsigned via;
    /* an unknown comprehension-required attribute: 420 listing it */
    size_t n = request(req, sizeof req, MESH_STUN_BINDING, MESH_STUN_REQUEST, -1, 0x0024, 1);
    CU_ASSERT_EQUAL_FATAL(answer(&cfg, req, n, 0, 0, ans, &r, &via), MESH_OK);
    CU_ASSERT_EQUAL(r.cls, MESH_STUN_ERROR);
    CU_ASSERT_EQUAL(error_code(&r), 420);
    uint16_t unk[4];
    size_t nunk = 0;
    CU_ASSERT_EQUAL(mesh_stun_get_unknown(&r, mesh_stun_find(&r, MESH_STUN_A_UNKNOWN_ATTRIBUTES),
                                          unk, 4, &nunk),
                    MESH_OK);
    CU_ASSERT(nunk == 1 && unk[0] == 0x0024);
    /* an unknown comprehension-optional one is fine */
    n = request(req, sizeof req, MESH_STUN_BINDING, MESH_STUN_REQUEST, -1, 0x8777, 1);
    CU_ASSERT_EQUAL_FATAL(answer(&cfg, req, n, 0, 0, ans, &r, &via), MESH_OK);
    CU_ASSERT_EQUAL(r.cls, MESH_STUN_SUCCESS);
    /* CHANGE-REQUEST without an alternate address: 420 naming it */
    n = request(req, sizeof req, MESH_STUN_BINDING, MESH_STUN_REQUEST, MESH_STUN_CHANGE_IP, 0, 1);
    CU_ASSERT_EQUAL_FATAL(answer(&plain, req, n, 0, 0, ans, &r, &via), MESH_OK);
    CU_ASSERT_EQUAL(error_code(&r), 420);
    CU_ASSERT_EQUAL(via, 0);
    /* ... with flags 0 it is just a Binding */
    n = request(req, sizeof req, MESH_STUN_BINDING, MESH_STUN_REQUEST, 0, 0, 1);
    CU_ASSERT_EQUAL_FATAL(answer(&plain, req, n, 0, 0, ans, &r, &via), MESH_OK);
    CU_ASSERT_EQUAL(r.cls, MESH_STUN_SUCCESS);
    CU_ASSERT_PTR_NULL(mesh_stun_find(&r, MESH_STUN_A_OTHER_ADDRESS));
    CU_ASSERT_PTR_NOT_NULL(mesh_stun_find(&r, MESH_STUN_A_RESPONSE_ORIGIN));
    /* CHANGE-REQUEST over TCP: 400 */
    n = request(req, sizeof req, MESH_STUN_BINDING, MESH_STUN_REQUEST, MESH_STUN_CHANGE_PORT, 0, 1);
    CU_ASSERT_EQUAL_FATAL(answer(&cfg, req, n, 0, 1, ans, &r, &via), MESH_OK);
    CU_ASSERT_EQUAL(error_code(&r), 400);
    CU_ASSERT_EQUAL(via, 0);
    /* bad CHANGE-REQUEST flags: 400 */
    n = request(req, sizeof req, MESH_STUN_BINDING, MESH_STUN_REQUEST, 1, 0, 1);
    CU_ASSERT_EQUAL_FATAL(answer(&cfg, req, n, 0, 0, ans, &r, &via), MESH_OK);
    CU_ASSERT_EQUAL(error_code(&r), 400);
    /* another method: 400, same method in the answer */
    n = request(req, sizeof req, MESH_STUN_ALLOCATE, MESH_STUN_REQUEST, -1, 0, 1);
    CU_ASSERT_EQUAL_FATAL(answer(&cfg, req, n, 0, 0, ans, &r, &via), MESH_OK);
    CU_ASSERT_EQUAL(r.method, MESH_STUN_ALLOCATE);
    CU_ASSERT_EQUAL(error_code(&r), 400);
    /* no answer at all: an indication, a response, a wrong FINGERPRINT */
    n = request(req, sizeof req, MESH_STUN_BINDING, MESH_STUN_INDICATION, -1, 0, 1);
    CU_ASSERT_EQUAL(answer(&cfg, req, n, 0, 0, ans, &r, &via), MESH_ERR_PROTOCOL);
    n = request(req, sizeof req, MESH_STUN_BINDING, MESH_STUN_SUCCESS, -1, 0, 1);
    CU_ASSERT_EQUAL(answer(&cfg, req, n, 0, 0, ans, &r, &via), MESH_ERR_PROTOCOL);
    n = request(req, sizeof req, MESH_STUN_BINDING, MESH_STUN_REQUEST, -1, 0, 1);
    req[n - 1] ^= 1;
    CU_ASSERT_EQUAL(answer(&cfg, req, n, 0, 0, ans, &r, &via), MESH_ERR_PROTOCOL);
    /* FINGERPRINT only when asked (fingerprint 0): the request had none, the answer has none */
    cfg.fingerprint = 0;
    n = request(req, sizeof req, MESH_STUN_BINDING, MESH_STUN_REQUEST, -1, 0, 0);
    CU_ASSERT_EQUAL_FATAL(answer(&cfg, req, n, 0, 0, ans, &r, &via), MESH_OK);
    CU_ASSERT_EQUAL(mesh_stun_check_fingerprint(&r), MESH_ERR_NOT_FOUND);
    n = request(req, sizeof req, MESH_STUN_BINDING, MESH_STUN_REQUEST, -1, 0, 1);
    CU_ASSERT_EQUAL_FATAL(answer(&cfg, req, n, 0, 0, ans, &r, &via), MESH_OK);
    CU_ASSERT_EQUAL(mesh_stun_check_fingerprint(&r), MESH_OK);
    /* SOFTWARE cut to its bound; a buffer too small */
    char sw[300];
    memset(sw, 's', sizeof sw - 1);
    sw[sizeof sw - 1] = 0;
    cfg.software = sw;
    CU_ASSERT_EQUAL_FATAL(answer(&cfg, req, n, 0, 0, ans, &r, &via), MESH_OK);
    CU_ASSERT_EQUAL(mesh_stun_find(&r, MESH_STUN_A_SOFTWARE)->len, MESH_STUN_SERVER_MAX_SOFTWARE);
    mesh_stun_msg m;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_decode(&m, req, n), MESH_OK);
    mesh_addr from = mesh_addr_v4(IP_C, 1);
    size_t alen;
    CU_ASSERT_EQUAL(mesh_stun_server_answer(&cfg, &m, &from, 0, 0, ans, 40, &alen, &via),
                    MESH_ERR_TOO_BIG);
    CU_ASSERT_EQUAL(mesh_stun_server_answer(&cfg, &m, &from, 4, 0, ans, 512, &alen, &via),
                    MESH_ERR_INVAL);
}

/* ---- in the simulator ---------------------------------------------------------------------- */

typedef struct tw {
    sim_world *w;
    sim_host *h[NH];
    sim_driver *d[NH];
    mesh_env env[NH];
} tw;

static void tw_init(tw *t)
{
    memset(t, 0, sizeof *t);
    CU_ASSERT_EQUAL_FATAL(sim_world_new(&t->w, 3, NULL), MESH_OK);
    sim_sched_set_event_cap(sim_world_sched(t->w), 1000000);
    sim_net *net = sim_world_net(t->w);
    sim_net_set_core(net, &(sim_link_cfg){.latency = 10 * MS}, NULL, NULL);
    sim_link_cfg l5 = {.latency = 5 * MS};
    const sim_host_cfg hosts[NH] = {
        {"s1", IP_S1, NULL, l5, l5}, {"s2", IP_S2, NULL, l5, l5}, {"c", IP_C, NULL, l5, l5}};
    for (int i = 0; i < NH; i++) {
        CU_ASSERT_EQUAL_FATAL(sim_net_add_host(net, &hosts[i], &t->h[i]), MESH_OK);
        CU_ASSERT_EQUAL_FATAL(sim_driver_new(&t->d[i], t->w, t->h[i]), MESH_OK);
        t->env[i] = sim_driver_env(t->d[i]);
    }
}

static void tw_free(tw *t)
{
    for (int i = 0; i < NH; i++)
        sim_driver_free(t->d[i]);
    sim_world_free(t->w);
}

static mesh_time tw_now(tw *t)
{
    return sim_sched_now(sim_world_sched(t->w));
}

static void tw_run_until(tw *t, mesh_time at)
{
    CU_ASSERT_EQUAL(sim_sched_run_until(sim_world_sched(t->w), at), MESH_OK);
}

static void test_config_checks(void)
{
    tw t;
    tw_init(&t);
    mesh_stun_server *s = NULL;
    mesh_stun_server_cfg c = cfg_alt();
    c.primary.port = 0;
    CU_ASSERT_EQUAL(mesh_stun_server_new(&s, &t.env[H_S1], &t.env[H_S2], &c), MESH_ERR_INVAL);
    c = cfg_alt();
    c.alternate.port = P1;
    CU_ASSERT_EQUAL(mesh_stun_server_new(&s, &t.env[H_S1], &t.env[H_S2], &c), MESH_ERR_INVAL);
    c = cfg_alt();
    c.alternate = mesh_addr_v4(IP_S1, P2);
    CU_ASSERT_EQUAL(mesh_stun_server_new(&s, &t.env[H_S1], &t.env[H_S2], &c), MESH_ERR_INVAL);
    c = cfg_alt();
    c.primary = mesh_addr_v4(0, P1);
    CU_ASSERT_EQUAL(mesh_stun_server_new(&s, &t.env[H_S1], &t.env[H_S2], &c), MESH_ERR_INVAL);
    c = cfg_alt();
    CU_ASSERT_EQUAL_FATAL(mesh_addr_parse(&c.alternate, "[2001:db8::2]:3479"), MESH_OK);
    CU_ASSERT_EQUAL(mesh_stun_server_new(&s, &t.env[H_S1], &t.env[H_S2], &c), MESH_ERR_INVAL);
    c = cfg_alt();
    c.udp = c.tcp = 0;
    CU_ASSERT_EQUAL(mesh_stun_server_new(&s, &t.env[H_S1], &t.env[H_S2], &c), MESH_ERR_INVAL);
    c = cfg_alt(); /* s1 cannot bind s2's address: the alternate env is needed */
    CU_ASSERT_EQUAL(mesh_stun_server_new(&s, &t.env[H_S1], NULL, &c), MESH_ERR_ADDR);
    CU_ASSERT_PTR_NULL(s);
    c = cfg_alt();
    CU_ASSERT_EQUAL_FATAL(mesh_stun_server_new(&s, &t.env[H_S1], &t.env[H_S2], &c), MESH_OK);
    mesh_stun_server *s2 = NULL; /* the same addresses again: taken (TCP listeners) */
    c.udp = 0;
    CU_ASSERT_EQUAL(mesh_stun_server_new(&s2, &t.env[H_S1], &t.env[H_S2], &c), MESH_ERR_ADDR);
    mesh_stun_server_free(s);
    mesh_stun_server_free(NULL);
    tw_free(&t);
}

typedef struct urx {
    tw *t;
    int n;
    mesh_addr from[MAX_RX];
    mesh_time at[MAX_RX];
} urx;

static void urx_on_dgram(mesh_dgram *d, const mesh_addr *from, const uint8_t *data, size_t len,
                         void *ud)
{
    (void)d;
    urx *x = ud;
    mesh_stun_msg m;
    CU_ASSERT_EQUAL(mesh_stun_decode(&m, data, len), MESH_OK);
    CU_ASSERT_FATAL(x->n < MAX_RX);
    x->from[x->n] = *from;
    x->at[x->n++] = tw_now(x->t);
}

/* UDP to each of the four sockets with CHANGE-REQUEST(IP and port): each answer comes from
 * the opposite socket, one RTT later; garbage is dropped and counted. */
static void test_udp_sockets(void)
{
    tw t;
    tw_init(&t);
    mesh_stun_server_cfg c = cfg_alt();
    mesh_stun_server *s = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_server_new(&s, &t.env[H_S1], &t.env[H_S2], &c), MESH_OK);
    urx x = {.t = &t};
    int err;
    mesh_addr any = mesh_addr_v4(0, 0);
    mesh_dgram *d = t.env[H_C].ops->dgram_bind(t.env[H_C].obj, &any, urx_on_dgram, &x, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    const mesh_addr socks[4] = {mesh_addr_v4(IP_S1, P1), mesh_addr_v4(IP_S2, P1),
                                mesh_addr_v4(IP_S1, P2), mesh_addr_v4(IP_S2, P2)};
    uint8_t req[128];
    size_t n = request(req, sizeof req, MESH_STUN_BINDING, MESH_STUN_REQUEST,
                       MESH_STUN_CHANGE_IP | MESH_STUN_CHANGE_PORT, 0, 1);
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(t.env[H_C].ops->dgram_send(t.env[H_C].obj, d, &socks[i], req, n), MESH_OK);
        tw_run_until(&t, (mesh_time)(i + 1) * MESH_NS_PER_S);
        CU_ASSERT_EQUAL_FATAL(x.n, i + 1);
        CU_ASSERT(mesh_addr_equal(&x.from[i], &socks[i ^ 3]));
        CU_ASSERT_EQUAL(x.at[i], (mesh_time)i * MESH_NS_PER_S + RTT);
    }
    CU_ASSERT_EQUAL(t.env[H_C].ops->dgram_send(t.env[H_C].obj, d, &socks[0], "junk", 4), MESH_OK);
    tw_run_until(&t, 10 * MESH_NS_PER_S);
    mesh_stun_server_stats st = mesh_stun_server_get_stats(s);
    CU_ASSERT_EQUAL(st.answered, 4);
    CU_ASSERT_EQUAL(st.changed, 4);
    CU_ASSERT_EQUAL(st.dropped, 1);
    CU_ASSERT_EQUAL(x.n, 4);
    t.env[H_C].ops->dgram_close(t.env[H_C].obj, d);
    mesh_stun_server_free(s);
    tw_free(&t);
}

typedef struct trx {
    tw *t;
    mesh_stream *s;
    uint8_t buf[4096];
    size_t have;
    int closed, reason;
    mesh_time closed_at;
} trx;

static void trx_on_data(mesh_stream *s, const uint8_t *data, size_t len, void *ud)
{
    (void)s;
    trx *x = ud;
    CU_ASSERT_FATAL(x->have + len <= sizeof x->buf);
    memcpy(x->buf + x->have, data, len);
    x->have += len;
}

static void trx_on_closed(mesh_stream *s, int reason, void *ud)
{
    (void)s;
    trx *x = ud;
    x->closed = 1;
    x->reason = reason;
    x->closed_at = tw_now(x->t);
}

static const mesh_stream_cbs TRX_CBS = {.on_data = trx_on_data, .on_closed = trx_on_closed};

static void trx_connect(tw *t, trx *x, const mesh_addr *to)
{
    memset(x, 0, sizeof *x);
    x->t = t;
    int err;
    x->s = t->env[H_C].ops->connect(t->env[H_C].obj, to, &TRX_CBS, x, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x->s);
}

static void trx_write(tw *t, trx *x, const void *b, size_t n)
{
    CU_ASSERT_EQUAL(t->env[H_C].ops->stream_write(t->env[H_C].obj, x->s, b, n), MESH_OK);
}

/* Messages in the received bytes. */
static int trx_messages(const trx *x)
{
    int k = 0;
    size_t pos = 0, total;
    while (pos < x->have && mesh_stun_frame_len(x->buf + pos, x->have - pos, &total) == MESH_OK &&
           total <= x->have - pos) {
        mesh_stun_msg m;
        CU_ASSERT_EQUAL(mesh_stun_decode(&m, x->buf + pos, total), MESH_OK);
        k++;
        pos += total;
    }
    return k;
}

static void test_tcp(void)
{
    tw t;
    tw_init(&t);
    mesh_stun_server_cfg c = cfg_alt();
    c.max_conns = 2;
    c.tcp_idle = 5 * MESH_NS_PER_S;
    mesh_stun_server *s = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_server_new(&s, &t.env[H_S1], &t.env[H_S2], &c), MESH_OK);
    mesh_addr p = mesh_addr_v4(IP_S1, P1), alt = mesh_addr_v4(IP_S2, P2);
    uint8_t req[256];
    size_t n = request(req, sizeof req, MESH_STUN_BINDING, MESH_STUN_REQUEST, -1, 0, 1);
    /* two requests in one write, split oddly: two answers */
    trx a, b, d;
    trx_connect(&t, &a, &p);
    uint8_t two[512];
    memcpy(two, req, n);
    memcpy(two + n, req, n);
    trx_write(&t, &a, two, 7);
    trx_write(&t, &a, two + 7, 2 * n - 7);
    /* the alternate's TCP listener answers too; then garbage closes it */
    trx_connect(&t, &b, &alt);
    trx_write(&t, &b, req, n);
    tw_run_until(&t, MESH_NS_PER_S);
    CU_ASSERT_EQUAL(trx_messages(&a), 2);
    CU_ASSERT_EQUAL(trx_messages(&b), 1);
    /* a third connection while two are open: refused at accept */
    trx_connect(&t, &d, &p);
    tw_run_until(&t, 2 * MESH_NS_PER_S);
    CU_ASSERT(d.closed);
    CU_ASSERT_EQUAL(d.reason, MESH_ERR_RESET);
    trx_write(&t, &b, "GET / HTTP/1.1\r\n\r\n", 18); /* 18 bytes: refused before a header */
    tw_run_until(&t, 3 * MESH_NS_PER_S);
    CU_ASSERT(b.closed);
    mesh_stun_server_stats st = mesh_stun_server_get_stats(s);
    CU_ASSERT_EQUAL(st.answered, 3);
    CU_ASSERT_EQUAL(st.tcp_closed_bad, 1);
    CU_ASSERT_EQUAL(st.tcp_refused, 1);
    /* a request claiming more than MAX_REQUEST bytes closes the connection */
    trx e;
    trx_connect(&t, &e, &p);
    uint8_t big[MESH_STUN_HDR_LEN];
    memcpy(big, req, sizeof big);
    big[2] = 0x10; /* 4 KiB */
    big[3] = 0x00;
    trx_write(&t, &e, big, sizeof big);
    tw_run_until(&t, 4 * MESH_NS_PER_S);
    CU_ASSERT(e.closed);
    CU_ASSERT_EQUAL(mesh_stun_server_get_stats(s).tcp_closed_bad, 2);
    /* a is idle since its answers (at 40 ms): closed tcp_idle after its last bytes came in */
    CU_ASSERT(!a.closed);
    tw_run_until(&t, 10 * MESH_NS_PER_S);
    CU_ASSERT(a.closed);
    CU_ASSERT_EQUAL(a.reason, MESH_OK);
    /* its requests arrived at 1.5 RTT (after the connect); the FIN takes half an RTT */
    CU_ASSERT_EQUAL(a.closed_at, 3 * RTT / 2 + 5 * MESH_NS_PER_S + RTT / 2);
    CU_ASSERT_EQUAL(mesh_stun_server_get_stats(s).tcp_closed_idle, 1);
    mesh_stun_server_free(s);
    tw_free(&t);
}

static CU_TestInfo server_tests[] = {
    {"answers: CHANGE-REQUEST matrix", test_answer_change_matrix},
    {"answers: refusals and options", test_answer_refusals},
    {"configuration checks", test_config_checks},
    {"UDP: four sockets", test_udp_sockets},
    {"TCP: pipelining, bad bytes, bounds, idle", test_tcp},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"stun_server", NULL, NULL, NULL, NULL, server_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
