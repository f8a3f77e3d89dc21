/* vstream.c — virtual streams behind an overlay env (vstream.h).
 *
 * Each stream holds what its provider reported and not yet delivered (connected, bytes,
 * writable, end) and one base-env timer. Reports only record and arm the timer at "now";
 * deliver() — the timer's callback, so a later event of the base loop — hands them to the
 * consumer in the order of env.h: connected, data, writable, closed. A consumer's close
 * inside one of those callbacks marks the stream released; deliver() frees it when the
 * callback returns, so the stream's memory outlives every frame that still reads it. */
#include "core/vstream.h"

#include <stdlib.h>
#include <string.h>

typedef struct vs {
    mesh_vstream_env *v;
    struct vs *prev, *next; /* v's list of open streams */
    const mesh_vstream_provider *prov;
    void *pud;
    mesh_stream_cbs cbs;
    void *ud;
    mesh_addr local, remote;
    mesh_timer *timer; /* the base env's */
    uint8_t *rx;       /* bytes pushed, not yet delivered */
    size_t rx_len, rx_cap;
    int adopted;      /* the consumer set callbacks (connect: at once; accept: set_cbs) */
    int connecting;   /* opened connecting, mesh_vstream_connected not yet reported */
    int ev_connected; /* reported, not yet delivered */
    int ev_writable;
    int ended; /* the provider let go (mesh_vstream_end): no provider op after this */
    int end_reason;
    int armed;
    int in_deliver; /* deliver() is running for this stream */
    int released;   /* the consumer closed it: no callback; freed once deliver() unwinds */
} vs;

struct mesh_vstream_env {
    mesh_env base;
    vs *streams;
    size_t count;
};

static vs *VS(mesh_stream *s)
{
    return (vs *)(void *)s;
}

static mesh_stream *MS(vs *s)
{
    return (mesh_stream *)(void *)s;
}

/* ---- stream lifetime ------------------------------------------------------------------------- */

static void destroy(vs *s)
{
    mesh_vstream_env *v = s->v;
    if (s->prev)
        s->prev->next = s->next;
    else
        v->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    v->count--;
    v->base.ops->timer_free(v->base.obj, s->timer);
    free(s->rx);
    free(s);
}

static void arm(vs *s)
{
    if (s->armed || s->released || !s->adopted)
        return;
    s->armed = 1;
    s->v->base.ops->timer_set(s->v->base.obj, s->timer, s->v->base.ops->now(s->v->base.obj));
}

static int has_events(const vs *s)
{
    return s->ev_connected || s->rx_len || s->ev_writable || s->ended;
}

/* Hand the buffered bytes to on_data. The buffer is taken out of the stream for the call, so
 * bytes pushed from inside the callback (a loopback provider echoing) go to a fresh one and
 * are delivered on a later turn. Returns 1 if the consumer released the stream. */
static int deliver_data(vs *s)
{
    uint8_t *buf = s->rx;
    size_t len = s->rx_len, cap = s->rx_cap;
    s->rx = NULL;
    s->rx_len = s->rx_cap = 0;
    if (s->cbs.on_data)
        s->cbs.on_data(MS(s), buf, len, s->ud);
    if (!s->rx && !s->released) { /* keep the room for the next bytes */
        s->rx = buf;
        s->rx_cap = cap;
    } else {
        free(buf);
    }
    if (s->released)
        return 1;
    if (!s->ended && s->prov->delivered)
        s->prov->delivered(s->pud, len);
    return s->released;
}

/* One turn: every report so far, in env.h's order, stopping when the consumer lets go. */
static void deliver(mesh_timer *t, void *ud)
{
    (void)t;
    vs *s = ud;
    s->armed = 0;
    s->in_deliver = 1;
    if (s->ev_connected) {
        s->ev_connected = 0;
        if (s->cbs.on_connected)
            s->cbs.on_connected(MS(s), s->ud);
        if (s->released)
            goto out;
    }
    if (s->rx_len && deliver_data(s))
        goto out;
    if (s->ev_writable) {
        s->ev_writable = 0;
        if (s->cbs.on_writable)
            s->cbs.on_writable(MS(s), s->ud);
        if (s->released)
            goto out;
    }
    /* The end only once every byte pushed before it went out (some may have come in the
     * callbacks above: those go first, on the next turn). */
    if (s->ended && !s->rx_len && !s->ev_connected && !s->ev_writable) {
        if (s->cbs.on_closed)
            s->cbs.on_closed(MS(s), s->end_reason, s->ud);
        s->released = 1; /* env rule 4: released when on_closed returns */
    }
out:
    s->in_deliver = 0;
    if (s->released)
        destroy(s);
    else if (has_events(s))
        arm(s);
}

/* ---- the overlay's stream ops ---------------------------------------------------------------- */

