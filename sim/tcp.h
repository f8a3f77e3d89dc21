/* tcp.h — a TCP-like stream model over sim_net packets.
 *
 * What is modelled. Every segment is a real sim_pkt (SYN, SYN-ACK, ACK, data, FIN, RST with
 * wrapping 32-bit seq/ack numbers and the payload bytes), so middleboxes on the path see,
 * rewrite, drop and inject them exactly as they would TCP on a wire.
 *  - Connect: SYN → SYN-ACK → ACK. The connector's on_connected runs when the SYN-ACK
 *    arrives (one RTT after connect). The acceptor's accept callback runs when the
 *    handshake's final ACK — or the first data segment, which carries the ACK — arrives
 *    (1.5 RTT), as accept() returns in a real stack. Bytes written before on_connected are
 *    queued and sent right after the SYN-ACK, in order.
 *  - SYN retries at syn_rto, 2*syn_rto, 4*syn_rto... and on_closed(MESH_ERR_TIMEOUT) at
 *    connect_timeout (no host at the address, or a middlebox dropping SYNs). A SYN to a host
 *    with no listener on the port is answered with RST → on_closed(MESH_ERR_REFUSED).
 *  - Simultaneous open (RFC 9293 §3.5, figure 8), what TCP hole punching relies on: a
 *    connection may leave from a chosen local port (sim_tcp_connect_from), the port a
 *    listener of the host holds too (SO_REUSEPORT). When its SYN_SENT connection receives the
 *    peer's SYN for the same four-tuple (the two SYNs crossed), it answers SYN-ACK and waits
 *    in SYN_RCVD; the peer's SYN-ACK (or an ACK) completes it, and each side gets
 *    on_connected — no accept — one RTT after the SYNs left when both left at once. A
 *    segment for an existing four-tuple always goes to its connection before any listener;
 *    a SYN that arrives before the local side connected goes to the listener as usual (then
 *    sim_tcp_connect_from for that four-tuple fails with MESH_ERR_ADDR). A RST in SYN_RCVD
 *    refuses the active open; its SYN-ACK is resent like a SYN and the connect timeout holds.
 *  - Data: segments of at most mss bytes, at most `window` bytes unacknowledged. The sender
 *    paces itself on its own uplink (it hands a segment to the network only while the uplink
 *    has less than `pace` ns of backlog), so a sender never tail-drops into its own queue;
 *    bottlenecks further down can drop. The receiver ACKs every segment (cumulative ACK),
 *    holds out-of-order segments and delivers bytes in order. A lost segment is resent after
 *    an RTO (max(min_rto, 2*srtt), doubling per retry, srtt from un-retransmitted samples) or
 *    after three duplicate ACKs; a partial ACK during recovery resends the next hole at once.
 *    After max_retries resends of one segment the stream fails with MESH_ERR_TIMEOUT.
 *  - FIN after the last data byte: the peer gets on_closed(MESH_OK) after every byte was
 *    delivered. RST (abortive close, a middlebox's injection, data to a closed port) gives
 *    on_closed(MESH_ERR_RESET); RSTs are accepted for any sequence number (no RFC 5961
 *    check: a censor's injected RST always works, which is the conservative assumption).
 *
 * What is traded away (document it when quoting numbers): no congestion control (no slow
 * start, no cwnd: a flow sends at its uplink pace within a fixed window), no delayed ACKs,
 * no Nagle, no SACK, no receive-window updates (the receiver's buffer is unbounded: the env
 * delivers bytes at once), no TIME_WAIT (a fully closed connection forgets its 4-tuple, and
 * later segments for it are answered with RST, as for a closed port), no half-close (once a
 * side has closed, bytes still arriving from its peer are acked and discarded), no urgent data.
 *
 * Callbacks come from scheduler events only, never from inside a sim_tcp_* call (env rule 1).
 * A callback may close any stream or listener, its own included (rule 2): after
 * sim_tcp_close() no callback is made for that stream; memory is reclaimed by a later event,
 * so a closed (or on_closed) stream or a closed listener must not be used past the current
 * event: "idempotent" close and MESH_ERR_CLOSED from write hold only until then.
 * on_closed releases the stream (rule 4): do not close it again.
 */
#ifndef SIM_TCP_H
#define SIM_TCP_H

#include "sim/net.h"

typedef struct sim_tcp sim_tcp;
typedef struct sim_tcp_conn sim_tcp_conn;
typedef struct sim_tcp_listener sim_tcp_listener;

