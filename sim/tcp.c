/* tcp.c — the stream model of tcp.h: the endpoint. Connection and listener tables (hashed by
 * host and ports), life cycle (dead connections are freed from a reap event, never under a
 * callback), ports and initial sequence numbers, arriving segments handed to their
 * connection (tcp_conn.c) or accepted from a listener, and the public calls. */
#include "sim/tcp.h"

#include <stdlib.h>
#include <string.h>

#include "sim/tcp_int.h"

static void deliver(void *ctx, sim_host *h, const sim_pkt *p);

/* ---- tables ----------------------------------------------------------------------------- */

static inline uint64_t mix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
}

static size_t conn_bucket(size_t nb, uint32_t hid, uint16_t lport, uint32_t rip, uint16_t rport)
{
    uint64_t k = mix(((uint64_t)hid << 32 | (uint64_t)lport << 16 | rport) ^ mix(rip));
    return (size_t)k & (nb - 1);
}

static size_t conn_bucket_of(size_t nb, const sim_tcp_conn *c)
{
    return conn_bucket(nb, sim_host_id(c->host), c->local.port, sim_addr_ip4(&c->remote),
                       c->remote.port);
}

static sim_tcp_conn *conn_find(const sim_tcp *t, uint32_t hid, uint16_t lport, uint32_t rip,
                               uint16_t rport)
{
    for (sim_tcp_conn *c = t->cb[conn_bucket(t->cnb, hid, lport, rip, rport)]; c; c = c->next)
        if (c->local.port == lport && c->remote.port == rport && sim_addr_ip4(&c->remote) == rip &&
            sim_host_id(c->host) == hid)
            return c;
    return NULL;
}

static int conn_link(sim_tcp *t, sim_tcp_conn *c)
{
    if (t->cn + 1 > t->cnb) {
        size_t nn = t->cnb * 2;
        sim_tcp_conn **nb = calloc(nn, sizeof *nb);
        if (nb) {
            for (size_t i = 0; i < t->cnb; i++)
                for (sim_tcp_conn *x = t->cb[i], *nx; x; x = nx) {
                    nx = x->next;
                    size_t b = conn_bucket_of(nn, x);
                    x->next = nb[b];
                    nb[b] = x;
                }
            free(t->cb);
            t->cb = nb;
            t->cnb = nn;
        }
    }
    size_t b = conn_bucket_of(t->cnb, c);
    c->next = t->cb[b];
    t->cb[b] = c;
    t->cn++;
    c->linked = 1;
    t->st.conns_live++;
    return MESH_OK;
}

void tcp_conn_unlink(sim_tcp *t, sim_tcp_conn *c)
{
    if (!c->linked)
        return;
    sim_tcp_conn **pp = &t->cb[conn_bucket_of(t->cnb, c)];
    while (*pp != c)
        pp = &(*pp)->next;
    *pp = c->next;
    t->cn--;
    c->linked = 0;
    t->st.conns_live--;
}

static size_t lst_bucket(size_t nb, uint32_t hid, uint16_t port)
{
    return (size_t)mix((uint64_t)hid << 16 | port) & (nb - 1);
}

static sim_tcp_listener *lst_find(const sim_tcp *t, uint32_t hid, uint16_t port)
{
    for (sim_tcp_listener *l = t->lb[lst_bucket(t->lnb, hid, port)]; l; l = l->next)
        if (l->port == port && sim_host_id(l->host) == hid)
            return l;
    return NULL;
}

/* ---- life cycle ------------------------------------------------------------------------- */

