/* fake_gateway.c — a scripted NAT-PMP server and UPnP IGD on a mesh_env (fake_gateway.h). */
#include "fake_gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- NAT-PMP ----------------------------------------------------------------------------- */

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

static void np_send(fake_natpmp *f, const mesh_addr *to, const uint8_t *b, size_t len)
{
    f->env.ops->dgram_send(f->env.obj, f->d, to, b, len);
}

static void np_send_garbage(fake_natpmp *f, const mesh_addr *to, int op)
{
    static const uint8_t shorty[3] = {0, 128, 0};
    uint8_t b[16] = {1, (uint8_t)(128 + op)}; /* version 1 */
    np_send(f, to, shorty, sizeof shorty);
    np_send(f, to, b, sizeof b);
    b[0] = 0;
    b[1] = 131; /* no such opcode */
    np_send(f, to, b, sizeof b);
}

/* A mapping request (opcode 1 UDP, 2 TCP): record it, answer as scripted. */
static void np_mapping(fake_natpmp *f, const mesh_addr *from, const uint8_t *data, int op)
{
    uint16_t in = get16(data + 4), ext = get16(data + 6);
    uint32_t life = (uint32_t)get16(data + 8) << 16 | get16(data + 10);
    if (life == 0)
        f->del_reqs++;
    else
        f->map_reqs++;
    f->last_int = in;
    f->last_ext = ext;
    f->last_life = life;
    if (f->garbage)
        np_send_garbage(f, from, op);
    if (f->drop || f->garbage)
        return;
    uint8_t b[16] = {0, (uint8_t)(128 + op)};
    put16(b + 2, life ? f->map_result : 0);
    put32(b + 4, 1234); /* epoch */
    put16(b + 8, f->other_port ? in + 1 : in);
    put16(b + 10, life == 0 ? 0 : f->give_port ? f->give_port : ext);
    put32(b + 12, life == 0 || f->life0 ? 0 : f->give_life ? f->give_life : life);
    np_send(f, from, b, sizeof b);
}

static void np_on_dgram(mesh_dgram *d, const mesh_addr *from, const uint8_t *data, size_t len,
                        void *ud)
{
    (void)d;
    fake_natpmp *f = ud;
    if (len < 2 || data[0] != 0)
        return;
    int op = data[1];
    if ((op == 1 || op == 2) && len >= 12) {
        np_mapping(f, from, data, op);
        return;
    }
    if (op != 0)
        return;
    f->addr_reqs++;
    if (f->garbage)
        np_send_garbage(f, from, op);
    if (f->drop || f->garbage)
        return;
    uint8_t b[12] = {0, 128};
    put16(b + 2, f->addr_result);
    put32(b + 4, 1234);
    memcpy(b + 8, f->pub, 4);
    np_send(f, from, b, sizeof b);
}

int fake_natpmp_start(fake_natpmp *f, const mesh_env *env, const mesh_addr *at)
{
    int err = MESH_OK;
    f->env = *env;
    f->d = env->ops->dgram_bind(env->obj, at, np_on_dgram, f, &err);
    return f->d ? MESH_OK : err;
}

void fake_natpmp_stop(fake_natpmp *f)
{
    if (f->d)
        f->env.ops->dgram_close(f->env.obj, f->d);
    f->d = NULL;
}

/* ---- UPnP IGD ---------------------------------------------------------------------------- */

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

static void http_reply(fake_igd_conn *c, int status, const char *body)
{
    const mesh_env *env = &c->g->env;
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/xml; charset=\"utf-8\"\r\n"
                     "Connection: close\r\nContent-Length: %zu\r\n\r\n",
                     status, status == 200 ? "OK" : "Internal Server Error", strlen(body));
    env->ops->stream_write(env->obj, c->s, head, (size_t)n);
    env->ops->stream_write(env->obj, c->s, body, strlen(body));
    env->ops->stream_close(env->obj, c->s, MESH_CLOSE_GRACEFUL);
    c->s = NULL;
}

static void soap_ok(fake_igd_conn *c, const char *action, const char *args)
{
    char body[2048];
    snprintf(body, sizeof body,
             "%s<u:%sResponse xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:1\">%s"
             "</u:%sResponse>%s",
             ENV_HEAD, action, args, action, ENV_TAIL);
    http_reply(c, 200, body);
}

static void soap_fault(fake_igd_conn *c, int code)
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

static void igd_add(fake_igd_conn *c, const char *action)
{
    fake_igd *g = c->g;
    int i = g->add_calls++ % FAKE_IGD_ADDS;
    arg_of(c->buf, "NewExternalPort", g->add_ext[i], sizeof g->add_ext[i]);
    arg_of(c->buf, "NewLeaseDuration", g->add_lease[i], sizeof g->add_lease[i]);
    if (g->add_err[i] > 0)
        soap_fault(c, g->add_err[i]);
    else if (g->add_err[i] < 0)
        http_reply(c, 200, "<html>hello, this is not SOAP</html>");
    else
        soap_ok(c, action, "");
}

