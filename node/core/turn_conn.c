/* turn_conn.c — the TURN client's data connections (RFC 6062; turn.h): a TCP connection to
 * the server per peer connection, ConnectionBind, then the peer's bytes through a virtual
 * stream of the client's overlay env (this file is its provider). */
#include "core/turn_impl.h"

#include <stdlib.h>
#include <string.h>

/* ---- data connections (RFC 6062) ------------------------------------------------------------ */

void mesh_turn_conn_release(dconn *d)
{
    mesh_turn *t = d->t;
    if (d->bs)
        t->env.ops->stream_close(t->env.obj, d->bs, MESH_CLOSE_ABORT);
    free(d->buf);
    free(d->pend);
    for (size_t i = 0; i < MESH_TURN_MAX_TXNS; i++)
        if (t->tx[i].used && t->tx[i].kind == K_CONNECT && &t->dc[t->tx[i].conn] == d)
            t->tx[i].used = 0;
    memset(d, 0, sizeof *d);
}

/* The connection failed: its virtual stream ends with status (outbound: the consumer's
 * on_closed), the slot is freed. */
void mesh_turn_conn_fail(dconn *d, int status)
{
    if (d->state >= D_TCP && d->state != D_OPEN)
        d->t->st.binds_failed++;
    mesh_stream *vs = d->vs;
    mesh_turn_conn_release(d);
    if (vs)
        mesh_vstream_end(vs, status);
}

static int send_bind(dconn *d)
{
    mesh_turn *t = d->t;
    uint8_t buf[MESH_TURN_RX_MAX];
    size_t len = 0;
    mesh_env_random(&t->env, d->tid, sizeof d->tid);
    mesh_stun_enc e;
    mesh_stun_enc_init(&e, buf, sizeof buf,
                       mesh_stun_type(MESH_STUN_CONNECTION_BIND, MESH_STUN_REQUEST), d->tid);
    mesh_stun_enc_u32(&e, MESH_STUN_A_CONNECTION_ID, d->id);
    mesh_turn_enc_auth(t, &e);
    int rc = mesh_stun_enc_finish(&e, &len);
    if (rc == MESH_OK)
        rc = t->env.ops->stream_write(t->env.obj, d->bs, buf, len);
    if (rc == MESH_OK) {
        t->st.requests++;
        d->deadline = mesh_env_now(&t->env) + t->cfg.timeout;
        mesh_turn_rearm(t);
    }
    return rc;
}

static void dc_on_connected(mesh_stream *s, void *ud)
{
    (void)s;
    dconn *d = ud;
    d->state = D_BINDING;
    d->have = 0;
    int rc = send_bind(d);
    if (rc != MESH_OK)
        mesh_turn_conn_fail(d, rc);
}

static void prov_close(void *pud, int how);

/* Bound: the rest of the bytes (after the answer) are the peer's. */
static void conn_bound(dconn *d, const uint8_t *rest, size_t n)
{
    mesh_turn *t = d->t;
    d->state = D_OPEN;
    d->deadline = 0;
    t->st.binds_ok++;
    uint8_t *pend = d->pend;
    size_t plen = d->plen;
    d->pend = NULL;
    d->plen = 0;
    int rc = MESH_OK;
    if (d->outbound && plen) /* what the consumer wrote while we were binding */
        rc = t->env.ops->stream_write(t->env.obj, d->bs, pend, plen);
    free(pend);
    if (rc == MESH_OK && n)
        rc = mesh_vstream_push(d->vs, rest, n);
    if (rc != MESH_OK) {
        mesh_turn_conn_fail(d, rc);
        return;
    }
    if (d->outbound) {
        mesh_vstream_connected(d->vs);
        return;
    }
    mesh_stream *vs = d->vs;
    if (t->cbs.on_incoming)
        t->cbs.on_incoming(t, vs, &d->peer, t->ud);
    else
        t->env.ops->stream_close(t->env.obj, vs, MESH_CLOSE_ABORT); /* not ours: the overlay's */
}

static const mesh_vstream_provider PROV;

