#!/usr/bin/env bash
# tests/netns/test_node_mdns.sh — three meshara-node processes find each other by mDNS alone
# (no bootstrap node, no --peer) and exchange messages.
#
#    ns A 10.78.0.1           ns B 10.78.0.2           ns C 10.78.0.3
#    dbus + avahi-daemon      dbus + avahi-daemon      dbus + avahi-daemon
#    meshara-node run --mdns  meshara-node run --mdns  meshara-node run --mdns
#          veth0                    veth0                    veth0
#            +---------- br0 (bridge alone in ns SW) ----------+
#
# Namespace and daemon setup as in test_mdns_avahi.sh (private /run/dbus and
# /run/avahi-daemon per namespace). Checks:
#  1. each node logs the other two as peers (found by mDNS, TXT key checked by the session);
#  2. `avahi-browse -rtp _meshara._tcp` in B lists the three, each with its pk= TXT;
#  3. `meshara-node send --mdns` in A (its own identity) delivers a message to C's key and one
#     to B's key; C and B log them.
# Root only (skips with a reason otherwise). Unique names per run; a trap deletes the
# namespaces and kills only the processes this script started.
set -u

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, private mounts)"
for c in ip unshare nsenter mount dbus-daemon avahi-daemon avahi-browse timeout; do
    command -v "$c" >/dev/null 2>&1 || skip "$c not installed (ci/setup installs it)"
done
BIN=${MESH_BIN_DIR:-$(dirname "$0")/../../build/bin}
NODE=$BIN/meshara-node
[ -x "$NODE" ] || skip "$NODE not built"

ID=nmd$$
SUBNET=10.78.0
HOST_PREFIX=nmd$$-
# shellcheck source=tests/netns/netns_lib.sh
source "$(dirname "$0")/netns_lib.sh"


node_bg() { # node_bg NAME: meshara-node run --mdns in namespace NAME, logs in $TMP/NAME.*
    local name=$1 idx=$2
    (in_ns_exec "$name" "$NODE" run --key "$TMP/$name.key" --listen "10.78.0.$idx:7000" --mdns \
        --heartbeat 1000 >"$TMP/$name.out" 2>"$TMP/$name.err") &
    STARTED+=($!)
}

host_add a 1
host_add b 2
host_add c 3
daemons_start a
daemons_start b
daemons_start c
echo "namespaces and daemons up"

declare -A KEY
for n in a b c s; do
    KEY[$n]=$("$NODE" keygen --key "$TMP/$n.key") || fail "keygen $n"
done
node_bg a 1
node_bg b 2
node_bg c 3
for n in a b c; do
    wait_for "$TMP/$n.out" '^listening ' 30 || { show $n.err; fail "$n did not start"; }
done

# 1. everyone finds everyone
for n in a b c; do
    for m in a b c; do
        [ "$n" = "$m" ] && continue
        wait_for "$TMP/$n.err" "peer up: (in|out) key=${KEY[$m]}" 60 ||
            { show $n.err $m.err; fail "$n did not connect to $m"; }
    done
done
grep -q 'running without mDNS' "$TMP"/[abc].err && fail "a node ran without mDNS"
echo "ok 1: the three nodes found each other by mDNS and connected"

# 2. avahi-browse in B lists the three
# (a loaded machine may not have resolved all three when -t stops: ask again, a few times)
browse_lists() {
    local i n
    for i in 1 2 3; do
        n=$(printf 'abc' | cut -c$i)
        grep -E "^=;veth0;IPv4;meshara-[0-9a-f]{16};_meshara._tcp;local;[^;]*;10\.78\.0\.$i;7000;.*\"pk=${KEY[$n]}\"" \
            "$TMP/browse.out" >/dev/null || return 1
    done
}
for try in 1 2 3 4 5; do
    in_ns b timeout 10 avahi-browse -rtp _meshara._tcp >"$TMP/browse.out" 2>&1
    browse_lists && break
    sleep 1
done
browse_lists || { show browse.out; fail "avahi-browse in B does not list all three"; }
echo "ok 2: avahi-browse -rtp _meshara._tcp in B lists the three, each with its key"

# 3. messages by key, from a short-lived node in A that joins by mDNS only
for to in c b; do
    out=$(in_ns a timeout 40 "$NODE" send --key "$TMP/s.key" --mdns --to "${KEY[$to]}" \
        --message "hello-$to-$ID" --timeout 30000 2>>"$TMP/send.err") ||
        { show send.err; fail "send to $to failed"; }
    [ "$out" = "delivered to ${KEY[$to]}" ] || { show send.err; fail "send to $to printed '$out'"; }
    wait_for "$TMP/$to.err" "message from ${KEY[s]}: len=[0-9]+ text=\"hello-$to-$ID\"" 20 ||
        { show $to.err; fail "$to did not log the message"; }
done
echo "ok 3: send --mdns in A delivered to C and to B by key; both logged it"
echo "PASS test_node_mdns"
