/* tls_pair.h — mesh_tls ends (tls.h) joined by in-memory pipes, no simulator: each end has its
 * own seeded test env, identity, context and one connection; what it sends waits in `out`
 * until delivered. test_tls.c (seed profile) and test_tls_web.c (web profile) drive them.
 * Failures are CUnit assertions (fatal where nothing could go on). Test code. */
#ifndef MESH_TEST_TLS_PAIR_H
#define MESH_TEST_TLS_PAIR_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "core/identity.h"
#include "core/tls.h"
#include "mesh_test.h"

typedef struct mesh_tlsp_end {
    mesh_test_env env;
    mesh_identity *id;
    mesh_tls_ctx *ctx;
    mesh_tls *t;
    mesh_test_buf out; /* sent, not delivered yet */
    EVP_MD_CTX *all;   /* SHA-256 of every byte sent */
    size_t total;      /* bytes sent in all */
    int hs;            /* the last mesh_tls_handshake result (MESH_ERR_AGAIN before any) */
} mesh_tlsp_end;

/* An end from seed: cfg as mesh_tls_ctx_new's (NULL: its defaults, the web profile), alpn as
 * mesh_tls_new's per-connection override. */
void mesh_tlsp_init(mesh_tlsp_end *e, uint64_t seed, int is_server, const mesh_tls_cfg *cfg,
                    const char *const *alpn);
void mesh_tlsp_free(mesh_tlsp_end *e);
/* Feed a's waiting output to b (asserting b takes it). */
void mesh_tlsp_deliver(mesh_tlsp_end *a, mesh_tlsp_end *b);
/* Run both handshakes, delivering each way, until neither makes progress. */
void mesh_tlsp_pump(mesh_tlsp_end *c, mesh_tlsp_end *s);

#endif
