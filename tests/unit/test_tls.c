/* test_tls.c — the TLS module alone, two nodes joined by in-memory pipes (no simulator):
 * handshake, ALPN (none in common, none selected, none offered), exporter agreement, data both
 * ways, close_notify, reproducible bytes from the env's randomness, a TLS 1.2-only client
 * refused, garbage refused, the certificate. */
#include "mesh_test.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "core/tls.h"
#include "tls_pair.h"

enum { PUMP_ROUNDS = 32, BIG = 200 * 1000 };

/* One node: env, identity, context, one connection (tls_pair.h). */
typedef mesh_tlsp_end node;

/* cfg NULL: the seed profile's defaults (what these tests were written for; the web
 * profile's connections: test_tls_web.c). */
static void node_init(node *n, uint64_t seed, int is_server, const mesh_tls_cfg *cfg)
{
    static const mesh_tls_cfg seed_profile = {.profile = MESH_PROFILE_SEED};
    mesh_tlsp_init(n, seed, is_server, cfg ? cfg : &seed_profile, NULL);
}

static void test_handshake_data_close(void)
{
    node c, s;
    node_init(&c, 1, 0, NULL);
    node_init(&s, 2, 1, NULL);
    CU_ASSERT_EQUAL(c.out.len, 0); /* nothing until the first handshake call */
    mesh_tlsp_pump(&c, &s);
    CU_ASSERT_EQUAL(c.hs, MESH_OK);
    CU_ASSERT_EQUAL(s.hs, MESH_OK);
    CU_ASSERT(mesh_tls_is_done(c.t) && mesh_tls_is_done(s.t));
    CU_ASSERT_STRING_EQUAL(mesh_tls_alpn(c.t), MESH_TLS_DEFAULT_ALPN);
    CU_ASSERT_STRING_EQUAL(mesh_tls_alpn(s.t), MESH_TLS_DEFAULT_ALPN);

    /* Both sides derive the same exporter; another label gives another value. */
    uint8_t ec[32], es[32], ex[32];
    CU_ASSERT_EQUAL(mesh_tls_export(c.t, "EXPORTER-test", ec, 32), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_export(s.t, "EXPORTER-test", es, 32), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_export(s.t, "EXPORTER-other", ex, 32), MESH_OK);
    CU_ASSERT_EQUAL(memcmp(ec, es, 32), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(ec, ex, 32), 0);
    CU_ASSERT_EQUAL(mesh_tls_export(s.t, "EXPORTER-test", ex, MESH_TLS_EXPORT_MAX + 1),
                    MESH_ERR_INVAL);

    /* A large write arrives intact, read in record-sized pieces. */
    uint8_t *big = malloc(BIG), *got = malloc(BIG);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    for (size_t i = 0; i < BIG; i++)
        big[i] = (uint8_t)(i * 7 + (i >> 8));
    CU_ASSERT_EQUAL(mesh_tls_write(c.t, big, BIG), MESH_OK);
    CU_ASSERT(c.out.len > BIG); /* records went out at once, with their overhead */
    mesh_tlsp_deliver(&c, &s);
    size_t have = 0;
    long n;
    while ((n = mesh_tls_read(s.t, got + have, BIG - have)) > 0)
        have += (size_t)n;
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(have, BIG);
    CU_ASSERT_EQUAL(memcmp(big, got, BIG), 0);

    /* A record fed in two halves: partial until the rest comes. */
    CU_ASSERT_EQUAL(mesh_tls_write(s.t, (const uint8_t *)"pong", 4), MESH_OK);
    size_t half = s.out.len / 2;
    CU_ASSERT_EQUAL(mesh_tls_feed(c.t, s.out.b, half), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_read(c.t, got, BIG), 0);
    CU_ASSERT(mesh_tls_partial(c.t) > 0);
    CU_ASSERT_EQUAL(mesh_tls_feed(c.t, s.out.b + half, s.out.len - half), MESH_OK);
    s.out.len = 0;
    CU_ASSERT_EQUAL(mesh_tls_read(c.t, got, BIG), 4);
    CU_ASSERT_EQUAL(memcmp(got, "pong", 4), 0);
    CU_ASSERT_EQUAL(mesh_tls_partial(c.t), 0);

    /* close_notify: the peer reads MESH_ERR_CLOSED; writing after our close is refused. */
    CU_ASSERT_EQUAL(mesh_tls_close(c.t), MESH_OK);
    CU_ASSERT(c.out.len > 0);
    CU_ASSERT_EQUAL(mesh_tls_write(c.t, big, 1), MESH_ERR_STATE);
    mesh_tlsp_deliver(&c, &s);
    CU_ASSERT_EQUAL(mesh_tls_read(s.t, got, BIG), MESH_ERR_CLOSED);
    free(big);
    free(got);
    mesh_tlsp_free(&c);
    mesh_tlsp_free(&s);
}

