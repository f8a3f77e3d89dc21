/* node_punch.c — hole punching over relayed sessions (node_impl.h, core/punch.h, docs/nat.md).
 *
 * Who punches. A session that came up through a relay circuit is the coordination channel.
 * Its client (the side that dialled through the relay) is the initiator: it starts
 * mesh_punch from the punch timer once the session is the peer's usable one; the other side
 * answers the first CONNECT that arrives on a relayed session it accepted. Any other Punch
 * message (no punch over that session, a CONNECT on a session that is not relayed or that we
 * dialled, a peer past its attempts) is dropped, with one log line per PN_LOG_INTERVAL.
 *
 * Candidates (IPv4): our listening port as a peer saw it — the sessions to the relays we
 * reserve on leave from the listening port (MESH_POOL_FROM_LOCAL) and stay up, so their hello
 * tells the NAT mapping of that port and keeps it alive; a NAT that maps every destination
 * alike gives the punch, which connects from the same port, that same mapping —; our NAT's
 * address as peers agree on it with our listening port (a public node's, or a NAT that keeps
 * ports); our port mapping; the address a dial-back confirmed. Local address: the listener's.
 *
 * Switching paths. The punched session is adopted by the pool like any session. Its client
 * is the initiator, the relayed session's client too, so the pool's duplicate rule (the same
 * client on both: the newer wins) makes it the usable one at both ends without a message:
 * the relayed session is retired — nothing new is sent on it, what was already on its way
 * still arrives and is answered for MESH_POOL_DUP_LINGER_MS — then closed in order, which
 * closes its circuit at the relay. An op whose answer had not come on it by then is sent
 * again on the punched session (node_events.c, the receiver's duplicate filter drops a second
 * copy). No message is lost and none is re-ordered by the switch itself.
 *
 * Bounds. At most PN_RUNS punches at once; per peer PN_TRIES punches (each of up to
 * MESH_PUNCH_DEFAULT_ROUNDS rounds), the initiator waiting PN_BACKOFF, doubled each time,
 * between them; the responder answers at most PN_TRIES CONNECTs that start a punch per peer.
 * Peers are remembered in a table of PN_PEERS (the least recently touched replaced). A
 * failure is logged with its name and the relayed session stays.
 */
#include <stdio.h>
#include <string.h>

#include "core/node_impl.h"

#define PN_TRIES 3
#define PN_BACKOFF (30ULL * MESH_NS_PER_S)
#define PN_LOG_INTERVAL (10ULL * MESH_NS_PER_S)

static void hex8(const uint8_t *id, char out[17])
{
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", id[i]);
}

static mesh_time now_of(const mesh_node *n)
{
    return mesh_env_now(&n->env);
}

/* ---- peers ----------------------------------------------------------------------------------- */

/* The entry of id; made (replacing the least recently touched) when make is set. */
static pn_peer *peer_of(mesh_node *n, const uint8_t *id, int make)
{
    pn_peer *old = NULL;
    for (int i = 0; i < PN_PEERS; i++) {
        pn_peer *pe = &n->pn.peers[i];
        if (pe->used && memcmp(pe->id, id, MESH_NODE_ID_LEN) == 0)
            return pe;
        if (!old || !pe->used || (old->used && pe->touch < old->touch))
            old = pe;
    }
    if (!make)
        return NULL;
    memset(old, 0, sizeof *old);
    old->used = 1;
    memcpy(old->id, id, MESH_NODE_ID_LEN);
    old->touch = now_of(n);
    return old;
}

static pn_run *run_of_coord(mesh_node *n, const mesh_session *s)
{
    for (int i = 0; i < PN_RUNS; i++)
        if (n->pn.runs[i].p && n->pn.runs[i].coord == s)
            return &n->pn.runs[i];
    return NULL;
}

static pn_run *run_of_peer(mesh_node *n, const uint8_t *id)
{
    for (int i = 0; i < PN_RUNS; i++)
        if (n->pn.runs[i].p && memcmp(n->pn.runs[i].peer_id, id, MESH_NODE_ID_LEN) == 0)
            return &n->pn.runs[i];
    return NULL;
}

