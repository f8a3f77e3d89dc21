/* server.c — listener + bounded set of handshaking sessions (server.h).
 *
 * The pending handshakes live in an array of max_handshakes slots kept in accept order
 * (oldest first; removal shifts the rest down), so the bound is structural and "the oldest
 * without progress" is the first match of a scan. Progress and "a byte arrived" only ever go
 * from no to yes, so each is read from the session until seen, then remembered in the slot.
 * The first-byte deadlines are in accept order too: the timer is armed at the first slot
 * still silent (or at the log summary, if earlier). Re-entrancy follows session.c: an entry
 * counter, and mesh_server_free() inside a callback only marks the server, which the
 * outermost entry frees when it unwinds.
 */
#include "core/server.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pending {
    mesh_session *s;
    mesh_addr source; /* source_of(peer): family + address or /64, port 0 */
    mesh_time accepted_at;
    int progressed; /* seen to have made progress (server.h) */
    int heard;      /* seen to have received a byte */
} pending;

/* What the log summarises. */
enum { EV_REFUSED, EV_EVICTED, EV_SILENT, EV_KINDS };

struct mesh_server {
    mesh_env env;
    mesh_tls_ctx *tls;
    mesh_listener *listener;
    mesh_timer *timer; /* first-byte deadlines, log summaries */
    mesh_server_cfg cfg;
    mesh_server_cbs cbs;
    void *ud;
    pending *hs; /* between accept and CONNECTED, oldest first */
    size_t nhs;
    mesh_session **dc; /* web profile: connections handed to the decoy, oldest first */
    size_t ndc;
    int web; /* the web profile: nginx's first-byte timeout, closed with a FIN */
    int depth, freed;
    mesh_server_stats st;
    uint64_t unlogged[EV_KINDS]; /* events since the last line */
    mesh_time log_next;          /* no line before this; then a summary if unlogged */
};