/* The ConnectionBind answer m (decoded from d->buf): 0 = ignored, 1 = resent after 401/438,
 * 2 = d bound or failed (freed). */
static int bind_answer(dconn *d, const mesh_stun_msg *m)
{
    mesh_turn *t = d->t;
    if (m->cls == MESH_STUN_INDICATION || m->cls == MESH_STUN_REQUEST ||
        memcmp(m->tid, d->tid, MESH_STUN_TID_LEN) != 0) {
        t->st.bad_tid++;
        return 0;
    }
    if (m->method != MESH_STUN_CONNECTION_BIND) {
        t->st.unexpected++;
        return 0;
    }
    if (!mesh_turn_response_ok(t, m, t->have_key))
        return 0;
    t->st.responses++;
    if (m->cls == MESH_STUN_ERROR) {
        int code = mesh_turn_error_code(t, m);
        int rc = code == 401 || code == 438 ? mesh_turn_reauth(t, m, code, t->have_key, &d->tries)
                                            : mesh_turn_error_status(code);
        if (rc == 1 && (rc = send_bind(d)) == MESH_OK)
            return 1;
        mesh_turn_conn_fail(d, rc == 1 ? MESH_ERR_AUTH : rc);
        return 2;
    }
    if (!d->outbound) {
        int err = MESH_OK;
        d->vs = mesh_vstream_open(t->v, &PROV, d, 0, &t->relayed, &d->peer, NULL, NULL, &err);
        if (!d->vs) {
            mesh_turn_conn_fail(d, err);
            return 2;
        }
    }
    return 3;
}

/* Bytes on a data connection while its ConnectionBind is answered: one STUN message at a
 * time (answers to ignore, then the answer); the bytes after the success answer are the
 * peer's. A loop, not recursion: a server may send many small messages in one read. */
static void dc_bind_data(dconn *d, const uint8_t *data, size_t len)
{
    mesh_turn *t = d->t;
    while (len) {
        if (!d->buf && !(d->buf = malloc(MESH_TURN_RX_MAX))) {
            mesh_turn_conn_fail(d, MESH_ERR_NOMEM);
            return;
        }
        size_t have0 = d->have;
        size_t n = MESH_TURN_RX_MAX - have0 < len ? MESH_TURN_RX_MAX - have0 : len;
        memcpy(d->buf + have0, data, n);
        d->have += n;
        size_t total = 0;
        int rc = mesh_stun_frame_len(d->buf, d->have, &total);
        if (rc == MESH_ERR_TRUNCATED ||
            (rc == MESH_OK && total > d->have && total <= MESH_TURN_RX_MAX))
            return; /* n == len here: wait for more */
        mesh_stun_msg m;
        if (rc != MESH_OK || total > MESH_TURN_RX_MAX ||
            mesh_stun_decode(&m, d->buf, total) != MESH_OK) {
            t->st.malformed++;
            mesh_turn_conn_fail(d, MESH_ERR_MALFORMED);
            return;
        }
        data += total - have0;
        len -= total - have0;
        d->have = 0;
        int out = bind_answer(d, &m);
        if (out == 2)
            return;
        if (out == 3) {
            free(d->buf);
            d->buf = NULL;
            conn_bound(d, data, len);
            return;
        }
    }
}

static void dc_on_data(mesh_stream *s, const uint8_t *data, size_t len, void *ud)
{
    (void)s;
    dconn *d = ud;
    if (d->state == D_BINDING) {
        dc_bind_data(d, data, len);
        return;
    }
    int rc = d->vs ? mesh_vstream_push(d->vs, data, len) : MESH_OK;
    if (rc != MESH_OK)
        mesh_turn_conn_fail(d, rc);
}

static void dc_on_writable(mesh_stream *s, void *ud)
{
    (void)s;
    dconn *d = ud;
    if (d->state == D_OPEN && d->vs)
        mesh_vstream_drained(d->vs);
}

