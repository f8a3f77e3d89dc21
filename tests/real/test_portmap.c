/* test_portmap.c — the real driver's port-mapping adapter (node/real/portmap.h) against a fake
 * gateway on loopback: real libnatpmp and miniupnpc code, real sockets, no root.
 *
 *   adapter (driver loop + UPnP worker thread) ── NAT-PMP ──▶ fake NAT-PMP server, UDP
 *                                              │              127.a.b.c:5351 (random per run)
 *                                              └── HTTP ────▶ fake IGD, TCP 127.0.0.1:port
 *                                                             (cfg.igd_url: no SSDP)
 *
 * Both fakes run on the driver's own loop through the env (dgram and stream ops) and answer
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

#include "mesh_test.h"
#include "real/driver.h"
#include "real/portmap.h"

enum {
    NP_PORT = 5351,
    PORT = 7000,
    NP_MS = 400,    /* the adapter's NAT-PMP bound in these tests */
    UPNP_MS = 1500, /* its UPnP job bound */
    CONNS = 16,
    HTTP_MAX = 16384,
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

/* ---- fake NAT-PMP server ---------------------------------------------------------------- */

static struct np_fake {
    mesh_dgram *d;
    uint8_t gw[4];
    /* script */
    int drop;       /* answer nothing */
    int garbage;    /* answer short, wrong-version and wrong-opcode datagrams */
    int other_port; /* mapping answers about internal port + 1 */
    int life0;      /* mapping answers with lifetime 0 */
    uint16_t addr_result, map_result;
    uint8_t pub[4];
    uint16_t give_port; /* 0: the port asked */
    uint32_t give_life; /* 0: the lifetime asked */
    /* record */
    int addr_reqs, map_reqs, del_reqs;
    uint16_t last_int, last_ext;
    uint32_t last_life;
} NP;

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}
static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void np_send_garbage(const mesh_addr *to, int op)
{
    static const uint8_t shorty[3] = {0, 128, 0};
    uint8_t b[16] = {1, (uint8_t)(128 + op)}; /* version 1 */
    W.env.ops->dgram_send(W.env.obj, NP.d, to, shorty, sizeof shorty);
    W.env.ops->dgram_send(W.env.obj, NP.d, to, b, sizeof b);
    b[0] = 0;
    b[1] = 131; /* no such opcode */
    W.env.ops->dgram_send(W.env.obj, NP.d, to, b, sizeof b);
}

static void np_on_dgram(mesh_dgram *d, const mesh_addr *from, const uint8_t *data, size_t len,
                        void *ud)
{
    (void)d;
    (void)ud;
    if (len < 2 || data[0] != 0)
        return;
    uint8_t b[16] = {0};
    int op = data[1];
    b[1] = (uint8_t)(128 + op);
    put32(b + 4, 1234); /* epoch */
    if (op == 0) {
        NP.addr_reqs++;
        if (NP.drop || NP.garbage) {
            if (NP.garbage)
                np_send_garbage(from, op);
            return;
        }
        put16(b + 2, NP.addr_result);
        memcpy(b + 8, NP.pub, 4);
        W.env.ops->dgram_send(W.env.obj, NP.d, from, b, 12);
        return;
    }
    if ((op != 1 && op != 2) || len < 12)
        return;
    uint16_t in = get16(data + 4), ext = get16(data + 6);
    uint32_t life = (uint32_t)get16(data + 8) << 16 | get16(data + 10);
    if (life == 0)
        NP.del_reqs++;
    else
        NP.map_reqs++;
    NP.last_int = in;
    NP.last_ext = ext;
    NP.last_life = life;
    if (NP.drop || NP.garbage) {
        if (NP.garbage)
            np_send_garbage(from, op);
        return;
    }
    put16(b + 2, life ? NP.map_result : 0);
    put16(b + 8, NP.other_port ? in + 1 : in);
    put16(b + 10, life == 0 ? 0 : NP.give_port ? NP.give_port : ext);
    put32(b + 12, life == 0 || NP.life0 ? 0 : NP.give_life ? NP.give_life : life);
    W.env.ops->dgram_send(W.env.obj, NP.d, from, b, 16);
}

