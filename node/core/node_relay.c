/* node_relay.c — the node's relays (node_impl.h, docs/nat.md): the relay service for others,
 * reservations on configured relays, and sessions through circuits, both ways.
 *
 * Service. With cfg.relay_service the node runs core/relay's service with its default limits
 * on the sessions it already has: every Relay body from a peer goes to it.
 *
 * Reservations. A node with cfg.relays reserves on up to RL_WANT of them, in the configured
 * order, once its IPv4 reachability is neither public nor mapped with a confirmed address:
 * at once when the state says NAT, else after RL_WAIT_UNKNOWN (the dial-back checks had their
 * time). The session to a relay is pinned in the pool and leaves from our listening port (its
hello tells that port's NAT mapping, which hole punching offers: node_punch.c). A reservation is
renewed at half its
 * granted ttl; a refusal or a lost session frees the slot and the next relay is tried, the
 * failed one again only after its backoff (RL_BACKOFF doubling to RL_BACKOFF_MAX): bounded
 * attempts, no storm. Held reservations make the state RELAYED and go into our signed record
 * (PeerRecord.relays). Once a dial-back confirms an address of ours they are released at the
 * next tick (release_held): out of the record, not renewed; open circuits go on.
 *
 * Circuits. A circuit arriving through a relay we reserved on is accepted as a server session
 * (mesh_session_accept on the circuit's virtual stream) and joins the pool once its hello
 * verified, like any inbound session. To reach a peer whose record has relays and no address
 * that worked, the node opens a session to one of its relays (the pool's, unpinned), a
 * circuit to the peer, and a client session inside it pinned to the peer's key
 * (mesh_session_connect_stream); a refused circuit or a failed handshake tries the record's
 * next relay, and the ops waiting for the peer fail with the last error after the last one.
 * The session inside is end-to-end TLS: a relay that alters bytes fails it with MESH_ERR_TLS.
 *
 * Link ambiguity: one session may carry both roles (we serve a peer that also relays for us).
 * A Relay body goes to our end for that session if we have one (we use the peer as a relay),
 * and to the service when the end says the kind is not one a relay sends.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/node_impl.h"

#define RL_TICK (1ULL * MESH_NS_PER_S)
#define RL_WAIT_UNKNOWN (15ULL * MESH_NS_PER_S)
#define RL_BACKOFF (10ULL * MESH_NS_PER_S)
#define RL_BACKOFF_MAX (10ULL * 60 * MESH_NS_PER_S)
#define RL_TTL_S 600 /* asked; renewed at half what is granted */
#define RL_WANT 2    /* reservations held at once */

enum rl_state { RS_IDLE = 0, RS_LINKING, RS_RESERVING, RS_RESERVED };

struct rl_dial {
    mesh_node *n;
    mesh_peer_record rec; /* the target's */
    size_t next;          /* the next relay of rec to try */
    int last;             /* the last failure */
    int idx;              /* in n->rl.dials */
    mesh_session *s;      /* the session inside the circuit, handshaking */
    int started;
};

static void rl_arm(mesh_node *n);
static void rl_kick(mesh_timer *t, void *ud);

/* ---- links: sessions to relays and the ends on them ---------------------------------------- */

static int rl_send(void *glue, void *link, const mesh_relay_msg *r)
{
    mesh_node *n = glue;
    if (n->rl.freeing)
        return MESH_ERR_CLOSED;
    mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
    e.body_case = MESHARA__WIRE__ENVELOPE__BODY_RELAY;
    e.relay = (Meshara__Wire__Relay *)r;
    return mesh_session_send(link, &e);
}

static rl_end *end_of(mesh_node *n, const mesh_session *s)
{
    for (int i = 0; i < RL_ENDS; i++)
        if (n->rl.ends[i].link == s && !n->rl.ends[i].dead)
            return &n->rl.ends[i];
    return NULL;
}

