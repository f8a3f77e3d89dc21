/*
 * flood_client — the attacker of tests/real/test_node_flood.sh: holds N TCP connections to a
 * node from other loopback addresses (127.0.0.2, 127.0.0.3, ...: on Linux the whole of
 * 127/8 is local without any setup) and does not complete a handshake on any of them.
 *
 * Usage: flood_client --to ADDR:PORT --conns N [--sources K] [--mode idle|half|full]
 *                     [--reconnect MS] [--seconds S]
 *   --sources K    spread the connections over K source addresses from 127.0.0.2 (default 1)
 *   --mode         idle: send nothing (default); half: the first half of a real TLS 1.3
 *                  ClientHello (what the node's own client sends: SNI, ALPN), then nothing;
 *                  full: the whole ClientHello, then nothing (the server's flight is read and
 *                  dropped)
 *   --reconnect MS open a new connection MS after the node closes one (default: never), so
 *                  N stay open as long as the node lets them — the attacker who "repeats"
 *   --seconds S    stop after S seconds (default: at SIGTERM/SIGINT)
 * Prints "ready" once every first attempt has connected or failed, and at exit one line:
 *   connects=A connected=B closed=C reset=D failed=E open=F
 * (closed: the node sent FIN; reset: RST; failed: the connect itself failed).
 * Exit 0; 2 bad arguments; 1 a local failure (socket, epoll, OpenSSL).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
    MAX_CONNS = 100000,
    HELLO_MAX = 4096,
    EVENTS = 256,
};

enum mode { MODE_IDLE, MODE_HALF, MODE_FULL };

typedef struct conn {
    int fd;             /* -1: closed (reconnect due at `due`, or never) */
    int connecting;     /* connect() in progress */
    int tried;          /* the first attempt connected or failed */
    uint64_t due;       /* ms: when to reconnect */
    struct in_addr src; /* source address */
} conn;

static struct {
    struct sockaddr_in to;
    size_t nconns, nsources;
    int mode;
    long reconnect_ms; /* < 0: never */
    long seconds;      /* <= 0: until a signal */
    uint8_t hello[HELLO_MAX];
    size_t hello_len;
    conn *c;
    int ep;
    uint64_t connects, connected, closed, reset, failed;
} G;

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A ClientHello as the node's client sends it (TLS 1.3, SNI meshara.node, ALPN meshara/1.0),
 * taken from OpenSSL through memory BIOs; the same bytes are replayed on every connection. */
static int make_hello(void)
{
    static const uint8_t alpn[] = "\x0bmeshara/1.0";
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return -1;
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL *ssl = SSL_new(ctx);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    int rc = -1;
    if (!ssl || !rb || !wb) {
        BIO_free(rb);
        BIO_free(wb);
        goto out;
    }
    SSL_set_bio(ssl, rb, wb);
    SSL_set_connect_state(ssl);
    SSL_set_tlsext_host_name(ssl, "meshara.node");
    SSL_set_alpn_protos(ssl, alpn, sizeof alpn - 1);
    (void)SSL_do_handshake(ssl); /* wants to read: the ClientHello is in wb */
    int n = BIO_read(wb, G.hello, sizeof G.hello);
    if (n > 0) {
        G.hello_len = (size_t)n;
        rc = 0;
    }
out:
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return rc;
}

static void conn_lost(conn *c, uint64_t *counter)
{
    (*counter)++;
    c->tried = 1;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->connecting = 0;
    c->due = G.reconnect_ms < 0 ? UINT64_MAX : now_ms() + (uint64_t)G.reconnect_ms;
}

