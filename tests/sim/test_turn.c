/* test_turn.c — the TURN client (node/core/turn.h) in the simulator against a scripted TURN
 * server written here (RFC 8656 + RFC 6062 over TCP, long-term credentials), in exact
 * virtual time: the 401 → credentials exchange, a stale nonce, the allocation refreshed at
 * 3/4 of its lifetime, permissions re-installed every 240 s, an end-to-end Meshara session
 * through a data connection both ways (a peer connecting to the relayed address: the
 * ConnectionAttempt path; the client dialling a peer: Connect), a peer without permission
 * refused; a node configured with the server (node_turn.c); and a server that misbehaves — wrong
 * password (401 after credentials), 441, 438 forever, bad MESSAGE-INTEGRITY, wrong transaction id,
 * an answer of another method, half an answer then a close, non-STUN bytes, a success without
 * XOR-RELAYED-ADDRESS, silence — each giving its named error, never a crash.
 *
 * Hosts on one core (links 2 ms, core 5 ms: RTT 18 ms): S 198.51.100.1 (the server: control
 * port 3478, relayed address :50000), C 198.51.100.9 (the TURN client), P 198.51.100.20 (a
 * peer with a Meshara server on :443), Q 198.51.100.30 (a peer without permission). */
#include <stdlib.h>
#include <string.h>

#include "core/node.h"
#include "core/server.h"
#include "core/session.h"
#include "core/stun.h"
#include "core/turn.h"
#include "mesh_test.h"
#include "sim/driver.h"

#define MS MESH_NS_PER_MS
#define S_ MESH_NS_PER_S
enum { HS, HC, HP, HQ, NH };
enum { CTL_PORT = 3478, RELAY_PORT = 50000, PEER_PORT = 443, NCONN = 16 };
enum {
    M_OK,
    M_STALE_ONCE, /* the first authenticated request gets 438 */
    M_STALE_LOOP, /* every one does */
    M_441,
    M_BAD_MI,
    M_WRONG_TID,
    M_GARBAGE,
    M_NO_RELAYED,
    M_SILENT,
    M_WRONG_METHOD, /* a success with the right id for another method */
    M_TRUNCATED,    /* half an answer, then the connection closes */
};
static const char REALM[] = "meshara.test", USER[] = "alice", PASS[] = "s3cret";

typedef struct ts ts;
typedef struct sconn { /* a TCP connection at the server */
    ts *S;
    int used, data, relay; /* data: a bound data connection; relay: a peer's, on :50000 */
    mesh_stream *s;
    struct sconn *other; /* spliced with */
    uint32_t id;         /* relay side: its CONNECTION-ID */
    mesh_addr peer;
    uint8_t rx[4096];
    size_t have;
    mesh_test_buf held; /* relay side: bytes before the splice */
    uint8_t connect_tid[MESH_STUN_TID_LEN];
    struct sconn *ctl; /* relay side (Connect): the control connection to answer */
} sconn;

struct ts {
    sim_world *w;
    sim_host *h[NH];
    sim_driver *d[NH];
    mesh_env env[NH];
    mesh_identity *id[NH];
    mesh_tls_ctx *tls[NH];
    int mode, nonce_no, stale_done;
    uint32_t cur_id; /* the CONNECTION-ID add_id puts in */
    uint32_t lifetime, next_id;
    mesh_listener *l, *lr;
    sconn c[NCONN];
    sconn *ctl;
    int allocs, refreshes, perm_reqs, connect_reqs, binds;
    mesh_time refresh_at[16], perm_at[16];
    mesh_addr perm[8];
    int nperm;
    /* the client */
    mesh_turn *t;
    int alloc_n, alloc_status;
    mesh_addr relayed, mapped;
    mesh_session *cs; /* C's end of the end-to-end session */
    mesh_server *psrv;
    mesh_session *ps; /* P's end */
    int c_msgs, p_msgs, c_up, p_up, c_closed, c_reason;
};

static void run(ts *S, mesh_time dt)
{
    sim_sched *sc = sim_world_sched(S->w);
    CU_ASSERT_EQUAL(sim_sched_run_until(sc, sim_sched_now(sc) + dt), MESH_OK);
}
static mesh_time now(ts *S)
{
    return sim_sched_now(sim_world_sched(S->w));
}

/* ---- the scripted server ------------------------------------------------------------------- */

static void key_of(uint8_t k[16])
{
    CU_ASSERT_EQUAL(
        mesh_stun_long_term_key(k, USER, strlen(USER), REALM, strlen(REALM), PASS, strlen(PASS)),
        MESH_OK);
}

static void nonce_of(ts *S, char *buf)
{
    sprintf(buf, "nonce-%d", S->nonce_no);
}

static void reply(sconn *x, const uint8_t *b, size_t n)
{
    if (x->s)
        x->S->env[HS].ops->stream_write(x->S->env[HS].obj, x->s, b, n);
}

