/* runner.c — build a world from a scenario, run it, record it (see runner.h). */
#include "sim/runner.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "meshara/meshara.h"
#include "sim/censor.h"
#include "sim/driver.h"
#include "sim/https_bg.h"
#include "sim/nat.h"
#include "sim/results.h"

/* Address plan (host order). Public hosts and LAN gateways get addresses from their own /8s;
 * private LANs number their hosts inside 10.0.0.0/8 (LANs may reuse them: scopes differ). */
#define ADDR_PUBLIC_HOSTS SIM_IP4(11, 0, 0, 1)
#define ADDR_LAN_PUBLIC SIM_IP4(12, 0, 0, 1)
#define ADDR_BG_HOSTS SIM_IP4(13, 0, 0, 1)
#define ADDR_PRIVATE SIM_IP4(10, 0, 0, 2)

/* Random stream ids of the runner (sim_rng_derive(seed, id)). */
#define RN_STREAM (SIM_RNG_STREAM_USER + (0x52554eULL << 36)) /* "RUN" */
#define RN_STREAM_TRAFFIC (RN_STREAM + (1ULL << 32))
#define RN_STREAM_CHURN (RN_STREAM + (2ULL << 32))
#define RN_STREAM_LATENCY (RN_STREAM + (3ULL << 32))
#define RN_STREAM_TLS (RN_STREAM + (4ULL << 32))
#define RN_STREAM_LOOKUP (RN_STREAM + (5ULL << 32))

enum { MSG_PENDING = 0, MSG_DELIVERED = 1, MSG_FAILED = 2 };

typedef struct runner runner;
typedef struct rn_node rn_node;

typedef struct rn_msg {
    uint32_t src, dst;
    uint64_t size;
    mesh_time sent;
    uint8_t state;
} rn_msg;

/* A node's peer store, in memory: the signed records it saved, so a node back from churn
 * rejoins through them (as a real node does through its SQLite store). */
typedef struct rn_store_rec {
    uint8_t id[MESH_NODE_ID_BYTES];
    uint64_t seq;
    uint8_t *bytes;
    size_t len;
} rn_store_rec;

struct rn_node {
    runner *r;
    uint32_t idx;
    size_t group;
    sim_host *host;
    sim_lan *lan;          /* the LAN the host sits on, or NULL (on the core) */
    sim_nat *nat;          /* the NAT in front of it, if any */
    mesh_addr public_addr; /* how nodes outside its LAN reach it (if at all) */
    int reachable;         /* 0: behind a NAT with no port mapping */
    sim_driver *drv;
    mesh_env env;
    mesh_identity *id;
    mesh_node *node; /* NULL before its join and while down */
    sim_link_cfg link;
    int joined, online, lookup_armed;
    int lookup_pending; /* one lookup at a time: its target below */
    uint32_t lookup_target;
    mesh_time started_at; /* when its current mesh_node started */
    rn_store_rec store[SIM_RUNNER_STORE_MAX];
    size_t nstore;
};

typedef struct rn_traffic_src {
    runner *r;
    size_t pattern;
    uint32_t node;
    sim_rng rng;
} rn_traffic_src;

typedef struct rn_partition {
    runner *r;
    int active;
    uint32_t *ips; /* sorted member addresses */
    size_t nips;
} rn_partition;

struct runner {
    const sim_scenario *scn;
    const sim_run_opts *opts;
    sim_world *w;
    sim_sched *sched;
    sim_net *net;
    sim_lan **lans;
    sim_link_cfg *lan_links;
    sim_nat **lan_nats;
    size_t *lan_region_of_id; /* sim LAN id -> region (for the matrix model) */
    size_t nlan_ids;
    size_t *host_region_of_id;
    size_t nhost_ids;
    sim_censor **censors;
    rn_partition **parts;
    size_t nparts;
    rn_node *nodes;
    /* background HTTPS: one server on the core, one client behind each censor target */
    sim_host *bg_server_host;
    sim_driver *bg_server_drv;
    sim_https_server *bg_server;
    sim_driver **bg_drvs;
    sim_https_client **bg_clients;
    size_t nbg;
    rn_traffic_src *srcs;
    size_t nsrcs;
    rn_msg *msgs;
    size_t nmsgs, capmsgs;
    mesh_time *lat; /* delivery latencies */
    size_t nlat;
    uint8_t *zeros; /* payload source for messages */
    sim_results *rec;
    /* one OpenSSL library context for every node of the world (tls.h: a process holds only
     * about 500), whose randomness is the world's own stream */
    sim_rng tls_rng;
    mesh_env tls_env;
    mesh_tls_lib *tls_lib;
    uint32_t next_public, next_lan_public;
    /* counters */
    uint64_t msgs_failed, msgs_delivered, bytes_delivered, acks_lost;
    uint64_t node_downs, joins_ok, joins_failed;
    uint64_t lookups, lookups_ok;
    struct rn_send *sends; /* sends not completed yet */
    mesh_time *join_took;  /* start to on_joined(MESH_OK), per successful join */
    size_t njoin;
    unsigned *hops; /* of successful lookups */
    size_t nhops, caphops;
    mesh_node_stats gone; /* stats of node instances freed by churn, summed */
    uint32_t *boot;       /* bootstrap-role nodes */
    size_t nboot;
    int fatal; /* a setup step failed inside an event: stop */
    char *err;
    size_t errlen;
};

/* ---- recording ------------------------------------------------------------------------- */

/* One events row; a failure code goes first in the detail as reason=MESH_ERR_... */
static void rec_event(runner *r, int64_t node, const char *kind, int64_t peer, int code,
                      const char *detail)
{
    if (!r->rec)
        return;
    mesh_time now = sim_sched_now(r->sched);
    if (code != MESH_OK)
        sim_results_eventf(r->rec, now, node, kind, peer, "reason=%s%s%s", mesh_errname(code),
                           detail ? " " : "", detail ? detail : "");
    else
        sim_results_event(r->rec, now, node, kind, peer, detail);
}

/* ---- the world's TLS randomness ------------------------------------------------------------ */

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

/* ---- latency of the core --------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static size_t region_of_attach(const runner *r, uint64_t attach)
{
    if (attach & SIM_NET_ATTACH_HOST) {
        uint64_t h = attach & ~SIM_NET_ATTACH_HOST;
        return h < r->nhost_ids ? r->host_region_of_id[h] : SIM_SCN_NO_REGION;
    }
    return attach < r->nlan_ids ? r->lan_region_of_id[attach] : SIM_SCN_NO_REGION;
}

/* A pure function of (seed, the unordered pair): the same latency both ways, every packet. */
static mesh_time core_latency(void *ud, uint64_t from, uint64_t to)
{
    const runner *r = ud;
    const sim_scn_core *c = &r->scn->core;
    if (c->model == SIM_SCN_LAT_UNIFORM) {
        uint64_t a = from < to ? from : to, b = from < to ? to : from;
        uint64_t h = mix64(mix64(r->scn->seed ^ RN_STREAM_LATENCY) ^ mix64(a) ^ (b * 31));
        return c->lat_min + h % (c->lat_max - c->lat_min + 1);
    }
    size_t ra = region_of_attach(r, from), rb = region_of_attach(r, to);
    if (ra == SIM_SCN_NO_REGION || rb == SIM_SCN_NO_REGION)
        return c->latency;
    return c->matrix[ra * c->region_count + rb];
}

/* ---- building the network -------------------------------------------------------------- */

static sim_link_cfg link_of(const sim_scn_link *l)
{
    sim_link_cfg c = {0};
    c.latency = l->latency;
    c.jitter = l->jitter;
    c.rate_bps = l->bandwidth_bps;
    c.queue_bytes = (uint32_t)(l->queue_bytes > UINT32_MAX ? UINT32_MAX : l->queue_bytes);
    c.loss = l->loss;
    return c;
}

/* Apply the fields a link change names onto a current configuration. */
static void link_merge(sim_link_cfg *c, const sim_scn_link *l)
{
    if (l->set & SIM_SCN_LINK_LATENCY)
        c->latency = l->latency;
    if (l->set & SIM_SCN_LINK_JITTER)
        c->jitter = l->jitter;
    if (l->set & SIM_SCN_LINK_BANDWIDTH)
        c->rate_bps = l->bandwidth_bps;
    if (l->set & SIM_SCN_LINK_QUEUE)
        c->queue_bytes = (uint32_t)(l->queue_bytes > UINT32_MAX ? UINT32_MAX : l->queue_bytes);
    if (l->set & SIM_SCN_LINK_LOSS)
        c->loss = l->loss;
}

