/* test_record.c — record.h alone: TLS 1.3 record protection for one direction, checked against
 * itself (round trips, tampering, order, key updates, output split over two buffers), against
 * an independent AES-128-GCM sealer written here (padding, size limits), and against the
 * records of RFC 8448 §3 "Simple 1-RTT Handshake" (known answers: the exact bytes a
 * conforming implementation puts on the wire). */
#include "mesh_test.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "core/identity.h"
#include "core/record.h"

enum { SECRET_LEN_SHA256 = 32, SECRET_LEN_SHA384 = 48, IV_LEN = 12 };

static const int SUITES[] = {0x1301, 0x1302, 0x1303};
static const size_t CONTENT_LENS[] = {0, 1, 16383, 16384};

static size_t secret_len_of(int suite)
{
    return suite == 0x1302 ? SECRET_LEN_SHA384 : SECRET_LEN_SHA256;
}

static void fill(uint8_t *p, size_t n, unsigned salt)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 31 + salt + (i >> 8));
}

static void hex(const char *h, uint8_t *out, size_t len)
{
    CU_ASSERT_EQUAL_FATAL(mesh_hex_decode(h, out, len), MESH_OK);
}

/* The three suites' algorithms, fetched once for the program (mesh_rec objects borrow them). */
static mesh_rec_suite *suite_objs[3];

static int suites_init(void)
{
    for (int i = 0; i < 3; i++)
        if (mesh_rec_suite_new(&suite_objs[i], NULL, 0x1301 + i) != MESH_OK)
            return 1;
    return 0;
}

static int suites_free(void)
{
    for (int i = 0; i < 3; i++)
        mesh_rec_suite_free(suite_objs[i]);
    return 0;
}

static const mesh_rec_suite *suite_of(int suite)
{
    return suite >= 0x1301 && suite <= 0x1303 ? suite_objs[suite - 0x1301] : NULL;
}

static int rec_new(mesh_rec **out, int suite, const uint8_t *secret, size_t len, int seal)
{
    return mesh_rec_new(out, suite_of(suite), secret, len, seal);
}

