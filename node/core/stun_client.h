/* stun_client.h — STUN Binding transactions (RFC 8489) over UDP and TCP, and NAT behaviour
 * discovery (RFC 5780 §4.3 and §4.4), sans-I/O: sockets, streams, timers and the clock come
 * from the env; the retransmission timing is computed here.
 *
 * UDP (RFC 8489 §6.2.1). The client owns one datagram socket (cfg.local), so every UDP
 * transaction, and every test of a discovery, leaves from the same local address. A request
 * is sent at t0, then again after RTO, 2 RTO, 4 RTO... (the interval doubles) until Rc
 * requests were sent; the transaction times out Rm x RTO after the last one. Defaults (the
 * RFC's): RTO 500 ms, Rc 7, Rm 16, so requests at 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s and a
 * timeout at 39.5 s. The RTO is fixed per client (cfg.rto): no RTT estimation (§6.2.1 lets a
 * client that knows nothing better use 500 ms).
 *
 * TCP (§6.2.2). A transaction opens a connection to the server (from a chosen local address
 * when asked: see mesh_stun_client_binding_tcp), writes the request once it is connected and
 * waits for the answer up to cfg.tcp_timeout (Ti, default 39.5 s) from the start, connect
 * included. One request per connection; the client closes it when the answer came.
 *
 * What a response must be to count (anything else is ignored and counted, and the
 * transaction goes on to its timeout as if nothing had arrived — so forged or damaged
 * datagrams can delay an answer, never make a wrong one):
 *  - a STUN message that decodes (else `malformed`), a success or error response of Binding
 *    (else `unexpected`), for a transaction in progress (its 96-bit id: else `bad_tid`);
 *  - a right FINGERPRINT when it has one (else `bad_fingerprint`);
 *  - with credentials configured, a right MESSAGE-INTEGRITY(-SHA256) (else `bad_integrity`);
 *    without them an integrity attribute cannot be checked and is not;
 *  - over UDP, from the address the request went to; with CHANGE-REQUEST, from an address
 *    differing from it in exactly the changed parts (else `bad_source`);
 *  - a success response with an XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS from an RFC 3489
 *    server) that decodes (else `malformed`).
 * An error response ends the transaction with MESH_ERR_REFUSED and its code.
 *
 * Discovery (mesh_stun_client_discover), one at a time, over the client's UDP socket:
 *   test I     Binding to the server: the mapped address M1 and OTHER-ADDRESS O (without it
 *              the server cannot tell, and discovery ends with MESH_ERR_UNSUPPORTED);
 *   filtering  CHANGE-REQUEST(IP and port): answered = endpoint-independent; else
 *              CHANGE-REQUEST(port): answered = address-dependent; else address-and-port-
 *              dependent (each "else" is a transaction timing out);
 *   mapping    M1 equal to the local address: no NAT. Else Binding to (O's IP, the server's
 *              port): M2 == M1 = endpoint-independent; else Binding to O: M3 == M2 =
 *              address-dependent, else address-and-port-dependent.
 * The filtering tests run before the mapping tests: a request to O's address would open the
 * NAT's filter for the answers the filtering tests expect from there. "No NAT" needs a
 * concrete cfg.local IP (with 0.0.0.0 the local IP is unknown and never equals M1).
 *
 * Callbacks come only from env callbacks (never from inside a mesh_stun_client_* call). A
 * callback may start new transactions or free the client.
 *
 * Bounded: at most MESH_STUN_CLIENT_MAX_TXNS transactions at a time (MESH_ERR_LIMIT beyond),
 * a TCP answer of at most MESH_STUN_CLIENT_MAX_RESPONSE bytes, every wait timed.
 */
#ifndef MESH_CORE_STUN_CLIENT_H
#define MESH_CORE_STUN_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/stun.h"
#include "meshara/env.h"

