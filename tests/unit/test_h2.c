/* test_h2.c — the HTTP/2 framing mode (node/core/h2.c): a client and a server mesh_h2 wired
 * back to back in memory, and raw nghttp2 peers written here that speak to them the way any
 * other HTTP/2 client or server would (status codes, the events body format, GOAWAY). */
#include "mesh_test.h"

#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>

#include "core/frame.h"
#include "core/h2.h"
#include "meshara/error.h"

enum { MIB = 1 << 20, RAW_STREAMS = 64 };

/* ---- message sink ------------------------------------------------------------------------ */

typedef struct sink {
    uint8_t **msg;
    size_t *len;
    size_t n, cap;
    int fail_with; /* returned from on_message when non-zero */
} sink;

static int sink_on_message(void *ud, const uint8_t *data, size_t len)
{
    sink *s = ud;
    if (s->fail_with)
        return s->fail_with;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->msg = realloc(s->msg, s->cap * sizeof *s->msg);
        s->len = realloc(s->len, s->cap * sizeof *s->len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s->msg);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s->len);
    }
    s->msg[s->n] = malloc(len ? len : 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s->msg[s->n]);
    if (len)
        memcpy(s->msg[s->n], data, len);
    s->len[s->n++] = len;
    return MESH_OK;
}

static void sink_clear(sink *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->msg[i]);
    free(s->msg);
    free(s->len);
    memset(s, 0, sizeof *s);
}

static const mesh_h2_cbs SINK_CBS = {.on_message = sink_on_message};

/* Message i of a test: a pattern that differs per message and per position. */
static uint8_t *pattern(size_t len, unsigned seed)
{
    uint8_t *b = malloc(len ? len : 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (size_t i = 0; i < len; i++)
        b[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 9));
    return b;
}

static int sink_has(const sink *s, size_t idx, size_t len, unsigned seed)
{
    if (idx >= s->n || s->len[idx] != len)
        return 0;
    uint8_t *want = pattern(len, seed);
    int ok = memcmp(s->msg[idx], want, len) == 0;
    free(want);
    return ok;
}

/* ---- endpoints wired back to back -------------------------------------------------------- */

typedef struct end {
    mesh_h2 *h;          /* a mesh_h2, or */
    nghttp2_session *ng; /* a raw nghttp2 peer */
    int rc;              /* first error its recv returned */
} end;

static long end_pull(end *e, const uint8_t **d)
{
    if (e->h)
        return mesh_h2_pull(e->h, d);
    return (long)nghttp2_session_mem_send(e->ng, d);
}

static int end_recv(end *e, const uint8_t *d, size_t n)
{
    if (e->h)
        return mesh_h2_recv(e->h, d, n);
    return nghttp2_session_mem_recv(e->ng, d, n) < 0 ? MESH_ERR_PROTOCOL : MESH_OK;
}

/* Move everything from can send to to; returns the bytes moved. Bytes after an error of to
 * are dropped, as a closing connection would. */
static size_t xfer(end *from, end *to)
{
    size_t total = 0;
    for (;;) {
        const uint8_t *d;
        long n = end_pull(from, &d);
        if (n <= 0)
            break;
        CU_ASSERT_TRUE(n <= MESH_H2_PULL_MAX || !from->h);
        if (to->rc == 0)
            to->rc = end_recv(to, d, (size_t)n);
        total += (size_t)n;
    }
    return total;
}

/* Loop until quiet; returns the number of rounds (bounded). */
static int run(end *a, end *b)
{
    int rounds = 0;
    while (rounds < 100000 && xfer(a, b) + xfer(b, a) > 0)
        rounds++;
    CU_ASSERT_TRUE(rounds < 100000);
    return rounds;
}

typedef struct pair {
    end c, s;
    sink cs, ss; /* what the client / the server received */
} pair;

static void pair_open(pair *p, size_t cmax, size_t smax)
{
    memset(p, 0, sizeof *p);
    CU_ASSERT_EQUAL_FATAL(mesh_h2_new(&p->c.h, 0, cmax, &SINK_CBS, &p->cs), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_h2_new(&p->s.h, 1, smax, &SINK_CBS, &p->ss), MESH_OK);
}

static void pair_close(pair *p)
{
    mesh_h2_free(p->c.h);
    mesh_h2_free(p->s.h);
    sink_clear(&p->cs);
    sink_clear(&p->ss);
}

/* ---- tests: mesh_h2 to mesh_h2 ----------------------------------------------------------- */

