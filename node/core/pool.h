/* pool.h — the node's connection pool: at most one usable session per peer, bounded.
 *
 * The pool owns every session of the node once it is CONNECTED (inbound ones are adopted
 * from the server) or while it connects (outbound ones it opens). Peers are keyed by node id;
 * a peer is a mesh_pool_conn, which holds the peer's sessions: normally one, the usable
 * ("active") one.
 *
 * Invariants and rules:
 *  - One connection attempt per peer: mesh_pool_get() on a peer already connecting adds the
 *    caller to that peer's waiter list; every waiter is answered once, when a session is up
 *    (MESH_OK) or when every address failed (the failure), never from inside a pool call.
 *  - Simultaneous open: when a peer has two CONNECTED sessions (we connected to it while it
 *    connected to us), both sides keep the session whose client has the smaller node id
 *    (two sessions with the same client: the newer), so both agree without talking. The
 *    loser is "retired": nothing new is sent on it, messages arriving on it are still handled
 *    and answered, and it is closed after MESH_POOL_DUP_LINGER_MS so answers in flight are
 *    not lost. An outbound session still connecting is aborted at once when it would lose.
 *  - Bounds: peers connected or connecting <= max. Making room evicts the least recently
 *    used peer that is not pinned, not inside its grace period (grace after it came up, ended
 *    early by mesh_pool_used(): its first completed exchange), not held (mesh_pool_hold:
 *    an operation of the owner awaits an answer on it) and has no waiters. When nothing can
 *    be evicted, a new outbound attempt fails with MESH_ERR_LIMIT and a new inbound session
 *    is closed (counted refused_full). Pinned attempts may exceed max instead.
 *  - Maintenance every maintain_interval (jittered ±MESH_POOL_MAINTAIN_JITTER_PCT % from env
 *    randomness): drops sessions silent past their heartbeat timeout and attempts stuck
 *    connecting (backstops: sessions time out by themselves), evicts down to max, and asks
 *    the owner (on_top_up) for more peers when fewer than min are connected.
 *
 * Callbacks to the owner come from env events, except on_down for a peer evicted to make
 * room inside mesh_pool_get() / mesh_pool_adopt(), which runs inside that call.
 */
#ifndef MESH_CORE_POOL_H
#define MESH_CORE_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "core/identity.h"
#include "core/session.h"
#include "core/tls.h"
#include "meshara/env.h"
#include "meshara/meshara.h"

enum mesh_pool_limits {
    MESH_POOL_MAX_PEERS = 1 << 16,       /* no configuration may exceed this */
    MESH_POOL_MAX_SESSIONS_PER_PEER = 3, /* usable + retiring; a further inbound is closed */
    MESH_POOL_MAX_ADDRS = 8,             /* addresses tried in turn for one peer */
    MESH_POOL_DUP_LINGER_MS = 5000,      /* a retired duplicate session closes after this */
    MESH_POOL_MAINTAIN_JITTER_PCT = 10,
    MESH_POOL_RECENT_IDS = 64,    /* message ids remembered per peer (duplicates) */
    MESH_POOL_MAX_WAITERS = 4096, /* waiters on one peer (MESH_ERR_LIMIT beyond) */
};

enum mesh_pool_flags {
    MESH_POOL_PIN = 1,        /* never evicted; may exceed max */
    MESH_POOL_FROM_LOCAL = 2, /* connect from the local address (mesh_pool_set_local); after
                                 a failed attempt from it, from any port */
};

typedef struct mesh_pool mesh_pool;
typedef struct mesh_pool_conn mesh_pool_conn;

typedef struct mesh_pool_cfg {
    size_t min, max;             /* 0 = MESH_NODE_DEFAULT_POOL_MIN / MAX */
    mesh_time grace;             /* 0 = MESH_NODE_DEFAULT_GRACE_MS */
    mesh_time maintain_interval; /* 0 = MESH_NODE_DEFAULT_MAINTAIN_MS */
    mesh_session_cfg session;    /* outbound sessions */
} mesh_pool_cfg;

/* A waiter's answer: MESH_OK with the peer's conn (a usable session is up), or the failure
 * of the last attempt (MESH_ERR_KEY_MISMATCH, MESH_ERR_TIMEOUT, MESH_ERR_REFUSED...) with
 * c NULL. */
typedef void (*mesh_pool_wait_fn)(void *ctx, int status, mesh_pool_conn *c);

/* Any member may be NULL. */
typedef struct mesh_pool_cbs {
    /* Session s of c reached the pool CONNECTED (also a duplicate about to be retired). */
    void (*on_session_up)(void *ud, mesh_pool_conn *c, mesh_session *s);
    /* c became usable (its first usable session). */
    void (*on_up)(void *ud, mesh_pool_conn *c);
    /* An envelope (not hello/heartbeat/goodbye) arrived on session s of c. */
    void (*on_message)(void *ud, mesh_pool_conn *c, mesh_session *s, const mesh_envelope *e);
    /* Session s of c (one that had reached the pool CONNECTED) closed with reason; s is
     * freed after this returns. c may still have another usable session
     * (mesh_pool_session): answers expected on s can be asked again there; or the owner may
     * mesh_pool_get() c again from here, and c then stays for that new attempt. */
    void (*on_session_closed)(void *ud, mesh_pool_conn *c, mesh_session *s, int reason);
    /* Session s (one that had reached the pool CONNECTED) leaves the owner's view without
     * on_session_closed: its peer was evicted (or it was refused for a full pool); the pool
     * closes it gracefully and frees it later, and delivers nothing more from it. Whatever
     * the owner keeps that points at s must go now. Must not call the pool. */
    void (*on_session_orphaned)(void *ud, mesh_session *s);
    /* c, which had been up, lost its last session (reason: the last one's, MESH_ERR_LIMIT
     * for an eviction); c is freed after this returns. */
    void (*on_down)(void *ud, mesh_pool_conn *c, int reason);
    /* Every address of an outbound attempt failed (waiters were told the same). */
    void (*on_connect_failed)(void *ud, const uint8_t key[MESH_PUBKEY_LEN], int reason);
    /* Maintenance: fewer than min peers; the owner may mesh_pool_get() up to want more. */
    void (*on_top_up)(void *ud, size_t want);
    /* Asked before each outbound connection: the server name to give the peer with key (its
     * published host name: tls.h, mesh_tls_set_server_name), borrowed until the connection
     * is made; NULL (or no callback) = the TLS context's default. Must not call the pool. */
    const char *(*server_name)(void *ud, const uint8_t key[MESH_PUBKEY_LEN]);
} mesh_pool_cbs;