/* A sealer and an opener keyed with the same secret (a pattern salted by salt). */
static void pair(int suite, unsigned salt, mesh_rec **seal, mesh_rec **open)
{
    uint8_t secret[MESH_REC_SECRET_MAX];
    fill(secret, sizeof secret, salt);
    size_t sl = secret_len_of(suite);
    CU_ASSERT_EQUAL_FATAL(rec_new(seal, suite, secret, sl, 1), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(rec_new(open, suite, secret, sl, 0), MESH_OK);
}

/* Open rec into one large buffer. Returns the content length or the error. */
static long open_all(mesh_rec *r, const uint8_t *rec, size_t len, uint8_t *out, int *type)
{
    static uint8_t spill[MESH_REC_INNER_MAX];
    const char *why = NULL;
    long n = mesh_rec_open(r, rec, len, out, MESH_REC_INNER_MAX, spill, type, &why);
    if (n < 0)
        CU_ASSERT_PTR_NOT_NULL(why); /* every failure is named */
    return n;
}

static void test_round_trip(void)
{
    uint8_t *data = malloc(MESH_REC_PLAIN_MAX), *rec = malloc(MESH_REC_SEAL_MAX);
    uint8_t *got = malloc(MESH_REC_INNER_MAX);
    CU_ASSERT_FATAL(data && rec && got);
    for (size_t s = 0; s < sizeof SUITES / sizeof SUITES[0]; s++) {
        mesh_rec *tx, *rx;
        pair(SUITES[s], (unsigned)s, &tx, &rx);
        for (size_t k = 0; k < sizeof CONTENT_LENS / sizeof CONTENT_LENS[0]; k++) {
            size_t len = CONTENT_LENS[k];
            fill(data, len, (unsigned)k);
            long n = mesh_rec_seal(tx, MESH_REC_APPDATA, data, len, rec);
            size_t want = MESH_REC_HDR + len + 1 + MESH_REC_TAG;
            CU_ASSERT_EQUAL(n, (long)want);
            CU_ASSERT_EQUAL(rec[0], 0x17);
            CU_ASSERT_EQUAL(rec[1], 0x03);
            CU_ASSERT_EQUAL(rec[2], 0x03);
            CU_ASSERT_EQUAL((size_t)rec[3] << 8 | rec[4], len + 1 + MESH_REC_TAG);
            const char *why = NULL;
            CU_ASSERT_EQUAL(mesh_rec_length(rec, &why), (long)want);
            /* The content is not on the wire in the clear. */
            if (len >= 16)
                CU_ASSERT_NOT_EQUAL(memcmp(rec + MESH_REC_HDR, data, 16), 0);
            int type = -1;
            CU_ASSERT_EQUAL(open_all(rx, rec, want, got, &type), (long)len);
            CU_ASSERT_EQUAL(type, MESH_REC_APPDATA);
            CU_ASSERT_EQUAL(memcmp(got, data, len), 0);
            CU_ASSERT_EQUAL(mesh_rec_seq(tx), k + 1);
            CU_ASSERT_EQUAL(mesh_rec_seq(rx), k + 1);
        }
        /* Other content types travel inside; the outer type stays application_data. */
        static const uint8_t alert[2] = {1, 0};
        long n = mesh_rec_seal(tx, MESH_REC_ALERT, alert, 2, rec);
        CU_ASSERT_EQUAL(n, MESH_REC_HDR + 2 + 1 + MESH_REC_TAG);
        CU_ASSERT_EQUAL(rec[0], MESH_REC_APPDATA);
        int type = -1;
        CU_ASSERT_EQUAL(open_all(rx, rec, (size_t)n, got, &type), 2);
        CU_ASSERT_EQUAL(type, MESH_REC_ALERT);
        CU_ASSERT_EQUAL(memcmp(got, alert, 2), 0);
        /* Same content twice: different ciphertext (the nonce moves with the sequence). */
        uint8_t r1[64], r2[64];
        CU_ASSERT_EQUAL(mesh_rec_seal(tx, MESH_REC_APPDATA, data, 8, r1), 30);
        CU_ASSERT_EQUAL(mesh_rec_seal(tx, MESH_REC_APPDATA, data, 8, r2), 30);
        CU_ASSERT_NOT_EQUAL(memcmp(r1 + MESH_REC_HDR, r2 + MESH_REC_HDR, 25), 0);
        mesh_rec_free(tx);
        mesh_rec_free(rx);
    }
    free(data);
    free(rec);
    free(got);
}

/* Every single-bit flip anywhere in a record (header, body, tag) is refused as a forgery, a
 * refused record does not advance the sequence, and the genuine record still opens after. */
static void test_tamper(void)
{
    enum { LEN = 100, REC = MESH_REC_HDR + LEN + 1 + MESH_REC_TAG };
    for (size_t s = 0; s < sizeof SUITES / sizeof SUITES[0]; s++) {
        mesh_rec *tx, *rx;
        pair(SUITES[s], 7, &tx, &rx);
        uint8_t data[LEN], rec[REC], bad[REC], got[MESH_REC_INNER_MAX];
        fill(data, LEN, 3);
        CU_ASSERT_EQUAL_FATAL(mesh_rec_seal(tx, MESH_REC_APPDATA, data, LEN, rec), REC);
        int refused = 0;
        for (size_t i = 0; i < REC; i++) {
            memcpy(bad, rec, REC);
            bad[i] ^= (uint8_t)(1u << (i % 8));
            int type;
            if (open_all(rx, bad, REC, got, &type) == MESH_ERR_CRYPTO)
                refused++;
        }
        CU_ASSERT_EQUAL(refused, REC);
        CU_ASSERT_EQUAL(mesh_rec_seq(rx), 0);
        int type = -1;
        CU_ASSERT_EQUAL(open_all(rx, rec, REC, got, &type), LEN);
        CU_ASSERT_EQUAL(memcmp(got, data, LEN), 0);
        /* A truncated record (tag cut short, length adjusted in the header too) fails. */
        CU_ASSERT_EQUAL_FATAL(mesh_rec_seal(tx, MESH_REC_APPDATA, data, LEN, rec), REC);
        memcpy(bad, rec, REC);
        bad[4] = (uint8_t)(bad[4] - 1);
        CU_ASSERT_EQUAL(open_all(rx, bad, REC - 1, got, &type), MESH_ERR_CRYPTO);
        CU_ASSERT_EQUAL(open_all(rx, rec, REC, got, &type), LEN);
        mesh_rec_free(tx);
        mesh_rec_free(rx);
    }
}

static void test_wrong_key_and_order(void)
{
    uint8_t rec[3][64], got[MESH_REC_INNER_MAX];
    int type;
    mesh_rec *tx, *rx, *tx2, *rx2;
    pair(0x1301, 1, &tx, &rx);
    pair(0x1301, 2, &tx2, &rx2); /* another secret */
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(mesh_rec_seal(tx, MESH_REC_APPDATA, (const uint8_t *)"record", 6, rec[i]),
                        28);
    CU_ASSERT_EQUAL(open_all(rx2, rec[0], 28, got, &type), MESH_ERR_CRYPTO);
    /* Skipped record: #1 before #0 fails; in order they open; a replay of #0 fails. */
    CU_ASSERT_EQUAL(open_all(rx, rec[1], 28, got, &type), MESH_ERR_CRYPTO);
    CU_ASSERT_EQUAL(open_all(rx, rec[0], 28, got, &type), 6);
    CU_ASSERT_EQUAL(open_all(rx, rec[0], 28, got, &type), MESH_ERR_CRYPTO);
    CU_ASSERT_EQUAL(open_all(rx, rec[1], 28, got, &type), 6);
    CU_ASSERT_EQUAL(open_all(rx, rec[2], 28, got, &type), 6);
    CU_ASSERT_EQUAL(memcmp(got, "record", 6), 0);
    /* Same secret, other suite of the same hash length: other keys. */
    uint8_t secret[32];
    fill(secret, sizeof secret, 1);
    mesh_rec *cc = NULL;
    CU_ASSERT_EQUAL_FATAL(rec_new(&cc, 0x1303, secret, 32, 0), MESH_OK);
    CU_ASSERT_EQUAL(open_all(cc, rec[0], 28, got, &type), MESH_ERR_CRYPTO);
    /* Direction matters: a sealer does not open, an opener does not seal. */
    const char *why = NULL;
    CU_ASSERT(mesh_rec_open(tx, rec[0], 28, got, sizeof got, got, &type, &why) < 0);
    CU_ASSERT_EQUAL(mesh_rec_seal(rx, MESH_REC_APPDATA, got, 1, rec[0]), MESH_ERR_INVAL);
    /* Oversize content is refused without consuming a sequence number. */
    uint64_t seq = mesh_rec_seq(tx);
    static uint8_t big[MESH_REC_PLAIN_MAX + 1], out[MESH_REC_SEAL_MAX + 1];
    CU_ASSERT_EQUAL(mesh_rec_seal(tx, MESH_REC_APPDATA, big, sizeof big, out), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_rec_seq(tx), seq);
    mesh_rec_free(cc);
    mesh_rec_free(tx);
    mesh_rec_free(rx);
    mesh_rec_free(tx2);
    mesh_rec_free(rx2);
}

static void test_length(void)
{
    const char *why;
    uint8_t h[MESH_REC_HDR] = {23, 3, 3, 0, 0};
    struct {
        uint8_t type;
        size_t body;
        long want;
    } cases[] = {
        {23, 17, MESH_REC_HDR + 17},                   /* type byte + tag: the least */
        {23, 16384 + 256, MESH_REC_HDR + 16384 + 256}, /* the most */
        {23, 16384 + 257, MESH_ERR_MALFORMED},         /* record_overflow */
        {23, 0xffff, MESH_ERR_MALFORMED},
        {23, 16, MESH_ERR_MALFORMED}, /* a tag and no type */
        {23, 0, MESH_ERR_MALFORMED},
        {22, 100, MESH_ERR_MALFORMED}, /* a plaintext handshake record after the handshake */
        {21, 100, MESH_ERR_MALFORMED}, /* a plaintext alert */
        {20, 1, MESH_ERR_MALFORMED},   /* change_cipher_spec */
        {0, 100, MESH_ERR_MALFORMED},  /* no such type */
        {99, 100, MESH_ERR_MALFORMED}, /* no such type */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        h[0] = cases[i].type;
        h[3] = (uint8_t)(cases[i].body >> 8);
        h[4] = (uint8_t)cases[i].body;
        why = NULL;
        long n = mesh_rec_length(h, &why);
        CU_ASSERT_EQUAL(n, cases[i].want);
        if (n < 0)
            CU_ASSERT(why && why[0]);
    }
}

/* The content split over out1 (cap1 bytes, allocated exactly so ASan sees an overrun) and out2
 * is the same as opened into one buffer, wherever the split falls: before, inside or after
 * the content, on the type byte, inside the padding. */
static void open_split(mesh_rec *rx, const uint8_t *rec, size_t len, size_t cap1,
                       const uint8_t *want, size_t want_len, int want_type)
{
    uint8_t *out1 = malloc(cap1 ? cap1 : 1), *out2 = malloc(MESH_REC_INNER_MAX);
    CU_ASSERT_FATAL(out1 && out2);
    if (!cap1)
        out1[0] = 0xa5;
    int type = -1;
    const char *why = NULL;
    long n = mesh_rec_open(rx, rec, len, out1, cap1, out2, &type, &why);
    CU_ASSERT_EQUAL(n, (long)want_len);
    CU_ASSERT_EQUAL(type, want_type);
    if (n == (long)want_len) {
        size_t n1 = want_len < cap1 ? want_len : cap1;
        CU_ASSERT_EQUAL(memcmp(out1, want, n1), 0);
        CU_ASSERT_EQUAL(memcmp(out2, want + n1, want_len - n1), 0);
    }
    if (!cap1)
        CU_ASSERT_EQUAL(out1[0], 0xa5); /* cap1 = 0: out1 untouched */
    free(out1);
    free(out2);
}

static void test_split_output(void)
{
    static uint8_t data[MESH_REC_PLAIN_MAX], rec[MESH_REC_SEAL_MAX];
    for (size_t s = 0; s < sizeof SUITES / sizeof SUITES[0]; s++) {
        mesh_rec *tx, *rx;
        pair(SUITES[s], 9, &tx, &rx);
        const size_t lens[] = {0, 1, 2, 99, 100, 101, 5000, MESH_REC_PLAIN_MAX};
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            size_t len = lens[k];
            const size_t caps[] = {0, 1, 100, len ? len - 1 : 0, len, len + 1, len + 2};
            for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
                fill(data, len, (unsigned)(k + c));
                long n = mesh_rec_seal(tx, MESH_REC_APPDATA, data, len, rec);
                CU_ASSERT_FATAL(n > 0);
                open_split(rx, rec, (size_t)n, caps[c], data, len, MESH_REC_APPDATA);
            }
        }
        /* The whole inner plaintext fits out1: out2 may be NULL (record.h). */
        for (size_t len = 0; len < 40; len += 13) {
            fill(data, len, 1);
            long n = mesh_rec_seal(tx, MESH_REC_APPDATA, data, len, rec);
            uint8_t *out1 = malloc(len + 1);
            int type = -1;
            const char *why = NULL;
            CU_ASSERT_EQUAL(mesh_rec_open(rx, rec, (size_t)n, out1, len + 1, NULL, &type, &why),
                            (long)len);
            CU_ASSERT(type == MESH_REC_APPDATA && memcmp(out1, data, len) == 0);
            free(out1);
        }
        /* A control record whose type byte lands in out2. */
        static const uint8_t ku[5] = {24, 0, 0, 1, 0};
        for (size_t cap1 = 0; cap1 <= 6; cap1++) {
            long n = mesh_rec_seal(tx, MESH_REC_HANDSHAKE, ku, sizeof ku, rec);
            open_split(rx, rec, (size_t)n, cap1, ku, sizeof ku, MESH_REC_HANDSHAKE);
        }
        mesh_rec_free(tx);
        mesh_rec_free(rx);
    }
}

