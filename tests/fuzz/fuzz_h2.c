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
#include "fuzz_util.h"
#include "meshara/error.h"

enum { FUZZ_H2_MAX = 4096 };

static const uint8_t PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                 "\x00\x00\x00\x04\x00\x00\x00\x00\x00";
enum { MAGIC_LEN = 24 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const mesh_h2_cbs cbs = {.on_message = mesh_fuzz_h2_message};
    mesh_fuzz_h2 f = {.max = FUZZ_H2_MAX};
    mesh_h2 *h;
    if (mesh_h2_new(&h, 1, FUZZ_H2_MAX, &cbs, &f) != MESH_OK)
        return 0;
    mesh_fuzz_h2_drain(h);
    if (size < MAGIC_LEN || memcmp(data, PREFACE, MAGIC_LEN) != 0)
        mesh_fuzz_h2_feed(h, &f, PREFACE, sizeof PREFACE - 1);
    size_t cut = size ? (size_t)data[size - 1] * size / 256 : 0;
    mesh_fuzz_h2_feed(h, &f, data, cut);
    int rc = mesh_h2_send(h, (const uint8_t *)"event", 5);
    if (rc != MESH_OK && rc != MESH_ERR_CLOSED)
        __builtin_trap();
    mesh_fuzz_h2_drain(h);
    mesh_fuzz_h2_feed(h, &f, data + cut, size - cut);
    mesh_h2_free(h);
    return 0;
}
