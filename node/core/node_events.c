/* node_events.c — what happens to the node (node_impl.h): sessions coming up and going down,
 * messages, queries to answer, peer records, mDNS finds, the port mapping's reports.
 *
 * Public callbacks (on_peer, on_joined, on_reach) are queued and delivered from a zero-delay timer,
 * because the pool may evict a peer inside a mesh_node_* call; completions of sends and
 * queries always come from env events already (answers, timers, waiter and lookup replies).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/node_impl.h"

/* ---- deferred notifications --------------------------------------------------------------- */

void mesh_node_notes_fired(mesh_timer *t, void *ud)
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
        else if (x.kind == NOTE_REACH && n->cbs.on_reach)
            n->cbs.on_reach(n, n->ud);
    }
    n->nnotes = 0;
    if (n->joined_spare) { /* a join's end that found no room in the queue */
        int status = n->joined_spare_status;
        n->joined_spare = 0;
        if (n->cbs.on_joined)
            n->cbs.on_joined(n, status, n->ud);
    }
}

void mesh_node_notify(mesh_node *n, int kind, const uint8_t *key, int connected, int status)
{
    if (n->nnotes == n->notes_cap) {
        size_t cap = n->notes_cap ? n->notes_cap * 2 : 16;
        note *a = realloc(n->notes, cap * sizeof *a);
        if (!a && kind == NOTE_JOINED) {
            /* on_joined is promised once per start: it never gets lost for want of memory */
            n->joined_spare = 1;
            n->joined_spare_status = status;
            n->env.ops->timer_set(n->env.obj, n->note_timer, mesh_env_now(&n->env));
            return;
        }
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

/* ---- records ------------------------------------------------------------------------------ */

/* A record as protobuf bytes (malloc'd). MESH_OK or MESH_ERR_NOMEM. */
static int record_pack(const mesh_peer_record *r, uint8_t **out, size_t *outlen)
{
    Meshara__Wire__PeerRecord pb;
    mesh_peer_pb_scratch sc;
    mesh_peer_record_to_pb(r, &pb, &sc);
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

void mesh_node_store_each(void *ud, const uint8_t *rec, size_t len)
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
    mesh_peer_pb_scratch sc;
    mesh_peer_record_to_pb(&n->self, &pb, &sc);
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
    mesh_peer_pb_scratch *text = NULL; /* what the answer's records borrow */
    Meshara__Wire__PeerList list = MESHARA__WIRE__PEER_LIST__INIT;
    size_t nrec = 0;
    switch (q->type) {
    case MESHARA__WIRE__QUERY_TYPE__QUERY_PING:
        r.payload = q->payload;
        break;
    case MESHARA__WIRE__QUERY_TYPE__QUERY_GET_PEERS:
        nrec = mesh_dht_closest(n->dht, mesh_pool_conn_id(c), recs, MESH_DHT_K);
        break;
    case MESHARA__WIRE__QUERY_TYPE__QUERY_DIAL_BACK:
        r.status = mesh_node_dialback_start(n, s, q);
        if (r.status == MESH_OK)
            return; /* answered when the dial ends */
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
        mesh_peer_record_to_pb(&recs[i], &pbs[i], &text[i]);
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
    op *o = mesh_node_op_find(n, id);
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
            mesh_node_op_fail(o, e->ack->status); /* the peer's status: MESH_OK = delivered */
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
        mesh_node_op_finish(o, &a);
        break;
    }
    case MESHARA__WIRE__ENVELOPE__BODY_ANNOUNCE:
        on_record(n, c, e->announce->record);
        break;
    case MESHARA__WIRE__ENVELOPE__BODY_RELAY:
        mesh_node_relay_input(n, c, s, e->relay);
        break;
    case MESHARA__WIRE__ENVELOPE__BODY_PUNCH:
        mesh_node_punch_input(n, c, s, e->punch);
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
    mesh_node_reach_session(n, s);
    mesh_node_punch_session_up(n, s);
}

static void pool_up(void *ud, mesh_pool_conn *c)
{
    mesh_node *n = ud;
    mesh_node_notify(n, NOTE_PEER, mesh_pool_conn_key(c), 1, MESH_OK);
}

static void pool_session_closed(void *ud, mesh_pool_conn *c, mesh_session *s, int reason)
{
    mesh_node *n = ud;
    mesh_node_relay_session_closed(n, s);
    mesh_node_punch_session_gone(n, s);
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
            mesh_node_op_fail(o, MESH_ERR_CLOSED), next = n->ops;
    }
    for (size_t i = 0; i < m; i++) {
        op *o = mesh_node_op_find(n, ids[i]);
        if (!o || o->state != OP_SENT || o->sess != s)
            continue;
        if (mesh_pool_session(c) && mesh_node_op_transmit(o, c) == MESH_OK)
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
            if (mesh_node_op_go(o) == MESH_OK)
                continue;
        }
        mesh_node_op_fail(o, MESH_ERR_CLOSED);
    }
    free(ids);
}

