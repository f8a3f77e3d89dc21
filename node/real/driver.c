/*
 * real/driver.c — env.h over libevent. See driver.h for the ownership and reentrancy story.
 *
 * Every handle sits on an intrusive list of its driver so mesh_real_free() can reclaim what the
 * core left open. Every handle also carries a "busy" count of core callbacks running for it and
 * a "released" flag: a close requested during a callback is carried out by the dispatcher once
 * the outermost callback has returned (rule 2).
 */
#include "real/driver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

/* Stream I/O sizes (private to this driver). libevent 2.1's bufferevent reads at most 4096
 * bytes per readiness event (EVBUFFER_MAX_READ, not configurable before 2.2) and writes at
 * most 16 KiB: at gigabytes per second that is one epoll_wait + ioctl + readv per 4 KiB, which
 * cost the receiver of a bulk session most of its time. So streams read with recv() straight
 * into one buffer per driver (on_data gets it contiguous, no evbuffer in between), and the
 * bufferevent, used for output only, may write a whole queue in one writev. */
enum real_stream_io {
    REAL_STREAM_READ_MAX = 64 * 1024,    /* bytes one recv() may deliver to on_data */
    REAL_STREAM_READS_PER_TURN = 16,     /* full reads per stream per loop turn (fairness) */
    REAL_STREAM_WRITE_MAX = 1024 * 1024, /* bytes one writev() may take from the queue */
    REAL_OUT_BLOCK = 16384 + 512,        /* an out_block: one TLS record (16 KiB + overhead) */
    REAL_OUT_BLOCK_MIN = 8192,           /* smaller writes are copied into libevent's chains */
    REAL_OUT_POOL_MAX = 320,             /* blocks kept per driver (~5 MiB: a 4 MiB send queue) */
};

/* Output memory for record-sized stream writes. A bulk sender queues megabytes (a session's
 * send queue) that drain a moment later; as libevent chains (malloc/free) that memory went back
 * to the system each time glibc trimmed the heap and was faulted in again on the next fill —
 * a quarter of a sender's time. Blocks from this pool are copied into once and handed to the
 * output evbuffer by reference; libevent gives them back when they are sent. libevent may do
 * that late (bufferevents are finalized from the loop, even from event_base_free() after
 * mesh_real_free()), so the pool is counted and outlives the driver while blocks are out. */
typedef struct out_block {
    struct out_pool *pool;
    struct out_block *next; /* in the pool's free list */
    uint8_t data[REAL_OUT_BLOCK];
} out_block;

typedef struct out_pool {
    out_block *free; /* kept for reuse, at most REAL_OUT_POOL_MAX */
    size_t nfree;
    size_t refs; /* blocks out in evbuffers, + 1 while the driver lives */
    int alive;   /* the driver has not been freed: keep returning blocks */
} out_pool;

/* ---- object layouts ------------------------------------------------------------------- */

/* Doubly linked list links, so any handle can leave its list in O(1). */
#define LIST_LINKS(type)                                                                           \
    type *prev;                                                                                    \
    type *next

#define LIST_INSERT(head, obj)                                                                     \
    do {                                                                                           \
        (obj)->prev = NULL;                                                                        \
        (obj)->next = (head);                                                                      \
        if (head)                                                                                  \
            (head)->prev = (obj);                                                                  \
        (head) = (obj);                                                                            \
    } while (0)

#define LIST_REMOVE(head, obj)                                                                     \
    do {                                                                                           \
        if ((obj)->prev)                                                                           \
            (obj)->prev->next = (obj)->next;                                                       \
        else                                                                                       \
            (head) = (obj)->next;                                                                  \
        if ((obj)->next)                                                                           \
            (obj)->next->prev = (obj)->prev;                                                       \
        (obj)->prev = (obj)->next = NULL;                                                          \
    } while (0)

struct mesh_timer {
    LIST_LINKS(struct mesh_timer);
    mesh_real *r;
    struct event *ev;
    mesh_timer_cb cb;
    void *ud;
    mesh_time deadline; /* absolute time the timer is armed for */
    int busy;           /* inside cb */
    int released;       /* timer_free() was called while busy */
};

enum stream_state {
    STREAM_CONNECTING = 0, /* outgoing connect in progress: conn_ev watches for writability */
    STREAM_OPEN = 1,       /* connected; callbacks go to the core */
    STREAM_LINGER = 2,     /* core released it gracefully: flushing, then FIN, then close */
};

struct mesh_stream {
    LIST_LINKS(struct mesh_stream);
    mesh_real *r;
    struct bufferevent *bev; /* owns the socket (BEV_OPT_CLOSE_ON_FREE); output only */
    struct event *rd_ev;     /* readability of the socket: stream_read_cb */
    struct event *conn_ev;   /* connect completion (outgoing streams while connecting) */
    struct event *timer;     /* connect timeout, then linger timeout */
    mesh_stream_cbs cbs;
    void *ud;
    int state;         /* enum stream_state */
    int busy;          /* core callbacks running for this stream */
    int released;      /* the core no longer holds the handle */
    int close_how;     /* what the core asked for when it released the handle */
    int connect_err;   /* errno of a connect() that failed at once, reported from the loop */
    int peer_eof;      /* the peer's FIN was seen */
    int wr_shut;       /* our FIN was sent */
    int want_writable; /* written since the last on_writable: report the next drain */
};

struct mesh_listener {
    LIST_LINKS(struct mesh_listener);
    mesh_real *r;
    struct evconnlistener *lev;
    struct event *backoff; /* re-enables accepting: next loop turn, or after an error */
    mesh_accept_cb cb;
    void *ud;
    int busy;
    int released;
    unsigned accepted;  /* since accepting was last enabled (MESH_REAL_ACCEPT_BATCH) */
    uint64_t failures;  /* accept() errors not logged yet */
    mesh_time log_next; /* no accept() error line before this */
};

struct mesh_dgram {
    LIST_LINKS(struct mesh_dgram);
    mesh_real *r;
    evutil_socket_t fd;
    struct event *ev;
    mesh_dgram_cb cb;
    void *ud;
    uint16_t port; /* bound port, for dgram_join's check */
    int family;    /* AF_INET / AF_INET6 */
    int busy;
    int released;
};

