/*
 * mdns_peer — a small program for tests/netns/test_mdns_avahi.sh: publishes and/or browses
 * DNS-SD services through the real driver's avahi adapter (node/real/mdns.h) and prints what
 * it finds, one line each, on stdout:
 *   FOUND <name> <addr:port> [txt...]
 *   REMOVED <name> <addr:port>
 *
 * Usage: mdns_peer [--publish NAME --port N [--txt K=V]...] [--browse] [--type T]
 *                  [--expect NAME]... [--expect-gone NAME] [--expect-again NAME]
 *                  [--timeout SEC] [--debug]
 *        mdns_peer --check-api [--type T]
 * With --expect* it exits 0 as soon as every --expect name was found, the --expect-gone one
 * was found then removed, and the --expect-again one found, removed and found again; 1 when
 * --timeout (default 20 s) runs out. Without
 * them it runs until SIGINT/SIGTERM, withdraws its services and exits 0.
 * --check-api runs the ops' contract (argument errors, limits, stop() inside a callback) and
 * exits 0 when it held.
 * Exit 77: no avahi-daemon reachable (MESH_ERR_UNSUPPORTED); 2: bad arguments.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "real/driver.h"
#include "real/mdns.h"

enum { MAX_ARGS = 16 };

typedef struct peer {
    mesh_real *r;
    const char *expect[MAX_ARGS];
    int found[MAX_ARGS];
    size_t nexpect;
    const char *expect_gone, *expect_again;
    int gone_seen, gone_removed;
    int again_step; /* 0, 1 = found, 2 = removed, 3 = found again */
    int done;
} peer;

static int all_done(const peer *p)
{
    for (size_t i = 0; i < p->nexpect; i++)
        if (!p->found[i])
            return 0;
    return (!p->expect_gone || p->gone_removed) && (!p->expect_again || p->again_step == 3);
}

static int expecting(const peer *p)
{
    return p->nexpect || p->expect_gone || p->expect_again;
}

static void on_found(const mesh_mdns_found *f, int removed, void *ud)
{
    peer *p = ud;
    char a[MESH_ADDR_STRLEN];
    printf("%s %s %s", removed ? "REMOVED" : "FOUND", f->name,
           mesh_addr_format(f->addr, a, sizeof a));
    for (const char *const *t = f->txt; !removed && t && *t; t++)
        printf(" %s", *t);
    printf("\n");
    fflush(stdout);
    for (size_t i = 0; i < p->nexpect; i++)
        if (!removed && strcmp(f->name, p->expect[i]) == 0)
            p->found[i] = 1;
    if (p->expect_gone && strcmp(f->name, p->expect_gone) == 0) {
        if (!removed)
            p->gone_seen = 1;
        else if (p->gone_seen)
            p->gone_removed = 1;
    }
    if (p->expect_again && strcmp(f->name, p->expect_again) == 0 &&
        p->again_step % 2 == (removed ? 1 : 0) && p->again_step < 3)
        p->again_step++;
    if (expecting(p) && all_done(p)) {
        p->done = 1;
        mesh_real_stop(p->r);
    }
}

/* ---- --check-api: the ops' contract against a live daemon ---------------------------- */

static int g_in_env, g_calls, g_failed;
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "check-api: %s:%d: %s\n", __FILE__, __LINE__, #cond);                  \
            g_failed++;                                                                            \
        }                                                                                          \
    } while (0)
#define ENV(expr) (g_in_env++, (expr), g_in_env--)

/* Stops everything from inside the first callback (rule 2): no callback may follow. */
static void stop_in_cb(const mesh_mdns_found *f, int removed, void *ud)
{
    (void)f;
    (void)removed;
    mesh_env *env = ud;
    CHECK(g_in_env == 0); /* rule 1 */
    if (g_calls++ == 0)
        ENV(env->ops->mdns->stop(env->obj));
}

