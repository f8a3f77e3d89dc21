/*
 * real/driver_int.h — inside the real driver (driver.h is its interface; nothing else includes
 * this): the layout of the driver and its handles, and what its files lend each other.
 *
 *   driver.c          helpers, clock, randomness, logging, the ops table, lifecycle, loop
 *   driver_timer.c    timers                      driver_listen.c   listeners (accept)
 *   driver_stream.c   streams: connect, read, close, linger
 *   driver_out.c      stream output: the block pool, write, reserve, commit
 *   driver_dgram.c    datagrams
 *
 * Every handle sits on an intrusive list of its driver so mesh_real_free() can reclaim what the
 * core left open. Every handle also carries a "busy" count of core callbacks running for it and
 * a "released" flag: a close requested during a callback is carried out by the dispatcher once
 * the outermost callback has returned (rule 2 of driver.h).
 */
#ifndef MESHARA_REAL_DRIVER_INT_H
#define MESHARA_REAL_DRIVER_INT_H

#include <event2/event.h>
#include <event2/util.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "real/driver.h"

struct bufferevent;
struct evbuffer;
struct evconnlistener;

/* Stream I/O sizes (private to this driver). libevent 2.1's bufferevent reads at most 4096
 * bytes per readiness event (EVBUFFER_MAX_READ, not configurable before 2.2) and writes at
 * most 16 KiB: at gigabytes per second that is one epoll_wait + ioctl + readv per 4 KiB, which
 * cost the receiver of a bulk session most of its time. So streams read with recv() straight
 * into one buffer per driver (on_data gets it contiguous, no evbuffer in between), and the
 * bufferevent, used for output only, may write a whole queue in one writev. */
enum real_stream_io {
    REAL_STREAM_READ_MAX = 64 * 1024,    /* bytes one recv() may deliver to on_data */
    REAL_STREAM_READS_PER_TURN = 16,     /* full reads per stream per loop turn (fairness) */
    REAL_STREAM_WRITE_MAX = 1024 * 1024, /* bytes one writev() may take from the queue */
    REAL_OUT_BLOCK = 16384 + 512,        /* an out_block: one TLS record (16 KiB + overhead) */
    REAL_OUT_BLOCK_MIN = 8192,           /* smaller writes are copied into libevent's chains */
    REAL_OUT_POOL_MAX = 320,             /* blocks kept per driver (~5 MiB: a 4 MiB send queue) */
};

/* Output memory for record-sized stream writes. A bulk sender queues megabytes (a session's
 * send queue) that drain a moment later; as libevent chains (malloc/free) that memory went back
 * to the system each time glibc trimmed the heap and was faulted in again on the next fill —
 * a quarter of a sender's time. Blocks from this pool are copied into once and handed to the
 * output evbuffer by reference; libevent gives them back when they are sent. libevent may do
 * that late (bufferevents are finalized from the loop, even from event_base_free() after
 * mesh_real_free()), so the pool is counted and outlives the driver while blocks are out. */
typedef struct out_block {
    struct out_pool *pool;
    struct out_block *next; /* in the pool's free list */
    uint8_t data[REAL_OUT_BLOCK];
} out_block;

typedef struct out_pool {
    out_block *free; /* kept for reuse, at most REAL_OUT_POOL_MAX */
    size_t nfree;
    size_t refs; /* blocks out in evbuffers, + 1 while the driver lives */
    int alive;   /* the driver has not been freed: keep returning blocks */
} out_pool;

/* ---- object layouts ------------------------------------------------------------------- */

/* Doubly linked list links, so any handle can leave its list in O(1). */
#define LIST_LINKS(type)                                                                           \
    type *prev;                                                                                    \
    type *next

#define LIST_INSERT(head, obj)                                                                     \
    do {                                                                                           \
        (obj)->prev = NULL;                                                                        \
        (obj)->next = (head);                                                                      \
        if (head)                                                                                  \
            (head)->prev = (obj);                                                                  \
        (head) = (obj);                                                                            \
    } while (0)