/* An answer to m: class cls, code (errors), and for success the attributes added by add. */
typedef void (*add_fn)(ts *S, sconn *x, const mesh_stun_msg *m, mesh_stun_enc *e);
static void answer(sconn *x, const mesh_stun_msg *m, int cls, int code, add_fn add)
{
    ts *S = x->S;
    uint8_t b[1024], tid[MESH_STUN_TID_LEN];
    memcpy(tid, m->tid, sizeof tid);
    if (S->mode == M_WRONG_TID && cls == MESH_STUN_SUCCESS)
        tid[0] ^= 1;
    unsigned method = S->mode == M_WRONG_METHOD ? MESH_STUN_REFRESH : m->method;
    mesh_stun_enc e;
    mesh_stun_enc_init(&e, b, sizeof b, mesh_stun_type(method, cls), tid);
    uint8_t k[16];
    key_of(k);
    if (cls == MESH_STUN_ERROR) {
        char nonce[32];
        mesh_stun_enc_error(&e, code, "scripted");
        nonce_of(S, nonce);
        if (code == 401)
            mesh_stun_enc_text(&e, MESH_STUN_A_REALM, REALM, strlen(REALM));
        if (code == 401 || code == 438)
            mesh_stun_enc_text(&e, MESH_STUN_A_NONCE, nonce, strlen(nonce));
    } else {
        if (add)
            add(S, x, m, &e);
        if (S->mode == M_BAD_MI)
            k[3] ^= 0x40;
        mesh_stun_enc_integrity(&e, k, sizeof k);
    }
    mesh_stun_enc_fingerprint(&e);
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_enc_finish(&e, &n), MESH_OK);
    if (S->mode == M_TRUNCATED && cls == MESH_STUN_SUCCESS) {
        reply(x, b, n / 2);
        S->env[HS].ops->stream_close(S->env[HS].obj, x->s, MESH_CLOSE_GRACEFUL);
        x->s = NULL;
        x->used = 0;
        return;
    }
    reply(x, b, n);
}

/* 1 if m carries right credentials; else it was answered (401/438/441) and 0. */
static int authed(sconn *x, const mesh_stun_msg *m)
{
    ts *S = x->S;
    uint8_t k[16];
    key_of(k);
    const mesh_stun_attr *na = mesh_stun_find(m, MESH_STUN_A_NONCE);
    if (!mesh_stun_find(m, MESH_STUN_A_USERNAME) || !na ||
        mesh_stun_check_integrity(m, k, sizeof k, MESH_STUN_MI_SHA1) != MESH_OK) {
        S->nonce_no++;
        answer(x, m, MESH_STUN_ERROR, 401, NULL);
        return 0;
    }
    char want[32];
    nonce_of(S, want);
    const char *n = NULL;
    size_t nl = 0;
    mesh_stun_get_text(m, na, &n, &nl);
    int stale = nl != strlen(want) || memcmp(n, want, nl) != 0;
    if (S->mode == M_STALE_LOOP || (S->mode == M_STALE_ONCE && !S->stale_done)) {
        S->stale_done = 1;
        stale = 1;
    }
    if (stale) {
        S->nonce_no++;
        answer(x, m, MESH_STUN_ERROR, 438, NULL);
        return 0;
    }
    if (S->mode == M_441) {
        answer(x, m, MESH_STUN_ERROR, 441, NULL);
        return 0;
    }
    return 1;
}

static void add_alloc(ts *S, sconn *x, const mesh_stun_msg *m, mesh_stun_enc *e)
{
    (void)m;
    mesh_addr r = mesh_addr_v4(sim_host_ip(S->h[HS]), RELAY_PORT), from;
    S->env[HS].ops->stream_addrs(S->env[HS].obj, x->s, NULL, &from);
    if (S->mode != M_NO_RELAYED)
        mesh_stun_enc_addr(e, MESH_STUN_A_XOR_RELAYED_ADDRESS, &r);
    mesh_stun_enc_addr(e, MESH_STUN_A_XOR_MAPPED_ADDRESS, &from);
    mesh_stun_enc_u32(e, MESH_STUN_A_LIFETIME, S->lifetime);
}
static void add_life(ts *S, sconn *x, const mesh_stun_msg *m, mesh_stun_enc *e)
{
    (void)x;
    (void)m;
    mesh_stun_enc_u32(e, MESH_STUN_A_LIFETIME, S->lifetime);
}
static void add_id(ts *S, sconn *x, const mesh_stun_msg *m, mesh_stun_enc *e)
{
    (void)x;
    (void)m;
    mesh_stun_enc_u32(e, MESH_STUN_A_CONNECTION_ID, S->cur_id);
}

static sconn *slot(ts *S)
{
    for (int i = 0; i < NCONN; i++)
        if (!S->c[i].used) {
            memset(&S->c[i], 0, sizeof S->c[i]);
            S->c[i].S = S;
            S->c[i].used = 1;
            return &S->c[i];
        }
    CU_FAIL_FATAL("server out of slots");
    return NULL;
}

