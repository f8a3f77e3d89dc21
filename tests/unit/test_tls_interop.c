/* test_tls_interop.c — our record layer (record.h inside tls.c) against an independent one:
 * a plain OpenSSL SSL object joined to one of our connections by memory BIOs, in both roles
 * and with each of the three TLS 1.3 suites. Data both ways at every size class, KeyUpdate
 * requested by OpenSSL and answered by us, KeyUpdates we start (key_update_after), session
 * tickets ignored, close_notify both ways, damaged records. Then, between two of our nodes:
 * alerts and unknown content types, post-handshake messages that must be refused, and the
 * borrowed-input path (mesh_tls_lend/keep) with the ciphertext cut at every byte offset and
 * in random pieces, read with every kind of buffer size. */
#include "mesh_test.h"

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/tls.h"

enum {
    PUMP_ROUNDS = 32,
    READ_MAX = 100000,                  /* largest read buffer used */
    MSG_MAX = 70000,                    /* largest message in the size sweep */
    HDR = 5,                            /* TLS record header */
    TAG = 16,                           /* AEAD tag */
    KEY_UPDATE_REC = HDR + 5 + 1 + TAG, /* one KeyUpdate message, sealed */
};

static const unsigned char ALPN_WIRE[] = "\x0b" MESH_TLS_DEFAULT_ALPN;

/* ---- our side -------------------------------------------------------------------------- */

typedef struct node {
    mesh_test_env env;
    mesh_identity *id;
    mesh_tls_ctx *ctx;
    mesh_tls *t;
    mesh_test_buf out; /* ciphertext it produced, not yet delivered */
    int hs;
    unsigned reserves, commits; /* through mesh_tls_set_reserve */
} node;

static void node_out(void *ud, const uint8_t *data, size_t len)
{
    mesh_test_buf_add(&((node *)ud)->out, data, len);
}

/* Zero-copy sink: room at the end of the output buffer; every third request refused so both
 * paths (sealed in place, sealed locally then out_fn) take turns. */
static uint8_t *node_reserve(void *ud, size_t len)
{
    node *n = ud;
    if (++n->reserves % 3 == 0)
        return NULL;
    if (n->out.len + len > n->out.cap) {
        size_t cap = n->out.cap ? n->out.cap : 4096;
        while (cap < n->out.len + len)
            cap *= 2;
        uint8_t *b = realloc(n->out.b, cap);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        n->out.b = b;
        n->out.cap = cap;
    }
    return n->out.b + n->out.len;
}

static void node_commit(void *ud, size_t len)
{
    node *n = ud;
    n->commits++;
    n->out.len += len;
}

/* cfg NULL: the seed profile's defaults (what these tests were written for; the web
 * profile's connections: test_tls_web.c). */
static void node_init(node *n, uint64_t seed, int is_server, const mesh_tls_cfg *cfg)
{
    static const mesh_tls_cfg seed_profile = {.profile = MESH_PROFILE_SEED};
    if (!cfg)
        cfg = &seed_profile;
    memset(n, 0, sizeof *n);
    mesh_test_env_init(&n->env, seed);
    CU_ASSERT_EQUAL_FATAL(mesh_identity_generate(&n->id, &n->env.env), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_tls_ctx_new(&n->ctx, &n->env.env, n->id, cfg), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_tls_new(&n->t, n->ctx, is_server, NULL, node_out, n), MESH_OK);
    n->hs = MESH_ERR_AGAIN;
}

static void node_free(node *n)
{
    mesh_tls_free(n->t);
    mesh_tls_ctx_free(n->ctx);
    mesh_identity_free(n->id);
    free(n->out.b);
}

/* Read all that is readable into got, the buffer size cycling through small, odd,
 * record-sized and large. Returns the last result: 0 or an error. */
static long node_drain(node *n, mesh_test_buf *got)
{
    static const size_t caps[] = {16384, 1, 7, 16385, READ_MAX, 3000};
    uint8_t *tmp = malloc(READ_MAX);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tmp);
    long r;
    size_t over = 0; /* reads longer than asked (one assert, not one per read) */
    for (size_t i = 0; (r = mesh_tls_read(n->t, tmp, caps[i % 6])) > 0; i++) {
        over += (size_t)r > caps[i % 6];
        mesh_test_buf_add(got, tmp, (size_t)r);
    }
    CU_ASSERT_EQUAL(over, 0);
    free(tmp);
    return r;
}

/* Records in a ciphertext stream (headers walked). */
static size_t count_records(const uint8_t *p, size_t len)
{
    size_t n = 0;
    while (len >= HDR) {
        size_t l = HDR + ((size_t)p[3] << 8 | p[4]);
        CU_ASSERT_EQUAL_FATAL(p[0], 23);
        CU_ASSERT_FATAL(l <= len);
        p += l, len -= l, n++;
    }
    CU_ASSERT_EQUAL(len, 0);
    return n;
}

static void fill(uint8_t *p, size_t n, unsigned salt)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 131 + salt + (i >> 9));
}

/* ---- the OpenSSL side ------------------------------------------------------------------ */

typedef struct peer {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *rb, *wb; /* rb: what it reads (our output); wb: what it wrote */
    EVP_PKEY *key;
    X509 *cert;
} peer;

static int peer_alpn(SSL *s, const unsigned char **out, unsigned char *outlen,
                     const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)s, (void)arg;
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, ALPN_WIRE, sizeof ALPN_WIRE - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* A self-signed ECDSA P-256 certificate of its own (ours are Ed25519: another signature
 * algorithm on purpose). */
