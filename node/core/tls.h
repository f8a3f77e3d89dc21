/* tls.h — TLS for sessions, sans-I/O: OpenSSL over in-memory byte pipes.
 *
 * The only module that uses libssl. Three objects:
 *
 *  mesh_tls_lib — an OpenSSL library context (OSSL_LIB_CTX) whose random source is an env: a
 *  tiny RAND provider registered in it (envrand.h) is made the seed source and the DRBG type,
 *  and its generate() calls mesh_env_random(). So the real driver's TLS gets the OS's
 *  randomness (getrandom) and simulated TLS bytes are a pure function of the simulation seed —
 *  core code never calls RAND_bytes (the "default" provider is loaded for the algorithms).
 *
 *  mesh_tls_ctx — one per node, in one of two profiles (meshara.h, enum mesh_profile). It uses
 *  a library context of its own (no OpenSSL state shared with any other node: what the real
 *  node does) or one lent by its configuration (what the simulator does for the nodes of one
 *  world, see mesh_tls_lib_new).
 *   - Web profile (the default): two SSL_CTXs. The client's is configured as curl 7.88 on
 *     Debian 12 configures OpenSSL 3.0, so its ClientHello is curl's byte for byte but the
 *     random fields (JA3 and JA4 equal: docs/protocol.md): TLS 1.2 and 1.3 offered, ALPN
 *     h2,http/1.1, SNI only for a host name; a server that picks TLS 1.2 is refused at its
 *     Certificate with the alert curl sends for an untrusted one, so nothing but TLS 1.3 is
 *     ever completed. The server's is configured as nginx 1.22 configures it (cipher list
 *     HIGH:!aNULL:!MD5 with server preference, ALPN h2,http/1.1,http/1.0,http/0.9 and a fatal
 *     no_application_protocol alert when none is in common, server names acknowledged, two
 *     session tickets of lifetime 300 s, TLS 1.0–1.3), with a web server's certificate: the
 *     configured chain and key (PEM), or a self-signed one made in memory (mesh_tls_cert_*,
 *     meshara.h). Its key is never the identity key. The server completes TLS 1.2 with a
 *     client that offers nothing newer (a browser, a prober): such a connection stays on
 *     OpenSSL's own record layer and is never a Meshara session (mesh_tls_export refuses it).
 *   - Seed profile: one SSL_CTX, TLS 1.3 only, no session tickets, no session cache, ALPN from
 *     the configuration (meshara/1.0 by default), SNI always sent (meshara.node by default),
 *     and a self-signed Ed25519 certificate made in memory from the identity key (serial from
 *     env randomness, validity from fixed strings). Cipher suites in browsers' order,
 *     TLS_AES_128_GCM_SHA256, TLS_CHACHA20_POLY1305_SHA256, TLS_AES_256_GCM_SHA384 (OpenSSL's
 *     default puts AES-256 first: slower, and less common on the wire), so two nodes use
 *     AES-128-GCM.
 *  In both, the peer's certificate is accepted as-is without looking at dates (the peer
 *  proves its identity afterwards with a hello bound to the TLS exporter: session.h).
 *
 *  mesh_tls — one per connection. Ciphertext from the network goes in with mesh_tls_feed()
 *  (copied) or mesh_tls_lend()/mesh_tls_keep() (read in place); ciphertext to send comes out
 *  through the `out` callback given at creation (or into the sink's own memory, see
 *  mesh_tls_set_reserve), synchronously from inside the call that produced it (handshake,
 *  write, close_notify). Plaintext is read
 *  with mesh_tls_read() and written with mesh_tls_write(). No call blocks, reads a clock or
 *  touches a socket. OpenSSL runs the handshake; TLS 1.3 application records after it are
 *  sealed and opened by record.h with the traffic secrets OpenSSL derived (read from its
 *  key-log callback, then wiped), because OpenSSL's own record layer copies every byte twice
 *  more. A TLS 1.2 connection (web-profile servers only) keeps OpenSSL's record layer behind
 *  the same calls; mesh_tls_version() tells which.
 *
 * OpenSSL's error queue is per thread, not per object: every entry point here clears it first
 * and empties it before returning, so one node's errors never show up in another's.
 *
 * Threading: a mesh_tls_ctx and its connections belong to one thread (the node's loop).
 * Lifetimes: the env and identity given to mesh_tls_ctx_new() are borrowed and must outlive
 * the context; every mesh_tls must be freed before its context.
 */
