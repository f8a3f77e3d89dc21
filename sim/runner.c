/* runner.c — build a world from a scenario, run it, record it (see runner.h; the parts of the
 * runner and what they share: runner_int.h). This file holds the order of things: check what
 * the runner models, build the world, open the results, schedule the scenario, run in slices,
 * then summarise, check the expectations and close the results. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim/runner_int.h"

/* ---- recording ------------------------------------------------------------------------- */

void rn_event(runner *r, int64_t node, const char *kind, int64_t peer, int code, const char *detail)
{
    if (!r->rec)
        return;
    mesh_time now = sim_sched_now(r->sched);
    if (code != MESH_OK)
        sim_results_eventf(r->rec, now, node, kind, peer, "reason=%s%s%s", mesh_errname(code),
                           detail ? " " : "", detail ? detail : "");
    else
        sim_results_event(r->rec, now, node, kind, peer, detail);
}

/* The planned join time of node k of group g: evenly spread over [join_from, join_to]. */
static mesh_time join_time(const sim_scn_group *g, uint32_t k)
{
    mesh_time at = g->join_from;
    if (g->count > 1 && g->join_to > g->join_from)
        at += (g->join_to - g->join_from) / (g->count - 1) * k;
    return at;
}

static void record_node(runner *r, const rn_node *n)
{
    const sim_scenario *s = r->scn;
    const sim_scn_group *g = &s->groups[n->group];
    char name[SIM_SCN_MAX_NAME + 16], id[2 * MESH_NODE_ID_BYTES + 1], nat[96] = "";
    snprintf(name, sizeof name, "%s-%u", g->name, n->idx - g->first_node);
    const sim_scn_nat *sn = g->lan != SIM_SCN_INTERNET ? &s->lans[g->lan].nat : &g->nat;
    if (sn->present)
        snprintf(nat, sizeof nat, "%s/%s", sim_scn_nat_behaviour_name(sn->mapping),
                 sim_scn_nat_behaviour_name(sn->filtering));
    sim_results_node_info info = {
        .node = n->idx,
        .name = name,
        .group = g->name,
        .lan = g->lan != SIM_SCN_INTERNET ? s->lans[g->lan].name : NULL,
        .ip = sim_host_ip(n->host),
        .nat = sn->present ? nat : NULL,
        .role = g->role == SIM_SCN_ROLE_BOOTSTRAP ? "bootstrap"
                : g->role == SIM_SCN_ROLE_STUN    ? "stun"
                                                  : "normal",
        .node_id = rn_node_id_hex(n, id),
        .join_ns = join_time(g, n->idx - g->first_node),
    };
    sim_results_node(r->rec, &info);
}

/* ---- wall clock: the progress line and the runs row's wall-clock columns only ------------- */

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int64_t wall_unix_ns(void)
{
    struct timespec wt;
    clock_gettime(CLOCK_REALTIME, &wt);
    return (int64_t)wt.tv_sec * 1000000000 + wt.tv_nsec;
}

static void progress(const runner *r, double t0, int final)
{
    mesh_time now = sim_sched_now(r->sched), dur = r->scn->duration;
    double frac = dur ? (double)now / (double)dur : 1.0, el = wall_now() - t0;
    double evs = el > 0 ? (double)sim_sched_processed(r->sched) / el : 0;
    double eta = frac > 0 ? el / frac - el : 0;
    char bar[31];
    int fill = (int)(frac * 30);
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r[%s] %6.1fs / %.0fs virtual  %8.0f ev/s  ETA %5.0fs%s", bar,
            (double)now / 1e9, (double)dur / 1e9, evs, final ? 0.0 : eta, final ? "\n" : "");
    fflush(stderr);
}

/* ---- set-up and scheduling ----------------------------------------------------------------- */

static void dbg_log(void *ud, mesh_time t, const char *host, int level, const char *line)
{
    (void)ud, (void)t, (void)host, (void)level;
    fprintf(stderr, "%s\n", line);
}