/* One resolve in flight. evdns may answer synchronously (numeric names, /etc/hosts), so the
 * answer is always copied here and delivered from the `deliver` event (rule 1).
 * Two parties hold the request: evdns until its callback ran (evdns_busy; a cancel is
 * answered later, from a deferred callback) and the core until its callback ran or the
 * driver is freed (finished). It is freed when both have let go. */
typedef struct mesh_resolve_req {
    LIST_LINKS(struct mesh_resolve_req);
    mesh_real *r;
    struct evdns_getaddrinfo_request *gai; /* evdns' handle while evdns_busy */
    struct event *deliver;
    mesh_resolve_cb cb;
    void *ud;
    uint16_t port;
    int evdns_busy;  /* evdns still holds a pointer to this request */
    int finished;    /* the core callback ran (or never will): only evdns may still hold it */
    int cancel_sent; /* evdns_getaddrinfo_cancel() was called */
    int result;
    size_t naddrs;
    mesh_addr addrs[MESH_REAL_RESOLVE_MAX_ADDRS];
} mesh_resolve_req;

struct mesh_real {
    struct event_base *base;
    int own_base;
    struct evdns_base *dns; /* created on the first resolve */
    int dns_local_only;     /* no nameserver to ask: numeric names and /etc/hosts only */
    size_t nresolves;       /* requests on `resolves`, at most MESH_REAL_RESOLVE_MAX_PENDING */
    mesh_real_config cfg;
    struct mesh_timer *timers;
    struct mesh_stream *streams;
    struct mesh_listener *listeners;
    struct mesh_dgram *dgrams;
    mesh_resolve_req *resolves;
    int caught_signal;
    mesh_env_ops ops; /* REAL_OPS plus the installed local-service adapters */
    void *mdns_ctx;   /* mesh_real_set_mdns() */
    void (*mdns_free)(void *ctx);
    uint8_t dgram_buf[MESH_REAL_DGRAM_MAX]; /* receive buffer shared by this driver's sockets */
    /* Receive buffer shared by this driver's streams: on_data borrows it for the callback
     * only (rule 3), and no read happens inside a callback (rule 1), so one is enough. */
    uint8_t stream_buf[REAL_STREAM_READ_MAX];
    out_pool *out;       /* see out_block */
    out_block *reserved; /* stream_reserve() handed out its data; stream_commit() takes it */
    size_t reserved_len;
    mesh_stream *reserved_for;
};

static const mesh_env_ops REAL_OPS;

/* ---- small helpers --------------------------------------------------------------------- */

static mesh_time real_now(void *obj);

static void real_logf(mesh_real *r, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

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

static void real_logf(mesh_real *r, int level, const char *fmt, ...)
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

static struct timeval ms_to_tv(uint32_t ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* mesh_addr → sockaddr. Returns the length, 0 if the address is not usable. */
static socklen_t addr_to_sa(const mesh_addr *a, struct sockaddr_storage *ss)
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
static int sa_to_addr(const struct sockaddr *sa, mesh_addr *out)
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

static int fd_local_addr(evutil_socket_t fd, mesh_addr *out)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return MESH_ERR_IO;
    return sa_to_addr((struct sockaddr *)&ss, out);
}

/* errno of a socket operation → the env's error code for streams. */
static int errno_to_mesh(int e)
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

static mesh_time real_now(void *obj)
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

/* ---- timers ------------------------------------------------------------------------------ */

static void timer_destroy(mesh_timer *t)
{
    LIST_REMOVE(t->r->timers, t);
    event_free(t->ev);
    free(t);
}

static void timer_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mesh_timer *t = arg;
    /* libevent measures timeouts against its cached loop time (and may use a coarse clock
     * on a caller's base), so it can wake us slightly before the deadline: re-arm for the
     * rest. env.h timers never fire early. */
    mesh_time now = real_now(t->r);
    if (now < t->deadline) {
        mesh_time us = (t->deadline - now + MESH_NS_PER_US - 1) / MESH_NS_PER_US;
        struct timeval tv = {.tv_sec = (time_t)(us / 1000000),
                             .tv_usec = (suseconds_t)(us % 1000000)};
        evtimer_add(t->ev, &tv);
        return;
    }
    t->busy++;
    if (t->cb)
        t->cb(t, t->ud);
    t->busy--;
    if (t->released && t->busy == 0)
        timer_destroy(t);
}

static mesh_timer *real_timer_new(void *obj, mesh_timer_cb cb, void *ud)
{
    mesh_real *r = obj;
    mesh_timer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ev = evtimer_new(r->base, timer_fire, t);
    if (!t->ev) {
        free(t);
        return NULL;
    }
    t->r = r;
    t->cb = cb;
    t->ud = ud;
    LIST_INSERT(r->timers, t);
    return t;
}

static void real_timer_set(void *obj, mesh_timer *t, mesh_time when)
{
    if (!t || t->released)
        return;
    if (when == MESH_TIME_NEVER) {
        evtimer_del(t->ev);
        return;
    }
    mesh_time now = real_now(obj);
    t->deadline = when;
    /* A deadline in the past fires on the next loop turn (zero delay), never from here.
     * Round up to whole microseconds so the timer never fires before `when`. */
    mesh_time delta = when > now ? when - now : 0;
    mesh_time us = (delta + MESH_NS_PER_US - 1) / MESH_NS_PER_US;
    struct timeval tv = {.tv_sec = (time_t)(us / 1000000), .tv_usec = (suseconds_t)(us % 1000000)};
    evtimer_add(t->ev, &tv);
}

static void real_timer_stop(void *obj, mesh_timer *t)
{
    (void)obj;
    if (t)
        evtimer_del(t->ev);
}

static void real_timer_free(void *obj, mesh_timer *t)
{
    (void)obj;
    if (!t || t->released)
        return;
    evtimer_del(t->ev);
    t->released = 1;
    if (t->busy == 0)
        timer_destroy(t);
}

/* ---- streams ------------------------------------------------------------------------------ */

static void stream_read_cb(evutil_socket_t fd, short what, void *arg);
static void stream_writecb(struct bufferevent *bev, void *arg);
static void stream_eventcb(struct bufferevent *bev, short what, void *arg);
static void stream_finish_release(mesh_stream *s);

