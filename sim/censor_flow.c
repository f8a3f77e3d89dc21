/* censor_flow.c — the DPI middlebox's per-packet path (see censor.h for the model,
 * censor_int.h for the state).
 *
 * Per packet: expire idle flows (an LRU list ordered by last activity, so expiry is O(1)
 * amortised), find the flow in either orientation, start one on a client's SYN (or first UDP
 * datagram), then act on its state: INSPECT (advance the stages), PASSED (nothing), BLOCKED
 * (apply the action). A flow's `cand` mask holds the rules still possible for it; a stage
 * clears the bits it rules out and the first rule whose last stage is reached decides. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meshara/error.h"
#include "sim/censor_int.h"

/* ---- residual blocking -------------------------------------------------------------------- */

static uint64_t resid_k1(uint16_t srv_port, uint8_t proto)
{
    return (uint64_t)srv_port << 8 | proto;
}

static resid *resid_lookup(sim_censor *c, uint32_t cli_ip, const flow *f, mesh_time now)
{
    resid *e = (resid *)censor_ht_find(&c->resid, (uint64_t)cli_ip << 32 | f->srv_ip,
                                       resid_k1(f->srv_port, f->proto));
    if (e && e->until <= now) {
        censor_ht_remove(&c->resid, &e->h);
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
    if (censor_ht_insert(&c->resid, &e->h) != MESH_OK) {
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
    if (m->dst_prefix && ((f->srv_ip ^ m->dst_ip) & censor_prefix_mask(m->dst_prefix)))
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
    if (censor_ht_insert(&c->flows, &f->h) != MESH_OK) {
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
        censor_flow_free(c, c->lru_head);

    uint32_t sip = sim_addr_ip4(&p->src), dip = sim_addr_ip4(&p->dst);
    uint64_t pk = (uint64_t)p->src.port, dk = (uint64_t)p->dst.port;
    int from_client = 1;
    flow *f =
        (flow *)censor_ht_find(&c->flows, (uint64_t)sip << 32 | dip, pk << 24 | dk << 8 | p->proto);
    if (!f) {
        f = (flow *)censor_ht_find(&c->flows, (uint64_t)dip << 32 | sip,
                                   dk << 24 | pk << 8 | p->proto);
        from_client = 0;
    }
    int tcp = p->proto == SIM_PROTO_TCP;
    int syn = tcp && (p->flags & (SIM_TCP_SYN | SIM_TCP_ACK)) == SIM_TCP_SYN;
    if (f && syn && from_client && f->closed) {
        censor_flow_free(c, f); /* the 4-tuple is reused by a new connection */
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
            censor_flow_free(c, f);
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
            censor_forget_all(c);
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
