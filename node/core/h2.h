/* h2.h — HTTP/2 message framing: Meshara messages as ordinary HTTP/2 requests, through
 * nghttp2 in its sans-I/O mode (nghttp2_session_mem_recv / nghttp2_session_mem_send).
 *
 * It sits between a session's TLS plaintext and its messages when the session runs with ALPN
 * "h2". The mapping (docs/protocol.md):
 *  - client → server: each message is the body of one `POST /api/v1/message` request
 *    (content-type application/octet-stream, content-length set), answered `200` with an
 *    empty body. The client sends one request body at a time, so the server completes them
 *    (and hands them out) in the order they were sent;
 *  - server → client: the client opens one long-lived `POST /api/v1/events` request (empty
 *    body) at start; the server answers `200` and streams the client's messages in its
 *    response body, each as a 4-byte big-endian length then the bytes (like gRPC server
 *    streaming);
 *  - any other path: 404; any other method on those paths: 405; a second events request on
 *    one connection: 409. Each closes only that stream; the connection continues.
 * Nothing here reads a clock, nor a random source but the env given to mesh_h2_set_padding
 * (the web profile's DATA padding). (nghttp2 itself reads the monotonic clock in
 * its RST_STREAM rate limiter; we configure it not to refill, so its verdict depends on counts
 * only: a peer that resets more than MESH_H2_MAX_PEER_RESETS streams in the connection's
 * lifetime gets a GOAWAY, in the simulator and on real sockets alike.)
 *
 * Bounds: a message larger than max_message fails the connection (MESH_ERR_TOO_BIG), whether
 * announced by content-length, by an event frame's length or by the bytes received; request
 * bodies being received at once total at most MESH_H2_RECV_BUDGET_FACTOR * max_message
 * (MESH_ERR_LIMIT); the peer may open MESH_H2_MAX_STREAMS concurrent streams (SETTINGS), the
 * client keeps at most MESH_H2_CLIENT_INFLIGHT message requests open; messages queued with
 * mesh_h2_send are bounded by MESH_H2_MAX_QUEUED_BYTES (MESH_ERR_AGAIN).
 *
 * Not thread-safe; one object per connection. Callbacks run inside mesh_h2_recv and
 * mesh_h2_pull; they may call mesh_h2_send but not mesh_h2_free.
 */
#ifndef MESH_CORE_H2_H
#define MESH_CORE_H2_H

#include <stddef.h>
#include <stdint.h>

#include "meshara/env.h"

enum mesh_h2_limits {
    MESH_H2_MAX_STREAMS = 100,          /* SETTINGS_MAX_CONCURRENT_STREAMS we announce */
    MESH_H2_CLIENT_INFLIGHT = 64,       /* message requests a client keeps open at once */
    MESH_H2_RECV_BUDGET_FACTOR = 2,     /* partial request bodies, in units of max_message */
    MESH_H2_MAX_QUEUED_BYTES = 4 << 20, /* mesh_h2_send refuses beyond this (unless empty) */
    MESH_H2_MSG_OVERHEAD = 64,          /* queue accounting per message, so empty ones count */
    MESH_H2_PULL_MAX = 64 << 10,        /* bytes one mesh_h2_pull hands out at most */
    MESH_H2_MAX_AUTHORITY = 255,        /* length of the :authority value */
    MESH_H2_MAX_PEER_RESETS = 1000,     /* RST_STREAMs a server takes per connection */
    MESH_H2_PAD_MAX = 255,              /* padding bytes one DATA frame carries at most */
    MESH_H2_PING_LEN = 8,               /* a PING frame's opaque data (RFC 9113 §6.7) */
};

/* :authority until mesh_h2_set_authority says otherwise (the session's default SNI). */
#define MESH_H2_DEFAULT_AUTHORITY "meshara.node"

typedef struct mesh_h2 mesh_h2;

typedef struct mesh_h2_cbs {
    /* One whole message arrived (data borrowed until the callback returns). Return MESH_OK,
     * or an error code to fail the connection (mesh_h2_recv then returns it). */
    int (*on_message)(void *ud, const uint8_t *data, size_t len);
    /* Optional: the ACK of a PING we sent (mesh_h2_ping) arrived, with its opaque data.
     * (nghttp2 answers the peer's PINGs itself.) */
    void (*on_ping_ack)(void *ud, const uint8_t opaque[MESH_H2_PING_LEN]);
} mesh_h2_cbs;

/* is_server: 1 on the accepting side. max_message: largest message accepted or sent
 * (1 ... MESH_FRAME_ABS_MAX: event frames are frame.h frames). cbs copied (on_message required); ud
 * passed to it. MESH_OK, MESH_ERR_INVAL, MESH_ERR_NOMEM (*out untouched on failure). Free with
 * mesh_h2_free. The server queues its SETTINGS at once; the client queues its connection preface,
 * SETTINGS and the /api/v1/events request, materialised at the first mesh_h2_pull (so that
 * mesh_h2_set_authority can still change the :authority). */