/* Bind the fake on a random 127.x.y.z:5351 (another run may hold one). */
static void np_start(void)
{
    srand((unsigned)getpid() ^ (unsigned)mesh_env_now(&W.env));
    for (int i = 0; i < 20 && !NP.d; i++) {
        NP.gw[0] = 127;
        NP.gw[1] = (uint8_t)(100 + rand() % 100);
        NP.gw[2] = (uint8_t)(rand() % 256);
        NP.gw[3] = (uint8_t)(2 + rand() % 250);
        mesh_addr a = {.family = MESH_AF_INET4, .port = NP_PORT};
        memcpy(a.ip, NP.gw, 4);
        int err = 0;
        NP.d = W.env.ops->dgram_bind(W.env.obj, &a, np_on_dgram, NULL, &err);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(NP.d);
}

/* ---- fake IGD (HTTP + SOAP) -------------------------------------------------------------- */

typedef struct igd_conn {
    mesh_stream *s;
    char buf[HTTP_MAX];
    size_t len;
    int held; /* a request the script holds unanswered */
} igd_conn;

static struct igd_fake {
    mesh_listener *l;
    uint16_t port;
    igd_conn conns[CONNS];
    /* script */
    const char *ext_ip;       /* NULL: an answer without NewExternalIPAddress */
    int add_err[8];           /* AddPortMapping call i: 0 success, > 0 UPnP error, -1 garbage */
    const char *entry_client; /* GetSpecificPortMappingEntry: NULL = error 714 */
    const char *entry_lease;
    int bad_desc;   /* a description without a WAN connection service */
    int silent;     /* hold every request */
    int hold_entry; /* hold GetSpecificPortMappingEntry */
    /* record */
    int holds;
    int gets, ext_calls, add_calls, entry_calls, del_calls;
    char add_ext[8][8], add_lease[8][16], del_ext[8];
} IGD;

static const char DESC[] =
    "<?xml version=\"1.0\"?><root xmlns=\"urn:schemas-upnp-org:device-1-0\">"
    "<specVersion><major>1</major><minor>0</minor></specVersion><device>"
    "<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>"
    "<friendlyName>fake</friendlyName><deviceList><device>"
    "<deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType><serviceList><service>"
    "<serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType>"
    "<serviceId>urn:upnp-org:serviceId:WANCommonIFC1</serviceId>"
    "<controlURL>/ctl/CmnIfCfg</controlURL><eventSubURL>/evt/CmnIfCfg</eventSubURL>"
    "<SCPDURL>/WANCfg.xml</SCPDURL></service></serviceList><deviceList><device>"
    "<deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>"
    "<serviceList><service>"
    "<serviceType>urn:schemas-upnp-org:service:%s:1</serviceType>"
    "<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>"
    "<controlURL>/ctl/IPConn</controlURL><eventSubURL>/evt/IPConn</eventSubURL>"
    "<SCPDURL>/WANIPCn.xml</SCPDURL></service></serviceList></device></deviceList>"
    "</device></deviceList></device></root>";

static const char ENV_HEAD[] =
    "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" "
    "s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body>";
static const char ENV_TAIL[] = "</s:Body></s:Envelope>";

/* The text of <tag>...</tag> in s, into out (empty when missing). */
static void arg_of(const char *s, const char *tag, char *out, size_t len)
{
    char open[64];
    snprintf(open, sizeof open, "<%s>", tag);
    const char *p = strstr(s, open);
    out[0] = '\0';
    if (!p)
        return;
    p += strlen(open);
    size_t n = strcspn(p, "<");
    snprintf(out, len, "%.*s", (int)(n < len ? n : len - 1), p);
}

static void http_reply(igd_conn *c, int status, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/xml; charset=\"utf-8\"\r\n"
                     "Connection: close\r\nContent-Length: %zu\r\n\r\n",
                     status, status == 200 ? "OK" : "Internal Server Error", strlen(body));
    W.env.ops->stream_write(W.env.obj, c->s, head, (size_t)n);
    W.env.ops->stream_write(W.env.obj, c->s, body, strlen(body));
    W.env.ops->stream_close(W.env.obj, c->s, MESH_CLOSE_GRACEFUL);
    c->s = NULL;
}

