/*
 * real/portmap.h — port mapping for the real driver: env.h's mesh_portmap_ops over NAT-PMP
 * (libnatpmp, in the loop) and UPnP IGD (miniupnpc, on a worker thread).
 *
 * Order: NAT-PMP first, then UPnP. NAT-PMP is one UDP exchange with the default gateway,
 * non-blocking and answered in one LAN round trip, and a gateway without it says so at once
 * (ICMP port unreachable) or within MESH_REAL_PORTMAP_NATPMP_MS; UPnP costs a fixed SSDP wait
 * (MESH_REAL_PORTMAP_SSDP_MS) plus HTTP requests, in a library that blocks. Once a method has
 * mapped a port, that port's renewals try it first. A definite "no" from one method does not
 * stop the other (routers configure them separately), except a gateway whose external address
 * is private (double NAT): the other method would reach the same gateway.
 *
 * What a request does (env.h lists the result codes):
 *  - NAT-PMP: public-address request, then a mapping request for the external port held
 *    before (or the internal port); the gateway may give another port and a shorter lifetime:
 *    both are reported as given. Answers are length-checked before libnatpmp reads them
 *    (it does not check), and must match the request (type, internal port), else
 *    MESH_ERR_PROTOCOL. Result codes: not authorized / out of resources → MESH_ERR_REFUSED;
 *    network failure (no public address) → MESH_ERR_UNREACHABLE; unsupported version/opcode,
 *    port unreachable, no answer → MESH_ERR_UNSUPPORTED (try UPnP).
 *  - UPnP: SSDP discovery (or cfg.igd_url), GetExternalIPAddress, AddPortMapping with the
 *    lease, then GetSpecificPortMappingEntry to check the gateway really holds it for us
 *    (miniupnpc takes any answer without an error code as success). 725
 *    OnlyPermanentLeasesSupported → retried with lease 0; 718 ConflictInMappingEntry / 729 →
 *    MESH_REAL_PORTMAP_ALT_PORTS other external ports, then MESH_ERR_EXISTS; other UPnP
 *    errors (606, 501, 728...) → MESH_ERR_REFUSED; no answer over HTTP → MESH_ERR_IO; a
 *    description or answer that makes no sense → MESH_ERR_PROTOCOL.
 *  - An external address that is empty, 0.0.0.0 or in a private/special-purpose block (RFC
 *    1918, 100.64/10, 127/8, 169.254/16, 192.0.0/24, the TEST-NETs, 198.18/15, 224/4, 240/4,
 *    0/8) is MESH_ERR_UNREACHABLE, logged as a double NAT: no mapping is reported.
 *  Every failure is logged once per request, naming each method's error ("portmap: TCP 7000:
 *  no mapping: MESH_ERR_REFUSED (NAT-PMP: ...; UPnP: ...)"); a success names the method:
 *  "portmap: TCP 7000 mapped to ADDR by NAT-PMP|UPnP, lease N s".
 *
 * Requests and releases are tasks run one at a time, in order: a release queued behind a
 * request in flight runs after it, so a mapping made late is still removed. release() removes
 * a mapping with the method that made it (NAT-PMP lifetime 0 / DeletePortMapping).
 *
 * Bounded waits: each NAT-PMP exchange MESH_REAL_PORTMAP_NATPMP_MS (libnatpmp's own retries
 * would last 128 s), each UPnP job cfg.upnp_timeout_ms, measured in the loop; a UPnP job that
 * runs over is abandoned (MESH_ERR_TIMEOUT; a late success is remembered so the mapping is
 * released later, or removed at once if it was released meanwhile) while the worker finishes
 * it: miniupnpc has only per-socket timeouts (3 s connect, 5 s per read), so a gateway that
 * trickles bytes could hold it for long. Its HTTP bodies are unbounded in size: a hostile
 * gateway on the LAN can make the worker allocate; only the time we wait is bounded.
 *
 * Threads. The worker (started at the first UPnP job, all signals blocked) runs miniupnpc
 * only: it takes jobs from a queue under a mutex and hands results back through a pipe the
 * loop watches; it never touches the env, the driver or the core. Callbacks run from the
 * loop (env rule 1: nothing is answered from inside request/release: tasks start from a
 * deferred event). Free (mesh_real_free, adapters first): queued NAT-PMP deletions are sent
 * without waiting for the answer; the worker finishes its queued UPnP deletions within
 * MESH_REAL_PORTMAP_JOIN_MS and is joined, or left to finish and free its state itself.
 * The adapter keeps no event added while idle (so a loop that runs "until nothing is left"
 * waits for pending releases, as meshara-node's shutdown does).
 */
#ifndef MESHARA_REAL_PORTMAP_H
#define MESHARA_REAL_PORTMAP_H

#include <stdint.h>

#include "real/driver.h"

#ifdef __cplusplus
extern "C" {
#endif

enum mesh_real_portmap_limits {
    MESH_REAL_PORTMAP_MAX = 16,         /* (protocol, port) entries per driver */
    MESH_REAL_PORTMAP_NATPMP_MS = 2000, /* one NAT-PMP exchange (sends at 0, .25, .75, 1.75 s) */
    MESH_REAL_PORTMAP_SSDP_MS = 2000,   /* SSDP discovery wait (upnpDiscover's delay) */
    MESH_REAL_PORTMAP_UPNP_MS = 20000,  /* default bound of one UPnP job */
    MESH_REAL_PORTMAP_JOIN_MS = 2000,   /* free: wait this long for the worker's deletions */
    MESH_REAL_PORTMAP_ALT_PORTS = 3,    /* other external ports tried after a UPnP conflict */
    MESH_REAL_PORTMAP_WHY_MAX = 256,    /* bytes of one method's explanation in a log line */
    MESH_REAL_PORTMAP_URL_MAX = 1024,   /* cfg.igd_url */
    MESH_REAL_PORTMAP_DESC_MAX = 64,    /* cfg.description */
};

typedef struct mesh_real_portmap_cfg {
    int no_natpmp, no_upnp; /* turn a method off */
    /* UPnP: the IGD's root description URL ("http://10.0.1.1:5000/rootDesc.xml"): no SSDP
     * discovery. NULL = discover. Copied. */
    const char *igd_url;
    /* NAT-PMP: the gateway's IPv4 address, 4 bytes in network order; all zero = the default
     * route's gateway (libnatpmp reads /proc/net/route). The port is always 5351. */
    uint8_t natpmp_gateway[4];
    uint32_t natpmp_ms, ssdp_ms, upnp_timeout_ms; /* 0 = the defaults above */
    const char *description; /* UPnP mapping description; NULL = "meshara". Copied. */
} mesh_real_portmap_cfg;

/* Install the port-mapping adapter in r's env (ops->portmap), cfg copied (NULL = defaults).
 * Nothing is sent before the first request. The adapter belongs to r: mesh_real_free() frees
 * it (sending the deletions still due). MESH_OK; MESH_ERR_INVAL (r NULL, both methods off, a
 * URL or description too long); MESH_ERR_EXISTS (already attached); MESH_ERR_NOMEM;
 * MESH_ERR_IO (no pipe or event for the worker's results). */
int mesh_real_portmap_attach(mesh_real *r, const mesh_real_portmap_cfg *cfg);

#ifdef __cplusplus
}
#endif
#endif
