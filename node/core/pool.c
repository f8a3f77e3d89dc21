/* pool.c — the node's connection pool (pool.h has the rules).
 *
 * Shape: an unsorted array of peers (mesh_pool_conn), each holding up to
 * MESH_POOL_MAX_SESSIONS_PER_PEER sessions wrapped in a `psess` (the session's user data).
 * Sessions of evicted or refused peers become orphans: detached from any peer, closed
 * gracefully, freed when their on_closed arrives. The array is scanned linearly: it holds at
 * most max (plus pinned) peers and a scan is cheap next to a TLS handshake; message dispatch
 * never scans (the session's user data leads to its peer). The objects are in pool_impl.h;
 * the per-peer accessors and the counters are pool_conn.c.
 */
#include "core/pool_impl.h"

#include <stdlib.h>
#include <string.h>

static void ps_connected(mesh_session *s, void *ud);
static void ps_message(mesh_session *s, const mesh_envelope *e, void *ud);
static void ps_closed(mesh_session *s, int reason, void *ud);
static const mesh_session_cbs PS_CBS = {ps_connected, ps_message, NULL, ps_closed};

static mesh_time now_of(const mesh_pool *p)
{
    return mesh_env_now(p->env);
}

/* ---- sessions ----------------------------------------------------------------------------- */

static psess *ps_new(mesh_pool *p, mesh_pool_conn *c, int outbound)
{
    psess *ps = calloc(1, sizeof *ps);
    if (!ps)
        return NULL;
    ps->p = p;
    ps->c = c;
    ps->outbound = outbound;
    ps->seq = ++p->seq;
    return ps;
}

/* Free ps and its session at once (no callback). */
static void ps_free(psess *ps)
{
    const mesh_env *env = ps->p->env;
    if (ps->linger)
        env->ops->timer_free(env->obj, ps->linger);
    mesh_session_free(ps->s);
    free(ps);
}

static void conn_remove_sess(mesh_pool_conn *c, psess *ps)
{
    for (size_t i = 0; i < c->nsess; i++)
        if (c->sess[i] == ps) {
            c->sess[i] = c->sess[--c->nsess];
            return;
        }
}

/* The pool-wide rule both ends apply to two sessions between the same pair: the one whose
 * client has the smaller node id; the same client on both: the newer. */
static psess *winner(const mesh_pool_conn *c, psess *a, psess *b)
{
    const uint8_t *ca = a->outbound ? c->p->self_id : c->id;
    const uint8_t *cb = b->outbound ? c->p->self_id : c->id;
    int cmp = memcmp(ca, cb, MESH_NODE_ID_LEN);
    if (cmp != 0)
        return cmp < 0 ? a : b;
    return a->seq > b->seq ? a : b;
}

static void linger_fired(mesh_timer *t, void *ud)
{
    (void)t;
    psess *ps = ud;
    if (mesh_session_close(ps->s) == MESH_OK)
        ps->p->st.duplicates_closed++;
}

static void retire(psess *ps)
{
    mesh_pool *p = ps->p;
    if (ps->retiring)
        return;
    ps->retiring = 1;
    if (!ps->linger)
        ps->linger = p->env->ops->timer_new(p->env->obj, linger_fired, ps);
    if (ps->linger)
        p->env->ops->timer_set(p->env->obj, ps->linger,
                               now_of(p) + (mesh_time)MESH_POOL_DUP_LINGER_MS * MESH_NS_PER_MS);
    else if (mesh_session_close(ps->s) == MESH_OK) /* no timer: close now rather than keep it */
        p->st.duplicates_closed++;
}

static void unretire(psess *ps)
{
    ps->retiring = 0;
    if (ps->linger)
        ps->p->env->ops->timer_stop(ps->p->env->obj, ps->linger);
}

/* Make ps an orphan: detached from its peer, closed gracefully (or at once if it never came
 * up), freed by ps_closed. */
static void orphan(psess *ps)
{
    mesh_pool *p = ps->p;
    if (ps->up && p->cbs.on_session_orphaned)
        p->cbs.on_session_orphaned(p->ud, ps->s);
    ps->c = NULL;
    if (ps->linger)
        p->env->ops->timer_stop(p->env->obj, ps->linger);
    if (!ps->up || mesh_session_close(ps->s) != MESH_OK) {
        ps_free(ps);
        return;
    }
    ps->next = p->orphans;
    p->orphans = ps;
}

