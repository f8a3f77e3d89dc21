/* test_peerstore.c — the SQLite peer store (node/real/peerstore.h): a real file in a temporary
 * directory; records round trip, seq ordering, the row bound, WAL mode, refusals of files that
 * are not ours; and a node restarted in the simulator joins through the store alone.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/node.h"
#include "core/peer.h"
#include "mesh_test.h"
#include "meshara/meshara.h"
#include "real/peerstore.h"
#include "sim/driver.h"

#define MS(x) ((mesh_time)(x)*MESH_NS_PER_MS)
#define SEC(x) ((mesh_time)(x)*MESH_NS_PER_S)

static char g_dir[64];

static void make_dir(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/meshara-peerstore-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(g_dir));
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

static void path_in(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", g_dir, name);
}

/* Records as the store sees them: opaque bytes under a node id. */
typedef struct loaded {
    uint8_t rec[16][64];
    size_t len[16];
    int n;
} loaded;

static void each(void *ud, const uint8_t *rec, size_t len)
{
    loaded *l = ud;
    if (l->n < 16 && len <= 64) {
        memcpy(l->rec[l->n], rec, len);
        l->len[l->n] = len;
    }
    l->n++;
}

static int save(mesh_peer_store st, int who, uint64_t seq, const char *text)
{
    uint8_t id[32];
    memset(id, who, sizeof id);
    return st.ops->save(st.obj, id, seq, (const uint8_t *)text, strlen(text));
}

static void test_round_trip_and_seq(void)
{
    make_dir();
    char path[128];
    path_in(path, sizeof path, "peers.db");
    mesh_peerstore *s = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_peerstore_open(&s, path, NULL, NULL), MESH_OK);
    mesh_peer_store st = mesh_peerstore_store(s);
    CU_ASSERT_EQUAL(save(st, 1, 5, "one v5"), MESH_OK);
    CU_ASSERT_EQUAL(save(st, 2, 1, "two v1"), MESH_OK);
    CU_ASSERT_EQUAL(save(st, 1, 4, "one v4"), MESH_OK); /* older: ignored */
    CU_ASSERT_EQUAL(save(st, 2, 2, "two v2"), MESH_OK); /* newer: replaces */
    CU_ASSERT_EQUAL(save(st, 3, 0, ""), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_peerstore_count(s), 2);

    /* WAL mode, seen from a second connection while the store is open. */
    sqlite3 *db;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *q;
    CU_ASSERT_EQUAL(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_step(q), SQLITE_ROW);
    CU_ASSERT_STRING_EQUAL((const char *)sqlite3_column_text(q, 0), "wal");
    sqlite3_finalize(q);
    sqlite3_close(db);
    mesh_peerstore_close(s);

    /* Reopened: newest saved first, the replaced and ignored versions as decided. */
    CU_ASSERT_EQUAL_FATAL(mesh_peerstore_open(&s, path, NULL, NULL), MESH_OK);
    st = mesh_peerstore_store(s);
    loaded l = {0};
    CU_ASSERT_EQUAL(st.ops->load(st.obj, each, &l), MESH_OK);
    CU_ASSERT_EQUAL(l.n, 2);
    CU_ASSERT_EQUAL(l.len[0], 6);
    CU_ASSERT_EQUAL(memcmp(l.rec[0], "two v2", 6), 0);
    CU_ASSERT_EQUAL(memcmp(l.rec[1], "one v5", 6), 0);
    /* The insertion counter goes on from the file: a new save is the newest. */
    CU_ASSERT_EQUAL(save(st, 1, 6, "one v6"), MESH_OK);
    memset(&l, 0, sizeof l);
    CU_ASSERT_EQUAL(st.ops->load(st.obj, each, &l), MESH_OK);
    CU_ASSERT_EQUAL(memcmp(l.rec[0], "one v6", 6), 0);
    mesh_peerstore_close(s);
    remove_dir();
}

