/*
 * meshara/meshara.h — the Meshara node: one identity, one listening address, a pool of
 * authenticated sessions to other nodes, a Kademlia DHT, and peer-addressed messaging.
 *
 * What a node does (docs/architecture.md has the picture):
 *  - Listens (TLS 1.3 + an exporter-bound Ed25519 hello: docs/protocol.md) and keeps a pool of
 *    sessions to other nodes: at most one usable session per peer, min/max bounds, LRU
 *    eviction that spares pinned peers and new connections.
 *  - Joins the mesh at mesh_node_start(): records remembered in its peer store first, then
 *    the configured bootstrap nodes (each key pinned) in parallel, then the manual peers; the
 *    first answer joins it, and a DHT lookup of its own id fills its neighbourhood
 *    (docs/dht.md). on_joined reports the outcome.
 *  - Exchanges signed peer records with every peer it connects to (an Announce right after
 *    the session is up; a record claiming another key than the session proved is dropped),
 *    and answers PING, GET_PEERS and FIND_NODE queries.
 *  - Publishes itself and browses on mDNS when asked to and the env offers it.
 *  - Delivers application messages to a public key: an existing session, else a DHT lookup
 *    of SHA-256(key), a connection pinned to that key, then AppData{ack_requested}; the
 *    sender learns the outcome through its completion callback.
 *
 * Callbacks. Every callback (mesh_node_cbs, send/query/lookup completions) runs from an env
 * event, never from inside a mesh_node_* call. Inside a callback the application may call any
 * mesh_node_* function except mesh_node_free() on the node making the callback. Buffers
 * passed to callbacks are borrowed for the call.
 *
 * Completion guarantee. Every mesh_node_send/query/lookup that returned MESH_OK gets exactly
 * one completion callback — delivered (MESH_OK) or a named failure — unless the node is freed
 * first: mesh_node_free() makes no callbacks at all, and operations still pending are dropped
 * silently (the caller, who freed the node, knows they were abandoned; their ud are not
 * touched again).
 *
 * Threading: a node and its env belong to one thread (the env's loop).
 *
 * This header is all a program needs to run nodes (meshara-node and the simulator's runner use
 * nothing else of the core): the node, its identity, the optional shared OpenSSL library
 * context, and hex helpers for keys. Objects are opaque; mesh_x_new(&out, ...) leaves *out
 * untouched on failure and mesh_x_free(NULL) does nothing. Who owns what is said at each
 * function. Headers under core/ are the library's internals (tests reach into them).
 */
#ifndef MESHARA_MESHARA_H
#define MESHARA_MESHARA_H

#include <stddef.h>
#include <stdint.h>

#include "meshara/env.h"
#include "meshara/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mesh_node mesh_node;
typedef struct mesh_identity mesh_identity; /* an Ed25519 key pair (below) */
typedef struct mesh_tls_lib mesh_tls_lib;   /* an OpenSSL library context (below) */

enum mesh_node_limits {
    MESH_NODE_KEY_BYTES = 32,        /* Ed25519 public key */
    MESH_NODE_ID_BYTES = 32,         /* node id = SHA-256(public key) */
    MESH_NODE_SEED_BYTES = 32,       /* Ed25519 private key (its seed) */
    MESH_NODE_KEYFILE_LINE_LEN = 84, /* "meshara-ed25519-v1 " + 64 hex + '\n' */
    MESH_NODE_KEYFILE_MAX = 256,     /* a loader reads no more: a longer key file is corrupt */
    MESH_NODE_KEY_HEX_LEN = 64,      /* hex digits of a public key (without the NUL) */
    MESH_NODE_MAX_ALPN = 8,          /* protocols in cfg.alpn */
    MESH_NODE_MAX_ALPN_NAME = 255,   /* bytes in one ALPN protocol name (RFC 7301) */
    MESH_NODE_MAX_SNI = 253,         /* bytes in cfg.sni (a DNS host name) */
    MESH_NODE_MAX_HANDSHAKES = 4096, /* largest cfg.max_handshakes */
    MESH_NODE_MAX_POOL = 1 << 16,    /* largest cfg.pool_min and cfg.pool_max */
    MESH_NODE_MAX_BOOTSTRAP = 64,
    MESH_NODE_MAX_MANUAL = 64,
    MESH_NODE_MAX_RELAYS = 4,            /* cfg.relays (= MESH_PEER_MAX_RELAYS) */
    MESH_NODE_MAX_STUN = 2,              /* cfg.stun */
    MESH_NODE_MAX_ADVERTISED = 8,        /* = MESH_PEER_MAX_ADDRS */
    MESH_NODE_MAX_MESSAGE = 1 << 20,     /* bytes in one mesh_node_send */
    MESH_NODE_MAX_QUERY_PAYLOAD = 16384, /* bytes in one query payload */
    MESH_NODE_MAX_PENDING = 65536,       /* sends + queries in flight (MESH_ERR_LIMIT) */
    MESH_NODE_DEFAULT_POOL_MIN = 8,
    MESH_NODE_DEFAULT_POOL_MAX = 64,
    MESH_NODE_DEFAULT_GRACE_MS = 10000,        /* new connections are not evicted this long */
    MESH_NODE_DEFAULT_SEND_TIMEOUT_MS = 30000, /* lookup + connect + auth + ack */
    MESH_NODE_DEFAULT_QUERY_TIMEOUT_MS = 10000,
    MESH_NODE_DEFAULT_BOOTSTRAP_TIMEOUT_MS = 15000, /* connect + auth + GET_PEERS, per node */
    MESH_NODE_DEFAULT_MAINTAIN_MS = 30000,          /* pool maintenance period (jittered ±10 %) */
};

