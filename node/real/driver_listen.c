/* real/driver_listen.c — env listeners: evconnlisteners; an accepted socket becomes a stream
 * (driver_stream.c); accept() failures pause the listener for a moment. */
#include "real/driver_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/listener.h>

void real_listener_destroy(mesh_listener *l)
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
    if (l->released || real_sa_to_addr(sa, &peer) != MESH_OK) {
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    mesh_stream *s = real_stream_alloc(r, fd);
    if (!s) {
        real_logf(r, MESH_LOG_WARN, "accept: out of memory, dropping connection");
        close(fd);
        return;
    }
    real_stream_io_disable(s);
    s->state = STREAM_OPEN;
    if (l->cb) {
        l->busy++;
        s->busy++;
        l->cb(l, s, &peer, l->ud);
        s->busy--;
        l->busy--;
    }
    if (s->released)
        real_stream_finish_release(s);
    else
        real_stream_io_enable(s);
    if (l->released && l->busy == 0) {
        real_listener_destroy(l);
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
    struct timeval tv = real_ms_to_tv(MESH_REAL_ACCEPT_BACKOFF_MS);
    evtimer_add(l->backoff, &tv);
}

/* A bound listening socket whose port connect_from may share. SO_REUSEPORT is set only after
 * bind(): set before, a second listener with it could bind the same port too (Linux then
 * splits the connections between them), and a port already listened on would not be
 * refused. IPv6 listeners are v6-only so the same port can also be bound on IPv4. -1 with
 * errno on failure. */
static evutil_socket_t bind_shared(const struct sockaddr_storage *ss, socklen_t sl)
{
    evutil_socket_t fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (ss->ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) ||
        bind(fd, (const struct sockaddr *)ss, sl) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

mesh_listener *real_listen(void *obj, const mesh_addr *addr, mesh_accept_cb cb, void *ud, int *err)
{
    mesh_real *r = obj;
    int dummy;
    if (!err)
        err = &dummy;
    struct sockaddr_storage ss;
    socklen_t sl = addr ? real_addr_to_sa(addr, &ss) : 0;
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
    errno = 0;
    evutil_socket_t fd = bind_shared(&ss, sl);
    l->lev = fd < 0 ? NULL
                    : evconnlistener_new(r->base, listener_accept_cb, l,
                                         LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                         MESH_REAL_LISTEN_BACKLOG, fd);
    if (!l->lev) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        char text[MESH_ADDR_STRLEN];
        real_logf(r, MESH_LOG_WARN, "listen %s: %s", mesh_addr_format(addr, text, sizeof text),
                  strerror(e));
        event_free(l->backoff);
        free(l);
        /* EACCES: a privileged port without CAP_NET_BIND_SERVICE; the caller says so */
        *err = e == ENOMEM                 ? MESH_ERR_NOMEM
               : e == EACCES || e == EPERM ? MESH_ERR_PERM
                                           : MESH_ERR_ADDR;
        return NULL;
    }
    evconnlistener_set_error_cb(l->lev, listener_error_cb);
    LIST_INSERT(r->listeners, l);
    return l;
}

int real_listener_addr(void *obj, mesh_listener *l, mesh_addr *out)
{
    (void)obj;
    if (!l || !out || l->released)
        return MESH_ERR_INVAL;
    return real_fd_local_addr(evconnlistener_get_fd(l->lev), out);
}

void real_listener_close(void *obj, mesh_listener *l)
{
    (void)obj;
    if (!l || l->released)
        return;
    l->released = 1;
    evconnlistener_disable(l->lev);
    if (l->busy == 0)
        real_listener_destroy(l);
}
