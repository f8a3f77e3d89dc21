/* peer.c — signed peer records: the signed byte layout, protobuf conversions and PeerList
 * encoding (peer.h; format in docs/dht.md).
 *
 * Addresses are signed in their text form, the same text that travels in PeerRecord.addresses,
 * so a receiver checks exactly the bytes it was given. A decoded address must be in the
 * canonical form mesh_addr_format() writes ("1.2.3.4:80", "[2001:db8::1]:80"): any other
 * spelling of the same address is refused as malformed, so one record has one encoding and
 * whatever we accept encodes back to the same bytes.
 */
#include "core/peer.h"

#include <openssl/sha.h>

#include <stdlib.h>
#include <string.h>

#include "core/wire.h"

enum {
    CONTEXT_LEN = sizeof(MESH_PEER_SIG_CONTEXT) - 1, /* no NUL in the signed bytes */
    ADDR_TEXT_MAX = MESH_ADDR_STRLEN - 1,            /* fits the 1-byte length prefix */
    SIGNED_MAX = CONTEXT_LEN + MESH_PUBKEY_LEN + 8 + 1 + MESH_PEER_MAX_ADDRS * (1 + ADDR_TEXT_MAX) +
                 1 + MESH_PEER_MAX_RELAYS * (1 + ADDR_TEXT_MAX + MESH_PUBKEY_LEN) + 1 +
                 MESH_HOST_NAME_MAX,
};

/* "" (none) or a valid DNS name: what a record may carry as host_name. */
static int host_ok(const char *h)
{
    return h[0] == '\0' || mesh_host_name_check(h) == MESH_OK;
}

static int addr_ok(const mesh_addr *a)
{
    return a->family == MESH_AF_INET4 || a->family == MESH_AF_INET6;
}

/* A copy of a with the unused bytes of ip[] (and struct padding) zeroed, so two records that
 * mean the same compare equal field by field. */
static mesh_addr addr_clean(const mesh_addr *a)
{
    mesh_addr c;
    memset(&c, 0, sizeof c);
    c.family = a->family;
    c.port = a->port;
    memcpy(c.ip, a->ip, a->family == MESH_AF_INET6 ? 16 : 4);
    return c;
}

/* One address as its 1-byte length and text at out; returns the bytes written. */
static size_t put_addr(uint8_t *out, const mesh_addr *a)
{
    char text[MESH_ADDR_STRLEN];
    mesh_addr_format(a, text, sizeof text);
    size_t n = strlen(text);
    out[0] = (uint8_t)n;
    memcpy(out + 1, text, n);
    return 1 + n;
}

/* The bytes the signature covers (layout in peer.h); returns their length. r's addresses
 * must have a valid family, r->naddrs <= MESH_PEER_MAX_ADDRS, r->nrelays <=
 * MESH_PEER_MAX_RELAYS. */
static size_t signed_bytes(const mesh_peer_record *r, uint8_t out[SIGNED_MAX])
{
    size_t o = 0;
    memcpy(out + o, MESH_PEER_SIG_CONTEXT, CONTEXT_LEN);
    o += CONTEXT_LEN;
    memcpy(out + o, r->pubkey, MESH_PUBKEY_LEN);
    o += MESH_PUBKEY_LEN;
    for (int i = 7; i >= 0; i--)
        out[o++] = (uint8_t)(r->seq >> (8 * i));
    out[o++] = (uint8_t)r->naddrs;
    for (size_t i = 0; i < r->naddrs; i++)
        o += put_addr(out + o, &r->addrs[i]);
    out[o++] = (uint8_t)r->nrelays;
    for (size_t i = 0; i < r->nrelays; i++) {
        o += put_addr(out + o, &r->relays[i].addr);
        memcpy(out + o, r->relays[i].key, MESH_PUBKEY_LEN);
        o += MESH_PUBKEY_LEN;
    }
    size_t hn = strnlen(r->host_name, MESH_HOST_NAME_MAX);
    out[o++] = (uint8_t)hn;
    memcpy(out + o, r->host_name, hn);
    return o + hn;
}

int mesh_peer_record_make(mesh_peer_record *out, const mesh_identity *id, const mesh_addr *addrs,
                          size_t naddrs, uint64_t seq)
{
    return mesh_peer_record_make_relayed(out, id, addrs, naddrs, NULL, 0, seq);
}

int mesh_peer_record_make_relayed(mesh_peer_record *out, const mesh_identity *id,
                                  const mesh_addr *addrs, size_t naddrs,
                                  const mesh_peer_relay *relays, size_t nrelays, uint64_t seq)
{
    return mesh_peer_record_make_named(out, id, addrs, naddrs, relays, nrelays, NULL, seq);
}