/* How a node looks on the wire (docs/protocol.md, "TLS"). */
enum mesh_profile {
    /* The default. As a client, the ClientHello of curl 7.88 on Debian 12 (OpenSSL 3.0):
     * TLS 1.2 and 1.3 offered (only 1.3 is ever completed), ALPN h2,http/1.1, SNI only for a
     * configured host name; as a server, what nginx 1.22 answers (TLS 1.2 too, for clients
     * that are not Meshara peers), with a web server's certificate (ECDSA P-256 or RSA-2048,
     * self-signed unless the operator gives a chain) whose key is not the identity key.
     * Messages travel over HTTP/2. */
    MESH_PROFILE_WEB = 0,
    /* The original design, kept for tests and comparison: TLS 1.3 only, ALPN meshara/1.0 and
     * SNI meshara.node unless configured, a self-signed Ed25519 certificate of the identity
     * key. */
    MESH_PROFILE_SEED = 1,
};

/* The key of a web-profile certificate the node makes itself. */
enum mesh_cert_type { MESH_CERT_ECDSA_P256 = 0, MESH_CERT_RSA_2048 = 1 };

/* Unix time (seconds) a node assumes at its env's time 0 when its configuration gives none:
 * 2025-01-01T00:00:00Z. What a simulation uses, so nothing reads the real clock. */
#define MESH_NODE_DEFAULT_EPOCH INT64_C(1735689600)

#define MESH_NODE_H2_ALPN "h2" /* the ALPN name of HTTP/2 (RFC 9113): see cfg.http2 */
#define MESH_NODE_MDNS_TYPE "_meshara._tcp"
#define MESH_NODE_MDNS_PREFIX "meshara-" /* + the first 16 hex digits of the node id */
#define MESH_NODE_MDNS_TXT_KEY "pk="     /* + the 64 hex digits of the public key */

/* Where the mapping of the listening port stands (mesh_node_stats.portmap_state). */
enum mesh_node_portmap_state {
    MESH_NODE_PORTMAP_OFF = 0,        /* disabled, not offered by the env, or not mappable */
    MESH_NODE_PORTMAP_REQUESTING = 1, /* asking the gateway; no mapping yet */
    MESH_NODE_PORTMAP_MAPPED = 2,     /* mapped: portmap_external is reachable (unconfirmed) */
    MESH_NODE_PORTMAP_FAILED = 3,     /* no mapping (portmap_error says why); retried later */
};

/* The TURN allocation (cfg.turn_server), as mesh_node_stats shows it. */
enum mesh_node_turn_state {
    MESH_NODE_TURN_OFF = 0,        /* not configured */
    MESH_NODE_TURN_ALLOCATING = 1, /* asking (or waiting to ask again after a failure) */
    MESH_NODE_TURN_ALLOCATED = 2,  /* turn_relayed is advertised */
    MESH_NODE_TURN_FAILED = 3,     /* the last try failed (turn_error); retried with backoff */
};

/* What a node knows of its own reachability on one address family (docs/nat.md). */
enum mesh_node_reach_state {
    MESH_NODE_REACH_UNKNOWN = 0, /* no two peers (or STUN servers) agree yet */
    MESH_NODE_REACH_PUBLIC = 1,  /* peers see us at our own address: no NAT in between */
    MESH_NODE_REACH_MAPPED = 2,  /* behind a NAT, with a port mapping of our listening port */
    MESH_NODE_REACH_NAT = 3,     /* behind a NAT, no mapping: peers see another address */
    MESH_NODE_REACH_RELAYED = 4, /* behind a NAT, reachable through a relay */
};

/* One address family's reachability, as mesh_node_stats shows it. */
typedef struct mesh_node_reach {
    int state;          /* enum mesh_node_reach_state */
    mesh_addr external; /* PUBLIC: our address and listening port; MAPPED: the mapping;
                           NAT, RELAYED: the address the agreeing observers saw last (its
                           port is the NAT's choice for that connection), if any; else
                           family NONE */
    int observers;      /* distinct observers agreeing on external's IP (0 for MAPPED
                           without them) */
    int nat_mapping;    /* RFC 5780 behaviour learned by STUN: 0 unknown, 1 no NAT,
                           2 endpoint-independent, 3 address-dependent, 4 address-and-port-
                           dependent */
    int nat_filtering;  /* likewise (never 1) */
    uint64_t claims;    /* observed addresses taken in (peers' hellos, STUN answers) */
    uint64_t changes;   /* times state or external changed */
} mesh_node_reach;

