#!/usr/bin/env bash
# test_node_pair.sh — two meshara-node processes on loopback, in the framing mode given by
# NODE_FRAMING ("" = 4-byte frames, the default; "--http2" = HTTP/2; test_node_h2.sh runs
# this script that way):
#   A (--peer B#KEY_B)  ──TLS 1.3 + hello──▶  B (--listen 127.0.0.1:0)
# Both log the authenticated session with the other's key; heartbeats keep it up past 2.5
# intervals; `send` with A's identity delivers a message B logs (and acknowledges) and a ping
# A answers; B restarts on the same port and A reconnects by itself; SIGTERM closes sessions
# cleanly (the other side logs reason=MESH_OK with the peer's Goodbye) and exits 0; so does
# SIGINT.
set -euo pipefail
. "$(dirname "$0")/node_lib.sh"
node_init
FRAMING=${NODE_FRAMING:-}
ALPN=meshara/1.0
[ "$FRAMING" = "--http2" ] && ALPN=h2
HB=400 # ms: a silent peer would be caught (after 2.5 intervals) within the idle wait below

KEY_A=$(node_key a)
KEY_B=$(node_key b)
node_start b --listen 127.0.0.1:0 --heartbeat $HB $FRAMING
B=127.0.0.1:$PORT_b
node_start a --listen 127.0.0.1:0 --peer "$B#$KEY_B" --heartbeat $HB --reconnect-min 100 \
  --reconnect-max 400 $FRAMING

wait_log "$WORK/a.err" "session up: out $B key=$KEY_B alpn=$ALPN" ||
  fail "A did not authenticate B"
wait_log "$WORK/b.err" "session up: in 127\.0\.0\.1:[0-9]+ key=$KEY_A alpn=$ALPN" ||
  fail "B did not authenticate A"

# heartbeats: 2.5 intervals of silence would close the session; wait 6 intervals
sleep 2.4
[ "$(count_log "$WORK/a.err" 'session down')" = 0 ] || fail "A's session went down while idle"
[ "$(count_log "$WORK/b.err" 'session down')" = 0 ] || fail "B's session went down while idle"

# A's identity delivers a message to B; B logs it (special bytes escaped) and acknowledges
msg='hello "B" from A'
out=$("$NODE" send --key "$WORK/a.key" --to "$B#$KEY_B" --message "$msg" $FRAMING 2>>"$WORK/send.log") ||
  fail "send exited $?"
[ "$out" = "delivered to $KEY_B" ] || fail "send printed '$out'"
wait_log "$WORK/b.err" "message from $KEY_A \(127\.0\.0\.1:[0-9]+\): id=[0-9]+ len=${#msg} text=\"hello \\\\\"B\\\\\" from A\"" ||
  fail "B did not log the message"

# a 100 KiB message arrives whole (the log shows its length, the text cut)
big=$(head -c 102400 /dev/zero | tr '\0' x)
"$NODE" send --key "$WORK/a.key" --to "$B#$KEY_B" --message "$big" $FRAMING >/dev/null 2>>"$WORK/send.log" ||
  fail "100 KiB send exited $?"
wait_log "$WORK/b.err" "len=102400 text=\"x{200}\" \(cut\)" || fail "B did not log the 100 KiB message"

# A answers pings
A=127.0.0.1:$PORT_a
out=$("$NODE" send --key "$WORK/b.key" --to "$A#$KEY_A" --ping $FRAMING 2>>"$WORK/send.log") || fail "ping exited $?"
[[ $out =~ ^pong\ from\ $KEY_A\ rtt_us=[0-9]+$ ]] || fail "ping printed '$out'"
wait_log "$WORK/a.err" "ping from $KEY_B answered" || fail "A did not log the ping"

# B stops: clean close seen by A (B's Goodbye), then B comes back on the same port and A
# reconnects by itself
node_stop b
wait_log "$WORK/a.err" "session down: out $B key=$KEY_B reason=MESH_OK peer_reason=MESH_OK" ||
  fail "A did not see B's clean close"
mv "$WORK/b.err" "$WORK/b1.log"
node_start b --listen "$B" --heartbeat $HB $FRAMING
wait_log "$WORK/b.err" "session up: in 127\.0\.0\.1:[0-9]+ key=$KEY_A" 5 || fail "A did not reconnect"
[ "$(count_log "$WORK/a.err" "session up: out $B")" = 2 ] || fail "A's session count is not 2"

# A stops (SIGINT, like Ctrl-C): B sees A's Goodbye and a clean close; both exit 0
node_stop a INT
wait_log "$WORK/b.err" "session down: in 127\.0\.0\.1:[0-9]+ key=$KEY_A reason=MESH_OK peer_reason=MESH_OK" ||
  fail "B did not see A's clean close"
grep -q 'closing 1 sessions' "$WORK/a.err" || fail "A did not close its session on SIGTERM"
node_stop b
if grep -E 'ERROR|MESH_ERR_(RESET|TRUNCATED|TLS)' "$WORK"/a.err "$WORK"/b.err "$WORK"/b1.log; then
  fail "unexpected errors in the logs"
fi
echo "PASS test_node_pair ${FRAMING:-frames}"