static void peer_cert(peer *p)
{
    p->key = EVP_EC_gen("P-256");
    p->cert = X509_new();
    CU_ASSERT_FATAL(p->key && p->cert);
    X509_NAME *name = X509_get_subject_name(p->cert);
    CU_ASSERT_FATAL(ASN1_INTEGER_set(X509_get_serialNumber(p->cert), 1) == 1 &&
                    X509_gmtime_adj(X509_getm_notBefore(p->cert), 0) &&
                    X509_gmtime_adj(X509_getm_notAfter(p->cert), 86400) &&
                    X509_set_pubkey(p->cert, p->key) == 1 &&
                    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                               (const unsigned char *)"openssl", -1, -1, 0) == 1 &&
                    X509_set_issuer_name(p->cert, name) == 1 &&
                    X509_sign(p->cert, p->key, EVP_sha256()) > 0);
}

/* suites: an OpenSSL TLS 1.3 ciphersuite list (NULL = its default); tickets: how many
 * NewSessionTickets a server sends. */
static void peer_init(peer *p, int is_server, const char *suites, int tickets)
{
    memset(p, 0, sizeof *p);
    p->ctx = SSL_CTX_new(is_server ? TLS_server_method() : TLS_client_method());
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->ctx);
    CU_ASSERT_FATAL(SSL_CTX_set_min_proto_version(p->ctx, TLS1_3_VERSION) == 1);
    if (suites)
        CU_ASSERT_FATAL(SSL_CTX_set_ciphersuites(p->ctx, suites) == 1);
    if (is_server) {
        peer_cert(p);
        CU_ASSERT_FATAL(SSL_CTX_use_certificate(p->ctx, p->cert) == 1 &&
                        SSL_CTX_use_PrivateKey(p->ctx, p->key) == 1 &&
                        SSL_CTX_set_num_tickets(p->ctx, (size_t)tickets) == 1);
        SSL_CTX_set_alpn_select_cb(p->ctx, peer_alpn, NULL);
    }
    p->ssl = SSL_new(p->ctx);
    p->rb = BIO_new(BIO_s_mem());
    p->wb = BIO_new(BIO_s_mem());
    CU_ASSERT_FATAL(p->ssl && p->rb && p->wb);
    BIO_set_mem_eof_return(p->rb, -1); /* empty: "retry", not end of file */
    BIO_set_mem_eof_return(p->wb, -1);
    SSL_set_bio(p->ssl, p->rb, p->wb);
    if (is_server) {
        SSL_set_accept_state(p->ssl);
    } else {
        SSL_set_connect_state(p->ssl);
        CU_ASSERT_FATAL(SSL_set_alpn_protos(p->ssl, ALPN_WIRE, sizeof ALPN_WIRE - 1) == 0);
    }
}

static void peer_free(peer *p)
{
    SSL_free(p->ssl); /* frees both BIOs */
    SSL_CTX_free(p->ctx);
    X509_free(p->cert);
    EVP_PKEY_free(p->key);
    ERR_clear_error();
}

static void to_peer(node *n, peer *p)
{
    if (n->out.len)
        CU_ASSERT_EQUAL(BIO_write(p->rb, n->out.b, (int)n->out.len), (int)n->out.len);
    n->out.len = 0;
}

/* What OpenSSL wrote, fed to our side. Returns the byte count. */
static size_t to_node(peer *p, node *n)
{
    char tmp[16384];
    int k;
    size_t total = 0;
    while ((k = BIO_read(p->wb, tmp, sizeof tmp)) > 0) {
        CU_ASSERT_EQUAL(mesh_tls_feed(n->t, (const uint8_t *)tmp, (size_t)k), MESH_OK);
        total += (size_t)k;
    }
    return total;
}

/* Everything OpenSSL can read now, appended to got. Returns SSL_get_error of the last
 * SSL_read (SSL_ERROR_WANT_READ when all was read). */
static int peer_drain(peer *p, mesh_test_buf *got)
{
    uint8_t tmp[16384];
    int k;
    while ((k = SSL_read(p->ssl, tmp, sizeof tmp)) > 0)
        mesh_test_buf_add(got, tmp, (size_t)k);
    return SSL_get_error(p->ssl, k);
}

/* Run both handshakes to completion. Returns the bytes OpenSSL sent once ours was done
 * (session tickets). */
static size_t handshake(node *n, peer *p)
{
    size_t after = 0;
    for (int i = 0; i < PUMP_ROUNDS; i++) {
        if (n->hs == MESH_ERR_AGAIN)
            n->hs = mesh_tls_handshake(n->t);
        to_peer(n, p);
        if (!SSL_is_init_finished(p->ssl))
            (void)SSL_do_handshake(p->ssl);
        int was_done = n->hs == MESH_OK;
        size_t k = to_node(p, n);
        if (was_done)
            after += k;
        if (n->hs != MESH_ERR_AGAIN && SSL_is_init_finished(p->ssl) && !n->out.len && !k)
            break;
    }
    CU_ASSERT_EQUAL_FATAL(n->hs, MESH_OK);
    CU_ASSERT_FATAL(SSL_is_init_finished(p->ssl));
    CU_ASSERT_STRING_EQUAL(mesh_tls_alpn(n->t), MESH_TLS_DEFAULT_ALPN);
    const unsigned char *sel = NULL;
    unsigned int sel_len = 0;
    SSL_get0_alpn_selected(p->ssl, &sel, &sel_len);
    CU_ASSERT(sel_len == sizeof ALPN_WIRE - 2 && memcmp(sel, ALPN_WIRE + 1, sel_len) == 0);
    ERR_clear_error();
    return after;
}

