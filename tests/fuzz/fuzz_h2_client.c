/* fuzz_h2_client.c — the HTTP/2 client side (node/core/h2.c) on any bytes a server could
 * send: SETTINGS, answers to the events request and to message requests, and the events
 * body, a stream of length-prefixed frames (frame.h) split across DATA frames as the server
 * likes. It must never crash, never hand out a message above its maximum, stay failed once
 * it failed, and always run dry when pulled.
 * The client is made and pulled first (preface, SETTINGS, the events request on stream 1)
 * with one message queued, so a message request (stream 3) is open. Inputs that do not start
 * with a SETTINGS frame get an empty one put in front (a server's connection preface), so the
 * fuzzer spends its time on what follows. The input is cut in two at a point taken from its
 * last byte; between the halves the client queues another message and is pulled, as a
 * session would. Seeds: tests/fuzz/corpus/fuzz_h2_client/, what our server sends to our
 * client (MESH_FUZZ_SEEDS=DIR records them anew). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/h2.h"
#include "fuzz_util.h"
#include "mesh_test.h"
#include "meshara/error.h"

enum { FUZZ_H2_MAX = 65536, FRAME_HDR = 9, TYPE_SETTINGS = 4 };

static const uint8_t EMPTY_SETTINGS[FRAME_HDR] = {0, 0, 0, TYPE_SETTINGS, 0, 0, 0, 0, 0};

static void send_msg(mesh_h2 *h, const char *m)
{
    int rc = mesh_h2_send(h, (const uint8_t *)m, strlen(m));
    if (rc != MESH_OK && rc != MESH_ERR_CLOSED && rc != MESH_ERR_AGAIN)
        __builtin_trap();
}

/* ---- seeds: our server talking to our client, its side recorded ------------------------- */

static const mesh_h2_cbs COUNT_CBS = {.on_message = mesh_fuzz_h2_message};

/* Everything a can send, into b (and into rec if not NULL). Returns the bytes moved. */
static size_t move(mesh_h2 *a, mesh_h2 *b, mesh_test_buf *rec)
{
    size_t total = 0;
    const uint8_t *d;
    long n;
    while ((n = mesh_h2_pull(a, &d)) > 0) {
        if (rec)
            mesh_test_buf_add(rec, d, (size_t)n);
        (void)mesh_h2_recv(b, d, (size_t)n);
        total += (size_t)n;
    }
    return total;
}

/* The server's bytes to a client that sent nmsgs messages, the server answering with events
 * of the given sizes. */
static void record(const char *dir, const char *name, int nmsgs, const size_t *events,
                   size_t nevents)
{
    mesh_fuzz_h2 cm = {.max = FUZZ_H2_MAX}, sm = {.max = FUZZ_H2_MAX};
    mesh_h2 *c = NULL, *s = NULL;
    mesh_test_buf rec = {0};
    static uint8_t body[FUZZ_H2_MAX];
    if (mesh_h2_new(&c, 0, FUZZ_H2_MAX, &COUNT_CBS, &cm) != MESH_OK ||
        mesh_h2_new(&s, 1, FUZZ_H2_MAX, &COUNT_CBS, &sm) != MESH_OK)
        exit(1);
    for (int i = 0; i < nmsgs; i++)
        send_msg(c, "message");
    for (size_t i = 0; i < nevents; i++) {
        memset(body, (int)i + 'a', events[i]);
        if (mesh_h2_send(s, body, events[i]) != MESH_OK)
            exit(1);
    }
    for (int round = 0; round < 1000 && move(c, s, NULL) + move(s, c, &rec) > 0; round++) {
    }
    if (cm.messages != nevents) {
        fprintf(stderr, "fuzz_h2_client: %s: %u events of %zu\n", name, cm.messages, nevents);
        exit(1);
    }
    mesh_fuzz_seed(dir, name, NULL, 0, rec.b, rec.len);
    free(rec.b);
    mesh_h2_free(c);
    mesh_h2_free(s);
}

static void write_seeds(const char *dir)
{
    static const size_t small[] = {5, 0, 300};
    static const size_t split[] = {20000, 3};       /* one event over two DATA frames */
    static const size_t oversize[] = {FUZZ_H2_MAX}; /* exactly the maximum */
    record(dir, "events_small", 2, small, 3);
    record(dir, "event_split", 1, split, 2);
    record(dir, "event_max", 0, oversize, 1);
    record(dir, "answers_only", 3, NULL, 0);
}

MESH_FUZZ_SEED_WRITER(write_seeds)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mesh_fuzz_h2 f = {.max = FUZZ_H2_MAX};
    mesh_h2 *h;
    if (mesh_h2_new(&h, 0, FUZZ_H2_MAX, &COUNT_CBS, &f) != MESH_OK)
        return 0;
    send_msg(h, "first");
    mesh_fuzz_h2_drain(h);
    if (size < FRAME_HDR || data[3] != TYPE_SETTINGS)
        mesh_fuzz_h2_feed(h, &f, EMPTY_SETTINGS, sizeof EMPTY_SETTINGS);
    size_t cut = size ? (size_t)data[size - 1] * size / 256 : 0;
    mesh_fuzz_h2_feed(h, &f, data, cut);
    send_msg(h, "second");
    mesh_fuzz_h2_drain(h);
    mesh_fuzz_h2_feed(h, &f, data + cut, size - cut);
    mesh_h2_free(h);
    return 0;
}