static void on_reserved(mesh_relay_end *e, int status, uint32_t ttl_s, void *ud);
static void on_incoming(mesh_relay_end *e, mesh_stream *s, const uint8_t *from_key, void *ud);
static const mesh_relay_end_cbs END_CBS = {.on_reserved = on_reserved, .on_incoming = on_incoming};

/* The end on s, made if there is none. NULL: no room or memory. */
static rl_end *end_for(mesh_node *n, mesh_session *s)
{
    rl_end *re = end_of(n, s);
    if (re)
        return re;
    for (int i = 0; i < RL_ENDS; i++) {
        re = &n->rl.ends[i];
        if (re->link)
            continue;
        if (mesh_relay_end_new(&re->end, &n->env, rl_send, n, s, &END_CBS, n) != MESH_OK)
            return NULL;
        re->link = s;
        re->env = mesh_relay_end_env(re->end);
        re->slot = -1;
        re->dead = 0;
        rl_arm(n);
        return re;
    }
    return NULL;
}

static rl_end *end_by_end(mesh_node *n, const mesh_relay_end *e)
{
    for (int i = 0; i < RL_ENDS; i++)
        if (n->rl.ends[i].end == e)
            return &n->rl.ends[i];
    return NULL;
}

/* ---- reservations -------------------------------------------------------------------------- */

static int rl_held(const mesh_node *n)
{
    int k = 0;
    for (size_t i = 0; i < n->cfg.n_relays; i++)
        k += n->rl.slots[i].state == RS_RESERVED;
    return k;
}

size_t mesh_node_relay_refs(const mesh_node *n, mesh_peer_relay *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n->cfg.n_relays && k < MESH_PEER_MAX_RELAYS; i++) {
        if (n->rl.slots[i].state != RS_RESERVED)
            continue;
        out[k].addr = n->cfg.relays[i].addr;
        memcpy(out[k].key, n->cfg.relays[i].key, MESH_PUBKEY_LEN);
        k++;
    }
    return k;
}

/* The reservations held changed: reach state and record follow. */
static void held_changed(mesh_node *n)
{
    if (mesh_reach_relayed(n->reach, MESH_AF_INET4, rl_held(n) > 0) == 1)
        mesh_node_reach_changed(n, MESH_AF_INET4);
    mesh_node_record_update(n);
}

/* Slot i failed (refused, lost, unreachable): free it, back off, let the next relay try. */
static void slot_fail(mesh_node *n, int i, int status)
{
    rl_slot *sl = &n->rl.slots[i];
    int was = sl->state == RS_RESERVED;
    sl->state = RS_IDLE;
    sl->backoff = sl->backoff ? sl->backoff * 2 : RL_BACKOFF;
    if (sl->backoff > RL_BACKOFF_MAX)
        sl->backoff = RL_BACKOFF_MAX;
    sl->next_try = mesh_env_now(&n->env) + sl->backoff;
    for (int k = 0; k < RL_ENDS; k++)
        if (n->rl.ends[k].slot == i)
            n->rl.ends[k].slot = -1;
    char a[MESH_ADDR_STRLEN];
    mesh_addr_format(&n->cfg.relays[i].addr, a, sizeof a);
    mesh_log(&n->env, MESH_LOG_INFO, "node: relay %s: %s: %s, next try in %llu s", a,
             was ? "reservation lost" : "no reservation", mesh_errname(status),
             (unsigned long long)(sl->backoff / MESH_NS_PER_S));
    if (was)
        held_changed(n);
    rl_arm(n);
}

static void on_reserved(mesh_relay_end *e, int status, uint32_t ttl_s, void *ud)
{
    mesh_node *n = ud;
    rl_end *re = end_by_end(n, e);
    if (!re || re->slot < 0)
        return; /* a slot given up meanwhile */
    int i = re->slot;
    rl_slot *sl = &n->rl.slots[i];
    if (status != MESH_OK || ttl_s == 0) {
        slot_fail(n, i, status != MESH_OK ? status : MESH_ERR_PROTOCOL);
        return;
    }
    int was = sl->state == RS_RESERVED;
    sl->state = RS_RESERVED;
    sl->backoff = 0;
    sl->renew_at = mesh_env_now(&n->env) + (mesh_time)ttl_s * MESH_NS_PER_S / 2;
    if (!was) {
        char a[MESH_ADDR_STRLEN];
        mesh_addr_format(&n->cfg.relays[i].addr, a, sizeof a);
        mesh_log(&n->env, MESH_LOG_INFO, "node: relay %s: reserved for %u s, advertised", a,
                 (unsigned)ttl_s);
        held_changed(n);
    }
}

