/* stun_client.c — Binding transactions over UDP and TCP, and RFC 5780 discovery (see
 * stun_client.h). Sections: transactions (shared), response checks, UDP, TCP, discovery,
 * life. */
#include "core/stun_client.h"

#include <stdlib.h>
#include <string.h>

typedef struct txn {
    mesh_stun_client *c;
    size_t slot;
    int tcp;
    uint8_t tid[MESH_STUN_TID_LEN];
    mesh_addr server;
    unsigned change;
    mesh_stun_cb cb;
    void *ud;
    mesh_timer *timer;
    mesh_time start, wait;
    unsigned sent;
    unsigned wrong_source;
    uint8_t req[MESH_STUN_CLIENT_MAX_REQUEST];
    size_t reqlen;
    mesh_stream *s; /* TCP; NULL once released */
    uint8_t *rx;    /* TCP: MESH_STUN_CLIENT_MAX_RESPONSE bytes */
    size_t have;
} txn;

enum disc_stage { D_TEST1, D_FILTER2, D_FILTER3, D_MAP2, D_MAP3 };

typedef struct disc {
    int active;
    int stage; /* enum disc_stage */
    mesh_addr server;
    mesh_addr m2;
    mesh_stun_behaviour b;
    mesh_time start;
    mesh_stun_behaviour_cb cb;
    void *ud;
} disc;

struct mesh_stun_client {
    mesh_env env;
    mesh_stun_client_cfg cfg;
    char username[MESH_STUN_MAX_USERNAME + 1];
    uint8_t key[MESH_STUN_CLIENT_MAX_KEY];
    mesh_dgram *d;
    mesh_addr local;
    txn *txns[MESH_STUN_CLIENT_MAX_TXNS];
    disc disc;
    mesh_stun_client_stats st;
};

/* ---- transactions -------------------------------------------------------------------------- */

static void txn_free(txn *t)
{
    mesh_stun_client *c = t->c;
    if (t->timer)
        c->env.ops->timer_free(c->env.obj, t->timer);
    if (t->s)
        c->env.ops->stream_close(c->env.obj, t->s, MESH_CLOSE_ABORT);
    c->txns[t->slot] = NULL;
    free(t->rx);
    free(t);
}

/* End t with r: counted, freed, then the callback, last (it may free the client). */
static void txn_finish(txn *t, mesh_stun_result *r)
{
    mesh_stun_client *c = t->c;
    r->tcp = t->tcp;
    r->server = t->server;
    r->requests = t->sent;
    r->rtt = mesh_env_now(&c->env) - t->start;
    if (!r->tcp)
        r->local = c->local;
    if (r->status == MESH_OK)
        c->st.succeeded++;
    else if (r->status == MESH_ERR_TIMEOUT)
        c->st.timed_out++;
    else
        c->st.failed++;
    mesh_stun_cb cb = t->cb;
    void *ud = t->ud;
    txn_free(t);
    cb(ud, r);
}

static void txn_fail(txn *t, int status)
{
    mesh_stun_result r = {.status = status, .wrong_source = t->wrong_source};
    if (t->tcp && t->s)
        t->c->env.ops->stream_addrs(t->c->env.obj, t->s, &r.local, NULL);
    txn_finish(t, &r);
}

static void on_timer(mesh_timer *tm, void *ud);

