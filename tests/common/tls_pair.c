/* tls_pair.c — see tls_pair.h. */
#include "tls_pair.h"

#include <stdlib.h>
#include <string.h>

enum { PUMP_ROUNDS = 32 };

static void end_out(void *ud, const uint8_t *data, size_t len)
{
    mesh_tlsp_end *e = ud;
    mesh_test_buf_add(&e->out, data, len);
    EVP_DigestUpdate(e->all, data, len);
    e->total += len;
}

void mesh_tlsp_init(mesh_tlsp_end *e, uint64_t seed, int is_server, const mesh_tls_cfg *cfg,
                    const char *const *alpn)
{
    memset(e, 0, sizeof *e);
    mesh_test_env_init(&e->env, seed);
    e->all = EVP_MD_CTX_new();
    CU_ASSERT_FATAL(e->all && EVP_DigestInit_ex(e->all, EVP_sha256(), NULL) == 1);
    CU_ASSERT_EQUAL_FATAL(mesh_identity_generate(&e->id, &e->env.env), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_tls_ctx_new(&e->ctx, &e->env.env, e->id, cfg), MESH_OK);
    CU_ASSERT_EQUAL_FATAL(mesh_tls_new(&e->t, e->ctx, is_server, alpn, end_out, e), MESH_OK);
    e->hs = MESH_ERR_AGAIN;
}

void mesh_tlsp_free(mesh_tlsp_end *e)
{
    mesh_tls_free(e->t);
    mesh_tls_ctx_free(e->ctx);
    mesh_identity_free(e->id);
    free(e->out.b);
    EVP_MD_CTX_free(e->all);
}

void mesh_tlsp_deliver(mesh_tlsp_end *a, mesh_tlsp_end *b)
{
    if (a->out.len)
        CU_ASSERT_EQUAL(mesh_tls_feed(b->t, a->out.b, a->out.len), MESH_OK);
    a->out.len = 0;
}

void mesh_tlsp_pump(mesh_tlsp_end *c, mesh_tlsp_end *s)
{
    for (int i = 0; i < PUMP_ROUNDS; i++) {
        if (c->hs == MESH_ERR_AGAIN)
            c->hs = mesh_tls_handshake(c->t);
        mesh_tlsp_deliver(c, s);
        if (s->hs == MESH_ERR_AGAIN)
            s->hs = mesh_tls_handshake(s->t);
        mesh_tlsp_deliver(s, c);
        if (c->hs != MESH_ERR_AGAIN && s->hs != MESH_ERR_AGAIN && !c->out.len && !s->out.len)
            break;
    }
}
