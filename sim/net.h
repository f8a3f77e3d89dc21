/* net.h — the simulated network: hosts, LANs, links, an internet core, and middleboxes.
 *
 * Topology. A host has one IPv4 address and an access link (up: host → network, down:
 * network → host). A host either sits on a LAN (a broadcast domain: a home, an office, a
 * data-centre rack) or hangs directly off the core. A LAN has a site link to the core (up and
 * down) and may be private: its hosts' addresses then exist only inside the LAN, and the
 * outside reaches the LAN only through its public address (what a NAT middlebox on the LAN
 * translates). Addresses are looked up in hash tables (one global, one per LAN), never by
 * scanning hosts; two private LANs may reuse the same addresses.
 *
 * LANs behind LANs (NATs in series, a router behind another router). A private LAN may name
 * an upstream LAN instead of the core: its site link then joins the upstream LAN as a host's
 * access link does, and its public address is an address on the upstream LAN — private to
 * it when the upstream is private (a home router's WAN address 100.64.x.y inside a carrier
 * NAT, RFC 6598), global when the upstream is public. A router in front of a single host is
 * a one-host LAN behind the host's former LAN. At most SIM_NET_MAX_LAN_DEPTH LANs in a chain.
 *
 * A path is a chain of stages, each either a link (FIFO queue with a rate, a size limit, a
 * propagation delay, jitter and loss) or a middlebox:
 *
 *   same LAN:   src.mbox(out) → src.up → dst.down → dst.mbox(in) → deliver
 *   otherwise:  src.mbox(out) → src.up → [srcLAN.mbox(out) → srcLAN.up] → core
 *               → [dstLAN.down → dstLAN.mbox(in)] → dst.down → dst.mbox(in) → deliver
 *
 * With LANs behind LANs the bracketed legs repeat once per level: a packet climbs from its
 * LAN through each gateway (mbox(out), then its site link) until a LAN on the way holds the
 * destination address (a host, or the public address of a LAN behind it, which it then
 * descends into) or the top LAN's site link reaches the core; from the core it enters the
 * top LAN of the destination's chain and descends level by level (down link, mbox(in), then
 * the host or the next LAN the translated address names).
 *
 * The core is a delay stage with no queue: latency (a constant, or a per-pair function the
 * scenario installs) and loss. Multicast (224.0.0.0/4) never leaves the sender's LAN: it is
 * copied at the LAN to every host on it that joined the group, the sender included (like
 * IP_MULTICAST_LOOP), through each receiver's down link; no gateway forwards it. Hairpinning:
 * a packet that leaves a LAN's middleboxes addressed to that same LAN's public address turns
 * around at the gateway (no site link, no core) — at whichever level of a chain it happens,
 * so two homes behind one carrier NAT reach each other's carrier mappings through it.
 *
 * Links. A packet of B wire bytes entering a link at time t starts serialising at
 * max(t, busy_until), finishes at start + ceil(B*8e9/rate) ns, and reaches the far end
 * latency + jitter later, where jitter is uniform in [0, jitter] from the link's own seeded
 * stream. Arrivals on one link direction are kept in FIFO order (an arrival earlier than the
 * previous packet's is held back to it), so jitter varies per-packet delay but never
 * reorders a flow — nor any two packets sharing a link (the fidelity traded). A packet that
 * finds more than queue_bytes waiting to serialise is tail-dropped; random loss is decided
 * when a packet enters the link (a lost packet still uses the link: it is lost on the wire).
 * rate 0 means infinite (no serialisation, no queue).
 *
 * Middleboxes see every packet on the path at their attach point, in order, with real
 * payload bytes, and return a verdict: pass, drop, or delay. They may rewrite any field of
 * the packet in place (addresses, ports, flags, payload via sim_pkt_set_payload) and inject
 * new packets in either direction with sim_mbox_inject(). Several middleboxes at one point
 * form a chain in attach order going out (m0 first, nearest the host) and in reverse order
 * coming in.
 *
 * Memory: packets come from a per-net free list; a packet's payload buffer is kept with it,
 * so steady-state forwarding does not call malloc. Everything belongs to the sim_net; hosts
 * and LANs live until sim_net_free().
 */
#ifndef SIM_NET_H
#define SIM_NET_H

#include <stddef.h>
#include <stdint.h>

#include "meshara/env.h"
#include "sim/rng.h"
#include "sim/sched.h"

typedef struct sim_net sim_net;
typedef struct sim_host sim_host;
typedef struct sim_lan sim_lan;
typedef struct sim_mbox sim_mbox;

