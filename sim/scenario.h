/* scenario.h — the simulator's scenario files: YAML in, one plain C struct out.
 *
 * A scenario describes one simulated run: name, seed, duration; the network (the core's
 * latency model, the default access link, LANs with their NATs, censors and their rules);
 * node groups (count, placement, NAT, join schedule, role, mDNS, framing, TLS profile); timed
 * events (churn, partitions, link changes, a censor switched on or off); traffic patterns;
 * and `expect:` bounds over the run's summary figures. docs/scenarios.md is the reference for
 * the format, with a full example; scenarios/default.yaml is the demo.
 *
 * Loading parses with libyaml's event API into a small tree that keeps the line and column of
 * every node, then decodes the tree against a fixed schema: unknown keys, wrong types, bad
 * units, out-of-range values, missing required keys, references to unknown groups/LANs/
 * censors and duplicate names are all errors, reported as one line
 *     FILE:LINE:COL: message (hint: ...)
 * (1-based line and column). Values coming from sim_scenario_set() have no position; their
 * errors start with "--set PATH=VALUE: " instead. YAML aliases are refused (no expansion, so
 * no "billion laughs"); anchors and tags are ignored.
 *
 * Units: durations "250ms" "1.5s" "10m" "2h" "500us" "20ns" (a bare number is refused except
 * 0) are stored as integer nanoseconds (mesh_time); rates "10Mbit" "1Gbit" "500kbit" as bits
 * per second; sizes "1500B" "1KiB" "1MiB" (a bare integer is bytes) as bytes; fractions
 * "1%" or 0.01 as a double in [0, 1]. Decimal values are converted exactly: a value finer
 * than the stored unit (e.g. "0.5ns") is an error, never silently rounded.
 *
 * Ownership: the scenario owns every string and array reachable from it; they live until
 * sim_scenario_free() or the next successful sim_scenario_set() (which rebuilds the struct in
 * place: re-read pointers after it). A runner walks the public arrays directly; references
 * between items are indices into those arrays, resolved and bounds-checked by the loader.
 *
 * Bounded: the file size, the YAML node count and nesting depth, and every list have named
 * limits below (exceeding one is an error with a position). Nothing here is global; a
 * scenario is not thread-safe but different scenarios may be used from different threads.
 */
#ifndef SIM_SCENARIO_H
#define SIM_SCENARIO_H

#include <stddef.h>
#include <stdint.h>

#include "meshara/env.h"

enum sim_scn_limits {
    SIM_SCN_MAX_FILE = 1 << 20,       /* bytes of YAML in one scenario */
    SIM_SCN_MAX_YAML_NODES = 1 << 17, /* scalars + mappings + sequences in one file */
    SIM_SCN_MAX_DEPTH = 24,           /* nesting of mappings and sequences */
    SIM_SCN_MAX_NODES = 100000,       /* simulated nodes over all groups */
    SIM_SCN_MAX_GROUPS = 1024,
    SIM_SCN_MAX_LANS = 1024,
    SIM_SCN_MAX_CENSORS = 64,
    SIM_SCN_MAX_RULES = 64, /* rules in one censor (the censor model's one bit per rule) */
    SIM_SCN_MAX_EVENTS = 10000,
    SIM_SCN_MAX_TRAFFIC = 1024,
    SIM_SCN_MAX_EXPECT = 1024,
    SIM_SCN_MAX_REGIONS = 64,  /* regions of a latency matrix */
    SIM_SCN_MAX_LIST = 64,     /* items in a small list (ALPN, targets) */
    SIM_SCN_MAX_NAME = 64,     /* bytes in a group/LAN/censor/rule/summary name */
    SIM_SCN_MAX_STRING = 255,  /* bytes in any other string (SNI, ALPN...) */
    SIM_SCN_MAX_ALPN = 8,      /* protocols one group offers, h2 added for http2 included */
    SIM_SCN_MAX_SNI = 253,     /* bytes in the SNI a group sends (a DNS name) */
    SIM_SCN_MAX_SETS = 256,    /* sim_scenario_set() overrides kept */
    SIM_SCN_MAX_NAT_DEPTH = 4, /* LANs in a chain of upstreams, a group's per-node NAT included */
    SIM_SCN_ERR_MAX = 512,     /* a useful size for error buffers */
};

