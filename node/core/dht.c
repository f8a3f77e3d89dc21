/* dht.c — Kademlia routing table and iterative lookups (dht.h; design in docs/dht.md).
 *
 * Memory: buckets are allocated when their first node arrives and entries one by one, so a
 * DHT costs what it holds (a few hundred entries in a network of thousands), not 256 * 28
 * record slots. A lookup owns a candidate list of MESH_DHT_LOOKUP_CANDS records sorted by
 * distance to its target.
 *
 * Callbacks: the owner's lookup callbacks are made only from the DHT's own finish timer, so
 * they are never inside a DHT or transport call; mesh_dht_free inside such a callback is
 * deferred to the end of the dispatch (the `dispatching` / `freed` pair). Transport replies
 * find their lookup through a query slot the lookup owns; a lookup is only finished once all
 * its queries have been answered, so a reply never finds its lookup gone (mesh_dht_free
 * excepted: dht.h makes the owner silence replies first).
 */
#include "core/dht.h"

#include <stdlib.h>
#include <string.h>

/* Internal bounds (the public ones are in dht.h). */
enum {
    /* Candidates one lookup tracks: k for the result plus room for the failed ones it steps
     * over (30% dead nodes cost about k/2) and the closer ones still arriving. */
    MESH_DHT_LOOKUP_CANDS = 8 * MESH_DHT_K,
    /* A refresh that found the lookup slots full tries again this much later. */
    MESH_DHT_REFRESH_RETRY_S = 10,
};

enum cand_state { CAND_NEW, CAND_ASKED, CAND_DONE, CAND_FAILED };

typedef struct dht_entry {
    mesh_peer_record rec;
    mesh_time last_seen; /* last proof of life, if seen */
    int seen;            /* any proof of life yet */
    unsigned fails;      /* consecutive failed queries */
} dht_entry;

typedef struct dht_ping {
    mesh_dht *d;
    unsigned bucket;
    uint8_t id[MESH_NODE_ID_LEN];
    int active;
} dht_ping;

typedef struct dht_bucket {
    dht_entry *entries[MESH_DHT_K];
    size_t n;
    dht_entry *repl[MESH_DHT_REPLACEMENTS]; /* oldest first */
    size_t nrepl;
    dht_ping ping; /* at most one liveness check of this bucket in flight */
} dht_bucket;

typedef struct dht_lookup dht_lookup;

typedef struct lk_cand {
    mesh_peer_record rec;
    unsigned hop;
    uint8_t state; /* enum cand_state */
} lk_cand;

typedef struct lk_query {
    dht_lookup *lk;
    uint8_t id[MESH_NODE_ID_LEN];
    int used;
} lk_query;

struct dht_lookup {
    mesh_dht *d;
    uint8_t target[MESH_NODE_ID_LEN];
    mesh_dht_lookup_fn cb;
    void *ud;
    lk_cand *c; /* sorted by distance to target, closest first */
    size_t n;
    unsigned inflight, queries;
    lk_query q[MESH_DHT_ALPHA];
    int done;
};

struct mesh_dht {
    mesh_env env;
    mesh_peer_cache *cache; /* borrowed from the owner, may be NULL */
    mesh_peer_record self;
    const mesh_dht_transport *tr;
    void *ud;
    dht_bucket *buckets[MESH_DHT_ID_BITS];
    mesh_time touched[MESH_DHT_ID_BITS]; /* last lookup into each bucket's range */
    dht_lookup *lookups[MESH_DHT_MAX_LOOKUPS];
    mesh_timer *finish_timer, *refresh_timer;
    int bootstrapped;
    int dispatching, freed;
    mesh_dht_stats stats;
};

/* ---- ids and distance ------------------------------------------------------------------ */

int mesh_dht_cmp(const uint8_t target[MESH_NODE_ID_LEN], const uint8_t a[MESH_NODE_ID_LEN],
                 const uint8_t b[MESH_NODE_ID_LEN])
{
    for (size_t i = 0; i < MESH_NODE_ID_LEN; i++) {
        uint8_t da = a[i] ^ target[i], db = b[i] ^ target[i];
        if (da != db)
            return da < db ? -1 : 1;
    }
    return 0;
}

