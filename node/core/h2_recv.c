/* h2_recv.c — the incoming side of HTTP/2 framing mode (see h2_recv.h): nghttp2's receive
 * callbacks, the server's routing of requests and its answers, message bodies collected within
 * their bounds, and the client's events body handed to the frame decoder.
 */
#include "core/h2_recv.h"

#include <stdlib.h>
#include <string.h>

#include "meshara/error.h"

enum { H2_FIRST_BODY = 16 << 10 }; /* first allocation of a body of unknown length */

static int eq(const uint8_t *s, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

static int deliver(mesh_h2 *h, const uint8_t *data, size_t len)
{
    int rc = h->cbs.on_message(h->ud, data, len);
    return rc == MESH_OK ? 0 : h2_cb_fail(h, rc);
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
    return rc == MESH_OK ? 0 : h2_cb_fail(h, rc);
}

/* Server: append to a message body within max_message and the connection's budget. */
static int body_append(mesh_h2 *h, h2_stream *st, const uint8_t *p, size_t n)
{
    if (n > h->max_message - st->len)
        return h2_cb_fail(h, MESH_ERR_TOO_BIG);
    if (n > h->max_message * MESH_H2_RECV_BUDGET_FACTOR - h->partial)
        return h2_cb_fail(h, MESH_ERR_LIMIT);
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
            return h2_cb_fail(h, MESH_ERR_NOMEM);
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
    nghttp2_data_provider dp = {.read_callback = h2_read_events};
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
    return rv == 0 ? 0 : h2_cb_fail(h, h2_map_ng(h, rv));
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
    h2_stream *st = h2_stream_new(h, H2_UNROUTED);
    if (!st)
        return h2_cb_fail(h, MESH_ERR_NOMEM);
    st->id = frame->hd.stream_id;
    if (nghttp2_session_set_stream_user_data(ng, st->id, st) != 0) {
        h2_stream_free(h, st);
        return h2_cb_fail(h, MESH_ERR_INTERNAL);
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
                return h2_cb_fail(h, MESH_ERR_TOO_BIG);
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
    if (h->is_server && (st->kind == H2_MESSAGE || (h->web && st == h->events)))
        return body_append(h, st, data, len);
    if (!h->is_server && st == h->events)
        return events_consume(h, data, len);
    return 0; /* rejected requests, response bodies: dropped (the window is still updated) */
}

/* A request body is complete: hand it out and let it go. */
static int take_body(mesh_h2 *h, h2_stream *st)
{
    h->partial -= st->len;
    size_t len = st->len;
    st->len = 0;
    int rv = deliver(h, st->body, len);
    free(st->body);
    st->body = NULL;
    st->cap = 0;
    return rv;
}

/* Web server: the events request's body is complete: the client's hello, handed out like a
 * message (its response, 200 and the events body, is already under way); then our windows. */
static int events_body(mesh_h2 *h, h2_stream *st)
{
    int rv = take_body(h, st);
    if (rv == 0 && !h->opened_up && h2_open_up(h) != 0)
        return h2_cb_fail(h, MESH_ERR_NOMEM);
    return rv;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    mesh_h2 *h = ud;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        h->peer_goaway = 1;
        h->peer_goaway_code = frame->goaway.error_code;
        return 0;
    }
    if (frame->hd.type == NGHTTP2_PING) {
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) && h->cbs.on_ping_ack)
            h->cbs.on_ping_ack(h->ud, frame->ping.opaque_data);
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
            return h2_cb_fail(h, MESH_ERR_PROTOCOL);
        return 0;
    }
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        int rv = route(h, st);
        if (rv)
            return rv;
    }
    if (h->web && st == h->events && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return events_body(h, st);
    if (st->kind != H2_MESSAGE || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    /* The whole body is in: hand it out, then answer 200. */
    st->kind = H2_REJECTED; /* nothing more to collect on it */
    int rv = take_body(h, st);
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
    h2_stream_free(h, st);
    return rc ? h2_cb_fail(h, rc) : 0;
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

void h2_recv_callbacks(nghttp2_session_callbacks *cb)
{
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
}
