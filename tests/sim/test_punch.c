/* test_punch.c — TCP hole punching (core/punch.h) between nodes behind simulated NATs.
 *
 * Topology (one-way latencies): every host link 5 ms, the core 10 ms; each node sits alone
 * in its LAN behind its own NAT. R is a public rendezvous host: nodes register from their
 * listening port (R's accept sees the observed address: the candidate) and R splices two
 * nodes' TCP streams together, so the coordination session between two nodes is an
 * end-to-end Meshara session through R (what a relay gives). V is a public Meshara node a
 * lying peer names as its address.
 *
 *   N0 10.0.0.2 ─ NAT 203.0.113.1 ┐                        ┌ R 198.51.100.1 (register, splice)
 *   N1 10.0.1.2 ─ NAT 203.0.113.2 ┼──────── core 10 ms ────┤
 *   N2 10.0.2.2 ─ NAT 203.0.113.3 ┘                        └ V 198.51.100.9:7000
 */
#include "mesh_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/punch.h"
#include "core/session.h"
#include "core/tls.h"
#include "sim/driver.h"
#include "sim/nat.h"

#define MS(x) ((mesh_time)(x)*MESH_NS_PER_MS)
#define IP_R SIM_IP4(198, 51, 100, 1)
#define IP_V SIM_IP4(198, 51, 100, 9)
enum { PORT = 7000, REG_PORT = 3478, SPLICE_PORT = 443, NN = 3, MAXP = 2 };

static const sim_nat_cfg KINDS[] = {
    {.mapping = SIM_NAT_ENDPOINT_INDEPENDENT, .filtering = SIM_NAT_ENDPOINT_INDEPENDENT},
    {.mapping = SIM_NAT_ENDPOINT_INDEPENDENT, .filtering = SIM_NAT_ADDRESS_DEPENDENT},
    {.mapping = SIM_NAT_ENDPOINT_INDEPENDENT, .filtering = SIM_NAT_ADDRESS_PORT_DEPENDENT},
    {.mapping = SIM_NAT_ADDRESS_PORT_DEPENDENT,
     .filtering = SIM_NAT_ADDRESS_PORT_DEPENDENT,
     .port_alloc = SIM_NAT_PORT_RANDOM},
};
static const char *const KIND_NAMES[] = {"full-cone", "addr-restricted", "port-restricted",
                                         "symmetric"};
enum { K_FULL, K_ADDR, K_PORT, K_SYM, NKINDS };

typedef struct world world;

typedef struct host {
    sim_host *h;
    sim_driver *d;
    mesh_env env;
    mesh_identity *id;
    mesh_tls_ctx *tls;
} host;

typedef struct pair pair;

/* One side of a punching pair. */
typedef struct side {
    pair *P;
    int node; /* index in world.n */
    int initiator;
    mesh_stream *raw; /* towards R's splice, until the coordination session adopts it */
    mesh_session *coord;
    mesh_punch *p;
    int done, result;
    mesh_session *won;
    mesh_time done_at;
    mesh_punch_stats st;
} side;

struct pair {
    world *W;
    side s[2];
    mesh_stream *rs[2]; /* R's spliced streams */
    mesh_addr lie[MESH_PUNCH_MAX_CANDS];
    size_t n_lie;   /* side 1 announces these instead of its observed address */
    mesh_time back; /* R holds side 1's bytes to side 0 this long */
};

typedef struct node {
    world *W;
    host x;
    sim_lan *lan;
    sim_nat *nat;
    mesh_listener *l;
    mesh_addr local, observed;
    mesh_stream *reg;
    unsigned stray; /* accepts no punch took */
} node;

struct world {
    sim_world *w;
    node n[NN];
    host r, v;
    mesh_listener *reg_l, *splice_l, *v_l;
    mesh_stream *r_reg[NN];
    mesh_session *v_s[4];
    unsigned v_accepts;
    pair pairs[MAXP];
    int npairs;
    pair *splicing;
};

