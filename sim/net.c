/* net.c — the network's topology (see net.h): hosts, LANs, their links and addresses,
 * middleboxes attached to them, and the packet pool. A packet's walk along its path is
 * net_route.c; what both share is net_int.h. */
#include "sim/net.h"

#include <stdlib.h>
#include <string.h>

#include "sim/net_int.h"

static int addrmap_put(addrmap *m, uint32_t ip, uint32_t kind, void *ptr)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t nc = m->cap ? m->cap * 2 : ADDRMAP_MIN;
        addr_ent *ne = calloc(nc, sizeof *ne);
        if (!ne)
            return MESH_ERR_NOMEM;
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->e[i].ip)
                continue;
            size_t j = sim_net_ip_hash(m->e[i].ip) & (nc - 1);
            while (ne[j].ip)
                j = (j + 1) & (nc - 1);
            ne[j] = m->e[i];
        }
        free(m->e);
        m->e = ne;
        m->cap = nc;
    }
    size_t mask = m->cap - 1, i = sim_net_ip_hash(ip) & mask;
    while (m->e[i].ip) {
        if (m->e[i].ip == ip)
            return MESH_ERR_EXISTS;
        i = (i + 1) & mask;
    }
    m->e[i] = (addr_ent){ip, kind, ptr};
    m->n++;
    return MESH_OK;
}

/* ---- packets -------------------------------------------------------------------------- */

size_t sim_pkt_wire_bytes(const sim_pkt *p)
{
    return p->len + (p->proto == SIM_PROTO_TCP ? SIM_TCP_HDR_BYTES : SIM_UDP_HDR_BYTES);
}

int sim_pkt_set_payload(sim_pkt *p, const void *data, size_t len)
{
    if (len > SIM_PKT_MAX_PAYLOAD)
        return MESH_ERR_TOO_BIG;
    if (len > p->priv.cap) {
        size_t nc = len < 256 ? 256 : len;
        uint8_t *nd = realloc(p->data, nc);
        if (!nd)
            return MESH_ERR_NOMEM;
        p->data = nd;
        p->priv.cap = nc;
    }
    if (len)
        memmove(p->data, data, len);
    p->len = len;
    return MESH_OK;
}

int sim_pkt_new(sim_net *net, sim_pkt **out, const void *data, size_t len)
{
    if (len > SIM_PKT_MAX_PAYLOAD || (len && !data))
        return len > SIM_PKT_MAX_PAYLOAD ? MESH_ERR_TOO_BIG : MESH_ERR_INVAL;
    if (!net->free_pkts) {
        if (net->npkts + PKT_SLAB > NET_MAX_PKTS)
            return MESH_ERR_NOMEM;
        slab *s = calloc(1, sizeof *s);
        if (!s)
            return MESH_ERR_NOMEM;
        s->next = net->slabs;
        net->slabs = s;
        net->npkts += PKT_SLAB;
        for (int i = PKT_SLAB - 1; i >= 0; i--) {
            s->p[i].priv.next = net->free_pkts;
            net->free_pkts = &s->p[i];
        }
    }
    sim_pkt *p = net->free_pkts;
    int rc = sim_pkt_set_payload(p, data, len);
    if (rc != MESH_OK)
        return rc;
    net->free_pkts = p->priv.next;
    uint8_t *keep = p->data;
    size_t cap = p->priv.cap;
    memset(p, 0, sizeof *p);
    p->data = keep;
    p->priv.cap = cap;
    p->len = len;
    p->id = ++net->next_pkt_id;
    *out = p;
    return MESH_OK;
}

void sim_pkt_free(sim_net *net, sim_pkt *p)
{
    if (!p)
        return;
    p->priv.next = net->free_pkts;
    net->free_pkts = p;
}

/* ---- net ------------------------------------------------------------------------------ */

int sim_net_new(sim_net **out, sim_sched *sched, uint64_t seed)
{
    if (!sched)
        return MESH_ERR_INVAL;
    sim_net *n = calloc(1, sizeof *n);
    if (!n)
        return MESH_ERR_NOMEM;
    n->sched = sched;
    n->seed = seed;
    sim_rng_derive(&n->core_rng, seed, SIM_RNG_STREAM_CORE);
    *out = n;
    return MESH_OK;
}

static void chain_free(chain *c)
{
    for (int i = 0; i < c->n; i++)
        free(c->m[i]);
}

