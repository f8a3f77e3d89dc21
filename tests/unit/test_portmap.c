/* test_portmap.c — the port-mapping lifecycle (node/core/portmap.c) with a fake env.
 *
 * The fake env has a virtual clock, a handful of timers (fired in deadline order, ties in the
 * order they were armed) and a scripted port-mapping service: every request is recorded with
 * its time, and the test answers it (or not) by calling the recorded callback from the top
 * level, as a driver's later event would. So the tests can check the exact time of every
 * renewal and retry, the reports the owner gets, and what is released when.
 */
#include "mesh_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/portmap.h"

#define SEC(x) ((mesh_time)(x)*MESH_NS_PER_S)
#define MS(x) ((mesh_time)(x)*MESH_NS_PER_MS)

enum { MAX_TIMERS = 8, MAX_REQS = 64, MAX_REPORTS = 64, PORT = 7000 };

/* ---- fake env ----------------------------------------------------------------------------- */

struct mesh_timer {
    mesh_timer_cb cb;
    void *ud;
    int used, armed;
    mesh_time at;
    uint64_t seq;
};

typedef struct req {
    mesh_time at;
    int tcp;
    uint16_t port;
    uint32_t lease;
    mesh_portmap_cb cb;
    void *ud;
} req;

typedef struct report {
    mesh_time at;
    int status;
    mesh_addr ext;
} report;

static struct fake {
    mesh_time now;
    uint64_t seq;
    struct mesh_timer timers[MAX_TIMERS];
    req reqs[MAX_REQS];
    size_t nreqs;
    int in_flight; /* the last request has not been answered, superseded or released */
    int request_rc;
    size_t releases;
    mesh_time released_at;
    report reports[MAX_REPORTS];
    size_t nreports;
} F;

static mesh_time f_now(void *obj)
{
    (void)obj;
    return F.now;
}
static void f_random(void *obj, uint8_t *buf, size_t len)
{
    (void)obj;
    memset(buf, 0x5a, len);
}
static void f_log(void *obj, int level, const char *msg)
{
    (void)obj;
    if (getenv("MESH_TEST_LOG"))
        fprintf(stderr, "[%.3f] %d %s\n", (double)F.now / 1e9, level, msg);
}
static mesh_timer *f_timer_new(void *obj, mesh_timer_cb cb, void *ud)
{
    (void)obj;
    for (int i = 0; i < MAX_TIMERS; i++)
        if (!F.timers[i].used) {
            F.timers[i] = (struct mesh_timer){.cb = cb, .ud = ud, .used = 1};
            return &F.timers[i];
        }
    return NULL;
}
static void f_timer_set(void *obj, mesh_timer *t, mesh_time when)
{
    (void)obj;
    t->armed = 1;
    t->at = when < F.now ? F.now : when;
    t->seq = F.seq++;
}
static void f_timer_stop(void *obj, mesh_timer *t)
{
    (void)obj;
    t->armed = 0;
}
static void f_timer_free(void *obj, mesh_timer *t)
{
    (void)obj;
    t->used = t->armed = 0;
}

static int f_request(void *obj, int tcp, uint16_t port, uint32_t lease, mesh_portmap_cb cb,
                     void *ud)
{
    (void)obj;
    if (F.request_rc != MESH_OK)
        return F.request_rc;
    CU_ASSERT_FATAL(F.nreqs < MAX_REQS);
    F.reqs[F.nreqs++] = (req){F.now, tcp, port, lease, cb, ud};
    F.in_flight = 1; /* a new request supersedes the one in flight (env.h) */
    return MESH_OK;
}
static int f_release(void *obj, int tcp, uint16_t port)
{
    (void)obj;
    CU_ASSERT_EQUAL(tcp, 1);
    CU_ASSERT_EQUAL(port, PORT);
    F.releases++;
    F.released_at = F.now;
    F.in_flight = 0; /* cancelled: its cb is never called */
    return MESH_OK;
}

static const mesh_portmap_ops F_PM = {f_request, f_release};
static mesh_env_ops F_OPS = {
    .now = f_now,
    .random = f_random,
    .log = f_log,
    .timer_new = f_timer_new,
    .timer_set = f_timer_set,
    .timer_stop = f_timer_stop,
    .timer_free = f_timer_free,
    .portmap = &F_PM,
};
static mesh_env ENV = {&F_OPS, &F};

