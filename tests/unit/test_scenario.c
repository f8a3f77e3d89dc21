/* test_scenario.c — the scenario loader (sim/scenario*.c): a full example decodes to the
 * expected values, scenarios/default.yaml and the examples in docs/scenarios.md load, units
 * convert exactly, every error path reports FILE:LINE:COL and its key phrase, --set overrides
 * are validated like the file and leave the scenario unchanged when they fail, the named
 * limits hold, and a path that is not a regular file is refused before any read. */
#include "mesh_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim/runner.h"
#include "sim/scenario.h"

#define S(x) ((mesh_time)(x)*1000000000ULL)
#define MS(x) ((mesh_time)(x)*1000000ULL)

/* Every key of the format at least once (docs/scenarios.md has the same example). */
static const char FULL[] =
    "name: full-example\n"                           /* 1 */
    "seed: 42\n"                                     /* 2 */
    "duration: 15m\n"                                /* 3 */
    "network:\n"                                     /* 4 */
    "  core:\n"                                      /* 5 */
    "    latency:\n"                                 /* 6 */
    "      regions: [eu, asia]\n"                    /* 7 */
    "      matrix: [[10ms, 150ms], [160ms, 20ms]]\n" /* 8 */
    "    jitter: 500us\n"                            /* 9 */
    "    loss: 0.2%\n"                               /* 10 */
    "  access: {latency: 2ms, jitter: 1ms, bandwidth: 100Mbit, loss: 0.001, queue: 64KiB}\n"
    "  lans:\n"          /* 12 */
    "    - name: home\n" /* 13 */
    "      hosts: 20\n"
    "      private: true\n"
    "      region: eu\n"
    "      nat:\n"
    "        mapping: address-dependent\n"
    "        filtering: address-and-port-dependent\n"
    "        udp_timeout: 30s\n"
    "        tcp_timeout: 1h\n"
    "        hairpin: yes\n"
    "        ports: random\n"
    "        natpmp: off\n"
    "      link: {latency: 5ms, bandwidth: 20Mbit}\n"
    "    - name: dc\n" /* 26 */
    "      region: asia\n"
    "      nat: symmetric\n"
    "      private: true\n"
    "    - name: flat\n" /* 30 */
    "      upstream: home\n"
    "      private: true\n"
    "      nat: {type: port-restricted-cone, upnp: on, natpmp: true}\n"
    "  censors:\n" /* 34 */
    "    - name: gfw\n"
    "      in_front_of: [dc, roamers]\n"
    "      enabled: false\n"
    "      rules:\n"
    "        - name: by-sni\n" /* 39 */
    "          match: {sni: Meshara.Node, dst_port: [443, 8443]}\n"
    "          action: rst\n"
    "          residual: 2m\n"
    "        - match: {dst_ip: 203.0.113.0/24, alpn: meshara/1.0, ja3: "
    "\"0123456789ABCDEF0123456789abcdef\"}\n"
    "          action: throttle 64kbit\n" /* 44 */
    "        - match: {first_len: [100B, 1KiB], entropy: [7.2, 8]}\n"
    "          action: probe\n"
    "groups:\n" /* 47 */
    "  - name: seeds\n"
    "    count: 2\n"
    "    region: eu\n"
    "    role: bootstrap\n"
    "    mdns: off\n"
    "  - name: roamers\n" /* 53 */
    "    count: 10\n"
    "    region: asia\n"
    "    join: {spread: [10s, 1m]}\n"
    "    profile: seed\n"
    "    framing: http2\n"
    "    tls: {sni: www.example.org, alpn: [h2, http/1.1]}\n"
    "    link: {bandwidth: 5Mbit}\n"
    "  - name: homes\n" /* 61 */
    "    count: 15\n"
    "    placement: home\n"
    "    nat: {type: restricted-cone, hairpin: true}\n"
    "    join: {at: 5s}\n"
    "  - {name: servers, count: 3, placement: dc, join: 0s, mdns: false}\n"
    "events:\n" /* 67 */
    "  - at: 2m\n"
    "    churn: {group: roamers, fraction: 50%, down_for: 30s}\n"
    "  - at: 3m\n"
    "    partition: {targets: [home, seeds], heal_at: 4m}\n"
    "  - at: 5m\n"
    "    link: {target: homes, latency: 200ms, loss: 5%}\n"
    "  - at: 6m\n"
    "    censor: {name: gfw, enabled: true}\n"
    "traffic:\n" /* 76 */
    "  - name: chat\n"
    "    from: homes\n"
    "    to: random\n"
    "    size: [1KiB, 16KiB]\n"
    "    interval: 2s\n"
    "    arrivals: poisson\n"
    "    start: 1m\n"
    "    stop: 14m\n"
    "  - from: roamers\n" /* 84 */
    "    to: servers\n"
    "    size: {distribution: pareto, mean: 4KiB, shape: 1.5, max: 1MiB}\n"
    "    rate: 3/s\n"
    "  - {from: seeds, to: homes, size: 1500, interval: 1s}\n"
    "expect:\n" /* 89 */
    "  - {summary: delivery_ratio, op: \">=\", value: 0.95}\n"
    "  - {summary: delivery_latency_p99_ms, op: \"<=\", value: 800}\n"
    "  - {summary: nodes, op: \"==\", value: 30}\n";

static sim_scenario *load_str(const char *yaml, int *rc, char *err, size_t errlen)
{
    sim_scenario *s = NULL;
    *rc = sim_scenario_load_mem(&s, "t.yaml", yaml, strlen(yaml), err, errlen);
    return s;
}

