/* ping.c — PING query/response over plain framed streams (see ping.h; test code). */
#include "ping.h"

#include <stdlib.h>
#include <string.h>

#include "core/frame.h"
#include "core/wire.h"

/* ---- shared: encode one envelope as a frame and write it ------------------------------- */

static int write_envelope(const mesh_env *env, mesh_stream *s, const mesh_envelope *e)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = mesh_wire_encode(e, &buf, &len);
    if (rc != MESH_OK)
        return rc;
    uint8_t hdr[MESH_FRAME_HDR_LEN];
    rc = mesh_frame_header(hdr, len, MESH_PING_FRAME_MAX);
    if (rc == MESH_OK)
        rc = env->ops->stream_write(env->obj, s, hdr, sizeof hdr);
    if (rc == MESH_OK)
        rc = env->ops->stream_write(env->obj, s, buf, len);
    free(buf);
    return rc;
}

/* ---- server ------------------------------------------------------------------------------ */

typedef struct ping_conn {
    mesh_ping_server *srv;
    mesh_stream *s;
    mesh_frame_dec dec;
    struct ping_conn *prev, *next;
} ping_conn;

struct mesh_ping_server {
    mesh_env env;
    mesh_listener *l;
    ping_conn *conns;
    size_t nconns;
    uint64_t answered, rejected;
};

static void conn_unlink(ping_conn *c)
{
    mesh_ping_server *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    mesh_frame_dec_free(&c->dec);
    free(c);
}

/* Close a connection (its handle is still ours) and forget it. */
static void conn_close(ping_conn *c, int how)
{
    c->srv->env.ops->stream_close(c->srv->env.obj, c->s, how);
    conn_unlink(c);
}

static int srv_on_frame(void *ud, const uint8_t *payload, size_t len)
{
    ping_conn *c = ud;
    mesh_ping_server *srv = c->srv;
    mesh_envelope *in = NULL;
    int rc = mesh_wire_decode(payload, len, &in);
    if (rc != MESH_OK)
        return rc;
    if (in->body_case != MESHARA__WIRE__ENVELOPE__BODY_QUERY ||
        in->query->type != MESHARA__WIRE__QUERY_TYPE__QUERY_PING) {
        mesh_wire_free(in);
        return MESH_ERR_PROTOCOL;
    }
    Meshara__Wire__Response resp = MESHARA__WIRE__RESPONSE__INIT;
    resp.query_id = in->query->query_id;
    resp.type = MESHARA__WIRE__QUERY_TYPE__QUERY_PING;
    resp.status = MESH_OK;
    resp.payload = in->query->payload;
    mesh_envelope out = MESHARA__WIRE__ENVELOPE__INIT;
    out.body_case = MESHARA__WIRE__ENVELOPE__BODY_RESPONSE;
    out.response = &resp;
    rc = write_envelope(&srv->env, c->s, &out);
    mesh_wire_free(in);
    if (rc == MESH_OK)
        srv->answered++;
    return rc;
}

static void srv_on_data(mesh_stream *s, const uint8_t *data, size_t len, void *ud)
{
    (void)s;
    ping_conn *c = ud;
    int rc = mesh_frame_feed(&c->dec, data, len, srv_on_frame, c);
    if (rc != MESH_OK) {
        mesh_log(&c->srv->env, MESH_LOG_WARN, "ping server: closing a client: %s",
                 mesh_strerror(rc));
        c->srv->rejected++;
        conn_close(c, MESH_CLOSE_ABORT);
    }
}

static void srv_on_closed(mesh_stream *s, int reason, void *ud)
{
    (void)s;
    (void)reason;
    conn_unlink(ud); /* the handle is already released (env rule 4) */
}

static const mesh_stream_cbs SRV_CBS = {
    .on_data = srv_on_data,
    .on_closed = srv_on_closed,
};

static void srv_on_accept(mesh_listener *l, mesh_stream *s, const mesh_addr *peer, void *ud)
{
    (void)l;
    (void)peer;
    mesh_ping_server *srv = ud;
    ping_conn *c = srv->nconns < MESH_PING_SERVER_MAX_CONNS ? calloc(1, sizeof *c) : NULL;
    if (!c) {
        srv->rejected++;
        srv->env.ops->stream_close(srv->env.obj, s, MESH_CLOSE_ABORT);
        return;
    }
    c->srv = srv;
    c->s = s;
    mesh_frame_dec_init(&c->dec, MESH_PING_FRAME_MAX);
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    srv->env.ops->stream_set_cbs(srv->env.obj, s, &SRV_CBS, c);
}

int mesh_ping_server_new(mesh_ping_server **out, const mesh_env *env, const mesh_addr *addr)
{
    if (!out || !env || !addr)
        return MESH_ERR_INVAL;
    mesh_ping_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return MESH_ERR_NOMEM;
    srv->env = *env;
    int err = MESH_OK;
    srv->l = env->ops->listen(env->obj, addr, srv_on_accept, srv, &err);
    if (!srv->l) {
        free(srv);
        return err != MESH_OK ? err : MESH_ERR_INTERNAL;
    }
    *out = srv;
    return MESH_OK;
}

int mesh_ping_server_addr(const mesh_ping_server *s, mesh_addr *out)
{
    return s->env.ops->listener_addr(s->env.obj, s->l, out);
}

uint64_t mesh_ping_server_answered(const mesh_ping_server *s)
{
    return s->answered;
}
uint64_t mesh_ping_server_rejected(const mesh_ping_server *s)
{
    return s->rejected;
}