static void o_stream_set_cbs(void *obj, mesh_stream *st, const mesh_stream_cbs *cbs, void *ud)
{
    (void)obj;
    vs *s = VS(st);
    if (cbs)
        s->cbs = *cbs;
    else
        memset(&s->cbs, 0, sizeof s->cbs);
    s->ud = ud;
    s->adopted = 1;
    if (has_events(s))
        arm(s);
}

static int o_stream_write(void *obj, mesh_stream *st, const void *data, size_t len)
{
    (void)obj;
    vs *s = VS(st);
    if (s->ended || s->released)
        return MESH_ERR_CLOSED;
    if (len == 0)
        return MESH_OK;
    if (s->prov->write(s->pud, data, len) != MESH_OK)
        return MESH_ERR_CLOSED;
    /* Handed on at once (nothing pending): "everything written has left", as a driver says
     * after its socket took the bytes. (The provider may have ended the stream inside its
     * write: then it is not asked anything more.) */
    if (!s->ended && !s->connecting && s->prov->pending(s->pud) == 0) {
        s->ev_writable = 1;
        arm(s);
    }
    return MESH_OK;
}

static size_t o_stream_pending(void *obj, mesh_stream *st)
{
    (void)obj;
    vs *s = VS(st);
    return s->ended || s->released ? 0 : s->prov->pending(s->pud);
}

static int o_stream_addrs(void *obj, mesh_stream *st, mesh_addr *local, mesh_addr *remote)
{
    (void)obj;
    vs *s = VS(st);
    if (local)
        *local = s->local;
    if (remote)
        *remote = s->remote;
    return MESH_OK;
}

static void o_stream_close(void *obj, mesh_stream *st, int how)
{
    (void)obj;
    vs *s = VS(st);
    if (s->released)
        return;
    s->released = 1; /* first: reports the provider makes from inside close are ignored */
    if (!s->ended)
        s->prov->close(s->pud, how);
    if (!s->in_deliver)
        destroy(s);
}

/* ---- no listening, no connecting: a provider makes the streams ------------------------------- */

static mesh_listener *o_listen(void *obj, const mesh_addr *addr, mesh_accept_cb cb, void *ud,
                               int *err)
{
    (void)obj, (void)addr, (void)cb, (void)ud;
    if (err)
        *err = MESH_ERR_UNSUPPORTED;
    return NULL;
}

static int o_listener_addr(void *obj, mesh_listener *l, mesh_addr *out)
{
    (void)obj, (void)l, (void)out;
    return MESH_ERR_UNSUPPORTED;
}

static void o_listener_close(void *obj, mesh_listener *l)
{
    (void)obj, (void)l;
}

static mesh_stream *o_connect(void *obj, const mesh_addr *to, const mesh_stream_cbs *cbs, void *ud,
                              int *err)
{
    (void)obj, (void)to, (void)cbs, (void)ud;
    if (err)
        *err = MESH_ERR_UNSUPPORTED;
    return NULL;
}

/* ---- the base env's clock, randomness, log, timers and datagrams ----------------------------- */

#define BASE(obj) (&((mesh_vstream_env *)(obj))->base)

static mesh_time o_now(void *obj)
{
    return BASE(obj)->ops->now(BASE(obj)->obj);
}
static void o_random(void *obj, uint8_t *buf, size_t len)
{
    BASE(obj)->ops->random(BASE(obj)->obj, buf, len);
}
static void o_log(void *obj, int level, const char *msg)
{
    BASE(obj)->ops->log(BASE(obj)->obj, level, msg);
}
static mesh_timer *o_timer_new(void *obj, mesh_timer_cb cb, void *ud)
{
    return BASE(obj)->ops->timer_new(BASE(obj)->obj, cb, ud);
}
static void o_timer_set(void *obj, mesh_timer *t, mesh_time when)
{
    BASE(obj)->ops->timer_set(BASE(obj)->obj, t, when);
}
static void o_timer_stop(void *obj, mesh_timer *t)
{
    BASE(obj)->ops->timer_stop(BASE(obj)->obj, t);
}
static void o_timer_free(void *obj, mesh_timer *t)
{
    BASE(obj)->ops->timer_free(BASE(obj)->obj, t);
}
static mesh_dgram *o_dgram_bind(void *obj, const mesh_addr *addr, mesh_dgram_cb cb, void *ud,
                                int *err)
{
    return BASE(obj)->ops->dgram_bind(BASE(obj)->obj, addr, cb, ud, err);
}
static int o_dgram_addr(void *obj, mesh_dgram *d, mesh_addr *out)
{
    return BASE(obj)->ops->dgram_addr(BASE(obj)->obj, d, out);
}
static int o_dgram_send(void *obj, mesh_dgram *d, const mesh_addr *to, const void *data, size_t len)
{
    return BASE(obj)->ops->dgram_send(BASE(obj)->obj, d, to, data, len);
}
static void o_dgram_close(void *obj, mesh_dgram *d)
{
    BASE(obj)->ops->dgram_close(BASE(obj)->obj, d);
}

