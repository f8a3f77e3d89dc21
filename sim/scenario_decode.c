/* scenario_decode.c — decoding the whole scenario tree (see scenario_decode.h). */
#include "sim/scenario_decode.h"

#include <stdio.h>
#include <string.h>

#include "meshara/error.h"
#include "sim/scenario_network.h"

/* ---- groups ------------------------------------------------------------------------------- */

static int decode_join(scn_dec *d, const scn_node *n, const char *path, sim_scn_group *g)
{
    static const char *const KEYS[] = {"at", "spread", NULL};
    char p[SCN_PATH_MAX];
    const scn_node *v;
    if (n->kind == SCN_SCALAR) {
        SCN_TRY(scn_get_duration(d, n, path, &g->join_from));
        g->join_to = g->join_from;
        return MESH_OK;
    }
    if (n->kind != SCN_MAP)
        return scn_wrong_type(d, n, path, "a time or a mapping",
                              "write 0s, {at: 5s} or {spread: [0s, 60s]}");
    SCN_TRY(scn_check_keys(d, n, path, KEYS));
    const scn_node *at = scn_get(n, "at"), *spread = scn_get(n, "spread");
    if (at && spread)
        return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc,
                             "use `at:` for one time, or `spread: [t0, t1]`",
                             "%s has both at and spread", path);
    if (at) {
        scn_subpath(p, path, "at");
        SCN_TRY(scn_get_duration(d, at, p, &g->join_from));
        g->join_to = g->join_from;
        return MESH_OK;
    }
    SCN_TRY(scn_need(d, n, path, "spread", &v));
    const scn_node *a, *b;
    scn_subpath(p, path, "spread");
    SCN_TRY(scn_get_pair(d, v, p, "times", &a, &b));
    SCN_TRY(scn_get_duration(d, a, p, &g->join_from));
    return scn_get_duration(d, b, p, &g->join_to);
}

static int decode_tls(scn_dec *d, const scn_node *n, const char *path, sim_scn_group *g)
{
    static const char *const KEYS[] = {"sni", "alpn", NULL};
    char p[SCN_PATH_MAX], q[SCN_PATH_MAX];
    const scn_node *v;
    SCN_TRY(scn_want_map(d, n, path));
    SCN_TRY(scn_check_keys(d, n, path, KEYS));
    if ((v = scn_opt(n, path, "sni", p)))
        SCN_TRY(scn_get_string(d, v, p, SIM_SCN_MAX_SNI, &g->tls_sni));
    if ((v = scn_opt(n, path, "alpn", p))) {
        if (v->kind == SCN_SCALAR) { /* one protocol: a list of one */
            const char **a = scn_arena_alloc(d->a, sizeof *a);
            if (!a)
                return scn_nomem(d, v);
            SCN_TRY(scn_get_string(d, v, p, SIM_SCN_MAX_STRING, &a[0]));
            g->alpn = a;
            g->alpn_count = 1;
            return MESH_OK;
        }
        SCN_TRY(scn_want_list(d, v, p, SIM_SCN_MAX_ALPN, "SIM_SCN_MAX_ALPN"));
        const char **a = scn_arena_alloc(d->a, (v->n ? v->n : 1) * sizeof *a);
        if (!a)
            return scn_nomem(d, v);
        size_t i = 0;
        for (const scn_node *e = v->first; e; e = e->next, i++) {
            scn_itempath(q, p, i);
            SCN_TRY(scn_get_string(d, e, q, SIM_SCN_MAX_STRING, &a[i]));
        }
        g->alpn = a;
        g->alpn_count = v->n;
    }
    return MESH_OK;
}

/* One host name at loc: it must be a DNS name (the node refuses anything else). */
static int check_host_name(scn_dec *d, const scn_node *v, const char *path, const char *name)
{
    if (mesh_host_name_check(name) == MESH_OK)
        return MESH_OK;
    char sb[SCN_SHOW_MAX + 4];
    return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &v->loc,
                         "letters, digits and inner hyphens in dot-separated labels of 1 to 63, "
                         "at most 253 in all, not an address; {index} is the node's index",
                         "%s: \"%s\" is not a DNS host name", path, scn_show(name, sb));
}

