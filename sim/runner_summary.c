/* runner_summary.c — what a run reports (see runner_int.h): the network-wide series sampled
 * every SIM_RUNNER_SAMPLE_S, the summary figures at the end, and the `expect:` bounds checked
 * against them.
 *
 * The summary's names are one table (RN_SUMMARY below), in the order they are printed and
 * recorded: sim_run_check refuses an `expect:` on a name outside it before the run starts, and
 * each figure is filled by the function of its area. A figure with nothing to divide is NaN
 * (which fails every bound). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/runner_int.h"

/* X(name): every summary figure, in output order. docs/results.md lists their meaning. */
#define RN_SUMMARY(X)                                                                              \
    X(nodes)                                                                                       \
    X(nodes_joined)                                                                                \
    X(nodes_reachable)                                                                             \
    X(node_downs)                                                                                  \
    X(join_ratio)                                                                                  \
    X(joins_failed)                                                                                \
    X(join_time_p50_ms)                                                                            \
    X(join_time_p95_ms)                                                                            \
    X(sessions_attempted)                                                                          \
    X(sessions_failed)                                                                             \
    X(session_success_ratio)                                                                       \
    X(sessions_accepted)                                                                           \
    X(sessions_direct)                                                                             \
    X(sessions_mapped)                                                                             \
    X(sessions_punched)                                                                            \
    X(sessions_relayed)                                                                            \
    X(sessions_turn)                                                                               \
    X(reach_ratio)                                                                                 \
    X(direct_ratio)                                                                                \
    X(sessions_evicted)                                                                            \
    X(sessions_duplicate_closed)                                                                   \
    X(key_mismatches)                                                                              \
    X(records_rejected)                                                                            \
    X(mdns_found)                                                                                  \
    X(lookups)                                                                                     \
    X(lookup_success_ratio)                                                                        \
    X(lookup_hops_mean)                                                                            \
    X(lookup_hops_p50)                                                                             \
    X(lookup_hops_p95)                                                                             \
    X(lookup_hops_max)                                                                             \
    X(messages_sent)                                                                               \
    X(messages_delivered)                                                                          \
    X(messages_failed)                                                                             \
    X(messages_lost)                                                                               \
    X(acks_lost)                                                                                   \
    X(delivery_ratio)                                                                              \
    X(messages_unreachable)                                                                        \
    X(delivery_ratio_reachable)                                                                    \
    X(bytes_delivered)                                                                             \
    X(delivery_latency_p50_ms)                                                                     \
    X(delivery_latency_p95_ms)                                                                     \
    X(delivery_latency_p99_ms)                                                                     \
    X(censor_meshara_flows)                                                                        \
    X(censor_meshara_blocked)                                                                      \
    X(censor_meshara_blocked_ratio)                                                                \
    X(censor_background_flows)                                                                     \
    X(censor_background_blocked)                                                                   \
    X(censor_collateral_ratio)                                                                     \
    X(background_exchanges)                                                                        \
    X(background_completed)                                                                        \
    X(background_failed)                                                                           \
    X(background_success_ratio)                                                                    \
    X(net_packets_sent)                                                                            \
    X(net_packets_delivered)                                                                       \
    X(net_mbox_drops)                                                                              \
    X(net_link_drops)                                                                              \
    X(nat_inbound_dropped)                                                                         \
    X(sim_events)

#define RN_SUM_ENUM(name) SUM_##name,
#define RN_SUM_NAME(name) #name,
enum rn_summary_id { RN_SUMMARY(RN_SUM_ENUM) SUM_COUNT };
static const char *const SUMMARY_NAMES[SUM_COUNT] = {RN_SUMMARY(RN_SUM_NAME)};
_Static_assert((int)SUM_COUNT <= (int)RN_SUMMARY_MAX, "raise RN_SUMMARY_MAX");

/* ---- series ---------------------------------------------------------------------------------- */

