/* session_pair.c — a server session facing a raw TLS client on a hand-driven env (see
 * session_pair.h). */
#include "session_pair.h"

#include <stdlib.h>
#include <string.h>

#include "core/wire.h"

static struct fake {
    int unused;
} g_stream, g_timer;

#define STREAM ((mesh_stream *)(void *)&g_stream)

static mesh_time p_now(void *o)
{
    mesh_pair *p = o;
    return p->te.env.ops->now(p->te.env.obj);
}
static void p_random(void *o, uint8_t *b, size_t n)
{
    mesh_pair *p = o;
    p->te.env.ops->random(p->te.env.obj, b, n);
}
static void p_log(void *o, int level, const char *msg)
{
    mesh_pair *p = o;
    p->te.env.ops->log(p->te.env.obj, level, msg);
}
static mesh_timer *p_timer_new(void *o, mesh_timer_cb cb, void *ud)
{
    (void)o, (void)cb, (void)ud;
    return (mesh_timer *)(void *)&g_timer;
}
static void p_timer_set(void *o, mesh_timer *t, mesh_time when)
{
    (void)o, (void)t, (void)when;
}
static void p_timer_stop(void *o, mesh_timer *t)
{
    (void)o, (void)t;
}
static void p_set_cbs(void *o, mesh_stream *s, const mesh_stream_cbs *cbs, void *ud)
{
    (void)s;
    mesh_pair *p = o;
    p->scbs = *cbs;
    p->sud = ud;
}
static int p_write(void *o, mesh_stream *s, const void *d, size_t n)
{
    (void)s;
    mesh_pair *p = o;
    if (p->stream_closed)
        return MESH_ERR_CLOSED;
    mesh_test_buf_add(&p->to_client, d, n);
    return MESH_OK;
}
static size_t p_pending(void *o, mesh_stream *s)
{
    (void)o, (void)s;
    return 0;
}
static int p_addrs(void *o, mesh_stream *s, mesh_addr *l, mesh_addr *r)
{
    (void)o, (void)s;
    if (l)
        memset(l, 0, sizeof *l);
    if (r)
        memset(r, 0, sizeof *r);
    return MESH_OK;
}
static void p_close(void *o, mesh_stream *s, int how)
{
    (void)s, (void)how;
    ((mesh_pair *)o)->stream_closed = 1;
}

static void cli_out(void *ud, const uint8_t *d, size_t n)
{
    mesh_test_buf_add(&((mesh_pair *)ud)->to_server, d, n);
}

static void srv_connected(mesh_session *s, void *ud)
{
    (void)s;
    ((mesh_pair *)ud)->connected = 1;
}
static void srv_message(mesh_session *s, const mesh_envelope *e, void *ud)
{
    (void)s;
    mesh_pair *p = ud;
    p->msgs_total++;
    if (p->nmsgs >= MESH_PAIR_MAX_MSGS)
        return;
    uint8_t *w = NULL;
    size_t wlen = 0;
    if (mesh_wire_encode(e, &w, &wlen) != MESH_OK) {
        p->reencode_error = 1;
        return;
    }
    mesh_test_buf *b = &p->msgs[p->nmsgs++];
    b->len = 0;
    mesh_test_buf_add(b, w, wlen);
    free(w);
}
static void srv_closed(mesh_session *s, int reason, void *ud)
{
    (void)s, (void)reason;
    ((mesh_pair *)ud)->closed = 1;
}

void mesh_pair_pump(mesh_pair *p, size_t piece)
{
    uint8_t tmp[MESH_TLS_RECORD_MAX];
    while (p->to_server.len || p->to_client.len) {
        if (p->to_server.len) {
            mesh_test_buf in = p->to_server;
            p->to_server = (mesh_test_buf){0};
            for (size_t off = 0; off < in.len && !p->stream_closed;) {
                size_t n = piece && in.len - off > piece ? piece : in.len - off;
                p->scbs.on_data(STREAM, in.b + off, n, p->sud);
                off += n;
            }
            free(in.b);
        }
        if (p->to_client.len) {
            int rc = mesh_tls_feed(p->cli, p->to_client.b, p->to_client.len);
            p->to_client.len = 0;
            if (rc == MESH_OK && mesh_tls_handshake(p->cli) == MESH_OK)
                while (mesh_tls_read(p->cli, tmp, sizeof tmp) > 0) {
                }
        }
    }
}

int mesh_pair_write(mesh_pair *p, const uint8_t *data, size_t len, size_t chunk)
{
    for (size_t off = 0; off < len;) {
        size_t n = chunk && len - off > chunk ? chunk : len - off;
        int rc = mesh_tls_write(p->cli, data + off, n);
        if (rc != MESH_OK)
            return rc;
        off += n;
    }
    return MESH_OK;
}

