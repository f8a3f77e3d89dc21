#!/usr/bin/env bash
# tests/netns/test_nat_portmap.sh — meshara-node maps its listening port on a real home router
# (miniupnpd 2.3.1 in a namespace: UPnP IGD on one router, NAT-PMP on the other), is reached
# through the mapping from the "internet", removes it on SIGTERM, and keeps serving when the
# router refuses.
#
#   ns a 10.0.1.2                ns ra: MASQUERADE + miniupnpd         ns inet      ns pub
#   meshara-node run  --- lan0 10.0.1.1 | wan0 11.250.42.1 ----- pra -+            11.250.42.100
#   (upnpc -l)              1: UPnP IGD only (enable_natpmp=no)       br0 -- ppub  meshara-node
#                           3: UPnP only, "deny 7000 ..." first       |            send --ping
#   ns b 10.0.2.2                ns rb: MASQUERADE + miniupnpd        |            to the WAN
#   meshara-node run  --- lan0 10.0.2.1 | wan0 11.250.42.2 ----- prb -+            address
#   (natpmpc)               2: NAT-PMP only (enable_upnp=no)
#
# Checks:
#  1. UPnP (SSDP discovery; NAT-PMP is tried first and refused by port unreachable): a's node
#     logs "mapped to 11.250.42.1:7000 by UPnP"; `upnpc -l` in a lists 7000->10.0.1.2:7000
#     'meshara'; a ping from pub to 11.250.42.1:7000 (meshara-node send --ping, key pinned)
#     reaches a's node; after SIGTERM the node exits 0, logs "unmapped by UPnP", upnpc -l no
#     longer lists it, the DNAT rule is gone from the router and the port is refused.
#  2. The same through NAT-PMP on rb: "by NAT-PMP"; natpmpc in b reports the same public
#     address; the router's nft chain holds the DNAT to 10.0.2.2:7000 until SIGTERM.
#  3. A router that refuses (miniupnpd "deny 7000 ..."): the node logs "no mapping:
#     MESH_ERR_REFUSED" naming UPnP's 606 (and NAT-PMP's absence), keeps running and answers
#     a ping from the LAN side; nothing is mapped.
# Root only (skips with the reason otherwise). Unique names per run (nattb_lib.sh); the trap
# kills only what this script started and checks `ip netns list` is clean.
set -u
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

BIN=${MESH_BIN_DIR:-$(dirname "$0")/../../build/bin}
NODE=$BIN/meshara-node
[ -x "$NODE" ] || skip "$NODE not built"
# shellcheck source=tests/netns/nattb_lib.sh
source "$(dirname "$0")/nattb_lib.sh"
nattb_init miniupnpd upnpc natpmpc nft
T=$NATTB_TMP
PORT=7000

nattb_topology
for n in a b p; do
    "$NODE" keygen --key "$T/$n.key" >"$T/$n.pub" || fail "keygen $n"
done
KEY_A=$(cat "$T/a.pub")
KEY_B=$(cat "$T/b.pub")

# node_start NS NAME: meshara-node run on 0.0.0.0:PORT in namespace NS; pid in PID_<NAME>.
node_start() {
    nattb_bg "$1" "$T/$2.log" "$NODE" run --key "$T/$1.key" --listen "0.0.0.0:$PORT" --heartbeat 2000
    eval "PID_$2=$NATTB_LAST"
    nattb_wait_for "$T/$2.log" '^listening ' 10 || { nattb_show "$T/$2.log"; fail "$2 did not start"; }
}

# node_stop NAME: SIGTERM, the node must exit 0 within 10 s.
node_stop() {
    local v=PID_$1
    kill -TERM "${!v}" || fail "$1 is not running"
    nattb_wait_gone "${!v}" 10 || fail "$1 still running 10 s after SIGTERM"
    [ "$NATTB_RC" = 0 ] || { nattb_show "$T/$1.log"; fail "$1 exited $NATTB_RC after SIGTERM"; }
}

# ping_from NS ADDR KEY: meshara-node send --ping from NS to ADDR (key pinned); 0 on a pong.
ping_from() {
    nx "$1" timeout 20 "$NODE" send --key "$T/p.key" --to "$2#$3" --ping --timeout 8000 \
        >"$T/ping.out" 2>"$T/ping.err" && grep -q "^pong from $3 " "$T/ping.out"
}

upnp_listed() { nx a upnpc -u "http://$RA_LAN:5000/rootDesc.xml" -l 2>&1 | grep -Eq "^ *[0-9]+ TCP +$PORT->$A_IP:$PORT +'meshara'"; }
dnat_in() { nx "$1" nft list chain inet filter prerouting_miniupnpd | grep -q "dport $PORT dnat ip to $2:$PORT"; }

# ---- 1. UPnP IGD on ra --------------------------------------------------------------------
NATTB_NATPMP=no nattb_miniupnpd_start ra
node_start a A
nattb_wait_for "$T/A.log" "portmap: TCP $PORT mapped to $RA_WAN:$PORT by UPnP, lease 3600 s" 30 ||
    { nattb_show "$T/A.log" "$T/miniupnpd-ra/miniupnpd.log"; fail "a's node did not map its port by UPnP"; }