static void test_new_args(void)
{
    mesh_h2 *h = (mesh_h2 *)&h; /* untouched on failure */
    mesh_h2_cbs none = {0};
    CU_ASSERT_EQUAL(mesh_h2_new(&h, 0, 0, &SINK_CBS, NULL), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_h2_new(&h, 0, 100, &none, NULL), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_h2_new(&h, 0, 100, NULL, NULL), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_h2_new(NULL, 0, 100, &SINK_CBS, NULL), MESH_ERR_INVAL);
    /* events are frame.h frames: no maximum above the frame decoder's absolute one */
    CU_ASSERT_EQUAL(mesh_h2_new(&h, 0, (size_t)MESH_FRAME_ABS_MAX + 1, &SINK_CBS, NULL),
                    MESH_ERR_INVAL);
    CU_ASSERT_PTR_EQUAL(h, (mesh_h2 *)&h);
    CU_ASSERT_EQUAL_FATAL(mesh_h2_new(&h, 0, MESH_FRAME_ABS_MAX, &SINK_CBS, NULL), MESH_OK);
    mesh_h2_free(h);
    mesh_h2_free(NULL);
    CU_ASSERT_EQUAL(mesh_h2_queued(NULL), 0);
}

static void test_sizes_both_ways(void)
{
    static const size_t sizes[] = {0, 1, 16384, MIB};
    enum { N = sizeof sizes / sizeof sizes[0] };
    pair p;
    pair_open(&p, MIB, MIB);
    for (unsigned i = 0; i < N; i++) {
        uint8_t *a = pattern(sizes[i], i), *b = pattern(sizes[i], 100 + i);
        CU_ASSERT_EQUAL(mesh_h2_send(p.c.h, a, sizes[i]), MESH_OK);
        CU_ASSERT_EQUAL(mesh_h2_send(p.s.h, b, sizes[i]), MESH_OK);
        free(a);
        free(b);
    }
    CU_ASSERT_EQUAL(mesh_h2_queued(p.c.h), 16384 + 1 + MIB);
    run(&p.c, &p.s);
    CU_ASSERT_EQUAL(p.c.rc, MESH_OK);
    CU_ASSERT_EQUAL(p.s.rc, MESH_OK);
    CU_ASSERT_EQUAL_FATAL(p.ss.n, N);
    CU_ASSERT_EQUAL_FATAL(p.cs.n, N);
    for (unsigned i = 0; i < N; i++) {
        CU_ASSERT_TRUE(sink_has(&p.ss, i, sizes[i], i));
        CU_ASSERT_TRUE(sink_has(&p.cs, i, sizes[i], 100 + i));
    }
    CU_ASSERT_EQUAL(mesh_h2_queued(p.c.h), 0);
    CU_ASSERT_EQUAL(mesh_h2_queued(p.s.h), 0);
    /* a second round on the same connection, messages sent one at a time */
    for (unsigned i = 0; i < N; i++) {
        uint8_t *a = pattern(sizes[N - 1 - i], 200 + i);
        CU_ASSERT_EQUAL(mesh_h2_send(p.s.h, a, sizes[N - 1 - i]), MESH_OK);
        CU_ASSERT_EQUAL(mesh_h2_send(p.c.h, a, sizes[N - 1 - i]), MESH_OK);
        free(a);
        run(&p.c, &p.s);
    }
    CU_ASSERT_EQUAL_FATAL(p.ss.n, 2 * N);
    CU_ASSERT_EQUAL_FATAL(p.cs.n, 2 * N);
    for (unsigned i = 0; i < N; i++) {
        CU_ASSERT_TRUE(sink_has(&p.ss, N + i, sizes[N - 1 - i], 200 + i));
        CU_ASSERT_TRUE(sink_has(&p.cs, N + i, sizes[N - 1 - i], 200 + i));
    }
    pair_close(&p);
}

/* Many messages of varied sizes, sent in bursts between partial pumping, arrive in order:
 * bodies interleave with 200 answers, streams close and reopen past the in-flight cap. */