static void conn_open(conn *c)
{
    c->connecting = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        conn_lost(c, &G.failed);
        return;
    }
    int one = 1;
    /* the port is picked at connect(), per destination: many connections per source */
    setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = c->src};
    G.connects++;
    if (bind(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        (connect(c->fd, (struct sockaddr *)&G.to, sizeof G.to) != 0 && errno != EINPROGRESS)) {
        conn_lost(c, &G.failed);
        return;
    }
    c->connecting = 1;
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
    epoll_ctl(G.ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void conn_event(conn *c, uint32_t events)
{
    if (c->connecting) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            conn_lost(c, err == ECONNRESET ? &G.reset : &G.failed);
            return;
        }
        c->connecting = 0;
        c->tried = 1;
        G.connected++;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(G.ep, EPOLL_CTL_MOD, c->fd, &ev);
        size_t n = G.mode == MODE_FULL ? G.hello_len : G.mode == MODE_HALF ? G.hello_len / 2 : 0;
        if (n && send(c->fd, G.hello, n, MSG_NOSIGNAL) < 0) {
            conn_lost(c, &G.reset);
            return;
        }
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    uint8_t buf[4096];
    ssize_t r;
    while ((r = recv(c->fd, buf, sizeof buf, 0)) > 0) {
    } /* the server's flight: dropped */
    if (r == 0)
        conn_lost(c, &G.closed);
    else if (errno != EAGAIN && errno != EWOULDBLOCK)
        conn_lost(c, errno == ECONNRESET ? &G.reset : &G.failed);
}

static int parse_args(int argc, char **argv)
{
    const char *to = NULL;
    G.nsources = 1;
    G.reconnect_ms = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--to") == 0)
            to = v;
        else if (strcmp(k, "--conns") == 0)
            G.nconns = strtoul(v, NULL, 10);
        else if (strcmp(k, "--sources") == 0)
            G.nsources = strtoul(v, NULL, 10);
        else if (strcmp(k, "--reconnect") == 0)
            G.reconnect_ms = strtol(v, NULL, 10);
        else if (strcmp(k, "--seconds") == 0)
            G.seconds = strtol(v, NULL, 10);
        else if (strcmp(k, "--mode") == 0)
            G.mode = strcmp(v, "half") == 0 ? MODE_HALF : strcmp(v, "full") == 0 ? MODE_FULL : 0;
        else
            return -1;
    }
    char host[64];
    unsigned port = 0;
    if (argc % 2 != 1 || !to || sscanf(to, "%63[^:]:%u", host, &port) != 2 || port > 65535 ||
        inet_pton(AF_INET, host, &G.to.sin_addr) != 1 || !G.nconns || G.nconns > MAX_CONNS ||
        !G.nsources || G.nsources > 1 << 20)
        return -1;
    G.to.sin_family = AF_INET;
    G.to.sin_port = htons((uint16_t)port);
    return 0;
}

/* Open descriptors for N connections: the soft limit goes up to the hard one. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int run(void)
{
    uint64_t start = now_ms(), end = G.seconds > 0 ? start + (uint64_t)G.seconds * 1000 : 0;
    for (size_t i = 0; i < G.nconns; i++)
        conn_open(&G.c[i]);
    int ready = 0;
    struct epoll_event evs[EVENTS];
    while (!g_stop && (!end || now_ms() < end)) {
        int n = epoll_wait(G.ep, evs, EVENTS, 10);
        if (n < 0 && errno != EINTR)
            return 1;
        for (int i = 0; i < n; i++)
            conn_event(evs[i].data.ptr, evs[i].events);
        uint64_t t = now_ms();
        int pending = 0;
        for (size_t i = 0; i < G.nconns; i++) {
            conn *c = &G.c[i];
            pending |= !c->tried;
            if (c->fd < 0 && c->due <= t)
                conn_open(c);
        }
        if (!ready && !pending) {
            ready = 1;
            printf("ready\n");
            fflush(stdout);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (parse_args(argc, argv) != 0) {
        fprintf(stderr, "usage: flood_client --to ADDR:PORT --conns N [--sources K] "
                        "[--mode idle|half|full] [--reconnect MS] [--seconds S]\n");
        return 2;
    }
    raise_fd_limit();
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    if (make_hello() != 0) {
        fprintf(stderr, "flood_client: cannot build a ClientHello\n");
        return 1;
    }
    G.c = calloc(G.nconns, sizeof *G.c);
    G.ep = epoll_create1(EPOLL_CLOEXEC);
    if (!G.c || G.ep < 0) {
        fprintf(stderr, "flood_client: %s\n", strerror(errno));
        return 1;
    }
    uint32_t base = ntohl(inet_addr("127.0.0.2"));
    for (size_t i = 0; i < G.nconns; i++) {
        G.c[i].fd = -1;
        G.c[i].src.s_addr = htonl(base + (uint32_t)(i % G.nsources));
    }
    int rc = run();
    size_t open = 0;
    for (size_t i = 0; i < G.nconns; i++) {
        if (G.c[i].fd >= 0) {
            open++;
            close(G.c[i].fd);
        }
    }
    printf("connects=%llu connected=%llu closed=%llu reset=%llu failed=%llu open=%zu\n",
           (unsigned long long)G.connects, (unsigned long long)G.connected,
           (unsigned long long)G.closed, (unsigned long long)G.reset, (unsigned long long)G.failed,
           open);
    free(G.c);
    close(G.ep);
    return rc;
}
