/* pool_impl.h — internal to the pool module: the objects pool.c (the pool's life, sessions,
 * eviction, maintenance) and pool_conn.c (per-peer accessors and counters) share. Nothing
 * outside those two files includes this.
 */
#ifndef MESH_CORE_POOL_IMPL_H
#define MESH_CORE_POOL_IMPL_H

#include "core/pool.h"

typedef struct psess {
    mesh_pool *p;
    mesh_pool_conn *c; /* NULL: an orphan being closed */
    mesh_session *s;
    int outbound;
    int up;         /* reached the pool CONNECTED */
    int from_local; /* connected from the pool's local address */
    int retiring;   /* a duplicate that lost: closes when linger fires */
    uint64_t seq;   /* creation order: the newer of two same-client duplicates wins */
    mesh_timer *linger;
    struct psess *next; /* orphan list */
} psess;

typedef struct waiter {
    mesh_pool_wait_fn fn;
    void *ctx;
    struct waiter *next;
} waiter;

struct mesh_pool_conn {
    mesh_pool *p;
    uint8_t key[MESH_PUBKEY_LEN];
    uint8_t id[MESH_NODE_ID_LEN];
    psess *sess[MESH_POOL_MAX_SESSIONS_PER_PEER];
    size_t nsess;
    psess *active;
    int was_up, pinned, serving;
    int from_local;   /* MESH_POOL_FROM_LOCAL: connect from the pool's local address */
    int local_failed; /* such a connection failed: from any port from then on */
    mesh_addr addrs[MESH_POOL_MAX_ADDRS];
    size_t naddrs, next_addr;
    waiter *waiters;
    size_t nwaiters;
    unsigned holds;
    mesh_time created_at, up_at, last_used, protected_until;
    uint64_t connects, connect_failures, msgs_sent, msgs_received;
    uint64_t recent[MESH_POOL_RECENT_IDS];
    size_t nrecent, recent_pos;
};

struct mesh_pool {
    const mesh_env *env;
    mesh_tls_ctx *tls;
    uint8_t self_key[MESH_PUBKEY_LEN];
    uint8_t self_id[MESH_NODE_ID_LEN];
    mesh_pool_cfg cfg;
    mesh_addr local; /* mesh_pool_set_local (family NONE: none) */
    mesh_pool_cbs cbs;
    void *ud;
    mesh_pool_conn **conns;
    size_t nconns, cap;
    psess *orphans;
    mesh_timer *maint;
    int closing; /* mesh_pool_close_all: no new sessions */
    uint64_t seq;
    mesh_pool_stats st;
};

#endif