static void out_put(out_pool *p, out_block *b);

static void stream_destroy(mesh_stream *s)
{
    LIST_REMOVE(s->r->streams, s);
    if (s->r->reserved_for == s) { /* reserved and never committed: a caller bug */
        out_put(s->r->out, s->r->reserved);
        s->r->reserved = NULL;
        s->r->reserved_for = NULL;
    }
    if (s->conn_ev)
        event_free(s->conn_ev);
    if (s->timer)
        event_free(s->timer);
    if (s->rd_ev)
        event_free(s->rd_ev); /* before the socket it watches is closed */
    if (s->bev)
        bufferevent_free(s->bev); /* closes the socket */
    free(s);
}

/* Tear down with a RST: SO_LINGER {on, 0 s} makes close() discard unsent data and reset. */
static void stream_abort(mesh_stream *s)
{
    if (s->bev && s->state != STREAM_CONNECTING) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        evutil_socket_t fd = bufferevent_getfd(s->bev);
        if (fd >= 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    stream_destroy(s);
}

static mesh_stream *stream_alloc(mesh_real *r, evutil_socket_t fd)
{
    mesh_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    /* The read event first: on failure the caller still owns fd (the bufferevent would
     * close it). */
    s->rd_ev = event_new(r->base, fd, EV_READ | EV_PERSIST, stream_read_cb, s);
    s->bev = s->rd_ev ? bufferevent_socket_new(r->base, fd, BEV_OPT_CLOSE_ON_FREE) : NULL;
    if (!s->bev) {
        if (s->rd_ev)
            event_free(s->rd_ev);
        free(s);
        return NULL;
    }
    s->r = r;
    /* Output only: input is read by stream_read_cb (see enum real_stream_io). */
    bufferevent_setcb(s->bev, NULL, stream_writecb, stream_eventcb, s);
    bufferevent_set_max_single_write(s->bev, REAL_STREAM_WRITE_MAX);
    /* Low write watermark 0: the write callback (→ on_writable) runs when the output buffer
     * is completely drained to the kernel. */
    bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
    LIST_INSERT(r->streams, s);
    return s;
}

/* Start (or resume) both directions; reading only while the peer has not sent its FIN (a
 * FIN stays readable for ever). */
static void stream_io_enable(mesh_stream *s)
{
    bufferevent_enable(s->bev, EV_WRITE);
    if (!s->peer_eof)
        event_add(s->rd_ev, NULL);
}

static void stream_io_disable(mesh_stream *s)
{
    bufferevent_disable(s->bev, EV_READ | EV_WRITE);
    event_del(s->rd_ev);
}

/* Report the end of the stream to the core, then finish it: after a peer FIN our queued
 * output still drains (linger); after an error the socket is simply closed. */
static void stream_report_closed(mesh_stream *s, int reason)
{
    s->released = 1;
    s->close_how = reason == MESH_OK ? MESH_CLOSE_GRACEFUL : MESH_CLOSE_ABORT;
    if (s->cbs.on_closed) {
        s->busy++;
        s->cbs.on_closed(s, reason, s->ud);
        s->busy--;
    }
    if (s->busy == 0)
        stream_finish_release(s);
}

/* Graceful close of a stream the core no longer holds: flush, FIN, discard input, close. */
static void linger_check(mesh_stream *s)
{
    struct evbuffer *out = bufferevent_get_output(s->bev);
    if (evbuffer_get_length(out) > 0)
        return; /* stream_writecb comes back here once drained */
    if (!s->wr_shut) {
        s->wr_shut = 1;
        if (shutdown(bufferevent_getfd(s->bev), SHUT_WR) != 0) {
            stream_destroy(s);
            return;
        }
    }
    if (s->peer_eof)
        stream_destroy(s); /* both FINs exchanged: nothing left to wait for */
}

static void stream_timer_cb(evutil_socket_t fd, short what, void *arg);

static void stream_enter_linger(mesh_stream *s)
{
    s->state = STREAM_LINGER;
    struct timeval tv = ms_to_tv(s->r->cfg.linger_timeout_ms);
    if (!s->timer)
        s->timer = evtimer_new(s->r->base, stream_timer_cb, s);
    if (!s->timer) {
        stream_destroy(s);
        return;
    }
    evtimer_add(s->timer, &tv);
    stream_io_enable(s); /* reads are discarded now, until the peer's FIN */
    linger_check(s);
}

/* Carry out the release the core (or on_closed) asked for; only when no callback runs. */
static void stream_finish_release(mesh_stream *s)
{
    if (s->close_how == MESH_CLOSE_GRACEFUL && s->state == STREAM_OPEN)
        stream_enter_linger(s);
    else if (s->state == STREAM_CONNECTING)
        stream_destroy(s); /* nothing was sent yet: no FIN or RST to choose between */
    else
        stream_abort(s);
}

/* The peer's FIN (recv() returned 0). */
static void stream_read_eof(mesh_stream *s)
{
    s->peer_eof = 1;
    event_del(s->rd_ev);
    if (s->state == STREAM_LINGER)
        linger_check(s);
    else
        stream_report_closed(s, MESH_OK); /* after every byte before it was delivered */
}

/* recv() failed with err (not EAGAIN). */
static void stream_read_failed(mesh_stream *s, int err)
{
    event_del(s->rd_ev);
    if (s->state == STREAM_LINGER) {
        stream_destroy(s);
        return;
    }
    real_logf(s->r, MESH_LOG_DEBUG, "stream %p: %s", (void *)s, evutil_socket_error_to_string(err));
    stream_report_closed(s, errno_to_mesh(err));
}

/* Read up to `turns` full buffers from the socket, handing each read to on_data (the buffer
 * is drained by the callback's return: rule 3); in LINGER the bytes are discarded. A FIN or
 * an error ends the stream. Returns 1 if the stream is still open for the core, 0 if it was
 * released, reported closed or destroyed (s must not be touched then). */
static int stream_read(mesh_stream *s, int turns)
{
    mesh_real *r = s->r;
    evutil_socket_t fd = bufferevent_getfd(s->bev);
    for (int turn = 0; turn < turns; turn++) {
        ssize_t n = recv(fd, r->stream_buf, sizeof r->stream_buf, 0);
        if (n < 0) {
            int err = errno;
            if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)
                break;
            stream_read_failed(s, err);
            return 0;
        }
        if (n == 0) {
            stream_read_eof(s);
            return 0;
        }
        if (s->state != STREAM_LINGER) {
            s->busy++;
            if (s->cbs.on_data)
                s->cbs.on_data(s, r->stream_buf, (size_t)n, s->ud);
            s->busy--;
            if (s->released) {
                if (s->busy == 0)
                    stream_finish_release(s);
                return 0;
            }
        }
        if ((size_t)n < sizeof r->stream_buf)
            break; /* the socket is drained */
    }
    return s->state != STREAM_LINGER;
}