static const mesh_stream_cbs SRV_CBS;

static int permitted(ts *S, const mesh_addr *a)
{
    for (int i = 0; i < S->nperm; i++)
        if (memcmp(S->perm[i].ip, a->ip, 4) == 0)
            return 1;
    return 0;
}

static void on_permission(ts *S, sconn *x, const mesh_stun_msg *m)
{
    S->perm_at[S->perm_reqs++ % 16] = now(S);
    for (size_t i = 0; i < m->nvisible; i++) {
        mesh_addr a;
        if (m->attrs[i].type == MESH_STUN_A_XOR_PEER_ADDRESS &&
            mesh_stun_get_addr(m, &m->attrs[i], &a) == MESH_OK && !permitted(S, &a) && S->nperm < 8)
            S->perm[S->nperm++] = a;
    }
    answer(x, m, MESH_STUN_SUCCESS, 0, NULL);
}

static void on_connect(ts *S, sconn *x, const mesh_stun_msg *m)
{
    const mesh_stun_attr *pa = mesh_stun_find(m, MESH_STUN_A_XOR_PEER_ADDRESS);
    mesh_addr a;
    CU_ASSERT_FATAL(pa && mesh_stun_get_addr(m, pa, &a) == MESH_OK);
    S->connect_reqs++;
    if (!permitted(S, &a)) {
        answer(x, m, MESH_STUN_ERROR, 403, NULL);
        return;
    }
    sconn *r = slot(S);
    r->relay = 1;
    r->id = ++S->next_id;
    r->peer = a;
    r->ctl = x;
    memcpy(r->connect_tid, m->tid, MESH_STUN_TID_LEN);
    int err = 0;
    r->s = S->env[HS].ops->connect(S->env[HS].obj, &a, &SRV_CBS, r, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->s);
}

static void on_bind(ts *S, sconn *x, const mesh_stun_msg *m)
{
    const mesh_stun_attr *ca = mesh_stun_find(m, MESH_STUN_A_CONNECTION_ID);
    uint32_t id = 0;
    sconn *r = NULL;
    if (ca && mesh_stun_get_u32(m, ca, &id) == MESH_OK)
        for (int i = 0; i < NCONN && !r; i++)
            if (S->c[i].used && S->c[i].relay && S->c[i].id == id && !S->c[i].other)
                r = &S->c[i];
    if (!r) {
        answer(x, m, MESH_STUN_ERROR, 400, NULL);
        return;
    }
    S->binds++;
    answer(x, m, MESH_STUN_SUCCESS, 0, NULL);
    x->data = 1;
    x->other = r;
    r->other = x;
    reply(x, r->held.b, r->held.len);
}

static void srv_msg(ts *S, sconn *x, const mesh_stun_msg *m)
{
    if (S->mode == M_SILENT)
        return;
    if (S->mode == M_GARBAGE) {
        reply(x, (const uint8_t *)"HTTP/1.1 400 Bad Request\r\n\r\n", 28);
        return;
    }
    if (!authed(x, m))
        return;
    switch (m->method) {
    case MESH_STUN_ALLOCATE:
        S->allocs++;
        S->ctl = x;
        answer(x, m, MESH_STUN_SUCCESS, 0, add_alloc);
        break;
    case MESH_STUN_REFRESH:
        S->refresh_at[S->refreshes++ % 16] = now(S);
        answer(x, m, MESH_STUN_SUCCESS, 0, add_life);
        break;
    case MESH_STUN_CREATE_PERMISSION:
        on_permission(S, x, m);
        break;
    case MESH_STUN_CONNECT:
        on_connect(S, x, m);
        break;
    case MESH_STUN_CONNECTION_BIND:
        on_bind(S, x, m);
        break;
    default:
        answer(x, m, MESH_STUN_ERROR, 400, NULL);
    }
}

static void srv_data(mesh_stream *s, const uint8_t *d, size_t n, void *ud)
{
    (void)s;
    sconn *x = ud;
    if (x->data || x->relay) { /* spliced (or held until the splice) */
        if (x->other)
            reply(x->other, d, n);
        else
            mesh_test_buf_add(&x->held, d, n);
        return;
    }
    CU_ASSERT_FATAL(x->have + n <= sizeof x->rx);
    memcpy(x->rx + x->have, d, n);
    x->have += n;
    size_t total = 0;
    while (x->have && mesh_stun_frame_len(x->rx, x->have, &total) == MESH_OK && total <= x->have) {
        mesh_stun_msg m;
        CU_ASSERT_EQUAL_FATAL(mesh_stun_decode(&m, x->rx, total), MESH_OK);
        CU_ASSERT_EQUAL(mesh_stun_check_fingerprint(&m), MESH_OK);
        srv_msg(x->S, x, &m);
        memmove(x->rx, x->rx + total, x->have - total);
        x->have -= total;
        if (x->data) { /* what follows ConnectionBind is the client's data */
            uint8_t rest[4096];
            size_t k = x->have;
            memcpy(rest, x->rx, k);
            x->have = 0;
            if (k)
                srv_data(s, rest, k, x);
            return;
        }
    }
}

