/* udp.c — socket table: chained hash on (host id, port); closed sockets stay linked (and
 * skipped) until a reap event frees them, so delivery loops never see freed memory. */
#include "sim/udp.h"

#include <stdlib.h>
#include <string.h>

enum { UDP_MIN_BUCKETS = 256 };

struct sim_udp_sock {
    sim_udp *u;
    sim_host *host;
    uint16_t port;
    int closed;
    sim_udp_recv_fn fn;
    void *ud;
    uint32_t groups[SIM_UDP_MAX_GROUPS_PER_SOCK];
    int ngroups;
    sim_udp_sock *next;      /* hash chain */
    sim_udp_sock *next_dead; /* reap list */
};

struct sim_udp {
    sim_net *net;
    sim_udp_sock **b;
    size_t nb, n;
    uint32_t next_port;
    sim_udp_sock *dead;
    sim_event_id reap_ev;
};

static inline size_t bucket(const sim_udp *u, uint32_t host_id, uint16_t port)
{
    uint64_t k = ((uint64_t)host_id << 16 | port) * 0x9e3779b97f4a7c15ULL;
    return (size_t)(k >> 32) & (u->nb - 1);
}

static void deliver(void *ctx, sim_host *h, const sim_pkt *p);

int sim_udp_new(sim_udp **out, sim_net *net)
{
    if (!net)
        return MESH_ERR_INVAL;
    sim_udp *u = calloc(1, sizeof *u);
    if (!u)
        return MESH_ERR_NOMEM;
    u->b = calloc(UDP_MIN_BUCKETS, sizeof *u->b);
    if (!u->b) {
        free(u);
        return MESH_ERR_NOMEM;
    }
    u->nb = UDP_MIN_BUCKETS;
    u->net = net;
    u->next_port = SIM_UDP_EPHEMERAL_LO;
    sim_net_set_transport(net, SIM_PROTO_UDP, deliver, u);
    *out = u;
    return MESH_OK;
}

void sim_udp_free(sim_udp *u)
{
    if (!u)
        return;
    sim_sched_cancel(sim_net_sched(u->net), u->reap_ev);
    sim_net_set_transport(u->net, SIM_PROTO_UDP, NULL, NULL);
    for (size_t i = 0; i < u->nb; i++)
        for (sim_udp_sock *s = u->b[i], *nx; s; s = nx) {
            nx = s->next;
            free(s);
        }
    free(u->b);
    free(u);
}

static sim_udp_sock *find(const sim_udp *u, uint32_t host_id, uint16_t port)
{
    for (sim_udp_sock *s = u->b[bucket(u, host_id, port)]; s; s = s->next)
        if (!s->closed && s->port == port && sim_host_id(s->host) == host_id)
            return s;
    return NULL;
}

static void rehash(sim_udp *u)
{
    size_t nn = u->nb * 2;
    sim_udp_sock **nb = calloc(nn, sizeof *nb);
    if (!nb)
        return; /* keep the old table: longer chains, still correct */
    sim_udp_sock **old = u->b;
    size_t on = u->nb;
    u->b = nb;
    u->nb = nn;
    for (size_t i = 0; i < on; i++) {
        /* Re-insert at each chain's tail so sockets sharing a port keep their age order. */
        for (sim_udp_sock *s = old[i], *nx; s; s = nx) {
            nx = s->next;
            s->next = NULL;
            sim_udp_sock **pp = &u->b[bucket(u, sim_host_id(s->host), s->port)];
            while (*pp)
                pp = &(*pp)->next;
            *pp = s;
        }
    }
    free(old);
}

int sim_udp_bind(sim_udp *u, sim_host *h, uint16_t port, sim_udp_recv_fn fn, void *ud,
                 sim_udp_sock **out)
{
    if (!u || !h || !out || sim_host_net(h) != u->net)
        return MESH_ERR_INVAL;
    uint32_t hid = sim_host_id(h);
    if (port == 0) {
        for (uint32_t tries = 0;; tries++) {
            if (tries > 65535 - SIM_UDP_EPHEMERAL_LO)
                return MESH_ERR_ADDR;
            uint16_t p = (uint16_t)u->next_port;
            u->next_port = u->next_port >= 65535 ? SIM_UDP_EPHEMERAL_LO : u->next_port + 1;
            if (!find(u, hid, p)) {
                port = p;
                break;
            }
        }
    }
    sim_udp_sock *s = calloc(1, sizeof *s);
    if (!s)
        return MESH_ERR_NOMEM;
    s->u = u;
    s->host = h;
    s->port = port;
    s->fn = fn;
    s->ud = ud;
    if (u->n + 1 > u->nb)
        rehash(u);
    sim_udp_sock **pp = &u->b[bucket(u, hid, port)];
    while (*pp)
        pp = &(*pp)->next;
    *pp = s;
    u->n++;
    *out = s;
    return MESH_OK;
}

