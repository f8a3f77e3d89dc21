/* test_stun.c — the STUN codec (node/core/stun.h) against RFC 5769's four test vectors, byte
 * for byte both ways (decode every field; re-encode from those fields and compare), plus
 * RFC 8489 B.1 (MESSAGE-INTEGRITY-SHA256), and the decoder's and encoder's refusals: every
 * length checked, integrity attributes out of order, the attribute bound, bad values,
 * altered bytes caught by FINGERPRINT and MESSAGE-INTEGRITY. */
#include "mesh_test.h"

#include <stdlib.h>
#include <string.h>

#include "core/stun.h"

/* Hex with spaces and newlines ignored, into out (the test's own bound). */
static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (; *s; s++) {
        int v = *s >= '0' && *s <= '9'   ? *s - '0'
                : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10
                : *s >= 'A' && *s <= 'F' ? *s - 'A' + 10
                                         : -1;
        if (v < 0)
            continue;
        if (hi < 0) {
            hi = v;
            continue;
        }
        CU_ASSERT_FATAL(n < cap);
        out[n++] = (uint8_t)(hi << 4 | v);
        hi = -1;
    }
    CU_ASSERT_FATAL(hi < 0);
    return n;
}

/* RFC 5769 §2.1: a Binding request, short-term credentials, with ICE attributes. */
static const char V21[] = "00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"
                          "80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74"
                          "00 24 00 04 6e 00 01 ff"
                          "80 29 00 08 93 2f f9 b1 51 26 3b 36"
                          "00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20"
                          "00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2"
                          "80 28 00 04 e5 7a 3b cf";
/* §2.2: a Binding success response, IPv4 XOR-MAPPED-ADDRESS 192.0.2.1:32853. */
static const char V22[] = "01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"
                          "80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20"
                          "00 20 00 08 00 01 a1 47 e1 12 a6 43"
                          "00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7"
                          "80 28 00 04 c0 7d 4c 96";
/* §2.3: the same with IPv6 2001:db8:1234:5678:11:2233:4455:6677 port 32853. */
static const char V23[] = "01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"
                          "80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20"
                          "00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9"
                          "00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41"
                          "80 28 00 04 c8 fb 0b 4c";
/* §2.4: a Binding request with long-term credentials. */
static const char V24[] = "00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e"
                          "00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00"
                          "00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46"
                          "53 54 76 79 36 34 73 41"
                          "00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00"
                          "00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66";
/* RFC 8489 Appendix B.1: long-term credentials with USERHASH and MESSAGE-INTEGRITY-SHA256. */
static const char VB1[] = "00 01 00 88 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e"
                          "00 1e 00 20 4a 3c f3 8f ef 69 92 bd a9 52 c6 78 04 17 da 0f 24 81 94 15"
                          "56 9e 60 b2 05 c4 6e 41 40 7f 17 04"
                          "00 15 00 29 6f 62 4d 61 74 4a 6f 73 32 41 41 41 43 66 2f 2f 34 39 39 6b"
                          "39 35 34 64 36 4f 4c 33 34 6f 4c 39 46 53 54 76 79 36 34 73 41 00 00 00"
                          "00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00"
                          "00 1c 00 20 fd 8c 27 38 60 d2 e1 8e bc a4 c8 9b 69 73 be fa 7e e8 ec c6"
                          "9e 96 42 db 32 6f ab 65 a0 b9 55 ba";

static const char PASS[] = "VOkJxbRl1RmTxUk/WvJxBt";
static const char USER_LT[] = "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3"
                              "\x82\xb9"; /* マトリックス */
static const char NONCE_LT[] = "f//499k954d6OL34oL9FSTvy64sA";
static const char REALM_LT[] = "example.org";
static const char PASS_LT[] = "TheMatrIX"; /* "The\u00adM\u00aatr\u2168" after SASLprep */

enum { BUF = 2048 };

static void expect_text(const mesh_stun_msg *m, uint16_t type, const char *want)
{
    const mesh_stun_attr *a = mesh_stun_find(m, type);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    const char *t = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL(mesh_stun_get_text(m, a, &t, &n), MESH_OK);
    CU_ASSERT_EQUAL(n, strlen(want));
    CU_ASSERT(n == strlen(want) && memcmp(t, want, n) == 0);
}