unsigned mesh_dht_common_prefix(const uint8_t a[MESH_NODE_ID_LEN],
                                const uint8_t b[MESH_NODE_ID_LEN])
{
    for (unsigned i = 0; i < MESH_NODE_ID_LEN; i++) {
        unsigned x = a[i] ^ b[i];
        if (x)
            return i * 8 + (unsigned)__builtin_clz(x) - (unsigned)(8 * (sizeof(unsigned) - 1));
    }
    return MESH_DHT_ID_BITS;
}

/* A random id whose common prefix with ours is exactly `bucket` bits: it falls in that
 * bucket's range (the first bit after the prefix flipped, the rest random). */
static void random_id_in_bucket(const mesh_dht *d, unsigned bucket, uint8_t out[MESH_NODE_ID_LEN])
{
    const uint8_t *self = d->self.node_id;
    mesh_env_random(&d->env, out, MESH_NODE_ID_LEN);
    unsigned byte = bucket / 8;
    uint8_t bit = (uint8_t)(0x80 >> (bucket % 8));
    uint8_t keep = (uint8_t)(0xFF00 >> (bucket % 8)); /* the prefix bits of this byte */
    memcpy(out, self, byte);
    out[byte] = (uint8_t)((self[byte] & keep) | (~self[byte] & bit) |
                          (out[byte] & (uint8_t) ~(keep | bit)));
}

static int is_self(const mesh_dht *d, const uint8_t id[MESH_NODE_ID_LEN])
{
    return memcmp(d->self.node_id, id, MESH_NODE_ID_LEN) == 0;
}

/* ---- routing table ------------------------------------------------------------------------ */

static int same_id(const dht_entry *e, const uint8_t id[MESH_NODE_ID_LEN])
{
    return memcmp(e->rec.node_id, id, MESH_NODE_ID_LEN) == 0;
}

/* The entry for id in b (in entries or, with *cached = 1, the replacement cache), or NULL. */
static dht_entry *bucket_find(const dht_bucket *b, const uint8_t id[MESH_NODE_ID_LEN], int *cached)
{
    if (!b)
        return NULL;
    for (size_t i = 0; i < b->n; i++)
        if (same_id(b->entries[i], id)) {
            *cached = 0;
            return b->entries[i];
        }
    for (size_t i = 0; i < b->nrepl; i++)
        if (same_id(b->repl[i], id)) {
            *cached = 1;
            return b->repl[i];
        }
    return NULL;
}

static dht_entry *table_find(const mesh_dht *d, const uint8_t id[MESH_NODE_ID_LEN], int *cached)
{
    unsigned i = mesh_dht_common_prefix(d->self.node_id, id);
    return i < MESH_DHT_ID_BITS ? bucket_find(d->buckets[i], id, cached) : NULL;
}

static int ip_equal(const mesh_addr *a, const mesh_addr *b)
{
    return a->family == b->family && memcmp(a->ip, b->ip, a->family == MESH_AF_INET6 ? 16 : 4) == 0;
}

static int shares_ip(const mesh_peer_record *r, const mesh_addr *a)
{
    for (size_t i = 0; i < r->naddrs; i++)
        if (ip_equal(&r->addrs[i], a))
            return 1;
    return 0;
}

/* 1 if r may sit in b: none of its IPs is already held by MESH_DHT_MAX_PER_IP other nodes
 * of the bucket (entries and replacement cache together, so a one-host Sybil cannot queue
 * up either). */
static int ip_bound_ok(const dht_bucket *b, const mesh_peer_record *r)
{
    for (size_t a = 0; a < r->naddrs; a++) {
        unsigned count = 0;
        for (size_t i = 0; i < b->n + b->nrepl; i++) {
            const dht_entry *e = i < b->n ? b->entries[i] : b->repl[i - b->n];
            if (!same_id(e, r->node_id) && shares_ip(&e->rec, &r->addrs[a]))
                count++;
        }
        if (count >= MESH_DHT_MAX_PER_IP)
            return 0;
    }
    return 1;
}