/* ---- peers -------------------------------------------------------------------------------- */

mesh_pool_conn *mesh_pool_find(const mesh_pool *p, const uint8_t node_id[MESH_NODE_ID_LEN])
{
    for (size_t i = 0; i < p->nconns; i++)
        if (memcmp(p->conns[i]->id, node_id, MESH_NODE_ID_LEN) == 0)
            return p->conns[i];
    return NULL;
}

static mesh_pool_conn *conn_new(mesh_pool *p, const uint8_t key[MESH_PUBKEY_LEN])
{
    if (p->nconns == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        mesh_pool_conn **a = realloc(p->conns, cap * sizeof *a);
        if (!a)
            return NULL;
        p->conns = a;
        p->cap = cap;
    }
    mesh_pool_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->p = p;
    memcpy(c->key, key, MESH_PUBKEY_LEN);
    mesh_node_id_of(key, c->id);
    c->created_at = c->last_used = now_of(p);
    p->conns[p->nconns++] = c;
    return c;
}

static void conn_unlink(mesh_pool_conn *c)
{
    mesh_pool *p = c->p;
    for (size_t i = 0; i < p->nconns; i++)
        if (p->conns[i] == c) {
            p->conns[i] = p->conns[--p->nconns];
            return;
        }
}

static void free_waiters(mesh_pool_conn *c)
{
    while (c->waiters) {
        waiter *w = c->waiters;
        c->waiters = w->next;
        free(w);
    }
    c->nwaiters = 0;
}

/* Answer every waiter of c (status MESH_OK: c is usable). The list is detached first, so a
 * waiter may call back into the pool. */
static void answer_waiters(mesh_pool_conn *c, int status)
{
    waiter *w = c->waiters;
    c->waiters = NULL;
    c->nwaiters = 0;
    c->serving = 1;
    while (w) {
        waiter *next = w->next;
        if (w->fn)
            w->fn(w->ctx, status, status == MESH_OK ? c : NULL);
        free(w);
        w = next;
    }
    c->serving = 0;
}

static int add_waiter(mesh_pool_conn *c, mesh_pool_wait_fn fn, void *ctx)
{
    if (!fn)
        return MESH_OK;
    if (c->nwaiters >= MESH_POOL_MAX_WAITERS)
        return MESH_ERR_LIMIT;
    waiter *w = calloc(1, sizeof *w);
    if (!w)
        return MESH_ERR_NOMEM;
    w->fn = fn;
    w->ctx = ctx;
    waiter **tail = &c->waiters; /* FIFO: answered in the order they asked */
    while (*tail)
        tail = &(*tail)->next;
    *tail = w;
    c->nwaiters++;
    return MESH_OK;
}

/* Append the addresses c does not have yet (tried after the ones before them). */
static void add_addrs(mesh_pool_conn *c, const mesh_addr *addrs, size_t naddrs)
{
    for (size_t i = 0; i < naddrs && c->naddrs < MESH_POOL_MAX_ADDRS; i++) {
        size_t j = 0;
        while (j < c->naddrs && !mesh_addr_equal(&c->addrs[j], &addrs[i]))
            j++;
        if (j == c->naddrs)
            c->addrs[c->naddrs++] = addrs[i];
    }
}

static int has_outbound_pending(const mesh_pool_conn *c)
{
    for (size_t i = 0; i < c->nsess; i++)
        if (c->sess[i]->outbound && !c->sess[i]->up)
            return 1;
    return 0;
}

/* Start an outbound session to c's next untried address. MESH_OK or the last error. */
static int start_connect(mesh_pool_conn *c)
{
    mesh_pool *p = c->p;
    int rc = MESH_ERR_INVAL;
    if (c->nsess >= MESH_POOL_MAX_SESSIONS_PER_PEER)
        return MESH_ERR_LIMIT;
    while (c->next_addr < c->naddrs) {
        const mesh_addr *a = &c->addrs[c->next_addr++];
        psess *ps = ps_new(p, c, 1);
        if (!ps)
            return MESH_ERR_NOMEM;
        mesh_session_cfg sc = p->cfg.session;
        sc.server_name = p->cbs.server_name ? p->cbs.server_name(p->ud, c->key) : NULL;
        if (c->from_local && !c->local_failed && p->local.port) {
            sc.local = p->local; /* the listener's port: the peer sees its NAT mapping */
            ps->from_local = 1;
        }
        rc = mesh_session_connect(&ps->s, p->env, p->tls, a, c->key, &sc, &PS_CBS, ps);
        if (rc == MESH_OK) {
            c->sess[c->nsess++] = ps;
            c->connects++;
            p->st.connects++;
            return MESH_OK;
        }
        free(ps);
    }
    return rc;
}

