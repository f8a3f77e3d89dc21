/* webroot.c — the static site's answers and its HTTP/1.1 parser glue (webroot.h). The bytes
 * of the pages and headers were taken from nginx 1.22.1 on Debian 12 answering the same
 * requests (docs/stealth.md, "The built-in site").
 */
#include "real/webroot.h"

#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NGINX "nginx/1.22.1"
#define PAGE(t)                                                                                    \
    "<html>\r\n<head><title>" t "</title></head>\r\n<body>\r\n<center><h1>" t                      \
    "</h1></center>\r\n<hr><center>" NGINX "</center>\r\n</body>\r\n</html>\r\n"

struct mesh_webroot {
    char *root; /* resolved, without a trailing slash ("" for "/") */
    size_t root_len;
};

static const struct {
    int status;
    const char *reason, *page;
} PAGES[] = {
    {301, "Moved Permanently", PAGE("301 Moved Permanently")},
    {400, "Bad Request", PAGE("400 Bad Request")},
    {4001, "Bad Request",
     "<html>\r\n<head><title>400 Request Header Or Cookie Too Large</title></head>\r\n<body>\r\n"
     "<center><h1>400 Bad Request</h1></center>\r\n<center>Request Header Or Cookie Too "
     "Large</center>\r\n<hr><center>" NGINX "</center>\r\n</body>\r\n</html>\r\n"},
    {403, "Forbidden", PAGE("403 Forbidden")},
    {404, "Not Found", PAGE("404 Not Found")},
    {405, "Not Allowed", PAGE("405 Not Allowed")},
    {413, "Request Entity Too Large", PAGE("413 Request Entity Too Large")},
    {414, "Request-URI Too Large", PAGE("414 Request-URI Too Large")},
    {500, "Internal Server Error", PAGE("500 Internal Server Error")},
};

/* Content-Type by extension: the common part of nginx's mime.types. */
static const struct {
    const char *ext, *type;
} TYPES[] = {
    {"html", "text/html"},        {"htm", "text/html"},
    {"css", "text/css"},          {"js", "application/javascript"},
    {"json", "application/json"}, {"txt", "text/plain"},
    {"xml", "text/xml"},          {"png", "image/png"},
    {"jpg", "image/jpeg"},        {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},         {"svg", "image/svg+xml"},
    {"ico", "image/x-icon"},      {"webp", "image/webp"},
    {"woff", "font/woff"},        {"woff2", "font/woff2"},
    {"pdf", "application/pdf"},   {"zip", "application/zip"},
    {"mp4", "video/mp4"},         {"wasm", "application/wasm"},
};

int mesh_webroot_open(mesh_webroot **out, const char *dir)
{
    if (!out || !dir || !*dir)
        return MESH_ERR_INVAL;
    struct stat st;
    char *root = realpath(dir, NULL);
    if (!root)
        return errno == ENOMEM ? MESH_ERR_NOMEM : MESH_ERR_NOT_FOUND;
    if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) {
        free(root);
        return MESH_ERR_NOT_FOUND;
    }
    mesh_webroot *w = calloc(1, sizeof *w);
    if (!w) {
        free(root);
        return MESH_ERR_NOMEM;
    }
    w->root_len = strcmp(root, "/") == 0 ? 0 : strlen(root);
    root[w->root_len] = '\0';
    w->root = root;
    *out = w;
    return MESH_OK;
}

void mesh_webroot_close(mesh_webroot *w)
{
    if (!w)
        return;
    free(w->root);
    free(w);
}

void mesh_webroot_error(int status, mesh_webroot_reply *r)
{
    size_t i = 0;
    while (i + 1 < sizeof PAGES / sizeof PAGES[0] && PAGES[i].status != status)
        i++; /* (an unknown status gets the last page, 500) */
    memset(r, 0, sizeof *r);
    r->status = PAGES[i].status == 4001 ? 400 : PAGES[i].status;
    r->reason = PAGES[i].reason;
    r->type = "text/html";
    r->page = PAGES[i].page;
    r->size = strlen(r->page);
    r->fd = -1;
    r->close = r->status == 400 || r->status == 413 || r->status == 414;
}

