/* nat.c — the NAT of nat.h.
 *
 * State: mappings and permits, each in intrusive chained hash tables. A mapping is found by
 * its internal key (protocol, internal endpoint, the remote part the mapping behaviour keeps,
 * and whether it is a port-map entry) going out, and by (protocol, external port) coming in.
 * A permit (a remote the internal endpoint sent to through a mapping) is found by (protocol,
 * external port, remote address, remote port or 0) and also sits on its mapping's list, so
 * removing a mapping removes its permits. Mappings are also on one list in creation order:
 * sweeps walk it, which keeps the order of expiry reports independent of hash layout. */
#include "sim/nat.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "sim/nat_int.h"

/* ---- hash tables --------------------------------------------------------------------- */

static inline uint64_t mix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

static int htab_init(htab *t)
{
    t->b = calloc(NAT_MIN_BUCKETS, sizeof *t->b);
    t->nb = NAT_MIN_BUCKETS;
    t->n = 0;
    return t->b ? MESH_OK : MESH_ERR_NOMEM;
}

static void htab_add(htab *t, hnode *x, uint64_t h)
{
    if (t->n >= t->nb) {
        size_t nn = t->nb * 2;
        hnode **nb = calloc(nn, sizeof *nb);
        if (nb) { /* on failure keep the old table: longer chains, still correct */
            for (size_t i = 0; i < t->nb; i++)
                for (hnode *y = t->b[i], *nx; y; y = nx) {
                    nx = y->next;
                    y->next = nb[y->h & (nn - 1)];
                    nb[y->h & (nn - 1)] = y;
                }
            free(t->b);
            t->b = nb;
            t->nb = nn;
        }
    }
    x->h = h;
    x->next = t->b[h & (t->nb - 1)];
    t->b[h & (t->nb - 1)] = x;
    t->n++;
}

static void htab_del(htab *t, hnode *x)
{
    hnode **pp = &t->b[x->h & (t->nb - 1)];
    while (*pp != x)
        pp = &(*pp)->next;
    *pp = x->next;
    t->n--;
}

static hnode *htab_chain(const htab *t, uint64_t h)
{
    return t->b[h & (t->nb - 1)];
}

static uint64_t key_int(uint8_t proto, int portmap, uint32_t ip, uint16_t port, uint32_t rip,
                        uint16_t rport)
{
    return mix64(
        ((uint64_t)ip << 32 | (uint64_t)port << 16 | (uint64_t)proto << 8 | (uint64_t)portmap) ^
        mix64((uint64_t)rip << 16 | rport));
}

static uint64_t key_ext(uint8_t proto, uint16_t port)
{
    return mix64((uint64_t)proto << 16 | port);
}

static uint64_t key_perm(uint8_t proto, uint16_t ext_port, uint32_t ip, uint16_t port)
{
    return mix64(((uint64_t)proto << 48 | (uint64_t)ext_port << 32 | ip) ^ mix64(port + 1ULL));
}

/* ---- observing ------------------------------------------------------------------------- */

void nat_observe(sim_nat *n, int kind, mesh_time t, const sim_pkt *p, const nat_map *m)
{
    if (!n->obs_fn || !(n->obs_mask & (1u << kind)))
        return;
    sim_nat_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = kind;
    ev.t = t;
    if (p) {
        ev.has_pkt = 1;
        ev.proto = p->proto;
        ev.flags = p->flags;
        ev.seq = p->seq;
        ev.ack = p->ack;
        ev.len = p->len;
        ev.src = p->src;
        ev.dst = p->dst;
        if (!m && sim_addr_ip4(&p->dst) == n->pub)
            ev.external = p->dst; /* inbound with no mapping: the port it asked for */
    }
    if (m) {
        ev.proto = m->proto;
        ev.internal = mesh_addr_v4(m->int_ip, m->int_port);
        ev.external = mesh_addr_v4(n->pub, m->ext_port);
    }
    n->obs_fn(n->obs_ud, &ev);
}

/* ---- mappings and permits ---------------------------------------------------------------- */

mesh_time nat_sat_add(mesh_time a, mesh_time b)
{
    return a > MESH_TIME_NEVER - b ? MESH_TIME_NEVER : a + b;
}

static mesh_time map_timeout(const sim_nat *n, const nat_map *m)
{
    if (m->proto == SIM_PROTO_UDP)
        return n->cfg.udp_timeout;
    if (!(m->tcp & TCP_ESTABLISHED) || (m->tcp & TCP_CLOSING))
        return n->cfg.tcp_trans_timeout;
    return n->cfg.tcp_timeout;
}