static int evictable(const mesh_pool_conn *c, mesh_time now)
{
    return c->active && !c->pinned && !c->holds && !c->nwaiters && !c->serving &&
           now >= c->protected_until;
}

/* Detach c from the pool, orphan its sessions, tell the owner, free it. */
static void evict(mesh_pool_conn *c)
{
    mesh_pool *p = c->p;
    p->st.evicted++;
    conn_unlink(c);
    for (size_t i = 0; i < c->nsess; i++)
        orphan(c->sess[i]);
    c->nsess = 0;
    c->active = NULL;
    if (p->cbs.on_down)
        p->cbs.on_down(p->ud, c, MESH_ERR_LIMIT);
    free_waiters(c);
    free(c);
}

/* Evict the least recently used evictable peer. 1 if one was, 0 if none could be. */
static int evict_one(mesh_pool *p)
{
    mesh_time now = now_of(p);
    mesh_pool_conn *best = NULL;
    for (size_t i = 0; i < p->nconns; i++) {
        mesh_pool_conn *c = p->conns[i];
        if (evictable(c, now) && (!best || c->last_used < best->last_used ||
                                  (c->last_used == best->last_used && c->up_at < best->up_at)))
            best = c;
    }
    if (!best)
        return 0;
    mesh_log(p->env, MESH_LOG_DEBUG, "pool: evicting a peer idle for %llu ms to make room",
             (unsigned long long)((now - best->last_used) / MESH_NS_PER_MS));
    evict(best);
    return 1;
}

/* Room for one more unpinned peer: 1 if there is (possibly after an eviction). */
static int make_room(mesh_pool *p)
{
    return p->nconns < p->cfg.max || evict_one(p);
}

/* ---- session events ------------------------------------------------------------------------ */

/* ps reached CONNECTED in the pool: make it (or keep) the active one by the rule. */
static void sess_up(psess *ps)
{
    mesh_pool_conn *c = ps->c;
    mesh_pool *p = ps->p;
    ps->up = 1;
    if (!c->active) {
        c->active = ps;
    } else {
        psess *win = winner(c, c->active, ps);
        psess *lose = win == ps ? c->active : ps;
        c->active = win;
        retire(lose);
    }
    /* An outbound attempt still connecting that will lose against the active session is not
     * aborted: the accepting side reaches CONNECTED half a round trip before the client, so
     * at the peer it may already be up and carrying a query (a bootstrap node's GET_PEERS
     * was reset that way when bootstrap nodes started together). It comes up and is retired
     * like any duplicate, closing in order after the linger. */
    if (p->cbs.on_session_up)
        p->cbs.on_session_up(p->ud, c, ps->s);
    if (!c->was_up) {
        c->was_up = 1;
        c->up_at = c->last_used = now_of(p);
        c->protected_until = c->up_at + p->cfg.grace;
        if (p->cbs.on_up)
            p->cbs.on_up(p->ud, c);
    }
    answer_waiters(c, MESH_OK);
}

static void ps_connected(mesh_session *s, void *ud)
{
    (void)s;
    psess *ps = ud;
    if (ps->c)
        sess_up(ps);
}

static void ps_message(mesh_session *s, const mesh_envelope *e, void *ud)
{
    psess *ps = ud;
    mesh_pool *p = ps->p;
    if (ps->c && p->cbs.on_message)
        p->cbs.on_message(p->ud, ps->c, s, e);
}

static void orphan_closed(psess *ps)
{
    mesh_pool *p = ps->p;
    for (psess **pp = &p->orphans; *pp; pp = &(*pp)->next)
        if (*pp == ps) {
            *pp = ps->next;
            break;
        }
    ps_free(ps);
}

