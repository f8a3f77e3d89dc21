/* node.c — the Meshara node (meshara/meshara.h): modules glued into one object.
 *
 * Operations. Every send and query in flight is an `op` with its own env timer (the
 * operation's whole deadline), in a list and a hash table by id (msg_id / query_id, one
 * counter per node starting at a random value). An op goes LOOKUP (DHT lookup of the peer's
 * id: only when neither the pool nor the DHT knows the peer) → CONNECTING (a waiter on the
 * pool) → SENT (on a session, the peer held in the pool so it is not evicted) → finished
 * exactly once (op_finish): by the answer, the timer, a failure on the way, or the session
 * closing — unless the pool still has another usable session to the peer (a duplicate from a
 * simultaneous open was retired), in which case the op goes out again there; the receiver
 * drops the repeated message by id (mesh_pool_seen_msg) and acknowledges it again.
 *
 * Public callbacks (on_peer, on_joined) are queued and delivered from a zero-delay timer,
 * because the pool may evict a peer inside a mesh_node_* call; completions of sends and
 * queries always come from env events already (answers, timers, waiter and lookup replies).
 */
#include "core/node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/identity.h"
#include "core/server.h"
#include "core/session.h"
#include "core/tls.h"
#include "core/wire.h"

_Static_assert((int)MESH_NODE_KEY_BYTES == (int)MESH_PUBKEY_LEN, "key size");
_Static_assert((int)MESH_NODE_ID_BYTES == (int)MESH_NODE_ID_LEN, "id size");
_Static_assert((int)MESH_NODE_MAX_ADVERTISED <= (int)MESH_PEER_MAX_ADDRS, "advertised fit");
_Static_assert((int)MESH_QUERY_PING == (int)MESHARA__WIRE__QUERY_TYPE__QUERY_PING &&
                   (int)MESH_QUERY_GET_PEERS == (int)MESHARA__WIRE__QUERY_TYPE__QUERY_GET_PEERS &&
                   (int)MESH_QUERY_FIND_NODE == (int)MESHARA__WIRE__QUERY_TYPE__QUERY_FIND_NODE,
               "query types match the schema");

enum op_kind { OP_SEND = 1, OP_QUERY = 2 };
enum op_state { OP_NEW = 0, OP_LOOKUP, OP_CONNECTING, OP_SENT };

/* What came back for an op (internal form of mesh_node_answer). */
typedef struct answer {
    int status;
    const uint8_t *payload;
    size_t payload_len;
    const mesh_peer_record *recs;
    size_t nrecs;
    mesh_time rtt;
} answer;
typedef void (*answer_fn)(mesh_node *n, void *ctx, const answer *a);

typedef struct lookup lookup;
static void relay_answer(mesh_node *n, void *actx, const answer *a);

typedef struct op {
    mesh_node *n;
    int kind, state;
    uint64_t id;
    uint8_t key[MESH_PUBKEY_LEN];
    uint8_t peer_id[MESH_NODE_ID_LEN];
    mesh_addr addrs[MESH_PEER_MAX_ADDRS]; /* where to connect, when known up front */
    size_t naddrs;
    int pool_flags;
    int no_lookup;  /* DHT transport: the record is all we know; never look up from inside */
    int reconnects; /* after orderly closes of the session it was sent on */
    uint8_t *data;  /* AppData payload or query payload (owned) */
    size_t len;
    int qtype;
    uint8_t target[MESH_NODE_ID_LEN];
    int has_target;
    mesh_timer *timer;
    mesh_pool_conn *conn; /* SENT: the peer (held) and the session it went out on */
    mesh_session *sess;
    mesh_time sent_at;
    lookup *lk;
    /* completion: a send's done, or a query's answer function */
    mesh_node_done_fn done;
    void *done_ud;
    answer_fn afn;
    void *actx;
    struct op *prev, *next, *hnext;
} op;

/* A DHT lookup in flight: for an op (op may be cleared if the op ends first) or for
 * mesh_node_lookup(). The DHT cannot cancel lookups, so this outlives whoever asked. */
struct lookup {
    mesh_node *n;
    op *op;
    uint8_t target[MESH_NODE_ID_LEN];
    mesh_node_lookup_fn cb;
    void *ud;
    struct lookup *prev, *next;
};

enum note_kind { NOTE_PEER = 1, NOTE_JOINED = 2 };
typedef struct note {
    int kind, connected, status;
    uint8_t key[MESH_PUBKEY_LEN];
} note;

struct mesh_node {
    mesh_env env;
    mesh_node_cfg cfg;
    mesh_node_cbs cbs;
    void *ud;
    const mesh_identity *id;
    mesh_tls_ctx *tls;
    mesh_session_cfg scfg;
    mesh_server *srv;
    mesh_pool *pool;
    mesh_dht *dht;
    mesh_bootstrap *boot;
    mesh_dht_transport transport;
    mesh_peer_record self;
    mesh_peer_cache vcache; /* records verified before (shared with the DHT) */
    mesh_addr bound;
    int started, joined, join_reported, closing;
    uint64_t next_id;
    op *ops;
    op *buckets[MESH_NODE_OP_BUCKETS];
    size_t nops;
    lookup *lookups;
    note *notes;
    size_t nnotes, notes_cap;
    mesh_timer *note_timer;
    int mdns_on;
    char mdns_name[sizeof MESH_NODE_MDNS_PREFIX + 16];
    mesh_node_stats st;
};

/* ---- deferred notifications --------------------------------------------------------------- */

static void notes_fired(mesh_timer *t, void *ud)
{
    (void)t;
    mesh_node *n = ud;
    /* Callbacks may queue more: take them in order until none is left. */
    for (size_t i = 0; i < n->nnotes; i++) {
        note x = n->notes[i];
        if (x.kind == NOTE_PEER && n->cbs.on_peer)
            n->cbs.on_peer(n, x.key, x.connected, x.status, n->ud);
        else if (x.kind == NOTE_JOINED && n->cbs.on_joined)
            n->cbs.on_joined(n, x.status, n->ud);
    }
    n->nnotes = 0;
}

