/* session_live.c — a CONNECTED session's liveness probes and the RTT they measure (the
 * contract is session.h's "Liveness"; the dead-peer deadline itself is session.c's timer).
 *
 *  - Heartbeat envelopes (seed profile, framed or HTTP/2): one every jittered interval,
 *    whatever else is sent; each is answered with reply=1 at once.
 *  - HTTP/2 PINGs (web profile): the probe real h2 clients send. A PING goes out only when
 *    nothing arrived from the peer for a drawn interval — the client's interval is
 *    heartbeat_interval jittered, the server's MESH_SESSION_WEB_SERVER_PING_NUM/DEN times
 *    that, so while the client is alive it is the one that pings (as browsers do; nginx
 *    never pings) and the server probes only a client silent that long. A busy session sends
 *    none. nghttp2 answers the peer's PINGs; our PING's ACK gives the RTT.
 * Either way liveness is any byte from the peer, so the dead-peer timeout is the same.
 */
#include "core/bytes.h"
#include "core/session_io.h"

/* heartbeat_interval jittered uniformly by +-pct %, times num/den. */
static mesh_time jittered(const mesh_session *s, unsigned pct, unsigned num, unsigned den)
{
    mesh_time iv = s->cfg.heartbeat_interval / den * num;
    mesh_time span = iv / 100 * pct;
    return iv - span + mesh_env_random_below(&s->env, 2 * span + 1);
}

/* The silence after which this side pings (web profile), drawn afresh after each PING. */
static mesh_time ping_quiet(const mesh_session *s)
{
    if (s->is_client)
        return jittered(s, MESH_SESSION_WEB_PING_JITTER_PCT, 1, 1);
    return jittered(s, MESH_SESSION_WEB_PING_JITTER_PCT, MESH_SESSION_WEB_SERVER_PING_NUM,
                    MESH_SESSION_WEB_SERVER_PING_DEN);
}

static int pinging(const mesh_session *s)
{
    return s->h2 && s->h2_web;
}

void mesh_session_live_start(mesh_session *s)
{
    if (pinging(s)) {
        s->hb_quiet = ping_quiet(s);
        s->next_hb = mesh_session_add_sat(s->phase_start, s->hb_quiet);
    } else {
        s->next_hb = mesh_session_add_sat(s->phase_start,
                                          jittered(s, MESH_SESSION_HEARTBEAT_JITTER_PCT, 1, 1));
    }
}

static int send_heartbeat(mesh_session *s, uint64_t seq, uint64_t sent_at, int reply)
{
    Meshara__Wire__Heartbeat hb = MESHARA__WIRE__HEARTBEAT__INIT;
    hb.seq = seq;
    hb.sent_at = sent_at;
    hb.reply = reply ? 1 : 0;
    mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
    e.body_case = MESHARA__WIRE__ENVELOPE__BODY_HEARTBEAT;
    e.heartbeat = &hb;
    int rc = mesh_session_io_send(s, &e);
    if (rc == MESH_OK && !reply)
        s->st.heartbeats_sent++;
    return rc;
}

/* A PING carrying our probe number; sent at once (outside nghttp2's callbacks: the timer). */
static int send_ping(mesh_session *s, mesh_time now)
{
    uint8_t opaque[MESH_H2_PING_LEN];
    ++s->hb_seq;
    mesh_be32_put(opaque, (uint32_t)(s->hb_seq >> 32));
    mesh_be32_put(opaque + 4, (uint32_t)s->hb_seq);
    int rc = mesh_h2_ping(s->h2, opaque);
    if (rc == MESH_OK)
        rc = mesh_session_io_h2_flush(s);
    if (rc == MESH_OK) {
        s->st.heartbeats_sent++;
        s->hb_sent_at = now;
    }
    return rc;
}

int mesh_session_live_tick(mesh_session *s, mesh_time now)
{
    if (!pinging(s)) {
        s->next_hb =
            mesh_session_add_sat(now, jittered(s, MESH_SESSION_HEARTBEAT_JITTER_PCT, 1, 1));
        return mesh_session_after_send(s, send_heartbeat(s, ++s->hb_seq, now, 0));
    }
    mesh_time quiet_until = mesh_session_add_sat(s->st.last_received_at, s->hb_quiet);
    if (quiet_until > now) { /* the peer spoke since: wait for a silence that long */
        s->next_hb = quiet_until;
        return MESH_OK;
    }
    s->hb_quiet = ping_quiet(s);
    s->next_hb = mesh_session_add_sat(now, s->hb_quiet);
    return mesh_session_after_send(s, send_ping(s, now));
}

static void take_rtt(mesh_session *s, mesh_time rtt)
{
    s->st.heartbeat_replies++;
    s->st.rtt_last = rtt;
    s->st.rtt_smoothed =
        s->st.rtt_smoothed ? s->st.rtt_smoothed - s->st.rtt_smoothed / 8 + rtt / 8 : rtt;
}

void mesh_session_live_heartbeat(mesh_session *s, const Meshara__Wire__Heartbeat *hb)
{
    mesh_time now = mesh_session_now(s);
    if (!hb->reply) {
        (void)mesh_session_after_send(s, send_heartbeat(s, hb->seq, hb->sent_at, 1));
        return;
    }
    /* Only replies to probes we sent count: seq in range and a time not in the future. */
    if (hb->seq == 0 || hb->seq > s->hb_seq || hb->sent_at > now)
        return;
    take_rtt(s, now - hb->sent_at);
}

void mesh_session_live_ping_ack(void *ud, const uint8_t opaque[MESH_H2_PING_LEN])
{
    mesh_session *s = ud;
    /* Only the ACK of our latest PING, once: its send time is the one we kept. */
    uint64_t seq = (uint64_t)mesh_be32_get(opaque) << 32 | mesh_be32_get(opaque + 4);
    if (s->hb_seq == 0 || seq != s->hb_seq || s->hb_sent_at == MESH_TIME_NEVER)
        return;
    take_rtt(s, mesh_session_now(s) - s->hb_sent_at);
    s->hb_sent_at = MESH_TIME_NEVER;
}
