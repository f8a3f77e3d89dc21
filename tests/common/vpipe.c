/* vpipe.c — two virtual streams joined like a loopback connection (vpipe.h). */
#include "vpipe.h"

#include <stdlib.h>
#include <string.h>

#include "mesh_test.h"

typedef struct pend {
    mesh_vpipe *p;
    int i;
    mesh_stream *s; /* NULL once released by the consumer or ended by us */
    int opened, connected;
    mesh_test_buf out; /* written, not yet moved */
    int closed, how;   /* the consumer released it, how */
    int fin_done;      /* its close reached the peer */
    int closes;        /* provider close ops received */
    uint64_t moved;
    mesh_test_buf seen;
} pend;

struct mesh_vpipe {
    mesh_env base;
    mesh_timer *t;
    int armed;
    pend e[2];
    int flip_from;
    uint64_t flip_at;
    mesh_vpipe_arrive_fn arrive;
    void *arrive_ud;
    int record;
};

static void arm(mesh_vpipe *p)
{
    if (p->armed)
        return;
    p->armed = 1;
    p->base.ops->timer_set(p->base.obj, p->t, p->base.ops->now(p->base.obj));
}

static int pv_write(void *pud, const uint8_t *data, size_t len)
{
    pend *e = pud;
    mesh_test_buf_add(&e->out, data, len);
    arm(e->p);
    return MESH_OK;
}

static size_t pv_pending(void *pud)
{
    pend *e = pud;
    return e->out.len;
}

static void pv_close(void *pud, int how)
{
    pend *e = pud;
    e->closes++;
    e->s = NULL;
    e->closed = 1;
    e->how = how;
    if (how == MESH_CLOSE_ABORT)
        e->out.len = 0;
    arm(e->p);
}

static const mesh_vstream_provider PIPE_PROV = {pv_write, pv_pending, NULL, pv_close};

/* Move what side i wrote into its peer, then pass on i's close once nothing waits. */
static void move(mesh_vpipe *p, int i)
{
    pend *e = &p->e[i], *o = &p->e[1 - i];
    if (!e->opened || !e->connected || !o->opened)
        return;
    if (e->out.len) {
        uint64_t at = e->moved;
        if (p->flip_from == i && p->flip_at >= at && p->flip_at < at + e->out.len)
            e->out.b[p->flip_at - at] ^= 0x01;
        if (p->record)
            mesh_test_buf_add(&e->seen, e->out.b, e->out.len);
        if (o->s)
            (void)mesh_vstream_push(o->s, e->out.b, e->out.len);
        e->moved += e->out.len;
        e->out.len = 0;
        if (e->s)
            mesh_vstream_drained(e->s);
    }
    if (e->closed && !e->fin_done) {
        e->fin_done = 1;
        if (o->s)
            mesh_vstream_end(o->s, e->how == MESH_CLOSE_ABORT ? MESH_ERR_RESET : MESH_OK);
        o->s = NULL;
    }
}

static void on_timer(mesh_timer *t, void *ud)
{
    (void)t;
    mesh_vpipe *p = ud;
    p->armed = 0;
    if (p->arrive) {
        mesh_vpipe_arrive_fn fn = p->arrive;
        p->arrive = NULL;
        fn(p, p->arrive_ud);
    }
    move(p, 0);
    move(p, 1);
}

mesh_vpipe *mesh_vpipe_new(const mesh_env *base)
{
    mesh_vpipe *p = calloc(1, sizeof *p);
    if (!p)
        abort();
    p->base = *base;
    p->t = base->ops->timer_new(base->obj, on_timer, p);
    if (!p->t)
        abort();
    p->flip_from = -1;
    for (int i = 0; i < 2; i++) {
        p->e[i].p = p;
        p->e[i].i = i;
    }
    return p;
}

void mesh_vpipe_free(mesh_vpipe *p)
{
    if (!p)
        return;
    p->base.ops->timer_free(p->base.obj, p->t);
    for (int i = 0; i < 2; i++) {
        free(p->e[i].out.b);
        free(p->e[i].seen.b);
    }
    free(p);
}

mesh_stream *mesh_vpipe_open(mesh_vpipe *p, int side, mesh_vstream_env *v, int connecting,
                             const mesh_addr *local, const mesh_addr *remote,
                             const mesh_stream_cbs *cbs, void *ud)
{
    pend *e = &p->e[side];
    int err = 0;
    e->s = mesh_vstream_open(v, &PIPE_PROV, e, connecting, local, remote, cbs, ud, &err);
    if (!e->s)
        abort();
    e->opened = 1;
    e->connected = !connecting;
    arm(p);
    return e->s;
}

void mesh_vpipe_on_arrive(mesh_vpipe *p, mesh_vpipe_arrive_fn fn, void *ud)
{
    p->arrive = fn;
    p->arrive_ud = ud;
    arm(p);
}

void mesh_vpipe_connected(mesh_vpipe *p, int side)
{
    pend *e = &p->e[side];
    e->connected = 1;
    if (e->s)
        mesh_vstream_connected(e->s);
    arm(p);
}

void mesh_vpipe_end(mesh_vpipe *p, int side, int reason)
{
    pend *e = &p->e[side], *o = &p->e[1 - side];
    if (e->s)
        mesh_vstream_end(e->s, reason);
    e->s = NULL;
    e->closed = e->fin_done = 1;
    e->out.len = 0;
    if (o->s)
        mesh_vstream_end(o->s, MESH_ERR_RESET);
    o->s = NULL;
}

void mesh_vpipe_flip(mesh_vpipe *p, int from, uint64_t offset)
{
    p->flip_from = from;
    p->flip_at = offset;
}

uint64_t mesh_vpipe_moved(const mesh_vpipe *p, int from)
{
    return p->e[from].moved;
}

int mesh_vpipe_closes(const mesh_vpipe *p, int side)
{
    return p->e[side].closes;
}

void mesh_vpipe_record(mesh_vpipe *p)
{
    p->record = 1;
}

const mesh_test_buf *mesh_vpipe_seen(const mesh_vpipe *p, int from)
{
    return &p->e[from].seen;
}
