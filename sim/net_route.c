/* net_route.c — a packet's walk along its path (see net.h, net_int.h): route() runs the
 * synchronous stages (middleboxes, routing decisions) and stops at the next link, which
 * schedules the packet's arrival at the following stage as one event. */
#include <stdlib.h>
#include <string.h>

#include "sim/net_int.h"

/* ---- middlebox re-injection and hops ------------------------------------------------------ */

static void hop_ev(void *ctx, void *arg);

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

/* ---- the walk ------------------------------------------------------------------------- */

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

/* Each stage below handles p at its hop and returns 1 when p moved on to a stage that runs
 * at once (p->priv.hop updated), 0 when it left this walk: onto a link or a delay (an event
 * continues it), delivered, or dropped. */

/* An address found on a LAN: a host there, or a LAN behind it (down into it). */
static void to_entry(sim_pkt *p, const addr_ent *e)
{
    if (e->kind == ENT_HOST) {
        to_dst_host(p, e->ptr);
        return;
    }
    p->priv.lan = e->ptr;
    p->priv.hop = HOP_LAN_DOWN;
}

/* At a LAN, from a host on it or from a LAN behind it: a neighbour on it (or a LAN behind it
 * that owns the address), multicast to its members, or out through the gateway; from a host
 * on the core (no LAN) straight to core routing. */
static int at_lan(sim_net *net, sim_pkt *p)
{
    sim_lan *l = p->priv.lan;
    uint32_t dst = sim_addr_ip4(&p->dst);
    if (!l) {
        if (sim_ip_is_multicast(dst)) {
            drop(net, p, &net->st.no_route);
            return 0;
        }
        p->priv.hop = HOP_CORE;
        return 1;
    }
    if (sim_ip_is_multicast(dst)) {
        fan_out_multicast(net, l, p);
        return 0;
    }
    addr_ent *e = addrmap_find(&l->hosts, dst);
    if (e) {
        to_entry(p, e);
        return 1;
    }
    p->priv.hop = HOP_LAN_MB_OUT;
    p->priv.mb = 0;
    return 1;
}

/* Through the LAN's gateway middleboxes; a packet to the LAN's own public address turns back
 * in at the gateway (hairpin). */
static int lan_mb_out(sim_net *net, sim_pkt *p)
{
    sim_lan *l = p->priv.lan;
    if (!run_chain(net, &l->mb, p, SIM_DIR_OUT))
        return 0;
    if (l->public_ip && sim_addr_ip4(&p->dst) == l->public_ip) {
        p->priv.hop = HOP_LAN_MB_IN;
        p->priv.mb = l->mb.n - 1;
        return 1;
    }
    p->priv.hop = HOP_LAN_UP;
    return 1;
}

/* The LAN on the core whose chain holds l. */
static sim_lan *top_lan(sim_lan *l)
{
    while (l->upstream)
        l = l->upstream;
    return l;
}

/* Across the core: the destination's site (a LAN, or a host on the core), core loss, and
 * the core's latency between the two sites. */
static int core(sim_net *net, sim_pkt *p)
{
    uint32_t dst = sim_addr_ip4(&p->dst);
    addr_ent *e = addrmap_find(&net->global, dst);
    if (!e || sim_ip_is_multicast(dst)) {
        drop(net, p, &net->st.no_route);
        return 0;
    }
    sim_lan *to_lan = NULL;
    sim_host *to_host = NULL;
    if (e->kind == ENT_LAN)
        to_lan = top_lan(e->ptr);
    else if (((sim_host *)e->ptr)->lan)
        to_lan = top_lan(((sim_host *)e->ptr)->lan);
    else
        to_host = e->ptr;
    if (net->core.loss > 0 && sim_rng_chance(&net->core_rng, net->core.loss)) {
        drop(net, p, &net->st.link_drops);
        return 0;
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
        return 0;
    }
    return 1;
}

/* Through the destination LAN's gateway middleboxes to the host (or the LAN behind this one)
 * the address names. */
static int lan_mb_in(sim_net *net, sim_pkt *p)
{
    sim_lan *l = p->priv.lan;
    if (!run_chain(net, &l->mb, p, SIM_DIR_IN))
        return 0;
    addr_ent *e = addrmap_find(&l->hosts, sim_addr_ip4(&p->dst));
    if (!e) {
        drop(net, p, &net->st.no_route);
        return 0;
    }
    to_entry(p, e);
    return 1;
}

/* To the transport of the destination host, if it is up. */
static void deliver(sim_net *net, sim_pkt *p)
{
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
}

/* One step of the walk (see above for the return value). */
static int step(sim_net *net, sim_pkt *p)
{
    switch (p->priv.hop) {
    case HOP_SRC_MB_OUT:
        if (!run_chain(net, &p->priv.src_host->mb, p, SIM_DIR_OUT))
            return 0;
        p->priv.hop = HOP_SRC_UP;
        return 1;
    case HOP_SRC_UP:
        p->priv.lan = p->priv.src_host->lan;
        cross(net, &p->priv.src_host->up, p, HOP_AT_LAN, 0);
        return 0;
    case HOP_AT_LAN:
        return at_lan(net, p);
    case HOP_LAN_MB_OUT:
        return lan_mb_out(net, p);
    case HOP_LAN_UP: {
        sim_lan *l = p->priv.lan; /* a LAN behind another climbs into it, else the core */
        p->priv.lan = l->upstream ? l->upstream : l;
        cross(net, &l->up, p, l->upstream ? HOP_AT_LAN : HOP_CORE, 0);
        return 0;
    }
    case HOP_CORE:
        return core(net, p);
    case HOP_LAN_DOWN:
        cross(net, &p->priv.lan->down, p, HOP_LAN_MB_IN, p->priv.lan->mb.n - 1);
        return 0;
    case HOP_LAN_MB_IN:
        return lan_mb_in(net, p);
    case HOP_DST_DOWN:
        if (!p->priv.dst_host->is_up) {
            drop(net, p, &net->st.host_down);
            return 0;
        }
        cross(net, &p->priv.dst_host->down, p, HOP_DST_MB_IN, p->priv.dst_host->mb.n - 1);
        return 0;
    case HOP_DST_MB_IN:
        if (!run_chain(net, &p->priv.dst_host->mb, p, SIM_DIR_IN))
            return 0;
        p->priv.hop = HOP_DELIVER;
        return 1;
    case HOP_DELIVER:
        deliver(net, p);
        return 0;
    default:
        sim_pkt_free(net, p);
        return 0;
    }
}

static void route(sim_net *net, sim_pkt *p)
{
    while (step(net, p))
        ;
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
