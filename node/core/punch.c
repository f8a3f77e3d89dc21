/* punch.c — TCP hole punching (punch.h): coordination messages, firing, attempts. */
#include "core/punch.h"

#include <stdlib.h>
#include <string.h>

#include "core/identity.h"

enum {
    MAX_SLOTS = 2 * MESH_PUNCH_MAX_CANDS, /* our attempts plus accepted ones */
    NONCE_NONE = 0,
};

typedef enum phase {
    PH_WAIT_REPLY, /* initiator: CONNECT sent */
    PH_WAIT_FIRE,  /* initiator: SYNC sent, firing at rtt/2 */
    PH_WAIT_SYNC,  /* responder: CONNECT answered */
    PH_FIRING,     /* connect_from done; until the round timeout */
    PH_BETWEEN,    /* initiator: backoff; responder: waiting for the next CONNECT */
    PH_DONE,       /* outcome reached, on_done pending or called */
} phase;

typedef struct slot {
    struct mesh_punch *p;
    mesh_stream *st; /* raw stream not yet up (ours) */
    mesh_session *s; /* session on an up connection */
    int used, up;    /* up: st is connected, parked for the initiator's next choice */
} slot;

struct mesh_punch {
    mesh_env env;
    mesh_tls_ctx *tls;
    mesh_session *coord;
    mesh_punch_cfg cfg;
    mesh_session_cfg scfg;
    int has_scfg;
    mesh_addr own[MESH_PUNCH_MAX_CANDS], peer[MESH_PUNCH_MAX_CANDS];
    size_t n_own, n_peer;
    uint8_t peer_key[MESH_PUBKEY_LEN];
    mesh_punch_cbs cbs;
    void *ud;
    int initiator;
    phase ph;
    uint64_t nonce;
    mesh_timer *timer;
    slot slots[MAX_SLOTS];
    unsigned arriving; /* connect_from found the four-tuple taken: the peer's connection is
                          coming in through our listener (env.h), an accept will follow */
    int chosen;        /* initiator: slot whose session is the candidate winner; -1 none */
    int last_err;      /* the most telling failure of this round */
    int result;
    mesh_session *winner;
    mesh_time connect_sent;
    mesh_punch_stats st;
};

static const mesh_session_cbs NO_CBS = {0};

static mesh_time now(const mesh_punch *p)
{
    return p->env.ops->now(p->env.obj);
}

/* ---- candidates ------------------------------------------------------------------------- */

static int usable(const mesh_addr *a)
{
    static const uint8_t zero[16];
    size_t n = a->family == MESH_AF_INET4 ? 4 : 16;
    return a->port != 0 && (a->family == MESH_AF_INET4 || a->family == MESH_AF_INET6) &&
           memcmp(a->ip, zero, n) != 0;
}

static size_t add_cand(mesh_addr *out, size_t n, size_t max, const mesh_addr *a)
{
    if (n >= max || !usable(a))
        return n;
    for (size_t i = 0; i < n; i++)
        if (mesh_addr_equal(&out[i], a))
            return n;
    out[n] = *a;
    return n + 1;
}

size_t mesh_punch_candidates(const Meshara__Wire__Punch *m, mesh_addr *out, size_t max)
{
    size_t n = 0;
    if (max > MESH_PUNCH_MAX_CANDS)
        max = MESH_PUNCH_MAX_CANDS;
    for (size_t i = 0; m && i < m->n_addresses && n < max; i++) {
        mesh_addr a;
        if (m->addresses[i] && mesh_addr_parse(&a, m->addresses[i]) == MESH_OK)
            n = add_cand(out, n, max, &a);
    }
    return n;
}

/* ---- messages ----------------------------------------------------------------------------- */

static int send_punch(mesh_punch *p, Meshara__Wire__Punch__Kind kind, int with_cands)
{
    char text[MESH_PUNCH_MAX_CANDS][MESH_ADDR_STRLEN];
    char *addrs[MESH_PUNCH_MAX_CANDS];
    Meshara__Wire__Punch m = MESHARA__WIRE__PUNCH__INIT;
    m.kind = kind;
    m.nonce = p->nonce;
    if (with_cands) {
        for (size_t i = 0; i < p->n_own; i++)
            addrs[i] = mesh_addr_format(&p->own[i], text[i], sizeof text[i]);
        m.n_addresses = p->n_own;
        m.addresses = addrs;
    }
    if (kind == MESHARA__WIRE__PUNCH__KIND__PUNCH_SYNC)
        m.rtt_us = (uint64_t)(p->st.rtt / 1000);
    mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
    e.body_case = MESHARA__WIRE__ENVELOPE__BODY_PUNCH;
    e.punch = &m;
    int rc = mesh_session_send(p->coord, &e);
    return rc == MESH_OK ? MESH_OK : MESH_ERR_CLOSED;
}

