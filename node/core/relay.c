/* relay.c — the relay service (relay.h): reservations, circuits, limits.
 *
 * Two fixed tables sized by the limits: reservations (a target's key and node id, its link,
 * when it expires) and circuits (both legs: link and id each, bytes so far, one deadline:
 * the accept timeout while pending, the time limit once open). Lookups scan: the tables are
 * bounded by MESH_RELAY_MAX_TABLE and a scan is cheaper than the sessions' own work per
 * message. One env timer, set to the earliest deadline. */
#include "core/relay.h"

#include <stdlib.h>
#include <string.h>

typedef struct resv {
    int used;
    void *link;
    uint8_t key[MESH_PUBKEY_LEN], id[MESH_NODE_ID_LEN];
    mesh_time expires;
} resv;

typedef struct circ {
    int used, open;
    void *link_c, *link_t; /* client's leg, target's leg */
    uint64_t id_c, id_t;
    uint64_t bytes;
    mesh_time deadline;
} circ;

struct mesh_relay_service {
    mesh_env env;
    mesh_relay_limits lim;
    mesh_relay_send_fn send;
    void *glue;
    mesh_timer *timer;
    resv *resv;
    circ *circ;
    uint64_t next_id; /* ids R chooses on targets' sessions */
    mesh_relay_stats st;
};

static mesh_time now(const mesh_relay_service *svc)
{
    return svc->env.ops->now(svc->env.obj);
}

static mesh_time after(mesh_time t, uint64_t ns)
{
    return ns > MESH_TIME_NEVER - t ? MESH_TIME_NEVER : t + ns;
}

/* ---- sending ------------------------------------------------------------------------------- */

int mesh_relay_send_close(mesh_relay_send_fn send, void *glue, void *link, uint64_t id, int status)
{
    Meshara__Wire__RelayClose c = MESHARA__WIRE__RELAY_CLOSE__INIT;
    c.circuit = id;
    c.status = status;
    mesh_relay_msg m = MESHARA__WIRE__RELAY__INIT;
    m.kind_case = MESHARA__WIRE__RELAY__KIND_CLOSE;
    m.close = &c;
    return send(glue, link, &m);
}

static int send_close(mesh_relay_service *svc, void *link, uint64_t id, int status)
{
    return mesh_relay_send_close(svc->send, svc->glue, link, id, status);
}

static int send_reserved(mesh_relay_service *svc, void *link, int status, uint32_t ttl_s)
{
    Meshara__Wire__RelayReserved r = MESHARA__WIRE__RELAY_RESERVED__INIT;
    r.status = status;
    if (status == MESH_OK) {
        r.ttl_s = ttl_s;
        r.max_bytes = svc->lim.max_bytes;
        r.max_s = svc->lim.max_s;
    }
    mesh_relay_msg m = MESHARA__WIRE__RELAY__INIT;
    m.kind_case = MESHARA__WIRE__RELAY__KIND_RESERVED;
    m.reserved = &r;
    return svc->send(svc->glue, link, &m);
}

/* ---- the tables ------------------------------------------------------------------------------ */

static void rearm(mesh_relay_service *svc)
{
    mesh_time next = MESH_TIME_NEVER;
    for (size_t i = 0; i < svc->lim.reservations; i++)
        if (svc->resv[i].used && svc->resv[i].expires < next)
            next = svc->resv[i].expires;
    for (size_t i = 0; i < svc->lim.circuits; i++)
        if (svc->circ[i].used && svc->circ[i].deadline < next)
            next = svc->circ[i].deadline;
    if (next == MESH_TIME_NEVER)
        svc->env.ops->timer_stop(svc->env.obj, svc->timer);
    else
        svc->env.ops->timer_set(svc->env.obj, svc->timer, next);
}

static resv *resv_by_id(mesh_relay_service *svc, const uint8_t *id)
{
    for (size_t i = 0; i < svc->lim.reservations; i++)
        if (svc->resv[i].used && memcmp(svc->resv[i].id, id, MESH_NODE_ID_LEN) == 0)
            return &svc->resv[i];
    return NULL;
}

