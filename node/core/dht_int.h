/* dht_int.h — what dht.c (routing table, refresh, life cycle) and dht_lookup.c (iterative
 * lookups) share: the DHT's objects and the calls between the two files. Not for other
 * modules: dht.h is the interface. */
#ifndef MESH_DHT_INT_H
#define MESH_DHT_INT_H

#include "core/dht.h"

/* Internal bounds (the public ones are in dht.h). */
enum {
    /* Candidates one lookup tracks: k for the result plus room for the failed ones it steps
     * over (30% dead nodes cost about k/2) and the closer ones still arriving. */
    MESH_DHT_LOOKUP_CANDS = 8 * MESH_DHT_K,
    /* A refresh that found the lookup slots full tries again this much later. */
    MESH_DHT_REFRESH_RETRY_S = 10,
};

enum cand_state { CAND_NEW, CAND_ASKED, CAND_DONE, CAND_FAILED };

typedef struct dht_entry {
    mesh_peer_record rec;
    mesh_time last_seen; /* last proof of life, if seen */
    int seen;            /* any proof of life yet */
    unsigned fails;      /* consecutive failed queries */
} dht_entry;

typedef struct dht_ping {
    mesh_dht *d;
    unsigned bucket;
    uint8_t id[MESH_NODE_ID_LEN];
    int active;
} dht_ping;

typedef struct dht_bucket {
    dht_entry *entries[MESH_DHT_K];
    size_t n;
    dht_entry *repl[MESH_DHT_REPLACEMENTS]; /* oldest first */
    size_t nrepl;
    dht_ping ping; /* at most one liveness check of this bucket in flight */
} dht_bucket;

typedef struct dht_lookup dht_lookup;

typedef struct lk_cand {
    mesh_peer_record rec;
    unsigned hop;
    uint8_t state; /* enum cand_state */
} lk_cand;

typedef struct lk_query {
    dht_lookup *lk;
    uint8_t id[MESH_NODE_ID_LEN];
    int used;
} lk_query;

struct dht_lookup {
    mesh_dht *d;
    uint8_t target[MESH_NODE_ID_LEN];
    mesh_dht_lookup_fn cb;
    void *ud;
    lk_cand *c; /* sorted by distance to target, closest first */
    size_t n;
    unsigned inflight, queries;
    lk_query q[MESH_DHT_ALPHA];
    int done;
};

struct mesh_dht {
    mesh_env env;
    mesh_peer_cache *cache; /* borrowed from the owner, may be NULL */
    mesh_peer_record self;
    const mesh_dht_transport *tr;
    void *ud;
    dht_bucket *buckets[MESH_DHT_ID_BITS];
    mesh_time touched[MESH_DHT_ID_BITS]; /* last lookup into each bucket's range */
    dht_lookup *lookups[MESH_DHT_MAX_LOOKUPS];
    mesh_timer *finish_timer, *refresh_timer;
    int bootstrapped;
    int dispatching, freed;
    mesh_dht_stats stats;
};

/* dht.c */
int mesh_dht_is_self(const mesh_dht *d, const uint8_t id[MESH_NODE_ID_LEN]);
/* Add or refresh r in the routing table (live: it answered us). MESH_OK or why not. */
int mesh_dht_table_add(mesh_dht *d, const mesh_peer_record *r, int live);
/* Free d and everything it owns now (mesh_dht_free defers this inside a callback). */
void mesh_dht_destroy(mesh_dht *d);

/* dht_lookup.c */
/* Start a lookup; the callback (may be NULL) comes from the finish timer. MESH_OK;
 * MESH_ERR_LIMIT (every lookup slot busy); MESH_ERR_NOMEM. */
int mesh_dht_lk_start(mesh_dht *d, const uint8_t target[MESH_NODE_ID_LEN], mesh_dht_lookup_fn cb,
                      void *ud);
void mesh_dht_lk_free(dht_lookup *lk); /* NULL: no-op */
/* The finish timer: reports finished lookups to their owners and frees them. */
void mesh_dht_finish_fire(mesh_timer *t, void *ud);

#endif
