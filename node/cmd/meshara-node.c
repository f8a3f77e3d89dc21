/* meshara-node — one Meshara node on real sockets (the libevent driver, node/real/).
 *
 *   meshara-node keygen --key FILE      new identity (0600, never overwrites), prints its key
 *   meshara-node pubkey --key FILE      prints the public key of an existing key file
 *   meshara-node run --key FILE ...     listens, keeps sessions to its --peer list, logs
 *   meshara-node send --key FILE ...    one-shot: deliver one message (or a ping) to a peer
 *
 * `meshara-node --help` lists every option and the exit codes; usage() below is that text.
 *
 * Shape. Everything runs on one mesh_real loop. A mesh_server accepts and authenticates
 * inbound sessions and hands them over once CONNECTED; outbound sessions are made for each
 * --peer (its key pinned) and remade with a jittered exponential backoff whenever they close.
 * Each live session is a `conn` on one list, whatever its direction, so shutdown and the
 * session limit treat both alike. On SIGINT/SIGTERM every session is closed in order
 * (Goodbye + close_notify + FIN), and the loop runs until the driver has flushed and closed
 * every socket (or NODE_SHUTDOWN_MAX_MS passed), then the process exits 0.
 *
 * Log lines a script may rely on (stderr, after the driver's "[time] LEVEL " prefix):
 *   session up: <in|out> ADDR key=HEX alpn=NAME
 *   session down: <in|out> ADDR key=HEX reason=MESH_X peer_reason=MESH_Y
 *   connect failed: out ADDR reason=MESH_X (...); retry in N ms
 *   handshake failed: in ADDR reason=MESH_X (...)
 *   message from HEX (ADDR): id=N len=N text="..."
 *   ping from HEX answered
 * and on stdout, once the listener is bound: "listening ADDR" then "pubkey HEX".
 */
#include <event2/event.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/identity.h"
#include "core/server.h"
#include "core/session.h"
#include "core/tls.h"
#include "meshara/env.h"
#include "real/driver.h"

/* Exit codes (also in usage()). */
enum node_exit {
    NODE_EXIT_OK = 0,
    NODE_EXIT_FAIL = 1,  /* runtime failure: cannot listen, peer unreachable/refused, no ack */
    NODE_EXIT_USAGE = 2, /* bad command line */
    NODE_EXIT_KEY = 3,   /* key file: exists (keygen), missing, bad permissions, corrupt */
};

enum node_limits {
    NODE_MAX_PEERS = 64,              /* --peer options */
    NODE_DEFAULT_MAX_SESSIONS = 1024, /* live sessions, both directions */
    NODE_MAX_SESSIONS = 1 << 20,
    NODE_DEFAULT_RECONNECT_MIN_MS = 500,   /* first retry after a session to a peer closed */
    NODE_DEFAULT_RECONNECT_MAX_MS = 30000, /* backoff doubles up to this */
    NODE_RECONNECT_JITTER_PCT = 25,        /* ± on every retry delay */
    NODE_MAX_MS = 24 * 3600 * 1000,        /* largest time option */
    NODE_SHUTDOWN_MAX_MS = 3000,           /* flushing after a signal stops after this */
    NODE_SHUTDOWN_POLL_MS = 5,             /* how often shutdown checks for open sockets */
    NODE_DEFAULT_SEND_TIMEOUT_MS = 10000,  /* send: connect + auth + ack */
    NODE_MAX_MESSAGE = 1 << 20,            /* --message bytes */
    NODE_LOG_TEXT_MAX = 200,               /* message bytes shown in a log line */
    NODE_ALPN_BUF = MESH_TLS_ALPN_MAX * (MESH_TLS_ALPN_NAME_MAX + 1),
};

/* ---- options ------------------------------------------------------------------------------ */

enum node_cmd { CMD_KEYGEN = 1, CMD_PUBKEY = 2, CMD_RUN = 4, CMD_SEND = 8 };

typedef struct peer_opt {
    mesh_addr addr;
    uint8_t key[MESH_PUBKEY_LEN];
    int pinned;
} peer_opt;

typedef struct opts {
    int cmd;
    const char *cmd_name;
    const char *key_path;
    mesh_addr listen;
    int has_listen;
    peer_opt peers[NODE_MAX_PEERS];
    size_t npeers;
    int http2;
    const char *sni;
    char alpn_buf[NODE_ALPN_BUF];
    const char *alpn[MESH_TLS_ALPN_MAX + 1]; /* NULL-terminated; alpn[0] NULL = default */
    uint64_t max_handshakes, max_sessions;
    uint64_t connect_ms, handshake_ms, auth_ms, heartbeat_ms;
    uint64_t reconnect_min_ms, reconnect_max_ms;
    int log_level;
    peer_opt to; /* send */
    int has_to;
    const char *message;
    int ping;
    uint64_t timeout_ms;
} opts;

