/* node_ops.c — the node's operations in flight (node_impl.h).
 *
 * Every send and query in flight is an `op` with its own env timer (the operation's whole
 * deadline), in a list and a hash table by id (msg_id / query_id, one counter per node
 * starting at a random value). An op goes LOOKUP (DHT lookup of the peer's id: only when
 * neither the pool nor the DHT knows the peer) → CONNECTING (a waiter on the pool) → SENT (on
 * a session, the peer held in the pool so it is not evicted) → finished exactly once
 * (mesh_node_op_finish): by the answer, the timer, a failure on the way, or the session
 * closing — unless the pool still has another usable session to the peer (a duplicate from a
 * simultaneous open was retired), in which case the op goes out again there; the receiver
 * drops the repeated message by id (mesh_pool_seen_msg) and acknowledges it again.
 *
 * The DHT and the bootstrap manager talk to peers through queries made here: their replies
 * are ops' answers relayed to a DHT-style reply function.
 */
#include <stdlib.h>
#include <string.h>

#include "core/node_impl.h"

/* ---- operations --------------------------------------------------------------------------- */

static op **bucket_of(mesh_node *n, uint64_t id)
{
    return &n->buckets[(id ^ (id >> 29)) % MESH_NODE_OP_BUCKETS];
}

op *mesh_node_op_find(mesh_node *n, uint64_t id)
{
    for (op *o = *bucket_of(n, id); o; o = o->hnext)
        if (o->id == id)
            return o;
    return NULL;
}

static void op_timeout(mesh_timer *t, void *ud);
static void relay_answer(mesh_node *n, void *actx, const answer *a);

op *mesh_node_op_new(mesh_node *n, int kind, const uint8_t key[MESH_PUBKEY_LEN], mesh_time timeout)
{
    op *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->timer = n->env.ops->timer_new(n->env.obj, op_timeout, o);
    if (!o->timer) {
        free(o);
        return NULL;
    }
    o->n = n;
    o->kind = kind;
    memcpy(o->key, key, MESH_PUBKEY_LEN);
    mesh_node_id_of(key, o->peer_id);
    do
        o->id = n->next_id++;
    while (o->id == 0 || mesh_node_op_find(n, o->id)); /* 0: reserved (unsolicited records) */
    op **b = bucket_of(n, o->id);
    o->hnext = *b;
    *b = o;
    o->next = n->ops;
    if (n->ops)
        n->ops->prev = o;
    n->ops = o;
    n->nops++;
    n->env.ops->timer_set(n->env.obj, o->timer, mesh_env_now(&n->env) + timeout);
    return o;
}

/* Unlink and free without any callback. */
void mesh_node_op_free(op *o)
{
    mesh_node *n = o->n;
    for (op **pp = bucket_of(n, o->id); *pp; pp = &(*pp)->hnext)
        if (*pp == o) {
            *pp = o->hnext;
            break;
        }
    if (o->prev)
        o->prev->next = o->next;
    else
        n->ops = o->next;
    if (o->next)
        o->next->prev = o->prev;
    n->nops--;
    if (o->state == OP_CONNECTING && n->pool)
        mesh_pool_cancel(n->pool, o);
    if (o->conn)
        mesh_pool_release(o->conn);
    if (o->lk)
        o->lk->op = NULL;
    n->env.ops->timer_free(n->env.obj, o->timer);
    free(o->data);
    free(o);
}

/* The op's one completion. */
void mesh_node_op_finish(op *o, const answer *a)
{
    mesh_node *n = o->n;
    mesh_node_done_fn done = o->done;
    void *done_ud = o->done_ud;
    answer_fn afn = o->afn;
    void *actx = o->actx;
    int kind = o->kind;
    mesh_node_op_free(o);
    if (kind == OP_SEND) {
        if (a->status == MESH_OK)
            n->st.msgs_acked++;
        else
            n->st.msgs_failed++;
        if (done)
            done(n, a->status, done_ud);
    } else {
        if (a->status == MESH_OK)
            n->st.queries_ok++;
        else
            n->st.queries_failed++;
        if (afn)
            afn(n, actx, a);
    }
}

void mesh_node_op_fail(op *o, int status)
{
    answer a = {.status = status};
    mesh_node_op_finish(o, &a);
}

