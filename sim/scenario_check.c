/* scenario_check.c — sim_scenario_check (see scenario.h): the cross-field rules a decoded
 * scenario must meet (times within the duration, ranges ordered, NATs only where they can be,
 * LAN capacities, regions given exactly with a latency matrix, references in bounds, counts
 * within the named limits). The loader calls it after decoding; a caller that edits the
 * struct by hand calls it again. Every error names the element's position. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "meshara/error.h"
#include "sim/scenario.h"
#include "sim/scenario_values.h"

static void fmt_time(char *buf, size_t cap, mesh_time t)
{
    if (t == MESH_TIME_NEVER)
        snprintf(buf, cap, "never");
    else if (t % 1000000000ULL == 0)
        snprintf(buf, cap, "%llus", (unsigned long long)(t / 1000000000ULL));
    else if (t % 1000000ULL == 0)
        snprintf(buf, cap, "%llums", (unsigned long long)(t / 1000000ULL));
    else
        snprintf(buf, cap, "%lluns", (unsigned long long)t);
}

static int check_nat(const sim_scn_nat *n, const sim_scn_loc *loc, const char *what, char *err,
                     size_t errlen)
{
    if (!n->present)
        return MESH_OK;
    if (n->mapping < 0 || n->mapping > 2 || n->filtering < 0 || n->filtering > 2)
        return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, loc, "mapping and filtering are 0..2",
                             "%s has a bad NAT behaviour", what);
    if (n->udp_timeout == 0 || n->tcp_timeout == 0)
        return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, loc,
                             "RFC 4787 asks for at least 2 minutes for UDP",
                             "%s has a zero NAT mapping timeout", what);
    return MESH_OK;
}

static int check_time(mesh_time t, mesh_time duration, const sim_scn_loc *loc, const char *what,
                      char *err, size_t errlen)
{
    if (t == MESH_TIME_NEVER || t <= duration)
        return MESH_OK;
    char a[32], b[32];
    fmt_time(a, sizeof a, t);
    fmt_time(b, sizeof b, duration);
    return sim_scn_error(
        err, errlen, MESH_ERR_MALFORMED, loc,
        "every time is counted from the start of the run and must fit in its duration",
        "%s %s is after the end of the run (duration %s)", what, a, b);
}

static int check_ref(const sim_scenario *s, sim_scn_ref r, const sim_scn_loc *loc, char *err,
                     size_t errlen)
{
    if ((r.kind == SIM_SCN_REF_GROUP && r.index < s->group_count) ||
        (r.kind == SIM_SCN_REF_LAN && r.index < s->lan_count))
        return MESH_OK;
    return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, loc, "a reference index is out of bounds",
                         "bad group/LAN reference");
}

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        int rc_ = (x);                                                                             \
        if (rc_ != MESH_OK)                                                                        \
            return rc_;                                                                            \
    } while (0)

static int check_counts(const sim_scenario *s, char *err, size_t errlen)
{
    struct {
        size_t n, lim;
        const char *what;
    } lists[] = {
        {s->lan_count, SIM_SCN_MAX_LANS, "LANs"},
        {s->group_count, SIM_SCN_MAX_GROUPS, "groups"},
        {s->censor_count, SIM_SCN_MAX_CENSORS, "censors"},
        {s->event_count, SIM_SCN_MAX_EVENTS, "events"},
        {s->traffic_count, SIM_SCN_MAX_TRAFFIC, "traffic patterns"},
        {s->expect_count, SIM_SCN_MAX_EXPECT, "expectations"},
        {s->core.region_count, SIM_SCN_MAX_REGIONS, "regions"},
    };
    sim_scn_loc top = {s->file, 0, 0};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        if (lists[i].n > lists[i].lim)
            return sim_scn_error(err, errlen, MESH_ERR_LIMIT, &top, "see enum sim_scn_limits",
                                 "too many %s: %zu (limit %zu)", lists[i].what, lists[i].n,
                                 lists[i].lim);
    if (s->group_count == 0 || s->node_count == 0)
        return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &top, "add a group with a count",
                             "the scenario has no nodes");
    uint64_t total = 0;
    for (size_t i = 0; i < s->group_count; i++)
        total += s->groups[i].count;
    if (total > SIM_SCN_MAX_NODES || total != s->node_count)
        return sim_scn_error(err, errlen, MESH_ERR_LIMIT, &top, "lower the groups' counts",
                             "%llu nodes (limit %d; node_count %u)", (unsigned long long)total,
                             SIM_SCN_MAX_NODES, s->node_count);
    if (s->duration == 0 || s->duration > SCN_MAX_TIME)
        return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &top, "between 1ns and 365d",
                             "duration out of range");
    if (s->seed > INT64_MAX)
        return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &top, "0 to 2^63-1",
                             "seed out of range");
    return MESH_OK;
}

/* The LANs from l up to the core (l included), or 0 when an upstream index is not an earlier
 * LAN's (so the walk always ends). */