/* NAT decisions worth an events row: inbound refused, hairpin refused, table full, port
 * mappings granted (per-packet passes and new mappings would drown the table). */
#define RN_NAT_OBSERVE                                                                             \
    ((1u << SIM_NAT_EV_IN_NO_MAPPING) | (1u << SIM_NAT_EV_IN_FILTERED) |                           \
     (1u << SIM_NAT_EV_IN_RST) | (1u << SIM_NAT_EV_HAIRPIN_DROP) | (1u << SIM_NAT_EV_LIMIT_DROP) | \
     (1u << SIM_NAT_EV_PORTMAP_ADD))

static void on_nat_event(void *ud, const sim_nat_event *ev)
{
    runner *r = ud;
    static const char *const names[SIM_NAT_EV_KINDS] = {
        [SIM_NAT_EV_IN_NO_MAPPING] = "inbound_no_mapping",
        [SIM_NAT_EV_IN_FILTERED] = "inbound_filtered",
        [SIM_NAT_EV_IN_RST] = "inbound_rst",
        [SIM_NAT_EV_HAIRPIN_DROP] = "hairpin_drop",
        [SIM_NAT_EV_LIMIT_DROP] = "limit_drop",
        [SIM_NAT_EV_PORTMAP_ADD] = "portmap_add",
    };
    const char *name =
        ev->kind >= 0 && ev->kind < SIM_NAT_EV_KINDS && names[ev->kind] ? names[ev->kind] : "other";
    char src[MESH_ADDR_STRLEN], dst[MESH_ADDR_STRLEN], in[MESH_ADDR_STRLEN], ex[MESH_ADDR_STRLEN],
        d[320];
    snprintf(d, sizeof d, "%s src=%s dst=%s internal=%s external=%s", name,
             mesh_addr_format(&ev->src, src, sizeof src),
             mesh_addr_format(&ev->dst, dst, sizeof dst),
             mesh_addr_format(&ev->internal, in, sizeof in),
             mesh_addr_format(&ev->external, ex, sizeof ex));
    rec_event(r, -1, SIM_RES_EV_NAT, -1, MESH_OK, d);
}

static sim_nat_cfg nat_cfg_of(const sim_scn_nat *n)
{
    sim_nat_cfg c = {0};
    c.mapping = (uint8_t)n->mapping;
    c.filtering = (uint8_t)n->filtering;
    c.port_alloc = n->port_preserve ? SIM_NAT_PORT_PRESERVE : SIM_NAT_PORT_RANDOM;
    c.hairpin = n->hairpin;
    c.portmap = n->upnp;
    c.udp_timeout = n->udp_timeout;
    c.tcp_timeout = n->tcp_timeout;
    return c;
}

static int fail(runner *r, int rc, const char *fmt, const char *what)
{
    snprintf(r->err, r->errlen, fmt, what, mesh_strerror(rc));
    return rc;
}

static int build_lans(runner *r)
{
    const sim_scenario *s = r->scn;
    size_t n = s->lan_count;
    r->lans = calloc(n ? n : 1, sizeof *r->lans);
    r->lan_links = calloc(n ? n : 1, sizeof *r->lan_links);
    r->lan_nats = calloc(n ? n : 1, sizeof *r->lan_nats);
    if (!r->lans || !r->lan_links || !r->lan_nats)
        return MESH_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const sim_scn_lan *l = &s->lans[i];
        sim_lan_cfg c = {0};
        c.name = l->name;
        c.up = c.down = r->lan_links[i] = link_of(&l->link);
        c.is_private = l->is_private;
        c.public_ip = r->next_lan_public++;
        int rc = sim_net_add_lan(r->net, &c, &r->lans[i]);
        if (rc != MESH_OK)
            return fail(r, rc, "LAN %s: %s", l->name);
    }
    return MESH_OK;
}

/* NATs go on after the censors, so a censor on a LAN sees its hosts' own addresses. */
static int build_lan_nats(runner *r)
{
    const sim_scenario *s = r->scn;
    for (size_t i = 0; i < s->lan_count; i++) {
        const sim_scn_lan *l = &s->lans[i];
        if (!l->nat.present)
            continue;
        sim_nat_cfg c = nat_cfg_of(&l->nat);
        int rc = sim_nat_new(&r->lan_nats[i], r->net, r->lans[i], &c);
        if (rc != MESH_OK)
            return fail(r, rc, "NAT of LAN %s: %s", l->name);
        sim_nat_set_observer(r->lan_nats[i], on_nat_event, r, RN_NAT_OBSERVE);
    }
    return MESH_OK;
}

static int grow_regions(size_t **arr, size_t *n, size_t need)
{
    if (need <= *n)
        return MESH_OK;
    size_t nn = *n ? *n : 64;
    while (nn < need)
        nn *= 2;
    size_t *a = realloc(*arr, nn * sizeof *a);
    if (!a)
        return MESH_ERR_NOMEM;
    for (size_t i = *n; i < nn; i++)
        a[i] = SIM_SCN_NO_REGION;
    *arr = a;
    *n = nn;
    return MESH_OK;
}

static int build_nodes(runner *r)
{
    const sim_scenario *s = r->scn;
    for (size_t g = 0; g < s->group_count; g++) {
        const sim_scn_group *gr = &s->groups[g];
        if (gr->nat.present) { /* sim/net.h: one NAT level per LAN */
            snprintf(r->err, r->errlen,
                     "%s:%u:%u: group %s: a NAT per node inside a LAN (NAT444) is not modelled "
                     "yet (hint: put the NAT on the LAN)",
                     gr->loc.origin, gr->loc.line, gr->loc.col, gr->name);
            return MESH_ERR_UNSUPPORTED;
        }
    }
    r->nodes = calloc(s->node_count ? s->node_count : 1, sizeof *r->nodes);
    r->boot = calloc(s->node_count ? s->node_count : 1, sizeof *r->boot);
    if (!r->nodes || !r->boot)
        return MESH_ERR_NOMEM;
    uint32_t *lan_next = calloc(s->lan_count ? s->lan_count : 1, sizeof *lan_next);
    if (!lan_next)
        return MESH_ERR_NOMEM;
    int rc = MESH_OK;
    for (size_t g = 0; g < s->group_count && rc == MESH_OK; g++) {
        const sim_scn_group *gr = &s->groups[g];
        for (uint32_t k = 0; k < gr->count && rc == MESH_OK; k++) {
            rn_node *n = &r->nodes[gr->first_node + k];
            n->r = r;
            n->idx = gr->first_node + k;
            n->group = g;
            n->link = link_of(&gr->link);
            char name[SIM_SCN_MAX_NAME + 16];
            snprintf(name, sizeof name, "%s-%u", gr->name, k);
            sim_host_cfg hc = {0};
            hc.name = name;
            hc.up = hc.down = n->link;
            if (gr->lan != SIM_SCN_INTERNET) {
                n->lan = r->lans[gr->lan]; /* its NAT (lan_nats) comes later, at join */
                hc.lan = n->lan;
                hc.ip = sim_lan_is_private(n->lan) ? ADDR_PRIVATE + lan_next[gr->lan]++
                                                   : r->next_public++;
            } else {
                hc.ip = r->next_public++;
            }
            rc = sim_net_add_host(r->net, &hc, &n->host);
            if (rc != MESH_OK)
                break;
            if ((rc = grow_regions(&r->host_region_of_id, &r->nhost_ids,
                                   sim_host_id(n->host) + 1)) != MESH_OK)
                break;
            r->host_region_of_id[sim_host_id(n->host)] = gr->region;
            n->public_addr =
                mesh_addr_v4(n->lan && sim_lan_is_private(n->lan) ? sim_lan_public_ip(n->lan)
                                                                  : sim_host_ip(n->host),
                             MESH_RUNNER_NODE_PORT);
            n->reachable = !(n->lan && sim_lan_is_private(n->lan));
            if ((rc = sim_driver_new(&n->drv, r->w, n->host)) != MESH_OK)
                break;
            n->env = sim_driver_env(n->drv);
            if ((rc = mesh_identity_generate(&n->id, &n->env)) != MESH_OK)
                break;
            if (gr->mdns && n->lan && (rc = sim_driver_enable_mdns(n->drv)) != MESH_OK)
                break;
            if (gr->role == SIM_SCN_ROLE_BOOTSTRAP)
                r->boot[r->nboot++] = n->idx;
        }
        if (rc != MESH_OK)
            snprintf(r->err, r->errlen, "group %s: node setup failed: %s", gr->name,
                     mesh_strerror(rc));
    }
    /* LAN regions */
    for (size_t i = 0; i < s->lan_count && rc == MESH_OK; i++) {
        rc = grow_regions(&r->lan_region_of_id, &r->nlan_ids, sim_lan_id(r->lans[i]) + 1);
        if (rc == MESH_OK)
            r->lan_region_of_id[sim_lan_id(r->lans[i])] = s->lans[i].region;
    }
    free(lan_next);
    return rc;
}

