/*
 * real/portmap_natpmp.c — one NAT-PMP exchange (RFC 6886) in the driver's loop, through
 * libnatpmp: its non-blocking UDP socket (connected to the gateway's port 5351) is a libevent
 * read event, its retransmission time (getnatpmprequesttimeout) a timer, and each phase is
 * bounded by cfg.natpmp_ms per request (libnatpmp alone would retry for 128 s).
 *
 * A MAP phase asks the public address, then the mapping; an UNMAP phase sends lifetime 0.
 * libnatpmp reads answers into a 16-byte buffer without checking how many bytes came, and
 * takes any answer as the answer to what it sent last. So each datagram is looked at first
 * (MSG_PEEK): too short, another version, or an opcode that is not the answer to what is
 * pending → read and dropped (counted: np_wrong), and the wait goes on. An answer about
 * another internal port is dropped likewise and the request sent again. A phase that ends
 * with nothing but such answers is MESH_ERR_PROTOCOL.
 */
#include "real/portmap_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

enum np_stage { NP_IDLE = 0, NP_ADDR = 1, NP_MAP = 2, NP_UNMAP = 3 };

enum np_wire {
    NP_OP_ANSWER = 128,  /* answers are the request's opcode + 128 */
    NP_OP_PUBLIC = 0,    /* public address request */
    NP_HDR = 8,          /* version, opcode, result code, epoch */
    NP_PUBLIC_LEN = 12,  /* + the address */
    NP_MAPPING_LEN = 16, /* + internal port, external port, lifetime */
    NP_RESENDS = 3,      /* requests sent again after answers about another port */
};

static void np_retry_cb(evutil_socket_t fd, short what, void *arg);

int pm_natpmp_init(mesh_real_portmap *pm)
{
    pm->np_retry = evtimer_new(pm->base, np_retry_cb, pm);
    return pm->np_retry ? MESH_OK : MESH_ERR_NOMEM;
}

void pm_natpmp_close(mesh_real_portmap *pm)
{
    if (pm->np_read) {
        event_free(pm->np_read);
        pm->np_read = NULL;
    }
    if (pm->np_retry)
        evtimer_del(pm->np_retry);
    if (pm->np_open)
        closenatpmp(&pm->np);
    pm->np_open = 0;
    pm->np_stage = NP_IDLE;
}

void pm_natpmp_fini(mesh_real_portmap *pm)
{
    pm_natpmp_close(pm);
    if (pm->np_retry)
        event_free(pm->np_retry);
    pm->np_retry = NULL;
}

static const char *gw_text(const mesh_real_portmap *pm, char *buf, size_t len)
{
    struct in_addr a = {.s_addr = pm->np.gateway};
    return inet_ntop(AF_INET, &a, buf, (socklen_t)len) ? buf : "?";
}

/* End the phase: close the exchange first (the answer may start another phase). */
static void np_done(mesh_real_portmap *pm, int result, const mesh_addr *ext, uint32_t lease,
                    const char *why)
{
    pm_natpmp_close(pm);
    pm_phase_done(pm, result, ext, lease, why);
}

static int np_proto(const mesh_real_portmap *pm)
{
    return pm->cur->e->tcp ? NATPMP_PROTOCOL_TCP : NATPMP_PROTOCOL_UDP;
}

static void np_arm_retry(mesh_real_portmap *pm)
{
    struct timeval tv;
    if (getnatpmprequesttimeout(&pm->np, &tv) != 0)
        return;
    if (tv.tv_sec < 0 || (tv.tv_sec == 0 && tv.tv_usec < 0))
        tv.tv_sec = tv.tv_usec = 0;
    evtimer_add(pm->np_retry, &tv);
}

/* Send what the current stage asks and arm libnatpmp's retransmission; the stage's bound is
 * armed by whoever starts the stage. MESH_OK or MESH_ERR_IO. */
static int np_send(mesh_real_portmap *pm)
{
    pm_task *t = pm->cur;
    pm_entry *e = t->e;
    int rc;
    if (pm->np_stage == NP_ADDR) {
        rc = sendpublicaddressrequest(&pm->np);
    } else if (pm->np_stage == NP_MAP) {
        /* the external port held before, so a renewal keeps it; else the internal one */
        uint16_t hint = e->via == PM_NATPMP && e->ext_port ? e->ext_port : e->port;
        rc = sendnewportmappingrequest(&pm->np, np_proto(pm), e->port, hint, t->lease);
    } else {
        rc = sendnewportmappingrequest(&pm->np, np_proto(pm), e->port, 0, 0);
    }
    if (rc < 0)
        return MESH_ERR_IO;
    np_arm_retry(pm);
    return MESH_OK;
}

/* The opcode an answer to the pending request carries. */
static int np_expected_op(const mesh_real_portmap *pm)
{
    return NP_OP_ANSWER + (pm->np_stage == NP_ADDR ? NP_OP_PUBLIC : np_proto(pm));
}