/* Query types (= meshara.proto QueryType). */
enum mesh_query_type {
    MESH_QUERY_PING = 1,      /* payload echoed back */
    MESH_QUERY_GET_PEERS = 2, /* records the peer knows closest to our id */
    MESH_QUERY_FIND_NODE = 3, /* payload: a 32-byte target id; the peer's k closest to it */
    MESH_QUERY_DIAL_BACK = 4, /* payload: "ip:port" of ours; the peer opens a session there
                                 and answers MESH_OK if our key answered (the node's own
                                 use: docs/nat.md; not through mesh_node_query) */
};

/* ---- identity ------------------------------------------------------------------------- */

/* A node's identity: an Ed25519 key pair; node id = SHA-256(public key), the DHT's id. Keys
 * are generated from env randomness (a simulated identity is reproducible from the seed) and
 * signing is deterministic (RFC 8032). The object owns its key material and wipes it when
 * freed. A node borrows its identity (mesh_node_cfg.identity): free the identity after every
 * node using it. Key files are read and written by the program, never by the core (which
 * touches no file); mesh_identity_keyfile_decode() is the one decoder of their line
 * (node/real/keyfile.h reads and writes the file). */

/* A fresh identity from env randomness (env borrowed for the call). MESH_OK;
 * MESH_ERR_INVAL (NULL argument); MESH_ERR_NOMEM; MESH_ERR_CRYPTO. */
int mesh_identity_generate(mesh_identity **out, const mesh_env *env);
/* The identity whose private key is seed (copied; the caller wipes its own copy). MESH_OK;
 * MESH_ERR_INVAL (NULL argument); MESH_ERR_NOMEM; MESH_ERR_CRYPTO. */
int mesh_identity_from_seed(mesh_identity **out, const uint8_t seed[MESH_NODE_SEED_BYTES]);
/* Wipe and free. NULL: no-op. */
void mesh_identity_free(mesh_identity *id);
/* Borrowed views, valid as long as id: MESH_NODE_KEY_BYTES and MESH_NODE_ID_BYTES bytes. */
const uint8_t *mesh_identity_pubkey(const mesh_identity *id);
const uint8_t *mesh_identity_node_id(const mesh_identity *id);
/* The key file's line for id into line (MESH_NODE_KEYFILE_LINE_LEN bytes, no NUL): exactly
 * "meshara-ed25519-v1 <64 hex digits of the private seed>\n". It holds the private key: the
 * caller wipes it once written. */
void mesh_identity_keyfile_encode(const mesh_identity *id, char line[MESH_NODE_KEYFILE_LINE_LEN]);
/* An identity from a key file's len bytes (borrowed), which must be exactly one line in the
 * format above (the seed's hex in either case). The one decoder of the format: the loader and
 * the fuzzer (fuzz_keyfile) both run it. MESH_OK; MESH_ERR_CORRUPT (wrong tag, length, hex or
 * line end); MESH_ERR_INVAL (out NULL, or buf NULL with len > 0); MESH_ERR_NOMEM;
 * MESH_ERR_CRYPTO. *out untouched on failure. */
int mesh_identity_keyfile_decode(mesh_identity **out, const char *buf, size_t len);

/* Lower-case hex of len bytes into out (2 * len + 1 bytes, NUL-terminated). Returns out. */
char *mesh_hex_encode(const uint8_t *in, size_t len, char *out);
/* Exactly 2 * len hex digits (either case) of the NUL-terminated hex into out (len bytes).
 * MESH_OK; MESH_ERR_MALFORMED (another length, or a non-hex digit). */
int mesh_hex_decode(const char *hex, uint8_t *out, size_t len);

/* ---- a shared OpenSSL library context ------------------------------------------------ */

/* Each node keeps its OpenSSL objects in a library context whose random source is its env
 * (so simulated TLS bytes follow from the simulation seed). A node makes its own unless
 * mesh_node_cfg.tls_lib lends one. A process can hold only about 500 library contexts (each
 * takes two of the 1024 pthread keys), so a program running many nodes on one thread — the
 * simulator — makes one and lends it to all of them: still reproducible, as they run in
 * event order on that thread.
 *
 * A context drawing randomness from env (copied; env's driver object must outlive the
 * context). MESH_OK; MESH_ERR_INVAL; MESH_ERR_NOMEM; MESH_ERR_CRYPTO (logged). */
int mesh_tls_lib_new(mesh_tls_lib **out, const mesh_env *env);
/* Free it after every node that borrows it. NULL: no-op. */
void mesh_tls_lib_free(mesh_tls_lib *l);

/* ---- the web profile's certificate ---------------------------------------------------- */

/* What the web profile's server shows a TLS client: a certificate like a web server's. A
 * program makes one with mesh_tls_cert_generate(), keeps it (the core touches no file:
 * node/real/keyfile.h keeps it next to the key file) and hands it to the node through
 * mesh_node_cfg.tls_cert_pem/tls_key_pem, as it would an operator's own chain. */
enum { MESH_TLS_CERT_DAYS = 365, MESH_TLS_PEM_MAX = 1 << 16 };

