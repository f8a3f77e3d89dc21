/* meshara-node — one Meshara node on real sockets (the libevent driver, node/real/), driven
 * through the node API (meshara/meshara.h).
 *
 *   meshara-node keygen --key FILE      new identity (0600, never overwrites), prints its key
 *   meshara-node pubkey --key FILE      prints the public key of an existing key file
 *   meshara-node run --key FILE ...     a mesh node: joins, keeps its --peer list connected,
 *                                       answers queries, logs the messages it receives
 *   meshara-node send --key FILE ...    a short-lived node: joins, delivers one message (or a
 *                                       ping) to a public key, waits for the ack, exits
 *
 * `meshara-node --help` lists every option and the exit codes (node_opts.c holds that text).
 *
 * Shape. Everything runs on one mesh_real loop holding one mesh_node. Three files:
 *   node_opts.c  the command line: options checked and bounded, --help, exit codes
 *   node_run.c   run and send: the node, its callbacks, the --peer supervision, shutdown
 *   this file    main, and everything about the identity and the files next to it: the key
 *                file is created and loaded here (node/real/keyfile.h), and so is the web
 *                profile's TLS certificate, and nowhere else
 *
 * Log lines a script may rely on (stderr, after the driver's "[time] LEVEL " prefix):
 *   peer up: <in|out> key=HEX [(manual)] path=<direct|mapped|relayed>
 *   peer down: key=HEX reason=MESH_X
 *   connect failed: out ADDR key=HEX reason=MESH_X (...); retry in N ms      (--peer only)
 *   joined the mesh: N peers connected   /   join failed: MESH_X (...)
 *   message from HEX: len=N text="..."
 *   portmap: TCP PORT mapped to ADDR by NAT-PMP|UPnP, lease N s     (run, the driver)
 *   portmap: TCP PORT: no mapping: MESH_X (...)                       (the driver, each try)
 *   node: port mapping: external ADDR (not advertised yet) / none (MESH_X)
 *   node: turn: allocated, relayed address ADDR                      (run --turn)
 *   node: turn: no allocation via server: MESH_X (...); retry in N s   (run --turn, each try)
 *   node: session in|out key=HEX path=turn                            (a session via TURN)
 *   portmap: TCP PORT unmapped by NAT-PMP|UPnP                       (after the signal)
 *   shutting down (signal N)
 * and on stdout, once the listener is bound: "listening ADDR" then "pubkey HEX".
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "meshara/env.h"
#include "node_opts.h"
#include "node_run.h"
#include "real/driver.h"
#include "real/keyfile.h"

/* keygen/pubkey print the key file module's own lines (they name the file and errno). */
static void plain_sink(void *ud, int level, mesh_time now, const char *msg)
{
    (void)ud;
    (void)level;
    (void)now;
    fprintf(stderr, "meshara-node: %s\n", msg);
}

/* The key file module has already logged what went wrong with the file (through the env);
 * add what to do about it. */
static int key_exit(int rc, const char *path)
{
    if (rc == MESH_ERR_NOT_FOUND)
        fprintf(stderr, "meshara-node: create one with: meshara-node keygen --key %s\n", path);
    else if (rc == MESH_ERR_EXISTS)
        fprintf(stderr, "meshara-node: keygen never replaces a key; pick another file name\n");
    else if (rc != MESH_ERR_PERM && rc != MESH_ERR_CORRUPT && rc != MESH_ERR_IO)
        fprintf(stderr, "meshara-node: key file %s: %s (%s)\n", path, mesh_errname(rc),
                mesh_strerror(rc));
    return rc == MESH_ERR_NOMEM || rc == MESH_ERR_CRYPTO ? NODE_EXIT_FAIL : NODE_EXIT_KEY;
}

/* keygen, pubkey: print the public key of a new or an existing key file. */
static int cmd_key(const node_opts *o)
{
    mesh_real_config rc_cfg;
    mesh_real_config_default(&rc_cfg);
    rc_cfg.log_sink = plain_sink;
    mesh_real *r = NULL;
    if (mesh_real_new(&r, NULL, &rc_cfg) != MESH_OK) {
        fprintf(stderr, "meshara-node: cannot start the event loop\n");
        return NODE_EXIT_FAIL;
    }
    mesh_env env = mesh_real_env(r);
    mesh_identity *id = NULL;
    int rc = o->cmd == CMD_KEYGEN ? mesh_keyfile_create(&id, o->key_path, &env)
                                  : mesh_keyfile_load(&id, o->key_path, &env);
    int ex = NODE_EXIT_OK;
    if (rc != MESH_OK) {
        ex = key_exit(rc, o->key_path);
    } else {
        char k[MESH_NODE_KEY_HEX_LEN + 1];
        printf("%s\n", mesh_hex_encode(mesh_identity_pubkey(id), MESH_NODE_KEY_BYTES, k));
    }
    mesh_identity_free(id);
    mesh_real_free(r);
    return ex;
}

