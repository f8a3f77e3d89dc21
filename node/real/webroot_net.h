/* webroot_net.h — the static site (webroot.h) served on two loopback listeners, so that a
 * web-profile node without a web server of its own points its decoy at them as it would at
 * nginx (meshara-node --web-root DIR: the h1 listener becomes --web-upstream, the h2 one
 * --web-upstream-h2; docs/stealth.md). The h1 listener speaks HTTP/1.x (http-parser), the h2
 * one HTTP/2 with prior knowledge (an nghttp2 server session) and sends nginx's SETTINGS
 * and WINDOW_UPDATE first, which the decoy takes out of its output (decoy.h).
 *
 * Timers as nginx's defaults: a request (or the first one) must arrive within 60 s
 * (client_header_timeout), an idle keep-alive connection closes at 75 s (keepalive_timeout;
 * h2: GOAWAY(NO_ERROR) first). At most MESH_WEBROOT_NET_CONNS connections at once (the
 * decoy's own bound is lower); beyond it a new one is closed at once.
 *
 * Runs on the caller's event_base (the real driver's), no thread; the clock is the wall
 * clock (Date headers).
 */
#ifndef MESH_REAL_WEBROOT_NET_H
#define MESH_REAL_WEBROOT_NET_H

#include <event2/event.h>

#include "meshara/env.h"

enum mesh_webroot_net_limits {
    MESH_WEBROOT_NET_CONNS = 512,
    MESH_WEBROOT_NET_HEADER_S = 60,    /* client_header_timeout */
    MESH_WEBROOT_NET_KEEPALIVE_S = 75, /* keepalive_timeout */
};

typedef struct mesh_webroot_net mesh_webroot_net;

/* Serve dir on 127.0.0.1, two ephemeral ports: *h1 and *h2 get their addresses. MESH_OK;
 * MESH_ERR_INVAL; MESH_ERR_NOT_FOUND (dir is not a directory); MESH_ERR_ADDR (cannot
 * listen); MESH_ERR_NOMEM. *out untouched on failure. */
int mesh_webroot_net_new(mesh_webroot_net **out, struct event_base *base, const char *dir,
                         mesh_addr *h1, mesh_addr *h2);
/* Close the listeners and every connection (at once). NULL: no-op. */
void mesh_webroot_net_free(mesh_webroot_net *n);

#endif
