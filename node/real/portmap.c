/*
 * real/portmap.c — the port-mapping adapter's ops, its task queue and lifecycle. See
 * portmap.h for the contract and portmap_int.h for how the three files share the work.
 */
#include "real/portmap_int.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static mesh_real_portmap *pm_of(void *obj)
{
    return mesh_real_portmap_ctx(obj);
}

static const char *method_name(int m)
{
    return m == PM_NATPMP ? "NAT-PMP" : m == PM_UPNP ? "UPnP" : "none";
}

/* How much a failure tells, to pick the one reported when both methods failed: a gateway
 * that answered beats one that did not. */
static int err_rank(int err)
{
    switch (err) {
    case MESH_ERR_UNREACHABLE:
        return 7;
    case MESH_ERR_EXISTS:
        return 6;
    case MESH_ERR_REFUSED:
        return 5;
    case MESH_ERR_PROTOCOL:
        return 4;
    case MESH_ERR_TIMEOUT:
        return 3;
    case MESH_ERR_IO:
    case MESH_ERR_NOMEM:
    case MESH_ERR_INTERNAL:
        return 2;
    default: /* MESH_ERR_UNSUPPORTED */
        return 1;
    }
}

int pm_ip_is_private(const uint8_t ip[4])
{
    uint8_t a = ip[0], b = ip[1], c = ip[2];
    return a == 0 || a == 10 || a == 127 || a >= 224 || (a == 100 && (b & 0xc0) == 64) ||
           (a == 169 && b == 254) || (a == 172 && (b & 0xf0) == 16) || (a == 192 && b == 168) ||
           (a == 192 && b == 0 && (c == 0 || c == 2)) || (a == 192 && b == 88 && c == 99) ||
           (a == 198 && (b & 0xfe) == 18) || (a == 198 && b == 51 && c == 100) ||
           (a == 203 && b == 0 && c == 113);
}

/* ---- entries and tasks ------------------------------------------------------------------- */

static pm_entry *entry_find(mesh_real_portmap *pm, int tcp, uint16_t port)
{
    for (pm_entry *e = pm->entries; e; e = e->next)
        if (!e->released && e->tcp == tcp && e->port == port)
            return e;
    return NULL;
}

static void entry_maybe_free(mesh_real_portmap *pm, pm_entry *e)
{
    if (!e->released || e->tasks || e->via != PM_NONE)
        return;
    for (pm_entry **p = &pm->entries; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            break;
        }
    pm->nentries--;
    free(e);
}

static void kick(mesh_real_portmap *pm)
{
    if (pm->queue && !pm->cur)
        event_active(pm->kick, EV_TIMEOUT, 0);
}

static pm_task *task_new(pm_entry *e, int kind)
{
    pm_task *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->kind = kind;
    t->e = e;
    t->gen = e->gen;
    e->tasks++;
    return t;
}

static void task_enqueue(mesh_real_portmap *pm, pm_task *t)
{
    if (pm->queue_tail)
        pm->queue_tail->next = t;
    else
        pm->queue = t;
    pm->queue_tail = t;
}

/* Queued (not running) requests for e: superseded, they would answer no one. */
static void drop_queued_maps(mesh_real_portmap *pm, pm_entry *e)
{
    pm_task **p = &pm->queue;
    pm->queue_tail = NULL;
    while (*p) {
        pm_task *t = *p;
        if (t->e == e && t->kind == PM_MAP) {
            *p = t->next;
            e->tasks--;
            free(t);
            continue;
        }
        pm->queue_tail = t;
        p = &t->next;
    }
}

/* The running task is over: the adapter's state first, the core's callback last. */
static void task_end(mesh_real_portmap *pm, int result, const mesh_addr *external, uint32_t lease_s)
{
    pm_task *t = pm->cur;
    pm_entry *e = t->e;
    mesh_addr ext = {0};
    if (external)
        ext = *external;
    mesh_portmap_cb cb = NULL;
    void *ud = NULL;
    if (t->kind == PM_MAP && t->gen == e->gen && e->cb) {
        cb = e->cb;
        ud = e->ud;
        e->cb = NULL;
    }
    pm->cur = NULL;
    e->tasks--;
    free(t);
    entry_maybe_free(pm, e);
    kick(pm);
    if (cb)
        cb(result, result == MESH_OK ? &ext : NULL, result == MESH_OK ? lease_s : 0, ud);
}

static void method_begin(mesh_real_portmap *pm)
{
    if (pm->cur->methods[pm->cur->mi] == PM_NATPMP)
        pm_natpmp_begin(pm);
    else
        pm_upnp_begin(pm);
}

