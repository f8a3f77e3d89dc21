/* wire.c — Envelope encode/decode with the checks every receiver needs (wire.h).
 *
 * Bounded decoding: protobuf-c allocates while it unpacks (message structs, arrays for
 * repeated fields, copies of bytes and strings, unknown fields). Its allocations grow only
 * linearly with the input, but the factor is large for hostile input (2 bytes of empty
 * PeerRecord cost ~150 bytes of heap). The input is already bounded by the frame maximum
 * (frame.h: MESH_FRAME_DEFAULT_MAX, never above MESH_FRAME_ABS_MAX) and the unpadding above
 * it; on top of that, the unpacker gets an allocator with a budget proportional to the input,
 * so one envelope can never cost more than MESH_WIRE_ALLOC_FACTOR times its own size.
 */
#include "core/wire.h"

#include <stdlib.h>

#include "core/frame.h"

static void *budget_alloc(void *data, size_t size)
{
    mesh_wire_budget *b = data;
    size_t cost = size + MESH_WIRE_ALLOC_OVERHEAD;
    if (cost < size || cost > b->left) {
        b->over = 1;
        return NULL;
    }
    void *p = malloc(size);
    if (!p) {
        b->nomem = 1;
        return NULL;
    }
    b->left -= cost;
    return p;
}

/* Spent budget is not given back: unpacking frees little, and a conservative count is fine. */
static void budget_free(void *data, void *ptr)
{
    (void)data;
    free(ptr);
}

void mesh_wire_budget_init(mesh_wire_budget *b, ProtobufCAllocator *a, size_t input_len)
{
    *b = (mesh_wire_budget){.left = MESH_WIRE_ALLOC_BASE + input_len * MESH_WIRE_ALLOC_FACTOR};
    *a = (ProtobufCAllocator){.alloc = budget_alloc, .free = budget_free, .allocator_data = b};
}

int mesh_wire_budget_error(const mesh_wire_budget *b)
{
    return b->nomem ? MESH_ERR_NOMEM : b->over ? MESH_ERR_LIMIT : MESH_ERR_MALFORMED;
}

static int is_msg(const void *msg, const ProtobufCMessageDescriptor *desc)
{
    return msg && ((const ProtobufCMessage *)msg)->descriptor == desc;
}

static int peer_ok(const Meshara__Wire__PeerRecord *p)
{
    if (!is_msg(p, &meshara__wire__peer_record__descriptor) ||
        p->public_key.len != MESH_WIRE_KEY_LEN || p->signature.len != MESH_WIRE_SIG_LEN)
        return 0;
    for (size_t i = 0; i < p->n_relays; i++)
        if (!is_msg(p->relays[i], &meshara__wire__relay_ref__descriptor) ||
            p->relays[i]->public_key.len != MESH_WIRE_KEY_LEN)
            return 0;
    return 1;
}

static int response_ok(const Meshara__Wire__Response *r)
{
    if (!is_msg(r, &meshara__wire__response__descriptor))
        return 0;
    if (!r->peers)
        return 1;
    if (!is_msg(r->peers, &meshara__wire__peer_list__descriptor))
        return 0;
    for (size_t i = 0; i < r->peers->n_peers; i++)
        if (!peer_ok(r->peers->peers[i]))
            return 0;
    return 1;
}

/* 1 if r holds one relay kind, of its type, with its fixed-size fields' sizes. */
static int relay_ok(const Meshara__Wire__Relay *r)
{
    if (!is_msg(r, &meshara__wire__relay__descriptor))
        return 0;
    switch (r->kind_case) {
    case MESHARA__WIRE__RELAY__KIND_RESERVE:
        return is_msg(r->reserve, &meshara__wire__relay_reserve__descriptor);
    case MESHARA__WIRE__RELAY__KIND_RESERVED:
        return is_msg(r->reserved, &meshara__wire__relay_reserved__descriptor);
    case MESHARA__WIRE__RELAY__KIND_CONNECT:
        return is_msg(r->connect, &meshara__wire__relay_connect__descriptor) &&
               r->connect->target.len == MESH_WIRE_NODE_ID_LEN;
    case MESHARA__WIRE__RELAY__KIND_INCOMING:
        return is_msg(r->incoming, &meshara__wire__relay_incoming__descriptor) &&
               r->incoming->from_key.len == MESH_WIRE_KEY_LEN;
    case MESHARA__WIRE__RELAY__KIND_ACCEPT:
        return is_msg(r->accept, &meshara__wire__relay_accept__descriptor);
    case MESHARA__WIRE__RELAY__KIND_CONNECTED:
        return is_msg(r->connected, &meshara__wire__relay_connected__descriptor);
    case MESHARA__WIRE__RELAY__KIND_DATA:
        return is_msg(r->data, &meshara__wire__relay_data__descriptor);
    case MESHARA__WIRE__RELAY__KIND_WINDOW:
        return is_msg(r->window, &meshara__wire__relay_window__descriptor);
    case MESHARA__WIRE__RELAY__KIND_CLOSE:
        return is_msg(r->close, &meshara__wire__relay_close__descriptor);
    default:
        return 0;
    }
}

