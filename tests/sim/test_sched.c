/* test_sched.c — the scheduler: (time, insertion) order, cancel and stale handles, the clock
 * never going backwards, run_until/stop/cap, and the determinism fingerprint. */
#include "mesh_test.h"

#include <string.h>

#include "sim/rng.h"
#include "sim/sched.h"

enum { LOG_MAX = 4096 };

typedef struct rec {
    sim_sched *s;
    int ids[LOG_MAX];
    mesh_time times[LOG_MAX];
    int n;
    int cancel_target; /* index into handles to cancel when event 0 runs, or -1 */
    sim_event_id handles[LOG_MAX];
} rec;

static void note(void *ctx, void *arg)
{
    rec *r = ctx;
    int id = (int)(intptr_t)arg;
    CU_ASSERT_FATAL(r->n < LOG_MAX);
    r->ids[r->n] = id;
    r->times[r->n] = sim_sched_now(r->s);
    r->n++;
    if (id == 0 && r->cancel_target >= 0)
        CU_ASSERT_EQUAL(sim_sched_cancel(r->s, r->handles[r->cancel_target]), MESH_OK);
}

static void rec_init(rec *r)
{
    memset(r, 0, sizeof *r);
    r->cancel_target = -1;
    CU_ASSERT_EQUAL_FATAL(sim_sched_new(&r->s), MESH_OK);
    sim_sched_set_event_cap(r->s, 100000);
}

static void sched(rec *r, mesh_time t, int id)
{
    CU_ASSERT_EQUAL_FATAL(sim_sched_at(r->s, t, SIM_EV_USER, (uint64_t)id, note, r,
                                       (void *)(intptr_t)id, &r->handles[id]),
                          MESH_OK);
}

static void test_order_and_ties(void)
{
    rec r;
    rec_init(&r);
    /* ids 0..5 at times chosen so that time order differs from insertion order and three
     * events tie at t=50 (inserted as 2, 4, 5). */
    sched(&r, 100, 0);
    sched(&r, 10, 1);
    sched(&r, 50, 2);
    sched(&r, 20, 3);
    sched(&r, 50, 4);
    sched(&r, 50, 5);
    CU_ASSERT_EQUAL(sim_sched_pending(r.s), 6);
    CU_ASSERT_EQUAL(sim_sched_run(r.s), MESH_OK);
    int want[] = {1, 3, 2, 4, 5, 0};
    mesh_time want_t[] = {10, 20, 50, 50, 50, 100};
    CU_ASSERT_EQUAL_FATAL(r.n, 6);
    for (int i = 0; i < 6; i++) {
        CU_ASSERT_EQUAL(r.ids[i], want[i]);
        CU_ASSERT_EQUAL(r.times[i], want_t[i]);
    }
    CU_ASSERT_EQUAL(sim_sched_now(r.s), 100);
    sim_sched_free(r.s);
}

