/* mdns.c — the simulator's mDNS responder and browser for one host. See mdns.h.
 *
 * Everything happens in scheduler events: datagrams arriving on port 5353 and this module's
 * own timers (kind SIM_EV_MDNS, target = host id). Publications and browsers are small
 * linked lists (a host has a handful); a browser's instances are a list too, since a LAN's
 * mDNS traffic grows with the square of its hosts long before a list walk matters.
 *
 * Reentrancy: a browser callback may call sim_mdns_stop(), which frees every browser and
 * instance. Each callback site therefore detaches what it still needs before the call and
 * compares m->gen (bumped by stop) afterwards, returning at once when it changed. */
#include "sim/mdns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/rng.h"
#include "sim/sched.h"

/* ---- state ------------------------------------------------------------------------------- */

enum pub_state {
    PUB_PROBING = 0,
    PUB_ANNOUNCED = 1,
    PUB_FAILED = 2, /* too many conflicts: silent */
};

typedef struct pub {
    struct pub *next; /* in publication order */
    sim_mdns *m;
    char name[SIM_MDNS_NAME_MAX + 1]; /* current name: renamed on conflicts */
    char *type;
    uint16_t port;
    char **txt; /* NULL-terminated copy */
    size_t ntxt;
    int state; /* enum pub_state */
    int step;  /* probes sent, or announcements sent */
    int renames;
    mesh_time announced_at; /* first announcement under the current name */
    mesh_time last_sent;    /* last multicast of its record (MESH_TIME_NEVER: none) */
    sim_event_id ev;        /* next probe or announcement */
    sim_event_id reply_ev;  /* pending answer to a query */
} pub;

typedef struct browser browser;

typedef struct inst {
    struct inst *next;
    browser *b;
    char *name;
    mesh_addr addr;
    char **txt;
    mesh_time seen_at, ttl; /* last refresh and its TTL (ns) */
    int stage;              /* 0: query at 80 %, 1: query at 90 %, 2: remove */
    sim_event_id ev;
} inst;

struct browser {
    browser *next;
    sim_mdns *m;
    char *type;
    mesh_mdns_cb cb;
    void *ud;
    inst *insts;
    size_t ninsts;
    sim_event_id query_ev;
    mesh_time query_interval;
    mesh_time last_query; /* sent by us; MESH_TIME_NEVER before the first */
    mesh_time last_heard; /* the same question from anyone, ourselves included */
};

struct sim_mdns {
    sim_udp *udp;
    sim_host *host;
    sim_sched *sched;
    sim_udp_sock *sock;
    mesh_env log;
    int has_log;
    sim_rng rng;
    pub *pubs;
    size_t npubs;
    browser *browsers;
    size_t nbrowsers;
    uint64_t gen; /* bumped by stop(): a callback site seeing it change returns at once */
    sim_mdns_stats st;
};

#define MS(x) ((mesh_time)(x)*MESH_NS_PER_MS)

static mesh_time now_of(const sim_mdns *m)
{
    return sim_sched_now(m->sched);
}

static mesh_time rand_between(sim_mdns *m, mesh_time lo, mesh_time hi)
{
    return lo + sim_rng_below(&m->rng, hi - lo);
}

static void at(sim_mdns *m, mesh_time delay, sim_event_fn fn, void *ctx, sim_event_id *id)
{
    sim_sched_cancel(m->sched, *id);
    *id = SIM_EVENT_NONE;
    if (sim_sched_after(m->sched, delay, SIM_EV_MDNS, sim_host_id(m->host), fn, ctx, NULL, id) !=
            MESH_OK &&
        m->has_log)
        mesh_log(&m->log, MESH_LOG_ERROR, "mdns: cannot schedule (event queue full)");
}

static void cancel(sim_mdns *m, sim_event_id *id)
{
    sim_sched_cancel(m->sched, *id);
    *id = SIM_EVENT_NONE;
}

static sim_mdns_str str_of(const char *s)
{
    return (sim_mdns_str){s, strlen(s)};
}

static int str_eq(const sim_mdns_str *s, const char *c)
{
    return strlen(c) == s->len && memcmp(s->p, c, s->len) == 0;
}