static void usage(FILE *f)
{
    fputs(
        "Usage:\n"
        "  meshara-node keygen --key FILE\n"
        "  meshara-node pubkey --key FILE\n"
        "  meshara-node run    --key FILE [--listen ADDR:PORT] [--peer ADDR:PORT[#PUBKEYHEX]]...\n"
        "                      [session options] [--max-handshakes N] [--max-sessions N]\n"
        "                      [--reconnect-min MS] [--reconnect-max MS]\n"
        "  meshara-node send   --key FILE --to ADDR:PORT[#PUBKEYHEX] (--message TEXT | --ping)\n"
        "                      [session options] [--timeout MS]\n"
        "  meshara-node --help\n"
        "\n"
        "Commands:\n"
        "  keygen   create a new Ed25519 identity in FILE (mode 0600; an existing file is never\n"
        "           overwritten) and print its public key (64 hex chars) on stdout\n"
        "  pubkey   print the public key of the identity in FILE\n"
        "  run      run a node until SIGINT/SIGTERM: accept sessions on --listen, keep one\n"
        "           session to each --peer (reconnecting with backoff when it closes), answer\n"
        "           pings, log sessions and received messages to stderr. On a signal, close\n"
        "           every session cleanly (Goodbye, TLS close_notify, FIN), flush, exit 0.\n"
        "           Prints \"listening ADDR:PORT\" and \"pubkey HEX\" on stdout once bound\n"
        "           (port 0 picks a free port: read the bound one there).\n"
        "  send     connect to --to, authenticate, deliver one message and wait for the peer's\n"
        "           acknowledgement (prints \"delivered to HEX\"), or with --ping send one ping\n"
        "           (prints \"pong from HEX rtt_us=N\"); then close cleanly. The receiving\n"
        "           node (run) logs: message from HEX (ADDR): id=N len=N text=\"...\"\n"
        "\n"
        "Options:\n"
        "  --key FILE             identity key file (required by every command)\n"
        "  --listen ADDR:PORT     run: address to accept sessions on (127.0.0.1:0, [::1]:7000)\n"
        "  --peer ADDR:PORT[#KEY] run: a peer to stay connected to (repeatable, at most 64);\n"
        "                         with #KEY (its public key, 64 hex chars) the key is pinned:\n"
        "                         any other key is refused with MESH_ERR_KEY_MISMATCH\n"
        "  --to ADDR:PORT[#KEY]   send: the peer (KEY pinned as for --peer)\n"
        "  --message TEXT         send: the message (at most 1 MiB)\n"
        "  --ping                 send: a ping instead of a message\n"
        "  --timeout MS           send: give up after MS (default 10000)\n"
        "  --max-handshakes N     run: sessions between accept and authenticated at once\n"
        "                         (default 64; more are reset at once)\n"
        "  --max-sessions N       run: live sessions, both directions (default 1024)\n"
        "  --reconnect-min MS     run: first retry delay after a peer session closed (500)\n"
        "  --reconnect-max MS     run: the delay doubles up to this (30000); jittered ±25%\n"
        "Session options (run, send):\n"
        "  --http2                HTTP/2 framing: sessions this node opens offer only ALPN h2 and\n"
        "                         carry messages as POST /api/v1/message bodies; the listener\n"
        "                         accepts ALPN h2 (an HTTP/2 client such as curl gets 404/405)\n"
        "  --sni NAME             TLS server name sent (default meshara.node)\n"
        "  --alpn LIST            comma-separated ALPN protocols, preferred first\n"
        "                         (default meshara/1.0; with --http2: h2, and the list must\n"
        "                         contain h2; the listener picks by its own order)\n"
        "  --connect-timeout MS   TCP connect timeout (default 10000)\n"
        "  --handshake-timeout MS TLS handshake timeout (default 10000)\n"
        "  --auth-timeout MS      time from TLS done to the peer's verified hello (10000)\n"
        "  --heartbeat MS         heartbeat interval (default 30000; a peer silent for 2.5\n"
        "                         intervals is closed with MESH_ERR_TIMEOUT)\n"
        "  --log-level LEVEL      debug, info (default), warn or error\n"
        "\n"
        "Exit codes:\n"
        "  0  success (run: stopped by SIGINT/SIGTERM)\n"
        "  1  runtime failure (cannot listen; send: peer unreachable, refused, wrong key,\n"
        "     closed or timed out before acknowledging)\n"
        "  2  bad command line\n"
        "  3  key file problem (keygen: file exists; otherwise missing, readable by others,\n"
        "     or corrupt)\n",
        f);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("meshara-node: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\nTry 'meshara-node --help'.\n", stderr);
    va_end(ap);
    return NODE_EXIT_USAGE;
}

/* Whole decimal number in [lo, hi]; MESH_OK or MESH_ERR_INVAL. */
static int parse_num(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return MESH_ERR_INVAL;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
            return MESH_ERR_INVAL;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (v < lo || v > hi)
        return MESH_ERR_INVAL;
    *out = v;
    return MESH_OK;
}

/* "ADDR:PORT" or "ADDR:PORT#PUBKEYHEX"; port must not be 0. */
static int parse_peer(const char *text, peer_opt *p)
{
    char buf[MESH_ADDR_STRLEN + 1 + MESH_PUBKEY_HEX_LEN + 1];
    if (strlen(text) >= sizeof buf)
        return MESH_ERR_INVAL;
    strcpy(buf, text);
    char *hash = strchr(buf, '#');
    memset(p, 0, sizeof *p);
    if (hash) {
        *hash = '\0';
        if (mesh_hex_decode(hash + 1, p->key, MESH_PUBKEY_LEN) != MESH_OK)
            return MESH_ERR_MALFORMED;
        p->pinned = 1;
    }
    if (mesh_addr_parse(&p->addr, buf) != MESH_OK || p->addr.port == 0)
        return MESH_ERR_INVAL;
    return MESH_OK;
}

static int parse_alpn(opts *o, const char *list)
{
    size_t len = strlen(list);
    if (len == 0 || len >= sizeof o->alpn_buf)
        return MESH_ERR_INVAL;
    memcpy(o->alpn_buf, list, len + 1);
    size_t n = 0;
    for (char *save = NULL, *tok = strtok_r(o->alpn_buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (n == MESH_TLS_ALPN_MAX || strlen(tok) > MESH_TLS_ALPN_NAME_MAX)
            return MESH_ERR_INVAL;
        o->alpn[n++] = tok;
    }
    o->alpn[n] = NULL;
    /* an empty item (",," or a leading/trailing comma) is a typo, not a protocol */
    return n == 0 || strstr(list, ",,") || list[0] == ',' || list[len - 1] == ',' ? MESH_ERR_INVAL
                                                                                  : MESH_OK;
}

static int parse_level(const char *s, int *out)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = MESH_LOG_DEBUG + i;
            return MESH_OK;
        }
    }
    return MESH_ERR_INVAL;
}

enum opt_id {
    OPT_KEY = 256,
    OPT_LISTEN,
    OPT_PEER,
    OPT_HTTP2,
    OPT_SNI,
    OPT_ALPN,
    OPT_MAX_HANDSHAKES,
    OPT_MAX_SESSIONS,
    OPT_CONNECT_TIMEOUT,
    OPT_HANDSHAKE_TIMEOUT,
    OPT_AUTH_TIMEOUT,
    OPT_HEARTBEAT,
    OPT_RECONNECT_MIN,
    OPT_RECONNECT_MAX,
    OPT_LOG_LEVEL,
    OPT_TO,
    OPT_MESSAGE,
    OPT_PING,
    OPT_TIMEOUT,
    OPT_HELP,
};

