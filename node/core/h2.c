/* h2.c — HTTP/2 framing mode over nghttp2's sans-I/O API (see h2.h for the mapping and the
 * error contract): the connection's life, the outgoing side and the API. The incoming side
 * (nghttp2's receive callbacks) is h2_recv.c; the object both share is in h2_recv.h.
 *
 * Invariants:
 *  - every stream we know of has one h2_stream record (nghttp2 stream user data), linked in
 *    h->streams so mesh_h2_free can release them (nghttp2_session_del calls no callback);
 *  - the client has at most one message request whose body is still being read (h->sending):
 *    bodies go out one after another, so the server completes them in order;
 *  - after the first error h->err is set, recv/send return it, and pull only flushes what
 *    nghttp2 still has (our GOAWAY).
 */
#include "core/h2_recv.h"

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
    H2_KEEP_BUF = 16 << 10, /* event reassembly buffer kept between frames (idle memory) */
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
int h2_cb_fail(mesh_h2 *h, int code)
{
    if (!h->err)
        h->err = code;
    return NGHTTP2_ERR_CALLBACK_FAILURE;
}

int h2_map_ng(const mesh_h2 *h, long rv)
{
    if (rv == NGHTTP2_ERR_CALLBACK_FAILURE && h->err)
        return h->err;
    if (rv == NGHTTP2_ERR_NOMEM)
        return MESH_ERR_NOMEM;
    return MESH_ERR_PROTOCOL;
}

h2_stream *h2_stream_new(mesh_h2 *h, h2_kind kind)
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

void h2_stream_free(mesh_h2 *h, h2_stream *st)
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
ssize_t h2_read_events(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
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

/* mesh_h2_set_padding's policy: a DATA frame of frame->hd.length bytes becomes up to
 * max_payloadlen (nghttp2 caps it at the frame size limit, the window and length + 256):
 * the pad length byte plus r random bytes. A full frame stays as it is. */
static ssize_t select_padding(nghttp2_session *ng, const nghttp2_frame *frame,
                              size_t max_payloadlen, void *ud)
{
    (void)ng;
    mesh_h2 *h = ud;
    size_t len = frame->hd.length;
    if (frame->hd.type != NGHTTP2_DATA || !h->pad_env || max_payloadlen <= len)
        return (ssize_t)len;
    size_t room = max_payloadlen - len - 1; /* after the pad length byte */
    size_t r = (size_t)mesh_env_random_below(h->pad_env, (uint64_t)h->pad_max + 1);
    return (ssize_t)(len + 1 + (r < room ? r : room));
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
    /* The web profile's requests carry what curl sends for `curl --data-binary @f -H
     * 'content-type: ...' URL`, in curl's order: an ordinary API call. */
    nghttp2_nv web[] = {
        NV(":method", "POST"),
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), flags},
        NV(":scheme", "https"),
        {(uint8_t *)":authority", (uint8_t *)h->authority, 10, strlen(h->authority), flags},
        NV("user-agent", "curl/7.88.1"),
        NV("accept", "*/*"),
        NV("content-type", CONTENT_TYPE),
        {(uint8_t *)"content-length", (uint8_t *)clen, 14, clen ? strlen(clen) : 0,
         NGHTTP2_NV_FLAG_NO_COPY_NAME},
    };
    nghttp2_nv *hdrs = h->web ? web : nva;
    size_t n = (h->web ? sizeof web / sizeof web[0] : sizeof nva / sizeof nva[0]) - (clen ? 0 : 1);
    int32_t id = nghttp2_submit_request(h->ng, NULL, hdrs, n, dp, st);
    if (id < 0)
        return h2_map_ng(h, id);
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
    h2_stream *st = h2_stream_new(h, H2_MESSAGE);
    if (!st)
        return MESH_ERR_NOMEM;
    char clen[24];
    snprintf(clen, sizeof clen, "%zu", h->q_head->len);
    nghttp2_data_provider dp = {.source.ptr = st, .read_callback = read_message};
    int rc = submit_post(h, st, PATH_MESSAGE, clen, &dp);
    if (rc) {
        h2_stream_free(h, st);
        return rc;
    }
    st->msg = queue_pop(h);
    h->sending = st;
    h->open_msgs++;
    return 0;
}

/* Client: the long-lived events request, submitted once, first: with an empty body, or in
 * the web profile with the first message queued (the hello) as its body, so that the first
 * request is complete and carries the hello (firstreq.h); not before that message is. */
static int client_start(mesh_h2 *h)
{
    if (h->web && !h->q_head)
        return 0;
    h2_stream *st = h2_stream_new(h, H2_EVENTS);
    if (!st)
        return MESH_ERR_NOMEM;
    char clen[24];
    nghttp2_data_provider dp = {.source.ptr = st, .read_callback = read_message};
    if (h->web)
        snprintf(clen, sizeof clen, "%zu", h->q_head->len);
    int rc = submit_post(h, st, PATH_EVENTS, h->web ? clen : NULL, h->web ? &dp : NULL);
    if (rc) {
        h2_stream_free(h, st);
        return rc;
    }
    if (h->web) {
        st->msg = queue_pop(h);
        h->sending = st; /* message requests wait for the hello's body */
    }
    h->events = st;
    h->started = 1;
    return 0;
}

