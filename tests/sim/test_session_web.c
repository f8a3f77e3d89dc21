/* test_session_web.c — the shape of an idle session on the wire, web profile against seed
 * profile (session.h "Liveness"): in the simulator, every TLS record each side sends is
 * recorded (size, time) from the TCP payloads, so the test sees what a passive observer sees.
 *  - web: an idle session carries HTTP/2 PINGs only (one 17-byte frame per record), the
 *    client pinging after a jittered silence and the server only answering; it stays up;
 *  - seed: heartbeat envelopes in 282-byte records every 27-33 s, as before;
 *  - both: a peer gone silent is closed at its last byte + heartbeat_timeout (75 s).
 * It prints the idle records it measured (docs/stealth.md quotes them). */
#include "mesh_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/server.h"
#include "core/session.h"
#include "core/tls.h"
#include "sim/driver.h"

enum {
    ACCESS_MS = 20,
    PORT = 443,
    REC_HDR = 5,
    REC_OVERHEAD = 22,  /* TLS 1.3: header, inner content type, AEAD tag */
    PING_FRAME = 9 + 8, /* HTTP/2 frame header + opaque data */
    MAX_RECS = 4096,
    SETTLE_MS = 2000, /* handshake, tickets and first requests are over by then */
};

#define MS(x) ((mesh_time)(x)*MESH_NS_PER_MS)
#define RTT MS(4 * ACCESS_MS)

/* ---- records seen on the wire, per direction --------------------------------------------- */

typedef struct dir_recs {
    uint8_t hdr[REC_HDR];
    size_t hdr_have, body_left;
    size_t n;
    size_t len[MAX_RECS];
    mesh_time at[MAX_RECS];
} dir_recs;

typedef struct tap {
    sim_world *w;
    dir_recs d[2]; /* [0]: sent by the tapped host (the client), [1]: received */
} tap;

static void recs_feed(dir_recs *r, const uint8_t *p, size_t n, mesh_time now)
{
    while (n) {
        if (r->body_left) {
            size_t k = n < r->body_left ? n : r->body_left;
            r->body_left -= k;
            p += k;
            n -= k;
            continue;
        }
        r->hdr[r->hdr_have++] = *p++;
        n--;
        if (r->hdr_have < REC_HDR)
            continue;
        r->hdr_have = 0;
        r->body_left = (size_t)r->hdr[3] << 8 | r->hdr[4];
        if (r->n < MAX_RECS) {
            r->len[r->n] = REC_HDR + r->body_left;
            r->at[r->n++] = now;
        }
    }
}

static int tap_packet(void *obj, sim_mbox *mb, sim_pkt *p, int dir, mesh_time *delay)
{
    (void)mb, (void)delay;
    tap *t = obj;
    if (p->proto == SIM_PROTO_TCP && p->len)
        recs_feed(&t->d[dir ? 1 : 0], p->data, p->len, sim_sched_now(sim_world_sched(t->w)));
    return SIM_PASS;
}

static const sim_mbox_ops TAP_OPS = {tap_packet};

/* ---- two nodes, a server on B, a client session from A ------------------------------------ */

typedef struct side {
    sim_host *h;
    sim_driver *d;
    mesh_env env;
    mesh_identity *id;
    mesh_tls_ctx *tls;
} side;

typedef struct world {
    sim_world *w;
    side n[2];
    mesh_server *srv;
    mesh_session *cs, *ss; /* client's, server's */
    int c_closed, s_closed, c_reason, s_reason;
    mesh_time c_closed_at, s_closed_at;
    mesh_session_stats c_last, s_last; /* stats when closed */
    tap t;
} world;

static void on_closed(mesh_session *s, int reason, void *ud)
{
    world *W = ud;
    mesh_time now = sim_sched_now(sim_world_sched(W->w));
    if (s == W->cs) {
        W->c_closed++, W->c_reason = reason, W->c_closed_at = now;
        mesh_session_get_stats(s, &W->c_last);
    } else {
        W->s_closed++, W->s_reason = reason, W->s_closed_at = now;
        mesh_session_get_stats(s, &W->s_last);
    }
}

static const mesh_session_cbs CBS = {.on_closed = on_closed};

static void srv_session(mesh_server *srv, mesh_session *s, void *ud)
{
    (void)srv;
    world *W = ud;
    W->ss = s;
    mesh_session_set_cbs(s, &CBS, W);
}

