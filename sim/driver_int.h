/* driver_int.h — the sim driver's internals, shared by driver.c (the world, the env's clock,
 * timers, streams, listeners, datagrams, mDNS) and driver_portmap.c (the env's port-mapping
 * service over the NAT model). Not a contract: sim/driver.h is. */
#ifndef SIM_DRIVER_INT_H
#define SIM_DRIVER_INT_H

#include "sim/driver.h"
#include "sim/nat.h"

typedef struct dnode {
    struct dnode *prev, *next;
} dnode;

struct sim_world {
    sim_sched *sched;
    sim_net *net;
    sim_tcp *tcp;
    sim_udp *udp;
    sim_log_fn log_fn;
    void *log_ud;
};

typedef struct sim_portmap sim_portmap; /* driver_portmap.c */

struct sim_driver {
    sim_world *w;
    sim_host *host;
    sim_rng rng;
    mesh_env_ops ops; /* sim_ops plus the services enabled on this host */
    sim_mdns *mdns;   /* sim_driver_enable_mdns() */
    sim_portmap *pm;  /* sim_driver_enable_portmap() */
    dnode timers, streams, listeners, dgrams;
};

/* driver_portmap.c: forget the answers still due and free the service (NULL pm: no-op). */
void sim_driver_portmap_free(sim_driver *d);

#endif
