/* sched.c — a ladder queue (Tang, Goh & Thng 2005) of (time, seq, slot) keys over a recycled
 * slot array.
 *
 * Why not one heap: with a million pending events a heap is 16 MB of keys, and every pop
 * walks its depth in cache misses (an 8-ary heap ran the hold benchmark at 2.2-2.8M
 * events/s). Here the keys live in three tiers, each holding later times than the one
 * before it:
 *   near  — a small 8-ary min-heap of every key with time < near_end; pops come from here,
 *           and it holds about one bucket (a few hundred keys), so it stays in cache;
 *   rungs — up to MAX_RUNGS calendars of unsorted buckets of 2^shift ns each; rung r+1
 *           splits the bucket of rung r that was being drained when it got too big, so
 *           the deepest rung covers the nearest times with the finest buckets;
 *   top   — an unsorted array of every key beyond the coarsest rung's end.
 * Inserting appends to the one bucket (or top) whose range holds the time: O(1). When near
 * runs dry, the deepest rung's next non-empty bucket becomes the heap (its array is swapped
 * in, nothing is copied or allocated) — or, when it holds more than SPAWN_MIN keys, it is
 * spread over a new, finer rung first; when every rung is drained, top is spread over a new
 * rung sized to its count and span. Each key is thus moved a constant number of times
 * (append to top, one scatter per rung, the heap), each move sequential or into a bucket
 * tail that is in cache. Any time distribution works: all events at one time end in one
 * bucket of width 1 and simply form the heap; a far-future outlier only widens the buckets
 * of the first rung, whose crowded bucket is then split again (ladder depth grows by at
 * most log2(span)/log2(bucket count) levels before it is capped at MAX_RUNGS and the heap
 * takes over, which is the old design's cost, never worse).
 *
 * Keys are compared without touching the slot array, and moving a key writes nothing else:
 * cancellation is lazy. A cancelled event's key stays where it is, recognised as stale when
 * a bucket becomes the heap or when it surfaces at the root (its slot no longer holds that
 * sequence number), and dropped unprocessed; when stale keys outnumber live ones every tier
 * is filtered in place, so keys stay within about twice the live events. An emptied bucket
 * keeps its array only if it is small (KEEP_BUCKET_CAP), and a rung has at most one bucket
 * per BUCKET_TARGET keys it was built from, so idle bucket memory stays within a few times
 * the keys too; top, like the old heap, keeps its peak capacity. (An eager cancel needs every move
 * to update a back-pointer in the slot array — a second cache miss per move.) Pop order is the
 * total order of (time, seq), whatever tier a key sat in, so none of this changes a run. */
#include "sim/sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 16 bytes. key packs the insertion sequence above the slot index: comparing keys compares
 * sequences. */
typedef struct heap_ent {
    mesh_time time;
    uint64_t key; /* seq << SLOT_BITS | slot */
} heap_ent;

#define SLOT_BITS 26
#define SLOT_MASK ((1ULL << SLOT_BITS) - 1)
#define SEQ_MAX ((1ULL << (64 - SLOT_BITS)) - 1)
#define ENT_SLOT(e) ((uint32_t)((e).key & SLOT_MASK))

typedef struct slot {
    sim_event_fn fn;
    void *ctx;
    void *arg;
    uint64_t target;
    uint64_t seq; /* the pending event's sequence number (valid while pending) */
    uint32_t kind;
    uint32_t gen; /* bumped when the event fires or is cancelled */
    uint32_t next_free;
    uint32_t pending; /* 1 while its event is queued */
} slot;

#define NO_SLOT UINT32_MAX
#define ARITY 8

enum sched_tuning {
    MAX_RUNGS = 8,        /* ladder depth; past it a crowded bucket just becomes the heap */
    BUCKET_TARGET = 256,  /* keys per bucket a new rung is sized for (the heap's size) */
    SPAWN_MIN = 2048,     /* a bucket with more keys is split over a finer rung */
    MAX_LOG_BUCKETS = 12, /* 4096 buckets per rung at most (their tails stay in L2) */
    SMALL_TOP = 64,       /* fewer keys in top: no rung, top becomes the heap directly */
    KEEP_BUCKET_CAP = 512 /* larger arrays freed when emptied, so a burst does not pin */
};

/* An array of keys: the heap, a bucket, or top. */
typedef struct evec {
    heap_ent *e;
    uint32_t n, cap;
} evec;

/* One calendar: nb = 1 << lognb buckets of 2^shift ns from start; buckets below cur are
 * drained (empty). end is start + (nb << shift), or MESH_TIME_NEVER if that overflows. */