/* The circuit whose leg on link has id (either leg); *is_c says which. */
static circ *circ_by_leg(mesh_relay_service *svc, void *link, uint64_t id, int *is_c)
{
    for (size_t i = 0; i < svc->lim.circuits; i++) {
        circ *c = &svc->circ[i];
        if (!c->used)
            continue;
        if (c->link_c == link && c->id_c == id) {
            *is_c = 1;
            return c;
        }
        if (c->link_t == link && c->id_t == id) {
            *is_c = 0;
            return c;
        }
    }
    return NULL;
}

/* End c: RelayClose{status} to each leg still to be told (tell_c, tell_t), then free it. */
static void circ_end(mesh_relay_service *svc, circ *c, int status, int tell_c, int tell_t)
{
    if (tell_c)
        (void)send_close(svc, c->link_c, c->id_c, status);
    if (tell_t)
        (void)send_close(svc, c->link_t, c->id_t, status);
    if (status == MESH_ERR_LIMIT && c->open)
        svc->st.closed_limit++;
    memset(c, 0, sizeof *c);
    svc->st.circuits--;
}

/* ---- input --------------------------------------------------------------------------------- */

static void on_reserve(mesh_relay_service *svc, void *link, const uint8_t *key,
                       const Meshara__Wire__RelayReserve *rq)
{
    uint8_t id[MESH_NODE_ID_LEN];
    mesh_node_id_of(key, id);
    resv *r = resv_by_id(svc, id);
    for (size_t i = 0; !r && i < svc->lim.reservations; i++)
        if (!svc->resv[i].used)
            r = &svc->resv[i];
    if (!r) {
        svc->st.refused++;
        (void)send_reserved(svc, link, MESH_ERR_LIMIT, 0);
        return;
    }
    uint32_t ttl = rq->ttl_s && rq->ttl_s < svc->lim.max_ttl_s ? rq->ttl_s : svc->lim.max_ttl_s;
    if (!r->used)
        svc->st.reservations++;
    r->used = 1;
    r->link = link; /* a renewal over a new session moves the reservation there */
    memcpy(r->key, key, MESH_PUBKEY_LEN);
    memcpy(r->id, id, MESH_NODE_ID_LEN);
    r->expires = after(now(svc), (uint64_t)ttl * MESH_NS_PER_S);
    if (send_reserved(svc, link, MESH_OK, ttl) != MESH_OK) {
        memset(r, 0, sizeof *r);
        svc->st.reservations--;
    }
}

/* A free circuit slot for a client on link, or the refusal status. */
static int circ_room(mesh_relay_service *svc, void *link, uint64_t id, circ **out)
{
    size_t mine = 0;
    circ *slot = NULL;
    for (size_t i = 0; i < svc->lim.circuits; i++) {
        circ *c = &svc->circ[i];
        if (!c->used) {
            if (!slot)
                slot = c;
            continue;
        }
        if (c->link_c == link && c->id_c == id)
            return MESH_ERR_EXISTS;
        if (c->link_c == link)
            mine++;
    }
    if (!slot || mine >= svc->lim.circuits_per_peer)
        return MESH_ERR_LIMIT;
    *out = slot;
    return MESH_OK;
}

static void on_connect(mesh_relay_service *svc, void *link, const uint8_t *key,
                       const Meshara__Wire__RelayConnect *rq)
{
    circ *c = NULL;
    int rc = rq->circuit == 0 || (rq->circuit & MESH_RELAY_ID_RELAY)
                 ? MESH_ERR_INVAL
                 : circ_room(svc, link, rq->circuit, &c);
    resv *r = rc == MESH_OK ? resv_by_id(svc, rq->target.data) : NULL;
    if (rc == MESH_OK && (!r || r->link == link))
        rc = MESH_ERR_NOT_FOUND; /* no reservation (a node does not relay to itself) */
    if (rc != MESH_OK) {
        svc->st.refused++;
        (void)send_close(svc, link, rq->circuit, rc);
        return;
    }
    *c = (circ){.used = 1,
                .link_c = link,
                .link_t = r->link,
                .id_c = rq->circuit,
                .id_t = ++svc->next_id,
                .deadline = after(now(svc), MESH_RELAY_ACCEPT_TIMEOUT_MS * MESH_NS_PER_MS)};
    svc->st.circuits++;
    Meshara__Wire__RelayIncoming in = MESHARA__WIRE__RELAY_INCOMING__INIT;
    in.circuit = c->id_t;
    in.from_key.data = (uint8_t *)key;
    in.from_key.len = MESH_PUBKEY_LEN;
    mesh_relay_msg m = MESHARA__WIRE__RELAY__INIT;
    m.kind_case = MESHARA__WIRE__RELAY__KIND_INCOMING;
    m.incoming = &in;
    if (svc->send(svc->glue, c->link_t, &m) != MESH_OK)
        circ_end(svc, c, MESH_ERR_UNREACHABLE, 1, 0);
}

