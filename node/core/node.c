/* node.c — the Meshara node's API (meshara/meshara.h): modules glued into one object.
 *
 * mesh_node_new makes the TLS context and the pool; mesh_node_start the server (sessions in),
 * our signed record, the DHT (driven through a transport made of node queries, node_ops.c)
 * and the bootstrap manager, then loads the peer store and starts the join. What happens
 * afterwards is in node_events.c; the operations in flight are in node_ops.c.
 */
#include <stdlib.h>
#include <string.h>

#include "core/node_impl.h"

_Static_assert((int)MESH_NODE_KEY_BYTES == (int)MESH_PUBKEY_LEN, "key size");
_Static_assert((int)MESH_NODE_ID_BYTES == (int)MESH_NODE_ID_LEN, "id size");
_Static_assert((int)MESH_NODE_SEED_BYTES == (int)MESH_SEED_LEN, "seed size");
_Static_assert((int)MESH_NODE_KEY_HEX_LEN == (int)MESH_PUBKEY_HEX_LEN, "key hex size");
_Static_assert((int)MESH_NODE_MAX_ALPN == (int)MESH_TLS_ALPN_MAX &&
                   (int)MESH_NODE_MAX_ALPN_NAME == (int)MESH_TLS_ALPN_NAME_MAX &&
                   (int)MESH_NODE_MAX_SNI == (int)MESH_TLS_SNI_MAX,
               "TLS limits");
_Static_assert((int)MESH_NODE_MAX_HANDSHAKES == (int)MESH_SERVER_MAX_HANDSHAKES, "handshakes");
_Static_assert((int)MESH_NODE_MAX_POOL == (int)MESH_POOL_MAX_PEERS, "pool bound");
_Static_assert((int)MESH_NODE_MAX_ADVERTISED <= (int)MESH_PEER_MAX_ADDRS, "advertised fit");
_Static_assert((int)MESH_NODE_PORTMAP_OFF == (int)MESH_PORTMAP_OFF &&
                   (int)MESH_NODE_PORTMAP_REQUESTING == (int)MESH_PORTMAP_REQUESTING &&
                   (int)MESH_NODE_PORTMAP_MAPPED == (int)MESH_PORTMAP_MAPPED &&
                   (int)MESH_NODE_PORTMAP_FAILED == (int)MESH_PORTMAP_FAILED,
               "port mapping states");
_Static_assert((int)MESH_QUERY_PING == (int)MESHARA__WIRE__QUERY_TYPE__QUERY_PING &&
                   (int)MESH_QUERY_GET_PEERS == (int)MESHARA__WIRE__QUERY_TYPE__QUERY_GET_PEERS &&
                   (int)MESH_QUERY_FIND_NODE == (int)MESHARA__WIRE__QUERY_TYPE__QUERY_FIND_NODE &&
                   (int)MESH_QUERY_DIAL_BACK == (int)MESHARA__WIRE__QUERY_TYPE__QUERY_DIAL_BACK,
               "query types match the schema");

/* ---- API ---------------------------------------------------------------------------------- */

static mesh_time or_default(mesh_time v, unsigned ms)
{
    return v ? v : (mesh_time)ms * MESH_NS_PER_MS;
}

/* n's TLS context from cfg's SNI and ALPN list (the default list when none; the HTTP/2 name
 * added when cfg->http2 asks for it). MESH_OK; MESH_ERR_INVAL (too many ALPN names); what
 * mesh_tls_ctx_new returns. */
static int tls_new(mesh_node *n, const mesh_node_cfg *cfg)
{
    const char *alpn[MESH_TLS_ALPN_MAX + 2];
    size_t na = 0;
    int has_h2 = 0;
    for (const char *const *a = cfg->alpn; a && *a; a++) {
        if (na >= MESH_TLS_ALPN_MAX)
            return MESH_ERR_INVAL;
        has_h2 |= strcmp(*a, MESH_SESSION_H2_ALPN) == 0;
        alpn[na++] = *a;
    }
    if (!na)
        alpn[na++] = MESH_TLS_DEFAULT_ALPN;
    if (cfg->http2 && !has_h2)
        alpn[na++] = MESH_SESSION_H2_ALPN;
    alpn[na] = NULL;
    mesh_tls_cfg tc = {.profile = cfg->profile,
                       .sni = cfg->sni,
                       .host_name = cfg->host_name,
                       .alpn = alpn,
                       .lib = cfg->tls_lib,
                       .cert_pem = cfg->tls_cert_pem,
                       .cert_pem_len = cfg->tls_cert_pem_len,
                       .key_pem = cfg->tls_key_pem,
                       .key_pem_len = cfg->tls_key_pem_len,
                       .cert_type = cfg->tls_cert_type,
                       .unix_epoch = cfg->unix_epoch};
    return mesh_tls_ctx_new(&n->tls, &n->env, n->id, &tc);
}