/* The relay side's connect (Connect) came up: answer the Connect with its id. */
static void srv_connected(mesh_stream *s, void *ud)
{
    (void)s;
    sconn *r = ud;
    mesh_stun_msg m = {.method = MESH_STUN_CONNECT};
    memcpy(m.tid, r->connect_tid, MESH_STUN_TID_LEN);
    r->S->cur_id = r->id;
    answer(r->ctl, &m, MESH_STUN_SUCCESS, 0, add_id);
}

static void srv_closed(mesh_stream *s, int reason, void *ud)
{
    (void)s;
    (void)reason;
    sconn *x = ud;
    x->s = NULL;
    if (x->other && x->other->s) {
        x->S->env[HS].ops->stream_close(x->S->env[HS].obj, x->other->s, MESH_CLOSE_GRACEFUL);
        x->other->s = NULL;
        x->other->used = 0;
        free(x->other->held.b);
    }
    free(x->held.b);
    x->used = 0;
}

static const mesh_stream_cbs SRV_CBS = {srv_connected, srv_data, NULL, srv_closed};

static void srv_accept(mesh_listener *l, mesh_stream *s, const mesh_addr *peer, void *ud)
{
    (void)l;
    (void)peer;
    ts *S = ud;
    sconn *x = slot(S);
    x->s = s;
    S->env[HS].ops->stream_set_cbs(S->env[HS].obj, s, &SRV_CBS, x);
}

/* A peer connects to the relayed address: refused without permission, else held and
 * announced to the client (ConnectionAttempt). */
static void relay_accept(mesh_listener *l, mesh_stream *s, const mesh_addr *peer, void *ud)
{
    (void)l;
    ts *S = ud;
    if (!permitted(S, peer) || !S->ctl) {
        S->env[HS].ops->stream_close(S->env[HS].obj, s, MESH_CLOSE_ABORT);
        return;
    }
    sconn *r = slot(S);
    r->s = s;
    r->relay = 1;
    r->id = ++S->next_id;
    r->peer = *peer;
    S->env[HS].ops->stream_set_cbs(S->env[HS].obj, s, &SRV_CBS, r);
    uint8_t b[256], tid[MESH_STUN_TID_LEN] = {7, 7, 7};
    mesh_stun_enc e;
    mesh_stun_enc_init(&e, b, sizeof b,
                       mesh_stun_type(MESH_STUN_CONNECTION_ATTEMPT, MESH_STUN_INDICATION), tid);
    mesh_stun_enc_u32(&e, MESH_STUN_A_CONNECTION_ID, r->id);
    mesh_stun_enc_addr(&e, MESH_STUN_A_XOR_PEER_ADDRESS, peer);
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_enc_finish(&e, &n), MESH_OK);
    reply(S->ctl, b, n);
}

/* ---- the world and the client ---------------------------------------------------------------- */

static void c_connected(mesh_session *s, void *ud)
{
    (void)s;
    ((ts *)ud)->c_up++;
}
static void c_message(mesh_session *s, const mesh_envelope *e, void *ud)
{
    (void)s;
    ts *S = ud;
    CU_ASSERT_EQUAL(e->body_case, MESHARA__WIRE__ENVELOPE__BODY_DATA);
    S->c_msgs++;
}
static void c_closed(mesh_session *s, int reason, void *ud)
{
    (void)s;
    ts *S = ud;
    S->c_closed++;
    S->c_reason = reason;
}
static const mesh_session_cbs C_CBS = {c_connected, c_message, NULL, c_closed};

static void p_message(mesh_session *s, const mesh_envelope *e, void *ud)
{
    (void)s;
    (void)e;
    ((ts *)ud)->p_msgs++;
}
static void p_connected(mesh_session *s, void *ud)
{
    (void)s;
    ((ts *)ud)->p_up++;
}
static const mesh_session_cbs P_CBS = {p_connected, p_message, NULL, NULL};

static void p_session(mesh_server *srv, mesh_session *s, void *ud)
{
    (void)srv;
    ts *S = ud;
    S->ps = s;
    S->p_up++;
    mesh_session_set_cbs(s, &P_CBS, S);
}

static void on_allocated(mesh_turn *t, int status, const mesh_addr *relayed,
                         const mesh_addr *mapped, void *ud)
{
    (void)t;
    ts *S = ud;
    S->alloc_n++;
    S->alloc_status = status;
    if (status == MESH_OK) {
        S->relayed = *relayed;
        S->mapped = *mapped;
    }
}

static void on_incoming(mesh_turn *t, mesh_stream *s, const mesh_addr *peer, void *ud)
{
    ts *S = ud;
    CU_ASSERT_EQUAL(memcmp(peer->ip, (uint8_t[]){198, 51, 100, 20}, 4), 0);
    mesh_env venv = mesh_turn_env(t);
    CU_ASSERT_EQUAL(mesh_session_accept(&S->cs, &venv, S->tls[HC], s, NULL, &C_CBS, S), MESH_OK);
}

