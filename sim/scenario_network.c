/* scenario_network.c — decoding the scenario's `network:` section (see scenario_network.h). */
#include "sim/scenario_network.h"

#include <stdio.h>
#include <string.h>

#include "meshara/error.h"

/* ---- links and the core ------------------------------------------------------------------- */

/* The link fields present in map onto l (other fields untouched). */
int scn_decode_link_fields(scn_dec *d, const scn_node *map, const char *path, sim_scn_link *l)
{
    char p[SCN_PATH_MAX];
    const scn_node *v;
    if ((v = scn_opt(map, path, "latency", p))) {
        SCN_TRY(scn_get_duration(d, v, p, &l->latency));
        l->set |= SIM_SCN_LINK_LATENCY;
    }
    if ((v = scn_opt(map, path, "jitter", p))) {
        SCN_TRY(scn_get_duration(d, v, p, &l->jitter));
        l->set |= SIM_SCN_LINK_JITTER;
    }
    if ((v = scn_opt(map, path, "bandwidth", p))) {
        SCN_TRY(scn_get_rate(d, v, p, &l->bandwidth_bps));
        l->set |= SIM_SCN_LINK_BANDWIDTH;
    }
    if ((v = scn_opt(map, path, "loss", p))) {
        SCN_TRY(scn_get_fraction(d, v, p, &l->loss));
        l->set |= SIM_SCN_LINK_LOSS;
    }
    if ((v = scn_opt(map, path, "queue", p))) {
        SCN_TRY(scn_get_size(d, v, p, &l->queue_bytes));
        l->set |= SIM_SCN_LINK_QUEUE;
    }
    return MESH_OK;
}

int scn_decode_link(scn_dec *d, const scn_node *n, const char *path, sim_scn_link *l)
{
    static const char *const KEYS[] = {SCN_LINK_KEYS, NULL};
    SCN_TRY(scn_want_map(d, n, path));
    SCN_TRY(scn_check_keys(d, n, path, KEYS));
    return scn_decode_link_fields(d, n, path, l);
}

/* Overlay the fields set in `over` onto `base`. */
void scn_link_overlay(sim_scn_link *base, const sim_scn_link *over)
{
    if (over->set & SIM_SCN_LINK_LATENCY)
        base->latency = over->latency;
    if (over->set & SIM_SCN_LINK_JITTER)
        base->jitter = over->jitter;
    if (over->set & SIM_SCN_LINK_BANDWIDTH)
        base->bandwidth_bps = over->bandwidth_bps;
    if (over->set & SIM_SCN_LINK_LOSS)
        base->loss = over->loss;
    if (over->set & SIM_SCN_LINK_QUEUE)
        base->queue_bytes = over->queue_bytes;
    base->set |= over->set;
}