/* Where a value came from: origin is the file name (or "--set PATH=VALUE", with line 0). */
typedef struct sim_scn_loc {
    const char *origin;
    uint32_t line, col; /* 1-based; 0 = no position */
} sim_scn_loc;

/* ---- links ------------------------------------------------------------------------------ */

/* Which fields of a sim_scn_link the file gave (link changes touch only those). */
enum sim_scn_link_field {
    SIM_SCN_LINK_LATENCY = 1u << 0,
    SIM_SCN_LINK_JITTER = 1u << 1,
    SIM_SCN_LINK_BANDWIDTH = 1u << 2,
    SIM_SCN_LINK_LOSS = 1u << 3,
    SIM_SCN_LINK_QUEUE = 1u << 4,
};

/* A symmetric link (the same parameters up and down). Unset fields are 0 = ideal. */
typedef struct sim_scn_link {
    unsigned set;           /* enum sim_scn_link_field bits */
    mesh_time latency;      /* propagation delay, ns */
    mesh_time jitter;       /* extra delay uniform in [0, jitter], ns */
    uint64_t bandwidth_bps; /* 0 = unlimited */
    uint64_t queue_bytes;   /* tail-drop limit; 0 = the simulator's default */
    double loss;            /* [0, 1] */
} sim_scn_link;

/* ---- the core ----------------------------------------------------------------------------- */

enum sim_scn_latency_model {
    SIM_SCN_LAT_CONSTANT = 0, /* one latency between any two sites */
    SIM_SCN_LAT_UNIFORM = 1,  /* per pair of sites, drawn once from [min, max] by the seed */
    SIM_SCN_LAT_MATRIX = 2,   /* per pair of regions: matrix[from * region_count + to] */
};

typedef struct sim_scn_core {
    int model;                  /* enum sim_scn_latency_model */
    mesh_time latency;          /* CONSTANT */
    mesh_time lat_min, lat_max; /* UNIFORM */
    size_t region_count;        /* MATRIX: region names and the row-major matrix */
    const char **regions;
    const mesh_time *matrix;
    mesh_time jitter; /* extra delay per packet across the core, uniform in [0, jitter] */
    double loss;      /* probability a packet is lost crossing the core */
    sim_scn_loc loc;  /* of network.core.latency (line 0 when not given) */
} sim_scn_core;

/* ---- NATs (RFC 4787 vocabulary) ------------------------------------------------------------ */

enum sim_scn_nat_behaviour {
    SIM_SCN_NAT_ENDPOINT_INDEPENDENT = 0,
    SIM_SCN_NAT_ADDRESS_DEPENDENT = 1,
    SIM_SCN_NAT_ADDRESS_PORT_DEPENDENT = 2,
};

typedef struct sim_scn_nat {
    int present;            /* 0: no NAT (the other fields are 0) */
    int mapping, filtering; /* enum sim_scn_nat_behaviour */
    mesh_time udp_timeout;  /* idle UDP mapping lifetime; default 2 min (RFC 4787) */
    mesh_time tcp_timeout;  /* idle TCP mapping lifetime; default 2 h 4 min (RFC 5382) */
    int hairpin;            /* default 0 */
    int port_preserve;      /* 1: keep the internal port when free (default); 0: random */
    int upnp;               /* a UPnP IGD service on the gateway; default 0 */
    int natpmp;             /* a NAT-PMP service on the gateway (RFC 6886); default 0 */
} sim_scn_nat;

/* ---- LANs, groups and references --------------------------------------------------------- */

/* A name in `in_front_of:`, `partition:` or `link:` resolves to a group or a LAN (their names
 * share one namespace). */
enum sim_scn_ref_kind { SIM_SCN_REF_GROUP = 0, SIM_SCN_REF_LAN = 1 };
typedef struct sim_scn_ref {
    int kind;     /* enum sim_scn_ref_kind */
    size_t index; /* into groups[] or lans[] */
} sim_scn_ref;

