/* dht.h — Kademlia over Meshara sessions: 256-bit ids, XOR distance, k-buckets, iterative
 * lookups (design and parameters in docs/dht.md).
 *
 * Sans-I/O like the rest of the core: the DHT never opens a connection. It asks its owner (the
 * node) to run FIND_NODE and PING queries through a transport table; the owner uses its
 * connection pool and sessions and reports each answer (or timeout) back through the given
 * callback, always later, from an env event — never from inside the transport call. Timers
 * (bucket refresh) come from the env.
 *
 * Routing table: 256 buckets of at most k entries, indexed by the length of the common prefix
 * with our id. Entries are verified peer records (peer.h) with liveness state. A full bucket
 * keeps its old live entries (Kademlia's preference for long-lived nodes): a new candidate
 * waits in the bucket's replacement cache and takes the place of an entry that failed
 * MESH_DHT_STALE_FAILS queries in a row, or whose PING fails when the bucket is full. At most
 * MESH_DHT_MAX_PER_IP entries in one bucket may share an IP address (blunts a one-host Sybil).
 *
 * Lookups: iterative, alpha queries in flight, each with the transport's timeout; the k
 * closest nodes seen are tracked; the lookup ends when the k closest not failed have all
 * answered and no closer node is left to ask (or after MESH_DHT_MAX_LOOKUP_QUERIES queries,
 * with what it has). A node that answers is marked alive in the table; one whose query fails
 * is counted as failed (mesh_dht_failed). Hops = the length of the chain of answers that led
 * to the closest node of the result: 0 = it was in our own table, 1 = one of our contacts
 * returned it, 2 = a node one of our contacts returned did, ...
 *
 * Records the transport hands back are trusted to be verified (mesh_peer_record_from_pb does
 * that); records offered through mesh_dht_add are verified here.
 */
#ifndef MESH_CORE_DHT_H
#define MESH_CORE_DHT_H

#include <stddef.h>
#include <stdint.h>

#include "core/peer.h"
#include "meshara/env.h"

enum mesh_dht_limits {
    MESH_DHT_ID_BITS = 256,
    MESH_DHT_K = 20,
    MESH_DHT_ALPHA = 3,
    MESH_DHT_MAX_PER_IP = 2,           /* entries sharing an IP in one bucket */
    MESH_DHT_REPLACEMENTS = 8,         /* replacement cache per bucket */
    MESH_DHT_STALE_FAILS = 3,          /* consecutive failures that make an entry stale */
    MESH_DHT_REFRESH_S = 900,          /* a bucket without lookups this long is refreshed */
    MESH_DHT_MAX_LOOKUPS = 64,         /* lookups in progress at once (MESH_ERR_LIMIT beyond) */
    MESH_DHT_MAX_LOOKUP_QUERIES = 200, /* queries one lookup may send before it gives up */
};

typedef struct mesh_dht mesh_dht;

/* An answer to a transport query: status MESH_OK (peers: the verified records the peer
 * returned for FIND_NODE, none for PING) or the failure (MESH_ERR_TIMEOUT, MESH_ERR_CLOSED,
 * MESH_ERR_REFUSED...). peers borrowed for the call. */
typedef void (*mesh_dht_reply_fn)(void *ctx, int status, const mesh_peer_record *peers, size_t n);

typedef struct mesh_dht_transport {
    /* Send FIND_NODE(target) to `to`; exactly one reply later. Return MESH_OK, or an error
     * now (then no reply follows). */
    int (*find_node)(void *ud, const mesh_peer_record *to, const uint8_t target[MESH_NODE_ID_LEN],
                     mesh_dht_reply_fn reply, void *ctx);
    /* Send PING to `to`; exactly one reply later (same rules). */
    int (*ping)(void *ud, const mesh_peer_record *to, mesh_dht_reply_fn reply, void *ctx);
} mesh_dht_transport;

/* A lookup finished: status MESH_OK with the (up to k) closest nodes that answered, sorted by
 * distance (an exact match is closest[0]); MESH_ERR_NOT_FOUND (nobody answered: closest
 * NULL, n 0); MESH_ERR_NOMEM (no memory for the result). hops as in the header comment;
 * queries = how many this lookup sent. closest is borrowed for the call. Freeing the DHT
 * ends its lookups without a callback; the callback may call mesh_dht_free. */
typedef void (*mesh_dht_lookup_fn)(void *ud, int status, const mesh_peer_record *closest, size_t n,
                                   unsigned hops, unsigned queries);

typedef struct mesh_dht_stats {
    size_t entries; /* in the routing table */
    uint64_t lookups, lookups_ok, queries_sent, queries_failed;
    uint64_t rejected_sybil, rejected_bad; /* per-IP bound; records that did not verify */
} mesh_dht_stats;