static void soap_ok(igd_conn *c, const char *action, const char *args)
{
    char body[2048];
    snprintf(body, sizeof body,
             "%s<u:%sResponse xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:1\">%s"
             "</u:%sResponse>%s",
             ENV_HEAD, action, args, action, ENV_TAIL);
    http_reply(c, 200, body);
}

static void soap_fault(igd_conn *c, int code)
{
    char body[1024];
    snprintf(body, sizeof body,
             "%s<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring>"
             "<detail><UPnPError xmlns=\"urn:schemas-upnp-org:control-1-0\"><errorCode>%d"
             "</errorCode><errorDescription>scripted</errorDescription></UPnPError></detail>"
             "</s:Fault>%s",
             ENV_HEAD, code, ENV_TAIL);
    http_reply(c, 500, body);
}

/* One whole request in c->buf: answer it as scripted. */
static void igd_answer(igd_conn *c)
{
    char action[64] = "", v[64], args[512];
    const char *sa = strstr(c->buf, "SOAPAction:");
    if (sa && (sa = strchr(sa, '#')))
        snprintf(action, sizeof action, "%.*s", (int)strcspn(sa + 1, "\"\r\n"), sa + 1);
    if (strncmp(c->buf, "GET ", 4) == 0) {
        IGD.gets++;
        char body[sizeof DESC + 32];
        snprintf(body, sizeof body, DESC, IGD.bad_desc ? "Nothing" : "WANIPConnection");
        http_reply(c, 200, body);
    } else if (strcmp(action, "GetExternalIPAddress") == 0) {
        IGD.ext_calls++;
        if (IGD.ext_ip)
            snprintf(args, sizeof args, "<NewExternalIPAddress>%s</NewExternalIPAddress>",
                     IGD.ext_ip);
        else
            snprintf(args, sizeof args, "<Unrelated>1</Unrelated>");
        soap_ok(c, action, args);
    } else if (strcmp(action, "AddPortMapping") == 0) {
        int i = IGD.add_calls++ % 8;
        arg_of(c->buf, "NewExternalPort", IGD.add_ext[i], sizeof IGD.add_ext[i]);
        arg_of(c->buf, "NewLeaseDuration", IGD.add_lease[i], sizeof IGD.add_lease[i]);
        if (IGD.add_err[i] > 0)
            soap_fault(c, IGD.add_err[i]);
        else if (IGD.add_err[i] < 0)
            http_reply(c, 200, "<html>hello, this is not SOAP</html>");
        else
            soap_ok(c, action, "");
    } else if (strcmp(action, "GetSpecificPortMappingEntry") == 0) {
        IGD.entry_calls++;
        if (IGD.hold_entry) {
            c->held = 1;
            return;
        }
        if (!IGD.entry_client) {
            soap_fault(c, 714);
            return;
        }
        arg_of(c->buf, "NewExternalPort", v, sizeof v);
        snprintf(args, sizeof args,
                 "<NewInternalPort>%d</NewInternalPort><NewInternalClient>%s</NewInternalClient>"
                 "<NewEnabled>1</NewEnabled><NewPortMappingDescription>meshara"
                 "</NewPortMappingDescription><NewLeaseDuration>%s</NewLeaseDuration>",
                 PORT, IGD.entry_client, IGD.entry_lease ? IGD.entry_lease : "3600");
        soap_ok(c, action, args);
    } else if (strcmp(action, "DeletePortMapping") == 0) {
        IGD.del_calls++;
        arg_of(c->buf, "NewExternalPort", IGD.del_ext, sizeof IGD.del_ext);
        soap_ok(c, action, "");
    } else {
        soap_fault(c, 401);
    }
}

