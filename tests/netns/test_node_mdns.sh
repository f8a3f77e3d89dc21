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
NS_SW=${ID}sw
TMP=$(mktemp -d "/tmp/${ID}.XXXXXX")
NSS=()
STARTED=()

cleanup() {
    local pid ns
    for pid in "${STARTED[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for ns in "${NSS[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill "$pid" 2>/dev/null
        done
    done
    sleep 0.2
    for ns in "${NSS[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -9 "$pid" 2>/dev/null
        done
        ip netns del "$ns" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

ip netns add "$NS_SW" || skip "cannot create network namespaces here"
NSS+=("$NS_SW")
ip -n "$NS_SW" link add br0 type bridge || fail "bridge"
ip -n "$NS_SW" link set br0 up
# A mount point the private tmpfs can cover (avahi-daemon normally creates it at boot).
[ -d /run/avahi-daemon ] || mkdir -p /run/avahi-daemon

# host_add NAME INDEX: namespace ${ID}NAME with veth0 = 10.78.0.INDEX on the bridge.
host_add() {
    local ns=$ID$1
    ip netns add "$ns" || fail "netns $ns"
    NSS+=("$ns")
    ip -n "$NS_SW" link add "p$1" type veth peer name veth0 netns "$ns" || fail "veth $1"
    ip -n "$NS_SW" link set "p$1" master br0 up
    ip -n "$ns" addr add "10.78.0.$2/24" dev veth0
    ip -n "$ns" link set veth0 up
    ip -n "$ns" link set lo up
}

# daemons_start NAME: private /run/dbus and /run/avahi-daemon, a system bus and avahi-daemon
# in namespace ${ID}NAME; the mount namespace is held by a sleep whose pid is in holder.pid.
daemons_start() {
    local dir=$TMP/$1
    mkdir -p "$dir"
    cat >"$dir/avahi.conf" <<EOF
[server]
host-name=nmd$$-$1
use-ipv4=yes
use-ipv6=no
allow-interfaces=veth0
enable-dbus=yes
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
EOF
    ip netns exec "$ID$1" unshare -m --propagation private bash -c '
        mount -t tmpfs tmpfs /run/dbus && mount -t tmpfs tmpfs /run/avahi-daemon || exit 1
        dbus-daemon --system --fork --nopidfile || exit 1
        echo $$ >"$1/holder.pid"
        exec sleep 100000' _ "$dir" &
    STARTED+=($!)
    local i
    for i in $(seq 50); do
        [ -s "$dir/holder.pid" ] && break
        sleep 0.1
    done
    [ -s "$dir/holder.pid" ] || fail "namespace $1 did not come up"
    avahi_start "$1"
}

# in_ns NAME CMD...: run CMD in namespace NAME's network and mount namespaces.
in_ns() {
    local name=$1
    shift
    nsenter --net="/var/run/netns/$ID$name" --mount="/proc/$(cat "$TMP/$name/holder.pid")/ns/mnt" \
        env DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/dbus/system_bus_socket "$@"
}
# Same, replacing the calling (sub)shell, so a background job's $! is CMD's own pid.
in_ns_exec() {
    local name=$1
    shift
    exec nsenter --net="/var/run/netns/$ID$name" --mount="/proc/$(cat "$TMP/$name/holder.pid")/ns/mnt" \
        env DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/dbus/system_bus_socket "$@"
}

avahi_start() {
    in_ns "$1" avahi-daemon -D --no-drop-root --no-chroot -f "$TMP/$1/avahi.conf" ||
        fail "avahi-daemon in $1"
    local i
    for i in $(seq 50); do
        in_ns "$1" timeout 5 avahi-browse -tp _none._tcp >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail "avahi-daemon in $1 does not answer"
}

avahi_pid() {
    in_ns "$1" cat /run/avahi-daemon/pid
}


node_bg() { # node_bg NAME: meshara-node run --mdns in namespace NAME, logs in $TMP/NAME.*
    local name=$1 idx=$2
    (in_ns_exec "$name" "$NODE" run --key "$TMP/$name.key" --listen "10.78.0.$idx:7000" --mdns \
        --heartbeat 1000 >"$TMP/$name.out" 2>"$TMP/$name.err") &
    STARTED+=($!)
}
wait_for() {
    local i
    for i in $(seq $(($3 * 10))); do
        grep -Eq -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
show() {
    local f
    for f in "$@"; do
        echo "--- $f"
        tail -n 30 "$TMP/$f" 2>/dev/null
    done
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