/* Fire timers due up to `until` in order, then leave the clock there. */
static void run_until(mesh_time until)
{
    for (;;) {
        struct mesh_timer *next = NULL;
        for (int i = 0; i < MAX_TIMERS; i++) {
            struct mesh_timer *t = &F.timers[i];
            if (t->used && t->armed && t->at <= until &&
                (!next || t->at < next->at || (t->at == next->at && t->seq < next->seq)))
                next = t;
        }
        if (!next)
            break;
        CU_ASSERT_FATAL(next->at >= F.now);
        F.now = next->at;
        next->armed = 0;
        next->cb(next, next->ud);
    }
    F.now = until;
}

static int armed_timers(void)
{
    int n = 0;
    for (int i = 0; i < MAX_TIMERS; i++)
        n += F.timers[i].used && F.timers[i].armed;
    return n;
}

/* Answer the last request, as a driver event would. */
static void answer(int result, const char *ext, uint32_t lease)
{
    CU_ASSERT_FATAL(F.nreqs > 0 && F.in_flight);
    F.in_flight = 0;
    req *r = &F.reqs[F.nreqs - 1];
    mesh_addr a = {0};
    if (ext)
        CU_ASSERT_FATAL(mesh_addr_parse(&a, ext) == MESH_OK);
    r->cb(result, ext ? &a : NULL, lease, r->ud);
}

static void on_report(mesh_portmap *pm, int status, const mesh_addr *ext, void *ud)
{
    (void)pm;
    CU_ASSERT_PTR_EQUAL(ud, &F);
    CU_ASSERT_FATAL(F.nreports < MAX_REPORTS);
    report *r = &F.reports[F.nreports++];
    r->at = F.now;
    r->status = status;
    CU_ASSERT_EQUAL(status == MESH_OK, ext != NULL);
    if (ext)
        r->ext = *ext;
}

static mesh_addr addr(const char *text)
{
    mesh_addr a;
    CU_ASSERT_FATAL(mesh_addr_parse(&a, text) == MESH_OK);
    return a;
}

/* A started lifecycle with cfg (retry 30 s .. 240 s, answer timeout 60 s unless given). */
static mesh_portmap *started(mesh_portmap_cfg *cfg)
{
    memset(&F, 0, sizeof F);
    F.now = SEC(1000);
    mesh_portmap_cfg c = {.retry_min = SEC(30), .retry_max = SEC(240), .answer_timeout = SEC(60)};
    if (cfg)
        c = *cfg;
    mesh_portmap *pm = NULL;
    CU_ASSERT_FATAL(mesh_portmap_new(&pm, &ENV, &c, on_report, &F) == MESH_OK);
    mesh_addr bound = addr("0.0.0.0:7000");
    CU_ASSERT_FATAL(mesh_portmap_start(pm, &bound) == MESH_OK);
    return pm;
}

static int state_of(const mesh_portmap *pm)
{
    mesh_portmap_stats st;
    mesh_portmap_get_stats(pm, &st);
    return st.state;
}

/* ---- tests -------------------------------------------------------------------------------- */

/* The first request goes out at start; an answer maps; renewals come at exactly half the
 * lease granted, and one that keeps the address is not reported again. */
