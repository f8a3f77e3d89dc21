/* vstream.h — virtual streams: an overlay env whose streams are not the driver's.
 *
 * A session runs over env streams. Some streams are not TCP connections of the driver: a relay
 * circuit (relay.h) carries a session's bytes inside two other sessions, a TURN data connection
 * carries them behind a server. The overlay env gives such streams to unchanged code: its
 * clock, randomness, log, timers and datagrams are the base env's (the same handles), its
 * stream ops act on virtual streams that a *provider* creates and feeds. It cannot listen or
 * connect (MESH_ERR_UNSUPPORTED; connect_from is NULL) and offers no local services: a
 * provider makes the streams.
 *
 * Provider side. mesh_vstream_open() makes a virtual stream bound to the provider's ops; the
 * provider then feeds it: mesh_vstream_push (bytes that arrived, in order), mesh_vstream_drained
 * (its pending count fell to 0), mesh_vstream_connected (a stream opened connecting has
 * connected), mesh_vstream_end (the far end closed, or the carrier broke). The provider's ops
 * are called only from inside the consumer's env calls (write from stream_write, pending from
 * stream_pending, close from stream_close) and, for delivered, from the stream's own timer:
 * never from inside a mesh_vstream_* provider call.
 *
 * Consumer side (the code that holds the stream through the overlay env, e.g. a session): the
 * five rules of env.h hold exactly.
 *  1. Everything the provider reports is queued in the stream and delivered from a base-env
 *     timer set to "now" (a later event at the same instant): never from inside an env call
 *     of the consumer, nor from inside a provider call. Order: on_connected, then the bytes
 *     (one on_data with all that is buffered), then on_writable, then on_closed once the
 *     bytes before the end were delivered. on_writable follows mesh_vstream_drained, and a
 *     stream_write after which the provider's pending count is 0 (it took the bytes at once).
 *     An accepted stream (connecting = 0) holds its reports until the consumer adopts it.
 *  2. The consumer may close the stream inside any of its callbacks: no callback follows.
 *  3. on_data's buffer is the stream's, valid for the call; stream_write hands the bytes to
 *     the provider's write, which copies them before returning.
 *  4. The consumer releases the stream with stream_close exactly once (the provider's close
 *     op then runs once, at once, and the provider must forget the handle), unless on_closed
 *     ran: the stream was released then (the provider gave it up at mesh_vstream_end).
 *  5. Times are the base env's.
 *
 * Memory: bytes pushed and not yet delivered are held in the stream; the provider bounds them
 * (a relay circuit by its window). Freeing the overlay env releases every stream still open
 * without any callback or provider op (as a driver's free does); it must not be called from
 * inside a callback of one of its streams.
 *
 * Not for several threads: like every env, one loop drives it.
 */
#ifndef MESH_CORE_VSTREAM_H
#define MESH_CORE_VSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "meshara/env.h"

typedef struct mesh_vstream_env mesh_vstream_env;

/* What a provider does for its streams; pud is the provider's per-stream pointer. */
typedef struct mesh_vstream_provider {
    /* Take len bytes (copy them) towards the far end: MESH_OK, or MESH_ERR_CLOSED when the
     * provider cannot carry them (the stream ends: report it with mesh_vstream_end). */
    int (*write)(void *pud, const uint8_t *data, size_t len);
    /* Bytes written and not yet handed on (the consumer's backpressure). */
    size_t (*pending)(void *pud);
    /* Optional: len bytes were delivered to the consumer's on_data (a window may reopen). */
    void (*delivered)(void *pud, size_t len);
    /* The consumer released the stream (how: enum mesh_close_how). The provider finishes or
     * aborts its side and never touches the handle again. */
    void (*close)(void *pud, int how);
} mesh_vstream_provider;

/* An overlay over base (copied; its driver object must outlive the overlay). MESH_OK;
 * MESH_ERR_INVAL; MESH_ERR_NOMEM. *out untouched on failure. */
int mesh_vstream_env_new(mesh_vstream_env **out, const mesh_env *base);
/* Release every stream still open (no callbacks, no provider ops), then the overlay. NULL:
 * no-op. */
void mesh_vstream_env_free(mesh_vstream_env *v);
/* The overlay as an env (valid as long as v). */
mesh_env mesh_vstream_env_env(mesh_vstream_env *v);
/* Virtual streams open now. */
size_t mesh_vstream_env_count(const mesh_vstream_env *v);

/* A new virtual stream of v, connected (connecting = 0: the consumer adopts it with
 * stream_set_cbs, as an accepted stream, and gets no on_connected) or connecting (1: until
 * mesh_vstream_connected; cbs and ud given here, as env connect takes them). local and remote
 * (copied; NULL = zero) are what stream_addrs reports. prov is borrowed (static storage). The
 * stream is the consumer's to release (rule 4). NULL on allocation failure (*err =
 * MESH_ERR_NOMEM) or a NULL argument (*err = MESH_ERR_INVAL). */
mesh_stream *mesh_vstream_open(mesh_vstream_env *v, const mesh_vstream_provider *prov, void *pud,
                               int connecting, const mesh_addr *local, const mesh_addr *remote,
                               const mesh_stream_cbs *cbs, void *ud, int *err);

/* ---- provider reports (never call back from inside; delivered later, rule 1) ------------- */

/* Bytes that arrived (copied). MESH_OK; MESH_ERR_STATE (the stream ended, was released or is
 * still connecting); MESH_ERR_INVAL (data NULL with len > 0, or an absurd length);
 * MESH_ERR_NOMEM (the bytes are lost: end the stream). */
int mesh_vstream_push(mesh_stream *s, const uint8_t *data, size_t len);
/* The provider's pending count fell to 0: on_writable follows (once per report). */
void mesh_vstream_drained(mesh_stream *s);
/* A stream opened connecting is connected: on_connected follows. */
void mesh_vstream_connected(mesh_stream *s);
/* The far end closed (reason MESH_OK: orderly, after the bytes pushed before) or the carrier
 * broke (MESH_ERR_RESET, MESH_ERR_REFUSED, MESH_ERR_TIMEOUT, ... as env.h's on_closed). The
 * provider lets go: no provider op is called for s after this returns, and s must not be
 * used by the provider again. */
void mesh_vstream_end(mesh_stream *s, int reason);

#endif