static int decode_latency_model(scn_dec *d, const scn_node *n, const char *path, sim_scn_core *c)
{
    static const char *const KEYS[] = {"uniform", "regions", "matrix", NULL};
    char p[SCN_PATH_MAX], q[SCN_PATH_MAX];
    c->loc = n->loc; /* where sim_scenario_check points for the model's cross-field rules */
    if (n->kind == SCN_SCALAR) {
        c->model = SIM_SCN_LAT_CONSTANT;
        return scn_get_duration(d, n, path, &c->latency);
    }
    if (n->kind != SCN_MAP)
        return scn_wrong_type(d, n, path, "a duration or a mapping",
                              "write 40ms, {uniform: [20ms, 120ms]} or {regions: [...], matrix: "
                              "[[...], ...]}");
    SCN_TRY(scn_check_keys(d, n, path, KEYS));
    const scn_node *uni = scn_get(n, "uniform"), *reg = scn_get(n, "regions"),
                   *mat = scn_get(n, "matrix");
    if (uni && (reg || mat))
        return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc,
                             "use either uniform, or regions with matrix",
                             "%s has both a uniform range and a region matrix", path);
    if (uni) {
        const scn_node *a, *b;
        scn_subpath(p, path, "uniform");
        SCN_TRY(scn_get_pair(d, uni, p, "durations", &a, &b));
        c->model = SIM_SCN_LAT_UNIFORM;
        c->loc = uni->loc;
        SCN_TRY(scn_get_duration(d, a, p, &c->lat_min));
        return scn_get_duration(d, b, p, &c->lat_max);
    }
    if (!reg || !mat) {
        const scn_node *dummy;
        return scn_need(d, n, path, reg ? "matrix" : "regions", &dummy);
    }
    scn_subpath(p, path, "regions");
    SCN_TRY(scn_want_list(d, reg, p, SIM_SCN_MAX_REGIONS, "SIM_SCN_MAX_REGIONS"));
    size_t r = reg->n;
    if (r == 0)
        return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &reg->loc,
                             "name one region or more", "empty list %s", p);
    const char **names = scn_arena_alloc(d->a, r * sizeof *names);
    const sim_scn_loc **locs = scn_arena_alloc(d->a, r * sizeof *locs);
    mesh_time *m = scn_arena_alloc(d->a, r * r * sizeof *m);
    if (!names || !locs || !m)
        return scn_nomem(d, n);
    size_t i = 0;
    for (const scn_node *e = reg->first; e; e = e->next, i++) {
        scn_itempath(q, p, i);
        SCN_TRY(scn_get_name(d, e, q, &names[i]));
        locs[i] = &e->loc;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(names[j], names[i]))
                return scn_duplicate(d, e, "region", locs[j]);
    }
    scn_subpath(p, path, "matrix");
    SCN_TRY(scn_want_list(d, mat, p, SIM_SCN_MAX_REGIONS, "SIM_SCN_MAX_REGIONS"));
    if (mat->n != r)
        return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &mat->loc,
                             "one row per region, in the order of regions",
                             "%s has %zu rows for %zu regions", p, mat->n, r);
    i = 0;
    for (const scn_node *row = mat->first; row; row = row->next, i++) {
        scn_itempath(q, p, i);
        if (row->kind != SCN_SEQ)
            return scn_wrong_type(d, row, q, "a list of durations", "write [5ms, 80ms, ...]");
        if (row->n != r)
            return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &row->loc,
                                 "one column per region, in the order of regions",
                                 "%s has %zu entries for %zu regions", q, row->n, r);
        size_t j = 0;
        for (const scn_node *e = row->first; e; e = e->next, j++)
            SCN_TRY(scn_get_duration(d, e, q, &m[i * r + j]));
    }
    c->model = SIM_SCN_LAT_MATRIX;
    c->region_count = r;
    c->regions = names;
    c->matrix = m;
    return MESH_OK;
}

int scn_decode_core(scn_dec *d, const scn_node *n, const char *path, sim_scn_core *c)
{
    static const char *const KEYS[] = {"latency", "jitter", "loss", NULL};
    char p[SCN_PATH_MAX];
    const scn_node *v;
    SCN_TRY(scn_want_map(d, n, path));
    SCN_TRY(scn_check_keys(d, n, path, KEYS));
    if ((v = scn_opt(n, path, "latency", p)))
        SCN_TRY(decode_latency_model(d, v, p, c));
    if ((v = scn_opt(n, path, "jitter", p)))
        SCN_TRY(scn_get_duration(d, v, p, &c->jitter));
    if ((v = scn_opt(n, path, "loss", p)))
        SCN_TRY(scn_get_fraction(d, v, p, &c->loss));
    return MESH_OK;
}

/* ---- NATs and LANs ------------------------------------------------------------------------ */

static const char *const NAT_BEHAVIOURS[] = {"endpoint-independent", "address-dependent",
                                             "address-and-port-dependent"};
/* Common names for mapping × filtering pairs. */
static const char *const NAT_PRESETS[] = {"full-cone", "restricted-cone", "port-restricted-cone",
                                          "symmetric"};
static const int NAT_PRESET_MAP[][2] = {
    {SIM_SCN_NAT_ENDPOINT_INDEPENDENT, SIM_SCN_NAT_ENDPOINT_INDEPENDENT},
    {SIM_SCN_NAT_ENDPOINT_INDEPENDENT, SIM_SCN_NAT_ADDRESS_DEPENDENT},
    {SIM_SCN_NAT_ENDPOINT_INDEPENDENT, SIM_SCN_NAT_ADDRESS_PORT_DEPENDENT},
    {SIM_SCN_NAT_ADDRESS_PORT_DEPENDENT, SIM_SCN_NAT_ADDRESS_PORT_DEPENDENT},
};
#define N_PRESETS (sizeof NAT_PRESETS / sizeof NAT_PRESETS[0])

