/* mesh_test.h — shared helpers for the CUnit test programs.
 *
 * A test file defines CU_TestInfo arrays and a CU_SuiteInfo table, then
 *     int main(void) { return mesh_test_main(suites); }
 * mesh_test_skip() prints the reason and exits 77, which ctest reports as "skipped". */
#ifndef MESH_TEST_H
#define MESH_TEST_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stdint.h>

#include "meshara/env.h"

int mesh_test_main(CU_SuiteInfo *suites);
_Noreturn void mesh_test_skip(const char *reason);
/* Skip (exit 77) unless running as root; reason says what needs root. */
void mesh_test_require_root(const char *what);

/* A manual env for unit tests of core modules: the clock only moves when told, randomness
 * is a seeded xorshift, log lines go to stderr when MESH_TEST_LOG is set. Timers, streams
 * and datagrams are not provided (NULL): tests that need them use the simulator. */
typedef struct mesh_test_env {
    mesh_env env;
    mesh_time now;
    uint64_t rng;
    unsigned log_lines;
} mesh_test_env;
void mesh_test_env_init(mesh_test_env *t, uint64_t seed);

/* A growable byte buffer (zero-initialise it; free b when done). */
typedef struct mesh_test_buf {
    uint8_t *b;
    size_t len, cap;
} mesh_test_buf;
/* Append n bytes (d may be NULL when n is 0); out of memory aborts (usable outside CUnit). */
void mesh_test_buf_add(mesh_test_buf *x, const void *d, size_t n);

#endif