#define SESSION_CMDS (CMD_RUN | CMD_SEND)
#define ALL_CMDS (CMD_KEYGEN | CMD_PUBKEY | CMD_RUN | CMD_SEND)

/* Which commands take each option. */
#define OPT_ROW(id) [(id)-OPT_KEY]
static const int OPT_CMDS[] = {
    OPT_ROW(OPT_KEY) = ALL_CMDS,
    OPT_ROW(OPT_LISTEN) = CMD_RUN,
    OPT_ROW(OPT_PEER) = CMD_RUN,
    OPT_ROW(OPT_HTTP2) = SESSION_CMDS,
    OPT_ROW(OPT_SNI) = SESSION_CMDS,
    OPT_ROW(OPT_ALPN) = SESSION_CMDS,
    OPT_ROW(OPT_MAX_HANDSHAKES) = CMD_RUN,
    OPT_ROW(OPT_MAX_SESSIONS) = CMD_RUN,
    OPT_ROW(OPT_CONNECT_TIMEOUT) = SESSION_CMDS,
    OPT_ROW(OPT_HANDSHAKE_TIMEOUT) = SESSION_CMDS,
    OPT_ROW(OPT_AUTH_TIMEOUT) = SESSION_CMDS,
    OPT_ROW(OPT_HEARTBEAT) = SESSION_CMDS,
    OPT_ROW(OPT_RECONNECT_MIN) = CMD_RUN,
    OPT_ROW(OPT_RECONNECT_MAX) = CMD_RUN,
    OPT_ROW(OPT_LOG_LEVEL) = SESSION_CMDS,
    OPT_ROW(OPT_TO) = CMD_SEND,
    OPT_ROW(OPT_MESSAGE) = CMD_SEND,
    OPT_ROW(OPT_PING) = CMD_SEND,
    OPT_ROW(OPT_TIMEOUT) = CMD_SEND,
    OPT_ROW(OPT_HELP) = ALL_CMDS,
};

static const struct option LONG_OPTS[] = {
    {"key", required_argument, NULL, OPT_KEY},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"peer", required_argument, NULL, OPT_PEER},
    {"http2", no_argument, NULL, OPT_HTTP2},
    {"sni", required_argument, NULL, OPT_SNI},
    {"alpn", required_argument, NULL, OPT_ALPN},
    {"max-handshakes", required_argument, NULL, OPT_MAX_HANDSHAKES},
    {"max-sessions", required_argument, NULL, OPT_MAX_SESSIONS},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"handshake-timeout", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT},
    {"auth-timeout", required_argument, NULL, OPT_AUTH_TIMEOUT},
    {"heartbeat", required_argument, NULL, OPT_HEARTBEAT},
    {"reconnect-min", required_argument, NULL, OPT_RECONNECT_MIN},
    {"reconnect-max", required_argument, NULL, OPT_RECONNECT_MAX},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"to", required_argument, NULL, OPT_TO},
    {"message", required_argument, NULL, OPT_MESSAGE},
    {"ping", no_argument, NULL, OPT_PING},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

_Static_assert(sizeof OPT_CMDS / sizeof OPT_CMDS[0] == OPT_HELP - OPT_KEY + 1,
               "one row per option");
_Static_assert(sizeof LONG_OPTS / sizeof LONG_OPTS[0] == OPT_HELP - OPT_KEY + 2,
               "LONG_OPTS lists the options in opt_id order, then the terminator");

/* A time option in milliseconds: 1 .. NODE_MAX_MS. */
static int ms_opt(const char *name, const char *arg, uint64_t *out)
{
    if (parse_num(arg, 1, NODE_MAX_MS, out) != MESH_OK)
        return usage_error("--%s: expected milliseconds 1..%d, got '%s'", name, NODE_MAX_MS, arg);
    return NODE_EXIT_OK;
}