/* 1 if the datagram of n bytes can be handed to libnatpmp as the answer it waits for. */
static int np_acceptable(const mesh_real_portmap *pm, const uint8_t *b, ssize_t n)
{
    if (n < NP_HDR || b[0] != 0 || b[1] != np_expected_op(pm))
        return 0;
    if (b[2] != 0 || b[3] != 0) /* an error: libnatpmp reads the header only */
        return 1;
    return n >= (pm->np_stage == NP_ADDR ? NP_PUBLIC_LEN : NP_MAPPING_LEN);
}

static int np_err(int rc, char *why, size_t len)
{
    switch (rc) {
    case NATPMP_ERR_NOGATEWAYSUPPORT:
        snprintf(why, len, "(the gateway does not speak NAT-PMP: port unreachable)");
        return MESH_ERR_UNSUPPORTED;
    case NATPMP_ERR_UNSUPPORTEDVERSION:
    case NATPMP_ERR_UNSUPPORTEDOPCODE:
        snprintf(why, len, "(unsupported version or opcode)");
        return MESH_ERR_UNSUPPORTED;
    case NATPMP_ERR_NOTAUTHORIZED:
        snprintf(why, len, "(result 2: not authorized)");
        return MESH_ERR_REFUSED;
    case NATPMP_ERR_NETWORKFAILURE:
        snprintf(why, len, "(result 3: network failure: the gateway has no public address)");
        return MESH_ERR_UNREACHABLE;
    case NATPMP_ERR_OUTOFRESOURCES:
        snprintf(why, len, "(result 4: out of resources)");
        return MESH_ERR_REFUSED;
    case NATPMP_ERR_UNDEFINEDERROR:
        snprintf(why, len, "(an undefined result code)");
        return MESH_ERR_PROTOCOL;
    case NATPMP_ERR_WRONGPACKETSOURCE:
        snprintf(why, len, "(an answer from another address)");
        return MESH_ERR_PROTOCOL;
    default:
        snprintf(why, len, "(libnatpmp error %d)", rc);
        return MESH_ERR_IO;
    }
}

/* A whole answer was read by libnatpmp: act on it. */
static void np_answer(mesh_real_portmap *pm, const natpmpresp_t *resp)
{
    char why[MESH_REAL_PORTMAP_WHY_MAX], gw[INET_ADDRSTRLEN];
    pm_entry *e = pm->cur->e;
    pm->np_heard = 1;
    if (pm->np_stage == NP_ADDR) {
        uint8_t ip[4];
        memcpy(ip, &resp->pnu.publicaddress.addr, 4);
        if (pm_ip_is_private(ip)) {
            snprintf(why, sizeof why,
                     "(gateway %s says its public address is %u.%u.%u.%u: "
                     "not public)",
                     gw_text(pm, gw, sizeof gw), ip[0], ip[1], ip[2], ip[3]);
            np_done(pm, MESH_ERR_UNREACHABLE, NULL, 0, why);
            return;
        }
        memcpy(&pm->np_public, ip, 4);
        pm->np_stage = NP_MAP;
        pm_deadline_arm(pm, pm->cfg.natpmp_ms);
        if (np_send(pm) != MESH_OK)
            np_done(pm, MESH_ERR_IO, NULL, 0, "(send failed)");
        return;
    }
    if (resp->pnu.newportmapping.privateport != e->port) {
        /* an answer about another port: not ours. libnatpmp took it for the answer, so ask
         * again, a few times; then only the deadline is left (MESH_ERR_PROTOCOL) */
        if (++pm->np_wrong > NP_RESENDS)
            return;
        if (np_send(pm) != MESH_OK)
            np_done(pm, MESH_ERR_IO, NULL, 0, "(send failed)");
        return;
    }
    if (pm->np_stage == NP_UNMAP) {
        np_done(pm, MESH_OK, NULL, 0, NULL);
        return;
    }
    uint16_t port = resp->pnu.newportmapping.mappedpublicport;
    uint32_t life = resp->pnu.newportmapping.lifetime;
    if (port == 0 || life == 0) {
        snprintf(why, sizeof why, "(a mapping answer with public port %u, lifetime %u s)", port,
                 life);
        np_done(pm, MESH_ERR_PROTOCOL, NULL, 0, why);
        return;
    }
    mesh_addr ext = {.family = MESH_AF_INET4, .port = port};
    memcpy(ext.ip, &pm->np_public, 4);
    np_done(pm, MESH_OK, &ext, life, NULL);
}

/* Let libnatpmp read (or resend, when its retry time has come). */
static void np_step(mesh_real_portmap *pm)
{
    natpmpresp_t resp;
    memset(&resp, 0, sizeof resp);
    int rc = readnatpmpresponseorretry(&pm->np, &resp);
    if (rc == NATPMP_TRYAGAIN) {
        np_arm_retry(pm);
        return;
    }
    if (rc == NATPMP_ERR_NOPENDINGREQ)
        return; /* we stopped asking (answers about another port): the deadline decides */
    if (rc < 0) {
        char why[MESH_REAL_PORTMAP_WHY_MAX];
        int err = np_err(rc, why, sizeof why);
        np_done(pm, err, NULL, 0, why);
        return;
    }
    np_answer(pm, &resp);
}

