/*
 * real/driver.h — the real driver: meshara/env.h over libevent and the host's sockets.
 *
 * A mesh_real wraps one libevent event_base (its own, or one the caller passes in) and hands
 * the core a mesh_env whose ops are plain sockets: TCP streams are bufferevents, listeners are
 * evconnlisteners, datagrams are UDP sockets with a persistent read event, timers are
 * evtimers. Clock = CLOCK_MONOTONIC, randomness = getrandom().
 * mDNS and port mapping are separate adapters: ops->mdns and ops->portmap stay NULL until one
 * is installed with mesh_real_set_mdns() (node/real/mdns.h does it) or mesh_real_set_portmap()
 * (node/real/portmap.h).
 *
 * Ownership and reentrancy (how env.h's rules are kept):
 *  - Rule 1 (no callback from inside an env call). Everything that could complete at once is
 *    deferred to the loop: an immediate connect failure is stored and reported from an
 *    event_active()'d event; a timer set in the past is armed with a zero delay. Writes
 *    never hit the socket synchronously (bufferevent writes from the loop).
 *  - Rule 2 (a callback may close/free its own object). Each handle counts the driver
 *    callbacks running for it ("busy"). A close/free called while busy only marks the handle
 *    released; the driver tears it down when the outermost callback returns and makes no
 *    further core callback for it. libevent objects freed inside their own libevent callbacks
 *    are safe too (libevent holds a reference during dispatch).
 *  - Rule 3: data given to on_data / dgram callbacks points into the driver's buffers and is
 *    drained right after the callback; data passed to stream_write / dgram_send is copied.
 *  - Rule 4: every handle is the driver's. The core releases it exactly once (close/free), or
 *    a stream is released by on_closed. After stream_close(GRACEFUL) the handle is gone from the
 *    core's view at once, but the driver keeps the socket internally: it flushes the queued
 *    output, sends FIN (shutdown SHUT_WR), discards whatever the peer still sends, and closes
 *    when the peer's FIN arrives or after cfg->linger_timeout. ABORT sets SO_LINGER {1,0} and
 *    closes at once, so the peer sees a RST.
 *  - A peer FIN is reported as on_closed(MESH_OK) after all received bytes were delivered;
 *    our own queued output is then still flushed in the background as above.
 *  - mesh_real_free() closes (abortively) every handle the core did not release and frees
 *    everything; the core's pointers are dangling afterwards. Free the core's objects first.
 *    It must not be called from inside a driver callback.
 *
 * What each op does here, beyond env.h:
 *  - listen: SO_REUSEADDR, non-blocking, close-on-exec; IPv6 listeners are v6-only so IPv4
 *    and IPv6 can share a port number. Errors: MESH_ERR_INVAL, MESH_ERR_ADDR, MESH_ERR_NOMEM.
 *    accept() failures (EMFILE...) pause the listener MESH_REAL_ACCEPT_BACKOFF_MS (logged
 *    once per MESH_REAL_ACCEPT_LOG_MS); at most MESH_REAL_ACCEPT_BATCH connections
 *    are accepted per loop turn, so the reads of those accepted go first under a flood.
 *  - connect: MESH_ERR_INVAL (bad address, port 0), MESH_ERR_NOMEM, MESH_ERR_IO (no socket:
 *    descriptor limit) at once; everything else through on_closed: REFUSED, UNREACHABLE
 *    (no route), TIMEOUT (cfg->connect_timeout_ms), IO. Writes before on_connected queue.
 *  - stream_write: MESH_ERR_INVAL (NULL data), MESH_ERR_CLOSED (released or peer FIN'd),
 *    MESH_ERR_NOMEM. on_writable runs when the output buffer drained to 0 after a write.
 *  - dgram_bind: SO_REUSEADDR, IPv6 v6-only.
 *    dgram_send: MESH_ERR_TOO_BIG (> MESH_REAL_DGRAM_MAX or EMSGSIZE), MESH_ERR_INVAL
 *    (family differs from the socket's), MESH_ERR_UNREACHABLE (no route), MESH_ERR_IO;
 *    a full send queue drops the datagram and returns MESH_OK, like a lossy network.
 *
 * Process-wide effect: mesh_real_new() sets SIGPIPE to SIG_IGN if it is still SIG_DFL, because
 * a write to a socket the peer reset would otherwise kill the process (Linux has no
 * per-socket SO_NOSIGPIPE and libevent writes with writev()).
 *
 * Threads: a mesh_real and its env are used from the thread that runs its event loop only.
 */
#ifndef MESHARA_REAL_DRIVER_H
#define MESHARA_REAL_DRIVER_H

#include <stdint.h>

#include "meshara/env.h"

struct event_base;