#ifndef MESH_CORE_TLS_H
#define MESH_CORE_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "core/identity.h"
#include "meshara/env.h"
#include "meshara/meshara.h"

enum mesh_tls_limits {
    MESH_TLS_ALPN_MAX = 8,        /* protocols in one ALPN list */
    MESH_TLS_ALPN_NAME_MAX = 255, /* bytes in one protocol name (RFC 7301) */
    MESH_TLS_SNI_MAX = 253,       /* bytes in a host name */
    MESH_TLS_SERIAL_LEN = 16,     /* certificate serial: random bytes, top bit clear */
    MESH_TLS_EXPORT_MAX = 64,     /* bytes mesh_tls_export() hands out at once */
    MESH_TLS_RECORD_MAX = 16384,  /* largest plaintext of one TLS record */
    MESH_TLS_IN_KEEP = 0, /* input buffer kept when drained and no record is half read (0: freed:
                           * idle = no buffer; kept while a bulk stream is mid-record) */
    MESH_TLS_IN_MAX = 4 << 20, /* ciphertext fed but not yet consumed: beyond, an error */
};

#define MESH_TLS_DEFAULT_SNI "meshara.node"
/* The web profile's name for a peer when the configuration gives no host name: the
 * :authority of a session and the name of a certificate made in memory (no SNI goes out). */
#define MESH_TLS_WEB_NO_HOST "localhost"
#define MESH_TLS_DEFAULT_ALPN "meshara/1.0"
/* Validity written into every certificate. Fixed, so making one never reads the clock; the
 * peer ignores it anyway (the certificate is accepted as-is). 9999-12-31 is RFC 5280's
 * "no well-defined expiration date". */
#define MESH_TLS_CERT_NOT_BEFORE "20240101000000Z"
#define MESH_TLS_CERT_NOT_AFTER "99991231235959Z"

typedef struct mesh_tls_lib mesh_tls_lib;
typedef struct mesh_tls_ctx mesh_tls_ctx;
typedef struct mesh_tls mesh_tls;

/* An OpenSSL library context whose random source is env (copied; its driver object must
 * outlive the lib), with the default provider loaded. A node context makes its own unless
 * its configuration lends one: a process can hold only about 500 library contexts (each
 * takes two of the 1024 pthread keys for its per-thread DRBGs), so the simulator lends one
 * to every node of a world — still reproducible, as one world runs on one thread in event
 * order. MESH_OK; MESH_ERR_INVAL; MESH_ERR_NOMEM; MESH_ERR_CRYPTO (logged). */
int mesh_tls_lib_new(mesh_tls_lib **out, const mesh_env *env);
/* Free it after every context that borrows it. NULL: no-op. */
void mesh_tls_lib_free(mesh_tls_lib *l);

typedef struct mesh_tls_cfg {
    /* enum mesh_profile: MESH_PROFILE_WEB (0) or MESH_PROFILE_SEED. */
    int profile;
    /* Seed: the server name a client sends and the certificate's common name (NULL =
     * MESH_TLS_DEFAULT_SNI). Web: the host name a client sends when its connection names no
     * server (mesh_tls_set_server_name; NULL or an IP address: none, as curl sends none for
     * an address), and the name of a certificate made in memory unless host_name is set. */
    const char *sni;
    /* Web only: this node's own host name (NULL = none): the name of a certificate made in
     * memory (then "localhost" unless sni names a host). */
    const char *host_name;
    /* Seed only (the web profile's lists are curl's and nginx's): ALPN protocols in
     * preference order, NULL-terminated; NULL = {MESH_TLS_DEFAULT_ALPN}. A client offers this
     * list; a server selects the first of its own list the client offered (server
     * preference). Strings are copied. */
    const char *const *alpn;
    /* Test hook: highest TLS version a connection may use (0 = TLS 1.3, the only value a
     * node uses). Tests set TLS1_2_VERSION (0x0303) to play an outdated client. */
    int max_version;
    /* A library context to share (borrowed: it must outlive the context); NULL = the
     * context makes one of its own, drawing randomness from the context's env. */
    mesh_tls_lib *lib;
    /* Records a connection seals under one key before it sends a KeyUpdate (0 = 2^24, the
     * default; RFC 8446 §5.5). Tests set a few to exercise key updates. */
    uint64_t key_update_after;
    /* Web only: the certificate chain (PEM, the node's certificate first) and its key (PEM),
     * copied. NULL: a self-signed certificate made in memory (mesh_tls_cert_generate) with a
     * cert_type key (enum mesh_cert_type), valid from unix_epoch. */
    const char *cert_pem;
    size_t cert_pem_len;
    const char *key_pem;
    size_t key_pem_len;
    int cert_type;
    /* Unix time (seconds) at the env's time 0 (0 = MESH_NODE_DEFAULT_EPOCH): dates a
     * certificate made in memory and the sessions a web server puts in its tickets (so a
     * simulated server's tickets are reproducible). */
    int64_t unix_epoch;
} mesh_tls_cfg;

