/* session.h — one authenticated Meshara session over one env stream (sans-I/O).
 *
 * Lifecycle (mesh_session_state):
 *
 *   CONNECTING ──TCP up──▶ HANDSHAKING ──TLS 1.3 done──▶ AUTHENTICATING ──peer hello ok──▶
 *   CONNECTED ──▶ CLOSING ──▶ CLOSED
 *
 * Any state may go to CLOSING: the reason is recorded (MESH_OK for an orderly close by either
 * side, else the MESH_ERR_* that ended it), the stream is released, and on_closed runs from a
 * later timer event (never from inside a mesh_session_* call) — then the state is CLOSED.
 * A session accepted from a listener, or connected over a stream already up
 * (mesh_session_connect_stream), starts in HANDSHAKING.
 *
 * Authentication. When TLS completes, each side sends Envelope{Hello{protocol_version,
 * public_key, role, signature}} where signature = Ed25519 over
 *     "meshara-hello-v1" || role (1 byte: 1 client, 2 server) || exporter (32 bytes),
 * exporter = SSL_export_keying_material(label "EXPORTER-meshara-hello", no context). The
 * exporter is unique to this TLS session, so a hello relayed by a middleman who terminates
 * TLS on both sides does not verify (MESH_ERR_BAD_SIGNATURE). The receiver checks, in order:
 * first message is a hello (else MESH_ERR_PROTOCOL), protocol_version (MESH_ERR_VERSION), the
 * role is the peer's (MESH_ERR_PROTOCOL), the signature under the hello's own key
 * (MESH_ERR_BAD_SIGNATURE), and then the pinned key if one was given (MESH_ERR_KEY_MISMATCH).
 * CONNECTED = our hello sent and the peer's verified. Peer node id = SHA-256(peer key).
 * A server's hello also says where it saw the client's connection come from
 * (observed_address, the accepted stream's remote address): the client keeps it when it
 * parses (mesh_session_observed_addr), and ignores it otherwise — a hint, not a check.
 *
 * Messages. Envelope → mesh_wire_encode → mesh_pad_encode → 4-byte frame prefix, all inside
 * TLS; the receive path undoes it in reverse (frame decoder → pad decode → wire decode), and
 * any failure closes the session with that code. The frame decoder is frame.h's, the only
 * one (pull mode: TLS opens records straight into its buffer, frames are handed out in
 * place); AppData takes the fast path of appdata.h both ways (streamed into TLS without
 * building the frame; viewed in place instead of copied by protobuf-c, for exactly the
 * envelopes protobuf-c would decode to the same values); everything else is wire.h's. The
 * state machine is session.c, the bytes path session_io.c. Failure codes: MESH_ERR_TOO_BIG
 * for an oversize prefix, MESH_ERR_MALFORMED, MESH_ERR_VERSION, MESH_ERR_TRUNCATED when the
 * stream ends mid-frame or mid-record. Heartbeats and the hello are handled here; every other
 * envelope goes to on_message.
 *
 * HTTP/2 mode. When TLS negotiated ALPN "h2" (mesh_session_cfg.http2 on the client), each
 * padded envelope travels as one HTTP/2 message instead (h2.h: client→server as POST
 * /api/v1/message bodies, server→client in the /api/v1/events response), the hello first like
 * any other; everything else — hello, heartbeats, timeouts, backpressure — is the same. The
 * HTTP/2 layer's own queue counts in mesh_session_queued(). In the web profile (a web TLS
 * context) the envelope travels bare, without pad.h's layout: nghttp2 pads each DATA frame
 * with 0..MESH_SESSION_WEB_PAD_MAX bytes drawn from env randomness instead; and liveness is
 * by HTTP/2 PINGs (below).
 *
 * Liveness. CONNECTED sessions send Heartbeat{seq, sent_at} every heartbeat_interval,
 * jittered uniformly by ±MESH_SESSION_HEARTBEAT_JITTER_PCT % from env randomness (a fixed
 * period would be a traffic signature); a heartbeat is answered at once with reply=1 echoing
 * seq and sent_at, which gives the RTT. Both sides send their own heartbeats, so each learns
 * the other is alive from the peer's timer, whatever its own send queue holds. In the web
 * profile's HTTP/2 a side sends an HTTP/2 PING instead, and only once nothing arrived from
 * the peer for a drawn silence: heartbeat_interval +-MESH_SESSION_WEB_PING_JITTER_PCT % on a
 * client, MESH_SESSION_WEB_SERVER_PING_NUM/DEN of that on a server (so a live client is the
 * one that pings, as browsers do); the peer's nghttp2 ACKs it and the ACK gives the RTT
 * (heartbeats_sent / heartbeat_replies count PINGs and their ACKs). A peer from
 * which no byte arrived for heartbeat_timeout is closed with MESH_ERR_TIMEOUT at exactly
 * last-byte time + heartbeat_timeout.
 *
 * Timeouts (from the state's start): connect (CONNECTING), handshake (HANDSHAKING: a client
 * that connects and sends nothing is closed then), auth (AUTHENTICATING). All
 * MESH_ERR_TIMEOUT.
 *
 * Backpressure. queued = bytes accepted by the session but not yet handed to the network by
 * the driver (env stream_pending). While queued >= send_queue_max, mesh_session_send()
 * returns MESH_ERR_AGAIN and nothing is dropped; on_writable runs once the driver has sent
 * everything queued. A single message is accepted whole even when it takes queued above the
 * limit.
 *
 * Callbacks run only from env events. Inside any of them the application may call any
 * mesh_session_* function, including mesh_session_free() on this very session.
 */
