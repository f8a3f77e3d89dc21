/* node_impl.h — what the node's source files share: the node object, the operations in flight
 * and the functions one file calls in another. Only node/core/node*.c include it (tests use
 * core/node.h).
 *
 * The node (meshara/meshara.h) is one module in three files, split along its seams:
 *   node.c         the API: create, start, close, free; send, query, lookup, connect; stats.
 *   node_ops.c     operations in flight (sends waiting for an AppAck, queries waiting for a
 *                  Response), the DHT lookups they start, and the DHT transport and bootstrap
 *                  ops made of node queries.
 *   node_events.c  what happens to the node: pool and server events, messages, queries to
 *                  answer, peer records (and the peer store), mDNS, the port mapping's
 *                  reports, and the deferred delivery of on_peer / on_joined to the application.
 *   node_reach.c   its reachability: observed addresses into core/reach, dial-back (asking
 *                  peers to confirm an address; dialing back for peers that ask).
 *   node_turn.c    its TURN allocation (cfg.turn_server): the relayed address, sessions
 *                  through the server.
 *   node_punch.c   hole punching (core/punch) over relayed sessions: the punched session
 *                  takes the relayed one's place in the pool.
 *   node_stun.c    its STUN Bindings (cfg.stun): the mapped address as a reachability claim.
 */
#ifndef MESH_CORE_NODE_IMPL_H
#define MESH_CORE_NODE_IMPL_H

#include "core/identity.h"
#include "core/node.h"
#include "core/portmap.h"
#include "core/punch.h"
#include "core/reach.h"
#include "core/relay_end.h"
#include "core/server.h"
#include "core/session.h"
#include "core/tls.h"
#include "core/wire.h"

enum op_kind { OP_SEND = 1, OP_QUERY = 2 };
enum op_state { OP_NEW = 0, OP_LOOKUP, OP_CONNECTING, OP_SENT };

/* What came back for an op (internal form of mesh_node_answer). */
typedef struct answer {
    int status;
    const uint8_t *payload;
    size_t payload_len;
    const mesh_peer_record *recs;
    size_t nrecs;
    mesh_time rtt;
} answer;
typedef void (*answer_fn)(mesh_node *n, void *ctx, const answer *a);

typedef struct lookup lookup;

typedef struct op {
    mesh_node *n;
    int kind, state;
    uint64_t id;
    uint8_t key[MESH_PUBKEY_LEN];
    uint8_t peer_id[MESH_NODE_ID_LEN];
    mesh_addr addrs[MESH_PEER_MAX_ADDRS]; /* where to connect, when known up front */
    size_t naddrs;
    int pool_flags;
    int no_lookup;  /* DHT transport: the record is all we know; never look up from inside */
    int relay_wait; /* CONNECTING through a relay (node_relay.c wakes it) */
    int relay_tried;
    int reconnects; /* after orderly closes of the session it was sent on */
    uint8_t *data;  /* AppData payload or query payload (owned) */
    size_t len;
    int qtype;
    uint8_t target[MESH_NODE_ID_LEN];
    int has_target;
    mesh_timer *timer;
    mesh_pool_conn *conn; /* SENT: the peer (held) and the session it went out on */
    mesh_session *sess;
    mesh_time sent_at;
    lookup *lk;
    /* completion: a send's done, or a query's answer function */
    mesh_node_done_fn done;
    void *done_ud;
    answer_fn afn;
    void *actx;
    struct op *prev, *next, *hnext;
} op;

/* A DHT lookup in flight: for an op (op may be cleared if the op ends first) or for
 * mesh_node_lookup(). The DHT cannot cancel lookups, so this outlives whoever asked. */
struct lookup {
    mesh_node *n;
    op *op;
    uint8_t target[MESH_NODE_ID_LEN];
    mesh_node_lookup_fn cb;
    void *ud;
    struct lookup *prev, *next;
};

/* Dial-back (node_reach.c, docs/nat.md). Asking: a round per candidate address, at most
 * DB_ASK peers asked, confirmed at DB_AGREE successes. Answering: at most DB_JOBS dials at a
 * time, one per asker per DB_ASKER_GAP. */