/* A self-signed certificate for host (NULL, empty or an IP address: "localhost") as
 * `openssl req -x509 -days 365 -addext subjectAltName=DNS:host` writes one: version 3, a
 * 159-bit random serial, CN = host, valid from not_before (Unix seconds) for
 * MESH_TLS_CERT_DAYS days, subject and authority key identifiers, CA:TRUE (critical), the
 * host as DNS name; a fresh key of type (enum mesh_cert_type) drawn from env randomness,
 * never the identity key; signed with SHA-256. *cert_pem and *key_pem (PKCS#8) are
 * NUL-terminated, their lengths without the NUL; free each with mesh_tls_pem_free. MESH_OK;
 * MESH_ERR_INVAL; MESH_ERR_NOMEM; MESH_ERR_CRYPTO. Outputs untouched on failure. */
int mesh_tls_cert_generate(const mesh_env *env, int type, const char *host, int64_t not_before,
                           char **cert_pem, size_t *cert_len, char **key_pem, size_t *key_len);

typedef struct mesh_tls_cert_info {
    int type;          /* enum mesh_cert_type of the key, or -1: another kind of key */
    int64_t not_after; /* the first certificate's end of validity, Unix seconds */
    size_t chain_len;  /* certificates in the chain */
    char common_name[MESH_HOST_NAME_MAX + 1]; /* the first certificate's CN ("" if none) */
} mesh_tls_cert_info;

/* Check a chain and key as a node would load them (cert_pem: one or more PEM certificates,
 * the node's first, at most MESH_TLS_PEM_MAX bytes; key_pem: its private key): both parse
 * and the key is the first certificate's. info (may be NULL) filled on MESH_OK. The one
 * decoder of these files (fuzz_tlscert). MESH_OK; MESH_ERR_INVAL (NULL or oversize input);
 * MESH_ERR_CORRUPT (no certificate, a bad one, no key, or a key that does not match);
 * MESH_ERR_NOMEM. */
int mesh_tls_cert_check(const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
                        mesh_tls_cert_info *info);

/* Wipe (it may hold a private key) and free a PEM from mesh_tls_cert_generate. NULL: no-op. */
void mesh_tls_pem_free(char *pem, size_t len);

/* ---- the node ------------------------------------------------------------------------- */

/* A peer to contact: a bootstrap node, a manual peer or a relay. The key is pinned: the session is
 * refused with MESH_ERR_KEY_MISMATCH unless the node at addr proves that very key. host_name
 * (NULL = none; a DNS name, mesh_host_name_check; copied by mesh_node_new): the name it
 * publishes, which a web-profile client sends as SNI on first contact, before it holds the
 * peer's signed record (without one the first hello names no server: a hello a censor can
 * single out). */
typedef struct mesh_node_peer {
    mesh_addr addr;
    uint8_t key[MESH_NODE_KEY_BYTES];
    const char *host_name;
} mesh_node_peer;

/* The peer store: where a node remembers the signed records of peers it talked to, so a
 * restart can join without bootstrap nodes (node/real/peerstore.h: SQLite). Records are the
 * protobuf PeerRecord bytes (node/wire/meshara.proto); the node verifies every record it
 * loads, so a store holding garbage costs nothing but a log line. Both calls are made from
 * the node's loop; neither may call back into the node. */
typedef void (*mesh_peer_store_each_fn)(void *ud, const uint8_t *record, size_t len);
typedef struct mesh_peer_store_ops {
    /* Call each(ud, record, len) for every stored record (record borrowed for the call).
     * Called once, from mesh_node_start(). MESH_OK or an error (logged; the node goes on). */
    int (*load)(void *obj, mesh_peer_store_each_fn each, void *ud);
    /* Insert or replace the record of node_id (seq: the record's sequence number; a store
     * may ignore a lower one). Errors are logged and otherwise ignored. */
    int (*save)(void *obj, const uint8_t node_id[MESH_NODE_ID_BYTES], uint64_t seq,
                const uint8_t *record, size_t len);
} mesh_peer_store_ops;
typedef struct mesh_peer_store {
    const mesh_peer_store_ops *ops; /* NULL = no store */
    void *obj;
} mesh_peer_store;

/* Node configuration. Zero fields take the defaults above; times in ns. Everything is copied
 * by mesh_node_new() except identity (borrowed: must outlive the node) and the store's obj
 * (borrowed likewise). */
