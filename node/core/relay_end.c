/* relay_end.c — circuits through a relay as virtual streams (relay_end.h).
 *
 * Each circuit is a slot of a fixed table (so the vstream provider pointer stays valid) with
 * its stream, the consumer's bytes not yet sent, the credit we may still send and what we
 * owe the far end in credit. The end is the vstream provider: write queues and flushes,
 * delivered credits, close tells the relay. A slot is freed when the relay or the far end
 * closed the circuit (the stream is ended first), or when the consumer's close has been
 * passed on (after the queued bytes, for a graceful one). */
#include "core/relay_end.h"

#include <stdlib.h>
#include <string.h>

enum circ_state { C_FREE = 0, C_CONNECTING, C_ACCEPTING, C_OPEN };

typedef struct circuit {
    mesh_relay_end *e;
    int state;
    int released; /* the consumer closed (gracefully: flush, then RelayClose{OK}) */
    uint64_t id;
    mesh_stream *s; /* NULL once released or ended */
    uint8_t *out;   /* consumer's bytes: out[off..len) not yet sent */
    size_t off, len, cap;
    uint64_t credit;   /* we may send this many more */
    uint64_t inflight; /* received and not yet credited back */
    uint64_t owed;     /* delivered to the consumer, not yet credited back */
} circuit;

struct mesh_relay_end {
    mesh_env base;
    mesh_vstream_env *v;
    mesh_relay_send_fn send;
    void *glue, *link;
    mesh_relay_end_cbs cbs;
    void *ud;
    circuit c[MESH_RELAY_END_CIRCUITS];
    uint64_t next_id;
    int blocked; /* the link said MESH_ERR_AGAIN: wait for mesh_relay_end_writable */
};

static void circ_free(circuit *c)
{
    mesh_relay_end *e = c->e;
    free(c->out);
    memset(c, 0, sizeof *c);
    c->e = e;
}

static circuit *circ_find(mesh_relay_end *e, uint64_t id)
{
    for (size_t i = 0; i < MESH_RELAY_END_CIRCUITS; i++)
        if (e->c[i].state != C_FREE && e->c[i].id == id)
            return &e->c[i];
    return NULL;
}

static circuit *circ_slot(mesh_relay_end *e)
{
    for (size_t i = 0; i < MESH_RELAY_END_CIRCUITS; i++)
        if (e->c[i].state == C_FREE)
            return &e->c[i];
    return NULL;
}

/* ---- sending ----------------------------------------------------------------------------------
 */

static int send_msg(mesh_relay_end *e, mesh_relay_msg *m)
{
    return e->send(e->glue, e->link, m);
}

static int send_close(mesh_relay_end *e, uint64_t id, int status)
{
    return mesh_relay_send_close(e->send, e->glue, e->link, id, status);
}

/* The link failed under us: every circuit ends with reason; the slots are freed. */
static void link_fail(mesh_relay_end *e, int reason)
{
    for (size_t i = 0; i < MESH_RELAY_END_CIRCUITS; i++) {
        circuit *c = &e->c[i];
        if (c->state == C_FREE)
            continue;
        if (c->s)
            mesh_vstream_end(c->s, reason);
        circ_free(c);
    }
}

/* A control message that must not be lost: a refusal of the link is its failure. Returns 1
 * if the link failed (every circuit is gone). */
static int ctl(mesh_relay_end *e, int rc)
{
    if (rc == MESH_OK)
        return 0;
    link_fail(e, MESH_ERR_LIMIT);
    return 1;
}

/* Credit the far end with what our consumer took (in quarters of the window: fewer messages;
 * a sender out of credit always gets one, since it sent a full window). */
static void credit_back(circuit *c, int force)
{
    if (!c->owed || (!force && c->owed < MESH_RELAY_WINDOW / 4) || c->e->blocked)
        return;
    Meshara__Wire__RelayWindow w = MESHARA__WIRE__RELAY_WINDOW__INIT;
    w.circuit = c->id;
    w.credit = c->owed;
    mesh_relay_msg m = MESHARA__WIRE__RELAY__INIT;
    m.kind_case = MESHARA__WIRE__RELAY__KIND_WINDOW;
    m.window = &w;
    int rc = send_msg(c->e, &m);
    if (rc == MESH_ERR_AGAIN) {
        c->e->blocked = 1;
        return;
    }
    if (ctl(c->e, rc))
        return;
    c->inflight -= c->owed;
    c->owed = 0;
}

