#!/usr/bin/env bash
# tests/netns/test_nat_punch.sh — TCP hole punching through two real Linux NATs: two nodes
# behind two MASQUERADE routers, each reserved on a public relay, reach each other through a
# circuit and then move to a punched direct session; with MASQUERADE --random-fully on both
# routers (a port per destination: the listening port's mapping no longer fits) they stay
# relayed, the failure named.
#
#   ns a 10.0.1.2 (sender S)  --- router ra (MASQUERADE) --+
#                                                        br0 --  ns pub 11.250.42.100: relay R
#   ns b 10.0.2.2 (node B)    --- router rb (MASQUERADE) --+       (--relay-service)
#
# B runs with --relay R and reserves (nothing reaches it directly). S (send --relay R
# --linger) looks B up through R, reaches it through a circuit ("path=relayed"), then punches:
# both sides connect from their listening ports at once (TCP simultaneous open through both
# routers' conntrack) and the punched session replaces the relayed one. Checks:
#  1. plain MASQUERADE (and a home router's firewall: unsolicited WAN traffic dropped): S
#     delivers through the relay ("peer up: out key=B path=relayed"), then both log the
#     punched session up ("punched session to/from ... up").
#  2. --random-fully on both: S delivers through the relay, no punched session, the punch's
#     failure logged with its name (MESH_ERR_TIMEOUT), and B still serves.
# Root only (skips otherwise). Names unique per run (nattb_lib.sh); the trap kills only what
# this script started.
set -u
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

BIN=${MESH_BIN_DIR:-$(dirname "$0")/../../build/bin}
NODE=$BIN/meshara-node
[ -x "$NODE" ] || skip "$NODE not built"
# shellcheck source=tests/netns/nattb_lib.sh
source "$(dirname "$0")/nattb_lib.sh"
nattb_init
T=$NATTB_TMP
COMMON=(--no-port-mapping --log-level info)

key() { # key NAME: a key file in the run's directory; prints the public key
    "$NODE" keygen --key "$T/$1.key" >"$T/$1.pub" 2>"$T/$1.keygen.err" || fail "keygen $1"
    cat "$T/$1.pub"
}

nattb_topology
RK=$(key r)
BK=$(key b)
key s1 >/dev/null
key s2 >/dev/null
RELAY="$PUB_IP1:7000#$RK"
nattb_bg pub "$T/r.log" "$NODE" run --key "$T/r.key" --listen "$PUB_IP1:7000" --relay-service \
    "${COMMON[@]}"
nattb_wait_for "$T/r.log" 'listening on' 10 || { nattb_show "$T/r.log"; fail "R did not start"; }

# b_start: B behind router B, reserved on R.
b_start() {
    nattb_bg b "$T/b$1.log" "$NODE" run --key "$T/b.key" --listen "$B_IP:7000" \
        --bootstrap "$RELAY" --relay "$RELAY" "${COMMON[@]}"
    B_PID=$NATTB_LAST
    nattb_wait_for "$T/b$1.log" 'node: relay .*: reserved for' 30 ||
        { nattb_show "$T/b$1.log" "$T/r.log"; fail "B did not reserve on R"; }
}

# send_to_b N: S in LAN A sends to B's key, stays 20 s after delivery (the punch's time).
send_to_b() {
    nx a timeout 60 "$NODE" send --key "$T/s$1.key" --listen "$A_IP:7001" --to "$BK" \
        --bootstrap "$RELAY" --relay "$RELAY" --message "hello B $1" --timeout 30000 \
        --linger 20000 --log-level info >"$T/s$1.out" 2>"$T/s$1.log" ||
        { nattb_show "$T/s$1.out" "$T/s$1.log" "$T/b$1.log"; fail "send $1 from a to B"; }
    grep -q "delivered to $BK" "$T/s$1.out" || fail "send $1: no delivery report"
}

# firewall ROUTER: what a home router does with unsolicited traffic from its WAN: drop it
# (Linux would answer a SYN to a port nothing listens on with a RST, which kills the punch's
# SYN that arrives before its twin has left: a router's firewall drops it instead).
firewall() {
    nx "$1" iptables -A INPUT -i wan0 -m conntrack --ctstate NEW -j DROP || fail "firewall $1"
    nx "$1" iptables -A FORWARD -i wan0 -m conntrack --ctstate NEW -j DROP || fail "firewall $1"
}
firewall ra
firewall rb

# 1. plain MASQUERADE on both routers
b_start 1
send_to_b 1
grep -q "peer up: out key=$BK path=relayed" "$T/s1.log" ||
    { nattb_show "$T/s1.log"; fail "S did not reach B through the relay first"; }
grep -q 'node: punched session to .* up' "$T/s1.log" ||
    { nattb_show "$T/s1.log" "$T/b1.log"; fail "S's session to B did not turn punched"; }
grep -q 'node: punched session from .* up' "$T/b1.log" ||
    { nattb_show "$T/b1.log"; fail "B logged no punched session"; }
grep -q 'message from .*text="hello B 1"' "$T/b1.log" || fail "B did not log message 1"
echo "ok 1: plain MASQUERADE: relayed, then $(grep -o 'punched session to .*' "$T/s1.log" | head -1)"

# 2. --random-fully on both routers: the listening port's mapping is not the punch's
kill "$B_PID" && nattb_wait_gone "$B_PID" 10 || fail "B did not stop"
nattb_masq ra --random-fully
nattb_masq rb --random-fully
b_start 2
send_to_b 2
grep -q "peer up: out key=$BK path=relayed" "$T/s2.log" ||
    { nattb_show "$T/s2.log"; fail "S did not reach B through the relay (random-fully)"; }
grep -q 'punched session .* up' "$T/s2.log" "$T/b2.log" &&
    { nattb_show "$T/s2.log" "$T/b2.log"; fail "a punched session through --random-fully NATs"; }
grep -Eq 'punch.*MESH_ERR_[A-Z_]+' "$T/s2.log" "$T/b2.log" ||
    { nattb_show "$T/s2.log" "$T/b2.log"; fail "the punch's failure was not named"; }
grep -q 'message from .*text="hello B 2"' "$T/b2.log" || fail "B did not log message 2"
echo "ok 2: --random-fully: stays relayed, $(grep -ho 'punch[^"]*MESH_ERR_[A-Z_]*' "$T/s2.log" "$T/b2.log" | head -1)"
echo "PASS test_nat_punch ($NATTB_ID)"