enum {
    DB_OBSERVERS = 8, /* recent outbound peers that can be asked */
    DB_ASK = 3,
    DB_AGREE = 2,
    DB_JOBS = 4,
    DB_RATE = 32, /* askers remembered for the gap */
};
typedef struct db_job db_job;
typedef struct node_turn node_turn;
typedef struct node_stun node_stun;
typedef struct node_dialback {
    uint8_t observers[DB_OBSERVERS][MESH_PUBKEY_LEN];
    mesh_addr observer_saw[DB_OBSERVERS]; /* where each saw our connection come from */
    size_t nobservers, obs_next;
    mesh_addr cand;      /* the address being confirmed (family NONE: none) */
    mesh_addr confirmed; /* the address in our record (family NONE: none) */
    int asked, ok, failed, inflight;
    uint64_t round;     /* changes with cand: late answers of a past round are ignored */
    mesh_time retry_at; /* a failed round: when the next for the same address may start */
    int round_limited;  /* a peer of this round answered MESH_ERR_LIMIT (its rate bound) */
    mesh_timer *retry;  /* fires at retry_at (made at the first failed round) */
    uint8_t asked_keys[DB_ASK][MESH_PUBKEY_LEN];
    db_job *jobs[DB_JOBS];
    struct {
        uint8_t id[8];
        mesh_time at;
    } rate[DB_RATE];
    size_t rate_next;
    uint64_t total_asked, total_ok;   /* asking side counters */
    uint64_t dials, refused, limited; /* answering side counters */
} node_dialback;

/* Relays (node_relay.c, docs/nat.md). */
enum {
    RL_ENDS = 16,     /* sessions to relays we use (reserving or dialling through) */
    RL_PENDING = 32,  /* relayed sessions handshaking (ours and arriving) */
    RL_RELAYED = 256, /* relayed sessions in the pool (for their path) */
};
typedef struct rl_end {
    mesh_session *link; /* NULL: slot free */
    mesh_relay_end *end;
    mesh_env env; /* the end's overlay: the circuits' sessions run on it */
    int slot;     /* the reservation it carries (index into cfg.relays), or -1 */
    int dead;     /* link gone: freed once its circuits are */
} rl_end;
typedef struct rl_slot {
    int state; /* enum in node_relay.c */
    mesh_time next_try, renew_at;
    mesh_time backoff;
    mesh_node *n;
} rl_slot;
typedef struct rl_dial rl_dial;
typedef struct node_relays {
    mesh_relay_service *svc;
    mesh_timer *timer, *kick;
    mesh_time started_at; /* the unknown-state bound counts from here */
    int freeing;
    rl_end ends[RL_ENDS];
    rl_slot slots[MESH_NODE_MAX_RELAYS];
    mesh_session *pending[RL_PENDING];
    rl_dial *dials[RL_PENDING];
    mesh_session *relayed[RL_RELAYED];
    size_t nrelayed;
    uint64_t dials_total, dial_failures;
} node_relays;

/* Hole punching (node_punch.c, docs/nat.md): punches at once, peers remembered for their
 * attempts and backoff (the oldest forgotten), punched sessions in the pool (for their path). */
enum {
    PN_RUNS = 8,
    PN_PEERS = 64,
    PN_PUNCHED = 256,
};
typedef struct pn_run {
    mesh_punch *p;       /* NULL: slot free */
    mesh_session *coord; /* the relayed session it runs over */
    uint8_t peer_id[MESH_NODE_ID_LEN];
    mesh_node *n;
} pn_run;
typedef struct pn_peer {
    uint8_t id[MESH_NODE_ID_LEN];
    unsigned tries;  /* rounds of punching started (initiator) or answered (responder) */
    mesh_time next;  /* no new attempt before */
    mesh_time touch; /* for replacing the oldest */
    int used;
} pn_peer;
typedef struct node_punches {
    mesh_timer *timer;
    int armed;
    pn_run runs[PN_RUNS];
    pn_peer peers[PN_PEERS];
    mesh_addr listen_ext;      /* our listening port as a peer saw it (family NONE: not known) */
    mesh_session *listen_sess; /* the session that told us (it keeps the NAT mapping alive) */
    mesh_session *punched[PN_PUNCHED];
    size_t npunched;
    uint64_t started, ok, failed, dropped; /* punches run, ended punched, failed; drops */
    int last_err;                          /* the last failure (MESH_OK: none) */
    mesh_time log_at; /* unsolicited Punch messages: one log line per interval */
    uint64_t log_quiet;
} node_punches;