static void mark_seen(const mesh_dht *d, dht_entry *e)
{
    e->fails = 0;
    e->seen = 1;
    e->last_seen = mesh_env_now(&d->env);
}

/* Orders entries by liveness: never seen < seen long ago < seen just now. */
static mesh_time seen_key(const dht_entry *e)
{
    return e->seen ? e->last_seen + 1 : 0;
}

static int is_stale(const dht_entry *e)
{
    return e->fails >= MESH_DHT_STALE_FAILS;
}

/* Remove the replacement at index i (keeping the cache's age order) and return it. */
static dht_entry *cache_take(dht_bucket *b, size_t i)
{
    dht_entry *e = b->repl[i];
    memmove(&b->repl[i], &b->repl[i + 1], (b->nrepl - i - 1) * sizeof b->repl[0]);
    b->nrepl--;
    return e;
}

/* Index of the replacement to promote: the most recently seen alive, else the newest. */
static size_t cache_best(const dht_bucket *b)
{
    size_t best = b->nrepl - 1;
    for (size_t i = b->nrepl; i-- > 0;)
        if (seen_key(b->repl[i]) > seen_key(b->repl[best]))
            best = i;
    return best;
}

/* Put e in the cache; when it is full the least recently seen (oldest on ties) makes room. */
static void cache_put(dht_bucket *b, dht_entry *e)
{
    if (b->nrepl == MESH_DHT_REPLACEMENTS) {
        size_t worst = 0;
        for (size_t i = 1; i < b->nrepl; i++)
            if (seen_key(b->repl[i]) < seen_key(b->repl[worst]))
                worst = i;
        free(cache_take(b, worst));
    }
    b->repl[b->nrepl++] = e;
}

/* Replace entry slot i of b by the best replacement, if there is one. Returns 1 if done. */
static int replace_entry(dht_bucket *b, size_t i)
{
    if (b->nrepl == 0)
        return 0;
    free(b->entries[i]);
    b->entries[i] = cache_take(b, cache_best(b));
    return 1;
}

static size_t entry_index(const dht_bucket *b, const dht_entry *e)
{
    size_t i = 0;
    while (b->entries[i] != e)
        i++;
    return i;
}

static void on_ping_reply(void *ctx, int status, const mesh_peer_record *peers, size_t n);

/* A full bucket got a new candidate: check the least recently seen entry with a PING (one at
 * a time per bucket). If it fails, the candidate (now in the cache) takes its place. */
static void ping_oldest(mesh_dht *d, dht_bucket *b, unsigned idx)
{
    if (b->ping.active || b->n == 0 || !d->tr->ping)
        return;
    dht_entry *old = b->entries[0];
    for (size_t i = 1; i < b->n; i++)
        if (seen_key(b->entries[i]) < seen_key(old))
            old = b->entries[i];
    b->ping.d = d;
    b->ping.bucket = idx;
    memcpy(b->ping.id, old->rec.node_id, MESH_NODE_ID_LEN);
    b->ping.active = 1;
    d->stats.queries_sent++;
    if (d->tr->ping(d->ud, &old->rec, on_ping_reply, &b->ping) != MESH_OK) {
        b->ping.active = 0; /* a local failure says nothing about the node */
        d->stats.queries_failed++;
    }
}

static void on_ping_reply(void *ctx, int status, const mesh_peer_record *peers, size_t n)
{
    dht_ping *p = ctx;
    mesh_dht *d = p->d;
    dht_bucket *b = d->buckets[p->bucket];
    (void)peers;
    (void)n;
    p->active = 0;
    int cached;
    dht_entry *e = bucket_find(b, p->id, &cached);
    if (status != MESH_OK)
        d->stats.queries_failed++;
    if (!e || cached)
        return; /* replaced meanwhile */
    if (status == MESH_OK) {
        mark_seen(d, e);
        return;
    }
    e->fails++;
    if (b->n == MESH_DHT_K)
        replace_entry(b, entry_index(b, e));
}

