/* session.c — an authenticated session's state machine: TLS handshake, hello, liveness,
 * timeouts, teardown. See session.h for the protocol and the contract.
 *
 * Invariants:
 *  - One env timer per session, always armed at the earliest of the state's deadlines
 *    (phase timeout; next heartbeat or liveness deadline; "now" while on_closed is due).
 *  - s->stream is NULL once released (by us or by the driver's on_closed).
 *  - Re-entrancy: every entry from the env increments s->depth; mesh_session_free() inside a
 *    callback only marks the session freed (releasing the stream and timer at once), and the
 *    outermost entry frees the memory when it unwinds. Loops check s->freed and the state
 *    after every application callback.
 *
 * Apart: the hello each side signs and checks (hello.c); heartbeats and PINGs
 * (session_live.c); the bytes path between TLS plaintext and envelopes (framing, HTTP/2, the
 * AppData fast path, the TLS sink: session_io.c, sharing the object in session_io.h). */
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "core/session_io.h"

/* ---- state, timer, teardown ----------------------------------------------------------- */

const char *mesh_session_state_name(mesh_session_state st)
{
    static const char *const names[] = {"CONNECTING", "HANDSHAKING", "AUTHENTICATING",
                                        "CONNECTED",  "CLOSING",     "CLOSED"};
    return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "UNKNOWN";
}

static mesh_time liveness_deadline(const mesh_session *s)
{
    return mesh_session_add_sat(s->st.last_received_at, s->cfg.heartbeat_timeout);
}

static mesh_time deadline(const mesh_session *s)
{
    switch (s->state) {
    case MESH_SESSION_CONNECTING:
        return mesh_session_add_sat(s->phase_start, s->cfg.connect_timeout);
    case MESH_SESSION_HANDSHAKING:
        return mesh_session_add_sat(s->phase_start, s->cfg.handshake_timeout);
    case MESH_SESSION_AUTHENTICATING:
        if (s->web_gate || s->decoy_on)
            return mesh_session_add_sat(s->phase_start, mesh_session_web_deadline(s));
        return mesh_session_add_sat(s->phase_start, s->cfg.auth_timeout);
    case MESH_SESSION_CONNECTED: {
        mesh_time live = liveness_deadline(s);
        return s->next_hb < live ? s->next_hb : live;
    }
    case MESH_SESSION_CLOSING:
        return mesh_session_now(s); /* on_closed is due */
    default:
        return MESH_TIME_NEVER;
    }
}

static void arm(mesh_session *s)
{
    if (!s->timer)
        return;
    mesh_time d = deadline(s);
    if (d == MESH_TIME_NEVER)
        s->env.ops->timer_stop(s->env.obj, s->timer);
    else
        s->env.ops->timer_set(s->env.obj, s->timer, d);
}

static void set_state(mesh_session *s, mesh_session_state st)
{
    mesh_log(&s->env, MESH_LOG_DEBUG, "session %p: %s -> %s", (void *)s,
             mesh_session_state_name(s->state), mesh_session_state_name(st));
    s->state = st;
    s->phase_start = mesh_session_now(s);
}

/* Best effort: tell the peer why, then close_notify (only once TLS is up and healthy). */
static void say_goodbye(mesh_session *s, int reason, int goodbye)
{
    if (!s->stream || !s->tls || !mesh_tls_is_done(s->tls))
        return;
    if (goodbye) {
        Meshara__Wire__Goodbye g = MESHARA__WIRE__GOODBYE__INIT;
        g.reason = reason;
        mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
        e.body_case = MESHARA__WIRE__ENVELOPE__BODY_GOODBYE;
        e.goodbye = &g;
        uint8_t *f = NULL;
        size_t flen = 0;
        if (mesh_session_frame_create(&e, s->cfg.max_frame, &f, &flen) == MESH_OK)
            (void)mesh_session_io_write_frame(s, f, flen);
        free(f);
    }
    (void)mesh_tls_close(s->tls);
}