static void on_accept(mesh_relay_service *svc, void *link, uint64_t id)
{
    int is_c = 0;
    circ *c = circ_by_leg(svc, link, id, &is_c);
    if (!c || is_c || c->open)
        return; /* gone (a close or a timeout crossed it), or a repeat */
    c->open = 1;
    c->deadline = svc->lim.max_s ? after(now(svc), (uint64_t)svc->lim.max_s * MESH_NS_PER_S)
                                 : MESH_TIME_NEVER;
    svc->st.circuits_opened++;
    Meshara__Wire__RelayConnected ok = MESHARA__WIRE__RELAY_CONNECTED__INIT;
    ok.circuit = c->id_c;
    ok.max_bytes = svc->lim.max_bytes;
    ok.max_s = svc->lim.max_s;
    mesh_relay_msg m = MESHARA__WIRE__RELAY__INIT;
    m.kind_case = MESHARA__WIRE__RELAY__KIND_CONNECTED;
    m.connected = &ok;
    if (svc->send(svc->glue, c->link_c, &m) != MESH_OK)
        circ_end(svc, c, MESH_ERR_RESET, 0, 1);
}

/* RelayData or RelayWindow on an open circuit: to the other leg, with its id. */
static void on_forward(mesh_relay_service *svc, void *link, const mesh_relay_msg *r)
{
    int is_data = r->kind_case == MESHARA__WIRE__RELAY__KIND_DATA, is_c = 0;
    uint64_t id = is_data ? r->data->circuit : r->window->circuit;
    circ *c = circ_by_leg(svc, link, id, &is_c);
    if (!c || !c->open)
        return; /* closes cross; before the accept nothing may flow: dropped */
    size_t len = is_data ? r->data->data.len : 0;
    if (len > svc->lim.max_bytes - c->bytes) {
        circ_end(svc, c, MESH_ERR_LIMIT, 1, 1);
        return;
    }
    c->bytes += len;
    Meshara__Wire__RelayData d;
    Meshara__Wire__RelayWindow w;
    mesh_relay_msg m = *r;
    if (is_data) {
        d = *r->data;
        d.circuit = is_c ? c->id_t : c->id_c;
        m.data = &d;
    } else {
        w = *r->window;
        w.circuit = is_c ? c->id_t : c->id_c;
        m.window = &w;
    }
    if (svc->send(svc->glue, is_c ? c->link_t : c->link_c, &m) != MESH_OK) {
        circ_end(svc, c, MESH_ERR_LIMIT, is_c, !is_c); /* the other leg is full or gone */
        return;
    }
    svc->st.bytes_relayed += len;
}

static void on_close(mesh_relay_service *svc, void *link, const Meshara__Wire__RelayClose *rq)
{
    int is_c = 0;
    circ *c = circ_by_leg(svc, link, rq->circuit, &is_c);
    if (!c)
        return;
    if (!c->open && !is_c)
        svc->st.refused++; /* the target turned it down */
    circ_end(svc, c, rq->status, !is_c, is_c);
}

int mesh_relay_service_input(mesh_relay_service *svc, void *link, const uint8_t *peer_key,
                             const mesh_relay_msg *r)
{
    if (!svc || !peer_key || !r)
        return MESH_ERR_INVAL;
    switch (r->kind_case) {
    case MESHARA__WIRE__RELAY__KIND_RESERVE:
        on_reserve(svc, link, peer_key, r->reserve);
        break;
    case MESHARA__WIRE__RELAY__KIND_CONNECT:
        on_connect(svc, link, peer_key, r->connect);
        break;
    case MESHARA__WIRE__RELAY__KIND_ACCEPT:
        on_accept(svc, link, r->accept->circuit);
        break;
    case MESHARA__WIRE__RELAY__KIND_DATA:
    case MESHARA__WIRE__RELAY__KIND_WINDOW:
        on_forward(svc, link, r);
        break;
    case MESHARA__WIRE__RELAY__KIND_CLOSE:
        on_close(svc, link, r->close);
        break;
    default: /* RESERVED, INCOMING, CONNECTED: only a relay sends those */
        return MESH_ERR_PROTOCOL;
    }
    rearm(svc);
    return MESH_OK;
}

