/* https_bg.c — background HTTPS-like exchanges (see https_bg.h).
 *
 * Each TLS connection is an SSL object over a pair of memory BIOs: bytes from the env
 * stream go into the read BIO, and after every OpenSSL call whatever landed in the write BIO
 * is written to the stream. The client and the server differ only in what they do once the
 * handshake is complete. */
#include "sim/https_bg.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "core/identity.h"
#include "core/tls.h"
#include "sim/clienthello.h"

enum {
    HDR_LEN = 8,   /* request length u32, response length u32 */
    CHUNK = 16384, /* plaintext per SSL_write / SSL_read call (one TLS record) */
    ALPN_WIRE_MAX = SIM_HTTPS_MAX_ALPN * 256,
};

static const char *const DEFAULT_ALPN[] = {"h2", "http/1.1", NULL};
/* The seed profile's context: its certificate is made from the identity key, which is what a
 * background server pairs it with below. */
static const mesh_tls_cfg SEED_TLS = {.profile = MESH_PROFILE_SEED};

/* ---- shared: OpenSSL context on the env, one TLS connection over one stream --------------- */

/* An OpenSSL library context drawing randomness from env: the one of a mesh_tls_ctx made for
 * a throwaway identity (which also gives a server its key and certificate). */
typedef struct tls_base {
    mesh_env env; /* the owner's copy: mesh_tls_ctx borrows it */
    mesh_identity *id;
    mesh_tls_ctx *mctx;
    SSL_CTX *ssl;
    uint8_t alpn[ALPN_WIRE_MAX]; /* RFC 7301 wire form */
    size_t alpn_len;
} tls_base;

static int alpn_wire(const char *const *list, uint8_t *out, size_t *outlen)
{
    size_t n = 0, i = 0;
    for (; list[i]; i++) {
        size_t l = strlen(list[i]);
        if (!l || l > 255 || i >= SIM_HTTPS_MAX_ALPN)
            return MESH_ERR_INVAL;
        out[n++] = (uint8_t)l;
        memcpy(out + n, list[i], l);
        n += l;
    }
    *outlen = n;
    return i ? MESH_OK : MESH_ERR_INVAL;
}

/* Server preference: the first of our protocols the client offered; none in common = carry
 * on without ALPN, as web servers do. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg)
{
    (void)ssl;
    tls_base *b = arg;
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, b->alpn, (unsigned)b->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static void base_free(tls_base *b)
{
    SSL_CTX_free(b->ssl);
    mesh_tls_ctx_free(b->mctx);
    mesh_identity_free(b->id);
    ERR_clear_error();
}

/* kind: enum sim_https_kind for a client (ignored for a server). */
static int base_init(tls_base *b, const mesh_env *env, const char *const *alpn, int server,
                     int kind)
{
    memset(b, 0, sizeof *b);
    b->env = *env;
    int rc = alpn_wire(alpn ? alpn : DEFAULT_ALPN, b->alpn, &b->alpn_len);
    if (rc != MESH_OK)
        return rc;
    if ((rc = mesh_identity_generate(&b->id, &b->env)) != MESH_OK ||
        (rc = mesh_tls_ctx_new(&b->mctx, &b->env, b->id, &SEED_TLS)) != MESH_OK)
        goto fail;
    OSSL_LIB_CTX *lib = mesh_tls_ctx_libctx(b->mctx);
    rc = MESH_ERR_TLS;
    ERR_clear_error();
    if (!server && kind == SIM_HTTPS_CURL) { /* the web profile's client, reused as it is */
        if (!(b->ssl = mesh_tls_web_client_new(lib, 0)))
            goto fail;
        return MESH_OK;
    }
    b->ssl = SSL_CTX_new_ex(lib, NULL, server ? TLS_server_method() : TLS_client_method());
    if (!b->ssl || !SSL_CTX_set_min_proto_version(b->ssl, TLS1_2_VERSION))
        goto fail;
    SSL_CTX_set_session_cache_mode(b->ssl, SSL_SESS_CACHE_OFF);
    if (!server) {
        SSL_CTX_set_verify(b->ssl, SSL_VERIFY_NONE, NULL);
        if (SSL_CTX_set_alpn_protos(b->ssl, b->alpn, (unsigned)b->alpn_len) != 0)
            goto fail;
        return MESH_OK;
    }
    SSL_CTX_set_alpn_select_cb(b->ssl, alpn_select, b);
    /* no tickets: their encrypted content carries the wall clock's time */
    SSL_CTX_set_options(b->ssl, SSL_OP_NO_TICKET);
    if (!SSL_CTX_set_num_tickets(b->ssl, 0))
        goto fail;
    const uint8_t *der;
    size_t der_len;
    EVP_PKEY *pkey = NULL;
    if (mesh_tls_ctx_cert_der(b->mctx, &der, &der_len) != MESH_OK)
        goto fail;
    X509 *cert = X509_new_ex(lib, NULL);
    if (!cert || !d2i_X509(&cert, &der, (long)der_len)) {
        X509_free(cert);
        goto fail;
    }
    int ok = SSL_CTX_use_certificate(b->ssl, cert) == 1;
    X509_free(cert);
    if (!ok || (rc = mesh_identity_pkey_in(b->id, lib, &pkey)) != MESH_OK)
        goto fail;
    ok = SSL_CTX_use_PrivateKey(b->ssl, pkey) == 1;
    EVP_PKEY_free(pkey);
    rc = ok ? MESH_OK : MESH_ERR_TLS;
    if (rc == MESH_OK)
        return MESH_OK;
fail:
    base_free(b);
    return rc;
}