int sim_tcp_new(sim_tcp **out, sim_net *net, const sim_tcp_cfg *cfg)
{
    if (!out || !net)
        return MESH_ERR_INVAL;
    sim_tcp *t = calloc(1, sizeof *t);
    if (!t)
        return MESH_ERR_NOMEM;
    t->cb = calloc(TCP_MIN_BUCKETS, sizeof *t->cb);
    t->lb = calloc(TCP_MIN_BUCKETS, sizeof *t->lb);
    if (!t->cb || !t->lb) {
        free(t->cb);
        free(t->lb);
        free(t);
        return MESH_ERR_NOMEM;
    }
    t->cnb = t->lnb = TCP_MIN_BUCKETS;
    t->net = net;
    t->next_port = SIM_TCP_EPHEMERAL_LO;
    if (cfg)
        t->cfg = *cfg;
    sim_tcp_cfg *c = &t->cfg;
    if (!c->mss || c->mss > SIM_PKT_MAX_PAYLOAD)
        c->mss = SIM_TCP_DEFAULT_MSS;
    if (!c->window)
        c->window = SIM_TCP_DEFAULT_WINDOW;
    if (c->window < c->mss)
        c->window = c->mss;
    if (!c->connect_timeout)
        c->connect_timeout = SIM_TCP_DEFAULT_CONNECT_TIMEOUT_MS * MESH_NS_PER_MS;
    if (!c->syn_rto)
        c->syn_rto = SIM_TCP_DEFAULT_SYN_RTO_MS * MESH_NS_PER_MS;
    if (!c->min_rto)
        c->min_rto = SIM_TCP_DEFAULT_MIN_RTO_MS * MESH_NS_PER_MS;
    if (!c->max_rto)
        c->max_rto = SIM_TCP_DEFAULT_MAX_RTO_MS * MESH_NS_PER_MS;
    if (!c->pace)
        c->pace = SIM_TCP_DEFAULT_PACE_US * MESH_NS_PER_US;
    if (!c->max_retries)
        c->max_retries = SIM_TCP_DEFAULT_MAX_RETRIES;
    sim_net_set_transport(net, SIM_PROTO_TCP, deliver, t);
    *out = t;
    return MESH_OK;
}

static void conn_free_mem(sim_tcp_conn *c)
{
    for (size_t i = 0; i < c->nooo; i++)
        free(c->ooo[i].data);
    free(c->ooo);
    free(c->segs);
    free(c->sbuf);
    free(c);
}

void tcp_conn_cancel_events(sim_tcp_conn *c)
{
    sim_sched *s = sim_net_sched(c->t->net);
    sim_sched_cancel(s, c->rto_ev);
    sim_sched_cancel(s, c->push_ev);
    sim_sched_cancel(s, c->connto_ev);
    c->rto_ev = c->push_ev = c->connto_ev = SIM_EVENT_NONE;
}

void sim_tcp_free(sim_tcp *t)
{
    if (!t)
        return;
    sim_sched_cancel(sim_net_sched(t->net), t->reap_ev);
    sim_net_set_transport(t->net, SIM_PROTO_TCP, NULL, NULL);
    for (size_t i = 0; i < t->cnb; i++)
        for (sim_tcp_conn *c = t->cb[i], *nx; c; c = nx) {
            nx = c->next;
            tcp_conn_cancel_events(c);
            /* A handshake in progress holds its listener. If that listener was closed, it
             * is in neither the table nor the dead list: the last such handshake frees it. */
            if (c->lst && --c->lst->refs == 0)
                free(c->lst);
            conn_free_mem(c);
        }
    while (t->dead) {
        sim_tcp_conn *c = t->dead;
        t->dead = c->next_dead;
        conn_free_mem(c);
    }
    for (size_t i = 0; i < t->lnb; i++)
        for (sim_tcp_listener *l = t->lb[i], *nx; l; l = nx) {
            nx = l->next;
            free(l);
        }
    while (t->dead_l) {
        sim_tcp_listener *l = t->dead_l;
        t->dead_l = l->next;
        free(l);
    }
    free(t->cb);
    free(t->lb);
    free(t);
}

sim_tcp_stats sim_tcp_get_stats(const sim_tcp *t)
{
    return t->st;
}

