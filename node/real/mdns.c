/*
 * real/mdns.c — avahi-client on the driver's event_base. See mdns.h for the contract.
 *
 * Two layers over the AvahiPoll adapter (real/avahi_poll.h: avahi's watches and timeouts as
 * libevent events):
 *  - avahi state kept on our side (publications, browsers, the instances each browser found),
 *    so everything can be registered again after a daemon restart or a host-name collision;
 *  - two deferred events: `work` (talk to avahi: reconnect, register, browse) and `deliver`
 *    (queued found/removed reports to the core). avahi callbacks only update our state and
 *    activate one of them, so no avahi callback ever reenters avahi or the core.
 */
#include "real/mdns.h"

#include "real/avahi_poll.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <avahi-client/client.h>
#include <avahi-client/lookup.h>
#include <avahi-client/publish.h>
#include <avahi-common/alternative.h>
#include <avahi-common/domain.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-common/strlst.h>
#include <event2/event.h>

typedef struct mesh_real_mdns mesh_real_mdns;

/* ---- state ----------------------------------------------------------------------------- */

enum pub_state {
    PUB_PENDING = 0, /* to be (re)registered when the daemon runs */
    PUB_ADDED = 1,   /* added and committed to its entry group */
    PUB_FAILED = 2,  /* gave up (logged) */
};

typedef struct mdns_pub {
    struct mdns_pub *next;
    mesh_real_mdns *m;
    char name[MESH_REAL_MDNS_NAME_MAX + 1]; /* current name: renamed on collisions */
    char *type;
    uint16_t port;
    AvahiStringList *txt;
    AvahiEntryGroup *group; /* NULL until registered; invalid once the client is freed */
    int state;              /* enum pub_state */
    int collided;           /* the group reported a collision: rename, register again */
    int renames;
} mdns_pub;

/* One (interface, protocol, name, type, domain) a browser reported. */
typedef struct mdns_browser mdns_browser;

typedef struct mdns_inst {
    struct mdns_inst *next;
    mdns_browser *b;
    AvahiIfIndex iface;
    AvahiProtocol proto;
    char *name, *type, *domain;
    AvahiServiceResolver *resolver; /* while resolving */
    int resolved;
    int reported; /* the one instance per (name, address) the core was told about */
    mesh_addr addr;
    char **txt; /* NULL-terminated, owned */
} mdns_inst;

struct mdns_browser {
    mdns_browser *next;
    mesh_real_mdns *m;
    char *type;
    mesh_mdns_cb cb;
    void *ud;
    AvahiServiceBrowser *sb; /* NULL until started; invalid once the client is freed */
    mdns_inst *insts;
    size_t ninsts;
};

/* A report queued for the core (copies: the instance may be gone by delivery time). */
typedef struct mdns_note {
    struct mdns_note *next;
    mdns_browser *b;
    int removed;
    char *name;
    mesh_addr addr;
    char **txt;
} mdns_note;

struct mesh_real_mdns {
    mesh_real *r;
    mesh_env env; /* for logging */
    struct event_base *base;
    mesh_real_avahi_poll poll; /* avahi's main loop: our event_base */
    AvahiClient *client;
    AvahiClientState state;
    int need_reconnect;    /* the client failed: free it and connect again */
    int host_collision;    /* the daemon re-registers its host name: withdraw groups */
    struct event *work;    /* deferred avahi calls */
    struct event *deliver; /* deferred core callbacks */
    struct event *retry;   /* reconnect timer when avahi_client_new() failed */
    mdns_pub *pubs;
    size_t npubs;
    mdns_browser *browsers;
    size_t nbrowsers;
    mdns_note *notes;
    mdns_note **notes_tail;
};

static void kick(struct event *ev)
{
    event_active(ev, 0, 0);
}

/* ---- small helpers ------------------------------------------------------------------------ */

static void strv_free(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

static char **strv_dup(char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    char **out = calloc(n + 1, sizeof *out);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!(out[i] = strdup(v[i]))) {
            strv_free(out);
            return NULL;
        }
    }
    return out;
}