static void slot_link_ready(void *ctx, int status, mesh_pool_conn *c)
{
    rl_slot *sl = ctx;
    mesh_node *n = sl->n;
    int i = (int)(sl - n->rl.slots);
    if (sl->state != RS_LINKING)
        return;
    rl_end *re = status == MESH_OK ? end_for(n, mesh_pool_session(c)) : NULL;
    if (!re) {
        slot_fail(n, i, status != MESH_OK ? status : MESH_ERR_LIMIT);
        return;
    }
    re->slot = i;
    sl->state = RS_RESERVING;
    int rc = mesh_relay_end_reserve(re->end, RL_TTL_S);
    if (rc != MESH_OK)
        slot_fail(n, i, rc);
}

/* Whether we should hold reservations now. */
static int want_relays(const mesh_node *n)
{
    if (!n->cfg.n_relays || n->closing || !n->started)
        return 0;
    mesh_node_reach v;
    mesh_reach_get(n->reach, MESH_AF_INET4, &v);
    if (n->db.confirmed.family != MESH_AF_NONE)
        return 0; /* peers reached us at an address: no relay needed */
    if (v.state == MESH_NODE_REACH_NAT || v.state == MESH_NODE_REACH_RELAYED)
        return 1;
    return mesh_env_now(&n->env) - n->rl.started_at >= RL_WAIT_UNKNOWN;
}

/* Peers confirmed an address of ours by dial-back: the reservations are not needed any more.
 * Each slot is dropped here (no renewal; a request in flight is forgotten), and the relays
 * leave our record (seq + 1). The protocol has no release message, so the relay's side
 * lapses at the end of the ttl it granted; a circuit it still brings meanwhile is accepted.
 * Circuits already open go on: their link session and end stay until they end. */
static void release_held(mesh_node *n)
{
    int held = rl_held(n);
    char a[MESH_ADDR_STRLEN], c[MESH_ADDR_STRLEN];
    mesh_addr_format(&n->db.confirmed, c, sizeof c);
    for (size_t i = 0; i < n->cfg.n_relays; i++) {
        rl_slot *sl = &n->rl.slots[i];
        if (sl->state == RS_IDLE)
            continue;
        if (sl->state == RS_RESERVED)
            mesh_log(&n->env, MESH_LOG_INFO, "node: relay %s: reservation released (reached at %s)",
                     mesh_addr_format(&n->cfg.relays[i].addr, a, sizeof a), c);
        if (sl->state == RS_LINKING)
            mesh_pool_cancel(n->pool, sl);
        sl->state = RS_IDLE;
        sl->backoff = sl->next_try = 0;
        for (int k = 0; k < RL_ENDS; k++)
            if (n->rl.ends[k].slot == (int)i)
                n->rl.ends[k].slot = -1; /* its answer, if one is due, finds no slot */
    }
    if (held)
        held_changed(n);
}

