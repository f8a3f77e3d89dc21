#!/usr/bin/env bash
# test_node_relay.sh — a node reached through a relay, three meshara-node processes on loopback:
#   R (--relay-service)  ◀── T (--relay R, advertises 127.0.0.9:1 where nobody listens)
#   S (send --to KEY_T --bootstrap R): looks T's record up, the direct connect is refused,
#   so S opens a circuit through R and runs its session inside it.
# T cannot confirm any address (its peers are all in 127.0.0.0/24: one observer group), so
# after the bound it reserves on R and advertises R in its record; both T and S then log the
# session's path as relayed, and T logs the message. R sees only ciphertext (the session is
# end-to-end TLS; tests/sim/test_relay.c alters bytes in a relay and gets MESH_ERR_TLS).
set -euo pipefail
. "$(dirname "$0")/node_lib.sh"
node_init

KEY_R=$(node_key r)
KEY_T=$(node_key t)
KEY_S=$(node_key s)
node_start r --listen 127.0.0.1:0 --relay-service
R=127.0.0.1:$PORT_r
wait_log "$WORK/r.err" "relay service on" || fail "R did not start its relay service"
node_start t --listen 127.0.0.1:0 --advertise 127.0.0.9:1 --bootstrap "$R#$KEY_R" \
  --relay "$R#$KEY_R"
wait_log "$WORK/t.err" "relay $R: reserved for [0-9]+ s, advertised" 40 ||
  fail "T did not reserve on R"
wait_log "$WORK/t.err" "reach IPv4: relayed" 5 || fail "T's state is not relayed"

msg='through the relay'
out=$("$NODE" send --key "$WORK/s.key" --to "$KEY_T" --bootstrap "$R#$KEY_R" --message "$msg" \
  --timeout 20000 2>"$WORK/send.err") || fail "send exited $?: $(tail -3 "$WORK/send.err")"
[ "$out" = "delivered to $KEY_T" ] || fail "send printed '$out'"
wait_log "$WORK/t.err" "message from $KEY_S: len=${#msg} text=\"$msg\"" || fail "T did not log it"
wait_log "$WORK/t.err" "peer up: in key=$KEY_S path=relayed" || fail "T's session is not relayed"
grep -Eq "relayed session to [0-9a-f]+ up" "$WORK/send.err" || fail "S did not log a relayed session"
grep -q "peer up: out key=$KEY_T path=relayed" "$WORK/send.err" || fail "S's session path is not relayed"
echo PASS
