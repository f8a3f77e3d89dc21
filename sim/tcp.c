/* tcp.c — the stream model of tcp.h.
 *
 * Offsets: each side numbers its own bytes from 0 (uint64); on the wire seq = iss + 1 + off
 * (mod 2^32) and a FIN occupies offset == total bytes. The send buffer holds every byte from
 * snd_una (oldest unacknowledged) to the last written; segments in flight are only
 * (offset, length) records, so a retransmission copies from the buffer again. */
#include "sim/tcp.h"

#include <stdlib.h>
#include <string.h>

enum tcp_state { ST_SYN_SENT, ST_SYN_RCVD, ST_ESTABLISHED, ST_DEAD };
enum { TCP_MIN_BUCKETS = 256 };

typedef struct seg {
    uint64_t off;
    uint32_t len;
    uint8_t fin;
    uint8_t retx;
    mesh_time sent;
} seg;

typedef struct ooo_seg {
    uint64_t off;
    uint32_t len;
    uint8_t *data;
} ooo_seg;

struct sim_tcp_listener {
    sim_tcp *t;
    sim_host *host;
    uint16_t port;
    int closed;
    unsigned refs; /* 1 while open + one per handshake in progress */
    sim_tcp_accept_fn fn;
    void *ud;
    sim_tcp_listener *next;
};

struct sim_tcp_conn {
    sim_tcp *t;
    sim_host *host;
    mesh_addr local, remote;
    int state;
    int released; /* the user let go: no more callbacks */
    int want_writable;
    sim_tcp_cbs cbs;
    void *ud;
    sim_tcp_listener *lst; /* SYN_RCVD: where to accept */
    uint32_t iss, irs;
    mesh_time syn_sent;
    int syn_retx;
    /* send side */
    uint8_t *sbuf; /* bytes [snd_una, snd_end) at sbuf[sbuf_head ...] */
    size_t sbuf_head, sbuf_cap;
    uint64_t snd_una, snd_nxt, snd_end;
    int fin_wanted, fin_sent, fin_acked;
    seg *segs; /* in flight, oldest first, [seg_head, seg_n) */
    size_t seg_head, seg_n, seg_cap;
    mesh_time srtt, rto;
    uint32_t retries, dupacks;
    int recovery;
    uint64_t recover;
    /* receive side */
    uint64_t rcv_nxt;
    ooo_seg *ooo;
    size_t nooo;
    int peer_fin_known;
    uint64_t peer_fin_off;
    int peer_fin_done;
    /* events */
    sim_event_id rto_ev, push_ev, connto_ev;
    sim_tcp_conn *next, *next_dead;
    int linked;
};

struct sim_tcp {
    sim_net *net;
    sim_tcp_cfg cfg;
    sim_tcp_conn **cb;
    size_t cnb, cn;
    sim_tcp_listener **lb;
    size_t lnb, ln;
    uint32_t next_port;
    uint64_t isn_counter;
    sim_tcp_conn *dead;
    sim_tcp_listener *dead_l;
    sim_event_id reap_ev;
    sim_tcp_stats st;
};

static void deliver(void *ctx, sim_host *h, const sim_pkt *p);
static void conn_kill(sim_tcp_conn *c, int reason, int report);

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

static void conn_unlink(sim_tcp *t, sim_tcp_conn *c)
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

static void conn_cancel_events(sim_tcp_conn *c)
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
            conn_cancel_events(c);
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

static void want_reap(sim_tcp *t)
{
    if (t->reap_ev == SIM_EVENT_NONE)
        sim_sched_after(sim_net_sched(t->net), 0, SIM_EV_REAP, 0, reap, t, NULL, &t->reap_ev);
}

static void lst_unref(sim_tcp_listener *l)
{
    if (--l->refs == 0) {
        l->next = l->t->dead_l; /* unlinked already: reuse next for the dead list */
        l->t->dead_l = l;
        want_reap(l->t);
    }
}

/* ---- sending packets ---------------------------------------------------------------------- */

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

