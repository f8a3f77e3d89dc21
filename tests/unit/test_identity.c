/* test_identity.c — Ed25519 identity: reproducible keys from env randomness, node id, sign and
 * verify, hex forms, and the key file's line (every corrupt form refused). The file on disk
 * (0600, O_EXCL, symbolic links, FIFOs): tests/real/test_keyfile.c. */
#include "mesh_test.h"

#include <openssl/sha.h>
#include <string.h>

#include "core/identity.h"

static void test_generate_reproducible(void)
{
    mesh_test_env a, b, c;
    mesh_test_env_init(&a, 42);
    mesh_test_env_init(&b, 42);
    mesh_test_env_init(&c, 43);
    mesh_identity *ia = NULL, *ib = NULL, *ic = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_identity_generate(&ia, &a.env), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_identity_generate(&ib, &b.env), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_identity_generate(&ic, &c.env), MESH_OK);
    CU_ASSERT_EQUAL(memcmp(mesh_identity_pubkey(ia), mesh_identity_pubkey(ib), 32), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(mesh_identity_pubkey(ia), mesh_identity_pubkey(ic), 32), 0);
    /* node id = SHA-256(public key) */
    uint8_t h[32];
    SHA256(mesh_identity_pubkey(ia), 32, h);
    CU_ASSERT_EQUAL(memcmp(mesh_identity_node_id(ia), h, 32), 0);
    mesh_identity_free(ia);
    mesh_identity_free(ib);
    mesh_identity_free(ic);
    mesh_identity_free(NULL);
}

/* RFC 8032 §7.1 test 1: the empty message. */
static void test_rfc8032_vector(void)
{
    uint8_t seed[32], pub[32], sig[64], expect_sig[64];
    CU_ASSERT_EQUAL_FATAL(
        mesh_hex_decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", seed,
                        32),
        MESH_OK);
    CU_ASSERT_EQUAL_FATAL(
        mesh_hex_decode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", pub,
                        32),
        MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_hex_decode("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e0"
                                          "65224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595b"
                                          "be24655141438e7a100b",
                                          expect_sig, 64),
                          MESH_OK);
    mesh_identity *id = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_identity_from_seed(&id, seed), MESH_OK);
    CU_ASSERT_EQUAL(memcmp(mesh_identity_pubkey(id), pub, 32), 0);
    CU_ASSERT_EQUAL(mesh_identity_sign(id, (const uint8_t *)"", 0, sig), MESH_OK);
    CU_ASSERT_EQUAL(memcmp(sig, expect_sig, 64), 0);
    CU_ASSERT_EQUAL(mesh_ed25519_verify(pub, (const uint8_t *)"", 0, sig), MESH_OK);
    mesh_identity_free(id);
}

static void test_sign_verify(void)
{
    mesh_test_env t;
    mesh_test_env_init(&t, 7);
    mesh_identity *id = NULL, *other = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_identity_generate(&id, &t.env), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_identity_generate(&other, &t.env), MESH_OK);
    const uint8_t msg[] = "meshara";
    uint8_t sig[64];
    CU_ASSERT_EQUAL_FATAL(mesh_identity_sign(id, msg, sizeof msg, sig), MESH_OK);
    CU_ASSERT_EQUAL(mesh_ed25519_verify(mesh_identity_pubkey(id), msg, sizeof msg, sig), MESH_OK);
    /* wrong key, altered message, altered signature */
    CU_ASSERT_EQUAL(mesh_ed25519_verify(mesh_identity_pubkey(other), msg, sizeof msg, sig),
                    MESH_ERR_BAD_SIGNATURE);
    CU_ASSERT_EQUAL(mesh_ed25519_verify(mesh_identity_pubkey(id), msg, sizeof msg - 1, sig),
                    MESH_ERR_BAD_SIGNATURE);
    sig[10] ^= 1;
    CU_ASSERT_EQUAL(mesh_ed25519_verify(mesh_identity_pubkey(id), msg, sizeof msg, sig),
                    MESH_ERR_BAD_SIGNATURE);
    mesh_identity_free(id);
    mesh_identity_free(other);
}