/* Intrusive doubly linked list of live connections (server) or exchanges (client): the
 * member sits first in each struct, so a node pointer is the struct pointer. */
typedef struct lnode {
    struct lnode *prev, *next;
} lnode;

static void list_push(lnode **head, lnode *n)
{
    n->prev = NULL;
    n->next = *head;
    if (*head)
        (*head)->prev = n;
    *head = n;
}

static void list_unlink(lnode **head, lnode *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        *head = n->next;
    if (n->next)
        n->next->prev = n->prev;
}

typedef struct tconn {
    const mesh_env *env;
    mesh_stream *s; /* NULL once released */
    SSL *ssl;
    BIO *rb, *wb;
    int hs_done;
} tconn;

static int tconn_new(tconn *t, const tls_base *b, int server)
{
    memset(t, 0, sizeof *t);
    t->env = &b->env;
    ERR_clear_error();
    t->ssl = SSL_new(b->ssl);
    t->rb = BIO_new(BIO_s_mem());
    t->wb = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rb || !t->wb) {
        BIO_free(t->rb);
        BIO_free(t->wb);
        SSL_free(t->ssl);
        ERR_clear_error();
        return MESH_ERR_NOMEM;
    }
    BIO_set_mem_eof_return(t->rb, -1); /* empty = "retry", not EOF */
    SSL_set_bio(t->ssl, t->rb, t->wb);
    if (server)
        SSL_set_accept_state(t->ssl);
    else
        SSL_set_connect_state(t->ssl);
    return MESH_OK;
}

/* Release the stream (abort = RST) and the SSL object. */
static void tconn_free(tconn *t, int how)
{
    if (t->s)
        t->env->ops->stream_close(t->env->obj, t->s, how);
    t->s = NULL;
    SSL_free(t->ssl); /* frees both BIOs */
    t->ssl = NULL;
    ERR_clear_error();
}

/* Move what OpenSSL produced to the stream. MESH_OK or the stream's error. */
static int tconn_flush(tconn *t)
{
    uint8_t buf[CHUNK];
    int n;
    while ((n = BIO_read(t->wb, buf, sizeof buf)) > 0) {
        if (!t->s)
            return MESH_ERR_CLOSED;
        int rc = t->env->ops->stream_write(t->env->obj, t->s, buf, (size_t)n);
        if (rc != MESH_OK)
            return rc;
    }
    return MESH_OK;
}