static void test_full_example(void)
{
    char err[SIM_SCN_ERR_MAX] = "";
    int rc;
    sim_scenario *s = load_str(FULL, &rc, err, sizeof err);
    if (rc != MESH_OK)
        fprintf(stderr, "%s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, MESH_OK);
    CU_ASSERT_STRING_EQUAL(s->name, "full-example");
    CU_ASSERT_EQUAL(s->seed, 42);
    CU_ASSERT_EQUAL(s->duration, S(900));
    CU_ASSERT_STRING_EQUAL(s->file, "t.yaml");
    CU_ASSERT_EQUAL(strlen(s->sha256), 64);

    /* core: a 2x2 region matrix, row-major from -> to */
    CU_ASSERT_EQUAL(s->core.model, SIM_SCN_LAT_MATRIX);
    CU_ASSERT_EQUAL_FATAL(s->core.region_count, 2);
    CU_ASSERT_STRING_EQUAL(s->core.regions[1], "asia");
    CU_ASSERT_EQUAL(s->core.matrix[0 * 2 + 1], MS(150));
    CU_ASSERT_EQUAL(s->core.matrix[1 * 2 + 0], MS(160));
    CU_ASSERT_EQUAL(s->core.jitter, 500000);
    CU_ASSERT_DOUBLE_EQUAL(s->core.loss, 0.002, 1e-12);
    CU_ASSERT_EQUAL(s->access.set, SIM_SCN_LINK_LATENCY | SIM_SCN_LINK_JITTER |
                                       SIM_SCN_LINK_BANDWIDTH | SIM_SCN_LINK_LOSS |
                                       SIM_SCN_LINK_QUEUE);
    CU_ASSERT_EQUAL(s->access.bandwidth_bps, 100000000ULL);
    CU_ASSERT_EQUAL(s->access.queue_bytes, 65536);
    CU_ASSERT_DOUBLE_EQUAL(s->access.loss, 0.001, 1e-12);

    /* LANs */
    CU_ASSERT_EQUAL_FATAL(s->lan_count, 3);
    const sim_scn_lan *home = &s->lans[0], *dc = &s->lans[1], *flat = &s->lans[2];
    CU_ASSERT_STRING_EQUAL(home->name, "home");
    CU_ASSERT_EQUAL(home->loc.line, 13);
    CU_ASSERT_EQUAL(home->hosts, 20);
    CU_ASSERT_EQUAL(home->placed, 15);
    CU_ASSERT_TRUE(home->is_private);
    CU_ASSERT_EQUAL(home->region, 0);
    CU_ASSERT_TRUE(home->nat.present);
    CU_ASSERT_EQUAL(home->nat.mapping, SIM_SCN_NAT_ADDRESS_DEPENDENT);
    CU_ASSERT_EQUAL(home->nat.filtering, SIM_SCN_NAT_ADDRESS_PORT_DEPENDENT);
    CU_ASSERT_EQUAL(home->nat.udp_timeout, S(30));
    CU_ASSERT_EQUAL(home->nat.tcp_timeout, S(3600));
    CU_ASSERT_TRUE(home->nat.hairpin);
    CU_ASSERT_FALSE(home->nat.port_preserve);
    CU_ASSERT_FALSE(home->nat.upnp);
    CU_ASSERT_FALSE(home->nat.natpmp);
    CU_ASSERT_EQUAL(home->upstream, SIM_SCN_CORE);
    CU_ASSERT_EQUAL(home->depth, 1);
    CU_ASSERT_EQUAL(home->link.set, SIM_SCN_LINK_LATENCY | SIM_SCN_LINK_BANDWIDTH);
    CU_ASSERT_EQUAL(home->link.bandwidth_bps, 20000000ULL);
    CU_ASSERT_EQUAL(dc->nat.mapping, SIM_SCN_NAT_ADDRESS_PORT_DEPENDENT);
    CU_ASSERT_EQUAL(dc->nat.filtering, SIM_SCN_NAT_ADDRESS_PORT_DEPENDENT);
    CU_ASSERT_EQUAL(dc->nat.udp_timeout, S(120)); /* RFC 4787 default */
    CU_ASSERT_TRUE(dc->nat.port_preserve);
    CU_ASSERT_FALSE(dc->nat.hairpin);
    CU_ASSERT_EQUAL(dc->region, 1);
    CU_ASSERT_EQUAL(flat->loc.line, 30);
    CU_ASSERT_EQUAL(flat->upstream, 0); /* behind home's NAT */
    CU_ASSERT_EQUAL(flat->depth, 2);
    CU_ASSERT_EQUAL(flat->region, 0); /* home's */
    CU_ASSERT_EQUAL(flat->nat.mapping, SIM_SCN_NAT_ENDPOINT_INDEPENDENT);
    CU_ASSERT_EQUAL(flat->nat.filtering, SIM_SCN_NAT_ADDRESS_PORT_DEPENDENT);
    CU_ASSERT_TRUE(flat->nat.upnp);
    CU_ASSERT_TRUE(flat->nat.natpmp);

    /* censors and rules */
    CU_ASSERT_EQUAL_FATAL(s->censor_count, 1);
    const sim_scn_censor *c = &s->censors[0];
    CU_ASSERT_FALSE(c->enabled);
    CU_ASSERT_EQUAL_FATAL(c->target_count, 2);
    CU_ASSERT_EQUAL(c->targets[0].kind, SIM_SCN_REF_LAN);
    CU_ASSERT_EQUAL(c->targets[0].index, 1);
    CU_ASSERT_EQUAL(c->targets[1].kind, SIM_SCN_REF_GROUP);
    CU_ASSERT_STRING_EQUAL(sim_scenario_ref_name(s, c->targets[1]), "roamers");
    CU_ASSERT_EQUAL_FATAL(c->rule_count, 3);
    const sim_scn_rule *r0 = &c->rules[0], *r1 = &c->rules[1], *r2 = &c->rules[2];
    CU_ASSERT_STRING_EQUAL(r0->name, "by-sni");
    CU_ASSERT_EQUAL(r0->match, SIM_SCN_MATCH_SNI | SIM_SCN_MATCH_DST_PORT);
    CU_ASSERT_STRING_EQUAL(r0->sni, "meshara.node"); /* lower-cased */
    CU_ASSERT_EQUAL(r0->port_min, 443);
    CU_ASSERT_EQUAL(r0->port_max, 8443);
    CU_ASSERT_EQUAL(r0->action, SIM_SCN_ACT_RST);
    CU_ASSERT_EQUAL(r0->residual, S(120));
    CU_ASSERT_STRING_EQUAL(r1->name, "rule1");
    CU_ASSERT_EQUAL(r1->dst_ip, 0xcb007100u);
    CU_ASSERT_EQUAL(r1->dst_prefix, 24);
    CU_ASSERT_STRING_EQUAL(r1->alpn, "meshara/1.0");
    CU_ASSERT_STRING_EQUAL(r1->ja3, "0123456789abcdef0123456789abcdef");
    CU_ASSERT_EQUAL(r1->action, SIM_SCN_ACT_THROTTLE);
    CU_ASSERT_EQUAL(r1->throttle_bps, 64000);
    CU_ASSERT_EQUAL(r2->len_min, 100);
    CU_ASSERT_EQUAL(r2->len_max, 1024);
    CU_ASSERT_DOUBLE_EQUAL(r2->entropy_min, 7.2, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(r2->entropy_max, 8.0, 1e-12);
    CU_ASSERT_EQUAL(r2->action, SIM_SCN_ACT_PROBE);

    /* groups */
    CU_ASSERT_EQUAL_FATAL(s->group_count, 4);
    CU_ASSERT_EQUAL(s->node_count, 30);
    const sim_scn_group *seeds = &s->groups[0], *roam = &s->groups[1], *homes = &s->groups[2],
                        *srv = &s->groups[3];
    CU_ASSERT_EQUAL(seeds->role, SIM_SCN_ROLE_BOOTSTRAP);
    CU_ASSERT_EQUAL(seeds->lan, SIM_SCN_INTERNET);
    CU_ASSERT_FALSE(seeds->mdns);
    CU_ASSERT_EQUAL(seeds->first_node, 0);
    CU_ASSERT_EQUAL(roam->first_node, 2);
    CU_ASSERT_EQUAL(roam->region, 1);
    CU_ASSERT_EQUAL(roam->join_from, S(10));
    CU_ASSERT_EQUAL(roam->join_to, S(60));
    CU_ASSERT_EQUAL(roam->profile, SIM_SCN_PROFILE_SEED);
    CU_ASSERT_EQUAL(s->groups[0].profile, SIM_SCN_PROFILE_WEB); /* the default */
    CU_ASSERT_EQUAL(roam->framing, SIM_SCN_FRAMING_HTTP2);
    CU_ASSERT_STRING_EQUAL(roam->tls_sni, "www.example.org");
    CU_ASSERT_EQUAL_FATAL(roam->alpn_count, 2);
    CU_ASSERT_STRING_EQUAL(roam->alpn[1], "http/1.1");
    /* the access link: network.access, overridden field by field */
    CU_ASSERT_EQUAL(roam->link.bandwidth_bps, 5000000ULL);
    CU_ASSERT_EQUAL(roam->link.latency, MS(2));
    CU_ASSERT_EQUAL(homes->lan, 0);
    CU_ASSERT_EQUAL(homes->region, 0); /* its LAN's */
    CU_ASSERT_FALSE(homes->mdns);      /* default off alone behind a router */
    CU_ASSERT_TRUE(homes->nat.present);
    CU_ASSERT_EQUAL(homes->nat.filtering, SIM_SCN_NAT_ADDRESS_DEPENDENT);
    CU_ASSERT_TRUE(homes->nat.hairpin);
    CU_ASSERT_EQUAL(homes->join_from, S(5));
    CU_ASSERT_EQUAL(homes->join_to, S(5));
    CU_ASSERT_EQUAL(srv->first_node, 27);
    CU_ASSERT_FALSE(srv->mdns);
    CU_ASSERT_EQUAL(sim_scenario_node_group(s, 0), 0);
    CU_ASSERT_EQUAL(sim_scenario_node_group(s, 2), 1);
    CU_ASSERT_EQUAL(sim_scenario_node_group(s, 26), 2);
    CU_ASSERT_EQUAL(sim_scenario_node_group(s, 29), 3);
    CU_ASSERT_EQUAL(sim_scenario_node_group(s, 30), (size_t)-1);

    /* events */
    CU_ASSERT_EQUAL_FATAL(s->event_count, 4);
    const sim_scn_event *e = s->events;
    CU_ASSERT_EQUAL(e[0].kind, SIM_SCN_EV_CHURN);
    CU_ASSERT_EQUAL(e[0].at, S(120));
    CU_ASSERT_EQUAL(e[0].group, 1);
    CU_ASSERT_DOUBLE_EQUAL(e[0].fraction, 0.5, 1e-12);
    CU_ASSERT_EQUAL(e[0].down_for, S(30));
    CU_ASSERT_EQUAL(e[1].kind, SIM_SCN_EV_PARTITION);
    CU_ASSERT_EQUAL_FATAL(e[1].target_count, 2);
    CU_ASSERT_EQUAL(e[1].targets[0].kind, SIM_SCN_REF_LAN);
    CU_ASSERT_EQUAL(e[1].targets[1].kind, SIM_SCN_REF_GROUP);
    CU_ASSERT_EQUAL(e[1].heal_at, S(240));
    CU_ASSERT_EQUAL(e[2].kind, SIM_SCN_EV_LINK);
    CU_ASSERT_EQUAL(e[2].target.kind, SIM_SCN_REF_GROUP);
    CU_ASSERT_EQUAL(e[2].target.index, 2);
    CU_ASSERT_EQUAL(e[2].link.set, SIM_SCN_LINK_LATENCY | SIM_SCN_LINK_LOSS);
    CU_ASSERT_EQUAL(e[2].link.latency, MS(200));
    CU_ASSERT_EQUAL(e[3].kind, SIM_SCN_EV_CENSOR);
    CU_ASSERT_EQUAL(e[3].censor, 0);
    CU_ASSERT_TRUE(e[3].enabled);
    CU_ASSERT_EQUAL(e[3].loc.line, 74);

    /* traffic */
    CU_ASSERT_EQUAL_FATAL(s->traffic_count, 3);
    const sim_scn_traffic *t = s->traffic;
    CU_ASSERT_STRING_EQUAL(t[0].name, "chat");
    CU_ASSERT_EQUAL(t[0].from, 2);
    CU_ASSERT_EQUAL(t[0].to, SIM_SCN_TO_RANDOM);
    CU_ASSERT_EQUAL(t[0].size.dist, SIM_SCN_SIZE_UNIFORM);
    CU_ASSERT_EQUAL(t[0].size.min, 1024);
    CU_ASSERT_EQUAL(t[0].size.max, 16384);
    CU_ASSERT_EQUAL(t[0].interval, S(2));
    CU_ASSERT_EQUAL(t[0].arrivals, SIM_SCN_ARRIVALS_POISSON);
    CU_ASSERT_EQUAL(t[0].start, S(60));
    CU_ASSERT_EQUAL(t[0].stop, S(840));
    CU_ASSERT_STRING_EQUAL(t[1].name, "traffic1");
    CU_ASSERT_EQUAL(t[1].to, 3);
    CU_ASSERT_EQUAL(t[1].size.dist, SIM_SCN_SIZE_PARETO);
    CU_ASSERT_EQUAL(t[1].size.mean, 4096);
    CU_ASSERT_EQUAL(t[1].size.max, 1 << 20);
    CU_ASSERT_DOUBLE_EQUAL(t[1].size.shape, 1.5, 1e-12);
    CU_ASSERT_EQUAL(t[1].interval, 333333333ULL); /* 3/s, rounded to the ns */
    CU_ASSERT_EQUAL(t[1].stop, S(900));           /* default: the duration */
    CU_ASSERT_EQUAL(t[2].size.dist, SIM_SCN_SIZE_FIXED);
    CU_ASSERT_EQUAL(t[2].size.min, 1500);

    /* expectations */
    CU_ASSERT_EQUAL_FATAL(s->expect_count, 3);
    CU_ASSERT_STRING_EQUAL(s->expects[1].summary, "delivery_latency_p99_ms");
    CU_ASSERT_EQUAL(s->expects[0].op, SIM_SCN_OP_GE);
    CU_ASSERT_EQUAL(s->expects[1].op, SIM_SCN_OP_LE);
    CU_ASSERT_EQUAL(s->expects[2].op, SIM_SCN_OP_EQ);
    CU_ASSERT_TRUE(sim_scn_expect_holds(&s->expects[0], 0.95));
    CU_ASSERT_FALSE(sim_scn_expect_holds(&s->expects[0], 0.94));
    CU_ASSERT_TRUE(sim_scn_expect_holds(&s->expects[1], 800));
    CU_ASSERT_FALSE(sim_scn_expect_holds(&s->expects[1], 800.5));
    CU_ASSERT_FALSE(sim_scn_expect_holds(&s->expects[2], 31));

    CU_ASSERT_EQUAL(sim_scenario_check(s, err, sizeof err), MESH_OK);
    CU_ASSERT_STRING_EQUAL(sim_scenario_params_json(s), "{}");
    sim_scenario_free(s);
    sim_scenario_free(NULL);
}

static char *source_path(char *buf, size_t cap, const char *rel)
{
    const char *dir = getenv("MESH_SOURCE_DIR");
    snprintf(buf, cap, "%s/%s", dir ? dir : "../..", rel);
    return buf;
}

static void test_default_scenario(void)
{
    char path[1024], err[SIM_SCN_ERR_MAX] = "";
    sim_scenario *s = NULL;
    int rc = sim_scenario_load(&s, source_path(path, sizeof path, "scenarios/default.yaml"), err,
                               sizeof err);
    if (rc != MESH_OK)
        fprintf(stderr, "%s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, MESH_OK);
    CU_ASSERT_EQUAL(s->duration, S(600));
    CU_ASSERT_EQUAL(s->lan_count, 3);
    CU_ASSERT_EQUAL(s->node_count, 100);
    /* 30% behind NATs of more than one kind */
    uint32_t natted = 0;
    int kinds = 0;
    for (size_t i = 0; i < s->group_count; i++) {
        const sim_scn_group *g = &s->groups[i];
        if (g->lan != SIM_SCN_INTERNET && s->lans[g->lan].nat.present)
            natted += g->count;
    }
    for (size_t i = 0; i < s->lan_count; i++)
        kinds |= 1 << (s->lans[i].nat.mapping * 3 + s->lans[i].nat.filtering);
    CU_ASSERT_EQUAL(natted, 30);
    CU_ASSERT_TRUE(__builtin_popcount((unsigned)kinds) >= 3);
    /* one region behind a censor blocking the seed's SNI */
    CU_ASSERT_EQUAL_FATAL(s->censor_count, 1);
    CU_ASSERT_TRUE(s->censors[0].enabled);
    CU_ASSERT_STRING_EQUAL(s->censors[0].rules[0].sni, "meshara.node");
    CU_ASSERT_TRUE(s->censors[0].target_count >= 1);
    size_t bootstrap = 0;
    for (size_t i = 0; i < s->group_count; i++)
        bootstrap += s->groups[i].role == SIM_SCN_ROLE_BOOTSTRAP;
    CU_ASSERT_TRUE(bootstrap >= 1);
    sim_scenario_free(s);
}

/* Every ```yaml block of docs/scenarios.md that starts with "name:" is a whole scenario and
 * must load: the documentation cannot drift from the loader. */
static void test_docs_examples(void)
{
    char path[1024], err[SIM_SCN_ERR_MAX];
    FILE *f = fopen(source_path(path, sizeof path, "docs/scenarios.md"), "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    static char doc[1 << 18];
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    fclose(f);
    doc[n] = '\0';
    int blocks = 0;
    for (char *p = doc; (p = strstr(p, "```yaml\n"));) {
        p += 8;
        char *end = strstr(p, "```");
        CU_ASSERT_PTR_NOT_NULL_FATAL(end);
        if (!strncmp(p, "name:", 5)) {
            sim_scenario *s = NULL;
            int rc = sim_scenario_load_mem(&s, "docs/scenarios.md", p, (size_t)(end - p), err,
                                           sizeof err);
            if (rc != MESH_OK)
                fprintf(stderr, "docs example %d: %s\n", blocks, err);
            CU_ASSERT_EQUAL(rc, MESH_OK);
            /* and `meshara-sim check` passes it, except the every-key example, which uses
             * what the simulator does not build yet (the page says so) */
            int every_key = strstr(p, "action: probe") && strstr(p, "action: probe") < end;
            if (rc == MESH_OK)
                CU_ASSERT_EQUAL(sim_run_check(s, err, sizeof err),
                                every_key ? MESH_ERR_UNSUPPORTED : MESH_OK);
            sim_scenario_free(s);
            blocks++;
        }
        p = end + 3;
    }
    CU_ASSERT_TRUE(blocks >= 2);
}

static const char BASE[] = "name: t\n"
                           "duration: 10m\n"
                           "groups:\n"
                           "  - name: clients\n"
                           "    count: 3\n";

/* Units, through --set on a small scenario. */
static void test_units(void)
{
    static const struct {
        const char *path, *value;
        int which; /* 0 latency (ns), 1 bandwidth (bit/s), 2 queue (bytes) */
        uint64_t want;
    } ok[] = {
        {"network.access.latency", "250ms", 0, 250000000ULL},
        {"network.access.latency", "1.5s", 0, 1500000000ULL},
        {"network.access.latency", "10m", 0, 600000000000ULL},
        {"network.access.latency", "2h", 0, 7200000000000ULL},
        {"network.access.latency", "500us", 0, 500000ULL},
        {"network.access.latency", "20ns", 0, 20ULL},
        {"network.access.latency", "0", 0, 0ULL},
        {"network.access.latency", "0.000001ms", 0, 1ULL},
        {"network.access.bandwidth", "10Mbit", 1, 10000000ULL},
        {"network.access.bandwidth", "1Gbit", 1, 1000000000ULL},
        {"network.access.bandwidth", "500kbit", 1, 500000ULL},
        {"network.access.bandwidth", "1.5Mbit", 1, 1500000ULL},
        {"network.access.queue", "1KiB", 2, 1024ULL},
        {"network.access.queue", "16KiB", 2, 16384ULL},
        {"network.access.queue", "1MiB", 2, 1048576ULL},
        {"network.access.queue", "1500B", 2, 1500ULL},
        {"network.access.queue", "1500", 2, 1500ULL},
    };
    char err[SIM_SCN_ERR_MAX];
    int rc;
    sim_scenario *s = load_str(BASE, &rc, err, sizeof err);
    CU_ASSERT_EQUAL_FATAL(rc, MESH_OK);
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        rc = sim_scenario_set(s, ok[i].path, ok[i].value, err, sizeof err);
        if (rc != MESH_OK)
            fprintf(stderr, "%s\n", err);
        CU_ASSERT_EQUAL_FATAL(rc, MESH_OK);
        uint64_t got = ok[i].which == 0   ? s->access.latency
                       : ok[i].which == 1 ? s->access.bandwidth_bps
                                          : s->access.queue_bytes;
        if (got != ok[i].want)
            fprintf(stderr, "%s=%s gave %llu\n", ok[i].path, ok[i].value, (unsigned long long)got);
        CU_ASSERT_EQUAL(got, ok[i].want);
        /* the group's access link follows network.access */
        CU_ASSERT_EQUAL(s->groups[0].link.latency, s->access.latency);
    }
    CU_ASSERT_EQUAL(sim_scenario_set(s, "network.access.loss", "1%", err, sizeof err), MESH_OK);
    CU_ASSERT_DOUBLE_EQUAL(s->access.loss, 0.01, 1e-15);
    CU_ASSERT_EQUAL(sim_scenario_set(s, "network.access.loss", "0.25", err, sizeof err), MESH_OK);
    CU_ASSERT_DOUBLE_EQUAL(s->access.loss, 0.25, 1e-15);
    sim_scenario_free(s);
}

typedef struct err_case {
    const char *yaml;
    int rc;
    const char *where;   /* the message starts with this */
    const char *phrase;  /* and contains this */
    const char *phrase2; /* and this (NULL: nothing more) */
} err_case;

static void run_err_cases(const err_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char err[SIM_SCN_ERR_MAX] = "";
        int rc;
        sim_scenario *s = load_str(cases[i].yaml, &rc, err, sizeof err);
        int ok = rc == cases[i].rc && !s && !strncmp(err, cases[i].where, strlen(cases[i].where)) &&
                 strstr(err, cases[i].phrase) &&
                 (!cases[i].phrase2 || strstr(err, cases[i].phrase2)) && strstr(err, "(hint: ");
        if (!ok)
            fprintf(stderr, "case %zu: rc %d, want %d: \"%s\"\n", i, rc, cases[i].rc, err);
        CU_ASSERT_TRUE(ok);
        sim_scenario_free(s);
    }
}

static void test_syntax_errors(void)
{
    static const err_case cases[] = {
        {"name: t\nduration: 10m\ngroups: [\n  - name: x\n", MESH_ERR_MALFORMED,
         "t.yaml:4:3:", "YAML syntax error", NULL},
        {"name: t\n  duration: 10m\n", MESH_ERR_MALFORMED, "t.yaml:2:11:", "YAML syntax error",
         "mapping values are not allowed"},
        {"name: \"t\nduration: 1m\n", MESH_ERR_MALFORMED, "t.yaml:3:1:", "YAML syntax error",
         "quoted scalar"},
        {"name: t\nname: u\n", MESH_ERR_MALFORMED, "t.yaml:2:1:", "duplicate key 'name'",
         "first given at line 1, column 1"},
        {"name: t\n---\nname: u\n", MESH_ERR_MALFORMED,
         "t.yaml:2:1:", "more than one YAML document", NULL},
        {"name: &a t\nduration: *a\n", MESH_ERR_MALFORMED,
         "t.yaml:2:11:", "aliases are not supported", NULL},
        {"", MESH_ERR_MALFORMED, "t.yaml:1:1:", "empty scenario", NULL},
        {"- a\n- b\n", MESH_ERR_MALFORMED, "t.yaml:1:1:", "wrong type for the scenario",
         "expected a mapping"},
        {"name: t\n? [a, b]\n: c\n", MESH_ERR_MALFORMED,
         "t.yaml:2:3:", "a mapping key must be a scalar", NULL},
        {"name: \"a\\0b\"\n", MESH_ERR_MALFORMED, "t.yaml:1:7:", "NUL character", NULL},
        {"name: t\xff\n", MESH_ERR_MALFORMED, "t.yaml:1:8:", "YAML syntax error", "UTF-8"},
    };
    run_err_cases(cases, sizeof cases / sizeof cases[0]);
}

static void test_schema_errors(void)
{
    static const err_case cases[] = {
        /* unknown keys, with a suggestion when one is near, the list otherwise */
        {"name: t\nduration: 1m\nnetwork:\n  core:\n    latncy: 5ms\ngroups: [{name: a, count: "
         "1}]\n",
         MESH_ERR_MALFORMED, "t.yaml:5:5:", "unknown key 'latncy' in network.core",
         "did you mean 'latency'?"},
        {"name: t\nduration: 1m\ngroups:\n  - name: a\n    cuont: 1\n", MESH_ERR_MALFORMED,
         "t.yaml:5:5:", "unknown key 'cuont' in groups[0]", "did you mean 'count'?"},
        {"name: t\nduraton: 1m\n", MESH_ERR_MALFORMED, "t.yaml:2:1:", "unknown key 'duraton'",
         "did you mean 'duration'?"},
        {"name: t\nduration: 1m\nzebra: 1\n", MESH_ERR_MALFORMED, "t.yaml:3:1:",
         "unknown key 'zebra' in the scenario", "known keys here: name, seed, duration"},
        /* bad units */
        {"name: t\nduration: 10x\n", MESH_ERR_MALFORMED, "t.yaml:2:11:", "bad unit \"x\"",
         "durations look like"},
        {"name: t\nduration: 10\n", MESH_ERR_MALFORMED, "t.yaml:2:11:", "bad unit", "has no unit"},
        {"name: t\nduration: 1m\nnetwork: {access: {bandwidth: 10MB}}\n", MESH_ERR_MALFORMED,
         "t.yaml:3:31:", "bad unit \"MB\" for network.access.bandwidth", "10Mbit"},
        {"name: t\nduration: 1m\nnetwork: {access: {queue: 3 parsecs}}\n", MESH_ERR_MALFORMED,
         "t.yaml:3:27:", "bad unit \"parsecs\"", "sizes look like"},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1}]\ntraffic: [{from: a, to: a, "
         "size: 1, rate: 5/fortnight}]\n",
         MESH_ERR_MALFORMED, "t.yaml:4:43:", "bad unit \"/fortnight\"", "2/s"},
        /* out of range */
        {"name: t\nduration: -5s\n", MESH_ERR_MALFORMED, "t.yaml:2:11:", "out of range",
         "negative"},
        {"name: t\nduration: 0s\n", MESH_ERR_MALFORMED, "t.yaml:2:11:", "out of range for duration",
         NULL},
        {"name: t\nduration: 400d\n", MESH_ERR_MALFORMED, "t.yaml:2:11:", "out of range", NULL},
        {"name: t\nduration: 0.5ns\n", MESH_ERR_MALFORMED, "t.yaml:2:11:", "out of range",
         "finer than"},
        {"name: t\nseed: 9223372036854775808\n", MESH_ERR_MALFORMED,
         "t.yaml:2:7:", "out of range for seed", NULL},
        {"name: t\nduration: 1m\nnetwork: {core: {loss: 150%}}\n", MESH_ERR_MALFORMED,
         "t.yaml:3:24:", "out of range for network.core.loss", "0% to 100%"},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 0}]\n", MESH_ERR_MALFORMED,
         "t.yaml:3:27:", "out of range for groups[0].count", "between 1 and 100000"},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1}]\nnetwork: {censors: [{name: c, "
         "in_front_of: a, rules: [{match: {dst_port: 70000}, action: drop}]}]}\n",
         MESH_ERR_MALFORMED, "t.yaml:4:74:", "out of range", "between 0 and 65535"},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1}]\nnetwork: {censors: [{name: c, "
         "in_front_of: a, rules: [{match: {dst_ip: 10.0.0.1/8}, action: drop}]}]}\n",
         MESH_ERR_MALFORMED, "t.yaml:4:72:", "out of range", "past the prefix"},
        /* wrong types */
        {"name: t\nduration: 1m\ngroups: [{name: a, count: ten}]\n", MESH_ERR_MALFORMED,
         "t.yaml:3:27:", "wrong type for groups[0].count", "expected a whole number"},
        {"name: t\nduration: 1m\ngroups: {name: a}\n", MESH_ERR_MALFORMED,
         "t.yaml:3:9:", "wrong type for groups", "expected a list, found a mapping"},
        {"name: t\nduration: [1m]\n", MESH_ERR_MALFORMED, "t.yaml:2:11:", "wrong type for duration",
         "expected a duration, found a list"},
        {"name: t\nduration: fast\n", MESH_ERR_MALFORMED, "t.yaml:2:11:", "wrong type for duration",
         "found \"fast\""},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1, mdns: maybe}]\n", MESH_ERR_MALFORMED,
         "t.yaml:3:36:", "wrong type for groups[0].mdns", "true or false"},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1, relay_service: 2}]\n",
         MESH_ERR_MALFORMED, "t.yaml:3:45:", "wrong type for groups[0].relay_service",
         "true or false"},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1, role: leader}]\n", MESH_ERR_MALFORMED,
         "t.yaml:3:36:", "bad value \"leader\" for groups[0].role",
         "one of: normal, bootstrap, stun"},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1, framing: http3}]\n",
         MESH_ERR_MALFORMED, "t.yaml:3:39:", "bad value \"http3\"", "did you mean 'http2'?"},
        {"name: 7 dwarves\n", MESH_ERR_MALFORMED, "t.yaml:1:7:", "bad name \"7 dwarves\"",
         "a letter"},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1}]\nnetwork: {lans: [{name: l, nat: "
         "cone}]}\n",
         MESH_ERR_MALFORMED, "t.yaml:4:33:", "bad value \"cone\" for network.lans[0].nat",
         "one of: full-cone"},
        /* missing keys */
        {"name: t\nduration: 1m\ngroups:\n  - name: a\n    role: normal\n", MESH_ERR_MALFORMED,
         "t.yaml:4:5:", "missing required key 'count' in groups[0]", NULL},
        {"name: t\ngroups: [{name: a, count: 1}]\n", MESH_ERR_MALFORMED,
         "t.yaml:1:1:", "missing required key 'duration'", NULL},
        {"name:\nduration: 1m\n", MESH_ERR_MALFORMED,
         "t.yaml:1:1:", "missing value for required key 'name'", NULL},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1}]\nevents:\n  - at: 1s\n",
         MESH_ERR_MALFORMED, "t.yaml:5:5:", "missing required key 'churn', 'partition'", NULL},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1}]\nnetwork: {lans: [{name: l, nat: "
         "{mapping: address-dependent}}]}\n",
         MESH_ERR_MALFORMED, "t.yaml:4:33:", "missing required key 'filtering'", NULL},
        /* unknown references */
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1, placement: hom}]\nnetwork: {lans: "
         "[{name: home}]}\n",
         MESH_ERR_MALFORMED, "t.yaml:3:41:", "unknown LAN 'hom'", "did you mean 'home'?"},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1}]\nevents: [{at: 1s, churn: {group: "
         "b, fraction: 10%}}]\n",
         MESH_ERR_MALFORMED, "t.yaml:4:34:", "unknown group 'b'", NULL},
        {"name: t\nduration: 1m\ngroups: [{name: alpha, count: 1}]\nnetwork: {censors: [{name: c, "
         "in_front_of: [zeta], rules: [{match: {sni: x}, action: drop}]}]}\n",
         MESH_ERR_MALFORMED, "t.yaml:4:45:", "unknown group or LAN 'zeta'", "known: alpha"},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1}]\nevents: [{at: 1s, censor: {name: "
         "gfw, enabled: true}}]\n",
         MESH_ERR_MALFORMED, "t.yaml:4:34:", "unknown censor 'gfw'", NULL},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1}]\ntraffic: [{from: a, to: nobody, "
         "size: 1, interval: 1s}]\n",
         MESH_ERR_MALFORMED, "t.yaml:4:25:", "unknown group 'nobody'", NULL},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1, region: eu}]\n", MESH_ERR_MALFORMED,
         "t.yaml:3:38:", "the core latency has no regions", NULL},
        /* duplicates */
        {"name: t\nduration: 1m\ngroups:\n  - {name: a, count: 1}\n  - {name: a, count: 2}\n",
         MESH_ERR_MALFORMED, "t.yaml:5:12:", "duplicate name 'a'", "line 4, column 5"},
        {"name: t\nduration: 1m\nnetwork: {lans: [{name: x}]}\ngroups: [{name: x, count: 1}]\n",
         MESH_ERR_MALFORMED, "t.yaml:4:17:", "duplicate name 'x'", "group and LAN"},
        {"name: t\nduration: 1m\ngroups: [{name: internet, count: 1}]\n", MESH_ERR_MALFORMED,
         "t.yaml:3:17:", "reserved name 'internet'", NULL},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1}]\nnetwork: {censors: [{name: c, "
         "in_front_of: a, rules: [{name: r, match: {sni: x}, action: drop}, {name: r, match: "
         "{sni: y}, action: rst}]}]}\n",
         MESH_ERR_MALFORMED, "t.yaml:4:104:", "duplicate name 'r'", "rule names"},
        /* one-of rules */
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1}]\nevents: [{at: 1s, churn: {group: "
         "a, fraction: 1}, censor: {name: c, enabled: true}}]\n",
         MESH_ERR_MALFORMED, "t.yaml:4:51:", "both 'churn' and 'censor'", NULL},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1}]\nnetwork: {censors: [{name: c, "
         "in_front_of: a, rules: [{match: {sni: x}, action: throttle}]}]}\n",
         MESH_ERR_MALFORMED, "t.yaml:4:81:", "throttle needs a rate", NULL},
        /* LANs behind LANs, NAT-PMP */
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1}]\nnetwork: {lans: [{name: home, "
         "private: true, upstream: isp}, {name: isp, private: true}]}\n",
         MESH_ERR_MALFORMED, "t.yaml:4:56:", "unknown LAN 'isp' in network.lans[0].upstream",
         "declared above the LANs behind it"},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1}]\nnetwork: {lans: [{name: isp, "
         "private: true}, {name: home, private: true, upstream: isp, region: eu}]}\n",
         MESH_ERR_MALFORMED, "t.yaml:4:89:", "region given for a LAN with an upstream",
         "its upstream's region"},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1}]\nnetwork: {lans: [{name: l, "
         "private: true, nat: {type: full-cone, natpmp: maybe}}]}\n",
         MESH_ERR_MALFORMED, "t.yaml:4:74:", "wrong type for network.lans[0].nat.natpmp", NULL},
    };
    run_err_cases(cases, sizeof cases / sizeof cases[0]);
}

