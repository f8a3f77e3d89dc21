/* nat.h — a NAT middlebox on a private LAN's gateway (RFC 4787 for UDP, RFC 5382 for TCP).
 *
 * The NAT owns the LAN's public address (sim_lan_public_ip) and translates between it and the
 * LAN's private addresses. NATs in series are LANs behind LANs (sim/net.h): a home router's
 * LAN behind a carrier's LAN has its public address on the carrier's inside (100.64.0.0/10,
 * RFC 6598), where the carrier NAT translates it again; a router in front of one host is a
 * one-host LAN behind the host's former LAN. Each NAT only sees its own LAN and its own
 * public address; hairpinning happens at the level whose public address a packet targets. Going
 * out, a packet from internal endpoint I = (ip, port) to remote R gets a mapping I → E = (public
 * ip, external port); its source becomes E. Coming in, a packet to E is checked by the mapping's
 * filter and its destination becomes I.
 *
 * Behaviours (RFC 4787 §4.1 and §5, same words):
 *  - mapping: ENDPOINT_INDEPENDENT (one E per I, whatever R), ADDRESS_DEPENDENT (one E per
 *    (I, R's address)), ADDRESS_PORT_DEPENDENT (one E per (I, R's address and port): the
 *    "symmetric" NAT). Every mapping has its own external port (per protocol), so an inbound
 *    packet finds at most one mapping.
 *  - filtering: ENDPOINT_INDEPENDENT (anyone may send to E), ADDRESS_DEPENDENT (only
 *    addresses I sent to through E), ADDRESS_PORT_DEPENDENT (only the address:port pairs I
 *    sent to through E). Each remote I sent to is a "permit" with its own expiry, refreshed
 *    like the mapping; so with an endpoint-independent mapping, traffic towards S2 keeps the
 *    mapping alive but not a permit for S1 (as a conntrack entry per flow would).
 *  - port assignment: PRESERVE keeps I's port when no other mapping of that protocol uses it,
 *    else (and always in RANDOM) a port drawn uniformly from [port_lo, port_hi] from the NAT's
 *    own seeded stream (sim_rng_derive(net seed, SIM_NAT_RNG_STREAM + LAN id)), walking up to
 *    the next free port.
 *  - timeouts: a UDP mapping lives udp_timeout after the last outbound packet. A TCP mapping
 *    lives tcp_timeout (established idle timeout, RFC 5382 REQ-5) once an inbound packet has
 *    passed through it, tcp_trans_timeout before that (a SYN never answered) and after a RST
 *    or once both directions sent a FIN; a new outbound SYN starts it over. Outbound packets
 *    refresh (RFC 4787 REQ-6 "outbound refresh behavior" is always true); inbound packets
 *    refresh only when cfg.inbound_refresh is set (default: no). Expiry is lazy (a packet
 *    that finds an expired mapping or permit removes it first) plus, when sweep_interval is
 *    set, a periodic event that removes whatever expired; a full table is swept before a new
 *    mapping is refused.
 *  - hairpinning (RFC 4787 REQ-9): an internal host sending to E' (another internal host's
 *    mapping, on the public address) has its source translated to its own mapping E as for
 *    any outbound packet; the net turns the packet around at the gateway and the NAT's inbound
 *    side then applies E''s filter and rewrites the destination to the internal host, which
 *    sees E as the source. With hairpin off the packet is dropped at the gateway.
 *  - unsolicited inbound (no mapping, or the filter says no) is dropped; a TCP SYN among them
 *    is answered with a RST (from E, towards the sender) when tcp_unsolicited is
 *    SIM_NAT_UNSOLICITED_RST. Inbound packets to other addresses than the public one are not
 *    the NAT's business and pass untouched.
 *  - TCP simultaneous open (RFC 5382 §5, hole punching): an outbound SYN creates the mapping
 *    and a permit for its destination like any packet, so the peer's SYN crossing it passes
 *    the filter and reaches the host. The peer must aim at the right external port: with an
 *    endpoint-independent mapping that is the one a third party (a STUN server, a rendezvous
 *    peer) saw; a mapping that depends on the destination gives the peer a new port, so its
 *    SYN finds no mapping (sim_nat_pair_paths() says which pairs of NATs can connect how).
 *  - bounded: at most max_mappings mappings and max_permits permits; a new flow that would
 *    exceed either is dropped (counted in limit_drops).
 *
 * Port mapping services on the gateway, each on if its cfg flag is: a port-map entry gives an
 * internal endpoint a mapping that takes no notice of traffic: it accepts inbound from anyone
 * (endpoint-independent filtering) and outbound packets from that internal endpoint use it,
 * whatever the mapping behaviour. Both services answer only hosts of the NAT's own LAN (SSDP
 * and NAT-PMP are link-local: a carrier NAT never hears a home host's request) and share one
 * table, so asking either again for the same internal endpoint renews the same entry. The
 * external address they report is the NAT's public address, private when the NAT sits behind
 * another (double NAT: the caller must see that the mapping does not reach the internet).
 *  - UPnP IGD (cfg.portmap; sim_nat_portmap_request): AddPortMapping with a lease (0 =
 *    permanent, as IGDv1 routers keep it), the internal port as external port when free.
 *  - NAT-PMP (cfg.natpmp, RFC 6886; sim_nat_pmp_*): the public address request (opcode 0)
 *    with the seconds since the epoch began; mapping requests with a suggested external port
 *    and a lifetime the gateway cuts to cfg.pmp_max_lease_s (NAT-PMP has no permanent
 *    mapping: lifetime 0 deletes); every answer carries the epoch, which a restart
 *    (sim_nat_restart: the router rebooted, every mapping lost) sets back to 0 so clients know
 *    to map again.
 * sim_nat_add_static() is the administrator's port forward: a fixed external port,
 * permanent, untouched by the services' renewals and by restarts.
 *
 * What is traded away: TCP state is tracked per mapping, not per connection (enough while
 * each connection has its own internal port, which sim_tcp's ephemeral ports give); no ICMP;
 * no TCP sequence checking (an RST in either direction marks the mapping closing); packets
 * of other protocols than TCP and UDP are dropped; tcp_unsolicited RST answers an
 * unsolicited SYN at once (RFC 5382 REQ-4 asks a NAT to wait 6 s, so that a simultaneous
 * open's outbound SYN can still follow: such a NAT breaks hole punching, as real ones that
 * answer with RST do); the services are functions, not packets (the driver adds their
 * delays, sim/driver.h), and PCP (RFC 6887, a carrier NAT's service) is not modelled.
 *
 * Observing: sim_nat_get_stats() counts every decision; an observer callback (optional, with
 * a kind mask) sees each decision with a packet summary, for the scenario recorder.
 *
 * Ownership and life time: the NAT is attached to the LAN as a middlebox when created; the net
 * keeps that attachment (there is no detach), so free the NAT only when the scheduler will not
 * run again, before sim_net_free (like the transports). Everything is deterministic: virtual
 * time only, one seeded stream.
 */
