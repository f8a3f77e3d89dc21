/* censor.c — the DPI middlebox (see censor.h for the model): its rules, the flow and
 * residual tables, life cycle and switches. The per-packet path is censor_flow.c. */
#include "sim/censor.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meshara/error.h"
#include "sim/censor_int.h"

/* ---- the hash table ---------------------------------------------------------------------- */

static size_t ht_slot(const htab *t, uint64_t k0, uint64_t k1)
{
    uint64_t h = k0 * 0x9e3779b97f4a7c15ULL ^ (k1 + 0x632be59bd9b4e019ULL);
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 29;
    return (size_t)h & (t->cap - 1);
}

hnode *censor_ht_find(const htab *t, uint64_t k0, uint64_t k1)
{
    if (!t->cap)
        return NULL;
    for (hnode *n = t->b[ht_slot(t, k0, k1)]; n; n = n->next)
        if (n->k0 == k0 && n->k1 == k1)
            return n;
    return NULL;
}

/* Grow to keep chains short; a failed grow leaves the table usable (longer chains). */
int censor_ht_insert(htab *t, hnode *n)
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

void censor_ht_remove(htab *t, hnode *n)
{
    for (hnode **pp = &t->b[ht_slot(t, n->k0, n->k1)]; *pp; pp = &(*pp)->next) {
        if (*pp == n) {
            *pp = n->next;
            t->n--;
            return;
        }
    }
}

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

uint32_t censor_prefix_mask(uint8_t prefix)
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

const char *sim_censor_rule_problem(const sim_censor_rule *r)
{
    const sim_censor_match *m = &r->match;
    int hello = m->sni || m->alpn || m->ja3_md5;
    if (r->action < SIM_CENSOR_DROP || r->action > SIM_CENSOR_ALLOW)
        return "unknown action";
    if (m->proto && m->proto != SIM_PROTO_TCP && m->proto != SIM_PROTO_UDP)
        return "unknown protocol";
    if (m->sni_suffix < SIM_CENSOR_SNI_EXACT || m->sni_suffix > SIM_CENSOR_SNI_SUBDOMAINS)
        return "unknown SNI match mode";
    if (m->dst_prefix > 32)
        return "prefix longer than 32";
    if (m->dst_port_hi && m->dst_port_hi < m->dst_port_lo)
        return "port range reversed";
    if ((m->len_max == 0 && m->len_min) || m->len_min > m->len_max)
        return "length range reversed";
    if (!(m->entropy_min >= 0 && m->entropy_max >= m->entropy_min && m->entropy_max <= 8) ||
        (m->entropy_max == 0 && m->entropy_min != 0))
        return "entropy range reversed or outside [0, 8]"; /* also NaN */
    if (m->sni && !*m->sni)
        return "empty SNI";
    if (m->sni && strlen(m->sni) > SIM_CH_MAX_SNI)
        return "SNI longer than 255 bytes (no ClientHello carries one)";
    if (m->alpn && !*m->alpn)
        return "empty ALPN protocol";
    if (m->alpn && strlen(m->alpn) > SIM_CH_MAX_ALPN_LEN)
        return "ALPN protocol longer than 32 bytes (the censor keeps no more of one)";
    if (m->ja3_md5 && !is_hex32(m->ja3_md5))
        return "JA3 not 32 hex digits";
    if (hello && m->proto == SIM_PROTO_UDP)
        return "ClientHello fields over UDP (it could never match)";
    if (r->action == SIM_CENSOR_THROTTLE && !r->rate_bps)
        return "throttle without a rate";
    if (r->action == SIM_CENSOR_ALLOW && r->residual)
        return "allow with a residual";
    return NULL;
}

int sim_censor_add_rule(sim_censor *c, const sim_censor_rule *r, int *index)
{
    if (!c || !r || sim_censor_rule_problem(r))
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
    m->dst_ip &= censor_prefix_mask(m->dst_prefix);
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

void censor_flow_free(sim_censor *c, flow *f)
{
    censor_ht_remove(&c->flows, &f->h);
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

void censor_forget_all(sim_censor *c)
{
    while (c->lru_head)
        censor_flow_free(c, c->lru_head);
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
    censor_forget_all(c);
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
        censor_forget_all(c);
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