enum mesh_stun_client_limits {
    MESH_STUN_CLIENT_MAX_TXNS = 16,
    MESH_STUN_CLIENT_MAX_REQUEST = 1024,  /* the largest request built */
    MESH_STUN_CLIENT_MAX_RESPONSE = 2048, /* one answer on a stream; larger fails TOO_BIG */
    MESH_STUN_CLIENT_MAX_KEY = 256,
    MESH_STUN_DEFAULT_RTO_MS = 500, /* RFC 8489 §6.2.1 */
    MESH_STUN_DEFAULT_RC = 7,
    MESH_STUN_DEFAULT_RM = 16,
    MESH_STUN_MAX_RC = 16,
    MESH_STUN_MAX_RM = 64,
    MESH_STUN_DEFAULT_TCP_TIMEOUT_MS = 39500, /* Ti, §6.2.2 */
};

typedef struct mesh_stun_client_cfg {
    mesh_addr local;       /* the UDP socket's address; family NONE = 0.0.0.0, any port */
    int udp;               /* 1 (default): open the UDP socket (0: TCP transactions only) */
    mesh_time rto;         /* initial retransmission timeout; 0 = 500 ms */
    unsigned rc, rm;       /* requests sent at most (1..MAX_RC), final wait in RTOs; 0 = default */
    mesh_time tcp_timeout; /* Ti; 0 = 39.5 s */
    /* Short-term credentials (§9.1), both or neither: requests carry USERNAME and
     * MESSAGE-INTEGRITY, responses must carry a right MESSAGE-INTEGRITY. Copied. */
    const char *username;
    const uint8_t *key;
    size_t keylen;
    int fingerprint; /* 1 (default): FINGERPRINT in requests */
} mesh_stun_client_cfg;

/* The outcome of one Binding transaction (borrowed for the callback). */
typedef struct mesh_stun_result {
    /* MESH_OK; MESH_ERR_TIMEOUT (no valid answer); MESH_ERR_REFUSED (an error response:
     * error_code); over TCP also the stream's close reason (MESH_ERR_REFUSED, RESET,
     * UNREACHABLE, TIMEOUT...), MESH_ERR_CLOSED (closed before the answer), MESH_ERR_TOO_BIG
     * (an answer over MESH_STUN_CLIENT_MAX_RESPONSE), MESH_ERR_MALFORMED (bytes that are not
     * STUN: the stream cannot be resynchronised); MESH_ERR_IO (a retransmission could not be
     * sent). */
    int status;
    int tcp;
    mesh_addr server;      /* where the request went */
    mesh_addr local;       /* the local address it left from (as the env reports it) */
    mesh_addr mapped;      /* XOR-MAPPED-ADDRESS: the server-reflexive address */
    mesh_addr other;       /* OTHER-ADDRESS (RFC 5780), family NONE when absent */
    mesh_addr origin;      /* RESPONSE-ORIGIN, family NONE when absent */
    int error_code;        /* 300..699 for MESH_ERR_REFUSED, else 0 */
    unsigned requests;     /* requests sent (1 + retransmissions) */
    unsigned wrong_source; /* answers to it ignored for coming from the wrong address (a server
                              that does not honour CHANGE-REQUEST) */
    mesh_time rtt;         /* start to answer (retransmissions included: not an RTT sample) */
} mesh_stun_result;

typedef void (*mesh_stun_cb)(void *ud, const mesh_stun_result *r);

/* NAT behaviour, RFC 4787 words. */
enum mesh_stun_behaviour_kind {
    MESH_STUN_BEHAVIOUR_UNKNOWN = 0,
    MESH_STUN_BEHAVIOUR_NO_NAT = 1, /* mapping only: the mapped address is the local one */
    MESH_STUN_BEHAVIOUR_ENDPOINT_INDEPENDENT = 2,
    MESH_STUN_BEHAVIOUR_ADDRESS_DEPENDENT = 3,
    MESH_STUN_BEHAVIOUR_ADDRESS_PORT_DEPENDENT = 4,
};
/* "unknown", "no-nat", "endpoint-independent", "address-dependent",
 * "address-and-port-dependent" (the scenario format's words). */