static void notify(mesh_node *n, int kind, const uint8_t *key, int connected, int status)
{
    if (n->nnotes == n->notes_cap) {
        size_t cap = n->notes_cap ? n->notes_cap * 2 : 16;
        note *a = realloc(n->notes, cap * sizeof *a);
        if (!a) {
            mesh_log(&n->env, MESH_LOG_ERROR, "node: out of memory: a peer event is lost");
            return;
        }
        n->notes = a;
        n->notes_cap = cap;
    }
    note *x = &n->notes[n->nnotes++];
    memset(x, 0, sizeof *x);
    x->kind = kind;
    x->connected = connected;
    x->status = status;
    if (key)
        memcpy(x->key, key, MESH_PUBKEY_LEN);
    n->env.ops->timer_set(n->env.obj, n->note_timer, mesh_env_now(&n->env));
}

/* ---- operations --------------------------------------------------------------------------- */

static op **bucket_of(mesh_node *n, uint64_t id)
{
    return &n->buckets[(id ^ (id >> 29)) % MESH_NODE_OP_BUCKETS];
}

static op *op_find(mesh_node *n, uint64_t id)
{
    for (op *o = *bucket_of(n, id); o; o = o->hnext)
        if (o->id == id)
            return o;
    return NULL;
}

static void op_timeout(mesh_timer *t, void *ud);

static op *op_new(mesh_node *n, int kind, const uint8_t key[MESH_PUBKEY_LEN], mesh_time timeout)
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
    while (o->id == 0 || op_find(n, o->id)); /* 0: reserved (unsolicited records) */
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
static void op_free(op *o)
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
static void op_finish(op *o, const answer *a)
{
    mesh_node *n = o->n;
    mesh_node_done_fn done = o->done;
    void *done_ud = o->done_ud;
    answer_fn afn = o->afn;
    void *actx = o->actx;
    int kind = o->kind;
    op_free(o);
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

static void op_fail(op *o, int status)
{
    answer a = {.status = status};
    op_finish(o, &a);
}

static void op_timeout(mesh_timer *t, void *ud)
{
    (void)t;
    op_fail(ud, MESH_ERR_TIMEOUT);
}

/* Put o on c's usable session. MESH_OK or the session's send error. */
static int op_transmit(op *o, mesh_pool_conn *c)
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
        if (o->qtype == MESH_QUERY_PING) {
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

static void op_conn_ready(void *ctx, int status, mesh_pool_conn *c)
{
    op *o = ctx;
    if (status == MESH_OK)
        status = op_transmit(o, c);
    if (status != MESH_OK)
        op_fail(o, status);
}

static void lookup_done(void *ud, int status, const mesh_peer_record *closest, size_t nrec,
                        unsigned hops, unsigned queries);

static int start_lookup(mesh_node *n, const uint8_t target[MESH_NODE_ID_LEN], op *o,
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
static int op_go(op *o)
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
        if (o->no_lookup)
            return MESH_ERR_UNREACHABLE;
        return start_lookup(n, o->peer_id, o, NULL, NULL);
    }
    mesh_pool_conn *ready = NULL;
    int rc = mesh_pool_get(n->pool, o->key, o->addrs, o->naddrs, o->pool_flags, op_conn_ready, o,
                           &ready);
    if (rc != MESH_OK)
        return rc;
    if (ready)
        return op_transmit(o, ready);
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
        if (!hit || !hit->naddrs) {
            op_fail(o, MESH_ERR_NOT_FOUND);
            return;
        }
        o->naddrs = hit->naddrs;
        memcpy(o->addrs, hit->addrs, hit->naddrs * sizeof hit->addrs[0]);
        int rc = op_go(o);
        if (rc != MESH_OK)
            op_fail(o, rc);
    } else if (cb) {
        cb(n, hit ? MESH_OK : MESH_ERR_NOT_FOUND, hit ? hit->pubkey : NULL, hops, queries, cbud);
    }
}

/* A query op to key (addrs: where to connect if not connected; may be none). */
static int query_start(mesh_node *n, const uint8_t key[MESH_PUBKEY_LEN], const mesh_addr *addrs,
                       size_t naddrs, int pool_flags, int type, const uint8_t *payload, size_t len,
                       mesh_time timeout, answer_fn afn, void *actx)
{
    if (n->nops >= MESH_NODE_MAX_PENDING)
        return MESH_ERR_LIMIT;
    op *o = op_new(n, OP_QUERY, key, timeout);
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
    } else if (type == MESH_QUERY_PING && len) {
        o->data = malloc(len);
        if (!o->data) {
            op_free(o);
            return MESH_ERR_NOMEM;
        }
        memcpy(o->data, payload, len);
        o->len = len;
    }
    int rc = op_go(o);
    if (rc != MESH_OK)
        op_free(o);
    return rc;
}

/* ---- records ------------------------------------------------------------------------------ */

/* A record as protobuf bytes (malloc'd). MESH_OK or MESH_ERR_NOMEM. */
static int record_pack(const mesh_peer_record *r, uint8_t **out, size_t *outlen)
{
    Meshara__Wire__PeerRecord pb;
    char text[MESH_PEER_MAX_ADDRS][MESH_ADDR_STRLEN];
    char *ptrs[MESH_PEER_MAX_ADDRS];
    mesh_peer_record_to_pb(r, &pb, text, ptrs);
    size_t len = meshara__wire__peer_record__get_packed_size(&pb);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return MESH_ERR_NOMEM;
    meshara__wire__peer_record__pack(&pb, buf);
    *out = buf;
    *outlen = len;
    return MESH_OK;
}

