/* test_webroot.c — the --web-root static site's answers (node/real/webroot.c), against the
 * bytes nginx 1.22.1 sends for the same requests: files and index.html with their headers,
 * 404, 403, 301, 405 for other methods (404 for a POST of a missing file, as nginx), paths
 * that climb out of the root (../, %2e%2e, a NUL, a symbolic link out) refused before any
 * file outside is opened, and the HTTP/1.1 connection: pipelining, HEAD, keep-alive and
 * HTTP/1.0's close, nginx's size limits (414, 400 "Request Header Or Cookie Too Large", 413),
 * a bad request answered 400 and closed, and input paused while output piles up. The same
 * site over the network and the decoy: tests/real/test_webroot_decoy.sh. */
#include "mesh_test.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "real/webroot.h"

enum {
    NOW = 1796397226,   /* Fri, 04 Dec 2026 15:13:46 GMT */
    MTIME = 1796397225, /* one second earlier: 6b12d8a9 */
    BIG = 100 << 10,    /* a file sent from its fd (over MESH_WEBROOT_INLINE_MAX) */
};

static char dir[256], site[300], outside[300];
static mesh_webroot *w;

/* (suite setup: 0 or -1, no assertion outside a test) */
static int put(const char *name, const char *text, size_t len)
{
    char p[400];
    snprintf(p, sizeof p, "%s/%s", site, name);
    FILE *f = fopen(p, "w");
    if (!f)
        return -1;
    int bad = fwrite(text, 1, len, f) != len;
    bad |= fclose(f) != 0;
    struct timespec ts[2] = {{MTIME, 0}, {MTIME, 0}};
    return bad || utimensat(AT_FDCWD, p, ts, 0) != 0 ? -1 : 0;
}

