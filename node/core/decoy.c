/* decoy.c — the splice to a real web server (decoy.h): an upstream env stream, the bytes held
 * on each side until it is connected or engaged, and in h2 mode a filter over the first frames
 * of the upstream's output that takes out those the session already sent in its own name.
 */
#include "core/decoy.h"

#include <stdlib.h>
#include <string.h>

enum {
    H2_HDR = 9,
    H2_SETTINGS = 4,
    H2_WINDOW_UPDATE = 8,
    H2_ACK = 1,
    STRIP_MAX = 256, /* largest frame the filter holds to drop it (a SETTINGS of 42 entries) */
    PREFACE_LEN = 24,
};

/* The client's connection preface, then an empty SETTINGS (see up_connected). */
static const uint8_t PRIMER[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
#define PREFACE PRIMER

typedef struct buf {
    uint8_t *p;
    size_t len;
} buf;

struct mesh_decoy {
    mesh_env env;
    mesh_addr upstream;
    mesh_stream *up; /* NULL once closed or released */
    mesh_timer *timer;
    mesh_decoy_cbs cbs;
    void *ud;
    int h2;
    int primed;  /* h2: the preface went to the upstream in the client's stead */
    size_t skip; /* bytes of the client's own preface still to drop (the upstream has it) */
    int connected, engaged, spoke;
    unsigned gen;    /* bumped when the upstream connection is replaced (restart) */
    int depth, dead; /* inside our env callbacks; mesh_decoy_free called there (freed later) */
    int up_gone;     /* the upstream closed; reason in up_reason */
    int up_reason;
    buf pre;  /* client bytes waiting for the connection */
    buf held; /* upstream bytes waiting for the engagement */
    /* h2 output filter: what is still to be taken out, and the frame being read */
    int filtering;
    int strip_settings, strip_wu;
    unsigned strip_acks;
    uint8_t fb[H2_HDR + STRIP_MAX];
    size_t fb_len;
};

static int append(buf *b, const uint8_t *p, size_t n)
{
    if (n == 0)
        return MESH_OK;
    if (n > MESH_DECOY_MAX_HELD - b->len)
        return MESH_ERR_LIMIT;
    uint8_t *q = realloc(b->p, b->len + n);
    if (!q)
        return MESH_ERR_NOMEM;
    memcpy(q + b->len, p, n);
    b->p = q;
    b->len += n;
    return MESH_OK;
}

static void buf_free(buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = 0;
}

static void destroy(mesh_decoy *d)
{
    if (d->up)
        d->env.ops->stream_close(d->env.obj, d->up, MESH_CLOSE_GRACEFUL);
    if (d->timer)
        d->env.ops->timer_free(d->env.obj, d->timer);
    buf_free(&d->pre);
    buf_free(&d->held);
    free(d);
}

/* Re-entrancy as session.c's: the session may free the decoy inside any callback. */
static void enter(mesh_decoy *d)
{
    d->depth++;
}

static void leave(mesh_decoy *d)
{
    if (--d->depth == 0 && d->dead)
        destroy(d);
}

/* Upstream bytes that survive the filter: to the client, or held until the engagement. */
static void out(mesh_decoy *d, const uint8_t *p, size_t n)
{
    if (n == 0 || d->dead)
        return;
    if (d->engaged && d->held.len == 0) { /* (held bytes, due from the timer, go first) */
        d->cbs.on_data(d->ud, p, n);
        return;
    }
    if (append(&d->held, p, n) != MESH_OK && d->up) { /* it talks and talks: stop listening */
        d->env.ops->stream_close(d->env.obj, d->up, MESH_CLOSE_ABORT);
        d->up = NULL;
        d->up_gone = 1;
        d->up_reason = MESH_ERR_LIMIT;
    }
    if (!d->engaged && !d->spoke) {
        d->spoke = 1;
        if (d->cbs.on_spoke)
            d->cbs.on_spoke(d->ud);
    }
}

/* Is the frame whose header is h one the session already sent the client itself? */
static int strippable(const mesh_decoy *d, const uint8_t *h, size_t flen)
{
    int sid0 = (h[5] | h[6] | h[7] | h[8]) == 0;
    if (!sid0 || flen > STRIP_MAX)
        return 0;
    if (h[3] == H2_SETTINGS && !(h[4] & H2_ACK))
        return d->strip_settings;
    if (h[3] == H2_SETTINGS)
        return flen == 0 && d->strip_acks > 0;
    return h[3] == H2_WINDOW_UPDATE && flen == 4 && d->strip_wu;
}

static void filter(mesh_decoy *d, const uint8_t *p, size_t n)
{
    unsigned gen = d->gen; /* an engagement inside out() may replace the upstream: then the
                            * rest of these bytes are the old one's, for no one */
    while (d->filtering && n > 0 && !d->dead) {
        size_t want = H2_HDR;
        if (d->fb_len >= H2_HDR)
            want += (size_t)d->fb[0] << 16 | (size_t)d->fb[1] << 8 | d->fb[2];
        size_t take = want - d->fb_len < n ? want - d->fb_len : n;
        if (d->fb_len < H2_HDR || strippable(d, d->fb, want - H2_HDR)) {
            memcpy(d->fb + d->fb_len, p, take);
            d->fb_len += take;
            p += take;
            n -= take;
        }
        if (d->fb_len < H2_HDR)
            return;
        size_t flen = (size_t)d->fb[0] << 16 | (size_t)d->fb[1] << 8 | d->fb[2];
        if (!strippable(d, d->fb, flen)) { /* the rest is the upstream's own: pass it all */
            d->filtering = 0;
            out(d, d->fb, d->fb_len);
            d->fb_len = 0;
            if (d->gen != gen)
                return;
            break;
        }
        if (d->fb_len < H2_HDR + flen) {
            if (n == 0)
                return;
            continue; /* its payload is in the bytes left */
        }
        if (d->fb[3] == H2_WINDOW_UPDATE)
            d->strip_wu = 0;
        else if (d->fb[4] & H2_ACK)
            d->strip_acks--;
        else
            d->strip_settings = 0;
        d->fb_len = 0;
        if (d->engaged && !d->strip_settings && !d->strip_wu && !d->strip_acks)
            d->filtering = 0;
    }
    if (d->gen == gen)
        out(d, p, n);
}

/* ---- upstream stream callbacks -------------------------------------------------------- */

static int flush_pre(mesh_decoy *d)
{
    int rc = MESH_OK;
    if (d->pre.len && d->up && d->connected)
        rc = d->env.ops->stream_write(d->env.obj, d->up, d->pre.p, d->pre.len);
    if (d->connected)
        buf_free(&d->pre);
    return rc;
}

/* An h2c upstream (nginx) starts HTTP/2 only when bytes arrive, and one that times out
 * before any, or after the preface alone, says PROTOCOL_ERROR where nginx over TLS, started
 * at the handshake, says NO_ERROR at the same time (measured: docs/stealth.md). So the
 * preface and an empty SETTINGS go at once, in the client's stead, and the upstream stands
 * by idle as nginx does after a handshake; the client's own preface is not sent, its
 * SETTINGS are, and the upstream's ACK of ours is taken out with the others. */
static void up_connected(mesh_stream *st, void *ud)
{
    (void)st;
    mesh_decoy *d = ud; /* calls no callback of ours: no enter/leave */
    d->connected = 1;
    if (d->h2 && !d->engaged && !d->primed &&
        d->env.ops->stream_write(d->env.obj, d->up, PRIMER, sizeof PRIMER - 1) == MESH_OK) {
        d->primed = 1;
        d->strip_acks++;
    }
    (void)flush_pre(d); /* a failed write shows as on_closed */
}

static void up_data(mesh_stream *st, const uint8_t *data, size_t len, void *ud)
{
    (void)st;
    mesh_decoy *d = ud;
    enter(d);
    if (d->h2)
        filter(d, data, len);
    else
        out(d, data, len);
    leave(d);
}

static void up_writable(mesh_stream *st, void *ud)
{
    (void)st;
    (void)ud;
}

static void up_closed(mesh_stream *st, int reason, void *ud)
{
    (void)st;
    mesh_decoy *d = ud;
    d->up = NULL;
    d->up_gone = 1;
    d->up_reason = reason;
    enter(d);
    if (!d->engaged) {
        if (!d->spoke) {
            d->spoke = 1;
            if (d->cbs.on_spoke)
                d->cbs.on_spoke(d->ud);
        }
    } else if (d->held.len == 0 && d->cbs.on_closed) { /* else the timer tells, after them */
        d->cbs.on_closed(d->ud, reason);
    }
    leave(d);
}

static const mesh_stream_cbs UP_CBS = {up_connected, up_data, up_writable, up_closed};

/* After the engagement: what was held, then the upstream's end if it came already. */
static void on_timer(mesh_timer *t, void *ud)
{
    (void)t;
    mesh_decoy *d = ud;
    buf held = d->held;
    d->held.p = NULL;
    d->held.len = 0;
    enter(d);
    if (held.len)
        d->cbs.on_data(d->ud, held.p, held.len);
    free(held.p);
    if (!d->dead && d->up_gone && d->cbs.on_closed)
        d->cbs.on_closed(d->ud, d->up_reason);
    leave(d);
}

/* ---- API ---------------------------------------------------------------------------------- */

int mesh_decoy_new(mesh_decoy **out, const mesh_env *env, const mesh_addr *upstream, int h2,
                   const mesh_decoy_cbs *cbs, void *ud)
{
    if (!out || !env || !upstream || !cbs || !cbs->on_data)
        return MESH_ERR_INVAL;
    mesh_decoy *d = calloc(1, sizeof *d);
    if (!d)
        return MESH_ERR_NOMEM;
    d->env = *env;
    d->upstream = *upstream;
    d->cbs = *cbs;
    d->ud = ud;
    d->h2 = h2 != 0;
    d->filtering = d->h2;
    d->strip_settings = d->strip_wu = d->h2;
    int rc = MESH_ERR_NOMEM;
    d->timer = env->ops->timer_new(env->obj, on_timer, d);
    if (!d->timer)
        goto fail_d;
    rc = MESH_ERR_INVAL;
    d->up = env->ops->connect(env->obj, upstream, &UP_CBS, d, &rc);
    if (!d->up)
        goto fail_timer;
    *out = d;
    return MESH_OK;

fail_timer:
    env->ops->timer_free(env->obj, d->timer);
fail_d:
    free(d);
    return rc;
}

void mesh_decoy_free(mesh_decoy *d)
{
    if (!d || d->dead)
        return;
    if (d->depth == 0) {
        destroy(d);
        return;
    }
    /* inside one of our callbacks: the handles now (env rule 2), the memory on the way out */
    d->dead = 1;
    if (d->up)
        d->env.ops->stream_close(d->env.obj, d->up, MESH_CLOSE_GRACEFUL);
    d->up = NULL;
    d->env.ops->timer_free(d->env.obj, d->timer);
    d->timer = NULL;
}

void mesh_decoy_acked(mesh_decoy *d, unsigned n)
{
    if (d && !d->engaged)
        d->strip_acks += n;
}

/* A fresh upstream connection, for a client whose bytes do not start with the preface the
 * primed one was given (what it held or said is dropped: the client never asked for it). */
static int restart(mesh_decoy *d)
{
    if (d->up)
        d->env.ops->stream_close(d->env.obj, d->up, MESH_CLOSE_GRACEFUL);
    buf_free(&d->held);
    d->gen++;
    d->primed = d->connected = d->up_gone = 0;
    d->filtering = d->strip_settings = d->strip_wu = 1;
    d->strip_acks = 0;
    d->fb_len = 0;
    int rc = MESH_ERR_INVAL;
    d->up = d->env.ops->connect(d->env.obj, &d->upstream, &UP_CBS, d, &rc);
    return d->up ? MESH_OK : rc;
}

int mesh_decoy_engage(mesh_decoy *d, const uint8_t *first, size_t len)
{
    if (!d || (!first && len))
        return MESH_ERR_INVAL;
    if (d->engaged)
        return MESH_ERR_STATE;
    d->engaged = 1;
    if (d->primed) {
        size_t k = len < PREFACE_LEN ? len : PREFACE_LEN;
        if (k == 0 || memcmp(first, PREFACE, k) == 0) {
            first += k; /* the upstream has it; the rest of it may follow */
            len -= k;
            d->skip = PREFACE_LEN - k;
        } else {
            int rc = restart(d); /* no preface: the upstream must see what the client sent */
            if (rc != MESH_OK)
                return rc;
        }
    }
    if (d->filtering && !d->strip_settings && !d->strip_wu && !d->strip_acks)
        d->filtering = 0;
    if (d->held.len || d->up_gone)
        d->env.ops->timer_set(d->env.obj, d->timer, mesh_env_now(&d->env));
    return mesh_decoy_write(d, first, len);
}

int mesh_decoy_write(mesh_decoy *d, const uint8_t *data, size_t len)
{
    if (!d || (!data && len))
        return MESH_ERR_INVAL;
    if (!d->engaged)
        return MESH_ERR_STATE;
    if (!d->up)
        return MESH_ERR_CLOSED;
    size_t k = d->skip < len ? d->skip : len;
    data += k;
    len -= k;
    d->skip -= k;
    if (len == 0)
        return MESH_OK;
    if (!d->connected)
        return append(&d->pre, data, len);
    if (d->env.ops->stream_pending(d->env.obj, d->up) > MESH_DECOY_MAX_PENDING)
        return MESH_ERR_LIMIT;
    return d->env.ops->stream_write(d->env.obj, d->up, data, len);
}
