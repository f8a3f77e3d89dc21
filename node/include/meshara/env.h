/*
 * meshara/env.h — the seam between the sans-I/O node core and the world.
 *
 * Core code never calls the OS: no sockets, clocks, random sources or event loops. It reaches
 * the world only through a mesh_env, a pair { ops table, driver object }. Two drivers
 * implement it: the real one (node/real/, libevent) and the simulator's (sim/, virtual time).
 *
 * Rules every driver keeps (tests/common/env_conformance.c checks them against both drivers):
 *  1. No callback is ever invoked from inside an env call made by the core. A connect to an
 *     unreachable address, a write on a dead stream, a timer set in the past: the outcome is
 *     reported later, from the driver's loop. Core code may therefore call any env function
 *     while holding its own state half-updated.
 *  2. A callback may call any env function, including closing or freeing the very object it
 *     is called for. After such a close/free returns, the driver makes no further callback for
 *     that object, and the handle must not be used again.
 *  3. Buffers passed to callbacks are borrowed: valid only until the callback returns.
 *     Buffers passed into env calls are copied before the call returns (the optional
 *     stream_reserve/stream_commit pair is the exception: room the core fills in place).
 *  4. All handles are owned by the driver. The core releases them with the matching
 *     close/free call, exactly once. A stream whose on_closed callback has run is already
 *     released: the core must not close it again.
 *  5. Times are monotonic nanoseconds (mesh_time). MESH_TIME_NEVER means "no deadline".
 *
 * Error codes are from meshara/error.h.
 */
#ifndef MESHARA_ENV_H
#define MESHARA_ENV_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "meshara/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- time --------------------------------------------------------------------------- */

typedef uint64_t mesh_time; /* nanoseconds on a monotonic clock */
#define MESH_TIME_NEVER UINT64_MAX
#define MESH_NS_PER_US 1000ULL
#define MESH_NS_PER_MS 1000000ULL
#define MESH_NS_PER_S 1000000000ULL

/* ---- addresses ---------------------------------------------------------------------- */

enum mesh_af { MESH_AF_NONE = 0, MESH_AF_INET4 = 4, MESH_AF_INET6 = 6 };

/* A transport address. ip[] holds 4 bytes (INET4) or 16 (INET6) in network order;
 * port is in host order. Plain value type: copy freely. */
typedef struct mesh_addr {
    uint8_t family; /* enum mesh_af */
    uint16_t port;
    uint8_t ip[16];
} mesh_addr;

#define MESH_ADDR_STRLEN 64 /* enough for "[ipv6]:port" plus NUL */

/* Parse "1.2.3.4:80", "[::1]:80" (port required). MESH_OK or MESH_ERR_INVAL. */
int mesh_addr_parse(mesh_addr *out, const char *text);
/* Format into buf (at least MESH_ADDR_STRLEN bytes). Returns buf. */
char *mesh_addr_format(const mesh_addr *a, char *buf, size_t buflen);
/* IPv4 helper: a.b.c.d as a host-order uint32 plus port. */
mesh_addr mesh_addr_v4(uint32_t ip_host_order, uint16_t port);
/* 1 if family, ip and port are equal. */
int mesh_addr_equal(const mesh_addr *a, const mesh_addr *b);

#define MESH_HOST_NAME_MAX 253 /* bytes in a DNS host name, without the NUL (RFC 1035) */
/* A DNS host name as TLS's server_name carries it (RFC 6066 §3): 1 to MESH_HOST_NAME_MAX
 * bytes of dot-separated labels, each 1 to 63 letters, digits or hyphens, not starting or
 * ending with a hyphen, no trailing dot, and a last label that is not all digits (so no IPv4
 * address passes; an IPv6 one has colons). MESH_OK or MESH_ERR_INVAL (also NULL). */
int mesh_host_name_check(const char *name);

/* ---- opaque driver handles ------------------------------------------------------------ */

typedef struct mesh_timer mesh_timer;
typedef struct mesh_stream mesh_stream;
typedef struct mesh_listener mesh_listener;
typedef struct mesh_dgram mesh_dgram;

/* ---- callbacks ------------------------------------------------------------------------ */

typedef void (*mesh_timer_cb)(mesh_timer *t, void *ud);

