/* fuzz_session_rx.c — a session's receive path after TLS, as production runs it: plaintext
 * the peer's TLS carries goes through real TLS records into a real server session (framed
 * mode: frame.c in pull mode, pad, the AppData view or protobuf-c, then the state machine's
 * dispatch), and the outcome is checked against a reference reading of the same plaintext
 * (frame.c in push mode, mesh_session_frame_consume, mesh_hello_consume): the envelopes the
 * application gets, re-encoded, are exactly the reference's, and the session is closed with
 * exactly the reason the reference finds (an oversize prefix, a bad block or envelope, a
 * second hello, the peer's Goodbye) or stays up when it finds none.
 *
 * Input: byte 0 says how, the rest is the plaintext. Bit 7 set: the session is fresh and
 * still AUTHENTICATING, so the first envelope must be the client's hello, signed for this TLS
 * session's exporter (the pair is deterministic, so the seeds carry valid hellos). Bit 7
 * clear: the session is CONNECTED; a pair left connected with nothing half-read by the last
 * input is reused, any other is made anew. Anew means mesh_pair_renew: clones of one
 * handshaken connection (mesh_session_accept_clone), so an input costs no handshake (which
 * made it 15 times slower) yet gets a session exactly as fresh, exporter and hello included. Bits
 * 0-3: the client's TLS writes are at most 1 << bits bytes (record boundaries); bits 4-6: the
 * session's input is cut into pieces of 1 << (2 * bits + 1) bytes (0: whole); both raised
 * as needed to keep an input within RECORDS_MAX records and PIECES_MAX pieces. Seeds:
 * tests/fuzz/corpus/fuzz_session_rx/ (MESH_FUZZ_SEEDS=DIR writes them anew). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/frame.h"
#include "core/session.h"
#include "core/wire.h"
#include "fuzz_util.h"
#include "session_pair.h"

enum {
    MODE_AUTH = 0x80,
    /* Per input at most about this many TLS records and delivery pieces: a 9 KiB input in
     * 1-byte records cost 2 ms, a hundred short ones as much; boundaries at every byte are
     * still reached by the short inputs, which libFuzzer runs most. */
    RECORDS_MAX = 64,
    PIECES_MAX = 256,
};

/* Every input that closes the session costs a new session and TLS connection, whose
 * allocations under ASan's default 256 MiB quarantine land on fresh pages each time: a 32 MiB
 * quarantine is faster and still catches a use after free within that much allocation. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "quarantine_size_mb=32";
}

/* What the session should make of the plaintext. */
typedef struct ref {
    const mesh_pair *p;
    int authenticating;
    int ended, reason; /* the reason the session closes with, once ended */
    size_t nmsgs;      /* envelopes for the application */
    mesh_test_buf *msgs;
} ref;

static int ref_end(ref *r, int reason)
{
    r->ended = 1;
    r->reason = reason;
    return MESH_ERR_CLOSED; /* stop reading: the session reads no further either */
}

static void ref_message(ref *r, const mesh_envelope *e)
{
    uint8_t *w = NULL;
    size_t wlen = 0;
    if (mesh_wire_encode(e, &w, &wlen) != MESH_OK)
        __builtin_trap(); /* decoded but not encodable: the application would see garbage */
    if (r->nmsgs < MESH_PAIR_MAX_MSGS) {
        r->msgs[r->nmsgs].len = 0;
        mesh_test_buf_add(&r->msgs[r->nmsgs], w, wlen);
    }
    r->nmsgs++;
    free(w);
}

/* One envelope as dispatch treats it; returns MESH_OK or ref_end's stop. */
static int ref_envelope(ref *r, const mesh_envelope *e)
{
    if (r->authenticating) {
        if (e->body_case == MESHARA__WIRE__ENVELOPE__BODY_GOODBYE)
            return ref_end(r, MESH_ERR_CLOSED); /* refused before authentication */
        uint8_t key[MESH_PUBKEY_LEN];
        int rc = mesh_hello_consume(e, MESH_SESSION_ROLE_CLIENT, r->p->exporter, NULL, key);
        if (rc != MESH_OK)
            return ref_end(r, rc);
        r->authenticating = 0;
        return MESH_OK;
    }
    switch (e->body_case) {
    case MESHARA__WIRE__ENVELOPE__BODY_HELLO:
        return ref_end(r, MESH_ERR_PROTOCOL);
    case MESHARA__WIRE__ENVELOPE__BODY_HEARTBEAT:
        return MESH_OK;
    case MESHARA__WIRE__ENVELOPE__BODY_GOODBYE:
        return ref_end(r, MESH_OK); /* orderly: the peer was authenticated */
    default:
        ref_message(r, e);
        return MESH_OK;
    }
}

