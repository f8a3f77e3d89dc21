/* test_runner.c — the runner's checks and its end (sim/runner*.c): sim_run_check refuses, with
 * the element's FILE:LINE:COL, what the loader accepts but the simulator cannot build (port
 * mapping on a carrier NAT, `probe`, a rule the censor model refuses, too many middleboxes at
 * one point, an `expect:` on no summary figure), and sim_run refuses it the same way before
 * any database exists; a --db that is not a results database is refused before anything is
 * built and left as it was; a run stopped early ends `interrupted`, never `running`; the
 * summary records every name it prints; NATs in series and per-node routers are built (the
 * addresses, the double NAT's port mapping) and their chains are what sim_nat_pair_paths
 * takes; a bootstrap node's host name is the SNI of a node's first hello to it. */
#include "mesh_test.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim/runner.h"
#include "sim/runner_int.h"
#include "sim/scenario.h"

static char tmpdir[] = "/tmp/mesh_runner_XXXXXX";

static int suite_init(void)
{
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int suite_clean(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *tmp(const char *name)
{
    static char buf[4][256];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", tmpdir, name);
    return buf[i];
}

static sim_scenario *load(const char *yaml)
{
    char err[SIM_SCN_ERR_MAX];
    sim_scenario *s = NULL;
    int rc = sim_scenario_load_mem(&s, "r.yaml", yaml, strlen(yaml), err, sizeof err);
    if (rc != MESH_OK)
        fprintf(stderr, "load: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, MESH_OK);
    return s;
}

typedef struct check_case {
    const char *yaml;
    int rc;
    const char *where, *phrase, *hint;
} check_case;

static const check_case CASES[] = {
    {"name: t\nduration: 1m\nnetwork:\n  lans: [{name: isp, private: true, nat: {type: "
     "symmetric, upnp: true}}]\ngroups:\n  - {name: a, count: 2, placement: isp, nat: "
     "full-cone}\n",
     MESH_ERR_UNSUPPORTED, "r.yaml:4:10: ",
     "LAN 'isp' has NATs behind it ('a'), so its NAT is a carrier NAT, which offers no UPnP",
     "port mapping is the home routers'"},
    {"name: t\nduration: 1m\nnetwork:\n  lans:\n    - {name: isp, private: true, nat: {type: "
     "symmetric, natpmp: true}}\n    - {name: flat, private: true, upstream: isp}\n"
     "groups: [{name: a, count: 2}]\n",
     MESH_ERR_UNSUPPORTED, "r.yaml:5:7: ", "('flat'), so its NAT is a carrier NAT", NULL},
    {"name: t\nduration: 1m\ngroups: [{name: a, count: 2}]\nnetwork:\n  censors:\n    - name: gfw\n"
     "      in_front_of: a\n      rules:\n        - {match: {sni: x}, action: drop}\n"
     "        - {name: active, match: {sni: y}, action: probe}\n",
     MESH_ERR_UNSUPPORTED, "r.yaml:10:11: ",
     "rule 'active' of censor 'gfw': action probe (active probing) is not modelled yet",
     "use drop, rst or throttle"},
    {"name: t\nduration: 1m\ngroups: [{name: a, count: 2}]\nnetwork:\n  censors: [{name: c, "
     "in_front_of: a, rules: [{match: {alpn: a-protocol-name-longer-than-32-bytes}, action: "
     "drop}]}]\n",
     MESH_ERR_MALFORMED, "r.yaml:5:47: ",
     "rule 'rule0' of censor 'c' cannot be built: ALPN protocol longer than 32 bytes", NULL},
    {"name: t\nduration: 1m\ngroups: [{name: a, count: 2}]\nnetwork:\n  censors: [{name: c, "
     "in_front_of: a, rules: [{match: {sni: \"*.\"}, action: drop}]}]\n",
     MESH_ERR_MALFORMED, "r.yaml:5:47: ", "cannot be built: empty SNI", NULL},
    {"name: t\nduration: 1m\ngroups: [{name: a, count: 2}]\nexpect:\n"
     "  - {summary: delivery_ratio, op: \">=\", value: 0.5}\n"
     "  - {summary: latency.p99_ms, op: \"<=\", value: 800}\n",
     MESH_ERR_MALFORMED, "r.yaml:6:5: ", "unknown summary figure 'latency.p99_ms' in expect[1]",
     "did you mean 'delivery_latency_p99_ms'?"},
    {"name: t\nduration: 1m\ngroups: [{name: a, count: 2}]\nexpect:\n"
     "  - {summary: delivery_ration, op: \">=\", value: 0.5}\n",
     MESH_ERR_MALFORMED, "r.yaml:5:5: ", "unknown summary figure 'delivery_ration'",
     "did you mean 'delivery_ratio'?"},
    {"name: t\nduration: 1m\ngroups: [{name: a, count: 2}]\nevents:\n"
     "  - {at: 1s, partition: {targets: [a]}}\n  - {at: 2s, partition: {targets: [a]}}\n"
     "  - {at: 3s, partition: {targets: [a]}}\n  - {at: 4s, partition: {targets: [a]}}\n"
     "  - {at: 5s, partition: {targets: [a]}}\n  - {at: 6s, partition: {targets: [a]}}\n"
     "  - {at: 7s, partition: {targets: [a]}}\n  - {at: 8s, partition: {targets: [a]}}\n"
     "  - {at: 9s, partition: {targets: [a]}}\n",
     MESH_ERR_LIMIT, "r.yaml:3:10: ",
     "each node of group 'a' sits behind 9 middleboxes (censors in front of it, partitions "
     "over it)",
     "SIM_MBOX_MAX_PER_POINT"},
};

static void test_check(void)
{
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        const check_case *c = &CASES[i];
        sim_scenario *s = load(c->yaml);
        char err[SIM_SCN_ERR_MAX] = "";
        int rc = sim_run_check(s, err, sizeof err);
        int ok = rc == c->rc && !strncmp(err, c->where, strlen(c->where)) &&
                 strstr(err, c->phrase) && strstr(err, "(hint: ") &&
                 (!c->hint || strstr(err, c->hint));
        if (!ok)
            fprintf(stderr, "case %zu: rc %d, want %d: \"%s\"\n", i, rc, c->rc, err);
        CU_ASSERT_TRUE(ok);
        /* sim_run says the same before anything exists: no database is created */
        char rerr[SIM_SCN_ERR_MAX] = "";
        unlink(tmp("refused.db"));
        sim_run_opts opts = {.db_path = tmp("refused.db"), .quiet = 1};
        CU_ASSERT_EQUAL(sim_run(s, &opts, NULL, rerr, sizeof rerr), c->rc);
        CU_ASSERT_STRING_EQUAL(rerr, err);
        CU_ASSERT_NOT_EQUAL(access(tmp("refused.db"), F_OK), 0);
        sim_scenario_free(s);
    }
    /* what the simulator builds passes, the default scenario included */
    sim_scenario *s = load("name: t\nduration: 1m\ngroups: [{name: a, count: 2}]\nexpect:\n"
                           "  - {summary: delivery_latency_p99_ms, op: \"<=\", value: 800}\n");
    CU_ASSERT_EQUAL(sim_run_check(s, NULL, 0), MESH_OK);
    sim_scenario_free(s);
    const char *src = getenv("MESH_SOURCE_DIR");
    char path[1024], err[SIM_SCN_ERR_MAX];
    snprintf(path, sizeof path, "%s/scenarios/default.yaml", src ? src : ".");
    CU_ASSERT_EQUAL_FATAL(sim_scenario_load(&s, path, err, sizeof err), MESH_OK);
    CU_ASSERT_EQUAL(sim_run_check(s, err, sizeof err), MESH_OK);
    sim_scenario_free(s);
    CU_ASSERT_EQUAL(sim_run_check(NULL, NULL, 0), MESH_ERR_INVAL);
}

static const char TINY[] = "name: tiny\nduration: 20s\ngroups:\n"
                           "  - {name: boot, count: 1, role: bootstrap}\n"
                           "  - {name: peers, count: 3, join: {spread: [1s, 3s]}}\n"
                           "traffic: [{from: peers, to: peers, size: 1KiB, interval: 2s}]\n"
                           "expect: [{summary: nodes, op: \"==\", value: 4}]\n";

static void query_text(const char *db_path, const char *sql, char *out, size_t cap)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    out[0] = '\0';
    CU_ASSERT_EQUAL_FATAL(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
            snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
}

/* A --db that is not a results database: refused before the world is built, file intact;
 * replaced with force. */
static void test_db_refused(void)
{
    const char *path = tmp("notes.txt");
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("my notes\n", f);
    fclose(f);
    sim_scenario *s = load(TINY);
    FILE *devnull = fopen("/dev/null", "w");
    char err[512];
    sim_run_opts opts = {.db_path = path, .quiet = 1, .out = devnull};
    sim_run_result res = {0};
    CU_ASSERT_EQUAL(sim_run(s, &opts, &res, err, sizeof err), MESH_ERR_EXISTS);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "notes.txt: exists and is not a Meshara results database"));
    CU_ASSERT_EQUAL(res.events, 0); /* nothing ran */
    char text[64];
    f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_PTR_NOT_NULL(fgets(text, sizeof text, f));
    fclose(f);
    CU_ASSERT_STRING_EQUAL(text, "my notes\n");
    opts.force = 1;
    int rc = sim_run(s, &opts, &res, err, sizeof err);
    if (rc != MESH_OK)
        fprintf(stderr, "%s\n", err);
    CU_ASSERT_EQUAL(rc, MESH_OK);
    query_text(path, "SELECT status FROM runs", text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "ok");
    fclose(devnull);
    sim_scenario_free(s);
}