static void op_timeout(mesh_timer *t, void *ud)
{
    (void)t;
    mesh_node_op_fail(ud, MESH_ERR_TIMEOUT);
}

/* Put o on c's usable session. MESH_OK or the session's send error. */
int mesh_node_op_transmit(op *o, mesh_pool_conn *c)
{
    mesh_node *n = o->n;
    mesh_session *s = mesh_pool_session(c);
    if (!s)
        return MESH_ERR_CLOSED;
    mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
    Meshara__Wire__AppData d = MESHARA__WIRE__APP_DATA__INIT;
    Meshara__Wire__Query q = MESHARA__WIRE__QUERY__INIT;
    if (o->kind == OP_SEND) {
        d.msg_id = o->id;
        d.payload.data = o->data;
        d.payload.len = o->len;
        d.ack_requested = 1;
        e.body_case = MESHARA__WIRE__ENVELOPE__BODY_DATA;
        e.data = &d;
    } else {
        q.query_id = o->id;
        q.type = (Meshara__Wire__QueryType)o->qtype;
        if (o->has_target) {
            q.target.data = o->target;
            q.target.len = MESH_NODE_ID_LEN;
        }
        if (o->qtype == MESH_QUERY_PING || o->qtype == MESH_QUERY_DIAL_BACK) {
            q.payload.data = o->data;
            q.payload.len = o->len;
        }
        e.body_case = MESHARA__WIRE__ENVELOPE__BODY_QUERY;
        e.query = &q;
    }
    int rc = mesh_session_send(s, &e);
    if (rc != MESH_OK)
        return rc;
    if (!o->conn) {
        mesh_pool_hold(c);
        o->conn = c;
    }
    o->sess = s;
    o->state = OP_SENT;
    o->sent_at = mesh_env_now(&n->env);
    mesh_pool_touch(c, 1);
    if (o->kind == OP_SEND)
        n->st.msgs_sent++;
    else
        n->st.queries_sent++;
    return MESH_OK;
}

/* Wait for a session through one of the relays of the peer's record (node_relay.c).
 * MESH_OK (o waits: CONNECTING); MESH_ERR_UNREACHABLE (no relay known, or tried already). */
static int op_via_relay(op *o, const mesh_peer_record *r)
{
    mesh_node *n = o->n;
    if (!r)
        r = mesh_dht_get(n->dht, o->peer_id);
    /* not for the DHT's own queries: a lookup must not open circuits to every node it meets */
    if (o->relay_tried || o->no_lookup || !r || !r->nrelays)
        return MESH_ERR_UNREACHABLE;
    o->relay_tried = 1;
    int rc = mesh_node_relay_dial(n, r);
    if (rc != MESH_OK)
        return rc;
    o->relay_wait = 1;
    o->state = OP_CONNECTING;
    return MESH_OK;
}

static void op_conn_ready(void *ctx, int status, mesh_pool_conn *c)
{
    op *o = ctx;
    if (status == MESH_OK)
        status = mesh_node_op_transmit(o, c);
    else if (op_via_relay(o, NULL) == MESH_OK)
        return; /* the direct path failed: the peer's relays may reach it */
    if (status != MESH_OK)
        mesh_node_op_fail(o, status);
}

static void lookup_done(void *ud, int status, const mesh_peer_record *closest, size_t nrec,
                        unsigned hops, unsigned queries);

int mesh_node_lookup_start(mesh_node *n, const uint8_t target[MESH_NODE_ID_LEN], op *o,
                           mesh_node_lookup_fn cb, void *ud)
{
    lookup *lk = calloc(1, sizeof *lk);
    if (!lk)
        return MESH_ERR_NOMEM;
    lk->n = n;
    lk->op = o;
    lk->cb = cb;
    lk->ud = ud;
    memcpy(lk->target, target, MESH_NODE_ID_LEN);
    int rc = mesh_dht_lookup(n->dht, target, lookup_done, lk);
    if (rc != MESH_OK) {
        free(lk);
        return rc;
    }
    lk->next = n->lookups;
    if (n->lookups)
        n->lookups->prev = lk;
    n->lookups = lk;
    if (o) {
        o->lk = lk;
        o->state = OP_LOOKUP;
    }
    return MESH_OK;
}

