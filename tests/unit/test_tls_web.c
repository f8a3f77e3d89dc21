/* test_tls_web.c — the web profile's connections (tls.h): the ClientHello is curl's (its JA3
 * as measured on the wire from curl 7.88.1 on Debian 12, the sim's DPI parser computing it
 * from our bytes), two web nodes talk, the server as a stock OpenSSL client sees it (two
 * session tickets of lifetime 300 before our records, which must continue their sequence),
 * TLS 1.2 completed by the server on OpenSSL's records but refused by our client, ALPN as
 * nginx selects it, renegotiation refused, reproducible bytes from the env's randomness.
 * The certificate: test_tls_cert.c. The same comparison against curl and nginx themselves, on
 * a captured wire: tests/real/test_stealth_fp.sh. */
#include "mesh_test.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>

#include "core/tls.h"
#include "sim/clienthello.h"
#include "tls_pair.h"

/* curl 7.88.1 / OpenSSL 3.0.19, `curl -k https://127.0.0.1:P/` and `curl -k
 * https://localhost:P/` (JA3 = MD5 of the string; with a server name the extension list
 * starts 0-11-…). Measured with tshark 4.0's ja3 field (docs/protocol.md, "TLS"). */
#define CURL_JA3_IP                                                                                \
    "771,4866-4867-4865-49196-49200-159-52393-52392-52394-49195-49199-158-49188-49192-107-"        \
    "49187-49191-103-49162-49172-57-49161-49171-51-157-156-61-60-53-47-255,11-10-16-22-23-49-13-"  \
    "43-45-51-21,29-23-30-25-24-256-257-258-259-260,0-1-2"
#define CURL_JA3_IP_MD5 "78f0dc5ac5b19daf131a133cfdee9691"
#define CURL_JA3_SNI_MD5 "0149f47eabf9a20d0893e2a44e5a6323"
enum {
    CURL_HELLO_LEN = 517, /* record header + 512: the padding extension fills it */
    PUMP_ROUNDS = 32,
    ALERT_REC_LEN = 7,
    ALERT_UNKNOWN_CA = 48,
    ALERT_NO_RENEGOTIATION = 100,
    ALERT_NO_APP_PROTOCOL = 120,
    NGINX_TICKETS = 2,
    NGINX_TICKET_LIFETIME = 300,
};

/* ---- one of ours ------------------------------------------------------------------------- */

typedef mesh_tlsp_end end; /* tls_pair.h; cfg NULL: the web profile's defaults */

/* The ClientHello a web client sends (first call to mesh_tls_handshake), parsed. */
static void first_hello(const mesh_tls_cfg *cfg, const char *const *alpn, sim_client_hello *ch,
                        size_t *len)
{
    end c;
    mesh_tlsp_init(&c, 7, 0, cfg, alpn);
    CU_ASSERT_EQUAL(mesh_tls_handshake(c.t), MESH_ERR_AGAIN);
    *len = c.out.len;
    CU_ASSERT_EQUAL(sim_client_hello_parse(c.out.b, c.out.len, ch), MESH_OK);
    mesh_tlsp_free(&c);
}

/* ---- a stock OpenSSL peer ---------------------------------------------------------------- */

typedef struct peer {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *rb, *wb; /* network -> SSL, SSL -> network */
    int tickets;  /* NewSessionTickets received */
    long lifetime;
    int alert; /* the last alert received: level << 8 | description */
} peer;

static void peer_info(const SSL *ssl, int where, int ret)
{
    peer *p = SSL_get_app_data(ssl);
    if ((where & SSL_CB_READ_ALERT) == SSL_CB_READ_ALERT)
        p->alert = ret;
}

static int peer_new_session(SSL *ssl, SSL_SESSION *sess)
{
    peer *p = SSL_get_app_data(ssl);
    p->tickets++;
    p->lifetime = (long)SSL_SESSION_get_ticket_lifetime_hint(sess);
    return 0; /* not kept */
}

/* A client (OpenSSL's defaults) offering alpn (RFC 7301 wire form; NULL: no ALPN), at most
 * max_version (0: TLS 1.3). */
