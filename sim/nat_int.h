/* nat_int.h — the NAT's internals, shared by nat.c (tables, translation of packets, life
 * cycle) and nat_portmap.c (the port-mapping services: UPnP IGD, NAT-PMP, static forwards,
 * restarts). Not a contract: sim/nat.h is. */
#ifndef SIM_NAT_INT_H
#define SIM_NAT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "sim/nat.h"

enum nat_consts {
    NAT_MIN_BUCKETS = 64,
};

/* TCP state of a mapping (bits). */
enum nat_tcp {
    TCP_ESTABLISHED = 1, /* an inbound packet passed: long idle timeout */
    TCP_FIN_OUT = 2,
    TCP_FIN_IN = 4,
    TCP_CLOSING = 8, /* RST seen, or FIN both ways: transitory timeout */
};

typedef struct hnode {
    struct hnode *next;
    uint64_t h;
} hnode;

typedef struct htab {
    hnode **b;
    size_t nb, n;
} htab;

typedef struct nat_perm nat_perm;

typedef struct nat_map {
    hnode by_int, by_ext;
    struct nat_map *prev, *next; /* all mappings, creation order */
    nat_perm *perms;
    uint8_t proto;
    uint8_t portmap;         /* port-map service or static forward: no filter, no traffic expiry */
    uint8_t forward;         /* the administrator's static forward: survives a restart */
    uint8_t tcp;             /* enum nat_tcp bits */
    uint32_t int_ip, rem_ip; /* rem_*: the remote part of the key (0 when not kept) */
    uint16_t int_port, rem_port, ext_port;
    mesh_time expires_at; /* MESH_TIME_NEVER: permanent */
} nat_map;

struct nat_perm {
    hnode by_key;
    nat_perm *next; /* on the mapping's list */
    nat_map *m;
    uint32_t ip;
    uint16_t port; /* 0 under address-dependent filtering */
    mesh_time expires_at;
};

struct sim_nat {
    sim_net *net;
    sim_lan *lan;
    sim_mbox *mb;
    sim_nat_cfg cfg;
    uint32_t pub;
    sim_rng rng;
    htab by_int, by_ext, perms;
    nat_map *head, *tail;
    size_t nexpiring; /* mappings with a finite expiry (keep the sweep going) */
    sim_event_id sweep_ev;
    mesh_time epoch_start; /* NAT-PMP's epoch: creation or the last restart */
    sim_nat_observe_fn obs_fn;
    void *obs_ud;
    uint32_t obs_mask;
    sim_nat_stats st;
};

#define CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* ---- nat.c ------------------------------------------------------------------------------- */

/* Report a decision to the observer (p and m may be NULL). */
void nat_observe(sim_nat *n, int kind, mesh_time t, const sim_pkt *p, const nat_map *m);
/* a + b, saturating at MESH_TIME_NEVER. */
mesh_time nat_sat_add(mesh_time a, mesh_time b);
/* Unlink and free a mapping with its permits (no report). */
void nat_map_remove(sim_nat *n, nat_map *m);
/* Live mappings by internal key and by (protocol, external port); a dead one found on the way
 * is reported expired and removed. */
nat_map *nat_find_int(sim_nat *n, uint8_t proto, int portmap, uint32_t ip, uint16_t port,
                      uint32_t rip, uint16_t rport, mesh_time now);
nat_map *nat_find_ext(sim_nat *n, uint8_t proto, uint16_t port, mesh_time now);
/* Keep the sweep event going while something can expire (cfg.sweep_interval). */
void nat_arm_sweep(sim_nat *n);
/* 1 when one more entry fits under max (expired entries are swept first). */
int nat_room(sim_nat *n, const uint64_t *live, uint32_t max);
/* An external port for a new mapping: want if preferred and free, else random; 0 if none. */
uint16_t nat_alloc_port(sim_nat *n, uint8_t proto, uint16_t want, int prefer, mesh_time now);
/* A new mapping with the external port ext (known free); NULL when out of memory. */
nat_map *nat_map_new(sim_nat *n, uint8_t proto, int portmap, uint32_t ip, uint16_t port,
                     uint32_t rip, uint16_t rport, uint16_t ext, mesh_time expires_at);
int nat_proto_ok(uint8_t proto);
int nat_endpoint_ok(const mesh_addr *a);

#endif
