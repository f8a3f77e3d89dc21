/*
 * real/driver.c — env.h over libevent: helpers, clock, randomness, logging, the ops table, the
 * driver's lifecycle and its loop. The handles live in driver_{timer,stream,out,listen,dgram}.c;
 * their layout and the files' shared functions in driver_int.h. See driver.h for
 * the ownership and reentrancy story.
 */
#include "real/driver_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/event.h>
#include <event2/util.h>

/* ---- small helpers --------------------------------------------------------------------- */

static void real_log(void *obj, int level, const char *msg)
{
    mesh_real *r = obj;
    if (level < r->cfg.log_level)
        return;
    mesh_time now = real_now(r);
    if (r->cfg.log_sink) {
        r->cfg.log_sink(r->cfg.log_ud, level, now, msg);
        return;
    }
    static const char *const names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    const char *name = (level >= MESH_LOG_DEBUG && level <= MESH_LOG_ERROR) ? names[level] : "?";
    fprintf(stderr, "[%llu.%06llu] %s %s\n", (unsigned long long)(now / MESH_NS_PER_S),
            (unsigned long long)(now % MESH_NS_PER_S / MESH_NS_PER_US), name, msg);
}

void real_logf(mesh_real *r, int level, const char *fmt, ...)
{
    if (level < r->cfg.log_level)
        return;
    char line[MESH_REAL_LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    real_log(r, level, line);
}

struct timeval real_ms_to_tv(uint32_t ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* mesh_addr → sockaddr. Returns the length, 0 if the address is not usable. */
socklen_t real_addr_to_sa(const mesh_addr *a, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (a->family == MESH_AF_INET4) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(a->port);
        memcpy(&sin->sin_addr, a->ip, 4);
        return sizeof *sin;
    }
    if (a->family == MESH_AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(a->port);
        memcpy(&sin6->sin6_addr, a->ip, 16);
        return sizeof *sin6;
    }
    return 0;
}

/* sockaddr → mesh_addr. MESH_OK or MESH_ERR_INVAL for other families. */
int real_sa_to_addr(const struct sockaddr *sa, mesh_addr *out)
{
    memset(out, 0, sizeof *out);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        out->family = MESH_AF_INET4;
        out->port = ntohs(sin->sin_port);
        memcpy(out->ip, &sin->sin_addr, 4);
        return MESH_OK;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        out->family = MESH_AF_INET6;
        out->port = ntohs(sin6->sin6_port);
        memcpy(out->ip, &sin6->sin6_addr, 16);
        return MESH_OK;
    }
    return MESH_ERR_INVAL;
}

int real_fd_local_addr(evutil_socket_t fd, mesh_addr *out)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return MESH_ERR_IO;
    return real_sa_to_addr((struct sockaddr *)&ss, out);
}

/* errno of a socket operation → the env's error code for streams. */
int real_errno_to_mesh(int e)
{
    switch (e) {
    case ECONNREFUSED:
        return MESH_ERR_REFUSED;
    case ECONNRESET:
    case EPIPE:
    case ECONNABORTED:
        return MESH_ERR_RESET;
    case ETIMEDOUT:
        return MESH_ERR_TIMEOUT;
    case ENETUNREACH:
    case EHOSTUNREACH:
    case ENETDOWN:
    case EHOSTDOWN:
        return MESH_ERR_UNREACHABLE;
    case EADDRINUSE:
    case EADDRNOTAVAIL:
    case EACCES:
        return MESH_ERR_ADDR;
    case ENOMEM:
    case ENOBUFS:
        return MESH_ERR_NOMEM;
    default:
        return MESH_ERR_IO;
    }
}

/* ---- clock, randomness ----------------------------------------------------------------- */

mesh_time real_now(void *obj)
{
    (void)obj;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (mesh_time)ts.tv_sec * MESH_NS_PER_S + (mesh_time)ts.tv_nsec;
}