static void reserve_more(mesh_node *n)
{
    mesh_time now = mesh_env_now(&n->env);
    int busy = 0;
    for (size_t i = 0; i < n->cfg.n_relays; i++)
        busy += n->rl.slots[i].state != RS_IDLE;
    for (size_t i = 0; i < n->cfg.n_relays && busy < RL_WANT; i++) {
        rl_slot *sl = &n->rl.slots[i];
        if (sl->state != RS_IDLE || now < sl->next_try)
            continue;
        sl->state = RS_LINKING;
        busy++;
        mesh_pool_conn *ready = NULL;
        int rc = mesh_pool_get(n->pool, n->cfg.relays[i].key, &n->cfg.relays[i].addr, 1,
                               MESH_POOL_PIN | MESH_POOL_FROM_LOCAL, slot_link_ready, sl, &ready);
        if (rc != MESH_OK)
            slot_fail(n, (int)i, rc), busy--;
        else if (ready)
            slot_link_ready(sl, MESH_OK, ready);
    }
    for (size_t i = 0; i < n->cfg.n_relays; i++) {
        rl_slot *sl = &n->rl.slots[i];
        rl_end *re = NULL;
        for (int k = 0; k < RL_ENDS && !re; k++)
            if (n->rl.ends[k].slot == (int)i && !n->rl.ends[k].dead)
                re = &n->rl.ends[k];
        if (sl->state == RS_RESERVED && re && now >= sl->renew_at) {
            sl->renew_at = now + RL_BACKOFF; /* the answer sets the next one */
            int rc = mesh_relay_end_reserve(re->end, RL_TTL_S);
            if (rc != MESH_OK)
                slot_fail(n, (int)i, rc);
        }
    }
}

/* ---- the timer ----------------------------------------------------------------------------- */

static void rl_tick(mesh_timer *t, void *ud)
{
    (void)t;
    mesh_node *n = ud;
    for (int i = 0; i < RL_ENDS; i++) {
        rl_end *re = &n->rl.ends[i];
        if (!re->link)
            continue;
        if (re->dead && mesh_relay_end_circuits(re->end) == 0) {
            mesh_relay_end_free(re->end);
            memset(re, 0, sizeof *re);
            re->slot = -1;
        } else if (!re->dead) {
            mesh_relay_end_writable(re->end); /* the pool does not pass on_writable on */
        }
    }
    if (want_relays(n))
        reserve_more(n);
    else if (n->db.confirmed.family != MESH_AF_NONE)
        release_held(n);
    rl_arm(n);
}

/* Keep the tick going while there is anything to do. */
static void rl_arm(mesh_node *n)
{
    if (!n->rl.timer || n->rl.freeing)
        return;
    int work = n->cfg.n_relays && !n->closing;
    for (int i = 0; i < RL_ENDS && !work; i++)
        work = n->rl.ends[i].link != NULL;
    if (work)
        n->env.ops->timer_set(n->env.obj, n->rl.timer, mesh_env_now(&n->env) + RL_TICK);
}

int mesh_node_relay_start(mesh_node *n)
{
    for (int i = 0; i < RL_ENDS; i++)
        n->rl.ends[i].slot = -1;
    for (size_t i = 0; i < MESH_NODE_MAX_RELAYS; i++)
        n->rl.slots[i].n = n;
    n->rl.started_at = mesh_env_now(&n->env);
    n->rl.timer = n->env.ops->timer_new(n->env.obj, rl_tick, n);
    n->rl.kick = n->env.ops->timer_new(n->env.obj, rl_kick, n);
    if (!n->rl.timer || !n->rl.kick)
        return MESH_ERR_NOMEM;
    if (n->cfg.relay_service) {
        int rc = mesh_relay_service_new(&n->rl.svc, &n->env, NULL, rl_send, n);
        if (rc != MESH_OK)
            return rc;
        mesh_log(&n->env, MESH_LOG_INFO, "node: relay service on");
    }
    rl_arm(n);
    return MESH_OK;
}

/* ---- relayed sessions ----------------------------------------------------------------------- */

static void track(mesh_node *n, mesh_session *s)
{
    if (n->rl.nrelayed < RL_RELAYED)
        n->rl.relayed[n->rl.nrelayed++] = s;
}

int mesh_node_session_path(const mesh_node *n, const mesh_session *s)
{
    for (size_t i = 0; s && i < n->rl.nrelayed; i++)
        if (n->rl.relayed[i] == s)
            return MESH_NODE_PATH_RELAYED;
    if (mesh_node_punch_is_punched(n, s))
        return MESH_NODE_PATH_PUNCHED;
    mesh_node_reach v;
    mesh_reach_get(n->reach, MESH_AF_INET4, &v);
    if (s && !mesh_session_is_client(s) && v.state == MESH_NODE_REACH_MAPPED)
        return MESH_NODE_PATH_MAPPED; /* inbound while our own port mapping is held */
    return MESH_NODE_PATH_DIRECT;
}

