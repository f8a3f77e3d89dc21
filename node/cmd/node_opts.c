/* node_opts.c — meshara-node's command line. See node_opts.h. */
#include "node_opts.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

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

/* "[HOST=]ADDR:PORT#PUBKEYHEX" (port > 0), or with key_alone also a bare "PUBKEYHEX".
 * MESH_OK; MESH_ERR_MALFORMED (bad key); MESH_ERR_BAD_HOST_NAME (HOST is no DNS name);
 * MESH_ERR_INVAL (bad address, or no key). */
static int parse_peer(const char *text, int key_alone, peer_opt *p)
{
    char buf[MESH_ADDR_STRLEN + 1 + MESH_NODE_KEY_HEX_LEN + 1];
    memset(p, 0, sizeof *p);
    const char *eq = strchr(text, '=');
    if (eq) { /* a host name has no '=', nor has an address or a key */
        size_t len = (size_t)(eq - text);
        if (len > MESH_HOST_NAME_MAX)
            return MESH_ERR_BAD_HOST_NAME;
        memcpy(p->host_name, text, len);
        p->host_name[len] = '\0';
        if (mesh_host_name_check(p->host_name) != MESH_OK)
            return MESH_ERR_BAD_HOST_NAME;
        text = eq + 1;
        key_alone = 0; /* a name is for dialling an address: the address must follow */
    }
    if (strlen(text) >= sizeof buf)
        return MESH_ERR_INVAL;
    strcpy(buf, text);
    if (key_alone && !strchr(buf, ':') && !strchr(buf, '#'))
        return mesh_hex_decode(buf, p->key, MESH_NODE_KEY_BYTES) == MESH_OK ? MESH_OK
                                                                            : MESH_ERR_MALFORMED;
    char *hash = strchr(buf, '#');
    if (!hash)
        return MESH_ERR_INVAL;
    *hash = '\0';
    if (mesh_addr_parse(&p->addr, buf) != MESH_OK || p->addr.port == 0)
        return MESH_ERR_INVAL;
    if (mesh_hex_decode(hash + 1, p->key, MESH_NODE_KEY_BYTES) != MESH_OK)
        return MESH_ERR_MALFORMED;
    p->has_addr = 1;
    return MESH_OK;
}