/* getrandom() blocks only until the kernel pool is initialised at boot, never fails on Linux
 * >= 3.17 with a valid buffer; a failure anyway means no safe randomness, so abort rather
 * than hand the core predictable bytes ("never fails" in env.h). */
static void real_random(void *obj, uint8_t *buf, size_t len)
{
    mesh_real *r = obj;
    while (len > 0) {
        ssize_t n = getrandom(buf, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            real_logf(r, MESH_LOG_ERROR, "getrandom: %s; no safe randomness, aborting",
                      strerror(errno));
            abort();
        }
        buf += n;
        len -= (size_t)n;
    }
}

/* ---- ops table, lifecycle, loop ---------------------------------------------------------- */

static const mesh_env_ops REAL_OPS = {
    .now = real_now,
    .random = real_random,
    .log = real_log,
    .timer_new = real_timer_new,
    .timer_set = real_timer_set,
    .timer_stop = real_timer_stop,
    .timer_free = real_timer_free,
    .listen = real_listen,
    .listener_addr = real_listener_addr,
    .listener_close = real_listener_close,
    .connect = real_connect,
    .connect_from = real_connect_from,
    .stream_set_cbs = real_stream_set_cbs,
    .stream_write = real_stream_write,
    .stream_reserve = real_stream_reserve,
    .stream_commit = real_stream_commit,
    .stream_pending = real_stream_pending,
    .stream_addrs = real_stream_addrs,
    .stream_close = real_stream_close,
    .dgram_bind = real_dgram_bind,
    .dgram_addr = real_dgram_addr,
    .dgram_send = real_dgram_send,
    .dgram_close = real_dgram_close,
    .mdns = NULL,
    .portmap = NULL,
};

void mesh_real_config_default(mesh_real_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->connect_timeout_ms = MESH_REAL_CONNECT_TIMEOUT_MS;
    cfg->linger_timeout_ms = MESH_REAL_LINGER_TIMEOUT_MS;
    cfg->log_level = MESH_LOG_INFO;
}

int mesh_real_new(mesh_real **out, struct event_base *base, const mesh_real_config *cfg)
{
    if (!out)
        return MESH_ERR_INVAL;
    mesh_real *r = calloc(1, sizeof *r);
    if (!r)
        return MESH_ERR_NOMEM;
    if (cfg)
        r->cfg = *cfg;
    else
        mesh_real_config_default(&r->cfg);
    if (r->cfg.connect_timeout_ms == 0)
        r->cfg.connect_timeout_ms = MESH_REAL_CONNECT_TIMEOUT_MS;
    if (r->cfg.linger_timeout_ms == 0)
        r->cfg.linger_timeout_ms = MESH_REAL_LINGER_TIMEOUT_MS;
    r->out = real_out_pool_new();
    if (!r->out) {
        free(r);
        return MESH_ERR_NOMEM;
    }
    if (base) {
        r->base = base;
    } else {
        /* Precise timers: libevent would otherwise use CLOCK_MONOTONIC_COARSE on Linux. */
        struct event_config *ec = event_config_new();
        if (ec)
            event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
        r->base = ec ? event_base_new_with_config(ec) : NULL;
        if (ec)
            event_config_free(ec);
        if (!r->base) {
            free(r->out);
            free(r);
            return MESH_ERR_IO;
        }
        r->own_base = 1;
    }
    r->ops = REAL_OPS;
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    *out = r;
    return MESH_OK;
}

void mesh_real_free(mesh_real *r)
{
    if (!r)
        return;
    if (r->mdns_free)
        r->mdns_free(r->mdns_ctx); /* adapters first: they may still use handles and the base */
    if (r->portmap_free)
        r->portmap_free(r->portmap_ctx);
    while (r->streams)
        real_stream_abort(r->streams);
    while (r->listeners)
        real_listener_destroy(r->listeners);
    while (r->dgrams)
        real_dgram_destroy(r->dgrams);
    while (r->timers)
        real_timer_destroy(r->timers);
    if (r->own_base)
        event_base_free(r->base);
    real_out_pool_close(r); /* blocks still in evbuffers come back later */
    free(r);
}

