/* test_stun_client.c — the STUN client (node/core/stun_client.h) in the simulator, in exact
 * virtual time: RFC 8489 §6.2.1's retransmission schedule to the nanosecond, answers after
 * lost requests, forged and damaged answers ignored and counted while the transaction still
 * times out cleanly, error answers, TCP (2 RTT, Ti, bad bytes), the bounds, freeing inside a
 * callback, and RFC 5780 discovery against the responder (stun_server.h) behind each of the
 * simulator's NAT kinds.
 *
 * Topology (one-way latencies): every host's access link 5 ms each way, the core 10 ms, so
 * a client on the core or behind a LAN gateway (site link 0) sees RTT 40 ms to the server.
 *
 *   client 10.0.0.2 (LAN "home", NAT on 203.0.113.7)  or  client 198.51.100.9 (core)
 *                                 \                     /
 *                                  core 10 ms
 *                      /               |                 \
 *   server 198.51.100.1:3478     alternate 198.51.100.2:3479    forger 198.51.100.66
 */
#include "mesh_test.h"

#include <stdlib.h>
#include <string.h>

#include "core/stun_client.h"
#include "core/stun_server.h"
#include "sim/driver.h"
#include "sim/nat.h"

#define MS MESH_NS_PER_MS
#define RTT (40 * MS)
#define ONE_WAY (RTT / 2)
#define IP_S1 SIM_IP4(198, 51, 100, 1)
#define IP_S2 SIM_IP4(198, 51, 100, 2)
#define IP_FORGER SIM_IP4(198, 51, 100, 66)
#define IP_CLIENT_CORE SIM_IP4(198, 51, 100, 9)
#define IP_CLIENT_LAN SIM_IP4(10, 0, 0, 2)
#define IP_NAT SIM_IP4(203, 0, 113, 7)
enum { PORT1 = 3478, PORT2 = 3479, MAX_REC = 64, H_S1 = 0, H_S2, H_FORGER, H_CLIENT, NH };

typedef struct tw {
    sim_world *w;
    sim_host *h[NH];
    sim_driver *d[NH];
    mesh_env env[NH];
    sim_nat *nat;
} tw;

/* nat NULL: the client on the core; else behind a NAT of that kind. */
static void tw_init(tw *t, const sim_nat_cfg *nat)
{
    memset(t, 0, sizeof *t);
    CU_ASSERT_EQUAL_FATAL(sim_world_new(&t->w, 5, NULL), MESH_OK);
    sim_sched_set_event_cap(sim_world_sched(t->w), 1000000);
    sim_net *net = sim_world_net(t->w);
    sim_net_set_core(net, &(sim_link_cfg){.latency = 10 * MS}, NULL, NULL);
    sim_lan *lan = NULL;
    if (nat) {
        sim_lan_cfg lc = {"home", {0}, {0}, IP_NAT, 1};
        CU_ASSERT_EQUAL_FATAL(sim_net_add_lan(net, &lc, &lan), MESH_OK);
        CU_ASSERT_EQUAL_FATAL(sim_nat_new(&t->nat, net, lan, nat), MESH_OK);
    }
    sim_link_cfg l5 = {.latency = 5 * MS};
    const sim_host_cfg hosts[NH] = {
        {"s1", IP_S1, NULL, l5, l5},
        {"s2", IP_S2, NULL, l5, l5},
        {"forger", IP_FORGER, NULL, l5, l5},
        {"client", nat ? IP_CLIENT_LAN : IP_CLIENT_CORE, lan, l5, l5},
    };
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
    sim_nat_free(t->nat);
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

static mesh_addr server_addr(void)
{
    return mesh_addr_v4(IP_S1, PORT1);
}

/* The real responder on s1 (+ s2 as its alternate address when alt is set). */
static mesh_stun_server *start_server(tw *t, int alt)
{
    mesh_stun_server_cfg cfg;
    mesh_stun_server_cfg_default(&cfg);
    cfg.primary = server_addr();
    if (alt)
        cfg.alternate = mesh_addr_v4(IP_S2, PORT2);
    mesh_stun_server *s = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_server_new(&s, &t->env[H_S1], &t->env[H_S2], &cfg), MESH_OK);
    return s;
}

/* ---- what the client reports ------------------------------------------------------------ */

typedef struct rec {
    tw *t;
    int n;
    mesh_stun_result r[MAX_REC];
    mesh_time at[MAX_REC];
    mesh_stun_client **free_me; /* free the client inside the callback */
} rec;

static void on_result(void *ud, const mesh_stun_result *r)
{
    rec *x = ud;
    CU_ASSERT_FATAL(x->n < MAX_REC);
    x->r[x->n] = *r;
    x->at[x->n] = tw_now(x->t);
    x->n++;
    if (x->free_me) {
        mesh_stun_client_free(*x->free_me);
        *x->free_me = NULL;
    }
}

static mesh_stun_client *new_client(tw *t, mesh_time rto, unsigned rc, unsigned rm)
{
    mesh_stun_client_cfg cfg;
    mesh_stun_client_cfg_default(&cfg);
    cfg.rto = rto;
    cfg.rc = rc;
    cfg.rm = rm;
    mesh_stun_client *c = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_client_new(&c, &t->env[H_CLIENT], &cfg), MESH_OK);
    return c;
}

