/* peer.h — signed, self-certifying peer records: who a node is and where to reach it.
 *
 * A record carries the node's Ed25519 public key, its addresses, a sequence number, the
 * relays it can be reached through ("via relay R": address and key of R, for a node that is
 * not reachable itself), optionally its DNS host name (what a web-profile client sends as SNI
 * when it dials the node: tls.h) and a signature by that key over
 *     "meshara-peer-v3" || public key (32) || seq (8, big endian) || naddrs (1) ||
 *     for each address: its text form's length (1) and text ("1.2.3.4:443", "[::1]:443") ||
 *     nrelays (1) || for each relay: its address's text length (1), text, key (32) ||
 *     host name's length (1, 0 = none) and text
 * so nobody can publish addresses, relays or a name for someone else's key, and a newer record
 * (higher seq) replaces an older one. node_id = SHA-256(public key) is derived, never trusted from
 * input. Only records that verify may enter any table (DHT, pool, peer store); callers check
 * freshness (seq) against what they hold. On the wire a record is the PeerRecord message of
 * node/wire/meshara.proto and a list of them a PeerList (docs/dht.md).
 */
#ifndef MESH_CORE_PEER_H
#define MESH_CORE_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "core/identity.h"
#include "meshara.pb-c.h"
#include "meshara/env.h"

enum mesh_peer_limits {
    MESH_PEER_MAX_ADDRS = 8,  /* addresses in one record; more is malformed */
    MESH_PEER_MAX_RELAYS = 4, /* relays in one record; more is malformed */
    MESH_PEER_LIST_MAX = 64,  /* records in one PeerList; more is malformed */
    /* Encoded PeerList bytes mesh_peer_list_decode accepts: 64 records of 8 addresses, 4
     * relays in their longest text form and a 253-byte host name take about 68 KiB; the rest
     * is room for fields a later version adds. */
    MESH_PEER_LIST_MAX_BYTES = 80 * 1024,
};

#define MESH_PEER_SIG_CONTEXT "meshara-peer-v3"

/* A relay the record's node takes circuits through (relay.h). */
typedef struct mesh_peer_relay {
    mesh_addr addr;
    uint8_t key[MESH_PUBKEY_LEN];
} mesh_peer_relay;

/* A plain value: copy freely. */
typedef struct mesh_peer_record {
    uint8_t pubkey[MESH_PUBKEY_LEN];
    uint8_t node_id[MESH_NODE_ID_LEN]; /* SHA-256(pubkey), filled by make/decode */
    uint64_t seq;
    size_t naddrs;
    mesh_addr addrs[MESH_PEER_MAX_ADDRS];
    size_t nrelays;
    mesh_peer_relay relays[MESH_PEER_MAX_RELAYS];
    /* "" = none; else a name mesh_host_name_check accepts (env.h), as published */
    char host_name[MESH_HOST_NAME_MAX + 1];
    uint8_t sig[MESH_SIG_LEN];
} mesh_peer_record;

/* What a protobuf PeerRecord borrows besides the record (mesh_peer_record_to_pb). */
typedef struct mesh_peer_pb_scratch {
    char text[MESH_PEER_MAX_ADDRS + MESH_PEER_MAX_RELAYS][MESH_ADDR_STRLEN];
    char *ptrs[MESH_PEER_MAX_ADDRS];
    Meshara__Wire__RelayRef refs[MESH_PEER_MAX_RELAYS];
    Meshara__Wire__RelayRef *ref_ptrs[MESH_PEER_MAX_RELAYS];
} mesh_peer_pb_scratch;

/* Records that verified before, so one heard again is not verified again: a node hears the
 * same records over and over (every GET_PEERS and FIND_NODE answer), and Ed25519 verification
 * was 85 % of a simulated mesh's CPU time. A direct-mapped table of 128-bit SHA-256 digests
 * of (signed bytes || signature): a hit means exactly these bytes verified before, so a
 * forged record cannot ride on a cached one without a SHA-256 collision. Zero-initialise it;
 * a plain value (4 KiB), no free. */
enum { MESH_PEER_CACHE_SLOTS = 256, MESH_PEER_CACHE_DIGEST = 16 };
typedef struct mesh_peer_cache {
    uint8_t digest[MESH_PEER_CACHE_SLOTS][MESH_PEER_CACHE_DIGEST];
    uint64_t hits, misses;
} mesh_peer_cache;

/* Make and sign id's record (addresses copied; unused ip bytes zeroed). MESH_OK;
 * MESH_ERR_INVAL (naddrs > MESH_PEER_MAX_ADDRS, NULL, an address family other than INET4 or
 * INET6); MESH_ERR_CRYPTO. *out is written only on success. */
int mesh_peer_record_make(mesh_peer_record *out, const mesh_identity *id, const mesh_addr *addrs,
                          size_t naddrs, uint64_t seq);