mesh_env mesh_real_env(mesh_real *r)
{
    mesh_env e = {.ops = &r->ops, .obj = r};
    return e;
}

int mesh_real_set_mdns(mesh_real *r, const mesh_mdns_ops *ops, void *ctx,
                       void (*ctx_free)(void *ctx))
{
    if (!r || !ops)
        return MESH_ERR_INVAL;
    if (r->ops.mdns)
        return MESH_ERR_EXISTS;
    r->ops.mdns = ops;
    r->mdns_ctx = ctx;
    r->mdns_free = ctx_free;
    return MESH_OK;
}

void *mesh_real_mdns_ctx(const mesh_real *r)
{
    return r ? r->mdns_ctx : NULL;
}

int mesh_real_set_portmap(mesh_real *r, const mesh_portmap_ops *ops, void *ctx,
                          void (*ctx_free)(void *ctx))
{
    if (!r || !ops)
        return MESH_ERR_INVAL;
    if (r->ops.portmap)
        return MESH_ERR_EXISTS;
    r->ops.portmap = ops;
    r->portmap_ctx = ctx;
    r->portmap_free = ctx_free;
    return MESH_OK;
}

void *mesh_real_portmap_ctx(const mesh_real *r)
{
    return r ? r->portmap_ctx : NULL;
}

struct event_base *mesh_real_base(mesh_real *r)
{
    return r ? r->base : NULL;
}

int mesh_real_run(mesh_real *r)
{
    if (!r)
        return MESH_ERR_INVAL;
    return event_base_dispatch(r->base) < 0 ? MESH_ERR_IO : MESH_OK;
}

static void run_for_expired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

int mesh_real_run_for(mesh_real *r, mesh_time duration_ns)
{
    if (!r)
        return MESH_ERR_INVAL;
    /* A private timer rather than event_base_loopexit(): if the loop stops early, the
     * loopexit would stay armed and cut a later run short. */
    struct event *limit = evtimer_new(r->base, run_for_expired, r->base);
    if (!limit)
        return MESH_ERR_NOMEM;
    mesh_time us = duration_ns / MESH_NS_PER_US;
    struct timeval tv = {.tv_sec = (time_t)(us / 1000000), .tv_usec = (suseconds_t)(us % 1000000)};
    int rc = evtimer_add(limit, &tv) == 0 ? event_base_dispatch(r->base) : -1;
    event_free(limit);
    return rc < 0 ? MESH_ERR_IO : MESH_OK;
}

static void real_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    mesh_real *r = arg;
    r->caught_signal = (int)sig;
    real_logf(r, MESH_LOG_INFO, "caught %s, stopping the loop",
              sig == SIGINT ? "SIGINT" : "SIGTERM");
    event_base_loopbreak(r->base);
}

int mesh_real_run_until_signal(mesh_real *r)
{
    if (!r)
        return MESH_ERR_INVAL;
    struct event *sigint = evsignal_new(r->base, SIGINT, real_signal_cb, r);
    struct event *sigterm = evsignal_new(r->base, SIGTERM, real_signal_cb, r);
    int rc = MESH_ERR_IO;
    if (!sigint || !sigterm || evsignal_add(sigint, NULL) != 0 || evsignal_add(sigterm, NULL) != 0)
        goto out;
    r->caught_signal = 0;
    if (event_base_dispatch(r->base) < 0)
        goto out;
    rc = r->caught_signal;
out:
    if (sigint)
        event_free(sigint);
    if (sigterm)
        event_free(sigterm);
    return rc;
}

void mesh_real_stop(mesh_real *r)
{
    if (r)
        event_base_loopbreak(r->base);
}
