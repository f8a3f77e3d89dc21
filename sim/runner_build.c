/* runner_build.c — the world a run builds from its scenario (see runner_int.h): the core's
 * latency model, LANs with their site links and NATs, one host and driver per node, censors
 * in front of their targets and the background HTTPS that measures their collateral damage.
 * Every address and random stream comes from the scenario and its seed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/runner_int.h"

_Static_assert((int)SIM_SCN_MAX_RULES <= (int)SIM_CENSOR_MAX_RULES,
               "a scenario censor fits the model");
_Static_assert((int)SIM_SCN_MAX_NAT_DEPTH <= (int)SIM_NET_MAX_LAN_DEPTH,
               "a scenario's chain of LANs fits the network model");

/* ---- latency of the core ------------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static size_t region_of_attach(const runner *r, uint64_t attach)
{
    if (attach & SIM_NET_ATTACH_HOST) {
        uint64_t h = attach & ~SIM_NET_ATTACH_HOST;
        return h < r->nhost_ids ? r->host_region_of_id[h] : SIM_SCN_NO_REGION;
    }
    return attach < r->nlan_ids ? r->lan_region_of_id[attach] : SIM_SCN_NO_REGION;
}

/* A pure function of (seed, the unordered pair): the same latency both ways, every packet. */
mesh_time rn_core_latency(void *ud, uint64_t from, uint64_t to)
{
    const runner *r = ud;
    const sim_scn_core *c = &r->scn->core;
    if (c->model == SIM_SCN_LAT_UNIFORM) {
        uint64_t a = from < to ? from : to, b = from < to ? to : from;
        uint64_t h = mix64(mix64(r->scn->seed ^ RN_STREAM_LATENCY) ^ mix64(a) ^ (b * 31));
        return c->lat_min + h % (c->lat_max - c->lat_min + 1);
    }
    size_t ra = region_of_attach(r, from), rb = region_of_attach(r, to);
    if (ra == SIM_SCN_NO_REGION || rb == SIM_SCN_NO_REGION)
        return c->latency;
    return c->matrix[ra * c->region_count + rb];
}

/* ---- building the network -------------------------------------------------------------- */

static sim_link_cfg link_of(const sim_scn_link *l)
{
    sim_link_cfg c = {0};
    c.latency = l->latency;
    c.jitter = l->jitter;
    c.rate_bps = l->bandwidth_bps;
    c.queue_bytes = (uint32_t)(l->queue_bytes > UINT32_MAX ? UINT32_MAX : l->queue_bytes);
    c.loss = l->loss;
    return c;
}

/* Apply the fields a link change names onto a current configuration. */
void rn_link_merge(sim_link_cfg *c, const sim_scn_link *l)
{
    if (l->set & SIM_SCN_LINK_LATENCY)
        c->latency = l->latency;
    if (l->set & SIM_SCN_LINK_JITTER)
        c->jitter = l->jitter;
    if (l->set & SIM_SCN_LINK_BANDWIDTH)
        c->rate_bps = l->bandwidth_bps;
    if (l->set & SIM_SCN_LINK_QUEUE)
        c->queue_bytes = (uint32_t)(l->queue_bytes > UINT32_MAX ? UINT32_MAX : l->queue_bytes);
    if (l->set & SIM_SCN_LINK_LOSS)
        c->loss = l->loss;
}

/* NAT decisions worth an events row: inbound refused, hairpin refused, table full, port
 * mappings granted (per-packet passes and new mappings would drown the table). */
#define RN_NAT_OBSERVE                                                                             \
    ((1u << SIM_NAT_EV_IN_NO_MAPPING) | (1u << SIM_NAT_EV_IN_FILTERED) |                           \
     (1u << SIM_NAT_EV_IN_RST) | (1u << SIM_NAT_EV_HAIRPIN_DROP) | (1u << SIM_NAT_EV_LIMIT_DROP) | \
     (1u << SIM_NAT_EV_PORTMAP_ADD))