enum note_kind { NOTE_PEER = 1, NOTE_JOINED = 2, NOTE_REACH = 3 };
typedef struct note {
    int kind, connected, status;
    uint8_t key[MESH_PUBKEY_LEN];
} note;

struct mesh_node {
    mesh_env env;
    mesh_node_cfg cfg;
    mesh_node_cbs cbs;
    void *ud;
    const mesh_identity *id;
    mesh_tls_ctx *tls;
    mesh_session_cfg scfg;
    mesh_server *srv;
    mesh_pool *pool;
    mesh_dht *dht;
    mesh_bootstrap *boot;
    mesh_peer_record self;
    char host_name[MESH_HOST_NAME_MAX + 1]; /* cfg.host_name's copy ("" = none): our record's */
    char *peer_names; /* the bootstrap and manual peers' host names, cfg's point into it */
    /* The record being dialled during a pool call made for it (a DHT contact's, a lookup's
     * hit, not necessarily in the routing table): its host name is the SNI the pool asks for
     * (mesh_pool_cbs.server_name). NULL outside such a call. */
    const mesh_peer_record *dialling;
    mesh_peer_cache vcache; /* records verified before (shared with the DHT) */
    mesh_addr bound;
    int started, joined, join_reported, closing;
    uint64_t next_id;
    op *ops;
    op *buckets[MESH_NODE_OP_BUCKETS];
    size_t nops;
    lookup *lookups;
    note *notes;
    size_t nnotes, notes_cap;
    int joined_spare, joined_spare_status; /* an on_joined the queue had no memory for */
    mesh_timer *note_timer;
    int mdns_on;
    mesh_portmap *portmap; /* the listening port's mapping (NULL: none asked for) */
    mesh_reach *reach;     /* what we know of our own reachability */
    node_dialback db;      /* dial-backs: ours to confirm an address, and those we run */
    node_turn *turn;       /* the TURN allocation (NULL: not configured) */
    node_stun *stun;       /* the STUN servers asked (NULL: none configured) */
    node_relays rl;        /* relay service, reservations, relayed sessions */
    node_punches pn;       /* hole punching over relayed sessions */
    char mdns_name[sizeof MESH_NODE_MDNS_PREFIX + 16];
    mesh_node_stats st;
};

/* ---- node_ops.c --------------------------------------------------------------------------- */

/* The op with id, or NULL. */
op *mesh_node_op_find(mesh_node *n, uint64_t id);
/* A new op (kind: enum op_kind) to key, its deadline timeout from now, linked into the node's
 * list and table. NULL: no memory. */
op *mesh_node_op_new(mesh_node *n, int kind, const uint8_t key[MESH_PUBKEY_LEN], mesh_time timeout);
/* Unlink and free without any callback. */
void mesh_node_op_free(op *o);
/* The op's one completion (frees o, then calls back). */
void mesh_node_op_finish(op *o, const answer *a);
void mesh_node_op_fail(op *o, int status);
/* Put o on c's usable session. MESH_OK or the session's send error. */
int mesh_node_op_transmit(op *o, mesh_pool_conn *c);
/* Move o towards a session. MESH_OK (the op goes on) or an error (nothing started). */
int mesh_node_op_go(op *o);
/* A DHT lookup of target for o (NULL: for mesh_node_lookup's cb). MESH_OK or the DHT's error. */
int mesh_node_lookup_start(mesh_node *n, const uint8_t target[MESH_NODE_ID_LEN], op *o,
                           mesh_node_lookup_fn cb, void *ud);
