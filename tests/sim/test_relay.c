/* test_relay.c — relays (core/relay.h, core/relay_end.h) in the simulator.
 *
 * A world of four hosts on the core: C (client), R (relay: a mesh_server and the relay
 * service), T and U (targets). C, T and U each hold a Meshara session to R (connected out:
 * what an unreachable node can do) with a relay end on it; the glue here routes the Relay
 * bodies those sessions carry. Through a circuit, C and T run a second, end-to-end session
 * (mesh_session_connect_stream / mesh_session_accept on the circuit's virtual streams). The
 * relay's glue can alter a byte of the data it forwards, and records what it forwarded.
 * Last, the service and an end alone with a recording send: the protocol's edges. */
#include <stdlib.h>
#include <string.h>

#include "core/relay.h"
#include "core/relay_end.h"
#include "core/server.h"
#include "core/session.h"
#include "mesh_test.h"
#include "sim/driver.h"

#define MS MESH_NS_PER_MS
#define PORT 443

enum { NC, NR, NT, NU, NN };
enum { MAX_RLINKS = 8, BULK = 1 << 20, CHUNK = 64 * 1024 };

typedef struct rw rw;

typedef struct node {
    sim_host *h;
    sim_driver *d;
    mesh_env env;
    mesh_identity *id;
    mesh_tls_ctx *tls;
} node;

/* One outer session: at R (relay side, the service's link) or at C/T/U (with a relay end). */
typedef struct olink {
    rw *W;
    mesh_session *s;
    mesh_relay_end *end; /* NULL on R's side */
    mesh_env venv;       /* the end's overlay env */
    int connected, closed, reason, reserved, reserve_status;
    uint32_t ttl;
} olink;

/* One end of an inner (end-to-end) session. */
typedef struct inner {
    mesh_session *s;
    int connected, closed, reason, msgs;
    mesh_test_buf got;
} inner;

struct rw {
    sim_world *w;
    node n[NN];
    mesh_server *srv;
    mesh_relay_service *svc;
    olink rl[MAX_RLINKS]; /* R's sessions */
    int nrl;
    olink out[NN]; /* C's, T's, U's session to R */
    inner ic, it;  /* the inner session: C's end, T's end */
    int flip_data; /* R alters the next RelayData it forwards */
    mesh_test_buf relayed;
};

static void run(rw *W, mesh_time dt)
{
    sim_sched *s = sim_world_sched(W->w);
    CU_ASSERT_EQUAL(sim_sched_run_until(s, sim_sched_now(s) + dt), MESH_OK);
}

/* ---- the glue: Relay bodies in and out of the outer sessions ----------------------------------
 */

static int send_relay(mesh_session *s, const mesh_relay_msg *r)
{
    if (!s)
        return MESH_ERR_CLOSED;
    mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
    e.body_case = MESHARA__WIRE__ENVELOPE__BODY_RELAY;
    e.relay = (mesh_relay_msg *)r;
    return mesh_session_send(s, &e);
}

static int svc_send(void *glue, void *link, const mesh_relay_msg *r)
{
    rw *W = glue;
    olink *l = link;
    if (r->kind_case != MESHARA__WIRE__RELAY__KIND_DATA)
        return send_relay(l->s, r);
    mesh_test_buf_add(&W->relayed, r->data->data.data, r->data->data.len);
    if (!W->flip_data || r->data->data.len < 8)
        return send_relay(l->s, r);
    W->flip_data = 0; /* a relay that alters bytes */
    Meshara__Wire__RelayData d = *r->data;
    uint8_t *copy = malloc(d.data.len);
    memcpy(copy, d.data.data, d.data.len);
    copy[d.data.len / 2] ^= 0x10;
    d.data.data = copy;
    mesh_relay_msg m = *r;
    m.data = &d;
    int rc = send_relay(l->s, &m);
    free(copy);
    return rc;
}

static int end_send(void *glue, void *link, const mesh_relay_msg *r)
{
    (void)glue;
    return send_relay(((olink *)link)->s, r);
}

static void ol_connected(mesh_session *s, void *ud)
{
    (void)s;
    ((olink *)ud)->connected++;
}