/* ---- slots ---------------------------------------------------------------------------------- */

static void slot_clear(mesh_punch *p, slot *x)
{
    if (x->st)
        p->env.ops->stream_close(p->env.obj, x->st, MESH_CLOSE_ABORT);
    mesh_session_free(x->s);
    memset(x, 0, sizeof *x);
}

static void slots_clear(mesh_punch *p)
{
    p->arriving = 0;
    for (size_t i = 0; i < MAX_SLOTS; i++)
        if (p->slots[i].used)
            slot_clear(p, &p->slots[i]);
    p->chosen = -1;
}

static slot *slot_get(mesh_punch *p)
{
    for (size_t i = 0; i < MAX_SLOTS; i++)
        if (!p->slots[i].used) {
            memset(&p->slots[i], 0, sizeof p->slots[i]);
            p->slots[i].p = p;
            p->slots[i].used = 1;
            return &p->slots[i];
        }
    return NULL;
}

static int slots_busy(const mesh_punch *p)
{
    for (size_t i = 0; i < MAX_SLOTS; i++)
        if (p->slots[i].used)
            return 1;
    return 0;
}

/* Failures ranked by how much they say: a key mismatch beats a refusal beats the rest. */
static void note_err(mesh_punch *p, int err)
{
    if (err == MESH_OK)
        return;
    if (p->last_err == MESH_ERR_KEY_MISMATCH)
        return;
    if (err == MESH_ERR_KEY_MISMATCH || p->last_err == MESH_OK || p->last_err == MESH_ERR_TIMEOUT)
        p->last_err = err;
}

/* ---- outcome --------------------------------------------------------------------------------- */

static void finish(mesh_punch *p, int result, mesh_session *winner)
{
    p->ph = PH_DONE;
    p->result = result;
    p->winner = winner;
    p->st.done_at = now(p);
    /* on_done from a timer event: never from inside the caller's own mesh_punch_* call */
    p->env.ops->timer_set(p->env.obj, p->timer, now(p));
}

static void report(mesh_punch *p)
{
    mesh_session *s = p->winner;
    p->winner = NULL;
    if (p->cbs.on_done)
        p->cbs.on_done(p, p->result, s, p->ud); /* may free p */
    else
        mesh_session_free(s);
}

/* ---- rounds -----------------------------------------------------------------------------------
 */

static mesh_time round_timeout(const mesh_punch *p)
{
    return p->cfg.round_timeout;
}

/* The longest a responder waits between rounds: the initiator's largest backoff plus the time
 * its CONNECT takes to arrive (bounded by a round timeout). */
static mesh_time between_wait(const mesh_punch *p)
{
    mesh_time b = p->cfg.backoff;
    for (unsigned i = 2; i < p->cfg.max_rounds; i++)
        b *= 2;
    return b + 2 * round_timeout(p);
}

static int new_round(mesh_punch *p)
{
    uint64_t nonce = NONCE_NONE;
    while (nonce == NONCE_NONE)
        p->env.ops->random(p->env.obj, (uint8_t *)&nonce, sizeof nonce);
    p->nonce = nonce;
    p->st.rounds++;
    p->last_err = MESH_OK;
    p->connect_sent = now(p);
    if (send_punch(p, MESHARA__WIRE__PUNCH__KIND__PUNCH_CONNECT, 1) != MESH_OK)
        return MESH_ERR_CLOSED;
    p->ph = PH_WAIT_REPLY;
    p->env.ops->timer_set(p->env.obj, p->timer, now(p) + round_timeout(p));
    return MESH_OK;
}

/* A round ended without a session. */
static void round_failed(mesh_punch *p)
{
    slots_clear(p);
    int err = p->last_err != MESH_OK ? p->last_err : MESH_ERR_TIMEOUT;
    p->last_err = err;
    if (p->n_own == 0 || p->n_peer == 0)
        err = MESH_ERR_NOT_FOUND; /* another round would not change that */
    else if (p->st.rounds < p->cfg.max_rounds && err != MESH_ERR_KEY_MISMATCH) {
        p->ph = PH_BETWEEN;
        mesh_time wait = p->cfg.backoff;
        for (unsigned i = 1; i < p->st.rounds; i++)
            wait *= 2;
        p->env.ops->timer_set(p->env.obj, p->timer,
                              now(p) + (p->initiator ? wait : between_wait(p)));
        return;
    }
    finish(p, err, NULL);
}

