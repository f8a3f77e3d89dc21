/* decoy.h — the web profile's decoy: a connection that is not a Meshara client's (firstreq.h)
 * is spliced, its TLS plaintext both ways, to a real web server (meshara-node
 * --web-upstream, --web-upstream-h2), so that a prober talks to that server through our TLS
 * and gets its answers, its errors and its timeouts (docs/stealth.md). Sans-I/O: the upstream
 * connection is an env stream; TLS stays the session's (it calls the to_client callback's
 * bytes into mesh_tls_write).
 *
 * Two phases:
 *  - Standby (from mesh_decoy_new): the upstream connection opens at once, while the first
 *    request is still being classified, so that its timers (nginx's 60 s for a silent client,
 *    say) run from the handshake as they would on a direct connection. Nothing of the client's
 *    goes to it (in h2 mode a connection preface and an empty SETTINGS do, in the client's
 *    stead: decoy.c says why), and what it sends is held, except that in h2 mode the frames
 *    the session already sent the client in its own name — the server's first SETTINGS and
 *    WINDOW_UPDATE, one SETTINGS ACK per mesh_decoy_acked, and the ACK of our SETTINGS — are
 *    taken out of its output (they are the same frames when the
 *    upstream is nginx, which is what h2 mode expects: docs/stealth.md). When it has anything
 *    else to say, or closes, during standby, on_spoke runs: the session then engages (no Meshara
 *    client waits that long).
 *  - Engaged (mesh_decoy_engage): the client's bytes so far, then everything it sends, go to
 *    the upstream; the upstream's (held bytes first) to on_data. The upstream closing ends the
 *    decoy (on_closed after its last bytes); the client closing is mesh_decoy_free.
 * Bounds: bytes held for the upstream while it connects, and bytes of held output, at most
 * MESH_DECOY_MAX_HELD each; a queue towards the upstream above MESH_DECOY_MAX_PENDING ends
 * the decoy (MESH_ERR_LIMIT): the client is not reading what it asks for, or floods.
 *
 * Callbacks come from env events only (never from inside a mesh_decoy_* call); inside them
 * the session may call mesh_decoy_free.
 */
#ifndef MESH_CORE_DECOY_H
#define MESH_CORE_DECOY_H

#include <stddef.h>
#include <stdint.h>

#include "meshara/env.h"

enum mesh_decoy_limits {
    MESH_DECOY_MAX_HELD = 64 << 10,
    MESH_DECOY_MAX_PENDING = 1 << 20,
};

typedef struct mesh_decoy mesh_decoy;

typedef struct mesh_decoy_cbs {
    /* Upstream bytes for the client (borrowed for the call). */
    void (*on_data)(void *ud, const uint8_t *data, size_t len);
    /* Standby only: the upstream has something to say (or closed): engage now. */
    void (*on_spoke)(void *ud);
    /* The upstream is gone (after its last bytes went to on_data): reason MESH_OK for its
     * FIN, else why (MESH_ERR_REFUSED, MESH_ERR_LIMIT ...). The decoy is inert; free it. */
    void (*on_closed)(void *ud, int reason);
} mesh_decoy_cbs;

/* Connect to upstream over env (borrowed, must outlive the decoy) and stand by. h2: the
 * upstream speaks HTTP/2 with prior knowledge (h2c) and the client negotiated h2. cbs copied.
 * MESH_OK; MESH_ERR_INVAL; MESH_ERR_NOMEM; the env's immediate connect error. */
int mesh_decoy_new(mesh_decoy **out, const mesh_env *env, const mesh_addr *upstream, int h2,
                   const mesh_decoy_cbs *cbs, void *ud);
/* Close the upstream connection (gracefully: FIN) and free. NULL: no-op. */
void mesh_decoy_free(mesh_decoy *d);
/* h2 mode: the session acked n more of the client's SETTINGS itself (standby only). */
void mesh_decoy_acked(mesh_decoy *d, unsigned n);
/* Splice from now on: first (len bytes, copied) is what the client sent so far. MESH_OK;
 * MESH_ERR_STATE (engaged already); MESH_ERR_LIMIT; MESH_ERR_NOMEM. Held upstream output
 * goes to on_data from a later event. */
int mesh_decoy_engage(mesh_decoy *d, const uint8_t *first, size_t len);
/* More client bytes (engaged). MESH_OK; MESH_ERR_STATE; MESH_ERR_LIMIT; MESH_ERR_NOMEM;
 * MESH_ERR_CLOSED (the upstream is gone). */
int mesh_decoy_write(mesh_decoy *d, const uint8_t *data, size_t len);

#endif