static mesh_time now(world *W)
{
    return sim_sched_now(sim_world_sched(W->w));
}

static void run_for(world *W, mesh_time d)
{
    CU_ASSERT_EQUAL(sim_sched_run_until(sim_world_sched(W->w), now(W) + d), MESH_OK);
}

static void host_init(world *W, host *x, const sim_host_cfg *hc)
{
    sim_net *net = sim_world_net(W->w);
    CU_ASSERT_EQUAL_FATAL(sim_net_add_host(net, hc, &x->h), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_driver_new(&x->d, W->w, x->h), MESH_OK);
    x->env = sim_driver_env(x->d);
    CU_ASSERT_EQUAL_FATAL(mesh_identity_generate(&x->id, &x->env), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_tls_ctx_new(&x->tls, &x->env, x->id, NULL), MESH_OK);
}

static void host_free(host *x)
{
    mesh_tls_ctx_free(x->tls);
    mesh_identity_free(x->id);
}

/* ---- R: registration and splicing ------------------------------------------------------- */

static void ignore_closed(mesh_stream *s, int reason, void *ud)
{
    (void)s;
    (void)reason;
    mesh_stream **slot = ud;
    if (slot)
        *slot = NULL;
}

static const mesh_stream_cbs KEEP_CBS = {NULL, NULL, NULL, ignore_closed};

static void reg_accept(mesh_listener *l, mesh_stream *st, const mesh_addr *peer, void *ud)
{
    world *W = ud;
    (void)l;
    for (int i = 0; i < NN; i++)
        if (W->n[i].nat && sim_addr_ip4(peer) == sim_nat_public_ip(W->n[i].nat)) {
            W->n[i].observed = *peer; /* what R saw: the node's candidate */
            W->r_reg[i] = st;
            W->r.env.ops->stream_set_cbs(W->r.env.obj, st, &KEEP_CBS, &W->r_reg[i]);
            return;
        }
    W->r.env.ops->stream_close(W->r.env.obj, st, MESH_CLOSE_ABORT);
}

typedef struct held {
    pair *P;
    size_t n;
    uint8_t d[];
} held;

static void held_ev(void *ctx, void *arg)
{
    held *h = arg;
    (void)ctx;
    if (h->P->rs[0])
        h->P->W->r.env.ops->stream_write(h->P->W->r.env.obj, h->P->rs[0], h->d, h->n);
    free(h);
}

static void splice_data(mesh_stream *st, const uint8_t *d, size_t n, void *ud)
{
    pair *P = ud;
    world *W = P->W;
    mesh_stream *to = st == P->rs[0] ? P->rs[1] : P->rs[0];
    if (to == P->rs[0] && P->back) { /* an asymmetric channel */
        held *h = malloc(sizeof *h + n);
        CU_ASSERT_PTR_NOT_NULL_FATAL(h);
        h->P = P;
        h->n = n;
        memcpy(h->d, d, n);
        CU_ASSERT_EQUAL(
            sim_sched_after(sim_world_sched(W->w), P->back, 0, 0, held_ev, NULL, h, NULL), MESH_OK);
        return;
    }
    if (to)
        W->r.env.ops->stream_write(W->r.env.obj, to, d, n);
}

static void splice_closed(mesh_stream *st, int reason, void *ud)
{
    pair *P = ud;
    (void)reason;
    int i = st == P->rs[0] ? 0 : 1;
    P->rs[i] = NULL;
    if (P->rs[1 - i])
        P->W->r.env.ops->stream_close(P->W->r.env.obj, P->rs[1 - i], MESH_CLOSE_GRACEFUL);
}

static const mesh_stream_cbs SPLICE_CBS = {NULL, splice_data, NULL, splice_closed};

