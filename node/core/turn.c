/* turn.c — the TURN client (turn.h), control connection. Sections: requests (build, send,
 * credentials), responses (checks, outcomes per method), permissions and timing (one wake
 * timer for deadlines and refreshes), life. Data connections: turn_conn.c. */
#include "core/turn_impl.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

static void die(mesh_turn *t, int status);

int mesh_turn_error_status(int code)
{
    switch (code) {
    case 401:
    case 441:
        return MESH_ERR_AUTH;
    case 486:
    case 508:
        return MESH_ERR_LIMIT;
    case 447:
        return MESH_ERR_UNREACHABLE;
    default:
        return MESH_ERR_REFUSED;
    }
}

/* ---- requests ------------------------------------------------------------------------------ */

/* Credentials (once the server named its realm), then FINGERPRINT. */
void mesh_turn_enc_auth(mesh_turn *t, mesh_stun_enc *e)
{
    if (t->have_key) {
        mesh_stun_enc_text(e, MESH_STUN_A_USERNAME, t->user, strlen(t->user));
        mesh_stun_enc_text(e, MESH_STUN_A_REALM, t->realm, t->rlen);
        mesh_stun_enc_text(e, MESH_STUN_A_NONCE, t->nonce, t->nlen);
        mesh_stun_enc_integrity(e, t->key, sizeof t->key);
    }
    mesh_stun_enc_fingerprint(e);
}

static const unsigned METHOD[] = {MESH_STUN_ALLOCATE, MESH_STUN_REFRESH,
                                  MESH_STUN_CREATE_PERMISSION, MESH_STUN_CONNECT};

/* Build x's request (a fresh transaction id each time: a resend is a new transaction). */
static int build(mesh_turn *t, ctxn *x, uint8_t *buf, size_t cap, size_t *len)
{
    mesh_env_random(&t->env, x->tid, sizeof x->tid);
    mesh_stun_enc e;
    mesh_stun_enc_init(&e, buf, cap, mesh_stun_type(METHOD[x->kind], MESH_STUN_REQUEST), x->tid);
    if (x->kind == K_ALLOCATE)
        mesh_stun_enc_transport(&e, MESH_STUN_TRANSPORT_TCP);
    if (x->kind == K_ALLOCATE || x->kind == K_REFRESH)
        mesh_stun_enc_u32(&e, MESH_STUN_A_LIFETIME, t->state == S_DEAD ? 0 : t->cfg.lifetime_s);
    for (size_t i = 0; x->kind == K_PERMISSION && i < t->nperms; i++)
        mesh_stun_enc_addr(&e, MESH_STUN_A_XOR_PEER_ADDRESS, &t->perms[i]);
    if (x->kind == K_CONNECT)
        mesh_stun_enc_addr(&e, MESH_STUN_A_XOR_PEER_ADDRESS, &t->dc[x->conn].peer);
    mesh_turn_enc_auth(t, &e);
    x->authed = t->have_key;
    return mesh_stun_enc_finish(&e, len);
}

static int send_txn(mesh_turn *t, ctxn *x)
{
    uint8_t buf[MESH_TURN_RX_MAX];
    size_t len = 0;
    int rc = build(t, x, buf, sizeof buf, &len);
    if (rc == MESH_OK && !t->ctl)
        rc = MESH_ERR_CLOSED;
    if (rc == MESH_OK)
        rc = t->env.ops->stream_write(t->env.obj, t->ctl, buf, len);
    if (rc != MESH_OK)
        return rc;
    t->st.requests++;
    x->deadline = mesh_env_now(&t->env) + t->cfg.timeout;
    mesh_turn_rearm(t);
    return MESH_OK;
}

/* A new control transaction of kind (conn: the data connection of a Connect). */
int mesh_turn_start_txn(mesh_turn *t, int kind, int conn)
{
    for (size_t i = 0; i < MESH_TURN_MAX_TXNS; i++) {
        ctxn *x = &t->tx[i];
        if (x->used)
            continue;
        memset(x, 0, sizeof *x);
        x->used = 1;
        x->kind = kind;
        x->conn = conn;
        int rc = send_txn(t, x);
        if (rc != MESH_OK)
            x->used = 0;
        return rc;
    }
    return MESH_ERR_LIMIT;
}