static void test_map_and_renew(void)
{
    mesh_portmap *pm = started(NULL);
    CU_ASSERT_EQUAL(F.nreqs, 1);
    CU_ASSERT_EQUAL(F.reqs[0].at, SEC(1000));
    CU_ASSERT_EQUAL(F.reqs[0].tcp, 1);
    CU_ASSERT_EQUAL(F.reqs[0].port, PORT);
    CU_ASSERT_EQUAL(F.reqs[0].lease, MESH_PORTMAP_DEFAULT_LEASE_S);
    CU_ASSERT_EQUAL(state_of(pm), MESH_PORTMAP_REQUESTING);
    CU_ASSERT_EQUAL(F.nreports, 0); /* nothing from inside start */

    run_until(SEC(1000) + MS(20));
    answer(MESH_OK, "11.250.42.1:7000", 3600);
    CU_ASSERT_EQUAL(F.nreports, 1);
    CU_ASSERT_EQUAL(F.reports[0].status, MESH_OK);
    mesh_addr want = addr("11.250.42.1:7000");
    CU_ASSERT(mesh_addr_equal(&F.reports[0].ext, &want));
    mesh_portmap_stats st;
    mesh_portmap_get_stats(pm, &st);
    CU_ASSERT_EQUAL(st.state, MESH_PORTMAP_MAPPED);
    CU_ASSERT(mesh_addr_equal(&st.external, &want));
    CU_ASSERT_EQUAL(st.lease_s, 3600);
    CU_ASSERT_EQUAL(st.expires_at, SEC(1000) + MS(20) + SEC(3600));
    CU_ASSERT_EQUAL(st.next_at, SEC(1000) + MS(20) + SEC(1800));

    run_until(SEC(1000) + MS(20) + SEC(1800) - 1);
    CU_ASSERT_EQUAL(F.nreqs, 1);
    run_until(SEC(1000) + MS(20) + SEC(1800));
    CU_ASSERT_EQUAL(F.nreqs, 2);
    CU_ASSERT_EQUAL(F.reqs[1].at, SEC(2800) + MS(20));
    CU_ASSERT_EQUAL(state_of(pm), MESH_PORTMAP_MAPPED); /* still held while renewing */
    run_until(SEC(2800) + MS(50));
    answer(MESH_OK, "11.250.42.1:7000", 3600);
    CU_ASSERT_EQUAL(F.nreports, 1); /* same address: not reported */
    mesh_portmap_get_stats(pm, &st);
    CU_ASSERT_EQUAL(st.renewals, 1);
    CU_ASSERT_EQUAL(st.mappings, 1);
    CU_ASSERT_EQUAL(st.requests, 2);
    CU_ASSERT_EQUAL(st.next_at, SEC(2800) + MS(50) + SEC(1800));
    run_until(SEC(2800) + MS(50) + SEC(1800));
    CU_ASSERT_EQUAL(F.nreqs, 3);
    mesh_portmap_free(pm);
    CU_ASSERT_EQUAL(F.releases, 1);
}

/* A shorter lease than asked is renewed at half of what was granted; a lease with no expiry
 * is re-requested at half the lease asked and never "expires". */
static void test_granted_lease(void)
{
    mesh_portmap *pm = started(NULL);
    answer(MESH_OK, "11.250.42.1:7000", 120);
    run_until(SEC(1059));
    CU_ASSERT_EQUAL(F.nreqs, 1);
    run_until(SEC(1060));
    CU_ASSERT_EQUAL(F.nreqs, 2);
    answer(MESH_OK, "11.250.42.1:7000", 0);
    mesh_portmap_stats st;
    mesh_portmap_get_stats(pm, &st);
    CU_ASSERT_EQUAL(st.expires_at, MESH_TIME_NEVER);
    CU_ASSERT_EQUAL(st.next_at, SEC(1060) + SEC(1800));
    run_until(SEC(1060) + SEC(1800));
    CU_ASSERT_EQUAL(F.nreqs, 3);
    CU_ASSERT_EQUAL(F.nreports, 1);
    /* a 1 s lease is not renewed sooner than MESH_PORTMAP_MIN_RENEW_MS */
    answer(MESH_OK, "11.250.42.1:7000", 1);
    mesh_portmap_get_stats(pm, &st);
    CU_ASSERT_EQUAL(st.next_at, F.now + MS(MESH_PORTMAP_MIN_RENEW_MS));
    mesh_portmap_free(pm);
}

/* Failures with no mapping are reported each time and retried after 30, 60, 120, 240, 240 s;
 * a success resets the backoff. */
static void test_backoff(void)
{
    mesh_portmap *pm = started(NULL);
    mesh_time t = SEC(1000);
    const mesh_time delays[] = {SEC(30), SEC(60), SEC(120), SEC(240), SEC(240)};
    const int errs[] = {MESH_ERR_UNSUPPORTED, MESH_ERR_REFUSED, MESH_ERR_UNREACHABLE,
                        MESH_ERR_PROTOCOL, MESH_ERR_EXISTS};
    for (size_t i = 0; i < 5; i++) {
        answer(errs[i], NULL, 0);
        CU_ASSERT_EQUAL(F.nreports, i + 1);
        CU_ASSERT_EQUAL(F.reports[i].status, errs[i]);
        CU_ASSERT_EQUAL(F.reports[i].at, t);
        CU_ASSERT_EQUAL(state_of(pm), MESH_PORTMAP_FAILED);
        run_until(t + delays[i] - 1);
        CU_ASSERT_EQUAL(F.nreqs, i + 1);
        t += delays[i];
        run_until(t);
        CU_ASSERT_EQUAL(F.nreqs, i + 2);
        CU_ASSERT_EQUAL(F.reqs[i + 1].at, t);
        CU_ASSERT_EQUAL(state_of(pm), MESH_PORTMAP_REQUESTING);
    }
    mesh_portmap_stats st;
    mesh_portmap_get_stats(pm, &st);
    CU_ASSERT_EQUAL(st.failures, 5);
    CU_ASSERT_EQUAL(st.last_error, MESH_ERR_EXISTS);
    answer(MESH_OK, "11.250.42.1:7001", 100);
    CU_ASSERT_EQUAL(F.nreports, 6);
    CU_ASSERT_EQUAL(F.reports[5].status, MESH_OK);
    /* renewal at +50 s fails: the next try is retry_min later, not 480 s */
    run_until(t + SEC(50));
    answer(MESH_ERR_REFUSED, NULL, 0);
    mesh_portmap_get_stats(pm, &st);
    CU_ASSERT_EQUAL(st.next_at, t + SEC(80));
    mesh_portmap_free(pm);
}