/* Cross-field rules of sim_scenario_check, as the loader reports them. */
static void test_semantic_errors(void)
{
    static const err_case cases[] = {
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1}]\nevents:\n  - {at: 2m, churn: "
         "{group: a, fraction: 1}}\n",
         MESH_ERR_MALFORMED, "t.yaml:5:5:", "event at 120s is after the end of the run",
         "duration 60s"},
        {"name: t\nduration: 1m\nnetwork: {lans: [{name: l, nat: symmetric}]}\ngroups: [{name: "
         "a, count: 1, placement: l}]\n",
         MESH_ERR_MALFORMED, "t.yaml:3:18:", "LAN 'l' has a NAT but is not private",
         "private: true"},
        {"name: t\nduration: 1m\nnetwork: {lans: [{name: l, hosts: 2}]}\ngroups: [{name: a, "
         "count: 3, placement: l}]\n",
         MESH_ERR_MALFORMED, "t.yaml:3:18:", "holds 3 nodes but has hosts: 2", NULL},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1, nat: full-cone}]\n",
         MESH_ERR_MALFORMED, "t.yaml:3:10:", "has a NAT but sits on the internet", NULL},
        {"name: t\nduration: 1m\nnetwork: {lans: [{name: l}]}\ngroups: [{name: s, count: 1, "
         "role: stun, placement: l}]\n",
         MESH_ERR_MALFORMED, "t.yaml:4:10:", "group 's' has role stun but sits on LAN 'l'",
         "place the group on the internet"},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1, join: {spread: [30s, 10s]}}]\n",
         MESH_ERR_MALFORMED, "t.yaml:3:10:", "joins over a reversed interval", NULL},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1, join: 2m}]\n", MESH_ERR_MALFORMED,
         "t.yaml:3:10:", "group 'a' joins at 120s is after the end", NULL},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1}]\nevents:\n  - {at: 30s, "
         "partition: {targets: [a], heal_at: 20s}}\n",
         MESH_ERR_MALFORMED, "t.yaml:5:5:", "partition heals at 20s, not after it starts at 30s",
         NULL},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1}]\ntraffic:\n  - {from: a, to: a, "
         "size: 1, interval: 1s, start: 50s, stop: 40s}\n",
         MESH_ERR_MALFORMED, "t.yaml:5:5:", "traffic 'traffic0' stops before it starts", NULL},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1}]\ntraffic:\n  - {from: a, to: a, "
         "size: [2KiB, 1KiB], interval: 1s}\n",
         MESH_ERR_MALFORMED, "t.yaml:5:5:", "min > max", NULL},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1}]\ntraffic:\n  - {from: a, to: a, "
         "size: {distribution: pareto, mean: 1KiB, shape: 1}, interval: 1s}\n",
         MESH_ERR_MALFORMED, "t.yaml:5:5:", "pareto shape not above 1", NULL},
        {"name: t\nduration: 1m\nnetwork:\n  core: {latency: {regions: [eu, us], matrix: [[1ms, "
         "2ms], [2ms, 1ms]]}}\n  lans: [{name: l}]\ngroups: [{name: a, count: 1, placement: "
         "l}]\n",
         MESH_ERR_MALFORMED, "t.yaml:5:10:", "LAN 'l' has no region", "region:"},
        {"name: t\nduration: 1m\nnetwork:\n  core: {latency: {regions: [eu, us], matrix: [[1ms, "
         "2ms]]}}\n",
         MESH_ERR_MALFORMED, "t.yaml:4:47:", "has 1 rows for 2 regions", NULL},
        {"name: t\nduration: 1m\nnetwork: {core: {latency: {uniform: [50ms, 10ms]}}}\ngroups: "
         "[{name: a, count: 1}]\n",
         MESH_ERR_MALFORMED, "t.yaml:3:37:", "uniform has min > max", NULL},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1}]\nnetwork: {censors: [{name: c, "
         "in_front_of: a, rules: [{match: {entropy: [7, 6]}, action: drop}]}]}\n",
         MESH_ERR_MALFORMED, "t.yaml:4:55:", "rule 'rule0' of censor 'c' has entropy", NULL},
        /* a pattern whose only possible destination is its sender would send nothing */
        {"name: t\nduration: 1m\ngroups: [{name: solo, count: 1}]\ntraffic:\n  - {name: chat, "
         "from: solo, to: solo, size: 1, interval: 1s}\n",
         MESH_ERR_MALFORMED, "t.yaml:5:5:", "traffic 'chat' has no destination",
         "from group 'solo' to itself, which has one node"},
        {"name: t\nduration: 1m\ngroups: [{name: solo, count: 1}]\ntraffic:\n  - {from: solo, "
         "to: random, size: 1, interval: 1s}\n",
         MESH_ERR_MALFORMED, "t.yaml:5:5:", "traffic 'traffic0' has no destination",
         "the scenario has one node"},
        /* LANs behind LANs */
        {"name: t\nduration: 1m\nnetwork: {lans: [{name: isp, private: true}, {name: home, "
         "upstream: isp}]}\ngroups: [{name: a, count: 1}]\n",
         MESH_ERR_MALFORMED, "t.yaml:3:46:", "LAN 'home' sits behind LAN 'isp' but is not private",
         "private: true"},
        {"name: t\nduration: 1m\nnetwork:\n  lans:\n    - {name: l1, private: true}\n"
         "    - {name: l2, private: true, upstream: l1}\n    - {name: l3, private: true, "
         "upstream: l2}\n    - {name: l4, private: true, upstream: l3}\n    - {name: l5, "
         "private: true, upstream: l4}\ngroups: [{name: a, count: 1}]\n",
         MESH_ERR_LIMIT, "t.yaml:9:7:", "LAN 'l5' is 5 LANs deep", "SIM_SCN_MAX_NAT_DEPTH"},
        {"name: t\nduration: 1m\nnetwork:\n  lans:\n    - {name: l1, private: true}\n"
         "    - {name: l2, private: true, upstream: l1}\n    - {name: l3, private: true, "
         "upstream: l2}\n    - {name: l4, private: true, upstream: l3}\ngroups: [{name: a, count: "
         "1, placement: l4, nat: full-cone}]\n",
         MESH_ERR_LIMIT, "t.yaml:9:10:", "group 'a' puts its nodes 5 LANs deep",
         "the per-node NAT's included"},
        /* what a node's TLS layer takes; what belongs to the seed profile */
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1, tls: {alpn: h2}}]\n",
         MESH_ERR_MALFORMED, "t.yaml:3:10:", "group 'a' sets tls.alpn, a seed-profile setting",
         "add profile: seed"},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1, framing: plain}]\n",
         MESH_ERR_MALFORMED, "t.yaml:3:10:", "group 'a' sets framing: plain, a seed-profile",
         "always frames with HTTP/2"},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1, profile: ftp}]\n", MESH_ERR_MALFORMED,
         "t.yaml:3:39:", "bad value \"ftp\" for groups[0].profile", "web, seed"},
        {"name: t\nduration: 1m\ngroups: [{name: a, count: 1, profile: seed, framing: http2, tls: "
         "{alpn: [p1, p2, p3, p4, p5, p6, p7, p8]}}]\n",
         MESH_ERR_LIMIT, "t.yaml:3:10:", "group 'a' offers 9 ALPN protocols", "h2 included"},
    };
    run_err_cases(cases, sizeof cases / sizeof cases[0]);
}