/* ---- API --------------------------------------------------------------------------------- */

/* The SETTINGS a server announces first: nginx 1.22's (max concurrent streams 128, initial
 * window 64 KiB, max frame size 2^24-1) then its WINDOW_UPDATE of the connection to 2^31-1,
 * or our own. nghttp2 sends SETTINGS before WINDOW_UPDATE, as nginx does, so the first
 * record a web-profile server sends after its handshake is nginx's, byte for byte. */
static int first_settings(mesh_h2 *h)
{
    static const nghttp2_settings_entry nginx[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 128},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 65536},
        {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 16777215},
    };
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MESH_H2_MAX_STREAMS},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    if (h->web && h->is_server)
        return nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, nginx, 3) != 0 ||
               nghttp2_session_set_local_window_size(h->ng, NGHTTP2_FLAG_NONE, 0, 0x7fffffff) != 0;
    /* ENABLE_PUSH is a client-only setting (a server sending it is a protocol error). */
    size_t niv = h->is_server ? 2 : 3;
    return nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, niv) != 0 ||
           nghttp2_session_set_local_window_size(h->ng, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW) != 0;
}

int h2_open_up(mesh_h2 *h)
{
    static const nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW},
    };
    h->opened_up = 1;
    return nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, 1);
}

static int h2_new(mesh_h2 **out, int is_server, int web, size_t max_message, const mesh_h2_cbs *cbs,
                  void *ud)
{
    if (!out || !cbs || !cbs->on_message || max_message == 0 || max_message > MESH_FRAME_ABS_MAX)
        return MESH_ERR_INVAL;
    mesh_h2 *h = calloc(1, sizeof *h);
    if (!h)
        return MESH_ERR_NOMEM;
    h->is_server = is_server != 0;
    h->web = web;
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
    h2_recv_callbacks(cb);
    nghttp2_session_callbacks_set_select_padding_callback(cb, select_padding);
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

    rc = MESH_ERR_INTERNAL;
    if (first_settings(h) != 0)
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

int mesh_h2_new(mesh_h2 **out, int is_server, size_t max_message, const mesh_h2_cbs *cbs, void *ud)
{
    return h2_new(out, is_server, 0, max_message, cbs, ud);
}

int mesh_h2_new_web(mesh_h2 **out, int is_server, size_t max_message, const mesh_h2_cbs *cbs,
                    void *ud)
{
    return h2_new(out, is_server, 1, max_message, cbs, ud);
}

void mesh_h2_skip_acks(mesh_h2 *h, unsigned n)
{
    if (h)
        h->skip_acks += n;
}

void mesh_h2_free(mesh_h2 *h)
{
    if (!h)
        return;
    nghttp2_session_del(h->ng);
    while (h->streams)
        h2_stream_free(h, h->streams);
    while (h->q_head)
        free(queue_pop(h));
    mesh_frame_dec_free(&h->ev);
    free(h->out);
    free(h);
}

int mesh_h2_set_padding(mesh_h2 *h, const mesh_env *env, unsigned max_pad)
{
    if (!h || max_pad > MESH_H2_PAD_MAX)
        return MESH_ERR_INVAL;
    h->pad_env = max_pad ? env : NULL;
    h->pad_max = max_pad;
    return MESH_OK;
}

int mesh_h2_ping(mesh_h2 *h, const uint8_t opaque[MESH_H2_PING_LEN])
{
    if (!h || !opaque)
        return MESH_ERR_INVAL;
    if (h->err)
        return MESH_ERR_CLOSED;
    int rv = nghttp2_submit_ping(h->ng, NGHTTP2_FLAG_NONE, opaque);
    return rv == 0 ? MESH_OK : rv == NGHTTP2_ERR_NOMEM ? MESH_ERR_NOMEM : MESH_ERR_CLOSED;
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
        return fail(h, h2_map_ng(h, rv));
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
            if (rc == 0 && h->started)
                rc = client_pump(h);
            if (rc)
                return fail(h, rc);
        }
        unsigned turn = h->turn;
        ssize_t n = nghttp2_session_mem_send(h->ng, p);
        if (n < 0) {
            return fail(h, h2_map_ng(h, n));
        }
        /* nghttp2 hands out one frame per call: an empty SETTINGS ACK is 9 bytes */
        if (n == 9 && h->skip_acks && (*p)[3] == NGHTTP2_SETTINGS && ((*p)[4] & NGHTTP2_FLAG_ACK)) {
            h->skip_acks--;
            continue;
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