static void arm(mesh_node *n, mesh_time at)
{
    if (!n->pn.timer || n->closing)
        return;
    n->env.ops->timer_set(n->env.obj, n->pn.timer, at);
    n->pn.armed = 1;
}

/* ---- candidates ------------------------------------------------------------------------------ */

static size_t add(mesh_addr *out, size_t k, const mesh_addr *a)
{
    if (k >= MESH_PUNCH_MAX_CANDS || a->family != MESH_AF_INET4 || a->port == 0)
        return k;
    for (size_t i = 0; i < k; i++)
        if (mesh_addr_equal(&out[i], a))
            return k;
    out[k] = *a;
    return k + 1;
}

static size_t own_cands(const mesh_node *n, mesh_addr *out)
{
    mesh_node_reach v;
    mesh_reach_get(n->reach, MESH_AF_INET4, &v);
    size_t k = add(out, 0, &n->pn.listen_ext);
    if (v.external.family == MESH_AF_INET4) {
        mesh_addr a = v.external;
        if (v.state != MESH_NODE_REACH_MAPPED)
            a.port = n->bound.port; /* where our listening port leaves from, if the NAT keeps it */
        k = add(out, k, &a);
    }
    if (n->portmap) {
        mesh_portmap_stats pst;
        mesh_portmap_get_stats(n->portmap, &pst);
        if (pst.state == MESH_NODE_PORTMAP_MAPPED)
            k = add(out, k, &pst.external);
    }
    return add(out, k, &n->db.confirmed);
}

/* ---- outcome --------------------------------------------------------------------------------- */

static void pn_done(mesh_punch *p, int result, mesh_session *s, void *ud)
{
    pn_run *r = ud;
    mesh_node *n = r->n;
    int init = mesh_punch_is_initiator(p);
    mesh_punch_stats ps;
    mesh_punch_get_stats(p, &ps);
    mesh_punch_free(p);
    r->p = NULL;
    r->coord = NULL;
    char k[17];
    hex8(r->peer_id, k);
    pn_peer *pe = peer_of(n, r->peer_id, 1);
    if (result != MESH_OK) {
        n->pn.failed++;
        n->pn.last_err = result;
        mesh_log(&n->env, MESH_LOG_INFO,
                 "node: punch %s %s failed: %s after %u rounds, %u connects, %u accepted (%u of "
                 "%d), stays relayed",
                 init ? "to" : "from", k, mesh_errname(result), ps.rounds, ps.attempts, ps.accepted,
                 pe->tries, PN_TRIES);
        if (init && pe->tries < PN_TRIES)
            arm(n, pe->next);
        return;
    }
    n->pn.ok++;
    if (n->pn.npunched < PN_PUNCHED)
        n->pn.punched[n->pn.npunched++] = s;
    mesh_log(&n->env, MESH_LOG_INFO,
             "node: punched session %s %s up in %llu ms (rtt %llu ms), relayed one retires",
             init ? "to" : "from", k, (unsigned long long)((ps.up_at - ps.started_at) / 1000000),
             (unsigned long long)(ps.rtt / 1000000));
    mesh_pool_adopt_as(n->pool, s, init); /* the newer session of the same client wins */
    /* the peer's usable session changed path: on_peer says so (meshara.h) */
    mesh_node_notify(n, NOTE_PEER, mesh_session_peer_key(s), 1, MESH_OK);
}

static const mesh_punch_cbs PN_CBS = {.on_done = pn_done};