static void ol_message(mesh_session *s, const mesh_envelope *e, void *ud)
{
    olink *l = ud;
    CU_ASSERT_EQUAL_FATAL(e->body_case, MESHARA__WIRE__ENVELOPE__BODY_RELAY);
    int rc = l->end ? mesh_relay_end_input(l->end, e->relay)
                    : mesh_relay_service_input(l->W->svc, l, mesh_session_peer_key(s), e->relay);
    CU_ASSERT_EQUAL(rc, MESH_OK);
}

static void ol_writable(mesh_session *s, void *ud)
{
    (void)s;
    olink *l = ud;
    if (l->end)
        mesh_relay_end_writable(l->end);
}

static void ol_closed(mesh_session *s, int reason, void *ud)
{
    (void)s;
    olink *l = ud;
    l->closed++;
    l->reason = reason;
    if (l->end)
        mesh_relay_end_link_closed(l->end);
    else
        mesh_relay_service_link_closed(l->W->svc, l);
}

static const mesh_session_cbs OL_CBS = {ol_connected, ol_message, ol_writable, ol_closed};

static void srv_session(mesh_server *srv, mesh_session *s, void *ud)
{
    (void)srv;
    rw *W = ud;
    CU_ASSERT_FATAL(W->nrl < MAX_RLINKS);
    olink *l = &W->rl[W->nrl++];
    memset(l, 0, sizeof *l);
    l->W = W;
    l->s = s;
    l->connected = 1;
    mesh_session_set_cbs(s, &OL_CBS, l);
}

/* ---- the inner session and the targets' side ----------------------------------------------- */

static void in_connected(mesh_session *s, void *ud)
{
    (void)s;
    ((inner *)ud)->connected++;
}

static void in_message(mesh_session *s, const mesh_envelope *e, void *ud)
{
    (void)s;
    inner *p = ud;
    CU_ASSERT_EQUAL_FATAL(e->body_case, MESHARA__WIRE__ENVELOPE__BODY_DATA);
    p->msgs++;
    mesh_test_buf_add(&p->got, e->data->payload.data, e->data->payload.len);
}

static void in_closed(mesh_session *s, int reason, void *ud)
{
    (void)s;
    inner *p = ud;
    p->closed++;
    p->reason = reason;
}

static const mesh_session_cbs IN_CBS = {in_connected, in_message, NULL, in_closed};

static void on_reserved(mesh_relay_end *e, int status, uint32_t ttl_s, void *ud)
{
    (void)e;
    olink *l = ud;
    l->reserved++;
    l->reserve_status = status;
    l->ttl = ttl_s;
}

/* T takes every circuit as the server of an inner session (U refuses: no on_incoming). */
static void on_incoming(mesh_relay_end *e, mesh_stream *s, const uint8_t *from_key, void *ud)
{
    (void)e;
    olink *l = ud;
    rw *W = l->W;
    CU_ASSERT(memcmp(from_key, mesh_identity_pubkey(W->n[NC].id), MESH_PUBKEY_LEN) == 0);
    CU_ASSERT_EQUAL(mesh_session_accept(&W->it.s, &l->venv, W->n[NT].tls, s, NULL, &IN_CBS, &W->it),
                    MESH_OK);
}

static const mesh_relay_end_cbs T_CBS = {on_reserved, on_incoming};
static const mesh_relay_end_cbs U_CBS = {on_reserved, NULL};

/* ---- the world --------------------------------------------------------------------------------
 */