static void test_many_in_order(void)
{
    enum { COUNT = 3000 };
    pair p;
    pair_open(&p, 70000, 70000);
    unsigned sent_c = 0, sent_s = 0;
    uint64_t x = 12345;
    while (sent_c < COUNT || sent_s < COUNT) {
        unsigned burst = 1 + (unsigned)(x % 150);
        for (unsigned k = 0; k < burst; k++) {
            x = x * 6364136223846793005u + 1442695040888963407u;
            size_t len = (x >> 33) % 5 == 0 ? (x >> 20) % 70001 : (x >> 20) % 300;
            if (sent_c < COUNT && (x & 1)) {
                uint8_t *b = pattern(len, sent_c);
                int rc = mesh_h2_send(p.c.h, b, len);
                free(b);
                CU_ASSERT_TRUE(rc == MESH_OK || rc == MESH_ERR_AGAIN);
                if (rc == MESH_OK)
                    sent_c++;
            } else if (sent_s < COUNT) {
                uint8_t *b = pattern(len, 50000 + sent_s);
                int rc = mesh_h2_send(p.s.h, b, len);
                free(b);
                CU_ASSERT_TRUE(rc == MESH_OK || rc == MESH_ERR_AGAIN);
                if (rc == MESH_OK)
                    sent_s++;
            }
        }
        /* one partial round only: leave things in flight */
        xfer(&p.c, &p.s);
        if (x & 2)
            xfer(&p.s, &p.c);
    }
    run(&p.c, &p.s);
    CU_ASSERT_EQUAL(p.c.rc, MESH_OK);
    CU_ASSERT_EQUAL(p.s.rc, MESH_OK);
    CU_ASSERT_EQUAL_FATAL(p.ss.n, COUNT);
    CU_ASSERT_EQUAL_FATAL(p.cs.n, COUNT);
    unsigned bad = 0;
    for (unsigned i = 0; i < COUNT; i++) {
        bad += !sink_has(&p.ss, i, p.ss.len[i], i);
        bad += !sink_has(&p.cs, i, p.cs.len[i], 50000 + i);
    }
    CU_ASSERT_EQUAL(bad, 0);
    pair_close(&p);
}

/* The queue is bounded: beyond MESH_H2_MAX_QUEUED_BYTES, MESH_ERR_AGAIN until pulled. */
static void test_queue_bound(void)
{
    pair p;
    pair_open(&p, MIB, MIB);
    uint8_t *m = pattern(MIB, 1);
    int n = 0, rc;
    while ((rc = mesh_h2_send(p.s.h, m, MIB)) == MESH_OK)
        n++;
    CU_ASSERT_EQUAL(rc, MESH_ERR_AGAIN);
    CU_ASSERT_EQUAL(n, MESH_H2_MAX_QUEUED_BYTES / (MIB + MESH_H2_MSG_OVERHEAD));
    CU_ASSERT_EQUAL(mesh_h2_queued(p.s.h), (size_t)n * MIB);
    CU_ASSERT_EQUAL(mesh_h2_send(p.s.h, m, MIB + 1), MESH_ERR_TOO_BIG);
    /* small messages still fit in what is left; a full-size one fits into an empty queue */
    CU_ASSERT_EQUAL(mesh_h2_send(p.s.h, m, 10), MESH_OK);
    run(&p.c, &p.s);
    CU_ASSERT_EQUAL(p.cs.n, (size_t)n + 1);
    CU_ASSERT_EQUAL(mesh_h2_queued(p.s.h), 0);
    CU_ASSERT_EQUAL(mesh_h2_send(p.s.h, m, MIB), MESH_OK);
    free(m);
    pair_close(&p);
}

/* A message larger than the receiver's max_message fails the connection with TOO_BIG, in
 * either direction, and the GOAWAY it flushes fails the sender's side too. */
static void test_oversize(void)
{
    uint8_t *m = pattern(MIB + 1, 3);
    pair p;
    pair_open(&p, 2 * MIB, MIB); /* client may send more than the server takes */
    CU_ASSERT_EQUAL(mesh_h2_send(p.c.h, m, 5), MESH_OK);
    CU_ASSERT_EQUAL(mesh_h2_send(p.c.h, m, MIB + 1), MESH_OK);
    run(&p.c, &p.s);
    CU_ASSERT_EQUAL(p.s.rc, MESH_ERR_TOO_BIG);
    CU_ASSERT_EQUAL(p.ss.n, 1);                 /* the message before it arrived */
    CU_ASSERT_EQUAL(p.c.rc, MESH_ERR_PROTOCOL); /* our GOAWAY(ENHANCE_YOUR_CALM) reached it */
    CU_ASSERT_EQUAL(mesh_h2_recv(p.s.h, m, 0), MESH_ERR_TOO_BIG); /* final */
    CU_ASSERT_EQUAL(mesh_h2_send(p.s.h, m, 1), MESH_ERR_CLOSED);
    pair_close(&p);

    pair_open(&p, MIB, 2 * MIB); /* server may send more than the client takes */
    CU_ASSERT_EQUAL(mesh_h2_send(p.s.h, m, MIB + 1), MESH_OK);
    run(&p.c, &p.s);
    CU_ASSERT_EQUAL(p.c.rc, MESH_ERR_TOO_BIG);
    CU_ASSERT_EQUAL(p.cs.n, 0);
    CU_ASSERT_EQUAL(p.s.rc, MESH_ERR_PROTOCOL);
    pair_close(&p);

    pair_open(&p, MIB, MIB);
    CU_ASSERT_EQUAL(mesh_h2_send(p.c.h, m, MIB + 1), MESH_ERR_TOO_BIG); /* ours too */
    CU_ASSERT_EQUAL(mesh_h2_queued(p.c.h), 0);
    pair_close(&p);
    free(m);
}