typedef struct mesh_pool_stats {
    size_t peers, connected, sessions, pinned, waiters;
    uint64_t connects, connect_failures, accepted;
    uint64_t evicted, refused_full, duplicates_closed, maintenance_runs, dead_dropped;
    uint64_t key_mismatches;
} mesh_pool_stats;

/* A pool over env and tls (both borrowed, must outlive the pool); our id comes from the TLS
 * context's identity. cfg NULL = defaults (copied); cbs copied. MESH_OK; MESH_ERR_INVAL
 * (min > max, max > MESH_POOL_MAX_PEERS); MESH_ERR_NOMEM. */
int mesh_pool_new(mesh_pool **out, const mesh_env *env, mesh_tls_ctx *tls, const mesh_pool_cfg *cfg,
                  const mesh_pool_cbs *cbs, void *ud);
/* Abort every session and free everything; waiters are dropped without callback. NULL:
 * no-op. */
void mesh_pool_free(mesh_pool *p);
/* Start the maintenance timer. MESH_OK or MESH_ERR_NOMEM. */
int mesh_pool_start(mesh_pool *p);

/* A usable session to the peer with key, connecting to addrs (copied; tried in order) when
 * there is none. MESH_OK and *ready set: usable now, no callback. MESH_OK and *ready NULL:
 * fn(ctx, ...) follows once (fn NULL: nobody waits). MESH_ERR_INVAL (our own key, no address
 * to connect to); MESH_ERR_LIMIT (pool full and nothing evictable, or too many waiters);
 * MESH_ERR_NOMEM; the session's immediate connect errors. flags: enum mesh_pool_flags (a PIN
 * also pins a peer already in the pool). */
int mesh_pool_get(mesh_pool *p, const uint8_t key[MESH_PUBKEY_LEN], const mesh_addr *addrs,
                  size_t naddrs, int flags, mesh_pool_wait_fn fn, void *ctx,
                  mesh_pool_conn **ready);
/* The local address (the listener's) that connections made with MESH_POOL_FROM_LOCAL leave
 * from (mesh_session_cfg.local): so the peer sees the NAT mapping of our listening port. */
void mesh_pool_set_local(mesh_pool *p, const mesh_addr *local);
/* Drop every waiter whose ctx is ctx (its fn will not be called). */
void mesh_pool_cancel(mesh_pool *p, void *ctx);
/* Take over an inbound session the server handed over CONNECTED (always: on refusal the pool
 * closes it). */
void mesh_pool_adopt(mesh_pool *p, mesh_session *s);
/* The same for a CONNECTED session opened elsewhere (outbound = 1: we are its client, e.g.
 * a session dialled through a TURN server), so the simultaneous-open rule sees its client. */
void mesh_pool_adopt_as(mesh_pool *p, mesh_session *s, int outbound);

/* The peer with node_id, or NULL. */
mesh_pool_conn *mesh_pool_find(const mesh_pool *p, const uint8_t node_id[MESH_NODE_ID_LEN]);
/* c's usable session, or NULL while connecting. */
mesh_session *mesh_pool_session(const mesh_pool_conn *c);
const uint8_t *mesh_pool_conn_key(const mesh_pool_conn *c); /* borrowed, as long as c */
const uint8_t *mesh_pool_conn_id(const mesh_pool_conn *c);
/* Remember addresses to reconnect to (copied; up to MESH_POOL_MAX_ADDRS). */
void mesh_pool_set_addrs(mesh_pool_conn *c, const mesh_addr *addrs, size_t naddrs);

/* Bookkeeping by the owner: traffic (LRU order and stats), a completed exchange (ends the
 * grace period), holds (an answer is awaited: no eviction while held). */
void mesh_pool_touch(mesh_pool_conn *c, int sent);
void mesh_pool_used(mesh_pool_conn *c);
void mesh_pool_hold(mesh_pool_conn *c);
void mesh_pool_release(mesh_pool_conn *c);
/* 1 if message id was seen from this peer recently (a retransmission), else records it and
 * returns 0. */
int mesh_pool_seen_msg(mesh_pool_conn *c, uint64_t id);

void mesh_pool_get_stats(const mesh_pool *p, mesh_pool_stats *out);
void mesh_pool_conn_stats(const mesh_pool_conn *c, mesh_node_peer_stats *out);
/* Run maintenance now (tests). */
void mesh_pool_maintain(mesh_pool *p);
/* Close every session in order (Goodbye, close_notify, FIN: mesh_session_close) and take no
 * new one (mesh_pool_get: MESH_ERR_STATE; adopted sessions are refused); maintenance stops.
 * The sessions' closes then come through the usual callbacks. */
void mesh_pool_close_all(mesh_pool *p);

#endif
