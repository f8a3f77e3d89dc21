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

#include "core/decoy.h"
#include "core/frame.h"
#include "core/h2.h"
#include "core/session.h"

struct mesh_session {
    mesh_env env;
    mesh_tls_ctx *tls_ctx;
    mesh_tls *tls;
    mesh_h2 *h2; /* HTTP/2 mode (ALPN "h2"), else NULL: 4-byte frames */
    /* h2 is the web profile's: messages go unpadded (nghttp2 pads the DATA frames),
     * liveness by PINGs (session_live.c) */
    int h2_web;
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
    /* Web-profile server (session_web.c): until the client's first request is classified,
     * web_gate is set, its plaintext is kept in first and only nginx's frames go out; a
     * connection that is not a Meshara client's is the decoy's from then on (decoy_on; decoy
     * NULL when no upstream is configured: its bytes are read and dropped). */
    int web_gate, decoy_on;
    uint8_t *first;
    size_t first_len;
    unsigned acks_sent; /* SETTINGS ACKs sent in nginx's name while classifying */
    mesh_decoy *decoy;
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
    mesh_time hb_quiet;   /* web: the silence after which we ping (session_live.c) */
    mesh_time hb_sent_at; /* web: when our latest PING left; MESH_TIME_NEVER once acked */
    uint64_t hb_seq;
    mesh_session_stats st;
};

static inline mesh_time mesh_session_now(const mesh_session *s)
{
    return mesh_env_now(&s->env);
}

static inline mesh_time mesh_session_add_sat(mesh_time a, mesh_time b)
{
    return a > MESH_TIME_NEVER - b ? MESH_TIME_NEVER : a + b;
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

/* Enter CLOSING with reason (first reason wins): release the stream, schedule on_closed;
 * abort_stream: RST instead of a graceful FIN. */
void mesh_session_end(mesh_session *s, int reason, int abort_stream);
/* Our hello, once. MESH_OK or the code that ends the session. */
int mesh_session_send_hello(mesh_session *s);
/* A send returned rc: a broken stream or TLS ends the session (RST); encode failures and
 * MESH_ERR_AGAIN are the caller's. Returns rc. */
int mesh_session_after_send(mesh_session *s, int rc);
/* Entry from an env event that is not the session's own (the decoy's upstream): the depth
 * count of session.c's re-entrancy rule. leave returns 1 if s is gone. */
void mesh_session_enter(mesh_session *s);
int mesh_session_leave(mesh_session *s);

/* ---- session_web.c: a web-profile server before the client's hello verified ------------- */

/* TLS is done on a web-profile server: start the classification of the first request (h2,
 * TLS 1.3) or hand the connection to the decoy at once (any other protocol or version: never
 * a Meshara client). MESH_OK or the code that ends the session. */
int mesh_session_web_start(mesh_session *s);
/* The input path while web_gate or decoy_on (mesh_session_io_input's). Returns like it. */
int mesh_session_web_input(mesh_session *s);
/* The decoy's deadline from the phase start, while web_gate or decoy_on. */
mesh_time mesh_session_web_deadline(const mesh_session *s);
/* Release what the web path holds (decoy: its upstream gets a FIN). */
void mesh_session_web_release(mesh_session *s);

/* ---- session_live.c: liveness probes of a CONNECTED session ---------------------------- */

/* Just CONNECTED (phase_start): schedule the first probe (next_hb). */
void mesh_session_live_start(mesh_session *s);
/* The timer reached next_hb: probe if due (heartbeat, or PING after a silence), set the next
 * next_hb. MESH_OK or the send failure (the session is then closing). */
int mesh_session_live_tick(mesh_session *s, mesh_time now);
/* A heartbeat envelope from the peer: answer a probe, or take the RTT of a reply. */
void mesh_session_live_heartbeat(mesh_session *s, const Meshara__Wire__Heartbeat *hb);
/* mesh_h2_cbs.on_ping_ack (ud = session): the RTT of our latest PING. */
void mesh_session_live_ping_ack(void *ud, const uint8_t opaque[MESH_H2_PING_LEN]);

/* ---- session_io.c, called by the state machine ------------------------------------------ */

/* Everything nghttp2 wants to send, through TLS. MESH_OK or the failure. */
int mesh_session_io_h2_flush(mesh_session *s);
/* Plaintext to nghttp2 (HTTP/2 mode), then its answers through TLS. MESH_OK (check
 * mesh_session_stopped) or the code that ends the session. */
int mesh_session_io_h2_feed(mesh_session *s, const uint8_t *data, size_t len);

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
