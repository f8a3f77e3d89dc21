/* test_keyfile.c — the key file on disk (node/real/keyfile.c): created 0600 and never over an
 * existing path (O_EXCL, symbolic links included); loaded only from a private regular file:
 * group/other bits, symbolic links, directories, devices, sockets and FIFOs refused at once
 * (a FIFO used to block the loader for ever), truncated and corrupt contents refused, and
 * every refusal logged. The line's own format: tests/unit/test_identity.c. The web certificate
 * kept next to it: made 0600, reused, made anew when due, of another type, half there or
 * damaged, refused when a link or exposed; an operator's pair read through links, its key
 * refused when readable by others. */
#include "mesh_test.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "real/keyfile.h"

/* A load that blocks (the FIFO regression) is killed by SIGALRM instead of hanging the run. */
enum { LOAD_ALARM_S = 10 };

static char tmpdir[256];

static int suite_init(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mesh-keyfile-XXXXXX");
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

static void test_create_load(void)
{
    mesh_test_env t;
    mesh_test_env_init(&t, 9);
    const char *p = path_of("node.key");
    unlink(p);
    mesh_identity *made = NULL, *loaded = NULL;
    mode_t old = umask(0);
    CU_ASSERT_EQUAL_FATAL(mesh_keyfile_create(&made, p, &t.env), MESH_OK);
    umask(old);
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(stat(p, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    CU_ASSERT_EQUAL(st.st_size, 19 + 64 + 1);
    CU_ASSERT_EQUAL_FATAL(mesh_keyfile_load(&loaded, p, &t.env), MESH_OK);
    CU_ASSERT_EQUAL(memcmp(mesh_identity_pubkey(made), mesh_identity_pubkey(loaded), 32), 0);
    mesh_identity_free(loaded);
    loaded = NULL;

    /* O_EXCL: a second create refuses and leaves the file as it was */
    char before[128], after[128];
    FILE *f = fopen(p, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    size_t nb = fread(before, 1, sizeof before, f);
    fclose(f);
    CU_ASSERT_EQUAL(mesh_keyfile_create(NULL, p, &t.env), MESH_ERR_EXISTS);
    f = fopen(p, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    size_t na = fread(after, 1, sizeof after, f);
    fclose(f);
    CU_ASSERT_EQUAL(na, nb);
    CU_ASSERT_EQUAL(memcmp(before, after, nb), 0);
    mesh_identity_free(made);

    /* a symlink named as the key file is not followed */
    const char *link = path_of("link.key");
    unlink(link);
    CU_ASSERT_EQUAL_FATAL(symlink(p, link), 0);
    CU_ASSERT_EQUAL(mesh_keyfile_create(NULL, link, &t.env), MESH_ERR_EXISTS);
    CU_ASSERT_EQUAL(mesh_keyfile_load(&loaded, link, &t.env), MESH_ERR_PERM);
    CU_ASSERT_PTR_NULL(loaded);

    /* unwritable place */
    CU_ASSERT_EQUAL(mesh_keyfile_create(NULL, "/nonexistent-dir/x.key", &t.env), MESH_ERR_IO);
    CU_ASSERT_EQUAL(mesh_keyfile_create(NULL, NULL, &t.env), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_keyfile_load(NULL, p, &t.env), MESH_ERR_INVAL);
}

static void test_contents_refused(void)
{
    mesh_test_env t;
    mesh_test_env_init(&t, 11);
    const char *p = path_of("bad.key");
    mesh_identity *id = NULL;
    const char *good = "meshara-ed25519-v1 "
                       "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n";
    size_t glen = strlen(good);

    write_file(p, good, glen, 0600);
    CU_ASSERT_EQUAL(mesh_keyfile_load(&id, p, NULL), MESH_OK); /* env may be NULL */
    mesh_identity_free(id);
    id = NULL;

    unsigned logs = t.log_lines;
    write_file(p, good, glen, 0644); /* readable by others */
    CU_ASSERT_EQUAL(mesh_keyfile_load(&id, p, &t.env), MESH_ERR_PERM);
    CU_ASSERT(t.log_lines > logs); /* the error is logged, naming the file */
    write_file(p, good, glen, 0620);
    CU_ASSERT_EQUAL(mesh_keyfile_load(&id, p, &t.env), MESH_ERR_PERM);

    for (size_t cut = 0; cut < glen; cut += 7) { /* truncated anywhere */
        write_file(p, good, cut, 0600);
        CU_ASSERT_EQUAL(mesh_keyfile_load(&id, p, &t.env), MESH_ERR_CORRUPT);
    }
    char buf[MESH_NODE_KEYFILE_MAX + 2];
    memcpy(buf, good, glen);
    buf[30] = 'z'; /* not hex */
    write_file(p, buf, glen, 0600);
    CU_ASSERT_EQUAL(mesh_keyfile_load(&id, p, &t.env), MESH_ERR_CORRUPT);
    memcpy(buf, good, glen);
    buf[0] = 'M'; /* wrong tag */
    write_file(p, buf, glen, 0600);
    CU_ASSERT_EQUAL(mesh_keyfile_load(&id, p, &t.env), MESH_ERR_CORRUPT);
    memcpy(buf, good, glen);
    memcpy(buf + glen, "00\n", 3); /* trailing bytes */
    write_file(p, buf, glen + 3, 0600);
    CU_ASSERT_EQUAL(mesh_keyfile_load(&id, p, &t.env), MESH_ERR_CORRUPT);
    memset(buf, 'x', sizeof buf); /* longer than any key file: read no further, refused */
    write_file(p, buf, sizeof buf, 0600);
    CU_ASSERT_EQUAL(mesh_keyfile_load(&id, p, &t.env), MESH_ERR_CORRUPT);
    CU_ASSERT_PTR_NULL(id); /* *out untouched on every failure */

    CU_ASSERT_EQUAL(mesh_keyfile_load(&id, path_of("missing.key"), &t.env), MESH_ERR_NOT_FOUND);
}

/* What is not a regular file is refused at once, without reading: a FIFO with no writer (the
 * loader used to wait in open() for ever), a FIFO with a writer that sends a valid key (what
 * a "--key <(...)" process substitution looks like), a directory, a device, a socket. */
static void test_not_regular_refused(void)
{
    mesh_test_env t;
    mesh_test_env_init(&t, 13);
    mesh_identity *id = NULL;
    const char *fifo = path_of("fifo.key");
    unlink(fifo);
    CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
    alarm(LOAD_ALARM_S);
    CU_ASSERT_EQUAL(mesh_keyfile_load(&id, fifo, &t.env), MESH_ERR_PERM);
    int wfd = open(fifo, O_RDWR | O_NONBLOCK); /* a writer present (O_RDWR never blocks) */
    CU_ASSERT_FATAL(wfd >= 0);
    CU_ASSERT_EQUAL(write(wfd, "meshara-ed25519-v1 ", 19), 19);
    CU_ASSERT_EQUAL(mesh_keyfile_load(&id, fifo, &t.env), MESH_ERR_PERM);
    close(wfd);
    CU_ASSERT_EQUAL(mesh_keyfile_create(NULL, fifo, &t.env), MESH_ERR_EXISTS);
    CU_ASSERT_EQUAL(mesh_keyfile_load(&id, tmpdir, &t.env), MESH_ERR_PERM);      /* a dir */
    CU_ASSERT_EQUAL(mesh_keyfile_load(&id, "/dev/null", &t.env), MESH_ERR_PERM); /* a device */

    const char *sock = path_of("sock.key");
    unlink(sock);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    CU_ASSERT_FATAL(strlen(sock) < sizeof sun.sun_path);
    memcpy(sun.sun_path, sock, strlen(sock) + 1);
    CU_ASSERT_FATAL(s >= 0 && bind(s, (struct sockaddr *)&sun, sizeof sun) == 0);
    chmod(sock, 0600);
    CU_ASSERT_EQUAL(mesh_keyfile_load(&id, sock, &t.env), MESH_ERR_PERM);
    close(s);
    alarm(0);
    CU_ASSERT_PTR_NULL(id);
}

/* The whole content of a file (NUL-terminated; free it). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char *b = calloc(1, 70000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    size_t n = fread(b, 1, 69999, f);
    b[n] = '\0';
    fclose(f);
    return b;
}

enum { NOW = 1750000000, DAY = 86400 };

static void test_cert_own(void)
{
    mesh_test_env t;
    mesh_test_env_init(&t, 21);
    char key[512], crt[600], ckey[600];
    snprintf(key, sizeof key, "%s", path_of("c.key"));
    snprintf(crt, sizeof crt, "%s.crt", key);
    snprintf(ckey, sizeof ckey, "%s.crt.key", key);
    unlink(crt);
    unlink(ckey);
    mesh_certfile a = {0}, b = {0};
    CU_ASSERT_EQUAL_FATAL(
        mesh_certfile_own(&a, key, &t.env, MESH_CERT_ECDSA_P256, "h.example", NOW), MESH_OK);
    struct stat st;
    CU_ASSERT(stat(crt, &st) == 0 && (st.st_mode & 0777) == 0600);
    CU_ASSERT(stat(ckey, &st) == 0 && (st.st_mode & 0777) == 0600);
    char *on_disk = slurp(crt);
    CU_ASSERT_STRING_EQUAL(on_disk, a.cert);
    free(on_disk);
    /* reused: the same pair, a day later and near the end of its life */
    CU_ASSERT_EQUAL(
        mesh_certfile_own(&b, key, &t.env, MESH_CERT_ECDSA_P256, "h.example", NOW + DAY), MESH_OK);
    CU_ASSERT_STRING_EQUAL(a.cert, b.cert);
    CU_ASSERT_STRING_EQUAL(a.key, b.key);
    mesh_certfile_clear(&b);
    int64_t due = NOW + (int64_t)(MESH_TLS_CERT_DAYS - MESH_CERTFILE_RENEW_DAYS) * DAY;
    CU_ASSERT_EQUAL(mesh_certfile_own(&b, key, &t.env, MESH_CERT_ECDSA_P256, "h.example", due - 60),
                    MESH_OK);
    CU_ASSERT_STRING_EQUAL(a.cert, b.cert);
    mesh_certfile_clear(&b);
    /* made anew for another host name (the node's --host-name changed), then kept for it */
    mesh_tls_cert_info hinfo;
    CU_ASSERT_EQUAL(mesh_certfile_own(&b, key, &t.env, MESH_CERT_ECDSA_P256, "n2.example.net", NOW),
                    MESH_OK);
    CU_ASSERT_STRING_NOT_EQUAL(a.cert, b.cert);
    CU_ASSERT_EQUAL(mesh_tls_cert_check(b.cert, b.cert_len, b.key, b.key_len, &hinfo), MESH_OK);
    CU_ASSERT_STRING_EQUAL(hinfo.common_name, "n2.example.net");
    mesh_certfile_clear(&b);
    CU_ASSERT_EQUAL(mesh_certfile_own(&b, key, &t.env, MESH_CERT_ECDSA_P256, NULL, NOW), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_cert_check(b.cert, b.cert_len, b.key, b.key_len, &hinfo), MESH_OK);
    CU_ASSERT_STRING_EQUAL(hinfo.common_name, "localhost");
    mesh_certfile_clear(&b);
    /* made anew: due, of another type, half a pair, damaged */
    CU_ASSERT_EQUAL(mesh_certfile_own(&b, key, &t.env, MESH_CERT_ECDSA_P256, NULL, due + 60),
                    MESH_OK);
    CU_ASSERT_STRING_NOT_EQUAL(a.cert, b.cert);
    mesh_tls_cert_info info;
    CU_ASSERT_EQUAL(mesh_tls_cert_check(b.cert, b.cert_len, b.key, b.key_len, &info), MESH_OK);
    CU_ASSERT_EQUAL(info.not_after, due + 60 + (int64_t)MESH_TLS_CERT_DAYS * DAY);
    mesh_certfile_clear(&b);
    CU_ASSERT_EQUAL(mesh_certfile_own(&b, key, &t.env, MESH_CERT_RSA_2048, NULL, NOW), MESH_OK);
    CU_ASSERT_EQUAL(mesh_tls_cert_check(b.cert, b.cert_len, b.key, b.key_len, &info), MESH_OK);
    CU_ASSERT_EQUAL(info.type, MESH_CERT_RSA_2048);
    mesh_certfile_clear(&b);
    unlink(ckey);
    CU_ASSERT_EQUAL(mesh_certfile_own(&b, key, &t.env, MESH_CERT_ECDSA_P256, NULL, NOW), MESH_OK);
    CU_ASSERT(stat(ckey, &st) == 0);
    mesh_certfile_clear(&b);
    write_file(crt, "garbage\n", 8, 0600);
    CU_ASSERT_EQUAL(mesh_certfile_own(&b, key, &t.env, MESH_CERT_ECDSA_P256, NULL, NOW), MESH_OK);
    CU_ASSERT(strncmp(b.cert, "-----BEGIN CERTIFICATE-----", 27) == 0);
    mesh_certfile_clear(&b);
    /* refused, untouched: exposed, or a link */
    chmod(crt, 0640);
    on_disk = slurp(crt);
    CU_ASSERT_EQUAL(mesh_certfile_own(&b, key, &t.env, MESH_CERT_ECDSA_P256, NULL, NOW),
                    MESH_ERR_PERM);
    char *again = slurp(crt);
    CU_ASSERT_STRING_EQUAL(on_disk, again);
    free(again);
    free(on_disk);
    unlink(crt);
    CU_ASSERT_EQUAL_FATAL(symlink(ckey, crt), 0);
    CU_ASSERT_EQUAL(mesh_certfile_own(&b, key, &t.env, MESH_CERT_ECDSA_P256, NULL, NOW),
                    MESH_ERR_PERM);
    CU_ASSERT_PTR_NULL(b.cert);
    mesh_certfile_clear(&a);
    mesh_certfile_clear(NULL);
}

static void test_cert_operator(void)
{
    mesh_test_env t;
    mesh_test_env_init(&t, 22);
    char *c = NULL, *k = NULL;
    size_t cl = 0, kl = 0;
    CU_ASSERT_EQUAL_FATAL(
        mesh_tls_cert_generate(&t.env, MESH_CERT_ECDSA_P256, "op.example", NOW, &c, &cl, &k, &kl),
        MESH_OK);
    char crt[512], key[512], link[512];
    snprintf(crt, sizeof crt, "%s", path_of("op.crt"));
    snprintf(key, sizeof key, "%s", path_of("op.key"));
    snprintf(link, sizeof link, "%s", path_of("op-link.crt"));
    write_file(crt, c, cl, 0644); /* a certificate is public */
    write_file(key, k, kl, 0640); /* a key may be group-readable (Debian's ssl-cert) */
    unlink(link);
    CU_ASSERT_EQUAL_FATAL(symlink(crt, link), 0);
    mesh_certfile f = {0};
    CU_ASSERT_EQUAL(mesh_certfile_load(&f, link, key, &t.env), MESH_OK);
    CU_ASSERT_STRING_EQUAL(f.cert, c);
    mesh_certfile_clear(&f);
    chmod(key, 0604);
    CU_ASSERT_EQUAL(mesh_certfile_load(&f, crt, key, &t.env), MESH_ERR_PERM);
    chmod(key, 0600);
    char notkey[512];
    snprintf(notkey, sizeof notkey, "%s", path_of("op-notkey.pem"));
    write_file(notkey, c, cl, 0600); /* a certificate where the key should be */
    CU_ASSERT_EQUAL(mesh_certfile_load(&f, crt, notkey, &t.env), MESH_ERR_CORRUPT);
    CU_ASSERT_EQUAL(mesh_certfile_load(&f, path_of("none.crt"), key, &t.env), MESH_ERR_NOT_FOUND);
    CU_ASSERT_PTR_NULL(f.cert);
    mesh_tls_pem_free(c, cl);
    mesh_tls_pem_free(k, kl);
}

static CU_TestInfo keyfile_tests[] = {
    {"create: 0600, O_EXCL, no symlinks; load round-trip", test_create_load},
    {"load: permissions, truncation, corruption refused", test_contents_refused},
    {"load: FIFO, directory, device, socket refused at once", test_not_regular_refused},
    {"web certificate next to the key: made, reused, renewed, refused", test_cert_own},
    {"an operator's certificate and key", test_cert_operator},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"keyfile", suite_init, suite_clean, NULL, NULL, keyfile_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