#ifndef SIM_NAT_H
#define SIM_NAT_H

#include <stdint.h>

#include "sim/net.h"

typedef struct sim_nat sim_nat;

enum sim_nat_behaviour {
    SIM_NAT_ENDPOINT_INDEPENDENT = 0,
    SIM_NAT_ADDRESS_DEPENDENT = 1,
    SIM_NAT_ADDRESS_PORT_DEPENDENT = 2,
};

enum sim_nat_port_alloc {
    SIM_NAT_PORT_PRESERVE = 0, /* keep the internal port when free, else random */
    SIM_NAT_PORT_RANDOM = 1,
};

enum sim_nat_unsolicited {
    SIM_NAT_UNSOLICITED_DROP = 0, /* silently (the default: a peer's SYN times out) */
    SIM_NAT_UNSOLICITED_RST = 1,  /* answer an unsolicited TCP SYN with RST (peer: refused) */
};

enum sim_nat_limits {
    SIM_NAT_DEFAULT_UDP_TIMEOUT_S = 300,       /* RFC 4787 REQ-5: >= 2 min, 5 min advised */
    SIM_NAT_DEFAULT_TCP_TIMEOUT_S = 7440,      /* RFC 5382 REQ-5: 2 h 4 min established */
    SIM_NAT_DEFAULT_TCP_TRANS_TIMEOUT_S = 240, /* RFC 5382 REQ-5: 4 min transitory */
    SIM_NAT_DEFAULT_MAX_MAPPINGS = 16384,
    SIM_NAT_DEFAULT_MAX_PERMITS = 65536,
    SIM_NAT_MAX_MAPPINGS = 1 << 20, /* hard caps on the configurable bounds */
    SIM_NAT_MAX_PERMITS = 1 << 22,
    SIM_NAT_DEFAULT_PORT_LO = 1024,
    SIM_NAT_DEFAULT_PORT_HI = 65535,
    SIM_NAT_MAX_LEASE_S = 7 * 24 * 3600,     /* longest port-map lease granted */
    SIM_NAT_PMP_LEASE_S = 7200,              /* RFC 6886's recommended NAT-PMP lifetime */
    SIM_NAT_DEFAULT_PMP_MAX_LEASE_S = 86400, /* longest NAT-PMP lifetime granted by default */
};

