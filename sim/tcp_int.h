/* tcp_int.h — the stream model's internals, shared by tcp.c (the endpoint: connection and
 * listener tables, life cycle, demultiplexing, the public calls) and tcp_conn.c (one
 * connection's state machine: segments out and in, timers, retransmission, teardown).
 * Not a contract: sim/tcp.h is. */
#ifndef SIM_TCP_INT_H
#define SIM_TCP_INT_H

#include <stdint.h>

#include "sim/tcp.h"

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
    int active;   /* opened by a connect: ends in on_connected even through SYN_RCVD (a
                     simultaneous open), never in a listener's accept */
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

/* ---- tcp.c ---------------------------------------------------------------------------------- */

void tcp_conn_cancel_events(sim_tcp_conn *c);
/* Out of the connection table (no-op when not in it). */
void tcp_conn_unlink(sim_tcp *t, sim_tcp_conn *c);
/* Drop one reference to a listener; the last frees it (later, from a reap event). */
void tcp_lst_unref(sim_tcp_listener *l);
/* Free dead connections and listeners from an event of their own (never under a callback). */
void tcp_want_reap(sim_tcp *t);

/* ---- tcp_conn.c ------------------------------------------------------------------------------ */

/* One segment onto the network (a copy of len bytes of data); counted in the stats. */
void tcp_send_raw(sim_tcp *t, sim_host *h, const mesh_addr *src, const mesh_addr *dst,
                  uint8_t flags, uint32_t seq, uint32_t ack, const uint8_t *data, size_t len);
/* A segment without data on c (with c's ACK number when flags has ACK). */
void tcp_send_ctl(sim_tcp_conn *c, uint8_t flags, uint32_t seq);
/* (Re)arm c's retransmission timer `after` from now. */
void tcp_arm_rto(sim_tcp_conn *c, mesh_time after);
/* Push c's queued bytes from an event at `at` (at most one pending). */
void tcp_want_push(sim_tcp_conn *c, mesh_time at);
/* Connect timeout (sim event, ctx = the connection). */
void tcp_connto_fire(void *ctx, void *arg);
/* The connection is over: unlink now, free later; report `reason` if asked and still owned. */
void tcp_conn_kill(sim_tcp_conn *c, int reason, int report);
/* A segment that arrived for connection c. */
void tcp_segment_in(sim_tcp_conn *c, const sim_pkt *p);

#endif
