/* bootstrap.c — the join phases and reliability scores of bootstrap.h.
 *
 * Each configured peer (seed or manual) is an `entry` whose address doubles as the reply
 * context of its GET_PEERS, so at most one attempt per entry is in flight; a later join skips
 * entries still waiting for an earlier reply. `gen` counts joins, so a reply or lookup from an
 * earlier join only adds its records and moves no phase.
 */
#include "core/bootstrap.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    mesh_bootstrap *b;
    mesh_node_peer peer;
    int manual;
    int pending;  /* GET_PEERS in flight */
    int tried;    /* attempted in the current join */
    uint64_t gen; /* join of the attempt in flight */
    mesh_node_bootstrap_stats st;
} entry;

struct mesh_bootstrap {
    const mesh_env *env;
    mesh_dht *dht;
    mesh_bootstrap_ops ops;
    void *ud;
    entry *e; /* seeds first, then manual peers */
    size_t nseeds, nmanual;
    mesh_bootstrap_phase phase;
    uint64_t gen;
    int answered; /* an entry of the current phase answered */
    int lookup_running;
};

static void next_phase(mesh_bootstrap *b);

static entry *phase_entries(mesh_bootstrap *b, size_t *n)
{
    if (b->phase == MESH_BOOTSTRAP_SEEDS) {
        *n = b->nseeds;
        return b->e;
    }
    if (b->phase == MESH_BOOTSTRAP_MANUAL) {
        *n = b->nmanual;
        return b->e + b->nseeds;
    }
    *n = 0;
    return NULL;
}

static void finish(mesh_bootstrap *b, int status)
{
    b->phase = MESH_BOOTSTRAP_DONE;
    if (b->ops.joined)
        b->ops.joined(b->ud, status);
}

static void lookup_done(void *ud, int status, const mesh_peer_record *closest, size_t n,
                        unsigned hops, unsigned queries)
{
    (void)closest;
    mesh_bootstrap *b = ud;
    b->lookup_running = 0;
    mesh_log(b->env, status == MESH_OK ? MESH_LOG_INFO : MESH_LOG_WARN,
             "join: self lookup in phase %d: %s (%zu close nodes, %u hops, %u queries)",
             (int)b->phase, mesh_errname(status), n, hops, queries);
    if (b->phase == MESH_BOOTSTRAP_DONE)
        return;
    if (status == MESH_OK)
        finish(b, MESH_OK);
    else
        next_phase(b);
}

static void start_lookup(mesh_bootstrap *b)
{
    if (b->lookup_running)
        return;
    if (mesh_dht_bootstrap(b->dht, lookup_done, b) == MESH_OK)
        b->lookup_running = 1;
    else
        next_phase(b);
}

static void adjust(entry *e, int delta)
{
    e->st.score += delta;
    if (e->st.score > MESH_BOOTSTRAP_SCORE_MAX)
        e->st.score = MESH_BOOTSTRAP_SCORE_MAX;
    if (e->st.score < MESH_BOOTSTRAP_SCORE_MIN)
        e->st.score = MESH_BOOTSTRAP_SCORE_MIN;
}

static void launch_more(mesh_bootstrap *b);

static void got_peers(void *ctx, int status, const mesh_peer_record *peers, size_t n)
{
    entry *e = ctx;
    mesh_bootstrap *b = e->b;
    char at[MESH_ADDR_STRLEN];
    mesh_addr_format(&e->peer.addr, at, sizeof at);
    e->pending = 0;
    e->st.last_result = status;
    if (status == MESH_OK) {
        e->st.answers++;
        adjust(e, MESH_BOOTSTRAP_SCORE_OK);
        for (size_t i = 0; i < n; i++)
            (void)mesh_dht_add(b->dht, &peers[i], 0);
        mesh_log(b->env, MESH_LOG_INFO, "join: %s %s answered with %zu peers",
                 e->manual ? "manual peer" : "bootstrap node", at, n);
    } else {
        e->st.failures++;
        if (status == MESH_ERR_KEY_MISMATCH) {
            adjust(e, MESH_BOOTSTRAP_SCORE_IMPOSTOR);
            mesh_log(b->env, MESH_LOG_WARN,
                     "join: %s %s proved another key than the pinned one (impostor?): "
                     "score %d",
                     e->manual ? "manual peer" : "bootstrap node", at, e->st.score);
        } else {
            adjust(e, MESH_BOOTSTRAP_SCORE_FAIL);
            mesh_log(b->env, MESH_LOG_INFO, "join: %s %s failed: %s (score %d)",
                     e->manual ? "manual peer" : "bootstrap node", at, mesh_errname(status),
                     e->st.score);
        }
    }
    size_t ne;
    entry *cur = phase_entries(b, &ne);
    if (e->gen != b->gen || !cur || e < cur || e >= cur + ne)
        return; /* an earlier join or phase: records kept, nothing moves */
    if (status == MESH_OK && !b->answered) {
        /* Joined: a pinned peer answered and its records are in our table (connect, TLS,
         * hello, GET_PEERS: 4 round trips). The self lookup that fills our neighbourhood
         * goes on in the background; waiting for it made joins take ~30 round trips. */
        b->answered = 1;
        finish(b, MESH_OK);
        start_lookup(b);
        return;
    }
    if (b->answered)
        return;
    launch_more(b);
    for (size_t i = 0; i < ne; i++)
        if (cur[i].pending && cur[i].gen == b->gen)
            return;
    next_phase(b); /* every attempt of this phase failed */
}