/* Stopped early (as by Ctrl-C): the runs row says `interrupted` with the time reached. */
static void test_interrupted(void)
{
    sim_scenario *s = load(TINY);
    FILE *devnull = fopen("/dev/null", "w");
    static volatile sig_atomic_t stop = 1;
    char err[512];
    const char *path = tmp("int.db");
    sim_run_opts opts = {.db_path = path, .quiet = 1, .out = devnull, .stop = &stop};
    CU_ASSERT_EQUAL(sim_run(s, &opts, NULL, err, sizeof err), MESH_ERR_STATE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "interrupted at 0.1s of 20.0s virtual"));
    char text[64];
    query_text(path, "SELECT status || ' ' || end_ns FROM runs", text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "interrupted 100000000");
    fclose(devnull);
    sim_scenario_free(s);
}

/* Every summary figure printed is recorded, and every recorded one is a name sim_run_check
 * accepts in an expect: (one table feeds both). */
static void on_summary(void *ud, const char *name, double value)
{
    (void)value;
    char *names = ud;
    strcat(names, name);
    strcat(names, " ");
}

static void test_summary_names(void)
{
    sim_scenario *s = load(TINY);
    FILE *devnull = fopen("/dev/null", "w");
    static char names[8192];
    names[0] = '\0';
    sim_run_opts opts = {.quiet = 1, .out = devnull, .on_summary = on_summary, .summary_ud = names};
    sim_run_result res = {0};
    CU_ASSERT_EQUAL_FATAL(sim_run(s, &opts, &res, NULL, 0), MESH_OK);
    CU_ASSERT_EQUAL(res.expects_failed, 0);
    fclose(devnull);
    sim_scenario_free(s);
    int n = 0;
    for (char *w = strtok(names, " "); w; w = strtok(NULL, " "), n++) {
        char y[256];
        snprintf(y, sizeof y,
                 "name: t\nduration: 1m\ngroups: [{name: a, count: 2}]\nexpect: [{summary: %s, "
                 "op: \">=\", value: 0}]\n",
                 w);
        sim_scenario *e = load(y);
        CU_ASSERT_EQUAL(sim_run_check(e, NULL, 0), MESH_OK);
        sim_scenario_free(e);
    }
    CU_ASSERT_EQUAL(n, 58);
}