/* Send what the consumer queued, as credit and the link allow; then, if the consumer closed
 * gracefully and nothing is left, pass the close on. Returns 1 if c was freed. */
static int flush(circuit *c)
{
    mesh_relay_end *e = c->e;
    if (c->state != C_OPEN)
        return 0;
    size_t sent = 0;
    while (c->off < c->len && c->credit && !e->blocked) {
        size_t n = c->len - c->off;
        if (n > MESH_RELAY_DATA_MAX)
            n = MESH_RELAY_DATA_MAX;
        if (n > c->credit)
            n = (size_t)c->credit;
        Meshara__Wire__RelayData d = MESHARA__WIRE__RELAY_DATA__INIT;
        d.circuit = c->id;
        d.data.data = c->out + c->off;
        d.data.len = n;
        mesh_relay_msg m = MESHARA__WIRE__RELAY__INIT;
        m.kind_case = MESHARA__WIRE__RELAY__KIND_DATA;
        m.data = &d;
        int rc = send_msg(e, &m);
        if (rc == MESH_ERR_AGAIN) {
            e->blocked = 1;
            break;
        }
        if (ctl(e, rc))
            return 1;
        c->off += n;
        c->credit -= n;
        sent += n;
    }
    if (c->off == c->len)
        c->off = c->len = 0;
    if (c->len == 0 && sent && c->s)
        mesh_vstream_drained(c->s);
    if (c->released && c->len == 0) {
        int rc = send_close(e, c->id, MESH_OK);
        circ_free(c);
        (void)ctl(e, rc);
        return 1;
    }
    return 0;
}

/* ---- the vstream provider ---------------------------------------------------------------------
 */

static int p_write(void *pud, const uint8_t *data, size_t len)
{
    circuit *c = pud;
    if (c->cap - c->len < len) {
        if (c->off) { /* reuse the room already sent */
            memmove(c->out, c->out + c->off, c->len - c->off);
            c->len -= c->off;
            c->off = 0;
        }
        size_t cap = c->cap ? c->cap : 4096;
        while (cap - c->len < len)
            cap *= 2;
        uint8_t *nb = cap == c->cap ? c->out : realloc(c->out, cap);
        if (!nb)
            return MESH_ERR_NOMEM;
        c->out = nb;
        c->cap = cap;
    }
    memcpy(c->out + c->len, data, len);
    c->len += len;
    (void)flush(c);
    return MESH_OK;
}

static size_t p_pending(void *pud)
{
    circuit *c = pud;
    return c->len - c->off;
}

static void p_delivered(void *pud, size_t len)
{
    circuit *c = pud;
    c->owed += len;
    credit_back(c, 0);
}

static void p_close(void *pud, int how)
{
    circuit *c = pud;
    mesh_relay_end *e = c->e;
    if (c->state == C_FREE) /* a connect that never reached the relay */
        return;
    c->s = NULL;
    c->released = 1;
    if (c->state == C_OPEN && how == MESH_CLOSE_GRACEFUL) {
        (void)flush(c); /* the close follows the bytes */
        return;
    }
    /* Not open yet (a connect given up, an incoming circuit refused) or aborted. */
    int status = c->state == C_ACCEPTING ? MESH_ERR_REFUSED : MESH_ERR_RESET;
    int rc = send_close(e, c->id, status);
    circ_free(c);
    (void)ctl(e, rc);
}

static const mesh_vstream_provider PROVIDER = {p_write, p_pending, p_delivered, p_close};

/* ---- input ------------------------------------------------------------------------------------
 */

/* The far end or the relay broke the circuit's rules: end it and tell the relay. */
static void circ_break(circuit *c, int reason)
{
    mesh_relay_end *e = c->e;
    if (c->s)
        mesh_vstream_end(c->s, reason);
    int rc = send_close(e, c->id, reason);
    circ_free(c);
    (void)ctl(e, rc);
}

