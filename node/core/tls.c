/* tls.c — TLS connections, sans-I/O: OpenSSL runs the handshake through callback BIOs
 * (tls_io.c), then TLS 1.3 application records are sealed and opened by record.h with the
 * traffic secrets it derived; a TLS 1.2 connection (web-profile servers only) keeps OpenSSL's
 * records. The node's context (library context, certificate, SSL_CTXs): tls_ctx.c,
 * tls_web.c, tls_cert.c. See tls.h for the contract. */
#include "core/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/record.h"
#include "core/tls_ctx.h"

/* TLS 1.3 wire values this file reads or writes itself: post-handshake messages and alerts
 * (RFC 8446 §4, §4.6, §6). */
enum tls_wire {
    HS_HDR = 4, /* handshake message header: type, uint24 length */
    HS_NEW_SESSION_TICKET = 4,
    HS_KEY_UPDATE = 24,
    KEY_UPDATE_NOT_REQUESTED = 0,
    KEY_UPDATE_REQUESTED = 1,
    KEY_UPDATE_LEN = HS_HDR + 1, /* header + request_update */
    ALERT_LEN = 2,               /* level, description */
    ALERT_LEVEL_WARNING = 1,
    ALERT_CLOSE_NOTIFY = 0,
};

/* ---- connections ------------------------------------------------------------------------ */

/* 1 if the ClientHello's supported_versions extension lists TLS 1.3 (RFC 8446 §4.2.1): a list
 * of 2-byte versions after a 1-byte length. */
static int offers_tls13(SSL *ssl)
{
    const unsigned char *v = NULL;
    size_t n = 0;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &v, &n) != 1 || n < 1 ||
        v[0] != n - 1)
        return 0;
    for (size_t i = 1; i + 1 < n; i += 2)
        if (((unsigned)v[i] << 8 | v[i + 1]) == TLS1_3_VERSION)
            return 1;
    return 0;
}

/* A client that offers no ALPN never reaches alpn_select, and OpenSSL would finish the
 * handshake with it; we require a protocol, and docs/protocol.md promises what RFC 7301 §3.2
 * prescribes when there is none in common: a no_application_protocol alert, before any
 * answer. A hello that cannot be TLS 1.3 is left to the version negotiation, which refuses it
 * with protocol_version as before. */
int mesh_tls_client_hello(SSL *ssl, int *alert, void *arg)
{
    (void)arg;
    const unsigned char *ext = NULL;
    size_t len = 0;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext,
                                  &len) == 1 ||
        !offers_tls13(ssl))
        return SSL_CLIENT_HELLO_SUCCESS;
    mesh_tls *t = SSL_get_app_data(ssl);
    if (t)
        t->no_alpn = 1;
    *alert = SSL_AD_NO_APPLICATION_PROTOCOL;
    return SSL_CLIENT_HELLO_ERROR;
}

/* A client connection's own settings: the seed profile's ALPN list (wire: this connection's
 * override, wlen 0 = none) and SNI; a web-profile client has curl's list in its SSL_CTX and
 * sends a server name only for a host name. 1 on success. */
static int client_setup(mesh_tls *t, uint8_t *wire, size_t wlen)
{
    mesh_tls_ctx *ctx = t->ctx;
    SSL_set_connect_state(t->ssl);
    if (ctx->profile == MESH_PROFILE_WEB)
        return !ctx->send_sni || SSL_set_tlsext_host_name(t->ssl, ctx->sni) == 1;
    SSL_set_verify(t->ssl, SSL_VERIFY_PEER, NULL);
    if (!wlen) {
        memcpy(wire, ctx->alpn_wire, ctx->alpn_len);
        wlen = ctx->alpn_len;
    }
    /* SSL_set_alpn_protos returns 0 on success (sic). */
    return SSL_set_alpn_protos(t->ssl, wire, (unsigned int)wlen) == 0 &&
           SSL_set_tlsext_host_name(t->ssl, ctx->sni) == 1;
}