#define SIM_SCN_NO_REGION ((size_t)-1)
#define SIM_SCN_INTERNET ((size_t)-1) /* a group's lan when it hangs off the core */
#define SIM_SCN_CORE ((size_t)-1)     /* a LAN's upstream when its site link reaches the core */

typedef struct sim_scn_lan {
    sim_scn_loc loc;
    const char *name;
    uint32_t hosts;    /* capacity; 0 = as many as the groups placed on it */
    uint32_t placed;   /* nodes of all groups placed on it (computed) */
    int is_private;    /* addresses exist only inside; reachable through its NAT */
    sim_scn_nat nat;   /* the gateway's NAT */
    sim_scn_link link; /* the site link to the core or upstream (unset fields: ideal) */
    size_t region;     /* into core.regions, or SIM_SCN_NO_REGION (behind an upstream: its) */
    size_t upstream;   /* into lans[] (an earlier LAN) whose gateway this LAN sits behind, or
                          SIM_SCN_CORE */
    uint32_t depth;    /* 1 on the core, the upstream's + 1 behind it (computed) */
} sim_scn_lan;

/* stun: a normal node whose host also runs a STUN server (sim/stun_host.h) */
enum sim_scn_role { SIM_SCN_ROLE_NORMAL = 0, SIM_SCN_ROLE_BOOTSTRAP = 1, SIM_SCN_ROLE_STUN = 2 };
enum sim_scn_framing { SIM_SCN_FRAMING_PLAIN = 0, SIM_SCN_FRAMING_HTTP2 = 1 };
/* = enum mesh_profile (meshara.h) */
enum sim_scn_profile { SIM_SCN_PROFILE_WEB = 0, SIM_SCN_PROFILE_SEED = 1 };

typedef struct sim_scn_group {
    sim_scn_loc loc;
    const char *name;
    uint32_t count;
    uint32_t first_node; /* global index of the group's first node (groups in file order) */
    size_t lan;          /* into lans[], or SIM_SCN_INTERNET */
    size_t region;       /* the LAN's region, the group's own on the internet, or NO_REGION */
    sim_scn_nat nat;     /* a NAT in front of each node of the group (only on a LAN): each node
                            sits alone behind it, a LAN behind the group's */
    mesh_time join_from, join_to; /* nodes join evenly spread over [from, to]; equal = at */
    int role;                     /* enum sim_scn_role */
    int mdns;                     /* default 1 on a LAN, 0 on the internet */
    int relay_service;            /* the nodes serve relay reservations and circuits */
    int profile;                  /* enum sim_scn_profile (default web) */
    int framing;                  /* enum sim_scn_framing */
    int framing_given;            /* framing: was written (plain needs profile: seed) */
    const char *tls_sni;          /* NULL: the node's default */
    /* Nodes' host names (mesh_node_cfg.host_name): a template where "{index}" stands for the
     * node's index in the group (from 0), or a list of one name per node; NULL/0: none. */
    const char *host_name;
    size_t host_name_count; /* > 0: host_names[] (count of them), not the template */
    const char **host_names;
    size_t alpn_count; /* 0: the node's default */
    const char **alpn;
    sim_scn_link link; /* access link: the file's network.access, overridden field by field */
} sim_scn_group;

/* ---- censors ----------------------------------------------------------------------------------
 */

enum sim_scn_match_field {
    SIM_SCN_MATCH_DST_IP = 1u << 0,
    SIM_SCN_MATCH_DST_PORT = 1u << 1,
    SIM_SCN_MATCH_SNI = 1u << 2,
    SIM_SCN_MATCH_ALPN = 1u << 3,
    SIM_SCN_MATCH_JA3 = 1u << 4,
    SIM_SCN_MATCH_FIRST_LEN = 1u << 5,
    SIM_SCN_MATCH_ENTROPY = 1u << 6,
};

