/* test_mdns.c — the simulator's mDNS (sim/mdns.h) through the sim driver's env ops->mdns.
 *
 * Topology: LAN "one" with hosts 10.1.0.1..10 (h0..h9), LAN "two" with 10.2.0.1..3
 * (h10..h12); every access link has LAN_LAT one way, so a multicast reaches the other hosts
 * of its LAN 2 × LAN_LAT after it is sent. The core (10 ms) joins the LANs; mDNS must not
 * cross it.
 *
 * Every env call goes through ENV(), which marks "inside an env call"; every callback
 * asserts the mark is clear (env.h rule 1). */
#include "mesh_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/driver.h"

#define MS MESH_NS_PER_MS
#define SEC MESH_NS_PER_S
#define LAN_LAT (100 * MESH_NS_PER_US)
#define TYPE "_meshara._tcp"

enum { N_ONE = 10, N_TWO = 3, NH = N_ONE + N_TWO, MAX_SEEN = 32, BASE_PORT = 4000 };

static int g_in_env;
#define ENV(expr) (g_in_env++, (expr), g_in_env--)

/* What one host's browser saw of one name. */
typedef struct seen {
    char name[64];
    int found, removed; /* callback counts */
    mesh_time found_at, removed_at;
    mesh_addr addr;
    char txt[4][80];
    int ntxt;
} seen;

typedef struct host {
    struct world *x;
    int idx;
    sim_driver *d;
    sim_host *h;
    mesh_env env;
    seen seen[MAX_SEEN];
    int nseen;
    int calls;      /* callbacks received */
    int stop_in_cb; /* call stop() from inside the next callback */
} host;

typedef struct world {
    sim_world *w;
    host h[NH];
} world;

static uint32_t ip_of(int i)
{
    return i < N_ONE ? SIM_IP4(10, 1, 0, i + 1) : SIM_IP4(10, 2, 0, i - N_ONE + 1);
}