/* on_message may send: a server echoing every message from inside the callback. */
typedef struct echo {
    mesh_h2 *h;
    unsigned n;
} echo;

static int echo_on_message(void *ud, const uint8_t *data, size_t len)
{
    echo *e = ud;
    e->n++;
    return mesh_h2_send(e->h, data, len);
}

static void test_echo_from_callback(void)
{
    enum { COUNT = 200 };
    sink cs = {0};
    echo e = {0};
    const mesh_h2_cbs ecbs = {.on_message = echo_on_message};
    end c = {0}, s = {0};
    CU_ASSERT_EQUAL_FATAL(mesh_h2_new(&c.h, 0, 100000, &SINK_CBS, &cs), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_h2_new(&s.h, 1, 100000, &ecbs, &e), MESH_OK);
    e.h = s.h;
    for (unsigned i = 0; i < COUNT; i++) {
        uint8_t *b = pattern(i * 397, i);
        int rc = mesh_h2_send(c.h, b, i * 397);
        if (rc == MESH_ERR_AGAIN) { /* backpressure: let it drain, then it fits */
            run(&c, &s);
            rc = mesh_h2_send(c.h, b, i * 397);
        }
        CU_ASSERT_EQUAL(rc, MESH_OK);
        free(b);
        if (i % 7 == 0)
            xfer(&c, &s);
    }
    run(&c, &s);
    CU_ASSERT_EQUAL(c.rc, MESH_OK);
    CU_ASSERT_EQUAL(s.rc, MESH_OK);
    CU_ASSERT_EQUAL(e.n, COUNT);
    CU_ASSERT_EQUAL_FATAL(cs.n, COUNT);
    unsigned bad = 0;
    for (unsigned i = 0; i < COUNT; i++)
        bad += !sink_has(&cs, i, i * 397, i);
    CU_ASSERT_EQUAL(bad, 0);
    mesh_h2_free(c.h);
    mesh_h2_free(s.h);
    sink_clear(&cs);
}

/* What on_message returns fails the connection with that code. */
static void test_callback_error(void)
{
    pair p;
    pair_open(&p, 1000, 1000);
    p.ss.fail_with = MESH_ERR_MALFORMED;
    CU_ASSERT_EQUAL(mesh_h2_send(p.c.h, (const uint8_t *)"x", 1), MESH_OK);
    run(&p.c, &p.s);
    CU_ASSERT_EQUAL(p.s.rc, MESH_ERR_MALFORMED);
    CU_ASSERT_EQUAL(p.c.rc, MESH_ERR_PROTOCOL); /* INTERNAL_ERROR GOAWAY */
    pair_close(&p);
}

static int has_goaway(const uint8_t *d, size_t n)
{
    /* frames: 3-byte length, type, flags, 4-byte stream id */
    size_t off = 0;
    if (n >= 24 && memcmp(d, "PRI * HTTP/2.0", 14) == 0)
        off = 24;
    while (off + 9 <= n) {
        size_t len = (size_t)d[off] << 16 | (size_t)d[off + 1] << 8 | d[off + 2];
        if (d[off + 3] == NGHTTP2_GOAWAY)
            return 1;
        off += 9 + len;
    }
    return 0;
}

/* Pull everything left; 1 if a GOAWAY frame was among it. *err: the error pull reported. */
static int drain_has_goaway(mesh_h2 *h, long *err)
{
    int seen = 0, rounds = 0;
    const uint8_t *d;
    long n;
    *err = 0;
    while ((n = mesh_h2_pull(h, &d)) != 0 && rounds++ < 100) {
        if (n > 0)
            seen |= has_goaway(d, (size_t)n);
        else
            *err = n;
    }
    CU_ASSERT_EQUAL(n, 0);
    return seen;
}