/* 1 if no unknown field in m or its sub-messages has field number 0. protobuf-c keeps such a
 * field when its tag is spelt as a non-minimal varint (0x82 0x00) and would pack it back as
 * 0x02, which it then refuses: a message we accepted must re-encode to one we accept. The
 * recursion follows the schema, which has no recursive message types (depth <= 4). */
static int unknown_ok(const ProtobufCMessage *m)
{
    for (size_t i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0)
            return 0;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(const void *)(base + f->quantifier_offset) != f->id)
            continue;
        const void *member = base + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(const void *)(base + f->quantifier_offset);
            ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *)member;
            for (size_t j = 0; j < n; j++)
                if (arr[j] && !unknown_ok(arr[j]))
                    return 0;
        } else {
            const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)member;
            if (sub && !unknown_ok(sub))
                return 0;
        }
    }
    return 1;
}

/* 1 if env has a body whose fixed-size fields have their sizes. The descriptor checks only
 * matter for encoding (a caller's struct not set up with its *__INIT); decoded ones pass. */
static int body_ok(const mesh_envelope *e)
{
    switch (e->body_case) {
    case MESHARA__WIRE__ENVELOPE__BODY_HELLO:
        return is_msg(e->hello, &meshara__wire__hello__descriptor) &&
               e->hello->public_key.len == MESH_WIRE_KEY_LEN &&
               e->hello->signature.len == MESH_WIRE_SIG_LEN;
    case MESHARA__WIRE__ENVELOPE__BODY_HEARTBEAT:
        return is_msg(e->heartbeat, &meshara__wire__heartbeat__descriptor);
    case MESHARA__WIRE__ENVELOPE__BODY_QUERY:
        return is_msg(e->query, &meshara__wire__query__descriptor) &&
               (e->query->target.len == 0 || e->query->target.len == MESH_WIRE_NODE_ID_LEN);
    case MESHARA__WIRE__ENVELOPE__BODY_RESPONSE:
        return response_ok(e->response);
    case MESHARA__WIRE__ENVELOPE__BODY_DATA:
        return is_msg(e->data, &meshara__wire__app_data__descriptor);
    case MESHARA__WIRE__ENVELOPE__BODY_ACK:
        return is_msg(e->ack, &meshara__wire__app_ack__descriptor);
    case MESHARA__WIRE__ENVELOPE__BODY_GOODBYE:
        return is_msg(e->goodbye, &meshara__wire__goodbye__descriptor);
    case MESHARA__WIRE__ENVELOPE__BODY_ANNOUNCE:
        return is_msg(e->announce, &meshara__wire__announce__descriptor) &&
               peer_ok(e->announce->record);
    case MESHARA__WIRE__ENVELOPE__BODY_RELAY:
        return relay_ok(e->relay);
    case MESHARA__WIRE__ENVELOPE__BODY_PUNCH:
        return is_msg(e->punch, &meshara__wire__punch__descriptor);
    default:
        return 0; /* no body, or one added by a later version of this same wire version */
    }
}

int mesh_wire_encode(const mesh_envelope *env, uint8_t **out, size_t *outlen)
{
    if (!env || !out || !outlen || !is_msg(env, &meshara__wire__envelope__descriptor) ||
        !body_ok(env))
        return MESH_ERR_INVAL;
    mesh_envelope e = *env; /* shallow: only the version differs */
    e.version = MESH_WIRE_VERSION;
    size_t n = meshara__wire__envelope__get_packed_size(&e);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return MESH_ERR_NOMEM;
    if (meshara__wire__envelope__pack(&e, buf) != n) {
        free(buf);
        return MESH_ERR_INTERNAL;
    }
    *out = buf;
    *outlen = n;
    return MESH_OK;
}

int mesh_wire_decode(const uint8_t *buf, size_t len, mesh_envelope **out)
{
    if (!out || (!buf && len))
        return MESH_ERR_INVAL;
    /* On a session len is already bounded by the frame maximum; checked again here so the
     * budget below cannot overflow whoever the caller is. */
    if (len > MESH_FRAME_ABS_MAX)
        return MESH_ERR_TOO_BIG;
    mesh_wire_budget b;
    ProtobufCAllocator a;
    mesh_wire_budget_init(&b, &a, len);
    mesh_envelope *e = meshara__wire__envelope__unpack(&a, len, buf);
    if (!e)
        return mesh_wire_budget_error(&b);
    int rc = MESH_OK;
    if (e->version != MESH_WIRE_VERSION)
        rc = MESH_ERR_VERSION;
    else if (!body_ok(e) || !unknown_ok(&e->base))
        rc = MESH_ERR_MALFORMED;
    if (rc != MESH_OK) {
        mesh_wire_free(e);
        return rc;
    }
    *out = e;
    return MESH_OK;
}

void mesh_wire_free(mesh_envelope *env)
{
    /* The budget allocator took its memory from malloc, so the system allocator frees it. */
    if (env)
        meshara__wire__envelope__free_unpacked(env, NULL);
}