static const mesh_turn_cbs CBS = {on_allocated, on_incoming};

static void ts_start(ts *S, int mode, uint32_t lifetime, const char *pass)
{
    memset(S, 0, sizeof *S);
    S->mode = mode;
    S->lifetime = lifetime;
    CU_ASSERT_EQUAL_FATAL(sim_world_new(&S->w, 9, NULL), MESH_OK);
    sim_sched_set_event_cap(sim_world_sched(S->w), 50000000);
    sim_net *net = sim_world_net(S->w);
    sim_net_set_core(net, &(sim_link_cfg){.latency = 5 * MS}, NULL, NULL);
    sim_link_cfg l = {.latency = 2 * MS};
    static const char *const names[NH] = {"s", "c", "p", "q"};
    static const uint8_t last[NH] = {1, 9, 20, 30};
    for (int i = 0; i < NH; i++) {
        sim_host_cfg hc = {names[i], SIM_IP4(198, 51, 100, last[i]), NULL, l, l};
        CU_ASSERT_EQUAL_FATAL(sim_net_add_host(net, &hc, &S->h[i]), MESH_OK);
        CU_ASSERT_EQUAL_FATAL(sim_driver_new(&S->d[i], S->w, S->h[i]), MESH_OK);
        S->env[i] = sim_driver_env(S->d[i]);
        CU_ASSERT_EQUAL_FATAL(mesh_identity_generate(&S->id[i], &S->env[i]), MESH_OK);
        CU_ASSERT_EQUAL_FATAL(mesh_tls_ctx_new(&S->tls[i], &S->env[i], S->id[i], NULL), MESH_OK);
    }
    int err = 0;
    mesh_addr a = mesh_addr_v4(sim_host_ip(S->h[HS]), CTL_PORT);
    S->l = S->env[HS].ops->listen(S->env[HS].obj, &a, srv_accept, S, &err);
    a.port = RELAY_PORT;
    S->lr = S->env[HS].ops->listen(S->env[HS].obj, &a, relay_accept, S, &err);
    CU_ASSERT_FATAL(S->l && S->lr);
    mesh_addr pa = mesh_addr_v4(sim_host_ip(S->h[HP]), PEER_PORT);
    mesh_server_cbs scb = {p_session, NULL};
    CU_ASSERT_EQUAL_FATAL(mesh_server_new(&S->psrv, &S->env[HP], S->tls[HP], &pa, NULL, &scb, S),
                          MESH_OK);
    mesh_turn_cfg cfg = {.server = mesh_addr_v4(sim_host_ip(S->h[HS]), CTL_PORT),
                         .username = USER,
                         .password = pass ? pass : PASS,
                         .lifetime_s = lifetime};
    CU_ASSERT_EQUAL_FATAL(mesh_turn_new(&S->t, &S->env[HC], &cfg, &CBS, S), MESH_OK);
}

static void ts_stop(ts *S)
{
    mesh_session_free(S->cs);
    mesh_session_free(S->ps);
    mesh_turn_free(S->t);
    mesh_server_free(S->psrv);
    run(S, 100 * MS); /* the server sees the Refresh(0) and the closes */
    for (int i = 0; i < NCONN; i++)
        if (S->c[i].used && S->c[i].s) {
            S->env[HS].ops->stream_close(S->env[HS].obj, S->c[i].s, MESH_CLOSE_ABORT);
            free(S->c[i].held.b);
        }
    S->env[HS].ops->listener_close(S->env[HS].obj, S->l);
    S->env[HS].ops->listener_close(S->env[HS].obj, S->lr);
    for (int i = 0; i < NH; i++) {
        mesh_tls_ctx_free(S->tls[i]);
        mesh_identity_free(S->id[i]);
        sim_driver_free(S->d[i]);
    }
    sim_world_free(S->w);
}

/* ---- tests ------------------------------------------------------------------------------------
 */

/* 401 then credentials: allocated after 2 RTT of TCP + 2 transactions (4 RTT at 18 ms). */
static void test_allocate(void)
{
    ts S;
    ts_start(&S, M_OK, 600, NULL);
    run(&S, 200 * MS);
    CU_ASSERT_EQUAL(S.alloc_n, 1);
    CU_ASSERT_EQUAL(S.alloc_status, MESH_OK);
    CU_ASSERT_EQUAL(S.allocs, 1);
    CU_ASSERT(mesh_addr_equal(&S.relayed, &(mesh_addr){0}) == 0);
    CU_ASSERT_EQUAL(S.relayed.port, RELAY_PORT);
    CU_ASSERT_EQUAL(memcmp(S.mapped.ip, (uint8_t[]){198, 51, 100, 9}, 4), 0);
    mesh_turn_stats st = mesh_turn_get_stats(S.t);
    CU_ASSERT_EQUAL(st.requests, 2);
    CU_ASSERT_EQUAL(st.auth_retries, 1);
    CU_ASSERT_EQUAL(st.bad_integrity + st.bad_tid + st.malformed, 0);
    CU_ASSERT(mesh_turn_allocated(S.t));
    ts_stop(&S);
}

