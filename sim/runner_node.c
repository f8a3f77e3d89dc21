/* runner_node.c — the life of a simulated node (see runner_int.h): its identity, start and
 * join, churn (down and restart), the messages it sends and receives, its lookups, and the
 * in-memory peer store it rejoins through. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meshara/meshara.h"
#include "sim/runner_int.h"

/* ---- identities and TLS (meshara.h): the runner's only use of them ------------------------ */

static mesh_time tls_env_now(void *obj)
{
    return sim_sched_now(((runner *)obj)->sched);
}
static void tls_env_random(void *obj, uint8_t *buf, size_t len)
{
    sim_rng_fill(&((runner *)obj)->tls_rng, buf, len);
}
static void tls_env_log(void *obj, int level, const char *msg)
{
    (void)obj, (void)level, (void)msg;
}
static const mesh_env_ops TLS_ENV_OPS = {
    .now = tls_env_now,
    .random = tls_env_random,
    .log = tls_env_log,
};

/* The scenario's TLS limits are the node's (sim_scenario_check enforces them). */
_Static_assert((int)SIM_SCN_MAX_ALPN <= (int)MESH_NODE_MAX_ALPN, "a group's ALPN list fits");
_Static_assert((int)SIM_SCN_MAX_SNI <= (int)MESH_NODE_MAX_SNI, "a group's SNI fits");
_Static_assert((int)SIM_SCN_PROFILE_WEB == (int)MESH_PROFILE_WEB &&
                   (int)SIM_SCN_PROFILE_SEED == (int)MESH_PROFILE_SEED,
               "a group's profile is the node's");

int rn_tls_new(runner *r)
{
    sim_rng_derive(&r->tls_rng, r->scn->seed, RN_STREAM_TLS);
    r->tls_env = (mesh_env){&TLS_ENV_OPS, r};
    return mesh_tls_lib_new(&r->tls_lib, &r->tls_env);
}

void rn_tls_free(runner *r)
{
    mesh_tls_lib_free(r->tls_lib);
    r->tls_lib = NULL;
}

int rn_node_identity_new(rn_node *n)
{
    return mesh_identity_generate(&n->id, &n->env);
}

static const uint8_t *node_key(const rn_node *n)
{
    return mesh_identity_pubkey(n->id);
}

static const uint8_t *node_id(const rn_node *n)
{
    return mesh_identity_node_id(n->id);
}

const char *rn_node_id_hex(const rn_node *n, char *buf)
{
    return mesh_hex_encode(node_id(n), MESH_NODE_ID_BYTES, buf);
}

void rn_node_release(rn_node *n)
{
    mesh_identity_free(n->id);
    n->id = NULL;
    sim_driver_free(n->drv);
    n->drv = NULL;
    for (size_t k = 0; k < n->nstore; k++)
        free(n->store[k].bytes);
    n->nstore = 0;
}

/* ---- messages ---------------------------------------------------------------------------- */

/* A message's first 8 bytes carry its id (little endian), so the receiver can record its
 * delivery and one-way latency; sizes below 8 are sent as 8. */
enum { MSG_ID_BYTES = 8 };

static void send_unlink(rn_send *sd)
{
    if (sd->prev)
        sd->prev->next = sd->next;
    else
        sd->r->sends = sd->next;
    if (sd->next)
        sd->next->prev = sd->prev;
}

static int msg_new(runner *r, uint32_t src, uint32_t dst, uint64_t size, uint64_t *id)
{
    if (r->nmsgs == r->capmsgs) {
        size_t nc = r->capmsgs ? r->capmsgs * 2 : 4096;
        rn_msg *m = realloc(r->msgs, nc * sizeof *m);
        mesh_time *l = realloc(r->lat, nc * sizeof *l);
        if (m)
            r->msgs = m;
        if (l)
            r->lat = l;
        if (!m || !l)
            return MESH_ERR_NOMEM;
        r->capmsgs = nc;
    }
    *id = r->nmsgs;
    int unreachable = !r->nodes[dst].node || rn_cut_off(r, src, dst);
    r->msgs[r->nmsgs++] =
        (rn_msg){src, dst, size, sim_sched_now(r->sched), RN_MSG_PENDING, (uint8_t)unreachable};
    return MESH_OK;
}

