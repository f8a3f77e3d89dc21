/* node_opts.h — meshara-node's command line: which command, its options, each checked and
 * bounded; the --help text; the exit codes. Parsing prints its own messages ("meshara-node:
 * WHAT\nTry 'meshara-node --help'.") and touches nothing but the node_opts it fills: the key
 * file is read later, by the command (meshara-node.c). */
#ifndef MESHARA_NODE_OPTS_H
#define MESHARA_NODE_OPTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "meshara/meshara.h"

/* Exit codes (also in the --help text). */
enum node_exit {
    NODE_EXIT_OK = 0,
    NODE_EXIT_FAIL = 1,  /* runtime failure: cannot listen, join or deliver */
    NODE_EXIT_USAGE = 2, /* bad command line */
    NODE_EXIT_KEY = 3,   /* key or certificate file: exists (keygen), missing, bad
                          * permissions, corrupt */
};

enum node_opt_limits {
    NODE_MAX_PEERS = MESH_NODE_MAX_MANUAL,        /* --peer options */
    NODE_MAX_BOOTSTRAP = MESH_NODE_MAX_BOOTSTRAP, /* --bootstrap options */
    NODE_MAX_ADVERTISE = MESH_NODE_MAX_ADVERTISED,
    NODE_MAX_POOL = MESH_NODE_MAX_POOL,
    NODE_DEFAULT_RECONNECT_MIN_MS = 500,      /* first probe after a manual peer went down */
    NODE_DEFAULT_RECONNECT_MAX_MS = 30000,    /* backoff doubles up to this */
    NODE_MAX_MS = 24 * 3600 * 1000,           /* largest time option */
    NODE_DEFAULT_SEND_TIMEOUT_MS = 10000,     /* send: join + lookup + connect + auth + ack */
    NODE_MAX_MESSAGE = MESH_NODE_MAX_MESSAGE, /* --message bytes */
    NODE_ALPN_BUF = MESH_NODE_MAX_ALPN * (MESH_NODE_MAX_ALPN_NAME + 1),
    NODE_MAX_TURN_USER = 513, /* STUN's USERNAME (RFC 8489 §14.3) */
    NODE_MAX_TURN_PASS = 763, /* what a long-term key takes (core/stun.h MESH_STUN_MAX_TEXT) */
};

enum node_cmd { CMD_KEYGEN = 1, CMD_PUBKEY = 2, CMD_RUN = 4, CMD_SEND = 8 };

typedef struct peer_opt {
    mesh_addr addr;
    uint8_t key[MESH_NODE_KEY_BYTES];
    int has_addr;                           /* --to may name a key alone */
    char host_name[MESH_HOST_NAME_MAX + 1]; /* "HOST=" prefix ("" = none): SNI on first contact */
} peer_opt;

/* Every string points into argv (or alpn_buf): valid as long as argv. */
typedef struct node_opts {
    int cmd; /* enum node_cmd */
    const char *cmd_name;
    const char *key_path;
    mesh_addr listen;
    int has_listen;
    peer_opt peers[NODE_MAX_PEERS];
    size_t npeers;
    peer_opt boot[NODE_MAX_BOOTSTRAP];
    size_t nboot;
    mesh_addr advertise[NODE_MAX_ADVERTISE];
    size_t nadvertise;
    int mdns;
    int no_port_mapping;                   /* run: do not attach the port-mapping adapter */
    int relay_service;                     /* run: serve relay reservations and circuits */
    peer_opt relays[MESH_NODE_MAX_RELAYS]; /* run: relays we may reserve on */
    size_t nrelays;
    const char *peers_db;
    int profile; /* enum mesh_profile */
    int http2;
    const char *sni;
    const char *host_name;          /* --host-name: ours, published in our record */
    const char *tls_cert, *tls_key; /* web: the operator's chain and key (both or neither) */
    int cert_type;                  /* web: enum mesh_cert_type of a certificate made here */
    int has_cert_type;
    mesh_addr web_upstream, web_upstream_h2; /* run, web: the decoy's (family NONE: none) */
    const char *web_root; /* run, web: the static site served as both upstreams, or NULL */
    char alpn_buf[NODE_ALPN_BUF];
    const char *alpn[MESH_NODE_MAX_ALPN + 1]; /* NULL-terminated; alpn[0] NULL = default */
    uint64_t max_handshakes, pool_min, pool_max, maintain_ms;
    uint64_t connect_ms, handshake_ms, auth_ms, heartbeat_ms;
    uint64_t reconnect_min_ms, reconnect_max_ms;
    int log_level;
    peer_opt to; /* send */
    int has_to;
    const char *message;
    int ping;
    uint64_t timeout_ms;
    uint64_t linger_ms; /* send: serve on this long after the answer (0: exit at once) */
    mesh_addr turn;     /* run: --turn, --turn-user, --turn-pass-file (all or none) */
    int has_turn;
    const char *turn_user, *turn_pass_file;
    mesh_addr stun[MESH_NODE_MAX_STUN]; /* run: --stun, STUN servers asked for our address */
    size_t nstun;
} node_opts;

/* Fill o from argv. Returns -1 to go on, or the exit code to leave with: NODE_EXIT_OK (help
 * printed on stdout) or NODE_EXIT_USAGE (the problem printed on stderr). */
int node_opts_parse(node_opts *o, int argc, char **argv);

/* The --help text. */
void node_usage(FILE *f);

#endif
