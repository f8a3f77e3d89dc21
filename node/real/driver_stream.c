/* real/driver_stream.c — env streams: TCP sockets read with recv() into the driver's buffer,
 * written through a bufferevent (output: driver_out.c); connect with its timeout; graceful
 * close (flush, FIN, linger) and abortive close (RST). */
#include "real/driver_int.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

static void stream_read_cb(evutil_socket_t fd, short what, void *arg);
static void stream_writecb(struct bufferevent *bev, void *arg);
static void stream_eventcb(struct bufferevent *bev, short what, void *arg);

static void stream_destroy(mesh_stream *s)
{
    LIST_REMOVE(s->r->streams, s);
    if (s->r->reserved_for == s) { /* reserved and never committed: a caller bug */
        real_out_put(s->r->out, s->r->reserved);
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
void real_stream_abort(mesh_stream *s)
{
    if (s->bev && s->state != STREAM_CONNECTING) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        evutil_socket_t fd = bufferevent_getfd(s->bev);
        if (fd >= 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    stream_destroy(s);
}

mesh_stream *real_stream_alloc(mesh_real *r, evutil_socket_t fd)
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
void real_stream_io_enable(mesh_stream *s)
{
    bufferevent_enable(s->bev, EV_WRITE);
    if (!s->peer_eof)
        event_add(s->rd_ev, NULL);
}

void real_stream_io_disable(mesh_stream *s)
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
        real_stream_finish_release(s);
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
    struct timeval tv = real_ms_to_tv(s->r->cfg.linger_timeout_ms);
    if (!s->timer)
        s->timer = evtimer_new(s->r->base, stream_timer_cb, s);
    if (!s->timer) {
        stream_destroy(s);
        return;
    }
    evtimer_add(s->timer, &tv);
    real_stream_io_enable(s); /* reads are discarded now, until the peer's FIN */
    linger_check(s);
}

/* Carry out the release the core (or on_closed) asked for; only when no callback runs. */
void real_stream_finish_release(mesh_stream *s)
{
    if (s->close_how == MESH_CLOSE_GRACEFUL && s->state == STREAM_OPEN)
        stream_enter_linger(s);
    else if (s->state == STREAM_CONNECTING)
        stream_destroy(s); /* nothing was sent yet: no FIN or RST to choose between */
    else
        real_stream_abort(s);
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
    stream_report_closed(s, real_errno_to_mesh(err));
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
                    real_stream_finish_release(s);
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
        real_stream_finish_release(s);
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
    stream_report_closed(s, (what & BEV_EVENT_ERROR) ? real_errno_to_mesh(err) : MESH_ERR_RESET);
}

static void stream_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mesh_stream *s = arg;
    if (s->state == STREAM_LINGER) {
        real_logf(s->r, MESH_LOG_DEBUG, "stream %p: linger timeout, closing", (void *)s);
        real_stream_abort(s);
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
        stream_report_closed(s, real_errno_to_mesh(err));
        return;
    }
    s->state = STREAM_OPEN;
    real_stream_io_enable(s);
    if (s->cbs.on_connected) {
        s->busy++;
        s->cbs.on_connected(s, s->ud);
        s->busy--;
        if (s->released && s->busy == 0)
            real_stream_finish_release(s);
    }
}

/* connect_from: bind fd to local beside the listener holding that port (both sockets carry
 * SO_REUSEPORT; SO_REUSEADDR lets it reuse a port in TIME_WAIT). MESH_OK or the env's code. */
static int bind_local(mesh_real *r, evutil_socket_t fd, const mesh_addr *local, int family)
{
    struct sockaddr_storage ls;
    socklen_t ll = real_addr_to_sa(local, &ls);
    if (!ll || local->port == 0 || ls.ss_family != family)
        return MESH_ERR_INVAL;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&ls, ll) != 0) {
        int e = errno;
        char text[MESH_ADDR_STRLEN];
        real_logf(r, MESH_LOG_DEBUG, "connect_from %s: %s",
                  mesh_addr_format(local, text, sizeof text), strerror(e));
        return real_errno_to_mesh(e) == MESH_ERR_NOMEM ? MESH_ERR_NOMEM : MESH_ERR_ADDR;
    }
    return MESH_OK;
}