/* A peer named by this node's own key cannot be reached: say so now rather than failing
 * later with a reason that does not tell (the node refuses a manual peer with its own key). */
static int own_key_named(const node_opts *o, const mesh_identity *id)
{
    const uint8_t *me = mesh_identity_pubkey(id);
    const char *what = NULL;
    if (o->cmd == CMD_SEND && memcmp(o->to.key, me, MESH_NODE_KEY_BYTES) == 0)
        what = "--to";
    for (size_t i = 0; i < o->npeers && !what; i++)
        if (memcmp(o->peers[i].key, me, MESH_NODE_KEY_BYTES) == 0)
            what = "--peer";
    if (what)
        fprintf(stderr, "meshara-node: %s is this node's own key (%s)\n", what, o->key_path);
    return what != NULL;
}

/* The web profile's certificate: the operator's (--tls-cert, --tls-key) or the one kept next
 * to the key file, made when missing or due. The seed profile has none. The key file module
 * has logged what went wrong with a file. */
static int load_cert(const node_opts *o, const mesh_env *env, mesh_certfile *cert)
{
    if (o->profile == MESH_PROFILE_SEED)
        return MESH_OK;
    int rc = o->tls_cert
                 ? mesh_certfile_load(cert, o->tls_cert, o->tls_key, env)
                 : mesh_certfile_own(cert, o->key_path, env, o->cert_type,
                                     o->host_name ? o->host_name : o->sni, (int64_t)time(NULL));
    if (rc != MESH_OK && rc != MESH_ERR_PERM && rc != MESH_ERR_CORRUPT && rc != MESH_ERR_IO &&
        rc != MESH_ERR_NOT_FOUND)
        fprintf(stderr, "meshara-node: certificate: %s (%s)\n", mesh_errname(rc),
                mesh_strerror(rc));
    return rc;
}

/* run, send: the driver, the identity from the key file, then the node (node_run.c). */
static int cmd_node(const node_opts *o)
{
    mesh_real_config rcfg;
    mesh_real_config_default(&rcfg);
    rcfg.log_level = o->log_level;
    if (o->connect_ms)
        rcfg.connect_timeout_ms = (uint32_t)o->connect_ms;
    mesh_real *r = NULL;
    if (mesh_real_new(&r, NULL, &rcfg) != MESH_OK) {
        fprintf(stderr, "meshara-node: cannot start the event loop\n");
        return NODE_EXIT_FAIL;
    }
    mesh_env env = mesh_real_env(r);
    mesh_identity *id = NULL;
    mesh_certfile cert = {0};
    char turn_pass[NODE_MAX_TURN_PASS + 1] = "";
    int ex;
    int rc = mesh_keyfile_load(&id, o->key_path, &env);
    if (rc != MESH_OK)
        ex = key_exit(rc, o->key_path);
    else if (own_key_named(o, id))
        ex = NODE_EXIT_FAIL;
    else if ((rc = load_cert(o, &env, &cert)) != MESH_OK)
        ex = rc == MESH_ERR_NOMEM || rc == MESH_ERR_CRYPTO ? NODE_EXIT_FAIL : NODE_EXIT_KEY;
    else if (o->turn_pass_file &&
             mesh_secretfile_load(turn_pass, sizeof turn_pass, o->turn_pass_file, &env) != MESH_OK)
        ex = NODE_EXIT_KEY; /* the key file module said what is wrong with the file */
    else
        ex = node_run(o, r, id, &cert, turn_pass);
    OPENSSL_cleanse(turn_pass, sizeof turn_pass);
    mesh_certfile_clear(&cert);
    mesh_identity_free(id);
    mesh_real_free(r);
    return ex;
}

int main(int argc, char **argv)
{
    node_opts o;
    int ex = node_opts_parse(&o, argc, argv);
    if (ex >= 0)
        return ex;
    if (o.cmd == CMD_KEYGEN || o.cmd == CMD_PUBKEY)
        return cmd_key(&o);
    return cmd_node(&o);
}
