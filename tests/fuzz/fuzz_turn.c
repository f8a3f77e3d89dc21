/* fuzz_turn.c — the TURN client's response path (core/turn.h) on server bytes chosen by the
 * fuzzer: the answers to Allocate, Refresh, CreatePermission, Connect and ConnectionBind,
 * ConnectionAttempt indications, and the bytes of data connections, all through the one STUN
 * decoder. In a two-host simulated world (deterministic), the "server" host listens and
 * sends what the input says on the control connection or on the latest data connection.
 *
 * Input: records [flags:1][len:2 big-endian][len bytes]. flags:
 *   bit 0  on the latest data connection (else the control connection)
 *   bit 1  put in the transaction id of the last request the client sent on that connection
 *          (so answers can match; bytes 8..19 of the record, if it is that long), and make
 *          a FINGERPRINT at the end right again
 *   bit 2  re-sign: if the bytes decode as STUN, re-encode them with a MESSAGE-INTEGRITY made
 *          with the client's long-term key (user, the realm of its last request, password)
 *          and a FINGERPRINT, so authenticated success paths are reached
 *   bit 3  let 2 s of virtual time pass afterwards (timeouts, refreshes)
 *   bit 4  close that connection afterwards
 * Checks: never a crash or a leak; on_allocated at most once with a failure, and only a
 * documented status; an allocation reports an IPv4/IPv6 relayed address; an incoming stream
 * is accepted by a consumer that echoes, and freeing the client at the end is clean.
 *
 * Seeds (MESH_FUZZ_SEEDS=DIR): a 401 then a signed success (allocated), then a
 * ConnectionAttempt and a signed ConnectionBind success followed by peer bytes; a 438 loop; a
 * success without XOR-RELAYED-ADDRESS; garbage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/stun.h"
#include "core/turn.h"
#include "fuzz_util.h"
#include "sim/driver.h"

#define MS MESH_NS_PER_MS
enum { MAX_SCONN = 16 };
static const char USER[] = "fuzz", PASS[] = "pass";

typedef struct sconn {
    mesh_stream *s;
    uint8_t rx[4096];
    size_t have;
    uint8_t tid[MESH_STUN_TID_LEN];
    char realm[MESH_STUN_MAX_TEXT];
    size_t rlen;
} sconn;

typedef struct fw {
    sim_world *w;
    sim_host *h[2];
    sim_driver *d[2];
    mesh_env env[2];
    mesh_listener *l;
    sconn c[MAX_SCONN];
    int n;
    mesh_turn *t;
    int allocs, failures;
    mesh_stream *in; /* the client's accepted virtual stream */
} fw;

static void s_data(mesh_stream *s, const uint8_t *d, size_t n, void *ud)
{
    (void)s;
    sconn *x = ud;
    if (n > sizeof x->rx - x->have)
        n = sizeof x->rx - x->have;
    memcpy(x->rx + x->have, d, n);
    x->have += n;
    size_t total = 0;
    while (mesh_stun_frame_len(x->rx, x->have, &total) == MESH_OK && total <= x->have) {
        mesh_stun_msg m;
        if (mesh_stun_decode(&m, x->rx, total) == MESH_OK) {
            memcpy(x->tid, m.tid, sizeof x->tid);
            const mesh_stun_attr *r = mesh_stun_find(&m, MESH_STUN_A_REALM);
            const char *t;
            if (r && mesh_stun_get_text(&m, r, &t, &x->rlen) == MESH_OK)
                memcpy(x->realm, t, x->rlen);
        }
        memmove(x->rx, x->rx + total, x->have - total);
        x->have -= total;
    }
    if (x->have == sizeof x->rx) /* data after the bind: not STUN, drop it */
        x->have = 0;
}

static void s_closed(mesh_stream *s, int reason, void *ud)
{
    (void)s, (void)reason;
    ((sconn *)ud)->s = NULL;
}

static const mesh_stream_cbs S_CBS = {NULL, s_data, NULL, s_closed};

static void s_accept(mesh_listener *l, mesh_stream *s, const mesh_addr *peer, void *ud)
{
    (void)l, (void)peer;
    fw *F = ud;
    if (F->n == MAX_SCONN) {
        F->env[0].ops->stream_close(F->env[0].obj, s, MESH_CLOSE_ABORT);
        return;
    }
    sconn *x = &F->c[F->n++];
    x->s = s;
    F->env[0].ops->stream_set_cbs(F->env[0].obj, s, &S_CBS, x);
}

