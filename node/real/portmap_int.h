/*
 * real/portmap_int.h — inside the port-mapping adapter (portmap.h is its interface; nothing
 * else includes this): the entries, tasks and jobs, and what its three files lend each other.
 *
 *   portmap.c         the ops, the task queue (one task at a time), deadlines, answers, lifecycle
 *   portmap_natpmp.c  a NAT-PMP exchange in the loop (libnatpmp, its socket as an event)
 *   portmap_upnp.c    the worker thread running miniupnpc jobs, and the loop's end of it
 *
 * A task ends in one place, pm_phase_done(): each method reports there, the task tries the
 * next method or finishes; the core's callback is called last, from the loop, after the
 * adapter's own state is consistent (it may call request/release: they only queue).
 */
#ifndef MESHARA_REAL_PORTMAP_INT_H
#define MESHARA_REAL_PORTMAP_INT_H

#include <natpmp.h>
#include <pthread.h>
#include <stdint.h>

#include "real/portmap.h"

struct event;
struct event_base;

enum pm_method { PM_NONE = 0, PM_NATPMP = 1, PM_UPNP = 2 };
enum pm_kind { PM_MAP = 1, PM_UNMAP = 2 };

/* One (protocol, internal port) the core asked for. */
typedef struct pm_entry {
    struct pm_entry *next;
    int tcp;
    uint16_t port;
    mesh_portmap_cb cb; /* the request to answer; NULL: none */
    void *ud;
    uint64_t gen;      /* bumped by every request and release: older tasks answer no one */
    int released;      /* release() was called: freed once no task refers to it */
    int via;           /* enum pm_method holding a mapping at the gateway; PM_NONE: none */
    uint16_t ext_port; /* that mapping's external port */
    int tasks;         /* tasks referring to it */
} pm_entry;

typedef struct pm_task {
    struct pm_task *next;
    int kind; /* enum pm_kind */
    pm_entry *e;
    uint64_t gen;   /* e->gen when queued */
    uint32_t lease; /* asked (MAP) */
    int methods[2]; /* in the order to try; PM_NONE ends the list */
    int mi;         /* index of the method running */
    int err;        /* the most telling failure so far */
    char why[2 * MESH_REAL_PORTMAP_WHY_MAX];
} pm_task;

/* A miniupnpc job: filled by the loop, run by the worker, results read by the loop. */
typedef struct pm_job {
    struct pm_job *next;
    uint64_t id;
    int kind; /* enum pm_kind */
    int tcp;
    uint16_t port, ext_port;
    uint32_t lease;
    uint16_t alt[MESH_REAL_PORTMAP_ALT_PORTS]; /* MAP: other external ports after a conflict */
    /* results */
    int result;
    mesh_addr external;
    uint32_t lease_granted;
    char why[MESH_REAL_PORTMAP_WHY_MAX];
} pm_job;

typedef struct pm_worker pm_worker; /* portmap_upnp.c */

typedef struct mesh_real_portmap {
    mesh_real *r;
    mesh_env env; /* logging, randomness */
    struct event_base *base;
    mesh_real_portmap_cfg cfg; /* strings point at url / desc below */
    char url[MESH_REAL_PORTMAP_URL_MAX];
    char desc[MESH_REAL_PORTMAP_DESC_MAX];
    pm_entry *entries;
    size_t nentries;
    pm_task *queue, *queue_tail;
    pm_task *cur;           /* the task running */
    struct event *kick;     /* deferred: start the next task */
    struct event *deadline; /* the running phase's bound */
    /* NAT-PMP (portmap_natpmp.c) */
    natpmp_t np;
    int np_open;
    int np_stage;       /* enum np_stage in portmap_natpmp.c */
    int np_wrong;       /* answers that matched nothing we asked (counted against the gateway) */
    int np_heard;       /* the gateway answered something this phase */
    uint32_t np_public; /* the public address answered (network order) */
    struct event *np_read, *np_retry;
    /* UPnP (portmap_upnp.c) */
    pm_worker *w;
    struct event *w_wake; /* readable: the worker finished a job */
    uint64_t job_id;      /* of the job the running task waits for; 0 = none */
    uint64_t next_job_id;
} mesh_real_portmap;

/* ---- portmap.c ------------------------------------------------------------------------- */
/* A method of the running task ended: MESH_OK with external and lease, or a failure with a
 * short explanation (copied) for the log. Called from the loop only. */
void pm_phase_done(mesh_real_portmap *pm, int result, const mesh_addr *external, uint32_t lease_s,
                   const char *why);
/* Arm the running phase's deadline ms from now. */
void pm_deadline_arm(mesh_real_portmap *pm, uint32_t ms);
/* 1 if ip (4 bytes, network order) cannot be a public address: private, shared, loopback,
 * link-local, documentation, benchmarking, multicast, reserved, 0/8. */
int pm_ip_is_private(const uint8_t ip[4]);
/* The entry for a late UPnP success (see portmap.h): remember it, or undo it. */
void pm_late_upnp_success(mesh_real_portmap *pm, const pm_job *j);

/* ---- portmap_natpmp.c ------------------------------------------------------------------ */
/* The exchange's retry timer (attach), and everything of NAT-PMP gone (free). */
int pm_natpmp_init(mesh_real_portmap *pm);
void pm_natpmp_fini(mesh_real_portmap *pm);
/* Start a NAT-PMP exchange for the running task (MAP or UNMAP). Ends in pm_phase_done. */
void pm_natpmp_begin(mesh_real_portmap *pm);
/* The deadline of a NAT-PMP phase passed: end it (pm_phase_done). */
void pm_natpmp_expired(mesh_real_portmap *pm);
/* Close the socket and events of an exchange (no answer follows). */
void pm_natpmp_close(mesh_real_portmap *pm);
/* Free: send the deletion of (tcp, port) once, without waiting for the answer. */
void pm_natpmp_fire_unmap(mesh_real_portmap *pm, int tcp, uint16_t port);

/* ---- portmap_upnp.c -------------------------------------------------------------------- */
/* Queue a UPnP job for the running task (MAP or UNMAP). Ends in pm_phase_done. */
void pm_upnp_begin(mesh_real_portmap *pm);
/* The deadline of a UPnP phase passed: abandon the job (pm_phase_done(MESH_ERR_TIMEOUT)). */
void pm_upnp_expired(mesh_real_portmap *pm);
/* Queue a deletion nobody waits for (a late success that was released meanwhile). */
void pm_upnp_fire_unmap(mesh_real_portmap *pm, int tcp, uint16_t port, uint16_t ext_port);
/* Free: stop the worker after its queued deletions (bounded), join or abandon it. */
void pm_upnp_shutdown(mesh_real_portmap *pm);

#endif
