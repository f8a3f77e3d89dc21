/*
 * real/portmap_upnp.c — UPnP IGD port mapping through miniupnpc (API 17), which blocks, so it
 * runs on a worker thread: the loop queues a job (pm_job) under the worker's mutex, the worker
 * runs it and queues the result back, writing one byte into a pipe whose read end is an event
 * of the loop. The worker touches nothing but its own struct (jobs, the IGD it found, copies
 * of the configuration); everything else, the core's callbacks included, happens in the loop.
 *
 * The worker keeps the IGD it discovered (control URL, service type, our LAN address towards
 * it) across jobs, and forgets it when an HTTP request to it gets no answer, so the next job
 * discovers again.
 */
#include "real/portmap_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* UPnP error codes we act on (UPnP IGD WANIPConnection v1/v2). */
enum upnp_code {
    UPNP_NO_SUCH_ENTRY = 714,
    UPNP_CONFLICT = 718,
    UPNP_SAME_PORT_REQUIRED = 724,
    UPNP_PERMANENT_ONLY = 725,
    UPNP_CONFLICT_OTHER = 729,
};

struct pm_worker {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* the worker waits for jobs; the loop waits for `exited` */
    pm_job *todo, *todo_tail, *done, *done_tail;
    int quit;             /* the loop is freeing: finish the queue (deletions only), then exit */
    int exited;           /* the worker left its loop */
    int abandoned;        /* the loop stopped waiting: the worker frees this struct itself */
    int wake[2];          /* pipe: one byte per finished job */
    unsigned outstanding; /* loop only: jobs queued and not yet read back */
    /* the worker's own, from here on */
    char url[MESH_REAL_PORTMAP_URL_MAX];
    char desc[MESH_REAL_PORTMAP_DESC_MAX];
    int ssdp_ms;
    int have_igd;
    struct UPNPUrls urls;
    struct IGDdatas data;
    char lanaddr[64];
};

/* ---- the worker ---------------------------------------------------------------------------- */

/* Printable copy of what a gateway sent, for log lines. */
static const char *clean(const char *in, char *out, size_t len)
{
    size_t i = 0;
    for (; in[i] && i + 1 < len; i++)
        out[i] = (in[i] >= 0x20 && in[i] < 0x7f) ? in[i] : '?';
    out[i] = '\0';
    return out;
}

static void forget_igd(pm_worker *w)
{
    if (w->have_igd)
        FreeUPNPUrls(&w->urls);
    w->have_igd = 0;
}

/* A miniupnpc command's failure r (UPNPCOMMAND_* or a UPnP error code) as an env error. */
static int upnp_err(pm_worker *w, pm_job *j, const char *what, int r)
{
    if (r > 0) {
        const char *s = strupnperror(r);
        snprintf(j->why, sizeof j->why, "(%s: UPnP error %d %s)", what, r, s ? s : "");
        return MESH_ERR_REFUSED;
    }
    switch (r) {
    case UPNPCOMMAND_HTTP_ERROR:
        snprintf(j->why, sizeof j->why, "(%s: no HTTP answer from %.160s)", what,
                 w->urls.controlURL);
        forget_igd(w); /* it may have moved: discover again next time */
        return MESH_ERR_IO;
    case UPNPCOMMAND_MEM_ALLOC_ERROR:
        snprintf(j->why, sizeof j->why, "(%s: out of memory)", what);
        return MESH_ERR_NOMEM;
    case UPNPCOMMAND_INVALID_ARGS:
        snprintf(j->why, sizeof j->why, "(%s: invalid arguments)", what);
        return MESH_ERR_INTERNAL;
    default: /* UNKNOWN_ERROR, INVALID_RESPONSE: no result and no error code in the answer */
        snprintf(j->why, sizeof j->why, "(%s: an answer that is not a valid response, %d)", what,
                 r);
        return MESH_ERR_PROTOCOL;
    }
}