static const mesh_stream_cbs STREAM_CBS;
static const mesh_session_cbs SESSION_CBS;

static void fire(mesh_punch *p)
{
    p->ph = PH_FIRING;
    p->st.fired_at = now(p);
    p->env.ops->timer_set(p->env.obj, p->timer, now(p) + round_timeout(p));
    if (p->n_own == 0 || p->n_peer == 0) {
        round_failed(p);
        return;
    }
    for (size_t i = 0; i < p->n_peer; i++) {
        if (p->peer[i].family != p->cfg.local.family)
            continue;
        slot *x = slot_get(p);
        if (!x)
            break;
        int err = MESH_OK;
        p->st.attempts++;
        x->st =
            p->env.ops->connect_from(p->env.obj, &p->cfg.local, &p->peer[i], &STREAM_CBS, x, &err);
        if (!x->st) {
            if (err == MESH_ERR_ADDR)
                p->arriving++;
            else
                note_err(p, err);
            memset(x, 0, sizeof *x);
        }
    }
    if (!slots_busy(p) && !p->arriving)
        round_failed(p);
}

static void on_timer(mesh_timer *t, void *ud)
{
    mesh_punch *p = ud;
    (void)t;
    switch (p->ph) {
    case PH_WAIT_FIRE:
        fire(p);
        break;
    case PH_BETWEEN:
        if (!p->initiator) {
            finish(p, p->last_err != MESH_OK ? p->last_err : MESH_ERR_TIMEOUT, NULL);
        } else if (new_round(p) != MESH_OK) {
            finish(p, MESH_ERR_CLOSED, NULL);
        }
        break;
    case PH_DONE:
        report(p);
        break;
    default: /* WAIT_REPLY, WAIT_SYNC, FIRING: the round ran out */
        note_err(p, MESH_ERR_TIMEOUT);
        round_failed(p);
        break;
    }
}

/* ---- connections -------------------------------------------------------------------------------
 */

/* Run a session on the up stream of slot x (the initiator's TLS client, pinned; the
 * responder's TLS server). */
static void start_session(mesh_punch *p, slot *x)
{
    mesh_stream *st = x->st;
    x->st = NULL;
    x->up = 0;
    int rc;
    if (p->initiator) {
        p->chosen = (int)(x - p->slots);
        rc = mesh_session_connect_stream(&x->s, &p->env, p->tls, st, p->peer_key,
                                         p->has_scfg ? &p->scfg : NULL, &SESSION_CBS, x);
    } else {
        rc = mesh_session_accept(&x->s, &p->env, p->tls, st, p->has_scfg ? &p->scfg : NULL,
                                 &SESSION_CBS, x);
    }
    if (rc != MESH_OK) { /* the session closed the stream */
        note_err(p, rc);
        if (p->chosen == (int)(x - p->slots))
            p->chosen = -1;
        memset(x, 0, sizeof *x);
    }
}

/* Initiator without a session in progress: take the next connection that is up. */
static void choose_next(mesh_punch *p)
{
    for (size_t i = 0; i < MAX_SLOTS && p->chosen < 0; i++)
        if (p->slots[i].used && p->slots[i].up)
            start_session(p, &p->slots[i]);
}

static void check_round(mesh_punch *p)
{
    if (p->ph == PH_FIRING && !slots_busy(p) && !p->arriving)
        round_failed(p);
}

/* A connection is up on slot x (our connect_from or an accept). The initiator runs one
 * session at a time (the first up; the others wait as fallbacks), the responder one on each. */
static void conn_up(mesh_punch *p, slot *x, mesh_stream *st)
{
    if (!p->st.up_at)
        p->st.up_at = now(p);
    x->st = st;
    x->up = 1;
    if (p->initiator)
        choose_next(p);
    else
        start_session(p, x);
    check_round(p);
}

static void st_connected(mesh_stream *st, void *ud)
{
    slot *x = ud;
    conn_up(x->p, x, st);
}

static void st_closed(mesh_stream *st, int reason, void *ud)
{
    slot *x = ud;
    mesh_punch *p = x->p;
    (void)st;
    note_err(p, reason == MESH_OK ? MESH_ERR_CLOSED : reason);
    memset(x, 0, sizeof *x); /* the handle is released by the env after this */
    check_round(p);
}

static const mesh_stream_cbs STREAM_CBS = {st_connected, NULL, NULL, st_closed};

