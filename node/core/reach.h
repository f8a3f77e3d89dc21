/* reach.h — what a node believes about its own reachability, per address family.
 *
 * Sources, each a claim about the address the world sees us at:
 *  - an observer's claim: a peer's hello said where it saw our connection come from
 *    (session.h, Hello.observed_address), or a STUN server's XOR-MAPPED-ADDRESS; each with the
 *    local address the connection or request left from;
 *  - the port mapping's result (portmap.h): an external address held, or none;
 *  - RFC 5780 behaviour learned by STUN (mapping, filtering);
 *  - a relay reservation held (the relay part sets it).
 *
 * Belief. One observer could lie (or be a NAT-confused peer), so an observed address counts
 * only when at least min_agree (2) distinct observers saw the same IP. Distinct = another
 * key *and* another network group (IPv4 /24, IPv6 /64, of the address we reached it at): many
 * keys on one host or subnet count once. Each observer holds one claim (its latest); a group
 * likewise. Claims live claim_ttl (30 min) and the table is bounded (MESH_REACH_MAX_CLAIMS per
 * family, the oldest replaced). The IP with the most supporters wins if it has min_agree of
 * them and strictly more than any other; on a tie the IP believed so far stays (a liar cannot
 * make the state flap).
 *
 * State (first that applies):
 *   PUBLIC   the agreed IP is the local IP the claims left from (no translation);
 *   MAPPED   a port mapping is held;
 *   RELAYED  a relay reservation is held;
 *   NAT      the agreed IP is not ours (or STUN's discovery found a NAT);
 *   UNKNOWN  nothing agreed.
 * The module is pure: no env, no timers, no I/O; the caller passes the time. Nothing here
 * opens a connection, so no claim can make the node dial anything (the dial-back part does,
 * with its own bounds).
 */
#ifndef MESH_CORE_REACH_H
#define MESH_CORE_REACH_H

#include <stdint.h>

#include "meshara/meshara.h"

enum mesh_reach_limits {
    MESH_REACH_MAX_CLAIMS = 16,   /* per family */
    MESH_REACH_DEFAULT_AGREE = 2, /* distinct observers before an address is believed */
    MESH_REACH_ID_LEN = 8,        /* bytes of the observer's key kept to tell them apart */
};
#define MESH_REACH_DEFAULT_TTL (30ULL * 60 * MESH_NS_PER_S)

typedef struct mesh_reach mesh_reach;

typedef struct mesh_reach_cfg {
    int min_agree; /* 0 = MESH_REACH_DEFAULT_AGREE */
    mesh_time ttl; /* 0 = MESH_REACH_DEFAULT_TTL */
    uint16_t port; /* our listening port: PUBLIC's external port */
} mesh_reach_cfg;

/* cfg NULL = defaults. MESH_OK; MESH_ERR_INVAL (min_agree < 0); MESH_ERR_NOMEM. */
int mesh_reach_new(mesh_reach **out, const mesh_reach_cfg *cfg);
void mesh_reach_free(mesh_reach *r);
void mesh_reach_set_port(mesh_reach *r, uint16_t port);

/* An observer (id: its key, or any stable bytes naming a STUN server; at least
 * MESH_REACH_ID_LEN bytes used) reached at `peer` saw our connection, which left from
 * `local`, come from `observed`. 1 if the state or external address changed, 0 if not;
 * MESH_ERR_INVAL (NULL, families differ or unset). */
int mesh_reach_observed(mesh_reach *r, mesh_time now, const uint8_t *id, size_t idlen,
                        const mesh_addr *peer, const mesh_addr *local, const mesh_addr *observed);
/* The port mapping: status MESH_OK with the external address held, or a failure (none
 * held). 1 if the state changed, else 0. */
int mesh_reach_portmap(mesh_reach *r, int status, const mesh_addr *external);
/* RFC 5780 discovery's result for family (mesh_stun_behaviour's mapping and filtering). A
 * NAT found this way makes an UNKNOWN family NAT. 1 if the state changed, else 0. */
int mesh_reach_behaviour(mesh_reach *r, int family, int mapping, int filtering);
/* A relay reservation is held (on) or not on family. 1 if the state changed, else 0. */
int mesh_reach_relayed(mesh_reach *r, int family, int on);
/* Claims older than the ttl are dropped (mesh_reach_observed does it first). 1 if the state
 * changed, else 0. */
int mesh_reach_expire(mesh_reach *r, mesh_time now);

/* The view of family (MESH_AF_INET4 / MESH_AF_INET6); zeroed for another. */
void mesh_reach_get(const mesh_reach *r, int family, mesh_node_reach *out);
/* "unknown", "public", "mapped", "nat", "relayed". */
const char *mesh_reach_state_name(int state);

#endif