static void strv_free(char **v)
{
    for (char **p = v; p && *p; p++)
        free(*p);
    free(v);
}

/* ---- sending ------------------------------------------------------------------------------ */

static void send_msg(sim_mdns *m, const sim_mdns_msg *msg)
{
    uint8_t buf[SIM_MDNS_MSG_MAX];
    size_t len;
    if (sim_mdns_msg_create(msg, buf, sizeof buf, &len) != MESH_OK)
        return; /* publish() checked the sizes: cannot happen */
    mesh_addr group = mesh_addr_v4(SIM_MDNS_GROUP, SIM_MDNS_PORT);
    if (sim_udp_send(m->sock, &group, buf, len) == MESH_OK)
        m->st.sent++;
}

static void send_announce(sim_mdns *m, pub *p, uint32_t ttl_s)
{
    p->last_sent = now_of(m);
    sim_mdns_msg msg = {.kind = SIM_MDNS_ANNOUNCE,
                        .name = str_of(p->name),
                        .type = str_of(p->type),
                        .port = p->port,
                        .ttl_s = ttl_s,
                        .ntxt = p->ntxt};
    for (size_t i = 0; i < p->ntxt; i++)
        msg.txt[i] = str_of(p->txt[i]);
    send_msg(m, &msg);
}

/* Duplicate question suppression (RFC 6762 §7.3, avahi's query history): no query when the
 * same question went out, from us or anyone, within SIM_MDNS_QUERY_HISTORY_MS: its answers
 * reach us too. */
static int query_due(const sim_mdns *m, const browser *b)
{
    mesh_time now = now_of(m), hist = MS(SIM_MDNS_QUERY_HISTORY_MS);
    return (b->last_query == MESH_TIME_NEVER || now - b->last_query >= hist) &&
           (b->last_heard == MESH_TIME_NEVER || now - b->last_heard >= hist);
}

static void send_query(sim_mdns *m, browser *b)
{
    sim_mdns_msg msg = {.kind = SIM_MDNS_QUERY, .type = str_of(b->type)};
    send_msg(m, &msg);
    b->last_query = now_of(m);
    m->st.queries++;
}

/* ---- publications ------------------------------------------------------------------------ */

static void pub_tick(void *ctx, void *arg);

static void pub_probe_start(pub *p)
{
    p->state = PUB_PROBING;
    p->step = 0;
    p->announced_at = MESH_TIME_NEVER;
    p->last_sent = MESH_TIME_NEVER;
    cancel(p->m, &p->reply_ev);
    at(p->m, rand_between(p->m, 0, MS(SIM_MDNS_PROBE_JITTER_MS)), pub_tick, p, &p->ev);
}

static void pub_tick(void *ctx, void *arg)
{
    (void)arg;
    pub *p = ctx;
    sim_mdns *m = p->m;
    p->ev = SIM_EVENT_NONE;
    if (p->state == PUB_PROBING && p->step < SIM_MDNS_PROBES) {
        sim_mdns_msg msg = {.kind = SIM_MDNS_PROBE,
                            .name = str_of(p->name),
                            .type = str_of(p->type),
                            .port = p->port};
        send_msg(m, &msg);
        m->st.probes++;
        p->step++;
        at(m, MS(SIM_MDNS_PROBE_INTERVAL_MS), pub_tick, p, &p->ev);
        return;
    }
    if (p->state == PUB_PROBING) { /* nobody objected within 250 ms of the last probe */
        p->state = PUB_ANNOUNCED;
        p->step = 0;
        p->announced_at = now_of(m);
    }
    if (p->state != PUB_ANNOUNCED)
        return;
    send_announce(m, p, SIM_MDNS_TTL_S);
    m->st.announces++;
    if (++p->step < SIM_MDNS_ANNOUNCES)
        at(m, MS(SIM_MDNS_ANNOUNCE_INTERVAL_MS), pub_tick, p, &p->ev);
}

