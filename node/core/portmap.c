/* portmap.c — one port mapping kept alive through the env's port-mapping service (see
 * portmap.h for the state diagram and the owner's contract).
 *
 * Two timers: `next` is the answer deadline while a request is in flight, otherwise the
 * moment of the next request (renewal or retry); `expire` is the end of the lease held. An
 * immediate error from the env's request is not reported from inside the caller's call: it is
 * parked in `pending_err` and handled when `next` fires on the next loop turn.
 */
#include "core/portmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mesh_portmap {
    mesh_env env;
    mesh_portmap_cfg cfg;
    mesh_portmap_report_fn report;
    void *ud;
    mesh_timer *next, *expire;
    int state;       /* enum mesh_portmap_state */
    int busy;        /* a request is in flight at the env */
    int mapped;      /* a mapping is held (state MAPPED) */
    int pending_err; /* an immediate request error, handled when `next` fires */
    uint16_t port;
    mesh_time backoff; /* delay before the next retry after a failure */
    mesh_time next_at; /* what `next` is armed for (0 = not armed) */
    mesh_portmap_stats st;
};

static mesh_time ms(uint64_t v)
{
    return (mesh_time)v * MESH_NS_PER_MS;
}

static void arm_next(mesh_portmap *pm, mesh_time when)
{
    pm->next_at = when;
    pm->env.ops->timer_set(pm->env.obj, pm->next, when);
}

static void disarm(mesh_portmap *pm)
{
    pm->env.ops->timer_stop(pm->env.obj, pm->next);
    pm->env.ops->timer_stop(pm->env.obj, pm->expire);
    pm->next_at = 0;
}

/* d as seconds with milliseconds ("30.000") into buf (24 bytes). */
static const char *secs(mesh_time d, char *buf, size_t len)
{
    snprintf(buf, len, "%llu.%03llu", (unsigned long long)(d / MESH_NS_PER_S),
             (unsigned long long)(d % MESH_NS_PER_S / MESH_NS_PER_MS));
    return buf;
}

/* The delay before the next retry, and the one after it (doubling up to retry_max). */
static mesh_time take_backoff(mesh_portmap *pm)
{
    mesh_time d = pm->backoff;
    pm->backoff = d > pm->cfg.retry_max / 2 ? pm->cfg.retry_max : d * 2;
    return d;
}

/* ---- requests and answers ------------------------------------------------------------------ */

static void on_answer(int result, const mesh_addr *external, uint32_t lease_s, void *ud);

static void send_request(mesh_portmap *pm)
{
    pm->st.requests++;
    int rc =
        pm->env.ops->portmap->request(pm->env.obj, 1, pm->port, pm->cfg.lease_s, on_answer, pm);
    mesh_time now = mesh_env_now(&pm->env);
    if (rc != MESH_OK) {
        pm->pending_err = rc; /* handled from `next`, on the next loop turn */
        arm_next(pm, now);
        return;
    }
    pm->busy = 1;
    arm_next(pm, now + pm->cfg.answer_timeout);
}

static void failed(mesh_portmap *pm, int err)
{
    char a[MESH_ADDR_STRLEN], d[24];
    mesh_time now = mesh_env_now(&pm->env);
    pm->st.failures++;
    pm->st.last_error = err;
    mesh_time delay = take_backoff(pm);
    arm_next(pm, now + delay);
    if (pm->mapped) {
        mesh_log(&pm->env, MESH_LOG_WARN,
                 "portmap: TCP %u: renewal failed: %s (%s); %s kept until its lease ends, "
                 "next attempt in %s s",
                 pm->port, mesh_errname(err), mesh_strerror(err),
                 mesh_addr_format(&pm->st.external, a, sizeof a), secs(delay, d, sizeof d));
        return;
    }
    pm->state = MESH_PORTMAP_FAILED;
    mesh_log(&pm->env, MESH_LOG_WARN, "portmap: TCP %u: attempt failed: %s (%s); next in %s s",
             pm->port, mesh_errname(err), mesh_strerror(err), secs(delay, d, sizeof d));
    pm->report(pm, err, NULL, pm->ud);
}