static void log_up(mesh_node *n, mesh_session *s, const char *how)
{
    char k[17];
    const uint8_t *key = mesh_session_peer_key(s);
    for (int i = 0; i < 8; i++)
        snprintf(k + 2 * i, 3, "%02x", key[i]);
    mesh_log(&n->env, MESH_LOG_INFO, "node: relayed session %s %s up", how, k);
}

static void in_connected(mesh_session *s, void *ud)
{
    mesh_node *n = ud;
    for (int i = 0; i < RL_PENDING; i++)
        if (n->rl.pending[i] == s)
            n->rl.pending[i] = NULL;
    log_up(n, s, "from");
    track(n, s);
    mesh_pool_adopt(n->pool, s);
}

static void in_closed(mesh_session *s, int reason, void *ud)
{
    mesh_node *n = ud;
    for (int i = 0; i < RL_PENDING; i++)
        if (n->rl.pending[i] == s)
            n->rl.pending[i] = NULL;
    mesh_log(&n->env, MESH_LOG_INFO, "node: relayed session in failed: %s", mesh_errname(reason));
    mesh_session_free(s);
}

static const mesh_session_cbs IN_CBS = {.on_connected = in_connected, .on_closed = in_closed};

static void on_incoming(mesh_relay_end *e, mesh_stream *st, const uint8_t *from_key, void *ud)
{
    (void)from_key; /* the session inside proves the key itself */
    mesh_node *n = ud;
    rl_end *re = end_by_end(n, e);
    int slot = -1;
    for (int i = 0; i < RL_PENDING && slot < 0; i++)
        slot = n->rl.pending[i] ? -1 : i;
    if (!re || slot < 0 || n->closing) {
        mesh_env env = mesh_relay_end_env(e);
        env.ops->stream_close(env.obj, st, MESH_CLOSE_ABORT);
        return;
    }
    mesh_session_cfg cfg = n->scfg;
    cfg.http2 = 0; /* a server follows the negotiated ALPN */
    mesh_session *s;
    if (mesh_session_accept(&s, &re->env, n->tls, st, &cfg, &IN_CBS, n) == MESH_OK)
        n->rl.pending[slot] = s;
}

/* ---- dialling through a relay -------------------------------------------------------------- */

static void dial_try(rl_dial *d);

/* Ops waiting for the peer of d go on (its session joined the pool) or fail with status. */
static void wake_ops(mesh_node *n, const uint8_t *peer_id, int status)
{
    for (op *o = n->ops; o;) {
        if (!o->relay_wait || memcmp(o->peer_id, peer_id, MESH_NODE_ID_LEN) != 0) {
            o = o->next;
            continue;
        }
        o->relay_wait = 0;
        mesh_pool_conn *c = status == MESH_OK ? mesh_pool_find(n->pool, peer_id) : NULL;
        int rc = status;
        if (status == MESH_OK)
            rc = c && mesh_pool_session(c) ? mesh_node_op_transmit(o, c) : MESH_ERR_LIMIT;
        if (rc != MESH_OK)
            mesh_node_op_fail(o, rc);
        o = n->ops; /* a failure's callback may change the list: start again */
    }
}

static void dial_end(rl_dial *d, int status)
{
    mesh_node *n = d->n;
    n->rl.dials[d->idx] = NULL;
    uint8_t id[MESH_NODE_ID_LEN];
    memcpy(id, d->rec.node_id, MESH_NODE_ID_LEN);
    if (status != MESH_OK)
        n->rl.dial_failures++;
    free(d);
    wake_ops(n, id, status);
}

static void dial_connected(mesh_session *s, void *ud)
{
    rl_dial *d = ud;
    mesh_node *n = d->n;
    d->s = NULL;
    log_up(n, s, "to");
    track(n, s);
    mesh_pool_adopt(n->pool, s);
    dial_end(d, MESH_OK);
}

