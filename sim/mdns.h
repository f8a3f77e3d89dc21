/* mdns.h — mDNS/DNS-SD in the simulator: what the sim driver's env ops->mdns does.
 *
 * One sim_mdns per simulated host: a UDP socket on port 5353 joined to 224.0.0.251, so its
 * messages reach exactly the hosts on the sender's LAN (the sender included, as with
 * IP_MULTICAST_LOOP), through the LAN's links with their latency and loss. The messages are
 * a small format of our own (sim_mdns_msg below), not DNS, but the protocol follows
 * RFC 6762 as avahi runs it:
 *  - publish: a random 0–250 ms wait, then SIM_MDNS_PROBES probes 250 ms apart; 250 ms after
 *    the last one, if nobody objected, the service is announced (twice, 1 s apart), so a
 *    service becomes visible 750–1000 ms after publish() on a quiet LAN.
 *  - conflicts: a probe or announcement of the same name and type from another host makes
 *    the loser take the next name ("x" → "x #2" → "x #3", as avahi does) and probe again.
 *    An announced service defends its name by announcing at once; two hosts probing the same
 *    name at once: the lower address (ip, then port) loses (RFC 6762 §8.2 compares record
 *    data; ours is the address).
 *  - browse: queries after a random 20–120 ms, then 1 s, 2 s, 4 s... apart (at most
 *    SIM_MDNS_QUERY_MAX_MS); a query is skipped when the same question was heard on the LAN
 *    within the last SIM_MDNS_QUERY_HISTORY_MS (duplicate question suppression, as avahi).
 *    Each announced service of that type answers a query after a random 20–120 ms, unless it
 *    was multicast less than a second before (RFC 6762 §6). Known-answer suppression is not
 *    modelled: every responder answers every query it may, so a LAN of N browsing and
 *    publishing hosts carries O(N) answers per query round, each delivered to N hosts.
 *  - cache: an instance lives SIM_MDNS_TTL_S after its last announcement/answer; at 80 % and
 *    90 % of that the browser queries again (avahi's cache maintenance); an instance not
 *    refreshed is reported removed at 100 %. A goodbye (announcement with TTL 0, sent by
 *    stop()) removes it SIM_MDNS_GOODBYE_MS later (RFC 6762 §10.1).
 * The host's own services are reported too, as avahi does. Every random delay comes from a
 * stream derived from (net seed, host id): a run is reproducible from its seed.
 *
 * Callbacks (mesh_mdns_cb) run from scheduler events only, never inside a sim_mdns_* call
 * (env.h rule 1); found is borrowed for the call (rule 3). A callback may call any function
 * here, stop() included: no callback for a stopped browser follows (rule 2).
 * Reports: found(…, 0) once per instance, again if its address, port or TXT changes;
 * found(…, 1) once when it goes (goodbye or TTL). The address is the sender's IPv4 address
 * with the service's port.
 */
#ifndef SIM_MDNS_H
#define SIM_MDNS_H

#include <stddef.h>
#include <stdint.h>

#include "meshara/env.h"
#include "sim/net.h"
#include "sim/udp.h"

typedef struct sim_mdns sim_mdns;

#define SIM_MDNS_GROUP SIM_IP4(224, 0, 0, 251)
/* Random stream of host h's mDNS delays: SIM_MDNS_RNG_STREAM + host id. */
#define SIM_MDNS_RNG_STREAM SIM_RNG_STREAM_MDNS

enum sim_mdns_limits {
    SIM_MDNS_PORT = 5353,
    SIM_MDNS_MAX_PUBS = 16,     /* publications per host */
    SIM_MDNS_MAX_BROWSERS = 16, /* browsers per host */
    SIM_MDNS_MAX_FOUND = 4096,  /* instances a browser tracks; more are ignored */
    SIM_MDNS_STR_MAX = 255,     /* one name, type or TXT string (a length byte) */
    SIM_MDNS_NAME_MAX = 63,     /* an instance name (one DNS label) */
    SIM_MDNS_MAX_TXT = 32,      /* TXT strings per service */
    SIM_MDNS_TXT_MAX = 1300,    /* TXT bytes per service (each string + 1) */
    SIM_MDNS_MSG_MAX = 1500,    /* one message: fits an Ethernet frame */
    SIM_MDNS_MAX_RENAMES = 32,  /* conflicts before a publication gives up */
};

/* Timing, in ms (avahi's values; RFC 6762 §5.2, §6, §8, §10). */
enum sim_mdns_timing {
    SIM_MDNS_PROBE_JITTER_MS = 250,   /* random wait before the first probe */
    SIM_MDNS_PROBE_INTERVAL_MS = 250, /* between probes, and last probe → announce */
    SIM_MDNS_PROBES = 3,
    SIM_MDNS_ANNOUNCES = 2, /* announcements after probing */
    SIM_MDNS_ANNOUNCE_INTERVAL_MS = 1000,
    SIM_MDNS_REPLY_MIN_MS = 20,             /* answer delay, and first query delay: uniform in */
    SIM_MDNS_REPLY_MAX_MS = 120,            /* [min, max) */
    SIM_MDNS_QUERY_FIRST_MS = 1000,         /* interval after the first query; doubles */
    SIM_MDNS_QUERY_MAX_MS = 3600000,        /* longest interval between queries */
    SIM_MDNS_QUERY_HISTORY_MS = 100,        /* a question heard this recently is not asked again */
    SIM_MDNS_RECORD_MIN_INTERVAL_MS = 1000, /* a service answers at most this often */
    SIM_MDNS_TTL_S = 120,                   /* TTL of announced services */
    SIM_MDNS_GOODBYE_MS = 1000,             /* a goodbye removes the instance this much later */
};