static void test_garbage(void)
{
    static const char http1[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    sink s = {0};
    mesh_h2 *h;
    long err;
    /* not HTTP/2 at all */
    CU_ASSERT_EQUAL_FATAL(mesh_h2_new(&h, 1, 1000, &SINK_CBS, &s), MESH_OK);
    CU_ASSERT_EQUAL(mesh_h2_recv(h, (const uint8_t *)http1, sizeof http1 - 1), MESH_ERR_PROTOCOL);
    CU_ASSERT_TRUE(drain_has_goaway(h, &err));
    CU_ASSERT_EQUAL(err, 0); /* already told by recv */
    CU_ASSERT_EQUAL(mesh_h2_recv(h, (const uint8_t *)"x", 1), MESH_ERR_PROTOCOL);
    mesh_h2_free(h);

    /* a valid preface, then a SETTINGS frame of a length that is not a multiple of 6 */
    static const uint8_t bad_settings[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                          "\x00\x00\x00\x04\x00\x00\x00\x00\x00"
                                          "\x00\x00\x05\x04\x00\x00\x00\x00\x00"
                                          "abcde";
    CU_ASSERT_EQUAL_FATAL(mesh_h2_new(&h, 1, 1000, &SINK_CBS, &s), MESH_OK);
    CU_ASSERT_EQUAL(mesh_h2_recv(h, bad_settings, 24 + 9), MESH_OK);
    /* nghttp2 itself rejects this frame: recv may still succeed, the pull that flushes its
     * GOAWAY reports the failure, and every later call returns it */
    int rc = mesh_h2_recv(h, bad_settings + 33, sizeof bad_settings - 1 - 33);
    CU_ASSERT_TRUE(rc == MESH_OK || rc == MESH_ERR_PROTOCOL);
    CU_ASSERT_TRUE(drain_has_goaway(h, &err));
    CU_ASSERT_EQUAL(rc ? rc : err, MESH_ERR_PROTOCOL);
    CU_ASSERT_EQUAL(mesh_h2_recv(h, bad_settings, 1), MESH_ERR_PROTOCOL);
    CU_ASSERT_EQUAL(mesh_h2_send(h, bad_settings, 1), MESH_ERR_CLOSED);
    mesh_h2_free(h);

    /* random bytes to a client */
    uint8_t junk[512];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 37 + 11);
    CU_ASSERT_EQUAL_FATAL(mesh_h2_new(&h, 0, 1000, &SINK_CBS, &s), MESH_OK);
    const uint8_t *d;
    CU_ASSERT_TRUE(mesh_h2_pull(h, &d) > 0);
    CU_ASSERT_EQUAL(mesh_h2_recv(h, junk, sizeof junk), MESH_ERR_PROTOCOL);
    mesh_h2_free(h);
    CU_ASSERT_EQUAL(s.n, 0);
    sink_clear(&s);
}

/* ---- tests: raw nghttp2 peers ------------------------------------------------------------ */

typedef struct raw {
    end e;                   /* the raw nghttp2 peer */
    end m;                   /* the mesh_h2 of the other role it talks to */
    sink s;                  /* what m received */
    int status[RAW_STREAMS]; /* :status per stream id */
    int closed[RAW_STREAMS];
    uint32_t close_code[RAW_STREAMS];
    uint8_t body[1024]; /* the events body (first bytes) */
    int goaway;         /* a GOAWAY arrived */
    uint32_t goaway_code;
    size_t body_len;
    char authority[300], path[300];
    int requests;
} raw;

typedef struct rawbody {
    const uint8_t *p;
    size_t len, off;
    int no_eof; /* defer after the bytes instead of ending the stream */
} rawbody;

static int raw_on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                         size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                         void *ud)
{
    (void)ng;
    (void)flags;
    raw *r = ud;
    int32_t id = f->hd.stream_id;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0 && id < RAW_STREAMS)
        r->status[id] = atoi((const char *)value); /* nghttp2 NUL-terminates values */
    if (namelen == 10 && memcmp(name, ":authority", 10) == 0 && valuelen < sizeof r->authority)
        memcpy(r->authority, value, valuelen + 1);
    if (namelen == 5 && memcmp(name, ":path", 5) == 0 && valuelen < sizeof r->path) {
        memcpy(r->path, value, valuelen + 1);
        r->requests++;
    }
    return 0;
}

static int raw_on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                       size_t len, void *ud)
{
    (void)ng;
    (void)flags;
    (void)id;
    raw *r = ud;
    size_t take = len < sizeof r->body - r->body_len ? len : sizeof r->body - r->body_len;
    memcpy(r->body + r->body_len, data, take);
    r->body_len += take;
    return 0;
}

static int raw_on_frame(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    (void)ng;
    raw *r = ud;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        r->goaway = 1;
        r->goaway_code = f->goaway.error_code;
    }
    return 0;
}

static int raw_on_close(nghttp2_session *ng, int32_t id, uint32_t code, void *ud)
{
    (void)ng;
    raw *r = ud;
    if (id < RAW_STREAMS) {
        r->closed[id] = 1;
        r->close_code[id] = code;
    }
    return 0;
}

static ssize_t raw_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                        uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)ng;
    (void)id;
    (void)ud;
    rawbody *b = src->ptr;
    size_t n = b->len - b->off < length ? b->len - b->off : length;
    memcpy(buf, b->p + b->off, n);
    b->off += n;
    if (b->off == b->len) {
        if (b->no_eof && n == 0)
            return NGHTTP2_ERR_DEFERRED;
        if (!b->no_eof)
            *flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return (ssize_t)n;
}