static void dial_closed(mesh_session *s, int reason, void *ud)
{
    rl_dial *d = ud;
    d->s = NULL;
    mesh_session_free(s);
    d->last = reason;
    mesh_log(&d->n->env, MESH_LOG_INFO, "node: relayed dial via relay %zu of %zu failed: %s",
             d->next, d->rec.nrelays, mesh_errname(reason));
    dial_try(d);
}

static const mesh_session_cbs DIAL_CBS = {.on_connected = dial_connected, .on_closed = dial_closed};

static void dial_link_ready(void *ctx, int status, mesh_pool_conn *c)
{
    rl_dial *d = ctx;
    mesh_node *n = d->n;
    rl_end *re = status == MESH_OK ? end_for(n, mesh_pool_session(c)) : NULL;
    if (!re) {
        d->last = status != MESH_OK ? status : MESH_ERR_LIMIT;
        dial_try(d);
        return;
    }
    static const mesh_stream_cbs none = {0};
    int err = MESH_OK;
    mesh_stream *st = mesh_relay_end_connect(re->end, d->rec.node_id, &none, NULL, &err);
    int rc = st ? mesh_session_connect_stream(&d->s, &re->env, n->tls, st, d->rec.pubkey, &n->scfg,
                                              &DIAL_CBS, d)
                : err;
    if (rc != MESH_OK) {
        d->last = rc;
        dial_try(d);
    }
}

/* The next relay of the record, or the end of the dial. */
static void dial_try(rl_dial *d)
{
    mesh_node *n = d->n;
    while (d->next < d->rec.nrelays && !n->closing) {
        const mesh_peer_relay *r = &d->rec.relays[d->next++];
        if (memcmp(r->key, mesh_identity_pubkey(n->id), MESH_PUBKEY_LEN) == 0)
            continue;
        mesh_pool_conn *ready = NULL;
        int rc = mesh_pool_get(n->pool, r->key, &r->addr, 1, 0, dial_link_ready, d, &ready);
        if (rc != MESH_OK) {
            d->last = rc;
            continue;
        }
        if (ready)
            dial_link_ready(d, MESH_OK, ready);
        return;
    }
    dial_end(d, d->last);
}

int mesh_node_relay_dial(mesh_node *n, const mesh_peer_record *r)
{
    if (!r->nrelays)
        return MESH_ERR_UNREACHABLE;
    int idx = -1;
    for (int i = 0; i < RL_PENDING; i++) {
        if (n->rl.dials[i] &&
            memcmp(n->rl.dials[i]->rec.node_id, r->node_id, MESH_NODE_ID_LEN) == 0)
            return MESH_OK; /* under way: the op waits for it */
        if (!n->rl.dials[i] && idx < 0)
            idx = i;
    }
    if (idx < 0)
        return MESH_ERR_LIMIT;
    rl_dial *d = calloc(1, sizeof *d);
    if (!d)
        return MESH_ERR_NOMEM;
    d->n = n;
    d->rec = *r;
    d->idx = idx;
    d->last = MESH_ERR_UNREACHABLE;
    n->rl.dials[idx] = d;
    n->rl.dials_total++;
    d->started = 0;
    /* Started from the kick timer: the op that asked returns first (no callback from
     * inside its call), and its failure, if every relay fails at once, comes later. */
    n->env.ops->timer_set(n->env.obj, n->rl.kick, mesh_env_now(&n->env));
    return MESH_OK;
}

static void rl_kick(mesh_timer *t, void *ud)
{
    (void)t;
    mesh_node *n = ud;
    for (int i = 0; i < RL_PENDING; i++) {
        rl_dial *d = n->rl.dials[i];
        if (d && !d->started) {
            d->started = 1;
            dial_try(d); /* may end d */
        }
    }
}

/* ---- input and closes ----------------------------------------------------------------------- */