/* The port-mapping services a NAT offers (sim_nat_services). */
enum sim_nat_service {
    SIM_NAT_SVC_UPNP = 1,
    SIM_NAT_SVC_NATPMP = 2,
};

/* The NAT's random stream: SIM_NAT_RNG_STREAM + the LAN id. */
#define SIM_NAT_RNG_STREAM (SIM_RNG_STREAM_USER + (0x4e4154ULL << 32)) /* "NAT" */

/* Zero-initialised = endpoint-independent mapping and filtering, port preservation, hairpin
 * off, drop unsolicited, default timeouts and bounds, no sweep event, no port-map service. */
typedef struct sim_nat_cfg {
    uint8_t mapping;             /* enum sim_nat_behaviour */
    uint8_t filtering;           /* enum sim_nat_behaviour */
    uint8_t port_alloc;          /* enum sim_nat_port_alloc */
    uint8_t tcp_unsolicited;     /* enum sim_nat_unsolicited */
    int hairpin;                 /* 1 = hairpinning supported */
    int inbound_refresh;         /* 1 = inbound packets also refresh mappings and permits */
    int portmap;                 /* 1 = a UPnP IGD service answers (sim_nat_portmap_*) */
    int natpmp;                  /* 1 = a NAT-PMP service answers (sim_nat_pmp_*) */
    uint32_t pmp_max_lease_s;    /* longest NAT-PMP lifetime granted; 0 = default */
    mesh_time udp_timeout;       /* ns; 0 = default */
    mesh_time tcp_timeout;       /* ns; 0 = default */
    mesh_time tcp_trans_timeout; /* ns; 0 = default */
    mesh_time sweep_interval;    /* ns between sweeps of expired entries; 0 = lazy only */
    uint32_t max_mappings;       /* 0 = default; at most SIM_NAT_MAX_MAPPINGS */
    uint32_t max_permits;        /* 0 = default; at most SIM_NAT_MAX_PERMITS */
    uint16_t port_lo, port_hi;   /* external port range for allocation; 0,0 = default */
} sim_nat_cfg;

/* Decisions, for counters and the observer. */
enum sim_nat_event_kind {
    SIM_NAT_EV_OUT_PASS = 0,    /* outbound translated on an existing mapping */
    SIM_NAT_EV_IN_PASS,         /* inbound translated */
    SIM_NAT_EV_MAP_CREATE,      /* a new mapping (the packet that made it) */
    SIM_NAT_EV_MAP_EXPIRE,      /* a mapping timed out (no packet) */
    SIM_NAT_EV_IN_NO_MAPPING,   /* inbound dropped: no mapping for the port */
    SIM_NAT_EV_IN_FILTERED,     /* inbound dropped by the mapping's filter */
    SIM_NAT_EV_IN_RST,          /* unsolicited SYN dropped and answered with RST */
    SIM_NAT_EV_HAIRPIN,         /* outbound to the public address, turned around */
    SIM_NAT_EV_HAIRPIN_DROP,    /* outbound to the public address, hairpin off */
    SIM_NAT_EV_LIMIT_DROP,      /* new flow dropped: mapping or permit table full */
    SIM_NAT_EV_PORTMAP_ADD,     /* port-map service or static mapping granted (no packet) */
    SIM_NAT_EV_PORTMAP_RELEASE, /* port-map released or its lease ran out (no packet) */
    SIM_NAT_EV_RESTART,         /* the NAT restarted: mappings gone, new epoch (no packet) */
    SIM_NAT_EV_KINDS
};
#define SIM_NAT_OBSERVE_ALL ((1u << SIM_NAT_EV_KINDS) - 1)
/* Everything but the per-packet passes: what a results recorder usually wants. */
#define SIM_NAT_OBSERVE_DEFAULT                                                                    \
    (SIM_NAT_OBSERVE_ALL & ~((1u << SIM_NAT_EV_OUT_PASS) | (1u << SIM_NAT_EV_IN_PASS)))

