/* bench_sessions.c — Meshara sessions on real loopback sockets, each figure next to a baseline
 * measured in the same run on the same machine:
 *
 *   BENCH handshake_rate <n>/s ratio=<x>   sequential connect + TLS 1.3 + hello exchange, one
 *                                          at a time (as s_time -new does), vs `openssl s_time
 *                                          -new` against `openssl s_server -tls1_3 -quiet
 *                                          -num_tickets 0` (Ed25519 certificate like ours)
 *   BENCH handshake_p50_us <n>             median connect+TLS+auth latency of those handshakes
 *   BENCH throughput <n>B/s ratio=<x>      payload bytes/s through one session (AppData of
 *                                          THROUGHPUT_MSG bytes, each round ended by a ping
 *                                          the server answers after the last byte), vs
 *                                          `openssl speed -evp aes-128-gcm -bytes 16384`
 *   BENCH idle_conn_bytes <n>              heap bytes per idle authenticated session end with
 *                                          1,000 open (the larger of the client and server
 *                                          side; mallinfo2 deltas), RSS per session alongside
 *
 * Both sides of a comparison run in alternating one-second rounds (ours, then openssl's, S
 * times), so a load change on a shared machine hits both alike. The server side always runs
 * in a forked child with its own libevent loop (as s_server runs apart from s_time), the
 * client side in this process. Lines starting with "#" are details (baselines, sides).
 * Usage: bench_sessions [seconds] [handshake] [throughput] [idle] (default: 3 rounds, all
 * parts; env MESH_BENCH_SECONDS sets the rounds when no argument does; MESH_BENCH_MSG sets
 * the throughput message size in bytes; MESH_BENCH_PROFILE=web|seed the TLS profile of both
 * sides, default web: its sessions use nginx's suite AES-256-GCM, HTTP/2 framing, ECDSA
 * signatures and two session tickets per handshake, where the seed's use AES-128-GCM, frames
 * and Ed25519). The wall clock is read through the real driver's env and to time the
 * baselines. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <sys/socket.h>

#include "core/identity.h"
#include "core/server.h"
#include "core/session.h"
#include "core/tls.h"
#include "real/driver.h"

enum {
    DEFAULT_SECONDS = 3,
    THROUGHPUT_MSG = 256 * 1024, /* default payload of one AppData in the throughput run */
    THROUGHPUT_MSG_MAX = 1 << 20,
    IDLE_CONNS = 1000,  /* the idle-memory figure is per connection of these */
    IDLE_WARMUP = 50,   /* opened first, so one-time allocations are not counted */
    IDLE_INFLIGHT = 64, /* handshakes in progress at once while opening them */
    SERVER_MAX_HANDSHAKES = 256,
    MAX_SAMPLES = 1 << 20,
    SLICE_MS = 20,
    FD_NEEDED = 2 * (IDLE_CONNS + IDLE_WARMUP) + 256,
};

/* Fixed identities: the client pins the server's key without asking it. */
static const uint8_t SERVER_SEED[MESH_SEED_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const uint8_t CLIENT_SEED[MESH_SEED_LEN] = {9, 8, 7, 6, 5, 4, 3, 2, 1};

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static size_t rss_bytes(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < FD_NEEDED) {
        rl.rlim_cur = rl.rlim_max < FD_NEEDED ? rl.rlim_max : FD_NEEDED;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < FD_NEEDED)
            fprintf(stderr, "# warning: RLIMIT_NOFILE %lu < %d\n", (unsigned long)rl.rlim_cur,
                    FD_NEEDED);
    }
}

/* The TLS profile both sides run (MESH_BENCH_PROFILE). */
static int bench_profile(void)
{
    const char *p = getenv("MESH_BENCH_PROFILE");
    return p && strcmp(p, "seed") == 0 ? MESH_PROFILE_SEED : MESH_PROFILE_WEB;
}

/* One side's node objects on its own driver. */
typedef struct side {
    mesh_real *r;
    mesh_env env;
    mesh_identity *id;
    mesh_tls_ctx *tls;
} side;

static int side_new(side *s, const uint8_t seed[MESH_SEED_LEN])
{
    mesh_real_config cfg;
    mesh_real_config_default(&cfg);
    cfg.log_level = MESH_LOG_ERROR;
    memset(s, 0, sizeof *s);
    if (mesh_real_new(&s->r, NULL, &cfg) != MESH_OK)
        return -1;
    s->env = mesh_real_env(s->r);
    if (mesh_identity_from_seed(&s->id, seed) != MESH_OK ||
        mesh_tls_ctx_new(&s->tls, &s->env, s->id, &(mesh_tls_cfg){.profile = bench_profile()}) !=
            MESH_OK)
        return -1;
    return 0;
}