/* Padding (RFC 8446 §5.4): zeros after the type are stripped; the type is the last non-zero
 * byte. Sealing with type 0 makes the last content byte the real type and pads by the zeros
 * before it. */
static void test_padding(void)
{
    for (size_t s = 0; s < sizeof SUITES / sizeof SUITES[0]; s++) {
        mesh_rec *tx, *rx;
        pair(SUITES[s], 11, &tx, &rx);
        static const uint8_t padded[] = {'a', 'b', 'c', 0x17, 0, 0}; /* + type 0 */
        uint8_t rec[64];
        for (size_t cap1 = 0; cap1 <= sizeof padded + 1; cap1++) {
            long n = mesh_rec_seal(tx, 0, padded, sizeof padded, rec);
            CU_ASSERT_EQUAL_FATAL(n, MESH_REC_HDR + 7 + MESH_REC_TAG);
            open_split(rx, rec, (size_t)n, cap1, (const uint8_t *)"abc", 3, MESH_REC_APPDATA);
        }
        /* A padded alert; an empty padded record of data. */
        static const uint8_t alert[] = {1, 0, 21, 0, 0, 0, 0};
        long n = mesh_rec_seal(tx, 0, alert, sizeof alert, rec);
        open_split(rx, rec, (size_t)n, 64, alert, 2, MESH_REC_ALERT);
        static const uint8_t empty[] = {23, 0, 0};
        n = mesh_rec_seal(tx, 0, empty, sizeof empty, rec);
        open_split(rx, rec, (size_t)n, 0, empty, 0, MESH_REC_APPDATA);
        mesh_rec_free(tx);
        mesh_rec_free(rx);
        /* No non-zero byte at all: no content type, whatever the length (a fresh pair each
         * time: whether a refused record consumes its sequence number is not specified). */
        static const uint8_t zeros[40];
        const size_t zlens[] = {0, 1, sizeof zeros};
        for (size_t z = 0; z < 3; z++) {
            pair(SUITES[s], 12, &tx, &rx);
            n = mesh_rec_seal(tx, 0, zeros, zlens[z], rec);
            CU_ASSERT_FATAL(n > 0);
            int type;
            const char *why = NULL;
            uint8_t o1[8], o2[MESH_REC_INNER_MAX];
            CU_ASSERT_EQUAL(mesh_rec_open(rx, rec, (size_t)n, o1, z, o2, &type, &why),
                            MESH_ERR_MALFORMED);
            CU_ASSERT(why && why[0]);
            mesh_rec_free(tx);
            mesh_rec_free(rx);
        }
    }
}