static void on_nat_event(void *ud, const sim_nat_event *ev)
{
    runner *r = ud;
    static const char *const names[SIM_NAT_EV_KINDS] = {
        [SIM_NAT_EV_IN_NO_MAPPING] = "inbound_no_mapping",
        [SIM_NAT_EV_IN_FILTERED] = "inbound_filtered",
        [SIM_NAT_EV_IN_RST] = "inbound_rst",
        [SIM_NAT_EV_HAIRPIN_DROP] = "hairpin_drop",
        [SIM_NAT_EV_LIMIT_DROP] = "limit_drop",
        [SIM_NAT_EV_PORTMAP_ADD] = "portmap_add",
    };
    const char *name =
        ev->kind >= 0 && ev->kind < SIM_NAT_EV_KINDS && names[ev->kind] ? names[ev->kind] : "other";
    char src[MESH_ADDR_STRLEN], dst[MESH_ADDR_STRLEN], in[MESH_ADDR_STRLEN], ex[MESH_ADDR_STRLEN],
        d[320];
    snprintf(d, sizeof d, "%s src=%s dst=%s internal=%s external=%s", name,
             mesh_addr_format(&ev->src, src, sizeof src),
             mesh_addr_format(&ev->dst, dst, sizeof dst),
             mesh_addr_format(&ev->internal, in, sizeof in),
             mesh_addr_format(&ev->external, ex, sizeof ex));
    rn_event(r, -1, SIM_RES_EV_NAT, -1, MESH_OK, d);
}

static sim_nat_cfg nat_cfg_of(const sim_scn_nat *n)
{
    sim_nat_cfg c = {0};
    c.mapping = (uint8_t)n->mapping;
    c.filtering = (uint8_t)n->filtering;
    c.port_alloc = n->port_preserve ? SIM_NAT_PORT_PRESERVE : SIM_NAT_PORT_RANDOM;
    c.hairpin = n->hairpin;
    c.portmap = n->upnp;
    c.natpmp = n->natpmp;
    c.udp_timeout = n->udp_timeout;
    c.tcp_timeout = n->tcp_timeout;
    return c;
}

static int fail(runner *r, int rc, const char *fmt, const char *what)
{
    snprintf(r->err, r->errlen, fmt, what, mesh_strerror(rc));
    return rc;
}

void rn_group_nat_chain(const sim_scenario *s, size_t g, sim_nat_chain *out)
{
    memset(out, 0, sizeof *out);
    const sim_scn_group *gr = &s->groups[g];
    if (gr->lan == SIM_SCN_INTERNET)
        return;
    if (gr->nat.present) {
        sim_nat_cfg c = nat_cfg_of(&gr->nat);
        out->hop[out->n++] = sim_nat_hop_of(&c);
    }
    for (size_t l = gr->lan; l != SIM_SCN_CORE && out->n < SIM_NET_MAX_LAN_DEPTH;
         l = s->lans[l].upstream)
        if (s->lans[l].nat.present) {
            sim_nat_cfg c = nat_cfg_of(&s->lans[l].nat);
            out->hop[out->n++] = sim_nat_hop_of(&c);
        }
}

/* The next address on scenario LAN i for a host or a router behind it. */
static uint32_t inside_addr(runner *r, size_t i)
{
    if (!sim_lan_is_private(r->lans[i]))
        return r->next_public++;
    return (r->lan_carrier[i] ? RN_ADDR_CARRIER : RN_ADDR_PRIVATE) + r->lan_next[i]++;
}

int rn_build_lans(runner *r)
{
    const sim_scenario *s = r->scn;
    size_t n = s->lan_count;
    r->lans = calloc(n ? n : 1, sizeof *r->lans);
    r->lan_links = calloc(n ? n : 1, sizeof *r->lan_links);
    r->lan_nats = calloc(n ? n : 1, sizeof *r->lan_nats);
    r->lan_next = calloc(n ? n : 1, sizeof *r->lan_next);
    r->lan_carrier = calloc(n ? n : 1, sizeof *r->lan_carrier);
    r->nats = calloc(n + s->node_count + 1, sizeof *r->nats);
    if (!r->lans || !r->lan_links || !r->lan_nats || !r->lan_next || !r->lan_carrier || !r->nats)
        return MESH_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        if (s->lans[i].upstream != SIM_SCN_CORE)
            r->lan_carrier[s->lans[i].upstream] = 1;
    for (size_t g = 0; g < s->group_count; g++)
        if (s->groups[g].nat.present && s->groups[g].lan != SIM_SCN_INTERNET)
            r->lan_carrier[s->groups[g].lan] = 1;
    for (size_t i = 0; i < n; i++) { /* upstreams come first (the loader's rule) */
        const sim_scn_lan *l = &s->lans[i];
        sim_lan_cfg c = {0};
        c.name = l->name;
        c.up = c.down = r->lan_links[i] = link_of(&l->link);
        c.is_private = l->is_private;
        if (l->upstream != SIM_SCN_CORE) {
            c.upstream = r->lans[l->upstream];
            c.public_ip = inside_addr(r, l->upstream);
        } else {
            c.public_ip = r->next_lan_public++;
        }
        int rc = sim_net_add_lan(r->net, &c, &r->lans[i]);
        if (rc != MESH_OK)
            return fail(r, rc, "LAN %s: %s", l->name);
    }
    return MESH_OK;
}

