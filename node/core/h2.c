/* h2.c — HTTP/2 framing mode over nghttp2's sans-I/O API (see h2.h for the mapping and the
 * error contract).
 *
 * Invariants:
 *  - every stream we know of has one h2_stream record (nghttp2 stream user data), linked in
 *    h->streams so mesh_h2_free can release them (nghttp2_session_del calls no callback);
 *  - the client has at most one message request whose body is still being read (h->sending):
 *    bodies go out one after another, so the server completes them in order;
 *  - after the first error h->err is set, recv/send return it, and pull only flushes what
 *    nghttp2 still has (our GOAWAY).
 */
#include "core/h2.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/frame.h"
#include "meshara/error.h"

/* Windows like a mainstream browser's (6 MiB per stream, 15 MiB per connection): we copy
 * received bytes out at once, so the window only bounds bytes in flight, and a 64 KiB default
 * window would cap a 40 ms path at 1.6 MB/s. */
enum {
    H2_STREAM_WINDOW = 6 << 20,
    H2_CONN_WINDOW = 15 << 20,
    H2_KEEP_BUF = 16 << 10,   /* event reassembly buffer kept between frames (idle memory) */
    H2_FIRST_BODY = 16 << 10, /* first allocation of a body of unknown length */
};

#define PATH_MESSAGE "/api/v1/message"
#define PATH_EVENTS "/api/v1/events"
#define CONTENT_TYPE "application/octet-stream"

typedef enum h2_kind {
    H2_UNROUTED, /* server: request headers still arriving */
    H2_MESSAGE,  /* a POST /api/v1/message */
    H2_EVENTS,   /* the POST /api/v1/events */
    H2_REJECTED, /* server: answered 404/405/409; its body is dropped */
} h2_kind;

typedef enum h2_path { PATH_OTHER, PATH_IS_MESSAGE, PATH_IS_EVENTS } h2_path;

typedef struct h2_msg { /* an outgoing message, copied */
    struct h2_msg *next;
    size_t len;
    size_t off; /* bytes handed to nghttp2, counting the server's length prefix */
    uint8_t data[];
} h2_msg;

typedef struct h2_stream {
    struct h2_stream *prev, *next; /* h->streams */
    int32_t id;
    h2_kind kind;
    int post;               /* server: :method is POST */
    h2_path path;           /* server: :path */
    int64_t content_length; /* server: announced body length, -1 unknown */
    int status;             /* client: the response's :status, 0 before */
    uint8_t *body;          /* server: message body so far */
    size_t len, cap;
    h2_msg *msg; /* client: the message this request carries, until its body is read */
} h2_stream;

struct mesh_h2 {
    nghttp2_session *ng;
    int is_server;
    size_t max_message;
    mesh_h2_cbs cbs;
    void *ud;
    int err;      /* first error, final */
    int err_told; /* err was returned to the caller once */
    int goaway_queued;
    unsigned turn; /* client: bumped when a body ends or a message stream closes */
    int started;   /* client: events request submitted */
    int peer_goaway;
    uint32_t peer_goaway_code;
    char authority[MESH_H2_MAX_AUTHORITY + 1];
    h2_stream *streams;

    /* outgoing messages: the server's wait for the events stream, the client's for a request */
    h2_msg *q_head, *q_tail;
    size_t queued;     /* payload bytes not yet handed to nghttp2 */
    size_t queued_acc; /* queued + MESH_H2_MSG_OVERHEAD per message: the AGAIN bound */

    /* client */
    h2_stream *sending; /* the message request whose body is being read, or NULL */
    int open_msgs;      /* message requests not yet closed */
    h2_stream *events;  /* client: our events request; server: the client's */
    int ev_deferred;    /* server: the events data source is waiting for a message */

    mesh_frame_dec ev; /* client: the events body's frames */

    size_t partial; /* server: bytes in bodies not yet complete (all streams) */

    /* pull: frames gathered into one chunk; a frame that did not fit waits in pend
     * (nghttp2's buffer, valid until the next mem_send) */
    uint8_t *out;
    const uint8_t *pend;
    size_t pend_len;
};

