/* real/driver_out.c — stream output: record-sized writes go through a pool of blocks handed
 * to the output evbuffer by reference (see out_block in driver_int.h), smaller ones are copied
 * into libevent's chains; stream_reserve/commit let a sender seal straight into a block. */
#include "real/driver_int.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

out_pool *real_out_pool_new(void)
{
    out_pool *p = calloc(1, sizeof *p);
    if (p) {
        p->refs = 1;
        p->alive = 1;
    }
    return p;
}

static void real_out_pool_unref(out_pool *p)
{
    if (--p->refs == 0)
        free(p);
}

/* evbuffer cleanup of a referenced block: back to the pool (or freed). */
static void out_block_done(const void *data, size_t len, void *extra)
{
    (void)data;
    (void)len;
    out_block *b = extra;
    out_pool *p = b->pool;
    if (p->alive && p->nfree < REAL_OUT_POOL_MAX) {
        b->next = p->free;
        p->free = b;
        p->nfree++;
    } else {
        free(b);
    }
    real_out_pool_unref(p);
}

/* A block from the pool (or a new one), NULL without memory. */
static out_block *out_get(out_pool *p)
{
    out_block *b = p->free;
    if (b) {
        p->free = b->next;
        p->nfree--;
    } else if (!(b = malloc(sizeof *b))) {
        return NULL;
    }
    b->pool = p;
    return b;
}

/* A block that never went out: back to the pool. */
void real_out_put(out_pool *p, out_block *b)
{
    p->refs++;
    out_block_done(b->data, 0, b);
}

/* Hand len bytes of b to out by reference. 0, or -1 (b is freed). */
static int out_ref(out_pool *p, struct evbuffer *out, out_block *b, size_t len)
{
    if (evbuffer_add_reference(out, b->data, len, out_block_done, b) != 0) {
        free(b); /* libevent did not take it: no cleanup will come */
        return -1;
    }
    p->refs++;
    return 0;
}

int real_stream_write(void *obj, mesh_stream *s, const void *data, size_t len)
{
    mesh_real *r = obj;
    if (!s || (!data && len > 0))
        return MESH_ERR_INVAL;
    if (s->released || s->peer_eof)
        return MESH_ERR_CLOSED;
    if (len == 0)
        return MESH_OK;
    /* Both only append (copying) and schedule the socket write for the loop. Record-sized
     * writes are copied into a pool block, smaller ones into libevent's chains. */
    int rc;
    if (len >= REAL_OUT_BLOCK_MIN && len <= REAL_OUT_BLOCK) {
        out_block *b = out_get(r->out);
        if (b)
            memcpy(b->data, data, len);
        rc = b ? out_ref(r->out, bufferevent_get_output(s->bev), b, len) : -1;
    } else {
        rc = bufferevent_write(s->bev, data, len);
    }
    if (rc != 0)
        return MESH_ERR_NOMEM;
    s->want_writable = 1;
    return MESH_OK;
}

/* Room in a pool block, for record-sized writes only (smaller ones are cheaper copied). */
uint8_t *real_stream_reserve(void *obj, mesh_stream *s, size_t len)
{
    mesh_real *r = obj;
    if (!s || s->released || s->peer_eof || r->reserved || len < REAL_OUT_BLOCK_MIN ||
        len > REAL_OUT_BLOCK)
        return NULL;
    if (!(r->reserved = out_get(r->out)))
        return NULL;
    r->reserved_len = len;
    r->reserved_for = s;
    return r->reserved->data;
}

int real_stream_commit(void *obj, mesh_stream *s, size_t len)
{
    mesh_real *r = obj;
    out_block *b = r->reserved;
    if (!b || s != r->reserved_for || len > r->reserved_len)
        return MESH_ERR_INVAL; /* the reservation stays: a caller bug, not lost memory */
    r->reserved = NULL;
    r->reserved_for = NULL;
    if (len == 0 || s->released || s->peer_eof) {
        real_out_put(r->out, b);
        return len == 0 ? MESH_OK : MESH_ERR_CLOSED;
    }
    if (out_ref(r->out, bufferevent_get_output(s->bev), b, len) != 0)
        return MESH_ERR_NOMEM;
    s->want_writable = 1;
    return MESH_OK;
}

void real_out_pool_close(mesh_real *r)
{
    out_pool *p = r->out;
    if (r->reserved)
        real_out_put(p, r->reserved);
    r->reserved = NULL;
    while (p->free) {
        out_block *b = p->free;
        p->free = b->next;
        free(b);
    }
    p->nfree = 0;
    p->alive = 0;
    real_out_pool_unref(p);
    r->out = NULL;
}