void rn_sample_ev(void *ctx, void *arg)
{
    (void)arg;
    runner *r = ctx;
    uint64_t conns = 0, online = 0, joined = 0;
    for (uint32_t i = 0; i < r->scn->node_count; i++) {
        const rn_node *n = &r->nodes[i];
        online += n->online;
        joined += n->joined;
        if (n->node) {
            mesh_node_stats st;
            mesh_node_get_stats(n->node, &st);
            conns += st.connected;
        }
    }
    mesh_time now = sim_sched_now(r->sched);
    if (r->rec) {
        sim_results_series(r->rec, now, -1, "sessions_connected", (double)conns);
        sim_results_series(r->rec, now, -1, "nodes_joined", (double)joined);
        sim_results_series(r->rec, now, -1, "nodes_online", (double)online);
        sim_results_series(r->rec, now, -1, "messages_delivered", (double)r->msgs_delivered);
        sim_results_series(r->rec, now, -1, "messages_failed", (double)r->msgs_failed);
    }
    mesh_time next = now + SIM_RUNNER_SAMPLE_S * MESH_NS_PER_S;
    if (next <= r->scn->duration)
        sim_sched_at(r->sched, next, SIM_EV_USER, 0, rn_sample_ev, r, NULL, NULL);
}

/* ---- summary figures, by area ---------------------------------------------------------------- */

static int cmp_time(const void *a, const void *b)
{
    mesh_time x = *(const mesh_time *)a, y = *(const mesh_time *)b;
    return x < y ? -1 : x > y;
}

/* p in [0, 1]: nearest-rank percentile of sorted v, in milliseconds; NaN when empty. */
static double pct_ms(const mesh_time *v, size_t n, double p)
{
    if (n == 0)
        return NAN;
    size_t k = (size_t)ceil(p * (double)n);
    if (k > 0)
        k--;
    return (double)v[k] / 1e6;
}

static void sum_nodes(runner *r, double *v)
{
    const sim_scenario *s = r->scn;
    uint64_t joined = 0, reachable = 0;
    for (uint32_t i = 0; i < s->node_count; i++) {
        joined += r->nodes[i].joined;
        reachable += r->nodes[i].joined && r->nodes[i].reachable;
    }
    v[SUM_nodes] = s->node_count;
    v[SUM_nodes_joined] = (double)joined;
    v[SUM_nodes_reachable] = (double)reachable;
    v[SUM_node_downs] = (double)r->node_downs;
    v[SUM_join_ratio] = r->joins_ok + r->joins_failed
                            ? (double)r->joins_ok / (double)(r->joins_ok + r->joins_failed)
                            : NAN;
    v[SUM_joins_failed] = (double)r->joins_failed;
    if (r->njoin) /* NULL when none: qsort's pointer must not be */
        qsort(r->join_took, r->njoin, sizeof *r->join_took, cmp_time);
    v[SUM_join_time_p50_ms] = pct_ms(r->join_took, r->njoin, 0.50);
    v[SUM_join_time_p95_ms] = pct_ms(r->join_took, r->njoin, 0.95);
}

/* Sessions: the nodes alive at the end, plus those freed by churn. */
static void sum_sessions(runner *r, double *v)
{
    mesh_node_stats t = r->gone;
    for (uint32_t i = 0; i < r->scn->node_count; i++)
        if (r->nodes[i].node) {
            mesh_node_stats st;
            mesh_node_get_stats(r->nodes[i].node, &st);
            rn_stats_add(&t, &st);
        }
    v[SUM_sessions_attempted] = (double)t.connects;
    v[SUM_sessions_failed] = (double)t.connect_failures;
    v[SUM_session_success_ratio] =
        t.connects ? (double)(t.connects - t.connect_failures) / (double)t.connects : NAN;
    v[SUM_sessions_accepted] = (double)t.accepted;
    v[SUM_sessions_punched] = (double)t.sessions_punched;
    v[SUM_sessions_evicted] = (double)t.evicted;
    v[SUM_sessions_duplicate_closed] = (double)t.duplicates_closed;
    v[SUM_key_mismatches] = (double)t.key_mismatches;
    v[SUM_records_rejected] = (double)t.records_rejected;
    v[SUM_mdns_found] = (double)t.mdns_found;
}

/* Paths: sessions established by path (counted at each end; punched ones, which replace a
 * relayed session of a peer already up, in sum_sessions), and over the node pairs that
 * sent each other messages, those a message reached and, of them, those whose last delivery
 * was not over a relayed session. */
static void sum_paths(runner *r, double *v)
{
    v[SUM_sessions_direct] = (double)r->paths[MESH_NODE_PATH_DIRECT];
    v[SUM_sessions_mapped] = (double)r->paths[MESH_NODE_PATH_MAPPED];
    v[SUM_sessions_relayed] = (double)r->paths[MESH_NODE_PATH_RELAYED];
    v[SUM_sessions_turn] = (double)r->paths[MESH_NODE_PATH_TURN];
    size_t reached = 0, direct = 0;
    for (size_t i = 0; i < r->npairs; i++) {
        reached += r->pairs[i].reached;
        direct += r->pairs[i].reached && !r->pairs[i].relayed;
    }
    v[SUM_reach_ratio] = r->npairs ? (double)reached / (double)r->npairs : NAN;
    v[SUM_direct_ratio] = reached ? (double)direct / (double)reached : NAN;
}

