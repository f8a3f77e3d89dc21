/* webroot_net.c — the static site's listeners and connections (webroot_net.h): bufferevents
 * on the caller's event_base; HTTP/1.x through webroot.h's parser, HTTP/2 through an nghttp2
 * server session whose streams are answered by mesh_webroot_answer.
 */
#include "real/webroot_net.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "real/webroot.h"

typedef struct conn conn;
typedef struct stream stream;

struct mesh_webroot_net {
    struct event_base *base;
    mesh_webroot *site;
    struct evconnlistener *l1, *l2;
    conn *conns; /* doubly linked */
    size_t nconns;
};

struct conn {
    mesh_webroot_net *n;
    conn *prev, *next;
    struct bufferevent *bev;
    struct event *timer;
    mesh_webroot_h1 *h1;  /* HTTP/1.x, or */
    nghttp2_session *h2;  /* HTTP/2 */
    stream *streams;      /* h2: the open ones, doubly linked (nghttp2_session_del frees
                           * its own streams without telling us) */
    int closing;          /* close once the output has drained */
    unsigned long served; /* h1: requests answered when the timer was last set */
    int was_idle;
};

/* An h2 stream's request and, once answered, its reply and the header values it points to. */
struct stream {
    stream *prev, *next;
    char method[16];
    char path[MESH_WEBROOT_URI_MAX + 1];
    char host[MESH_WEBROOT_HOST_MAX + 1];
    char ims[MESH_WEBROOT_COND_MAX + 1], inm[MESH_WEBROOT_COND_MAX + 1];
    int err; /* 414, 4001 (too large), 413: answered so instead */
    size_t body;
    int answered, head;
    mesh_webroot_reply r;
    size_t off; /* body bytes sent */
    char status[4], len[24], date[32], lm[32], etag[40];
};

static void stream_free(conn *c, stream *st)
{
    if (st->prev)
        st->prev->next = st->next;
    else
        c->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    mesh_webroot_reply_free(&st->r);
    free(st);
}

static void conn_free(conn *c)
{
    mesh_webroot_net *n = c->n;
    if (c->prev)
        c->prev->next = c->next;
    else
        n->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    n->nconns--;
    if (c->timer)
        event_free(c->timer);
    nghttp2_session_del(c->h2);
    while (c->streams)
        stream_free(c, c->streams);
    mesh_webroot_h1_free(c->h1);
    bufferevent_free(c->bev); /* BEV_OPT_CLOSE_ON_FREE: the socket closes, FIN */
    free(c);
}

static void arm(conn *c, int secs)
{
    struct timeval tv = {secs, 0};
    event_add(c->timer, &tv);
}

/* Close when what is queued has gone (at once if nothing is). */
static void close_soon(conn *c)
{
    c->closing = 1;
    bufferevent_disable(c->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        conn_free(c);
}

/* ---- HTTP/1.x ------------------------------------------------------------------------------ */

/* Feed what is buffered to the parser while the output has room; c may be freed. */
static void h1_pump(conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev), *out = bufferevent_get_output(c->bev);
    while (!c->closing && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        long k = mesh_webroot_h1_input(c->h1, v.iov_base, v.iov_len, (int64_t)time(NULL), out);
        if (k < 0) {
            close_soon(c);
            return;
        }
        evbuffer_drain(in, (size_t)k);
        if ((size_t)k < v.iov_len)
            break; /* paused: the output is full */
    }
    /* nginx: keepalive_timeout from an answer, client_header_timeout from a request's start */
    int idle = mesh_webroot_h1_idle(c->h1);
    unsigned long served = mesh_webroot_h1_requests(c->h1);
    if (idle && served != c->served)
        arm(c, MESH_WEBROOT_NET_KEEPALIVE_S);
    else if (!idle && c->was_idle)
        arm(c, MESH_WEBROOT_NET_HEADER_S);
    c->served = served;
    c->was_idle = idle;
}

/* ---- HTTP/2 -------------------------------------------------------------------------------- */