static void test_bound(void)
{
    make_dir();
    char path[128];
    path_in(path, sizeof path, "bound.db");
    mesh_peerstore *s = NULL;
    mesh_peerstore_cfg cfg = {.max_records = 5};
    CU_ASSERT_EQUAL_FATAL(mesh_peerstore_open(&s, path, NULL, &cfg), MESH_OK);
    mesh_peer_store st = mesh_peerstore_store(s);
    for (int i = 1; i <= 8; i++) {
        char text[16];
        snprintf(text, sizeof text, "peer %d", i);
        CU_ASSERT_EQUAL(save(st, i, 1, text), MESH_OK);
        CU_ASSERT_EQUAL(mesh_peerstore_count(s), (size_t)(i < 5 ? i : 5));
    }
    loaded l = {0};
    CU_ASSERT_EQUAL(st.ops->load(st.obj, each, &l), MESH_OK);
    CU_ASSERT_EQUAL(l.n, 5);
    CU_ASSERT_EQUAL(memcmp(l.rec[0], "peer 8", 6), 0);
    CU_ASSERT_EQUAL(memcmp(l.rec[4], "peer 4", 6), 0);
    mesh_peerstore_close(s);
    remove_dir();
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

static void test_refusals(void)
{
    make_dir();
    char path[128];
    mesh_peerstore *s = NULL;
    path_in(path, sizeof path, "garbage.db");
    write_file(path, "this is not an SQLite database, but it is long enough to be read as one "
                     "by the pager: padding padding padding padding padding padding padding");
    CU_ASSERT_EQUAL(mesh_peerstore_open(&s, path, NULL, NULL), MESH_ERR_CORRUPT);
    CU_ASSERT_PTR_NULL(s);

    path_in(path, sizeof path, "other.db");
    sqlite3 *db;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(path, &db), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_exec(db, "PRAGMA user_version=7", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    CU_ASSERT_EQUAL(mesh_peerstore_open(&s, path, NULL, NULL), MESH_ERR_CORRUPT);

    path_in(path, sizeof path, "no/such/dir/peers.db");
    CU_ASSERT_EQUAL(mesh_peerstore_open(&s, path, NULL, NULL), MESH_ERR_IO);
    CU_ASSERT_EQUAL(mesh_peerstore_open(&s, NULL, NULL, NULL), MESH_ERR_INVAL);
    CU_ASSERT_PTR_NULL(s);
    mesh_peerstore_close(NULL);
    remove_dir();
}

/* ---- a node restarted in the simulator with this store --------------------------------- */

enum { B = 0, X = 1, Y = 2, NN = 3, PORT = 7000 };

typedef struct rig {
    sim_world *w;
    sim_host *h[NN];
    sim_driver *d[NN];
    mesh_env env[NN];
    mesh_identity *id[NN];
    mesh_node *n[NN];
    int joined[NN], acked;
} rig;

static void on_joined(mesh_node *n, int status, void *ud)
{
    (void)n;
    int *j = ud;
    *j = status == MESH_OK ? 1 : -1;
}

static void on_done(mesh_node *n, int result, void *ud)
{
    (void)n;
    *(int *)ud = result == MESH_OK ? 1 : -1;
}

static mesh_addr addr_of(rig *r, int i)
{
    return mesh_addr_v4(sim_host_ip(r->h[i]), PORT);
}

static void start(rig *r, int i, int with_boot, mesh_peer_store store, uint64_t seq)
{
    mesh_node_cfg c;
    memset(&c, 0, sizeof c);
    c.identity = r->id[i];
    c.listen = addr_of(r, i);
    c.record_seq = seq;
    c.store = store;
    if (with_boot) {
        c.bootstrap[0].addr = addr_of(r, B);
        memcpy(c.bootstrap[0].key, mesh_identity_pubkey(r->id[B]), 32);
        c.n_bootstrap = 1;
    }
    mesh_node_cbs cbs = {.on_joined = on_joined};
    r->joined[i] = 0;
    CU_ASSERT_EQUAL_FATAL(mesh_node_new(&r->n[i], &r->env[i], &c, &cbs, &r->joined[i]), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_node_start(r->n[i]), MESH_OK);
}

static void run_for(rig *r, mesh_time d)
{
    sim_sched *s = sim_world_sched(r->w);
    CU_ASSERT_EQUAL(sim_sched_run_until(s, sim_sched_now(s) + d), MESH_OK);
}

static void test_node_restart(void)
{
    make_dir();
    char path[128];
    path_in(path, sizeof path, "node.db");
    rig r;
    memset(&r, 0, sizeof r);
    CU_ASSERT_EQUAL_FATAL(sim_world_new(&r.w, 5, NULL), MESH_OK);
    sim_link_cfg l = {.latency = MS(10)};
    for (int i = 0; i < NN; i++) {
        char name[8];
        snprintf(name, sizeof name, "n%d", i);
        sim_host_cfg hc = {name, SIM_IP4(10, 0, 0, 1 + i), NULL, l, l};
        CU_ASSERT_EQUAL_FATAL(sim_net_add_host(sim_world_net(r.w), &hc, &r.h[i]), MESH_OK);
        CU_ASSERT_EQUAL_FATAL(sim_driver_new(&r.d[i], r.w, r.h[i]), MESH_OK);
        r.env[i] = sim_driver_env(r.d[i]);
        CU_ASSERT_EQUAL_FATAL(mesh_identity_generate(&r.id[i], &r.env[i]), MESH_OK);
    }
    mesh_peerstore *ps = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_peerstore_open(&ps, path, NULL, NULL), MESH_OK);
    mesh_peer_store none = {0};
    start(&r, B, 0, none, 1);
    start(&r, Y, 1, none, 1);
    start(&r, X, 1, mesh_peerstore_store(ps), 1);
    run_for(&r, SEC(5));
    CU_ASSERT_EQUAL(r.joined[X], 1);
    CU_ASSERT(mesh_peerstore_count(ps) >= 1);
    mesh_peerstore_close(ps);

    /* The process "restarts": node gone, store reopened from the file, no bootstrap node
     * configured and the old one unreachable. */
    mesh_node_free(r.n[X]);
    mesh_node_free(r.n[B]);
    r.n[X] = r.n[B] = NULL;
    sim_host_set_up(r.h[B], 0);
    run_for(&r, SEC(1));
    CU_ASSERT_EQUAL_FATAL(mesh_peerstore_open(&ps, path, NULL, NULL), MESH_OK);
    start(&r, X, 0, mesh_peerstore_store(ps), 2);
    run_for(&r, SEC(15));
    CU_ASSERT_EQUAL(r.joined[X], 1);
    mesh_node_stats st;
    mesh_node_get_stats(r.n[X], &st);
    CU_ASSERT(st.records_accepted >= 1);
    int done = 0;
    CU_ASSERT_EQUAL(mesh_node_send(r.n[X], mesh_identity_pubkey(r.id[Y]), (const uint8_t *)"hi", 2,
                                   on_done, &done),
                    MESH_OK);
    run_for(&r, SEC(15));
    CU_ASSERT_EQUAL(done, 1);
    for (int i = 0; i < NN; i++)
        mesh_node_free(r.n[i]);
    mesh_peerstore_close(ps);
    for (int i = 0; i < NN; i++) {
        sim_driver_free(r.d[i]);
        mesh_identity_free(r.id[i]);
    }
    sim_world_free(r.w);
    remove_dir();
}

static CU_TestInfo tests[] = {
    {"records round trip; seq decides", test_round_trip_and_seq},
    {"bounded: the oldest saved go", test_bound},
    {"files that are not ours are refused", test_refusals},
    {"a restarted node joins through the store", test_node_restart},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"peerstore", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
