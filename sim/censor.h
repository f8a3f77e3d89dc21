/* censor.h — a censoring DPI middlebox for the simulator: ordered rules over what a box on
 * the path sees, per-flow state, and drop / RST / throttle / residual-blocking actions.
 *
 * What it sees. The censor is a sim_net middlebox (net.h) attached at a host or a LAN
 * gateway; it reads every packet crossing that point with its real payload bytes. It keeps
 * state per flow (TCP or UDP 5-tuple), as the DPI boxes measured by Geneva do:
 *  - A TCP flow is tracked from its SYN; segments of a flow whose SYN it did not see (the
 *    censor switched on mid-connection) pass untouched. The client is the SYN's sender. A UDP
 *    flow starts with its first datagram; its sender is the client.
 *  - The client's first bytes are reassembled from segments by sequence number (gaps and
 *    out-of-order segments are placed; at most SIM_CH_MAX_HELLO bytes are kept) and parsed as
 *    a TLS ClientHello once (MESH_ERR_TRUNCATED = wait for more). The buffer is freed as soon
 *    as no rule needs it any more.
 *  - A RST or FIN on a flow still being inspected puts it into re-sync: the reassembly is
 *    dropped and restarts at the client's next data segment (the GFW's documented
 *    behaviour, which Geneva's strategies exploit). A new SYN on a flow that saw RST/FIN
 *    starts a new flow.
 *  - Flows idle for flow_idle are forgotten; beyond max_flows new flows are not tracked
 *    (they pass, counted in stats.untracked: a loaded DPI box fails open).
 *
 * Rules. A rule is a conjunction of match conditions (zero/NULL fields match anything) and an
 * action. Conditions fall into three stages, cheapest first:
 *    SYN      protocol, destination address prefix, destination port range;
 *    PAYLOAD  length and byte entropy of the client's first data segment (TCP) or first
 *             datagram (UDP) — the "fully encrypted traffic" detector;
 *    HELLO    SNI (exact or domain suffix, case-insensitive), ALPN (any offered protocol
 *             equals), JA3 md5 — TCP only; a flow whose first bytes are not a ClientHello
 *             never matches these.
 * At each stage the rules still possible for the flow are checked in list order; a rule
 * whose conditions are all known decides, and the first such rule wins. So an IP/port rule
 * decides at the SYN even when an SNI rule precedes it in the list (cheap checks first), and
 * a flow for which no rule remains possible stops being inspected at once.
 *
 * Actions (from the decision on, for every packet of the flow in both directions):
 *    DROP      packets vanish (a SYN-time drop makes the connect time out);
 *    RST       a RST|ACK is injected to the triggering packet's sender and, once the server
 *              has answered, one to its receiver, with the seq/ack numbers each expects; the
 *              triggering packet and later ones are dropped (UDP: like DROP);
 *    THROTTLE  packets are delayed by a token bucket per direction on virtual time (rate in
 *              bits/s of wire bytes, burst in bytes); a packet that would wait longer than
 *              throttle_queue is dropped (a policer's full queue);
 *    ALLOW     the flow is exempt from later rules (a whitelist entry).
 * Residual blocking: a rule with residual > 0 that matches flags (server address, port,
 * protocol[, client address when residual_per_client]) for that long; a new flow to a flagged
 * destination gets the rule's action at its SYN, before any rule runs.
 *
 * Reporting. Every decision (one per flow) goes to the decision callback with the rule and
 * what matched. Ground truth for true/false positives comes from the harness, not the rules:
 * an optional classifier labels each new flow (meshara / background / unknown) from its
 * addresses; the label is never seen by the rules, only counted in the per-rule and total
 * statistics (rate of a rule's false positives = matched[BACKGROUND] / flows[BACKGROUND]).
 *
 * Ownership: the censor owns its rules (strings copied) and flow state. The net keeps a
 * pointer to it once attached: free the censor only after the net's last packet (after
 * sim_net_free, or when the scheduler will not run again). Callbacks run inside packet
 * processing (scheduler events); they must not free the censor but may switch it on or off.
 */
#ifndef SIM_CENSOR_H
#define SIM_CENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "sim/clienthello.h"
#include "sim/net.h"

typedef struct sim_censor sim_censor;