int scn_decode_nat(scn_dec *d, const scn_node *n, const char *path, sim_scn_nat *nat)
{
    static const char *const KEYS[] = {"type",        "mapping", "filtering", "udp_timeout",
                                       "tcp_timeout", "hairpin", "ports",     "upnp",
                                       "natpmp",      NULL};
    static const char *const PORTS[] = {"random", "preserve"};
    char p[SCN_PATH_MAX];
    const scn_node *v;
    int preset = -1;
    memset(nat, 0, sizeof *nat);
    nat->present = 1;
    nat->udp_timeout = 120ULL * 1000000000ULL;
    nat->tcp_timeout = (2ULL * 3600 + 4 * 60) * 1000000000ULL;
    nat->port_preserve = 1;
    if (n->kind == SCN_SCALAR) {
        SCN_TRY(scn_get_choice(d, n, path, NAT_PRESETS, N_PRESETS, &preset));
        nat->mapping = NAT_PRESET_MAP[preset][0];
        nat->filtering = NAT_PRESET_MAP[preset][1];
        return MESH_OK;
    }
    if (n->kind != SCN_MAP)
        return scn_wrong_type(d, n, path, "a NAT type or a mapping",
                              "write symmetric, or {mapping: ..., filtering: ...}");
    SCN_TRY(scn_check_keys(d, n, path, KEYS));
    if ((v = scn_opt(n, path, "type", p))) {
        SCN_TRY(scn_get_choice(d, v, p, NAT_PRESETS, N_PRESETS, &preset));
        nat->mapping = NAT_PRESET_MAP[preset][0];
        nat->filtering = NAT_PRESET_MAP[preset][1];
    }
    if (preset < 0 || scn_get(n, "mapping")) {
        SCN_TRY(scn_need_at(d, n, path, "mapping", &v, p));
        SCN_TRY(scn_get_choice(d, v, p, NAT_BEHAVIOURS, 3, &nat->mapping));
    }
    if (preset < 0 || scn_get(n, "filtering")) {
        SCN_TRY(scn_need_at(d, n, path, "filtering", &v, p));
        SCN_TRY(scn_get_choice(d, v, p, NAT_BEHAVIOURS, 3, &nat->filtering));
    }
    if ((v = scn_opt(n, path, "udp_timeout", p)))
        SCN_TRY(scn_get_duration(d, v, p, &nat->udp_timeout));
    if ((v = scn_opt(n, path, "tcp_timeout", p)))
        SCN_TRY(scn_get_duration(d, v, p, &nat->tcp_timeout));
    if ((v = scn_opt(n, path, "hairpin", p)))
        SCN_TRY(scn_get_bool(d, v, p, &nat->hairpin));
    if ((v = scn_opt(n, path, "ports", p)))
        SCN_TRY(scn_get_choice(d, v, p, PORTS, 2, &nat->port_preserve));
    if ((v = scn_opt(n, path, "upnp", p)))
        SCN_TRY(scn_get_bool(d, v, p, &nat->upnp));
    if ((v = scn_opt(n, path, "natpmp", p)))
        SCN_TRY(scn_get_bool(d, v, p, &nat->natpmp));
    return MESH_OK;
}

/* upstream: an earlier LAN (so chains are built in file order and cannot loop); the LAN is
 * then in the upstream's region. */
static int decode_upstream(scn_dec *d, const scn_node *v, const char *path, sim_scn_lan *l)
{
    SCN_TRY(scn_get_scalar(d, v, path, "a LAN name", "name a LAN declared above this one"));
    l->upstream = sim_scenario_lan(d->s, v->s);
    if (l->upstream == (size_t)-1) {
        char hint[512], sb[SCN_SHOW_MAX + 4];
        const char *names[SIM_SCN_MAX_LANS];
        for (size_t i = 0; i < d->s->lan_count; i++)
            names[i] = d->s->lans[i].name;
        int at = snprintf(hint, sizeof hint,
                          "an upstream LAN is declared above the LANs behind "
                          "it; ");
        scn_suggest(hint + at, sizeof hint - (size_t)at, v->s, names, d->s->lan_count, "known: ");
        return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &v->loc, hint,
                             "unknown LAN '%s' in %s", scn_show(v->s, sb), path);
    }
    const sim_scn_lan *u = &d->s->lans[l->upstream];
    l->region = u->region;
    l->depth = u->depth + 1;
    return MESH_OK;
}