static void perm_free(sim_nat *n, nat_perm *q)
{
    htab_del(&n->perms, &q->by_key);
    n->st.permits_live--;
    free(q);
}

void nat_map_remove(sim_nat *n, nat_map *m)
{
    while (m->perms) {
        nat_perm *q = m->perms;
        m->perms = q->next;
        perm_free(n, q);
    }
    htab_del(&n->by_int, &m->by_int);
    htab_del(&n->by_ext, &m->by_ext);
    if (m->prev)
        m->prev->next = m->next;
    else
        n->head = m->next;
    if (m->next)
        m->next->prev = m->prev;
    else
        n->tail = m->prev;
    if (m->expires_at != MESH_TIME_NEVER)
        n->nexpiring--;
    n->st.maps_live--;
    free(m);
}

/* m ran out at m->expires_at: report and remove it. */
static void map_expire(sim_nat *n, nat_map *m)
{
    if (m->portmap) {
        n->st.portmaps_released++;
        nat_observe(n, SIM_NAT_EV_PORTMAP_RELEASE, m->expires_at, NULL, m);
    } else {
        n->st.maps_expired++;
        nat_observe(n, SIM_NAT_EV_MAP_EXPIRE, m->expires_at, NULL, m);
    }
    nat_map_remove(n, m);
}

/* m if it has not run out by now; else it is expired (reported, removed) and NULL. */
static nat_map *live(sim_nat *n, nat_map *m, mesh_time now)
{
    if (m->expires_at > now)
        return m;
    map_expire(n, m);
    return NULL;
}

/* A live mapping for the internal key, expiring a dead one found on the way. */
nat_map *nat_find_int(sim_nat *n, uint8_t proto, int portmap, uint32_t ip, uint16_t port,
                      uint32_t rip, uint16_t rport, mesh_time now)
{
    uint64_t h = key_int(proto, portmap, ip, port, rip, rport);
    for (hnode *x = htab_chain(&n->by_int, h); x; x = x->next) {
        nat_map *m = CONTAINER(x, nat_map, by_int);
        if (x->h != h || m->proto != proto || m->portmap != portmap || m->int_ip != ip ||
            m->int_port != port || m->rem_ip != rip || m->rem_port != rport)
            continue;
        return live(n, m, now);
    }
    return NULL;
}

nat_map *nat_find_ext(sim_nat *n, uint8_t proto, uint16_t port, mesh_time now)
{
    uint64_t h = key_ext(proto, port);
    for (hnode *x = htab_chain(&n->by_ext, h); x; x = x->next) {
        nat_map *m = CONTAINER(x, nat_map, by_ext);
        if (x->h != h || m->proto != proto || m->ext_port != port)
            continue;
        return live(n, m, now);
    }
    return NULL;
}

static void perm_unlink(sim_nat *n, nat_perm *q)
{
    nat_perm **pp = &q->m->perms;
    while (*pp != q)
        pp = &(*pp)->next;
    *pp = q->next;
    perm_free(n, q);
}

static nat_perm *find_perm(sim_nat *n, const nat_map *m, uint32_t ip, uint16_t port, mesh_time now)
{
    uint64_t h = key_perm(m->proto, m->ext_port, ip, port);
    for (hnode *x = htab_chain(&n->perms, h); x; x = x->next) {
        nat_perm *q = CONTAINER(x, nat_perm, by_key);
        if (x->h != h || q->m != m || q->ip != ip || q->port != port)
            continue;
        if (q->expires_at <= now) {
            perm_unlink(n, q);
            return NULL;
        }
        return q;
    }
    return NULL;
}

size_t sim_nat_sweep(sim_nat *n)
{
    mesh_time now = sim_net_now(n->net);
    size_t expired = 0;
    for (nat_map *m = n->head, *nx; m; m = nx) {
        nx = m->next;
        if (m->expires_at <= now) {
            map_expire(n, m);
            expired++;
            continue;
        }
        for (nat_perm *q = m->perms, *qn; q; q = qn) {
            qn = q->next;
            if (q->expires_at <= now)
                perm_unlink(n, q);
        }
    }
    return expired;
}

static void sweep_fire(void *ctx, void *arg);