static void peer_init(peer *p, const char *alpn, size_t alpn_len, int max_version)
{
    memset(p, 0, sizeof *p);
    p->ctx = SSL_CTX_new(TLS_client_method());
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->ctx);
    SSL_CTX_set_verify(p->ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(p->ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_sess_set_new_cb(p->ctx, peer_new_session);
    if (max_version)
        CU_ASSERT_FATAL(SSL_CTX_set_max_proto_version(p->ctx, max_version) == 1);
    if (alpn)
        CU_ASSERT_FATAL(
            SSL_CTX_set_alpn_protos(p->ctx, (const unsigned char *)alpn, (unsigned)alpn_len) == 0);
    p->ssl = SSL_new(p->ctx);
    p->rb = BIO_new(BIO_s_mem());
    p->wb = BIO_new(BIO_s_mem());
    CU_ASSERT_FATAL(p->ssl && p->rb && p->wb);
    BIO_set_mem_eof_return(p->rb, -1);
    SSL_set_bio(p->ssl, p->rb, p->wb);
    SSL_set_app_data(p->ssl, p);
    SSL_set_info_callback(p->ssl, peer_info);
    SSL_set_connect_state(p->ssl);
}

static void peer_free(peer *p)
{
    SSL_free(p->ssl);
    SSL_CTX_free(p->ctx);
    ERR_clear_error();
}

static void to_peer(end *e, peer *p)
{
    if (e->out.len)
        CU_ASSERT_EQUAL(BIO_write(p->rb, e->out.b, (int)e->out.len), (int)e->out.len);
    e->out.len = 0;
}

static void to_end(peer *p, end *e)
{
    char *data = NULL;
    long n = BIO_get_mem_data(p->wb, &data);
    if (n > 0)
        CU_ASSERT_EQUAL(mesh_tls_feed(e->t, (const uint8_t *)data, (size_t)n), MESH_OK);
    (void)BIO_reset(p->wb);
}

/* Handshake between the peer (client) and our server; the peer's last SSL_do_handshake. */
static int peer_pump(peer *p, end *s)
{
    int r = 0;
    for (int i = 0; i < PUMP_ROUNDS; i++) {
        r = SSL_do_handshake(p->ssl);
        to_end(p, s);
        if (s->hs == MESH_ERR_AGAIN)
            s->hs = mesh_tls_handshake(s->t);
        to_peer(s, p);
    }
    ERR_clear_error();
    return r;
}

/* Whatever the peer can read now, into buf (cap bytes): the count. */
static int peer_read(peer *p, char *buf, int cap)
{
    int n = SSL_read(p->ssl, buf, cap);
    ERR_clear_error();
    return n;
}

/* ---- tests ------------------------------------------------------------------------------- */

/* Our ClientHello is curl's: same JA3 (hence the same suites, extensions, groups, point
 * formats in the same order), same length (the padding extension to 512), ALPN h2,http/1.1
 * whatever a session asks for, SNI only for a host name. */
static void test_hello_is_curls(void)
{
    sim_client_hello ch;
    size_t len = 0;
    static const char *const h2_only[] = {"h2", NULL};
    first_hello(NULL, h2_only, &ch, &len);
    CU_ASSERT_EQUAL(len, CURL_HELLO_LEN);
    CU_ASSERT_STRING_EQUAL(ch.ja3, CURL_JA3_IP);
    CU_ASSERT_STRING_EQUAL(ch.ja3_md5, CURL_JA3_IP_MD5);
    CU_ASSERT_STRING_EQUAL(ch.sni, "");
    CU_ASSERT_EQUAL_FATAL(ch.alpn_count, 2);
    CU_ASSERT_STRING_EQUAL(ch.alpn[0], "h2");
    CU_ASSERT_STRING_EQUAL(ch.alpn[1], "http/1.1");
    CU_ASSERT_EQUAL(ch.offers_tls13, 1);
    CU_ASSERT_EQUAL(ch.legacy_version, 0x0303);

    first_hello(&(mesh_tls_cfg){.sni = "localhost"}, NULL, &ch, &len);
    CU_ASSERT_EQUAL(len, CURL_HELLO_LEN);
    CU_ASSERT_STRING_EQUAL(ch.ja3_md5, CURL_JA3_SNI_MD5);
    CU_ASSERT_STRING_EQUAL(ch.sni, "localhost");

    const char *addrs[] = {"192.0.2.7", "::1", "2001:db8::1"};
    for (size_t i = 0; i < 3; i++) { /* curl sends no server name for an address */
        first_hello(&(mesh_tls_cfg){.sni = addrs[i]}, NULL, &ch, &len);
        CU_ASSERT_STRING_EQUAL(ch.ja3_md5, CURL_JA3_IP_MD5);
        CU_ASSERT_STRING_EQUAL(ch.sni, "");
    }
    first_hello(&(mesh_tls_cfg){.sni = "10.0.0.256"}, NULL, &ch, &len); /* not an address */
    CU_ASSERT_STRING_EQUAL(ch.sni, "10.0.0.256");
}

/* A connection's own server name (the dialled peer's published host name) goes out as SNI
 * instead of the context's, as curl's URL host does, and is that connection's :authority; an
 * address is refused (never SNI); the seed profile keeps its context's name; once the
 * ClientHello is out the name is fixed. */
static void test_server_name(void)
{
    static const struct {
        const mesh_tls_cfg cfg;
        const char *name;
        int rc;
        const char *sni, *md5, *authority;
    } cases[] = {
        {{0}, "n1.example.net", MESH_OK, "n1.example.net", CURL_JA3_SNI_MD5, "n1.example.net"},
        {{.sni = "own.example.org"},
         "peer.example.net",
         MESH_OK,
         "peer.example.net",
         CURL_JA3_SNI_MD5,
         "peer.example.net"},
        {{0}, "192.0.2.7", MESH_ERR_INVAL, "", CURL_JA3_IP_MD5, MESH_TLS_WEB_NO_HOST},
        {{0}, "bad_name", MESH_ERR_INVAL, "", CURL_JA3_IP_MD5, MESH_TLS_WEB_NO_HOST},
        {{.profile = MESH_PROFILE_SEED},
         "n1.example.net",
         MESH_OK,
         MESH_TLS_DEFAULT_SNI,
         NULL,
         MESH_TLS_DEFAULT_SNI},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        end c;
        mesh_tlsp_init(&c, 7, 0, &cases[i].cfg, NULL);
        CU_ASSERT_EQUAL(mesh_tls_set_server_name(c.t, cases[i].name), cases[i].rc);
        CU_ASSERT_STRING_EQUAL(mesh_tls_server_name(c.t), cases[i].authority);
        CU_ASSERT_EQUAL(mesh_tls_handshake(c.t), MESH_ERR_AGAIN);
        sim_client_hello ch;
        CU_ASSERT_EQUAL_FATAL(sim_client_hello_parse(c.out.b, c.out.len, &ch), MESH_OK);
        CU_ASSERT_STRING_EQUAL(ch.sni, cases[i].sni);
        if (cases[i].md5) {
            CU_ASSERT_EQUAL(c.out.len, CURL_HELLO_LEN);
            CU_ASSERT_STRING_EQUAL(ch.ja3_md5, cases[i].md5);
        }
        CU_ASSERT_EQUAL(mesh_tls_set_server_name(c.t, "late.example.net"), MESH_ERR_STATE);
        mesh_tlsp_free(&c);
    }
    end s;
    mesh_tlsp_init(&s, 8, 1, NULL, NULL);
    CU_ASSERT_EQUAL(mesh_tls_set_server_name(s.t, "n1.example.net"), MESH_ERR_STATE);
    mesh_tlsp_free(&s);
}

/* Two web nodes: TLS 1.3, h2, the server silent until the client's Finished, its two tickets
 * ignored by the client, records both ways, the same exporter, close_notify. */
static void test_web_pair(void)
{
    end c, s;
    mesh_tlsp_init(&c, 1, 0, NULL, NULL);
    mesh_tlsp_init(&s, 2, 1, NULL, NULL);
    c.hs = mesh_tls_handshake(c.t);
    mesh_tlsp_deliver(&c, &s);
    s.hs = mesh_tls_handshake(s.t); /* its flight is out */
    CU_ASSERT_EQUAL(s.hs, MESH_ERR_AGAIN);
    CU_ASSERT_EQUAL(mesh_tls_early(s.t), MESH_ERR_AGAIN); /* nginx writes nothing early */
    mesh_tlsp_pump(&c, &s);
    CU_ASSERT_EQUAL_FATAL(c.hs, MESH_OK);
    CU_ASSERT_EQUAL_FATAL(s.hs, MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_version(c.t), 0x0304);
    CU_ASSERT_EQUAL(mesh_tls_version(s.t), 0x0304);
    CU_ASSERT_STRING_EQUAL(mesh_tls_alpn(c.t), "h2");
    CU_ASSERT_STRING_EQUAL(mesh_tls_alpn(s.t), "h2");
    CU_ASSERT_STRING_EQUAL(mesh_tls_ctx_sni(c.ctx), MESH_TLS_WEB_NO_HOST);
    uint8_t ec[32], es[32], got[64];
    CU_ASSERT_EQUAL(mesh_tls_export(c.t, "EXPORTER-test", ec, sizeof ec), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_export(s.t, "EXPORTER-test", es, sizeof es), MESH_OK);
    CU_ASSERT_EQUAL(memcmp(ec, es, sizeof ec), 0);
    CU_ASSERT_EQUAL(mesh_tls_read(c.t, got, sizeof got), 0); /* the tickets: nothing to read */
    CU_ASSERT_EQUAL(mesh_tls_write(s.t, (const uint8_t *)"from server", 11), MESH_OK);
    mesh_tlsp_deliver(&s, &c);
    CU_ASSERT_EQUAL(mesh_tls_read(c.t, got, sizeof got), 11);
    CU_ASSERT_EQUAL(memcmp(got, "from server", 11), 0);
    CU_ASSERT_EQUAL(mesh_tls_write(c.t, (const uint8_t *)"from client", 11), MESH_OK);
    mesh_tlsp_deliver(&c, &s);
    CU_ASSERT_EQUAL(mesh_tls_read(s.t, got, sizeof got), 11);
    CU_ASSERT_EQUAL(mesh_tls_close(c.t), MESH_OK);
    mesh_tlsp_deliver(&c, &s);
    CU_ASSERT_EQUAL(mesh_tls_read(s.t, got, sizeof got), MESH_ERR_CLOSED);
    CU_ASSERT_EQUAL(mesh_tls_partial(s.t), 0);
    mesh_tlsp_free(&c);
    mesh_tlsp_free(&s);
}

/* A stock OpenSSL client against our web server: it gets nginx's two tickets (lifetime
 * 300 s), then our records, which it can only open if they continue the sequence after the
 * tickets OpenSSL sealed. */
static void test_openssl_client(void)
{
    end s;
    peer p;
    mesh_tlsp_init(&s, 2, 1, NULL, NULL);
    peer_init(&p, "\x08http/1.1\x02h2", 12, 0);
    CU_ASSERT_EQUAL(peer_pump(&p, &s), 1);
    CU_ASSERT_EQUAL_FATAL(s.hs, MESH_OK);
    CU_ASSERT_STRING_EQUAL(mesh_tls_alpn(s.t), "h2"); /* the server's preference */
    CU_ASSERT_STRING_EQUAL(SSL_get_cipher_name(p.ssl), "TLS_AES_256_GCM_SHA384");
    CU_ASSERT_EQUAL(mesh_tls_write(s.t, (const uint8_t *)"after the tickets", 17), MESH_OK);
    to_peer(&s, &p);
    char buf[64];
    CU_ASSERT_EQUAL(peer_read(&p, buf, sizeof buf), 17);
    CU_ASSERT_EQUAL(memcmp(buf, "after the tickets", 17), 0);
    CU_ASSERT_EQUAL(p.tickets, NGINX_TICKETS);
    CU_ASSERT_EQUAL(p.lifetime, NGINX_TICKET_LIFETIME);
    CU_ASSERT_EQUAL(SSL_write(p.ssl, "ping", 4), 4);
    to_end(&p, &s);
    uint8_t got[16];
    CU_ASSERT_EQUAL(mesh_tls_read(s.t, got, sizeof got), 4);
    peer_free(&p);
    mesh_tlsp_free(&s);
}

/* A TLS 1.2-only client gets nginx's TLS 1.2 (its preferred suite for an ECDSA key) and is
 * served on OpenSSL's records through the same calls — never as a Meshara session: no
 * exporter. */
static void test_tls12_completed(void)
{
    end s;
    peer p;
    mesh_tlsp_init(&s, 2, 1, NULL, NULL);
    peer_init(&p, "\x02h2\x08http/1.1", 12, TLS1_2_VERSION);
    CU_ASSERT_EQUAL(peer_pump(&p, &s), 1);
    CU_ASSERT_EQUAL_FATAL(s.hs, MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_version(s.t), 0x0303);
    CU_ASSERT_STRING_EQUAL(mesh_tls_alpn(s.t), "h2");
    CU_ASSERT_STRING_EQUAL(SSL_get_cipher_name(p.ssl), "ECDHE-ECDSA-AES256-GCM-SHA384");
    CU_ASSERT_EQUAL(p.tickets, 1); /* a TLS 1.2 ticket, in the handshake */
    uint8_t ex[32], got[64];
    CU_ASSERT_EQUAL(mesh_tls_export(s.t, "EXPORTER-test", ex, sizeof ex), MESH_ERR_VERSION);
    CU_ASSERT_EQUAL(mesh_tls_early(s.t), MESH_OK);
    mesh_tls_drop_handshake(s.t); /* a no-op: OpenSSL keeps the records */
    CU_ASSERT_EQUAL(mesh_tls_send_record(s.t, 23, got, 1), MESH_ERR_STATE);
    CU_ASSERT_EQUAL(SSL_write(p.ssl, "GET / HTTP/1.1\r\n\r\n", 18), 18);
    to_end(&p, &s);
    CU_ASSERT_EQUAL(mesh_tls_read(s.t, got, 4), 4); /* in pieces, like the TLS 1.3 path */
    CU_ASSERT_EQUAL(mesh_tls_read(s.t, got + 4, sizeof got - 4), 14);
    CU_ASSERT_EQUAL(memcmp(got, "GET / HTTP/1.1\r\n\r\n", 18), 0);
    CU_ASSERT_EQUAL(mesh_tls_read(s.t, got, sizeof got), 0);
    CU_ASSERT_EQUAL(mesh_tls_partial(s.t), 0);
    CU_ASSERT_EQUAL(mesh_tls_write(s.t, (const uint8_t *)"HTTP/1.1 400", 12), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_close(s.t), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_write(s.t, got, 1), MESH_ERR_STATE);
    to_peer(&s, &p);
    char buf[64];
    CU_ASSERT_EQUAL(peer_read(&p, buf, sizeof buf), 12);
    CU_ASSERT_EQUAL(SSL_read(p.ssl, buf, sizeof buf), 0);
    CU_ASSERT_EQUAL(SSL_get_error(p.ssl, 0), SSL_ERROR_ZERO_RETURN);
    /* and the peer's close_notify ends the server's reads */
    SSL_shutdown(p.ssl);
    to_end(&p, &s);
    CU_ASSERT_EQUAL(mesh_tls_read(s.t, got, sizeof got), MESH_ERR_CLOSED);
    peer_free(&p);
    mesh_tlsp_free(&s);
}

/* A TLS 1.2 renegotiation (a new ClientHello on a finished connection) gets what nginx on
 * OpenSSL 3.0 gives: a warning no_renegotiation, and the connection goes on (the client then
 * gives up with a fatal alert, which ends it). */
static void test_tls12_renegotiation_refused(void)
{
    end s;
    peer p;
    mesh_tlsp_init(&s, 2, 1, NULL, NULL);
    peer_init(&p, NULL, 0, TLS1_2_VERSION);
    CU_ASSERT_EQUAL(peer_pump(&p, &s), 1);
    CU_ASSERT_EQUAL_FATAL(s.hs, MESH_OK);
    CU_ASSERT_STRING_EQUAL(mesh_tls_alpn(s.t), ""); /* no ALPN: served as HTTP/1.1 */
    CU_ASSERT_FATAL(SSL_renegotiate(p.ssl) == 1);
    SSL_do_handshake(p.ssl);
    to_end(&p, &s);
    uint8_t got[64];
    CU_ASSERT_EQUAL(mesh_tls_read(s.t, got, sizeof got), 0);
    CU_ASSERT_EQUAL(s.out.len, ALERT_REC_LEN + 24); /* one sealed alert: 8 nonce + 16 tag */
    to_peer(&s, &p);
    char buf[8];
    CU_ASSERT(SSL_read(p.ssl, buf, sizeof buf) <= 0);
    CU_ASSERT_EQUAL(p.alert, 1 << 8 | ALERT_NO_RENEGOTIATION);
    to_end(&p, &s);
    CU_ASSERT_EQUAL(mesh_tls_read(s.t, got, sizeof got), MESH_ERR_TLS);
    ERR_clear_error();
    peer_free(&p);
    mesh_tlsp_free(&s);
}

/* Our client meets a server that picks TLS 1.2 (here our own, limited by the test hook): it
 * stops at the Certificate with the unknown_ca alert curl sends for a certificate it does not
 * trust, having sent nothing but its hello. */
static void test_tls12_refused_by_client(void)
{
    end c, s;
    mesh_tlsp_init(&c, 1, 0, NULL, NULL);
    mesh_tlsp_init(&s, 2, 1, &(mesh_tls_cfg){.max_version = TLS1_2_VERSION}, NULL);
    c.hs = mesh_tls_handshake(c.t);
    mesh_tlsp_deliver(&c, &s);
    s.hs = mesh_tls_handshake(s.t);
    mesh_tlsp_deliver(&s, &c);
    c.hs = mesh_tls_handshake(c.t);
    CU_ASSERT_EQUAL(c.hs, MESH_ERR_VERSION);
    CU_ASSERT_EQUAL_FATAL(c.out.len, ALERT_REC_LEN);
    static const uint8_t alert[ALERT_REC_LEN] = {21, 3, 3, 0, 2, 2, ALERT_UNKNOWN_CA};
    CU_ASSERT_EQUAL(memcmp(c.out.b, alert, sizeof alert), 0);
    CU_ASSERT_EQUAL(mesh_tls_is_done(c.t), 0);
    CU_ASSERT_EQUAL(mesh_tls_version(c.t), 0);
    mesh_tlsp_deliver(&c, &s);
    CU_ASSERT_EQUAL(mesh_tls_handshake(s.t), MESH_ERR_TLS);
    mesh_tlsp_free(&c);
    mesh_tlsp_free(&s);
}

/* nginx's ALPN: none offered is fine (HTTP/1.1); nothing in common is a plaintext fatal
 * no_application_protocol right after the ClientHello, nothing else. */
static void test_alpn_as_nginx(void)
{
    end s;
    peer p;
    mesh_tlsp_init(&s, 2, 1, NULL, NULL);
    peer_init(&p, NULL, 0, 0);
    CU_ASSERT_EQUAL(peer_pump(&p, &s), 1);
    CU_ASSERT_EQUAL(s.hs, MESH_OK);
    CU_ASSERT_STRING_EQUAL(mesh_tls_alpn(s.t), "");
    peer_free(&p);
    mesh_tlsp_free(&s);

    mesh_tlsp_init(&s, 2, 1, NULL, NULL);
    peer_init(&p, "\x0bmeshara/1.0", 12, 0);
    SSL_do_handshake(p.ssl);
    to_end(&p, &s);
    CU_ASSERT_EQUAL(mesh_tls_handshake(s.t), MESH_ERR_ALPN);
    CU_ASSERT_EQUAL_FATAL(s.out.len, ALERT_REC_LEN);
    CU_ASSERT_EQUAL(s.out.b[0], 21);
    CU_ASSERT_EQUAL(s.out.b[5], 2);
    CU_ASSERT_EQUAL(s.out.b[6], ALERT_NO_APP_PROTOCOL);
    peer_free(&p);
    mesh_tlsp_free(&s);
}

/* Everything both sides send, tickets included (their sessions are dated from the env), is
 * a function of the seeds. */
static void run_pair(uint64_t seed, uint8_t dc[32], uint8_t ds[32])
{
    end c, s;
    mesh_tlsp_init(&c, seed, 0, NULL, NULL);
    mesh_tlsp_init(&s, seed + 1000, 1, NULL, NULL);
    mesh_tlsp_pump(&c, &s);
    CU_ASSERT_EQUAL(s.hs, MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_write(s.t, (const uint8_t *)"x", 1), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_write(c.t, (const uint8_t *)"y", 1), MESH_OK);
    unsigned n = 0;
    CU_ASSERT(EVP_DigestFinal_ex(c.all, dc, &n) == 1 && n == 32);
    CU_ASSERT(EVP_DigestFinal_ex(s.all, ds, &n) == 1 && n == 32);
    mesh_tlsp_free(&c);
    mesh_tlsp_free(&s);
}

static void test_deterministic(void)
{
    uint8_t c1[32], s1[32], c2[32], s2[32], c3[32], s3[32];
    run_pair(40, c1, s1);
    run_pair(40, c2, s2);
    run_pair(41, c3, s3);
    CU_ASSERT_EQUAL(memcmp(c1, c2, 32), 0);
    CU_ASSERT_EQUAL(memcmp(s1, s2, 32), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(c1, c3, 32), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(s1, s3, 32), 0);
}

static void test_bad_config(void)
{
    mesh_test_env e;
    mesh_test_env_init(&e, 3);
    mesh_identity *id = NULL;
    mesh_tls_ctx *ctx = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_identity_generate(&id, &e.env), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_ctx_new(&ctx, &e.env, id, &(mesh_tls_cfg){.profile = 2}),
                    MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_tls_ctx_new(&ctx, &e.env, id, &(mesh_tls_cfg){.cert_type = 7}),
                    MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_tls_ctx_new(&ctx, &e.env, id, &(mesh_tls_cfg){.sni = ""}), MESH_ERR_INVAL);
    CU_ASSERT_PTR_NULL(ctx);
    /* the seed profile's ALPN list is not the web profile's business */
    static const char *const empty[] = {NULL};
    CU_ASSERT_EQUAL(mesh_tls_ctx_new(&ctx, &e.env, id, &(mesh_tls_cfg){.alpn = empty}), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_ctx_profile(ctx), MESH_PROFILE_WEB);
    mesh_tls_ctx_free(ctx);
    mesh_identity_free(id);
}

static CU_TestInfo tests[] = {
    {"the ClientHello is curl's (JA3, length, ALPN, SNI rule)", test_hello_is_curls},
    {"a connection's server name: SNI and :authority as curl's URL host", test_server_name},
    {"two web nodes: TLS 1.3, h2, tickets, records, exporter", test_web_pair},
    {"a stock OpenSSL client: two tickets, then our records", test_openssl_client},
    {"TLS 1.2 completed by the server, on OpenSSL's records", test_tls12_completed},
    {"TLS 1.2 renegotiation refused (warning no_renegotiation)", test_tls12_renegotiation_refused},
    {"a server choosing TLS 1.2 is refused by our client (unknown_ca)",
     test_tls12_refused_by_client},
    {"ALPN as nginx: none is HTTP/1.1, none in common is alert 120", test_alpn_as_nginx},
    {"same seed, same bytes (tickets included)", test_deterministic},
    {"bad configurations refused", test_bad_config},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"tls_web", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