static void sess_gone(psess *ps, int reason)
{
    mesh_pool_conn *c = ps->c;
    mesh_pool *p = ps->p;
    conn_remove_sess(c, ps);
    if (reason == MESH_ERR_KEY_MISMATCH)
        p->st.key_mismatches++;
    if (c->active == ps) {
        /* A retired duplicate still open takes over (the peer, seeing the same session
         * close, does the same). */
        c->active = NULL;
        for (size_t i = 0; i < c->nsess; i++)
            if (c->sess[i]->up && (!c->active || winner(c, c->active, c->sess[i]) != c->active))
                c->active = c->sess[i];
        if (c->active)
            unretire(c->active);
    }
    if (ps->up && p->cbs.on_session_closed)
        p->cbs.on_session_closed(p->ud, c, ps->s, reason);
    int failed_attempt = ps->outbound && !ps->up;
    if (failed_attempt && ps->from_local && !c->local_failed) {
        /* e.g. the peer connected from its listening port at the same moment (TCP
         * simultaneous open: two TLS clients): the same address again, from any port */
        c->local_failed = 1;
        c->next_addr -= c->next_addr > 0;
    }
    ps_free(ps);

    if (failed_attempt && !c->active) {
        c->connect_failures++;
        p->st.connect_failures++;
        /* Any failure is about that address (even a key mismatch: someone else answers
         * there), so the next address is worth a try. */
        if (c->next_addr < c->naddrs && start_connect(c) == MESH_OK)
            return;
    }
    if (c->nsess > 0)
        return;
    /* Nothing left: the peer leaves the pool. Unlink first so the callbacks below may ask
     * for it again. */
    conn_unlink(c);
    if (c->was_up) {
        if (p->cbs.on_down)
            p->cbs.on_down(p->ud, c, reason);
    } else {
        if (p->cbs.on_connect_failed)
            p->cbs.on_connect_failed(p->ud, c->key, reason);
    }
    answer_waiters(c, reason == MESH_OK ? MESH_ERR_CLOSED : reason);
    free(c);
}

static void ps_closed(mesh_session *s, int reason, void *ud)
{
    (void)s;
    psess *ps = ud;
    if (!ps->c)
        orphan_closed(ps);
    else
        sess_gone(ps, reason);
}

/* ---- API ---------------------------------------------------------------------------------- */

int mesh_pool_new(mesh_pool **out, const mesh_env *env, mesh_tls_ctx *tls, const mesh_pool_cfg *cfg,
                  const mesh_pool_cbs *cbs, void *ud)
{
    if (!out || !env || !tls)
        return MESH_ERR_INVAL;
    mesh_pool_cfg c = cfg ? *cfg : (mesh_pool_cfg){0};
    if (!c.max)
        c.max = MESH_NODE_DEFAULT_POOL_MAX;
    if (!cfg || !cfg->min)
        c.min = c.max < MESH_NODE_DEFAULT_POOL_MIN ? c.max : MESH_NODE_DEFAULT_POOL_MIN;
    if (!c.grace)
        c.grace = (mesh_time)MESH_NODE_DEFAULT_GRACE_MS * MESH_NS_PER_MS;
    if (!c.maintain_interval)
        c.maintain_interval = (mesh_time)MESH_NODE_DEFAULT_MAINTAIN_MS * MESH_NS_PER_MS;
    if (c.min > c.max || c.max > MESH_POOL_MAX_PEERS)
        return MESH_ERR_INVAL;
    mesh_pool *p = calloc(1, sizeof *p);
    if (!p)
        return MESH_ERR_NOMEM;
    p->env = env;
    p->tls = tls;
    const mesh_identity *id = mesh_tls_ctx_identity(tls);
    memcpy(p->self_key, mesh_identity_pubkey(id), MESH_PUBKEY_LEN);
    memcpy(p->self_id, mesh_identity_node_id(id), MESH_NODE_ID_LEN);
    p->cfg = c;
    if (cbs)
        p->cbs = *cbs;
    p->ud = ud;
    *out = p;
    return MESH_OK;
}

void mesh_pool_free(mesh_pool *p)
{
    if (!p)
        return;
    if (p->maint)
        p->env->ops->timer_free(p->env->obj, p->maint);
    for (size_t i = 0; i < p->nconns; i++) {
        mesh_pool_conn *c = p->conns[i];
        for (size_t j = 0; j < c->nsess; j++)
            ps_free(c->sess[j]);
        free_waiters(c);
        free(c);
    }
    while (p->orphans) {
        psess *ps = p->orphans;
        p->orphans = ps->next;
        ps_free(ps);
    }
    free(p->conns);
    free(p);
}