static void destroy(mesh_server *srv)
{
    if (srv->listener)
        srv->env.ops->listener_close(srv->env.obj, srv->listener);
    if (srv->timer)
        srv->env.ops->timer_free(srv->env.obj, srv->timer);
    for (size_t i = 0; i < srv->nhs; i++)
        mesh_session_free(srv->hs[i].s);
    for (size_t i = 0; i < srv->ndc; i++)
        mesh_session_free(srv->dc[i]);
    free(srv->hs);
    free(srv->dc);
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

static mesh_time add_sat(mesh_time a, mesh_time b)
{
    return a > MESH_TIME_NEVER - b ? MESH_TIME_NEVER : a + b;
}

/* ---- sources and progress ------------------------------------------------------------------ */

static const uint8_t V4_MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* The source a connection from peer counts against (server.h, Sources). */
static mesh_addr source_of(const mesh_addr *peer)
{
    mesh_addr k;
    memset(&k, 0, sizeof k);
    k.family = peer->family;
    if (peer->family == MESH_AF_INET4) {
        memcpy(k.ip, peer->ip, 4);
    } else if (peer->family == MESH_AF_INET6 && memcmp(peer->ip, V4_MAPPED, 12) == 0) {
        k.family = MESH_AF_INET4;
        memcpy(k.ip, peer->ip + 12, 4);
    } else if (peer->family == MESH_AF_INET6) {
        memcpy(k.ip, peer->ip, MESH_SERVER_SOURCE_PREFIX6_BYTES);
    }
    return k;
}

static int same_source(const mesh_addr *a, const mesh_addr *b)
{
    return a->family == b->family && memcmp(a->ip, b->ip, sizeof a->ip) == 0;
}

static int progressed(pending *p)
{
    if (!p->progressed) {
        mesh_session_state st = mesh_session_get_state(p->s);
        mesh_session_stats ss;
        mesh_session_get_stats(p->s, &ss);
        p->progressed = st == MESH_SESSION_AUTHENTICATING || st == MESH_SESSION_CONNECTED ||
                        (st == MESH_SESSION_HANDSHAKING && ss.bytes_sent > 0);
    }
    /* a session closing (failed, its on_closed not yet run) is worth nothing to keep */
    return p->progressed && mesh_session_get_state(p->s) < MESH_SESSION_CLOSING;
}

static int heard(pending *p)
{
    if (!p->heard) {
        mesh_session_stats ss;
        mesh_session_get_stats(p->s, &ss);
        p->heard = ss.bytes_received > 0;
    }
    return p->heard;
}

/* Index of the oldest handshake without progress, of source src (NULL: of any); -1: none. */
static long oldest_idle(mesh_server *srv, const mesh_addr *src)
{
    for (size_t i = 0; i < srv->nhs; i++)
        if ((!src || same_source(&srv->hs[i].source, src)) && !progressed(&srv->hs[i]))
            return (long)i;
    return -1;
}

static size_t count_source(const mesh_server *srv, const mesh_addr *src)
{
    size_t n = 0;
    for (size_t i = 0; i < srv->nhs; i++)
        n += same_source(&srv->hs[i].source, src);
    return n;
}

/* Forget slot i; returns its session. */
static mesh_session *take_at(mesh_server *srv, size_t i)
{
    mesh_session *s = srv->hs[i].s;
    memmove(&srv->hs[i], &srv->hs[i + 1], (srv->nhs - i - 1) * sizeof *srv->hs);
    srv->nhs--;
    return s;
}

/* Forget s from the handshaking set. 1 if it was there. */
static int take(mesh_server *srv, mesh_session *s)
{
    for (size_t i = 0; i < srv->nhs; i++) {
        if (srv->hs[i].s == s) {
            take_at(srv, i);
            return 1;
        }
    }
    return 0;
}

/* ---- rate-limited log (server.h, Logs) ----------------------------------------------------- */

static const char *const EV_NAME[EV_KINDS] = {"refused", "evicted", "closed silent"};

/* One event of kind about peer (why: a few words). The first of an interval is logged at once;
 * the rest are counted for the summary the timer writes when the interval ends. */
static void note(mesh_server *srv, int kind, int level, const mesh_addr *peer, const char *why)
{
    mesh_time now = mesh_env_now(&srv->env);
    int quiet = 1;
    for (int k = 0; k < EV_KINDS; k++)
        quiet &= srv->unlogged[k] == 0;
    if (now < srv->log_next || !quiet) {
        srv->unlogged[kind]++;
        return;
    }
    char a[MESH_ADDR_STRLEN];
    mesh_log(&srv->env, level,
             "server: %zu handshakes in progress: %s %s (%s); more are summarised every %d s",
             srv->nhs, EV_NAME[kind], mesh_addr_format(peer, a, sizeof a), why,
             MESH_SERVER_LOG_INTERVAL_MS / 1000);
    srv->log_next = add_sat(now, (mesh_time)MESH_SERVER_LOG_INTERVAL_MS * MESH_NS_PER_MS);
}

/* At the end of an interval with events: one line with their counts, and a new interval. */
static void log_summary(mesh_server *srv, mesh_time now)
{
    uint64_t *u = srv->unlogged;
    if (now < srv->log_next || (u[EV_REFUSED] | u[EV_EVICTED] | u[EV_SILENT]) == 0)
        return;
    mesh_log(&srv->env, MESH_LOG_INFO,
             "server: in the last %d s: %" PRIu64 " refused, %" PRIu64 " evicted, %" PRIu64
             " closed silent; %zu handshakes in progress",
             MESH_SERVER_LOG_INTERVAL_MS / 1000, u[EV_REFUSED], u[EV_EVICTED], u[EV_SILENT],
             srv->nhs);
    memset(srv->unlogged, 0, sizeof srv->unlogged);
    srv->log_next = add_sat(now, (mesh_time)MESH_SERVER_LOG_INTERVAL_MS * MESH_NS_PER_MS);
}

/* The timer at the earliest of: the oldest silent handshake's first-byte deadline, the end of
 * an interval with unlogged events. */
static void arm(mesh_server *srv)
{
    if (srv->freed || !srv->timer)
        return;
    mesh_time d = MESH_TIME_NEVER;
    for (size_t i = 0; i < srv->nhs; i++) {
        if (!heard(&srv->hs[i])) {
            d = add_sat(srv->hs[i].accepted_at, srv->cfg.first_byte_timeout);
            break;
        }
    }
    for (int k = 0; k < EV_KINDS; k++)
        if (srv->unlogged[k] && srv->log_next < d)
            d = srv->log_next;
    if (d == MESH_TIME_NEVER)
        srv->env.ops->timer_stop(srv->env.obj, srv->timer);
    else
        srv->env.ops->timer_set(srv->env.obj, srv->timer, d);
}

/* ---- handshakes ending ----------------------------------------------------------------------- */

/* Close slot i before CONNECTED with reason, telling the owner. */
static void drop(mesh_server *srv, size_t i, int reason)
{
    mesh_addr peer = mesh_session_peer_addr(srv->hs[i].s);
    mesh_session *s = take_at(srv, i);
    if (srv->cbs.on_failed)
        srv->cbs.on_failed(srv, reason, &peer, srv->ud);
    if (srv->web && reason == MESH_ERR_TIMEOUT)
        (void)mesh_session_close(s); /* what nginx does to a silent client: FIN */
    mesh_session_free(s);            /* RST, unless closed just above */
}

/* Forget s from the decoy set. 1 if it was there. */
static int take_decoy(mesh_server *srv, mesh_session *s)
{
    for (size_t i = 0; i < srv->ndc; i++) {
        if (srv->dc[i] == s) {
            memmove(&srv->dc[i], &srv->dc[i + 1], (srv->ndc - i - 1) * sizeof *srv->dc);
            srv->ndc--;
            return 1;
        }
    }
    return 0;
}

/* A web-profile connection went to the decoy: it leaves the handshaking set (a prober's
 * connections must not hold the slots of peers getting somewhere) for the decoy set, whose
 * oldest member is closed (close_notify, FIN) when it is full. */
static void hs_decoy(mesh_session *s, void *ud)
{
    mesh_server *srv = ud;
    if (srv->freed || !take(srv, s))
        return;
    enter(srv);
    srv->st.decoyed++;
    if (srv->ndc == MESH_SERVER_MAX_DECOYS) {
        mesh_session *old = srv->dc[0];
        take_decoy(srv, old);
        (void)mesh_session_close(old);
        mesh_session_free(old);
    }
    srv->dc[srv->ndc++] = s;
    arm(srv);
    leave(srv);
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
    arm(srv);
    leave(srv);
}

static void hs_closed(mesh_session *s, int reason, void *ud)
{
    mesh_server *srv = ud;
    if (!srv->freed && take_decoy(srv, s)) {
        mesh_session_free(s); /* deferred by the session */
        return;
    }
    if (srv->freed || !take(srv, s))
        return;
    enter(srv);
    srv->st.failed++;
    if (srv->cbs.on_failed) {
        mesh_addr peer = mesh_session_peer_addr(s);
        srv->cbs.on_failed(srv, reason, &peer, srv->ud);
    }
    mesh_session_free(s); /* inside its own callback: deferred by the session */
    arm(srv);
    leave(srv);
}

static const mesh_session_cbs HS_CBS = {
    .on_connected = hs_connected, .on_closed = hs_closed, .on_decoy = hs_decoy};

/* First-byte deadlines (in accept order, so the scan stops at the first one not yet due) and
 * the log summary. */
static void on_timer(mesh_timer *t, void *ud)
{
    (void)t;
    mesh_server *srv = ud;
    enter(srv);
    mesh_time now = mesh_env_now(&srv->env);
    size_t i = 0;
    while (!srv->freed && i < srv->nhs &&
           add_sat(srv->hs[i].accepted_at, srv->cfg.first_byte_timeout) <= now) {
        if (heard(&srv->hs[i])) {
            i++;
            continue;
        }
        srv->st.failed++;
        srv->st.silent++;
        mesh_addr peer = mesh_session_peer_addr(srv->hs[i].s);
        note(srv, EV_SILENT, MESH_LOG_INFO, &peer, "no byte since accept");
        drop(srv, i, MESH_ERR_TIMEOUT);
    }
    if (!srv->freed)
        log_summary(srv, now);
    arm(srv);
    leave(srv);
}

/* ---- accepting ----------------------------------------------------------------------------- */

/* Make room for a newcomer from peer (server.h, Admission): NULL when there is a slot for it
 * (an idle handshake may have been evicted for it), else why it is refused. */
static const char *make_room(mesh_server *srv, const mesh_addr *src, const mesh_addr *peer)
{
    long i = -1;
    const char *why = NULL;
    if (count_source(srv, src) >= srv->cfg.max_per_source) {
        srv->st.crowded++;
        i = oldest_idle(srv, src);
        why = "its source is at its limit, none idle";
    } else if (srv->nhs >= srv->cfg.max_handshakes) {
        i = oldest_idle(srv, NULL);
        why = "all slots taken, none idle";
    }
    if (!why)
        return NULL;
    if (i < 0)
        return why; /* every one of them made progress: they keep their slots */
    srv->st.evicted++;
    char a[MESH_ADDR_STRLEN], r[MESH_ADDR_STRLEN + 32];
    snprintf(r, sizeof r, "no progress; room for %s", mesh_addr_format(peer, a, sizeof a));
    mesh_addr old = mesh_session_peer_addr(srv->hs[i].s);
    note(srv, EV_EVICTED, MESH_LOG_INFO, &old, r);
    drop(srv, (size_t)i, MESH_ERR_LIMIT);
    return NULL;
}

static void on_accept(mesh_listener *l, mesh_stream *stream, const mesh_addr *peer, void *ud)
{
    (void)l;
    mesh_server *srv = ud;
    if (srv->freed) {
        srv->env.ops->stream_close(srv->env.obj, stream, MESH_CLOSE_ABORT);
        return;
    }
    if (srv->cbs.on_accept && srv->cbs.on_accept(srv, stream, peer, srv->ud))
        return; /* the owner's own connection */
    enter(srv);
    mesh_addr src = source_of(peer);
    const char *why = make_room(srv, &src, peer);
    if (why || srv->freed) { /* (the owner may have freed us in on_failed) */
        srv->env.ops->stream_close(srv->env.obj, stream, MESH_CLOSE_ABORT);
        srv->st.rejected++;
        note(srv, EV_REFUSED, MESH_LOG_INFO, peer, why ? why : "server closing");
    } else {
        mesh_session *s = NULL;
        int rc =
            mesh_session_accept(&s, &srv->env, srv->tls, stream, &srv->cfg.session, &HS_CBS, srv);
        if (rc == MESH_OK) {
            pending *p = &srv->hs[srv->nhs++];
            memset(p, 0, sizeof *p);
            p->s = s;
            p->source = src;
            p->accepted_at = mesh_env_now(&srv->env);
            srv->st.accepted++;
        } else { /* the stream is already closed by mesh_session_accept */
            srv->st.rejected++;
            note(srv, EV_REFUSED, MESH_LOG_WARN, peer, mesh_errname(rc));
        }
    }
    arm(srv);
    leave(srv);
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
    if (!c.max_per_source)
        c.max_per_source = MESH_SERVER_DEFAULT_MAX_PER_SOURCE;
    if (c.max_per_source > c.max_handshakes)
        c.max_per_source = c.max_handshakes;
    int web = mesh_tls_ctx_profile(tls) == MESH_PROFILE_WEB;
    if (!c.first_byte_timeout)
        c.first_byte_timeout = (web ? MESH_SERVER_WEB_FIRST_BYTE_TIMEOUT_MS
                                    : MESH_SERVER_DEFAULT_FIRST_BYTE_TIMEOUT_MS) *
                               MESH_NS_PER_MS;
    mesh_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return MESH_ERR_NOMEM;
    srv->env = *env;
    srv->tls = tls;
    srv->cfg = c;
    srv->cbs = *cbs;
    srv->ud = ud;
    srv->web = web;
    srv->hs = calloc(c.max_handshakes, sizeof *srv->hs);
    srv->dc = web ? calloc(MESH_SERVER_MAX_DECOYS, sizeof *srv->dc) : NULL;
    srv->timer = env->ops->timer_new(env->obj, on_timer, srv);
    if (!srv->hs || !srv->timer || (web && !srv->dc)) {
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
        if (srv->timer) {
            srv->env.ops->timer_free(srv->env.obj, srv->timer);
            srv->timer = NULL;
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
