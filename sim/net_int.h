/* net_int.h — the network model's internals, shared by net.c (topology: hosts, LANs,
 * links, middlebox attachment, packets) and net_route.c (a packet's walk along its path).
 * Not a contract: sim/net.h is. */
#ifndef SIM_NET_INT_H
#define SIM_NET_INT_H

#include <stddef.h>
#include <stdint.h>

#include "sim/net.h"

enum net_consts {
    PKT_SLAB = 256,         /* packets allocated together */
    NET_MAX_PKTS = 1 << 24, /* live + pooled packets; beyond: MESH_ERR_NOMEM */
    ADDRMAP_MIN = 16,
};

/* Path stages (pkt->priv.hop). */
enum hop {
    HOP_SRC_MB_OUT, /* middleboxes of the source host, outwards */
    HOP_SRC_UP,     /* source host's up link */
    HOP_AT_LAN,     /* arrived at priv.lan from below: the source host's LAN, or the
                       upstream of a LAN the packet climbed out of (NULL: the core) */
    HOP_LAN_MB_OUT, /* source LAN's gateway middleboxes, outwards */
    HOP_LAN_UP,     /* source LAN's site link up (to the core, or its upstream LAN) */
    HOP_CORE,       /* core routing and delay */
    HOP_LAN_DOWN,   /* destination LAN's site link down */
    HOP_LAN_MB_IN,  /* destination LAN's gateway middleboxes, inwards */
    HOP_DST_DOWN,   /* destination host's down link */
    HOP_DST_MB_IN,  /* destination host's middleboxes, inwards */
    HOP_DELIVER,
};

typedef struct link {
    sim_link_cfg cfg;
    mesh_time busy_until;   /* serialisation of queued packets ends here */
    mesh_time last_arrival; /* FIFO: no arrival before this one */
    sim_rng rng;
    sim_link_stats st;
} link;

typedef struct chain {
    sim_mbox *m[SIM_MBOX_MAX_PER_POINT];
    int n;
} chain;

struct sim_mbox {
    sim_net *net;
    const sim_mbox_ops *ops;
    void *obj;
    sim_host *host; /* attach point: a host ... */
    sim_lan *lan;   /* ... or a LAN gateway */
    int idx;
};

enum { ENT_HOST = 1, ENT_LAN = 2 };
typedef struct addr_ent {
    uint32_t ip; /* 0 = empty */
    uint32_t kind;
    void *ptr;
} addr_ent;
typedef struct addrmap {
    addr_ent *e;
    size_t cap, n;
} addrmap;

struct sim_host {
    sim_net *net;
    uint32_t id, ip;
    char *name;
    sim_lan *lan;
    link up, down;
    chain mb;
    int is_up;
    int ngroups;
    struct {
        uint32_t group, refs;
    } groups[SIM_NET_MAX_GROUPS_PER_HOST];
};

struct sim_lan {
    sim_net *net;
    uint32_t id;
    char *name;
    uint32_t public_ip;
    int is_private;
    sim_lan *upstream; /* NULL: the site link reaches the core */
    uint32_t depth;    /* 1 for a LAN on the core, upstream's + 1 behind it */
    link up, down;
    chain mb;
    addrmap hosts;
    sim_host **members;
    size_t nmembers, members_cap;
};

typedef struct slab {
    struct slab *next;
    sim_pkt p[PKT_SLAB];
} slab;

struct sim_net {
    sim_sched *sched;
    uint64_t seed;
    sim_link_cfg core;
    sim_core_latency_fn core_fn;
    void *core_ud;
    sim_rng core_rng;
    addrmap global;
    sim_host **hosts;
    size_t nhosts, hosts_cap;
    sim_lan **lans;
    size_t nlans, lans_cap;
    slab *slabs;
    size_t npkts;
    sim_pkt *free_pkts;
    uint64_t next_pkt_id;
    struct {
        sim_deliver_fn fn;
        void *ctx;
    } transport[2]; /* 0 = TCP, 1 = UDP */
    sim_net_stats st;
};

/* ---- address maps (open addressing, linear probing) ------------------------------------ */

static inline size_t sim_net_ip_hash(uint32_t ip)
{
    return (size_t)((ip * 0x9e3779b1u) ^ (ip >> 16));
}

static inline addr_ent *addrmap_find(const addrmap *m, uint32_t ip)
{
    if (m->cap == 0)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = sim_net_ip_hash(ip) & mask;; i = (i + 1) & mask) {
        if (m->e[i].ip == ip)
            return &m->e[i];
        if (m->e[i].ip == 0)
            return NULL;
    }
}

static inline int host_in_group(const sim_host *h, uint32_t group)
{
    for (int i = 0; i < h->ngroups; i++)
        if (h->groups[i].group == group)
            return 1;
    return 0;
}

#endif
