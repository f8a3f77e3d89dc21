/* test_reach.c — the reachability state (node/core/reach.h): agreement of distinct observers,
 * liars, expiry, the port mapping, relays and STUN's behaviour, families apart.
 */
#include "mesh_test.h"

#include <stdio.h>
#include <string.h>

#include "core/reach.h"
#include "core/stun_client.h"

#define SEC(x) ((mesh_time)(x)*MESH_NS_PER_S)
#define IP4(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((c) << 8) | (d))

static const mesh_addr LOCAL = {MESH_AF_INET4, 50000, {10, 0, 0, 2}};

static mesh_addr v4(uint32_t ip, uint16_t port)
{
    return mesh_addr_v4(ip, port);
}

/* Observer number k (key k) at 198.51.k.1 — each in its own /24 — saw `seen`. */
static int claim(mesh_reach *r, mesh_time at, int k, mesh_addr seen)
{
    uint8_t id[32] = {0};
    id[0] = (uint8_t)k;
    id[1] = (uint8_t)(k >> 8);
    mesh_addr peer = v4(IP4(198, 51, k & 0xff, 1 + (k >> 8)), 7000);
    return mesh_reach_observed(r, at, id, sizeof id, &peer, &LOCAL, &seen);
}

static mesh_node_reach view(mesh_reach *r)
{
    mesh_node_reach v;
    mesh_reach_get(r, MESH_AF_INET4, &v);
    return v;
}

static mesh_reach *fresh(void)
{
    mesh_reach *r = NULL;
    mesh_reach_cfg cfg = {.port = 7000};
    CU_ASSERT_EQUAL_FATAL(mesh_reach_new(&r, &cfg), MESH_OK);
    return r;
}

/* One observer alone changes nothing, however often and whatever it says; the second
 * distinct one that agrees makes it NAT at the address both saw. */
static void test_one_observer_is_not_enough(void)
{
    mesh_reach *r = fresh();
    for (int i = 0; i < 100; i++)
        CU_ASSERT_EQUAL(claim(r, SEC(i), 1, v4(IP4(203, 0, 113, i % 7), 40000 + i)), 0);
    CU_ASSERT_EQUAL(view(r).state, MESH_NODE_REACH_UNKNOWN);
    CU_ASSERT_EQUAL(view(r).claims, 100);
    CU_ASSERT_EQUAL(view(r).changes, 0);
    /* a second observer agrees with the first one's latest claim (203.0.113.1) */
    CU_ASSERT_EQUAL(claim(r, SEC(200), 2, v4(IP4(203, 0, 113, 1), 40001)), 1);
    mesh_node_reach v = view(r);
    CU_ASSERT_EQUAL(v.state, MESH_NODE_REACH_NAT);
    CU_ASSERT_EQUAL(v.observers, 2);
    mesh_addr want = v4(IP4(203, 0, 113, 1), 40001);
    CU_ASSERT(mesh_addr_equal(&v.external, &want));
    CU_ASSERT_EQUAL(v.changes, 1);
    mesh_reach_free(r);
}

/* Many keys from one /24 (one host or subnet) count as one observer. */
static void test_sybils_in_one_group(void)
{
    mesh_reach *r = fresh();
    uint8_t id[32] = {0};
    mesh_addr liar = v4(IP4(203, 0, 113, 66), 1);
    for (int k = 0; k < 50; k++) {
        id[0] = (uint8_t)k;
        mesh_addr peer = v4(IP4(192, 0, 2, 1 + k), 7000); /* one /24 */
        CU_ASSERT_EQUAL(mesh_reach_observed(r, SEC(k), id, sizeof id, &peer, &LOCAL, &liar), 0);
    }
    CU_ASSERT_EQUAL(view(r).state, MESH_NODE_REACH_UNKNOWN);
    mesh_reach_free(r);
}

/* Once believed, a minority cannot move it; a tie keeps it (no flapping); a real majority
 * (the NAT's address changed) does. */