/* KeyUpdate: both ends move to the next secret in step, the sequence restarts; an end that
 * did not update cannot open the other's records, and two updates are not one. */
static void test_update(void)
{
    for (size_t s = 0; s < sizeof SUITES / sizeof SUITES[0]; s++) {
        mesh_rec *tx, *rx, *tx0, *rx0;
        pair(SUITES[s], 13, &tx, &rx);
        pair(SUITES[s], 13, &tx0, &rx0); /* stays on the first secret */
        uint8_t rec[64], rec0[64], got[MESH_REC_INNER_MAX];
        int type;
        for (int i = 0; i < 3; i++) {
            CU_ASSERT_EQUAL(mesh_rec_seal(tx, MESH_REC_APPDATA, (const uint8_t *)"x", 1, rec), 23);
            CU_ASSERT_EQUAL(open_all(rx, rec, 23, got, &type), 1);
        }
        for (int round = 1; round <= 3; round++) {
            CU_ASSERT_EQUAL(mesh_rec_update(tx), MESH_OK);
            CU_ASSERT_EQUAL(mesh_rec_seq(tx), 0);
            CU_ASSERT_EQUAL(mesh_rec_seal(tx, MESH_REC_APPDATA, (const uint8_t *)"after", 5, rec),
                            27);
            /* Not updated yet: same sequence number, other key. */
            CU_ASSERT_EQUAL(open_all(rx, rec, 27, got, &type), MESH_ERR_CRYPTO);
            CU_ASSERT_EQUAL(mesh_rec_update(rx), MESH_OK);
            CU_ASSERT_EQUAL(mesh_rec_seq(rx), 0);
            CU_ASSERT_EQUAL(open_all(rx, rec, 27, got, &type), 5);
            CU_ASSERT_EQUAL(memcmp(got, "after", 5), 0);
            CU_ASSERT_EQUAL(mesh_rec_seq(rx), 1);
        }
        /* The updated key is not the first one at sequence 0 either. */
        CU_ASSERT_EQUAL(mesh_rec_seal(tx0, MESH_REC_APPDATA, (const uint8_t *)"after", 5, rec0),
                        27);
        CU_ASSERT_EQUAL(open_all(rx0, rec0, 27, got, &type), 5);
        mesh_rec *rx1 = NULL, *tx1 = NULL;
        pair(SUITES[s], 13, &tx1, &rx1);
        CU_ASSERT_EQUAL(mesh_rec_update(rx1), MESH_OK);
        CU_ASSERT_EQUAL(mesh_rec_update(rx1), MESH_OK);
        CU_ASSERT_EQUAL(mesh_rec_update(tx1), MESH_OK);
        CU_ASSERT_EQUAL(mesh_rec_seal(tx1, MESH_REC_APPDATA, (const uint8_t *)"y", 1, rec), 23);
        CU_ASSERT_EQUAL(open_all(rx1, rec, 23, got, &type), MESH_ERR_CRYPTO);
        mesh_rec_free(tx);
        mesh_rec_free(rx);
        mesh_rec_free(tx0);
        mesh_rec_free(rx0);
        mesh_rec_free(tx1);
        mesh_rec_free(rx1);
    }
}