/* Hash of every byte both sides sent during a handshake plus one exchange. */
static void transcript(uint64_t seed, uint8_t digest_c[32], uint8_t digest_s[32])
{
    node c, s;
    node_init(&c, seed, 0, NULL);
    node_init(&s, seed + 1000, 1, NULL);
    mesh_tlsp_pump(&c, &s);
    CU_ASSERT_EQUAL(c.hs, MESH_OK);
    CU_ASSERT_EQUAL(s.hs, MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_write(c.t, (const uint8_t *)"hello", 5), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_write(s.t, (const uint8_t *)"world", 5), MESH_OK);
    EVP_DigestFinal_ex(c.all, digest_c, NULL);
    EVP_DigestFinal_ex(s.all, digest_s, NULL);
    mesh_tlsp_free(&c);
    mesh_tlsp_free(&s);
}

static void test_deterministic_bytes(void)
{
    uint8_t c1[32], s1[32], c2[32], s2[32], c3[32], s3[32];
    transcript(7, c1, s1);
    transcript(7, c2, s2);
    transcript(8, c3, s3);
    CU_ASSERT_EQUAL(memcmp(c1, c2, 32), 0);
    CU_ASSERT_EQUAL(memcmp(s1, s2, 32), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(c1, c3, 32), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(s1, s3, 32), 0);
}

static void test_alpn_mismatch(void)
{
    static const char *const other[] = {"other/9", NULL};
    mesh_tls_cfg cc = {.profile = MESH_PROFILE_SEED, .alpn = other};
    node c, s;
    node_init(&c, 1, 0, &cc);
    node_init(&s, 2, 1, NULL);
    mesh_tlsp_pump(&c, &s);
    CU_ASSERT_EQUAL(s.hs, MESH_ERR_ALPN);
    CU_ASSERT_EQUAL(c.hs, MESH_ERR_ALPN);                    /* the alert reached the client */
    CU_ASSERT_EQUAL(mesh_tls_handshake(s.t), MESH_ERR_ALPN); /* sticky */
    mesh_tlsp_free(&c);
    mesh_tlsp_free(&s);

    /* Server preference: a server listing {"h2", default} picks h2 from a client's
     * {default, "h2"}. */
    static const char *const srv_list[] = {"h2", MESH_TLS_DEFAULT_ALPN, NULL};
    static const char *const cli_list[] = {MESH_TLS_DEFAULT_ALPN, "h2", NULL};
    mesh_tls_cfg sc = {.profile = MESH_PROFILE_SEED, .alpn = srv_list},
                 cc2 = {.profile = MESH_PROFILE_SEED, .alpn = cli_list};
    node_init(&c, 1, 0, &cc2);
    node_init(&s, 2, 1, &sc);
    mesh_tlsp_pump(&c, &s);
    CU_ASSERT_EQUAL(c.hs, MESH_OK);
    CU_ASSERT_STRING_EQUAL(mesh_tls_alpn(c.t), "h2");
    CU_ASSERT_STRING_EQUAL(mesh_tls_alpn(s.t), "h2");
    mesh_tlsp_free(&c);
    mesh_tlsp_free(&s);
}

/* A plain OpenSSL TLS 1.3 server (default library context, our certificate) that ignores
 * ALPN: the handshake itself completes, and our client refuses it with MESH_ERR_ALPN. */
