/* turn.h — a TURN client with TCP allocations (RFC 8656 + RFC 6062), for a node whose
 * operator runs a TURN server (coturn): the server's relayed transport address is where
 * peers reach the node, and every peer connection arrives as a virtual stream (vstream.h)
 * that a Meshara session runs inside, end to end, so the server sees only ciphertext.
 *
 * Messages (all over TCP to the server; STUN codec: stun.h):
 *  - control connection: Allocate (REQUESTED-TRANSPORT = TCP, LIFETIME), Refresh,
 *    CreatePermission (XOR-PEER-ADDRESS per peer IP), Connect (XOR-PEER-ADDRESS) — requests
 *    and their responses; ConnectionAttempt indications (CONNECTION-ID, XOR-PEER-ADDRESS) from
 *    the server when a permitted peer connects to the relayed address;
 *  - one data connection per peer connection: a new TCP connection to the server that sends
 *    ConnectionBind (CONNECTION-ID); after its success response the connection carries the
 *    peer's bytes, raw, both ways.
 *
 * Long-term credentials (RFC 8489 §9.2): the first Allocate goes without; the server's 401
 * gives REALM and NONCE; every later request carries USERNAME, REALM, NONCE and
 * MESSAGE-INTEGRITY (HMAC-SHA1 with key = MD5(username ":" realm ":" password)). A 438 (stale
 * nonce) takes the new NONCE and resends. A 401 to a request that carried credentials, or a
 * 441, is a refusal of the credentials: MESH_ERR_AUTH. Re-sends per request are bounded
 * (MESH_TURN_MAX_AUTH_TRIES): a server that answers 401/438 forever ends in MESH_ERR_AUTH.
 * The classic MESSAGE-INTEGRITY only: coturn 4.6 (Debian 12) offers no PASSWORD-ALGORITHMS,
 * so the SHA-256 variant is never negotiated (a response's MESSAGE-INTEGRITY-SHA256 would
 * still be checked: mesh_stun_check_integrity with MESH_STUN_MI_ANY).
 *
 * Response checks: a response is taken only if its transaction id is one we wait for, its
 * FINGERPRINT (when present) is right, and — for a request that carried credentials — a
 * success response carries a right MESSAGE-INTEGRITY (an error response is checked when it
 * carries one). Anything else is counted (stats) and ignored, so a forged answer can at most
 * make the transaction time out (MESH_ERR_TIMEOUT). Bytes on a control or data connection
 * that are not STUN where STUN is due end that connection (MESH_ERR_MALFORMED).
 *
 * Timing: a transaction times out after cfg.timeout (TCP: no retransmission). The
 * allocation is refreshed when 3/4 of its granted lifetime has passed (450 s of coturn's
 * default 600 s), so a lost or slow Refresh still has a quarter of the lifetime; permissions
 * (RFC 8656 §9: 300 s) are re-installed every MESH_TURN_PERM_REFRESH_S = 240 s.
 *
 * Outcomes reach the owner through on_allocated: MESH_OK once the allocation exists (relayed
 * and mapped addresses), or — once, after which the client is dead (every data connection
 * ends with the same reason) and the owner frees it —
 * the reason it failed or was lost: MESH_ERR_AUTH, MESH_ERR_TIMEOUT, MESH_ERR_REFUSED (an
 * error response: the code is in the stats), MESH_ERR_LIMIT (486/508: quota or capacity),
 * MESH_ERR_PROTOCOL (a success response without XOR-RELAYED-ADDRESS), MESH_ERR_MALFORMED,
 * or the control connection's close reason (MESH_ERR_CLOSED for an orderly close).
 *
 * Callbacks come only from env callbacks, never from inside a mesh_turn_* call. The owner
 * must not free the client inside one of its callbacks (defer it to a timer). Bounded: at
 * most MESH_TURN_MAX_TXNS control transactions, MESH_TURN_MAX_PERMS peer IPs,
 * MESH_TURN_MAX_CONNS data connections, MESH_TURN_MAX_PENDING bytes written into a data
 * connection before it is bound.
 */
#ifndef MESH_CORE_TURN_H
#define MESH_CORE_TURN_H

#include <stddef.h>
#include <stdint.h>

#include "core/stun.h"
#include "core/vstream.h"
#include "meshara/env.h"

enum mesh_turn_limits {
    MESH_TURN_MAX_TXNS = 16,
    MESH_TURN_MAX_PERMS = 32,
    MESH_TURN_MAX_CONNS = 64,
    MESH_TURN_MAX_PENDING = 64 * 1024,
    MESH_TURN_MAX_AUTH_TRIES = 3, /* resends of one request after 401/438 */
    MESH_TURN_MAX_PASSWORD = MESH_STUN_MAX_TEXT,
    MESH_TURN_DEFAULT_LIFETIME_S = 600, /* RFC 8656 §7.2 */
    MESH_TURN_DEFAULT_TIMEOUT_MS = 10000,
    MESH_TURN_PERM_REFRESH_S = 240, /* permissions live 300 s (RFC 8656 §9) */
    MESH_TURN_RX_MAX = 4096,        /* one STUN message from the server, at most */
};