static void send_raw(sim_tcp *t, sim_host *h, const mesh_addr *src, const mesh_addr *dst,
                     uint8_t flags, uint32_t seq, uint32_t ack, const uint8_t *data, size_t len)
{
    sim_pkt *p;
    if (sim_pkt_new(t->net, &p, data, len) != MESH_OK)
        return; /* out of memory: the segment is "lost"; retransmission covers data */
    p->proto = SIM_PROTO_TCP;
    p->src = *src;
    p->dst = *dst;
    p->flags = flags;
    p->seq = seq;
    p->ack = ack;
    if (flags & SIM_TCP_RST)
        t->st.rsts_sent++;
    t->st.segs_sent++;
    sim_net_send(t->net, h, p);
}

static uint32_t wire_ack(const sim_tcp_conn *c)
{
    return c->irs + 1 + (uint32_t)c->rcv_nxt + (uint32_t)c->peer_fin_done;
}

static void send_ctl(sim_tcp_conn *c, uint8_t flags, uint32_t seq)
{
    send_raw(c->t, c->host, &c->local, &c->remote, flags, seq,
             (flags & SIM_TCP_ACK) ? wire_ack(c) : 0, NULL, 0);
}

static void send_ack(sim_tcp_conn *c)
{
    send_ctl(c, SIM_TCP_ACK, c->iss + 1 + (uint32_t)c->snd_nxt);
}

static void send_seg(sim_tcp_conn *c, const seg *s)
{
    /* A segment whose data was acked but whose FIN was not is resent as the bare FIN. */
    uint64_t skip = c->snd_una > s->off ? c->snd_una - s->off : 0;
    uint32_t len = skip >= s->len ? 0 : (uint32_t)(s->len - skip);
    const uint8_t *data = len ? c->sbuf + c->sbuf_head + (s->off + skip - c->snd_una) : NULL;
    uint8_t flags = SIM_TCP_ACK | (len ? SIM_TCP_PSH : 0) | (s->fin ? SIM_TCP_FIN : 0);
    send_raw(c->t, c->host, &c->local, &c->remote, flags, c->iss + 1 + (uint32_t)(s->off + skip),
             wire_ack(c), data, len);
}

/* ---- timers ------------------------------------------------------------------------------- */

static void rto_fire(void *ctx, void *arg);
static void push_fire(void *ctx, void *arg);

static void arm_rto(sim_tcp_conn *c, mesh_time after)
{
    sim_sched *s = sim_net_sched(c->t->net);
    sim_sched_cancel(s, c->rto_ev);
    c->rto_ev = SIM_EVENT_NONE;
    sim_sched_after(s, after, SIM_EV_TCP_RTO, sim_host_id(c->host), rto_fire, c, NULL, &c->rto_ev);
}

static void stop_rto(sim_tcp_conn *c)
{
    sim_sched_cancel(sim_net_sched(c->t->net), c->rto_ev);
    c->rto_ev = SIM_EVENT_NONE;
}

static void want_push(sim_tcp_conn *c, mesh_time at)
{
    sim_sched *s = sim_net_sched(c->t->net);
    if (c->push_ev != SIM_EVENT_NONE)
        return;
    if (at < sim_sched_now(s))
        at = sim_sched_now(s);
    sim_sched_at(s, at, SIM_EV_TCP_PUSH, sim_host_id(c->host), push_fire, c, NULL, &c->push_ev);
}

static mesh_time clamp_rto(const sim_tcp *t, mesh_time r)
{
    if (r < t->cfg.min_rto)
        r = t->cfg.min_rto;
    if (r > t->cfg.max_rto)
        r = t->cfg.max_rto;
    return r;
}

/* ---- send path ---------------------------------------------------------------------------- */

static size_t seg_count(const sim_tcp_conn *c)
{
    return c->seg_n - c->seg_head;
}

static int seg_push(sim_tcp_conn *c, seg s)
{
    if (c->seg_head > 0 && c->seg_n == c->seg_cap) {
        memmove(c->segs, c->segs + c->seg_head, seg_count(c) * sizeof *c->segs);
        c->seg_n -= c->seg_head;
        c->seg_head = 0;
    }
    if (c->seg_n == c->seg_cap) {
        size_t nc = c->seg_cap ? c->seg_cap * 2 : 16;
        seg *ns = realloc(c->segs, nc * sizeof *ns);
        if (!ns)
            return MESH_ERR_NOMEM;
        c->segs = ns;
        c->seg_cap = nc;
    }
    c->segs[c->seg_n++] = s;
    return MESH_OK;
}

/* Hand segments to the network while the window and the uplink pace allow. Runs from
 * events only, so it may call on_writable. */