static void test_server_selects_nothing(void)
{
    node c, s;
    node_init(&c, 1, 0, NULL);
    node_init(&s, 2, 1, NULL); /* only for its certificate and key */
    const uint8_t *der;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(mesh_tls_ctx_cert_der(s.ctx, &der, &len), MESH_OK);
    X509 *x = d2i_X509(NULL, &der, (long)len);
    SSL_CTX *sc = SSL_CTX_new(TLS_server_method());
    CU_ASSERT_FATAL(x && sc);
    CU_ASSERT_FATAL(SSL_CTX_use_certificate(sc, x) == 1 &&
                    SSL_CTX_use_PrivateKey(sc, mesh_identity_pkey(s.id)) == 1 &&
                    SSL_CTX_set_min_proto_version(sc, TLS1_3_VERSION) == 1);
    SSL *ss = SSL_new(sc);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(rb, -1);
    SSL_set_bio(ss, rb, wb);
    SSL_set_accept_state(ss);
    for (int i = 0; i < PUMP_ROUNDS && c.hs == MESH_ERR_AGAIN; i++) {
        c.hs = mesh_tls_handshake(c.t);
        BIO_write(rb, c.out.b, (int)c.out.len);
        c.out.len = 0;
        (void)SSL_do_handshake(ss);
        char tmp[8192];
        int n;
        while ((n = BIO_read(wb, tmp, sizeof tmp)) > 0)
            CU_ASSERT_EQUAL(mesh_tls_feed(c.t, (const uint8_t *)tmp, (size_t)n), MESH_OK);
    }
    CU_ASSERT_EQUAL(c.hs, MESH_ERR_ALPN);
    CU_ASSERT_STRING_EQUAL(mesh_tls_alpn(c.t), "");
    CU_ASSERT_EQUAL(mesh_tls_is_done(c.t), 0);
    SSL_free(ss);
    SSL_CTX_free(sc);
    X509_free(x);
    ERR_clear_error();
    mesh_tlsp_free(&c);
    mesh_tlsp_free(&s);
}

/* A plain OpenSSL client (default library context, no ALPN offered, TLS versions min..max)
 * against server s, pumped until it fails or the rounds run out. Returns the client's OpenSSL
 * error reason (0: none); *handshake_ok: whether its handshake completed. The server's output
 * stays in s->out. */
static int raw_client_against(node *s, int min, int max, int *handshake_ok)
{
    SSL_CTX *cc = SSL_CTX_new(TLS_client_method());
    CU_ASSERT_FATAL(cc && SSL_CTX_set_min_proto_version(cc, min) == 1 &&
                    SSL_CTX_set_max_proto_version(cc, max) == 1);
    SSL *cs = SSL_new(cc);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(rb, -1);
    SSL_set_bio(cs, rb, wb);
    SSL_set_connect_state(cs);
    int ret = 0;
    unsigned long reason = 0;
    for (int i = 0; i < PUMP_ROUNDS; i++) {
        ret = SSL_do_handshake(cs);
        if (ret != 1 && SSL_get_error(cs, ret) == SSL_ERROR_SSL) {
            reason = ERR_GET_REASON(ERR_peek_last_error());
            break;
        }
        char tmp[8192];
        int n;
        while ((n = BIO_read(wb, tmp, sizeof tmp)) > 0)
            CU_ASSERT_EQUAL(mesh_tls_feed(s->t, (const uint8_t *)tmp, (size_t)n), MESH_OK);
        if (s->hs == MESH_ERR_AGAIN)
            s->hs = mesh_tls_handshake(s->t);
        BIO_write(rb, s->out.b, (int)s->out.len);
    }
    *handshake_ok = ret == 1;
    SSL_free(cs);
    SSL_CTX_free(cc);
    ERR_clear_error();
    return (int)reason;
}

/* A TLS 1.3 client that offers no ALPN: refused at its ClientHello with no_application_protocol
 * (alert 120, docs/protocol.md), not given a whole handshake and then an EOF; the server says
 * MESH_ERR_ALPN. (Our own client maps that alert to MESH_ERR_ALPN: test_alpn_mismatch.) A
 * TLS 1.2-only client without ALPN is still refused for its version first. */
