/* reach.c — a node's reachability per address family (reach.h): claims in a small table,
 * agreement of distinct observers, and the state derived from what is believed.
 */
#include "core/reach.h"

#include <stdlib.h>
#include <string.h>

#include "core/stun_client.h"

_Static_assert(MESH_STUN_BEHAVIOUR_NO_NAT == 1 && MESH_STUN_BEHAVIOUR_ADDRESS_PORT_DEPENDENT == 4,
               "mesh_node_reach.nat_mapping documents these values");

typedef struct claim {
    int used;
    uint8_t id[MESH_REACH_ID_LEN];
    uint8_t group[8]; /* the observer's network: IPv4 /24, IPv6 /64 */
    mesh_addr local, observed;
    mesh_time at;
} claim;

typedef struct fam {
    claim c[MESH_REACH_MAX_CLAIMS];
    int have_agreed;  /* an IP is believed */
    mesh_addr agreed; /* the believed IP (port: the latest supporter's observation) */
    int supporters;
    int translated; /* the believed IP is not the local one */
    int mapped;     /* a port mapping is held at `mapping` */
    mesh_addr mapping;
    int relayed;
    int nat_mapping, nat_filtering;
    uint64_t claims, changes;
    mesh_node_reach view; /* what was last derived (to see changes) */
} fam;

struct mesh_reach {
    mesh_reach_cfg cfg;
    fam f[2]; /* IPv4, IPv6 */
};

static fam *fam_of(mesh_reach *r, int family)
{
    return family == MESH_AF_INET4 ? &r->f[0] : family == MESH_AF_INET6 ? &r->f[1] : NULL;
}

static size_t ip_len(const mesh_addr *a)
{
    return a->family == MESH_AF_INET4 ? 4 : 16;
}

static int same_ip(const mesh_addr *a, const mesh_addr *b)
{
    return a->family == b->family && memcmp(a->ip, b->ip, ip_len(a)) == 0;
}

static void group_of(const mesh_addr *a, uint8_t g[8])
{
    memset(g, 0, 8);
    memcpy(g, a->ip, a->family == MESH_AF_INET4 ? 3 : 8);
}

int mesh_reach_new(mesh_reach **out, const mesh_reach_cfg *cfg)
{
    if (!out || (cfg && cfg->min_agree < 0))
        return MESH_ERR_INVAL;
    mesh_reach *r = calloc(1, sizeof *r);
    if (!r)
        return MESH_ERR_NOMEM;
    if (cfg)
        r->cfg = *cfg;
    if (!r->cfg.min_agree)
        r->cfg.min_agree = MESH_REACH_DEFAULT_AGREE;
    if (!r->cfg.ttl)
        r->cfg.ttl = MESH_REACH_DEFAULT_TTL;
    *out = r;
    return MESH_OK;
}

void mesh_reach_free(mesh_reach *r)
{
    free(r);
}

void mesh_reach_set_port(mesh_reach *r, uint16_t port)
{
    r->cfg.port = port;
}

const char *mesh_reach_state_name(int state)
{
    static const char *const names[] = {"unknown", "public", "mapped", "nat", "relayed"};
    return (unsigned)state < sizeof names / sizeof names[0] ? names[state] : "?";
}

/* ---- derivation --------------------------------------------------------------------------- */

static void derive(const mesh_reach *r, const fam *f, mesh_node_reach *v)
{
    memset(v, 0, sizeof *v);
    v->nat_mapping = f->nat_mapping;
    v->nat_filtering = f->nat_filtering;
    v->claims = f->claims;
    v->changes = f->changes;
    v->observers = f->have_agreed ? f->supporters : 0;
    int stun_nat = f->nat_mapping > MESH_STUN_BEHAVIOUR_NO_NAT;
    if (f->have_agreed && !f->translated) {
        v->state = MESH_NODE_REACH_PUBLIC;
        v->external = f->agreed;
        v->external.port = r->cfg.port;
    } else if (f->mapped) {
        v->state = MESH_NODE_REACH_MAPPED;
        v->external = f->mapping;
    } else if (f->relayed) {
        v->state = MESH_NODE_REACH_RELAYED;
        if (f->have_agreed) /* still our NAT's address: hole punching offers it */
            v->external = f->agreed;
    } else if (f->have_agreed || stun_nat) {
        v->state = MESH_NODE_REACH_NAT;
        if (f->have_agreed)
            v->external = f->agreed;
    }
}

/* Re-derive the view; 1 if its state or external address changed (counted). */
static int update(mesh_reach *r, fam *f)
{
    mesh_node_reach v;
    derive(r, f, &v);
    int changed = v.state != f->view.state || !mesh_addr_equal(&v.external, &f->view.external);
    if (changed)
        v.changes = ++f->changes;
    f->view = v;
    return changed;
}

/* The IP most live claims saw, if believed (reach.h: min_agree, strictly most, ties keep the
 * IP believed so far). */
