/* server.h — accept sessions on a listening address, with a bound on handshakes in progress.
 *
 * The server listens through the env and wraps every accepted stream in a mesh_session
 * (session.h). It owns each session until the session reaches CONNECTED, then hands it to its
 * owner through on_session. At most max_handshakes sessions may be between accept and
 * CONNECTED at once: a connection arriving beyond that is closed at once with a reset and
 * counted (rejected), so a flood of idle or slow clients costs a bounded amount of memory and
 * CPU; each one that does get in is closed at the session's handshake or auth timeout.
 * Failed handshakes (garbage, TLS 1.2, wrong ALPN, bad hello, timeouts...) are counted,
 * reported through on_failed with their reason, and freed by the server.
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
    MESH_SERVER_MAX_HANDSHAKES = 1 << 16, /* no configuration may exceed this */
};

typedef struct mesh_server mesh_server;

typedef struct mesh_server_cfg {
    mesh_session_cfg session; /* for every accepted session (zero fields: defaults) */
    size_t max_handshakes;    /* 0 = MESH_SERVER_DEFAULT_MAX_HANDSHAKES */
} mesh_server_cfg;

typedef struct mesh_server_cbs {
    /* Required. A session reached CONNECTED (peer key verified). Ownership passes to the
     * callee: it must install its own callbacks (mesh_session_set_cbs) before returning —
     * until then the session has none — and free the session with mesh_session_free(). */
    void (*on_session)(mesh_server *srv, mesh_session *s, void *ud);
    /* Optional. A connection failed before CONNECTED, with its reason (MESH_ERR_TLS,
     * MESH_ERR_VERSION, MESH_ERR_ALPN, MESH_ERR_BAD_SIGNATURE, MESH_ERR_TIMEOUT...); peer is
     * borrowed. The server frees that session itself after this returns. */
    void (*on_failed)(mesh_server *srv, int reason, const mesh_addr *peer, void *ud);
} mesh_server_cbs;

typedef struct mesh_server_stats {
    uint64_t accepted;  /* streams adopted as sessions */
    uint64_t rejected;  /* closed at once: max_handshakes reached (or no memory) */
    uint64_t failed;    /* closed before CONNECTED */
    uint64_t connected; /* handed to the owner */
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