/* ---- responses ----------------------------------------------------------------------------- */

/* Take REALM and NONCE from a 401/438 and derive the key. MESH_OK or MESH_ERR_PROTOCOL. */
static int take_nonce(mesh_turn *t, const mesh_stun_msg *m)
{
    const mesh_stun_attr *ra = mesh_stun_find(m, MESH_STUN_A_REALM);
    const mesh_stun_attr *na = mesh_stun_find(m, MESH_STUN_A_NONCE);
    const char *r = NULL, *n = NULL;
    size_t rl = 0, nl = 0;
    if (!na || mesh_stun_get_text(m, na, &n, &nl) != MESH_OK || !nl)
        return MESH_ERR_PROTOCOL;
    if (ra && mesh_stun_get_text(m, ra, &r, &rl) != MESH_OK)
        return MESH_ERR_PROTOCOL;
    if (!ra && !t->rlen)
        return MESH_ERR_PROTOCOL; /* a 438 may keep the realm; a first 401 must name one */
    if (ra) {
        memcpy(t->realm, r, rl);
        t->rlen = rl;
    }
    memcpy(t->nonce, n, nl);
    t->nlen = nl;
    int rc = mesh_stun_long_term_key(t->key, t->user, strlen(t->user), t->realm, t->rlen, t->pass,
                                     strlen(t->pass));
    t->have_key = rc == MESH_OK;
    return rc;
}

/* The checks every response passes (turn.h). 1 = take it; 0 = ignored (counted). */
int mesh_turn_response_ok(mesh_turn *t, const mesh_stun_msg *m, int authed)
{
    if (m->fp >= 0 && mesh_stun_check_fingerprint(m) != MESH_OK) {
        t->st.bad_fingerprint++;
        return 0;
    }
    int need = authed && (m->cls == MESH_STUN_SUCCESS || m->mi >= 0 || m->mi256 >= 0);
    if (need && mesh_stun_check_integrity(m, t->key, sizeof t->key, MESH_STUN_MI_ANY) != MESH_OK) {
        t->st.bad_integrity++;
        return 0;
    }
    return 1;
}

/* An error response's code; 0 when it has no readable ERROR-CODE. */
int mesh_turn_error_code(mesh_turn *t, const mesh_stun_msg *m)
{
    const mesh_stun_attr *a = mesh_stun_find(m, MESH_STUN_A_ERROR_CODE);
    int code = 0;
    if (!a || mesh_stun_get_error(m, a, &code, NULL, NULL) != MESH_OK)
        return 0;
    t->st.last_error_code = code;
    return code;
}

/* 401/438: new realm/nonce and one more try (bounded). 1 = resent; else the failure. */
int mesh_turn_reauth(mesh_turn *t, const mesh_stun_msg *m, int code, int authed, int *tries)
{
    if ((code == 401 && authed) || *tries >= MESH_TURN_MAX_AUTH_TRIES)
        return MESH_ERR_AUTH;
    int rc = take_nonce(t, m);
    if (rc != MESH_OK)
        return rc;
    (*tries)++;
    if (code == 438)
        t->st.stale_nonces++;
    else
        t->st.auth_retries++;
    return 1;
}

static void on_allocate_ok(mesh_turn *t, const mesh_stun_msg *m)
{
    const mesh_stun_attr *a = mesh_stun_find(m, MESH_STUN_A_XOR_RELAYED_ADDRESS);
    if (!a || mesh_stun_get_addr(m, a, &t->relayed) != MESH_OK) {
        die(t, MESH_ERR_PROTOCOL);
        return;
    }
    const mesh_stun_attr *ma = mesh_stun_find(m, MESH_STUN_A_XOR_MAPPED_ADDRESS);
    if (!ma || mesh_stun_get_addr(m, ma, &t->mapped) != MESH_OK)
        memset(&t->mapped, 0, sizeof t->mapped);
    const mesh_stun_attr *la = mesh_stun_find(m, MESH_STUN_A_LIFETIME);
    uint32_t life = 0;
    if (!la || mesh_stun_get_u32(m, la, &life) != MESH_OK || !life)
        life = t->cfg.lifetime_s;
    t->lifetime = life;
    t->state = S_ALLOCATED;
    mesh_time now = mesh_env_now(&t->env);
    t->refresh_at = now + (mesh_time)life * MESH_NS_PER_S / 4 * 3;
    t->perms_at = now; /* permissions asked for before the allocation go out now */
    mesh_turn_rearm(t);
    if (t->cbs.on_allocated)
        t->cbs.on_allocated(t, MESH_OK, &t->relayed, &t->mapped, t->ud);
}

