/* test_dht.c — the Kademlia DHT (node/core/dht.c) over a fake transport.
 *
 * A tiny fake world stands in for a driver: a virtual clock and a heap of env timers (the
 * manual test env has none). Every DHT instance is a node of one in-memory "oracle" network:
 * a FIND_NODE or PING sent to a node is answered from that node's own DHT after a random
 * 10-100 ms round trip, through a world timer (never inside the transport call), and the
 * answering node learns the querier as Kademlia nodes do. A dead node's queries time out
 * after QUERY_TIMEOUT. Small tests check the metric, buckets, replacement, the per-IP bound
 * and record checks on one DHT; the network tests join 1,000 nodes and measure lookups, also
 * with 30% of them dead.
 */
#include "mesh_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dht.h"

/* ---- fake world: virtual clock and timers ------------------------------------------------- */

struct mesh_timer {
    mesh_timer_cb cb;
    void *ud;
    uint64_t gen;  /* bumped by every set/stop: older heap items are stale */
    unsigned refs; /* heap items pointing here */
    int armed, dead;
};

typedef struct heap_item {
    mesh_time at;
    uint64_t seq;
    mesh_timer *t;
    uint64_t gen;
} heap_item;

static struct world {
    mesh_time now;
    heap_item *heap;
    size_t n, cap;
    uint64_t seq;
    uint64_t rng;
} W;

static int item_less(const heap_item *a, const heap_item *b)
{
    return a->at != b->at ? a->at < b->at : a->seq < b->seq;
}

static void heap_push(heap_item it)
{
    if (W.n == W.cap) {
        W.cap = W.cap ? 2 * W.cap : 1024;
        W.heap = realloc(W.heap, W.cap * sizeof *W.heap);
        CU_ASSERT_PTR_NOT_NULL_FATAL(W.heap);
    }
    size_t i = W.n++;
    while (i > 0 && item_less(&it, &W.heap[(i - 1) / 2])) {
        W.heap[i] = W.heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    W.heap[i] = it;
}

static heap_item heap_pop(void)
{
    heap_item top = W.heap[0], last = W.heap[--W.n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= W.n)
            break;
        if (c + 1 < W.n && item_less(&W.heap[c + 1], &W.heap[c]))
            c++;
        if (!item_less(&W.heap[c], &last))
            break;
        W.heap[i] = W.heap[c];
        i = c;
    }
    if (W.n > 0)
        W.heap[i] = last;
    return top;
}

static mesh_timer *w_timer_new(void *obj, mesh_timer_cb cb, void *ud)
{
    (void)obj;
    mesh_timer *t = calloc(1, sizeof *t);
    if (t) {
        t->cb = cb;
        t->ud = ud;
    }
    return t;
}

static void w_timer_set(void *obj, mesh_timer *t, mesh_time when)
{
    (void)obj;
    t->gen++;
    t->armed = 1;
    t->refs++;
    heap_push((heap_item){when < W.now ? W.now : when, W.seq++, t, t->gen});
}

static void w_timer_stop(void *obj, mesh_timer *t)
{
    (void)obj;
    t->gen++;
    t->armed = 0;
}

static void w_timer_free(void *obj, mesh_timer *t)
{
    (void)obj;
    t->dead = 1;
    t->armed = 0;
    if (t->refs == 0)
        free(t);
}

