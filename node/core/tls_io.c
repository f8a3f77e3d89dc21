/* tls_io.c — inside the TLS module (tls.h): the bytes of a connection. Ciphertext fed,
 * lent and kept; the callback BIOs through which OpenSSL reads that input and writes its
 * output to the connection's out_fn; the key-log callback that hands over the traffic
 * secrets. The handshake and the records: tls.c. */
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>

#include "core/tls_ctx.h"

enum { TLS_IN_FIRST_CAP = 4096 }; /* first input buffer (a ClientHello fits); doubles as needed */

/* OpenSSL's key-log lines for the traffic secrets: "LABEL <client random> <secret>" in hex. */
#define KEYLOG_CLIENT_SECRET "CLIENT_TRAFFIC_SECRET_0 "
#define KEYLOG_SERVER_SECRET "SERVER_TRAFFIC_SECRET_0 "
enum { KEYLOG_LABEL_LEN = sizeof KEYLOG_CLIENT_SECRET - 1 };
_Static_assert(sizeof KEYLOG_SERVER_SECRET - 1 == KEYLOG_LABEL_LEN, "both labels one length");

static int bio_out_write(BIO *b, const char *data, int len)
{
    mesh_tls *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len > 0)
        t->out_fn(t->out_ud, (const uint8_t *)data, (size_t)len);
    return len;
}

/* The traffic secrets, as OpenSSL derives them: "CLIENT_TRAFFIC_SECRET_0 <random> <hex>" and
 * the server's. The only lines kept; tls.c (switch_records) turns them into keys and wipes them. */
void mesh_tls_keylog(const SSL *ssl, const char *line)
{
    mesh_tls *t = SSL_get_app_data((SSL *)ssl);
    int which = strncmp(line, KEYLOG_CLIENT_SECRET, KEYLOG_LABEL_LEN) == 0   ? 0
                : strncmp(line, KEYLOG_SERVER_SECRET, KEYLOG_LABEL_LEN) == 0 ? 1
                                                                             : -1;
    if (!t || which < 0)
        return;
    const char *hex = strchr(line + KEYLOG_LABEL_LEN, ' '); /* after the client random */
    size_t n = 0;
    for (hex = hex ? hex + 1 : ""; hex[0] && hex[1] && n < MESH_REC_SECRET_MAX; hex += 2) {
        int hi = OPENSSL_hexchar2int((unsigned char)hex[0]);
        int lo = OPENSSL_hexchar2int((unsigned char)hex[1]);
        if (hi < 0 || lo < 0)
            break;
        t->secret[which][n++] = (uint8_t)(hi << 4 | lo);
    }
    t->secret_len[which] = hex[0] ? 0 : n; /* anything unparsed: no secret */
}

size_t mesh_tls_in_held(const mesh_tls *t)
{
    return (t->in_len - t->in_off) + (t->lent_len - t->lent_off);
}

int mesh_tls_in_append(mesh_tls *t, const uint8_t *data, size_t len)
{
    size_t held = t->in_len - t->in_off;
    if (held + len > MESH_TLS_IN_MAX)
        return MESH_ERR_LIMIT;
    if (t->in_off && held + len > t->in_cap - t->in_off) { /* compact first */
        memmove(t->in, t->in + t->in_off, held);
        t->in_off = 0;
        t->in_len = held;
    }
    if (t->in_len + len > t->in_cap) {
        size_t cap = t->in_cap ? t->in_cap : TLS_IN_FIRST_CAP;
        while (cap < t->in_len + len)
            cap *= 2;
        uint8_t *n = realloc(t->in, cap);
        if (!n)
            return MESH_ERR_NOMEM;
        t->in = n;
        t->in_cap = cap;
    }
    memcpy(t->in + t->in_len, data, len);
    t->in_len += len;
    return MESH_OK;
}