void sim_net_free(sim_net *net)
{
    if (!net)
        return;
    for (size_t i = 0; i < net->nhosts; i++) {
        chain_free(&net->hosts[i]->mb);
        free(net->hosts[i]->name);
        free(net->hosts[i]);
    }
    for (size_t i = 0; i < net->nlans; i++) {
        chain_free(&net->lans[i]->mb);
        free(net->lans[i]->name);
        free(net->lans[i]->hosts.e);
        free(net->lans[i]->members);
        free(net->lans[i]);
    }
    free(net->hosts);
    free(net->lans);
    free(net->global.e);
    /* Packets still in flight have events naming them: the caller frees the net only once
     * it stops running the scheduler, or these events would touch freed memory. We cannot
     * find them cheaply in the heap, so the rule is documented in net.h. */
    while (net->slabs) {
        slab *s = net->slabs;
        net->slabs = s->next;
        for (int i = 0; i < PKT_SLAB; i++)
            free(s->p[i].data);
        free(s);
    }
    free(net);
}

sim_sched *sim_net_sched(const sim_net *net)
{
    return net->sched;
}
mesh_time sim_net_now(const sim_net *net)
{
    return sim_sched_now(net->sched);
}
uint64_t sim_net_seed(const sim_net *net)
{
    return net->seed;
}
sim_net_stats sim_net_get_stats(const sim_net *net)
{
    return net->st;
}

uint32_t sim_addr_ip4(const mesh_addr *a)
{
    if (!a || a->family != MESH_AF_INET4)
        return 0;
    return (uint32_t)a->ip[0] << 24 | (uint32_t)a->ip[1] << 16 | (uint32_t)a->ip[2] << 8 | a->ip[3];
}

static int link_cfg_ok(const sim_link_cfg *c)
{
    return !c || (c->loss >= 0.0 && c->loss <= 1.0);
}

static void link_init(link *l, const sim_link_cfg *cfg, uint64_t seed, uint64_t stream)
{
    memset(l, 0, sizeof *l);
    if (cfg)
        l->cfg = *cfg;
    sim_rng_derive(&l->rng, seed, SIM_RNG_STREAM_LINK + stream);
}

void sim_net_set_core(sim_net *net, const sim_link_cfg *core, sim_core_latency_fn latency_fn,
                      void *ud)
{
    memset(&net->core, 0, sizeof net->core);
    if (core)
        net->core = *core;
    net->core_fn = latency_fn;
    net->core_ud = ud;
}

static int grow_ptrs(void ***arr, size_t *cap, size_t n)
{
    if (n < *cap)
        return MESH_OK;
    size_t nc = *cap ? *cap * 2 : 16;
    void **na = realloc(*arr, nc * sizeof *na);
    if (!na)
        return MESH_ERR_NOMEM;
    *arr = na;
    *cap = nc;
    return MESH_OK;
}

int sim_net_add_lan(sim_net *net, const sim_lan_cfg *cfg, sim_lan **out)
{
    if (!net || !cfg || !link_cfg_ok(&cfg->up) || !link_cfg_ok(&cfg->down) ||
        (cfg->is_private && !cfg->public_ip) || sim_ip_is_multicast(cfg->public_ip))
        return MESH_ERR_INVAL;
    sim_lan *up = cfg->upstream;
    if (up && (up->net != net || !cfg->is_private))
        return MESH_ERR_INVAL;
    if (net->nlans >= SIM_NET_MAX_LANS || (up && up->depth >= SIM_NET_MAX_LAN_DEPTH))
        return MESH_ERR_LIMIT;
    /* The public address lives on the upstream LAN (and in the core when that LAN's addresses
     * are global), or in the core for a LAN on the core. */
    int global = !up || !up->is_private;
    if (cfg->public_ip && ((global && addrmap_find(&net->global, cfg->public_ip)) ||
                           (up && addrmap_find(&up->hosts, cfg->public_ip))))
        return MESH_ERR_EXISTS;
    if (grow_ptrs((void ***)&net->lans, &net->lans_cap, net->nlans) != MESH_OK)
        return MESH_ERR_NOMEM;
    sim_lan *l = calloc(1, sizeof *l);
    if (!l)
        return MESH_ERR_NOMEM;
    l->name = strdup(cfg->name ? cfg->name : "lan");
    if (!l->name)
        goto fail;
    l->net = net;
    l->id = (uint32_t)net->nlans;
    l->public_ip = cfg->public_ip;
    l->is_private = cfg->is_private;
    l->upstream = up;
    l->depth = up ? up->depth + 1 : 1;
    link_init(&l->up, &cfg->up, net->seed, (1ULL << 40) + 2ULL * l->id);
    link_init(&l->down, &cfg->down, net->seed, (1ULL << 40) + 2ULL * l->id + 1);
    /* (as for hosts: a failure after the first put leaves the net fit only to be freed) */
    if (cfg->public_ip && up && addrmap_put(&up->hosts, cfg->public_ip, ENT_LAN, l) != MESH_OK)
        goto fail;
    if (cfg->public_ip && global &&
        addrmap_put(&net->global, cfg->public_ip, ENT_LAN, l) != MESH_OK)
        goto fail;
    net->lans[net->nlans++] = l;
    if (out)
        *out = l;
    return MESH_OK;
fail:
    free(l->name);
    free(l);
    return MESH_ERR_NOMEM;
}