/* The IGD: cached, from cfg.igd_url, or discovered by SSDP. */
static int ensure_igd(pm_worker *w, pm_job *j)
{
    if (w->have_igd)
        return MESH_OK;
    if (w->url[0]) {
        if (!UPNP_GetIGDFromUrl(w->url, &w->urls, &w->data, w->lanaddr, sizeof w->lanaddr)) {
            snprintf(j->why, sizeof j->why, "(no description at %.200s)", w->url);
            return MESH_ERR_IO;
        }
    } else {
        int err = 0;
        struct UPNPDev *devs =
            upnpDiscover(w->ssdp_ms, NULL, NULL, UPNP_LOCAL_PORT_ANY, 0, 2, &err);
        if (!devs) {
            snprintf(j->why, sizeof j->why, "(no UPnP device answered SSDP in %d ms)", w->ssdp_ms);
            return MESH_ERR_UNSUPPORTED;
        }
        int claims = 0;
        for (struct UPNPDev *d = devs; d; d = d->pNext)
            claims |= strstr(d->st, "InternetGatewayDevice") || strstr(d->st, "WANIPConnection") ||
                      strstr(d->st, "WANPPPConnection");
        int state = UPNP_GetValidIGD(devs, &w->urls, &w->data, w->lanaddr, sizeof w->lanaddr);
        freeUPNPDevlist(devs);
        if (state == 3)
            FreeUPNPUrls(&w->urls);
        if (state < 0)
            return MESH_ERR_NOMEM;
        if (state != 1 && state != 2) {
            snprintf(j->why, sizeof j->why, "(%s)",
                     claims ? "a gateway answered SSDP but its description is not a usable IGD"
                            : "UPnP devices answered SSDP, none is an IGD");
            return claims ? MESH_ERR_PROTOCOL : MESH_ERR_UNSUPPORTED;
        }
    }
    w->have_igd = 1;
    if (!w->urls.controlURL || !w->urls.controlURL[0] || !w->data.first.servicetype[0]) {
        forget_igd(w);
        snprintf(j->why, sizeof j->why, "(the IGD's description names no WAN connection service)");
        return MESH_ERR_PROTOCOL;
    }
    return MESH_OK;
}

/* The gateway's external address into j->external. */
static int external_ip(pm_worker *w, pm_job *j)
{
    char ip[64] = "", shown[48];
    int r = UPNP_GetExternalIPAddress(w->urls.controlURL, w->data.first.servicetype, ip);
    if (r != UPNPCOMMAND_SUCCESS)
        return upnp_err(w, j, "GetExternalIPAddress", r);
    if (!ip[0] || strcmp(ip, "0.0.0.0") == 0) {
        snprintf(j->why, sizeof j->why, "(the gateway has no external address)");
        return MESH_ERR_UNREACHABLE;
    }
    struct in_addr in;
    if (inet_pton(AF_INET, ip, &in) != 1) {
        snprintf(j->why, sizeof j->why, "(external address '%s' is not an IPv4 address)",
                 clean(ip, shown, sizeof shown));
        return MESH_ERR_PROTOCOL;
    }
    j->external.family = MESH_AF_INET4;
    memcpy(j->external.ip, &in, 4);
    if (pm_ip_is_private(j->external.ip)) {
        snprintf(j->why, sizeof j->why, "(the gateway's external address %s is not public)", ip);
        return MESH_ERR_UNREACHABLE;
    }
    return MESH_OK;
}

/* AddPortMapping succeeded for ext: does the gateway list it, for us? miniupnpc takes an
 * answer without an error code as success, so this is the check that it meant it. Gateways
 * that do not implement the query (a UPnP error other than 714) are taken at their word. */
