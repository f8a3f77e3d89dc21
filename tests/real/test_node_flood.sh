#!/usr/bin/env bash
# test_node_flood.sh — pending handshakes are a resource an attacker cannot hold (issue 9 §6).
#
#   flood_client (127.0.0.2 … 127.0.0.251: N connections, idle or half a ClientHello; each
#        │        one the node closes is reopened FLOOD_RECONNECT ms later, default 1000)
#        ▼
#   A (meshara-node run --listen 127.0.0.1:0, --max-handshakes 64 by default)
#        ▲
#   S (meshara-node send --ping, from 127.0.0.1, once a second)
#
# A ping's time is S's "listening" to "closing" log lines: TCP connect, TLS 1.3, hellos, PING
# and PONG, without S's process start-up, which the attack does not touch. First S pings A
# unloaded (UNLOADED pings). Then, under each flood, every ping must succeed, the median
# within 3x the unloaded median and the slowest within 3x the slowest unloaded one (the
# unloaded spread is this machine's scheduling noise; a case that misses a time bound is
# measured once more, see flood_case; a sanitizer build checks all but the times). Before
# the fix every one of these pings was reset (MESH_ERR_RESET) and the node logged a line per
# refused connection. Now A logs a line and a summary per 10 s, and holds a descriptor per
# pending handshake at most. Last, a node whose descriptors run out (ulimit -n) neither
# spins nor dies: it pauses accepting, logs that once, and serves again afterwards.
# FLOOD_MEASURE=1 prints the figures without failing on them (before/after tables).
set -euo pipefail
. "$(dirname "$0")/node_lib.sh"
node_init
FLOOD=$MESH_BIN_DIR/flood_client
[ -x "$FLOOD" ] || { echo "SKIP: flood_client not built"; exit 77; }
PINGS=5
UNLOADED=7
MEASURE=${FLOOD_MEASURE:-}
RECONNECT=${FLOOD_RECONNECT:-1000} # ms before the attacker reopens a connection the node closed
# A sanitizer build spends ~4x the CPU per connection: its times are printed, not checked.
SANITIZED=
if [[ $(ldd "$NODE" 2>/dev/null || true) =~ lib(asan|ubsan|tsan) ]]; then
  SANITIZED=1
  echo "sanitizer build: ping times are not checked against their bounds"
fi

KEY_A=$(node_key a)
node_key s >/dev/null
node_start a --listen 127.0.0.1:0
A=127.0.0.1:$PORT_a

# One ping of A: prints its time in µs (S's "listening" to "closing" log lines), or "fail".
ping_us() {
  local log=$WORK/ping.log out
  if ! out=$("$NODE" send --key "$WORK/s.key" --to "$A#$KEY_A" --ping --timeout 15000 \
    --log-level debug 2>"$log"); then
    echo fail
    cat "$log" >>"$WORK/pings.log"
    return
  fi
  cat "$log" >>"$WORK/pings.log"
  [[ $out =~ ^pong\ from ]] || { echo fail; return; }
  awk -F'[][]' '/ listening on / { t0 = $2 } / closing [0-9]+ sessions/ { t1 = $2 }
    END { if (t0 == "" || t1 == "") print "fail"; else printf "%d\n", (t1 - t0) * 1e6 }' "$log"
}

median() { printf '%s\n' "$@" | sort -n | sed -n "$((($# + 1) / 2))p"; }
# unloaded N: N pings of A, no flood; sets ref (their median) and ref_max (the slowest).
unloaded() {
  local base=() t i
  for ((i = 0; i < $1; i++)); do
    t=$(ping_us)
    [ "$t" != fail ] || fail "unloaded ping $i failed"
    base+=("$t")
    sleep 0.2
  done
  ref=$(median "${base[@]}")
  ref_max=$(printf '%s\n' "${base[@]}" | sort -n | tail -n 1)
  echo "unloaded: ${base[*]} µs; bounds: median $((3 * ref)), slowest $((3 * ref_max)) µs"
}