/* Enter CLOSING with reason (first reason wins): release the stream and schedule
 * on_closed. abort_stream: RST instead of a graceful FIN (a dead peer gets nothing). */
void mesh_session_release_stream(mesh_session *s, int abort_stream, int goodbye)
{
    mesh_session_web_release(s); /* a decoy's upstream ends with the client */
    if (!s->stream)
        return;
    if (!abort_stream && !s->write_err)
        say_goodbye(s, s->reason, goodbye);
    s->env.ops->stream_close(s->env.obj, s->stream,
                             abort_stream ? MESH_CLOSE_ABORT : MESH_CLOSE_GRACEFUL);
    s->stream = NULL;
}

void mesh_session_end(mesh_session *s, int reason, int abort_stream)
{
    if (s->state >= MESH_SESSION_CLOSING)
        return;
    s->reason = reason;
    if (s->in_h2 && !abort_stream) {
        /* Inside nghttp2, which must not be re-entered to send: what the application queued
         * and our Goodbye go out when mesh_h2_recv returns (h2_input), then the FIN. */
        s->close_after_h2 = 1;
    } else {
        /* A web-profile server says nothing of its own before the client proved itself
         * (nor could it: without HTTP/2 up a framed Goodbye is garbage to the client). */
        int quiet = !s->is_client && !s->authenticated &&
                    mesh_tls_ctx_profile(s->tls_ctx) == MESH_PROFILE_WEB;
        mesh_session_release_stream(
            s, abort_stream,
            (s->state == MESH_SESSION_CONNECTED || s->state == MESH_SESSION_AUTHENTICATING) &&
                !quiet);
    }
    mesh_log(&s->env, reason == MESH_OK ? MESH_LOG_DEBUG : MESH_LOG_INFO,
             "session %p: closing in %s: %s%s%s", (void *)s, mesh_session_state_name(s->state),
             mesh_errname(reason), s->tls && *mesh_tls_error_text(s->tls) ? " / " : "",
             s->tls ? mesh_tls_error_text(s->tls) : "");
    set_state(s, MESH_SESSION_CLOSING);
    arm(s);
}

static void destroy(mesh_session *s)
{
    mesh_session_web_release(s);
    if (s->stream)
        s->env.ops->stream_close(s->env.obj, s->stream, MESH_CLOSE_ABORT);
    if (s->timer)
        s->env.ops->timer_free(s->env.obj, s->timer);
    mesh_h2_free(s->h2);
    mesh_tls_free(s->tls);
    mesh_frame_dec_free(&s->rx);
    OPENSSL_cleanse(s, sizeof *s);
    free(s);
}

void mesh_session_free(mesh_session *s)
{
    if (!s || s->freed)
        return;
    if (s->depth > 0) {
        /* Inside one of our callbacks: release the env handles now (env rule 2), the memory
         * when the outermost entry unwinds. */
        s->freed = 1;
        if (s->stream) {
            s->env.ops->stream_close(s->env.obj, s->stream, MESH_CLOSE_ABORT);
            s->stream = NULL;
        }
        if (s->timer) {
            s->env.ops->timer_free(s->env.obj, s->timer);
            s->timer = NULL;
        }
        return;
    }
    destroy(s);
}

static void enter(mesh_session *s)
{
    s->depth++;
}

/* Returns 1 if s is gone. */
static int leave(mesh_session *s)
{
    if (--s->depth == 0 && s->freed) {
        s->freed = 0; /* so destroy's free path is plain */
        destroy(s);
        return 1;
    }
    return 0;
}

void mesh_session_enter(mesh_session *s)
{
    enter(s);
}

int mesh_session_leave(mesh_session *s)
{
    if (s->depth == 1 && !s->freed)
        arm(s); /* a decoy's event may have moved the deadline */
    return leave(s);
}