static void pub_reply(void *ctx, void *arg)
{
    (void)arg;
    pub *p = ctx;
    p->reply_ev = SIM_EVENT_NONE;
    if (p->state != PUB_ANNOUNCED)
        return;
    /* RFC 6762 §6: a record is multicast at most once a second; whoever asked within that
     * second heard the last one. */
    if (p->last_sent != MESH_TIME_NEVER &&
        now_of(p->m) - p->last_sent < MS(SIM_MDNS_RECORD_MIN_INTERVAL_MS)) {
        p->m->st.answers_suppressed++;
        return;
    }
    send_announce(p->m, p, SIM_MDNS_TTL_S);
    p->m->st.answers++;
}

/* avahi_alternative_service_name(): "x" → "x #2", "x #N" → "x #N+1", cut to fit 63 bytes. */
static void alt_name(const char *name, char *out)
{
    size_t len = strlen(name);
    unsigned long n = 1;
    const char *hash = strrchr(name, '#');
    if (hash && hash > name + 1 && hash[-1] == ' ' && hash[1]) {
        char *end;
        unsigned long v = strtoul(hash + 1, &end, 10);
        if (!*end && v >= 2 && hash[1] != '0') {
            n = v;
            len = (size_t)(hash - 1 - name);
        }
    }
    char suffix[24];
    int slen = snprintf(suffix, sizeof suffix, " #%lu", n + 1);
    if (len + (size_t)slen > SIM_MDNS_NAME_MAX)
        len = SIM_MDNS_NAME_MAX - (size_t)slen;
    memcpy(out, name, len);
    memcpy(out + len, suffix, (size_t)slen + 1);
}

static void pub_conflict(pub *p)
{
    sim_mdns *m = p->m;
    m->st.conflicts++;
    cancel(m, &p->ev);
    cancel(m, &p->reply_ev);
    if (++p->renames > SIM_MDNS_MAX_RENAMES) {
        p->state = PUB_FAILED;
        if (m->has_log)
            mesh_log(&m->log, MESH_LOG_ERROR, "mdns: '%s': %d conflicts, giving up", p->name,
                     SIM_MDNS_MAX_RENAMES);
        return;
    }
    char alt[SIM_MDNS_NAME_MAX + 1];
    alt_name(p->name, alt);
    if (m->has_log)
        mesh_log(&m->log, MESH_LOG_INFO, "mdns: name '%s' is taken, trying '%s'", p->name, alt);
    memcpy(p->name, alt, strlen(alt) + 1);
    pub_probe_start(p);
}

/* Our (address, port) against theirs: the lower loses a simultaneous claim. */
static int we_lose(const sim_mdns *m, const pub *p, const mesh_addr *from, uint16_t port)
{
    uint32_t ours = sim_host_ip(m->host), theirs = sim_addr_ip4(from);
    return ours != theirs ? ours < theirs : p->port < port;
}

static void pub_free(sim_mdns *m, pub *p)
{
    cancel(m, &p->ev);
    cancel(m, &p->reply_ev);
    free(p->type);
    strv_free(p->txt);
    free(p);
}

/* ---- browsers ------------------------------------------------------------------------------ */

static void inst_free(sim_mdns *m, inst *in)
{
    cancel(m, &in->ev);
    free(in->name);
    strv_free(in->txt);
    free(in);
}

static void inst_unlink(browser *b, inst *in)
{
    for (inst **pp = &b->insts; *pp; pp = &(*pp)->next) {
        if (*pp == in) {
            *pp = in->next;
            b->ninsts--;
            return;
        }
    }
}

/* Tell the core. Returns 0 if a callback stopped everything (the caller must return). */
static int report(sim_mdns *m, browser *b, const inst *in, int removed)
{
    uint64_t gen = m->gen;
    mesh_mdns_found f = {.name = in->name, .addr = &in->addr, .txt = (const char *const *)in->txt};
    if (removed)
        m->st.removed++;
    else
        m->st.found++;
    b->cb(&f, removed, b->ud);
    return gen == m->gen;
}

static void inst_tick(void *ctx, void *arg);

/* The next cache-maintenance step of in: queries at 80 % and 90 % of its TTL, removal at
 * 100 % (RFC 6762 §5.2). */
