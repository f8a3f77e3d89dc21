/* stun_server.c — the STUN responder (see stun_server.h): the pure answer builder, then the
 * UDP sockets, then the TCP listeners and connections. */
#include "core/stun_server.h"

#include <stdlib.h>
#include <string.h>

/* ---- answers ------------------------------------------------------------------------------- */

void mesh_stun_server_cfg_default(mesh_stun_server_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->udp = cfg->tcp = 1;
    cfg->fingerprint = 1;
}

static int has_alternate(const mesh_stun_server_cfg *cfg)
{
    return cfg->alternate.family != MESH_AF_NONE;
}

/* The address of socket `where`: the primary's IP and port, each swapped for the
 * alternate's by its bit. */
static mesh_addr where_addr(const mesh_stun_server_cfg *cfg, unsigned where)
{
    mesh_addr a = (where & MESH_STUN_SERVER_ALT_IP) ? cfg->alternate : cfg->primary;
    a.port = (where & MESH_STUN_SERVER_ALT_PORT) ? cfg->alternate.port : cfg->primary.port;
    return a;
}

static int ip_unspecified(const mesh_addr *a)
{
    static const uint8_t zero[16] = {0};
    return memcmp(a->ip, zero, a->family == MESH_AF_INET6 ? 16 : 4) == 0;
}

/* An error answer: ERROR-CODE, and the unknown types for a 420. */
static void enc_error(mesh_stun_enc *e, int code, const uint16_t *unknown, size_t nunknown)
{
    static const struct {
        int code;
        const char *reason;
    } REASONS[] = {
        {MESH_STUN_ERR_BAD_REQUEST, "Bad Request"},
        {MESH_STUN_ERR_UNKNOWN_ATTRIBUTE, "Unknown Attribute"},
    };
    const char *reason = "";
    for (size_t i = 0; i < sizeof REASONS / sizeof REASONS[0]; i++)
        if (REASONS[i].code == code)
            reason = REASONS[i].reason;
    mesh_stun_enc_error(e, code, reason);
    if (nunknown)
        mesh_stun_enc_unknown(e, unknown, nunknown);
}

/* What the request asks for: the error code to answer with (0 = success), the
 * unknown attributes for a 420, and the CHANGE-REQUEST flags. */
static void judge(const mesh_stun_server_cfg *cfg, const mesh_stun_msg *m, int tcp, int *code,
                  uint16_t *unknown, size_t *nunknown, unsigned *change)
{
    *code = 0;
    *change = 0;
    *nunknown = mesh_stun_unknown_required(m, unknown, MESH_STUN_MAX_UNKNOWN);
    if (*nunknown > MESH_STUN_MAX_UNKNOWN)
        *nunknown = MESH_STUN_MAX_UNKNOWN;
    if (*nunknown) {
        *code = MESH_STUN_ERR_UNKNOWN_ATTRIBUTE;
        return;
    }
    if (m->method != MESH_STUN_BINDING) {
        *code = MESH_STUN_ERR_BAD_REQUEST;
        return;
    }
    const mesh_stun_attr *cr = mesh_stun_find(m, MESH_STUN_A_CHANGE_REQUEST);
    if (!cr)
        return;
    if (mesh_stun_get_change(m, cr, change) != MESH_OK) {
        *code = MESH_STUN_ERR_BAD_REQUEST;
    } else if (!has_alternate(cfg) && *change) {
        *code = MESH_STUN_ERR_UNKNOWN_ATTRIBUTE;
        unknown[0] = MESH_STUN_A_CHANGE_REQUEST;
        *nunknown = 1;
    } else if (tcp && *change) {
        *code = MESH_STUN_ERR_BAD_REQUEST;
    }
    if (*code)
        *change = 0;
}