static void msg_fail(runner *r, uint64_t id, int reason)
{
    rn_msg *m = &r->msgs[id];
    if (m->state == RN_MSG_DELIVERED) { /* it arrived; only its acknowledgement was lost */
        r->acks_lost++;
        return;
    }
    if (m->state != RN_MSG_PENDING)
        return;
    m->state = RN_MSG_FAILED;
    r->msgs_failed++;
    char d[64];
    snprintf(d, sizeof d, "msg=%llu", (unsigned long long)id);
    rn_event(r, m->src, SIM_RES_EV_MSG_FAILED, m->dst, reason, d);
}

static rn_pair *pair_of(runner *r, uint32_t a, uint32_t b);

static void msg_delivered(runner *r, uint64_t id)
{
    rn_msg *m = &r->msgs[id];
    if (m->state == RN_MSG_DELIVERED)
        return;
    if (m->state == RN_MSG_FAILED) /* the sender gave up (timeout) before it arrived */
        r->msgs_failed--;
    m->state = RN_MSG_DELIVERED;
    rn_pair *pr = pair_of(r, m->src, m->dst);
    if (pr) {
        mesh_node_peer_stats ps = {0};
        const rn_node *dn = &r->nodes[m->dst];
        if (dn->node)
            (void)mesh_node_get_peer_stats(dn->node, node_key(&r->nodes[m->src]), &ps);
        pr->reached = 1;
        pr->relayed = ps.path == MESH_NODE_PATH_RELAYED;
    }
    mesh_time lat = sim_sched_now(r->sched) - m->sent;
    r->msgs_delivered++;
    r->bytes_delivered += m->size;
    r->lat[r->nlat++] = lat;
    char d[64];
    snprintf(d, sizeof d, "msg=%llu latency_ns=%llu", (unsigned long long)id,
             (unsigned long long)lat);
    rn_event(r, m->dst, SIM_RES_EV_MSG_DELIVERED, m->src, MESH_OK, d);
}

static void on_send_done(mesh_node *node, int result, void *ud)
{
    (void)node;
    rn_send *sd = ud;
    if (result != MESH_OK)
        msg_fail(sd->r, sd->id, result);
    send_unlink(sd);
    free(sd);
}

void rn_node_send(runner *r, rn_node *n, uint32_t dst, uint64_t size)
{
    uint64_t id;
    if (size < MSG_ID_BYTES)
        size = MSG_ID_BYTES;
    if (msg_new(r, n->idx, dst, size, &id) != MESH_OK) {
        r->fatal = MESH_ERR_NOMEM;
        sim_sched_stop(r->sched);
        return;
    }
    char d[64];
    snprintf(d, sizeof d, "msg=%llu size=%llu", (unsigned long long)id, (unsigned long long)size);
    rn_event(r, n->idx, SIM_RES_EV_MSG_SENT, dst, MESH_OK, d);
    (void)pair_of(r, n->idx, dst); /* tried */
    rn_send *sd = malloc(sizeof *sd);
    if (size > SIM_RUNNER_MAX_MSG || !sd) {
        free(sd);
        msg_fail(r, id, sd ? MESH_ERR_TOO_BIG : MESH_ERR_NOMEM);
        return;
    }
    *sd = (rn_send){r, id, NULL, r->sends};
    if (r->sends)
        r->sends->prev = sd;
    r->sends = sd;
    for (int i = 0; i < MSG_ID_BYTES; i++)
        r->zeros[i] = (uint8_t)(id >> (8 * i));
    int rc =
        mesh_node_send(n->node, node_key(&r->nodes[dst]), r->zeros, (size_t)size, on_send_done, sd);
    if (rc != MESH_OK) {
        send_unlink(sd);
        free(sd);
        msg_fail(r, id, rc);
    }
}

/* ---- node callbacks ------------------------------------------------------------------------ */

static void on_node_message(mesh_node *node, const uint8_t from[MESH_NODE_KEY_BYTES],
                            const uint8_t *data, size_t len, void *ud)
{
    (void)node, (void)from;
    rn_node *n = ud;
    runner *r = n->r;
    if (len < MSG_ID_BYTES)
        return;
    uint64_t id = 0;
    for (int i = 0; i < MSG_ID_BYTES; i++)
        id |= (uint64_t)data[i] << (8 * i);
    if (id < r->nmsgs && r->msgs[id].dst == n->idx)
        msg_delivered(r, id);
}