void mesh_ping_server_free(mesh_ping_server *s)
{
    if (!s)
        return;
    s->env.ops->listener_close(s->env.obj, s->l);
    while (s->conns)
        conn_close(s->conns, MESH_CLOSE_ABORT);
    free(s);
}

/* ---- client ------------------------------------------------------------------------------ */

struct mesh_ping {
    mesh_env env;
    mesh_stream *s; /* NULL once released */
    mesh_timer *timer;
    mesh_frame_dec dec;
    mesh_ping_cb cb;
    void *ud;
    uint64_t query_id;
    uint8_t payload[MESH_PING_MAX_PAYLOAD];
    size_t payload_len;
    mesh_time sent_at;
    int done;
};

/* Report once; the caller may free p inside cb, so nothing touches p afterwards. */
static void ping_finish(mesh_ping *p, int result, mesh_time rtt)
{
    if (p->done)
        return;
    p->done = 1;
    p->env.ops->timer_stop(p->env.obj, p->timer);
    if (p->s) {
        p->env.ops->stream_close(p->env.obj, p->s,
                                 result == MESH_OK ? MESH_CLOSE_GRACEFUL : MESH_CLOSE_ABORT);
        p->s = NULL;
    }
    p->cb(p, result, rtt, p->ud);
}

static void cli_on_connected(mesh_stream *s, void *ud)
{
    mesh_ping *p = ud;
    Meshara__Wire__Query q = MESHARA__WIRE__QUERY__INIT;
    q.query_id = p->query_id;
    q.type = MESHARA__WIRE__QUERY_TYPE__QUERY_PING;
    q.payload.data = p->payload;
    q.payload.len = p->payload_len;
    mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
    e.body_case = MESHARA__WIRE__ENVELOPE__BODY_QUERY;
    e.query = &q;
    p->sent_at = mesh_env_now(&p->env);
    int rc = write_envelope(&p->env, s, &e);
    if (rc != MESH_OK)
        ping_finish(p, rc, 0);
}

static int cli_on_frame(void *ud, const uint8_t *payload, size_t len)
{
    mesh_ping *p = ud;
    mesh_envelope *in = NULL;
    int rc = mesh_wire_decode(payload, len, &in);
    if (rc != MESH_OK)
        return rc;
    const Meshara__Wire__Response *r = in->response;
    int ok = in->body_case == MESHARA__WIRE__ENVELOPE__BODY_RESPONSE &&
             r->query_id == p->query_id && r->status == MESH_OK &&
             r->payload.len == p->payload_len &&
             (p->payload_len == 0 || memcmp(r->payload.data, p->payload, p->payload_len) == 0);
    mesh_wire_free(in);
    return ok ? 1 : MESH_ERR_PROTOCOL; /* 1: stop feeding, the answer is in */
}

static void cli_on_data(mesh_stream *s, const uint8_t *data, size_t len, void *ud)
{
    (void)s;
    mesh_ping *p = ud;
    int rc = mesh_frame_feed(&p->dec, data, len, cli_on_frame, p);
    if (rc == 1)
        ping_finish(p, MESH_OK, mesh_env_now(&p->env) - p->sent_at);
    else if (rc != MESH_OK)
        ping_finish(p, rc, 0);
}

static void cli_on_closed(mesh_stream *s, int reason, void *ud)
{
    (void)s;
    mesh_ping *p = ud;
    p->s = NULL; /* released by the driver */
    ping_finish(p, reason == MESH_OK ? MESH_ERR_CLOSED : reason, 0);
}

static void cli_on_timeout(mesh_timer *t, void *ud)
{
    (void)t;
    ping_finish(ud, MESH_ERR_TIMEOUT, 0);
}

static const mesh_stream_cbs CLI_CBS = {
    .on_connected = cli_on_connected,
    .on_data = cli_on_data,
    .on_closed = cli_on_closed,
};

int mesh_ping_start(mesh_ping **out, const mesh_env *env, const mesh_addr *to, size_t payload_len,
                    mesh_time timeout, mesh_ping_cb cb, void *ud)
{
    if (!out || !env || !to || !cb || payload_len > MESH_PING_MAX_PAYLOAD)
        return MESH_ERR_INVAL;
    mesh_ping *p = calloc(1, sizeof *p);
    if (!p)
        return MESH_ERR_NOMEM;
    p->env = *env;
    p->cb = cb;
    p->ud = ud;
    p->payload_len = payload_len;
    mesh_env_random(env, p->payload, payload_len);
    mesh_env_random(env, &p->query_id, sizeof p->query_id);
    mesh_frame_dec_init(&p->dec, MESH_PING_FRAME_MAX);
    int err = MESH_ERR_NOMEM;
    p->timer = env->ops->timer_new(env->obj, cli_on_timeout, p);
    if (!p->timer)
        goto fail;
    p->s = env->ops->connect(env->obj, to, &CLI_CBS, p, &err);
    if (!p->s)
        goto fail;
    mesh_time now = mesh_env_now(env);
    if (timeout < MESH_TIME_NEVER - now) /* otherwise no deadline: the timer stays idle */
        env->ops->timer_set(env->obj, p->timer, now + timeout);
    *out = p;
    return MESH_OK;
fail:
    if (p->timer)
        env->ops->timer_free(env->obj, p->timer);
    free(p);
    return err;
}

uint64_t mesh_ping_query_id(const mesh_ping *p)
{
    return p->query_id;
}

void mesh_ping_free(mesh_ping *p)
{
    if (!p)
        return;
    if (p->s)
        p->env.ops->stream_close(p->env.obj, p->s, MESH_CLOSE_ABORT);
    p->env.ops->timer_free(p->env.obj, p->timer);
    mesh_frame_dec_free(&p->dec);
    free(p);
}
