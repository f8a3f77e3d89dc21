/* bootstrap.h — joining the mesh: from what a node knows to a filled DHT neighbourhood.
 *
 * A join runs in phases, each tried only if the ones before did not succeed:
 *   1. STORED — records loaded from the peer store are already in the DHT: look ourselves up
 *      through them. A restarted node thus joins without any bootstrap node.
 *   2. SEEDS — the configured bootstrap nodes, MESH_BOOTSTRAP_PARALLEL at a time in order of
 *      their reliability score: connect with the key pinned, ask GET_PEERS, add the records
 *      to the DHT. The first answer ends the join (joined(MESH_OK): four round trips to that
 *      node) and starts the self lookup in the background; the other answers still add
 *      their records.
 *   3. MANUAL — the manual peers, the same way (every node answers GET_PEERS).
 * STORED succeeds with a successful self lookup; SEEDS and MANUAL with the first answer.
 * The join ends with joined(MESH_OK) then, joined(MESH_OK) at once
 * when there was nothing to try at all (the first node of a mesh), or
 * joined(MESH_ERR_UNREACHABLE) when every phase failed.
 *
 * Reliability score per bootstrap node (and manual peer): +MESH_BOOTSTRAP_SCORE_OK for an
 * answer, MESH_BOOTSTRAP_SCORE_FAIL for a failure, MESH_BOOTSTRAP_SCORE_IMPOSTOR when the
 * node at that address proved another key (MESH_ERR_KEY_MISMATCH: logged as a warning),
 * clamped to [SCORE_MIN, SCORE_MAX]. Scores order the attempts of later joins.
 *
 * Sans-I/O: the owner performs GET_PEERS through ops->get_peers and reports back (never from
 * inside that call). joined may be called from inside mesh_bootstrap_start() (nothing to
 * try); every other callback comes from the reply or DHT callbacks.
 */
#ifndef MESH_CORE_BOOTSTRAP_H
#define MESH_CORE_BOOTSTRAP_H

#include <stddef.h>
#include <stdint.h>

#include "core/dht.h"
#include "meshara/env.h"
#include "meshara/meshara.h"

enum mesh_bootstrap_limits {
    MESH_BOOTSTRAP_PARALLEL = 4, /* GET_PEERS attempts in flight in one phase */
    MESH_BOOTSTRAP_SCORE_OK = 1,
    MESH_BOOTSTRAP_SCORE_FAIL = -1,
    MESH_BOOTSTRAP_SCORE_IMPOSTOR = -5,
    MESH_BOOTSTRAP_SCORE_MIN = -10,
    MESH_BOOTSTRAP_SCORE_MAX = 10,
};

typedef enum mesh_bootstrap_phase {
    MESH_BOOTSTRAP_IDLE = 0,
    MESH_BOOTSTRAP_STORED = 1,
    MESH_BOOTSTRAP_SEEDS = 2,
    MESH_BOOTSTRAP_MANUAL = 3,
    MESH_BOOTSTRAP_DONE = 4,
} mesh_bootstrap_phase;

typedef struct mesh_bootstrap mesh_bootstrap;

typedef struct mesh_bootstrap_ops {
    /* Connect to peer (its key pinned) and ask GET_PEERS; exactly one reply(ctx, ...) later
     * with the verified records (MESH_OK) or the failure. An error return means no reply. */
    int (*get_peers)(void *ud, const mesh_node_peer *peer, mesh_dht_reply_fn reply, void *ctx);
    /* The join ended (see above). */
    void (*joined)(void *ud, int status);
} mesh_bootstrap_ops;

/* seeds and manual are copied; env, dht and ops are borrowed (must outlive it). MESH_OK;
 * MESH_ERR_INVAL (more than MESH_NODE_MAX_BOOTSTRAP / MESH_NODE_MAX_MANUAL); MESH_ERR_NOMEM. */
int mesh_bootstrap_new(mesh_bootstrap **out, const mesh_env *env, mesh_dht *dht,
                       const mesh_node_peer *seeds, size_t nseeds, const mesh_node_peer *manual,
                       size_t nmanual, const mesh_bootstrap_ops *ops, void *ud);
/* No callbacks; the owner must have dropped its outstanding get_peers (their replies must
 * not arrive afterwards). NULL: no-op. */
void mesh_bootstrap_free(mesh_bootstrap *b);
/* Start a join (again after one ended). MESH_OK; MESH_ERR_STATE (a join is running). */
int mesh_bootstrap_start(mesh_bootstrap *b);
mesh_bootstrap_phase mesh_bootstrap_get_phase(const mesh_bootstrap *b);
/* Stats of seed i. MESH_OK or MESH_ERR_NOT_FOUND. */
int mesh_bootstrap_seed_stats(const mesh_bootstrap *b, size_t i, mesh_node_bootstrap_stats *out);

#endif