/* A success response to x (checked). */
static void on_success(mesh_turn *t, ctxn *x, const mesh_stun_msg *m)
{
    int kind = x->kind, conn = x->conn;
    x->used = 0;
    if (kind == K_ALLOCATE) {
        on_allocate_ok(t, m);
    } else if (kind == K_REFRESH) {
        const mesh_stun_attr *la = mesh_stun_find(m, MESH_STUN_A_LIFETIME);
        uint32_t life = t->lifetime;
        if (la)
            mesh_stun_get_u32(m, la, &life); /* unreadable: the lifetime we had */
        t->st.refreshes++;
        t->refresh_at = mesh_env_now(&t->env) + (mesh_time)life * MESH_NS_PER_S / 4 * 3;
        mesh_turn_rearm(t);
    } else if (kind == K_CONNECT) {
        dconn *d = &t->dc[conn];
        const mesh_stun_attr *ca = mesh_stun_find(m, MESH_STUN_A_CONNECTION_ID);
        if (!ca || mesh_stun_get_u32(m, ca, &d->id) != MESH_OK)
            mesh_turn_conn_fail(d, MESH_ERR_PROTOCOL);
        else
            mesh_turn_conn_open_tcp(d);
    }
}

/* An error response to x (checked). */
static void on_error(mesh_turn *t, ctxn *x, const mesh_stun_msg *m)
{
    int code = mesh_turn_error_code(t, m);
    int rc = code == 401 || code == 438 ? mesh_turn_reauth(t, m, code, x->authed, &x->tries)
                                        : mesh_turn_error_status(code);
    if (rc == 1 && (rc = send_txn(t, x)) == MESH_OK)
        return;
    int kind = x->kind, conn = x->conn;
    x->used = 0;
    if (kind == K_CONNECT)
        mesh_turn_conn_fail(&t->dc[conn], rc);
    else if (kind == K_ALLOCATE || kind == K_REFRESH || rc == MESH_ERR_AUTH)
        die(t, rc);
    else /* a permission refused: its peers cannot connect; the next refresh tries again */
        mesh_log(&t->env, MESH_LOG_WARN, "turn: CreatePermission refused: %d (%s)", code,
                 mesh_errname(rc));
}

static void on_indication(mesh_turn *t, const mesh_stun_msg *m)
{
    const mesh_stun_attr *ca = mesh_stun_find(m, MESH_STUN_A_CONNECTION_ID);
    const mesh_stun_attr *pa = mesh_stun_find(m, MESH_STUN_A_XOR_PEER_ADDRESS);
    dconn *d = NULL;
    for (size_t i = 0; i < MESH_TURN_MAX_CONNS && !d; i++)
        if (t->dc[i].state == D_FREE)
            d = &t->dc[i];
    mesh_addr peer;
    uint32_t id;
    if (m->method != MESH_STUN_CONNECTION_ATTEMPT || !ca || !pa || t->state != S_ALLOCATED ||
        mesh_stun_get_u32(m, ca, &id) != MESH_OK || mesh_stun_get_addr(m, pa, &peer) != MESH_OK) {
        t->st.unexpected++;
        return;
    }
    t->st.attempts++;
    if (!d)
        return; /* no room: the server times the attempt out (RFC 6062 §5.3) */
    memset(d, 0, sizeof *d);
    d->t = t;
    d->id = id;
    d->peer = peer;
    mesh_turn_conn_open_tcp(d);
}