static int add_nat(runner *r, sim_lan *lan, const sim_scn_nat *sn, sim_nat **out)
{
    sim_nat_cfg c = nat_cfg_of(sn);
    int rc = sim_nat_new(out, r->net, lan, &c);
    if (rc != MESH_OK)
        return rc;
    sim_nat_set_observer(*out, on_nat_event, r, RN_NAT_OBSERVE);
    r->nats[r->nnats++] = *out;
    return MESH_OK;
}

/* NATs go on after the censors, so a censor on a LAN sees its hosts' own addresses; then each
 * node's driver gets the port-mapping service of the NAT nearest to it (none: no gateway). */
int rn_build_lan_nats(runner *r)
{
    const sim_scenario *s = r->scn;
    int rc;
    for (size_t i = 0; i < s->lan_count; i++) {
        const sim_scn_lan *l = &s->lans[i];
        if (l->nat.present && (rc = add_nat(r, r->lans[i], &l->nat, &r->lan_nats[i])) != MESH_OK)
            return fail(r, rc, "NAT of LAN %s: %s", l->name);
    }
    for (uint32_t k = 0; k < s->node_count; k++) {
        rn_node *n = &r->nodes[k];
        const sim_scn_group *g = &s->groups[n->group];
        if (g->nat.present && (rc = add_nat(r, n->lan, &g->nat, &n->own_nat)) != MESH_OK)
            return fail(r, rc, "NAT of group %s: %s", g->name);
        sim_nat *gw = n->own_nat                   ? n->own_nat
                      : g->lan != SIM_SCN_INTERNET ? r->lan_nats[g->lan]
                                                   : NULL;
        if ((rc = sim_driver_enable_portmap(n->drv, gw)) != MESH_OK)
            return fail(r, rc, "port mapping of group %s: %s", g->name);
    }
    return MESH_OK;
}

static int grow_regions(size_t **arr, size_t *n, size_t need)
{
    if (need <= *n)
        return MESH_OK;
    size_t nn = *n ? *n : 64;
    while (nn < need)
        nn *= 2;
    size_t *a = realloc(*arr, nn * sizeof *a);
    if (!a)
        return MESH_ERR_NOMEM;
    for (size_t i = *n; i < nn; i++)
        a[i] = SIM_SCN_NO_REGION;
    *arr = a;
    *n = nn;
    return MESH_OK;
}

/* The address the world outside its LANs sees the host at: the public address of the
 * outermost private LAN above it (its own when there is none), and whether that is the host's
 * own (reachable without a port mapping). */
static uint32_t outside_ip(const sim_host *h, int *own)
{
    uint32_t ip = sim_host_ip(h);
    *own = 1;
    for (const sim_lan *l = sim_host_lan(h); l; l = sim_lan_upstream(l))
        if (sim_lan_is_private(l)) {
            ip = sim_lan_public_ip(l);
            *own = 0;
        }
    return ip;
}

/* A node alone behind its own router (its group's nat:): a one-host LAN behind the group's
 * LAN, its router's public address one of that LAN's; the site link is ideal (the host's
 * access link carries the link's figures). */
static int router_lan(runner *r, const sim_scn_group *gr, const char *name, sim_lan **out)
{
    sim_lan_cfg c = {0};
    c.name = name;
    c.is_private = 1;
    c.upstream = r->lans[gr->lan];
    c.public_ip = inside_addr(r, gr->lan);
    return sim_net_add_lan(r->net, &c, out);
}

/* A stun-role node's STUN server: its host plus a partner host on the core holding the second
 * address RFC 5780 needs (same access link and region; addresses from their own block). */