static int64_t node_of_key(const runner *r, const uint8_t key[MESH_NODE_KEY_BYTES])
{
    /* ids are the first 4 bytes of a sorted table would be faster; a run records few of
     * these (session changes), so a scan is fine */
    for (uint32_t i = 0; i < r->scn->node_count; i++)
        if (memcmp(node_key(&r->nodes[i]), key, MESH_NODE_KEY_BYTES) == 0)
            return i;
    return SIM_RES_NONE;
}

/* The pair of a and b (made on first use); NULL without memory. */
static rn_pair *pair_of(runner *r, uint32_t a, uint32_t b)
{
    if (a > b) {
        uint32_t t = a;
        a = b;
        b = t;
    }
    for (size_t i = r->npairs; i-- > 0;)
        if (r->pairs[i].a == a && r->pairs[i].b == b)
            return &r->pairs[i];
    if (r->npairs == r->cappairs) {
        size_t cap = r->cappairs ? 2 * r->cappairs : 64;
        rn_pair *p = realloc(r->pairs, cap * sizeof *p);
        if (!p)
            return NULL;
        r->pairs = p;
        r->cappairs = cap;
    }
    rn_pair *p = &r->pairs[r->npairs++];
    *p = (rn_pair){.a = a, .b = b};
    return p;
}

static void on_node_peer(mesh_node *node, const uint8_t key[MESH_NODE_KEY_BYTES], int connected,
                         int reason, void *ud)
{
    (void)node;
    rn_node *n = ud;
    runner *r = n->r;
    mesh_node_peer_stats ps = {0};
    if (connected && mesh_node_get_peer_stats(node, key, &ps) == MESH_OK)
        r->paths[ps.path]++;
    if (!r->rec)
        return;
    char d[32];
    snprintf(d, sizeof d, "path=%s", mesh_node_path_name(ps.path));
    rn_event(r, n->idx,
             connected
                 ? SIM_RES_EV_SESSION_ESTABLISHED
                 : (reason == MESH_OK ? SIM_RES_EV_SESSION_CLOSED : SIM_RES_EV_SESSION_FAILED),
             node_of_key(r, key), connected ? MESH_OK : reason, connected ? d : NULL);
}

static void lookup_fire(void *ctx, void *arg);

static void on_node_joined(mesh_node *node, int status, void *ud)
{
    (void)node;
    rn_node *n = ud;
    runner *r = n->r;
    if (status == MESH_OK) {
        r->joins_ok++;
        mesh_time *jt = realloc(r->join_took, (r->njoin + 1) * sizeof *jt);
        if (jt) {
            r->join_took = jt;
            r->join_took[r->njoin++] = sim_sched_now(r->sched) - n->started_at;
        }
    } else {
        r->joins_failed++;
    }
    n->joined = status == MESH_OK;
    rn_event(r, n->idx, SIM_RES_EV_NODE_UP, SIM_RES_NONE, status,
             status == MESH_OK ? "joined" : "join failed");
    if (n->joined && !n->lookup_armed) {
        n->lookup_armed = 1;
        sim_rng rng;
        sim_rng_derive(&rng, r->scn->seed, RN_STREAM_LOOKUP + n->idx);
        mesh_time at = sim_sched_now(r->sched) + SIM_RUNNER_LOOKUP_FIRST_S * MESH_NS_PER_S +
                       sim_rng_below(&rng, SIM_RUNNER_LOOKUP_EVERY_S * MESH_NS_PER_S);
        if (at < r->scn->duration)
            sim_sched_at(r->sched, at, SIM_EV_USER, n->idx, lookup_fire, r, n, NULL);
    }
}

/* The node's reachability changed: the runner records its port mapping's outcomes as nat
 * events and counts it reachable (lookups, nodes_reachable) at the address peers confirmed
 * by dial-back, not before. A mapping behind another NAT fails at the gateway (the driver's
 * MESH_ERR_UNREACHABLE: its external address is the carrier's inside) and is never
 * advertised. */
