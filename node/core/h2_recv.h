/* h2_recv.h — internal to the h2 module: the connection object both halves share, and the
 * calls between them. Nothing outside h2.c and h2_recv.c includes this.
 *
 * h2.c holds the object's life, the outgoing side (the client's message requests, the
 * server's events body) and the API of h2.h; h2_recv.c the incoming side: nghttp2's receive
 * callbacks, the server's routing of requests and its responses, and the client's events
 * body fed to the frame decoder.
 */
#ifndef MESH_CORE_H2_RECV_H
#define MESH_CORE_H2_RECV_H

#include <nghttp2/nghttp2.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/frame.h"
#include "core/h2.h"

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
    int web;            /* mesh_h2_new_web: the hello in the events request, nginx's SETTINGS */
    int opened_up;      /* web server: our own windows announced after the hello's body */
    unsigned skip_acks; /* web server: SETTINGS ACKs already sent for us (mesh_h2_skip_acks) */
    size_t max_message;
    const mesh_env *pad_env; /* mesh_h2_set_padding: randomness for DATA padding, or NULL */
    unsigned pad_max;
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

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1,                              \
            NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE                           \
    }

/* Record an error from inside a nghttp2 callback; returns NGHTTP2_ERR_CALLBACK_FAILURE. */
int h2_cb_fail(mesh_h2 *h, int code);
/* The MESH_ERR_* for a nghttp2 error code (h->err when a callback recorded the cause). */
int h2_map_ng(const mesh_h2 *h, long rv);
/* A stream record linked in h->streams, or NULL (out of memory). */
h2_stream *h2_stream_new(mesh_h2 *h, h2_kind kind);
/* Unlink and free st with its body and message, keeping h's byte counts true. */
void h2_stream_free(mesh_h2 *h, h2_stream *st);
/* Server: the events body's data source (h2.c). */
ssize_t h2_read_events(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                       uint32_t *flags, nghttp2_data_source *src, void *ud);
/* Web server: the SETTINGS that lift nginx's 64 KiB stream window once the client's hello is
 * in (h2.c). 0 or a nghttp2 error. */
int h2_open_up(mesh_h2 *h);
/* Register h2_recv.c's receive callbacks on cb. */
void h2_recv_callbacks(nghttp2_session_callbacks *cb);

#endif
