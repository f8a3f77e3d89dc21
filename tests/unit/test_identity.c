/* test_identity.c — Ed25519 identity: reproducible keys from env randomness, node id, sign and
 * verify, hex forms, and the key file (mode 0600, O_EXCL, every corrupt form refused). */
#include "mesh_test.h"

#include <fcntl.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/identity.h"

static char tmpdir[256];

static int suite_init(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mesh-identity-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int suite_clean(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *path_of(const char *name)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    return p;
}

static void write_file(const char *path, const char *content, size_t len, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(write(fd, content, len) == (ssize_t)len);
    fchmod(fd, mode);
    close(fd);
}

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

static void test_file_create_load(void)
{
    mesh_test_env t;
    mesh_test_env_init(&t, 9);
    const char *p = path_of("node.key");
    unlink(p);
    mesh_identity *made = NULL, *loaded = NULL;
    mode_t old = umask(0);
    CU_ASSERT_EQUAL_FATAL(mesh_identity_create_file(&made, p, &t.env), MESH_OK);
    umask(old);
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(stat(p, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    CU_ASSERT_EQUAL(st.st_size, 19 + 64 + 1);
    CU_ASSERT_EQUAL_FATAL(mesh_identity_load_file(&loaded, p, &t.env), MESH_OK);
    CU_ASSERT_EQUAL(memcmp(mesh_identity_pubkey(made), mesh_identity_pubkey(loaded), 32), 0);
    mesh_identity_free(loaded);

    /* O_EXCL: a second create refuses and leaves the file as it was */
    char before[128], after[128];
    FILE *f = fopen(p, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    size_t nb = fread(before, 1, sizeof before, f);
    fclose(f);
    CU_ASSERT_EQUAL(mesh_identity_create_file(NULL, p, &t.env), MESH_ERR_EXISTS);
    f = fopen(p, "r");
    size_t na = fread(after, 1, sizeof after, f);
    fclose(f);
    CU_ASSERT_EQUAL(na, nb);
    CU_ASSERT_EQUAL(memcmp(before, after, nb), 0);
    mesh_identity_free(made);

    /* a symlink named as the key file is not followed */
    const char *link = path_of("link.key");
    unlink(link);
    CU_ASSERT_EQUAL_FATAL(symlink(p, link), 0);
    CU_ASSERT_EQUAL(mesh_identity_create_file(NULL, link, &t.env), MESH_ERR_EXISTS);
    CU_ASSERT_EQUAL(mesh_identity_load_file(&loaded, link, &t.env), MESH_ERR_PERM);

    /* unwritable place */
    CU_ASSERT_EQUAL(mesh_identity_create_file(NULL, "/nonexistent-dir/x.key", &t.env), MESH_ERR_IO);
}

static void test_file_refused(void)
{
    mesh_test_env t;
    mesh_test_env_init(&t, 11);
    const char *p = path_of("bad.key");
    mesh_identity *id = NULL;
    const char *good = "meshara-ed25519-v1 "
                       "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n";
    size_t glen = strlen(good);

    write_file(p, good, glen, 0600);
    CU_ASSERT_EQUAL(mesh_identity_load_file(&id, p, &t.env), MESH_OK);
    mesh_identity_free(id);
    id = NULL;

    unsigned logs = t.log_lines;
    write_file(p, good, glen, 0644); /* readable by others */
    CU_ASSERT_EQUAL(mesh_identity_load_file(&id, p, &t.env), MESH_ERR_PERM);
    CU_ASSERT(t.log_lines > logs); /* the error is logged, naming the file */
    write_file(p, good, glen, 0620);
    CU_ASSERT_EQUAL(mesh_identity_load_file(&id, p, &t.env), MESH_ERR_PERM);

    for (size_t cut = 0; cut < glen; cut += 7) { /* truncated anywhere */
        write_file(p, good, cut, 0600);
        CU_ASSERT_EQUAL(mesh_identity_load_file(&id, p, &t.env), MESH_ERR_CORRUPT);
    }
    char buf[160];
    memcpy(buf, good, glen);
    buf[30] = 'z'; /* not hex */
    write_file(p, buf, glen, 0600);
    CU_ASSERT_EQUAL(mesh_identity_load_file(&id, p, &t.env), MESH_ERR_CORRUPT);
    memcpy(buf, good, glen);
    buf[0] = 'M'; /* wrong tag */
    write_file(p, buf, glen, 0600);
    CU_ASSERT_EQUAL(mesh_identity_load_file(&id, p, &t.env), MESH_ERR_CORRUPT);
    memcpy(buf, good, glen);
    memcpy(buf + glen, "00\n", 3); /* trailing bytes */
    write_file(p, buf, glen + 3, 0600);
    CU_ASSERT_EQUAL(mesh_identity_load_file(&id, p, &t.env), MESH_ERR_CORRUPT);
    CU_ASSERT_PTR_NULL(id); /* *out untouched on every failure */

    CU_ASSERT_EQUAL(mesh_identity_load_file(&id, path_of("missing.key"), &t.env),
                    MESH_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(mesh_identity_load_file(&id, tmpdir, &t.env), MESH_ERR_PERM); /* a dir */
}

static CU_TestInfo identity_tests[] = {
    {"generate is reproducible from env randomness", test_generate_reproducible},
    {"RFC 8032 test vector", test_rfc8032_vector},
    {"sign and verify", test_sign_verify},
    {"hex encode and decode", test_hex},
    {"key file: 0600, O_EXCL, no symlinks, load round-trip", test_file_create_load},
    {"key file: permissions, truncation, corruption refused", test_file_refused},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"identity", suite_init, suite_clean, NULL, NULL, identity_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