static void inst_schedule(sim_mdns *m, inst *in)
{
    static const unsigned pct[] = {80, 90, 100};
    mesh_time when = in->seen_at + in->ttl / 100 * pct[in->stage];
    mesh_time now = now_of(m);
    at(m, when > now ? when - now : 0, inst_tick, in, &in->ev);
}

static void inst_tick(void *ctx, void *arg)
{
    (void)arg;
    inst *in = ctx;
    browser *b = in->b;
    sim_mdns *m = b->m;
    in->ev = SIM_EVENT_NONE;
    if (in->stage < 2) {
        if (query_due(m, b)) /* one query refreshes every instance of the type */
            send_query(m, b);
        in->stage++;
        inst_schedule(m, in);
        return;
    }
    inst_unlink(b, in);
    report(m, b, in, 1);
    inst_free(m, in);
}

static char **txt_copy(const sim_mdns_str *txt, size_t n)
{
    char **v = calloc(n + 1, sizeof *v);
    if (!v)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!(v[i] = malloc(txt[i].len + 1))) {
            strv_free(v);
            return NULL;
        }
        memcpy(v[i], txt[i].p, txt[i].len);
        v[i][txt[i].len] = '\0';
    }
    return v;
}

static int txt_same(char *const *v, const sim_mdns_msg *msg)
{
    size_t i = 0;
    for (; v[i]; i++)
        if (i >= msg->ntxt || !str_eq(&msg->txt[i], v[i]))
            return 0;
    return i == msg->ntxt;
}

/* An announcement (or answer, or goodbye) of b's type arrived. Returns 0 if a callback
 * stopped everything. */
static int cache_update(sim_mdns *m, browser *b, const sim_mdns_msg *msg, const mesh_addr *from)
{
    mesh_addr addr = mesh_addr_v4(sim_addr_ip4(from), msg->port);
    inst *in = b->insts;
    while (in && !str_eq(&msg->name, in->name))
        in = in->next;
    if (msg->ttl_s == 0) { /* goodbye: only its owner's counts */
        if (in && sim_addr_ip4(&in->addr) == sim_addr_ip4(from)) {
            in->seen_at = now_of(m);
            in->ttl = MS(SIM_MDNS_GOODBYE_MS);
            in->stage = 2;
            inst_schedule(m, in);
        }
        return 1;
    }
    int changed = 1;
    if (!in) {
        if (b->ninsts >= SIM_MDNS_MAX_FOUND)
            return 1;
        in = calloc(1, sizeof *in);
        if (!in || !(in->name = strndup(msg->name.p, msg->name.len)) ||
            !(in->txt = txt_copy(msg->txt, msg->ntxt))) {
            if (in)
                inst_free(m, in);
            return 1;
        }
        in->b = b;
        in->addr = addr;
        in->next = b->insts;
        b->insts = in;
        b->ninsts++;
    } else if (mesh_addr_equal(&in->addr, &addr) && txt_same(in->txt, msg)) {
        changed = 0;
    } else {
        char **txt = txt_copy(msg->txt, msg->ntxt);
        if (!txt)
            return 1;
        strv_free(in->txt);
        in->txt = txt;
        in->addr = addr;
    }
    in->seen_at = now_of(m);
    in->ttl = (mesh_time)msg->ttl_s * MESH_NS_PER_S;
    in->stage = 0;
    inst_schedule(m, in);
    return changed ? report(m, b, in, 0) : 1;
}

static void browser_query(void *ctx, void *arg)
{
    (void)arg;
    browser *b = ctx;
    sim_mdns *m = b->m;
    b->query_ev = SIM_EVENT_NONE;
    if (query_due(m, b))
        send_query(m, b);
    else
        m->st.queries_suppressed++;
    at(m, b->query_interval, browser_query, b, &b->query_ev);
    b->query_interval *= 2;
    if (b->query_interval > MS(SIM_MDNS_QUERY_MAX_MS))
        b->query_interval = MS(SIM_MDNS_QUERY_MAX_MS);
}

static void browser_free(sim_mdns *m, browser *b)
{
    cancel(m, &b->query_ev);
    while (b->insts) {
        inst *in = b->insts;
        b->insts = in->next;
        inst_free(m, in);
    }
    free(b->type);
    free(b);
}

