/* session_pair.h — a server session (session.h) on a hand-driven env, facing a raw client:
 * a mesh_tls of its own that writes whatever plaintext a test wants, through real TLS
 * records, into the session's real receive path. No sockets, no simulator, no timers (they
 * never fire), so a test or a fuzz target drives every byte itself.
 *
 * Deterministic: the env's randomness is a seeded xorshift and the identities are fixed, so
 * every pair made by mesh_pair_start has the same handshake bytes and the same exporter
 * value (a seed file can carry a client hello that verifies). Not thread-safe: the fake
 * stream and timer handles are shared by all pairs (one pair at a time). Test code.
 */
#ifndef MESH_TEST_SESSION_PAIR_H
#define MESH_TEST_SESSION_PAIR_H

#include <stddef.h>
#include <stdint.h>

#include "core/identity.h"
#include "core/session.h"
#include "core/tls.h"
#include "mesh_test.h"

enum mesh_pair_limits {
    MESH_PAIR_MAX_MSGS = 256, /* envelopes kept by on_message; later ones are counted only */
};

typedef struct mesh_pair {
    mesh_test_env te;
    mesh_env_ops ops;
    mesh_env env;
    mesh_stream *stream;  /* the fake stream the session owns */
    mesh_stream_cbs scbs; /* the session's stream callbacks */
    void *sud;
    int stream_closed;
    mesh_test_buf to_client, to_server; /* ciphertext in flight */
    mesh_identity *id_s, *id_c;
    mesh_tls_ctx *ctx_s, *ctx_c;
    mesh_session *srv;
    mesh_tls *cli;
    uint8_t exporter[MESH_SESSION_EXPORTER_LEN]; /* of this TLS session (client side) */
    int connected, closed;
    mesh_test_buf msgs[MESH_PAIR_MAX_MSGS]; /* envelopes given to on_message, re-encoded */
    size_t nmsgs;                           /* kept in msgs (reset it to reuse them) */
    size_t msgs_total;                      /* given to on_message */
    int reencode_error;                     /* an envelope on_message got did not re-encode */
    /* mesh_pair_renew's templates, by h2: a server and a client connection right after one
     * handshake, and the client's hello for their exporter (made on first use). */
    mesh_tls *tmpl_srv[2], *tmpl_cli[2];
    mesh_test_buf tmpl_hello[2];
} mesh_pair;

/* Handshake between a new server session and the raw client (offering only ALPN "h2" when
 * h2); with hello, the client's hello too, so the session is CONNECTED, else it waits in
 * AUTHENTICATING. MESH_OK, or the first failure (the pair is then stopped). */
int mesh_pair_start(mesh_pair *p, int h2, int hello);
/* A new connection between the same two identities and TLS contexts (made once by
 * mesh_pair_start: making them is most of the cost), with the same randomness: the same
 * handshake, the same exporter. The old session is freed. Returns like mesh_pair_start. */
int mesh_pair_reconnect(mesh_pair *p, int h2, int hello);
/* mesh_pair_reconnect without the handshake: the session (mesh_session_accept_clone) and the
 * client (mesh_tls_clone) are clones of one connection handshaken on first use with
 * reconnect's randomness, so they have reconnect's exporter and hello; only the handshake
 * code itself does not run. What a fuzz target calls per input. Returns like
 * mesh_pair_start. */
int mesh_pair_renew(mesh_pair *p, int h2, int hello);
/* Free everything (p can be started again). */
void mesh_pair_stop(mesh_pair *p);
/* The client writes len plaintext bytes, as TLS writes of at most chunk bytes (0: one). */
int mesh_pair_write(mesh_pair *p, const uint8_t *data, size_t len, size_t chunk);
/* Move bytes both ways until neither side has anything more to say; the session's input is
 * cut into pieces of at most piece bytes (0: as written). What the server sends is opened
 * and dropped. */
void mesh_pair_pump(mesh_pair *p, size_t piece);

#endif