typedef struct rung {
    mesh_time start, end;
    evec *b;
    uint32_t nb, cur, bcap; /* bcap: bucket headers allocated (kept across reuse) */
    unsigned shift;
} rung;

struct sim_sched {
    mesh_time now;
    uint64_t seq;
    evec near;          /* min-heap of every key with time < near_end */
    mesh_time near_end; /* == the deepest rung's next bucket start (or its end) */
    rung rungs[MAX_RUNGS];
    unsigned depth; /* rungs in use; rungs[depth - 1] is the deepest */
    evec top;       /* keys with time >= the coarsest rung's end (or near_end) */
    mesh_time top_min, top_max;
    size_t n;    /* keys in every tier, live and stale */
    size_t live; /* pending events (n minus stale keys) */
    slot *slots;
    size_t slot_cap, slot_used;
    uint32_t free_head;
    uint64_t processed, cap;
    uint64_t fp;
    int stop;
};

int sim_sched_new(sim_sched **out)
{
    sim_sched *s = calloc(1, sizeof *s);
    if (!s)
        return MESH_ERR_NOMEM;
    s->slots = malloc(SIM_SCHED_INITIAL_CAP * sizeof *s->slots);
    if (!s->slots) {
        free(s);
        return MESH_ERR_NOMEM;
    }
    s->slot_cap = SIM_SCHED_INITIAL_CAP;
    s->free_head = NO_SLOT;
    s->fp = 0xcbf29ce484222325ULL;
    *out = s;
    return MESH_OK;
}

void sim_sched_free(sim_sched *s)
{
    if (!s)
        return;
    free(s->near.e);
    free(s->top.e);
    for (unsigned r = 0; r < MAX_RUNGS; r++) {
        for (uint32_t i = 0; i < s->rungs[r].bcap; i++)
            free(s->rungs[r].b[i].e);
        free(s->rungs[r].b);
    }
    free(s->slots);
    free(s);
}

mesh_time sim_sched_now(const sim_sched *s)
{
    return s->now;
}

/* Room for `need` keys in v. MESH_OK or MESH_ERR_NOMEM (v unchanged). */
static int evec_reserve(evec *v, size_t need)
{
    if (need <= v->cap)
        return MESH_OK;
    size_t nc = v->cap ? (size_t)v->cap * 2 : 16;
    if (nc < need)
        nc = need;
    heap_ent *e = realloc(v->e, nc * sizeof *e);
    if (!e)
        return MESH_ERR_NOMEM;
    v->e = e;
    v->cap = (uint32_t)nc;
    return MESH_OK;
}

/* Free an empty array that a burst made large. */
static void evec_trim(evec *v)
{
    if (v->n == 0 && v->cap > KEEP_BUCKET_CAP) {
        free(v->e);
        *v = (evec){0};
    }
}

static inline int key_less(const heap_ent *a, const heap_ent *b)
{
    return a->time < b->time || (a->time == b->time && a->key < b->key);
}