/* The reason for an orderly end the peer chose (Goodbye, close_notify, GOAWAY, FIN after
 * them): MESH_OK once it was authenticated; before that the session failed to come up, and
 * the owner (e.g. a server's on_failed) must not read it as success. */
static int peer_close_reason(const mesh_session *s)
{
    return s->authenticated ? MESH_OK : MESH_ERR_CLOSED;
}

/* ---- sending ---------------------------------------------------------------------------- */

/* A send failed: the stream or TLS is broken (closing ends it); an encode failure is the
 * caller's to report. Returns rc. */
int mesh_session_after_send(mesh_session *s, int rc)
{
    if (rc == MESH_OK || rc == MESH_ERR_TOO_BIG || rc == MESH_ERR_INVAL || rc == MESH_ERR_NOMEM ||
        rc == MESH_ERR_AGAIN) /* AGAIN: HTTP/2's queue; a heartbeat is skipped, not fatal */
        return rc;
    mesh_session_end(s, rc, 1);
    return rc;
}

/* ---- receiving: envelopes from the bytes path ----------------------------------------- */

static void become_connected(mesh_session *s)
{
    mesh_node_id_of(s->peer_key, s->peer_id);
    s->authenticated = 1;
    mesh_tls_drop_handshake(s->tls); /* both hellos are done with the exporter */
    set_state(s, MESH_SESSION_CONNECTED);
    s->st.connected_at = s->phase_start;
    mesh_session_live_start(s);
    arm(s);
    if (s->cbs.on_connected)
        s->cbs.on_connected(s, s->ud);
}

int mesh_session_dispatch(mesh_session *s, const mesh_envelope *e)
{
    if (s->state == MESH_SESSION_AUTHENTICATING) {
        if (e->body_case == MESHARA__WIRE__ENVELOPE__BODY_GOODBYE) { /* refused by the peer */
            s->peer_reason = e->goodbye->reason;
            mesh_session_end(s, MESH_ERR_CLOSED, 0);
            return MESH_OK;
        }
        uint8_t exporter[MESH_SESSION_EXPORTER_LEN];
        int rc = mesh_tls_export(s->tls, MESH_SESSION_EXPORTER_LABEL, exporter, sizeof exporter);
        if (rc != MESH_OK)
            return rc;
        rc = mesh_hello_consume(e,
                                s->is_client ? MESH_SESSION_ROLE_SERVER : MESH_SESSION_ROLE_CLIENT,
                                exporter, s->has_pin ? s->pinned : NULL, s->peer_key);
        if (rc != MESH_OK)
            return rc;
        /* What the server saw: a hint about us (docs/nat.md), never a reason to fail. */
        const char *obs = e->hello->observed_address;
        s->has_observed =
            s->is_client && obs && strlen(obs) < MESH_ADDR_STRLEN &&
            mesh_addr_parse(&s->observed, obs) == MESH_OK &&
            s->env.ops->stream_addrs(s->env.obj, s->stream, &s->local, NULL) == MESH_OK &&
            s->local.family == s->observed.family;
        become_connected(s);
        return MESH_OK;
    }
    switch (e->body_case) {
    case MESHARA__WIRE__ENVELOPE__BODY_HELLO:
        return MESH_ERR_PROTOCOL; /* exactly one hello, first */
    case MESHARA__WIRE__ENVELOPE__BODY_HEARTBEAT:
        mesh_session_live_heartbeat(s, e->heartbeat);
        return MESH_OK;
    case MESHARA__WIRE__ENVELOPE__BODY_GOODBYE:
        s->peer_reason = e->goodbye->reason;
        s->orderly = 1;
        mesh_session_end(s, peer_close_reason(s), 0);
        return MESH_OK;
    default:
        if (s->cbs.on_message)
            s->cbs.on_message(s, e, s->ud);
        return MESH_OK;
    }
}