/* ---- a scripted fake server on s1 (and the forger): records requests, answers as told --- */

enum fake_mode {
    FAKE_SILENT = 0, /* never answer */
    FAKE_FROM_NTH,   /* answer correctly from request number `nth` on (1-based) */
    FAKE_FORGERIES,  /* answer each request with every forgery, never correctly */
    FAKE_ERROR_420,  /* answer with an error response */
    FAKE_NO_CHANGE,  /* a server that ignores CHANGE-REQUEST: answers from its own address */
    FAKE_MI,         /* MESSAGE-INTEGRITY with a wrong key on request 1, the right one after */
};

typedef struct fake {
    tw *t;
    int mode;
    int nth;
    mesh_dgram *d, *forger;
    int n;
    mesh_time at[MAX_REC];
    uint8_t tid[MESH_STUN_TID_LEN];
} fake;

static size_t fake_answer(const uint8_t tid[12], const mesh_addr *mapped, uint8_t *out, size_t cap,
                          int fp)
{
    mesh_stun_enc e;
    mesh_stun_enc_init(&e, out, cap, mesh_stun_type(MESH_STUN_BINDING, MESH_STUN_SUCCESS), tid);
    mesh_stun_enc_addr(&e, MESH_STUN_A_XOR_MAPPED_ADDRESS, mapped);
    if (fp)
        mesh_stun_enc_fingerprint(&e);
    size_t len = 0;
    CU_ASSERT_EQUAL(mesh_stun_enc_finish(&e, &len), MESH_OK);
    return len;
}

static void send_from(fake *f, mesh_dgram *d, const mesh_addr *to, const uint8_t *b, size_t n)
{
    int who = d == f->d ? H_S1 : H_FORGER;
    CU_ASSERT_EQUAL(f->t->env[who].ops->dgram_send(f->t->env[who].obj, d, to, b, n), MESH_OK);
}

/* Every way an answer can be wrong, each with what the client must count. */
static void send_forgeries(fake *f, const mesh_stun_msg *m, const mesh_addr *from)
{
    uint8_t b[512], tid2[12];
    size_t n = fake_answer(m->tid, from, b, sizeof b, 1);
    memcpy(tid2, m->tid, 12);
    tid2[11] ^= 1;
    uint8_t w[512];
    memcpy(w, b, n);
    w[n - 1] ^= 0xff; /* bad FINGERPRINT */
    send_from(f, f->d, from, w, n);
    send_from(f, f->d, from, b, n - 3);                  /* truncated */
    size_t n2 = fake_answer(tid2, from, w, sizeof w, 1); /* another transaction's id */
    send_from(f, f->d, from, w, n2);
    send_from(f, f->forger, from, b, n); /* right bytes, wrong source */
    send_from(f, f->d, from, (const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 18);
    memcpy(w, b, n);
    w[0] = 0x00;
    w[1] = 0x11; /* a Binding indication */
    send_from(f, f->d, from, w, n);
    mesh_stun_enc e;
    mesh_stun_enc_init(&e, w, sizeof w, mesh_stun_type(MESH_STUN_ALLOCATE, MESH_STUN_SUCCESS),
                       m->tid); /* a success of another method */
    mesh_stun_enc_addr(&e, MESH_STUN_A_XOR_MAPPED_ADDRESS, from);
    CU_ASSERT_EQUAL(mesh_stun_enc_finish(&e, &n2), MESH_OK);
    send_from(f, f->d, from, w, n2);
    mesh_stun_enc_init(&e, w, sizeof w, mesh_stun_type(MESH_STUN_BINDING, MESH_STUN_SUCCESS),
                       m->tid); /* no mapped address */
    mesh_stun_enc_fingerprint(&e);
    CU_ASSERT_EQUAL(mesh_stun_enc_finish(&e, &n2), MESH_OK);
    send_from(f, f->d, from, w, n2);
}

static void fake_on_dgram(mesh_dgram *d, const mesh_addr *from, const uint8_t *data, size_t len,
                          void *ud)
{
    fake *f = ud;
    if (d != f->d)
        return;
    mesh_stun_msg m;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_decode(&m, data, len), MESH_OK);
    CU_ASSERT_EQUAL(mesh_stun_check_fingerprint(&m), MESH_OK);
    if (f->mode == FAKE_MI) {
        CU_ASSERT_EQUAL(
            mesh_stun_check_integrity(&m, (const uint8_t *)"secret", 6, MESH_STUN_MI_SHA1),
            MESH_OK);
        CU_ASSERT_PTR_NOT_NULL(mesh_stun_find(&m, MESH_STUN_A_USERNAME));
    }
    CU_ASSERT_FATAL(f->n < MAX_REC);
    f->at[f->n++] = tw_now(f->t);
    memcpy(f->tid, m.tid, 12);
    uint8_t b[512];
    size_t n;
    if (f->mode == FAKE_FROM_NTH && f->n >= f->nth) {
        n = fake_answer(m.tid, from, b, sizeof b, 1);
        send_from(f, f->d, from, b, n);
    } else if (f->mode == FAKE_FORGERIES) {
        send_forgeries(f, &m, from);
    } else if (f->mode == FAKE_ERROR_420) {
        mesh_stun_enc e;
        mesh_stun_enc_init(&e, b, sizeof b, mesh_stun_type(MESH_STUN_BINDING, MESH_STUN_ERROR),
                           m.tid);
        mesh_stun_enc_error(&e, 420, "Unknown Attribute");
        CU_ASSERT_EQUAL(mesh_stun_enc_finish(&e, &n), MESH_OK);
        send_from(f, f->d, from, b, n);
    } else if (f->mode == FAKE_MI) {
        mesh_stun_enc e;
        mesh_stun_enc_init(&e, b, sizeof b, mesh_stun_type(MESH_STUN_BINDING, MESH_STUN_SUCCESS),
                           m.tid);
        mesh_stun_enc_addr(&e, MESH_STUN_A_XOR_MAPPED_ADDRESS, from);
        mesh_stun_enc_integrity(&e, (const uint8_t *)(f->n == 1 ? "Secret" : "secret"), 6);
        mesh_stun_enc_fingerprint(&e);
        CU_ASSERT_EQUAL(mesh_stun_enc_finish(&e, &n), MESH_OK);
        send_from(f, f->d, from, b, n);
    } else if (f->mode == FAKE_NO_CHANGE) {
        mesh_addr other = mesh_addr_v4(IP_S2, PORT2);
        mesh_stun_enc e;
        mesh_stun_enc_init(&e, b, sizeof b, mesh_stun_type(MESH_STUN_BINDING, MESH_STUN_SUCCESS),
                           m.tid);
        mesh_stun_enc_addr(&e, MESH_STUN_A_XOR_MAPPED_ADDRESS, from);
        mesh_stun_enc_addr(&e, MESH_STUN_A_OTHER_ADDRESS, &other);
        CU_ASSERT_EQUAL(mesh_stun_enc_finish(&e, &n), MESH_OK);
        send_from(f, f->d, from, b, n);
    }
}