/* Move o towards a session: the pool's, else a connection to the addresses known for the
 * peer, else a DHT lookup first. MESH_OK (the op goes on) or an error (nothing started). */
int mesh_node_op_go(op *o)
{
    mesh_node *n = o->n;
    if (o->naddrs == 0) {
        const mesh_peer_record *r = mesh_dht_get(n->dht, o->peer_id);
        if (r && r->naddrs) {
            o->naddrs = r->naddrs;
            memcpy(o->addrs, r->addrs, r->naddrs * sizeof r->addrs[0]);
        }
    }
    if (o->naddrs == 0 && !mesh_pool_find(n->pool, o->peer_id)) {
        if (op_via_relay(o, NULL) == MESH_OK)
            return MESH_OK; /* no address, only relays: through a circuit */
        if (o->no_lookup)
            return MESH_ERR_UNREACHABLE;
        return mesh_node_lookup_start(n, o->peer_id, o, NULL, NULL);
    }
    mesh_pool_conn *ready = NULL;
    int rc = mesh_pool_get(n->pool, o->key, o->addrs, o->naddrs, o->pool_flags, op_conn_ready, o,
                           &ready);
    if (rc != MESH_OK)
        return rc;
    if (ready)
        return mesh_node_op_transmit(o, ready);
    o->state = OP_CONNECTING;
    return MESH_OK;
}

static void lookup_unlink(mesh_node *n, lookup *lk)
{
    if (lk->prev)
        lk->prev->next = lk->next;
    else
        n->lookups = lk->next;
    if (lk->next)
        lk->next->prev = lk->prev;
}

static void lookup_done(void *ud, int status, const mesh_peer_record *closest, size_t nrec,
                        unsigned hops, unsigned queries)
{
    lookup *lk = ud;
    mesh_node *n = lk->n;
    lookup_unlink(n, lk);
    const mesh_peer_record *hit = NULL;
    for (size_t i = 0; status == MESH_OK && i < nrec && !hit; i++)
        if (memcmp(closest[i].node_id, lk->target, MESH_NODE_ID_LEN) == 0)
            hit = &closest[i];
    op *o = lk->op;
    mesh_node_lookup_fn cb = lk->cb;
    void *cbud = lk->ud;
    free(lk);
    if (o) {
        o->lk = NULL;
        o->state = OP_NEW;
        if (hit && !hit->naddrs && op_via_relay(o, hit) == MESH_OK)
            return; /* only relays: through a circuit */
        if (!hit || !hit->naddrs) {
            mesh_node_op_fail(o, MESH_ERR_NOT_FOUND);
            return;
        }
        o->naddrs = hit->naddrs;
        memcpy(o->addrs, hit->addrs, hit->naddrs * sizeof hit->addrs[0]);
        n->dialling = hit;
        int rc = mesh_node_op_go(o);
        n->dialling = NULL;
        if (rc != MESH_OK)
            mesh_node_op_fail(o, rc);
    } else if (cb) {
        cb(n, hit ? MESH_OK : MESH_ERR_NOT_FOUND, hit ? hit->pubkey : NULL, hops, queries, cbud);
    }
}

/* A query op to key (addrs: where to connect if not connected; may be none). */
int mesh_node_query_start(mesh_node *n, const uint8_t key[MESH_PUBKEY_LEN], const mesh_addr *addrs,
                          size_t naddrs, int pool_flags, int type, const uint8_t *payload,
                          size_t len, mesh_time timeout, answer_fn afn, void *actx)
{
    if (n->nops >= MESH_NODE_MAX_PENDING)
        return MESH_ERR_LIMIT;
    op *o = mesh_node_op_new(n, OP_QUERY, key, timeout);
    if (!o)
        return MESH_ERR_NOMEM;
    o->qtype = type;
    o->afn = afn;
    o->actx = actx;
    o->pool_flags = pool_flags;
    o->no_lookup = afn == relay_answer;
    if (naddrs > MESH_PEER_MAX_ADDRS)
        naddrs = MESH_PEER_MAX_ADDRS;
    o->naddrs = naddrs;
    if (naddrs)
        memcpy(o->addrs, addrs, naddrs * sizeof *addrs);
    if (type == MESH_QUERY_FIND_NODE) {
        memcpy(o->target, payload, MESH_NODE_ID_LEN);
        o->has_target = 1;
    } else if ((type == MESH_QUERY_PING || type == MESH_QUERY_DIAL_BACK) && len) {
        o->data = malloc(len);
        if (!o->data) {
            mesh_node_op_free(o);
            return MESH_ERR_NOMEM;
        }
        memcpy(o->data, payload, len);
        o->len = len;
    }
    int rc = mesh_node_op_go(o);
    if (rc != MESH_OK)
        mesh_node_op_free(o);
    return rc;
}

