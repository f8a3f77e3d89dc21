/* server.h — accept sessions on a listening address; pending handshakes a peer cannot hoard.
 *
 * The server listens through the env and wraps every accepted stream in a mesh_session
 * (session.h). It owns each session until the session reaches CONNECTED, then hands it to its
 * owner through on_session. Failed handshakes (garbage, TLS 1.2, wrong ALPN, bad hello,
 * timeouts...) are counted, reported through on_failed with their reason, and freed here.
 *
 * Pending handshakes are a bounded resource, shared so that connections which only hold a
 * slot cannot keep out peers that are getting somewhere:
 *
 *  - Progress. A handshake has made progress once the client's first flight — a complete
 *    ClientHello — has been read and answered: the server has sent bytes of its own
 *    (ServerHello..Finished, or a HelloRetryRequest), or TLS is done (AUTHENTICATING). Bytes
 *    alone are not progress: half a ClientHello, or one trickled a byte at a time, is not.
 *    A handshake already failing (its session CLOSING) counts as without progress.
 *  - Sources. A source is the peer's IPv4 address, or the /64 prefix of its IPv6 address (an
 *    IPv4-mapped IPv6 address counts as that IPv4 address): what one host or one customer of
 *    a provider can hold many of.
 *  - Admission. A newcomer whose source already has max_per_source handshakes takes the
 *    place of that source's oldest handshake without progress; if all of them progressed,
 *    the newcomer is refused. Otherwise, when max_handshakes are pending, the newcomer takes
 *    the place of the oldest handshake without progress of any source, or is refused when
 *    every one progressed. "Oldest" is accept order. The handshake closed to make room is
 *    reset (RST), counted (evicted) and reported through on_failed(MESH_ERR_LIMIT); a refused
 *    newcomer is reset and counted (rejected). So an attacker who opens connections and
 *    sends nothing, or half a ClientHello, only ever displaces its own or other idle
 *    connections: a peer that sends its ClientHello gets in and stays — unless every slot
 *    it could take is held by handshakes that progressed too (whole ClientHellos, which cost
 *    their sender little and the server a key exchange and a signature each), which only
 *    the per-source cap and the handshake timeout bound.
 *  - First byte. A connection from which no byte arrived within first_byte_timeout of its
 *    accept is closed then, exactly (RST; on_failed(MESH_ERR_TIMEOUT); counted in failed and
 *    silent) — much sooner than the session's handshake timeout, which still bounds a
 *    handshake that started.
 *  - Web profile. A connection whose first request is not a Meshara client's hello goes to
 *    the decoy (session.h on_decoy, docs/stealth.md): it leaves the handshaking set for a set
 *    of at most MESH_SERVER_MAX_DECOYS (the oldest closed with close_notify and FIN when a
 *    newcomer needs its place) and ends when the decoy's upstream or the client ends it. The
 *    first-byte timeout is nginx's (60 s) and closes with a FIN, as nginx does.
 *  - Logs. Refusals, evictions and first-byte timeouts are logged at INFO through the env
 *    clock at most once per MESH_SERVER_LOG_INTERVAL_MS: the first one at once, then one
 *    summary line with the counts of the interval (none when nothing happened), so a flood
 *    costs a line every few seconds, not one per connection.
 *
 * Costs: each accept scans the pending set (O(max_handshakes), hence its low maximum); one
 * env timer serves the first-byte deadlines and the log summaries.
 *
 * Callbacks come only from env events; inside them the owner may call any function here,
 * including mesh_server_free().
 */
#ifndef MESH_CORE_SERVER_H
#define MESH_CORE_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "core/session.h"
#include "core/tls.h"
#include "meshara/env.h"

enum mesh_server_limits {
    MESH_SERVER_DEFAULT_MAX_HANDSHAKES = 64,
    MESH_SERVER_MAX_HANDSHAKES = 4096, /* no configuration may exceed this (accept scans) */
    MESH_SERVER_DEFAULT_MAX_PER_SOURCE = 8,
    MESH_SERVER_DEFAULT_FIRST_BYTE_TIMEOUT_MS = 3000,
    MESH_SERVER_WEB_FIRST_BYTE_TIMEOUT_MS = 60000, /* web profile: nginx's, closed by FIN */
    MESH_SERVER_MAX_DECOYS = 256, /* web profile: connections the decoy carries at once */
    MESH_SERVER_LOG_INTERVAL_MS = 10000,
    MESH_SERVER_SOURCE_PREFIX6_BYTES = 8, /* an IPv6 source is its /64 */
};

