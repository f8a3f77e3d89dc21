/* meshara-node — one Meshara node on real sockets (the libevent driver, node/real/), driven
 * through the node API (meshara/meshara.h).
 *
 *   meshara-node keygen --key FILE      new identity (0600, never overwrites), prints its key
 *   meshara-node pubkey --key FILE      prints the public key of an existing key file
 *   meshara-node run --key FILE ...     a mesh node: joins, keeps its --peer list connected,
 *                                       answers queries, logs the messages it receives
 *   meshara-node send --key FILE ...    a short-lived node: joins, delivers one message (or a
 *                                       ping) to a public key, waits for the ack, exits
 *
 * `meshara-node --help` lists every option and the exit codes; usage() below is that text.
 *
 * Shape. Everything runs on one mesh_real loop holding one mesh_node. The node does the
 * sessions, pool, DHT, bootstrap, mDNS and peer store; this program only turns options into a
 * mesh_node_cfg, logs what the node reports, and supervises the --peer list: the node pins
 * manual peers and reconnects them at pool maintenance, but it tells the application nothing
 * about a connection that fails, so each manual peer not connected is probed here (connect +
 * PING) with a jittered exponential backoff, and a failure is logged with its reason.
 *
 * Log lines a script may rely on (stderr, after the driver's "[time] LEVEL " prefix):
 *   peer up: <in|out> key=HEX
 *   peer down: key=HEX reason=MESH_X
 *   connect failed: out ADDR key=HEX reason=MESH_X (...); retry in N ms      (--peer only)
 *   joined the mesh: N peers connected   /   join failed: MESH_X (...)
 *   message from HEX: len=N text="..."
 *   shutting down (signal N)
 * and on stdout, once the listener is bound: "listening ADDR" then "pubkey HEX".
 */
#include <event2/event.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/identity.h"
#include "core/server.h"
#include "core/session.h"
#include "core/tls.h"
#include "meshara/env.h"
#include "meshara/meshara.h"
#include "real/driver.h"
#include "real/mdns.h"
#include "real/peerstore.h"

/* Exit codes (also in usage()). */
enum node_exit {
    NODE_EXIT_OK = 0,
    NODE_EXIT_FAIL = 1,  /* runtime failure: cannot listen, join or deliver */
    NODE_EXIT_USAGE = 2, /* bad command line */
    NODE_EXIT_KEY = 3,   /* key file: exists (keygen), missing, bad permissions, corrupt */
};

enum node_limits {
    NODE_MAX_PEERS = MESH_NODE_MAX_MANUAL,        /* --peer options */
    NODE_MAX_BOOTSTRAP = MESH_NODE_MAX_BOOTSTRAP, /* --bootstrap options */
    NODE_MAX_ADVERTISE = MESH_NODE_MAX_ADVERTISED,
    NODE_MAX_POOL = 1 << 16,                  /* = MESH_POOL_MAX_PEERS */
    NODE_DEFAULT_RECONNECT_MIN_MS = 500,      /* first probe after a manual peer went down */
    NODE_DEFAULT_RECONNECT_MAX_MS = 30000,    /* backoff doubles up to this */
    NODE_RECONNECT_JITTER_PCT = 25,           /* ± on every retry delay */
    NODE_MAX_MS = 24 * 3600 * 1000,           /* largest time option */
    NODE_SHUTDOWN_MAX_MS = 3000,              /* flushing after a signal stops after this */
    NODE_SHUTDOWN_POLL_MS = 5,                /* how often shutdown checks for open sockets */
    NODE_DEFAULT_SEND_TIMEOUT_MS = 10000,     /* send: join + lookup + connect + auth + ack */
    NODE_MAX_MESSAGE = MESH_NODE_MAX_MESSAGE, /* --message bytes */
    NODE_LOG_TEXT_MAX = 200,                  /* message bytes shown in a log line */
    NODE_ALPN_BUF = MESH_TLS_ALPN_MAX * (MESH_TLS_ALPN_NAME_MAX + 1),
};

/* ---- options ------------------------------------------------------------------------------ */

enum node_cmd { CMD_KEYGEN = 1, CMD_PUBKEY = 2, CMD_RUN = 4, CMD_SEND = 8 };

typedef struct peer_opt {
    mesh_addr addr;
    uint8_t key[MESH_PUBKEY_LEN];
    int has_addr; /* --to may name a key alone */
} peer_opt;