static void on_incoming(mesh_relay_end *e, const Meshara__Wire__RelayIncoming *in)
{
    circuit *c = circ_find(e, in->circuit) ? NULL : circ_slot(e);
    if (!c || !(in->circuit & MESH_RELAY_ID_RELAY)) {
        (void)ctl(e, send_close(e, in->circuit, c ? MESH_ERR_PROTOCOL : MESH_ERR_LIMIT));
        return;
    }
    int err = 0;
    mesh_stream *s = mesh_vstream_open(e->v, &PROVIDER, c, 0, NULL, NULL, NULL, NULL, &err);
    if (!s) {
        (void)ctl(e, send_close(e, in->circuit, err));
        return;
    }
    c->state = C_ACCEPTING;
    c->id = in->circuit;
    c->s = s;
    mesh_env env = mesh_vstream_env_env(e->v);
    if (e->cbs.on_incoming)
        e->cbs.on_incoming(e, s, in->from_key.data, e->ud);
    else
        env.ops->stream_close(env.obj, s, MESH_CLOSE_ABORT);
    if (c->state != C_ACCEPTING || c->s != s)
        return; /* refused inside the callback (the relay was told), or the link failed */
    Meshara__Wire__RelayAccept a = MESHARA__WIRE__RELAY_ACCEPT__INIT;
    a.circuit = c->id;
    mesh_relay_msg m = MESHARA__WIRE__RELAY__INIT;
    m.kind_case = MESHARA__WIRE__RELAY__KIND_ACCEPT;
    m.accept = &a;
    if (ctl(e, send_msg(e, &m)))
        return;
    c->state = C_OPEN;
    c->credit = MESH_RELAY_WINDOW;
    (void)flush(c);
}

static void on_connected(mesh_relay_end *e, uint64_t id)
{
    circuit *c = circ_find(e, id);
    if (!c || c->state != C_CONNECTING)
        return;
    c->state = C_OPEN;
    c->credit = MESH_RELAY_WINDOW;
    if (c->s)
        mesh_vstream_connected(c->s);
    (void)flush(c); /* what the session wrote meanwhile (its ClientHello) */
}

static void on_data(mesh_relay_end *e, const Meshara__Wire__RelayData *d)
{
    circuit *c = circ_find(e, d->circuit);
    if (!c || c->state != C_OPEN)
        return;
    if (d->data.len > MESH_RELAY_WINDOW - c->inflight) {
        circ_break(c, MESH_ERR_PROTOCOL); /* beyond the credit we gave */
        return;
    }
    c->inflight += d->data.len;
    if (!c->s) /* our consumer closed: we are only sending what it left */
        return;
    int rc = mesh_vstream_push(c->s, d->data.data, d->data.len);
    if (rc != MESH_OK)
        circ_break(c, rc);
}

static void on_window(mesh_relay_end *e, const Meshara__Wire__RelayWindow *w)
{
    circuit *c = circ_find(e, w->circuit);
    if (!c || c->state != C_OPEN)
        return;
    if (w->credit > MESH_RELAY_WINDOW - c->credit) {
        circ_break(c, MESH_ERR_PROTOCOL); /* more than it was ever sent */
        return;
    }
    c->credit += w->credit;
    (void)flush(c);
}

static void on_close(mesh_relay_end *e, const Meshara__Wire__RelayClose *cl)
{
    circuit *c = circ_find(e, cl->circuit);
    if (!c)
        return;
    if (c->s)
        mesh_vstream_end(c->s, cl->status);
    circ_free(c);
}

int mesh_relay_end_input(mesh_relay_end *e, const mesh_relay_msg *r)
{
    if (!e || !r)
        return MESH_ERR_INVAL;
    switch (r->kind_case) {
    case MESHARA__WIRE__RELAY__KIND_RESERVED:
        if (e->cbs.on_reserved)
            e->cbs.on_reserved(e, r->reserved->status, r->reserved->ttl_s, e->ud);
        return MESH_OK;
    case MESHARA__WIRE__RELAY__KIND_INCOMING:
        on_incoming(e, r->incoming);
        return MESH_OK;
    case MESHARA__WIRE__RELAY__KIND_CONNECTED:
        on_connected(e, r->connected->circuit);
        return MESH_OK;
    case MESHARA__WIRE__RELAY__KIND_DATA:
        on_data(e, r->data);
        return MESH_OK;
    case MESHARA__WIRE__RELAY__KIND_WINDOW:
        on_window(e, r->window);
        return MESH_OK;
    case MESHARA__WIRE__RELAY__KIND_CLOSE:
        on_close(e, r->close);
        return MESH_OK;
    default: /* RESERVE, CONNECT, ACCEPT: what a relay's clients send */
        return MESH_ERR_PROTOCOL;
    }
}