int mesh_stun_server_answer(const mesh_stun_server_cfg *cfg, const mesh_stun_msg *m,
                            const mesh_addr *from, unsigned where, int tcp, uint8_t *out,
                            size_t cap, size_t *len, unsigned *via)
{
    if (!cfg || !m || !from || !out || !len || !via || where >= MESH_STUN_SERVER_SOCKETS)
        return MESH_ERR_INVAL;
    if (m->cls != MESH_STUN_REQUEST)
        return MESH_ERR_PROTOCOL;
    int had_fp = m->fp >= 0;
    if (had_fp && mesh_stun_check_fingerprint(m) != MESH_OK)
        return MESH_ERR_PROTOCOL;
    int code;
    unsigned change;
    uint16_t unknown[MESH_STUN_MAX_UNKNOWN];
    size_t nunknown;
    judge(cfg, m, tcp, &code, unknown, &nunknown, &change);
    unsigned leave = where;
    if (change & MESH_STUN_CHANGE_IP)
        leave ^= MESH_STUN_SERVER_ALT_IP;
    if (change & MESH_STUN_CHANGE_PORT)
        leave ^= MESH_STUN_SERVER_ALT_PORT;
    mesh_stun_enc e;
    mesh_stun_enc_init(&e, out, cap,
                       mesh_stun_type(m->method, code ? MESH_STUN_ERROR : MESH_STUN_SUCCESS),
                       m->tid);
    if (code) {
        enc_error(&e, code, unknown, nunknown);
    } else {
        mesh_stun_enc_addr(&e, MESH_STUN_A_XOR_MAPPED_ADDRESS, from);
        if (has_alternate(cfg)) {
            mesh_addr origin = where_addr(cfg, leave), other = where_addr(cfg, where ^ 3u);
            mesh_stun_enc_addr(&e, MESH_STUN_A_RESPONSE_ORIGIN, &origin);
            mesh_stun_enc_addr(&e, MESH_STUN_A_OTHER_ADDRESS, &other);
        } else if (!ip_unspecified(&cfg->primary)) {
            mesh_addr origin = where_addr(cfg, leave);
            mesh_stun_enc_addr(&e, MESH_STUN_A_RESPONSE_ORIGIN, &origin);
        }
    }
    if (cfg->software && *cfg->software) {
        size_t n = strlen(cfg->software);
        mesh_stun_enc_text(&e, MESH_STUN_A_SOFTWARE, cfg->software,
                           n > MESH_STUN_SERVER_MAX_SOFTWARE ? MESH_STUN_SERVER_MAX_SOFTWARE : n);
    }
    if (cfg->fingerprint || had_fp)
        mesh_stun_enc_fingerprint(&e);
    int rc = mesh_stun_enc_finish(&e, len);
    if (rc != MESH_OK)
        return rc == MESH_ERR_TOO_BIG ? rc : MESH_ERR_INVAL;
    *via = leave;
    return MESH_OK;
}

/* ---- the server object --------------------------------------------------------------------- */

typedef struct srv_sock {
    mesh_stun_server *srv;
    unsigned where;
    const mesh_env *env; /* &srv->env or &srv->alt_env */
    mesh_dgram *d;
    mesh_listener *l;
} srv_sock;

typedef struct srv_conn {
    mesh_stun_server *srv;
    srv_sock *sock;
    mesh_stream *s;
    mesh_addr peer;
    mesh_time last;
    uint8_t buf[MESH_STUN_SERVER_MAX_REQUEST];
    size_t have;
    struct srv_conn *prev, *next;
} srv_conn;

struct mesh_stun_server {
    mesh_env env, alt_env;
    mesh_stun_server_cfg cfg;
    char software[MESH_STUN_SERVER_MAX_SOFTWARE + 1];
    srv_sock socks[MESH_STUN_SERVER_SOCKETS];
    unsigned nsocks; /* 4 with an alternate, else 1 */
    srv_conn *conns;
    size_t nconns;
    mesh_timer *idle_timer;
    mesh_stun_server_stats st;
};

static void count_answer(mesh_stun_server *srv, const uint8_t *ans, size_t len, int changed)
{
    if (len >= 2 && mesh_stun_type_class((uint16_t)(ans[0] << 8 | ans[1])) == MESH_STUN_ERROR)
        srv->st.errors++;
    else
        srv->st.answered++;
    if (changed)
        srv->st.changed++;
}

/* ---- UDP ----------------------------------------------------------------------------------- */

static void on_dgram(mesh_dgram *d, const mesh_addr *from, const uint8_t *data, size_t len,
                     void *ud)
{
    (void)d;
    srv_sock *k = ud;
    mesh_stun_server *srv = k->srv;
    mesh_stun_msg m;
    uint8_t out[MESH_STUN_SERVER_MAX_ANSWER];
    size_t olen = 0;
    unsigned via = 0;
    if (mesh_stun_decode(&m, data, len) != MESH_OK ||
        mesh_stun_server_answer(&srv->cfg, &m, from, k->where, 0, out, sizeof out, &olen, &via) !=
            MESH_OK ||
        via >= srv->nsocks || !srv->socks[via].d) {
        srv->st.dropped++;
        return;
    }
    srv_sock *o = &srv->socks[via];
    if (o->env->ops->dgram_send(o->env->obj, o->d, from, out, olen) == MESH_OK)
        count_answer(srv, out, olen, via != k->where);
}

