/* dht_lookup.c — Kademlia's iterative lookup (dht.h; design in docs/dht.md): a candidate
 * list sorted by distance to the target, alpha queries in flight, the k closest that answered
 * as the result, reported from the DHT's finish timer (dht.c says why). */
#include <stdlib.h>
#include <string.h>

#include "core/dht_int.h"

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
    if (mesh_dht_is_self(lk->d, r->node_id))
        return;
    lk_cand *c = lk_find(lk, r->node_id);
    if (c) {
        if (c->state == CAND_NEW && hop < c->hop)
            c->hop = hop;
        if (r->seq > c->rec.seq) {
            c->rec = *r; /* newer addresses for the same key */
            if (c->state == CAND_FAILED)
                c->state = CAND_NEW; /* it failed at the old ones (e.g. none yet): once more,
                                        at most once per record the key signed anew */
        }
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
        mesh_dht_table_add(d, &c->rec, 1);
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

void mesh_dht_lk_free(dht_lookup *lk)
{
    if (lk) {
        free(lk->c);
        free(lk);
    }
}

/* Start a lookup; the callback (may be NULL) comes from the finish timer. */
int mesh_dht_lk_start(mesh_dht *d, const uint8_t target[MESH_NODE_ID_LEN], mesh_dht_lookup_fn cb,
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
    mesh_dht_lk_free(lk);
}

void mesh_dht_finish_fire(mesh_timer *t, void *ud)
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
        mesh_dht_destroy(d);
}

int mesh_dht_lookup(mesh_dht *d, const uint8_t target[MESH_NODE_ID_LEN], mesh_dht_lookup_fn cb,
                    void *ud)
{
    if (!d || !target)
        return MESH_ERR_INVAL;
    return mesh_dht_lk_start(d, target, cb, ud);
}
