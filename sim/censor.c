/* censor.c — the DPI middlebox (see censor.h for the model).
 *
 * Per packet: expire idle flows (an LRU list ordered by last activity, so expiry is O(1)
 * amortised), find the flow in either orientation, start one on a client's SYN (or first UDP
 * datagram), then act on its state: INSPECT (advance the stages), PASSED (nothing), BLOCKED
 * (apply the action). A flow's `cand` mask holds the rules still possible for it; a stage
 * clears the bits it rules out and the first rule whose last stage is reached decides. */
#include "sim/censor.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meshara/error.h"

enum stage { STAGE_SYN = 1, STAGE_PAYLOAD = 2, STAGE_HELLO = 3 };
_Static_assert(SIM_CENSOR_MAX_RULES <= 64, "a flow's candidate rules are one uint64_t");
enum flow_state { F_INSPECT = 0, F_PASSED = 1, F_BLOCKED = 2 };
enum { HT_INITIAL = 64, TCP_DIR_C2S = 0, TCP_DIR_S2C = 1 };

/* ---- a small chained hash table of nodes keyed by two 64-bit words ------------------------- */

typedef struct hnode {
    struct hnode *next;
    uint64_t k0, k1;
} hnode;

typedef struct htab {
    hnode **b;
    size_t cap, n; /* cap: power of two (0 before the first insert) */
} htab;

static size_t ht_slot(const htab *t, uint64_t k0, uint64_t k1)
{
    uint64_t h = k0 * 0x9e3779b97f4a7c15ULL ^ (k1 + 0x632be59bd9b4e019ULL);
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 29;
    return (size_t)h & (t->cap - 1);
}

static hnode *ht_find(const htab *t, uint64_t k0, uint64_t k1)
{
    if (!t->cap)
        return NULL;
    for (hnode *n = t->b[ht_slot(t, k0, k1)]; n; n = n->next)
        if (n->k0 == k0 && n->k1 == k1)
            return n;
    return NULL;
}

/* Grow to keep chains short; a failed grow leaves the table usable (longer chains). */
static int ht_insert(htab *t, hnode *n)
{
    if (t->n >= t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : HT_INITIAL;
        hnode **nb = calloc(ncap, sizeof *nb);
        if (!nb && !t->cap)
            return MESH_ERR_NOMEM;
        if (nb) {
            htab g = {nb, ncap, t->n};
            for (size_t i = 0; i < t->cap; i++) {
                for (hnode *x = t->b[i], *next; x; x = next) {
                    next = x->next;
                    size_t s = ht_slot(&g, x->k0, x->k1);
                    x->next = nb[s];
                    nb[s] = x;
                }
            }
            free(t->b);
            *t = g;
        }
    }
    size_t s = ht_slot(t, n->k0, n->k1);
    n->next = t->b[s];
    t->b[s] = n;
    t->n++;
    return MESH_OK;
}

static void ht_remove(htab *t, hnode *n)
{
    for (hnode **pp = &t->b[ht_slot(t, n->k0, n->k1)]; *pp; pp = &(*pp)->next) {
        if (*pp == n) {
            *pp = n->next;
            t->n--;
            return;
        }
    }
}

/* ---- state ------------------------------------------------------------------------------ */

typedef struct rule {
    sim_censor_rule r; /* strings point at the copies below */
    char name[SIM_CENSOR_MAX_NAME + 1];
    char *sni, *alpn;
    char ja3[33];
    int need; /* enum stage: the last stage whose facts this rule needs */
    sim_censor_rule_stats st;
} rule;

/* The client's first bytes, placed by sequence number; `have` = contiguous prefix. */
typedef struct reasm {
    uint32_t have;
    uint8_t map[SIM_CH_MAX_HELLO / 8];
    uint8_t buf[SIM_CH_MAX_HELLO];
} reasm;

typedef struct flow {
    hnode h;                  /* k0 = cli_ip:srv_ip, k1 = cli_port:srv_port:proto */
    struct flow *prev, *next; /* LRU, oldest first */
    uint32_t cli_ip, srv_ip;
    uint16_t cli_port, srv_port;
    uint8_t proto, state, label;
    uint8_t payload_done, resync, closed, srv_seen, rst_pending;
    int rule;
    uint64_t cand;
    uint32_t base;      /* client sequence number of stream byte 0 */
    uint32_t first_len; /* the first payload's length and entropy (PAYLOAD stage) */
    double first_h;
    mesh_time last;
    mesh_time tat[2]; /* throttle: end of the last scheduled packet, per direction */
    reasm *ra;
} flow;

