/*
 * stun_probe — the core's STUN client and responder (node/core/stun_client.h, stun_server.h)
 * over the real driver, for tests/netns/test_nat_stun.sh. One line per fact on stdout:
 *
 *   stun_probe [--local IP:PORT] [--tcp] [--rto MS] [--rc N] [--rm N] SERVER
 *       one Binding transaction (UDP, or TCP with --tcp):
 *       LOCAL <addr>, MAPPED <addr>, OTHER <addr>|none, ORIGIN <addr>|none, REQUESTS <n>,
 *       RTT_MS <ms>, STATUS <MESH_...>
 *   stun_probe --discover [--local IP:PORT] [--rto MS] [--rc N] [--rm N] SERVER
 *       RFC 5780 discovery: LOCAL, MAPPED, OTHER, MAPPING <kind>, FILTERING <kind>,
 *       TRANSACTIONS <n>, TOOK_MS <ms>, STATUS <MESH_...> (kinds as mesh_stun_behaviour_name)
 *   stun_probe --serve PRIMARY [--alternate ALT]
 *       the responder on PRIMARY (and ALT: RFC 5780) until SIGINT/SIGTERM; prints "serving"
 *       once bound, its counters at the end.
 *
 * Exit 0: the transaction or discovery succeeded (the responder: stopped by a signal);
 * 1: it failed (STATUS says how); 2: bad arguments; 77: an option the env cannot do
 * (MESH_ERR_UNSUPPORTED). --timeout S (default 60) bounds the whole run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/stun_client.h"
#include "core/stun_server.h"
#include "real/driver.h"

typedef struct probe {
    mesh_real *r;
    int done, status;
} probe;

static const char *fmt(const mesh_addr *a, char *buf)
{
    if (a->family == MESH_AF_NONE)
        return "none";
    return mesh_addr_format(a, buf, MESH_ADDR_STRLEN);
}

static void on_result(void *ud, const mesh_stun_result *r)
{
    probe *p = ud;
    char b[MESH_ADDR_STRLEN];
    printf("LOCAL %s\n", fmt(&r->local, b));
    printf("MAPPED %s\n", fmt(&r->mapped, b));
    printf("OTHER %s\n", fmt(&r->other, b));
    printf("ORIGIN %s\n", fmt(&r->origin, b));
    printf("REQUESTS %u\n", r->requests);
    printf("RTT_MS %.3f\n", (double)r->rtt / 1e6);
    if (r->error_code)
        printf("ERROR_CODE %d\n", r->error_code);
    printf("STATUS %s\n", mesh_errname(r->status));
    p->done = 1;
    p->status = r->status;
    mesh_real_stop(p->r);
}

static void on_behaviour(void *ud, const mesh_stun_behaviour *bh)
{
    probe *p = ud;
    char b[MESH_ADDR_STRLEN];
    printf("LOCAL %s\n", fmt(&bh->local, b));
    printf("MAPPED %s\n", fmt(&bh->mapped, b));
    printf("OTHER %s\n", fmt(&bh->other, b));
    printf("MAPPING %s\n", mesh_stun_behaviour_name(bh->mapping));
    printf("FILTERING %s\n", mesh_stun_behaviour_name(bh->filtering));
    printf("TRANSACTIONS %u\n", bh->transactions);
    printf("TOOK_MS %.3f\n", (double)bh->took / 1e6);
    printf("STATUS %s\n", mesh_errname(bh->status));
    p->done = 1;
    p->status = bh->status;
    mesh_real_stop(p->r);
}

static int usage(void)
{
    fprintf(stderr, "usage: stun_probe [--discover] [--tcp] [--local IP:PORT] [--rto MS] "
                    "[--rc N] [--rm N] [--timeout S] SERVER\n"
                    "       stun_probe --serve PRIMARY [--alternate ALT]\n");
    return 2;
}

static int serve(mesh_real *r, const mesh_addr *primary, const mesh_addr *alt)
{
    mesh_env env = mesh_real_env(r);
    mesh_stun_server_cfg cfg;
    mesh_stun_server_cfg_default(&cfg);
    cfg.primary = *primary;
    if (alt)
        cfg.alternate = *alt;
    cfg.software = "meshara stun_probe";
    mesh_stun_server *s = NULL;
    int rc = mesh_stun_server_new(&s, &env, NULL, &cfg);
    if (rc != MESH_OK) {
        printf("STATUS %s\n", mesh_errname(rc));
        return 1;
    }
    printf("serving\n");
    fflush(stdout);
    mesh_real_run_until_signal(r);
    mesh_stun_server_stats st = mesh_stun_server_get_stats(s);
    printf("ANSWERED %llu ERRORS %llu CHANGED %llu DROPPED %llu\n", (unsigned long long)st.answered,
           (unsigned long long)st.errors, (unsigned long long)st.changed,
           (unsigned long long)st.dropped);
    mesh_stun_server_free(s);
    return 0;
}

static int client(mesh_real *r, const mesh_stun_client_cfg *cfg, const mesh_addr *server,
                  const mesh_addr *local, int tcp, int discover, unsigned timeout_s)
{
    mesh_env env = mesh_real_env(r);
    probe p = {.r = r};
    mesh_stun_client *c = NULL;
    int rc = mesh_stun_client_new(&c, &env, cfg);
    if (rc == MESH_OK)
        rc = discover ? mesh_stun_client_discover(c, server, on_behaviour, &p)
             : tcp    ? mesh_stun_client_binding_tcp(c, server, local, on_result, &p)
                      : mesh_stun_client_binding(c, server, 0, on_result, &p);
    if (rc == MESH_OK)
        mesh_real_run_for(r, (mesh_time)timeout_s * MESH_NS_PER_S);
    mesh_stun_client_free(c);
    if (rc != MESH_OK) {
        printf("STATUS %s\n", mesh_errname(rc));
        return rc == MESH_ERR_UNSUPPORTED ? 77 : 1;
    }
    if (!p.done) {
        printf("STATUS no answer within %u s\n", timeout_s);
        return 1;
    }
    return p.status == MESH_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    mesh_stun_client_cfg cfg;
    mesh_stun_client_cfg_default(&cfg);
    mesh_addr server = {0}, local = {0}, primary = {0}, alt = {0};
    int tcp = 0, discover = 0, have_server = 0, have_local = 0, have_alt = 0, do_serve = 0;
    unsigned timeout_s = 60;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--tcp")) {
            tcp = 1;
        } else if (!strcmp(a, "--discover")) {
            discover = 1;
        } else if (v && !strcmp(a, "--local")) {
            if (mesh_addr_parse(&local, v) != MESH_OK)
                return usage();
            have_local = 1;
            i++;
        } else if (v && !strcmp(a, "--serve")) {
            if (mesh_addr_parse(&primary, v) != MESH_OK)
                return usage();
            do_serve = 1;
            i++;
        } else if (v && !strcmp(a, "--alternate")) {
            if (mesh_addr_parse(&alt, v) != MESH_OK)
                return usage();
            have_alt = 1;
            i++;
        } else if (v && !strcmp(a, "--rto")) {
            cfg.rto = (mesh_time)strtoul(v, NULL, 10) * MESH_NS_PER_MS;
            i++;
        } else if (v && !strcmp(a, "--rc")) {
            cfg.rc = (unsigned)strtoul(v, NULL, 10);
            i++;
        } else if (v && !strcmp(a, "--rm")) {
            cfg.rm = (unsigned)strtoul(v, NULL, 10);
            i++;
        } else if (v && !strcmp(a, "--timeout")) {
            timeout_s = (unsigned)strtoul(v, NULL, 10);
            i++;
        } else if (a[0] != '-' && !have_server && mesh_addr_parse(&server, a) == MESH_OK) {
            have_server = 1;
        } else {
            return usage();
        }
    }
    if (do_serve == have_server)
        return usage();
    mesh_real_config rcfg;
    mesh_real_config_default(&rcfg);
    rcfg.log_level = MESH_LOG_WARN;
    mesh_real *r = NULL;
    if (mesh_real_new(&r, NULL, &rcfg) != MESH_OK)
        return 1;
    int rc;
    if (do_serve) {
        rc = serve(r, &primary, have_alt ? &alt : NULL);
    } else {
        /* UDP transactions leave from --local; a TCP one asks for it through connect_from */
        cfg.udp = !tcp;
        if (have_local && !tcp)
            cfg.local = local;
        rc = client(r, &cfg, &server, have_local ? &local : NULL, tcp, discover, timeout_s);
    }
    fflush(stdout);
    mesh_real_free(r);
    return rc;
}