/* A bad host name among peers[0..n). */
static int peer_names_bad(const mesh_node_peer *peers, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (peers[i].host_name && mesh_host_name_check(peers[i].host_name) != MESH_OK)
            return 1;
    return 0;
}

/* The bootstrap, manual and relay peers' host names copied into one block n owns (none:
 * NULL). */
static int peer_names_copy(mesh_node *n)
{
    mesh_node_peer *lists[3] = {n->cfg.bootstrap, n->cfg.manual, n->cfg.relays};
    size_t counts[3] = {n->cfg.n_bootstrap, n->cfg.n_manual, n->cfg.n_relays}, total = 0;
    for (int l = 0; l < 3; l++)
        for (size_t i = 0; i < counts[l]; i++)
            total += lists[l][i].host_name ? strlen(lists[l][i].host_name) + 1 : 0;
    if (!total)
        return MESH_OK;
    char *p = n->peer_names = malloc(total);
    if (!p)
        return MESH_ERR_NOMEM;
    for (int l = 0; l < 3; l++)
        for (size_t i = 0; i < counts[l]; i++) {
            if (!lists[l][i].host_name)
                continue;
            size_t len = strlen(lists[l][i].host_name) + 1;
            memcpy(p, lists[l][i].host_name, len);
            lists[l][i].host_name = p;
            p += len;
        }
    return MESH_OK;
}

int mesh_node_new(mesh_node **out, const mesh_env *env, const mesh_node_cfg *cfg,
                  const mesh_node_cbs *cbs, void *ud)
{
    if (!out || !env || !cfg || !cfg->identity || cfg->n_bootstrap > MESH_NODE_MAX_BOOTSTRAP ||
        cfg->n_manual > MESH_NODE_MAX_MANUAL || cfg->n_advertised > MESH_NODE_MAX_ADVERTISED ||
        cfg->n_relays > MESH_NODE_MAX_RELAYS || cfg->n_stun > MESH_NODE_MAX_STUN ||
        (cfg->pool_max && cfg->pool_min > cfg->pool_max) ||
        (cfg->host_name && mesh_host_name_check(cfg->host_name) != MESH_OK) ||
        peer_names_bad(cfg->bootstrap, cfg->n_bootstrap) ||
        peer_names_bad(cfg->manual, cfg->n_manual) || peer_names_bad(cfg->relays, cfg->n_relays))
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
    if (cfg->host_name)
        strcpy(n->host_name, cfg->host_name); /* checked: at most MESH_HOST_NAME_MAX bytes */
    /* Strings are used only while making the TLS context, which copies them. */
    c->host_name = NULL;
    c->sni = NULL;
    c->alpn = NULL;
    c->tls_cert_pem = c->tls_key_pem = NULL;

    if ((rc = peer_names_copy(n)) != MESH_OK || (rc = tls_new(n, cfg)) != MESH_OK)
        goto fail;

    mesh_session_cfg *s = &n->scfg;
    s->connect_timeout = cfg->connect_timeout;
    s->handshake_timeout = cfg->handshake_timeout;
    s->auth_timeout = cfg->auth_timeout;
    s->heartbeat_interval = cfg->heartbeat_interval;
    s->heartbeat_timeout = cfg->heartbeat_timeout;
    s->http2 = cfg->http2;
    s->web_upstream = cfg->web_upstream;
    s->web_upstream_h2 = cfg->web_upstream_h2;
    mesh_pool_cfg pc = {.min = cfg->pool_min,
                        .max = cfg->pool_max,
                        .grace = cfg->grace,
                        .maintain_interval = cfg->maintain_interval,
                        .session = *s};
    if ((rc = mesh_pool_new(&n->pool, &n->env, n->tls, &pc, &mesh_node_pool_cbs, n)) != MESH_OK)
        goto fail_tls;
    n->note_timer = n->env.ops->timer_new(n->env.obj, mesh_node_notes_fired, n);
    if (!n->note_timer) {
        rc = MESH_ERR_NOMEM;
        goto fail_pool;
    }
    if ((rc = mesh_reach_new(&n->reach, NULL)) != MESH_OK)
        goto fail_timer;
    if ((rc = mesh_node_turn_new(n, cfg)) != MESH_OK)
        goto fail_reach;
    c->turn_user = c->turn_password = NULL; /* copied by node_turn */
    if ((rc = mesh_node_stun_new(n, cfg)) != MESH_OK)
        goto fail_turn;
    mesh_env_random(&n->env, &n->next_id, sizeof n->next_id);
    *out = n;
    return MESH_OK;

fail_turn:
    mesh_node_turn_free(n);
fail_reach:
    mesh_reach_free(n->reach);
fail_timer:
    n->env.ops->timer_free(n->env.obj, n->note_timer);
fail_pool:
    mesh_pool_free(n->pool);
fail_tls:
    mesh_tls_ctx_free(n->tls);
fail:
    free(n->peer_names);
    free(n);
    return rc;
}

