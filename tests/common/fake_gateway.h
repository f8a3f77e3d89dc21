/* fake_gateway.h — a scripted home gateway for tests of port-mapping clients: a NAT-PMP
 * server (RFC 6886, UDP port 5351) and a UPnP IGD (its root description and the
 * WANIPConnection SOAP actions a client uses: GetExternalIPAddress, AddPortMapping,
 * GetSpecificPortMappingEntry, DeletePortMapping; no SSDP). Both run on any mesh_env with
 * datagrams and streams, so a test can put them on the very loop it tests.
 *
 * A test sets the script fields (zero = a well-behaved gateway), starts the fakes, and reads
 * the record fields. Answers are as small as real ones (miniupnpd's shapes); the script can
 * make them errors, faults, garbage or silence.
 */
#ifndef MESH_TEST_FAKE_GATEWAY_H
#define MESH_TEST_FAKE_GATEWAY_H

#include <stdint.h>

#include "meshara/env.h"

enum fake_gateway_limits {
    FAKE_NATPMP_PORT = 5351,
    FAKE_IGD_CONNS = 16,
    FAKE_IGD_HTTP_MAX = 16384,
    FAKE_IGD_ADDS = 8, /* AddPortMapping calls scripted and recorded */
};

typedef struct fake_natpmp {
    mesh_env env;
    mesh_dgram *d;
    /* script */
    int drop;       /* answer nothing */
    int garbage;    /* answer a short, a wrong-version and a wrong-opcode datagram */
    int other_port; /* mapping answers about internal port + 1 */
    int life0;      /* mapping answers with lifetime 0 */
    uint16_t addr_result, map_result;
    uint8_t pub[4];     /* the public address answered */
    uint16_t give_port; /* 0: the external port asked */
    uint32_t give_life; /* 0: the lifetime asked */
    /* record */
    int addr_reqs, map_reqs, del_reqs;
    uint16_t last_int, last_ext;
    uint32_t last_life;
} fake_natpmp;

/* Bind at `at` (borrowed env: must outlive the fake). MESH_OK or the env's bind error. */
int fake_natpmp_start(fake_natpmp *f, const mesh_env *env, const mesh_addr *at);
void fake_natpmp_stop(fake_natpmp *f);

typedef struct fake_igd_conn {
    struct fake_igd *g;
    mesh_stream *s;
    char buf[FAKE_IGD_HTTP_MAX];
    size_t len;
    int held; /* a request the script holds unanswered */
} fake_igd_conn;

typedef struct fake_igd {
    mesh_env env;
    mesh_listener *l;
    uint16_t port;
    fake_igd_conn conns[FAKE_IGD_CONNS];
    /* script */
    const char *ext_ip;         /* NULL: an answer without NewExternalIPAddress */
    int add_err[FAKE_IGD_ADDS]; /* AddPortMapping call i: 0 success, > 0 fault, -1 garbage */
    const char *entry_client;   /* GetSpecificPortMappingEntry's client; NULL: fault 714 */
    const char *entry_lease;    /* its NewLeaseDuration (NULL: "3600") */
    uint16_t entry_port;        /* its NewInternalPort */
    int bad_desc;               /* a description without a WAN connection service */
    int silent;                 /* hold every request */
    int hold_entry;             /* hold GetSpecificPortMappingEntry */
    /* record */
    int holds, gets, ext_calls, add_calls, entry_calls, del_calls;
    char add_ext[FAKE_IGD_ADDS][8], add_lease[FAKE_IGD_ADDS][16], del_ext[8];
} fake_igd;

/* Listen at `at` (port 0: any; g->port gets the one bound). MESH_OK or the env's error. */
int fake_igd_start(fake_igd *g, const mesh_env *env, const mesh_addr *at);
/* The held requests: answered now (the entry query held by hold_entry), or reset. */
void fake_igd_release_held(fake_igd *g, int answer);
void fake_igd_stop(fake_igd *g);

#endif
