/* nat_portmap.c — the port-mapping services of nat.h on the NAT's gateway: UPnP IGD
 * (AddPortMapping with a lease, 0 = permanent), NAT-PMP (RFC 6886: the public address with
 * the epoch, mapping requests with a lifetime the gateway may shorten, lifetime 0 deletes),
 * the administrator's static forwards, and restarts (a new epoch, every mapping but the
 * static forwards gone).
 *
 * All services keep their entries in the NAT's one mapping table as port-map mappings (key:
 * protocol and internal endpoint; no filter, no traffic expiry), so a UPnP and a NAT-PMP
 * request for the same internal endpoint find the same entry, as in miniupnpd's one table. */
#include <string.h>

#include "sim/nat_int.h"

/* The gateway serves the hosts of its own LAN only (SSDP and NAT-PMP are link-local; RFC
 * 6886 §3: requests from elsewhere are not accepted). */
static int from_inside(const sim_nat *n, const mesh_addr *internal)
{
    return sim_lan_has_host(n->lan, sim_addr_ip4(internal));
}

/* Create a port-map entry (internal → ext) expiring at expires_at; *out gets it. */
static int portmap_add(sim_nat *n, uint8_t proto, const mesh_addr *internal, uint16_t ext,
                       mesh_time expires_at, int forward, nat_map **out)
{
    mesh_time now = sim_net_now(n->net);
    if (!nat_room(n, &n->st.maps_live, n->cfg.max_mappings))
        return MESH_ERR_LIMIT;
    nat_map *m =
        nat_map_new(n, proto, 1, sim_addr_ip4(internal), internal->port, 0, 0, ext, expires_at);
    if (!m)
        return MESH_ERR_NOMEM;
    m->forward = (uint8_t)forward;
    n->st.portmaps_added++;
    nat_observe(n, SIM_NAT_EV_PORTMAP_ADD, now, NULL, m);
    *out = m;
    return MESH_OK;
}

/* A new lease on an existing port-map entry (a static forward stays permanent). */
static void renew(sim_nat *n, nat_map *m, mesh_time expires)
{
    if (m->forward)
        return;
    if (m->expires_at != MESH_TIME_NEVER && expires == MESH_TIME_NEVER)
        n->nexpiring--;
    else if (m->expires_at == MESH_TIME_NEVER && expires != MESH_TIME_NEVER)
        n->nexpiring++;
    m->expires_at = expires;
    nat_arm_sweep(n);
}

/* An endpoint-independent NAT already mapping the internal endpoint (its flows out, e.g.
 * from a listening port): the port map takes that mapping's external port over, as a
 * gateway keeps an established flow's translation, so those flows go on and the mapping and
 * the flows agree on one external port. Returns that port (the dynamic mapping removed), or
 * 0 when there is none. */
static uint16_t take_dynamic_port(sim_nat *n, uint8_t proto, const mesh_addr *internal,
                                  mesh_time now)
{
    if (n->cfg.mapping != SIM_NAT_ENDPOINT_INDEPENDENT)
        return 0;
    nat_map *d = nat_find_int(n, proto, 0, sim_addr_ip4(internal), internal->port, 0, 0, now);
    if (!d)
        return 0;
    uint16_t ext = d->ext_port;
    nat_map_remove(n, d);
    return ext;
}

/* ---- UPnP IGD --------------------------------------------------------------------------- */

int sim_nat_portmap_request(sim_nat *n, uint8_t proto, const mesh_addr *internal, uint32_t lease_s,
                            mesh_addr *external)
{
    if (!n || !nat_proto_ok(proto) || !nat_endpoint_ok(internal) || !external)
        return MESH_ERR_INVAL;
    if (!n->cfg.portmap)
        return MESH_ERR_UNSUPPORTED;
    if (!from_inside(n, internal))
        return MESH_ERR_REFUSED;
    mesh_time now = sim_net_now(n->net);
    if (lease_s > SIM_NAT_MAX_LEASE_S)
        lease_s = SIM_NAT_MAX_LEASE_S;
    mesh_time expires =
        lease_s ? nat_sat_add(now, (mesh_time)lease_s * MESH_NS_PER_S) : MESH_TIME_NEVER;
    nat_map *m = nat_find_int(n, proto, 1, sim_addr_ip4(internal), internal->port, 0, 0, now);
    if (m) { /* renewal: same external port, new lease */
        renew(n, m, expires);
        *external = mesh_addr_v4(n->pub, m->ext_port);
        return MESH_OK;
    }
    uint16_t ext = take_dynamic_port(n, proto, internal, now);
    if (!ext && !nat_room(n, &n->st.maps_live, n->cfg.max_mappings))
        return MESH_ERR_LIMIT;
    if (!ext)
        ext = nat_alloc_port(n, proto, internal->port, 1, now);
    if (!ext)
        return MESH_ERR_LIMIT;
    int rc = portmap_add(n, proto, internal, ext, expires, 0, &m);
    if (rc == MESH_OK)
        *external = mesh_addr_v4(n->pub, ext);
    return rc;
}

int sim_nat_portmap_release(sim_nat *n, uint8_t proto, const mesh_addr *internal)
{
    if (!n || !nat_proto_ok(proto) || !nat_endpoint_ok(internal))
        return MESH_ERR_INVAL;
    mesh_time now = sim_net_now(n->net);
    nat_map *m = nat_find_int(n, proto, 1, sim_addr_ip4(internal), internal->port, 0, 0, now);
    if (!m)
        return MESH_ERR_NOT_FOUND;
    n->st.portmaps_released++;
    nat_observe(n, SIM_NAT_EV_PORTMAP_RELEASE, now, NULL, m);
    nat_map_remove(n, m);
    return MESH_OK;
}