/* Queue what the session has to send while the output has room. 1: the connection is
 * closing (c may be freed already), 0: it goes on. */
static int h2_flush(conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    while (evbuffer_get_length(out) < MESH_WEBROOT_OUT_HIGH) {
        const uint8_t *p;
        ssize_t k = nghttp2_session_mem_send(c->h2, &p);
        if (k < 0) {
            c->closing = 1;
            break;
        }
        if (k == 0)
            break;
        if (evbuffer_add(out, p, (size_t)k) != 0) {
            c->closing = 1;
            break;
        }
    }
    if (c->closing || (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2))) {
        close_soon(c);
        return 1;
    }
    return 0;
}

static ssize_t h2_read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                            uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)s, (void)id, (void)ud;
    stream *st = src->ptr;
    size_t left = st->r.size - st->off, k = len < left ? len : left;
    if (st->r.page) {
        memcpy(buf, st->r.page + st->off, k);
    } else {
        ssize_t got = pread(st->r.fd, buf, k, (off_t)st->off);
        if (got <= 0 && k > 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* the file shrank: reset */
        k = (size_t)got;
    }
    st->off += k;
    if (st->off == st->r.size)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)k;
}

/* nginx indexes no response header (literals, the static table's names): the same lengths */
#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE             \
    }

/* Answer st: nginx's response headers over h2 (its h1 ones, lower case, no Connection). */
static int h2_answer(conn *c, int32_t id, stream *st)
{
    st->answered = 1;
    if (st->err)
        mesh_webroot_error(st->err, &st->r);
    else
        mesh_webroot_answer(c->n->site, st->method, st->path, strlen(st->path),
                            st->host[0] ? st->host : NULL, &st->r);
    mesh_webroot_conditional(&st->r, st->ims[0] ? st->ims : NULL, st->inm[0] ? st->inm : NULL);
    snprintf(st->status, sizeof st->status, "%d", st->r.status);
    snprintf(st->len, sizeof st->len, "%zu", st->r.size);
    nghttp2_nv nv[9] = {NV(":status", st->status), NV("server", "nginx/1.22.1"),
                        NV("date", mesh_webroot_http_date((int64_t)time(NULL), st->date))};
    size_t k = 3;
    if (st->r.type) { /* (a 304 has neither) */
        nv[k++] = (nghttp2_nv)NV("content-type", st->r.type);
        nv[k++] = (nghttp2_nv)NV("content-length", st->len);
    }
    if (st->r.mtime)
        nv[k++] = (nghttp2_nv)NV("last-modified", mesh_webroot_http_date(st->r.mtime, st->lm));
    if (st->r.location[0])
        nv[k++] = (nghttp2_nv)NV("location", st->r.location);
    if (st->r.mtime)
        nv[k++] = (nghttp2_nv)NV("etag", mesh_webroot_etag(&st->r, st->etag));
    if (st->r.status == 200)
        nv[k++] = (nghttp2_nv)NV("accept-ranges", "bytes");
    nghttp2_data_provider body = {.source.ptr = st, .read_callback = h2_read_body};
    int empty = st->head || st->r.size == 0 || st->r.status == 304;
    return nghttp2_submit_response(c->h2, id, nv, k, empty ? NULL : &body);
}

static int h2_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    conn *c = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    stream *st = calloc(1, sizeof *st);
    if (!st)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    st->r.fd = -1;
    st->next = c->streams;
    if (c->streams)
        c->streams->prev = st;
    c->streams = st;
    nghttp2_session_set_stream_user_data(s, f->hd.stream_id, st);
    return 0;
}

/* Copy v into a bounded field; *err = code when it does not fit (code 0: left as it is). */
static void put(char *dst, size_t cap, const uint8_t *v, size_t len, int *err, int code)
{
    if (len >= cap) {
        if (code) /* (0: just not kept) */
            *err = code;
        return;
    }
    memcpy(dst, v, len);
    dst[len] = '\0';
}