size_t mesh_node_self_addrs(const mesh_node *n, mesh_addr *out)
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
    mesh_server_cbs scb = {.on_session = mesh_node_server_session,
                           .on_accept = mesh_node_server_accept};
    int rc = mesh_server_new(&n->srv, &n->env, n->tls, &n->cfg.listen, &sc, &scb, n);
    if (rc != MESH_OK)
        return rc;
    if ((rc = mesh_server_addr(n->srv, &n->bound)) != MESH_OK)
        goto fail_srv;
    mesh_reach_set_port(n->reach, n->bound.port);
    mesh_pool_set_local(n->pool, &n->bound); /* reservations' links leave from it (punching) */
    mesh_addr addrs[MESH_PEER_MAX_ADDRS];
    size_t na = mesh_node_self_addrs(n, addrs);
    if ((rc = mesh_peer_record_make_named(&n->self, n->id, addrs, na, NULL, 0, n->host_name,
                                          n->cfg.record_seq)) != MESH_OK)
        goto fail_srv;
    if ((rc = mesh_dht_new(&n->dht, &n->env, &n->self, &mesh_node_dht_transport, n)) == MESH_OK)
        mesh_dht_set_cache(n->dht, &n->vcache);
    if (rc != MESH_OK)
        goto fail_srv;
    if ((rc = mesh_bootstrap_new(&n->boot, &n->env, n->dht, n->cfg.bootstrap, n->cfg.n_bootstrap,
                                 n->cfg.manual, n->cfg.n_manual, &mesh_node_bootstrap_ops, n)) !=
        MESH_OK)
        goto fail_dht;
    if ((rc = mesh_node_relay_start(n)) != MESH_OK || (rc = mesh_node_punch_start(n)) != MESH_OK)
        goto fail_relay;
    if ((rc = mesh_pool_start(n->pool)) != MESH_OK)
        goto fail_relay;
    n->started = 1;

    const mesh_peer_store *ps = &n->cfg.store;
    if (ps->ops && ps->ops->load) {
        int lrc = ps->ops->load(ps->obj, mesh_node_store_each, n);
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
    mesh_node_mdns_start(n);
    mesh_node_portmap_start(n);
    mesh_node_turn_start(n);
    mesh_node_stun_start(n);
    (void)mesh_bootstrap_start(n->boot);
    return MESH_OK;

fail_relay:
    mesh_node_relay_free(n);
    n->rl.freeing = 0;
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
    mesh_portmap_free(n->portmap); /* releases the mapping if close did not */
    mesh_node_stun_free(n);
    /* Ops first (their pool waiters and DHT replies become no-ops), then the DHT, whose
     * lookups end without callbacks, then what is left of the lookups. */
    while (n->ops) {
        op *o = n->ops;
        if (o->kind == OP_QUERY)
            free(o->actx); /* a relay_answer or public_answer context */
        mesh_node_op_free(o);
    }
    mesh_bootstrap_free(n->boot);
    mesh_dht_free(n->dht);
    while (n->lookups) {
        lookup *lk = n->lookups;
        n->lookups = lk->next;
        free(lk);
    }
    mesh_server_free(n->srv);
    mesh_node_punch_free(n); /* before the pool: a punch borrows its relayed session */
    mesh_node_relay_free_pending(n);
    mesh_pool_free(n->pool);
    mesh_node_turn_free(n); /* after the pool: its sessions borrow the TURN overlay env */
    mesh_node_relay_free(n);
    if (n->note_timer)
        n->env.ops->timer_free(n->env.obj, n->note_timer);
    free(n->notes);
    mesh_node_reach_free(n);
    mesh_tls_ctx_free(n->tls);
    free(n->peer_names);
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
    mesh_portmap_stop(n->portmap); /* the gateway drops the mapping (in the background) */
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
    op *o = mesh_node_op_new(n, OP_SEND, key, n->cfg.send_timeout);
    if (!o)
        return MESH_ERR_NOMEM;
    o->done = done;
    o->done_ud = ud;
    o->data = malloc(len ? len : 1);
    if (!o->data) {
        mesh_node_op_free(o);
        return MESH_ERR_NOMEM;
    }
    if (len)
        memcpy(o->data, data, len);
    o->len = len;
    rc = mesh_node_op_go(o);
    if (rc != MESH_OK)
        mesh_node_op_free(o);
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
    rc = mesh_node_query_start(n, key, NULL, 0, 0, type, payload, len,
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
    return mesh_node_lookup_start(n, node_id, NULL, cb, ud);
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
    if (n->portmap) {
        mesh_portmap_stats pst;
        mesh_portmap_get_stats(n->portmap, &pst);
        out->portmap_state = pst.state;
        out->portmap_external = pst.external;
        out->portmap_error = pst.last_error;
        out->portmap_renewals = pst.renewals;
        out->portmap_failures = pst.failures;
    }
    mesh_reach_get(n->reach, MESH_AF_INET4, &out->reach4);
    mesh_reach_get(n->reach, MESH_AF_INET6, &out->reach6);
    out->dialback_confirmed = n->db.confirmed;
    out->dialback_asked = n->db.total_asked;
    out->dialback_ok = n->db.total_ok;
    out->dialback_dials = n->db.dials;
    out->dialback_refused = n->db.refused;
    for (size_t i = 0; i < n->cfg.n_relays; i++)
        out->relays_reserved += n->rl.slots[i].state == 3; /* RS_RESERVED */
    out->relay_dials = n->rl.dials_total;
    out->relay_dial_failures = n->rl.dial_failures;
    out->relayed_sessions = n->rl.nrelayed;
    out->punches = n->pn.started;
    out->sessions_punched = n->pn.ok;
    out->punch_failures = n->pn.failed;
    out->punch_error = n->pn.last_err;
    if (n->rl.svc) {
        mesh_relay_stats rs;
        mesh_relay_service_stats(n->rl.svc, &rs);
        out->relay_circuits_served = rs.circuits_opened;
        out->relay_refused = rs.refused;
    }
    out->dialback_limited = n->db.limited;
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
    out->path = mesh_node_session_path(n, mesh_pool_session(c));
    return MESH_OK;
}

int mesh_node_get_bootstrap_stats(const mesh_node *n, size_t i, mesh_node_bootstrap_stats *out)
{
    if (!n->boot)
        return i < n->cfg.n_bootstrap ? (memset(out, 0, sizeof *out), MESH_OK) : MESH_ERR_NOT_FOUND;
    return mesh_bootstrap_seed_stats(n->boot, i, out);
}

mesh_dht *mesh_node_dht(const mesh_node *n)
{
    return n->dht;
}

const mesh_peer_record *mesh_node_record(const mesh_node *n)
{
    return &n->self;
}

const char *mesh_node_path_name(int path)
{
    static const char *const names[] = {"direct", "mapped", "punched", "relayed", "turn"};
    return path >= 0 && path < (int)(sizeof names / sizeof names[0]) ? names[path] : "?";
}