/* A DHT for the node whose own record is self (copied; our id is derived from its key). env
 * (copied; it must provide timers), transport and ud are borrowed and must outlive the DHT.
 * MESH_OK; MESH_ERR_INVAL (NULL, no timers, no find_node); MESH_ERR_NOMEM (*out untouched). */
int mesh_dht_new(mesh_dht **out, const mesh_env *env, const mesh_peer_record *self,
                 const mesh_dht_transport *transport, void *ud);
/* Free everything; lookups in progress end without callback; replies that arrive later for
 * them must be ignored — so the owner must cancel its outstanding transport queries first or
 * make their replies no-ops. NULL: no-op. */
void mesh_dht_free(mesh_dht *d);
/* Verify offered records through cache (borrowed, must outlive the DHT; NULL = none): the
 * node shares its cache with the DHT so a record it just verified is not verified twice. */
void mesh_dht_set_cache(mesh_dht *d, mesh_peer_cache *cache);
/* Replace our own record (new addresses, higher seq); a record for another key or with a
 * lower seq is ignored (and logged). */
void mesh_dht_set_self(mesh_dht *d, const mesh_peer_record *self);
/* Our own record (borrowed until the next mesh_dht_set_self). */
const mesh_peer_record *mesh_dht_self(const mesh_dht *d);

/* Offer a record (it is verified here, unless it is exactly the record already held). live = 1
 * when we just talked to that node through an authenticated session (its key proven). A
 * full bucket keeps its entries: a stale one (MESH_DHT_STALE_FAILS) gives way at once,
 * otherwise the record waits in the replacement cache and the least recently seen entry is
 * PINGed (one PING per bucket at a time). MESH_OK (added, refreshed or cached as a
 * replacement); MESH_ERR_BAD_SIGNATURE; MESH_ERR_EXISTS (an older seq than held: ignored);
 * MESH_ERR_LIMIT (per-IP bound); MESH_ERR_INVAL (our own key, NULL); MESH_ERR_NOMEM;
 * MESH_ERR_CRYPTO (the signature could not be checked: nothing counted against the record). */
int mesh_dht_add(mesh_dht *d, const mesh_peer_record *r, int live);
/* A session with node_id proved it alive / a query to it failed (MESH_DHT_STALE_FAILS in a
 * row make it stale: replaced by a replacement if there is one, never handed out by
 * mesh_dht_closest). Unknown ids: no-op. */
void mesh_dht_seen(mesh_dht *d, const uint8_t node_id[MESH_NODE_ID_LEN]);
void mesh_dht_failed(mesh_dht *d, const uint8_t node_id[MESH_NODE_ID_LEN]);
/* The record held for node_id, or NULL (borrowed until the next call on d). */
const mesh_peer_record *mesh_dht_get(const mesh_dht *d, const uint8_t node_id[MESH_NODE_ID_LEN]);

/* Up to max of our entries closest to target, sorted, stale ones left out (what we answer a
 * FIND_NODE with; replacement-cache records are not handed out); returns how many. */
size_t mesh_dht_closest(const mesh_dht *d, const uint8_t target[MESH_NODE_ID_LEN],
                        mesh_peer_record *out, size_t max);
/* Start an iterative lookup of target (cb may be NULL). MESH_OK; MESH_ERR_LIMIT
 * (MESH_DHT_MAX_LOOKUPS in progress); MESH_ERR_NOMEM; MESH_ERR_INVAL. The callback comes
 * later, from an env timer (never inside this call), also when there is nobody to ask. */
int mesh_dht_lookup(mesh_dht *d, const uint8_t target[MESH_NODE_ID_LEN], mesh_dht_lookup_fn cb,
                    void *ud);
/* Join: a lookup of our own id (fills our neighbourhood), then bucket refresh from then on
 * (the first refresh MESH_DHT_REFRESH_S later). Call it again to re-join (e.g. after the
 * table emptied). cb as for a lookup (may be NULL). Codes as mesh_dht_lookup. */
int mesh_dht_bootstrap(mesh_dht *d, mesh_dht_lookup_fn cb, void *ud);

mesh_dht_stats mesh_dht_get_stats(const mesh_dht *d);
/* XOR distance comparison: <0 if a is closer to target than b, 0 equal, >0 farther. */
int mesh_dht_cmp(const uint8_t target[MESH_NODE_ID_LEN], const uint8_t a[MESH_NODE_ID_LEN],
                 const uint8_t b[MESH_NODE_ID_LEN]);
/* Length of the common bit prefix of a and b (0..256): the bucket index of b in a's table
 * (256 = the same id). */
unsigned mesh_dht_common_prefix(const uint8_t a[MESH_NODE_ID_LEN],
                                const uint8_t b[MESH_NODE_ID_LEN]);

#endif
