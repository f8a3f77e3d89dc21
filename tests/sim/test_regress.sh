#!/usr/bin/env bash
# test_regress.sh — ci/regress fails, naming the bound and by how much, when a scenario's
# expect: bound is broken (fixture tests/fixtures/regress-broken), and passes on a good set.
set -uo pipefail
src=${MESH_SOURCE_DIR:?}
bin=${MESH_BIN_DIR:?}
build=$(dirname "$bin")
out=$(bash "$src/ci/regress" "$build" "$src/tests/fixtures/regress-broken" 2>&1)
rc=$?
echo "$out"
fail=0
[ $rc -ne 0 ] || { echo "FAIL: ci/regress passed a broken bound"; fail=1; }
echo "$out" | grep -q 'expect FAILED .*broken-bound.yaml:15:5: delivery_ratio >= 2, got 1 (off by 1)' ||
  { echo "FAIL: the broken bound is not named with its position and distance"; fail=1; }
echo "$out" | grep -q 'regress FAIL broken-bound' || { echo "FAIL: no FAIL line"; fail=1; }
# the same scenario with a bound it meets passes
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed 's/value: 2}/value: 1}/' "$src/tests/fixtures/regress-broken/broken-bound.yaml" > "$tmp/ok.yaml"
bash "$src/ci/regress" "$build" "$tmp" > "$tmp/log" 2>&1 || { cat "$tmp/log"; echo "FAIL: a met bound failed"; fail=1; }
[ $fail -eq 0 ] && echo "2 passed, 0 failed" || echo "$fail failed"
exit $fail