/* Feed ciphertext and advance the handshake. 1 done, 0 needs more, MESH_ERR_TLS. */
static int tconn_progress(tconn *t, const uint8_t *data, size_t len)
{
    if (len && BIO_write(t->rb, data, (int)len) != (int)len)
        return MESH_ERR_NOMEM;
    if (t->hs_done)
        return 1;
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        t->hs_done = 1;
        return 1;
    }
    int e = SSL_get_error(t->ssl, r);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : MESH_ERR_TLS;
}

/* tconn_progress, then send what it produced (alerts included). */
static int tconn_step(tconn *t, const uint8_t *data, size_t len)
{
    int rc = tconn_progress(t, data, len);
    int wr = tconn_flush(t);
    return rc >= 0 && wr != MESH_OK ? wr : rc;
}

/* Plaintext available: bytes read (> 0), 0 none for now, MESH_ERR_CLOSED (close_notify),
 * MESH_ERR_TLS. */
static int tconn_read(tconn *t, uint8_t *buf, size_t cap)
{
    ERR_clear_error();
    int r = SSL_read(t->ssl, buf, (int)cap);
    if (r > 0)
        return r;
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    return e == SSL_ERROR_ZERO_RETURN ? MESH_ERR_CLOSED : MESH_ERR_TLS;
}

