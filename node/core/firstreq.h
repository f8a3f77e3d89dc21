/* firstreq.h — the web profile's first-request classifier: are the first decrypted bytes a
 * client sent a web server a Meshara client's hello, or anything else (a browser, curl, a
 * scanner, HTTP/1.1, garbage, half a hello, a hello that does not verify, HTTP/2 frames in an
 * order our client never sends)? Anything else is the decoy's (docs/stealth.md); the server
 * has sent nothing but what nginx sends before a request (its SETTINGS, a SETTINGS ack for
 * each of the client's) until the verdict.
 *
 * What a Meshara client sends (docs/protocol.md, "HTTP/2"): the connection preface, SETTINGS,
 * maybe WINDOW_UPDATE on stream 0, then stream 1: HEADERS (END_HEADERS, no CONTINUATION) of
 * `POST MESH_FIRSTREQ_PATH` over https, then its body in DATA frames up to END_STREAM: the
 * padded hello envelope, which `verify` checks (signature over this TLS session's exporter:
 * a hello copied from another connection does not verify). The classifier is stateless: it
 * reads the whole buffer each time (at most MESH_FIRSTREQ_MAX_BYTES, so a client trickling
 * bytes costs at most that per call) and decides as early as the bytes allow: the first byte
 * that cannot belong to that flight makes it OTHER.
 *
 * Frames accepted on the way (each checked as RFC 9113 and nginx check them, so that the
 * SETTINGS acks the server sends before the verdict are those nginx would send): SETTINGS
 * (stream 0, length a multiple of 6, valid values; an ACK with length 0), WINDOW_UPDATE
 * (length 4, non-zero increment, stream 0 or 1 once open). Any other type, stream or order is
 * OTHER. Nothing here allocates but the HPACK inflater and the body copy; no clock, no
 * randomness.
 */
#ifndef MESH_CORE_FIRSTREQ_H
#define MESH_CORE_FIRSTREQ_H

#include <stddef.h>
#include <stdint.h>

enum mesh_firstreq_limits {
    MESH_FIRSTREQ_MAX_BYTES = 8192,  /* no verdict within this many bytes: OTHER */
    MESH_FIRSTREQ_MAX_FRAME = 16384, /* a client's frame before our SETTINGS are acked */
    MESH_FIRSTREQ_MAX_HEADERS = 32,  /* header fields in the request */
};

/* The request that carries a Meshara client's hello (also h2.h's events request). */
#define MESH_FIRSTREQ_PATH "/api/v1/events"

typedef enum mesh_firstreq_verdict {
    MESH_FIRSTREQ_MORE = 0,  /* still a possible hello: wait for more bytes */
    MESH_FIRSTREQ_HELLO = 1, /* the first request's body verified as a client hello */
    MESH_FIRSTREQ_OTHER = 2, /* anything else: hand the connection to the decoy */
} mesh_firstreq_verdict;

/* Check a complete request body (the padded hello envelope, borrowed for the call). MESH_OK
 * when it is a client hello that verifies on this connection; any other code: not one. */
typedef int (*mesh_firstreq_verify_fn)(void *ud, const uint8_t *body, size_t len);

typedef struct mesh_firstreq_result {
    mesh_firstreq_verdict verdict;
    unsigned settings; /* complete non-ACK SETTINGS frames in the bytes (each one nginx acks) */
    const char *why;   /* OTHER: what gave it away (static text, for logs and tests); else "" */
} mesh_firstreq_result;

/* Classify the first len bytes of plaintext a client sent (buf borrowed). max_body: the
 * largest hello body accepted (1 ... MESH_FIRSTREQ_MAX_BYTES). verify is called once a
 * request body is complete (not before). Writes *out and returns MESH_OK; MESH_ERR_INVAL
 * (NULL out, buf or verify with len > 0, or max_body out of range: *out untouched);
 * MESH_ERR_NOMEM (decide nothing: the caller may retry or treat it as OTHER). */
int mesh_firstreq_classify(const uint8_t *buf, size_t len, size_t max_body,
                           mesh_firstreq_verify_fn verify, void *ud, mesh_firstreq_result *out);

#endif