void pm_phase_done(mesh_real_portmap *pm, int result, const mesh_addr *external, uint32_t lease_s,
                   const char *why)
{
    pm_task *t = pm->cur;
    if (!t)
        return;
    event_del(pm->deadline);
    pm_entry *e = t->e;
    int m = t->methods[t->mi];
    const char *proto = e->tcp ? "TCP" : "UDP";
    char a[MESH_ADDR_STRLEN];
    if (t->kind == PM_UNMAP) {
        if (result == MESH_OK)
            mesh_log(&pm->env, MESH_LOG_INFO, "portmap: %s %u unmapped by %s", proto, e->port,
                     method_name(m));
        else
            mesh_log(&pm->env, MESH_LOG_WARN, "portmap: %s %u: %s could not unmap it: %s (%s)",
                     proto, e->port, method_name(m), mesh_errname(result), why ? why : "");
        e->via = PM_NONE;
        task_end(pm, MESH_OK, NULL, 0);
        return;
    }
    if (result == MESH_OK) {
        e->via = m;
        e->ext_port = external->port;
        mesh_log(&pm->env, MESH_LOG_INFO, "portmap: %s %u mapped to %s by %s, lease %u s", proto,
                 e->port, mesh_addr_format(external, a, sizeof a), method_name(m), lease_s);
        task_end(pm, MESH_OK, external, lease_s);
        return;
    }
    size_t used = strlen(t->why);
    snprintf(t->why + used, sizeof t->why - used, "%s%s: %s %s", used ? "; " : "", method_name(m),
             mesh_errname(result), why ? why : "");
    if (t->mi == 0 || err_rank(result) > err_rank(t->err))
        t->err = result;
    /* A private external address is the gateway's own situation: the other method would
     * reach the same gateway and hear the same. */
    if (result != MESH_ERR_UNREACHABLE && t->mi == 0 && t->methods[1] != PM_NONE) {
        t->mi = 1;
        method_begin(pm);
        return;
    }
    mesh_log(&pm->env, MESH_LOG_WARN, "portmap: %s %u: no mapping: %s (%s)", proto, e->port,
             mesh_errname(t->err), t->why);
    if (t->err == MESH_ERR_UNREACHABLE)
        mesh_log(&pm->env, MESH_LOG_WARN,
                 "portmap: the gateway is behind another NAT (double NAT): a mapping there "
                 "would not make this host reachable");
    task_end(pm, t->err, NULL, 0);
}

void pm_deadline_arm(mesh_real_portmap *pm, uint32_t ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    event_add(pm->deadline, &tv);
}

void pm_late_upnp_success(mesh_real_portmap *pm, const pm_job *j)
{
    pm_entry *e = entry_find(pm, j->tcp, j->port);
    char a[MESH_ADDR_STRLEN];
    mesh_addr_format(&j->external, a, sizeof a);
    if (e) {
        /* remembered: the next request refreshes it, release removes it */
        e->via = PM_UPNP;
        e->ext_port = j->external.port;
        mesh_log(&pm->env, MESH_LOG_INFO, "portmap: %s %u: a late UPnP answer mapped it to %s",
                 j->tcp ? "TCP" : "UDP", j->port, a);
        return;
    }
    mesh_log(&pm->env, MESH_LOG_INFO,
             "portmap: %s %u: a late UPnP answer mapped it to %s after its release: removing it",
             j->tcp ? "TCP" : "UDP", j->port, a);
    pm_upnp_fire_unmap(pm, j->tcp, j->port, j->external.port);
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mesh_real_portmap *pm = arg;
    if (pm->cur || !pm->queue)
        return;
    pm_task *t = pm->queue;
    pm->queue = t->next;
    if (!pm->queue)
        pm->queue_tail = NULL;
    t->next = NULL;
    pm->cur = t;
    if (t->kind == PM_UNMAP) {
        /* with whatever made the mapping, read now: a request that ran before may have */
        t->methods[0] = t->e->via;
        t->methods[1] = PM_NONE;
        if (t->e->via == PM_NONE) {
            task_end(pm, MESH_OK, NULL, 0);
            return;
        }
    }
    method_begin(pm);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mesh_real_portmap *pm = arg;
    if (!pm->cur)
        return;
    if (pm->cur->methods[pm->cur->mi] == PM_NATPMP)
        pm_natpmp_expired(pm);
    else
        pm_upnp_expired(pm);
}

/* ---- ops --------------------------------------------------------------------------------- */

static int pm_request(void *obj, int tcp, uint16_t port, uint32_t lease_s, mesh_portmap_cb cb,
                      void *ud)
{
    mesh_real_portmap *pm = pm_of(obj);
    if (!pm || !cb || port == 0)
        return MESH_ERR_INVAL;
    tcp = tcp ? 1 : 0;
    pm_entry *e = entry_find(pm, tcp, port);
    int fresh = 0;
    if (!e) {
        if (pm->nentries >= MESH_REAL_PORTMAP_MAX)
            return MESH_ERR_LIMIT;
        if (!(e = calloc(1, sizeof *e)))
            return MESH_ERR_NOMEM;
        e->tcp = tcp;
        e->port = port;
        e->next = pm->entries;
        pm->entries = e;
        pm->nentries++;
        fresh = 1;
    }
    pm_task *t = task_new(e, PM_MAP);
    if (!t) {
        if (fresh) {
            e->released = 1;
            entry_maybe_free(pm, e);
        }
        return MESH_ERR_NOMEM;
    }
    drop_queued_maps(pm, e);
    t->gen = ++e->gen;
    e->cb = cb;
    e->ud = ud;
    t->lease = lease_s;
    /* NAT-PMP first (portmap.h says why), unless UPnP is what mapped this port before */
    int order[2] = {PM_NATPMP, PM_UPNP};
    if (e->via == PM_UPNP) {
        order[0] = PM_UPNP;
        order[1] = PM_NATPMP;
    }
    int n = 0;
    for (int i = 0; i < 2; i++)
        if (!(order[i] == PM_NATPMP ? pm->cfg.no_natpmp : pm->cfg.no_upnp))
            t->methods[n++] = order[i];
    task_enqueue(pm, t);
    kick(pm);
    return MESH_OK;
}