static void on_allocated(mesh_turn *t, int status, const mesh_addr *relayed,
                         const mesh_addr *mapped, void *ud)
{
    (void)t, (void)mapped;
    fw *F = ud;
    if (status == MESH_OK) {
        if (F->failures || (relayed->family != MESH_AF_INET4 && relayed->family != MESH_AF_INET6))
            __builtin_trap();
        F->allocs++;
        return;
    }
    static const int OK[] = {MESH_ERR_AUTH,        MESH_ERR_TIMEOUT,  MESH_ERR_REFUSED,
                             MESH_ERR_LIMIT,       MESH_ERR_PROTOCOL, MESH_ERR_MALFORMED,
                             MESH_ERR_TOO_BIG,     MESH_ERR_CLOSED,   MESH_ERR_RESET,
                             MESH_ERR_UNREACHABLE, MESH_ERR_NOMEM};
    int known = 0;
    for (size_t i = 0; i < sizeof OK / sizeof OK[0]; i++)
        known |= status == OK[i];
    if (!known || F->failures++)
        __builtin_trap();
}

static void in_data(mesh_stream *s, const uint8_t *d, size_t n, void *ud)
{
    fw *F = ud;
    mesh_env v = mesh_turn_env(F->t);
    v.ops->stream_write(v.obj, s, d, n); /* echo */
}
static void in_closed(mesh_stream *s, int reason, void *ud)
{
    (void)s, (void)reason;
    ((fw *)ud)->in = NULL;
}
static const mesh_stream_cbs IN_CBS = {NULL, in_data, NULL, in_closed};

static void on_incoming(mesh_turn *t, mesh_stream *s, const mesh_addr *peer, void *ud)
{
    (void)peer;
    fw *F = ud;
    mesh_env v = mesh_turn_env(t);
    if (F->in) { /* one at a time */
        v.ops->stream_close(v.obj, s, MESH_CLOSE_ABORT);
        return;
    }
    F->in = s;
    v.ops->stream_set_cbs(v.obj, s, &IN_CBS, F);
}

static const mesh_turn_cbs CBS = {on_allocated, on_incoming};

static void run(fw *F, mesh_time dt)
{
    sim_sched *sc = sim_world_sched(F->w);
    sim_sched_run_until(sc, sim_sched_now(sc) + dt);
}

/* After the id was put in: a FINGERPRINT that ends the message is made right again. */
static void refingerprint(uint8_t *b, size_t len)
{
    mesh_stun_msg m;
    if (mesh_stun_decode(&m, b, len) != MESH_OK || m.fp < 0)
        return;
    uint32_t off = m.attrs[m.fp].off;
    uint32_t v = mesh_stun_crc32(b, off - MESH_STUN_ATTR_HDR_LEN) ^ MESH_STUN_FINGERPRINT_XOR;
    b[off] = (uint8_t)(v >> 24);
    b[off + 1] = (uint8_t)(v >> 16);
    b[off + 2] = (uint8_t)(v >> 8);
    b[off + 3] = (uint8_t)v;
}

/* Re-encode m with our integrity attributes (key of the connection's realm). */
static size_t resign(const sconn *x, uint8_t *b, size_t len, uint8_t *out, size_t cap)
{
    mesh_stun_msg m;
    if (mesh_stun_decode(&m, b, len) != MESH_OK)
        return 0;
    uint8_t key[MESH_STUN_LONG_TERM_KEY_LEN];
    if (mesh_stun_long_term_key(key, USER, strlen(USER), x->realm, x->rlen, PASS, strlen(PASS)) !=
        MESH_OK)
        return 0;
    mesh_stun_enc e;
    mesh_stun_enc_init(&e, out, cap, m.type, m.tid);
    for (size_t i = 0; i < m.nvisible; i++)
        mesh_stun_enc_attr(&e, m.attrs[i].type, mesh_stun_value(&m, &m.attrs[i]), m.attrs[i].len);
    mesh_stun_enc_integrity(&e, key, sizeof key);
    mesh_stun_enc_fingerprint(&e);
    size_t n = 0;
    return mesh_stun_enc_finish(&e, &n) == MESH_OK ? n : 0;
}

