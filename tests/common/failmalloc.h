/* failmalloc.h — a failing allocator for the out-of-memory walk (the test_failmalloc.c programs),
 * in the manner of SQLite's fault simulator and nghttp2's failmalloc. Test code.
 *
 * Mechanism. A program that uses it is linked with
 *     -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup
 * (tests/CMakeLists.txt does it for every test_failmalloc program), so each allocation made
 * by code linked statically into it — meshara_core, meshara_sim, the generated protobuf-c
 * code, protobuf-c's unpacking through wire.c's budget allocator, nghttp2 through h2.c's
 * nghttp2_mem (no subject runs HTTP/2 yet) — goes through the counting wrappers here, which call
 * the real function (ASan's interceptors still see every block). mesh_fm_init() routes OpenSSL
 * (CRYPTO_set_mem_functions) and SQLite (SQLITE_CONFIG_MALLOC) through the same counter; it
 * must run first in main(), before either library allocates.
 *
 * OpenSSL 3.0 leaks a little on some of its own failure paths (a library context set up
 * half-way, a name-map entry); failmalloc.c lists them (OPENSSL_LEAKY) and hides from
 * LeakSanitizer what a run that failed there left of OpenSSL's — counted in the report as
 * openssl_leaks. Any other leak is reported at exit.
 *
 * Not counted (shared libraries allocating with their own malloc): libyaml's parser
 * internals, protobuf-c's free_unpacked and unpacking with no allocator, nghttp2's callbacks
 * and option objects, libc (stdio, qsort...). Their failures are not simulated.
 *
 * Use: mesh_fm_begin(0, 0) counts a complete run (mesh_fm_end() returns the count); then for
 * each N, mesh_fm_begin(N, cascade) fails the Nth allocation after it (1-based; with cascade
 * every later one too) and mesh_fm_end() stops. Outside begin/end nothing is counted nor
 * failed. A counting run can also record where each allocation came from
 * (mesh_fm_trace_*), to walk our own code's allocations and the libraries' in separate strides.
 * Single-threaded, like the code under test.
 */
#ifndef MESH_TEST_FAILMALLOC_H
#define MESH_TEST_FAILMALLOC_H

#include <stddef.h>
#include <stdint.h>

/* Who asked for an allocation. */
typedef enum mesh_fm_src {
    MESH_FM_OURS = 0,    /* a wrapped malloc/calloc/realloc/strdup/strndup call */
    MESH_FM_OPENSSL = 1, /* OPENSSL_malloc & co. */
    MESH_FM_SQLITE = 2,  /* sqlite3_malloc & co. */
} mesh_fm_src;

/* Install the OpenSSL and SQLite hooks. Returns 0, or -1 when a library had already
 * allocated (then its allocations are not counted: the caller should fail loudly). */
int mesh_fm_init(void);
/* Start counting; fail allocation number fail_at (0: none), and with cascade every one
 * after it. Resets the counters. */
void mesh_fm_begin(uint64_t fail_at, int cascade);
/* Stop counting and failing; the number of allocations counted since mesh_fm_begin. */
uint64_t mesh_fm_end(void);
/* Allocations failed since mesh_fm_begin. */
uint64_t mesh_fm_failed(void);
/* While paused (nestable), allocations are neither counted nor failed: test scaffolding
 * that is not under test (a harness's own buffers) allocates between pause and resume. */
void mesh_fm_pause(void);
void mesh_fm_resume(void);

/* Record the source of every allocation counted from now on, until mesh_fm_end: call it
 * right after mesh_fm_begin(0, 0). (No memory for the trace aborts the program.) */
void mesh_fm_trace_start(void);
/* Source of allocation n (1-based) of the traced run; MESH_FM_OURS when n is outside it. */
mesh_fm_src mesh_fm_trace_src(uint64_t n);
/* Allocations traced per source (index: mesh_fm_src). */
uint64_t mesh_fm_trace_count(mesh_fm_src src);
void mesh_fm_trace_free(void);

/* ---- the walk ---------------------------------------------------------------------------- */

enum mesh_fm_limits {
    MESH_FM_MAX_CODES = 16, /* distinct outcomes a walk tallies */
};

/* One complete run of a subject: set up, exercise, tear down. Returns its outcome, MESH_OK or
 * the first error it met; whatever happens it frees everything it made (LSan checks at
 * exit) and it must end (bounded virtual time, event caps). It makes its own CUnit
 * assertions on what must hold even when an allocation failed. */
typedef int (*mesh_fm_run_fn)(void *ud);

typedef struct mesh_fm_walk_cfg {
    /* Outcomes allowed besides MESH_OK and MESH_ERR_NOMEM (0-terminated). */
    const int *allowed;
    /* Outcomes allowed only when the failed allocation was OpenSSL's or SQLite's (0-terminated):
     * a library that cannot tell its own out-of-memory from a verdict (OpenSSL's Ed25519 verify
     * answers "bad signature" when it could not allocate) is named here, not excused
     * everywhere. */
    const int *foreign_allowed;
    /* Runs a walk may take (0: every allocation). Above it, the walk fails every allocation
     * of our own code if they fit in half of it (else an even stride of them) and an even
     * stride of the others (OpenSSL, SQLite) in the rest. */
    uint64_t max_runs;
    /* Also fail every allocation from N on, for every cascade_stride-th N (0: never). */
    uint64_t cascade_stride;
} mesh_fm_walk_cfg;

typedef struct mesh_fm_report {
    uint64_t count;                    /* allocations in a complete run */
    uint64_t per_src[3];               /* of which, by source (mesh_fm_src) */
    uint64_t runs, cascades;           /* runs with a failure injected (cascades among them) */
    uint64_t stride_ours, stride;      /* over our allocations, over the others (1: all) */
    uint64_t recovered;                /* runs that still ended MESH_OK */
    uint64_t unstable;                 /* runs in which allocation N never came */
    uint64_t openssl_leaks;            /* runs in which OpenSSL leaked on its own failure path */
    uint64_t bad;                      /* runs with an outcome not allowed or an assertion failed */
    int codes[MESH_FM_MAX_CODES];      /* outcomes seen ... */
    uint64_t tally[MESH_FM_MAX_CODES]; /* ... and how often */
    double seconds;
} mesh_fm_report;

/* Count a complete run of run(ud) (it must end MESH_OK), then run it again with allocation
 * N failing for the N chosen by cfg. Prints one line per walk (and, with MESH_FM_VERBOSE in
 * the environment, one per run) and a line for each run whose outcome is not allowed.
 * MESH_FM_ONLY=N runs only N (MESH_FM_BACKTRACE=1: and prints where allocation N was asked);
 * MESH_FM_FULL=1 walks every allocation whatever max_runs.
 * Returns 0, or -1 if the counting run did not end MESH_OK (nothing walked). */
int mesh_fm_walk(const char *name, mesh_fm_run_fn run, void *ud, const mesh_fm_walk_cfg *cfg,
                 mesh_fm_report *out);
/* 1 if a subject named name is to be walked: MESH_FM_SUBJECT unset, or equal to name. */
int mesh_fm_selected(const char *name);

#endif