static void store_save(mesh_node *n, const mesh_peer_record *r)
{
    const mesh_peer_store *ps = &n->cfg.store;
    if (!ps->ops || !ps->ops->save)
        return;
    uint8_t *buf;
    size_t len;
    if (record_pack(r, &buf, &len) != MESH_OK)
        return;
    int rc = ps->ops->save(ps->obj, r->node_id, r->seq, buf, len);
    if (rc != MESH_OK)
        mesh_log(&n->env, MESH_LOG_WARN, "node: peer store: saving a record failed: %s",
                 mesh_errname(rc));
    free(buf);
}

static void store_each(void *ud, const uint8_t *rec, size_t len)
{
    mesh_node *n = ud;
    mesh_peer_record r;
    Meshara__Wire__PeerRecord *pb = NULL;
    int ok = len <= MESH_NODE_STORE_RECORD_MAX && rec &&
             (pb = meshara__wire__peer_record__unpack(NULL, len, rec)) != NULL &&
             mesh_peer_record_from_pb_cached(pb, &r, &n->vcache) == MESH_OK &&
             memcmp(r.pubkey, mesh_identity_pubkey(n->id), MESH_PUBKEY_LEN) != 0 &&
             mesh_dht_add(n->dht, &r, 0) == MESH_OK;
    if (pb)
        meshara__wire__peer_record__free_unpacked(pb, NULL);
    if (ok)
        n->st.records_accepted++;
    else
        n->st.records_rejected++;
}

static void send_announce(mesh_node *n, mesh_session *s)
{
    Meshara__Wire__PeerRecord pb;
    char text[MESH_PEER_MAX_ADDRS][MESH_ADDR_STRLEN];
    char *ptrs[MESH_PEER_MAX_ADDRS];
    mesh_peer_record_to_pb(&n->self, &pb, text, ptrs);
    Meshara__Wire__Announce an = MESHARA__WIRE__ANNOUNCE__INIT;
    an.record = &pb;
    mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
    e.body_case = MESHARA__WIRE__ENVELOPE__BODY_ANNOUNCE;
    e.announce = &an;
    int rc = mesh_session_send(s, &e);
    if (rc != MESH_OK)
        mesh_log(&n->env, MESH_LOG_INFO, "node: announce not sent: %s", mesh_errname(rc));
}

/* A record the peer on c announced about itself. */
static void on_record(mesh_node *n, mesh_pool_conn *c, const Meshara__Wire__PeerRecord *pb)
{
    mesh_peer_record r;
    int rc = mesh_peer_record_from_pb_cached(pb, &r, &n->vcache);
    if (rc == MESH_OK && memcmp(r.pubkey, mesh_pool_conn_key(c), MESH_PUBKEY_LEN) != 0)
        rc = MESH_ERR_KEY_MISMATCH;
    if (rc != MESH_OK) {
        n->st.records_rejected++;
        mesh_log(&n->env, MESH_LOG_WARN, "node: dropping a peer's announced record: %s",
                 mesh_errname(rc));
        return;
    }
    n->st.records_accepted++;
    mesh_pool_set_addrs(c, r.addrs, r.naddrs);
    rc = mesh_dht_add(n->dht, &r, 1);
    if (rc == MESH_OK)
        store_save(n, &r);
}

/* Records of a Response, verified, into out (cap entries). Returns how many. */
static size_t response_records(mesh_node *n, const Meshara__Wire__Response *r,
                               mesh_peer_record *out, size_t cap)
{
    size_t k = 0;
    if (!r->peers)
        return 0;
    for (size_t i = 0; i < r->peers->n_peers && k < cap; i++) {
        if (mesh_peer_record_from_pb_cached(r->peers->peers[i], &out[k], &n->vcache) == MESH_OK)
            k++;
        else
            n->st.records_rejected++;
    }
    return k;
}

/* ---- answering queries -------------------------------------------------------------------- */

static void answer_query(mesh_node *n, mesh_pool_conn *c, mesh_session *s,
                         const Meshara__Wire__Query *q)
{
    Meshara__Wire__Response r = MESHARA__WIRE__RESPONSE__INIT;
    r.query_id = q->query_id;
    r.type = q->type;
    r.status = MESH_OK;
    mesh_peer_record recs[MESH_DHT_K];
    Meshara__Wire__PeerRecord pbs[MESH_DHT_K];
    Meshara__Wire__PeerRecord *pbp[MESH_DHT_K];
    char(*text)[MESH_PEER_MAX_ADDRS][MESH_ADDR_STRLEN] = NULL;
    char *ptrs[MESH_DHT_K][MESH_PEER_MAX_ADDRS];
    Meshara__Wire__PeerList list = MESHARA__WIRE__PEER_LIST__INIT;
    size_t nrec = 0;
    switch (q->type) {
    case MESHARA__WIRE__QUERY_TYPE__QUERY_PING:
        r.payload = q->payload;
        break;
    case MESHARA__WIRE__QUERY_TYPE__QUERY_GET_PEERS:
        nrec = mesh_dht_closest(n->dht, mesh_pool_conn_id(c), recs, MESH_DHT_K);
        break;
    case MESHARA__WIRE__QUERY_TYPE__QUERY_FIND_NODE:
        if (q->target.len != MESH_NODE_ID_LEN)
            r.status = MESH_ERR_INVAL;
        else
            nrec = mesh_dht_closest(n->dht, q->target.data, recs, MESH_DHT_K);
        break;
    default:
        r.status = MESH_ERR_UNSUPPORTED;
        break;
    }
    /* Never hand a peer its own record back: it knows itself. */
    for (size_t i = 0; i < nrec;) {
        if (memcmp(recs[i].node_id, mesh_pool_conn_id(c), MESH_NODE_ID_LEN) == 0)
            recs[i] = recs[--nrec];
        else
            i++;
    }
    if (nrec) {
        text = malloc(nrec * sizeof *text);
        if (!text) {
            r.status = MESH_ERR_NOMEM;
            nrec = 0;
        }
    }
    for (size_t i = 0; i < nrec; i++) {
        mesh_peer_record_to_pb(&recs[i], &pbs[i], text[i], ptrs[i]);
        pbp[i] = &pbs[i];
    }
    if (q->type == MESHARA__WIRE__QUERY_TYPE__QUERY_GET_PEERS ||
        q->type == MESHARA__WIRE__QUERY_TYPE__QUERY_FIND_NODE) {
        list.n_peers = nrec;
        list.peers = pbp;
        r.peers = &list;
    }
    mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
    e.body_case = MESHARA__WIRE__ENVELOPE__BODY_RESPONSE;
    e.response = &r;
    int rc = mesh_session_send(s, &e);
    free(text);
    if (rc == MESH_OK) {
        n->st.queries_answered++;
        mesh_pool_touch(c, 1);
        mesh_pool_used(c);
    } else {
        mesh_log(&n->env, MESH_LOG_INFO, "node: answer not sent: %s", mesh_errname(rc));
    }
}