static void srv_failed(mesh_server *srv, int reason, const mesh_addr *peer, void *ud)
{
    (void)srv, (void)reason, (void)peer, (void)ud;
    CU_FAIL("server session failed");
}

static void world_up_cfg(world *W, int profile, uint64_t seed, const mesh_session_cfg *ccfg)
{
    memset(W, 0, sizeof *W);
    CU_ASSERT_EQUAL_FATAL(sim_world_new(&W->w, seed, NULL), MESH_OK);
    W->t.w = W->w;
    sim_link_cfg l = {.latency = MS(ACCESS_MS)};
    static const char *const names[] = {"a", "b"};
    for (int i = 0; i < 2; i++) {
        side *n = &W->n[i];
        sim_host_cfg hc = {names[i], SIM_IP4(10, 0, 0, 1 + i), NULL, l, l};
        CU_ASSERT_EQUAL_FATAL(sim_net_add_host(sim_world_net(W->w), &hc, &n->h), MESH_OK);
        CU_ASSERT_EQUAL_FATAL(sim_driver_new(&n->d, W->w, n->h), MESH_OK);
        n->env = sim_driver_env(n->d);
        CU_ASSERT_EQUAL_FATAL(mesh_identity_generate(&n->id, &n->env), MESH_OK);
        mesh_tls_cfg tc = {.profile = profile};
        CU_ASSERT_EQUAL_FATAL(mesh_tls_ctx_new(&n->tls, &n->env, n->id, &tc), MESH_OK);
    }
    CU_ASSERT_EQUAL_FATAL(
        sim_net_attach_host_mbox(sim_world_net(W->w), W->n[0].h, &TAP_OPS, &W->t, NULL), MESH_OK);
    mesh_server_cbs sc = {srv_session, srv_failed};
    mesh_addr la = mesh_addr_v4(sim_host_ip(W->n[1].h), PORT);
    CU_ASSERT_EQUAL_FATAL(mesh_server_new(&W->srv, &W->n[1].env, W->n[1].tls, &la, NULL, &sc, W),
                          MESH_OK);
    CU_ASSERT_EQUAL_FATAL(
        mesh_session_connect(&W->cs, &W->n[0].env, W->n[0].tls, &la, NULL, ccfg, &CBS, W), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_sched_run_until(sim_world_sched(W->w), MS(SETTLE_MS)), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_session_get_state(W->cs), MESH_SESSION_CONNECTED);
    CU_ASSERT_PTR_NOT_NULL_FATAL(W->ss);
    CU_ASSERT_EQUAL_FATAL(mesh_session_get_state(W->ss), MESH_SESSION_CONNECTED);
    CU_ASSERT_STRING_EQUAL(mesh_session_alpn(W->cs),
                           profile == MESH_PROFILE_WEB ? "h2" : MESH_TLS_DEFAULT_ALPN);
}

static void world_up(world *W, int profile, uint64_t seed)
{
    world_up_cfg(W, profile, seed, NULL);
}

static void world_down(world *W)
{
    mesh_session_free(W->cs);
    mesh_session_free(W->ss);
    mesh_server_free(W->srv);
    for (int i = 0; i < 2; i++) {
        sim_driver_free(W->n[i].d);
        mesh_tls_ctx_free(W->n[i].tls);
        mesh_identity_free(W->n[i].id);
    }
    sim_world_free(W->w);
}

/* Records of direction d from `from` on: how many, all of size `size` (0: any), and the
 * smallest / largest gap between consecutive ones of that size. Returns the count. */
static size_t idle_recs(const dir_recs *r, mesh_time from, size_t *minlen, size_t *maxlen,
                        mesh_time *mingap, mesh_time *maxgap, size_t *distinct_gaps)
{
    size_t k = 0;
    mesh_time prev = 0, gaps[MAX_RECS];
    size_t ng = 0;
    *minlen = (size_t)-1, *maxlen = 0, *mingap = MESH_TIME_NEVER, *maxgap = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (r->at[i] < from)
            continue;
        k++;
        *minlen = r->len[i] < *minlen ? r->len[i] : *minlen;
        *maxlen = r->len[i] > *maxlen ? r->len[i] : *maxlen;
        if (prev) {
            mesh_time g = r->at[i] - prev;
            *mingap = g < *mingap ? g : *mingap;
            *maxgap = g > *maxgap ? g : *maxgap;
            gaps[ng++] = g;
        }
        prev = r->at[i];
    }
    *distinct_gaps = 0;
    for (size_t i = 0; i < ng; i++) {
        size_t j = 0;
        while (j < i && gaps[j] != gaps[i])
            j++;
        *distinct_gaps += j == i;
    }
    return k;
}

