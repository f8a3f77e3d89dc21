/* real/driver_timer.c — env timers as libevent evtimers (never early, never from inside
 * timer_set: driver.h rule 1). */
#include "real/driver_int.h"

#include <stdlib.h>
#include <time.h>

void real_timer_destroy(mesh_timer *t)
{
    LIST_REMOVE(t->r->timers, t);
    event_free(t->ev);
    free(t);
}

static void timer_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mesh_timer *t = arg;
    /* libevent measures timeouts against its cached loop time (and may use a coarse clock
     * on a caller's base), so it can wake us slightly before the deadline: re-arm for the
     * rest. env.h timers never fire early. */
    mesh_time now = real_now(t->r);
    if (now < t->deadline) {
        mesh_time us = (t->deadline - now + MESH_NS_PER_US - 1) / MESH_NS_PER_US;
        struct timeval tv = {.tv_sec = (time_t)(us / 1000000),
                             .tv_usec = (suseconds_t)(us % 1000000)};
        evtimer_add(t->ev, &tv);
        return;
    }
    t->busy++;
    if (t->cb)
        t->cb(t, t->ud);
    t->busy--;
    if (t->released && t->busy == 0)
        real_timer_destroy(t);
}

mesh_timer *real_timer_new(void *obj, mesh_timer_cb cb, void *ud)
{
    mesh_real *r = obj;
    mesh_timer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ev = evtimer_new(r->base, timer_fire, t);
    if (!t->ev) {
        free(t);
        return NULL;
    }
    t->r = r;
    t->cb = cb;
    t->ud = ud;
    LIST_INSERT(r->timers, t);
    return t;
}

void real_timer_set(void *obj, mesh_timer *t, mesh_time when)
{
    if (!t || t->released)
        return;
    if (when == MESH_TIME_NEVER) {
        evtimer_del(t->ev);
        return;
    }
    mesh_time now = real_now(obj);
    t->deadline = when;
    /* A deadline in the past fires on the next loop turn (zero delay), never from here.
     * Round up to whole microseconds so the timer never fires before `when`. */
    mesh_time delta = when > now ? when - now : 0;
    mesh_time us = (delta + MESH_NS_PER_US - 1) / MESH_NS_PER_US;
    struct timeval tv = {.tv_sec = (time_t)(us / 1000000), .tv_usec = (suseconds_t)(us % 1000000)};
    evtimer_add(t->ev, &tv);
}

void real_timer_stop(void *obj, mesh_timer *t)
{
    (void)obj;
    if (t)
        evtimer_del(t->ev);
}

void real_timer_free(void *obj, mesh_timer *t)
{
    (void)obj;
    if (!t || t->released)
        return;
    evtimer_del(t->ev);
    t->released = 1;
    if (t->busy == 0)
        real_timer_destroy(t);
}