enum sim_net_limits {
    SIM_PKT_MAX_PAYLOAD = 65507,         /* UDP's maximum; TCP segments are far smaller */
    SIM_TCP_HDR_BYTES = 40,              /* IPv4 + TCP headers counted on the wire */
    SIM_UDP_HDR_BYTES = 28,              /* IPv4 + UDP headers counted on the wire */
    SIM_LINK_DEFAULT_QUEUE = 256 * 1024, /* bytes waiting to serialise before tail drop */
    SIM_MBOX_MAX_PER_POINT = 8,          /* middleboxes chained at one host or LAN */
    SIM_NET_MAX_HOSTS = 1 << 22,
    SIM_NET_MAX_LANS = 1 << 20,
    SIM_NET_MAX_GROUPS_PER_HOST = 16, /* multicast groups one host may join */
    SIM_NET_PKT_POOL_MAX = 1 << 16,   /* free packets kept for reuse */
    SIM_NET_MAX_LAN_DEPTH = 4,        /* LANs in a chain of upstreams, the top one included */
};

enum sim_proto { SIM_PROTO_TCP = 6, SIM_PROTO_UDP = 17 };

enum sim_tcp_flag {
    SIM_TCP_FIN = 0x01,
    SIM_TCP_SYN = 0x02,
    SIM_TCP_RST = 0x04,
    SIM_TCP_PSH = 0x08,
    SIM_TCP_ACK = 0x10,
};

/* The direction a packet crosses a middlebox: OUT = away from the hosts the middlebox
 * protects (towards the core), IN = towards them. */
enum sim_dir { SIM_DIR_OUT = 0, SIM_DIR_IN = 1 };

enum sim_verdict {
    SIM_PASS = 0,  /* continue along the path (possibly rewritten) */
    SIM_DROP = 1,  /* the packet vanishes (the net frees it) */
    SIM_DELAY = 2, /* continue after *delay ns (e.g. a throttling censor) */
};

/* A packet: what a middlebox sees and may rewrite. Only fields above `priv` are public. */
typedef struct sim_pkt {
    mesh_addr src, dst; /* IPv4 addresses with ports (host order), as on the wire now */
    uint8_t proto;      /* enum sim_proto */
    uint8_t flags;      /* TCP: enum sim_tcp_flag bits; UDP: 0 */
    uint32_t seq, ack;  /* TCP sequence / acknowledgement numbers (wrap like real TCP) */
    uint8_t *data;      /* payload bytes (TCP segment data or UDP datagram); owned by the
                           packet: change with sim_pkt_set_payload() */
    size_t len;         /* payload length */
    uint64_t id;        /* unique per net, in creation order (logs, fingerprint) */
    mesh_time sent_at;  /* when the sender handed it to the network */
    struct {            /* routing state: private to net.c */
        size_t cap;
        uint32_t hop;
        int32_t mb; /* chain position at the current middlebox point */
        sim_host *src_host, *dst_host;
        sim_lan *lan;
        struct sim_pkt *next;
    } priv;
} sim_pkt;

/* Wire size counted against link rates: payload plus IPv4/TCP or IPv4/UDP headers. */
size_t sim_pkt_wire_bytes(const sim_pkt *p);
/* Replace the payload (copied). MESH_OK, MESH_ERR_TOO_BIG (> SIM_PKT_MAX_PAYLOAD),
 * MESH_ERR_NOMEM (payload unchanged). */
int sim_pkt_set_payload(sim_pkt *p, const void *data, size_t len);

/* One direction of a link. Zero-initialised = ideal: no delay, infinite rate, no loss. */
typedef struct sim_link_cfg {
    mesh_time latency;    /* propagation delay, ns */
    mesh_time jitter;     /* extra delay, uniform in [0, jitter] ns, FIFO kept */
    uint64_t rate_bps;    /* bits per second; 0 = infinite */
    uint32_t queue_bytes; /* tail-drop limit; 0 = SIM_LINK_DEFAULT_QUEUE */
    double loss;          /* probability a packet is lost, [0, 1] */
} sim_link_cfg;

typedef struct sim_link_stats {
    uint64_t pkts, bytes;      /* entered the link */
    uint64_t lost, tail_drops; /* random loss, queue overflow */
} sim_link_stats;

/* Create a network on sched; every random stream derives from seed. MESH_OK,
 * MESH_ERR_INVAL (sched NULL), MESH_ERR_NOMEM. The net does not own sched. */
int sim_net_new(sim_net **out, sim_sched *sched, uint64_t seed);
/* Free hosts, LANs and all packets. Packets in flight still have events in the scheduler,
 * so free the net only when the scheduler will not run again (free it right after).
 * Transports and drivers built on the net must be freed first. NULL: no-op. */