static void test_client_offers_no_alpn(void)
{
    node s;
    node_init(&s, 2, 1, NULL);
    int done = 0;
    int reason = raw_client_against(&s, TLS1_3_VERSION, TLS1_3_VERSION, &done);
    CU_ASSERT_EQUAL(reason, SSL_AD_REASON_OFFSET + SSL_AD_NO_APPLICATION_PROTOCOL);
    CU_ASSERT_EQUAL(done, 0);
    CU_ASSERT_EQUAL(s.hs, MESH_ERR_ALPN);
    CU_ASSERT_EQUAL(mesh_tls_is_done(s.t), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(mesh_tls_error_text(s.t), "no application protocol"));
    /* all the server sent: one plaintext fatal alert record, no ServerHello */
    static const uint8_t alert[] = {21, 3, 3, 0, 2, 2, 120};
    CU_ASSERT_EQUAL(s.total, sizeof alert);
    CU_ASSERT(s.out.len == sizeof alert && memcmp(s.out.b, alert, sizeof alert) == 0);
    mesh_tlsp_free(&s);

    node_init(&s, 2, 1, NULL);
    reason = raw_client_against(&s, TLS1_2_VERSION, TLS1_2_VERSION, &done);
    CU_ASSERT_EQUAL(reason, SSL_AD_REASON_OFFSET + SSL_AD_PROTOCOL_VERSION);
    CU_ASSERT_EQUAL(s.hs, MESH_ERR_VERSION);
    mesh_tlsp_free(&s);
}

static void test_tls12_client_refused(void)
{
    mesh_tls_cfg old = {.profile = MESH_PROFILE_SEED, .max_version = TLS1_2_VERSION};
    node c, s;
    node_init(&c, 1, 0, &old);
    node_init(&s, 2, 1, NULL);
    mesh_tlsp_pump(&c, &s);
    CU_ASSERT_EQUAL(s.hs, MESH_ERR_VERSION);
    CU_ASSERT_EQUAL(c.hs, MESH_ERR_VERSION); /* protocol_version alert */
    mesh_tlsp_free(&c);
    mesh_tlsp_free(&s);
}

static void test_garbage_refused(void)
{
    node s;
    node_init(&s, 2, 1, NULL);
    static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    CU_ASSERT_EQUAL(mesh_tls_feed(s.t, (const uint8_t *)junk, sizeof junk - 1), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_handshake(s.t), MESH_ERR_TLS);
    CU_ASSERT_EQUAL(mesh_tls_handshake(s.t), MESH_ERR_TLS);
    CU_ASSERT_EQUAL(mesh_tls_read(s.t, (uint8_t *)junk, 1), MESH_ERR_TLS);
    CU_ASSERT(strlen(mesh_tls_error_text(s.t)) > 0);
    uint8_t x[32];
    CU_ASSERT_EQUAL(mesh_tls_export(s.t, "EXPORTER-test", x, 32), MESH_ERR_STATE);
    mesh_tlsp_free(&s);
}

static void test_certificate(void)
{
    node a, b;
    node_init(&a, 5, 1, NULL);
    node_init(&b, 5, 1, NULL);
    const uint8_t *der, *der2;
    size_t len, len2;
    CU_ASSERT_EQUAL_FATAL(mesh_tls_ctx_cert_der(a.ctx, &der, &len), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_tls_ctx_cert_der(b.ctx, &der2, &len2), MESH_OK);
    /* Same seed, same env: byte-identical certificate (no clock read anywhere). */
    CU_ASSERT_EQUAL(len, len2);
    CU_ASSERT_EQUAL(memcmp(der, der2, len), 0);
    const uint8_t *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    char cn[64] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
    CU_ASSERT_STRING_EQUAL(cn, MESH_TLS_DEFAULT_SNI);
    CU_ASSERT_EQUAL(ASN1_TIME_cmp_time_t(X509_get0_notBefore(x), 1704067200), 0); /* 2024-01-01 */
    EVP_PKEY *pk = X509_get0_pubkey(x);
    uint8_t raw[32];
    size_t rawlen = sizeof raw;
    CU_ASSERT_EQUAL(EVP_PKEY_get_raw_public_key(pk, raw, &rawlen), 1);
    CU_ASSERT_EQUAL(memcmp(raw, mesh_identity_pubkey(a.id), 32), 0);
    CU_ASSERT_EQUAL(X509_verify(x, pk), 1); /* self-signed */
    X509_free(x);
    mesh_tlsp_free(&a);
    mesh_tlsp_free(&b);

    /* Bad configurations are refused. */
    mesh_test_env e;
    mesh_test_env_init(&e, 1);
    mesh_identity *id = NULL;
    mesh_tls_ctx *ctx = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_identity_generate(&id, &e.env), MESH_OK);
    static const char *const empty[] = {NULL};
    static const char *const blank[] = {"", NULL};
    mesh_tls_cfg bad1 = {.profile = MESH_PROFILE_SEED, .alpn = empty},
                 bad2 = {.profile = MESH_PROFILE_SEED, .alpn = blank},
                 bad3 = {.profile = MESH_PROFILE_SEED, .max_version = 0x0301};
    CU_ASSERT_EQUAL(mesh_tls_ctx_new(&ctx, &e.env, id, &bad1), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_tls_ctx_new(&ctx, &e.env, id, &bad2), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_tls_ctx_new(&ctx, &e.env, id, &bad3), MESH_ERR_INVAL);
    CU_ASSERT_PTR_NULL(ctx);
    mesh_identity_free(id);
}