void nat_arm_sweep(sim_nat *n)
{
    if (!n->cfg.sweep_interval || n->nexpiring == 0 || n->sweep_ev != SIM_EVENT_NONE)
        return;
    sim_sched_after(sim_net_sched(n->net), n->cfg.sweep_interval, SIM_EV_NAT_SWEEP,
                    sim_lan_id(n->lan), sweep_fire, n, NULL, &n->sweep_ev);
}

static void sweep_fire(void *ctx, void *arg)
{
    sim_nat *n = ctx;
    (void)arg;
    n->sweep_ev = SIM_EVENT_NONE;
    sim_nat_sweep(n);
    nat_arm_sweep(n); /* stops once nothing can expire, so sim_sched_run() still ends */
}

/* Room for one more mapping (or permit): sweep expired entries before saying no. */
int nat_room(sim_nat *n, const uint64_t *live, uint32_t max)
{
    if (*live < max)
        return 1;
    sim_nat_sweep(n);
    return *live < max;
}

static int port_free(sim_nat *n, uint8_t proto, uint16_t port, mesh_time now)
{
    return nat_find_ext(n, proto, port, now) == NULL;
}

/* An external port for a new mapping: `want` if preferred and free, else random from the
 * range walking up to a free one. 0 if the range is full. */
uint16_t nat_alloc_port(sim_nat *n, uint8_t proto, uint16_t want, int prefer, mesh_time now)
{
    uint32_t lo = n->cfg.port_lo, hi = n->cfg.port_hi, range = hi - lo + 1;
    if (prefer && want >= lo && want <= hi && port_free(n, proto, want, now))
        return want;
    uint32_t start = (uint32_t)sim_rng_below(&n->rng, range);
    for (uint32_t i = 0; i < range; i++) {
        uint16_t p = (uint16_t)(lo + (start + i) % range);
        if (port_free(n, proto, p, now))
            return p;
    }
    return 0;
}

/* A new mapping with external port ext (already known free). NULL: out of memory. */
nat_map *nat_map_new(sim_nat *n, uint8_t proto, int portmap, uint32_t ip, uint16_t port,
                     uint32_t rip, uint16_t rport, uint16_t ext, mesh_time expires_at)
{
    nat_map *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->proto = proto;
    m->portmap = (uint8_t)portmap;
    m->int_ip = ip;
    m->int_port = port;
    m->rem_ip = rip;
    m->rem_port = rport;
    m->ext_port = ext;
    m->expires_at = expires_at;
    htab_add(&n->by_int, &m->by_int, key_int(proto, portmap, ip, port, rip, rport));
    htab_add(&n->by_ext, &m->by_ext, key_ext(proto, ext));
    m->prev = n->tail;
    if (n->tail)
        n->tail->next = m;
    else
        n->head = m;
    n->tail = m;
    if (expires_at != MESH_TIME_NEVER)
        n->nexpiring++;
    n->st.maps_live++;
    nat_arm_sweep(n);
    return m;
}

static nat_perm *perm_new(sim_nat *n, nat_map *m, uint32_t ip, uint16_t port)
{
    nat_perm *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->m = m;
    q->ip = ip;
    q->port = port;
    q->next = m->perms;
    m->perms = q;
    htab_add(&n->perms, &q->by_key, key_perm(m->proto, m->ext_port, ip, port));
    n->st.permits_live++;
    return q;
}

/* The remote part of a mapping's key, per the mapping behaviour. */
static void map_remote(const sim_nat *n, const mesh_addr *r, uint32_t *rip, uint16_t *rport)
{
    *rip = n->cfg.mapping == SIM_NAT_ENDPOINT_INDEPENDENT ? 0 : sim_addr_ip4(r);
    *rport = n->cfg.mapping == SIM_NAT_ADDRESS_PORT_DEPENDENT ? r->port : 0;
}

/* The port a permit keeps, per the filtering behaviour (address-dependent: 0). */
static uint16_t perm_port(const sim_nat *n, const mesh_addr *r)
{
    return n->cfg.filtering == SIM_NAT_ADDRESS_PORT_DEPENDENT ? r->port : 0;
}

static int needs_permits(const sim_nat *n, const nat_map *m)
{
    return n->cfg.filtering != SIM_NAT_ENDPOINT_INDEPENDENT && !(m && m->portmap);
}

/* TCP flags seen on a mapping in direction dir; a transition to closing shortens the life
 * of a dynamic mapping at once (RFC 5382 transitory timeout). */