int mesh_peer_record_make_named(mesh_peer_record *out, const mesh_identity *id,
                                const mesh_addr *addrs, size_t naddrs,
                                const mesh_peer_relay *relays, size_t nrelays,
                                const char *host_name, uint64_t seq)
{
    if (!out || !id || naddrs > MESH_PEER_MAX_ADDRS || (naddrs > 0 && !addrs) ||
        nrelays > MESH_PEER_MAX_RELAYS || (nrelays > 0 && !relays))
        return MESH_ERR_INVAL;
    if (host_name && *host_name && mesh_host_name_check(host_name) != MESH_OK)
        return MESH_ERR_INVAL;
    mesh_peer_record r;
    memset(&r, 0, sizeof r);
    if (host_name)
        strcpy(r.host_name, host_name); /* checked: at most MESH_HOST_NAME_MAX bytes */
    for (size_t i = 0; i < naddrs; i++) {
        if (!addr_ok(&addrs[i]))
            return MESH_ERR_INVAL;
        r.addrs[i] = addr_clean(&addrs[i]);
    }
    for (size_t i = 0; i < nrelays; i++) {
        if (!addr_ok(&relays[i].addr))
            return MESH_ERR_INVAL;
        r.relays[i].addr = addr_clean(&relays[i].addr);
        memcpy(r.relays[i].key, relays[i].key, MESH_PUBKEY_LEN);
    }
    memcpy(r.pubkey, mesh_identity_pubkey(id), MESH_PUBKEY_LEN);
    memcpy(r.node_id, mesh_identity_node_id(id), MESH_NODE_ID_LEN);
    r.seq = seq;
    r.naddrs = naddrs;
    r.nrelays = nrelays;
    uint8_t msg[SIGNED_MAX];
    size_t len = signed_bytes(&r, msg);
    int rc = mesh_identity_sign(id, msg, len, r.sig);
    if (rc != MESH_OK)
        return rc;
    *out = r;
    return MESH_OK;
}

int mesh_peer_record_verify(const mesh_peer_record *r)
{
    return mesh_peer_record_verify_cached(r, NULL);
}

int mesh_peer_record_verify_cached(const mesh_peer_record *r, mesh_peer_cache *cache)
{
    if (!r || r->naddrs > MESH_PEER_MAX_ADDRS || r->nrelays > MESH_PEER_MAX_RELAYS)
        return MESH_ERR_INVAL;
    for (size_t i = 0; i < r->naddrs; i++)
        if (!addr_ok(&r->addrs[i]))
            return MESH_ERR_INVAL;
    for (size_t i = 0; i < r->nrelays; i++)
        if (!addr_ok(&r->relays[i].addr))
            return MESH_ERR_INVAL;
    if (!memchr(r->host_name, '\0', sizeof r->host_name) || !host_ok(r->host_name))
        return MESH_ERR_INVAL;
    uint8_t id[MESH_NODE_ID_LEN];
    mesh_node_id_of(r->pubkey, id);
    if (memcmp(id, r->node_id, MESH_NODE_ID_LEN) != 0)
        return MESH_ERR_BAD_SIGNATURE;
    uint8_t msg[SIGNED_MAX + MESH_SIG_LEN];
    size_t len = signed_bytes(r, msg);
    uint8_t *slot = NULL, digest[SHA256_DIGEST_LENGTH];
    if (cache) {
        memcpy(msg + len, r->sig, MESH_SIG_LEN);
        SHA256(msg, len + MESH_SIG_LEN, digest);
        slot = cache->digest[(digest[0] | (unsigned)digest[1] << 8) % MESH_PEER_CACHE_SLOTS];
        if (memcmp(slot, digest, MESH_PEER_CACHE_DIGEST) == 0) {
            cache->hits++;
            return MESH_OK;
        }
        cache->misses++;
    }
    int rc = mesh_ed25519_verify(r->pubkey, msg, len, r->sig);
    if (rc == MESH_OK && slot)
        memcpy(slot, digest, MESH_PEER_CACHE_DIGEST);
    return rc;
}