static void rw_start(rw *W, const mesh_relay_limits *lim)
{
    memset(W, 0, sizeof *W);
    CU_ASSERT_EQUAL_FATAL(sim_world_new(&W->w, 3, NULL), MESH_OK);
    sim_sched_set_event_cap(sim_world_sched(W->w), 50000000);
    sim_net *net = sim_world_net(W->w);
    sim_net_set_core(net, &(sim_link_cfg){.latency = 5 * MS}, NULL, NULL);
    sim_link_cfg l = {.latency = 2 * MS};
    static const char *const names[NN] = {"c", "r", "t", "u"};
    for (int i = 0; i < NN; i++) {
        node *n = &W->n[i];
        sim_host_cfg hc = {names[i], SIM_IP4(198, 51, 100, 1 + i), NULL, l, l};
        CU_ASSERT_EQUAL_FATAL(sim_net_add_host(net, &hc, &n->h), MESH_OK);
        CU_ASSERT_EQUAL_FATAL(sim_driver_new(&n->d, W->w, n->h), MESH_OK);
        n->env = sim_driver_env(n->d);
        CU_ASSERT_EQUAL_FATAL(mesh_identity_generate(&n->id, &n->env), MESH_OK);
        CU_ASSERT_EQUAL_FATAL(mesh_tls_ctx_new(&n->tls, &n->env, n->id, NULL), MESH_OK);
    }
    node *r = &W->n[NR];
    CU_ASSERT_EQUAL_FATAL(mesh_relay_service_new(&W->svc, &r->env, lim, svc_send, W), MESH_OK);
    mesh_addr la = mesh_addr_v4(sim_host_ip(r->h), PORT);
    mesh_server_cbs scbs = {srv_session, NULL};
    CU_ASSERT_EQUAL_FATAL(mesh_server_new(&W->srv, &r->env, r->tls, &la, NULL, &scbs, W), MESH_OK);
    for (int i = 0; i < NN; i++) {
        if (i == NR)
            continue;
        olink *o = &W->out[i];
        o->W = W;
        const mesh_relay_end_cbs *cbs = i == NT ? &T_CBS : i == NU ? &U_CBS : NULL;
        CU_ASSERT_EQUAL_FATAL(mesh_relay_end_new(&o->end, &W->n[i].env, end_send, W, o, cbs, o),
                              MESH_OK);
        o->venv = mesh_relay_end_env(o->end);
        CU_ASSERT_EQUAL_FATAL(mesh_session_connect(&o->s, &W->n[i].env, W->n[i].tls, &la,
                                                   mesh_identity_pubkey(r->id), NULL, &OL_CBS, o),
                              MESH_OK);
    }
    run(W, 500 * MS);
    for (int i = 0; i < NN; i++)
        CU_ASSERT_FATAL(i == NR || W->out[i].connected == 1);
}

static void rw_stop(rw *W)
{
    mesh_session_free(W->ic.s);
    mesh_session_free(W->it.s);
    for (int i = 0; i < NN; i++) {
        mesh_relay_end_free(W->out[i].end);
        mesh_session_free(W->out[i].s);
    }
    for (int i = 0; i < W->nrl; i++)
        mesh_session_free(W->rl[i].s);
    mesh_server_free(W->srv);
    mesh_relay_service_free(W->svc);
    for (int i = 0; i < NN; i++) {
        sim_driver_free(W->n[i].d);
        mesh_tls_ctx_free(W->n[i].tls);
        mesh_identity_free(W->n[i].id);
    }
    sim_world_free(W->w);
    free(W->ic.got.b);
    free(W->it.got.b);
    free(W->relayed.b);
}

static const uint8_t *node_id(rw *W, int i)
{
    static uint8_t id[MESH_NODE_ID_LEN];
    mesh_node_id_of(mesh_identity_pubkey(W->n[i].id), id);
    return id;
}

static void reserve(rw *W, int i, int want)
{
    CU_ASSERT_EQUAL(mesh_relay_end_reserve(W->out[i].end, 600), MESH_OK);
    run(W, 100 * MS);
    CU_ASSERT_EQUAL(W->out[i].reserved, 1);
    CU_ASSERT_EQUAL(W->out[i].reserve_status, want);
}

/* C opens a circuit to target and runs the inner session's client over it (pinning T). */
static void open_inner(rw *W, int target)
{
    int err = 0;
    olink *c = &W->out[NC];
    mesh_stream *s = mesh_relay_end_connect(c->end, node_id(W, target), NULL, NULL, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL_FATAL(mesh_session_connect_stream(&W->ic.s, &c->venv, W->n[NC].tls, s,
                                                      mesh_identity_pubkey(W->n[target].id), NULL,
                                                      &IN_CBS, &W->ic),
                          MESH_OK);
}

static void pattern(uint8_t *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)((i * 2654435761u + seed) >> 11);
}