/* A new transaction in a free slot, with its request built (and its timer). */
static int txn_new(mesh_stun_client *c, int tcp, const mesh_addr *server, unsigned change,
                   mesh_stun_cb cb, void *ud, txn **out)
{
    if (!server || !cb || (server->family != MESH_AF_INET4 && server->family != MESH_AF_INET6) ||
        !server->port || (change & ~(unsigned)(MESH_STUN_CHANGE_IP | MESH_STUN_CHANGE_PORT)))
        return MESH_ERR_INVAL;
    size_t slot = 0;
    while (slot < MESH_STUN_CLIENT_MAX_TXNS && c->txns[slot])
        slot++;
    if (slot == MESH_STUN_CLIENT_MAX_TXNS)
        return MESH_ERR_LIMIT;
    txn *t = calloc(1, sizeof *t);
    if (!t)
        return MESH_ERR_NOMEM;
    t->c = c;
    t->slot = slot;
    t->tcp = tcp;
    t->server = *server;
    t->change = change;
    t->cb = cb;
    t->ud = ud;
    mesh_env_random(&c->env, t->tid, sizeof t->tid);
    mesh_stun_enc e;
    mesh_stun_enc_init(&e, t->req, sizeof t->req,
                       mesh_stun_type(MESH_STUN_BINDING, MESH_STUN_REQUEST), t->tid);
    if (change)
        mesh_stun_enc_change(&e, change);
    if (c->cfg.keylen) {
        mesh_stun_enc_text(&e, MESH_STUN_A_USERNAME, c->username, strlen(c->username));
        mesh_stun_enc_integrity(&e, c->key, c->cfg.keylen);
    }
    if (c->cfg.fingerprint)
        mesh_stun_enc_fingerprint(&e);
    int rc = mesh_stun_enc_finish(&e, &t->reqlen);
    if (rc == MESH_OK && !(t->timer = c->env.ops->timer_new(c->env.obj, on_timer, t)))
        rc = MESH_ERR_NOMEM;
    if (rc != MESH_OK) {
        free(t);
        return rc;
    }
    c->txns[slot] = t;
    t->start = mesh_env_now(&c->env);
    c->st.transactions++;
    *out = t;
    return MESH_OK;
}

/* ---- response checks ----------------------------------------------------------------------- */

/* Over UDP the answer comes from the address asked, changed in exactly what CHANGE-REQUEST
 * asked to change. */
static int source_ok(const txn *t, const mesh_addr *from)
{
    if (t->tcp)
        return 1;
    if (!from || from->family != t->server.family)
        return 0;
    size_t n = from->family == MESH_AF_INET6 ? 16 : 4;
    int same_ip = memcmp(from->ip, t->server.ip, n) == 0;
    int same_port = from->port == t->server.port;
    return same_ip == !(t->change & MESH_STUN_CHANGE_IP) &&
           same_port == !(t->change & MESH_STUN_CHANGE_PORT);
}

static void opt_addr(const mesh_stun_msg *m, uint16_t type, mesh_addr *out)
{
    const mesh_stun_attr *a = mesh_stun_find(m, type);
    if (!a || mesh_stun_get_addr(m, a, out) != MESH_OK)
        memset(out, 0, sizeof *out); /* absent or unreadable: optional, so left out */
}

/* 1 when m answers t (r filled in); 0 when it is ignored (counted). */
static int accept_response(mesh_stun_client *c, txn *t, const mesh_stun_msg *m,
                           const mesh_addr *from, mesh_stun_result *r)
{
    memset(r, 0, sizeof *r);
    if (m->method != MESH_STUN_BINDING) {
        c->st.unexpected++;
        return 0;
    }
    if (m->fp >= 0 && mesh_stun_check_fingerprint(m) != MESH_OK) {
        c->st.bad_fingerprint++;
        return 0;
    }
    if (c->cfg.keylen &&
        mesh_stun_check_integrity(m, c->key, c->cfg.keylen, MESH_STUN_MI_ANY) != MESH_OK) {
        c->st.bad_integrity++;
        return 0;
    }
    if (!source_ok(t, from)) {
        c->st.bad_source++;
        t->wrong_source++;
        return 0;
    }
    if (m->cls == MESH_STUN_ERROR) {
        const mesh_stun_attr *a = mesh_stun_find(m, MESH_STUN_A_ERROR_CODE);
        if (!a || mesh_stun_get_error(m, a, &r->error_code, NULL, NULL) != MESH_OK) {
            c->st.malformed++;
            return 0;
        }
        r->status = MESH_ERR_REFUSED;
        return 1;
    }
    const mesh_stun_attr *a = mesh_stun_find(m, MESH_STUN_A_XOR_MAPPED_ADDRESS);
    if (!a)
        a = mesh_stun_find(m, MESH_STUN_A_MAPPED_ADDRESS);
    if (!a || mesh_stun_get_addr(m, a, &r->mapped) != MESH_OK) {
        c->st.malformed++;
        return 0;
    }
    opt_addr(m, MESH_STUN_A_OTHER_ADDRESS, &r->other);
    opt_addr(m, MESH_STUN_A_RESPONSE_ORIGIN, &r->origin);
    r->status = MESH_OK;
    return 1;
}

