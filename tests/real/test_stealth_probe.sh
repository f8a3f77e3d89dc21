#!/usr/bin/env bash
# test_stealth_probe.sh — a censor's active probes (issue 11): does a web-profile node whose
# decoy is a real nginx answer every probe as that nginx does when connected to directly?
#
#   loopback only; every daemon started here, killed by PID in the EXIT trap
#   ┌─────────────────────────────────────────────────────────────────────────────────────┐
#   │ stealth_probe.py ─┬─▶ nginx 127.0.0.1:P_TLS (ssl http2, self-signed P-256)          │
#   │  (curl, nghttp,   │                                                                 │
#   │   s_client, raw)  └─▶ meshara-node b 127.0.0.1:P_NODE (web, same certificate)       │
#   │                         decoy ─▶ nginx 127.0.0.1:P_H1 (HTTP/1.1), :P_H2 (h2c)       │
#   │ meshara-node a (run, --peer b)  ◀──── session kept up throughout ────▶ b            │
#   │ meshara-node send c → b, a message every ~0.5 s during the probes                   │
#   │ stealth_probe.py record: relays one real send → b and keeps the client's bytes      │
#   │ meshara-node s 127.0.0.1:P_SEED --profile seed (no decoy): must differ              │
#   └─────────────────────────────────────────────────────────────────────────────────────┘
#
# Each probe (stealth_probe.py: curl over HTTP/1.1 and HTTP/2, nghttp -nv if installed,
# openssl s_client with and without ALPN and SNI, 1 KiB of random bytes after the handshake
# over h1 and h2, the replay of a captured Meshara client flight, and silence: TCP only, half
# a ClientHello, after the handshake over h1, h2 and without ALPN) runs against nginx and
# against the node at the same time; status, headers (Date aside), body, h2 frames, how the
# server closed (close_notify, FIN, RST) and when (within 1.5 s) must be the same. Meanwhile
# a and b keep their session and every message c sends b is delivered. A seed-profile node
# answers the same probes differently (so the comparison can fail). Needs nginx, curl,
# openssl, python3 (ci/setup installs them; nghttp from nghttp2-client is optional); the
# silence probes wait for nginx's own timers (60 s, 75 s): about 90 s in all.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/node_lib.sh"
node_init
for t in nginx curl openssl python3; do need_tool "$t"; done
chmod 755 "$WORK" # nginx's workers (nobody, when run as root) read the site and certificate
PROBE="$here/stealth_probe.py"

read -r P_TLS P_H1 P_H2 P_NODE P_REC P_SEED < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(6)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')

# ---- nginx: the site, TLS as Debian 12's nginx.conf sets it, and the decoy's two upstreams ----
mkdir -p "$WORK/nginx/tmp" "$WORK/www"
echo '<html><body>hello</body></html>' >"$WORK/www/index.html"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost \
  -keyout "$WORK/nginx/ec.key" -out "$WORK/nginx/ec.crt" 2>/dev/null
chmod 644 "$WORK/nginx/ec.key" # nginx reads it as nobody; the node's copy must be 0600
cp "$WORK/nginx/ec.key" "$WORK/node.crt.key"
chmod 600 "$WORK/node.crt.key"
chmod -R a+rX "$WORK/nginx" "$WORK/www"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log info;
daemon off;
events { worker_connections 256; }
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
    listen 127.0.0.1:$P_TLS ssl http2;
    ssl_certificate $WORK/nginx/ec.crt;
    ssl_certificate_key $WORK/nginx/ec.key;
    root $WORK/www;
  }
  server { listen 127.0.0.1:$P_H1; root $WORK/www; }
  server { listen 127.0.0.1:$P_H2 http2; root $WORK/www; }
}
EOF
nginx -t -q -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" 2>"$WORK/nginx-t.log" ||
  fail "nginx refuses the test's configuration ($(cat "$WORK/nginx-t.log"))"
nginx -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
NGINX=$!
# nginx's master stops its workers on TERM (a KILL would leave them holding the test's pipes),
# then node_lib's trap kills the rest by PID and exits with the status it finds
stop_nginx() {
  local rc=$?
  kill -TERM "$NGINX" 2>/dev/null && wait "$NGINX" 2>/dev/null
  (exit "$rc")
  node_cleanup
}
trap stop_nginx EXIT
for ((i = 0; i < 50; i++)); do
  (exec 3<>"/dev/tcp/127.0.0.1/$P_TLS") 2>/dev/null && break
  sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$P_TLS") 2>/dev/null || fail "nginx did not start listening"