static int h2_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    (void)flags, (void)ud;
    stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!st || f->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (namelen == 7 && memcmp(name, ":method", 7) == 0)
        put(st->method, sizeof st->method, value, valuelen, &st->err, 405);
    else if (namelen == 5 && memcmp(name, ":path", 5) == 0)
        put(st->path, sizeof st->path, value, valuelen, &st->err, 414);
    else if ((namelen == 10 && memcmp(name, ":authority", 10) == 0) ||
             (namelen == 4 && memcmp(name, "host", 4) == 0 && !st->host[0]))
        put(st->host, sizeof st->host, value, valuelen, &st->err, 400);
    else if (namelen == 17 && memcmp(name, "if-modified-since", 17) == 0)
        put(st->ims, sizeof st->ims, value, valuelen, &st->err, 0); /* too long: no match */
    else if (namelen == 13 && memcmp(name, "if-none-match", 13) == 0)
        put(st->inm, sizeof st->inm, value, valuelen, &st->err, 0);
    else if (namelen + valuelen > MESH_WEBROOT_LINE_MAX)
        st->err = 4001;
    if (st->err == 405) /* a method too long for any list: nginx answers it 405 too */
        st->method[0] = '\0';
    return 0;
}

static int h2_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    conn *c = ud;
    stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!st || st->answered || !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
        return 0;
    st->head = strcmp(st->method, "HEAD") == 0;
    return h2_answer(c, f->hd.stream_id, st) == 0 ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int h2_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *ud)
{
    (void)flags, (void)data;
    stream *st = nghttp2_session_get_stream_user_data(s, id);
    if (!st || st->answered)
        return 0;
    st->body += len; /* read and dropped; past client_max_body_size: 413 at once */
    if (st->body > MESH_WEBROOT_BODY_MAX) {
        st->err = 413;
        return h2_answer(ud, id, st) == 0 ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}

static int h2_closed(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    (void)code;
    conn *c = ud;
    stream *st = nghttp2_session_get_stream_user_data(s, id);
    if (!st)
        return 0;
    nghttp2_session_set_stream_user_data(s, id, NULL);
    stream_free(c, st);
    if (!c->closing && !c->streams) /* the last request is done: keep-alive */
        arm(c, MESH_WEBROOT_NET_KEEPALIVE_S);
    return 0;
}

/* nginx 1.22's first frames: SETTINGS (128 streams, 64 KiB window, largest frames) and a
 * connection WINDOW_UPDATE to 2^31 - 1. */
static int h2_start(conn *c)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return MESH_ERR_NOMEM;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, h2_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, h2_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2_frame);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2_closed);
    int rc = nghttp2_session_server_new(&c->h2, cb, c);
    nghttp2_session_callbacks_del(cb);
    if (rc != 0)
        return MESH_ERR_NOMEM;
    static const nghttp2_settings_entry SETTINGS[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 128},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 65536},
        {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 16777215},
    };
    if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, SETTINGS, 3) != 0 ||
        nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, 0x7fffffff) != 0)
        return MESH_ERR_NOMEM;
    return MESH_OK;
}

static void h2_input(conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t len = evbuffer_get_length(in);
    const uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)len);
    ssize_t rv = len ? nghttp2_session_mem_recv(c->h2, p, len) : 0;
    evbuffer_drain(in, len);
    if (rv < 0) /* not HTTP/2 at all (a bad preface): GOAWAY(PROTOCOL_ERROR) and close */
        nghttp2_session_terminate_session(c->h2, NGHTTP2_PROTOCOL_ERROR);
    if (!h2_flush(c) && rv < 0)
        close_soon(c);
}

/* ---- connections --------------------------------------------------------------------------- */

static void on_read(struct bufferevent *bev, void *ud)
{
    (void)bev;
    conn *c = ud;
    if (c->h1)
        h1_pump(c);
    else
        h2_input(c);
}