/* host_name: a template ("n{index}.example.net") or a list of one name per node. */
static int decode_host_name(scn_dec *d, const scn_node *v, const char *path, sim_scn_group *g)
{
    char q[SCN_PATH_MAX], name[SIM_SCN_MAX_STRING + 16];
    if (v->kind == SCN_SCALAR) {
        SCN_TRY(scn_get_string(d, v, path, SIM_SCN_MAX_STRING, &g->host_name));
        /* the shortest and the longest expansion */
        uint32_t ks[2] = {0, g->count - 1};
        for (int i = 0; i < 2; i++) {
            if (sim_scn_group_host_name(g, ks[i], name, sizeof name) != MESH_OK)
                return check_host_name(d, v, path, g->host_name);
            SCN_TRY(check_host_name(d, v, path, name));
        }
        return MESH_OK;
    }
    SCN_TRY(scn_want_list(d, v, path, SIM_SCN_MAX_NODES, "SIM_SCN_MAX_NODES"));
    if (scn_list_len(v) != g->count)
        return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &v->loc,
                             "give one name per node, or a template with {index}",
                             "%s: %zu names for %u nodes", path, scn_list_len(v), g->count);
    g->host_names = scn_arena_alloc(d->a, v->n * sizeof *g->host_names);
    if (!g->host_names)
        return scn_nomem(d, v);
    size_t i = 0;
    for (const scn_node *e = v->first; e; e = e->next, i++) {
        scn_itempath(q, path, i);
        SCN_TRY(scn_get_string(d, e, q, SIM_SCN_MAX_STRING, &g->host_names[i]));
        SCN_TRY(check_host_name(d, e, q, g->host_names[i]));
    }
    g->host_name_count = i;
    return MESH_OK;
}

int sim_scn_group_host_name(const sim_scn_group *g, uint32_t k, char *buf, size_t cap)
{
    const char *t = g->host_name_count ? (k < g->host_name_count ? g->host_names[k] : "")
                    : g->host_name     ? g->host_name
                                       : "";
    const char *at = g->host_name_count ? NULL : strstr(t, "{index}");
    int n = at ? snprintf(buf, cap, "%.*s%u%s", (int)(at - t), t, k, at + 7)
               : snprintf(buf, cap, "%s", t);
    return n >= 0 && (size_t)n < cap ? MESH_OK : MESH_ERR_TOO_BIG;
}