/* Our hello (see session.h), once. MESH_OK or the code that ends the session. */
int mesh_session_send_hello(mesh_session *s)
{
    if (s->hello_sent)
        return MESH_OK;
    uint8_t exporter[MESH_SESSION_EXPORTER_LEN];
    uint8_t *f = NULL;
    size_t flen = 0;
    int rc = mesh_tls_export(s->tls, MESH_SESSION_EXPORTER_LABEL, exporter, sizeof exporter);
    if (rc == MESH_OK)
        rc = mesh_hello_create(mesh_tls_ctx_identity(s->tls_ctx),
                               s->is_client ? MESH_SESSION_ROLE_CLIENT : MESH_SESSION_ROLE_SERVER,
                               exporter, s->is_client ? NULL : &s->peer_addr, &f, &flen);
    if (rc == MESH_OK)
        rc = mesh_session_io_write_frame(s, f, flen);
    free(f);
    s->hello_sent = rc == MESH_OK;
    return rc;
}

/* A framed-mode server sends its hello with its TLS flight, before the client's Finished
 * (0.5-RTT data, RFC 8446 §2): the client can verify it the moment its own handshake
 * completes, which saves it a round trip. The exporter it signs is fixed by then (it covers
 * the transcript up to the server's Finished), so the binding is the same. In HTTP/2 mode a
 * server may only answer a stream the client opened, so it waits. */
static void early_hello(mesh_session *s)
{
    if (s->is_client || s->hello_sent || mesh_tls_early(s->tls) != MESH_OK ||
        strcmp(mesh_tls_alpn(s->tls), MESH_SESSION_H2_ALPN) == 0)
        return;
    int rc = mesh_session_send_hello(s);
    if (rc != MESH_OK)
        mesh_session_end(s, rc, 0);
}

static void tls_done(mesh_session *s)
{
    /* HTTP/2 first: when it cannot start there is nothing to carry a Goodbye (a framed one
     * would be garbage to the peer's nghttp2, read as a protocol error), so the session ends
     * as a failed handshake does: close_notify and FIN only. */
    int rc = MESH_OK;
    if (!s->is_client && mesh_tls_ctx_profile(s->tls_ctx) == MESH_PROFILE_WEB) {
        /* A web server: its hello only in the response to a verified client hello. */
        set_state(s, MESH_SESSION_AUTHENTICATING);
        if ((rc = mesh_session_web_start(s)) != MESH_OK)
            mesh_session_end(s, rc, 0);
        arm(s);
        return;
    }
    if (strcmp(mesh_tls_alpn(s->tls), MESH_SESSION_H2_ALPN) == 0 &&
        (rc = mesh_session_io_h2_start(s)) != MESH_OK) {
        mesh_session_end(s, rc, 0);
        return;
    }
    set_state(s, MESH_SESSION_AUTHENTICATING);
    arm(s);
    if ((rc = mesh_session_send_hello(s)) != MESH_OK)
        mesh_session_end(s, rc, 0);
}

/* Drive TLS with what was fed: handshake, then the plaintext. */
static void process_input(mesh_session *s)
{
    if (s->state == MESH_SESSION_HANDSHAKING) {
        int rc = mesh_tls_handshake(s->tls);
        if (rc == MESH_ERR_AGAIN) {
            if (!s->write_err)
                early_hello(s);
            if (s->write_err && !mesh_session_stopped(s))
                mesh_session_end(s, s->write_err, 1);
            return;
        }
        if (rc != MESH_OK) {
            mesh_session_end(s, rc, 0); /* graceful: the alert already queued goes out */
            return;
        }
        tls_done(s);
        if (mesh_session_stopped(s))
            return;
    }
    int rc = mesh_session_io_input(s);
    if (mesh_session_stopped(s))
        return;
    if (rc == MESH_ERR_CLOSED) { /* close_notify (or GOAWAY without error) */
        s->orderly = 1;
        mesh_session_end(s, mesh_session_io_partial(s) ? MESH_ERR_TRUNCATED : peer_close_reason(s),
                         0);
        return;
    }
    if (rc != MESH_OK) {
        mesh_session_end(s, rc, 0);
        return;
    }
    if (s->write_err)
        mesh_session_end(s, s->write_err, 1);
}