#ifndef MESH_CORE_SESSION_H
#define MESH_CORE_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "core/identity.h"
#include "core/tls.h"
#include "core/wire.h"
#include "meshara/env.h"

typedef enum mesh_session_state {
    MESH_SESSION_CONNECTING = 0,
    MESH_SESSION_HANDSHAKING = 1,
    MESH_SESSION_AUTHENTICATING = 2,
    MESH_SESSION_CONNECTED = 3,
    MESH_SESSION_CLOSING = 4,
    MESH_SESSION_CLOSED = 5,
} mesh_session_state;

enum mesh_session_limits {
    MESH_SESSION_PROTOCOL_VERSION = 1,
    MESH_SESSION_EXPORTER_LEN = 32,
    MESH_SESSION_ROLE_CLIENT = 1, /* = Meshara__Wire__Role ROLE_CLIENT */
    MESH_SESSION_ROLE_SERVER = 2,
    MESH_SESSION_DEFAULT_CONNECT_TIMEOUT_MS = 10000,
    MESH_SESSION_DEFAULT_HANDSHAKE_TIMEOUT_MS = 10000,
    MESH_SESSION_DEFAULT_AUTH_TIMEOUT_MS = 10000,
    MESH_SESSION_WEB_HANDSHAKE_TIMEOUT_MS = 60000, /* web-profile servers: nginx's */
    MESH_SESSION_DEFAULT_HEARTBEAT_MS = 30000,
    MESH_SESSION_HEARTBEAT_JITTER_PCT = 10,
    /* Web profile (HTTP/2 PINGs, see Liveness): a client pings after heartbeat_interval
     * +-15 % of silence, a server after 3/2 of that; DATA frames carry 0..255 random padding
     * bytes (docs/stealth.md). */
    MESH_SESSION_WEB_PING_JITTER_PCT = 15,
    MESH_SESSION_WEB_SERVER_PING_NUM = 3,
    MESH_SESSION_WEB_SERVER_PING_DEN = 2,
    MESH_SESSION_WEB_PAD_MAX = 255,
    /* Default heartbeat_timeout = interval * 5/2: a live peer's own heartbeats are at most
     * 1.1 intervals apart, so this survives one lost or late heartbeat plus a margin. */
    MESH_SESSION_HEARTBEAT_TIMEOUT_NUM = 5,
    MESH_SESSION_HEARTBEAT_TIMEOUT_DEN = 2,
    MESH_SESSION_DEFAULT_SEND_QUEUE_MAX = 4 << 20,
    MESH_SESSION_HELLO_CONTEXT_LEN = 16, /* strlen(MESH_SESSION_HELLO_CONTEXT) */
};