static void push(sim_tcp_conn *c)
{
    sim_tcp *t = c->t;
    if (c->state != ST_ESTABLISHED)
        return;
    mesh_time now = sim_net_now(t->net);
    int sent = 0;
    for (;;) {
        uint64_t inflight = c->snd_nxt - c->snd_una;
        int fin_due = c->fin_wanted && !c->fin_sent && c->snd_nxt == c->snd_end;
        if (c->snd_nxt >= c->snd_end && !fin_due)
            break;
        if (inflight >= t->cfg.window)
            break; /* an ACK will call push() again */
        mesh_time busy = sim_host_up_busy_until(c->host);
        if (busy > now + t->cfg.pace) {
            want_push(c, busy - t->cfg.pace);
            break;
        }
        seg s = {c->snd_nxt, 0, 0, 0, now};
        uint64_t avail = c->snd_end - c->snd_nxt, room = t->cfg.window - inflight;
        uint64_t n = avail < t->cfg.mss ? avail : t->cfg.mss;
        if (n > room)
            n = room;
        s.len = (uint32_t)n;
        if (c->fin_wanted && c->snd_nxt + n == c->snd_end)
            s.fin = 1;
        if (s.len == 0 && !s.fin)
            break;
        if (seg_push(c, s) != MESH_OK)
            break;
        send_seg(c, &s);
        c->snd_nxt += s.len;
        if (s.fin)
            c->fin_sent = 1;
        sent = 1;
    }
    if (sent && c->rto_ev == SIM_EVENT_NONE)
        arm_rto(c, c->rto);
    if (c->snd_nxt == c->snd_end && c->want_writable && !c->released) {
        c->want_writable = 0;
        if (c->cbs.on_writable)
            c->cbs.on_writable(c, c->ud);
    }
}

static void push_fire(void *ctx, void *arg)
{
    sim_tcp_conn *c = ctx;
    (void)arg;
    c->push_ev = SIM_EVENT_NONE;
    push(c);
}

static void retransmit_oldest(sim_tcp_conn *c)
{
    if (seg_count(c) == 0)
        return;
    seg *s = &c->segs[c->seg_head];
    s->retx = 1;
    s->sent = sim_net_now(c->t->net);
    c->t->st.retransmits++;
    send_seg(c, s);
}

static void rto_fire(void *ctx, void *arg)
{
    sim_tcp_conn *c = ctx;
    (void)arg;
    sim_tcp *t = c->t;
    c->rto_ev = SIM_EVENT_NONE;
    if (c->state == ST_SYN_SENT || c->state == ST_SYN_RCVD) {
        /* SYN or SYN-ACK retry with doubling; the connect timeout ends SYN_SENT. */
        c->syn_retx++;
        if (c->state == ST_SYN_RCVD && c->syn_retx > (int)t->cfg.max_retries) {
            conn_kill(c, MESH_ERR_TIMEOUT, 0);
            return;
        }
        if (c->state == ST_SYN_SENT)
            send_ctl(c, SIM_TCP_SYN, c->iss);
        else
            send_ctl(c, SIM_TCP_SYN | SIM_TCP_ACK, c->iss);
        arm_rto(c, clamp_rto(t, t->cfg.syn_rto << (c->syn_retx < 16 ? c->syn_retx : 16)));
        return;
    }
    if (c->state != ST_ESTABLISHED || seg_count(c) == 0)
        return;
    if (++c->retries > t->cfg.max_retries) {
        conn_kill(c, MESH_ERR_TIMEOUT, 1);
        return;
    }
    c->rto = clamp_rto(t, c->rto * 2);
    c->recovery = 1;
    c->recover = c->snd_nxt;
    retransmit_oldest(c);
    arm_rto(c, c->rto);
}

static void connto_fire(void *ctx, void *arg)
{
    sim_tcp_conn *c = ctx;
    (void)arg;
    c->connto_ev = SIM_EVENT_NONE;
    if (c->state == ST_SYN_SENT)
        conn_kill(c, MESH_ERR_TIMEOUT, 1);
}

/* ---- teardown ------------------------------------------------------------------------------ */