int mesh_peer_record_equal(const mesh_peer_record *a, const mesh_peer_record *b)
{
    if (a->seq != b->seq || a->naddrs != b->naddrs || a->naddrs > MESH_PEER_MAX_ADDRS ||
        a->nrelays != b->nrelays || a->nrelays > MESH_PEER_MAX_RELAYS ||
        memcmp(a->pubkey, b->pubkey, MESH_PUBKEY_LEN) != 0 ||
        memcmp(a->node_id, b->node_id, MESH_NODE_ID_LEN) != 0 ||
        memcmp(a->sig, b->sig, MESH_SIG_LEN) != 0 ||
        strncmp(a->host_name, b->host_name, sizeof a->host_name) != 0)
        return 0;
    for (size_t i = 0; i < a->naddrs; i++)
        if (!mesh_addr_equal(&a->addrs[i], &b->addrs[i]))
            return 0;
    for (size_t i = 0; i < a->nrelays; i++)
        if (!mesh_addr_equal(&a->relays[i].addr, &b->relays[i].addr) ||
            memcmp(a->relays[i].key, b->relays[i].key, MESH_PUBKEY_LEN) != 0)
            return 0;
    return 1;
}

void mesh_peer_record_to_pb(const mesh_peer_record *r, Meshara__Wire__PeerRecord *pb,
                            mesh_peer_pb_scratch *sc)
{
    meshara__wire__peer_record__init(pb);
    /* protobuf-c's fields are not const; packing only reads them */
    pb->public_key.data = (uint8_t *)r->pubkey;
    pb->public_key.len = MESH_PUBKEY_LEN;
    size_t n = r->naddrs <= MESH_PEER_MAX_ADDRS ? r->naddrs : MESH_PEER_MAX_ADDRS;
    for (size_t i = 0; i < n; i++) {
        mesh_addr_format(&r->addrs[i], sc->text[i], MESH_ADDR_STRLEN);
        sc->ptrs[i] = sc->text[i];
    }
    pb->n_addresses = n;
    pb->addresses = n ? sc->ptrs : NULL;
    size_t nr = r->nrelays <= MESH_PEER_MAX_RELAYS ? r->nrelays : MESH_PEER_MAX_RELAYS;
    for (size_t i = 0; i < nr; i++) {
        Meshara__Wire__RelayRef *ref = &sc->refs[i];
        meshara__wire__relay_ref__init(ref);
        char *text = sc->text[MESH_PEER_MAX_ADDRS + i];
        ref->address = mesh_addr_format(&r->relays[i].addr, text, MESH_ADDR_STRLEN);
        ref->public_key.data = (uint8_t *)r->relays[i].key;
        ref->public_key.len = MESH_PUBKEY_LEN;
        sc->ref_ptrs[i] = ref;
    }
    pb->n_relays = nr;
    pb->relays = nr ? sc->ref_ptrs : NULL;
    /* "" is protobuf's default: an unnamed record encodes as it did before the field */
    pb->host_name = (char *)r->host_name;
    pb->seq = r->seq;
    pb->signature.data = (uint8_t *)r->sig;
    pb->signature.len = MESH_SIG_LEN;
}

/* Parse one address in canonical text form. MESH_OK or MESH_ERR_MALFORMED. */
static int addr_from_text(const char *text, mesh_addr *out)
{
    if (!text || strnlen(text, MESH_ADDR_STRLEN) > ADDR_TEXT_MAX)
        return MESH_ERR_MALFORMED;
    mesh_addr a;
    if (mesh_addr_parse(&a, text) != MESH_OK)
        return MESH_ERR_MALFORMED;
    char again[MESH_ADDR_STRLEN];
    if (strcmp(mesh_addr_format(&a, again, sizeof again), text) != 0)
        return MESH_ERR_MALFORMED;
    *out = addr_clean(&a);
    return MESH_OK;
}

int mesh_peer_record_from_pb(const Meshara__Wire__PeerRecord *pb, mesh_peer_record *out)
{
    return mesh_peer_record_from_pb_cached(pb, out, NULL);
}