#define MESH_SESSION_HELLO_CONTEXT "meshara-hello-v1"
#define MESH_SESSION_EXPORTER_LABEL "EXPORTER-meshara-hello"
#define MESH_SESSION_H2_ALPN "h2"

/* Zero fields take the defaults above. Times in ns. */
typedef struct mesh_session_cfg {
    mesh_time connect_timeout, handshake_timeout, auth_timeout;
    mesh_time heartbeat_interval;
    mesh_time heartbeat_timeout; /* 0 = interval * 5/2 */
    size_t send_queue_max;       /* bytes */
    size_t max_frame;            /* largest frame accepted or sent; 0 = MESH_FRAME_DEFAULT_MAX */
    /* Client: offer only ALPN "h2" and carry messages over HTTP/2 (h2.h). A server runs
     * HTTP/2 whenever "h2" was negotiated, so its TLS context must list it to allow it. */
    int http2;
    /* Client: the server name this connection gives (mesh_tls_set_server_name: the SNI of a
     * web-profile client and its :authority), borrowed during mesh_session_connect* only;
     * NULL = the TLS context's default. Ignored by a server. */
    const char *server_name;
    /* Web-profile servers: the decoy's upstreams (docs/stealth.md), family MESH_AF_NONE for
     * none: web_upstream for connections that are not HTTP/2 over TLS 1.3 (HTTP/1.x),
     * web_upstream_h2 (HTTP/2 with prior knowledge) for HTTP/2 ones. */
    mesh_addr web_upstream, web_upstream_h2;
    /* Client (mesh_session_connect): connect from this local address when its port is set and
     * the env has connect_from — the listening port, so that the server sees (and its hello
     * reports) the NAT mapping the listener's port has, which hole punching offers; if that
     * fails at once, or port 0, from any port. */
    mesh_addr local;
} mesh_session_cfg;

typedef struct mesh_session mesh_session;

typedef struct mesh_session_stats {
    uint64_t bytes_sent, bytes_received;         /* on the stream: TLS records, all overheads */
    uint64_t msgs_sent, msgs_received;           /* envelopes: hello and heartbeats included */
    uint64_t heartbeats_sent, heartbeat_replies; /* web profile's HTTP/2: PINGs, their ACKs */
    mesh_time rtt_last, rtt_smoothed;         /* from heartbeat replies (RFC 6298 1/8); 0 = none */
    mesh_time created_at, connected_at;       /* connected_at 0 until CONNECTED */
    mesh_time last_sent_at, last_received_at; /* last used; 0 = never */
} mesh_session_stats;

/* Any member may be NULL. */
typedef struct mesh_session_cbs {
    /* CONNECTED: the peer's key is verified (mesh_session_peer_key). */
    void (*on_connected)(mesh_session *s, void *ud);
    /* An envelope other than hello/heartbeat; e is borrowed until the callback returns. */
    void (*on_message)(mesh_session *s, const mesh_envelope *e, void *ud);
    /* After MESH_ERR_AGAIN: everything queued has gone to the network. */
    void (*on_writable)(mesh_session *s, void *ud);
    /* The session is CLOSED with reason (mesh_session_reason). Runs once, unless the session
     * was freed first. The session stays valid until mesh_session_free(). */
    void (*on_closed)(mesh_session *s, int reason, void *ud);
    /* Web-profile server: the client's first request is not a Meshara hello (or it speaks
     * no HTTP/2 over TLS 1.3): the connection is the decoy's from now on and never becomes
     * CONNECTED; on_closed follows when it ends (reason MESH_ERR_CLOSED when either side
     * closed it, MESH_ERR_TIMEOUT ...). */
    void (*on_decoy)(mesh_session *s, void *ud);
} mesh_session_cbs;

/* Connect to `to` as a client over env (borrowed, must outlive the session), with the node's
 * TLS context tls (borrowed, likewise). pinned: the peer's expected 32-byte key (copied) or
 * NULL to accept any proven key. cfg NULL = defaults (copied); cbs copied, ud passed back.
 * The caller owns *out and frees it with mesh_session_free(). MESH_OK; MESH_ERR_INVAL;
 * MESH_ERR_NOMEM; MESH_ERR_TLS; or the env's immediate connect failure (MESH_ERR_INVAL,
 * MESH_ERR_NOMEM). Failures after this returns come through on_closed. */
