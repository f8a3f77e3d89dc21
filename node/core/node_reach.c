/* node_reach.c — the node's reachability (node_impl.h): observed addresses into core/reach,
 * and dial-back, both sides (docs/nat.md).
 *
 * Asking. When the state of IPv4 gives a candidate address (PUBLIC: our address and
 * listening port; MAPPED: the mapping; NAT: the agreed address with our listening port), a
 * round asks up to DB_ASK of the peers whose sessions gave us claims to open a session to it
 * (QUERY_DIAL_BACK). DB_AGREE successes confirm it: it joins the addresses of our signed
 * record (seq + 1). A round that fails leaves the record as it was; the next one waits
 * DB_RETRY after it (and for a session coming up), so a node never asks more than DB_ASK
 * peers per DB_RETRY for one address — or DB_ASKER_GAP when a peer answered MESH_ERR_LIMIT
 * (it had just dialled us for another candidate, e.g. the NAT's address before a mapping
 * got another port), so that peers' own bound is what paces us.
 *
 * Answering. A dial-back goes only to the IP the asker's session comes from (any port): we
 * can never be made to connect to a third party, so the query is no reflection tool, and a
 * public asker cannot point us at a private or loopback address (a private target is only
 * possible for an asker that reaches us from that private address, i.e. on our LAN). The
 * dial pins the asker's key, so MESH_OK means the asker's own node answered there; it is
 * closed as soon as it is up. Bounds: DB_JOBS dials at a time, one per asker key per
 * DB_ASKER_GAP (MESH_ERR_LIMIT beyond), each dial's phases DB_DIAL_TIMEOUT.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/node_impl.h"

#define DB_RETRY (10ULL * 60 * MESH_NS_PER_S)
#define DB_ASKER_GAP (60ULL * MESH_NS_PER_S)
#define DB_DIAL_TIMEOUT (5ULL * MESH_NS_PER_S)
#define DB_QUERY_TIMEOUT (20ULL * MESH_NS_PER_S)

struct db_job {
    mesh_node *n;
    mesh_session *s;
    uint8_t key[MESH_PUBKEY_LEN];
    uint64_t query_id;
    int slot;
    int answered;
};

static void dialback_maybe(mesh_node *n);
static size_t askable(const node_dialback *db);

/* ---- observed addresses ------------------------------------------------------------------- */

void mesh_node_reach_changed(mesh_node *n, int family)
{
    mesh_node_reach v;
    mesh_reach_get(n->reach, family, &v);
    char a[MESH_ADDR_STRLEN] = "-";
    if (v.external.family != MESH_AF_NONE)
        mesh_addr_format(&v.external, a, sizeof a);
    mesh_log(&n->env, MESH_LOG_INFO, "node: reach %s: %s, external %s, %d observers agree",
             family == MESH_AF_INET4 ? "IPv4" : "IPv6", mesh_reach_state_name(v.state), a,
             v.observers);
    mesh_node_notify(n, NOTE_REACH, NULL, 0, MESH_OK);
    dialback_maybe(n);
}

/* Remember key among the peers that can be asked for a dial-back (a ring). */
static void add_observer(node_dialback *db, const uint8_t *key, const mesh_addr *saw)
{
    for (size_t i = 0; i < db->nobservers; i++)
        if (memcmp(db->observers[i], key, MESH_PUBKEY_LEN) == 0) {
            db->observer_saw[i] = *saw;
            return;
        }
    memcpy(db->observers[db->obs_next], key, MESH_PUBKEY_LEN);
    db->observer_saw[db->obs_next] = *saw;
    db->obs_next = (db->obs_next + 1) % DB_OBSERVERS;
    if (db->nobservers < DB_OBSERVERS)
        db->nobservers++;
}

void mesh_node_reach_portmap_failed(mesh_node *n)
{
    mesh_node_notify(n, NOTE_REACH, NULL, 0, MESH_OK);
    dialback_maybe(n); /* the NAT's address may be the candidate now (candidate()) */
}

void mesh_node_reach_session(mesh_node *n, mesh_session *s)
{
    mesh_addr seen, local;
    if (!mesh_session_is_client(s) || mesh_session_observed_addr(s, &seen, &local) != MESH_OK)
        return;
    mesh_addr peer = mesh_session_peer_addr(s);
    const uint8_t *key = mesh_session_peer_key(s);
    add_observer(&n->db, key, &seen);
    if (mesh_reach_observed(n->reach, mesh_env_now(&n->env), key, MESH_PUBKEY_LEN, &peer, &local,
                            &seen) == 1)
        mesh_node_reach_changed(n, seen.family);
    else
        dialback_maybe(n);
}

