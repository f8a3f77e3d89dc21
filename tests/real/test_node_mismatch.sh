#!/usr/bin/env bash
# test_node_mismatch.sh — a pinned key that is not the peer's is refused, on both paths:
#   A (run, --peer B#KEY_C)  ──▶  B : A logs MESH_ERR_KEY_MISMATCH, never "peer up" for B,
#                                    and keeps retrying with backoff
#   send --to B#KEY_A        ──▶  B : exit 1, stderr names MESH_ERR_KEY_MISMATCH
#   send --bootstrap B#KEY_A ──▶  B : the join fails (impostor logged), the send fails
# and the right key still works against the same B afterwards.
set -euo pipefail
. "$(dirname "$0")/node_lib.sh"
node_init

KEY_A=$(node_key a)
KEY_B=$(node_key b)
KEY_C=$(node_key c)
node_start b --listen 127.0.0.1:0
B=127.0.0.1:$PORT_b
node_start a --listen 127.0.0.1:0 --peer "$B#$KEY_C" --reconnect-min 100 --reconnect-max 200

wait_log "$WORK/a.err" "connect failed: out $B key=$KEY_C reason=MESH_ERR_KEY_MISMATCH .*retry in [0-9]+ ms" ||
  fail "A did not log the key mismatch"
# it retries (and fails the same way each time)
for ((i = 0; i < 60 && $(count_log "$WORK/a.err" 'MESH_ERR_KEY_MISMATCH.*retry') < 3; i++)); do
  sleep 0.05
done
[ "$(count_log "$WORK/a.err" 'MESH_ERR_KEY_MISMATCH.*retry')" -ge 3 ] || fail "A did not retry"
[ "$(count_log "$WORK/a.err" 'peer up')" = 0 ] || fail "A accepted a session with the wrong key"

rc=0
"$NODE" send --key "$WORK/c.key" --to "$B#$KEY_A" --ping >"$WORK/send.out" 2>"$WORK/send.log" || rc=$?
[ "$rc" = 1 ] || fail "send with a wrong pinned key exited $rc"
grep -q 'failed: MESH_ERR_KEY_MISMATCH' "$WORK/send.log" || fail "send did not name the mismatch"
[ ! -s "$WORK/send.out" ] || fail "send printed a result: $(cat "$WORK/send.out")"

rc=0
"$NODE" send --key "$WORK/c.key" --bootstrap "$B#$KEY_A" --to "$KEY_B" --ping --timeout 3000 \
  >"$WORK/send.out" 2>>"$WORK/send.log" || rc=$?
[ "$rc" = 1 ] || fail "send through an impostor bootstrap node exited $rc"
grep -q "bootstrap node $B proved another key than the pinned one" "$WORK/send.log" ||
  fail "send did not log the impostor"
grep -q 'join failed: MESH_ERR_UNREACHABLE' "$WORK/send.log" || fail "send did not log the failed join"
[ ! -s "$WORK/send.out" ] || fail "send printed a result: $(cat "$WORK/send.out")"

"$NODE" send --key "$WORK/c.key" --to "$B#$KEY_B" --ping >"$WORK/send.out" 2>>"$WORK/send.log" ||
  fail "send with the right key failed"
grep -q "^pong from $KEY_B" "$WORK/send.out" || fail "no pong"
node_stop a
node_stop b
echo "PASS test_node_mismatch"
