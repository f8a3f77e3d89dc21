/* test_portmap.c — the real driver's port-mapping adapter (node/real/portmap.h) against a fake
 * gateway on loopback: real libnatpmp and miniupnpc code, real sockets, no root.
 *
 *   adapter (driver loop + UPnP worker thread) ── NAT-PMP ──▶ fake NAT-PMP server, UDP
 *                                              │              127.a.b.c:5351 (random per run)
 *                                              └── HTTP ────▶ fake IGD, TCP 127.0.0.1:port
 *                                                             (cfg.igd_url: no SSDP)
 *
 * Both fakes (tests/common/fake_gateway.h) run on the driver's own loop through the env and answer
 * what each test scripts: good answers (mapped address, another external port, a shorter
 * lease), result codes and SOAP faults, private "external" addresses (double NAT), garbage,
 * silence. The answers the core gets must be the named errors of env.h, within the bounds,
 * never from inside request(), and a released or superseded request is never answered.
 * The SSDP discovery and a real miniupnpd are tests/netns/test_nat_portmap.sh's part.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fake_gateway.h"
#include "mesh_test.h"
#include "real/driver.h"
#include "real/portmap.h"

enum {
    PORT = 7000,
    NP_MS = 400,    /* the adapter's NAT-PMP bound in these tests */
    UPNP_MS = 1500, /* its UPnP job bound */
    LOGS = 256,
};

#define MS(x) ((mesh_time)(x)*MESH_NS_PER_MS)

/* ---- the world: driver, log, the answer -------------------------------------------------- */

static struct world {
    mesh_real *r;
    mesh_env env;
    char logs[LOGS][320];
    int nlogs;
    int answers; /* callbacks so far */
    int result;
    mesh_addr ext;
    uint32_t lease;
} W;

static void sink(void *ud, int level, mesh_time now, const char *msg)
{
    (void)ud;
    (void)now;
    snprintf(W.logs[W.nlogs % LOGS], sizeof W.logs[0], "%s", msg);
    W.nlogs++;
    if (getenv("MESH_TEST_LOG"))
        fprintf(stderr, "%d %s\n", level, msg);
}

static int logged(const char *needle)
{
    for (int i = 0; i < W.nlogs && i < LOGS; i++)
        if (strstr(W.logs[i], needle))
            return 1;
    return 0;
}

static void on_answer(int result, const mesh_addr *ext, uint32_t lease, void *ud)
{
    CU_ASSERT_PTR_EQUAL(ud, &W);
    CU_ASSERT_EQUAL(result == MESH_OK, ext != NULL);
    W.answers++;
    W.result = result;
    W.lease = lease;
    memset(&W.ext, 0, sizeof W.ext);
    if (ext)
        W.ext = *ext;
}

/* Run the loop until *flag reaches want or max_ms passed. Returns the ms it took. */
static mesh_time run_until(const int *flag, int want, unsigned max_ms)
{
    mesh_time t0 = mesh_env_now(&W.env);
    while (*flag < want && mesh_env_now(&W.env) - t0 < MS(max_ms))
        mesh_real_run_for(W.r, MS(5));
    return (mesh_env_now(&W.env) - t0) / MESH_NS_PER_MS;
}

static void run_ms(unsigned ms)
{
    int never = 0;
    run_until(&never, 1, ms);
}

/* ---- the fake gateway (tests/common/fake_gateway.h) --------------------------------------- */

