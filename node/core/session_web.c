/* session_web.c — a web-profile server between its TLS handshake and the client's verified
 * hello (session_io.h, docs/stealth.md): nothing goes out but what nginx sends a client that
 * has not finished its first request (its SETTINGS and WINDOW_UPDATE, a SETTINGS ACK for each
 * of the client's SETTINGS) while firstreq.h classifies the client's first bytes; a verified
 * hello lets the session go on as HTTP/2 mode (our hello in the response); anything else is
 * handed to the decoy (decoy.h), which was connected to the upstream at the handshake and
 * from then on carries the connection both ways.
 */
#include <stdlib.h>
#include <string.h>

#include "core/firstreq.h"
#include "core/session_io.h"

/* Nginx's own limits for a connection that sends no request (client_header_timeout 60 s):
 * without an upstream, the node closes then. With one, the upstream's timers decide; this is
 * only the bound on how long a decoy connection may live. */
enum {
    WEB_IDLE_MS = 60000,
    WEB_DECOY_MAX_MS = 15 * 60000,
    WEB_HELLO_MAX = 1024, /* a client hello's envelope: ~110 bytes, unpadded */
};

static const uint8_t SETTINGS_ACK[9] = {0, 0, 0, 4, 1, 0, 0, 0, 0};

mesh_time mesh_session_web_deadline(const mesh_session *s)
{
    return (s->decoy ? WEB_DECOY_MAX_MS : WEB_IDLE_MS) * MESH_NS_PER_MS;
}

void mesh_session_web_release(mesh_session *s)
{
    mesh_decoy_free(s->decoy);
    s->decoy = NULL;
    free(s->first);
    s->first = NULL;
    s->first_len = 0;
}

/* ---- the decoy's callbacks (env events of its upstream stream) ------------------------ */

static void engage(mesh_session *s);

static void decoy_data(void *ud, const uint8_t *data, size_t len)
{
    mesh_session *s = ud;
    mesh_session_enter(s);
    if (!mesh_session_stopped(s)) {
        int rc = mesh_tls_write(s->tls, data, len);
        if (rc == MESH_OK && s->write_err)
            rc = s->write_err;
        if (rc != MESH_OK)
            mesh_session_end(s, rc, 1);
    }
    mesh_session_leave(s);
}

static void decoy_spoke(void *ud)
{
    mesh_session *s = ud;
    mesh_session_enter(s);
    if (s->web_gate && !mesh_session_stopped(s))
        engage(s);
    mesh_session_leave(s);
}

/* The upstream closed: as it did, close_notify then FIN (what nginx sends when it closes). */
static void decoy_closed(void *ud, int reason)
{
    mesh_session *s = ud;
    mesh_session_enter(s);
    mesh_decoy_free(s->decoy);
    s->decoy = NULL;
    if (!mesh_session_stopped(s))
        mesh_session_end(s, reason == MESH_OK ? MESH_ERR_CLOSED : reason, 0);
    mesh_session_leave(s);
}

static const mesh_decoy_cbs DECOY_CBS = {decoy_data, decoy_spoke, decoy_closed};

/* ---- classification --------------------------------------------------------------------- */

/* Not a Meshara client: the decoy's from now on, with what it sent so far. */
static void engage(mesh_session *s)
{
    s->web_gate = 0;
    s->decoy_on = 1;
    mesh_h2_free(s->h2);
    s->h2 = NULL;
    int rc = s->decoy ? mesh_decoy_engage(s->decoy, s->first, s->first_len) : MESH_OK;
    free(s->first);
    s->first = NULL;
    s->first_len = 0;
    if (rc != MESH_OK)
        mesh_session_end(s, rc, 0);
    else if (s->cbs.on_decoy)
        s->cbs.on_decoy(s, s->ud);
}

static int verify_hello(void *ud, const uint8_t *body, size_t len)
{
    mesh_session *s = ud;
    mesh_envelope *e = NULL;
    uint8_t exporter[MESH_SESSION_EXPORTER_LEN], key[MESH_PUBKEY_LEN];
    int rc = mesh_wire_decode(body, len, &e); /* the web profile's bodies are unpadded */
    if (rc != MESH_OK)
        return rc;
    rc = mesh_tls_export(s->tls, MESH_SESSION_EXPORTER_LABEL, exporter, sizeof exporter);
    if (rc == MESH_OK)
        rc = mesh_hello_consume(e, MESH_SESSION_ROLE_CLIENT, exporter, NULL, key);
    mesh_wire_free(e);
    return rc;
}

