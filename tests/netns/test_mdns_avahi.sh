#!/usr/bin/env bash
# tests/netns/test_mdns_avahi.sh — the real driver's avahi adapter (node/real/mdns.c) between
# network namespaces, each with its own D-Bus system bus and avahi-daemon.
#
#    ns A 10.77.0.1          ns B 10.77.0.2          ns C 10.77.0.3
#    dbus + avahi-daemon     dbus + avahi-daemon     dbus + avahi-daemon
#    mdns_peer --publish     mdns_peer --browse      mdns_peer --publish (same name)
#    avahi host "mdns-a"     avahi-browse -rtp       avahi host "mdns-c"
#          veth0                   veth0                   veth0
#            |                       |                       |
#            +--------- br0 (bridge alone in ns SW) ---------+
#
# Each namespace runs `unshare -m` with tmpfs on /run/dbus and /run/avahi-daemon, so its
# daemons are private; commands enter it with nsenter (net + mount) and find the bus through
# DBUS_SYSTEM_BUS_ADDRESS. Checks:
#  1. B's adapter finds A's service with A's address, port and TXT (in order), and
#     `avahi-browse -rtp _meshara._tcp` in B lists it too; the ops' argument errors and
#     limits hold, and a stop() inside a callback silences every browser.
#  2. C publishes the same name: its adapter renames it ("NAME #2") and B finds that.
#  3. A's publisher exits (goodbye): B's adapter reports the removal.
#  4. A's avahi-daemon restarts under a running publisher: it is published again.
#  5. B's avahi-daemon restarts under a running browser: removed, then found again.
# Root only (skips with a reason otherwise). A trap deletes the namespaces and kills only the
# processes this script started (every one of them lives in a namespace it created).
set -u

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, private mounts)"
for c in ip unshare nsenter mount dbus-daemon avahi-daemon avahi-browse timeout; do
    command -v "$c" >/dev/null 2>&1 || skip "$c not installed (ci/setup installs it)"
done
BIN=${MESH_BIN_DIR:-$(dirname "$0")/../../build/bin}
PEER=$BIN/mdns_peer
[ -x "$PEER" ] || skip "$PEER not built"

ID=mdns$$
SUBNET=10.77.0
HOST_PREFIX=mdns-
# shellcheck source=tests/netns/netns_lib.sh
source "$(dirname "$0")/netns_lib.sh"

# peer_bg NAME LOG ARGS...: mdns_peer in the background, output in $TMP/LOG; pid in $PEER_PID.
peer_bg() {
    local name=$1 log=$2
    shift 2
    (in_ns_exec "$name" "$PEER" "$@" >"$TMP/$log.out" 2>"$TMP/$log.err") &
    PEER_PID=$!
    STARTED+=("$PEER_PID")
}


host_add a 1
host_add b 2
host_add c 3
daemons_start a
daemons_start b
daemons_start c
echo "namespaces and daemons up"

PK=$(printf '%064x' 0 | tr 0 7)
# ---- 1. found with address, port and TXT; avahi-browse agrees
peer_bg a pubA --publish meshara-aaaa --port 4001 --txt "pk=$PK" --txt v=1
PUB_A=$PEER_PID
wait_for "$TMP/pubA.err" "published 'meshara-aaaa'" 10 || { show pubA.err; fail "A did not publish"; }
in_ns b timeout 20 "$PEER" --expect meshara-aaaa --timeout 15 >"$TMP/find1.out" 2>"$TMP/find1.err" ||
    { show find1.out find1.err; fail "B did not find A"; }
grep -qx "FOUND meshara-aaaa 10.77.0.1:4001 pk=$PK v=1" "$TMP/find1.out" ||
    { show find1.out; fail "B's report of A is wrong"; }
echo "ok 1a: adapter in B found A: $(head -1 "$TMP/find1.out" | cut -c1-60)..."
in_ns b timeout 10 avahi-browse -rtp _meshara._tcp >"$TMP/browse1.out" 2>&1
# (avahi-browse prints the TXT strings last-first, so check each one on its own)
LINE=$(grep "^=;veth0;IPv4;meshara-aaaa;_meshara._tcp;local;mdns-a.local;10.77.0.1;4001;" "$TMP/browse1.out")
[[ $LINE == *'"pk='$PK'"'* && $LINE == *'"v=1"'* ]] ||
    { show browse1.out; fail "avahi-browse in B does not list A"; }