static void test_new_refuses(void)
{
    uint8_t secret[64];
    fill(secret, sizeof secret, 5);
    mesh_rec_suite *su = NULL;
    const int bad_suites[] = {0, 0x1300, 0x1304, 0x1305, 0xc02f, -1};
    for (size_t i = 0; i < sizeof bad_suites / sizeof bad_suites[0]; i++)
        CU_ASSERT_EQUAL(mesh_rec_suite_new(&su, NULL, bad_suites[i]), MESH_ERR_INVAL);
    CU_ASSERT_PTR_NULL(su);
    CU_ASSERT_EQUAL(mesh_rec_suite_new(NULL, NULL, 0x1301), MESH_ERR_INVAL);
    mesh_rec *r = NULL;
    CU_ASSERT_EQUAL(rec_new(&r, 0x1301, secret, 48, 1), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(rec_new(&r, 0x1301, secret, 31, 0), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(rec_new(&r, 0x1302, secret, 32, 1), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(rec_new(&r, 0x1302, secret, 64, 1), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(rec_new(&r, 0x1303, secret, 48, 1), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(rec_new(&r, 0x1303, secret, 0, 1), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(rec_new(&r, 0x1301, NULL, 32, 1), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(rec_new(NULL, 0x1301, secret, 32, 1), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_rec_new(&r, NULL, secret, 32, 1), MESH_ERR_INVAL); /* no suite */
    CU_ASSERT_PTR_NULL(r);
    mesh_rec_free(NULL);
    mesh_rec_suite_free(NULL);
}

/* ---- RFC 8448 §3 (Simple 1-RTT Handshake) ----------------------------------------------- */

/* client_application_traffic_secret_0 and server_application_traffic_secret_0. */
#define RFC8448_C_AP_SECRET "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5"
#define RFC8448_S_AP_SECRET "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643"
/* The client's application write key and IV ("key expanded", "iv expanded"). */
#define RFC8448_C_AP_KEY "17422dda596ed5d9acd890e3c63f5051"
#define RFC8448_C_AP_IV "5b78923dee08579033e523d9"
/* {client} send application_data record (sequence 0), payload 00 01 .. 31. */
#define RFC8448_C_APP_REC                                                                          \
    "1703030043a23f7054b62c94d0affafe8228ba55cbefacea42f914aa66bcab3f2b9819a8a5b46b395bd54a9a"     \
    "20441e2b62974e1f5a6292a2977014bd1e3deae63aeebb21694915e4"
/* {server} send application_data record (sequence 1: a NewSessionTicket went first). */
#define RFC8448_S_APP_REC                                                                          \
    "17030300432e937e11ef4ac740e538ad36005fc4a46932fc3225d05f82aa1b36e30efaf97d90e6dffc602dcb"     \
    "501a59a8fcc49c4bf2e5f0a21c0047c2abf332540dd032e167c2955d"
/* {client} send alert record (sequence 1) and {server} send alert record (sequence 2):
 * close_notify, payload 01 00. */
#define RFC8448_C_ALERT_REC "1703030013c9872760655666b74d7ff1153efd6db6d0b0e3"
#define RFC8448_S_ALERT_REC "1703030013b58fd67166ebf599d24720cfbe7efa7a8864a9"

enum { RFC_APP_LEN = 72, RFC_ALERT_LEN = 24, RFC_PAYLOAD = 50 };

static void rfc_payload(uint8_t p[RFC_PAYLOAD])
{
    for (int i = 0; i < RFC_PAYLOAD; i++)
        p[i] = (uint8_t)i;
}

/* One side of the RFC 8448 trace: our sealer reproduces its application_data and
 * close_notify records byte for byte, and our opener reads them back. The server's trace
 * sealed a NewSessionTicket first (sequence 0): server = 1 puts a stand-in of ours there. */
static void rfc8448_side(const char *secret_hex, const char *app_hex, const char *alert_hex,
                         int server)
{
    uint8_t secret[32], app[RFC_APP_LEN], alert[RFC_ALERT_LEN], payload[RFC_PAYLOAD];
    uint8_t out[128], got[MESH_REC_INNER_MAX];
    hex(secret_hex, secret, 32);
    hex(app_hex, app, sizeof app);
    hex(alert_hex, alert, sizeof alert);
    rfc_payload(payload);
    mesh_rec *tx = NULL, *rx = NULL;
    CU_ASSERT_EQUAL_FATAL(rec_new(&tx, 0x1301, secret, 32, 1), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(rec_new(&rx, 0x1301, secret, 32, 0), MESH_OK);
    int type = -1;
    if (server) {
        long n = mesh_rec_seal(tx, MESH_REC_HANDSHAKE, (const uint8_t *)"\x04\0\0\0", 4, out);
        CU_ASSERT_EQUAL(open_all(rx, out, (size_t)n, got, &type), 4);
    }
    CU_ASSERT_EQUAL(mesh_rec_seal(tx, MESH_REC_APPDATA, payload, RFC_PAYLOAD, out), RFC_APP_LEN);
    CU_ASSERT_EQUAL(memcmp(out, app, RFC_APP_LEN), 0);
    static const uint8_t close_notify[2] = {1, 0};
    CU_ASSERT_EQUAL(mesh_rec_seal(tx, MESH_REC_ALERT, close_notify, 2, out), RFC_ALERT_LEN);
    CU_ASSERT_EQUAL(memcmp(out, alert, RFC_ALERT_LEN), 0);
    CU_ASSERT_EQUAL(open_all(rx, app, RFC_APP_LEN, got, &type), RFC_PAYLOAD);
    CU_ASSERT_EQUAL(type, MESH_REC_APPDATA);
    CU_ASSERT_EQUAL(memcmp(got, payload, RFC_PAYLOAD), 0);
    CU_ASSERT_EQUAL(open_all(rx, alert, RFC_ALERT_LEN, got, &type), 2);
    CU_ASSERT_EQUAL(type, MESH_REC_ALERT);
    CU_ASSERT_EQUAL(memcmp(got, close_notify, 2), 0);
    mesh_rec_free(tx);
    mesh_rec_free(rx);
}

static void test_rfc8448_client(void)
{
    rfc8448_side(RFC8448_C_AP_SECRET, RFC8448_C_APP_REC, RFC8448_C_ALERT_REC, 0);
}

static void test_rfc8448_server(void)
{
    rfc8448_side(RFC8448_S_AP_SECRET, RFC8448_S_APP_REC, RFC8448_S_ALERT_REC, 1);
}

/* An independent sealer: AES-128-GCM with the RFC's client key and IV, any inner plaintext
 * (so padding and sizes the record layer itself never produces), any header length field.
 * Returns the record length. */
static size_t raw_seal(uint64_t seq, const uint8_t *inner, size_t n, size_t hdr_body, uint8_t *out)
{
    uint8_t key[16], nonce[IV_LEN];
    hex(RFC8448_C_AP_KEY, key, sizeof key);
    hex(RFC8448_C_AP_IV, nonce, sizeof nonce);
    for (int i = 0; i < 8; i++)
        nonce[IV_LEN - 1 - i] ^= (uint8_t)(seq >> (8 * i));
    out[0] = 23, out[1] = 3, out[2] = 3;
    out[3] = (uint8_t)(hdr_body >> 8);
    out[4] = (uint8_t)hdr_body;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l = 0, ok = c && EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), NULL, key, nonce) == 1 &&
                    EVP_EncryptUpdate(c, NULL, &l, out, MESH_REC_HDR) == 1 &&
                    EVP_EncryptUpdate(c, out + MESH_REC_HDR, &l, inner, (int)n) == 1 &&
                    EVP_EncryptFinal_ex(c, out + MESH_REC_HDR + n, &l) == 1 &&
                    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, MESH_REC_TAG,
                                        out + MESH_REC_HDR + n) == 1;
    EVP_CIPHER_CTX_free(c);
    CU_ASSERT_FATAL(ok);
    return MESH_REC_HDR + n + MESH_REC_TAG;
}

/* The size rules on records another implementation may send: the largest legal record
 * (2^14 content, type, 239 bytes of padding: body 2^14 + 256) opens; content beyond 2^14 is
 * record_overflow even when the record's size is legal; a body beyond 2^14 + 256 is refused
 * before decryption. */
static void test_sizes_from_another_sealer(void)
{
    static uint8_t inner[MESH_REC_BODY_MAX + 1], rec[MESH_REC_HDR + MESH_REC_BODY_MAX + 1];
    static uint8_t out1[MESH_REC_INNER_MAX], out2[MESH_REC_INNER_MAX];
    uint8_t secret[32];
    hex(RFC8448_C_AP_SECRET, secret, 32);
    mesh_rec *rx = NULL;
    CU_ASSERT_EQUAL_FATAL(rec_new(&rx, 0x1301, secret, 32, 0), MESH_OK);
    uint64_t seq = 0;
    int type;
    const char *why;

    /* Largest legal record, split anywhere. */
    const size_t caps[] = {0, 1, 16384, 16385, MESH_REC_INNER_MAX};
    for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
        memset(inner, 0, sizeof inner);
        fill(inner, MESH_REC_PLAIN_MAX, 17);
        inner[MESH_REC_PLAIN_MAX] = MESH_REC_APPDATA;
        size_t len = raw_seal(seq, inner, MESH_REC_INNER_MAX, MESH_REC_BODY_MAX, rec);
        CU_ASSERT_EQUAL(len, MESH_REC_HDR + MESH_REC_BODY_MAX);
        CU_ASSERT_EQUAL(mesh_rec_length(rec, &why), (long)len);
        open_split(rx, rec, len, caps[c], inner, MESH_REC_PLAIN_MAX, MESH_REC_APPDATA);
        seq++;
    }
    /* The independent sealer agrees with ours on an ordinary record. */
    size_t len = raw_seal(seq++, (const uint8_t *)"hi\x17", 3, 3 + MESH_REC_TAG, rec);
    CU_ASSERT_EQUAL(open_all(rx, rec, len, out1, &type), 2);
    CU_ASSERT_EQUAL(memcmp(out1, "hi", 2), 0);

    /* 2^14 + 1 bytes of content, padded: authentic, still record_overflow. */
    memset(inner, 0, sizeof inner);
    fill(inner, MESH_REC_PLAIN_MAX + 1, 1);
    inner[MESH_REC_PLAIN_MAX + 1] = MESH_REC_APPDATA;
    len = raw_seal(seq++, inner, MESH_REC_PLAIN_MAX + 2 + 10, MESH_REC_PLAIN_MAX + 28, rec);
    why = NULL;
    CU_ASSERT_EQUAL(mesh_rec_open(rx, rec, len, out1, 100, out2, &type, &why), MESH_ERR_MALFORMED);
    CU_ASSERT(why && why[0]);
    mesh_rec_free(rx);

    /* One byte too many: refused by the header check and by open itself. */
    CU_ASSERT_EQUAL_FATAL(rec_new(&rx, 0x1301, secret, 32, 0), MESH_OK);
    len = raw_seal(0, inner, MESH_REC_INNER_MAX + 1, MESH_REC_BODY_MAX + 1, rec);
    CU_ASSERT_EQUAL(mesh_rec_length(rec, &why), MESH_ERR_MALFORMED);
    CU_ASSERT(mesh_rec_open(rx, rec, len, out1, sizeof out1, out2, &type, &why) < 0);
    /* Too short to hold a type: refused, nothing consumed. */
    CU_ASSERT(mesh_rec_open(rx, rec, MESH_REC_HDR + MESH_REC_TAG, out1, sizeof out1, out2, &type,
                            &why) < 0);
    CU_ASSERT_EQUAL(mesh_rec_seq(rx), 0);
    mesh_rec_free(rx);
}

static CU_TestInfo tests[] = {
    {"seal/open round trip, 3 suites, lengths 0..2^14, exact bytes", test_round_trip},
    {"any flipped bit is a forgery; a refused record consumes nothing", test_tamper},
    {"wrong secret, skipped, replayed records refused", test_wrong_key_and_order},
    {"header check: type, overflow, too short", test_length},
    {"opened into a small buffer plus the rest: same content", test_split_output},
    {"padding stripped; no content type refused", test_padding},
    {"key update in step; out of step refused", test_update},
    {"unknown suite, wrong secret length refused", test_new_refuses},
    {"RFC 8448 client records (known answer)", test_rfc8448_client},
    {"RFC 8448 server records (known answer)", test_rfc8448_server},
    {"size limits on records another sealer made", test_sizes_from_another_sealer},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"record", suites_init, suites_free, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