static int decode_group(scn_dec *d, const scn_node *n, const char *path, size_t idx,
                        sim_scn_group *g)
{
    static const char *const KEYS[] = {"name", "count", "placement", "region",        "nat",
                                       "join", "role",  "mdns",      "profile",       "framing",
                                       "tls",  "link",  "host_name", "relay_service", NULL};
    static const char *const ROLES[] = {"normal", "bootstrap", "stun"};
    static const char *const PROFILES[] = {"web", "seed"}; /* enum sim_scn_profile order */
    static const char *const FRAMINGS[] = {"plain", "http2"};
    char p[SCN_PATH_MAX];
    const scn_node *v;
    uint64_t u;
    SCN_TRY(scn_want_map(d, n, path));
    SCN_TRY(scn_check_keys(d, n, path, KEYS));
    g->loc = n->loc;
    g->lan = SIM_SCN_INTERNET;
    g->region = SIM_SCN_NO_REGION;
    SCN_TRY(scn_need_at(d, n, path, "name", &v, p));
    SCN_TRY(scn_get_name(d, v, p, &g->name));
    SCN_TRY(scn_check_unique_site(d, v, idx, d->s->lan_count));
    SCN_TRY(scn_need_at(d, n, path, "count", &v, p));
    SCN_TRY(scn_get_uint(d, v, p, 1, SIM_SCN_MAX_NODES, &u));
    g->count = (uint32_t)u;
    if ((v = scn_opt(n, path, "placement", p))) {
        SCN_TRY(
            scn_get_scalar(d, v, p, "a LAN name or internet", "write internet or a LAN's name"));
        if (strcmp(v->s, "internet")) {
            g->lan = sim_scenario_lan(d->s, v->s);
            if (g->lan == (size_t)-1)
                return scn_unknown_ref(d, v, p, "LAN", 0, 1, 0);
            g->region = d->s->lans[g->lan].region;
        }
    }
    if ((v = scn_opt(n, path, "region", p))) {
        if (g->lan != SIM_SCN_INTERNET)
            return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &v->key->loc,
                                 "a group on a LAN is in its LAN's region: set region on the LAN",
                                 "%s given for a group placed on a LAN", p);
        SCN_TRY(scn_get_region(d, v, p, &g->region));
    }
    if ((v = scn_opt(n, path, "nat", p)))
        SCN_TRY(scn_decode_nat(d, v, p, &g->nat));
    if ((v = scn_opt(n, path, "join", p)))
        SCN_TRY(decode_join(d, v, p, g));
    if ((v = scn_opt(n, path, "role", p)))
        SCN_TRY(scn_get_choice(d, v, p, ROLES, 3, &g->role));
    /* a node alone behind its own NAT has no neighbour to find (its router passes no
     * multicast): mDNS is on by default only for groups on a LAN without one */
    g->mdns = g->lan != SIM_SCN_INTERNET && !g->nat.present;
    if ((v = scn_opt(n, path, "mdns", p)))
        SCN_TRY(scn_get_bool(d, v, p, &g->mdns));
    if ((v = scn_opt(n, path, "relay_service", p)))
        SCN_TRY(scn_get_bool(d, v, p, &g->relay_service));
    if ((v = scn_opt(n, path, "profile", p)))
        SCN_TRY(scn_get_choice(d, v, p, PROFILES, 2, &g->profile));
    if ((v = scn_opt(n, path, "framing", p))) {
        SCN_TRY(scn_get_choice(d, v, p, FRAMINGS, 2, &g->framing));
        g->framing_given = 1;
    }
    if ((v = scn_opt(n, path, "tls", p)))
        SCN_TRY(decode_tls(d, v, p, g));
    if ((v = scn_opt(n, path, "host_name", p)))
        SCN_TRY(decode_host_name(d, v, p, g));
    g->link = d->s->access;
    g->link.set = d->s->access.set;
    if ((v = scn_get(n, "link"))) {
        sim_scn_link over = {0};
        scn_subpath(p, path, "link");
        SCN_TRY(scn_decode_link(d, v, p, &over));
        scn_link_overlay(&g->link, &over);
    }
    return MESH_OK;
}

/* ---- events, traffic, expectations --------------------------------------------------------- */

static const char *const EVENT_KINDS[] = {"churn", "partition", "link", "censor"};