static void test_set(void)
{
    static const char Y[] = "name: t\n"
                            "duration: 10m\n"
                            "network:\n"
                            "  core: {latency: 20ms}\n"
                            "groups:\n"
                            "  - name: clients\n"
                            "    count: 3\n"
                            "  - name: servers\n"
                            "    count: 2\n"
                            "events:\n"
                            "  - at: 2m\n"
                            "    churn: {group: clients, fraction: 50%}\n";
    char err[SIM_SCN_ERR_MAX];
    int rc;
    sim_scenario *s = load_str(Y, &rc, err, sizeof err);
    CU_ASSERT_EQUAL_FATAL(rc, MESH_OK);
    CU_ASSERT_EQUAL(sim_scenario_set(s, "network.core.latency", "80ms", err, sizeof err), MESH_OK);
    CU_ASSERT_EQUAL(s->core.latency, MS(80));
    /* list elements by name and by index */
    CU_ASSERT_EQUAL(sim_scenario_set_arg(s, "groups.clients.count=7", err, sizeof err), MESH_OK);
    CU_ASSERT_EQUAL(s->groups[0].count, 7);
    CU_ASSERT_EQUAL(s->node_count, 9);
    CU_ASSERT_EQUAL(s->groups[1].first_node, 7);
    CU_ASSERT_EQUAL(sim_scenario_set(s, "groups.1.count", "4", err, sizeof err), MESH_OK);
    CU_ASSERT_EQUAL(s->node_count, 11);
    CU_ASSERT_EQUAL(sim_scenario_set(s, "events.0.at", "5m", err, sizeof err), MESH_OK);
    CU_ASSERT_EQUAL(s->events[0].at, S(300));
    /* missing mappings are created; flow values work */
    CU_ASSERT_EQUAL(sim_scenario_set(s, "network.access.jitter", "3ms", err, sizeof err), MESH_OK);
    CU_ASSERT_EQUAL(s->access.jitter, MS(3));
    CU_ASSERT_EQUAL(s->groups[1].link.jitter, MS(3));
    CU_ASSERT_EQUAL(
        sim_scenario_set(s, "network.core.latency", "{uniform: [10ms, 90ms]}", err, sizeof err),
        MESH_OK);
    CU_ASSERT_EQUAL(s->core.model, SIM_SCN_LAT_UNIFORM);
    CU_ASSERT_EQUAL(s->core.lat_max, MS(90));
    CU_ASSERT_EQUAL(sim_scenario_set(s, "seed", "99", err, sizeof err), MESH_OK);
    CU_ASSERT_EQUAL(s->seed, 99);
    /* a second set of one path replaces the first, in its original position */
    CU_ASSERT_STRING_EQUAL(sim_scenario_params_json(s),
                           "{\"network.core.latency\":\"{uniform: [10ms, 90ms]}\","
                           "\"groups.clients.count\":\"7\",\"groups.1.count\":\"4\","
                           "\"events.0.at\":\"5m\",\"network.access.jitter\":\"3ms\","
                           "\"seed\":\"99\"}");
    /* the overrides survive a later rebuild */
    CU_ASSERT_EQUAL(sim_scenario_set(s, "name", "renamed", err, sizeof err), MESH_OK);
    CU_ASSERT_STRING_EQUAL(s->name, "renamed");
    CU_ASSERT_EQUAL(s->node_count, 11);
    CU_ASSERT_EQUAL(s->core.model, SIM_SCN_LAT_UNIFORM);
    CU_ASSERT_EQUAL(sim_scenario_check(s, err, sizeof err), MESH_OK);
    sim_scenario_free(s);
}