static void test_liars_and_majority(void)
{
    mesh_reach *r = fresh();
    mesh_addr x = v4(IP4(203, 0, 113, 7), 40000), y = v4(IP4(233, 252, 0, 9), 40000);
    claim(r, SEC(1), 1, x);
    claim(r, SEC(2), 2, x);
    CU_ASSERT_EQUAL(view(r).state, MESH_NODE_REACH_NAT);
    CU_ASSERT_EQUAL(claim(r, SEC(3), 3, y), 0); /* one liar */
    CU_ASSERT_EQUAL(claim(r, SEC(4), 4, y), 0); /* two liars: a tie, x stays */
    CU_ASSERT_EQUAL(view(r).external.ip[3], 7);
    CU_ASSERT_EQUAL(view(r).observers, 2);
    /* an observer repeating itself does not count twice */
    CU_ASSERT_EQUAL(claim(r, SEC(5), 4, y), 0);
    CU_ASSERT_EQUAL(view(r).changes, 1);
    /* an honest observer switching to y makes y the majority (3 to 1) */
    CU_ASSERT_EQUAL(claim(r, SEC(6), 2, y), 1);
    CU_ASSERT_EQUAL(view(r).external.ip[3], 9);
    CU_ASSERT_EQUAL(view(r).observers, 3);
    mesh_reach_free(r);
}

/* Seen at our own local address: PUBLIC, with our listening port. */
static void test_public(void)
{
    mesh_reach *r = fresh();
    mesh_addr self = LOCAL;
    claim(r, SEC(1), 1, self);
    CU_ASSERT_EQUAL(claim(r, SEC(2), 2, self), 1);
    mesh_node_reach v = view(r);
    CU_ASSERT_EQUAL(v.state, MESH_NODE_REACH_PUBLIC);
    mesh_addr want = LOCAL;
    want.port = 7000;
    CU_ASSERT(mesh_addr_equal(&v.external, &want));
    /* public beats a mapping (a gateway that maps although we are not behind it) */
    mesh_addr ext = v4(IP4(203, 0, 113, 7), 7000);
    CU_ASSERT_EQUAL(mesh_reach_portmap(r, MESH_OK, &ext), 0);
    CU_ASSERT_EQUAL(view(r).state, MESH_NODE_REACH_PUBLIC);
    mesh_reach_free(r);
}

/* Claims expire after the ttl; nothing agreed is left. */
static void test_expiry(void)
{
    mesh_reach *r = fresh();
    mesh_addr x = v4(IP4(203, 0, 113, 7), 40000);
    claim(r, SEC(1), 1, x);
    claim(r, SEC(100), 2, x);
    CU_ASSERT_EQUAL(mesh_reach_expire(r, SEC(1) + MESH_REACH_DEFAULT_TTL), 0);
    CU_ASSERT_EQUAL(view(r).state, MESH_NODE_REACH_NAT);
    CU_ASSERT_EQUAL(mesh_reach_expire(r, SEC(2) + MESH_REACH_DEFAULT_TTL), 1); /* 1 left */
    CU_ASSERT_EQUAL(view(r).state, MESH_NODE_REACH_UNKNOWN);
    CU_ASSERT_EQUAL(view(r).external.family, MESH_AF_NONE);
    mesh_reach_free(r);
}

