/* sched.h — the discrete-event scheduler: a virtual nanosecond clock and a queue of events.
 *
 * Events are ordered by (time, insertion sequence): two events at the same virtual time run
 * in the order they were scheduled, so a run is a pure function of its inputs. The queue is
 * a ladder queue of (time, seq, slot) keys (a small heap of the nearest keys, calendars of
 * unsorted buckets, an unsorted far-future array; sched.c says why); event bodies live in a
 * slot array recycled through a free list, so scheduling rarely allocates once the arrays
 * have grown.
 *
 * Handles: sim_sched_at() returns a sim_event_id that names (slot, generation). A slot's
 * generation changes when its event fires or is cancelled, so cancelling a stale id (already
 * fired, already cancelled, or from a recycled slot) is harmless: MESH_ERR_NOT_FOUND.
 *
 * Determinism check: every processed event folds (time, kind, target) into a running 64-bit
 * fingerprint. Two runs of one scenario with one seed must print the same fingerprint.
 *
 * The clock never goes backwards: scheduling before now() is refused (MESH_ERR_INVAL), and
 * the dispatcher aborts the process if that invariant ever breaks (a bug, not an input).
 *
 * Not thread-safe; one scheduler per simulation, driven from one thread.
 */
#ifndef SIM_SCHED_H
#define SIM_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "meshara/env.h"

typedef struct sim_sched sim_sched;

/* 0 is never a valid id: use it for "no event". */
typedef uint64_t sim_event_id;
#define SIM_EVENT_NONE 0ULL

/* An event handler. ctx and arg are what was given to sim_sched_at(). The handler may
 * schedule and cancel events freely (including at now()). */
typedef void (*sim_event_fn)(void *ctx, void *arg);

/* Event kinds, folded into the fingerprint (one place for every module's kinds). */
enum sim_event_kind {
    SIM_EV_USER = 0,        /* tests and scenario actions */
    SIM_EV_NET_HOP = 1,     /* a packet reaches the next stage of its path */
    SIM_EV_NET_MBOX = 2,    /* a packet delayed by a middlebox resumes */
    SIM_EV_TCP_RTO = 10,    /* retransmission / SYN retry timer */
    SIM_EV_TCP_PUSH = 11,   /* the sender's uplink drained: send more segments */
    SIM_EV_TCP_CONNTO = 12, /* connect timeout */
    SIM_EV_TCP_NOTIFY = 13, /* deferred callback (on_writable, local failure) */
    SIM_EV_REAP = 20,       /* deferred free of an object released inside a callback */
    SIM_EV_DRV_TIMER = 30,  /* an env timer fires */
    SIM_EV_NAT_SWEEP = 40,  /* a NAT removes expired mappings */
    SIM_EV_MDNS = 41,       /* an mDNS responder's probe, announce, query or answer timer */
    SIM_EV_PORTMAP = 42,    /* a gateway's port-mapping answer reaches its host */
};

enum sim_sched_limits {
    SIM_SCHED_MAX_PENDING = 1 << 26, /* events held at once; beyond: MESH_ERR_LIMIT */
    SIM_SCHED_INITIAL_CAP = 1024,
};

/* Create an empty scheduler at time 0. MESH_OK or MESH_ERR_NOMEM (*out untouched). */
int sim_sched_new(sim_sched **out);
/* Free the scheduler and drop pending events (their ctx/arg are not touched). NULL: no-op. */
void sim_sched_free(sim_sched *s);

mesh_time sim_sched_now(const sim_sched *s);

/* Schedule fn(ctx, arg) at absolute time `when` (>= now). kind and target are only folded
 * into the fingerprint (target: a stable id of the object acted on, e.g. a host id).
 * *id_out (may be NULL) receives a handle for sim_sched_cancel().
 * MESH_OK; MESH_ERR_INVAL (when < now, or fn NULL); MESH_ERR_LIMIT (SIM_SCHED_MAX_PENDING
 * reached); MESH_ERR_NOMEM. Nothing is scheduled on error. */
int sim_sched_at(sim_sched *s, mesh_time when, uint32_t kind, uint64_t target, sim_event_fn fn,
                 void *ctx, void *arg, sim_event_id *id_out);
/* Same, `delay` ns from now (saturating). */
int sim_sched_after(sim_sched *s, mesh_time delay, uint32_t kind, uint64_t target, sim_event_fn fn,
                    void *ctx, void *arg, sim_event_id *id_out);
/* Cancel a pending event in O(1) (lazily: sched.c says how). MESH_OK, or MESH_ERR_NOT_FOUND if the
 * id is SIM_EVENT_NONE, already fired, already cancelled or not from this scheduler. */
int sim_sched_cancel(sim_sched *s, sim_event_id id);
/* 1 if id names a pending event. */
int sim_sched_pending_id(const sim_sched *s, sim_event_id id);

/* Run the earliest event. Returns 1 if one ran, 0 if the queue is empty, MESH_ERR_LIMIT if
 * the event cap is reached (nothing ran). */
int sim_sched_step(sim_sched *s);
/* Run every event with time <= t, then set the clock to t (if t is not MESH_TIME_NEVER and
 * the run was not cut short). MESH_OK; MESH_ERR_LIMIT when the event cap stopped it;
 * MESH_ERR_STATE when sim_sched_stop() was called by a handler (clock stays at that event). */
int sim_sched_run_until(sim_sched *s, mesh_time t);
/* Run until the queue is empty (same returns as run_until). */
int sim_sched_run(sim_sched *s);
/* Ask the running run/run_until to return after the current event. */
void sim_sched_stop(sim_sched *s);

/* Stop running after `cap` processed events in total (0 = no cap). Tests set one so a bug
 * that schedules forever fails instead of hanging. */
void sim_sched_set_event_cap(sim_sched *s, uint64_t cap);

size_t sim_sched_pending(const sim_sched *s);
uint64_t sim_sched_processed(const sim_sched *s);
/* Running hash of every processed event's (time, kind, target). */
uint64_t sim_sched_fingerprint(const sim_sched *s);
/* "fingerprint=%016llx events=%llu t=%llu" into buf (>= 80 bytes); returns buf. */
char *sim_sched_summary(const sim_sched *s, char *buf, size_t buflen);

#endif