/* Stream callbacks. Any member may be NULL. */
typedef struct mesh_stream_cbs {
    /* An outgoing connect completed (never called for accepted streams). */
    void (*on_connected)(mesh_stream *s, void *ud);
    /* In-order bytes arrived; data is borrowed (rule 3). */
    void (*on_data)(mesh_stream *s, const uint8_t *data, size_t len, void *ud);
    /* Everything written so far has left the driver's send buffer (stream_pending() == 0). */
    void (*on_writable)(mesh_stream *s, void *ud);
    /* The stream is gone; the handle is released when this returns (rule 4).
     * reason: MESH_OK = orderly close by the peer (FIN); MESH_ERR_RESET, MESH_ERR_REFUSED,
     * MESH_ERR_TIMEOUT (connect timed out), MESH_ERR_UNREACHABLE, MESH_ERR_IO. */
    void (*on_closed)(mesh_stream *s, int reason, void *ud);
} mesh_stream_cbs;

/* A connection arrived on a listener. The core must, before returning, either call
 * stream_set_cbs() on s to adopt it or stream_close() to refuse it. */
typedef void (*mesh_accept_cb)(mesh_listener *l, mesh_stream *s, const mesh_addr *peer, void *ud);

/* A datagram arrived; data is borrowed (rule 3). */
typedef void (*mesh_dgram_cb)(mesh_dgram *d, const mesh_addr *from, const uint8_t *data, size_t len,
                              void *ud);

enum mesh_close_how {
    MESH_CLOSE_GRACEFUL = 0, /* send what is queued, then FIN */
    MESH_CLOSE_ABORT = 1,    /* drop what is queued, send RST */
};

enum mesh_log_level {
    MESH_LOG_DEBUG = 0,
    MESH_LOG_INFO = 1,
    MESH_LOG_WARN = 2,
    MESH_LOG_ERROR = 3,
};

/* ---- local services a driver may provide (NULL ops = not available) -------------------- */

/* mDNS/DNS-SD (avahi on the real driver; LAN multicast model in the simulator). */
typedef struct mesh_mdns_found {
    const char *name;       /* service instance name */
    const mesh_addr *addr;  /* resolved address and port */
    const char *const *txt; /* NULL-terminated "key=value" strings */
} mesh_mdns_found;
typedef void (*mesh_mdns_cb)(const mesh_mdns_found *found, int removed, void *ud);
typedef struct mesh_mdns_ops {
    /* Publish a service; txt is a NULL-terminated list copied by the driver. */
    int (*publish)(void *obj, const char *name, const char *type, uint16_t port,
                   const char *const *txt);
    /* Browse and resolve services of type; cb runs for each found/removed instance. */
    int (*browse)(void *obj, const char *type, mesh_mdns_cb cb, void *ud);
    void (*stop)(void *obj); /* withdraw publications and browsers */
} mesh_mdns_ops;

/* Port mapping on the local gateway (UPnP IGD / NAT-PMP): the real driver's is node/real/portmap.h
 * (miniupnpc on a worker thread, libnatpmp in the loop), the simulator's is its NAT model's
 * service. The core's lifecycle (request at start, renew before expiry, release on close) is
 * node/core/portmap.h. One mapping per (protocol, internal port); the internal address is the
 * host's own address towards the gateway.
 *
 * The answer: result MESH_OK with external (the gateway's public address and the external port
 * it gave, which may differ from internal_port) and lease_s (the lease granted, which may be
 * shorter than asked; 0 = no expiry), or a failure with external NULL and lease_s 0:
 *   MESH_ERR_UNSUPPORTED  no gateway offers port mapping (nothing answered)
 *   MESH_ERR_UNREACHABLE  the gateway's "external" address is private or missing: a NAT in
 *                         front of it (double NAT), so a mapping would not make us reachable
 *   MESH_ERR_REFUSED      the gateway refused (not authorized, no ports left, action failed)
 *   MESH_ERR_EXISTS       the external port is mapped to someone else and no other one was had
 *   MESH_ERR_PROTOCOL     the gateway answered nonsense (unparsable, inconsistent)
 *   MESH_ERR_TIMEOUT      the gateway stopped answering within the driver's bound
 *   MESH_ERR_IO, MESH_ERR_NOMEM  local failures
 * (the extended form of the callback — lease_s — is an issue-10 addition: a gateway may grant
 * less than asked, and the renewal must come before the real expiry.) */