/* ---- DHT transport and bootstrap ops ------------------------------------------------------- */

typedef struct reply_ctx {
    mesh_dht_reply_fn reply;
    void *ctx;
} reply_ctx;

static void relay_answer(mesh_node *n, void *actx, const answer *a)
{
    (void)n;
    reply_ctx rc = *(reply_ctx *)actx;
    free(actx);
    rc.reply(rc.ctx, a->status, a->recs, a->nrecs);
}

/* A query whose answer goes to a DHT-style reply function. */
static int relay_query(mesh_node *n, const uint8_t key[MESH_PUBKEY_LEN], const mesh_addr *addrs,
                       size_t naddrs, int flags, int type, const uint8_t *payload,
                       mesh_time timeout, mesh_dht_reply_fn reply, void *ctx)
{
    reply_ctx *rc = malloc(sizeof *rc);
    if (!rc)
        return MESH_ERR_NOMEM;
    rc->reply = reply;
    rc->ctx = ctx;
    int err = mesh_node_query_start(n, key, addrs, naddrs, flags, type, payload,
                                    payload ? MESH_NODE_ID_LEN : 0, timeout, relay_answer, rc);
    if (err != MESH_OK)
        free(rc);
    return err;
}

static int dht_find_node(void *ud, const mesh_peer_record *to,
                         const uint8_t target[MESH_NODE_ID_LEN], mesh_dht_reply_fn reply, void *ctx)
{
    mesh_node *n = ud;
    n->dialling = to; /* its host name is the SNI if the query opens a session */
    int rc = relay_query(n, to->pubkey, to->addrs, to->naddrs, 0, MESH_QUERY_FIND_NODE, target,
                         n->cfg.query_timeout, reply, ctx);
    n->dialling = NULL;
    return rc;
}

static int dht_ping(void *ud, const mesh_peer_record *to, mesh_dht_reply_fn reply, void *ctx)
{
    mesh_node *n = ud;
    n->dialling = to; /* its host name is the SNI if the query opens a session */
    int rc = relay_query(n, to->pubkey, to->addrs, to->naddrs, 0, MESH_QUERY_PING, NULL,
                         n->cfg.query_timeout, reply, ctx);
    n->dialling = NULL;
    return rc;
}

static int boot_get_peers(void *ud, const mesh_node_peer *peer, mesh_dht_reply_fn reply, void *ctx)
{
    mesh_node *n = ud;
    /* Manual peers are meant to stay connected: pinned, as at start. A node configured with
     * relays (expecting a NAT) connects from its listening port: the seed's hello tells that
     * port's NAT mapping, which hole punching offers (node_punch.c). */
    int manual = peer >= n->cfg.manual && peer < n->cfg.manual + MESH_NODE_MAX_MANUAL;
    int flags = (manual ? MESH_POOL_PIN : 0) | (n->cfg.n_relays ? MESH_POOL_FROM_LOCAL : 0);
    return relay_query(n, peer->key, &peer->addr, 1, flags, MESH_QUERY_GET_PEERS, NULL,
                       n->cfg.bootstrap_timeout, reply, ctx);
}

static void boot_joined(void *ud, int status)
{
    mesh_node *n = ud;
    if (status == MESH_OK && !n->joined) {
        n->joined = 1;
        n->join_reported = 1;
        mesh_node_notify(n, NOTE_JOINED, NULL, 0, MESH_OK);
    } else if (status != MESH_OK && !n->join_reported) {
        n->join_reported = 1;
        mesh_node_notify(n, NOTE_JOINED, NULL, 0, status);
    }
}

const mesh_dht_transport mesh_node_dht_transport = {.find_node = dht_find_node, .ping = dht_ping};
const mesh_bootstrap_ops mesh_node_bootstrap_ops = {boot_get_peers, boot_joined};