/* ---- receiving ------------------------------------------------------------------------------ */

static void on_dgram(sim_udp_sock *s, const mesh_addr *from, const uint8_t *data, size_t len,
                     void *ud)
{
    (void)s;
    sim_mdns *m = ud;
    sim_mdns_msg msg;
    m->st.received++;
    if (sim_mdns_msg_consume(&msg, data, len) != MESH_OK) {
        m->st.malformed++;
        return;
    }
    int self = sim_addr_ip4(from) == sim_host_ip(m->host);
    if (msg.kind == SIM_MDNS_QUERY)
        for (browser *b = m->browsers; b; b = b->next)
            if (str_eq(&msg.type, b->type))
                b->last_heard = now_of(m);
    for (pub *p = m->pubs, *next; p; p = next) {
        next = p->next;
        if (!str_eq(&msg.type, p->type) || p->state == PUB_FAILED)
            continue;
        if (msg.kind == SIM_MDNS_QUERY) {
            if (p->state == PUB_ANNOUNCED && p->reply_ev == SIM_EVENT_NONE)
                at(m, rand_between(m, MS(SIM_MDNS_REPLY_MIN_MS), MS(SIM_MDNS_REPLY_MAX_MS)),
                   pub_reply, p, &p->reply_ev);
            continue;
        }
        if (self || !str_eq(&msg.name, p->name) || (msg.kind == SIM_MDNS_ANNOUNCE && !msg.ttl_s))
            continue;
        /* Someone else claims our name: a probe or an announcement. */
        if (p->state == PUB_PROBING &&
            (msg.kind == SIM_MDNS_ANNOUNCE || we_lose(m, p, from, msg.port))) {
            pub_conflict(p);
        } else if (p->state == PUB_ANNOUNCED) {
            if (msg.kind == SIM_MDNS_ANNOUNCE && we_lose(m, p, from, msg.port)) {
                pub_conflict(p);
            } else { /* defend at once (RFC 6762 §8.1, §9) */
                send_announce(m, p, SIM_MDNS_TTL_S);
                m->st.answers++;
            }
        }
    }
    if (msg.kind != SIM_MDNS_ANNOUNCE)
        return;
    for (browser *b = m->browsers, *next; b; b = next) {
        next = b->next;
        if (str_eq(&msg.type, b->type) && !cache_update(m, b, &msg, from))
            return;
    }
}

/* ---- public --------------------------------------------------------------------------------- */

int sim_mdns_new(sim_mdns **out, sim_udp *udp, sim_host *h, const mesh_env *log)
{
    if (!out || !udp || !h)
        return MESH_ERR_INVAL;
    sim_mdns *m = calloc(1, sizeof *m);
    if (!m)
        return MESH_ERR_NOMEM;
    m->udp = udp;
    m->host = h;
    m->sched = sim_net_sched(sim_host_net(h));
    if (log) {
        m->log = *log;
        m->has_log = 1;
    }
    sim_rng_derive(&m->rng, sim_net_seed(sim_host_net(h)), SIM_MDNS_RNG_STREAM + sim_host_id(h));
    int rc = sim_udp_bind(udp, h, SIM_MDNS_PORT, on_dgram, m, &m->sock);
    if (rc != MESH_OK) {
        free(m);
        return rc;
    }
    rc = sim_udp_join(m->sock, SIM_MDNS_GROUP);
    if (rc != MESH_OK) {
        sim_udp_close(m->sock);
        free(m);
        return rc;
    }
    *out = m;
    return MESH_OK;
}

static void drop_all(sim_mdns *m)
{
    while (m->pubs) {
        pub *p = m->pubs;
        m->pubs = p->next;
        pub_free(m, p);
    }
    m->npubs = 0;
    while (m->browsers) {
        browser *b = m->browsers;
        m->browsers = b->next;
        browser_free(m, b);
    }
    m->nbrowsers = 0;
    m->gen++;
}

void sim_mdns_free(sim_mdns *m)
{
    if (!m)
        return;
    drop_all(m);
    sim_udp_close(m->sock);
    free(m);
}