/* One whole message from the control connection. */
static void ctl_message(mesh_turn *t, const uint8_t *buf, size_t len)
{
    mesh_stun_msg m;
    if (mesh_stun_decode(&m, buf, len) != MESH_OK) {
        t->st.malformed++;
        return;
    }
    if (m.cls == MESH_STUN_INDICATION) {
        on_indication(t, &m);
        return;
    }
    ctxn *x = NULL;
    for (size_t i = 0; i < MESH_TURN_MAX_TXNS && !x; i++)
        if (t->tx[i].used && memcmp(t->tx[i].tid, m.tid, MESH_STUN_TID_LEN) == 0)
            x = &t->tx[i];
    if (!x || m.cls == MESH_STUN_REQUEST) {
        t->st.bad_tid++;
        return;
    }
    if (m.method != METHOD[x->kind]) { /* our id on another method's answer */
        t->st.unexpected++;
        return;
    }
    if (!mesh_turn_response_ok(t, &m, x->authed))
        return;
    t->st.responses++;
    if (m.cls == MESH_STUN_SUCCESS)
        on_success(t, x, &m);
    else
        on_error(t, x, &m);
}

static void ctl_on_data(mesh_stream *s, const uint8_t *data, size_t len, void *ud)
{
    (void)s;
    mesh_turn *t = ud;
    while (len && t->state != S_DEAD) {
        size_t n = sizeof t->rx - t->have < len ? sizeof t->rx - t->have : len;
        memcpy(t->rx + t->have, data, n);
        t->have += n;
        data += n;
        len -= n;
        size_t pos = 0;
        while (pos < t->have && t->state != S_DEAD) {
            size_t total = 0;
            int rc = mesh_stun_frame_len(t->rx + pos, t->have - pos, &total);
            if (rc == MESH_ERR_TRUNCATED ||
                (rc == MESH_OK && total <= sizeof t->rx && total > t->have - pos))
                break;
            if (rc != MESH_OK || total > sizeof t->rx) {
                die(t, rc != MESH_OK ? MESH_ERR_MALFORMED : MESH_ERR_TOO_BIG);
                return;
            }
            ctl_message(t, t->rx + pos, total);
            pos += total;
        }
        memmove(t->rx, t->rx + pos, t->have - pos);
        t->have -= pos;
    }
}

static void ctl_on_connected(mesh_stream *s, void *ud)
{
    (void)s;
    mesh_turn *t = ud;
    t->state = S_ALLOCATING;
    int rc = mesh_turn_start_txn(t, K_ALLOCATE, -1);
    if (rc != MESH_OK)
        die(t, rc);
}

static void ctl_on_closed(mesh_stream *s, int reason, void *ud)
{
    (void)s;
    mesh_turn *t = ud;
    t->ctl = NULL;
    die(t, reason == MESH_OK ? MESH_ERR_CLOSED : reason);
}

static const mesh_stream_cbs CTL_CBS = {ctl_on_connected, ctl_on_data, NULL, ctl_on_closed};

/* ---- permissions and timing ----------------------------------------------------------------- */

int mesh_turn_permit(mesh_turn *t, const mesh_addr *peer)
{
    if (!t || !peer || (peer->family != MESH_AF_INET4 && peer->family != MESH_AF_INET6))
        return MESH_ERR_INVAL;
    for (size_t i = 0; i < t->nperms; i++)
        if (t->perms[i].family == peer->family &&
            memcmp(t->perms[i].ip, peer->ip, peer->family == MESH_AF_INET4 ? 4 : 16) == 0)
            return MESH_OK;
    if (t->nperms == MESH_TURN_MAX_PERMS)
        return MESH_ERR_LIMIT;
    t->perms[t->nperms] = *peer;
    t->perms[t->nperms].port = 0;
    t->nperms++;
    if (t->state == S_ALLOCATED) {
        t->st.permissions_sent++;
        int rc = mesh_turn_start_txn(t, K_PERMISSION,
                                     -1); /* all IPs in one request, refreshed together */
        t->perms_at = mesh_env_now(&t->env) + MESH_TURN_PERM_REFRESH_S * MESH_NS_PER_S;
        mesh_turn_rearm(t);
        if (rc == MESH_ERR_LIMIT)
            t->perms_at = mesh_env_now(&t->env); /* the next wake sends it */
        else if (rc != MESH_OK)
            return rc;
    }
    return MESH_OK;
}