static void side_free(side *s)
{
    mesh_tls_ctx_free(s->tls);
    mesh_identity_free(s->id);
    mesh_real_free(s->r);
}

/* ---- the server child -------------------------------------------------------------------- */

typedef struct srv_state {
    side sd;
    int report_fd;    /* pipe to the parent */
    size_t sessions;  /* authenticated, still open */
    size_t report_at; /* idle mode: report memory at these session counts */
    size_t heap0, rss0;
    int reported;
} srv_state;

static void srv_closed(mesh_session *s, int reason, void *ud)
{
    (void)reason;
    srv_state *st = ud;
    st->sessions--;
    mesh_session_free(s);
}

/* Throughput: count nothing (the client measures end to end); answer the final ping after
 * every byte before it has been processed (messages are handled in order). */
static void srv_message(mesh_session *s, const mesh_envelope *e, void *ud)
{
    (void)ud;
    if (e->body_case != MESHARA__WIRE__ENVELOPE__BODY_QUERY)
        return;
    Meshara__Wire__Response r = MESHARA__WIRE__RESPONSE__INIT;
    r.query_id = e->query->query_id;
    r.type = e->query->type;
    mesh_envelope out = MESHARA__WIRE__ENVELOPE__INIT;
    out.body_case = MESHARA__WIRE__ENVELOPE__BODY_RESPONSE;
    out.response = &r;
    (void)mesh_session_send(s, &out);
}

static const mesh_session_cbs SRV_CBS = {.on_message = srv_message, .on_closed = srv_closed};

static void srv_report(srv_state *st, const char *tag)
{
    char line[128];
    int n = snprintf(line, sizeof line, "%s %zu %zu\n", tag, heap_in_use(), rss_bytes());
    if (write(st->report_fd, line, (size_t)n) != n)
        _exit(3);
}

static void srv_session(mesh_server *srv, mesh_session *s, void *ud)
{
    (void)srv;
    srv_state *st = ud;
    st->sessions++;
    mesh_session_set_cbs(s, &SRV_CBS, st);
    if (st->report_at && st->sessions == IDLE_WARMUP)
        srv_report(st, "warm");
    if (st->report_at && st->sessions == st->report_at)
        srv_report(st, "full");
}

/* pipe(p) then fork(): the pid (0 in the child), or -1 with no descriptor left open. */
static pid_t fork_piped(int p[2])
{
    if (pipe(p) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
    }
    return pid;
}

/* Fork a server; *port gets its port, *fd the pipe it reports on. idle: report memory at
 * IDLE_WARMUP and IDLE_WARMUP + IDLE_CONNS sessions. Returns the child's pid or -1. */
static pid_t spawn_server(int idle, uint16_t *port, int *fd)
{
    int p[2];
    pid_t pid = fork_piped(p);
    if (pid < 0)
        return -1;
    if (pid > 0) {
        close(p[1]);
        *fd = p[0];
        char line[64];
        ssize_t n = read(p[0], line, sizeof line - 1);
        unsigned v = 0;
        if (n <= 0 || (line[n] = '\0', sscanf(line, "port %u", &v) != 1)) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return -1;
        }
        *port = (uint16_t)v;
        return pid;
    }
    close(p[0]);
    signal(SIGTERM, SIG_DFL);
    srv_state st = {.report_fd = p[1], .report_at = idle ? IDLE_WARMUP + IDLE_CONNS : 0};
    mesh_server *srv = NULL;
    mesh_addr la = mesh_addr_v4(0x7f000001, 0), bound;
    /* every client is 127.0.0.1: one source, allowed the whole handshake table */
    mesh_server_cfg cfg = {.max_handshakes = SERVER_MAX_HANDSHAKES,
                           .max_per_source = SERVER_MAX_HANDSHAKES};
    mesh_server_cbs cbs = {.on_session = srv_session};
    if (side_new(&st.sd, SERVER_SEED) != 0 ||
        mesh_server_new(&srv, &st.sd.env, st.sd.tls, &la, &cfg, &cbs, &st) != MESH_OK ||
        mesh_server_addr(srv, &bound) != MESH_OK)
        _exit(2);
    char line[32];
    int n = snprintf(line, sizeof line, "port %u\n", bound.port);
    if (write(p[1], line, (size_t)n) != n)
        _exit(2);
    mesh_real_run(st.sd.r); /* until killed */
    _exit(0);
}

static void stop_child(pid_t pid, int fd)
{
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    if (fd >= 0)
        close(fd);
}

/* ---- client side ------------------------------------------------------------------------- */