/* ---- messages ---------------------------------------------------------------------------- */

/* A message's first 8 bytes carry its id (little endian), so the receiver can record its
 * delivery and one-way latency; sizes below 8 are sent as 8. */
enum { MSG_ID_BYTES = 8 };

/* A send's completion context. Linked into the runner's list so the ones a node never
 * completes (mesh_node_free makes no callbacks: churn, the end of the run) are freed too. */
typedef struct rn_send {
    runner *r;
    uint64_t id;
    struct rn_send *prev, *next;
} rn_send;

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
    r->msgs[r->nmsgs++] = (rn_msg){src, dst, size, sim_sched_now(r->sched), MSG_PENDING};
    return MESH_OK;
}

static void msg_fail(runner *r, uint64_t id, int reason)
{
    rn_msg *m = &r->msgs[id];
    if (m->state == MSG_DELIVERED) { /* it arrived; only its acknowledgement was lost */
        r->acks_lost++;
        return;
    }
    if (m->state != MSG_PENDING)
        return;
    m->state = MSG_FAILED;
    r->msgs_failed++;
    char d[64];
    snprintf(d, sizeof d, "msg=%llu", (unsigned long long)id);
    rec_event(r, m->src, SIM_RES_EV_MSG_FAILED, m->dst, reason, d);
}

static void msg_delivered(runner *r, uint64_t id)
{
    rn_msg *m = &r->msgs[id];
    if (m->state == MSG_DELIVERED)
        return;
    if (m->state == MSG_FAILED) /* the sender gave up (timeout) before it arrived */
        r->msgs_failed--;
    m->state = MSG_DELIVERED;
    mesh_time lat = sim_sched_now(r->sched) - m->sent;
    r->msgs_delivered++;
    r->bytes_delivered += m->size;
    r->lat[r->nlat++] = lat;
    char d[64];
    snprintf(d, sizeof d, "msg=%llu latency_ns=%llu", (unsigned long long)id,
             (unsigned long long)lat);
    rec_event(r, m->dst, SIM_RES_EV_MSG_DELIVERED, m->src, MESH_OK, d);
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

static void node_send(runner *r, rn_node *n, uint32_t dst, uint64_t size)
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
    rec_event(r, n->idx, SIM_RES_EV_MSG_SENT, dst, MESH_OK, d);
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
    int rc = mesh_node_send(n->node, mesh_identity_pubkey(r->nodes[dst].id), r->zeros, (size_t)size,
                            on_send_done, sd);
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
        if (memcmp(mesh_identity_pubkey(r->nodes[i].id), key, MESH_NODE_KEY_BYTES) == 0)
            return i;
    return SIM_RES_NONE;
}