/* ---- env callbacks ---------------------------------------------------------------------- */

static void st_connected(mesh_stream *st, void *ud)
{
    (void)st;
    mesh_session *s = ud;
    enter(s);
    if (s->state == MESH_SESSION_CONNECTING) {
        set_state(s, MESH_SESSION_HANDSHAKING);
        arm(s);
        process_input(s); /* the ClientHello */
    }
    leave(s);
}

static void st_data(mesh_stream *st, const uint8_t *data, size_t len, void *ud)
{
    (void)st;
    mesh_session *s = ud;
    enter(s);
    s->st.bytes_received += len;
    s->st.last_received_at = mesh_session_now(s);
    if (s->state >= MESH_SESSION_HANDSHAKING && s->state <= MESH_SESSION_CONNECTED) {
        int rc = mesh_tls_lend(s->tls, data, len); /* read in place, the rest kept below */
        if (rc != MESH_OK) {
            mesh_session_end(s, rc, 1);
        } else {
            process_input(s);
            rc = s->tls ? mesh_tls_keep(s->tls) : MESH_OK;
            if (rc != MESH_OK && !mesh_session_stopped(s))
                mesh_session_end(s, rc, 1);
        }
    }
    mesh_session_io_trim(s);
    leave(s);
}

static void st_writable(mesh_stream *st, void *ud)
{
    (void)st;
    mesh_session *s = ud;
    enter(s);
    if (s->want_writable && s->state == MESH_SESSION_CONNECTED &&
        mesh_session_queued(s) < s->cfg.send_queue_max) {
        s->want_writable = 0;
        if (s->cbs.on_writable)
            s->cbs.on_writable(s, s->ud);
    }
    leave(s);
}

static void st_closed(mesh_stream *st, int reason, void *ud)
{
    (void)st;
    mesh_session *s = ud;
    enter(s);
    s->stream = NULL; /* released by the driver (env rule 4) */
    int r = reason;
    if (reason == MESH_OK) { /* FIN */
        if (mesh_session_io_partial(s) || (s->tls && mesh_tls_partial(s->tls)))
            r = MESH_ERR_TRUNCATED;
        else if (!s->orderly)
            r = MESH_ERR_CLOSED; /* no goodbye, no close_notify */
        else
            r = peer_close_reason(s);
    }
    mesh_session_end(s, r, 0);
    leave(s);
}

static const mesh_stream_cbs STREAM_CBS = {st_connected, st_data, st_writable, st_closed};

static void on_timer(mesh_timer *t, void *ud)
{
    (void)t;
    mesh_session *s = ud;
    enter(s);
    mesh_time now = mesh_session_now(s);
    switch (s->state) {
    case MESH_SESSION_CONNECTING:
    case MESH_SESSION_HANDSHAKING:
    case MESH_SESSION_AUTHENTICATING:
        if (now >= deadline(s))
            mesh_session_end(s, MESH_ERR_TIMEOUT, s->state == MESH_SESSION_CONNECTING);
        break;
    case MESH_SESSION_CONNECTED:
        if (now >= liveness_deadline(s)) {
            mesh_session_end(s, MESH_ERR_TIMEOUT, 1); /* a dead peer gets nothing more */
            break;
        }
        if (now >= s->next_hb)
            (void)mesh_session_live_tick(s, now);
        break;
    case MESH_SESSION_CLOSING:
        set_state(s, MESH_SESSION_CLOSED);
        if (s->cbs.on_closed)
            s->cbs.on_closed(s, s->reason, s->ud);
        break;
    default:
        break;
    }
    if (!s->freed)
        arm(s);
    leave(s);
}

/* ---- creation --------------------------------------------------------------------------- */