/* A received TXT record as "key=value" strings (avahi's list is in wire order, which is the
 * publisher's order: avahi_string_list_new_from_array() prepends and serialising reverses).
 * Entries with a NUL byte are cut at it: the env passes C strings. */
static char **txt_from_avahi(AvahiStringList *l)
{
    size_t n = avahi_string_list_length(l);
    if (n > MESH_REAL_MDNS_MAX_TXT)
        n = MESH_REAL_MDNS_MAX_TXT;
    char **out = calloc(n + 1, sizeof *out);
    if (!out)
        return NULL;
    for (size_t i = 0; l && i < n; l = avahi_string_list_get_next(l), i++) {
        size_t len = avahi_string_list_get_size(l);
        if (!(out[i] = malloc(len + 1))) {
            strv_free(out);
            return NULL;
        }
        memcpy(out[i], avahi_string_list_get_text(l), len);
        out[i][len] = '\0';
    }
    return out;
}

/* avahi address → mesh_addr. 0 if it cannot be carried (IPv6 link-local has a scope). */
static int addr_from_avahi(const AvahiAddress *a, uint16_t port, mesh_addr *out)
{
    memset(out, 0, sizeof *out);
    out->port = port;
    if (a->proto == AVAHI_PROTO_INET) {
        out->family = MESH_AF_INET4;
        memcpy(out->ip, &a->data.ipv4.address, 4);
        return 1;
    }
    if (a->proto == AVAHI_PROTO_INET6) {
        const uint8_t *ip = a->data.ipv6.address;
        if (ip[0] == 0xfe && (ip[1] & 0xc0) == 0x80)
            return 0;
        out->family = MESH_AF_INET6;
        memcpy(out->ip, ip, 16);
        return 1;
    }
    return 0;
}

void mesh_real_mdns_txt_free(char **txt)
{
    strv_free(txt);
}

int mesh_real_mdns_answer(const uint8_t *txt, size_t txt_len, int inet6, const uint8_t *ip,
                          uint16_t port, mesh_addr *addr, char ***txt_out)
{
    AvahiAddress a = {.proto = inet6 ? AVAHI_PROTO_INET6 : AVAHI_PROTO_INET};
    memcpy(inet6 ? (void *)a.data.ipv6.address : (void *)&a.data.ipv4.address, ip, inet6 ? 16 : 4);
    if (!addr_from_avahi(&a, port, addr))
        return MESH_ERR_UNSUPPORTED;
    AvahiStringList *l = NULL;
    if (avahi_string_list_parse(txt, txt_len, &l) != 0)
        return MESH_ERR_MALFORMED; /* a length beyond the record (or no memory: avahi's) */
    /* The daemon parses into reverse order and avahi-client's D-Bus reading reverses it
     * back: resolve_done gets the list in wire order. */
    l = avahi_string_list_reverse(l);
    *txt_out = txt_from_avahi(l);
    avahi_string_list_free(l);
    return *txt_out ? MESH_OK : MESH_ERR_NOMEM;
}

/* ---- reports to the core ------------------------------------------------------------------ */

static void note_free(mdns_note *n)
{
    free(n->name);
    strv_free(n->txt);
    free(n);
}

static void note_queue(mesh_real_mdns *m, mdns_browser *b, const mdns_inst *in, int removed)
{
    mdns_note *n = calloc(1, sizeof *n);
    if (!n || !(n->name = strdup(in->name)) || !(n->txt = strv_dup(in->txt))) {
        if (n)
            note_free(n);
        mesh_log(&m->env, MESH_LOG_ERROR, "mdns: report of '%s' dropped (no memory)", in->name);
        return;
    }
    n->b = b;
    n->removed = removed;
    n->addr = in->addr;
    *m->notes_tail = n;
    m->notes_tail = &n->next;
    kick(m->deliver);
}

/* Forget queued reports of browser b (NULL: all). */
static void notes_purge(mesh_real_mdns *m, const mdns_browser *b)
{
    mdns_note **pp = &m->notes;
    while (*pp) {
        mdns_note *n = *pp;
        if (!b || n->b == b) {
            *pp = n->next;
            note_free(n);
        } else {
            pp = &n->next;
        }
    }
    m->notes_tail = pp;
}

