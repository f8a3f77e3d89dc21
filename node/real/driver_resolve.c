/* real/driver_resolve.c — env name resolution through evdns, every answer delivered from the
 * loop (never from inside resolve: driver.h rule 1), bounded in number and size. */
#include "real/driver_int.h"

#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>

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
        if (!ai->ai_addr || real_sa_to_addr(ai->ai_addr, &a) != MESH_OK)
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

int real_resolve(void *obj, const char *host, uint16_t port, mesh_resolve_cb cb, void *ud)
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

int real_resolve_cancel_all(mesh_real *r)
{
    /* No core callback any more; evdns still has to hand back the requests it holds. Whatever
     * it still holds after one loop turn is dropped with the evdns base, which calls nobody
     * when freed with fail_requests = 0. */
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
    return evdns_holds;
}

void real_resolve_free_all(mesh_real *r)
{
    if (r->dns)
        evdns_base_free(r->dns, 0);
    r->dns = NULL;
    while (r->resolves)
        resolve_destroy(r->resolves);
}