/* Add or refresh an already verified record. Codes as mesh_dht_add. */
static int table_add(mesh_dht *d, const mesh_peer_record *r, int live)
{
    unsigned idx = mesh_dht_common_prefix(d->self.node_id, r->node_id);
    if (idx >= MESH_DHT_ID_BITS)
        return MESH_ERR_INVAL;
    dht_bucket *b = d->buckets[idx];
    if (!b) {
        b = calloc(1, sizeof *b);
        if (!b)
            return MESH_ERR_NOMEM;
        d->buckets[idx] = b;
    }
    int cached;
    dht_entry *e = bucket_find(b, r->node_id, &cached);
    if (e) {
        if (r->seq < e->rec.seq)
            return MESH_ERR_EXISTS;
        if (r->seq > e->rec.seq) {
            if (!ip_bound_ok(b, r)) {
                d->stats.rejected_sybil++;
                return MESH_ERR_LIMIT;
            }
            e->rec = *r;
        }
        if (live)
            mark_seen(d, e);
        return MESH_OK;
    }
    if (!ip_bound_ok(b, r)) {
        d->stats.rejected_sybil++;
        return MESH_ERR_LIMIT;
    }
    e = calloc(1, sizeof *e);
    if (!e)
        return MESH_ERR_NOMEM;
    e->rec = *r;
    if (live)
        mark_seen(d, e);
    if (b->n < MESH_DHT_K) {
        b->entries[b->n++] = e;
        d->stats.entries++;
        return MESH_OK;
    }
    for (size_t i = 0; i < b->n; i++)
        if (is_stale(b->entries[i])) {
            free(b->entries[i]);
            b->entries[i] = e;
            return MESH_OK;
        }
    cache_put(b, e);
    ping_oldest(d, b, idx);
    return MESH_OK;
}

/* Verify r unless it is exactly the record we hold (verified when it came in). */
static int verify_unless_held(const mesh_dht *d, const mesh_peer_record *r)
{
    int cached;
    const dht_entry *held = table_find(d, r->node_id, &cached);
    if (held && mesh_peer_record_equal(&held->rec, r))
        return MESH_OK;
    return mesh_peer_record_verify_cached(r, d->cache);
}

void mesh_dht_set_cache(mesh_dht *d, mesh_peer_cache *cache)
{
    d->cache = cache;
}

int mesh_dht_add(mesh_dht *d, const mesh_peer_record *r, int live)
{
    if (!d || !r)
        return MESH_ERR_INVAL;
    uint8_t id[MESH_NODE_ID_LEN];
    mesh_node_id_of(r->pubkey, id);
    if (is_self(d, id))
        return MESH_ERR_INVAL;
    int rc = verify_unless_held(d, r);
    if (rc == MESH_ERR_NOMEM || rc == MESH_ERR_CRYPTO)
        return rc; /* could not check it now: not the record's fault */
    if (rc != MESH_OK) {
        d->stats.rejected_bad++;
        return MESH_ERR_BAD_SIGNATURE;
    }
    return table_add(d, r, live);
}

void mesh_dht_seen(mesh_dht *d, const uint8_t node_id[MESH_NODE_ID_LEN])
{
    int cached;
    dht_entry *e = table_find(d, node_id, &cached);
    if (e)
        mark_seen(d, e);
}

void mesh_dht_failed(mesh_dht *d, const uint8_t node_id[MESH_NODE_ID_LEN])
{
    int cached;
    dht_entry *e = table_find(d, node_id, &cached);
    if (!e)
        return;
    e->fails++;
    if (!is_stale(e))
        return;
    dht_bucket *b = d->buckets[mesh_dht_common_prefix(d->self.node_id, node_id)];
    if (cached) {
        size_t i = 0;
        while (b->repl[i] != e)
            i++;
        free(cache_take(b, i)); /* a dead replacement is worth nothing */
        return;
    }
    replace_entry(b, entry_index(b, e));
}