static int suite_init(void)
{
    char p[400];
    snprintf(dir, sizeof dir, "/tmp/mesh-webroot-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(site, sizeof site, "%s/www", dir);
    snprintf(outside, sizeof outside, "%s/secret.txt", dir);
    snprintf(p, sizeof p, "%s/sub", site);
    if (mkdir(site, 0755) != 0 || mkdir(p, 0755) != 0)
        return -1;
    snprintf(p, sizeof p, "%s/empty", site);
    if (mkdir(p, 0755) != 0)
        return -1;
    FILE *f = fopen(outside, "w");
    if (!f)
        return -1;
    fputs("secret\n", f);
    fclose(f);
    if (put("index.html", "<html><body>hello</body></html>\n", 32) || put("a.txt", "hi\n", 3) ||
        put("sub/index.html", "sub\n", 4) || put("sub/style.css", "p{}\n", 4))
        return -1;
    char *big = malloc(BIG);
    if (!big)
        return -1;
    memset(big, 'x', BIG);
    int bad = put("big.bin", big, BIG);
    free(big);
    if (bad)
        return -1;
    snprintf(p, sizeof p, "%s/out", site);
    if (symlink(outside, p) != 0)
        return -1;
    snprintf(p, sizeof p, "%s/in.txt", site);
    if (symlink("a.txt", p) != 0)
        return -1;
    return mesh_webroot_open(&w, site) == MESH_OK ? 0 : -1;
}

static int suite_clean(void)
{
    mesh_webroot_close(w);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int status_of(const char *method, const char *target)
{
    mesh_webroot_reply r;
    mesh_webroot_answer(w, method, target, strlen(target), "example.org", &r);
    int s = r.status;
    mesh_webroot_reply_free(&r);
    return s;
}

static void test_open(void)
{
    mesh_webroot *x = NULL;
    CU_ASSERT_EQUAL(mesh_webroot_open(&x, outside), MESH_ERR_NOT_FOUND); /* a file */
    CU_ASSERT_EQUAL(mesh_webroot_open(&x, "/nonexistent/mesh-webroot"), MESH_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(mesh_webroot_open(&x, ""), MESH_ERR_INVAL);
    CU_ASSERT_PTR_NULL(x);
    mesh_webroot_close(NULL);
}

static void test_files(void)
{
    mesh_webroot_reply r;
    mesh_webroot_answer(w, "GET", "/", 1, NULL, &r);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.type, "text/html");
    CU_ASSERT_EQUAL(r.size, 32);
    CU_ASSERT_EQUAL(r.mtime, MTIME);
    CU_ASSERT(r.fd >= 0);
    char etag[40];
    CU_ASSERT_STRING_EQUAL(mesh_webroot_etag(&r, etag), "\"6b12d8a9-20\"");
    mesh_webroot_reply_free(&r);
    CU_ASSERT_EQUAL(r.fd, -1);
    mesh_webroot_answer(w, "GET", "/sub/style.css?v=1#x", 20, NULL, &r);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.type, "text/css");
    mesh_webroot_reply_free(&r);
    CU_ASSERT_EQUAL(status_of("GET", "/sub/"), 200); /* its index.html */
    CU_ASSERT_EQUAL(status_of("HEAD", "/a.txt"), 200);
    CU_ASSERT_EQUAL(status_of("GET", "/in.txt"), 200); /* a link that stays inside */
    CU_ASSERT_EQUAL(status_of("GET", "/sub/../a.txt"), 200);
    CU_ASSERT_EQUAL(status_of("GET", "//sub//./style.css"), 200);
    CU_ASSERT_EQUAL(status_of("GET", "/%61.txt"), 200);
    CU_ASSERT_EQUAL(status_of("GET", "http://other.example/a.txt"), 200); /* absolute-form */
    CU_ASSERT_EQUAL(status_of("GET", "/missing"), 404);
    CU_ASSERT_EQUAL(status_of("GET", "/a.txt/"), 404);
    CU_ASSERT_EQUAL(status_of("GET", "/empty/"), 403); /* a directory without index.html */
    CU_ASSERT_EQUAL(status_of("GET", "/nodir/"), 404);
    mesh_webroot_answer(w, "GET", "/sub", 4, "example.org:8443", &r);
    CU_ASSERT_EQUAL(r.status, 301);
    CU_ASSERT_STRING_EQUAL(r.location, "https://example.org:8443/sub/");
    CU_ASSERT_EQUAL(r.size, 169); /* nginx's page */
    CU_ASSERT_FALSE(r.close);
}

static void test_escape(void)
{
    static const char *const BAD[] = {
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2e/secret.txt",
        "/sub/../../secret.txt",
        "/sub/%2e%2e/%2e%2e/x",
        "/..",
        "/a%00.txt",
        "/a%2",
        "/a%zz",
        "secret.txt",
        "",
        "*",
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        mesh_webroot_reply r;
        mesh_webroot_answer(w, "GET", BAD[i], strlen(BAD[i]), NULL, &r);
        CU_ASSERT_EQUAL(r.status, 400);
        CU_ASSERT_EQUAL(r.fd, -1);
        CU_ASSERT_TRUE(r.close);
        if (r.status != 400)
            printf("\n  %s: %d\n", BAD[i], r.status);
    }
    mesh_webroot_reply r;
    mesh_webroot_answer(w, "GET", "/sub", 4, "a\r\nSet-Cookie: x", &r); /* not into Location */
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT_EQUAL(status_of("GET", "/out"), 403); /* a symbolic link out of the root */
    CU_ASSERT_EQUAL(status_of("GET", "/sub/../out"), 403);
    CU_ASSERT_EQUAL(status_of("GET", "/sub/.."), 200); /* the root itself: index.html */
}

static void test_methods(void)
{
    CU_ASSERT_EQUAL(status_of("POST", "/a.txt"), 405);
    CU_ASSERT_EQUAL(status_of("POST", "/"), 405);
    CU_ASSERT_EQUAL(status_of("POST", "/missing"), 404); /* nginx looks the file up first */
    CU_ASSERT_EQUAL(status_of("POST", "/sub"), 301);
    CU_ASSERT_EQUAL(status_of("PUT", "/missing"), 405);
    CU_ASSERT_EQUAL(status_of("DELETE", "/a.txt"), 405);
    CU_ASSERT_EQUAL(status_of("OPTIONS", "/"), 405);
    mesh_webroot_reply r;
    mesh_webroot_answer(w, "PATCH", "/", 1, NULL, &r);
    CU_ASSERT_STRING_EQUAL(r.reason, "Not Allowed");
    CU_ASSERT_EQUAL(r.size, 157);
    CU_ASSERT_FALSE(r.close); /* nginx keeps the connection */
}

/* Run text through a fresh connection; the output in out (NUL-terminated), the result. */
static long run_h1(const char *text, size_t len, char *out, size_t cap)
{
    mesh_webroot_h1 *c = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_webroot_h1_new(&c, w), MESH_OK);
    struct evbuffer *o = evbuffer_new();
    long rc = mesh_webroot_h1_input(c, (const uint8_t *)text, len, NOW, o);
    size_t n = evbuffer_get_length(o);
    n = n < cap - 1 ? n : cap - 1;
    evbuffer_remove(o, out, n);
    out[n] = '\0';
    evbuffer_free(o);
    mesh_webroot_h1_free(c);
    return rc;
}