static void sift_up(heap_ent *h, size_t i, heap_ent e)
{
    while (i > 0) {
        size_t p = (i - 1) / ARITY;
        if (!key_less(&e, &h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static void sift_down(heap_ent *h, size_t n, size_t i, heap_ent e)
{
    for (;;) {
        size_t c = i * ARITY + 1;
        if (c >= n)
            break;
        size_t best = c, end = c + ARITY < n ? c + ARITY : n;
        for (size_t k = c + 1; k < end; k++)
            if (key_less(&h[k], &h[best]))
                best = k;
        if (!key_less(&h[best], &e))
            break;
        h[i] = h[best];
        i = best;
    }
    h[i] = e;
}

/* Floyd's bottom-up build: O(n). */
static void heapify(evec *v)
{
    for (size_t i = v->n > 1 ? (v->n - 2) / ARITY + 1 : 0; i-- > 0;)
        sift_down(v->e, v->n, i, v->e[i]);
}

/* 1 if key e is its slot's pending event (not cancelled, not a recycled slot's). */
static inline int ent_live(const sim_sched *s, heap_ent e)
{
    const slot *sl = &s->slots[ENT_SLOT(e)];
    return sl->pending && sl->seq == e.key >> SLOT_BITS;
}

/* Drop v's stale keys in place (order not kept). */
static void evec_filter(sim_sched *s, evec *v)
{
    uint32_t w = 0;
    for (uint32_t i = 0; i < v->n; i++)
        if (ent_live(s, v->e[i]))
            v->e[w++] = v->e[i];
    s->n -= v->n - w;
    v->n = w;
}

/* Drop every stale key from every tier: O(n + bucket headers). */
static void compact(sim_sched *s)
{
    evec_filter(s, &s->near);
    heapify(&s->near);
    for (unsigned r = 0; r < s->depth; r++)
        for (uint32_t i = s->rungs[r].cur; i < s->rungs[r].nb; i++)
            evec_filter(s, &s->rungs[r].b[i]);
    evec_filter(s, &s->top);
    if (s->top.n > 0) {
        s->top_min = s->top_max = s->top.e[0].time;
        for (uint32_t i = 1; i < s->top.n; i++) {
            mesh_time t = s->top.e[i].time;
            s->top_min = t < s->top_min ? t : s->top_min;
            s->top_max = t > s->top_max ? t : s->top_max;
        }
    }
}

/* The array a key at time t belongs in (see the tier invariants at the top of the file). */
static evec *tier_for(sim_sched *s, mesh_time t)
{
    if (t < s->near_end)
        return &s->near;
    for (unsigned r = s->depth; r-- > 0;) {
        rung *g = &s->rungs[r];
        if (t < g->end)
            return &g->b[(t - g->start) >> g->shift];
    }
    return &s->top;
}

/* Ceiling of log2(x) for x >= 1 (0..64). */
static unsigned ceil_log2(uint64_t x)
{
    return x <= 1 ? 0 : 64 - (unsigned)__builtin_clzll(x - 1);
}

/* Spread src (count keys, all within [start, start + 2^bits)) over a new deepest rung of
 * 2^bits ns from start, then empty src. MESH_ERR_NOMEM (nothing moved) if bucket arrays
 * could not be allocated; the caller then makes src the heap instead. */
static int spread(sim_sched *s, evec *src, mesh_time start, unsigned bits)
{
    unsigned lognb = ceil_log2(src->n / BUCKET_TARGET);
    if (lognb < 1)
        lognb = 1;
    if (lognb > MAX_LOG_BUCKETS)
        lognb = MAX_LOG_BUCKETS;
    if (lognb > bits)
        lognb = bits;
    rung *g = &s->rungs[s->depth];
    uint32_t nb = 1u << lognb;
    if (g->bcap < nb) {
        evec *b = realloc(g->b, nb * sizeof *b);
        if (!b)
            return MESH_ERR_NOMEM;
        memset(b + g->bcap, 0, (nb - g->bcap) * sizeof *b);
        g->b = b;
        g->bcap = nb;
    }
    g->start = start;
    g->shift = bits - lognb;
    g->nb = nb;
    g->cur = 0;
    g->end =
        bits >= 64 || start + (1ULL << bits) < start ? MESH_TIME_NEVER : start + (1ULL << bits);
    /* Count first (in n, every bucket of a fresh rung being empty), reserve, then scatter:
     * nothing can fail once a key has moved. */
    for (uint32_t i = 0; i < src->n; i++)
        g->b[(src->e[i].time - start) >> g->shift].n++;
    int rc = MESH_OK;
    for (uint32_t i = 0; i < nb; i++) {
        if (rc == MESH_OK && evec_reserve(&g->b[i], g->b[i].n) != MESH_OK)
            rc = MESH_ERR_NOMEM;
        g->b[i].n = 0;
    }
    if (rc != MESH_OK)
        return rc;
    for (uint32_t i = 0; i < src->n; i++) {
        evec *b = &g->b[(src->e[i].time - start) >> g->shift];
        b->e[b->n++] = src->e[i];
    }
    src->n = 0;
    if (src != &s->top)
        evec_trim(src);
    /* buckets past nb, left from an earlier use of this rung, are empty */
    for (uint32_t i = nb; i < g->bcap; i++)
        evec_trim(&g->b[i]);
    s->depth++;
    s->near_end = start;
    return MESH_OK;
}

/* Make src (keys all before `end`, all other keys at or after it) the heap: its array is
 * swapped with the empty heap's, so nothing is copied or allocated. */
static void become_heap(sim_sched *s, evec *src, mesh_time end)
{
    evec old = s->near; /* empty */
    s->near = *src;
    evec_trim(&old);
    *src = old;
    evec_filter(s, &s->near);
    heapify(&s->near);
    s->near_end = end;
}

/* Start of bucket i of g (i <= nb), or g->end if that is later: a rung's start is not
 * aligned, so near the end of the clock its last buckets can lie past 2^64 (they stay
 * empty, and g->end is MESH_TIME_NEVER then). */
static mesh_time bucket_start(const rung *g, uint32_t i)
{
    mesh_time off = (mesh_time)i << g->shift;
    if (i >= g->nb || off >= g->end - g->start)
        return g->end;
    return g->start + off;
}

/* The heap is empty: move the next keys in time order into it (possibly none, if they were
 * all stale). 0 if every tier is empty. */
static int refill(sim_sched *s)
{
    if (s->depth > 0) {
        rung *g = &s->rungs[s->depth - 1];
        while (g->cur < g->nb && g->b[g->cur].n == 0)
            g->cur++;
        if (g->cur == g->nb) {
            s->near_end = g->end;
            s->depth--;
            return 1;
        }
        evec *b = &g->b[g->cur];
        mesh_time bstart = bucket_start(g, g->cur);
        g->cur++;
        if (b->n > SPAWN_MIN && g->shift > 0 && s->depth < MAX_RUNGS &&
            spread(s, b, bstart, g->shift) == MESH_OK)
            return 1;
        become_heap(s, b, bucket_start(g, g->cur));
        return 1;
    }
    if (s->top.n == 0)
        return 0;
    /* top_max < MESH_TIME_NEVER, so +1 cannot overflow; span >= 1 */
    unsigned bits = ceil_log2(s->top_max - s->top_min + 1);
    if (s->top.n <= SMALL_TOP || bits == 0 || spread(s, &s->top, s->top_min, bits) != MESH_OK)
        become_heap(s, &s->top, s->top_max + 1);
    return 1;
}

/* Remove the heap's root, and start loading the slot of the next one: the current event's
 * handler runs meanwhile, so the next pop rarely waits for memory. */
static void pop_root(sim_sched *s)
{
    s->near.n--;
    s->n--;
    if (s->near.n > 0) {
        sift_down(s->near.e, s->near.n, 0, s->near.e[s->near.n]);
        const slot *next = &s->slots[ENT_SLOT(s->near.e[0])];
        __builtin_prefetch(next);
        __builtin_prefetch((const char *)(next + 1) - 1);
    }
}

/* Drop stale keys at the root, refilling the heap as it empties; 1 if a live event is at
 * the root (the earliest of all), 0 if none is pending. */
static int top_live(sim_sched *s)
{
    for (;;) {
        while (s->near.n > 0 && !ent_live(s, s->near.e[0]))
            pop_root(s);
        if (s->near.n > 0)
            return 1;
        if (!refill(s))
            return 0;
    }
}

/* Room for one more slot and one more key in *v. */
static int grow(sim_sched *s, evec *v)
{
    if (s->live >= SIM_SCHED_MAX_PENDING)
        return MESH_ERR_LIMIT;
    if (s->free_head == NO_SLOT && s->slot_used == s->slot_cap) {
        size_t nc = s->slot_cap * 2;
        slot *sl = realloc(s->slots, nc * sizeof *sl);
        if (!sl)
            return MESH_ERR_NOMEM;
        s->slots = sl;
        s->slot_cap = nc;
    }
    return evec_reserve(v, (size_t)v->n + 1);
}

static inline sim_event_id make_id(uint32_t slot_idx, uint32_t gen)
{
    return ((uint64_t)gen << 32) | ((uint64_t)slot_idx + 1);
}

int sim_sched_at(sim_sched *s, mesh_time when, uint32_t kind, uint64_t target, sim_event_fn fn,
                 void *ctx, void *arg, sim_event_id *id_out)
{
    if (!fn || when < s->now || when == MESH_TIME_NEVER)
        return MESH_ERR_INVAL;
    if (s->seq > SEQ_MAX)
        return MESH_ERR_LIMIT;
    evec *v = tier_for(s, when);
    int rc = grow(s, v);
    if (rc != MESH_OK)
        return rc;
    uint32_t si;
    if (s->free_head != NO_SLOT) {
        si = s->free_head;
        s->free_head = s->slots[si].next_free;
    } else {
        si = (uint32_t)s->slot_used++;
        s->slots[si].gen = 1;
    }
    slot *sl = &s->slots[si];
    sl->fn = fn;
    sl->ctx = ctx;
    sl->arg = arg;
    sl->target = target;
    sl->kind = kind;
    sl->seq = s->seq;
    sl->pending = 1;
    heap_ent e = {when, (s->seq++ << SLOT_BITS) | si};
    s->n++;
    s->live++;
    if (v == &s->near) {
        sift_up(v->e, v->n++, e);
    } else {
        if (v == &s->top) {
            if (v->n == 0 || when < s->top_min)
                s->top_min = when;
            if (v->n == 0 || when > s->top_max)
                s->top_max = when;
        }
        v->e[v->n++] = e;
    }
    if (id_out)
        *id_out = make_id(si, sl->gen);
    return MESH_OK;
}

int sim_sched_after(sim_sched *s, mesh_time delay, uint32_t kind, uint64_t target, sim_event_fn fn,
                    void *ctx, void *arg, sim_event_id *id_out)
{
    mesh_time when = delay > MESH_TIME_NEVER - 1 - s->now ? MESH_TIME_NEVER - 1 : s->now + delay;
    return sim_sched_at(s, when, kind, target, fn, ctx, arg, id_out);
}

static void release_slot(sim_sched *s, uint32_t si)
{
    slot *sl = &s->slots[si];
    sl->gen++;
    if (sl->gen == 0) /* keep ids non-zero and distinct after wrap */
        sl->gen = 1;
    sl->pending = 0;
    sl->next_free = s->free_head;
    s->free_head = si;
}

/* Slot index of a live id, or NO_SLOT. */
static uint32_t live_slot(const sim_sched *s, sim_event_id id)
{
    if (id == SIM_EVENT_NONE)
        return NO_SLOT;
    uint64_t low = id & 0xffffffffULL;
    if (low == 0 || low > s->slot_used)
        return NO_SLOT;
    uint32_t si = (uint32_t)(low - 1);
    const slot *sl = &s->slots[si];
    if (sl->gen != (uint32_t)(id >> 32) || !sl->pending)
        return NO_SLOT;
    return si;
}

int sim_sched_pending_id(const sim_sched *s, sim_event_id id)
{
    return live_slot(s, id) != NO_SLOT;
}

int sim_sched_cancel(sim_sched *s, sim_event_id id)
{
    uint32_t si = live_slot(s, id);
    if (si == NO_SLOT)
        return MESH_ERR_NOT_FOUND;
    release_slot(s, si); /* its key is now stale */
    s->live--;
    if (s->n - s->live > s->live && s->n - s->live > 4096)
        compact(s);
    return MESH_OK;
}

static inline uint64_t fold(uint64_t fp, mesh_time t, uint32_t kind, uint64_t target)
{
    fp = (fp ^ t) * 0x100000001b3ULL;
    fp = (fp << 29) | (fp >> 35);
    fp = (fp ^ ((uint64_t)kind << 48) ^ target) * 0x9e3779b97f4a7c15ULL;
    return fp ^ (fp >> 31);
}

int sim_sched_step(sim_sched *s)
{
    if (!top_live(s))
        return 0;
    if (s->cap && s->processed >= s->cap)
        return MESH_ERR_LIMIT;
    heap_ent top = s->near.e[0];
    pop_root(s);
    if (top.time < s->now) {
        fprintf(stderr, "sim_sched: time went backwards (%llu < %llu)\n",
                (unsigned long long)top.time, (unsigned long long)s->now);
        abort();
    }
    slot sl = s->slots[ENT_SLOT(top)];
    release_slot(s, ENT_SLOT(top)); /* cancel from inside the handler is now a harmless no-op */
    s->live--;
    s->now = top.time;
    s->processed++;
    s->fp = fold(s->fp, top.time, sl.kind, sl.target);
    sl.fn(sl.ctx, sl.arg);
    return 1;
}

int sim_sched_run_until(sim_sched *s, mesh_time t)
{
    s->stop = 0;
    while (top_live(s) && s->near.e[0].time <= t) {
        int rc = sim_sched_step(s);
        if (rc < 0)
            return rc;
        if (s->stop) {
            s->stop = 0;
            return MESH_ERR_STATE;
        }
    }
    if (t != MESH_TIME_NEVER && t > s->now)
        s->now = t;
    return MESH_OK;
}

int sim_sched_run(sim_sched *s)
{
    return sim_sched_run_until(s, MESH_TIME_NEVER);
}

void sim_sched_stop(sim_sched *s)
{
    s->stop = 1;
}
void sim_sched_set_event_cap(sim_sched *s, uint64_t cap)
{
    s->cap = cap;
}
size_t sim_sched_pending(const sim_sched *s)
{
    return s->live;
}
uint64_t sim_sched_processed(const sim_sched *s)
{
    return s->processed;
}
uint64_t sim_sched_fingerprint(const sim_sched *s)
{
    return s->fp;
}

char *sim_sched_summary(const sim_sched *s, char *buf, size_t buflen)
{
    snprintf(buf, buflen, "fingerprint=%016llx events=%llu t=%llu", (unsigned long long)s->fp,
             (unsigned long long)s->processed, (unsigned long long)s->now);
    return buf;
}