/* The connection is over: unlink now, free later; report `reason` if asked and still owned. */
static void conn_kill(sim_tcp_conn *c, int reason, int report)
{
    if (c->state == ST_DEAD)
        return;
    sim_tcp *t = c->t;
    c->state = ST_DEAD;
    conn_cancel_events(c);
    conn_unlink(t, c);
    if (c->lst) {
        lst_unref(c->lst);
        c->lst = NULL;
    }
    c->next_dead = t->dead;
    t->dead = c;
    want_reap(t);
    if (report && !c->released) {
        c->released = 1; /* on_closed releases the handle (rule 4) */
        if (c->cbs.on_closed)
            c->cbs.on_closed(c, reason, c->ud);
    }
}

/* Both directions done from our point of view? Then forget the connection. */
static void maybe_finish(sim_tcp_conn *c)
{
    if (c->state == ST_ESTABLISHED && c->released && c->fin_acked)
        conn_kill(c, MESH_OK, 0);
}

/* ---- receive path --------------------------------------------------------------------------- */

static void process_ack(sim_tcp_conn *c, uint32_t ack, int has_payload)
{
    sim_tcp *t = c->t;
    uint64_t outstanding = c->snd_nxt - c->snd_una + (uint64_t)c->fin_sent;
    uint32_t delta = ack - (c->iss + 1 + (uint32_t)c->snd_una);
    if (delta > outstanding)
        return; /* old or bogus */
    if (delta == 0) {
        if (!has_payload && seg_count(c) > 0 && ++c->dupacks == 3) {
            c->recovery = 1;
            c->recover = c->snd_nxt;
            retransmit_oldest(c);
        }
        return;
    }
    mesh_time now = sim_net_now(t->net);
    uint64_t new_una = c->snd_una + delta;
    int fin_acked_now = c->fin_sent && new_una == c->snd_end + 1;
    if (fin_acked_now)
        new_una = c->snd_end;
    /* drop fully acknowledged segments; sample RTT from the newest un-retransmitted one */
    while (seg_count(c) > 0) {
        seg *s = &c->segs[c->seg_head];
        uint64_t end = s->off + s->len;
        if (end > new_una || (s->fin && !fin_acked_now))
            break;
        if (!s->retx) {
            mesh_time sample = now - s->sent;
            c->srtt = c->srtt ? (7 * c->srtt + sample) / 8 : sample;
        }
        c->seg_head++;
    }
    size_t drop = (size_t)(new_una - c->snd_una);
    c->sbuf_head += drop;
    c->snd_una = new_una;
    if (fin_acked_now)
        c->fin_acked = 1;
    c->dupacks = 0;
    c->retries = 0;
    c->rto = clamp_rto(t, 2 * c->srtt);
    if (seg_count(c) > 0) {
        if (c->recovery && c->snd_una < c->recover)
            retransmit_oldest(c); /* partial ACK: the next hole */
        else
            c->recovery = 0;
        arm_rto(c, c->rto);
    } else {
        c->recovery = 0;
        stop_rto(c);
    }
}

static int ooo_insert(sim_tcp_conn *c, uint64_t off, const uint8_t *data, uint32_t len)
{
    size_t i = 0;
    while (i < c->nooo && c->ooo[i].off < off)
        i++;
    if (i < c->nooo && c->ooo[i].off == off)
        return MESH_OK; /* duplicate */
    if (c->nooo >= SIM_TCP_MAX_OOO_SEGS)
        return MESH_ERR_LIMIT;
    ooo_seg *n = realloc(c->ooo, (c->nooo + 1) * sizeof *n);
    if (!n)
        return MESH_ERR_NOMEM;
    c->ooo = n;
    uint8_t *d = malloc(len);
    if (!d)
        return MESH_ERR_NOMEM;
    memcpy(d, data, len);
    memmove(&c->ooo[i + 1], &c->ooo[i], (c->nooo - i) * sizeof *c->ooo);
    c->ooo[i] = (ooo_seg){off, len, d};
    c->nooo++;
    return MESH_OK;
}

/* Deliver [off, off+len) if it extends rcv_nxt. 0 if the connection died in a callback. */
static int accept_bytes(sim_tcp_conn *c, uint64_t off, const uint8_t *data, uint32_t len)
{
    if (off + len <= c->rcv_nxt || off > c->rcv_nxt)
        return 1;
    uint64_t skip = c->rcv_nxt - off;
    c->rcv_nxt = off + len;
    if (!c->released && c->cbs.on_data)
        c->cbs.on_data(c, data + skip, (size_t)(len - skip), c->ud);
    return c->state != ST_DEAD;
}