static void fake_start(tw *t, fake *f, int mode, int nth)
{
    memset(f, 0, sizeof *f);
    f->t = t;
    f->mode = mode;
    f->nth = nth;
    mesh_addr a = server_addr(), fa = mesh_addr_v4(IP_FORGER, PORT1);
    int err;
    f->d = t->env[H_S1].ops->dgram_bind(t->env[H_S1].obj, &a, fake_on_dgram, f, &err);
    f->forger = t->env[H_FORGER].ops->dgram_bind(t->env[H_FORGER].obj, &fa, fake_on_dgram, f, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->d);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->forger);
}

/* ---- UDP ----------------------------------------------------------------------------------- */

static void test_udp_binding(void)
{
    tw t;
    tw_init(&t, NULL);
    mesh_stun_server *srv = start_server(&t, 1);
    mesh_stun_client *c = new_client(&t, 0, 0, 0);
    rec x = {.t = &t};
    mesh_addr s = server_addr(), local;
    CU_ASSERT_EQUAL(mesh_stun_client_local(c, &local), MESH_OK);
    CU_ASSERT_EQUAL(mesh_stun_client_binding(c, &s, 0, on_result, &x), MESH_OK);
    CU_ASSERT_EQUAL(x.n, 0); /* never from inside the call */
    tw_run_until(&t, 10 * MESH_NS_PER_S);
    CU_ASSERT_EQUAL_FATAL(x.n, 1);
    CU_ASSERT_EQUAL(x.r[0].status, MESH_OK);
    CU_ASSERT_EQUAL(x.at[0], RTT); /* one round trip, exactly */
    CU_ASSERT_EQUAL(x.r[0].rtt, RTT);
    CU_ASSERT_EQUAL(x.r[0].requests, 1);
    CU_ASSERT(mesh_addr_equal(&x.r[0].mapped, &local)); /* no NAT: our own address */
    mesh_addr other = mesh_addr_v4(IP_S2, PORT2);
    CU_ASSERT(mesh_addr_equal(&x.r[0].other, &other));
    CU_ASSERT(mesh_addr_equal(&x.r[0].origin, &s));
    CU_ASSERT(mesh_addr_equal(&x.r[0].server, &s));
    mesh_stun_client_stats st = mesh_stun_client_get_stats(c);
    CU_ASSERT_EQUAL(st.transactions, 1);
    CU_ASSERT_EQUAL(st.succeeded, 1);
    CU_ASSERT_EQUAL(st.requests_sent, 1);
    CU_ASSERT_EQUAL(mesh_stun_server_get_stats(srv).answered, 1);
    mesh_stun_client_free(c);
    mesh_stun_server_free(srv);
    tw_free(&t);
}

/* RFC 8489 §6.2.1: Rc requests at 0, RTO, 3 RTO, 7 RTO..., timeout Rm x RTO after the last.
 * Zeros: the client's defaults, which must be the RFC's 500 ms, 7, 16. */