int mesh_session_connect(mesh_session **out, const mesh_env *env, mesh_tls_ctx *tls,
                         const mesh_addr *to, const uint8_t *pinned, const mesh_session_cfg *cfg,
                         const mesh_session_cbs *cbs, void *ud);
/* Adopt a stream handed to an accept callback (call it from inside that callback: it sets
 * the stream's callbacks). The session owns the stream from then on, also on failure
 * (the stream is closed). MESH_OK; MESH_ERR_INVAL; MESH_ERR_NOMEM; MESH_ERR_TLS. */
int mesh_session_accept(mesh_session **out, const mesh_env *env, mesh_tls_ctx *tls,
                        mesh_stream *stream, const mesh_session_cfg *cfg,
                        const mesh_session_cbs *cbs, void *ud);
/* Connect as a client over stream, a stream of env already connected (a relay circuit's or a
 * TURN data connection's virtual stream, vstream.h): the session starts in HANDSHAKING and
 * writes its ClientHello before returning; the stream's callbacks are replaced. It owns the
 * stream from then on, also on failure (the stream is closed). The end-to-end TLS and the
 * exporter-bound hello are the same as over TCP, so whatever carries the stream sees only
 * ciphertext, and an altered byte fails the session (MESH_ERR_TLS), never reaches on_message.
 * pinned, cfg, cbs, ud as mesh_session_connect (connect_timeout unused). MESH_OK;
 * MESH_ERR_INVAL; MESH_ERR_NOMEM; MESH_ERR_TLS. */
int mesh_session_connect_stream(mesh_session **out, const mesh_env *env, mesh_tls_ctx *tls,
                                mesh_stream *stream, const uint8_t *pinned,
                                const mesh_session_cfg *cfg, const mesh_session_cbs *cbs, void *ud);
/* Test and fuzzing hook: mesh_session_accept over a clone of established (a server's
 * mesh_tls right after its handshake, with tls's context: mesh_tls_clone), as if that
 * handshake had just been run on the stream: the session starts AUTHENTICATING, with its hello
 * sent (HTTP/2 started first if "h2" was negotiated). A fuzz target gets a fresh session per
 * input without paying for a handshake each time. Returns like mesh_session_accept;
 * MESH_ERR_STATE if established is not in that state. */
int mesh_session_accept_clone(mesh_session **out, const mesh_env *env, mesh_tls_ctx *tls,
                              mesh_stream *stream, const mesh_tls *established,
                              const mesh_session_cfg *cfg, const mesh_session_cbs *cbs, void *ud);
/* Release everything at once: an open stream is aborted (RST), no callback follows. Allowed
 * inside the session's own callbacks. NULL: no-op. */
void mesh_session_free(mesh_session *s);
/* Replace callbacks and user data (cbs copied), e.g. when a server hands a session over. */
void mesh_session_set_cbs(mesh_session *s, const mesh_session_cbs *cbs, void *ud);

/* Send one envelope (encoded at once; e is not kept). MESH_OK; MESH_ERR_AGAIN (queue full:
 * wait for on_writable); MESH_ERR_STATE (not CONNECTED); MESH_ERR_TOO_BIG (padded frame
 * above max_frame); MESH_ERR_INVAL (no body, or a hello/heartbeat: those are the session's);
 * MESH_ERR_NOMEM (nothing sent; the session goes on). MESH_ERR_CLOSED / MESH_ERR_TLS: the
 * stream or TLS broke; the session is closing with that reason and on_closed follows. */
int mesh_session_send(mesh_session *s, const mesh_envelope *e);
/* Convenience: send AppData{msg_id, payload}. Same codes. */
int mesh_session_send_data(mesh_session *s, uint64_t msg_id, const uint8_t *data, size_t len);
/* Orderly close: Goodbye{MESH_OK}, TLS close_notify, then FIN after the queued bytes.
 * Reason MESH_OK; on_closed follows. MESH_OK, or MESH_ERR_STATE when already closing. */
