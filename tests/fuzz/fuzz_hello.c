/* fuzz_hello.c — the receive path of a session's first message on arbitrary bytes: pad
 * decode, envelope decode, then hello verification (role, version, Ed25519 signature over the
 * exporter-bound transcript, pinned key). Never a crash or a leak; only documented codes; an
 * accepted hello must really carry a valid signature by the key reported.
 *
 * Input layout: [32-byte exporter value][flags][frame payload = pad(wire(Envelope))]
 *   flags bit 0: the peer's role is server (else client); bit 1: pin the key of the fixed
 *   identity below (seed 0x01 * 32), the one that signed the seed corpus's hellos.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/identity.h"
#include "core/session.h"

enum { HDR = MESH_SESSION_EXPORTER_LEN + 1 };

static const uint8_t *fixed_key(void)
{
    static uint8_t key[MESH_PUBKEY_LEN];
    static int ready;
    if (!ready) {
        uint8_t seed[MESH_SEED_LEN];
        memset(seed, 1, sizeof seed);
        mesh_identity *id = NULL;
        if (mesh_identity_from_seed(&id, seed) != MESH_OK)
            __builtin_trap();
        memcpy(key, mesh_identity_pubkey(id), sizeof key);
        mesh_identity_free(id);
        ready = 1;
    }
    return key;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < HDR)
        return 0;
    const uint8_t *exporter = data;
    uint8_t flags = data[MESH_SESSION_EXPORTER_LEN];
    int role = (flags & 1) ? MESH_SESSION_ROLE_SERVER : MESH_SESSION_ROLE_CLIENT;
    const uint8_t *pin = (flags & 2) ? fixed_key() : NULL;
    mesh_envelope *e = NULL;
    int rc = mesh_session_frame_consume(data + HDR, size - HDR, &e);
    if (rc != MESH_OK) {
        if (e)
            __builtin_trap();
        if (rc != MESH_ERR_TRUNCATED && rc != MESH_ERR_MALFORMED && rc != MESH_ERR_VERSION &&
            rc != MESH_ERR_LIMIT && rc != MESH_ERR_NOMEM && rc != MESH_ERR_TOO_BIG)
            __builtin_trap();
        return 0;
    }
    uint8_t key[MESH_PUBKEY_LEN];
    rc = mesh_hello_consume(e, role, exporter, pin, key);
    switch (rc) {
    case MESH_OK: {
        /* Accepted: the key is the hello's, the pin holds, and the signature verifies on its
         * own over exactly the documented transcript. */
        const Meshara__Wire__Hello *h = e->hello;
        if (memcmp(key, h->public_key.data, MESH_PUBKEY_LEN) != 0 ||
            (pin && memcmp(key, pin, MESH_PUBKEY_LEN) != 0))
            __builtin_trap();
        uint8_t msg[MESH_SESSION_HELLO_CONTEXT_LEN + 1 + MESH_SESSION_EXPORTER_LEN];
        memcpy(msg, MESH_SESSION_HELLO_CONTEXT, MESH_SESSION_HELLO_CONTEXT_LEN);
        msg[MESH_SESSION_HELLO_CONTEXT_LEN] = (uint8_t)role;
        memcpy(msg + MESH_SESSION_HELLO_CONTEXT_LEN + 1, exporter, MESH_SESSION_EXPORTER_LEN);
        if (mesh_ed25519_verify(key, msg, sizeof msg, h->signature.data) != MESH_OK)
            __builtin_trap();
        break;
    }
    case MESH_ERR_PROTOCOL:
    case MESH_ERR_VERSION:
    case MESH_ERR_MALFORMED:
    case MESH_ERR_BAD_SIGNATURE:
    case MESH_ERR_KEY_MISMATCH:
    case MESH_ERR_NOMEM:
        break;
    default:
        __builtin_trap();
    }
    mesh_wire_free(e);
    return 0;
}