static const mesh_env_ops OVERLAY_OPS = {
    .now = o_now,
    .random = o_random,
    .log = o_log,
    .timer_new = o_timer_new,
    .timer_set = o_timer_set,
    .timer_stop = o_timer_stop,
    .timer_free = o_timer_free,
    .listen = o_listen,
    .listener_addr = o_listener_addr,
    .listener_close = o_listener_close,
    .connect = o_connect,
    .stream_set_cbs = o_stream_set_cbs,
    .stream_write = o_stream_write,
    .stream_reserve = NULL, /* no zero-copy: the provider copies on write */
    .stream_commit = NULL,
    .stream_pending = o_stream_pending,
    .stream_addrs = o_stream_addrs,
    .stream_close = o_stream_close,
    .dgram_bind = o_dgram_bind,
    .dgram_addr = o_dgram_addr,
    .dgram_send = o_dgram_send,
    .dgram_close = o_dgram_close,
    .mdns = NULL,
    .portmap = NULL,
};

/* ---- the overlay ----------------------------------------------------------------------------- */

int mesh_vstream_env_new(mesh_vstream_env **out, const mesh_env *base)
{
    if (!out || !base || !base->ops)
        return MESH_ERR_INVAL;
    mesh_vstream_env *v = calloc(1, sizeof *v);
    if (!v)
        return MESH_ERR_NOMEM;
    v->base = *base;
    *out = v;
    return MESH_OK;
}

void mesh_vstream_env_free(mesh_vstream_env *v)
{
    if (!v)
        return;
    while (v->streams)
        destroy(v->streams);
    free(v);
}

mesh_env mesh_vstream_env_env(mesh_vstream_env *v)
{
    return (mesh_env){&OVERLAY_OPS, v};
}

size_t mesh_vstream_env_count(const mesh_vstream_env *v)
{
    return v ? v->count : 0;
}

mesh_stream *mesh_vstream_open(mesh_vstream_env *v, const mesh_vstream_provider *prov, void *pud,
                               int connecting, const mesh_addr *local, const mesh_addr *remote,
                               const mesh_stream_cbs *cbs, void *ud, int *err)
{
    int dummy;
    if (!err)
        err = &dummy;
    if (!v || !prov || !prov->write || !prov->pending || !prov->close) {
        *err = MESH_ERR_INVAL;
        return NULL;
    }
    vs *s = calloc(1, sizeof *s);
    if (!s || !(s->timer = v->base.ops->timer_new(v->base.obj, deliver, s))) {
        free(s);
        *err = MESH_ERR_NOMEM;
        return NULL;
    }
    s->v = v;
    s->prov = prov;
    s->pud = pud;
    if (local)
        s->local = *local;
    if (remote)
        s->remote = *remote;
    if (connecting) {
        s->connecting = 1;
        s->adopted = 1;
        if (cbs)
            s->cbs = *cbs;
        s->ud = ud;
    }
    s->next = v->streams;
    if (v->streams)
        v->streams->prev = s;
    v->streams = s;
    v->count++;
    return MS(s);
}

/* ---- provider reports ------------------------------------------------------------------------ */

int mesh_vstream_push(mesh_stream *st, const uint8_t *data, size_t len)
{
    vs *s = VS(st);
    if (!s || s->ended || s->released || s->connecting)
        return MESH_ERR_STATE;
    if (len == 0)
        return MESH_OK;
    if (!data || len > SIZE_MAX / 2 - s->rx_len)
        return MESH_ERR_INVAL;
    if (s->rx_len + len > s->rx_cap) {
        size_t cap = s->rx_cap ? s->rx_cap : 4096;
        while (cap < s->rx_len + len)
            cap *= 2;
        uint8_t *nb = realloc(s->rx, cap);
        if (!nb)
            return MESH_ERR_NOMEM;
        s->rx = nb;
        s->rx_cap = cap;
    }
    memcpy(s->rx + s->rx_len, data, len);
    s->rx_len += len;
    arm(s);
    return MESH_OK;
}

void mesh_vstream_drained(mesh_stream *st)
{
    vs *s = VS(st);
    if (!s || s->ended || s->released || s->connecting)
        return;
    s->ev_writable = 1;
    arm(s);
}

void mesh_vstream_connected(mesh_stream *st)
{
    vs *s = VS(st);
    if (!s || !s->connecting || s->ended || s->released)
        return;
    s->connecting = 0;
    s->ev_connected = 1;
    arm(s);
}

void mesh_vstream_end(mesh_stream *st, int reason)
{
    vs *s = VS(st);
    if (!s || s->ended || s->released)
        return;
    s->ended = 1;
    s->end_reason = reason;
    arm(s);
}