/* ---- helpers ----------------------------------------------------------------------------- */

static int fail(mesh_h2 *h, int code)
{
    if (!h->err)
        h->err = code; /* a callback may have recorded the cause already */
    if (h->goaway_queued)
        return h->err;
    h->goaway_queued = 1;
    uint32_t h2code = NGHTTP2_INTERNAL_ERROR;
    if (h->err == MESH_ERR_PROTOCOL)
        h2code = NGHTTP2_PROTOCOL_ERROR;
    else if (h->err == MESH_ERR_TOO_BIG || h->err == MESH_ERR_LIMIT)
        h2code = NGHTTP2_ENHANCE_YOUR_CALM;
    else if (h->err == MESH_ERR_CLOSED)
        h2code = NGHTTP2_NO_ERROR;
    /* Queues a GOAWAY for mesh_h2_pull; a no-op when nghttp2 already terminated. */
    nghttp2_session_terminate_session(h->ng, h2code);
    return h->err;
}

/* Record an error from inside a nghttp2 callback and make nghttp2 stop at once. */
static int cb_fail(mesh_h2 *h, int code)
{
    if (!h->err)
        h->err = code;
    return NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int map_ng(const mesh_h2 *h, long rv)
{
    if (rv == NGHTTP2_ERR_CALLBACK_FAILURE && h->err)
        return h->err;
    if (rv == NGHTTP2_ERR_NOMEM)
        return MESH_ERR_NOMEM;
    return MESH_ERR_PROTOCOL;
}

static h2_stream *stream_new(mesh_h2 *h, h2_kind kind)
{
    h2_stream *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->kind = kind;
    st->content_length = -1;
    st->next = h->streams;
    if (h->streams)
        h->streams->prev = st;
    h->streams = st;
    return st;
}

static void stream_free(mesh_h2 *h, h2_stream *st)
{
    if (st->prev)
        st->prev->next = st->next;
    else
        h->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    if (h->sending == st)
        h->sending = NULL;
    if (h->events == st)
        h->events = NULL;
    h->partial -= st->len;
    if (st->msg) {
        h->queued -= st->msg->len - st->msg->off;
        h->queued_acc -= st->msg->len - st->msg->off + MESH_H2_MSG_OVERHEAD;
    }
    free(st->msg);
    free(st->body);
    free(st);
}

static int eq(const uint8_t *s, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1,                              \
            NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE                           \
    }

/* Detach the first queued message (the caller owns it). */
static h2_msg *queue_pop(mesh_h2 *h)
{
    h2_msg *m = h->q_head;
    h->q_head = m->next;
    if (!h->q_head)
        h->q_tail = NULL;
    m->next = NULL;
    return m;
}

/* ---- outgoing data ----------------------------------------------------------------------- */

/* Client: the body of one message request, read from our copy of the message. */
static ssize_t read_message(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)ng;
    (void)id;
    mesh_h2 *h = ud;
    h2_stream *st = src->ptr;
    h2_msg *m = st->msg;
    size_t n = 0;
    if (m) {
        n = m->len - m->off;
        if (n > length)
            n = length;
        memcpy(buf, m->data + m->off, n);
        m->off += n;
        h->queued -= n;
        h->queued_acc -= n;
        if (m->off < m->len)
            return (ssize_t)n;
        h->queued_acc -= MESH_H2_MSG_OVERHEAD;
        free(m);
        st->msg = NULL;
    }
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (h->sending == st) {
        h->sending = NULL; /* the next message may start */
        h->turn++;
    }
    return (ssize_t)n;
}