static void on_write(struct bufferevent *bev, void *ud)
{
    (void)bev;
    conn *c = ud;
    if (c->closing) {
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
            conn_free(c);
        return;
    }
    if (c->h1)
        h1_pump(c); /* input paused on a full output */
    else
        h2_flush(c);
}

static void on_event(struct bufferevent *bev, short what, void *ud)
{
    (void)bev;
    (void)what; /* EOF or error: the client is gone, nothing more can reach it */
    conn_free(ud);
}

static void on_timer(evutil_socket_t fd, short what, void *ud)
{
    (void)fd, (void)what;
    conn *c = ud;
    if (c->h2 && !c->closing) { /* nginx says GOAWAY(NO_ERROR), then closes */
        nghttp2_session_terminate_session(c->h2, NGHTTP2_NO_ERROR);
        if (!h2_flush(c))
            close_soon(c);
        return;
    }
    conn_free(c);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *ud)
{
    (void)sa, (void)salen;
    mesh_webroot_net *n = ud;
    conn *c = n->nconns < MESH_WEBROOT_NET_CONNS ? calloc(1, sizeof *c) : NULL;
    if (!c) {
        close(fd);
        return;
    }
    c->n = n;
    c->was_idle = 1;
    c->bev = bufferevent_socket_new(n->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->timer = evtimer_new(n->base, on_timer, c);
    c->next = n->conns;
    if (n->conns)
        n->conns->prev = c;
    n->conns = c;
    n->nconns++;
    if (!c->bev) {
        close(fd);
        conn_free(c);
        return;
    }
    int rc = !c->timer    ? MESH_ERR_NOMEM
             : l == n->l1 ? mesh_webroot_h1_new(&c->h1, n->site)
                          : h2_start(c);
    if (rc != MESH_OK) {
        conn_free(c);
        return;
    }
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    /* h1 leaves input unread while its answers queue up: stop reading then */
    bufferevent_setwatermark(c->bev, EV_READ, 0, MESH_WEBROOT_OUT_HIGH);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    arm(c, MESH_WEBROOT_NET_HEADER_S);
    if (c->h2)
        h2_flush(c); /* SETTINGS and WINDOW_UPDATE at once, as nginx does */
}

/* Listen on 127.0.0.1, an ephemeral port, into *a. */
static struct evconnlistener *listen_lo(mesh_webroot_net *n, mesh_addr *a)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct evconnlistener *l =
        evconnlistener_new_bind(n->base, on_accept, n, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                64, (struct sockaddr *)&sin, sizeof sin);
    socklen_t len = sizeof sin;
    if (!l || getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&sin, &len) != 0) {
        if (l)
            evconnlistener_free(l);
        return NULL;
    }
    *a = mesh_addr_v4(INADDR_LOOPBACK, ntohs(sin.sin_port));
    return l;
}

int mesh_webroot_net_new(mesh_webroot_net **out, struct event_base *base, const char *dir,
                         mesh_addr *h1, mesh_addr *h2)
{
    if (!out || !base || !dir || !h1 || !h2)
        return MESH_ERR_INVAL;
    mesh_webroot_net *n = calloc(1, sizeof *n);
    if (!n)
        return MESH_ERR_NOMEM;
    n->base = base;
    int rc = mesh_webroot_open(&n->site, dir);
    if (rc != MESH_OK)
        goto fail_site;
    rc = MESH_ERR_ADDR;
    if (!(n->l1 = listen_lo(n, h1)))
        goto fail_l1;
    if (!(n->l2 = listen_lo(n, h2)))
        goto fail_l2;
    *out = n;
    return MESH_OK;
fail_l2:
    evconnlistener_free(n->l1);
fail_l1:
    mesh_webroot_close(n->site);
fail_site:
    free(n);
    return rc;
}

void mesh_webroot_net_free(mesh_webroot_net *n)
{
    if (!n)
        return;
    while (n->conns)
        conn_free(n->conns);
    evconnlistener_free(n->l1);
    evconnlistener_free(n->l2);
    mesh_webroot_close(n->site);
    free(n);
}