static int verify(pm_worker *w, pm_job *j, const char *ext, const char *proto, uint32_t *lease)
{
    char client[64] = "", port[16] = "", desc[96] = "", en[16] = "", dur[32] = "", shown[48];
    int r = UPNP_GetSpecificPortMappingEntry(w->urls.controlURL, w->data.first.servicetype, ext,
                                             proto, NULL, client, port, desc, en, dur);
    if (r > 0 && r != UPNP_NO_SUCH_ENTRY)
        return MESH_OK;
    if (r != UPNPCOMMAND_SUCCESS) {
        snprintf(j->why, sizeof j->why,
                 "(AddPortMapping answered success but GetSpecificPortMappingEntry %d)", r);
        return MESH_ERR_PROTOCOL;
    }
    if (strcmp(client, w->lanaddr) != 0 || strtoul(port, NULL, 10) != j->port) {
        snprintf(j->why, sizeof j->why, "(the gateway lists port %s as %s:%s, not %s:%u)", ext,
                 clean(client, shown, sizeof shown), port, w->lanaddr, j->port);
        return MESH_ERR_PROTOCOL;
    }
    /* The time left, as the gateway counts it: a second or so short of what we asked by the
     * time it answers, which is no news; much shorter is a cap it applies (IGD v2: 7 days). */
    unsigned long left = strtoul(dur, NULL, 10);
    if (*lease && left > 0 && left < (unsigned long)*lease / 10 * 9)
        *lease = (uint32_t)left;
    return MESH_OK;
}

static int upnp_map(pm_worker *w, pm_job *j)
{
    const char *proto = j->tcp ? "TCP" : "UDP";
    int rc = ensure_igd(w, j);
    if (rc == MESH_OK)
        rc = external_ip(w, j);
    if (rc != MESH_OK)
        return rc;
    uint16_t ports[1 + MESH_REAL_PORTMAP_ALT_PORTS];
    ports[0] = j->ext_port;
    memcpy(ports + 1, j->alt, sizeof j->alt);
    uint32_t lease = j->lease;
    char ext[8], in[8], ls[16];
    snprintf(in, sizeof in, "%u", j->port);
    for (size_t i = 0;;) {
        snprintf(ext, sizeof ext, "%u", ports[i]);
        snprintf(ls, sizeof ls, "%u", lease);
        int r = UPNP_AddPortMapping(w->urls.controlURL, w->data.first.servicetype, ext, in,
                                    w->lanaddr, w->desc, proto, NULL, ls);
        if (r == UPNPCOMMAND_SUCCESS)
            break;
        if (r == UPNP_PERMANENT_ONLY && lease) {
            lease = 0; /* this gateway only has leases with no expiry */
            continue;
        }
        int conflict = r == UPNP_CONFLICT || r == UPNP_CONFLICT_OTHER;
        if (conflict && i + 1 < sizeof ports / sizeof ports[0]) {
            i++;
            continue;
        }
        if (conflict || r == UPNP_SAME_PORT_REQUIRED) {
            snprintf(j->why, sizeof j->why, "(AddPortMapping: UPnP error %d on external port %s%s)",
                     r, ext, i ? ", and on the other ports tried" : "");
            return MESH_ERR_EXISTS;
        }
        return upnp_err(w, j, "AddPortMapping", r);
    }
    if ((rc = verify(w, j, ext, proto, &lease)) != MESH_OK)
        return rc;
    j->external.port = (uint16_t)strtoul(ext, NULL, 10);
    j->lease_granted = lease;
    return MESH_OK;
}

static int upnp_unmap(pm_worker *w, pm_job *j)
{
    int rc = ensure_igd(w, j);
    if (rc != MESH_OK)
        return rc;
    char ext[8];
    snprintf(ext, sizeof ext, "%u", j->ext_port);
    int r = UPNP_DeletePortMapping(w->urls.controlURL, w->data.first.servicetype, ext,
                                   j->tcp ? "TCP" : "UDP", NULL);
    if (r == UPNPCOMMAND_SUCCESS)
        return MESH_OK;
    if (r == UPNP_NO_SUCH_ENTRY) {
        snprintf(j->why, sizeof j->why, "(no such mapping any more: its lease ended)");
        return MESH_ERR_NOT_FOUND;
    }
    return upnp_err(w, j, "DeletePortMapping", r);
}