/* ---- TCP ----------------------------------------------------------------------------------- */

static void conn_unlink(srv_conn *c)
{
    mesh_stun_server *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    free(c);
}

static void conn_close(srv_conn *c, int how)
{
    c->sock->env->ops->stream_close(c->sock->env->obj, c->s, how);
    conn_unlink(c);
}

/* Answer every whole request in the buffer; 0 when the connection must close. */
static int conn_serve(srv_conn *c)
{
    mesh_stun_server *srv = c->srv;
    size_t pos = 0;
    while (pos < c->have) {
        size_t total = 0;
        int rc = mesh_stun_frame_len(c->buf + pos, c->have - pos, &total);
        if (rc == MESH_ERR_TRUNCATED)
            break;
        if (rc != MESH_OK || total > sizeof c->buf)
            return 0;
        if (total > c->have - pos)
            break;
        mesh_stun_msg m;
        uint8_t out[MESH_STUN_SERVER_MAX_ANSWER];
        size_t olen = 0;
        unsigned via = 0;
        if (mesh_stun_decode(&m, c->buf + pos, total) == MESH_OK &&
            mesh_stun_server_answer(&srv->cfg, &m, &c->peer, c->sock->where, 1, out, sizeof out,
                                    &olen, &via) == MESH_OK) {
            if (c->sock->env->ops->stream_write(c->sock->env->obj, c->s, out, olen) != MESH_OK)
                return 0;
            count_answer(srv, out, olen, 0);
        } else {
            srv->st.dropped++;
        }
        pos += total;
    }
    memmove(c->buf, c->buf + pos, c->have - pos);
    c->have -= pos;
    return 1;
}

static void conn_on_data(mesh_stream *s, const uint8_t *data, size_t len, void *ud)
{
    (void)s;
    srv_conn *c = ud;
    c->last = mesh_env_now(c->sock->env);
    while (len) {
        size_t n = sizeof c->buf - c->have;
        if (n == 0) {
            c->srv->st.tcp_closed_bad++;
            conn_close(c, MESH_CLOSE_ABORT);
            return;
        }
        if (n > len)
            n = len;
        memcpy(c->buf + c->have, data, n);
        c->have += n;
        data += n;
        len -= n;
        if (!conn_serve(c)) {
            c->srv->st.tcp_closed_bad++;
            conn_close(c, MESH_CLOSE_ABORT);
            return;
        }
    }
}

static void conn_on_closed(mesh_stream *s, int reason, void *ud)
{
    (void)s;
    (void)reason;
    conn_unlink(ud); /* released by the driver (env rule 4) */
}

static const mesh_stream_cbs CONN_CBS = {
    .on_data = conn_on_data,
    .on_closed = conn_on_closed,
};

static void idle_arm(mesh_stun_server *srv);

static void on_accept(mesh_listener *l, mesh_stream *s, const mesh_addr *peer, void *ud)
{
    (void)l;
    srv_sock *k = ud;
    mesh_stun_server *srv = k->srv;
    srv_conn *c = srv->nconns < srv->cfg.max_conns ? calloc(1, sizeof *c) : NULL;
    if (!c) {
        srv->st.tcp_refused++;
        k->env->ops->stream_close(k->env->obj, s, MESH_CLOSE_ABORT);
        return;
    }
    c->srv = srv;
    c->sock = k;
    c->s = s;
    c->peer = *peer;
    c->last = mesh_env_now(k->env);
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    srv->st.tcp_accepted++;
    k->env->ops->stream_set_cbs(k->env->obj, s, &CONN_CBS, c);
    idle_arm(srv);
}

/* One timer for all connections: it fires at the oldest connection's idle deadline. */
static void idle_arm(mesh_stun_server *srv)
{
    mesh_time first = MESH_TIME_NEVER;
    for (srv_conn *c = srv->conns; c; c = c->next)
        if (c->last + srv->cfg.tcp_idle < first)
            first = c->last + srv->cfg.tcp_idle;
    if (first == MESH_TIME_NEVER)
        srv->env.ops->timer_stop(srv->env.obj, srv->idle_timer);
    else
        srv->env.ops->timer_set(srv->env.obj, srv->idle_timer, first);
}

static void on_idle(mesh_timer *t, void *ud)
{
    (void)t;
    mesh_stun_server *srv = ud;
    mesh_time now = mesh_env_now(&srv->env);
    srv_conn *next;
    for (srv_conn *c = srv->conns; c; c = next) {
        next = c->next;
        if (now >= c->last + srv->cfg.tcp_idle) {
            srv->st.tcp_closed_idle++;
            conn_close(c, MESH_CLOSE_GRACEFUL);
        }
    }
    idle_arm(srv);
}