int mesh_peer_record_from_pb_cached(const Meshara__Wire__PeerRecord *pb, mesh_peer_record *out,
                                    mesh_peer_cache *cache)
{
    if (!pb || !out)
        return MESH_ERR_INVAL;
    if (pb->public_key.len != MESH_PUBKEY_LEN || pb->signature.len != MESH_SIG_LEN ||
        pb->n_addresses > MESH_PEER_MAX_ADDRS || pb->n_relays > MESH_PEER_MAX_RELAYS)
        return MESH_ERR_MALFORMED;
    mesh_peer_record r;
    memset(&r, 0, sizeof r);
    for (size_t i = 0; i < pb->n_addresses; i++)
        if (addr_from_text(pb->addresses[i], &r.addrs[i]) != MESH_OK)
            return MESH_ERR_MALFORMED;
    r.naddrs = pb->n_addresses;
    for (size_t i = 0; i < pb->n_relays; i++) {
        const Meshara__Wire__RelayRef *ref = pb->relays[i];
        if (!ref || ref->public_key.len != MESH_PUBKEY_LEN ||
            addr_from_text(ref->address, &r.relays[i].addr) != MESH_OK)
            return MESH_ERR_MALFORMED;
        memcpy(r.relays[i].key, ref->public_key.data, MESH_PUBKEY_LEN);
    }
    r.nrelays = pb->n_relays;
    if (pb->host_name && pb->host_name[0]) {
        if (mesh_host_name_check(pb->host_name) != MESH_OK)
            return MESH_ERR_BAD_HOST_NAME;
        strcpy(r.host_name, pb->host_name); /* checked: at most MESH_HOST_NAME_MAX bytes */
    }
    memcpy(r.pubkey, pb->public_key.data, MESH_PUBKEY_LEN);
    mesh_node_id_of(r.pubkey, r.node_id);
    r.seq = pb->seq;
    memcpy(r.sig, pb->signature.data, MESH_SIG_LEN);
    int rc = mesh_peer_record_verify_cached(&r, cache);
    if (rc == MESH_ERR_INVAL)
        return MESH_ERR_MALFORMED; /* the key is not an Ed25519 point */
    if (rc != MESH_OK)
        return rc;
    *out = r;
    return MESH_OK;
}

int mesh_peer_list_from_pb(const Meshara__Wire__PeerList *pb, mesh_peer_record *out, size_t cap,
                           size_t *n, size_t *dropped)
{
    if (!pb || !n || (cap > 0 && !out))
        return MESH_ERR_INVAL;
    if (pb->n_peers > MESH_PEER_LIST_MAX)
        return MESH_ERR_MALFORMED;
    size_t kept = 0, refused = 0;
    for (size_t i = 0; i < pb->n_peers; i++) {
        mesh_peer_record r;
        int rc = mesh_peer_record_from_pb(pb->peers[i], &r);
        if (rc == MESH_ERR_NOMEM)
            return rc;
        if (rc != MESH_OK || kept == cap) {
            refused++;
            continue;
        }
        out[kept++] = r;
    }
    *n = kept;
    if (dropped)
        *dropped = refused;
    return MESH_OK;
}

/* Scratch for encoding: the protobuf structs borrow the records and these buffers. */
typedef struct list_scratch {
    Meshara__Wire__PeerRecord pbs[MESH_PEER_LIST_MAX];
    Meshara__Wire__PeerRecord *ptrs[MESH_PEER_LIST_MAX];
    mesh_peer_pb_scratch sc[MESH_PEER_LIST_MAX];
} list_scratch;

int mesh_peer_list_encode(const mesh_peer_record *recs, size_t n, uint8_t **out, size_t *outlen)
{
    if (!out || !outlen || n > MESH_PEER_LIST_MAX || (n > 0 && !recs))
        return MESH_ERR_INVAL;
    list_scratch *s = malloc(sizeof *s);
    if (!s)
        return MESH_ERR_NOMEM;
    Meshara__Wire__PeerList list = MESHARA__WIRE__PEER_LIST__INIT;
    for (size_t i = 0; i < n; i++) {
        mesh_peer_record_to_pb(&recs[i], &s->pbs[i], &s->sc[i]);
        s->ptrs[i] = &s->pbs[i];
    }
    list.n_peers = n;
    list.peers = n ? s->ptrs : NULL;
    int rc = MESH_ERR_NOMEM;
    size_t len = meshara__wire__peer_list__get_packed_size(&list);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        goto out;
    if (meshara__wire__peer_list__pack(&list, buf) != len) {
        free(buf);
        rc = MESH_ERR_INTERNAL;
        goto out;
    }
    *out = buf;
    *outlen = len;
    rc = MESH_OK;
out:
    free(s);
    return rc;
}

int mesh_peer_list_decode(const uint8_t *buf, size_t len, mesh_peer_record *out, size_t cap,
                          size_t *n, size_t *dropped)
{
    if ((!buf && len > 0) || !n || (cap > 0 && !out))
        return MESH_ERR_INVAL;
    if (len > MESH_PEER_LIST_MAX_BYTES)
        return MESH_ERR_TOO_BIG;
    mesh_wire_budget b; /* the same rule as for envelopes: hostile input costs bounded memory */
    ProtobufCAllocator a;
    mesh_wire_budget_init(&b, &a, len);
    Meshara__Wire__PeerList *pb = meshara__wire__peer_list__unpack(&a, len, buf);
    if (!pb)
        return mesh_wire_budget_error(&b);
    int rc = mesh_peer_list_from_pb(pb, out, cap, n, dropped);
    /* the budget allocator took its memory from malloc */
    meshara__wire__peer_list__free_unpacked(pb, NULL);
    return rc;
}