static void agree(const mesh_reach *r, fam *f)
{
    int best = -1, best_n = 0, second_n = 0, cur_n = 0;
    for (int i = 0; i < MESH_REACH_MAX_CLAIMS; i++) {
        if (!f->c[i].used)
            continue;
        int n = 0, first = 1;
        for (int j = 0; j < MESH_REACH_MAX_CLAIMS; j++) {
            if (!f->c[j].used || !same_ip(&f->c[j].observed, &f->c[i].observed))
                continue;
            first &= j >= i;
            n++;
        }
        if (!first)
            continue; /* this IP was counted at its first claim */
        if (f->have_agreed && same_ip(&f->c[i].observed, &f->agreed))
            cur_n = n;
        if (n > best_n) {
            second_n = best_n;
            best_n = n;
            best = i;
        } else if (n > second_n) {
            second_n = n;
        }
    }
    if (f->have_agreed && cur_n >= r->cfg.min_agree && cur_n == best_n) {
        f->supporters = cur_n; /* a tie keeps what is believed */
        return;
    }
    f->have_agreed = best >= 0 && best_n >= r->cfg.min_agree && best_n > second_n;
    if (!f->have_agreed) {
        f->supporters = 0;
        return;
    }
    f->supporters = best_n;
    f->agreed = f->c[best].observed;
}

/* After agree(): the latest supporter's port and whether the IP was translated. */
static void refresh_agreed(fam *f)
{
    const claim *latest = NULL;
    for (int i = 0; i < MESH_REACH_MAX_CLAIMS && f->have_agreed; i++)
        if (f->c[i].used && same_ip(&f->c[i].observed, &f->agreed) &&
            (!latest || f->c[i].at >= latest->at))
            latest = &f->c[i];
    if (!latest)
        return;
    f->agreed = latest->observed;
    f->translated = !same_ip(&latest->local, &latest->observed);
}

/* ---- inputs ------------------------------------------------------------------------------- */

/* The slot for a claim by id from group: its earlier claim, its group's, a free one, or the
 * oldest. */
static claim *slot_for(fam *f, const uint8_t *id, const uint8_t *group)
{
    claim *free_slot = NULL, *oldest = NULL;
    for (int i = 0; i < MESH_REACH_MAX_CLAIMS; i++) {
        claim *c = &f->c[i];
        if (!c->used) {
            free_slot = free_slot ? free_slot : c;
            continue;
        }
        if (memcmp(c->id, id, MESH_REACH_ID_LEN) == 0 || memcmp(c->group, group, 8) == 0)
            return c;
        if (!oldest || c->at < oldest->at)
            oldest = c;
    }
    return free_slot ? free_slot : oldest;
}

int mesh_reach_observed(mesh_reach *r, mesh_time now, const uint8_t *id, size_t idlen,
                        const mesh_addr *peer, const mesh_addr *local, const mesh_addr *observed)
{
    if (!r || !id || idlen < MESH_REACH_ID_LEN || !peer || !local || !observed)
        return MESH_ERR_INVAL;
    fam *f = fam_of(r, observed->family);
    if (!f || local->family != observed->family || peer->family != observed->family)
        return MESH_ERR_INVAL;
    (void)mesh_reach_expire(r, now);
    uint8_t group[8];
    group_of(peer, group);
    claim *c = slot_for(f, id, group);
    /* one claim per observer and per group: drop another slot the same observer holds */
    for (int i = 0; i < MESH_REACH_MAX_CLAIMS; i++)
        if (&f->c[i] != c && f->c[i].used && memcmp(f->c[i].id, id, MESH_REACH_ID_LEN) == 0)
            f->c[i].used = 0;
    c->used = 1;
    memcpy(c->id, id, MESH_REACH_ID_LEN);
    memcpy(c->group, group, 8);
    c->local = *local;
    c->observed = *observed;
    c->at = now;
    f->claims++;
    agree(r, f);
    refresh_agreed(f);
    int changed = update(r, f);
    f->view.claims = f->claims;
    return changed;
}

int mesh_reach_expire(mesh_reach *r, mesh_time now)
{
    int changed = 0;
    for (int k = 0; k < 2; k++) {
        fam *f = &r->f[k];
        int dropped = 0;
        for (int i = 0; i < MESH_REACH_MAX_CLAIMS; i++)
            if (f->c[i].used && now - f->c[i].at > r->cfg.ttl && now > f->c[i].at) {
                f->c[i].used = 0;
                dropped = 1;
            }
        if (!dropped)
            continue;
        agree(r, f);
        refresh_agreed(f);
        changed |= update(r, f);
    }
    return changed;
}

int mesh_reach_portmap(mesh_reach *r, int status, const mesh_addr *external)
{
    int ok = status == MESH_OK && external;
    fam *f = fam_of(r, ok ? external->family : MESH_AF_INET4); /* the core maps IPv4 only */
    if (!f)
        return 0;
    f->mapped = ok;
    if (ok)
        f->mapping = *external;
    return update(r, f);
}

int mesh_reach_behaviour(mesh_reach *r, int family, int mapping, int filtering)
{
    fam *f = fam_of(r, family);
    if (!f)
        return 0;
    f->nat_mapping = mapping;
    f->nat_filtering = filtering;
    int changed = update(r, f);
    f->view.nat_mapping = mapping;
    f->view.nat_filtering = filtering;
    return changed;
}

int mesh_reach_relayed(mesh_reach *r, int family, int on)
{
    fam *f = fam_of(r, family);
    if (!f)
        return 0;
    f->relayed = !!on;
    return update(r, f);
}

void mesh_reach_get(const mesh_reach *r, int family, mesh_node_reach *out)
{
    const fam *f = family == MESH_AF_INET4 ? &r->f[0] : family == MESH_AF_INET6 ? &r->f[1] : NULL;
    if (!f) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = f->view;
    out->claims = f->claims;
    out->nat_mapping = f->nat_mapping;
    out->nat_filtering = f->nat_filtering;
}
