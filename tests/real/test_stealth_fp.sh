#!/usr/bin/env bash
# test_stealth_fp.sh — the web profile's TLS as classifiers written by no one here see it,
# next to curl talking to nginx, captured on one port (443: ndpi's "non standard port" risk is
# per port, so both sides are compared on the same one):
#
#   network namespace meshfp-PID (only its lo, up; nothing else on the wire)
#   ┌──────────────────────────────────────────────────────────────────────────────────┐
#   │ curl -k https://127.0.0.1/            ──▶ nginx 127.0.0.1:443 (self-signed P-256) │
#   │ curl -k https://localhost/ (SNI)      ──▶ nginx                                   │
#   │ curl -k --tls-max 1.2 https://127.0.0.1/ ─▶ nginx                                 │
#   │ meshara-node send --ping              ──▶ meshara-node run 127.0.0.1:443 (web)    │
#   │ meshara-node send --sni localhost     ──▶ meshara-node run (web)                  │
#   │ curl -k --tls-max 1.2 https://127.0.0.1/ ─▶ meshara-node run (web)                │
#   │ meshara-node send --profile seed      ──▶ meshara-node run --profile seed         │
#   └──────────────────────────────────────────────────────────────────────────────────┘
#   tcpdump -i lo, one capture per exchange
#
# Node↔node against curl↔nginx, without and with a server name: tshark's JA3 and JA3S equal,
# JA4 and JA4S equal (tlsfp.py, computed from the captured bytes; it first checks itself
# against FoxIO's published examples), and ndpiReader's protocol, risks, ALPN, version and
# cipher equal. curl --tls-max 1.2 gets the same ServerHello (JA3S, JA4S) from the node as
# from nginx. The seed profile's capture must differ (JA3, JA4 and ndpi's view), so the test
# can fail. Needs root (namespace, capture) and tshark, tcpdump, ndpiReader, nginx, curl,
# python3, ip (ci/setup installs them); exits 77 naming what is missing. Every daemon it
# starts is stopped by PID in the EXIT trap; the namespace is deleted.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/node_lib.sh"
node_init
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (network namespace, packet capture)"; exit 77; }
for t in tshark tcpdump ndpiReader nginx curl python3 ip openssl; do need_tool "$t"; done
python3 "$here/tlsfp.py" --selftest >"$WORK/selftest.log" || {
  cat "$WORK/selftest.log"
  fail "tlsfp.py's JA4 code does not reproduce FoxIO's examples"
}

NS=meshfp-$$
PORT=443
ip netns add "$NS" || { echo "SKIP: cannot create a network namespace"; exit 77; }
# the namespace (its processes keep it until they die), then node_lib's trap (every PID
# killed, $WORK removed unless KEEP_WORK and a failure), which exits with the status it finds
cleanup_ns() {
  local rc=$?
  ip netns delete "$NS" 2>/dev/null || true
  set +e
  (exit "$rc")
  node_cleanup
}
trap cleanup_ns EXIT
ip -n "$NS" link set lo up
# (a foreground helper: a background job started through a shell function would be a subshell,
# and its PID not the daemon's; those run `ip netns exec` directly, which execs the command)
nsx() { ip netns exec "$NS" "$@"; }
# the same OpenSSL configuration for curl, nginx and the nodes (research note: openssl.cnf's
# system_default changes every one's hello the same way; pinned so none depends on the host's)
printf 'openssl_conf = openssl_init\n[openssl_init]\n' >"$WORK/openssl.cnf"
export OPENSSL_CONF=$WORK/openssl.cnf

# ---- capture one exchange: cap NAME CMD... -------------------------------------------------
cap() {
  local name=$1 tp i
  shift
  ip netns exec "$NS" tcpdump -i lo --immediate-mode -U -s 0 -w "$WORK/$name.pcap" "tcp port $PORT" \
    2>"$WORK/$name.tcpdump" &
  tp=$!
  BG_PIDS+=("$tp")
  for ((i = 0; i < 50; i++)); do
    grep -q 'listening on' "$WORK/$name.tcpdump" 2>/dev/null && break
    sleep 0.1
  done
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || true
  sleep 0.5 # the last segments (FIN) into the file
  kill -TERM "$tp" # tcpdump writes out what it holds and exits
  wait "$tp" 2>/dev/null || true
  [ -s "$WORK/$name.pcap" ] || fail "no capture for $name"
}