void mesh_pool_close_all(mesh_pool *p)
{
    if (!p || p->closing)
        return;
    p->closing = 1;
    if (p->maint)
        p->env->ops->timer_stop(p->env->obj, p->maint);
    for (size_t i = 0; i < p->nconns; i++) {
        mesh_pool_conn *c = p->conns[i];
        for (size_t j = 0; j < c->nsess; j++)
            (void)mesh_session_close(c->sess[j]->s); /* MESH_ERR_STATE: closing already */
    }
    for (psess *ps = p->orphans; ps; ps = ps->next)
        (void)mesh_session_close(ps->s);
}

static void arm_maintenance(mesh_pool *p)
{
    mesh_time iv = p->cfg.maintain_interval;
    mesh_time span = iv / 100 * MESH_POOL_MAINTAIN_JITTER_PCT;
    mesh_time when = now_of(p) + iv - span + mesh_env_random_below(p->env, 2 * span + 1);
    p->env->ops->timer_set(p->env->obj, p->maint, when);
}

static void maintenance_fired(mesh_timer *t, void *ud)
{
    (void)t;
    mesh_pool *p = ud;
    mesh_pool_maintain(p);
    arm_maintenance(p);
}

int mesh_pool_start(mesh_pool *p)
{
    if (!p->maint)
        p->maint = p->env->ops->timer_new(p->env->obj, maintenance_fired, p);
    if (!p->maint)
        return MESH_ERR_NOMEM;
    arm_maintenance(p);
    return MESH_OK;
}

void mesh_pool_set_local(mesh_pool *p, const mesh_addr *local)
{
    p->local = *local;
}

int mesh_pool_get(mesh_pool *p, const uint8_t key[MESH_PUBKEY_LEN], const mesh_addr *addrs,
                  size_t naddrs, int flags, mesh_pool_wait_fn fn, void *ctx, mesh_pool_conn **ready)
{
    if (!p || !key || !ready || (naddrs && !addrs))
        return MESH_ERR_INVAL;
    *ready = NULL;
    if (memcmp(key, p->self_key, MESH_PUBKEY_LEN) == 0)
        return MESH_ERR_INVAL;
    if (p->closing)
        return MESH_ERR_STATE;
    uint8_t id[MESH_NODE_ID_LEN];
    mesh_node_id_of(key, id);
    mesh_pool_conn *c = mesh_pool_find(p, id);
    if (c) {
        if (flags & MESH_POOL_PIN)
            c->pinned = 1;
        if (flags & MESH_POOL_FROM_LOCAL)
            c->from_local = 1;
        if (c->active) {
            *ready = c;
            return MESH_OK;
        }
        add_addrs(c, addrs, naddrs);
        if (!has_outbound_pending(c)) {
            c->next_addr = 0;
            int rc = start_connect(c);
            if (rc != MESH_OK)
                return rc;
        }
        return add_waiter(c, fn, ctx);
    }
    if (!naddrs)
        return MESH_ERR_INVAL;
    if (!(flags & MESH_POOL_PIN) && !make_room(p))
        return MESH_ERR_LIMIT;
    c = conn_new(p, key);
    if (!c)
        return MESH_ERR_NOMEM;
    c->pinned = !!(flags & MESH_POOL_PIN);
    c->from_local = !!(flags & MESH_POOL_FROM_LOCAL);
    mesh_pool_set_addrs(c, addrs, naddrs);
    int rc = start_connect(c);
    if (rc == MESH_OK)
        rc = add_waiter(c, fn, ctx);
    if (rc != MESH_OK) {
        conn_unlink(c);
        for (size_t i = 0; i < c->nsess; i++)
            ps_free(c->sess[i]);
        free(c);
    }
    return rc;
}

void mesh_pool_cancel(mesh_pool *p, void *ctx)
{
    for (size_t i = 0; i < p->nconns; i++) {
        mesh_pool_conn *c = p->conns[i];
        for (waiter **pw = &c->waiters; *pw;) {
            if ((*pw)->ctx == ctx) {
                waiter *w = *pw;
                *pw = w->next;
                free(w);
                c->nwaiters--;
            } else {
                pw = &(*pw)->next;
            }
        }
    }
}

static void refuse(mesh_pool *p, mesh_session *s)
{
    psess *ps = ps_new(p, NULL, 0);
    if (!ps) {
        mesh_session_free(s);
        return;
    }
    ps->s = s;
    ps->up = 1;
    mesh_session_set_cbs(s, &PS_CBS, ps);
    p->st.refused_full++;
    orphan(ps);
}

void mesh_pool_adopt(mesh_pool *p, mesh_session *s)
{
    mesh_pool_adopt_as(p, s, 0);
}