int mesh_tls_new(mesh_tls **out, mesh_tls_ctx *ctx, int is_server, const char *const *alpn,
                 mesh_tls_out_fn out_fn, void *out_ud)
{
    if (!out || !ctx || !out_fn)
        return MESH_ERR_INVAL;
    uint8_t wire[sizeof ctx->alpn_wire];
    size_t wlen = 0;
    if (alpn && !is_server && mesh_tls_alpn_encode(alpn, wire, sizeof wire, &wlen) != MESH_OK)
        return MESH_ERR_INVAL;
    mesh_tls *t = calloc(1, sizeof *t);
    if (!t)
        return MESH_ERR_NOMEM;
    t->ctx = ctx;
    t->out_fn = out_fn;
    t->out_ud = out_ud;
    t->is_server = is_server ? 1 : 0;
    ERR_clear_error();
    int rc = MESH_ERR_NOMEM;
    BIO *rb = NULL, *wb = NULL;
    t->ssl = SSL_new(is_server || !ctx->ssl_client ? ctx->ssl : ctx->ssl_client);
    rb = BIO_new(ctx->bio_in);
    wb = BIO_new(ctx->bio_out);
    if (!t->ssl || !rb || !wb)
        goto fail;
    BIO_set_data(rb, t);
    BIO_set_data(wb, t);
    SSL_set_app_data(t->ssl, t);
    SSL_set_bio(t->ssl, rb, wb); /* the SSL owns both now */
    rb = wb = NULL;
    rc = MESH_ERR_TLS;
    if (is_server)
        SSL_set_accept_state(t->ssl);
    else if (!client_setup(t, wire, wlen))
        goto fail;
    *out = t;
    return MESH_OK;
fail:
    mesh_tls_drain_errors(ctx->env, "connection setup", NULL, 0);
    BIO_free(rb);
    BIO_free(wb);
    mesh_tls_free(t);
    return rc;
}

int mesh_tls_set_server_name(mesh_tls *t, const char *name)
{
    if (!t || !name || mesh_host_name_check(name) != MESH_OK)
        return MESH_ERR_INVAL;
    if (t->is_server || !t->ssl || !SSL_in_before(t->ssl) || t->failed)
        return MESH_ERR_STATE;
    if (t->ctx->profile != MESH_PROFILE_WEB)
        return MESH_OK; /* the seed profile always sends the context's name */
    char *copy = strdup(name);
    if (!copy)
        return MESH_ERR_NOMEM;
    ERR_clear_error();
    if (SSL_set_tlsext_host_name(t->ssl, copy) != 1) {
        mesh_tls_drain_errors(t->ctx->env, "server name", t->err, sizeof t->err);
        free(copy);
        return MESH_ERR_TLS;
    }
    free(t->server_name);
    t->server_name = copy;
    return MESH_OK;
}

const char *mesh_tls_server_name(const mesh_tls *t)
{
    return t->server_name ? t->server_name : t->ctx->sni;
}

void mesh_tls_set_reserve(mesh_tls *t, mesh_tls_reserve_fn reserve, mesh_tls_commit_fn commit)
{
    t->reserve = reserve && commit ? reserve : NULL;
    t->commit = reserve && commit ? commit : NULL;
}

void mesh_tls_free(mesh_tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    mesh_rec_free(t->rx);
    mesh_rec_free(t->tx);
    free(t->server_name);
    free(t->in);
    free(t->pt);
    /* calloc'd in mesh_tls_new: libc's free, not OpenSSL's (an application may give OpenSSL
     * its own allocator with CRYPTO_set_mem_functions). */
    OPENSSL_cleanse(t, sizeof *t);
    free(t);
    ERR_clear_error();
}

/* Classify a failed SSL call. Empties the error queue (logging it) and makes the failure
 * sticky unless it is only "want more input". */
static int ssl_failure(mesh_tls *t, int ret, const char *what)
{
    int e = SSL_get_error(t->ssl, ret);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return MESH_ERR_AGAIN;
    }
    if (e == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        t->peer_closed = 1;
        return MESH_ERR_CLOSED;
    }
    unsigned long last = mesh_tls_drain_errors(t->ctx->env, what, t->err, sizeof t->err);
    int rc = MESH_ERR_TLS;
    if (e == SSL_ERROR_SSL && ERR_GET_LIB(last) == ERR_LIB_SSL) {
        switch (ERR_GET_REASON(last)) {
        case SSL_R_UNSUPPORTED_PROTOCOL:
        case SSL_R_NO_PROTOCOLS_AVAILABLE:
        case SSL_R_UNSUPPORTED_SSL_VERSION:
        case SSL_AD_REASON_OFFSET + SSL_AD_PROTOCOL_VERSION:
            rc = MESH_ERR_VERSION;
            break;
        case SSL_R_NO_APPLICATION_PROTOCOL:
        case SSL_AD_REASON_OFFSET + SSL_AD_NO_APPLICATION_PROTOCOL:
            rc = MESH_ERR_ALPN;
            break;
        default:
            break;
        }
    } else if (e == SSL_ERROR_SSL && last == 0) {
        snprintf(t->err, sizeof t->err, "TLS failure without an error code");
    }
    if (t->no_alpn) { /* refused by mesh_tls_client_hello: OpenSSL says "callback failed" */
        rc = MESH_ERR_ALPN;
        snprintf(t->err, sizeof t->err, "client offered no application protocol");
    }
    if (ERR_GET_REASON(last) == ERR_R_MALLOC_FAILURE)
        rc = MESH_ERR_NOMEM;
    t->failed = rc;
    return rc;
}