static void raw_open(raw *r, int server, size_t mesh_max)
{
    memset(r, 0, sizeof *r);
    nghttp2_session_callbacks *cb;
    CU_ASSERT_EQUAL_FATAL(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session_callbacks_set_on_header_callback(cb, raw_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, raw_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, raw_on_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, raw_on_frame);
    int rv = server ? nghttp2_session_server_new(&r->e.ng, cb, r)
                    : nghttp2_session_client_new(&r->e.ng, cb, r);
    nghttp2_session_callbacks_del(cb);
    CU_ASSERT_EQUAL_FATAL(rv, 0);
    CU_ASSERT_EQUAL(nghttp2_submit_settings(r->e.ng, NGHTTP2_FLAG_NONE, NULL, 0), 0);
    CU_ASSERT_EQUAL_FATAL(mesh_h2_new(&r->m.h, !server, mesh_max, &SINK_CBS, &r->s), MESH_OK);
}

static void raw_close(raw *r)
{
    nghttp2_session_del(r->e.ng);
    mesh_h2_free(r->m.h);
    sink_clear(&r->s);
}

static int32_t raw_request(raw *r, const char *method, const char *path, rawbody *body,
                           int content_length)
{
    char clen[24];
    snprintf(clen, sizeof clen, "%zu", body ? body->len : 0);
    nghttp2_nv nva[] = {
        {(uint8_t *)":method", (uint8_t *)method, 7, strlen(method), 0},
        {(uint8_t *)":scheme", (uint8_t *)"https", 7, 5, 0},
        {(uint8_t *)":authority", (uint8_t *)"example.org", 10, 11, 0},
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
        {(uint8_t *)"content-length", (uint8_t *)clen, 14, strlen(clen), 0},
    };
    nghttp2_data_provider dp = {.source.ptr = body, .read_callback = raw_read};
    int32_t id =
        nghttp2_submit_request(r->e.ng, NULL, nva, content_length ? 5 : 4, body ? &dp : NULL, NULL);
    CU_ASSERT_TRUE_FATAL(id > 0);
    return id;
}

/* A raw client: other methods 405, other paths 404, a second events request 409; each closes
 * only its stream, and messages and events still flow on the same connection. */
static void test_raw_client_statuses(void)
{
    raw r;
    raw_open(&r, 0, 1000);

    int32_t get = raw_request(&r, "GET", "/api/v1/message", NULL, 0);
    rawbody other_body = {(const uint8_t *)"xyz", 3, 0, 0};
    int32_t other = raw_request(&r, "POST", "/other", &other_body, 1);
    rawbody put_body = {(const uint8_t *)"abc", 3, 0, 0};
    int32_t put = raw_request(&r, "PUT", "/api/v1/message", &put_body, 1);
    int32_t get_ev = raw_request(&r, "GET", "/api/v1/events", NULL, 0);
    run(&r.e, &r.m);
    CU_ASSERT_EQUAL(r.m.rc, MESH_OK);
    CU_ASSERT_EQUAL(r.status[get], 405);
    CU_ASSERT_EQUAL(r.status[other], 404);
    CU_ASSERT_EQUAL(r.status[put], 405);
    CU_ASSERT_EQUAL(r.status[get_ev], 405);
    CU_ASSERT_TRUE(r.closed[get] && r.closed[other] && r.closed[put] && r.closed[get_ev]);
    CU_ASSERT_EQUAL(r.s.n, 0);

    /* the connection still works: a message, then the events stream */
    rawbody msg = {(const uint8_t *)"hello", 5, 0, 0};
    int32_t post = raw_request(&r, "POST", "/api/v1/message", &msg, 0);       /* no length */
    CU_ASSERT_EQUAL(mesh_h2_send(r.m.h, (const uint8_t *)"abc", 3), MESH_OK); /* waits */
    int32_t ev = raw_request(&r, "POST", "/api/v1/events", NULL, 0);
    run(&r.e, &r.m);
    CU_ASSERT_EQUAL(r.m.rc, MESH_OK);
    CU_ASSERT_EQUAL(r.status[post], 200);
    CU_ASSERT_TRUE(r.closed[post]);
    CU_ASSERT_EQUAL_FATAL(r.s.n, 1);
    CU_ASSERT_EQUAL(r.s.len[0], 5);
    CU_ASSERT_EQUAL(memcmp(r.s.msg[0], "hello", 5), 0);
    CU_ASSERT_EQUAL(r.status[ev], 200);
    CU_ASSERT_FALSE(r.closed[ev]); /* long-lived */
    CU_ASSERT_EQUAL(mesh_h2_send(r.m.h, (const uint8_t *)"", 0), MESH_OK);
    CU_ASSERT_EQUAL(mesh_h2_send(r.m.h, (const uint8_t *)"de", 2), MESH_OK);
    run(&r.e, &r.m);
    static const uint8_t want[] = {0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 0, 0, 0, 0, 2, 'd', 'e'};
    CU_ASSERT_EQUAL(r.body_len, sizeof want);
    CU_ASSERT_EQUAL(memcmp(r.body, want, sizeof want), 0);

    /* a second events request on the same connection: 409, the first one stays */
    int32_t ev2 = raw_request(&r, "POST", "/api/v1/events", NULL, 0);
    run(&r.e, &r.m);
    CU_ASSERT_EQUAL(r.status[ev2], 409);
    CU_ASSERT_FALSE(r.closed[ev]);
    CU_ASSERT_EQUAL(r.m.rc, MESH_OK);

    raw_close(&r);
}

/* A raw client: a body with no content-length that grows past max_message is caught while it
 * arrives; an announced one before any byte; bodies left open on several streams hit the
 * connection budget. */
static void test_raw_client_bounds(void)
{
    uint8_t *big = pattern(1001, 9);
    for (int variant = 0; variant < 3; variant++) {
        raw r;
        raw_open(&r, 0, 1000);
        rawbody b[6] = {{big, 1001, 0, 0}, {big, 600, 0, 1}, {big, 600, 0, 1},
                        {big, 600, 0, 1},  {big, 600, 0, 1}, {big, 600, 0, 1}};
        if (variant < 2) {
            raw_request(&r, "POST", "/api/v1/message", &b[0], variant);
        } else {
            for (int i = 1; i < 4; i++) /* 1800 bytes fit the 2000 budget */
                raw_request(&r, "POST", "/api/v1/message", &b[i], 0);
            run(&r.e, &r.m);
            CU_ASSERT_EQUAL(r.m.rc, MESH_OK);
            for (int i = 4; i < 6; i++) /* 3000 do not */
                raw_request(&r, "POST", "/api/v1/message", &b[i], 0);
        }
        run(&r.e, &r.m);
        CU_ASSERT_EQUAL(r.m.rc, variant < 2 ? MESH_ERR_TOO_BIG : MESH_ERR_LIMIT);
        CU_ASSERT_EQUAL(r.s.n, 0);
        CU_ASSERT_TRUE(r.goaway); /* ours, saying why */
        CU_ASSERT_EQUAL(r.goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
        raw_close(&r);
    }
    free(big);
}

/* A client resetting streams is cut off after MESH_H2_MAX_PEER_RESETS, by count alone (no
 * clock): the same in the simulator as on real sockets. */
static void test_raw_client_resets(void)
{
    raw r;
    raw_open(&r, 0, 1000);
    rawbody open_body = {(const uint8_t *)"", 0, 0, 1}; /* never ends */
    for (int i = 0; i <= MESH_H2_MAX_PEER_RESETS; i++) {
        if (i == MESH_H2_MAX_PEER_RESETS) {
            CU_ASSERT_EQUAL(mesh_h2_recv(r.m.h, NULL, 0), MESH_OK);
            CU_ASSERT_FALSE(r.goaway);
        }
        int32_t id = raw_request(&r, "POST", "/api/v1/message", &open_body, 0);
        run(&r.e, &r.m);
        CU_ASSERT_EQUAL(nghttp2_submit_rst_stream(r.e.ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL),
                        0);
        run(&r.e, &r.m);
    }
    CU_ASSERT_TRUE(r.goaway);
    CU_ASSERT_EQUAL(mesh_h2_recv(r.m.h, NULL, 0), MESH_ERR_PROTOCOL);
    CU_ASSERT_EQUAL(r.s.n, 0);
    raw_close(&r);
}

/* A raw server sees ordinary requests: our :authority, the events path first, then a POST
 * per message; its GOAWAY closes our side with MESH_ERR_CLOSED. */
static void test_raw_server(void)
{
    raw r;
    raw_open(&r, 1, 1000);
    CU_ASSERT_EQUAL(mesh_h2_set_authority(r.m.h, "bad host"), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_h2_set_authority(r.m.h, ""), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_h2_set_authority(r.m.h, "cdn.example.net:443"), MESH_OK);
    CU_ASSERT_EQUAL(mesh_h2_send(r.m.h, (const uint8_t *)"m", 1), MESH_OK);
    xfer(&r.m, &r.e);
    CU_ASSERT_EQUAL(mesh_h2_set_authority(r.m.h, "late.example"), MESH_ERR_STATE);
    CU_ASSERT_EQUAL(r.e.rc, MESH_OK);
    CU_ASSERT_STRING_EQUAL(r.authority, "cdn.example.net:443");
    CU_ASSERT_EQUAL(r.requests, 2);
    CU_ASSERT_STRING_EQUAL(r.path, "/api/v1/message"); /* the last one; events came first */
    /* a graceful GOAWAY from the server */
    CU_ASSERT_EQUAL(nghttp2_submit_goaway(r.e.ng, NGHTTP2_FLAG_NONE, 3, NGHTTP2_NO_ERROR, NULL, 0),
                    0);
    xfer(&r.e, &r.m);
    CU_ASSERT_EQUAL(r.m.rc, MESH_ERR_CLOSED);
    CU_ASSERT_EQUAL(mesh_h2_send(r.m.h, (const uint8_t *)"m", 1), MESH_ERR_CLOSED);
    raw_close(&r);

    /* an interim 103 before the 200 is fine; events then flow */
    raw_open(&r, 1, 1000);
    xfer(&r.m, &r.e);
    nghttp2_nv early = {(uint8_t *)":status", (uint8_t *)"103", 7, 3, 0};
    nghttp2_nv ok = {(uint8_t *)":status", (uint8_t *)"200", 7, 3, 0};
    CU_ASSERT_EQUAL(nghttp2_submit_headers(r.e.ng, NGHTTP2_FLAG_NONE, 1, NULL, &early, 1, NULL), 0);
    rawbody ev = {(const uint8_t *)"\0\0\0\2hi", 6, 0, 1};
    nghttp2_data_provider dp = {.source.ptr = &ev, .read_callback = raw_read};
    CU_ASSERT_EQUAL(nghttp2_submit_response(r.e.ng, 1, &ok, 1, &dp), 0);
    run(&r.e, &r.m);
    CU_ASSERT_EQUAL(r.m.rc, MESH_OK);
    CU_ASSERT_EQUAL_FATAL(r.s.n, 1);
    CU_ASSERT_EQUAL(r.s.len[0], 2);
    CU_ASSERT_EQUAL(memcmp(r.s.msg[0], "hi", 2), 0);
    raw_close(&r);

    /* a server answering our message with 404 fails the connection (the message is lost) */
    raw_open(&r, 1, 1000);
    CU_ASSERT_EQUAL(mesh_h2_send(r.m.h, (const uint8_t *)"m", 1), MESH_OK);
    xfer(&r.m, &r.e);
    nghttp2_nv nf = {(uint8_t *)":status", (uint8_t *)"404", 7, 3, 0};
    CU_ASSERT_EQUAL(nghttp2_submit_response(r.e.ng, 3, &nf, 1, NULL), 0);
    xfer(&r.e, &r.m);
    CU_ASSERT_EQUAL(r.m.rc, MESH_ERR_PROTOCOL);
    raw_close(&r);
}

/* Freed with everything in flight (ASan checks nothing leaks). */
static void test_free_midway(void)
{
    pair p;
    pair_open(&p, MIB, MIB);
    uint8_t *m = pattern(MIB, 4);
    CU_ASSERT_EQUAL(mesh_h2_send(p.c.h, m, MIB), MESH_OK);
    CU_ASSERT_EQUAL(mesh_h2_send(p.c.h, m, 100), MESH_OK);
    CU_ASSERT_EQUAL(mesh_h2_send(p.s.h, m, MIB), MESH_OK);
    free(m);
    /* a few chunks each way, the last ones cut in the middle of a frame */
    for (int i = 0; i < 4; i++) {
        const uint8_t *d;
        long n = mesh_h2_pull(p.c.h, &d);
        CU_ASSERT_TRUE_FATAL(n > 0);
        CU_ASSERT_EQUAL(mesh_h2_recv(p.s.h, d, (size_t)n / (i == 3 ? 2 : 1)), MESH_OK);
        n = mesh_h2_pull(p.s.h, &d);
        CU_ASSERT_TRUE_FATAL(n > 0);
        CU_ASSERT_EQUAL(mesh_h2_recv(p.c.h, d, (size_t)n / (i == 3 ? 2 : 1)), MESH_OK);
    }
    CU_ASSERT_TRUE(p.ss.n < 2);
    CU_ASSERT_TRUE(mesh_h2_queued(p.c.h) > 0);
    pair_close(&p);
}

static CU_TestInfo tests[] = {
    {"new: arguments", test_new_args},
    {"sizes 0, 1, 16384, 1 MiB both ways, in order", test_sizes_both_ways},
    {"3000 messages each way in bursts, in order", test_many_in_order},
    {"send queue bound: MESH_ERR_AGAIN", test_queue_bound},
    {"oversize message: MESH_ERR_TOO_BIG both ways", test_oversize},
    {"on_message error fails the connection", test_callback_error},
    {"on_message may send (echo)", test_echo_from_callback},
    {"garbage: MESH_ERR_PROTOCOL and a GOAWAY", test_garbage},
    {"raw client: 405, 404, 409, then messages and events", test_raw_client_statuses},
    {"raw client: body bounds", test_raw_client_bounds},
    {"raw client: stream resets bounded by count", test_raw_client_resets},
    {"raw server: authority, GOAWAY, 404 answer", test_raw_server},
    {"free with data in flight", test_free_midway},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"h2", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
