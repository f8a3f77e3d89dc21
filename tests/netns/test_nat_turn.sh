#!/usr/bin/env bash
# tests/netns/test_nat_turn.sh — TURN (RFC 8656 with TCP allocations, RFC 6062) against
# coturn with long-term credentials: a node whose router lets it reach nothing but the TURN
# server still joins a public node and exchanges messages with it, every byte through
# coturn; a wrong password gives MESH_ERR_AUTH and the node serves on.
#
#   ns a 10.0.1.2             ns ra                                   ns inet
#   meshara-node N  --- lan0 10.0.1.1 | wan0 11.250.42.1 --- pra -+
#   (--turn)            FORWARD: only TCP to coturn :3478 (control br0 -- ppub  ns pub 11.250.42.100
#                       and data connections) and its answers;      |           meshara-node P
#                       MASQUERADE --random-fully                   |           (and the senders)
#   ns b 10.0.2.2   --- router rb (plain MASQUERADE)           -----+-- psrv   ns srv 11.250.42.50
#   meshara-node W (wrong password)                                            turnserver :3478
#
# Checks:
#  1. a cannot reach P directly (the router drops it): the test is about TURN only.
#  2. N allocates on coturn (401, then credentials), advertises the relayed address, dials P
#     through coturn (CreatePermission, Connect, ConnectionBind): "session out ... path=turn";
#     P's side of that session is a TCP connection from coturn's address, not the router's.
#  3. N -> P: a short-lived node in a (send --turn) delivers a message to P through coturn.
#  4. P's side -> N: a sender in pub looks N up through P, connects to N's relayed address
#     (P's IP is permitted), coturn announces it (ConnectionAttempt), N accepts it: the
#     message arrives at N, logged with "session in ... path=turn".
#  5. A password file open to others is refused (exit 3, says why); a wrong password gives
#     "no allocation via server: MESH_ERR_AUTH" and W still answers a ping on its LAN.
# Root only (skips otherwise); coturn (turnserver) from ci/setup. Names unique per run
# (nattb_lib.sh); the trap kills only what this script started.
set -u
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

BIN=${MESH_BIN_DIR:-$(dirname "$0")/../../build/bin}
NODE=$BIN/meshara-node
[ -x "$NODE" ] || skip "$NODE not built"
# shellcheck source=tests/netns/nattb_lib.sh
source "$(dirname "$0")/nattb_lib.sh"
nattb_init turnserver
T=$NATTB_TMP
SRV_IP=$NATTB_WAN.50
REALM=meshara.test
TURN_USER=alice
TURN_PASS=s3cret-$NATTB_ID

# ms: wall clock in milliseconds.
ms() { date +%s%3N; }

# turn_start: coturn in its own namespace (so that a permission for P's IP is not also one
# for the server's), TCP only, long-term credentials, relay ports 49152-49200.
turn_start() {
    local d=$T/turn
    mkdir -p "$d"
    nattb_ns_add srv
    nattb_link srv eth0 psrv
    ip -n "$(nattb_ns srv)" addr add "$SRV_IP/24" dev eth0
    ip -n "$(nattb_ns srv)" route get 1.1.1.1 >/dev/null 2>&1 && fail "srv has a route out"
    cat >"$d/turnserver.conf" <<EOF
listening-ip=$SRV_IP
relay-ip=$SRV_IP
listening-port=3478
min-port=49152
max-port=49200
lt-cred-mech
realm=$REALM
user=$TURN_USER:$TURN_PASS
fingerprint
no-udp
no-tls
no-dtls
no-cli
userdb=$d/turndb
pidfile=$d/turnserver.pid
log-file=$d/turnserver.log
simple-log
verbose
EOF
    nattb_bg srv "$d/stdout.log" turnserver -c "$d/turnserver.conf"
    nattb_wait_listen srv t 3478 10 || { nattb_show "$d/stdout.log" "$d/turnserver.log"; fail "turnserver did not start"; }
}