static void test_rfc5769_request(void)
{
    uint8_t v[BUF], out[BUF];
    size_t n = unhex(V21, v, sizeof v);
    CU_ASSERT_EQUAL_FATAL(n, 108);
    mesh_stun_msg m;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_decode(&m, v, n), MESH_OK);
    CU_ASSERT_EQUAL(m.method, MESH_STUN_BINDING);
    CU_ASSERT_EQUAL(m.cls, MESH_STUN_REQUEST);
    CU_ASSERT_EQUAL(m.nattrs, 6);
    CU_ASSERT_EQUAL(m.nvisible, 4);
    CU_ASSERT(memcmp(m.tid, v + 8, 12) == 0);
    expect_text(&m, MESH_STUN_A_SOFTWARE, "STUN test client");
    expect_text(&m, MESH_STUN_A_USERNAME, "evtj:h6vY");
    uint32_t prio = 0;
    CU_ASSERT_EQUAL(mesh_stun_get_u32(&m, mesh_stun_find(&m, 0x0024), &prio), MESH_OK);
    CU_ASSERT_EQUAL(prio, 0x6e0001ff);
    const mesh_stun_attr *ctl = mesh_stun_find(&m, 0x8029);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctl);
    CU_ASSERT_EQUAL(ctl->len, 8);
    CU_ASSERT_EQUAL(mesh_stun_check_fingerprint(&m), MESH_OK);
    CU_ASSERT_EQUAL(
        mesh_stun_check_integrity(&m, (const uint8_t *)PASS, strlen(PASS), MESH_STUN_MI_SHA1),
        MESH_OK);
    CU_ASSERT_EQUAL(mesh_stun_check_integrity(&m, (const uint8_t *)"VOkJxbRl1RmTxUk/WvJxBT", 22,
                                              MESH_STUN_MI_ANY),
                    MESH_ERR_BAD_SIGNATURE);
    CU_ASSERT_EQUAL(
        mesh_stun_check_integrity(&m, (const uint8_t *)PASS, strlen(PASS), MESH_STUN_MI_SHA256),
        MESH_ERR_NOT_FOUND);
    /* PRIORITY and ICE-CONTROLLED are ICE's: 0x0024 is comprehension-required and unknown. */
    uint16_t unk[4];
    CU_ASSERT_EQUAL(mesh_stun_unknown_required(&m, unk, 4), 1);
    CU_ASSERT_EQUAL(unk[0], 0x0024);

    /* Re-encode from the decoded values (this vector pads with spaces). */
    mesh_stun_enc e;
    mesh_stun_enc_init(&e, out, sizeof out, mesh_stun_type(MESH_STUN_BINDING, MESH_STUN_REQUEST),
                       m.tid);
    e.pad = 0x20;
    mesh_stun_enc_text(&e, MESH_STUN_A_SOFTWARE, "STUN test client", 16);
    mesh_stun_enc_u32(&e, 0x0024, prio);
    mesh_stun_enc_attr(&e, 0x8029, mesh_stun_value(&m, ctl), ctl->len);
    mesh_stun_enc_text(&e, MESH_STUN_A_USERNAME, "evtj:h6vY", 9);
    mesh_stun_enc_integrity(&e, (const uint8_t *)PASS, strlen(PASS));
    mesh_stun_enc_fingerprint(&e);
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_enc_finish(&e, &len), MESH_OK);
    CU_ASSERT_EQUAL(len, n);
    CU_ASSERT(memcmp(out, v, n) == 0);
}

/* §2.2 and §2.3: decode the address, re-encode the whole response. */
static void check_response(const char *hex, size_t want_len, const mesh_addr *want)
{
    uint8_t v[BUF], out[BUF];
    size_t n = unhex(hex, v, sizeof v);
    CU_ASSERT_EQUAL_FATAL(n, want_len);
    mesh_stun_msg m;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_decode(&m, v, n), MESH_OK);
    CU_ASSERT_EQUAL(m.method, MESH_STUN_BINDING);
    CU_ASSERT_EQUAL(m.cls, MESH_STUN_SUCCESS);
    expect_text(&m, MESH_STUN_A_SOFTWARE, "test vector");
    mesh_addr a;
    CU_ASSERT_EQUAL(mesh_stun_get_addr(&m, mesh_stun_find(&m, MESH_STUN_A_XOR_MAPPED_ADDRESS), &a),
                    MESH_OK);
    CU_ASSERT(mesh_addr_equal(&a, want));
    CU_ASSERT_EQUAL(mesh_stun_check_fingerprint(&m), MESH_OK);
    CU_ASSERT_EQUAL(
        mesh_stun_check_integrity(&m, (const uint8_t *)PASS, strlen(PASS), MESH_STUN_MI_ANY),
        MESH_OK);
    mesh_stun_enc e;
    mesh_stun_enc_init(&e, out, sizeof out, m.type, m.tid);
    e.pad = 0x20;
    mesh_stun_enc_text(&e, MESH_STUN_A_SOFTWARE, "test vector", 11);
    mesh_stun_enc_addr(&e, MESH_STUN_A_XOR_MAPPED_ADDRESS, &a);
    mesh_stun_enc_integrity(&e, (const uint8_t *)PASS, strlen(PASS));
    mesh_stun_enc_fingerprint(&e);
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_enc_finish(&e, &len), MESH_OK);
    CU_ASSERT_EQUAL(len, n);
    CU_ASSERT(memcmp(out, v, n) == 0);
}