void mesh_pool_adopt_as(mesh_pool *p, mesh_session *s, int outbound)
{
    const uint8_t *key = mesh_session_peer_key(s);
    if (p->closing || !key || memcmp(key, p->self_key, MESH_PUBKEY_LEN) == 0) {
        refuse(p, s);
        return;
    }
    mesh_pool_conn *c = mesh_pool_find(p, mesh_session_peer_id(s));
    if (!c) {
        if (!make_room(p) || !(c = conn_new(p, key))) {
            refuse(p, s);
            return;
        }
    } else if (c->nsess >= MESH_POOL_MAX_SESSIONS_PER_PEER) {
        refuse(p, s);
        return;
    }
    /* a client session may come adopted too: one the owner opened through a relay circuit or
     * a TURN data connection */
    psess *ps = ps_new(p, c, outbound || mesh_session_is_client(s));
    if (!ps) {
        if (!c->nsess) {
            conn_unlink(c);
            free(c);
        }
        refuse(p, s);
        return;
    }
    ps->s = s;
    mesh_session_set_cbs(s, &PS_CBS, ps);
    c->sess[c->nsess++] = ps;
    p->st.accepted++;
    sess_up(ps);
}

/* The silence after which a session is dead even if its own timer did not say so. */
static mesh_time dead_after(const mesh_pool *p)
{
    const mesh_session_cfg *s = &p->cfg.session;
    if (s->heartbeat_timeout)
        return s->heartbeat_timeout;
    mesh_time iv = s->heartbeat_interval
                       ? s->heartbeat_interval
                       : (mesh_time)MESH_SESSION_DEFAULT_HEARTBEAT_MS * MESH_NS_PER_MS;
    return iv * MESH_SESSION_HEARTBEAT_TIMEOUT_NUM / MESH_SESSION_HEARTBEAT_TIMEOUT_DEN;
}

/* The longest an outbound attempt can legitimately take (all three phase timeouts). */
static mesh_time attempt_max(const mesh_pool *p)
{
    const mesh_session_cfg *s = &p->cfg.session;
    mesh_time d = 0;
    d += s->connect_timeout ? s->connect_timeout
                            : (mesh_time)MESH_SESSION_DEFAULT_CONNECT_TIMEOUT_MS * MESH_NS_PER_MS;
    d += s->handshake_timeout
             ? s->handshake_timeout
             : (mesh_time)MESH_SESSION_DEFAULT_HANDSHAKE_TIMEOUT_MS * MESH_NS_PER_MS;
    d += s->auth_timeout ? s->auth_timeout
                         : (mesh_time)MESH_SESSION_DEFAULT_AUTH_TIMEOUT_MS * MESH_NS_PER_MS;
    return d;
}

/* A session of c that should be dropped now, or NULL. */
static psess *dead_session(const mesh_pool_conn *c, mesh_time now)
{
    const mesh_pool *p = c->p;
    for (size_t i = 0; i < c->nsess; i++) {
        psess *ps = c->sess[i];
        mesh_session_stats st;
        mesh_session_get_stats(ps->s, &st);
        if (!ps->up && now - st.created_at > attempt_max(p))
            return ps;
        mesh_time last =
            st.last_received_at > st.connected_at ? st.last_received_at : st.connected_at;
        if (ps->up && mesh_session_get_state(ps->s) == MESH_SESSION_CONNECTED &&
            now - last > dead_after(p))
            return ps;
    }
    return NULL;
}

void mesh_pool_maintain(mesh_pool *p)
{
    mesh_time now = now_of(p);
    p->st.maintenance_runs++;
    /* Dropping a session may free its peer (and reorder the array): restart the scan after
     * each drop; each drop removes a session, so this ends. */
    for (size_t i = 0; i < p->nconns;) {
        psess *dead = dead_session(p->conns[i], now);
        if (!dead) {
            i++;
            continue;
        }
        p->st.dead_dropped++;
        mesh_log(p->env, MESH_LOG_INFO, "pool: dropping a %s session silent too long",
                 dead->up ? "connected" : "connecting");
        sess_gone(dead, MESH_ERR_TIMEOUT);
        i = 0;
    }
    while (p->nconns > p->cfg.max && evict_one(p))
        ;
    if (p->nconns < p->cfg.min && p->cbs.on_top_up)
        p->cbs.on_top_up(p->ud, p->cfg.min - p->nconns);
}
