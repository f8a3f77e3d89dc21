#!/usr/bin/env bash
# tests/netns/test_nat_stun.sh — the core's STUN client (stun_probe, over the real driver) behind
# a real MASQUERADE router, against coturn with two addresses (RFC 5780), and the core's own
# responder checked against coturn's client and our client.
#
#   ns a 10.0.1.2              ns ra                                 ns inet      ns pub
#   stun_probe  --- lan0 10.0.1.1 | wan0 11.250.42.1 --- pra -+                11.250.42.100
#                   MASQUERADE -o wan0 [--random-fully]        br0 -- ppub    + 11.250.42.101
#                                                              |              turnserver --stun-only
#   (ns b, rb: unused here)                                    |              :3478 (alt :3479)
#                                                                             stun_probe --serve
#                                                                             :3480 (alt .101:3481)
# Checks:
#  1. UDP Binding from a: the mapped address is router A's WAN address; coturn names its other
#     address (11.250.42.101:3479) in OTHER-ADDRESS.
#  2. The same over TCP (a new connection): router A's WAN address; from a chosen local port
#     (the env's connect_from), MASQUERADE keeps the port.
#  2c. meshara-node run --stun in a (listening on 0.0.0.0:7000): it logs the mapped address,
#     router A's WAN address with its listening port (the Binding leaves from that port).
#  3. RFC 5780 discovery from a fixed local port: MASQUERADE keeps the port, and is
#     endpoint-independent mapping with address-and-port-dependent filtering.
#  4. The core's responder in pub (stun_probe --serve, two addresses): our discovery against
#     it says the same as against coturn; coturn's turnutils_stunclient against it reports
#     router A's WAN address.
#  5. With --random-fully on the router: address-and-port-dependent mapping, against both.
# Root only (skips with the reason otherwise). Unique names per run (nattb_lib.sh); the trap
# kills only what this script started and checks `ip netns list` is clean.
set -u
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

BIN=${MESH_BIN_DIR:-$(dirname "$0")/../../build/bin}
PROBE=$BIN/stun_probe
NODE=$BIN/meshara-node
[ -x "$PROBE" ] || skip "$PROBE not built"
[ -x "$NODE" ] || skip "$NODE not built"
# shellcheck source=tests/netns/nattb_lib.sh
source "$(dirname "$0")/nattb_lib.sh"
nattb_init turnserver turnutils_stunclient
T=$NATTB_TMP
# Discovery's filtering tests end by timing out: RTO 200 ms, 3 requests, Rm 4 (1.4 s each).
FAST=(--rto 200 --rc 3 --rm 4)

# turn_start: coturn as a STUN-only server on both public addresses (two listening IPs switch
# RFC 5780 on: alternate port 3479); config, database, log and pid file in the run's directory.
turn_start() {
    local d=$T/turn
    mkdir -p "$d"
    cat >"$d/turnserver.conf" <<EOF
listening-ip=$PUB_IP1
listening-ip=$PUB_IP2
listening-port=3478
stun-only
fingerprint
no-tls
no-dtls
no-cli
userdb=$d/turndb
pidfile=$d/turnserver.pid
log-file=$d/turnserver.log
simple-log
EOF
    nattb_bg pub "$d/stdout.log" turnserver -c "$d/turnserver.conf"
    nattb_wait_listen pub u 3478 10 && nattb_wait_listen pub t 3478 10 ||
        { nattb_show "$d/stdout.log" "$d/turnserver.log"; fail "turnserver did not start"; }
}

# probe NAME OUT ARGS...: stun_probe in namespace a; output in $T/OUT; fails the test on a
# non-zero exit.
probe() {
    local out=$T/$1
    shift
    nx a "$PROBE" --timeout 30 "$@" >"$out" 2>&1 || { nattb_show "$out"; fail "stun_probe $*"; }
}

# field FILE KEY: the value of "KEY value" in FILE.
field() { sed -n "s/^$2 //p" "$T/$1" | head -1; }

nattb_topology
turn_start
echo "testbed up; coturn on $PUB_IP1:3478 and $PUB_IP2:3479"

# 1. UDP
probe udp.out "$PUB_IP1:3478"
mapped=$(field udp.out MAPPED)
case $mapped in "$RA_WAN":*) ;; *) nattb_show "$T/udp.out"; fail "UDP mapped address $mapped is not router A's WAN address" ;; esac
[ "$(field udp.out OTHER)" = "$PUB_IP2:3479" ] || fail "coturn's OTHER-ADDRESS is $(field udp.out OTHER)"
echo "ok 1: UDP Binding: mapped $mapped = router A's WAN address, OTHER-ADDRESS $PUB_IP2:3479, $(field udp.out RTT_MS) ms"

# 2. TCP
probe tcp.out --tcp "$PUB_IP1:3478"
mapped=$(field tcp.out MAPPED)
case $mapped in "$RA_WAN":*) ;; *) nattb_show "$T/tcp.out"; fail "TCP mapped address $mapped is not router A's WAN address" ;; esac
echo "ok 2: TCP Binding: mapped $mapped (local $(field tcp.out LOCAL)), $(field tcp.out RTT_MS) ms"
# ... from a chosen local port (the env's connect_from: SO_REUSEADDR + SO_REUSEPORT, bound first)
rc=0
nx a "$PROBE" --timeout 30 --tcp --local "$A_IP:40126" "$PUB_IP1:3478" >"$T/tcp2.out" 2>&1 || rc=$?
[ "$rc" = 0 ] && [ "$(field tcp2.out MAPPED)" = "$RA_WAN:40126" ] ||
    { nattb_show "$T/tcp2.out"; fail "TCP from local port 40126 (exit $rc): not mapped to $RA_WAN:40126"; }