/* A decoded message on UDP (tcp_t NULL) or on t's stream: the transaction it answers, else
 * counted and NULL. */
static txn *match(mesh_stun_client *c, const mesh_stun_msg *m, txn *tcp_t)
{
    if (m->cls != MESH_STUN_SUCCESS && m->cls != MESH_STUN_ERROR) {
        c->st.unexpected++;
        return NULL;
    }
    for (size_t i = 0; i < MESH_STUN_CLIENT_MAX_TXNS; i++) {
        txn *t = c->txns[i];
        if (t && (tcp_t ? t == tcp_t : !t->tcp) && memcmp(t->tid, m->tid, MESH_STUN_TID_LEN) == 0)
            return t;
    }
    c->st.bad_tid++;
    return NULL;
}

/* ---- UDP ----------------------------------------------------------------------------------- */

static int udp_send(txn *t)
{
    mesh_stun_client *c = t->c;
    int rc = c->env.ops->dgram_send(c->env.obj, c->d, &t->server, t->req, t->reqlen);
    if (rc == MESH_OK) {
        t->sent++;
        c->st.requests_sent++;
    }
    return rc;
}

/* Next deadline after a send: the doubling interval, or Rm x RTO after the last request. */
static void udp_arm(txn *t)
{
    mesh_stun_client *c = t->c;
    mesh_time next = t->sent >= c->cfg.rc ? c->cfg.rm * c->cfg.rto : t->wait;
    c->env.ops->timer_set(c->env.obj, t->timer, mesh_env_now(&c->env) + next);
}

static void on_timer(mesh_timer *tm, void *ud)
{
    (void)tm;
    txn *t = ud;
    if (t->tcp || t->sent >= t->c->cfg.rc) {
        txn_fail(t, MESH_ERR_TIMEOUT);
        return;
    }
    if (udp_send(t) != MESH_OK) {
        txn_fail(t, MESH_ERR_IO);
        return;
    }
    t->wait *= 2;
    udp_arm(t);
}

static void on_dgram(mesh_dgram *d, const mesh_addr *from, const uint8_t *data, size_t len,
                     void *ud)
{
    (void)d;
    mesh_stun_client *c = ud;
    mesh_stun_msg m;
    if (mesh_stun_decode(&m, data, len) != MESH_OK) {
        c->st.malformed++;
        return;
    }
    txn *t = match(c, &m, NULL);
    mesh_stun_result r;
    if (t && accept_response(c, t, &m, from, &r))
        txn_finish(t, &r);
}

int mesh_stun_client_binding(mesh_stun_client *c, const mesh_addr *server, unsigned change,
                             mesh_stun_cb cb, void *ud)
{
    if (!c)
        return MESH_ERR_INVAL;
    if (!c->d)
        return MESH_ERR_STATE;
    txn *t = NULL;
    int rc = txn_new(c, 0, server, change, cb, ud, &t);
    if (rc != MESH_OK)
        return rc;
    t->wait = c->cfg.rto;
    if ((rc = udp_send(t)) != MESH_OK) {
        c->st.transactions--;
        txn_free(t);
        return rc;
    }
    udp_arm(t);
    return MESH_OK;
}

/* ---- TCP ----------------------------------------------------------------------------------- */

static void tcp_on_connected(mesh_stream *s, void *ud)
{
    txn *t = ud;
    mesh_stun_client *c = t->c;
    if (c->env.ops->stream_write(c->env.obj, s, t->req, t->reqlen) != MESH_OK) {
        txn_fail(t, MESH_ERR_CLOSED);
        return;
    }
    t->sent = 1;
    c->st.requests_sent++;
}

/* Every whole message in t->rx: 1 = t finished (do not touch it), 0 = go on, or a failure
 * status (< 0). */
static int tcp_consume(txn *t)
{
    mesh_stun_client *c = t->c;
    size_t pos = 0;
    while (pos < t->have) {
        size_t total = 0;
        int rc = mesh_stun_frame_len(t->rx + pos, t->have - pos, &total);
        if (rc == MESH_ERR_TRUNCATED)
            break;
        if (rc != MESH_OK)
            return MESH_ERR_MALFORMED;
        if (total > MESH_STUN_CLIENT_MAX_RESPONSE)
            return MESH_ERR_TOO_BIG;
        if (total > t->have - pos)
            break;
        mesh_stun_msg m;
        mesh_stun_result r;
        if (mesh_stun_decode(&m, t->rx + pos, total) != MESH_OK) {
            c->st.malformed++;
        } else if (match(c, &m, t) && accept_response(c, t, &m, NULL, &r)) {
            c->env.ops->stream_addrs(c->env.obj, t->s, &r.local, NULL);
            txn_finish(t, &r);
            return 1;
        }
        pos += total;
    }
    memmove(t->rx, t->rx + pos, t->have - pos);
    t->have -= pos;
    return 0;
}