# ---- the nodes ---------------------------------------------------------------------------
KEY_B=$(node_key b)
node_key a >/dev/null
node_key c >/dev/null
node_key s >/dev/null
node_start b --listen "127.0.0.1:$P_NODE" --tls-cert "$WORK/nginx/ec.crt" \
  --tls-key "$WORK/node.crt.key" --web-upstream "127.0.0.1:$P_H1" \
  --web-upstream-h2 "127.0.0.1:$P_H2" --log-level debug
node_start a --listen 127.0.0.1:0 --peer "127.0.0.1:$P_NODE#$KEY_B"
wait_log "$WORK/a.err" "peer up: out key=$KEY_B" 10 || fail "a did not reach b"

# a real Meshara client flight, through a relay that keeps the client's bytes
python3 "$PROBE" record "$P_REC" "$P_NODE" "$WORK/flight.bin" >"$WORK/record.log" 2>&1 &
REC=$!
BG_PIDS+=("$REC")
wait_log "$WORK/record.log" '^recording' 5 || fail "the recording relay did not start"
"$NODE" send --key "$WORK/c.key" --to "127.0.0.1:$P_REC#$KEY_B" --ping --timeout 5000 \
  >"$WORK/rec-send.out" 2>"$WORK/rec-send.err" || fail "send through the recording relay failed"
grep -q '^pong from' "$WORK/rec-send.out" || fail "no pong through the recording relay"
wait "$REC" || fail "the recording relay failed"
[ -s "$WORK/flight.bin" ] || fail "no client flight recorded"

# c sends b a message every ~0.5 s until told to stop; counts deliveries and failures
traffic() {
  local i=0 ok=0 bad=0
  while [ ! -e "$WORK/stop" ]; do
    i=$((i + 1))
    if "$NODE" send --key "$WORK/c.key" --to "127.0.0.1:$P_NODE#$KEY_B" --message "m$i" \
      --timeout 5000 >"$WORK/traffic.out" 2>>"$WORK/traffic.log" &&
      grep -q '^delivered to' "$WORK/traffic.out"; then
      ok=$((ok + 1))
    else
      bad=$((bad + 1))
    fi
    echo "$ok $bad" >"$WORK/traffic.count"
    sleep 0.5
  done
}
traffic &
TRAFFIC=$!
BG_PIDS+=("$TRAFFIC")

# ---- the probes --------------------------------------------------------------------------
rc=0
python3 "$PROBE" "$P_TLS" "$P_NODE" --replay "$WORK/flight.bin" --long | tee "$WORK/probes.txt" || rc=$?
touch "$WORK/stop"
wait "$TRAFFIC" || true
[ "$rc" -eq 0 ] || fail "the node answers some probe differently from nginx (above)"
grep -q '^same *replayed Meshara client flight' "$WORK/probes.txt" || fail "the replay probe did not run"
grep -q '^same *silence after handshake, h2' "$WORK/probes.txt" || fail "the silence probes did not run"
[ "$(count_log "$WORK/b.err" 'first request to the decoy')" -gt 5 ] ||
  fail "b handed fewer connections to the decoy than the probes made"

read -r OK BAD <"$WORK/traffic.count"
echo "meanwhile: $OK messages from c delivered by b, $BAD failed"
[ "$BAD" -eq 0 ] || fail "$BAD of c's messages were not delivered during the probes"
[ "$OK" -ge 20 ] || fail "only $OK messages delivered during the probes"
grep -q "peer down" "$WORK/a.err" && fail "a's session with b went down during the probes"
node_stop a
node_stop b

# ---- the comparison can fail: a seed-profile node (no decoy) answers otherwise ------------------
node_start s --listen "127.0.0.1:$P_SEED" --profile seed
if python3 "$PROBE" "$P_TLS" "$P_SEED" \
  --only 'curl h1 GET /|curl h2 GET /|1 KiB random after handshake, h2' >"$WORK/seed.txt"; then
  cat "$WORK/seed.txt"
  fail "a seed-profile node answers the probes as nginx does: the comparison cannot fail"
fi
grep -c '^DIFFERS' "$WORK/seed.txt" | xargs echo "seed profile: probes answered differently:"
node_stop s
echo "PASS test_stealth_probe"