/* Once the hellos are done the session drops OpenSSL's state: records still flow both ways
 * (they are ours), the exporter is gone, close_notify still goes out. Dropping before the
 * handshake completes does nothing. */
static void test_drop_handshake(void)
{
    node c, s;
    node_init(&c, 5, 0, NULL);
    node_init(&s, 6, 1, NULL);
    mesh_tls_drop_handshake(c.t); /* not done yet: no-op */
    mesh_tlsp_pump(&c, &s);
    CU_ASSERT_FATAL(c.hs == MESH_OK && s.hs == MESH_OK);
    uint8_t ex[32], got[64];
    CU_ASSERT_EQUAL(mesh_tls_export(c.t, "EXPORTER-test", ex, 32), MESH_OK);
    mesh_tls_drop_handshake(c.t);
    mesh_tls_drop_handshake(c.t); /* twice: no-op */
    mesh_tls_drop_handshake(s.t);
    CU_ASSERT_EQUAL(mesh_tls_export(c.t, "EXPORTER-test", ex, 32), MESH_ERR_STATE);
    CU_ASSERT_STRING_EQUAL(mesh_tls_alpn(c.t), MESH_TLS_DEFAULT_ALPN);
    CU_ASSERT_EQUAL(mesh_tls_write(c.t, (const uint8_t *)"ping", 4), MESH_OK);
    mesh_tlsp_deliver(&c, &s);
    CU_ASSERT_EQUAL(mesh_tls_read(s.t, got, sizeof got), 4);
    CU_ASSERT_EQUAL(memcmp(got, "ping", 4), 0);
    CU_ASSERT_EQUAL(mesh_tls_write(s.t, (const uint8_t *)"pong!", 5), MESH_OK);
    mesh_tlsp_deliver(&s, &c);
    CU_ASSERT_EQUAL(mesh_tls_read(c.t, got, sizeof got), 5);
    CU_ASSERT_EQUAL(mesh_tls_close(s.t), MESH_OK);
    mesh_tlsp_deliver(&s, &c);
    CU_ASSERT_EQUAL(mesh_tls_read(c.t, got, sizeof got), MESH_ERR_CLOSED);
    CU_ASSERT_EQUAL(mesh_tls_partial(c.t), 0);
    mesh_tlsp_free(&c);
    mesh_tlsp_free(&s);
}

static void buf_out(void *ud, const uint8_t *data, size_t len)
{
    mesh_test_buf_add(ud, data, len);
}

/* mesh_tls_clone: clones of both ends of a fresh connection talk to each other (the same
 * keys, sequence numbers and exporter) while the originals are untouched, even after an
 * original is freed (not its context); a connection that has moved on cannot be cloned. */