static seen *seen_get(host *h, const char *name)
{
    for (int i = 0; i < h->nseen; i++)
        if (strcmp(h->seen[i].name, name) == 0)
            return &h->seen[i];
    CU_ASSERT_FATAL(h->nseen < MAX_SEEN);
    seen *s = &h->seen[h->nseen++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    return s;
}

static seen *seen_find(host *h, const char *name)
{
    for (int i = 0; i < h->nseen; i++)
        if (strcmp(h->seen[i].name, name) == 0)
            return &h->seen[i];
    return NULL;
}

static void on_mdns(const mesh_mdns_found *f, int removed, void *ud)
{
    host *h = ud;
    CU_ASSERT_EQUAL(g_in_env, 0);
    h->calls++;
    mesh_time now = mesh_env_now(&h->env);
    seen *s = seen_get(h, f->name);
    if (removed) {
        s->removed++;
        s->removed_at = now;
    } else {
        s->found++;
        s->found_at = now;
        s->addr = *f->addr;
        s->ntxt = 0;
        for (const char *const *t = f->txt; *t && s->ntxt < 4; t++)
            snprintf(s->txt[s->ntxt++], sizeof s->txt[0], "%s", *t);
    }
    if (h->stop_in_cb) {
        h->stop_in_cb = 0;
        ENV(h->env.ops->mdns->stop(h->env.obj));
    }
}

static void world_init(world *x, uint64_t seed)
{
    memset(x, 0, sizeof *x);
    g_in_env = 0;
    CU_ASSERT_EQUAL_FATAL(sim_world_new(&x->w, seed, NULL), MESH_OK);
    sim_sched_set_event_cap(sim_world_sched(x->w), 20000000);
    sim_net *net = sim_world_net(x->w);
    sim_net_set_core(net, &(sim_link_cfg){.latency = 10 * MS}, NULL, NULL);
    sim_lan *one, *two;
    CU_ASSERT_EQUAL_FATAL(sim_net_add_lan(net, &(sim_lan_cfg){.name = "one"}, &one), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(sim_net_add_lan(net, &(sim_lan_cfg){.name = "two"}, &two), MESH_OK);
    sim_link_cfg lan = {.latency = LAN_LAT}; /* no serialisation: exact arrival times */
    for (int i = 0; i < NH; i++) {
        char name[16];
        snprintf(name, sizeof name, "h%d", i);
        sim_host_cfg hc = {name, ip_of(i), i < N_ONE ? one : two, lan, lan};
        host *h = &x->h[i];
        h->x = x;
        h->idx = i;
        CU_ASSERT_EQUAL_FATAL(sim_net_add_host(net, &hc, &h->h), MESH_OK);
        CU_ASSERT_EQUAL_FATAL(sim_driver_new(&h->d, x->w, h->h), MESH_OK);
        h->env = sim_driver_env(h->d);
        CU_ASSERT_PTR_NULL(h->env.ops->mdns);
        CU_ASSERT_EQUAL_FATAL(sim_driver_enable_mdns(h->d), MESH_OK);
        CU_ASSERT_PTR_NOT_NULL_FATAL(h->env.ops->mdns); /* the env seen before enabling */
    }
}

static void world_free(world *x)
{
    for (int i = 0; i < NH; i++)
        sim_driver_free(x->h[i].d);
    sim_world_free(x->w);
}

static void run_until(world *x, mesh_time t)
{
    CU_ASSERT_EQUAL(sim_sched_run_until(sim_world_sched(x->w), t), MESH_OK);
}

static void publish(host *h, const char *name, uint16_t port)
{
    char pk[80];
    snprintf(pk, sizeof pk, "pk=%064x", (unsigned)port);
    const char *txt[] = {pk, "v=1", NULL};
    int rc;
    ENV(rc = h->env.ops->mdns->publish(h->env.obj, name, TYPE, port, txt));
    CU_ASSERT_EQUAL(rc, MESH_OK);
}

static void browse(host *h)
{
    int rc;
    ENV(rc = h->env.ops->mdns->browse(h->env.obj, TYPE, on_mdns, h));
    CU_ASSERT_EQUAL(rc, MESH_OK);
}

static const char *name_of(int i)
{
    static char names[NH][16];
    snprintf(names[i], sizeof names[i], "meshara-%02d", i);
    return names[i];
}

/* Every host publishes meshara-<i> (port 4000+i) and browses, all at t = 0. */
static void all_publish_and_browse(world *x)
{
    for (int i = 0; i < NH; i++) {
        publish(&x->h[i], name_of(i), (uint16_t)(BASE_PORT + i));
        browse(&x->h[i]);
    }
}

static mesh_time announced_at(world *x, int i)
{
    const char *name;
    mesh_time t;
    CU_ASSERT_EQUAL(sim_mdns_publication(sim_driver_mdns(x->h[i].d), 0, &name, &t), MESH_OK);
    return t;
}

static int same_lan(int a, int b)
{
    return (a < N_ONE) == (b < N_ONE);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_ten_hosts_find_each_other_within_1s(void)
{
    world x;
    world_init(&x, 1);
    all_publish_and_browse(&x);
    run_until(&x, 1 * SEC);
    mesh_time latest = 0, earliest = MESH_TIME_NEVER;
    for (int i = 0; i < NH; i++) {
        host *h = &x.h[i];
        for (int j = 0; j < NH; j++) {
            seen *s = seen_find(h, name_of(j));
            if (!same_lan(i, j)) {
                CU_ASSERT_PTR_NULL(s); /* mDNS never crosses the core */
                continue;
            }
            CU_ASSERT_PTR_NOT_NULL_FATAL(s);
            CU_ASSERT_EQUAL(s->found, 1);
            CU_ASSERT_EQUAL(s->removed, 0);
            /* the announcement, one LAN crossing later: probing took 750–1000 ms */
            mesh_time ann = announced_at(&x, j);
            CU_ASSERT(ann >= 750 * MS && ann < 1000 * MS);
            CU_ASSERT_EQUAL(s->found_at, ann + 2 * LAN_LAT);
            CU_ASSERT(s->found_at < 1 * SEC);
            latest = s->found_at > latest ? s->found_at : latest;
            earliest = s->found_at < earliest ? s->found_at : earliest;
            mesh_addr want = mesh_addr_v4(ip_of(j), (uint16_t)(BASE_PORT + j));
            CU_ASSERT_TRUE(mesh_addr_equal(&s->addr, &want));
            char pk[80];
            snprintf(pk, sizeof pk, "pk=%064x", (unsigned)(BASE_PORT + j));
            CU_ASSERT_EQUAL(s->ntxt, 2);
            CU_ASSERT_STRING_EQUAL(s->txt[0], pk);
            CU_ASSERT_STRING_EQUAL(s->txt[1], "v=1");
        }
        CU_ASSERT_EQUAL(h->nseen, i < N_ONE ? N_ONE : N_TWO); /* the other 9, and itself */
    }
    printf("\n    10 hosts: every peer found between %.3f and %.3f ms (virtual) ",
           (double)earliest / MS, (double)latest / MS);
    /* The second announcement and the answers to later queries change nothing: no repeats. */
    run_until(&x, 30 * SEC);
    for (int i = 0; i < NH; i++)
        for (int j = 0; j < x.h[i].nseen; j++) {
            CU_ASSERT_EQUAL(x.h[i].seen[j].found, 1);
            CU_ASSERT_EQUAL(x.h[i].seen[j].removed, 0);
        }
    /* Query rounds at 20–120 ms, then +1, +2, +4, +8 s: 5 per browser by 30 s, sent or
     * skipped because the same question had just been heard (RFC 6762 §7.3). */
    uint64_t asked = 0, skipped = 0, answered = 0, held = 0;
    for (int i = 0; i < N_ONE; i++) {
        sim_mdns_stats s = sim_mdns_get_stats(sim_driver_mdns(x.h[i].d));
        asked += s.queries;
        skipped += s.queries_suppressed;
        answered += s.answers;
        held += s.answers_suppressed;
    }
    printf("\n    by 30 s: %llu queries sent, %llu suppressed; %llu answers, %llu held back ",
           (unsigned long long)asked, (unsigned long long)skipped, (unsigned long long)answered,
           (unsigned long long)held);
    CU_ASSERT_EQUAL(asked + skipped, 5 * N_ONE);
    CU_ASSERT(skipped > 0);
    CU_ASSERT(held > 0);
    sim_mdns_stats st = sim_mdns_get_stats(sim_driver_mdns(x.h[0].d));
    CU_ASSERT_EQUAL(st.probes, SIM_MDNS_PROBES);
    CU_ASSERT_EQUAL(st.announces, SIM_MDNS_ANNOUNCES);
    CU_ASSERT_EQUAL(st.conflicts, 0);
    CU_ASSERT_EQUAL(st.malformed, 0);
    world_free(&x);
}

static void test_removal_after_stop(void)
{
    world x;
    world_init(&x, 2);
    all_publish_and_browse(&x);
    run_until(&x, 3 * SEC);
    host *gone = &x.h[3];
    int calls_before = gone->calls;
    ENV(gone->env.ops->mdns->stop(gone->env.obj));
    CU_ASSERT_EQUAL(sim_mdns_get_stats(sim_driver_mdns(gone->d)).goodbyes, 1);
    run_until(&x, 10 * SEC);
    for (int i = 0; i < N_ONE; i++) {
        if (i == 3)
            continue;
        seen *s = seen_find(&x.h[i], name_of(3));
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        CU_ASSERT_EQUAL(s->removed, 1);
        /* goodbye heard one LAN crossing later, dropped SIM_MDNS_GOODBYE_MS after that */
        CU_ASSERT_EQUAL(s->removed_at, 3 * SEC + 2 * LAN_LAT + SIM_MDNS_GOODBYE_MS * MS);
        for (int j = 0; j < N_ONE; j++)
            if (j != 3)
                CU_ASSERT_EQUAL(seen_find(&x.h[i], name_of(j))->removed, 0);
    }
    CU_ASSERT_EQUAL(gone->calls, calls_before); /* its browser went with stop() */
    /* It can publish again under the same name: the others find it again. */
    publish(gone, name_of(3), 4003);
    run_until(&x, 12 * SEC);
    CU_ASSERT_EQUAL(seen_find(&x.h[0], name_of(3))->found, 2);
    world_free(&x);
}

static void test_ttl_removal_and_refresh(void)
{
    world x;
    world_init(&x, 3);
    all_publish_and_browse(&x);
    run_until(&x, 3 * SEC);
    sim_host_set_up(x.h[5].h, 0); /* vanishes: no goodbye */
    run_until(&x, 300 * SEC);
    for (int i = 0; i < N_ONE; i++) {
        if (i == 5)
            continue;
        seen *s = seen_find(&x.h[i], name_of(5));
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        CU_ASSERT_EQUAL(s->removed, 1);
        /* TTL after the last answer it heard, which came before the cut at 3 s */
        mesh_time ttl = (mesh_time)SIM_MDNS_TTL_S * SEC;
        CU_ASSERT(s->removed_at > ttl + 1 * SEC && s->removed_at <= ttl + 3 * SEC);
        /* the live ones are kept fresh by queries at 80 % / 90 % of their TTL */
        for (int j = 0; j < N_ONE; j++)
            if (j != 5 && j != i)
                CU_ASSERT_EQUAL(seen_find(&x.h[i], name_of(j))->removed, 0);
    }
    world_free(&x);
}

static void test_name_conflicts(void)
{
    world x;
    world_init(&x, 4);
    /* h1 and h2 probe "dup" at once: the lower address (h1, 10.1.0.2) takes "dup #2". */
    publish(&x.h[1], "dup", 5001);
    publish(&x.h[2], "dup", 5002);
    browse(&x.h[0]);
    run_until(&x, 3 * SEC);
    const char *n1, *n2;
    mesh_time t;
    CU_ASSERT_EQUAL(sim_mdns_publication(sim_driver_mdns(x.h[1].d), 0, &n1, &t), MESH_OK);
    CU_ASSERT_STRING_EQUAL(n1, "dup #2");
    CU_ASSERT(t != MESH_TIME_NEVER);
    CU_ASSERT_EQUAL(sim_mdns_publication(sim_driver_mdns(x.h[2].d), 0, &n2, NULL), MESH_OK);
    CU_ASSERT_STRING_EQUAL(n2, "dup");
    CU_ASSERT_EQUAL(sim_mdns_get_stats(sim_driver_mdns(x.h[1].d)).conflicts, 1);
    CU_ASSERT_EQUAL(sim_mdns_get_stats(sim_driver_mdns(x.h[2].d)).conflicts, 0);
    seen *a = seen_find(&x.h[0], "dup"), *b = seen_find(&x.h[0], "dup #2");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(sim_addr_ip4(&a->addr), ip_of(2));
    CU_ASSERT_EQUAL(b->addr.port, 5001);
    CU_ASSERT_EQUAL(a->found, 1);
    /* An announced name is defended: h3 comes later with "dup" (and a higher address than
     * h2) and must move on, past "dup #2" too, to "dup #3". */
    publish(&x.h[3], "dup", 5003);
    run_until(&x, 8 * SEC);
    CU_ASSERT_EQUAL(sim_mdns_publication(sim_driver_mdns(x.h[3].d), 0, &n1, NULL), MESH_OK);
    CU_ASSERT_STRING_EQUAL(n1, "dup #3");
    CU_ASSERT_EQUAL(sim_mdns_get_stats(sim_driver_mdns(x.h[3].d)).conflicts, 2);
    CU_ASSERT_EQUAL(a->found, 1); /* h0 never saw "dup" move */
    CU_ASSERT_EQUAL(sim_addr_ip4(&a->addr), ip_of(2));
    CU_ASSERT_PTR_NOT_NULL(seen_find(&x.h[0], "dup #3"));
    world_free(&x);
}

static void test_late_browser_gets_answers(void)
{
    world x;
    world_init(&x, 5);
    for (int i = 1; i < N_ONE; i++)
        publish(&x.h[i], name_of(i), (uint16_t)(BASE_PORT + i));
    run_until(&x, 10 * SEC);
    browse(&x.h[0]);
    run_until(&x, 11 * SEC);
    for (int j = 1; j < N_ONE; j++) {
        seen *s = seen_find(&x.h[0], name_of(j));
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        /* a query after 20–120 ms, answers 20–120 ms after it arrives */
        CU_ASSERT(s->found_at >= 10 * SEC + 40 * MS + 2 * LAN_LAT);
        CU_ASSERT(s->found_at < 10 * SEC + 240 * MS + 4 * LAN_LAT);
    }
    world_free(&x);
}

static void run_once(uint64_t seed, mesh_time *found, uint64_t *fp)
{
    world x;
    world_init(&x, seed);
    all_publish_and_browse(&x);
    run_until(&x, 5 * SEC);
    for (int i = 0; i < N_ONE; i++)
        for (int j = 0; j < N_ONE; j++)
            found[i * N_ONE + j] = seen_find(&x.h[i], name_of(j))->found_at;
    *fp = sim_sched_fingerprint(sim_world_sched(x.w));
    world_free(&x);
}

static void test_deterministic_per_seed(void)
{
    mesh_time a[N_ONE * N_ONE], b[N_ONE * N_ONE], c[N_ONE * N_ONE];
    uint64_t fa, fb, fc;
    run_once(7, a, &fa);
    run_once(7, b, &fb);
    run_once(8, c, &fc);
    CU_ASSERT_EQUAL(memcmp(a, b, sizeof a), 0);
    CU_ASSERT_EQUAL(fa, fb);
    CU_ASSERT_NOT_EQUAL(memcmp(a, c, sizeof a), 0);
    CU_ASSERT_NOT_EQUAL(fa, fc);
}

static void test_stop_inside_callback(void)
{
    world x;
    world_init(&x, 9);
    all_publish_and_browse(&x);
    run_until(&x, 2 * SEC);
    int calls = x.h[0].calls;
    CU_ASSERT_EQUAL(calls, N_ONE);
    x.h[0].stop_in_cb = 1; /* h0 stops inside its next callback: h5's removal */
    ENV(x.h[5].env.ops->mdns->stop(x.h[5].env.obj));
    run_until(&x, 6 * SEC);
    CU_ASSERT_EQUAL(x.h[0].calls, calls + 1);
    CU_ASSERT_EQUAL(seen_find(&x.h[0], name_of(5))->removed, 1);
    /* stop() withdrew h0's own service too: a goodbye went out, the others dropped it */
    CU_ASSERT_EQUAL(sim_mdns_get_stats(sim_driver_mdns(x.h[0].d)).goodbyes, 1);
    CU_ASSERT_EQUAL(seen_find(&x.h[1], name_of(0))->removed, 1);
    /* h5 comes back: h1 sees it, h0 (stopped) is not called */
    publish(&x.h[5], name_of(5), BASE_PORT + 5);
    run_until(&x, 8 * SEC);
    CU_ASSERT_EQUAL(seen_find(&x.h[1], name_of(5))->found, 2);
    CU_ASSERT_EQUAL(x.h[0].calls, calls + 1);
    world_free(&x);
}

static void test_arguments_and_limits(void)
{
    world x;
    world_init(&x, 10);
    host *h = &x.h[0];
    const mesh_mdns_ops *md = h->env.ops->mdns;
    void *o = h->env.obj;
    const char *txt[] = {"a=1", NULL};
    CU_ASSERT_EQUAL(sim_driver_enable_mdns(h->d), MESH_ERR_EXISTS);
    CU_ASSERT_EQUAL(md->publish(o, "x", "meshara", 1, txt), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(md->publish(o, "x", "_meshara._sctp", 1, txt), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(md->publish(o, "x", TYPE, 0, txt), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(md->publish(o, "", TYPE, 1, txt), MESH_ERR_INVAL);
    char longname[80];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    CU_ASSERT_EQUAL(md->publish(o, longname, TYPE, 1, txt), MESH_ERR_INVAL);
    const char *empty_txt[] = {"", NULL};
    CU_ASSERT_EQUAL(md->publish(o, "x", TYPE, 1, empty_txt), MESH_ERR_INVAL);
    char big[300];
    memset(big, 'b', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    const char *big_txt[] = {big, NULL};
    CU_ASSERT_EQUAL(md->publish(o, "x", TYPE, 1, big_txt), MESH_ERR_LIMIT);
    CU_ASSERT_EQUAL(md->publish(o, "x", TYPE, 1, NULL), MESH_OK); /* no TXT is fine */
    CU_ASSERT_EQUAL(md->publish(o, "x", TYPE, 2, txt), MESH_ERR_EXISTS);
    CU_ASSERT_EQUAL(md->publish(o, "x", "_other._udp", 2, txt), MESH_OK);
    for (int i = 2; i < SIM_MDNS_MAX_PUBS; i++) {
        char n[16];
        snprintf(n, sizeof n, "p%d", i);
        CU_ASSERT_EQUAL(md->publish(o, n, TYPE, 1, txt), MESH_OK);
    }
    CU_ASSERT_EQUAL(md->publish(o, "one-too-many", TYPE, 1, txt), MESH_ERR_LIMIT);
    CU_ASSERT_EQUAL(md->browse(o, TYPE, NULL, NULL), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(md->browse(o, "bad", on_mdns, h), MESH_ERR_INVAL);
    for (int i = 0; i < SIM_MDNS_MAX_BROWSERS; i++)
        CU_ASSERT_EQUAL(md->browse(o, TYPE, on_mdns, h), MESH_OK);
    CU_ASSERT_EQUAL(md->browse(o, TYPE, on_mdns, h), MESH_ERR_LIMIT);
    md->stop(o);
    CU_ASSERT_EQUAL(md->publish(o, "x", TYPE, 1, txt), MESH_OK); /* stop() freed the slots */
    CU_ASSERT_EQUAL(md->browse(o, TYPE, on_mdns, h), MESH_OK);
    world_free(&x);
}

static void test_message_codec(void)
{
    sim_mdns_msg m = {.kind = SIM_MDNS_ANNOUNCE,
                      .name = {"svc", 3},
                      .type = {TYPE, strlen(TYPE)},
                      .port = 4242,
                      .ttl_s = 120,
                      .ntxt = 2,
                      .txt = {{"a=1", 3}, {"bb=22", 5}}};
    uint8_t buf[SIM_MDNS_MSG_MAX];
    size_t len;
    CU_ASSERT_EQUAL_FATAL(sim_mdns_msg_create(&m, buf, sizeof buf, &len), MESH_OK);
    sim_mdns_msg d;
    CU_ASSERT_EQUAL_FATAL(sim_mdns_msg_consume(&d, buf, len), MESH_OK);
    CU_ASSERT_EQUAL(d.kind, SIM_MDNS_ANNOUNCE);
    CU_ASSERT_EQUAL(d.port, 4242);
    CU_ASSERT_EQUAL(d.ttl_s, 120);
    CU_ASSERT_EQUAL(d.ntxt, 2);
    CU_ASSERT(d.txt[1].len == 5 && memcmp(d.txt[1].p, "bb=22", 5) == 0);
    CU_ASSERT(d.name.len == 3 && memcmp(d.name.p, "svc", 3) == 0);
    for (size_t cut = 0; cut < len; cut++)
        CU_ASSERT_EQUAL(sim_mdns_msg_consume(&d, buf, cut), MESH_ERR_TRUNCATED);
    buf[len] = 0;
    CU_ASSERT_EQUAL(sim_mdns_msg_consume(&d, buf, len + 1), MESH_ERR_MALFORMED);
    buf[0] = 2;
    CU_ASSERT_EQUAL(sim_mdns_msg_consume(&d, buf, len), MESH_ERR_VERSION);
    buf[0] = SIM_MDNS_VERSION;
    buf[1] = 9;
    CU_ASSERT_EQUAL(sim_mdns_msg_consume(&d, buf, len), MESH_ERR_MALFORMED);
    buf[1] = SIM_MDNS_ANNOUNCE;
    buf[3] = '\0'; /* a NUL inside the name */
    CU_ASSERT_EQUAL(sim_mdns_msg_consume(&d, buf, len), MESH_ERR_MALFORMED);
    CU_ASSERT_EQUAL(sim_mdns_msg_create(&m, buf, 10, &len), MESH_ERR_TOO_BIG);
    m.name.len = 0;
    CU_ASSERT_EQUAL(sim_mdns_msg_create(&m, buf, sizeof buf, &len), MESH_ERR_INVAL);
    sim_mdns_msg q = {.kind = SIM_MDNS_QUERY, .type = {TYPE, strlen(TYPE)}};
    CU_ASSERT_EQUAL(sim_mdns_msg_create(&q, buf, sizeof buf, &len), MESH_OK);
    CU_ASSERT_EQUAL(len, 2 + 1 + strlen(TYPE));
    CU_ASSERT_EQUAL(sim_mdns_msg_consume(&d, buf, len), MESH_OK);
    CU_ASSERT_EQUAL(d.kind, SIM_MDNS_QUERY);

    /* Garbage on port 5353 is counted and ignored; the service keeps working. */
    world x;
    world_init(&x, 11);
    publish(&x.h[1], "ok", 1);
    browse(&x.h[0]);
    sim_udp_sock *s;
    CU_ASSERT_EQUAL_FATAL(sim_udp_bind(sim_world_udp(x.w), x.h[2].h, 0, NULL, NULL, &s), MESH_OK);
    mesh_addr group = mesh_addr_v4(SIM_MDNS_GROUP, SIM_MDNS_PORT);
    CU_ASSERT_EQUAL(sim_udp_send(s, &group, "\x01\x03\x05hello", 8), MESH_OK);
    run_until(&x, 2 * SEC);
    CU_ASSERT_EQUAL(sim_mdns_get_stats(sim_driver_mdns(x.h[0].d)).malformed, 1);
    CU_ASSERT_PTR_NOT_NULL(seen_find(&x.h[0], "ok"));
    sim_udp_close(s);
    world_free(&x);
}

int main(void)
{
    static CU_TestInfo tests[] = {
        {"10 hosts on a LAN find each other within 1 s", test_ten_hosts_find_each_other_within_1s},
        {"stop: goodbye, removal 1 s later, publish again", test_removal_after_stop},
        {"TTL: a vanished host expires, live ones refresh", test_ttl_removal_and_refresh},
        {"name conflicts: simultaneous probes, defended name", test_name_conflicts},
        {"a late browser is answered in 40-240 ms", test_late_browser_gets_answers},
        {"same seed same times, other seed other times", test_deterministic_per_seed},
        {"stop() inside a callback: no further callback", test_stop_inside_callback},
        {"arguments and limits", test_arguments_and_limits},
        {"message codec and garbage on 5353", test_message_codec},
        CU_TEST_INFO_NULL,
    };
    static CU_SuiteInfo suites[] = {
        {"sim_mdns", NULL, NULL, NULL, NULL, tests},
        CU_SUITE_INFO_NULL,
    };
    return mesh_test_main(suites);
}