void sim_net_free(sim_net *net);
sim_sched *sim_net_sched(const sim_net *net);
mesh_time sim_net_now(const sim_net *net);
uint64_t sim_net_seed(const sim_net *net);

/* The core: latency and loss between sites (jitter and rate are ignored: the core has no
 * queue). latency_fn, if set, replaces core.latency per packet: it gets the two endpoints'
 * attachment ids (LAN id, or host id | SIM_NET_ATTACH_HOST for hosts on the core) and must be
 * a pure function of them (determinism). */
#define SIM_NET_ATTACH_HOST (1ULL << 63)
typedef mesh_time (*sim_core_latency_fn)(void *ud, uint64_t from_attach, uint64_t to_attach);
void sim_net_set_core(sim_net *net, const sim_link_cfg *core, sim_core_latency_fn latency_fn,
                      void *ud);

typedef struct sim_lan_cfg {
    const char *name;      /* copied; for logs */
    sim_link_cfg up, down; /* the site link to and from the core (or the upstream LAN) */
    uint32_t public_ip;    /* the site's address in the core or on the upstream LAN (host
                              order); 0 = none */
    int is_private;        /* hosts' addresses exist only inside the LAN */
    sim_lan *upstream;     /* NULL: the site link reaches the core; else the LAN (of this
                              net) this one sits behind; then the LAN must be private */
} sim_lan_cfg;
/* MESH_OK, MESH_ERR_INVAL (private without public_ip, bad loss, an upstream of another net or
 * on a LAN that is not private), MESH_ERR_EXISTS (public_ip taken where it lives: the core,
 * or the upstream LAN and, when that one is public, the core), MESH_ERR_LIMIT (too many LANs,
 * or a chain deeper than SIM_NET_MAX_LAN_DEPTH), MESH_ERR_NOMEM. The LAN is owned by the
 * net. */
int sim_net_add_lan(sim_net *net, const sim_lan_cfg *cfg, sim_lan **out);

typedef struct sim_host_cfg {
    const char *name;      /* copied; for logs */
    uint32_t ip;           /* host order, e.g. 0x0a000002 = 10.0.0.2; not 0, not multicast */
    sim_lan *lan;          /* NULL: attached directly to the core */
    sim_link_cfg up, down; /* access link */
} sim_host_cfg;
/* MESH_OK, MESH_ERR_INVAL, MESH_ERR_EXISTS (address taken in its scope), MESH_ERR_LIMIT,
 * MESH_ERR_NOMEM. The host is owned by the net. */
int sim_net_add_host(sim_net *net, const sim_host_cfg *cfg, sim_host **out);

/* Change a link at run time (scenario link changes). Packets already in flight keep their
 * schedule. MESH_OK or MESH_ERR_INVAL. */
int sim_host_set_links(sim_host *h, const sim_link_cfg *up, const sim_link_cfg *down);
int sim_lan_set_links(sim_lan *l, const sim_link_cfg *up, const sim_link_cfg *down);
/* Cut a host off (partition): every packet to or from it is dropped while down. */
void sim_host_set_up(sim_host *h, int up);

uint32_t sim_host_id(const sim_host *h); /* 0, 1, 2... in creation order */
uint32_t sim_host_ip(const sim_host *h); /* host order */
const char *sim_host_name(const sim_host *h);
sim_net *sim_host_net(const sim_host *h);
uint32_t sim_lan_id(const sim_lan *l);
/* The LAN's address in the core (0 = none) and whether its hosts' addresses are private:
 * what a NAT middlebox on the gateway translates to and from. */
uint32_t sim_lan_public_ip(const sim_lan *l);
int sim_lan_is_private(const sim_lan *l);
/* The LAN this one sits behind (NULL: the core), and the host's LAN (NULL: the core). */
sim_lan *sim_lan_upstream(const sim_lan *l);
sim_lan *sim_host_lan(const sim_host *h);
/* 1 when a host with address ip sits on l itself (not on a LAN behind it). */
int sim_lan_has_host(const sim_lan *l, uint32_t ip);
/* 1 when l's public address is reachable from the core: no private LAN above it. */
int sim_lan_public_is_global(const sim_lan *l);
/* The host's access link configuration as it is now. */
void sim_host_get_links(const sim_host *h, sim_link_cfg *up, sim_link_cfg *down);
sim_link_stats sim_host_up_stats(const sim_host *h);
sim_link_stats sim_host_down_stats(const sim_host *h);
/* Time the host's uplink finishes serialising everything queued so far (<= now: idle).
 * The TCP model paces itself on this instead of overflowing its own uplink. */