bad=0
fd_peak=0
# flood CONNS SOURCES MODE: PINGS pings, one a second, under that flood. A failed ping or a
# flood of log lines marks the test failed (bad); returns 1 when a time bound was missed.
flood() {
  local conns=$1 sources=$2 mode=$3 pid out times=() t worst=0 failed=0 slow=0 logs before
  before=$(count_log "$WORK/a.err" 'server:')
  : >"$WORK/flood.out"
  bg_start pid "$FLOOD" --to "$A" --conns "$conns" --sources "$sources" --mode "$mode" \
    --reconnect "$RECONNECT" >"$WORK/flood.out" 2>&1
  wait_log "$WORK/flood.out" '^ready' 20 || fail "flood_client never got its connections out"
  sleep 1
  for ((i = 0; i < PINGS; i++)); do
    t=$(ping_us)
    times+=("$t")
    fds=$(find "/proc/${NODE_PID[a]}/fd" -mindepth 1 -maxdepth 1 | wc -l)
    [ "$fds" -le "$fd_peak" ] || fd_peak=$fds
    if [ "$t" = fail ]; then
      failed=$((failed + 1))
    elif [ "$t" -gt "$worst" ]; then
      worst=$t
    fi
    sleep 1
  done
  kill -TERM "$pid"
  wait "$pid" || true
  out=$(tail -n 1 "$WORK/flood.out")
  logs=$(($(count_log "$WORK/a.err" 'server:') - before))
  echo "flood $conns $mode from $sources sources: pings ${times[*]} µs (worst $worst," \
    "$failed failed); attacker: $out; node log lines: $logs"
  sleep 1.5 # the flood's handshakes drain before the next case
  [ -z "$MEASURE" ] || return 0
  [ "$failed" = 0 ] || { echo "FAIL: $failed pings failed"; bad=1; }
  # a case lasts < 10 s: its first line, one summary, and the previous case's summary
  [ "$logs" -le 3 ] || { echo "FAIL: $logs refusal log lines (not rate-limited)"; bad=1; }
  [ -z "$SANITIZED" ] || return 0
  [ "$failed" != 0 ] || [ "$(median "${times[@]}")" -le $((3 * ref)) ] || slow=1
  [ "$worst" -le $((3 * ref_max)) ] || slow=1
  return $slow
}

# A case whose pings missed a time bound is measured once more, against a fresh unloaded
# reference: the load of a shared machine moves within seconds (a ping of 3 ms takes 40 now
# and then), while a slowdown the flood causes misses twice.
flood_case() {
  flood "$@" && return 0
  echo "a ping above its bound (median 3x $ref, slowest 3x $ref_max µs): once more"
  unloaded 5
  flood "$@" || { echo "FAIL: pings above 3x their unloaded time, twice"; bad=1; }
}

unloaded "$UNLOADED"
flood_case 64 1 idle   # the attack of issue 9: one address fills --max-handshakes
flood_case 300 1 half  # half ClientHellos from one address
flood_case 300 30 half # ... spread over 30 addresses (the per-source cap no longer bites)
flood_case 1000 100 idle
flood_case 1000 250 half
# Whatever the flood, A holds a descriptor per pending handshake at most (64) besides its own:
# 1,000 connections cannot run a default `ulimit -n` of 1024 out.
[ "$fd_peak" -le 100 ] || { echo "FAIL: A held $fd_peak descriptors"; bad=1; }
echo "descriptors of A under the floods: at most $fd_peak"

# Out of descriptors: B may hold 64 handshakes but only ~30 descriptors are left to it. It
# pauses accepting (no busy loop), logs that once, closes the silent ones at the first-byte
# timeout, and serves again once the flood stops.
node_key b >/dev/null
KEY_B=$("$NODE" pubkey --key "$WORK/b.key")
(ulimit -n 40 && exec "$NODE" run --key "$WORK/b.key" --listen 127.0.0.1:0) >"$WORK/b.out" \
  2>"$WORK/b.err" &
NODE_PID[b]=$!
wait_log "$WORK/b.out" '^listening ' 5 || fail "b did not start listening"
B=127.0.0.1:$(sed -n 's/^listening .*:\([0-9]*\)$/\1/p' "$WORK/b.out")
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/${NODE_PID[b]}/stat"; }
c0=$(cpu_ticks)
bg_start fpid "$FLOOD" --to "$B" --conns 200 --sources 50 --reconnect "$RECONNECT" \
  >"$WORK/flood.out" 2>&1
wait_log "$WORK/b.err" 'accept: Too many open files' 10 || fail "b never ran out of descriptors"
sleep 5
c1=$(cpu_ticks)
kill -TERM "$fpid"
wait "$fpid" || true
emfile=$(count_log "$WORK/b.err" 'accept: ')
echo "out of descriptors: $((c1 - c0)) CPU ticks in ~5 s, $emfile accept-error log lines"
[ $((c1 - c0)) -le 150 ] || { echo "FAIL: b spun ($((c1 - c0)) ticks)"; bad=1; }
[ "$emfile" -le 2 ] || { echo "FAIL: $emfile accept-error lines (not rate-limited)"; bad=1; }
out=$("$NODE" send --key "$WORK/s.key" --to "$B#$KEY_B" --ping --timeout 15000 \
  2>>"$WORK/pings.log") || fail "b did not answer a ping after the flood"
[[ $out =~ ^pong\ from ]] || fail "b answered '$out'"
node_stop b
node_stop a

[ "$bad" = 0 ] || fail "the node did not serve its legitimate peer under a flood"
echo "PASS test_node_flood"