static uint32_t lan_depth(const sim_scenario *s, size_t l)
{
    uint32_t depth = 0;
    for (size_t i = l; i != SIM_SCN_CORE; i = s->lans[i].upstream) {
        if (i >= s->lan_count || (s->lans[i].upstream != SIM_SCN_CORE && s->lans[i].upstream >= i))
            return 0;
        depth++;
    }
    return depth;
}

/* A LAN behind another: an earlier one, itself private, in a chain of at most
 * SIM_SCN_MAX_NAT_DEPTH. */
static int check_upstream(const sim_scenario *s, size_t i, const char *what, char *err,
                          size_t errlen)
{
    const sim_scn_lan *l = &s->lans[i];
    if (l->upstream == SIM_SCN_CORE)
        return MESH_OK;
    uint32_t depth = lan_depth(s, i);
    if (depth == 0)
        return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &l->loc,
                             "an upstream is a LAN declared above", "%s has a bad upstream index",
                             what);
    if (!l->is_private)
        return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &l->loc,
                             "a LAN behind another has addresses of its own: add private: true",
                             "%s sits behind LAN '%s' but is not private", what,
                             s->lans[l->upstream].name);
    if (depth > SIM_SCN_MAX_NAT_DEPTH)
        return sim_scn_error(err, errlen, MESH_ERR_LIMIT, &l->loc,
                             "at most 4 LANs in a chain (SIM_SCN_MAX_NAT_DEPTH)",
                             "%s is %u LANs deep", what, depth);
    return MESH_OK;
}