static void record(fw *F, uint8_t flags, const uint8_t *p, size_t len)
{
    sconn *x = NULL;
    if (flags & 1) {
        if (F->n > 1)
            x = &F->c[F->n - 1];
    } else if (F->n > 0) {
        x = &F->c[0];
    }
    if (!x || !x->s)
        return;
    uint8_t b[4096], out[4200];
    memcpy(b, p, len);
    if ((flags & 2) && len >= 20) {
        memcpy(b + 8, x->tid, MESH_STUN_TID_LEN);
        refingerprint(b, len);
    }
    const uint8_t *send = b;
    size_t n = len;
    if (flags & 4) {
        size_t r = resign(x, b, len, out, sizeof out);
        if (r) {
            send = out;
            n = r;
        }
    }
    F->env[0].ops->stream_write(F->env[0].obj, x->s, send, n);
    run(F, 20 * MS);
    if ((flags & 16) && x->s) {
        F->env[0].ops->stream_close(F->env[0].obj, x->s, MESH_CLOSE_GRACEFUL);
        x->s = NULL;
        run(F, 20 * MS);
    }
    if (flags & 8)
        run(F, 2000 * MS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fw F;
    memset(&F, 0, sizeof F);
    if (sim_world_new(&F.w, 1, NULL) != MESH_OK)
        return 0;
    sim_net *net = sim_world_net(F.w);
    sim_net_set_core(net, &(sim_link_cfg){.latency = 1 * MS}, NULL, NULL);
    sim_link_cfg l = {.latency = 1 * MS};
    sim_host_cfg hc[2] = {{"s", SIM_IP4(198, 51, 100, 1), NULL, l, l},
                          {"c", SIM_IP4(198, 51, 100, 2), NULL, l, l}};
    for (int i = 0; i < 2; i++) {
        if (sim_net_add_host(net, &hc[i], &F.h[i]) != MESH_OK ||
            sim_driver_new(&F.d[i], F.w, F.h[i]) != MESH_OK)
            __builtin_trap();
        F.env[i] = sim_driver_env(F.d[i]);
    }
    int err = 0;
    mesh_addr sa = mesh_addr_v4(SIM_IP4(198, 51, 100, 1), 3478);
    F.l = F.env[0].ops->listen(F.env[0].obj, &sa, s_accept, &F, &err);
    mesh_turn_cfg cfg = {.server = sa, .username = USER, .password = PASS, .lifetime_s = 60};
    if (!F.l || mesh_turn_new(&F.t, &F.env[1], &cfg, &CBS, &F) != MESH_OK)
        __builtin_trap();
    run(&F, 20 * MS); /* connected, Allocate sent */
    size_t pos = 0;
    while (size - pos >= 3) {
        uint8_t flags = data[pos];
        size_t len = (size_t)data[pos + 1] << 8 | data[pos + 2];
        pos += 3;
        if (len > size - pos)
            len = size - pos;
        if (len > 4096)
            len = 4096;
        record(&F, flags, data + pos, len);
        pos += len;
    }
    run(&F, 100 * MS);
    mesh_turn_free(F.t);
    run(&F, 20 * MS);
    for (int i = 0; i < F.n; i++)
        if (F.c[i].s)
            F.env[0].ops->stream_close(F.env[0].obj, F.c[i].s, MESH_CLOSE_ABORT);
    F.env[0].ops->listener_close(F.env[0].obj, F.l);
    for (int i = 0; i < 2; i++)
        sim_driver_free(F.d[i]);
    sim_world_free(F.w);
    return 0;
}

/* ---- seeds ---------------------------------------------------------------------------------- */

static size_t msg(uint8_t *b, size_t cap, unsigned method, unsigned cls, int code, int relayed,
                  uint32_t cid, int peer)
{
    uint8_t tid[MESH_STUN_TID_LEN] = {0};
    mesh_stun_enc e;
    mesh_stun_enc_init(&e, b, cap, mesh_stun_type(method, cls), tid);
    if (code) {
        mesh_stun_enc_error(&e, code, "x");
        mesh_stun_enc_text(&e, MESH_STUN_A_REALM, "fz", 2);
        mesh_stun_enc_text(&e, MESH_STUN_A_NONCE, "n0", 2);
    }
    mesh_addr r = mesh_addr_v4(SIM_IP4(198, 51, 100, 1), 50000);
    mesh_addr p = mesh_addr_v4(SIM_IP4(203, 0, 113, 5), 4000);
    if (relayed) {
        mesh_stun_enc_addr(&e, MESH_STUN_A_XOR_RELAYED_ADDRESS, &r);
        mesh_stun_enc_addr(&e, MESH_STUN_A_XOR_MAPPED_ADDRESS, &p);
        mesh_stun_enc_u32(&e, MESH_STUN_A_LIFETIME, 60);
    }
    if (cid)
        mesh_stun_enc_u32(&e, MESH_STUN_A_CONNECTION_ID, cid);
    if (peer)
        mesh_stun_enc_addr(&e, MESH_STUN_A_XOR_PEER_ADDRESS, &p);
    mesh_stun_enc_fingerprint(&e);
    size_t n = 0;
    return mesh_stun_enc_finish(&e, &n) == MESH_OK ? n : 0;
}

/* Append a record to s. */
static size_t rec(uint8_t *s, size_t at, uint8_t flags, const uint8_t *p, size_t n)
{
    s[at] = flags;
    s[at + 1] = (uint8_t)(n >> 8);
    s[at + 2] = (uint8_t)n;
    memcpy(s + at + 3, p, n);
    return at + 3 + n;
}

static void write_seeds(const char *dir)
{
    uint8_t s[4096], m[512];
    size_t n, k;
    /* 401, then a signed success: allocated; then a ConnectionAttempt, the bind's success
     * with peer bytes after it, and 2 s */
    n = rec(s, 0, 2, m, msg(m, sizeof m, MESH_STUN_ALLOCATE, MESH_STUN_ERROR, 401, 0, 0, 0));
    n = rec(s, n, 2 | 4, m, msg(m, sizeof m, MESH_STUN_ALLOCATE, MESH_STUN_SUCCESS, 0, 1, 0, 0));
    mesh_fuzz_seed(dir, "allocated", NULL, 0, s, n);
    n = rec(s, n, 0, m,
            msg(m, sizeof m, MESH_STUN_CONNECTION_ATTEMPT, MESH_STUN_INDICATION, 0, 0, 7, 1));
    k = msg(m, sizeof m, MESH_STUN_CONNECTION_BIND, MESH_STUN_SUCCESS, 0, 0, 0, 0);
    n = rec(s, n, 1 | 2 | 4 | 8, m, k);                  /* the signed answer ... */
    n = rec(s, n, 1, (const uint8_t *)"peer bytes", 10); /* ... then the peer's bytes */
    mesh_fuzz_seed(dir, "incoming", NULL, 0, s, n);
    /* 438 answers until the client gives up */
    n = rec(s, 0, 2, m, msg(m, sizeof m, MESH_STUN_ALLOCATE, MESH_STUN_ERROR, 401, 0, 0, 0));
    for (int i = 0; i < 4; i++)
        n = rec(s, n, 2, m, msg(m, sizeof m, MESH_STUN_ALLOCATE, MESH_STUN_ERROR, 438, 0, 0, 0));
    mesh_fuzz_seed(dir, "stale_loop", NULL, 0, s, n);
    /* a signed success without XOR-RELAYED-ADDRESS */
    n = rec(s, 0, 2, m, msg(m, sizeof m, MESH_STUN_ALLOCATE, MESH_STUN_ERROR, 401, 0, 0, 0));
    n = rec(s, n, 2 | 4, m, msg(m, sizeof m, MESH_STUN_ALLOCATE, MESH_STUN_SUCCESS, 0, 0, 0, 0));
    mesh_fuzz_seed(dir, "no_relayed", NULL, 0, s, n);
    /* a refresh cycle: allocated, then time passes (Refresh at 45 s is not reached: 2 s per
     * record) and an unsigned success to a refresh-like id */
    n = rec(s, 0, 2, m, msg(m, sizeof m, MESH_STUN_ALLOCATE, MESH_STUN_ERROR, 401, 0, 0, 0));
    n = rec(s, n, 2 | 4, m, msg(m, sizeof m, MESH_STUN_ALLOCATE, MESH_STUN_SUCCESS, 0, 1, 0, 0));
    n = rec(s, n, 2 | 8, m, msg(m, sizeof m, MESH_STUN_REFRESH, MESH_STUN_SUCCESS, 0, 0, 0, 0));
    mesh_fuzz_seed(dir, "refresh_unsigned", NULL, 0, s, n);
    n = rec(s, 0, 0, (const uint8_t *)"HTTP/1.1 400 Bad Request\r\n\r\n", 28);
    mesh_fuzz_seed(dir, "garbage", NULL, 0, s, n);
    (void)printf("fuzz_turn seeds in %s\n", dir);
}

MESH_FUZZ_SEED_WRITER(write_seeds)
