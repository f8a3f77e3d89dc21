/* vpipe.h — a test provider (core/vstream.h) joining two virtual streams like one loopback
 * TCP connection, with faults a relay could commit.
 *
 * Side 0 and side 1 are virtual streams, each on an overlay env (the same one or two). What
 * a side writes waits in the pipe (its stream_pending) until the pipe's base-env timer moves
 * it, at the same virtual instant, into the other side (mesh_vstream_push), then reports the
 * writer drained. A graceful close reaches the other side as an orderly end after the bytes
 * before it; an abort drops what waits and reaches it as MESH_ERR_RESET. Faults: one byte of
 * one direction flipped at a given offset (a relay altering bytes).
 *
 * The test owns the pipe and frees it with mesh_vpipe_free, which touches no stream (free the
 * overlays for those). Test code: not thread-safe, out of memory aborts.
 */
#ifndef MESH_TEST_VPIPE_H
#define MESH_TEST_VPIPE_H

#include <stdint.h>

#include "core/vstream.h"
#include "mesh_test.h"

typedef struct mesh_vpipe mesh_vpipe;

/* Called from the pipe's first timer turn, before any byte moves: a test opens side 1 there
 * and reports side 0 connected (an accept), or ends side 0 (a refusal). */
typedef void (*mesh_vpipe_arrive_fn)(mesh_vpipe *p, void *ud);

/* A pipe whose timer runs on base (borrowed, must outlive the pipe). */
mesh_vpipe *mesh_vpipe_new(const mesh_env *base);
/* Free the pipe; the streams are left alone. NULL: no-op. */
void mesh_vpipe_free(mesh_vpipe *p);
/* Open side (0 or 1) as a virtual stream of v: connecting (cbs, ud given here; on_connected
 * after mesh_vpipe_connected) or connected (the consumer adopts it with stream_set_cbs). */
mesh_stream *mesh_vpipe_open(mesh_vpipe *p, int side, mesh_vstream_env *v, int connecting,
                             const mesh_addr *local, const mesh_addr *remote,
                             const mesh_stream_cbs *cbs, void *ud);
/* Run fn from the pipe's next timer turn (once). */
void mesh_vpipe_on_arrive(mesh_vpipe *p, mesh_vpipe_arrive_fn fn, void *ud);
/* Side (opened connecting) is connected: bytes written so far start to move. */
void mesh_vpipe_connected(mesh_vpipe *p, int side);
/* End side with reason as a broken carrier would (e.g. MESH_ERR_REFUSED); its peer, if
 * open, is reset. */
void mesh_vpipe_end(mesh_vpipe *p, int side, int reason);
/* Flip (xor 0x01) the byte at offset (counted from the first byte side `from` wrote). */
void mesh_vpipe_flip(mesh_vpipe *p, int from, uint64_t offset);
/* Keep a copy of every byte moved (as delivered, after a flip), per direction. */
void mesh_vpipe_record(mesh_vpipe *p);
/* What moved out of side `from` (recorded only after mesh_vpipe_record). Borrowed. */
const mesh_test_buf *mesh_vpipe_seen(const mesh_vpipe *p, int from);
/* Bytes moved out of side `from` so far. */
uint64_t mesh_vpipe_moved(const mesh_vpipe *p, int from);
/* Provider close ops the pipe received for side (the consumer released it). */
int mesh_vpipe_closes(const mesh_vpipe *p, int side);

#endif