static void stream_read_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)stream_read(arg, REAL_STREAM_READS_PER_TURN);
}

static void stream_writecb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    mesh_stream *s = arg;
    if (s->state == STREAM_LINGER) {
        linger_check(s);
        return;
    }
    /* libevent also calls this when the socket merely became writable with nothing to send:
     * on_writable reports a drain of what the core wrote, so only after a write. */
    if (s->released || !s->want_writable || evbuffer_get_length(bufferevent_get_output(s->bev)) > 0)
        return;
    s->want_writable = 0;
    if (!s->cbs.on_writable)
        return;
    s->busy++;
    s->cbs.on_writable(s, s->ud);
    s->busy--;
    if (s->released && s->busy == 0)
        stream_finish_release(s);
}

/* The bufferevent only writes, so what it reports is a failed write (or a write of 0 bytes,
 * which libevent calls EOF). */
static void stream_eventcb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    mesh_stream *s = arg;
    int err = EVUTIL_SOCKET_ERROR();
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    if (s->state == STREAM_LINGER) {
        stream_destroy(s);
        return;
    }
    if (s->released)
        return;
    /* Whatever the peer sent before the failure is delivered first (its FIN or the error
     * may be reported from there). */
    if (!stream_read(s, INT_MAX))
        return;
    real_logf(s->r, MESH_LOG_DEBUG, "stream %p: write: %s", (void *)s,
              evutil_socket_error_to_string(err));
    event_del(s->rd_ev);
    stream_report_closed(s, (what & BEV_EVENT_ERROR) ? errno_to_mesh(err) : MESH_ERR_RESET);
}

static void stream_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mesh_stream *s = arg;
    if (s->state == STREAM_LINGER) {
        real_logf(s->r, MESH_LOG_DEBUG, "stream %p: linger timeout, closing", (void *)s);
        stream_abort(s);
        return;
    }
    if (s->state == STREAM_CONNECTING && !s->released)
        stream_report_closed(s, MESH_ERR_TIMEOUT);
}

/* Writability of a connecting socket (or the deferred report of a connect that failed at
 * once): read the outcome from SO_ERROR. */
static void stream_connect_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    mesh_stream *s = arg;
    int err = s->connect_err;
    if (!err) {
        socklen_t len = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
    }
    if (err == EINPROGRESS || err == EALREADY)
        return; /* spurious wakeup: still connecting (conn_ev is persistent) */
    event_free(s->conn_ev);
    s->conn_ev = NULL;
    if (s->timer)
        evtimer_del(s->timer);
    if (err) {
        stream_report_closed(s, errno_to_mesh(err));
        return;
    }
    s->state = STREAM_OPEN;
    stream_io_enable(s);
    if (s->cbs.on_connected) {
        s->busy++;
        s->cbs.on_connected(s, s->ud);
        s->busy--;
        if (s->released && s->busy == 0)
            stream_finish_release(s);
    }
}

static mesh_stream *real_connect(void *obj, const mesh_addr *to, const mesh_stream_cbs *cbs,
                                 void *ud, int *err)
{
    mesh_real *r = obj;
    int dummy;
    if (!err)
        err = &dummy;
    struct sockaddr_storage ss;
    socklen_t sl = to ? addr_to_sa(to, &ss) : 0;
    if (!sl || to->port == 0) {
        *err = MESH_ERR_INVAL;
        return NULL;
    }
    evutil_socket_t fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = errno_to_mesh(errno) == MESH_ERR_NOMEM ? MESH_ERR_NOMEM : MESH_ERR_IO;
        real_logf(r, MESH_LOG_WARN, "connect: socket: %s", strerror(errno));
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    mesh_stream *s = stream_alloc(r, fd);
    if (!s) {
        close(fd);
        *err = MESH_ERR_NOMEM;
        return NULL;
    }
    /* Until connected the bufferevent stays disabled: writes just queue in its output. */
    stream_io_disable(s);
    s->state = STREAM_CONNECTING;
    if (cbs)
        s->cbs = *cbs;
    s->ud = ud;
    s->conn_ev = event_new(r->base, fd, EV_WRITE | EV_PERSIST, stream_connect_cb, s);
    s->timer = evtimer_new(r->base, stream_timer_cb, s);
    if (!s->conn_ev || !s->timer) {
        stream_destroy(s);
        *err = MESH_ERR_NOMEM;
        return NULL;
    }
    if (connect(fd, (struct sockaddr *)&ss, sl) == 0 || errno == EINPROGRESS) {
        struct timeval tv = ms_to_tv(r->cfg.connect_timeout_ms);
        event_add(s->conn_ev, NULL);
        evtimer_add(s->timer, &tv);
    } else {
        /* Failed at once (refused, unreachable...): report it from the loop (rule 1). */
        s->connect_err = errno ? errno : EIO;
        event_active(s->conn_ev, EV_WRITE, 0);
    }
    return s;
}

static void real_stream_set_cbs(void *obj, mesh_stream *s, const mesh_stream_cbs *cbs, void *ud)
{
    (void)obj;
    if (!s || s->released)
        return;
    if (cbs)
        s->cbs = *cbs;
    else
        memset(&s->cbs, 0, sizeof s->cbs);
    s->ud = ud;
}

static void out_pool_unref(out_pool *p)
{
    if (--p->refs == 0)
        free(p);
}

/* evbuffer cleanup of a referenced block: back to the pool (or freed). */
static void out_block_done(const void *data, size_t len, void *extra)
{
    (void)data;
    (void)len;
    out_block *b = extra;
    out_pool *p = b->pool;
    if (p->alive && p->nfree < REAL_OUT_POOL_MAX) {
        b->next = p->free;
        p->free = b;
        p->nfree++;
    } else {
        free(b);
    }
    out_pool_unref(p);
}