typedef struct resid {
    hnode h; /* k0 = cli_ip (0 = any client):srv_ip, k1 = srv_port:proto */
    int rule;
    mesh_time until;
} resid;

struct sim_censor {
    char name[SIM_CENSOR_MAX_NAME + 1];
    uint32_t max_flows, max_residual;
    mesh_time flow_idle;
    int enabled;
    int busy;         /* inside on_packet: a callback switching us off must not free flows */
    int forget_later; /* switched off during on_packet: forget everything when it returns */
    rule *rules;
    size_t nrules;
    uint64_t hello_mask;   /* rules that need the ClientHello */
    uint64_t entropy_mask; /* rules with an entropy condition */
    htab flows, resid;
    flow *lru_head, *lru_tail;
    sim_censor_decision_fn decide_fn;
    void *decide_ud;
    sim_censor_classify_fn classify_fn;
    void *classify_ud;
    sim_censor_stats st;
    sim_client_hello ch; /* scratch: too big for the stack of a packet handler */
    char what[SIM_CENSOR_WHAT_MAX];
};

/* ---- rules ------------------------------------------------------------------------------ */

const char *sim_censor_action_name(int action)
{
    switch (action) {
    case SIM_CENSOR_DROP:
        return "drop";
    case SIM_CENSOR_RST:
        return "rst";
    case SIM_CENSOR_THROTTLE:
        return "throttle";
    case SIM_CENSOR_ALLOW:
        return "allow";
    default:
        return "?";
    }
}

static uint32_t prefix_mask(uint8_t prefix)
{
    return prefix ? (uint32_t)(0xffffffffULL << (32 - prefix)) : 0;
}