static void test_many_ties_keep_insertion_order(void)
{
    rec r;
    rec_init(&r);
    /* 2000 events over 3 time values, inserted interleaved: each time's ids must come out
     * in increasing (insertion) order even after heap reshuffles. */
    for (int i = 0; i < 2000; i++)
        sched(&r, (mesh_time)((i * 7) % 3) * 1000, i);
    CU_ASSERT_EQUAL(sim_sched_run(r.s), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(r.n, 2000);
    for (int i = 1; i < r.n; i++) {
        CU_ASSERT_TRUE(r.times[i] >= r.times[i - 1]);
        if (r.times[i] == r.times[i - 1])
            CU_ASSERT_TRUE(r.ids[i] > r.ids[i - 1]);
    }
    sim_sched_free(r.s);
}

static void test_cancel(void)
{
    rec r;
    rec_init(&r);
    sched(&r, 30, 0);
    sched(&r, 10, 1);
    sched(&r, 20, 2);
    sched(&r, 40, 3);
    CU_ASSERT_EQUAL(sim_sched_cancel(r.s, r.handles[2]), MESH_OK);
    CU_ASSERT_FALSE(sim_sched_pending_id(r.s, r.handles[2]));
    /* twice: stale */
    CU_ASSERT_EQUAL(sim_sched_cancel(r.s, r.handles[2]), MESH_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(sim_sched_cancel(r.s, SIM_EVENT_NONE), MESH_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(sim_sched_cancel(r.s, 0xdeadbeef00001234ULL), MESH_ERR_NOT_FOUND);
    r.cancel_target = 3; /* event 0 (t=30) cancels event 3 (t=40) from inside a handler */
    CU_ASSERT_EQUAL(sim_sched_run(r.s), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(r.n, 2);
    CU_ASSERT_EQUAL(r.ids[0], 1);
    CU_ASSERT_EQUAL(r.ids[1], 0);
    /* fired handle: stale too, even after its slot is recycled by a new event */
    sim_event_id old = r.handles[1];
    sched(&r, 50, 4);
    CU_ASSERT_EQUAL(sim_sched_cancel(r.s, old), MESH_ERR_NOT_FOUND);
    CU_ASSERT_TRUE(sim_sched_pending_id(r.s, r.handles[4]));
    CU_ASSERT_EQUAL(sim_sched_pending(r.s), 1);
    sim_sched_free(r.s);
}

/* Random schedule with random cancels, checked against the order a sorted model predicts. */
static void test_random_against_model(void)
{
    rec r;
    rec_init(&r);
    sim_rng g;
    sim_rng_seed(&g, 7);
    int cancelled[LOG_MAX] = {0};
    enum { N = 3000 };
    mesh_time when[N];
    for (int i = 0; i < N; i++) {
        when[i] = sim_rng_below(&g, 500);
        sched(&r, when[i], i);
    }
    for (int i = 0; i < N; i += 3) {
        CU_ASSERT_EQUAL(sim_sched_cancel(r.s, r.handles[i]), MESH_OK);
        cancelled[i] = 1;
    }
    CU_ASSERT_EQUAL(sim_sched_run(r.s), MESH_OK);
    int k = 0;
    for (mesh_time t = 0; t < 500; t++)
        for (int i = 0; i < N; i++)
            if (when[i] == t && !cancelled[i]) {
                CU_ASSERT_EQUAL_FATAL(r.ids[k], i);
                k++;
            }
    CU_ASSERT_EQUAL(k, r.n);
    sim_sched_free(r.s);
}

/* Cancellation is lazy: most of 30,000 events cancelled (so the heap is rebuilt without the
 * stale entries, more than once), the rest still fire in (time, insertion) order, and
 * pending() counts only live events throughout. */
typedef struct order_check {
    uint64_t last_i, fired;
} order_check;

static void check_order(void *ctx, void *arg)
{
    order_check *o = ctx;
    o->fired++;
    o->last_i = (uint64_t)(uintptr_t)arg;
}

static void test_lazy_cancel_compaction(void)
{
    enum { N = 30000 };
    static sim_event_id ids[N];
    sim_sched *s = NULL;
    CU_ASSERT_EQUAL_FATAL(sim_sched_new(&s), MESH_OK);
    order_check o = {0};
    for (uint64_t i = 0; i < N; i++)
        CU_ASSERT_EQUAL_FATAL(
            sim_sched_at(s, i % 97, SIM_EV_USER, i, check_order, &o, (void *)(uintptr_t)i, &ids[i]),
            MESH_OK);
    size_t live = N;
    for (uint64_t i = 0; i < N; i++) {
        if (i % 5 == 0)
            continue;
        CU_ASSERT_EQUAL(sim_sched_cancel(s, ids[i]), MESH_OK);
        live--;
        CU_ASSERT_EQUAL(sim_sched_pending(s), live);
    }
    CU_ASSERT_EQUAL(sim_sched_cancel(s, ids[1]), MESH_ERR_NOT_FOUND);
    CU_ASSERT_TRUE(sim_sched_pending_id(s, ids[5]));
    /* fire them one by one and check the order: time first, then insertion */
    mesh_time last_t = 0;
    uint64_t last_i = 0, fired = 0;
    while (sim_sched_pending(s) > 0) {
        CU_ASSERT_EQUAL_FATAL(sim_sched_step(s), 1);
        mesh_time t = sim_sched_now(s);
        CU_ASSERT_TRUE(o.last_i % 5 == 0);
        CU_ASSERT_TRUE(t > last_t || (t == last_t && (fired == 0 || o.last_i > last_i)));
        CU_ASSERT_EQUAL(t, o.last_i % 97);
        last_t = t;
        last_i = o.last_i;
        fired++;
    }
    CU_ASSERT_EQUAL(fired, N / 5);
    CU_ASSERT_EQUAL(sim_sched_step(s), 0); /* only stale entries were left, if any */
    sim_sched_free(s);
}

/* Differential test of the tiered queue against a brute-force model: a random mix of
 * schedules (at now, near, spread, far, bursts at one time, next to MESH_TIME_NEVER),
 * cancels and steps; every step must fire the model's (time, insertion)-least pending event.
 * The bulk loads are large enough that the queue builds rungs, splits crowded buckets into
 * finer rungs, and caps the ladder depth, and the cancels hit keys in every tier. */
enum { MODEL_MAX = 60000 };

typedef struct model {
    sim_sched *s;
    mesh_time when[MODEL_MAX];
    sim_event_id id[MODEL_MAX];
    unsigned char live[MODEL_MAX];
    int n;     /* events ever scheduled (their index is their insertion order) */
    int fired; /* index of the event that just ran, or -1 */
    int *pend; /* indices of live events, unordered */
    int npend;
    sim_rng g;
} model;

static void model_fire(void *ctx, void *arg)
{
    model *m = ctx;
    m->fired = (int)(intptr_t)arg;
}

static void model_at(model *m, mesh_time t)
{
    CU_ASSERT_FATAL(m->n < MODEL_MAX);
    int i = m->n++;
    CU_ASSERT_EQUAL_FATAL(sim_sched_at(m->s, t, SIM_EV_USER, (uint64_t)i, model_fire, m,
                                       (void *)(intptr_t)i, &m->id[i]),
                          MESH_OK);
    m->when[i] = t;
    m->live[i] = 1;
    m->pend[m->npend++] = i;
}

static void model_drop(model *m, int k)
{
    m->live[m->pend[k]] = 0;
    m->pend[k] = m->pend[--m->npend];
}

static void model_cancel_random(model *m)
{
    if (m->npend == 0)
        return;
    int k = (int)sim_rng_below(&m->g, (uint64_t)m->npend);
    int i = m->pend[k];
    CU_ASSERT_EQUAL(sim_sched_cancel(m->s, m->id[i]), MESH_OK);
    CU_ASSERT_EQUAL(sim_sched_cancel(m->s, m->id[i]), MESH_ERR_NOT_FOUND);
    CU_ASSERT_FALSE(sim_sched_pending_id(m->s, m->id[i]));
    model_drop(m, k);
}

/* One step; checks the fired event against the model. */
static void model_step(model *m)
{
    int best = -1, bk = -1;
    for (int k = 0; k < m->npend; k++) {
        int i = m->pend[k];
        if (best < 0 || m->when[i] < m->when[best] || (m->when[i] == m->when[best] && i < best)) {
            best = i;
            bk = k;
        }
    }
    m->fired = -1;
    int rc = sim_sched_step(m->s);
    if (best < 0) {
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        return;
    }
    CU_ASSERT_EQUAL_FATAL(rc, 1);
    CU_ASSERT_EQUAL_FATAL(m->fired, best);
    CU_ASSERT_EQUAL_FATAL(sim_sched_now(m->s), m->when[best]);
    CU_ASSERT_FALSE(sim_sched_pending_id(m->s, m->id[best]));
    CU_ASSERT_EQUAL(sim_sched_cancel(m->s, m->id[best]), MESH_ERR_NOT_FOUND);
    model_drop(m, bk);
}

static mesh_time model_pick_time(model *m, mesh_time burst)
{
    mesh_time now = sim_sched_now(m->s);
    switch (sim_rng_below(&m->g, 8)) {
    case 0:
        return now;
    case 1:
        return now + sim_rng_below(&m->g, 100);
    case 2:
        return burst > now ? burst : now;
    case 3:
        return now + sim_rng_below(&m->g, 1000000000ULL);
    case 4: /* far future, close to the largest time there is */
        return MESH_TIME_NEVER - 1 - sim_rng_below(&m->g, 4);
    default:
        return now + sim_rng_below(&m->g, 10000000ULL);
    }
}

static model *model_new(uint64_t seed)
{
    static model mm;
    static int pend[MODEL_MAX];
    model *m = &mm;
    memset(m, 0, sizeof *m);
    m->pend = pend;
    sim_rng_seed(&m->g, seed);
    CU_ASSERT_EQUAL_FATAL(sim_sched_new(&m->s), MESH_OK);
    return m;
}

static void model_check_pending(model *m)
{
    CU_ASSERT_EQUAL(sim_sched_pending(m->s), (size_t)m->npend);
}

static void test_tiers_against_model(void)
{
    for (uint64_t seed = 1; seed <= 3; seed++) {
        model *m = model_new(seed);
        /* bulk: a spread-out population (one rung), a crowded burst (a bucket to split), and
         * far-future outliers (the first rung's buckets become huge: the ladder deepens) */
        for (int i = 0; i < 6000; i++)
            model_at(m, sim_rng_below(&m->g, 10000000ULL));
        for (int i = 0; i < 4000; i++)
            model_at(m, 5000000 + sim_rng_below(&m->g, 50));
        if (seed != 2)
            for (int i = 0; i < 3; i++)
                model_at(m, MESH_TIME_NEVER - 1 - (mesh_time)i);
        model_check_pending(m);
        mesh_time burst = 7000000;
        for (int it = 0; it < 30000 && m->n < MODEL_MAX - 10; it++) {
            uint64_t a = sim_rng_below(&m->g, 10);
            if (a < 4)
                model_at(m, model_pick_time(m, burst));
            else if (a < 5)
                model_cancel_random(m);
            else
                model_step(m);
            if (it % 5000 == 0)
                burst = sim_sched_now(m->s) + sim_rng_below(&m->g, 1000000);
        }
        model_check_pending(m);
        /* cancel half of what is left (keys now sit in the heap, in rungs and in top) */
        for (int k = m->npend / 2; k > 0; k--)
            model_cancel_random(m);
        model_check_pending(m);
        while (m->npend > 0)
            model_step(m);
        model_step(m); /* empty: returns 0 */
        CU_ASSERT_EQUAL(sim_sched_pending(m->s), 0);
        sim_sched_free(m->s);
    }
}

/* Every event at one time: they form one bucket of width 1 (no rung can split it) and must
 * still run in insertion order, with events scheduled at now during the run going last. */
static void test_all_at_one_time(void)
{
    model *m = model_new(11);
    for (int i = 0; i < 20000; i++)
        model_at(m, 123456789);
    for (int i = 0; i < 5000; i++)
        model_cancel_random(m);
    for (int i = 0; i < 100; i++)
        model_step(m);
    for (int i = 0; i < 300; i++)
        model_at(m, 123456789);
    model_check_pending(m);
    while (m->npend > 0)
        model_step(m);
    model_step(m);
    sim_sched_free(m->s);
}

/* Times at the very end of the clock (bucket ranges that would overflow 64 bits), reached
 * with run_until: the clock lands there and events can still be scheduled at it. */
static void test_far_future(void)
{
    model *m = model_new(12);
    for (int i = 0; i < 3000; i++)
        model_at(m, MESH_TIME_NEVER - 1 - sim_rng_below(&m->g, 3000));
    for (int i = 0; i < 3000; i++)
        model_at(m, sim_rng_below(&m->g, 1ULL << 62));
    for (int i = 0; i < 3000; i++)
        model_step(m);
    CU_ASSERT_EQUAL(sim_sched_run_until(m->s, MESH_TIME_NEVER - 4000), MESH_OK);
    CU_ASSERT_EQUAL(sim_sched_now(m->s), MESH_TIME_NEVER - 4000);
    /* run_until ran nothing here: every pending event is later */
    CU_ASSERT_EQUAL(sim_sched_pending(m->s), (size_t)m->npend);
    for (int i = 0; i < 500; i++)
        model_at(m, MESH_TIME_NEVER - 1 - sim_rng_below(&m->g, 3000));
    CU_ASSERT_EQUAL(sim_sched_at(m->s, MESH_TIME_NEVER, SIM_EV_USER, 0, model_fire, m, NULL, NULL),
                    MESH_ERR_INVAL);
    while (m->npend > 0)
        model_step(m);
    CU_ASSERT_EQUAL(sim_sched_now(m->s), MESH_TIME_NEVER - 1);
    sim_sched_free(m->s);
}

/* Cancel everything in every tier, then the queue is reused: the stale keys (and the
 * rungs they sat in) must not resurface, and counts stay exact. */
static void test_cancel_all_then_reuse(void)
{
    model *m = model_new(13);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 8000; i++)
            model_at(m, sim_sched_now(m->s) + sim_rng_below(&m->g, 1000000));
        for (int i = 0; i < 50; i++)
            model_step(m); /* heap, rungs and top all hold keys now */
        for (int i = 0; i < 30; i++)
            model_at(m, sim_sched_now(m->s) + sim_rng_below(&m->g, 2000000));
        while (m->npend > 0)
            model_cancel_random(m);
        CU_ASSERT_EQUAL(sim_sched_pending(m->s), 0);
        model_step(m);
        CU_ASSERT_EQUAL(sim_sched_run(m->s), MESH_OK);
    }
    for (int i = 0; i < 100; i++)
        model_at(m, sim_sched_now(m->s) + sim_rng_below(&m->g, 100));
    while (m->npend > 0)
        model_step(m);
    sim_sched_free(m->s);
}

static void test_time_never_backwards(void)
{
    rec r;
    rec_init(&r);
    sched(&r, 1000, 0);
    CU_ASSERT_EQUAL(sim_sched_run(r.s), MESH_OK);
    CU_ASSERT_EQUAL(sim_sched_now(r.s), 1000);
    /* the past is refused and nothing is queued */
    CU_ASSERT_EQUAL(sim_sched_at(r.s, 999, SIM_EV_USER, 0, note, &r, NULL, NULL), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(sim_sched_at(r.s, 5, SIM_EV_USER, 0, note, &r, NULL, NULL), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(sim_sched_at(r.s, 2000, SIM_EV_USER, 0, NULL, &r, NULL, NULL), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(sim_sched_pending(r.s), 0);
    /* now is allowed */
    CU_ASSERT_EQUAL(sim_sched_at(r.s, 1000, SIM_EV_USER, 0, note, &r, (void *)1, NULL), MESH_OK);
    /* run_until moves the clock to t even with nothing to do, but never back */
    CU_ASSERT_EQUAL(sim_sched_run_until(r.s, 5000), MESH_OK);
    CU_ASSERT_EQUAL(sim_sched_now(r.s), 5000);
    CU_ASSERT_EQUAL(sim_sched_run_until(r.s, 10), MESH_OK);
    CU_ASSERT_EQUAL(sim_sched_now(r.s), 5000);
    CU_ASSERT_EQUAL(r.n, 2);
    sim_sched_free(r.s);
}

static void forever(void *ctx, void *arg)
{
    sim_sched *s = ctx;
    (void)arg;
    sim_sched_after(s, 1, SIM_EV_USER, 0, forever, s, NULL, NULL);
}

static void stopper(void *ctx, void *arg)
{
    (void)arg;
    sim_sched_stop(ctx);
}

static void test_cap_and_stop(void)
{
    sim_sched *s;
    CU_ASSERT_EQUAL_FATAL(sim_sched_new(&s), MESH_OK);
    sim_sched_set_event_cap(s, 500);
    sim_sched_at(s, 0, SIM_EV_USER, 0, forever, s, NULL, NULL);
    CU_ASSERT_EQUAL(sim_sched_run(s), MESH_ERR_LIMIT);
    CU_ASSERT_EQUAL(sim_sched_processed(s), 500);
    CU_ASSERT_EQUAL(sim_sched_step(s), MESH_ERR_LIMIT);
    sim_sched_set_event_cap(s, 0);
    sim_sched_at(s, sim_sched_now(s) + 10, SIM_EV_USER, 0, stopper, s, NULL, NULL);
    CU_ASSERT_EQUAL(sim_sched_run_until(s, 1000000), MESH_ERR_STATE);
    CU_ASSERT_EQUAL(sim_sched_now(s), 499 + 10);
    sim_sched_free(s);
}

/* A little self-scheduling workload whose shape depends on the seed. */
typedef struct work {
    sim_sched *s;
    sim_rng g;
    int left;
} work;

static void work_ev(void *ctx, void *arg)
{
    work *w = ctx;
    (void)arg;
    if (w->left-- <= 0)
        return;
    for (int i = 0; i < 2; i++)
        sim_sched_after(w->s, sim_rng_below(&w->g, 1000), SIM_EV_USER, sim_rng_below(&w->g, 16),
                        work_ev, w, NULL, NULL);
}

static uint64_t run_work(uint64_t seed)
{
    work w;
    CU_ASSERT_EQUAL_FATAL(sim_sched_new(&w.s), MESH_OK);
    sim_sched_set_event_cap(w.s, 100000);
    sim_rng_seed(&w.g, seed);
    w.left = 5000;
    sim_sched_at(w.s, 0, SIM_EV_USER, 0, work_ev, &w, NULL, NULL);
    CU_ASSERT_EQUAL(sim_sched_run(w.s), MESH_OK);
    uint64_t fp = sim_sched_fingerprint(w.s);
    char buf[96];
    CU_ASSERT_PTR_NOT_NULL(strstr(sim_sched_summary(w.s, buf, sizeof buf), "fingerprint="));
    sim_sched_free(w.s);
    return fp;
}

static void stop_noop(void *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
}

static void test_fingerprint(void)
{
    uint64_t a = run_work(1), b = run_work(1);
    CU_ASSERT_EQUAL(a, b);
    CU_ASSERT_NOT_EQUAL(a, run_work(2));
    /* one extra event (same work otherwise) changes the fingerprint */
    work w;
    uint64_t fp[2];
    for (int extra = 0; extra < 2; extra++) {
        CU_ASSERT_EQUAL_FATAL(sim_sched_new(&w.s), MESH_OK);
        sim_rng_seed(&w.g, 1);
        w.left = 5000;
        sim_sched_at(w.s, 0, SIM_EV_USER, 0, work_ev, &w, NULL, NULL);
        if (extra)
            sim_sched_at(w.s, 777, SIM_EV_USER, 99, stop_noop, NULL, NULL, NULL);
        CU_ASSERT_EQUAL(sim_sched_run(w.s), MESH_OK);
        fp[extra] = sim_sched_fingerprint(w.s);
        sim_sched_free(w.s);
    }
    CU_ASSERT_EQUAL(fp[0], a);
    CU_ASSERT_NOT_EQUAL(fp[0], fp[1]);
}

static void test_rng_streams(void)
{
    sim_rng a, b, c;
    sim_rng_derive(&a, 42, SIM_RNG_STREAM_HOST + 1);
    sim_rng_derive(&b, 42, SIM_RNG_STREAM_HOST + 1);
    sim_rng_derive(&c, 42, SIM_RNG_STREAM_HOST + 2);
    uint64_t va = sim_rng_next(&a);
    CU_ASSERT_EQUAL(va, sim_rng_next(&b));
    CU_ASSERT_NOT_EQUAL(va, sim_rng_next(&c));
    sim_rng_derive(&c, 43, SIM_RNG_STREAM_HOST + 1);
    CU_ASSERT_NOT_EQUAL(va, sim_rng_next(&c));
    unsigned hist[10] = {0};
    for (int i = 0; i < 10000; i++) {
        uint64_t v = sim_rng_below(&a, 10);
        CU_ASSERT_TRUE_FATAL(v < 10);
        hist[v]++;
        double u = sim_rng_unit(&a);
        CU_ASSERT_TRUE_FATAL(u >= 0.0 && u < 1.0);
    }
    for (int i = 0; i < 10; i++)
        CU_ASSERT_TRUE(hist[i] > 850 && hist[i] < 1150);
    CU_ASSERT_FALSE(sim_rng_chance(&a, 0.0));
    CU_ASSERT_TRUE(sim_rng_chance(&a, 1.0));
}

static CU_TestInfo tests[] = {
    {"time order, ties in insertion order", test_order_and_ties},
    {"many ties keep insertion order", test_many_ties_keep_insertion_order},
    {"cancel, stale handles, cancel inside a handler", test_cancel},
    {"random schedule matches a sorted model", test_random_against_model},
    {"lazy cancel with compaction keeps order and counts", test_lazy_cancel_compaction},
    {"tiers (heap, rungs, split buckets, top) match a brute-force model", test_tiers_against_model},
    {"all events at one time", test_all_at_one_time},
    {"far-future events next to MESH_TIME_NEVER", test_far_future},
    {"cancel everything in every tier, then reuse", test_cancel_all_then_reuse},
    {"time never goes backwards", test_time_never_backwards},
    {"event cap and stop", test_cap_and_stop},
    {"fingerprint: same run equal, one event differs", test_fingerprint},
    {"rng streams derive reproducibly", test_rng_streams},
    CU_TEST_INFO_NULL,
};
static CU_SuiteInfo suites[] = {{"sched", NULL, NULL, NULL, NULL, tests}, CU_SUITE_INFO_NULL};

int main(void)
{
    return mesh_test_main(suites);
}