/* A punch over coord, as the initiator (m NULL) or the responder to m. */
static int run_start(mesh_node *n, mesh_session *coord, const Meshara__Wire__Punch *m)
{
    pn_run *r = NULL;
    for (int i = 0; i < PN_RUNS && !r; i++)
        r = n->pn.runs[i].p ? NULL : &n->pn.runs[i];
    if (!r)
        return MESH_ERR_LIMIT;
    mesh_addr cands[MESH_PUNCH_MAX_CANDS];
    size_t nc = own_cands(n, cands);
    mesh_session_cfg scfg = n->scfg;
    if (m)
        scfg.http2 = 0; /* the responder is the server: it follows the negotiated ALPN */
    mesh_punch_cfg cfg = {.local = n->bound, .cands = cands, .n_cands = nc, .session = &scfg};
    const uint8_t *id = mesh_session_peer_id(coord);
    pn_peer *pe = peer_of(n, id, 1);
    pe->tries++;
    pe->touch = now_of(n);
    pe->next = pe->touch + (PN_BACKOFF << (pe->tries - 1));
    r->n = n;
    memcpy(r->peer_id, id, MESH_NODE_ID_LEN);
    int rc = m ? mesh_punch_respond(&r->p, &n->env, n->tls, coord, &cfg, m, &PN_CBS, r)
               : mesh_punch_start(&r->p, &n->env, n->tls, coord, &cfg, &PN_CBS, r);
    char k[17];
    hex8(id, k);
    if (rc != MESH_OK) {
        r->p = NULL;
        n->pn.failed++;
        n->pn.last_err = rc;
        mesh_log(&n->env, MESH_LOG_INFO, "node: punch %s %s not started: %s (%u of %d)",
                 m ? "from" : "to", k, mesh_errname(rc), pe->tries, PN_TRIES);
        return rc;
    }
    r->coord = coord;
    n->pn.started++;
    char a[MESH_ADDR_STRLEN] = "none", l[MESH_ADDR_STRLEN];
    if (nc)
        mesh_addr_format(&cands[0], a, sizeof a);
    mesh_log(&n->env, MESH_LOG_INFO,
             "node: punch %s %s over its relayed session from %s, %zu candidates (%s%s)",
             m ? "from" : "to", k, mesh_addr_format(&n->bound, l, sizeof l), nc, a,
             nc > 1 ? ", ..." : "");
    return MESH_OK;
}

/* ---- the timer: initiators ------------------------------------------------------------------- */

static void pn_tick(mesh_timer *t, void *ud)
{
    (void)t;
    mesh_node *n = ud;
    n->pn.armed = 0;
    if (n->closing)
        return;
    mesh_time now = now_of(n), next = 0;
    for (size_t i = 0; i < n->rl.nrelayed; i++) {
        mesh_session *s = n->rl.relayed[i];
        if (!mesh_session_is_client(s) || mesh_session_get_state(s) != MESH_SESSION_CONNECTED)
            continue;
        const uint8_t *id = mesh_session_peer_id(s);
        mesh_pool_conn *c = mesh_pool_find(n->pool, id);
        if (!c || mesh_pool_session(c) != s || run_of_peer(n, id))
            continue; /* not the usable one (retiring), or being punched */
        pn_peer *pe = peer_of(n, id, 0);
        if (pe && pe->tries >= PN_TRIES)
            continue;
        if (pe && now < pe->next) {
            next = next && next < pe->next ? next : pe->next;
            continue;
        }
        if (run_start(n, s, NULL) == MESH_ERR_LIMIT) /* all runs busy: a second later */
            next = next && next < now + MESH_NS_PER_S ? next : now + MESH_NS_PER_S;
    }
    if (next)
        arm(n, next);
}

int mesh_node_punch_start(mesh_node *n)
{
    n->pn.timer = n->env.ops->timer_new(n->env.obj, pn_tick, n);
    return n->pn.timer ? MESH_OK : MESH_ERR_NOMEM;
}

void mesh_node_punch_session_up(mesh_node *n, mesh_session *s)
{
    mesh_addr obs, local;
    if (mesh_session_is_client(s) && mesh_session_observed_addr(s, &obs, &local) == MESH_OK &&
        local.port == n->bound.port && obs.family == MESH_AF_INET4) {
        n->pn.listen_ext = obs; /* a connection from our listening port: its NAT mapping */
        n->pn.listen_sess = s;
    }
    if (mesh_session_is_client(s) && mesh_node_session_path(n, s) == MESH_NODE_PATH_RELAYED &&
        n->env.ops->connect_from)
        arm(n, now_of(n)); /* from the timer: not inside the pool's callback */
}

