/* runner_int.h — what the parts of the runner share (internal to sim/runner*.c; the contract
 * is runner.h). One `runner` holds a run's world: the simulated network and its middleboxes,
 * one rn_node per scenario node (its host, driver, identity and mesh_node), the messages of
 * the traffic patterns, the counters the summary reads, and the results recorder.
 *
 *   runner.c          sim_run: set-up order, the run loop, the end
 *   runner_check.c    sim_run_check: what the runner cannot build, refused before anything is
 *                     built, with the element's position
 *   runner_build.c    the world from the scenario: core latency, LANs, NATs, hosts, censors,
 *                     background HTTPS
 *   runner_node.c     node life: start, join, churn, messages, lookups, the in-memory peer
 *                     store; the only file that makes identities and the TLS library
 *   runner_events.c   traffic patterns and timed events (churn, partitions, links, censors)
 *   runner_summary.c  series samples, the summary figures, expect: bounds
 *
 * Everything runs on the simulation's one thread; nothing here is global.
 */
#ifndef SIM_RUNNER_INT_H
#define SIM_RUNNER_INT_H

#include <stdint.h>
#include <stdio.h>

#include "meshara/meshara.h"
#include "sim/censor.h"
#include "sim/driver.h"
#include "sim/https_bg.h"
#include "sim/nat.h"
#include "sim/results.h"
#include "sim/rng.h"
#include "sim/runner.h"
#include "sim/stun_host.h"

/* Address plan (host order). Public hosts and LAN gateways get addresses from their own /8s;
 * private LANs number their hosts inside 10.0.0.0/8 (LANs may reuse them: scopes differ); a
 * private LAN with NATs behind it (a carrier's) numbers its hosts and the routers behind it
 * inside 100.64.0.0/10 (RFC 6598); a node alone behind its own router is 192.168.1.2. On a
 * public LAN, routers behind it get public host addresses. */
#define RN_ADDR_PUBLIC_HOSTS SIM_IP4(11, 0, 0, 1)
#define RN_ADDR_LAN_PUBLIC SIM_IP4(12, 0, 0, 1)
#define RN_ADDR_BG_HOSTS SIM_IP4(13, 0, 0, 1)
#define RN_ADDR_PRIVATE SIM_IP4(10, 0, 0, 2)
#define RN_ADDR_CARRIER SIM_IP4(100, 64, 0, 2)
#define RN_ADDR_HOME SIM_IP4(192, 168, 1, 2)
#define RN_ADDR_STUN_ALT SIM_IP4(14, 0, 0, 1) /* the second address of each STUN host */

/* Random stream ids of the runner (sim_rng_derive(seed, id)). */
#define RN_STREAM (SIM_RNG_STREAM_USER + (0x52554eULL << 36)) /* "RUN" */
#define RN_STREAM_TRAFFIC (RN_STREAM + (1ULL << 32))
#define RN_STREAM_CHURN (RN_STREAM + (2ULL << 32))
#define RN_STREAM_LATENCY (RN_STREAM + (3ULL << 32))
#define RN_STREAM_TLS (RN_STREAM + (4ULL << 32))
#define RN_STREAM_LOOKUP (RN_STREAM + (5ULL << 32))
#define RN_STREAM_JA3 (RN_STREAM + (6ULL << 32)) /* the hellos of rn_web_ja3 */

enum rn_msg_state { RN_MSG_PENDING = 0, RN_MSG_DELIVERED = 1, RN_MSG_FAILED = 2 };

typedef struct runner runner;
typedef struct rn_node rn_node;

typedef struct rn_msg {
    uint32_t src, dst;
    uint64_t size;
    mesh_time sent;
    uint8_t state;
    uint8_t unreachable; /* when sent, the receiver was down or a partition cut it off */
} rn_msg;

/* A node's peer store, in memory: the signed records it saved, so a node back from churn
 * rejoins through them (as a real node does through its SQLite store). */
typedef struct rn_store_rec {
    uint8_t id[MESH_NODE_ID_BYTES];
    uint64_t seq;
    uint8_t *bytes;
    size_t len;
} rn_store_rec;

/* An unordered pair of nodes with traffic: reach_ratio and direct_ratio (docs/results.md). */
typedef struct rn_pair {
    uint32_t a, b;            /* a < b */
    uint8_t reached, relayed; /* a message arrived; the last one came over a relayed session */
} rn_pair;

