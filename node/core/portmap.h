/* portmap.h — the lifecycle of one port mapping on the local gateway (UPnP IGD / NAT-PMP),
 * through the env's port-mapping service (meshara/env.h mesh_portmap_ops). Sans-I/O: env
 * timers only; the protocols themselves are the driver's (node/real/portmap.h, the
 * simulator's NAT model).
 *
 * What it does for its owner (the node maps its listening port):
 *
 *    start ──request──▶ REQUESTING ──answer OK──▶ MAPPED ──(lease/2)──▶ renewal request
 *                          │   ▲                    │  ▲                    │
 *                  failure │   │ retry after        │  └──── answer OK ─────┤
 *                          ▼   │ backoff            │                       │ failure: retry
 *                        FAILED┘          lease end │◀──────────────────────┘ after backoff,
 *                          ▲                        │                         mapping kept
 *                          └──── mapping lost ──────┘                         until it ends
 *    stop (from any state): release at the gateway, OFF.
 *
 *  - Renewal at half the lease the gateway granted (at least MESH_PORTMAP_MIN_RENEW_MS after
 *    the answer); a mapping with no expiry (granted 0) is re-requested at half the lease we
 *    ask for, which notices a gateway that rebooted and forgot it.
 *  - Failures back off: retry_min, then doubling up to retry_max; a success resets it. A
 *    renewal that fails keeps the mapping until its lease really ends (the gateway keeps it
 *    that long), retrying with the same backoff meanwhile.
 *  - Every wait is bounded: a request the driver has not answered after answer_timeout counts
 *    as MESH_ERR_TIMEOUT (the next request supersedes it: env.h).
 *
 * The owner's hook: report(pm, MESH_OK, external) when a mapping is held at a new external
 * address (the first one, or a changed one: a renewal at the same address is not reported);
 * report(pm, error, NULL) when there is no mapping: an attempt failed while none was held, or
 * the held one ended (error: the last failure). Whether an external address is advertised is
 * the owner's decision (issue 10: only after a dial-back confirms it). report runs from env
 * events only, never inside a mesh_portmap_* call; it may call mesh_portmap_stop, not _free.
 *
 * Log lines (env log, "portmap: TCP PORT: ..."): held at ADDR (renewed: DEBUG) / attempt
 * failed / renewal failed / lost / released, each with the address, the error name and when
 * the next attempt comes (the driver logs how each method fared: node/real/portmap.h).
 */
#ifndef MESH_CORE_PORTMAP_H
#define MESH_CORE_PORTMAP_H

#include <stdint.h>

#include "meshara/env.h"

enum mesh_portmap_limits {
    MESH_PORTMAP_DEFAULT_LEASE_S = 3600,      /* asked of the gateway */
    MESH_PORTMAP_MAX_LEASE_S = 7 * 24 * 3600, /* largest cfg.lease_s (UPnP IGD v2's cap) */
    MESH_PORTMAP_DEFAULT_RETRY_MIN_MS = 30 * 1000,
    MESH_PORTMAP_DEFAULT_RETRY_MAX_MS = 30 * 60 * 1000,
    MESH_PORTMAP_DEFAULT_ANSWER_MS = 60 * 1000, /* the drivers' own bounds are far shorter */
    MESH_PORTMAP_MIN_RENEW_MS = 1000,           /* no renewal sooner after an answer */
};

/* = enum mesh_node_portmap_state (meshara.h). */
enum mesh_portmap_state {
    MESH_PORTMAP_OFF = 0,        /* not started, stopped, or nothing the env can map */
    MESH_PORTMAP_REQUESTING = 1, /* no mapping; a request is in flight */
    MESH_PORTMAP_MAPPED = 2,     /* a mapping is held (a renewal may be in flight) */
    MESH_PORTMAP_FAILED = 3,     /* no mapping; the next attempt is scheduled */
};

typedef struct mesh_portmap_cfg {
    uint32_t lease_s;    /* 0 = MESH_PORTMAP_DEFAULT_LEASE_S; at most MESH_PORTMAP_MAX_LEASE_S */
    mesh_time retry_min; /* 0 = the defaults above */
    mesh_time retry_max;
    mesh_time answer_timeout;
} mesh_portmap_cfg;

typedef struct mesh_portmap_stats {
    int state;            /* enum mesh_portmap_state */
    mesh_addr external;   /* the mapping held (family NONE when none) */
    uint32_t lease_s;     /* granted for it (0 = no expiry) */
    mesh_time expires_at; /* when it ends unless renewed (MESH_TIME_NEVER: no expiry / none) */
    mesh_time next_at;    /* next request (renewal or retry); 0 = none scheduled */
    int last_error;       /* the last failure, MESH_OK if none yet */
    uint64_t requests;    /* made to the env */
    uint64_t mappings;    /* answers that gave a new or changed external address */
    uint64_t renewals;    /* answers that kept the same one */
    uint64_t failures;    /* failed answers, immediate errors and answer timeouts */
    uint64_t losses;      /* mappings that ended without a successful renewal */
} mesh_portmap_stats;

typedef struct mesh_portmap mesh_portmap;

typedef void (*mesh_portmap_report_fn)(mesh_portmap *pm, int status, const mesh_addr *external,
                                       void *ud);

/* A lifecycle on env (borrowed: must outlive pm); cfg copied (NULL = defaults). Nothing is
 * requested before mesh_portmap_start. MESH_OK; MESH_ERR_INVAL (out or report NULL, a lease
 * above the maximum, retry_min > retry_max); MESH_ERR_NOMEM. *out untouched on failure. */
int mesh_portmap_new(mesh_portmap **out, const mesh_env *env, const mesh_portmap_cfg *cfg,
                     mesh_portmap_report_fn report, void *ud);

/* Map TCP port bound->port (the address a listener is bound to) and keep it mapped.
 * MESH_OK (the first request is on its way; its outcome is reported later);
 * MESH_ERR_UNSUPPORTED (the env has no port-mapping service, or bound is not an IPv4 address
 * a gateway could map to: IPv6, loopback); MESH_ERR_INVAL (port 0); MESH_ERR_STATE (started
 * and not stopped). An immediate error of the env's request is handled like a failed answer
 * (reported from a later event, retried with backoff). */
int mesh_portmap_start(mesh_portmap *pm, const mesh_addr *bound);

/* Release the mapping at the gateway (the env removes it in the background) and stop every
 * timer; no report follows. A request in flight is cancelled. OFF afterwards (start may be
 * called again). No-op when OFF. */
void mesh_portmap_stop(mesh_portmap *pm);

/* Stop (releasing the mapping) and free. NULL: no-op. Not from inside report. */
void mesh_portmap_free(mesh_portmap *pm);

void mesh_portmap_get_stats(const mesh_portmap *pm, mesh_portmap_stats *out);

#endif
