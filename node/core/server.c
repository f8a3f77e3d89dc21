/* server.c — listener + bounded set of handshaking sessions (server.h).
 *
 * The handshaking sessions live in an array of max_handshakes slots (removal swaps in the
 * last one), so the bound is structural. Re-entrancy follows session.c: an entry counter,
 * and mesh_server_free() inside a callback only marks the server, which the outermost entry
 * frees when it unwinds.
 */
#include "core/server.h"

#include <stdlib.h>
#include <string.h>

struct mesh_server {
    mesh_env env;
    mesh_tls_ctx *tls;
    mesh_listener *listener;
    mesh_server_cfg cfg;
    mesh_server_cbs cbs;
    void *ud;
    mesh_session **hs; /* sessions between accept and CONNECTED */
    size_t nhs;
    int depth, freed;
    mesh_server_stats st;
};

static void destroy(mesh_server *srv)
{
    if (srv->listener)
        srv->env.ops->listener_close(srv->env.obj, srv->listener);
    for (size_t i = 0; i < srv->nhs; i++)
        mesh_session_free(srv->hs[i]);
    free(srv->hs);
    free(srv);
}

static void enter(mesh_server *srv)
{
    srv->depth++;
}

static void leave(mesh_server *srv)
{
    if (--srv->depth == 0 && srv->freed)
        destroy(srv);
}

/* Forget s from the handshaking set. 1 if it was there. */
static int take(mesh_server *srv, mesh_session *s)
{
    for (size_t i = 0; i < srv->nhs; i++) {
        if (srv->hs[i] == s) {
            srv->hs[i] = srv->hs[--srv->nhs];
            return 1;
        }
    }
    return 0;
}

static void hs_connected(mesh_session *s, void *ud)
{
    mesh_server *srv = ud;
    if (srv->freed || !take(srv, s))
        return;
    enter(srv);
    srv->st.connected++;
    mesh_session_set_cbs(s, NULL, NULL); /* the owner installs its own */
    srv->cbs.on_session(srv, s, srv->ud);
    leave(srv);
}

static void hs_closed(mesh_session *s, int reason, void *ud)
{
    mesh_server *srv = ud;
    if (srv->freed || !take(srv, s))
        return;
    enter(srv);
    srv->st.failed++;
    if (srv->cbs.on_failed) {
        mesh_addr peer = mesh_session_peer_addr(s);
        srv->cbs.on_failed(srv, reason, &peer, srv->ud);
    }
    mesh_session_free(s); /* inside its own callback: deferred by the session */
    leave(srv);
}

static const mesh_session_cbs HS_CBS = {.on_connected = hs_connected, .on_closed = hs_closed};

static void on_accept(mesh_listener *l, mesh_stream *stream, const mesh_addr *peer, void *ud)
{
    (void)l;
    mesh_server *srv = ud;
    char a[MESH_ADDR_STRLEN];
    if (srv->freed || srv->nhs >= srv->cfg.max_handshakes) {
        srv->env.ops->stream_close(srv->env.obj, stream, MESH_CLOSE_ABORT);
        srv->st.rejected++;
        mesh_log(&srv->env, MESH_LOG_INFO, "server: %zu handshakes in progress: refused %s",
                 srv->nhs, mesh_addr_format(peer, a, sizeof a));
        return;
    }
    mesh_session *s = NULL;
    int rc = mesh_session_accept(&s, &srv->env, srv->tls, stream, &srv->cfg.session, &HS_CBS, srv);
    if (rc != MESH_OK) { /* the stream is already closed by mesh_session_accept */
        srv->st.rejected++;
        mesh_log(&srv->env, MESH_LOG_WARN, "server: cannot accept %s: %s",
                 mesh_addr_format(peer, a, sizeof a), mesh_errname(rc));
        return;
    }
    srv->hs[srv->nhs++] = s;
    srv->st.accepted++;
}

int mesh_server_new(mesh_server **out, const mesh_env *env, mesh_tls_ctx *tls,
                    const mesh_addr *addr, const mesh_server_cfg *cfg, const mesh_server_cbs *cbs,
                    void *ud)
{
    if (!out || !env || !tls || !addr || !cbs || !cbs->on_session)
        return MESH_ERR_INVAL;
    mesh_server_cfg c = {0};
    if (cfg)
        c = *cfg;
    if (!c.max_handshakes)
        c.max_handshakes = MESH_SERVER_DEFAULT_MAX_HANDSHAKES;
    if (c.max_handshakes > MESH_SERVER_MAX_HANDSHAKES)
        return MESH_ERR_INVAL;
    mesh_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return MESH_ERR_NOMEM;
    srv->env = *env;
    srv->tls = tls;
    srv->cfg = c;
    srv->cbs = *cbs;
    srv->ud = ud;
    srv->hs = calloc(c.max_handshakes, sizeof *srv->hs);
    if (!srv->hs) {
        destroy(srv);
        return MESH_ERR_NOMEM;
    }
    int err = MESH_ERR_ADDR;
    srv->listener = env->ops->listen(env->obj, addr, on_accept, srv, &err);
    if (!srv->listener) {
        destroy(srv);
        return err;
    }
    *out = srv;
    return MESH_OK;
}

void mesh_server_free(mesh_server *srv)
{
    if (!srv || srv->freed)
        return;
    if (srv->depth > 0) {
        srv->freed = 1;
        if (srv->listener) {
            srv->env.ops->listener_close(srv->env.obj, srv->listener);
            srv->listener = NULL;
        }
        return;
    }
    destroy(srv);
}

int mesh_server_addr(const mesh_server *srv, mesh_addr *out)
{
    if (!srv || !out || !srv->listener)
        return MESH_ERR_INVAL;
    return srv->env.ops->listener_addr(srv->env.obj, srv->listener, out);
}

void mesh_server_get_stats(const mesh_server *srv, mesh_server_stats *out)
{
    *out = srv->st;
    out->handshaking = srv->nhs;
}