static void deliver_run(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mesh_real_mdns *m = arg;
    mdns_note *n;
    while ((n = m->notes)) {
        m->notes = n->next;
        if (!m->notes)
            m->notes_tail = &m->notes;
        /* Popped first: the callback may stop() every browser, which purges the queue. */
        mesh_mdns_found f = {.name = n->name, .addr = &n->addr, .txt = (const char *const *)n->txt};
        n->b->cb(&f, n->removed, n->b->ud);
        note_free(n);
    }
}

/* ---- instances ------------------------------------------------------------------------------ */

static int inst_same_target(const mdns_inst *a, const mdns_inst *b)
{
    return a != b && a->resolved && strcmp(a->name, b->name) == 0 &&
           mesh_addr_equal(&a->addr, &b->addr);
}

static void inst_free(mdns_inst *in)
{
    if (in->resolver)
        avahi_service_resolver_free(in->resolver);
    free(in->name);
    free(in->type);
    free(in->domain);
    strv_free(in->txt);
    free(in);
}

/* Unlink in from b and free it. report: tell the core when it was the reported one and no
 * twin (same name and address on another interface/protocol) can stand in for it. */
static void inst_remove(mesh_real_mdns *m, mdns_browser *b, mdns_inst *in, int report)
{
    for (mdns_inst **pp = &b->insts; *pp; pp = &(*pp)->next) {
        if (*pp == in) {
            *pp = in->next;
            break;
        }
    }
    b->ninsts--;
    if (in->reported) {
        mdns_inst *twin = b->insts;
        while (twin && !inst_same_target(twin, in))
            twin = twin->next;
        if (twin)
            twin->reported = 1;
        else if (report)
            note_queue(m, b, in, 1);
    }
    inst_free(in);
}

static mdns_inst *inst_find(mdns_browser *b, AvahiIfIndex iface, AvahiProtocol proto,
                            const char *name, const char *type, const char *domain)
{
    for (mdns_inst *in = b->insts; in; in = in->next)
        if (in->iface == iface && in->proto == proto && strcmp(in->name, name) == 0 &&
            strcmp(in->type, type) == 0 && strcmp(in->domain, domain) == 0)
            return in;
    return NULL;
}

static void resolve_done(AvahiServiceResolver *res, AvahiIfIndex iface, AvahiProtocol proto,
                         AvahiResolverEvent event, const char *name, const char *type,
                         const char *domain, const char *host, const AvahiAddress *a, uint16_t port,
                         AvahiStringList *txt, AvahiLookupResultFlags flags, void *ud)
{
    (void)iface;
    (void)proto;
    (void)type;
    (void)domain;
    (void)flags;
    mdns_inst *in = ud; /* alive: an instance frees its resolver when it goes */
    mdns_browser *b = in->b;
    mesh_real_mdns *m = b->m;
    avahi_service_resolver_free(res);
    in->resolver = NULL;
    if (event != AVAHI_RESOLVER_FOUND) {
        mesh_log(&m->env, MESH_LOG_DEBUG, "mdns: cannot resolve '%s': %s", name,
                 avahi_strerror(avahi_client_errno(m->client)));
        return;
    }
    if (!addr_from_avahi(a, port, &in->addr)) {
        mesh_log(&m->env, MESH_LOG_DEBUG, "mdns: '%s' on %s: link-local IPv6 answer skipped", name,
                 host ? host : "?");
        return;
    }
    strv_free(in->txt);
    if (!(in->txt = txt_from_avahi(txt))) {
        mesh_log(&m->env, MESH_LOG_ERROR, "mdns: '%s' dropped (no memory)", name);
        return;
    }
    in->resolved = 1;
    for (mdns_inst *y = b->insts; y; y = y->next)
        if (y->reported && inst_same_target(y, in))
            return; /* its twin on another interface/protocol was reported */
    in->reported = 1;
    note_queue(m, b, in, 0);
}