int scn_decode_lan(scn_dec *d, const scn_node *n, const char *path, sim_scn_lan *l)
{
    static const char *const KEYS[] = {"name", "hosts",  "private",  "nat",
                                       "link", "region", "upstream", NULL};
    char p[SCN_PATH_MAX];
    const scn_node *v;
    uint64_t u;
    SCN_TRY(scn_want_map(d, n, path));
    SCN_TRY(scn_check_keys(d, n, path, KEYS));
    l->loc = n->loc;
    l->region = SIM_SCN_NO_REGION;
    l->upstream = SIM_SCN_CORE;
    l->depth = 1;
    SCN_TRY(scn_need_at(d, n, path, "name", &v, p));
    SCN_TRY(scn_get_name(d, v, p, &l->name));
    if ((v = scn_opt(n, path, "hosts", p))) {
        SCN_TRY(scn_get_uint(d, v, p, 1, SIM_SCN_MAX_NODES, &u));
        l->hosts = (uint32_t)u;
    }
    if ((v = scn_opt(n, path, "private", p)))
        SCN_TRY(scn_get_bool(d, v, p, &l->is_private));
    if ((v = scn_opt(n, path, "nat", p)))
        SCN_TRY(scn_decode_nat(d, v, p, &l->nat));
    if ((v = scn_opt(n, path, "link", p)))
        SCN_TRY(scn_decode_link(d, v, p, &l->link));
    if ((v = scn_opt(n, path, "upstream", p)))
        SCN_TRY(decode_upstream(d, v, p, l));
    if ((v = scn_opt(n, path, "region", p))) {
        if (l->upstream != SIM_SCN_CORE)
            return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &v->key->loc,
                                 "a LAN behind another is in its upstream's region: set region on "
                                 "the upstream",
                                 "%s given for a LAN with an upstream", p);
        SCN_TRY(scn_get_region(d, v, p, &l->region));
    }
    return MESH_OK;
}

/* ---- censors --------------------------------------------------------------------------------- */

