# nattb_lib.sh — NAT testbed for the issue-10 netns tests, sourced by tests/netns/test_nat_*.sh:
# two home routers with MASQUERADE, a LAN host behind each, and a public host, all joined by an
# "internet" bridge that has no way out of the testbed.
#
#   ns a (LAN A)            ns ra (router A)                  ns inet         ns pub (public host)
#   eth0 10.0.1.2  ---  lan0 10.0.1.1 | wan0 11.250.42.1 --- pra -+          eth0 11.250.42.100
#   default via 10.0.1.1    MASQUERADE -o wan0                     br0 -- ppub    + 11.250.42.101
#                           (nattb_miniupnpd_start: UPnP IGD, NAT-PMP)
#   ns b (LAN B)            ns rb (router B)                        |
#   eth0 10.0.2.2  ---  lan0 10.0.2.1 | wan0 11.250.42.2 --- prb -+
#
# Why 11.250.42.0/24 on the "internet": miniupnpd 2.3.1 serves no mapping while its external
# address is in any IANA special-purpose block (RFC 1918, 100.64/10, the TEST-NETs, 198.18/15,
# 240/4 ...: its addr_is_reserved() covers the whole registry), so the WAN side must look
# public. It is safe because it exists only inside namespaces this file creates: every veth is
# made inside a namespace (no name touches the root namespace), the routers, the bridge and the
# public host have no default route (nattb_isolation_check proves `ip route get` to an outside
# address fails there), and the LAN hosts' default route ends at their router.
#
# Conventions (as tests/netns/netns_lib.sh): the caller defines skip and fail, may set
# NATTB_ID (default: "ntb" + 6 random hex digits), sources this file and calls nattb_init
# (root and tools checked, skip otherwise; the traps set). The EXIT trap kills the processes
# this script started (if still its children), whatever runs inside its namespaces, deletes
# the namespaces and NATTB_TMP (NATTB_KEEP=1 keeps it), and fails the run if a namespace of the
# run is left in `ip netns list`. Every name carries NATTB_ID, so runs can overlap.
#
# Functions: nattb_init [TOOL...], nattb_topology, nx NAME CMD (ip netns exec), nattb_bg NAME
# LOG CMD, nattb_masq ROUTER [--random-fully], nattb_miniupnpd_start|stop|flush ROUTER,
# nattb_wait_listen, nattb_wait_for, nattb_wait_gone, nattb_sleep, nattb_show.
# Each `ip netns exec` costs ~0.1-0.25 s on a shared machine: `ip -n NS ...` where it does.