static void peer_fin(sim_tcp_conn *c)
{
    c->peer_fin_done = 1;
    if (!c->released) {
        c->released = 1;
        /* our own side then closes gracefully, flushing what is queued */
        c->fin_wanted = 1;
        if (c->cbs.on_closed)
            c->cbs.on_closed(c, MESH_OK, c->ud);
        if (c->state != ST_DEAD)
            push(c);
    }
}

static void process_data(sim_tcp_conn *c, const sim_pkt *p)
{
    uint64_t rel = (uint32_t)(p->seq - (c->irs + 1) - (uint32_t)c->rcv_nxt);
    int ahead = rel < 0x80000000u;
    uint64_t off;
    if (ahead)
        off = c->rcv_nxt + rel;
    else {
        uint64_t back = 0x100000000ULL - rel;
        if (back > c->rcv_nxt)
            return;
        off = c->rcv_nxt - back;
    }
    if (p->flags & SIM_TCP_FIN) {
        c->peer_fin_known = 1;
        c->peer_fin_off = off + p->len;
    }
    if (p->len) {
        if (off > c->rcv_nxt) {
            ooo_insert(c, off, p->data, (uint32_t)p->len);
        } else if (!accept_bytes(c, off, p->data, (uint32_t)p->len)) {
            return;
        }
        while (c->nooo > 0 && c->ooo[0].off <= c->rcv_nxt) {
            ooo_seg s = c->ooo[0];
            memmove(&c->ooo[0], &c->ooo[1], (c->nooo - 1) * sizeof *c->ooo);
            c->nooo--;
            int alive = accept_bytes(c, s.off, s.data, s.len);
            free(s.data);
            if (!alive)
                return;
        }
    }
    if (c->peer_fin_known && !c->peer_fin_done && c->rcv_nxt == c->peer_fin_off)
        peer_fin(c);
}

static void conn_established(sim_tcp_conn *c)
{
    c->state = ST_ESTABLISHED;
    stop_rto(c);
    if (!c->rto)
        c->rto = clamp_rto(c->t, 2 * c->srtt);
}

static void segment_for_conn(sim_tcp_conn *c, const sim_pkt *p)
{
    sim_tcp *t = c->t;
    mesh_time now = sim_net_now(t->net);
    if (p->flags & SIM_TCP_RST) {
        if (c->state == ST_SYN_RCVD)
            conn_kill(c, MESH_ERR_RESET, 0);
        else
            conn_kill(c, c->state == ST_SYN_SENT ? MESH_ERR_REFUSED : MESH_ERR_RESET, 1);
        return;
    }
    switch (c->state) {
    case ST_SYN_SENT:
        if ((p->flags & (SIM_TCP_SYN | SIM_TCP_ACK)) != (SIM_TCP_SYN | SIM_TCP_ACK) ||
            p->ack != c->iss + 1)
            return;
        c->irs = p->seq;
        if (!c->syn_retx)
            c->srtt = now - c->syn_sent;
        sim_sched_cancel(sim_net_sched(t->net), c->connto_ev);
        c->connto_ev = SIM_EVENT_NONE;
        conn_established(c);
        send_ack(c);
        if (!c->released && c->cbs.on_connected)
            c->cbs.on_connected(c, c->ud);
        if (c->state == ST_ESTABLISHED)
            push(c);
        return;
    case ST_SYN_RCVD:
        if (p->flags & SIM_TCP_SYN) { /* the client's SYN again: our SYN-ACK was lost */
            send_ctl(c, SIM_TCP_SYN | SIM_TCP_ACK, c->iss);
            return;
        }
        if (!(p->flags & SIM_TCP_ACK) || p->ack != c->iss + 1)
            return;
        if (!c->syn_retx)
            c->srtt = now - c->syn_sent;
        conn_established(c);
        sim_tcp_listener *l = c->lst;
        c->lst = NULL;
        if (l->closed) {
            lst_unref(l);
            send_ctl(c, SIM_TCP_RST, c->iss + 1);
            conn_kill(c, MESH_ERR_RESET, 0);
            return;
        }
        if (l->fn)
            l->fn(l, c, &c->remote, l->ud);
        lst_unref(l);
        if (c->state != ST_ESTABLISHED)
            return;
        break;
    case ST_ESTABLISHED:
        if (p->flags & SIM_TCP_SYN) { /* SYN-ACK again: our ACK was lost */
            send_ack(c);
            return;
        }
        break;
    default:
        return;
    }
    if (p->flags & SIM_TCP_ACK) {
        process_ack(c, p->ack, p->len > 0 || (p->flags & SIM_TCP_FIN));
        if (c->state != ST_ESTABLISHED)
            return;
    }
    if (p->len || (p->flags & SIM_TCP_FIN)) {
        process_data(c, p);
        if (c->state != ST_ESTABLISHED)
            return;
        send_ack(c);
    }
    push(c);
    maybe_finish(c);
}