static void test_rfc5769_ipv4_response(void)
{
    mesh_addr want = mesh_addr_v4(0xc0000201, 32853);
    check_response(V22, 80, &want);
}

static void test_rfc5769_ipv6_response(void)
{
    mesh_addr want;
    CU_ASSERT_EQUAL_FATAL(mesh_addr_parse(&want, "[2001:db8:1234:5678:11:2233:4455:6677]:32853"),
                          MESH_OK);
    check_response(V23, 92, &want);
}

static void test_rfc5769_long_term(void)
{
    uint8_t v[BUF], out[BUF], key[MESH_STUN_LONG_TERM_KEY_LEN];
    size_t n = unhex(V24, v, sizeof v);
    CU_ASSERT_EQUAL_FATAL(n, 116);
    mesh_stun_msg m;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_decode(&m, v, n), MESH_OK);
    expect_text(&m, MESH_STUN_A_USERNAME, USER_LT);
    expect_text(&m, MESH_STUN_A_NONCE, NONCE_LT);
    expect_text(&m, MESH_STUN_A_REALM, REALM_LT);
    CU_ASSERT_EQUAL(mesh_stun_check_fingerprint(&m), MESH_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL_FATAL(mesh_stun_long_term_key(key, USER_LT, strlen(USER_LT), REALM_LT,
                                                  strlen(REALM_LT), PASS_LT, strlen(PASS_LT)),
                          MESH_OK);
    CU_ASSERT_EQUAL(mesh_stun_check_integrity(&m, key, sizeof key, MESH_STUN_MI_SHA1), MESH_OK);
    /* the password before SASLprep is a different key */
    const char raw[] = "The\xc2\xadM\xc2\xaatr\xe2\x85\xa8";
    CU_ASSERT_EQUAL(mesh_stun_long_term_key(key, USER_LT, strlen(USER_LT), REALM_LT,
                                            strlen(REALM_LT), raw, strlen(raw)),
                    MESH_OK);
    CU_ASSERT_EQUAL(mesh_stun_check_integrity(&m, key, sizeof key, MESH_STUN_MI_SHA1),
                    MESH_ERR_BAD_SIGNATURE);
    CU_ASSERT_EQUAL(mesh_stun_long_term_key(key, USER_LT, strlen(USER_LT), REALM_LT,
                                            strlen(REALM_LT), PASS_LT, strlen(PASS_LT)),
                    MESH_OK);
    mesh_stun_enc e;
    mesh_stun_enc_init(&e, out, sizeof out, m.type, m.tid);
    mesh_stun_enc_text(&e, MESH_STUN_A_USERNAME, USER_LT, strlen(USER_LT));
    mesh_stun_enc_text(&e, MESH_STUN_A_NONCE, NONCE_LT, strlen(NONCE_LT));
    mesh_stun_enc_text(&e, MESH_STUN_A_REALM, REALM_LT, strlen(REALM_LT));
    mesh_stun_enc_integrity(&e, key, sizeof key);
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_enc_finish(&e, &len), MESH_OK);
    CU_ASSERT_EQUAL(len, n);
    CU_ASSERT(memcmp(out, v, n) == 0);
}

static void test_rfc8489_sha256(void)
{
    uint8_t v[BUF], key[MESH_STUN_LONG_TERM_KEY_LEN];
    size_t n = unhex(VB1, v, sizeof v);
    CU_ASSERT_EQUAL_FATAL(n, 156);
    mesh_stun_msg m;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_decode(&m, v, n), MESH_OK);
    CU_ASSERT_EQUAL(m.mi, -1);
    CU_ASSERT_EQUAL(m.mi256, 3);
    CU_ASSERT_EQUAL_FATAL(mesh_stun_long_term_key(key, USER_LT, strlen(USER_LT), REALM_LT,
                                                  strlen(REALM_LT), PASS_LT, strlen(PASS_LT)),
                          MESH_OK);
    CU_ASSERT_EQUAL(mesh_stun_check_integrity(&m, key, sizeof key, MESH_STUN_MI_ANY), MESH_OK);
    CU_ASSERT_EQUAL(mesh_stun_check_integrity(&m, key, sizeof key, MESH_STUN_MI_SHA1),
                    MESH_ERR_NOT_FOUND);
    v[30] ^= 1; /* a byte of USERHASH */
    CU_ASSERT_EQUAL(mesh_stun_check_integrity(&m, key, sizeof key, MESH_STUN_MI_SHA256),
                    MESH_ERR_BAD_SIGNATURE);
}