static void on_node_reach(mesh_node *node, void *ud)
{
    rn_node *n = ud;
    runner *r = n->r;
    mesh_node_stats st;
    mesh_node_get_stats(node, &st);
    char d[160], a[MESH_ADDR_STRLEN];
    int settled = st.portmap_state == MESH_NODE_PORTMAP_MAPPED ||
                  st.portmap_state == MESH_NODE_PORTMAP_FAILED; /* not while a request runs */
    if (settled && (st.portmap_state != n->pm_state || st.portmap_error != n->pm_error)) {
        n->pm_state = st.portmap_state;
        n->pm_error = st.portmap_error;
        if (st.portmap_state == MESH_NODE_PORTMAP_MAPPED) {
            snprintf(d, sizeof d, "port mapping: external %s",
                     mesh_addr_format(&st.portmap_external, a, sizeof a));
            rn_event(r, n->idx, SIM_RES_EV_NAT, SIM_RES_NONE, MESH_OK, d);
        } else if (st.portmap_state == MESH_NODE_PORTMAP_FAILED &&
                   st.portmap_error != MESH_ERR_UNSUPPORTED) { /* no gateway: nothing to say */
            rn_event(r, n->idx, SIM_RES_EV_NAT, SIM_RES_NONE, st.portmap_error,
                     st.portmap_error == MESH_ERR_UNREACHABLE
                         ? "port mapping behind another NAT (double NAT)"
                         : "port mapping refused");
        }
    }
    int reach = n->public_host || st.dialback_confirmed.family != MESH_AF_NONE;
    mesh_addr at = n->public_host ? n->outside : st.dialback_confirmed;
    if (reach == n->reachable && (!reach || mesh_addr_equal(&at, &n->public_addr)))
        return;
    n->reachable = reach;
    n->public_addr = reach ? at : n->outside;
    if (reach)
        snprintf(d, sizeof d, "reachable at %s (confirmed by dial-back)",
                 mesh_addr_format(&at, a, sizeof a));
    else
        snprintf(d, sizeof d, "not reachable any more");
    rn_event(r, n->idx, SIM_RES_EV_NAT, SIM_RES_NONE, MESH_OK, d);
}

static const mesh_node_cbs NODE_CBS = {
    .on_message = on_node_message,
    .on_peer = on_node_peer,
    .on_joined = on_node_joined,
    .on_reach = on_node_reach,
};

/* ---- lookups: every joined node looks a random live node up now and then ------------------ */

static void on_lookup_done(mesh_node *node, int status, const uint8_t *key, unsigned hops,
                           unsigned queries, void *ud)
{
    (void)node, (void)key;
    rn_node *n = ud;
    runner *r = n->r;
    n->lookup_pending = 0;
    r->lookups++;
    if (status == MESH_OK) {
        r->lookups_ok++;
        if (r->nhops == r->caphops) {
            size_t nc = r->caphops ? r->caphops * 2 : 1024;
            unsigned *h = realloc(r->hops, nc * sizeof *h);
            if (h) {
                r->hops = h;
                r->caphops = nc;
            }
        }
        if (r->nhops < r->caphops)
            r->hops[r->nhops++] = hops;
    }
    char d[64];
    snprintf(d, sizeof d, "hops=%u queries=%u", hops, queries);
    rn_event(r, n->idx, SIM_RES_EV_LOOKUP, n->lookup_target, status, d);
}

static void lookup_fire(void *ctx, void *arg)
{
    runner *r = ctx;
    rn_node *n = arg;
    mesh_time now = sim_sched_now(r->sched);
    if (n->online && n->node && n->joined && !n->lookup_pending && r->scn->node_count > 1) {
        /* a random other node that is up, has joined and can be reached (one behind a NAT
         * without a port mapping publishes no address, so there is nothing to find) */
        sim_rng rng;
        sim_rng_derive(&rng, r->scn->seed, RN_STREAM_LOOKUP + n->idx + (now << 20));
        for (int tries = 0; tries < 16; tries++) {
            uint32_t t = (uint32_t)sim_rng_below(&rng, r->scn->node_count);
            if (t == n->idx || !r->nodes[t].online || !r->nodes[t].joined || !r->nodes[t].reachable)
                continue;
            n->lookup_target = t;
            n->lookup_pending =
                mesh_node_lookup(n->node, node_id(&r->nodes[t]), on_lookup_done, n) == MESH_OK;
            break;
        }
    }
    mesh_time next = now + SIM_RUNNER_LOOKUP_EVERY_S * MESH_NS_PER_S;
    if (next < r->scn->duration)
        sim_sched_at(r->sched, next, SIM_EV_USER, n->idx, lookup_fire, r, n, NULL);
}

/* ---- the in-memory peer store -----------------------------------------------------------------
 */

static int store_load(void *obj, mesh_peer_store_each_fn each, void *ud)
{
    rn_node *n = obj;
    for (size_t i = 0; i < n->nstore; i++)
        each(ud, n->store[i].bytes, n->store[i].len);
    return MESH_OK;
}