static int check_network(const sim_scenario *s, char *err, size_t errlen)
{
    const sim_scn_core *c = &s->core;
    sim_scn_loc at = c->loc.line ? c->loc : (sim_scn_loc){s->file, 0, 0};
    if (c->model == SIM_SCN_LAT_UNIFORM && c->lat_min > c->lat_max)
        return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &at,
                             "write [min, max] with min <= max",
                             "network.core.latency.uniform has min > max");
    if (c->model == SIM_SCN_LAT_MATRIX && (c->region_count == 0 || !c->regions || !c->matrix))
        return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &at, "give regions and matrix",
                             "network.core.latency has an empty region matrix");
    int matrix = c->model == SIM_SCN_LAT_MATRIX;
    for (size_t i = 0; i < s->lan_count; i++) {
        const sim_scn_lan *l = &s->lans[i];
        char what[SIM_SCN_MAX_NAME + 16];
        snprintf(what, sizeof what, "LAN '%s'", l->name);
        CHECK(check_nat(&l->nat, &l->loc, what, err, errlen));
        CHECK(check_upstream(s, i, what, err, errlen));
        if (l->nat.present && !l->is_private)
            return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &l->loc,
                                 "a NAT translates a private LAN: add private: true",
                                 "%s has a NAT but is not private", what);
        if (l->hosts && l->placed > l->hosts)
            return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &l->loc,
                                 "raise hosts: or place fewer nodes on it",
                                 "%s holds %u nodes but has hosts: %u", what, l->placed, l->hosts);
        if (l->upstream != SIM_SCN_CORE && l->region != s->lans[l->upstream].region)
            return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &l->loc,
                                 "a LAN behind another is in its upstream's region",
                                 "%s has another region than its upstream", what);
        if (matrix && l->region >= c->region_count)
            return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &l->loc,
                                 "with a latency matrix every LAN needs `region:`",
                                 "%s has no region", what);
        if (!matrix && l->region != SIM_SCN_NO_REGION)
            return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &l->loc,
                                 "regions exist only with a latency matrix", "%s has a region",
                                 what);
    }
    for (size_t i = 0; i < s->censor_count; i++) {
        const sim_scn_censor *cs = &s->censors[i];
        if (cs->rule_count == 0 || cs->rule_count > SIM_SCN_MAX_RULES || cs->target_count == 0 ||
            cs->target_count > SIM_SCN_MAX_LIST)
            return sim_scn_error(err, errlen, MESH_ERR_LIMIT, &cs->loc,
                                 "1 to SIM_SCN_MAX_RULES rules, 1 to SIM_SCN_MAX_LIST targets",
                                 "censor '%s' has %zu rules and %zu targets", cs->name,
                                 cs->rule_count, cs->target_count);
        for (size_t j = 0; j < cs->target_count; j++)
            CHECK(check_ref(s, cs->targets[j], &cs->loc, err, errlen));
        for (size_t j = 0; j < cs->rule_count; j++) {
            const sim_scn_rule *r = &cs->rules[j];
            const char *bad = NULL;
            if (!r->match)
                bad = "matches nothing";
            else if (r->port_min > r->port_max)
                bad = "has dst_port [min, max] with min > max";
            else if (r->len_min > r->len_max)
                bad = "has first_len [min, max] with min > max";
            else if (r->entropy_min > r->entropy_max)
                bad = "has entropy [min, max] with min > max";
            else if (r->action == SIM_SCN_ACT_THROTTLE && r->throttle_bps == 0)
                bad = "throttles to 0 bit/s (use drop)";
            else if (r->action < 0 || r->action > SIM_SCN_ACT_PROBE)
                bad = "has a bad action";
            if (bad)
                return sim_scn_error(
                    err, errlen, MESH_ERR_MALFORMED, &r->loc,
                    "ranges are [min, max]; actions drop, rst, throttle <rate>, probe",
                    "rule '%s' of censor '%s' %s", r->name, cs->name, bad);
        }
    }
    return MESH_OK;
}

/* What a node's TLS layer takes: an SNI of SIM_SCN_MAX_SNI bytes at most, and at most
 * SIM_SCN_MAX_ALPN protocols counting the "h2" a node with http2 framing adds when missing; an
 * ALPN list and plain framing only in the seed profile (the web profile's ALPN lists are
 * curl's and nginx's, and it always frames with HTTP/2). */
static int check_tls(const sim_scn_group *g, const char *what, char *err, size_t errlen)
{
    if (g->tls_sni && (!*g->tls_sni || strlen(g->tls_sni) > SIM_SCN_MAX_SNI))
        return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &g->loc,
                             "a host name of 1 to 253 bytes", "%s has a bad tls.sni", what);
    size_t n = g->alpn_count;
    int has_h2 = 0;
    for (size_t i = 0; i < g->alpn_count; i++)
        has_h2 |= !strcmp(g->alpn[i], "h2");
    if (g->framing == SIM_SCN_FRAMING_HTTP2 && n && !has_h2)
        n++;
    if (n > SIM_SCN_MAX_ALPN)
        return sim_scn_error(err, errlen, MESH_ERR_LIMIT, &g->loc,
                             "at most 8 protocols (SIM_SCN_MAX_ALPN), h2 included with "
                             "framing: http2",
                             "%s offers %zu ALPN protocols", what, n);
    if (g->profile == SIM_SCN_PROFILE_WEB && g->alpn_count)
        return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &g->loc,
                             "add profile: seed, or drop tls.alpn: the web profile offers "
                             "h2,http/1.1 as curl does",
                             "%s sets tls.alpn, a seed-profile setting", what);
    if (g->profile == SIM_SCN_PROFILE_WEB && g->framing_given &&
        g->framing == SIM_SCN_FRAMING_PLAIN)
        return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &g->loc,
                             "add profile: seed, or drop framing: the web profile always "
                             "frames with HTTP/2",
                             "%s sets framing: plain, a seed-profile setting", what);
    return MESH_OK;
}