/* Server: the events response body, [4-byte length][bytes] per queued message. Never ends. */
static ssize_t read_events(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                           uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)ng;
    (void)id;
    (void)flags;
    (void)src;
    mesh_h2 *h = ud;
    size_t n = 0;
    while (n < length && h->q_head) {
        h2_msg *m = h->q_head;
        if (m->off < MESH_FRAME_HDR_LEN) { /* the prefix, maybe split over two calls */
            uint8_t hdr[MESH_FRAME_HDR_LEN];
            (void)mesh_frame_header(hdr, m->len, h->max_message); /* mesh_h2_send checked it */
            while (n < length && m->off < MESH_FRAME_HDR_LEN)
                buf[n++] = hdr[m->off++];
        }
        if (m->off < MESH_FRAME_HDR_LEN)
            break;
        size_t take = m->len - (m->off - MESH_FRAME_HDR_LEN);
        if (take > length - n)
            take = length - n;
        memcpy(buf + n, m->data + (m->off - MESH_FRAME_HDR_LEN), take);
        n += take;
        m->off += take;
        h->queued -= take;
        h->queued_acc -= take;
        if (m->off < MESH_FRAME_HDR_LEN + m->len)
            break;
        h->queued_acc -= MESH_H2_MSG_OVERHEAD;
        free(queue_pop(h));
    }
    if (n == 0) {
        h->ev_deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

/* Client: submit a POST to path as a new stream st (its id is set). clen: the
 * content-length value, NULL for none; dp NULL: HEADERS with END_STREAM, an empty body. */
static int submit_post(mesh_h2 *h, h2_stream *st, const char *path, const char *clen,
                       nghttp2_data_provider *dp)
{
    const uint8_t flags = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
    nghttp2_nv nva[] = {
        NV(":method", "POST"),
        NV(":scheme", "https"),
        {(uint8_t *)":authority", (uint8_t *)h->authority, 10, strlen(h->authority), flags},
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), flags},
        NV("content-type", CONTENT_TYPE),
        /* value copied by nghttp2: clen lives on the caller's stack */
        {(uint8_t *)"content-length", (uint8_t *)clen, 14, clen ? strlen(clen) : 0,
         NGHTTP2_NV_FLAG_NO_COPY_NAME},
    };
    size_t n = sizeof nva / sizeof nva[0] - (clen ? 0 : 1);
    int32_t id = nghttp2_submit_request(h->ng, NULL, nva, n, dp, st);
    if (id < 0)
        return map_ng(h, id);
    st->id = id;
    return 0;
}