/* The same with relays (copied; nrelays <= MESH_PEER_MAX_RELAYS, each address INET4 or INET6,
 * else MESH_ERR_INVAL). */
int mesh_peer_record_make_relayed(mesh_peer_record *out, const mesh_identity *id,
                                  const mesh_addr *addrs, size_t naddrs,
                                  const mesh_peer_relay *relays, size_t nrelays, uint64_t seq);
/* The same with a host name (copied; NULL or "" = none; else one mesh_host_name_check
 * accepts, else MESH_ERR_INVAL). */
int mesh_peer_record_make_named(mesh_peer_record *out, const mesh_identity *id,
                                const mesh_addr *addrs, size_t naddrs,
                                const mesh_peer_relay *relays, size_t nrelays,
                                const char *host_name, uint64_t seq);
/* Check the signature (and that node_id matches the key). About 50 us: callers that see the
 * same record again compare it with mesh_peer_record_equal instead. MESH_OK;
 * MESH_ERR_BAD_SIGNATURE (also a node_id that is not SHA-256 of the key); MESH_ERR_INVAL (not
 * a valid key, naddrs or nrelays too large, an address without family, a host name that is
 * neither "" nor valid); MESH_ERR_NOMEM,
 * MESH_ERR_CRYPTO (not checked: out of memory in OpenSSL). */
int mesh_peer_record_verify(const mesh_peer_record *r);
/* The same through cache (NULL: no cache): a record whose digest is cached is accepted
 * without the signature check; one that verifies now is cached. Same codes. */
int mesh_peer_record_verify_cached(const mesh_peer_record *r, mesh_peer_cache *cache);
/* 1 if a and b are the same record (key, id, seq, addresses, relays, host name, signature),
 * else 0. */
int mesh_peer_record_equal(const mesh_peer_record *a, const mesh_peer_record *b);

/* Fill a protobuf PeerRecord that borrows r's memory and sc's (valid while both live and r is
 * unchanged). */
void mesh_peer_record_to_pb(const mesh_peer_record *r, Meshara__Wire__PeerRecord *pb,
                            mesh_peer_pb_scratch *sc);
/* Parse and verify a protobuf PeerRecord; *out is written only on success. MESH_OK;
 * MESH_ERR_MALFORMED (sizes, too many addresses or relays, an address not in the canonical
 * text form mesh_addr_format writes, a relay key not 32 bytes, a key that is not an Ed25519
 * point); MESH_ERR_BAD_HOST_NAME (a host_name that mesh_host_name_check refuses: the record
 * is refused, signed or not); MESH_ERR_BAD_SIGNATURE;
 * MESH_ERR_NOMEM; MESH_ERR_INVAL (NULL). */
int mesh_peer_record_from_pb(const Meshara__Wire__PeerRecord *pb, mesh_peer_record *out);
/* The same, verifying through cache (may be NULL). */
int mesh_peer_record_from_pb_cached(const Meshara__Wire__PeerRecord *pb, mesh_peer_record *out,
                                    mesh_peer_cache *cache);
/* The verified records of a decoded PeerList (e.g. Response.peers of an envelope) into out
 * (cap entries): *n gets how many were kept, *dropped (may be NULL) how many were not (refused,
 * or beyond cap). MESH_OK; MESH_ERR_MALFORMED (more than MESH_PEER_LIST_MAX entries: nothing
 * kept); MESH_ERR_NOMEM; MESH_ERR_INVAL (NULL). */
int mesh_peer_list_from_pb(const Meshara__Wire__PeerList *pb, mesh_peer_record *out, size_t cap,
                           size_t *n, size_t *dropped);

/* A PeerList of n records as protobuf bytes, malloc'd (caller frees); the records are not
 * verified again (they came from a table that holds only verified ones). MESH_OK;
 * MESH_ERR_INVAL (n > MESH_PEER_LIST_MAX, NULL); MESH_ERR_NOMEM; MESH_ERR_INTERNAL. */
int mesh_peer_list_encode(const mesh_peer_record *recs, size_t n, uint8_t **out, size_t *outlen);
/* Decode a PeerList's bytes into out (cap entries), keeping only records that verify; *n gets
 * how many were kept and *dropped (may be NULL) how many were not (refused, or beyond cap).
 * Unpacking may allocate at most wire.h's budget (MESH_WIRE_ALLOC_*) for len. MESH_OK;
 * MESH_ERR_MALFORMED (not a PeerList, or more than MESH_PEER_LIST_MAX entries);
 * MESH_ERR_TOO_BIG (len > MESH_PEER_LIST_MAX_BYTES); MESH_ERR_LIMIT (would allocate beyond the
 * budget: hostile input); MESH_ERR_NOMEM; MESH_ERR_INVAL (NULL). */
int mesh_peer_list_decode(const uint8_t *buf, size_t len, mesh_peer_record *out, size_t cap,
                          size_t *n, size_t *dropped);

#endif