const mesh_peer_record *mesh_dht_get(const mesh_dht *d, const uint8_t node_id[MESH_NODE_ID_LEN])
{
    int cached;
    const dht_entry *e = table_find(d, node_id, &cached);
    return e ? &e->rec : NULL;
}

/* Insert b's live entries into out (sorted, n of max used), keeping the max closest. */
static void closest_from(const dht_bucket *b, const uint8_t target[MESH_NODE_ID_LEN],
                         mesh_peer_record *out, size_t *n, size_t max)
{
    for (size_t i = 0; b && i < b->n; i++) {
        const dht_entry *e = b->entries[i];
        if (is_stale(e))
            continue; /* do not send anyone (ourselves included) to a dead node */
        if (*n == max && mesh_dht_cmp(target, e->rec.node_id, out[*n - 1].node_id) >= 0)
            continue;
        size_t pos = *n < max ? (*n)++ : *n - 1;
        while (pos > 0 && mesh_dht_cmp(target, e->rec.node_id, out[pos - 1].node_id) < 0) {
            out[pos] = out[pos - 1];
            pos--;
        }
        out[pos] = e->rec;
    }
}

/* Buckets are visited in tiers, every entry of a tier closer to target than any of a later
 * one, and the walk stops at the first tier boundary with max found. With c the bucket of
 * target: bucket c first (its ids share c + 1 bits with target), then buckets c+1..255
 * together (they share exactly c bits), then c-1, c-2, ... 0 (bucket i shares i bits). */
size_t mesh_dht_closest(const mesh_dht *d, const uint8_t target[MESH_NODE_ID_LEN],
                        mesh_peer_record *out, size_t max)
{
    size_t n = 0;
    if (max == 0)
        return 0;
    unsigned c = mesh_dht_common_prefix(d->self.node_id, target);
    if (c < MESH_DHT_ID_BITS) {
        closest_from(d->buckets[c], target, out, &n, max);
        if (n < max) /* buckets c+1..255 are one tier: all of it or nothing */
            for (unsigned i = c + 1; i < MESH_DHT_ID_BITS; i++)
                closest_from(d->buckets[i], target, out, &n, max);
    }
    /* a lookup of our own id: bucket 255 is closest, then 254, ... */
    for (unsigned i = c; i-- > 0 && n < max;)
        closest_from(d->buckets[i], target, out, &n, max);
    return n;
}

/* ---- lookups -------------------------------------------------------------------------------- */

static void on_find_reply(void *ctx, int status, const mesh_peer_record *peers, size_t n);

static lk_cand *lk_find(dht_lookup *lk, const uint8_t id[MESH_NODE_ID_LEN])
{
    for (size_t i = 0; i < lk->n; i++)
        if (memcmp(lk->c[i].rec.node_id, id, MESH_NODE_ID_LEN) == 0)
            return &lk->c[i];
    return NULL;
}

/* Offer a candidate learned at chain length hop. The list stays sorted; when full, the
 * farthest candidate not waiting for an answer makes room for a closer one. */
static void lk_offer(dht_lookup *lk, const mesh_peer_record *r, unsigned hop)
{
    if (is_self(lk->d, r->node_id))
        return;
    lk_cand *c = lk_find(lk, r->node_id);
    if (c) {
        if (c->state == CAND_NEW && hop < c->hop)
            c->hop = hop;
        if (r->seq > c->rec.seq)
            c->rec = *r; /* newer addresses for the same key */
        return;
    }
    if (lk->n == MESH_DHT_LOOKUP_CANDS) {
        size_t victim = lk->n;
        while (victim-- > 0 && lk->c[victim].state == CAND_ASKED)
            ;
        if (victim >= lk->n || mesh_dht_cmp(lk->target, r->node_id, lk->c[victim].rec.node_id) > 0)
            return;
        memmove(&lk->c[victim], &lk->c[victim + 1], (lk->n - victim - 1) * sizeof lk->c[0]);
        lk->n--;
    }
    size_t pos = lk->n;
    while (pos > 0 && mesh_dht_cmp(lk->target, r->node_id, lk->c[pos - 1].rec.node_id) < 0)
        pos--;
    memmove(&lk->c[pos + 1], &lk->c[pos], (lk->n - pos) * sizeof lk->c[0]);
    lk->c[pos].rec = *r;
    lk->c[pos].hop = hop;
    lk->c[pos].state = CAND_NEW;
    lk->n++;
}