/* ---- pool events -------------------------------------------------------------------------- */

static void on_data(mesh_node *n, mesh_pool_conn *c, mesh_session *s,
                    const Meshara__Wire__AppData *d)
{
    mesh_pool_touch(c, 0);
    mesh_pool_used(c);
    if (mesh_pool_seen_msg(c, d->msg_id)) {
        n->st.msgs_duplicate++;
    } else {
        n->st.msgs_received++;
        if (n->cbs.on_message)
            n->cbs.on_message(n, mesh_pool_conn_key(c), d->payload.data, d->payload.len, n->ud);
    }
    if (!d->ack_requested)
        return;
    Meshara__Wire__AppAck ack = MESHARA__WIRE__APP_ACK__INIT;
    ack.msg_id = d->msg_id;
    ack.status = MESH_OK;
    mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
    e.body_case = MESHARA__WIRE__ENVELOPE__BODY_ACK;
    e.ack = &ack;
    int rc = mesh_session_send(s, &e);
    if (rc != MESH_OK)
        mesh_log(&n->env, MESH_LOG_INFO, "node: ack not sent: %s (the sender will time out)",
                 mesh_errname(rc));
}

/* The op an answer on c is for, or NULL (unknown id, or another peer's). */
static op *answered_op(mesh_node *n, mesh_pool_conn *c, uint64_t id, int kind)
{
    op *o = op_find(n, id);
    if (!o || o->kind != kind || o->state != OP_SENT || o->conn != c)
        return NULL;
    return o;
}

static void pool_message(void *ud, mesh_pool_conn *c, mesh_session *s, const mesh_envelope *e)
{
    mesh_node *n = ud;
    op *o;
    switch (e->body_case) {
    case MESHARA__WIRE__ENVELOPE__BODY_DATA:
        on_data(n, c, s, e->data);
        break;
    case MESHARA__WIRE__ENVELOPE__BODY_ACK:
        if ((o = answered_op(n, c, e->ack->msg_id, OP_SEND)) != NULL) {
            mesh_pool_used(c);
            op_fail(o, e->ack->status); /* the peer's status: MESH_OK = delivered */
        }
        break;
    case MESHARA__WIRE__ENVELOPE__BODY_QUERY:
        mesh_pool_touch(c, 0);
        answer_query(n, c, s, e->query);
        break;
    case MESHARA__WIRE__ENVELOPE__BODY_RESPONSE: {
        const Meshara__Wire__Response *r = e->response;
        if (!(o = answered_op(n, c, r->query_id, OP_QUERY)))
            break;
        mesh_pool_touch(c, 0);
        mesh_pool_used(c);
        mesh_peer_record recs[MESH_PEER_LIST_MAX];
        answer a = {.status = r->status,
                    .payload = r->payload.data,
                    .payload_len = r->payload.len,
                    .recs = recs,
                    .rtt = mesh_env_now(&n->env) - o->sent_at};
        a.nrecs = response_records(n, r, recs, MESH_PEER_LIST_MAX);
        op_finish(o, &a);
        break;
    }
    case MESHARA__WIRE__ENVELOPE__BODY_ANNOUNCE:
        on_record(n, c, e->announce->record);
        break;
    default:
        break;
    }
}

static void pool_session_up(void *ud, mesh_pool_conn *c, mesh_session *s)
{
    mesh_node *n = ud;
    send_announce(n, s);
    mesh_dht_seen(n->dht, mesh_pool_conn_id(c));
}

static void pool_up(void *ud, mesh_pool_conn *c)
{
    mesh_node *n = ud;
    notify(n, NOTE_PEER, mesh_pool_conn_key(c), 1, MESH_OK);
}

static void pool_session_closed(void *ud, mesh_pool_conn *c, mesh_session *s, int reason)
{
    mesh_node *n = ud;
    /* Ops waiting for an answer on s: again on the peer's other session, else failed. A
     * failure's callback may start or end other ops, so collect the ids first and look each
     * up again. */
    size_t k = 0;
    for (const op *o = n->ops; o; o = o->next)
        k += o->state == OP_SENT && o->sess == s;
    if (!k)
        return;
    uint64_t *ids = malloc(k * sizeof *ids);
    size_t m = 0;
    for (op *o = n->ops, *next; o; o = next) {
        next = o->next;
        if (o->state != OP_SENT || o->sess != s)
            continue;
        if (ids)
            ids[m++] = o->id;
        else /* no memory for the list: fail this one now, never leave it waiting */
            op_fail(o, MESH_ERR_CLOSED), next = n->ops;
    }
    for (size_t i = 0; i < m; i++) {
        op *o = op_find(n, ids[i]);
        if (!o || o->state != OP_SENT || o->sess != s)
            continue;
        if (mesh_pool_session(c) && op_transmit(o, c) == MESH_OK)
            continue;
        /* An orderly close (the peer evicted us to make room, or refused us when full) came
         * after everything the peer answered, so o was not handled: connecting again cannot
         * deliver it twice. The pool keeps c while the new attempt runs. */
        if (reason == MESH_OK && o->reconnects < MESH_NODE_RECONNECTS) {
            o->reconnects++;
            mesh_pool_release(o->conn);
            o->conn = NULL;
            o->sess = NULL;
            o->state = OP_NEW;
            if (op_go(o) == MESH_OK)
                continue;
        }
        op_fail(o, MESH_ERR_CLOSED);
    }
    free(ids);
}