const char *mesh_stun_behaviour_name(int kind);

typedef struct mesh_stun_behaviour {
    /* MESH_OK: both learned. MESH_ERR_UNSUPPORTED: the server gave no OTHER-ADDRESS (mapped
     * is still set). Otherwise test I's failure, or a mapping test's (mapping UNKNOWN). */
    int status;
    mesh_addr local, mapped, other;
    int mapping;   /* enum mesh_stun_behaviour_kind */
    int filtering; /* UNKNOWN when the server would not change its address (an error answer
                      or an answer from the wrong address) */
    unsigned transactions;
    mesh_time took;
} mesh_stun_behaviour;

typedef void (*mesh_stun_behaviour_cb)(void *ud, const mesh_stun_behaviour *b);

/* Counters of what was ignored, and of the work done. */
typedef struct mesh_stun_client_stats {
    uint64_t transactions, succeeded, timed_out, failed;
    uint64_t requests_sent; /* retransmissions included */
    uint64_t malformed, unexpected, bad_tid, bad_fingerprint, bad_integrity, bad_source;
} mesh_stun_client_stats;

typedef struct mesh_stun_client mesh_stun_client;

void mesh_stun_client_cfg_default(mesh_stun_client_cfg *cfg);

/* MESH_OK; MESH_ERR_INVAL (bad cfg: rc/rm out of range, username without key, key over
 * MAX_KEY, a username over MESH_STUN_MAX_USERNAME); MESH_ERR_UNSUPPORTED (udp on an env without
 * datagrams); MESH_ERR_NOMEM; the env's bind errors. *out untouched on failure. */
int mesh_stun_client_new(mesh_stun_client **out, const mesh_env *env,
                         const mesh_stun_client_cfg *cfg);
/* Cancel everything (no callback follows) and free. Safe inside a callback. NULL: no-op. */
void mesh_stun_client_free(mesh_stun_client *c);
/* The UDP socket's address (as the env reports it). MESH_OK, MESH_ERR_STATE (no UDP). */
int mesh_stun_client_local(const mesh_stun_client *c, mesh_addr *out);
mesh_stun_client_stats mesh_stun_client_get_stats(const mesh_stun_client *c);

/* A Binding transaction over UDP to server, with CHANGE-REQUEST flags `change`
 * (MESH_STUN_CHANGE_*; 0 = none). cb runs exactly once, later. MESH_OK; MESH_ERR_INVAL;
 * MESH_ERR_STATE (no UDP socket); MESH_ERR_LIMIT (MAX_TXNS in progress); MESH_ERR_NOMEM; the
 * env's send error for the first request (then no callback). */
int mesh_stun_client_binding(mesh_stun_client *c, const mesh_addr *server, unsigned change,
                             mesh_stun_cb cb, void *ud);
/* A Binding transaction over a new TCP connection to server. local: NULL (or port 0) = any
 * local address; else the connection leaves from it (what a NAT maps depends on it) — this
 * needs the env's optional `connect_from` op: on an env without it, a local port gives
 * MESH_ERR_UNSUPPORTED. cb runs exactly once, later. MESH_OK; MESH_ERR_INVAL;
 * MESH_ERR_UNSUPPORTED; MESH_ERR_LIMIT; MESH_ERR_NOMEM; the env's connect error. */
int mesh_stun_client_binding_tcp(mesh_stun_client *c, const mesh_addr *server,
                                 const mesh_addr *local, mesh_stun_cb cb, void *ud);
/* RFC 5780 behaviour discovery against server (see above). cb runs exactly once, later.
 * MESH_OK; MESH_ERR_STATE (no UDP socket, or a discovery already running); the errors of
 * mesh_stun_client_binding for test I. */
int mesh_stun_client_discover(mesh_stun_client *c, const mesh_addr *server,
                              mesh_stun_behaviour_cb cb, void *ud);

#endif
