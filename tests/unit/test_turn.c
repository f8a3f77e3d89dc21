/* test_turn.c — the STUN codec on TURN messages (core/stun.h) against bytes made by another
 * implementation, and the TURN client's error mapping (core/turn.h).
 *
 * The vectors below were built with Python's hashlib/hmac/zlib/struct (not with our codec):
 * an Allocate request with long-term credentials (user "alice", realm "meshara.test",
 * password "s3cret", so key = MD5("alice:meshara.test:s3cret")), an Allocate success with
 * XOR-RELAYED-ADDRESS 11.250.42.50:49175, XOR-MAPPED-ADDRESS 11.250.42.1:38821 and LIFETIME
 * 600, and a Connect success with CONNECTION-ID 0xdeadbeef; each with MESSAGE-INTEGRITY
 * (HMAC-SHA1) and FINGERPRINT, transaction id 01..0c. The client's behaviour against a
 * server is tested in tests/sim/test_turn.c and against coturn in tests/netns. */
#include <stdio.h>
#include <string.h>

#include "core/stun.h"
#include "core/turn.h"
#include "mesh_test.h"

static const char KEY_HEX[] = "12fc91ea38d0fd36bbb58269a69d8d6c";
static const char REQ[] =
    "000300602112a4420102030405060708090a0b0c0019000406000000000d00040000025800060005616c69"
    "63650000000014000c6d6573686172612e74657374001500106e6f6e63652d303132333435363738390008"
    "0014463e6ee767f6f0e7a044b7d67dc1ee056f26ffe080280004ff3a915c";
static const char RESP[] =
    "010300402112a4420102030405060708090a0b0c001600080001e1052ae88e70002000080001b6b72ae88e"
    "43000d00040000025800080014de2b7982ec6881035752eab892ccbe738099a3f480280004ccc266a5";
static const char CONN[] =
    "010a00282112a4420102030405060708090a0b0c002a0004deadbeef00080014ae712648"
    "01939e296c20a1bd5793a2b31f87765b80280004b455c787";

static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
    size_t n = strlen(h) / 2;
    CU_ASSERT_FATAL(n <= cap);
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        CU_ASSERT_FATAL(sscanf(h + 2 * i, "%2x", &v) == 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

static void our_key(uint8_t key[MESH_STUN_LONG_TERM_KEY_LEN], const char *pass)
{
    CU_ASSERT_EQUAL_FATAL(
        mesh_stun_long_term_key(key, "alice", 5, "meshara.test", 12, pass, strlen(pass)), MESH_OK);
}

static void test_long_term_key(void)
{
    uint8_t key[16], want[16];
    our_key(key, "s3cret");
    unhex(KEY_HEX, want, sizeof want);
    CU_ASSERT_EQUAL(memcmp(key, want, 16), 0);
}

/* The request: its attributes read back, its MESSAGE-INTEGRITY right with the key, wrong
 * with another password, wrong once any byte before it changes. */
static void test_allocate_request(void)
{
    uint8_t b[256], key[16], bad[16];
    size_t n = unhex(REQ, b, sizeof b);
    mesh_stun_msg m;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_decode(&m, b, n), MESH_OK);
    CU_ASSERT_EQUAL(m.method, MESH_STUN_ALLOCATE);
    CU_ASSERT_EQUAL(m.cls, MESH_STUN_REQUEST);
    uint8_t proto = 0;
    CU_ASSERT_EQUAL(
        mesh_stun_get_transport(&m, mesh_stun_find(&m, MESH_STUN_A_REQUESTED_TRANSPORT), &proto),
        MESH_OK);
    CU_ASSERT_EQUAL(proto, MESH_STUN_TRANSPORT_TCP);
    const char *t = NULL;
    size_t tl = 0;
    CU_ASSERT_EQUAL(mesh_stun_get_text(&m, mesh_stun_find(&m, MESH_STUN_A_NONCE), &t, &tl),
                    MESH_OK);
    CU_ASSERT(tl == 16 && memcmp(t, "nonce-0123456789", 16) == 0);
    our_key(key, "s3cret");
    our_key(bad, "s3creT");
    CU_ASSERT_EQUAL(mesh_stun_check_fingerprint(&m), MESH_OK);
    CU_ASSERT_EQUAL(mesh_stun_check_integrity(&m, key, 16, MESH_STUN_MI_ANY), MESH_OK);
    CU_ASSERT_EQUAL(mesh_stun_check_integrity(&m, bad, 16, MESH_STUN_MI_ANY),
                    MESH_ERR_BAD_SIGNATURE);
    size_t mi_off = m.attrs[m.mi].off - MESH_STUN_ATTR_HDR_LEN;
    for (size_t i = 0; i < mi_off; i++) {
        if (i == 2 || i == 3)
            continue; /* the length field: a change makes it another message (decode fails) */
        b[i] ^= 0x10;
        mesh_stun_msg m2;
        if (mesh_stun_decode(&m2, b, n) == MESH_OK)
            CU_ASSERT_NOT_EQUAL(mesh_stun_check_integrity(&m2, key, 16, MESH_STUN_MI_SHA1),
                                MESH_OK);
        b[i] ^= 0x10;
    }
    /* our encoder makes the same bytes from the same attributes */
    uint8_t out[256];
    mesh_stun_enc e;
    mesh_stun_enc_init(&e, out, sizeof out, m.type, m.tid);
    mesh_stun_enc_transport(&e, MESH_STUN_TRANSPORT_TCP);
    mesh_stun_enc_u32(&e, MESH_STUN_A_LIFETIME, 600);
    mesh_stun_enc_text(&e, MESH_STUN_A_USERNAME, "alice", 5);
    mesh_stun_enc_text(&e, MESH_STUN_A_REALM, "meshara.test", 12);
    mesh_stun_enc_text(&e, MESH_STUN_A_NONCE, "nonce-0123456789", 16);
    mesh_stun_enc_integrity(&e, key, 16);
    mesh_stun_enc_fingerprint(&e);
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_enc_finish(&e, &len), MESH_OK);
    CU_ASSERT(len == n && memcmp(out, b, n) == 0);
}