static void splice_accept(mesh_listener *l, mesh_stream *st, const mesh_addr *peer, void *ud)
{
    world *W = ud;
    pair *P = W->splicing;
    (void)l;
    (void)peer;
    int i = P->rs[0] ? 1 : 0;
    P->rs[i] = st;
    W->r.env.ops->stream_set_cbs(W->r.env.obj, st, &SPLICE_CBS, P);
}

/* ---- V: a Meshara node answering anyone ------------------------------------------------------ */

static void v_accept(mesh_listener *l, mesh_stream *st, const mesh_addr *peer, void *ud)
{
    world *W = ud;
    (void)l;
    (void)peer;
    W->v_accepts++;
    int i = 0;
    while (i < 4 && W->v_s[i])
        i++;
    if (i == 4) {
        W->v.env.ops->stream_close(W->v.env.obj, st, MESH_CLOSE_ABORT);
        return;
    }
    CU_ASSERT_EQUAL(mesh_session_accept(&W->v_s[i], &W->v.env, W->v.tls, st, NULL, NULL, NULL),
                    MESH_OK);
}

/* ---- nodes: listener, coordination session, punch ---------------------------------------- */

/* A connection on a node's listening port: one of its punches may take it. */
static void node_accept(mesh_listener *l, mesh_stream *st, const mesh_addr *peer, void *ud)
{
    node *nd = ud;
    world *W = nd->W;
    (void)l;
    for (int k = 0; k < W->npairs; k++)
        for (int j = 0; j < 2; j++) {
            side *sd = &W->pairs[k].s[j];
            if (&W->n[sd->node] == nd && sd->p && mesh_punch_accept(sd->p, st, peer) == MESH_OK)
                return;
        }
    nd->stray++;
    nd->x.env.ops->stream_close(nd->x.env.obj, st, MESH_CLOSE_ABORT);
}

static void punch_done(mesh_punch *p, int result, mesh_session *s, void *ud)
{
    side *sd = ud;
    sd->done++;
    sd->result = result;
    sd->won = s;
    sd->done_at = now(sd->P->W);
    mesh_punch_get_stats(p, &sd->st);
}

static const mesh_punch_cbs PUNCH_CBS = {punch_done};

static mesh_punch_cfg punch_cfg(side *sd)
{
    node *nd = &sd->P->W->n[sd->node];
    mesh_punch_cfg c = {.local = nd->local, .cands = &nd->observed, .n_cands = 1};
    if (sd == &sd->P->s[1] && sd->P->n_lie) {
        c.cands = sd->P->lie;
        c.n_cands = sd->P->n_lie;
    }
    return c;
}

static void coord_message(mesh_session *s, const mesh_envelope *e, void *ud)
{
    side *sd = ud;
    if (e->body_case != MESHARA__WIRE__ENVELOPE__BODY_PUNCH)
        return;
    if (sd->p) {
        mesh_punch_on_message(sd->p, e->punch);
        return;
    }
    node *nd = &sd->P->W->n[sd->node];
    mesh_punch_cfg c = punch_cfg(sd);
    CU_ASSERT_EQUAL(
        mesh_punch_respond(&sd->p, &nd->x.env, nd->x.tls, s, &c, e->punch, &PUNCH_CBS, sd),
        MESH_OK);
}

static const mesh_session_cbs COORD_CBS = {NULL, coord_message, NULL, NULL};
static const mesh_stream_cbs RAW_CBS = {NULL, NULL, NULL, NULL};

/* ---- the world ------------------------------------------------------------------------------- */