/* Every single-bit flip anywhere in §2.1 is caught by FINGERPRINT or by the decoder. */
static void test_every_bit_flip_caught(void)
{
    uint8_t v[BUF];
    size_t n = unhex(V21, v, sizeof v);
    for (size_t bit = 0; bit < n * 8; bit++) {
        v[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        mesh_stun_msg m;
        int rc = mesh_stun_decode(&m, v, n);
        if (rc == MESH_OK)
            rc = mesh_stun_check_fingerprint(&m);
        CU_ASSERT_NOT_EQUAL(rc, MESH_OK);
        v[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
}

static void test_decode_refusals(void)
{
    uint8_t v[BUF], w[BUF];
    size_t n = unhex(V22, v, sizeof v);
    mesh_stun_msg m;
    /* every truncation of the datagram */
    for (size_t k = 0; k < n; k++)
        CU_ASSERT_EQUAL(mesh_stun_decode(&m, v, k), MESH_ERR_TRUNCATED);
    memcpy(w, v, n);
    w[n] = 0;
    CU_ASSERT_EQUAL(mesh_stun_decode(&m, w, n + 1), MESH_ERR_MALFORMED); /* trailing byte */
    memcpy(w, v, n);
    w[0] |= 0x40;
    CU_ASSERT_EQUAL(mesh_stun_decode(&m, w, n), MESH_ERR_MALFORMED); /* top bits */
    memcpy(w, v, n);
    w[5] ^= 1;
    CU_ASSERT_EQUAL(mesh_stun_decode(&m, w, n), MESH_ERR_MALFORMED); /* cookie */
    memcpy(w, v, n);
    w[3] -= 2; /* length not a multiple of 4 */
    CU_ASSERT_EQUAL(mesh_stun_decode(&m, w, n - 2), MESH_ERR_MALFORMED);
    memcpy(w, v, n);
    w[20 + 3] = 0x40; /* SOFTWARE claims 64 bytes */
    CU_ASSERT_EQUAL(mesh_stun_decode(&m, w, n), MESH_ERR_TRUNCATED);
    memcpy(w, v, n);
    w[3] -= 4; /* the header drops the FINGERPRINT value: its header dangles */
    CU_ASSERT_EQUAL(mesh_stun_decode(&m, w, n - 4), MESH_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(mesh_stun_decode(NULL, v, n), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_stun_decode(&m, NULL, n), MESH_ERR_INVAL);
    CU_ASSERT(mesh_stun_looks_like(v, n));
    CU_ASSERT(!mesh_stun_looks_like(v, 19));

    /* an attribute after FINGERPRINT; a FINGERPRINT or MI of the wrong length */
    uint8_t tid[12] = {1};
    mesh_stun_enc e;
    size_t len;
    mesh_stun_enc_init(&e, w, sizeof w, 0x0001, tid);
    mesh_stun_enc_attr_raw(&e, MESH_STUN_A_FINGERPRINT, "abcd", 4);
    mesh_stun_enc_attr_raw(&e, MESH_STUN_A_SOFTWARE, "x", 1); /* refused: after FINGERPRINT */
    CU_ASSERT_EQUAL(mesh_stun_enc_finish(&e, &len), MESH_ERR_STATE);
    memcpy(w + 28, "\x80\x22\x00\x00", 4);
    w[3] = 12;
    CU_ASSERT_EQUAL(mesh_stun_decode(&m, w, 32), MESH_ERR_MALFORMED);
    const uint16_t bad_len[][2] = {{MESH_STUN_A_FINGERPRINT, 8},
                                   {MESH_STUN_A_MESSAGE_INTEGRITY, 16},
                                   {MESH_STUN_A_MESSAGE_INTEGRITY_SHA256, 12},
                                   {MESH_STUN_A_MESSAGE_INTEGRITY_SHA256, 36},
                                   {MESH_STUN_A_MESSAGE_INTEGRITY_SHA256, 18}};
    for (size_t i = 0; i < sizeof bad_len / sizeof bad_len[0]; i++) {
        uint8_t zero[40] = {0};
        mesh_stun_enc_init(&e, w, sizeof w, 0x0001, tid);
        mesh_stun_enc_attr_raw(&e, bad_len[i][0], zero, bad_len[i][1]);
        CU_ASSERT_EQUAL_FATAL(mesh_stun_enc_finish(&e, &len), MESH_OK);
        CU_ASSERT_EQUAL(mesh_stun_decode(&m, w, len), MESH_ERR_MALFORMED);
    }
    /* MESH_STUN_MAX_ATTRS attributes decode; one more is the limit */
    mesh_stun_enc_init(&e, w, sizeof w, 0x0001, tid);
    for (int i = 0; i < MESH_STUN_MAX_ATTRS; i++)
        mesh_stun_enc_attr(&e, 0x8050, NULL, 0);
    CU_ASSERT_EQUAL_FATAL(mesh_stun_enc_finish(&e, &len), MESH_OK);
    CU_ASSERT_EQUAL(mesh_stun_decode(&m, w, len), MESH_OK);
    mesh_stun_enc_attr(&e, 0x8050, NULL, 0);
    CU_ASSERT_EQUAL_FATAL(mesh_stun_enc_finish(&e, &len), MESH_OK);
    CU_ASSERT_EQUAL(mesh_stun_decode(&m, w, len), MESH_ERR_LIMIT);
}

/* Attributes after MESSAGE-INTEGRITY other than -SHA256 and FINGERPRINT are kept in the list
 * but ignored (RFC 8489 §14.5): never found, not covered by the MAC. */
static void test_after_integrity_ignored(void)
{
    uint8_t w[BUF], tid[12] = {7, 7};
    mesh_stun_enc e;
    mesh_stun_enc_init(&e, w, sizeof w, 0x0101, tid);
    mesh_stun_enc_u32(&e, MESH_STUN_A_LIFETIME, 600);
    mesh_stun_enc_integrity(&e, (const uint8_t *)"k", 1);
    mesh_stun_enc_u32(&e, MESH_STUN_A_LIFETIME, 1); /* refused by the strict encoder */
    size_t len;
    CU_ASSERT_EQUAL(mesh_stun_enc_finish(&e, &len), MESH_ERR_STATE);
    mesh_stun_enc_init(&e, w, sizeof w, 0x0101, tid);
    mesh_stun_enc_u32(&e, MESH_STUN_A_LIFETIME, 600);
    mesh_stun_enc_integrity(&e, (const uint8_t *)"k", 1);
    mesh_stun_enc_attr_raw(&e, MESH_STUN_A_LIFETIME, "\0\0\0\1", 4);
    mesh_stun_enc_integrity_sha256(&e, (const uint8_t *)"k", 1);
    mesh_stun_enc_fingerprint(&e);
    CU_ASSERT_EQUAL_FATAL(mesh_stun_enc_finish(&e, &len), MESH_OK);
    mesh_stun_msg m;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_decode(&m, w, len), MESH_OK);
    CU_ASSERT_EQUAL(m.nattrs, 5);
    CU_ASSERT_EQUAL(m.nvisible, 1);
    uint32_t life = 0;
    CU_ASSERT_EQUAL(mesh_stun_get_u32(&m, mesh_stun_find(&m, MESH_STUN_A_LIFETIME), &life),
                    MESH_OK);
    CU_ASSERT_EQUAL(life, 600);
    CU_ASSERT_EQUAL(mesh_stun_check_integrity(&m, (const uint8_t *)"k", 1, MESH_STUN_MI_SHA1),
                    MESH_OK);
    CU_ASSERT_EQUAL(mesh_stun_check_integrity(&m, (const uint8_t *)"k", 1, MESH_STUN_MI_SHA256),
                    MESH_OK);
    CU_ASSERT_EQUAL(mesh_stun_check_fingerprint(&m), MESH_OK);
}

static void test_typed_values(void)
{
    uint8_t w[BUF], tid[12] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8};
    mesh_addr v4 = mesh_addr_v4(0x0b00002a, 3478), v6, got;
    CU_ASSERT_EQUAL_FATAL(mesh_addr_parse(&v6, "[2001:db8::1]:49152"), MESH_OK);
    const uint16_t unk_in[3] = {0x0024, 0x7777, 0x0003};
    mesh_stun_enc e;
    mesh_stun_enc_init(&e, w, sizeof w, mesh_stun_type(MESH_STUN_ALLOCATE, MESH_STUN_ERROR), tid);
    mesh_stun_enc_addr(&e, MESH_STUN_A_XOR_RELAYED_ADDRESS, &v6);
    mesh_stun_enc_addr(&e, MESH_STUN_A_XOR_PEER_ADDRESS, &v4);
    mesh_stun_enc_addr(&e, MESH_STUN_A_OTHER_ADDRESS, &v4);
    mesh_stun_enc_addr(&e, MESH_STUN_A_RESPONSE_ORIGIN, &v6);
    mesh_stun_enc_error(&e, 438, "Stale Nonce");
    mesh_stun_enc_unknown(&e, unk_in, 3);
    mesh_stun_enc_transport(&e, MESH_STUN_TRANSPORT_TCP);
    mesh_stun_enc_change(&e, MESH_STUN_CHANGE_IP | MESH_STUN_CHANGE_PORT);
    mesh_stun_enc_u32(&e, MESH_STUN_A_CONNECTION_ID, 0xcafe0001);
    mesh_stun_enc_attr(&e, MESH_STUN_A_DATA, "hello", 5);
    mesh_stun_enc_fingerprint(&e);
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_enc_finish(&e, &len), MESH_OK);
    mesh_stun_msg m;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_decode(&m, w, len), MESH_OK);
    CU_ASSERT_EQUAL(m.method, MESH_STUN_ALLOCATE);
    CU_ASSERT_EQUAL(m.cls, MESH_STUN_ERROR);
    CU_ASSERT_EQUAL(mesh_stun_check_fingerprint(&m), MESH_OK);
    CU_ASSERT_EQUAL(
        mesh_stun_get_addr(&m, mesh_stun_find(&m, MESH_STUN_A_XOR_RELAYED_ADDRESS), &got), MESH_OK);
    CU_ASSERT(mesh_addr_equal(&got, &v6));
    /* the XOR really is applied: the raw bytes differ from the plain encoding */
    CU_ASSERT(memcmp(mesh_stun_value(&m, mesh_stun_find(&m, MESH_STUN_A_XOR_RELAYED_ADDRESS)) + 4,
                     v6.ip, 16) != 0);
    CU_ASSERT_EQUAL(mesh_stun_get_addr(&m, mesh_stun_find(&m, MESH_STUN_A_XOR_PEER_ADDRESS), &got),
                    MESH_OK);
    CU_ASSERT(mesh_addr_equal(&got, &v4));
    CU_ASSERT_EQUAL(mesh_stun_get_addr(&m, mesh_stun_find(&m, MESH_STUN_A_OTHER_ADDRESS), &got),
                    MESH_OK);
    CU_ASSERT(mesh_addr_equal(&got, &v4));
    CU_ASSERT(memcmp(mesh_stun_value(&m, mesh_stun_find(&m, MESH_STUN_A_OTHER_ADDRESS)) + 4, v4.ip,
                     4) == 0);
    int code = 0;
    const char *reason;
    size_t rlen;
    CU_ASSERT_EQUAL(
        mesh_stun_get_error(&m, mesh_stun_find(&m, MESH_STUN_A_ERROR_CODE), &code, &reason, &rlen),
        MESH_OK);
    CU_ASSERT_EQUAL(code, 438);
    CU_ASSERT(rlen == 11 && memcmp(reason, "Stale Nonce", 11) == 0);
    uint16_t unk[8];
    size_t nunk = 0;
    CU_ASSERT_EQUAL(mesh_stun_get_unknown(&m, mesh_stun_find(&m, MESH_STUN_A_UNKNOWN_ATTRIBUTES),
                                          unk, 8, &nunk),
                    MESH_OK);
    CU_ASSERT(nunk == 3 && unk[0] == 0x0024 && unk[1] == 0x7777 && unk[2] == 0x0003);
    uint8_t proto = 0;
    CU_ASSERT_EQUAL(
        mesh_stun_get_transport(&m, mesh_stun_find(&m, MESH_STUN_A_REQUESTED_TRANSPORT), &proto),
        MESH_OK);
    CU_ASSERT_EQUAL(proto, MESH_STUN_TRANSPORT_TCP);
    unsigned flags = 0;
    CU_ASSERT_EQUAL(
        mesh_stun_get_change(&m, mesh_stun_find(&m, MESH_STUN_A_CHANGE_REQUEST), &flags), MESH_OK);
    CU_ASSERT_EQUAL(flags, MESH_STUN_CHANGE_IP | MESH_STUN_CHANGE_PORT);
    uint32_t cid = 0;
    CU_ASSERT_EQUAL(mesh_stun_get_u32(&m, mesh_stun_find(&m, MESH_STUN_A_CONNECTION_ID), &cid),
                    MESH_OK);
    CU_ASSERT_EQUAL(cid, 0xcafe0001);
    const mesh_stun_attr *d = mesh_stun_find(&m, MESH_STUN_A_DATA);
    CU_ASSERT(d && d->len == 5 && memcmp(mesh_stun_value(&m, d), "hello", 5) == 0);
    CU_ASSERT_EQUAL(mesh_stun_unknown_required(&m, unk, 8), 0);
    /* a getter on the wrong kind of value */
    CU_ASSERT_EQUAL(mesh_stun_get_addr(&m, d, &got), MESH_ERR_INVAL); /* not an address type */
    CU_ASSERT_EQUAL(mesh_stun_get_u32(&m, d, &cid), MESH_ERR_MALFORMED);
    CU_ASSERT_EQUAL(mesh_stun_get_text(&m, d, &reason, &rlen), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_stun_get_error(&m, d, &code, &reason, &rlen), MESH_ERR_MALFORMED);
    CU_ASSERT_EQUAL(mesh_stun_get_unknown(&m, d, unk, 8, &nunk), MESH_ERR_MALFORMED);
}