/* The connection fails with rc; why goes to the error text and the debug log. */
static int rec_fail(mesh_tls *t, int rc, const char *why)
{
    if (why != t->err)
        snprintf(t->err, sizeof t->err, "%s", why);
    mesh_log(t->ctx->env, MESH_LOG_DEBUG, "tls: %s", t->err);
    return t->failed = rc;
}

/* One record of type with content data (≤ MESH_REC_PLAIN_MAX) out through out_fn. */
static int seal_out(mesh_tls *t, int type, const uint8_t *data, size_t len)
{
    uint8_t local[MESH_REC_SEAL_MAX];
    size_t want = MESH_REC_HDR + len + 1 + MESH_REC_TAG;
    uint8_t *room = t->reserve ? t->reserve(t->out_ud, want) : NULL;
    long n = mesh_rec_seal(t->tx, type, data, len, room ? room : local);
    if (room)
        t->commit(t->out_ud, n < 0 ? 0 : (size_t)n);
    if (n < 0)
        return rec_fail(t, MESH_ERR_TLS,
                        n == MESH_ERR_LIMIT ? "record sequence exhausted"
                                            : "record sealing failed");
    if (!room)
        t->out_fn(t->out_ud, local, (size_t)n);
    return MESH_OK;
}

/* KeyUpdate(update_not_requested) under the current key, then the next key (RFC 8446 §4.6.3). */
static int send_key_update(mesh_tls *t)
{
    static const uint8_t msg[KEY_UPDATE_LEN] = {HS_KEY_UPDATE, 0, 0, 1, KEY_UPDATE_NOT_REQUESTED};
    int rc = seal_out(t, MESH_REC_HANDSHAKE, msg, sizeof msg);
    if (rc == MESH_OK && mesh_rec_update(t->tx) != MESH_OK)
        rc = rec_fail(t, MESH_ERR_TLS, "key update failed");
    return rc;
}

/* Keys for one direction (own: ours, to seal; else the peer's, to open) from the traffic
 * secret OpenSSL logged, for the negotiated suite. */
static int make_rec(mesh_tls *t, int own, mesh_rec **out)
{
    int suite = SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(t->ssl));
    mesh_rec_suite **su = suite >= MESH_REC_AES_128_GCM_SHA256 &&
                                  suite < MESH_REC_AES_128_GCM_SHA256 + MESH_REC_SUITES
                              ? &t->ctx->suites[suite - MESH_REC_AES_128_GCM_SHA256]
                              : NULL;
    int which = own ? t->is_server : !t->is_server; /* secret[0] client's, [1] server's */
    int rc = !su ? MESH_ERR_INVAL : *su ? MESH_OK : mesh_rec_suite_new(su, t->ctx->libctx, suite);
    if (rc == MESH_OK)
        rc = mesh_rec_new(out, *su, t->secret[which], t->secret_len[which], own);
    if (rc != MESH_OK)
        rc = rec_fail(t, rc == MESH_ERR_NOMEM ? rc : MESH_ERR_TLS,
                      "no traffic keys from the handshake");
    return rc;
}

/* Handshake complete: application records from now on are ours (record.h), keyed with the
 * traffic secrets OpenSSL logged. OpenSSL must not hold input past its Finished (it reads
 * record by record without read-ahead, so the next record is still in our input). A server
 * that wrote early (mesh_tls_early) has its sealing keys already. */