static void test_h1_exact(void)
{
    static const char REQ[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                              "HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n";
    static const char WANT[] = "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n"
                               "Date: Fri, 04 Dec 2026 15:13:46 GMT\r\nContent-Type: text/html\r\n"
                               "Content-Length: 32\r\n"
                               "Last-Modified: Fri, 04 Dec 2026 15:13:45 GMT\r\n"
                               "Connection: keep-alive\r\nETag: \"6b12d8a9-20\"\r\n"
                               "Accept-Ranges: bytes\r\n\r\n<html><body>hello</body></html>\n"
                               "HTTP/1.1 404 Not Found\r\nServer: nginx/1.22.1\r\n"
                               "Date: Fri, 04 Dec 2026 15:13:46 GMT\r\nContent-Type: text/html\r\n"
                               "Content-Length: 153\r\nConnection: keep-alive\r\n\r\n";
    char out[4096];
    CU_ASSERT_EQUAL(run_h1(REQ, sizeof REQ - 1, out, sizeof out), (long)sizeof REQ - 1);
    CU_ASSERT_STRING_EQUAL(out, WANT);
    /* an Upgrade is answered as any GET, and what follows read on */
    static const char UPG[] = "GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                              "Upgrade: websocket\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    CU_ASSERT_EQUAL(run_h1(UPG, sizeof UPG - 1, out, sizeof out), (long)sizeof UPG - 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(strstr(out, "hi\n"), "HTTP/1.1 200 OK"));
    /* HTTP/1.0: answered, then closed; nothing after it is read */
    static const char OLD[] = "GET /a.txt HTTP/1.0\r\n\r\nGET /a.txt HTTP/1.0\r\n\r\n";
    CU_ASSERT_EQUAL(run_h1(OLD, sizeof OLD - 1, out, sizeof out), MESH_ERR_CLOSED);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Connection: close\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\r\n\r\nhi\n"));
    CU_ASSERT_PTR_NULL(strstr(strstr(out, "hi\n"), "HTTP/1.1"));
}

/* The request gets status line first (and Connection: close), then the connection closes. */
static void expect_close(const char *req, size_t len, const char *first)
{
    char out[4096];
    CU_ASSERT_EQUAL(run_h1(req, len, out, sizeof out), MESH_ERR_CLOSED);
    CU_ASSERT_EQUAL(strncmp(out, first, strlen(first)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Connection: close\r\n"));
    if (strncmp(out, first, strlen(first)) != 0)
        printf("\n  got: %.60s\n", out);
}

static void test_h1_limits(void)
{
    size_t cap = 3 * MESH_WEBROOT_HEADERS_MAX;
    char *req = malloc(cap);
    CU_ASSERT_FATAL(req != NULL);
    /* one header line over 8 KiB */
    int n = snprintf(req, cap, "GET / HTTP/1.1\r\nHost: x\r\nX: %0*d\r\n\r\n", 9000, 0);
    expect_close(req, (size_t)n, "HTTP/1.1 400 Bad Request\r\n");
    char out[4096];
    run_h1(req, (size_t)n, out, sizeof out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "<title>400 Request Header Or Cookie Too Large</title>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Content-Length: 233\r\n"));
    /* many lines, each allowed, over 32 KiB in all */
    n = snprintf(req, cap, "GET / HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 8; i++)
        n += snprintf(req + n, cap - (size_t)n, "X%d: %0*d\r\n", i, 5000, 0);
    n += snprintf(req + n, cap - (size_t)n, "\r\n");
    expect_close(req, (size_t)n, "HTTP/1.1 400 Bad Request\r\n");
    /* a target over 8 KiB */
    n = snprintf(req, cap, "GET /%0*d HTTP/1.1\r\nHost: x\r\n\r\n", 9000, 0);
    expect_close(req, (size_t)n, "HTTP/1.1 414 Request-URI Too Large\r\n");
    /* a body over 1 MiB: announced, or chunked */
    n = snprintf(req, cap, "POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n");
    expect_close(req, (size_t)n, "HTTP/1.1 413 Request Entity Too Large\r\n");
    free(req);
    size_t blen = MESH_WEBROOT_BODY_MAX + 4096;
    char *body = malloc(blen + 200);
    CU_ASSERT_FATAL(body != NULL);
    n = snprintf(body, 200,
                 "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%zx\r\n",
                 blen - 100);
    memset(body + n, 'a', blen - 100);
    expect_close(body, (size_t)n + blen - 100, "HTTP/1.1 413 Request Entity Too Large\r\n");
    free(body);
    /* a small body is read and dropped; the connection goes on */
    static const char SMALL[] = "POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                                "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    CU_ASSERT_EQUAL(run_h1(SMALL, sizeof SMALL - 1, out, sizeof out), (long)sizeof SMALL - 1);
    CU_ASSERT_EQUAL(strncmp(out, "HTTP/1.1 405 Not Allowed\r\n", 26), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out + 26, "HTTP/1.1 200 OK\r\n"));
}

static void test_h1_bad(void)
{
    static const char *const BAD[] = {
        "GET / HTTP/1.1\r\n\r\n",                       /* HTTP/1.1 without Host */
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", /* two */
        "GET /../secret.txt HTTP/1.1\r\nHost: x\r\n\r\n",
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++)
        expect_close(BAD[i], strlen(BAD[i]), "HTTP/1.1 400 Bad Request\r\n");
    /* closed is closed */
    mesh_webroot_h1 *c = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_webroot_h1_new(&c, w), MESH_OK);
    struct evbuffer *o = evbuffer_new();
    CU_ASSERT_EQUAL(mesh_webroot_h1_input(c, (const uint8_t *)"XYZ\r\n\r\n", 7, NOW, o),
                    MESH_ERR_CLOSED);
    size_t len = evbuffer_get_length(o);
    CU_ASSERT_EQUAL(mesh_webroot_h1_input(c, (const uint8_t *)"GET / HTTP/1.1\r\n", 16, NOW, o),
                    MESH_ERR_CLOSED);
    CU_ASSERT_EQUAL(evbuffer_get_length(o), len);
    evbuffer_free(o);
    mesh_webroot_h1_free(c);
    mesh_webroot_h1_free(NULL);
}

static void test_h1_flow(void)
{
    mesh_webroot_h1 *c = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_webroot_h1_new(&c, w), MESH_OK);
    struct evbuffer *o = evbuffer_new();
    CU_ASSERT_TRUE(mesh_webroot_h1_idle(c));
    /* a request in two pieces: not idle in between */
    CU_ASSERT_EQUAL(mesh_webroot_h1_input(c, (const uint8_t *)"GET /a.txt HT", 13, NOW, o), 13);
    CU_ASSERT_FALSE(mesh_webroot_h1_idle(c));
    CU_ASSERT_EQUAL(evbuffer_get_length(o), 0);
    CU_ASSERT_EQUAL(
        mesh_webroot_h1_input(c, (const uint8_t *)"TP/1.1\r\nHost: x\r\n\r\n", 19, NOW, o), 19);
    CU_ASSERT_TRUE(mesh_webroot_h1_idle(c));
    CU_ASSERT_EQUAL(mesh_webroot_h1_requests(c), 1);
    evbuffer_drain(o, evbuffer_get_length(o));
    /* 30 pipelined requests of a 100 KiB file: input pauses at 1 MiB of output, and goes on
     * once it has drained; every answer comes, whole */
    static const char ONE[] = "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n";
    enum { N = 30 };
    size_t len = N * (sizeof ONE - 1), off = 0, total = 0;
    char *req = malloc(len);
    CU_ASSERT_FATAL(req != NULL);
    for (int i = 0; i < N; i++)
        memcpy(req + i * (sizeof ONE - 1), ONE, sizeof ONE - 1);
    int pauses = 0;
    while (off < len) {
        long k = mesh_webroot_h1_input(c, (const uint8_t *)req + off, len - off, NOW, o);
        CU_ASSERT_FATAL(k >= 0);
        CU_ASSERT(evbuffer_get_length(o) <= MESH_WEBROOT_OUT_HIGH + BIG + 1024);
        if ((size_t)k < len - off)
            pauses++;
        off += (size_t)k;
        total += evbuffer_get_length(o);
        evbuffer_drain(o, evbuffer_get_length(o));
    }
    CU_ASSERT(pauses >= 2);
    CU_ASSERT_EQUAL(mesh_webroot_h1_requests(c), 1 + N);
    CU_ASSERT(total > (size_t)N * BIG);
    free(req);
    evbuffer_free(o);
    mesh_webroot_h1_free(c);
}