typedef struct mesh_node_cfg {
    const mesh_identity *identity;
    mesh_addr listen; /* port 0 = any (see mesh_node_addr) */
    /* Addresses put in our signed record (what others connect to). None: the bound listen
     * address (useless when it is 0.0.0.0: then others learn no address for us).
     * advertise_none: put no address in the record even so — for a node known to be
     * unreachable from outside (behind a NAT without a port mapping): a private address in
     * a record sends remote peers to whoever has that address on their own network. */
    mesh_addr advertised[MESH_NODE_MAX_ADVERTISED];
    size_t n_advertised;
    int advertise_none;
    /* Our record's sequence number: must grow across restarts so peers replace the record
     * they hold (the real driver passes the wall clock in seconds). 0 = 1. */
    uint64_t record_seq;

    /* TLS. profile: enum mesh_profile (0 = MESH_PROFILE_WEB). host_name: this node's DNS
     * name (mesh_host_name_check syntax, env.h; NULL = none), published in its signed record
     * (docs/dht.md) and, web profile, the name of the certificate the node makes: a
     * web-profile client dialling a peer whose record names a host sends that name as SNI,
     * as curl sends the host of its URL, and no SNI for a peer known only by address.
     * sni (at most MESH_NODE_MAX_SNI bytes): web: the server name sent to a peer whose record
     * names no host (NULL or an IP address: none, as curl), and the certificate's name when
     * host_name is NULL; seed: the SNI a client always sends (NULL = "meshara.node").
     * Seed profile only: ALPN list (NULL-terminated, at most
     * MESH_NODE_MAX_ALPN names of at most MESH_NODE_MAX_ALPN_NAME bytes; NULL =
     * {"meshara/1.0"}) and http2: carry messages over HTTP/2 (the server then also accepts
     * MESH_NODE_H2_ALPN, added to the list if missing); the web profile ignores both (its
     * ALPN lists are curl's and nginx's, and it always frames with HTTP/2). Strings are
     * copied by mesh_node_new(). */
    int profile;
    const char *host_name;
    const char *sni;
    const char *const *alpn;
    int http2;
    /* Web profile: the certificate chain (PEM, the node's certificate first) and its private
     * key (PEM), e.g. the files meshara-node keeps next to its key file or the operator's
     * own; both copied by mesh_node_new(). NULL: a self-signed certificate made in memory
     * from env randomness with a tls_cert_type key, valid from unix_epoch for
     * MESH_TLS_CERT_DAYS days (what the simulator does). */
    const char *tls_cert_pem;
    size_t tls_cert_pem_len;
    const char *tls_key_pem;
    size_t tls_key_pem_len;
    int tls_cert_type; /* enum mesh_cert_type */
    /* Web profile, server: the decoy's upstreams (docs/stealth.md), family MESH_AF_NONE for
     * none: web_upstream takes connections that are not HTTP/2 over TLS 1.3 (HTTP/1.x),
     * web_upstream_h2 (HTTP/2 with prior knowledge, nginx's SETTINGS) HTTP/2 ones whose first
     * request is not a Meshara client's hello. */
    mesh_addr web_upstream, web_upstream_h2;
    /* Unix time (seconds) at the env's time 0: dates the certificate made in memory and the
     * session tickets a web-profile server issues. 0 = MESH_NODE_DEFAULT_EPOCH. meshara-node
     * passes the wall clock; a simulation leaves it 0 (reproducible). */
    int64_t unix_epoch;
    /* An OpenSSL library context to share (borrowed: must outlive the node; see
     * mesh_tls_lib_new); NULL = the node makes its own. */
    mesh_tls_lib *tls_lib;

    /* Session timeouts (0 = the defaults: connect, handshake and auth 10 s each, a heartbeat
     * every 30 s ± 10 %, a session silent for 2.5 heartbeat intervals is dead). */
    mesh_time connect_timeout, handshake_timeout, auth_timeout;
    mesh_time heartbeat_interval, heartbeat_timeout;
    size_t max_handshakes; /* inbound sessions authenticating at once (0 = default;
                              at most MESH_NODE_MAX_HANDSHAKES) */
    /* Of them, from one source: an IPv4 address or an IPv6 /64; and how long an inbound
     * connection may stay silent before it is closed (0 = the defaults of core/server.h). */
    size_t max_handshakes_per_source;
    mesh_time first_byte_timeout;

    /* Connection pool. pool_min: maintenance tops up to this from the DHT. pool_max: peers
     * connected or connecting (pinned peers may exceed it when nothing else can be evicted).
     * grace: a new connection is not evicted before this or its first completed exchange. */
    size_t pool_min, pool_max;
    mesh_time grace;
    mesh_time maintain_interval;

    /* Timeouts of the node's own operations. */
    mesh_time send_timeout, query_timeout, bootstrap_timeout;

    /* Joining. Bootstrap nodes (contacted in parallel, GET_PEERS) and manual peers (the
     * fallback, and kept connected: pinned in the pool). Typically loaded from the node's
     * configuration file, never compiled in. */
    mesh_node_peer bootstrap[MESH_NODE_MAX_BOOTSTRAP];
    size_t n_bootstrap;
    mesh_node_peer manual[MESH_NODE_MAX_MANUAL];
    size_t n_manual;
    mesh_peer_store store;

    /* mDNS: publish MESH_NODE_MDNS_TYPE and connect to what is found (only if the env has
     * ops->mdns; otherwise logged and ignored). */
    int mdns;
    /* Port mapping: unless this is set, a node whose env offers ops->portmap asks the gateway
     * (UPnP IGD / NAT-PMP) to map its listening port when it starts (IPv4, not loopback),
     * renews the mapping before its lease ends and releases it in mesh_node_close. The
     * external address shows in mesh_node_stats; it is not put in our record (a mapping is
     * advertised only once a dial-back confirmed it: issue 10). docs/nat.md. */
    int no_port_mapping;
    /* TURN (RFC 8656 with TCP allocations, RFC 6062; docs/nat.md): with turn_server set
     * (port != 0) the node holds an allocation on that server with these long-term
     * credentials (copied; the password is wiped on free), advertises the relayed address
     * in its signed record, accepts sessions arriving through it, permits its bootstrap
     * nodes' and manual peers' IPs and dials those of them it has no session with through
     * the server (Connect). A failure is logged and retried with backoff; the node serves on. */
    mesh_addr turn_server;
    const char *turn_user, *turn_password;
    /* Relays (docs/nat.md, core/relay.h). relay_service: serve reservations and circuits to
     * other nodes, with relay.h's default limits — for a node others can reach (a public
     * address). relays: the relays this node may use: when its IPv4 reachability is not
     * public or mapped (confirmed by dial-back) it reserves slots on up to two of them, in
     * order, and advertises them in its signed record, so that others reach it through a
     * circuit. */
    int relay_service;
    mesh_node_peer relays[MESH_NODE_MAX_RELAYS];
    size_t n_relays;
    /* STUN servers (RFC 8489; docs/nat.md): after start the node asks each for a Binding
     * over TCP from its listening port (so the answer is the NAT's mapping of that port),
     * every 10 min, backing off after failures. The mapped address counts as one observer's
     * claim in the reachability state (reach4): it never enters our record by itself, only
     * once peers confirmed the address by dial-back. Each needs an address and a port. */
    mesh_addr stun[MESH_NODE_MAX_STUN];
    size_t n_stun;
} mesh_node_cfg;