/* A block from the pool (or a new one), NULL without memory. */
static out_block *out_get(out_pool *p)
{
    out_block *b = p->free;
    if (b) {
        p->free = b->next;
        p->nfree--;
    } else if (!(b = malloc(sizeof *b))) {
        return NULL;
    }
    b->pool = p;
    return b;
}

/* A block that never went out: back to the pool. */
static void out_put(out_pool *p, out_block *b)
{
    p->refs++;
    out_block_done(b->data, 0, b);
}

/* Hand len bytes of b to out by reference. 0, or -1 (b is freed). */
static int out_ref(out_pool *p, struct evbuffer *out, out_block *b, size_t len)
{
    if (evbuffer_add_reference(out, b->data, len, out_block_done, b) != 0) {
        free(b); /* libevent did not take it: no cleanup will come */
        return -1;
    }
    p->refs++;
    return 0;
}

static int real_stream_write(void *obj, mesh_stream *s, const void *data, size_t len)
{
    mesh_real *r = obj;
    if (!s || (!data && len > 0))
        return MESH_ERR_INVAL;
    if (s->released || s->peer_eof)
        return MESH_ERR_CLOSED;
    if (len == 0)
        return MESH_OK;
    /* Both only append (copying) and schedule the socket write for the loop. Record-sized
     * writes are copied into a pool block, smaller ones into libevent's chains. */
    int rc;
    if (len >= REAL_OUT_BLOCK_MIN && len <= REAL_OUT_BLOCK) {
        out_block *b = out_get(r->out);
        if (b)
            memcpy(b->data, data, len);
        rc = b ? out_ref(r->out, bufferevent_get_output(s->bev), b, len) : -1;
    } else {
        rc = bufferevent_write(s->bev, data, len);
    }
    if (rc != 0)
        return MESH_ERR_NOMEM;
    s->want_writable = 1;
    return MESH_OK;
}

/* Room in a pool block, for record-sized writes only (smaller ones are cheaper copied). */
static uint8_t *real_stream_reserve(void *obj, mesh_stream *s, size_t len)
{
    mesh_real *r = obj;
    if (!s || s->released || s->peer_eof || r->reserved || len < REAL_OUT_BLOCK_MIN ||
        len > REAL_OUT_BLOCK)
        return NULL;
    if (!(r->reserved = out_get(r->out)))
        return NULL;
    r->reserved_len = len;
    r->reserved_for = s;
    return r->reserved->data;
}

static int real_stream_commit(void *obj, mesh_stream *s, size_t len)
{
    mesh_real *r = obj;
    out_block *b = r->reserved;
    if (!b || s != r->reserved_for || len > r->reserved_len)
        return MESH_ERR_INVAL; /* the reservation stays: a caller bug, not lost memory */
    r->reserved = NULL;
    r->reserved_for = NULL;
    if (len == 0 || s->released || s->peer_eof) {
        out_put(r->out, b);
        return len == 0 ? MESH_OK : MESH_ERR_CLOSED;
    }
    if (out_ref(r->out, bufferevent_get_output(s->bev), b, len) != 0)
        return MESH_ERR_NOMEM;
    s->want_writable = 1;
    return MESH_OK;
}

static size_t real_stream_pending(void *obj, mesh_stream *s)
{
    (void)obj;
    if (!s || !s->bev)
        return 0;
    return evbuffer_get_length(bufferevent_get_output(s->bev));
}

static int real_stream_addrs(void *obj, mesh_stream *s, mesh_addr *local, mesh_addr *remote)
{
    (void)obj;
    if (!s || !s->bev)
        return MESH_ERR_INVAL;
    evutil_socket_t fd = bufferevent_getfd(s->bev);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (local) {
        if (fd_local_addr(fd, local) != MESH_OK)
            return MESH_ERR_IO;
    }
    if (remote) {
        if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
            return errno == ENOTCONN ? MESH_ERR_STATE : MESH_ERR_IO;
        if (sa_to_addr((struct sockaddr *)&ss, remote) != MESH_OK)
            return MESH_ERR_IO;
    }
    return MESH_OK;
}

static void real_stream_close(void *obj, mesh_stream *s, int how)
{
    mesh_real *r = obj;
    if (!s)
        return;
    if (s->released) {
        real_logf(r, MESH_LOG_ERROR, "stream_close on a released stream %p (env rule 4)",
                  (void *)s);
        return;
    }
    s->released = 1;
    s->close_how = how == MESH_CLOSE_ABORT ? MESH_CLOSE_ABORT : MESH_CLOSE_GRACEFUL;
    if (s->busy == 0)
        stream_finish_release(s);
}

/* ---- listeners ------------------------------------------------------------------------------ */

static void listener_destroy(mesh_listener *l)
{
    LIST_REMOVE(l->r->listeners, l);
    if (l->backoff)
        event_free(l->backoff);
    evconnlistener_free(l->lev);
    free(l);
}

static void listener_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                               int salen, void *arg)
{
    (void)lev;
    (void)salen;
    mesh_listener *l = arg;
    mesh_real *r = l->r;
    mesh_addr peer;
    if (l->released || sa_to_addr(sa, &peer) != MESH_OK) {
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    mesh_stream *s = stream_alloc(r, fd);
    if (!s) {
        real_logf(r, MESH_LOG_WARN, "accept: out of memory, dropping connection");
        close(fd);
        return;
    }
    stream_io_disable(s);
    s->state = STREAM_OPEN;
    if (l->cb) {
        l->busy++;
        s->busy++;
        l->cb(l, s, &peer, l->ud);
        s->busy--;
        l->busy--;
    }
    if (s->released)
        stream_finish_release(s);
    else
        stream_io_enable(s);
    if (l->released && l->busy == 0) {
        listener_destroy(l);
    } else if (!l->released && ++l->accepted >= MESH_REAL_ACCEPT_BATCH) {
        /* libevent accepts until the queue is empty: under a flood of connections, the ones
         * accepted first would wait for their first read behind hundreds of accepts (and a
         * server evicting idle handshakes would evict them unread). Pause until the next
         * loop turn, which reads what arrived meanwhile. */
        evconnlistener_disable(l->lev);
        struct timeval now = {0, 0};
        evtimer_add(l->backoff, &now);
    }
}

static void listener_backoff_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mesh_listener *l = arg;
    l->accepted = 0;
    evconnlistener_enable(l->lev);
}

