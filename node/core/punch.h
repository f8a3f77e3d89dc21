/* punch.h — TCP hole punching over an authenticated session (sans-I/O).
 *
 * Two nodes A and B already share a Meshara session (in production a relayed one: the
 * coordination channel). They exchange Punch messages on it and then open TCP connections
 * to each other at the same moment from their listening ports (env connect_from: TCP
 * simultaneous open through NATs, RFC 5382). The first connection that comes up carries a
 * new Meshara session pinned to the key the coordination session proved; the others are
 * closed. Timing follows libp2p's DCUtR:
 *
 *   initiator                                          responder
 *   CONNECT{nonce, its candidates} ───────────────────▶ mesh_punch_respond()
 *                      ◀─────────────────── CONNECT{nonce, its candidates}
 *   rtt = now - CONNECT sent
 *   SYNC{nonce, rtt} ─────────────────────────────────▶ fire at once
 *   fire at SYNC sent + rtt/2
 *
 * so both SYNs leave when SYNC reaches the responder (the channel's one-way delay taken as
 * rtt/2). Firing = connect_from(cfg.local, c) for each of the peer's candidates. Roles on the
 * punched connection are fixed: the initiator is the TLS client (pinned to the peer's key),
 * the responder the TLS server (the peer's proven key is compared after the hello). A
 * connection can also reach this side's listener instead (the peer's SYN came first): the
 * owner hands such accepts to mesh_punch_accept(). The responder runs a server session on
 * every connection that comes up (they may differ on the two sides when there are several
 * candidates) and keeps the first that authenticates; the initiator adopts the first one up
 * and falls back to the next if its session fails.
 *
 * Bounds: at most MESH_PUNCH_MAX_CANDS candidates each way (the rest ignored, duplicates and
 * unusable ones dropped), at most max_rounds rounds (a round = CONNECT, SYNC, firing), so at
 * most max_rounds * MESH_PUNCH_MAX_CANDS connection attempts to a peer whatever it says;
 * a round ends round_timeout after firing; the initiator starts the next after backoff,
 * doubled each time. The responder takes at most max_rounds CONNECTs and gives up when no
 * new round comes within the longest backoff plus a round timeout.
 *
 * Outcome (on_done, exactly once, from an env event, never from inside a mesh_punch_* call):
 * MESH_OK with the punched session (CONNECTED, owned by the caller from then on), or
 * MESH_ERR_NOT_FOUND (no usable candidates on one side), MESH_ERR_TIMEOUT (nothing came up
 * in any round), MESH_ERR_REFUSED (every attempt refused), MESH_ERR_KEY_MISMATCH (the
 * connection came up to a node with another key), MESH_ERR_CLOSED (the coordination session
 * could not carry the messages), or the punched session's own failure code.
 * No global state; all time and timers from the env.
 */
#ifndef MESH_CORE_PUNCH_H
#define MESH_CORE_PUNCH_H

#include <stddef.h>
#include <stdint.h>

#include "core/session.h"
#include "core/tls.h"
#include "core/wire.h"
#include "meshara/env.h"

enum mesh_punch_limits {
    MESH_PUNCH_MAX_CANDS = 4,
    MESH_PUNCH_DEFAULT_ROUNDS = 3,
    MESH_PUNCH_DEFAULT_ROUND_TIMEOUT_MS = 3000,
    MESH_PUNCH_DEFAULT_BACKOFF_MS = 1000,
};

typedef struct mesh_punch mesh_punch;

/* Zero fields take the defaults above. Times in ns. */
typedef struct mesh_punch_cfg {
    mesh_addr local;        /* the listening address connect_from binds (port required) */
    const mesh_addr *cands; /* our candidates (observed, mapped); copied, first MAX_CANDS */
    size_t n_cands;
    mesh_time round_timeout; /* from firing (or CONNECT sent) to giving a round up */
    mesh_time backoff;       /* before the second round; doubled for each later one */
    unsigned max_rounds;
    const mesh_session_cfg *session; /* the punched session's; NULL = defaults (copied) */
} mesh_punch_cfg;