struct rn_node {
    runner *r;
    uint32_t idx;
    size_t group;
    sim_host *host;
    sim_lan *lan;           /* the LAN the host sits on (its own router's for a group with
                               nat:), or NULL (on the core) */
    sim_nat *own_nat;       /* the router in front of it alone (its group's nat:), or NULL */
    sim_nat *nat;           /* the NAT nearest to it, if any (set at join) */
    mesh_addr public_addr;  /* how nodes outside its LAN reach it (if at all) */
    mesh_addr outside;      /* its address as the world outside its LANs sees it */
    int public_host;        /* the host's own address is public: reachable without a NAT */
    int reachable;          /* public_host, or the node says peers confirmed an address */
    int pm_state, pm_error; /* the node's port mapping as last recorded (events) */
    sim_driver *drv;
    mesh_env env;
    mesh_identity *id;
    mesh_node *node; /* NULL before its join and while down */
    sim_link_cfg link;
    int joined, online, lookup_armed;
    int lookup_pending; /* one lookup at a time: its target below */
    uint32_t lookup_target;
    mesh_time started_at; /* when its current mesh_node started */
    rn_store_rec store[SIM_RUNNER_STORE_MAX];
    size_t nstore;
};

typedef struct rn_traffic_src {
    runner *r;
    size_t pattern;
    uint32_t node;
    sim_rng rng;
} rn_traffic_src;

typedef struct rn_partition {
    runner *r;
    int active;
    uint32_t *ips; /* sorted member addresses */
    size_t nips;
} rn_partition;

/* A send's completion context. Linked into the runner's list so the ones a node never
 * completes (mesh_node_free makes no callbacks: churn, the end of the run) are freed too. */
typedef struct rn_send {
    runner *r;
    uint64_t id;
    struct rn_send *prev, *next;
} rn_send;

struct runner {
    const sim_scenario *scn;
    const sim_run_opts *opts;
    sim_world *w;
    sim_sched *sched;
    sim_net *net;
    sim_lan **lans;
    sim_link_cfg *lan_links;
    sim_nat **lan_nats;   /* per scenario LAN (borrowed from nats) */
    uint32_t *lan_next;   /* per scenario LAN: inside addresses handed out */
    uint8_t *lan_carrier; /* per scenario LAN: NATs (LANs, per-node routers) sit behind it */
    sim_nat **nats;       /* every NAT of the run, owned: the LANs', then the per-node ones */
    size_t nnats;
    size_t *lan_region_of_id; /* sim LAN id -> region (for the matrix model) */
    size_t nlan_ids;
    size_t *host_region_of_id;
    size_t nhost_ids;
    sim_censor **censors;
    rn_partition **parts;
    size_t nparts;
    rn_node *nodes;
    /* background HTTPS: one server on the core, one client behind each censor target */
    sim_host *bg_server_host;
    sim_driver *bg_server_drv;
    sim_https_server *bg_server;
    sim_driver **bg_drvs;
    sim_https_client **bg_clients;
    size_t nbg;
    rn_traffic_src *srcs;
    size_t nsrcs;
    rn_msg *msgs;
    size_t nmsgs, capmsgs;
    mesh_time *lat; /* delivery latencies */
    size_t nlat;
    uint8_t *zeros; /* payload source for messages */
    sim_results *rec;
    /* one OpenSSL library context for every node of the world (tls.h: a process holds only
     * about 500), whose randomness is the world's own stream */
    sim_rng tls_rng;
    /* The web-profile node's JA3 MD5s with a server name [0] and without [1], for rules
     * that name them (SIM_SCN_JA3_WEB*); "" until computed. */
    char web_ja3[2][SIM_HTTPS_JA3_LEN + 1];
    mesh_env tls_env;
    mesh_tls_lib *tls_lib;
    uint32_t next_public, next_lan_public;
    /* counters */
    uint64_t msgs_failed, msgs_delivered, bytes_delivered, acks_lost;
    uint64_t node_downs, joins_ok, joins_failed;
    uint64_t lookups, lookups_ok;
    rn_send *sends;       /* sends not completed yet */
    mesh_time *join_took; /* start to on_joined(MESH_OK), per successful join */
    size_t njoin;
    unsigned *hops; /* of successful lookups */
    size_t nhops, caphops;
    mesh_node_stats gone; /* stats of node instances freed by churn, summed */
    uint32_t *boot;       /* bootstrap-role nodes */
    size_t nboot;
    uint32_t *relays; /* nodes of relay_service groups: every other node may use them */
    size_t nrelays;
    uint64_t paths[MESH_NODE_PATH_TURN + 1]; /* sessions established, by path */
    rn_pair *pairs;                          /* node pairs that sent each other messages */
    size_t npairs, cappairs;
    sim_stun_host **stuns; /* one per stun-role node, on its host and a partner host */
    size_t nstun;
    uint32_t next_stun_alt;
    int fatal;       /* a setup step failed inside an event: stop */
    int interrupted; /* opts->stop was set: the run ended early */
    char *err;
    size_t errlen;
};

