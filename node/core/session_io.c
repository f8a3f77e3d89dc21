/* session_io.c — a session's bytes path: envelopes to TLS plaintext and back, in framed mode
 * and in HTTP/2 mode, and the TLS sink that hands records to the env stream (session_io.h;
 * the state machine is session.c).
 *
 * Copies (throughput: a session should move bytes at a good fraction of AES-GCM speed).
 *  - Receiving (framed mode): the frame decoder (frame.h) in pull mode. TLS opens its records
 *    straight into the decoder's buffer, each read stopping at the end of the frame being
 *    assembled, so a frame of any size is contiguous there and is handed out in place — no
 *    reassembly copy. AppData envelopes are then viewed in place (appdata.h) instead of
 *    protobuf-c copying their payload. The buffer is kept while a frame or a TLS record is
 *    unfinished and freed when an input event leaves neither (an idle session holds none).
 *  - Sending AppData (framed mode): the frame is never built: mesh_appdata_write streams it
 *    into TLS, whole records' worth of the payload straight from the caller's memory. Other
 *    envelopes are small and take the plain path (mesh_session_frame_create).
 */
#include "core/session_io.h"

#include <stdlib.h>
#include <string.h>

#include "core/appdata.h"
#include "core/pad.h"

/* ---- builders and parsers (session.h) ---------------------------------------------------- */

int mesh_session_frame_create(const mesh_envelope *e, size_t max_frame, uint8_t **out,
                              size_t *outlen)
{
    if (!e || !out || !outlen)
        return MESH_ERR_INVAL;
    if (max_frame == 0)
        max_frame = MESH_FRAME_DEFAULT_MAX;
    uint8_t *wire = NULL;
    size_t wlen = 0;
    int rc = mesh_wire_encode(e, &wire, &wlen);
    if (rc != MESH_OK)
        return rc;
    size_t padded = mesh_pad_size(wlen);
    uint8_t *buf = NULL;
    if (padded == 0 || padded > max_frame) {
        rc = MESH_ERR_TOO_BIG;
        goto out;
    }
    buf = malloc(MESH_FRAME_HDR_LEN + padded);
    if (!buf) {
        rc = MESH_ERR_NOMEM;
        goto out;
    }
    long n = mesh_pad_encode(wire, wlen, buf + MESH_FRAME_HDR_LEN, padded);
    if (n < 0 || (size_t)n != padded) {
        rc = n < 0 ? (int)n : MESH_ERR_INTERNAL;
        goto out;
    }
    if ((rc = mesh_frame_header(buf, padded, max_frame)) != MESH_OK)
        goto out;
    *out = buf;
    *outlen = MESH_FRAME_HDR_LEN + padded;
    buf = NULL;
out:
    free(buf);
    free(wire);
    return rc;
}

int mesh_session_frame_consume(const uint8_t *payload, size_t len, mesh_envelope **out)
{
    const uint8_t *body = NULL;
    size_t blen = 0;
    int rc = mesh_pad_decode(payload, len, &body, &blen);
    if (rc != MESH_OK)
        return rc;
    return mesh_wire_decode(body, blen, out);
}

/* ---- output ------------------------------------------------------------------------------ */

/* len bytes of records handed to the driver with result rc: counted, or the write error kept. */
static void sent(mesh_session *s, size_t len, int rc)
{
    if (rc != MESH_OK) {
        s->write_err = rc;
    } else if (len) {
        s->st.bytes_sent += len;
        s->st.last_sent_at = mesh_session_now(s);
    }
}

void mesh_session_io_tls_out(void *ud, const uint8_t *data, size_t len)
{
    mesh_session *s = ud;
    if (!s->stream || s->write_err)
        return;
    sent(s, len, s->env.ops->stream_write(s->env.obj, s->stream, data, len));
}

/* Records sealed in the driver's memory (env stream_reserve), when the driver offers it. */
uint8_t *mesh_session_io_tls_reserve(void *ud, size_t len)
{
    mesh_session *s = ud;
    if (!s->stream || s->write_err)
        return NULL;
    return s->env.ops->stream_reserve(s->env.obj, s->stream, len);
}