/* Lookups, with hop percentiles from a histogram (hops above 63 count as 63). */
static void sum_lookups(runner *r, double *v)
{
    unsigned hmax = 0;
    double hsum = 0;
    size_t hist[64] = {0};
    for (size_t i = 0; i < r->nhops; i++) {
        unsigned h = r->hops[i] < 63 ? r->hops[i] : 63;
        hist[h]++;
        hsum += r->hops[i];
        if (r->hops[i] > hmax)
            hmax = r->hops[i];
    }
    size_t acc = 0, p50 = 0, p95 = 0;
    int got50 = 0;
    for (unsigned h = 0; h < 64 && r->nhops; h++) {
        acc += hist[h];
        if (!got50 && acc * 2 >= r->nhops) {
            p50 = h;
            got50 = 1;
        }
        if (acc * 100 >= r->nhops * 95) {
            p95 = h;
            break;
        }
    }
    v[SUM_lookups] = (double)r->lookups;
    v[SUM_lookup_success_ratio] = r->lookups ? (double)r->lookups_ok / (double)r->lookups : NAN;
    v[SUM_lookup_hops_mean] = r->nhops ? hsum / (double)r->nhops : NAN;
    v[SUM_lookup_hops_p50] = r->nhops ? (double)p50 : NAN;
    v[SUM_lookup_hops_p95] = r->nhops ? (double)p95 : NAN;
    v[SUM_lookup_hops_max] = r->nhops ? (double)hmax : NAN;
}

static void sum_messages(runner *r, double *v)
{
    uint64_t sent = r->nmsgs;
    v[SUM_messages_sent] = (double)sent;
    v[SUM_messages_delivered] = (double)r->msgs_delivered;
    v[SUM_messages_failed] = (double)r->msgs_failed;
    v[SUM_messages_lost] = (double)(sent - r->msgs_delivered - r->msgs_failed);
    v[SUM_acks_lost] = (double)r->acks_lost;
    v[SUM_delivery_ratio] = sent ? (double)r->msgs_delivered / (double)sent : NAN;
    uint64_t unreach = 0, reach_ok = 0;
    for (size_t i = 0; i < r->nmsgs; i++) {
        unreach += r->msgs[i].unreachable;
        reach_ok += !r->msgs[i].unreachable && r->msgs[i].state == RN_MSG_DELIVERED;
    }
    v[SUM_messages_unreachable] = (double)unreach;
    v[SUM_delivery_ratio_reachable] =
        sent > unreach ? (double)reach_ok / (double)(sent - unreach) : NAN;
    v[SUM_bytes_delivered] = (double)r->bytes_delivered;
    if (r->nlat)
        qsort(r->lat, r->nlat, sizeof *r->lat, cmp_time);
    v[SUM_delivery_latency_p50_ms] = pct_ms(r->lat, r->nlat, 0.50);
    v[SUM_delivery_latency_p95_ms] = pct_ms(r->lat, r->nlat, 0.95);
    v[SUM_delivery_latency_p99_ms] = pct_ms(r->lat, r->nlat, 0.99);
}

/* Censors' decisions by label, and the background HTTPS that measures collateral damage. */
static void sum_censors(runner *r, double *v)
{
    uint64_t flows[SIM_CENSOR_LABELS] = {0}, blocked[SIM_CENSOR_LABELS] = {0};
    for (size_t i = 0; i < r->scn->censor_count; i++) {
        sim_censor_stats cs = sim_censor_get_stats(r->censors[i]);
        for (int l = 0; l < SIM_CENSOR_LABELS; l++) {
            flows[l] += cs.flows[l];
            blocked[l] += cs.blocked[l];
        }
    }
    const int M = SIM_CENSOR_LABEL_MESHARA, B = SIM_CENSOR_LABEL_BACKGROUND;
    v[SUM_censor_meshara_flows] = (double)flows[M];
    v[SUM_censor_meshara_blocked] = (double)blocked[M];
    v[SUM_censor_meshara_blocked_ratio] = flows[M] ? (double)blocked[M] / (double)flows[M] : NAN;
    v[SUM_censor_background_flows] = (double)flows[B];
    v[SUM_censor_background_blocked] = (double)blocked[B];
    v[SUM_censor_collateral_ratio] = flows[B] ? (double)blocked[B] / (double)flows[B] : NAN;
    sim_https_stats bg = {0};
    for (size_t i = 0; i < r->nbg; i++) {
        sim_https_stats st = sim_https_client_get_stats(r->bg_clients[i]);
        bg.started += st.started;
        bg.completed += st.completed;
        bg.failed += st.failed;
    }
    v[SUM_background_exchanges] = (double)bg.started;
    v[SUM_background_completed] = (double)bg.completed;
    v[SUM_background_failed] = (double)bg.failed;
    v[SUM_background_success_ratio] =
        bg.completed + bg.failed ? (double)bg.completed / (double)(bg.completed + bg.failed) : NAN;
}