/* NATs in series and routers in front of single nodes, built: a tenant behind two NATs asks
 * its own router (NAT-PMP) through the node's port mapping, whose external address is the
 * carrier's inside (double NAT: the driver says MESH_ERR_UNREACHABLE, an events row, never
 * reachable); a router on a public ISP LAN with UPnP maps its node's port and the two
 * bootstrap nodes' dial-back confirms it: reachable at that public address, learnt from the
 * node; the chains the run is built from are what sim_nat_pair_paths takes. */
static const char CHAINS[] = "name: chains\nduration: 20s\nnetwork:\n  lans:\n"
                             "    - {name: isp, private: true, nat: symmetric}\n"
                             "    - {name: flat, private: true, upstream: isp, nat: {type: "
                             "full-cone, natpmp: true}}\n"
                             "    - {name: dsl}\n"
                             "groups:\n  - {name: boot, count: 2, role: bootstrap}\n"
                             "  - {name: tenants, count: 2, placement: flat, join: 1s}\n"
                             "  - {name: homes, count: 2, placement: isp, nat: "
                             "port-restricted-cone, join: 1s}\n"
                             "  - {name: upnp_homes, count: 2, placement: dsl, nat: {type: "
                             "full-cone, upnp: true}, join: 1s}\n";

static void test_nat_chains(void)
{
    sim_scenario *s = load(CHAINS);
    CU_ASSERT_EQUAL(sim_run_check(s, NULL, 0), MESH_OK);
    sim_nat_chain c;
    rn_group_nat_chain(s, 0, &c);
    CU_ASSERT_EQUAL(c.n, 0);
    rn_group_nat_chain(s, 1, &c); /* tenants: flat's NAT, then the carrier's */
    CU_ASSERT_EQUAL_FATAL(c.n, 2);
    CU_ASSERT_EQUAL(c.hop[0].services, SIM_NAT_SVC_NATPMP);
    CU_ASSERT_EQUAL(c.hop[1].mapping, SIM_NAT_ADDRESS_PORT_DEPENDENT);
    sim_nat_chain tenants = c, homes, upnp;
    rn_group_nat_chain(s, 2, &homes);
    CU_ASSERT_EQUAL_FATAL(homes.n, 2);
    CU_ASSERT_EQUAL(homes.hop[0].filtering, SIM_NAT_ADDRESS_PORT_DEPENDENT);
    rn_group_nat_chain(s, 3, &upnp);
    CU_ASSERT_EQUAL_FATAL(upnp.n, 1);
    CU_ASSERT_EQUAL(upnp.hop[0].services, SIM_NAT_SVC_UPNP);
    CU_ASSERT(sim_nat_pair_paths(&tenants, &upnp) & SIM_NAT_PATH_MAPPED);
    CU_ASSERT_FALSE(sim_nat_pair_paths(&upnp, &tenants) & SIM_NAT_PATH_MAPPED);
    FILE *devnull = fopen("/dev/null", "w");
    const char *path = tmp("chains.db");
    sim_run_opts opts = {.db_path = path, .quiet = 1, .out = devnull};
    char err[512];
    int rc = sim_run(s, &opts, NULL, err, sizeof err);
    if (rc != MESH_OK)
        fprintf(stderr, "%s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, MESH_OK);
    char text[1024];
    query_text(path,
               "SELECT count(*) || ' ' || min(detail) FROM events WHERE kind = 'nat' AND detail "
               "LIKE '%double NAT%'",
               text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "2 reason=MESH_ERR_UNREACHABLE port mapping behind another "
                                 "NAT (double NAT)");
    query_text(path,
               "SELECT group_concat(detail, ';') FROM events WHERE kind = 'node_up' AND "
               "detail LIKE 'started%'",
               text, sizeof text);
    /* boot 11.0.0.1 and .2; tenants and homes seen as the carrier's 12.0.0.1; the routers on
     * dsl got the public host addresses after boot's: not reachable until confirmed */
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "started reachable=1 public=11.0.0.1:443"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "started reachable=0 public=12.0.0.1:443"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "started reachable=0 public=11.0.0.3:"));
    query_text(path,
               "SELECT count(*) || ' ' || group_concat(detail, ';') FROM events WHERE kind = "
               "'nat' AND detail LIKE 'reachable at %'",
               text, sizeof text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "2 reachable at 11.0.0.3:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "reachable at 11.0.0.4:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "(confirmed by dial-back)"));
    query_text(path, "SELECT value FROM summary WHERE name = 'nodes_reachable'", text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "4.0");
    fclose(devnull);
    sim_scenario_free(s);
}