static void reap(void *ctx, void *arg)
{
    sim_tcp *t = ctx;
    (void)arg;
    t->reap_ev = SIM_EVENT_NONE;
    while (t->dead) {
        sim_tcp_conn *c = t->dead;
        t->dead = c->next_dead;
        conn_free_mem(c);
    }
    while (t->dead_l) {
        sim_tcp_listener *l = t->dead_l;
        t->dead_l = l->next;
        free(l);
    }
}

void tcp_want_reap(sim_tcp *t)
{
    if (t->reap_ev == SIM_EVENT_NONE)
        sim_sched_after(sim_net_sched(t->net), 0, SIM_EV_REAP, 0, reap, t, NULL, &t->reap_ev);
}

void tcp_lst_unref(sim_tcp_listener *l)
{
    if (--l->refs == 0) {
        l->next = l->t->dead_l; /* unlinked already: reuse next for the dead list */
        l->t->dead_l = l;
        tcp_want_reap(l->t);
    }
}

/* ---- ports and sequence numbers ------------------------------------------------------------ */

static uint16_t ephemeral(sim_tcp *t, uint32_t hid, uint32_t rip, uint16_t rport)
{
    for (uint32_t tries = 0; tries <= 65535 - SIM_TCP_EPHEMERAL_LO; tries++) {
        uint16_t p = (uint16_t)t->next_port;
        t->next_port = t->next_port >= 65535 ? SIM_TCP_EPHEMERAL_LO : t->next_port + 1;
        if (!conn_find(t, hid, p, rip, rport) && !lst_find(t, hid, p))
            return p;
    }
    return 0;
}

static uint32_t make_isn(sim_tcp *t, uint32_t hid, uint16_t lport)
{
    /* A pure function of (seed, host, port, counter): no shared stream to perturb. */
    return (uint32_t)mix(sim_net_seed(t->net) ^ mix((uint64_t)hid << 16 | lport) ^
                         mix(++t->isn_counter + SIM_RNG_STREAM_TCP));
}

/* ---- arriving segments: to their connection, or a new one from a listener ---------------- */

static void deliver(void *ctx, sim_host *h, const sim_pkt *p)
{
    sim_tcp *t = ctx;
    uint32_t hid = sim_host_id(h);
    sim_tcp_conn *c = conn_find(t, hid, p->dst.port, sim_addr_ip4(&p->src), p->src.port);
    if (c) {
        tcp_segment_in(c, p);
        return;
    }
    if (p->flags & SIM_TCP_RST)
        return; /* never answer a RST */
    if ((p->flags & (SIM_TCP_SYN | SIM_TCP_ACK)) == SIM_TCP_SYN) {
        sim_tcp_listener *l = lst_find(t, hid, p->dst.port);
        if (!l || l->closed) {
            tcp_send_raw(t, h, &p->dst, &p->src, SIM_TCP_RST | SIM_TCP_ACK, 0, p->seq + 1, NULL, 0);
            return;
        }
        c = calloc(1, sizeof *c);
        if (!c)
            return; /* like a full SYN backlog: the client retries */
        c->t = t;
        c->host = h;
        c->local = mesh_addr_v4(sim_host_ip(h), p->dst.port);
        c->remote = p->src;
        c->state = ST_SYN_RCVD;
        c->irs = p->seq;
        c->iss = make_isn(t, hid, p->dst.port);
        c->lst = l;
        l->refs++;
        c->syn_sent = sim_net_now(t->net);
        conn_link(t, c);
        t->st.conns_opened++;
        tcp_send_ctl(c, SIM_TCP_SYN | SIM_TCP_ACK, c->iss);
        tcp_arm_rto(c, t->cfg.syn_rto);
        return;
    }
    /* a segment for no connection: closed port or forgotten connection */
    if (p->len || (p->flags & (SIM_TCP_FIN | SIM_TCP_SYN))) {
        uint32_t seq = (p->flags & SIM_TCP_ACK) ? p->ack : 0;
        tcp_send_raw(t, h, &p->dst, &p->src, SIM_TCP_RST, seq, 0, NULL, 0);
    }
}

/* ---- public calls ------------------------------------------------------------------------- */