typedef void (*mesh_portmap_cb)(int result, const mesh_addr *external, uint32_t lease_s, void *ud);
typedef struct mesh_portmap_ops {
    /* Ask for a TCP (tcp=1) or UDP (tcp=0) mapping of internal_port for lease_s seconds (0 =
     * no expiry; gateways may refuse that); the answer comes through cb, exactly once, later
     * (rule 1). Asking again for the same (tcp, internal_port) renews the mapping; a request
     * still in flight for it is superseded: its cb is never called. MESH_OK; MESH_ERR_INVAL
     * (port 0, cb NULL); MESH_ERR_LIMIT (the driver's mapping table is full); MESH_ERR_NOMEM. */
    int (*request)(void *obj, int tcp, uint16_t internal_port, uint32_t lease_s, mesh_portmap_cb cb,
                   void *ud);
    /* Remove the mapping of (tcp, internal_port) at the gateway, in the background (no
     * callback), and cancel a request in flight for it: its cb is never called after this
     * returns. MESH_OK; MESH_ERR_NOT_FOUND (nothing was requested for it). */
    int (*release)(void *obj, int tcp, uint16_t internal_port);
} mesh_portmap_ops;

/* ---- the ops table ---------------------------------------------------------------------- */

typedef struct mesh_env_ops {
    /* clock */
    mesh_time (*now)(void *obj);

    /* randomness: fill buf with len bytes (cryptographically strong on the real driver,
     * seeded and reproducible in the simulator). Never fails. */
    void (*random)(void *obj, uint8_t *buf, size_t len);

    /* logging: one line without trailing newline; msg is borrowed. */
    void (*log)(void *obj, int level, const char *msg);

    /* timers: created idle; set() arms (or re-arms) for absolute time `when`; a time in the
     * past fires on the next loop turn. stop() disarms. free() may be called from the
     * timer's own callback. Returns NULL on allocation failure. */
    mesh_timer *(*timer_new)(void *obj, mesh_timer_cb cb, void *ud);
    void (*timer_set)(void *obj, mesh_timer *t, mesh_time when);
    void (*timer_stop)(void *obj, mesh_timer *t);
    void (*timer_free)(void *obj, mesh_timer *t);

    /* streams (TCP) */
    /* Listen on addr (port 0 = any); *err gets the code when NULL is returned
     * (MESH_ERR_ADDR, MESH_ERR_PERM: not allowed to bind it, e.g. a port below 1024 without
     * CAP_NET_BIND_SERVICE; MESH_ERR_NOMEM, MESH_ERR_INVAL). */
    mesh_listener *(*listen)(void *obj, const mesh_addr *addr, mesh_accept_cb cb, void *ud,
                             int *err);
    /* The address actually bound (with the assigned port). */
    int (*listener_addr)(void *obj, mesh_listener *l, mesh_addr *out);
    void (*listener_close)(void *obj, mesh_listener *l);
    /* Start connecting; on_connected or on_closed follows (rule 1). NULL + *err only for
     * immediate local failures (MESH_ERR_INVAL, MESH_ERR_NOMEM). Connect timeout is the
     * driver's (see its header), reported as on_closed(MESH_ERR_TIMEOUT). */
    mesh_stream *(*connect)(void *obj, const mesh_addr *to, const mesh_stream_cbs *cbs, void *ud,
                            int *err);
    /* Optional (NULL = unsupported): connect from a given local address and port — the
     * node's own listening port, which a listener keeps holding (the real driver binds with
     * SO_REUSEADDR + SO_REUSEPORT, and its listeners carry SO_REUSEPORT too) — so that two
     * nodes can open TCP connections to each other at the same moment (TCP simultaneous open,
     * RFC 9293 §3.5: hole punching through NATs, RFC 5382). local's address may be the
     * unspecified one (0.0.0.0) or one of the host's, with a port. Then as connect:
     * on_connected or on_closed follows (rule 1). When the two SYNs cross, each side's stream
     * gets on_connected and no listener accepts anything. When the peer's SYN arrives before
     * this side's (or its stack answers first), that connection reaches this side's listener
     * as an ordinary accept and this stream, having the same four-tuple, fails: at once (NULL,
     * *err = MESH_ERR_ADDR) or later (on_closed with MESH_ERR_ADDR, MESH_ERR_REFUSED or
     * MESH_ERR_RESET, as the stack decides). A caller punching a hole therefore takes
     * whichever stream comes up first: its own on_connected or an accept from the peer's
     * address. NULL + *err: MESH_ERR_INVAL (no port, a family mismatch), MESH_ERR_ADDR (local
     * cannot be bound: not this host's, or its port taken without reuse; or the four-tuple is
     * in use), MESH_ERR_NOMEM, MESH_ERR_IO. */
    mesh_stream *(*connect_from)(void *obj, const mesh_addr *local, const mesh_addr *to,
                                 const mesh_stream_cbs *cbs, void *ud, int *err);
    /* Replace callbacks and user data (cbs is copied). */
    void (*stream_set_cbs)(void *obj, mesh_stream *s, const mesh_stream_cbs *cbs, void *ud);
    /* Queue len bytes (copied). MESH_OK, or MESH_ERR_CLOSED if the stream is closing/dead.
     * The driver's buffer is unbounded: the core bounds itself using stream_pending(). */
    int (*stream_write)(void *obj, mesh_stream *s, const void *data, size_t len);
    /* Optional zero-copy write; both NULL in a driver without it. stream_reserve returns room
     * for len bytes at the end of the stream's queue, or NULL (closed stream, a length the
     * driver does not pool, no memory: use stream_write). The core fills it, then calls
     * stream_commit(s, n), n <= len, before any other env call: the n bytes are queued as if
     * written (n = 0 gives the room back). Returns as stream_write. An exception to rule 3:
     * the room is the driver's, written in place (the point: a TLS record is sealed straight
     * into the memory the socket sends from). */
    uint8_t *(*stream_reserve)(void *obj, mesh_stream *s, size_t len);
    int (*stream_commit)(void *obj, mesh_stream *s, size_t len);
    /* Bytes queued in the driver and not yet handed to the network. */
    size_t (*stream_pending)(void *obj, mesh_stream *s);
    /* Local and remote address of the stream; either pointer may be NULL. */
    int (*stream_addrs)(void *obj, mesh_stream *s, mesh_addr *local, mesh_addr *remote);
    /* Release the handle (rule 4). how: enum mesh_close_how. No on_closed follows. */
    void (*stream_close)(void *obj, mesh_stream *s, int how);

    /* datagrams (UDP). No core code sends datagrams yet: they are kept for issue 10 (STUN
     * over UDP). */
    mesh_dgram *(*dgram_bind)(void *obj, const mesh_addr *addr, mesh_dgram_cb cb, void *ud,
                              int *err);
    int (*dgram_addr)(void *obj, mesh_dgram *d, mesh_addr *out);
    /* Send one datagram (copied). MESH_OK even if it is later lost. */
    int (*dgram_send)(void *obj, mesh_dgram *d, const mesh_addr *to, const void *data, size_t len);
    void (*dgram_close)(void *obj, mesh_dgram *d);

    /* local services: NULL when the driver has none */
    const mesh_mdns_ops *mdns;
    const mesh_portmap_ops *portmap;
} mesh_env_ops;

/* The environment handed to the core: { ops, driver object }. Plain value; copy freely. */
typedef struct mesh_env {
    const mesh_env_ops *ops;
    void *obj;
} mesh_env;

/* ---- convenience wrappers used by the core (env.c) ---------------------------------------- */

static inline mesh_time mesh_env_now(const mesh_env *e)
{
    return e->ops->now(e->obj);
}
static inline void mesh_env_random(const mesh_env *e, void *buf, size_t len)
{
    e->ops->random(e->obj, (uint8_t *)buf, len);
}
/* Uniform random integer in [0, bound) without modulo bias; bound 0 returns 0. */
uint64_t mesh_env_random_below(const mesh_env *e, uint64_t bound);
/* printf-style log through the env (lines longer than 1 KiB are cut). */
void mesh_log(const mesh_env *e, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif
#endif