static int valid_type(const char *t)
{
    size_t n = strlen(t);
    return n >= 7 && n <= SIM_MDNS_NAME_MAX && t[0] == '_' &&
           (strcmp(t + n - 5, "._tcp") == 0 || strcmp(t + n - 5, "._udp") == 0);
}

int sim_mdns_publish(sim_mdns *m, const char *name, const char *type, uint16_t port,
                     const char *const *txt)
{
    if (!m || !name || !type || !*name || strlen(name) > SIM_MDNS_NAME_MAX || !valid_type(type) ||
        port == 0)
        return MESH_ERR_INVAL;
    size_t ntxt = 0, bytes = 0;
    for (; txt && txt[ntxt]; ntxt++) {
        size_t n = strlen(txt[ntxt]);
        if (n == 0)
            return MESH_ERR_INVAL;
        if (n > SIM_MDNS_STR_MAX)
            return MESH_ERR_LIMIT;
        bytes += n + 1;
    }
    if (ntxt > SIM_MDNS_MAX_TXT || bytes > SIM_MDNS_TXT_MAX)
        return MESH_ERR_LIMIT;
    pub **tail = &m->pubs;
    for (; *tail; tail = &(*tail)->next)
        if (strcmp((*tail)->name, name) == 0 && strcmp((*tail)->type, type) == 0)
            return MESH_ERR_EXISTS;
    if (m->npubs >= SIM_MDNS_MAX_PUBS)
        return MESH_ERR_LIMIT;
    pub *p = calloc(1, sizeof *p);
    if (!p)
        return MESH_ERR_NOMEM;
    p->m = m;
    memcpy(p->name, name, strlen(name) + 1);
    p->port = port;
    p->ntxt = ntxt;
    p->type = strdup(type);
    p->txt = calloc(ntxt + 1, sizeof *p->txt);
    for (size_t i = 0; p->txt && i < ntxt; i++)
        if (!(p->txt[i] = strdup(txt[i]))) {
            strv_free(p->txt);
            p->txt = NULL;
        }
    if (!p->type || !p->txt) {
        pub_free(m, p);
        return MESH_ERR_NOMEM;
    }
    *tail = p;
    m->npubs++;
    pub_probe_start(p);
    return MESH_OK;
}

int sim_mdns_browse(sim_mdns *m, const char *type, mesh_mdns_cb cb, void *ud)
{
    if (!m || !type || !cb || !valid_type(type))
        return MESH_ERR_INVAL;
    if (m->nbrowsers >= SIM_MDNS_MAX_BROWSERS)
        return MESH_ERR_LIMIT;
    browser *b = calloc(1, sizeof *b);
    if (!b || !(b->type = strdup(type))) {
        free(b);
        return MESH_ERR_NOMEM;
    }
    b->m = m;
    b->cb = cb;
    b->ud = ud;
    b->query_interval = MS(SIM_MDNS_QUERY_FIRST_MS);
    b->last_query = MESH_TIME_NEVER;
    b->last_heard = MESH_TIME_NEVER;
    browser **tail = &m->browsers;
    while (*tail)
        tail = &(*tail)->next;
    *tail = b;
    m->nbrowsers++;
    at(m, rand_between(m, MS(SIM_MDNS_REPLY_MIN_MS), MS(SIM_MDNS_REPLY_MAX_MS)), browser_query, b,
       &b->query_ev);
    return MESH_OK;
}

void sim_mdns_stop(sim_mdns *m)
{
    if (!m)
        return;
    for (pub *p = m->pubs; p; p = p->next) {
        if (p->state == PUB_ANNOUNCED) {
            send_announce(m, p, 0);
            m->st.goodbyes++;
        }
    }
    drop_all(m);
}

int sim_mdns_publication(const sim_mdns *m, size_t i, const char **name, mesh_time *announced)
{
    const pub *p = m ? m->pubs : NULL;
    for (; p && i > 0; i--)
        p = p->next;
    if (!p)
        return MESH_ERR_NOT_FOUND;
    if (name)
        *name = p->name;
    if (announced)
        *announced = p->announced_at;
    return MESH_OK;
}

sim_mdns_stats sim_mdns_get_stats(const sim_mdns *m)
{
    return m->st;
}