static void pool_down(void *ud, mesh_pool_conn *c, int reason)
{
    mesh_node *n = ud;
    notify(n, NOTE_PEER, mesh_pool_conn_key(c), 0, reason);
}

static void pool_top_up(void *ud, size_t want)
{
    mesh_node *n = ud;
    /* Manual peers first (pinned: they are meant to stay connected), then DHT contacts
     * closest to us (the neighbourhood lookups need most). */
    for (size_t i = 0; i < n->cfg.n_manual; i++) {
        mesh_pool_conn *ready;
        (void)mesh_pool_get(n->pool, n->cfg.manual[i].key, &n->cfg.manual[i].addr, 1, MESH_POOL_PIN,
                            NULL, NULL, &ready);
    }
    mesh_peer_record recs[MESH_DHT_K];
    size_t k = mesh_dht_closest(n->dht, mesh_identity_node_id(n->id), recs, MESH_DHT_K);
    for (size_t i = 0; i < k && want > 0; i++) {
        if (mesh_pool_find(n->pool, recs[i].node_id) || !recs[i].naddrs)
            continue;
        mesh_pool_conn *ready;
        if (mesh_pool_get(n->pool, recs[i].pubkey, recs[i].addrs, recs[i].naddrs, 0, NULL, NULL,
                          &ready) == MESH_OK)
            want--;
    }
    if (!n->joined && n->boot && mesh_bootstrap_get_phase(n->boot) == MESH_BOOTSTRAP_DONE)
        (void)mesh_bootstrap_start(n->boot); /* the last join failed: try again */
}

static void server_session(mesh_server *srv, mesh_session *s, void *ud)
{
    (void)srv;
    mesh_node *n = ud;
    mesh_pool_adopt(n->pool, s);
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
    int err = query_start(n, key, addrs, naddrs, flags, type, payload,
                          payload ? MESH_NODE_ID_LEN : 0, timeout, relay_answer, rc);
    if (err != MESH_OK)
        free(rc);
    return err;
}

static int dht_find_node(void *ud, const mesh_peer_record *to,
                         const uint8_t target[MESH_NODE_ID_LEN], mesh_dht_reply_fn reply, void *ctx)
{
    mesh_node *n = ud;
    return relay_query(n, to->pubkey, to->addrs, to->naddrs, 0, MESH_QUERY_FIND_NODE, target,
                       n->cfg.query_timeout, reply, ctx);
}

static int dht_ping(void *ud, const mesh_peer_record *to, mesh_dht_reply_fn reply, void *ctx)
{
    mesh_node *n = ud;
    return relay_query(n, to->pubkey, to->addrs, to->naddrs, 0, MESH_QUERY_PING, NULL,
                       n->cfg.query_timeout, reply, ctx);
}

static int boot_get_peers(void *ud, const mesh_node_peer *peer, mesh_dht_reply_fn reply, void *ctx)
{
    mesh_node *n = ud;
    /* Manual peers are meant to stay connected: pinned, as at start. */
    int manual = peer >= n->cfg.manual && peer < n->cfg.manual + MESH_NODE_MAX_MANUAL;
    return relay_query(n, peer->key, &peer->addr, 1, manual ? MESH_POOL_PIN : 0,
                       MESH_QUERY_GET_PEERS, NULL, n->cfg.bootstrap_timeout, reply, ctx);
}

static void boot_joined(void *ud, int status)
{
    mesh_node *n = ud;
    if (status == MESH_OK && !n->joined) {
        n->joined = 1;
        n->join_reported = 1;
        notify(n, NOTE_JOINED, NULL, 0, MESH_OK);
    } else if (status != MESH_OK && !n->join_reported) {
        n->join_reported = 1;
        notify(n, NOTE_JOINED, NULL, 0, status);
    }
}

/* ---- mDNS --------------------------------------------------------------------------------- */

static void mdns_found(const mesh_mdns_found *f, int removed, void *ud)
{
    mesh_node *n = ud;
    if (removed || !f->txt || !f->addr)
        return;
    uint8_t key[MESH_PUBKEY_LEN];
    int have = 0;
    size_t plen = strlen(MESH_NODE_MDNS_TXT_KEY);
    for (const char *const *t = f->txt; *t && !have; t++)
        have = strncmp(*t, MESH_NODE_MDNS_TXT_KEY, plen) == 0 &&
               mesh_hex_decode(*t + plen, key, sizeof key) == MESH_OK;
    if (!have || memcmp(key, mesh_identity_pubkey(n->id), MESH_PUBKEY_LEN) == 0)
        return;
    n->st.mdns_found++;
    /* The TXT key is only a claim: the session pins it, so whoever answers must prove it. */
    mesh_pool_conn *ready;
    int rc = mesh_pool_get(n->pool, key, f->addr, 1, 0, NULL, NULL, &ready);
    if (rc != MESH_OK)
        mesh_log(&n->env, MESH_LOG_DEBUG, "node: mDNS peer %s not connected: %s", f->name,
                 mesh_errname(rc));
}