static int check_api(mesh_real *r, const char *type)
{
    mesh_env env = mesh_real_env(r);
    const mesh_mdns_ops *md = env.ops->mdns;
    void *o = env.obj;
    const char *txt[] = {"a=1", NULL};
    char big[300], longname[80];
    memset(big, 'b', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    const char *big_txt[] = {big, NULL};
    CHECK(mesh_real_mdns_attach(r) == MESH_ERR_EXISTS);
    CHECK(md->publish(o, "x", "meshara", 1, txt) == MESH_ERR_INVAL);
    CHECK(md->publish(o, "x", type, 0, txt) == MESH_ERR_INVAL);
    CHECK(md->publish(o, "", type, 1, txt) == MESH_ERR_INVAL);
    CHECK(md->publish(o, longname, type, 1, txt) == MESH_ERR_INVAL);
    CHECK(md->publish(o, "x", type, 1, big_txt) == MESH_ERR_LIMIT);
    CHECK(md->publish(o, "check-x", type, 1, NULL) == MESH_OK);
    CHECK(md->publish(o, "check-x", type, 2, txt) == MESH_ERR_EXISTS);
    for (int i = 1; i < MESH_REAL_MDNS_MAX_PUBS; i++) {
        char n[24];
        snprintf(n, sizeof n, "check-%d", i);
        CHECK(md->publish(o, n, type, 1, txt) == MESH_OK);
    }
    CHECK(md->publish(o, "check-too-many", type, 1, txt) == MESH_ERR_LIMIT);
    CHECK(md->browse(o, type, NULL, NULL) == MESH_ERR_INVAL);
    CHECK(md->browse(o, "bad", stop_in_cb, &env) == MESH_ERR_INVAL);
    for (int i = 0; i < MESH_REAL_MDNS_MAX_BROWSERS; i++)
        CHECK(md->browse(o, type, stop_in_cb, &env) == MESH_OK);
    CHECK(md->browse(o, type, stop_in_cb, &env) == MESH_ERR_LIMIT);
    /* 16 browsers see the 16 local services and whatever the LAN has, yet the stop() made in
     * the very first callback silences every one of them. */
    mesh_real_run_for(r, 3 * MESH_NS_PER_S);
    CHECK(g_calls == 1);
    CHECK(md->publish(o, "check-x", type, 1, txt) == MESH_OK); /* stop() freed the slots */
    CHECK(md->browse(o, type, stop_in_cb, &env) == MESH_OK);
    ENV(md->stop(o));
    printf("check-api: %s (%d callback)\n", g_failed ? "FAILED" : "ok", g_calls);
    return g_failed ? 1 : 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: mdns_peer [--publish NAME --port N [--txt K=V]...] [--browse] "
                    "[--type T] [--expect NAME]... [--expect-gone NAME] [--expect-again NAME] "
                    "[--timeout SEC] [--debug] | --check-api\n");
    return 2;
}

int main(int argc, char **argv)
{
    peer p = {0};
    const char *publish = NULL, *type = "_meshara._tcp";
    const char *txt[MAX_ARGS + 1] = {0};
    size_t ntxt = 0;
    long port = 0, timeout_s = 20;
    int browse = 0, debug = 0, api = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--browse") == 0) {
            browse = 1;
        } else if (strcmp(a, "--check-api") == 0) {
            api = 1;
        } else if (strcmp(a, "--debug") == 0) {
            debug = 1;
        } else if (!v) {
            return usage();
        } else if (strcmp(a, "--publish") == 0) {
            publish = v, i++;
        } else if (strcmp(a, "--port") == 0) {
            port = strtol(v, NULL, 10), i++;
        } else if (strcmp(a, "--type") == 0) {
            type = v, i++;
        } else if (strcmp(a, "--txt") == 0 && ntxt < MAX_ARGS) {
            txt[ntxt++] = v, i++;
        } else if (strcmp(a, "--expect") == 0 && p.nexpect < MAX_ARGS) {
            p.expect[p.nexpect++] = v, i++;
        } else if (strcmp(a, "--expect-gone") == 0) {
            p.expect_gone = v, i++;
        } else if (strcmp(a, "--expect-again") == 0) {
            p.expect_again = v, i++;
        } else if (strcmp(a, "--timeout") == 0) {
            timeout_s = strtol(v, NULL, 10), i++;
        } else {
            return usage();
        }
    }
    if ((publish && (port <= 0 || port > 65535)) || timeout_s <= 0)
        return usage();
    if (expecting(&p))
        browse = 1;

    mesh_real_config cfg;
    mesh_real_config_default(&cfg);
    cfg.log_level = debug ? MESH_LOG_DEBUG : MESH_LOG_INFO;

    if (mesh_real_new(&p.r, NULL, &cfg) != MESH_OK)
        return 1;
    int rc = mesh_real_mdns_attach(p.r);
    if (rc != MESH_OK) {
        printf("SKIP mdns: %s\n", mesh_errname(rc));
        mesh_real_free(p.r);
        return rc == MESH_ERR_UNSUPPORTED ? 77 : 1;
    }
    if (api) {
        rc = check_api(p.r, type);
        mesh_real_free(p.r);
        return rc;
    }
    mesh_env env = mesh_real_env(p.r);
    const mesh_mdns_ops *md = env.ops->mdns;
    if (publish && (rc = md->publish(env.obj, publish, type, (uint16_t)port, txt)) != MESH_OK) {
        fprintf(stderr, "publish: %s\n", mesh_strerror(rc));
        goto out;
    }
    if (browse && (rc = md->browse(env.obj, type, on_found, &p)) != MESH_OK) {
        fprintf(stderr, "browse: %s\n", mesh_strerror(rc));
        goto out;
    }
    if (expecting(&p)) {
        mesh_real_run_for(p.r, (mesh_time)timeout_s * MESH_NS_PER_S);
        rc = p.done ? MESH_OK : MESH_ERR_TIMEOUT;
        if (!p.done)
            fprintf(stderr, "mdns_peer: timed out after %ld s\n", timeout_s);
    } else {
        rc = mesh_real_run_until_signal(p.r) < 0 ? MESH_ERR_IO : MESH_OK;
    }
    md->stop(env.obj); /* withdraws: avahi sends the goodbyes */
    mesh_real_run_for(p.r, 100 * MESH_NS_PER_MS);
out:
    mesh_real_free(p.r);
    return rc == MESH_OK ? 0 : 1;
}