enum sim_scn_action {
    SIM_SCN_ACT_DROP = 0,
    SIM_SCN_ACT_RST = 1,
    SIM_SCN_ACT_THROTTLE = 2,
    SIM_SCN_ACT_PROBE = 3,
};

/* A rule matches when every field named in `match` matches (AND). */
typedef struct sim_scn_rule {
    sim_scn_loc loc;
    const char *name;   /* default "rule<N>" (N from 0 in the censor) */
    unsigned match;     /* enum sim_scn_match_field bits; never 0 */
    uint32_t dst_ip;    /* host order */
    uint8_t dst_prefix; /* 0..32 */
    uint16_t port_min, port_max;
    const char *sni;  /* exact, or "*.example.org" = any name ending ".example.org" */
    const char *alpn; /* matches when any offered protocol equals it */
    const char *ja3;  /* 32 lowercase hex digits (the JA3 MD5), or a SIM_SCN_JA3_WEB* word */
    uint64_t len_min, len_max;       /* first payload length, bytes */
    double entropy_min, entropy_max; /* first payload byte entropy, bits per byte, [0, 8] */
    int action;                      /* enum sim_scn_action */
    uint64_t throttle_bps;           /* THROTTLE */
    mesh_time residual;              /* keep blocking the flagged dst ip:port this long; 0 = no */
} sim_scn_rule;

/* Words a rule's ja3 may give instead of an MD5: the web-profile node's own fingerprint,
 * computed by the runner from the node's client settings (sim_https_curl_ja3) — its
 * ClientHello with a server name (to a peer that publishes a host name) or without (to a
 * peer known by address). */
#define SIM_SCN_JA3_WEB "meshara-web"
#define SIM_SCN_JA3_WEB_IP "meshara-web-ip"

/* Background HTTPS clients a censor gets per target (docs/scenarios.md). */
enum sim_scn_bg_kind {
    SIM_SCN_BG_OPENSSL = 0, /* stock OpenSSL, SNI www.example.org */
    SIM_SCN_BG_CURL = 1,    /* curl (the web profile's client), SNI www.example.org */
    SIM_SCN_BG_CURL_IP = 2, /* curl to an address: no SNI */
    SIM_SCN_BG_KINDS = 3,
};
/* The default: one stock OpenSSL client and one curl client per target (see docs). */
#define SIM_SCN_BG_DEFAULT (1u << SIM_SCN_BG_OPENSSL | 1u << SIM_SCN_BG_CURL)

typedef struct sim_scn_censor {
    sim_scn_loc loc;
    unsigned background; /* enum sim_scn_bg_kind bits: one client of each kind per target */
    const char *name;
    size_t target_count; /* the groups and LANs it sits in front of */
    const sim_scn_ref *targets;
    size_t rule_count; /* evaluated in order; the first match acts */
    const sim_scn_rule *rules;
    int enabled; /* at the start of the run; default 1 */
} sim_scn_censor;

/* ---- timed events ------------------------------------------------------------------------------
 */

enum sim_scn_event_kind {
    SIM_SCN_EV_CHURN = 0,
    SIM_SCN_EV_PARTITION = 1,
    SIM_SCN_EV_LINK = 2,
    SIM_SCN_EV_CENSOR = 3,
};

typedef struct sim_scn_event {
    sim_scn_loc loc;
    mesh_time at;
    int kind; /* enum sim_scn_event_kind; the fields of that kind below are valid */
    /* CHURN: `fraction` of group's nodes go down, back after down_for (MESH_TIME_NEVER) */
    size_t group;
    double fraction;
    mesh_time down_for;
    /* PARTITION: targets are cut off from everything else until heal_at (MESH_TIME_NEVER) */
    size_t target_count;
    const sim_scn_ref *targets;
    mesh_time heal_at;
    /* LINK: target's links (a LAN's site link, or every access link of a group) change the
     * fields in link.set */
    sim_scn_ref target;
    sim_scn_link link;
    /* CENSOR: censors[censor] switched on (enabled = 1) or off */
    size_t censor;
    int enabled;
} sim_scn_event;

/* ---- traffic -----------------------------------------------------------------------------------
 */