/* One decision. An unsolicited SYN answered with RST is reported as IN_RST alone (not also
 * as IN_NO_MAPPING / IN_FILTERED). MAP_EXPIRE and a lease running out (PORTMAP_RELEASE) carry
 * the time the entry ran out, which may be earlier than when the NAT noticed. Addresses are as the
 * packet arrived at the NAT (before translation); for events without a packet (has_pkt 0)
 * src/dst/flags are zero. internal/external name the mapping involved (zero when there is none,
 * e.g. IN_NO_MAPPING has only external). */
typedef struct sim_nat_event {
    int kind;    /* enum sim_nat_event_kind */
    mesh_time t; /* virtual time of the decision */
    int has_pkt;
    uint8_t proto;      /* enum sim_proto */
    uint8_t flags;      /* TCP flags of the packet */
    uint32_t seq, ack;  /* TCP sequence and acknowledgement numbers of the packet */
    size_t len;         /* payload bytes of the packet */
    mesh_addr src, dst; /* the packet's addresses before translation */
    mesh_addr internal, external;
} sim_nat_event;
/* ev is borrowed for the call. The observer must not free the NAT. */
typedef void (*sim_nat_observe_fn)(void *ud, const sim_nat_event *ev);

typedef struct sim_nat_stats {
    uint64_t out_pkts, in_pkts; /* translated and passed on */
    uint64_t maps_created, maps_expired, maps_live;
    uint64_t permits_live;
    uint64_t in_no_mapping, in_filtered, in_rst; /* in_rst also counts in the first two */
    uint64_t hairpin, hairpin_drops;
    uint64_t limit_drops;
    uint64_t portmaps_added, portmaps_released;
    uint64_t restarts, restart_losses; /* restarts, and the mappings they dropped */
} sim_nat_stats;

/* Create a NAT on lan's gateway and attach it there (after any middlebox attached earlier, so
 * e.g. a censor attached before sees internal addresses going out). cfg NULL = defaults; it
 * is copied. MESH_OK; MESH_ERR_INVAL (lan not private or without a public address, not of
 * this net, bad behaviour value, port_lo > port_hi, bounds over the hard caps);
 * MESH_ERR_LIMIT (the LAN's middlebox chain is full); MESH_ERR_NOMEM. *out untouched on
 * error. */
int sim_nat_new(sim_nat **out, sim_net *net, sim_lan *lan, const sim_nat_cfg *cfg);
/* Free the NAT and cancel its sweep event. Only once the scheduler will not run again (the
 * net keeps calling an attached middlebox). NULL: no-op. */
void sim_nat_free(sim_nat *n);

sim_lan *sim_nat_lan(const sim_nat *n);
uint32_t sim_nat_public_ip(const sim_nat *n);
/* enum sim_nat_service bits of the services cfg turned on. */
unsigned sim_nat_services(const sim_nat *n);
sim_nat_stats sim_nat_get_stats(const sim_nat *n);
/* Observer for the kinds in mask (bits 1u << kind). fn NULL: none. */
void sim_nat_set_observer(sim_nat *n, sim_nat_observe_fn fn, void *ud, uint32_t mask);

