/* hello.c — the exporter-bound hello (session.h): what a side signs to prove its identity
 * key on this TLS connection, and the check of a peer's. The session sends and checks them
 * (session.c); the fuzz targets and tests build them directly. */
#include <openssl/crypto.h>
#include <string.h>

#include "core/session_io.h"

static const char HELLO_CONTEXT[] = MESH_SESSION_HELLO_CONTEXT;
_Static_assert(sizeof HELLO_CONTEXT - 1 == MESH_SESSION_HELLO_CONTEXT_LEN, "context length");
_Static_assert((int)MESH_SESSION_ROLE_CLIENT == (int)MESHARA__WIRE__ROLE__ROLE_CLIENT &&
                   (int)MESH_SESSION_ROLE_SERVER == (int)MESHARA__WIRE__ROLE__ROLE_SERVER,
               "roles match the schema");

/* "meshara-hello-v1" || role || exporter: what a hello signs. */
static void hello_transcript(uint8_t *msg, int role, const uint8_t *exporter)
{
    memcpy(msg, HELLO_CONTEXT, MESH_SESSION_HELLO_CONTEXT_LEN);
    msg[MESH_SESSION_HELLO_CONTEXT_LEN] = (uint8_t)role;
    memcpy(msg + MESH_SESSION_HELLO_CONTEXT_LEN + 1, exporter, MESH_SESSION_EXPORTER_LEN);
}

enum { HELLO_MSG_LEN = MESH_SESSION_HELLO_CONTEXT_LEN + 1 + MESH_SESSION_EXPORTER_LEN };

int mesh_hello_create(const mesh_identity *id, int role,
                      const uint8_t exporter[MESH_SESSION_EXPORTER_LEN], const mesh_addr *observed,
                      uint8_t **out, size_t *outlen)
{
    if (!id || !exporter || (role != MESH_SESSION_ROLE_CLIENT && role != MESH_SESSION_ROLE_SERVER))
        return MESH_ERR_INVAL;
    uint8_t msg[HELLO_MSG_LEN], sig[MESH_SIG_LEN];
    hello_transcript(msg, role, exporter);
    int rc = mesh_identity_sign(id, msg, sizeof msg, sig);
    if (rc != MESH_OK)
        return rc;
    Meshara__Wire__Hello h = MESHARA__WIRE__HELLO__INIT;
    h.protocol_version = MESH_SESSION_PROTOCOL_VERSION;
    h.public_key.data = (uint8_t *)mesh_identity_pubkey(id);
    h.public_key.len = MESH_PUBKEY_LEN;
    h.role = (Meshara__Wire__Role)role;
    h.signature.data = sig;
    h.signature.len = MESH_SIG_LEN;
    char obs[MESH_ADDR_STRLEN];
    if (observed && observed->family != MESH_AF_NONE)
        h.observed_address = mesh_addr_format(observed, obs, sizeof obs);
    mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
    e.body_case = MESHARA__WIRE__ENVELOPE__BODY_HELLO;
    e.hello = &h;
    return mesh_session_frame_create(&e, 0, out, outlen);
}

int mesh_hello_consume(const mesh_envelope *e, int peer_role,
                       const uint8_t exporter[MESH_SESSION_EXPORTER_LEN], const uint8_t *pinned,
                       uint8_t peer_key[MESH_PUBKEY_LEN])
{
    if (!e || e->body_case != MESHARA__WIRE__ENVELOPE__BODY_HELLO || !e->hello)
        return MESH_ERR_PROTOCOL;
    const Meshara__Wire__Hello *h = e->hello;
    if (h->protocol_version != MESH_SESSION_PROTOCOL_VERSION)
        return MESH_ERR_VERSION;
    if ((int)h->role != peer_role)
        return MESH_ERR_PROTOCOL;
    if (h->public_key.len != MESH_PUBKEY_LEN || h->signature.len != MESH_SIG_LEN)
        return MESH_ERR_MALFORMED; /* wire.c checks this too; never trust one layer */
    uint8_t msg[HELLO_MSG_LEN];
    hello_transcript(msg, peer_role, exporter);
    int rc = mesh_ed25519_verify(h->public_key.data, msg, sizeof msg, h->signature.data);
    if (rc != MESH_OK)
        return rc;
    if (pinned && CRYPTO_memcmp(pinned, h->public_key.data, MESH_PUBKEY_LEN) != 0)
        return MESH_ERR_KEY_MISMATCH;
    memcpy(peer_key, h->public_key.data, MESH_PUBKEY_LEN);
    return MESH_OK;
}