static void check_schedule(mesh_time rto, unsigned rc, unsigned rm)
{
    tw t;
    tw_init(&t, NULL);
    fake f;
    fake_start(&t, &f, FAKE_SILENT, 0);
    mesh_stun_client *c = new_client(&t, rto, rc, rm);
    if (!rto) {
        rto = 500 * MS;
        rc = 7;
        rm = 16;
    }
    rec x = {.t = &t};
    mesh_addr s = server_addr();
    CU_ASSERT_EQUAL(mesh_stun_client_binding(c, &s, 0, on_result, &x), MESH_OK);
    tw_run_until(&t, 200 * MESH_NS_PER_S);
    CU_ASSERT_EQUAL_FATAL(f.n, (int)rc);
    mesh_time sent = 0, wait = rto;
    for (unsigned i = 0; i < rc; i++) {
        CU_ASSERT_EQUAL(f.at[i], sent + ONE_WAY);
        sent += wait;
        wait *= 2;
    }
    mesh_time last = f.at[rc - 1] - ONE_WAY;
    CU_ASSERT_EQUAL_FATAL(x.n, 1);
    CU_ASSERT_EQUAL(x.r[0].status, MESH_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(x.at[0], last + rm * rto);
    CU_ASSERT_EQUAL(x.r[0].requests, rc);
    mesh_stun_client_stats st = mesh_stun_client_get_stats(c);
    CU_ASSERT_EQUAL(st.timed_out, 1);
    CU_ASSERT_EQUAL(st.requests_sent, rc);
    mesh_stun_client_free(c);
    tw_free(&t);
}

static void test_udp_retransmission_schedule(void)
{
    check_schedule(0, 0, 0); /* the defaults: 0, 0.5, 1.5 ... 31.5 s, timeout at 39.5 s */
    check_schedule(100 * MS, 3, 4);
    check_schedule(250 * MS, 1, 2);
}

/* The first two requests are lost (the fake ignores them): the third is answered. */
static void test_udp_answer_after_losses(void)
{
    tw t;
    tw_init(&t, NULL);
    fake f;
    fake_start(&t, &f, FAKE_FROM_NTH, 3);
    mesh_stun_client *c = new_client(&t, 0, 0, 0);
    rec x = {.t = &t};
    mesh_addr s = server_addr();
    CU_ASSERT_EQUAL(mesh_stun_client_binding(c, &s, 0, on_result, &x), MESH_OK);
    tw_run_until(&t, 100 * MESH_NS_PER_S);
    CU_ASSERT_EQUAL_FATAL(x.n, 1);
    CU_ASSERT_EQUAL(x.r[0].status, MESH_OK);
    CU_ASSERT_EQUAL(x.r[0].requests, 3);
    CU_ASSERT_EQUAL(x.at[0], 1500 * MS + RTT);
    CU_ASSERT_EQUAL(f.n, 3); /* nothing sent after the answer */
    mesh_stun_client_free(c);
    tw_free(&t);
}

/* Each request gets every forgery (wrong id, bad FINGERPRINT, truncated, wrong source,
 * not STUN, an indication, another method, no mapped address) and no right answer: each is
 * ignored and counted, and the transaction times out on schedule. */
static void test_udp_forgeries_ignored(void)
{
    tw t;
    tw_init(&t, NULL);
    fake f;
    fake_start(&t, &f, FAKE_FORGERIES, 0);
    mesh_stun_client *c = new_client(&t, 100 * MS, 3, 4);
    rec x = {.t = &t};
    mesh_addr s = server_addr();
    CU_ASSERT_EQUAL(mesh_stun_client_binding(c, &s, 0, on_result, &x), MESH_OK);
    tw_run_until(&t, 10 * MESH_NS_PER_S);
    CU_ASSERT_EQUAL_FATAL(x.n, 1);
    CU_ASSERT_EQUAL(x.r[0].status, MESH_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(x.at[0], 300 * MS + 400 * MS);
    CU_ASSERT_EQUAL(x.r[0].wrong_source, 3);
    mesh_stun_client_stats st = mesh_stun_client_get_stats(c);
    CU_ASSERT_EQUAL(st.bad_fingerprint, 3);
    CU_ASSERT_EQUAL(st.malformed, 3 * 3); /* truncated, not STUN, no mapped address */
    CU_ASSERT_EQUAL(st.bad_tid, 3);
    CU_ASSERT_EQUAL(st.bad_source, 3);
    CU_ASSERT_EQUAL(st.unexpected, 3 * 2); /* the indication, the Allocate success */
    CU_ASSERT_EQUAL(st.timed_out, 1);
    CU_ASSERT_EQUAL(st.succeeded, 0);
    /* the client still works afterwards */
    f.mode = FAKE_FROM_NTH;
    f.nth = 1;
    CU_ASSERT_EQUAL(mesh_stun_client_binding(c, &s, 0, on_result, &x), MESH_OK);
    tw_run_until(&t, 20 * MESH_NS_PER_S);
    CU_ASSERT_EQUAL_FATAL(x.n, 2);
    CU_ASSERT_EQUAL(x.r[1].status, MESH_OK);
    mesh_stun_client_free(c);
    tw_free(&t);
}

/* With short-term credentials every answer must carry a right MESSAGE-INTEGRITY. */
static void test_udp_integrity(void)
{
    tw t;
    tw_init(&t, NULL);
    mesh_stun_server *srv = start_server(&t, 0); /* answers without MESSAGE-INTEGRITY */
    mesh_stun_client_cfg cfg;
    mesh_stun_client_cfg_default(&cfg);
    cfg.rto = 100 * MS;
    cfg.rc = 2;
    cfg.rm = 2;
    cfg.username = "alice";
    cfg.key = (const uint8_t *)"secret";
    cfg.keylen = 6;
    mesh_stun_client *c = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_client_new(&c, &t.env[H_CLIENT], &cfg), MESH_OK);
    rec x = {.t = &t};
    mesh_addr s = server_addr();
    CU_ASSERT_EQUAL(mesh_stun_client_binding(c, &s, 0, on_result, &x), MESH_OK);
    tw_run_until(&t, 10 * MESH_NS_PER_S);
    CU_ASSERT_EQUAL_FATAL(x.n, 1);
    CU_ASSERT_EQUAL(x.r[0].status, MESH_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(mesh_stun_client_get_stats(c).bad_integrity, 2);
    CU_ASSERT_EQUAL(mesh_stun_server_get_stats(srv).answered, 2);
    mesh_stun_server_free(srv);
    srv = NULL;
    /* the request carries USERNAME and a MESSAGE-INTEGRITY the fake checks; its first answer
     * has a wrong one (ignored), its second a right one */
    fake f;
    fake_start(&t, &f, FAKE_MI, 0);
    CU_ASSERT_EQUAL(mesh_stun_client_binding(c, &s, 0, on_result, &x), MESH_OK);
    mesh_time t0 = tw_now(&t);
    tw_run_until(&t, 20 * MESH_NS_PER_S);
    CU_ASSERT_EQUAL_FATAL(x.n, 2);
    CU_ASSERT_EQUAL(x.r[1].status, MESH_OK);
    CU_ASSERT_EQUAL(x.at[1], t0 + 100 * MS + RTT);
    CU_ASSERT_EQUAL(mesh_stun_client_get_stats(c).bad_integrity, 3);
    cfg.username = "alice";
    cfg.keylen = 0; /* a username without a key is refused */
    mesh_stun_client *bad = NULL;
    CU_ASSERT_EQUAL(mesh_stun_client_new(&bad, &t.env[H_CLIENT], &cfg), MESH_ERR_INVAL);
    CU_ASSERT_PTR_NULL(bad);
    mesh_stun_client_free(c);
    mesh_stun_server_free(srv);
    tw_free(&t);
}

static void test_udp_error_answer(void)
{
    tw t;
    tw_init(&t, NULL);
    fake f;
    fake_start(&t, &f, FAKE_ERROR_420, 0);
    mesh_stun_client *c = new_client(&t, 0, 0, 0);
    rec x = {.t = &t};
    mesh_addr s = server_addr();
    CU_ASSERT_EQUAL(mesh_stun_client_binding(c, &s, 0, on_result, &x), MESH_OK);
    tw_run_until(&t, 10 * MESH_NS_PER_S);
    CU_ASSERT_EQUAL_FATAL(x.n, 1);
    CU_ASSERT_EQUAL(x.r[0].status, MESH_ERR_REFUSED);
    CU_ASSERT_EQUAL(x.r[0].error_code, 420);
    CU_ASSERT_EQUAL(x.at[0], RTT);
    CU_ASSERT_EQUAL(mesh_stun_client_get_stats(c).failed, 1);
    mesh_stun_client_free(c);
    tw_free(&t);
}

/* MAX_TXNS at once, then MESH_ERR_LIMIT; bad arguments; freeing inside a callback and with
 * transactions in progress (no callback after free). */
static void test_limits_and_free(void)
{
    tw t;
    tw_init(&t, NULL);
    mesh_stun_server *srv = start_server(&t, 1);
    mesh_stun_client *c = new_client(&t, 0, 0, 0);
    rec x = {.t = &t};
    mesh_addr s = server_addr();
    for (int i = 0; i < MESH_STUN_CLIENT_MAX_TXNS; i++)
        CU_ASSERT_EQUAL(mesh_stun_client_binding(c, &s, 0, on_result, &x), MESH_OK);
    CU_ASSERT_EQUAL(mesh_stun_client_binding(c, &s, 0, on_result, &x), MESH_ERR_LIMIT);
    CU_ASSERT_EQUAL(mesh_stun_client_binding_tcp(c, &s, NULL, on_result, &x), MESH_ERR_LIMIT);
    CU_ASSERT_EQUAL(mesh_stun_client_binding(c, &s, 8, on_result, &x), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_stun_client_binding(c, &(mesh_addr){0}, 0, on_result, &x), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_stun_client_binding(c, &s, 0, NULL, &x), MESH_ERR_INVAL);
    x.free_me = &c; /* the first answer frees the client: the other 15 never report */
    tw_run_until(&t, 100 * MESH_NS_PER_S);
    CU_ASSERT_EQUAL(x.n, 1);
    CU_ASSERT_PTR_NULL(c);
    /* free with transactions in progress: nothing follows */
    c = new_client(&t, 0, 0, 0);
    rec y = {.t = &t};
    CU_ASSERT_EQUAL(mesh_stun_client_binding(c, &s, 0, on_result, &y), MESH_OK);
    CU_ASSERT_EQUAL(mesh_stun_client_binding_tcp(c, &s, NULL, on_result, &y), MESH_OK);
    tw_run_until(&t, tw_now(&t) + 5 * MS);
    mesh_stun_client_free(c);
    tw_run_until(&t, 200 * MESH_NS_PER_S);
    CU_ASSERT_EQUAL(y.n, 0);
    mesh_stun_client_free(NULL);
    mesh_stun_server_free(srv);
    tw_free(&t);
}

/* ---- TCP ----------------------------------------------------------------------------------- */

static void test_tcp_binding(void)
{
    tw t;
    tw_init(&t, NULL);
    mesh_stun_server *srv = start_server(&t, 1);
    mesh_stun_client_cfg cfg;
    mesh_stun_client_cfg_default(&cfg);
    cfg.udp = 0;
    mesh_stun_client *c = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_client_new(&c, &t.env[H_CLIENT], &cfg), MESH_OK);
    rec x = {.t = &t};
    mesh_addr s = server_addr(), local;
    CU_ASSERT_EQUAL(mesh_stun_client_local(c, &local), MESH_ERR_STATE);
    CU_ASSERT_EQUAL(mesh_stun_client_binding(c, &s, 0, on_result, &x), MESH_ERR_STATE);
    CU_ASSERT_EQUAL(mesh_stun_client_binding_tcp(c, &s, NULL, on_result, &x), MESH_OK);
    tw_run_until(&t, 10 * MESH_NS_PER_S);
    CU_ASSERT_EQUAL_FATAL(x.n, 1);
    CU_ASSERT_EQUAL(x.r[0].status, MESH_OK);
    CU_ASSERT(x.r[0].tcp);
    CU_ASSERT_EQUAL(x.at[0], 2 * RTT); /* the connect's round trip, then the request's */
    CU_ASSERT(mesh_addr_equal(&x.r[0].mapped, &x.r[0].local));
    CU_ASSERT_EQUAL(sim_addr_ip4(&x.r[0].mapped), IP_CLIENT_CORE);
    CU_ASSERT_EQUAL(mesh_stun_server_get_stats(srv).tcp_accepted, 1);
    /* a chosen local port needs the env's connect_from (stun_client.c: tcp_open) */
    mesh_addr from = mesh_addr_v4(IP_CLIENT_CORE, 40000);
    CU_ASSERT_EQUAL(mesh_stun_client_binding_tcp(c, &s, &from, on_result, &x), MESH_OK);
    tw_run_until(&t, 20 * MESH_NS_PER_S);
    CU_ASSERT_EQUAL_FATAL(x.n, 2);
    CU_ASSERT_EQUAL(x.r[1].status, MESH_OK);
    CU_ASSERT(mesh_addr_equal(&x.r[1].mapped, &from));
    CU_ASSERT(mesh_addr_equal(&x.r[1].local, &from));
    /* an env without the optional op: a chosen port is unsupported, said at once */
    mesh_env_ops no_from = *t.env[H_CLIENT].ops;
    no_from.connect_from = NULL;
    mesh_env e = {&no_from, t.env[H_CLIENT].obj};
    mesh_stun_client *c2 = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_client_new(&c2, &e, &cfg), MESH_OK);
    CU_ASSERT_EQUAL(mesh_stun_client_binding_tcp(c2, &s, &from, on_result, &x),
                    MESH_ERR_UNSUPPORTED);
    mesh_stun_client_free(c2);
    mesh_stun_client_free(c);
    mesh_stun_server_free(srv);
    tw_free(&t);
}