/* ---- asking ------------------------------------------------------------------------------- */

/* The address to confirm now, or family NONE. */
static mesh_addr candidate(const mesh_node *n)
{
    mesh_node_reach v;
    mesh_reach_get(n->reach, MESH_AF_INET4, &v);
    mesh_addr c = {0};
    if (v.state == MESH_NODE_REACH_NAT && n->portmap) {
        /* the gateway is still being asked for the first time: its mapping (maybe on another
         * external port) is the better candidate, and asking about the NAT's address now
         * would spend the peers' one dial per minute before the mapping could be checked */
        mesh_portmap_stats ps;
        mesh_portmap_get_stats(n->portmap, &ps);
        if (ps.state == MESH_PORTMAP_REQUESTING && ps.failures == 0 && ps.mappings == 0)
            return c;
    }
    if (v.state == MESH_NODE_REACH_PUBLIC || v.state == MESH_NODE_REACH_MAPPED ||
        (v.state == MESH_NODE_REACH_NAT && v.external.family != MESH_AF_NONE)) {
        c = v.external;
        if (v.state == MESH_NODE_REACH_NAT)
            c.port = n->bound.port; /* reachable only if the NAT forwards our port */
    }
    return c;
}

/* Our record: the configured addresses, the confirmed one, the TURN relayed one and the
 * relays we hold reservations on, re-signed with seq + 1 (and given to the DHT). */
void mesh_node_record_update(mesh_node *n)
{
    mesh_addr addrs[MESH_PEER_MAX_ADDRS], extra[2] = {n->db.confirmed, {0}};
    size_t na = mesh_node_self_addrs(n, addrs);
    (void)mesh_node_turn_addr(n, &extra[1]); /* stays family NONE without an allocation */
    for (size_t k = 0; k < 2; k++) {
        const mesh_addr *c = &extra[k];
        int have = 0;
        for (size_t i = 0; i < na; i++)
            have |= mesh_addr_equal(&addrs[i], c);
        if (c->family != MESH_AF_NONE && !have && na < MESH_PEER_MAX_ADDRS)
            addrs[na++] = *c;
    }
    mesh_peer_relay relays[MESH_PEER_MAX_RELAYS];
    size_t nr = mesh_node_relay_refs(n, relays);
    mesh_peer_record r;
    if (mesh_peer_record_make_named(&r, n->id, addrs, na, relays, nr, n->host_name,
                                    n->self.seq + 1) != MESH_OK)
        return; /* the record stays as it was; the next change tries again */
    n->self = r;
    if (n->dht) {
        mesh_dht_set_self(n->dht, &n->self);
        mesh_node_announce_closest(n);
    }
}

typedef struct db_ask {
    uint64_t round;
} db_ask;

static void retry_fired(mesh_timer *t, void *ud)
{
    (void)t;
    dialback_maybe(ud);
}

static void ask_answered(mesh_node *n, void *actx, const answer *a)
{
    db_ask ctx = *(db_ask *)actx;
    free(actx);
    node_dialback *db = &n->db;
    if (ctx.round != db->round)
        return; /* a past candidate's */
    db->inflight--;
    char t[MESH_ADDR_STRLEN];
    mesh_addr_format(&db->cand, t, sizeof t);
    if (a->status == MESH_OK) {
        db->ok++;
        db->total_ok++;
    } else {
        db->failed++;
        db->round_limited |= a->status == MESH_ERR_LIMIT;
    }
    if (a->status == MESH_OK && db->ok == DB_AGREE) {
        db->confirmed = db->cand;
        mesh_node_record_update(n);
        mesh_node_notify(n, NOTE_REACH, NULL, 0, MESH_OK);
        mesh_log(&n->env, MESH_LOG_INFO, "node: dial-back: %s confirmed by %d peers, advertised", t,
                 db->ok);
    } else if (db->ok < DB_AGREE && !db->inflight &&
               (db->asked == DB_ASK || (size_t)db->asked >= askable(db))) {
        /* failed: every peer we could ask answered (fewer than DB_ASK when we know fewer) */
        /* a peer that only hit its one-dial-per-minute bound (it dialled us for a round
         * just before) may be asked again once that minute is over */
        db->retry_at = mesh_env_now(&n->env) + (db->round_limited ? DB_ASKER_GAP : DB_RETRY);
        if (!db->retry)
            db->retry = n->env.ops->timer_new(n->env.obj, retry_fired, n);
        if (db->retry) /* else the next session or state change tries again */
            n->env.ops->timer_set(n->env.obj, db->retry, db->retry_at);
        mesh_log(&n->env, MESH_LOG_INFO,
                 "node: dial-back: %s not confirmed (%d of %d peers reached it; last: %s)", t,
                 db->ok, db->asked, mesh_errname(a->status));
    }
    dialback_maybe(n);
}

