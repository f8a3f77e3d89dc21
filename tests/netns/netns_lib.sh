# netns_lib.sh — sourced by the netns tests: a bridge namespace, hosts on it, and a private
# D-Bus + avahi-daemon per host (design.md §5: what works on these machines). The caller
# defines skip and fail, and sets ID (unique per run, e.g. name$$), SUBNET (e.g. 10.77.0) and
# HOST_PREFIX (avahi host names: HOST_PREFIX + host name) first. The trap set here removes,
# on every exit path, only what this test started: its pids, whatever runs inside its own
# namespaces, the namespaces, and TMP.
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

# host_add NAME INDEX: namespace ${ID}NAME with veth0 = ${SUBNET}.INDEX on the bridge.
host_add() {
    local ns=$ID$1
    ip netns add "$ns" || fail "netns $ns"
    NSS+=("$ns")
    ip -n "$NS_SW" link add "p$1" type veth peer name veth0 netns "$ns" || fail "veth $1"
    ip -n "$NS_SW" link set "p$1" master br0 up
    ip -n "$ns" addr add "${SUBNET}.$2/24" dev veth0
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
host-name=${HOST_PREFIX}$1
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

# wait_for FILE ERE SECONDS: until grep -E finds ERE in FILE.
wait_for() {
    local i
    for i in $(seq $(($3 * 10))); do
        grep -Eq -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# show FILE...: the last lines of files in TMP, for a failure's context.
show() {
    local f
    for f in "$@"; do
        echo "--- $f"
        tail -n 60 "$TMP/$f" 2>/dev/null
    done
}