/* A 438 once: the new nonce is taken and the request resent. */
static void test_stale_nonce(void)
{
    ts S;
    ts_start(&S, M_STALE_ONCE, 600, NULL);
    run(&S, 200 * MS);
    CU_ASSERT_EQUAL(S.alloc_status, MESH_OK);
    CU_ASSERT_EQUAL(mesh_turn_get_stats(S.t).stale_nonces, 1);
    ts_stop(&S);
}

/* Lifetime 60 s: Refresh at 45 s, 90 s, ... (3/4 of the lifetime after each answer, which
 * comes one RTT later); permissions every 240 s. */
static void test_refresh_timing(void)
{
    ts S;
    ts_start(&S, M_OK, 60, NULL);
    run(&S, 200 * MS);
    CU_ASSERT_EQUAL_FATAL(S.alloc_status, MESH_OK);
    mesh_time t0 = now(&S);
    mesh_addr p = mesh_addr_v4(sim_host_ip(S.h[HP]), 0);
    CU_ASSERT_EQUAL(mesh_turn_permit(S.t, &p), MESH_OK);
    CU_ASSERT_EQUAL(mesh_turn_permit(S.t, &p), MESH_OK); /* the same IP: nothing new */
    run(&S, 300 * S_);
    CU_ASSERT(S.refreshes >= 6 && S.refreshes <= 7);
    /* the first Refresh reaches the server 45 s after the allocation's answer + 1/2 RTT */
    CU_ASSERT(S.refresh_at[0] > t0 + 44 * S_ && S.refresh_at[0] < t0 + 46 * S_);
    CU_ASSERT(S.refresh_at[1] - S.refresh_at[0] > 45 * S_ &&
              S.refresh_at[1] - S.refresh_at[0] < 45 * S_ + 100 * MS);
    CU_ASSERT_EQUAL(S.perm_reqs, 2); /* at once, then 240 s later */
    CU_ASSERT(S.perm_at[1] - S.perm_at[0] >= 240 * S_ && S.perm_at[1] - S.perm_at[0] < 241 * S_);
    CU_ASSERT(mesh_turn_allocated(S.t));
    ts_stop(&S);
}

static void exchange(ts *S)
{
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(mesh_session_send_data(S->cs, (uint64_t)i, (const uint8_t *)"to p", 4),
                        MESH_OK);
        CU_ASSERT_EQUAL(mesh_session_send_data(S->ps, (uint64_t)i, (const uint8_t *)"to c", 4),
                        MESH_OK);
    }
    run(S, 500 * MS);
    CU_ASSERT_EQUAL(S->c_msgs, 5);
    CU_ASSERT_EQUAL(S->p_msgs, 5);
}

/* P connects to the relayed address (P has permission): ConnectionAttempt, a data connection,
 * ConnectionBind, and the Meshara session inside, P the client, C the server. Q, without
 * permission, is refused by the server and C hears nothing. */
static void test_incoming_session(void)
{
    ts S;
    ts_start(&S, M_OK, 600, NULL);
    run(&S, 200 * MS);
    CU_ASSERT_EQUAL_FATAL(S.alloc_status, MESH_OK);
    mesh_addr p = mesh_addr_v4(sim_host_ip(S.h[HP]), 0);
    CU_ASSERT_EQUAL(mesh_turn_permit(S.t, &p), MESH_OK);
    run(&S, 100 * MS);
    CU_ASSERT_EQUAL(S.nperm, 1);
    mesh_session *q = NULL;
    CU_ASSERT_EQUAL(mesh_session_connect(&q, &S.env[HQ], S.tls[HQ], &S.relayed,
                                         mesh_identity_pubkey(S.id[HC]), NULL, &P_CBS, &S),
                    MESH_OK);
    CU_ASSERT_EQUAL(mesh_session_connect(&S.ps, &S.env[HP], S.tls[HP], &S.relayed,
                                         mesh_identity_pubkey(S.id[HC]), NULL, &P_CBS, &S),
                    MESH_OK);
    run(&S, 500 * MS);
    CU_ASSERT_EQUAL(mesh_session_get_state(q), MESH_SESSION_CLOSED);
    mesh_session_free(q);
    CU_ASSERT_EQUAL_FATAL(S.c_up, 1);
    CU_ASSERT_EQUAL(S.p_up, 1);
    CU_ASSERT_EQUAL(S.binds, 1);
    CU_ASSERT_EQUAL(mesh_turn_get_stats(S.t).attempts, 1);
    CU_ASSERT_EQUAL(
        memcmp(mesh_session_peer_key(S.cs), mesh_identity_pubkey(S.id[HP]), MESH_PUBKEY_LEN), 0);
    exchange(&S);
    CU_ASSERT_EQUAL(mesh_turn_conns(S.t), 1);
    CU_ASSERT_EQUAL(mesh_session_close(S.ps), MESH_OK);
    run(&S, 500 * MS);
    CU_ASSERT_EQUAL(S.c_closed, 1);
    CU_ASSERT_EQUAL(mesh_turn_conns(S.t), 0);
    ts_stop(&S);
}