static int build_stun(runner *r, rn_node *n, const sim_host_cfg *node_hc)
{
    char name[SIM_SCN_MAX_NAME + 24];
    snprintf(name, sizeof name, "%s-stun-alt", node_hc->name);
    sim_host_cfg hc = *node_hc;
    hc.name = name;
    hc.ip = RN_ADDR_STUN_ALT + r->next_stun_alt++;
    sim_host *alt = NULL;
    int rc = sim_net_add_host(r->net, &hc, &alt);
    if (rc == MESH_OK)
        rc = grow_regions(&r->host_region_of_id, &r->nhost_ids, sim_host_id(alt) + 1);
    if (rc != MESH_OK)
        return rc;
    r->host_region_of_id[sim_host_id(alt)] = r->scn->groups[n->group].region;
    return sim_stun_host_new(&r->stuns[r->nstun++], r->w, n->host, alt);
}

/* Node k of group g: its host (addressed by the plan in runner_int.h), driver and identity. */
static int build_node(runner *r, size_t g, uint32_t k)
{
    const sim_scn_group *gr = &r->scn->groups[g];
    rn_node *n = &r->nodes[gr->first_node + k];
    n->r = r;
    n->idx = gr->first_node + k;
    n->group = g;
    n->link = link_of(&gr->link);
    char name[SIM_SCN_MAX_NAME + 16];
    snprintf(name, sizeof name, "%s-%u", gr->name, k);
    sim_host_cfg hc = {0};
    hc.name = name;
    hc.up = hc.down = n->link;
    int rc;
    if (gr->lan != SIM_SCN_INTERNET && gr->nat.present) {
        if ((rc = router_lan(r, gr, name, &n->lan)) != MESH_OK)
            return rc;
        hc.lan = n->lan; /* its router's NAT comes with the LANs' (rn_build_lan_nats) */
        hc.ip = RN_ADDR_HOME;
    } else if (gr->lan != SIM_SCN_INTERNET) {
        n->lan = r->lans[gr->lan]; /* its NAT (lan_nats) comes later, at join */
        hc.lan = n->lan;
        hc.ip = inside_addr(r, gr->lan);
    } else {
        hc.ip = r->next_public++;
    }
    if ((rc = sim_net_add_host(r->net, &hc, &n->host)) != MESH_OK)
        return rc;
    if ((rc = grow_regions(&r->host_region_of_id, &r->nhost_ids, sim_host_id(n->host) + 1)) !=
        MESH_OK)
        return rc;
    r->host_region_of_id[sim_host_id(n->host)] = gr->region;
    n->outside = mesh_addr_v4(outside_ip(n->host, &n->public_host), MESH_RUNNER_NODE_PORT);
    n->public_addr = n->outside;
    n->reachable = n->public_host;
    if ((rc = sim_driver_new(&n->drv, r->w, n->host)) != MESH_OK)
        return rc;
    n->env = sim_driver_env(n->drv);
    if ((rc = rn_node_identity_new(n)) != MESH_OK)
        return rc;
    if (gr->mdns && n->lan && (rc = sim_driver_enable_mdns(n->drv)) != MESH_OK)
        return rc;
    if (gr->role == SIM_SCN_ROLE_BOOTSTRAP)
        r->boot[r->nboot++] = n->idx;
    if (gr->relay_service)
        r->relays[r->nrelays++] = n->idx;
    if (gr->role == SIM_SCN_ROLE_STUN)
        return build_stun(r, n, &hc);
    return MESH_OK;
}

int rn_build_nodes(runner *r)
{
    const sim_scenario *s = r->scn;
    r->nodes = calloc(s->node_count ? s->node_count : 1, sizeof *r->nodes);
    r->boot = calloc(s->node_count ? s->node_count : 1, sizeof *r->boot);
    r->relays = calloc(s->node_count ? s->node_count : 1, sizeof *r->relays);
    r->stuns = calloc(s->node_count ? s->node_count : 1, sizeof *r->stuns);
    if (!r->nodes || !r->boot || !r->relays || !r->stuns)
        return MESH_ERR_NOMEM;
    int rc = MESH_OK;
    for (size_t g = 0; g < s->group_count && rc == MESH_OK; g++) {
        const sim_scn_group *gr = &s->groups[g];
        for (uint32_t k = 0; k < gr->count && rc == MESH_OK; k++)
            rc = build_node(r, g, k);
        if (rc != MESH_OK)
            snprintf(r->err, r->errlen, "group %s: node setup failed: %s", gr->name,
                     mesh_strerror(rc));
    }
    /* LAN regions */
    for (size_t i = 0; i < s->lan_count && rc == MESH_OK; i++) {
        rc = grow_regions(&r->lan_region_of_id, &r->nlan_ids, sim_lan_id(r->lans[i]) + 1);
        if (rc == MESH_OK)
            r->lan_region_of_id[sim_lan_id(r->lans[i])] = s->lans[i].region;
    }
    return rc;
}