static int parse_alpn(node_opts *o, const char *list)
{
    size_t len = strlen(list);
    if (len == 0 || len >= sizeof o->alpn_buf)
        return MESH_ERR_INVAL;
    memcpy(o->alpn_buf, list, len + 1);
    size_t n = 0;
    for (char *save = NULL, *tok = strtok_r(o->alpn_buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (n == MESH_NODE_MAX_ALPN || strlen(tok) > MESH_NODE_MAX_ALPN_NAME)
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
    OPT_RELAY,
    OPT_RELAY_SERVICE,
    OPT_MDNS,
    OPT_NO_PORT_MAPPING,
    OPT_PEERS_DB,
    OPT_HTTP2,
    OPT_SNI,
    OPT_HOST_NAME,
    OPT_ALPN,
    OPT_PROFILE,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_CERT_TYPE,
    OPT_WEB_UPSTREAM,
    OPT_WEB_UPSTREAM_H2,
    OPT_WEB_ROOT,
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
    OPT_LINGER,
    OPT_TURN,
    OPT_TURN_USER,
    OPT_TURN_PASS_FILE,
    OPT_STUN,
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
    OPT_ROW(OPT_RELAY) = SESSION_CMDS,
    OPT_ROW(OPT_RELAY_SERVICE) = CMD_RUN,
    OPT_ROW(OPT_MDNS) = SESSION_CMDS,
    OPT_ROW(OPT_NO_PORT_MAPPING) = CMD_RUN,
    OPT_ROW(OPT_PEERS_DB) = CMD_RUN,
    OPT_ROW(OPT_HTTP2) = SESSION_CMDS,
    OPT_ROW(OPT_SNI) = SESSION_CMDS,
    OPT_ROW(OPT_HOST_NAME) = SESSION_CMDS,
    OPT_ROW(OPT_ALPN) = SESSION_CMDS,
    OPT_ROW(OPT_PROFILE) = SESSION_CMDS,
    OPT_ROW(OPT_TLS_CERT) = SESSION_CMDS,
    OPT_ROW(OPT_TLS_KEY) = SESSION_CMDS,
    OPT_ROW(OPT_CERT_TYPE) = SESSION_CMDS,
    OPT_ROW(OPT_WEB_UPSTREAM) = CMD_RUN,
    OPT_ROW(OPT_WEB_UPSTREAM_H2) = CMD_RUN,
    OPT_ROW(OPT_WEB_ROOT) = CMD_RUN,
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
    OPT_ROW(OPT_LINGER) = CMD_SEND,
    OPT_ROW(OPT_TURN) = SESSION_CMDS,
    OPT_ROW(OPT_TURN_USER) = SESSION_CMDS,
    OPT_ROW(OPT_TURN_PASS_FILE) = SESSION_CMDS,
    OPT_ROW(OPT_STUN) = CMD_RUN,
    OPT_ROW(OPT_HELP) = ALL_CMDS,
};

static const struct option LONG_OPTS[] = {
    {"key", required_argument, NULL, OPT_KEY},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"advertise", required_argument, NULL, OPT_ADVERTISE},
    {"bootstrap", required_argument, NULL, OPT_BOOTSTRAP},
    {"peer", required_argument, NULL, OPT_PEER},
    {"relay", required_argument, NULL, OPT_RELAY},
    {"relay-service", no_argument, NULL, OPT_RELAY_SERVICE},
    {"mdns", no_argument, NULL, OPT_MDNS},
    {"no-port-mapping", no_argument, NULL, OPT_NO_PORT_MAPPING},
    {"peers-db", required_argument, NULL, OPT_PEERS_DB},
    {"http2", no_argument, NULL, OPT_HTTP2},
    {"sni", required_argument, NULL, OPT_SNI},
    {"host-name", required_argument, NULL, OPT_HOST_NAME},
    {"alpn", required_argument, NULL, OPT_ALPN},
    {"profile", required_argument, NULL, OPT_PROFILE},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"cert-type", required_argument, NULL, OPT_CERT_TYPE},
    {"web-upstream", required_argument, NULL, OPT_WEB_UPSTREAM},
    {"web-upstream-h2", required_argument, NULL, OPT_WEB_UPSTREAM_H2},
    {"web-root", required_argument, NULL, OPT_WEB_ROOT},
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
    {"linger", required_argument, NULL, OPT_LINGER},
    {"turn", required_argument, NULL, OPT_TURN},
    {"turn-user", required_argument, NULL, OPT_TURN_USER},
    {"turn-pass-file", required_argument, NULL, OPT_TURN_PASS_FILE},
    {"stun", required_argument, NULL, OPT_STUN},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

_Static_assert(sizeof OPT_CMDS / sizeof OPT_CMDS[0] == OPT_HELP - OPT_KEY + 1,
               "one row per option");
_Static_assert(sizeof LONG_OPTS / sizeof LONG_OPTS[0] == OPT_HELP - OPT_KEY + 2,
               "LONG_OPTS lists the options in opt_id order, then the terminator");

/* The numeric options: where each goes, its largest value, and whether it is milliseconds
 * (1 .. NODE_MAX_MS) or a count (1 .. hi). NULL for other options. */
static uint64_t *num_field(node_opts *o, int id, uint64_t *hi, int *is_ms)
{
    *hi = NODE_MAX_MS;
    *is_ms = 1;
    switch (id) {
    case OPT_MAINTAIN:
        return &o->maintain_ms;
    case OPT_CONNECT_TIMEOUT:
        return &o->connect_ms;
    case OPT_HANDSHAKE_TIMEOUT:
        return &o->handshake_ms;
    case OPT_AUTH_TIMEOUT:
        return &o->auth_ms;
    case OPT_HEARTBEAT:
        return &o->heartbeat_ms;
    case OPT_RECONNECT_MIN:
        return &o->reconnect_min_ms;
    case OPT_RECONNECT_MAX:
        return &o->reconnect_max_ms;
    case OPT_TIMEOUT:
        return &o->timeout_ms;
    case OPT_LINGER:
        return &o->linger_ms;
    }
    *is_ms = 0;
    *hi = NODE_MAX_POOL;
    switch (id) {
    case OPT_MAX_HANDSHAKES:
        *hi = MESH_NODE_MAX_HANDSHAKES;
        return &o->max_handshakes;
    case OPT_POOL_MIN:
        return &o->pool_min;
    case OPT_POOL_MAX:
        return &o->pool_max;
    }
    return NULL;
}

/* A numeric option (num_field says which). NODE_EXIT_OK or NODE_EXIT_USAGE. */
static int num_opt(uint64_t *field, uint64_t hi, int is_ms, const char *name, const char *arg)
{
    if (parse_num(arg, 1, hi, field) == MESH_OK)
        return NODE_EXIT_OK;
    if (is_ms)
        return usage_error("--%s: expected milliseconds 1..%" PRIu64 ", got '%s'", name, hi, arg);
    return usage_error("--%s: expected 1..%" PRIu64 ", got '%s'", name, hi, arg);
}

/* --peer, --bootstrap, --to; NODE_EXIT_OK or NODE_EXIT_USAGE. */
static int peer_arg(int id, const char *name, const char *arg, peer_opt *p)
{
    int rc = parse_peer(arg, id == OPT_TO, p);
    if (rc == MESH_ERR_MALFORMED)
        return usage_error("--%s '%s': the key must be %d hex characters", name, arg,
                           MESH_NODE_KEY_HEX_LEN);
    if (rc == MESH_ERR_BAD_HOST_NAME)
        return usage_error("--%s '%s': the part before '=' must be a DNS host name "
                           "(www.example.org)",
                           name, arg);
    if (rc != MESH_OK)
        return usage_error("--%s: expected %s[HOST=]ADDR:PORT#PUBKEYHEX with a port > 0, got '%s'",
                           name, id == OPT_TO ? "PUBKEYHEX or " : "", arg);
    return NODE_EXIT_OK;
}

/* --peer, --bootstrap, --to: one more peer in its list. */
static int take_peer(node_opts *o, int id, const char *name, const char *arg)
{
    if (id == OPT_TO) {
        if (o->has_to)
            return usage_error("--to given twice");
        o->has_to = 1;
        return peer_arg(id, name, arg, &o->to);
    }
    int peer = id == OPT_PEER, relay = id == OPT_RELAY;
    size_t *n = peer ? &o->npeers : relay ? &o->nrelays : &o->nboot;
    size_t max = peer ? NODE_MAX_PEERS : relay ? MESH_NODE_MAX_RELAYS : NODE_MAX_BOOTSTRAP;
    peer_opt *list = peer ? o->peers : relay ? o->relays : o->boot;
    if (*n == max)
        return usage_error("too many --%s options (at most %zu)", name, max);
    if (peer_arg(id, name, arg, &list[*n]) != NODE_EXIT_OK)
        return NODE_EXIT_USAGE;
    ++*n;
    return NODE_EXIT_OK;
}

/* --listen, --advertise, --turn, --stun, --web-upstream(-h2). */
static int take_addr(node_opts *o, int id, const char *name, const char *arg)
{
    mesh_addr a;
    if (mesh_addr_parse(&a, arg) != MESH_OK || (id != OPT_LISTEN && a.port == 0))
        return usage_error("--%s: expected ADDR:PORT (127.0.0.1:7000, [::1]:%s), got '%s'", name,
                           id == OPT_LISTEN ? "0" : "7000", arg);
    if (id == OPT_LISTEN) {
        if (o->has_listen) /* the second would silently win: one node listens on one address */
            return usage_error("--listen given twice");
        o->listen = a;
        o->has_listen = 1;
        return NODE_EXIT_OK;
    }
    if (id == OPT_TURN) {
        if (o->has_turn)
            return usage_error("--turn given twice (one TURN server)");
        o->turn = a;
        o->has_turn = 1;
        return NODE_EXIT_OK;
    }
    if (id == OPT_STUN) {
        if (o->nstun == MESH_NODE_MAX_STUN)
            return usage_error("too many --stun options (at most %d)", MESH_NODE_MAX_STUN);
        o->stun[o->nstun++] = a;
        return NODE_EXIT_OK;
    }
    if (id == OPT_WEB_UPSTREAM || id == OPT_WEB_UPSTREAM_H2) {
        *(id == OPT_WEB_UPSTREAM ? &o->web_upstream : &o->web_upstream_h2) = a;
        return NODE_EXIT_OK;
    }
    if (o->nadvertise == NODE_MAX_ADVERTISE)
        return usage_error("too many --advertise options (at most %d)", NODE_MAX_ADVERTISE);
    o->advertise[o->nadvertise++] = a;
    return NODE_EXIT_OK;
}

/* The index of s in names (n of them), or -1. */
static int word_of(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

/* --profile, --cert-type: a word from a short list. */
static int take_word(node_opts *o, int id, const char *name, const char *arg)
{
    static const char *const profiles[] = {"web", "seed"}; /* enum mesh_profile order */
    static const char *const types[] = {"ecdsa", "rsa"};   /* enum mesh_cert_type order */
    int w = word_of(arg, id == OPT_PROFILE ? profiles : types, 2);
    if (w < 0)
        return usage_error("--%s: expected %s, got '%s'", name,
                           id == OPT_PROFILE ? "web or seed" : "ecdsa or rsa", arg);
    if (id == OPT_PROFILE) {
        o->profile = w;
    } else {
        o->cert_type = w;
        o->has_cert_type = 1;
    }
    return NODE_EXIT_OK;
}

/* An option that names something (a file, a name, a list, a level, a text). */
static int take_text(node_opts *o, int id, const char *name, const char *arg)
{
    switch (id) {
    case OPT_KEY:
    case OPT_PEERS_DB:
    case OPT_TLS_CERT:
    case OPT_TLS_KEY:
    case OPT_TURN_PASS_FILE:
    case OPT_WEB_ROOT:
        if (!*arg)
            return usage_error("--%s: empty file name", name);
        *(id == OPT_KEY        ? &o->key_path
          : id == OPT_PEERS_DB ? &o->peers_db
          : id == OPT_TLS_CERT ? &o->tls_cert
          : id == OPT_TLS_KEY  ? &o->tls_key
          : id == OPT_WEB_ROOT ? &o->web_root
                               : &o->turn_pass_file) = arg;
        return NODE_EXIT_OK;
    case OPT_TURN_USER:
        if (!*arg || strlen(arg) > NODE_MAX_TURN_USER)
            return usage_error("--turn-user: expected 1..%d bytes", NODE_MAX_TURN_USER);
        o->turn_user = arg;
        return NODE_EXIT_OK;
    case OPT_PROFILE:
    case OPT_CERT_TYPE:
        return take_word(o, id, name, arg);
    case OPT_SNI:
        if (!*arg || strlen(arg) > MESH_NODE_MAX_SNI || strpbrk(arg, " \t\r\n"))
            return usage_error("--sni: expected a host name of 1..%d characters, got '%s'",
                               MESH_NODE_MAX_SNI, arg);
        o->sni = arg;
        return NODE_EXIT_OK;
    case OPT_HOST_NAME:
        if (mesh_host_name_check(arg) != MESH_OK)
            return usage_error("--host-name: expected a DNS host name (letters, digits, inner "
                               "hyphens; labels of 1..63, at most %d in all; not an address), "
                               "got '%s'",
                               MESH_HOST_NAME_MAX, arg);
        o->host_name = arg;
        return NODE_EXIT_OK;
    case OPT_ALPN:
        if (parse_alpn(o, arg) != MESH_OK)
            return usage_error("--alpn: expected 1..%d comma-separated names of 1..%d bytes, "
                               "got '%s'",
                               MESH_NODE_MAX_ALPN, MESH_NODE_MAX_ALPN_NAME, arg);
        return NODE_EXIT_OK;
    case OPT_LOG_LEVEL:
        if (parse_level(arg, &o->log_level) != MESH_OK)
            return usage_error("--log-level: expected debug, info, warn or error, got '%s'", arg);
        return NODE_EXIT_OK;
    case OPT_MESSAGE:
        if (strlen(arg) > NODE_MAX_MESSAGE)
            return usage_error("--message: at most %d bytes", NODE_MAX_MESSAGE);
        o->message = arg;
        return NODE_EXIT_OK;
    default:
        return usage_error("internal: unhandled option --%s", name);
    }
}

/* One option; NODE_EXIT_OK or NODE_EXIT_USAGE (message printed). */
static int take_opt(node_opts *o, int id, const char *name, const char *arg)
{
    uint64_t hi;
    int is_ms;
    uint64_t *field = num_field(o, id, &hi, &is_ms);
    if (field)
        return num_opt(field, hi, is_ms, name, arg);
    switch (id) {
    case OPT_LISTEN:
    case OPT_ADVERTISE:
    case OPT_TURN:
    case OPT_STUN:
    case OPT_WEB_UPSTREAM:
    case OPT_WEB_UPSTREAM_H2:
        return take_addr(o, id, name, arg);
    case OPT_PEER:
    case OPT_BOOTSTRAP:
    case OPT_RELAY:
    case OPT_TO:
        return take_peer(o, id, name, arg);
    case OPT_RELAY_SERVICE:
        o->relay_service = 1;
        return NODE_EXIT_OK;
    case OPT_MDNS:
        o->mdns = 1;
        return NODE_EXIT_OK;
    case OPT_NO_PORT_MAPPING:
        o->no_port_mapping = 1;
        return NODE_EXIT_OK;
    case OPT_HTTP2:
        o->http2 = 1;
        return NODE_EXIT_OK;
    case OPT_PING:
        o->ping = 1;
        return NODE_EXIT_OK;
    default:
        return take_text(o, id, name, arg);
    }
}

static const struct {
    const char *name;
    int cmd;
} COMMANDS[] = {
    {"keygen", CMD_KEYGEN}, {"pubkey", CMD_PUBKEY}, {"run", CMD_RUN}, {"send", CMD_SEND}};
enum { NCOMMANDS = sizeof COMMANDS / sizeof COMMANDS[0] };

static int command_of(const char *word)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(word, COMMANDS[i].name) == 0)
            return (int)i;
    return -1;
}