static void test_set_errors(void)
{
    static const char Y[] = "name: t\n"
                            "duration: 10m\n"
                            "groups:\n"
                            "  - name: clients\n"
                            "    count: 3\n"
                            "events:\n"
                            "  - at: 2m\n"
                            "    churn: {group: clients, fraction: 50%}\n";
    static const struct {
        const char *arg;
        int rc;
        const char *where, *phrase, *phrase2;
    } cases[] = {
        {"network.core.latency=80", MESH_ERR_MALFORMED,
         "--set network.core.latency=80: ", "bad unit", "has no unit"},
        {"network.core.latncy=80ms", MESH_ERR_MALFORMED, "--set network.core.latncy=80ms: ",
         "unknown key 'latncy' in network.core", "did you mean 'latency'?"},
        {"groups.clients.count=-1", MESH_ERR_MALFORMED,
         "--set groups.clients.count=-1: ", "out of range", NULL},
        {"groups.clients.count=lots", MESH_ERR_MALFORMED,
         "--set groups.clients.count=lots: ", "wrong type", "whole number"},
        {"groups.nobody.count=1", MESH_ERR_MALFORMED,
         "--set groups.nobody.count=1: ", "no element 'nobody'", NULL},
        {"name.first=x", MESH_ERR_MALFORMED, "--set name.first=x: ", "inside a scalar", NULL},
        {"events.0.churn.group=servers", MESH_ERR_MALFORMED,
         "--set events.0.churn.group=servers: ", "unknown group 'servers'", NULL},
        {"duration=[1m", MESH_ERR_MALFORMED, "--set duration=[1m: ", "YAML syntax error", NULL},
        /* valid by itself, invalid for the scenario: the check names both */
        {"duration=1m", MESH_ERR_MALFORMED,
         "--set duration=1m: t.yaml:7:5: ", "event at 120s is after the end of the run", NULL},
        {"noequals", MESH_ERR_MALFORMED, "--set: ", "not path=value", NULL},
        {"=5", MESH_ERR_MALFORMED, "--set: ", "not path=value", NULL},
        {"network..core=1", MESH_ERR_MALFORMED, "--set network..core=1: ", "bad path", NULL},
    };
    char err[SIM_SCN_ERR_MAX];
    int rc;
    sim_scenario *s = load_str(Y, &rc, err, sizeof err);
    CU_ASSERT_EQUAL_FATAL(rc, MESH_OK);
    const sim_scn_group *groups = s->groups;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = '\0';
        rc = sim_scenario_set_arg(s, cases[i].arg, err, sizeof err);
        int ok = rc == cases[i].rc && !strncmp(err, cases[i].where, strlen(cases[i].where)) &&
                 strstr(err, cases[i].phrase) &&
                 (!cases[i].phrase2 || strstr(err, cases[i].phrase2)) && strstr(err, "(hint: ");
        if (!ok)
            fprintf(stderr, "set case %zu: rc %d: \"%s\"\n", i, rc, err);
        CU_ASSERT_TRUE(ok);
        /* a failed set leaves the scenario as it was, pointers included */
        CU_ASSERT_PTR_EQUAL(s->groups, groups);
        CU_ASSERT_EQUAL(s->groups[0].count, 3);
        CU_ASSERT_EQUAL(s->duration, S(600));
        CU_ASSERT_STRING_EQUAL(sim_scenario_params_json(s), "{}");
    }
    CU_ASSERT_EQUAL(sim_scenario_set(s, "", "1", err, sizeof err), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(sim_scenario_set(NULL, "a", "1", err, sizeof err), MESH_ERR_INVAL);
    sim_scenario_free(s);
}

