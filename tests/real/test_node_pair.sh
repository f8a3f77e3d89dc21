#!/usr/bin/env bash
# test_node_pair.sh — two meshara-node processes on loopback, in the framing mode given by
# NODE_FRAMING ("" = 4-byte frames, the default; "--http2" = HTTP/2; test_node_h2.sh runs
# this script that way):
#   A (--peer B#KEY_B)  ──TLS 1.3 + hello──▶  B (--listen 127.0.0.1:0)
# Both log the authenticated peer with the other's key; heartbeats keep it up past 2.5
# intervals; `send` (a third identity, S) delivers a message B logs (and acknowledges), by
# address and by key through B as bootstrap node, and a ping A answers; B restarts on the same
# port and A reconnects by itself (probing with backoff, logging the refusals meanwhile);
# SIGTERM and SIGINT stop a node with exit 0 and the other side logs the peer down.
set -euo pipefail
. "$(dirname "$0")/node_lib.sh"
node_init
FRAMING=${NODE_FRAMING:-}
HB=400 # ms: a silent peer would be caught (after 2.5 intervals) within the idle wait below

KEY_A=$(node_key a)
KEY_B=$(node_key b)
KEY_S=$(node_key s)
node_start b --listen 127.0.0.1:0 --heartbeat $HB $FRAMING
B=127.0.0.1:$PORT_b
node_start a --listen 127.0.0.1:0 --peer "$B#$KEY_B" --heartbeat $HB --reconnect-min 100 \
  --reconnect-max 400 $FRAMING

wait_log "$WORK/a.err" "peer up: out key=$KEY_B \(manual\)" || fail "A did not authenticate B"
wait_log "$WORK/b.err" "peer up: in key=$KEY_A" || fail "B did not authenticate A"

# heartbeats: 2.5 intervals of silence would close the session; wait 6 intervals
sleep 2.4
[ "$(count_log "$WORK/a.err" 'peer down')" = 0 ] || fail "A's session went down while idle"
[ "$(count_log "$WORK/b.err" 'peer down')" = 0 ] || fail "B's session went down while idle"

# S delivers a message to B by address; B logs it (special bytes escaped) and acknowledges
msg='hello "B" from S'
out=$("$NODE" send --key "$WORK/s.key" --to "$B#$KEY_B" --message "$msg" $FRAMING 2>>"$WORK/send.log") ||
  fail "send exited $?"
[ "$out" = "delivered to $KEY_B" ] || fail "send printed '$out'"
wait_log "$WORK/b.err" "message from $KEY_S: len=${#msg} text=\"hello \\\\\"B\\\\\" from S\"" ||
  fail "B did not log the message"

# by key alone: S joins through B (bootstrap) and finds A in the DHT
out=$("$NODE" send --key "$WORK/s.key" --bootstrap "$B#$KEY_B" --to "$KEY_A" --message by-key \
  $FRAMING 2>>"$WORK/send.log") || fail "send by key exited $?"
[ "$out" = "delivered to $KEY_A" ] || fail "send by key printed '$out'"
wait_log "$WORK/a.err" "message from $KEY_S: len=6 text=\"by-key\"" || fail "A did not log by-key"

# a 100 KiB message arrives whole (the log shows its length, the text cut)
big=$(head -c 102400 /dev/zero | tr '\0' x)
"$NODE" send --key "$WORK/s.key" --to "$B#$KEY_B" --message "$big" $FRAMING >/dev/null 2>>"$WORK/send.log" ||
  fail "100 KiB send exited $?"
wait_log "$WORK/b.err" "len=102400 text=\"x{200}\" \(cut\)" || fail "B did not log the 100 KiB message"

# A answers pings
A=127.0.0.1:$PORT_a
out=$("$NODE" send --key "$WORK/s.key" --to "$A#$KEY_A" --ping $FRAMING 2>>"$WORK/send.log") || fail "ping exited $?"
[[ $out =~ ^pong\ from\ $KEY_A\ rtt_us=[0-9]+$ ]] || fail "ping printed '$out'"

# B stops: A sees B go, then B comes back on the same port and A reconnects by itself
node_stop b
# B leaves in order (Goodbye, close_notify, FIN): A logs an orderly close, not a reset
wait_log "$WORK/a.err" "peer down: key=$KEY_B reason=MESH_OK; retry in [0-9]+ ms" ||
  fail "A did not see B leave in order"
wait_log "$WORK/a.err" "connect failed: out $B key=$KEY_B reason=MESH_ERR_REFUSED .*retry in" ||
  fail "A did not log its probe of B being refused"
mv "$WORK/b.err" "$WORK/b1.log"
node_start b --listen "$B" --heartbeat $HB $FRAMING
wait_log "$WORK/b.err" "peer up: in key=$KEY_A" 5 || fail "A did not reconnect"
[ "$(count_log "$WORK/a.err" "peer up: out key=$KEY_B")" = 2 ] || fail "A's peer-up count is not 2"

# A stops (SIGINT, like Ctrl-C): B sees A go; both exit 0
node_stop a INT
wait_log "$WORK/b.err" "peer down: key=$KEY_A reason=MESH_OK" || fail "B did not see A leave in order"
grep -Eq 'closing [0-9]+ sessions' "$WORK/a.err" || fail "A did not close its sessions on SIGINT"
node_stop b
if grep -E 'ERROR|MESH_ERR_(TRUNCATED|TLS)' "$WORK"/a.err "$WORK"/b.err "$WORK"/b1.log; then
  fail "unexpected errors in the logs"
fi
echo "PASS test_node_pair ${FRAMING:-frames}"