/* A verified hello: our hello is queued for the response, and the first bytes go through
 * nghttp2 as if they had just arrived (the hello is checked again there, by the state
 * machine, as in any session). */
static int verified(mesh_session *s)
{
    s->web_gate = 0;
    mesh_decoy_free(s->decoy);
    s->decoy = NULL;
    mesh_h2_skip_acks(s->h2, s->acks_sent);
    int rc = mesh_session_send_hello(s);
    uint8_t *first = s->first;
    size_t n = s->first_len;
    s->first = NULL;
    s->first_len = 0;
    if (rc == MESH_OK)
        rc = mesh_session_io_h2_feed(s, first, n);
    free(first);
    return rc;
}

/* The client's SETTINGS frames nginx would have acked by now. */
static int ack_settings(mesh_session *s, unsigned settings)
{
    uint8_t acks[4 * sizeof SETTINGS_ACK];
    while (s->acks_sent < settings) {
        unsigned k = settings - s->acks_sent;
        if (k > 4)
            k = 4;
        for (unsigned i = 0; i < k; i++)
            memcpy(acks + i * sizeof SETTINGS_ACK, SETTINGS_ACK, sizeof SETTINGS_ACK);
        int rc = mesh_tls_write(s->tls, acks, k * sizeof SETTINGS_ACK);
        if (rc != MESH_OK)
            return rc;
        s->acks_sent += k;
        mesh_decoy_acked(s->decoy, k);
    }
    return s->write_err;
}

/* n more plaintext bytes of the first request: kept, and classified with the rest. */
static int classify(mesh_session *s, const uint8_t *data, size_t n)
{
    uint8_t *f = realloc(s->first, s->first_len + n);
    if (!f)
        return MESH_ERR_NOMEM;
    memcpy(f + s->first_len, data, n);
    s->first = f;
    s->first_len += n;
    size_t look = s->first_len < MESH_FIRSTREQ_MAX_BYTES ? s->first_len : MESH_FIRSTREQ_MAX_BYTES;
    mesh_firstreq_result r;
    int rc = mesh_firstreq_classify(s->first, look, WEB_HELLO_MAX, verify_hello, s, &r);
    if (rc != MESH_OK)
        return rc;
    if (r.verdict == MESH_FIRSTREQ_HELLO)
        return verified(s);
    if (r.verdict == MESH_FIRSTREQ_OTHER) {
        mesh_log(&s->env, MESH_LOG_DEBUG, "session %p: first request to the decoy: %s", (void *)s,
                 r.why);
        engage(s);
        return MESH_OK;
    }
    return ack_settings(s, r.settings);
}

int mesh_session_web_input(mesh_session *s)
{
    uint8_t buf[MESH_TLS_RECORD_MAX];
    for (;;) {
        if (!s->web_gate && !s->decoy_on)
            return mesh_session_io_input(s); /* verified: HTTP/2 mode from here */
        long n = mesh_tls_read(s->tls, buf, sizeof buf);
        if (n <= 0)
            return (int)n;
        int rc = MESH_OK;
        if (s->web_gate)
            rc = classify(s, buf, (size_t)n);
        else if (s->decoy)
            rc = mesh_decoy_write(s->decoy, buf, (size_t)n);
        if (rc != MESH_OK || mesh_session_stopped(s))
            return rc;
    }
}

int mesh_session_web_start(mesh_session *s)
{
    int h2 = mesh_tls_version(s->tls) == 0x0304 &&
             strcmp(mesh_tls_alpn(s->tls), MESH_SESSION_H2_ALPN) == 0;
    const mesh_addr *up = h2 ? &s->cfg.web_upstream_h2 : &s->cfg.web_upstream;
    if (up->family != MESH_AF_NONE) {
        int rc = mesh_decoy_new(&s->decoy, &s->env, up, h2, &DECOY_CBS, s);
        if (rc != MESH_OK)
            mesh_log(&s->env, MESH_LOG_WARN, "session %p: no decoy upstream: %s", (void *)s,
                     mesh_errname(rc));
    }
    if (!h2) {
        engage(s);
        return MESH_OK;
    }
    int rc = mesh_session_io_h2_start(s);
    if (rc == MESH_OK)
        rc = mesh_session_io_h2_flush(s); /* nginx's SETTINGS and WINDOW_UPDATE, one record */
    s->web_gate = rc == MESH_OK;
    return rc;
}