/* Set-override limit: SIM_SCN_MAX_SETS distinct paths fill it, one more is refused. */
static void test_set_limit(void)
{
    /* many distinct valid paths: one traffic pattern per override slot */
    size_t cap = 64 + (size_t)SIM_SCN_MAX_SETS * 80;
    char *y = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    size_t o = (size_t)snprintf(y, cap,
                                "name: t\nduration: 10m\ngroups: [{name: a, count: "
                                "2}]\ntraffic:\n");
    for (int i = 0; i <= SIM_SCN_MAX_SETS; i++)
        o += (size_t)snprintf(y + o, cap - o, "  - {from: a, to: a, size: 1, interval: 1s}\n");
    char err[SIM_SCN_ERR_MAX], path[64];
    int rc;
    sim_scenario *s = load_str(y, &rc, err, sizeof err);
    CU_ASSERT_EQUAL_FATAL(rc, MESH_OK);
    for (int i = 0; i < SIM_SCN_MAX_SETS; i++) {
        snprintf(path, sizeof path, "traffic.%d.interval", i);
        CU_ASSERT_EQUAL_FATAL(sim_scenario_set(s, path, "2s", err, sizeof err), MESH_OK);
    }
    CU_ASSERT_EQUAL(s->traffic[SIM_SCN_MAX_SETS - 1].interval, S(2));
    snprintf(path, sizeof path, "traffic.%d.interval", SIM_SCN_MAX_SETS);
    CU_ASSERT_EQUAL(sim_scenario_set(s, path, "2s", err, sizeof err), MESH_ERR_LIMIT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "too many overrides"));
    /* replacing an existing override is still allowed */
    CU_ASSERT_EQUAL(sim_scenario_set(s, "traffic.0.interval", "3s", err, sizeof err), MESH_OK);
    CU_ASSERT_EQUAL(s->traffic[0].interval, S(3));
    sim_scenario_free(s);
    free(y);
}