/* The external address outbound packets from internal towards remote would use now, if a live
 * mapping exists (tests and diagnostics; nothing is created or refreshed). MESH_OK,
 * MESH_ERR_NOT_FOUND, MESH_ERR_INVAL. */
int sim_nat_lookup(sim_nat *n, uint8_t proto, const mesh_addr *internal, const mesh_addr *remote,
                   mesh_addr *external);
/* Remove every expired mapping and permit now; returns how many mappings expired. */
size_t sim_nat_sweep(sim_nat *n);

/* UPnP IGD AddPortMapping: map (proto, internal) for lease_s seconds (0 = permanent,
 * longer leases are cut to SIM_NAT_MAX_LEASE_S), preferring the internal port as the external
 * one (else as port_alloc says). Asking again for the same internal endpoint renews the lease
 * and keeps the external port. *external gets the public address:port. Synchronous: a driver
 * wiring this into mesh_portmap_ops must deliver the answer from a later event (env rule 1).
 * MESH_OK; MESH_ERR_UNSUPPORTED (cfg.portmap is 0); MESH_ERR_REFUSED (internal is not a host
 * on the NAT's own LAN); MESH_ERR_INVAL (not TCP/UDP, not IPv4, address or port 0);
 * MESH_ERR_LIMIT (table full or no port free: the caller may retry later); MESH_ERR_NOMEM. */
int sim_nat_portmap_request(sim_nat *n, uint8_t proto, const mesh_addr *internal, uint32_t lease_s,
                            mesh_addr *external);
/* Remove the port mapping of (proto, internal) (UPnP DeletePortMapping). MESH_OK,
 * MESH_ERR_NOT_FOUND, MESH_ERR_INVAL. */
int sim_nat_portmap_release(sim_nat *n, uint8_t proto, const mesh_addr *internal);

/* NAT-PMP's answer to a mapping request. */
typedef struct sim_nat_pmp_answer {
    mesh_addr external;  /* public address:external port (port 0 after a deletion) */
    uint32_t lifetime_s; /* granted: the asked lifetime cut to cfg.pmp_max_lease_s; 0 after a
                            deletion */
    uint32_t epoch_s;    /* seconds since the epoch began (creation or the last restart) */
} sim_nat_pmp_answer;
/* NAT-PMP public address request from the host at from_ip: *public_ip gets the NAT's public
 * address (private behind another NAT), *epoch_s (may be NULL) the seconds since the epoch
 * began. MESH_OK; MESH_ERR_UNSUPPORTED (cfg.natpmp is 0); MESH_ERR_REFUSED (from_ip is not a
 * host of the NAT's own LAN); MESH_ERR_INVAL. */
int sim_nat_pmp_external(sim_nat *n, uint32_t from_ip, uint32_t *public_ip, uint32_t *epoch_s);
/* NAT-PMP mapping request for (proto, internal) with a suggested external port (0: the
 * internal port) and lifetime_s: a new mapping takes the suggested port when free, else one
 * as port_alloc says; the same internal endpoint again keeps its external port and gets the
 * new lifetime; lifetime 0 deletes the mapping (not an error when there is none; a static
 * forward stays). *ans gets the answer. Synchronous, like sim_nat_portmap_request. MESH_OK;
 * MESH_ERR_UNSUPPORTED (cfg.natpmp is 0); MESH_ERR_REFUSED (internal is not a host of the
 * NAT's own LAN); MESH_ERR_INVAL; MESH_ERR_LIMIT (NAT-PMP's "out of resources");
 * MESH_ERR_NOMEM. */
int sim_nat_pmp_map(sim_nat *n, uint8_t proto, const mesh_addr *internal, uint16_t suggested,
                    uint32_t lifetime_s, sim_nat_pmp_answer *ans);
/* The NAT restarted (a router reboot): every mapping and permit is gone but the static
 * forwards, and NAT-PMP's epoch starts again at 0. Reported as SIM_NAT_EV_RESTART. NULL:
 * no-op. */