/* A query op to key (addrs: where to connect if not connected; may be none); afn(actx) gets
 * the answer. MESH_OK; MESH_ERR_LIMIT; MESH_ERR_NOMEM; what mesh_node_op_go returns. */
int mesh_node_query_start(mesh_node *n, const uint8_t key[MESH_PUBKEY_LEN], const mesh_addr *addrs,
                          size_t naddrs, int pool_flags, int type, const uint8_t *payload,
                          size_t len, mesh_time timeout, answer_fn afn, void *actx);
/* The DHT's transport and the bootstrap manager's ops, made of node queries (ud: the node). */
extern const mesh_dht_transport mesh_node_dht_transport;
extern const mesh_bootstrap_ops mesh_node_bootstrap_ops;

/* ---- node_events.c ------------------------------------------------------------------------ */

/* Queue an on_peer (NOTE_PEER) or on_joined (NOTE_JOINED) for delivery from note_timer. */
void mesh_node_notify(mesh_node *n, int kind, const uint8_t *key, int connected, int status);
/* note_timer's callback: deliver what is queued. */
void mesh_node_notes_fired(mesh_timer *t, void *ud);
/* The pool's callbacks (ud: the node). */
extern const mesh_pool_cbs mesh_node_pool_cbs;
/* The server's on_session: an authenticated inbound session goes to the pool. */
void mesh_node_server_session(mesh_server *srv, mesh_session *s, void *ud);
/* The server's on_accept: a connection a hole punch expects goes to it (node_punch.c). */
int mesh_node_server_accept(mesh_server *srv, mesh_stream *st, const mesh_addr *peer, void *ud);
/* The peer store's load callback: verify a stored record and add it to the DHT. */
void mesh_node_store_each(void *ud, const uint8_t *rec, size_t len);
/* Publish and browse on mDNS if configured and the env offers it (after the listener). */
void mesh_node_mdns_start(mesh_node *n);
/* Map the listening port if the env offers port mapping and cfg does not forbid it (after
 * the listener). Failures are logged: the node runs without a mapping. */
void mesh_node_portmap_start(mesh_node *n);
/* Our record changed: announce it on the sessions to the peers closest to us in the DHT (the
 * ones a lookup of our id asks), so that lookups find the new one. */
void mesh_node_announce_closest(mesh_node *n);
/* ---- node.c ------------------------------------------------------------------------------- */

/* Our record's configured addresses: the advertised ones, else the bound address if it is
 * specific. Returns how many (at most MESH_PEER_MAX_ADDRS). */
size_t mesh_node_self_addrs(const mesh_node *n, mesh_addr *out);

/* ---- node_reach.c -------------------------------------------------------------------------- */

/* A session we opened is up: what the peer saw of us goes to the reachability state, and a
 * dial-back round may start. */
void mesh_node_reach_session(mesh_node *n, mesh_session *s);
/* family's reachability changed: log it, maybe start a dial-back round. */
void mesh_node_reach_changed(mesh_node *n, int family);
/* A port-mapping attempt failed without changing the state: tell the owner, and let the
 * dial-back take the NAT's address it held back while the gateway was first asked. */
void mesh_node_reach_portmap_failed(mesh_node *n);
/* A peer on s asks us to dial it back (QUERY_DIAL_BACK). MESH_OK: a dial started, the
 * answer follows when it ends; else the status to answer at once (MESH_ERR_INVAL,
 * MESH_ERR_REFUSED, MESH_ERR_LIMIT, a connect failure). */
int mesh_node_dialback_start(mesh_node *n, mesh_session *s, const Meshara__Wire__Query *q);
/* Abort the dials in flight (no answers), free the reach state. */
void mesh_node_reach_free(mesh_node *n);
/* Our record: the configured addresses, the confirmed one, the TURN relayed one and the
 * relays we hold reservations on, re-signed with seq + 1 (and given to the DHT). */
void mesh_node_record_update(mesh_node *n);

/* ---- node_relay.c -------------------------------------------------------------------------- */

