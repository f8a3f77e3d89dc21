/* udp.h — datagram sockets on simulated hosts, over sim_net packets.
 *
 * A sim_udp serves every host of one net. Sockets are bound to (host, port); several sockets
 * may share a port (like SO_REUSEADDR on the real driver): a unicast datagram goes to the
 * oldest of them, a multicast one to every socket on the port that joined the group. A
 * datagram to a port with no socket vanishes (no ICMP is modelled). Multicast reaches only
 * hosts on the sender's LAN (see net.h).
 *
 * Callbacks are made from scheduler events only, never from inside a sim_udp_* call. A
 * callback may close any socket, its own included: a closed socket gets no further
 * callback; its memory is reclaimed by a later event.
 */
#ifndef SIM_UDP_H
#define SIM_UDP_H

#include "sim/net.h"

typedef struct sim_udp sim_udp;
typedef struct sim_udp_sock sim_udp_sock;

enum sim_udp_limits {
    SIM_UDP_MAX_GROUPS_PER_SOCK = 8,
    SIM_UDP_MAX_FANOUT = 64, /* sockets one multicast datagram reaches on one host */
    SIM_UDP_EPHEMERAL_LO = 49152,
};

/* from and data are borrowed for the call. */
typedef void (*sim_udp_recv_fn)(sim_udp_sock *s, const mesh_addr *from, const uint8_t *data,
                                size_t len, void *ud);

/* Install the UDP transport on net. MESH_OK, MESH_ERR_NOMEM. */
int sim_udp_new(sim_udp **out, sim_net *net);
/* Free every socket. Call when the scheduler will not run again. NULL: no-op. */
void sim_udp_free(sim_udp *u);

/* Bind on host h, port (0 = an ephemeral port). fn may be NULL (send-only).
 * MESH_OK, MESH_ERR_INVAL, MESH_ERR_ADDR (no ephemeral port free), MESH_ERR_NOMEM. */
int sim_udp_bind(sim_udp *u, sim_host *h, uint16_t port, sim_udp_recv_fn fn, void *ud,
                 sim_udp_sock **out);
/* The bound address (host's address, bound port). */
mesh_addr sim_udp_local(const sim_udp_sock *s);
sim_host *sim_udp_host(const sim_udp_sock *s);
/* Send one datagram (copied). MESH_OK even if it is later lost; MESH_ERR_INVAL (not IPv4,
 * port 0), MESH_ERR_TOO_BIG (> SIM_PKT_MAX_PAYLOAD), MESH_ERR_CLOSED, MESH_ERR_NOMEM. */
int sim_udp_send(sim_udp_sock *s, const mesh_addr *to, const void *data, size_t len);
/* Receive datagrams sent to group (224.0.0.0/4, host order) on this socket's port.
 * MESH_OK, MESH_ERR_INVAL, MESH_ERR_LIMIT, MESH_ERR_CLOSED. Joining twice is a no-op. */
int sim_udp_join(sim_udp_sock *s, uint32_t group);
/* Close. Safe inside any callback, its own included. Until the scheduler's next event the
 * handle still answers (send/join return MESH_ERR_CLOSED, a second close is a no-op); after
 * that its memory is reclaimed and the handle must not be used at all. */
void sim_udp_close(sim_udp_sock *s);

#endif