static int contains(const mesh_test_buf *hay, const uint8_t *needle, size_t n)
{
    for (size_t i = 0; i + n <= hay->len; i++)
        if (memcmp(hay->b + i, needle, n) == 0)
            return 1;
    return 0;
}

/* ---- through the relay ------------------------------------------------------------------------
 */

/* T reserves; C's circuit to T carries a whole Meshara session: both ends CONNECTED with each
 * other's key, 1 MiB from C to T intact (windows refilled many times), the relay forwarded
 * ciphertext only; an orderly close of the inner session frees the circuit everywhere. */
static void test_circuit_carries_session(void)
{
    rw W;
    rw_start(&W, NULL);
    reserve(&W, NT, MESH_OK);
    CU_ASSERT_EQUAL(W.out[NT].ttl, 600);
    open_inner(&W, NT);
    run(&W, 500 * MS);
    CU_ASSERT_FATAL(W.ic.connected == 1 && W.it.connected == 1);
    CU_ASSERT(memcmp(mesh_session_peer_key(W.it.s), mesh_identity_pubkey(W.n[NC].id),
                     MESH_PUBKEY_LEN) == 0);
    uint8_t *bulk = malloc(BULK);
    pattern(bulk, BULK, 1);
    for (size_t off = 0; off < BULK; off += CHUNK)
        CU_ASSERT_EQUAL(mesh_session_send_data(W.ic.s, off / CHUNK, bulk + off, CHUNK), MESH_OK);
    run(&W, 3000 * MS);
    CU_ASSERT_EQUAL(W.it.msgs, BULK / CHUNK);
    CU_ASSERT(W.it.got.len == BULK && memcmp(W.it.got.b, bulk, BULK) == 0);
    CU_ASSERT(W.relayed.len > BULK);
    CU_ASSERT_FALSE(contains(&W.relayed, bulk + 4096, 32)); /* the relay saw ciphertext */
    mesh_relay_stats st;
    mesh_relay_service_stats(W.svc, &st);
    CU_ASSERT(st.circuits == 1 && st.circuits_opened == 1 && st.bytes_relayed > BULK);
    CU_ASSERT_EQUAL(mesh_session_close(W.ic.s), MESH_OK);
    run(&W, 500 * MS);
    CU_ASSERT(W.ic.closed == 1 && W.ic.reason == MESH_OK);
    CU_ASSERT(W.it.closed == 1 && W.it.reason == MESH_OK);
    mesh_relay_service_stats(W.svc, &st);
    CU_ASSERT_EQUAL(st.circuits, 0);
    CU_ASSERT_EQUAL(mesh_relay_end_circuits(W.out[NC].end) + mesh_relay_end_circuits(W.out[NT].end),
                    0);
    CU_ASSERT_EQUAL(W.out[NC].closed + W.out[NT].closed, 0); /* the outer sessions live on */
    free(bulk);
    rw_stop(&W);
}

/* A relay that alters one byte of the circuit: the inner session fails with MESH_ERR_TLS at
 * the receiver, which gets nothing of the altered data; the relay's sessions go on. */
static void test_relay_alters_bytes(void)
{
    rw W;
    rw_start(&W, NULL);
    reserve(&W, NT, MESH_OK);
    open_inner(&W, NT);
    run(&W, 500 * MS);
    CU_ASSERT_FATAL(W.ic.connected == 1 && W.it.connected == 1);
    W.flip_data = 1;
    uint8_t m[256];
    pattern(m, sizeof m, 2);
    CU_ASSERT_EQUAL(mesh_session_send_data(W.ic.s, 1, m, sizeof m), MESH_OK);
    run(&W, 500 * MS);
    CU_ASSERT_EQUAL(W.flip_data, 0);
    CU_ASSERT(W.it.closed == 1 && W.it.reason == MESH_ERR_TLS);
    CU_ASSERT_EQUAL(W.it.msgs, 0);
    CU_ASSERT_EQUAL(W.ic.closed, 1); /* the far end hung up (named, not OK) */
    CU_ASSERT_NOT_EQUAL(W.ic.reason, MESH_OK);
    CU_ASSERT_EQUAL(W.out[NC].closed + W.out[NT].closed, 0);
    rw_stop(&W);
}