static void tcp_on_data(mesh_stream *s, const uint8_t *data, size_t len, void *ud)
{
    (void)s;
    txn *t = ud;
    while (len) {
        size_t n = MESH_STUN_CLIENT_MAX_RESPONSE - t->have;
        if (n == 0) { /* cannot happen (tcp_consume empties a full buffer), but never spin */
            txn_fail(t, MESH_ERR_TOO_BIG);
            return;
        }
        if (n > len)
            n = len;
        memcpy(t->rx + t->have, data, n);
        t->have += n;
        data += n;
        len -= n;
        int rc = tcp_consume(t);
        if (rc == 1)
            return;
        if (rc < 0) {
            txn_fail(t, rc);
            return;
        }
    }
}

static void tcp_on_closed(mesh_stream *s, int reason, void *ud)
{
    (void)s;
    txn *t = ud;
    t->s = NULL; /* released by the driver (env rule 4) */
    txn_fail(t, reason == MESH_OK ? MESH_ERR_CLOSED : reason);
}

static const mesh_stream_cbs TCP_CBS = {
    .on_connected = tcp_on_connected,
    .on_data = tcp_on_data,
    .on_closed = tcp_on_closed,
};

/* Connect, from `local` when one is given: through the env's optional connect_from (STUN over
 * TCP from the listening port tells the mapping that port gets); an env without it cannot. */
static mesh_stream *tcp_open(mesh_stun_client *c, const mesh_addr *local, txn *t, int *err)
{
    if (local && local->port) {
        if (c->env.ops->connect_from)
            return c->env.ops->connect_from(c->env.obj, local, &t->server, &TCP_CBS, t, err);
        *err = MESH_ERR_UNSUPPORTED;
        return NULL;
    }
    return c->env.ops->connect(c->env.obj, &t->server, &TCP_CBS, t, err);
}

int mesh_stun_client_binding_tcp(mesh_stun_client *c, const mesh_addr *server,
                                 const mesh_addr *local, mesh_stun_cb cb, void *ud)
{
    if (!c)
        return MESH_ERR_INVAL;
    txn *t = NULL;
    int rc = txn_new(c, 1, server, 0, cb, ud, &t);
    if (rc != MESH_OK)
        return rc;
    int err = MESH_OK;
    if (!(t->rx = malloc(MESH_STUN_CLIENT_MAX_RESPONSE)))
        err = MESH_ERR_NOMEM;
    else if (!(t->s = tcp_open(c, local, t, &err)) && err == MESH_OK)
        err = MESH_ERR_INTERNAL;
    if (err != MESH_OK) {
        c->st.transactions--;
        txn_free(t);
        return err;
    }
    c->env.ops->timer_set(c->env.obj, t->timer, t->start + c->cfg.tcp_timeout);
    return MESH_OK;
}

/* ---- discovery (RFC 5780) ------------------------------------------------------------------ */

const char *mesh_stun_behaviour_name(int kind)
{
    switch (kind) {
    case MESH_STUN_BEHAVIOUR_NO_NAT:
        return "no-nat";
    case MESH_STUN_BEHAVIOUR_ENDPOINT_INDEPENDENT:
        return "endpoint-independent";
    case MESH_STUN_BEHAVIOUR_ADDRESS_DEPENDENT:
        return "address-dependent";
    case MESH_STUN_BEHAVIOUR_ADDRESS_PORT_DEPENDENT:
        return "address-and-port-dependent";
    default:
        return "unknown";
    }
}

static void disc_on_result(void *ud, const mesh_stun_result *r);

/* The discovery's report, last (the callback may free the client). */
static void disc_end(mesh_stun_client *c, int status)
{
    disc *d = &c->disc;
    d->active = 0;
    d->b.status = status;
    d->b.took = mesh_env_now(&c->env) - d->start;
    mesh_stun_behaviour b = d->b;
    d->cb(d->ud, &b);
}

