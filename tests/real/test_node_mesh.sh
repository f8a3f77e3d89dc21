#!/usr/bin/env bash
# test_node_mesh.sh — a mesh of real meshara-node processes on loopback:
#   boot (run --listen 127.0.0.1:0)  ◀── n1 .. n20 (run --bootstrap boot#KEY, ephemeral ports)
#  1. every node logs "joined the mesh" (its self lookup through boot succeeded);
#  2. `send` with an identity of its own joins through a random node i and delivers a message
#     to a random node j by key alone (a DHT lookup), for SENDS random pairs; each receiver
#     logs the message;
#  3. n1 runs with --peers-db: it is stopped, boot is stopped too, and n1 restarted on a new
#     port with the same --peers-db and no --bootstrap joins through the stored peers, and a
#     message sent through it by key arrives.
# Bounded in time (every wait has a limit; sends have --timeout); only our PIDs are killed.
set -euo pipefail
. "$(dirname "$0")/node_lib.sh"
node_init
N=20
SENDS=10
HB=1000
RANDOM=$$ # the pairs differ per run; they are printed, so a failure can be replayed by eye

KEY_boot=$(node_key boot)
KEY_S=$(node_key s)
node_start boot --listen 127.0.0.1:0 --heartbeat $HB
BOOT=127.0.0.1:$PORT_boot#$KEY_boot
declare -A KEY ADDR
for i in $(seq 1 $N); do
  KEY[$i]=$(node_key "n$i")
  db=()
  [ "$i" = 1 ] && db=(--peers-db "$WORK/n1.db")
  node_start "n$i" --listen 127.0.0.1:0 --bootstrap "$BOOT" --heartbeat $HB "${db[@]}"
  port_var=PORT_n$i
  ADDR[$i]=127.0.0.1:${!port_var}
done
for i in $(seq 1 $N); do
  wait_log "$WORK/n$i.err" 'joined the mesh' 20 || fail "n$i did not join"
done
echo "ok 1: $N nodes joined through one bootstrap node"

# send FROM_NODE TO_NODE TEXT: S joins through FROM_NODE and delivers TEXT to TO_NODE's key
send_via() {
  local via=$1 to=$2 text=$3 out
  out=$(timeout 30 "$NODE" send --key "$WORK/s.key" --bootstrap "${ADDR[$via]}#${KEY[$via]}" \
    --to "${KEY[$to]}" --message "$text" --timeout 15000 2>>"$WORK/send.log") ||
    fail "send via n$via to n$to exited $?"
  [ "$out" = "delivered to ${KEY[$to]}" ] || fail "send via n$via to n$to printed '$out'"
  wait_log "$WORK/n$to.err" "message from $KEY_S: len=${#text} text=\"$text\"" 5 ||
    fail "n$to did not log '$text'"
}
for s in $(seq 1 $SENDS); do
  via=$((RANDOM % N + 1))
  to=$((RANDOM % N + 1))
  [ "$to" = "$via" ] && to=$((to % N + 1))
  send_via "$via" "$to" "msg-$s-n$via-n$to"
done
echo "ok 2: $SENDS messages by key between random pairs arrived"

# 3. n1 restarts with its peer store and without any bootstrap node
node_stop n1
node_stop boot
mv "$WORK/n1.err" "$WORK/n1-first.log"
node_start n1 --listen 127.0.0.1:0 --peers-db "$WORK/n1.db" --heartbeat $HB
ADDR[1]=127.0.0.1:$PORT_n1
wait_log "$WORK/n1.err" 'node: peer store: MESH_OK, [1-9][0-9]* records kept' 5 ||
  fail "n1 did not load its peer store"
wait_log "$WORK/n1.err" 'joined the mesh' 20 || fail "n1 did not join from its peer store"
grep -q 'nothing to join' "$WORK/n1.err" && fail "n1 found nothing to join"
to=$((RANDOM % (N - 1) + 2))
send_via 1 "$to" "after-restart-n$to"
echo "ok 3: n1 restarted from $(grep -o '[0-9]* records kept' "$WORK/n1.err") without the bootstrap node, delivered to n$to"
echo "PASS test_node_mesh"