/* Refusals, each named at the client: no reservation for the target (NOT_FOUND), a target
 * that turns circuits down (REFUSED), the reservation table full (LIMIT to the second
 * target), circuits per client (LIMIT). */
static void test_refusals(void)
{
    mesh_relay_limits lim = {.reservations = 1, .circuits_per_peer = 1};
    rw W;
    rw_start(&W, &lim);
    open_inner(&W, NT); /* T has no reservation yet */
    run(&W, 200 * MS);
    CU_ASSERT(W.ic.closed == 1 && W.ic.reason == MESH_ERR_NOT_FOUND);
    mesh_session_free(W.ic.s);
    memset(&W.ic, 0, sizeof W.ic);

    reserve(&W, NU, MESH_OK); /* U refuses every circuit */
    reserve(&W, NT, MESH_ERR_LIMIT);
    open_inner(&W, NU);
    run(&W, 200 * MS);
    CU_ASSERT(W.ic.closed == 1 && W.ic.reason == MESH_ERR_REFUSED);
    mesh_session_free(W.ic.s);
    memset(&W.ic, 0, sizeof W.ic);

    /* circuits per client: the second, while the first waits for its accept, is refused */
    CU_ASSERT_PTR_NOT_NULL(
        mesh_relay_end_connect(W.out[NC].end, node_id(&W, NU), NULL, NULL, NULL));
    open_inner(&W, NU);
    run(&W, 100 * MS);
    CU_ASSERT(W.ic.closed == 1 && W.ic.reason == MESH_ERR_LIMIT);
    mesh_relay_stats st;
    mesh_relay_service_stats(W.svc, &st);
    CU_ASSERT_EQUAL(st.refused, 5); /* not found, refused, reservation full, 2 per-client... */
    CU_ASSERT_EQUAL(W.out[NC].closed + W.out[NT].closed + W.out[NU].closed, 0);
    rw_stop(&W);
}

/* Bytes and time per circuit: over either, the relay closes both legs with MESH_ERR_LIMIT and
 * the inner session ends with it at both ends. */
static void test_limits(void)
{
    for (int which = 0; which < 2; which++) {
        mesh_relay_limits lim = {.max_bytes = which == 0 ? 64 * 1024 : 0,
                                 .max_s = which == 1 ? 2 : 0};
        rw W;
        rw_start(&W, &lim);
        reserve(&W, NT, MESH_OK);
        open_inner(&W, NT);
        run(&W, 500 * MS);
        CU_ASSERT_FATAL(W.ic.connected == 1 && W.it.connected == 1);
        if (which == 0) {
            uint8_t *b = calloc(1, CHUNK);
            for (int i = 0; i < 3; i++)
                CU_ASSERT_EQUAL(mesh_session_send_data(W.ic.s, i, b, CHUNK), MESH_OK);
            free(b);
            run(&W, 1000 * MS);
        } else {
            run(&W, 1000 * MS);
            CU_ASSERT_EQUAL(W.ic.closed, 0);
            run(&W, 1500 * MS);
        }
        CU_ASSERT(W.ic.closed == 1 && W.ic.reason == MESH_ERR_LIMIT);
        CU_ASSERT(W.it.closed == 1 && W.it.reason == MESH_ERR_LIMIT);
        mesh_relay_stats st;
        mesh_relay_service_stats(W.svc, &st);
        CU_ASSERT(st.closed_limit == 1 && st.circuits == 0);
        CU_ASSERT(which == 1 || st.bytes_relayed <= 64 * 1024);
        rw_stop(&W);
    }
}

/* The target's session to the relay dies: the relay closes the circuit's other leg
 * (MESH_ERR_RESET at the client) and drops the reservation. */