static void env_init(mesh_pair *p)
{
    memset(p, 0, sizeof *p);
    mesh_test_env_init(&p->te, 7);
    p->ops = (mesh_env_ops){.now = p_now,
                            .random = p_random,
                            .log = p_log,
                            .timer_new = p_timer_new,
                            .timer_set = p_timer_set,
                            .timer_stop = p_timer_stop,
                            .timer_free = p_timer_stop,
                            .stream_set_cbs = p_set_cbs,
                            .stream_write = p_write,
                            .stream_pending = p_pending,
                            .stream_addrs = p_addrs,
                            .stream_close = p_close};
    p->env = (mesh_env){.ops = &p->ops, .obj = p};
    p->stream = STREAM;
}

/* The client's hello over TLS: the session authenticates it. */
static int send_hello(mesh_pair *p)
{
    uint8_t *f = NULL;
    size_t flen = 0;
    int rc = mesh_hello_create(p->id_c, MESH_SESSION_ROLE_CLIENT, p->exporter, NULL, &f, &flen);
    if (rc == MESH_OK)
        rc = mesh_tls_write(p->cli, f, flen);
    free(f);
    if (rc != MESH_OK)
        return rc;
    mesh_pair_pump(p, 0);
    return p->connected ? MESH_OK : MESH_ERR_PROTOCOL;
}

int mesh_pair_start(mesh_pair *p, int h2, int hello)
{
    static const uint8_t seed_s[MESH_SEED_LEN] = {1}, seed_c[MESH_SEED_LEN] = {2};
    static const char *const srv_alpn[] = {MESH_TLS_DEFAULT_ALPN, MESH_SESSION_H2_ALPN, NULL};
    env_init(p);
    int rc = mesh_identity_from_seed(&p->id_s, seed_s);
    if (rc == MESH_OK)
        rc = mesh_identity_from_seed(&p->id_c, seed_c);
    /* The seed profile: these pairs choose framing and ALPN themselves (the web profile's
     * sessions are always h2: test_tls_web.c). */
    if (rc == MESH_OK)
        rc = mesh_tls_ctx_new(&p->ctx_s, &p->env, p->id_s,
                              &(mesh_tls_cfg){.profile = MESH_PROFILE_SEED, .alpn = srv_alpn});
    if (rc == MESH_OK)
        rc = mesh_tls_ctx_new(&p->ctx_c, &p->env, p->id_c,
                              &(mesh_tls_cfg){.profile = MESH_PROFILE_SEED});
    if (rc == MESH_OK)
        return mesh_pair_reconnect(p, h2, hello);
    mesh_pair_stop(p);
    return rc;
}

/* Drop the connection: the session, the client and everything in flight. */
static void disconnect(mesh_pair *p)
{
    mesh_session_free(p->srv);
    p->srv = NULL;
    mesh_tls_free(p->cli);
    p->cli = NULL;
    p->to_client.len = p->to_server.len = 0;
    p->stream_closed = p->connected = p->closed = p->reencode_error = 0;
    p->nmsgs = p->msgs_total = 0;
}

int mesh_pair_reconnect(mesh_pair *p, int h2, int hello)
{
    static const char *const h2_only[] = {MESH_SESSION_H2_ALPN, NULL};
    static const mesh_session_cbs cbs = {
        .on_connected = srv_connected, .on_message = srv_message, .on_closed = srv_closed};
    disconnect(p);
    mesh_test_env_init(&p->te, 7); /* the same randomness, so the same handshake, every time */
    int rc = mesh_session_accept(&p->srv, &p->env, p->ctx_s, STREAM, NULL, &cbs, p);
    if (rc == MESH_OK)
        rc = mesh_tls_new(&p->cli, p->ctx_c, 0, h2 ? h2_only : NULL, cli_out, p);
    if (rc == MESH_OK && (rc = mesh_tls_handshake(p->cli)) == MESH_ERR_AGAIN) {
        mesh_pair_pump(p, 0);
        rc = mesh_tls_is_done(p->cli) &&
                     mesh_session_get_state(p->srv) == MESH_SESSION_AUTHENTICATING
                 ? MESH_OK
                 : MESH_ERR_TLS;
    }
    if (rc == MESH_OK)
        rc = mesh_tls_export(p->cli, MESH_SESSION_EXPORTER_LABEL, p->exporter, sizeof p->exporter);
    if (rc == MESH_OK && hello)
        rc = send_hello(p);
    if (rc != MESH_OK)
        mesh_pair_stop(p);
    return rc;
}

static void buf_out(void *ud, const uint8_t *d, size_t n)
{
    mesh_test_buf_add(ud, d, n);
}

/* The templates for h2: a raw server connection of ctx_s and the raw client, handshaken in
 * reconnect's order of randomness draws (server made, client made, ClientHello, the server's
 * flight, the client's Finished), so the handshake is reconnect's byte for byte. */