/* One of our nodes connected to an OpenSSL peer. ours_server: which side is ours. */
static size_t join(node *n, peer *p, int ours_server, const char *suites, int tickets,
                   const mesh_tls_cfg *cfg)
{
    node_init(n, ours_server ? 21 : 12, ours_server, cfg);
    peer_init(p, !ours_server, suites, tickets);
    return handshake(n, p);
}

/* len bytes from us to OpenSSL, then len bytes back; both arrive intact. */
static void exchange(node *n, peer *p, const uint8_t *data, size_t len)
{
    mesh_test_buf got = {0};
    CU_ASSERT_EQUAL(mesh_tls_write(n->t, data, len), MESH_OK);
    if (len == 0)
        CU_ASSERT_EQUAL(n->out.len, 0); /* an empty write sends nothing */
    to_peer(n, p);
    CU_ASSERT_EQUAL(peer_drain(p, &got), SSL_ERROR_WANT_READ);
    CU_ASSERT_EQUAL_FATAL(got.len, len);
    CU_ASSERT(len == 0 || memcmp(got.b, data, len) == 0);
    got.len = 0;
    if (len) /* SSL_write of nothing writes nothing either */
        CU_ASSERT_EQUAL(SSL_write(p->ssl, data, (int)len), (int)len);
    to_node(p, n);
    CU_ASSERT_EQUAL(node_drain(n, &got), 0);
    CU_ASSERT_EQUAL_FATAL(got.len, len);
    CU_ASSERT(len == 0 || memcmp(got.b, data, len) == 0);
    CU_ASSERT_EQUAL(mesh_tls_partial(n->t), 0);
    free(got.b);
}

/* Message sizes: every size to 300, then a prime stride to MSG_MAX, plus the record
 * boundaries. Returns the count written to sizes. */
static size_t sweep_sizes(size_t *sizes)
{
    static const size_t edges[] = {16383, 16384, 16385, 32767, 32768,  32769,
                                   49152, 65535, 65536, 69999, MSG_MAX};
    size_t n = 0;
    for (size_t s = 0; s <= 300; s++)
        sizes[n++] = s;
    for (size_t s = 301; s <= MSG_MAX; s += 997)
        sizes[n++] = s;
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        sizes[n++] = edges[i];
    return n;
}

static const struct {
    const char *name;
    int id;
} SUITES[] = {
    {"TLS_AES_128_GCM_SHA256", 0x1301},
    {"TLS_AES_256_GCM_SHA384", 0x1302},
    {"TLS_CHACHA20_POLY1305_SHA256", 0x1303},
};

static void test_data_both_ways(void)
{
    uint8_t *data = malloc(MSG_MAX);
    size_t *sizes = malloc(1000 * sizeof *sizes);
    CU_ASSERT_FATAL(data && sizes);
    fill(data, MSG_MAX, 5);
    size_t count = sweep_sizes(sizes);
    for (int role = 0; role < 2; role++) {
        for (size_t s = 0; s < sizeof SUITES / sizeof SUITES[0]; s++) {
            node n;
            peer p;
            join(&n, &p, role, SUITES[s].name, 0, NULL);
            CU_ASSERT_EQUAL(SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(p.ssl)),
                            SUITES[s].id);
            /* The zero-copy sink on half the runs: same records either way. */
            if (s % 2)
                mesh_tls_set_reserve(n.t, node_reserve, node_commit);
            for (size_t i = 0; i < count; i++)
                exchange(&n, &p, data, sizes[i]);
            if (s % 2)
                CU_ASSERT(n.commits > 0 && n.reserves > n.commits);
            node_free(&n);
            peer_free(&p);
        }
    }
    free(data);
    free(sizes);
}

/* OpenSSL asks for an update (update_requested) and writes under its new key: we read it,
 * answer with a KeyUpdate of our own at once (one record, before any data), and OpenSSL reads
 * what we write next under our new key. A not-requested update gets no answer. */
static void test_peer_key_update(void)
{
    for (int role = 0; role < 2; role++) {
        for (size_t s = 0; s < sizeof SUITES / sizeof SUITES[0]; s++) {
            node n;
            peer p;
            join(&n, &p, role, SUITES[s].name, 0, NULL);
            mesh_test_buf got = {0};
            for (int round = 0; round < 6; round++) {
                int requested = round % 3 != 2;
                CU_ASSERT_EQUAL(SSL_key_update(p.ssl, requested ? SSL_KEY_UPDATE_REQUESTED
                                                                : SSL_KEY_UPDATE_NOT_REQUESTED),
                                1);
                CU_ASSERT_EQUAL(SSL_write(p.ssl, "from openssl", 12), 12);
                to_node(&p, &n);
                got.len = 0;
                CU_ASSERT_EQUAL(node_drain(&n, &got), 0);
                CU_ASSERT(got.len == 12 && memcmp(got.b, "from openssl", 12) == 0);
                CU_ASSERT_EQUAL(n.out.len, requested ? (size_t)KEY_UPDATE_REC : 0);
                /* OpenSSL takes the KeyUpdate alone, then our data under the new key. */
                to_peer(&n, &p);
                got.len = 0;
                CU_ASSERT_EQUAL(peer_drain(&p, &got), SSL_ERROR_WANT_READ);
                CU_ASSERT_EQUAL(got.len, 0);
                CU_ASSERT_EQUAL(mesh_tls_write(n.t, (const uint8_t *)"from us", 7), MESH_OK);
                to_peer(&n, &p);
                CU_ASSERT_EQUAL(peer_drain(&p, &got), SSL_ERROR_WANT_READ);
                CU_ASSERT(got.len == 7 && memcmp(got.b, "from us", 7) == 0);
            }
            free(got.b);
            node_free(&n);
            peer_free(&p);
        }
    }
}