static int decode_event(scn_dec *d, const scn_node *n, const char *path, sim_scn_event *e)
{
    static const char *const KEYS[] = {"at", "churn", "partition", "link", "censor", NULL};
    static const char *const CHURN_KEYS[] = {"group", "fraction", "down_for", NULL};
    static const char *const PART_KEYS[] = {"targets", "heal_at", NULL};
    static const char *const LINK_EV_KEYS[] = {"target", SCN_LINK_KEYS, NULL};
    static const char *const CENSOR_KEYS[] = {"name", "enabled", NULL};
    char p[SCN_PATH_MAX], q[SCN_PATH_MAX];
    const scn_node *v, *body = NULL;
    SCN_TRY(scn_want_map(d, n, path));
    SCN_TRY(scn_check_keys(d, n, path, KEYS));
    e->loc = n->loc;
    SCN_TRY(scn_need_at(d, n, path, "at", &v, p));
    SCN_TRY(scn_get_duration(d, v, p, &e->at));
    for (int k = 0; k < 4; k++) {
        const scn_node *b = scn_map_find(n, EVENT_KINDS[k]);
        if (!b)
            continue;
        if (body)
            return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &b->key->loc,
                                 "one action per event: add another event with the same `at:`",
                                 "%s has both '%s' and '%s'", path, EVENT_KINDS[e->kind],
                                 EVENT_KINDS[k]);
        body = b;
        e->kind = k;
    }
    if (!body)
        return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc,
                             "add one of churn:, partition:, link:, censor:",
                             "missing required key 'churn', 'partition', 'link' or 'censor' in %s",
                             path);
    scn_subpath(p, path, EVENT_KINDS[e->kind]);
    SCN_TRY(scn_want_map(d, body, p));
    switch (e->kind) {
    case SIM_SCN_EV_CHURN:
        SCN_TRY(scn_check_keys(d, body, p, CHURN_KEYS));
        SCN_TRY(scn_need_at(d, body, p, "group", &v, q));
        SCN_TRY(scn_get_group_ref(d, v, q, &e->group));
        SCN_TRY(scn_need_at(d, body, p, "fraction", &v, q));
        SCN_TRY(scn_get_fraction(d, v, q, &e->fraction));
        e->down_for = MESH_TIME_NEVER;
        if ((v = scn_opt(body, p, "down_for", q)))
            SCN_TRY(scn_get_duration(d, v, q, &e->down_for));
        break;
    case SIM_SCN_EV_PARTITION:
        SCN_TRY(scn_check_keys(d, body, p, PART_KEYS));
        SCN_TRY(scn_need_at(d, body, p, "targets", &v, q));
        SCN_TRY(scn_get_site_list(d, v, q, &e->targets, &e->target_count));
        e->heal_at = MESH_TIME_NEVER;
        if ((v = scn_opt(body, p, "heal_at", q)))
            SCN_TRY(scn_get_duration(d, v, q, &e->heal_at));
        break;
    case SIM_SCN_EV_LINK:
        SCN_TRY(scn_check_keys(d, body, p, LINK_EV_KEYS));
        SCN_TRY(scn_need_at(d, body, p, "target", &v, q));
        SCN_TRY(scn_get_site_ref(d, v, q, &e->target));
        SCN_TRY(scn_decode_link_fields(d, body, p, &e->link));
        if (!e->link.set)
            return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &body->loc,
                                 "give latency, jitter, bandwidth, loss or queue",
                                 "%s changes nothing", p);
        break;
    default:
        SCN_TRY(scn_check_keys(d, body, p, CENSOR_KEYS));
        SCN_TRY(scn_need_at(d, body, p, "name", &v, q));
        SCN_TRY(scn_get_scalar(d, v, q, "a censor name", "name a censor from network.censors"));
        e->censor = sim_scenario_censor(d->s, v->s);
        if (e->censor == (size_t)-1)
            return scn_unknown_ref(d, v, q, "censor", 0, 0, 1);
        SCN_TRY(scn_need_at(d, body, p, "enabled", &v, q));
        SCN_TRY(scn_get_bool(d, v, q, &e->enabled));
        break;
    }
    return MESH_OK;
}