static void disc_next(mesh_stun_client *c, int stage, const mesh_addr *to, unsigned change)
{
    c->disc.stage = stage;
    c->disc.b.transactions++;
    int rc = mesh_stun_client_binding(c, to, change, disc_on_result, c);
    if (rc != MESH_OK)
        disc_end(c, rc);
}

static int ip_equal(const mesh_addr *a, const mesh_addr *b)
{
    return a->family == b->family && memcmp(a->ip, b->ip, a->family == MESH_AF_INET6 ? 16 : 4) == 0;
}

static int ip_unspecified(const mesh_addr *a)
{
    static const uint8_t zero[16] = {0};
    return a->family == MESH_AF_NONE || memcmp(a->ip, zero, sizeof zero) == 0;
}

/* After the filtering tests: the mapping tests (or "no NAT" at once). */
static void disc_mapping(mesh_stun_client *c)
{
    disc *d = &c->disc;
    if (!ip_unspecified(&d->b.local) && mesh_addr_equal(&d->b.local, &d->b.mapped)) {
        d->b.mapping = MESH_STUN_BEHAVIOUR_NO_NAT;
        disc_end(c, MESH_OK);
        return;
    }
    mesh_addr to = d->b.other;
    to.port = d->server.port;
    disc_next(c, D_MAP2, &to, 0);
}

/* A filtering test's outcome: answered = `yes`; timed out without a wrong-source answer =
 * go on (`no`); anything else = the server cannot tell. */
static int filter_outcome(const mesh_stun_result *r)
{
    if (r->status == MESH_OK)
        return 1;
    return r->status == MESH_ERR_TIMEOUT && !r->wrong_source ? 0 : -1;
}

static void disc_filtering(mesh_stun_client *c, const mesh_stun_result *r)
{
    disc *d = &c->disc;
    int f = filter_outcome(r);
    if (d->stage == D_FILTER2 && f == 0) {
        disc_next(c, D_FILTER3, &d->server, MESH_STUN_CHANGE_PORT);
        return;
    }
    if (f < 0)
        d->b.filtering = MESH_STUN_BEHAVIOUR_UNKNOWN;
    else if (d->stage == D_FILTER2)
        d->b.filtering = MESH_STUN_BEHAVIOUR_ENDPOINT_INDEPENDENT;
    else
        d->b.filtering =
            f ? MESH_STUN_BEHAVIOUR_ADDRESS_DEPENDENT : MESH_STUN_BEHAVIOUR_ADDRESS_PORT_DEPENDENT;
    disc_mapping(c);
}

static void disc_on_result(void *ud, const mesh_stun_result *r)
{
    mesh_stun_client *c = ud;
    disc *d = &c->disc;
    if (d->stage == D_FILTER2 || d->stage == D_FILTER3) {
        disc_filtering(c, r);
    } else if (r->status != MESH_OK) {
        disc_end(c, r->status);
    } else if (d->stage == D_TEST1) {
        d->b.mapped = r->mapped;
        d->b.other = r->other;
        if (r->other.family != d->server.family || ip_equal(&r->other, &d->server) ||
            r->other.port == d->server.port)
            disc_end(c, MESH_ERR_UNSUPPORTED);
        else
            disc_next(c, D_FILTER2, &d->server, MESH_STUN_CHANGE_IP | MESH_STUN_CHANGE_PORT);
    } else if (d->stage == D_MAP2 && mesh_addr_equal(&r->mapped, &d->b.mapped)) {
        d->b.mapping = MESH_STUN_BEHAVIOUR_ENDPOINT_INDEPENDENT;
        disc_end(c, MESH_OK);
    } else if (d->stage == D_MAP2) {
        d->m2 = r->mapped;
        disc_next(c, D_MAP3, &d->b.other, 0);
    } else {
        d->b.mapping = mesh_addr_equal(&r->mapped, &d->m2)
                           ? MESH_STUN_BEHAVIOUR_ADDRESS_DEPENDENT
                           : MESH_STUN_BEHAVIOUR_ADDRESS_PORT_DEPENDENT;
        disc_end(c, MESH_OK);
    }
}