/* 1 if observer i saw our connection come from the candidate's IP: it may be asked. */
static int saw_cand(const node_dialback *db, size_t i)
{
    const mesh_addr *saw = &db->observer_saw[i];
    return saw->family == db->cand.family &&
           memcmp(saw->ip, db->cand.ip, saw->family == MESH_AF_INET4 ? 4 : 16) == 0;
}

static size_t askable(const node_dialback *db)
{
    size_t k = 0;
    for (size_t i = 0; i < db->nobservers; i++)
        k += saw_cand(db, i);
    return k;
}

/* Ask the next observer not asked in this round. 1 if a query went out. */
static int ask_one(mesh_node *n)
{
    node_dialback *db = &n->db;
    char text[MESH_ADDR_STRLEN];
    mesh_addr_format(&db->cand, text, sizeof text);
    for (size_t i = 0; i < db->nobservers; i++) {
        const uint8_t *key = db->observers[i];
        int asked = 0;
        for (int k = 0; k < db->asked; k++)
            asked |= memcmp(db->asked_keys[k], key, MESH_PUBKEY_LEN) == 0;
        /* a peer answers only for the IP our session to it comes from (as it sees it): one
         * that saw another (a neighbour on our LAN, our private address) would refuse */
        if (asked || !saw_cand(db, i))
            continue;
        db_ask *ctx = malloc(sizeof *ctx);
        if (!ctx)
            return 0;
        ctx->round = db->round;
        memcpy(db->asked_keys[db->asked++], key, MESH_PUBKEY_LEN);
        if (mesh_node_query_start(n, key, NULL, 0, 0, MESH_QUERY_DIAL_BACK, (const uint8_t *)text,
                                  strlen(text), DB_QUERY_TIMEOUT, ask_answered, ctx) != MESH_OK) {
            free(ctx);
            db->failed++;
            continue;
        }
        db->inflight++;
        db->total_asked++;
        return 1;
    }
    return 0;
}

/* Start or continue the round for the current candidate (see the top of the file). */
static void dialback_maybe(mesh_node *n)
{
    node_dialback *db = &n->db;
    if (n->closing || !n->started)
        return;
    mesh_addr c = candidate(n);
    mesh_time now = mesh_env_now(&n->env);
    /* No candidate now (e.g. RELAYED hides the NAT's address) keeps the round of the last
     * one going: its answers still count, and the same address coming back (a port mapping
     * at the NAT's address and our port) does not re-ask peers that limit us to one dial
     * per minute. */
    if (c.family != MESH_AF_NONE && !mesh_addr_equal(&c, &db->cand)) {
        db->cand = c;
        db->round++;
        db->asked = db->ok = db->failed = db->inflight = 0;
        db->retry_at = 0;
        db->round_limited = 0;
        /* Another address believed: the confirmed one is no longer what the world sees. (No
         * belief at all, e.g. the claims aged out, keeps it: nothing says it went wrong.) */
        if (db->confirmed.family != MESH_AF_NONE && c.family != MESH_AF_NONE &&
            !mesh_addr_equal(&db->confirmed, &c)) {
            db->confirmed = (mesh_addr){0};
            mesh_node_record_update(n);
            mesh_node_notify(n, NOTE_REACH, NULL, 0, MESH_OK);
        }
    }
    if (c.family == MESH_AF_NONE || mesh_addr_equal(&c, &db->confirmed))
        return;
    if (db->retry_at && !db->inflight && db->ok < DB_AGREE) { /* this round failed */
        if (now >= db->retry_at) {
            db->round++; /* a new round for the same address */
            db->asked = db->ok = db->failed = db->round_limited = 0;
            db->retry_at = 0;
        } else if (db->asked == DB_ASK) {
            return; /* else a peer that became an observer since may still be asked */
        }
    }
    while (db->asked < DB_ASK && db->ok + db->inflight < DB_AGREE && ask_one(n))
        ;
}

/* ---- answering ---------------------------------------------------------------------------- */