/* A renewal that fails keeps the mapping until the lease ends, retrying meanwhile; at the end
 * the owner hears of the loss (with the last error), and a later success maps again. */
static void test_renewal_failure_and_loss(void)
{
    mesh_portmap *pm = started(NULL);
    answer(MESH_OK, "11.250.42.1:7000", 100);
    run_until(SEC(1050));
    CU_ASSERT_EQUAL(F.nreqs, 2);
    answer(MESH_ERR_TIMEOUT, NULL, 0);
    CU_ASSERT_EQUAL(F.nreports, 1); /* still held: no report */
    CU_ASSERT_EQUAL(state_of(pm), MESH_PORTMAP_MAPPED);
    run_until(SEC(1080));
    CU_ASSERT_EQUAL(F.nreqs, 3);
    answer(MESH_ERR_REFUSED, NULL, 0);
    run_until(SEC(1100) - 1);
    CU_ASSERT_EQUAL(state_of(pm), MESH_PORTMAP_MAPPED);
    run_until(SEC(1100));
    CU_ASSERT_EQUAL(F.nreports, 2);
    CU_ASSERT_EQUAL(F.reports[1].status, MESH_ERR_REFUSED);
    CU_ASSERT_EQUAL(F.reports[1].at, SEC(1100));
    mesh_portmap_stats st;
    mesh_portmap_get_stats(pm, &st);
    CU_ASSERT_EQUAL(st.state, MESH_PORTMAP_FAILED);
    CU_ASSERT_EQUAL(st.external.family, MESH_AF_NONE);
    CU_ASSERT_EQUAL(st.losses, 1);
    CU_ASSERT_EQUAL(st.next_at, SEC(1140)); /* the retry scheduled at 1080 + 60 s stands */
    run_until(SEC(1140));
    CU_ASSERT_EQUAL(F.nreqs, 4);
    answer(MESH_OK, "11.250.42.1:7000", 100);
    CU_ASSERT_EQUAL(F.nreports, 3);
    CU_ASSERT_EQUAL(F.reports[2].status, MESH_OK);
    mesh_portmap_free(pm);
}

/* A renewal that brings another address is reported with it. */
static void test_changed_address(void)
{
    mesh_portmap *pm = started(NULL);
    answer(MESH_OK, "11.250.42.1:7000", 3600);
    run_until(SEC(2800));
    answer(MESH_OK, "11.250.42.9:7000", 3600);
    CU_ASSERT_EQUAL(F.nreports, 2);
    mesh_addr want = addr("11.250.42.9:7000");
    CU_ASSERT(mesh_addr_equal(&F.reports[1].ext, &want));
    mesh_portmap_stats st;
    mesh_portmap_get_stats(pm, &st);
    CU_ASSERT_EQUAL(st.mappings, 2);
    CU_ASSERT_EQUAL(st.renewals, 0);
    mesh_portmap_free(pm);
}

/* An env that never answers: after answer_timeout the attempt fails with MESH_ERR_TIMEOUT; a
 * late answer before the next request is ignored; the next request goes out after backoff. */
static void test_answer_timeout(void)
{
    mesh_portmap *pm = started(NULL);
    run_until(SEC(1060) - 1);
    CU_ASSERT_EQUAL(F.nreports, 0);
    run_until(SEC(1060));
    CU_ASSERT_EQUAL(F.nreports, 1);
    CU_ASSERT_EQUAL(F.reports[0].status, MESH_ERR_TIMEOUT);
    answer(MESH_OK, "11.250.42.1:7000", 3600); /* late: ignored */
    CU_ASSERT_EQUAL(F.nreports, 1);
    CU_ASSERT_EQUAL(state_of(pm), MESH_PORTMAP_FAILED);
    run_until(SEC(1090));
    CU_ASSERT_EQUAL(F.nreqs, 2);
    answer(MESH_OK, "11.250.42.1:7000", 3600);
    CU_ASSERT_EQUAL(state_of(pm), MESH_PORTMAP_MAPPED);
    mesh_portmap_free(pm);
}