enum sim_censor_limits {
    SIM_CENSOR_MAX_RULES = 64,                   /* one bit each in a flow's candidate mask */
    SIM_CENSOR_MAX_NAME = 63,                    /* bytes of a rule or censor name kept */
    SIM_CENSOR_DEFAULT_MAX_FLOWS = 1 << 20,      /* flows tracked at once */
    SIM_CENSOR_DEFAULT_FLOW_IDLE_S = 300,        /* a flow silent this long is forgotten */
    SIM_CENSOR_DEFAULT_MAX_RESIDUAL = 1 << 16,   /* flagged destinations held at once */
    SIM_CENSOR_DEFAULT_THROTTLE_QUEUE_MS = 1000, /* longest wait before a throttle drops */
    SIM_CENSOR_WHAT_MAX = 384,                   /* bytes of a decision's "what matched" text */
};

enum sim_censor_action {
    SIM_CENSOR_DROP = 0,
    SIM_CENSOR_RST = 1,
    SIM_CENSOR_THROTTLE = 2,
    SIM_CENSOR_ALLOW = 3,
};

/* Ground-truth labels of flows (from the classifier; never visible to rules). */
enum sim_censor_label {
    SIM_CENSOR_LABEL_UNKNOWN = 0,
    SIM_CENSOR_LABEL_MESHARA = 1,
    SIM_CENSOR_LABEL_BACKGROUND = 2,
    SIM_CENSOR_LABELS = 3,
};

/* How sim_censor_match.sni compares (DNS names, case-insensitive). */
enum sim_censor_sni_mode {
    SIM_CENSOR_SNI_EXACT = 0,      /* the name itself */
    SIM_CENSOR_SNI_DOMAIN = 1,     /* the name or any subdomain: "example.org", "a.example.org" */
    SIM_CENSOR_SNI_SUBDOMAINS = 2, /* subdomains only, like a "*.example.org" pattern */
};

/* Match conditions; a zero / NULL field is no condition. */
typedef struct sim_censor_match {
    uint8_t proto;             /* 0 any, SIM_PROTO_TCP or SIM_PROTO_UDP */
    uint32_t dst_ip;           /* host order; compared on the top dst_prefix bits */
    uint8_t dst_prefix;        /* 0 (any address) .. 32 */
    uint16_t dst_port_lo;      /* 0 = any port */
    uint16_t dst_port_hi;      /* inclusive; 0 = dst_port_lo only */
    uint32_t len_min, len_max; /* first payload length in bytes; len_max 0 = no condition */
    double entropy_min;        /* Shannon entropy of the first payload, bits per byte */
    double entropy_max;        /* 0 = no condition; else min <= H <= max (max <= 8) */
    const char *sni;           /* copied; NULL = no condition */
    int sni_suffix;            /* enum sim_censor_sni_mode */
    const char *alpn;          /* copied; matches when any offered protocol equals it */
    const char *ja3_md5;       /* copied; 32 hex digits, either case */
} sim_censor_match;

typedef struct sim_censor_rule {
    const char *name; /* copied (cut to SIM_CENSOR_MAX_NAME); NULL = "rule<index>" */
    sim_censor_match match;
    int action;               /* enum sim_censor_action */
    uint64_t rate_bps;        /* THROTTLE: bits per second of wire bytes (required) */
    uint32_t burst_bytes;     /* THROTTLE: bytes let through at once before shaping */
    mesh_time throttle_queue; /* THROTTLE: longest delay before drop; 0 = default */
    mesh_time residual;       /* ns a match keeps blocking new flows; 0 = none */
    int residual_per_client;  /* 1: residual entries are per (client address, server) */
} sim_censor_rule;

/* Zero fields take the defaults above. */
typedef struct sim_censor_cfg {
    const char *name; /* copied; for logs and results */
    uint32_t max_flows;
    mesh_time flow_idle;
    uint32_t max_residual;
    int start_disabled; /* 1: created switched off (scenario "censor on" later) */
} sim_censor_cfg;

/* One decision, borrowed for the duration of the callback. */
typedef struct sim_censor_decision {
    mesh_time at;             /* virtual time */
    mesh_addr client, server; /* as seen at the censor */
    uint8_t proto;
    int rule; /* index in the rule list */
    const char *rule_name;
    int action;       /* enum sim_censor_action */
    int residual;     /* 1: decided by a residual entry, not by inspection */
    int label;        /* the classifier's label, for the recorder */
    const char *what; /* what matched, e.g. "sni=meshara.node alpn=meshara/1.0" */
} sim_censor_decision;
typedef void (*sim_censor_decision_fn)(void *ud, const sim_censor_decision *d);

/* Ground truth: return an enum sim_censor_label for a new flow. Called once per tracked
 * flow, at its first packet. */