static void test_h1_not_modified(void)
{
    static const char IMS[] = "GET /a.txt HTTP/1.1\r\nHost: x\r\n"
                              "If-Modified-Since: Fri, 04 Dec 2026 15:13:45 GMT\r\n\r\n";
    static const char WANT[] = "HTTP/1.1 304 Not Modified\r\nServer: nginx/1.22.1\r\n"
                               "Date: Fri, 04 Dec 2026 15:13:46 GMT\r\n"
                               "Last-Modified: Fri, 04 Dec 2026 15:13:45 GMT\r\n"
                               "Connection: keep-alive\r\nETag: \"6b12d8a9-3\"\r\n\r\n";
    char out[2048];
    CU_ASSERT_EQUAL(run_h1(IMS, sizeof IMS - 1, out, sizeof out), (long)sizeof IMS - 1);
    CU_ASSERT_STRING_EQUAL(out, WANT);
    static const char INM[] = "GET /a.txt HTTP/1.1\r\nHost: x\r\n"
                              "If-None-Match: \"zz\", \"6b12d8a9-3\"\r\n\r\n";
    run_h1(INM, sizeof INM - 1, out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, WANT);
    static const char OLD[] = "GET /a.txt HTTP/1.1\r\nHost: x\r\n"
                              "If-Modified-Since: Thu, 03 Dec 2026 15:13:45 GMT\r\n\r\n";
    run_h1(OLD, sizeof OLD - 1, out, sizeof out);
    CU_ASSERT_EQUAL(strncmp(out, "HTTP/1.1 200 OK\r\n", 17), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\r\n\r\nhi\n"));
    static const char MISS[] = "GET /nope HTTP/1.1\r\nHost: x\r\nIf-None-Match: *\r\n\r\n";
    run_h1(MISS, sizeof MISS - 1, out, sizeof out);
    CU_ASSERT_EQUAL(strncmp(out, "HTTP/1.1 404 Not Found\r\n", 24), 0);
}

static void test_date(void)
{
    char d[32];
    CU_ASSERT_STRING_EQUAL(mesh_webroot_http_date(0, d), "Thu, 01 Jan 1970 00:00:00 GMT");
    CU_ASSERT_STRING_EQUAL(mesh_webroot_http_date(NOW, d), "Fri, 04 Dec 2026 15:13:46 GMT");
}

static CU_TestInfo webroot_tests[] = {
    {"open", test_open},
    {"files, index.html, 404, 403, 301", test_files},
    {"no path out of the root", test_escape},
    {"methods: 405, POST's 404", test_methods},
    {"h1: nginx's bytes, HEAD, HTTP/1.0 closes", test_h1_exact},
    {"h1: size limits 400, 414, 413", test_h1_limits},
    {"h1: bad requests 400 and close", test_h1_bad},
    {"h1: pieces, pipelining, output bound", test_h1_flow},
    {"h1: 304 for If-Modified-Since, If-None-Match", test_h1_not_modified},
    {"Date", test_date},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"webroot", suite_init, suite_clean, NULL, NULL, webroot_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