/* ---- censors --------------------------------------------------------------------------------- */

static void on_censor_decision(void *ud, const sim_censor_decision *d)
{
    runner *r = ud;
    char detail[SIM_CENSOR_WHAT_MAX + 160], c[MESH_ADDR_STRLEN], s[MESH_ADDR_STRLEN];
    snprintf(detail, sizeof detail, "rule=%s action=%s%s label=%s client=%s server=%s %s",
             d->rule_name, sim_censor_action_name(d->action), d->residual ? " residual=1" : "",
             d->label == SIM_CENSOR_LABEL_BACKGROUND ? "background"
             : d->label == SIM_CENSOR_LABEL_MESHARA  ? "meshara"
                                                     : "unknown",
             mesh_addr_format(&d->client, c, sizeof c), mesh_addr_format(&d->server, s, sizeof s),
             d->what ? d->what : "");
    rn_event(r, -1, SIM_RES_EV_CENSOR, -1, MESH_OK, detail);
}

/* Ground truth for the censor's statistics: Meshara nodes listen on MESH_RUNNER_NODE_PORT;
 * background servers live in their own address block. */
static int classify_flow(void *ud, const mesh_addr *client, const mesh_addr *server, uint8_t proto)
{
    (void)ud;
    (void)client;
    if (proto != SIM_PROTO_TCP)
        return SIM_CENSOR_LABEL_UNKNOWN;
    uint32_t ip = sim_addr_ip4(server);
    if (ip >= RN_ADDR_BG_HOSTS && ip < RN_ADDR_BG_HOSTS + (1u << 20))
        return SIM_CENSOR_LABEL_BACKGROUND;
    return server->port == MESH_RUNNER_NODE_PORT ? SIM_CENSOR_LABEL_MESHARA
                                                 : SIM_CENSOR_LABEL_UNKNOWN;
}

int rn_censor_rule_of(const sim_scn_rule *sr, const char (*web_ja3)[SIM_HTTPS_JA3_LEN + 1],
                      sim_censor_rule *out)
{
    memset(out, 0, sizeof *out);
    out->name = sr->name;
    sim_censor_match *m = &out->match;
    if (sr->match & SIM_SCN_MATCH_DST_IP) {
        m->dst_ip = sr->dst_ip;
        m->dst_prefix = sr->dst_prefix;
    }
    if (sr->match & SIM_SCN_MATCH_DST_PORT) {
        m->proto = SIM_PROTO_TCP;
        m->dst_port_lo = sr->port_min;
        m->dst_port_hi = sr->port_max;
    }
    if (sr->match & SIM_SCN_MATCH_SNI) {
        if (strncmp(sr->sni, "*.", 2) == 0) {
            m->sni = sr->sni + 2;
            m->sni_suffix = SIM_CENSOR_SNI_SUBDOMAINS;
        } else {
            m->sni = sr->sni;
        }
    }
    if (sr->match & SIM_SCN_MATCH_ALPN)
        m->alpn = sr->alpn;
    if (sr->match & SIM_SCN_MATCH_JA3) {
        int ip = !strcmp(sr->ja3, SIM_SCN_JA3_WEB_IP);
        m->ja3_md5 = ip || !strcmp(sr->ja3, SIM_SCN_JA3_WEB)
                         ? web_ja3 ? web_ja3[ip] : "00000000000000000000000000000000"
                         : sr->ja3;
    }
    if (sr->match & SIM_SCN_MATCH_FIRST_LEN) {
        m->len_min = (uint32_t)sr->len_min;
        m->len_max = (uint32_t)(sr->len_max > UINT32_MAX ? UINT32_MAX : sr->len_max);
    }
    if (sr->match & SIM_SCN_MATCH_ENTROPY) {
        m->entropy_min = sr->entropy_min;
        m->entropy_max = sr->entropy_max;
    }
    switch (sr->action) {
    case SIM_SCN_ACT_DROP:
        out->action = SIM_CENSOR_DROP;
        break;
    case SIM_SCN_ACT_RST:
        out->action = SIM_CENSOR_RST;
        break;
    case SIM_SCN_ACT_THROTTLE:
        out->action = SIM_CENSOR_THROTTLE;
        out->rate_bps = sr->throttle_bps;
        out->burst_bytes = 16384;
        break;
    default: /* probe: sim_run_check refuses it before anything is built */
        return MESH_ERR_UNSUPPORTED;
    }
    out->residual = sr->residual;
    return MESH_OK;
}

