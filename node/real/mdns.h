/*
 * real/mdns.h — mDNS/DNS-SD for the real driver: env.h's mesh_mdns_ops over avahi-client.
 *
 * avahi-client talks D-Bus to the host's avahi-daemon; this adapter runs it on the driver's
 * own libevent event_base through an AvahiPoll written here (watches are event_new() on the
 * fd, timeouts are evtimers): no extra thread, no avahi simple-poll, no mDNS of our own.
 *
 * What the ops do (obj is the mesh_real the adapter is attached to):
 *  - publish(name, type, port, txt): one avahi entry group per publication, on every
 *    interface, IPv4 and IPv6. Registration happens from the loop, not inside the call.
 *    When the name is taken on the link (AVAHI_ENTRY_GROUP_COLLISION, or a local
 *    AVAHI_ERR_COLLISION) the adapter renames it the way avahi does ("name" → "name #2"...),
 *    logs the new name at INFO ("mdns: published 'NAME' ...") and registers again.
 *    MESH_OK; MESH_ERR_INVAL (bad name/type, port 0, NULL); MESH_ERR_EXISTS (same name and
 *    type already published here); MESH_ERR_LIMIT (MESH_REAL_MDNS_MAX_PUBS; TXT of more than
 *    MESH_REAL_MDNS_MAX_TXT strings, MESH_REAL_MDNS_TXT_MAX bytes, or a string over
 *    MESH_REAL_MDNS_TXT_STR_MAX); MESH_ERR_NOMEM. Failures avahi reports later are logged.
 *  - browse(type, cb, ud): a service browser, and a resolver for each instance it reports.
 *    cb(found, 0) runs once per resolved instance (address with the service port, TXT as
 *    "key=value" strings in the order they were published); cb(found, 1) when it goes away.
 *    An instance seen on several interfaces/protocols with the same address and port is
 *    reported once. IPv6 link-local answers are skipped (mesh_addr has no scope id).
 *    MESH_OK; MESH_ERR_INVAL; MESH_ERR_LIMIT (MESH_REAL_MDNS_MAX_BROWSERS); MESH_ERR_NOMEM.
 *    Beyond MESH_REAL_MDNS_MAX_FOUND instances per browser, new ones are logged and ignored.
 *  - stop(): withdraws every publication (avahi sends the goodbyes) and browser; callbacks
 *    still queued are dropped.
 *
 * env.h rule 1: avahi invokes some of its callbacks synchronously inside avahi calls, so the
 * adapter never calls the core from an avahi callback. Found/removed reports are queued (a
 * copy of name, address and TXT) and delivered by an event_active()'d event; registrations
 * and browser creation are done from that same kind of deferred event. A core callback may
 * call any op, stop() included (rule 2: later reports for stopped browsers are dropped).
 *
 * The daemon: mesh_real_mdns_attach() fails with MESH_ERR_UNSUPPORTED (logged at WARN) when
 * no avahi-daemon answers on the system bus (the env's ops->mdns then stays NULL). When the
 * daemon goes away later (restart), every instance found so far is reported removed, the
 * client is recreated with AVAHI_CLIENT_NO_FAIL (it waits for the daemon to come back) and,
 * once the daemon runs, every publication and browser is registered again. If even the
 * system bus is gone, reconnecting is retried every MESH_REAL_MDNS_RETRY_MS.
 * A host-name collision (the daemon renames the host) withdraws the publications until the
 * daemon is running again, then registers them again.
 */
#ifndef MESHARA_REAL_MDNS_H
#define MESHARA_REAL_MDNS_H

#include "real/driver.h"

#ifdef __cplusplus
extern "C" {
#endif

enum mesh_real_mdns_limits {
    MESH_REAL_MDNS_MAX_PUBS = 16,     /* publications per driver */
    MESH_REAL_MDNS_MAX_BROWSERS = 16, /* browsers per driver */
    MESH_REAL_MDNS_MAX_FOUND = 256,   /* instances tracked per browser */
    MESH_REAL_MDNS_MAX_TXT = 32,      /* TXT strings passed to a found callback */
    MESH_REAL_MDNS_TXT_MAX = 1300,    /* bytes of TXT one publication may carry */
    MESH_REAL_MDNS_TXT_STR_MAX = 255, /* one TXT string (DNS: a length byte) */
    MESH_REAL_MDNS_NAME_MAX = 63,     /* bytes of an instance name (one DNS label) */
    MESH_REAL_MDNS_MAX_RENAMES = 32,  /* collisions before a publication gives up */
    MESH_REAL_MDNS_RETRY_MS = 1000,   /* reconnect attempt when the system bus is gone */
};

/* Connect to avahi-daemon through the system bus and install the mDNS ops in r's env.
 * The adapter belongs to r: mesh_real_free() frees it (withdrawing publications).
 * MESH_OK; MESH_ERR_INVAL (r NULL); MESH_ERR_EXISTS (already attached); MESH_ERR_NOMEM;
 * MESH_ERR_UNSUPPORTED (no avahi-daemon or no system bus: run without mDNS). */
int mesh_real_mdns_attach(mesh_real *r);

/* The adapter's reading of what the network sent, as a resolved service's answer goes to the
 * core's found callback (exposed for tests/fuzz/fuzz_mdns_real.c). txt: the TXT record's wire
 * form (RFC 6763 §6: length-prefixed strings, parsed by avahi as the daemon does, in wire
 * order as avahi-client hands them over) becomes the first MESH_REAL_MDNS_MAX_TXT non-empty
 * strings, each cut at a NUL byte, in *txt_out, a NULL-terminated array freed with
 * mesh_real_mdns_txt_free(); ip (16 bytes if inet6, else 4) and port become *addr. MESH_OK;
 * MESH_ERR_UNSUPPORTED (IPv6 link-local: mesh_addr has no scope id, the answer is skipped);
 * MESH_ERR_MALFORMED (a string runs past the record); MESH_ERR_NOMEM. *txt_out is set only on
 * MESH_OK. */
int mesh_real_mdns_answer(const uint8_t *txt, size_t txt_len, int inet6, const uint8_t *ip,
                          uint16_t port, mesh_addr *addr, char ***txt_out);
void mesh_real_mdns_txt_free(char **txt);

#ifdef __cplusplus
}
#endif
#endif