static void fill_defaults(mesh_session_cfg *c, const mesh_session_cfg *in)
{
    *c = in ? *in : (mesh_session_cfg){0};
    if (!c->connect_timeout)
        c->connect_timeout = MESH_SESSION_DEFAULT_CONNECT_TIMEOUT_MS * MESH_NS_PER_MS;
    if (!c->handshake_timeout)
        c->handshake_timeout = MESH_SESSION_DEFAULT_HANDSHAKE_TIMEOUT_MS * MESH_NS_PER_MS;
    if (!c->auth_timeout)
        c->auth_timeout = MESH_SESSION_DEFAULT_AUTH_TIMEOUT_MS * MESH_NS_PER_MS;
    if (!c->heartbeat_interval)
        c->heartbeat_interval = MESH_SESSION_DEFAULT_HEARTBEAT_MS * MESH_NS_PER_MS;
    if (!c->heartbeat_timeout)
        c->heartbeat_timeout = c->heartbeat_interval / MESH_SESSION_HEARTBEAT_TIMEOUT_DEN *
                               MESH_SESSION_HEARTBEAT_TIMEOUT_NUM;
    if (!c->send_queue_max)
        c->send_queue_max = MESH_SESSION_DEFAULT_SEND_QUEUE_MAX;
    if (!c->max_frame)
        c->max_frame = MESH_FRAME_DEFAULT_MAX;
    if (c->max_frame > MESH_FRAME_ABS_MAX)
        c->max_frame = MESH_FRAME_ABS_MAX;
}

/* A session object; its TLS connection new, or a clone of established (mesh_tls_clone). */
static int session_new(mesh_session **out, const mesh_env *env, mesh_tls_ctx *tls, int is_client,
                       const mesh_tls *established, const mesh_session_cfg *cfg,
                       const mesh_session_cbs *cbs, void *ud)
{
    mesh_session *s = calloc(1, sizeof *s);
    if (!s)
        return MESH_ERR_NOMEM;
    s->env = *env;
    s->tls_ctx = tls;
    s->is_client = is_client;
    if (cbs)
        s->cbs = *cbs;
    s->ud = ud;
    fill_defaults(&s->cfg, cfg);
    /* A web server's handshake may take what nginx gives it (client_header_timeout). */
    if (!is_client && mesh_tls_ctx_profile(tls) == MESH_PROFILE_WEB &&
        !(cfg && cfg->handshake_timeout))
        s->cfg.handshake_timeout = MESH_SESSION_WEB_HANDSHAKE_TIMEOUT_MS * MESH_NS_PER_MS;
    mesh_frame_dec_init(&s->rx, s->cfg.max_frame);
    s->st.created_at = mesh_session_now(s);
    s->timer = env->ops->timer_new(env->obj, on_timer, s);
    static const char *const h2_only[] = {MESH_SESSION_H2_ALPN, NULL};
    const char *const *alpn = is_client && s->cfg.http2 ? h2_only : NULL;
    int rc = !s->timer ? MESH_ERR_NOMEM
             : established
                 ? mesh_tls_clone(&s->tls, established, mesh_session_io_tls_out, s)
                 : mesh_tls_new(&s->tls, tls, !is_client, alpn, mesh_session_io_tls_out, s);
    if (rc == MESH_OK && is_client && !established && cfg && cfg->server_name)
        rc = mesh_tls_set_server_name(s->tls, cfg->server_name);
    s->cfg.server_name = NULL; /* borrowed for this call only */
    if (rc == MESH_OK && env->ops->stream_reserve && env->ops->stream_commit)
        mesh_tls_set_reserve(s->tls, mesh_session_io_tls_reserve, mesh_session_io_tls_commit);
    if (rc != MESH_OK) {
        destroy(s);
        return rc;
    }
    *out = s;
    return MESH_OK;
}