static void track_tcp(sim_nat *n, nat_map *m, uint8_t flags, int dir, mesh_time now)
{
    if (m->proto != SIM_PROTO_TCP)
        return;
    if (dir == SIM_DIR_OUT && (flags & (SIM_TCP_SYN | SIM_TCP_ACK)) == SIM_TCP_SYN &&
        (m->tcp & TCP_CLOSING))
        m->tcp = 0; /* a new connection on a closing mapping starts over */
    if (dir == SIM_DIR_IN)
        m->tcp |= TCP_ESTABLISHED;
    if (flags & SIM_TCP_FIN)
        m->tcp |= dir == SIM_DIR_OUT ? TCP_FIN_OUT : TCP_FIN_IN;
    int closing = (flags & SIM_TCP_RST) ||
                  (m->tcp & (TCP_FIN_OUT | TCP_FIN_IN)) == (TCP_FIN_OUT | TCP_FIN_IN);
    if (closing && !(m->tcp & TCP_CLOSING)) {
        m->tcp |= TCP_CLOSING;
        mesh_time end = nat_sat_add(now, n->cfg.tcp_trans_timeout);
        if (!m->portmap && end < m->expires_at)
            m->expires_at = end;
    }
}

/* Extend a dynamic mapping and (if any) the permit used, after traffic that refreshes. */
static void refresh(sim_nat *n, nat_map *m, nat_perm *q, mesh_time now)
{
    if (m->portmap)
        return;
    mesh_time end = nat_sat_add(now, map_timeout(n, m));
    m->expires_at = end;
    if (q)
        q->expires_at = end;
}

static int limit_drop(sim_nat *n, const sim_pkt *p, mesh_time now)
{
    n->st.limit_drops++;
    nat_observe(n, SIM_NAT_EV_LIMIT_DROP, now, p, NULL);
    return SIM_DROP;
}

static int on_out(sim_nat *n, sim_pkt *p, mesh_time now)
{
    const mesh_addr *src = &p->src, *dst = &p->dst;
    uint32_t sip = sim_addr_ip4(src), dip = sim_addr_ip4(dst);
    int hairpin = dip == n->pub;
    if (hairpin && !n->cfg.hairpin) {
        n->st.hairpin_drops++;
        nat_observe(n, SIM_NAT_EV_HAIRPIN_DROP, now, p, NULL);
        return SIM_DROP;
    }
    uint32_t rip;
    uint16_t rport;
    map_remote(n, dst, &rip, &rport);
    nat_map *m = nat_find_int(n, p->proto, 1, sip, src->port, 0, 0, now);
    if (!m)
        m = nat_find_int(n, p->proto, 0, sip, src->port, rip, rport, now);
    int created = 0;
    if (!m) {
        if (!nat_room(n, &n->st.maps_live, n->cfg.max_mappings) ||
            (needs_permits(n, NULL) && !nat_room(n, &n->st.permits_live, n->cfg.max_permits)))
            return limit_drop(n, p, now);
        int prefer = n->cfg.port_alloc == SIM_NAT_PORT_PRESERVE;
        uint16_t ext = nat_alloc_port(n, p->proto, src->port, prefer, now);
        if (!ext)
            return limit_drop(n, p, now);
        m = nat_map_new(n, p->proto, 0, sip, src->port, rip, rport, ext, now);
        if (!m)
            return limit_drop(n, p, now);
        created = 1;
    }
    nat_perm *q = NULL;
    if (needs_permits(n, m)) {
        uint16_t qport = perm_port(n, dst);
        q = find_perm(n, m, dip, qport, now);
        if (!q && (!nat_room(n, &n->st.permits_live, n->cfg.max_permits) ||
                   !(q = perm_new(n, m, dip, qport)))) {
            if (created)
                nat_map_remove(n, m);
            return limit_drop(n, p, now);
        }
    }
    track_tcp(n, m, p->flags, SIM_DIR_OUT, now);
    refresh(n, m, q, now);
    if (created)
        n->st.maps_created++;
    n->st.out_pkts++;
    nat_observe(n, created ? SIM_NAT_EV_MAP_CREATE : SIM_NAT_EV_OUT_PASS, now, p, m);
    if (hairpin) {
        n->st.hairpin++;
        nat_observe(n, SIM_NAT_EV_HAIRPIN, now, p, m);
    }
    p->src = mesh_addr_v4(n->pub, m->ext_port);
    return SIM_PASS;
}