static void pool_down(void *ud, mesh_pool_conn *c, int reason)
{
    mesh_node *n = ud;
    mesh_node_notify(n, NOTE_PEER, mesh_pool_conn_key(c), 0, reason);
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

/* The peer's published host name: from its record in our DHT, or the record being dialled
 * (a lookup's candidate or hit), else (first contact) from the bootstrap, manual or relay
 * entry that names it. The SNI a web-profile client sends it (tls.h,
 * mesh_tls_set_server_name). */
static const char *pool_server_name(void *ud, const uint8_t key[MESH_PUBKEY_LEN])
{
    mesh_node *n = ud;
    uint8_t id[MESH_NODE_ID_LEN];
    mesh_node_id_of(key, id);
    const mesh_peer_record *r = n->dht ? mesh_dht_get(n->dht, id) : NULL;
    if (r && r->host_name[0])
        return r->host_name;
    r = n->dialling;
    if (r && r->host_name[0] && memcmp(r->pubkey, key, MESH_PUBKEY_LEN) == 0)
        return r->host_name;
    const mesh_node_peer *lists[3] = {n->cfg.bootstrap, n->cfg.manual, n->cfg.relays};
    size_t counts[3] = {n->cfg.n_bootstrap, n->cfg.n_manual, n->cfg.n_relays};
    for (int l = 0; l < 3; l++)
        for (size_t i = 0; i < counts[l]; i++)
            if (lists[l][i].host_name && memcmp(lists[l][i].key, key, MESH_PUBKEY_LEN) == 0)
                return lists[l][i].host_name;
    return NULL;
}

static void pool_session_orphaned(void *ud, mesh_session *s)
{
    mesh_node_relay_session_orphaned(ud, s);
    mesh_node_punch_session_gone(ud, s);
}

void mesh_node_server_session(mesh_server *srv, mesh_session *s, void *ud)
{
    (void)srv;
    mesh_node *n = ud;
    mesh_pool_adopt(n->pool, s);
}

int mesh_node_server_accept(mesh_server *srv, mesh_stream *st, const mesh_addr *peer, void *ud)
{
    (void)srv;
    return mesh_node_punch_accept(ud, st, peer);
}

const mesh_pool_cbs mesh_node_pool_cbs = {.on_session_up = pool_session_up,
                                          .on_up = pool_up,
                                          .on_message = pool_message,
                                          .on_session_closed = pool_session_closed,
                                          .on_session_orphaned = pool_session_orphaned,
                                          .on_down = pool_down,
                                          .on_top_up = pool_top_up,
                                          .server_name = pool_server_name};

void mesh_node_announce_closest(mesh_node *n)
{
    mesh_peer_record recs[MESH_DHT_K];
    size_t k = mesh_dht_closest(n->dht, mesh_identity_node_id(n->id), recs, MESH_DHT_K);
    for (size_t i = 0; i < k; i++) {
        mesh_pool_conn *c = mesh_pool_find(n->pool, recs[i].node_id);
        mesh_session *s = c ? mesh_pool_session(c) : NULL;
        if (s)
            send_announce(n, s);
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

void mesh_node_mdns_start(mesh_node *n)
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

/* ---- port mapping ------------------------------------------------------------------------- */

/* The portmap module's hook: a mapping is held at `external`, or none is (status says why).
 * The mapping is not advertised here: it makes the state MAPPED, whose candidate the
 * dial-back checks (node_reach.c); only a confirmed address goes into our record. */
static void portmap_report(mesh_portmap *pm, int status, const mesh_addr *external, void *ud)
{
    (void)pm;
    mesh_node *n = ud;
    char a[MESH_ADDR_STRLEN];
    if (status == MESH_OK)
        mesh_log(&n->env, MESH_LOG_INFO, "node: port mapping: external %s (not advertised yet)",
                 mesh_addr_format(external, a, sizeof a));
    else
        mesh_log(&n->env, MESH_LOG_INFO, "node: port mapping: none (%s)", mesh_errname(status));
    if (mesh_reach_portmap(n->reach, status, external))
        mesh_node_reach_changed(n, status == MESH_OK ? external->family : MESH_AF_INET4);
    else
        mesh_node_reach_portmap_failed(n); /* e.g. a refusal: no state change */
}

void mesh_node_portmap_start(mesh_node *n)
{
    if (n->cfg.no_port_mapping || !n->env.ops->portmap)
        return;
    int rc = mesh_portmap_new(&n->portmap, &n->env, NULL, portmap_report, n);
    if (rc == MESH_OK)
        rc = mesh_portmap_start(n->portmap, &n->bound);
    if (rc == MESH_OK)
        return;
    char a[MESH_ADDR_STRLEN];
    mesh_log(&n->env, rc == MESH_ERR_UNSUPPORTED ? MESH_LOG_DEBUG : MESH_LOG_WARN,
             "node: no port mapping for %s: %s", mesh_addr_format(&n->bound, a, sizeof a),
             mesh_errname(rc));
    mesh_portmap_free(n->portmap);
    n->portmap = NULL;
}
