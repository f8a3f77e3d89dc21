/* driver_portmap.c — env.h's port-mapping service for a simulated host (sim/driver.h): the
 * requests a real client makes of its gateway (NAT-PMP first, then UPnP IGD, as the real
 * driver does) played against the NAT model's services (sim/nat.h), each answer delivered
 * from a scheduler event at the time the client's exchanges would end.
 *
 * Timing, with rtt = the host's access link latency up + down (the gateway sits at the LAN's
 * edge) and proc = SIM_DRIVER_PORTMAP_PROC_MS per request the gateway handles:
 *   NAT-PMP   public address request, then the mapping request: 2 (rtt + proc)
 *   UPnP      NAT-PMP's port unreachable (rtt), the SSDP wait (SIM_DRIVER_PORTMAP_SSDP_MS),
 *             then four HTTP exchanges of a TCP handshake and a request each (description,
 *             GetExternalIPAddress, AddPortMapping, GetSpecificPortMappingEntry): 4 (2 rtt +
 *             proc)
 *   neither   rtt + the SSDP wait, then MESH_ERR_UNSUPPORTED
 * A gateway whose public address is not reachable from the core (a NAT behind another: its
 * "external" address is the carrier's inside, 100.64/10) ends the exchanges once the client
 * has read that address — after the first NAT-PMP exchange, or after GetExternalIPAddress —
 * with MESH_ERR_UNREACHABLE and no mapping, as the real driver reports a double NAT.
 * The NAT's table changes when the answer is due (the request's half round trip earlier in
 * reality); a release removes the mapping at once. Loss, censors and partitions on the way
 * to the gateway are not applied to these exchanges. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/driver_int.h"

enum pm_method { PM_NONE = 0, PM_NATPMP = 1, PM_UPNP = 2 };

typedef struct pm_entry {
    sim_driver *d;
    int used;
    uint8_t proto;
    uint16_t port;      /* internal port */
    uint16_t ext_port;  /* the external port the gateway gave last (NAT-PMP suggests it) */
    int method;         /* enum pm_method that mapped it (PM_NONE: nothing at the gateway) */
    int plan;           /* the method of the request in flight */
    int outcome;        /* what the request in flight ends in unless the gateway says no */
    uint32_t lease_s;   /* asked */
    mesh_portmap_cb cb; /* the request in flight */
    void *ud;
    sim_event_id ev; /* its answer; SIM_EVENT_NONE when none is due */
} pm_entry;

struct sim_portmap {
    sim_nat *gw; /* the NAT on the host's own LAN, NULL: no gateway answers */
    pm_entry *e; /* SIM_DRIVER_PORTMAP_MAX entries from the first request on (a run enables
                    the service on every host, most never ask) */
};

static mesh_time ms(uint32_t v)
{
    return (mesh_time)v * MESH_NS_PER_MS;
}

static mesh_time host_rtt(const sim_driver *d)
{
    sim_link_cfg up, down;
    sim_host_get_links(d->host, &up, &down);
    return up.latency + down.latency;
}