static int decode_match(scn_dec *d, const scn_node *n, const char *path, sim_scn_rule *r)
{
    static const char *const KEYS[] = {"dst_ip", "dst_port",  "sni",     "alpn",
                                       "ja3",    "first_len", "entropy", NULL};
    char p[SCN_PATH_MAX];
    const scn_node *v, *a, *b;
    uint64_t u;
    SCN_TRY(scn_want_map(d, n, path));
    SCN_TRY(scn_check_keys(d, n, path, KEYS));
    if ((v = scn_opt(n, path, "dst_ip", p))) {
        SCN_TRY(scn_get_ipv4_prefix(d, v, p, &r->dst_ip, &r->dst_prefix));
        r->match |= SIM_SCN_MATCH_DST_IP;
    }
    if ((v = scn_opt(n, path, "dst_port", p))) {
        if (v->kind == SCN_SEQ) {
            SCN_TRY(scn_get_pair(d, v, p, "ports", &a, &b));
        } else {
            a = b = v;
        }
        SCN_TRY(scn_get_uint(d, a, p, 0, 65535, &u));
        r->port_min = (uint16_t)u;
        SCN_TRY(scn_get_uint(d, b, p, 0, 65535, &u));
        r->port_max = (uint16_t)u;
        r->match |= SIM_SCN_MATCH_DST_PORT;
    }
    if ((v = scn_opt(n, path, "sni", p))) {
        SCN_TRY(scn_get_string(d, v, p, SIM_SCN_MAX_STRING, &r->sni));
        for (char *c = (char *)r->sni; *c; c++) /* names compare case-insensitively */
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        r->match |= SIM_SCN_MATCH_SNI;
    }
    if ((v = scn_opt(n, path, "alpn", p))) {
        SCN_TRY(scn_get_string(d, v, p, SIM_SCN_MAX_STRING, &r->alpn));
        r->match |= SIM_SCN_MATCH_ALPN;
    }
    if ((v = scn_opt(n, path, "ja3", p))) {
        SCN_TRY(scn_get_string(d, v, p, 32, &r->ja3));
        int word = !strcmp(r->ja3, SIM_SCN_JA3_WEB) || !strcmp(r->ja3, SIM_SCN_JA3_WEB_IP);
        int ok = word || strlen(r->ja3) == 32;
        for (char *c = (char *)r->ja3; ok && !word && *c; c++) {
            if (*c >= 'A' && *c <= 'F')
                *c = (char)(*c - 'A' + 'a');
            ok = (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f');
        }
        if (!ok)
            return scn_wrong_type(d, v, p, "a JA3 MD5 (32 hex digits) or " SIM_SCN_JA3_WEB,
                                  "tshark shows it as tls.handshake.ja3; " SIM_SCN_JA3_WEB
                                  " and " SIM_SCN_JA3_WEB_IP " are the web-profile node's own");
        r->match |= SIM_SCN_MATCH_JA3;
    }
    if ((v = scn_opt(n, path, "first_len", p))) {
        SCN_TRY(scn_get_pair(d, v, p, "sizes", &a, &b));
        SCN_TRY(scn_get_size(d, a, p, &r->len_min));
        SCN_TRY(scn_get_size(d, b, p, &r->len_max));
        r->match |= SIM_SCN_MATCH_FIRST_LEN;
    }
    if ((v = scn_opt(n, path, "entropy", p))) {
        SCN_TRY(scn_get_pair(d, v, p, "numbers of bits per byte", &a, &b));
        SCN_TRY(scn_get_real(d, a, p, 0, 0.0, 8.0, &r->entropy_min));
        SCN_TRY(scn_get_real(d, b, p, 0, 0.0, 8.0, &r->entropy_max));
        r->match |= SIM_SCN_MATCH_ENTROPY;
    }
    if (!r->match)
        return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc,
                             "give dst_ip, dst_port, sni, alpn, ja3, first_len or entropy",
                             "%s matches nothing", path);
    return MESH_OK;
}

static const char *const ACTIONS[] = {"drop", "rst", "throttle", "probe"};

static int decode_action(scn_dec *d, const scn_node *n, const char *path, sim_scn_rule *r)
{
    const char *hint = "one of: drop, rst, probe, throttle <rate> (e.g. throttle 64kbit)";
    SCN_TRY(scn_get_scalar(d, n, path, "an action", hint));
    const char *sp = strchr(n->s, ' ');
    size_t wl = sp ? (size_t)(sp - n->s) : n->len;
    for (int i = 0; i < 4; i++) {
        if (strlen(ACTIONS[i]) != wl || strncmp(n->s, ACTIONS[i], wl))
            continue;
        r->action = i;
        if (i != SIM_SCN_ACT_THROTTLE) {
            if (sp)
                break;
            return MESH_OK;
        }
        if (!sp)
            return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc,
                                 "write throttle 64kbit", "%s: throttle needs a rate", path);
        scn_node rate = *n; /* the rate part, at the same position */
        rate.s = sp + 1;
        while (*rate.s == ' ')
            rate.s++;
        rate.len = strlen(rate.s);
        return scn_get_rate(d, &rate, path, &r->throttle_bps);
    }
    char sb[SCN_SHOW_MAX + 4];
    return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &n->loc, hint,
                         "bad value \"%s\" for %s", scn_show(n->s, sb), path);
}

static int decode_rule(scn_dec *d, const scn_node *n, const char *path, size_t idx,
                       sim_scn_rule *rules)
{
    static const char *const KEYS[] = {"name", "match", "action", "residual", NULL};
    char p[SCN_PATH_MAX];
    const scn_node *v;
    sim_scn_rule *r = &rules[idx];
    SCN_TRY(scn_want_map(d, n, path));
    SCN_TRY(scn_check_keys(d, n, path, KEYS));
    r->loc = n->loc;
    SCN_TRY(scn_item_name(d, n, path, "rule", idx, rules, sizeof *rules,
                          offsetof(sim_scn_rule, name), offsetof(sim_scn_rule, loc)));
    SCN_TRY(scn_need_at(d, n, path, "match", &v, p));
    SCN_TRY(decode_match(d, v, p, r));
    SCN_TRY(scn_need_at(d, n, path, "action", &v, p));
    SCN_TRY(decode_action(d, v, p, r));
    if ((v = scn_opt(n, path, "residual", p)))
        SCN_TRY(scn_get_duration(d, v, p, &r->residual));
    return MESH_OK;
}