/* OpenSSL's input (the handshake): the owned bytes first, then the lent ones. */
static int bio_in_read(BIO *b, char *data, int len)
{
    mesh_tls *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    const uint8_t *src;
    size_t avail;
    int from_in = t->in_len > t->in_off; /* (t->in may be NULL: no pointer arithmetic on it) */
    if (from_in) {
        src = t->in + t->in_off;
        avail = t->in_len - t->in_off;
    } else {
        src = t->lent ? t->lent + t->lent_off : NULL;
        avail = t->lent_len - t->lent_off;
    }
    if (avail == 0) {
        BIO_set_retry_read(b);
        return -1;
    }
    size_t n = len > 0 && (size_t)len < avail ? (size_t)len : avail;
    memcpy(data, src, n);
    if (from_in) {
        t->in_off += n;
        if (t->in_off == t->in_len)
            t->in_off = t->in_len = 0; /* kept: mesh_tls_in_release() decides */
    } else {
        t->lent_off += n;
    }
    return (int)n;
}

/* Free the buffers once nothing at all is held: while a record is half there (in OpenSSL, in
 * our buffer, or among lent bytes about to be kept) more ciphertext is on its way and they are
 * about to be needed again (freeing and refilling them on every input event of a bulk stream
 * cost page faults). An idle connection holds none. */
void mesh_tls_in_release(mesh_tls *t)
{
    if (mesh_tls_in_held(t) || t->pt_len > t->pt_off || (t->ssl && SSL_has_pending(t->ssl)))
        return;
    if (t->in && t->in_cap > (size_t)MESH_TLS_IN_KEEP) {
        free(t->in);
        t->in = NULL;
        t->in_cap = t->in_off = t->in_len = 0;
    }
    free(t->pt);
    t->pt = NULL;
    t->pt_off = t->pt_len = 0;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b, (void)num, (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH: /* out_fn already took every byte */
        return 1;
    case BIO_CTRL_PENDING:
    case BIO_CTRL_WPENDING:
        return 0;
    default:
        return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

/* The type index is a fixed private number, not BIO_get_new_index(): that is a process-wide
 * counter, and nothing here looks BIOs up by type. */
#define MESH_TLS_BIO_TYPE (0xe0 | BIO_TYPE_SOURCE_SINK)

/* Callback BIOs: OpenSSL writes the handshake through bio_out_write to out_fn and reads it
 * from our input buffers through bio_in_read. */
int mesh_tls_bio_methods(BIO_METHOD **out, BIO_METHOD **in)
{
    *out = BIO_meth_new(MESH_TLS_BIO_TYPE, "mesh-tls-out");
    *in = BIO_meth_new(MESH_TLS_BIO_TYPE, "mesh-tls-in");
    if (!*out || !*in || !BIO_meth_set_write(*out, bio_out_write) ||
        !BIO_meth_set_ctrl(*out, bio_ctrl) || !BIO_meth_set_create(*out, bio_create) ||
        !BIO_meth_set_read(*in, bio_in_read) || !BIO_meth_set_ctrl(*in, bio_ctrl) ||
        !BIO_meth_set_create(*in, bio_create))
        return MESH_ERR_NOMEM;
    return MESH_OK;
}

int mesh_tls_feed(mesh_tls *t, const uint8_t *data, size_t len)
{
    if (t->lent)
        return MESH_ERR_STATE;
    return len ? mesh_tls_in_append(t, data, len) : MESH_OK;
}

int mesh_tls_lend(mesh_tls *t, const uint8_t *data, size_t len)
{
    if (t->lent)
        return MESH_ERR_STATE;
    if ((t->in_len - t->in_off) + len > MESH_TLS_IN_MAX)
        return MESH_ERR_LIMIT;
    t->lent = data;
    t->lent_off = 0;
    t->lent_len = len;
    return MESH_OK;
}

int mesh_tls_keep(mesh_tls *t)
{
    if (!t->lent)
        return MESH_OK;
    const uint8_t *rest = t->lent + t->lent_off;
    size_t n = t->lent_len - t->lent_off;
    t->lent = NULL;
    t->lent_off = t->lent_len = 0;
    int rc = n ? mesh_tls_in_append(t, rest, n) : MESH_OK;
    mesh_tls_in_release(t);
    return rc;
}