static void np_read_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    mesh_real_portmap *pm = arg;
    uint8_t b[NP_MAPPING_LEN];
    ssize_t n = recv(fd, b, sizeof b, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n < 0) {
        /* a socket error is reported once, to this recv: libnatpmp would not see it */
        char why[MESH_REAL_PORTMAP_WHY_MAX];
        int e = errno;
        if (e == ECONNREFUSED) {
            np_done(pm, MESH_ERR_UNSUPPORTED, NULL, 0,
                    "(the gateway does not speak NAT-PMP: port unreachable)");
            return;
        }
        snprintf(why, sizeof why, "(recv: %s)", strerror(e));
        np_done(pm, e == EHOSTUNREACH || e == ENETUNREACH ? MESH_ERR_UNSUPPORTED : MESH_ERR_IO,
                NULL, 0, why);
        return;
    }
    if (!np_acceptable(pm, b, n)) {
        (void)recv(fd, b, sizeof b, MSG_DONTWAIT); /* dropped: not the answer we wait for */
        pm->np_wrong++;
        return;
    }
    np_step(pm); /* an answer (checked above) */
}

static void np_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mesh_real_portmap *pm = arg;
    if (pm->np_stage != NP_IDLE)
        np_step(pm);
}

void pm_natpmp_begin(mesh_real_portmap *pm)
{
    const uint8_t *g = pm->cfg.natpmp_gateway;
    int force = g[0] || g[1] || g[2] || g[3];
    in_addr_t gw;
    memcpy(&gw, g, 4);
    pm->np_wrong = pm->np_heard = 0;
    int rc = initnatpmp(&pm->np, force, gw);
    if (rc < 0) {
        /* initnatpmp leaves its socket open when it fails after making it */
        if (rc != NATPMP_ERR_SOCKETERROR && rc != NATPMP_ERR_INVALIDARGS && pm->np.s >= 0)
            close(pm->np.s);
        pm_phase_done(pm, rc == NATPMP_ERR_CANNOTGETGATEWAY ? MESH_ERR_UNSUPPORTED : MESH_ERR_IO,
                      NULL, 0,
                      rc == NATPMP_ERR_CANNOTGETGATEWAY ? "(no default gateway)"
                                                        : "(cannot open its socket)");
        return;
    }
    pm->np_open = 1;
    pm->np_read = event_new(pm->base, pm->np.s, EV_READ | EV_PERSIST, np_read_cb, pm);
    if (!pm->np_read || event_add(pm->np_read, NULL) != 0) {
        np_done(pm, MESH_ERR_NOMEM, NULL, 0, "(no event)");
        return;
    }
    pm->np_stage = pm->cur->kind == PM_UNMAP ? NP_UNMAP : NP_ADDR;
    pm_deadline_arm(pm, pm->cfg.natpmp_ms);
    if (np_send(pm) != MESH_OK)
        np_done(pm, MESH_ERR_UNSUPPORTED, NULL, 0, "(cannot send to the gateway)");
}

void pm_natpmp_expired(mesh_real_portmap *pm)
{
    char why[MESH_REAL_PORTMAP_WHY_MAX], gw[INET_ADDRSTRLEN];
    int err;
    gw_text(pm, gw, sizeof gw);
    if (pm->np_wrong) {
        snprintf(why, sizeof why, "(gateway %s: %d answers that answer nothing we asked)", gw,
                 pm->np_wrong);
        err = MESH_ERR_PROTOCOL;
    } else if (pm->np_stage == NP_ADDR) {
        snprintf(why, sizeof why, "(no answer from gateway %s in %u ms)", gw, pm->cfg.natpmp_ms);
        err = MESH_ERR_UNSUPPORTED;
    } else {
        snprintf(why, sizeof why, "(gateway %s stopped answering: %u ms)", gw, pm->cfg.natpmp_ms);
        err = MESH_ERR_TIMEOUT;
    }
    np_done(pm, err, NULL, 0, why);
}

void pm_natpmp_fire_unmap(mesh_real_portmap *pm, int tcp, uint16_t port)
{
    natpmp_t np;
    const uint8_t *g = pm->cfg.natpmp_gateway;
    in_addr_t gw;
    memcpy(&gw, g, 4);
    int rc = initnatpmp(&np, g[0] || g[1] || g[2] || g[3], gw);
    if (rc == 0) {
        rc = sendnewportmappingrequest(&np, tcp ? NATPMP_PROTOCOL_TCP : NATPMP_PROTOCOL_UDP, port,
                                       0, 0);
        closenatpmp(&np);
    } else if (rc != NATPMP_ERR_SOCKETERROR && rc != NATPMP_ERR_INVALIDARGS && np.s >= 0) {
        close(np.s);
    }
    mesh_log(&pm->env, rc < 0 ? MESH_LOG_WARN : MESH_LOG_INFO,
             "portmap: %s %u: NAT-PMP deletion %s (not waiting for the answer)",
             tcp ? "TCP" : "UDP", port, rc < 0 ? "not sent" : "sent");
}