/* One option; NODE_EXIT_OK or NODE_EXIT_USAGE (message printed). */
static int take_opt(opts *o, int id, const char *name, const char *arg)
{
    peer_opt p;
    int rc;
    switch (id) {
    case OPT_KEY:
        if (!*arg)
            return usage_error("--key: empty file name");
        o->key_path = arg;
        return NODE_EXIT_OK;
    case OPT_LISTEN:
        if (mesh_addr_parse(&o->listen, arg) != MESH_OK)
            return usage_error("--listen: expected ADDR:PORT (127.0.0.1:7000, [::1]:0), got '%s'",
                               arg);
        o->has_listen = 1;
        return NODE_EXIT_OK;
    case OPT_PEER:
    case OPT_TO:
        rc = parse_peer(arg, &p);
        if (rc == MESH_ERR_MALFORMED)
            return usage_error("--%s '%s': the key after '#' must be %d hex characters", name, arg,
                               MESH_PUBKEY_HEX_LEN);
        if (rc != MESH_OK)
            return usage_error("--%s: expected ADDR:PORT[#PUBKEYHEX] with a port > 0, got '%s'",
                               name, arg);
        if (id == OPT_TO) {
            if (o->has_to)
                return usage_error("--to given twice");
            o->to = p;
            o->has_to = 1;
        } else {
            if (o->npeers == NODE_MAX_PEERS)
                return usage_error("too many --peer options (at most %d)", NODE_MAX_PEERS);
            o->peers[o->npeers++] = p;
        }
        return NODE_EXIT_OK;
    case OPT_HTTP2:
        o->http2 = 1;
        return NODE_EXIT_OK;
    case OPT_SNI:
        if (!*arg || strlen(arg) > MESH_TLS_SNI_MAX || strpbrk(arg, " \t\r\n"))
            return usage_error("--sni: expected a host name of 1..%d characters, got '%s'",
                               MESH_TLS_SNI_MAX, arg);
        o->sni = arg;
        return NODE_EXIT_OK;
    case OPT_ALPN:
        if (parse_alpn(o, arg) != MESH_OK)
            return usage_error("--alpn: expected 1..%d comma-separated names of 1..%d bytes, "
                               "got '%s'",
                               MESH_TLS_ALPN_MAX, MESH_TLS_ALPN_NAME_MAX, arg);
        return NODE_EXIT_OK;
    case OPT_MAX_HANDSHAKES:
        if (parse_num(arg, 1, MESH_SERVER_MAX_HANDSHAKES, &o->max_handshakes) != MESH_OK)
            return usage_error("--max-handshakes: expected 1..%d, got '%s'",
                               MESH_SERVER_MAX_HANDSHAKES, arg);
        return NODE_EXIT_OK;
    case OPT_MAX_SESSIONS:
        if (parse_num(arg, 1, NODE_MAX_SESSIONS, &o->max_sessions) != MESH_OK)
            return usage_error("--max-sessions: expected 1..%d, got '%s'", NODE_MAX_SESSIONS, arg);
        return NODE_EXIT_OK;
    case OPT_CONNECT_TIMEOUT:
        return ms_opt(name, arg, &o->connect_ms);
    case OPT_HANDSHAKE_TIMEOUT:
        return ms_opt(name, arg, &o->handshake_ms);
    case OPT_AUTH_TIMEOUT:
        return ms_opt(name, arg, &o->auth_ms);
    case OPT_HEARTBEAT:
        return ms_opt(name, arg, &o->heartbeat_ms);
    case OPT_RECONNECT_MIN:
        return ms_opt(name, arg, &o->reconnect_min_ms);
    case OPT_RECONNECT_MAX:
        return ms_opt(name, arg, &o->reconnect_max_ms);
    case OPT_TIMEOUT:
        return ms_opt(name, arg, &o->timeout_ms);
    case OPT_LOG_LEVEL:
        if (parse_level(arg, &o->log_level) != MESH_OK)
            return usage_error("--log-level: expected debug, info, warn or error, got '%s'", arg);
        return NODE_EXIT_OK;
    case OPT_MESSAGE:
        if (strlen(arg) > NODE_MAX_MESSAGE)
            return usage_error("--message: at most %d bytes", NODE_MAX_MESSAGE);
        o->message = arg;
        return NODE_EXIT_OK;
    case OPT_PING:
        o->ping = 1;
        return NODE_EXIT_OK;
    default:
        return usage_error("internal: unhandled option %d", id);
    }
}

/* Fills o; returns -1 to go on, or the exit code (help printed, or a usage error). */
static int parse_args(opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    o->log_level = MESH_LOG_INFO;
    o->reconnect_min_ms = NODE_DEFAULT_RECONNECT_MIN_MS;
    o->reconnect_max_ms = NODE_DEFAULT_RECONNECT_MAX_MS;
    o->max_sessions = NODE_DEFAULT_MAX_SESSIONS;
    o->timeout_ms = NODE_DEFAULT_SEND_TIMEOUT_MS;
    if (argc < 2)
        return usage_error("no command given (keygen, pubkey, run or send)");
    const char *c = argv[1];
    if (strcmp(c, "--help") == 0 || strcmp(c, "-h") == 0 || strcmp(c, "help") == 0) {
        usage(stdout);
        return NODE_EXIT_OK;
    }
    static const struct {
        const char *name;
        int cmd;
    } cmds[] = {
        {"keygen", CMD_KEYGEN}, {"pubkey", CMD_PUBKEY}, {"run", CMD_RUN}, {"send", CMD_SEND}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(c, cmds[i].name) == 0)
            o->cmd = cmds[i].cmd, o->cmd_name = cmds[i].name;
    if (!o->cmd)
        return usage_error("unknown command '%s' (keygen, pubkey, run or send)", c);

    opterr = 0; /* our own messages */
    optind = 1;
    int argc1 = argc - 1, idx;
    char **argv1 = argv + 1;
    for (;;) {
        int prev = optind;
        int id = getopt_long(argc1, argv1, "+:h", LONG_OPTS, &idx);
        if (id == -1)
            break;
        if (id == 'h' || id == OPT_HELP) {
            usage(stdout);
            return NODE_EXIT_OK;
        }
        if (id == '?')
            return usage_error("unknown option '%s'", argv1[prev]);
        if (id == ':')
            return usage_error("option '%s' needs a value", argv1[prev]);
        const char *name = LONG_OPTS[idx].name;
        if (!(OPT_CMDS[id - OPT_KEY] & o->cmd))
            return usage_error("option --%s is not valid for '%s'", name, o->cmd_name);
        int rc = take_opt(o, id, name, optarg);
        if (rc != NODE_EXIT_OK)
            return rc;
    }
    if (optind < argc1)
        return usage_error("unexpected argument '%s'", argv1[optind]);
    if (!o->key_path)
        return usage_error("'%s' needs --key FILE", o->cmd_name);
    if (o->cmd == CMD_RUN && !o->has_listen && o->npeers == 0)
        return usage_error("'run' needs --listen ADDR:PORT or at least one --peer");
    if (o->reconnect_min_ms > o->reconnect_max_ms)
        return usage_error("--reconnect-min (%" PRIu64 ") is above --reconnect-max (%" PRIu64 ")",
                           o->reconnect_min_ms, o->reconnect_max_ms);
    if (o->cmd == CMD_SEND) {
        if (!o->has_to)
            return usage_error("'send' needs --to ADDR:PORT[#PUBKEYHEX]");
        if (!o->message == !o->ping)
            return usage_error("'send' needs exactly one of --message TEXT or --ping");
    }
    if (o->http2) {
        int has_h2 = !o->alpn[0];
        for (size_t i = 0; o->alpn[i]; i++)
            has_h2 |= strcmp(o->alpn[i], MESH_SESSION_H2_ALPN) == 0;
        if (!has_h2)
            return usage_error("--http2 needs \"%s\" in the --alpn list", MESH_SESSION_H2_ALPN);
        if (!o->alpn[0])
            o->alpn[0] = MESH_SESSION_H2_ALPN;
    }
    return -1;
}

/* ---- the node ---------------------------------------------------------------------------- */

