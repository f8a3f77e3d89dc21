#!/usr/bin/env bash
# test_cli.sh — meshara-sim used as a user would, wrongly: a FIFO or a directory given as the
# scenario (refused at once, never a hang), `--db` naming a file that is not a results
# database (refused, file intact; --force replaces it), `check` refusing exactly what `run`
# refuses (same message, exit 2, no database), `dump` of a missing file or of a non-database
# (an error and nothing on stdout), an unknown sub-command named, each command's --help, and a
# run interrupted by SIGINT ending `interrupted`, not `running`.
set -uo pipefail
src=${MESH_SOURCE_DIR:?}
sim=${MESH_BIN_DIR:?}/meshara-sim
tmp=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp" || exit 1
command -v sqlite3 >/dev/null || { echo "skip: sqlite3 (the CLI) not installed"; exit 77; }
fail=0 passed=0
ok() { echo "ok: $1"; passed=$((passed + 1)); }
bad() { echo "FAIL: $1"; fail=$((fail + 1)); }
# expect CODE PHRASE -- command...: exit code and a phrase on stderr; stdout kept in $out
expect() {
  local code=$1 phrase=$2
  shift 3
  out=$(timeout 20 "$@" 2>"$tmp/err")
  local rc=$?
  if [ $rc -eq "$code" ] && { [ -z "$phrase" ] || grep -qF -- "$phrase" "$tmp/err"; }; then
    ok "$* -> $code, \"$phrase\""
  else
    bad "$* -> $rc (want $code), stderr: $(cat "$tmp/err")"
  fi
}

# 1. a FIFO or a directory as the scenario: refused from its type at once
mkfifo pipe.yaml
expect 2 "pipe.yaml: is a FIFO (named pipe), not a scenario file" -- "$sim" check pipe.yaml
expect 2 "pipe.yaml: is a FIFO (named pipe), not a scenario file" -- "$sim" run pipe.yaml --db p.db
[ ! -e p.db ] && ok "no database for a refused scenario" || bad "p.db created"
expect 2 "$tmp: is a directory, not a scenario file" -- "$sim" check "$tmp"

# 2. --db naming the scenario itself: refused before anything runs, the file intact
cp "$src/scenarios/default.yaml" my.yaml
expect 2 "my.yaml: exists and is not a Meshara results database: not replaced (hint: choose another --db, or add --force)" \
  -- "$sim" run my.yaml --db my.yaml --no-progress
cmp -s my.yaml "$src/scenarios/default.yaml" && ok "my.yaml untouched" || bad "my.yaml changed"
expect 2 "is a FIFO (named pipe), not a results database" -- "$sim" run my.yaml --db pipe.yaml --force --no-progress
printf 'name: tiny\nduration: 5s\ngroups: [{name: a, count: 2}]\n' > tiny.yaml
printf 'notes\n' > notes.txt
expect 0 "" -- "$sim" run tiny.yaml --db notes.txt --force --quiet --no-progress
[ "$(sqlite3 notes.txt 'SELECT status FROM runs')" = ok ] && ok "--force replaced notes.txt" || bad "--force"
expect 0 "" -- "$sim" run tiny.yaml --db notes.txt --quiet --no-progress
ok "a results database is replaced without --force"

# 3. check refuses what run refuses, with the same message, before any database exists
cat > probe.yaml <<'EOF'
name: p
duration: 1m
groups: [{name: a, count: 2}]
network:
  censors:
    - name: gfw
      in_front_of: a
      rules:
        - match: {sni: x}
          action: probe
EOF
cat > carrier.yaml <<'EOF'
name: n
duration: 1m
network:
  lans: [{name: isp, private: true, nat: {type: symmetric, upnp: true}}]
groups:
  - {name: a, count: 2, placement: isp, nat: full-cone}
EOF
cat > expect.yaml <<'EOF'
name: e
duration: 1m
groups: [{name: a, count: 2}]
expect:
  - {summary: latency.p99_ms, op: "<=", value: 800}
EOF
cat > minmax.yaml <<'EOF'
name: m
duration: 1m
network:
  core:
    latency: {uniform: [50ms, 10ms]}
groups: [{name: a, count: 2}]
EOF
cat > self.yaml <<'EOF'
name: s
duration: 1m
groups: [{name: solo, count: 1}]
traffic:
  - {name: chat, from: solo, to: solo, size: 1KiB, interval: 1s}
EOF
while read -r f msg; do
  expect 2 "$f:$msg" -- "$sim" check "$f"
  check_err=$(cat "$tmp/err")
  expect 2 "$f:$msg" -- "$sim" run "$f" --db "$f.db" --no-progress
  [ "$check_err" = "$(cat "$tmp/err")" ] && ok "check and run say the same for $f" || bad "$f: check and run differ"
  [ ! -e "$f.db" ] && ok "no database for $f" || bad "$f.db created"
done <<'EOF'
probe.yaml 9:11: rule 'rule0' of censor 'gfw': action probe (active probing) is not modelled yet
carrier.yaml 4:10: LAN 'isp' has NATs behind it ('a'), so its NAT is a carrier NAT
expect.yaml 5:5: unknown summary figure 'latency.p99_ms' in expect[0] (hint: did you mean 'delivery_latency_p99_ms'?
minmax.yaml 5:24: network.core.latency.uniform has min > max
self.yaml 5:5: traffic 'chat' has no destination
EOF

# 4. dump: errors name the problem, and nothing reaches stdout
expect 2 "cannot dump missing.db: no such file" -- "$sim" dump missing.db
[ -z "$out" ] && ok "nothing printed for a missing file" || bad "dump printed: $out"
expect 2 "cannot dump my.yaml: not a Meshara results database" -- "$sim" dump my.yaml
[ -z "$out" ] && ok "nothing printed for a non-database" || bad "dump printed: $out"
expect 2 "cannot dump pipe.yaml: is a FIFO (named pipe), not a results database" -- "$sim" dump pipe.yaml

# 5. usage: an unknown command is named; each command has its own --help
expect 2 "unknown command 'chek' (did you mean 'check'? commands: run, check, dump" -- "$sim" chek x.yaml
expect 2 "unknown command 'frobnicate' (commands: run, check, dump" -- "$sim" frobnicate
expect 2 "check does not take --db" -- "$sim" check tiny.yaml --db x.db
expect 2 "run: option '--seed' needs a value" -- "$sim" run tiny.yaml --seed
for c in run check dump; do
  h=$("$sim" "$c" --help) && echo "$h" | grep -q "^usage: meshara-sim $c " && ok "$c --help" || bad "$c --help: $h"
done
"$sim" run --help | grep -q -- "--force" && ok "run --help names --force" || bad "run --help lacks --force"

# 6. interrupted by SIGINT: the database says `interrupted`, never `running`
"$sim" run "$src/scenarios/default.yaml" --db int.db --quiet --no-progress > int.out 2>&1 &
pid=$!
for _ in $(seq 100); do
  [ "$(sqlite3 int.db 'SELECT count(*) FROM runs' 2>/dev/null)" = 1 ] && break
  sleep 0.2
done
kill -INT "$pid"
wait "$pid"
rc=$?
pid=
st=$(sqlite3 int.db 'SELECT status FROM runs')
if [ $rc -eq 1 ] && [ "$st" = interrupted ] && grep -q "interrupted at" int.out; then
  ok "SIGINT: exit 1, status interrupted ($(cat int.out))"
else
  bad "SIGINT: exit $rc, status '$st', output: $(cat int.out)"
fi

echo "$passed passed, $fail failed"
exit $((fail > 0))