/* ---- NAT-PMP (RFC 6886) -------------------------------------------------------------------- */

static uint32_t epoch_s(const sim_nat *n)
{
    mesh_time t = (sim_net_now(n->net) - n->epoch_start) / MESH_NS_PER_S;
    return t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

int sim_nat_pmp_external(sim_nat *n, uint32_t from_ip, uint32_t *public_ip, uint32_t *epoch)
{
    if (!n || !from_ip || !public_ip)
        return MESH_ERR_INVAL;
    if (!n->cfg.natpmp)
        return MESH_ERR_UNSUPPORTED;
    if (!sim_lan_has_host(n->lan, from_ip))
        return MESH_ERR_REFUSED;
    *public_ip = n->pub;
    if (epoch)
        *epoch = epoch_s(n);
    return MESH_OK;
}

/* Lifetime 0: delete what a service mapped for internal (a static forward stays); not an
 * error when there is nothing (RFC 6886 §3.4). */
static int pmp_delete(sim_nat *n, uint8_t proto, const mesh_addr *internal, sim_nat_pmp_answer *a)
{
    mesh_time now = sim_net_now(n->net);
    nat_map *m = nat_find_int(n, proto, 1, sim_addr_ip4(internal), internal->port, 0, 0, now);
    if (m && !m->forward) {
        n->st.portmaps_released++;
        nat_observe(n, SIM_NAT_EV_PORTMAP_RELEASE, now, NULL, m);
        nat_map_remove(n, m);
    }
    a->external = mesh_addr_v4(n->pub, 0);
    return MESH_OK;
}

int sim_nat_pmp_map(sim_nat *n, uint8_t proto, const mesh_addr *internal, uint16_t suggested,
                    uint32_t lifetime_s, sim_nat_pmp_answer *ans)
{
    if (!n || !nat_proto_ok(proto) || !nat_endpoint_ok(internal) || !ans)
        return MESH_ERR_INVAL;
    if (!n->cfg.natpmp)
        return MESH_ERR_UNSUPPORTED;
    if (!from_inside(n, internal))
        return MESH_ERR_REFUSED;
    memset(ans, 0, sizeof *ans);
    ans->epoch_s = epoch_s(n);
    if (lifetime_s == 0)
        return pmp_delete(n, proto, internal, ans);
    uint32_t granted = lifetime_s < n->cfg.pmp_max_lease_s ? lifetime_s : n->cfg.pmp_max_lease_s;
    mesh_time now = sim_net_now(n->net);
    mesh_time expires = nat_sat_add(now, (mesh_time)granted * MESH_NS_PER_S);
    nat_map *m = nat_find_int(n, proto, 1, sim_addr_ip4(internal), internal->port, 0, 0, now);
    if (m) { /* the same internal port again: its external port, a new lifetime */
        renew(n, m, expires);
    } else {
        uint16_t ext = take_dynamic_port(n, proto, internal, now);
        if (!ext && !nat_room(n, &n->st.maps_live, n->cfg.max_mappings))
            return MESH_ERR_LIMIT;
        if (!ext)
            ext = nat_alloc_port(n, proto, suggested ? suggested : internal->port, 1, now);
        if (!ext)
            return MESH_ERR_LIMIT;
        int rc = portmap_add(n, proto, internal, ext, expires, 0, &m);
        if (rc != MESH_OK)
            return rc;
    }
    ans->external = mesh_addr_v4(n->pub, m->ext_port);
    ans->lifetime_s = m->forward ? lifetime_s : granted;
    return MESH_OK;
}

/* ---- static forwards, restarts, services ------------------------------------------------- */

int sim_nat_add_static(sim_nat *n, uint8_t proto, const mesh_addr *internal, uint16_t ext_port,
                       mesh_addr *external)
{
    if (!n || !nat_proto_ok(proto) || !nat_endpoint_ok(internal) || !ext_port)
        return MESH_ERR_INVAL;
    mesh_time now = sim_net_now(n->net);
    if (nat_find_int(n, proto, 1, sim_addr_ip4(internal), internal->port, 0, 0, now))
        return MESH_ERR_EXISTS;
    nat_map *old = nat_find_ext(n, proto, ext_port, now);
    if (old && old->portmap)
        return MESH_ERR_EXISTS;
    if (old)
        nat_map_remove(n, old); /* the forward wins over a dynamic mapping */
    nat_map *m;
    int rc = portmap_add(n, proto, internal, ext_port, MESH_TIME_NEVER, 1, &m);
    if (rc == MESH_OK && external)
        *external = mesh_addr_v4(n->pub, ext_port);
    return rc;
}

void sim_nat_restart(sim_nat *n)
{
    if (!n)
        return;
    mesh_time now = sim_net_now(n->net);
    size_t gone = 0;
    for (nat_map *m = n->head, *nx; m; m = nx) {
        nx = m->next;
        if (!m->forward) {
            nat_map_remove(n, m);
            gone++;
        }
    }
    n->epoch_start = now;
    n->st.restarts++;
    n->st.restart_losses += gone;
    nat_observe(n, SIM_NAT_EV_RESTART, now, NULL, NULL);
}

unsigned sim_nat_services(const sim_nat *n)
{
    return (n->cfg.portmap ? SIM_NAT_SVC_UPNP : 0u) | (n->cfg.natpmp ? SIM_NAT_SVC_NATPMP : 0u);
}