/* Values a decoder must refuse even inside a well-formed message. */
static void test_bad_values(void)
{
    uint8_t w[BUF], tid[12] = {3};
    mesh_stun_enc e;
    mesh_stun_enc_init(&e, w, sizeof w, 0x0101, tid);
    mesh_stun_enc_attr(&e, MESH_STUN_A_XOR_MAPPED_ADDRESS, "\x00\x03\x00\x01\x01\x02\x03\x04", 8);
    mesh_stun_enc_attr(&e, MESH_STUN_A_MAPPED_ADDRESS, "\x00\x01\x00\x01\x01\x02\x03", 7);
    mesh_stun_enc_attr(&e, MESH_STUN_A_OTHER_ADDRESS, "\x00\x02\x00\x01\x01\x02\x03\x04", 8);
    mesh_stun_enc_attr(&e, MESH_STUN_A_ERROR_CODE, "\x00\x00\x07\x00", 4);
    mesh_stun_enc_attr(&e, MESH_STUN_A_CHANGE_REQUEST, "\x00\x00\x00\x01", 4);
    mesh_stun_enc_attr(&e, MESH_STUN_A_UNKNOWN_ATTRIBUTES, "\x00\x01\x00", 3);
    size_t len;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_enc_finish(&e, &len), MESH_OK);
    mesh_stun_msg m;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_decode(&m, w, len), MESH_OK);
    mesh_addr a = {0};
    int code;
    unsigned flags;
    uint16_t t[4];
    size_t n;
    for (size_t i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(mesh_stun_get_addr(&m, &m.attrs[i], &a), MESH_ERR_MALFORMED);
    CU_ASSERT_EQUAL(a.family, MESH_AF_NONE); /* untouched */
    CU_ASSERT_EQUAL(mesh_stun_get_error(&m, &m.attrs[3], &code, NULL, NULL), MESH_ERR_MALFORMED);
    CU_ASSERT_EQUAL(mesh_stun_get_change(&m, &m.attrs[4], &flags), MESH_ERR_MALFORMED);
    CU_ASSERT_EQUAL(mesh_stun_get_unknown(&m, &m.attrs[5], t, 4, &n), MESH_ERR_MALFORMED);
}