#define LIST_REMOVE(head, obj)                                                                     \
    do {                                                                                           \
        if ((obj)->prev)                                                                           \
            (obj)->prev->next = (obj)->next;                                                       \
        else                                                                                       \
            (head) = (obj)->next;                                                                  \
        if ((obj)->next)                                                                           \
            (obj)->next->prev = (obj)->prev;                                                       \
        (obj)->prev = (obj)->next = NULL;                                                          \
    } while (0)

struct mesh_timer {
    LIST_LINKS(struct mesh_timer);
    mesh_real *r;
    struct event *ev;
    mesh_timer_cb cb;
    void *ud;
    mesh_time deadline; /* absolute time the timer is armed for */
    int busy;           /* inside cb */
    int released;       /* timer_free() was called while busy */
};

enum stream_state {
    STREAM_CONNECTING = 0, /* outgoing connect in progress: conn_ev watches for writability */
    STREAM_OPEN = 1,       /* connected; callbacks go to the core */
    STREAM_LINGER = 2,     /* core released it gracefully: flushing, then FIN, then close */
};

struct mesh_stream {
    LIST_LINKS(struct mesh_stream);
    mesh_real *r;
    struct bufferevent *bev; /* owns the socket (BEV_OPT_CLOSE_ON_FREE); output only */
    struct event *rd_ev;     /* readability of the socket: stream_read_cb */
    struct event *conn_ev;   /* connect completion (outgoing streams while connecting) */
    struct event *timer;     /* connect timeout, then linger timeout */
    mesh_stream_cbs cbs;
    void *ud;
    int state;         /* enum stream_state */
    int busy;          /* core callbacks running for this stream */
    int released;      /* the core no longer holds the handle */
    int close_how;     /* what the core asked for when it released the handle */
    int connect_err;   /* errno of a connect() that failed at once, reported from the loop */
    int peer_eof;      /* the peer's FIN was seen */
    int wr_shut;       /* our FIN was sent */
    int want_writable; /* written since the last on_writable: report the next drain */
};

struct mesh_listener {
    LIST_LINKS(struct mesh_listener);
    mesh_real *r;
    struct evconnlistener *lev;
    struct event *backoff; /* re-enables accepting: next loop turn, or after an error */
    mesh_accept_cb cb;
    void *ud;
    int busy;
    int released;
    unsigned accepted;  /* since accepting was last enabled (MESH_REAL_ACCEPT_BATCH) */
    uint64_t failures;  /* accept() errors not logged yet */
    mesh_time log_next; /* no accept() error line before this */
};

struct mesh_dgram {
    LIST_LINKS(struct mesh_dgram);
    mesh_real *r;
    evutil_socket_t fd;
    struct event *ev;
    mesh_dgram_cb cb;
    void *ud;
    int family; /* AF_INET / AF_INET6 */
    int busy;
    int released;
};

struct mesh_real {
    struct event_base *base;
    int own_base;
    mesh_real_config cfg;
    struct mesh_timer *timers;
    struct mesh_stream *streams;
    struct mesh_listener *listeners;
    struct mesh_dgram *dgrams;
    int caught_signal;
    mesh_env_ops ops; /* REAL_OPS plus the installed local-service adapters */
    void *mdns_ctx;   /* mesh_real_set_mdns() */
    void (*mdns_free)(void *ctx);
    void *portmap_ctx; /* mesh_real_set_portmap() */
    void (*portmap_free)(void *ctx);
    uint8_t dgram_buf[MESH_REAL_DGRAM_MAX]; /* receive buffer shared by this driver's sockets */
    /* Receive buffer shared by this driver's streams: on_data borrows it for the callback
     * only (rule 3), and no read happens inside a callback (rule 1), so one is enough. */
    uint8_t stream_buf[REAL_STREAM_READ_MAX];
    out_pool *out;       /* see out_block */
    out_block *reserved; /* stream_reserve() handed out its data; stream_commit() takes it */
    size_t reserved_len;
    mesh_stream *reserved_for;
};