void mesh_relay_service_link_closed(mesh_relay_service *svc, void *link)
{
    if (!svc)
        return;
    for (size_t i = 0; i < svc->lim.reservations; i++)
        if (svc->resv[i].used && svc->resv[i].link == link) {
            memset(&svc->resv[i], 0, sizeof svc->resv[i]);
            svc->st.reservations--;
        }
    for (size_t i = 0; i < svc->lim.circuits; i++) {
        circ *c = &svc->circ[i];
        if (c->used && (c->link_c == link || c->link_t == link))
            circ_end(svc, c, MESH_ERR_RESET, c->link_c != link, c->link_t != link);
    }
    rearm(svc);
}

/* ---- time ------------------------------------------------------------------------------------ */

static void on_timer(mesh_timer *t, void *ud)
{
    (void)t;
    mesh_relay_service *svc = ud;
    mesh_time tnow = now(svc);
    for (size_t i = 0; i < svc->lim.reservations; i++)
        if (svc->resv[i].used && svc->resv[i].expires <= tnow) {
            memset(&svc->resv[i], 0, sizeof svc->resv[i]);
            svc->st.reservations--;
        }
    for (size_t i = 0; i < svc->lim.circuits; i++) {
        circ *c = &svc->circ[i];
        if (c->used && c->deadline <= tnow)
            circ_end(svc, c, c->open ? MESH_ERR_LIMIT : MESH_ERR_TIMEOUT, 1, 1);
    }
    rearm(svc);
}

/* ---- creation -------------------------------------------------------------------------------- */

static size_t clamp(size_t v, size_t dflt)
{
    if (!v)
        v = dflt;
    return v > MESH_RELAY_MAX_TABLE ? MESH_RELAY_MAX_TABLE : v;
}

int mesh_relay_service_new(mesh_relay_service **out, const mesh_env *env,
                           const mesh_relay_limits *lim, mesh_relay_send_fn send, void *glue)
{
    if (!out || !env || !send)
        return MESH_ERR_INVAL;
    mesh_relay_service *svc = calloc(1, sizeof *svc);
    if (!svc)
        return MESH_ERR_NOMEM;
    svc->env = *env;
    svc->send = send;
    svc->glue = glue;
    svc->next_id = MESH_RELAY_ID_RELAY;
    mesh_relay_limits l = lim ? *lim : (mesh_relay_limits){0};
    l.reservations = clamp(l.reservations, MESH_RELAY_DEFAULT_RESERVATIONS);
    l.circuits = clamp(l.circuits, MESH_RELAY_DEFAULT_CIRCUITS);
    l.circuits_per_peer = clamp(l.circuits_per_peer, MESH_RELAY_DEFAULT_CIRCUITS_PER_PEER);
    if (!l.max_bytes)
        l.max_bytes = MESH_RELAY_DEFAULT_MAX_BYTES;
    if (!l.max_s)
        l.max_s = MESH_RELAY_DEFAULT_MAX_S;
    if (!l.max_ttl_s)
        l.max_ttl_s = MESH_RELAY_DEFAULT_TTL_S;
    svc->lim = l;
    svc->resv = calloc(l.reservations, sizeof *svc->resv);
    if (!svc->resv)
        goto fail_resv;
    svc->circ = calloc(l.circuits, sizeof *svc->circ);
    if (!svc->circ)
        goto fail_circ;
    svc->timer = env->ops->timer_new(env->obj, on_timer, svc);
    if (!svc->timer)
        goto fail_timer;
    *out = svc;
    return MESH_OK;
fail_timer:
    free(svc->circ);
fail_circ:
    free(svc->resv);
fail_resv:
    free(svc);
    return MESH_ERR_NOMEM;
}

void mesh_relay_service_free(mesh_relay_service *svc)
{
    if (!svc)
        return;
    svc->env.ops->timer_free(svc->env.obj, svc->timer);
    free(svc->circ);
    free(svc->resv);
    free(svc);
}

void mesh_relay_service_stats(const mesh_relay_service *svc, mesh_relay_stats *out)
{
    if (svc && out)
        *out = svc->st;
}