static int store_save(void *obj, const uint8_t node_id[MESH_NODE_ID_BYTES], uint64_t seq,
                      const uint8_t *record, size_t len)
{
    rn_node *n = obj;
    size_t i = 0;
    while (i < n->nstore && memcmp(n->store[i].id, node_id, MESH_NODE_ID_BYTES) != 0)
        i++;
    if (i == n->nstore) {
        if (n->nstore == SIM_RUNNER_STORE_MAX)
            return MESH_ERR_LIMIT;
        n->nstore++;
        n->store[i].bytes = NULL;
    } else if (seq < n->store[i].seq) {
        return MESH_OK;
    }
    uint8_t *b = malloc(len ? len : 1);
    if (!b)
        return MESH_ERR_NOMEM;
    memcpy(b, record, len);
    free(n->store[i].bytes);
    n->store[i] = (rn_store_rec){.seq = seq, .bytes = b, .len = len};
    memcpy(n->store[i].id, node_id, MESH_NODE_ID_BYTES);
    return MESH_OK;
}

static const mesh_peer_store_ops STORE_OPS = {.load = store_load, .save = store_save};

/* ---- node life ----------------------------------------------------------------------------- */

/* Start (or restart after churn) node n's mesh_node. */
/* n's host name into buf (its group's host_name:), or NULL when it has none. */
static const char *node_host_name(const runner *r, const rn_node *n, char *buf, size_t cap)
{
    const sim_scn_group *g = &r->scn->groups[n->group];
    uint32_t k = (uint32_t)(n - &r->nodes[g->first_node]);
    return sim_scn_group_host_name(g, k, buf, cap) == MESH_OK && buf[0] ? buf : NULL;
}

static int node_start(runner *r, rn_node *n)
{
    const sim_scenario *s = r->scn;
    const sim_scn_group *g = &s->groups[n->group];
    mesh_node_cfg cfg = {0};
    cfg.identity = n->id;
    cfg.listen = mesh_addr_v4(0, MESH_RUNNER_NODE_PORT);
    /* our record: the host's public address if it has one. A node behind a NAT advertises
     * none at start (a private address would send every remote peer to a stranger with the
     * same address on its own LAN); the address peers confirm by dial-back (a port mapping,
     * a forward) joins its record later; its LAN neighbours find it by mDNS. */
    n->reachable = n->public_host;
    n->public_addr = n->outside;
    n->pm_state = n->pm_error = 0;
    if (n->reachable)
        cfg.advertised[cfg.n_advertised++] = n->public_addr;
    else
        cfg.advertise_none = 1;
    cfg.record_seq = 1 + sim_sched_now(r->sched) / MESH_NS_PER_S; /* grows across restarts */
    cfg.profile = g->profile;
    cfg.sni = g->tls_sni;
    char host[SIM_SCN_MAX_STRING + 16];
    cfg.host_name = node_host_name(r, n, host, sizeof host); /* copied by mesh_node_new */
    const char *alpn[SIM_SCN_MAX_ALPN + 1] = {0};
    if (g->alpn_count) {
        for (size_t a = 0; a < g->alpn_count && a < SIM_SCN_MAX_ALPN; a++)
            alpn[a] = g->alpn[a];
        cfg.alpn = alpn;
    }
    cfg.http2 = g->framing == SIM_SCN_FRAMING_HTTP2;
    cfg.tls_lib = r->tls_lib;
    char boot_names[MESH_NODE_MAX_BOOTSTRAP][SIM_SCN_MAX_STRING + 16];
    for (size_t i = 0; i < r->nboot && cfg.n_bootstrap < MESH_NODE_MAX_BOOTSTRAP; i++) {
        const rn_node *b = &r->nodes[r->boot[i]];
        if (b == n)
            continue;
        mesh_node_peer *p = &cfg.bootstrap[cfg.n_bootstrap++];
        p->addr = b->lan && b->lan == n->lan
                      ? mesh_addr_v4(sim_host_ip(b->host), MESH_RUNNER_NODE_PORT)
                      : b->public_addr;
        memcpy(p->key, node_key(b), MESH_NODE_KEY_BYTES);
        /* its name: the SNI of the first contact, before its record is known */
        p->host_name = node_host_name(r, b, boot_names[cfg.n_bootstrap - 1], sizeof boot_names[0]);
    }
    /* relays: every node of a relay_service group, each node starting at its own offset so
     * that reservations spread; the node itself decides whether it needs them */
    cfg.relay_service = g->relay_service;
    for (size_t i = 0; i < r->nrelays && cfg.n_relays < MESH_NODE_MAX_RELAYS; i++) {
        const rn_node *b = &r->nodes[r->relays[(n->idx + i) % r->nrelays]];
        if (b == n || g->relay_service)
            continue;
        mesh_node_peer *p = &cfg.relays[cfg.n_relays++];
        p->addr = b->lan && b->lan == n->lan
                      ? mesh_addr_v4(sim_host_ip(b->host), MESH_RUNNER_NODE_PORT)
                      : b->public_addr;
        memcpy(p->key, node_key(b), MESH_NODE_KEY_BYTES);
    }
    cfg.store = (mesh_peer_store){&STORE_OPS, n};
    cfg.mdns = g->mdns && n->lan;
    /* the core maps its listening port through the driver's service (the NAT model's UPnP /
     * NAT-PMP; none answers on the core) and advertises the mapping once a dial-back
     * confirmed it: on_node_reach learns that */
    cfg.no_port_mapping = 0;
    n->started_at = sim_sched_now(r->sched);
    int rc = mesh_node_new(&n->node, &n->env, &cfg, &NODE_CBS, n);
    if (rc == MESH_OK && (rc = mesh_node_start(n->node)) != MESH_OK) {
        mesh_node_free(n->node);
        n->node = NULL;
    }
    return rc;
}

