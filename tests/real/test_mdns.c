/* test_mdns.c — the real driver's avahi adapter (node/real/mdns.h) where no daemon answers.
 *
 * Publishing and browsing against real avahi-daemons run in tests/netns/test_mdns_avahi.sh
 * (namespaces with their own D-Bus and avahi). Here: the system bus address points at a
 * socket that does not exist, so attaching must fail cleanly with MESH_ERR_UNSUPPORTED,
 * say so in the log, and leave the env without mDNS ops; the driver keeps working. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh_test.h"
#include "real/driver.h"
#include "real/mdns.h"

static int g_warned;

static void sink(void *ud, int level, mesh_time now, const char *msg)
{
    (void)ud;
    (void)now;
    if (level == MESH_LOG_WARN && strstr(msg, "avahi-daemon not available"))
        g_warned++;
    if (getenv("MESH_TEST_LOG"))
        fprintf(stderr, "%d %s\n", level, msg);
}

static void fired(mesh_timer *t, void *ud)
{
    (void)t;
    (*(int *)ud)++;
}

static void test_no_daemon_is_unsupported(void)
{
    setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/meshara-test/system_bus_socket", 1);
    mesh_real_config cfg;
    mesh_real_config_default(&cfg);
    cfg.log_sink = sink;
    mesh_real *r = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_real_new(&r, NULL, &cfg), MESH_OK);
    g_warned = 0;
    CU_ASSERT_EQUAL(mesh_real_mdns_attach(r), MESH_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(g_warned, 1);
    mesh_env env = mesh_real_env(r);
    CU_ASSERT_PTR_NULL(env.ops->mdns);
    CU_ASSERT_PTR_NULL(mesh_real_mdns_ctx(r));
    /* a second try fails the same way (nothing half-installed) */
    CU_ASSERT_EQUAL(mesh_real_mdns_attach(r), MESH_ERR_UNSUPPORTED);
    /* the driver is unharmed: a timer still fires */
    int n = 0;
    mesh_timer *t = env.ops->timer_new(env.obj, fired, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    env.ops->timer_set(env.obj, t, env.ops->now(env.obj));
    CU_ASSERT_EQUAL(mesh_real_run_for(r, 50 * MESH_NS_PER_MS), MESH_OK);
    CU_ASSERT_EQUAL(n, 1);
    env.ops->timer_free(env.obj, t);
    mesh_real_free(r);
}

static void test_bad_arguments(void)
{
    CU_ASSERT_EQUAL(mesh_real_mdns_attach(NULL), MESH_ERR_INVAL);
    CU_ASSERT_PTR_NULL(mesh_real_mdns_ctx(NULL));
    CU_ASSERT_EQUAL(mesh_real_set_mdns(NULL, NULL, NULL, NULL), MESH_ERR_INVAL);
}

/* The hook itself: installing, refusing a second adapter, ctx_free on mesh_real_free. */
static int g_freed;
static int hook_publish(void *obj, const char *n, const char *t, uint16_t p, const char *const *x)
{
    (void)obj, (void)n, (void)t, (void)p, (void)x;
    return MESH_OK;
}
static int hook_browse(void *obj, const char *t, mesh_mdns_cb cb, void *ud)
{
    (void)obj, (void)t, (void)cb, (void)ud;
    return MESH_OK;
}
static void hook_stop(void *obj)
{
    (void)obj;
}
static void hook_free(void *ctx)
{
    g_freed += *(int *)ctx;
}

static void test_set_mdns_hook(void)
{
    static const mesh_mdns_ops ops = {hook_publish, hook_browse, hook_stop};
    mesh_real *r = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_real_new(&r, NULL, NULL), MESH_OK);
    mesh_env before = mesh_real_env(r);
    int ctx = 7;
    CU_ASSERT_EQUAL(mesh_real_set_mdns(r, NULL, &ctx, hook_free), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_real_set_mdns(r, &ops, &ctx, hook_free), MESH_OK);
    CU_ASSERT_PTR_EQUAL(before.ops->mdns, &ops); /* an env handed out earlier sees it */
    CU_ASSERT_PTR_EQUAL(mesh_real_mdns_ctx(r), &ctx);
    CU_ASSERT_EQUAL(mesh_real_set_mdns(r, &ops, &ctx, hook_free), MESH_ERR_EXISTS);
    CU_ASSERT_EQUAL(mesh_real_mdns_attach(r), MESH_ERR_EXISTS);
    mesh_real *other = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_real_new(&other, NULL, NULL), MESH_OK);
    CU_ASSERT_PTR_NULL(mesh_real_env(other).ops->mdns); /* per driver, not global */
    mesh_real_free(other);
    g_freed = 0;
    mesh_real_free(r);
    CU_ASSERT_EQUAL(g_freed, 7);
}

int main(void)
{
    static CU_TestInfo tests[] = {
        {"no avahi-daemon: MESH_ERR_UNSUPPORTED, logged, env without mDNS",
         test_no_daemon_is_unsupported},
        {"bad arguments", test_bad_arguments},
        {"mesh_real_set_mdns: per-driver ops, ctx_free at mesh_real_free", test_set_mdns_hook},
        CU_TEST_INFO_NULL,
    };
    static CU_SuiteInfo suites[] = {
        {"real_mdns", NULL, NULL, NULL, NULL, tests},
        CU_SUITE_INFO_NULL,
    };
    return mesh_test_main(suites);
}