static void job_answer(db_job *j, int status)
{
    mesh_node *n = j->n;
    j->answered = 1;
    uint8_t id[MESH_NODE_ID_LEN];
    mesh_node_id_of(j->key, id);
    mesh_pool_conn *c = mesh_pool_find(n->pool, id);
    mesh_session *s = c ? mesh_pool_session(c) : NULL;
    if (s) {
        Meshara__Wire__Response r = MESHARA__WIRE__RESPONSE__INIT;
        r.query_id = j->query_id;
        r.type = MESHARA__WIRE__QUERY_TYPE__QUERY_DIAL_BACK;
        r.status = status;
        mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
        e.body_case = MESHARA__WIRE__ENVELOPE__BODY_RESPONSE;
        e.response = &r;
        if (mesh_session_send(s, &e) == MESH_OK)
            n->st.queries_answered++;
    }
}

static void job_connected(mesh_session *s, void *ud)
{
    job_answer(ud, MESH_OK);     /* the pinned key proved itself: the asker answered there */
    (void)mesh_session_close(s); /* in order: goodbye, close_notify; on_closed follows */
}

static void job_closed(mesh_session *s, int reason, void *ud)
{
    db_job *j = ud;
    if (!j->answered)
        job_answer(j, reason == MESH_OK ? MESH_ERR_CLOSED : reason);
    j->n->db.jobs[j->slot] = NULL;
    mesh_session_free(s); /* inside its callback: freed when it unwinds */
    free(j);
}

static const mesh_session_cbs JOB_CBS = {.on_connected = job_connected, .on_closed = job_closed};

/* 1 if the asker may have another dial now (and note it), else 0. */
static int rate_ok(mesh_node *n, const uint8_t *key)
{
    node_dialback *db = &n->db;
    mesh_time now = mesh_env_now(&n->env);
    for (size_t i = 0; i < DB_RATE; i++)
        if (db->rate[i].at && memcmp(db->rate[i].id, key, 8) == 0 &&
            now - db->rate[i].at < DB_ASKER_GAP)
            return 0;
    memcpy(db->rate[db->rate_next].id, key, 8);
    db->rate[db->rate_next].at = now ? now : 1;
    db->rate_next = (db->rate_next + 1) % DB_RATE;
    return 1;
}

int mesh_node_dialback_start(mesh_node *n, mesh_session *s, const Meshara__Wire__Query *q)
{
    node_dialback *db = &n->db;
    char text[MESH_ADDR_STRLEN];
    mesh_addr to, from = mesh_session_peer_addr(s);
    if (q->payload.len == 0 || q->payload.len >= sizeof text)
        return MESH_ERR_INVAL;
    memcpy(text, q->payload.data, q->payload.len);
    text[q->payload.len] = '\0';
    if (mesh_addr_parse(&to, text) != MESH_OK || to.port == 0)
        return MESH_ERR_INVAL;
    if (to.family != from.family ||
        memcmp(to.ip, from.ip, to.family == MESH_AF_INET4 ? 4 : 16) != 0) {
        db->refused++;
        return MESH_ERR_REFUSED; /* only where the asker's own connection comes from */
    }
    int slot = -1;
    for (int i = 0; i < DB_JOBS && slot < 0; i++)
        slot = db->jobs[i] ? -1 : i;
    const uint8_t *key = mesh_session_peer_key(s);
    if (slot < 0 || !rate_ok(n, key)) {
        db->limited++;
        return MESH_ERR_LIMIT;
    }
    db_job *j = calloc(1, sizeof *j);
    if (!j)
        return MESH_ERR_NOMEM;
    j->n = n;
    j->slot = slot;
    j->query_id = q->query_id;
    memcpy(j->key, key, MESH_PUBKEY_LEN);
    mesh_session_cfg cfg = n->scfg;
    cfg.connect_timeout = cfg.handshake_timeout = cfg.auth_timeout = DB_DIAL_TIMEOUT;
    cfg.http2 = 0;
    int rc = mesh_session_connect(&j->s, &n->env, n->tls, &to, key, &cfg, &JOB_CBS, j);
    if (rc != MESH_OK) {
        free(j);
        return rc;
    }
    db->jobs[slot] = j;
    db->dials++;
    return MESH_OK;
}

void mesh_node_reach_free(mesh_node *n)
{
    for (int i = 0; i < DB_JOBS; i++) {
        db_job *j = n->db.jobs[i];
        if (!j)
            continue;
        mesh_session_free(j->s);
        free(j);
        n->db.jobs[i] = NULL;
    }
    if (n->db.retry)
        n->env.ops->timer_free(n->env.obj, n->db.retry);
    n->db.retry = NULL;
    mesh_reach_free(n->reach);
    n->reach = NULL;
}