static void worker_destroy(pm_worker *w)
{
    while (w->todo) {
        pm_job *j = w->todo;
        w->todo = j->next;
        free(j);
    }
    while (w->done) {
        pm_job *j = w->done;
        w->done = j->next;
        free(j);
    }
    forget_igd(w);
    close(w->wake[0]);
    close(w->wake[1]);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

static void *worker_main(void *arg)
{
    pm_worker *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->todo && !w->quit)
            pthread_cond_wait(&w->cv, &w->mu);
        pm_job *j = w->todo;
        if (!j)
            break; /* quit, and nothing left to do */
        w->todo = j->next;
        if (!w->todo)
            w->todo_tail = NULL;
        pthread_mutex_unlock(&w->mu);
        j->next = NULL;
        j->result = j->kind == PM_MAP ? upnp_map(w, j) : upnp_unmap(w, j);
        pthread_mutex_lock(&w->mu);
        if (j->kind == PM_MAP && j->result == MESH_OK && w->quit) {
            /* made while the loop was freeing: nobody will release it */
            pthread_mutex_unlock(&w->mu);
            pm_job undo = *j;
            undo.kind = PM_UNMAP;
            undo.ext_port = j->external.port;
            (void)upnp_unmap(w, &undo);
            pthread_mutex_lock(&w->mu);
        }
        if (w->done_tail)
            w->done_tail->next = j;
        else
            w->done = j;
        w->done_tail = j;
        ssize_t n = write(w->wake[1], "j", 1); /* full pipe: the loop reads all results anyway */
        (void)n;
    }
    w->exited = 1;
    pthread_cond_broadcast(&w->cv);
    int abandoned = w->abandoned;
    pthread_mutex_unlock(&w->mu);
    if (abandoned)
        worker_destroy(w);
    return NULL;
}

/* ---- the loop's end ---------------------------------------------------------------------------
 */

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    mesh_real_portmap *pm = arg;
    pm_worker *w = pm->w;
    char buf[64];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    pthread_mutex_lock(&w->mu);
    pm_job *list = w->done;
    w->done = w->done_tail = NULL;
    pthread_mutex_unlock(&w->mu);
    while (list) {
        pm_job *j = list;
        list = j->next;
        w->outstanding--;
        if (j->id == pm->job_id && pm->cur) {
            pm->job_id = 0;
            pm_phase_done(pm, j->result, &j->external, j->lease_granted, j->why);
        } else if (j->kind == PM_MAP && j->result == MESH_OK) {
            pm_late_upnp_success(pm, j);
        } else if (j->kind == PM_UNMAP) {
            mesh_log(&pm->env, j->result == MESH_OK ? MESH_LOG_INFO : MESH_LOG_WARN,
                     "portmap: %s %u: UPnP deletion of external port %u: %s %s",
                     j->tcp ? "TCP" : "UDP", j->port, j->ext_port, mesh_errname(j->result), j->why);
        }
        free(j);
    }
    if (w->outstanding == 0)
        event_del(pm->w_wake);
}

static int worker_start(mesh_real_portmap *pm)
{
    pm_worker *w = calloc(1, sizeof *w);
    if (!w)
        return MESH_ERR_NOMEM;
    if (pipe2(w->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        free(w);
        return MESH_ERR_IO;
    }
    snprintf(w->url, sizeof w->url, "%s", pm->cfg.igd_url ? pm->cfg.igd_url : "");
    snprintf(w->desc, sizeof w->desc, "%s", pm->cfg.description);
    w->ssdp_ms = (int)pm->cfg.ssdp_ms;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    pm->w_wake = event_new(pm->base, w->wake[0], EV_READ | EV_PERSIST, wake_cb, pm);
    /* the worker gets no signal: SIGINT/SIGTERM stay the loop's */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pm->w_wake ? pthread_create(&w->th, NULL, worker_main, w) : ENOMEM;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        if (pm->w_wake)
            event_free(pm->w_wake);
        pm->w_wake = NULL;
        worker_destroy(w);
        return rc == ENOMEM ? MESH_ERR_NOMEM : MESH_ERR_IO;
    }
    pm->w = w;
    return MESH_OK;
}

static void submit(mesh_real_portmap *pm, pm_job *j)
{
    pm_worker *w = pm->w;
    j->id = ++pm->next_job_id;
    pthread_mutex_lock(&w->mu);
    if (w->todo_tail)
        w->todo_tail->next = j;
    else
        w->todo = j;
    w->todo_tail = j;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (w->outstanding++ == 0)
        event_add(pm->w_wake, NULL);
}