static void report(const char *what, const dir_recs *r, mesh_time from, mesh_time to)
{
    size_t lo, hi, dg;
    mesh_time g0, g1;
    size_t k = idle_recs(r, from, &lo, &hi, &g0, &g1, &dg);
    printf("\n  %s: %zu records in %llu s idle, sizes %zu..%zu B, gaps %.2f..%.2f s\n", what, k,
           (unsigned long long)((to - from) / MS(1000)), k ? lo : 0, hi,
           k > 1 ? (double)g0 / 1e9 : 0.0, k > 1 ? (double)g1 / 1e9 : 0.0);
}

/* ---- tests ------------------------------------------------------------------------------- */

enum { IDLE_S = 600 };

/* Web: 10 idle minutes. The client sends one PING (a 39-byte record) each time it heard
 * nothing for 25.5-34.5 s, so PINGs are that plus the RTT apart, jittered; the server sends
 * only the ACKs (nginx never pings); nothing else crosses; RTT measured; both stay up. */
static void test_web_idle_pings(void)
{
    world W;
    world_up(&W, MESH_PROFILE_WEB, 5);
    const mesh_time from = MS(SETTLE_MS), to = from + MS(IDLE_S * 1000);
    CU_ASSERT_EQUAL(sim_sched_run_until(sim_world_sched(W.w), to), MESH_OK);
    CU_ASSERT_EQUAL(mesh_session_get_state(W.cs), MESH_SESSION_CONNECTED);
    CU_ASSERT_EQUAL(mesh_session_get_state(W.ss), MESH_SESSION_CONNECTED);
    mesh_session_stats c, s;
    mesh_session_get_stats(W.cs, &c);
    mesh_session_get_stats(W.ss, &s);
    size_t lo, hi, dg;
    mesh_time g0, g1;
    size_t k = idle_recs(&W.t.d[0], from, &lo, &hi, &g0, &g1, &dg);
    CU_ASSERT(k >= IDLE_S / 35 && k <= IDLE_S / 25);
    CU_ASSERT_EQUAL(lo, PING_FRAME + REC_OVERHEAD);
    CU_ASSERT_EQUAL(hi, PING_FRAME + REC_OVERHEAD);
    CU_ASSERT(g0 >= MS(25500) + RTT && g1 <= MS(34500) + RTT);
    CU_ASSERT(dg >= k / 2); /* jittered: the gaps differ */
    CU_ASSERT_EQUAL(c.heartbeats_sent, c.heartbeat_replies);
    CU_ASSERT(c.heartbeats_sent >= k); /* every idle record the client sent was a PING */
    CU_ASSERT_EQUAL(c.rtt_last, RTT);
    CU_ASSERT_EQUAL(s.heartbeats_sent, 0); /* a live client pings first */
    size_t k2 = idle_recs(&W.t.d[1], from, &lo, &hi, &g0, &g1, &dg);
    CU_ASSERT_EQUAL(k2, k); /* the ACKs */
    CU_ASSERT_EQUAL(lo, PING_FRAME + REC_OVERHEAD);
    CU_ASSERT_EQUAL(hi, PING_FRAME + REC_OVERHEAD);
    report("web, client -> server", &W.t.d[0], from, to);
    report("web, server -> client", &W.t.d[1], from, to);
    world_down(&W);
}

/* Web, a client that does not ping within the timeout (its interval 5 min, its timeout the
 * default 75 s): the server probes it after 38-52 s of silence, its PINGs keep both sides
 * alive, and the client never pings. */