/* The node's JA3s into r->web_ja3. The hellos are made on the TLS env with its random
 * stream swapped for one of their own, so a scenario's other draws do not move when a rule
 * names them. Every web-profile node's client is mesh_tls_web_client_new's, the background
 * curl client's too. */
static int web_ja3(runner *r)
{
    if (r->web_ja3[0][0])
        return MESH_OK;
    sim_rng saved = r->tls_rng;
    sim_rng_derive(&r->tls_rng, r->scn->seed, RN_STREAM_JA3);
    int rc = sim_https_curl_ja3(&r->tls_env, "meshara-ja3.example", r->web_ja3[0]);
    if (rc == MESH_OK)
        rc = sim_https_curl_ja3(&r->tls_env, NULL, r->web_ja3[1]);
    r->tls_rng = saved;
    return rc;
}

int rn_build_censors(runner *r)
{
    const sim_scenario *s = r->scn;
    r->censors = calloc(s->censor_count ? s->censor_count : 1, sizeof *r->censors);
    if (!r->censors)
        return MESH_ERR_NOMEM;
    for (size_t i = 0; i < s->censor_count; i++) {
        const sim_scn_censor *sc = &s->censors[i];
        sim_censor_cfg cfg = {.name = sc->name, .start_disabled = !sc->enabled};
        int rc = sim_censor_new(&r->censors[i], &cfg);
        if (rc != MESH_OK)
            return fail(r, rc, "censor %s: %s", sc->name);
        sim_censor *c = r->censors[i];
        sim_censor_set_decision_cb(c, on_censor_decision, r);
        sim_censor_set_classifier(c, classify_flow, r);
        for (size_t k = 0; k < sc->rule_count; k++) {
            sim_censor_rule cr;
            const sim_scn_rule *sr = &sc->rules[k];
            if ((sr->match & SIM_SCN_MATCH_JA3) && strncmp(sr->ja3, SIM_SCN_JA3_WEB, 11) == 0 &&
                (rc = web_ja3(r)) != MESH_OK)
                return fail(r, rc, "censor %s: the node's JA3: %s", sc->name);
            if ((rc = rn_censor_rule_of(sr, (const char(*)[SIM_HTTPS_JA3_LEN + 1]) r->web_ja3,
                                        &cr)) != MESH_OK ||
                (rc = sim_censor_add_rule(c, &cr, NULL)) != MESH_OK) {
                snprintf(r->err, r->errlen, "%s:%u:%u: censor rule refused: %s",
                         sc->rules[k].loc.origin, sc->rules[k].loc.line, sc->rules[k].loc.col,
                         mesh_strerror(rc));
                return rc;
            }
        }
        for (size_t t = 0; t < sc->target_count; t++) {
            const sim_scn_ref *ref = &sc->targets[t];
            if (ref->kind == SIM_SCN_REF_LAN) {
                rc = sim_censor_attach_lan(c, r->net, r->lans[ref->index]);
            } else {
                const sim_scn_group *g = &s->groups[ref->index];
                for (uint32_t k = 0; k < g->count && rc == MESH_OK; k++)
                    rc = sim_censor_attach_host(c, r->net, r->nodes[g->first_node + k].host);
            }
            if (rc != MESH_OK)
                return fail(r, rc, "censor %s: cannot attach: %s", sc->name);
        }
    }
    return MESH_OK;
}

/* ---- background HTTPS ------------------------------------------------------------------ */

static int bg_host(runner *r, const char *name, sim_lan *lan, uint32_t ip, sim_host **out)
{
    sim_host_cfg hc = {0};
    hc.name = name;
    hc.lan = lan;
    hc.ip = ip;
    hc.up = hc.down = link_of(&r->scn->access);
    return sim_net_add_host(r->net, &hc, out);
}

/* One ordinary HTTPS client behind each censor target, all fetching from one server on the
 * core, so the censor's collateral damage is measured on the same path as Meshara's. */