echo "ok 2b: TCP Binding from local port 40126: MASQUERADE keeps it ($RA_WAN:40126)"

# 2c. meshara-node --stun: the node's own Binding, from its listening port
"$NODE" keygen --key "$T/n.key" >/dev/null 2>"$T/keygen.err" || { nattb_show "$T/keygen.err"; fail "keygen"; }
nattb_bg a "$T/n.log" "$NODE" run --key "$T/n.key" --listen 0.0.0.0:7000 --stun "$PUB_IP1:3478" \
    --no-port-mapping --log-level info
NODE_PID=$NATTB_LAST
nattb_wait_for "$T/n.log" "node: stun $PUB_IP1:3478: mapped " 15 ||
    { nattb_show "$T/n.log"; fail "meshara-node --stun logged no mapped address"; }
mapped=$(sed -n "s/.*node: stun $PUB_IP1:3478: mapped \([0-9.:]*\).*/\1/p" "$T/n.log" | head -1)
[ "$mapped" = "$RA_WAN:7000" ] ||
    { nattb_show "$T/n.log"; fail "meshara-node --stun: mapped $mapped, not router A's WAN address $RA_WAN:7000"; }
kill -TERM "$NODE_PID"
wait "$NODE_PID" 2>/dev/null
echo "ok 2c: meshara-node --stun: mapped $mapped = router A's WAN address and the node's listening port"

# 3. discovery against coturn, plain MASQUERADE
probe disc.out --discover --local "$A_IP:40123" "${FAST[@]}" "$PUB_IP1:3478"
[ "$(field disc.out MAPPED)" = "$RA_WAN:40123" ] ||
    { nattb_show "$T/disc.out"; fail "MASQUERADE did not keep port 40123"; }
[ "$(field disc.out MAPPING)" = endpoint-independent ] &&
    [ "$(field disc.out FILTERING)" = address-and-port-dependent ] ||
    { nattb_show "$T/disc.out"; fail "discovery against coturn on plain MASQUERADE"; }
echo "ok 3: coturn: MASQUERADE keeps port 40123; endpoint-independent mapping, address-and-port-dependent filtering ($(field disc.out TRANSACTIONS) transactions, $(field disc.out TOOK_MS) ms)"

# 4. our responder in pub, against our client and coturn's
nattb_bg pub "$T/serve.out" "$PROBE" --serve "$PUB_IP1:3480" --alternate "$PUB_IP2:3481"
SERVE_PID=$NATTB_LAST
nattb_wait_for "$T/serve.out" '^serving' 10 || { nattb_show "$T/serve.out"; fail "stun_probe --serve"; }
probe disc2.out --discover --local "$A_IP:40124" "${FAST[@]}" "$PUB_IP1:3480"
[ "$(field disc2.out OTHER)" = "$PUB_IP2:3481" ] &&
    [ "$(field disc2.out MAPPING)" = endpoint-independent ] &&
    [ "$(field disc2.out FILTERING)" = address-and-port-dependent ] ||
    { nattb_show "$T/disc2.out"; fail "discovery against our responder on plain MASQUERADE"; }
# turnutils_stunclient goes on to a CHANGE-REQUEST test whose answer the NAT filters, and
# waits for it without a timeout: bound it, read its first answer.
nx a timeout 3 turnutils_stunclient -p 3480 "$PUB_IP1" >"$T/sc.out" 2>&1
grep -q "UDP reflexive addr: $RA_WAN:" "$T/sc.out" ||
    { nattb_show "$T/sc.out" "$T/serve.out"; fail "turnutils_stunclient against our responder"; }
grep -q "Other addr: : $PUB_IP2:3481" "$T/sc.out" || fail "no OTHER-ADDRESS seen by turnutils_stunclient"
echo "ok 4: our responder: same behaviour found; turnutils_stunclient reads router A's WAN address and OTHER-ADDRESS from it"

# 5. --random-fully: a symmetric NAT, by both servers
nattb_masq ra --random-fully
probe disc3.out --discover "${FAST[@]}" "$PUB_IP1:3478"
[ "$(field disc3.out MAPPING)" = address-and-port-dependent ] ||
    { nattb_show "$T/disc3.out"; fail "coturn: --random-fully is not address-and-port-dependent mapping"; }
probe disc4.out --discover "${FAST[@]}" "$PUB_IP1:3480"
[ "$(field disc4.out MAPPING)" = address-and-port-dependent ] ||
    { nattb_show "$T/disc4.out"; fail "our responder: --random-fully is not address-and-port-dependent mapping"; }
echo "ok 5: MASQUERADE --random-fully: address-and-port-dependent mapping (coturn and ours)"

kill -TERM "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null
grep -q '^ANSWERED' "$T/serve.out" || { nattb_show "$T/serve.out"; fail "our responder did not stop cleanly"; }
echo "PASS test_nat_stun ($NATTB_ID): $(grep '^ANSWERED' "$T/serve.out")"