/* accept() failed (typically EMFILE, out of descriptors): without a pause libevent would retry
 * at once, forever. The connections wait in the backlog meanwhile, served once descriptors
 * are free again. Logged at most once per MESH_REAL_ACCEPT_LOG_MS, with the count. */
static void listener_error_cb(struct evconnlistener *lev, void *arg)
{
    mesh_listener *l = arg;
    int err = EVUTIL_SOCKET_ERROR();
    mesh_time now = real_now(l->r);
    l->failures++;
    if (now >= l->log_next) {
        real_logf(l->r, MESH_LOG_WARN,
                  "accept: %s; pausing %d ms (%llu times since the last such line, at most one "
                  "every %d s)",
                  evutil_socket_error_to_string(err), MESH_REAL_ACCEPT_BACKOFF_MS,
                  (unsigned long long)l->failures, MESH_REAL_ACCEPT_LOG_MS / 1000);
        l->failures = 0;
        l->log_next = now + (mesh_time)MESH_REAL_ACCEPT_LOG_MS * MESH_NS_PER_MS;
    }
    evconnlistener_disable(lev);
    struct timeval tv = ms_to_tv(MESH_REAL_ACCEPT_BACKOFF_MS);
    evtimer_add(l->backoff, &tv);
}

static mesh_listener *real_listen(void *obj, const mesh_addr *addr, mesh_accept_cb cb, void *ud,
                                  int *err)
{
    mesh_real *r = obj;
    int dummy;
    if (!err)
        err = &dummy;
    struct sockaddr_storage ss;
    socklen_t sl = addr ? addr_to_sa(addr, &ss) : 0;
    if (!sl) {
        *err = MESH_ERR_INVAL;
        return NULL;
    }
    mesh_listener *l = calloc(1, sizeof *l);
    if (!l) {
        *err = MESH_ERR_NOMEM;
        return NULL;
    }
    l->r = r;
    l->cb = cb;
    l->ud = ud;
    l->backoff = evtimer_new(r->base, listener_backoff_cb, l);
    if (!l->backoff) {
        free(l);
        *err = MESH_ERR_NOMEM;
        return NULL;
    }
    /* IPv6 listeners are v6-only so the same port can also be bound on IPv4. */
    unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE;
    if (ss.ss_family == AF_INET6)
        flags |= LEV_OPT_BIND_IPV6ONLY;
    errno = 0;
    l->lev = evconnlistener_new_bind(r->base, listener_accept_cb, l, flags,
                                     MESH_REAL_LISTEN_BACKLOG, (struct sockaddr *)&ss, (int)sl);
    if (!l->lev) {
        int e = errno;
        char text[MESH_ADDR_STRLEN];
        real_logf(r, MESH_LOG_WARN, "listen %s: %s", mesh_addr_format(addr, text, sizeof text),
                  strerror(e));
        event_free(l->backoff);
        free(l);
        *err = e == ENOMEM ? MESH_ERR_NOMEM : MESH_ERR_ADDR;
        return NULL;
    }
    evconnlistener_set_error_cb(l->lev, listener_error_cb);
    LIST_INSERT(r->listeners, l);
    return l;
}

static int real_listener_addr(void *obj, mesh_listener *l, mesh_addr *out)
{
    (void)obj;
    if (!l || !out || l->released)
        return MESH_ERR_INVAL;
    return fd_local_addr(evconnlistener_get_fd(l->lev), out);
}

static void real_listener_close(void *obj, mesh_listener *l)
{
    (void)obj;
    if (!l || l->released)
        return;
    l->released = 1;
    evconnlistener_disable(l->lev);
    if (l->busy == 0)
        listener_destroy(l);
}

/* ---- datagrams ---------------------------------------------------------------------------- */

static void dgram_destroy(mesh_dgram *d)
{
    LIST_REMOVE(d->r->dgrams, d);
    event_free(d->ev);
    close(d->fd);
    free(d);
}

static void dgram_readcb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    mesh_dgram *d = arg;
    mesh_real *r = d->r;
    d->busy++;
    /* A bounded burst per turn so one busy socket cannot starve the rest of the loop. */
    for (int i = 0; i < MESH_REAL_DGRAM_BURST && !d->released; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        ssize_t n = recvfrom(fd, r->dgram_buf, sizeof r->dgram_buf, 0, (struct sockaddr *)&ss, &sl);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                real_logf(r, MESH_LOG_DEBUG, "dgram recvfrom: %s", strerror(errno));
            if (errno != ECONNREFUSED && errno != EHOSTUNREACH && errno != ENETUNREACH)
                break; /* EAGAIN or a real error: try again next readiness */
            continue;  /* an ICMP error queued on the socket: skip it */
        }
        mesh_addr from;
        if (sa_to_addr((struct sockaddr *)&ss, &from) != MESH_OK)
            continue;
        if (d->cb)
            d->cb(d, &from, r->dgram_buf, (size_t)n, d->ud);
    }
    d->busy--;
    if (d->released && d->busy == 0)
        dgram_destroy(d);
}