void rn_node_join_ev(void *ctx, void *arg)
{
    runner *r = ctx;
    rn_node *n = arg;
    const sim_scn_group *g = &r->scn->groups[n->group];
    if (g->lan != SIM_SCN_INTERNET)
        n->nat = n->own_nat ? n->own_nat : r->lan_nats[g->lan];
    int rc = node_start(r, n);
    if (rc != MESH_OK) {
        rn_event(r, n->idx, SIM_RES_EV_NODE_UP, SIM_RES_NONE, rc, "node failed to start");
        return;
    }
    n->online = 1;
    char d[96], a[MESH_ADDR_STRLEN];
    snprintf(d, sizeof d, "started reachable=%d public=%s", n->reachable,
             mesh_addr_format(&n->public_addr, a, sizeof a));
    rn_event(r, n->idx, SIM_RES_EV_NODE_UP, SIM_RES_NONE, MESH_OK, d);
}

/* Add a node instance's stats to the run's totals before it goes away. */
void rn_stats_add(mesh_node_stats *t, const mesh_node_stats *s)
{
    t->connects += s->connects;
    t->connect_failures += s->connect_failures;
    t->accepted += s->accepted;
    t->evicted += s->evicted;
    t->key_mismatches += s->key_mismatches;
    t->duplicates_closed += s->duplicates_closed;
    t->records_rejected += s->records_rejected;
    t->mdns_found += s->mdns_found;
    t->punches += s->punches;
    t->sessions_punched += s->sessions_punched;
    t->punch_failures += s->punch_failures;
}

void rn_node_stop(runner *r, rn_node *n)
{
    if (!n->node)
        return;
    mesh_node_stats st;
    mesh_node_get_stats(n->node, &st);
    rn_stats_add(&r->gone, &st);
    mesh_node_free(n->node); /* no callbacks: sends in flight from it are lost, not failed */
    n->node = NULL;
    n->lookup_pending = 0;
}

void rn_node_down(runner *r, rn_node *n)
{
    if (!n->online)
        return;
    n->online = 0;
    n->joined = 0;
    r->node_downs++;
    sim_host_set_up(n->host, 0);
    rn_node_stop(r, n); /* the node's process is gone */
    rn_event(r, n->idx, SIM_RES_EV_NODE_DOWN, SIM_RES_NONE, MESH_OK, "churn");
}

void rn_node_up_ev(void *ctx, void *arg)
{
    runner *r = ctx;
    rn_node *n = arg;
    if (n->online)
        return;
    sim_host_set_up(n->host, 1);
    int rc = node_start(r, n); /* a restart: it rejoins through its peer store first */
    n->online = rc == MESH_OK;
    rn_event(r, n->idx, SIM_RES_EV_NODE_UP, SIM_RES_NONE, rc, "restarted after churn");
}