/* Application callbacks; any member may be NULL. */
typedef struct mesh_node_cbs {
    /* Bytes a peer sent with mesh_node_send (from: its proven key). Delivered once even if
     * the sender retransmits after a lost acknowledgement. */
    void (*on_message)(mesh_node *n, const uint8_t from[MESH_NODE_KEY_BYTES], const uint8_t *data,
                       size_t len, void *ud);
    /* A peer became reachable (connected = 1: a session is up) or not any more (0; reason:
     * MESH_OK for an orderly close, MESH_ERR_LIMIT for an eviction, else why it broke).
     * connected = 1 comes again when the peer's session moves to another path (a relayed
     * one replaced by a punched one: mesh_node_get_peer_stats' path tells which). */
    void (*on_peer)(mesh_node *n, const uint8_t key[MESH_NODE_KEY_BYTES], int connected, int reason,
                    void *ud);
    /* The join started by mesh_node_start() ended: MESH_OK (a bootstrap node or manual peer
     * answered GET_PEERS — the DHT self lookup then goes on in the background — or, joining
     * from the peer store, a self lookup through the stored peers succeeded, or there was
     * nothing to join: no store records, bootstrap nodes nor manual
     * peers — the first node of a mesh); MESH_ERR_UNREACHABLE (no bootstrap node, stored
     * peer nor manual peer answered). Once per mesh_node_start(), and once more with MESH_OK
     * if that join failed and one of pool maintenance's retries later succeeds. */
    void (*on_joined)(mesh_node *n, int status, void *ud);
    /* Our reachability changed: a port mapping was made, changed, refused or lost, the
     * reachability state moved, or the address peers confirmed by dial-back (the one our
     * record advertises) changed. mesh_node_get_stats says how (portmap_*, reach4,
     * dialback_confirmed). Deferred like the others; may come when nothing visible changed. */
    void (*on_reach)(mesh_node *n, void *ud);
} mesh_node_cbs;

/* Create a node on env (borrowed: must outlive the node). Nothing happens on the network
 * until mesh_node_start(). cbs copied (NULL = none); ud passed back. *out untouched on
 * failure. MESH_OK; MESH_ERR_INVAL (NULL identity, more bootstrap/manual/advertised/relay/STUN
 * entries than the limits, a STUN server without address or port, pool_min > pool_max, bad
 * ALPN/SNI, a host_name mesh_host_name_check refuses, unknown profile or certificate type, half of
 * a certificate and key); MESH_ERR_CORRUPT (tls_cert_pem/tls_key_pem do not parse or do not match);
 * MESH_ERR_NOMEM; MESH_ERR_TLS / MESH_ERR_CRYPTO (TLS context or our record could not be made). */
int mesh_node_new(mesh_node **out, const mesh_env *env, const mesh_node_cfg *cfg,
                  const mesh_node_cbs *cbs, void *ud);
/* Listen, publish on mDNS, ask the gateway to map the listening port (cfg.no_port_mapping),
 * start maintenance and the join (on_joined reports it).
 * MESH_OK; MESH_ERR_STATE (already started); the env's listen error (MESH_ERR_ADDR...);
 * MESH_ERR_NOMEM. */
int mesh_node_start(mesh_node *n);
/* Leave in order: stop listening and mDNS, release the port mapping (the driver removes it
 * at the gateway in the background), close every session with Goodbye, TLS
 * close_notify and FIN, and accept no new operation (MESH_ERR_STATE). The closes finish
 * from the env's loop (on_peer reports each); run it a little, then mesh_node_free().
 * MESH_OK (also when already closing); MESH_ERR_STATE (not started). */
int mesh_node_close(mesh_node *n);
/* Abort every session, stop listening and mDNS, free everything. No callback is made (see
 * "Completion guarantee"). Not from inside one of this node's callbacks. NULL: no-op. */
void mesh_node_free(mesh_node *n);

/* ---- messaging ------------------------------------------------------------------------ */