static void mapped(mesh_portmap *pm, const mesh_addr *external, uint32_t lease_s)
{
    char a[MESH_ADDR_STRLEN], d[24];
    mesh_time now = mesh_env_now(&pm->env);
    int changed = !pm->mapped || !mesh_addr_equal(&pm->st.external, external);
    pm->mapped = 1;
    pm->state = MESH_PORTMAP_MAPPED;
    pm->st.external = *external;
    pm->st.lease_s = lease_s;
    pm->backoff = pm->cfg.retry_min;
    if (lease_s) {
        pm->st.expires_at = now + (mesh_time)lease_s * MESH_NS_PER_S;
        pm->env.ops->timer_set(pm->env.obj, pm->expire, pm->st.expires_at);
    } else {
        pm->st.expires_at = MESH_TIME_NEVER;
        pm->env.ops->timer_stop(pm->env.obj, pm->expire);
    }
    /* half the lease granted; with no expiry, half the lease asked: a check the gateway
     * still has it (it may have rebooted) */
    mesh_time renew = (mesh_time)(lease_s ? lease_s : pm->cfg.lease_s) * MESH_NS_PER_S / 2;
    if (renew < ms(MESH_PORTMAP_MIN_RENEW_MS))
        renew = ms(MESH_PORTMAP_MIN_RENEW_MS);
    arm_next(pm, now + renew);
    mesh_addr_format(external, a, sizeof a);
    if (!changed) {
        pm->st.renewals++;
        mesh_log(&pm->env, MESH_LOG_DEBUG,
                 "portmap: TCP %u: still held at %s (lease %u s), renewal in %s s", pm->port, a,
                 lease_s, secs(renew, d, sizeof d));
        return;
    }
    pm->st.mappings++;
    mesh_log(&pm->env, MESH_LOG_INFO, "portmap: TCP %u: held at %s (lease %u s), renewal in %s s",
             pm->port, a, lease_s, secs(renew, d, sizeof d));
    pm->report(pm, MESH_OK, external, pm->ud);
}

static void on_answer(int result, const mesh_addr *external, uint32_t lease_s, void *ud)
{
    mesh_portmap *pm = ud;
    if (!pm->busy) {
        /* answered after our deadline, before the next request superseded it: the next
         * request (already scheduled) decides */
        mesh_log(&pm->env, MESH_LOG_DEBUG, "portmap: TCP %u: late answer %s ignored", pm->port,
                 mesh_errname(result));
        return;
    }
    pm->busy = 0;
    pm->env.ops->timer_stop(pm->env.obj, pm->next);
    pm->next_at = 0;
    if (result == MESH_OK &&
        (!external || external->family != MESH_AF_INET4 || external->port == 0)) {
        mesh_log(&pm->env, MESH_LOG_WARN, "portmap: TCP %u: the env answered no usable address",
                 pm->port);
        result = MESH_ERR_PROTOCOL;
    }
    if (result == MESH_OK)
        mapped(pm, external, lease_s);
    else
        failed(pm, result);
}

/* `next`: the answer deadline, a parked immediate error, or the next request. */
static void next_fired(mesh_timer *t, void *ud)
{
    (void)t;
    mesh_portmap *pm = ud;
    pm->next_at = 0;
    if (pm->busy) {
        pm->busy = 0;
        failed(pm, MESH_ERR_TIMEOUT);
    } else if (pm->pending_err) {
        int err = pm->pending_err;
        pm->pending_err = 0;
        failed(pm, err);
    } else {
        if (!pm->mapped)
            pm->state = MESH_PORTMAP_REQUESTING;
        send_request(pm);
    }
}

/* `expire`: the lease ended without a successful renewal. */
static void expire_fired(mesh_timer *t, void *ud)
{
    (void)t;
    mesh_portmap *pm = ud;
    char a[MESH_ADDR_STRLEN];
    int err = pm->st.last_error ? pm->st.last_error : MESH_ERR_TIMEOUT;
    pm->mapped = 0;
    pm->st.losses++;
    pm->state = pm->busy ? MESH_PORTMAP_REQUESTING : MESH_PORTMAP_FAILED;
    mesh_log(&pm->env, MESH_LOG_WARN, "portmap: TCP %u: mapping %s lost: its lease ended (%s)",
             pm->port, mesh_addr_format(&pm->st.external, a, sizeof a), mesh_errname(err));
    memset(&pm->st.external, 0, sizeof pm->st.external);
    pm->st.lease_s = 0;
    pm->st.expires_at = MESH_TIME_NEVER;
    pm->report(pm, err, NULL, pm->ud);
}

