/* real/avahi_poll.h — avahi's main-loop abstraction (AvahiPoll) over a libevent event_base, so
 * avahi-client runs on the real driver's loop (node/real/mdns.c uses it).
 *
 * Watches are persistent libevent events on avahi's socket (re-created when the wanted flags
 * change: freeing an event inside its own callback is safe in libevent, re-assigning it is
 * not); timeouts are evtimers. avahi hands absolute gettimeofday() times; they are turned into
 * delays when armed. Callbacks run from the loop, and each may free its own watch or timeout.
 * Failures to arm an event (no memory) are logged through env.
 */
#ifndef MESHARA_REAL_AVAHI_POLL_H
#define MESHARA_REAL_AVAHI_POLL_H

#include <avahi-common/watch.h>

#include "meshara/env.h"

struct event_base;

typedef struct mesh_real_avahi_poll {
    AvahiPoll api; /* pass &api to avahi_client_new(); api.userdata is this struct */
    struct event_base *base;
    mesh_env env; /* for logging */
} mesh_real_avahi_poll;

/* Fill p for base (borrowed: must outlive every watch and timeout avahi makes). p must stay
 * at its address while avahi uses it. */
void mesh_real_avahi_poll_init(mesh_real_avahi_poll *p, struct event_base *base, mesh_env env);

#endif