/* The world: scheduler, network, TLS library, core, then what the scenario puts in it. */
static int build_world(runner *r)
{
    const sim_scenario *scn = r->scn;
    int rc;
    r->zeros = calloc(1, SIM_RUNNER_MAX_MSG);
    if (!r->zeros)
        return MESH_ERR_NOMEM;
    if ((rc = sim_world_new(&r->w, scn->seed, NULL)) != MESH_OK)
        return rc;
    r->sched = sim_world_sched(r->w);
    if (getenv("MESHARA_SIM_LOG"))
        sim_world_set_log(r->w, dbg_log, NULL);
    r->net = sim_world_net(r->w);
    if ((rc = rn_tls_new(r)) != MESH_OK)
        return rc;
    sim_link_cfg core = {
        .latency = scn->core.latency, .jitter = scn->core.jitter, .loss = scn->core.loss};
    sim_net_set_core(r->net, &core,
                     scn->core.model == SIM_SCN_LAT_CONSTANT ? NULL : rn_core_latency, r);
    if ((rc = rn_build_lans(r)) != MESH_OK || (rc = rn_build_nodes(r)) != MESH_OK ||
        (rc = rn_build_censors(r)) != MESH_OK || (rc = rn_build_background(r)) != MESH_OK ||
        (rc = rn_build_lan_nats(r)) != MESH_OK)
        return rc;
    return MESH_OK;
}

/* The results database (replaced), with its runs row and one row per node. */
static int open_results(runner *r)
{
    const sim_scenario *scn = r->scn;
    sim_results_run run = {
        .scenario = scn->name,
        .scenario_file = scn->file,
        .scenario_sha256 = scn->sha256,
        .seed = scn->seed,
        .git_rev = r->opts->git_rev ? r->opts->git_rev : "unknown",
        .parameters = sim_scenario_params_json(scn),
        .duration = scn->duration,
        .started_at_ns = wall_unix_ns(),
    };
    unsigned flags = SIM_RES_REPLACE | (r->opts->force ? SIM_RES_FORCE : 0);
    int rc = sim_results_open(&r->rec, r->opts->db_path, flags, &run, r->err, r->errlen);
    if (rc != MESH_OK)
        return rc;
    for (uint32_t i = 0; i < scn->node_count; i++)
        record_node(r, &r->nodes[i]);
    return MESH_OK;
}

/* Each traffic pattern's first message per sending node: a random phase within one gap after
 * the later of the pattern's start and the node's join (so senders do not fire in lockstep). */
static int schedule_traffic(runner *r)
{
    const sim_scenario *s = r->scn;
    for (size_t p = 0; p < s->traffic_count; p++)
        r->nsrcs += s->groups[s->traffic[p].from].count;
    r->srcs = calloc(r->nsrcs ? r->nsrcs : 1, sizeof *r->srcs);
    if (!r->srcs)
        return MESH_ERR_NOMEM;
    int rc = MESH_OK;
    size_t k = 0;
    for (size_t p = 0; p < s->traffic_count && rc == MESH_OK; p++) {
        const sim_scn_traffic *t = &s->traffic[p];
        const sim_scn_group *g = &s->groups[t->from];
        for (uint32_t i = 0; i < g->count && rc == MESH_OK; i++, k++) {
            rn_traffic_src *src = &r->srcs[k];
            src->r = r;
            src->pattern = p;
            src->node = g->first_node + i;
            sim_rng_derive(&src->rng, s->seed, RN_STREAM_TRAFFIC + (p << 20) + src->node);
            mesh_time join = join_time(g, i);
            mesh_time at = (t->start > join ? t->start : join) +
                           sim_rng_below(&src->rng, t->interval ? t->interval : 1);
            if (at < t->stop && at < s->duration)
                rc = sim_sched_at(r->sched, at, SIM_EV_USER, src->node, rn_traffic_fire, r, src,
                                  NULL);
        }
    }
    return rc;
}

/* Joins, traffic, timed events and the series sampler, in that order (it fixes the order of
 * same-time events, so it is part of the results). */
static int schedule_all(runner *r)
{
    const sim_scenario *s = r->scn;
    int rc = MESH_OK;
    for (size_t g = 0; g < s->group_count && rc == MESH_OK; g++) {
        const sim_scn_group *gr = &s->groups[g];
        for (uint32_t k = 0; k < gr->count && rc == MESH_OK; k++) {
            rn_node *n = &r->nodes[gr->first_node + k];
            rc = sim_sched_at(r->sched, join_time(gr, k), SIM_EV_USER, n->idx, rn_node_join_ev, r,
                              n, NULL);
        }
    }
    if (rc == MESH_OK)
        rc = schedule_traffic(r);
    for (size_t e = 0; e < s->event_count && rc == MESH_OK; e++)
        rc = sim_sched_at(r->sched, s->events[e].at, SIM_EV_USER, e, rn_event_fire, r,
                          (void *)(uintptr_t)e, NULL);
    if (rc == MESH_OK)
        rc = sim_sched_at(r->sched, 0, SIM_EV_USER, 0, rn_sample_ev, r, NULL, NULL);
    return rc;
}

