/* fuzz_webroot_real.c — the --web-root static site's request path (node/real/webroot.c):
 * bytes a prober sends, through http-parser and our callbacks into answers, and a request
 * target through the path decoder alone. It must never crash, every answer must be one
 * nginx gives (a status line first, statuses from its list), and a 200 must be a file of the
 * site: the file served is compared, by device and inode, with the site's own files, so a
 * target that climbs out of the root (.., %2e%2e, a link) is a crash here.
 * Input: byte 0 picks where the rest is cut in two (fed as two reads) and the method of the
 * direct answer; the rest is the client's bytes, and also the target of the direct answer.
 * The site is a temporary directory made at start with fixed contents and dates (the same
 * bytes out for the same input) and removed at exit; nothing outside it is opened (the path
 * is resolved before the file system is asked). Seeds: tests/fuzz/corpus/fuzz_webroot_real/
 * (MESH_FUZZ_SEEDS=DIR writes them anew). Links meshara_real (tests/CMakeLists.txt). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "real/webroot.h"

enum { NOW = 1796397226, NFILES = 4 };

static const char *const FILES[NFILES] = {"index.html", "a.txt", "sub/index.html", "sub/s.css"};
static char dir[64];
static mesh_webroot *site;
static struct stat known[NFILES];

static void cleanup(void)
{
    char p[128];
    mesh_webroot_close(site);
    for (int i = NFILES - 1; i >= 0; i--) {
        snprintf(p, sizeof p, "%s/%s", dir, FILES[i]);
        unlink(p);
    }
    snprintf(p, sizeof p, "%s/sub", dir);
    rmdir(p);
    snprintf(p, sizeof p, "%s/empty", dir);
    rmdir(p);
    rmdir(dir);
}

static void make_site(void)
{
    char p[128];
    snprintf(dir, sizeof dir, "/tmp/mesh-fuzz-webroot-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    snprintf(p, sizeof p, "%s/sub", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/empty", dir);
    mkdir(p, 0755);
    for (int i = 0; i < NFILES; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, FILES[i]);
        FILE *f = fopen(p, "w");
        if (!f)
            abort();
        fprintf(f, "<p>%s</p>\n", FILES[i]);
        fclose(f);
        struct timespec ts[2] = {{NOW - 1, 0}, {NOW - 1, 0}};
        if (utimensat(AT_FDCWD, p, ts, 0) != 0 || stat(p, &known[i]) != 0)
            abort();
    }
    if (mesh_webroot_open(&site, dir) != MESH_OK)
        abort();
    atexit(cleanup);
}

static void check_reply(const mesh_webroot_reply *r)
{
    static const int OK[] = {200, 301, 400, 403, 404, 405, 413, 414, 500};
    int known_status = 0;
    for (size_t i = 0; i < sizeof OK / sizeof OK[0]; i++)
        known_status |= r->status == OK[i];
    if (!known_status || (r->status == 200) != (r->fd >= 0))
        __builtin_trap();
    if (r->fd < 0)
        return;
    struct stat st;
    int ours = 0;
    if (fstat(r->fd, &st) != 0)
        __builtin_trap();
    for (int i = 0; i < NFILES; i++)
        ours |= st.st_dev == known[i].st_dev && st.st_ino == known[i].st_ino;
    if (!ours || r->size != (size_t)st.st_size)
        __builtin_trap(); /* a file from outside the site */
}

/* Feed p in the given pieces; every answer starts with a status line. */
static void feed(const uint8_t *p, size_t n, size_t cut)
{
    mesh_webroot_h1 *c = NULL;
    struct evbuffer *out = evbuffer_new();
    if (!out || mesh_webroot_h1_new(&c, site) != MESH_OK)
        abort();
    size_t ends[2] = {cut, n}, off = 0;
    for (int k = 0; k < 2; k++) {
        while (off < ends[k]) {
            long got = mesh_webroot_h1_input(c, p + off, ends[k] - off, NOW, out);
            if (got == MESH_ERR_CLOSED)
                goto done;
            if (got < 0 || (size_t)got > ends[k] - off)
                __builtin_trap();
            off += (size_t)got;
            size_t len = evbuffer_get_length(out);
            if (got == 0 && len == 0)
                __builtin_trap(); /* paused with nothing to drain: it would hang */
            const unsigned char *head = evbuffer_pullup(out, len < 9 ? (ev_ssize_t)len : 9);
            if (len && (len < 9 || memcmp(head, "HTTP/1.1 ", 9) != 0))
                __builtin_trap();
            evbuffer_drain(out, len);
        }
    }
done:
    evbuffer_free(out);
    mesh_webroot_h1_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const METHODS[] = {"GET", "HEAD", "POST", "PUT"};
    if (!site)
        make_site();
    if (size < 1 || size > 4 * MESH_WEBROOT_HEADERS_MAX)
        return 0;
    size_t n = size - 1, cut = n * data[0] / 255;
    feed(data + 1, n, cut);
    mesh_webroot_reply r;
    mesh_webroot_answer(site, METHODS[data[0] & 3], (const char *)data + 1, n, "h", &r);
    check_reply(&r);
    mesh_webroot_reply_free(&r);
    return 0;
}

static void write_seeds(const char *d)
{
    static const char *const SEEDS[][2] = {
        {"get_root", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"},
        {"pipelined",
         "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\nHEAD /sub/ HTTP/1.1\r\nHost: x\r\n\r\n"},
        {"dir_redirect", "GET /sub?x=1 HTTP/1.1\r\nHost: h:1\r\n\r\n"},
        {"escape_dots", "GET /sub/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"},
        {"escape_pct", "GET /%2e%2e/%2E%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"},
        {"nul", "GET /a%00.txt HTTP/1.1\r\nHost: x\r\n\r\n"},
        {"absolute", "GET http://h/sub/s.css HTTP/1.1\r\nHost: x\r\n\r\n"},
        {"post_body", "POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"},
        {"chunked",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
        {"http10", "GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n"},
        {"no_host", "GET / HTTP/1.1\r\n\r\n"},
        {"put", "PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"},
        {"garbage", "\x16\x03\x01\x00\x10garbage\r\n\r\n"},
    };
    for (size_t i = 0; i < sizeof SEEDS / sizeof SEEDS[0]; i++) {
        uint8_t cut = (uint8_t)(i * 37 % 256);
        mesh_fuzz_seed(d, SEEDS[i][0], &cut, 1, SEEDS[i][1], strlen(SEEDS[i][1]));
    }
}

MESH_FUZZ_SEED_WRITER(write_seeds)