static int make_template(mesh_pair *p, int h2)
{
    static const char *const h2_only[] = {MESH_SESSION_H2_ALPN, NULL};
    mesh_test_buf c2s = {0}, s2c = {0};
    mesh_test_env_init(&p->te, 7);
    int rc = mesh_tls_new(&p->tmpl_srv[h2], p->ctx_s, 1, NULL, buf_out, &s2c);
    if (rc == MESH_OK)
        rc = mesh_tls_new(&p->tmpl_cli[h2], p->ctx_c, 0, h2 ? h2_only : NULL, buf_out, &c2s);
    int hc = MESH_ERR_AGAIN, hs = MESH_ERR_AGAIN;
    for (int i = 0; rc == MESH_OK && i < 16 && (hc == MESH_ERR_AGAIN || hs == MESH_ERR_AGAIN);
         i++) {
        if (hc == MESH_ERR_AGAIN)
            hc = mesh_tls_handshake(p->tmpl_cli[h2]);
        rc = mesh_tls_feed(p->tmpl_srv[h2], c2s.b, c2s.len);
        c2s.len = 0;
        if (rc == MESH_OK && hs == MESH_ERR_AGAIN)
            hs = mesh_tls_handshake(p->tmpl_srv[h2]);
        if (rc == MESH_OK)
            rc = mesh_tls_feed(p->tmpl_cli[h2], s2c.b, s2c.len);
        s2c.len = 0;
    }
    if (rc == MESH_OK && (hc != MESH_OK || hs != MESH_OK))
        rc = hc != MESH_OK ? hc : hs;
    uint8_t exporter[MESH_SESSION_EXPORTER_LEN], *f = NULL;
    size_t flen = 0;
    if (rc == MESH_OK)
        rc = mesh_tls_export(p->tmpl_cli[h2], MESH_SESSION_EXPORTER_LABEL, exporter,
                             sizeof exporter);
    if (rc == MESH_OK)
        rc = mesh_hello_create(p->id_c, MESH_SESSION_ROLE_CLIENT, exporter, NULL, &f, &flen);
    if (rc == MESH_OK)
        mesh_test_buf_add(&p->tmpl_hello[h2], f, flen);
    free(f);
    free(c2s.b);
    free(s2c.b);
    return rc;
}

int mesh_pair_renew(mesh_pair *p, int h2, int hello)
{
    static const mesh_session_cbs cbs = {
        .on_connected = srv_connected, .on_message = srv_message, .on_closed = srv_closed};
    h2 = h2 ? 1 : 0;
    disconnect(p);
    int rc = p->tmpl_srv[h2] ? MESH_OK : make_template(p, h2);
    mesh_test_env_init(&p->te, 7); /* what the session draws is the same every time too */
    if (rc == MESH_OK)
        rc = mesh_session_accept_clone(&p->srv, &p->env, p->ctx_s, STREAM, p->tmpl_srv[h2], NULL,
                                       &cbs, p);
    if (rc == MESH_OK)
        rc = mesh_tls_clone(&p->cli, p->tmpl_cli[h2], cli_out, p);
    if (rc == MESH_OK)
        rc = mesh_tls_export(p->cli, MESH_SESSION_EXPORTER_LABEL, p->exporter, sizeof p->exporter);
    if (rc == MESH_OK)
        mesh_pair_pump(p, 0); /* the session's hello to the client */
    if (rc == MESH_OK && mesh_session_get_state(p->srv) != MESH_SESSION_AUTHENTICATING)
        rc = MESH_ERR_TLS;
    if (rc == MESH_OK && hello) {
        rc = mesh_tls_write(p->cli, p->tmpl_hello[h2].b, p->tmpl_hello[h2].len);
        if (rc == MESH_OK)
            mesh_pair_pump(p, 0);
        if (rc == MESH_OK && !p->connected)
            rc = MESH_ERR_PROTOCOL;
    }
    if (rc != MESH_OK)
        mesh_pair_stop(p);
    return rc;
}

void mesh_pair_stop(mesh_pair *p)
{
    disconnect(p);
    for (int i = 0; i < 2; i++) {
        mesh_tls_free(p->tmpl_srv[i]);
        mesh_tls_free(p->tmpl_cli[i]);
        free(p->tmpl_hello[i].b);
    }
    mesh_tls_ctx_free(p->ctx_s);
    mesh_tls_ctx_free(p->ctx_c);
    mesh_identity_free(p->id_s);
    mesh_identity_free(p->id_c);
    free(p->to_client.b);
    free(p->to_server.b);
    for (size_t i = 0; i < MESH_PAIR_MAX_MSGS; i++)
        free(p->msgs[i].b);
    memset(p, 0, sizeof *p);
}