static void sess_connected(mesh_session *s, void *ud)
{
    slot *x = ud;
    mesh_punch *p = x->p;
    const uint8_t *key = mesh_session_peer_key(s);
    if (!key || memcmp(key, p->peer_key, MESH_PUBKEY_LEN) != 0) {
        /* the responder does not pin in the handshake: an impostor is caught here */
        note_err(p, MESH_ERR_KEY_MISMATCH);
        mesh_session_free(s);
        memset(x, 0, sizeof *x);
        check_round(p);
        return;
    }
    x->s = NULL;
    memset(x, 0, sizeof *x);
    mesh_session_set_cbs(s, &NO_CBS, NULL);
    slots_clear(p);
    finish(p, MESH_OK, s);
}

static void sess_closed(mesh_session *s, int reason, void *ud)
{
    slot *x = ud;
    mesh_punch *p = x->p;
    note_err(p, reason == MESH_OK ? MESH_ERR_CLOSED : reason);
    int was_chosen = p->chosen == (int)(x - p->slots);
    mesh_session_free(s);
    memset(x, 0, sizeof *x);
    if (was_chosen) {
        p->chosen = -1;
        choose_next(p);
    }
    check_round(p);
}

static const mesh_session_cbs SESSION_CBS = {sess_connected, NULL, NULL, sess_closed};

int mesh_punch_accept(mesh_punch *p, mesh_stream *st, const mesh_addr *peer)
{
    /* the peer's SYN may come before we fire (the two halves of the channel differ) */
    if (!p || !st || !peer ||
        (p->ph != PH_FIRING && p->ph != PH_WAIT_FIRE && p->ph != PH_WAIT_SYNC))
        return MESH_ERR_NOT_FOUND;
    int ours = 0;
    size_t n = peer->family == MESH_AF_INET4 ? 4 : 16;
    for (size_t i = 0; i < p->n_peer; i++)
        ours |= p->peer[i].family == peer->family && !memcmp(p->peer[i].ip, peer->ip, n);
    slot *x = ours ? slot_get(p) : NULL;
    if (!x)
        return MESH_ERR_NOT_FOUND;
    p->st.accepted++;
    if (p->arriving)
        p->arriving--;
    conn_up(p, x, st);
    return MESH_OK;
}

/* ---- life cycle ------------------------------------------------------------------------------ */

static int punch_new(mesh_punch **out, const mesh_env *env, mesh_tls_ctx *tls, mesh_session *coord,
                     const mesh_punch_cfg *cfg, const mesh_punch_cbs *cbs, void *ud)
{
    if (!out || !env || !tls || !coord || !cfg || !cbs || cfg->local.port == 0 ||
        mesh_session_get_state(coord) != MESH_SESSION_CONNECTED || !mesh_session_peer_key(coord))
        return MESH_ERR_INVAL;
    if (!env->ops->connect_from)
        return MESH_ERR_UNSUPPORTED;
    mesh_punch *p = calloc(1, sizeof *p);
    if (!p)
        return MESH_ERR_NOMEM;
    p->timer = env->ops->timer_new(env->obj, on_timer, p);
    if (!p->timer) {
        free(p);
        return MESH_ERR_NOMEM;
    }
    p->env = *env;
    p->tls = tls;
    p->coord = coord;
    p->cfg = *cfg;
    p->cfg.cands = NULL;
    if (!p->cfg.round_timeout)
        p->cfg.round_timeout = (mesh_time)MESH_PUNCH_DEFAULT_ROUND_TIMEOUT_MS * MESH_NS_PER_MS;
    if (!p->cfg.backoff)
        p->cfg.backoff = (mesh_time)MESH_PUNCH_DEFAULT_BACKOFF_MS * MESH_NS_PER_MS;
    if (!p->cfg.max_rounds)
        p->cfg.max_rounds = MESH_PUNCH_DEFAULT_ROUNDS;
    if (cfg->session) {
        p->scfg = *cfg->session;
        p->has_scfg = 1;
    }
    p->cfg.session = NULL;
    for (size_t i = 0; cfg->cands && i < cfg->n_cands; i++)
        p->n_own = add_cand(p->own, p->n_own, MESH_PUNCH_MAX_CANDS, &cfg->cands[i]);
    memcpy(p->peer_key, mesh_session_peer_key(coord), MESH_PUBKEY_LEN);
    p->cbs = *cbs;
    p->ud = ud;
    p->chosen = -1;
    p->st.started_at = now(p);
    *out = p;
    return MESH_OK;
}

