/* https_bg.h — ordinary HTTPS-like background traffic, to measure a censor's collateral damage.
 *
 * A client makes request/response exchanges with a server at a given interval, each on a new
 * TCP connection with a new TLS handshake (a browser fetching pages from many sites), and
 * counts completed and failed ones by reason. Both run on a mesh_env (the simulator's
 * driver, or the real one), so a censor on the path sees real TLS bytes. Two kinds of client
 * (sim_https_client_cfg.kind): SIM_HTTPS_OPENSSL, a stock OpenSSL client offering TLS 1.2
 * and 1.3 with OpenSSL's default cipher suites and groups, a browser-like SNI (default
 * "www.example.org") and ALPN list (default "h2", "http/1.1"), whose fingerprint (JA3) is
 * OpenSSL's and the seed profile's is not; SIM_HTTPS_CURL, curl 7.88 on Debian 12 — the very
 * SSL_CTX settings of the web profile's client (tls.h, mesh_tls_web_client_new), so its
 * ClientHello has the web-profile node's JA3 — sending the SNI only when it is a host name
 * (an address: none, as curl), ALPN curl's.
 *
 * Inside TLS an exchange is: the client sends an 8-byte header {request length u32, response
 * length u32, big endian} and the request bytes; the server answers with that many response
 * bytes; the client then sends close_notify and closes. (The bytes after the handshake are
 * not HTTP/2 even when "h2" was negotiated: only their sizes and timing are on the wire.)
 *
 * Randomness: each side's OpenSSL objects live in the library context of a mesh_tls_ctx made
 * on the same env (node/core/tls.h), whose RAND provider draws from the env, so a simulated
 * run is reproducible from its seed. Session tickets are off (their content depends on the
 * wall clock). The client does not verify the server's certificate (self-signed Ed25519,
 * from a throwaway identity): only what a censor sees matters here.
 *
 * Ownership: env (copied) must stay valid for the object's life. Freeing aborts exchanges
 * in flight (streams reset, no callback). Callbacks run from env callbacks; they must not
 * free the client.
 */
#ifndef SIM_HTTPS_BG_H
#define SIM_HTTPS_BG_H

#include <stddef.h>
#include <stdint.h>

#include "meshara/env.h"

typedef struct sim_https_server sim_https_server;
typedef struct sim_https_client sim_https_client;

enum sim_https_limits {
    SIM_HTTPS_MAX_INFLIGHT = 64,       /* exchanges one client runs at once; beyond: skipped */
    SIM_HTTPS_MAX_SERVER_CONNS = 4096, /* connections one server holds; beyond: refused */
    SIM_HTTPS_MAX_BODY = 64 << 20,     /* request or response bytes of one exchange */
    SIM_HTTPS_MAX_ALPN = 8,            /* protocols in an ALPN list */
    SIM_HTTPS_DEFAULT_PORT = 443,
    SIM_HTTPS_DEFAULT_REQUEST = 400,    /* bytes */
    SIM_HTTPS_DEFAULT_RESPONSE = 20000, /* bytes */
    SIM_HTTPS_DEFAULT_INTERVAL_MS = 1000,
    SIM_HTTPS_DEFAULT_TIMEOUT_S = 30, /* one exchange, connect included */
    SIM_HTTPS_SERVER_IDLE_S = 60,     /* a server connection silent this long is reset */
};

#define SIM_HTTPS_DEFAULT_SNI "www.example.org"

typedef struct sim_https_server_cfg {
    uint16_t port;           /* 0 = SIM_HTTPS_DEFAULT_PORT */
    const char *const *alpn; /* NULL-terminated, server preference; NULL = {"h2","http/1.1"} */
} sim_https_server_cfg;

/* The client's TLS stack, as a censor sees it. */
enum sim_https_kind { SIM_HTTPS_OPENSSL = 0, SIM_HTTPS_CURL = 1 };

/* Zero fields take the defaults above. */
typedef struct sim_https_client_cfg {
    mesh_addr server;        /* required */
    int kind;                /* enum sim_https_kind */
    const char *sni;         /* NULL = SIM_HTTPS_DEFAULT_SNI; curl: an address sends none */
    const char *const *alpn; /* NULL-terminated; NULL = {"h2","http/1.1"}; curl: its own */
    uint32_t request_bytes, response_bytes;
    mesh_time start;    /* absolute time of the first exchange (0 = at once) */
    mesh_time interval; /* between exchange starts */
    mesh_time jitter;   /* each interval gets uniform [0, jitter] more (env random) */
    uint32_t count;     /* exchanges to start; 0 = until sim_https_client_stop() */
    mesh_time timeout;  /* per exchange */
} sim_https_client_cfg;