int mesh_session_connect(mesh_session **out, const mesh_env *env, mesh_tls_ctx *tls,
                         const mesh_addr *to, const uint8_t *pinned, const mesh_session_cfg *cfg,
                         const mesh_session_cbs *cbs, void *ud)
{
    if (!out || !env || !tls || !to)
        return MESH_ERR_INVAL;
    mesh_session *s = NULL;
    int rc = session_new(&s, env, tls, 1, NULL, cfg, cbs, ud);
    if (rc != MESH_OK)
        return rc;
    if (pinned) {
        s->has_pin = 1;
        memcpy(s->pinned, pinned, MESH_PUBKEY_LEN);
    }
    s->peer_addr = *to;
    int err = MESH_ERR_INVAL;
    if (s->cfg.local.port && env->ops->connect_from) /* e.g. the listener's: its NAT mapping */
        s->stream = env->ops->connect_from(env->obj, &s->cfg.local, to, &STREAM_CBS, s, &err);
    if (!s->stream) /* (or the port cannot be shared now: any will do) */
        s->stream = env->ops->connect(env->obj, to, &STREAM_CBS, s, &err);
    if (!s->stream) {
        destroy(s);
        return err;
    }
    s->state = MESH_SESSION_CONNECTING;
    s->phase_start = mesh_session_now(s);
    arm(s);
    *out = s;
    return MESH_OK;
}

/* A session over a stream that is already connected: the server's accepted one, or a
 * client's virtual stream (vstream.h); its TLS a clone of established when that is not NULL
 * (mesh_session_accept_clone). The session owns the stream, also on failure. */
static int session_on_stream(mesh_session **out, const mesh_env *env, mesh_tls_ctx *tls,
                             int is_client, mesh_stream *stream, const uint8_t *pinned,
                             const mesh_tls *established, const mesh_session_cfg *cfg,
                             const mesh_session_cbs *cbs, void *ud)
{
    if (!out || !env || !tls || !stream) {
        if (env && stream)
            env->ops->stream_close(env->obj, stream, MESH_CLOSE_ABORT);
        return MESH_ERR_INVAL;
    }
    mesh_session *s = NULL;
    int rc = session_new(&s, env, tls, is_client, established, cfg, cbs, ud);
    if (rc != MESH_OK) {
        env->ops->stream_close(env->obj, stream, MESH_CLOSE_ABORT);
        return rc;
    }
    if (pinned) {
        s->has_pin = 1;
        memcpy(s->pinned, pinned, MESH_PUBKEY_LEN);
    }
    s->stream = stream;
    env->ops->stream_set_cbs(env->obj, stream, &STREAM_CBS, s);
    (void)env->ops->stream_addrs(env->obj, stream, NULL, &s->peer_addr);
    s->state = MESH_SESSION_HANDSHAKING;
    s->phase_start = mesh_session_now(s);
    arm(s);
    if (is_client) { /* the ClientHello now; a failure closes it, on_closed follows */
        enter(s);
        process_input(s);
        leave(s);
    }
    if (established)
        tls_done(s); /* the handshake is over already: straight on, as process_input would */
    *out = s;
    return MESH_OK;
}

int mesh_session_accept(mesh_session **out, const mesh_env *env, mesh_tls_ctx *tls,
                        mesh_stream *stream, const mesh_session_cfg *cfg,
                        const mesh_session_cbs *cbs, void *ud)
{
    return session_on_stream(out, env, tls, 0, stream, NULL, NULL, cfg, cbs, ud);
}

int mesh_session_connect_stream(mesh_session **out, const mesh_env *env, mesh_tls_ctx *tls,
                                mesh_stream *stream, const uint8_t *pinned,
                                const mesh_session_cfg *cfg, const mesh_session_cbs *cbs, void *ud)
{
    return session_on_stream(out, env, tls, 1, stream, pinned, NULL, cfg, cbs, ud);
}

