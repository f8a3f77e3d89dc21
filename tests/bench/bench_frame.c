/* bench_frame.c — payload throughput of the session's byte path without TLS: pad_encode into
 * the send buffer, frame_header, then on the receiving side frame_feed in 16 KiB segments
 * (the size of a TLS record, so large frames are reassembled) and pad_decode. Messages are a
 * fixed mix from 64 B to 64 KiB. The same payloads are also moved with one memcpy each, in
 * the same loop shape, and the ratio of the two rates is printed:
 *     BENCH frame_pad_bytes_per_s <n> ratio=<x>
 * (each rate is the best of several runs). The wall clock is read here only to time loops. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/frame.h"
#include "core/pad.h"

enum {
    BENCH_ROUNDS = 10000, /* rounds of the whole mix per timed run */
    BENCH_RUNS = 5,       /* timed runs of each loop; the best counts */
    BENCH_SEGMENT = 16384,
};

static const size_t MIX[] = {64, 100, 256, 512, 1000, 1400, 4000, 9000, 16000, 30000, 65536};
#define NMIX (sizeof MIX / sizeof MIX[0])

typedef struct sink {
    size_t bytes;   /* payload bytes received */
    uint64_t check; /* keeps the work observable */
    int failed;
} sink;

static int on_frame(void *ud, const uint8_t *p, size_t len)
{
    sink *s = ud;
    const uint8_t *payload;
    size_t plen;
    if (mesh_pad_decode(p, len, &payload, &plen) != MESH_OK) {
        s->failed = 1;
        return MESH_ERR_MALFORMED;
    }
    s->bytes += plen;
    s->check += payload[0] + payload[plen - 1];
    return MESH_OK;
}

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(void)
{
    size_t payload_total = 0, stream_cap = 0;
    for (size_t i = 0; i < NMIX; i++) {
        payload_total += MIX[i];
        stream_cap += MESH_FRAME_HDR_LEN + mesh_pad_size(MIX[i]);
    }
    uint8_t *src = malloc(MIX[NMIX - 1]), *stream = malloc(stream_cap);
    uint8_t *dst = malloc(payload_total);
    if (!src || !stream || !dst)
        return 1;
    for (size_t i = 0; i < MIX[NMIX - 1]; i++)
        src[i] = (uint8_t)(i * 29 + 7);

    double best_pipe = 0, best_copy = 0;
    uint64_t check = 0;
    for (int run = 0; run < BENCH_RUNS; run++) {
        /* pipeline: sender pads and frames one round of the mix, receiver takes it apart */
        mesh_frame_dec d;
        mesh_frame_dec_init(&d, 0);
        sink s = {0, 0, 0};
        double t0 = wall();
        for (int r = 0; r < BENCH_ROUNDS; r++) {
            size_t off = 0;
            for (size_t i = 0; i < NMIX; i++) {
                long n = mesh_pad_encode(src, MIX[i], stream + off + MESH_FRAME_HDR_LEN,
                                         stream_cap - off - MESH_FRAME_HDR_LEN);
                if (n < 0 || mesh_frame_header(stream + off, (size_t)n, d.max) != MESH_OK)
                    return 1;
                off += MESH_FRAME_HDR_LEN + (size_t)n;
            }
            for (size_t pos = 0; pos < off; pos += BENCH_SEGMENT) {
                size_t seg = off - pos < BENCH_SEGMENT ? off - pos : BENCH_SEGMENT;
                if (mesh_frame_feed(&d, stream + pos, seg, on_frame, &s) != MESH_OK)
                    return 1;
            }
        }
        double t1 = wall();
        mesh_frame_dec_free(&d);
        if (s.failed || s.bytes != payload_total * BENCH_ROUNDS) {
            fprintf(stderr, "bench_frame: payload lost\n");
            return 1;
        }
        check += s.check;
        double rate = (double)s.bytes / (t1 - t0);
        if (rate > best_pipe)
            best_pipe = rate;

        /* baseline: the same payloads, one memcpy each, same rounds */
        size_t copied = 0;
        t0 = wall();
        for (int r = 0; r < BENCH_ROUNDS; r++) {
            size_t off = 0;
            for (size_t i = 0; i < NMIX; i++) {
                memcpy(dst + off, src, MIX[i]);
                off += MIX[i];
            }
            copied += off;
            check += dst[(size_t)r % off];
        }
        t1 = wall();
        rate = (double)copied / (t1 - t0);
        if (rate > best_copy)
            best_copy = rate;
    }
    printf("BENCH frame_pad_bytes_per_s %.0f ratio=%.3f\n", best_pipe, best_pipe / best_copy);
    fprintf(stderr, "bench_frame: memcpy %.0f bytes/s (check %llu)\n", best_copy,
            (unsigned long long)check);
    free(src);
    free(stream);
    free(dst);
    return 0;
}