static int decode_size(scn_dec *d, const scn_node *n, const char *path, sim_scn_size *z)
{
    static const char *const KEYS[] = {"distribution", "mean", "max", "shape", NULL};
    static const char *const DISTS[] = {"exponential", "pareto"};
    char p[SCN_PATH_MAX];
    const scn_node *v, *a, *b;
    if (n->kind == SCN_SCALAR) {
        z->dist = SIM_SCN_SIZE_FIXED;
        SCN_TRY(scn_get_size(d, n, path, &z->min));
        z->max = z->mean = z->min;
        return MESH_OK;
    }
    if (n->kind == SCN_SEQ) {
        z->dist = SIM_SCN_SIZE_UNIFORM;
        SCN_TRY(scn_get_pair(d, n, path, "sizes", &a, &b));
        SCN_TRY(scn_get_size(d, a, path, &z->min));
        return scn_get_size(d, b, path, &z->max);
    }
    SCN_TRY(scn_check_keys(d, n, path, KEYS));
    int dist = 0; /* set by get_choice; initialised for gcc -O3, which cannot see that */
    SCN_TRY(scn_need_at(d, n, path, "distribution", &v, p));
    SCN_TRY(scn_get_choice(d, v, p, DISTS, 2, &dist));
    z->dist = dist == 0 ? SIM_SCN_SIZE_EXPONENTIAL : SIM_SCN_SIZE_PARETO;
    SCN_TRY(scn_need_at(d, n, path, "mean", &v, p));
    SCN_TRY(scn_get_size(d, v, p, &z->mean));
    if ((v = scn_opt(n, path, "max", p)))
        SCN_TRY(scn_get_size(d, v, p, &z->max));
    v = scn_get(n, "shape");
    if (z->dist == SIM_SCN_SIZE_EXPONENTIAL && v)
        return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &v->key->loc,
                             "shape is a parameter of pareto only",
                             "%s: shape given for exponential", path);
    if (z->dist == SIM_SCN_SIZE_PARETO) {
        SCN_TRY(scn_need_at(d, n, path, "shape", &v, p));
        SCN_TRY(scn_get_real(d, v, p, 0, 0.0, 100.0, &z->shape));
    }
    return MESH_OK;
}

static int decode_traffic(scn_dec *d, const scn_node *n, const char *path, size_t idx,
                          sim_scn_traffic *tr)
{
    static const char *const KEYS[] = {"name", "from",     "to",    "size", "interval",
                                       "rate", "arrivals", "start", "stop", NULL};
    static const char *const ARRIVALS[] = {"periodic", "poisson"};
    char p[SCN_PATH_MAX];
    const scn_node *v;
    sim_scn_traffic *t = &tr[idx];
    SCN_TRY(scn_want_map(d, n, path));
    SCN_TRY(scn_check_keys(d, n, path, KEYS));
    t->loc = n->loc;
    SCN_TRY(scn_item_name(d, n, path, "traffic", idx, tr, sizeof *tr,
                          offsetof(sim_scn_traffic, name), offsetof(sim_scn_traffic, loc)));
    SCN_TRY(scn_need_at(d, n, path, "from", &v, p));
    SCN_TRY(scn_get_group_ref(d, v, p, &t->from));
    SCN_TRY(scn_need_at(d, n, path, "to", &v, p));
    if (v->kind == SCN_SCALAR && !strcmp(v->s, "random"))
        t->to = SIM_SCN_TO_RANDOM;
    else
        SCN_TRY(scn_get_group_ref(d, v, p, &t->to));
    SCN_TRY(scn_need_at(d, n, path, "size", &v, p));
    SCN_TRY(decode_size(d, v, p, &t->size));
    const scn_node *iv = scn_get(n, "interval"), *rate = scn_get(n, "rate");
    if (iv && rate)
        return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &rate->key->loc,
                             "give interval: 500ms or rate: 2/s, not both",
                             "%s has both interval and rate", path);
    if (rate) {
        scn_subpath(p, path, "rate");
        SCN_TRY(scn_get_msg_rate(d, rate, p, &t->interval));
    } else {
        SCN_TRY(scn_need_at(d, n, path, "interval", &v, p));
        SCN_TRY(scn_get_duration(d, v, p, &t->interval));
    }
    if ((v = scn_opt(n, path, "arrivals", p)))
        SCN_TRY(scn_get_choice(d, v, p, ARRIVALS, 2, &t->arrivals));
    t->stop = d->s->duration;
    if ((v = scn_opt(n, path, "start", p)))
        SCN_TRY(scn_get_duration(d, v, p, &t->start));
    if ((v = scn_opt(n, path, "stop", p)))
        SCN_TRY(scn_get_duration(d, v, p, &t->stop));
    return MESH_OK;
}

static const char *const OPS[] = {"<=", ">=", "=="};

