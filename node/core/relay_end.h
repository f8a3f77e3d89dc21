/* relay_end.h — a relay's client side: reservations and circuits as virtual streams.
 *
 * One mesh_relay_end per session to a relay (relay.h has the messages). A target reserves
 * (mesh_relay_end_reserve) and gets each circuit that arrives as an accepted virtual stream
 * (on_incoming: mesh_session_accept it); a client opens one with mesh_relay_end_connect, a
 * connecting virtual stream (mesh_session_connect_stream it at once: the ClientHello waits
 * in the circuit until the relay reports it open). The streams belong to the end's overlay
 * env (vstream.h, mesh_relay_end_env), whose clock, timers and randomness are the base
 * env's: sessions inside keep env.h's rules and their own timeouts.
 *
 * Flow control, end to end: each end of a circuit sends at most MESH_RELAY_WINDOW bytes the
 * other end has not credited; an end credits (RelayWindow) what its consumer took (vstream
 * delivered). So the relay and each end hold at most a window per circuit; a peer that
 * sends beyond the window it was given breaks the circuit (closed, MESH_ERR_PROTOCOL). The
 * consumer's writes wait in the circuit (stream_pending) until credit and the link allow.
 *
 * A circuit's end reaches its consumer as on_closed: MESH_OK for the far end's orderly
 * close, else the relay's or far end's status (MESH_ERR_NOT_FOUND: no reservation for the
 * target, MESH_ERR_LIMIT, MESH_ERR_TIMEOUT, MESH_ERR_RESET: a leg's session ended, ...).
 * The link's session ending is mesh_relay_end_link_closed: every circuit ends with
 * MESH_ERR_RESET. A send the link refuses (its queue full with control messages) is treated
 * the same way, with MESH_ERR_LIMIT.
 *
 * The glue hands every Relay body the session receives to mesh_relay_end_input and calls
 * mesh_relay_end_writable when the session's queue drained (after MESH_ERR_AGAIN from send).
 */
#ifndef MESH_CORE_RELAY_END_H
#define MESH_CORE_RELAY_END_H

#include "core/relay.h"
#include "core/vstream.h"

enum mesh_relay_end_limits {
    MESH_RELAY_WINDOW = 256 * 1024,  /* bytes in flight per circuit and direction */
    MESH_RELAY_DATA_MAX = 16 * 1024, /* payload per RelayData */
    MESH_RELAY_END_CIRCUITS = 64,    /* circuits per end */
};

typedef struct mesh_relay_end mesh_relay_end;

typedef struct mesh_relay_end_cbs {
    /* The relay answered a reservation: MESH_OK with the ttl granted (renew before it runs
     * out) or its refusal (MESH_ERR_LIMIT, ...). */
    void (*on_reserved)(mesh_relay_end *e, int status, uint32_t ttl_s, void *ud);
    /* A circuit arrived for us from the client whose key the relay saw (from_key, borrowed).
     * s is a connected virtual stream: adopt it (mesh_session_accept) or close it before
     * returning (the relay is told: the circuit is refused). NULL: every circuit refused. */
    void (*on_incoming)(mesh_relay_end *e, mesh_stream *s, const uint8_t *from_key, void *ud);
} mesh_relay_end_cbs;

/* An end over base (borrowed, outlives it) sending through send(glue, link, ...). cbs
 * copied (NULL = none). MESH_OK; MESH_ERR_INVAL; MESH_ERR_NOMEM. *out untouched on failure. */
int mesh_relay_end_new(mesh_relay_end **out, const mesh_env *base, mesh_relay_send_fn send,
                       void *glue, void *link, const mesh_relay_end_cbs *cbs, void *ud);
/* Release every circuit stream (no callback) and the end, sending nothing. Not from inside
 * a callback of one of its streams. NULL: no-op. */
void mesh_relay_end_free(mesh_relay_end *e);
/* The overlay env the circuits' streams belong to (sessions inside use it). */
mesh_env mesh_relay_end_env(mesh_relay_end *e);
size_t mesh_relay_end_circuits(const mesh_relay_end *e);

/* Ask for (or renew) a reservation of ttl_s seconds; the answer comes through on_reserved.
 * MESH_OK; the send's error. */
int mesh_relay_end_reserve(mesh_relay_end *e, uint32_t ttl_s);
/* Open a circuit to the node with id target (MESH_NODE_ID_LEN bytes) through this relay: a
 * connecting virtual stream with cbs/ud (copied) as env connect gives, on_connected when the
 * target accepted, else on_closed with the refusal. NULL and *err: MESH_ERR_INVAL,
 * MESH_ERR_LIMIT (MESH_RELAY_END_CIRCUITS open), MESH_ERR_NOMEM, or the send's error. */
mesh_stream *mesh_relay_end_connect(mesh_relay_end *e, const uint8_t *target,
                                    const mesh_stream_cbs *cbs, void *ud, int *err);

/* A Relay body (borrowed) the link's session received. MESH_OK (messages for circuits that
 * are gone are dropped: closes cross); MESH_ERR_PROTOCOL (a kind only a client of a relay
 * sends: the peer is broken, close its session). */
int mesh_relay_end_input(mesh_relay_end *e, const mesh_relay_msg *r);
/* The link's session can take more (after the send returned MESH_ERR_AGAIN). */
void mesh_relay_end_writable(mesh_relay_end *e);
/* The link's session ended: every circuit ends (MESH_ERR_RESET). */
void mesh_relay_end_link_closed(mesh_relay_end *e);

#endif
