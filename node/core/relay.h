/* relay.h — the relay service: a reachable node carries streams for nodes that are not.
 *
 * Roles (circuit relay, like libp2p's circuit relay v2): a target T that cannot be reached
 * keeps a *reservation* on a relay R over its own Meshara session to R; a client C with a
 * session to R opens a *circuit* through R to T; the circuit's bytes are a second, end-to-end
 * Meshara session between C and T (TLS 1.3 + exporter-bound hello), so R sees ciphertext
 * only and an altered byte fails that session with MESH_ERR_TLS. This header is R's side;
 * relay_end.h is C's and T's (circuits as virtual streams, vstream.h).
 *
 * Messages (Envelope.relay, node/wire/meshara.proto), on the sessions R already has:
 *   T → R  RelayReserve{ttl}           R → T  RelayReserved{status, ttl, limits}
 *   C → R  RelayConnect{c, target id}  R → T  RelayIncoming{t, C's key}
 *   T → R  RelayAccept{t}              R → C  RelayConnected{c, limits}
 *   either way RelayData / RelayWindow on an open circuit, forwarded with the other leg's id;
 *   RelayClose{id, status} ends a circuit (or refuses one) and is forwarded likewise.
 * c is the id C chose on its session, t the one R chose on T's: ids are per session, and a
 * session may carry both kinds (a node both client and target on one relay), so the ids R
 * chooses have the top bit set (MESH_RELAY_ID_RELAY) and a client's must not (refused with
 * MESH_ERR_INVAL, as is id 0).
 * Refusals, as RelayClose to C: MESH_ERR_NOT_FOUND (no live reservation for the target),
 * MESH_ERR_LIMIT (circuits full), MESH_ERR_EXISTS (c already in use on that session),
 * MESH_ERR_TIMEOUT (T did not accept in MESH_RELAY_ACCEPT_TIMEOUT_MS), or T's own status.
 * RelayReserved{MESH_ERR_LIMIT} when the reservation table is full.
 *
 * Limits (mesh_relay_limits, named defaults below): reservations, circuits in total and per
 * client, bytes per circuit (both ways together) and time per circuit. A circuit over its
 * bytes or time is closed on both legs with MESH_ERR_LIMIT; a reservation not renewed within
 * its ttl is dropped. Bytes: R keeps none of a circuit's bytes itself; it forwards each
 * RelayData at once. Flow control is end to end (relay_end.h: windows), and what a hostile
 * end sends past its window ends up in the session's queue towards the other leg, which is
 * bounded: a send the session refuses (queue full) closes the circuit with MESH_ERR_LIMIT.
 *
 * Sessions are the glue's (a node, a test): it hands every Relay body a session receives to
 * mesh_relay_service_input with the key that session proved, calls
 * mesh_relay_service_link_closed when the session ends, and sends what the service asks
 * through the send function (one session = one opaque link). Nothing here calls back into
 * the glue except that send function, and only from inside input, link_closed or the
 * service's timer.
 */
#ifndef MESH_CORE_RELAY_H
#define MESH_CORE_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "core/identity.h"
#include "core/wire.h"
#include "meshara/env.h"

typedef Meshara__Wire__Relay mesh_relay_msg;

#define MESH_RELAY_ID_RELAY (1ULL << 63) /* set in the circuit ids a relay chooses */

enum mesh_relay_defaults {
    MESH_RELAY_DEFAULT_RESERVATIONS = 64,
    MESH_RELAY_DEFAULT_CIRCUITS = 128,
    MESH_RELAY_DEFAULT_CIRCUITS_PER_PEER = 8,
    MESH_RELAY_DEFAULT_MAX_BYTES = 16 << 20, /* per circuit, both ways */
    MESH_RELAY_DEFAULT_MAX_S = 600,          /* per circuit: long enough to punch a hole */
    MESH_RELAY_DEFAULT_TTL_S = 3600,         /* reservation, at most */
    MESH_RELAY_ACCEPT_TIMEOUT_MS = 10000,    /* RelayIncoming → RelayAccept */
    MESH_RELAY_MAX_TABLE = 4096,             /* upper bound on any limit above */
};

/* Zero fields take the defaults; values above MESH_RELAY_MAX_TABLE are cut to it. */
typedef struct mesh_relay_limits {
    size_t reservations, circuits, circuits_per_peer;
    uint64_t max_bytes; /* per circuit */
    uint32_t max_s;     /* per circuit */
    uint32_t max_ttl_s; /* granted reservation ttl, at most */
} mesh_relay_limits;

/* Send r on link (the glue packs it into an Envelope on that session). MESH_OK, or any
 * error: the service then gives up what it was doing on that link (the circuit is closed on
 * its other leg with MESH_ERR_LIMIT). Must not call back into the service. */
typedef int (*mesh_relay_send_fn)(void *glue, void *link, const mesh_relay_msg *r);

/* RelayClose{id, status} through send (both sides end or refuse circuits with it). Returns
 * what send returned. */
int mesh_relay_send_close(mesh_relay_send_fn send, void *glue, void *link, uint64_t id, int status);

typedef struct mesh_relay_service mesh_relay_service;

typedef struct mesh_relay_stats {
    size_t reservations, circuits;     /* now */
    uint64_t circuits_opened, refused; /* refusals of reserve or connect */
    uint64_t closed_limit;             /* circuits closed for bytes or time */
    uint64_t bytes_relayed;            /* RelayData payload forwarded */
} mesh_relay_stats;

/* A service over env (borrowed: must outlive it; its timer decides expiry). lim NULL =
 * defaults (copied). send and glue: how messages leave. MESH_OK; MESH_ERR_INVAL;
 * MESH_ERR_NOMEM. *out untouched on failure. */
int mesh_relay_service_new(mesh_relay_service **out, const mesh_env *env,
                           const mesh_relay_limits *lim, mesh_relay_send_fn send, void *glue);
/* Drop everything, sending nothing (the glue closes its sessions). NULL: no-op. */
void mesh_relay_service_free(mesh_relay_service *svc);

/* r (borrowed) arrived on link, whose session proved peer_key (MESH_PUBKEY_LEN bytes).
 * MESH_OK (including messages for circuits that are gone: closes cross); MESH_ERR_PROTOCOL
 * (a kind only a relay sends — the peer is broken: close its session); MESH_ERR_INVAL. */
int mesh_relay_service_input(mesh_relay_service *svc, void *link, const uint8_t *peer_key,
                             const mesh_relay_msg *r);
/* link's session ended: its reservation goes, and each of its circuits is closed on the
 * other leg with MESH_ERR_RESET. */
void mesh_relay_service_link_closed(mesh_relay_service *svc, void *link);
void mesh_relay_service_stats(const mesh_relay_service *svc, mesh_relay_stats *out);

#endif