/* A node's TLS context for identity id (borrowed), randomness and logs from env (borrowed).
 * cfg NULL = defaults (the web profile; copied). MESH_OK; MESH_ERR_INVAL (NULL argument, a
 * host_name that mesh_host_name_check refuses,
 * unknown profile or certificate type, empty or oversize ALPN name or list, oversize SNI);
 * MESH_ERR_CORRUPT (the certificate chain or key does not parse, or they do not match);
 * MESH_ERR_NOMEM; MESH_ERR_TLS / MESH_ERR_CRYPTO (OpenSSL refused: provider, certificate or
 * SSL_CTX setup; logged). *out untouched on failure. */
int mesh_tls_ctx_new(mesh_tls_ctx **out, const mesh_env *env, const mesh_identity *id,
                     const mesh_tls_cfg *cfg);
/* Free the context (all its connections first). NULL: no-op. */
void mesh_tls_ctx_free(mesh_tls_ctx *c);

/* Borrowed views, valid as long as c. */
const mesh_identity *mesh_tls_ctx_identity(const mesh_tls_ctx *c);
/* The certificate in DER (what a peer or an active prober receives; web: the first of the
 * chain). */
int mesh_tls_ctx_cert_der(const mesh_tls_ctx *c, const uint8_t **der, size_t *len);
/* enum mesh_profile of the context. */
int mesh_tls_ctx_profile(const mesh_tls_ctx *c);
/* The name this node's clients give the server (NUL-terminated, borrowed, never empty): the
 * SNI they send (seed: always; web: when the configuration names a host that is not an IP
 * address), and the HTTP/2 :authority of a session. Web profile without a configured host
 * name: "localhost", and no SNI goes out. */
const char *mesh_tls_ctx_sni(const mesh_tls_ctx *c);
/* The library context (an OSSL_LIB_CTX *) for other OpenSSL objects of this node. */
void *mesh_tls_ctx_libctx(const mesh_tls_ctx *c);

/* The web profile's client settings alone, for a client that is not a Meshara session (the
 * simulator's curl-like background HTTPS, sim/https_bg.h): a new SSL_CTX (returned as void *)
 * in the OSSL_LIB_CTX libctx, configured as the node's own client is (curl's ClientHello,
 * ALPN h2,http/1.1, no session stored, a server's certificate accepted over TLS 1.3 only),
 * max_version as mesh_tls_cfg's (0 = TLS 1.3). No SNI: the caller sets it per SSL (a host
 * name; none for an address, as curl). The caller frees it with SSL_CTX_free. NULL: out of
 * memory or OpenSSL refused. */
void *mesh_tls_web_client_new(void *libctx, int max_version);

/* Ciphertext to send, produced synchronously inside mesh_tls_* calls. data is borrowed
 * (valid during the call). The callback must not call back into this mesh_tls. */
typedef void (*mesh_tls_out_fn)(void *ud, const uint8_t *data, size_t len);

/* A connection. is_server: 1 on the accepting side. alpn: seed-profile client only,
 * overrides the context's list for this connection (NULL-terminated, copied; NULL = the
 * context's); a web-profile client always offers curl's list. A client sends nothing until
 * mesh_tls_handshake() is first called. MESH_OK; MESH_ERR_INVAL; MESH_ERR_NOMEM;
 * MESH_ERR_TLS. */
int mesh_tls_new(mesh_tls **out, mesh_tls_ctx *ctx, int is_server, const char *const *alpn,
                 mesh_tls_out_fn out_fn, void *out_ud);
