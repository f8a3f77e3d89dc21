/* tcp_conn.c — one connection's state machine (see tcp.h, tcp_int.h): segments out (the
 * window, the uplink's pace, retransmission on timeout and on three duplicate ACKs), segments
 * in (ACKs, in-order and out-of-order data, FIN), the handshake's second half, teardown.
 *
 * Offsets: each side numbers its own bytes from 0 (uint64); on the wire seq = iss + 1 + off
 * (mod 2^32) and a FIN occupies offset == total bytes. The send buffer holds every byte from
 * snd_una (oldest unacknowledged) to the last written; segments in flight are only
 * (offset, length) records, so a retransmission copies from the buffer again. */
#include <stdlib.h>
#include <string.h>

#include "sim/tcp_int.h"

/* ---- sending packets ---------------------------------------------------------------------- */

void tcp_send_raw(sim_tcp *t, sim_host *h, const mesh_addr *src, const mesh_addr *dst,
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

void tcp_send_ctl(sim_tcp_conn *c, uint8_t flags, uint32_t seq)
{
    tcp_send_raw(c->t, c->host, &c->local, &c->remote, flags, seq,
                 (flags & SIM_TCP_ACK) ? wire_ack(c) : 0, NULL, 0);
}

static void send_ack(sim_tcp_conn *c)
{
    tcp_send_ctl(c, SIM_TCP_ACK, c->iss + 1 + (uint32_t)c->snd_nxt);
}

static void send_seg(sim_tcp_conn *c, const seg *s)
{
    /* A segment whose data was acked but whose FIN was not is resent as the bare FIN. */
    uint64_t skip = c->snd_una > s->off ? c->snd_una - s->off : 0;
    uint32_t len = skip >= s->len ? 0 : (uint32_t)(s->len - skip);
    const uint8_t *data = len ? c->sbuf + c->sbuf_head + (s->off + skip - c->snd_una) : NULL;
    uint8_t flags = SIM_TCP_ACK | (len ? SIM_TCP_PSH : 0) | (s->fin ? SIM_TCP_FIN : 0);
    tcp_send_raw(c->t, c->host, &c->local, &c->remote, flags,
                 c->iss + 1 + (uint32_t)(s->off + skip), wire_ack(c), data, len);
}

/* ---- timers ------------------------------------------------------------------------------- */

static void rto_fire(void *ctx, void *arg);
static void push_fire(void *ctx, void *arg);

void tcp_arm_rto(sim_tcp_conn *c, mesh_time after)
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

void tcp_want_push(sim_tcp_conn *c, mesh_time at)
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
            tcp_want_push(c, busy - t->cfg.pace);
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
        tcp_arm_rto(c, c->rto);
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
            tcp_conn_kill(c, MESH_ERR_TIMEOUT, c->active);
            return;
        }
        if (c->state == ST_SYN_SENT)
            tcp_send_ctl(c, SIM_TCP_SYN, c->iss);
        else
            tcp_send_ctl(c, SIM_TCP_SYN | SIM_TCP_ACK, c->iss);
        tcp_arm_rto(c, clamp_rto(t, t->cfg.syn_rto << (c->syn_retx < 16 ? c->syn_retx : 16)));
        return;
    }
    if (c->state != ST_ESTABLISHED || seg_count(c) == 0)
        return;
    if (++c->retries > t->cfg.max_retries) {
        tcp_conn_kill(c, MESH_ERR_TIMEOUT, 1);
        return;
    }
    c->rto = clamp_rto(t, c->rto * 2);
    c->recovery = 1;
    c->recover = c->snd_nxt;
    retransmit_oldest(c);
    tcp_arm_rto(c, c->rto);
}

void tcp_connto_fire(void *ctx, void *arg)
{
    sim_tcp_conn *c = ctx;
    (void)arg;
    c->connto_ev = SIM_EVENT_NONE;
    if (c->state == ST_SYN_SENT || (c->state == ST_SYN_RCVD && c->active))
        tcp_conn_kill(c, MESH_ERR_TIMEOUT, 1);
}

/* ---- teardown ------------------------------------------------------------------------------ */