/* Mapping, relay, STUN behaviour, and what each gives way to. */
static void test_mapping_relay_behaviour(void)
{
    mesh_reach *r = fresh();
    CU_ASSERT_EQUAL(mesh_reach_behaviour(r, MESH_AF_INET4,
                                         MESH_STUN_BEHAVIOUR_ADDRESS_PORT_DEPENDENT,
                                         MESH_STUN_BEHAVIOUR_ADDRESS_PORT_DEPENDENT),
                    1);
    mesh_node_reach v = view(r);
    CU_ASSERT_EQUAL(v.state, MESH_NODE_REACH_NAT);
    CU_ASSERT_EQUAL(v.nat_mapping, 4);
    CU_ASSERT_EQUAL(v.nat_filtering, 4);
    CU_ASSERT_EQUAL(mesh_reach_relayed(r, MESH_AF_INET4, 1), 1);
    CU_ASSERT_EQUAL(view(r).state, MESH_NODE_REACH_RELAYED);
    mesh_addr ext = v4(IP4(203, 0, 113, 7), 7000);
    CU_ASSERT_EQUAL(mesh_reach_portmap(r, MESH_OK, &ext), 1);
    v = view(r);
    CU_ASSERT_EQUAL(v.state, MESH_NODE_REACH_MAPPED);
    CU_ASSERT(mesh_addr_equal(&v.external, &ext));
    CU_ASSERT_EQUAL(mesh_reach_portmap(r, MESH_ERR_REFUSED, NULL), 1);
    CU_ASSERT_EQUAL(view(r).state, MESH_NODE_REACH_RELAYED);
    CU_ASSERT_EQUAL(mesh_reach_relayed(r, MESH_AF_INET4, 0), 1);
    CU_ASSERT_EQUAL(view(r).state, MESH_NODE_REACH_NAT);
    mesh_reach_free(r);
}

/* IPv6 claims never touch IPv4; the table stays bounded under many observers; bad input. */
static void test_families_bounds_input(void)
{
    mesh_reach *r = fresh();
    mesh_addr l6, p6, o6;
    CU_ASSERT_EQUAL_FATAL(mesh_addr_parse(&l6, "[2001:db8::2]:50000"), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_addr_parse(&o6, "[2001:db8::2]:50000"), MESH_OK);
    for (int k = 0; k < 2; k++) {
        char t[64];
        snprintf(t, sizeof t, "[2001:db8:%d::1]:7000", k + 1);
        CU_ASSERT_EQUAL_FATAL(mesh_addr_parse(&p6, t), MESH_OK);
        uint8_t id[8] = {(uint8_t)k};
        mesh_reach_observed(r, SEC(1), id, sizeof id, &p6, &l6, &o6);
    }
    mesh_node_reach v6;
    mesh_reach_get(r, MESH_AF_INET6, &v6);
    CU_ASSERT_EQUAL(v6.state, MESH_NODE_REACH_PUBLIC);
    CU_ASSERT_EQUAL(view(r).state, MESH_NODE_REACH_UNKNOWN);
    /* 1000 observers, each with another address: bounded, and no agreement */
    for (int k = 0; k < 1000; k++)
        claim(r, SEC(2), k, v4(IP4(203, 0, (k >> 8) & 0xff, k & 0xff), 1));
    CU_ASSERT_EQUAL(view(r).state, MESH_NODE_REACH_UNKNOWN);
    CU_ASSERT_EQUAL(view(r).claims, 1000);
    uint8_t id[8] = {0};
    CU_ASSERT_EQUAL(mesh_reach_observed(r, 0, id, 4, &LOCAL, &LOCAL, &LOCAL), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_reach_observed(r, 0, id, 8, &p6, &LOCAL, &LOCAL), MESH_ERR_INVAL);
    mesh_addr none = {0};
    CU_ASSERT_EQUAL(mesh_reach_observed(r, 0, id, 8, &none, &none, &none), MESH_ERR_INVAL);
    mesh_reach_free(r);
    mesh_reach_free(NULL);
}

static CU_TestInfo state_tests[] = {
    {"one observer is not enough", test_one_observer_is_not_enough},
    {"many keys in one /24 count once", test_sybils_in_one_group},
    {"liars, ties and a real majority", test_liars_and_majority},
    {"public", test_public},
    {"expiry", test_expiry},
    {"mapping, relay, STUN behaviour", test_mapping_relay_behaviour},
    {"families, bounds, bad input", test_families_bounds_input},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"reach_state", NULL, NULL, NULL, NULL, state_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