/* TCP peers that never answer, answer garbage, or answer someone else's id first. */
typedef struct tcp_peer {
    tw *t;
    int mode; /* 0 silent, 1 garbage, 2 wrong id then right, 3 oversized header */
    mesh_listener *l;
    mesh_stream *s;
    uint8_t buf[512];
    size_t have;
} tcp_peer;

static void peer_on_data(mesh_stream *s, const uint8_t *data, size_t len, void *ud)
{
    tcp_peer *p = ud;
    const mesh_env *e = &p->t->env[H_S1];
    memcpy(p->buf + p->have, data, len);
    p->have += len;
    mesh_stun_msg m;
    if (mesh_stun_decode(&m, p->buf, p->have) != MESH_OK)
        return;
    uint8_t b[512];
    mesh_addr peer;
    e->ops->stream_addrs(e->obj, s, NULL, &peer);
    if (p->mode == 1) {
        e->ops->stream_write(e->obj, s, "HTTP/1.1 400 Bad Request\r\n\r\n", 28);
    } else if (p->mode == 2) {
        uint8_t tid2[12];
        memcpy(tid2, m.tid, 12);
        tid2[0] ^= 0x80;
        size_t n = fake_answer(tid2, &peer, b, sizeof b, 1);
        e->ops->stream_write(e->obj, s, b, n);
        n = fake_answer(m.tid, &peer, b, sizeof b, 1);
        e->ops->stream_write(e->obj, s, b, n);
    } else if (p->mode == 3) {
        size_t n = fake_answer(m.tid, &peer, b, sizeof b, 0);
        b[2] = 0x10; /* claims 4 KiB */
        e->ops->stream_write(e->obj, s, b, n);
    }
}