/* Set the wake timer to the earliest deadline or refresh. */
void mesh_turn_rearm(mesh_turn *t)
{
    if (!t->wake)
        return;
    mesh_time at = MESH_TIME_NEVER;
    for (size_t i = 0; i < MESH_TURN_MAX_TXNS; i++)
        if (t->tx[i].used && t->tx[i].deadline < at)
            at = t->tx[i].deadline;
    for (size_t i = 0; i < MESH_TURN_MAX_CONNS; i++)
        if (t->dc[i].state >= D_TCP && t->dc[i].state != D_OPEN && t->dc[i].deadline < at)
            at = t->dc[i].deadline;
    if (t->state == S_ALLOCATED) {
        if (t->refresh_at < at)
            at = t->refresh_at;
        if (t->nperms && t->perms_at < at)
            at = t->perms_at;
    }
    if (at == MESH_TIME_NEVER)
        t->env.ops->timer_stop(t->env.obj, t->wake);
    else
        t->env.ops->timer_set(t->env.obj, t->wake, at);
}

static void on_wake(mesh_timer *tm, void *ud)
{
    (void)tm;
    mesh_turn *t = ud;
    mesh_time now = mesh_env_now(&t->env);
    for (size_t i = 0; i < MESH_TURN_MAX_CONNS; i++) {
        dconn *d = &t->dc[i];
        if (d->state >= D_TCP && d->state != D_OPEN && d->deadline <= now)
            mesh_turn_conn_fail(d, MESH_ERR_TIMEOUT);
    }
    for (size_t i = 0; i < MESH_TURN_MAX_TXNS && t->state != S_DEAD; i++) {
        ctxn *x = &t->tx[i];
        if (!x->used || x->deadline > now)
            continue;
        x->used = 0;
        if (x->kind == K_CONNECT)
            mesh_turn_conn_fail(&t->dc[x->conn], MESH_ERR_TIMEOUT);
        else if (x->kind != K_PERMISSION)
            die(t, MESH_ERR_TIMEOUT); /* Allocate or Refresh unanswered: the allocation is gone */
    }
    if (t->state == S_ALLOCATED && t->refresh_at <= now) {
        t->refresh_at = MESH_TIME_NEVER; /* set again by the answer */
        int rc = mesh_turn_start_txn(t, K_REFRESH, -1);
        if (rc != MESH_OK) {
            die(t, rc);
            return;
        }
    }
    if (t->state == S_ALLOCATED && t->nperms && t->perms_at <= now) {
        t->perms_at = now + MESH_TURN_PERM_REFRESH_S * MESH_NS_PER_S;
        if (mesh_turn_start_txn(t, K_PERMISSION, -1) == MESH_OK)
            t->st.permissions_sent++;
        else
            t->perms_at = now + t->cfg.timeout; /* the table was full: try again soon */
    }
    mesh_turn_rearm(t);
}

/* ---- life ----------------------------------------------------------------------------------- */

/* The allocation failed or is lost: the owner hears it once; the client stays inert. */
static void die(mesh_turn *t, int status)
{
    if (t->state == S_DEAD)
        return;
    t->state = S_DEAD;
    memset(t->tx, 0, sizeof t->tx);
    for (size_t i = 0; i < MESH_TURN_MAX_CONNS; i++) /* the server drops them with it */
        if (t->dc[i].state != D_FREE)
            mesh_turn_conn_fail(&t->dc[i], status);
    if (t->ctl) {
        t->env.ops->stream_close(t->env.obj, t->ctl, MESH_CLOSE_ABORT);
        t->ctl = NULL;
    }
    mesh_turn_rearm(t);
    if (t->cbs.on_allocated)
        t->cbs.on_allocated(t, status, NULL, NULL, t->ud);
}