/* result: MESH_OK = the peer acknowledged the message (it reached its on_message); else
 * MESH_ERR_NOT_FOUND (the DHT lookup did not find the key), MESH_ERR_TIMEOUT (no
 * acknowledgement within send_timeout), MESH_ERR_CLOSED (the session closed before the
 * acknowledgement), MESH_ERR_KEY_MISMATCH (the node at the peer's address proved another
 * key), MESH_ERR_LIMIT (the pool is full of connections it may not evict), MESH_ERR_AGAIN
 * (the session's send queue was full when the message was due to go out), or the
 * connection's failure (MESH_ERR_REFUSED, MESH_ERR_UNREACHABLE, MESH_ERR_TLS...). */
typedef void (*mesh_node_done_fn)(mesh_node *n, int result, void *ud);

/* Send len bytes (copied) to the node whose public key is key. done is called exactly once,
 * later. MESH_OK (done follows); MESH_ERR_INVAL (NULL argument, len > MESH_NODE_MAX_MESSAGE,
 * our own key); MESH_ERR_STATE (not started); MESH_ERR_AGAIN (a session is up but its send
 * queue is full: retry later); MESH_ERR_LIMIT (MESH_NODE_MAX_PENDING operations in flight,
 * or the pool is full); MESH_ERR_NOMEM. On an error return done is never called. */
int mesh_node_send(mesh_node *n, const uint8_t key[MESH_NODE_KEY_BYTES], const uint8_t *data,
                   size_t len, mesh_node_done_fn done, void *ud);

/* The answer to a query: status MESH_OK (answered; payload: the PING echo), the peer's
 * error status, or a failure as for sends (MESH_ERR_TIMEOUT...). npeers / peer_keys: the
 * verified records a GET_PEERS or FIND_NODE answer carried (their keys; borrowed). */
typedef struct mesh_node_answer {
    int status;
    const uint8_t *payload;
    size_t payload_len;
    size_t npeers;
    const uint8_t (*peer_keys)[MESH_NODE_KEY_BYTES];
    mesh_time rtt; /* from sending the query to the answer (connect time excluded) */
} mesh_node_answer;
typedef void (*mesh_node_answer_fn)(mesh_node *n, const mesh_node_answer *a, void *ud);

/* Ask the node with key a query of type (enum mesh_query_type) with payload (copied; for
 * FIND_NODE exactly MESH_NODE_ID_BYTES of target id), waiting at most timeout ns (0 = the
 * configured query_timeout) from now. cb called exactly once, later. MESH_OK; MESH_ERR_INVAL
 * (bad type, payload size, our own key); MESH_ERR_STATE; MESH_ERR_LIMIT; MESH_ERR_NOMEM. */
int mesh_node_query(mesh_node *n, const uint8_t key[MESH_NODE_KEY_BYTES], int type,
                    const uint8_t *payload, size_t len, mesh_time timeout, mesh_node_answer_fn cb,
                    void *ud);

/* A DHT lookup of node_id finished: MESH_OK when that very node was found (key: its public
 * key, borrowed), MESH_ERR_NOT_FOUND when not (key NULL). hops: the length of the chain of
 * answers that led to the closest node found (0 = it was in our own table, 1 = a contact of
 * ours returned it, ...); queries: how many FIND_NODE queries the lookup sent. */
typedef void (*mesh_node_lookup_fn)(mesh_node *n, int status, const uint8_t *key, unsigned hops,
                                    unsigned queries, void *ud);
/* Look node_id up in the DHT (for tests, benchmarks and diagnostics). MESH_OK (cb follows);
 * MESH_ERR_INVAL; MESH_ERR_STATE; MESH_ERR_LIMIT (too many lookups in progress);
 * MESH_ERR_NOMEM. */
int mesh_node_lookup(mesh_node *n, const uint8_t node_id[MESH_NODE_ID_BYTES],
                     mesh_node_lookup_fn cb, void *ud);

/* Connect to a peer now (key pinned), without sending anything; pin = 1 keeps it from
 * eviction (like a manual peer). The outcome shows through on_peer. MESH_OK (connecting or
 * already connected); MESH_ERR_INVAL; MESH_ERR_STATE; MESH_ERR_LIMIT (pool full);
 * MESH_ERR_NOMEM; the env's immediate connect errors. */
int mesh_node_connect(mesh_node *n, const mesh_addr *addr, const uint8_t key[MESH_NODE_KEY_BYTES],
                      int pin);

/* ---- introspection ---------------------------------------------------------------------- */

/* Borrowed, valid as long as n. */
const uint8_t *mesh_node_key(const mesh_node *n); /* MESH_NODE_KEY_BYTES */
const uint8_t *mesh_node_id(const mesh_node *n);  /* MESH_NODE_ID_BYTES */
/* The address actually listened on (after mesh_node_start). MESH_OK; MESH_ERR_STATE. */
int mesh_node_addr(const mesh_node *n, mesh_addr *out);