/* ---- what the files lend each other ------------------------------------------------------- */

/* driver.c */
mesh_time real_now(void *obj);
void real_logf(mesh_real *r, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
struct timeval real_ms_to_tv(uint32_t ms);
/* mesh_addr → sockaddr. Returns the length, 0 if the address is not usable. */
socklen_t real_addr_to_sa(const mesh_addr *a, struct sockaddr_storage *ss);
/* sockaddr → mesh_addr. MESH_OK or MESH_ERR_INVAL for other families. */
int real_sa_to_addr(const struct sockaddr *sa, mesh_addr *out);
int real_fd_local_addr(evutil_socket_t fd, mesh_addr *out);
/* errno of a socket operation → the env's error code for streams. */
int real_errno_to_mesh(int e);

/* driver_timer.c */
void real_timer_destroy(mesh_timer *t);
mesh_timer *real_timer_new(void *obj, mesh_timer_cb cb, void *ud);
void real_timer_set(void *obj, mesh_timer *t, mesh_time when);
void real_timer_stop(void *obj, mesh_timer *t);
void real_timer_free(void *obj, mesh_timer *t);

/* driver_stream.c */
/* A stream over connected socket fd (on failure fd is still the caller's). NULL: no memory. */
mesh_stream *real_stream_alloc(mesh_real *r, evutil_socket_t fd);
void real_stream_io_enable(mesh_stream *s);
void real_stream_io_disable(mesh_stream *s);
/* Carry out the release the core (or on_closed) asked for; only when no callback runs. */
void real_stream_finish_release(mesh_stream *s);
/* Tear down with a RST. */
void real_stream_abort(mesh_stream *s);
mesh_stream *real_connect(void *obj, const mesh_addr *to, const mesh_stream_cbs *cbs, void *ud,
                          int *err);
void real_stream_set_cbs(void *obj, mesh_stream *s, const mesh_stream_cbs *cbs, void *ud);
size_t real_stream_pending(void *obj, mesh_stream *s);
int real_stream_addrs(void *obj, mesh_stream *s, mesh_addr *local, mesh_addr *remote);
mesh_stream *real_connect_from(void *obj, const mesh_addr *local, const mesh_addr *to,
                               const mesh_stream_cbs *cbs, void *ud, int *err);
void real_stream_close(void *obj, mesh_stream *s, int how);

/* driver_out.c */
/* The driver's block pool (refs 1: the driver's). NULL: no memory. */
out_pool *real_out_pool_new(void);
/* The driver lets go of its pool: kept blocks freed, the reservation returned; blocks still
 * in evbuffers come back later and are freed then (the last one frees the pool). */
void real_out_pool_close(mesh_real *r);
/* A block that never went out: back to the pool. */
void real_out_put(out_pool *p, out_block *b);
int real_stream_write(void *obj, mesh_stream *s, const void *data, size_t len);
uint8_t *real_stream_reserve(void *obj, mesh_stream *s, size_t len);
int real_stream_commit(void *obj, mesh_stream *s, size_t len);

/* driver_listen.c */
void real_listener_destroy(mesh_listener *l);
mesh_listener *real_listen(void *obj, const mesh_addr *addr, mesh_accept_cb cb, void *ud, int *err);
int real_listener_addr(void *obj, mesh_listener *l, mesh_addr *out);
void real_listener_close(void *obj, mesh_listener *l);

/* driver_dgram.c */
void real_dgram_destroy(mesh_dgram *d);
mesh_dgram *real_dgram_bind(void *obj, const mesh_addr *addr, mesh_dgram_cb cb, void *ud, int *err);
int real_dgram_addr(void *obj, mesh_dgram *d, mesh_addr *out);
int real_dgram_send(void *obj, mesh_dgram *d, const mesh_addr *to, const void *data, size_t len);
void real_dgram_close(void *obj, mesh_dgram *d);

#endif