/* With key_update_after = 3 we update after every third record: 20 records carry 6
 * KeyUpdates (before records 4, 7, ... 19), and OpenSSL follows every one. */
static void test_our_key_updates(void)
{
    mesh_tls_cfg cfg = {.profile = MESH_PROFILE_SEED, .key_update_after = 3};
    uint8_t data[2 * 16384 + 1];
    fill(data, sizeof data, 9);
    for (int role = 0; role < 2; role++) {
        for (size_t s = 0; s < sizeof SUITES / sizeof SUITES[0]; s++) {
            node n;
            peer p;
            join(&n, &p, role, SUITES[s].name, 0, &cfg);
            mesh_test_buf got = {0};
            size_t sent = 0;
            for (int i = 0; i < 20; i++) {
                size_t len = 100 + (size_t)i * 50;
                CU_ASSERT_EQUAL(mesh_tls_write(n.t, data + i, len), MESH_OK);
                sent += len;
            }
            CU_ASSERT_EQUAL(count_records(n.out.b, n.out.len), 26);
            to_peer(&n, &p);
            CU_ASSERT_EQUAL(peer_drain(&p, &got), SSL_ERROR_WANT_READ);
            CU_ASSERT_EQUAL(got.len, sent);
            size_t off = 0;
            for (int i = 0; i < 20 && off < got.len; i++) {
                size_t len = 100 + (size_t)i * 50;
                CU_ASSERT_EQUAL(memcmp(got.b + off, data + i, len), 0);
                off += len;
            }
            /* One write of several records: the updates fall inside it too, and the key
             * counts continue across writes (2 records left on the current key). */
            CU_ASSERT_EQUAL(mesh_tls_write(n.t, data, sizeof data), MESH_OK); /* 3 records */
            CU_ASSERT_EQUAL(count_records(n.out.b, n.out.len), 4);
            to_peer(&n, &p);
            got.len = 0;
            CU_ASSERT_EQUAL(peer_drain(&p, &got), SSL_ERROR_WANT_READ);
            CU_ASSERT(got.len == sizeof data && memcmp(got.b, data, sizeof data) == 0);
            /* Our reading side is untouched by our updates. */
            exchange(&n, &p, data, 5000);
            free(got.b);
            node_free(&n);
            peer_free(&p);
        }
    }
}

/* An OpenSSL server that sends two NewSessionTickets after the handshake: our client takes
 * them silently (no output, nothing to read) and data flows both ways. */
static void test_tickets_ignored(void)
{
    node n;
    peer p;
    size_t after = join(&n, &p, 0, NULL, 2, NULL);
    CU_ASSERT(after > 0); /* the tickets came after our handshake was complete */
    mesh_test_buf got = {0};
    CU_ASSERT_EQUAL(node_drain(&n, &got), 0);
    CU_ASSERT_EQUAL(got.len, 0);
    CU_ASSERT_EQUAL(n.out.len, 0);
    CU_ASSERT_EQUAL(mesh_tls_partial(n.t), 0);
    uint8_t data[40000];
    fill(data, sizeof data, 3);
    exchange(&n, &p, data, sizeof data);
    exchange(&n, &p, data, 1);
    free(got.b);
    node_free(&n);
    peer_free(&p);

    /* Without tickets nothing follows the handshake: the bytes above were the tickets. */
    CU_ASSERT_EQUAL(join(&n, &p, 0, NULL, 0, NULL), 0);
    node_free(&n);
    peer_free(&p);
}

static void test_close_notify(void)
{
    for (int role = 0; role < 2; role++) {
        /* OpenSSL closes after some data: we read the data, then MESH_ERR_CLOSED (for good). */
        node n;
        peer p;
        join(&n, &p, role, NULL, 0, NULL);
        CU_ASSERT_EQUAL(SSL_write(p.ssl, "last words", 10), 10);
        CU_ASSERT_EQUAL(SSL_shutdown(p.ssl), 0); /* sent, the peer's not received yet */
        to_node(&p, &n);
        uint8_t buf[64];
        CU_ASSERT_EQUAL(mesh_tls_read(n.t, buf, sizeof buf), 10);
        CU_ASSERT_EQUAL(memcmp(buf, "last words", 10), 0);
        CU_ASSERT_EQUAL(mesh_tls_read(n.t, buf, sizeof buf), MESH_ERR_CLOSED);
        CU_ASSERT_EQUAL(mesh_tls_read(n.t, buf, sizeof buf), MESH_ERR_CLOSED);
        /* Half-close: we may still answer, then close in turn; OpenSSL sees a clean end. */
        CU_ASSERT_EQUAL(mesh_tls_write(n.t, (const uint8_t *)"ok", 2), MESH_OK);
        CU_ASSERT_EQUAL(mesh_tls_close(n.t), MESH_OK);
        to_peer(&n, &p);
        mesh_test_buf got = {0};
        CU_ASSERT_EQUAL(peer_drain(&p, &got), SSL_ERROR_ZERO_RETURN);
        CU_ASSERT(got.len == 2 && memcmp(got.b, "ok", 2) == 0);
        CU_ASSERT_EQUAL(SSL_shutdown(p.ssl), 1); /* both close_notify exchanged */
        node_free(&n);
        peer_free(&p);

        /* We close first: OpenSSL reads the data, then 0 with SSL_ERROR_ZERO_RETURN. */
        join(&n, &p, role, NULL, 0, NULL);
        CU_ASSERT_EQUAL(mesh_tls_write(n.t, (const uint8_t *)"bye", 3), MESH_OK);
        CU_ASSERT_EQUAL(mesh_tls_close(n.t), MESH_OK);
        CU_ASSERT_EQUAL(mesh_tls_close(n.t), MESH_OK); /* once */
        CU_ASSERT_EQUAL(count_records(n.out.b, n.out.len), 2);
        CU_ASSERT_EQUAL(mesh_tls_write(n.t, (const uint8_t *)"x", 1), MESH_ERR_STATE);
        to_peer(&n, &p);
        got.len = 0;
        uint8_t tmp[16];
        CU_ASSERT_EQUAL(SSL_read(p.ssl, tmp, sizeof tmp), 3);
        int k = SSL_read(p.ssl, tmp, sizeof tmp);
        CU_ASSERT_EQUAL(k, 0);
        CU_ASSERT_EQUAL(SSL_get_error(p.ssl, k), SSL_ERROR_ZERO_RETURN);
        free(got.b);
        node_free(&n);
        peer_free(&p);
    }
}