/* background: a list of client kinds (each at most once; [] = none). */
static int decode_background(scn_dec *d, const scn_node *v, const char *path, unsigned *out)
{
    static const char *const KINDS[] = {"openssl", "curl", "curl-ip"}; /* sim_scn_bg_kind */
    char q[SCN_PATH_MAX];
    SCN_TRY(scn_want_list(d, v, path, SIM_SCN_BG_KINDS, "one of each kind"));
    unsigned bits = 0;
    size_t i = 0;
    for (const scn_node *e = v->first; e; e = e->next, i++) {
        int k;
        scn_itempath(q, path, i);
        SCN_TRY(scn_get_choice(d, e, q, KINDS, SIM_SCN_BG_KINDS, &k));
        if (bits & 1u << k)
            return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &e->loc,
                                 "name each kind once", "%s: %s given twice", q, KINDS[k]);
        bits |= 1u << k;
    }
    *out = bits;
    return MESH_OK;
}

int scn_decode_censor(scn_dec *d, const scn_node *n, const char *path, size_t idx,
                      sim_scn_censor *c)
{
    static const char *const KEYS[] = {"name",  "in_front_of", "enabled",
                                       "rules", "background",  NULL};
    char p[SCN_PATH_MAX], q[SCN_PATH_MAX];
    const scn_node *v;
    SCN_TRY(scn_want_map(d, n, path));
    SCN_TRY(scn_check_keys(d, n, path, KEYS));
    c->loc = n->loc;
    c->enabled = 1;
    c->background = SIM_SCN_BG_DEFAULT;
    if ((v = scn_opt(n, path, "background", p)))
        SCN_TRY(decode_background(d, v, p, &c->background));
    SCN_TRY(scn_need_at(d, n, path, "name", &v, p));
    SCN_TRY(scn_get_name(d, v, p, &c->name));
    for (size_t i = 0; i < idx; i++)
        if (!strcmp(d->s->censors[i].name, c->name))
            return scn_duplicate(d, v, "censor", &d->s->censors[i].loc);
    SCN_TRY(scn_need_at(d, n, path, "in_front_of", &v, p));
    if (v->kind == SCN_SCALAR) { /* one name: a list of one */
        sim_scn_ref *ref = scn_arena_alloc(d->a, sizeof *ref);
        if (!ref)
            return scn_nomem(d, v);
        SCN_TRY(scn_get_site_ref(d, v, p, ref));
        c->targets = ref;
        c->target_count = 1;
    } else {
        SCN_TRY(scn_get_site_list(d, v, p, &c->targets, &c->target_count));
    }
    if ((v = scn_opt(n, path, "enabled", p)))
        SCN_TRY(scn_get_bool(d, v, p, &c->enabled));
    SCN_TRY(scn_need_at(d, n, path, "rules", &v, p));
    SCN_TRY(scn_want_list(d, v, p, SIM_SCN_MAX_RULES, "SIM_SCN_MAX_RULES"));
    if (scn_list_len(v) == 0)
        return sim_scn_error(d->err, d->errlen, MESH_ERR_MALFORMED, &v->loc,
                             "give one rule or more", "empty list %s", p);
    sim_scn_rule *rules = scn_arena_alloc(d->a, v->n * sizeof *rules);
    if (!rules)
        return scn_nomem(d, v);
    size_t i = 0;
    for (const scn_node *e = v->first; e; e = e->next, i++) {
        scn_itempath(q, p, i);
        SCN_TRY(decode_rule(d, e, q, i, rules));
    }
    c->rules = rules;
    c->rule_count = v->n;
    return MESH_OK;
}

const char *sim_scn_nat_behaviour_name(int b)
{
    return b >= 0 && b < 3 ? NAT_BEHAVIOURS[b] : "?";
}

const char *sim_scn_action_name(int action)
{
    return action >= 0 && action < 4 ? ACTIONS[action] : "?";
}