static void mdns_start(mesh_node *n)
{
    const mesh_mdns_ops *m = n->env.ops->mdns;
    if (!n->cfg.mdns)
        return;
    if (!m) {
        mesh_log(&n->env, MESH_LOG_WARN, "node: mDNS asked for but this driver has none");
        return;
    }
    char idhex[2 * MESH_NODE_ID_LEN + 1], pkhex[2 * MESH_PUBKEY_LEN + 1];
    char txt0[sizeof MESH_NODE_MDNS_TXT_KEY + 2 * MESH_PUBKEY_LEN];
    mesh_hex_encode(mesh_identity_node_id(n->id), MESH_NODE_ID_LEN, idhex);
    mesh_hex_encode(mesh_identity_pubkey(n->id), MESH_PUBKEY_LEN, pkhex);
    snprintf(n->mdns_name, sizeof n->mdns_name, "%s%.16s", MESH_NODE_MDNS_PREFIX, idhex);
    snprintf(txt0, sizeof txt0, "%s%s", MESH_NODE_MDNS_TXT_KEY, pkhex);
    const char *txt[] = {txt0, NULL};
    int rc = m->publish(n->env.obj, n->mdns_name, MESH_NODE_MDNS_TYPE, n->bound.port, txt);
    if (rc == MESH_OK)
        rc = m->browse(n->env.obj, MESH_NODE_MDNS_TYPE, mdns_found, n);
    if (rc != MESH_OK) {
        mesh_log(&n->env, MESH_LOG_WARN, "node: mDNS: %s", mesh_errname(rc));
        m->stop(n->env.obj);
        return;
    }
    n->mdns_on = 1;
}

/* ---- API ---------------------------------------------------------------------------------- */

static mesh_time or_default(mesh_time v, unsigned ms)
{
    return v ? v : (mesh_time)ms * MESH_NS_PER_MS;
}

int mesh_node_new(mesh_node **out, const mesh_env *env, const mesh_node_cfg *cfg,
                  const mesh_node_cbs *cbs, void *ud)
{
    if (!out || !env || !cfg || !cfg->identity || cfg->n_bootstrap > MESH_NODE_MAX_BOOTSTRAP ||
        cfg->n_manual > MESH_NODE_MAX_MANUAL || cfg->n_advertised > MESH_NODE_MAX_ADVERTISED ||
        (cfg->pool_max && cfg->pool_min > cfg->pool_max))
        return MESH_ERR_INVAL;
    mesh_node *n = calloc(1, sizeof *n);
    if (!n)
        return MESH_ERR_NOMEM;
    int rc = MESH_ERR_NOMEM;
    n->env = *env;
    n->cfg = *cfg;
    n->id = cfg->identity;
    if (cbs)
        n->cbs = *cbs;
    n->ud = ud;
    mesh_node_cfg *c = &n->cfg;
    c->send_timeout = or_default(c->send_timeout, MESH_NODE_DEFAULT_SEND_TIMEOUT_MS);
    c->query_timeout = or_default(c->query_timeout, MESH_NODE_DEFAULT_QUERY_TIMEOUT_MS);
    c->bootstrap_timeout = or_default(c->bootstrap_timeout, MESH_NODE_DEFAULT_BOOTSTRAP_TIMEOUT_MS);
    if (!c->record_seq)
        c->record_seq = 1;
    /* Strings are used only while making the TLS context, which copies them. */
    c->sni = NULL;
    c->alpn = NULL;

    const char *alpn[MESH_TLS_ALPN_MAX + 2];
    size_t na = 0;
    int has_h2 = 0;
    for (const char *const *a = cfg->alpn; a && *a; a++) {
        if (na >= MESH_TLS_ALPN_MAX)
            goto fail_inval;
        has_h2 |= strcmp(*a, MESH_SESSION_H2_ALPN) == 0;
        alpn[na++] = *a;
    }
    if (!na)
        alpn[na++] = MESH_TLS_DEFAULT_ALPN;
    if (cfg->http2 && !has_h2)
        alpn[na++] = MESH_SESSION_H2_ALPN;
    alpn[na] = NULL;
    mesh_tls_cfg tc = {.sni = cfg->sni, .alpn = alpn, .lib = cfg->tls_lib};
    if ((rc = mesh_tls_ctx_new(&n->tls, &n->env, n->id, &tc)) != MESH_OK)
        goto fail;

    mesh_session_cfg *s = &n->scfg;
    s->connect_timeout = cfg->connect_timeout;
    s->handshake_timeout = cfg->handshake_timeout;
    s->auth_timeout = cfg->auth_timeout;
    s->heartbeat_interval = cfg->heartbeat_interval;
    s->heartbeat_timeout = cfg->heartbeat_timeout;
    s->http2 = cfg->http2;
    mesh_pool_cfg pc = {.min = cfg->pool_min,
                        .max = cfg->pool_max,
                        .grace = cfg->grace,
                        .maintain_interval = cfg->maintain_interval,
                        .session = *s};
    static const mesh_pool_cbs PCBS = {.on_session_up = pool_session_up,
                                       .on_up = pool_up,
                                       .on_message = pool_message,
                                       .on_session_closed = pool_session_closed,
                                       .on_down = pool_down,
                                       .on_top_up = pool_top_up};
    if ((rc = mesh_pool_new(&n->pool, &n->env, n->tls, &pc, &PCBS, n)) != MESH_OK)
        goto fail_tls;
    n->note_timer = n->env.ops->timer_new(n->env.obj, notes_fired, n);
    if (!n->note_timer) {
        rc = MESH_ERR_NOMEM;
        goto fail_pool;
    }
    mesh_env_random(&n->env, &n->next_id, sizeof n->next_id);
    n->transport.find_node = dht_find_node;
    n->transport.ping = dht_ping;
    *out = n;
    return MESH_OK;

fail_inval:
    rc = MESH_ERR_INVAL;
    goto fail;
fail_pool:
    mesh_pool_free(n->pool);
fail_tls:
    mesh_tls_ctx_free(n->tls);
fail:
    free(n);
    return rc;
}

/* Our record's addresses: the advertised ones, else the bound address if it is specific. */
static size_t self_addrs(const mesh_node *n, mesh_addr *out)
{
    if (n->cfg.n_advertised) {
        memcpy(out, n->cfg.advertised, n->cfg.n_advertised * sizeof *out);
        return n->cfg.n_advertised;
    }
    if (n->cfg.advertise_none)
        return 0;
    static const uint8_t zero[16];
    size_t iplen = n->bound.family == MESH_AF_INET4 ? 4 : 16;
    if (n->bound.family == MESH_AF_NONE || memcmp(n->bound.ip, zero, iplen) == 0)
        return 0;
    out[0] = n->bound;
    return 1;
}

