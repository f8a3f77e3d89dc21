/* fuzz_relay.c — relay control messages on arbitrary bytes, through the one envelope decoder
 * (wire.c) and into both sides that consume them: a relay service and a relay end, each set
 * up with a live reservation and an open circuit (ids 1 and MESH_RELAY_ID_RELAY | 1) so the
 * fuzzed message can hit them. Never a crash or a leak; only documented codes; an accepted
 * Relay encodes and decodes again to the same kind; what the service and the end send in
 * answer encodes (the receiver would accept it).
 *
 * The env is a stub: a clock stuck at 0, timers that never fire (expiry paths are the unit
 * tests'), no streams needed by the service; the end's virtual streams only queue. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/relay.h"
#include "core/relay_end.h"
#include "core/wire.h"

static mesh_time f_now(void *obj)
{
    (void)obj;
    return 0;
}
static void f_random(void *obj, uint8_t *buf, size_t len)
{
    (void)obj;
    memset(buf, 0, len);
}
static void f_log(void *obj, int level, const char *msg)
{
    (void)obj, (void)level, (void)msg;
}
static mesh_timer *f_timer_new(void *obj, mesh_timer_cb cb, void *ud)
{
    (void)obj, (void)cb, (void)ud;
    return malloc(1); /* a distinct handle; never fires */
}
static void f_timer_set(void *obj, mesh_timer *t, mesh_time when)
{
    (void)obj, (void)t, (void)when;
}
static void f_timer_stop(void *obj, mesh_timer *t)
{
    (void)obj, (void)t;
}
static void f_timer_free(void *obj, mesh_timer *t)
{
    (void)obj;
    free(t);
}

static const mesh_env_ops OPS = {.now = f_now,
                                 .random = f_random,
                                 .log = f_log,
                                 .timer_new = f_timer_new,
                                 .timer_set = f_timer_set,
                                 .timer_stop = f_timer_stop,
                                 .timer_free = f_timer_free};

/* Every message either side sends must be one the receiver's decoder accepts. */
static int check_send(void *glue, void *link, const mesh_relay_msg *r)
{
    (void)glue, (void)link;
    mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
    e.body_case = MESHARA__WIRE__ENVELOPE__BODY_RELAY;
    e.relay = (mesh_relay_msg *)r;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (mesh_wire_encode(&e, &buf, &len) != MESH_OK)
        __builtin_trap();
    mesh_envelope *back = NULL;
    if (mesh_wire_decode(buf, len, &back) != MESH_OK || back->relay->kind_case != r->kind_case)
        __builtin_trap();
    mesh_wire_free(back);
    free(buf);
    return MESH_OK;
}

static int input(mesh_relay_service *svc, void *link, const uint8_t *key, int kind, void *sub)
{
    mesh_relay_msg m = MESHARA__WIRE__RELAY__INIT;
    m.kind_case = kind;
    m.reserve = sub; /* a oneof: every member shares the storage */
    return mesh_relay_service_input(svc, link, key, &m);
}

/* A service with T's reservation and C's circuit 1 open (T's side: relay id | 1). */
static mesh_relay_service *service(int *lc, int *lt, const uint8_t *kc, const uint8_t *kt)
{
    mesh_env env = {&OPS, NULL};
    mesh_relay_service *svc = NULL;
    if (mesh_relay_service_new(&svc, &env, NULL, check_send, NULL) != MESH_OK)
        return NULL;
    Meshara__Wire__RelayReserve rv = MESHARA__WIRE__RELAY_RESERVE__INIT;
    input(svc, lt, kt, MESHARA__WIRE__RELAY__KIND_RESERVE, &rv);
    uint8_t idt[MESH_NODE_ID_LEN];
    mesh_node_id_of(kt, idt);
    Meshara__Wire__RelayConnect c = MESHARA__WIRE__RELAY_CONNECT__INIT;
    c.circuit = 1;
    c.target.data = idt;
    c.target.len = sizeof idt;
    input(svc, lc, kc, MESHARA__WIRE__RELAY__KIND_CONNECT, &c);
    Meshara__Wire__RelayAccept a = MESHARA__WIRE__RELAY_ACCEPT__INIT;
    a.circuit = MESH_RELAY_ID_RELAY | 1;
    input(svc, lt, kt, MESHARA__WIRE__RELAY__KIND_ACCEPT, &a);
    return svc;
}

static void on_incoming(mesh_relay_end *e, mesh_stream *s, const uint8_t *from_key, void *ud)
{
    (void)from_key, (void)ud;
    mesh_env env = mesh_relay_end_env(e);
    static const mesh_stream_cbs none = {0};
    env.ops->stream_set_cbs(env.obj, s, &none, NULL); /* adopt: it may be fed data */
}

static void feed(const mesh_relay_msg *r)
{
    int lc = 0, lt = 0;
    uint8_t kc[MESH_PUBKEY_LEN], kt[MESH_PUBKEY_LEN];
    memset(kc, 1, sizeof kc);
    memset(kt, 2, sizeof kt);
    mesh_relay_service *svc = service(&lc, &lt, kc, kt);
    if (svc) {
        int rc1 = mesh_relay_service_input(svc, &lc, kc, r);
        int rc2 = mesh_relay_service_input(svc, &lt, kt, r);
        if ((rc1 != MESH_OK && rc1 != MESH_ERR_PROTOCOL) || rc1 != rc2)
            __builtin_trap();
        mesh_relay_service_link_closed(svc, &lt);
        mesh_relay_service_free(svc);
    }
    mesh_env env = {&OPS, NULL};
    mesh_relay_end *e = NULL;
    mesh_relay_end_cbs cbs = {NULL, on_incoming};
    if (mesh_relay_end_new(&e, &env, check_send, NULL, NULL, &cbs, NULL) != MESH_OK)
        return;
    uint8_t target[MESH_NODE_ID_LEN] = {0};
    if (mesh_relay_end_connect(e, target, NULL, NULL, NULL)) {
        Meshara__Wire__RelayConnected ok = MESHARA__WIRE__RELAY_CONNECTED__INIT;
        ok.circuit = 1;
        mesh_relay_msg m = MESHARA__WIRE__RELAY__INIT;
        m.kind_case = MESHARA__WIRE__RELAY__KIND_CONNECTED;
        m.connected = &ok;
        (void)mesh_relay_end_input(e, &m);
    }
    int rc = mesh_relay_end_input(e, r);
    if (rc != MESH_OK && rc != MESH_ERR_PROTOCOL)
        __builtin_trap();
    mesh_relay_end_link_closed(e);
    mesh_relay_end_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mesh_envelope *e = NULL;
    int rc = mesh_wire_decode(data, size, &e);
    if (rc != MESH_OK) {
        if (e != NULL)
            __builtin_trap();
        if (rc != MESH_ERR_MALFORMED && rc != MESH_ERR_VERSION && rc != MESH_ERR_LIMIT &&
            rc != MESH_ERR_NOMEM && rc != MESH_ERR_TOO_BIG)
            __builtin_trap();
        return 0;
    }
    if (e->body_case == MESHARA__WIRE__ENVELOPE__BODY_RELAY) {
        (void)check_send(NULL, NULL, e->relay); /* accepted: it round-trips */
        feed(e->relay);
    }
    mesh_wire_free(e);
    return 0;
}