echo "ok 1b: avahi-browse -rtp in B lists A"

# ---- 1c. the ops' contract against a live daemon (errors, limits, stop() inside a callback)
in_ns b timeout 20 "$PEER" --check-api >"$TMP/api.out" 2>&1 || { show api.out; fail "check-api"; }
echo "ok 1c: $(grep check-api: "$TMP/api.out")"

# ---- 2. name collision: C publishes the same name and becomes "meshara-aaaa #2"
peer_bg c pubC --publish meshara-aaaa --port 4003 --txt v=3
wait_for "$TMP/pubC.err" "published 'meshara-aaaa #2'" 15 || { show pubC.err; fail "C did not rename"; }
grep -q "name 'meshara-aaaa' is taken, trying 'meshara-aaaa #2'" "$TMP/pubC.err" ||
    { show pubC.err; fail "C's rename not logged"; }
in_ns b timeout 20 "$PEER" --expect "meshara-aaaa #2" --timeout 15 >"$TMP/find2.out" 2>&1 ||
    { show find2.out; fail "B did not find C's renamed service"; }
grep -qx "FOUND meshara-aaaa #2 10.77.0.3:4003 v=3" "$TMP/find2.out" || { show find2.out; fail "C's report"; }
echo "ok 2: collision renamed C's service to 'meshara-aaaa #2', B found it"

# ---- 3. goodbye: A's publisher stops, B's browser reports the removal
peer_bg b gone --expect-gone meshara-aaaa --timeout 20
GONE=$PEER_PID
wait_for "$TMP/gone.out" "FOUND meshara-aaaa 10.77.0.1" 10 || { show gone.out gone.err; fail "B (gone) did not find A"; }
kill -TERM "$PUB_A"
wait "$PUB_A" || fail "A's publisher did not exit cleanly"
wait "$GONE" || { show gone.out gone.err; fail "B did not see A's removal"; }
grep -qx "REMOVED meshara-aaaa 10.77.0.1:4001" "$TMP/gone.out" || { show gone.out; fail "removal line"; }
echo "ok 3: A withdrew, B reported REMOVED"

# ---- 4. A's avahi-daemon restarts under a running publisher
peer_bg a pubA2 --publish meshara-bbbb --port 4002
wait_for "$TMP/pubA2.err" "published 'meshara-bbbb'" 10 || { show pubA2.err; fail "A2 did not publish"; }
peer_bg b gone2 --expect-gone meshara-bbbb --timeout 20
GONE=$PEER_PID
wait_for "$TMP/gone2.out" "FOUND meshara-bbbb" 10 || { show gone2.out; fail "B did not find A2"; }
kill -TERM "$(avahi_pid a)"
wait "$GONE" || { show gone2.out gone2.err; fail "B did not see A's daemon go"; }
avahi_start a
wait_for "$TMP/pubA2.err" "waiting for avahi-daemon" 5 || { show pubA2.err; fail "A2 did not notice"; }
in_ns b timeout 20 "$PEER" --expect meshara-bbbb --timeout 15 >"$TMP/find4.out" 2>&1 ||
    { show find4.out pubA2.err; fail "A2 not published again after the restart"; }
[ "$(grep -c "published 'meshara-bbbb'" "$TMP/pubA2.err")" = 2 ] || { show pubA2.err; fail "A2 log"; }
echo "ok 4: A's daemon restarted, its publisher reconnected and published again"

# ---- 5. B's avahi-daemon restarts under a running browser
peer_bg b again --expect-again meshara-bbbb --timeout 25
AGAIN=$PEER_PID
wait_for "$TMP/again.out" "FOUND meshara-bbbb" 10 || { show again.out; fail "B (again) did not find"; }
kill -TERM "$(avahi_pid b)"
wait_for "$TMP/again.out" "REMOVED meshara-bbbb" 10 || { show again.out again.err; fail "no removal"; }
avahi_start b
wait "$AGAIN" || { show again.out again.err; fail "B's browser did not find A2 again"; }
echo "ok 5: B's daemon restarted, its browser reported REMOVED then FOUND again"
show again.out
echo "PASS"