/* The closest candidate not yet asked among the k closest not failed, or NULL. */
static lk_cand *lk_next(dht_lookup *lk)
{
    size_t alive = 0;
    for (size_t i = 0; i < lk->n && alive < MESH_DHT_K; i++) {
        if (lk->c[i].state == CAND_FAILED)
            continue;
        if (lk->c[i].state == CAND_NEW)
            return &lk->c[i];
        alive++;
    }
    return NULL;
}

/* Keep alpha queries in flight; when nothing is in flight and nobody is left to ask, the
 * lookup is done and its callback is scheduled on the finish timer. */
static void lk_pump(dht_lookup *lk)
{
    mesh_dht *d = lk->d;
    while (lk->inflight < MESH_DHT_ALPHA && lk->queries < MESH_DHT_MAX_LOOKUP_QUERIES) {
        lk_cand *c = lk_next(lk);
        if (!c)
            break;
        lk_query *q = lk->q;
        while (q->used)
            q++;
        q->used = 1;
        q->lk = lk;
        memcpy(q->id, c->rec.node_id, MESH_NODE_ID_LEN);
        c->state = CAND_ASKED;
        lk->inflight++;
        lk->queries++;
        d->stats.queries_sent++;
        if (d->tr->find_node(d->ud, &c->rec, lk->target, on_find_reply, q) != MESH_OK) {
            q->used = 0;
            c->state = CAND_FAILED;
            lk->inflight--;
            d->stats.queries_failed++;
        }
    }
    if (lk->inflight == 0 && !lk->done) {
        lk->done = 1;
        d->env.ops->timer_set(d->env.obj, d->finish_timer, mesh_env_now(&d->env));
    }
}

static void on_find_reply(void *ctx, int status, const mesh_peer_record *peers, size_t n)
{
    lk_query *q = ctx;
    dht_lookup *lk = q->lk;
    mesh_dht *d = lk->d;
    q->used = 0;
    lk->inflight--;
    lk_cand *c = lk_find(lk, q->id); /* never evicted while asked */
    if (status == MESH_OK) {
        c->state = CAND_DONE;
        /* it answered: alive (its record was verified when it reached us) */
        table_add(d, &c->rec, 1);
        unsigned hop = c->hop + 1;
        for (size_t i = 0; i < n; i++)
            lk_offer(lk, &peers[i], hop);
    } else {
        c->state = CAND_FAILED;
        d->stats.queries_failed++;
        mesh_dht_failed(d, c->rec.node_id);
    }
    lk_pump(lk);
}

static void lk_free(dht_lookup *lk)
{
    if (lk) {
        free(lk->c);
        free(lk);
    }
}

/* Start a lookup; the callback (may be NULL) comes from the finish timer. */
static int lk_start(mesh_dht *d, const uint8_t target[MESH_NODE_ID_LEN], mesh_dht_lookup_fn cb,
                    void *ud)
{
    size_t slot = 0;
    while (slot < MESH_DHT_MAX_LOOKUPS && d->lookups[slot])
        slot++;
    if (slot == MESH_DHT_MAX_LOOKUPS)
        return MESH_ERR_LIMIT;
    dht_lookup *lk = calloc(1, sizeof *lk);
    if (!lk)
        return MESH_ERR_NOMEM;
    lk->c = malloc(MESH_DHT_LOOKUP_CANDS * sizeof *lk->c);
    if (!lk->c) {
        free(lk);
        return MESH_ERR_NOMEM;
    }
    lk->d = d;
    memcpy(lk->target, target, MESH_NODE_ID_LEN);
    lk->cb = cb;
    lk->ud = ud;
    d->lookups[slot] = lk;
    d->stats.lookups++;
    unsigned bi = mesh_dht_common_prefix(d->self.node_id, target);
    if (bi < MESH_DHT_ID_BITS)
        d->touched[bi] = mesh_env_now(&d->env);
    /* seeds: our k closest live contacts, hop 0 */
    mesh_peer_record seeds[MESH_DHT_K];
    size_t n = mesh_dht_closest(d, target, seeds, MESH_DHT_K);
    for (size_t i = 0; i < n; i++)
        lk_offer(lk, &seeds[i], 0);
    lk_pump(lk);
    return MESH_OK;
}

