/* mdns_msg.c — the simulator's mDNS message format: sim_mdns_msg_create / _consume (mdns.h),
 * the one encoder and decoder of it (fuzz_mdns drives both). */
#include <string.h>

#include "sim/mdns.h"

static int put_str(uint8_t *buf, size_t cap, size_t *off, const sim_mdns_str *s)
{
    if (!s->p || s->len == 0 || memchr(s->p, '\0', s->len))
        return MESH_ERR_INVAL;
    if (s->len > SIM_MDNS_STR_MAX)
        return MESH_ERR_TOO_BIG;
    if (cap - *off < 1 + s->len)
        return MESH_ERR_TOO_BIG;
    buf[(*off)++] = (uint8_t)s->len;
    memcpy(buf + *off, s->p, s->len);
    *off += s->len;
    return MESH_OK;
}

static int put_be(uint8_t *buf, size_t cap, size_t *off, uint32_t v, size_t n)
{
    if (cap - *off < n)
        return MESH_ERR_TOO_BIG;
    for (size_t i = 0; i < n; i++)
        buf[(*off)++] = (uint8_t)(v >> (8 * (n - 1 - i)));
    return MESH_OK;
}

int sim_mdns_msg_create(const sim_mdns_msg *m, uint8_t *buf, size_t cap, size_t *len)
{
    if (!m || !buf || !len)
        return MESH_ERR_INVAL;
    if (m->kind != SIM_MDNS_QUERY && m->kind != SIM_MDNS_PROBE && m->kind != SIM_MDNS_ANNOUNCE)
        return MESH_ERR_INVAL;
    if (m->ntxt > SIM_MDNS_MAX_TXT)
        return MESH_ERR_TOO_BIG;
    size_t off = 0;
    int rc = put_be(buf, cap, &off, SIM_MDNS_VERSION, 1);
    if (rc == MESH_OK)
        rc = put_be(buf, cap, &off, (uint32_t)m->kind, 1);
    if (rc == MESH_OK && m->kind != SIM_MDNS_QUERY)
        rc = put_str(buf, cap, &off, &m->name);
    if (rc == MESH_OK)
        rc = put_str(buf, cap, &off, &m->type);
    if (rc == MESH_OK && m->kind != SIM_MDNS_QUERY)
        rc = put_be(buf, cap, &off, m->port, 2);
    if (rc == MESH_OK && m->kind == SIM_MDNS_ANNOUNCE) {
        rc = put_be(buf, cap, &off, m->ttl_s, 4);
        if (rc == MESH_OK)
            rc = put_be(buf, cap, &off, (uint32_t)m->ntxt, 1);
        for (size_t i = 0; rc == MESH_OK && i < m->ntxt; i++)
            rc = put_str(buf, cap, &off, &m->txt[i]);
    }
    if (rc != MESH_OK)
        return rc;
    *len = off;
    return MESH_OK;
}

typedef struct reader {
    const uint8_t *p;
    size_t len, off;
} reader;

static int get_be(reader *r, size_t n, uint32_t *v)
{
    if (r->len - r->off < n)
        return MESH_ERR_TRUNCATED;
    *v = 0;
    for (size_t i = 0; i < n; i++)
        *v = *v << 8 | r->p[r->off++];
    return MESH_OK;
}

static int get_str(reader *r, sim_mdns_str *s)
{
    uint32_t n;
    int rc = get_be(r, 1, &n);
    if (rc != MESH_OK)
        return rc;
    if (n == 0)
        return MESH_ERR_MALFORMED;
    if (r->len - r->off < n)
        return MESH_ERR_TRUNCATED;
    s->p = (const char *)r->p + r->off;
    s->len = n;
    r->off += n;
    return memchr(s->p, '\0', n) ? MESH_ERR_MALFORMED : MESH_OK;
}

int sim_mdns_msg_consume(sim_mdns_msg *m, const uint8_t *data, size_t len)
{
    if (!m || (!data && len))
        return MESH_ERR_INVAL;
    memset(m, 0, sizeof *m);
    reader r = {data, len, 0};
    uint32_t v, kind;
    int rc = get_be(&r, 1, &v);
    if (rc != MESH_OK)
        return rc;
    if (v != SIM_MDNS_VERSION)
        return MESH_ERR_VERSION;
    if ((rc = get_be(&r, 1, &kind)) != MESH_OK)
        return rc;
    if (kind != SIM_MDNS_QUERY && kind != SIM_MDNS_PROBE && kind != SIM_MDNS_ANNOUNCE)
        return MESH_ERR_MALFORMED;
    m->kind = (int)kind;
    if (kind != SIM_MDNS_QUERY && (rc = get_str(&r, &m->name)) != MESH_OK)
        return rc;
    if ((rc = get_str(&r, &m->type)) != MESH_OK)
        return rc;
    if (kind != SIM_MDNS_QUERY) {
        if ((rc = get_be(&r, 2, &v)) != MESH_OK)
            return rc;
        m->port = (uint16_t)v;
    }
    if (kind == SIM_MDNS_ANNOUNCE) {
        if ((rc = get_be(&r, 4, &m->ttl_s)) != MESH_OK || (rc = get_be(&r, 1, &v)) != MESH_OK)
            return rc;
        if (v > SIM_MDNS_MAX_TXT)
            return MESH_ERR_TOO_BIG;
        m->ntxt = v;
        for (size_t i = 0; i < m->ntxt; i++)
            if ((rc = get_str(&r, &m->txt[i])) != MESH_OK)
                return rc;
    }
    return r.off == r.len ? MESH_OK : MESH_ERR_MALFORMED;
}