static void test_limits(void)
{
    char err[SIM_SCN_ERR_MAX];
    int rc;
    /* too many groups: the error points at the first one past the limit */
    size_t cap = 64 + (size_t)(SIM_SCN_MAX_GROUPS + 1) * 40;
    char *y = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    size_t o = (size_t)snprintf(y, cap, "name: t\nduration: 1m\ngroups:\n");
    for (int i = 0; i <= SIM_SCN_MAX_GROUPS; i++)
        o += (size_t)snprintf(y + o, cap - o, "  - {name: g%d, count: 1}\n", i);
    sim_scenario *s = load_str(y, &rc, err, sizeof err);
    CU_ASSERT_EQUAL(rc, MESH_ERR_LIMIT);
    CU_ASSERT_PTR_NULL(s);
    char want[128];
    snprintf(want, sizeof want, "t.yaml:%d:5: too many items in groups (limit %d)",
             4 + SIM_SCN_MAX_GROUPS, SIM_SCN_MAX_GROUPS);
    if (strncmp(err, want, strlen(want)))
        fprintf(stderr, "%s\n", err);
    CU_ASSERT_EQUAL(strncmp(err, want, strlen(want)), 0);
    free(y);

    /* too many nodes over all groups */
    s = load_str("name: t\nduration: 1m\ngroups:\n  - {name: a, count: 60000}\n  - {name: b, "
                 "count: 60000}\n",
                 &rc, err, sizeof err);
    CU_ASSERT_EQUAL(rc, MESH_ERR_LIMIT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "t.yaml:4:3: too many nodes: 120000 (limit 100000)"));

    /* nesting depth */
    char deep[256];
    o = (size_t)snprintf(deep, sizeof deep, "name: t\nx: ");
    for (int i = 0; i <= SIM_SCN_MAX_DEPTH; i++)
        deep[o++] = '[';
    deep[o] = '\0';
    s = load_str(deep, &rc, err, sizeof err);
    CU_ASSERT_EQUAL(rc, MESH_ERR_LIMIT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "nesting deeper than"));
    CU_ASSERT_EQUAL(strncmp(err, "t.yaml:2:", 9), 0);

    /* file size */
    size_t big = (size_t)SIM_SCN_MAX_FILE + 1;
    char *huge = malloc(big);
    CU_ASSERT_PTR_NOT_NULL_FATAL(huge);
    memset(huge, '#', big);
    s = NULL;
    rc = sim_scenario_load_mem(&s, "big.yaml", huge, big, err, sizeof err);
    CU_ASSERT_EQUAL(rc, MESH_ERR_TOO_BIG);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_EQUAL(strncmp(err, "big.yaml: file is", 17), 0);
    free(huge);

    /* too many YAML nodes (a long flat list inside the size limit) */
    cap = (size_t)SIM_SCN_MAX_YAML_NODES * 3 + 64;
    y = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    o = (size_t)snprintf(y, cap, "name: t\nx: [");
    for (int i = 0; i <= SIM_SCN_MAX_YAML_NODES; i++)
        o += (size_t)snprintf(y + o, cap - o, "1,");
    snprintf(y + o, cap - o, "1]\n");
    s = load_str(y, &rc, err, sizeof err);
    CU_ASSERT_EQUAL(rc, MESH_ERR_LIMIT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "too many YAML nodes"));
    free(y);

    /* a group's ALPN list and SNI within what the node's TLS layer takes */
    s = load_str("name: t\nduration: 1m\ngroups: [{name: a, count: 1, tls: {alpn: [p1, p2, p3, "
                 "p4, p5, p6, p7, p8, p9]}}]\n",
                 &rc, err, sizeof err);
    CU_ASSERT_EQUAL(rc, MESH_ERR_LIMIT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "t.yaml:3:75: too many items in groups[0].tls.alpn (limit "
                                       "8)"));
    char sni[512];
    snprintf(sni, sizeof sni,
             "name: t\nduration: 1m\ngroups: [{name: a, count: 1, tls: {sni: %0254d}}]\n", 0);
    s = load_str(sni, &rc, err, sizeof err);
    CU_ASSERT_EQUAL(rc, MESH_ERR_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "out of range for groups[0].tls.sni"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "1 to 253 characters"));
    /* rules per censor: the censor model's SIM_CENSOR_MAX_RULES */
    cap = 256 + (size_t)(SIM_SCN_MAX_RULES + 1) * 64;
    y = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    o = (size_t)snprintf(y, cap,
                         "name: t\nduration: 1m\ngroups: [{name: a, count: 1}]\nnetwork:\n"
                         "  censors:\n    - name: c\n      in_front_of: a\n      rules:\n");
    for (int i = 0; i <= SIM_SCN_MAX_RULES; i++)
        o += (size_t)snprintf(y + o, cap - o, "        - {match: {dst_port: %d}, action: drop}\n",
                              i);
    s = load_str(y, &rc, err, sizeof err);
    CU_ASSERT_EQUAL(rc, MESH_ERR_LIMIT);
    snprintf(want, sizeof want,
             "t.yaml:%d:11: too many items in network.censors[0].rules (limit 64)",
             9 + SIM_SCN_MAX_RULES);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
    free(y);

    /* a file that cannot be opened */
    rc = sim_scenario_load(&s, "/nonexistent/scenario.yaml", err, sizeof err);
    CU_ASSERT_EQUAL(rc, MESH_ERR_IO);
    CU_ASSERT_EQUAL(strncmp(err, "/nonexistent/scenario.yaml: cannot open", 39), 0);

    /* a tiny error buffer is cut, never overrun */
    char tiny[8];
    memset(tiny, 'x', sizeof tiny);
    s = load_str("name: t\nduration: fast\n", &rc, tiny, 6);
    CU_ASSERT_EQUAL(rc, MESH_ERR_MALFORMED);
    CU_ASSERT_STRING_EQUAL(tiny, "t.yam");
    CU_ASSERT_EQUAL(tiny[6], 'x');
    /* no error buffer at all */
    s = load_str("name: t\nduration: fast\n", &rc, NULL, 0);
    CU_ASSERT_EQUAL(rc, MESH_ERR_MALFORMED);
}