typedef struct node node;
typedef struct peer peer;

/* One live session (either direction). */
typedef struct conn {
    node *n;
    peer *p; /* the configured peer this session dials, or NULL (accepted) */
    mesh_session *s;
    struct conn *prev, *next;
    int up; /* CONNECTED was reported */
} conn;

/* A configured --peer: at most one outbound session at a time, retried with backoff. */
struct peer {
    node *n;
    peer_opt o;
    conn *c; /* current outbound session, or NULL while waiting to retry */
    mesh_timer *retry;
    uint64_t backoff_ms; /* next retry delay */
};

struct node {
    const opts *o;
    mesh_real *r;
    mesh_env env;
    mesh_identity *id;
    mesh_tls_ctx *tls;
    mesh_server *srv;
    mesh_session_cfg scfg;
    peer *peers;
    size_t npeers;
    conn *conns; /* every live session */
    size_t nconns;
    int result;       /* send: exit code once finished, -1 while running */
    uint64_t send_id; /* send: msg_id / query_id awaited */
    mesh_time send_at;
    mesh_timer *deadline; /* send: --timeout */
};

static const char *dir_of(const conn *c)
{
    return c->p ? "out" : "in";
}

static char *key_hex(const uint8_t *key, char out[MESH_PUBKEY_HEX_LEN + 1])
{
    if (!key)
        return strcpy(out, "-");
    return mesh_hex_encode(key, MESH_PUBKEY_LEN, out);
}

/* Printable form of message bytes for a log line: at most NODE_LOG_TEXT_MAX bytes shown,
 * quotes, backslashes and non-printable bytes escaped. out needs 4 * NODE_LOG_TEXT_MAX + 1. */
static char *printable(const uint8_t *data, size_t len, char *out)
{
    char *w = out;
    size_t n = len < NODE_LOG_TEXT_MAX ? len : NODE_LOG_TEXT_MAX;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = data[i];
        if (b == '"' || b == '\\')
            w += sprintf(w, "\\%c", b);
        else if (b >= 0x20 && b < 0x7f)
            *w++ = (char)b;
        else
            w += sprintf(w, "\\x%02x", b);
    }
    *w = '\0';
    return out;
}

static conn *conn_add(node *n, peer *p, mesh_session *s)
{
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->n = n;
    c->p = p;
    c->s = s;
    c->next = n->conns;
    if (n->conns)
        n->conns->prev = c;
    n->conns = c;
    n->nconns++;
    return c;
}

/* Unlink and free c and its session (allowed inside the session's callbacks). */
static void conn_free(conn *c)
{
    node *n = c->n;
    if (c->prev)
        c->prev->next = c->next;
    else
        n->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    n->nconns--;
    if (c->p && c->p->c == c)
        c->p->c = NULL;
    mesh_session_free(c->s);
    free(c);
}

static void log_up(conn *c)
{
    char a[MESH_ADDR_STRLEN], k[MESH_PUBKEY_HEX_LEN + 1];
    mesh_addr pa = mesh_session_peer_addr(c->s);
    c->up = 1;
    mesh_log(&c->n->env, MESH_LOG_INFO, "session up: %s %s key=%s alpn=%s", dir_of(c),
             mesh_addr_format(&pa, a, sizeof a), key_hex(mesh_session_peer_key(c->s), k),
             mesh_session_alpn(c->s));
}

/* Arm p's retry timer with the current backoff (jittered) and double the backoff for next
 * time. Returns the delay chosen, in ms. */
static uint64_t schedule_retry(peer *p)
{
    node *n = p->n;
    uint64_t span = p->backoff_ms * NODE_RECONNECT_JITTER_PCT / 100;
    uint64_t ms = p->backoff_ms - span + mesh_env_random_below(&n->env, 2 * span + 1);
    n->env.ops->timer_set(n->env.obj, p->retry, mesh_env_now(&n->env) + ms * MESH_NS_PER_MS);
    p->backoff_ms =
        p->backoff_ms * 2 > n->o->reconnect_max_ms ? n->o->reconnect_max_ms : p->backoff_ms * 2;
    return ms;
}

/* ---- session callbacks --------------------------------------------------------------------- */

static void send_ack(conn *c, uint64_t msg_id)
{
    Meshara__Wire__AppAck ack = MESHARA__WIRE__APP_ACK__INIT;
    ack.msg_id = msg_id;
    ack.status = MESH_OK;
    mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
    e.body_case = MESHARA__WIRE__ENVELOPE__BODY_ACK;
    e.ack = &ack;
    int rc = mesh_session_send(c->s, &e);
    if (rc != MESH_OK)
        mesh_log(&c->n->env, MESH_LOG_WARN, "ack of message %" PRIu64 " not sent: %s", msg_id,
                 mesh_errname(rc));
}

static void answer_ping(conn *c, const Meshara__Wire__Query *q, const char *khex)
{
    Meshara__Wire__Response r = MESHARA__WIRE__RESPONSE__INIT;
    r.query_id = q->query_id;
    r.type = MESHARA__WIRE__QUERY_TYPE__QUERY_PING;
    r.status = MESH_OK;
    r.payload = q->payload; /* echoed */
    mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
    e.body_case = MESHARA__WIRE__ENVELOPE__BODY_RESPONSE;
    e.response = &r;
    int rc = mesh_session_send(c->s, &e);
    mesh_log(&c->n->env, rc == MESH_OK ? MESH_LOG_INFO : MESH_LOG_WARN, "ping from %s %s%s", khex,
             rc == MESH_OK ? "answered" : "not answered: ", rc == MESH_OK ? "" : mesh_errname(rc));
}

/* send: the peer confirmed; print the result and close in order. */
static void send_done(conn *c, const char *what, mesh_time rtt)
{
    node *n = c->n;
    char k[MESH_PUBKEY_HEX_LEN + 1];
    key_hex(mesh_session_peer_key(c->s), k);
    if (rtt)
        printf("%s from %s rtt_us=%" PRIu64 "\n", what, k, (uint64_t)(rtt / MESH_NS_PER_US));
    else
        printf("%s to %s\n", what, k);
    fflush(stdout);
    n->result = NODE_EXIT_OK;
    mesh_real_stop(n->r);
}