# ---- what each classifier says about a capture's first TLS flow ----------------------------
tshark_field() { # PCAP HANDSHAKE_TYPE FIELD: the first value
  tshark -r "$1" -Y "tls.handshake.type == $2" -T fields -e "$3" 2>/dev/null | head -1
}
fp() { # PCAP KEY: a field of tlsfp.py's first connection
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r[0].get(sys.argv[2], ""))' \
    "$WORK/$1.json" "$2"
}
ndpi() { # PCAP: protocol, ALPN, risks, version, JA3C/JA3S, cipher of the first TCP flow
  ndpiReader -i "$1" -v 2 2>/dev/null | grep -E '^\s+[0-9]+\s+TCP ' | head -1 |
    grep -oE '\[proto: [^]]*\]|\[Risk: [^]]*\]|\[JA3C: [^]]*\]|\[JA3S: [^]]*\]|\[TLSv1\.[0-3]\]|\[Cipher: [^]]*\]|\[ALPN: [^]]*\]' |
    tr '\n' ' ' || true
}
view() { # NAME: everything compared, one line per classifier, into NAME.view
  local p=$WORK/$1.pcap
  python3 "$here/tlsfp.py" "$p" --json >"$WORK/$1.json"
  {
    echo "tshark ja3  $(tshark_field "$p" 1 tls.handshake.ja3)"
    echo "tshark ja3s $(tshark_field "$p" 2 tls.handshake.ja3s)"
    echo "ja4         $(fp "$1" ja4)"
    echo "ja4_ro      $(fp "$1" ja4_ro)"
    echo "ja4s        $(fp "$1" ja4s)"
    echo "ndpi        $(ndpi "$p")"
  } >"$WORK/$1.view"
}
same() { # A B WHAT: A's view equals B's, else fail showing both
  view "$1"
  view "$2"
  if ! diff "$WORK/$1.view" "$WORK/$2.view" >"$WORK/$1-$2.diff"; then
    cat "$WORK/$1-$2.diff"
    fail "$3: the captures differ"
  fi
  grep -q '^tshark ja3  [0-9a-f]\{32\}$' "$WORK/$1.view" || fail "$1: tshark found no JA3"
  grep -q '^tshark ja3s [0-9a-f]\{32\}$' "$WORK/$1.view" || fail "$1: tshark found no JA3S"
  grep -q '^ja4         t1' "$WORK/$1.view" || fail "$1: no JA4"
  grep -q 'proto: ' "$WORK/$1.view" || fail "$1: ndpiReader saw no flow"
  echo "same: $3"
  sed 's/^/    /' "$WORK/$1.view"
}

# ---- curl against nginx ----------------------------------------------------------------------
mkdir -p "$WORK/nginx/tmp" "$WORK/www"
echo '<html><body>hello</body></html>' >"$WORK/www/index.html"
# like the node's own (ndpi flags a certificate that expires within 30 days: like for like)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost \
  -keyout "$WORK/nginx/ec.key" -out "$WORK/nginx/ec.crt" 2>/dev/null
# Debian 12's nginx.conf where it shows in TLS (protocols, server cipher preference), h2 on
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log info;
daemon off;
events { worker_connections 64; }
http {
  ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
  ssl_prefer_server_ciphers on;
  access_log $WORK/nginx/access.log;
  client_body_temp_path $WORK/nginx/tmp;
  proxy_temp_path $WORK/nginx/tmp;
  fastcgi_temp_path $WORK/nginx/tmp;
  uwsgi_temp_path $WORK/nginx/tmp;
  scgi_temp_path $WORK/nginx/tmp;
  server {
    listen 127.0.0.1:$PORT ssl http2;
    ssl_certificate $WORK/nginx/ec.crt;
    ssl_certificate_key $WORK/nginx/ec.key;
    root $WORK/www;
  }
}
EOF
nsx nginx -t -q -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" ||
  fail "nginx refuses the test's configuration"
