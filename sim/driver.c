/* driver.c — env.h ops over sim_tcp / sim_udp / the scheduler for one simulated host.
 * Every handle the core holds is a small wrapper on an intrusive per-driver list, so
 * sim_driver_free() can release what the core forgot. */
#include "sim/driver.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/driver_int.h"

static void dlist_add(dnode *head, dnode *n)
{
    n->next = head->next;
    n->prev = head;
    head->next->prev = n;
    head->next = n;
}

static void dlist_del(dnode *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

struct mesh_timer {
    dnode node;
    sim_driver *d;
    mesh_timer_cb cb;
    void *ud;
    sim_event_id ev;
    int firing, freed;
};

struct mesh_stream {
    dnode node;
    sim_driver *d;
    sim_tcp_conn *c; /* NULL: failed before a connection existed */
    mesh_stream_cbs cbs;
    void *ud;
    int fail_reason;
    sim_event_id fail_ev;
    int in_closed;
};

struct mesh_listener {
    dnode node;
    sim_driver *d;
    sim_tcp_listener *l;
    mesh_accept_cb cb;
    void *ud;
};

struct mesh_dgram {
    dnode node;
    sim_driver *d;
    sim_udp_sock *s;
    mesh_dgram_cb cb;
    void *ud;
};

/* ---- world -------------------------------------------------------------------------------- */

int sim_world_new(sim_world **out, uint64_t seed, const sim_tcp_cfg *tcp)
{
    if (!out)
        return MESH_ERR_INVAL;
    sim_world *w = calloc(1, sizeof *w);
    if (!w)
        return MESH_ERR_NOMEM;
    int rc = sim_sched_new(&w->sched);
    if (rc != MESH_OK)
        goto fail;
    rc = sim_net_new(&w->net, w->sched, seed);
    if (rc != MESH_OK)
        goto fail;
    rc = sim_tcp_new(&w->tcp, w->net, tcp);
    if (rc != MESH_OK)
        goto fail;
    rc = sim_udp_new(&w->udp, w->net);
    if (rc != MESH_OK)
        goto fail;
    *out = w;
    return MESH_OK;
fail:
    sim_tcp_free(w->tcp);
    sim_net_free(w->net);
    sim_sched_free(w->sched);
    free(w);
    return rc;
}

void sim_world_free(sim_world *w)
{
    if (!w)
        return;
    sim_udp_free(w->udp);
    sim_tcp_free(w->tcp);
    sim_net_free(w->net);
    sim_sched_free(w->sched);
    free(w);
}

sim_sched *sim_world_sched(const sim_world *w)
{
    return w->sched;
}
sim_net *sim_world_net(const sim_world *w)
{
    return w->net;
}
sim_tcp *sim_world_tcp(const sim_world *w)
{
    return w->tcp;
}
sim_udp *sim_world_udp(const sim_world *w)
{
    return w->udp;
}

void sim_world_set_log(sim_world *w, sim_log_fn fn, void *ud)
{
    w->log_fn = fn;
    w->log_ud = ud;
}

/* ---- clock, random, log --------------------------------------------------------------------- */

static mesh_time op_now(void *obj)
{
    return sim_sched_now(((sim_driver *)obj)->w->sched);
}

static void op_random(void *obj, uint8_t *buf, size_t len)
{
    sim_rng_fill(&((sim_driver *)obj)->rng, buf, len);
}

static void op_log(void *obj, int level, const char *msg)
{
    sim_driver *d = obj;
    if (!d->w->log_fn)
        return;
    static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    const char *lv = level >= 0 && level <= 3 ? names[level] : "?";
    mesh_time t = sim_sched_now(d->w->sched);
    char line[SIM_DRIVER_LOG_LINE_MAX];
    snprintf(line, sizeof line, "%llu.%09llu %s %s %s", (unsigned long long)(t / MESH_NS_PER_S),
             (unsigned long long)(t % MESH_NS_PER_S), sim_host_name(d->host), lv, msg ? msg : "");
    d->w->log_fn(d->w->log_ud, t, sim_host_name(d->host), level, line);
}

/* ---- timers --------------------------------------------------------------------------------- */

static mesh_timer *op_timer_new(void *obj, mesh_timer_cb cb, void *ud)
{
    sim_driver *d = obj;
    mesh_timer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->d = d;
    t->cb = cb;
    t->ud = ud;
    dlist_add(&d->timers, &t->node);
    return t;
}

static void timer_fire(void *ctx, void *arg)
{
    mesh_timer *t = ctx;
    (void)arg;
    t->ev = SIM_EVENT_NONE;
    t->firing = 1;
    if (t->cb)
        t->cb(t, t->ud);
    t->firing = 0;
    if (t->freed)
        free(t); /* freed inside its own callback: deferred to here (rule 2) */
}

static void op_timer_set(void *obj, mesh_timer *t, mesh_time when)
{
    sim_driver *d = obj;
    if (!t || t->freed)
        return;
    sim_sched_cancel(d->w->sched, t->ev);
    t->ev = SIM_EVENT_NONE;
    if (when == MESH_TIME_NEVER)
        return;
    mesh_time now = sim_sched_now(d->w->sched);
    if (when < now)
        when = now; /* the past fires on the next turn, never inside this call */
    sim_sched_at(d->w->sched, when, SIM_EV_DRV_TIMER, sim_host_id(d->host), timer_fire, t, NULL,
                 &t->ev);
}

static void op_timer_stop(void *obj, mesh_timer *t)
{
    sim_driver *d = obj;
    if (!t)
        return;
    sim_sched_cancel(d->w->sched, t->ev);
    t->ev = SIM_EVENT_NONE;
}

static void op_timer_free(void *obj, mesh_timer *t)
{
    if (!t || t->freed)
        return;
    op_timer_stop(obj, t);
    dlist_del(&t->node);
    t->freed = 1;
    if (!t->firing)
        free(t);
}

/* ---- streams -------------------------------------------------------------------------------- */

static void tr_connected(sim_tcp_conn *c, void *ud)
{
    mesh_stream *s = ud;
    (void)c;
    if (s->cbs.on_connected)
        s->cbs.on_connected(s, s->ud);
}

static void tr_data(sim_tcp_conn *c, const uint8_t *data, size_t len, void *ud)
{
    mesh_stream *s = ud;
    (void)c;
    if (s->cbs.on_data)
        s->cbs.on_data(s, data, len, s->ud);
}

static void tr_writable(sim_tcp_conn *c, void *ud)
{
    mesh_stream *s = ud;
    (void)c;
    if (s->cbs.on_writable)
        s->cbs.on_writable(s, s->ud);
}

static void stream_closed(mesh_stream *s, int reason)
{
    s->in_closed = 1;
    dlist_del(&s->node);
    if (s->cbs.on_closed)
        s->cbs.on_closed(s, reason, s->ud);
    free(s); /* released when on_closed returns (rule 4) */
}

static void tr_closed(sim_tcp_conn *c, int reason, void *ud)
{
    (void)c;
    stream_closed(ud, reason);
}

static const sim_tcp_cbs tramp = {tr_connected, tr_data, tr_writable, tr_closed};

static mesh_stream *stream_wrap(sim_driver *d, const mesh_stream_cbs *cbs, void *ud)
{
    mesh_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->d = d;
    if (cbs)
        s->cbs = *cbs;
    s->ud = ud;
    dlist_add(&d->streams, &s->node);
    return s;
}

static void stream_fail_ev(void *ctx, void *arg)
{
    mesh_stream *s = ctx;
    (void)arg;
    s->fail_ev = SIM_EVENT_NONE;
    stream_closed(s, s->fail_reason);
}

static int own_addr(const sim_driver *d, const mesh_addr *a);

/* connect (local NULL) and connect_from (local: an address of this host with a port). */
static mesh_stream *open_stream(sim_driver *d, const mesh_addr *local, const mesh_addr *to,
                                const mesh_stream_cbs *cbs, void *ud, int *err)
{
    int dummy;
    if (!err)
        err = &dummy;
    if (!to || (to->family != MESH_AF_INET4 && to->family != MESH_AF_INET6) || to->port == 0 ||
        (local && (local->port == 0 || local->family != to->family))) {
        *err = MESH_ERR_INVAL;
        return NULL;
    }
    if (local && !own_addr(d, local)) {
        *err = MESH_ERR_ADDR; /* IPv6 included: the host has no IPv6 address to bind */
        return NULL;
    }
    mesh_stream *s = stream_wrap(d, cbs, ud);
    if (!s) {
        *err = MESH_ERR_NOMEM;
        return NULL;
    }
    if (to->family == MESH_AF_INET6) {
        /* No IPv6 in the model: fail later, from the loop (rule 1). */
        s->fail_reason = MESH_ERR_UNREACHABLE;
        if (sim_sched_after(d->w->sched, 0, SIM_EV_TCP_NOTIFY, sim_host_id(d->host), stream_fail_ev,
                            s, NULL, &s->fail_ev) != MESH_OK) {
            dlist_del(&s->node);
            free(s);
            *err = MESH_ERR_NOMEM;
            return NULL;
        }
        return s;
    }
    int rc = local ? sim_tcp_connect_from(d->w->tcp, d->host, local->port, to, &tramp, s, &s->c)
                   : sim_tcp_connect(d->w->tcp, d->host, to, &tramp, s, &s->c);
    if (rc != MESH_OK) {
        dlist_del(&s->node);
        free(s);
        *err = rc;
        return NULL;
    }
    return s;
}

static mesh_stream *op_connect(void *obj, const mesh_addr *to, const mesh_stream_cbs *cbs, void *ud,
                               int *err)
{
    return open_stream(obj, NULL, to, cbs, ud, err);
}

static mesh_stream *op_connect_from(void *obj, const mesh_addr *local, const mesh_addr *to,
                                    const mesh_stream_cbs *cbs, void *ud, int *err)
{
    if (!local) {
        if (err)
            *err = MESH_ERR_INVAL;
        return NULL;
    }
    return open_stream(obj, local, to, cbs, ud, err);
}

static void op_stream_set_cbs(void *obj, mesh_stream *s, const mesh_stream_cbs *cbs, void *ud)
{
    (void)obj;
    if (!s)
        return;
    memset(&s->cbs, 0, sizeof s->cbs);
    if (cbs)
        s->cbs = *cbs;
    s->ud = ud;
}

static int op_stream_write(void *obj, mesh_stream *s, const void *data, size_t len)
{
    (void)obj;
    if (!s)
        return MESH_ERR_INVAL;
    if (!s->c || s->in_closed)
        return MESH_ERR_CLOSED;
    return sim_tcp_write(s->c, data, len);
}

static size_t op_stream_pending(void *obj, mesh_stream *s)
{
    (void)obj;
    return s && s->c ? sim_tcp_pending(s->c) : 0;
}

static int op_stream_addrs(void *obj, mesh_stream *s, mesh_addr *local, mesh_addr *remote)
{
    (void)obj;
    if (!s || !s->c)
        return s ? MESH_ERR_CLOSED : MESH_ERR_INVAL;
    if (local)
        *local = sim_tcp_local(s->c);
    if (remote)
        *remote = sim_tcp_remote(s->c);
    return MESH_OK;
}

static void op_stream_close(void *obj, mesh_stream *s, int how)
{
    sim_driver *d = obj;
    if (!s || s->in_closed)
        return; /* after on_closed the handle is already released (rule 4) */
    if (s->c)
        sim_tcp_close(s->c, how);
    sim_sched_cancel(d->w->sched, s->fail_ev);
    dlist_del(&s->node);
    free(s);
}

/* ---- listeners ------------------------------------------------------------------------------ */

static int own_addr(const sim_driver *d, const mesh_addr *a)
{
    uint32_t ip = sim_addr_ip4(a);
    return a->family == MESH_AF_INET4 && (ip == 0 || ip == sim_host_ip(d->host));
}

static void tr_accept(sim_tcp_listener *tl, sim_tcp_conn *c, const mesh_addr *peer, void *ud)
{
    mesh_listener *l = ud;
    (void)tl;
    mesh_stream *s = stream_wrap(l->d, NULL, NULL);
    if (!s) {
        sim_tcp_close(c, MESH_CLOSE_ABORT);
        return;
    }
    s->c = c;
    sim_tcp_set_cbs(c, &tramp, s);
    if (l->cb)
        l->cb(l, s, peer, l->ud);
}

static mesh_listener *op_listen(void *obj, const mesh_addr *addr, mesh_accept_cb cb, void *ud,
                                int *err)
{
    sim_driver *d = obj;
    int dummy;
    if (!err)
        err = &dummy;
    if (!addr) {
        *err = MESH_ERR_INVAL;
        return NULL;
    }
    if (!own_addr(d, addr)) {
        *err = MESH_ERR_ADDR;
        return NULL;
    }
    mesh_listener *l = calloc(1, sizeof *l);
    if (!l) {
        *err = MESH_ERR_NOMEM;
        return NULL;
    }
    l->d = d;
    l->cb = cb;
    l->ud = ud;
    int rc = sim_tcp_listen(d->w->tcp, d->host, addr->port, tr_accept, l, &l->l);
    if (rc != MESH_OK) {
        free(l);
        *err = rc;
        return NULL;
    }
    dlist_add(&d->listeners, &l->node);
    return l;
}

static int op_listener_addr(void *obj, mesh_listener *l, mesh_addr *out)
{
    (void)obj;
    if (!l || !out)
        return MESH_ERR_INVAL;
    *out = sim_tcp_listener_addr(l->l);
    return MESH_OK;
}

static void op_listener_close(void *obj, mesh_listener *l)
{
    (void)obj;
    if (!l)
        return;
    sim_tcp_listener_close(l->l);
    dlist_del(&l->node);
    free(l);
}

/* ---- datagrams ------------------------------------------------------------------------------ */

static void tr_dgram(sim_udp_sock *s, const mesh_addr *from, const uint8_t *data, size_t len,
                     void *ud)
{
    mesh_dgram *g = ud;
    (void)s;
    if (g->cb)
        g->cb(g, from, data, len, g->ud);
}

static mesh_dgram *op_dgram_bind(void *obj, const mesh_addr *addr, mesh_dgram_cb cb, void *ud,
                                 int *err)
{
    sim_driver *d = obj;
    int dummy;
    if (!err)
        err = &dummy;
    if (!addr) {
        *err = MESH_ERR_INVAL;
        return NULL;
    }
    if (!own_addr(d, addr)) {
        *err = MESH_ERR_ADDR;
        return NULL;
    }
    mesh_dgram *g = calloc(1, sizeof *g);
    if (!g) {
        *err = MESH_ERR_NOMEM;
        return NULL;
    }
    g->d = d;
    g->cb = cb;
    g->ud = ud;
    int rc = sim_udp_bind(d->w->udp, d->host, addr->port, tr_dgram, g, &g->s);
    if (rc != MESH_OK) {
        free(g);
        *err = rc;
        return NULL;
    }
    dlist_add(&d->dgrams, &g->node);
    return g;
}

static int op_dgram_addr(void *obj, mesh_dgram *g, mesh_addr *out)
{
    (void)obj;
    if (!g || !out)
        return MESH_ERR_INVAL;
    *out = sim_udp_local(g->s);
    return MESH_OK;
}

static int op_dgram_send(void *obj, mesh_dgram *g, const mesh_addr *to, const void *data,
                         size_t len)
{
    (void)obj;
    if (!g)
        return MESH_ERR_INVAL;
    return sim_udp_send(g->s, to, data, len);
}

static void op_dgram_close(void *obj, mesh_dgram *g)
{
    (void)obj;
    if (!g)
        return;
    sim_udp_close(g->s);
    dlist_del(&g->node);
    free(g);
}

/* ---- table ---------------------------------------------------------------------------------- */

static const mesh_env_ops sim_ops = {
    .now = op_now,
    .random = op_random,
    .log = op_log,
    .timer_new = op_timer_new,
    .timer_set = op_timer_set,
    .timer_stop = op_timer_stop,
    .timer_free = op_timer_free,
    .listen = op_listen,
    .listener_addr = op_listener_addr,
    .listener_close = op_listener_close,
    .connect = op_connect,
    .connect_from = op_connect_from,
    .stream_set_cbs = op_stream_set_cbs,
    .stream_write = op_stream_write,
    .stream_pending = op_stream_pending,
    .stream_addrs = op_stream_addrs,
    .stream_close = op_stream_close,
    .dgram_bind = op_dgram_bind,
    .dgram_addr = op_dgram_addr,
    .dgram_send = op_dgram_send,
    .dgram_close = op_dgram_close,
    .mdns = NULL,
    .portmap = NULL,
};

/* ---- mDNS: obj is the driver, the service is its sim_mdns --------------------------------- */

static int op_mdns_publish(void *obj, const char *name, const char *type, uint16_t port,
                           const char *const *txt)
{
    return sim_mdns_publish(((sim_driver *)obj)->mdns, name, type, port, txt);
}

static int op_mdns_browse(void *obj, const char *type, mesh_mdns_cb cb, void *ud)
{
    return sim_mdns_browse(((sim_driver *)obj)->mdns, type, cb, ud);
}

static void op_mdns_stop(void *obj)
{
    sim_mdns_stop(((sim_driver *)obj)->mdns);
}

static const mesh_mdns_ops sim_mdns_ops = {op_mdns_publish, op_mdns_browse, op_mdns_stop};

int sim_driver_enable_mdns(sim_driver *d)
{
    if (!d)
        return MESH_ERR_INVAL;
    if (d->mdns)
        return MESH_ERR_EXISTS;
    mesh_env env = sim_driver_env(d);
    int rc = sim_mdns_new(&d->mdns, d->w->udp, d->host, &env);
    if (rc != MESH_OK)
        return rc;
    d->ops.mdns = &sim_mdns_ops;
    return MESH_OK;
}

sim_mdns *sim_driver_mdns(const sim_driver *d)
{
    return d->mdns;
}

static void dlist_init(dnode *h)
{
    h->prev = h->next = h;
}

int sim_driver_new(sim_driver **out, sim_world *w, sim_host *h)
{
    if (!out || !w || !h || sim_host_net(h) != w->net)
        return MESH_ERR_INVAL;
    sim_driver *d = calloc(1, sizeof *d);
    if (!d)
        return MESH_ERR_NOMEM;
    d->w = w;
    d->host = h;
    d->ops = sim_ops;
    sim_rng_derive(&d->rng, sim_net_seed(w->net), SIM_RNG_STREAM_HOST + sim_host_id(h));
    dlist_init(&d->timers);
    dlist_init(&d->streams);
    dlist_init(&d->listeners);
    dlist_init(&d->dgrams);
    *out = d;
    return MESH_OK;
}

void sim_driver_free(sim_driver *d)
{
    if (!d)
        return;
    sim_driver_portmap_free(d); /* answers still due are never given */
    sim_mdns_free(d->mdns);     /* no goodbyes: the host vanishes */
    while (d->timers.next != &d->timers)
        op_timer_free(d, (mesh_timer *)d->timers.next);
    while (d->streams.next != &d->streams)
        op_stream_close(d, (mesh_stream *)d->streams.next, MESH_CLOSE_ABORT);
    while (d->listeners.next != &d->listeners)
        op_listener_close(d, (mesh_listener *)d->listeners.next);
    while (d->dgrams.next != &d->dgrams)
        op_dgram_close(d, (mesh_dgram *)d->dgrams.next);
    free(d);
}

mesh_env sim_driver_env(sim_driver *d)
{
    return (mesh_env){&d->ops, d};
}