static int switch_records(mesh_tls *t)
{
    int rc = MESH_OK;
    if (SSL_version(t->ssl) != TLS1_3_VERSION)
        rc = rec_fail(t, MESH_ERR_VERSION, "not TLS 1.3");
    else if (SSL_has_pending(t->ssl))
        rc = rec_fail(t, MESH_ERR_TLS, "OpenSSL holds input past the handshake");
    if (rc == MESH_OK && !t->tx && (rc = make_rec(t, 1, &t->tx)) == MESH_OK &&
        mesh_rec_skip(t->tx, t->tickets) != MESH_OK)
        rc = rec_fail(t, MESH_ERR_TLS, "session tickets after our records");
    if (rc == MESH_OK)
        rc = make_rec(t, 0, &t->rx);
    OPENSSL_cleanse(t->secret, sizeof t->secret);
    ERR_clear_error();
    if (rc == MESH_OK)
        t->done = 1;
    return rc;
}

/* The protocol OpenSSL selected into t->alpn; 0 when none (yet). */
static size_t take_alpn(mesh_tls *t)
{
    const unsigned char *sel = NULL;
    unsigned int sel_len = 0;
    SSL_get0_alpn_selected(t->ssl, &sel, &sel_len);
    if (sel_len) /* sel is NULL when there is none */
        memcpy(t->alpn, sel, sel_len);
    t->alpn[sel_len] = '\0';
    return sel_len;
}

int mesh_tls_early(mesh_tls *t)
{
    if (t->failed)
        return t->failed;
    if (t->done || t->tx)
        return MESH_OK;
    if (t->ctx->profile == MESH_PROFILE_WEB || !t->is_server || !t->secret_len[1] ||
        SSL_version(t->ssl) != TLS1_3_VERSION || take_alpn(t) == 0)
        return MESH_ERR_AGAIN;
    int rc = make_rec(t, 1, &t->tx);
    ERR_clear_error();
    return rc;
}

/* A web-profile handshake completed. No ALPN is an ordinary connection (nginx serves it as
 * HTTP/1.1; a client went on as curl does). TLS 1.2 or older, which only a server completes
 * (for a client only_tls13 refuses it before it ends), stays on OpenSSL's record layer. */
static int web_done(mesh_tls *t)
{
    take_alpn(t);
    if (t->version == TLS1_3_VERSION)
        return switch_records(t);
    OPENSSL_cleanse(t->secret, sizeof t->secret); /* none for TLS 1.2: nothing, really */
    if (!t->is_server)
        return rec_fail(t, MESH_ERR_VERSION, "not TLS 1.3");
    t->legacy = 1;
    t->done = 1;
    return MESH_OK;
}

int mesh_tls_handshake(mesh_tls *t)
{
    if (t->failed)
        return t->failed;
    if (t->done)
        return MESH_OK;
    ERR_clear_error();
    int ret = SSL_do_handshake(t->ssl);
    mesh_tls_in_release(t);
    if (ret != 1) {
        int rc = ssl_failure(t, ret, "handshake");
        if (rc == MESH_ERR_CLOSED) { /* close_notify during the handshake */
            snprintf(t->err, sizeof t->err, "peer closed during the handshake");
            rc = t->failed = MESH_ERR_TLS;
        } else if (rc == MESH_ERR_TLS && !t->is_server && t->ctx->ssl_client &&
                   SSL_version(t->ssl) != TLS1_3_VERSION) { /* only_tls13 (tls_web.c) */
            snprintf(t->err, sizeof t->err, "server chose %s: refused", SSL_get_version(t->ssl));
            rc = t->failed = MESH_ERR_VERSION;
        }
        return rc;
    }
    t->version = SSL_version(t->ssl);
    if (t->ctx->profile == MESH_PROFILE_WEB)
        return web_done(t);
    if (take_alpn(t) == 0) {
        /* We require a protocol. A client met a server that ignored its offer; a server met
         * a client that offered none (mesh_tls_client_hello refuses that already, unless the
         * hello offered no TLS 1.3 and a test-hook context allowed TLS 1.2). */
        snprintf(t->err, sizeof t->err,
                 t->is_server ? "client offered no application protocol"
                              : "server selected no application protocol");
        mesh_log(t->ctx->env, MESH_LOG_DEBUG, "tls: %s", t->err);
        return t->failed = MESH_ERR_ALPN;
    }
    return switch_records(t);
}

int mesh_tls_is_done(const mesh_tls *t)
{
    return t->done;
}

int mesh_tls_version(const mesh_tls *t)
{
    return t->done ? t->version : 0;
}