/* An immediate error of the env's request is handled like a failed answer, but reported from
 * the next timer turn, never from inside start. */
static void test_immediate_error(void)
{
    memset(&F, 0, sizeof F);
    F.now = SEC(5);
    F.request_rc = MESH_ERR_LIMIT;
    mesh_portmap *pm = NULL;
    CU_ASSERT_FATAL(mesh_portmap_new(&pm, &ENV, NULL, on_report, &F) == MESH_OK);
    mesh_addr bound = addr("10.0.1.2:7000");
    CU_ASSERT_EQUAL(mesh_portmap_start(pm, &bound), MESH_OK);
    CU_ASSERT_EQUAL(F.nreports, 0);
    run_until(SEC(5));
    CU_ASSERT_EQUAL(F.nreports, 1);
    CU_ASSERT_EQUAL(F.reports[0].status, MESH_ERR_LIMIT);
    mesh_portmap_stats st;
    mesh_portmap_get_stats(pm, &st);
    CU_ASSERT_EQUAL(st.next_at, SEC(5) + MS(MESH_PORTMAP_DEFAULT_RETRY_MIN_MS));
    F.request_rc = MESH_OK;
    run_until(st.next_at);
    CU_ASSERT_EQUAL(F.nreqs, 1);
    mesh_portmap_free(pm);
}

/* An OK answer with no usable address is a protocol failure, not a mapping. */
static void test_unusable_answer(void)
{
    mesh_portmap *pm = started(NULL);
    answer(MESH_OK, NULL, 3600);
    CU_ASSERT_EQUAL(F.nreports, 1);
    CU_ASSERT_EQUAL(F.reports[0].status, MESH_ERR_PROTOCOL);
    run_until(SEC(1030));
    answer(MESH_OK, "11.250.42.1:0", 3600);
    CU_ASSERT_EQUAL(F.reports[1].status, MESH_ERR_PROTOCOL);
    run_until(SEC(1090));
    answer(MESH_OK, "[2001:db8::1]:7000", 3600);
    CU_ASSERT_EQUAL(F.reports[2].status, MESH_ERR_PROTOCOL);
    CU_ASSERT_EQUAL(state_of(pm), MESH_PORTMAP_FAILED);
    mesh_portmap_free(pm);
}

/* stop releases once (also with a request in flight), stops every timer, makes no report;
 * the lifecycle can start again. free releases a mapping stop did not. */
static void test_stop_and_free(void)
{
    mesh_portmap *pm = started(NULL);
    answer(MESH_OK, "11.250.42.1:7000", 3600);
    run_until(SEC(1010));
    mesh_portmap_stop(pm);
    CU_ASSERT_EQUAL(F.releases, 1);
    CU_ASSERT_EQUAL(F.released_at, SEC(1010));
    CU_ASSERT_EQUAL(armed_timers(), 0);
    CU_ASSERT_EQUAL(state_of(pm), MESH_PORTMAP_OFF);
    mesh_portmap_stop(pm); /* again: nothing */
    CU_ASSERT_EQUAL(F.releases, 1);
    run_until(SEC(100000));
    CU_ASSERT_EQUAL(F.nreqs, 1);
    CU_ASSERT_EQUAL(F.nreports, 1);

    mesh_addr bound = addr("0.0.0.0:7000");
    CU_ASSERT_EQUAL(mesh_portmap_start(pm, &bound), MESH_OK);
    CU_ASSERT_EQUAL(F.nreqs, 2);
    CU_ASSERT_EQUAL(mesh_portmap_start(pm, &bound), MESH_ERR_STATE);
    mesh_portmap_stop(pm); /* in flight: released (cancelled) */
    CU_ASSERT_EQUAL(F.releases, 2);
    CU_ASSERT_EQUAL(F.in_flight, 0);
    CU_ASSERT_EQUAL(armed_timers(), 0);

    CU_ASSERT_EQUAL(mesh_portmap_start(pm, &bound), MESH_OK);
    answer(MESH_OK, "11.250.42.1:7000", 3600);
    mesh_portmap_free(pm);
    CU_ASSERT_EQUAL(F.releases, 3);
    mesh_portmap_free(NULL);

    /* never started, or stopped: free releases nothing */
    memset(&F, 0, sizeof F);
    CU_ASSERT_FATAL(mesh_portmap_new(&pm, &ENV, NULL, on_report, &F) == MESH_OK);
    mesh_portmap_free(pm);
    CU_ASSERT_EQUAL(F.releases, 0);
}