int mesh_h2_new(mesh_h2 **out, int is_server, size_t max_message, const mesh_h2_cbs *cbs, void *ud);
/* The web profile's variant (docs/protocol.md, "HTTP/2"). Client: its first message (the
 * hello) is the body of the events request, which it sends first, with the headers curl
 * sends for a POST; message requests follow once that body is out. Server: its first
 * SETTINGS and WINDOW_UPDATE are nginx's (so its first record is nginx's), an events request's
 * body is collected and handed to on_message like a message's (the client's hello), and
 * after it the server announces its own stream window (nginx's 64 KiB would cap a message
 * stream at 64 KiB per round trip). Same codes as mesh_h2_new. */
int mesh_h2_new_web(mesh_h2 **out, int is_server, size_t max_message, const mesh_h2_cbs *cbs,
                    void *ud);
void mesh_h2_free(mesh_h2 *h); /* NULL: no-op */
/* Web server: n SETTINGS ACKs were already sent to the client on our behalf (the first-request
 * classifier acks the client's SETTINGS as nginx would, before this object saw them): drop
 * the next n that nghttp2 produces. NULL: no-op. */
void mesh_h2_skip_acks(mesh_h2 *h, unsigned n);

/* Pad the DATA frames we send (RFC 9113 §6.1, nghttp2's select_padding callback): each
 * carries the PADDED flag and r padding bytes, r drawn uniformly in [0, max_pad] from env's
 * randomness (env borrowed: it must outlive h), fewer when the frame's size limit or the flow
 * control window leaves less room. max_pad 0 or env NULL: no padding (the default). HEADERS
 * are never padded. MESH_OK; MESH_ERR_INVAL (h NULL, max_pad > MESH_H2_PAD_MAX). */
int mesh_h2_set_padding(mesh_h2 *h, const mesh_env *env, unsigned max_pad);
/* Queue a PING with opaque (copied); its ACK comes to on_ping_ack. MESH_OK; MESH_ERR_INVAL;
 * MESH_ERR_CLOSED (the connection failed); MESH_ERR_NOMEM. Pull to send it. */
int mesh_h2_ping(mesh_h2 *h, const uint8_t opaque[MESH_H2_PING_LEN]);

/* Client: the :authority of every request (copied; e.g. the session's SNI). Call before the
 * first mesh_h2_pull. MESH_OK; MESH_ERR_INVAL (NULL, empty, longer than
 * MESH_H2_MAX_AUTHORITY or not host[:port] characters; or on a server); MESH_ERR_STATE
 * (requests already built). */
int mesh_h2_set_authority(mesh_h2 *h, const char *authority);

/* Feed plaintext bytes from the peer. MESH_OK; MESH_ERR_PROTOCOL (HTTP/2 violation, a
 * non-200 answer to our request, the peer's GOAWAY with an error code, or our events stream
 * closed by the server); MESH_ERR_CLOSED (the peer's GOAWAY without error: it is going away);
 * MESH_ERR_TOO_BIG; MESH_ERR_LIMIT (too many request bytes in flight at once);
 * MESH_ERR_NOMEM; or what on_message returned. Any error is final: the same code is returned
 * by every later mesh_h2_recv; call mesh_h2_pull until 0 to flush our GOAWAY, then close.
 * Some violations nghttp2 catches itself (a malformed SETTINGS frame, say) on a server
 * surface one step later: recv returns MESH_OK, and the mesh_h2_pull after the one that hands
 * out nghttp2's GOAWAY returns MESH_ERR_PROTOCOL (and so does every later recv). */
int mesh_h2_recv(mesh_h2 *h, const uint8_t *data, size_t len);
/* Queue one message (copied). MESH_OK; MESH_ERR_INVAL; MESH_ERR_TOO_BIG (len > max_message);
 * MESH_ERR_AGAIN (over MESH_H2_MAX_QUEUED_BYTES queued: pull, let the peer read, retry; a
 * message is always accepted into an empty queue); MESH_ERR_NOMEM; MESH_ERR_CLOSED (the
 * connection failed). On a server, messages sent before the client's events request arrives
 * wait for it (MESH_OK). */
int mesh_h2_send(mesh_h2 *h, const uint8_t *data, size_t len);
/* Bytes to send to the peer: *data points at them (borrowed, valid until the next call on
 * h). Returns the length (0 = nothing now, at most MESH_H2_PULL_MAX) or a negative MESH_ERR_*:
 * MESH_ERR_INVAL; MESH_ERR_NOMEM (nothing changed, retry); or a connection failure not yet
 * returned by mesh_h2_recv (codes as there; reported once, keep pulling until 0 to flush the
 * GOAWAY, then close). Call until 0 after every recv/send. */
long mesh_h2_pull(mesh_h2 *h, const uint8_t **data);
/* Bytes of messages queued but not yet handed out by mesh_h2_pull (for backpressure). */
size_t mesh_h2_queued(const mesh_h2 *h);

#endif