typedef struct client {
    side sd;
    mesh_addr to;
    const uint8_t *pin;
    mesh_session_cfg cfg;
    /* handshake run */
    mesh_time t0, end;
    mesh_time *lat;
    size_t nlat;
    size_t failed;
    /* idle run */
    size_t open, inflight, target;
    mesh_session **idle;
    /* throughput run */
    mesh_session *bulk;
    uint8_t *payload;
    uint64_t round_bytes, msg_id, round_id;
    size_t msg_size;
    mesh_time bulk_start, bulk_stop, bulk_done;
    int pinged, done, up;
} client;

static int client_new(client *c, uint16_t port)
{
    memset(c, 0, sizeof *c);
    if (side_new(&c->sd, CLIENT_SEED) != 0)
        return -1;
    c->to = mesh_addr_v4(0x7f000001, port);
    mesh_identity *srv_id = NULL;
    if (mesh_identity_from_seed(&srv_id, SERVER_SEED) != MESH_OK)
        return -1;
    static uint8_t pin[MESH_PUBKEY_LEN];
    memcpy(pin, mesh_identity_pubkey(srv_id), sizeof pin);
    mesh_identity_free(srv_id);
    c->pin = pin;
    return 0;
}

/* A server child (idle: see spawn_server) and a client connected to its port. Returns the
 * child's pid, or -1 with the reason printed and nothing left running. */
static pid_t start_pair(int idle, client *c, int *fd, const char *what)
{
    uint16_t port = 0;
    pid_t pid = spawn_server(idle, &port, fd);
    if (pid < 0 || client_new(c, port) != 0) {
        fprintf(stderr, "bench_sessions: cannot start the %s run\n", what);
        stop_child(pid, *fd);
        return -1;
    }
    return pid;
}

static void run_until(client *c, const int *flag, double max_s)
{
    double stop = wall() + max_s;
    while (!*flag && wall() < stop)
        mesh_real_run_for(c->sd.r, SLICE_MS * MESH_NS_PER_MS);
}

/* -- handshakes: one at a time, like s_time -new -- */

static void hs_next(client *c);

static void hs_connected(mesh_session *s, void *ud)
{
    client *c = ud;
    mesh_time now = mesh_env_now(&c->sd.env);
    if (c->nlat < MAX_SAMPLES)
        c->lat[c->nlat++] = now - c->t0;
    mesh_session_set_cbs(s, NULL, NULL);
    (void)mesh_session_close(s); /* Goodbye + close_notify + FIN */
    mesh_session_free(s);
    hs_next(c);
}

static void hs_closed(mesh_session *s, int reason, void *ud)
{
    client *c = ud;
    if (c->failed++ < 3)
        fprintf(stderr, "# handshake failed: %s\n", mesh_errname(reason));
    mesh_session_free(s);
    hs_next(c);
}

static const mesh_session_cbs HS_CBS = {.on_connected = hs_connected, .on_closed = hs_closed};

static void hs_next(client *c)
{
    c->t0 = mesh_env_now(&c->sd.env);
    if (c->t0 >= c->end || c->failed > 100) {
        c->done = 1;
        mesh_real_stop(c->sd.r);
        return;
    }
    mesh_session *s = NULL;
    if (mesh_session_connect(&s, &c->sd.env, c->sd.tls, &c->to, c->pin, &c->cfg, &HS_CBS, c) !=
        MESH_OK) {
        c->failed++;
        c->done = 1;
    }
}

static int cmp_time(const void *a, const void *b)
{
    mesh_time x = *(const mesh_time *)a, y = *(const mesh_time *)b;
    return x < y ? -1 : x > y;
}

/* -- the openssl baselines -- */