static int is_hex32(const char *s)
{
    size_t i = 0;
    for (; s[i]; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return i == 32;
}

static int rule_valid(const sim_censor_rule *r)
{
    const sim_censor_match *m = &r->match;
    int hello = m->sni || m->alpn || m->ja3_md5;
    if (r->action < SIM_CENSOR_DROP || r->action > SIM_CENSOR_ALLOW)
        return 0;
    if (m->proto && m->proto != SIM_PROTO_TCP && m->proto != SIM_PROTO_UDP)
        return 0;
    if (m->sni_suffix < SIM_CENSOR_SNI_EXACT || m->sni_suffix > SIM_CENSOR_SNI_SUBDOMAINS)
        return 0;
    if (m->dst_prefix > 32 || (m->dst_port_hi && m->dst_port_hi < m->dst_port_lo))
        return 0;
    if ((m->len_max == 0 && m->len_min) || m->len_min > m->len_max)
        return 0;
    if (!(m->entropy_min >= 0 && m->entropy_max >= m->entropy_min && m->entropy_max <= 8) ||
        (m->entropy_max == 0 && m->entropy_min != 0))
        return 0; /* also rejects NaN */
    if ((m->sni && (!*m->sni || strlen(m->sni) > SIM_CH_MAX_SNI)) ||
        (m->alpn && (!*m->alpn || strlen(m->alpn) > SIM_CH_MAX_ALPN_LEN)) ||
        (m->ja3_md5 && !is_hex32(m->ja3_md5)))
        return 0;
    if (hello && m->proto == SIM_PROTO_UDP)
        return 0; /* could never match: no ClientHello over UDP in this model */
    if (r->action == SIM_CENSOR_THROTTLE && !r->rate_bps)
        return 0;
    if (r->action == SIM_CENSOR_ALLOW && r->residual)
        return 0;
    return 1;
}

int sim_censor_add_rule(sim_censor *c, const sim_censor_rule *r, int *index)
{
    if (!c || !r || !rule_valid(r))
        return MESH_ERR_INVAL;
    if (c->nrules >= SIM_CENSOR_MAX_RULES)
        return MESH_ERR_LIMIT;
    rule *x = &c->rules[c->nrules];
    memset(x, 0, sizeof *x);
    x->r = *r;
    sim_censor_match *m = &x->r.match;
    if (m->sni && !(x->sni = strdup(m->sni)))
        goto fail;
    if (m->alpn && !(x->alpn = strdup(m->alpn)))
        goto fail;
    if (m->ja3_md5) {
        for (size_t i = 0; i < 32; i++)
            x->ja3[i] = (char)tolower((unsigned char)m->ja3_md5[i]);
        m->ja3_md5 = x->ja3;
    }
    m->sni = x->sni;
    m->alpn = x->alpn;
    m->dst_ip &= prefix_mask(m->dst_prefix);
    if (r->name)
        snprintf(x->name, sizeof x->name, "%s", r->name);
    else
        snprintf(x->name, sizeof x->name, "rule%zu", c->nrules);
    x->r.name = x->name;
    if (x->r.action == SIM_CENSOR_THROTTLE && !x->r.throttle_queue)
        x->r.throttle_queue = SIM_CENSOR_DEFAULT_THROTTLE_QUEUE_MS * MESH_NS_PER_MS;
    x->need = m->sni || m->alpn || m->ja3_md5 ? STAGE_HELLO
              : m->len_max || m->entropy_max  ? STAGE_PAYLOAD
                                              : STAGE_SYN;
    if (x->need == STAGE_HELLO)
        c->hello_mask |= 1ULL << c->nrules;
    if (m->entropy_max)
        c->entropy_mask |= 1ULL << c->nrules;
    if (index)
        *index = (int)c->nrules;
    c->nrules++;
    return MESH_OK;
fail:
    free(x->sni);
    free(x->alpn);
    memset(x, 0, sizeof *x);
    return MESH_ERR_NOMEM;
}

size_t sim_censor_rule_count(const sim_censor *c)
{
    return c ? c->nrules : 0;
}

const char *sim_censor_rule_name(const sim_censor *c, int index)
{
    if (!c || index < 0 || (size_t)index >= c->nrules)
        return NULL;
    return c->rules[index].name;
}

/* ---- create / free / switches ------------------------------------------------------------ */

int sim_censor_new(sim_censor **out, const sim_censor_cfg *cfg)
{
    if (!out)
        return MESH_ERR_INVAL;
    sim_censor_cfg d = {0};
    if (!cfg)
        cfg = &d;
    sim_censor *c = calloc(1, sizeof *c);
    if (!c)
        return MESH_ERR_NOMEM;
    c->rules = calloc(SIM_CENSOR_MAX_RULES, sizeof *c->rules);
    if (!c->rules) {
        free(c);
        return MESH_ERR_NOMEM;
    }
    snprintf(c->name, sizeof c->name, "%s", cfg->name ? cfg->name : "censor");
    c->max_flows = cfg->max_flows ? cfg->max_flows : SIM_CENSOR_DEFAULT_MAX_FLOWS;
    c->max_residual = cfg->max_residual ? cfg->max_residual : SIM_CENSOR_DEFAULT_MAX_RESIDUAL;
    c->flow_idle = cfg->flow_idle ? cfg->flow_idle : SIM_CENSOR_DEFAULT_FLOW_IDLE_S * MESH_NS_PER_S;
    c->enabled = !cfg->start_disabled;
    *out = c;
    return MESH_OK;
}

static void flow_free(sim_censor *c, flow *f)
{
    ht_remove(&c->flows, &f->h);
    if (f->prev)
        f->prev->next = f->next;
    else
        c->lru_head = f->next;
    if (f->next)
        f->next->prev = f->prev;
    else
        c->lru_tail = f->prev;
    free(f->ra);
    free(f);
}

static void forget_all(sim_censor *c)
{
    while (c->lru_head)
        flow_free(c, c->lru_head);
    for (size_t i = 0; i < c->resid.cap; i++) {
        for (hnode *n = c->resid.b[i], *next; n; n = next) {
            next = n->next;
            free(n);
        }
        c->resid.b[i] = NULL;
    }
    c->resid.n = 0;
}

void sim_censor_free(sim_censor *c)
{
    if (!c)
        return;
    forget_all(c);
    free(c->flows.b);
    free(c->resid.b);
    for (size_t i = 0; i < c->nrules; i++) {
        free(c->rules[i].sni);
        free(c->rules[i].alpn);
    }
    free(c->rules);
    free(c);
}

void sim_censor_set_enabled(sim_censor *c, int on)
{
    if (!c)
        return;
    if (!on && c->busy)
        c->forget_later = 1; /* a callback inside on_packet: the current flow is in use */
    else if (!on)
        forget_all(c);
    c->enabled = !!on;
}

int sim_censor_enabled(const sim_censor *c)
{
    return c && c->enabled;
}

void sim_censor_set_decision_cb(sim_censor *c, sim_censor_decision_fn fn, void *ud)
{
    c->decide_fn = fn;
    c->decide_ud = ud;
}

void sim_censor_set_classifier(sim_censor *c, sim_censor_classify_fn fn, void *ud)
{
    c->classify_fn = fn;
    c->classify_ud = ud;
}

int sim_censor_get_rule_stats(const sim_censor *c, int index, sim_censor_rule_stats *out)
{
    if (!c || !out || index < 0 || (size_t)index >= c->nrules)
        return MESH_ERR_INVAL;
    *out = c->rules[index].st;
    return MESH_OK;
}

sim_censor_stats sim_censor_get_stats(const sim_censor *c)
{
    sim_censor_stats s = c->st;
    s.live_flows = c->flows.n;
    s.live_residual = c->resid.n;
    return s;
}

double sim_censor_entropy(const uint8_t *data, size_t len)
{
    if (!len)
        return 0;
    size_t count[256] = {0};
    for (size_t i = 0; i < len; i++)
        count[data[i]]++;
    double h = 0;
    for (int i = 0; i < 256; i++) {
        if (count[i]) {
            double p = (double)count[i] / (double)len;
            h -= p * log2(p);
        }
    }
    return h;
}

/* ---- residual blocking -------------------------------------------------------------------- */

static uint64_t resid_k1(uint16_t srv_port, uint8_t proto)
{
    return (uint64_t)srv_port << 8 | proto;
}

static resid *resid_lookup(sim_censor *c, uint32_t cli_ip, const flow *f, mesh_time now)
{
    resid *e = (resid *)ht_find(&c->resid, (uint64_t)cli_ip << 32 | f->srv_ip,
                                resid_k1(f->srv_port, f->proto));
    if (e && e->until <= now) {
        ht_remove(&c->resid, &e->h);
        free(e);
        e = NULL;
    }
    return e;
}

static void resid_sweep(sim_censor *c, mesh_time now)
{
    for (size_t i = 0; i < c->resid.cap; i++) {
        for (hnode **pp = &c->resid.b[i]; *pp;) {
            resid *e = (resid *)*pp;
            if (e->until <= now) {
                *pp = e->h.next;
                c->resid.n--;
                free(e);
            } else {
                pp = &(*pp)->next;
            }
        }
    }
}

static void resid_add(sim_censor *c, const flow *f, int ri, mesh_time now)
{
    const sim_censor_rule *r = &c->rules[ri].r;
    uint32_t cli = r->residual_per_client ? f->cli_ip : 0;
    mesh_time until = now + r->residual;
    resid *e = resid_lookup(c, cli, f, now);
    if (e) {
        if (until > e->until)
            e->until = until;
        e->rule = ri;
        return;
    }
    if (c->resid.n >= c->max_residual)
        resid_sweep(c, now);
    if (c->resid.n >= c->max_residual || !(e = calloc(1, sizeof *e))) {
        c->st.residual_full++;
        return;
    }
    e->h.k0 = (uint64_t)cli << 32 | f->srv_ip;
    e->h.k1 = resid_k1(f->srv_port, f->proto);
    e->rule = ri;
    e->until = until;
    if (ht_insert(&c->resid, &e->h) != MESH_OK) {
        free(e);
        c->st.residual_full++;
    }
}

/* ---- decisions ----------------------------------------------------------------------------- */

static char *ip_str(uint32_t ip, char buf[16])
{
    snprintf(buf, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
    return buf;
}

/* What a rule's conditions saw, e.g. "dst=203.0.113.7:443 sni=meshara.node". */
static void describe(sim_censor *c, const rule *x, const flow *f, const sim_client_hello *ch,
                     const char *alpn)
{
    const sim_censor_match *m = &x->r.match;
    char *w = c->what;
    size_t cap = sizeof c->what, n = 0;
    char ip[16];
#define ADD(...)                                                                                   \
    do {                                                                                           \
        if (n < cap)                                                                               \
            n += (size_t)snprintf(w + n, cap - n, __VA_ARGS__);                                    \
    } while (0)
    w[0] = '\0';
    if (m->proto)
        ADD("proto=%s ", f->proto == SIM_PROTO_TCP ? "tcp" : "udp");
    if (m->dst_prefix || m->dst_port_lo)
        ADD("dst=%s:%u ", ip_str(f->srv_ip, ip), f->srv_port);
    if (m->len_max)
        ADD("len=%u ", f->first_len);
    if (m->entropy_max)
        ADD("entropy=%.3f ", f->first_h);
    if (m->sni && ch)
        ADD("sni=%s ", ch->sni);
    if (alpn)
        ADD("alpn=%s ", alpn);
    if (m->ja3_md5 && ch)
        ADD("ja3=%s ", ch->ja3_md5);
#undef ADD
    if (n == 0)
        snprintf(w, cap, "any");
    else if (n <= cap)
        w[n - 1] = '\0'; /* the trailing space */
}

static void report(sim_censor *c, const flow *f, int ri, int residual, mesh_time now)
{
    if (!c->decide_fn)
        return;
    sim_censor_decision d = {
        .at = now,
        .client = mesh_addr_v4(f->cli_ip, f->cli_port),
        .server = mesh_addr_v4(f->srv_ip, f->srv_port),
        .proto = f->proto,
        .rule = ri,
        .rule_name = c->rules[ri].name,
        .action = c->rules[ri].r.action,
        .residual = residual,
        .label = f->label,
        .what = c->what,
    };
    c->decide_fn(c->decide_ud, &d);
}

static void decide(sim_censor *c, flow *f, int ri, int residual, mesh_time now)
{
    const sim_censor_rule *r = &c->rules[ri].r;
    f->rule = ri;
    f->cand = 0;
    free(f->ra);
    f->ra = NULL;
    if (r->action == SIM_CENSOR_ALLOW) {
        f->state = F_PASSED;
    } else {
        f->state = F_BLOCKED;
        c->st.blocked[f->label]++;
        f->rst_pending = r->action == SIM_CENSOR_RST;
        f->tat[0] = f->tat[1] = now;
    }
    if (!residual && r->residual)
        resid_add(c, f, ri, now);
    report(c, f, ri, residual, now);
}

/* ---- stages ------------------------------------------------------------------------------- */

static int syn_match(const sim_censor_match *m, const flow *f)
{
    if ((m->sni || m->alpn || m->ja3_md5) && f->proto != SIM_PROTO_TCP)
        return 0; /* no ClientHello to read: ruled out at once */
    if (m->proto && m->proto != f->proto)
        return 0;
    if (m->dst_prefix && ((f->srv_ip ^ m->dst_ip) & prefix_mask(m->dst_prefix)))
        return 0;
    if (m->dst_port_lo) {
        uint16_t hi = m->dst_port_hi ? m->dst_port_hi : m->dst_port_lo;
        if (f->srv_port < m->dst_port_lo || f->srv_port > hi)
            return 0;
    }
    return 1;
}

static int payload_match(const sim_censor_match *m, const flow *f)
{
    if (m->len_max && (f->first_len < m->len_min || f->first_len > m->len_max))
        return 0;
    return !m->entropy_max || (f->first_h >= m->entropy_min && f->first_h <= m->entropy_max);
}

static int sni_match(const char *name, const char *pat, int mode)
{
    if (mode != SIM_CENSOR_SNI_SUBDOMAINS && !strcasecmp(name, pat))
        return 1;
    size_t n = strlen(name), p = strlen(pat);
    return mode != SIM_CENSOR_SNI_EXACT && n > p && name[n - p - 1] == '.' &&
           !strcasecmp(name + n - p, pat);
}

/* 1 if the hello meets the rule; *alpn gets the offered protocol that matched. */
static int hello_match(const sim_censor_match *m, const sim_client_hello *ch, const char **alpn)
{
    *alpn = NULL;
    if (!ch)
        return 0;
    if (m->sni && !sni_match(ch->sni, m->sni, m->sni_suffix))
        return 0;
    if (m->ja3_md5 && strcmp(ch->ja3_md5, m->ja3_md5))
        return 0;
    if (m->alpn) {
        for (size_t i = 0; i < ch->alpn_count && !*alpn; i++)
            if (!strcmp(ch->alpn[i], m->alpn))
                *alpn = ch->alpn[i];
        if (!*alpn)
            return 0;
    }
    return 1;
}

/* Resolve the candidates that `stage` brings facts for, in rule order; decide on the first
 * rule whose last stage this is. ch: the parsed hello, or NULL when the first bytes are not
 * one (HELLO stage only). */
static void run_stage(sim_censor *c, flow *f, int stage, const sim_client_hello *ch, mesh_time now)
{
    for (size_t i = 0; i < c->nrules && f->state == F_INSPECT; i++) {
        uint64_t bit = 1ULL << i;
        if (!(f->cand & bit))
            continue;
        rule *x = &c->rules[i];
        const char *alpn = NULL;
        int ok = stage == STAGE_SYN       ? syn_match(&x->r.match, f)
                 : stage == STAGE_PAYLOAD ? payload_match(&x->r.match, f)
                                          : hello_match(&x->r.match, ch, &alpn);
        if (ok && x->need != stage)
            continue; /* still possible: decided at a later stage */
        f->cand &= ~bit;
        x->st.evaluated[f->label]++;
        if (!ok)
            continue;
        x->st.matched[f->label]++;
        describe(c, x, f, ch, alpn);
        decide(c, f, (int)i, 0, now);
    }
    if (f->state == F_INSPECT && !f->cand) {
        f->state = F_PASSED;
        free(f->ra);
        f->ra = NULL;
    }
}

/* The client's first data segment (TCP) or datagram (UDP). */
static void payload_stage(sim_censor *c, flow *f, const sim_pkt *p, mesh_time now)
{
    f->payload_done = 1;
    f->first_len = (uint32_t)p->len;
    if (f->cand & c->entropy_mask)
        f->first_h = sim_censor_entropy(p->data, p->len);
    run_stage(c, f, STAGE_PAYLOAD, NULL, now);
}

/* A new flow at its first packet p: classify, residual check, SYN stage (and for UDP the
 * payload stage). NULL when it cannot be tracked. */
static flow *flow_start(sim_censor *c, const sim_pkt *p, mesh_time now)
{
    if (c->flows.n >= c->max_flows) {
        c->st.untracked++;
        return NULL;
    }
    flow *f = calloc(1, sizeof *f);
    if (!f) {
        c->st.untracked++;
        return NULL;
    }
    f->cli_ip = sim_addr_ip4(&p->src);
    f->srv_ip = sim_addr_ip4(&p->dst);
    f->cli_port = p->src.port;
    f->srv_port = p->dst.port;
    f->proto = p->proto;
    f->h.k0 = (uint64_t)f->cli_ip << 32 | f->srv_ip;
    f->h.k1 = (uint64_t)f->cli_port << 24 | (uint64_t)f->srv_port << 8 | f->proto;
    f->base = p->seq + 1;
    f->rule = -1;
    if (ht_insert(&c->flows, &f->h) != MESH_OK) {
        free(f);
        c->st.untracked++;
        return NULL;
    }
    f->prev = c->lru_tail; /* appended; the caller's touch keeps it there */
    if (c->lru_tail)
        c->lru_tail->next = f;
    else
        c->lru_head = f;
    c->lru_tail = f;
    f->last = now;
    if (c->classify_fn) {
        mesh_addr cli = mesh_addr_v4(f->cli_ip, f->cli_port);
        mesh_addr srv = mesh_addr_v4(f->srv_ip, f->srv_port);
        int l = c->classify_fn(c->classify_ud, &cli, &srv, f->proto);
        f->label = l > 0 && l < SIM_CENSOR_LABELS ? (uint8_t)l : SIM_CENSOR_LABEL_UNKNOWN;
    }
    c->st.flows[f->label]++;

    resid *e = resid_lookup(c, f->cli_ip, f, now);
    if (!e)
        e = resid_lookup(c, 0, f, now);
    if (e) {
        char ip[16];
        c->rules[e->rule].st.residual_hits[f->label]++;
        snprintf(c->what, sizeof c->what, "residual dst=%s:%u until=%llu", ip_str(f->srv_ip, ip),
                 f->srv_port, (unsigned long long)e->until);
        decide(c, f, e->rule, 1, now);
        return f;
    }
    f->cand = c->nrules == SIM_CENSOR_MAX_RULES ? ~0ULL : (1ULL << c->nrules) - 1;
    run_stage(c, f, STAGE_SYN, NULL, now);
    if (f->proto == SIM_PROTO_UDP && f->state == F_INSPECT)
        payload_stage(c, f, p, now);
    return f;
}

/* Place a client segment in the reassembly buffer; 1 if the contiguous prefix grew. */
static int reassemble(flow *f, const sim_pkt *p)
{
    reasm *ra = f->ra;
    uint32_t off = p->seq - f->base; /* wraps like TCP */
    if (off >= SIM_CH_MAX_HELLO)
        return 0;
    size_t n = p->len < SIM_CH_MAX_HELLO - off ? p->len : SIM_CH_MAX_HELLO - off;
    memcpy(ra->buf + off, p->data, n);
    for (size_t i = off; i < off + n; i++)
        ra->map[i / 8] |= (uint8_t)(1u << (i % 8));
    uint32_t before = ra->have;
    while (ra->have < SIM_CH_MAX_HELLO && (ra->map[ra->have / 8] >> (ra->have % 8) & 1))
        ra->have++;
    return ra->have > before;
}

static void hello_stage(sim_censor *c, flow *f, const sim_pkt *p, mesh_time now)
{
    if (!f->ra && !(f->ra = calloc(1, sizeof *f->ra)))
        return; /* no memory: inspect again on the next segment */
    if (!reassemble(f, p))
        return;
    int rc = sim_client_hello_parse(f->ra->buf, f->ra->have, &c->ch);
    if (rc == MESH_ERR_TRUNCATED && f->ra->have < SIM_CH_MAX_HELLO)
        return;
    if (rc == MESH_OK)
        c->st.hellos_parsed++;
    else
        c->st.hellos_failed++;
    run_stage(c, f, STAGE_HELLO, rc == MESH_OK ? &c->ch : NULL, now);
}

/* Advance an inspected flow with packet p. */
static void inspect(sim_censor *c, flow *f, const sim_pkt *p, int from_client, mesh_time now)
{
    if (f->proto != SIM_PROTO_TCP)
        return;
    if (!from_client)
        f->srv_seen = 1;
    if (p->flags & (SIM_TCP_RST | SIM_TCP_FIN)) {
        c->st.resyncs++;
        f->resync = 1;
        if (f->ra)
            memset(f->ra, 0, sizeof *f->ra);
        return;
    }
    if (!from_client || !p->len)
        return;
    if (f->resync) {
        f->base = p->seq;
        f->resync = 0;
    }
    if (!f->payload_done)
        payload_stage(c, f, p, now);
    if (f->state == F_INSPECT && (f->cand & c->hello_mask))
        hello_stage(c, f, p, now);
}

/* ---- actions ------------------------------------------------------------------------------ */

static void inject_rst(sim_censor *c, sim_mbox *mb, const mesh_addr *src, const mesh_addr *dst,
                       uint32_t seq, uint32_t ack, int dir)
{
    sim_net *net = sim_mbox_net(mb);
    sim_pkt *r;
    if (sim_pkt_new(net, &r, NULL, 0) != MESH_OK)
        return;
    r->src = *src;
    r->dst = *dst;
    r->proto = SIM_PROTO_TCP;
    r->flags = SIM_TCP_RST | SIM_TCP_ACK;
    r->seq = seq;
    r->ack = ack;
    if (sim_mbox_inject(mb, dir, r) == MESH_OK)
        c->st.rsts_injected++;
}

/* RSTs for the triggering client packet p: one back to the client, carrying the sequence
 * number it expects from the server (p->ack) and acknowledging p; one on to the server (if
 * it has answered), at the sequence number the server expects next (p->seq, p being
 * dropped). */
static void send_rsts(sim_censor *c, sim_mbox *mb, flow *f, const sim_pkt *p, int dir)
{
    uint32_t consumed = (uint32_t)p->len + !!(p->flags & SIM_TCP_SYN) + !!(p->flags & SIM_TCP_FIN);
    inject_rst(c, mb, &p->dst, &p->src, (p->flags & SIM_TCP_ACK) ? p->ack : 0, p->seq + consumed,
               dir == SIM_DIR_OUT ? SIM_DIR_IN : SIM_DIR_OUT);
    if (f->srv_seen)
        inject_rst(c, mb, &p->src, &p->dst, p->seq, p->ack, dir);
}

/* Shape like a link of rate_bps with a burst allowance: a packet leaves when its last bit
 * would have, minus the burst; FIFO per direction (SIM_DELAY even for 0 ns, so a packet never
 * overtakes one still waiting). */
static int throttle(sim_censor *c, flow *f, const sim_pkt *p, int from_client, mesh_time now,
                    mesh_time *delay)
{
    const sim_censor_rule *r = &c->rules[f->rule].r;
    mesh_time *tat = &f->tat[from_client ? TCP_DIR_C2S : TCP_DIR_S2C];
    mesh_time start = *tat > now ? *tat : now;
    unsigned __int128 bits = (unsigned __int128)sim_pkt_wire_bytes(p) * 8 * MESH_NS_PER_S;
    mesh_time cost = (mesh_time)((bits + r->rate_bps - 1) / r->rate_bps);
    mesh_time tau =
        (mesh_time)((unsigned __int128)r->burst_bytes * 8 * MESH_NS_PER_S / r->rate_bps);
    mesh_time end = start + cost;
    mesh_time release = end > now + tau ? end - tau : now;
    if (release - now > r->throttle_queue) {
        c->st.pkts_dropped++;
        return SIM_DROP;
    }
    *tat = end;
    *delay = release - now;
    if (*delay)
        c->st.pkts_delayed++;
    return SIM_DELAY;
}

static int inspect_packet(sim_censor *c, sim_mbox *mb, sim_pkt *p, int dir, mesh_time *delay)
{
    mesh_time now = sim_net_now(sim_mbox_net(mb));
    c->st.pkts_seen++;
    while (c->lru_head && c->lru_head->last + c->flow_idle <= now)
        flow_free(c, c->lru_head);

    uint32_t sip = sim_addr_ip4(&p->src), dip = sim_addr_ip4(&p->dst);
    uint64_t pk = (uint64_t)p->src.port, dk = (uint64_t)p->dst.port;
    int from_client = 1;
    flow *f = (flow *)ht_find(&c->flows, (uint64_t)sip << 32 | dip, pk << 24 | dk << 8 | p->proto);
    if (!f) {
        f = (flow *)ht_find(&c->flows, (uint64_t)dip << 32 | sip, dk << 24 | pk << 8 | p->proto);
        from_client = 0;
    }
    int tcp = p->proto == SIM_PROTO_TCP;
    int syn = tcp && (p->flags & (SIM_TCP_SYN | SIM_TCP_ACK)) == SIM_TCP_SYN;
    if (f && syn && from_client && f->closed) {
        flow_free(c, f); /* the 4-tuple is reused by a new connection */
        f = NULL;
    }
    if (!f) {
        if (tcp && !syn)
            return SIM_PASS; /* not seen from its SYN: not tracked */
        if (!(f = flow_start(c, p, now)))
            return SIM_PASS;
        from_client = 1;
    } else if (f->state == F_INSPECT) {
        inspect(c, f, p, from_client, now);
    }
    /* touch: move to the LRU tail */
    f->last = now;
    if (f != c->lru_tail) {
        if (f->prev)
            f->prev->next = f->next;
        else
            c->lru_head = f->next;
        f->next->prev = f->prev;
        f->prev = c->lru_tail;
        f->next = NULL;
        c->lru_tail->next = f;
        c->lru_tail = f;
    }

    if (f->state == F_PASSED) {
        if (tcp && (p->flags & (SIM_TCP_FIN | SIM_TCP_RST)))
            flow_free(c, f);
        return SIM_PASS;
    }
    if (f->state == F_INSPECT)
        return SIM_PASS;
    if (tcp && (p->flags & (SIM_TCP_FIN | SIM_TCP_RST)))
        f->closed = 1;
    switch (c->rules[f->rule].r.action) {
    case SIM_CENSOR_THROTTLE:
        return throttle(c, f, p, from_client, now, delay);
    case SIM_CENSOR_RST:
        if (f->rst_pending && tcp) {
            send_rsts(c, mb, f, p, dir);
            f->closed = 1;
        }
        f->rst_pending = 0;
        break;
    default:
        break;
    }
    c->st.pkts_dropped++;
    return SIM_DROP;
}

static int on_packet(void *obj, sim_mbox *mb, sim_pkt *p, int dir, mesh_time *delay)
{
    sim_censor *c = obj;
    if (!c->enabled || (p->proto != SIM_PROTO_TCP && p->proto != SIM_PROTO_UDP))
        return SIM_PASS;
    c->busy = 1;
    int v = inspect_packet(c, mb, p, dir, delay);
    c->busy = 0;
    if (c->forget_later) {
        c->forget_later = 0;
        if (!c->enabled)
            forget_all(c);
    }
    return v;
}

static const sim_mbox_ops censor_ops = {on_packet};

int sim_censor_attach_host(sim_censor *c, sim_net *net, sim_host *h)
{
    if (!c)
        return MESH_ERR_INVAL;
    return sim_net_attach_host_mbox(net, h, &censor_ops, c, NULL);
}

int sim_censor_attach_lan(sim_censor *c, sim_net *net, sim_lan *l)
{
    if (!c)
        return MESH_ERR_INVAL;
    return sim_net_attach_lan_mbox(net, l, &censor_ops, c, NULL);
}