/* ---- runner.c ----------------------------------------------------------------------------- */

/* One events row (nothing without a recorder); a failure code goes first in the detail as
 * reason=MESH_ERR_... */
void rn_event(runner *r, int64_t node, const char *kind, int64_t peer, int code,
              const char *detail);

/* ---- runner_build.c ------------------------------------------------------------------------ */

/* In this order (NATs last, so a censor on a LAN sees its hosts' own addresses). Each returns
 * MESH_OK or an error with r->err set. */
int rn_build_lans(runner *r);
int rn_build_nodes(runner *r);
int rn_build_censors(runner *r);
int rn_build_background(runner *r);
int rn_build_lan_nats(runner *r);
/* The NATs between a node of group g and the core (nearest first), as sim_nat_pair_paths
 * takes them: a pure function of the scenario. */
void rn_group_nat_chain(const sim_scenario *s, size_t g, sim_nat_chain *out);
/* The core's latency between two attachment points (sim_core_latency_fn). */
mesh_time rn_core_latency(void *ud, uint64_t from, uint64_t to);
/* Apply the fields a link change names onto a current configuration. */
void rn_link_merge(sim_link_cfg *c, const sim_scn_link *l);
/* A scenario rule as the censor model's (strings borrowed from sr); MESH_ERR_UNSUPPORTED for
 * an action the model does not have (probe). */
/* web_ja3: the node's JA3s (runner.web_ja3) for rules that name them; NULL (check only): a
 * placeholder MD5. */
int rn_censor_rule_of(const sim_scn_rule *sr, const char (*web_ja3)[SIM_HTTPS_JA3_LEN + 1],
                      sim_censor_rule *out);

/* ---- runner_node.c ------------------------------------------------------------------------- */

/* The world's one OpenSSL library context, its randomness the world's own stream. */
int rn_tls_new(runner *r);
void rn_tls_free(runner *r);
/* n's identity from its host's seeded randomness (n->env set). */
int rn_node_identity_new(rn_node *n);
/* n's node id in hex (2 * MESH_NODE_ID_BYTES + 1 bytes). */
const char *rn_node_id_hex(const rn_node *n, char *buf);
/* Free what rn_build_nodes and the node's life gave n (after rn_node_stop). */
void rn_node_release(rn_node *n);
/* Sim events (sim_event_fn: ctx = runner, arg = rn_node). */
void rn_node_join_ev(void *ctx, void *arg);
void rn_node_up_ev(void *ctx, void *arg);
void rn_node_down(runner *r, rn_node *n);
/* Free n's mesh_node (its process ends), its stats added to the run's totals. */
void rn_node_stop(runner *r, rn_node *n);
/* One message of size bytes from n to node dst, recorded as sent (and failed at once when it
 * cannot be handed to the node). */
void rn_node_send(runner *r, rn_node *n, uint32_t dst, uint64_t size);
/* Add a node instance's stats to a total. */
void rn_stats_add(mesh_node_stats *t, const mesh_node_stats *s);

/* ---- runner_events.c ----------------------------------------------------------------------- */

/* Sim events: arg is the rn_traffic_src, or the event's index (as uintptr_t). */
void rn_traffic_fire(void *ctx, void *arg);
void rn_event_fire(void *ctx, void *arg);
/* 1 if an active partition has one of nodes a and b inside and the other outside. */
int rn_cut_off(const runner *r, uint32_t a, uint32_t b);

/* ---- runner_summary.c ---------------------------------------------------------------------- */

typedef struct rn_summary_row {
    const char *name;
    double value;
} rn_summary_row;

enum { RN_SUMMARY_MAX = 64 };

/* Sim event: sample the network-wide series now and every SIM_RUNNER_SAMPLE_S. */
void rn_sample_ev(void *ctx, void *arg);
/* The run's summary figures, in a fixed order (at most RN_SUMMARY_MAX); returns how many. */
size_t rn_make_summary(runner *r, rn_summary_row *rows);
/* 1 when the run records a summary figure of that name. */
int rn_summary_known(const char *name);
/* The name nearest to `name` when it looks like a typo of one, else NULL. */
const char *rn_summary_nearest(const char *name);
/* Print each expect: bound's outcome to out; returns how many were not met. */
size_t rn_check_expectations(const runner *r, const rn_summary_row *rows, size_t nrows, FILE *out);

#endif