int mesh_punch_start(mesh_punch **out, const mesh_env *env, mesh_tls_ctx *tls, mesh_session *coord,
                     const mesh_punch_cfg *cfg, const mesh_punch_cbs *cbs, void *ud)
{
    mesh_punch *p = NULL;
    int rc = punch_new(&p, env, tls, coord, cfg, cbs, ud);
    if (rc != MESH_OK)
        return rc;
    p->initiator = 1;
    rc = new_round(p);
    if (rc != MESH_OK) {
        mesh_punch_free(p);
        return rc;
    }
    *out = p;
    return MESH_OK;
}

/* Responder: a CONNECT starts a round (answered with ours). */
static int take_connect(mesh_punch *p, const Meshara__Wire__Punch *m)
{
    if (m->kind != MESHARA__WIRE__PUNCH__KIND__PUNCH_CONNECT || m->nonce == NONCE_NONE ||
        p->st.rounds >= p->cfg.max_rounds)
        return MESH_ERR_PROTOCOL;
    slots_clear(p);
    p->nonce = m->nonce;
    p->st.rounds++;
    p->last_err = MESH_OK;
    p->n_peer = mesh_punch_candidates(m, p->peer, MESH_PUNCH_MAX_CANDS);
    if (send_punch(p, MESHARA__WIRE__PUNCH__KIND__PUNCH_CONNECT, 1) != MESH_OK)
        return MESH_ERR_CLOSED;
    p->ph = PH_WAIT_SYNC;
    p->env.ops->timer_set(p->env.obj, p->timer, now(p) + round_timeout(p));
    return MESH_OK;
}

int mesh_punch_respond(mesh_punch **out, const mesh_env *env, mesh_tls_ctx *tls,
                       mesh_session *coord, const mesh_punch_cfg *cfg,
                       const Meshara__Wire__Punch *m, const mesh_punch_cbs *cbs, void *ud)
{
    if (!m)
        return MESH_ERR_INVAL;
    mesh_punch *p = NULL;
    int rc = punch_new(&p, env, tls, coord, cfg, cbs, ud);
    if (rc != MESH_OK)
        return rc;
    rc = take_connect(p, m);
    if (rc != MESH_OK) {
        mesh_punch_free(p);
        return rc;
    }
    *out = p;
    return MESH_OK;
}

int mesh_punch_on_message(mesh_punch *p, const Meshara__Wire__Punch *m)
{
    if (!p || !m)
        return MESH_ERR_PROTOCOL;
    if (p->ph == PH_DONE)
        return MESH_ERR_STATE;
    if (!p->initiator) {
        if (m->kind == MESHARA__WIRE__PUNCH__KIND__PUNCH_SYNC && p->ph == PH_WAIT_SYNC &&
            m->nonce == p->nonce) {
            p->st.rtt = (mesh_time)m->rtt_us * 1000;
            fire(p);
            return MESH_OK;
        }
        /* a new round (the initiator gave the last one up before we did) replaces ours */
        if (m->nonce == p->nonce)
            return MESH_ERR_PROTOCOL;
        int rc = take_connect(p, m);
        if (rc == MESH_ERR_CLOSED)
            finish(p, rc, NULL);
        return rc == MESH_ERR_CLOSED ? MESH_OK : rc;
    }
    if (m->kind != MESHARA__WIRE__PUNCH__KIND__PUNCH_CONNECT || p->ph != PH_WAIT_REPLY ||
        m->nonce != p->nonce)
        return MESH_ERR_PROTOCOL;
    p->st.rtt = now(p) - p->connect_sent;
    p->n_peer = mesh_punch_candidates(m, p->peer, MESH_PUNCH_MAX_CANDS);
    if (send_punch(p, MESHARA__WIRE__PUNCH__KIND__PUNCH_SYNC, 0) != MESH_OK) {
        finish(p, MESH_ERR_CLOSED, NULL);
        return MESH_OK;
    }
    p->ph = PH_WAIT_FIRE;
    p->env.ops->timer_set(p->env.obj, p->timer, now(p) + p->st.rtt / 2);
    return MESH_OK;
}

void mesh_punch_free(mesh_punch *p)
{
    if (!p)
        return;
    slots_clear(p);
    mesh_session_free(p->winner);
    p->env.ops->timer_free(p->env.obj, p->timer);
    free(p);
}

void mesh_punch_get_stats(const mesh_punch *p, mesh_punch_stats *out)
{
    *out = p->st;
}

int mesh_punch_is_initiator(const mesh_punch *p)
{
    return p->initiator;
}