static void test_leg_closed(void)
{
    rw W;
    rw_start(&W, NULL);
    reserve(&W, NT, MESH_OK);
    open_inner(&W, NT);
    run(&W, 500 * MS);
    CU_ASSERT_FATAL(W.ic.connected == 1);
    mesh_session_free(W.out[NT].s); /* RST towards R, no callback here */
    W.out[NT].s = NULL;
    mesh_relay_end_link_closed(W.out[NT].end);
    run(&W, 200 * MS);
    CU_ASSERT(W.ic.closed == 1 && W.ic.reason == MESH_ERR_RESET);
    CU_ASSERT(W.it.closed == 1 && W.it.reason == MESH_ERR_RESET);
    mesh_relay_stats st;
    mesh_relay_service_stats(W.svc, &st);
    CU_ASSERT(st.reservations == 0 && st.circuits == 0);
    rw_stop(&W);
}

/* ---- the protocol's edges, with a recording send -------------------------------------------- */

enum { MAX_SENT = 32 };

typedef struct sent {
    void *link;
    int kind, status;
    uint64_t circuit;
    size_t len;
} sent;

typedef struct rec {
    sent m[MAX_SENT];
    int n;
} rec;

static int rec_send(void *glue, void *link, const mesh_relay_msg *r)
{
    rec *x = glue;
    CU_ASSERT_FATAL(x->n < MAX_SENT);
    sent *s = &x->m[x->n++];
    memset(s, 0, sizeof *s);
    s->link = link;
    s->kind = r->kind_case;
    switch (r->kind_case) {
    case MESHARA__WIRE__RELAY__KIND_CLOSE:
        s->circuit = r->close->circuit;
        s->status = r->close->status;
        break;
    case MESHARA__WIRE__RELAY__KIND_INCOMING:
        s->circuit = r->incoming->circuit;
        break;
    case MESHARA__WIRE__RELAY__KIND_DATA:
        s->circuit = r->data->circuit;
        s->len = r->data->data.len;
        break;
    case MESHARA__WIRE__RELAY__KIND_RESERVED:
        s->status = r->reserved->status;
        break;
    default:
        break;
    }
    return MESH_OK;
}

typedef struct lone {
    sim_world *w;
    sim_driver *d;
    mesh_env env;
} lone;

static void lone_start(lone *x)
{
    CU_ASSERT_EQUAL_FATAL(sim_world_new(&x->w, 5, NULL), MESH_OK);
    sim_host *h;
    sim_host_cfg hc = {"r", SIM_IP4(198, 51, 100, 9), NULL, {0}, {0}};
    CU_ASSERT_EQUAL_FATAL(sim_net_add_host(sim_world_net(x->w), &hc, &h), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_driver_new(&x->d, x->w, h), MESH_OK);
    x->env = sim_driver_env(x->d);
}

static void lone_run(lone *x, mesh_time dt)
{
    sim_sched *s = sim_world_sched(x->w);
    CU_ASSERT_EQUAL(sim_sched_run_until(s, sim_sched_now(s) + dt), MESH_OK);
}

static void lone_stop(lone *x)
{
    sim_driver_free(x->d);
    sim_world_free(x->w);
}

/* Build a Relay of one kind around sub (a sub-message of that kind). */
#define RELAY_OF(m, kindname, field, sub)                                                          \
    mesh_relay_msg m = MESHARA__WIRE__RELAY__INIT;                                                 \
    m.kind_case = MESHARA__WIRE__RELAY__KIND_##kindname;                                           \
    m.field = &(sub)

static int svc_connect(mesh_relay_service *svc, void *link, const uint8_t *key, uint64_t id,
                       const uint8_t *target)
{
    Meshara__Wire__RelayConnect c = MESHARA__WIRE__RELAY_CONNECT__INIT;
    c.circuit = id;
    c.target.data = (uint8_t *)target;
    c.target.len = MESH_NODE_ID_LEN;
    RELAY_OF(m, CONNECT, connect, c);
    return mesh_relay_service_input(svc, link, key, &m);
}

/* The service: kinds only a relay sends are a protocol error; bad and reused circuit ids are
 * refused; nothing flows before the accept; a target that never accepts times out on both
 * legs; a reservation not renewed expires. */
