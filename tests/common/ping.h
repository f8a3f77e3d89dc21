/* ping.h — the smallest whole exchange through the env seam: a PING query and its echoed
 * response over a plain stream, framed (frame.h) protobuf envelopes (wire.h).
 *
 * It proves the seam: the very same code runs over the simulator (the round trip measured in
 * virtual time equals what the link model predicts, exactly) and over the real driver on
 * loopback. It carries no security: sessions (session.h) are what nodes use to talk, and it
 * is test code (tests/common, in the mesh_testutil library), not part of meshara_core.
 *
 * Both objects live on one env; every callback to the caller comes from an env callback
 * (never from inside a mesh_ping_* call).
 */
#ifndef MESH_TEST_PING_H
#define MESH_TEST_PING_H

#include <stddef.h>
#include <stdint.h>

#include "meshara/env.h"

enum mesh_ping_limits {
    MESH_PING_MAX_PAYLOAD = 16384,
    MESH_PING_FRAME_MAX = MESH_PING_MAX_PAYLOAD + 256, /* payload plus envelope overhead */
    MESH_PING_SERVER_MAX_CONNS = 256, /* more simultaneous clients are refused (closed) */
};

/* ---- server: answers every PING query with a response echoing its id and payload ------ */

typedef struct mesh_ping_server mesh_ping_server;

/* Listen on addr (port 0 = any). MESH_OK; MESH_ERR_INVAL; MESH_ERR_NOMEM; the env's listen
 * errors (MESH_ERR_ADDR...). *out untouched on failure. */
int mesh_ping_server_new(mesh_ping_server **out, const mesh_env *env, const mesh_addr *addr);
/* The address actually bound. MESH_OK or the env's error. */
int mesh_ping_server_addr(const mesh_ping_server *s, mesh_addr *out);
/* Queries answered so far; connections refused or closed for bad input. */
uint64_t mesh_ping_server_answered(const mesh_ping_server *s);
uint64_t mesh_ping_server_rejected(const mesh_ping_server *s);
/* Close the listener and every connection (abortively). NULL: no-op. */
void mesh_ping_server_free(mesh_ping_server *s);

/* ---- client: one connection, one query -------------------------------------------------- */

typedef struct mesh_ping mesh_ping;

/* result: MESH_OK with rtt = time from writing the query to reading the matching response
 * (the connect is not included); or the failure: MESH_ERR_TIMEOUT (no answer within the
 * timeout), the stream's close reason (MESH_ERR_REFUSED, ...), MESH_ERR_CLOSED (closed before
 * answering), MESH_ERR_MALFORMED / MESH_ERR_PROTOCOL (a bad answer). Called exactly once;
 * the callback may free the ping. */
typedef void (*mesh_ping_cb)(mesh_ping *p, int result, mesh_time rtt, void *ud);

/* Connect to `to`, send one PING with payload_len bytes of env-random payload, wait at most
 * timeout ns (from now) for the answer. MESH_OK; MESH_ERR_INVAL (payload too big, cb NULL);
 * MESH_ERR_NOMEM; the env's connect errors. */
int mesh_ping_start(mesh_ping **out, const mesh_env *env, const mesh_addr *to, size_t payload_len,
                    mesh_time timeout, mesh_ping_cb cb, void *ud);
/* The query id this ping sends (env-random; lets a test compute exact wire sizes). */
uint64_t mesh_ping_query_id(const mesh_ping *p);
/* Stop (closing the connection) and free. Safe inside the callback. NULL: no-op. */
void mesh_ping_free(mesh_ping *p);

#endif
