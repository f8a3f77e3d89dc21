/* pool_conn.c — the pool's per-peer accessors and its counters (pool.h has the rules; the
 * objects are in pool_impl.h). What the node asks of a pooled peer between connects: its
 * session, keys, addresses, use, holds, the duplicate-message filter and the statistics.
 */
#include <string.h>

#include "core/pool_impl.h"

mesh_session *mesh_pool_session(const mesh_pool_conn *c)
{
    return c->active ? c->active->s : NULL;
}

const uint8_t *mesh_pool_conn_key(const mesh_pool_conn *c)
{
    return c->key;
}

const uint8_t *mesh_pool_conn_id(const mesh_pool_conn *c)
{
    return c->id;
}

void mesh_pool_set_addrs(mesh_pool_conn *c, const mesh_addr *addrs, size_t naddrs)
{
    if (naddrs > MESH_POOL_MAX_ADDRS)
        naddrs = MESH_POOL_MAX_ADDRS;
    memcpy(c->addrs, addrs, naddrs * sizeof *addrs);
    c->naddrs = naddrs;
    c->next_addr = 0;
}

void mesh_pool_touch(mesh_pool_conn *c, int sent)
{
    c->last_used = mesh_env_now(c->p->env);
    if (sent)
        c->msgs_sent++;
    else
        c->msgs_received++;
}

void mesh_pool_used(mesh_pool_conn *c)
{
    mesh_time now = mesh_env_now(c->p->env);
    if (c->protected_until > now)
        c->protected_until = now;
}

void mesh_pool_hold(mesh_pool_conn *c)
{
    c->holds++;
}

void mesh_pool_release(mesh_pool_conn *c)
{
    if (c->holds)
        c->holds--;
}

int mesh_pool_seen_msg(mesh_pool_conn *c, uint64_t id)
{
    for (size_t i = 0; i < c->nrecent; i++)
        if (c->recent[i] == id)
            return 1;
    c->recent[c->recent_pos] = id;
    c->recent_pos = (c->recent_pos + 1) % MESH_POOL_RECENT_IDS;
    if (c->nrecent < MESH_POOL_RECENT_IDS)
        c->nrecent++;
    return 0;
}

void mesh_pool_get_stats(const mesh_pool *p, mesh_pool_stats *out)
{
    *out = p->st;
    out->peers = p->nconns;
    out->connected = out->sessions = out->pinned = out->waiters = 0;
    for (size_t i = 0; i < p->nconns; i++) {
        const mesh_pool_conn *c = p->conns[i];
        out->connected += c->active != NULL;
        out->sessions += c->nsess;
        out->pinned += c->pinned;
        out->waiters += c->nwaiters;
    }
    for (const psess *ps = p->orphans; ps; ps = ps->next)
        out->sessions++;
}

void mesh_pool_conn_stats(const mesh_pool_conn *c, mesh_node_peer_stats *out)
{
    memset(out, 0, sizeof *out);
    out->connected = c->active != NULL;
    out->pinned = c->pinned;
    out->outbound = c->active && c->active->outbound;
    out->sessions = c->nsess;
    out->connects = c->connects;
    out->connect_failures = c->connect_failures;
    out->msgs_sent = c->msgs_sent;
    out->msgs_received = c->msgs_received;
    out->connected_at = c->up_at;
    out->last_used = c->was_up ? c->last_used : 0;
    if (c->active) {
        mesh_session_stats st;
        mesh_session_get_stats(c->active->s, &st);
        out->rtt = st.rtt_smoothed;
    }
}
