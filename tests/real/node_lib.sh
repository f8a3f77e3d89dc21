# node_lib.sh — helpers for the meshara-node shell tests (tests/real/test_node*.sh).
# Sourced, not run (ctest only runs test_*.sh). Loopback only; every process a test starts is
# recorded and killed by PID in the EXIT trap, whatever way the test ends.
#
#   node_init                      temp dir, trap, $NODE (skips with 77 if not built)
#   node_key NAME                  $WORK/NAME.key; prints the public key
#   node_start NAME ARGS...        meshara-node run --key $WORK/NAME.key ARGS... in the
#                                  background (stdout $WORK/NAME.out, stderr $WORK/NAME.err);
#                                  waits for its "listening" line; sets PORT_<NAME>
#   node_stop NAME [SIG]           SIGTERM (or SIG), wait, check exit status 0 and the
#                                  "shutting down" line
#   wait_log FILE REGEX [SECONDS]  poll until FILE has a line matching REGEX (grep -E)
#   count_log FILE REGEX           number of matching lines
#   bg_start VAR CMD...            run CMD in the background, its PID recorded and put in VAR
#   fail MSG                       print MSG and every node log, exit 1
#   need_tool TOOL                 skip (77) when TOOL is missing

node_init() {
  NODE=${MESH_BIN_DIR:-}/meshara-node
  if [ -z "${MESH_BIN_DIR:-}" ] || [ ! -x "$NODE" ]; then
    echo "SKIP: meshara-node not built (MESH_BIN_DIR=${MESH_BIN_DIR:-unset})"
    exit 77
  fi
  WORK=$(mktemp -d /tmp/meshara-node-test.XXXXXX)
  BG_PIDS=()
  declare -gA NODE_PID=()
  trap node_cleanup EXIT
  trap 'exit 130' INT TERM
}

node_cleanup() {
  local rc=$?
  local p
  for p in "${NODE_PID[@]}" "${BG_PIDS[@]}"; do
    kill -KILL "$p" 2>/dev/null || true
  done
  for p in "${NODE_PID[@]}" "${BG_PIDS[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -n "${KEEP_WORK:-}" ]; then
    echo "logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}

need_tool() {
  command -v "$1" >/dev/null 2>&1 || { echo "SKIP: $1 not installed (ci/setup installs it)"; exit 77; }
}

fail() {
  echo "FAIL: $*"
  local f
  for f in "$WORK"/*.err "$WORK"/*.log; do
    [ -e "$f" ] || continue
    echo "---- $(basename "$f")"
    tail -n 40 "$f"
  done
  exit 1
}

node_key() {
  "$NODE" keygen --key "$WORK/$1.key" || fail "keygen $1"
}

wait_log() {
  local file=$1 re=$2 secs=${3:-5}
  local i n=$((secs * 20))
  for ((i = 0; i < n; i++)); do
    grep -Eq -- "$re" "$file" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

count_log() {
  grep -Ec -- "$2" "$1" 2>/dev/null || true
}

node_start() {
  local name=$1
  shift
  # a restarted node's old output must not satisfy the wait below before the new process
  # has truncated it (the redirection happens in the background job, later)
  rm -f "$WORK/$name.out"
  "$NODE" run --key "$WORK/$name.key" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  NODE_PID[$name]=$!
  wait_log "$WORK/$name.out" '^listening ' 5 || fail "$name did not start listening"
  local port
  port=$(sed -n 's/^listening .*:\([0-9]*\)$/\1/p' "$WORK/$name.out")
  printf -v "PORT_$name" '%s' "$port"
}

node_stop() {
  local name=$1 sig=${2:-TERM} rc=0
  kill -"$sig" "${NODE_PID[$name]}"
  wait "${NODE_PID[$name]}" || rc=$?
  unset "NODE_PID[$name]"
  [ "$rc" -eq 0 ] || fail "$name exited with $rc after SIG$sig (expected 0)"
  grep -q 'shutting down' "$WORK/$name.err" || fail "$name did not log its shutdown"
}

bg_start() {
  local var=$1
  shift
  "$@" &
  BG_PIDS+=($!)
  printf -v "$var" '%s' "$!"
}
