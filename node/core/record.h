/* record.h — TLS 1.3 record protection (RFC 8446 §5.2–5.3, §7.1–7.2) for one direction.
 *
 * OpenSSL runs the handshake (tls.c); once it is complete, application records are sealed and
 * opened here with the traffic secrets OpenSSL derived (handed over through its key-log
 * callback, the only way OpenSSL 3.0 exposes them). The point is copies: OpenSSL's record
 * layer copies every byte in twice more on each side (into its record buffer, then out of it),
 * which cost a third of a bulk session's throughput. Here a record is opened straight from the
 * bytes the network delivered into the caller's buffer, and sealed straight from the caller's
 * bytes into the output: one pass of AEAD per byte and no other touch.
 *
 * What goes on the wire is exactly what OpenSSL would send: outer type application_data,
 * legacy version 0x0303, inner plaintext = content || type, no padding, AEAD nonce = the
 * secret's IV XOR the 64-bit record sequence number, additional data = the 5-byte header.
 * Pure functions of their inputs: no randomness, no clock.
 */
#ifndef MESH_CORE_RECORD_H
#define MESH_CORE_RECORD_H
#include <stddef.h>
#include <stdint.h>

enum mesh_rec_limits {
    MESH_REC_HDR = 5,
    MESH_REC_TAG = 16,
    MESH_REC_PLAIN_MAX = 16384,            /* content of one record (2^14) */
    MESH_REC_BODY_MAX = 16384 + 256,       /* inner plaintext + tag: larger is record_overflow */
    MESH_REC_INNER_MAX = 16384 + 256 - 16, /* content + type + padding a peer may send */
    MESH_REC_SECRET_MAX = 48,              /* SHA-384 */
    MESH_REC_SEAL_MAX = MESH_REC_HDR + MESH_REC_PLAIN_MAX + 1 + MESH_REC_TAG,
    /* Records sealed under one key before a KeyUpdate: RFC 8446 §5.5 allows 2^24.5 full
     * records for AES-GCM; we update well before that. */
    MESH_REC_UPDATE_AFTER = 1 << 24,
    MESH_REC_SUITES = 3, /* suites below: ids MESH_REC_AES_128_GCM_SHA256 + 0 .. 2 */
};

enum mesh_rec_suite_id { /* the TLS 1.3 cipher suites (RFC 8446 §B.4) */
                         MESH_REC_AES_128_GCM_SHA256 = 0x1301,
                         MESH_REC_AES_256_GCM_SHA384 = 0x1302,
                         MESH_REC_CHACHA20_POLY1305_SHA256 = 0x1303,
};

enum mesh_rec_type { /* content types (RFC 8446 §5.1) */
                     MESH_REC_ALERT = 21,
                     MESH_REC_HANDSHAKE = 22,
                     MESH_REC_APPDATA = 23,
};

typedef struct mesh_rec_suite mesh_rec_suite;
typedef struct mesh_rec mesh_rec;

/* The algorithms of TLS 1.3 suite `suite` (0x1301 AES-128-GCM-SHA256, 0x1302
 * AES-256-GCM-SHA384, 0x1303 ChaCha20-Poly1305-SHA256), fetched once from OpenSSL library
 * context libctx (an OSSL_LIB_CTX *, NULL = default) and shared by the connections that use
 * it (a fetch per connection cost a visible part of the handshake rate). MESH_OK;
 * MESH_ERR_INVAL (unknown suite); MESH_ERR_NOMEM; MESH_ERR_CRYPTO (not available). */
int mesh_rec_suite_new(mesh_rec_suite **out, void *libctx, int suite);
void mesh_rec_suite_free(mesh_rec_suite *s); /* after every mesh_rec using it; NULL: no-op */

/* Keys for one direction from a traffic secret (copied; the caller wipes its own copy) of
 * suite (borrowed: it must outlive the object; the secret's length is its hash's). seal: 1 to
 * write, 0 to read. Sequence 0. MESH_OK; MESH_ERR_INVAL (wrong secret length);
 * MESH_ERR_NOMEM; MESH_ERR_CRYPTO. */
int mesh_rec_new(mesh_rec **out, const mesh_rec_suite *suite, const uint8_t *secret,
                 size_t secret_len, int seal);
void mesh_rec_free(mesh_rec *r); /* wipes the keys; NULL: no-op */
/* A copy of r: the same suite, keys and sequence number, in a state of its own (what
 * mesh_tls_clone needs). MESH_OK; MESH_ERR_INVAL; MESH_ERR_NOMEM; MESH_ERR_CRYPTO. */
int mesh_rec_dup(mesh_rec **out, const mesh_rec *r);

/* Seal content (len ≤ MESH_REC_PLAIN_MAX) of type into out (MESH_REC_HDR + len + 1 +
 * MESH_REC_TAG bytes, returned). Advances the sequence. Negative MESH_ERR_*: INVAL (too long),
 * LIMIT (sequence exhausted), CRYPTO. */
long mesh_rec_seal(mesh_rec *r, int type, const uint8_t *data, size_t len, uint8_t *out);

/* Length of the record whose header is hdr (5 bytes): header + body; negative when the header
 * is not an application_data record of a legal size (MESH_ERR_MALFORMED; text in *why). */
long mesh_rec_length(const uint8_t hdr[MESH_REC_HDR], const char **why);

/* Open one whole record (rec, len = mesh_rec_length). The inner plaintext is written to out1
 * (its first cap1 bytes) then out2 (the rest; room for MESH_REC_INNER_MAX, or NULL when
 * len - MESH_REC_HDR - MESH_REC_TAG <= cap1), so a caller can decrypt straight into a buffer
 * smaller than the record. On success *type is the content
 * type and the content length (bytes before the type; they span out1 then out2) is returned.
 * Advances the sequence. Negative: MESH_ERR_CRYPTO (bad tag: the record was forged, damaged or
 * out of order), MESH_ERR_MALFORMED (no content type), MESH_ERR_LIMIT (sequence exhausted);
 * *why names it. Output bytes are garbage after a failure. */
long mesh_rec_open(mesh_rec *r, const uint8_t *rec, size_t len, uint8_t *out1, size_t cap1,
                   uint8_t *out2, int *type, const char **why);

/* KeyUpdate (RFC 8446 §7.2): next traffic secret and keys, sequence back to 0.
 * MESH_OK or MESH_ERR_CRYPTO. */
int mesh_rec_update(mesh_rec *r);

/* Records sealed or opened under the current key. */
uint64_t mesh_rec_seq(const mesh_rec *r);
/* Continue the sequence after n records someone else sealed under this same key (a TLS 1.3
 * server's NewSessionTickets, sealed by OpenSSL before the records become ours). Only at
 * sequence 0. MESH_OK; MESH_ERR_STATE (records already sealed or opened here). */
int mesh_rec_skip(mesh_rec *r, uint64_t n);

#endif