enum sim_scn_size_dist {
    SIM_SCN_SIZE_FIXED = 0,       /* min (== max) */
    SIM_SCN_SIZE_UNIFORM = 1,     /* uniform in [min, max] */
    SIM_SCN_SIZE_EXPONENTIAL = 2, /* mean; capped at max (0 = no cap) */
    SIM_SCN_SIZE_PARETO = 3,      /* mean and shape (> 1); capped at max (0 = no cap) */
};

typedef struct sim_scn_size {
    int dist; /* enum sim_scn_size_dist */
    uint64_t min, max, mean;
    double shape;
} sim_scn_size;

enum sim_scn_arrivals { SIM_SCN_ARRIVALS_PERIODIC = 0, SIM_SCN_ARRIVALS_POISSON = 1 };

#define SIM_SCN_TO_RANDOM ((size_t)-1) /* traffic to any node, chosen per message */

typedef struct sim_scn_traffic {
    sim_scn_loc loc;
    const char *name; /* default "traffic<N>" */
    size_t from;      /* group index: every node of it sends */
    size_t to;        /* group index, or SIM_SCN_TO_RANDOM */
    sim_scn_size size;
    mesh_time interval;    /* per sending node: mean time between messages */
    int arrivals;          /* enum sim_scn_arrivals */
    mesh_time start, stop; /* default 0 and the run's duration */
} sim_scn_traffic;

/* ---- expectations -------------------------------------------------------------------------------
 */

enum sim_scn_op { SIM_SCN_OP_LE = 0, SIM_SCN_OP_GE = 1, SIM_SCN_OP_EQ = 2 };

typedef struct sim_scn_expect {
    sim_scn_loc loc;
    const char *summary; /* a name in the results' summary table */
    int op;              /* enum sim_scn_op */
    double value;
} sim_scn_expect;

/* ---- the scenario
 * -------------------------------------------------------------------------------- */

typedef struct sim_scenario_priv sim_scenario_priv;

typedef struct sim_scenario {
    const char *name;
    uint64_t seed;      /* 0 .. INT64_MAX (it is stored in SQLite) */
    mesh_time duration; /* > 0 */
    sim_scn_core core;
    sim_scn_link access; /* default access link of every host */
    size_t lan_count;
    const sim_scn_lan *lans;
    size_t group_count;
    const sim_scn_group *groups;
    uint32_t node_count; /* sum of the groups' counts */
    size_t censor_count;
    const sim_scn_censor *censors;
    size_t event_count; /* in file order (not sorted by time) */
    const sim_scn_event *events;
    size_t traffic_count;
    const sim_scn_traffic *traffic;
    size_t expect_count;
    const sim_scn_expect *expects;
    const char *file; /* the origin given at load (file path) */
    char sha256[65];  /* lowercase hex SHA-256 of the file's bytes (not of the overrides) */
    sim_scenario_priv *priv;
} sim_scenario;

/* Load and check the scenario in the file at path (see sim_scenario_load_mem).
 * MESH_OK; MESH_ERR_IO (cannot open or read: err says why); MESH_ERR_TOO_BIG (larger than
 * SIM_SCN_MAX_FILE); MESH_ERR_MALFORMED (not a valid scenario: err has file:line:col);
 * MESH_ERR_LIMIT (a named limit was exceeded: err has the position); MESH_ERR_NOMEM;
 * MESH_ERR_INVAL (NULL argument). *out is untouched on failure. */
int sim_scenario_load(sim_scenario **out, const char *path, char *err, size_t errlen);

/* Load and check a scenario from len bytes (copied). origin names it in errors (copied;
 * e.g. the file name). err (may be NULL) receives one NUL-terminated error line, cut to
 * errlen. Same returns as sim_scenario_load, without MESH_ERR_IO. */
int sim_scenario_load_mem(sim_scenario **out, const char *origin, const void *data, size_t len,
                          char *err, size_t errlen);

/* Free the scenario and everything it owns. NULL: no-op. */
void sim_scenario_free(sim_scenario *s);

