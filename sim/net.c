/* net.c — packets walk a chain of stages (see net.h). route() runs the synchronous stages
 * (middleboxes, routing decisions) and stops at the next link, which schedules the packet's
 * arrival at the following stage as one event. */
#include "sim/net.h"

#include <stdlib.h>
#include <string.h>

enum net_consts {
    PKT_SLAB = 256,         /* packets allocated together */
    NET_MAX_PKTS = 1 << 24, /* live + pooled packets; beyond: MESH_ERR_NOMEM */
    ADDRMAP_MIN = 16,
};

/* Path stages (pkt->priv.hop). */
enum hop {
    HOP_SRC_MB_OUT, /* middleboxes of the source host, outwards */
    HOP_SRC_UP,     /* source host's up link */
    HOP_AT_LAN,     /* arrived at the source's LAN (or the core, for a core host) */
    HOP_LAN_MB_OUT, /* source LAN's gateway middleboxes, outwards */
    HOP_LAN_UP,     /* source LAN's site link up */
    HOP_CORE,       /* core routing and delay */
    HOP_LAN_DOWN,   /* destination LAN's site link down */
    HOP_LAN_MB_IN,  /* destination LAN's gateway middleboxes, inwards */
    HOP_DST_DOWN,   /* destination host's down link */
    HOP_DST_MB_IN,  /* destination host's middleboxes, inwards */
    HOP_DELIVER,
};

typedef struct link {
    sim_link_cfg cfg;
    mesh_time busy_until;   /* serialisation of queued packets ends here */
    mesh_time last_arrival; /* FIFO: no arrival before this one */
    sim_rng rng;
    sim_link_stats st;
} link;

typedef struct chain {
    sim_mbox *m[SIM_MBOX_MAX_PER_POINT];
    int n;
} chain;

struct sim_mbox {
    sim_net *net;
    const sim_mbox_ops *ops;
    void *obj;
    sim_host *host; /* attach point: a host ... */
    sim_lan *lan;   /* ... or a LAN gateway */
    int idx;
};

enum { ENT_HOST = 1, ENT_LAN = 2 };
typedef struct addr_ent {
    uint32_t ip; /* 0 = empty */
    uint32_t kind;
    void *ptr;
} addr_ent;
typedef struct addrmap {
    addr_ent *e;
    size_t cap, n;
} addrmap;

struct sim_host {
    sim_net *net;
    uint32_t id, ip;
    char *name;
    sim_lan *lan;
    link up, down;
    chain mb;
    int is_up;
    int ngroups;
    struct {
        uint32_t group, refs;
    } groups[SIM_NET_MAX_GROUPS_PER_HOST];
};

struct sim_lan {
    sim_net *net;
    uint32_t id;
    char *name;
    uint32_t public_ip;
    int is_private;
    link up, down;
    chain mb;
    addrmap hosts;
    sim_host **members;
    size_t nmembers, members_cap;
};

typedef struct slab {
    struct slab *next;
    sim_pkt p[PKT_SLAB];
} slab;

struct sim_net {
    sim_sched *sched;
    uint64_t seed;
    sim_link_cfg core;
    sim_core_latency_fn core_fn;
    void *core_ud;
    sim_rng core_rng;
    addrmap global;
    sim_host **hosts;
    size_t nhosts, hosts_cap;
    sim_lan **lans;
    size_t nlans, lans_cap;
    slab *slabs;
    size_t npkts;
    sim_pkt *free_pkts;
    uint64_t next_pkt_id;
    struct {
        sim_deliver_fn fn;
        void *ctx;
    } transport[2]; /* 0 = TCP, 1 = UDP */
    sim_net_stats st;
};

/* ---- address maps (open addressing, linear probing) ------------------------------------ */

static inline size_t ip_hash(uint32_t ip)
{
    return (size_t)((ip * 0x9e3779b1u) ^ (ip >> 16));
}

static addr_ent *addrmap_find(const addrmap *m, uint32_t ip)
{
    if (m->cap == 0)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = ip_hash(ip) & mask;; i = (i + 1) & mask) {
        if (m->e[i].ip == ip)
            return &m->e[i];
        if (m->e[i].ip == 0)
            return NULL;
    }
}

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
            size_t j = ip_hash(m->e[i].ip) & (nc - 1);
            while (ne[j].ip)
                j = (j + 1) & (nc - 1);
            ne[j] = m->e[i];
        }
        free(m->e);
        m->e = ne;
        m->cap = nc;
    }
    size_t mask = m->cap - 1, i = ip_hash(ip) & mask;
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