static void browse_event(AvahiServiceBrowser *sb, AvahiIfIndex iface, AvahiProtocol proto,
                         AvahiBrowserEvent event, const char *name, const char *type,
                         const char *domain, AvahiLookupResultFlags flags, void *ud)
{
    (void)sb;
    (void)flags;
    mdns_browser *b = ud;
    mesh_real_mdns *m = b->m;
    mdns_inst *in;
    switch (event) {
    case AVAHI_BROWSER_NEW:
        if (inst_find(b, iface, proto, name, type, domain))
            return;
        if (b->ninsts >= MESH_REAL_MDNS_MAX_FOUND) {
            mesh_log(&m->env, MESH_LOG_WARN, "mdns: more than %d '%s' services: '%s' ignored",
                     MESH_REAL_MDNS_MAX_FOUND, type, name);
            return;
        }
        in = calloc(1, sizeof *in);
        if (!in || !(in->name = strdup(name)) || !(in->type = strdup(type)) ||
            !(in->domain = strdup(domain))) {
            if (in)
                inst_free(in);
            mesh_log(&m->env, MESH_LOG_ERROR, "mdns: '%s' ignored (no memory)", name);
            return;
        }
        in->b = b;
        in->iface = iface;
        in->proto = proto;
        /* Resolve with the protocol it was found on: an A record over IPv4 mDNS, AAAA over
         * IPv6, so one service on a dual-stack link gives one address per protocol. */
        in->resolver = avahi_service_resolver_new(m->client, iface, proto, name, type, domain,
                                                  proto, 0, resolve_done, in);
        if (!in->resolver) {
            mesh_log(&m->env, MESH_LOG_WARN, "mdns: cannot resolve '%s': %s", name,
                     avahi_strerror(avahi_client_errno(m->client)));
            inst_free(in);
            return;
        }
        in->next = b->insts;
        b->insts = in;
        b->ninsts++;
        return;
    case AVAHI_BROWSER_REMOVE:
        if ((in = inst_find(b, iface, proto, name, type, domain)))
            inst_remove(m, b, in, 1);
        return;
    case AVAHI_BROWSER_FAILURE:
        mesh_log(&m->env, MESH_LOG_WARN, "mdns: browsing '%s' failed: %s", b->type,
                 avahi_strerror(avahi_client_errno(m->client)));
        return;
    case AVAHI_BROWSER_ALL_FOR_NOW:
    case AVAHI_BROWSER_CACHE_EXHAUSTED:
        return;
    }
}

/* ---- publications and browsers -------------------------------------------------------------- */

static void group_event(AvahiEntryGroup *g, AvahiEntryGroupState st, void *ud)
{
    mdns_pub *p = ud;
    mesh_real_mdns *m = p->m;
    switch (st) {
    case AVAHI_ENTRY_GROUP_ESTABLISHED:
        mesh_log(&m->env, MESH_LOG_INFO, "mdns: published '%s' %s port %u", p->name, p->type,
                 (unsigned)p->port);
        return;
    case AVAHI_ENTRY_GROUP_COLLISION:
        p->collided = 1;
        kick(m->work);
        return;
    case AVAHI_ENTRY_GROUP_FAILURE:
        mesh_log(&m->env, MESH_LOG_WARN, "mdns: publishing '%s' failed: %s", p->name,
                 avahi_strerror(avahi_client_errno(avahi_entry_group_get_client(g))));
        return;
    case AVAHI_ENTRY_GROUP_UNCOMMITED:
    case AVAHI_ENTRY_GROUP_REGISTERING:
        return;
    }
}

/* The name is taken: switch to avahi's next alternative ("x" → "x #2" → "x #3"). */
static int pub_rename(mesh_real_mdns *m, mdns_pub *p)
{
    if (++p->renames > MESH_REAL_MDNS_MAX_RENAMES) {
        mesh_log(&m->env, MESH_LOG_ERROR, "mdns: '%s': %d collisions, giving up", p->name,
                 MESH_REAL_MDNS_MAX_RENAMES);
        p->state = PUB_FAILED;
        return -1;
    }
    char *alt = avahi_alternative_service_name(p->name);
    if (!alt || strlen(alt) > MESH_REAL_MDNS_NAME_MAX) {
        avahi_free(alt);
        p->state = PUB_FAILED;
        return -1;
    }
    mesh_log(&m->env, MESH_LOG_INFO, "mdns: name '%s' is taken, trying '%s'", p->name, alt);
    memcpy(p->name, alt, strlen(alt) + 1);
    avahi_free(alt);
    return 0;
}

