/* censor_int.h — the DPI middlebox's internals, shared by censor.c (rules, the flow and
 * residual tables, life cycle, switches) and censor_flow.c (the per-packet path: flows, stages,
 * decisions, actions). Not a contract: sim/censor.h is. */
#ifndef SIM_CENSOR_INT_H
#define SIM_CENSOR_INT_H

#include <stdint.h>

#include "sim/censor.h"
#include "sim/clienthello.h"

enum stage { STAGE_SYN = 1, STAGE_PAYLOAD = 2, STAGE_HELLO = 3 };
_Static_assert(SIM_CENSOR_MAX_RULES <= 64, "a flow's candidate rules are one uint64_t");
enum flow_state { F_INSPECT = 0, F_PASSED = 1, F_BLOCKED = 2 };
enum { HT_INITIAL = 64, TCP_DIR_C2S = 0, TCP_DIR_S2C = 1 };

/* A small chained hash table of nodes keyed by two 64-bit words (flows, residual entries). */
typedef struct hnode {
    struct hnode *next;
    uint64_t k0, k1;
} hnode;

typedef struct htab {
    hnode **b;
    size_t cap, n; /* cap: power of two (0 before the first insert) */
} htab;

typedef struct rule {
    sim_censor_rule r; /* strings point at the copies below */
    char name[SIM_CENSOR_MAX_NAME + 1];
    char *sni, *alpn;
    char ja3[33];
    int need; /* enum stage: the last stage whose facts this rule needs */
    sim_censor_rule_stats st;
} rule;

/* The client's first bytes, placed by sequence number; `have` = contiguous prefix. */
typedef struct reasm {
    uint32_t have;
    uint8_t map[SIM_CH_MAX_HELLO / 8];
    uint8_t buf[SIM_CH_MAX_HELLO];
} reasm;

typedef struct flow {
    hnode h;                  /* k0 = cli_ip:srv_ip, k1 = cli_port:srv_port:proto */
    struct flow *prev, *next; /* LRU, oldest first */
    uint32_t cli_ip, srv_ip;
    uint16_t cli_port, srv_port;
    uint8_t proto, state, label;
    uint8_t payload_done, resync, closed, srv_seen, rst_pending;
    int rule;
    uint64_t cand;
    uint32_t base;      /* client sequence number of stream byte 0 */
    uint32_t first_len; /* the first payload's length and entropy (PAYLOAD stage) */
    double first_h;
    mesh_time last;
    mesh_time tat[2]; /* throttle: end of the last scheduled packet, per direction */
    reasm *ra;
} flow;

typedef struct resid {
    hnode h; /* k0 = cli_ip (0 = any client):srv_ip, k1 = srv_port:proto */
    int rule;
    mesh_time until;
} resid;

struct sim_censor {
    char name[SIM_CENSOR_MAX_NAME + 1];
    uint32_t max_flows, max_residual;
    mesh_time flow_idle;
    int enabled;
    int busy;         /* inside on_packet: a callback switching us off must not free flows */
    int forget_later; /* switched off during on_packet: forget everything when it returns */
    rule *rules;
    size_t nrules;
    uint64_t hello_mask;   /* rules that need the ClientHello */
    uint64_t entropy_mask; /* rules with an entropy condition */
    htab flows, resid;
    flow *lru_head, *lru_tail;
    sim_censor_decision_fn decide_fn;
    void *decide_ud;
    sim_censor_classify_fn classify_fn;
    void *classify_ud;
    sim_censor_stats st;
    sim_client_hello ch; /* scratch: too big for the stack of a packet handler */
    char what[SIM_CENSOR_WHAT_MAX];
};

/* ---- censor.c ------------------------------------------------------------------------------- */

hnode *censor_ht_find(const htab *t, uint64_t k0, uint64_t k1);
/* MESH_OK; MESH_ERR_NOMEM only when the table has no buckets yet (a failed grow keeps it
 * usable with longer chains). */
int censor_ht_insert(htab *t, hnode *n);
void censor_ht_remove(htab *t, hnode *n);
/* The netmask of a prefix length (0..32), host order. */
uint32_t censor_prefix_mask(uint8_t prefix);
/* Out of the table and the LRU list, and freed. */
void censor_flow_free(sim_censor *c, flow *f);
/* Every flow and residual entry freed (the censor switched off). */
void censor_forget_all(sim_censor *c);

#endif
