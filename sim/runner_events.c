/* runner_events.c — what a scenario makes happen during a run (see runner_int.h): each
 * traffic pattern's messages, drawn per sending node from its own seeded stream, and the
 * timed events (churn, partitions, link changes, censors switched on and off). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/runner_int.h"

/* ---- traffic --------------------------------------------------------------------------------- */

static mesh_time draw_gap(const sim_scn_traffic *t, sim_rng *rng)
{
    if (t->arrivals == SIM_SCN_ARRIVALS_POISSON) {
        double u = sim_rng_unit(rng);
        double g = -log(1.0 - u) * (double)t->interval;
        return g < 1.0 ? 1 : (mesh_time)g;
    }
    return t->interval;
}

static uint64_t draw_size(const sim_scn_size *z, sim_rng *rng)
{
    double v;
    switch (z->dist) {
    case SIM_SCN_SIZE_UNIFORM:
        return z->min + sim_rng_below(rng, z->max - z->min + 1);
    case SIM_SCN_SIZE_EXPONENTIAL:
        v = -log(1.0 - sim_rng_unit(rng)) * (double)z->mean;
        break;
    case SIM_SCN_SIZE_PARETO: {
        double xm = (double)z->mean * (z->shape - 1.0) / z->shape;
        v = xm / pow(1.0 - sim_rng_unit(rng), 1.0 / z->shape);
        break;
    }
    default:
        return z->min;
    }
    uint64_t s = v >= (double)SIM_RUNNER_MAX_MSG ? SIM_RUNNER_MAX_MSG : (uint64_t)v;
    if (z->max && s > z->max)
        s = z->max;
    return s;
}

void rn_traffic_fire(void *ctx, void *arg)
{
    runner *r = ctx;
    rn_traffic_src *src = arg;
    const sim_scn_traffic *t = &r->scn->traffic[src->pattern];
    rn_node *n = &r->nodes[src->node];
    mesh_time now = sim_sched_now(r->sched);
    if (now >= t->stop)
        return;
    if (n->online && n->node) {
        const sim_scenario *s = r->scn;
        uint32_t first = 0, count = s->node_count;
        if (t->to != SIM_SCN_TO_RANDOM) {
            first = s->groups[t->to].first_node;
            count = s->groups[t->to].count;
        }
        int self_in = src->node >= first && src->node < first + count;
        uint32_t choices = count - (self_in ? 1 : 0);
        if (choices > 0) {
            uint32_t k = (uint32_t)sim_rng_below(&src->rng, choices);
            uint32_t dst = first + k;
            if (self_in && dst >= src->node)
                dst++;
            rn_node_send(r, n, dst, draw_size(&t->size, &src->rng));
        }
    }
    mesh_time next = now + draw_gap(t, &src->rng);
    if (next < t->stop && next < r->scn->duration)
        sim_sched_at(r->sched, next, SIM_EV_USER, src->node, rn_traffic_fire, r, src, NULL);
}

/* ---- timed events ------------------------------------------------------------------------------
 */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int part_member(const rn_partition *p, uint32_t ip)
{
    return bsearch(&ip, p->ips, p->nips, sizeof ip, cmp_u32) != NULL;
}

/* Drops every packet between a member and a non-member while active. */
static int part_on_packet(void *obj, sim_mbox *mb, sim_pkt *pkt, int dir, mesh_time *delay)
{
    (void)mb;
    (void)delay;
    rn_partition *p = obj;
    if (!p->active)
        return SIM_PASS;
    uint32_t remote = sim_addr_ip4(dir == SIM_DIR_OUT ? &pkt->dst : &pkt->src);
    return part_member(p, remote) ? SIM_PASS : SIM_DROP;
}

static const sim_mbox_ops PART_OPS = {.on_packet = part_on_packet};

int rn_cut_off(const runner *r, uint32_t a, uint32_t b)
{
    uint32_t ia = sim_host_ip(r->nodes[a].host), ib = sim_host_ip(r->nodes[b].host);
    for (size_t i = 0; i < r->nparts; i++) {
        const rn_partition *p = r->parts[i];
        if (p->active && p->ips && part_member(p, ia) != part_member(p, ib))
            return 1;
    }
    return 0;
}

static int ref_has_node(const sim_scenario *s, const sim_scn_ref *ref, uint32_t node)
{
    size_t g = sim_scenario_node_group(s, node);
    if (ref->kind == SIM_SCN_REF_GROUP)
        return g == ref->index;
    return s->groups[g].lan == ref->index;
}