static int pm_release(void *obj, int tcp, uint16_t port)
{
    mesh_real_portmap *pm = pm_of(obj);
    if (!pm)
        return MESH_ERR_INVAL;
    pm_entry *e = entry_find(pm, tcp ? 1 : 0, port);
    if (!e)
        return MESH_ERR_NOT_FOUND;
    e->gen++;
    e->cb = NULL;
    e->released = 1;
    drop_queued_maps(pm, e);
    /* An unmap runs after the request in flight, so a mapping it makes is removed too. */
    if (e->via != PM_NONE || (pm->cur && pm->cur->e == e)) {
        pm_task *t = task_new(e, PM_UNMAP);
        if (t)
            task_enqueue(pm, t);
        else
            mesh_log(&pm->env, MESH_LOG_WARN, "portmap: %s %u: no memory to unmap it",
                     tcp ? "TCP" : "UDP", port);
    }
    entry_maybe_free(pm, e);
    kick(pm);
    return MESH_OK;
}

static const mesh_portmap_ops PM_OPS = {
    .request = pm_request,
    .release = pm_release,
};

/* ---- lifecycle ----------------------------------------------------------------------------- */

static void pm_free(void *ctx)
{
    mesh_real_portmap *pm = ctx;
    if (pm->cur && pm->cur->methods[pm->cur->mi] == PM_NATPMP)
        pm_natpmp_close(pm);
    /* Every mapping still held goes: the program is ending, its port with it. */
    for (pm_entry *e = pm->entries; e; e = e->next) {
        if (e->via == PM_NATPMP)
            pm_natpmp_fire_unmap(pm, e->tcp, e->port);
        else if (e->via == PM_UPNP)
            pm_upnp_fire_unmap(pm, e->tcp, e->port, e->ext_port);
    }
    pm_upnp_shutdown(pm);
    free(pm->cur);
    while (pm->queue) {
        pm_task *t = pm->queue;
        pm->queue = t->next;
        free(t);
    }
    while (pm->entries) {
        pm_entry *e = pm->entries;
        pm->entries = e->next;
        free(e);
    }
    pm_natpmp_fini(pm);
    if (pm->deadline)
        event_free(pm->deadline);
    if (pm->kick)
        event_free(pm->kick);
    free(pm);
}

int mesh_real_portmap_attach(mesh_real *r, const mesh_real_portmap_cfg *cfg)
{
    mesh_real_portmap_cfg c = {0};
    if (cfg)
        c = *cfg;
    if (!r || (c.no_natpmp && c.no_upnp) ||
        (c.igd_url && strlen(c.igd_url) >= MESH_REAL_PORTMAP_URL_MAX) ||
        (c.description && strlen(c.description) >= MESH_REAL_PORTMAP_DESC_MAX))
        return MESH_ERR_INVAL;
    if (mesh_real_portmap_ctx(r))
        return MESH_ERR_EXISTS;
    mesh_real_portmap *pm = calloc(1, sizeof *pm);
    if (!pm)
        return MESH_ERR_NOMEM;
    pm->r = r;
    pm->env = mesh_real_env(r);
    pm->base = mesh_real_base(r);
    pm->cfg = c;
    if (c.igd_url)
        strcpy(pm->url, c.igd_url);
    strcpy(pm->desc, c.description ? c.description : "meshara");
    pm->cfg.igd_url = c.igd_url ? pm->url : NULL;
    pm->cfg.description = pm->desc;
    if (!pm->cfg.natpmp_ms)
        pm->cfg.natpmp_ms = MESH_REAL_PORTMAP_NATPMP_MS;
    if (!pm->cfg.ssdp_ms)
        pm->cfg.ssdp_ms = MESH_REAL_PORTMAP_SSDP_MS;
    if (!pm->cfg.upnp_timeout_ms)
        pm->cfg.upnp_timeout_ms = MESH_REAL_PORTMAP_UPNP_MS;
    pm->kick = event_new(pm->base, -1, 0, kick_cb, pm);
    pm->deadline = evtimer_new(pm->base, deadline_cb, pm);
    int rc = MESH_ERR_NOMEM;
    if (!pm->kick || !pm->deadline || pm_natpmp_init(pm) != MESH_OK ||
        (rc = mesh_real_set_portmap(r, &PM_OPS, pm, pm_free)) != MESH_OK) {
        pm_free(pm);
        return rc;
    }
    return MESH_OK;
}