static void pm_log(sim_driver *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pm_log(sim_driver *d, const char *fmt, ...)
{
    char line[SIM_DRIVER_LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    d->ops.log(d, MESH_LOG_INFO, line);
}

static pm_entry *find(sim_portmap *pm, uint8_t proto, uint16_t port)
{
    for (int i = 0; pm->e && i < SIM_DRIVER_PORTMAP_MAX; i++)
        if (pm->e[i].used && pm->e[i].proto == proto && pm->e[i].port == port)
            return &pm->e[i];
    return NULL;
}

/* The gateway's answer, played now against the NAT: MESH_OK with *ext, or why not. */
static int play(sim_driver *d, pm_entry *e, mesh_addr *ext, uint32_t *lease)
{
    sim_nat *gw = d->pm->gw;
    mesh_addr in = mesh_addr_v4(sim_host_ip(d->host), e->port);
    int rc;
    if (e->plan == PM_NATPMP) {
        sim_nat_pmp_answer a;
        uint32_t life = e->lease_s ? e->lease_s : SIM_NAT_PMP_LEASE_S; /* 0 would delete */
        rc = sim_nat_pmp_map(gw, e->proto, &in, e->ext_port ? e->ext_port : e->port, life, &a);
        *ext = a.external;
        *lease = a.lifetime_s;
    } else {
        rc = sim_nat_portmap_request(gw, e->proto, &in, e->lease_s, ext);
        *lease = e->lease_s > SIM_NAT_MAX_LEASE_S ? SIM_NAT_MAX_LEASE_S : e->lease_s;
    }
    /* the gateway said no (not authorized, no port left): NAT-PMP's and UPnP's refusals */
    if (rc == MESH_ERR_LIMIT || rc == MESH_ERR_REFUSED || rc == MESH_ERR_UNSUPPORTED)
        return MESH_ERR_REFUSED;
    return rc;
}

static void answer_ev(void *ctx, void *arg)
{
    pm_entry *e = ctx;
    sim_driver *d = e->d;
    (void)arg;
    e->ev = SIM_EVENT_NONE;
    mesh_addr ext = {0};
    uint32_t lease = 0;
    int rc = e->outcome;
    const char *how = e->plan == PM_NATPMP ? "NAT-PMP" : e->plan == PM_UPNP ? "UPnP" : "-";
    if (rc == MESH_OK)
        rc = play(d, e, &ext, &lease);
    char a[MESH_ADDR_STRLEN];
    if (rc == MESH_OK) {
        e->method = e->plan;
        e->ext_port = ext.port;
        pm_log(d, "portmap: %s %u mapped to %s by %s, lease %u s",
               e->proto == SIM_PROTO_TCP ? "TCP" : "UDP", e->port,
               mesh_addr_format(&ext, a, sizeof a), how, lease);
    } else {
        pm_log(d, "portmap: %s %u: no mapping: %s (%s)", e->proto == SIM_PROTO_TCP ? "TCP" : "UDP",
               e->port, mesh_strerror(rc),
               rc == MESH_ERR_UNREACHABLE ? "the gateway's external address is private: double NAT"
                                          : how);
    }
    mesh_portmap_cb cb = e->cb;
    void *ud = e->ud;
    e->cb = NULL;
    if (cb) /* env.h: a failure gives no address and no lease */
        cb(rc, rc == MESH_OK ? &ext : NULL, rc == MESH_OK ? lease : 0, ud);
}

/* How the client's exchanges with this gateway go: the method, the outcome unless the
 * gateway refuses, and when the answer is due. */
static mesh_time plan(sim_driver *d, pm_entry *e)
{
    sim_nat *gw = d->pm->gw;
    mesh_time rtt = host_rtt(d), proc = ms(SIM_DRIVER_PORTMAP_PROC_MS);
    mesh_time ssdp = ms(SIM_DRIVER_PORTMAP_SSDP_MS), http = 2 * rtt + proc;
    unsigned svc = gw ? sim_nat_services(gw) : 0;
    int global = gw && sim_lan_public_is_global(sim_nat_lan(gw));
    if (svc & SIM_NAT_SVC_NATPMP) {
        e->plan = PM_NATPMP;
        e->outcome = global ? MESH_OK : MESH_ERR_UNREACHABLE;
        return global ? 2 * (rtt + proc) : rtt + proc;
    }
    if (svc & SIM_NAT_SVC_UPNP) {
        e->plan = PM_UPNP;
        e->outcome = global ? MESH_OK : MESH_ERR_UNREACHABLE;
        return rtt + ssdp + (global ? 4 : 2) * http;
    }
    e->plan = PM_NONE;
    e->outcome = MESH_ERR_UNSUPPORTED;
    return rtt + ssdp;
}

static int op_request(void *obj, int tcp, uint16_t port, uint32_t lease_s, mesh_portmap_cb cb,
                      void *ud)
{
    sim_driver *d = obj;
    if (!port || !cb)
        return MESH_ERR_INVAL;
    uint8_t proto = tcp ? SIM_PROTO_TCP : SIM_PROTO_UDP;
    if (!d->pm->e && !(d->pm->e = calloc(SIM_DRIVER_PORTMAP_MAX, sizeof *d->pm->e)))
        return MESH_ERR_NOMEM;
    pm_entry *e = find(d->pm, proto, port);
    for (int i = 0; !e && i < SIM_DRIVER_PORTMAP_MAX; i++)
        if (!d->pm->e[i].used) {
            e = &d->pm->e[i];
            memset(e, 0, sizeof *e);
            e->d = d;
            e->used = 1;
            e->proto = proto;
            e->port = port;
            e->ev = SIM_EVENT_NONE;
        }
    if (!e)
        return MESH_ERR_LIMIT;
    sim_sched *s = d->w->sched;
    sim_sched_cancel(s, e->ev); /* a request in flight is superseded: its cb never runs */
    e->ev = SIM_EVENT_NONE;
    e->lease_s = lease_s;
    e->cb = cb;
    e->ud = ud;
    mesh_time after = plan(d, e);
    int rc =
        sim_sched_after(s, after, SIM_EV_PORTMAP, sim_host_id(d->host), answer_ev, e, NULL, &e->ev);
    if (rc != MESH_OK)
        e->cb = NULL; /* the scheduler is full (MESH_ERR_LIMIT) */
    return rc;
}

static int op_release(void *obj, int tcp, uint16_t port)
{
    sim_driver *d = obj;
    pm_entry *e = find(d->pm, tcp ? SIM_PROTO_TCP : SIM_PROTO_UDP, port);
    if (!e)
        return MESH_ERR_NOT_FOUND;
    sim_sched_cancel(d->w->sched, e->ev);
    mesh_addr in = mesh_addr_v4(sim_host_ip(d->host), e->port);
    sim_nat_pmp_answer a;
    if (e->method == PM_NATPMP)
        sim_nat_pmp_map(d->pm->gw, e->proto, &in, 0, 0, &a); /* lifetime 0: delete */
    else if (e->method == PM_UPNP)
        sim_nat_portmap_release(d->pm->gw, e->proto, &in);
    memset(e, 0, sizeof *e);
    e->ev = SIM_EVENT_NONE;
    return MESH_OK;
}

static const mesh_portmap_ops sim_portmap_ops = {op_request, op_release};

int sim_driver_enable_portmap(sim_driver *d, sim_nat *gw)
{
    if (!d || (gw && sim_nat_lan(gw) != sim_host_lan(d->host)))
        return MESH_ERR_INVAL;
    if (d->pm)
        return MESH_ERR_EXISTS;
    d->pm = calloc(1, sizeof *d->pm);
    if (!d->pm)
        return MESH_ERR_NOMEM;
    d->pm->gw = gw;
    d->ops.portmap = &sim_portmap_ops;
    return MESH_OK;
}

void sim_driver_portmap_free(sim_driver *d)
{
    if (!d->pm)
        return;
    for (int i = 0; d->pm->e && i < SIM_DRIVER_PORTMAP_MAX; i++)
        if (d->pm->e[i].used)
            sim_sched_cancel(d->w->sched, d->pm->e[i].ev);
    free(d->pm->e);
    free(d->pm);
    d->pm = NULL;
    d->ops.portmap = NULL;
}