typedef struct opts {
    int cmd;
    const char *cmd_name;
    const char *key_path;
    mesh_addr listen;
    int has_listen;
    peer_opt peers[NODE_MAX_PEERS];
    size_t npeers;
    peer_opt boot[NODE_MAX_BOOTSTRAP];
    size_t nboot;
    mesh_addr advertise[NODE_MAX_ADVERTISE];
    size_t nadvertise;
    int mdns;
    const char *peers_db;
    int http2;
    const char *sni;
    char alpn_buf[NODE_ALPN_BUF];
    const char *alpn[MESH_TLS_ALPN_MAX + 1]; /* NULL-terminated; alpn[0] NULL = default */
    uint64_t max_handshakes, pool_min, pool_max, maintain_ms;
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
        "  meshara-node run    --key FILE [--listen ADDR:PORT] [--advertise ADDR:PORT]...\n"
        "                      [--bootstrap ADDR:PORT#PUBKEYHEX]... [--peer "
        "ADDR:PORT#PUBKEYHEX]...\n"
        "                      [--mdns] [--peers-db FILE] [session options] [--max-handshakes N]\n"
        "                      [--pool-min N] [--pool-max N] [--maintain MS]\n"
        "                      [--reconnect-min MS] [--reconnect-max MS]\n"
        "  meshara-node send   --key FILE --to PUBKEYHEX|ADDR:PORT#PUBKEYHEX\n"
        "                      (--message TEXT | --ping) [--bootstrap ADDR:PORT#PUBKEYHEX]...\n"
        "                      [--mdns] [--listen ADDR:PORT] [session options] [--timeout MS]\n"
        "  meshara-node --help\n"
        "\n"
        "Commands:\n"
        "  keygen   create a new Ed25519 identity in FILE (mode 0600; an existing file is never\n"
        "           overwritten) and print its public key (64 hex chars) on stdout\n"
        "  pubkey   print the public key of the identity in FILE\n"
        "  run      run a mesh node until SIGINT/SIGTERM: listen, join through the peer store,\n"
        "           the --bootstrap nodes and the --peer list, keep the --peer list connected,\n"
        "           answer queries, deliver messages to and from public keys, log peers and\n"
        "           received messages to stderr. On a signal, stop, flush, exit 0.\n"
        "           Prints \"listening ADDR:PORT\" and \"pubkey HEX\" on stdout once bound\n"
        "           (port 0 picks a free port: read the bound one there).\n"
        "  send     a short-lived node: join (--bootstrap, --mdns), look --to's key up in the\n"
        "           mesh (or connect to its address when --to gives one), deliver one message\n"
        "           and wait for the acknowledgement (prints \"delivered to HEX\"), or with\n"
        "           --ping send one ping (prints \"pong from HEX rtt_us=N\"). The receiving\n"
        "           node (run) logs: message from HEX: len=N text=\"...\"\n"
        "\n"
        "Options:\n"
        "  --key FILE             identity key file (required by every command)\n"
        "  --listen ADDR:PORT     address to accept sessions on (127.0.0.1:0, [::1]:7000);\n"
        "                         send: default 0.0.0.0:0\n"
        "  --advertise ADDR:PORT  address put in this node's signed record, what others\n"
        "                         connect to (repeatable, at most 8; default: the bound\n"
        "                         --listen address unless it is 0.0.0.0; send: none)\n"
        "  --bootstrap ADDR:PORT#KEY  a bootstrap node and its public key (64 hex chars),\n"
        "                         pinned: any other key is refused with MESH_ERR_KEY_MISMATCH\n"
        "                         (repeatable, at most 64; contacted in parallel to join)\n"
        "  --peer ADDR:PORT#KEY   run: a manual peer (key pinned as for --bootstrap) the node\n"
        "                         joins through when nothing else answers and keeps connected\n"
        "                         (repeatable, at most 64)\n"
        "  --mdns                 publish _meshara._tcp through avahi-daemon and connect to the\n"
        "                         nodes found; without a daemon: a warning, then no mDNS\n"
        "  --peers-db FILE        run: SQLite peer store (WAL): the records of peers seen, so a\n"
        "                         restart joins without bootstrap nodes\n"
        "  --to KEY|ADDR:PORT#KEY send: the receiver's public key (looked up in the mesh), or\n"
        "                         its address too (connected to directly, key pinned)\n"
        "  --message TEXT         send: the message (at most 1 MiB)\n"
        "  --ping                 send: a ping instead of a message\n"
        "  --timeout MS           send: give up after MS (default 10000)\n"
        "  --max-handshakes N     run: sessions between accept and authenticated at once\n"
        "                         (default 64, 8 per address; the oldest idle one makes room)\n"
        "  --pool-min N           run: pool maintenance tops up to N peers from the DHT (8)\n"
        "  --pool-max N           run: peers connected or connecting at most (64); the least\n"
        "                         recently used unpinned one is evicted to make room\n"
        "  --maintain MS          run: pool maintenance period (default 30000)\n"
        "  --reconnect-min MS     run: first probe of a --peer that went down (500)\n"
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
        "  1  runtime failure (cannot listen or open --peers-db; send: key not found, peer\n"
        "     unreachable, refused, wrong key, closed or timed out before acknowledging)\n"
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

/* "ADDR:PORT#PUBKEYHEX" (port > 0), or with key_alone also a bare "PUBKEYHEX".
 * MESH_OK; MESH_ERR_MALFORMED (bad key); MESH_ERR_INVAL (bad address, or no key). */
static int parse_peer(const char *text, int key_alone, peer_opt *p)
{
    char buf[MESH_ADDR_STRLEN + 1 + MESH_PUBKEY_HEX_LEN + 1];
    if (strlen(text) >= sizeof buf)
        return MESH_ERR_INVAL;
    strcpy(buf, text);
    memset(p, 0, sizeof *p);
    if (key_alone && !strchr(buf, ':') && !strchr(buf, '#'))
        return mesh_hex_decode(buf, p->key, MESH_PUBKEY_LEN) == MESH_OK ? MESH_OK
                                                                        : MESH_ERR_MALFORMED;
    char *hash = strchr(buf, '#');
    if (!hash)
        return MESH_ERR_INVAL;
    *hash = '\0';
    if (mesh_addr_parse(&p->addr, buf) != MESH_OK || p->addr.port == 0)
        return MESH_ERR_INVAL;
    if (mesh_hex_decode(hash + 1, p->key, MESH_PUBKEY_LEN) != MESH_OK)
        return MESH_ERR_MALFORMED;
    p->has_addr = 1;
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
    OPT_ADVERTISE,
    OPT_BOOTSTRAP,
    OPT_PEER,
    OPT_MDNS,
    OPT_PEERS_DB,
    OPT_HTTP2,
    OPT_SNI,
    OPT_ALPN,
    OPT_MAX_HANDSHAKES,
    OPT_POOL_MIN,
    OPT_POOL_MAX,
    OPT_MAINTAIN,
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
    OPT_ROW(OPT_LISTEN) = SESSION_CMDS,
    OPT_ROW(OPT_ADVERTISE) = SESSION_CMDS,
    OPT_ROW(OPT_BOOTSTRAP) = SESSION_CMDS,
    OPT_ROW(OPT_PEER) = CMD_RUN,
    OPT_ROW(OPT_MDNS) = SESSION_CMDS,
    OPT_ROW(OPT_PEERS_DB) = CMD_RUN,
    OPT_ROW(OPT_HTTP2) = SESSION_CMDS,
    OPT_ROW(OPT_SNI) = SESSION_CMDS,
    OPT_ROW(OPT_ALPN) = SESSION_CMDS,
    OPT_ROW(OPT_MAX_HANDSHAKES) = CMD_RUN,
    OPT_ROW(OPT_POOL_MIN) = CMD_RUN,
    OPT_ROW(OPT_POOL_MAX) = CMD_RUN,
    OPT_ROW(OPT_MAINTAIN) = CMD_RUN,
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
    {"advertise", required_argument, NULL, OPT_ADVERTISE},
    {"bootstrap", required_argument, NULL, OPT_BOOTSTRAP},
    {"peer", required_argument, NULL, OPT_PEER},
    {"mdns", no_argument, NULL, OPT_MDNS},
    {"peers-db", required_argument, NULL, OPT_PEERS_DB},
    {"http2", no_argument, NULL, OPT_HTTP2},
    {"sni", required_argument, NULL, OPT_SNI},
    {"alpn", required_argument, NULL, OPT_ALPN},
    {"max-handshakes", required_argument, NULL, OPT_MAX_HANDSHAKES},
    {"pool-min", required_argument, NULL, OPT_POOL_MIN},
    {"pool-max", required_argument, NULL, OPT_POOL_MAX},
    {"maintain", required_argument, NULL, OPT_MAINTAIN},
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

/* A count option: 1 .. hi. */
static int count_opt(const char *name, const char *arg, uint64_t hi, uint64_t *out)
{
    if (parse_num(arg, 1, hi, out) != MESH_OK)
        return usage_error("--%s: expected 1..%" PRIu64 ", got '%s'", name, hi, arg);
    return NODE_EXIT_OK;
}

/* --peer, --bootstrap, --to; NODE_EXIT_OK or NODE_EXIT_USAGE. */
static int peer_arg(int id, const char *name, const char *arg, peer_opt *p)
{
    int rc = parse_peer(arg, id == OPT_TO, p);
    if (rc == MESH_ERR_MALFORMED)
        return usage_error("--%s '%s': the key must be %d hex characters", name, arg,
                           MESH_PUBKEY_HEX_LEN);
    if (rc != MESH_OK)
        return usage_error("--%s: expected %sADDR:PORT#PUBKEYHEX with a port > 0, got '%s'", name,
                           id == OPT_TO ? "PUBKEYHEX or " : "", arg);
    return NODE_EXIT_OK;
}

/* One option; NODE_EXIT_OK or NODE_EXIT_USAGE (message printed). */
static int take_opt(opts *o, int id, const char *name, const char *arg)
{
    switch (id) {
    case OPT_KEY:
        if (!*arg)
            return usage_error("--key: empty file name");
        o->key_path = arg;
        return NODE_EXIT_OK;
    case OPT_LISTEN:
    case OPT_ADVERTISE: {
        mesh_addr a;
        if (mesh_addr_parse(&a, arg) != MESH_OK || (id == OPT_ADVERTISE && a.port == 0))
            return usage_error("--%s: expected ADDR:PORT (127.0.0.1:7000, [::1]:%s), got '%s'",
                               name, id == OPT_LISTEN ? "0" : "7000", arg);
        if (id == OPT_LISTEN) {
            o->listen = a;
            o->has_listen = 1;
        } else {
            if (o->nadvertise == NODE_MAX_ADVERTISE)
                return usage_error("too many --advertise options (at most %d)", NODE_MAX_ADVERTISE);
            o->advertise[o->nadvertise++] = a;
        }
        return NODE_EXIT_OK;
    }
    case OPT_PEER:
        if (o->npeers == NODE_MAX_PEERS)
            return usage_error("too many --peer options (at most %d)", NODE_MAX_PEERS);
        if (peer_arg(id, name, arg, &o->peers[o->npeers]) != NODE_EXIT_OK)
            return NODE_EXIT_USAGE;
        o->npeers++;
        return NODE_EXIT_OK;
    case OPT_BOOTSTRAP:
        if (o->nboot == NODE_MAX_BOOTSTRAP)
            return usage_error("too many --bootstrap options (at most %d)", NODE_MAX_BOOTSTRAP);
        if (peer_arg(id, name, arg, &o->boot[o->nboot]) != NODE_EXIT_OK)
            return NODE_EXIT_USAGE;
        o->nboot++;
        return NODE_EXIT_OK;
    case OPT_TO:
        if (o->has_to)
            return usage_error("--to given twice");
        if (peer_arg(id, name, arg, &o->to) != NODE_EXIT_OK)
            return NODE_EXIT_USAGE;
        o->has_to = 1;
        return NODE_EXIT_OK;
    case OPT_MDNS:
        o->mdns = 1;
        return NODE_EXIT_OK;
    case OPT_PEERS_DB:
        if (!*arg)
            return usage_error("--peers-db: empty file name");
        o->peers_db = arg;
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
        return count_opt(name, arg, MESH_SERVER_MAX_HANDSHAKES, &o->max_handshakes);
    case OPT_POOL_MIN:
        return count_opt(name, arg, NODE_MAX_POOL, &o->pool_min);
    case OPT_POOL_MAX:
        return count_opt(name, arg, NODE_MAX_POOL, &o->pool_max);
    case OPT_MAINTAIN:
        return ms_opt(name, arg, &o->maintain_ms);
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
    /* a node with neither a chosen address nor a way to find or be found is a typo */
    if (o->cmd == CMD_RUN && !o->has_listen && !o->npeers && !o->nboot && !o->mdns && !o->peers_db)
        return usage_error("'run' needs --listen ADDR:PORT, or one of --peer, --bootstrap, "
                           "--mdns, --peers-db");
    if (o->reconnect_min_ms > o->reconnect_max_ms)
        return usage_error("--reconnect-min (%" PRIu64 ") is above --reconnect-max (%" PRIu64 ")",
                           o->reconnect_min_ms, o->reconnect_max_ms);
    if (o->pool_min && o->pool_max && o->pool_min > o->pool_max)
        return usage_error("--pool-min (%" PRIu64 ") is above --pool-max (%" PRIu64 ")",
                           o->pool_min, o->pool_max);
    if (o->cmd == CMD_SEND) {
        if (!o->has_to)
            return usage_error("'send' needs --to PUBKEYHEX or ADDR:PORT#PUBKEYHEX");
        if (!o->message == !o->ping)
            return usage_error("'send' needs exactly one of --message TEXT or --ping");
    }
    if (!o->has_listen)
        (void)mesh_addr_parse(&o->listen, "0.0.0.0:0");
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

typedef struct cli cli;

/* A --peer: the node pins it; this program probes it while it is not connected, so a
 * failure is logged with its reason and retried with backoff. */
typedef struct manual {
    cli *c;
    mesh_node_peer p;
    mesh_timer *retry;
    uint64_t backoff_ms; /* next retry delay */
    int probing;         /* a probe (connect + PING) is in flight */
} manual;

struct cli {
    const opts *o;
    mesh_real *r;
    mesh_env env;
    mesh_identity *id;
    mesh_peerstore *store;
    mesh_node *node;
    manual *peers;
    size_t npeers;
    int result;           /* send: exit code once finished, -1 while running */
    int op_begun;         /* send: the message or ping was handed to the node */
    mesh_timer *deadline; /* send: --timeout */
};

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

static manual *manual_of(cli *c, const uint8_t *key)
{
    for (size_t i = 0; i < c->npeers; i++)
        if (memcmp(c->peers[i].p.key, key, MESH_PUBKEY_LEN) == 0)
            return &c->peers[i];
    return NULL;
}

/* Arm m's retry timer with the current backoff (jittered) and double the backoff for next
 * time. Returns the delay chosen, in ms. */
static uint64_t schedule_retry(manual *m)
{
    cli *c = m->c;
    uint64_t span = m->backoff_ms * NODE_RECONNECT_JITTER_PCT / 100;
    uint64_t ms = m->backoff_ms - span + mesh_env_random_below(&c->env, 2 * span + 1);
    c->env.ops->timer_set(c->env.obj, m->retry, mesh_env_now(&c->env) + ms * MESH_NS_PER_MS);
    m->backoff_ms =
        m->backoff_ms * 2 > c->o->reconnect_max_ms ? c->o->reconnect_max_ms : m->backoff_ms * 2;
    return ms;
}

static void probe_done(mesh_node *n, const mesh_node_answer *a, void *ud)
{
    (void)n;
    manual *m = ud;
    cli *c = m->c;
    char at[MESH_ADDR_STRLEN], k[MESH_PUBKEY_HEX_LEN + 1];
    m->probing = 0;
    if (a->status == MESH_OK) {
        m->backoff_ms = c->o->reconnect_min_ms;
        return;
    }
    mesh_log(&c->env, MESH_LOG_WARN,
             "connect failed: out %s key=%s reason=%s (%s); retry in %" PRIu64 " ms",
             mesh_addr_format(&m->p.addr, at, sizeof at), key_hex(m->p.key, k),
             mesh_errname(a->status), mesh_strerror(a->status), schedule_retry(m));
}

/* Connect to a manual peer (pinned) and ping it: the answer, or the failure, tells. */
static void probe(manual *m)
{
    cli *c = m->c;
    mesh_node_peer_stats ps;
    if (m->probing || (mesh_node_get_peer_stats(c->node, m->p.key, &ps) == MESH_OK && ps.connected))
        return;
    int rc = mesh_node_connect(c->node, &m->p.addr, m->p.key, 1);
    if (rc == MESH_OK)
        rc = mesh_node_query(c->node, m->p.key, MESH_QUERY_PING, NULL, 0, 0, probe_done, m);
    if (rc == MESH_OK) {
        m->probing = 1;
        return;
    }
    mesh_node_answer a = {.status = rc};
    probe_done(c->node, &a, m);
}

static void on_retry(mesh_timer *t, void *ud)
{
    (void)t;
    probe(ud);
}

/* ---- node callbacks ------------------------------------------------------------------------ */

static void on_message(mesh_node *n, const uint8_t from[MESH_NODE_KEY_BYTES], const uint8_t *data,
                       size_t len, void *ud)
{
    (void)n;
    cli *c = ud;
    char k[MESH_PUBKEY_HEX_LEN + 1], text[4 * NODE_LOG_TEXT_MAX + 1];
    mesh_log(&c->env, MESH_LOG_INFO, "message from %s: len=%zu text=\"%s\"%s", key_hex(from, k),
             len, printable(data, len, text), len > NODE_LOG_TEXT_MAX ? " (cut)" : "");
}

static void on_peer(mesh_node *n, const uint8_t key[MESH_NODE_KEY_BYTES], int connected, int reason,
                    void *ud)
{
    cli *c = ud;
    char k[MESH_PUBKEY_HEX_LEN + 1];
    manual *m = manual_of(c, key);
    key_hex(key, k);
    if (connected) {
        mesh_node_peer_stats ps;
        int out = mesh_node_get_peer_stats(n, key, &ps) == MESH_OK && ps.outbound;
        mesh_log(&c->env, MESH_LOG_INFO, "peer up: %s key=%s%s", out ? "out" : "in", k,
                 m ? " (manual)" : "");
        if (m)
            m->backoff_ms = c->o->reconnect_min_ms;
        return;
    }
    char retry[48] = "";
    if (m && c->o->cmd == CMD_RUN)
        snprintf(retry, sizeof retry, "; retry in %" PRIu64 " ms", schedule_retry(m));
    mesh_log(&c->env, reason == MESH_OK ? MESH_LOG_INFO : MESH_LOG_WARN,
             "peer down: key=%s reason=%s%s", k, mesh_errname(reason), retry);
}

static void finish(cli *c, int result)
{
    if (c->result < 0)
        c->result = result;
    mesh_real_stop(c->r);
}

static void send_failed(cli *c, const char *what, int rc)
{
    char k[MESH_PUBKEY_HEX_LEN + 1];
    fprintf(stderr, "meshara-node: %s %s failed: %s (%s)\n", what, key_hex(c->o->to.key, k),
            mesh_errname(rc), mesh_strerror(rc));
    finish(c, NODE_EXIT_FAIL);
}

static void sent(mesh_node *n, int result, void *ud)
{
    (void)n;
    cli *c = ud;
    char k[MESH_PUBKEY_HEX_LEN + 1];
    if (result != MESH_OK) {
        send_failed(c, "send to", result);
        return;
    }
    printf("delivered to %s\n", key_hex(c->o->to.key, k));
    fflush(stdout);
    finish(c, NODE_EXIT_OK);
}

static void ponged(mesh_node *n, const mesh_node_answer *a, void *ud)
{
    (void)n;
    cli *c = ud;
    char k[MESH_PUBKEY_HEX_LEN + 1];
    if (a->status != MESH_OK) {
        send_failed(c, "ping of", a->status);
        return;
    }
    mesh_time rtt = a->rtt ? a->rtt : 1;
    printf("pong from %s rtt_us=%" PRIu64 "\n", key_hex(c->o->to.key, k),
           (uint64_t)((rtt + MESH_NS_PER_US - 1) / MESH_NS_PER_US));
    fflush(stdout);
    finish(c, NODE_EXIT_OK);
}

/* send: hand the message or ping to the node (once). */
static void send_begin(cli *c)
{
    const opts *o = c->o;
    if (c->op_begun)
        return;
    c->op_begun = 1;
    int rc;
    if (o->ping)
        rc = mesh_node_query(c->node, o->to.key, MESH_QUERY_PING, NULL, 0, 0, ponged, c);
    else
        rc = mesh_node_send(c->node, o->to.key, (const uint8_t *)o->message, strlen(o->message),
                            sent, c);
    if (rc != MESH_OK)
        send_failed(c, o->ping ? "ping of" : "send to", rc);
}

static void on_joined(mesh_node *n, int status, void *ud)
{
    cli *c = ud;
    mesh_node_stats st;
    mesh_node_get_stats(n, &st);
    if (status == MESH_OK)
        mesh_log(&c->env, MESH_LOG_INFO, "joined the mesh: %zu peers connected, %zu known",
                 st.connected, st.dht_entries);
    else
        mesh_log(&c->env, MESH_LOG_WARN, "join failed: %s (%s)", mesh_errname(status),
                 mesh_strerror(status));
    if (c->o->cmd != CMD_SEND || c->o->to.has_addr)
        return;
    /* A key alone is looked up in the DHT, which needs someone to ask: with mDNS only, the
     * join has nothing to do, so wait for the first peer found (on_peer_send below). */
    if (st.connected || !c->o->mdns)
        send_begin(c);
}

static void on_peer_send(mesh_node *n, const uint8_t key[MESH_NODE_KEY_BYTES], int connected,
                         int reason, void *ud)
{
    cli *c = ud;
    on_peer(n, key, connected, reason, ud);
    mesh_node_stats st;
    mesh_node_get_stats(n, &st);
    if (connected && st.joined && !c->o->to.has_addr)
        send_begin(c);
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

static void on_send_deadline(mesh_timer *t, void *ud)
{
    (void)t;
    cli *c = ud;
    if (c->result < 0)
        fprintf(stderr, "meshara-node: send timed out after %" PRIu64 " ms (%s)\n",
                c->o->timeout_ms, c->op_begun ? "no answer" : "still joining");
    finish(c, NODE_EXIT_FAIL);
}

/* The node's configuration from the options. */
static void node_cfg(const cli *c, mesh_node_cfg *cfg)
{
    const opts *o = c->o;
    memset(cfg, 0, sizeof *cfg);
    cfg->identity = c->id;
    cfg->listen = o->listen;
    memcpy(cfg->advertised, o->advertise, o->nadvertise * sizeof o->advertise[0]);
    cfg->n_advertised = o->nadvertise;
    /* a send node is gone in seconds: an address in its record would only mislead */
    cfg->advertise_none = o->cmd == CMD_SEND && !o->nadvertise;
    /* must grow across restarts so peers replace the record they hold */
    cfg->record_seq = (uint64_t)time(NULL);
    cfg->sni = o->sni;
    cfg->alpn = o->alpn[0] ? o->alpn : NULL;
    cfg->http2 = o->http2;
    cfg->connect_timeout = o->connect_ms * MESH_NS_PER_MS;
    cfg->handshake_timeout = o->handshake_ms * MESH_NS_PER_MS;
    cfg->auth_timeout = o->auth_ms * MESH_NS_PER_MS;
    cfg->heartbeat_interval = o->heartbeat_ms * MESH_NS_PER_MS;
    cfg->max_handshakes = o->max_handshakes;
    cfg->pool_max = o->pool_max;
    cfg->pool_min = o->pool_min;
    if (o->pool_max && !o->pool_min && o->pool_max < MESH_NODE_DEFAULT_POOL_MIN)
        cfg->pool_min = o->pool_max;
    cfg->maintain_interval = o->maintain_ms * MESH_NS_PER_MS;
    if (o->cmd == CMD_SEND) {
        cfg->send_timeout = o->timeout_ms * MESH_NS_PER_MS;
        cfg->query_timeout = o->timeout_ms * MESH_NS_PER_MS;
        cfg->bootstrap_timeout = o->timeout_ms * MESH_NS_PER_MS;
    }
    for (size_t i = 0; i < o->nboot; i++) {
        cfg->bootstrap[i].addr = o->boot[i].addr;
        memcpy(cfg->bootstrap[i].key, o->boot[i].key, MESH_PUBKEY_LEN);
    }
    cfg->n_bootstrap = o->nboot;
    for (size_t i = 0; i < c->npeers; i++)
        cfg->manual[i] = c->peers[i].p;
    cfg->n_manual = c->npeers;
    cfg->store = c->store ? mesh_peerstore_store(c->store) : (mesh_peer_store){0};
    cfg->mdns = o->mdns;
}

/* Open what the node needs (mDNS, peer store, manual peers), make and start it. */
static int node_start(cli *c)
{
    const opts *o = c->o;
    char a[MESH_ADDR_STRLEN], k[MESH_PUBKEY_HEX_LEN + 1];
    int rc;
    if (o->mdns && (rc = mesh_real_mdns_attach(c->r)) != MESH_OK)
        mesh_log(&c->env, MESH_LOG_WARN, "mdns: %s (%s): running without mDNS", mesh_errname(rc),
                 mesh_strerror(rc)); /* the node then logs and ignores cfg.mdns */
    if (o->peers_db &&
        (rc = mesh_peerstore_open(&c->store, o->peers_db, &c->env, NULL)) != MESH_OK) {
        fprintf(stderr, "meshara-node: cannot open --peers-db %s: %s (%s)\n", o->peers_db,
                mesh_errname(rc), mesh_strerror(rc));
        return NODE_EXIT_FAIL;
    }
    if (o->cmd == CMD_SEND &&
        memcmp(o->to.key, mesh_identity_pubkey(c->id), MESH_PUBKEY_LEN) == 0) {
        fprintf(stderr, "meshara-node: --to is this node's own key (%s)\n", o->key_path);
        return NODE_EXIT_FAIL;
    }
    /* send --to ADDR:PORT#KEY: that peer is connected to directly, like a manual peer */
    c->npeers = o->cmd == CMD_SEND ? (size_t)o->to.has_addr : o->npeers;
    if (c->npeers && !(c->peers = calloc(c->npeers, sizeof *c->peers)))
        return NODE_EXIT_FAIL;
    for (size_t i = 0; i < c->npeers; i++) {
        manual *m = &c->peers[i];
        const peer_opt *po = o->cmd == CMD_SEND ? &o->to : &o->peers[i];
        m->c = c;
        m->p.addr = po->addr;
        memcpy(m->p.key, po->key, MESH_PUBKEY_LEN);
        m->backoff_ms = o->reconnect_min_ms;
        if (!(m->retry = c->env.ops->timer_new(c->env.obj, on_retry, m)))
            return NODE_EXIT_FAIL;
    }
    mesh_node_cfg cfg;
    node_cfg(c, &cfg);
    mesh_node_cbs cbs = {.on_message = on_message,
                         .on_peer = o->cmd == CMD_SEND ? on_peer_send : on_peer,
                         .on_joined = on_joined};
    rc = mesh_node_new(&c->node, &c->env, &cfg, &cbs, c);
    if (rc != MESH_OK) {
        fprintf(stderr, "meshara-node: cannot make the node: %s (%s)\n", mesh_errname(rc),
                mesh_strerror(rc));
        return NODE_EXIT_FAIL;
    }
    mesh_addr bound;
    rc = mesh_node_start(c->node);
    if (rc == MESH_OK)
        rc = mesh_node_addr(c->node, &bound);
    if (rc != MESH_OK) {
        fprintf(stderr, "meshara-node: cannot listen on %s: %s (%s)\n",
                mesh_addr_format(&o->listen, a, sizeof a), mesh_errname(rc), mesh_strerror(rc));
        return NODE_EXIT_FAIL;
    }
    mesh_addr_format(&bound, a, sizeof a);
    key_hex(mesh_node_key(c->node), k);
    mesh_log(&c->env, MESH_LOG_INFO, "listening on %s as %s%s%s", a, k,
             o->http2 ? " (HTTP/2 framing)" : "", c->store ? " (peer store open)" : "");
    if (o->cmd == CMD_RUN) {
        printf("listening %s\npubkey %s\n", a, k);
        fflush(stdout);
    }
    for (size_t i = 0; i < c->npeers; i++)
        if (o->cmd == CMD_RUN)
            probe(&c->peers[i]);
    if (o->cmd == CMD_SEND) {
        if (o->to.has_addr) {
            /* connect first: the send then waits on that very connection, pinned */
            rc = mesh_node_connect(c->node, &o->to.addr, o->to.key, 1);
            if (rc != MESH_OK) {
                send_failed(c, "connect to", rc);
                return NODE_EXIT_FAIL;
            }
            send_begin(c);
            if (c->result >= 0)
                return c->result;
        }
        if (!(c->deadline = c->env.ops->timer_new(c->env.obj, on_send_deadline, c)))
            return NODE_EXIT_FAIL;
        c->env.ops->timer_set(c->env.obj, c->deadline,
                              mesh_env_now(&c->env) + o->timeout_ms * MESH_NS_PER_MS);
    }
    return NODE_EXIT_OK;
}

/* Free the node (its sessions go with it), then everything else but the driver. */
static void node_close_all(cli *c)
{
    if (c->node) {
        mesh_node_stats st;
        mesh_node_get_stats(c->node, &st);
        if (st.sessions)
            mesh_log(&c->env, MESH_LOG_INFO, "closing %zu sessions", st.sessions);
        /* Goodbye, close_notify and FIN on every session, then let them finish */
        if (mesh_node_close(c->node) == MESH_OK)
            for (int i = 0; i < NODE_SHUTDOWN_MAX_MS / NODE_SHUTDOWN_POLL_MS && st.sessions; i++) {
                (void)mesh_real_run_for(c->r, (mesh_time)NODE_SHUTDOWN_POLL_MS * MESH_NS_PER_MS);
                mesh_node_get_stats(c->node, &st);
            }
    }
    mesh_node_free(c->node);
    c->node = NULL;
    for (size_t i = 0; i < c->npeers; i++)
        if (c->peers[i].retry)
            c->env.ops->timer_free(c->env.obj, c->peers[i].retry);
    free(c->peers);
    c->peers = NULL;
    c->npeers = 0;
    if (c->deadline)
        c->env.ops->timer_free(c->env.obj, c->deadline);
    c->deadline = NULL;
    mesh_peerstore_close(c->store);
    c->store = NULL;
}

static int cmd_node(const opts *o)
{
    cli c = {.o = o, .result = -1};
    mesh_real_config rcfg;
    mesh_real_config_default(&rcfg);
    rcfg.log_level = o->log_level;
    rcfg.dns_hosts_only = 1; /* addresses are numeric: never ask a nameserver */
    if (o->connect_ms)
        rcfg.connect_timeout_ms = (uint32_t)o->connect_ms;
    if (mesh_real_new(&c.r, NULL, &rcfg) != MESH_OK) {
        fprintf(stderr, "meshara-node: cannot start the event loop\n");
        return NODE_EXIT_FAIL;
    }
    c.env = mesh_real_env(c.r);
    int ex;
    int rc = mesh_identity_load_file(&c.id, o->key_path, &c.env);
    if (rc != MESH_OK) {
        ex = key_exit(rc, o->key_path);
        goto out;
    }
    ex = node_start(&c);
    if (ex != NODE_EXIT_OK)
        goto out;
    if (o->cmd == CMD_RUN) {
        int sig = mesh_real_run_until_signal(c.r);
        if (sig < 0) {
            fprintf(stderr, "meshara-node: event loop failed: %s\n", mesh_errname(sig));
            ex = NODE_EXIT_FAIL;
        } else {
            mesh_log(&c.env, MESH_LOG_INFO, "shutting down (signal %d)", sig);
        }
    } else {
        if (mesh_real_run(c.r) != MESH_OK)
            c.result = NODE_EXIT_FAIL;
        ex = c.result < 0 ? NODE_EXIT_FAIL : c.result;
    }
out:
    node_close_all(&c);
    flush_and_wait(c.r);
    mesh_identity_free(c.id);
    mesh_real_free(c.r);
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