/* argv[1]: the command (or a request for help). -1 to go on, else the exit code. */
static int take_command(node_opts *o, int argc, char **argv)
{
    if (argc < 2)
        return usage_error("no command given (keygen, pubkey, run or send)");
    const char *c = argv[1];
    if (strcmp(c, "--help") == 0 || strcmp(c, "-h") == 0 || strcmp(c, "help") == 0) {
        node_usage(stdout);
        return NODE_EXIT_OK;
    }
    int i = command_of(c);
    if (i >= 0) {
        o->cmd = COMMANDS[i].cmd;
        o->cmd_name = COMMANDS[i].name;
        return -1;
    }
    if (c[0] == '-') { /* options first: say where the command goes */
        for (int a = 2; a < argc; a++)
            if (command_of(argv[a]) >= 0)
                return usage_error("the command comes first: meshara-node %s %s ...", argv[a], c);
        return usage_error("no command given before '%s' (keygen, pubkey, run or send)", c);
    }
    return usage_error("unknown command '%s' (keygen, pubkey, run or send)", c);
}

/* The options after the command. -1 to go on, else the exit code. */
static int take_options(node_opts *o, int argc, char **argv)
{
    opterr = 0; /* our own messages */
    optind = 1;
    int idx;
    for (;;) {
        int prev = optind;
        int id = getopt_long(argc, argv, "+:h", LONG_OPTS, &idx);
        if (id == -1)
            break;
        if (id == 'h' || id == OPT_HELP) {
            node_usage(stdout);
            return NODE_EXIT_OK;
        }
        if (id == '?')
            return usage_error("unknown option '%s'", argv[prev]);
        if (id == ':')
            return usage_error("option '%s' needs a value", argv[prev]);
        const char *name = LONG_OPTS[idx].name;
        if (!(OPT_CMDS[id - OPT_KEY] & o->cmd))
            return usage_error("option --%s is not valid for '%s'", name, o->cmd_name);
        if (take_opt(o, id, name, optarg) != NODE_EXIT_OK)
            return NODE_EXIT_USAGE;
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    return -1;
}

/* Options that belong to one profile. -1 to go on, else the exit code. */
static int check_profile(const node_opts *o)
{
    if (!o->tls_cert != !o->tls_key)
        return usage_error("--tls-cert and --tls-key go together");
    if (o->tls_cert && o->has_cert_type)
        return usage_error("--cert-type is for a certificate made here, not --tls-cert's");
    if (o->profile == MESH_PROFILE_SEED && (o->tls_cert || o->has_cert_type))
        return usage_error("--%s is a web-profile option (the seed profile's certificate is "
                           "made from the identity key)",
                           o->tls_cert ? "tls-cert" : "cert-type");
    if (o->profile == MESH_PROFILE_SEED &&
        (o->web_upstream.family != MESH_AF_NONE || o->web_upstream_h2.family != MESH_AF_NONE))
        return usage_error("--web-upstream is a web-profile option (a seed-profile server "
                           "has no decoy)");
    if (o->profile == MESH_PROFILE_SEED && o->web_root)
        return usage_error("--web-root is a web-profile option (a seed-profile server has no "
                           "decoy)");
    if (o->web_root &&
        (o->web_upstream.family != MESH_AF_NONE || o->web_upstream_h2.family != MESH_AF_NONE))
        return usage_error("--web-root and --web-upstream(-h2) exclude each other (the site "
                           "served here becomes both upstreams)");
    if (o->profile == MESH_PROFILE_WEB && o->alpn[0])
        return usage_error("--alpn is a seed-profile option (the web profile offers "
                           "h2,http/1.1 as curl does; add --profile seed)");
    return -1;
}

/* What single options cannot tell: required ones, and ones that must agree. */
static int check_opts(const node_opts *o)
{
    int ex;
    if (!o->key_path)
        return usage_error("'%s' needs --key FILE", o->cmd_name);
    /* a node with neither a chosen address nor a way to find or be found is a typo */
    if (o->cmd == CMD_RUN && !o->has_listen && !o->npeers && !o->nboot && !o->mdns && !o->peers_db)
        return usage_error("'run' needs --listen ADDR:PORT, or one of --peer, --bootstrap, "
                           "--mdns, --peers-db");
    if (o->has_turn != !!o->turn_user || o->has_turn != !!o->turn_pass_file)
        return usage_error("--turn, --turn-user and --turn-pass-file go together");
    if (o->reconnect_min_ms > o->reconnect_max_ms)
        return usage_error("--reconnect-min (%" PRIu64 ") is above --reconnect-max (%" PRIu64 ")",
                           o->reconnect_min_ms, o->reconnect_max_ms);
    uint64_t pool_max = o->pool_max ? o->pool_max : MESH_NODE_DEFAULT_POOL_MAX;
    if (o->pool_min > pool_max)
        return usage_error("--pool-min (%" PRIu64 ") is above --pool-max (%" PRIu64 "%s)",
                           o->pool_min, pool_max, o->pool_max ? "" : ", the default");
    if (o->cmd == CMD_SEND) {
        if (!o->has_to)
            return usage_error("'send' needs --to PUBKEYHEX or ADDR:PORT#PUBKEYHEX");
        if (!o->message == !o->ping)
            return usage_error("'send' needs exactly one of --message TEXT or --ping");
    }
    if ((ex = check_profile(o)) >= 0)
        return ex;
    if (o->http2 && o->alpn[0]) {
        int has_h2 = 0;
        for (size_t i = 0; o->alpn[i]; i++)
            has_h2 |= strcmp(o->alpn[i], MESH_NODE_H2_ALPN) == 0;
        if (!has_h2)
            return usage_error("--http2 needs \"%s\" in the --alpn list", MESH_NODE_H2_ALPN);
    }
    return -1;
}

int node_opts_parse(node_opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    o->log_level = MESH_LOG_INFO;
    o->reconnect_min_ms = NODE_DEFAULT_RECONNECT_MIN_MS;
    o->reconnect_max_ms = NODE_DEFAULT_RECONNECT_MAX_MS;
    o->timeout_ms = NODE_DEFAULT_SEND_TIMEOUT_MS;
    int ex = take_command(o, argc, argv);
    if (ex < 0) /* getopt sees the command as its program name */
        ex = take_options(o, argc - 1, argv + 1);
    if (ex < 0)
        ex = check_opts(o);
    if (ex >= 0)
        return ex;
    /* A send node is gone in seconds and serves no one: loopback only, so that no sender is
     * a server a prober could find on the network. */
    if (!o->has_listen) /* a web server is found on 443 (binding it: CAP_NET_BIND_SERVICE) */
        (void)mesh_addr_parse(&o->listen, o->cmd == CMD_SEND               ? "127.0.0.1:0"
                                          : o->profile == MESH_PROFILE_WEB ? "0.0.0.0:443"
                                                                           : "0.0.0.0:0");
    if (o->http2 && !o->alpn[0] && o->profile == MESH_PROFILE_SEED)
        o->alpn[0] = MESH_NODE_H2_ALPN;
    return -1;
}