/* ---- the message format (exposed for tests and the fuzz target) ------------------------ */

enum sim_mdns_kind {
    SIM_MDNS_QUERY = 1,    /* "who offers services of <type>?" */
    SIM_MDNS_PROBE = 2,    /* "does anyone own <name>.<type>?" */
    SIM_MDNS_ANNOUNCE = 3, /* "<name>.<type> is at my address, <port>, TXT, for ttl s" */
};

/* Wire: u8 version (1), u8 kind, then by kind (str = u8 length 1..255 + bytes, no NUL):
 *   QUERY: str type
 *   PROBE: str name, str type, u16 port
 *   ANNOUNCE: str name, str type, u16 port, u32 ttl_s, u8 ntxt, ntxt × str
 * Integers big-endian; nothing may follow. */
#define SIM_MDNS_VERSION 1

typedef struct sim_mdns_str {
    const char *p; /* NOT NUL-terminated; borrowed from the buffer it was read from */
    size_t len;
} sim_mdns_str;

typedef struct sim_mdns_msg {
    int kind; /* enum sim_mdns_kind */
    sim_mdns_str name, type;
    uint16_t port;
    uint32_t ttl_s;
    size_t ntxt;
    sim_mdns_str txt[SIM_MDNS_MAX_TXT];
} sim_mdns_msg;

/* Encode m into buf (cap bytes); *len gets the size. MESH_OK, MESH_ERR_INVAL (bad kind, empty
 * or NUL-containing string), MESH_ERR_TOO_BIG (a string > SIM_MDNS_STR_MAX, more than
 * SIM_MDNS_MAX_TXT strings, or the message does not fit cap). */
int sim_mdns_msg_create(const sim_mdns_msg *m, uint8_t *buf, size_t cap, size_t *len);
/* Decode; strings point into data. MESH_OK, MESH_ERR_VERSION, MESH_ERR_TRUNCATED,
 * MESH_ERR_MALFORMED (unknown kind, empty or NUL-containing string, trailing bytes),
 * MESH_ERR_TOO_BIG (more than SIM_MDNS_MAX_TXT strings). */
int sim_mdns_msg_consume(sim_mdns_msg *m, const uint8_t *data, size_t len);

/* ---- the per-host service ----------------------------------------------------------------- */

typedef struct sim_mdns_stats {
    uint64_t sent, received, malformed;
    uint64_t probes, announces, goodbyes, answers, queries;
    uint64_t queries_suppressed, answers_suppressed; /* RFC 6762 §7.3 and §6 */
    uint64_t conflicts;                              /* renames of our own publications */
    uint64_t found, removed;                         /* reports made to browsers */
} sim_mdns_stats;

/* Start mDNS on host h: binds port 5353 and joins the group. log (may be NULL; copied) is
 * where conflicts and renames are logged (the sim driver passes its own env).
 * MESH_OK, MESH_ERR_INVAL, MESH_ERR_NOMEM, or sim_udp's errors. */
int sim_mdns_new(sim_mdns **out, sim_udp *udp, sim_host *h, const mesh_env *log);
/* Free without goodbyes (the host vanished; others notice by TTL). Not from inside one of
 * its callbacks. NULL: no-op. */
void sim_mdns_free(sim_mdns *m);

/* env.h's publish: name (1..63 bytes), type ("_x._tcp"/"_x._udp", 1..63 bytes), port != 0,
 * txt NULL-terminated (copied). MESH_OK, MESH_ERR_INVAL, MESH_ERR_EXISTS (same name and type
 * published here), MESH_ERR_LIMIT (SIM_MDNS_MAX_PUBS, SIM_MDNS_MAX_TXT, SIM_MDNS_TXT_MAX or a
 * TXT string > 255 bytes), MESH_ERR_NOMEM. */
int sim_mdns_publish(sim_mdns *m, const char *name, const char *type, uint16_t port,
                     const char *const *txt);
/* env.h's browse. MESH_OK, MESH_ERR_INVAL, MESH_ERR_LIMIT (SIM_MDNS_MAX_BROWSERS),
 * MESH_ERR_NOMEM. */
int sim_mdns_browse(sim_mdns *m, const char *type, mesh_mdns_cb cb, void *ud);
/* env.h's stop: goodbyes for every announced publication, then every publication and
 * browser is dropped (pending callbacks included). */
void sim_mdns_stop(sim_mdns *m);

/* Publication i (0 = first published, in order) for tests: its current name (renamed after
 * conflicts; valid until the next call that changes it) and when it was first announced
 * (MESH_TIME_NEVER while probing). MESH_OK or MESH_ERR_NOT_FOUND. */
int sim_mdns_publication(const sim_mdns *m, size_t i, const char **name, mesh_time *announced);
sim_mdns_stats sim_mdns_get_stats(const sim_mdns *m);

#endif