static mesh_dgram *real_dgram_bind(void *obj, const mesh_addr *addr, mesh_dgram_cb cb, void *ud,
                                   int *err)
{
    mesh_real *r = obj;
    int dummy;
    if (!err)
        err = &dummy;
    struct sockaddr_storage ss;
    socklen_t sl = addr ? addr_to_sa(addr, &ss) : 0;
    if (!sl) {
        *err = MESH_ERR_INVAL;
        return NULL;
    }
    mesh_dgram *d = calloc(1, sizeof *d);
    if (!d) {
        *err = MESH_ERR_NOMEM;
        return NULL;
    }
    d->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (d->fd < 0) {
        *err = MESH_ERR_IO;
        real_logf(r, MESH_LOG_WARN, "dgram socket: %s", strerror(errno));
        free(d);
        return NULL;
    }
    int one = 1;
    /* SO_REUSEADDR lets several members of a multicast group share the group's port. */
    setsockopt(d->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6)
        setsockopt(d->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(d->fd, (struct sockaddr *)&ss, sl) != 0) {
        int e = errno;
        char text[MESH_ADDR_STRLEN];
        real_logf(r, MESH_LOG_WARN, "dgram bind %s: %s", mesh_addr_format(addr, text, sizeof text),
                  strerror(e));
        close(d->fd);
        free(d);
        *err = MESH_ERR_ADDR;
        return NULL;
    }
    mesh_addr bound;
    if (fd_local_addr(d->fd, &bound) != MESH_OK ||
        !(d->ev = event_new(r->base, d->fd, EV_READ | EV_PERSIST, dgram_readcb, d)) ||
        event_add(d->ev, NULL) != 0) {
        if (d->ev)
            event_free(d->ev);
        close(d->fd);
        free(d);
        *err = MESH_ERR_NOMEM;
        return NULL;
    }
    d->r = r;
    d->cb = cb;
    d->ud = ud;
    d->port = bound.port;
    d->family = ss.ss_family;
    LIST_INSERT(r->dgrams, d);
    return d;
}

static int real_dgram_addr(void *obj, mesh_dgram *d, mesh_addr *out)
{
    (void)obj;
    if (!d || !out || d->released)
        return MESH_ERR_INVAL;
    return fd_local_addr(d->fd, out);
}

static int real_dgram_send(void *obj, mesh_dgram *d, const mesh_addr *to, const void *data,
                           size_t len)
{
    mesh_real *r = obj;
    if (!d || !to || (!data && len > 0) || d->released)
        return MESH_ERR_INVAL;
    if (len > MESH_REAL_DGRAM_MAX)
        return MESH_ERR_TOO_BIG;
    struct sockaddr_storage ss;
    socklen_t sl = addr_to_sa(to, &ss);
    if (!sl || ss.ss_family != d->family || to->port == 0)
        return MESH_ERR_INVAL;
    for (;;) {
        if (sendto(d->fd, data, len, 0, (struct sockaddr *)&ss, sl) >= 0)
            return MESH_OK;
        if (errno == EINTR)
            continue;
        break;
    }
    int e = errno;
    switch (e) {
    case EAGAIN:
    case ENOBUFS:
        return MESH_OK; /* a full send queue loses the datagram, as a network would */
    case EMSGSIZE:
        return MESH_ERR_TOO_BIG;
    default:
        real_logf(r, MESH_LOG_DEBUG, "dgram sendto: %s", strerror(e));
        return errno_to_mesh(e);
    }
}

static int real_dgram_join(void *obj, mesh_dgram *d, const mesh_addr *group)
{
    mesh_real *r = obj;
    if (!d || !group || d->released)
        return MESH_ERR_INVAL;
    /* The group's datagrams are addressed to the group's port: a socket bound elsewhere would
     * never see them. Port 0 in group means "the bound port". */
    if (group->port != 0 && group->port != d->port)
        return MESH_ERR_INVAL;
    int one = 1;
    if (group->family == MESH_AF_INET4 && d->family == AF_INET) {
        if ((group->ip[0] & 0xf0) != 0xe0)
            return MESH_ERR_INVAL; /* not in 224.0.0.0/4 */
        struct ip_mreqn mreq;
        memset(&mreq, 0, sizeof mreq);
        memcpy(&mreq.imr_multiaddr, group->ip, 4);
        /* Interface: the bound address when it is specific, else the kernel's route for the
         * group. Loop on, so group members on this host (and tests) see our own sends. */
        mesh_addr bound;
        if (fd_local_addr(d->fd, &bound) == MESH_OK)
            memcpy(&mreq.imr_address, bound.ip, 4);
        if (setsockopt(d->fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) != 0)
            goto fail;
        unsigned char loop = 1;
        setsockopt(d->fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop);
        return MESH_OK;
    }
    if (group->family == MESH_AF_INET6 && d->family == AF_INET6) {
        if (group->ip[0] != 0xff)
            return MESH_ERR_INVAL; /* not in ff00::/8 */
        struct ipv6_mreq mreq;
        memset(&mreq, 0, sizeof mreq);
        memcpy(&mreq.ipv6mr_multiaddr, group->ip, 16);
        if (setsockopt(d->fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mreq, sizeof mreq) != 0)
            goto fail;
        setsockopt(d->fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &one, sizeof one);
        return MESH_OK;
    }
    return MESH_ERR_INVAL;
fail:;
    int e = errno;
    char text[MESH_ADDR_STRLEN];
    real_logf(r, MESH_LOG_WARN, "multicast join %s: %s", mesh_addr_format(group, text, sizeof text),
              strerror(e));
    return e == ENODEV || e == EADDRNOTAVAIL ? MESH_ERR_UNREACHABLE : MESH_ERR_IO;
}

static void real_dgram_close(void *obj, mesh_dgram *d)
{
    (void)obj;
    if (!d || d->released)
        return;
    d->released = 1;
    event_del(d->ev);
    if (d->busy == 0)
        dgram_destroy(d);
}

/* ---- name resolution ------------------------------------------------------------------------ */

static void resolve_destroy(mesh_resolve_req *q)
{
    LIST_REMOVE(q->r->resolves, q);
    q->r->nresolves--;
    event_free(q->deliver);
    free(q);
}

static int gai_to_mesh(int e)
{
    switch (e) {
    case 0:
        return MESH_OK;
    case EVUTIL_EAI_NONAME:
    case EVUTIL_EAI_NODATA:
    case EVUTIL_EAI_FAIL:
        return MESH_ERR_NOT_FOUND;
    case EVUTIL_EAI_AGAIN:
        return MESH_ERR_TIMEOUT;
    case EVUTIL_EAI_MEMORY:
        return MESH_ERR_NOMEM;
    case EVUTIL_EAI_FAMILY:
    case EVUTIL_EAI_SERVICE:
    case EVUTIL_EAI_BADFLAGS:
        return MESH_ERR_INVAL;
    default:
        return MESH_ERR_IO;
    }
}