NATTB_ID=${NATTB_ID:-ntb$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')}
# shellcheck disable=SC2034  # addresses for the sourcing scripts
{
    NATTB_WAN=11.250.42
    RA_WAN=$NATTB_WAN.1
    RB_WAN=$NATTB_WAN.2
    PUB_IP1=$NATTB_WAN.100
    PUB_IP2=$NATTB_WAN.101
    A_IP=10.0.1.2
    B_IP=10.0.2.2
    RA_LAN=10.0.1.1
    RB_LAN=10.0.2.1
}
NATTB_NSS=()
NATTB_PIDS=()
NATTB_TMP=

# nattb_ns NAME: the namespace's full name for this run.
nattb_ns() { echo "$NATTB_ID-$1"; }

# nx NAME CMD...: run CMD in namespace NAME (ip netns exec; CMD keeps the caller's mounts).
nx() {
    local ns
    ns=$(nattb_ns "$1")
    shift
    ip netns exec "$ns" "$@"
}

# nattb_bg NAME LOG CMD...: start CMD in namespace NAME in the background, stdout+stderr to
# LOG; its pid (ip netns exec execs CMD, so it is CMD's own) goes to NATTB_PIDS and NATTB_LAST.
nattb_bg() {
    local name=$1 log=$2
    shift 2
    ip netns exec "$(nattb_ns "$name")" "$@" >"$log" 2>&1 &
    NATTB_LAST=$!
    NATTB_PIDS+=("$NATTB_LAST")
}

nattb_cleanup() {
    local rc=$? pid ns left
    # Only pids that are still this shell's children (a reaped pid could have been reused).
    for pid in "${NATTB_PIDS[@]}"; do
        [ "$(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ')" = "$$" ] && kill "$pid" 2>/dev/null
    done
    for ns in "${NATTB_NSS[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill "$pid" 2>/dev/null
        done
    done
    sleep 0.2
    for ns in "${NATTB_NSS[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -9 "$pid" 2>/dev/null
        done
        ip netns del "$ns" 2>/dev/null
    done
    [ -n "$NATTB_TMP" ] && [ -z "${NATTB_KEEP:-}" ] && rm -rf "$NATTB_TMP"
    left=$(ip netns list | grep -c "^$NATTB_ID-")
    if [ "$left" != 0 ]; then
        echo "FAIL: $left namespace(s) of $NATTB_ID left after cleanup" >&2
        exit 1
    fi
    exit "$rc"
}

# nattb_init [TOOL...]: root, the tools (ip, iptables, timeout, ss and the caller's), the
# run's temporary directory, the traps.
nattb_init() {
    [ "$(id -u)" = 0 ] || skip "needs root (network namespaces, iptables)"
    local c
    for c in ip iptables timeout ss "$@"; do
        command -v "$c" >/dev/null 2>&1 || skip "$c not installed (ci/setup installs it)"
    done
    NATTB_TMP=$(mktemp -d "/tmp/$NATTB_ID.XXXXXX")
    trap nattb_cleanup EXIT
    trap 'exit 1' INT TERM HUP
}

nattb_ns_add() {
    local ns
    ns=$(nattb_ns "$1")
    ip netns add "$ns" || skip "cannot create network namespaces here"
    NATTB_NSS+=("$ns")
    ip -n "$ns" link set lo up
}

# nattb_link NAME IF BRPORT: veth IF in namespace NAME, its peer BRPORT on inet's br0.
nattb_link() {
    ip -n "$(nattb_ns "$1")" link add "$2" type veth peer name "$3" netns "$(nattb_ns inet)" ||
        fail "veth $1/$2"
    ip -n "$(nattb_ns inet)" link set "$3" master br0 up || fail "bridge port $3"
    ip -n "$(nattb_ns "$1")" link set "$2" up
}

# nattb_router NAME WANIP LANNET: router namespace NAME plus its LAN host namespace (router
# name without the leading r), forwarding on, MASQUERADE on wan0 (nattb_masq to change it).
nattb_router() {
    local r=$1 wan=$2 net=$3 h=${1#r}
    nattb_ns_add "$r"
    nattb_ns_add "$h"
    nattb_link "$r" wan0 "p$r"
    ip -n "$(nattb_ns "$r")" addr add "$wan/24" dev wan0
    ip -n "$(nattb_ns "$r")" link add lan0 type veth peer name eth0 netns "$(nattb_ns "$h")" ||
        fail "veth $r/$h"
    ip -n "$(nattb_ns "$r")" addr add "$net.1/24" dev lan0
    ip -n "$(nattb_ns "$r")" link set lan0 up
    ip -n "$(nattb_ns "$h")" addr add "$net.2/24" dev eth0
    ip -n "$(nattb_ns "$h")" link set eth0 up
    ip -n "$(nattb_ns "$h")" route add default via "$net.1"
    nx "$r" sysctl -qw net.ipv4.ip_forward=1 || fail "ip_forward in $r"
    nattb_masq "$r"
}

# nattb_masq ROUTER [--random-fully]: (re)installs the router's only NAT rule and flushes its
# conntrack table, so that a change of rule applies to the next connection.
nattb_masq() {
    local r=$1
    shift
    nx "$r" iptables -t nat -F POSTROUTING
    nx "$r" iptables -t nat -A POSTROUTING -o wan0 -j MASQUERADE "$@" || fail "MASQUERADE $* in $r"
    if command -v conntrack >/dev/null 2>&1; then
        nx "$r" conntrack -F >/dev/null 2>&1
    fi
}

# nattb_refused NAME IP PORT: a TCP connect from NAME to IP:PORT is refused (RST): the path
# works and nothing listens there. (No ping here: iputils-ping is not in ci/setup.)
nattb_refused() {
    nx "$1" timeout 2 bash -c "exec 3<>/dev/tcp/$2/$3" 2>&1 | grep -q 'Connection refused'
}

# nattb_topology: the whole picture at the head of this file.
nattb_topology() {
    nattb_ns_add inet
    ip -n "$(nattb_ns inet)" link add br0 type bridge || fail "bridge"
    ip -n "$(nattb_ns inet)" link set br0 up
    nattb_ns_add pub
    nattb_link pub eth0 ppub
    ip -n "$(nattb_ns pub)" addr add "$PUB_IP1/24" dev eth0
    ip -n "$(nattb_ns pub)" addr add "$PUB_IP2/24" dev eth0
    nattb_router ra "$RA_WAN" 10.0.1
    nattb_router rb "$RB_WAN" 10.0.2
    nattb_isolation_check
    local i
    for i in $(seq 30); do
        nattb_refused a "$PUB_IP1" 9 && nattb_refused b "$PUB_IP1" 9 && return 0
        sleep 0.1
    done
    fail "LAN hosts cannot reach the public host through their routers"
}

# nattb_isolation_check: no namespace of the testbed has a route out of 11.250.42.0/24 and
# the two LANs (1.1.1.1 stands for "anything outside"; nothing is sent).
nattb_isolation_check() {
    local n
    for n in inet pub ra rb; do
        if ip -n "$(nattb_ns "$n")" route get 1.1.1.1 >/dev/null 2>&1; then
            fail "namespace $n has a route out of the testbed"
        fi
    done
    for n in a b; do
        ip -n "$(nattb_ns "$n")" route get 1.1.1.1 | grep -q ' via 10\.0\.[12]\.1 dev eth0' ||
            fail "LAN host $n routes outside its router"
    done
    # No interface of ours in the root namespace: every veth was created inside a namespace.
    ip -o link show | grep -q "$NATTB_ID" && fail "an interface of $NATTB_ID is in the root namespace"
    return 0
}

# nattb_sleep SECS: sleep in the background and wait for it, so that a TERM or INT sent to
# the script runs its trap at once (bash runs traps only after a foreground child exits).
nattb_sleep() {
    sleep "$1" &
    wait $!
}

# nattb_wait_listen NAME PROTO PORT SECS: until a socket listens on PORT (PROTO t or u) in NAME.
nattb_wait_listen() {
    local i
    for i in $(seq $(($4 * 10))); do
        nx "$1" ss -Hln"$2" "sport = :$3" 2>/dev/null | grep -q . && return 0
        sleep 0.1
    done
    return 1
}

# nattb_wait_for FILE ERE SECS: until grep -E finds ERE in FILE.
nattb_wait_for() {
    local i
    for i in $(seq $(($3 * 10))); do
        grep -Eq -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# nattb_wait_gone PID SECS: until process PID (a child of this shell) has exited; reaps it
# and sets NATTB_RC to its exit code. 1 if it is still running.
nattb_wait_gone() {
    local i st
    for i in $(seq $(($2 * 10))); do
        st=$(ps -o stat= -p "$1" 2>/dev/null)
        if [ -z "$st" ] || [ "${st#Z}" != "$st" ]; then
            wait "$1" 2>/dev/null
            NATTB_RC=$?
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# nattb_show FILE...: the last lines of files, for a failure's context.
nattb_show() {
    local f
    for f in "$@"; do
        echo "--- $f"
        tail -n 40 "$f" 2>/dev/null
    done
}

# --- miniupnpd (Debian 12: miniupnpd-nftables 2.3.1) -------------------------------------
# nattb_miniupnpd_start ROUTER: its own nft tables in the router's namespace, a config and a
# lease file in NATTB_TMP/miniupnpd-ROUTER/, miniupnpd -d (foreground) in the background.
# NATTB_UPNP / NATTB_NATPMP (yes|no, default yes) switch the two services;
# NATTB_MINIUPNPD_RULES: permission lines put before the default ones (first match wins).
nattb_miniupnpd_start() {
    local r=$1 d=$NATTB_TMP/miniupnpd-$1 upnp=${NATTB_UPNP:-yes} natpmp=${NATTB_NATPMP:-yes}
    mkdir -p "$d"
    # What Debian's nft_init.sh would make (that script cannot run: it sources the iptables
    # miniupnpd_functions.sh, which defines neither NFT nor TABLE, and it writes a fixed
    # /tmp/miniupnpd.nft), with the forward policy accept instead of drop so that the LAN keeps
    # its ordinary MASQUERADEd way out. These are 2.3.1's default chain names.
    cat >"$d/tables.nft" <<'EOF'
table inet filter {
    chain forward {
        type filter hook forward priority 0; policy accept;
        jump miniupnpd
    }
    chain miniupnpd {
    }
    chain prerouting {
        type nat hook prerouting priority -100; policy accept;
        jump prerouting_miniupnpd
    }
    chain postrouting {
        type nat hook postrouting priority 100; policy accept;
        jump postrouting_miniupnpd
    }
    chain prerouting_miniupnpd {
    }
    chain postrouting_miniupnpd {
    }
}
EOF
    # Once per namespace: a second `nft -f` would add a second jump to each base chain.
    if ! nx "$r" nft list table inet filter >/dev/null 2>&1; then
        nx "$r" nft -f "$d/tables.nft" || fail "nft tables for miniupnpd in $r"
    fi
    cat >"$d/miniupnpd.conf" <<EOF
ext_ifname=wan0
listening_ip=lan0
http_port=5000
enable_natpmp=$natpmp
enable_upnp=$upnp
secure_mode=yes
system_uptime=no
notify_interval=60
clean_ruleset_interval=600
lease_file=$d/upnp.leases
uuid=$(cat /proc/sys/kernel/random/uuid)
${NATTB_MINIUPNPD_RULES:-}
allow 1024-65535 10.0.0.0/8 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
EOF
    nattb_bg "$r" "$d/miniupnpd.log" miniupnpd -d -f "$d/miniupnpd.conf" -P "$d/miniupnpd.pid"
    eval "NATTB_MINIUPNPD_$r=$NATTB_LAST"
    if [ "$upnp" = yes ]; then
        nattb_wait_listen "$r" t 5000 10 || { nattb_show "$d/miniupnpd.log"; fail "miniupnpd in $r"; }
    fi
    if [ "$natpmp" = yes ]; then
        nattb_wait_listen "$r" u 5351 10 || { nattb_show "$d/miniupnpd.log"; fail "NAT-PMP in $r"; }
    fi
}

# nattb_miniupnpd_stop ROUTER: SIGTERM until it exits. miniupnpd 2.3.1 sometimes sleeps on in
# its select() after a SIGTERM (seen: up to 34 s, until the select timeout: the signal landed
# outside the select), so the signal is repeated every 0.5 s; a second one interrupts the
# select. On exit it only removes its pid file: its mappings stay in the nft chains (still
# forwarding) and in the lease file (nattb_miniupnpd_flush removes them).
nattb_miniupnpd_stop() {
    local v=NATTB_MINIUPNPD_$1 i st
    local pid=${!v}
    for i in $(seq 100); do
        st=$(ps -o stat= -p "$pid")
        if [ -z "$st" ] || [ "${st#Z}" != "$st" ]; then
            wait "$pid" 2>/dev/null
            return 0
        fi
        [ $((i % 5)) = 1 ] && kill -TERM "$pid" 2>/dev/null
        sleep 0.1
    done
    echo "miniupnpd in $1 (pid $pid) still running 10 s after SIGTERM" >&2
    return 1
}

# nattb_miniupnpd_flush ROUTER: what Debian's stop script does after the daemon exits: empty
# the three miniupnpd chains, and drop the lease file so that a restart does not bring the
# mappings back.
nattb_miniupnpd_flush() {
    local c
    for c in miniupnpd prerouting_miniupnpd postrouting_miniupnpd; do
        nx "$1" nft flush chain inet filter "$c" || return 1
    done
    rm -f "$NATTB_TMP/miniupnpd-$1/upnp.leases"
}