/* ---- life ---------------------------------------------------------------------------------- */

static int check_cfg(const mesh_stun_server_cfg *c)
{
    if (c->primary.family != MESH_AF_INET4 && c->primary.family != MESH_AF_INET6)
        return MESH_ERR_INVAL;
    if (!c->primary.port || (!c->udp && !c->tcp) || c->max_conns > MESH_STUN_SERVER_MAX_CONNS)
        return MESH_ERR_INVAL;
    if (!has_alternate(c))
        return MESH_OK;
    size_t iplen = c->primary.family == MESH_AF_INET6 ? 16 : 4;
    if (c->alternate.family != c->primary.family || !c->alternate.port ||
        c->alternate.port == c->primary.port || ip_unspecified(&c->primary) ||
        ip_unspecified(&c->alternate) || memcmp(c->alternate.ip, c->primary.ip, iplen) == 0)
        return MESH_ERR_INVAL;
    return MESH_OK;
}

static int open_sock(mesh_stun_server *srv, srv_sock *k)
{
    mesh_addr a = where_addr(&srv->cfg, k->where);
    int err = MESH_OK;
    if (srv->cfg.udp) {
        if (!k->env->ops->dgram_bind)
            return MESH_ERR_UNSUPPORTED;
        k->d = k->env->ops->dgram_bind(k->env->obj, &a, on_dgram, k, &err);
        if (!k->d)
            return err != MESH_OK ? err : MESH_ERR_INTERNAL;
    }
    if (srv->cfg.tcp) {
        k->l = k->env->ops->listen(k->env->obj, &a, on_accept, k, &err);
        if (!k->l)
            return err != MESH_OK ? err : MESH_ERR_INTERNAL;
    }
    return MESH_OK;
}

int mesh_stun_server_new(mesh_stun_server **out, const mesh_env *env, const mesh_env *alt_env,
                         const mesh_stun_server_cfg *cfg)
{
    if (!out || !env || !cfg)
        return MESH_ERR_INVAL;
    int rc = check_cfg(cfg);
    if (rc != MESH_OK)
        return rc;
    mesh_stun_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return MESH_ERR_NOMEM;
    srv->env = *env;
    srv->alt_env = alt_env ? *alt_env : *env;
    srv->cfg = *cfg;
    if (cfg->software) {
        memcpy(srv->software, cfg->software, strnlen(cfg->software, MESH_STUN_SERVER_MAX_SOFTWARE));
        srv->cfg.software = srv->software;
    }
    if (!srv->cfg.max_conns)
        srv->cfg.max_conns = MESH_STUN_SERVER_DEFAULT_CONNS;
    if (!srv->cfg.tcp_idle)
        srv->cfg.tcp_idle = MESH_STUN_SERVER_DEFAULT_IDLE_MS * MESH_NS_PER_MS;
    srv->idle_timer = env->ops->timer_new(env->obj, on_idle, srv);
    if (!srv->idle_timer) {
        free(srv);
        return MESH_ERR_NOMEM;
    }
    srv->nsocks = has_alternate(cfg) ? MESH_STUN_SERVER_SOCKETS : 1;
    for (unsigned i = 0; i < srv->nsocks && rc == MESH_OK; i++) {
        srv_sock *k = &srv->socks[i];
        k->srv = srv;
        k->where = i;
        k->env = (i & MESH_STUN_SERVER_ALT_IP) ? &srv->alt_env : &srv->env;
        rc = open_sock(srv, k);
    }
    if (rc != MESH_OK) {
        mesh_stun_server_free(srv);
        return rc;
    }
    *out = srv;
    return MESH_OK;
}

void mesh_stun_server_free(mesh_stun_server *s)
{
    if (!s)
        return;
    while (s->conns)
        conn_close(s->conns, MESH_CLOSE_ABORT);
    for (unsigned i = 0; i < s->nsocks; i++) {
        srv_sock *k = &s->socks[i];
        if (k->d)
            k->env->ops->dgram_close(k->env->obj, k->d);
        if (k->l)
            k->env->ops->listener_close(k->env->obj, k->l);
    }
    if (s->idle_timer)
        s->env.ops->timer_free(s->env.obj, s->idle_timer);
    free(s);
}

mesh_stun_server_stats mesh_stun_server_get_stats(const mesh_stun_server *s)
{
    mesh_stun_server_stats z = {0};
    return s ? s->st : z;
}