/* The relay service (cfg.relay_service) and the reservation timer. MESH_OK; MESH_ERR_NOMEM. */
int mesh_node_relay_start(mesh_node *n);
/* The relays we hold a reservation on (at most MESH_PEER_MAX_RELAYS), for our record. */
size_t mesh_node_relay_refs(const mesh_node *n, mesh_peer_relay *out);
/* A Relay body arrived on s (a session of c). */
void mesh_node_relay_input(mesh_node *n, mesh_pool_conn *c, mesh_session *s,
                           const Meshara__Wire__Relay *r);
/* Session s (in the pool) closed: circuits carried by it end, s leaves the relayed list. */
void mesh_node_relay_session_closed(mesh_node *n, mesh_session *s);
/* Session s left the pool without closing yet (its peer evicted: mesh_pool_cbs): circuits
 * carried by it end and s leaves every list, as when it closes; reservations are held over
 * pinned sessions, which are never orphaned. No pool call. */
void mesh_node_relay_session_orphaned(mesh_node *n, mesh_session *s);
/* Open a session to the peer of record r through one of its relays; the session joins the
 * pool when up, and the ops waiting for the peer (OP_CONNECTING) go on then. MESH_OK (under
 * way); MESH_ERR_UNREACHABLE (no relay in r); MESH_ERR_LIMIT; MESH_ERR_NOMEM. */
int mesh_node_relay_dial(mesh_node *n, const mesh_peer_record *r);
/* The path of s (enum mesh_node_path). */
int mesh_node_session_path(const mesh_node *n, const mesh_session *s);
/* Sessions, ends, service, timer: everything freed, nothing sent. Before the pool's free
 * (the relayed sessions' streams belong to the ends). */
void mesh_node_relay_free_pending(mesh_node *n);
void mesh_node_relay_free(mesh_node *n);

/* ---- node_punch.c -------------------------------------------------------------------------- */

/* The punch timer. MESH_OK; MESH_ERR_NOMEM. */
int mesh_node_punch_start(mesh_node *n);
/* Session s of the pool came up: a relayed one we dialled is punched from the timer. */
void mesh_node_punch_session_up(mesh_node *n, mesh_session *s);
/* A Punch body arrived on s (a session of c): to the punch running over s, or answered as a
 * new responder's round when s is a relayed session the peer dialled; else dropped (logged,
 * at most a line per interval). */
void mesh_node_punch_input(mesh_node *n, mesh_pool_conn *c, mesh_session *s,
                           const Meshara__Wire__Punch *m);
/* The server's accept hook: 1 if a running punch took the stream, else 0. */
int mesh_node_punch_accept(mesh_node *n, mesh_stream *st, const mesh_addr *peer);
/* Session s left the pool (closed or orphaned): a punch over it stops, s leaves the list. */
void mesh_node_punch_session_gone(mesh_node *n, mesh_session *s);
/* 1 if s is a punched session in the pool. */
int mesh_node_punch_is_punched(const mesh_node *n, const mesh_session *s);
/* Every punch stopped (sessions not handed over closed), the timer freed. No callbacks. */
void mesh_node_punch_free(mesh_node *n);

/* node_turn.c: cfg's TURN settings copied (MESH_OK also when there are none; MESH_ERR_INVAL:
 * a server without credentials; MESH_ERR_NOMEM); start allocating; the relayed address while
 * allocated (MESH_ERR_NOT_FOUND otherwise); free (after the pool: its sessions borrow the
 * TURN client's overlay env). */
int mesh_node_turn_new(mesh_node *n, const mesh_node_cfg *cfg);
void mesh_node_turn_start(mesh_node *n);
int mesh_node_turn_addr(const mesh_node *n, mesh_addr *out);
void mesh_node_turn_free(mesh_node *n);

/* node_stun.c: cfg's STUN servers checked and copied (MESH_OK also when there are none;
 * MESH_ERR_INVAL: too many, or one without address or port; MESH_ERR_NOMEM); start asking
 * them (after the listener: the requests leave from its address); free (cancels what runs). */
int mesh_node_stun_new(mesh_node *n, const mesh_node_cfg *cfg);
void mesh_node_stun_start(mesh_node *n);
void mesh_node_stun_free(mesh_node *n);

#endif