/* Report one finished lookup and free it. */
static void lk_finish(mesh_dht *d, dht_lookup *lk)
{
    mesh_peer_record *res = malloc(MESH_DHT_K * sizeof *res);
    size_t n = 0;
    unsigned hops = 0;
    /* The target's own record, handed by a peer, is the exact match even if the target did
     * not answer: a node reachable only through relays answers no FIND_NODE, yet its record
     * is what the lookup was for. */
    for (size_t i = 0; i < lk->n && n == 0; i++) {
        if (lk->c[i].state == CAND_DONE ||
            memcmp(lk->c[i].rec.node_id, lk->target, MESH_NODE_ID_LEN) != 0 ||
            lk->c[i].rec.nrelays == 0)
            continue;
        hops = lk->c[i].hop;
        if (res)
            res[n] = lk->c[i].rec;
        n++;
    }
    for (size_t i = 0; i < lk->n && n < MESH_DHT_K; i++) {
        if (lk->c[i].state != CAND_DONE)
            continue;
        if (n == 0)
            hops = lk->c[i].hop;
        if (res)
            res[n] = lk->c[i].rec;
        n++;
    }
    int status = !res ? MESH_ERR_NOMEM : n > 0 ? MESH_OK : MESH_ERR_NOT_FOUND;
    if (status == MESH_OK)
        d->stats.lookups_ok++;
    if (lk->cb)
        lk->cb(lk->ud, status, status == MESH_OK ? res : NULL, status == MESH_OK ? n : 0, hops,
               lk->queries);
    free(res);
    lk_free(lk);
}

static void dht_destroy(mesh_dht *d);

static void finish_fire(mesh_timer *t, void *ud)
{
    mesh_dht *d = ud;
    (void)t;
    d->dispatching++;
    for (size_t i = 0; i < MESH_DHT_MAX_LOOKUPS && !d->freed; i++) {
        dht_lookup *lk = d->lookups[i];
        if (lk && lk->done) {
            d->lookups[i] = NULL; /* the slot is free for lookups the callback starts */
            lk_finish(d, lk);
        }
    }
    d->dispatching--;
    if (d->freed && d->dispatching == 0)
        dht_destroy(d);
}

int mesh_dht_lookup(mesh_dht *d, const uint8_t target[MESH_NODE_ID_LEN], mesh_dht_lookup_fn cb,
                    void *ud)
{
    if (!d || !target)
        return MESH_ERR_INVAL;
    return lk_start(d, target, cb, ud);
}

/* ---- refresh -------------------------------------------------------------------------------- */

/* Every bucket up to the deepest one holding nodes that saw no lookup for
 * MESH_DHT_REFRESH_S gets a lookup of a random id in its range. Deeper buckets are empty
 * because no such nodes exist, and refreshing them would only repeat the self lookup. */
static void refresh_fire(mesh_timer *t, void *ud)
{
    mesh_dht *d = ud;
    (void)t;
    mesh_time now = mesh_env_now(&d->env);
    const mesh_time period = (mesh_time)MESH_DHT_REFRESH_S * MESH_NS_PER_S;
    const mesh_time retry = (mesh_time)MESH_DHT_REFRESH_RETRY_S * MESH_NS_PER_S;
    unsigned top = 0;
    for (unsigned i = 0; i < MESH_DHT_ID_BITS; i++)
        if (d->buckets[i] && d->buckets[i]->n > 0)
            top = i;
    mesh_time next = now + period;
    for (unsigned i = 0; i <= top; i++) {
        if (now - d->touched[i] >= period) {
            uint8_t id[MESH_NODE_ID_LEN];
            random_id_in_bucket(d, i, id);
            if (lk_start(d, id, NULL, NULL) != MESH_OK) {
                next = now + retry;
                break;
            }
        }
        if (d->touched[i] + period < next)
            next = d->touched[i] + period;
    }
    if (next < now + retry)
        next = now + retry;
    d->env.ops->timer_set(d->env.obj, d->refresh_timer, next);
}