void mesh_webroot_reply_free(mesh_webroot_reply *r)
{
    if (r && r->fd >= 0) {
        close(r->fd);
        r->fd = -1;
    }
}

static int unhex(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* target (origin- or absolute-form) to a path relative to the root, percent-decoded and its
 * dot segments resolved: "a/b" ("" for the root itself) in out (URI_MAX + 1 bytes), *slash
 * set when it names a directory ("/a/", "/a/."). MESH_OK; MESH_ERR_MALFORMED (not a path, a
 * bad escape, a NUL, a ".." above the root: nginx's 400s). */
static int normalize(const char *t, size_t len, char *out, int *slash)
{
    size_t i = 0, o = 0, seg = 0; /* seg: where the current segment starts in out */
    if (len > 8 && strncasecmp(t, "https://", 8) == 0)
        i = 8;
    else if (len > 7 && strncasecmp(t, "http://", 7) == 0)
        i = 7;
    if (i) /* absolute-form: the path starts after the authority */
        while (i < len && t[i] != '/' && t[i] != '?' && t[i] != '#')
            i++;
    else if (len == 0 || t[0] != '/')
        return MESH_ERR_MALFORMED;
    *slash = 1; /* "http://h" alone is the root */
    while (i < len && t[i] != '?' && t[i] != '#') {
        int ch = (unsigned char)t[i++];
        if (ch == '%') {
            int hi = i + 1 < len ? unhex(t[i]) : -1, lo = hi >= 0 ? unhex(t[i + 1]) : -1;
            if (lo < 0)
                return MESH_ERR_MALFORMED;
            ch = hi << 4 | lo;
            i += 2;
            if (ch == 0)
                return MESH_ERR_MALFORMED;
        }
        if (ch != '/') {
            if (o >= MESH_WEBROOT_URI_MAX)
                return MESH_ERR_MALFORMED;
            out[o++] = (char)ch;
            *slash = 0;
            continue;
        }
        /* a segment ended at out[seg..o) */
        size_t n = o - seg;
        if (n == 1 && out[seg] == '.') {
            o = seg;
        } else if (n == 2 && out[seg] == '.' && out[seg + 1] == '.') {
            if (seg == 0)
                return MESH_ERR_MALFORMED;
            o = seg - 1; /* drop the '/' before "..", then the segment before it */
            while (o > 0 && out[o - 1] != '/')
                o--;
        } else if (n > 0) {
            out[o++] = '/';
        }
        seg = o;
        *slash = 1;
    }
    /* the last segment, not followed by '/' */
    size_t n = o - seg;
    if (n == 1 && out[seg] == '.') {
        o = seg, *slash = 1;
    } else if (n == 2 && out[seg] == '.' && out[seg + 1] == '.') {
        if (seg == 0)
            return MESH_ERR_MALFORMED;
        o = seg - 1;
        while (o > 0 && out[o - 1] != '/')
            o--;
        *slash = 1;
    }
    if (o > 0 && out[o - 1] == '/')
        o--;
    out[o] = '\0';
    return MESH_OK;
}

static const char *type_of(const char *name)
{
    const char *dot = strrchr(name, '.'), *sl = strrchr(name, '/');
    if (dot && (!sl || dot > sl))
        for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
            if (strcasecmp(dot + 1, TYPES[i].ext) == 0)
                return TYPES[i].type;
    return "application/octet-stream";
}

/* 1 if the resolved path p is the root or lies under it. */
static int inside(const mesh_webroot *w, const char *p)
{
    return strncmp(p, w->root, w->root_len) == 0 && (p[w->root_len] == '/' || !p[w->root_len]);
}

/* Status for a path that did not resolve (or resolved outside): nginx's 403 or 404. */
static int missing(const mesh_webroot *w, const char *fs, int slash, int err)
{
    if (err == EACCES)
        return 403;
    if (!slash)
        return 404;
    /* "/dir/" without index.html: 403 if the directory is there (and ours), else 404 */
    char dir[PATH_MAX], real[PATH_MAX];
    size_t n = strlen(fs) - strlen("index.html");
    memcpy(dir, fs, n);
    dir[n] = '\0';
    struct stat st;
    if (!realpath(dir, real))
        return errno == EACCES ? 403 : 404;
    return inside(w, real) && stat(real, &st) == 0 && S_ISDIR(st.st_mode) ? 403 : 404;
}

/* A Host nginx accepts (ngx_http_validate_host, roughly): printable, no slash, no "..";
 * it goes into a 301's Location, so never a control byte. */
static int host_ok(const char *h)
{
    for (const char *p = h; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || *p == '/' || *p == '\\' || (p[0] == '.' && p[1] == '.'))
            return 0;
    return 1;
}

void mesh_webroot_answer(const mesh_webroot *w, const char *method, const char *target, size_t len,
                         const char *host, mesh_webroot_reply *r)
{
    char path[MESH_WEBROOT_URI_MAX + 1], fs[PATH_MAX], real[PATH_MAX];
    int slash;
    if (normalize(target, len, path, &slash) != MESH_OK || (host && !host_ok(host)))
        return mesh_webroot_error(400, r);
    int post = strcmp(method, "POST") == 0;
    if (!post && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return mesh_webroot_error(405, r); /* nginx's static handler, before any lookup */
    int n = snprintf(fs, sizeof fs, "%s/%s%s%s", w->root, path, slash && *path ? "/" : "",
                     slash ? "index.html" : "");
    if (n < 0 || (size_t)n >= sizeof fs)
        return mesh_webroot_error(404, r);
    if (!realpath(fs, real))
        return mesh_webroot_error(missing(w, fs, slash, errno), r);
    struct stat st;
    if (!inside(w, real)) /* a symbolic link out of the site */
        return mesh_webroot_error(403, r);
    if (stat(real, &st) != 0)
        return mesh_webroot_error(404, r);
    if (S_ISDIR(st.st_mode) && !slash) {
        mesh_webroot_error(301, r);
        snprintf(r->location, sizeof r->location, "https://%s/%s/", host ? host : "localhost",
                 path);
        r->close = 0;
        return;
    }
    if (S_ISDIR(st.st_mode))
        return mesh_webroot_error(403, r); /* a directory named index.html */
    if (!S_ISREG(st.st_mode))
        return mesh_webroot_error(404, r);
    if (post)
        return mesh_webroot_error(405, r);
    int fd = open(real, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mesh_webroot_error(errno == EACCES ? 403 : 404, r);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return mesh_webroot_error(404, r);
    }
    memset(r, 0, sizeof *r);
    r->status = 200;
    r->reason = "OK";
    r->type = type_of(real);
    r->size = (size_t)st.st_size;
    r->fd = fd;
    r->mtime = (int64_t)st.st_mtime;
}

void mesh_webroot_conditional(mesh_webroot_reply *r, const char *ims, const char *inm)
{
    char lm[32], etag[40];
    if (r->status != 200)
        return;
    int have = ims && strcmp(ims, mesh_webroot_http_date(r->mtime, lm)) == 0;
    have |= inm && (strcmp(inm, "*") == 0 || strstr(inm, mesh_webroot_etag(r, etag)) != NULL);
    if (!have)
        return;
    mesh_webroot_reply_free(r);
    r->status = 304;
    r->reason = "Not Modified";
    r->type = NULL;
}

int mesh_webroot_reply_body(mesh_webroot_reply *r, struct evbuffer *out)
{
    if (r->page)
        return evbuffer_add(out, r->page, r->size) == 0 ? MESH_OK : MESH_ERR_NOMEM;
    if (r->fd < 0 || r->size == 0 || r->status == 304)
        return MESH_OK;
    int fd = r->fd;
    r->fd = -1;
    if (r->size > MESH_WEBROOT_INLINE_MAX) /* libevent sends it from the file; owns fd */
        return evbuffer_add_file(out, fd, 0, (ev_off_t)r->size) == 0 ? MESH_OK : MESH_ERR_NOMEM;
    uint8_t buf[MESH_WEBROOT_INLINE_MAX];
    size_t got = 0;
    while (got < r->size) {
        ssize_t k = pread(fd, buf + got, r->size - got, (off_t)got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    if (got < r->size) /* the file shrank: the promised length cannot be kept */
        return MESH_ERR_IO;
    return evbuffer_add(out, buf, got) == 0 ? MESH_OK : MESH_ERR_NOMEM;
}

char *mesh_webroot_http_date(int64_t unix_time, char *out)
{
    static const char *const DAYS[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const MONTHS[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)unix_time;
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        memset(&tm, 0, sizeof tm);
    snprintf(out, 32, "%s, %02d %s %04d %02d:%02d:%02d GMT", DAYS[tm.tm_wday % 7], tm.tm_mday,
             MONTHS[tm.tm_mon % 12], (tm.tm_year + 1900) % 10000, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return out;
}

char *mesh_webroot_etag(const mesh_webroot_reply *r, char *out)
{
    snprintf(out, 40, "\"%llx-%zx\"", (unsigned long long)r->mtime, r->size);
    return out;
}

/* ---- HTTP/1.1 connection ------------------------------------------------------------------ */

struct mesh_webroot_h1 {
    const mesh_webroot *w;
    http_parser p;
    char url[MESH_WEBROOT_URI_MAX + 1];
    size_t url_len;
    char field[18]; /* the current header's name, its first bytes (which one is it?) */
    size_t field_len;
    char host[MESH_WEBROOT_HOST_MAX + 1];
    size_t host_len;
    char ims[MESH_WEBROOT_COND_MAX + 1], inm[MESH_WEBROOT_COND_MAX + 1];
    size_t ims_len, inm_len; /* above COND_MAX: too long to match anything */
    int has_host, in_host, in_value, in_ims, in_inm;
    size_t line_len, head_len;
    uint64_t body_len;
    int err;     /* the status an error is answered with (0: a parse error, 400) */
    int in_msg;  /* a request has begun and not been answered */
    int closing; /* answered for the last time */
    int nomem;
    struct evbuffer *out; /* during mesh_webroot_h1_input */
    int64_t now;
    unsigned long requests;
};

static int h1_begin(http_parser *p)
{
    mesh_webroot_h1 *c = p->data;
    c->url_len = c->host_len = c->field_len = c->line_len = c->head_len = 0;
    c->has_host = c->in_host = c->in_value = c->in_ims = c->in_inm = 0;
    c->ims_len = c->inm_len = 0;
    c->body_len = 0;
    c->in_msg = 1;
    return 0;
}

static int h1_url(http_parser *p, const char *at, size_t len)
{
    mesh_webroot_h1 *c = p->data;
    if (len > MESH_WEBROOT_URI_MAX - c->url_len) {
        c->err = 414;
        return -1;
    }
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    return 0;
}

/* Bound a header line and the header section (nginx's large_client_header_buffers). */
static int h1_count(mesh_webroot_h1 *c, size_t len)
{
    c->line_len += len;
    c->head_len += len;
    if (c->line_len > MESH_WEBROOT_LINE_MAX || c->head_len > MESH_WEBROOT_HEADERS_MAX) {
        c->err = 4001;
        return -1;
    }
    return 0;
}

static int h1_field(http_parser *p, const char *at, size_t len)
{
    mesh_webroot_h1 *c = p->data;
    if (c->in_value) { /* a new header line */
        c->in_value = c->in_host = c->in_ims = c->in_inm = 0;
        c->field_len = c->line_len = 0;
    }
    for (size_t i = 0; i < len && c->field_len < sizeof c->field; i++)
        c->field[c->field_len++] = at[i];
    return h1_count(c, len);
}

static int h1_value(http_parser *p, const char *at, size_t len)
{
    mesh_webroot_h1 *c = p->data;
    if (!c->in_value) {
        c->in_value = 1;
        c->in_host = c->field_len == 4 && strncasecmp(c->field, "host", 4) == 0;
        if (c->in_host && c->has_host) { /* nginx: "client sent duplicate host header" */
            c->err = 400;
            return -1;
        }
        c->has_host |= c->in_host;
        c->in_ims = c->field_len == 17 && strncasecmp(c->field, "if-modified-since", 17) == 0;
        c->in_inm = c->field_len == 13 && strncasecmp(c->field, "if-none-match", 13) == 0;
    }
    if (c->in_ims || c->in_inm) { /* kept if short enough to be a date or an ETag list */
        char *dst = c->in_ims ? c->ims : c->inm;
        size_t *n = c->in_ims ? &c->ims_len : &c->inm_len;
        if (*n <= MESH_WEBROOT_COND_MAX && len <= MESH_WEBROOT_COND_MAX - *n)
            memcpy(dst + *n, at, len);
        *n += len; /* (bounded by the header limits) */
    }
    if (c->in_host) {
        if (len > MESH_WEBROOT_HOST_MAX - c->host_len) {
            c->err = 400;
            return -1;
        }
        memcpy(c->host + c->host_len, at, len);
        c->host_len += len;
    }
    return h1_count(c, len);
}

static int h1_headers_done(http_parser *p)
{
    mesh_webroot_h1 *c = p->data;
    if (p->http_major == 1 && p->http_minor >= 1 && !c->has_host)
        c->err = 400; /* nginx: "client sent HTTP/1.1 request without Host header" */
    else if (p->content_length != ULLONG_MAX && p->content_length > MESH_WEBROOT_BODY_MAX)
        c->err = 413;
    return c->err ? -1 : 0;
}

static int h1_body(http_parser *p, const char *at, size_t len)
{
    (void)at;
    mesh_webroot_h1 *c = p->data;
    c->body_len += len; /* read and dropped, as nginx discards a static request's body */
    if (c->body_len > MESH_WEBROOT_BODY_MAX) {
        c->err = 413;
        return -1;
    }
    return 0;
}

/* Head and body of r to c->out; r freed. */
static void h1_send(mesh_webroot_h1 *c, mesh_webroot_reply *r, int keep, int head_only)
{
    char date[32], lm[32], etag[40];
    struct evbuffer *o = c->out;
    int bad = evbuffer_add_printf(o, "HTTP/1.1 %d %s\r\nServer: " NGINX "\r\nDate: %s\r\n",
                                  r->status, r->reason, mesh_webroot_http_date(c->now, date)) < 0;
    if (r->type) /* (a 304 has neither) */
        bad |= evbuffer_add_printf(o, "Content-Type: %s\r\nContent-Length: %zu\r\n", r->type,
                                   r->size) < 0;
    if (r->mtime)
        bad |= evbuffer_add_printf(o, "Last-Modified: %s\r\n",
                                   mesh_webroot_http_date(r->mtime, lm)) < 0;
    if (r->location[0])
        bad |= evbuffer_add_printf(o, "Location: %s\r\n", r->location) < 0;
    bad |= evbuffer_add_printf(o, "Connection: %s\r\n", keep ? "keep-alive" : "close") < 0;
    if (r->mtime)
        bad |= evbuffer_add_printf(o, "ETag: %s\r\n%s", mesh_webroot_etag(r, etag),
                                   r->status == 200 ? "Accept-Ranges: bytes\r\n" : "") < 0;
    bad |= evbuffer_add(o, "\r\n", 2) != 0;
    if (!head_only && !bad && mesh_webroot_reply_body(r, o) != MESH_OK)
        c->closing = 1; /* the head promised bytes that cannot come: close, as nginx does */
    mesh_webroot_reply_free(r);
    c->nomem |= bad;
    c->requests++;
    if (!keep)
        c->closing = 1;
}

static int h1_complete(http_parser *p)
{
    mesh_webroot_h1 *c = p->data;
    mesh_webroot_reply r;
    c->url[c->url_len] = '\0';
    c->host[c->host_len] = '\0';
    mesh_webroot_answer(c->w, http_method_str((enum http_method)p->method), c->url, c->url_len,
                        c->has_host ? c->host : NULL, &r);
    c->ims[c->ims_len <= MESH_WEBROOT_COND_MAX ? c->ims_len : 0] = '\0';
    c->inm[c->inm_len <= MESH_WEBROOT_COND_MAX ? c->inm_len : 0] = '\0';
    mesh_webroot_conditional(&r, c->ims[0] ? c->ims : NULL, c->inm[0] ? c->inm : NULL);
    h1_send(c, &r, !r.close && http_should_keep_alive(p), p->method == HTTP_HEAD);
    c->in_msg = 0;
    if (c->closing || c->nomem)
        return -1;
    if (evbuffer_get_length(c->out) >= MESH_WEBROOT_OUT_HIGH)
        http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings H1 = {
    .on_message_begin = h1_begin,
    .on_url = h1_url,
    .on_header_field = h1_field,
    .on_header_value = h1_value,
    .on_headers_complete = h1_headers_done,
    .on_body = h1_body,
    .on_message_complete = h1_complete,
};

int mesh_webroot_h1_new(mesh_webroot_h1 **out, const mesh_webroot *w)
{
    mesh_webroot_h1 *c = calloc(1, sizeof *c);
    if (!c)
        return MESH_ERR_NOMEM;
    c->w = w;
    http_parser_init(&c->p, HTTP_REQUEST);
    c->p.data = c;
    *out = c;
    return MESH_OK;
}

void mesh_webroot_h1_free(mesh_webroot_h1 *c)
{
    free(c);
}

long mesh_webroot_h1_input(mesh_webroot_h1 *c, const uint8_t *data, size_t len, int64_t now,
                           struct evbuffer *out)
{
    if (c->closing)
        return MESH_ERR_CLOSED;
    if (len == 0 || evbuffer_get_length(out) >= MESH_WEBROOT_OUT_HIGH)
        return 0; /* (a zero length would tell http-parser the stream ended) */
    c->out = out;
    c->now = now;
    /* http-parser stops after a request asking for an Upgrade (or a CONNECT), as a proxy
     * would want; a static site answers it and reads on, as nginx does */
    size_t n = 0, k;
    enum http_errno e;
    do {
        k = http_parser_execute(&c->p, &H1, (const char *)data + n, len - n);
        n += k;
        e = HTTP_PARSER_ERRNO(&c->p);
    } while (e == HPE_OK && k > 0 && n < len && !c->closing && !c->nomem);
    c->out = NULL;
    if (c->nomem)
        return MESH_ERR_NOMEM;
    if (c->closing)
        return MESH_ERR_CLOSED;
    if (e == HPE_PAUSED) {
        http_parser_pause(&c->p, 0);
        return (long)n;
    }
    if (e == HPE_OK)
        return (long)n;
    /* a request nginx would not take: its error page, then close */
    mesh_webroot_reply r;
    mesh_webroot_error(c->err ? c->err : 400, &r);
    c->out = out;
    h1_send(c, &r, 0, 0);
    c->out = NULL;
    c->closing = 1;
    return c->nomem ? MESH_ERR_NOMEM : MESH_ERR_CLOSED;
}

int mesh_webroot_h1_idle(const mesh_webroot_h1 *c)
{
    return !c->in_msg;
}

unsigned long mesh_webroot_h1_requests(const mesh_webroot_h1 *c)
{
    return c->requests;
}
