/* session_io.h — internal to the session module: the session object both halves share, and
 * the calls between them. Nothing outside session.c and session_io.c includes this.
 *
 * session.c is the state machine (states, timers, hello, heartbeats, teardown, env
 * callbacks, the API of session.h). session_io.c is the bytes path between TLS plaintext and
 * envelopes, in framed mode (frame.h, pad.h, wire.h, with appdata.h's fast path) and in
 * HTTP/2 mode (h2.h), and the TLS sink that hands records to the env stream.
 */
#ifndef MESH_CORE_SESSION_IO_H
#define MESH_CORE_SESSION_IO_H

#include "core/frame.h"
#include "core/h2.h"
#include "core/session.h"

struct mesh_session {
    mesh_env env;
    mesh_tls_ctx *tls_ctx;
    mesh_tls *tls;
    mesh_h2 *h2; /* HTTP/2 mode (ALPN "h2"), else NULL: 4-byte frames */
    mesh_stream *stream;
    mesh_timer *timer;
    mesh_session_cbs cbs;
    void *ud;
    mesh_session_cfg cfg;
    mesh_session_state state;
    int reason, peer_reason;
    int is_client;
    int has_pin;
    int depth, freed;
    int in_h2;          /* inside mesh_h2_recv: nghttp2 must not be re-entered to send */
    int close_after_h2; /* ended (gracefully) inside mesh_h2_recv: close when it returns */
    int want_writable;
    int write_err;
    int orderly;       /* the peer said goodbye or sent close_notify */
    int authenticated; /* the peer's hello verified: peer_key valid */
    int hello_sent;    /* ours went out (a framed-mode server sends it at 0.5-RTT) */
    uint8_t pinned[MESH_PUBKEY_LEN];
    uint8_t peer_key[MESH_PUBKEY_LEN];
    uint8_t peer_id[MESH_NODE_ID_LEN];
    mesh_addr peer_addr;
    mesh_addr observed; /* client: our address as the server saw it (its hello) */
    mesh_addr local;    /* client: the stream's local address when the hello came */
    int has_observed;
    /* Framed mode, receiving: TLS opens its records straight into the decoder's buffer (pull
     * mode, frame.h); max = cfg.max_frame. Freed while idle (mesh_session_io_trim). */
    mesh_frame_dec rx;
    mesh_time phase_start; /* when the current state began */
    mesh_time next_hb;
    uint64_t hb_seq;
    mesh_session_stats st;
};

static inline mesh_time mesh_session_now(const mesh_session *s)
{
    return mesh_env_now(&s->env);
}

/* 1 when processing must stop: freed by a callback, or closing. */
static inline int mesh_session_stopped(const mesh_session *s)
{
    return s->freed || s->state >= MESH_SESSION_CLOSING;
}

/* ---- session.c, called by the bytes path ------------------------------------------------ */

/* One envelope from the peer. MESH_OK to go on, or a code that ends the session. */
int mesh_session_dispatch(mesh_session *s, const mesh_envelope *e);
/* Release the stream: Goodbye (if goodbye) and close_notify first unless abort_stream or a
 * write failed, then FIN (or RST when abort_stream). No-op once released. */
void mesh_session_release_stream(mesh_session *s, int abort_stream, int goodbye);

/* ---- session_io.c, called by the state machine ------------------------------------------ */

/* The TLS sink (mesh_tls_new's out, mesh_tls_set_reserve's reserve/commit); ud = session. */
void mesh_session_io_tls_out(void *ud, const uint8_t *data, size_t len);
uint8_t *mesh_session_io_tls_reserve(void *ud, size_t len);
void mesh_session_io_tls_commit(void *ud, size_t len);
/* One frame (4-byte prefix + padded envelope) to the peer: through TLS as it is, or in
 * HTTP/2 mode the padded envelope as one HTTP/2 message. Inside mesh_h2_recv the message is
 * only queued (flushed when it returns). MESH_OK or the write failure. */
int mesh_session_io_write_frame(mesh_session *s, const uint8_t *frame, size_t len);
/* Encode and send an envelope now (no queue check). MESH_OK; MESH_ERR_TOO_BIG;
 * MESH_ERR_INVAL; MESH_ERR_NOMEM (nothing sent); MESH_ERR_AGAIN (HTTP/2's queue); a write
 * failure (the stream or TLS is broken). */
int mesh_session_io_send(mesh_session *s, const mesh_envelope *e);
/* Start HTTP/2 mode (ALPN "h2" negotiated). MESH_OK, MESH_ERR_NOMEM, MESH_ERR_INVAL. */
int mesh_session_io_h2_start(mesh_session *s);
/* The plaintext TLS has, through the frame decoder or nghttp2, each envelope to
 * mesh_session_dispatch. MESH_OK when TLS has nothing more to give; MESH_ERR_CLOSED at the
 * peer's close_notify (or GOAWAY without error); else the code that ends the session. Check
 * mesh_session_stopped() after: a callback may have closed or freed the session. */
int mesh_session_io_input(mesh_session *s);
/* Bytes of an unfinished frame held: non-zero at the end of the stream = truncated. */
size_t mesh_session_io_partial(const mesh_session *s);
/* At the end of an input event: an idle session holds no receive buffer (see session_io.c). */
void mesh_session_io_trim(mesh_session *s);

#endif