# restrict_ra: router A forwards from its LAN only TCP to coturn's port (the control and the
# data connections both go there) and the answers; everything else is dropped.
# MASQUERADE --random-fully.
restrict_ra() {
    nx ra iptables -P FORWARD DROP
    nx ra iptables -A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    nx ra iptables -A FORWARD -i lan0 -d "$SRV_IP" -p tcp --dport 3478 -j ACCEPT
    nattb_masq ra --random-fully
}

key() { # key NAME: a key file in the run's directory; prints the public key
    "$NODE" keygen --key "$T/$1.key" >"$T/$1.pub" 2>"$T/$1.keygen.err" || fail "keygen $1"
    cat "$T/$1.pub"
}

nattb_topology
turn_start
restrict_ra
echo "testbed up; coturn on $SRV_IP:3478 (TCP, realm $REALM)"

# 1. no direct way from a to the public host
if nx a timeout 3 bash -c "exec 3<>/dev/tcp/$PUB_IP1/9" 2>/dev/null; then fail "a reaches pub directly"; fi
nattb_refused a "$PUB_IP1" 9 && fail "a reaches pub directly (refused = reached)"
echo "ok 1: router A lets a reach only coturn"

PK=$(key p)
NK=$(key n)
printf '%s\n' "$TURN_PASS" >"$T/turn.pass"
chmod 600 "$T/turn.pass"
TURN_ARGS=(--turn "$SRV_IP:3478" --turn-user "$TURN_USER" --turn-pass-file "$T/turn.pass")
COMMON=(--no-port-mapping --log-level info)

nattb_bg pub "$T/p.log" "$NODE" run --key "$T/p.key" --listen "$PUB_IP1:7000" "${COMMON[@]}"
nattb_wait_for "$T/p.log" 'listening on' 10 || { nattb_show "$T/p.log"; fail "P did not start"; }

# 2. N: allocation, then the session to P through coturn
t0=$(ms)
nattb_bg a "$T/n.log" "$NODE" run --key "$T/n.key" --listen 0.0.0.0:7000 \
    --bootstrap "$PUB_IP1:7000#$PK" "${TURN_ARGS[@]}" "${COMMON[@]}"
nattb_wait_for "$T/n.log" 'node: turn: allocated, relayed address' 15 ||
    { nattb_show "$T/n.log" "$T/turn/turnserver.log"; fail "N got no allocation"; }
t_alloc=$(($(ms) - t0))
RELAYED=$(sed -n 's/.*node: turn: allocated, relayed address \([0-9.:]*\).*/\1/p' "$T/n.log" | head -1)
case $RELAYED in "$SRV_IP":*) ;; *) fail "relayed address $RELAYED is not coturn's" ;; esac
nattb_wait_for "$T/n.log" "node: session out key=$PK path=turn" 20 ||
    { nattb_show "$T/n.log" "$T/p.log" "$T/turn/turnserver.log"; fail "no session N -> P through coturn"; }
t_sess=$(($(ms) - t0))
nattb_wait_for "$T/p.log" "peer up: in key=$NK" 10 || { nattb_show "$T/p.log"; fail "P did not see N"; }
# P's end of the session: a connection from coturn's address (the relay), not router A's
nx pub ss -Htn state established "( sport = :7000 )" >"$T/p.ss"
grep -q "$SRV_IP:" "$T/p.ss" || { cat "$T/p.ss"; fail "P has no connection from coturn"; }
grep -q "$RA_WAN:" "$T/p.ss" && { cat "$T/p.ss"; fail "P has a connection from router A itself"; }
# the same from N's own log clock (no process start-up): listening -> allocated -> session
stamp() { sed -n "s/^\[\([0-9.]*\)\] .*$1.*/\1/p" "$T/n.log" | head -1; }
read -r d_alloc d_sess < <(awk -v l="$(stamp 'listening on')" -v a="$(stamp 'node: turn: allocated')" \
    -v s="$(stamp 'node: session out')" 'BEGIN { printf "%.1f %.1f\n", (a - l) * 1000, (s - a) * 1000 }')
echo "ok 2: N allocated $RELAYED ${d_alloc} ms after listening (${t_alloc} ms from start), session to P through coturn ${d_sess} ms later (its direct attempt had a 2 s head start)"