static void test_encoder_refusals(void)
{
    uint8_t w[64], tid[12] = {0}, data[64] = {0};
    mesh_stun_enc e;
    size_t len = 99;
    mesh_stun_enc_init(&e, w, 19, 0x0001, tid);
    CU_ASSERT_EQUAL(mesh_stun_enc_finish(&e, &len), MESH_ERR_TOO_BIG);
    mesh_stun_enc_init(&e, w, sizeof w, 0x0001, tid);
    mesh_stun_enc_attr(&e, MESH_STUN_A_DATA, data, 41); /* 20 + 4 + 44 > 64 */
    CU_ASSERT_EQUAL(mesh_stun_enc_finish(&e, &len), MESH_ERR_TOO_BIG);
    mesh_stun_enc_init(&e, w, sizeof w, 0x0001, tid);
    mesh_stun_enc_attr(&e, MESH_STUN_A_DATA, data, 40); /* exactly fits */
    CU_ASSERT_EQUAL(mesh_stun_enc_finish(&e, &len), MESH_OK);
    CU_ASSERT_EQUAL(len, 64);
    mesh_stun_enc_init(&e, w, sizeof w, 0x0001, tid);
    mesh_stun_enc_error(&e, 299, "no");
    CU_ASSERT_EQUAL(mesh_stun_enc_finish(&e, &len), MESH_ERR_INVAL);
    mesh_stun_enc_init(&e, w, sizeof w, 0x0001, tid);
    mesh_stun_enc_addr(&e, MESH_STUN_A_MAPPED_ADDRESS, &(mesh_addr){0});
    CU_ASSERT_EQUAL(mesh_stun_enc_finish(&e, &len), MESH_ERR_INVAL);
    mesh_stun_enc_init(&e, w, sizeof w, 0x0001, tid);
    mesh_stun_enc_attr(&e, MESH_STUN_A_MESSAGE_INTEGRITY, data, 20); /* use enc_integrity */
    CU_ASSERT_EQUAL(mesh_stun_enc_finish(&e, &len), MESH_ERR_STATE);
    mesh_stun_enc_init(&e, w, sizeof w, 0x0001, tid);
    mesh_stun_enc_fingerprint(&e);
    mesh_stun_enc_fingerprint(&e);
    CU_ASSERT_EQUAL(mesh_stun_enc_finish(&e, &len), MESH_ERR_STATE);
    mesh_stun_enc_init(&e, w, sizeof w, 0x0001, tid);
    mesh_stun_enc_integrity_sha256(&e, (const uint8_t *)"k", 1);
    mesh_stun_enc_integrity(&e, (const uint8_t *)"k", 1); /* SHA1 after SHA256: out of order */
    CU_ASSERT_EQUAL(mesh_stun_enc_finish(&e, &len), MESH_ERR_STATE);
    char big[MESH_STUN_MAX_USERNAME + 1];
    memset(big, 'u', sizeof big);
    uint8_t wb[BUF];
    mesh_stun_enc_init(&e, wb, sizeof wb, 0x0001, tid);
    mesh_stun_enc_text(&e, MESH_STUN_A_USERNAME, big, sizeof big);
    CU_ASSERT_EQUAL(mesh_stun_enc_finish(&e, &len), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_stun_long_term_key(wb, big, sizeof big, "r", 1, "p", 1), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(len, 64); /* untouched by the failures */
}

static void test_types_and_framing(void)
{
    CU_ASSERT_EQUAL(mesh_stun_type(MESH_STUN_BINDING, MESH_STUN_REQUEST), 0x0001);
    CU_ASSERT_EQUAL(mesh_stun_type(MESH_STUN_BINDING, MESH_STUN_INDICATION), 0x0011);
    CU_ASSERT_EQUAL(mesh_stun_type(MESH_STUN_BINDING, MESH_STUN_SUCCESS), 0x0101);
    CU_ASSERT_EQUAL(mesh_stun_type(MESH_STUN_BINDING, MESH_STUN_ERROR), 0x0111);
    CU_ASSERT_EQUAL(mesh_stun_type(MESH_STUN_ALLOCATE, MESH_STUN_SUCCESS), 0x0103);
    CU_ASSERT_EQUAL(mesh_stun_type(MESH_STUN_CONNECTION_BIND, MESH_STUN_REQUEST), 0x000b);
    CU_ASSERT_EQUAL(mesh_stun_type(MESH_STUN_DATA, MESH_STUN_INDICATION), 0x0017);
    for (unsigned meth = 0; meth < 0x1000; meth++)
        for (unsigned c = 0; c < 4; c++) {
            uint16_t t = mesh_stun_type(meth, c);
            CU_ASSERT_EQUAL(t & 0xc000, 0);
            if (mesh_stun_type_method(t) != meth || mesh_stun_type_class(t) != c)
                CU_FAIL("type round trip");
        }
    uint8_t v[BUF];
    size_t n = unhex(V21, v, sizeof v), total = 0;
    CU_ASSERT_EQUAL(mesh_stun_frame_len(v, 19, &total), MESH_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(mesh_stun_frame_len(v, 20, &total), MESH_OK);
    CU_ASSERT_EQUAL(total, n);
    for (size_t k = 0; k < 20; k++) /* every prefix of a header may still be one */
        CU_ASSERT_EQUAL(mesh_stun_frame_len(v, k, &total), MESH_ERR_TRUNCATED);
    /* a short line of text is refused from its first byte, a wrong cookie from its byte */
    CU_ASSERT_EQUAL(mesh_stun_frame_len((const uint8_t *)"GET", 3, &total), MESH_ERR_MALFORMED);
    v[5] = 0;
    CU_ASSERT_EQUAL(mesh_stun_frame_len(v, 5, &total), MESH_ERR_TRUNCATED);
    CU_ASSERT_EQUAL(mesh_stun_frame_len(v, 6, &total), MESH_ERR_MALFORMED);
    CU_ASSERT_EQUAL(mesh_stun_frame_len(v, 20, &total), MESH_ERR_MALFORMED);
    /* CRC-32 check value of "123456789" */
    CU_ASSERT_EQUAL(mesh_stun_crc32((const uint8_t *)"123456789", 9), 0xcbf43926);
}

static CU_TestInfo stun_tests[] = {
    {"RFC 5769 2.1 request, short-term", test_rfc5769_request},
    {"RFC 5769 2.2 IPv4 response", test_rfc5769_ipv4_response},
    {"RFC 5769 2.3 IPv6 response", test_rfc5769_ipv6_response},
    {"RFC 5769 2.4 request, long-term", test_rfc5769_long_term},
    {"RFC 8489 B.1 MESSAGE-INTEGRITY-SHA256", test_rfc8489_sha256},
    {"every bit flip caught", test_every_bit_flip_caught},
    {"decoder refusals", test_decode_refusals},
    {"attributes after integrity ignored", test_after_integrity_ignored},
    {"typed values round trip", test_typed_values},
    {"bad values refused", test_bad_values},
    {"encoder refusals", test_encoder_refusals},
    {"types, framing, CRC", test_types_and_framing},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"stun", NULL, NULL, NULL, NULL, stun_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