/* Override one value, as `meshara-sim --set path=value` does: path is dotted map keys, with
 * list elements named by their `name:` or by index ("network.core.latency",
 * "groups.clients.count", "events.0.at"); value is YAML (a scalar such as "80ms", or a flow
 * collection such as "[10ms, 90ms]"). Missing intermediate mappings are created. The whole
 * scenario is then decoded and checked again, exactly like the file, with errors naming
 * "--set path=value". On success the struct is rebuilt in place (previous pointers into it are
 * invalid) and the override is remembered (sim_scenario_params_json); on failure the scenario
 * is unchanged. Setting the same path again replaces the earlier override.
 * MESH_OK; MESH_ERR_MALFORMED; MESH_ERR_LIMIT (SIM_SCN_MAX_SETS overrides, or a limit hit by
 * the new value); MESH_ERR_NOMEM; MESH_ERR_INVAL (NULL or empty path). */
int sim_scenario_set(sim_scenario *s, const char *path, const char *value, char *err,
                     size_t errlen);
/* The same with "path=value" in one string (split at the first '='); MESH_ERR_MALFORMED when
 * there is no '=' or the path is empty. */
int sim_scenario_set_arg(sim_scenario *s, const char *path_eq_value, char *err, size_t errlen);

/* Semantic validation of the whole struct (cross-field rules: times within the duration,
 * ranges ordered, NATs only on private LANs, LAN capacities, regions given exactly when the
 * core uses a latency matrix, node and list limits, reference indices in bounds). Load and
 * set call it; call it again after editing a struct by hand.
 * MESH_OK; MESH_ERR_MALFORMED or MESH_ERR_LIMIT with the element's position in err. */
int sim_scenario_check(const sim_scenario *s, char *err, size_t errlen);

/* The overrides applied so far as a JSON object {"path":"value",...} in the order first set
 * (the `parameters` column of the results' runs row). Valid until the next set or free;
 * "{}" when none. */
const char *sim_scenario_params_json(const sim_scenario *s);

/* Lookups by name: index, or (size_t)-1 when absent. */
size_t sim_scenario_group(const sim_scenario *s, const char *name);
size_t sim_scenario_lan(const sim_scenario *s, const char *name);
size_t sim_scenario_censor(const sim_scenario *s, const char *name);
/* The group of global node index `node` (< node_count), by binary search; (size_t)-1 when
 * out of range. */
size_t sim_scenario_node_group(const sim_scenario *s, uint32_t node);
/* The name a reference resolves to. */
const char *sim_scenario_ref_name(const sim_scenario *s, sim_scn_ref ref);

/* Errors in the loader's format, for code that validates a scenario further (the runner):
 * write "ORIGIN:LINE:COL: message (hint: HINT)" into err (cut to errlen; err may be NULL) and
 * return code. Without a position (line 0) the prefix is "ORIGIN: "; hint may be NULL. */
__attribute__((format(printf, 6, 7))) int sim_scn_error(char *err, size_t errlen, int code,
                                                        const sim_scn_loc *loc, const char *hint,
                                                        const char *fmt, ...);
/* The candidate nearest to word (edit distance) when it is close enough to be a likely typo,
 * else NULL: for "did you mean" hints. */
const char *sim_scn_nearest(const char *word, const char *const *cands, size_t n);

/* 1 when `value` satisfies the expectation, 0 when not (NaN never does). */
int sim_scn_expect_holds(const sim_scn_expect *e, double value);
/* "<=", ">=" or "==". */
const char *sim_scn_op_name(int op);
/* Names as written in files: "endpoint-independent"..., "drop"..., "churn"... */
const char *sim_scn_nat_behaviour_name(int b);
const char *sim_scn_action_name(int action);
const char *sim_scn_event_kind_name(int kind);

/* Node k of group g's host name into buf (cap bytes): "" when the group gives none. Returns
 * MESH_OK or MESH_ERR_TOO_BIG (the template's expansion does not fit cap). */
int sim_scn_group_host_name(const sim_scn_group *g, uint32_t k, char *buf, size_t cap);

#endif
