/* runner_check.c — sim_run_check (see runner.h): what a scenario may say but this runner
 * cannot build, refused before anything is built, with the element's FILE:LINE:COL.
 * `meshara-sim check` and sim_run both call it, so check never accepts what run refuses.
 *
 * The loader (scenario.h) checks the format; this checks the models behind it: a carrier NAT
 * (one with LANs or per-node NATs behind it) offers no port mapping (sim/nat.h), the censor's
 * actions and rule limits (sim/censor.h), the middleboxes one host or gateway can chain
 * (SIM_MBOX_MAX_PER_POINT), and the summary figures a run records (runner_summary.c). */
#include <stdio.h>
#include <string.h>

#include "sim/runner_int.h"

/* A NAT with routers behind it is a carrier's: it answers no UPnP or NAT-PMP (their requests
 * never leave a home's LAN, and PCP, a carrier's protocol, is not modelled). */
static int check_carriers(const sim_scenario *s, char *err, size_t errlen)
{
    for (size_t i = 0; i < s->lan_count; i++) {
        const sim_scn_lan *l = &s->lans[i];
        if (!l->nat.upnp && !l->nat.natpmp)
            continue;
        const char *behind = NULL;
        for (size_t k = 0; !behind && k < s->lan_count; k++)
            if (s->lans[k].upstream == i)
                behind = s->lans[k].name;
        for (size_t g = 0; !behind && g < s->group_count; g++)
            if (s->groups[g].lan == i && s->groups[g].nat.present)
                behind = s->groups[g].name;
        if (behind)
            return sim_scn_error(err, errlen, MESH_ERR_UNSUPPORTED, &l->loc,
                                 "port mapping is the home routers' (their nat: upnp/natpmp)",
                                 "LAN '%s' has NATs behind it ('%s'), so its NAT is a carrier "
                                 "NAT, which offers no UPnP or NAT-PMP",
                                 l->name, behind);
    }
    return MESH_OK;
}

/* Each rule as the censor model would take it: the same conversion and validation as the
 * run's (rn_censor_rule_of, sim_censor_rule_problem). */
static int check_rules(const sim_scn_censor *c, char *err, size_t errlen)
{
    for (size_t k = 0; k < c->rule_count; k++) {
        const sim_scn_rule *sr = &c->rules[k];
        sim_censor_rule cr;
        if (rn_censor_rule_of(sr, NULL, &cr) != MESH_OK)
            return sim_scn_error(err, errlen, MESH_ERR_UNSUPPORTED, &sr->loc,
                                 "use drop, rst or throttle <rate>",
                                 "rule '%s' of censor '%s': action %s (active probing) is not "
                                 "modelled yet",
                                 sr->name, c->name, sim_scn_action_name(sr->action));
        const char *problem = sim_censor_rule_problem(&cr);
        if (problem)
            return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &sr->loc,
                                 "see network.censors in docs/scenarios.md",
                                 "rule '%s' of censor '%s' cannot be built: %s", sr->name, c->name,
                                 problem);
    }
    return MESH_OK;
}

/* How many censors and partitions name ref (censors attach at the point itself; partitions at
 * each member host, so a LAN's partitions count for the hosts of its groups). */
static size_t censors_at(const sim_scenario *s, int kind, size_t index)
{
    size_t n = 0;
    for (size_t i = 0; i < s->censor_count; i++)
        for (size_t t = 0; t < s->censors[i].target_count; t++)
            n += s->censors[i].targets[t].kind == kind && s->censors[i].targets[t].index == index;
    return n;
}

static size_t partitions_of(const sim_scenario *s, const sim_scn_group *g, size_t gi)
{
    size_t n = 0;
    for (size_t e = 0; e < s->event_count; e++) {
        const sim_scn_event *ev = &s->events[e];
        if (ev->kind != SIM_SCN_EV_PARTITION)
            continue;
        for (size_t t = 0; t < ev->target_count; t++) {
            const sim_scn_ref *r = &ev->targets[t];
            if ((r->kind == SIM_SCN_REF_GROUP && r->index == gi) ||
                (r->kind == SIM_SCN_REF_LAN && r->index == g->lan)) {
                n++;
                break;
            }
        }
    }
    return n;
}

/* Middleboxes chain at most SIM_MBOX_MAX_PER_POINT deep at one host or LAN gateway: censors
 * in front of it, partitions over it, a LAN's NAT. */
static int check_middleboxes(const sim_scenario *s, char *err, size_t errlen)
{
    for (size_t i = 0; i < s->lan_count; i++) {
        const sim_scn_lan *l = &s->lans[i];
        size_t n = censors_at(s, SIM_SCN_REF_LAN, i) + (l->nat.present ? 1 : 0);
        if (n > SIM_MBOX_MAX_PER_POINT)
            return sim_scn_error(err, errlen, MESH_ERR_LIMIT, &l->loc,
                                 "at most 8 (SIM_MBOX_MAX_PER_POINT): merge censors' rules",
                                 "LAN '%s' has %zu middleboxes at its gateway (censors and its "
                                 "NAT)",
                                 l->name, n);
    }
    for (size_t g = 0; g < s->group_count; g++) {
        const sim_scn_group *gr = &s->groups[g];
        size_t n = censors_at(s, SIM_SCN_REF_GROUP, g) + partitions_of(s, gr, g);
        if (n > SIM_MBOX_MAX_PER_POINT)
            return sim_scn_error(err, errlen, MESH_ERR_LIMIT, &gr->loc,
                                 "at most 8 (SIM_MBOX_MAX_PER_POINT): merge censors' rules or "
                                 "partitions",
                                 "each node of group '%s' sits behind %zu middleboxes (censors "
                                 "in front of it, partitions over it)",
                                 gr->name, n);
    }
    return MESH_OK;
}

static int check_expects(const sim_scenario *s, char *err, size_t errlen)
{
    for (size_t i = 0; i < s->expect_count; i++) {
        const sim_scn_expect *x = &s->expects[i];
        if (rn_summary_known(x->summary))
            continue;
        const char *near = rn_summary_nearest(x->summary);
        char hint[160];
        if (near)
            snprintf(hint, sizeof hint, "did you mean '%s'? docs/results.md lists the names", near);
        else
            snprintf(hint, sizeof hint, "docs/results.md lists the names a run records");
        return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &x->loc, hint,
                             "unknown summary figure '%s' in expect[%zu]", x->summary, i);
    }
    return MESH_OK;
}

int sim_run_check(const sim_scenario *s, char *err, size_t errlen)
{
    if (!s)
        return MESH_ERR_INVAL;
    int rc = check_carriers(s, err, errlen);
    for (size_t i = 0; rc == MESH_OK && i < s->censor_count; i++)
        rc = check_rules(&s->censors[i], err, errlen);
    if (rc == MESH_OK)
        rc = check_middleboxes(s, err, errlen);
    if (rc == MESH_OK)
        rc = check_expects(s, err, errlen);
    return rc;
}