static void peer_on_accept(mesh_listener *l, mesh_stream *s, const mesh_addr *from, void *ud)
{
    (void)l;
    (void)from;
    tcp_peer *p = ud;
    static const mesh_stream_cbs cbs = {.on_data = peer_on_data};
    p->s = s;
    p->t->env[H_S1].ops->stream_set_cbs(p->t->env[H_S1].obj, s, &cbs, p);
}

static void run_tcp_peer(int mode, int want_status, mesh_time want_at)
{
    tw t;
    tw_init(&t, NULL);
    tcp_peer p = {.t = &t, .mode = mode};
    mesh_addr s = server_addr();
    int err;
    p.l = t.env[H_S1].ops->listen(t.env[H_S1].obj, &s, peer_on_accept, &p, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p.l);
    mesh_stun_client *c = new_client(&t, 0, 0, 0);
    rec x = {.t = &t};
    CU_ASSERT_EQUAL(mesh_stun_client_binding_tcp(c, &s, NULL, on_result, &x), MESH_OK);
    tw_run_until(&t, 100 * MESH_NS_PER_S);
    CU_ASSERT_EQUAL_FATAL(x.n, 1);
    CU_ASSERT_EQUAL(x.r[0].status, want_status);
    CU_ASSERT_EQUAL(x.at[0], want_at);
    if (mode == 2)
        CU_ASSERT_EQUAL(mesh_stun_client_get_stats(c).bad_tid, 1);
    mesh_stun_client_free(c);
    tw_free(&t);
}