static void on_node_peer(mesh_node *node, const uint8_t key[MESH_NODE_KEY_BYTES], int connected,
                         int reason, void *ud)
{
    (void)node;
    rn_node *n = ud;
    runner *r = n->r;
    if (!r->rec)
        return;
    rec_event(r, n->idx,
              connected
                  ? SIM_RES_EV_SESSION_ESTABLISHED
                  : (reason == MESH_OK ? SIM_RES_EV_SESSION_CLOSED : SIM_RES_EV_SESSION_FAILED),
              node_of_key(r, key), connected ? MESH_OK : reason, NULL);
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
    rec_event(r, n->idx, SIM_RES_EV_NODE_UP, SIM_RES_NONE, status,
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

static const mesh_node_cbs NODE_CBS = {
    .on_message = on_node_message,
    .on_peer = on_node_peer,
    .on_joined = on_node_joined,
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
    rec_event(r, n->idx, SIM_RES_EV_LOOKUP, n->lookup_target, status, d);
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
            n->lookup_pending = mesh_node_lookup(n->node, mesh_identity_node_id(r->nodes[t].id),
                                                 on_lookup_done, n) == MESH_OK;
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
static int node_start(runner *r, rn_node *n)
{
    const sim_scenario *s = r->scn;
    const sim_scn_group *g = &s->groups[n->group];
    mesh_node_cfg cfg = {0};
    cfg.identity = n->id;
    cfg.listen = mesh_addr_v4(0, MESH_RUNNER_NODE_PORT);
    /* our record: the address others can reach us at, if any. A node behind a NAT without a
     * port mapping advertises none (a private address would send every remote peer to a
     * stranger with the same address on its own LAN); its LAN neighbours find it by mDNS. */
    if (n->reachable)
        cfg.advertised[cfg.n_advertised++] = n->public_addr;
    else
        cfg.advertise_none = 1;
    cfg.record_seq = 1 + sim_sched_now(r->sched) / MESH_NS_PER_S; /* grows across restarts */
    cfg.sni = g->tls_sni;
    const char *alpn[MESH_NODE_MAX_ALPN + 1] = {0};
    if (g->alpn_count) {
        for (size_t a = 0; a < g->alpn_count && a < MESH_NODE_MAX_ALPN; a++)
            alpn[a] = g->alpn[a];
        cfg.alpn = alpn;
    }
    cfg.http2 = g->framing == SIM_SCN_FRAMING_HTTP2;
    cfg.tls_lib = r->tls_lib;
    for (size_t i = 0; i < r->nboot && cfg.n_bootstrap < MESH_NODE_MAX_BOOTSTRAP; i++) {
        const rn_node *b = &r->nodes[r->boot[i]];
        if (b == n)
            continue;
        mesh_node_peer *p = &cfg.bootstrap[cfg.n_bootstrap++];
        p->addr = b->lan && b->lan == n->lan
                      ? mesh_addr_v4(sim_host_ip(b->host), MESH_RUNNER_NODE_PORT)
                      : b->public_addr;
        memcpy(p->key, mesh_identity_pubkey(b->id), MESH_NODE_KEY_BYTES);
    }
    cfg.store = (mesh_peer_store){&STORE_OPS, n};
    cfg.mdns = g->mdns && n->lan;
    n->started_at = sim_sched_now(r->sched);
    int rc = mesh_node_new(&n->node, &n->env, &cfg, &NODE_CBS, n);
    if (rc == MESH_OK && (rc = mesh_node_start(n->node)) != MESH_OK) {
        mesh_node_free(n->node);
        n->node = NULL;
    }
    return rc;
}

static void node_join(void *ctx, void *arg)
{
    runner *r = ctx;
    rn_node *n = arg;
    const sim_scn_group *g = &r->scn->groups[n->group];
    if (g->lan != SIM_SCN_INTERNET)
        n->nat = r->lan_nats[g->lan];
    if (n->nat && r->scn->lans[g->lan].nat.upnp) {
        mesh_addr internal = mesh_addr_v4(sim_host_ip(n->host), MESH_RUNNER_NODE_PORT), ext;
        int rc = sim_nat_portmap_request(n->nat, SIM_PROTO_TCP, &internal, 0, &ext);
        if (rc == MESH_OK) {
            n->public_addr = ext;
            n->reachable = 1;
        } else {
            rec_event(r, n->idx, SIM_RES_EV_NAT, SIM_RES_NONE, rc, "port mapping refused");
        }
    }
    int rc = node_start(r, n);
    if (rc != MESH_OK) {
        rec_event(r, n->idx, SIM_RES_EV_NODE_UP, SIM_RES_NONE, rc, "node failed to start");
        return;
    }
    n->online = 1;
    char d[96], a[MESH_ADDR_STRLEN];
    snprintf(d, sizeof d, "started reachable=%d public=%s", n->reachable,
             mesh_addr_format(&n->public_addr, a, sizeof a));
    rec_event(r, n->idx, SIM_RES_EV_NODE_UP, SIM_RES_NONE, MESH_OK, d);
}

/* Add a node instance's stats to the run's totals before it goes away. */
static void stats_add(mesh_node_stats *t, const mesh_node_stats *s)
{
    t->connects += s->connects;
    t->connect_failures += s->connect_failures;
    t->accepted += s->accepted;
    t->evicted += s->evicted;
    t->key_mismatches += s->key_mismatches;
    t->duplicates_closed += s->duplicates_closed;
    t->records_rejected += s->records_rejected;
    t->mdns_found += s->mdns_found;
}

static void node_stop(runner *r, rn_node *n)
{
    if (!n->node)
        return;
    mesh_node_stats st;
    mesh_node_get_stats(n->node, &st);
    stats_add(&r->gone, &st);
    mesh_node_free(n->node); /* no callbacks: sends in flight from it are lost, not failed */
    n->node = NULL;
    n->lookup_pending = 0;
}

static void node_down(runner *r, rn_node *n)
{
    if (!n->online)
        return;
    n->online = 0;
    n->joined = 0;
    r->node_downs++;
    sim_host_set_up(n->host, 0);
    node_stop(r, n); /* the node's process is gone */
    rec_event(r, n->idx, SIM_RES_EV_NODE_DOWN, SIM_RES_NONE, MESH_OK, "churn");
}

static void node_up_ev(void *ctx, void *arg)
{
    runner *r = ctx;
    rn_node *n = arg;
    if (n->online)
        return;
    sim_host_set_up(n->host, 1);
    int rc = node_start(r, n); /* a restart: it rejoins through its peer store first */
    n->online = rc == MESH_OK;
    rec_event(r, n->idx, SIM_RES_EV_NODE_UP, SIM_RES_NONE, rc, "restarted after churn");
}

/* ---- traffic --------------------------------------------------------------------------------- */

static mesh_time draw_gap(const sim_scn_traffic *t, sim_rng *rng)
{
    if (t->arrivals == SIM_SCN_ARRIVALS_POISSON) {
        double u = sim_rng_unit(rng);
        double g = -log(1.0 - u) * (double)t->interval;
        return g < 1.0 ? 1 : (mesh_time)g;
    }
    return t->interval;
}

static uint64_t draw_size(const sim_scn_size *z, sim_rng *rng)
{
    double v;
    switch (z->dist) {
    case SIM_SCN_SIZE_UNIFORM:
        return z->min + sim_rng_below(rng, z->max - z->min + 1);
    case SIM_SCN_SIZE_EXPONENTIAL:
        v = -log(1.0 - sim_rng_unit(rng)) * (double)z->mean;
        break;
    case SIM_SCN_SIZE_PARETO: {
        double xm = (double)z->mean * (z->shape - 1.0) / z->shape;
        v = xm / pow(1.0 - sim_rng_unit(rng), 1.0 / z->shape);
        break;
    }
    default:
        return z->min;
    }
    uint64_t s = v >= (double)SIM_RUNNER_MAX_MSG ? SIM_RUNNER_MAX_MSG : (uint64_t)v;
    if (z->max && s > z->max)
        s = z->max;
    return s;
}

static void traffic_fire(void *ctx, void *arg)
{
    runner *r = ctx;
    rn_traffic_src *src = arg;
    const sim_scn_traffic *t = &r->scn->traffic[src->pattern];
    rn_node *n = &r->nodes[src->node];
    mesh_time now = sim_sched_now(r->sched);
    if (now >= t->stop)
        return;
    if (n->online && n->node) {
        const sim_scenario *s = r->scn;
        uint32_t first = 0, count = s->node_count;
        if (t->to != SIM_SCN_TO_RANDOM) {
            first = s->groups[t->to].first_node;
            count = s->groups[t->to].count;
        }
        int self_in = src->node >= first && src->node < first + count;
        uint32_t choices = count - (self_in ? 1 : 0);
        if (choices > 0) {
            uint32_t k = (uint32_t)sim_rng_below(&src->rng, choices);
            uint32_t dst = first + k;
            if (self_in && dst >= src->node)
                dst++;
            node_send(r, n, dst, draw_size(&t->size, &src->rng));
        }
    }
    mesh_time next = now + draw_gap(t, &src->rng);
    if (next < t->stop && next < r->scn->duration)
        sim_sched_at(r->sched, next, SIM_EV_USER, src->node, traffic_fire, r, src, NULL);
}

/* ---- timed events ------------------------------------------------------------------------------
 */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int part_member(const rn_partition *p, uint32_t ip)
{
    return bsearch(&ip, p->ips, p->nips, sizeof ip, cmp_u32) != NULL;
}

/* Drops every packet between a member and a non-member while active. */
static int part_on_packet(void *obj, sim_mbox *mb, sim_pkt *pkt, int dir, mesh_time *delay)
{
    (void)mb;
    (void)delay;
    rn_partition *p = obj;
    if (!p->active)
        return SIM_PASS;
    uint32_t remote = sim_addr_ip4(dir == SIM_DIR_OUT ? &pkt->dst : &pkt->src);
    return part_member(p, remote) ? SIM_PASS : SIM_DROP;
}

static const sim_mbox_ops PART_OPS = {.on_packet = part_on_packet};

static int ref_has_node(const sim_scenario *s, const sim_scn_ref *ref, uint32_t node)
{
    size_t g = sim_scenario_node_group(s, node);
    if (ref->kind == SIM_SCN_REF_GROUP)
        return g == ref->index;
    return s->groups[g].lan == ref->index;
}

static void ev_partition(runner *r, const sim_scn_event *e)
{
    const sim_scenario *s = r->scn;
    rn_partition *p = calloc(1, sizeof *p);
    rn_partition **parts = realloc(r->parts, (r->nparts + 1) * sizeof *parts);
    if (!p || !parts) {
        free(p);
        r->fatal = MESH_ERR_NOMEM;
        return;
    }
    r->parts = parts;
    r->parts[r->nparts++] = p;
    p->r = r;
    p->ips = calloc(2 * (size_t)s->node_count + 1, sizeof *p->ips);
    if (!p->ips) {
        r->fatal = MESH_ERR_NOMEM;
        return;
    }
    /* members' own addresses, and the public addresses of the NATs in front of them */
    for (uint32_t i = 0; i < s->node_count; i++) {
        for (size_t k = 0; k < e->target_count; k++) {
            if (!ref_has_node(s, &e->targets[k], i))
                continue;
            rn_node *n = &r->nodes[i];
            p->ips[p->nips++] = sim_host_ip(n->host);
            if (n->lan && sim_lan_is_private(n->lan))
                p->ips[p->nips++] = sim_lan_public_ip(n->lan);
            break;
        }
    }
    qsort(p->ips, p->nips, sizeof *p->ips, cmp_u32);
    p->active = 1;
    for (uint32_t i = 0; i < s->node_count; i++) {
        for (size_t k = 0; k < e->target_count; k++) {
            if (!ref_has_node(s, &e->targets[k], i))
                continue;
            if (sim_net_attach_host_mbox(r->net, r->nodes[i].host, &PART_OPS, p, NULL) != MESH_OK)
                rec_event(r, i, "partition_failed", -1, MESH_ERR_LIMIT,
                          "too many middleboxes on the host");
            break;
        }
    }
}

static void heal_ev(void *ctx, void *arg)
{
    runner *r = ctx;
    rn_partition *p = arg;
    p->active = 0;
    rec_event(r, -1, SIM_RES_EV_SCENARIO, -1, MESH_OK, "partition healed");
}

static void ev_churn(runner *r, const sim_scn_event *e, size_t idx)
{
    const sim_scn_group *g = &r->scn->groups[e->group];
    uint32_t k = (uint32_t)llround(e->fraction * g->count);
    sim_rng rng;
    sim_rng_derive(&rng, r->scn->seed, RN_STREAM_CHURN + idx);
    /* a partial Fisher-Yates over the group's node indices picks k distinct nodes */
    uint32_t *ix = malloc((g->count ? g->count : 1) * sizeof *ix);
    if (!ix) {
        r->fatal = MESH_ERR_NOMEM;
        return;
    }
    for (uint32_t i = 0; i < g->count; i++)
        ix[i] = g->first_node + i;
    for (uint32_t i = 0; i < k; i++) {
        uint32_t j = i + (uint32_t)sim_rng_below(&rng, g->count - i);
        uint32_t t = ix[i];
        ix[i] = ix[j];
        ix[j] = t;
        rn_node *n = &r->nodes[ix[i]];
        node_down(r, n);
        if (e->down_for != MESH_TIME_NEVER)
            sim_sched_after(r->sched, e->down_for, SIM_EV_USER, n->idx, node_up_ev, r, n, NULL);
    }
    free(ix);
}

static void ev_link(runner *r, const sim_scn_event *e)
{
    if (e->target.kind == SIM_SCN_REF_LAN) {
        sim_link_cfg *c = &r->lan_links[e->target.index];
        link_merge(c, &e->link);
        sim_lan_set_links(r->lans[e->target.index], c, c);
        return;
    }
    const sim_scn_group *g = &r->scn->groups[e->target.index];
    for (uint32_t i = 0; i < g->count; i++) {
        rn_node *n = &r->nodes[g->first_node + i];
        link_merge(&n->link, &e->link);
        sim_host_set_links(n->host, &n->link, &n->link);
    }
}

static void event_fire(void *ctx, void *arg)
{
    runner *r = ctx;
    size_t idx = (size_t)(uintptr_t)arg;
    const sim_scn_event *e = &r->scn->events[idx];
    char what[64];
    snprintf(what, sizeof what, "%s (events[%zu])", sim_scn_event_kind_name(e->kind), idx);
    rec_event(r, -1, SIM_RES_EV_SCENARIO, -1, MESH_OK, what);
    switch (e->kind) {
    case SIM_SCN_EV_CHURN:
        ev_churn(r, e, idx);
        break;
    case SIM_SCN_EV_PARTITION:
        ev_partition(r, e);
        if (!r->fatal && e->heal_at != MESH_TIME_NEVER)
            sim_sched_at(r->sched, e->heal_at, SIM_EV_USER, idx, heal_ev, r,
                         r->parts[r->nparts - 1], NULL);
        break;
    case SIM_SCN_EV_LINK:
        ev_link(r, e);
        break;
    case SIM_SCN_EV_CENSOR:
        sim_censor_set_enabled(r->censors[e->censor], e->enabled);
        break;
    }
    if (r->fatal)
        sim_sched_stop(r->sched);
}

/* ---- censors --------------------------------------------------------------------------------- */

static void on_censor_decision(void *ud, const sim_censor_decision *d)
{
    runner *r = ud;
    char detail[SIM_CENSOR_WHAT_MAX + 160], c[MESH_ADDR_STRLEN], s[MESH_ADDR_STRLEN];
    snprintf(detail, sizeof detail, "rule=%s action=%s%s label=%s client=%s server=%s %s",
             d->rule_name, sim_censor_action_name(d->action), d->residual ? " residual=1" : "",
             d->label == SIM_CENSOR_LABEL_BACKGROUND ? "background"
             : d->label == SIM_CENSOR_LABEL_MESHARA  ? "meshara"
                                                     : "unknown",
             mesh_addr_format(&d->client, c, sizeof c), mesh_addr_format(&d->server, s, sizeof s),
             d->what ? d->what : "");
    rec_event(r, -1, SIM_RES_EV_CENSOR, -1, MESH_OK, detail);
}

/* Ground truth for the censor's statistics: Meshara nodes listen on MESH_RUNNER_NODE_PORT;
 * background servers live in their own address block. */
static int classify_flow(void *ud, const mesh_addr *client, const mesh_addr *server, uint8_t proto)
{
    (void)ud;
    (void)client;
    if (proto != SIM_PROTO_TCP)
        return SIM_CENSOR_LABEL_UNKNOWN;
    uint32_t ip = sim_addr_ip4(server);
    if (ip >= ADDR_BG_HOSTS && ip < ADDR_BG_HOSTS + (1u << 20))
        return SIM_CENSOR_LABEL_BACKGROUND;
    return server->port == MESH_RUNNER_NODE_PORT ? SIM_CENSOR_LABEL_MESHARA
                                                 : SIM_CENSOR_LABEL_UNKNOWN;
}

static int censor_rule_of(const sim_scn_rule *sr, sim_censor_rule *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->name = sr->name;
    sim_censor_match *m = &out->match;
    if (sr->match & SIM_SCN_MATCH_DST_IP) {
        m->dst_ip = sr->dst_ip;
        m->dst_prefix = sr->dst_prefix;
    }
    if (sr->match & SIM_SCN_MATCH_DST_PORT) {
        m->proto = SIM_PROTO_TCP;
        m->dst_port_lo = sr->port_min;
        m->dst_port_hi = sr->port_max;
    }
    if (sr->match & SIM_SCN_MATCH_SNI) {
        if (strncmp(sr->sni, "*.", 2) == 0) {
            m->sni = sr->sni + 2;
            m->sni_suffix = SIM_CENSOR_SNI_SUBDOMAINS;
        } else {
            m->sni = sr->sni;
        }
    }
    if (sr->match & SIM_SCN_MATCH_ALPN)
        m->alpn = sr->alpn;
    if (sr->match & SIM_SCN_MATCH_JA3)
        m->ja3_md5 = sr->ja3;
    if (sr->match & SIM_SCN_MATCH_FIRST_LEN) {
        m->len_min = (uint32_t)sr->len_min;
        m->len_max = (uint32_t)(sr->len_max > UINT32_MAX ? UINT32_MAX : sr->len_max);
    }
    if (sr->match & SIM_SCN_MATCH_ENTROPY) {
        m->entropy_min = sr->entropy_min;
        m->entropy_max = sr->entropy_max;
    }
    switch (sr->action) {
    case SIM_SCN_ACT_DROP:
        out->action = SIM_CENSOR_DROP;
        break;
    case SIM_SCN_ACT_RST:
        out->action = SIM_CENSOR_RST;
        break;
    case SIM_SCN_ACT_THROTTLE:
        out->action = SIM_CENSOR_THROTTLE;
        out->rate_bps = sr->throttle_bps;
        out->burst_bytes = 16384;
        break;
    default:
        snprintf(err, errlen, "%s:%u:%u: censor action 'probe' is not modelled yet", sr->loc.origin,
                 sr->loc.line, sr->loc.col);
        return MESH_ERR_UNSUPPORTED;
    }
    out->residual = sr->residual;
    return MESH_OK;
}

static int build_censors(runner *r)
{
    const sim_scenario *s = r->scn;
    r->censors = calloc(s->censor_count ? s->censor_count : 1, sizeof *r->censors);
    if (!r->censors)
        return MESH_ERR_NOMEM;
    for (size_t i = 0; i < s->censor_count; i++) {
        const sim_scn_censor *sc = &s->censors[i];
        sim_censor_cfg cfg = {.name = sc->name, .start_disabled = !sc->enabled};
        int rc = sim_censor_new(&r->censors[i], &cfg);
        if (rc != MESH_OK)
            return fail(r, rc, "censor %s: %s", sc->name);
        sim_censor *c = r->censors[i];
        sim_censor_set_decision_cb(c, on_censor_decision, r);
        sim_censor_set_classifier(c, classify_flow, r);
        for (size_t k = 0; k < sc->rule_count; k++) {
            sim_censor_rule cr;
            if ((rc = censor_rule_of(&sc->rules[k], &cr, r->err, r->errlen)) != MESH_OK)
                return rc;
            if ((rc = sim_censor_add_rule(c, &cr, NULL)) != MESH_OK) {
                snprintf(r->err, r->errlen, "%s:%u:%u: censor rule refused: %s",
                         sc->rules[k].loc.origin, sc->rules[k].loc.line, sc->rules[k].loc.col,
                         mesh_strerror(rc));
                return rc;
            }
        }
        for (size_t t = 0; t < sc->target_count; t++) {
            const sim_scn_ref *ref = &sc->targets[t];
            if (ref->kind == SIM_SCN_REF_LAN) {
                rc = sim_censor_attach_lan(c, r->net, r->lans[ref->index]);
            } else {
                const sim_scn_group *g = &s->groups[ref->index];
                for (uint32_t k = 0; k < g->count && rc == MESH_OK; k++)
                    rc = sim_censor_attach_host(c, r->net, r->nodes[g->first_node + k].host);
            }
            if (rc != MESH_OK)
                return fail(r, rc, "censor %s: cannot attach: %s", sc->name);
        }
    }
    return MESH_OK;
}

/* ---- background HTTPS ------------------------------------------------------------------ */

static int bg_host(runner *r, const char *name, sim_lan *lan, uint32_t ip, sim_host **out)
{
    sim_host_cfg hc = {0};
    hc.name = name;
    hc.lan = lan;
    hc.ip = ip;
    hc.up = hc.down = link_of(&r->scn->access);
    return sim_net_add_host(r->net, &hc, out);
}

/* One ordinary HTTPS client behind each censor target, all fetching from one server on the
 * core, so the censor's collateral damage is measured on the same path as Meshara's. */
static int build_background(runner *r)
{
    const sim_scenario *s = r->scn;
    size_t targets = 0;
    for (size_t i = 0; i < s->censor_count; i++)
        targets += s->censors[i].target_count;
    if (targets == 0)
        return MESH_OK;
    uint32_t next_bg = ADDR_BG_HOSTS;
    int rc = bg_host(r, "bg-server", NULL, next_bg++, &r->bg_server_host);
    if (rc == MESH_OK)
        rc = sim_driver_new(&r->bg_server_drv, r->w, r->bg_server_host);
    if (rc != MESH_OK)
        return fail(r, rc, "background server %s: %s", "bg-server");
    mesh_env senv = sim_driver_env(r->bg_server_drv);
    if ((rc = sim_https_server_new(&r->bg_server, &senv, NULL)) != MESH_OK)
        return fail(r, rc, "background server %s: %s", "bg-server");
    r->bg_drvs = calloc(targets, sizeof *r->bg_drvs);
    r->bg_clients = calloc(targets, sizeof *r->bg_clients);
    if (!r->bg_drvs || !r->bg_clients)
        return MESH_ERR_NOMEM;
    uint32_t *lan_next = calloc(s->lan_count ? s->lan_count : 1, sizeof *lan_next);
    if (!lan_next)
        return MESH_ERR_NOMEM;
    for (size_t i = 0; i < s->censor_count && rc == MESH_OK; i++) {
        const sim_scn_censor *sc = &s->censors[i];
        for (size_t t = 0; t < sc->target_count && rc == MESH_OK; t++) {
            const sim_scn_ref *ref = &sc->targets[t];
            char name[SIM_SCN_MAX_NAME * 2 + 16];
            snprintf(name, sizeof name, "bg-%s-%zu", sc->name, t);
            sim_lan *lan = NULL;
            uint32_t ip = next_bg++;
            size_t li = ref->kind == SIM_SCN_REF_LAN ? ref->index : s->groups[ref->index].lan;
            if (li != SIM_SCN_INTERNET) {
                lan = r->lans[li];
                /* private LANs: addresses above the nodes' (10.0.128.0 on) */
                if (sim_lan_is_private(lan))
                    ip = SIM_IP4(10, 0, 128, 0) + ++lan_next[li];
            }
            sim_host *h = NULL;
            rc = bg_host(r, name, lan, ip, &h);
            if (rc == MESH_OK && ref->kind == SIM_SCN_REF_GROUP)
                rc = sim_censor_attach_host(r->censors[i], r->net, h);
            if (rc == MESH_OK)
                rc = sim_driver_new(&r->bg_drvs[r->nbg], r->w, h);
            if (rc != MESH_OK)
                break;
            mesh_env env = sim_driver_env(r->bg_drvs[r->nbg]);
            sim_https_client_cfg cc = {0};
            cc.server = mesh_addr_v4(ADDR_BG_HOSTS, sim_https_server_addr(r->bg_server).port);
            cc.response_bytes = SIM_RUNNER_BG_RESPONSE;
            cc.interval = SIM_RUNNER_BG_INTERVAL_MS * MESH_NS_PER_MS;
            cc.jitter = cc.interval / 2;
            rc = sim_https_client_new(&r->bg_clients[r->nbg], &env, &cc);
            r->nbg++;
        }
    }
    free(lan_next);
    if (rc != MESH_OK)
        snprintf(r->err, r->errlen, "background HTTPS client: %s", mesh_strerror(rc));
    return rc;
}

/* ---- series, summary, progress ------------------------------------------------------------------
 */

static void sample_ev(void *ctx, void *arg)
{
    (void)arg;
    runner *r = ctx;
    uint64_t conns = 0, online = 0, joined = 0;
    for (uint32_t i = 0; i < r->scn->node_count; i++) {
        const rn_node *n = &r->nodes[i];
        online += n->online;
        joined += n->joined;
        if (n->node) {
            mesh_node_stats st;
            mesh_node_get_stats(n->node, &st);
            conns += st.connected;
        }
    }
    mesh_time now = sim_sched_now(r->sched);
    if (r->rec) {
        sim_results_series(r->rec, now, -1, "sessions_connected", (double)conns);
        sim_results_series(r->rec, now, -1, "nodes_joined", (double)joined);
        sim_results_series(r->rec, now, -1, "nodes_online", (double)online);
        sim_results_series(r->rec, now, -1, "messages_delivered", (double)r->msgs_delivered);
        sim_results_series(r->rec, now, -1, "messages_failed", (double)r->msgs_failed);
    }
    mesh_time next = now + SIM_RUNNER_SAMPLE_S * MESH_NS_PER_S;
    if (next <= r->scn->duration)
        sim_sched_at(r->sched, next, SIM_EV_USER, 0, sample_ev, r, NULL, NULL);
}

static int cmp_time(const void *a, const void *b)
{
    mesh_time x = *(const mesh_time *)a, y = *(const mesh_time *)b;
    return x < y ? -1 : x > y;
}

/* p in [0, 1]: nearest-rank percentile of sorted v, in milliseconds; NaN when empty. */
static double pct_ms(const mesh_time *v, size_t n, double p)
{
    if (n == 0)
        return NAN;
    size_t k = (size_t)ceil(p * (double)n);
    if (k > 0)
        k--;
    return (double)v[k] / 1e6;
}

typedef struct summary_row {
    const char *name;
    double value;
} summary_row;

enum { MAX_SUMMARY = 64 };

static size_t make_summary(runner *r, summary_row *rows)
{
    size_t n = 0;
#define ROW(nm, v) (rows[n++] = (summary_row){(nm), (double)(v)})
    const sim_scenario *s = r->scn;
    uint64_t joined = 0, reachable = 0;
    for (uint32_t i = 0; i < s->node_count; i++) {
        joined += r->nodes[i].joined;
        reachable += r->nodes[i].joined && r->nodes[i].reachable;
    }
    uint64_t sent = r->nmsgs;
    ROW("nodes", s->node_count);
    ROW("nodes_joined", joined);
    ROW("nodes_reachable", reachable);
    ROW("node_downs", r->node_downs);
    ROW("join_ratio", r->joins_ok + r->joins_failed
                          ? (double)r->joins_ok / (double)(r->joins_ok + r->joins_failed)
                          : NAN);
    ROW("joins_failed", r->joins_failed);
    qsort(r->join_took, r->njoin, sizeof *r->join_took, cmp_time);
    ROW("join_time_p50_ms", pct_ms(r->join_took, r->njoin, 0.50));
    ROW("join_time_p95_ms", pct_ms(r->join_took, r->njoin, 0.95));
    mesh_node_stats t = r->gone;
    for (uint32_t i = 0; i < s->node_count; i++)
        if (r->nodes[i].node) {
            mesh_node_stats st;
            mesh_node_get_stats(r->nodes[i].node, &st);
            stats_add(&t, &st);
        }
    ROW("sessions_attempted", t.connects);
    ROW("sessions_failed", t.connect_failures);
    ROW("session_success_ratio",
        t.connects ? (double)(t.connects - t.connect_failures) / (double)t.connects : NAN);
    ROW("sessions_accepted", t.accepted);
    ROW("sessions_evicted", t.evicted);
    ROW("sessions_duplicate_closed", t.duplicates_closed);
    ROW("key_mismatches", t.key_mismatches);
    ROW("records_rejected", t.records_rejected);
    ROW("mdns_found", t.mdns_found);
    ROW("lookups", r->lookups);
    ROW("lookup_success_ratio", r->lookups ? (double)r->lookups_ok / (double)r->lookups : NAN);
    {
        unsigned hmax = 0;
        double hsum = 0;
        size_t hist[64] = {0};
        for (size_t i = 0; i < r->nhops; i++) {
            unsigned h = r->hops[i] < 63 ? r->hops[i] : 63;
            hist[h]++;
            hsum += r->hops[i];
            if (r->hops[i] > hmax)
                hmax = r->hops[i];
        }
        size_t acc = 0, p50 = 0, p95 = 0;
        int got50 = 0;
        for (unsigned h = 0; h < 64 && r->nhops; h++) {
            acc += hist[h];
            if (!got50 && acc * 2 >= r->nhops) {
                p50 = h;
                got50 = 1;
            }
            if (acc * 100 >= r->nhops * 95) {
                p95 = h;
                break;
            }
        }
        ROW("lookup_hops_mean", r->nhops ? hsum / (double)r->nhops : NAN);
        ROW("lookup_hops_p50", r->nhops ? (double)p50 : NAN);
        ROW("lookup_hops_p95", r->nhops ? (double)p95 : NAN);
        ROW("lookup_hops_max", r->nhops ? (double)hmax : NAN);
    }
    ROW("messages_sent", sent);
    ROW("messages_delivered", r->msgs_delivered);
    ROW("messages_failed", r->msgs_failed);
    ROW("messages_lost", sent - r->msgs_delivered - r->msgs_failed);
    ROW("acks_lost", r->acks_lost);
    ROW("delivery_ratio", sent ? (double)r->msgs_delivered / (double)sent : NAN);
    ROW("bytes_delivered", r->bytes_delivered);
    qsort(r->lat, r->nlat, sizeof *r->lat, cmp_time);
    ROW("delivery_latency_p50_ms", pct_ms(r->lat, r->nlat, 0.50));
    ROW("delivery_latency_p95_ms", pct_ms(r->lat, r->nlat, 0.95));
    ROW("delivery_latency_p99_ms", pct_ms(r->lat, r->nlat, 0.99));
    uint64_t flows[SIM_CENSOR_LABELS] = {0}, blocked[SIM_CENSOR_LABELS] = {0};
    for (size_t i = 0; i < s->censor_count; i++) {
        sim_censor_stats cs = sim_censor_get_stats(r->censors[i]);
        for (int l = 0; l < SIM_CENSOR_LABELS; l++) {
            flows[l] += cs.flows[l];
            blocked[l] += cs.blocked[l];
        }
    }
    ROW("censor_meshara_flows", flows[SIM_CENSOR_LABEL_MESHARA]);
    ROW("censor_meshara_blocked", blocked[SIM_CENSOR_LABEL_MESHARA]);
    ROW("censor_meshara_blocked_ratio",
        flows[SIM_CENSOR_LABEL_MESHARA]
            ? (double)blocked[SIM_CENSOR_LABEL_MESHARA] / (double)flows[SIM_CENSOR_LABEL_MESHARA]
            : NAN);
    ROW("censor_background_flows", flows[SIM_CENSOR_LABEL_BACKGROUND]);
    ROW("censor_background_blocked", blocked[SIM_CENSOR_LABEL_BACKGROUND]);
    ROW("censor_collateral_ratio", flows[SIM_CENSOR_LABEL_BACKGROUND]
                                       ? (double)blocked[SIM_CENSOR_LABEL_BACKGROUND] /
                                             (double)flows[SIM_CENSOR_LABEL_BACKGROUND]
                                       : NAN);
    sim_https_stats bg = {0};
    for (size_t i = 0; i < r->nbg; i++) {
        sim_https_stats st = sim_https_client_get_stats(r->bg_clients[i]);
        bg.started += st.started;
        bg.completed += st.completed;
        bg.failed += st.failed;
    }
    ROW("background_exchanges", bg.started);
    ROW("background_completed", bg.completed);
    ROW("background_failed", bg.failed);
    ROW("background_success_ratio",
        bg.completed + bg.failed ? (double)bg.completed / (double)(bg.completed + bg.failed) : NAN);
    sim_net_stats ns = sim_net_get_stats(r->net);
    ROW("net_packets_sent", ns.sent);
    ROW("net_packets_delivered", ns.delivered);
    ROW("net_mbox_drops", ns.mbox_drops);
    ROW("net_link_drops", ns.link_drops);
    uint64_t nat_in_dropped = 0;
    for (size_t i = 0; i < s->lan_count; i++)
        if (r->lan_nats[i]) {
            sim_nat_stats st = sim_nat_get_stats(r->lan_nats[i]);
            nat_in_dropped += st.in_no_mapping + st.in_filtered;
        }
    ROW("nat_inbound_dropped", nat_in_dropped);
    ROW("sim_events", sim_sched_processed(r->sched));
#undef ROW
    return n;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* progress display and wall_s only */
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void progress(const runner *r, double t0, int final)
{
    mesh_time now = sim_sched_now(r->sched), dur = r->scn->duration;
    double frac = dur ? (double)now / (double)dur : 1.0, el = wall_now() - t0;
    double evs = el > 0 ? (double)sim_sched_processed(r->sched) / el : 0;
    double eta = frac > 0 ? el / frac - el : 0;
    char bar[31];
    int fill = (int)(frac * 30);
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r[%s] %6.1fs / %.0fs virtual  %8.0f ev/s  ETA %5.0fs%s", bar,
            (double)now / 1e9, (double)dur / 1e9, evs, final ? 0.0 : eta, final ? "\n" : "");
    fflush(stderr);
}

/* ---- the run ------------------------------------------------------------------------------------
 */

static void record_node(runner *r, const rn_node *n)
{
    const sim_scenario *s = r->scn;
    const sim_scn_group *g = &s->groups[n->group];
    char name[SIM_SCN_MAX_NAME + 16], id[2 * MESH_NODE_ID_BYTES + 1], nat[96] = "";
    snprintf(name, sizeof name, "%s-%u", g->name, n->idx - g->first_node);
    const sim_scn_nat *sn = g->lan != SIM_SCN_INTERNET ? &s->lans[g->lan].nat : &g->nat;
    if (sn->present)
        snprintf(nat, sizeof nat, "%s/%s", sim_scn_nat_behaviour_name(sn->mapping),
                 sim_scn_nat_behaviour_name(sn->filtering));
    mesh_time join = g->join_from;
    if (g->count > 1 && g->join_to > g->join_from)
        join += (g->join_to - g->join_from) / (g->count - 1) * (n->idx - g->first_node);
    sim_results_node_info info = {
        .node = n->idx,
        .name = name,
        .group = g->name,
        .lan = g->lan != SIM_SCN_INTERNET ? s->lans[g->lan].name : NULL,
        .ip = sim_host_ip(n->host),
        .nat = sn->present ? nat : NULL,
        .role = g->role == SIM_SCN_ROLE_BOOTSTRAP ? "bootstrap" : "normal",
        .node_id = mesh_hex_encode(mesh_identity_node_id(n->id), MESH_NODE_ID_BYTES, id),
        .join_ns = join,
    };
    sim_results_node(r->rec, &info);
}

static void dbg_log(void *ud, mesh_time t, const char *host, int level, const char *line)
{
    (void)ud, (void)t, (void)host, (void)level;
    fprintf(stderr, "%s\n", line);
}

static int schedule_all(runner *r)
{
    const sim_scenario *s = r->scn;
    int rc = MESH_OK;
    for (size_t g = 0; g < s->group_count && rc == MESH_OK; g++) {
        const sim_scn_group *gr = &s->groups[g];
        for (uint32_t k = 0; k < gr->count && rc == MESH_OK; k++) {
            mesh_time at = gr->join_from;
            if (gr->count > 1 && gr->join_to > gr->join_from)
                at += (gr->join_to - gr->join_from) / (gr->count - 1) * k;
            rn_node *n = &r->nodes[gr->first_node + k];
            rc = sim_sched_at(r->sched, at, SIM_EV_USER, n->idx, node_join, r, n, NULL);
        }
    }
    for (size_t p = 0; p < s->traffic_count; p++)
        r->nsrcs += s->groups[s->traffic[p].from].count;
    r->srcs = calloc(r->nsrcs ? r->nsrcs : 1, sizeof *r->srcs);
    if (!r->srcs)
        return MESH_ERR_NOMEM;
    size_t k = 0;
    for (size_t p = 0; p < s->traffic_count && rc == MESH_OK; p++) {
        const sim_scn_traffic *t = &s->traffic[p];
        const sim_scn_group *g = &s->groups[t->from];
        for (uint32_t i = 0; i < g->count && rc == MESH_OK; i++, k++) {
            rn_traffic_src *src = &r->srcs[k];
            src->r = r;
            src->pattern = p;
            src->node = g->first_node + i;
            sim_rng_derive(&src->rng, s->seed, RN_STREAM_TRAFFIC + (p << 20) + src->node);
            /* first message: a random phase within one gap after the later of the pattern's
             * start and the node's join (so senders do not fire in lockstep) */
            mesh_time join = g->join_from;
            if (g->count > 1 && g->join_to > g->join_from)
                join += (g->join_to - g->join_from) / (g->count - 1) * i;
            mesh_time at = (t->start > join ? t->start : join) +
                           sim_rng_below(&src->rng, t->interval ? t->interval : 1);
            if (at < t->stop && at < s->duration)
                rc = sim_sched_at(r->sched, at, SIM_EV_USER, src->node, traffic_fire, r, src, NULL);
        }
    }
    for (size_t e = 0; e < s->event_count && rc == MESH_OK; e++)
        rc = sim_sched_at(r->sched, s->events[e].at, SIM_EV_USER, e, event_fire, r,
                          (void *)(uintptr_t)e, NULL);
    if (rc == MESH_OK)
        rc = sim_sched_at(r->sched, 0, SIM_EV_USER, 0, sample_ev, r, NULL, NULL);
    return rc;
}

static void teardown(runner *r)
{
    const sim_scenario *s = r->scn;
    if (r->nodes) {
        for (uint32_t i = 0; i < s->node_count; i++)
            node_stop(r, &r->nodes[i]);
        for (uint32_t i = 0; i < s->node_count; i++) {
            rn_node *n = &r->nodes[i];
            mesh_identity_free(n->id);
            sim_driver_free(n->drv);
            for (size_t k = 0; k < n->nstore; k++)
                free(n->store[k].bytes);
        }
    }
    for (size_t i = 0; i < r->nbg; i++) {
        sim_https_client_free(r->bg_clients[i]);
        sim_driver_free(r->bg_drvs[i]);
    }
    sim_https_server_free(r->bg_server);
    sim_driver_free(r->bg_server_drv);
    free(r->bg_clients);
    free(r->bg_drvs);
    for (size_t i = 0; r->lan_nats && i < s->lan_count; i++)
        sim_nat_free(r->lan_nats[i]);
    for (size_t i = 0; r->censors && i < s->censor_count; i++)
        sim_censor_free(r->censors[i]);
    sim_world_free(r->w);
    mesh_tls_lib_free(r->tls_lib);
    for (size_t i = 0; i < r->nparts; i++) {
        free(r->parts[i]->ips);
        free(r->parts[i]);
    }
    free(r->parts);
    free(r->nodes);
    free(r->boot);
    free(r->hops);
    free(r->join_took);
    while (r->sends) {
        rn_send *sd = r->sends;
        r->sends = sd->next;
        free(sd);
    }
    free(r->lans);
    free(r->lan_links);
    free(r->lan_nats);
    free(r->lan_region_of_id);
    free(r->host_region_of_id);
    free(r->censors);
    free(r->srcs);
    free(r->msgs);
    free(r->lat);
    free(r->zeros);
}

static size_t check_expectations(const runner *r, const summary_row *rows, size_t nrows, FILE *out)
{
    size_t failed = 0;
    for (size_t i = 0; i < r->scn->expect_count; i++) {
        const sim_scn_expect *e = &r->scn->expects[i];
        const summary_row *row = NULL;
        for (size_t k = 0; k < nrows; k++)
            if (strcmp(rows[k].name, e->summary) == 0)
                row = &rows[k];
        if (!row) {
            fprintf(out, "expect FAILED %s:%u:%u: no summary figure named '%s'\n", e->loc.origin,
                    e->loc.line, e->loc.col, e->summary);
            failed++;
        } else if (!sim_scn_expect_holds(e, row->value)) {
            fprintf(out, "expect FAILED %s:%u:%u: %s %s %g, got %g (off by %g)\n", e->loc.origin,
                    e->loc.line, e->loc.col, e->summary, sim_scn_op_name(e->op), e->value,
                    row->value, fabs(row->value - e->value));
            failed++;
        } else {
            fprintf(out, "expect ok     %s %s %g (got %g)\n", e->summary, sim_scn_op_name(e->op),
                    e->value, row->value);
        }
    }
    return failed;
}

int sim_run(const sim_scenario *scn, const sim_run_opts *opts, sim_run_result *res, char *err,
            size_t errlen)
{
    static const sim_run_opts no_opts = {0};
    char dummy[8];
    runner rr = {0}, *r = &rr;
    r->scn = scn;
    r->opts = opts ? opts : &no_opts;
    r->err = err ? err : dummy;
    r->errlen = err ? errlen : sizeof dummy;
    r->err[0] = '\0';
    r->next_public = ADDR_PUBLIC_HOSTS;
    r->next_lan_public = ADDR_LAN_PUBLIC;
    FILE *out = r->opts->out ? r->opts->out : stdout;
    double t0 = wall_now();
    int rc = MESH_ERR_NOMEM;
    r->zeros = calloc(1, SIM_RUNNER_MAX_MSG);
    if (!r->zeros)
        goto done;
    if ((rc = sim_world_new(&r->w, scn->seed, NULL)) != MESH_OK)
        goto done;
    r->sched = sim_world_sched(r->w);
    if (getenv("MESHARA_SIM_LOG"))
        sim_world_set_log(r->w, dbg_log, NULL);
    r->net = sim_world_net(r->w);
    sim_rng_derive(&r->tls_rng, scn->seed, RN_STREAM_TLS);
    r->tls_env = (mesh_env){&TLS_ENV_OPS, r};
    if ((rc = mesh_tls_lib_new(&r->tls_lib, &r->tls_env)) != MESH_OK)
        goto done;
    sim_link_cfg core = {
        .latency = scn->core.latency, .jitter = scn->core.jitter, .loss = scn->core.loss};
    sim_net_set_core(r->net, &core, scn->core.model == SIM_SCN_LAT_CONSTANT ? NULL : core_latency,
                     r);
    if ((rc = build_lans(r)) != MESH_OK || (rc = build_nodes(r)) != MESH_OK ||
        (rc = build_censors(r)) != MESH_OK || (rc = build_background(r)) != MESH_OK ||
        (rc = build_lan_nats(r)) != MESH_OK)
        goto done;
    if (r->opts->db_path) {
        struct timespec wt;
        clock_gettime(CLOCK_REALTIME, &wt); /* the runs row's wall-clock column only */
        sim_results_run run = {
            .scenario = scn->name,
            .scenario_file = scn->file,
            .scenario_sha256 = scn->sha256,
            .seed = scn->seed,
            .git_rev = r->opts->git_rev ? r->opts->git_rev : "unknown",
            .parameters = sim_scenario_params_json(scn),
            .duration = scn->duration,
            .started_at_ns = (int64_t)wt.tv_sec * 1000000000 + wt.tv_nsec,
        };
        if ((rc = sim_results_open(&r->rec, r->opts->db_path, SIM_RES_REPLACE, &run, r->err,
                                   r->errlen)) != MESH_OK)
            goto done;
        for (uint32_t i = 0; i < scn->node_count; i++)
            record_node(r, &r->nodes[i]);
    }
    if ((rc = schedule_all(r)) != MESH_OK)
        goto done;

    /* run in slices so the progress line can move; the slicing does not change the run */
    mesh_time slice = scn->duration / 200 ? scn->duration / 200 : 1;
    for (mesh_time t = 0; t < scn->duration && !r->fatal;) {
        t = scn->duration - t > slice ? t + slice : scn->duration;
        rc = sim_sched_run_until(r->sched, t);
        if (rc != MESH_OK && rc != MESH_ERR_STATE)
            goto done;
        if (r->opts->progress)
            progress(r, t0, 0);
    }
    if (r->fatal) {
        rc = r->fatal;
        snprintf(r->err, r->errlen, "run stopped: %s", mesh_strerror(rc));
        goto done;
    }
    if (r->opts->progress)
        progress(r, t0, 1);

    summary_row rows[MAX_SUMMARY];
    size_t nrows = make_summary(r, rows);
    if (!r->opts->quiet) {
        fprintf(out, "%-32s %s\n", "summary", "value");
        for (size_t i = 0; i < nrows; i++)
            fprintf(out, "%-32s %.6g\n", rows[i].name, rows[i].value);
    }
    if (r->opts->on_summary)
        for (size_t i = 0; i < nrows; i++)
            r->opts->on_summary(r->opts->summary_ud, rows[i].name, rows[i].value);
    size_t failed = check_expectations(r, rows, nrows, out);
    char fp[96];
    sim_sched_summary(r->sched, fp, sizeof fp);
    fprintf(out, "%s\n", fp);
    if (res) {
        res->events = sim_sched_processed(r->sched);
        res->fingerprint = sim_sched_fingerprint(r->sched);
        res->expects_failed = failed;
    }
    if (r->rec) {
        for (size_t i = 0; i < nrows; i++)
            sim_results_summary(r->rec, rows[i].name, rows[i].value);
        char fph[17];
        snprintf(fph, sizeof fph, "%016llx", (unsigned long long)sim_sched_fingerprint(r->sched));
        struct timespec wt;
        clock_gettime(CLOCK_REALTIME, &wt);
        sim_results_end end = {
            .end_ns = sim_sched_now(r->sched),
            .events_processed = sim_sched_processed(r->sched),
            .fingerprint = fph,
            .status = failed ? "expect_failed" : "ok",
            .finished_at_ns = (int64_t)wt.tv_sec * 1000000000 + wt.tv_nsec,
            .wall_s = wall_now() - t0,
        };
        if ((rc = sim_results_finish(r->rec, &end)) != MESH_OK) {
            snprintf(r->err, r->errlen, "%s: cannot write results: %s", r->opts->db_path,
                     sim_results_errmsg(r->rec));
            goto done;
        }
    }
    rc = MESH_OK;
done:
    if (rc != MESH_OK && !r->err[0])
        snprintf(r->err, r->errlen, "run failed: %s", mesh_strerror(rc));
    if (res)
        res->wall_s = wall_now() - t0;
    sim_results *rec = r->rec;
    r->rec = NULL; /* messages still queued at the end are not failures of the run */
    teardown(r);
    if (sim_results_close(rec) != MESH_OK && rc == MESH_OK) {
        snprintf(r->err, r->errlen, "%s: results incomplete", r->opts->db_path);
        rc = MESH_ERR_IO;
    }
    return rc;
}