/* What start and new refuse. */
static void test_refusals(void)
{
    memset(&F, 0, sizeof F);
    mesh_portmap *pm = NULL;
    mesh_portmap_cfg bad = {.lease_s = MESH_PORTMAP_MAX_LEASE_S + 1};
    CU_ASSERT_EQUAL(mesh_portmap_new(&pm, &ENV, &bad, on_report, &F), MESH_ERR_INVAL);
    bad = (mesh_portmap_cfg){.retry_min = SEC(10), .retry_max = SEC(5)};
    CU_ASSERT_EQUAL(mesh_portmap_new(&pm, &ENV, &bad, on_report, &F), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_portmap_new(&pm, &ENV, NULL, NULL, &F), MESH_ERR_INVAL);
    CU_ASSERT_PTR_NULL(pm);

    CU_ASSERT_FATAL(mesh_portmap_new(&pm, &ENV, NULL, on_report, &F) == MESH_OK);
    const char *unmappable[] = {"127.0.0.1:7000", "[::]:7000", "[2001:db8::5]:7000"};
    for (size_t i = 0; i < 3; i++) {
        mesh_addr a = addr(unmappable[i]);
        CU_ASSERT_EQUAL(mesh_portmap_start(pm, &a), MESH_ERR_UNSUPPORTED);
    }
    mesh_addr zero = addr("10.0.0.1:0");
    CU_ASSERT_EQUAL(mesh_portmap_start(pm, &zero), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(F.nreqs, 0);
    CU_ASSERT_EQUAL(state_of(pm), MESH_PORTMAP_OFF);
    mesh_portmap_free(pm);

    /* an env without the service */
    mesh_env_ops none = F_OPS;
    none.portmap = NULL;
    mesh_env env = {&none, &F};
    CU_ASSERT_FATAL(mesh_portmap_new(&pm, &env, NULL, on_report, &F) == MESH_OK);
    mesh_addr a = addr("10.0.1.2:7000");
    CU_ASSERT_EQUAL(mesh_portmap_start(pm, &a), MESH_ERR_UNSUPPORTED);
    mesh_portmap_free(pm);
    CU_ASSERT_EQUAL(F.releases, 0);
}

/* The owner may stop the lifecycle from inside its report. */
static void stop_in_report(mesh_portmap *pm, int status, const mesh_addr *ext, void *ud)
{
    on_report(pm, status, ext, ud);
    mesh_portmap_stop(pm);
}

static void test_stop_inside_report(void)
{
    memset(&F, 0, sizeof F);
    mesh_portmap *pm = NULL;
    CU_ASSERT_FATAL(mesh_portmap_new(&pm, &ENV, NULL, stop_in_report, &F) == MESH_OK);
    mesh_addr a = addr("10.0.1.2:7000");
    CU_ASSERT_FATAL(mesh_portmap_start(pm, &a) == MESH_OK);
    answer(MESH_ERR_REFUSED, NULL, 0);
    CU_ASSERT_EQUAL(F.nreports, 1);
    CU_ASSERT_EQUAL(state_of(pm), MESH_PORTMAP_OFF);
    CU_ASSERT_EQUAL(armed_timers(), 0);
    run_until(SEC(100000));
    CU_ASSERT_EQUAL(F.nreqs, 1);
    mesh_portmap_free(pm);
}

static CU_TestInfo portmap_tests[] = {
    {"map at start, renew at half the lease", test_map_and_renew},
    {"granted lease shorter, none, tiny", test_granted_lease},
    {"failures back off 30..240 s; success resets", test_backoff},
    {"failed renewals keep the mapping until the lease ends", test_renewal_failure_and_loss},
    {"a changed external address is reported", test_changed_address},
    {"no answer: MESH_ERR_TIMEOUT, late answer ignored", test_answer_timeout},
    {"immediate env error reported later", test_immediate_error},
    {"OK without a usable address is MESH_ERR_PROTOCOL", test_unusable_answer},
    {"stop and free release once; restart", test_stop_and_free},
    {"refused starts and configurations", test_refusals},
    {"stop from inside the report", test_stop_inside_report},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"portmap", NULL, NULL, NULL, NULL, portmap_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
