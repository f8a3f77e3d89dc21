/* tls_web.c — the web profile's two SSL_CTXs (tls.h): the client configured as curl 7.88.1
 * configures OpenSSL 3.0 for `curl https://…` (lib/vtls/openssl.c, ossl_connect_step1), the
 * server as nginx 1.22.1 does with Debian 12's nginx.conf (ngx_ssl_create,
 * ngx_http_ssl_merge_srv_conf, ngx_http_ssl_servername). Each setting below is there because
 * it shows on the wire (ClientHello, ServerHello, EncryptedExtensions, tickets) or in how a
 * handshake ends; the measurements behind them: docs/protocol.md, "TLS". The certificate:
 * tls_cert.c. Connections: tls.c. */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <string.h>

#include "core/tls_ctx.h"

int mesh_tls_is_ip_literal(const char *name)
{
    if (strchr(name, ':'))
        return 1; /* IPv6 (a host name has no ':') */
    unsigned parts = 0, value = 0, digits = 0;
    for (const char *p = name;; p++) {
        if (*p >= '0' && *p <= '9') {
            value = value * 10 + (unsigned)(*p - '0');
            if (++digits > 3 || value > 255)
                return 0;
        } else if ((*p == '.' || *p == '\0') && digits) {
            parts++;
            value = digits = 0;
            if (*p == '\0')
                return parts == 4;
        } else {
            return 0;
        }
    }
}

/* ---- the client: curl 7.88.1 -------------------------------------------------------------- */

/* Refuse to complete anything but TLS 1.3, at the first point a client can tell: the
 * server's Certificate. With TLS 1.2 that comes before the client has sent anything but its
 * hello, and the error makes OpenSSL send the alert curl sends for a certificate it does not
 * trust (unknown_ca): byte for byte what curl without -k sends a self-signed TLS 1.2 server.
 * A Meshara peer never picks 1.2. With TLS 1.3 the certificate is accepted as-is, dates
 * unread (the identity is the exporter-bound hello: session.h). The verdict counts only
 * because the verify mode is SSL_VERIFY_PEER. */