#ifdef __cplusplus
extern "C" {
#endif

/* Defaults and bounds of the real driver, in one place. */
enum mesh_real_limits {
    MESH_REAL_CONNECT_TIMEOUT_MS = 10000, /* default: connect → on_closed(MESH_ERR_TIMEOUT) */
    MESH_REAL_LINGER_TIMEOUT_MS = 5000,   /* default: graceful close gives up after this */
    MESH_REAL_LISTEN_BACKLOG = 1024,      /* listen(2) backlog; a SYN beyond it waits 1 s */
    MESH_REAL_ACCEPT_BACKOFF_MS = 100,    /* listener paused this long after accept() fails */
    MESH_REAL_ACCEPT_LOG_MS = 10000,      /* accept() failures: one line at most this often */
    MESH_REAL_ACCEPT_BATCH = 16,          /* connections accepted per listener per loop turn */
    MESH_REAL_DGRAM_MAX = 65535,          /* largest datagram received or sent */
    MESH_REAL_DGRAM_BURST = 64,           /* datagrams read per socket per loop turn */
    MESH_REAL_LOG_LINE_MAX = 1024,        /* longest log line passed to the sink */
};

/* Where log lines go: one line, no trailing newline, msg borrowed for the call. */
typedef void (*mesh_real_log_sink)(void *ud, int level, mesh_time now, const char *msg);

typedef struct mesh_real_config {
    uint32_t connect_timeout_ms; /* 0 = MESH_REAL_CONNECT_TIMEOUT_MS */
    uint32_t linger_timeout_ms;  /* 0 = MESH_REAL_LINGER_TIMEOUT_MS */
    int log_level;               /* enum mesh_log_level: lines below it are dropped */
    mesh_real_log_sink log_sink; /* NULL = stderr, "[seconds.micros] LEVEL msg" */
    void *log_ud;
} mesh_real_config;

typedef struct mesh_real mesh_real;

/* Fill cfg with the defaults (log level INFO to stderr, 10 s connect timeout). */
void mesh_real_config_default(mesh_real_config *cfg);

/* Create a driver on base (borrowed: it must outlive the driver), or on an event_base of its
 * own when base is NULL. cfg is copied; NULL = defaults. *out is untouched on failure.
 * Returns MESH_OK, MESH_ERR_INVAL (out NULL), MESH_ERR_NOMEM, MESH_ERR_IO (no event_base). */
int mesh_real_new(mesh_real **out, struct event_base *base, const mesh_real_config *cfg);

/* Close every handle still open, free the driver (and its event_base if it created it).
 * NULL is a no-op. Not from inside a driver callback. */
void mesh_real_free(mesh_real *r);

/* The env to hand to the core; valid until mesh_real_free(). */
mesh_env mesh_real_env(mesh_real *r);

/* The event_base the driver runs on (for callers adding their own events). */
struct event_base *mesh_real_base(mesh_real *r);

/* Run the loop until mesh_real_stop() is called or nothing is left to wait for.
 * Returns MESH_OK or MESH_ERR_IO if libevent failed. */
int mesh_real_run(mesh_real *r);

/* Run the loop for at most duration_ns (or until mesh_real_stop()); MESH_OK, MESH_ERR_NOMEM
 * or MESH_ERR_IO.
 * Useful to let graceful closes flush before mesh_real_free(). */
int mesh_real_run_for(mesh_real *r, mesh_time duration_ns);

/* Run the loop until SIGINT or SIGTERM arrives (caught with evsignal, so the handler runs in
 * the loop, not in signal context), or until mesh_real_stop(). The signal handlers are
 * removed again before returning, so a second Ctrl-C during the caller's own shutdown kills
 * the process as usual. After it returns the caller closes its sessions and may call
 * mesh_real_run_for() to let them flush. Returns the signal number (SIGINT/SIGTERM), 0 when
 * stopped otherwise, or MESH_ERR_IO. */
int mesh_real_run_until_signal(mesh_real *r);

/* Install the mDNS adapter (node/real/mdns.c calls this; the core never does): from now on
 * the env's ops->mdns is ops (borrowed: static storage), called with this driver as obj; the
 * adapter finds its own state with mesh_real_mdns_ctx(). Envs handed out earlier see the
 * change (each driver has its own ops table). ctx_free (may be NULL) runs first thing in
 * mesh_real_free(), while the event_base and every handle still exist.
 * MESH_OK, MESH_ERR_INVAL (r or ops NULL), MESH_ERR_EXISTS (an adapter is installed). */
int mesh_real_set_mdns(mesh_real *r, const mesh_mdns_ops *ops, void *ctx,
                       void (*ctx_free)(void *ctx));
/* The ctx given to mesh_real_set_mdns(), NULL if none. */
void *mesh_real_mdns_ctx(const mesh_real *r);

/* Install the port-mapping adapter (node/real/portmap.c calls this), the same way: ops->portmap
 * becomes ops (static storage), called with this driver as obj; ctx_free runs in
 * mesh_real_free() before any handle is closed. MESH_OK, MESH_ERR_INVAL, MESH_ERR_EXISTS. */
int mesh_real_set_portmap(mesh_real *r, const mesh_portmap_ops *ops, void *ctx,
                          void (*ctx_free)(void *ctx));
/* The ctx given to mesh_real_set_portmap(), NULL if none. */
void *mesh_real_portmap_ctx(const mesh_real *r);

/* Make the running loop return after the current callback. Safe from any driver callback;
 * not async-signal-safe. Has no effect when the loop is not running. */
void mesh_real_stop(mesh_real *r);

#ifdef __cplusplus
}
#endif
#endif