/* Unsolicited inbound: dropped; a TCP SYN is answered with RST if so configured. */
static int unsolicited(sim_nat *n, sim_mbox *mb, const sim_pkt *p, const nat_map *m, mesh_time now)
{
    int kind = m ? SIM_NAT_EV_IN_FILTERED : SIM_NAT_EV_IN_NO_MAPPING;
    if (m)
        n->st.in_filtered++;
    else
        n->st.in_no_mapping++;
    sim_pkt *rst;
    if (p->proto == SIM_PROTO_TCP && (p->flags & (SIM_TCP_SYN | SIM_TCP_ACK)) == SIM_TCP_SYN &&
        n->cfg.tcp_unsolicited == SIM_NAT_UNSOLICITED_RST &&
        sim_pkt_new(n->net, &rst, NULL, 0) == MESH_OK) {
        rst->proto = SIM_PROTO_TCP;
        rst->src = p->dst;
        rst->dst = p->src;
        rst->flags = SIM_TCP_RST | SIM_TCP_ACK;
        rst->ack = p->seq + 1;
        if (sim_mbox_inject(mb, SIM_DIR_OUT, rst) == MESH_OK) {
            n->st.in_rst++;
            kind = SIM_NAT_EV_IN_RST;
        }
    }
    nat_observe(n, kind, now, p, m);
    return SIM_DROP;
}

static int on_in(sim_nat *n, sim_mbox *mb, sim_pkt *p, mesh_time now)
{
    if (sim_addr_ip4(&p->dst) != n->pub)
        return SIM_PASS; /* not addressed to the NAT */
    nat_map *m = nat_find_ext(n, p->proto, p->dst.port, now);
    if (!m)
        return unsolicited(n, mb, p, NULL, now);
    nat_perm *q = NULL;
    if (needs_permits(n, m)) {
        q = find_perm(n, m, sim_addr_ip4(&p->src), perm_port(n, &p->src), now);
        if (!q)
            return unsolicited(n, mb, p, m, now);
    }
    track_tcp(n, m, p->flags, SIM_DIR_IN, now);
    if (n->cfg.inbound_refresh)
        refresh(n, m, q, now);
    n->st.in_pkts++;
    nat_observe(n, SIM_NAT_EV_IN_PASS, now, p, m);
    p->dst = mesh_addr_v4(m->int_ip, m->int_port);
    return SIM_PASS;
}

static int nat_on_packet(void *obj, sim_mbox *mb, sim_pkt *p, int dir, mesh_time *delay)
{
    sim_nat *n = obj;
    (void)delay;
    if (p->proto != SIM_PROTO_TCP && p->proto != SIM_PROTO_UDP)
        return SIM_DROP; /* nothing else is modelled; a real NAT would not know it either */
    mesh_time now = sim_net_now(n->net);
    return dir == SIM_DIR_OUT ? on_out(n, p, now) : on_in(n, mb, p, now);
}

static const sim_mbox_ops nat_ops = {nat_on_packet};

/* ---- life cycle ------------------------------------------------------------------------ */

static int cfg_fix(sim_nat_cfg *c)
{
    if (c->mapping > SIM_NAT_ADDRESS_PORT_DEPENDENT ||
        c->filtering > SIM_NAT_ADDRESS_PORT_DEPENDENT || c->port_alloc > SIM_NAT_PORT_RANDOM ||
        c->tcp_unsolicited > SIM_NAT_UNSOLICITED_RST || c->max_mappings > SIM_NAT_MAX_MAPPINGS ||
        c->max_permits > SIM_NAT_MAX_PERMITS)
        return MESH_ERR_INVAL;
    if (!c->port_lo && !c->port_hi) {
        c->port_lo = SIM_NAT_DEFAULT_PORT_LO;
        c->port_hi = SIM_NAT_DEFAULT_PORT_HI;
    }
    if (!c->port_lo || c->port_lo > c->port_hi)
        return MESH_ERR_INVAL;
    if (!c->udp_timeout)
        c->udp_timeout = SIM_NAT_DEFAULT_UDP_TIMEOUT_S * MESH_NS_PER_S;
    if (!c->tcp_timeout)
        c->tcp_timeout = SIM_NAT_DEFAULT_TCP_TIMEOUT_S * MESH_NS_PER_S;
    if (!c->tcp_trans_timeout)
        c->tcp_trans_timeout = SIM_NAT_DEFAULT_TCP_TRANS_TIMEOUT_S * MESH_NS_PER_S;
    if (!c->max_mappings)
        c->max_mappings = SIM_NAT_DEFAULT_MAX_MAPPINGS;
    if (!c->max_permits)
        c->max_permits = SIM_NAT_DEFAULT_MAX_PERMITS;
    if (!c->pmp_max_lease_s)
        c->pmp_max_lease_s = SIM_NAT_DEFAULT_PMP_MAX_LEASE_S;
    c->hairpin = c->hairpin ? 1 : 0;
    c->inbound_refresh = c->inbound_refresh ? 1 : 0;
    c->portmap = c->portmap ? 1 : 0;
    c->natpmp = c->natpmp ? 1 : 0;
    return MESH_OK;
}

