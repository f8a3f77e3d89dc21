/* h2.h — HTTP/2 message framing: Meshara messages as ordinary HTTP/2 requests, through
 * nghttp2 in its sans-I/O mode (nghttp2_session_mem_recv / nghttp2_session_mem_send).
 *
 * It sits between a session's TLS plaintext and its messages when the session runs with ALPN
 * "h2". The mapping (docs/protocol.md):
 *  - client → server: each message is the body of one `POST /api/v1/message` request
 *    (content-type application/octet-stream), answered `200` with an empty body;
 *  - server → client: the client opens one long-lived `POST /api/v1/events` request at start;
 *    the server answers `200` and streams the client's messages in its response body, each as
 *    a 4-byte big-endian length then the bytes (like gRPC server streaming);
 *  - any other path: 404; any other method on those paths: 405; both close only that stream.
 * Nothing here reads a clock or a random source (nghttp2's own rate limiter aside, which only
 * counts frames; we keep it at its defaults).
 *
 * Bounds: a message larger than max_message fails the connection (MESH_ERR_TOO_BIG); the
 * number of concurrent streams is limited by SETTINGS (MESH_H2_MAX_STREAMS).
 */
#ifndef MESH_CORE_H2_H
#define MESH_CORE_H2_H

#include <stddef.h>
#include <stdint.h>

#include "meshara/env.h"

enum mesh_h2_limits {
    MESH_H2_MAX_STREAMS = 100,
};

typedef struct mesh_h2 mesh_h2;

typedef struct mesh_h2_cbs {
    /* One whole message arrived (data borrowed). Return MESH_OK, or an error code to fail
     * the connection (mesh_h2_recv then returns it). */
    int (*on_message)(void *ud, const uint8_t *data, size_t len);
} mesh_h2_cbs;

/* is_server: 1 on the accepting side. max_message: largest message accepted (> 0).
 * cbs copied. MESH_OK, MESH_ERR_INVAL, MESH_ERR_NOMEM. The client side queues its
 * connection preface and the /api/v1/events request at once. */
int mesh_h2_new(mesh_h2 **out, int is_server, size_t max_message, const mesh_h2_cbs *cbs,
                void *ud);
void mesh_h2_free(mesh_h2 *h); /* NULL: no-op */

/* Feed plaintext bytes from the peer. MESH_OK; MESH_ERR_PROTOCOL (HTTP/2 violation);
 * MESH_ERR_TOO_BIG; MESH_ERR_NOMEM; or what on_message returned. After an error the
 * connection must be closed (call mesh_h2_send_pending() once more to flush a GOAWAY). */
int mesh_h2_recv(mesh_h2 *h, const uint8_t *data, size_t len);
/* Queue one message (copied). MESH_OK; MESH_ERR_TOO_BIG; MESH_ERR_STATE (server before the
 * client's events request arrived: queued until it does, so in fact MESH_OK — see .c);
 * MESH_ERR_NOMEM. */
int mesh_h2_send(mesh_h2 *h, const uint8_t *data, size_t len);
/* Bytes nghttp2 wants to send: *data points at them (borrowed, valid until the next call on
 * h). Returns the length (0 = nothing now) or a negative MESH_ERR_*. Call until 0 after every
 * recv/send. */
long mesh_h2_pull(mesh_h2 *h, const uint8_t **data);
/* Bytes of messages queued but not yet handed out by mesh_h2_pull (for backpressure). */
size_t mesh_h2_queued(const mesh_h2 *h);

#endif