void mesh_relay_end_writable(mesh_relay_end *e)
{
    if (!e)
        return;
    e->blocked = 0;
    for (size_t i = 0; i < MESH_RELAY_END_CIRCUITS && !e->blocked; i++) {
        circuit *c = &e->c[i];
        if (c->state == C_OPEN) {
            credit_back(c, 1);
            if (c->state == C_OPEN)
                (void)flush(c);
        }
    }
}

void mesh_relay_end_link_closed(mesh_relay_end *e)
{
    if (e)
        link_fail(e, MESH_ERR_RESET);
}

/* ---- the end ----------------------------------------------------------------------------------
 */

int mesh_relay_end_new(mesh_relay_end **out, const mesh_env *base, mesh_relay_send_fn send,
                       void *glue, void *link, const mesh_relay_end_cbs *cbs, void *ud)
{
    if (!out || !base || !send)
        return MESH_ERR_INVAL;
    mesh_relay_end *e = calloc(1, sizeof *e);
    if (!e)
        return MESH_ERR_NOMEM;
    int rc = mesh_vstream_env_new(&e->v, base);
    if (rc != MESH_OK) {
        free(e);
        return rc;
    }
    e->base = *base;
    e->send = send;
    e->glue = glue;
    e->link = link;
    if (cbs)
        e->cbs = *cbs;
    e->ud = ud;
    for (size_t i = 0; i < MESH_RELAY_END_CIRCUITS; i++)
        e->c[i].e = e;
    *out = e;
    return MESH_OK;
}

void mesh_relay_end_free(mesh_relay_end *e)
{
    if (!e)
        return;
    mesh_vstream_env_free(e->v); /* the streams, without callbacks or provider ops */
    for (size_t i = 0; i < MESH_RELAY_END_CIRCUITS; i++)
        free(e->c[i].out);
    free(e);
}

mesh_env mesh_relay_end_env(mesh_relay_end *e)
{
    return mesh_vstream_env_env(e->v);
}

size_t mesh_relay_end_circuits(const mesh_relay_end *e)
{
    size_t n = 0;
    for (size_t i = 0; e && i < MESH_RELAY_END_CIRCUITS; i++)
        n += e->c[i].state != C_FREE;
    return n;
}

int mesh_relay_end_reserve(mesh_relay_end *e, uint32_t ttl_s)
{
    if (!e)
        return MESH_ERR_INVAL;
    Meshara__Wire__RelayReserve r = MESHARA__WIRE__RELAY_RESERVE__INIT;
    r.ttl_s = ttl_s;
    mesh_relay_msg m = MESHARA__WIRE__RELAY__INIT;
    m.kind_case = MESHARA__WIRE__RELAY__KIND_RESERVE;
    m.reserve = &r;
    return send_msg(e, &m);
}

mesh_stream *mesh_relay_end_connect(mesh_relay_end *e, const uint8_t *target,
                                    const mesh_stream_cbs *cbs, void *ud, int *err)
{
    int dummy;
    if (!err)
        err = &dummy;
    if (!e || !target) {
        *err = MESH_ERR_INVAL;
        return NULL;
    }
    circuit *c = circ_slot(e);
    if (!c) {
        *err = MESH_ERR_LIMIT;
        return NULL;
    }
    mesh_stream *s = mesh_vstream_open(e->v, &PROVIDER, c, 1, NULL, NULL, cbs, ud, err);
    if (!s)
        return NULL;
    Meshara__Wire__RelayConnect rq = MESHARA__WIRE__RELAY_CONNECT__INIT;
    rq.circuit = ++e->next_id; /* top bit clear: ours (relay.h) */
    rq.target.data = (uint8_t *)target;
    rq.target.len = MESH_NODE_ID_LEN;
    mesh_relay_msg m = MESHARA__WIRE__RELAY__INIT;
    m.kind_case = MESHARA__WIRE__RELAY__KIND_CONNECT;
    m.connect = &rq;
    int rc = send_msg(e, &m);
    if (rc != MESH_OK) {
        mesh_env env = mesh_vstream_env_env(e->v);
        c->state = C_FREE; /* the close below must not reach the relay */
        env.ops->stream_close(env.obj, s, MESH_CLOSE_ABORT);
        circ_free(c);
        *err = rc;
        return NULL;
    }
    c->state = C_CONNECTING;
    c->id = rq.circuit;
    c->s = s;
    return s;
}