# 3. N's side -> P: a short-lived node in a, through coturn as well
key s1 >/dev/null
t1=$(ms)
nx a "$NODE" send --key "$T/s1.key" --to "$PUB_IP1:7000#$PK" --message "hello P via turn" \
    --timeout 30000 "${TURN_ARGS[@]}" --log-level info >"$T/s1.out" 2>"$T/s1.log" ||
    { nattb_show "$T/s1.out" "$T/s1.log"; fail "send from a to P"; }
t_send1=$(($(ms) - t1))
grep -q "delivered to $PK" "$T/s1.out" || fail "no delivery report"
grep -q 'path=turn' "$T/s1.log" || { nattb_show "$T/s1.log"; fail "a's sender did not go through TURN"; }
nattb_wait_for "$T/p.log" 'message from .*text="hello P via turn"' 5 || { nattb_show "$T/p.log"; fail "P did not log the message"; }
echo "ok 3: a -> P through coturn: delivered in ${t_send1} ms (allocation, the direct attempt's 2 s head start, Connect, session)"

# 4. P's side -> N: a sender in pub finds N through P and connects to N's relayed address
key s2 >/dev/null
t2=$(ms)
nx pub "$NODE" send --key "$T/s2.key" --to "$NK" --bootstrap "$PUB_IP1:7000#$PK" \
    --message "hello N via turn" --timeout 20000 --log-level info >"$T/s2.out" 2>"$T/s2.log" ||
    { nattb_show "$T/s2.out" "$T/s2.log" "$T/n.log"; fail "send from pub to N"; }
t_send2=$(($(ms) - t2))
nattb_wait_for "$T/n.log" 'message from .*text="hello N via turn"' 5 || { nattb_show "$T/n.log"; fail "N did not log the message"; }
grep -q "node: session in key=.* path=turn" "$T/n.log" || { nattb_show "$T/n.log"; fail "N logged no session in through TURN"; }
echo "ok 4: pub -> N at its relayed address (ConnectionAttempt, ConnectionBind): delivered in ${t_send2} ms"

# 5. credentials refused, and a password file open to others
WK=$(key w)
printf 'not-the-password\n' >"$T/wrong.pass"
chmod 644 "$T/wrong.pass"
rc=0
nx b "$NODE" run --key "$T/w.key" --listen 10.0.2.2:7000 --turn "$SRV_IP:3478" \
    --turn-user "$TURN_USER" --turn-pass-file "$T/wrong.pass" "${COMMON[@]}" >"$T/w0.out" 2>&1 || rc=$?
[ "$rc" = 3 ] && grep -q 'accessible by group or others' "$T/w0.out" ||
    { cat "$T/w0.out"; fail "a password file readable by others was not refused (exit $rc)"; }
chmod 600 "$T/wrong.pass"
nattb_bg b "$T/w.log" "$NODE" run --key "$T/w.key" --listen 10.0.2.2:7000 --turn "$SRV_IP:3478" \
    --turn-user "$TURN_USER" --turn-pass-file "$T/wrong.pass" "${COMMON[@]}"
nattb_wait_for "$T/w.log" 'no allocation via server: MESH_ERR_AUTH' 15 ||
    { nattb_show "$T/w.log" "$T/turn/turnserver.log"; fail "wrong password: no MESH_ERR_AUTH"; }
key s3 >/dev/null
nx b "$NODE" send --key "$T/s3.key" --to "10.0.2.2:7000#$WK" --ping --timeout 10000 \
    >"$T/s3.out" 2>"$T/s3.log" || { nattb_show "$T/s3.out" "$T/s3.log" "$T/w.log"; fail "W does not answer after MESH_ERR_AUTH"; }
grep -q "pong from $WK" "$T/s3.out" || fail "no pong from W"
echo "ok 5: password file open to others refused (exit 3); wrong password: MESH_ERR_AUTH, W serves on ($(sed -n 's/.*rtt_us=\([0-9]*\).*/\1/p' "$T/s3.out") us ping)"

echo "PASS test_nat_turn ($NATTB_ID): allocation ${t_alloc} ms, session ${t_sess} ms, a->P ${t_send1} ms, pub->N ${t_send2} ms"