int mesh_stun_client_discover(mesh_stun_client *c, const mesh_addr *server,
                              mesh_stun_behaviour_cb cb, void *ud)
{
    if (!c || !server || !cb)
        return MESH_ERR_INVAL;
    if (!c->d || c->disc.active)
        return MESH_ERR_STATE;
    disc *d = &c->disc;
    memset(d, 0, sizeof *d);
    d->server = *server;
    d->cb = cb;
    d->ud = ud;
    d->start = mesh_env_now(&c->env);
    d->b.local = c->local;
    d->stage = D_TEST1;
    d->b.transactions = 1;
    int rc = mesh_stun_client_binding(c, server, 0, disc_on_result, c);
    if (rc == MESH_OK)
        d->active = 1;
    return rc;
}

/* ---- life ---------------------------------------------------------------------------------- */

void mesh_stun_client_cfg_default(mesh_stun_client_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->udp = 1;
    cfg->fingerprint = 1;
}

static int check_cfg(const mesh_stun_client_cfg *c)
{
    if (c->rc > MESH_STUN_MAX_RC || c->rm > MESH_STUN_MAX_RM || (!c->username != !c->keylen) ||
        c->keylen > MESH_STUN_CLIENT_MAX_KEY || (c->keylen && !c->key) ||
        (c->username && strlen(c->username) > MESH_STUN_MAX_USERNAME))
        return MESH_ERR_INVAL;
    return MESH_OK;
}

int mesh_stun_client_new(mesh_stun_client **out, const mesh_env *env,
                         const mesh_stun_client_cfg *cfg)
{
    if (!out || !env || !cfg)
        return MESH_ERR_INVAL;
    int rc = check_cfg(cfg);
    if (rc != MESH_OK)
        return rc;
    if (cfg->udp && !env->ops->dgram_bind)
        return MESH_ERR_UNSUPPORTED;
    mesh_stun_client *c = calloc(1, sizeof *c);
    if (!c)
        return MESH_ERR_NOMEM;
    c->env = *env;
    c->cfg = *cfg;
    if (cfg->keylen) {
        memcpy(c->key, cfg->key, cfg->keylen);
        memcpy(c->username, cfg->username, strlen(cfg->username));
    }
    c->cfg.username = NULL; /* the copies are used */
    c->cfg.key = NULL;
    if (!c->cfg.rto)
        c->cfg.rto = MESH_STUN_DEFAULT_RTO_MS * MESH_NS_PER_MS;
    if (!c->cfg.rc)
        c->cfg.rc = MESH_STUN_DEFAULT_RC;
    if (!c->cfg.rm)
        c->cfg.rm = MESH_STUN_DEFAULT_RM;
    if (!c->cfg.tcp_timeout)
        c->cfg.tcp_timeout = MESH_STUN_DEFAULT_TCP_TIMEOUT_MS * MESH_NS_PER_MS;
    if (cfg->udp) {
        mesh_addr any = mesh_addr_v4(0, 0);
        const mesh_addr *at = cfg->local.family != MESH_AF_NONE ? &cfg->local : &any;
        int err = MESH_OK;
        c->d = env->ops->dgram_bind(env->obj, at, on_dgram, c, &err);
        if (!c->d) {
            free(c);
            return err != MESH_OK ? err : MESH_ERR_INTERNAL;
        }
        if (env->ops->dgram_addr(env->obj, c->d, &c->local) != MESH_OK)
            c->local = *at;
    }
    *out = c;
    return MESH_OK;
}

void mesh_stun_client_free(mesh_stun_client *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < MESH_STUN_CLIENT_MAX_TXNS; i++)
        if (c->txns[i])
            txn_free(c->txns[i]);
    if (c->d)
        c->env.ops->dgram_close(c->env.obj, c->d);
    memset(c->key, 0, sizeof c->key);
    free(c);
}

int mesh_stun_client_local(const mesh_stun_client *c, mesh_addr *out)
{
    if (!c || !out)
        return MESH_ERR_INVAL;
    if (!c->d)
        return MESH_ERR_STATE;
    *out = c->local;
    return MESH_OK;
}

mesh_stun_client_stats mesh_stun_client_get_stats(const mesh_stun_client *c)
{
    mesh_stun_client_stats z = {0};
    return c ? c->st : z;
}
