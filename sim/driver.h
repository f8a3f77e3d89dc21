/* driver.h — the simulator's implementation of meshara/env.h.
 *
 * A sim_world bundles what one simulation shares: the scheduler, the network, the TCP and
 * UDP layers and the log sink. A sim_driver is one simulated host's
 * view of it: sim_driver_env() gives the mesh_env a node core runs on. Many drivers (one per
 * node) share one world in one process; nothing here is global.
 *
 * How env.h's rules are kept:
 *  1. No callback from inside an env call: every outcome (connect result, refused, timed
 *     out, an unsupported address, a timer set in the past) is delivered by
 *     a scheduler event; packets are always delivered by events.
 *  2. A callback may close or free its own object: timers are freed after their callback
 *     returns when freed inside it; streams, listeners and datagram sockets are detached from
 *     the transport at once (no further callback) and the transport reclaims its memory in a
 *     later event.
 *  3. Data passed to callbacks is borrowed; data passed in is copied (tcp/udp copy).
 *  4. on_closed releases the stream: a stream_close (or write) made inside on_closed is
 *     ignored (refused), and the handle is freed when on_closed returns.
 *  5. now() is the scheduler's virtual clock in ns (starts at 0).
 *
 * Specifics: IPv4 only (an IPv6 connect fails later with MESH_ERR_UNREACHABLE, IPv6 bind or
 * listen with MESH_ERR_ADDR). listen/dgram_bind accept the host's own address or 0.0.0.0.
 * Connect timeout: the world's sim_tcp_cfg (default 10 s virtual). connect_from: sim/tcp.h's
 * simultaneous open — when both sides connect at once both get on_connected; when the peer's
 * SYN came first the listener accepts it and connect_from for that four-tuple returns NULL
 * with MESH_ERR_ADDR at once.
 * random(): a stream derived from (seed, host id): reproducible, not secret. mdns: NULL
 * until sim_driver_enable_mdns() (then sim/mdns.h's LAN multicast model); portmap: NULL until
 * sim_driver_enable_portmap() (then the gateway NAT's services, driver_portmap.c: NAT-PMP
 * before UPnP IGD, each answer after the exchanges a real client makes — two LAN round trips
 * for NAT-PMP, the SSDP wait and four HTTP exchanges for UPnP; a gateway behind another NAT
 * answers MESH_ERR_UNREACHABLE (double NAT: its external address is the carrier's inside);
 * no service, or no gateway, answers MESH_ERR_UNSUPPORTED after the SSDP wait; a gateway's
 * refusal or a full table is MESH_ERR_REFUSED). Up to SIM_DRIVER_PORTMAP_MAX (protocol, port)
 * entries; asking again for one supersedes the request in flight (its callback never runs);
 * release removes the mapping at once, cancels what is in flight, and MESH_ERR_NOT_FOUND
 * when nothing was requested for it.
 */
#ifndef SIM_DRIVER_H
#define SIM_DRIVER_H

#include "meshara/env.h"
#include "sim/mdns.h"
#include "sim/nat.h"
#include "sim/net.h"
#include "sim/sched.h"
#include "sim/tcp.h"
#include "sim/udp.h"

typedef struct sim_world sim_world;
typedef struct sim_driver sim_driver;

enum sim_driver_limits {
    SIM_DRIVER_LOG_LINE_MAX = 1024,    /* longer log lines are cut */
    SIM_DRIVER_PORTMAP_MAX = 16,       /* (protocol, port) entries of the port-mapping service */
    SIM_DRIVER_PORTMAP_PROC_MS = 2,    /* a gateway's processing of one request */
    SIM_DRIVER_PORTMAP_SSDP_MS = 2000, /* a UPnP client's SSDP discovery wait (miniupnpc's
                                          usual delay, the real driver's too) */
};

/* Log sink: one line per call, already prefixed "<s>.<ns> <host> <LEVEL> "; line borrowed. */
typedef void (*sim_log_fn)(void *ud, mesh_time t, const char *host, int level, const char *line);

/* A new world: scheduler at t=0, empty network seeded with seed, TCP (tcp NULL = defaults)
 * and UDP installed. MESH_OK, MESH_ERR_NOMEM (*out untouched). */
int sim_world_new(sim_world **out, uint64_t seed, const sim_tcp_cfg *tcp);
/* Free everything (drivers must be freed first). NULL: no-op. */
void sim_world_free(sim_world *w);
sim_sched *sim_world_sched(const sim_world *w);
sim_net *sim_world_net(const sim_world *w);
sim_tcp *sim_world_tcp(const sim_world *w);
sim_udp *sim_world_udp(const sim_world *w);
void sim_world_set_log(sim_world *w, sim_log_fn fn, void *ud);

/* A driver for host h (owned by the world's net). MESH_OK, MESH_ERR_INVAL, MESH_ERR_NOMEM. */
int sim_driver_new(sim_driver **out, sim_world *w, sim_host *h);
/* Release every handle the core still holds (streams aborted, timers cancelled) and free
 * the driver; the core's handles dangle afterwards. Not from inside a callback. NULL: no-op. */
void sim_driver_free(sim_driver *d);
mesh_env sim_driver_env(sim_driver *d);

/* Give this host mDNS (sim/mdns.h): binds UDP port 5353 on it and sets the env's ops->mdns
 * (envs handed out earlier see it too: each driver has its own ops table). The service is
 * the driver's: sim_driver_free() frees it. MESH_OK, MESH_ERR_INVAL, MESH_ERR_EXISTS (already
 * enabled), MESH_ERR_NOMEM, or sim_mdns_new()'s errors. */
int sim_driver_enable_mdns(sim_driver *d);
/* The host's mDNS service (NULL until enabled), for tests and statistics. */
sim_mdns *sim_driver_mdns(const sim_driver *d);

/* Give this host the env's port-mapping service (ops->portmap, seen by envs handed out
 * earlier too), answered by gw: the NAT on the host's own LAN, the only gateway its requests
 * reach (NULL: no gateway answers, every request ends MESH_ERR_UNSUPPORTED). gw is borrowed:
 * free it after the driver. MESH_OK; MESH_ERR_INVAL (gw on another LAN than the host);
 * MESH_ERR_EXISTS (already enabled); MESH_ERR_NOMEM. */
int sim_driver_enable_portmap(sim_driver *d, sim_nat *gw);

#endif