static fake_natpmp NP;
static fake_igd IGD;
static uint8_t GW[4]; /* the fake NAT-PMP server's address: 127.x.y.z, random per run */

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* Bind the fake NAT-PMP server on a random 127.x.y.z:5351 (another run may hold one). */
static void np_start(void)
{
    srand((unsigned)getpid() ^ (unsigned)mesh_env_now(&W.env));
    for (int i = 0; i < 20 && !NP.d; i++) {
        GW[0] = 127;
        GW[1] = (uint8_t)(100 + rand() % 100);
        GW[2] = (uint8_t)(rand() % 256);
        GW[3] = (uint8_t)(2 + rand() % 250);
        mesh_addr a = {.family = MESH_AF_INET4, .port = FAKE_NATPMP_PORT};
        memcpy(a.ip, GW, 4);
        (void)fake_natpmp_start(&NP, &W.env, &a);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(NP.d);
}

/* ---- setup ------------------------------------------------------------------------------- */

enum { NO_NATPMP = 1, NO_UPNP = 2 };

/* A fresh driver, both fakes, the adapter (flags: NO_NATPMP / NO_UPNP). */
static void setup(int flags)
{
    memset(&W, 0, sizeof W);
    memset(&NP, 0, sizeof NP);
    memset(&IGD, 0, sizeof IGD);
    mesh_real_config rc;
    mesh_real_config_default(&rc);
    rc.log_sink = sink;
    rc.log_level = MESH_LOG_DEBUG;
    CU_ASSERT_EQUAL_FATAL(mesh_real_new(&W.r, NULL, &rc), MESH_OK);
    W.env = mesh_real_env(W.r);
    np_start();
    NP.pub[0] = 11, NP.pub[1] = 250, NP.pub[2] = 42, NP.pub[3] = 7;
    mesh_addr la;
    CU_ASSERT_FATAL(mesh_addr_parse(&la, "127.0.0.1:0") == MESH_OK);
    CU_ASSERT_EQUAL_FATAL(fake_igd_start(&IGD, &W.env, &la), MESH_OK);
    IGD.ext_ip = "11.250.42.7";
    IGD.entry_client = "127.0.0.1";
    IGD.entry_port = PORT;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/rootDesc.xml", IGD.port);
    mesh_real_portmap_cfg pc = {.no_natpmp = !!(flags & NO_NATPMP),
                                .no_upnp = !!(flags & NO_UPNP),
                                .igd_url = url,
                                .natpmp_ms = NP_MS,
                                .upnp_timeout_ms = UPNP_MS};
    memcpy(pc.natpmp_gateway, GW, 4);
    CU_ASSERT_EQUAL_FATAL(mesh_real_portmap_attach(W.r, &pc), MESH_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(W.env.ops->portmap);
}

/* Release what the test left mapped while the fakes can still answer (they run on the loop
 * being freed), then free. test_free_deletes covers a free with mappings held. */
static void teardown(void)
{
    if (W.env.ops->portmap->release(W.env.obj, 1, PORT) == MESH_OK)
        run_ms(200);
    mesh_real_free(W.r);
    W.r = NULL;
}

/* Request a TCP mapping of PORT for lease_s and wait for the answer (bounded). Checks that
 * nothing is answered from inside request(). Returns the result. */
static int map_port(uint32_t lease_s, unsigned max_ms)
{
    int before = W.answers;
    CU_ASSERT_EQUAL(W.env.ops->portmap->request(W.env.obj, 1, PORT, lease_s, on_answer, &W),
                    MESH_OK);
    CU_ASSERT_EQUAL(W.answers, before); /* env rule 1 */
    run_until(&W.answers, before + 1, max_ms);
    CU_ASSERT_EQUAL(W.answers, before + 1);
    return W.answers == before + 1 ? W.result : MESH_ERR_INTERNAL;
}

static int ext_is(const char *text)
{
    mesh_addr a;
    return mesh_addr_parse(&a, text) == MESH_OK && mesh_addr_equal(&a, &W.ext);
}

/* ---- NAT-PMP ----------------------------------------------------------------------------- */

static void test_natpmp_maps(void)
{
    setup(NO_UPNP);
    NP.give_port = 7001; /* the gateway gives another port and a shorter lease */
    NP.give_life = 120;
    CU_ASSERT_EQUAL(map_port(3600, 2000), MESH_OK);
    CU_ASSERT(ext_is("11.250.42.7:7001"));
    CU_ASSERT_EQUAL(W.lease, 120);
    CU_ASSERT_EQUAL(NP.addr_reqs, 1);
    CU_ASSERT_EQUAL(NP.map_reqs, 1);
    CU_ASSERT_EQUAL(NP.last_int, PORT);
    CU_ASSERT_EQUAL(NP.last_ext, PORT);
    CU_ASSERT_EQUAL(NP.last_life, 3600);
    CU_ASSERT(logged("portmap: TCP 7000 mapped to 11.250.42.7:7001 by NAT-PMP, lease 120 s"));
    /* the renewal asks for the external port it holds */
    CU_ASSERT_EQUAL(map_port(3600, 2000), MESH_OK);
    CU_ASSERT_EQUAL(NP.last_ext, 7001);
    CU_ASSERT_EQUAL(IGD.gets, 0);
    /* release: lifetime 0, in the background */
    CU_ASSERT_EQUAL(W.env.ops->portmap->release(W.env.obj, 1, PORT), MESH_OK);
    run_until(&NP.del_reqs, 1, 2000);
    CU_ASSERT_EQUAL(NP.del_reqs, 1);
    CU_ASSERT_EQUAL(NP.last_int, PORT);
    CU_ASSERT_EQUAL(NP.last_life, 0);
    run_ms(50);
    CU_ASSERT(logged("portmap: TCP 7000 unmapped by NAT-PMP"));
    CU_ASSERT_EQUAL(W.env.ops->portmap->release(W.env.obj, 1, PORT), MESH_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(W.answers, 2);
    teardown();
}

typedef struct np_case {
    const char *what;
    uint16_t addr_result, map_result;
    uint8_t pub0;
    int drop, garbage, other_port, life0;
    int want;
} np_case;

/* Every answer a NAT-PMP gateway can give that is not a mapping: a named error, within the
 * bound; the adapter goes on serving (the next case runs on the same driver). */
static void test_natpmp_errors(void)
{
    static const np_case cases[] = {
        {"not authorized", 2, 0, 11, 0, 0, 0, 0, MESH_ERR_REFUSED},
        {"network failure", 3, 0, 11, 0, 0, 0, 0, MESH_ERR_UNREACHABLE},
        {"mapping: out of resources", 0, 4, 11, 0, 0, 0, 0, MESH_ERR_REFUSED},
        {"mapping: not authorized", 0, 2, 11, 0, 0, 0, 0, MESH_ERR_REFUSED},
        {"mapping: undefined result", 0, 77, 11, 0, 0, 0, 0, MESH_ERR_PROTOCOL},
        {"private public address", 0, 0, 10, 0, 0, 0, 0, MESH_ERR_UNREACHABLE},
        {"shared (CGN) public address", 0, 0, 100, 0, 0, 0, 0, MESH_ERR_UNREACHABLE},
        {"lifetime 0 for a mapping", 0, 0, 11, 0, 0, 0, 1, MESH_ERR_PROTOCOL},
        {"answers about another port", 0, 0, 11, 0, 0, 1, 0, MESH_ERR_PROTOCOL},
        {"garbage", 0, 0, 11, 0, 1, 0, 0, MESH_ERR_PROTOCOL},
        {"silence", 0, 0, 11, 1, 0, 0, 0, MESH_ERR_UNSUPPORTED},
    };
    setup(NO_UPNP);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const np_case *k = &cases[i];
        NP.addr_result = k->addr_result;
        NP.map_result = k->map_result;
        NP.pub[0] = k->pub0;
        NP.pub[1] = k->pub0 == 100 ? 64 : 250;
        NP.drop = k->drop;
        NP.garbage = k->garbage;
        NP.other_port = k->other_port;
        NP.life0 = k->life0;
        mesh_time t0 = mesh_env_now(&W.env);
        int rc = map_port(3600, 3 * NP_MS + 1000);
        mesh_time took = (mesh_env_now(&W.env) - t0) / MESH_NS_PER_MS;
        if (rc != k->want)
            fprintf(stderr, "case '%s': %s, expected %s\n", k->what, mesh_errname(rc),
                    mesh_errname(k->want));
        CU_ASSERT_EQUAL(rc, k->want);
        CU_ASSERT(took < 2 * NP_MS + 500); /* two exchanges at most, each bounded */
    }
    CU_ASSERT(logged("double NAT"));
    CU_ASSERT(logged("result 2: not authorized"));
    CU_ASSERT_EQUAL(IGD.gets, 0);
    /* after all that, a good gateway still gets through */
    NP.drop = NP.garbage = NP.other_port = NP.life0 = 0;
    NP.addr_result = NP.map_result = 0;
    NP.pub[0] = 11, NP.pub[1] = 250;
    CU_ASSERT_EQUAL(map_port(3600, 2000), MESH_OK);
    CU_ASSERT(ext_is("11.250.42.7:7000"));
    teardown();
}

/* A gateway that answers ICMP port unreachable: "no NAT-PMP" at once, not after the bound. */
static void test_natpmp_port_unreachable(void)
{
    setup(NO_UPNP);
    fake_natpmp_stop(&NP);
    mesh_time t0 = mesh_env_now(&W.env);
    CU_ASSERT_EQUAL(map_port(3600, 2000), MESH_ERR_UNSUPPORTED);
    CU_ASSERT((mesh_env_now(&W.env) - t0) < MS(NP_MS));
    CU_ASSERT(logged("does not speak NAT-PMP"));
    teardown();
}

/* ---- UPnP -------------------------------------------------------------------------------- */

static void test_upnp_maps(void)
{
    setup(NO_NATPMP);
    IGD.entry_lease = "600"; /* the gateway keeps it for less than asked */
    CU_ASSERT_EQUAL(map_port(3600, UPNP_MS + 1000), MESH_OK);
    CU_ASSERT(ext_is("11.250.42.7:7000"));
    CU_ASSERT_EQUAL(W.lease, 600);
    CU_ASSERT_EQUAL(IGD.add_calls, 1);
    CU_ASSERT_STRING_EQUAL(IGD.add_ext[0], "7000");
    CU_ASSERT_STRING_EQUAL(IGD.add_lease[0], "3600");
    CU_ASSERT_EQUAL(IGD.entry_calls, 1);
    CU_ASSERT(logged("portmap: TCP 7000 mapped to 11.250.42.7:7000 by UPnP, lease 600 s"));
    /* a renewal goes to the IGD found before (no second description fetch) */
    CU_ASSERT_EQUAL(map_port(3600, UPNP_MS + 1000), MESH_OK);
    CU_ASSERT_EQUAL(IGD.gets, 1);
    CU_ASSERT_EQUAL(IGD.add_calls, 2);
    CU_ASSERT_EQUAL(W.env.ops->portmap->release(W.env.obj, 1, PORT), MESH_OK);
    run_until(&IGD.del_calls, 1, UPNP_MS + 1000);
    CU_ASSERT_STRING_EQUAL(IGD.del_ext, "7000");
    CU_ASSERT_EQUAL(NP.addr_reqs, 0);
    teardown();
}

typedef struct upnp_case {
    const char *what;
    const char *ext_ip;
    int add_err[5];
    const char *entry_client;
    int bad_desc;
    int want;
    int adds; /* AddPortMapping calls expected */
} upnp_case;

static void test_upnp_errors(void)
{
    static const upnp_case cases[] = {
        {"606 not authorized", "11.250.42.7", {606}, "127.0.0.1", 0, MESH_ERR_REFUSED, 1},
        {"501 action failed", "11.250.42.7", {501}, "127.0.0.1", 0, MESH_ERR_REFUSED, 1},
        {"718 on every port",
         "11.250.42.7",
         {718, 718, 718, 718},
         "127.0.0.1",
         0,
         MESH_ERR_EXISTS,
         4},
        {"private external", "192.168.1.1", {0}, "127.0.0.1", 0, MESH_ERR_UNREACHABLE, 0},
        {"no external address", "", {0}, "127.0.0.1", 0, MESH_ERR_UNREACHABLE, 0},
        {"external not an address", "yes-sir", {0}, "127.0.0.1", 0, MESH_ERR_PROTOCOL, 0},
        {"no external element", NULL, {0}, "127.0.0.1", 0, MESH_ERR_PROTOCOL, 0},
        {"garbage for AddPortMapping", "11.250.42.7", {-1}, NULL, 0, MESH_ERR_PROTOCOL, 1},
        {"mapped for someone else", "11.250.42.7", {0}, "127.0.0.9", 0, MESH_ERR_PROTOCOL, 1},
        {"a description with no WAN service",
         "11.250.42.7",
         {0},
         "127.0.0.1",
         1,
         MESH_ERR_PROTOCOL,
         0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const upnp_case *k = &cases[i];
        setup(NO_NATPMP);
        IGD.ext_ip = k->ext_ip;
        memcpy(IGD.add_err, k->add_err, sizeof k->add_err);
        IGD.entry_client = k->entry_client;
        IGD.bad_desc = k->bad_desc;
        int rc = map_port(3600, UPNP_MS + 1000);
        if (rc != k->want)
            fprintf(stderr, "case '%s': %s, expected %s\n", k->what, mesh_errname(rc),
                    mesh_errname(k->want));
        CU_ASSERT_EQUAL(rc, k->want);
        CU_ASSERT_EQUAL(IGD.add_calls, k->adds);
        teardown();
    }
}

/* 725: the gateway has only permanent leases: asked again with 0, reported as no expiry.
 * 718 then success: another external port, the one reported. */
static void test_upnp_lease_and_conflict(void)
{
    setup(NO_NATPMP);
    IGD.add_err[0] = 725;
    CU_ASSERT_EQUAL(map_port(3600, UPNP_MS + 1000), MESH_OK);
    CU_ASSERT_EQUAL(W.lease, 0);
    CU_ASSERT_STRING_EQUAL(IGD.add_lease[0], "3600");
    CU_ASSERT_STRING_EQUAL(IGD.add_lease[1], "0");
    teardown();

    setup(NO_NATPMP);
    IGD.add_err[0] = 718;
    CU_ASSERT_EQUAL(map_port(3600, UPNP_MS + 1000), MESH_OK);
    CU_ASSERT_EQUAL(IGD.add_calls, 2);
    unsigned alt = (unsigned)strtoul(IGD.add_ext[1], NULL, 10);
    CU_ASSERT(alt >= 1024 && alt <= 65535);
    CU_ASSERT_EQUAL(W.ext.port, alt);
    /* renewal keeps the port it got */
    CU_ASSERT_EQUAL(map_port(3600, UPNP_MS + 1000), MESH_OK);
    CU_ASSERT_EQUAL((unsigned)strtoul(IGD.add_ext[2], NULL, 10), alt);
    teardown();
}

/* An IGD that accepts and never answers: MESH_ERR_TIMEOUT at the bound; the job's late
 * failure changes nothing; the worker is free again afterwards. */
static void test_upnp_silent(void)
{
    setup(NO_NATPMP);
    IGD.silent = 1;
    mesh_time t0 = mesh_env_now(&W.env);
    CU_ASSERT_EQUAL(map_port(3600, UPNP_MS + 2000), MESH_ERR_TIMEOUT);
    mesh_time took = (mesh_env_now(&W.env) - t0) / MESH_NS_PER_MS;
    CU_ASSERT(took >= UPNP_MS - 50 && took < UPNP_MS + 500);
    IGD.silent = 0;
    fake_igd_release_held(&IGD, 0); /* the worker's HTTP request ends (reset) */
    CU_ASSERT_EQUAL(map_port(3600, UPNP_MS + 1000), MESH_OK);
    CU_ASSERT_EQUAL(W.answers, 2);
    teardown();
}

/* Released while its request runs: never answered, and the mapping made meanwhile is removed
 * after it. Superseded by a second request: only the second is answered. */
static void test_release_and_supersede(void)
{
    setup(NO_NATPMP);
    IGD.hold_entry = 1;
    CU_ASSERT_EQUAL(W.env.ops->portmap->request(W.env.obj, 1, PORT, 3600, on_answer, &W), MESH_OK);
    run_until(&IGD.entry_calls, 1, UPNP_MS);
    CU_ASSERT_EQUAL(IGD.add_calls, 1);
    CU_ASSERT_EQUAL(W.env.ops->portmap->release(W.env.obj, 1, PORT), MESH_OK);
    fake_igd_release_held(&IGD, 1);
    run_until(&IGD.del_calls, 1, UPNP_MS + 1000);
    CU_ASSERT_EQUAL(IGD.del_calls, 1);
    run_ms(50);
    CU_ASSERT_EQUAL(W.answers, 0);
    teardown();

    setup(NO_UPNP);
    static int first;
    first = 0;
    CU_ASSERT_EQUAL(W.env.ops->portmap->request(W.env.obj, 1, PORT, 3600, on_answer, &first),
                    MESH_OK);
    CU_ASSERT_EQUAL(map_port(1800, 2000), MESH_OK);
    run_ms(100);
    CU_ASSERT_EQUAL(W.answers, 1);
    CU_ASSERT_EQUAL(NP.map_reqs, 1);
    CU_ASSERT_EQUAL(NP.last_life, 1800);
    teardown();
}

/* Both methods: NAT-PMP first; a silent NAT-PMP falls back to UPnP, and the renewal then
 * tries UPnP first. Both refusing: the log names both. A double NAT seen by NAT-PMP is not
 * asked again of UPnP. */
static void test_order_and_fallback(void)
{
    setup(0);
    NP.drop = 1;
    CU_ASSERT_EQUAL(map_port(3600, NP_MS + UPNP_MS + 1000), MESH_OK);
    CU_ASSERT(logged("by UPnP"));
    int asked = NP.addr_reqs; /* the first try and its retransmissions */
    CU_ASSERT(asked >= 1 && asked <= 3);
    CU_ASSERT_EQUAL(map_port(3600, UPNP_MS + 1000), MESH_OK);
    CU_ASSERT_EQUAL(NP.addr_reqs, asked); /* UPnP answered: NAT-PMP not asked */
    teardown();

    setup(0);
    NP.addr_result = 2;
    IGD.add_err[0] = 606;
    CU_ASSERT_EQUAL(map_port(3600, NP_MS + UPNP_MS + 1000), MESH_ERR_REFUSED);
    CU_ASSERT(logged("no mapping: MESH_ERR_REFUSED (NAT-PMP: MESH_ERR_REFUSED"));
    CU_ASSERT(logged("UPnP: MESH_ERR_REFUSED (AddPortMapping: UPnP error 606"));
    teardown();

    setup(0);
    NP.pub[0] = 10;
    CU_ASSERT_EQUAL(map_port(3600, NP_MS + UPNP_MS + 1000), MESH_ERR_UNREACHABLE);
    CU_ASSERT_EQUAL(IGD.gets, 0);
    teardown();
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Freeing the driver while the worker is stuck in a request returns within the join bound
 * (the worker is left to finish, and frees its own state when the reset reaches it). */
static void test_free_while_stuck(void)
{
    setup(NO_NATPMP);
    IGD.silent = 1;
    CU_ASSERT_EQUAL(W.env.ops->portmap->request(W.env.obj, 1, PORT, 3600, on_answer, &W), MESH_OK);
    run_until(&IGD.holds, 1, UPNP_MS);
    CU_ASSERT_EQUAL_FATAL(IGD.holds, 1);
    uint64_t t0 = mono_ms();
    teardown();
    uint64_t took = mono_ms() - t0;
    CU_ASSERT(took >= MESH_REAL_PORTMAP_JOIN_MS - 100 && took < MESH_REAL_PORTMAP_JOIN_MS + 1000);
    CU_ASSERT_EQUAL(W.answers, 0);
    usleep(300 * 1000); /* let the abandoned worker see its reset and free itself */
}

/* A plain socket standing in for the gateway once the driver (and its fakes) are gone. */
static int plain_socket(int type, const uint8_t ip[4], uint16_t port)
{
    int fd = socket(AF_INET, type, 0);
    CU_ASSERT_FATAL(fd >= 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    memcpy(&sin.sin_addr, ip, 4);
    CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0);
    if (type == SOCK_STREAM)
        CU_ASSERT_FATAL(listen(fd, 4) == 0);
    struct timeval tv = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Freeing the driver with mappings held deletes them: NAT-PMP sends lifetime 0 without
 * waiting; the UPnP worker sends DeletePortMapping to the IGD it knows (here answered only
 * after the free gave up waiting for it: the worker finishes on its own). */
static void test_free_deletes(void)
{
    setup(NO_UPNP);
    CU_ASSERT_EQUAL(map_port(3600, 2000), MESH_OK);
    fake_natpmp_stop(&NP);
    int u = plain_socket(SOCK_DGRAM, GW, FAKE_NATPMP_PORT);
    mesh_real_free(W.r);
    uint8_t b[64];
    ssize_t n = recv(u, b, sizeof b, 0);
    CU_ASSERT_EQUAL(n, 12);
    if (n == 12) {
        CU_ASSERT_EQUAL(b[1], 2); /* TCP mapping */
        CU_ASSERT_EQUAL(get16(b + 4), PORT);
        CU_ASSERT_EQUAL(b[8] | b[9] | b[10] | b[11], 0); /* lifetime 0 */
    }
    close(u);

    setup(NO_NATPMP);
    CU_ASSERT_EQUAL(map_port(3600, UPNP_MS + 1000), MESH_OK);
    fake_igd_stop(&IGD);
    uint8_t lo[4] = {127, 0, 0, 1};
    int l = plain_socket(SOCK_STREAM, lo, IGD.port);
    mesh_real_free(W.r);
    int c = accept(l, NULL, NULL);
    CU_ASSERT_FATAL(c >= 0);
    struct timeval tv = {.tv_sec = 3};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char req[4096] = "";
    size_t got = 0;
    while (got < sizeof req - 1 && !strstr(req, "</s:Envelope>")) {
        n = recv(c, req + got, sizeof req - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        req[got] = '\0';
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(req, "#DeletePortMapping"));
    CU_ASSERT_PTR_NOT_NULL(strstr(req, "<NewExternalPort>7000</NewExternalPort>"));
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    CU_ASSERT_EQUAL(send(c, ok, sizeof ok - 1, MSG_NOSIGNAL), (ssize_t)(sizeof ok - 1));
    close(c);
    close(l);
    usleep(300 * 1000); /* the worker reads the answer and frees itself */
}

static void test_bad_arguments(void)
{
    CU_ASSERT_EQUAL(mesh_real_portmap_attach(NULL, NULL), MESH_ERR_INVAL);
    setup(0);
    mesh_real_portmap_cfg both_off = {.no_natpmp = 1, .no_upnp = 1};
    CU_ASSERT_EQUAL(mesh_real_portmap_attach(W.r, &both_off), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_real_portmap_attach(W.r, NULL), MESH_ERR_EXISTS);
    const mesh_portmap_ops *ops = W.env.ops->portmap;
    CU_ASSERT_EQUAL(ops->request(W.env.obj, 1, 0, 60, on_answer, &W), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(ops->request(W.env.obj, 1, PORT, 60, NULL, &W), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(ops->release(W.env.obj, 1, PORT), MESH_ERR_NOT_FOUND);
    for (int i = 0; i < MESH_REAL_PORTMAP_MAX; i++)
        CU_ASSERT_EQUAL(ops->request(W.env.obj, i % 2, (uint16_t)(8000 + i), 60, on_answer, &W),
                        MESH_OK);
    CU_ASSERT_EQUAL(ops->request(W.env.obj, 1, 9999, 60, on_answer, &W), MESH_ERR_LIMIT);
    /* the same (protocol, port) again is a renewal, not a new entry */
    CU_ASSERT_EQUAL(ops->request(W.env.obj, 0, 8000, 60, on_answer, &W), MESH_OK);
    CU_ASSERT_EQUAL(ops->release(W.env.obj, 0, 8000), MESH_OK);
    CU_ASSERT_EQUAL(ops->request(W.env.obj, 1, 9999, 60, on_answer, &W), MESH_OK);
    teardown(); /* with 16 requests queued and nothing mapped */
}

static CU_TestInfo portmap_tests[] = {
    {"NAT-PMP: mapped (other port, shorter lease), renewed, released", test_natpmp_maps},
    {"NAT-PMP: result codes, double NAT, garbage, silence", test_natpmp_errors},
    {"NAT-PMP: port unreachable is 'no NAT-PMP' at once", test_natpmp_port_unreachable},
    {"UPnP: mapped, verified, renewed, deleted", test_upnp_maps},
    {"UPnP: faults, double NAT, nonsense answers", test_upnp_errors},
    {"UPnP: 725 permanent only, 718 another port", test_upnp_lease_and_conflict},
    {"UPnP: a silent IGD times out, the worker recovers", test_upnp_silent},
    {"release during a request; a request superseded", test_release_and_supersede},
    {"NAT-PMP first, UPnP fallback, errors named", test_order_and_fallback},
    {"free while the worker is stuck", test_free_while_stuck},
    {"free deletes the mappings held", test_free_deletes},
    {"bad arguments and the entry limit", test_bad_arguments},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"real portmap", NULL, NULL, NULL, NULL, portmap_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