void mesh_session_io_tls_commit(void *ud, size_t len)
{
    mesh_session *s = ud;
    sent(s, len, s->env.ops->stream_commit(s->env.obj, s->stream, len));
}

int mesh_session_io_h2_flush(mesh_session *s)
{
    const uint8_t *d = NULL;
    long n;
    while ((n = mesh_h2_pull(s->h2, &d)) > 0) {
        int rc = mesh_tls_write(s->tls, d, (size_t)n);
        if (rc != MESH_OK)
            return rc;
    }
    return n < 0 ? (int)n : s->write_err;
}

/* A frame went to TLS with result rc: a broken stream wins, a whole one is counted. */
static int frame_sent(mesh_session *s, int rc)
{
    if (rc == MESH_OK && s->write_err)
        rc = s->write_err;
    if (rc == MESH_OK)
        s->st.msgs_sent++;
    return rc;
}

int mesh_session_io_write_frame(mesh_session *s, const uint8_t *frame, size_t len)
{
    int rc;
    if (s->h2) {
        const uint8_t *body = frame + MESH_FRAME_HDR_LEN;
        size_t blen = len - MESH_FRAME_HDR_LEN;
        /* The web profile sends the envelope bare: nghttp2 pads the DATA frames instead of
         * pad.h's buckets (a layout no web server's bodies have). */
        if (s->h2_web && (rc = mesh_pad_decode(body, blen, &body, &blen)) != MESH_OK)
            return rc;
        rc = mesh_h2_send(s->h2, body, blen);
        if (rc == MESH_OK && !s->in_h2)
            rc = mesh_session_io_h2_flush(s);
    } else {
        rc = mesh_tls_write(s->tls, frame, len);
    }
    return frame_sent(s, rc);
}

static int tls_write_cb(void *ctx, const uint8_t *data, size_t len)
{
    mesh_session *s = ctx;
    return mesh_tls_write(s->tls, data, len);
}

int mesh_session_io_send(mesh_session *s, const mesh_envelope *e)
{
    if (!s->h2 && mesh_appdata_is_plain(e)) {
        /* Unit = one record's plaintext: the records are those of one write of the frame. */
        size_t written = 0;
        int rc =
            mesh_appdata_write(e, s->cfg.max_frame, MESH_TLS_RECORD_MAX, tls_write_cb, s, &written);
        if (rc == MESH_ERR_NOMEM && written > 0)
            rc = MESH_ERR_TLS; /* part of the frame went out: not "nothing sent" */
        return frame_sent(s, rc);
    }
    uint8_t *f = NULL;
    size_t flen = 0;
    int rc = mesh_session_frame_create(e, s->cfg.max_frame, &f, &flen);
    if (rc != MESH_OK)
        return rc;
    rc = mesh_session_io_write_frame(s, f, flen);
    free(f);
    return rc;
}

/* ---- input ------------------------------------------------------------------------------- */

/* One frame's payload (framed mode) or HTTP/2 message: the padded envelope. A non-OK return
 * ends the input. */
static int on_frame(void *ud, const uint8_t *payload, size_t len)
{
    mesh_session *s = ud;
    if (s->close_after_h2)
        return MESH_OK; /* closed inside nghttp2: later messages are dropped, the close waits */
    const uint8_t *body = payload;
    size_t blen = len;
    int rc = s->h2_web ? MESH_OK : mesh_pad_decode(payload, len, &body, &blen);
    if (rc != MESH_OK)
        return rc;
    mesh_envelope view, *e = &view;
    Meshara__Wire__AppData data;
    if (!mesh_appdata_view(body, blen, &view, &data) &&
        (rc = mesh_wire_decode(body, blen, &e)) != MESH_OK)
        return rc;
    s->st.msgs_received++;
    rc = mesh_session_dispatch(s, e);
    if (e != &view)
        mesh_wire_free(e);
    if (rc == MESH_OK && mesh_session_stopped(s) && !s->close_after_h2)
        rc = MESH_ERR_CLOSED; /* stop feeding: the session is going away */
    return rc;
}