static void igd_entry(fake_igd_conn *c, const char *action)
{
    fake_igd *g = c->g;
    char args[512];
    g->entry_calls++;
    if (g->hold_entry) {
        c->held = 1;
        return;
    }
    if (!g->entry_client) {
        soap_fault(c, 714);
        return;
    }
    snprintf(args, sizeof args,
             "<NewInternalPort>%u</NewInternalPort><NewInternalClient>%s</NewInternalClient>"
             "<NewEnabled>1</NewEnabled><NewPortMappingDescription>meshara"
             "</NewPortMappingDescription><NewLeaseDuration>%s</NewLeaseDuration>",
             g->entry_port, g->entry_client, g->entry_lease ? g->entry_lease : "3600");
    soap_ok(c, action, args);
}

/* One whole request in c->buf: answer it as scripted. */
static void igd_answer(fake_igd_conn *c)
{
    fake_igd *g = c->g;
    char action[64] = "", args[256];
    const char *sa = strstr(c->buf, "SOAPAction:");
    if (sa && (sa = strchr(sa, '#')))
        snprintf(action, sizeof action, "%.*s", (int)strcspn(sa + 1, "\"\r\n"), sa + 1);
    if (strncmp(c->buf, "GET ", 4) == 0) {
        g->gets++;
        char body[sizeof DESC + 32];
        snprintf(body, sizeof body, DESC, g->bad_desc ? "Nothing" : "WANIPConnection");
        http_reply(c, 200, body);
    } else if (strcmp(action, "GetExternalIPAddress") == 0) {
        g->ext_calls++;
        if (g->ext_ip)
            snprintf(args, sizeof args, "<NewExternalIPAddress>%s</NewExternalIPAddress>",
                     g->ext_ip);
        else
            snprintf(args, sizeof args, "<Unrelated>1</Unrelated>");
        soap_ok(c, action, args);
    } else if (strcmp(action, "AddPortMapping") == 0) {
        igd_add(c, action);
    } else if (strcmp(action, "GetSpecificPortMappingEntry") == 0) {
        igd_entry(c, action);
    } else if (strcmp(action, "DeletePortMapping") == 0) {
        g->del_calls++;
        arg_of(c->buf, "NewExternalPort", g->del_ext, sizeof g->del_ext);
        soap_ok(c, action, "");
    } else {
        soap_fault(c, 401);
    }
}

static void igd_on_data(mesh_stream *s, const uint8_t *data, size_t len, void *ud)
{
    (void)s;
    fake_igd_conn *c = ud;
    if (c->len + len >= FAKE_IGD_HTTP_MAX)
        len = FAKE_IGD_HTTP_MAX - 1 - c->len;
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
    if (c->g->silent) {
        c->held = 1;
        c->g->holds++;
        return;
    }
    igd_answer(c);
}

static void igd_on_closed(mesh_stream *s, int reason, void *ud)
{
    (void)s;
    (void)reason;
    fake_igd_conn *c = ud;
    c->s = NULL;
}

static void igd_on_accept(mesh_listener *l, mesh_stream *s, const mesh_addr *peer, void *ud)
{
    (void)l;
    (void)peer;
    fake_igd *g = ud;
    for (int i = 0; i < FAKE_IGD_CONNS; i++) {
        fake_igd_conn *c = &g->conns[i];
        if (!c->s) {
            memset(c, 0, sizeof *c);
            c->g = g;
            c->s = s;
            mesh_stream_cbs cbs = {.on_data = igd_on_data, .on_closed = igd_on_closed};
            g->env.ops->stream_set_cbs(g->env.obj, s, &cbs, c);
            return;
        }
    }
    g->env.ops->stream_close(g->env.obj, s, MESH_CLOSE_ABORT);
}

int fake_igd_start(fake_igd *g, const mesh_env *env, const mesh_addr *at)
{
    int err = MESH_OK;
    g->env = *env;
    g->l = env->ops->listen(env->obj, at, igd_on_accept, g, &err);
    if (!g->l)
        return err;
    mesh_addr bound;
    env->ops->listener_addr(env->obj, g->l, &bound);
    g->port = bound.port;
    return MESH_OK;
}

void fake_igd_release_held(fake_igd *g, int answer)
{
    for (int i = 0; i < FAKE_IGD_CONNS; i++) {
        fake_igd_conn *c = &g->conns[i];
        if (!c->s || !c->held)
            continue;
        c->held = 0;
        if (answer) {
            g->hold_entry = 0;
            g->entry_calls--; /* counted again */
            igd_answer(c);
        } else {
            g->env.ops->stream_close(g->env.obj, c->s, MESH_CLOSE_ABORT);
            c->s = NULL;
        }
    }
}

void fake_igd_stop(fake_igd *g)
{
    for (int i = 0; i < FAKE_IGD_CONNS; i++) {
        if (g->conns[i].s)
            g->env.ops->stream_close(g->env.obj, g->conns[i].s, MESH_CLOSE_ABORT);
        g->conns[i].s = NULL;
    }
    if (g->l)
        g->env.ops->listener_close(g->env.obj, g->l);
    g->l = NULL;
}