static void test_tcp_bad_peers(void)
{
    run_tcp_peer(0, MESH_ERR_TIMEOUT, MESH_STUN_DEFAULT_TCP_TIMEOUT_MS * MS); /* Ti */
    run_tcp_peer(1, MESH_ERR_MALFORMED, 2 * RTT);
    run_tcp_peer(2, MESH_OK, 2 * RTT);
    run_tcp_peer(3, MESH_ERR_TOO_BIG, 2 * RTT);
}

static void test_tcp_refused(void)
{
    tw t;
    tw_init(&t, NULL);
    mesh_stun_client *c = new_client(&t, 0, 0, 0);
    rec x = {.t = &t};
    mesh_addr s = server_addr(); /* nobody listens: the host answers RST */
    CU_ASSERT_EQUAL(mesh_stun_client_binding_tcp(c, &s, NULL, on_result, &x), MESH_OK);
    tw_run_until(&t, 100 * MESH_NS_PER_S);
    CU_ASSERT_EQUAL_FATAL(x.n, 1);
    CU_ASSERT_EQUAL(x.r[0].status, MESH_ERR_REFUSED);
    CU_ASSERT_EQUAL(x.r[0].error_code, 0);
    mesh_stun_client_free(c);
    tw_free(&t);
}

/* ---- discovery (RFC 5780) behind the simulator's NATs ------------------------------------- */

typedef struct brec {
    int n;
    mesh_stun_behaviour b;
} brec;

static void on_behaviour(void *ud, const mesh_stun_behaviour *b)
{
    brec *x = ud;
    x->n++;
    x->b = *b;
}

/* Discovery from a client behind nat (NULL: on the core); returns the report. */
static mesh_stun_behaviour discover(const sim_nat_cfg *nat, int alt)
{
    tw t;
    tw_init(&t, nat);
    mesh_stun_server *srv = start_server(&t, alt);
    mesh_stun_client *c = new_client(&t, 100 * MS, 3, 4);
    brec x = {0};
    mesh_addr s = server_addr();
    CU_ASSERT_EQUAL(mesh_stun_client_discover(c, &s, on_behaviour, &x), MESH_OK);
    CU_ASSERT_EQUAL(mesh_stun_client_discover(c, &s, on_behaviour, &x), MESH_ERR_STATE);
    tw_run_until(&t, 100 * MESH_NS_PER_S);
    CU_ASSERT_EQUAL(x.n, 1);
    if (nat)
        CU_ASSERT_EQUAL(sim_addr_ip4(&x.b.mapped), IP_NAT);
    mesh_stun_client_free(c);
    mesh_stun_server_free(srv);
    tw_free(&t);
    return x.b;
}

static void expect_behaviour(const sim_nat_cfg *nat, int mapping, int filtering)
{
    mesh_stun_behaviour b = discover(nat, 1);
    CU_ASSERT_EQUAL(b.status, MESH_OK);
    CU_ASSERT_EQUAL(b.mapping, mapping);
    CU_ASSERT_EQUAL(b.filtering, filtering);
    if (b.mapping != mapping || b.filtering != filtering)
        fprintf(stderr, "  got mapping %s filtering %s\n", mesh_stun_behaviour_name(b.mapping),
                mesh_stun_behaviour_name(b.filtering));
}