/* connect (local NULL) and connect_from. */
static mesh_stream *open_stream(mesh_real *r, const mesh_addr *local, const mesh_addr *to,
                                const mesh_stream_cbs *cbs, void *ud, int *err)
{
    int dummy;
    if (!err)
        err = &dummy;
    struct sockaddr_storage ss;
    socklen_t sl = to ? real_addr_to_sa(to, &ss) : 0;
    if (!sl || to->port == 0) {
        *err = MESH_ERR_INVAL;
        return NULL;
    }
    evutil_socket_t fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = real_errno_to_mesh(errno) == MESH_ERR_NOMEM ? MESH_ERR_NOMEM : MESH_ERR_IO;
        real_logf(r, MESH_LOG_WARN, "connect: socket: %s", strerror(errno));
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = local ? bind_local(r, fd, local, ss.ss_family) : MESH_OK;
    if (rc != MESH_OK) {
        close(fd);
        *err = rc;
        return NULL;
    }
    mesh_stream *s = real_stream_alloc(r, fd);
    if (!s) {
        close(fd);
        *err = MESH_ERR_NOMEM;
        return NULL;
    }
    /* Until connected the bufferevent stays disabled: writes just queue in its output. */
    real_stream_io_disable(s);
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
        struct timeval tv = real_ms_to_tv(r->cfg.connect_timeout_ms);
        event_add(s->conn_ev, NULL);
        evtimer_add(s->timer, &tv);
    } else if (local && (errno == EADDRNOTAVAIL || errno == EADDRINUSE)) {
        /* connect_from: the four-tuple is taken (the peer's SYN came first). */
        stream_destroy(s);
        *err = MESH_ERR_ADDR;
        return NULL;
    } else {
        /* Failed at once (refused, unreachable...): report it from the loop (rule 1). */
        s->connect_err = errno ? errno : EIO;
        event_active(s->conn_ev, EV_WRITE, 0);
    }
    return s;
}

mesh_stream *real_connect(void *obj, const mesh_addr *to, const mesh_stream_cbs *cbs, void *ud,
                          int *err)
{
    return open_stream(obj, NULL, to, cbs, ud, err);
}

mesh_stream *real_connect_from(void *obj, const mesh_addr *local, const mesh_addr *to,
                               const mesh_stream_cbs *cbs, void *ud, int *err)
{
    if (!local) {
        if (err)
            *err = MESH_ERR_INVAL;
        return NULL;
    }
    return open_stream(obj, local, to, cbs, ud, err);
}

void real_stream_set_cbs(void *obj, mesh_stream *s, const mesh_stream_cbs *cbs, void *ud)
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

size_t real_stream_pending(void *obj, mesh_stream *s)
{
    (void)obj;
    if (!s || !s->bev)
        return 0;
    return evbuffer_get_length(bufferevent_get_output(s->bev));
}

int real_stream_addrs(void *obj, mesh_stream *s, mesh_addr *local, mesh_addr *remote)
{
    (void)obj;
    if (!s || !s->bev)
        return MESH_ERR_INVAL;
    evutil_socket_t fd = bufferevent_getfd(s->bev);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (local) {
        if (real_fd_local_addr(fd, local) != MESH_OK)
            return MESH_ERR_IO;
    }
    if (remote) {
        if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
            return errno == ENOTCONN ? MESH_ERR_STATE : MESH_ERR_IO;
        if (real_sa_to_addr((struct sockaddr *)&ss, remote) != MESH_OK)
            return MESH_ERR_IO;
    }
    return MESH_OK;
}

void real_stream_close(void *obj, mesh_stream *s, int how)
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
        real_stream_finish_release(s);
}