void sim_nat_restart(sim_nat *n);
/* A permanent port forward ext_port → internal (configured by the scenario, works whether or
 * not the port-map service is on). *external (may be NULL) gets the public address.
 * MESH_OK; MESH_ERR_EXISTS (ext_port or the internal endpoint already forwarded);
 * MESH_ERR_INVAL; MESH_ERR_LIMIT; MESH_ERR_NOMEM. A dynamic mapping using ext_port is
 * removed first (the forward wins, as when an administrator configures a router). */
int sim_nat_add_static(sim_nat *n, uint8_t proto, const mesh_addr *internal, uint16_t ext_port,
                       mesh_addr *external);

/* ---- which pairs of NATs let a direct TCP connection through ------------------------------- */

/* One NAT between a node and the core, as far as reaching through it goes. */
typedef struct sim_nat_hop {
    uint8_t mapping, filtering; /* enum sim_nat_behaviour */
    uint8_t services;           /* enum sim_nat_service bits */
} sim_nat_hop;
/* The NATs between a node and the core, nearest first (n = 0: the node is public). */
typedef struct sim_nat_chain {
    size_t n;
    sim_nat_hop hop[SIM_NET_MAX_LAN_DEPTH];
} sim_nat_chain;
/* The hop a NAT configured with cfg is (cfg NULL: defaults, as sim_nat_new takes them). */
sim_nat_hop sim_nat_hop_of(const sim_nat_cfg *cfg);

/* Ways node A can open a direct TCP connection to node B (bits of sim_nat_pair_paths). */
enum sim_nat_path {
    SIM_NAT_PATH_DIRECT = 1u << 0,   /* B is public: A connects to B's own address */
    SIM_NAT_PATH_OBSERVED = 1u << 1, /* A connects, unannounced, to the address a third party
                                        (STUN, a rendezvous peer) saw B's listening port as:
                                        every NAT of B maps independently of the destination
                                        and filters nothing */
    SIM_NAT_PATH_PUNCHED = 1u << 2,  /* A and B connect at the same moment from their listening
                                        ports to the addresses third parties saw (TCP
                                        simultaneous open): one of the two SYNs gets through */
    SIM_NAT_PATH_MAPPED = 1u << 3,   /* B's port mapping (UPnP or NAT-PMP on its one NAT) */
};
/* The enum sim_nat_path bits for A towards B: a pure function of the two chains, the model's
 * own rules (nat.h above, sim/tcp.h's simultaneous open) — what sim/net + sim/nat + sim/tcp
 * do, checked against them in tests/sim/test_nat_chain.c:
 *  - a node is predictable when every NAT of its chain maps endpoint-independently: then the
 *    external port a third party saw is the one its SYN to the peer leaves from (a mapping
 *    that depends on the destination gives every destination a new port);
 *  - a SYN from X to Y's observed address arrives on the mapping Y's registration made and
 *    gets through each NAT of Y that filters endpoint-independently; through one that filters
 *    by address only if Y sent to X's public address over that same mapping (a punch does,
 *    where every NAT up to this one maps endpoint-independently); by address and port, only
 *    if moreover X is predictable (Y aimed at the port the SYN comes from);
 *  - OBSERVED: A's SYN reaches B without B sending first, and B is predictable (its answer
 *    leaves from the port A aimed at). PUNCHED, both sides predictable: either SYN reaches
 *    its target. One side X predictable, the other Y not: Y's SYN must reach X (X's listener
 *    takes it, the answer completes Y's open) and X's must not reach Y (Y's open would sit in
 *    SYN-RECEIVED for X's other connection, and the two never meet). Neither predictable:
 *    never. MAPPED: B's chain is one NAT offering a service (behind a second NAT the
 *    mapping's address is the carrier's inside: a double NAT maps nothing reachable).
 * Not captured: two nodes behind one NAT (hairpinning), mapping timeouts, a NAT answering
 * unsolicited SYNs with RST (it kills the peer's open). A pair can connect directly when
 * paths(a, b) | paths(b, a) is not 0 (A→B or B→A). NULL chains are public. */
unsigned sim_nat_pair_paths(const sim_nat_chain *a, const sim_nat_chain *b);
/* "direct", "observed", "punched", "mapped" for one bit; "?" otherwise. */
const char *sim_nat_path_name(unsigned bit);

#endif