typedef struct mesh_node_stats {
    int joined;       /* 1 after on_joined(MESH_OK) */
    size_t peers;     /* in the pool: connected or connecting */
    size_t connected; /* with a usable session */
    size_t sessions;  /* sessions open, duplicates being retired included */
    size_t pinned;
    size_t dht_entries;
    uint64_t connects, connect_failures, accepted; /* outbound attempts, their failures, inbound */
    uint64_t evicted, refused_full, duplicates_closed;
    uint64_t key_mismatches;
    uint64_t msgs_sent, msgs_acked, msgs_failed, msgs_received, msgs_duplicate;
    uint64_t queries_sent, queries_ok, queries_failed, queries_answered;
    uint64_t lookups, lookups_ok; /* DHT lookups (joins and refreshes included) and those
                                     that got answers */
    uint64_t records_accepted, records_rejected; /* from announces, answers and the store */
    uint64_t mdns_found;
    size_t pending; /* sends + queries in flight */
    /* Port mapping of the listening port (cfg.no_port_mapping): its state (enum
     * mesh_node_portmap_state), the external address while MAPPED, the last failure
     * (MESH_OK: none; env.h lists the codes), renewals that kept the address, failures. */
    int portmap_state;
    mesh_addr portmap_external;
    int portmap_error;
    uint64_t portmap_renewals, portmap_failures;
    mesh_node_reach reach4, reach6; /* IPv4, IPv6 */
    /* Dial-back (docs/nat.md): the address our record carries because peers reached us
     * there (family NONE: none); peers we asked, and their answers that were MESH_OK; dials
     * we ran for askers, and requests we refused (not the asker's own IP) or limited. */
    mesh_addr dialback_confirmed;
    /* Relays (docs/nat.md): reservations we hold now; circuits we opened through relays and
     * those that failed; relayed sessions up now (either side); as a relay service: circuits
     * opened and reservations or circuits refused. */
    size_t relays_reserved;
    uint64_t relay_dials, relay_dial_failures;
    size_t relayed_sessions;
    uint64_t relay_circuits_served, relay_refused;
    uint64_t dialback_asked, dialback_ok;
    uint64_t dialback_dials, dialback_refused, dialback_limited;
    /* TURN (cfg.turn_server): enum mesh_node_turn_state, the relayed address while
     * ALLOCATED, the last failure (MESH_ERR_AUTH: credentials refused, ...; MESH_OK: none),
     * and the sessions that went through the server (path "turn": in = a peer connected to
     * the relayed address, out = we dialled through Connect). */
    int turn_state;
    mesh_addr turn_relayed;
    int turn_error;
    uint64_t turn_sessions_in, turn_sessions_out, turn_failures;
    /* Hole punching over relayed sessions (docs/nat.md): punches run (as either side), those
     * that ended on a punched session (which replaced the relayed one), those that failed,
     * and the last failure (MESH_ERR_TIMEOUT: nothing came up, MESH_ERR_NOT_FOUND: no
     * candidates...; MESH_OK: none). */
    uint64_t punches, sessions_punched, punch_failures;
    int punch_error;
    /* STUN (cfg.stun): the last mapped address a server answered (family NONE: none yet),
     * the last failure (MESH_OK: the last transaction succeeded), answers and failures. */
    mesh_addr stun_mapped;
    int stun_error;
    uint64_t stun_answers, stun_failures;
} mesh_node_stats;
void mesh_node_get_stats(const mesh_node *n, mesh_node_stats *out);

/* How a session reaches its peer (docs/nat.md). */
enum mesh_node_path {
    MESH_NODE_PATH_DIRECT = 0,  /* a TCP connection to an address the peer listens on */
    MESH_NODE_PATH_MAPPED = 1,  /* inbound, to our port mapping */
    MESH_NODE_PATH_PUNCHED = 2, /* TCP hole punching */
    MESH_NODE_PATH_RELAYED = 3, /* a circuit through a relay (core/relay.h) */
    MESH_NODE_PATH_TURN = 4,    /* a TURN allocation */
};
/* "direct", "mapped", "punched", "relayed", "turn" ("?" for another value). */
const char *mesh_node_path_name(int path);

typedef struct mesh_node_peer_stats {
    int connected; /* a usable session is up */
    int pinned;
    int outbound;    /* the usable session is one we opened */
    size_t sessions; /* open sessions to this peer (2 only while a duplicate is retired) */
    uint64_t connects, connect_failures;
    uint64_t msgs_sent, msgs_received;
    mesh_time connected_at, last_used; /* 0 = never */
    mesh_time rtt;                     /* smoothed heartbeat RTT, 0 = none yet */
    int path;                          /* the usable session's: enum mesh_node_path */
} mesh_node_peer_stats;
/* Stats of the peer with key. MESH_OK; MESH_ERR_NOT_FOUND (not in the pool). */
int mesh_node_get_peer_stats(const mesh_node *n, const uint8_t key[MESH_NODE_KEY_BYTES],
                             mesh_node_peer_stats *out);

typedef struct mesh_node_bootstrap_stats {
    int score; /* reliability: up on answers, down on failures, far down on a key
                  mismatch (an impostor at that address) */
    uint64_t attempts, answers, failures;
    int last_result; /* MESH_OK or the last failure */
} mesh_node_bootstrap_stats;
/* Stats of configured bootstrap node i. MESH_OK; MESH_ERR_NOT_FOUND (no such index). */
int mesh_node_get_bootstrap_stats(const mesh_node *n, size_t i, mesh_node_bootstrap_stats *out);

#ifdef __cplusplus
}
#endif
#endif