static void test_web_server_probes(void)
{
    world W;
    mesh_session_cfg cc = {.heartbeat_interval = MS(300000), .heartbeat_timeout = MS(75000)};
    world_up_cfg(&W, MESH_PROFILE_WEB, 6, &cc);
    const mesh_time from = MS(SETTLE_MS), to = from + MS(IDLE_S * 1000);
    CU_ASSERT_EQUAL(sim_sched_run_until(sim_world_sched(W.w), to), MESH_OK);
    CU_ASSERT_EQUAL(mesh_session_get_state(W.cs), MESH_SESSION_CONNECTED);
    CU_ASSERT_EQUAL(mesh_session_get_state(W.ss), MESH_SESSION_CONNECTED);
    mesh_session_stats c, s;
    mesh_session_get_stats(W.cs, &c);
    mesh_session_get_stats(W.ss, &s);
    CU_ASSERT_EQUAL(c.heartbeats_sent, 0);
    CU_ASSERT(s.heartbeats_sent >= IDLE_S / 52 && s.heartbeats_sent <= IDLE_S / 38 + 1);
    CU_ASSERT_EQUAL(s.heartbeat_replies, s.heartbeats_sent);
    size_t lo, hi, dg;
    mesh_time g0, g1;
    size_t k = idle_recs(&W.t.d[1], from, &lo, &hi, &g0, &g1, &dg);
    CU_ASSERT_EQUAL(k, s.heartbeats_sent);
    CU_ASSERT_EQUAL(lo, PING_FRAME + REC_OVERHEAD);
    CU_ASSERT_EQUAL(hi, PING_FRAME + REC_OVERHEAD);
    CU_ASSERT(g0 >= MS(38250) && g1 <= MS(51750) + RTT);
    world_down(&W);
}

/* Seed: unchanged — heartbeat envelopes both ways (each side's own, each answered), every
 * record 282 bytes, each side's heartbeats 27-33 s apart. */
static void test_seed_idle_heartbeats(void)
{
    world W;
    world_up(&W, MESH_PROFILE_SEED, 5);
    const mesh_time from = MS(SETTLE_MS), to = from + MS(IDLE_S * 1000);
    CU_ASSERT_EQUAL(sim_sched_run_until(sim_world_sched(W.w), to), MESH_OK);
    mesh_session_stats c, s;
    mesh_session_get_stats(W.cs, &c);
    mesh_session_get_stats(W.ss, &s);
    size_t lo, hi, dg;
    mesh_time g0, g1;
    size_t k = idle_recs(&W.t.d[0], from, &lo, &hi, &g0, &g1, &dg);
    CU_ASSERT_EQUAL(lo, 282);
    CU_ASSERT_EQUAL(hi, 282);
    CU_ASSERT(k >= 2 * (IDLE_S / 33) && k <= 2 * (IDLE_S / 27 + 1));
    CU_ASSERT(c.heartbeats_sent >= IDLE_S / 33 && s.heartbeats_sent >= IDLE_S / 33);
    CU_ASSERT_EQUAL(c.heartbeat_replies, c.heartbeats_sent);
    report("seed, client -> server", &W.t.d[0], from, to);
    report("seed, server -> client", &W.t.d[1], from, to);
    world_down(&W);
}

/* B's host cut off once both are up: each side closes at its last byte received + 75 s
 * (heartbeat_timeout's default), in either profile — PINGs changed nothing there. */
static void dead_peer(int profile)
{
    world W;
    world_up(&W, profile, 9);
    sim_host_set_up(W.n[1].h, 0);
    CU_ASSERT_EQUAL(sim_sched_run_until(sim_world_sched(W.w), MS(200000)), MESH_OK);
    const mesh_time timeout = MS(75000);
    CU_ASSERT_EQUAL(W.c_closed, 1);
    CU_ASSERT_EQUAL(W.c_reason, MESH_ERR_TIMEOUT);
    CU_ASSERT(W.c_last.last_received_at > 0 && W.c_last.last_received_at <= MS(SETTLE_MS));
    CU_ASSERT_EQUAL(W.c_closed_at, W.c_last.last_received_at + timeout);
    CU_ASSERT_EQUAL(W.s_closed, 1);
    CU_ASSERT_EQUAL(W.s_reason, MESH_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(W.s_closed_at, W.s_last.last_received_at + timeout);
    CU_ASSERT(W.c_last.heartbeats_sent >= 2); /* probes went out, none answered */
    CU_ASSERT_EQUAL(W.c_last.heartbeat_replies, 0);
    world_down(&W);
}

static void test_web_dead_peer(void)
{
    dead_peer(MESH_PROFILE_WEB);
}

static void test_seed_dead_peer(void)
{
    dead_peer(MESH_PROFILE_SEED);
}

static CU_TestInfo tests[] = {
    {"web: idle = jittered PINGs from the client, ACKs back, 39-byte records", test_web_idle_pings},
    {"web: a client that does not ping is probed by the server", test_web_server_probes},
    {"seed: idle = 282-byte heartbeats both ways every 27-33 s (unchanged)",
     test_seed_idle_heartbeats},
    {"web: a silent peer closed at its last byte + 75 s", test_web_dead_peer},
    {"seed: the same, at the same time", test_seed_dead_peer},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"session_web", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