int mesh_dht_bootstrap(mesh_dht *d, mesh_dht_lookup_fn cb, void *ud)
{
    if (!d)
        return MESH_ERR_INVAL;
    int rc = lk_start(d, d->self.node_id, cb, ud);
    if (rc != MESH_OK)
        return rc;
    if (!d->bootstrapped) {
        d->bootstrapped = 1;
        mesh_time first = mesh_env_now(&d->env) + (mesh_time)MESH_DHT_REFRESH_S * MESH_NS_PER_S;
        d->env.ops->timer_set(d->env.obj, d->refresh_timer, first);
    }
    return MESH_OK;
}

/* ---- life cycle ----------------------------------------------------------------------------- */

int mesh_dht_new(mesh_dht **out, const mesh_env *env, const mesh_peer_record *self,
                 const mesh_dht_transport *transport, void *ud)
{
    if (!out || !env || !env->ops->timer_new || !self || !transport || !transport->find_node)
        return MESH_ERR_INVAL;
    mesh_dht *d = calloc(1, sizeof *d);
    if (!d)
        return MESH_ERR_NOMEM;
    d->env = *env;
    d->self = *self;
    mesh_node_id_of(self->pubkey, d->self.node_id);
    d->tr = transport;
    d->ud = ud;
    mesh_time now = mesh_env_now(env);
    for (unsigned i = 0; i < MESH_DHT_ID_BITS; i++)
        d->touched[i] = now;
    d->finish_timer = env->ops->timer_new(env->obj, finish_fire, d);
    if (!d->finish_timer)
        goto fail;
    d->refresh_timer = env->ops->timer_new(env->obj, refresh_fire, d);
    if (!d->refresh_timer)
        goto fail_finish;
    *out = d;
    return MESH_OK;
fail_finish:
    env->ops->timer_free(env->obj, d->finish_timer);
fail:
    free(d);
    return MESH_ERR_NOMEM;
}

static void dht_destroy(mesh_dht *d)
{
    d->env.ops->timer_free(d->env.obj, d->finish_timer);
    d->env.ops->timer_free(d->env.obj, d->refresh_timer);
    for (size_t i = 0; i < MESH_DHT_MAX_LOOKUPS; i++)
        lk_free(d->lookups[i]);
    for (unsigned i = 0; i < MESH_DHT_ID_BITS; i++) {
        dht_bucket *b = d->buckets[i];
        if (!b)
            continue;
        for (size_t j = 0; j < b->n; j++)
            free(b->entries[j]);
        for (size_t j = 0; j < b->nrepl; j++)
            free(b->repl[j]);
        free(b);
    }
    free(d);
}

void mesh_dht_free(mesh_dht *d)
{
    if (!d)
        return;
    if (d->dispatching) {
        d->freed = 1; /* inside a lookup callback: finish_fire frees when it unwinds */
        return;
    }
    dht_destroy(d);
}

void mesh_dht_set_self(mesh_dht *d, const mesh_peer_record *self)
{
    if (!d || !self)
        return;
    uint8_t id[MESH_NODE_ID_LEN];
    mesh_node_id_of(self->pubkey, id);
    if (!is_self(d, id) || self->seq < d->self.seq) {
        mesh_log(&d->env, MESH_LOG_WARN, "dht: set_self ignored (other key or older seq)");
        return;
    }
    d->self = *self;
    memcpy(d->self.node_id, id, MESH_NODE_ID_LEN);
}

const mesh_peer_record *mesh_dht_self(const mesh_dht *d)
{
    return &d->self;
}

mesh_dht_stats mesh_dht_get_stats(const mesh_dht *d)
{
    return d->stats;
}