int mesh_node_start(mesh_node *n)
{
    if (!n)
        return MESH_ERR_INVAL;
    if (n->started)
        return MESH_ERR_STATE;
    mesh_server_cfg sc = {.session = n->scfg,
                          .max_handshakes = n->cfg.max_handshakes,
                          .max_per_source = n->cfg.max_handshakes_per_source,
                          .first_byte_timeout = n->cfg.first_byte_timeout};
    sc.session.http2 = 0; /* client-side only: a server follows the negotiated ALPN */
    mesh_server_cbs scb = {.on_session = server_session};
    int rc = mesh_server_new(&n->srv, &n->env, n->tls, &n->cfg.listen, &sc, &scb, n);
    if (rc != MESH_OK)
        return rc;
    if ((rc = mesh_server_addr(n->srv, &n->bound)) != MESH_OK)
        goto fail_srv;
    mesh_addr addrs[MESH_PEER_MAX_ADDRS];
    size_t na = self_addrs(n, addrs);
    if ((rc = mesh_peer_record_make(&n->self, n->id, addrs, na, n->cfg.record_seq)) != MESH_OK)
        goto fail_srv;
    if ((rc = mesh_dht_new(&n->dht, &n->env, &n->self, &n->transport, n)) == MESH_OK)
        mesh_dht_set_cache(n->dht, &n->vcache);
    if (rc != MESH_OK)
        goto fail_srv;
    static const mesh_bootstrap_ops BOPS = {boot_get_peers, boot_joined};
    if ((rc = mesh_bootstrap_new(&n->boot, &n->env, n->dht, n->cfg.bootstrap, n->cfg.n_bootstrap,
                                 n->cfg.manual, n->cfg.n_manual, &BOPS, n)) != MESH_OK)
        goto fail_dht;
    if ((rc = mesh_pool_start(n->pool)) != MESH_OK)
        goto fail_boot;
    n->started = 1;

    const mesh_peer_store *ps = &n->cfg.store;
    if (ps->ops && ps->ops->load) {
        int lrc = ps->ops->load(ps->obj, store_each, n);
        mesh_log(&n->env, lrc == MESH_OK ? MESH_LOG_INFO : MESH_LOG_WARN,
                 "node: peer store: %s, %llu records kept, %llu refused", mesh_errname(lrc),
                 (unsigned long long)n->st.records_accepted,
                 (unsigned long long)n->st.records_rejected);
    }
    for (size_t i = 0; i < n->cfg.n_manual; i++) {
        mesh_pool_conn *ready;
        int mrc = mesh_pool_get(n->pool, n->cfg.manual[i].key, &n->cfg.manual[i].addr, 1,
                                MESH_POOL_PIN, NULL, NULL, &ready);
        if (mrc != MESH_OK)
            mesh_log(&n->env, MESH_LOG_WARN, "node: manual peer %zu: %s", i, mesh_errname(mrc));
    }
    mdns_start(n);
    (void)mesh_bootstrap_start(n->boot);
    return MESH_OK;

fail_boot:
    mesh_bootstrap_free(n->boot);
    n->boot = NULL;
fail_dht:
    mesh_dht_free(n->dht);
    n->dht = NULL;
fail_srv:
    mesh_server_free(n->srv);
    n->srv = NULL;
    return rc;
}

void mesh_node_free(mesh_node *n)
{
    if (!n)
        return;
    if (n->mdns_on)
        n->env.ops->mdns->stop(n->env.obj);
    /* Ops first (their pool waiters and DHT replies become no-ops), then the DHT, whose
     * lookups end without callbacks, then what is left of the lookups. */
    while (n->ops) {
        op *o = n->ops;
        if (o->kind == OP_QUERY)
            free(o->actx); /* a relay_answer or public_answer context */
        op_free(o);
    }
    mesh_bootstrap_free(n->boot);
    mesh_dht_free(n->dht);
    while (n->lookups) {
        lookup *lk = n->lookups;
        n->lookups = lk->next;
        free(lk);
    }
    mesh_server_free(n->srv);
    mesh_pool_free(n->pool);
    if (n->note_timer)
        n->env.ops->timer_free(n->env.obj, n->note_timer);
    free(n->notes);
    mesh_tls_ctx_free(n->tls);
    free(n);
}

int mesh_node_close(mesh_node *n)
{
    if (!n || !n->started)
        return MESH_ERR_STATE;
    if (n->closing)
        return MESH_OK;
    n->closing = 1;
    mesh_server_free(n->srv); /* stop listening; handshakes in progress are aborted */
    n->srv = NULL;
    if (n->mdns_on) {
        n->env.ops->mdns->stop(n->env.obj);
        n->mdns_on = 0;
    }
    mesh_pool_close_all(n->pool);
    return MESH_OK;
}

static int check_peer_key(const mesh_node *n, const uint8_t *key)
{
    if (!key || memcmp(key, mesh_identity_pubkey(n->id), MESH_PUBKEY_LEN) == 0)
        return MESH_ERR_INVAL;
    if (!n->started || n->closing)
        return MESH_ERR_STATE;
    return MESH_OK;
}

int mesh_node_send(mesh_node *n, const uint8_t key[MESH_NODE_KEY_BYTES], const uint8_t *data,
                   size_t len, mesh_node_done_fn done, void *ud)
{
    if (!n || !done || (len && !data) || len > MESH_NODE_MAX_MESSAGE)
        return MESH_ERR_INVAL;
    int rc = check_peer_key(n, key);
    if (rc != MESH_OK)
        return rc;
    if (n->nops >= MESH_NODE_MAX_PENDING)
        return MESH_ERR_LIMIT;
    op *o = op_new(n, OP_SEND, key, n->cfg.send_timeout);
    if (!o)
        return MESH_ERR_NOMEM;
    o->done = done;
    o->done_ud = ud;
    o->data = malloc(len ? len : 1);
    if (!o->data) {
        op_free(o);
        return MESH_ERR_NOMEM;
    }
    if (len)
        memcpy(o->data, data, len);
    o->len = len;
    rc = op_go(o);
    if (rc != MESH_OK)
        op_free(o);
    return rc;
}