void mesh_node_relay_input(mesh_node *n, mesh_pool_conn *c, mesh_session *s,
                           const Meshara__Wire__Relay *r)
{
    rl_end *re = end_of(n, s);
    int rc = MESH_ERR_PROTOCOL;
    if (re)
        rc = mesh_relay_end_input(re->end, r);
    if (rc == MESH_ERR_PROTOCOL && n->rl.svc)
        rc = mesh_relay_service_input(n->rl.svc, s, mesh_pool_conn_key(c), r);
    else if (rc == MESH_ERR_PROTOCOL && r->kind_case == MESHARA__WIRE__RELAY__KIND_RESERVE) {
        /* no service here: say so rather than leave the asker waiting */
        Meshara__Wire__RelayReserved a = MESHARA__WIRE__RELAY_RESERVED__INIT;
        a.status = MESH_ERR_UNSUPPORTED;
        mesh_relay_msg m = MESHARA__WIRE__RELAY__INIT;
        m.kind_case = MESHARA__WIRE__RELAY__KIND_RESERVED;
        m.reserved = &a;
        (void)rl_send(n, s, &m);
        return;
    } else if (rc == MESH_ERR_PROTOCOL && r->kind_case == MESHARA__WIRE__RELAY__KIND_CONNECT) {
        (void)mesh_relay_send_close(rl_send, n, s, r->connect->circuit, MESH_ERR_UNSUPPORTED);
        return;
    }
    mesh_pool_touch(c, 0);
    if (rc == MESH_ERR_PROTOCOL)
        (void)mesh_session_close(s); /* a broken peer */
}

void mesh_node_relay_session_orphaned(mesh_node *n, mesh_session *s)
{
    if (n->rl.svc) /* its circuits end: RelayClose to their other legs */
        mesh_relay_service_link_closed(n->rl.svc, s);
    for (size_t i = 0; i < n->rl.nrelayed; i++)
        if (n->rl.relayed[i] == s)
            n->rl.relayed[i--] = n->rl.relayed[--n->rl.nrelayed];
    rl_end *re = end_of(n, s);
    if (re && re->slot < 0) { /* a reservation's end is on a pinned session: not here */
        re->dead = 1;
        mesh_relay_end_link_closed(re->end);
    }
}

void mesh_node_relay_session_closed(mesh_node *n, mesh_session *s)
{
    if (n->rl.svc)
        mesh_relay_service_link_closed(n->rl.svc, s);
    for (size_t i = 0; i < n->rl.nrelayed; i++)
        if (n->rl.relayed[i] == s)
            n->rl.relayed[i--] = n->rl.relayed[--n->rl.nrelayed];
    rl_end *re = end_of(n, s);
    if (!re)
        return;
    re->dead = 1;
    mesh_relay_end_link_closed(re->end);
    if (re->slot >= 0)
        slot_fail(n, re->slot, MESH_ERR_RESET);
    rl_arm(n);
}

/* ---- freeing -------------------------------------------------------------------------------- */

void mesh_node_relay_free_pending(mesh_node *n)
{
    n->rl.freeing = 1;
    for (int i = 0; i < RL_PENDING; i++) {
        mesh_session_free(n->rl.pending[i]);
        n->rl.pending[i] = NULL;
        rl_dial *d = n->rl.dials[i];
        if (d) {
            mesh_session_free(d->s);
            free(d);
            n->rl.dials[i] = NULL;
        }
    }
}

void mesh_node_relay_free(mesh_node *n)
{
    n->rl.freeing = 1;
    for (int i = 0; i < RL_ENDS; i++) {
        mesh_relay_end_free(n->rl.ends[i].end);
        memset(&n->rl.ends[i], 0, sizeof n->rl.ends[i]);
    }
    mesh_relay_service_free(n->rl.svc);
    n->rl.svc = NULL;
    if (n->rl.timer)
        n->env.ops->timer_free(n->env.obj, n->rl.timer);
    if (n->rl.kick)
        n->env.ops->timer_free(n->env.obj, n->rl.kick);
    n->rl.timer = n->rl.kick = NULL;
}