grep -q "node: port mapping: external $RA_WAN:$PORT" "$T/A.log" || fail "the node did not report the mapping"
grep -q 'NAT-PMP: MESH_ERR_UNSUPPORTED' "$T/A.log" && fail "NAT-PMP's refusal was logged as a failure although UPnP mapped"
upnp_listed || { nx a upnpc -u "http://$RA_LAN:5000/rootDesc.xml" -l; fail "upnpc -l does not list the mapping"; }
dnat_in ra "$A_IP" || fail "no DNAT rule for the mapping in ra"
ping_from pub "$RA_WAN:$PORT" "$KEY_A" || { nattb_show "$T/ping.err" "$T/A.log"; fail "no ping through the UPnP mapping"; }
nattb_wait_for "$T/A.log" "peer up: in key=$(cat "$T/p.pub")" 5 || fail "a's node did not see pub's session"
echo "ok 1a: UPnP: mapped $RA_WAN:$PORT, listed by upnpc -l, a ping from the internet reaches the node"
node_stop A
grep -q "portmap: TCP $PORT unmapped by UPnP" "$T/A.log" || { nattb_show "$T/A.log"; fail "no unmap on SIGTERM"; }
upnp_listed && fail "upnpc -l still lists the mapping after SIGTERM"
dnat_in ra "$A_IP" && fail "the DNAT rule is still in ra after SIGTERM"
nattb_refused pub "$RA_WAN" "$PORT" || fail "$RA_WAN:$PORT is not refused after SIGTERM"
echo "ok 1b: after SIGTERM the node exited 0, the mapping is gone (upnpc -l, nft) and the port refused"

# ---- 2. NAT-PMP on rb -----------------------------------------------------------------------
NATTB_UPNP=no nattb_miniupnpd_start rb
node_start b B
nattb_wait_for "$T/B.log" "portmap: TCP $PORT mapped to $RB_WAN:$PORT by NAT-PMP, lease 3600 s" 15 ||
    { nattb_show "$T/B.log" "$T/miniupnpd-rb/miniupnpd.log"; fail "b's node did not map its port by NAT-PMP"; }
nx b natpmpc -g "$RB_LAN" >"$T/natpmpc.out" 2>&1
grep -q "Public IP address : $RB_WAN" "$T/natpmpc.out" || { cat "$T/natpmpc.out"; fail "natpmpc: another public address"; }
dnat_in rb "$B_IP" || fail "no DNAT rule for the NAT-PMP mapping in rb"
ping_from pub "$RB_WAN:$PORT" "$KEY_B" || { nattb_show "$T/ping.err" "$T/B.log"; fail "no ping through the NAT-PMP mapping"; }
echo "ok 2a: NAT-PMP: mapped $RB_WAN:$PORT (natpmpc: the same public address), a ping from the internet reaches the node"
node_stop B
grep -q "portmap: TCP $PORT unmapped by NAT-PMP" "$T/B.log" || { nattb_show "$T/B.log"; fail "no NAT-PMP unmap on SIGTERM"; }
dnat_in rb "$B_IP" && fail "the NAT-PMP mapping is still in rb after SIGTERM"
nattb_refused pub "$RB_WAN" "$PORT" || fail "$RB_WAN:$PORT is not refused after SIGTERM"
echo "ok 2b: after SIGTERM the NAT-PMP mapping is gone and the port refused"

# ---- 3. a router that refuses ---------------------------------------------------------------
nattb_miniupnpd_stop ra || fail "miniupnpd in ra did not stop"
nattb_miniupnpd_flush ra || fail "flush ra"
# UPnP only: miniupnpd's NAT-PMP does not refuse a denied port, it hands out the next allowed
# one (7001), and with every external port denied for our internal port it tries all 65535 one
# by one (a debug line each), which outlasts the node's 2 s NAT-PMP bound. NAT-PMP's result
# codes are tests/real/test_portmap.c's part.
NATTB_NATPMP=no NATTB_MINIUPNPD_RULES="deny $PORT 0.0.0.0/0 0-65535" nattb_miniupnpd_start ra
node_start a A2
nattb_wait_for "$T/A2.log" "portmap: TCP $PORT: no mapping: MESH_ERR_REFUSED" 30 ||
    { nattb_show "$T/A2.log"; fail "no named refusal"; }
grep -q "NAT-PMP: MESH_ERR_UNSUPPORTED (the gateway does not speak NAT-PMP: port unreachable)" "$T/A2.log" ||
    fail "NAT-PMP's absence not named"
grep -q "UPnP: MESH_ERR_REFUSED (AddPortMapping: UPnP error 606" "$T/A2.log" || fail "UPnP's refusal not named"
grep -q "node: port mapping: none (MESH_ERR_REFUSED)" "$T/A2.log" || fail "the node did not report the refusal"
upnp_listed && fail "a refused mapping is listed"
ping_from ra "$A_IP:$PORT" "$KEY_A" || { nattb_show "$T/ping.err" "$T/A2.log"; fail "the refused node does not answer on its LAN"; }
kill -0 "$PID_A2" || fail "a's node died"
echo "ok 3: the router refused (UPnP 606; no NAT-PMP): named in the log, the node still serves"
node_stop A2
echo "PASS test_nat_portmap ($NATTB_ID)"