/* Run argv with stdout+stderr into a string (malloc'd); returns the exit status or -1. */
static int run_capture(char *const argv[], char **out)
{
    int p[2];
    pid_t pid = fork_piped(p);
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        int devnull = open("/dev/null", 0);
        if (devnull >= 0)
            dup2(devnull, 0);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    ssize_t n;
    while (buf && (n = read(p[0], buf + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 1024) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    close(p[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (buf)
        buf[len] = '\0';
    *out = buf;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    uint16_t port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Poll until something accepts TCP connections on 127.0.0.1:port (at most ~5 s). */
static int wait_listening(uint16_t port)
{
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int i = 0; i < 500; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            return -1;
        int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
        close(fd);
        if (rc == 0)
            return 0;
        usleep(10000);
    }
    return -1;
}

/* openssl s_server -tls1_3 with an Ed25519 certificate (like ours), for s_time rounds. */
typedef struct ossl_server {
    char dir[32], key[64], cert[64], connect[32];
    pid_t pid;
    int stdin_w;
} ossl_server;

static void ossl_server_stop(ossl_server *o)
{
    if (o->pid > 0) {
        kill(o->pid, SIGKILL);
        waitpid(o->pid, NULL, 0);
    }
    if (o->stdin_w >= 0)
        close(o->stdin_w);
    unlink(o->key);
    unlink(o->cert);
    rmdir(o->dir);
}

/* 0 when it accepts connections; else -1 (reason printed, everything cleaned up). */
static int ossl_server_start(ossl_server *o)
{
    memset(o, 0, sizeof *o);
    o->pid = -1;
    o->stdin_w = -1;
    strcpy(o->dir, "/tmp/meshara-bench-XXXXXX");
    if (!mkdtemp(o->dir))
        return -1;
    snprintf(o->key, sizeof o->key, "%s/key.pem", o->dir);
    snprintf(o->cert, sizeof o->cert, "%s/cert.pem", o->dir);
    char *out = NULL, accept[32];
    char *const req[] = {
        "openssl", "req", "-x509",   "-newkey", "ed25519", "-nodes", "-subj", "/CN=meshara.node",
        "-days",   "1",   "-keyout", o->key,    "-out",    o->cert,  NULL};
    if (run_capture(req, &out) != 0) {
        fprintf(stderr, "# openssl req failed: %.300s\n", out ? out : "?");
        free(out);
        ossl_server_stop(o);
        return -1;
    }
    free(out);
    uint16_t port = free_port();
    snprintf(accept, sizeof accept, "127.0.0.1:%u", port);
    snprintf(o->connect, sizeof o->connect, "127.0.0.1:%u", port);
    /* s_server quits at EOF on stdin: give it a pipe we keep open until we kill it */
    int in[2];
    o->pid = fork_piped(in);
    if (o->pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(in[0], 0);
        if (devnull >= 0) {
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        close(in[0]);
        close(in[1]);
        execlp("openssl", "openssl", "s_server", "-quiet", "-tls1_3", "-accept", accept, "-cert",
               o->cert, "-key", o->key, "-num_tickets", "0", NULL);
        _exit(127);
    }
    if (o->pid > 0) {
        close(in[0]);
        o->stdin_w = in[1];
    }
    if (o->pid < 0 || wait_listening(port) != 0) {
        fprintf(stderr, "# openssl s_server did not start\n");
        ossl_server_stop(o);
        return -1;
    }
    return 0;
}

/* One `openssl s_time -new -time 1` round: adds its connections and wall time. -1 on failure
 * (printed). */
static int ossl_s_time_round(const ossl_server *o, unsigned long *conns, double *secs)
{
    char *out = NULL;
    char *const st[] = {"openssl", "s_time", "-connect", (char *)o->connect,
                        "-new",    "-time",  "1",        NULL};
    double t0 = wall();
    int rc = run_capture(st, &out);
    double t1 = wall();
    unsigned long n = 0;
    const char *line = out ? strstr(out, "connections in") : NULL;
    /* the first "N connections in X.XXs;" line is the -new run */
    while (line && line > out && line[-1] != '\n')
        line--;
    if (rc != 0 || !line || sscanf(line, "%lu connections in", &n) != 1 || n == 0) {
        fprintf(stderr, "# openssl s_time failed (%d): %.300s\n", rc, out ? out : "");
        free(out);
        return -1;
    }
    free(out);
    *conns += n;
    *secs += t1 - t0;
    return 0;
}

/* One `openssl speed -evp aes-128-gcm -bytes 16384 -seconds 1` round: adds its bytes/s.
 * -1 on failure (printed). */
static int ossl_speed_round(double *sum)
{
    char *out = NULL;
    char *const argv[] = {"openssl", "speed",    "-evp", "aes-128-gcm", "-bytes",
                          "16384",   "-seconds", "1",    NULL};
    int rc = run_capture(argv, &out);
    /* last table line: "AES-128-GCM  <n>k" (1000s of bytes per second) */
    const char *line = out ? strstr(out, "\nAES-128-GCM") : NULL;
    if (!line && out)
        line = strstr(out, "\naes-128-gcm");
    double k = 0;
    if (rc != 0 || !line || sscanf(line + 1, "%*s %lfk", &k) != 1 || k <= 0) {
        fprintf(stderr, "# openssl speed failed (%d): %.300s\n", rc, out ? out : "");
        free(out);
        return -1;
    }
    free(out);
    *sum += k * 1000;
    return 0;
}

/* -- the ceiling: what one TLS-like stream reaches on this machine without any TLS library or
 * event loop. A forked child seals 16 KiB AES-128-GCM records (nonce per record, 5-byte header
 * as AAD, like TLS 1.3) into 1 MiB batches and writes them with blocking writev() for one
 * second; this process reads with 64 KiB recv() and opens each record in place into a
 * scratch buffer. Printed as a "#" line so the session's throughput can be read against the
 * structure it cannot beat (kernel TCP + AEAD on both ends), not only against one core of
 * AEAD. -- */
enum { CEIL_REC = 16384, CEIL_WIRE = 5 + CEIL_REC + 16, CEIL_BATCH = 64, CEIL_READ = 65536 };

static void ceil_nonce(uint8_t nonce[12], uint64_t seq)
{
    memset(nonce, 7, 12);
    for (int i = 0; i < 8; i++)
        nonce[11 - i] ^= (uint8_t)(seq >> (8 * i));
}

static void ceil_sender(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    static const uint8_t key[16] = {1};
    static uint8_t plain[CEIL_REC];
    uint8_t *batch = malloc((size_t)CEIL_BATCH * CEIL_WIRE), nonce[12];
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    if (fd < 0 || !batch || !x || connect(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        EVP_EncryptInit_ex(x, EVP_aes_128_gcm(), NULL, key, NULL) != 1)
        _exit(1);
    uint64_t seq = 0;
    for (double t0 = wall(); wall() - t0 < 1.0;) {
        for (int i = 0; i < CEIL_BATCH; i++) {
            uint8_t *r = batch + (size_t)i * CEIL_WIRE;
            int l;
            r[0] = 23, r[1] = 3, r[2] = 3, r[3] = (CEIL_REC + 16) >> 8,
            r[4] = (CEIL_REC + 16) & 255;
            ceil_nonce(nonce, seq++);
            if (EVP_EncryptInit_ex(x, NULL, NULL, NULL, nonce) != 1 ||
                EVP_EncryptUpdate(x, NULL, &l, r, 5) != 1 ||
                EVP_EncryptUpdate(x, r + 5, &l, plain, CEIL_REC) != 1 ||
                EVP_EncryptFinal_ex(x, r + 5 + CEIL_REC, &l) != 1 ||
                EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, 16, r + 5 + CEIL_REC) != 1)
                _exit(1);
        }
        size_t len = (size_t)CEIL_BATCH * CEIL_WIRE;
        for (size_t off = 0; off < len;) {
            ssize_t k = write(fd, batch + off, len - off);
            if (k <= 0)
                _exit(1);
            off += (size_t)k;
        }
    }
    _exit(0);
}

/* One ceiling round: adds its payload bytes/s. -1 on failure (printed). */
static int ceil_round(double *sum)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 1) != 0 ||
        getsockname(ls, (struct sockaddr *)&a, &al) != 0) {
        if (ls >= 0)
            close(ls);
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0)
        ceil_sender(ntohs(a.sin_port));
    int fd = pid > 0 ? accept(ls, NULL, NULL) : -1;
    close(ls);
    static const uint8_t key[16] = {1};
    uint8_t *buf = malloc(CEIL_READ + CEIL_WIRE), *out = malloc(CEIL_REC), nonce[12];
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int ok = fd >= 0 && buf && out && x &&
             EVP_DecryptInit_ex(x, EVP_aes_128_gcm(), NULL, key, NULL) == 1;
    size_t have = 0;
    uint64_t seq = 0;
    double t0 = wall();
    while (ok) {
        ssize_t k = recv(fd, buf + have, CEIL_READ, 0);
        if (k <= 0)
            break;
        have += (size_t)k;
        size_t off = 0;
        for (; ok && have - off >= CEIL_WIRE; off += CEIL_WIRE) {
            uint8_t *r = buf + off;
            int l;
            ceil_nonce(nonce, seq++);
            ok = EVP_DecryptInit_ex(x, NULL, NULL, NULL, nonce) == 1 &&
                 EVP_DecryptUpdate(x, NULL, &l, r, 5) == 1 &&
                 EVP_DecryptUpdate(x, out, &l, r + 5, CEIL_REC) == 1 &&
                 EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, 16, r + 5 + CEIL_REC) == 1 &&
                 EVP_DecryptFinal_ex(x, out, &l) == 1;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
    }
    double dt = wall() - t0;
    int status = 1;
    if (pid > 0)
        waitpid(pid, &status, 0);
    if (fd >= 0)
        close(fd);
    EVP_CIPHER_CTX_free(x);
    free(buf);
    free(out);
    if (!ok || status != 0 || seq == 0 || dt <= 0) {
        fprintf(stderr, "# ceiling round failed\n");
        return -1;
    }
    *sum += (double)seq * CEIL_REC / dt;
    return 0;
}

static void print_ratio(const char *name, double n, const char *unit, double base)
{
    if (base > 0)
        printf("BENCH %s %.0f%s ratio=%.2f\n", name, n, unit, n / base);
    else
        printf("BENCH %s %.0f%s ratio=nan\n", name, n, unit);
}

/* `seconds` rounds of one second of our handshakes then one `s_time -time 1`, so both see the
 * same machine load (other jobs share these cores). */
static int bench_handshakes(int seconds)
{
    int fd = -1;
    client c;
    pid_t pid = start_pair(0, &c, &fd, "handshake");
    if (pid < 0)
        return 1;
    ossl_server o;
    int have_ossl = ossl_server_start(&o) == 0;
    c.lat = malloc(MAX_SAMPLES * sizeof *c.lat);
    double ours_s = 0, ossl_s = 0;
    unsigned long ossl_n = 0;
    for (int round = 0; round < seconds && c.failed <= 100; round++) {
        c.done = 0;
        c.end = mesh_env_now(&c.sd.env) + MESH_NS_PER_S;
        double t0 = wall();
        hs_next(&c);
        run_until(&c, &c.done, 10.0);
        ours_s += wall() - t0;
        /* let the last graceful closes flush */
        mesh_real_run_for(c.sd.r, 20 * MESH_NS_PER_MS);
        if (have_ossl && ossl_s_time_round(&o, &ossl_n, &ossl_s) != 0)
            have_ossl = 0;
    }
    if (have_ossl)
        ossl_server_stop(&o);
    stop_child(pid, fd);
    if (c.nlat == 0) {
        fprintf(stderr, "bench_sessions: no handshake completed\n");
        return 1;
    }
    double rate = (double)c.nlat / ours_s;
    qsort(c.lat, c.nlat, sizeof *c.lat, cmp_time);
    printf("# meshara: %zu handshakes (connect+TLS+auth) in %.2f s, %zu failed; p90 %.0f us, "
           "p99 %.0f us\n",
           c.nlat, ours_s, c.failed, (double)c.lat[c.nlat * 9 / 10] / 1e3,
           (double)c.lat[c.nlat * 99 / 100] / 1e3);
    double base = have_ossl ? (double)ossl_n / ossl_s : -1;
    if (have_ossl)
        printf("# openssl s_time -new vs s_server -tls1_3: %lu connections in %.2f s = %.0f/s\n",
               ossl_n, ossl_s, base);
    print_ratio("handshake_rate", rate, "/s", base);
    printf("BENCH handshake_p50_us %.0f\n", (double)c.lat[c.nlat / 2] / 1e3);
    free(c.lat);
    side_free(&c.sd);
    return 0;
}

/* -- throughput: one session; each round the client sends for one second, then pings, and
 * the round ends when the answer (sent after every earlier byte was processed) is back -- */

static void bulk_pump(client *c)
{
    mesh_time now = mesh_env_now(&c->sd.env);
    while (!c->pinged && c->done == 0) {
        if (now >= c->bulk_stop) {
            Meshara__Wire__Query q = MESHARA__WIRE__QUERY__INIT;
            q.query_id = c->round_id;
            q.type = MESHARA__WIRE__QUERY_TYPE__QUERY_PING;
            mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
            e.body_case = MESHARA__WIRE__ENVELOPE__BODY_QUERY;
            e.query = &q;
            int rc = mesh_session_send(c->bulk, &e);
            if (rc == MESH_ERR_AGAIN)
                return;
            c->pinged = 1;
            if (rc != MESH_OK)
                c->done = -1;
            return;
        }
        int rc = mesh_session_send_data(c->bulk, ++c->msg_id, c->payload, c->msg_size);
        if (rc == MESH_ERR_AGAIN)
            return; /* on_writable resumes */
        if (rc != MESH_OK) {
            c->done = -1;
            return;
        }
        c->round_bytes += c->msg_size;
    }
}

static void bulk_connected(mesh_session *s, void *ud)
{
    (void)s;
    client *c = ud;
    c->up = 1;
}

static void bulk_writable(mesh_session *s, void *ud)
{
    (void)s;
    bulk_pump(ud);
}

static void bulk_message(mesh_session *s, const mesh_envelope *e, void *ud)
{
    (void)s;
    client *c = ud;
    if (e->body_case == MESHARA__WIRE__ENVELOPE__BODY_RESPONSE &&
        e->response->query_id == c->round_id) {
        c->bulk_done = mesh_env_now(&c->sd.env);
        c->done = 1;
    }
}

static void bulk_closed(mesh_session *s, int reason, void *ud)
{
    (void)s;
    client *c = ud;
    fprintf(stderr, "# throughput session closed: %s\n", mesh_errname(reason));
    c->done = -1;
    c->up = -1;
}

static const mesh_session_cbs BULK_CBS = {.on_connected = bulk_connected,
                                          .on_message = bulk_message,
                                          .on_writable = bulk_writable,
                                          .on_closed = bulk_closed};

static double tv_diff(const struct timeval *a, const struct timeval *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_usec - a->tv_usec) / 1e6;
}

/* `seconds` rounds of one second through the session then one `openssl speed -seconds 1`. */
static int bench_throughput(int seconds)
{
    int fd = -1;
    client c;
    pid_t pid = start_pair(0, &c, &fd, "throughput");
    if (pid < 0)
        return 1;
    const char *msg_env = getenv("MESH_BENCH_MSG"); /* bytes, to explore other sizes */
    c.msg_size = msg_env ? (size_t)atol(msg_env) : THROUGHPUT_MSG;
    if (c.msg_size < 1 || c.msg_size > THROUGHPUT_MSG_MAX)
        c.msg_size = THROUGHPUT_MSG;
    c.payload = malloc(c.msg_size);
    for (size_t i = 0; i < c.msg_size; i++)
        c.payload[i] = (uint8_t)(i * 131 + 7);
    int ok = mesh_session_connect(&c.bulk, &c.sd.env, c.sd.tls, &c.to, c.pin, &c.cfg, &BULK_CBS,
                                  &c) == MESH_OK;
    if (ok)
        run_until(&c, &c.up, 10.0);
    ok = ok && c.up == 1;
    uint64_t bytes = 0;
    double ours_s = 0, ossl_sum = 0, user_s = 0, sys_s = 0, ceil_sum = 0;
    int ossl_rounds = 0, ceil_rounds = 0;
    for (int round = 0; ok && round < seconds; round++) {
        struct rusage ru0, ru1;
        getrusage(RUSAGE_SELF, &ru0);
        c.round_id = (uint64_t)round + 1;
        c.pinged = c.done = 0;
        c.round_bytes = 0;
        c.bulk_start = mesh_env_now(&c.sd.env);
        c.bulk_stop = c.bulk_start + MESH_NS_PER_S;
        bulk_pump(&c);
        run_until(&c, &c.done, 30.0);
        getrusage(RUSAGE_SELF, &ru1);
        user_s += tv_diff(&ru0.ru_utime, &ru1.ru_utime);
        sys_s += tv_diff(&ru0.ru_stime, &ru1.ru_stime);
        ok = c.done == 1 && c.bulk_done > c.bulk_start;
        bytes += c.round_bytes;
        ours_s += (double)(c.bulk_done - c.bulk_start) / 1e9;
        if (ossl_rounds >= 0 && ossl_speed_round(&ossl_sum) == 0)
            ossl_rounds++;
        else
            ossl_rounds = -1;
        if (ceil_rounds >= 0 && ceil_round(&ceil_sum) == 0)
            ceil_rounds++;
        else
            ceil_rounds = -1;
    }
    mesh_session_free(c.bulk);
    stop_child(pid, fd);
    free(c.payload);
    side_free(&c.sd);
    if (!ok) {
        fprintf(stderr, "bench_sessions: throughput run failed\n");
        return 1;
    }
    double base = ossl_rounds > 0 ? ossl_sum / ossl_rounds : -1;
    printf("# meshara: %llu payload bytes in %zu-byte AppData messages, %.2f s end to end\n",
           (unsigned long long)bytes, c.msg_size, ours_s);
    printf("# sender CPU: user %.2f s, system %.2f s (%.3f + %.3f ns per byte)\n", user_s, sys_s,
           user_s * 1e9 / (double)bytes, sys_s * 1e9 / (double)bytes);
    if (base > 0)
        printf("# openssl speed -evp aes-128-gcm -bytes 16384: %.0f B/s (mean of %d runs)\n", base,
               ossl_rounds);
    if (ceil_rounds > 0 && base > 0) {
        double fl = ceil_sum / ceil_rounds;
        printf("# ceiling (16 KiB AES-128-GCM records over loopback TCP, no TLS library, no event "
               "loop): %.0f B/s = %.2f of openssl speed; this session reaches %.2f of it\n",
               fl, fl / base, (double)bytes / ours_s / fl);
    }
    print_ratio("throughput", (double)bytes / ours_s, "B/s", base);
    return 0;
}

/* -- idle connections: open IDLE_WARMUP, snapshot, open IDLE_CONNS more, snapshot -- */

static void idle_next(client *c);

static void idle_connected(mesh_session *s, void *ud)
{
    client *c = ud;
    c->idle[c->open++] = s;
    c->inflight--;
    if (c->open == IDLE_WARMUP || c->open == c->target)
        mesh_real_stop(c->sd.r);
    idle_next(c);
}

static void idle_closed(mesh_session *s, int reason, void *ud)
{
    client *c = ud;
    fprintf(stderr, "# idle session closed: %s\n", mesh_errname(reason));
    c->failed++;
    c->done = -1;
    (void)s;
}

static const mesh_session_cbs IDLE_CBS = {.on_connected = idle_connected, .on_closed = idle_closed};

static void idle_next(client *c)
{
    size_t limit = c->open < IDLE_WARMUP ? IDLE_WARMUP : c->target;
    while (c->inflight < IDLE_INFLIGHT && c->open + c->inflight < limit) {
        mesh_session *s = NULL;
        if (mesh_session_connect(&s, &c->sd.env, c->sd.tls, &c->to, c->pin, &c->cfg, &IDLE_CBS,
                                 c) != MESH_OK) {
            c->done = -1;
            return;
        }
        c->inflight++;
    }
}

static int read_report(int fd, const char *tag, size_t *heap, size_t *rss)
{
    char line[128];
    size_t len = 0;
    while (len < sizeof line - 1) { /* one line, byte by byte: the pipe carries two */
        ssize_t n = read(fd, line + len, 1);
        if (n <= 0)
            return -1;
        if (line[len++] == '\n')
            break;
    }
    line[len] = '\0';
    char t[16];
    return sscanf(line, "%15s %zu %zu", t, heap, rss) == 3 && strcmp(t, tag) == 0 ? 0 : -1;
}

static int bench_idle(void)
{
    int fd = -1;
    client c;
    pid_t pid = start_pair(1, &c, &fd, "idle");
    if (pid < 0)
        return 1;
    c.target = IDLE_WARMUP + IDLE_CONNS;
    c.idle = calloc(c.target, sizeof *c.idle);
    idle_next(&c);
    while (c.open < IDLE_WARMUP && c.done == 0)
        mesh_real_run_for(c.sd.r, SLICE_MS * MESH_NS_PER_MS);
    size_t heap0 = heap_in_use(), rss0 = rss_bytes();
    idle_next(&c);
    double stop = wall() + 60;
    while (c.open < c.target && c.done == 0 && wall() < stop)
        mesh_real_run_for(c.sd.r, SLICE_MS * MESH_NS_PER_MS);
    /* let the last hellos and writes drain, so buffers are as idle as they will be */
    mesh_real_run_for(c.sd.r, 200 * MESH_NS_PER_MS);
    size_t heap1 = heap_in_use(), rss1 = rss_bytes();
    size_t sh0 = 0, sr0 = 0, sh1 = 0, sr1 = 0;
    int srv_ok = c.open == c.target && read_report(fd, "warm", &sh0, &sr0) == 0 &&
                 read_report(fd, "full", &sh1, &sr1) == 0;
    for (size_t i = 0; i < c.open; i++)
        mesh_session_free(c.idle[i]);
    free(c.idle);
    stop_child(pid, fd);
    side_free(&c.sd);
    if (!srv_ok) {
        fprintf(stderr, "bench_sessions: idle run failed (%zu of %zu open)\n", c.open, c.target);
        return 1;
    }
    double ch = ((double)heap1 - (double)heap0) / IDLE_CONNS;
    double cr = ((double)rss1 - (double)rss0) / IDLE_CONNS;
    double sh = ((double)sh1 - (double)sh0) / IDLE_CONNS;
    double sr = ((double)sr1 - (double)sr0) / IDLE_CONNS;
    printf("# idle sessions: client heap %.0f B, RSS %.0f B; server heap %.0f B, RSS %.0f B "
           "per session (%d open, kernel socket buffers not counted)\n",
           ch, cr, sh, sr, IDLE_CONNS);
    printf("BENCH idle_conn_bytes %.0f\n", ch > sh ? ch : sh);
    return 0;
}

/* 1 if part is selected: no names after the seconds means all of them. */
static int wanted(int argc, char **argv, const char *part)
{
    if (argc <= 2)
        return 1;
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], part) == 0)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    int seconds = DEFAULT_SECONDS;
    const char *env = getenv("MESH_BENCH_SECONDS");
    if (argc > 1)
        seconds = atoi(argv[1]);
    else if (env)
        seconds = atoi(env);
    if (seconds < 1 || seconds > 600) {
        fprintf(stderr, "usage: bench_sessions [seconds 1..600] [handshake] [throughput] [idle]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    printf("# profile %s\n", bench_profile() == MESH_PROFILE_SEED ? "seed" : "web");
    raise_nofile();
    int rc = 0;
    if (wanted(argc, argv, "handshake"))
        rc |= bench_handshakes(seconds);
    if (wanted(argc, argv, "throughput"))
        rc |= bench_throughput(seconds);
    if (wanted(argc, argv, "idle"))
        rc |= bench_idle();
    return rc;
}