/* ---- the run and its end ------------------------------------------------------------------- */

/* Run in slices so the progress line can move; the slicing does not change the run. */
static int run_loop(runner *r, double t0)
{
    const sim_scenario *scn = r->scn;
    mesh_time slice = scn->duration / 200 ? scn->duration / 200 : 1;
    for (mesh_time t = 0; t < scn->duration && !r->fatal;) {
        t = scn->duration - t > slice ? t + slice : scn->duration;
        int rc = sim_sched_run_until(r->sched, t);
        if (rc != MESH_OK && rc != MESH_ERR_STATE)
            return rc;
        if (r->opts->progress)
            progress(r, t0, 0);
        if (r->opts->stop && *r->opts->stop) {
            if (r->opts->progress)
                fputc('\n', stderr);
            r->interrupted = 1;
            snprintf(r->err, r->errlen, "interrupted at %.1fs of %.1fs virtual",
                     (double)sim_sched_now(r->sched) / 1e9, (double)scn->duration / 1e9);
            return MESH_ERR_STATE;
        }
    }
    if (r->fatal) {
        snprintf(r->err, r->errlen, "run stopped: %s", mesh_strerror(r->fatal));
        return r->fatal;
    }
    if (r->opts->progress)
        progress(r, t0, 1);
    return MESH_OK;
}

/* Complete the runs row: where the run stopped, its fingerprint, status and wall time. */
static int finish_results(runner *r, double t0, const char *status)
{
    char fph[17];
    snprintf(fph, sizeof fph, "%016llx", (unsigned long long)sim_sched_fingerprint(r->sched));
    sim_results_end end = {
        .end_ns = sim_sched_now(r->sched),
        .events_processed = sim_sched_processed(r->sched),
        .fingerprint = fph,
        .status = status,
        .finished_at_ns = wall_unix_ns(),
        .wall_s = wall_now() - t0,
    };
    return sim_results_finish(r->rec, &end);
}

/* The summary table, the expectations and the fingerprint to out, the same into the results,
 * and res filled. */
static int report_end(runner *r, double t0, sim_run_result *res, FILE *out)
{
    rn_summary_row rows[RN_SUMMARY_MAX];
    size_t nrows = rn_make_summary(r, rows);
    if (!r->opts->quiet) {
        fprintf(out, "%-32s %s\n", "summary", "value");
        for (size_t i = 0; i < nrows; i++)
            fprintf(out, "%-32s %.6g\n", rows[i].name, rows[i].value);
    }
    if (r->opts->on_summary)
        for (size_t i = 0; i < nrows; i++)
            r->opts->on_summary(r->opts->summary_ud, rows[i].name, rows[i].value);
    size_t failed = rn_check_expectations(r, rows, nrows, out);
    char fp[96];
    sim_sched_summary(r->sched, fp, sizeof fp);
    fprintf(out, "%s\n", fp);
    if (res) {
        res->events = sim_sched_processed(r->sched);
        res->fingerprint = sim_sched_fingerprint(r->sched);
        res->expects_failed = failed;
    }
    if (!r->rec)
        return MESH_OK;
    for (size_t i = 0; i < nrows; i++)
        sim_results_summary(r->rec, rows[i].name, rows[i].value);
    int rc = finish_results(r, t0, failed ? "expect_failed" : "ok");
    if (rc != MESH_OK)
        snprintf(r->err, r->errlen, "%s: cannot write results: %s", r->opts->db_path,
                 sim_results_errmsg(r->rec));
    return rc;
}

/* A run that failed after its results were opened ends as `failed` (or `interrupted`), with
 * the virtual time and events it reached; when even that cannot be written, its file goes:
 * no database is left `running`. */
