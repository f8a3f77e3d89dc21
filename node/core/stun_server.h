/* stun_server.h — a STUN responder (RFC 8489 Binding, RFC 5780 behaviour discovery) over the
 * env's datagrams and streams: what the simulator runs as a scenario's `stun` role, and what
 * tests run against the client. It is not a TURN server.
 *
 * It answers a Binding request with XOR-MAPPED-ADDRESS (the request's source address as the
 * server saw it). Configured with an alternate address (a second IP and a second port, RFC
 * 5780 §4.1), it listens on all four combinations (primary/alternate IP x primary/alternate
 * port), adds RESPONSE-ORIGIN (the address the answer leaves from) and OTHER-ADDRESS (the
 * combination differing from the receiving one in both IP and port), and honours
 * CHANGE-REQUEST over UDP by sending the answer from the changed IP and/or port. The second
 * IP may belong to another env (the simulator's hosts have one address each, so a STUN host
 * there is a pair of hosts; a real host binds both addresses through one env).
 *
 * What it refuses, and how (the answers are built by mesh_stun_server_answer(), a pure
 * function the fuzzer drives):
 *  - not STUN, truncated, a wrong FINGERPRINT, a response or an indication: dropped, counted;
 *  - a method other than Binding: 400 Bad Request;
 *  - unknown comprehension-required attributes: 420 with UNKNOWN-ATTRIBUTES (§6.3.1);
 *  - CHANGE-REQUEST without an alternate address: 420 listing CHANGE-REQUEST (RFC 5780 §7.2);
 *    CHANGE-REQUEST over TCP (an answer cannot leave from another address): 400.
 * No credentials: MESSAGE-INTEGRITY in a request is not checked and not answered (a Binding
 * server without authentication, as public STUN servers run).
 *
 * Bounded: at most max_conns TCP connections (more are refused at accept), a request on a
 * stream of at most MESH_STUN_SERVER_MAX_REQUEST bytes (a larger one, or bytes that are not
 * STUN, close the connection), idle connections closed after tcp_idle. UDP answers are sent
 * at once: nothing queues.
 *
 * Callbacks: none to the caller. All work happens inside env callbacks.
 */
#ifndef MESH_CORE_STUN_SERVER_H
#define MESH_CORE_STUN_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "core/stun.h"
#include "meshara/env.h"

enum mesh_stun_server_limits {
    MESH_STUN_SERVER_MAX_ANSWER = 1024,  /* the largest answer built (SOFTWARE is bounded) */
    MESH_STUN_SERVER_MAX_REQUEST = 2048, /* one request on a stream */
    MESH_STUN_SERVER_MAX_SOFTWARE = 128, /* SOFTWARE kept from the configuration */
    MESH_STUN_SERVER_DEFAULT_CONNS = 256,
    MESH_STUN_SERVER_MAX_CONNS = 65536,
    MESH_STUN_SERVER_DEFAULT_IDLE_MS = 30000,
    MESH_STUN_SERVER_SOCKETS = 4, /* primary/alternate IP x primary/alternate port */
};

/* Which of the four addresses (a socket index): bit 0 = the alternate IP, bit 1 = the
 * alternate port. */
enum mesh_stun_server_where {
    MESH_STUN_SERVER_PRIMARY = 0,
    MESH_STUN_SERVER_ALT_IP = 1,
    MESH_STUN_SERVER_ALT_PORT = 2,
};

typedef struct mesh_stun_server_cfg {
    mesh_addr primary;    /* IP and port (not 0); the IP may be 0.0.0.0 only without alternate */
    mesh_addr alternate;  /* family NONE: no RFC 5780; else another IP and another port */
    int udp, tcp;         /* serve each transport (default both) */
    const char *software; /* SOFTWARE in every answer, NULL = none (copied, cut to MAX_SOFTWARE) */
    int fingerprint;    /* 1 (default): FINGERPRINT in every answer; 0: when the request had one */
    mesh_time tcp_idle; /* a connection idle this long is closed; 0 = default */
    uint32_t max_conns; /* 0 = default; at most MESH_STUN_SERVER_MAX_CONNS */
} mesh_stun_server_cfg;

/* Counters, for tests and the simulator's statistics. */
typedef struct mesh_stun_server_stats {
    uint64_t answered;       /* success responses sent */
    uint64_t errors;         /* error responses sent (400, 420) */
    uint64_t changed;        /* answers sent from another address (CHANGE-REQUEST) */
    uint64_t dropped;        /* datagrams or stream messages ignored: not a request, bad bytes */
    uint64_t tcp_accepted;   /* connections adopted */
    uint64_t tcp_refused;    /* connections refused at max_conns */
    uint64_t tcp_closed_bad; /* connections closed for bad bytes or an oversized request */
    uint64_t tcp_closed_idle;
} mesh_stun_server_stats;

typedef struct mesh_stun_server mesh_stun_server;

void mesh_stun_server_cfg_default(mesh_stun_server_cfg *cfg);

/* Listen as cfg says. env serves the primary IP; alt_env (NULL = env) the alternate IP.
 * MESH_OK; MESH_ERR_INVAL (port 0, alternate IP or port equal to the primary's, families
 * differ, 0.0.0.0 with an alternate, nothing to serve); MESH_ERR_UNSUPPORTED (an env without
 * datagrams when udp is on); MESH_ERR_NOMEM; the env's bind/listen errors (MESH_ERR_ADDR...).
 * *out untouched on failure. */
int mesh_stun_server_new(mesh_stun_server **out, const mesh_env *env, const mesh_env *alt_env,
                         const mesh_stun_server_cfg *cfg);
/* Close every socket and connection (abortively). NULL: no-op. Not from inside an env callback
 * of this server (it has none that calls out). */
void mesh_stun_server_free(mesh_stun_server *s);
mesh_stun_server_stats mesh_stun_server_get_stats(const mesh_stun_server *s);

/* The answer to one decoded message m that arrived from `from` on socket `where` (enum
 * mesh_stun_server_where bits), over TCP when tcp is set, as cfg configures the server. On
 * MESH_OK, out[0 .. *len) is the answer and *via the socket it leaves from (== where unless
 * a CHANGE-REQUEST moved it). MESH_ERR_PROTOCOL: no answer (not a request, a request with a
 * wrong FINGERPRINT); MESH_ERR_INVAL (arguments); MESH_ERR_TOO_BIG (cap too small). */
int mesh_stun_server_answer(const mesh_stun_server_cfg *cfg, const mesh_stun_msg *m,
                            const mesh_addr *from, unsigned where, int tcp, uint8_t *out,
                            size_t cap, size_t *len, unsigned *via);

#endif
