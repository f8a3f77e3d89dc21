/* fuzz_h2.c — the HTTP/2 input path of a server (node/core/h2.c) on any bytes: it must never
 * crash, never hand out a message above its maximum, stay failed once it failed, and always
 * run dry when pulled. Inputs that do not start with the client connection preface get a
 * valid one (magic + empty SETTINGS) put in front, so the fuzzer spends its time on frames.
 * The input is cut in two at a point taken from its last byte; between the halves the server
 * queues a message for the events stream and is pulled, as a session would. A small maximum
 * makes the oversize paths reachable. Seeds: tests/fuzz/corpus/fuzz_h2/ (recorded client
 * exchanges: ours, and raw requests answered 404/405/409). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/h2.h"
#include "meshara/error.h"

enum { FUZZ_H2_MAX = 4096, FUZZ_MAX_PULLS = 10000 };

static const uint8_t PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                 "\x00\x00\x00\x04\x00\x00\x00\x00\x00";
enum { MAGIC_LEN = 24 };

static int on_message(void *ud, const uint8_t *data, size_t len)
{
    (void)data;
    if (len > FUZZ_H2_MAX)
        __builtin_trap();
    (*(unsigned *)ud)++;
    return MESH_OK;
}

static void drain(mesh_h2 *h)
{
    const uint8_t *d;
    long n;
    int pulls = 0;
    while ((n = mesh_h2_pull(h, &d)) != 0) {
        if (++pulls > FUZZ_MAX_PULLS || n > MESH_H2_PULL_MAX || (n > 0 && !d))
            __builtin_trap();
    }
}

static int feed(mesh_h2 *h, const uint8_t *p, size_t n, int *err)
{
    int rc = mesh_h2_recv(h, p, n);
    if (*err && rc != *err)
        __builtin_trap(); /* failure is final */
    if (rc != MESH_OK)
        *err = rc;
    drain(h);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const mesh_h2_cbs cbs = {.on_message = on_message};
    unsigned messages = 0;
    mesh_h2 *h;
    if (mesh_h2_new(&h, 1, FUZZ_H2_MAX, &cbs, &messages) != MESH_OK)
        return 0;
    int err = 0;
    drain(h);
    if (size < MAGIC_LEN || memcmp(data, PREFACE, MAGIC_LEN) != 0)
        feed(h, PREFACE, sizeof PREFACE - 1, &err);
    size_t cut = size ? (size_t)data[size - 1] * size / 256 : 0;
    feed(h, data, cut, &err);
    int rc = mesh_h2_send(h, (const uint8_t *)"event", 5);
    if (rc != MESH_OK && rc != MESH_ERR_CLOSED)
        __builtin_trap();
    drain(h);
    feed(h, data + cut, size - cut, &err);
    mesh_h2_free(h);
    return 0;
}