static void test_service_edges(void)
{
    lone x;
    lone_start(&x);
    rec r = {0};
    mesh_relay_service *svc = NULL;
    mesh_relay_limits lim = {.max_ttl_s = 5};
    CU_ASSERT_EQUAL_FATAL(mesh_relay_service_new(&svc, &x.env, &lim, rec_send, &r), MESH_OK);
    int lc = 0, lt = 0; /* two links: their addresses */
    uint8_t kc[MESH_PUBKEY_LEN], kt[MESH_PUBKEY_LEN], idt[MESH_NODE_ID_LEN];
    memset(kc, 1, sizeof kc);
    memset(kt, 2, sizeof kt);
    mesh_node_id_of(kt, idt);
    Meshara__Wire__RelayReserved rd = MESHARA__WIRE__RELAY_RESERVED__INIT;
    RELAY_OF(bad, RESERVED, reserved, rd);
    CU_ASSERT_EQUAL(mesh_relay_service_input(svc, &lc, kc, &bad), MESH_ERR_PROTOCOL);

    Meshara__Wire__RelayReserve rv = MESHARA__WIRE__RELAY_RESERVE__INIT;
    rv.ttl_s = 100; /* more than the service grants */
    RELAY_OF(res, RESERVE, reserve, rv);
    CU_ASSERT_EQUAL(mesh_relay_service_input(svc, &lt, kt, &res), MESH_OK);
    CU_ASSERT(r.n == 1 && r.m[0].kind == MESHARA__WIRE__RELAY__KIND_RESERVED &&
              r.m[0].status == MESH_OK);

    CU_ASSERT_EQUAL(svc_connect(svc, &lc, kc, 0, idt), MESH_OK);
    CU_ASSERT_EQUAL(svc_connect(svc, &lc, kc, MESH_RELAY_ID_RELAY | 1, idt), MESH_OK);
    CU_ASSERT(r.m[1].status == MESH_ERR_INVAL && r.m[2].status == MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(svc_connect(svc, &lc, kc, 7, idt), MESH_OK);
    CU_ASSERT(r.m[3].kind == MESHARA__WIRE__RELAY__KIND_INCOMING && r.m[3].link == &lt);
    uint64_t t_id = r.m[3].circuit;
    CU_ASSERT((t_id & MESH_RELAY_ID_RELAY) != 0);
    CU_ASSERT_EQUAL(svc_connect(svc, &lc, kc, 7, idt), MESH_OK);
    CU_ASSERT(r.m[4].kind == MESHARA__WIRE__RELAY__KIND_CLOSE && r.m[4].status == MESH_ERR_EXISTS);

    Meshara__Wire__RelayData d = MESHARA__WIRE__RELAY_DATA__INIT;
    d.circuit = 7;
    d.data.data = (uint8_t *)"early";
    d.data.len = 5;
    RELAY_OF(dm, DATA, data, d);
    CU_ASSERT_EQUAL(mesh_relay_service_input(svc, &lc, kc, &dm), MESH_OK);
    CU_ASSERT_EQUAL(r.n, 5); /* dropped: not accepted yet */

    lone_run(&x, MESH_RELAY_ACCEPT_TIMEOUT_MS * MS);
    CU_ASSERT_EQUAL(r.n, 7);
    CU_ASSERT(r.m[5].link == &lc && r.m[5].circuit == 7 && r.m[5].status == MESH_ERR_TIMEOUT);
    CU_ASSERT(r.m[6].link == &lt && r.m[6].circuit == t_id && r.m[6].status == MESH_ERR_TIMEOUT);

    /* the 5 s reservation ran out during those 10 s */
    CU_ASSERT_EQUAL(svc_connect(svc, &lc, kc, 8, idt), MESH_OK);
    CU_ASSERT(r.m[7].kind == MESHARA__WIRE__RELAY__KIND_CLOSE &&
              r.m[7].status == MESH_ERR_NOT_FOUND);
    mesh_relay_stats st;
    mesh_relay_service_stats(svc, &st);
    CU_ASSERT(st.reservations == 0 && st.circuits == 0);
    mesh_relay_service_free(svc);
    mesh_relay_service_free(NULL);
    lone_stop(&x);
}

typedef struct probe {
    int closed, reason;
} probe;

static void pr_closed(mesh_stream *s, int reason, void *ud)
{
    (void)s;
    probe *p = ud;
    p->closed++;
    p->reason = reason;
}

/* An end: kinds only a relay's clients send are a protocol error; an incoming id without the
 * relay's bit is refused; a far end sending beyond its window, or crediting more than it was
 * sent, breaks the circuit (MESH_ERR_PROTOCOL to the consumer and the relay). */
static void test_end_edges(void)
{
    lone x;
    lone_start(&x);
    rec r = {0};
    mesh_relay_end *e = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_relay_end_new(&e, &x.env, rec_send, &r, &r, NULL, NULL), MESH_OK);
    Meshara__Wire__RelayAccept ac = MESHARA__WIRE__RELAY_ACCEPT__INIT;
    RELAY_OF(bad, ACCEPT, accept, ac);
    CU_ASSERT_EQUAL(mesh_relay_end_input(e, &bad), MESH_ERR_PROTOCOL);

    uint8_t key[MESH_PUBKEY_LEN] = {0};
    Meshara__Wire__RelayIncoming in = MESHARA__WIRE__RELAY_INCOMING__INIT;
    in.circuit = 5; /* not a relay's id */
    in.from_key.data = key;
    in.from_key.len = sizeof key;
    RELAY_OF(im, INCOMING, incoming, in);
    CU_ASSERT_EQUAL(mesh_relay_end_input(e, &im), MESH_OK);
    CU_ASSERT(r.n == 1 && r.m[0].status == MESH_ERR_PROTOCOL);

    for (int k = 0; k < 2; k++) {
        probe p = {0};
        mesh_stream_cbs cbs = {NULL, NULL, NULL, pr_closed};
        int base = r.n;
        mesh_stream *s = mesh_relay_end_connect(e, key, &cbs, &p, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        uint64_t id = r.m[base].circuit;
        Meshara__Wire__RelayConnected ok = MESHARA__WIRE__RELAY_CONNECTED__INIT;
        ok.circuit = id = (uint64_t)(k + 1);
        RELAY_OF(cm, CONNECTED, connected, ok);
        CU_ASSERT_EQUAL(mesh_relay_end_input(e, &cm), MESH_OK);
        if (k == 0) { /* a window and one byte more */
            uint8_t *big = calloc(1, MESH_RELAY_WINDOW + 1);
            Meshara__Wire__RelayData d = MESHARA__WIRE__RELAY_DATA__INIT;
            d.circuit = id;
            d.data.data = big;
            d.data.len = MESH_RELAY_WINDOW + 1;
            RELAY_OF(dm, DATA, data, d);
            CU_ASSERT_EQUAL(mesh_relay_end_input(e, &dm), MESH_OK);
            free(big);
        } else { /* credit while nothing was sent */
            Meshara__Wire__RelayWindow w = MESHARA__WIRE__RELAY_WINDOW__INIT;
            w.circuit = id;
            w.credit = 1;
            RELAY_OF(wm, WINDOW, window, w);
            CU_ASSERT_EQUAL(mesh_relay_end_input(e, &wm), MESH_OK);
        }
        CU_ASSERT(r.m[r.n - 1].kind == MESHARA__WIRE__RELAY__KIND_CLOSE &&
                  r.m[r.n - 1].circuit == id && r.m[r.n - 1].status == MESH_ERR_PROTOCOL);
        lone_run(&x, 1 * MS);
        CU_ASSERT(p.closed == 1 && p.reason == MESH_ERR_PROTOCOL);
    }
    CU_ASSERT_EQUAL(mesh_relay_end_circuits(e), 0);
    mesh_relay_end_free(e);
    lone_stop(&x);
}

static const CU_TestInfo relay_tests[] = {
    {"a circuit carries a whole session, ciphertext only", test_circuit_carries_session},
    {"a relay altering a byte fails the inner session (TLS)", test_relay_alters_bytes},
    {"refusals: not found, refused, reservations and circuits full", test_refusals},
    {"limits: bytes and time per circuit", test_limits},
    {"a leg's session ends: the circuit ends at both ends", test_leg_closed},
    {"service edges: kinds, ids, accept timeout, expiry", test_service_edges},
    {"end edges: kinds, ids, windows", test_end_edges},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"relay", NULL, NULL, NULL, NULL, (CU_TestInfo *)relay_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
