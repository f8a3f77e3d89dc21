/* stun_host.c — the STUN responder on one or two simulated hosts (see stun_host.h). */
#include "sim/stun_host.h"

#include <stdlib.h>

#include "core/stun_server.h"

struct sim_stun_host {
    sim_driver *d, *alt_d;
    mesh_env env, alt_env;
    mesh_addr addr;
    mesh_stun_server *srv;
};

int sim_stun_host_new(sim_stun_host **out, sim_world *w, sim_host *primary, sim_host *alternate)
{
    if (!out || !w || !primary || alternate == primary)
        return MESH_ERR_INVAL;
    sim_stun_host *s = calloc(1, sizeof *s);
    if (!s)
        return MESH_ERR_NOMEM;
    int rc = sim_driver_new(&s->d, w, primary);
    if (rc != MESH_OK)
        goto fail;
    s->env = sim_driver_env(s->d);
    if (alternate) {
        if ((rc = sim_driver_new(&s->alt_d, w, alternate)) != MESH_OK)
            goto fail;
        s->alt_env = sim_driver_env(s->alt_d);
    }
    mesh_stun_server_cfg cfg;
    mesh_stun_server_cfg_default(&cfg);
    cfg.primary = mesh_addr_v4(sim_host_ip(primary), SIM_STUN_PORT);
    if (alternate)
        cfg.alternate = mesh_addr_v4(sim_host_ip(alternate), SIM_STUN_ALT_PORT);
    cfg.software = "meshara-sim";
    rc = mesh_stun_server_new(&s->srv, &s->env, alternate ? &s->alt_env : NULL, &cfg);
    if (rc != MESH_OK)
        goto fail;
    s->addr = cfg.primary;
    *out = s;
    return MESH_OK;
fail:
    sim_driver_free(s->alt_d);
    sim_driver_free(s->d);
    free(s);
    return rc;
}

void sim_stun_host_free(sim_stun_host *s)
{
    if (!s)
        return;
    mesh_stun_server_free(s->srv);
    sim_driver_free(s->alt_d);
    sim_driver_free(s->d);
    free(s);
}

mesh_addr sim_stun_host_addr(const sim_stun_host *s)
{
    return s->addr;
}

sim_stun_host_stats sim_stun_host_get_stats(const sim_stun_host *s)
{
    sim_stun_host_stats out = {0};
    if (!s)
        return out;
    mesh_stun_server_stats st = mesh_stun_server_get_stats(s->srv);
    out.answered = st.answered;
    out.errors = st.errors;
    out.changed = st.changed;
    out.dropped = st.dropped;
    out.tcp_accepted = st.tcp_accepted;
    out.tcp_refused = st.tcp_refused;
    return out;
}