static int check_groups(const sim_scenario *s, char *err, size_t errlen)
{
    int matrix = s->core.model == SIM_SCN_LAT_MATRIX;
    for (size_t i = 0; i < s->group_count; i++) {
        const sim_scn_group *g = &s->groups[i];
        char what[SIM_SCN_MAX_NAME + 16];
        snprintf(what, sizeof what, "group '%s'", g->name);
        if (g->count == 0)
            return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &g->loc, "count: 1 or more",
                                 "%s has no nodes", what);
        if (g->lan != SIM_SCN_INTERNET && g->lan >= s->lan_count)
            return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &g->loc,
                                 "place it on a known LAN", "%s has a bad LAN index", what);
        CHECK(check_nat(&g->nat, &g->loc, what, err, errlen));
        if (g->nat.present && g->lan == SIM_SCN_INTERNET)
            return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &g->loc,
                                 "a per-node NAT needs the group on a LAN (placement: <lan>)",
                                 "%s has a NAT but sits on the internet", what);
        if (g->nat.present && lan_depth(s, g->lan) + 1 > SIM_SCN_MAX_NAT_DEPTH)
            return sim_scn_error(err, errlen, MESH_ERR_LIMIT, &g->loc,
                                 "at most 4 LANs in a chain (SIM_SCN_MAX_NAT_DEPTH), the "
                                 "per-node NAT's included",
                                 "%s puts its nodes %u LANs deep", what, lan_depth(s, g->lan) + 1);
        if (g->role == SIM_SCN_ROLE_STUN && g->lan != SIM_SCN_INTERNET)
            return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &g->loc,
                                 "a STUN server must be reachable from everywhere: place the group "
                                 "on the internet",
                                 "%s has role stun but sits on LAN '%s'", what,
                                 s->lans[g->lan].name);
        if (g->join_from > g->join_to)
            return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &g->loc,
                                 "write spread: [t0, t1] with t0 <= t1",
                                 "%s joins over a reversed interval", what);
        char jw[SIM_SCN_MAX_NAME + 32];
        snprintf(jw, sizeof jw, "%s joins at", what);
        CHECK(check_time(g->join_to, s->duration, &g->loc, jw, err, errlen));
        if (matrix && g->region >= s->core.region_count)
            return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &g->loc,
                                 "with a latency matrix, give groups on the internet `region:`",
                                 "%s has no region", what);
        if (!matrix && g->region != SIM_SCN_NO_REGION)
            return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &g->loc,
                                 "regions exist only with a latency matrix", "%s has a region",
                                 what);
        CHECK(check_tls(g, what, err, errlen));
        if (i > 0 && g->first_node != s->groups[i - 1].first_node + s->groups[i - 1].count)
            return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &g->loc,
                                 "first_node is the sum of the earlier groups' counts",
                                 "%s has a bad first_node", what);
    }
    return MESH_OK;
}

static int check_events(const sim_scenario *s, char *err, size_t errlen)
{
    for (size_t i = 0; i < s->event_count; i++) {
        const sim_scn_event *e = &s->events[i];
        CHECK(check_time(e->at, s->duration, &e->loc, "event at", err, errlen));
        switch (e->kind) {
        case SIM_SCN_EV_CHURN:
            if (e->group >= s->group_count)
                return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &e->loc, "name a known group",
                                     "churn of a bad group index");
            if (!(e->fraction > 0.0 && e->fraction <= 1.0))
                return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &e->loc,
                                     "a fraction above 0%, up to 100%",
                                     "churn fraction out of range");
            break;
        case SIM_SCN_EV_PARTITION:
            if (e->target_count == 0 || e->target_count > SIM_SCN_MAX_LIST)
                return sim_scn_error(err, errlen, MESH_ERR_LIMIT, &e->loc, "1 to SIM_SCN_MAX_LIST",
                                     "partition with %zu targets", e->target_count);
            for (size_t j = 0; j < e->target_count; j++)
                CHECK(check_ref(s, e->targets[j], &e->loc, err, errlen));
            if (e->heal_at <= e->at) {
                char a[32], b[32];
                fmt_time(a, sizeof a, e->heal_at);
                fmt_time(b, sizeof b, e->at);
                return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &e->loc,
                                     "heal_at is an absolute time after the event's at",
                                     "partition heals at %s, not after it starts at %s", a, b);
            }
            break;
        case SIM_SCN_EV_LINK:
            CHECK(check_ref(s, e->target, &e->loc, err, errlen));
            if (!e->link.set)
                return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &e->loc, "give a link field",
                                     "link change changes nothing");
            break;
        case SIM_SCN_EV_CENSOR:
            if (e->censor >= s->censor_count)
                return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &e->loc,
                                     "name a known censor", "censor event with a bad censor index");
            break;
        default:
            return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &e->loc,
                                 "churn, partition, link or censor", "event of unknown kind %d",
                                 e->kind);
        }
    }
    return MESH_OK;
}