int sim_net_add_host(sim_net *net, const sim_host_cfg *cfg, sim_host **out)
{
    if (!net || !cfg || !cfg->ip || sim_ip_is_multicast(cfg->ip) || !link_cfg_ok(&cfg->up) ||
        !link_cfg_ok(&cfg->down) || (cfg->lan && cfg->lan->net != net))
        return MESH_ERR_INVAL;
    if (net->nhosts >= SIM_NET_MAX_HOSTS)
        return MESH_ERR_LIMIT;
    sim_lan *lan = cfg->lan;
    int global = !lan || !lan->is_private;
    if ((global && addrmap_find(&net->global, cfg->ip)) ||
        (lan && addrmap_find(&lan->hosts, cfg->ip)))
        return MESH_ERR_EXISTS;
    if (grow_ptrs((void ***)&net->hosts, &net->hosts_cap, net->nhosts) != MESH_OK ||
        (lan && grow_ptrs((void ***)&lan->members, &lan->members_cap, lan->nmembers) != MESH_OK))
        return MESH_ERR_NOMEM;
    sim_host *h = calloc(1, sizeof *h);
    if (!h)
        return MESH_ERR_NOMEM;
    h->name = strdup(cfg->name ? cfg->name : "host");
    if (!h->name)
        goto fail;
    h->net = net;
    h->id = (uint32_t)net->nhosts;
    h->ip = cfg->ip;
    h->lan = lan;
    h->is_up = 1;
    link_init(&h->up, &cfg->up, net->seed, 2ULL * h->id);
    link_init(&h->down, &cfg->down, net->seed, 2ULL * h->id + 1);
    if (lan && addrmap_put(&lan->hosts, h->ip, ENT_HOST, h) != MESH_OK)
        goto fail;
    if (global && addrmap_put(&net->global, h->ip, ENT_HOST, h) != MESH_OK) {
        /* The LAN entry cannot be removed from a linear-probing map cheaply; this path
         * means out of memory, after which the net is only fit to be freed. */
        goto fail;
    }
    if (lan)
        lan->members[lan->nmembers++] = h;
    net->hosts[net->nhosts++] = h;
    if (out)
        *out = h;
    return MESH_OK;
fail:
    free(h->name);
    free(h);
    return MESH_ERR_NOMEM;
}

int sim_host_set_links(sim_host *h, const sim_link_cfg *up, const sim_link_cfg *down)
{
    if (!h || !link_cfg_ok(up) || !link_cfg_ok(down))
        return MESH_ERR_INVAL;
    if (up)
        h->up.cfg = *up;
    if (down)
        h->down.cfg = *down;
    return MESH_OK;
}

int sim_lan_set_links(sim_lan *l, const sim_link_cfg *up, const sim_link_cfg *down)
{
    if (!l || !link_cfg_ok(up) || !link_cfg_ok(down))
        return MESH_ERR_INVAL;
    if (up)
        l->up.cfg = *up;
    if (down)
        l->down.cfg = *down;
    return MESH_OK;
}

void sim_host_set_up(sim_host *h, int up)
{
    h->is_up = up ? 1 : 0;
}
uint32_t sim_host_id(const sim_host *h)
{
    return h->id;
}
uint32_t sim_host_ip(const sim_host *h)
{
    return h->ip;
}
const char *sim_host_name(const sim_host *h)
{
    return h->name;
}
sim_net *sim_host_net(const sim_host *h)
{
    return h->net;
}
uint32_t sim_lan_id(const sim_lan *l)
{
    return l->id;
}
uint32_t sim_lan_public_ip(const sim_lan *l)
{
    return l->public_ip;
}
int sim_lan_is_private(const sim_lan *l)
{
    return l->is_private;
}
sim_lan *sim_lan_upstream(const sim_lan *l)
{
    return l->upstream;
}
sim_lan *sim_host_lan(const sim_host *h)
{
    return h->lan;
}