int mesh_session_close(mesh_session *s);

mesh_session_state mesh_session_get_state(const mesh_session *s);
/* MESH_OK or the MESH_ERR_* that closed it (meaningful from CLOSING on). */
int mesh_session_reason(const mesh_session *s);
/* The reason the peer gave in its Goodbye (MESH_OK if none came). */
int mesh_session_peer_reason(const mesh_session *s);
/* 1 for the side that connected, 0 for the accepting side. */
int mesh_session_is_client(const mesh_session *s);
/* Borrowed, valid as long as s; NULL before CONNECTED. */
const uint8_t *mesh_session_peer_key(const mesh_session *s); /* MESH_PUBKEY_LEN bytes */
const uint8_t *mesh_session_peer_id(const mesh_session *s);  /* MESH_NODE_ID_LEN bytes */
/* Negotiated ALPN ("" before TLS completes). Borrowed. */
const char *mesh_session_alpn(const mesh_session *s);
/* The peer's address (zeroed if unknown). */
mesh_addr mesh_session_peer_addr(const mesh_session *s);
/* Client, once CONNECTED: our address as the server saw it (its hello's observed_address),
 * and (local, may be NULL) the stream's local address it translates. MESH_OK;
 * MESH_ERR_NOT_FOUND (a server, not connected yet, none or unparsable sent, or of another
 * family than the stream's). */
int mesh_session_observed_addr(const mesh_session *s, mesh_addr *observed, mesh_addr *local);
/* Bytes queued towards the peer (see Backpressure). */
size_t mesh_session_queued(const mesh_session *s);
void mesh_session_get_stats(const mesh_session *s, mesh_session_stats *out);
const char *mesh_session_state_name(mesh_session_state st);

/* ---- message builders and parsers (used by the session; exposed for tests and fuzzing) -- */

/* A complete frame for e: 4-byte prefix + pad(wire(e)), malloc'd (caller frees).
 * MESH_OK; MESH_ERR_TOO_BIG (frame above max_frame; 0 = MESH_FRAME_DEFAULT_MAX);
 * MESH_ERR_INVAL; MESH_ERR_NOMEM. */
int mesh_session_frame_create(const mesh_envelope *e, size_t max_frame, uint8_t **out,
                              size_t *outlen);
/* One frame's payload (what the frame decoder hands out) back to an envelope, freed with
 * mesh_wire_free(). MESH_OK; MESH_ERR_TRUNCATED / MESH_ERR_MALFORMED (padding, protobuf,
 * field sizes); MESH_ERR_VERSION; MESH_ERR_NOMEM. */
int mesh_session_frame_consume(const uint8_t *payload, size_t len, mesh_envelope **out);
/* The hello of identity id for role (MESH_SESSION_ROLE_*) on a session whose exporter value
 * is given, as a complete frame (like mesh_session_frame_create). observed (NULL or
 * MESH_AF_NONE: none) is the address the peer's connection came from, sent as
 * Hello.observed_address (a server sends it). MESH_OK; MESH_ERR_INVAL; MESH_ERR_CRYPTO;
 * MESH_ERR_NOMEM. */
int mesh_hello_create(const mesh_identity *id, int role,
                      const uint8_t exporter[MESH_SESSION_EXPORTER_LEN], const mesh_addr *observed,
                      uint8_t **out, size_t *outlen);
/* Check a received envelope as the hello of a peer in peer_role, in the order given at the
 * top of this file; pinned may be NULL. On MESH_OK the proven key is copied to peer_key.
 * MESH_OK; MESH_ERR_PROTOCOL; MESH_ERR_VERSION; MESH_ERR_MALFORMED; MESH_ERR_BAD_SIGNATURE;
 * MESH_ERR_KEY_MISMATCH; MESH_ERR_NOMEM or MESH_ERR_CRYPTO (the signature could not be
 * checked: resources, never reported as a bad signature). */
int mesh_hello_consume(const mesh_envelope *e, int peer_role,
                       const uint8_t exporter[MESH_SESSION_EXPORTER_LEN], const uint8_t *pinned,
                       uint8_t peer_key[MESH_PUBKEY_LEN]);

#endif