/* Client: open the next message request when the previous body is out and a stream is free. */
static int client_pump(mesh_h2 *h)
{
    if (h->sending || !h->q_head)
        return 0;
    uint32_t peer_max =
        nghttp2_session_get_remote_settings(h->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    int cap = MESH_H2_CLIENT_INFLIGHT;
    if (peer_max <= 1)
        return 0; /* the events stream holds the only one */
    if (peer_max - 1 < (uint32_t)cap)
        cap = (int)(peer_max - 1);
    if (h->open_msgs >= cap)
        return 0;
    h2_stream *st = stream_new(h, H2_MESSAGE);
    if (!st)
        return MESH_ERR_NOMEM;
    char clen[24];
    snprintf(clen, sizeof clen, "%zu", h->q_head->len);
    nghttp2_data_provider dp = {.source.ptr = st, .read_callback = read_message};
    int rc = submit_post(h, st, PATH_MESSAGE, clen, &dp);
    if (rc) {
        stream_free(h, st);
        return rc;
    }
    st->msg = queue_pop(h);
    h->sending = st;
    h->open_msgs++;
    return 0;
}

/* Client: the long-lived events request, submitted once, first, with an empty body. */
static int client_start(mesh_h2 *h)
{
    h2_stream *st = stream_new(h, H2_EVENTS);
    if (!st)
        return MESH_ERR_NOMEM;
    int rc = submit_post(h, st, PATH_EVENTS, NULL, NULL);
    if (rc) {
        stream_free(h, st);
        return rc;
    }
    h->events = st;
    h->started = 1;
    return 0;
}

/* ---- incoming ---------------------------------------------------------------------------- */

static int deliver(mesh_h2 *h, const uint8_t *data, size_t len)
{
    int rc = h->cbs.on_message(h->ud, data, len);
    return rc == MESH_OK ? 0 : cb_fail(h, rc);
}

static int event_frame(void *ud, const uint8_t *data, size_t len)
{
    mesh_h2 *h = ud;
    return h->cbs.on_message(h->ud, data, len);
}

/* Client: the events body is a stream of frames (frame.h): a frame inside one DATA chunk is
 * passed on in place, one split across chunks is assembled by the decoder. */
static int events_consume(mesh_h2 *h, const uint8_t *p, size_t n)
{
    int rc = mesh_frame_feed(&h->ev, p, n, event_frame, h);
    return rc == MESH_OK ? 0 : cb_fail(h, rc);
}

/* Server: append to a message body within max_message and the connection's budget. */
static int body_append(mesh_h2 *h, h2_stream *st, const uint8_t *p, size_t n)
{
    if (n > h->max_message - st->len)
        return cb_fail(h, MESH_ERR_TOO_BIG);
    if (n > h->max_message * MESH_H2_RECV_BUDGET_FACTOR - h->partial)
        return cb_fail(h, MESH_ERR_LIMIT);
    if (st->len + n > st->cap) {
        size_t cap = st->cap ? st->cap * 2 : H2_FIRST_BODY;
        if (st->content_length >= 0 && (size_t)st->content_length >= st->len + n)
            cap = (size_t)st->content_length;
        if (cap < st->len + n)
            cap = st->len + n;
        if (cap > h->max_message)
            cap = h->max_message;
        uint8_t *b = realloc(st->body, cap);
        if (!b)
            return cb_fail(h, MESH_ERR_NOMEM);
        st->body = b;
        st->cap = cap;
    }
    memcpy(st->body + st->len, p, n);
    st->len += n;
    h->partial += n;
    return 0;
}

static int respond(mesh_h2 *h, h2_stream *st, int status)
{
    static const nghttp2_nv ok[] = {NV(":status", "200")};
    static const nghttp2_nv not_found[] = {NV(":status", "404")};
    static const nghttp2_nv bad_method[] = {NV(":status", "405"), NV("allow", "POST")};
    static const nghttp2_nv conflict[] = {NV(":status", "409")};
    static const nghttp2_nv events[] = {NV(":status", "200"), NV("content-type", CONTENT_TYPE)};
    const nghttp2_nv *nva = ok;
    size_t n = 1;
    nghttp2_data_provider dp = {.read_callback = read_events};
    nghttp2_data_provider *dpp = NULL;
    if (status == 404) {
        nva = not_found;
    } else if (status == 405) {
        nva = bad_method;
        n = 2;
    } else if (status == 409) {
        nva = conflict;
    } else if (st->kind == H2_EVENTS) {
        nva = events;
        n = 2;
        dpp = &dp;
    }
    int rv = nghttp2_submit_response(h->ng, st->id, nva, n, dpp);
    return rv == 0 ? 0 : cb_fail(h, map_ng(h, rv));
}

/* Server: the request's headers are complete; decide what it is. */
static int route(mesh_h2 *h, h2_stream *st)
{
    if (st->path == PATH_OTHER) {
        st->kind = H2_REJECTED;
        return respond(h, st, 404);
    }
    if (!st->post) {
        st->kind = H2_REJECTED;
        return respond(h, st, 405);
    }
    if (st->path == PATH_IS_MESSAGE) {
        st->kind = H2_MESSAGE;
        return 0; /* answered when the body is complete */
    }
    if (h->events) {
        st->kind = H2_REJECTED;
        return respond(h, st, 409);
    }
    st->kind = H2_EVENTS;
    h->events = st;
    h->ev_deferred = 0;
    return respond(h, st, 200);
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    mesh_h2 *h = ud;
    if (!h->is_server || frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    h2_stream *st = stream_new(h, H2_UNROUTED);
    if (!st)
        return cb_fail(h, MESH_ERR_NOMEM);
    st->id = frame->hd.stream_id;
    if (nghttp2_session_set_stream_user_data(ng, st->id, st) != 0) {
        stream_free(h, st);
        return cb_fail(h, MESH_ERR_INTERNAL);
    }
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    (void)flags;
    mesh_h2 *h = ud;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    h2_stream *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    if (!st)
        return 0;
    if (h->is_server && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        if (eq(name, namelen, ":method")) {
            st->post = eq(value, valuelen, "POST");
        } else if (eq(name, namelen, ":path")) {
            st->path = eq(value, valuelen, PATH_MESSAGE)  ? PATH_IS_MESSAGE
                       : eq(value, valuelen, PATH_EVENTS) ? PATH_IS_EVENTS
                                                          : PATH_OTHER;
        } else if (eq(name, namelen, "content-length")) {
            /* nghttp2 has checked it is a decimal number; we check it against our bound
             * before any byte of the body arrives. */
            uint64_t v = 0;
            for (size_t i = 0; i < valuelen && v <= UINT32_MAX; i++)
                v = v * 10 + (uint64_t)(value[i] - '0');
            if (v > h->max_message && st->path == PATH_IS_MESSAGE)
                return cb_fail(h, MESH_ERR_TOO_BIG);
            st->content_length = v > h->max_message ? -1 : (int64_t)v;
        }
    } else if (!h->is_server && eq(name, namelen, ":status")) {
        /* After an interim 1xx, the final answer comes as NGHTTP2_HCAT_HEADERS. */
        int s = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++)
            s = s * 10 + (value[i] - '0'); /* nghttp2 checked: 3 digits */
        st->status = s;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    (void)flags;
    mesh_h2 *h = ud;
    h2_stream *st = nghttp2_session_get_stream_user_data(ng, id);
    if (!st)
        return 0;
    if (h->is_server && st->kind == H2_MESSAGE)
        return body_append(h, st, data, len);
    if (!h->is_server && st == h->events)
        return events_consume(h, data, len);
    return 0; /* rejected requests, response bodies: dropped (the window is still updated) */
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    mesh_h2 *h = ud;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        h->peer_goaway = 1;
        h->peer_goaway_code = frame->goaway.error_code;
        return 0;
    }
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    h2_stream *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    if (!st)
        return 0;
    if (!h->is_server) {
        /* Any final answer but 200 means the server did not take our request. */
        if (frame->hd.type == NGHTTP2_HEADERS && st->status >= 200 && st->status != 200)
            return cb_fail(h, MESH_ERR_PROTOCOL);
        return 0;
    }
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        int rv = route(h, st);
        if (rv)
            return rv;
    }
    if (st->kind != H2_MESSAGE || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    /* The whole body is in: hand it out, then answer 200. */
    h->partial -= st->len;
    size_t len = st->len;
    st->len = 0;
    st->kind = H2_REJECTED; /* nothing more to collect on it */
    int rv = deliver(h, st->body, len);
    free(st->body);
    st->body = NULL;
    st->cap = 0;
    if (rv)
        return rv;
    return respond(h, st, 200);
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *ud)
{
    mesh_h2 *h = ud;
    h2_stream *st = nghttp2_session_get_stream_user_data(ng, id);
    if (!st)
        return 0;
    int rc = 0;
    if (!h->is_server && !h->err && !h->peer_goaway) {
        if (st == h->events)
            rc = error_code == NGHTTP2_NO_ERROR ? MESH_ERR_CLOSED : MESH_ERR_PROTOCOL;
        else if (error_code != NGHTTP2_NO_ERROR || st->status != 200 || st->msg)
            rc = MESH_ERR_PROTOCOL; /* a message was not taken */
    }
    if (!h->is_server && st->kind == H2_MESSAGE) {
        h->open_msgs--;
        h->turn++;
    }
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    stream_free(h, st);
    return rc ? cb_fail(h, rc) : 0;
}

/* nghttp2 answers most connection errors in the peer's input by queueing a GOAWAY itself and
 * ignoring the rest of the input, and mem_recv still succeeds; we learn of it when that GOAWAY
 * goes out (inside mem_send, so mesh_h2_pull reports it after handing the GOAWAY out). */
static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    (void)ng;
    mesh_h2 *h = ud;
    if (frame->hd.type == NGHTTP2_GOAWAY && !h->goaway_queued) {
        h->goaway_queued = 1;
        if (!h->err)
            h->err =
                frame->goaway.error_code == NGHTTP2_NO_ERROR ? MESH_ERR_CLOSED : MESH_ERR_PROTOCOL;
    }
    return 0;
}