int sim_tcp_listen(sim_tcp *t, sim_host *h, uint16_t port, sim_tcp_accept_fn fn, void *ud,
                   sim_tcp_listener **out)
{
    if (!t || !h || !out || sim_host_net(h) != t->net)
        return MESH_ERR_INVAL;
    uint32_t hid = sim_host_id(h);
    if (port == 0)
        port = ephemeral(t, hid, 0, 0);
    if (port == 0 || lst_find(t, hid, port))
        return MESH_ERR_ADDR;
    sim_tcp_listener *l = calloc(1, sizeof *l);
    if (!l)
        return MESH_ERR_NOMEM;
    *l = (sim_tcp_listener){t, h, port, 0, 1, fn, ud, NULL};
    if (t->ln + 1 > t->lnb) {
        size_t nn = t->lnb * 2;
        sim_tcp_listener **nb = calloc(nn, sizeof *nb);
        if (nb) {
            for (size_t i = 0; i < t->lnb; i++)
                for (sim_tcp_listener *x = t->lb[i], *nx; x; x = nx) {
                    nx = x->next;
                    size_t b = lst_bucket(nn, sim_host_id(x->host), x->port);
                    x->next = nb[b];
                    nb[b] = x;
                }
            free(t->lb);
            t->lb = nb;
            t->lnb = nn;
        }
    }
    size_t b = lst_bucket(t->lnb, hid, port);
    l->next = t->lb[b];
    t->lb[b] = l;
    t->ln++;
    *out = l;
    return MESH_OK;
}

mesh_addr sim_tcp_listener_addr(const sim_tcp_listener *l)
{
    return mesh_addr_v4(sim_host_ip(l->host), l->port);
}

void sim_tcp_listener_close(sim_tcp_listener *l)
{
    if (!l || l->closed)
        return;
    sim_tcp *t = l->t;
    l->closed = 1;
    sim_tcp_listener **pp = &t->lb[lst_bucket(t->lnb, sim_host_id(l->host), l->port)];
    while (*pp != l)
        pp = &(*pp)->next;
    *pp = l->next;
    t->ln--;
    tcp_lst_unref(l);
}

/* An active open from (h, lport) to `to`: the SYN goes out now. */
static int open_active(sim_tcp *t, sim_host *h, uint16_t lport, const mesh_addr *to,
                       const sim_tcp_cbs *cbs, void *ud, sim_tcp_conn **out)
{
    uint32_t hid = sim_host_id(h);
    sim_tcp_conn *c = calloc(1, sizeof *c);
    if (!c)
        return MESH_ERR_NOMEM;
    c->t = t;
    c->host = h;
    c->local = mesh_addr_v4(sim_host_ip(h), lport);
    c->remote = *to;
    c->state = ST_SYN_SENT;
    c->active = 1;
    if (cbs)
        c->cbs = *cbs;
    c->ud = ud;
    c->iss = make_isn(t, hid, lport);
    c->syn_sent = sim_net_now(t->net);
    conn_link(t, c);
    t->st.conns_opened++;
    /* The SYN goes out now (no callback can result synchronously: arrivals are events). */
    tcp_send_ctl(c, SIM_TCP_SYN, c->iss);
    tcp_arm_rto(c, t->cfg.syn_rto);
    sim_sched_after(sim_net_sched(t->net), t->cfg.connect_timeout, SIM_EV_TCP_CONNTO, hid,
                    tcp_connto_fire, c, NULL, &c->connto_ev);
    *out = c;
    return MESH_OK;
}

int sim_tcp_connect(sim_tcp *t, sim_host *h, const mesh_addr *to, const sim_tcp_cbs *cbs, void *ud,
                    sim_tcp_conn **out)
{
    if (!t || !h || !to || !out || to->family != MESH_AF_INET4 || to->port == 0 ||
        sim_host_net(h) != t->net)
        return MESH_ERR_INVAL;
    uint16_t lport = ephemeral(t, sim_host_id(h), sim_addr_ip4(to), to->port);
    if (!lport)
        return MESH_ERR_ADDR;
    return open_active(t, h, lport, to, cbs, ud, out);
}