/* role: stun — ordinary nodes (they join, send and receive like the others) recorded with
 * their role; their STUN servers are built beside them (sim/stun_host.h has their test). */
static void test_stun_role(void)
{
    sim_scenario *s = load("name: stun\nduration: 20s\ngroups:\n"
                           "  - {name: boot, count: 1, role: bootstrap}\n"
                           "  - {name: stun, count: 2, role: stun}\n"
                           "  - {name: peers, count: 2, join: 1s}\n"
                           "traffic: [{from: peers, to: stun, size: 1KiB, interval: 2s}]\n");
    FILE *devnull = fopen("/dev/null", "w");
    char err[512], text[64];
    const char *path = tmp("stun.db");
    sim_run_opts opts = {.db_path = path, .quiet = 1, .out = devnull, .force = 1};
    int rc = sim_run(s, &opts, NULL, err, sizeof err);
    if (rc != MESH_OK)
        fprintf(stderr, "%s\n", err);
    CU_ASSERT_EQUAL(rc, MESH_OK);
    query_text(path, "SELECT group_concat(role) FROM (SELECT role FROM nodes ORDER BY node)", text,
               sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "bootstrap,stun,stun,normal,normal");
    query_text(path, "SELECT value FROM summary WHERE name = 'delivery_ratio'", text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "1.0");
    fclose(devnull);
    sim_scenario_free(s);
}