void mesh_tls_free(mesh_tls *t); /* NULL: no-op. Sends nothing (see mesh_tls_close). */
/* Client, before its first mesh_tls_handshake: the server this connection is for, by its
 * DNS host name (copied; mesh_host_name_check syntax) — a web-profile client sends it as SNI
 * instead of the context's default, as curl sends the host of its URL; the seed profile
 * ignores it (its clients always send the context's name). A peer known only by address gets
 * no call: it then gets the context's default (none unless cfg.sni names a host). MESH_OK;
 * MESH_ERR_INVAL (NULL, not a host name: an IP address never goes into SNI); MESH_ERR_STATE
 * (a server, or the ClientHello is out); MESH_ERR_NOMEM; MESH_ERR_TLS. */
int mesh_tls_set_server_name(mesh_tls *t, const char *name);
/* The name this connection gives the server (borrowed, as long as t; never empty): the one
 * set above, else mesh_tls_ctx_sni(). What a session puts in its HTTP/2 :authority. */
const char *mesh_tls_server_name(const mesh_tls *t);
/* Optional, for application records: seal each straight into the sink's memory. reserve(ud,
 * len) returns room for len bytes, or NULL (the record then goes to out_fn); commit(ud, n)
 * hands over n <= len bytes of it (0: none). Same ud and rule as out_fn. NULL: off. */
typedef uint8_t *(*mesh_tls_reserve_fn)(void *ud, size_t len);
typedef void (*mesh_tls_commit_fn)(void *ud, size_t len);
void mesh_tls_set_reserve(mesh_tls *t, mesh_tls_reserve_fn reserve, mesh_tls_commit_fn commit);

/* Ciphertext from the peer (copied). MESH_OK; MESH_ERR_LIMIT (more than MESH_TLS_IN_MAX
 * unconsumed: the caller is not reading); MESH_ERR_NOMEM; MESH_ERR_STATE (bytes are lent). */
int mesh_tls_feed(mesh_tls *t, const uint8_t *data, size_t len);
/* Ciphertext from the peer, lent rather than copied (the receive path of a bulk session:
 * records are opened where the network delivered them). Read (mesh_tls_handshake,
 * mesh_tls_read) as after a feed, then call mesh_tls_keep() before data goes away: it copies
 * what was not consumed (at most a partial record, unless the caller stopped reading).
 * MESH_OK; MESH_ERR_LIMIT; MESH_ERR_STATE (bytes already lent). */
int mesh_tls_lend(mesh_tls *t, const uint8_t *data, size_t len);
/* End a lend: keep (copy) its unconsumed bytes. MESH_OK (also with nothing lent);
 * MESH_ERR_LIMIT; MESH_ERR_NOMEM (the bytes are lost: end the connection). */
int mesh_tls_keep(mesh_tls *t);
/* Advance the handshake with what was fed (a client's first call sends its ClientHello).
 * MESH_OK: complete (also on every later call); MESH_ERR_AGAIN: needs more input;
 * MESH_ERR_VERSION (the peer speaks no TLS 1.3, or refused ours: protocol_version alert; a
 * web-profile client met a server that chose TLS 1.2: refused at its Certificate with the
 * unknown_ca alert curl sends for a certificate it does not trust; a web-profile server
 * completes TLS 1.2 instead: mesh_tls_version);
 * MESH_ERR_ALPN (no common protocol; a seed-profile client also refuses a server that
 * selected none, a seed-profile server a client that offered none; in the web profile no
 * ALPN at all is an ordinary connection, as with nginx: mesh_tls_alpn() is then "");
 * MESH_ERR_TLS (anything else: garbage, bad signature, alerts); MESH_ERR_NOMEM. After an
 * error, any alert has already gone out through out_fn; the connection is dead (every
 * later call returns the same code). */
int mesh_tls_handshake(mesh_tls *t);
/* Seed-profile server only: once its flight (ServerHello … Finished) is out, TLS 1.3 lets it
 * send application data before the client's Finished arrives (0.5-RTT, RFC 8446 §2): MESH_OK
 * when mesh_tls_write and mesh_tls_export work already (also once the handshake is complete);
 * MESH_ERR_AGAIN not yet (or a client, or the web profile: nginx writes nothing before the
 * client's Finished); an error code once the connection failed. Data so
 * written is read by the client as soon as its handshake completes. mesh_tls_alpn() gives the
 * selected protocol from then on. */