static void sum_network(runner *r, double *v)
{
    sim_net_stats ns = sim_net_get_stats(r->net);
    v[SUM_net_packets_sent] = (double)ns.sent;
    v[SUM_net_packets_delivered] = (double)ns.delivered;
    v[SUM_net_mbox_drops] = (double)ns.mbox_drops;
    v[SUM_net_link_drops] = (double)ns.link_drops;
    uint64_t nat_in_dropped = 0;
    for (size_t i = 0; i < r->nnats; i++) { /* the LANs' NATs and the per-node ones */
        sim_nat_stats st = sim_nat_get_stats(r->nats[i]);
        nat_in_dropped += st.in_no_mapping + st.in_filtered;
    }
    v[SUM_nat_inbound_dropped] = (double)nat_in_dropped;
    v[SUM_sim_events] = (double)sim_sched_processed(r->sched);
}

size_t rn_make_summary(runner *r, rn_summary_row *rows)
{
    double v[SUM_COUNT];
    for (size_t i = 0; i < SUM_COUNT; i++)
        v[i] = NAN;
    sum_nodes(r, v);
    sum_sessions(r, v);
    sum_paths(r, v);
    sum_lookups(r, v);
    sum_messages(r, v);
    sum_censors(r, v);
    sum_network(r, v);
    for (size_t i = 0; i < SUM_COUNT; i++)
        rows[i] = (rn_summary_row){SUMMARY_NAMES[i], v[i]};
    return SUM_COUNT;
}

/* ---- expectations ------------------------------------------------------------------------- */

int rn_summary_known(const char *name)
{
    for (size_t i = 0; i < SUM_COUNT; i++)
        if (!strcmp(SUMMARY_NAMES[i], name))
            return 1;
    return 0;
}

const char *rn_summary_nearest(const char *name)
{
    const char *near = sim_scn_nearest(name, SUMMARY_NAMES, SUM_COUNT);
    if (near)
        return near;
    /* a name written with dots or cut short ("latency.p99_ms"): the figure that contains it */
    char want[SIM_SCN_MAX_NAME + 1];
    snprintf(want, sizeof want, "%s", name);
    for (char *c = want; *c; c++)
        if (*c == '.')
            *c = '_';
    for (size_t i = 0; i < SUM_COUNT && strlen(want) >= 4; i++)
        if (strstr(SUMMARY_NAMES[i], want))
            return SUMMARY_NAMES[i];
    return NULL;
}

size_t rn_check_expectations(const runner *r, const rn_summary_row *rows, size_t nrows, FILE *out)
{
    size_t failed = 0;
    for (size_t i = 0; i < r->scn->expect_count; i++) {
        const sim_scn_expect *e = &r->scn->expects[i];
        const rn_summary_row *row = NULL;
        for (size_t k = 0; k < nrows; k++)
            if (strcmp(rows[k].name, e->summary) == 0)
                row = &rows[k];
        if (!row) {
            fprintf(out, "expect FAILED %s:%u:%u: no summary figure named '%s'\n", e->loc.origin,
                    e->loc.line, e->loc.col, e->summary);
            failed++;
        } else if (!sim_scn_expect_holds(e, row->value)) {
            fprintf(out, "expect FAILED %s:%u:%u: %s %s %g, got %g (off by %g)\n", e->loc.origin,
                    e->loc.line, e->loc.col, e->summary, sim_scn_op_name(e->op), e->value,
                    row->value, fabs(row->value - e->value));
            failed++;
        } else {
            fprintf(out, "expect ok     %s %s %g (got %g)\n", e->summary, sim_scn_op_name(e->op),
                    e->value, row->value);
        }
    }
    return failed;
}