static void fail_results(runner *r, double t0)
{
    if (!r->sched) { /* cannot happen: results open after the world; be safe anyway */
        sim_results_discard(r->rec);
        r->rec = NULL;
        return;
    }
    if (finish_results(r, t0, r->interrupted ? "interrupted" : "failed") != MESH_OK) {
        sim_results_discard(r->rec);
        r->rec = NULL;
    }
}

static void teardown(runner *r)
{
    const sim_scenario *s = r->scn;
    if (r->nodes) {
        for (uint32_t i = 0; i < s->node_count; i++)
            rn_node_stop(r, &r->nodes[i]);
        for (uint32_t i = 0; i < s->node_count; i++)
            rn_node_release(&r->nodes[i]);
    }
    for (size_t i = 0; i < r->nbg; i++) {
        sim_https_client_free(r->bg_clients[i]);
        sim_driver_free(r->bg_drvs[i]);
    }
    sim_https_server_free(r->bg_server);
    sim_driver_free(r->bg_server_drv);
    for (size_t i = 0; i < r->nstun; i++)
        sim_stun_host_free(r->stuns[i]);
    free(r->stuns);
    free(r->bg_clients);
    free(r->bg_drvs);
    for (size_t i = 0; i < r->nnats; i++)
        sim_nat_free(r->nats[i]);
    for (size_t i = 0; r->censors && i < s->censor_count; i++)
        sim_censor_free(r->censors[i]);
    sim_world_free(r->w);
    rn_tls_free(r);
    for (size_t i = 0; i < r->nparts; i++) {
        free(r->parts[i]->ips);
        free(r->parts[i]);
    }
    free(r->parts);
    free(r->nodes);
    free(r->boot);
    free(r->relays);
    free(r->pairs);
    free(r->hops);
    free(r->join_took);
    while (r->sends) {
        rn_send *sd = r->sends;
        r->sends = sd->next;
        free(sd);
    }
    free(r->lans);
    free(r->lan_links);
    free(r->lan_nats);
    free(r->lan_next);
    free(r->lan_carrier);
    free(r->nats);
    free(r->lan_region_of_id);
    free(r->host_region_of_id);
    free(r->censors);
    free(r->srcs);
    free(r->msgs);
    free(r->lat);
    free(r->zeros);
}

int sim_run(const sim_scenario *scn, const sim_run_opts *opts, sim_run_result *res, char *err,
            size_t errlen)
{
    static const sim_run_opts no_opts = {0};
    char dummy[8];
    runner rr = {0}, *r = &rr;
    r->scn = scn;
    r->opts = opts ? opts : &no_opts;
    r->err = err ? err : dummy;
    r->errlen = err ? errlen : sizeof dummy;
    r->err[0] = '\0';
    r->next_public = RN_ADDR_PUBLIC_HOSTS;
    r->next_lan_public = RN_ADDR_LAN_PUBLIC;
    FILE *out = r->opts->out ? r->opts->out : stdout;
    double t0 = wall_now();
    unsigned db_flags = SIM_RES_REPLACE | (r->opts->force ? SIM_RES_FORCE : 0);
    int rc = sim_run_check(scn, r->err, r->errlen);
    if (rc == MESH_OK && r->opts->db_path) /* refuse a --db that is not ours before building */
        rc = sim_results_check_path(r->opts->db_path, db_flags, r->err, r->errlen);
    if (rc == MESH_OK)
        rc = build_world(r);
    if (rc == MESH_OK && r->opts->db_path)
        rc = open_results(r);
    if (rc == MESH_OK)
        rc = schedule_all(r);
    if (rc == MESH_OK)
        rc = run_loop(r, t0);
    if (rc == MESH_OK)
        rc = report_end(r, t0, res, out);
    if (rc != MESH_OK && !r->err[0])
        snprintf(r->err, r->errlen, "run failed: %s", mesh_strerror(rc));
    if (rc != MESH_OK && r->rec)
        fail_results(r, t0);
    if (res)
        res->wall_s = wall_now() - t0;
    sim_results *rec = r->rec;
    r->rec = NULL; /* messages still queued at the end are not failures of the run */
    teardown(r);
    if (sim_results_close(rec) != MESH_OK && rc == MESH_OK) {
        snprintf(r->err, r->errlen, "%s: results incomplete", r->opts->db_path);
        rc = MESH_ERR_IO;
    }
    return rc;
}