static void igd_on_data(mesh_stream *s, const uint8_t *data, size_t len, void *ud)
{
    (void)s;
    igd_conn *c = ud;
    if (c->len + len >= HTTP_MAX)
        len = HTTP_MAX - 1 - c->len;
    memcpy(c->buf + c->len, data, len);
    c->len += len;
    c->buf[c->len] = '\0';
    char *end = strstr(c->buf, "\r\n\r\n");
    if (!end || c->held)
        return;
    const char *cl = strcasestr(c->buf, "Content-Length:");
    size_t body = cl ? strtoul(cl + 15, NULL, 10) : 0;
    if (c->len < (size_t)(end + 4 - c->buf) + body)
        return;
    if (IGD.silent) {
        c->held = 1;
        IGD.holds++;
        return;
    }
    igd_answer(c);
}

static void igd_on_closed(mesh_stream *s, int reason, void *ud)
{
    (void)s;
    (void)reason;
    igd_conn *c = ud;
    c->s = NULL;
}

static void igd_on_accept(mesh_listener *l, mesh_stream *s, const mesh_addr *peer, void *ud)
{
    (void)l;
    (void)peer;
    (void)ud;
    for (int i = 0; i < CONNS; i++) {
        igd_conn *c = &IGD.conns[i];
        if (!c->s) {
            memset(c, 0, sizeof *c);
            c->s = s;
            mesh_stream_cbs cbs = {.on_data = igd_on_data, .on_closed = igd_on_closed};
            W.env.ops->stream_set_cbs(W.env.obj, s, &cbs, c);
            return;
        }
    }
    W.env.ops->stream_close(W.env.obj, s, MESH_CLOSE_ABORT);
}

/* Answer the held requests now (hold_entry), or drop them (silent). */
static void igd_release_held(int answer)
{
    for (int i = 0; i < CONNS; i++) {
        igd_conn *c = &IGD.conns[i];
        if (!c->s || !c->held)
            continue;
        c->held = 0;
        if (answer) {
            IGD.hold_entry = 0;
            IGD.entry_calls--;
            igd_answer(c);
        } else {
            W.env.ops->stream_close(W.env.obj, c->s, MESH_CLOSE_ABORT);
            c->s = NULL;
        }
    }
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
    int err = 0;
    IGD.l = W.env.ops->listen(W.env.obj, &la, igd_on_accept, NULL, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(IGD.l);
    W.env.ops->listener_addr(W.env.obj, IGD.l, &la);
    IGD.port = la.port;
    IGD.ext_ip = "11.250.42.7";
    IGD.entry_client = "127.0.0.1";
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/rootDesc.xml", IGD.port);
    mesh_real_portmap_cfg pc = {.no_natpmp = !!(flags & NO_NATPMP),
                                .no_upnp = !!(flags & NO_UPNP),
                                .igd_url = url,
                                .natpmp_ms = NP_MS,
                                .upnp_timeout_ms = UPNP_MS};
    memcpy(pc.natpmp_gateway, NP.gw, 4);
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
    W.env.ops->dgram_close(W.env.obj, NP.d);
    NP.d = NULL;
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
    igd_release_held(0); /* the worker's HTTP request ends (reset) */
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
    igd_release_held(1);
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
    W.env.ops->dgram_close(W.env.obj, NP.d);
    NP.d = NULL;
    int u = plain_socket(SOCK_DGRAM, NP.gw, NP_PORT);
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
    W.env.ops->listener_close(W.env.obj, IGD.l);
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
