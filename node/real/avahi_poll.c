/* real/avahi_poll.c — avahi's main-loop abstraction (AvahiPoll) over a libevent event_base.
 * See avahi_poll.h. */
#include "real/avahi_poll.h"

#include <stdlib.h>
#include <sys/time.h>

#include <event2/event.h>

struct AvahiWatch {
    mesh_real_avahi_poll *p;
    struct event *ev;
    int fd;
    short evflags;            /* EV_READ/EV_WRITE currently asked for */
    AvahiWatchEvent happened; /* what the last dispatch saw (watch_get_events) */
    AvahiWatchCallback cb;
    void *ud;
};

struct AvahiTimeout {
    mesh_real_avahi_poll *p;
    struct event *ev;
    AvahiTimeoutCallback cb;
    void *ud;
};

static short watch_evflags(AvahiWatchEvent e)
{
    /* ERR and HUP need no request: libevent reports them as readability. */
    return (short)(((e & AVAHI_WATCH_IN) ? EV_READ : 0) | ((e & AVAHI_WATCH_OUT) ? EV_WRITE : 0));
}

static void watch_fired(evutil_socket_t fd, short what, void *arg)
{
    AvahiWatch *w = arg;
    w->happened = (AvahiWatchEvent)(((what & EV_READ) ? AVAHI_WATCH_IN : 0) |
                                    ((what & EV_WRITE) ? AVAHI_WATCH_OUT : 0));
    w->cb(w, (int)fd, w->happened, w->ud); /* may free w */
}

/* (Re)create the event for the wanted flags; freeing an event inside its own callback is
 * safe in libevent, and event_assign() on it would not be. */
static int watch_arm(AvahiWatch *w, short evflags)
{
    if (w->ev && evflags == w->evflags)
        return 0;
    if (w->ev)
        event_free(w->ev);
    w->ev = NULL;
    w->evflags = evflags;
    if (!evflags)
        return 0;
    w->ev = event_new(w->p->base, w->fd, (short)(evflags | EV_PERSIST), watch_fired, w);
    if (!w->ev || event_add(w->ev, NULL) != 0)
        return -1;
    return 0;
}

static void watch_free(AvahiWatch *w);

static AvahiWatch *watch_new(const AvahiPoll *api, int fd, AvahiWatchEvent event,
                             AvahiWatchCallback cb, void *ud)
{
    AvahiWatch *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->p = api->userdata;
    w->fd = fd;
    w->cb = cb;
    w->ud = ud;
    if (watch_arm(w, watch_evflags(event)) != 0) {
        watch_free(w);
        return NULL;
    }
    return w;
}

static void watch_update(AvahiWatch *w, AvahiWatchEvent event)
{
    if (watch_arm(w, watch_evflags(event)) != 0)
        mesh_log(&w->p->env, MESH_LOG_ERROR, "mdns: cannot watch avahi's socket (no memory)");
}

static AvahiWatchEvent watch_get_events(AvahiWatch *w)
{
    return w->happened;
}

static void watch_free(AvahiWatch *w)
{
    if (w->ev)
        event_free(w->ev);
    free(w);
}

static void timeout_fired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    AvahiTimeout *t = arg;
    t->cb(t, t->ud); /* may free t */
}

/* avahi's times are absolute gettimeofday() values; libevent wants a delay. */
static void timeout_update(AvahiTimeout *t, const struct timeval *tv)
{
    event_del(t->ev);
    if (!tv)
        return;
    struct timeval now, delay = {0, 0};
    gettimeofday(&now, NULL);
    if (timercmp(tv, &now, >))
        timersub(tv, &now, &delay);
    if (evtimer_add(t->ev, &delay) != 0)
        mesh_log(&t->p->env, MESH_LOG_ERROR, "mdns: cannot arm avahi's timeout");
}

static AvahiTimeout *timeout_new(const AvahiPoll *api, const struct timeval *tv,
                                 AvahiTimeoutCallback cb, void *ud)
{
    AvahiTimeout *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->p = api->userdata;
    t->cb = cb;
    t->ud = ud;
    t->ev = evtimer_new(t->p->base, timeout_fired, t);
    if (!t->ev) {
        free(t);
        return NULL;
    }
    timeout_update(t, tv);
    return t;
}

static void timeout_free(AvahiTimeout *t)
{
    event_free(t->ev);
    free(t);
}

void mesh_real_avahi_poll_init(mesh_real_avahi_poll *p, struct event_base *base, mesh_env env)
{
    p->base = base;
    p->env = env;
    p->api = (AvahiPoll){
        .userdata = p,
        .watch_new = watch_new,
        .watch_update = watch_update,
        .watch_get_events = watch_get_events,
        .watch_free = watch_free,
        .timeout_new = timeout_new,
        .timeout_update = timeout_update,
        .timeout_free = timeout_free,
    };
}
