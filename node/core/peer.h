/* peer.h — signed, self-certifying peer records: who a node is and where to reach it.
 *
 * A record carries the node's Ed25519 public key, its addresses, a sequence number and a
 * signature by that key over
 *     "meshara-peer-v1" || public key (32) || seq (8, big endian) || naddrs (1) ||
 *     for each address: its text form's length (1) and text ("1.2.3.4:443", "[::1]:443")
 * so nobody can publish addresses for someone else's key, and a newer record (higher seq)
 * replaces an older one. node_id = SHA-256(public key) is derived, never trusted from input.
 * Only records that verify may enter any table (DHT, pool, peer store); callers check
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
    MESH_PEER_MAX_ADDRS = 8,      /* addresses in one record; more is malformed */
    MESH_PEER_LIST_MAX = 64,      /* records in one PeerList; more is malformed */
};

#define MESH_PEER_SIG_CONTEXT "meshara-peer-v1"

/* A plain value: copy freely. */
typedef struct mesh_peer_record {
    uint8_t pubkey[MESH_PUBKEY_LEN];
    uint8_t node_id[MESH_NODE_ID_LEN]; /* SHA-256(pubkey), filled by make/decode */
    uint64_t seq;
    size_t naddrs;
    mesh_addr addrs[MESH_PEER_MAX_ADDRS];
    uint8_t sig[MESH_SIG_LEN];
} mesh_peer_record;

/* Make and sign id's record. MESH_OK; MESH_ERR_INVAL (naddrs > MESH_PEER_MAX_ADDRS, NULL);
 * MESH_ERR_CRYPTO. */
int mesh_peer_record_make(mesh_peer_record *out, const mesh_identity *id, const mesh_addr *addrs,
                          size_t naddrs, uint64_t seq);
/* Check the signature (and that node_id matches the key). MESH_OK; MESH_ERR_BAD_SIGNATURE;
 * MESH_ERR_INVAL (not a valid key). */
int mesh_peer_record_verify(const mesh_peer_record *r);

/* Fill a protobuf PeerRecord that borrows r's memory (valid while r lives and is unchanged);
 * addr_text must hold MESH_PEER_MAX_ADDRS strings of MESH_ADDR_STRLEN bytes and addr_ptrs
 * MESH_PEER_MAX_ADDRS pointers. */
void mesh_peer_record_to_pb(const mesh_peer_record *r, Meshara__Wire__PeerRecord *pb,
                            char addr_text[][MESH_ADDR_STRLEN], char **addr_ptrs);
/* Parse and verify a protobuf PeerRecord. MESH_OK; MESH_ERR_MALFORMED (sizes, too many or
 * unparsable addresses); MESH_ERR_BAD_SIGNATURE. */
int mesh_peer_record_from_pb(const Meshara__Wire__PeerRecord *pb, mesh_peer_record *out);

/* A PeerList of n records as protobuf bytes, malloc'd (caller frees). MESH_OK; MESH_ERR_INVAL
 * (n > MESH_PEER_LIST_MAX); MESH_ERR_NOMEM. */
int mesh_peer_list_encode(const mesh_peer_record *recs, size_t n, uint8_t **out, size_t *outlen);
/* Decode a PeerList's bytes into out (cap entries), keeping only records that verify; *n gets
 * how many were kept and *dropped (may be NULL) how many were refused. MESH_OK;
 * MESH_ERR_MALFORMED (not a PeerList, or more than MESH_PEER_LIST_MAX entries); MESH_ERR_NOMEM. */
int mesh_peer_list_decode(const uint8_t *buf, size_t len, mesh_peer_record *out, size_t cap,
                          size_t *n, size_t *dropped);

#endif