/* C dials P through the server (Connect, ConnectionBind): C the client of the session. */
static void test_outgoing_session(void)
{
    ts S;
    ts_start(&S, M_OK, 600, NULL);
    run(&S, 200 * MS);
    CU_ASSERT_EQUAL_FATAL(S.alloc_status, MESH_OK);
    mesh_addr p = mesh_addr_v4(sim_host_ip(S.h[HP]), PEER_PORT);
    int err = 0;
    mesh_env venv = mesh_turn_env(S.t);
    mesh_stream *vs = mesh_turn_connect(S.t, &p, &(mesh_stream_cbs){0}, NULL, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vs);
    CU_ASSERT_EQUAL(mesh_session_connect_stream(&S.cs, &venv, S.tls[HC], vs,
                                                mesh_identity_pubkey(S.id[HP]), NULL, &C_CBS, &S),
                    MESH_OK);
    run(&S, 500 * MS);
    CU_ASSERT_EQUAL(S.connect_reqs, 1);
    CU_ASSERT_EQUAL(S.nperm, 1); /* the permission went first */
    CU_ASSERT_EQUAL_FATAL(S.c_up, 1);
    CU_ASSERT_EQUAL_FATAL(S.p_up, 1);
    exchange(&S);
    ts_stop(&S);
}

/* Each misbehaving server: its named error, once; the client stays inert after it. */
static void bad_server(int mode, const char *pass, int want, mesh_time by)
{
    ts S;
    ts_start(&S, mode, 600, pass);
    run(&S, by);
    CU_ASSERT_EQUAL(S.alloc_n, 1);
    CU_ASSERT_EQUAL(S.alloc_status, want);
    CU_ASSERT_FALSE(mesh_turn_allocated(S.t));
    run(&S, 30 * S_);
    CU_ASSERT_EQUAL(S.alloc_n, 1);
    mesh_addr p = mesh_addr_v4(sim_host_ip(S.h[HP]), PEER_PORT);
    int err = 0;
    CU_ASSERT_PTR_NULL(mesh_turn_connect(S.t, &p, &(mesh_stream_cbs){0}, NULL, &err));
    CU_ASSERT_EQUAL(err, MESH_ERR_STATE);
    mesh_turn_stats st = mesh_turn_get_stats(S.t);
    if (mode == M_BAD_MI)
        CU_ASSERT_EQUAL(st.bad_integrity, 1);
    if (mode == M_WRONG_TID)
        CU_ASSERT_EQUAL(st.bad_tid, 1);
    if (mode == M_WRONG_METHOD)
        CU_ASSERT_EQUAL(st.unexpected, 1);
    if (mode == M_STALE_LOOP)
        CU_ASSERT_EQUAL(st.stale_nonces, MESH_TURN_MAX_AUTH_TRIES - 1);
    ts_stop(&S);
}

static void test_bad_servers(void)
{
    bad_server(M_OK, "wrong", MESH_ERR_AUTH, 200 * MS); /* 401 after credentials */
    bad_server(M_441, NULL, MESH_ERR_AUTH, 200 * MS);
    bad_server(M_STALE_LOOP, NULL, MESH_ERR_AUTH, 300 * MS);
    bad_server(M_BAD_MI, NULL, MESH_ERR_TIMEOUT, 10200 * MS);
    bad_server(M_WRONG_TID, NULL, MESH_ERR_TIMEOUT, 10200 * MS);
    bad_server(M_GARBAGE, NULL, MESH_ERR_MALFORMED, 200 * MS);
    bad_server(M_NO_RELAYED, NULL, MESH_ERR_PROTOCOL, 200 * MS);
    bad_server(M_SILENT, NULL, MESH_ERR_TIMEOUT, 10200 * MS);
    bad_server(M_WRONG_METHOD, NULL, MESH_ERR_TIMEOUT, 10200 * MS);
    bad_server(M_TRUNCATED, NULL, MESH_ERR_CLOSED, 200 * MS);
}