static uint16_t random_port(mesh_real_portmap *pm)
{
    return (uint16_t)(1024 + mesh_env_random_below(&pm->env, 65536 - 1024));
}

void pm_upnp_begin(mesh_real_portmap *pm)
{
    pm_task *t = pm->cur;
    pm_entry *e = t->e;
    int rc = pm->w ? MESH_OK : worker_start(pm);
    pm_job *j = rc == MESH_OK ? calloc(1, sizeof *j) : NULL;
    if (!j) {
        pm_phase_done(pm, rc == MESH_OK ? MESH_ERR_NOMEM : rc, NULL, 0,
                      "(cannot start the UPnP worker)");
        return;
    }
    j->kind = t->kind;
    j->tcp = e->tcp;
    j->port = e->port;
    j->lease = t->lease;
    if (t->kind == PM_UNMAP) {
        j->ext_port = e->ext_port;
    } else {
        /* the external port held before, so a renewal keeps it; else the internal one */
        j->ext_port = e->via == PM_UPNP && e->ext_port ? e->ext_port : e->port;
        for (int i = 0; i < MESH_REAL_PORTMAP_ALT_PORTS; i++)
            j->alt[i] = random_port(pm);
    }
    submit(pm, j);
    pm->job_id = j->id;
    pm_deadline_arm(pm, pm->cfg.upnp_timeout_ms);
}

void pm_upnp_expired(mesh_real_portmap *pm)
{
    char why[MESH_REAL_PORTMAP_WHY_MAX];
    snprintf(why, sizeof why, "(no result in %u ms; the job is left to finish)",
             pm->cfg.upnp_timeout_ms);
    pm->job_id = 0; /* its result, when it comes, is a late one */
    pm_phase_done(pm, MESH_ERR_TIMEOUT, NULL, 0, why);
}

void pm_upnp_fire_unmap(mesh_real_portmap *pm, int tcp, uint16_t port, uint16_t ext_port)
{
    pm_job *j = pm->w ? calloc(1, sizeof *j) : NULL;
    if (!j) {
        mesh_log(&pm->env, MESH_LOG_WARN, "portmap: %s %u: cannot queue its UPnP deletion",
                 tcp ? "TCP" : "UDP", port);
        return;
    }
    j->kind = PM_UNMAP;
    j->tcp = tcp;
    j->port = port;
    j->ext_port = ext_port;
    submit(pm, j);
}

void pm_upnp_shutdown(mesh_real_portmap *pm)
{
    pm_worker *w = pm->w;
    if (!w)
        return;
    pm->w = NULL;
    event_free(pm->w_wake);
    pm->w_wake = NULL;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += MESH_REAL_PORTMAP_JOIN_MS / 1000;
    until.tv_nsec += (long)(MESH_REAL_PORTMAP_JOIN_MS % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->mu);
    w->quit = 1;
    /* requests nobody waits for are dropped; deletions are done */
    pm_job **p = &w->todo;
    w->todo_tail = NULL;
    while (*p) {
        if ((*p)->kind == PM_MAP) {
            pm_job *j = *p;
            *p = j->next;
            free(j);
            continue;
        }
        w->todo_tail = *p;
        p = &(*p)->next;
    }
    pthread_cond_broadcast(&w->cv);
    while (!w->exited && pthread_cond_timedwait(&w->cv, &w->mu, &until) != ETIMEDOUT) {
    }
    int exited = w->exited;
    if (!exited)
        w->abandoned = 1;
    pthread_mutex_unlock(&w->mu);
    if (exited) {
        pthread_join(w->th, NULL);
        worker_destroy(w);
        return;
    }
    mesh_log(&pm->env, MESH_LOG_WARN,
             "portmap: the UPnP worker is still busy after %d ms: left to finish on its own",
             MESH_REAL_PORTMAP_JOIN_MS);
    pthread_detach(w->th);
}