mesh_addr sim_udp_local(const sim_udp_sock *s)
{
    return mesh_addr_v4(sim_host_ip(s->host), s->port);
}
sim_host *sim_udp_host(const sim_udp_sock *s)
{
    return s->host;
}

int sim_udp_send(sim_udp_sock *s, const mesh_addr *to, const void *data, size_t len)
{
    if (!s || !to || to->family != MESH_AF_INET4 || to->port == 0 || (len && !data))
        return MESH_ERR_INVAL;
    if (s->closed)
        return MESH_ERR_CLOSED;
    if (len > SIM_PKT_MAX_PAYLOAD)
        return MESH_ERR_TOO_BIG;
    sim_pkt *p;
    int rc = sim_pkt_new(s->u->net, &p, data, len);
    if (rc != MESH_OK)
        return rc;
    p->proto = SIM_PROTO_UDP;
    p->src = sim_udp_local(s);
    p->dst = *to;
    return sim_net_send(s->u->net, s->host, p);
}

int sim_udp_join(sim_udp_sock *s, uint32_t group)
{
    if (!s || !sim_ip_is_multicast(group))
        return MESH_ERR_INVAL;
    if (s->closed)
        return MESH_ERR_CLOSED;
    for (int i = 0; i < s->ngroups; i++)
        if (s->groups[i] == group)
            return MESH_OK;
    if (s->ngroups >= SIM_UDP_MAX_GROUPS_PER_SOCK)
        return MESH_ERR_LIMIT;
    int rc = sim_host_join_group(s->host, group);
    if (rc != MESH_OK)
        return rc;
    s->groups[s->ngroups++] = group;
    return MESH_OK;
}

static void reap(void *ctx, void *arg)
{
    sim_udp *u = ctx;
    (void)arg;
    u->reap_ev = SIM_EVENT_NONE;
    while (u->dead) {
        sim_udp_sock *s = u->dead;
        u->dead = s->next_dead;
        sim_udp_sock **pp = &u->b[bucket(u, sim_host_id(s->host), s->port)];
        while (*pp != s)
            pp = &(*pp)->next;
        *pp = s->next;
        u->n--;
        free(s);
    }
}

void sim_udp_close(sim_udp_sock *s)
{
    if (!s || s->closed)
        return;
    s->closed = 1;
    for (int i = 0; i < s->ngroups; i++)
        sim_host_leave_group(s->host, s->groups[i]);
    s->ngroups = 0;
    sim_udp *u = s->u;
    s->next_dead = u->dead;
    u->dead = s;
    if (u->reap_ev == SIM_EVENT_NONE)
        sim_sched_after(sim_net_sched(u->net), 0, SIM_EV_REAP, 0, reap, u, NULL, &u->reap_ev);
}

static int joined(const sim_udp_sock *s, uint32_t g)
{
    for (int i = 0; i < s->ngroups; i++)
        if (s->groups[i] == g)
            return 1;
    return 0;
}

static void deliver(void *ctx, sim_host *h, const sim_pkt *p)
{
    sim_udp *u = ctx;
    uint32_t hid = sim_host_id(h), dst = sim_addr_ip4(&p->dst);
    uint16_t port = p->dst.port;
    if (!sim_ip_is_multicast(dst)) {
        sim_udp_sock *s = find(u, hid, port);
        if (s && s->fn)
            s->fn(s, &p->src, p->data, p->len, s->ud);
        return;
    }
    /* Collect first: callbacks may bind (rehash) or close while we deliver. */
    sim_udp_sock *to[SIM_UDP_MAX_FANOUT];
    int n = 0;
    for (sim_udp_sock *s = u->b[bucket(u, hid, port)]; s && n < SIM_UDP_MAX_FANOUT; s = s->next)
        if (!s->closed && s->port == port && sim_host_id(s->host) == hid && joined(s, dst))
            to[n++] = s;
    for (int i = 0; i < n; i++)
        if (!to[i]->closed && to[i]->fn)
            to[i]->fn(to[i], &p->src, p->data, p->len, to[i]->ud);
}