static int decode_expect(scn_dec *d, const scn_node *n, const char *path, sim_scn_expect *x)
{
    static const char *const KEYS[] = {"summary", "op", "value", NULL};
    char p[SCN_PATH_MAX];
    const scn_node *v;
    SCN_TRY(scn_want_map(d, n, path));
    SCN_TRY(scn_check_keys(d, n, path, KEYS));
    x->loc = n->loc;
    SCN_TRY(scn_need_at(d, n, path, "summary", &v, p));
    SCN_TRY(scn_get_name_ex(d, v, p, 1, &x->summary));
    SCN_TRY(scn_need_at(d, n, path, "op", &v, p));
    SCN_TRY(scn_get_choice(d, v, p, OPS, 3, &x->op));
    SCN_TRY(scn_need_at(d, n, path, "value", &v, p));
    return scn_get_real(d, v, p, 0, -1e300, 1e300, &x->value);
}

/* ---- the whole file ------------------------------------------------------------------------ */

/* Allocate the array for a list node (NULL list or empty: *items NULL). */
static int list_alloc(scn_dec *d, const scn_node *list, const char *path, size_t limit,
                      const char *limname, size_t size, void **items)
{
    *items = NULL;
    if (!list)
        return MESH_OK;
    SCN_TRY(scn_want_list(d, list, path, limit, limname));
    size_t n = scn_list_len(list);
    if (n && !(*items = scn_arena_alloc(d->a, n * size)))
        return scn_nomem(d, list);
    return MESH_OK;
}

typedef int (*item_fn)(scn_dec *d, const scn_node *n, const char *path, size_t idx, void *items);

/* Decode each item; *count grows as items succeed, because later items may refer to earlier
 * ones (unique names, references) through the public struct. */
static int list_each(scn_dec *d, const scn_node *list, const char *path, void *items, item_fn fn,
                     size_t *count)
{
    char q[SCN_PATH_MAX];
    size_t i = 0;
    *count = 0;
    for (const scn_node *e = items ? list->first : NULL; e; e = e->next, i++) {
        scn_itempath(q, path, i);
        SCN_TRY(fn(d, e, q, i, items));
        *count = i + 1;
    }
    return MESH_OK;
}

static int lan_item(scn_dec *d, const scn_node *n, const char *path, size_t i, void *items)
{
    sim_scn_lan *l = (sim_scn_lan *)items + i;
    SCN_TRY(scn_decode_lan(d, n, path, l));
    return scn_check_unique_site(d, scn_map_find(n, "name"), 0, i);
}

static int group_item(scn_dec *d, const scn_node *n, const char *path, size_t i, void *items)
{
    return decode_group(d, n, path, i, (sim_scn_group *)items + i);
}

static int censor_item(scn_dec *d, const scn_node *n, const char *path, size_t i, void *items)
{
    return scn_decode_censor(d, n, path, i, (sim_scn_censor *)items + i);
}

static int event_item(scn_dec *d, const scn_node *n, const char *path, size_t i, void *items)
{
    return decode_event(d, n, path, (sim_scn_event *)items + i);
}

static int traffic_item(scn_dec *d, const scn_node *n, const char *path, size_t i, void *items)
{
    return decode_traffic(d, n, path, i, items);
}

static int expect_item(scn_dec *d, const scn_node *n, const char *path, size_t i, void *items)
{
    return decode_expect(d, n, path, (sim_scn_expect *)items + i);
}

/* The decoder fills s's public fields as it goes (lookups by name read them): each array is
 * published before its items are decoded, its count as they succeed. */