static int ref_frame(void *ud, const uint8_t *payload, size_t len)
{
    ref *r = ud;
    mesh_envelope *e = NULL;
    int rc = mesh_session_frame_consume(payload, len, &e);
    if (rc != MESH_OK)
        return ref_end(r, rc);
    rc = ref_envelope(r, e);
    mesh_wire_free(e);
    return rc;
}

static mesh_pair g_pair;
static int g_live; /* g_pair is CONNECTED with nothing half-read */
static mesh_test_buf g_ref_msgs[MESH_PAIR_MAX_MSGS];

static int pair_for(int auth)
{
    if (g_live && !auth)
        return MESH_OK;
    g_live = 0;
    return g_pair.ctx_s ? mesh_pair_renew(&g_pair, 0, !auth) : mesh_pair_start(&g_pair, 0, !auth);
}

static void check(const ref *r, size_t partial)
{
    mesh_pair *p = &g_pair;
    mesh_session_state st = mesh_session_get_state(p->srv);
    g_live = 0;
    if (p->reencode_error || p->msgs_total != r->nmsgs)
        __builtin_trap();
    for (size_t i = 0; i < p->nmsgs; i++)
        if (p->msgs[i].len != r->msgs[i].len ||
            memcmp(p->msgs[i].b, r->msgs[i].b, p->msgs[i].len) != 0)
            __builtin_trap();
    if (r->ended) {
        if (st != MESH_SESSION_CLOSING || mesh_session_reason(p->srv) != r->reason)
            __builtin_trap();
        return;
    }
    mesh_session_state want =
        r->authenticating ? MESH_SESSION_AUTHENTICATING : MESH_SESSION_CONNECTED;
    if (st != want)
        __builtin_trap();
    g_live = st == MESH_SESSION_CONNECTED && partial == 0;
}

/* ---- seeds ------------------------------------------------------------------------------- */

static void add_frame(mesh_test_buf *b, const mesh_envelope *e)
{
    uint8_t *f = NULL;
    size_t flen = 0;
    if (mesh_session_frame_create(e, 0, &f, &flen) != MESH_OK)
        exit(1);
    mesh_test_buf_add(b, f, flen);
    free(f);
}

static void add_data(mesh_test_buf *b, uint64_t id, size_t len)
{
    static uint8_t payload[5000];
    Meshara__Wire__AppData d = MESHARA__WIRE__APP_DATA__INIT;
    d.msg_id = id;
    d.payload = (ProtobufCBinaryData){len, payload};
    mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
    e.body_case = MESHARA__WIRE__ENVELOPE__BODY_DATA;
    e.data = &d;
    add_frame(b, &e);
}

static void add_heartbeat(mesh_test_buf *b, int reply)
{
    Meshara__Wire__Heartbeat hb = MESHARA__WIRE__HEARTBEAT__INIT;
    hb.seq = 1;
    hb.reply = reply;
    mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
    e.body_case = MESHARA__WIRE__ENVELOPE__BODY_HEARTBEAT;
    e.heartbeat = &hb;
    add_frame(b, &e);
}

static void add_goodbye(mesh_test_buf *b)
{
    Meshara__Wire__Goodbye g = MESHARA__WIRE__GOODBYE__INIT;
    mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
    e.body_case = MESHARA__WIRE__ENVELOPE__BODY_GOODBYE;
    e.goodbye = &g;
    add_frame(b, &e);
}

static void add_hello(mesh_test_buf *b, const mesh_pair *p)
{
    uint8_t *f = NULL;
    size_t flen = 0;
    if (mesh_hello_create(p->id_c, MESH_SESSION_ROLE_CLIENT, p->exporter, NULL, &f, &flen) !=
        MESH_OK)
        exit(1);
    mesh_test_buf_add(b, f, flen);
    free(f);
}

static void write_seed(const char *dir, const char *name, uint8_t how, const mesh_test_buf *b)
{
    mesh_fuzz_seed(dir, name, &how, 1, b->b, b->len);
}