/* Nodes behind NATs of kinds k[0..nn-1], R and V; every node registered at R. */
static void world_init(world *W, uint64_t seed, const int *k, int nn)
{
    memset(W, 0, sizeof *W);
    CU_ASSERT_EQUAL_FATAL(sim_world_new(&W->w, seed, NULL), MESH_OK);
    sim_net *net = sim_world_net(W->w);
    sim_net_set_core(net, &(sim_link_cfg){.latency = MS(10)}, NULL, NULL);
    sim_link_cfg l5 = {.latency = MS(5)};
    sim_host_cfg hr = {"r", IP_R, NULL, l5, l5}, hv = {"v", IP_V, NULL, l5, l5};
    host_init(W, &W->r, &hr);
    host_init(W, &W->v, &hv);
    int err = 0;
    mesh_addr a = mesh_addr_v4(IP_R, REG_PORT);
    W->reg_l = W->r.env.ops->listen(W->r.env.obj, &a, reg_accept, W, &err);
    a = mesh_addr_v4(IP_R, SPLICE_PORT);
    W->splice_l = W->r.env.ops->listen(W->r.env.obj, &a, splice_accept, W, &err);
    a = mesh_addr_v4(IP_V, PORT);
    W->v_l = W->v.env.ops->listen(W->v.env.obj, &a, v_accept, W, &err);
    CU_ASSERT_FATAL(W->reg_l && W->splice_l && W->v_l);
    static const char *const names[NN] = {"n0", "n1", "n2"};
    for (int i = 0; i < nn; i++) {
        node *nd = &W->n[i];
        nd->W = W;
        uint32_t ip = SIM_IP4(10, 0, i, 2), nat_ip = SIM_IP4(203, 0, 113, i + 1);
        sim_lan_cfg lc = {names[i], {0}, {0}, nat_ip, 1, NULL};
        CU_ASSERT_EQUAL_FATAL(sim_net_add_lan(net, &lc, &nd->lan), MESH_OK);
        CU_ASSERT_EQUAL_FATAL(sim_nat_new(&nd->nat, net, nd->lan, &KINDS[k[i]]), MESH_OK);
        sim_host_cfg hc = {names[i], ip, nd->lan, l5, l5};
        host_init(W, &nd->x, &hc);
        nd->local = mesh_addr_v4(ip, PORT);
        nd->l = nd->x.env.ops->listen(nd->x.env.obj, &nd->local, node_accept, nd, &err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(nd->l);
        mesh_addr reg = mesh_addr_v4(IP_R, REG_PORT);
        nd->reg =
            nd->x.env.ops->connect_from(nd->x.env.obj, &nd->local, &reg, &KEEP_CBS, &nd->reg, &err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(nd->reg);
    }
    run_for(W, MS(600));
    for (int i = 0; i < nn; i++)
        CU_ASSERT_EQUAL_FATAL(sim_addr_ip4(&W->n[i].observed), sim_nat_public_ip(W->n[i].nat));
}

static void world_free(world *W)
{
    for (int k = 0; k < W->npairs; k++)
        for (int j = 0; j < 2; j++) {
            side *sd = &W->pairs[k].s[j];
            mesh_punch_free(sd->p);
            mesh_session_free(sd->won);
            mesh_session_free(sd->coord);
            if (sd->raw)
                W->n[sd->node].x.env.ops->stream_close(W->n[sd->node].x.env.obj, sd->raw,
                                                       MESH_CLOSE_ABORT);
        }
    for (int i = 0; i < 4; i++)
        mesh_session_free(W->v_s[i]);
    for (int i = 0; i < NN; i++) {
        node *nd = &W->n[i];
        if (!nd->nat)
            continue;
        if (nd->reg)
            nd->x.env.ops->stream_close(nd->x.env.obj, nd->reg, MESH_CLOSE_ABORT);
        nd->x.env.ops->listener_close(nd->x.env.obj, nd->l);
        host_free(&nd->x);
        sim_driver_free(nd->x.d);
        sim_nat_free(nd->nat);
    }
    W->r.env.ops->listener_close(W->r.env.obj, W->reg_l);
    W->r.env.ops->listener_close(W->r.env.obj, W->splice_l);
    W->v.env.ops->listener_close(W->v.env.obj, W->v_l);
    host_free(&W->r);
    host_free(&W->v);
    sim_driver_free(W->r.d);
    sim_driver_free(W->v.d);
    sim_world_free(W->w);
}

/* A coordination session between nodes a (client) and b, spliced through R. */
static pair *pair_new(world *W, int a, int b)
{
    pair *P = &W->pairs[W->npairs++];
    P->W = W;
    W->splicing = P;
    mesh_addr to = mesh_addr_v4(IP_R, SPLICE_PORT);
    int err = 0;
    for (int j = 0; j < 2; j++) {
        side *sd = &P->s[j];
        sd->P = P;
        sd->node = j ? b : a;
        sd->initiator = !j;
        node *nd = &W->n[sd->node];
        sd->raw = nd->x.env.ops->connect(nd->x.env.obj, &to, &RAW_CBS, sd, &err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(sd->raw);
        run_for(W, MS(400)); /* up, and accepted by R in this order */
    }
    node *na = &W->n[a], *nb = &W->n[b];
    CU_ASSERT_EQUAL_FATAL(mesh_session_connect_stream(&P->s[0].coord, &na->x.env, na->x.tls,
                                                      P->s[0].raw, mesh_identity_pubkey(nb->x.id),
                                                      NULL, &COORD_CBS, &P->s[0]),
                          MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_session_accept(&P->s[1].coord, &nb->x.env, nb->x.tls, P->s[1].raw,
                                              NULL, &COORD_CBS, &P->s[1]),
                          MESH_OK);
    P->s[0].raw = P->s[1].raw = NULL;
    run_for(W, MS(1000));
    CU_ASSERT_EQUAL_FATAL(mesh_session_get_state(P->s[0].coord), MESH_SESSION_CONNECTED);
    CU_ASSERT_EQUAL_FATAL(mesh_session_get_state(P->s[1].coord), MESH_SESSION_CONNECTED);
    return P;
}

static void pair_start(pair *P)
{
    side *sd = &P->s[0];
    node *nd = &P->W->n[sd->node];
    mesh_punch_cfg c = punch_cfg(sd);
    CU_ASSERT_EQUAL_FATAL(
        mesh_punch_start(&sd->p, &nd->x.env, nd->x.tls, sd->coord, &c, &PUNCH_CBS, sd), MESH_OK);
}

/* The punched sessions of a pair talk to each other's keys. */
static void check_punched(pair *P)
{
    world *W = P->W;
    for (int j = 0; j < 2; j++) {
        side *sd = &P->s[j];
        CU_ASSERT_EQUAL(sd->done, 1);
        CU_ASSERT_EQUAL(sd->result, MESH_OK);
        CU_ASSERT_PTR_NOT_NULL_FATAL(sd->won);
        CU_ASSERT_EQUAL(mesh_session_get_state(sd->won), MESH_SESSION_CONNECTED);
        const node *other = &W->n[P->s[1 - j].node];
        CU_ASSERT_EQUAL(memcmp(mesh_session_peer_key(sd->won), mesh_identity_pubkey(other->x.id),
                               MESH_PUBKEY_LEN),
                        0);
        /* directly between the two NATs, not through R */
        mesh_addr pa = mesh_session_peer_addr(sd->won);
        CU_ASSERT_EQUAL(sim_addr_ip4(&pa), sim_nat_public_ip(other->nat));
    }
}

/* ---- tests ------------------------------------------------------------------------------------
 */

static sim_nat_chain chain_of(int kind)
{
    sim_nat_chain c = {1, {sim_nat_hop_of(&KINDS[kind])}};
    return c;
}

typedef struct outcome {
    int res[2];
    mesh_punch_stats st[2];
    mesh_time done_at[2];
    unsigned stray, v_accepts;
} outcome;

/* Node 0 (kind ka) punches to node 1 (kind kb); R holds what node 1 sends node 0 back more
 * (0: forwarded at once); run until both sides are done (bounded). */
static outcome punch_pair_back(uint64_t seed, int ka, int kb, mesh_time back)
{
    world W;
    int k[2] = {ka, kb};
    world_init(&W, seed, k, 2);
    pair *P = pair_new(&W, 0, 1);
    P->back = back;
    pair_start(P);
    run_for(&W, MS(30000));
    outcome o = {{0}};
    for (int j = 0; j < 2; j++) {
        CU_ASSERT_EQUAL(P->s[j].done, 1);
        o.res[j] = P->s[j].result;
        o.st[j] = P->s[j].st;
        o.done_at[j] = P->s[j].done_at;
    }
    if (o.res[0] == MESH_OK && o.res[1] == MESH_OK)
        check_punched(P);
    o.stray = W.n[0].stray + W.n[1].stray;
    o.v_accepts = W.v_accepts;
    world_free(&W);
    return o;
}

static outcome punch_pair(uint64_t seed, int ka, int kb)
{
    return punch_pair_back(seed, ka, kb, 0);
}

/* Full cone, address-restricted, port-restricted, each pair both ways: a punched session.
 * The punched TCP connection is up within 2 RTT of the coordination channel after SYNC (the
 * moment both sides fire: rtt/2 later); the authenticated session follows. */
static void test_predictable_pairs(void)
{
    for (int a = K_FULL; a <= K_PORT; a++)
        for (int b = K_FULL; b <= K_PORT; b++) {
            outcome o = punch_pair(5, a, b);
            CU_ASSERT_EQUAL(o.res[0], MESH_OK);
            CU_ASSERT_EQUAL(o.res[1], MESH_OK);
            mesh_time rtt = o.st[0].rtt, sync = o.st[0].started_at + rtt;
            CU_ASSERT(rtt > 0);
            CU_ASSERT_EQUAL(o.st[0].rounds, 1);
            CU_ASSERT_EQUAL(o.st[1].rounds, 1);
            CU_ASSERT(o.st[0].attempts == 1 && o.st[1].attempts == 1);
            CU_ASSERT(o.st[0].up_at > sync && o.st[0].up_at - sync <= 2 * rtt);
            CU_ASSERT(o.st[1].up_at > sync && o.st[1].up_at - sync <= 2 * rtt);
            /* the responder learnt the same rtt */
            CU_ASSERT_EQUAL(o.st[1].rtt / 1000, rtt / 1000);
            printf("\n  punch %s -> %s: rtt %.1f ms, tcp up %.1f ms after SYNC (%.2f rtt), "
                   "session %.1f ms after CONNECT",
                   KIND_NAMES[a], KIND_NAMES[b], (double)rtt / 1e6,
                   (double)(o.st[0].up_at - sync) / 1e6,
                   (double)(o.st[0].up_at - sync) / (double)rtt,
                   (double)(o.done_at[0] - o.st[0].started_at) / 1e6);
        }
}

/* Both behind symmetric NATs with random ports: a named failure (timeout) on both sides after
 * max_rounds rounds, one attempt per round and candidate, nothing else. */
static void test_symmetric_pair(void)
{
    outcome o = punch_pair(6, K_SYM, K_SYM);
    CU_ASSERT_EQUAL(o.res[0], MESH_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(o.res[1], MESH_ERR_TIMEOUT);
    for (int j = 0; j < 2; j++) {
        CU_ASSERT_EQUAL(o.st[j].rounds, MESH_PUNCH_DEFAULT_ROUNDS);
        CU_ASSERT_EQUAL(o.st[j].attempts, MESH_PUNCH_DEFAULT_ROUNDS); /* one candidate each */
        CU_ASSERT_EQUAL(o.st[j].up_at, 0);
    }
    /* three rounds (coordination + round timeout each) and two backoffs (1 s, 2 s) */
    mesh_time rtt = o.st[0].rtt, rt = MS(MESH_PUNCH_DEFAULT_ROUND_TIMEOUT_MS);
    mesh_time bound = 3 * (2 * rtt + rt) + MS(3 * MESH_PUNCH_DEFAULT_BACKOFF_MS);
    CU_ASSERT(o.done_at[0] - o.st[0].started_at <= bound);
    CU_ASSERT(o.done_at[1] - o.st[0].started_at <= bound + 2 * rt + MS(4000));
    CU_ASSERT_EQUAL(o.stray, 0);
    printf("\n  punch symmetric -> symmetric: %s after %.0f ms (bound %.0f ms), %u attempts",
           mesh_errname(o.res[0]), (double)(o.done_at[0] - o.st[0].started_at) / 1e6,
           (double)bound / 1e6, o.st[0].attempts);
}

/* Every ordered pair of the four kinds: success exactly where sim_nat_pair_paths predicts a
 * punched path; otherwise a named failure on both sides. */
static void test_matrix(void)
{
    for (int a = 0; a < NKINDS; a++)
        for (int b = 0; b < NKINDS; b++) {
            sim_nat_chain ca = chain_of(a), cb = chain_of(b);
            int want = !!(sim_nat_pair_paths(&ca, &cb) & SIM_NAT_PATH_PUNCHED);
            outcome o = punch_pair(7, a, b);
            printf("\n  %-15s -> %-15s predicted %-8s got %s / %s", KIND_NAMES[a], KIND_NAMES[b],
                   want ? "punched" : "none", mesh_errname(o.res[0]), mesh_errname(o.res[1]));
            if (want) {
                CU_ASSERT_EQUAL(o.res[0], MESH_OK);
                CU_ASSERT_EQUAL(o.res[1], MESH_OK);
            } else {
                for (int j = 0; j < 2; j++)
                    CU_ASSERT(o.res[j] == MESH_ERR_TIMEOUT || o.res[j] == MESH_ERR_REFUSED ||
                              o.res[j] == MESH_ERR_RESET);
                CU_ASSERT(o.st[0].attempts <= MESH_PUNCH_DEFAULT_ROUNDS);
            }
        }
}

/* N1 announces V's address as its own: N0's punch reaches V, whose key is not N1's: a named
 * failure after one connection to V (no retry towards it), while N0's punch with N2 at the
 * same time succeeds. */
static void test_liar(void)
{
    world W;
    int k[3] = {K_FULL, K_FULL, K_PORT};
    world_init(&W, 8, k, 3);
    pair *P1 = pair_new(&W, 0, 1);
    P1->lie[0] = mesh_addr_v4(IP_V, PORT);
    P1->n_lie = 1;
    pair *P2 = pair_new(&W, 0, 2);
    pair_start(P1);
    pair_start(P2);
    run_for(&W, MS(30000));
    CU_ASSERT_EQUAL(P1->s[0].done, 1);
    CU_ASSERT_EQUAL(P1->s[0].result, MESH_ERR_KEY_MISMATCH);
    CU_ASSERT_EQUAL(P1->s[0].st.rounds, 1);
    CU_ASSERT_EQUAL(P1->s[1].done, 1);
    CU_ASSERT_NOT_EQUAL(P1->s[1].result, MESH_OK);
    CU_ASSERT_EQUAL(W.v_accepts, 1);
    check_punched(P2);
    world_free(&W);
}

/* A peer whose candidates are all unusable: MESH_ERR_NOT_FOUND on both sides, no attempt. */
static void test_no_candidates(void)
{
    world W;
    int k[2] = {K_FULL, K_FULL};
    world_init(&W, 9, k, 2);
    pair *P = pair_new(&W, 0, 1);
    P->lie[0] = mesh_addr_v4(IP_V, 0);
    P->lie[1] = mesh_addr_v4(0, PORT);
    P->n_lie = 2;
    pair_start(P);
    run_for(&W, MS(10000));
    for (int j = 0; j < 2; j++) {
        CU_ASSERT_EQUAL(P->s[j].done, 1);
        CU_ASSERT_EQUAL(P->s[j].result, MESH_ERR_NOT_FOUND);
        CU_ASSERT_EQUAL(P->s[j].st.attempts, 0);
    }
    world_free(&W);
}

/* The parsing path of a received Punch: unparsable, port 0, unspecified and duplicate
 * addresses dropped, at most MESH_PUNCH_MAX_CANDS kept. */
static void test_candidates_parse(void)
{
    char *addrs[] = {"nonsense", "1.2.3.4:0", "0.0.0.0:80", "1.2.3.4:80", "1.2.3.4:80",
                     "[::1]:9",  "5.6.7.8:1", "9.9.9.9:2",  "8.8.8.8:3",  "7.7.7.7:4"};
    Meshara__Wire__Punch m = MESHARA__WIRE__PUNCH__INIT;
    m.addresses = addrs;
    m.n_addresses = sizeof addrs / sizeof addrs[0];
    mesh_addr out[MESH_PUNCH_MAX_CANDS];
    CU_ASSERT_EQUAL(mesh_punch_candidates(&m, out, MESH_PUNCH_MAX_CANDS), MESH_PUNCH_MAX_CANDS);
    char t[MESH_ADDR_STRLEN];
    CU_ASSERT_STRING_EQUAL(mesh_addr_format(&out[0], t, sizeof t), "1.2.3.4:80");
    CU_ASSERT_STRING_EQUAL(mesh_addr_format(&out[1], t, sizeof t), "[::1]:9");
    CU_ASSERT_STRING_EQUAL(mesh_addr_format(&out[3], t, sizeof t), "9.9.9.9:2");
    CU_ASSERT_EQUAL(mesh_punch_candidates(&m, out, 2), 2);
    m.n_addresses = 3;
    CU_ASSERT_EQUAL(mesh_punch_candidates(&m, out, MESH_PUNCH_MAX_CANDS), 0);
}

/* The channel is slow only from responder to initiator (R holds those bytes 100 ms more):
 * the responder gets SYNC 50 ms before the initiator's rtt/2 has passed, fires first, and
 * its SYN reaches a full-cone initiator's listener before the initiator fires — taken
 * through mesh_punch_accept, not dropped. Behind a port-restricted NAT that SYN is dropped
 * and the initiator's own SYN completes the open. */
static void test_asymmetric_channel(void)
{
    for (int a = K_FULL; a <= K_PORT; a += K_PORT - K_FULL) {
        outcome o = punch_pair_back(12, a, K_PORT, MS(100));
        CU_ASSERT_EQUAL(o.st[0].accepted, a == K_FULL ? 1u : 0u);
        mesh_time sync = o.st[0].started_at + o.st[0].rtt;
        CU_ASSERT(o.st[0].up_at > sync && o.st[0].up_at - sync <= 2 * o.st[0].rtt);
        CU_ASSERT_EQUAL(o.res[0], MESH_OK);
        CU_ASSERT_EQUAL(o.res[1], MESH_OK);
        CU_ASSERT_EQUAL(o.st[0].rounds, 1);
        printf("\n  asymmetric, %s -> port-restricted: initiator took %u accept(s), up %.1f ms "
               "after SYNC",
               KIND_NAMES[a], o.st[0].accepted,
               (double)(o.st[0].up_at - o.st[0].started_at - o.st[0].rtt) / 1e6);
    }
}

/* Same seed, same timeline. */
static void test_determinism(void)
{
    outcome a = punch_pair(11, K_ADDR, K_PORT), b = punch_pair(11, K_ADDR, K_PORT);
    CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof a), 0);
}

static CU_TestInfo sim_tests[] = {
    {"candidates of a Punch", test_candidates_parse},
    {"cone and restricted pairs punch within 2 RTT", test_predictable_pairs},
    {"symmetric pair: named failure, bounded", test_symmetric_pair},
    {"every pair as sim_nat_pair_paths predicts", test_matrix},
    {"a lying peer fails alone", test_liar},
    {"no usable candidates", test_no_candidates},
    {"asymmetric channel: the peer's SYN first", test_asymmetric_channel},
    {"determinism", test_determinism},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"punch_sim", NULL, NULL, NULL, NULL, sim_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