int mesh_session_accept_clone(mesh_session **out, const mesh_env *env, mesh_tls_ctx *tls,
                              mesh_stream *stream, const mesh_tls *established,
                              const mesh_session_cfg *cfg, const mesh_session_cbs *cbs, void *ud)
{
    if (!established) {
        if (env && stream)
            env->ops->stream_close(env->obj, stream, MESH_CLOSE_ABORT);
        return MESH_ERR_INVAL;
    }
    return session_on_stream(out, env, tls, 0, stream, NULL, established, cfg, cbs, ud);
}

void mesh_session_set_cbs(mesh_session *s, const mesh_session_cbs *cbs, void *ud)
{
    if (cbs)
        s->cbs = *cbs;
    else
        memset(&s->cbs, 0, sizeof s->cbs);
    s->ud = ud;
}

/* ---- application API -------------------------------------------------------------------- */

size_t mesh_session_queued(const mesh_session *s)
{
    size_t q = s->stream ? s->env.ops->stream_pending(s->env.obj, s->stream) : 0;
    return q + (s->h2 ? mesh_h2_queued(s->h2) : 0);
}

int mesh_session_send(mesh_session *s, const mesh_envelope *e)
{
    if (!s || !e)
        return MESH_ERR_INVAL;
    if (s->state != MESH_SESSION_CONNECTED || s->freed)
        return MESH_ERR_STATE;
    if (e->body_case == MESHARA__WIRE__ENVELOPE__BODY_HELLO ||
        e->body_case == MESHARA__WIRE__ENVELOPE__BODY_HEARTBEAT)
        return MESH_ERR_INVAL;
    if (mesh_session_queued(s) >= s->cfg.send_queue_max) {
        s->want_writable = 1;
        return MESH_ERR_AGAIN;
    }
    int rc = mesh_session_after_send(s, mesh_session_io_send(s, e));
    if (rc == MESH_ERR_AGAIN) /* HTTP/2's own queue bound */
        s->want_writable = 1;
    return rc;
}

int mesh_session_send_data(mesh_session *s, uint64_t msg_id, const uint8_t *data, size_t len)
{
    Meshara__Wire__AppData d = MESHARA__WIRE__APP_DATA__INIT;
    d.msg_id = msg_id;
    d.payload.data = (uint8_t *)data;
    d.payload.len = len;
    mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
    e.body_case = MESHARA__WIRE__ENVELOPE__BODY_DATA;
    e.data = &d;
    return mesh_session_send(s, &e);
}

int mesh_session_close(mesh_session *s)
{
    if (!s || s->state >= MESH_SESSION_CLOSING || s->freed)
        return MESH_ERR_STATE;
    mesh_session_end(s, MESH_OK, 0);
    return MESH_OK;
}

mesh_session_state mesh_session_get_state(const mesh_session *s)
{
    return s->state;
}
int mesh_session_reason(const mesh_session *s)
{
    return s->reason;
}
int mesh_session_peer_reason(const mesh_session *s)
{
    return s->peer_reason;
}
int mesh_session_is_client(const mesh_session *s)
{
    return s->is_client;
}
mesh_addr mesh_session_peer_addr(const mesh_session *s)
{
    return s->peer_addr;
}

int mesh_session_observed_addr(const mesh_session *s, mesh_addr *observed, mesh_addr *local)
{
    if (!s->has_observed)
        return MESH_ERR_NOT_FOUND;
    *observed = s->observed;
    if (local)
        *local = s->local;
    return MESH_OK;
}

const uint8_t *mesh_session_peer_key(const mesh_session *s)
{
    return s->authenticated ? s->peer_key : NULL;
}

const uint8_t *mesh_session_peer_id(const mesh_session *s)
{
    return mesh_session_peer_key(s) ? s->peer_id : NULL;
}

const char *mesh_session_alpn(const mesh_session *s)
{
    return mesh_tls_alpn(s->tls);
}

void mesh_session_get_stats(const mesh_session *s, mesh_session_stats *out)
{
    *out = s->st;
}