/* One damaged byte in what OpenSSL sent (the outer type, the body, the tag): the read fails
 * with MESH_ERR_TLS, says why, and the connection stays failed. */
static void test_tampered(void)
{
    static const size_t where[] = {0, HDR + 3, HDR + 20 + 1 + TAG - 1}; /* 20-byte message */
    for (size_t w = 0; w < sizeof where / sizeof where[0]; w++) {
        node n;
        peer p;
        join(&n, &p, (int)(w % 2), NULL, 0, NULL);
        CU_ASSERT_EQUAL(SSL_write(p.ssl, "twenty bytes of data", 20), 20);
        uint8_t rec[HDR + 20 + 1 + TAG];
        CU_ASSERT_EQUAL_FATAL(BIO_read(p.wb, rec, sizeof rec), (int)sizeof rec);
        rec[where[w]] ^= 0x04;
        CU_ASSERT_EQUAL(mesh_tls_feed(n.t, rec, sizeof rec), MESH_OK);
        uint8_t buf[64];
        CU_ASSERT_EQUAL(mesh_tls_read(n.t, buf, sizeof buf), MESH_ERR_TLS);
        CU_ASSERT(strlen(mesh_tls_error_text(n.t)) > 0);
        CU_ASSERT_EQUAL(mesh_tls_read(n.t, buf, sizeof buf), MESH_ERR_TLS);
        CU_ASSERT_EQUAL(mesh_tls_write(n.t, buf, 1), MESH_ERR_TLS);
        node_free(&n);
        peer_free(&p);
    }
}

/* Our server writes before the client's Finished arrives (0.5-RTT): an OpenSSL client reads
 * it once its handshake is done. */
static void test_early_server_data(void)
{
    node n;
    peer p;
    node_init(&n, 21, 1, NULL);
    peer_init(&p, 0, NULL, 0);
    CU_ASSERT_EQUAL(mesh_tls_early(n.t), MESH_ERR_AGAIN); /* nothing received yet */
    (void)SSL_do_handshake(p.ssl);                        /* ClientHello */
    to_node(&p, &n);
    CU_ASSERT_EQUAL(mesh_tls_handshake(n.t), MESH_ERR_AGAIN); /* its flight out */
    CU_ASSERT_EQUAL(mesh_tls_early(n.t), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_write(n.t, (const uint8_t *)"half a round trip", 17), MESH_OK);
    to_peer(&n, &p);
    CU_ASSERT_EQUAL(SSL_do_handshake(p.ssl), 1);
    mesh_test_buf got = {0};
    CU_ASSERT_EQUAL(peer_drain(&p, &got), SSL_ERROR_WANT_READ);
    CU_ASSERT(got.len == 17 && memcmp(got.b, "half a round trip", 17) == 0);
    to_node(&p, &n);
    CU_ASSERT_EQUAL(mesh_tls_handshake(n.t), MESH_OK);
    uint8_t data[20000];
    fill(data, sizeof data, 1);
    exchange(&n, &p, data, sizeof data);
    free(got.b);
    node_free(&n);
    peer_free(&p);
}

/* ---- two of our nodes ------------------------------------------------------------------ */

static void pair_up(node *c, node *s, const mesh_tls_cfg *ccfg)
{
    node_init(c, 1, 0, ccfg);
    node_init(s, 2, 1, NULL);
    for (int i = 0; i < PUMP_ROUNDS; i++) {
        if (c->hs == MESH_ERR_AGAIN)
            c->hs = mesh_tls_handshake(c->t);
        CU_ASSERT_EQUAL(mesh_tls_feed(s->t, c->out.b, c->out.len), MESH_OK);
        c->out.len = 0;
        if (s->hs == MESH_ERR_AGAIN)
            s->hs = mesh_tls_handshake(s->t);
        CU_ASSERT_EQUAL(mesh_tls_feed(c->t, s->out.b, s->out.len), MESH_OK);
        s->out.len = 0;
        if (c->hs != MESH_ERR_AGAIN && s->hs != MESH_ERR_AGAIN)
            break;
    }
    CU_ASSERT_EQUAL_FATAL(c->hs, MESH_OK);
    CU_ASSERT_EQUAL_FATAL(s->hs, MESH_OK);
}

/* The client's pending output, fed to the server; the server's read result after the
 * readable data (appended to got, which may be NULL). */
static long deliver_read(node *c, node *s, mesh_test_buf *got)
{
    CU_ASSERT_EQUAL(mesh_tls_feed(s->t, c->out.b, c->out.len), MESH_OK);
    c->out.len = 0;
    mesh_test_buf tmp = {0};
    long r = node_drain(s, got ? got : &tmp);
    free(tmp.b);
    return r;
}

/* The server gets a byte of good data then one record of type with content d: it reads the
 * byte, then MESH_ERR_TLS with a reason, for good. Fresh connection each time. */