/* Run the scenario yaml; every one of its expect: lines must hold. */
static void run_expecting(const char *yaml)
{
    sim_scenario *s = load(yaml);
    FILE *devnull = fopen("/dev/null", "w");
    sim_run_opts opts = {.quiet = 1, .out = devnull};
    sim_run_result res = {0};
    CU_ASSERT_EQUAL_FATAL(sim_run(s, &opts, &res, NULL, 0), MESH_OK);
    CU_ASSERT_EQUAL(res.expects_failed, 0);
    fclose(devnull);
    sim_scenario_free(s);
}

/* A bootstrap entry carries its node's host name (mesh_node_peer.host_name), so a web-profile
 * node's very first hello names the server: a censor that resets that name keeps the node
 * from joining; without a name the same rule never fires. */
static void run_boot_sni(const char *boot_name, const char *expects)
{
    char y[1024];
    snprintf(y, sizeof y,
             "name: boot-sni\nduration: 20s\nnetwork:\n  censors:\n    - {name: dpi, in_front_of: "
             "[c], rules: [{name: boot-sni, match: {sni: boot0.example.net}, action: rst}]}\n"
             "groups:\n  - {name: boot, count: 1, role: bootstrap%s}\n"
             "  - {name: c, count: 2, join: 1s}\nexpect:\n%s",
             boot_name, expects);
    run_expecting(y);
}

static void test_boot_sni(void)
{
    run_boot_sni(", host_name: \"boot{index}.example.net\"",
                 "  - {summary: censor_meshara_blocked, op: \">=\", value: 2}\n"
                 "  - {summary: nodes_joined, op: \"<=\", value: 1}\n");
    run_boot_sni("", "  - {summary: censor_meshara_blocked, op: \"<=\", value: 0}\n"
                     "  - {summary: nodes_joined, op: \">=\", value: 3}\n");
}

/* Messages sent while their receiver is cut off (a partition) or down (churn) count as
 * unreachable; delivery_ratio_reachable leaves them out, delivery_ratio does not. Traffic
 * from two a nodes to b every second from 5 s; b cut off from 20 s to the end (60 s): 2 x 40
 * messages sent to it cut off, none delivered; the 2 x 15 before all are. */
static void test_unreachable_receivers(void)
{
    static const char Y[] =
        "name: unreach\nduration: 60s\n"
        "groups:\n  - {name: boot, count: 1, role: bootstrap}\n"
        "  - {name: a, count: 2, join: 1s}\n  - {name: b, count: 2, join: 1s}\n"
        "events:\n  - {at: 20s, partition: {targets: [b]}}\n"
        "traffic:\n  - {name: t, from: a, to: b, size: 1KiB, interval: 1s, start: 5s}\n"
        "expect:\n"
        "  - {summary: messages_unreachable, op: \">=\", value: 76}\n"
        "  - {summary: messages_unreachable, op: \"<=\", value: 84}\n"
        "  - {summary: delivery_ratio, op: \"<=\", value: 0.5}\n"
        "  - {summary: delivery_ratio_reachable, op: \">=\", value: 0.99}\n";
    run_expecting(Y);
}

static CU_TestInfo tests[] = {
    {"sim_run_check refuses what cannot be built, with position; sim_run the same", test_check},
    {"a --db that is not a results database: refused before building; --force", test_db_refused},
    {"a stopped run ends 'interrupted', not 'running'", test_interrupted},
    {"summary names: what a run records is what expect: may name", test_summary_names},
    {"NATs in series and per-node routers are built", test_nat_chains},
    {"role: stun nodes run and are recorded", test_stun_role},
    {"a bootstrap entry's host name is the first hello's SNI", test_boot_sni},
    {"messages to receivers cut off or down: unreachable, apart in the ratio",
     test_unreachable_receivers},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"runner", suite_init, suite_clean, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