static void test_hex(void)
{
    const uint8_t in[] = {0x00, 0x01, 0xab, 0xff};
    char out[9];
    CU_ASSERT_STRING_EQUAL(mesh_hex_encode(in, 4, out), "0001abff");
    uint8_t back[4];
    CU_ASSERT_EQUAL(mesh_hex_decode("0001ABff", back, 4), MESH_OK);
    CU_ASSERT_EQUAL(memcmp(in, back, 4), 0);
    CU_ASSERT_EQUAL(mesh_hex_decode("0001abf", back, 4), MESH_ERR_MALFORMED);
    CU_ASSERT_EQUAL(mesh_hex_decode("0001abfff", back, 4), MESH_ERR_MALFORMED);
    CU_ASSERT_EQUAL(mesh_hex_decode("0001abfg", back, 4), MESH_ERR_MALFORMED);
    CU_ASSERT_EQUAL(mesh_hex_decode(NULL, back, 4), MESH_ERR_MALFORMED);
}

/* The key file's line: encoded from the seed, decoded back, every corrupt form refused by the
 * one decoder (the file itself: tests/real/test_keyfile.c). */
static void test_keyfile_line(void)
{
    static const char good[] = "meshara-ed25519-v1 "
                               "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n";
    const size_t glen = sizeof good - 1;
    CU_ASSERT_EQUAL_FATAL(glen, MESH_KEYFILE_LINE_LEN);
    uint8_t seed[32], pub[32];
    CU_ASSERT_EQUAL_FATAL(mesh_hex_decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac"
                                          "031cae7f60",
                                          seed, 32),
                          MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_hex_decode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a"
                                          "68f707511a",
                                          pub, 32),
                          MESH_OK);
    mesh_identity *id = NULL, *back = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_identity_from_seed(&id, seed), MESH_OK);
    char line[MESH_KEYFILE_LINE_LEN];
    mesh_identity_keyfile_encode(id, line);
    CU_ASSERT_EQUAL(memcmp(line, good, glen), 0);
    CU_ASSERT_EQUAL_FATAL(mesh_identity_keyfile_decode(&back, good, glen), MESH_OK);
    CU_ASSERT_EQUAL(memcmp(mesh_identity_pubkey(back), pub, 32), 0); /* RFC 8032 §7.1 test 1 */
    mesh_identity_free(back);
    back = NULL;

    char buf[160];
    memcpy(buf, good, glen);
    for (size_t i = 19; i < 19 + 64; i++) /* the hex in upper case is the same key */
        buf[i] = (char)(buf[i] >= 'a' ? buf[i] - 32 : buf[i]);
    CU_ASSERT_EQUAL(mesh_identity_keyfile_decode(&back, buf, glen), MESH_OK);
    CU_ASSERT(back && memcmp(mesh_identity_pubkey(back), pub, 32) == 0);
    mesh_identity_free(back);
    back = NULL;

    for (size_t cut = 0; cut < glen; cut++) /* truncated anywhere */
        CU_ASSERT_EQUAL(mesh_identity_keyfile_decode(&back, good, cut), MESH_ERR_CORRUPT);
    struct {
        size_t at;
        char c;
    } flips[] = {{30, 'z'}, {0, 'M'}, {18, '-'}, {glen - 1, '\r'}, {19, ' '}};
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        memcpy(buf, good, glen);
        buf[flips[i].at] = flips[i].c; /* not hex, wrong tag, no separator, no newline */
        CU_ASSERT_EQUAL(mesh_identity_keyfile_decode(&back, buf, glen), MESH_ERR_CORRUPT);
    }
    memcpy(buf, good, glen);
    memcpy(buf + glen, "00\n", 3); /* trailing bytes */
    CU_ASSERT_EQUAL(mesh_identity_keyfile_decode(&back, buf, glen + 3), MESH_ERR_CORRUPT);
    CU_ASSERT_EQUAL(mesh_identity_keyfile_decode(&back, NULL, 0), MESH_ERR_CORRUPT);
    CU_ASSERT_EQUAL(mesh_identity_keyfile_decode(&back, NULL, 5), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_identity_keyfile_decode(NULL, good, glen), MESH_ERR_INVAL);
    CU_ASSERT_PTR_NULL(back); /* *out untouched on every failure */
    mesh_identity_free(id);
}

static CU_TestInfo identity_tests[] = {
    {"generate is reproducible from env randomness", test_generate_reproducible},
    {"RFC 8032 test vector", test_rfc8032_vector},
    {"sign and verify", test_sign_verify},
    {"hex encode and decode", test_hex},
    {"key file line: encode, decode, every corrupt form refused", test_keyfile_line},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"identity", NULL, NULL, NULL, NULL, identity_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