enum sim_tcp_limits {
    SIM_TCP_DEFAULT_MSS = 1460,
    SIM_TCP_DEFAULT_WINDOW = 1024 * 1024, /* bytes in flight per stream */
    SIM_TCP_DEFAULT_CONNECT_TIMEOUT_MS = 10000,
    SIM_TCP_DEFAULT_SYN_RTO_MS = 1000, /* RFC 6298 initial RTO */
    SIM_TCP_DEFAULT_MIN_RTO_MS = 200,  /* Linux's floor */
    SIM_TCP_DEFAULT_MAX_RTO_MS = 60000,
    SIM_TCP_DEFAULT_PACE_US = 1000, /* uplink backlog a sender allows itself */
    SIM_TCP_DEFAULT_MAX_RETRIES = 8,
    SIM_TCP_MAX_OOO_SEGS = 4096, /* out-of-order segments held per stream */
    SIM_TCP_EPHEMERAL_LO = 49152,
};

/* Zero fields take the defaults above. */
typedef struct sim_tcp_cfg {
    uint32_t mss;
    uint32_t window;
    mesh_time connect_timeout, syn_rto, min_rto, max_rto, pace; /* ns */
    uint32_t max_retries;
} sim_tcp_cfg;

typedef struct sim_tcp_cbs {
    void (*on_connected)(sim_tcp_conn *c, void *ud);
    void (*on_data)(sim_tcp_conn *c, const uint8_t *data, size_t len, void *ud); /* borrowed */
    void (*on_writable)(sim_tcp_conn *c, void *ud); /* pending dropped to 0 after a write */
    void (*on_closed)(sim_tcp_conn *c, int reason, void *ud);
} sim_tcp_cbs;

/* A connection finished its handshake on l. Adopt it (sim_tcp_set_cbs) or close it before
 * returning; peer is borrowed. */
typedef void (*sim_tcp_accept_fn)(sim_tcp_listener *l, sim_tcp_conn *c, const mesh_addr *peer,
                                  void *ud);

/* Install the TCP transport on net. cfg NULL = defaults. MESH_OK, MESH_ERR_INVAL,
 * MESH_ERR_NOMEM. */
int sim_tcp_new(sim_tcp **out, sim_net *net, const sim_tcp_cfg *cfg);
/* Free every stream and listener (no callbacks) and cancel their events. NULL: no-op. */
void sim_tcp_free(sim_tcp *t);

/* Listen on (h, port); port 0 = ephemeral. MESH_OK, MESH_ERR_ADDR (port taken),
 * MESH_ERR_INVAL, MESH_ERR_NOMEM. */
int sim_tcp_listen(sim_tcp *t, sim_host *h, uint16_t port, sim_tcp_accept_fn fn, void *ud,
                   sim_tcp_listener **out);
mesh_addr sim_tcp_listener_addr(const sim_tcp_listener *l);
/* Stop listening (idempotent; safe inside its accept callback). Established streams stay;
 * handshakes not yet accepted are reset. */
void sim_tcp_listener_close(sim_tcp_listener *l);

/* Start a connection from h to `to`; outcome via on_connected or on_closed. cbs is copied.
 * MESH_OK, MESH_ERR_INVAL (not IPv4, port 0), MESH_ERR_ADDR (no ephemeral port),
 * MESH_ERR_NOMEM. */
int sim_tcp_connect(sim_tcp *t, sim_host *h, const mesh_addr *to, const sim_tcp_cbs *cbs, void *ud,
                    sim_tcp_conn **out);
/* The same from local port lport of h (which a listener of h may hold), e.g. the listening
 * port, so that two hosts connecting to each other at once open one connection (simultaneous
 * open, above). MESH_OK; MESH_ERR_INVAL (lport 0, as sim_tcp_connect); MESH_ERR_ADDR (a
 * connection with this four-tuple exists: e.g. the peer's SYN came first and a listener of h
 * holds it); MESH_ERR_NOMEM. */
int sim_tcp_connect_from(sim_tcp *t, sim_host *h, uint16_t lport, const mesh_addr *to,
                         const sim_tcp_cbs *cbs, void *ud, sim_tcp_conn **out);
void sim_tcp_set_cbs(sim_tcp_conn *c, const sim_tcp_cbs *cbs, void *ud);
/* Queue bytes (copied). MESH_OK; MESH_ERR_CLOSED (released, closing or dead);
 * MESH_ERR_INVAL; MESH_ERR_NOMEM. */
int sim_tcp_write(sim_tcp_conn *c, const void *data, size_t len);
/* Bytes written but not yet sent as segments. */
size_t sim_tcp_pending(const sim_tcp_conn *c);
mesh_addr sim_tcp_local(const sim_tcp_conn *c);
mesh_addr sim_tcp_remote(const sim_tcp_conn *c);
sim_host *sim_tcp_host(const sim_tcp_conn *c);
/* Release the stream: how = MESH_CLOSE_GRACEFUL (send queued bytes, then FIN) or
 * MESH_CLOSE_ABORT (RST now). No callback follows. */
void sim_tcp_close(sim_tcp_conn *c, int how);

typedef struct sim_tcp_stats {
    uint64_t segs_sent, retransmits, rsts_sent, conns_opened, conns_live;
} sim_tcp_stats;
sim_tcp_stats sim_tcp_get_stats(const sim_tcp *t);

#endif