static void dc_on_closed(mesh_stream *s, int reason, void *ud)
{
    (void)s;
    dconn *d = ud;
    d->bs = NULL; /* released by the env */
    mesh_turn_conn_fail(d, d->state == D_OPEN  ? reason
                           : reason == MESH_OK ? MESH_ERR_CLOSED
                                               : reason);
}

static const mesh_stream_cbs DC_CBS = {dc_on_connected, dc_on_data, dc_on_writable, dc_on_closed};

void mesh_turn_conn_open_tcp(dconn *d)
{
    mesh_turn *t = d->t;
    int err = MESH_OK;
    d->state = D_TCP;
    d->deadline = mesh_env_now(&t->env) + t->cfg.timeout;
    d->bs = t->env.ops->connect(t->env.obj, &t->cfg.server, &DC_CBS, d, &err);
    if (!d->bs) {
        mesh_turn_conn_fail(d, err != MESH_OK ? err : MESH_ERR_INTERNAL);
        return;
    }
    mesh_turn_rearm(t);
}

/* The vstream provider: the consumer's bytes go to the data connection (held until bound). */
static int prov_write(void *pud, const uint8_t *data, size_t len)
{
    dconn *d = pud;
    mesh_turn *t = d->t;
    if (d->state == D_OPEN)
        return t->env.ops->stream_write(t->env.obj, d->bs, data, len) == MESH_OK ? MESH_OK
                                                                                 : MESH_ERR_CLOSED;
    if (!d->outbound || len > MESH_TURN_MAX_PENDING - d->plen)
        return MESH_ERR_CLOSED; /* an accepted stream is handed out bound; bounded */
    uint8_t *nb = realloc(d->pend, d->plen + len);
    if (!nb)
        return MESH_ERR_CLOSED;
    memcpy(nb + d->plen, data, len);
    d->pend = nb;
    d->plen += len;
    return MESH_OK;
}

static size_t prov_pending(void *pud)
{
    dconn *d = pud;
    if (d->state != D_OPEN)
        return d->plen + 1; /* not sent yet: never "drained" before bound */
    return d->t->env.ops->stream_pending(d->t->env.obj, d->bs);
}

static void prov_close(void *pud, int how)
{
    dconn *d = pud;
    mesh_turn *t = d->t;
    d->vs = NULL;
    if (d->bs && d->state == D_OPEN) {
        t->env.ops->stream_close(t->env.obj, d->bs, how);
        d->bs = NULL;
    }
    mesh_turn_conn_release(d);
}

static const mesh_vstream_provider PROV = {prov_write, prov_pending, NULL, prov_close};

mesh_stream *mesh_turn_connect(mesh_turn *t, const mesh_addr *peer, const mesh_stream_cbs *cbs,
                               void *ud, int *err)
{
    int e = MESH_OK;
    dconn *d = NULL;
    if (!t || !peer || !cbs || !err)
        e = MESH_ERR_INVAL;
    else if (t->state != S_ALLOCATED)
        e = MESH_ERR_STATE;
    for (size_t i = 0; e == MESH_OK && i < MESH_TURN_MAX_CONNS && !d; i++)
        if (t->dc[i].state == D_FREE)
            d = &t->dc[i];
    if (e == MESH_OK && !d)
        e = MESH_ERR_LIMIT;
    if (e == MESH_OK)
        e = mesh_turn_permit(t, peer);
    if (e != MESH_OK) {
        if (err)
            *err = e;
        return NULL;
    }
    memset(d, 0, sizeof *d);
    d->t = t;
    d->outbound = 1;
    d->peer = *peer;
    d->state = D_CONNECT_REQ;
    d->vs = mesh_vstream_open(t->v, &PROV, d, 1, &t->relayed, peer, cbs, ud, err);
    if (!d->vs) {
        memset(d, 0, sizeof *d);
        return NULL;
    }
    t->st.connects++;
    mesh_stream *vs = d->vs;
    if ((e = mesh_turn_start_txn(t, K_CONNECT, (int)(d - t->dc))) != MESH_OK)
        mesh_turn_conn_fail(d, e); /* reported later through on_closed (vstream rule 1) */
    return vs;
}