mesh_time sim_host_up_busy_until(const sim_host *h);

/* Find a host by address as seen from `from` (NULL = the core): inside from's LAN first,
 * then globally. NULL if none. */
sim_host *sim_net_find_host(sim_net *net, const sim_host *from, uint32_t ip);

/* Multicast membership of a host (the UDP layer calls these as sockets join and close).
 * MESH_OK, MESH_ERR_INVAL (not multicast), MESH_ERR_LIMIT. */
int sim_host_join_group(sim_host *h, uint32_t group);
void sim_host_leave_group(sim_host *h, uint32_t group);

/* ---- packets ------------------------------------------------------------------------- */

/* A new packet (from the pool) with a copy of len payload bytes; every other field zero.
 * MESH_OK, MESH_ERR_TOO_BIG, MESH_ERR_NOMEM. */
int sim_pkt_new(sim_net *net, sim_pkt **out, const void *data, size_t len);
/* Return an unsent packet to the pool. NULL: no-op. */
void sim_pkt_free(sim_net *net, sim_pkt *p);
/* Send p from host `from` (the net takes ownership, whatever the result). p->src should be
 * from's address; routing uses the host, not p->src. MESH_OK (even if later lost),
 * MESH_ERR_INVAL (not IPv4). */
int sim_net_send(sim_net *net, sim_host *from, sim_pkt *p);

/* A transport receives packets that reached a host (p borrowed for the call; the net frees
 * it afterwards). One handler per protocol per net. */
typedef void (*sim_deliver_fn)(void *ctx, sim_host *h, const sim_pkt *p);
int sim_net_set_transport(sim_net *net, uint8_t proto, sim_deliver_fn fn, void *ctx);

/* ---- middleboxes ----------------------------------------------------------------------- */

typedef struct sim_mbox_ops {
    /* Called for every packet crossing this point. p may be rewritten in place. Return a
     * verdict; for SIM_DELAY set *delay (ns). May call sim_mbox_inject() (also for other
     * flows), sim_pkt_set_payload(p), and schedule events; must not free p. */
    int (*on_packet)(void *obj, sim_mbox *mb, sim_pkt *p, int dir, mesh_time *delay);
} sim_mbox_ops;

/* Attach a middlebox at a host (between the host and its access link) or at a LAN's gateway
 * (between the LAN and its site link). ops is borrowed (keep it alive, e.g. static); obj is
 * the caller's. *out (may be NULL) names the attachment for sim_mbox_inject().
 * MESH_OK, MESH_ERR_INVAL, MESH_ERR_LIMIT (SIM_MBOX_MAX_PER_POINT), MESH_ERR_NOMEM. */
int sim_net_attach_host_mbox(sim_net *net, sim_host *h, const sim_mbox_ops *ops, void *obj,
                             sim_mbox **out);
int sim_net_attach_lan_mbox(sim_net *net, sim_lan *l, const sim_mbox_ops *ops, void *obj,
                            sim_mbox **out);

/* Inject p (from sim_pkt_new, fully filled in: addresses, ports, proto, flags, seq/ack)
 * at middlebox mb, travelling in direction dir from just past mb: IN towards the protected
 * hosts (the LAN's hosts, or the host), OUT towards the core. The injected packet is seen by
 * the rest of the chain in that direction but not by mb itself. Takes ownership of p.
 * Allowed from on_packet and from any event. MESH_OK or MESH_ERR_INVAL. */
int sim_mbox_inject(sim_mbox *mb, int dir, sim_pkt *p);
sim_net *sim_mbox_net(const sim_mbox *mb);

/* Counters over the whole net. */
typedef struct sim_net_stats {
    uint64_t sent, delivered;
    uint64_t no_route; /* dropped: no host/LAN owns the destination */
    uint64_t mbox_drops;
    uint64_t link_drops; /* lost or tail-dropped on links or in the core */
    uint64_t host_down;  /* dropped at a host cut off by sim_host_set_up(h, 0) */
} sim_net_stats;
sim_net_stats sim_net_get_stats(const sim_net *net);

/* IPv4 helpers, host order. */
#define SIM_IP4(a, b, c, d)                                                                        \
    (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))
static inline int sim_ip_is_multicast(uint32_t ip)
{
    return (ip >> 28) == 0xe;
}
/* ip of an IPv4 mesh_addr in host order (0 if not IPv4). */
uint32_t sim_addr_ip4(const mesh_addr *a);

#endif