/* ---- API --------------------------------------------------------------------------------- */

int mesh_h2_new(mesh_h2 **out, int is_server, size_t max_message, const mesh_h2_cbs *cbs, void *ud)
{
    if (!out || !cbs || !cbs->on_message || max_message == 0 || max_message > MESH_FRAME_ABS_MAX)
        return MESH_ERR_INVAL;
    mesh_h2 *h = calloc(1, sizeof *h);
    if (!h)
        return MESH_ERR_NOMEM;
    h->is_server = is_server != 0;
    h->max_message = max_message;
    mesh_frame_dec_init(&h->ev, max_message);
    h->ev.keep = H2_KEEP_BUF;
    h->cbs = *cbs;
    h->ud = ud;
    memcpy(h->authority, MESH_H2_DEFAULT_AUTHORITY, sizeof MESH_H2_DEFAULT_AUTHORITY);

    int rc = MESH_ERR_NOMEM;
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        goto fail_h;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_option *opt;
    if (nghttp2_option_new(&opt) != 0)
        goto fail_cb;
    /* Until the server's SETTINGS arrive, assume its limit is ours rather than unlimited. */
    nghttp2_option_set_peer_max_concurrent_streams(opt, MESH_H2_MAX_STREAMS);
    /* nghttp2's RST_STREAM rate limiter refills by the monotonic clock; with no refill its
     * verdict depends on counts alone, so a simulated run stays reproducible. */
    nghttp2_option_set_stream_reset_rate_limit(opt, MESH_H2_MAX_PEER_RESETS, 0);
    int rv = is_server ? nghttp2_session_server_new2(&h->ng, cb, h, opt)
                       : nghttp2_session_client_new2(&h->ng, cb, h, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rv != 0)
        goto fail_h;

    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MESH_H2_MAX_STREAMS},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    /* ENABLE_PUSH is a client-only setting (a server sending it is a protocol error). */
    size_t niv = is_server ? 2 : 3;
    rc = MESH_ERR_INTERNAL;
    if (nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, niv) != 0 ||
        nghttp2_session_set_local_window_size(h->ng, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW) != 0)
        goto fail_ng;
    *out = h;
    return MESH_OK;

