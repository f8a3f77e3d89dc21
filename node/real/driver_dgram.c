/* real/driver_dgram.c — env datagrams: UDP sockets read in bounded bursts into the driver's
 * buffer; multicast groups joined with loopback on. */
#include "real/driver_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void real_dgram_destroy(mesh_dgram *d)
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
        if (real_sa_to_addr((struct sockaddr *)&ss, &from) != MESH_OK)
            continue;
        if (d->cb)
            d->cb(d, &from, r->dgram_buf, (size_t)n, d->ud);
    }
    d->busy--;
    if (d->released && d->busy == 0)
        real_dgram_destroy(d);
}

mesh_dgram *real_dgram_bind(void *obj, const mesh_addr *addr, mesh_dgram_cb cb, void *ud, int *err)
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
    if (real_fd_local_addr(d->fd, &bound) != MESH_OK ||
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
    d->family = ss.ss_family;
    LIST_INSERT(r->dgrams, d);
    return d;
}

int real_dgram_addr(void *obj, mesh_dgram *d, mesh_addr *out)
{
    (void)obj;
    if (!d || !out || d->released)
        return MESH_ERR_INVAL;
    return real_fd_local_addr(d->fd, out);
}

int real_dgram_send(void *obj, mesh_dgram *d, const mesh_addr *to, const void *data, size_t len)
{
    mesh_real *r = obj;
    if (!d || !to || (!data && len > 0) || d->released)
        return MESH_ERR_INVAL;
    if (len > MESH_REAL_DGRAM_MAX)
        return MESH_ERR_TOO_BIG;
    struct sockaddr_storage ss;
    socklen_t sl = real_addr_to_sa(to, &ss);
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
        return real_errno_to_mesh(e);
    }
}

void real_dgram_close(void *obj, mesh_dgram *d)
{
    (void)obj;
    if (!d || d->released)
        return;
    d->released = 1;
    event_del(d->ev);
    if (d->busy == 0)
        real_dgram_destroy(d);
}