static void ev_partition(runner *r, const sim_scn_event *e)
{
    const sim_scenario *s = r->scn;
    rn_partition *p = calloc(1, sizeof *p);
    rn_partition **parts = realloc(r->parts, (r->nparts + 1) * sizeof *parts);
    if (!p || !parts) {
        free(p);
        r->fatal = MESH_ERR_NOMEM;
        return;
    }
    r->parts = parts;
    r->parts[r->nparts++] = p;
    p->r = r;
    p->ips = calloc((1 + SIM_SCN_MAX_NAT_DEPTH) * (size_t)s->node_count + 1, sizeof *p->ips);
    if (!p->ips) {
        r->fatal = MESH_ERR_NOMEM;
        return;
    }
    /* members' own addresses, and the public addresses of the NATs in front of them (each
     * level of a chain: a home router's inside the carrier, the carrier's outside) */
    for (uint32_t i = 0; i < s->node_count; i++) {
        for (size_t k = 0; k < e->target_count; k++) {
            if (!ref_has_node(s, &e->targets[k], i))
                continue;
            rn_node *n = &r->nodes[i];
            p->ips[p->nips++] = sim_host_ip(n->host);
            for (const sim_lan *l = n->lan; l; l = sim_lan_upstream(l))
                if (sim_lan_is_private(l))
                    p->ips[p->nips++] = sim_lan_public_ip(l);
            break;
        }
    }
    qsort(p->ips, p->nips, sizeof *p->ips, cmp_u32);
    p->active = 1;
    for (uint32_t i = 0; i < s->node_count; i++) {
        for (size_t k = 0; k < e->target_count; k++) {
            if (!ref_has_node(s, &e->targets[k], i))
                continue;
            if (sim_net_attach_host_mbox(r->net, r->nodes[i].host, &PART_OPS, p, NULL) != MESH_OK)
                rn_event(r, i, "partition_failed", -1, MESH_ERR_LIMIT,
                         "too many middleboxes on the host");
            break;
        }
    }
}

static void heal_ev(void *ctx, void *arg)
{
    runner *r = ctx;
    rn_partition *p = arg;
    p->active = 0;
    rn_event(r, -1, SIM_RES_EV_SCENARIO, -1, MESH_OK, "partition healed");
}

static void ev_churn(runner *r, const sim_scn_event *e, size_t idx)
{
    const sim_scn_group *g = &r->scn->groups[e->group];
    uint32_t k = (uint32_t)llround(e->fraction * g->count);
    sim_rng rng;
    sim_rng_derive(&rng, r->scn->seed, RN_STREAM_CHURN + idx);
    /* a partial Fisher-Yates over the group's node indices picks k distinct nodes */
    uint32_t *ix = malloc((g->count ? g->count : 1) * sizeof *ix);
    if (!ix) {
        r->fatal = MESH_ERR_NOMEM;
        return;
    }
    for (uint32_t i = 0; i < g->count; i++)
        ix[i] = g->first_node + i;
    for (uint32_t i = 0; i < k; i++) {
        uint32_t j = i + (uint32_t)sim_rng_below(&rng, g->count - i);
        uint32_t t = ix[i];
        ix[i] = ix[j];
        ix[j] = t;
        rn_node *n = &r->nodes[ix[i]];
        rn_node_down(r, n);
        if (e->down_for != MESH_TIME_NEVER)
            sim_sched_after(r->sched, e->down_for, SIM_EV_USER, n->idx, rn_node_up_ev, r, n, NULL);
    }
    free(ix);
}

static void ev_link(runner *r, const sim_scn_event *e)
{
    if (e->target.kind == SIM_SCN_REF_LAN) {
        sim_link_cfg *c = &r->lan_links[e->target.index];
        rn_link_merge(c, &e->link);
        sim_lan_set_links(r->lans[e->target.index], c, c);
        return;
    }
    const sim_scn_group *g = &r->scn->groups[e->target.index];
    for (uint32_t i = 0; i < g->count; i++) {
        rn_node *n = &r->nodes[g->first_node + i];
        rn_link_merge(&n->link, &e->link);
        sim_host_set_links(n->host, &n->link, &n->link);
    }
}

void rn_event_fire(void *ctx, void *arg)
{
    runner *r = ctx;
    size_t idx = (size_t)(uintptr_t)arg;
    const sim_scn_event *e = &r->scn->events[idx];
    char what[64];
    snprintf(what, sizeof what, "%s (events[%zu])", sim_scn_event_kind_name(e->kind), idx);
    rn_event(r, -1, SIM_RES_EV_SCENARIO, -1, MESH_OK, what);
    switch (e->kind) {
    case SIM_SCN_EV_CHURN:
        ev_churn(r, e, idx);
        break;
    case SIM_SCN_EV_PARTITION:
        ev_partition(r, e);
        if (!r->fatal && e->heal_at != MESH_TIME_NEVER)
            sim_sched_at(r->sched, e->heal_at, SIM_EV_USER, idx, heal_ev, r,
                         r->parts[r->nparts - 1], NULL);
        break;
    case SIM_SCN_EV_LINK:
        ev_link(r, e);
        break;
    case SIM_SCN_EV_CENSOR:
        sim_censor_set_enabled(r->censors[e->censor], e->enabled);
        break;
    }
    if (r->fatal)
        sim_sched_stop(r->sched);
}