static void expect_refused(const char *what, int type, const uint8_t *d, size_t len)
{
    node c, s;
    pair_up(&c, &s, NULL);
    CU_ASSERT_EQUAL(mesh_tls_write(c.t, (const uint8_t *)"!", 1), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_send_record(c.t, type, d, len), MESH_OK);
    mesh_test_buf got = {0};
    long r = deliver_read(&c, &s, &got);
    if (r != MESH_ERR_TLS)
        fprintf(stderr, "\n  not refused: %s (read returned %ld)\n", what, r);
    CU_ASSERT_EQUAL(r, MESH_ERR_TLS);
    CU_ASSERT(got.len == 1 && got.b[0] == '!');
    CU_ASSERT(strlen(mesh_tls_error_text(s.t)) > 0);
    uint8_t buf[8];
    CU_ASSERT_EQUAL(mesh_tls_read(s.t, buf, sizeof buf), MESH_ERR_TLS);
    if (type == 21 && len == 2) /* the alert's description is in the text */
        CU_ASSERT_PTR_NOT_NULL(strstr(mesh_tls_error_text(s.t), "40"));
    free(got.b);
    node_free(&c);
    node_free(&s);
}

static void test_refused_records(void)
{
    static const struct {
        const char *what;
        int type;
        uint8_t data[8];
        size_t len;
    } cases[] = {
        {"fatal alert (handshake_failure)", 21, {2, 40}, 2},
        {"warning alert other than close_notify", 21, {1, 40}, 2},
        {"alert of 3 bytes", 21, {2, 40, 0}, 3},
        {"alert of 1 byte", 21, {1}, 1},
        {"content type 99", 99, {1, 2, 3}, 3},
        {"content type 255", 255, {1, 2, 3}, 3},
        {"change_cipher_spec after the handshake", 20, {1}, 1},
        {"KeyUpdate with request value 2", 22, {24, 0, 0, 1, 2}, 5},
        {"KeyUpdate of 2 bytes", 22, {24, 0, 0, 2, 0, 0}, 6},
        {"handshake message cut short", 22, {4, 0, 0, 9, 1, 2}, 6},
        {"CertificateRequest (no post-handshake auth offered)", 22, {13, 0, 0, 0}, 4},
        {"ClientHello after the handshake", 22, {1, 0, 0, 0}, 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_refused(cases[i].what, cases[i].type, cases[i].data, cases[i].len);
}

/* RFC 8446 §5.1: a KeyUpdate must be the last message of its record ("implementations MUST
 * verify that these messages align with a record boundary; if not, then they MUST terminate
 * the connection with an unexpected_message alert"): what follows it in the record was
 * protected under the old key. §4.6.1: only a server sends NewSessionTicket; a server that
 * gets one has been sent an unexpected message (§6.2). */
static void test_refused_rfc8446(void)
{
    static const uint8_t ku_then_ticket[] = {24, 0, 0, 1, 0, 4, 0, 0, 0};
    static const uint8_t ticket[] = {4, 0, 0, 0};
    expect_refused("KeyUpdate not at the end of its record", 22, ku_then_ticket,
                   sizeof ku_then_ticket);
    expect_refused("NewSessionTicket sent to a server", 22, ticket, sizeof ticket);
}

/* What must be accepted between records: empty data records, a NewSessionTicket to a client,
 * several post-handshake messages in one record, a KeyUpdate split from nothing. */
static void test_accepted_records(void)
{
    node c, s;
    pair_up(&c, &s, NULL);
    mesh_test_buf got = {0};
    CU_ASSERT_EQUAL(mesh_tls_send_record(c.t, 23, NULL, 0), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_write(c.t, (const uint8_t *)"a", 1), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_send_record(c.t, 23, NULL, 0), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_send_record(c.t, 23, NULL, 0), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_write(c.t, (const uint8_t *)"b", 1), MESH_OK);
    CU_ASSERT_EQUAL(deliver_read(&c, &s, &got), 0);
    CU_ASSERT(got.len == 2 && memcmp(got.b, "ab", 2) == 0);
    CU_ASSERT_EQUAL(mesh_tls_partial(s.t), 0);

    /* Server to client: two tickets in one record, then a requested KeyUpdate alone. The
     * client answers the update; the server, told by hand, follows. */
    static const uint8_t two_tickets[] = {4, 0, 0, 2, 9, 9, 4, 0, 0, 0};
    static const uint8_t ku_req[] = {24, 0, 0, 1, 1};
    CU_ASSERT_EQUAL(mesh_tls_send_record(s.t, 22, two_tickets, sizeof two_tickets), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_write(s.t, (const uint8_t *)"c", 1), MESH_OK);
    got.len = 0;
    CU_ASSERT_EQUAL(deliver_read(&s, &c, &got), 0);
    CU_ASSERT(got.len == 1 && got.b[0] == 'c');
    CU_ASSERT_EQUAL(c.out.len, 0);
    /* send_record does not move our own keys: the KeyUpdate we send by hand leaves the
     * server's sealing key where it was, so only the client's reading key moves... and the
     * next record fails. That is the record layer doing its job: check it. */
    CU_ASSERT_EQUAL(mesh_tls_send_record(s.t, 22, ku_req, sizeof ku_req), MESH_OK);
    CU_ASSERT_EQUAL(deliver_read(&s, &c, NULL), 0);
    CU_ASSERT_EQUAL(c.out.len, KEY_UPDATE_REC); /* answered */
    CU_ASSERT_EQUAL(mesh_tls_write(s.t, (const uint8_t *)"d", 1), MESH_OK);
    CU_ASSERT_EQUAL(deliver_read(&s, &c, NULL), MESH_ERR_TLS);
    free(got.b);
    node_free(&c);
    node_free(&s);
}

/* The stream of writes used below: sizes around every record boundary, an empty record, and
 * (with key_update_after = 4 on the writer) KeyUpdates among them. */
static const size_t STREAM[] = {1, 17, 300, 16385, 2, 0, 1000, 5};

static void write_stream(node *c, mesh_test_buf *want)
{
    uint8_t *data = malloc(16385);
    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    for (size_t i = 0; i < sizeof STREAM / sizeof STREAM[0]; i++) {
        fill(data, STREAM[i], (unsigned)(want->len + i));
        int rc = STREAM[i] ? mesh_tls_write(c->t, data, STREAM[i])
                           : mesh_tls_send_record(c->t, 23, NULL, 0);
        CU_ASSERT_EQUAL(rc, MESH_OK);
        mesh_test_buf_add(want, data, STREAM[i]);
    }
    free(data);
}

/* Lend a copy of len bytes (allocated to the byte, so ASan sees any read past the end or
 * after mesh_tls_keep), read with buffer size cap (everything, or at most `reads` times: a
 * caller that stops reading, leaving plaintext waiting inside), keep, free the copy. */
static void lend_read_keep(node *s, const uint8_t *p, size_t len, size_t cap, size_t reads,
                           mesh_test_buf *got)
{
    uint8_t *copy = malloc(len ? len : 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
    if (len)
        memcpy(copy, p, len);
    CU_ASSERT_EQUAL(mesh_tls_lend(s->t, copy, len), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_lend(s->t, copy, len), MESH_ERR_STATE);
    CU_ASSERT_EQUAL(mesh_tls_feed(s->t, copy, len), MESH_ERR_STATE);
    if (reads) {
        uint8_t *buf = malloc(cap);
        CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
        long r = 0;
        size_t over = 0;
        for (size_t i = 0; i < reads && (r = mesh_tls_read(s->t, buf, cap)) > 0; i++) {
            over += (size_t)r > cap;
            mesh_test_buf_add(got, buf, (size_t)r);
        }
        CU_ASSERT(r >= 0);
        CU_ASSERT_EQUAL(over, 0);
        free(buf);
    }
    CU_ASSERT_EQUAL(mesh_tls_keep(s->t), MESH_OK);
    memset(copy, 0xee, len); /* the bytes go away: nothing may still point at them */
    free(copy);
}

/* The ciphertext of the stream cut in two at every byte offset (each time a fresh copy of
 * the stream from the same connection: same record layout, later sequence numbers). */
static void test_lend_every_offset(void)
{
    static const size_t caps[] = {1, 7, 16384, 16385, READ_MAX};
    mesh_tls_cfg cfg = {.profile = MESH_PROFILE_SEED, .key_update_after = 4};
    node c, s;
    pair_up(&c, &s, &cfg);
    mesh_test_buf want = {0}, got = {0};
    size_t len0 = 0;
    for (size_t off = 0;; off++) {
        want.len = got.len = 0;
        write_stream(&c, &want);
        size_t len = c.out.len, cut = off < len ? off : len;
        if (off == 0)
            len0 = len;
        size_t cap = caps[off % 5];
        lend_read_keep(&s, c.out.b, cut, cap, SIZE_MAX, &got);
        lend_read_keep(&s, c.out.b + cut, len - cut, cap, SIZE_MAX, &got);
        c.out.len = 0;
        CU_ASSERT_EQUAL(mesh_tls_partial(s.t), 0);
        if (got.len != want.len || memcmp(got.b, want.b, want.len) != 0) {
            fprintf(stderr, "\n  cut at %zu of %zu, reads of %zu: %zu bytes of %zu\n", cut, len,
                    cap, got.len, want.len);
            CU_FAIL("plaintext differs");
            break;
        }
        if (off >= len0 && off >= len)
            break;
    }
    CU_ASSERT_EQUAL(mesh_tls_keep(s.t), MESH_OK); /* nothing lent: a no-op */
    free(want.b);
    free(got.b);
    node_free(&c);
    node_free(&s);
}

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* A long stream of random-size writes (0..70000) delivered in random pieces of 1..5000
 * bytes, each lent (or, one time in six, fed), read with a random buffer size until nothing
 * is left or, one time in four, only a few times or not at all before the keep (a caller
 * that stopped reading: plaintext and ciphertext wait inside). The writer seals into the
 * sink's memory on one run of two. */
static void test_lend_random_pieces(void)
{
    static const size_t caps[] = {1, 7, 16384, 16385, READ_MAX};
    uint8_t *data = malloc(MSG_MAX);
    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    for (int run = 0; run < 4; run++) {
        mesh_tls_cfg cfg = {.profile = MESH_PROFILE_SEED, .key_update_after = run < 2 ? 0 : 7};
        node c, s;
        pair_up(&c, &s, &cfg);
        if (run % 2)
            mesh_tls_set_reserve(c.t, node_reserve, node_commit);
        uint64_t rng = 0x1234567 + (uint64_t)run;
        mesh_test_buf want = {0}, got = {0};
        for (int w = 0; w < 60; w++) {
            size_t len = xorshift(&rng) % (w % 4 ? 3000 : MSG_MAX + 1);
            fill(data, len, (unsigned)w);
            CU_ASSERT_EQUAL(mesh_tls_write(c.t, data, len), MESH_OK);
            mesh_test_buf_add(&want, data, len);
        }
        size_t off = 0;
        while (off < c.out.len) {
            size_t piece = 1 + xorshift(&rng) % 5000;
            if (piece > c.out.len - off)
                piece = c.out.len - off;
            size_t cap = caps[xorshift(&rng) % 5];
            uint64_t how = xorshift(&rng);
            if (how % 6 == 0) {
                CU_ASSERT_EQUAL(mesh_tls_feed(s.t, c.out.b + off, piece), MESH_OK);
            } else {
                size_t reads = how % 4 == 1 ? (how >> 8) % 4 : SIZE_MAX;
                lend_read_keep(&s, c.out.b + off, piece, cap, reads, &got);
            }
            off += piece;
        }
        lend_read_keep(&s, NULL, 0, READ_MAX, SIZE_MAX, &got); /* what skipped reads left */
        CU_ASSERT_EQUAL(got.len, want.len);
        CU_ASSERT(got.len == want.len && memcmp(got.b, want.b, want.len) == 0);
        CU_ASSERT_EQUAL(mesh_tls_partial(s.t), 0);
        free(want.b);
        free(got.b);
        node_free(&c);
        node_free(&s);
    }
    free(data);
}

/* A caller that stops reading when the lent bytes are used up but the record it opened is
 * not: the rest of that record's plaintext waits inside across the keep, the next lend and a
 * feed, and comes out first, in order. */
static void test_lend_stop_mid_record(void)
{
    static const size_t caps[] = {1, 100, 999};
    uint8_t data[1000], buf[1000];
    fill(data, sizeof data, 4);
    for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
        node c, s;
        pair_up(&c, &s, NULL);
        CU_ASSERT_EQUAL(mesh_tls_write(c.t, data, sizeof data), MESH_OK);
        size_t rec1 = c.out.len;
        CU_ASSERT_EQUAL(mesh_tls_write(c.t, data, 10), MESH_OK);
        mesh_test_buf got = {0};
        lend_read_keep(&s, c.out.b, rec1, caps[k], 1, &got); /* exactly one record, one read */
        CU_ASSERT_EQUAL(got.len, caps[k]);
        CU_ASSERT_EQUAL(mesh_tls_partial(s.t), sizeof data - caps[k]);
        CU_ASSERT_EQUAL(mesh_tls_feed(s.t, c.out.b + rec1, c.out.len - rec1), MESH_OK);
        long r;
        while ((r = mesh_tls_read(s.t, buf, sizeof buf)) > 0)
            mesh_test_buf_add(&got, buf, (size_t)r);
        CU_ASSERT_EQUAL(r, 0);
        CU_ASSERT_EQUAL(got.len, sizeof data + 10);
        CU_ASSERT(got.len == sizeof data + 10 && memcmp(got.b, data, sizeof data) == 0 &&
                  memcmp(got.b + sizeof data, data, 10) == 0);
        CU_ASSERT_EQUAL(mesh_tls_partial(s.t), 0);
        free(got.b);
        node_free(&c);
        node_free(&s);
    }
}

/* Sealing into the sink's memory changes nothing on the wire: two identical connections
 * (same seeds), one with the sink, send identical bytes. */
static void test_reserve_same_bytes(void)
{
    mesh_tls_cfg cfg = {.profile = MESH_PROFILE_SEED, .key_update_after = 2};
    node c1, s1, c2, s2;
    pair_up(&c1, &s1, &cfg);
    pair_up(&c2, &s2, &cfg);
    mesh_tls_set_reserve(c2.t, node_reserve, node_commit);
    uint8_t data[40000];
    fill(data, sizeof data, 2);
    for (size_t len = 0; len < sizeof data; len = len * 2 + 1) {
        CU_ASSERT_EQUAL(mesh_tls_write(c1.t, data, len), MESH_OK);
        CU_ASSERT_EQUAL(mesh_tls_write(c2.t, data, len), MESH_OK);
    }
    CU_ASSERT_EQUAL(mesh_tls_close(c1.t), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_close(c2.t), MESH_OK);
    CU_ASSERT_EQUAL(c1.out.len, c2.out.len);
    CU_ASSERT(c1.out.len == c2.out.len && memcmp(c1.out.b, c2.out.b, c1.out.len) == 0);
    CU_ASSERT(c2.commits > 0 && c2.reserves > c2.commits);
    mesh_tls_set_reserve(c2.t, NULL, NULL); /* off again */
    mesh_test_buf got = {0};
    CU_ASSERT_EQUAL(deliver_read(&c2, &s2, &got), MESH_ERR_CLOSED);
    free(got.b);
    node_free(&c1);
    node_free(&s1);
    node_free(&c2);
    node_free(&s2);
}

static CU_TestInfo tests[] = {
    {"data both ways 0..70000 bytes, both roles, 3 suites", test_data_both_ways},
    {"OpenSSL's KeyUpdate followed and answered", test_peer_key_update},
    {"our KeyUpdates (key_update_after = 3) followed by OpenSSL", test_our_key_updates},
    {"session tickets from an OpenSSL server ignored", test_tickets_ignored},
    {"close_notify both ways", test_close_notify},
    {"a damaged record fails the connection", test_tampered},
    {"0.5-RTT data from our server read by OpenSSL", test_early_server_data},
    {"bad alerts, content types, post-handshake messages refused", test_refused_records},
    {"RFC 8446: KeyUpdate ends its record; no ticket to a server", test_refused_rfc8446},
    {"empty records, tickets, KeyUpdate between our nodes", test_accepted_records},
    {"lent ciphertext cut at every byte offset", test_lend_every_offset},
    {"lent ciphertext in random pieces, random reads", test_lend_random_pieces},
    {"reading stopped mid-record across a keep", test_lend_stop_mid_record},
    {"zero-copy sink: same bytes on the wire", test_reserve_same_bytes},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"tls_interop", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