fail_cb:
    nghttp2_session_callbacks_del(cb);
    goto fail_h;
fail_ng:
    nghttp2_session_del(h->ng);
fail_h:
    free(h);
    return rc;
}

void mesh_h2_free(mesh_h2 *h)
{
    if (!h)
        return;
    nghttp2_session_del(h->ng);
    while (h->streams)
        stream_free(h, h->streams);
    while (h->q_head)
        free(queue_pop(h));
    mesh_frame_dec_free(&h->ev);
    free(h->out);
    free(h);
}

int mesh_h2_set_authority(mesh_h2 *h, const char *authority)
{
    if (!h || !authority || h->is_server)
        return MESH_ERR_INVAL;
    size_t n = strlen(authority);
    if (n == 0 || n > MESH_H2_MAX_AUTHORITY)
        return MESH_ERR_INVAL;
    for (size_t i = 0; i < n; i++) {
        char c = authority[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_'))
            return MESH_ERR_INVAL;
    }
    if (h->started)
        return MESH_ERR_STATE;
    memcpy(h->authority, authority, n + 1);
    return MESH_OK;
}

static int recv_result(mesh_h2 *h, ssize_t rv)
{
    if (rv < 0)
        return fail(h, map_ng(h, rv));
    if (h->err) /* recorded by a callback that did not stop nghttp2 */
        return fail(h, h->err);
    if (h->peer_goaway)
        return fail(h,
                    h->peer_goaway_code == NGHTTP2_NO_ERROR ? MESH_ERR_CLOSED : MESH_ERR_PROTOCOL);
    /* nghttp2 answers most connection errors by queueing its own GOAWAY (on_frame_send);
     * a client can tell at once, as it may then open no more requests. */
    if (!nghttp2_session_want_read(h->ng) ||
        (!h->is_server && !nghttp2_session_check_request_allowed(h->ng)))
        return fail(h, MESH_ERR_PROTOCOL);
    return MESH_OK;
}

int mesh_h2_recv(mesh_h2 *h, const uint8_t *data, size_t len)
{
    if (!h || (!data && len))
        return MESH_ERR_INVAL;
    int rc = h->err ? h->err : recv_result(h, nghttp2_session_mem_recv(h->ng, data, len));
    if (rc)
        h->err_told = 1;
    return rc;
}

int mesh_h2_send(mesh_h2 *h, const uint8_t *data, size_t len)
{
    if (!h || (!data && len))
        return MESH_ERR_INVAL;
    if (h->err)
        return MESH_ERR_CLOSED;
    if (len > h->max_message)
        return MESH_ERR_TOO_BIG;
    size_t acc = len + MESH_H2_MSG_OVERHEAD;
    if (h->queued_acc > 0 && acc > (size_t)MESH_H2_MAX_QUEUED_BYTES - h->queued_acc)
        return MESH_ERR_AGAIN;
    h2_msg *m = malloc(sizeof *m + len);
    if (!m)
        return MESH_ERR_NOMEM;
    m->next = NULL;
    m->len = len;
    m->off = 0;
    if (len)
        memcpy(m->data, data, len);
    if (h->q_tail)
        h->q_tail->next = m;
    else
        h->q_head = m;
    h->q_tail = m;
    h->queued += len;
    h->queued_acc += acc;
    if (h->is_server && h->events && h->ev_deferred) {
        h->ev_deferred = 0;
        if (nghttp2_session_resume_data(h->ng, h->events->id) != 0)
            return fail(h, MESH_ERR_INTERNAL);
    }
    return MESH_OK;
}

/* The next frame from nghttp2, opening client requests as their turn comes. 0 = quiet. */
static long next_frame(mesh_h2 *h, const uint8_t **p)
{
    if (h->pend) {
        *p = h->pend;
        h->pend = NULL;
        return (long)h->pend_len;
    }
    for (;;) {
        if (!h->is_server && !h->err) {
            int rc = h->started ? 0 : client_start(h);
            if (rc == 0)
                rc = client_pump(h);
            if (rc)
                return fail(h, rc);
        }
        unsigned turn = h->turn;
        ssize_t n = nghttp2_session_mem_send(h->ng, p);
        if (n < 0) {
            return fail(h, map_ng(h, n));
        }
        if (n > 0)
            return n;
        /* Quiet; but if nghttp2 just closed a message stream, the next one may start now. */
        if (h->is_server || h->err || !h->q_head || turn == h->turn)
            return 0;
    }
}

long mesh_h2_pull(mesh_h2 *h, const uint8_t **data)
{
    if (!h || !data)
        return MESH_ERR_INVAL;
    if (!h->out) {
        h->out = malloc(MESH_H2_PULL_MAX);
        if (!h->out)
            return MESH_ERR_NOMEM; /* nothing changed: try again */
    }
    size_t len = 0;
    for (;;) {
        const uint8_t *p;
        long n = next_frame(h, &p);
        if (n < 0 || (n == 0 && h->err && !h->err_told)) {
            if (!h->err_told && len == 0) {
                h->err_told = 1;
                return h->err;
            }
            break; /* told (or told next time): nghttp2 has nothing more to flush */
        }
        if (n == 0)
            break;
        if (len + (size_t)n > MESH_H2_PULL_MAX) {
            if (len == 0) { /* larger than a chunk: cannot happen with 16 KiB frames */
                *data = p;
                return n;
            }
            h->pend = p;
            h->pend_len = (size_t)n;
            break;
        }
        memcpy(h->out + len, p, (size_t)n);
        len += (size_t)n;
    }
    *data = h->out;
    if (len == 0) {
        /* Quiet: give the chunk back, an idle connection should cost little. */
        free(h->out);
        h->out = NULL;
        *data = NULL;
    }
    return (long)len;
}

size_t mesh_h2_queued(const mesh_h2 *h)
{
    return h ? h->queued : 0;
}