/* ---- API ------------------------------------------------------------------------------------ */

int mesh_portmap_new(mesh_portmap **out, const mesh_env *env, const mesh_portmap_cfg *cfg,
                     mesh_portmap_report_fn report, void *ud)
{
    mesh_portmap_cfg c = {0};
    if (cfg)
        c = *cfg;
    if (!c.lease_s)
        c.lease_s = MESH_PORTMAP_DEFAULT_LEASE_S;
    if (!c.retry_min)
        c.retry_min = ms(MESH_PORTMAP_DEFAULT_RETRY_MIN_MS);
    if (!c.retry_max)
        c.retry_max = ms(MESH_PORTMAP_DEFAULT_RETRY_MAX_MS);
    if (!c.answer_timeout)
        c.answer_timeout = ms(MESH_PORTMAP_DEFAULT_ANSWER_MS);
    if (!out || !env || !report || c.lease_s > MESH_PORTMAP_MAX_LEASE_S ||
        c.retry_min > c.retry_max)
        return MESH_ERR_INVAL;
    mesh_portmap *pm = calloc(1, sizeof *pm);
    if (!pm)
        return MESH_ERR_NOMEM;
    pm->env = *env;
    pm->cfg = c;
    pm->report = report;
    pm->ud = ud;
    pm->st.expires_at = MESH_TIME_NEVER;
    pm->next = env->ops->timer_new(env->obj, next_fired, pm);
    if (!pm->next)
        goto fail;
    pm->expire = env->ops->timer_new(env->obj, expire_fired, pm);
    if (!pm->expire)
        goto fail_next;
    *out = pm;
    return MESH_OK;

fail_next:
    env->ops->timer_free(env->obj, pm->next);
fail:
    free(pm);
    return MESH_ERR_NOMEM;
}

/* An address a gateway could map to: IPv4, not loopback (a listener bound there is reachable
 * from this host only) and not unspecified-but-IPv6. 0.0.0.0 is fine: the driver maps to the
 * host's address towards the gateway. */
static int mappable(const mesh_addr *a)
{
    return a->family == MESH_AF_INET4 && a->ip[0] != 127;
}

int mesh_portmap_start(mesh_portmap *pm, const mesh_addr *bound)
{
    if (!pm || !bound || bound->port == 0)
        return MESH_ERR_INVAL;
    if (pm->state != MESH_PORTMAP_OFF)
        return MESH_ERR_STATE;
    if (!pm->env.ops->portmap || !mappable(bound))
        return MESH_ERR_UNSUPPORTED;
    pm->port = bound->port;
    pm->backoff = pm->cfg.retry_min;
    pm->state = MESH_PORTMAP_REQUESTING;
    send_request(pm);
    return MESH_OK;
}

void mesh_portmap_stop(mesh_portmap *pm)
{
    if (!pm || pm->state == MESH_PORTMAP_OFF)
        return;
    disarm(pm);
    /* release also cancels a request in flight (env.h); after a failure nothing is held,
     * but a superseded late success may be: releasing is harmless either way */
    int rc = pm->env.ops->portmap->release(pm->env.obj, 1, pm->port);
    char a[MESH_ADDR_STRLEN] = "-";
    if (pm->mapped)
        mesh_addr_format(&pm->st.external, a, sizeof a);
    mesh_log(&pm->env, MESH_LOG_INFO, "portmap: TCP %u released (%s): %s", pm->port, a,
             mesh_errname(rc));
    pm->busy = pm->mapped = pm->pending_err = 0;
    pm->state = MESH_PORTMAP_OFF;
    memset(&pm->st.external, 0, sizeof pm->st.external);
    pm->st.lease_s = 0;
    pm->st.expires_at = MESH_TIME_NEVER;
}

void mesh_portmap_free(mesh_portmap *pm)
{
    if (!pm)
        return;
    mesh_portmap_stop(pm);
    pm->env.ops->timer_free(pm->env.obj, pm->next);
    pm->env.ops->timer_free(pm->env.obj, pm->expire);
    free(pm);
}

void mesh_portmap_get_stats(const mesh_portmap *pm, mesh_portmap_stats *out)
{
    *out = pm->st;
    out->state = pm->state;
    out->next_at = pm->next_at;
}