static void on_message(mesh_session *s, const mesh_envelope *e, void *ud)
{
    (void)s;
    conn *c = ud;
    node *n = c->n;
    char a[MESH_ADDR_STRLEN], k[MESH_PUBKEY_HEX_LEN + 1], text[4 * NODE_LOG_TEXT_MAX + 1];
    mesh_addr pa = mesh_session_peer_addr(c->s);
    key_hex(mesh_session_peer_key(c->s), k);
    switch (e->body_case) {
    case MESHARA__WIRE__ENVELOPE__BODY_DATA:
        mesh_log(&n->env, MESH_LOG_INFO,
                 "message from %s (%s): id=%" PRIu64 " len=%zu text=\"%s\"%s", k,
                 mesh_addr_format(&pa, a, sizeof a), e->data->msg_id, e->data->payload.len,
                 printable(e->data->payload.data, e->data->payload.len, text),
                 e->data->payload.len > NODE_LOG_TEXT_MAX ? " (cut)" : "");
        if (e->data->ack_requested)
            send_ack(c, e->data->msg_id);
        break;
    case MESHARA__WIRE__ENVELOPE__BODY_QUERY:
        if (e->query->type == MESHARA__WIRE__QUERY_TYPE__QUERY_PING)
            answer_ping(c, e->query, k);
        else
            mesh_log(&n->env, MESH_LOG_DEBUG, "query type %d from %s ignored", e->query->type, k);
        break;
    case MESHARA__WIRE__ENVELOPE__BODY_ACK:
        if (n->o->cmd == CMD_SEND && n->result < 0 && e->ack->msg_id == n->send_id)
            send_done(c, "delivered", 0);
        break;
    case MESHARA__WIRE__ENVELOPE__BODY_RESPONSE:
        if (n->o->cmd == CMD_SEND && n->result < 0 && e->response->query_id == n->send_id) {
            mesh_time rtt = mesh_env_now(&n->env) - n->send_at;
            send_done(c, "pong", rtt ? rtt : 1);
        }
        break;
    default:
        mesh_log(&n->env, MESH_LOG_DEBUG, "message kind %d from %s ignored", e->body_case, k);
        break;
    }
}

static void on_closed(mesh_session *s, int reason, void *ud)
{
    conn *c = ud;
    node *n = c->n;
    peer *p = c->p;
    char a[MESH_ADDR_STRLEN], k[MESH_PUBKEY_HEX_LEN + 1], retry[48] = "";
    mesh_addr pa = mesh_session_peer_addr(s);
    mesh_addr_format(&pa, a, sizeof a);
    if (p && n->o->cmd == CMD_RUN) {
        if (c->up)
            p->backoff_ms = n->o->reconnect_min_ms;
        snprintf(retry, sizeof retry, "; retry in %" PRIu64 " ms", schedule_retry(p));
    }
    if (c->up)
        mesh_log(&n->env, reason == MESH_OK ? MESH_LOG_INFO : MESH_LOG_WARN,
                 "session down: %s %s key=%s reason=%s peer_reason=%s%s", dir_of(c), a,
                 key_hex(mesh_session_peer_key(s), k), mesh_errname(reason),
                 mesh_errname(mesh_session_peer_reason(s)), retry);
    else
        mesh_log(&n->env, MESH_LOG_WARN, "connect failed: out %s reason=%s (%s)%s", a,
                 mesh_errname(reason), mesh_strerror(reason), retry);
    if (n->o->cmd == CMD_SEND && n->result < 0) {
        fprintf(stderr, "meshara-node: send to %s failed: %s (%s)\n", a, mesh_errname(reason),
                mesh_strerror(reason));
        n->result = NODE_EXIT_FAIL;
        mesh_real_stop(n->r);
    }
    conn_free(c);
}

/* send: authenticated; deliver the one message or ping. */
static void send_payload(conn *c)
{
    node *n = c->n;
    mesh_env_random(&n->env, &n->send_id, sizeof n->send_id);
    n->send_at = mesh_env_now(&n->env);
    mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
    Meshara__Wire__AppData d = MESHARA__WIRE__APP_DATA__INIT;
    Meshara__Wire__Query q = MESHARA__WIRE__QUERY__INIT;
    if (n->o->ping) {
        q.query_id = n->send_id;
        q.type = MESHARA__WIRE__QUERY_TYPE__QUERY_PING;
        e.body_case = MESHARA__WIRE__ENVELOPE__BODY_QUERY;
        e.query = &q;
    } else {
        d.msg_id = n->send_id;
        d.payload.data = (uint8_t *)n->o->message;
        d.payload.len = strlen(n->o->message);
        d.ack_requested = 1;
        e.body_case = MESHARA__WIRE__ENVELOPE__BODY_DATA;
        e.data = &d;
    }
    int rc = mesh_session_send(c->s, &e);
    if (rc != MESH_OK) {
        fprintf(stderr, "meshara-node: send failed: %s (%s)\n", mesh_errname(rc),
                mesh_strerror(rc));
        n->result = NODE_EXIT_FAIL;
        mesh_real_stop(n->r);
    }
}

static void on_connected(mesh_session *s, void *ud)
{
    (void)s;
    conn *c = ud;
    log_up(c);
    if (c->p)
        c->p->backoff_ms = c->n->o->reconnect_min_ms;
    if (c->n->o->cmd == CMD_SEND)
        send_payload(c);
}

static const mesh_session_cbs CONN_CBS = {
    .on_connected = on_connected, .on_message = on_message, .on_closed = on_closed};