/* Run timers due up to `until` (virtual time ends there). Returns how many fired. */
static uint64_t world_run(mesh_time until)
{
    uint64_t fired = 0;
    while (W.n > 0 && W.heap[0].at <= until) {
        heap_item it = heap_pop();
        mesh_timer *t = it.t;
        t->refs--;
        if (t->dead) {
            if (t->refs == 0)
                free(t);
            continue;
        }
        if (!t->armed || it.gen != t->gen)
            continue;
        CU_ASSERT_FATAL(it.at >= W.now); /* time never goes backwards */
        W.now = it.at;
        t->armed = 0;
        t->refs++; /* keep it alive through its callback, which may free it */
        t->cb(t, t->ud);
        t->refs--;
        if (t->dead && t->refs == 0)
            free(t);
        fired++;
    }
    if (until > W.now && until != MESH_TIME_NEVER)
        W.now = until;
    return fired;
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void world_reset(uint64_t seed)
{
    /* the heap may still hold timers of freed DHTs: they are dead, drain them */
    world_run(MESH_TIME_NEVER);
    free(W.heap);
    memset(&W, 0, sizeof W);
    W.rng = seed;
}

/* ---- nodes and the oracle network --------------------------------------------------------- */

enum {
    QUERY_TIMEOUT_MS = 1000,
    RTT_MIN_MS = 10,
    RTT_SPAN_MS = 90,
};

typedef struct tnode {
    mesh_env env;
    uint64_t rng;
    mesh_identity *id;
    mesh_peer_record rec;
    mesh_dht *dht;
    int dead;
    /* what the transport saw this node send */
    unsigned pings, finds;
    uint8_t last_targets[64][MESH_NODE_ID_LEN];
    unsigned ntargets;
} tnode;

static struct net {
    tnode *nodes;
    size_t n;
    size_t *by_id;   /* node indices sorted by node id */
    int ping_answer; /* for nodes outside the network: MESH_OK or a failure */
    int closing;     /* the DHTs are freed: drop messages unanswered */
} NET;

static mesh_time n_now(void *obj)
{
    (void)obj;
    return W.now;
}

static void n_random(void *obj, uint8_t *buf, size_t len)
{
    tnode *t = obj;
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(xorshift(&t->rng) >> 24);
}

static void n_log(void *obj, int level, const char *msg)
{
    (void)obj;
    if (getenv("MESH_TEST_LOG"))
        fprintf(stderr, "[dht %d] %s\n", level, msg);
}

static const mesh_env_ops NODE_ENV_OPS = {
    .now = n_now,
    .random = n_random,
    .log = n_log,
    .timer_new = w_timer_new,
    .timer_set = w_timer_set,
    .timer_stop = w_timer_stop,
    .timer_free = w_timer_free,
};

static int cmp_idx(const void *a, const void *b)
{
    return memcmp(NET.nodes[*(const size_t *)a].rec.node_id,
                  NET.nodes[*(const size_t *)b].rec.node_id, MESH_NODE_ID_LEN);
}

static tnode *node_by_id(const uint8_t id[MESH_NODE_ID_LEN])
{
    size_t lo = 0, hi = NET.n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = memcmp(NET.nodes[NET.by_id[mid]].rec.node_id, id, MESH_NODE_ID_LEN);
        if (c == 0)
            return &NET.nodes[NET.by_id[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* One query on its way: delivered by its own world timer. */
typedef struct msg {
    tnode *from, *to;
    int find;
    uint8_t target[MESH_NODE_ID_LEN];
    mesh_dht_reply_fn reply;
    void *ctx;
} msg;

static void deliver(mesh_timer *t, void *ud)
{
    msg *m = ud;
    w_timer_free(NULL, t);
    if (NET.closing) {
        /* nothing to answer */
    } else if (!m->to) {
        m->reply(m->ctx, NET.ping_answer, NULL, 0);
    } else if (m->to->dead) {
        m->reply(m->ctx, MESH_ERR_TIMEOUT, NULL, 0);
    } else {
        mesh_peer_record peers[MESH_DHT_K];
        size_t n = 0;
        /* the answering node has just talked to the querier through a session */
        mesh_dht_add(m->to->dht, &m->from->rec, 1);
        if (m->find)
            n = mesh_dht_closest(m->to->dht, m->target, peers, MESH_DHT_K);
        m->reply(m->ctx, MESH_OK, peers, n);
    }
    free(m);
}

static int send_query(tnode *from, const mesh_peer_record *to, const uint8_t *target,
                      mesh_dht_reply_fn reply, void *ctx)
{
    msg *m = calloc(1, sizeof *m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    m->from = from;
    m->to = node_by_id(to->node_id);
    m->find = target != NULL;
    if (target)
        memcpy(m->target, target, MESH_NODE_ID_LEN);
    m->reply = reply;
    m->ctx = ctx;
    mesh_time delay = (mesh_time)(RTT_MIN_MS + xorshift(&W.rng) % RTT_SPAN_MS) * MESH_NS_PER_MS;
    if (m->to && m->to->dead)
        delay = (mesh_time)QUERY_TIMEOUT_MS * MESH_NS_PER_MS;
    mesh_timer *t = w_timer_new(NULL, deliver, m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    w_timer_set(NULL, t, W.now + delay);
    return MESH_OK;
}

static int tr_find_node(void *ud, const mesh_peer_record *to,
                        const uint8_t target[MESH_NODE_ID_LEN], mesh_dht_reply_fn reply, void *ctx)
{
    tnode *from = ud;
    from->finds++;
    memcpy(from->last_targets[from->ntargets++ % 64], target, MESH_NODE_ID_LEN);
    return send_query(from, to, target, reply, ctx);
}

static int tr_ping(void *ud, const mesh_peer_record *to, mesh_dht_reply_fn reply, void *ctx)
{
    tnode *from = ud;
    from->pings++;
    return send_query(from, to, NULL, reply, ctx);
}

static const mesh_dht_transport TRANSPORT = {.find_node = tr_find_node, .ping = tr_ping};

/* Make n nodes with identities from seed; node i has IP 10.x.y.z = 10.0.0.0 + i + 1. The DHTs
 * are created too (empty tables). */
static void net_build(size_t n, uint64_t seed)
{
    world_reset(seed);
    NET.nodes = calloc(n, sizeof *NET.nodes);
    NET.by_id = calloc(n, sizeof *NET.by_id);
    CU_ASSERT_FATAL(NET.nodes && NET.by_id);
    NET.n = n;
    NET.ping_answer = MESH_ERR_TIMEOUT;
    for (size_t i = 0; i < n; i++) {
        tnode *t = &NET.nodes[i];
        t->env.ops = &NODE_ENV_OPS;
        t->env.obj = t;
        t->rng = seed * 0x9e3779b97f4a7c15ULL + i + 1;
        CU_ASSERT_EQUAL_FATAL(mesh_identity_generate(&t->id, &t->env), MESH_OK);
        mesh_addr a = mesh_addr_v4(0x0a000000u + (uint32_t)i + 1, 4433);
        CU_ASSERT_EQUAL_FATAL(mesh_peer_record_make(&t->rec, t->id, &a, 1, 1), MESH_OK);
        CU_ASSERT_EQUAL_FATAL(mesh_dht_new(&t->dht, &t->env, &t->rec, &TRANSPORT, t), MESH_OK);
        NET.by_id[i] = i;
    }
    qsort(NET.by_id, n, sizeof *NET.by_id, cmp_idx);
}

static void net_free(void)
{
    for (size_t i = 0; i < NET.n; i++) {
        mesh_dht_free(NET.nodes[i].dht);
        mesh_identity_free(NET.nodes[i].id);
    }
    /* messages still in flight are dropped unanswered (mesh_dht_free's contract) */
    NET.closing = 1;
    world_reset(1);
    free(NET.nodes);
    free(NET.by_id);
    memset(&NET, 0, sizeof NET);
}

/* ---- lookup results ------------------------------------------------------------------------- */

typedef struct result {
    int done, status;
    size_t n;
    unsigned hops, queries;
    uint8_t first[MESH_NODE_ID_LEN];
} result;

static void on_lookup(void *ud, int status, const mesh_peer_record *closest, size_t n,
                      unsigned hops, unsigned queries)
{
    result *r = ud;
    r->done++;
    r->status = status;
    r->n = n;
    r->hops = hops;
    r->queries = queries;
    if (n > 0)
        memcpy(r->first, closest[0].node_id, MESH_NODE_ID_LEN);
}

/* ---- small tests on one DHT --------------------------------------------------------------- */

static void test_metric(void)
{
    uint8_t t[32] = {0}, a[32] = {0}, b[32] = {0};
    a[0] = 0x01;
    b[0] = 0x80;
    CU_ASSERT_TRUE(mesh_dht_cmp(t, a, b) < 0);
    CU_ASSERT_TRUE(mesh_dht_cmp(t, b, a) > 0);
    CU_ASSERT_EQUAL(mesh_dht_cmp(t, a, a), 0);
    /* XOR, not numeric: from target 0x80.., 0xFF.. (distance 0x7F..) beats 0x00.. (0x80..) */
    t[0] = 0x80;
    b[0] = 0xFF;
    a[0] = 0x00;
    CU_ASSERT_TRUE(mesh_dht_cmp(t, b, a) < 0);
    /* the last byte decides when all others are equal */
    memset(a, 0x55, 32);
    memcpy(b, a, 32);
    b[31] ^= 1;
    CU_ASSERT_TRUE(mesh_dht_cmp(a, a, b) < 0);

    /* bucket index = common prefix length */
    CU_ASSERT_EQUAL(mesh_dht_common_prefix(a, a), 256);
    CU_ASSERT_EQUAL(mesh_dht_common_prefix(a, b), 255);
    memcpy(b, a, 32);
    b[0] ^= 0x80;
    CU_ASSERT_EQUAL(mesh_dht_common_prefix(a, b), 0);
    memcpy(b, a, 32);
    b[3] ^= 0x20;
    CU_ASSERT_EQUAL(mesh_dht_common_prefix(a, b), 26);
    b[3] ^= 0x01; /* a later difference does not matter */
    CU_ASSERT_EQUAL(mesh_dht_common_prefix(a, b), 26);
}

/* Indices (into NET.nodes, skipping node 0) whose id shares exactly `cpl` bits with node 0. */
static size_t ids_in_bucket(unsigned cpl, size_t *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 1; i < NET.n && n < max; i++)
        if (mesh_dht_common_prefix(NET.nodes[0].rec.node_id, NET.nodes[i].rec.node_id) == cpl)
            out[n++] = i;
    return n;
}

/* Node 0's table only: nodes[1..] are its candidates. */
static void test_bucket_bounds_and_replacement(void)
{
    net_build(120, 11);
    tnode *me = &NET.nodes[0];
    size_t b0[40];
    size_t nb0 = ids_in_bucket(0, b0, 40);
    CU_ASSERT_FATAL(nb0 >= MESH_DHT_K + 4);
    for (size_t i = 0; i < MESH_DHT_K; i++)
        CU_ASSERT_EQUAL(mesh_dht_add(me->dht, &NET.nodes[b0[i]].rec, 0), MESH_OK);
    CU_ASSERT_EQUAL(mesh_dht_get_stats(me->dht).entries, MESH_DHT_K);
    CU_ASSERT_EQUAL(me->pings, 0);
    /* the bucket is full: the 21st waits in the cache, the least recently seen is PINGed */
    for (size_t i = 1; i < MESH_DHT_K; i++)
        mesh_dht_seen(me->dht, NET.nodes[b0[i]].rec.node_id); /* b0[0] is now the oldest */
    tnode *cand = &NET.nodes[b0[MESH_DHT_K]];
    CU_ASSERT_EQUAL(mesh_dht_add(me->dht, &cand->rec, 1), MESH_OK);
    CU_ASSERT_EQUAL(mesh_dht_get_stats(me->dht).entries, MESH_DHT_K);
    CU_ASSERT_PTR_NOT_NULL(mesh_dht_get(me->dht, cand->rec.node_id));
    CU_ASSERT_EQUAL(me->pings, 1);
    mesh_peer_record all[MESH_DHT_K + 5];
    size_t n = mesh_dht_closest(me->dht, cand->rec.node_id, all, MESH_DHT_K + 5);
    CU_ASSERT_EQUAL(n, MESH_DHT_K); /* cached records are not handed out */
    /* a second candidate while the PING is out: cached, no second PING */
    tnode *cand2 = &NET.nodes[b0[MESH_DHT_K + 1]];
    CU_ASSERT_EQUAL(mesh_dht_add(me->dht, &cand2->rec, 0), MESH_OK);
    CU_ASSERT_EQUAL(me->pings, 1);

    /* the oldest is alive (it is in the network): it stays, the candidates stay cached */
    world_run(W.now + 2 * MESH_NS_PER_S);
    n = mesh_dht_closest(me->dht, NET.nodes[b0[0]].rec.node_id, all, 1);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(memcmp(all[0].node_id, NET.nodes[b0[0]].rec.node_id, 32), 0);

    /* now the oldest entry dies: the next PING fails and the best replacement (the one seen
     * alive: cand, not cand2) takes its slot */

    for (size_t i = 0; i < MESH_DHT_K; i++)
        mesh_dht_seen(me->dht, NET.nodes[b0[i]].rec.node_id);
    W.now += MESH_NS_PER_S;
    for (size_t i = 0; i < MESH_DHT_K; i++)
        if (i != 5)
            mesh_dht_seen(me->dht, NET.nodes[b0[i]].rec.node_id);
    tnode *victim = &NET.nodes[b0[5]];
    victim->dead = 1;
    tnode *cand3 = &NET.nodes[b0[MESH_DHT_K + 2]];
    CU_ASSERT_EQUAL(mesh_dht_add(me->dht, &cand3->rec, 0), MESH_OK);
    CU_ASSERT_EQUAL(me->pings, 2);
    world_run(W.now + 2 * MESH_NS_PER_S);
    CU_ASSERT_PTR_NULL(mesh_dht_get(me->dht, victim->rec.node_id));
    n = mesh_dht_closest(me->dht, cand->rec.node_id, all, 1);
    CU_ASSERT_EQUAL(memcmp(all[0].node_id, cand->rec.node_id, 32), 0);
    CU_ASSERT_EQUAL(mesh_dht_get_stats(me->dht).entries, MESH_DHT_K);

    /* stale by failures: MESH_DHT_STALE_FAILS failed queries in a row replace an entry */
    tnode *flaky = &NET.nodes[b0[7]];
    for (int i = 0; i < MESH_DHT_STALE_FAILS - 1; i++)
        mesh_dht_failed(me->dht, flaky->rec.node_id);
    CU_ASSERT_PTR_NOT_NULL(mesh_dht_get(me->dht, flaky->rec.node_id));
    mesh_dht_seen(me->dht, flaky->rec.node_id); /* an answer resets the count */
    for (int i = 0; i < MESH_DHT_STALE_FAILS - 1; i++)
        mesh_dht_failed(me->dht, flaky->rec.node_id);
    CU_ASSERT_PTR_NOT_NULL(mesh_dht_get(me->dht, flaky->rec.node_id));
    mesh_dht_failed(me->dht, flaky->rec.node_id);
    CU_ASSERT_PTR_NULL(mesh_dht_get(me->dht, flaky->rec.node_id));
    CU_ASSERT_EQUAL(mesh_dht_get_stats(me->dht).entries, MESH_DHT_K);

    /* one more stale entry takes the last replacement (cand2): the cache is empty now */
    tnode *gone = &NET.nodes[b0[8]];
    for (int f = 0; f < MESH_DHT_STALE_FAILS; f++)
        mesh_dht_failed(me->dht, gone->rec.node_id);
    CU_ASSERT_PTR_NULL(mesh_dht_get(me->dht, gone->rec.node_id));
    CU_ASSERT_PTR_NOT_NULL(mesh_dht_get(me->dht, cand2->rec.node_id));
    CU_ASSERT_PTR_NOT_NULL(mesh_dht_get(me->dht, cand3->rec.node_id));

    /* with the cache empty, a stale entry stays (maybe it comes back) but is not handed out;
     * a new candidate takes its place at once, without a PING */
    const uint8_t *stale = NET.nodes[b0[9]].rec.node_id;
    for (int f = 0; f < MESH_DHT_STALE_FAILS; f++)
        mesh_dht_failed(me->dht, stale);
    CU_ASSERT_PTR_NOT_NULL(mesh_dht_get(me->dht, stale));
    n = mesh_dht_closest(me->dht, stale, all, MESH_DHT_K);
    CU_ASSERT_EQUAL(n, MESH_DHT_K - 1);
    CU_ASSERT_NOT_EQUAL(memcmp(all[0].node_id, stale, 32), 0);
    unsigned pings = me->pings;
    tnode *fresh = &NET.nodes[b0[MESH_DHT_K + 3]];
    CU_ASSERT_EQUAL(mesh_dht_add(me->dht, &fresh->rec, 0), MESH_OK);
    CU_ASSERT_PTR_NULL(mesh_dht_get(me->dht, stale));
    CU_ASSERT_EQUAL(me->pings, pings);
    net_free();
}

static void test_closest_sorted(void)
{
    net_build(200, 12);
    tnode *me = &NET.nodes[0];
    for (size_t i = 1; i < NET.n; i++)
        mesh_dht_add(me->dht, &NET.nodes[i].rec, 1);
    mesh_dht_stats st = mesh_dht_get_stats(me->dht);
    CU_ASSERT_TRUE(st.entries > 40);
    /* against every entry sorted: the first k of all are the k closest, for targets in
     * every bucket and for our own id */
    enum { ALL = 5 * MESH_DHT_K * 8 };
    mesh_peer_record *all = calloc(ALL, sizeof *all);
    CU_ASSERT_PTR_NOT_NULL_FATAL(all);
    size_t nall = mesh_dht_closest(me->dht, me->rec.node_id, all, ALL);
    CU_ASSERT_EQUAL(nall, st.entries);
    for (size_t i = 1; i < nall; i++)
        CU_ASSERT_TRUE(mesh_dht_cmp(me->rec.node_id, all[i - 1].node_id, all[i].node_id) < 0);
    mesh_peer_record out[MESH_DHT_K], ref[MESH_DHT_K];
    uint8_t target[32];
    for (int t = 0; t < 200; t++) {
        mesh_env_random(&me->env, target, sizeof target);
        if (t < 8) /* targets near our own id too: only the first t bits differ from it */
            for (int i = 4 * t; i < 32; i++)
                target[i] = me->rec.node_id[i];
        if (t == 8)
            memcpy(target, me->rec.node_id, 32);
        size_t n = mesh_dht_closest(me->dht, target, out, MESH_DHT_K);
        CU_ASSERT_EQUAL(n, MESH_DHT_K);
        /* reference: selection over all entries */
        size_t nref = 0;
        for (size_t i = 0; i < nall; i++) {
            size_t pos = nref < MESH_DHT_K ? nref++ : MESH_DHT_K;
            if (pos == MESH_DHT_K) {
                if (mesh_dht_cmp(target, all[i].node_id, ref[MESH_DHT_K - 1].node_id) >= 0)
                    continue;
                pos = MESH_DHT_K - 1;
            }
            while (pos > 0 && mesh_dht_cmp(target, all[i].node_id, ref[pos - 1].node_id) < 0) {
                ref[pos] = ref[pos - 1];
                pos--;
            }
            ref[pos] = all[i];
        }
        for (size_t i = 0; i < n; i++)
            CU_ASSERT_EQUAL(memcmp(out[i].node_id, ref[i].node_id, 32), 0);
    }
    free(all);
    CU_ASSERT_EQUAL(mesh_dht_closest(me->dht, target, out, 0), 0);
    net_free();
}

static void test_sybil_bound(void)
{
    net_build(80, 13);
    tnode *me = &NET.nodes[0];
    size_t b0[8], b1[2];
    CU_ASSERT_FATAL(ids_in_bucket(0, b0, 8) == 8);
    CU_ASSERT_FATAL(ids_in_bucket(1, b1, 2) == 2);
    /* Re-sign some nodes' records with one shared IP (other ports). */
    mesh_addr shared = mesh_addr_v4(0xc6336401, 1000);
    mesh_peer_record r[4];
    for (int i = 0; i < 4; i++) {
        shared.port = (uint16_t)(1000 + i);
        CU_ASSERT_EQUAL_FATAL(mesh_peer_record_make(&r[i], NET.nodes[b0[i]].id, &shared, 1, 2),
                              MESH_OK);
    }
    CU_ASSERT_EQUAL(mesh_dht_add(me->dht, &r[0], 0), MESH_OK);
    CU_ASSERT_EQUAL(mesh_dht_add(me->dht, &r[1], 0), MESH_OK);
    CU_ASSERT_EQUAL(mesh_dht_add(me->dht, &r[2], 0), MESH_ERR_LIMIT);
    CU_ASSERT_EQUAL(mesh_dht_add(me->dht, &r[3], 1), MESH_ERR_LIMIT);
    CU_ASSERT_PTR_NULL(mesh_dht_get(me->dht, r[2].node_id));
    CU_ASSERT_EQUAL(mesh_dht_get_stats(me->dht).rejected_sybil, 2);
    /* the same IP in another bucket is fine: the bound is per bucket */
    mesh_peer_record other;
    shared.port = 2000;
    CU_ASSERT_EQUAL_FATAL(mesh_peer_record_make(&other, NET.nodes[b1[0]].id, &shared, 1, 2),
                          MESH_OK);
    CU_ASSERT_EQUAL(mesh_dht_add(me->dht, &other, 0), MESH_OK);
    /* a held node cannot move onto the crowded IP with a newer record either */
    CU_ASSERT_EQUAL(mesh_dht_add(me->dht, &NET.nodes[b0[4]].rec, 0), MESH_OK);
    mesh_peer_record moved;
    CU_ASSERT_EQUAL_FATAL(mesh_peer_record_make(&moved, NET.nodes[b0[4]].id, &shared, 1, 5),
                          MESH_OK);
    CU_ASSERT_EQUAL(mesh_dht_add(me->dht, &moved, 0), MESH_ERR_LIMIT);
    CU_ASSERT_EQUAL(mesh_dht_get(me->dht, moved.node_id)->seq, 1);
    /* a record that repeats its own IP does not count against itself */
    mesh_addr twice[2] = {mesh_addr_v4(0x0b000001, 1), mesh_addr_v4(0x0b000001, 2)};
    mesh_peer_record own;
    CU_ASSERT_EQUAL_FATAL(mesh_peer_record_make(&own, NET.nodes[b0[5]].id, twice, 2, 3), MESH_OK);
    CU_ASSERT_EQUAL(mesh_dht_add(me->dht, &own, 0), MESH_OK);
    CU_ASSERT_EQUAL(mesh_dht_add(me->dht, &own, 0), MESH_OK);
    net_free();
}

static void test_bad_and_old_records(void)
{
    net_build(10, 14);
    tnode *me = &NET.nodes[0], *p = &NET.nodes[1];
    mesh_peer_record bad = p->rec;
    bad.sig[10] ^= 4;
    CU_ASSERT_EQUAL(mesh_dht_add(me->dht, &bad, 1), MESH_ERR_BAD_SIGNATURE);
    bad = p->rec;
    bad.addrs[0].port = 1; /* someone publishing other addresses for p's key */
    CU_ASSERT_EQUAL(mesh_dht_add(me->dht, &bad, 1), MESH_ERR_BAD_SIGNATURE);
    CU_ASSERT_PTR_NULL(mesh_dht_get(me->dht, p->rec.node_id));
    CU_ASSERT_EQUAL(mesh_dht_get_stats(me->dht).rejected_bad, 2);

    mesh_peer_record v5, v3;
    mesh_addr a5 = mesh_addr_v4(0x0a0a0a05, 5), a3 = mesh_addr_v4(0x0a0a0a03, 3);
    CU_ASSERT_EQUAL_FATAL(mesh_peer_record_make(&v5, p->id, &a5, 1, 5), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_peer_record_make(&v3, p->id, &a3, 1, 3), MESH_OK);
    CU_ASSERT_EQUAL(mesh_dht_add(me->dht, &v5, 0), MESH_OK);
    CU_ASSERT_EQUAL(mesh_dht_add(me->dht, &v3, 0), MESH_ERR_EXISTS);
    CU_ASSERT_EQUAL(mesh_dht_get(me->dht, p->rec.node_id)->seq, 5);
    CU_ASSERT_TRUE(mesh_addr_equal(&mesh_dht_get(me->dht, p->rec.node_id)->addrs[0], &a5));
    /* once held, a good record with a bad twin at the same seq is still checked */
    bad = v5;
    bad.addrs[0].port = 6;
    CU_ASSERT_EQUAL(mesh_dht_add(me->dht, &bad, 0), MESH_ERR_BAD_SIGNATURE);
    /* a higher seq replaces */
    mesh_peer_record v9;
    CU_ASSERT_EQUAL_FATAL(mesh_peer_record_make(&v9, p->id, &a3, 1, 9), MESH_OK);
    CU_ASSERT_EQUAL(mesh_dht_add(me->dht, &v9, 0), MESH_OK);
    CU_ASSERT_EQUAL(mesh_dht_get(me->dht, p->rec.node_id)->seq, 9);
    /* our own record is not a table entry */
    CU_ASSERT_EQUAL(mesh_dht_add(me->dht, &me->rec, 1), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_dht_get_stats(me->dht).entries, 1);
    /* set_self: higher seq taken, another key refused */
    mesh_peer_record mine;
    CU_ASSERT_EQUAL_FATAL(mesh_peer_record_make(&mine, me->id, &a3, 1, 7), MESH_OK);
    mesh_dht_set_self(me->dht, &mine);
    CU_ASSERT_EQUAL(mesh_dht_self(me->dht)->seq, 7);
    mesh_dht_set_self(me->dht, &v9);
    CU_ASSERT_EQUAL(memcmp(mesh_dht_self(me->dht)->node_id, me->rec.node_id, 32), 0);
    net_free();
}

static int in_call;
static void on_lookup_check_later(void *ud, int status, const mesh_peer_record *closest, size_t n,
                                  unsigned hops, unsigned queries)
{
    CU_ASSERT_FALSE(in_call);
    on_lookup(ud, status, closest, n, hops, queries);
}

static void test_lookup_basics(void)
{
    net_build(60, 15);
    tnode *me = &NET.nodes[0];
    /* an empty table: NOT_FOUND, later, not inside the call */
    result r = {0};
    in_call = 1;
    CU_ASSERT_EQUAL(mesh_dht_lookup(me->dht, NET.nodes[5].rec.node_id, on_lookup_check_later, &r),
                    MESH_OK);
    in_call = 0;
    CU_ASSERT_EQUAL(r.done, 0);
    world_run(W.now);
    CU_ASSERT_EQUAL(r.done, 1);
    CU_ASSERT_EQUAL(r.status, MESH_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(r.queries, 0);

    /* a line: node i knows only node i+1; a lookup from 0 for node 6 walks the chain, and
     * every answer is a hop */
    for (size_t i = 0; i + 1 < 8; i++)
        mesh_dht_add(NET.nodes[i].dht, &NET.nodes[i + 1].rec, 1);
    memset(&r, 0, sizeof r);
    CU_ASSERT_EQUAL(mesh_dht_lookup(me->dht, NET.nodes[6].rec.node_id, on_lookup, &r), MESH_OK);
    world_run(W.now + 60 * MESH_NS_PER_S);
    CU_ASSERT_EQUAL(r.done, 1);
    CU_ASSERT_EQUAL(r.status, MESH_OK);
    CU_ASSERT_EQUAL(memcmp(r.first, NET.nodes[6].rec.node_id, 32), 0);
    CU_ASSERT_EQUAL(r.hops, 5); /* node 1 is in our table (0), 2 came from 1's answer (1)... */
    CU_ASSERT_TRUE(r.n >= 7);
    /* node 7 answered too and is now in our table as alive */
    CU_ASSERT_PTR_NOT_NULL(mesh_dht_get(me->dht, NET.nodes[7].rec.node_id));

    /* the lookup limit */
    result many[MESH_DHT_MAX_LOOKUPS + 1];
    memset(many, 0, sizeof many);
    for (int i = 0; i < MESH_DHT_MAX_LOOKUPS; i++)
        CU_ASSERT_EQUAL(mesh_dht_lookup(me->dht, NET.nodes[3].rec.node_id, on_lookup, &many[i]),
                        MESH_OK);
    CU_ASSERT_EQUAL(
        mesh_dht_lookup(me->dht, NET.nodes[3].rec.node_id, on_lookup, &many[MESH_DHT_MAX_LOOKUPS]),
        MESH_ERR_LIMIT);
    world_run(W.now + 60 * MESH_NS_PER_S);
    for (int i = 0; i < MESH_DHT_MAX_LOOKUPS; i++)
        CU_ASSERT_EQUAL(many[i].status, MESH_OK);
    CU_ASSERT_EQUAL(many[MESH_DHT_MAX_LOOKUPS].done, 0);
    mesh_dht_stats st = mesh_dht_get_stats(me->dht);
    CU_ASSERT_EQUAL(st.lookups, MESH_DHT_MAX_LOOKUPS + 2);
    CU_ASSERT_EQUAL(st.lookups_ok, MESH_DHT_MAX_LOOKUPS + 1);
    net_free();
}

static const uint8_t *SORT_TARGET;
static int farther_first(const void *a, const void *b)
{
    return -mesh_dht_cmp(SORT_TARGET, NET.nodes[*(const size_t *)a].rec.node_id,
                         NET.nodes[*(const size_t *)b].rec.node_id);
}

/* A chain longer than a lookup may walk, each link closer to the target than the one before
 * (so every answer brings the new closest node): the lookup stops sending at
 * MESH_DHT_MAX_LOOKUP_QUERIES and ends with the closest that answered. */
static void test_lookup_query_bound(void)
{
    enum { CHAIN = MESH_DHT_MAX_LOOKUP_QUERIES + 30 };
    net_build(CHAIN, 17);
    tnode *target = &NET.nodes[0];
    size_t order[CHAIN - 1];
    for (size_t i = 0; i < CHAIN - 1; i++)
        order[i] = i + 1;
    SORT_TARGET = target->rec.node_id;
    qsort(order, CHAIN - 1, sizeof order[0], farther_first);
    for (size_t i = 0; i + 1 < CHAIN - 1; i++)
        mesh_dht_add(NET.nodes[order[i]].dht, &NET.nodes[order[i + 1]].rec, 1);
    mesh_dht_add(NET.nodes[order[CHAIN - 2]].dht, &target->rec, 1);
    tnode *start = &NET.nodes[order[0]];
    result r = {0};
    CU_ASSERT_EQUAL(mesh_dht_lookup(start->dht, target->rec.node_id, on_lookup, &r), MESH_OK);
    world_run(W.now + 600 * MESH_NS_PER_S);
    CU_ASSERT_EQUAL(r.done, 1);
    CU_ASSERT_EQUAL(r.queries, MESH_DHT_MAX_LOOKUP_QUERIES);
    CU_ASSERT_EQUAL(start->finds, MESH_DHT_MAX_LOOKUP_QUERIES);
    CU_ASSERT_EQUAL(r.status, MESH_OK);
    CU_ASSERT_EQUAL(r.hops, MESH_DHT_MAX_LOOKUP_QUERIES - 1); /* the last link that answered */
    CU_ASSERT_NOT_EQUAL(memcmp(r.first, target->rec.node_id, 32), 0);
    net_free();
}

static void on_lookup_free(void *ud, int status, const mesh_peer_record *closest, size_t n,
                           unsigned hops, unsigned queries)
{
    on_lookup(ud, status, closest, n, hops, queries);
    mesh_dht_free(NET.nodes[0].dht);
    NET.nodes[0].dht = NULL;
}

/* The owner may free the DHT from a lookup callback while other lookups are done too. */
static void test_free_in_callback(void)
{
    net_build(10, 16);
    result r[3];
    memset(r, 0, sizeof r);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(
            mesh_dht_lookup(NET.nodes[0].dht, NET.nodes[1].rec.node_id, on_lookup_free, &r[i]),
            MESH_OK);
    world_run(W.now + MESH_NS_PER_S);
    CU_ASSERT_EQUAL(r[0].done + r[1].done + r[2].done, 1);
    CU_ASSERT_PTR_NULL(NET.nodes[0].dht);
    net_free();
}

/* ---- the network ------------------------------------------------------------------------------
 */

enum {
    NET_N = 1000,
    JOIN_CONTACTS = 3,
    JOIN_SPACING_MS = 100,
    LOOKUPS = 1000,
};

static void join_node(mesh_timer *t, void *ud)
{
    tnode *me = ud;
    w_timer_free(NULL, t);
    size_t i = (size_t)(me - NET.nodes);
    for (int c = 0; c < JOIN_CONTACTS && i > 0; c++) {
        tnode *other = &NET.nodes[xorshift(&W.rng) % i];
        mesh_dht_add(me->dht, &other->rec, 1);
    }
    CU_ASSERT_EQUAL(mesh_dht_bootstrap(me->dht, NULL, NULL), MESH_OK);
}

/* Build n nodes joining one after the other, spacing_ms apart, each from a few random earlier
 * ones, and run until settle_s after the last join. */
static void net_join(size_t n, uint64_t seed, unsigned spacing_ms, unsigned settle_s)
{
    net_build(n, seed);
    for (size_t i = 0; i < NET.n; i++) {
        mesh_timer *t = w_timer_new(NULL, join_node, &NET.nodes[i]);
        w_timer_set(NULL, t, (mesh_time)i * spacing_ms * MESH_NS_PER_MS);
    }
    world_run((mesh_time)NET.n * spacing_ms * MESH_NS_PER_MS + settle_s * MESH_NS_PER_S);
}

typedef struct lookup_run {
    size_t ok, total;
    unsigned hist[16];
    unsigned p50, p95, max;
    double mean_queries;
} lookup_run;

/* LOOKUPS lookups between random live nodes for live targets, all started at once. */
static lookup_run run_lookups(void)
{
    lookup_run lr = {0};
    result *res = calloc(LOOKUPS, sizeof *res);
    size_t *tgt = calloc(LOOKUPS, sizeof *tgt);
    CU_ASSERT_FATAL(res && tgt);
    for (size_t i = 0; i < LOOKUPS; i++) {
        size_t s, t;
        do {
            s = xorshift(&W.rng) % NET.n;
            t = xorshift(&W.rng) % NET.n;
        } while (s == t || NET.nodes[s].dead || NET.nodes[t].dead);
        tgt[i] = t;
        CU_ASSERT_EQUAL(
            mesh_dht_lookup(NET.nodes[s].dht, NET.nodes[t].rec.node_id, on_lookup, &res[i]),
            MESH_OK);
    }
    world_run(W.now + 120 * MESH_NS_PER_S);
    uint64_t queries = 0;
    for (size_t i = 0; i < LOOKUPS; i++) {
        CU_ASSERT_EQUAL(res[i].done, 1);
        lr.total++;
        queries += res[i].queries;
        if (res[i].status == MESH_OK &&
            memcmp(res[i].first, NET.nodes[tgt[i]].rec.node_id, 32) == 0) {
            lr.ok++;
            lr.hist[res[i].hops < 15 ? res[i].hops : 15]++;
        }
    }
    unsigned acc = 0;
    int got50 = 0, got95 = 0;
    for (unsigned h = 0; h < 16; h++) {
        acc += lr.hist[h];
        if (lr.hist[h])
            lr.max = h;
        if (!got50 && acc * 100 >= lr.ok * 50) {
            lr.p50 = h;
            got50 = 1;
        }
        if (!got95 && acc * 100 >= lr.ok * 95) {
            lr.p95 = h;
            got95 = 1;
        }
    }
    lr.mean_queries = (double)queries / (double)LOOKUPS;
    free(res);
    free(tgt);
    return lr;
}

static void print_run(const char *what, const lookup_run *lr)
{
    printf("\n    %s: %zu/%zu found the exact node; hops p50 %u p95 %u max %u; "
           "%.1f queries per lookup\n    hops:",
           what, lr->ok, lr->total, lr->p50, lr->p95, lr->max, lr->mean_queries);
    for (unsigned h = 0; h <= lr->max; h++)
        printf(" %u:%u", h, lr->hist[h]);
    printf("\n");
}

static void test_network_lookups(void)
{
    net_join(NET_N, 21, JOIN_SPACING_MS, 30);
    /* every join's self lookup reached somebody */
    size_t sum = 0, minimum = SIZE_MAX;
    for (size_t i = 0; i < NET.n; i++) {
        size_t e = mesh_dht_get_stats(NET.nodes[i].dht).entries;
        sum += e;
        if (e < minimum)
            minimum = e;
    }
    printf("\n    %d nodes joined: routing table entries mean %.1f min %zu", NET_N,
           (double)sum / (double)NET.n, minimum);
    CU_ASSERT_TRUE(minimum >= MESH_DHT_K);

    unsigned bound = (unsigned)ceil(log((double)NET_N) / log((double)MESH_DHT_K)) + 2;
    lookup_run lr = run_lookups();
    print_run("all alive", &lr);
    CU_ASSERT_EQUAL(lr.ok, lr.total);
    CU_ASSERT_TRUE(lr.p95 <= bound);

    /* 30% of the nodes die (their queries time out); nobody is told */
    size_t killed = 0;
    while (killed < NET.n * 3 / 10) {
        tnode *t = &NET.nodes[xorshift(&W.rng) % NET.n];
        if (!t->dead) {
            t->dead = 1;
            killed++;
        }
    }
    lr = run_lookups();
    print_run("30% dead", &lr);
    CU_ASSERT_EQUAL(lr.ok, lr.total);
    CU_ASSERT_TRUE(lr.p95 <= bound);
    /* and the failures were noticed: a second round asks fewer dead nodes */
    lookup_run again = run_lookups();
    print_run("30% dead, second round", &again);
    CU_ASSERT_EQUAL(again.ok, again.total);
    CU_ASSERT_TRUE(again.mean_queries < lr.mean_queries);
    net_free();
}

/* After MESH_DHT_REFRESH_S without lookups, every bucket up to the deepest non-empty one gets
 * a lookup of a random id in its own range. */
static void test_refresh(void)
{
    net_join(300, 22, 50, 45);
    tnode *me = &NET.nodes[NET.n - 1];
    unsigned top = 0;
    for (size_t i = 0; i < NET.n; i++)
        if (mesh_dht_get(me->dht, NET.nodes[i].rec.node_id)) {
            unsigned c = mesh_dht_common_prefix(me->rec.node_id, NET.nodes[i].rec.node_id);
            if (c > top)
                top = c;
        }
    CU_ASSERT_FATAL(top >= 3 && top < 64);
    uint64_t before = mesh_dht_get_stats(me->dht).lookups;
    me->ntargets = 0;
    world_run(W.now + (MESH_DHT_REFRESH_S + 30) * (mesh_time)MESH_NS_PER_S);
    uint64_t refreshes = mesh_dht_get_stats(me->dht).lookups - before;
    printf("\n    refresh: %llu lookups for buckets 0..%u\n", (unsigned long long)refreshes, top);
    CU_ASSERT_EQUAL(refreshes, top + 1);
    /* each bucket's lookup targets an id in that bucket's range */
    uint64_t seen = 0;
    for (unsigned i = 0; i < me->ntargets && i < 64; i++) {
        unsigned c = mesh_dht_common_prefix(me->rec.node_id, me->last_targets[i]);
        CU_ASSERT_TRUE(c <= top);
        seen |= 1ULL << c;
    }
    CU_ASSERT_EQUAL(seen, (top == 63 ? ~0ULL : (1ULL << (top + 1)) - 1));
    net_free();
}

/* Same seed, same network, same lookups: the same figures to the query. */
static void test_deterministic(void)
{
    uint64_t q[2], ent[2];
    for (int run = 0; run < 2; run++) {
        net_join(150, 23, 20, 27);
        q[run] = ent[run] = 0;
        for (size_t i = 0; i < NET.n; i++) {
            mesh_dht_stats st = mesh_dht_get_stats(NET.nodes[i].dht);
            q[run] = q[run] * 31 + st.queries_sent;
            ent[run] = ent[run] * 31 + st.entries;
        }
        net_free();
    }
    CU_ASSERT_EQUAL(q[0], q[1]);
    CU_ASSERT_EQUAL(ent[0], ent[1]);
}

static CU_TestInfo dht_tests[] = {
    {"XOR metric and bucket index", test_metric},
    {"bucket bound, PING of the oldest, stale replacement", test_bucket_bounds_and_replacement},
    {"closest entries sorted", test_closest_sorted},
    {"per-IP bound per bucket", test_sybil_bound},
    {"bad signatures and older seqs ignored", test_bad_and_old_records},
    {"lookup: empty table, a chain of hops, the lookup limit", test_lookup_basics},
    {"a lookup sends at most MESH_DHT_MAX_LOOKUP_QUERIES", test_lookup_query_bound},
    {"free from a lookup callback", test_free_in_callback},
    {"1,000 nodes: hops, and 30% dead", test_network_lookups},
    {"bucket refresh", test_refresh},
    {"deterministic", test_deterministic},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"dht", NULL, NULL, NULL, NULL, dht_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