static void deliver(void *ctx, sim_host *h, const sim_pkt *p)
{
    sim_tcp *t = ctx;
    uint32_t hid = sim_host_id(h);
    sim_tcp_conn *c = conn_find(t, hid, p->dst.port, sim_addr_ip4(&p->src), p->src.port);
    if (c) {
        segment_for_conn(c, p);
        return;
    }
    if (p->flags & SIM_TCP_RST)
        return; /* never answer a RST */
    if ((p->flags & (SIM_TCP_SYN | SIM_TCP_ACK)) == SIM_TCP_SYN) {
        sim_tcp_listener *l = lst_find(t, hid, p->dst.port);
        if (!l || l->closed) {
            send_raw(t, h, &p->dst, &p->src, SIM_TCP_RST | SIM_TCP_ACK, 0, p->seq + 1, NULL, 0);
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
        send_ctl(c, SIM_TCP_SYN | SIM_TCP_ACK, c->iss);
        arm_rto(c, t->cfg.syn_rto);
        return;
    }
    /* a segment for no connection: closed port or forgotten connection */
    if (p->len || (p->flags & (SIM_TCP_FIN | SIM_TCP_SYN))) {
        uint32_t seq = (p->flags & SIM_TCP_ACK) ? p->ack : 0;
        send_raw(t, h, &p->dst, &p->src, SIM_TCP_RST, seq, 0, NULL, 0);
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
    lst_unref(l);
}

int sim_tcp_connect(sim_tcp *t, sim_host *h, const mesh_addr *to, const sim_tcp_cbs *cbs, void *ud,
                    sim_tcp_conn **out)
{
    if (!t || !h || !to || !out || to->family != MESH_AF_INET4 || to->port == 0 ||
        sim_host_net(h) != t->net)
        return MESH_ERR_INVAL;
    uint32_t hid = sim_host_id(h), rip = sim_addr_ip4(to);
    uint16_t lport = ephemeral(t, hid, rip, to->port);
    if (!lport)
        return MESH_ERR_ADDR;
    sim_tcp_conn *c = calloc(1, sizeof *c);
    if (!c)
        return MESH_ERR_NOMEM;
    c->t = t;
    c->host = h;
    c->local = mesh_addr_v4(sim_host_ip(h), lport);
    c->remote = *to;
    c->state = ST_SYN_SENT;
    if (cbs)
        c->cbs = *cbs;
    c->ud = ud;
    c->iss = make_isn(t, hid, lport);
    c->syn_sent = sim_net_now(t->net);
    conn_link(t, c);
    t->st.conns_opened++;
    /* The SYN goes out now (no callback can result synchronously: arrivals are events). */
    send_ctl(c, SIM_TCP_SYN, c->iss);
    arm_rto(c, t->cfg.syn_rto);
    sim_sched_after(sim_net_sched(t->net), t->cfg.connect_timeout, SIM_EV_TCP_CONNTO, hid,
                    connto_fire, c, NULL, &c->connto_ev);
    *out = c;
    return MESH_OK;
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
        want_push(c, sim_net_now(c->t->net));
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
            send_ctl(c, SIM_TCP_RST | SIM_TCP_ACK, c->iss + 1 + (uint32_t)c->snd_nxt);
        else if (c->state == ST_SYN_SENT)
            send_ctl(c, SIM_TCP_RST, c->iss + 1);
        conn_kill(c, MESH_OK, 0);
        return;
    }
    c->fin_wanted = 1;
    if (c->peer_fin_done && c->fin_acked) {
        conn_kill(c, MESH_OK, 0);
        return;
    }
    want_push(c, sim_net_now(c->t->net));
}