ip netns exec "$NS" nginx -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
NGINX=$!
BG_PIDS+=("$NGINX")
up() { # wait until something accepts on 127.0.0.1:$PORT in the namespace
  local i
  for ((i = 0; i < 50; i++)); do
    nsx bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
up || fail "nginx did not start listening"
curl_to() { nsx curl -k -s -o /dev/null --max-time 5 "$@"; }
cap curl_ip curl_to "https://127.0.0.1:$PORT/"
cap curl_sni curl_to --resolve "localhost:$PORT:127.0.0.1" "https://localhost:$PORT/"
cap curl12_nginx curl_to --tls-max 1.2 "https://127.0.0.1:$PORT/"
kill -TERM "$NGINX"
wait "$NGINX" 2>/dev/null || true

# ---- meshara-node against meshara-node, then curl against the node ----------------------------
KEY_B=$(node_key b)
node_key a >/dev/null
serve() { # PROFILE: meshara-node run on 127.0.0.1:$PORT in the namespace
  rm -f "$WORK/b.out"
  ip netns exec "$NS" "$NODE" run --key "$WORK/b.key" --listen "127.0.0.1:$PORT" --profile "$1" \
    >"$WORK/b.out" 2>"$WORK/b.err" &
  NODE_PID[b]=$!
  wait_log "$WORK/b.out" '^listening ' 10 || fail "the $1 node did not start listening"
}
ping_b() { # PROFILE [OPTIONS...]: one ping from a to b; fails the test unless b answers
  local profile=$1
  shift
  nsx "$NODE" send --key "$WORK/a.key" --profile "$profile" --listen 127.0.0.1:0 "$@" \
    --to "127.0.0.1:$PORT#$KEY_B" --ping --timeout 5000
}
serve web
cap node_ip ping_b web
grep -q '^pong from' "$WORK/node_ip.out" || fail "web profile: no pong ($(cat "$WORK/node_ip.err"))"
cap node_sni ping_b web --sni localhost
grep -q '^pong from' "$WORK/node_sni.out" || fail "web profile with --sni: no pong"
# the peer's name from its entry (HOST=ADDR:PORT#KEY), as a --bootstrap or --peer gives it
cap node_host nsx "$NODE" send --key "$WORK/a.key" --profile web --listen 127.0.0.1:0 \
  --to "localhost=127.0.0.1:$PORT#$KEY_B" --ping --timeout 5000
grep -q '^pong from' "$WORK/node_host.out" || fail "web profile, --to localhost=ADDR: no pong"
cap curl12_node curl_to --tls-max 1.2 "https://127.0.0.1:$PORT/"
node_stop b
serve seed
cap seed_ip ping_b seed
grep -q '^pong from' "$WORK/seed_ip.out" || fail "seed profile: no pong"
node_stop b

# ---- the verdicts --------------------------------------------------------------------------
same curl_ip node_ip "web profile, no server name (an IP address) vs curl→nginx"
same curl_sni node_sni "web profile, server name localhost vs curl→nginx"
same curl_sni node_host "web profile, --to localhost=ADDR:PORT#KEY vs curl→nginx"
same curl12_nginx curl12_node "curl --tls-max 1.2: the node's TLS 1.2 answer vs nginx's"
grep -q 'TLSv1.2' "$WORK/curl12_node.view" || fail "curl --tls-max 1.2 did not get TLS 1.2"
view seed_ip
for k in 'tshark ja3 ' 'ja4 ' ndpi; do
  a=$(grep "^$k" "$WORK/curl_ip.view")
  b=$(grep "^$k" "$WORK/seed_ip.view")
  [ "$a" != "$b" ] || fail "the seed profile's capture looks like curl's ($a): the comparison cannot fail"
done
echo "differs: the seed profile (as it must)"
sed 's/^/    /' "$WORK/seed_ip.view"
echo "PASS test_stealth_fp"