/* Why an exchange failed (index into sim_https_stats.failed_by). */
enum sim_https_fail {
    SIM_HTTPS_FAIL_RESET = 0,   /* RST (e.g. injected by a censor) */
    SIM_HTTPS_FAIL_TIMEOUT = 1, /* connect timed out, or the exchange's own timeout */
    SIM_HTTPS_FAIL_REFUSED = 2,
    SIM_HTTPS_FAIL_TLS = 3,    /* handshake or record error */
    SIM_HTTPS_FAIL_CLOSED = 4, /* orderly close before the whole response */
    SIM_HTTPS_FAIL_OTHER = 5,
    SIM_HTTPS_FAIL_KINDS = 6,
};

typedef struct sim_https_stats {
    uint64_t started, completed, failed, skipped;
    uint64_t failed_by[SIM_HTTPS_FAIL_KINDS];
    uint64_t bytes_sent, bytes_received; /* application bytes (header included) */
    mesh_time latency_sum, latency_max;  /* of completed exchanges, start to last byte */
} sim_https_stats;

typedef struct sim_https_server_stats {
    uint64_t accepted, served, refused, failed; /* refused: SIM_HTTPS_MAX_SERVER_CONNS */
} sim_https_server_stats;

/* An exchange ended: result MESH_OK or the MESH_ERR_* that ended it (MESH_ERR_RESET,
 * MESH_ERR_TIMEOUT, MESH_ERR_REFUSED, MESH_ERR_TLS, MESH_ERR_CLOSED...). local is the
 * client's address of that connection (the censor's flow), borrowed. */
typedef void (*sim_https_exchange_fn)(void *ud, int result, const mesh_addr *local,
                                      mesh_time started, mesh_time latency);

/* A server listening on 0.0.0.0:port of env's host. cfg NULL = defaults. MESH_OK;
 * MESH_ERR_INVAL (bad ALPN list); MESH_ERR_ADDR (port taken); MESH_ERR_NOMEM;
 * MESH_ERR_TLS / MESH_ERR_CRYPTO (OpenSSL setup). *out untouched on failure. */
int sim_https_server_new(sim_https_server **out, const mesh_env *env,
                         const sim_https_server_cfg *cfg);
void sim_https_server_free(sim_https_server *s); /* NULL: no-op */
mesh_addr sim_https_server_addr(const sim_https_server *s);
sim_https_server_stats sim_https_server_get_stats(const sim_https_server *s);

/* A client; its first exchange starts at cfg->start (a timer). MESH_OK; MESH_ERR_INVAL (no
 * server address, oversize SNI, bad ALPN list, body sizes over SIM_HTTPS_MAX_BODY, unknown
 * kind);
 * MESH_ERR_NOMEM; MESH_ERR_TLS / MESH_ERR_CRYPTO. *out untouched on failure. */
int sim_https_client_new(sim_https_client **out, const mesh_env *env,
                         const sim_https_client_cfg *cfg);
/* Start no more exchanges; those in flight finish. */
void sim_https_client_stop(sim_https_client *c);
void sim_https_client_free(sim_https_client *c); /* NULL: no-op */
void sim_https_client_set_cb(sim_https_client *c, sim_https_exchange_fn fn, void *ud);
sim_https_stats sim_https_client_get_stats(const sim_https_client *c);
/* The JA3 MD5 (lowercase hex) of the ClientHello a SIM_HTTPS_CURL client — and so a
 * web-profile node — sends with sni as server name (a host name), or none (NULL: the hello to
 * an address): what a censor rule "written against the node's fingerprint" matches. One
 * hello made on env (its randomness), nothing sent. MESH_OK; MESH_ERR_INVAL; MESH_ERR_NOMEM;
 * MESH_ERR_TLS / MESH_ERR_CRYPTO. */
enum { SIM_HTTPS_JA3_LEN = 32 };
int sim_https_curl_ja3(const mesh_env *env, const char *sni, char out[SIM_HTTPS_JA3_LEN + 1]);

/* 1 once every exchange it will start has ended (count reached or stopped, none in flight). */
int sim_https_client_done(const sim_https_client *c);

#endif