typedef struct mesh_punch_stats {
    unsigned rounds;      /* CONNECTs sent (initiator) or taken (responder) */
    unsigned attempts;    /* connect_from calls made */
    unsigned accepted;    /* connections taken through mesh_punch_accept */
    mesh_time rtt;        /* measured (initiator) or told in SYNC (responder); 0 = none */
    mesh_time started_at; /* first CONNECT sent or received */
    mesh_time fired_at;   /* last firing; 0 = never fired */
    mesh_time up_at;      /* first punched TCP connection up; 0 = none */
    mesh_time done_at;    /* outcome reached */
} mesh_punch_stats;

typedef struct mesh_punch_cbs {
    /* The outcome (see the top). On MESH_OK s is CONNECTED and the caller's (set its
     * callbacks: until then it has none); otherwise s is NULL. p may be freed inside. */
    void (*on_done)(mesh_punch *p, int result, mesh_session *s, void *ud);
} mesh_punch_cbs;

/* Start punching as the initiator over coord (CONNECTED, borrowed: it must outlive p or p
 * be freed first), whose proven peer key the punched session is pinned to. env and tls
 * borrowed. The first CONNECT is sent before this returns. The owner routes every Punch
 * envelope coord receives to mesh_punch_on_message, and accepts from the peer to
 * mesh_punch_accept. MESH_OK; MESH_ERR_INVAL (a NULL argument, cfg.local without a port,
 * coord not CONNECTED); MESH_ERR_UNSUPPORTED (env has no connect_from); MESH_ERR_NOMEM;
 * MESH_ERR_CLOSED (coord refused the message: nothing started). *out untouched on failure. */
int mesh_punch_start(mesh_punch **out, const mesh_env *env, mesh_tls_ctx *tls, mesh_session *coord,
                     const mesh_punch_cfg *cfg, const mesh_punch_cbs *cbs, void *ud);
/* Answer a CONNECT received on coord (the first Punch of a round, m borrowed) as the
 * responder: sends our CONNECT back. Arguments and codes as mesh_punch_start, plus
 * MESH_ERR_PROTOCOL (m is not a CONNECT). A CONNECT with no usable candidate still gets an
 * answer (so the initiator learns ours are the problem or not) and ends in MESH_ERR_NOT_FOUND. */
int mesh_punch_respond(mesh_punch **out, const mesh_env *env, mesh_tls_ctx *tls,
                       mesh_session *coord, const mesh_punch_cfg *cfg,
                       const Meshara__Wire__Punch *m, const mesh_punch_cbs *cbs, void *ud);
/* A later Punch from coord (borrowed). At the responder a CONNECT with a new nonce starts
 * a new round, replacing one in progress (the initiator gave it up first). MESH_OK (used);
 * MESH_ERR_PROTOCOL (unexpected here: wrong nonce, kind or moment, too many rounds —
 * ignored, nothing changes); MESH_ERR_STATE (p is done). */
int mesh_punch_on_message(mesh_punch *p, const Meshara__Wire__Punch *m);
/* A connection accepted on the listener at cfg.local from peer, while p runs: call from the
 * accept callback. Taken from the moment the peer's candidates are known until the round
 * ends (the peer's SYN may arrive before this side fires). MESH_OK: p took it (it owns the
 * stream now); MESH_ERR_NOT_FOUND: not one of ours (no round in that window, or peer is not
 * at a candidate's IP address) — the caller keeps it. */
int mesh_punch_accept(mesh_punch *p, mesh_stream *st, const mesh_addr *peer);
/* Stop everything; sessions and streams not handed over are closed. NULL: no-op. */
void mesh_punch_free(mesh_punch *p);
void mesh_punch_get_stats(const mesh_punch *p, mesh_punch_stats *out);
/* 1 for the initiator, 0 for the responder. */
int mesh_punch_is_initiator(const mesh_punch *p);

/* The usable candidates of a received Punch (the parsing path of every Punch): each address
 * parsed as mesh_addr text, with a port and an IP that is not unspecified, duplicates
 * dropped, at most max (<= MESH_PUNCH_MAX_CANDS) kept. Returns how many went to out. */
size_t mesh_punch_candidates(const Meshara__Wire__Punch *m, mesh_addr *out, size_t max);

#endif