/* evdns' answer (possibly synchronous, from inside real_resolve): copy and defer. */
static void resolve_gai_cb(int result, struct evutil_addrinfo *res, void *arg)
{
    mesh_resolve_req *q = arg;
    q->gai = NULL;
    q->evdns_busy = 0;
    if (q->finished) {
        if (res)
            evutil_freeaddrinfo(res);
        resolve_destroy(q);
        return;
    }
    if (result == EVUTIL_EAI_CANCEL) {
        /* our own cancel (hosts-only mode): the answer is already scheduled */
        if (res)
            evutil_freeaddrinfo(res);
        return;
    }
    q->result = gai_to_mesh(result);
    for (struct evutil_addrinfo *ai = res; ai && q->naddrs < MESH_REAL_RESOLVE_MAX_ADDRS;
         ai = ai->ai_next) {
        mesh_addr a;
        if (!ai->ai_addr || sa_to_addr(ai->ai_addr, &a) != MESH_OK)
            continue;
        a.port = q->port;
        q->addrs[q->naddrs++] = a;
    }
    if (res)
        evutil_freeaddrinfo(res);
    if (q->result == MESH_OK && q->naddrs == 0)
        q->result = MESH_ERR_NOT_FOUND;
    event_active(q->deliver, EV_TIMEOUT, 0);
}

static void resolve_deliver_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mesh_resolve_req *q = arg;
    /* Copy out and let go before the callback: it may start a new resolve, or anything. */
    mesh_resolve_cb cb = q->cb;
    void *ud = q->ud;
    int result = q->result;
    size_t n = q->naddrs;
    mesh_addr addrs[MESH_REAL_RESOLVE_MAX_ADDRS];
    memcpy(addrs, q->addrs, n * sizeof addrs[0]);
    q->finished = 1;
    if (!q->evdns_busy)
        resolve_destroy(q);
    if (cb)
        cb(result, result == MESH_OK ? addrs : NULL, result == MESH_OK ? n : 0, ud);
}

static int real_ensure_dns(mesh_real *r)
{
    if (r->dns)
        return MESH_OK;
    if (r->cfg.dns_hosts_only) {
        r->dns = evdns_base_new(r->base, 0);
        if (r->dns)
            evdns_base_load_hosts(r->dns, NULL);
    } else {
        /* NO_DEFAULT: without a resolv.conf, libevent would invent 127.0.0.1 as nameserver. */
        r->dns = evdns_base_new(r->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                             EVDNS_BASE_NAMESERVERS_NO_DEFAULT);
    }
    if (!r->dns)
        return MESH_ERR_NOMEM;
    /* evdns queues a query without limit while it has no nameserver: never let it. */
    r->dns_local_only = r->cfg.dns_hosts_only || evdns_base_count_nameservers(r->dns) == 0;
    return MESH_OK;
}

static int real_resolve(void *obj, const char *host, uint16_t port, mesh_resolve_cb cb, void *ud)
{
    mesh_real *r = obj;
    if (!host || !*host || strlen(host) > 253 || !cb)
        return MESH_ERR_INVAL;
    int rc = real_ensure_dns(r);
    if (rc != MESH_OK)
        return rc;
    if (r->nresolves >= MESH_REAL_RESOLVE_MAX_PENDING)
        return MESH_ERR_LIMIT;
    mesh_resolve_req *q = calloc(1, sizeof *q);
    if (!q)
        return MESH_ERR_NOMEM;
    q->deliver = event_new(r->base, -1, 0, resolve_deliver_cb, q);
    if (!q->deliver) {
        free(q);
        return MESH_ERR_NOMEM;
    }
    q->r = r;
    q->cb = cb;
    q->ud = ud;
    q->port = port;
    LIST_INSERT(r->resolves, q);
    r->nresolves++;
    q->evdns_busy = 1;
    struct evutil_addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM; /* one entry per address, not one per socket type */
    struct evdns_getaddrinfo_request *gai =
        evdns_getaddrinfo(r->dns, host, NULL, &hints, resolve_gai_cb, q);
    if (q->evdns_busy) {
        q->gai = gai;
        if (r->dns_local_only) {
            /* evdns answers numeric names and /etc/hosts at once; anything else would wait
             * for a nameserver that hosts-only mode never has. */
            q->result = MESH_ERR_NOT_FOUND;
            event_active(q->deliver, EV_TIMEOUT, 0);
            q->cancel_sent = 1;
            evdns_getaddrinfo_cancel(gai); /* its callback comes later, from the loop */
        }
    }
    return MESH_OK;
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
    .dgram_join = real_dgram_join,
    .dgram_close = real_dgram_close,
    .resolve = real_resolve,
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
    r->out = calloc(1, sizeof *r->out);
    if (!r->out) {
        free(r);
        return MESH_ERR_NOMEM;
    }
    r->out->refs = 1;
    r->out->alive = 1;
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
    /* Resolves: no core callback any more; evdns still has to hand back the ones it holds.
     * Its cancel answers come from deferred callbacks, so let the loop run them once (all
     * core-visible handles are gone by then); whatever it still holds after that is
     * dropped with the evdns base, which calls nobody when freed with fail_requests = 0. */
    int evdns_holds = 0;
    for (mesh_resolve_req *q = r->resolves; q; q = q->next) {
        q->finished = 1;
        event_del(q->deliver);
        if (q->evdns_busy && q->gai && !q->cancel_sent) {
            q->cancel_sent = 1;
            evdns_getaddrinfo_cancel(q->gai);
        }
        evdns_holds |= q->evdns_busy;
    }
    while (r->streams)
        stream_abort(r->streams);
    while (r->listeners)
        listener_destroy(r->listeners);
    while (r->dgrams)
        dgram_destroy(r->dgrams);
    while (r->timers)
        timer_destroy(r->timers);
    if (evdns_holds)
        event_base_loop(r->base, EVLOOP_NONBLOCK);
    if (r->dns)
        evdns_base_free(r->dns, 0);
    while (r->resolves)
        resolve_destroy(r->resolves);
    if (r->own_base)
        event_base_free(r->base);
    /* Blocks still out come back to a pool that frees them (out_block_done). */
    if (r->reserved)
        out_put(r->out, r->reserved);
    while (r->out->free) {
        out_block *b = r->out->free;
        r->out->free = b->next;
        free(b);
    }
    r->out->nfree = 0;
    r->out->alive = 0;
    out_pool_unref(r->out);
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