typedef struct public_query {
    mesh_node_answer_fn cb;
    void *ud;
} public_query;

static void public_answer(mesh_node *n, void *actx, const answer *a)
{
    public_query pq = *(public_query *)actx;
    free(actx);
    uint8_t keys[MESH_PEER_LIST_MAX][MESH_NODE_KEY_BYTES];
    for (size_t i = 0; i < a->nrecs; i++)
        memcpy(keys[i], a->recs[i].pubkey, MESH_NODE_KEY_BYTES);
    mesh_node_answer pa = {.status = a->status,
                           .payload = a->payload,
                           .payload_len = a->payload_len,
                           .npeers = a->nrecs,
                           .peer_keys = (const uint8_t(*)[MESH_NODE_KEY_BYTES])keys,
                           .rtt = a->rtt};
    pq.cb(n, &pa, pq.ud);
}

int mesh_node_query(mesh_node *n, const uint8_t key[MESH_NODE_KEY_BYTES], int type,
                    const uint8_t *payload, size_t len, mesh_time timeout, mesh_node_answer_fn cb,
                    void *ud)
{
    if (!n || !cb || (len && !payload) || len > MESH_NODE_MAX_QUERY_PAYLOAD)
        return MESH_ERR_INVAL;
    if (type != MESH_QUERY_PING && type != MESH_QUERY_GET_PEERS && type != MESH_QUERY_FIND_NODE)
        return MESH_ERR_INVAL;
    if (type == MESH_QUERY_FIND_NODE && len != MESH_NODE_ID_BYTES)
        return MESH_ERR_INVAL;
    int rc = check_peer_key(n, key);
    if (rc != MESH_OK)
        return rc;
    public_query *pq = malloc(sizeof *pq);
    if (!pq)
        return MESH_ERR_NOMEM;
    pq->cb = cb;
    pq->ud = ud;
    rc = query_start(n, key, NULL, 0, 0, type, payload, len,
                     timeout ? timeout : n->cfg.query_timeout, public_answer, pq);
    if (rc != MESH_OK)
        free(pq);
    return rc;
}

int mesh_node_lookup(mesh_node *n, const uint8_t node_id[MESH_NODE_ID_BYTES],
                     mesh_node_lookup_fn cb, void *ud)
{
    if (!n || !node_id || !cb)
        return MESH_ERR_INVAL;
    if (!n->started || n->closing)
        return MESH_ERR_STATE;
    return start_lookup(n, node_id, NULL, cb, ud);
}

int mesh_node_connect(mesh_node *n, const mesh_addr *addr, const uint8_t key[MESH_NODE_KEY_BYTES],
                      int pin)
{
    if (!n || !addr)
        return MESH_ERR_INVAL;
    int rc = check_peer_key(n, key);
    if (rc != MESH_OK)
        return rc;
    mesh_pool_conn *ready;
    return mesh_pool_get(n->pool, key, addr, 1, pin ? MESH_POOL_PIN : 0, NULL, NULL, &ready);
}

const uint8_t *mesh_node_key(const mesh_node *n)
{
    return mesh_identity_pubkey(n->id);
}

const uint8_t *mesh_node_id(const mesh_node *n)
{
    return mesh_identity_node_id(n->id);
}

int mesh_node_addr(const mesh_node *n, mesh_addr *out)
{
    if (!n->started || n->closing)
        return MESH_ERR_STATE;
    *out = n->bound;
    return MESH_OK;
}

void mesh_node_get_stats(const mesh_node *n, mesh_node_stats *out)
{
    *out = n->st;
    out->joined = n->joined;
    out->pending = n->nops;
    mesh_pool_stats ps;
    mesh_pool_get_stats(n->pool, &ps);
    out->peers = ps.peers;
    out->connected = ps.connected;
    out->sessions = ps.sessions;
    out->pinned = ps.pinned;
    out->connects = ps.connects;
    out->connect_failures = ps.connect_failures;
    out->accepted = ps.accepted;
    out->evicted = ps.evicted;
    out->refused_full = ps.refused_full;
    out->duplicates_closed = ps.duplicates_closed;
    out->key_mismatches = ps.key_mismatches;
    if (n->dht) {
        mesh_dht_stats ds = mesh_dht_get_stats(n->dht);
        out->dht_entries = ds.entries;
        out->lookups = ds.lookups;
        out->lookups_ok = ds.lookups_ok;
    }
}

int mesh_node_get_peer_stats(const mesh_node *n, const uint8_t key[MESH_NODE_KEY_BYTES],
                             mesh_node_peer_stats *out)
{
    uint8_t id[MESH_NODE_ID_LEN];
    mesh_node_id_of(key, id);
    mesh_pool_conn *c = mesh_pool_find(n->pool, id);
    if (!c)
        return MESH_ERR_NOT_FOUND;
    mesh_pool_conn_stats(c, out);
    return MESH_OK;
}

int mesh_node_get_bootstrap_stats(const mesh_node *n, size_t i, mesh_node_bootstrap_stats *out)
{
    if (!n->boot)
        return i < n->cfg.n_bootstrap ? (memset(out, 0, sizeof *out), MESH_OK) : MESH_ERR_NOT_FOUND;
    return mesh_bootstrap_seed_stats(n->boot, i, out);
}

mesh_pool *mesh_node_pool(const mesh_node *n)
{
    return n->pool;
}

mesh_dht *mesh_node_dht(const mesh_node *n)
{
    return n->dht;
}

const mesh_peer_record *mesh_node_record(const mesh_node *n)
{
    return &n->self;
}
