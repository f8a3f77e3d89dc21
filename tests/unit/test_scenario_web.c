/* test_scenario_web.c — the scenario keys of the web profile's names and fingerprints
 * (sim/scenario_decode.c, scenario_network.c): a group's host_name template expands per node
 * and a list gives one name per node; names that are not DNS host names, a list of the wrong
 * length, an unknown or repeated background kind and a ja3 that is neither an MD5 nor a word
 * are refused at FILE:LINE:COL; a censor's background defaults to OpenSSL and curl. */
#include "mesh_test.h"

#include <stdio.h>
#include <string.h>

#include "sim/scenario.h"

static sim_scenario *load(const char *groups, const char *censor, int *rc, char *err, size_t n)
{
    char y[2048];
    snprintf(y, sizeof y, "name: t\nduration: 1m\n%s%s\ngroups:\n%s\n",
             censor ? "network:\n  censors:\n" : "", censor ? censor : "", groups);
    sim_scenario *s = NULL;
    *rc = sim_scenario_load_mem(&s, "t.yaml", y, strlen(y), err, n);
    return s;
}

/* The scenario is refused as malformed, the message containing what. */
static void expect_refused(const char *groups, const char *censor, const char *what)
{
    char err[SIM_SCN_ERR_MAX] = "";
    int rc;
    sim_scenario *s = load(groups, censor, &rc, err, sizeof err);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_EQUAL(rc, MESH_ERR_MALFORMED);
    if (!strstr(err, what))
        fprintf(stderr, "expected '%s' in: %s\n", what, err);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, what));
    sim_scenario_free(s);
}

static void test_host_names(void)
{
    char err[SIM_SCN_ERR_MAX] = "", name[300];
    int rc;
    sim_scenario *s = load("  - {name: a, count: 12, host_name: \"n{index}.example.net\"}\n"
                           "  - {name: b, count: 2, host_name: [x.example.org, y.example.org]}\n"
                           "  - {name: c, count: 1}",
                           NULL, &rc, err, sizeof err);
    if (rc != MESH_OK)
        fprintf(stderr, "%s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, MESH_OK);
    CU_ASSERT_EQUAL(sim_scn_group_host_name(&s->groups[0], 0, name, sizeof name), MESH_OK);
    CU_ASSERT_STRING_EQUAL(name, "n0.example.net");
    CU_ASSERT_EQUAL(sim_scn_group_host_name(&s->groups[0], 11, name, sizeof name), MESH_OK);
    CU_ASSERT_STRING_EQUAL(name, "n11.example.net");
    CU_ASSERT_EQUAL(sim_scn_group_host_name(&s->groups[0], 11, name, 8), MESH_ERR_TOO_BIG);
    CU_ASSERT_EQUAL(sim_scn_group_host_name(&s->groups[1], 1, name, sizeof name), MESH_OK);
    CU_ASSERT_STRING_EQUAL(name, "y.example.org");
    CU_ASSERT_EQUAL(sim_scn_group_host_name(&s->groups[2], 0, name, sizeof name), MESH_OK);
    CU_ASSERT_STRING_EQUAL(name, "");
    sim_scenario_free(s);

    static const struct {
        const char *groups, *where;
    } bad[] = {
        {"  - {name: a, count: 2, host_name: \"n_{index}.example\"}", "t.yaml:5:36: groups[0]."
                                                                      "host_name: \"n_0.example\""},
        {"  - {name: a, count: 2, host_name: \"10.0.0.{index}\"}",
         "t.yaml:5:36: groups[0].host_name: \"10.0.0.0\" is not"},
        {"  - {name: a, count: 2, host_name: [a.example, -b.example]}", "t.yaml:5:48: groups[0]."
                                                                        "host_name[1]"},
        {"  - {name: a, count: 3, host_name: [a.example, b.example]}", "2 names for 3 nodes"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect_refused(bad[i].groups, NULL, bad[i].where);
}

static void test_background_and_ja3(void)
{
    char err[SIM_SCN_ERR_MAX] = "";
    int rc;
    const char *g = "  - {name: a, count: 1}";
    sim_scenario *s =
        load(g,
             "    - {name: c, in_front_of: a, rules: [{match: {ja3: meshara-web}, action: rst}]}\n"
             "    - {name: d, in_front_of: a, background: [curl-ip], rules: [{match: {ja3: "
             "meshara-web-ip}, action: rst}]}\n"
             "    - {name: e, in_front_of: a, background: [], rules: [{match: {ja3: "
             "0149F47EABF9A20D0893E2A44E5A6323}, action: rst}]}",
             &rc, err, sizeof err);
    if (rc != MESH_OK)
        fprintf(stderr, "%s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, MESH_OK);
    CU_ASSERT_EQUAL(s->censors[0].background, SIM_SCN_BG_DEFAULT);
    CU_ASSERT_EQUAL(s->censors[0].background, 1u << SIM_SCN_BG_OPENSSL | 1u << SIM_SCN_BG_CURL);
    CU_ASSERT_STRING_EQUAL(s->censors[0].rules[0].ja3, SIM_SCN_JA3_WEB);
    CU_ASSERT_EQUAL(s->censors[1].background, 1u << SIM_SCN_BG_CURL_IP);
    CU_ASSERT_STRING_EQUAL(s->censors[1].rules[0].ja3, SIM_SCN_JA3_WEB_IP);
    CU_ASSERT_EQUAL(s->censors[2].background, 0);
    CU_ASSERT_STRING_EQUAL(s->censors[2].rules[0].ja3, "0149f47eabf9a20d0893e2a44e5a6323");
    sim_scenario_free(s);

    static const struct {
        const char *censor, *what;
    } bad[] = {
        {"    - {name: c, in_front_of: a, background: [wget], rules: [{match: {sni: x}, action: "
         "rst}]}",
         "t.yaml:5:46: bad value \"wget\""},
        {"    - {name: c, in_front_of: a, background: [curl, curl], rules: [{match: {sni: x}, "
         "action: rst}]}",
         "curl given twice"},
        {"    - {name: c, in_front_of: a, rules: [{match: {ja3: meshara-seed}, action: rst}]}",
         "or meshara-web"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect_refused(g, bad[i].censor, bad[i].what);
}

static CU_TestInfo tests[] = {
    {"host_name: a template per node, a list, DNS syntax", test_host_names},
    {"background kinds and the node's own JA3 words", test_background_and_ja3},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"scenario_web", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