static void pub_register(mesh_real_mdns *m, mdns_pub *p)
{
    if (!p->group && !(p->group = avahi_entry_group_new(m->client, group_event, p))) {
        mesh_log(&m->env, MESH_LOG_WARN, "mdns: cannot publish '%s': %s", p->name,
                 avahi_strerror(avahi_client_errno(m->client)));
        p->state = PUB_FAILED;
        return;
    }
    avahi_entry_group_reset(p->group);
    for (;;) {
        int rc =
            avahi_entry_group_add_service_strlst(p->group, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, 0,
                                                 p->name, p->type, NULL, NULL, p->port, p->txt);
        if (rc == AVAHI_ERR_COLLISION) { /* taken by a service on this very host */
            if (pub_rename(m, p) != 0)
                return;
            continue;
        }
        if (rc == AVAHI_OK)
            rc = avahi_entry_group_commit(p->group);
        if (rc != AVAHI_OK) {
            mesh_log(&m->env, MESH_LOG_WARN, "mdns: cannot publish '%s': %s", p->name,
                     avahi_strerror(rc));
            p->state = PUB_FAILED;
            return;
        }
        p->state = PUB_ADDED;
        return;
    }
}

static void browser_start(mesh_real_mdns *m, mdns_browser *b)
{
    b->sb = avahi_service_browser_new(m->client, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, b->type, NULL,
                                      0, browse_event, b);
    if (!b->sb)
        mesh_log(&m->env, MESH_LOG_WARN, "mdns: cannot browse '%s': %s", b->type,
                 avahi_strerror(avahi_client_errno(m->client)));
}

/* ---- the client ------------------------------------------------------------------------------ */

static void client_event(AvahiClient *c, AvahiClientState st, void *ud)
{
    mesh_real_mdns *m = ud; /* m->client may not be set yet: avahi_client_new() calls this */
    m->state = st;
    switch (st) {
    case AVAHI_CLIENT_S_RUNNING:
        kick(m->work);
        return;
    case AVAHI_CLIENT_S_COLLISION:
    case AVAHI_CLIENT_S_REGISTERING:
        /* The daemon (re)registers its host name: our records wait until it runs again. */
        m->host_collision = 1;
        kick(m->work);
        return;
    case AVAHI_CLIENT_FAILURE:
        mesh_log(&m->env, MESH_LOG_WARN, "mdns: avahi client failed: %s; reconnecting",
                 avahi_strerror(avahi_client_errno(c)));
        m->need_reconnect = 1;
        kick(m->work);
        return;
    case AVAHI_CLIENT_CONNECTING:
        mesh_log(&m->env, MESH_LOG_INFO, "mdns: waiting for avahi-daemon");
        return;
    }
}

/* Free the client and everything avahi held for us; keep our own records so they can be
 * registered again. report: tell the core every instance is gone. */
static void client_drop(mesh_real_mdns *m, int report)
{
    for (mdns_browser *b = m->browsers; b; b = b->next) {
        for (mdns_inst *in = b->insts; in; in = in->next)
            in->resolver = NULL; /* freed with the client */
        while (b->insts)
            inst_remove(m, b, b->insts, report);
        b->sb = NULL;
    }
    for (mdns_pub *p = m->pubs; p; p = p->next) {
        p->group = NULL;
        if (p->state == PUB_ADDED)
            p->state = PUB_PENDING;
    }
    if (m->client)
        avahi_client_free(m->client);
    m->client = NULL;
}