int mesh_turn_new(mesh_turn **out, const mesh_env *base, const mesh_turn_cfg *cfg,
                  const mesh_turn_cbs *cbs, void *ud)
{
    if (!out || !base || !cfg || !cfg->username || !cfg->password || !cfg->server.port ||
        (cfg->server.family != MESH_AF_INET4 && cfg->server.family != MESH_AF_INET6) ||
        strlen(cfg->username) > MESH_STUN_MAX_USERNAME ||
        strlen(cfg->password) > MESH_TURN_MAX_PASSWORD)
        return MESH_ERR_INVAL;
    mesh_turn *t = calloc(1, sizeof *t);
    if (!t)
        return MESH_ERR_NOMEM;
    int rc = mesh_vstream_env_new(&t->v, base);
    if (rc != MESH_OK)
        goto fail_t;
    t->env = *base;
    t->cfg = *cfg;
    t->cfg.username = t->cfg.password = NULL; /* the copies are used */
    strcpy(t->user, cfg->username);
    strcpy(t->pass, cfg->password);
    if (!t->cfg.lifetime_s)
        t->cfg.lifetime_s = MESH_TURN_DEFAULT_LIFETIME_S;
    if (!t->cfg.timeout)
        t->cfg.timeout = MESH_TURN_DEFAULT_TIMEOUT_MS * MESH_NS_PER_MS;
    if (cbs)
        t->cbs = *cbs;
    t->ud = ud;
    for (size_t i = 0; i < MESH_TURN_MAX_CONNS; i++)
        t->dc[i].t = t;
    rc = MESH_ERR_NOMEM;
    if (!(t->wake = base->ops->timer_new(base->obj, on_wake, t)))
        goto fail_v;
    t->ctl = base->ops->connect(base->obj, &t->cfg.server, &CTL_CBS, t, &rc);
    if (!t->ctl)
        goto fail_timer;
    *out = t;
    return MESH_OK;
fail_timer:
    base->ops->timer_free(base->obj, t->wake);
fail_v:
    mesh_vstream_env_free(t->v);
fail_t:
    OPENSSL_cleanse(t->pass, sizeof t->pass);
    free(t);
    return rc != MESH_OK ? rc : MESH_ERR_INTERNAL;
}

void mesh_turn_free(mesh_turn *t)
{
    if (!t)
        return;
    mesh_vstream_env_free(t->v); /* no provider op follows: the slots are released below */
    for (size_t i = 0; i < MESH_TURN_MAX_CONNS; i++) {
        t->dc[i].vs = NULL;
        if (t->dc[i].state != D_FREE)
            mesh_turn_conn_release(&t->dc[i]);
    }
    if (t->ctl && t->state == S_ALLOCATED) {
        t->state = S_DEAD; /* build() asks for LIFETIME 0: the server frees the allocation */
        ctxn x = {.kind = K_REFRESH};
        send_txn(t, &x);
    }
    if (t->ctl)
        t->env.ops->stream_close(t->env.obj, t->ctl, MESH_CLOSE_GRACEFUL);
    t->env.ops->timer_free(t->env.obj, t->wake);
    OPENSSL_cleanse(t->pass, sizeof t->pass);
    OPENSSL_cleanse(t->key, sizeof t->key);
    free(t);
}

mesh_env mesh_turn_env(mesh_turn *t)
{
    return mesh_vstream_env_env(t->v);
}

int mesh_turn_allocated(const mesh_turn *t)
{
    return t && t->state == S_ALLOCATED;
}

mesh_turn_stats mesh_turn_get_stats(const mesh_turn *t)
{
    mesh_turn_stats z = {0};
    return t ? t->st : z;
}

size_t mesh_turn_streams(const mesh_turn *t)
{
    return t ? mesh_vstream_env_count(t->v) : 0;
}

size_t mesh_turn_conns(const mesh_turn *t)
{
    size_t n = 0;
    for (size_t i = 0; t && i < MESH_TURN_MAX_CONNS; i++)
        n += t->dc[i].state != D_FREE;
    return n;
}