/* A scenario path that is not a regular file is refused from its type, before any read: a
 * FIFO once made `meshara-sim check` wait forever for a writer. */
static void test_file_types(void)
{
    char dir[] = "/tmp/mesh_scn_XXXXXX", fifo[64], err[SIM_SCN_ERR_MAX];
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    snprintf(fifo, sizeof fifo, "%s/s.yaml", dir);
    CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
    sim_scenario *s = NULL;
    alarm(10); /* a regression blocks in open or read: fail instead of hanging */
    int rc = sim_scenario_load(&s, fifo, err, sizeof err);
    alarm(0);
    CU_ASSERT_EQUAL(rc, MESH_ERR_IO);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "s.yaml: is a FIFO (named pipe), not a scenario file"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "save the stream to a file first"));
    rc = sim_scenario_load(&s, dir, err, sizeof err);
    CU_ASSERT_EQUAL(rc, MESH_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, ": is a directory, not a scenario file"));
    rc = sim_scenario_load(&s, "/dev/null", err, sizeof err);
    CU_ASSERT_EQUAL(rc, MESH_ERR_IO);
    CU_ASSERT_STRING_EQUAL(strstr(err, "/dev/null: is a character device") ? "yes" : err, "yes");
    unlink(fifo);
    rmdir(dir);
}

/* sim_scenario_check on a struct edited by hand (what a sweep tool might do). */
static void test_check_hand_edits(void)
{
    char err[SIM_SCN_ERR_MAX];
    int rc;
    sim_scenario *s = load_str(FULL, &rc, err, sizeof err);
    CU_ASSERT_EQUAL_FATAL(rc, MESH_OK);
    sim_scn_event *e = (sim_scn_event *)&s->events[1];
    mesh_time heal = e->heal_at;
    e->heal_at = e->at;
    CU_ASSERT_EQUAL(sim_scenario_check(s, err, sizeof err), MESH_ERR_MALFORMED);
    CU_ASSERT_EQUAL(strncmp(err, "t.yaml:70:5: partition heals at 180s", 36), 0);
    e->heal_at = heal;
    sim_scn_group *g = (sim_scn_group *)&s->groups[0];
    g->count = 0;
    CU_ASSERT_NOT_EQUAL(sim_scenario_check(s, err, sizeof err), MESH_OK);
    g->count = 2;
    CU_ASSERT_EQUAL(sim_scenario_check(s, err, sizeof err), MESH_OK);
    CU_ASSERT_EQUAL(sim_scenario_check(NULL, err, sizeof err), MESH_ERR_INVAL);
    sim_scenario_free(s);
}

static void test_names(void)
{
    CU_ASSERT_STRING_EQUAL(sim_scn_op_name(SIM_SCN_OP_GE), ">=");
    CU_ASSERT_STRING_EQUAL(sim_scn_nat_behaviour_name(SIM_SCN_NAT_ADDRESS_PORT_DEPENDENT),
                           "address-and-port-dependent");
    CU_ASSERT_STRING_EQUAL(sim_scn_action_name(SIM_SCN_ACT_THROTTLE), "throttle");
    CU_ASSERT_STRING_EQUAL(sim_scn_event_kind_name(SIM_SCN_EV_PARTITION), "partition");
    CU_ASSERT_STRING_EQUAL(sim_scn_event_kind_name(99), "?");
}

static CU_TestInfo tests[] = {
    {"full example decodes to the expected values", test_full_example},
    {"scenarios/default.yaml loads: 100 nodes, 30% NATed, SNI censor", test_default_scenario},
    {"every full example in docs/scenarios.md loads", test_docs_examples},
    {"units convert exactly", test_units},
    {"YAML syntax errors with line:column", test_syntax_errors},
    {"schema errors: unknown key, unit, range, type, missing, reference, duplicate",
     test_schema_errors},
    {"semantic errors from sim_scenario_check", test_semantic_errors},
    {"--set overrides", test_set},
    {"--set errors name --set and change nothing", test_set_errors},
    {"--set override limit", test_set_limit},
    {"named limits", test_limits},
    {"check after hand edits", test_check_hand_edits},
    {"a FIFO, a directory, a device: refused by type, no read", test_file_types},
    {"names", test_names},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"scenario", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