#define DECODE_LIST(node, path, lim, field, count_field, fn)                                       \
    do {                                                                                           \
        void *items_;                                                                              \
        const scn_node *list_ = (node);                                                            \
        SCN_TRY(list_alloc(d, list_, path, lim, #lim, sizeof *s->field, &items_));                 \
        s->field = items_;                                                                         \
        SCN_TRY(list_each(d, list_, path, items_, fn, &s->count_field));                           \
    } while (0)

int scn_decode_root(scn_dec *d, const scn_node *root)
{
    static const char *const KEYS[] = {"name",   "seed",    "duration", "network", "groups",
                                       "events", "traffic", "expect",   NULL};
    static const char *const NET_KEYS[] = {"core", "access", "lans", "censors", NULL};
    sim_scenario *s = d->s;
    const scn_node *v, *net = NULL;
    uint64_t u;
    if (!root) {
        sim_scn_loc l = {s->file, 1, 1};
        return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &l,
                             "start from docs/scenarios.md's example", "empty scenario");
    }
    SCN_TRY(scn_want_map(d, root, "the scenario"));
    SCN_TRY(scn_check_keys(d, root, "the scenario", KEYS));
    SCN_TRY(scn_need(d, root, "the scenario", "name", &v));
    SCN_TRY(scn_get_name(d, v, "name", &s->name));
    s->seed = 1;
    if ((v = scn_get(root, "seed"))) {
        SCN_TRY(scn_get_uint(d, v, "seed", 0, INT64_MAX, &u));
        s->seed = u;
    }
    SCN_TRY(scn_need(d, root, "the scenario", "duration", &v));
    SCN_TRY(scn_get_duration(d, v, "duration", &s->duration));
    if (s->duration == 0)
        return scn_out_of_range(d, v, "duration", "a run lasts more than 0s");
    if ((net = scn_get(root, "network"))) {
        SCN_TRY(scn_want_map(d, net, "network"));
        SCN_TRY(scn_check_keys(d, net, "network", NET_KEYS));
        if ((v = scn_get(net, "core")))
            SCN_TRY(scn_decode_core(d, v, "network.core", &s->core));
        if ((v = scn_get(net, "access")))
            SCN_TRY(scn_decode_link(d, v, "network.access", &s->access));
        DECODE_LIST(scn_get(net, "lans"), "network.lans", SIM_SCN_MAX_LANS, lans, lan_count,
                    lan_item);
    }
    SCN_TRY(scn_need(d, root, "the scenario", "groups", &v));
    DECODE_LIST(v, "groups", SIM_SCN_MAX_GROUPS, groups, group_count, group_item);
    if (s->group_count == 0)
        return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &v->loc,
                             "add a group with a name and a count", "groups is empty");
    uint64_t total = 0;
    for (size_t i = 0; i < s->group_count; i++) {
        sim_scn_group *g = (sim_scn_group *)&s->groups[i];
        g->first_node = (uint32_t)total;
        total += g->count;
        if (g->lan != SIM_SCN_INTERNET)
            ((sim_scn_lan *)&s->lans[g->lan])->placed += g->count;
    }
    if (total > SIM_SCN_MAX_NODES)
        return sim_scn_error(d->err, d->errlen, MESH_ERR_LIMIT, &v->loc,
                             "lower the groups' counts (SIM_SCN_MAX_NODES)",
                             "too many nodes: %llu (limit %d)", (unsigned long long)total,
                             SIM_SCN_MAX_NODES);
    s->node_count = (uint32_t)total;
    if (net)
        DECODE_LIST(scn_get(net, "censors"), "network.censors", SIM_SCN_MAX_CENSORS, censors,
                    censor_count, censor_item);
    DECODE_LIST(scn_get(root, "events"), "events", SIM_SCN_MAX_EVENTS, events, event_count,
                event_item);
    DECODE_LIST(scn_get(root, "traffic"), "traffic", SIM_SCN_MAX_TRAFFIC, traffic, traffic_count,
                traffic_item);
    DECODE_LIST(scn_get(root, "expect"), "expect", SIM_SCN_MAX_EXPECT, expects, expect_count,
                expect_item);
    return MESH_OK;
}

const char *sim_scn_op_name(int op)
{
    return op >= 0 && op < 3 ? OPS[op] : "?";
}

const char *sim_scn_event_kind_name(int kind)
{
    return kind >= 0 && kind < 4 ? EVENT_KINDS[kind] : "?";
}