int sim_lan_has_host(const sim_lan *l, uint32_t ip)
{
    const addr_ent *e = addrmap_find(&l->hosts, ip);
    return e && e->kind == ENT_HOST;
}

int sim_lan_public_is_global(const sim_lan *l)
{
    for (const sim_lan *u = l->upstream; u; u = u->upstream)
        if (u->is_private)
            return 0;
    return 1;
}

void sim_host_get_links(const sim_host *h, sim_link_cfg *up, sim_link_cfg *down)
{
    if (up)
        *up = h->up.cfg;
    if (down)
        *down = h->down.cfg;
}
sim_link_stats sim_host_up_stats(const sim_host *h)
{
    return h->up.st;
}
sim_link_stats sim_host_down_stats(const sim_host *h)
{
    return h->down.st;
}
mesh_time sim_host_up_busy_until(const sim_host *h)
{
    return h->up.busy_until;
}

sim_host *sim_net_find_host(sim_net *net, const sim_host *from, uint32_t ip)
{
    if (from && from->lan) {
        addr_ent *e = addrmap_find(&from->lan->hosts, ip);
        if (e && e->kind == ENT_HOST)
            return e->ptr;
    }
    addr_ent *e = addrmap_find(&net->global, ip);
    return e && e->kind == ENT_HOST ? e->ptr : NULL;
}

int sim_host_join_group(sim_host *h, uint32_t group)
{
    if (!sim_ip_is_multicast(group))
        return MESH_ERR_INVAL;
    for (int i = 0; i < h->ngroups; i++)
        if (h->groups[i].group == group) {
            h->groups[i].refs++;
            return MESH_OK;
        }
    if (h->ngroups >= SIM_NET_MAX_GROUPS_PER_HOST)
        return MESH_ERR_LIMIT;
    h->groups[h->ngroups].group = group;
    h->groups[h->ngroups].refs = 1;
    h->ngroups++;
    return MESH_OK;
}

void sim_host_leave_group(sim_host *h, uint32_t group)
{
    for (int i = 0; i < h->ngroups; i++)
        if (h->groups[i].group == group) {
            if (--h->groups[i].refs == 0)
                h->groups[i] = h->groups[--h->ngroups];
            return;
        }
}

int sim_net_set_transport(sim_net *net, uint8_t proto, sim_deliver_fn fn, void *ctx)
{
    int i = proto == SIM_PROTO_TCP ? 0 : proto == SIM_PROTO_UDP ? 1 : -1;
    if (i < 0)
        return MESH_ERR_INVAL;
    net->transport[i].fn = fn;
    net->transport[i].ctx = ctx;
    return MESH_OK;
}

/* ---- middleboxes ---------------------------------------------------------------------- */

static int attach(sim_net *net, chain *c, sim_host *h, sim_lan *l, const sim_mbox_ops *ops,
                  void *obj, sim_mbox **out)
{
    if (!ops || !ops->on_packet)
        return MESH_ERR_INVAL;
    if (c->n >= SIM_MBOX_MAX_PER_POINT)
        return MESH_ERR_LIMIT;
    sim_mbox *m = calloc(1, sizeof *m);
    if (!m)
        return MESH_ERR_NOMEM;
    *m = (sim_mbox){net, ops, obj, h, l, c->n};
    c->m[c->n++] = m;
    if (out)
        *out = m;
    return MESH_OK;
}

int sim_net_attach_host_mbox(sim_net *net, sim_host *h, const sim_mbox_ops *ops, void *obj,
                             sim_mbox **out)
{
    if (!net || !h || h->net != net)
        return MESH_ERR_INVAL;
    return attach(net, &h->mb, h, NULL, ops, obj, out);
}

int sim_net_attach_lan_mbox(sim_net *net, sim_lan *l, const sim_mbox_ops *ops, void *obj,
                            sim_mbox **out)
{
    if (!net || !l || l->net != net)
        return MESH_ERR_INVAL;
    return attach(net, &l->mb, NULL, l, ops, obj, out);
}

sim_net *sim_mbox_net(const sim_mbox *mb)
{
    return mb->net;
}