typedef int (*sim_censor_classify_fn)(void *ud, const mesh_addr *client, const mesh_addr *server,
                                      uint8_t proto);

typedef struct sim_censor_rule_stats {
    /* flows that reached this rule undecided and for which it was resolved (matched or
     * ruled out), by label: the denominator of the rule's rates */
    uint64_t evaluated[SIM_CENSOR_LABELS];
    uint64_t matched[SIM_CENSOR_LABELS];       /* flows this rule decided by inspection */
    uint64_t residual_hits[SIM_CENSOR_LABELS]; /* new flows decided by its residual entries */
} sim_censor_rule_stats;

typedef struct sim_censor_stats {
    uint64_t flows[SIM_CENSOR_LABELS];   /* new flows tracked, by label */
    uint64_t blocked[SIM_CENSOR_LABELS]; /* of those, given DROP, RST or THROTTLE */
    uint64_t untracked;                  /* new flows not tracked (max_flows reached) */
    uint64_t pkts_seen, pkts_dropped, pkts_delayed, rsts_injected;
    uint64_t hellos_parsed, hellos_failed; /* ClientHellos parsed; first bytes not a hello */
    uint64_t resyncs;                      /* RST/FIN seen on a flow under inspection */
    uint64_t residual_full;                /* residual entries not added (max_residual) */
    uint64_t live_flows, live_residual;
} sim_censor_stats;

/* A new censor with no rules. cfg NULL = defaults. MESH_OK, MESH_ERR_INVAL, MESH_ERR_NOMEM
 * (*out untouched on error). */
int sim_censor_new(sim_censor **out, const sim_censor_cfg *cfg);
/* Free rules and flow state. See the ownership note above. NULL: no-op. */
void sim_censor_free(sim_censor *c);

/* Why the rule would be refused by sim_censor_add_rule ("SNI longer than 255 bytes"...:
 * static storage), or NULL when it is valid. Lets a caller validate rules before it builds
 * anything (meshara-sim check). */
const char *sim_censor_rule_problem(const sim_censor_rule *r);

/* Append a rule (copied); *index (may be NULL) gets its position. Rules added later apply to
 * flows that start afterwards. MESH_OK; MESH_ERR_INVAL (unknown action, prefix > 32, port
 * range reversed, len or entropy range reversed or out of [0, 8], JA3 not 32 hex digits,
 * unknown sni_suffix mode, empty or overlong SNI/ALPN, THROTTLE without rate, ALLOW with
 * residual: sim_censor_rule_problem says which); MESH_ERR_LIMIT
 * (SIM_CENSOR_MAX_RULES); MESH_ERR_NOMEM. */
int sim_censor_add_rule(sim_censor *c, const sim_censor_rule *r, int *index);
size_t sim_censor_rule_count(const sim_censor *c);
/* The rule's name (borrowed, lives as long as c); NULL if index is out of range. */
const char *sim_censor_rule_name(const sim_censor *c, int index);

/* Attach at a host or a LAN gateway of net (see net.h for what each point sees). One censor
 * may sit at several points; they share flow state. MESH_OK, MESH_ERR_INVAL, MESH_ERR_LIMIT,
 * MESH_ERR_NOMEM (from net.h). */
int sim_censor_attach_host(sim_censor *c, sim_net *net, sim_host *h);
int sim_censor_attach_lan(sim_censor *c, sim_net *net, sim_lan *l);

/* Switch inspection on or off at run time. Off: every packet passes and all flow and
 * residual state is forgotten (a box taken out of the path); on: new flows are tracked from
 * their SYN. */
void sim_censor_set_enabled(sim_censor *c, int on);
int sim_censor_enabled(const sim_censor *c);

void sim_censor_set_decision_cb(sim_censor *c, sim_censor_decision_fn fn, void *ud);
void sim_censor_set_classifier(sim_censor *c, sim_censor_classify_fn fn, void *ud);

/* MESH_OK or MESH_ERR_INVAL (index out of range). */
int sim_censor_get_rule_stats(const sim_censor *c, int index, sim_censor_rule_stats *out);
sim_censor_stats sim_censor_get_stats(const sim_censor *c);

/* "drop", "rst", "throttle", "allow"; "?" for anything else. Static storage. */
const char *sim_censor_action_name(int action);

/* Shannon entropy of len bytes in bits per byte (0 for len 0). Exposed for tests and for
 * choosing thresholds. */
double sim_censor_entropy(const uint8_t *data, size_t len);

#endif
