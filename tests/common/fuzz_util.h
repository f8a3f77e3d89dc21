/* fuzz_util.h — what several fuzz targets (tests/fuzz/) share. Test code.
 *
 * Seeds: a target that makes its own seed corpus from our code calls mesh_fuzz_seeds() from
 * LLVMFuzzerInitialize; with MESH_FUZZ_SEEDS=DIR in the environment its writer fills DIR
 * (tests/fuzz/corpus/<target>/ to refresh the committed corpus) and the program exits.
 *
 * HTTP/2: an h2 endpoint under fuzzing is fed and pulled through these, which trap on a
 * broken contract (h2.h): a message above the maximum, an error that is not final, a pull
 * that does not run dry. */
#ifndef MESH_TEST_FUZZ_UTIL_H
#define MESH_TEST_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "core/h2.h"

/* If MESH_FUZZ_SEEDS is set: write(dir), then exit(0). */
void mesh_fuzz_seeds(void (*write)(const char *dir));
/* A target's LLVMFuzzerInitialize that only does that. */
#define MESH_FUZZ_SEED_WRITER(write)                                                               \
    int LLVMFuzzerInitialize(int *argc, char ***argv);                                             \
    int LLVMFuzzerInitialize(int *argc, char ***argv)                                              \
    {                                                                                              \
        (void)argc, (void)argv;                                                                    \
        mesh_fuzz_seeds(write);                                                                    \
        return 0;                                                                                  \
    }
/* DIR/name = head (hlen bytes, may be 0) then n bytes of p; a failure exits(1) naming it. */
void mesh_fuzz_seed(const char *dir, const char *name, const void *head, size_t hlen, const void *p,
                    size_t n);

typedef struct mesh_fuzz_h2 {
    size_t max;        /* the endpoint's max_message */
    unsigned messages; /* handed out so far */
    int err;           /* the first error mesh_h2_recv returned */
} mesh_fuzz_h2;

/* on_message for the endpoint (ud = mesh_fuzz_h2 *): counts, traps above max. */
int mesh_fuzz_h2_message(void *ud, const uint8_t *data, size_t len);
/* Pull until 0; traps after too many pulls or on a bad chunk. */
void mesh_fuzz_h2_drain(mesh_h2 *h);
/* Receive n bytes then drain; traps if an earlier error is not returned again. */
void mesh_fuzz_h2_feed(mesh_h2 *h, mesh_fuzz_h2 *f, const uint8_t *p, size_t n);

#endif