/* A node never sends to itself: a pattern whose only possible destination is its sender
 * would send nothing at all, and its figures would be empty rather than wrong. */
static int check_destination(const sim_scenario *s, const sim_scn_traffic *t, char *err,
                             size_t errlen)
{
    const sim_scn_group *from = &s->groups[t->from];
    if (t->to == SIM_SCN_TO_RANDOM && s->node_count == 1)
        return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &t->loc,
                             "`to: random` picks another node; add a group or raise a count",
                             "traffic '%s' has no destination: the scenario has one node and a "
                             "node never sends to itself",
                             t->name);
    if (t->to == t->from && from->count == 1)
        return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &t->loc,
                             "send to another group, or give the group two nodes or more",
                             "traffic '%s' has no destination: it sends from group '%s' to "
                             "itself, which has one node, and a node never sends to itself",
                             t->name, from->name);
    return MESH_OK;
}

static int check_traffic(const sim_scenario *s, char *err, size_t errlen)
{
    for (size_t i = 0; i < s->traffic_count; i++) {
        const sim_scn_traffic *t = &s->traffic[i];
        const sim_scn_size *z = &t->size;
        const char *bad = NULL;
        if (t->from >= s->group_count || (t->to != SIM_SCN_TO_RANDOM && t->to >= s->group_count))
            bad = "refers to a bad group index";
        else if (t->interval == 0)
            bad = "has a zero interval";
        else if (t->start >= t->stop)
            bad = "stops before it starts";
        else if (z->dist == SIM_SCN_SIZE_UNIFORM && z->min > z->max)
            bad = "has a size range [min, max] with min > max";
        else if ((z->dist == SIM_SCN_SIZE_EXPONENTIAL || z->dist == SIM_SCN_SIZE_PARETO) &&
                 (z->mean == 0 || (z->max && z->max < z->mean)))
            bad = "has a size distribution with mean 0 or max below the mean";
        else if (z->dist == SIM_SCN_SIZE_PARETO && !(z->shape > 1.0))
            bad = "has a pareto shape not above 1 (its mean would be infinite)";
        else if (z->dist < SIM_SCN_SIZE_FIXED || z->dist > SIM_SCN_SIZE_PARETO)
            bad = "has a bad size distribution";
        if (bad)
            return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &t->loc,
                                 "see the traffic section of docs/scenarios.md", "traffic '%s' %s",
                                 t->name, bad);
        CHECK(check_time(t->stop, s->duration, &t->loc, "traffic stop", err, errlen));
        CHECK(check_destination(s, t, err, errlen));
    }
    for (size_t i = 0; i < s->expect_count; i++) {
        const sim_scn_expect *x = &s->expects[i];
        if (x->op < SIM_SCN_OP_LE || x->op > SIM_SCN_OP_EQ || !isfinite(x->value))
            return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &x->loc,
                                 "op is <=, >= or ==", "bad expectation on '%s'", x->summary);
    }
    return MESH_OK;
}

int sim_scenario_check(const sim_scenario *s, char *err, size_t errlen)
{
    if (!s)
        return MESH_ERR_INVAL;
    CHECK(check_counts(s, err, errlen));
    CHECK(check_network(s, err, errlen));
    CHECK(check_groups(s, err, errlen));
    CHECK(check_events(s, err, errlen));
    return check_traffic(s, err, errlen);
}