static void client_connect(mesh_real_mdns *m)
{
    int err = 0;
    m->state = AVAHI_CLIENT_CONNECTING;
    m->client = avahi_client_new(&m->poll.api, AVAHI_CLIENT_NO_FAIL, client_event, m, &err);
    if (!m->client) {
        mesh_log(&m->env, MESH_LOG_WARN, "mdns: cannot reach avahi: %s; retrying in %d ms",
                 avahi_strerror(err), MESH_REAL_MDNS_RETRY_MS);
        struct timeval tv = {.tv_sec = MESH_REAL_MDNS_RETRY_MS / 1000,
                             .tv_usec = (MESH_REAL_MDNS_RETRY_MS % 1000) * 1000};
        evtimer_add(m->retry, &tv);
    }
}

static void work_run(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mesh_real_mdns *m = arg;
    if (m->need_reconnect) {
        m->need_reconnect = 0;
        m->host_collision = 0;
        client_drop(m, 1);
        client_connect(m);
    }
    if (!m->client)
        return;
    if (m->state != AVAHI_CLIENT_S_RUNNING) {
        if (m->host_collision) {
            for (mdns_pub *p = m->pubs; p; p = p->next) {
                if (p->group)
                    avahi_entry_group_reset(p->group);
                if (p->state == PUB_ADDED)
                    p->state = PUB_PENDING;
            }
        }
        return;
    }
    m->host_collision = 0;
    for (mdns_pub *p = m->pubs; p; p = p->next) {
        if (p->collided) {
            p->collided = 0;
            if (p->state == PUB_ADDED && pub_rename(m, p) == 0)
                p->state = PUB_PENDING;
        }
        if (p->state == PUB_PENDING)
            pub_register(m, p);
    }
    for (mdns_browser *b = m->browsers; b; b = b->next)
        if (!b->sb)
            browser_start(m, b);
}

static void retry_fired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mesh_real_mdns *m = arg;
    if (!m->client)
        client_connect(m);
    if (m->client)
        kick(m->work);
}

/* ---- env ops ------------------------------------------------------------------------------- */

static void pub_free(mdns_pub *p)
{
    if (p->group)
        avahi_entry_group_free(p->group); /* withdraws: the daemon sends goodbyes */
    free(p->type);
    avahi_string_list_free(p->txt);
    free(p);
}

static void browser_free(mesh_real_mdns *m, mdns_browser *b)
{
    notes_purge(m, b);
    while (b->insts)
        inst_remove(m, b, b->insts, 0);
    if (b->sb)
        avahi_service_browser_free(b->sb);
    free(b->type);
    free(b);
}

static int op_publish(void *obj, const char *name, const char *type, uint16_t port,
                      const char *const *txt)
{
    mesh_real_mdns *m = mesh_real_mdns_ctx(obj);
    if (!m || !name || !type || port == 0 || strlen(name) > MESH_REAL_MDNS_NAME_MAX ||
        !avahi_is_valid_service_name(name) || !avahi_is_valid_service_type_strict(type))
        return MESH_ERR_INVAL;
    size_t ntxt = 0, txt_bytes = 0;
    for (; txt && txt[ntxt]; ntxt++) {
        size_t n = strlen(txt[ntxt]);
        if (n > MESH_REAL_MDNS_TXT_STR_MAX)
            return MESH_ERR_LIMIT;
        txt_bytes += n + 1;
    }
    if (txt_bytes > MESH_REAL_MDNS_TXT_MAX || ntxt > MESH_REAL_MDNS_MAX_TXT)
        return MESH_ERR_LIMIT;
    for (mdns_pub *p = m->pubs; p; p = p->next)
        if (strcmp(p->name, name) == 0 && strcmp(p->type, type) == 0)
            return MESH_ERR_EXISTS;
    if (m->npubs >= MESH_REAL_MDNS_MAX_PUBS)
        return MESH_ERR_LIMIT;
    mdns_pub *p = calloc(1, sizeof *p);
    if (!p)
        return MESH_ERR_NOMEM;
    p->m = m;
    memcpy(p->name, name, strlen(name) + 1);
    p->port = port;
    p->type = strdup(type);
    p->txt = ntxt ? avahi_string_list_new_from_array((const char **)txt, (int)ntxt) : NULL;
    if (!p->type || (ntxt && !p->txt)) {
        pub_free(p);
        return MESH_ERR_NOMEM;
    }
    p->next = m->pubs;
    m->pubs = p;
    m->npubs++;
    kick(m->work);
    return MESH_OK;
}