static int only_tls13(X509_STORE_CTX *store, void *arg)
{
    (void)arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    if (ssl && SSL_version(ssl) == TLS1_3_VERSION)
        return 1;
    X509_STORE_CTX_set_error(store, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
    return 0;
}

/* curl's ALPN list for HTTPS with HTTP/2 built in (its default). */
static const unsigned char CURL_ALPN[] = "\x02h2\x08http/1.1";

void *mesh_tls_web_client_new(void *libctx, int max_version)
{
    SSL_CTX *cc = SSL_CTX_new_ex(libctx, NULL, TLS_client_method());
    if (!cc)
        return NULL;
    SSL_CTX_set_mode(cc, SSL_MODE_RELEASE_BUFFERS);
    /* SSL_OP_ALL brings the padding extension (to 512 bytes); curl clears the empty-fragment
     * workaround (BEAST). No SSL_CTX_set_min_proto_version: a minimum of 1.2 would drop 1.1
     * and 1.0 from supported_versions and change the padding. */
    uint64_t opt = SSL_OP_ALL | SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION;
    SSL_CTX_set_options(cc, opt & ~(uint64_t)SSL_OP_DONT_INSERT_EMPTY_FRAGMENTS);
    if (!SSL_CTX_set_max_proto_version(cc, max_version) ||
        SSL_CTX_set_alpn_protos(cc, CURL_ALPN, sizeof CURL_ALPN - 1) != 0) {
        SSL_CTX_free(cc);
        return NULL;
    }
    /* Cipher suites, groups and signature algorithms: OpenSSL's defaults, as curl leaves
     * them. post_handshake_auth: the extension curl offers. */
    SSL_CTX_set_post_handshake_auth(cc, 1);
    /* A session is never stored, so no later connection offers a PSK (curl's CLI makes one
     * connection per run and never resumes either). */
    SSL_CTX_set_session_cache_mode(cc, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_set_verify(cc, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_cert_verify_callback(cc, only_tls13, NULL);
    return cc;
}

/* The node's client: curl's context, whose traffic secrets tls.c takes over. */
static int client_ctx(mesh_tls_ctx *c, int max_version)
{
    SSL_CTX *cc = c->ssl_client = mesh_tls_web_client_new(c->libctx, max_version);
    if (!cc)
        return MESH_ERR_TLS;
    SSL_CTX_set_keylog_callback(cc, mesh_tls_keylog);
    return MESH_OK;
}

/* ---- the server: nginx 1.22.1 ------------------------------------------------------------- */

/* nginx's ALPN list with http2 on: HTTP/2 first, then what its HTTP/1 parser speaks. */
static const unsigned char NGINX_ALPN[] = "\x02h2\x08http/1.1\x08http/1.0\x08http/0.9";

/* The first of nginx's protocols the client offered; none in common: a fatal
 * no_application_protocol alert right after the ClientHello (nginx >= 1.21.4). A client that
 * offers no ALPN never gets here and is served as HTTP/1.1. */
static int server_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl, (void)arg;
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, NGINX_ALPN, sizeof NGINX_ALPN - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* nginx answers every server name it is given as its default server would; OpenSSL then
 * acknowledges it with an empty server_name extension in EncryptedExtensions or the
 * ServerHello (without a callback it sends none). A TLS 1.2 renegotiation never gets here:
 * OpenSSL 3.0 answers it with a warning no_renegotiation, for nginx as for us. */
static int server_name(SSL *ssl, int *alert, void *arg)
{
    (void)ssl, (void)alert, (void)arg;
    return SSL_TLSEXT_ERR_OK;
}

/* Called as each session ticket is made. The session inside is dated from the env rather
 * than from OpenSSL's own reading of the wall clock, so a simulated server's tickets are a
 * function of the seed (the real node's env epoch is the wall clock: a prober resuming sees
 * nginx's behaviour). A TLS 1.3 ticket goes out in its own record under the server's
 * application key, sealed by OpenSSL before the records become ours: counted, so ours
 * continue the sequence. */
static int ticket_made(SSL *ssl, void *arg)
{
    mesh_tls_ctx *c = arg;
    mesh_tls *t = SSL_get_app_data(ssl);
    SSL_SESSION *sess = SSL_get_session(ssl);
    int64_t now = c->unix_epoch + (int64_t)(mesh_env_now(c->env) / MESH_NS_PER_S);
    if (!sess || !SSL_SESSION_set_time(sess, (long)now))
        return 0;
    if (t && SSL_version(ssl) == TLS1_3_VERSION)
        t->tickets++;
    return 1;
}

/* nginx's session id context: SHA-1 of "HTTP" and the SHA-1 of the server's certificate. It
 * is inside every ticket, so its length (20) shows in the tickets' size. */
static int session_id_context(mesh_tls_ctx *c, SSL_CTX *sc)
{
    int rc = MESH_ERR_TLS;
    unsigned char cd[EVP_MAX_MD_SIZE], sid[EVP_MAX_MD_SIZE];
    unsigned int cdl = 0, sl = 0;
    EVP_MD *sha1 = EVP_MD_fetch(c->libctx, "SHA1", NULL);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (sha1 && md && X509_digest(c->cert, sha1, cd, &cdl) && EVP_DigestInit_ex(md, sha1, NULL) &&
        EVP_DigestUpdate(md, "HTTP", 4) && EVP_DigestUpdate(md, cd, cdl) &&
        EVP_DigestFinal_ex(md, sid, &sl) && SSL_CTX_set_session_id_context(sc, sid, sl))
        rc = MESH_OK;
    EVP_MD_CTX_free(md);
    EVP_MD_free(sha1);
    return rc;
}

/* The certificate, its chain exactly as given (no automatic chain building) and its key. */
static int server_cert(mesh_tls_ctx *c, SSL_CTX *sc)
{
    if (SSL_CTX_use_certificate(sc, c->cert) != 1 || SSL_CTX_use_PrivateKey(sc, c->pkey) != 1 ||
        SSL_CTX_check_private_key(sc) != 1)
        return MESH_ERR_TLS;
    for (int i = 0; c->chain && i < sk_X509_num(c->chain); i++)
        if (SSL_CTX_add1_chain_cert(sc, sk_X509_value(c->chain, i)) != 1)
            return MESH_ERR_TLS;
    return MESH_OK;
}

static int server_ctx(mesh_tls_ctx *c, int max_version)
{
    SSL_CTX *sc = c->ssl = SSL_CTX_new_ex(c->libctx, NULL, TLS_server_method());
    if (!sc)
        return MESH_ERR_TLS;
    /* Not nginx's SSL_CTX_set_read_ahead: invisible on the wire, and tls.c needs OpenSSL to
     * hold no input past the Finished. */
    SSL_CTX_set_options(sc, SSL_OP_NO_COMPRESSION | SSL_OP_NO_ANTI_REPLAY |
                                SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(sc, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_NO_AUTO_CHAIN);
    int rc = MESH_ERR_TLS;
    if (!SSL_CTX_set_min_proto_version(sc, 0) ||
        !SSL_CTX_set_max_proto_version(sc, max_version ? max_version : TLS1_3_VERSION) ||
        !SSL_CTX_set_cipher_list(sc, "HIGH:!aNULL:!MD5") || (rc = server_cert(c, sc)) != MESH_OK ||
        (rc = session_id_context(c, sc)) != MESH_OK)
        return rc;
    SSL_CTX_set_tlsext_servername_callback(sc, server_name);
    SSL_CTX_set_alpn_select_cb(sc, server_alpn, NULL);
    /* ssl_session_cache none, ssl_session_timeout 5m: nothing stored here, tickets on with
     * OpenSSL's own keys and its default of two per full handshake, lifetime 300 s. */
    SSL_CTX_set_timeout(sc, 300);
    SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_AUTO_CLEAR |
                                           SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_cache_size(sc, 1);
    if (!SSL_CTX_set_session_ticket_cb(sc, ticket_made, NULL, c))
        return MESH_ERR_TLS;
    /* A client certificate is never asked for; the client's is not looked at. */
    SSL_CTX_set_cert_verify_callback(sc, mesh_tls_accept_any_cert, NULL);
    SSL_CTX_set_keylog_callback(sc, mesh_tls_keylog);
    return MESH_OK;
}

int mesh_tls_web_ctxs(mesh_tls_ctx *c, int max_version)
{
    int rc = server_ctx(c, max_version);
    return rc == MESH_OK ? client_ctx(c, max_version) : rc;
}