typedef struct mesh_server mesh_server;

typedef struct mesh_server_cfg {
    mesh_session_cfg session;     /* for every accepted session (zero fields: defaults) */
    size_t max_handshakes;        /* 0 = MESH_SERVER_DEFAULT_MAX_HANDSHAKES */
    size_t max_per_source;        /* 0 = MESH_SERVER_DEFAULT_MAX_PER_SOURCE; above max_handshakes:
                                     max_handshakes */
    mesh_time first_byte_timeout; /* ns; 0 = MESH_SERVER_DEFAULT_FIRST_BYTE_TIMEOUT_MS */
} mesh_server_cfg;

typedef struct mesh_server_cbs {
    /* Required. A session reached CONNECTED (peer key verified). Ownership passes to the
     * callee: it must install its own callbacks (mesh_session_set_cbs) before returning —
     * until then the session has none — and free the session with mesh_session_free(). */
    void (*on_session)(mesh_server *srv, mesh_session *s, void *ud);
    /* Optional. A connection failed before CONNECTED, with its reason (MESH_ERR_TLS,
     * MESH_ERR_VERSION, MESH_ERR_ALPN, MESH_ERR_BAD_SIGNATURE, MESH_ERR_TIMEOUT — also the
     * first-byte timeout —, MESH_ERR_LIMIT: evicted to make room...); peer is borrowed. The
     * server frees that session itself after this returns. */
    void (*on_failed)(mesh_server *srv, int reason, const mesh_addr *peer, void *ud);
    /* Optional. Asked first about every accepted stream (peer borrowed): 1 if the owner took
     * it (a connection it expects, e.g. a hole punch's: the server never sees it again), 0
     * to let the server handle it as usual. Must not free the server. */
    int (*on_accept)(mesh_server *srv, mesh_stream *st, const mesh_addr *peer, void *ud);
} mesh_server_cbs;

typedef struct mesh_server_stats {
    uint64_t accepted;  /* streams adopted as sessions */
    uint64_t rejected;  /* closed at once: no room and nothing to evict (or no memory) */
    uint64_t evicted;   /* closed to make room for a newcomer (see Admission) */
    uint64_t crowded;   /* newcomers whose source was at max_per_source (evicting or refused) */
    uint64_t failed;    /* closed before CONNECTED, evictions apart */
    uint64_t silent;    /* of failed: no byte within first_byte_timeout */
    uint64_t connected; /* handed to the owner */
    uint64_t decoyed;   /* web profile: handed to the decoy (not failed, not connected) */
    size_t handshaking; /* now between accept and CONNECTED */
} mesh_server_stats;

/* Listen on addr (port 0 = any) over env (borrowed, must outlive the server) with the node's
 * TLS context (borrowed, likewise). cfg NULL = defaults (copied); cbs copied. MESH_OK;
 * MESH_ERR_INVAL (NULL argument, no on_session, max_handshakes above the maximum);
 * MESH_ERR_NOMEM; or the env's listen error (MESH_ERR_ADDR...). *out untouched on failure. */
int mesh_server_new(mesh_server **out, const mesh_env *env, mesh_tls_ctx *tls,
                    const mesh_addr *addr, const mesh_server_cfg *cfg, const mesh_server_cbs *cbs,
                    void *ud);
/* Stop listening and free the sessions still handshaking (no callbacks). Sessions already
 * handed over are the owner's and are not touched. NULL: no-op. */
void mesh_server_free(mesh_server *srv);
/* The address actually bound. MESH_OK or the env's error. */
int mesh_server_addr(const mesh_server *srv, mesh_addr *out);
void mesh_server_get_stats(const mesh_server *srv, mesh_server_stats *out);

#endif