/* Send an 8-byte header (if hdr) then `body` zero bytes, in records of CHUNK. */
static int tconn_send(tconn *t, const uint8_t *hdr, uint64_t body)
{
    static const uint8_t zeros[CHUNK];
    uint8_t first[CHUNK];
    size_t h = hdr ? HDR_LEN : 0;
    if (hdr)
        memcpy(first, hdr, HDR_LEN);
    size_t n = body < CHUNK - h ? (size_t)body : CHUNK - h;
    memset(first + h, 0, n);
    ERR_clear_error();
    if (h + n && SSL_write(t->ssl, first, (int)(h + n)) <= 0)
        return MESH_ERR_TLS;
    for (body -= n; body; body -= n) {
        n = body < CHUNK ? (size_t)body : CHUNK;
        if (SSL_write(t->ssl, zeros, (int)n) <= 0)
            return MESH_ERR_TLS;
    }
    return tconn_flush(t);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- server ------------------------------------------------------------------------------ */

typedef struct sconn {
    lnode link; /* first: see lnode */
    sim_https_server *sv;
    tconn t;
    mesh_timer *idle;
    uint8_t hdr[HDR_LEN];
    size_t hdr_have;
    uint64_t body_rx;
    int responded;
} sconn;

struct sim_https_server {
    tls_base b;
    mesh_listener *l;
    mesh_addr addr;
    lnode *conns; /* of sconn */
    size_t nconns;
    sim_https_server_stats st;
};

static void sconn_free(sconn *c, int how)
{
    sim_https_server *sv = c->sv;
    tconn_free(&c->t, how);
    if (c->idle)
        sv->b.env.ops->timer_free(sv->b.env.obj, c->idle);
    list_unlink(&sv->conns, &c->link);
    sv->nconns--;
    free(c);
}

/* (Re)arm the idle timeout. */
static void sconn_touch(sconn *c)
{
    const mesh_env *e = &c->sv->b.env;
    e->ops->timer_set(e->obj, c->idle, mesh_env_now(e) + SIM_HTTPS_SERVER_IDLE_S * MESH_NS_PER_S);
}

static void sconn_fail(sconn *c)
{
    c->sv->st.failed++;
    sconn_free(c, MESH_CLOSE_ABORT);
}

/* Consume request bytes; answer once the whole request is in. 0 ok, < 0 error. */
static int sconn_consume(sconn *c, const uint8_t *p, size_t n)
{
    while (n) {
        if (c->hdr_have < HDR_LEN) {
            size_t k = HDR_LEN - c->hdr_have < n ? HDR_LEN - c->hdr_have : n;
            memcpy(c->hdr + c->hdr_have, p, k);
            c->hdr_have += k, p += k, n -= k;
            if (c->hdr_have == HDR_LEN &&
                (get_u32(c->hdr) > SIM_HTTPS_MAX_BODY || get_u32(c->hdr + 4) > SIM_HTTPS_MAX_BODY))
                return MESH_ERR_TOO_BIG;
            continue;
        }
        uint64_t want = get_u32(c->hdr) - c->body_rx;
        size_t k = want < n ? (size_t)want : n;
        c->body_rx += k, p += k, n -= k;
        if (k == 0)
            return MESH_ERR_PROTOCOL; /* bytes after the request: not this protocol */
    }
    if (c->hdr_have == HDR_LEN && c->body_rx == get_u32(c->hdr) && !c->responded) {
        c->responded = 1;
        int rc = tconn_send(&c->t, NULL, get_u32(c->hdr + 4));
        if (rc != MESH_OK)
            return rc;
        c->sv->st.served++;
    }
    return MESH_OK;
}

static void srv_data(mesh_stream *s, const uint8_t *data, size_t len, void *ud)
{
    (void)s;
    sconn *c = ud;
    sconn_touch(c);
    int rc = tconn_step(&c->t, data, len);
    if (rc <= 0) {
        if (rc < 0)
            sconn_fail(c);
        return;
    }
    uint8_t buf[CHUNK];
    int n;
    while ((n = tconn_read(&c->t, buf, sizeof buf)) > 0) {
        if (sconn_consume(c, buf, (size_t)n) != MESH_OK) {
            sconn_fail(c);
            return;
        }
    }
    if (n == MESH_ERR_CLOSED && c->responded) { /* the client's close_notify: answer it */
        ERR_clear_error();
        SSL_shutdown(c->t.ssl);
        tconn_flush(&c->t);
        sconn_free(c, MESH_CLOSE_GRACEFUL);
    } else if (n < 0) {
        sconn_fail(c);
    }
}

static void srv_closed(mesh_stream *s, int reason, void *ud)
{
    (void)s, (void)reason;
    sconn *c = ud;
    c->t.s = NULL; /* released by the driver */
    if (!c->responded)
        c->sv->st.failed++;
    sconn_free(c, MESH_CLOSE_ABORT);
}

static void srv_idle(mesh_timer *t, void *ud)
{
    (void)t;
    sconn_fail(ud);
}

static const mesh_stream_cbs SRV_CBS = {NULL, srv_data, NULL, srv_closed};

static void srv_accept(mesh_listener *l, mesh_stream *s, const mesh_addr *peer, void *ud)
{
    (void)l, (void)peer;
    sim_https_server *sv = ud;
    const mesh_env *e = &sv->b.env;
    sconn *c = NULL;
    if (sv->nconns >= SIM_HTTPS_MAX_SERVER_CONNS || !(c = calloc(1, sizeof *c)) ||
        tconn_new(&c->t, &sv->b, 1) != MESH_OK) {
        free(c);
        sv->st.refused++;
        e->ops->stream_close(e->obj, s, MESH_CLOSE_ABORT);
        return;
    }
    c->sv = sv;
    c->t.s = s;
    list_push(&sv->conns, &c->link);
    sv->nconns++;
    sv->st.accepted++;
    e->ops->stream_set_cbs(e->obj, s, &SRV_CBS, c);
    if (!(c->idle = e->ops->timer_new(e->obj, srv_idle, c))) {
        sconn_fail(c);
        return;
    }
    sconn_touch(c);
}

int sim_https_server_new(sim_https_server **out, const mesh_env *env,
                         const sim_https_server_cfg *cfg)
{
    if (!out || !env)
        return MESH_ERR_INVAL;
    sim_https_server_cfg d = {0};
    if (!cfg)
        cfg = &d;
    sim_https_server *sv = calloc(1, sizeof *sv);
    if (!sv)
        return MESH_ERR_NOMEM;
    int rc = base_init(&sv->b, env, cfg->alpn, 1, 0);
    if (rc != MESH_OK) {
        free(sv);
        return rc;
    }
    mesh_addr any = mesh_addr_v4(0, cfg->port ? cfg->port : SIM_HTTPS_DEFAULT_PORT);
    sv->l = env->ops->listen(env->obj, &any, srv_accept, sv, &rc);
    if (!sv->l) {
        base_free(&sv->b);
        free(sv);
        return rc;
    }
    env->ops->listener_addr(env->obj, sv->l, &sv->addr);
    *out = sv;
    return MESH_OK;
}

void sim_https_server_free(sim_https_server *sv)
{
    if (!sv)
        return;
    while (sv->conns)
        sconn_free((sconn *)sv->conns, MESH_CLOSE_ABORT);
    sv->b.env.ops->listener_close(sv->b.env.obj, sv->l);
    base_free(&sv->b);
    free(sv);
}

mesh_addr sim_https_server_addr(const sim_https_server *sv)
{
    return sv->addr;
}

sim_https_server_stats sim_https_server_get_stats(const sim_https_server *sv)
{
    return sv->st;
}

/* ---- client ------------------------------------------------------------------------------ */

typedef struct xchg {
    lnode link; /* first: see lnode */
    sim_https_client *cl;
    tconn t;
    mesh_timer *timer;
    mesh_time started;
    mesh_addr local;
    uint64_t rx;
    int sent;
} xchg;

struct sim_https_client {
    tls_base b;
    sim_https_client_cfg cfg;
    char sni[256];
    mesh_timer *tick;
    uint32_t launched;
    int stopped;
    lnode *live; /* of xchg */
    size_t nlive;
    sim_https_exchange_fn fn;
    void *ud;
    sim_https_stats st;
};

static void xchg_end(xchg *x, int result)
{
    sim_https_client *cl = x->cl;
    const mesh_env *e = &cl->b.env;
    mesh_time now = mesh_env_now(e);
    if (result == MESH_OK) {
        cl->st.completed++;
        mesh_time lat = now - x->started;
        cl->st.latency_sum += lat;
        if (lat > cl->st.latency_max)
            cl->st.latency_max = lat;
        ERR_clear_error();
        SSL_shutdown(x->t.ssl); /* close_notify, as a browser closing the connection */
        tconn_flush(&x->t);
    } else {
        cl->st.failed++;
        int k = result == MESH_ERR_RESET     ? SIM_HTTPS_FAIL_RESET
                : result == MESH_ERR_TIMEOUT ? SIM_HTTPS_FAIL_TIMEOUT
                : result == MESH_ERR_REFUSED ? SIM_HTTPS_FAIL_REFUSED
                : result == MESH_ERR_TLS     ? SIM_HTTPS_FAIL_TLS
                : result == MESH_ERR_CLOSED  ? SIM_HTTPS_FAIL_CLOSED
                                             : SIM_HTTPS_FAIL_OTHER;
        cl->st.failed_by[k]++;
    }
    if (cl->fn)
        cl->fn(cl->ud, result, &x->local, x->started, now - x->started);
    tconn_free(&x->t, result == MESH_OK ? MESH_CLOSE_GRACEFUL : MESH_CLOSE_ABORT);
    e->ops->timer_free(e->obj, x->timer);
    list_unlink(&cl->live, &x->link);
    cl->nlive--;
    free(x);
}

static void cli_connected(mesh_stream *s, void *ud)
{
    xchg *x = ud;
    const mesh_env *e = &x->cl->b.env;
    e->ops->stream_addrs(e->obj, s, &x->local, NULL);
    int rc = tconn_step(&x->t, NULL, 0); /* the ClientHello */
    if (rc < 0)
        xchg_end(x, rc);
}

static void cli_data(mesh_stream *s, const uint8_t *data, size_t len, void *ud)
{
    (void)s;
    xchg *x = ud;
    sim_https_client *cl = x->cl;
    int rc = tconn_step(&x->t, data, len);
    if (rc <= 0) {
        if (rc < 0)
            xchg_end(x, rc);
        return;
    }
    if (!x->sent) {
        uint8_t hdr[HDR_LEN];
        put_u32(hdr, cl->cfg.request_bytes);
        put_u32(hdr + 4, cl->cfg.response_bytes);
        x->sent = 1;
        if ((rc = tconn_send(&x->t, hdr, cl->cfg.request_bytes)) != MESH_OK) {
            xchg_end(x, rc);
            return;
        }
        cl->st.bytes_sent += HDR_LEN + cl->cfg.request_bytes;
    }
    uint8_t buf[CHUNK];
    int n;
    while ((n = tconn_read(&x->t, buf, sizeof buf)) > 0) {
        x->rx += (size_t)n;
        cl->st.bytes_received += (size_t)n;
    }
    if (x->rx >= cl->cfg.response_bytes)
        xchg_end(x, x->rx == cl->cfg.response_bytes ? MESH_OK : MESH_ERR_PROTOCOL);
    else if (n < 0)
        xchg_end(x, n);
}

static void cli_closed(mesh_stream *s, int reason, void *ud)
{
    (void)s;
    xchg *x = ud;
    x->t.s = NULL; /* released by the driver */
    xchg_end(x, reason == MESH_OK ? MESH_ERR_CLOSED : reason);
}

static void xchg_timeout(mesh_timer *t, void *ud)
{
    (void)t;
    xchg_end(ud, MESH_ERR_TIMEOUT);
}

static const mesh_stream_cbs CLI_CBS = {cli_connected, cli_data, NULL, cli_closed};

static void xchg_start(sim_https_client *cl)
{
    const mesh_env *e = &cl->b.env;
    if (cl->nlive >= SIM_HTTPS_MAX_INFLIGHT) {
        cl->st.skipped++;
        return;
    }
    cl->st.started++;
    xchg *x = calloc(1, sizeof *x);
    if (!x || !(x->timer = e->ops->timer_new(e->obj, xchg_timeout, x))) {
        free(x);
        cl->st.failed++;
        cl->st.failed_by[SIM_HTTPS_FAIL_OTHER]++;
        return;
    }
    x->cl = cl;
    x->started = mesh_env_now(e);
    list_push(&cl->live, &x->link);
    cl->nlive++;
    int err = tconn_new(&x->t, &cl->b, 0);
    if (err == MESH_OK && cl->sni[0] && !SSL_set_tlsext_host_name(x->t.ssl, cl->sni))
        err = MESH_ERR_TLS;
    if (err == MESH_OK)
        x->t.s = e->ops->connect(e->obj, &cl->cfg.server, &CLI_CBS, x, &err);
    if (!x->t.s) {
        xchg_end(x, err ? err : MESH_ERR_INTERNAL);
        return;
    }
    e->ops->timer_set(e->obj, x->timer, x->started + cl->cfg.timeout);
}

static void cli_tick(mesh_timer *t, void *ud)
{
    sim_https_client *cl = ud;
    const mesh_env *e = &cl->b.env;
    if (cl->stopped || (cl->cfg.count && cl->launched >= cl->cfg.count))
        return;
    cl->launched++;
    xchg_start(cl);
    if (cl->cfg.count && cl->launched >= cl->cfg.count)
        return;
    mesh_time next = mesh_env_now(e) + cl->cfg.interval;
    if (cl->cfg.jitter)
        next += mesh_env_random_below(e, cl->cfg.jitter + 1);
    e->ops->timer_set(e->obj, t, next);
}

int sim_https_client_new(sim_https_client **out, const mesh_env *env,
                         const sim_https_client_cfg *cfg)
{
    if (!out || !env || !cfg || cfg->server.family != MESH_AF_INET4 || !cfg->server.port)
        return MESH_ERR_INVAL;
    const char *sni = cfg->sni ? cfg->sni : SIM_HTTPS_DEFAULT_SNI;
    if (!*sni || strlen(sni) > 253 || cfg->request_bytes > SIM_HTTPS_MAX_BODY ||
        cfg->response_bytes > SIM_HTTPS_MAX_BODY ||
        (cfg->kind != SIM_HTTPS_OPENSSL && cfg->kind != SIM_HTTPS_CURL))
        return MESH_ERR_INVAL;
    sim_https_client *cl = calloc(1, sizeof *cl);
    if (!cl)
        return MESH_ERR_NOMEM;
    cl->cfg = *cfg;
    /* curl sends no server name for an address */
    if (cfg->kind != SIM_HTTPS_CURL || mesh_host_name_check(sni) == MESH_OK)
        strcpy(cl->sni, sni);
    cl->cfg.sni = cl->sni;
    cl->cfg.alpn = NULL; /* kept in wire form only */
    if (!cl->cfg.request_bytes)
        cl->cfg.request_bytes = SIM_HTTPS_DEFAULT_REQUEST;
    if (!cl->cfg.response_bytes)
        cl->cfg.response_bytes = SIM_HTTPS_DEFAULT_RESPONSE;
    if (!cl->cfg.interval)
        cl->cfg.interval = SIM_HTTPS_DEFAULT_INTERVAL_MS * MESH_NS_PER_MS;
    if (!cl->cfg.timeout)
        cl->cfg.timeout = SIM_HTTPS_DEFAULT_TIMEOUT_S * MESH_NS_PER_S;
    int rc = base_init(&cl->b, env, cfg->alpn, 0, cfg->kind);
    if (rc != MESH_OK) {
        free(cl);
        return rc;
    }
    const mesh_env *e = &cl->b.env;
    if (!(cl->tick = e->ops->timer_new(e->obj, cli_tick, cl))) {
        base_free(&cl->b);
        free(cl);
        return MESH_ERR_NOMEM;
    }
    e->ops->timer_set(e->obj, cl->tick, cfg->start);
    *out = cl;
    return MESH_OK;
}

void sim_https_client_stop(sim_https_client *cl)
{
    cl->stopped = 1;
    cl->b.env.ops->timer_stop(cl->b.env.obj, cl->tick);
}

void sim_https_client_free(sim_https_client *cl)
{
    if (!cl)
        return;
    cl->fn = NULL; /* no callbacks while tearing down */
    while (cl->live)
        xchg_end((xchg *)cl->live, MESH_ERR_CLOSED);
    cl->b.env.ops->timer_free(cl->b.env.obj, cl->tick);
    base_free(&cl->b);
    free(cl);
}

void sim_https_client_set_cb(sim_https_client *cl, sim_https_exchange_fn fn, void *ud)
{
    cl->fn = fn;
    cl->ud = ud;
}

sim_https_stats sim_https_client_get_stats(const sim_https_client *cl)
{
    return cl->st;
}

int sim_https_client_done(const sim_https_client *cl)
{
    return (cl->stopped || (cl->cfg.count && cl->launched >= cl->cfg.count)) && !cl->nlive;
}

int sim_https_curl_ja3(const mesh_env *env, const char *sni, char out[SIM_HTTPS_JA3_LEN + 1])
{
    if (!env || !out || (sni && mesh_host_name_check(sni) != MESH_OK))
        return MESH_ERR_INVAL;
    tls_base b;
    int rc = base_init(&b, env, NULL, 0, SIM_HTTPS_CURL);
    if (rc != MESH_OK)
        return rc;
    tconn t;
    if ((rc = tconn_new(&t, &b, 0)) == MESH_OK) {
        rc = MESH_ERR_TLS;
        char *hello = NULL;
        long len = 0;
        sim_client_hello ch;
        if ((!sni || SSL_set_tlsext_host_name(t.ssl, sni) == 1) && SSL_do_handshake(t.ssl) <= 0 &&
            (len = BIO_get_mem_data(t.wb, &hello)) > 0 &&
            sim_client_hello_parse((const uint8_t *)hello, (size_t)len, &ch) == MESH_OK) {
            memcpy(out, ch.ja3_md5, SIM_HTTPS_JA3_LEN + 1);
            rc = MESH_OK;
        }
        tconn_free(&t, MESH_CLOSE_ABORT);
    }
    base_free(&b);
    return rc;
}
