#!/usr/bin/env bash
# test_node_interop.sh — meshara-node (seed profile: its TLS 1.3-only, meshara/1.0 refusals
# are what is checked) against clients written by no one here, and against bad clients, while
# it keeps serving a real peer:
#
#   A (meshara-node, --peer B)  ─────────────▶  B (meshara-node --listen 127.0.0.1:0
#   openssl s_client -tls1_3 ──────────────▶      --auth-timeout 500 --handshake-timeout 1000
#   openssl s_client -tls1_2, wrong ALPN, no ALPN, HTTP garbage, silent sockets, a flood
#   beyond --max-handshakes ─────────────────▶    --max-handshakes 4)
#
# Each bad client is refused with its named reason in B's log (the session's "closing in STATE:
# MESH_ERR_VERSION / ALPN / TLS / TIMEOUT" line) and, for TLS clients, the alert s_client names
# (protocol_version; no_application_protocol for a wrong ALPN and for none at all);
# s_client -tls1_3 completes TLS (ALPN meshara/1.0) and is
# closed at the auth timeout; the A–B session (heartbeats every 400 ms) never goes down and a
# message still gets through afterwards.
set -euo pipefail
. "$(dirname "$0")/node_lib.sh"
node_init
need_tool openssl
AUTH_MS=500
HS_MS=1000

KEY_A=$(node_key a)
KEY_B=$(node_key b)
node_key s >/dev/null
node_start b --listen 127.0.0.1:0 --profile seed --auth-timeout $AUTH_MS --handshake-timeout $HS_MS \
  --max-handshakes 4 --heartbeat 400
B=127.0.0.1:$PORT_b
node_start a --listen 127.0.0.1:0 --profile seed --peer "$B#$KEY_B" --heartbeat 400
wait_log "$WORK/b.err" "peer up: in key=$KEY_A" || fail "A and B did not connect"

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# 1. openssl s_client -tls1_3: TLS completes with ALPN meshara/1.0 (it cannot say the hello),
#    and B closes it at the auth timeout while s_client's stdin is still open.
mkfifo "$WORK/stdin"
bg_start HOLDER bash -c "exec sleep 30 >'$WORK/stdin'"
t0=$(now_ms)
timeout 10 openssl s_client -tls1_3 -alpn meshara/1.0 -connect "$B" <"$WORK/stdin" \
  >"$WORK/s_client13.log" 2>&1 || true
elapsed=$(($(now_ms) - t0))
kill "$HOLDER" 2>/dev/null || true
grep -aq 'New, TLSv1.3' "$WORK/s_client13.log" || fail "s_client -tls1_3 did not complete TLS 1.3"
grep -aq 'ALPN protocol: meshara/1.0' "$WORK/s_client13.log" || fail "no ALPN meshara/1.0"
[ "$elapsed" -ge $((AUTH_MS - 50)) ] && [ "$elapsed" -lt $((AUTH_MS + 2500)) ] ||
  fail "s_client closed after $elapsed ms; auth timeout is $AUTH_MS ms"
wait_log "$WORK/b.err" 'closing in AUTHENTICATING: MESH_ERR_TIMEOUT' ||
  fail "B did not log the auth timeout"
echo "s_client -tls1_3: TLS done, closed after $elapsed ms (auth timeout $AUTH_MS ms)"

# 2. TLS 1.2 only: refused with a protocol_version alert
if openssl s_client -tls1_2 -connect "$B" </dev/null >"$WORK/s_client12.log" 2>&1; then
  fail "s_client -tls1_2 succeeded"
fi
grep -aq 'alert protocol version' "$WORK/s_client12.log" || fail "no protocol_version alert"
wait_log "$WORK/b.err" 'closing in HANDSHAKING: MESH_ERR_VERSION' ||
  fail "B did not log MESH_ERR_VERSION"

# 3. wrong ALPN, and no ALPN at all: no_application_protocol
if openssl s_client -tls1_3 -alpn http/1.1 -connect "$B" </dev/null >"$WORK/s_client_alpn.log" 2>&1; then
  fail "s_client with ALPN http/1.1 succeeded"
fi
grep -aq 'no application protocol' "$WORK/s_client_alpn.log" || fail "no no_application_protocol alert"
#    A client offering no ALPN at all gets the same alert in answer to its ClientHello (it used
#    to get a whole handshake, then an EOF): s_client fails naming alert 120, with no cipher.
if timeout 10 openssl s_client -tls1_3 -connect "$B" </dev/null >"$WORK/s_client_noalpn.log" 2>&1; then
  fail "s_client without ALPN succeeded"
fi
grep -aq 'alert no application protocol.*SSL alert number 120' "$WORK/s_client_noalpn.log" ||
  fail "s_client without ALPN got no no_application_protocol alert"
grep -aq 'Cipher is (NONE)' "$WORK/s_client_noalpn.log" || fail "the handshake without ALPN went on"
wait_log "$WORK/b.err" 'closing in HANDSHAKING: MESH_ERR_ALPN' || fail "B did not log MESH_ERR_ALPN"
[ "$(count_log "$WORK/b.err" 'closing in HANDSHAKING: MESH_ERR_ALPN')" = 2 ] ||
  fail "B did not refuse both ALPN clients"

# 4. plaintext garbage (an HTTP/1.1 request): refused as not TLS, connection closed
exec 3<>"/dev/tcp/127.0.0.1/$PORT_b"
printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >&3
timeout 5 cat <&3 >/dev/null 2>&1 || true
exec 3<&-
wait_log "$WORK/b.err" 'closing in HANDSHAKING: MESH_ERR_TLS' || fail "B did not refuse garbage"

# 5. silent clients beyond --max-handshakes 4 (all from 127.0.0.1, one source): each extra one
#    takes the place of the oldest silent one, which is reset; the others are closed at the
#    handshake timeout
for fd in 10 11 12 13 14 15; do
  eval "exec $fd<>/dev/tcp/127.0.0.1/$PORT_b"
done
wait_log "$WORK/b.err" 'handshakes in progress: evicted' || fail "no connection over the limit was evicted"
timeouts() { count_log "$WORK/b.err" 'closing in [A-Z]+: MESH_ERR_TIMEOUT'; }
for ((i = 0; i < 100 && $(timeouts) < 5; i++)); do sleep 0.05; done # 1 from s_client + 4
[ "$(timeouts)" -ge 5 ] || fail "silent clients were not closed at the handshake timeout"
for fd in 10 11 12 13 14 15; do
  eval "exec $fd<&-"
done

# The real peer was served throughout: no session went down, and a message still arrives.
[ "$(count_log "$WORK/a.err" 'peer down|connect failed')" = 0 ] || fail "A lost its session"
[ "$(count_log "$WORK/b.err" 'peer down')" = 0 ] || fail "B dropped a session"
"$NODE" send --key "$WORK/s.key" --profile seed --to "$B#$KEY_B" --message after-abuse >/dev/null \
  2>>"$WORK/send.log" || fail "send after the bad clients failed"
wait_log "$WORK/b.err" 'text="after-abuse"' || fail "B did not log the message"
node_stop a
node_stop b
echo "PASS test_node_interop"
