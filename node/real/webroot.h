/* webroot.h — the decoy's built-in static site (meshara-node --web-root DIR): what a request
 * for a path gets, and an HTTP/1.1 connection's requests parsed by http-parser into answers,
 * the way nginx 1.22 with `root DIR;` and its defaults answers them (docs/stealth.md): GET and
 * HEAD of files, index.html for directories, 301 to the slash form of a directory, 403 for a
 * directory without index.html, 404 for what is not there, 405 for other methods, 400 for a
 * path that leaves DIR or a bad request, 414 / 400 / 413 past nginx's size limits. Error
 * pages and headers are nginx's bytes (Server: nginx/1.22.1).
 *
 * No path outside DIR is ever opened: the path is decoded and its dot segments resolved
 * before the file system is touched (climbing above DIR is a 400, as nginx says), and a
 * symbolic link inside DIR whose target lies outside it is refused (403, nginx's
 * `disable_symlinks` answer).
 *
 * Bytes in, bytes out: no sockets here (webroot_net.h serves them on loopback listeners).
 * The clock reaches these functions as an argument (the Date header), so a test or a fuzz
 * target gets the same bytes for the same input.
 */
#ifndef MESH_REAL_WEBROOT_H
#define MESH_REAL_WEBROOT_H

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

#include "meshara/error.h"

enum mesh_webroot_limits {
    MESH_WEBROOT_URI_MAX = 8 << 10,      /* request target: 414 beyond (nginx: one 8k buffer) */
    MESH_WEBROOT_LINE_MAX = 8 << 10,     /* one header line: 400 "... Too Large" beyond */
    MESH_WEBROOT_HEADERS_MAX = 32 << 10, /* the whole header section (nginx: 4 x 8k) */
    MESH_WEBROOT_BODY_MAX = 1 << 20,     /* request body: 413 beyond (client_max_body_size) */
    MESH_WEBROOT_HOST_MAX = 255,         /* Host header kept for a 301's Location */
    MESH_WEBROOT_INLINE_MAX = 64 << 10,  /* files up to this are read into memory */
    MESH_WEBROOT_OUT_HIGH = 1 << 20,     /* h1 input pauses while this much output is queued */
    MESH_WEBROOT_COND_MAX = 127,         /* If-Modified-Since, If-None-Match values kept */
};

typedef struct mesh_webroot mesh_webroot;

/* The site: dir must be an existing directory (resolved once, symbolic links and all).
 * MESH_OK; MESH_ERR_INVAL (NULL, empty); MESH_ERR_NOT_FOUND (no such directory);
 * MESH_ERR_NOMEM. */
int mesh_webroot_open(mesh_webroot **out, const char *dir);
/* NULL: no-op. */
void mesh_webroot_close(mesh_webroot *w);

/* One answer. body is either a static page (error pages, nginx's) or the file: fd >= 0 and
 * size bytes, owned by the reply until mesh_webroot_reply_free or a body function takes
 * it. */
typedef struct mesh_webroot_reply {
    int status;         /* 200, 301, 304, 400, 403, 404, 405, 413, 414 */
    const char *reason; /* "OK", "Not Found", ... as nginx says it */
    const char *type;   /* Content-Type; NULL for a 304 (no Content-Type, no length) */
    const char *page;   /* static body, or NULL when the body is the file */
    size_t size;        /* Content-Length */
    int fd;             /* the file, or -1 */
    int64_t mtime;      /* the file's (Last-Modified, ETag); 0 without a file */
    int close;          /* the connection closes after this answer (nginx's errors) */
    char location[8 + MESH_WEBROOT_HOST_MAX + MESH_WEBROOT_URI_MAX + 2]; /* 301's, or "" */
} mesh_webroot_reply;

/* Answer method (NUL-terminated: "GET", "POST" ...) for target (len bytes: origin-form
 * "/a/b?q" or absolute-form "http://h/a"), host the request's Host value or NULL (a 301's
 * Location: https://host/path/). Always fills *r (status 400 for a target that is not a
 * path); release it with mesh_webroot_reply_free. */
void mesh_webroot_answer(const mesh_webroot *w, const char *method, const char *target, size_t len,
                         const char *host, mesh_webroot_reply *r);
/* A 200 whose file the client has (ims equal to its Last-Modified, or inm naming its ETag or
 * "*"; either may be NULL) becomes nginx's 304: no body, the file closed. */
void mesh_webroot_conditional(mesh_webroot_reply *r, const char *ims, const char *inm);
/* The error page answer for status (400, 404, 405, 413, 414, 500 ...; 4001: nginx's
 * "400 Request Header Or Cookie Too Large"). */
void mesh_webroot_error(int status, mesh_webroot_reply *r);
/* Close the reply's file, if it still has it. NULL: no-op. */
void mesh_webroot_reply_free(mesh_webroot_reply *r);
/* Append the reply's body to out (a file's fd passes to out: r->fd becomes -1). MESH_OK;
 * MESH_ERR_IO (the file could not be read); MESH_ERR_NOMEM. */
int mesh_webroot_reply_body(mesh_webroot_reply *r, struct evbuffer *out);
/* "Fri, 04 Dec 2026 15:13:46 GMT" of a Unix time; out needs 32 bytes. Returns out. */
char *mesh_webroot_http_date(int64_t unix_time, char *out);
/* ETag value "%lx-%lx" of the reply's file; out needs 40 bytes. Returns out. */
char *mesh_webroot_etag(const mesh_webroot_reply *r, char *out);

/* ---- HTTP/1.1 connection ------------------------------------------------------------------ */

typedef struct mesh_webroot_h1 mesh_webroot_h1;

/* A connection's parser state; w borrowed (outlives it). MESH_OK; MESH_ERR_NOMEM. */
int mesh_webroot_h1_new(mesh_webroot_h1 **out, const mesh_webroot *w);
/* NULL: no-op. */
void mesh_webroot_h1_free(mesh_webroot_h1 *c);
/* Parse len bytes of the client's; each complete request's answer (head and body) is appended
 * to out, Date from now (Unix seconds). Returns the bytes consumed (fewer than len when out
 * holds MESH_WEBROOT_OUT_HIGH or more: call again with the rest once it has drained), or
 * MESH_ERR_CLOSED: the connection closes once out is sent (a request without keep-alive, or
 * an error that nginx answers and closes on; nothing more is read), or MESH_ERR_NOMEM. */
long mesh_webroot_h1_input(mesh_webroot_h1 *c, const uint8_t *data, size_t len, int64_t now,
                           struct evbuffer *out);
/* 1 between requests (nothing of a next one read yet), 0 inside one: which of nginx's
 * timeouts runs (keepalive_timeout or client_header_timeout). */
int mesh_webroot_h1_idle(const mesh_webroot_h1 *c);
/* Requests answered so far. */
unsigned long mesh_webroot_h1_requests(const mesh_webroot_h1 *c);

#endif