static int op_browse(void *obj, const char *type, mesh_mdns_cb cb, void *ud)
{
    mesh_real_mdns *m = mesh_real_mdns_ctx(obj);
    if (!m || !type || !cb || !avahi_is_valid_service_type_strict(type))
        return MESH_ERR_INVAL;
    if (m->nbrowsers >= MESH_REAL_MDNS_MAX_BROWSERS)
        return MESH_ERR_LIMIT;
    mdns_browser *b = calloc(1, sizeof *b);
    if (!b || !(b->type = strdup(type))) {
        free(b);
        return MESH_ERR_NOMEM;
    }
    b->m = m;
    b->cb = cb;
    b->ud = ud;
    b->next = m->browsers;
    m->browsers = b;
    m->nbrowsers++;
    kick(m->work);
    return MESH_OK;
}

static void op_stop(void *obj)
{
    mesh_real_mdns *m = mesh_real_mdns_ctx(obj);
    if (!m)
        return;
    while (m->pubs) {
        mdns_pub *p = m->pubs;
        m->pubs = p->next;
        pub_free(p);
    }
    m->npubs = 0;
    while (m->browsers) {
        mdns_browser *b = m->browsers;
        m->browsers = b->next;
        browser_free(m, b);
    }
    m->nbrowsers = 0;
    notes_purge(m, NULL);
}

static const mesh_mdns_ops MDNS_OPS = {
    .publish = op_publish,
    .browse = op_browse,
    .stop = op_stop,
};

/* ---- lifecycle ------------------------------------------------------------------------------ */

/* The client (which frees every avahi object with it), our events and m itself. */
static void mdns_destroy(mesh_real_mdns *m)
{
    if (m->client)
        avahi_client_free(m->client);
    if (m->work)
        event_free(m->work);
    if (m->deliver)
        event_free(m->deliver);
    if (m->retry)
        event_free(m->retry);
    free(m);
}

static void mdns_free(void *ctx)
{
    mesh_real_mdns *m = ctx;
    if (!m)
        return;
    op_stop(m->r); /* goodbyes while the client is still there */
    mdns_destroy(m);
}

int mesh_real_mdns_attach(mesh_real *r)
{
    if (!r)
        return MESH_ERR_INVAL;
    if (mesh_real_env(r).ops->mdns)
        return MESH_ERR_EXISTS;
    mesh_real_mdns *m = calloc(1, sizeof *m);
    if (!m)
        return MESH_ERR_NOMEM;
    m->r = r;
    m->env = mesh_real_env(r);
    m->base = mesh_real_base(r);
    m->notes_tail = &m->notes;
    mesh_real_avahi_poll_init(&m->poll, m->base, m->env);
    int rc = MESH_ERR_NOMEM;
    m->work = event_new(m->base, -1, 0, work_run, m);
    m->deliver = event_new(m->base, -1, 0, deliver_run, m);
    m->retry = evtimer_new(m->base, retry_fired, m);
    if (!m->work || !m->deliver || !m->retry)
        goto fail;
    /* No AVAHI_CLIENT_NO_FAIL here: a host without the daemon is told so at once. */
    int err = 0;
    m->state = AVAHI_CLIENT_CONNECTING;
    m->client = avahi_client_new(&m->poll.api, 0, client_event, m, &err);
    if (!m->client) {
        mesh_log(&m->env, MESH_LOG_WARN, "mdns: avahi-daemon not available (%s): mDNS disabled",
                 avahi_strerror(err));
        rc = err == AVAHI_ERR_NO_MEMORY ? MESH_ERR_NOMEM : MESH_ERR_UNSUPPORTED;
        goto fail;
    }
    rc = mesh_real_set_mdns(r, &MDNS_OPS, m, mdns_free);
    if (rc != MESH_OK)
        goto fail;
    return MESH_OK;
fail:
    mdns_destroy(m);
    return rc;
}
