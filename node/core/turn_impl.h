/* turn_impl.h — what turn.c (control connection) and turn_conn.c (data connections) share:
 * the client's state and the helpers each side calls of the other. Not an API: turn.h is. */
#ifndef MESH_CORE_TURN_IMPL_H
#define MESH_CORE_TURN_IMPL_H

#include "core/turn.h"

enum { K_ALLOCATE, K_REFRESH, K_PERMISSION, K_CONNECT };
enum { S_CONNECTING, S_ALLOCATING, S_ALLOCATED, S_DEAD };
enum { D_FREE, D_CONNECT_REQ, D_TCP, D_BINDING, D_OPEN };

typedef struct ctxn {
    int used, kind, tries, authed;
    uint8_t tid[MESH_STUN_TID_LEN];
    mesh_time deadline;
    int conn; /* K_CONNECT: the data connection slot */
} ctxn;

typedef struct dconn {
    mesh_turn *t;
    int state, outbound, tries;
    uint32_t id;
    mesh_addr peer;
    mesh_stream *bs; /* the TCP connection to the server (base env) */
    mesh_stream *vs; /* the virtual stream (overlay env); NULL once released or ended */
    uint8_t tid[MESH_STUN_TID_LEN];
    mesh_time deadline;
    uint8_t *buf; /* the ConnectionBind answer being read */
    size_t have;
    uint8_t *pend; /* outbound: what the consumer wrote before the connection was bound */
    size_t plen;
} dconn;

struct mesh_turn {
    mesh_env env;
    mesh_vstream_env *v;
    mesh_turn_cfg cfg;
    mesh_turn_cbs cbs;
    void *ud;
    char user[MESH_STUN_MAX_USERNAME + 1];
    char pass[MESH_TURN_MAX_PASSWORD + 1];
    char realm[MESH_STUN_MAX_TEXT], nonce[MESH_STUN_MAX_TEXT];
    size_t rlen, nlen;
    uint8_t key[MESH_STUN_LONG_TERM_KEY_LEN];
    int have_key, state;
    mesh_stream *ctl;
    uint8_t rx[MESH_TURN_RX_MAX];
    size_t have;
    mesh_timer *wake;
    mesh_time refresh_at, perms_at;
    uint32_t lifetime;
    mesh_addr relayed, mapped;
    mesh_addr perms[MESH_TURN_MAX_PERMS];
    size_t nperms;
    ctxn tx[MESH_TURN_MAX_TXNS];
    dconn dc[MESH_TURN_MAX_CONNS];
    mesh_turn_stats st;
};

/* turn.c */
void mesh_turn_enc_auth(mesh_turn *t, mesh_stun_enc *e);
int mesh_turn_response_ok(mesh_turn *t, const mesh_stun_msg *m, int authed);
int mesh_turn_error_code(mesh_turn *t, const mesh_stun_msg *m);
int mesh_turn_reauth(mesh_turn *t, const mesh_stun_msg *m, int code, int authed, int *tries);
int mesh_turn_start_txn(mesh_turn *t, int kind, int conn);
void mesh_turn_rearm(mesh_turn *t);
/* turn_conn.c */
void mesh_turn_conn_release(dconn *d);
void mesh_turn_conn_fail(dconn *d, int status);
void mesh_turn_conn_open_tcp(dconn *d);

#endif