/* The connection is over: unlink now, free later; report `reason` if asked and still owned. */
void tcp_conn_kill(sim_tcp_conn *c, int reason, int report)
{
    if (c->state == ST_DEAD)
        return;
    sim_tcp *t = c->t;
    c->state = ST_DEAD;
    tcp_conn_cancel_events(c);
    tcp_conn_unlink(t, c);
    if (c->lst) {
        tcp_lst_unref(c->lst);
        c->lst = NULL;
    }
    c->next_dead = t->dead;
    t->dead = c;
    tcp_want_reap(t);
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
        tcp_conn_kill(c, MESH_OK, 0);
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
        tcp_arm_rto(c, c->rto);
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

/* An active open completed: no connect timeout any more, on_connected, queued bytes out. */
static void active_connected(sim_tcp_conn *c)
{
    sim_sched_cancel(sim_net_sched(c->t->net), c->connto_ev);
    c->connto_ev = SIM_EVENT_NONE;
    if (!c->released && c->cbs.on_connected)
        c->cbs.on_connected(c, c->ud);
    if (c->state == ST_ESTABLISHED)
        push(c);
}

/* A segment in SYN_SENT: the peer's SYN-ACK (connected), or its SYN crossing ours. */
static void syn_sent_in(sim_tcp_conn *c, const sim_pkt *p, mesh_time now)
{
    if ((p->flags & (SIM_TCP_SYN | SIM_TCP_ACK)) == SIM_TCP_SYN) {
        /* The peer's SYN crossed ours (simultaneous open, RFC 9293 §3.5 figure 8):
         * SYN-RECEIVED, answered with SYN-ACK; its SYN-ACK (or ACK) completes it. The
         * retransmission timer now resends the SYN-ACK; the connect timeout still runs. */
        c->irs = p->seq;
        c->state = ST_SYN_RCVD;
        tcp_send_ctl(c, SIM_TCP_SYN | SIM_TCP_ACK, c->iss);
        return;
    }
    if ((p->flags & (SIM_TCP_SYN | SIM_TCP_ACK)) != (SIM_TCP_SYN | SIM_TCP_ACK) ||
        p->ack != c->iss + 1)
        return;
    c->irs = p->seq;
    if (!c->syn_retx)
        c->srtt = now - c->syn_sent;
    conn_established(c);
    send_ack(c);
    active_connected(c);
}

/* A segment in SYN_RCVD. 1: it completed the handshake and may carry data (go on with it). */
static int syn_rcvd_in(sim_tcp_conn *c, const sim_pkt *p, mesh_time now)
{
    if ((p->flags & (SIM_TCP_SYN | SIM_TCP_ACK)) == SIM_TCP_SYN) {
        /* the peer's SYN again: our SYN-ACK was lost */
        tcp_send_ctl(c, SIM_TCP_SYN | SIM_TCP_ACK, c->iss);
        return 0;
    }
    if (!(p->flags & SIM_TCP_ACK) || p->ack != c->iss + 1 ||
        ((p->flags & SIM_TCP_SYN) && p->seq != c->irs))
        return 0;
    if (!c->syn_retx)
        c->srtt = now - c->syn_sent;
    conn_established(c);
    if (c->active) { /* the crossing SYN-ACK (or ACK) of a simultaneous open */
        active_connected(c);
        return c->state == ST_ESTABLISHED && !(p->flags & SIM_TCP_SYN);
    }
    sim_tcp_listener *l = c->lst;
    c->lst = NULL;
    if (l->closed) {
        tcp_lst_unref(l);
        tcp_send_ctl(c, SIM_TCP_RST, c->iss + 1);
        tcp_conn_kill(c, MESH_ERR_RESET, 0);
        return 0;
    }
    if (l->fn)
        l->fn(l, c, &c->remote, l->ud);
    tcp_lst_unref(l);
    return c->state == ST_ESTABLISHED;
}

void tcp_segment_in(sim_tcp_conn *c, const sim_pkt *p)
{
    mesh_time now = sim_net_now(c->t->net);
    if (p->flags & SIM_TCP_RST) {
        if (c->state == ST_SYN_RCVD && !c->active)
            tcp_conn_kill(c, MESH_ERR_RESET, 0);
        else /* an active open (SYN_RCVD after crossing SYNs too) was refused (RFC 9293) */
            tcp_conn_kill(c, c->state == ST_ESTABLISHED ? MESH_ERR_RESET : MESH_ERR_REFUSED, 1);
        return;
    }
    switch (c->state) {
    case ST_SYN_SENT:
        syn_sent_in(c, p, now);
        return;
    case ST_SYN_RCVD:
        if (!syn_rcvd_in(c, p, now))
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
