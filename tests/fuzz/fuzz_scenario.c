/* fuzz_scenario.c — the scenario loader must never crash, leak or overrun on any bytes, and
 * its memory stays bounded (SIM_SCN_MAX_FILE, SIM_SCN_MAX_YAML_NODES, the arena guard).
 * An input that loads is also put through sim_run_check (what meshara-sim check adds: the same
 * validation run does before its first event), --set and sim_scenario_check, and its decoded
 * struct is walked so every published pointer is touched (ASan sees a bad one). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "meshara/error.h"
#include "sim/runner.h"
#include "sim/scenario.h"

static size_t walk(const sim_scenario *s)
{
    size_t n = strlen(s->name) + strlen(s->file) + strlen(s->sha256);
    for (size_t i = 0; i < s->core.region_count; i++)
        n += strlen(s->core.regions[i]) + (size_t)(s->core.matrix[i] & 1);
    for (size_t i = 0; i < s->lan_count; i++) {
        n += strlen(s->lans[i].name);
        if (s->lans[i].upstream != SIM_SCN_CORE && s->lans[i].upstream >= i)
            __builtin_trap(); /* an upstream is an earlier LAN: chains cannot loop */
    }
    for (size_t i = 0; i < s->group_count; i++) {
        const sim_scn_group *g = &s->groups[i];
        n += strlen(g->name) + (g->tls_sni ? strlen(g->tls_sni) : 0);
        for (size_t j = 0; j < g->alpn_count; j++)
            n += strlen(g->alpn[j]);
        if (g->lan != SIM_SCN_INTERNET && g->lan >= s->lan_count)
            __builtin_trap();
    }
    for (size_t i = 0; i < s->censor_count; i++) {
        const sim_scn_censor *c = &s->censors[i];
        for (size_t j = 0; j < c->target_count; j++)
            n += strlen(sim_scenario_ref_name(s, c->targets[j]));
        for (size_t j = 0; j < c->rule_count; j++) {
            const sim_scn_rule *r = &c->rules[j];
            n += strlen(r->name) + (r->sni ? strlen(r->sni) : 0) + (r->alpn ? strlen(r->alpn) : 0) +
                 (r->ja3 ? strlen(r->ja3) : 0);
        }
    }
    for (size_t i = 0; i < s->event_count; i++)
        for (size_t j = 0; j < s->events[i].target_count; j++)
            n += strlen(sim_scenario_ref_name(s, s->events[i].targets[j]));
    for (size_t i = 0; i < s->traffic_count; i++)
        n += strlen(s->traffic[i].name);
    for (size_t i = 0; i < s->expect_count; i++)
        n += strlen(s->expects[i].summary);
    if (s->node_count && sim_scenario_node_group(s, s->node_count - 1) >= s->group_count)
        __builtin_trap();
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[SIM_SCN_ERR_MAX];
    sim_scenario *s = NULL;
    int rc = sim_scenario_load_mem(&s, "fuzz.yaml", data, size, err, sizeof err);
    if (rc != MESH_OK) {
        if (s || strlen(err) >= sizeof err)
            __builtin_trap();
        return 0;
    }
    walk(s);
    if (sim_scenario_check(s, err, sizeof err) != MESH_OK)
        __builtin_trap(); /* load already checked it */
    err[0] = '\0';
    if (sim_run_check(s, err, sizeof err) != MESH_OK && (!err[0] || strlen(err) >= sizeof err))
        __builtin_trap(); /* a refusal always says why, within the buffer */
    /* overrides on whatever loaded: valid or not, the scenario stays usable */
    sim_scenario_set(s, "duration", "1s", err, sizeof err);
    sim_scenario_set(s, "groups.0.count", "2", err, sizeof err);
    sim_scenario_set(s, "network.core.latency", "{uniform: [1ms, 2ms]}", err, sizeof err);
    walk(s);
    if (sim_scenario_check(s, err, sizeof err) != MESH_OK)
        __builtin_trap();
    sim_scenario_free(s);
    return 0;
}
