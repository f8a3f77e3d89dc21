/* env_conformance.h — one suite of meshara/env.h contract cases, run against every driver.
 *
 * The cases (env_conformance.c) check what env.h promises, through the ops table only: timers
 * (order, never early, re-arm, stop, MESH_TIME_NEVER, free inside callbacks), streams
 * (connect, accept, data both ways, addresses, graceful close after data both ways, abort,
 * refusal, writes before the connect completed, pending and on_writable, closes inside
 * callbacks), datagrams (both ways, sender address, close inside the callback, size limit),
 * the clock and randomness, bad input, and the five rules where a test can see them: every
 * callback checks that it is not running inside an env call (rule 1) and that the clock never
 * went back (rule 5); closes and frees inside callbacks (rule 2); buffers overwritten right
 * after the call that took them (rule 3); exactly one on_closed, none after our own close
 * (rule 4).
 *
 * A test program describes its driver with a mesh_conf_driver and lists the suite:
 *     static int init_real(void) { mesh_conf_use(&REAL_DRIVER); return 0; }
 *     {"env conformance: real driver", init_real, NULL, NULL, NULL, mesh_conf_tests},
 * Each case makes a fresh world, so cases do not depend on each other. What only one driver
 * does (exact virtual times, zero-copy writes, namespaces, per-host random streams) stays in
 * that driver's own test file.
 */
#ifndef MESH_ENV_CONFORMANCE_H
#define MESH_ENV_CONFORMANCE_H

#include <CUnit/CUnit.h>
#include <stddef.h>

#include "meshara/env.h"

/* What a case runs in: two hosts that can reach each other. */
typedef struct mesh_conf_world {
    mesh_env client, server; /* the same env twice is fine (one real driver on loopback) */
    mesh_addr client_addr;   /* an address of each host, port 0: what the cases bind */
    mesh_addr server_addr;
    size_t dgram_max; /* the largest datagram payload the driver sends */
    void *impl;       /* the adapter's own state */
} mesh_conf_world;

typedef struct mesh_conf_driver {
    const char *name;
    /* Make a world (fill every field). 0 = made; otherwise the case is skipped, and why
     * (at most 200 bytes) is printed. */
    int (*world_new)(mesh_conf_world *w, char *why, size_t whylen);
    /* Free the world and whatever handles the cases left open. */
    void (*world_free)(mesh_conf_world *w);
    /* Run the driver's loop for dt of its own clock (wall or virtual). */
    void (*run_for)(mesh_conf_world *w, mesh_time dt);
} mesh_conf_driver;

/* The driver the next cases run against (borrowed: static storage). */
void mesh_conf_use(const mesh_conf_driver *d);

extern CU_TestInfo mesh_conf_tests[];

#endif