static void test_discover_nat_kinds(void)
{
    enum {
        EI = MESH_STUN_BEHAVIOUR_ENDPOINT_INDEPENDENT,
        AD = MESH_STUN_BEHAVIOUR_ADDRESS_DEPENDENT,
        APD = MESH_STUN_BEHAVIOUR_ADDRESS_PORT_DEPENDENT,
    };
    sim_nat_cfg full = {.mapping = SIM_NAT_ENDPOINT_INDEPENDENT,
                        .filtering = SIM_NAT_ENDPOINT_INDEPENDENT};
    sim_nat_cfg restricted = {.mapping = SIM_NAT_ENDPOINT_INDEPENDENT,
                              .filtering = SIM_NAT_ADDRESS_DEPENDENT};
    sim_nat_cfg port_restricted = {.mapping = SIM_NAT_ENDPOINT_INDEPENDENT,
                                   .filtering = SIM_NAT_ADDRESS_PORT_DEPENDENT};
    sim_nat_cfg symmetric = {.mapping = SIM_NAT_ADDRESS_PORT_DEPENDENT,
                             .filtering = SIM_NAT_ADDRESS_PORT_DEPENDENT};
    sim_nat_cfg addr_dep = {.mapping = SIM_NAT_ADDRESS_DEPENDENT,
                            .filtering = SIM_NAT_ADDRESS_DEPENDENT};
    expect_behaviour(&full, EI, EI);
    expect_behaviour(&restricted, EI, AD);
    expect_behaviour(&port_restricted, EI, APD);
    expect_behaviour(&symmetric, APD, APD);
    expect_behaviour(&addr_dep, AD, AD);
    expect_behaviour(NULL, MESH_STUN_BEHAVIOUR_NO_NAT, EI);
}

/* How long discovery takes: EIF needs 3 answers (3 RTT); APDF adds two timeouts. */
static void test_discover_timing(void)
{
    sim_nat_cfg full = {0};
    mesh_stun_behaviour b = discover(&full, 1);
    CU_ASSERT_EQUAL(b.transactions, 3);
    CU_ASSERT_EQUAL(b.took, 3 * RTT);
    sim_nat_cfg sym = {.mapping = SIM_NAT_ADDRESS_PORT_DEPENDENT,
                       .filtering = SIM_NAT_ADDRESS_PORT_DEPENDENT};
    b = discover(&sym, 1);
    CU_ASSERT_EQUAL(b.transactions, 5);
    CU_ASSERT_EQUAL(b.took, RTT + 2 * (300 * MS + 400 * MS) + 2 * RTT);
}

static void test_discover_unsupported(void)
{
    sim_nat_cfg full = {0};
    mesh_stun_behaviour b = discover(&full, 0); /* no alternate: no OTHER-ADDRESS */
    CU_ASSERT_EQUAL(b.status, MESH_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(sim_addr_ip4(&b.mapped), IP_NAT);
    CU_ASSERT_EQUAL(b.mapping, MESH_STUN_BEHAVIOUR_UNKNOWN);

    /* a server that answers CHANGE-REQUEST from its own address: filtering unknown */
    tw t;
    tw_init(&t, NULL);
    fake f;
    fake_start(&t, &f, FAKE_NO_CHANGE, 0);
    mesh_stun_client *c = new_client(&t, 100 * MS, 3, 4);
    brec x = {0};
    mesh_addr s = server_addr();
    CU_ASSERT_EQUAL(mesh_stun_client_discover(c, &s, on_behaviour, &x), MESH_OK);
    tw_run_until(&t, 100 * MESH_NS_PER_S);
    CU_ASSERT_EQUAL_FATAL(x.n, 1);
    CU_ASSERT_EQUAL(x.b.filtering, MESH_STUN_BEHAVIOUR_UNKNOWN);
    CU_ASSERT(mesh_stun_client_get_stats(c).bad_source > 0);
    mesh_stun_client_free(c);
    tw_free(&t);
}

static CU_TestInfo client_tests[] = {
    {"UDP binding: 1 RTT, addresses", test_udp_binding},
    {"UDP retransmission schedule exact", test_udp_retransmission_schedule},
    {"UDP answer after two losses", test_udp_answer_after_losses},
    {"UDP forgeries ignored and counted", test_udp_forgeries_ignored},
    {"UDP MESSAGE-INTEGRITY required with credentials", test_udp_integrity},
    {"UDP error answer", test_udp_error_answer},
    {"limits, free inside a callback", test_limits_and_free},
    {"TCP binding: 2 RTT", test_tcp_binding},
    {"TCP silent, garbage, wrong id, oversized", test_tcp_bad_peers},
    {"TCP refused", test_tcp_refused},
    {"discovery behind each NAT kind", test_discover_nat_kinds},
    {"discovery timing", test_discover_timing},
    {"discovery without RFC 5780", test_discover_unsupported},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"stun_client", NULL, NULL, NULL, NULL, client_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