static void test_allocate_success(void)
{
    uint8_t b[256], key[16];
    size_t n = unhex(RESP, b, sizeof b);
    mesh_stun_msg m;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_decode(&m, b, n), MESH_OK);
    CU_ASSERT_EQUAL(m.method, MESH_STUN_ALLOCATE);
    CU_ASSERT_EQUAL(m.cls, MESH_STUN_SUCCESS);
    our_key(key, "s3cret");
    CU_ASSERT_EQUAL(mesh_stun_check_integrity(&m, key, 16, MESH_STUN_MI_SHA1), MESH_OK);
    CU_ASSERT_EQUAL(mesh_stun_check_fingerprint(&m), MESH_OK);
    mesh_addr r, want;
    CU_ASSERT_EQUAL(mesh_stun_get_addr(&m, mesh_stun_find(&m, MESH_STUN_A_XOR_RELAYED_ADDRESS), &r),
                    MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_addr_parse(&want, "11.250.42.50:49175"), MESH_OK);
    CU_ASSERT(mesh_addr_equal(&r, &want));
    CU_ASSERT_EQUAL(mesh_stun_get_addr(&m, mesh_stun_find(&m, MESH_STUN_A_XOR_MAPPED_ADDRESS), &r),
                    MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_addr_parse(&want, "11.250.42.1:38821"), MESH_OK);
    CU_ASSERT(mesh_addr_equal(&r, &want));
    uint32_t life = 0;
    CU_ASSERT_EQUAL(mesh_stun_get_u32(&m, mesh_stun_find(&m, MESH_STUN_A_LIFETIME), &life),
                    MESH_OK);
    CU_ASSERT_EQUAL(life, 600);
    /* XOR-RELAYED-ADDRESS is XORed: the raw port is not 49175 */
    const uint8_t *v = mesh_stun_value(&m, mesh_stun_find(&m, MESH_STUN_A_XOR_RELAYED_ADDRESS));
    CU_ASSERT_NOT_EQUAL((v[2] << 8) | v[3], 49175);
}

static void test_connection_id(void)
{
    uint8_t b[128], key[16];
    size_t n = unhex(CONN, b, sizeof b);
    mesh_stun_msg m;
    CU_ASSERT_EQUAL_FATAL(mesh_stun_decode(&m, b, n), MESH_OK);
    CU_ASSERT_EQUAL(m.method, MESH_STUN_CONNECT);
    our_key(key, "s3cret");
    CU_ASSERT_EQUAL(mesh_stun_check_integrity(&m, key, 16, MESH_STUN_MI_SHA1), MESH_OK);
    uint32_t id = 0;
    const mesh_stun_attr *a = mesh_stun_find(&m, MESH_STUN_A_CONNECTION_ID);
    CU_ASSERT_EQUAL(mesh_stun_get_u32(&m, a, &id), MESH_OK);
    CU_ASSERT_EQUAL(id, 0xdeadbeefu);
    /* a CONNECTION-ID of another length is refused by the getter */
    mesh_stun_attr short_a = *a;
    short_a.len = 3;
    CU_ASSERT_EQUAL(mesh_stun_get_u32(&m, &short_a, &id), MESH_ERR_MALFORMED);
    /* truncated anywhere: never decodes */
    for (size_t k = 0; k < n; k++) {
        mesh_stun_msg m2;
        CU_ASSERT_NOT_EQUAL(mesh_stun_decode(&m2, b, k), MESH_OK);
    }
}

static void test_error_status(void)
{
    CU_ASSERT_EQUAL(mesh_turn_error_status(401), MESH_ERR_AUTH);
    CU_ASSERT_EQUAL(mesh_turn_error_status(441), MESH_ERR_AUTH);
    CU_ASSERT_EQUAL(mesh_turn_error_status(486), MESH_ERR_LIMIT);
    CU_ASSERT_EQUAL(mesh_turn_error_status(508), MESH_ERR_LIMIT);
    CU_ASSERT_EQUAL(mesh_turn_error_status(447), MESH_ERR_UNREACHABLE);
    CU_ASSERT_EQUAL(mesh_turn_error_status(403), MESH_ERR_REFUSED);
    CU_ASSERT_EQUAL(mesh_turn_error_status(0), MESH_ERR_REFUSED);
    CU_ASSERT_STRING_EQUAL(mesh_errname(MESH_ERR_AUTH), "MESH_ERR_AUTH");
}

static const CU_TestInfo tests[] = {
    {"long-term key (independent MD5)", test_long_term_key},
    {"Allocate request: MESSAGE-INTEGRITY, attributes, re-encoding", test_allocate_request},
    {"Allocate success: XOR-RELAYED-ADDRESS, LIFETIME", test_allocate_success},
    {"Connect success: CONNECTION-ID", test_connection_id},
    {"error codes to errors", test_error_status},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"turn codec", NULL, NULL, NULL, NULL, (CU_TestInfo *)tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