/* ---- TLS 1.2: OpenSSL's records (web-profile servers: never a Meshara session) ---------- */

static long legacy_read(mesh_tls *t, uint8_t *buf, size_t cap)
{
    ERR_clear_error();
    int n = SSL_read(t->ssl, buf, cap > MESH_TLS_IN_MAX ? MESH_TLS_IN_MAX : (int)cap);
    if (n > 0)
        return n;
    int rc = ssl_failure(t, n, "read");
    mesh_tls_in_release(t);
    return rc == MESH_ERR_AGAIN ? 0 : rc;
}

static int legacy_write(mesh_tls *t, const uint8_t *data, size_t len)
{
    ERR_clear_error();
    while (len > 0) {
        int k = len > MESH_TLS_RECORD_MAX ? MESH_TLS_RECORD_MAX : (int)len;
        int n = SSL_write(t->ssl, data, k); /* all of it: the output BIO never refuses */
        if (n <= 0) {
            int rc = ssl_failure(t, n, "write");
            return rc == MESH_ERR_AGAIN ? rec_fail(t, MESH_ERR_TLS, "write did not complete") : rc;
        }
        data += n;
        len -= (size_t)n;
    }
    return MESH_OK;
}

static void legacy_close(mesh_tls *t)
{
    ERR_clear_error();
    (void)SSL_shutdown(t->ssl); /* close_notify; the peer's is not waited for */
    ERR_clear_error();
}

/* The next whole record of the input, contiguous: in the owned buffer (topped up from the lent
 * bytes just enough to complete it: only a record split between two feeds is copied) or in
 * place among the lent bytes. Consumed from the input. MESH_OK; MESH_ERR_AGAIN (incomplete);
 * or the connection fails (not application data, oversize: record_overflow). */
static int next_record(mesh_tls *t, const uint8_t **rec, size_t *len)
{
    const char *why = NULL;
    size_t owned = t->in_len - t->in_off;
    const uint8_t *lent = t->lent ? t->lent + t->lent_off : NULL;
    size_t lent_n = t->lent_len - t->lent_off;
    long n;
    if (owned) {
        for (size_t need = MESH_REC_HDR;;) {
            if (owned < need) {
                size_t k = need - owned < lent_n ? need - owned : lent_n;
                if (k == 0) /* nothing lent (or all of it used): wait for more */
                    return MESH_ERR_AGAIN;
                int rc = mesh_tls_in_append(t, lent, k);
                if (rc != MESH_OK)
                    return rec_fail(t, rc, "input buffer");
                t->lent_off += k, lent += k, lent_n -= k, owned += k;
                if (owned < need)
                    return MESH_ERR_AGAIN;
            }
            if ((n = mesh_rec_length(t->in + t->in_off, &why)) < 0)
                return rec_fail(t, MESH_ERR_TLS, why);
            if ((size_t)n <= owned)
                break;
            need = (size_t)n;
        }
        *rec = t->in + t->in_off;
        t->in_off += (size_t)n;
        if (t->in_off == t->in_len)
            t->in_off = t->in_len = 0; /* *rec stays valid: nothing is appended before use */
    } else {
        if (lent_n < MESH_REC_HDR)
            return MESH_ERR_AGAIN;
        if ((n = mesh_rec_length(lent, &why)) < 0)
            return rec_fail(t, MESH_ERR_TLS, why);
        if (lent_n < (size_t)n)
            return MESH_ERR_AGAIN;
        *rec = lent;
        t->lent_off += (size_t)n;
    }
    *len = (size_t)n;
    return MESH_OK;
}