int mesh_tls_early(mesh_tls *t);
/* 1 once the handshake completed. */
int mesh_tls_is_done(const mesh_tls *t);
/* The version the handshake completed with: 0x0304 (TLS 1.3, record.h's records), 0x0303 or
 * older (TLS 1.2 and before: web-profile servers only, OpenSSL's records; never a Meshara
 * session), 0 before. */
int mesh_tls_version(const mesh_tls *t);
/* Plaintext received: up to cap bytes into buf. Returns the byte count (> 0); 0 when nothing
 * more can be read from what was fed; MESH_ERR_CLOSED once the peer's close_notify was read;
 * MESH_ERR_TLS (bad record, unexpected message, any alert but close_notify; the text says
 * which); MESH_ERR_STATE (handshake not complete); MESH_ERR_NOMEM. Call until it returns 0
 * after every feed. Bytes of buf past the count returned may have been written (a record is
 * opened in place; the rest of one larger than cap waits inside for the next call).
 * KeyUpdate from the peer is followed (and answered when it asks); NewSessionTicket ignored.
 * TLS 1.2: OpenSSL reads the records, with the same return values. */
long mesh_tls_read(mesh_tls *t, uint8_t *buf, size_t cap);
/* Encrypt len bytes (all of them; records come out through out_fn before this returns).
 * MESH_OK; MESH_ERR_STATE (handshake not complete and not mesh_tls_early, or closed); MESH_ERR_TLS;
 * MESH_ERR_NOMEM. */
int mesh_tls_write(mesh_tls *t, const uint8_t *data, size_t len);
/* Test and fuzzing hook: one record of any content type (21 alert, 22 handshake, 23 data, or
 * anything else) with content data (at most MESH_TLS_RECORD_MAX bytes), as the peer's record
 * layer would receive it. MESH_OK; MESH_ERR_INVAL; MESH_ERR_STATE (also: TLS 1.2);
 * MESH_ERR_TLS. */
int mesh_tls_send_record(mesh_tls *t, int type, const uint8_t *data, size_t len);
/* Test and fuzzing hook: a new connection in the state t is in right after its handshake
 * (t established, nothing received, sent or closed since, nothing failed): the same keys,
 * sequence numbers, ALPN and exporter, its output to out_fn / out_ud, no reserve. The
 * handshake state (read-only once complete) is shared with t, reference-counted, so the clone
 * may outlive t (not t's context). Lets a fuzz target give each input a fresh connection without a
 * handshake, which is most of the cost of an input otherwise. MESH_OK; MESH_ERR_INVAL;
 * MESH_ERR_STATE (t is not in that state); MESH_ERR_NOMEM; MESH_ERR_CRYPTO. */
int mesh_tls_clone(mesh_tls **out, const mesh_tls *t, mesh_tls_out_fn out_fn, void *out_ud);
/* Send close_notify (once; later calls do nothing). MESH_OK or MESH_ERR_STATE (handshake
 * not complete: nothing to send). */
int mesh_tls_close(mesh_tls *t);
/* Unconsumed ciphertext fed or lent, plus opened plaintext not read yet (and, during the
 * handshake, an incomplete record held by OpenSSL): non-zero when the stream ends means the
 * peer stopped mid-record. */
size_t mesh_tls_partial(const mesh_tls *t);

/* RFC 8446 §7.5 exporter: len (1..MESH_TLS_EXPORT_MAX) bytes for label, no context.
 * MESH_OK; MESH_ERR_STATE (handshake not complete); MESH_ERR_VERSION (not TLS 1.3: such a
 * connection never carries a Meshara hello); MESH_ERR_INVAL; MESH_ERR_TLS. */
int mesh_tls_export(mesh_tls *t, const char *label, uint8_t *out, size_t len);
/* Free OpenSSL's state of this connection once the handshake is complete and no exporter
 * value is needed any more (the records are ours: record.h): the SSL object, its certificate
 * and buffers, a third of an idle connection's memory. Later mesh_tls_export calls return
 * MESH_ERR_STATE; everything else works as before. No-op before the handshake completes, and
 * on a TLS 1.2 connection (whose records OpenSSL still seals). */
void mesh_tls_drop_handshake(mesh_tls *t);
/* The negotiated ALPN protocol (NUL-terminated, borrowed, valid as long as t), "" if none. */
const char *mesh_tls_alpn(const mesh_tls *t);
/* The last OpenSSL error seen by t as text ("" if none), for logs. Borrowed. */
const char *mesh_tls_error_text(const mesh_tls *t);

#endif