int mesh_session_io_h2_start(mesh_session *s)
{
    static const mesh_h2_cbs cbs = {.on_message = on_frame,
                                    .on_ping_ack = mesh_session_live_ping_ack};
    s->h2_web = mesh_tls_ctx_profile(s->tls_ctx) == MESH_PROFILE_WEB;
    int rc = s->h2_web ? mesh_h2_new_web(&s->h2, !s->is_client, s->cfg.max_frame, &cbs, s)
                       : mesh_h2_new(&s->h2, !s->is_client, s->cfg.max_frame, &cbs, s);
    if (rc == MESH_OK && s->h2_web)
        rc = mesh_h2_set_padding(s->h2, &s->env, MESH_SESSION_WEB_PAD_MAX);
    if (rc == MESH_OK && s->is_client)
        rc = mesh_h2_set_authority(s->h2, mesh_tls_server_name(s->tls));
    return rc;
}

size_t mesh_session_io_partial(const mesh_session *s)
{
    return mesh_frame_partial(&s->rx);
}

/* While a bulk stream is mid-record, the next input is coming and needs a buffer as large:
 * freeing and refilling it then cost page faults on every input event. */
void mesh_session_io_trim(mesh_session *s)
{
    if (!s->tls || mesh_tls_partial(s->tls) == 0)
        mesh_frame_trim(&s->rx);
}

/* Framed mode: every complete frame held goes out in place, then TLS opens more plaintext
 * into the decoder's buffer — up to the end of the frame being assembled once its length is
 * known, else up to a record. */
static int framed_input(mesh_session *s)
{
    for (;;) {
        const uint8_t *f = NULL;
        size_t len = 0;
        int rc;
        while ((rc = mesh_frame_next(&s->rx, &f, &len)) == MESH_OK)
            if ((rc = on_frame(s, f, len)) != MESH_OK)
                return rc;
        if (rc != MESH_ERR_AGAIN)
            return rc;
        uint8_t *space = NULL;
        size_t room = 0;
        if ((rc = mesh_frame_reserve(&s->rx, MESH_TLS_RECORD_MAX, &space, &room)) != MESH_OK)
            return rc;
        long n = mesh_tls_read(s->tls, space, room);
        if (n <= 0)
            return (int)n;
        mesh_frame_commit(&s->rx, (size_t)n);
    }
}

/* HTTP/2 mode: plaintext through nghttp2 (which delimits the messages), then whatever it
 * wants to send. Returns like framed_input; a GOAWAY without error counts as close_notify. */
int mesh_session_io_h2_feed(mesh_session *s, const uint8_t *data, size_t len)
{
    s->in_h2 = 1;
    int rc = mesh_h2_recv(s->h2, data, len);
    s->in_h2 = 0;
    if (s->close_after_h2) { /* ended inside: flush, Goodbye, close_notify, FIN */
        s->close_after_h2 = 0;
        if (s->stream && !s->write_err)
            (void)mesh_session_io_h2_flush(s);
        mesh_session_release_stream(s, 0, 1); /* HTTP/2 input runs only once authenticating */
        return MESH_OK;
    }
    if (!mesh_session_stopped(s) && rc == MESH_OK)
        rc = mesh_session_io_h2_flush(s); /* answers, window updates, what callbacks queued */
    return rc;
}

static int h2_input(mesh_session *s)
{
    uint8_t buf[MESH_TLS_RECORD_MAX];
    for (;;) {
        long n = mesh_tls_read(s->tls, buf, sizeof buf);
        if (n <= 0)
            return (int)n;
        int rc = mesh_session_io_h2_feed(s, buf, (size_t)n);
        if (rc != MESH_OK || mesh_session_stopped(s))
            return rc;
    }
}

int mesh_session_io_input(mesh_session *s)
{
    if (s->web_gate || s->decoy_on)
        return mesh_session_web_input(s);
    return s->h2 ? h2_input(s) : framed_input(s);
}