/* A record of another type than application data, its content contiguous at p. */
static int control_record(mesh_tls *t, int type, const uint8_t *p, size_t n)
{
    if (type == MESH_REC_ALERT) {
        if (n != ALERT_LEN)
            return rec_fail(t, MESH_ERR_TLS, "malformed alert");
        if (p[1] == ALERT_CLOSE_NOTIFY) {
            t->peer_closed = 1;
            return MESH_ERR_CLOSED;
        }
        snprintf(t->err, sizeof t->err, "peer sent alert %u", p[1]);
        return rec_fail(t, MESH_ERR_TLS, t->err);
    }
    if (type != MESH_REC_HANDSHAKE) {
        snprintf(t->err, sizeof t->err, "unexpected content type %d after the handshake", type);
        return rec_fail(t, MESH_ERR_TLS, t->err);
    }
    if (n == 0) /* RFC 8446 §5.1: no zero-length handshake fragments */
        return rec_fail(t, MESH_ERR_TLS, "empty handshake record");
    while (n > 0) { /* whole handshake messages (one split over records is refused) */
        if (n < HS_HDR || HS_HDR + ((size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3]) > n)
            return rec_fail(t, MESH_ERR_TLS, "post-handshake message split across records");
        size_t ml = (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
        if (p[0] == HS_KEY_UPDATE && ml == 1 && p[HS_HDR] <= KEY_UPDATE_REQUESTED) {
            if (n != KEY_UPDATE_LEN) /* a key change must end its record (RFC 8446 §5.1) */
                return rec_fail(t, MESH_ERR_TLS, "KeyUpdate not at the end of its record");
            if (mesh_rec_update(t->rx) != MESH_OK)
                return rec_fail(t, MESH_ERR_TLS, "key update failed");
            if (p[HS_HDR] == KEY_UPDATE_REQUESTED && !t->closed_sent) { /* answer before data */
                int rc = send_key_update(t);
                if (rc != MESH_OK)
                    return rc;
            }
        } else if (p[0] != HS_NEW_SESSION_TICKET || t->is_server) { /* a client ignores it */
            snprintf(t->err, sizeof t->err, "unexpected handshake message %u after the handshake",
                     p[0]);
            return rec_fail(t, MESH_ERR_TLS, t->err);
        }
        p += HS_HDR + ml;
        n -= HS_HDR + ml;
    }
    return MESH_OK;
}

long mesh_tls_read(mesh_tls *t, uint8_t *buf, size_t cap)
{
    if (t->failed)
        return t->failed;
    if (!t->done)
        return MESH_ERR_STATE;
    if (t->peer_closed)
        return MESH_ERR_CLOSED;
    if (cap == 0)
        return 0;
    if (t->legacy)
        return legacy_read(t, buf, cap);
    for (;;) {
        if (t->pt_len > t->pt_off) { /* the rest of a record opened for a smaller buffer */
            size_t n = t->pt_len - t->pt_off < cap ? t->pt_len - t->pt_off : cap;
            memcpy(buf, t->pt + t->pt_off, n);
            t->pt_off += n;
            if (t->pt_off == t->pt_len)
                t->pt_off = t->pt_len = 0;
            return (long)n;
        }
        const uint8_t *rec = NULL;
        size_t len = 0;
        int rc = next_record(t, &rec, &len);
        if (rc == MESH_ERR_AGAIN) {
            mesh_tls_in_release(t);
            return 0;
        }
        if (rc != MESH_OK)
            return rc;
        /* room for what does not fit in buf (only then: most records fit) */
        if (len - MESH_REC_HDR - MESH_REC_TAG > cap && !t->pt &&
            !(t->pt = malloc(MESH_REC_INNER_MAX)))
            return rec_fail(t, MESH_ERR_NOMEM, "out of memory");
        int type = 0;
        const char *why = NULL;
        long n = mesh_rec_open(t->rx, rec, len, buf, cap, t->pt, &type, &why);
        if (n < 0)
            return rec_fail(t, MESH_ERR_TLS, why);
        if (type == MESH_REC_APPDATA) {
            if ((size_t)n > cap) { /* the rest waits in pt */
                t->pt_len = (size_t)n - cap;
                return (long)cap;
            }
            if (n > 0)
                return n;
            continue; /* an empty record is legal */
        }
        const uint8_t *p = buf;
        if ((size_t)n > cap) { /* make the content contiguous in pt */
            memmove(t->pt + cap, t->pt, (size_t)n - cap);
            memcpy(t->pt, buf, cap);
            p = t->pt;
        }
        if ((rc = control_record(t, type, p, (size_t)n)) != MESH_OK)
            return rc;
    }
}

int mesh_tls_write(mesh_tls *t, const uint8_t *data, size_t len)
{
    if (t->failed)
        return t->failed;
    if (t->legacy && !t->closed_sent)
        return legacy_write(t, data, len);
    if (!t->tx || t->closed_sent)
        return MESH_ERR_STATE;
    while (len > 0) {
        int rc = MESH_OK;
        if (mesh_rec_seq(t->tx) >= t->ctx->key_update_after)
            rc = send_key_update(t);
        size_t k = len < MESH_REC_PLAIN_MAX ? len : MESH_REC_PLAIN_MAX;
        if (rc == MESH_OK)
            rc = seal_out(t, MESH_REC_APPDATA, data, k);
        if (rc != MESH_OK)
            return rc;
        data += k;
        len -= k;
    }
    return MESH_OK;
}

int mesh_tls_send_record(mesh_tls *t, int type, const uint8_t *data, size_t len)
{
    if (type < 0 || type > 255 || len > MESH_REC_PLAIN_MAX || (!data && len))
        return MESH_ERR_INVAL;
    if (t->failed)
        return t->failed;
    if (!t->tx || t->closed_sent)
        return MESH_ERR_STATE;
    return seal_out(t, type, data, len);
}

int mesh_tls_clone(mesh_tls **out, const mesh_tls *t, mesh_tls_out_fn out_fn, void *out_ud)
{
    if (!out || !t || !out_fn)
        return MESH_ERR_INVAL;
    /* Right after the handshake: a server's tx has sealed only its session tickets. */
    if (!t->done || t->legacy || t->failed || t->closed_sent || t->peer_closed ||
        mesh_tls_in_held(t) || t->pt_len > t->pt_off || mesh_rec_seq(t->rx) ||
        mesh_rec_seq(t->tx) != t->tickets)
        return MESH_ERR_STATE;
    mesh_tls *c = calloc(1, sizeof *c);
    if (!c)
        return MESH_ERR_NOMEM;
    ERR_clear_error();
    c->ctx = t->ctx;
    c->out_fn = out_fn;
    c->out_ud = out_ud;
    c->is_server = t->is_server;
    c->done = 1;
    c->version = t->version;
    c->tickets = t->tickets;
    memcpy(c->alpn, t->alpn, sizeof c->alpn);
    int rc = mesh_rec_dup(&c->rx, t->rx);
    if (rc == MESH_OK)
        rc = mesh_rec_dup(&c->tx, t->tx);
    if (rc == MESH_OK && t->ssl && SSL_up_ref(t->ssl) == 1)
        c->ssl = t->ssl; /* for mesh_tls_export; nothing else reads it once done */
    else if (rc == MESH_OK && t->ssl)
        rc = MESH_ERR_CRYPTO;
    ERR_clear_error();
    if (rc != MESH_OK) {
        mesh_tls_free(c);
        return rc;
    }
    *out = c;
    return MESH_OK;
}

int mesh_tls_close(mesh_tls *t)
{
    if (!t->done)
        return MESH_ERR_STATE;
    if (t->closed_sent || t->failed)
        return MESH_OK;
    t->closed_sent = 1;
    if (t->legacy) {
        legacy_close(t);
        return MESH_OK;
    }
    static const uint8_t close_notify[ALERT_LEN] = {ALERT_LEVEL_WARNING, ALERT_CLOSE_NOTIFY};
    (void)seal_out(t, MESH_REC_ALERT, close_notify, sizeof close_notify);
    return MESH_OK;
}

size_t mesh_tls_partial(const mesh_tls *t)
{
    return mesh_tls_in_held(t) + (t->pt_len - t->pt_off) +
           ((!t->done || t->legacy) && t->ssl && SSL_has_pending(t->ssl) ? 1 : 0);
}

int mesh_tls_export(mesh_tls *t, const char *label, uint8_t *out, size_t len)
{
    if (!label || !out || len == 0 || len > MESH_TLS_EXPORT_MAX)
        return MESH_ERR_INVAL;
    if (t->legacy)
        return MESH_ERR_VERSION;
    if (!(t->done || t->tx) || t->failed || !t->ssl)
        return MESH_ERR_STATE;
    ERR_clear_error();
    if (SSL_export_keying_material(t->ssl, out, len, label, strlen(label), NULL, 0, 0) != 1) {
        mesh_tls_drain_errors(t->ctx->env, "export", t->err, sizeof t->err);
        return MESH_ERR_TLS;
    }
    return MESH_OK;
}

void mesh_tls_drop_handshake(mesh_tls *t)
{
    if (!t || !t->done || t->legacy || !t->ssl)
        return;
    SSL_free(t->ssl); /* its BIOs too; nothing reads or writes through them any more */
    t->ssl = NULL;
    ERR_clear_error();
}

const char *mesh_tls_alpn(const mesh_tls *t)
{
    return t->alpn;
}
const char *mesh_tls_error_text(const mesh_tls *t)
{
    return t->err;
}