static void test_clone(void)
{
    node c, s;
    node_init(&c, 7, 0, NULL);
    node_init(&s, 8, 1, NULL);
    mesh_tls *cc = NULL, *sc = NULL;
    mesh_test_buf to_s = {0}, to_c = {0};
    CU_ASSERT_EQUAL(mesh_tls_clone(&cc, c.t, buf_out, &to_s), MESH_ERR_STATE); /* not done */
    mesh_tlsp_pump(&c, &s);
    CU_ASSERT_FATAL(c.hs == MESH_OK && s.hs == MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_tls_clone(&cc, c.t, buf_out, &to_s), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_tls_clone(&sc, s.t, buf_out, &to_c), MESH_OK);
    uint8_t ex[32], ex2[32], got[64];
    CU_ASSERT_EQUAL(mesh_tls_export(c.t, "EXPORTER-test", ex, 32), MESH_OK);
    mesh_tls_free(c.t); /* the clones keep what they share */
    c.t = NULL;
    CU_ASSERT_EQUAL(mesh_tls_export(cc, "EXPORTER-test", ex2, 32), MESH_OK);
    CU_ASSERT_EQUAL(memcmp(ex, ex2, 32), 0);
    CU_ASSERT_STRING_EQUAL(mesh_tls_alpn(sc), mesh_tls_alpn(s.t));
    CU_ASSERT(mesh_tls_is_done(cc) && mesh_tls_is_done(sc));
    CU_ASSERT_EQUAL(mesh_tls_write(cc, (const uint8_t *)"ping", 4), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_feed(sc, to_s.b, to_s.len), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_read(sc, got, sizeof got), 4);
    CU_ASSERT_EQUAL(memcmp(got, "ping", 4), 0);
    /* the original server, right after its handshake still, opens the very same record */
    CU_ASSERT_EQUAL(mesh_tls_feed(s.t, to_s.b, to_s.len), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_read(s.t, got, sizeof got), 4);
    CU_ASSERT_EQUAL(mesh_tls_write(sc, (const uint8_t *)"pong!", 5), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_feed(cc, to_c.b, to_c.len), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_read(cc, got, sizeof got), 5);
    mesh_tls *again = NULL; /* a connection that has received or sent is not "right after" */
    CU_ASSERT_EQUAL(mesh_tls_clone(&again, sc, buf_out, &to_c), MESH_ERR_STATE);
    CU_ASSERT_EQUAL(mesh_tls_clone(&again, s.t, buf_out, &to_c), MESH_ERR_STATE);
    CU_ASSERT_PTR_NULL(again);
    CU_ASSERT_EQUAL(mesh_tls_clone(&again, NULL, buf_out, &to_c), MESH_ERR_INVAL);
    mesh_tls_free(cc);
    mesh_tls_free(sc);
    mesh_tlsp_free(&c);
    mesh_tlsp_free(&s);
    free(to_s.b);
    free(to_c.b);
}

/* In the web profile the server has sealed its session tickets by the end of its handshake
 * (its tx is past 0): a clone continues after them, and the client opens what it sends. (The
 * client, with tickets waiting in its input, is not "right after" and cannot be cloned.) */
static void test_clone_web(void)
{
    static const mesh_tls_cfg web = {.profile = MESH_PROFILE_WEB};
    node c, s;
    node_init(&c, 7, 0, &web);
    node_init(&s, 8, 1, &web);
    mesh_tlsp_pump(&c, &s);
    CU_ASSERT_FATAL(c.hs == MESH_OK && s.hs == MESH_OK);
    mesh_tls *sc = NULL, *cc = NULL;
    mesh_test_buf to_c = {0};
    CU_ASSERT_EQUAL_FATAL(mesh_tls_clone(&sc, s.t, buf_out, &to_c), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_clone(&cc, c.t, buf_out, &to_c), MESH_ERR_STATE);
    uint8_t got[16];
    CU_ASSERT_EQUAL(mesh_tls_write(sc, (const uint8_t *)"hello", 5), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_feed(c.t, to_c.b, to_c.len), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_read(c.t, got, sizeof got), 5);
    CU_ASSERT_EQUAL(memcmp(got, "hello", 5), 0);
    mesh_tls_free(sc);
    mesh_tlsp_free(&c);
    mesh_tlsp_free(&s);
    free(to_c.b);
}

static CU_TestInfo tests[] = {
    {"handshake, exporter, data, close_notify", test_handshake_data_close},
    {"same seed, same bytes; other seed, other bytes", test_deterministic_bytes},
    {"ALPN mismatch on both sides; server preference", test_alpn_mismatch},
    {"a server that selects no ALPN is refused", test_server_selects_nothing},
    {"a client that offers no ALPN gets no_application_protocol", test_client_offers_no_alpn},
    {"TLS 1.2-only client refused (protocol_version)", test_tls12_client_refused},
    {"non-TLS garbage refused", test_garbage_refused},
    {"certificate: reproducible, self-signed, identity key", test_certificate},
    {"OpenSSL's state dropped after the hellos: records still flow", test_drop_handshake},
    {"a fresh connection cloned: the clones talk, the originals untouched", test_clone},
    {"web profile: a server cloned after its session tickets", test_clone_web},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"tls", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