static void write_seeds(const char *dir)
{
    mesh_pair p;
    if (mesh_pair_start(&p, 0, 0) != MESH_OK)
        exit(1);
    mesh_test_buf b = {0};
    add_data(&b, 1, 10), add_heartbeat(&b, 0), add_data(&b, 2, 5000), add_heartbeat(&b, 1);
    add_data(&b, 3, 0);
    write_seed(dir, "connected_data", 14, &b); /* whole records, whole input */
    write_seed(dir, "connected_data_pieces", 0x38 | 3, &b);
    b.len = 0;
    add_data(&b, 7, 100), add_goodbye(&b), add_data(&b, 8, 100);
    write_seed(dir, "connected_goodbye", 14, &b);
    b.len = 0;
    add_data(&b, 9, 100), add_hello(&b, &p);
    write_seed(dir, "connected_second_hello", 14, &b);
    b.len = 0;
    add_data(&b, 10, 4000);
    b.len -= 1000; /* ends mid-frame */
    write_seed(dir, "connected_partial", 0x10 | 9, &b);
    b.len = 0;
    mesh_test_buf_add(&b, "\x7f\xff\xff\xff", 4);
    write_seed(dir, "connected_oversize", 14, &b);
    b.len = 0;
    add_hello(&b, &p), add_data(&b, 11, 50), add_heartbeat(&b, 0);
    write_seed(dir, "auth_hello_data", MODE_AUTH | 14, &b);
    /* The hello is only worth its bytes if a new connection has the same exporter. */
    if (mesh_pair_reconnect(&p, 0, 0) != MESH_OK ||
        mesh_pair_write(&p, b.b, b.len, MESH_TLS_RECORD_MAX) != MESH_OK)
        exit(1);
    mesh_pair_pump(&p, 0);
    if (mesh_session_get_state(p.srv) != MESH_SESSION_CONNECTED || p.msgs_total != 1) {
        fprintf(stderr, "fuzz_session_rx: the seed hello does not verify on a new connection\n");
        exit(1);
    }
    /* and on a renewed one (what the target makes per input) */
    b.len = 0;
    add_hello(&b, &p);
    if (mesh_pair_renew(&p, 0, 0) != MESH_OK ||
        mesh_pair_write(&p, b.b, b.len, MESH_TLS_RECORD_MAX) != MESH_OK)
        exit(1);
    mesh_pair_pump(&p, 0);
    if (mesh_session_get_state(p.srv) != MESH_SESSION_CONNECTED) {
        fprintf(stderr, "fuzz_session_rx: the seed hello does not verify on a renewed pair\n");
        exit(1);
    }
    b.len = 0;
    add_data(&b, 12, 50);
    write_seed(dir, "auth_data_first", MODE_AUTH | 14, &b);
    b.len = 0;
    add_goodbye(&b);
    write_seed(dir, "auth_goodbye", MODE_AUTH | 5, &b);
    free(b.b);
    mesh_pair_stop(&p);
}

MESH_FUZZ_SEED_WRITER(write_seeds)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int auth = data[0] & MODE_AUTH;
    size_t chunk = (size_t)1 << (data[0] & 15), piece = (data[0] >> 4) & 7;
    piece = piece ? (size_t)1 << (2 * piece + 1) : 0;
    if (pair_for(auth) != MESH_OK)
        __builtin_trap(); /* the handshake itself must work every time */
    mesh_pair *p = &g_pair;
    p->nmsgs = p->msgs_total = 0;
    ref r = {.p = p, .authenticating = auth != 0, .msgs = g_ref_msgs};
    mesh_frame_dec dec;
    mesh_frame_dec_init(&dec, MESH_FRAME_DEFAULT_MAX); /* the session's default max_frame */
    int rc = mesh_frame_feed(&dec, data + 1, size - 1, ref_frame, &r);
    if (rc != MESH_OK && !r.ended)
        ref_end(&r, rc); /* the decoder refused a prefix */
    size_t partial = r.ended ? 0 : mesh_frame_partial(&dec);
    mesh_frame_dec_free(&dec);
    if (chunk * RECORDS_MAX < size)
        chunk = (size + RECORDS_MAX - 1) / RECORDS_MAX;
    if (chunk > MESH_TLS_RECORD_MAX)
        chunk = MESH_TLS_RECORD_MAX;
    if (piece && piece * PIECES_MAX < 2 * size) /* ciphertext: at most about twice the input */
        piece = 2 * size / PIECES_MAX;
    if (mesh_pair_write(p, data + 1, size - 1, chunk) != MESH_OK)
        __builtin_trap();
    mesh_pair_pump(p, piece);
    check(&r, partial);
    return 0;
}