int sim_tcp_connect_from(sim_tcp *t, sim_host *h, uint16_t lport, const mesh_addr *to,
                         const sim_tcp_cbs *cbs, void *ud, sim_tcp_conn **out)
{
    if (!t || !h || !to || !out || to->family != MESH_AF_INET4 || to->port == 0 || lport == 0 ||
        sim_host_net(h) != t->net)
        return MESH_ERR_INVAL;
    /* A listener on lport is no obstacle (SO_REUSEPORT); the same four-tuple is. */
    if (conn_find(t, sim_host_id(h), lport, sim_addr_ip4(to), to->port))
        return MESH_ERR_ADDR;
    return open_active(t, h, lport, to, cbs, ud, out);
}

void sim_tcp_set_cbs(sim_tcp_conn *c, const sim_tcp_cbs *cbs, void *ud)
{
    if (!c)
        return;
    memset(&c->cbs, 0, sizeof c->cbs);
    if (cbs)
        c->cbs = *cbs;
    c->ud = ud;
}

int sim_tcp_write(sim_tcp_conn *c, const void *data, size_t len)
{
    if (!c || (len && !data))
        return MESH_ERR_INVAL;
    if (c->released || c->state == ST_DEAD || c->fin_wanted)
        return MESH_ERR_CLOSED;
    if (len == 0)
        return MESH_OK;
    size_t used = (size_t)(c->snd_end - c->snd_una);
    if (c->sbuf_head + used + len > c->sbuf_cap) {
        if (c->sbuf_head > 0) { /* compact before growing */
            memmove(c->sbuf, c->sbuf + c->sbuf_head, used);
            c->sbuf_head = 0;
        }
        if (used + len > c->sbuf_cap) {
            size_t nc = c->sbuf_cap ? c->sbuf_cap : 4096;
            while (nc < used + len)
                nc *= 2;
            uint8_t *nb = realloc(c->sbuf, nc);
            if (!nb)
                return MESH_ERR_NOMEM;
            c->sbuf = nb;
            c->sbuf_cap = nc;
        }
    }
    memcpy(c->sbuf + c->sbuf_head + used, data, len);
    c->snd_end += len;
    c->want_writable = 1;
    if (c->state == ST_ESTABLISHED)
        tcp_want_push(c, sim_net_now(c->t->net));
    return MESH_OK;
}

size_t sim_tcp_pending(const sim_tcp_conn *c)
{
    return c ? (size_t)(c->snd_end - c->snd_nxt) : 0;
}
mesh_addr sim_tcp_local(const sim_tcp_conn *c)
{
    return c->local;
}
mesh_addr sim_tcp_remote(const sim_tcp_conn *c)
{
    return c->remote;
}
sim_host *sim_tcp_host(const sim_tcp_conn *c)
{
    return c->host;
}

void sim_tcp_close(sim_tcp_conn *c, int how)
{
    if (!c || c->released)
        return;
    c->released = 1;
    if (c->state == ST_DEAD)
        return;
    if (how == MESH_CLOSE_ABORT || c->state != ST_ESTABLISHED) {
        if (c->state == ST_ESTABLISHED)
            tcp_send_ctl(c, SIM_TCP_RST | SIM_TCP_ACK, c->iss + 1 + (uint32_t)c->snd_nxt);
        else if (c->state == ST_SYN_SENT || c->state == ST_SYN_RCVD) /* SYN_RCVD: crossed */
            tcp_send_ctl(c, SIM_TCP_RST, c->iss + 1);
        tcp_conn_kill(c, MESH_OK, 0);
        return;
    }
    c->fin_wanted = 1;
    if (c->peer_fin_done && c->fin_acked) {
        tcp_conn_kill(c, MESH_OK, 0);
        return;
    }
    tcp_want_push(c, sim_net_now(c->t->net));
}