/* Nobody at the server's address: the control connection's failure, named. */
static void test_no_server(void)
{
    ts S;
    ts_start(&S, M_OK, 600, NULL);
    mesh_turn_free(S.t);
    mesh_turn_cfg cfg = {
        .server = mesh_addr_v4(sim_host_ip(S.h[HQ]), CTL_PORT), .username = USER, .password = PASS};
    CU_ASSERT_EQUAL_FATAL(mesh_turn_new(&S.t, &S.env[HC], &cfg, &CBS, &S), MESH_OK);
    run(&S, 200 * MS);
    CU_ASSERT_EQUAL(S.alloc_n, 1);
    CU_ASSERT_EQUAL(S.alloc_status, MESH_ERR_REFUSED);
    cfg.username = NULL;
    mesh_turn *t2 = NULL;
    CU_ASSERT_EQUAL(mesh_turn_new(&t2, &S.env[HC], &cfg, &CBS, &S), MESH_ERR_INVAL);
    CU_ASSERT_PTR_NULL(t2);
    ts_stop(&S);
}

/* A node configured with the server (cfg.turn_*, node_turn.c): allocated, the relayed
 * address joins its signed record; its bootstrap node answers directly, so nothing is dialled
 * through the server (TURN is the fallback) but its IP is permitted; a client from that IP
 * reaches the node at the relayed address and the node's pool takes the session (path turn
 * in the stats). */
static void test_node(void)
{
    ts S;
    ts_start(&S, M_OK, 600, NULL);
    mesh_turn_free(S.t); /* the node brings its own client */
    S.t = NULL;
    mesh_node *p = NULL, *c = NULL;
    mesh_node_cfg pc = {.identity = S.id[HQ]};
    pc.listen = mesh_addr_v4(sim_host_ip(S.h[HQ]), 7000);
    CU_ASSERT_EQUAL_FATAL(mesh_node_new(&p, &S.env[HQ], &pc, NULL, NULL), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_node_start(p), MESH_OK);
    mesh_node_cfg cc = {.identity = S.id[HC], .turn_user = USER, .turn_password = PASS};
    cc.listen = mesh_addr_v4(sim_host_ip(S.h[HC]), 7000);
    cc.turn_server = mesh_addr_v4(sim_host_ip(S.h[HS]), CTL_PORT);
    cc.bootstrap[0].addr = pc.listen;
    memcpy(cc.bootstrap[0].key, mesh_identity_pubkey(S.id[HQ]), MESH_PUBKEY_LEN);
    cc.n_bootstrap = 1;
    CU_ASSERT_EQUAL_FATAL(mesh_node_new(&c, &S.env[HC], &cc, NULL, NULL), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_node_start(c), MESH_OK);
    uint64_t seq0 = mesh_node_record(c)->seq; /* before the allocation */
    run(&S, 5 * S_);
    mesh_node_stats st;
    mesh_node_get_stats(c, &st);
    CU_ASSERT_EQUAL(st.turn_state, MESH_NODE_TURN_ALLOCATED);
    CU_ASSERT_EQUAL(st.turn_relayed.port, RELAY_PORT);
    const mesh_peer_record *r = mesh_node_record(c);
    int advertised = 0;
    for (size_t i = 0; i < r->naddrs; i++)
        advertised |= mesh_addr_equal(&r->addrs[i], &st.turn_relayed);
    CU_ASSERT(advertised);
    CU_ASSERT(r->seq > seq0);
    CU_ASSERT_EQUAL(st.connected, 1);   /* P, directly */
    CU_ASSERT_EQUAL(S.connect_reqs, 0); /* not through the server */
    CU_ASSERT_EQUAL(st.turn_sessions_out, 0);
    CU_ASSERT_EQUAL(S.nperm, 1); /* P's IP */
    /* a client on P's host dials the relayed address */
    mesh_identity *xid = NULL;
    mesh_tls_ctx *xtls = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_identity_generate(&xid, &S.env[HQ]), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_tls_ctx_new(&xtls, &S.env[HQ], xid, NULL), MESH_OK);
    CU_ASSERT_EQUAL(mesh_session_connect(&S.ps, &S.env[HQ], xtls, &st.turn_relayed,
                                         mesh_identity_pubkey(S.id[HC]), NULL, &P_CBS, &S),
                    MESH_OK);
    run(&S, 1 * S_);
    CU_ASSERT_EQUAL(S.p_up, 1);
    mesh_node_get_stats(c, &st);
    CU_ASSERT_EQUAL(st.turn_sessions_in, 1);
    CU_ASSERT_EQUAL(st.connected, 2);
    mesh_session_free(S.ps);
    S.ps = NULL;
    mesh_node_free(c);
    mesh_node_free(p);
    mesh_tls_ctx_free(xtls);
    mesh_identity_free(xid);
    ts_stop(&S);
}

static const CU_TestInfo turn_tests[] = {
    {"401, credentials, allocated", test_allocate},
    {"stale nonce (438) once", test_stale_nonce},
    {"refresh at 3/4 lifetime, permissions every 240 s", test_refresh_timing},
    {"peer connects to the relayed address: session inside", test_incoming_session},
    {"Connect to a peer: session inside", test_outgoing_session},
    {"misbehaving servers: named errors", test_bad_servers},
    {"no server", test_no_server},
    {"a node with a TURN server", test_node},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"turn", NULL, NULL, NULL, NULL, (CU_TestInfo *)turn_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