int rn_build_background(runner *r)
{
    const sim_scenario *s = r->scn;
    size_t clients = 0;
    for (size_t i = 0; i < s->censor_count; i++)
        clients +=
            s->censors[i].target_count * (size_t)__builtin_popcount(s->censors[i].background);
    if (clients == 0)
        return MESH_OK;
    uint32_t next_bg = RN_ADDR_BG_HOSTS;
    int rc = bg_host(r, "bg-server", NULL, next_bg++, &r->bg_server_host);
    if (rc == MESH_OK)
        rc = sim_driver_new(&r->bg_server_drv, r->w, r->bg_server_host);
    if (rc != MESH_OK)
        return fail(r, rc, "background server %s: %s", "bg-server");
    mesh_env senv = sim_driver_env(r->bg_server_drv);
    if ((rc = sim_https_server_new(&r->bg_server, &senv, NULL)) != MESH_OK)
        return fail(r, rc, "background server %s: %s", "bg-server");
    r->bg_drvs = calloc(clients, sizeof *r->bg_drvs);
    r->bg_clients = calloc(clients, sizeof *r->bg_clients);
    if (!r->bg_drvs || !r->bg_clients)
        return MESH_ERR_NOMEM;
    uint32_t *lan_next = calloc(s->lan_count ? s->lan_count : 1, sizeof *lan_next);
    if (!lan_next)
        return MESH_ERR_NOMEM;
    for (size_t i = 0; i < s->censor_count && rc == MESH_OK; i++) {
        const sim_scn_censor *sc = &s->censors[i];
        for (size_t t = 0; t < sc->target_count * SIM_SCN_BG_KINDS && rc == MESH_OK; t++) {
            int kind = (int)(t % SIM_SCN_BG_KINDS); /* each kind asked for, per target */
            if (!(sc->background & 1u << kind))
                continue;
            const sim_scn_ref *ref = &sc->targets[t / SIM_SCN_BG_KINDS];
            char name[SIM_SCN_MAX_NAME * 2 + 32];
            static const char *const SUFFIX[] = {"", "-curl", "-curl-ip"};
            snprintf(name, sizeof name, "bg-%s-%zu%s", sc->name, t / SIM_SCN_BG_KINDS,
                     SUFFIX[kind]);
            sim_lan *lan = NULL;
            uint32_t ip = next_bg++;
            size_t li = ref->kind == SIM_SCN_REF_LAN ? ref->index : s->groups[ref->index].lan;
            if (li != SIM_SCN_INTERNET) {
                lan = r->lans[li];
                /* private LANs: addresses above the nodes' (10.0.128.0 on) */
                if (sim_lan_is_private(lan))
                    ip = SIM_IP4(10, 0, 128, 0) + ++lan_next[li];
            }
            sim_host *h = NULL;
            rc = bg_host(r, name, lan, ip, &h);
            if (rc == MESH_OK && ref->kind == SIM_SCN_REF_GROUP)
                rc = sim_censor_attach_host(r->censors[i], r->net, h);
            if (rc == MESH_OK)
                rc = sim_driver_new(&r->bg_drvs[r->nbg], r->w, h);
            if (rc != MESH_OK)
                break;
            mesh_env env = sim_driver_env(r->bg_drvs[r->nbg]);
            sim_https_client_cfg cc = {0};
            cc.server = mesh_addr_v4(RN_ADDR_BG_HOSTS, sim_https_server_addr(r->bg_server).port);
            cc.response_bytes = SIM_RUNNER_BG_RESPONSE;
            cc.interval = SIM_RUNNER_BG_INTERVAL_MS * MESH_NS_PER_MS;
            cc.jitter = cc.interval / 2;
            cc.kind = kind == SIM_SCN_BG_OPENSSL ? SIM_HTTPS_OPENSSL : SIM_HTTPS_CURL;
            char addr[MESH_ADDR_STRLEN];
            if (kind == SIM_SCN_BG_CURL_IP) /* https://ADDR/: no server name */
                cc.sni = mesh_addr_format(&cc.server, addr, sizeof addr);
            rc = sim_https_client_new(&r->bg_clients[r->nbg], &env, &cc);
            r->nbg++;
        }
    }
    free(lan_next);
    if (rc != MESH_OK)
        snprintf(r->err, r->errlen, "background HTTPS client: %s", mesh_strerror(rc));
    return rc;
}