static void dial(peer *p)
{
    node *n = p->n;
    char a[MESH_ADDR_STRLEN];
    mesh_session *s = NULL;
    conn *c = conn_add(n, p, NULL);
    int rc = c ? mesh_session_connect(&s, &n->env, n->tls, &p->o.addr,
                                      p->o.pinned ? p->o.key : NULL, &n->scfg, &CONN_CBS, c)
               : MESH_ERR_NOMEM;
    if (rc != MESH_OK) {
        if (c)
            conn_free(c);
        mesh_addr_format(&p->o.addr, a, sizeof a);
        if (n->o->cmd == CMD_SEND) {
            fprintf(stderr, "meshara-node: cannot connect to %s: %s (%s)\n", a, mesh_errname(rc),
                    mesh_strerror(rc));
            n->result = NODE_EXIT_FAIL;
            return;
        }
        mesh_log(&n->env, MESH_LOG_WARN,
                 "connect failed: out %s reason=%s (%s); retry in %" PRIu64 " ms", a,
                 mesh_errname(rc), mesh_strerror(rc), schedule_retry(p));
        return;
    }
    c->s = s;
    p->c = c;
}

static void on_retry(mesh_timer *t, void *ud)
{
    (void)t;
    peer *p = ud;
    if (!p->c)
        dial(p);
}

/* ---- server callbacks ------------------------------------------------------------------------ */

static void on_session(mesh_server *srv, mesh_session *s, void *ud)
{
    (void)srv;
    node *n = ud;
    char a[MESH_ADDR_STRLEN];
    mesh_addr pa = mesh_session_peer_addr(s);
    if (n->nconns >= n->o->max_sessions) {
        mesh_log(&n->env, MESH_LOG_WARN, "session from %s refused: %zu sessions (--max-sessions)",
                 mesh_addr_format(&pa, a, sizeof a), n->nconns);
        mesh_session_set_cbs(s, NULL, NULL);
        (void)mesh_session_close(s);
        mesh_session_free(s);
        return;
    }
    conn *c = conn_add(n, NULL, s);
    if (!c) {
        mesh_session_free(s);
        return;
    }
    mesh_session_set_cbs(s, &CONN_CBS, c);
    log_up(c);
}

static void on_failed(mesh_server *srv, int reason, const mesh_addr *peer_addr, void *ud)
{
    (void)srv;
    node *n = ud;
    char a[MESH_ADDR_STRLEN];
    mesh_log(&n->env, MESH_LOG_WARN, "handshake failed: in %s reason=%s (%s)",
             mesh_addr_format(peer_addr, a, sizeof a), mesh_errname(reason), mesh_strerror(reason));
}

/* ---- setup, shutdown ------------------------------------------------------------------------ */

/* keygen/pubkey print the identity module's own lines (they name the file and errno). */
static void plain_sink(void *ud, int level, mesh_time now, const char *msg)
{
    (void)ud;
    (void)level;
    (void)now;
    fprintf(stderr, "meshara-node: %s\n", msg);
}

/* The identity module has already logged what went wrong with the file (through the env);
 * add what to do about it. */
static int key_exit(int rc, const char *path)
{
    if (rc == MESH_ERR_NOT_FOUND)
        fprintf(stderr, "meshara-node: create one with: meshara-node keygen --key %s\n", path);
    else if (rc == MESH_ERR_EXISTS)
        fprintf(stderr, "meshara-node: keygen never replaces a key; pick another file name\n");
    else if (rc != MESH_ERR_PERM && rc != MESH_ERR_CORRUPT && rc != MESH_ERR_IO)
        fprintf(stderr, "meshara-node: key file %s: %s (%s)\n", path, mesh_errname(rc),
                mesh_strerror(rc));
    return rc == MESH_ERR_NOMEM || rc == MESH_ERR_CRYPTO ? NODE_EXIT_FAIL : NODE_EXIT_KEY;
}

static int cmd_key(const opts *o)
{
    mesh_real_config rc_cfg;
    mesh_real_config_default(&rc_cfg);
    rc_cfg.log_sink = plain_sink;
    rc_cfg.dns_hosts_only = 1;
    mesh_real *r = NULL;
    if (mesh_real_new(&r, NULL, &rc_cfg) != MESH_OK) {
        fprintf(stderr, "meshara-node: cannot start the event loop\n");
        return NODE_EXIT_FAIL;
    }
    mesh_env env = mesh_real_env(r);
    mesh_identity *id = NULL;
    int rc = o->cmd == CMD_KEYGEN ? mesh_identity_create_file(&id, o->key_path, &env)
                                  : mesh_identity_load_file(&id, o->key_path, &env);
    int ex = NODE_EXIT_OK;
    if (rc != MESH_OK) {
        ex = key_exit(rc, o->key_path);
    } else {
        char k[MESH_PUBKEY_HEX_LEN + 1];
        printf("%s\n", key_hex(mesh_identity_pubkey(id), k));
    }
    mesh_identity_free(id);
    mesh_real_free(r);
    return ex;
}

/* Let the driver flush and close the sockets we released gracefully: run until nothing but
 * our own poll timer and run_for's limit are left, at most NODE_SHUTDOWN_MAX_MS. */
static void poll_idle(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mesh_real *r = arg;
    if (event_base_get_num_events(mesh_real_base(r), EVENT_BASE_COUNT_ADDED) <= 2)
        mesh_real_stop(r);
}

static void flush_and_wait(mesh_real *r)
{
    struct timeval tv = {0, NODE_SHUTDOWN_POLL_MS * 1000};
    struct event *poll = event_new(mesh_real_base(r), -1, EV_PERSIST, poll_idle, r);
    if (poll && event_add(poll, &tv) == 0)
        (void)mesh_real_run_for(r, (mesh_time)NODE_SHUTDOWN_MAX_MS * MESH_NS_PER_MS);
    if (poll)
        event_free(poll);
}

/* Close every session in order and release everything but the driver and TLS context. */
static void node_close_all(node *n)
{
    if (n->nconns)
        mesh_log(&n->env, MESH_LOG_INFO, "closing %zu sessions", n->nconns);
    while (n->conns) {
        conn *c = n->conns;
        mesh_session_set_cbs(c->s, NULL, NULL);
        (void)mesh_session_close(c->s); /* Goodbye + close_notify + FIN; MESH_ERR_STATE: closing */
        conn_free(c);
    }
    for (size_t i = 0; i < n->npeers; i++) {
        if (n->peers[i].retry)
            n->env.ops->timer_free(n->env.obj, n->peers[i].retry);
        n->peers[i].retry = NULL;
    }
    if (n->deadline)
        n->env.ops->timer_free(n->env.obj, n->deadline);
    n->deadline = NULL;
    mesh_server_free(n->srv);
    n->srv = NULL;
}