/* ---- messages and accepts -------------------------------------------------------------------- */

static void dropped(mesh_node *n, const uint8_t *id, const char *why)
{
    n->pn.dropped++;
    mesh_time now = now_of(n);
    if (n->pn.log_at && now < n->pn.log_at) {
        n->pn.log_quiet++;
        return;
    }
    char k[17];
    hex8(id, k);
    mesh_log(&n->env, MESH_LOG_INFO, "node: Punch from %s dropped: %s (%llu more before)", k, why,
             (unsigned long long)n->pn.log_quiet);
    n->pn.log_quiet = 0;
    n->pn.log_at = now + PN_LOG_INTERVAL;
}

void mesh_node_punch_input(mesh_node *n, mesh_pool_conn *c, mesh_session *s,
                           const Meshara__Wire__Punch *m)
{
    const uint8_t *id = mesh_pool_conn_id(c);
    mesh_pool_touch(c, 0);
    pn_run *r = run_of_coord(n, s);
    if (r) {
        if (mesh_punch_on_message(r->p, m) != MESH_OK)
            dropped(n, id, "not expected by the punch");
        return;
    }
    if (m->kind != MESHARA__WIRE__PUNCH__KIND__PUNCH_CONNECT || n->closing) {
        dropped(n, id, "no punch over that session");
        return;
    }
    if (mesh_session_is_client(s) || mesh_node_session_path(n, s) != MESH_NODE_PATH_RELAYED) {
        dropped(n, id, "CONNECT on a session that is not the peer's relayed one");
        return;
    }
    if (run_of_peer(n, id)) {
        dropped(n, id, "a punch with that peer runs");
        return;
    }
    pn_peer *pe = peer_of(n, id, 0);
    if (pe && pe->tries >= PN_TRIES) {
        dropped(n, id, "attempts used up");
        return;
    }
    (void)run_start(n, s, m); /* failures logged there */
}

int mesh_node_punch_accept(mesh_node *n, mesh_stream *st, const mesh_addr *peer)
{
    for (int i = 0; i < PN_RUNS; i++)
        if (n->pn.runs[i].p && mesh_punch_accept(n->pn.runs[i].p, st, peer) == MESH_OK)
            return 1;
    return 0;
}

/* ---- sessions gone, freeing ------------------------------------------------------------------ */

void mesh_node_punch_session_gone(mesh_node *n, mesh_session *s)
{
    for (size_t i = 0; i < n->pn.npunched; i++)
        if (n->pn.punched[i] == s)
            n->pn.punched[i--] = n->pn.punched[--n->pn.npunched];
    if (n->pn.listen_sess == s) { /* the mapping may lapse without it */
        n->pn.listen_sess = NULL;
        n->pn.listen_ext.family = MESH_AF_NONE;
    }
    pn_run *r = run_of_coord(n, s);
    if (!r)
        return;
    mesh_punch_free(r->p); /* it borrows s: it cannot outlive it */
    r->p = NULL;
    r->coord = NULL;
    n->pn.failed++;
    n->pn.last_err = MESH_ERR_CLOSED;
    char k[17];
    hex8(r->peer_id, k);
    mesh_log(&n->env, MESH_LOG_INFO, "node: punch with %s stopped: %s", k,
             mesh_errname(MESH_ERR_CLOSED));
}

int mesh_node_punch_is_punched(const mesh_node *n, const mesh_session *s)
{
    for (size_t i = 0; s && i < n->pn.npunched; i++)
        if (n->pn.punched[i] == s)
            return 1;
    return 0;
}

void mesh_node_punch_free(mesh_node *n)
{
    for (int i = 0; i < PN_RUNS; i++) {
        mesh_punch_free(n->pn.runs[i].p);
        n->pn.runs[i].p = NULL;
    }
    if (n->pn.timer)
        n->env.ops->timer_free(n->env.obj, n->pn.timer);
    n->pn.timer = NULL;
    n->pn.npunched = 0;
}
