/* stun_host.h — a STUN server in the simulated network: the responder of node/core/
 * stun_server.h on a host, answering Binding over UDP and TCP on SIM_STUN_PORT, what a
 * scenario's `role: stun` group runs (next to its Meshara node).
 *
 * RFC 5780 needs a second IP address, and a simulated host has one: so a STUN host with an
 * alternate address is a pair of hosts, the primary and a partner holding the alternate
 * address (the runner puts the partner on the core beside the primary, in the same region,
 * with the same access link). Together they answer from four addresses (primary/alternate IP
 * x SIM_STUN_PORT/SIM_STUN_ALT_PORT), with OTHER-ADDRESS, RESPONSE-ORIGIN and CHANGE-REQUEST.
 *
 * The object makes its own drivers on the two hosts (a host may carry several drivers: they
 * share its address; the ports are distinct from a node's). Free it before the world, after
 * the scheduler stopped running.
 */
#ifndef SIM_STUN_HOST_H
#define SIM_STUN_HOST_H

#include <stdint.h>

#include "sim/driver.h"

enum sim_stun_host_limits {
    SIM_STUN_PORT = 3478,     /* RFC 8489's default port */
    SIM_STUN_ALT_PORT = 3479, /* the alternate port (coturn's choice too) */
};

typedef struct sim_stun_host sim_stun_host;

typedef struct sim_stun_host_stats {
    uint64_t answered, errors, changed, dropped;
    uint64_t tcp_accepted, tcp_refused;
} sim_stun_host_stats;

/* A STUN server on primary, with alternate (NULL: none, so no RFC 5780 answers) holding the
 * second address. MESH_OK; MESH_ERR_INVAL (NULL world or host, alternate == primary);
 * MESH_ERR_NOMEM; the responder's errors (MESH_ERR_ADDR: a port is taken). *out untouched on
 * failure. */
int sim_stun_host_new(sim_stun_host **out, sim_world *w, sim_host *primary, sim_host *alternate);
/* NULL: no-op. */
void sim_stun_host_free(sim_stun_host *s);
/* The primary address (SIM_STUN_PORT) clients are configured with. */
mesh_addr sim_stun_host_addr(const sim_stun_host *s);
sim_stun_host_stats sim_stun_host_get_stats(const sim_stun_host *s);

#endif