static void on_send_deadline(mesh_timer *t, void *ud)
{
    (void)t;
    node *n = ud;
    if (n->result < 0) {
        fprintf(stderr, "meshara-node: send timed out after %" PRIu64 " ms\n", n->o->timeout_ms);
        n->result = NODE_EXIT_FAIL;
    }
    mesh_real_stop(n->r);
}

static int node_start(node *n)
{
    const opts *o = n->o;
    char a[MESH_ADDR_STRLEN], k[MESH_PUBKEY_HEX_LEN + 1];
    mesh_tls_cfg tcfg = {.sni = o->sni, .alpn = o->alpn[0] ? o->alpn : NULL};
    int rc = mesh_tls_ctx_new(&n->tls, &n->env, n->id, &tcfg);
    if (rc != MESH_OK) {
        fprintf(stderr, "meshara-node: TLS setup failed: %s\n", mesh_errname(rc));
        return NODE_EXIT_FAIL;
    }
    n->scfg.connect_timeout = o->connect_ms * MESH_NS_PER_MS;
    n->scfg.handshake_timeout = o->handshake_ms * MESH_NS_PER_MS;
    n->scfg.auth_timeout = o->auth_ms * MESH_NS_PER_MS;
    n->scfg.heartbeat_interval = o->heartbeat_ms * MESH_NS_PER_MS;
    n->scfg.http2 = o->http2; /* outbound sessions offer only "h2"; inbound follow the ALPN */
    if (o->has_listen) {
        mesh_server_cfg scfg = {.session = n->scfg, .max_handshakes = o->max_handshakes};
        mesh_server_cbs cbs = {.on_session = on_session, .on_failed = on_failed};
        mesh_addr bound;
        rc = mesh_server_new(&n->srv, &n->env, n->tls, &o->listen, &scfg, &cbs, n);
        if (rc == MESH_OK)
            rc = mesh_server_addr(n->srv, &bound);
        if (rc != MESH_OK) {
            fprintf(stderr, "meshara-node: cannot listen on %s: %s (%s)\n",
                    mesh_addr_format(&o->listen, a, sizeof a), mesh_errname(rc), mesh_strerror(rc));
            return NODE_EXIT_FAIL;
        }
        mesh_addr_format(&bound, a, sizeof a);
        mesh_log(&n->env, MESH_LOG_INFO, "listening on %s as %s%s", a,
                 key_hex(mesh_identity_pubkey(n->id), k), o->http2 ? " (HTTP/2 framing)" : "");
        printf("listening %s\npubkey %s\n", a, k);
        fflush(stdout);
    }
    n->npeers = o->cmd == CMD_SEND ? 1 : o->npeers;
    if (n->npeers && !(n->peers = calloc(n->npeers, sizeof *n->peers)))
        return NODE_EXIT_FAIL;
    for (size_t i = 0; i < n->npeers; i++) {
        peer *p = &n->peers[i];
        p->n = n;
        p->o = o->cmd == CMD_SEND ? o->to : o->peers[i];
        p->backoff_ms = o->reconnect_min_ms;
        if (!p->o.pinned)
            mesh_log(&n->env, MESH_LOG_WARN, "peer %s has no pinned key: any key is accepted",
                     mesh_addr_format(&p->o.addr, a, sizeof a));
        if (!(p->retry = n->env.ops->timer_new(n->env.obj, on_retry, p)))
            return NODE_EXIT_FAIL;
        dial(p);
    }
    if (o->cmd == CMD_SEND) {
        if (n->result >= 0)
            return n->result;
        if (!(n->deadline = n->env.ops->timer_new(n->env.obj, on_send_deadline, n)))
            return NODE_EXIT_FAIL;
        n->env.ops->timer_set(n->env.obj, n->deadline,
                              mesh_env_now(&n->env) + o->timeout_ms * MESH_NS_PER_MS);
    }
    return NODE_EXIT_OK;
}

static int cmd_node(const opts *o)
{
    node n = {.o = o, .result = -1};
    mesh_real_config rcfg;
    mesh_real_config_default(&rcfg);
    rcfg.log_level = o->log_level;
    rcfg.dns_hosts_only = 1; /* addresses are numeric: never ask a nameserver */
    if (o->connect_ms)
        rcfg.connect_timeout_ms = (uint32_t)o->connect_ms;
    if (mesh_real_new(&n.r, NULL, &rcfg) != MESH_OK) {
        fprintf(stderr, "meshara-node: cannot start the event loop\n");
        return NODE_EXIT_FAIL;
    }
    n.env = mesh_real_env(n.r);
    int ex;
    int rc = mesh_identity_load_file(&n.id, o->key_path, &n.env);
    if (rc != MESH_OK) {
        ex = key_exit(rc, o->key_path);
        goto out;
    }
    ex = node_start(&n);
    if (ex != NODE_EXIT_OK)
        goto out;
    if (o->cmd == CMD_RUN) {
        int sig = mesh_real_run_until_signal(n.r);
        if (sig < 0) {
            fprintf(stderr, "meshara-node: event loop failed: %s\n", mesh_errname(sig));
            ex = NODE_EXIT_FAIL;
        } else {
            mesh_log(&n.env, MESH_LOG_INFO, "shutting down (signal %d)", sig);
        }
    } else {
        if (mesh_real_run(n.r) != MESH_OK)
            n.result = NODE_EXIT_FAIL;
        ex = n.result < 0 ? NODE_EXIT_FAIL : n.result;
    }
out:
    node_close_all(&n);
    flush_and_wait(n.r);
    free(n.peers);
    mesh_tls_ctx_free(n.tls);
    mesh_identity_free(n.id);
    mesh_real_free(n.r);
    return ex;
}

int main(int argc, char **argv)
{
    opts o;
    int ex = parse_args(&o, argc, argv);
    if (ex >= 0)
        return ex;
    if (o.cmd == CMD_KEYGEN || o.cmd == CMD_PUBKEY)
        return cmd_key(&o);
    return cmd_node(&o);
}