int sim_nat_new(sim_nat **out, sim_net *net, sim_lan *lan, const sim_nat_cfg *cfg)
{
    /* a LAN of another net is refused by the attach, the last step */
    if (!out || !net || !lan || !sim_lan_is_private(lan) || !sim_lan_public_ip(lan))
        return MESH_ERR_INVAL;
    sim_nat_cfg c;
    memset(&c, 0, sizeof c);
    if (cfg)
        c = *cfg;
    int rc = cfg_fix(&c);
    if (rc != MESH_OK)
        return rc;
    sim_nat *n = calloc(1, sizeof *n);
    if (!n)
        return MESH_ERR_NOMEM;
    n->net = net;
    n->lan = lan;
    n->cfg = c;
    n->pub = sim_lan_public_ip(lan);
    n->epoch_start = sim_net_now(net);
    sim_rng_derive(&n->rng, sim_net_seed(net), SIM_NAT_RNG_STREAM + sim_lan_id(lan));
    rc = MESH_ERR_NOMEM;
    if (htab_init(&n->by_int) != MESH_OK || htab_init(&n->by_ext) != MESH_OK ||
        htab_init(&n->perms) != MESH_OK)
        goto fail;
    rc = sim_net_attach_lan_mbox(net, lan, &nat_ops, n, &n->mb);
    if (rc != MESH_OK)
        goto fail;
    *out = n;
    return MESH_OK;
fail:
    free(n->perms.b);
    free(n->by_ext.b);
    free(n->by_int.b);
    free(n);
    return rc;
}

void sim_nat_free(sim_nat *n)
{
    if (!n)
        return;
    sim_sched_cancel(sim_net_sched(n->net), n->sweep_ev);
    while (n->head)
        nat_map_remove(n, n->head);
    free(n->perms.b);
    free(n->by_ext.b);
    free(n->by_int.b);
    free(n);
}

sim_lan *sim_nat_lan(const sim_nat *n)
{
    return n->lan;
}
uint32_t sim_nat_public_ip(const sim_nat *n)
{
    return n->pub;
}
sim_nat_stats sim_nat_get_stats(const sim_nat *n)
{
    return n->st;
}

void sim_nat_set_observer(sim_nat *n, sim_nat_observe_fn fn, void *ud, uint32_t mask)
{
    n->obs_fn = fn;
    n->obs_ud = ud;
    n->obs_mask = mask;
}

int nat_proto_ok(uint8_t proto)
{
    return proto == SIM_PROTO_TCP || proto == SIM_PROTO_UDP;
}

int nat_endpoint_ok(const mesh_addr *a)
{
    return a && a->family == MESH_AF_INET4 && a->port && sim_addr_ip4(a);
}

int sim_nat_lookup(sim_nat *n, uint8_t proto, const mesh_addr *internal, const mesh_addr *remote,
                   mesh_addr *external)
{
    if (!n || !nat_proto_ok(proto) || !nat_endpoint_ok(internal) || !nat_endpoint_ok(remote) ||
        !external)
        return MESH_ERR_INVAL;
    mesh_time now = sim_net_now(n->net);
    uint32_t ip = sim_addr_ip4(internal), rip;
    uint16_t rport;
    map_remote(n, remote, &rip, &rport);
    nat_map *m = nat_find_int(n, proto, 1, ip, internal->port, 0, 0, now);
    if (!m)
        m = nat_find_int(n, proto, 0, ip, internal->port, rip, rport, now);
    if (!m)
        return MESH_ERR_NOT_FOUND;
    *external = mesh_addr_v4(n->pub, m->ext_port);
    return MESH_OK;
}