/* Start attempts of the current phase, best score first, up to MESH_BOOTSTRAP_PARALLEL in
 * flight. */
static void launch_more(mesh_bootstrap *b)
{
    size_t n;
    entry *es = phase_entries(b, &n);
    for (;;) {
        size_t inflight = 0;
        entry *best = NULL;
        for (size_t i = 0; i < n; i++) {
            inflight += es[i].pending && es[i].gen == b->gen;
            if (!es[i].tried && !es[i].pending && (!best || es[i].st.score > best->st.score))
                best = &es[i];
        }
        if (!best || inflight >= MESH_BOOTSTRAP_PARALLEL)
            return;
        best->tried = 1;
        best->st.attempts++;
        int rc = b->ops.get_peers(b->ud, &best->peer, got_peers, best);
        if (rc == MESH_OK) {
            best->pending = 1;
            best->gen = b->gen;
        } else {
            best->st.failures++;
            best->st.last_result = rc;
            adjust(best, MESH_BOOTSTRAP_SCORE_FAIL);
        }
    }
}

static void next_phase(mesh_bootstrap *b)
{
    while (b->phase < MESH_BOOTSTRAP_DONE) {
        b->phase++;
        b->answered = 0;
        if (b->phase == MESH_BOOTSTRAP_DONE)
            break;
        size_t n;
        entry *es = phase_entries(b, &n);
        for (size_t i = 0; i < n; i++)
            es[i].tried = 0;
        launch_more(b);
        for (size_t i = 0; i < n; i++)
            if (es[i].pending && es[i].gen == b->gen)
                return; /* replies drive the phase on */
    }
    mesh_log(b->env, MESH_LOG_WARN,
             "join: no stored peer, bootstrap node or manual peer answered (%zu bootstrap "
             "nodes, %zu manual peers configured)",
             b->nseeds, b->nmanual);
    finish(b, MESH_ERR_UNREACHABLE);
}

int mesh_bootstrap_new(mesh_bootstrap **out, const mesh_env *env, mesh_dht *dht,
                       const mesh_node_peer *seeds, size_t nseeds, const mesh_node_peer *manual,
                       size_t nmanual, const mesh_bootstrap_ops *ops, void *ud)
{
    if (!out || !env || !dht || !ops || !ops->get_peers || nseeds > MESH_NODE_MAX_BOOTSTRAP ||
        nmanual > MESH_NODE_MAX_MANUAL || (nseeds && !seeds) || (nmanual && !manual))
        return MESH_ERR_INVAL;
    mesh_bootstrap *b = calloc(1, sizeof *b);
    if (!b)
        return MESH_ERR_NOMEM;
    b->e = calloc(nseeds + nmanual + 1, sizeof *b->e);
    if (!b->e) {
        free(b);
        return MESH_ERR_NOMEM;
    }
    for (size_t i = 0; i < nseeds + nmanual; i++) {
        b->e[i].b = b;
        b->e[i].manual = i >= nseeds;
        b->e[i].peer = i < nseeds ? seeds[i] : manual[i - nseeds];
    }
    b->env = env;
    b->dht = dht;
    b->ops = *ops;
    b->ud = ud;
    b->nseeds = nseeds;
    b->nmanual = nmanual;
    *out = b;
    return MESH_OK;
}

void mesh_bootstrap_free(mesh_bootstrap *b)
{
    if (!b)
        return;
    free(b->e);
    free(b);
}

int mesh_bootstrap_start(mesh_bootstrap *b)
{
    if (b->phase != MESH_BOOTSTRAP_IDLE && b->phase != MESH_BOOTSTRAP_DONE)
        return MESH_ERR_STATE;
    b->gen++;
    b->answered = 0;
    mesh_dht_stats ds = mesh_dht_get_stats(b->dht);
    if (ds.entries == 0 && b->nseeds == 0 && b->nmanual == 0) {
        mesh_log(b->env, MESH_LOG_INFO, "join: nothing to join (first node of a mesh)");
        finish(b, MESH_OK);
        return MESH_OK;
    }
    if (ds.entries > 0) {
        b->phase = MESH_BOOTSTRAP_STORED;
        mesh_log(b->env, MESH_LOG_INFO, "join: %zu known peers, looking ourselves up", ds.entries);
        start_lookup(b);
        return MESH_OK;
    }
    b->phase = MESH_BOOTSTRAP_STORED;
    next_phase(b);
    return MESH_OK;
}

mesh_bootstrap_phase mesh_bootstrap_get_phase(const mesh_bootstrap *b)
{
    return b->phase;
}

int mesh_bootstrap_seed_stats(const mesh_bootstrap *b, size_t i, mesh_node_bootstrap_stats *out)
{
    if (i >= b->nseeds)
        return MESH_ERR_NOT_FOUND;
    *out = b->e[i].st;
    return MESH_OK;
}