typedef struct mesh_turn_cfg {
    mesh_addr server;     /* the TURN server (TCP) */
    const char *username; /* long-term credentials, copied (<= MESH_STUN_MAX_USERNAME) */
    const char *password; /* copied (<= MESH_TURN_MAX_PASSWORD), wiped on free */
    uint32_t lifetime_s;  /* asked for; 0 = MESH_TURN_DEFAULT_LIFETIME_S */
    mesh_time timeout;    /* per transaction; 0 = MESH_TURN_DEFAULT_TIMEOUT_MS */
} mesh_turn_cfg;

typedef struct mesh_turn mesh_turn;

typedef struct mesh_turn_cbs {
    /* MESH_OK: allocated (relayed, mapped: borrowed; mapped family NONE if the server gave
     * none). Else the allocation failed or was lost (see the header); relayed/mapped NULL. */
    void (*on_allocated)(mesh_turn *t, int status, const mesh_addr *relayed,
                         const mesh_addr *mapped, void *ud);
    /* A permitted peer connected to the relayed address: s is a connected virtual stream of
     * mesh_turn_env (adopt it: mesh_session_accept; or close it). peer borrowed. NULL: every
     * incoming connection is closed. */
    void (*on_incoming)(mesh_turn *t, mesh_stream *s, const mesh_addr *peer, void *ud);
} mesh_turn_cbs;

typedef struct mesh_turn_stats {
    uint64_t requests, responses, auth_retries, stale_nonces, refreshes, permissions_sent;
    uint64_t connects, attempts, binds_ok, binds_failed;
    uint64_t malformed, unexpected, bad_tid, bad_fingerprint, bad_integrity;
    int last_error_code; /* the last ERROR-CODE the server answered (0: none) */
} mesh_turn_stats;

/* Connect to the server and allocate; the outcome comes through on_allocated. base borrowed
 * (outlives the client); cfg and cbs copied. MESH_OK; MESH_ERR_INVAL (no server, no or
 * over-long credentials); MESH_ERR_NOMEM; the env's connect error. *out untouched on failure.*/
int mesh_turn_new(mesh_turn **out, const mesh_env *base, const mesh_turn_cfg *cfg,
                  const mesh_turn_cbs *cbs, void *ud);
/* Release everything: virtual streams without callbacks, data connections aborted; an
 * allocation is given back (Refresh with LIFETIME 0, sent before the control connection is
 * closed gracefully; no answer awaited). Not from inside a callback. NULL: no-op. */
void mesh_turn_free(mesh_turn *t);
/* The overlay env the data connections' virtual streams belong to. */
mesh_env mesh_turn_env(mesh_turn *t);
/* 1 once allocated (and not lost). */
int mesh_turn_allocated(const mesh_turn *t);
mesh_turn_stats mesh_turn_get_stats(const mesh_turn *t);
size_t mesh_turn_conns(const mesh_turn *t);
/* Virtual streams of mesh_turn_env still held by a consumer (the client may be freed under
 * no session once this is 0). */
size_t mesh_turn_streams(const mesh_turn *t);

/* Let peers with peer's IP (the port is ignored) connect to the relayed address: a
 * CreatePermission now (or once allocated), kept installed until the client is freed.
 * MESH_OK (also when already permitted); MESH_ERR_INVAL; MESH_ERR_LIMIT (MAX_PERMS IPs). */
int mesh_turn_permit(mesh_turn *t, const mesh_addr *peer);
/* A connection through the server to peer (RFC 6062 Connect + ConnectionBind), as a
 * connecting virtual stream of mesh_turn_env with cbs/ud (copied): on_connected once bound,
 * else on_closed with the reason (MESH_ERR_REFUSED: the server could not reach the peer or
 * refused; MESH_ERR_AUTH; MESH_ERR_TIMEOUT...). Bytes written before are sent once bound (at
 * most MESH_TURN_MAX_PENDING). The peer's IP is permitted first (mesh_turn_permit). NULL and
 * *err: MESH_ERR_INVAL; MESH_ERR_STATE (not allocated); MESH_ERR_LIMIT; MESH_ERR_NOMEM. */
mesh_stream *mesh_turn_connect(mesh_turn *t, const mesh_addr *peer, const mesh_stream_cbs *cbs,
                               void *ud, int *err);

/* The ERROR-CODE of an error response mapped to an error (MESH_ERR_AUTH for 401/441,
 * MESH_ERR_LIMIT for 486/508, MESH_ERR_UNREACHABLE for 447, else MESH_ERR_REFUSED). */
int mesh_turn_error_status(int code);

#endif