static void hop_ev(void *ctx, void *arg);

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
    if (net->nlans >= SIM_NET_MAX_LANS)
        return MESH_ERR_LIMIT;
    if (cfg->public_ip && addrmap_find(&net->global, cfg->public_ip))
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
    link_init(&l->up, &cfg->up, net->seed, (1ULL << 40) + 2ULL * l->id);
    link_init(&l->down, &cfg->down, net->seed, (1ULL << 40) + 2ULL * l->id + 1);
    if (cfg->public_ip && addrmap_put(&net->global, cfg->public_ip, ENT_LAN, l) != MESH_OK)
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
        if (e)
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

static int host_in_group(const sim_host *h, uint32_t group)
{
    for (int i = 0; i < h->ngroups; i++)
        if (h->groups[i].group == group)
            return 1;
    return 0;
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

static void schedule_hop(sim_net *net, sim_pkt *p, mesh_time when, uint32_t kind)
{
    if (sim_sched_at(net->sched, when, kind, p->id, hop_ev, net, p, NULL) != MESH_OK) {
        /* Only a scheduler at its hard limit gets here: the packet is lost. */
        net->st.link_drops++;
        sim_pkt_free(net, p);
    }
}

int sim_mbox_inject(sim_mbox *mb, int dir, sim_pkt *p)
{
    if (!mb || !p || (dir != SIM_DIR_IN && dir != SIM_DIR_OUT) || p->src.family != MESH_AF_INET4 ||
        p->dst.family != MESH_AF_INET4) {
        if (mb && p)
            sim_pkt_free(mb->net, p);
        return MESH_ERR_INVAL;
    }
    sim_net *net = mb->net;
    p->priv.src_host = p->priv.dst_host = NULL;
    p->priv.lan = NULL;
    p->sent_at = sim_net_now(net);
    if (mb->host) {
        if (dir == SIM_DIR_OUT) {
            p->priv.hop = HOP_SRC_MB_OUT;
            p->priv.src_host = mb->host;
        } else {
            p->priv.hop = HOP_DST_MB_IN;
            p->priv.dst_host = mb->host;
        }
    } else {
        p->priv.hop = dir == SIM_DIR_OUT ? HOP_LAN_MB_OUT : HOP_LAN_MB_IN;
        p->priv.lan = mb->lan;
    }
    p->priv.mb = dir == SIM_DIR_OUT ? mb->idx + 1 : mb->idx - 1;
    net->st.sent++;
    schedule_hop(net, p, sim_net_now(net), SIM_EV_NET_HOP);
    return MESH_OK;
}

/* ---- routing -------------------------------------------------------------------------- */

/* Put p on link l; on success *arrival is when it reaches the far end. 0 = lost/dropped. */
static int link_enter(sim_net *net, link *l, sim_pkt *p, mesh_time *arrival)
{
    mesh_time now = sim_net_now(net);
    size_t bytes = sim_pkt_wire_bytes(p);
    l->st.pkts++;
    l->st.bytes += bytes;
    mesh_time start = l->busy_until > now ? l->busy_until : now;
    if (l->cfg.rate_bps) {
        uint64_t limit = l->cfg.queue_bytes ? l->cfg.queue_bytes : SIM_LINK_DEFAULT_QUEUE;
        unsigned __int128 backlog =
            (unsigned __int128)(start - now) * l->cfg.rate_bps / (8 * MESH_NS_PER_S);
        if (backlog > 0 && backlog + bytes > limit) {
            l->st.tail_drops++;
            net->st.link_drops++;
            return 0;
        }
        uint64_t bits_ns = (uint64_t)bytes * 8 * MESH_NS_PER_S;
        start += (bits_ns + l->cfg.rate_bps - 1) / l->cfg.rate_bps;
        l->busy_until = start;
    }
    if (l->cfg.loss > 0 && sim_rng_chance(&l->rng, l->cfg.loss)) {
        l->st.lost++;
        net->st.link_drops++;
        return 0;
    }
    mesh_time t = start + l->cfg.latency;
    if (l->cfg.jitter)
        t += sim_rng_below(&l->rng, l->cfg.jitter + 1);
    if (t < l->last_arrival)
        t = l->last_arrival;
    l->last_arrival = t;
    *arrival = t;
    return 1;
}

static void drop(sim_net *net, sim_pkt *p, uint64_t *counter)
{
    (*counter)++;
    sim_pkt_free(net, p);
}

/* Cross a link: schedule arrival at stage `next`. */
static void cross(sim_net *net, link *l, sim_pkt *p, uint32_t next, int next_mb)
{
    mesh_time at;
    if (!link_enter(net, l, p, &at)) {
        sim_pkt_free(net, p);
        return;
    }
    p->priv.hop = next;
    p->priv.mb = next_mb;
    schedule_hop(net, p, at, SIM_EV_NET_HOP);
}

/* Run the chain from p->priv.mb in direction dir. 1 = went through, 0 = consumed. */
static int run_chain(sim_net *net, chain *c, sim_pkt *p, int dir)
{
    int step = dir == SIM_DIR_OUT ? 1 : -1;
    while (p->priv.mb >= 0 && p->priv.mb < c->n) {
        sim_mbox *m = c->m[p->priv.mb];
        p->priv.mb += step;
        mesh_time delay = 0;
        int v = m->ops->on_packet(m->obj, m, p, dir, &delay);
        if (v == SIM_DROP) {
            drop(net, p, &net->st.mbox_drops);
            return 0;
        }
        if (v == SIM_DELAY) {
            schedule_hop(net, p, sim_net_now(net) + delay, SIM_EV_NET_MBOX);
            return 0;
        }
    }
    return 1;
}

static void to_dst_host(sim_pkt *p, sim_host *h)
{
    p->priv.dst_host = h;
    p->priv.hop = HOP_DST_DOWN;
}

static void fan_out_multicast(sim_net *net, sim_lan *l, sim_pkt *p)
{
    uint32_t g = sim_addr_ip4(&p->dst);
    for (size_t i = 0; i < l->nmembers; i++) {
        sim_host *h = l->members[i];
        if (!host_in_group(h, g))
            continue;
        sim_pkt *c;
        if (sim_pkt_new(net, &c, p->data, p->len) != MESH_OK) {
            net->st.link_drops++;
            continue;
        }
        uint64_t id = c->id;
        *c = (sim_pkt){p->src,  p->dst, p->proto, p->flags,   p->seq, p->ack,
                       c->data, c->len, id,       p->sent_at, c->priv};
        c->priv.src_host = p->priv.src_host;
        c->priv.dst_host = h;
        c->priv.mb = 0;
        cross(net, &h->down, c, HOP_DST_MB_IN, h->mb.n - 1);
    }
    sim_pkt_free(net, p);
}

static void route(sim_net *net, sim_pkt *p)
{
    for (;;) {
        switch (p->priv.hop) {
        case HOP_SRC_MB_OUT: {
            sim_host *h = p->priv.src_host;
            if (!run_chain(net, &h->mb, p, SIM_DIR_OUT))
                return;
            p->priv.hop = HOP_SRC_UP;
            break;
        }
        case HOP_SRC_UP:
            cross(net, &p->priv.src_host->up, p, HOP_AT_LAN, 0);
            return;
        case HOP_AT_LAN: {
            sim_host *h = p->priv.src_host;
            uint32_t dst = sim_addr_ip4(&p->dst);
            if (!h->lan) {
                if (sim_ip_is_multicast(dst)) {
                    drop(net, p, &net->st.no_route);
                    return;
                }
                p->priv.hop = HOP_CORE;
                break;
            }
            if (sim_ip_is_multicast(dst)) {
                fan_out_multicast(net, h->lan, p);
                return;
            }
            addr_ent *e = addrmap_find(&h->lan->hosts, dst);
            if (e) {
                to_dst_host(p, e->ptr);
                break;
            }
            p->priv.lan = h->lan;
            p->priv.hop = HOP_LAN_MB_OUT;
            p->priv.mb = 0;
            break;
        }
        case HOP_LAN_MB_OUT: {
            sim_lan *l = p->priv.lan;
            if (!run_chain(net, &l->mb, p, SIM_DIR_OUT))
                return;
            addr_ent *e = addrmap_find(&net->global, sim_addr_ip4(&p->dst));
            if (e && e->kind == ENT_LAN && e->ptr == l) { /* hairpin at the gateway */
                p->priv.hop = HOP_LAN_MB_IN;
                p->priv.mb = l->mb.n - 1;
                break;
            }
            p->priv.hop = HOP_LAN_UP;
            break;
        }
        case HOP_LAN_UP:
            cross(net, &p->priv.lan->up, p, HOP_CORE, 0);
            return;
        case HOP_CORE: {
            uint32_t dst = sim_addr_ip4(&p->dst);
            addr_ent *e = addrmap_find(&net->global, dst);
            if (!e || sim_ip_is_multicast(dst)) {
                drop(net, p, &net->st.no_route);
                return;
            }
            sim_lan *to_lan = NULL;
            sim_host *to_host = NULL;
            if (e->kind == ENT_LAN)
                to_lan = e->ptr;
            else if (((sim_host *)e->ptr)->lan)
                to_lan = ((sim_host *)e->ptr)->lan;
            else
                to_host = e->ptr;
            if (net->core.loss > 0 && sim_rng_chance(&net->core_rng, net->core.loss)) {
                drop(net, p, &net->st.link_drops);
                return;
            }
            mesh_time lat = net->core.latency;
            if (net->core_fn) {
                uint64_t from = p->priv.lan        ? p->priv.lan->id
                                : p->priv.src_host ? (p->priv.src_host->id | SIM_NET_ATTACH_HOST)
                                                   : 0;
                uint64_t to = to_lan ? to_lan->id : (to_host->id | SIM_NET_ATTACH_HOST);
                lat = net->core_fn(net->core_ud, from, to);
            }
            if (to_lan) {
                p->priv.lan = to_lan;
                p->priv.hop = HOP_LAN_DOWN;
            } else {
                to_dst_host(p, to_host);
            }
            if (lat) {
                schedule_hop(net, p, sim_net_now(net) + lat, SIM_EV_NET_HOP);
                return;
            }
            break;
        }
        case HOP_LAN_DOWN:
            cross(net, &p->priv.lan->down, p, HOP_LAN_MB_IN, p->priv.lan->mb.n - 1);
            return;
        case HOP_LAN_MB_IN: {
            sim_lan *l = p->priv.lan;
            if (!run_chain(net, &l->mb, p, SIM_DIR_IN))
                return;
            addr_ent *e = addrmap_find(&l->hosts, sim_addr_ip4(&p->dst));
            if (!e) {
                drop(net, p, &net->st.no_route);
                return;
            }
            to_dst_host(p, e->ptr);
            break;
        }
        case HOP_DST_DOWN: {
            sim_host *h = p->priv.dst_host;
            if (!h->is_up) {
                drop(net, p, &net->st.host_down);
                return;
            }
            cross(net, &h->down, p, HOP_DST_MB_IN, h->mb.n - 1);
            return;
        }
        case HOP_DST_MB_IN:
            if (!run_chain(net, &p->priv.dst_host->mb, p, SIM_DIR_IN))
                return;
            p->priv.hop = HOP_DELIVER;
            break;
        case HOP_DELIVER: {
            sim_host *h = p->priv.dst_host;
            int ti = p->proto == SIM_PROTO_TCP ? 0 : p->proto == SIM_PROTO_UDP ? 1 : -1;
            if (!h->is_up) {
                drop(net, p, &net->st.host_down);
                return;
            }
            net->st.delivered++;
            if (ti >= 0 && net->transport[ti].fn)
                net->transport[ti].fn(net->transport[ti].ctx, h, p);
            sim_pkt_free(net, p);
            return;
        }
        default:
            sim_pkt_free(net, p);
            return;
        }
    }
}

static void hop_ev(void *ctx, void *arg)
{
    route(ctx, arg);
}

int sim_net_send(sim_net *net, sim_host *from, sim_pkt *p)
{
    if (!from || p->src.family != MESH_AF_INET4 || p->dst.family != MESH_AF_INET4) {
        sim_pkt_free(net, p);
        return MESH_ERR_INVAL;
    }
    net->st.sent++;
    if (!from->is_up) {
        drop(net, p, &net->st.host_down);
        return MESH_OK;
    }
    p->sent_at = sim_net_now(net);
    p->priv.src_host = from;
    p->priv.dst_host = NULL;
    p->priv.lan = NULL;
    p->priv.mb = 0;
    p->priv.hop = HOP_SRC_MB_OUT;
    route(net, p);
    return MESH_OK;
}
