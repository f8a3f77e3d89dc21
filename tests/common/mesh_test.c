/* mesh_test.c — CUnit runner and manual env shared by the test programs. */
#include "mesh_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int mesh_test_main(CU_SuiteInfo *suites)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    if (CU_register_suites(suites) != CUE_SUCCESS) {
        fprintf(stderr, "CU_register_suites: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (run == 0) {
        fprintf(stderr, "no test was run\n");
        return 1;
    }
    return fails ? 1 : 0;
}

void mesh_test_skip(const char *reason)
{
    printf("SKIP: %s\n", reason);
    fflush(stdout);
    exit(77);
}

void mesh_test_require_root(const char *what)
{
    if (geteuid() != 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "needs root for %s", what);
        mesh_test_skip(msg);
    }
}

static mesh_time tenv_now(void *obj)
{
    return ((mesh_test_env *)obj)->now;
}

static void tenv_random(void *obj, uint8_t *buf, size_t len)
{
    mesh_test_env *t = obj;
    for (size_t i = 0; i < len; i++) {
        t->rng ^= t->rng << 13;
        t->rng ^= t->rng >> 7;
        t->rng ^= t->rng << 17;
        buf[i] = (uint8_t)(t->rng >> 24);
    }
}

static void tenv_log(void *obj, int level, const char *msg)
{
    mesh_test_env *t = obj;
    t->log_lines++;
    if (getenv("MESH_TEST_LOG"))
        fprintf(stderr, "[test-env %d] %s\n", level, msg);
}

static const mesh_env_ops TEST_ENV_OPS = {
    .now = tenv_now,
    .random = tenv_random,
    .log = tenv_log,
};

void mesh_test_env_init(mesh_test_env *t, uint64_t seed)
{
    memset(t, 0, sizeof *t);
    t->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
    t->env.ops = &TEST_ENV_OPS;
    t->env.obj = t;
}

void mesh_test_buf_add(mesh_test_buf *x, const void *d, size_t n)
{
    if (x->len + n > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        while (cap < x->len + n)
            cap *= 2;
        uint8_t *b = realloc(x->b, cap);
        if (!b) { /* abort, not CU_ASSERT: fuzz targets use this outside CUnit too */
            fputs("mesh_test_buf_add: out of memory\n", stderr);
            abort();
        }
        x->b = b;
        x->cap = cap;
    }
    if (n)
        memcpy(x->b + x->len, d, n);
    x->len += n;
}
