#!/usr/bin/env bash
# test_webroot_decoy.sh — a web-profile node with no web server beside it serves its decoy
# from --web-root DIR (node/real/webroot*.c): curl over HTTP/1.1 and HTTP/2 gets the site's
# files byte for byte and nginx's statuses (404, 405, 400 for a path out of the root, 403 for
# a link out of it), while two real nodes keep talking through the same listener; and the
# probes of tests/real/stealth_probe.py (curl, nghttp, openssl s_client, junk after the
# handshake, a replayed client flight) get from it what nginx serving the same directory
# gives, the site's 60 s timeout included (about 100 s in all).
#
#   loopback only; every daemon started here, killed by PID in the EXIT trap
#   ┌─────────────────────────────────────────────────────────────────────────────────────┐
#   │ curl, stealth_probe.py ─┬─▶ meshara-node b 127.0.0.1:P_NODE --web-root $WORK/www    │
#   │                         │     (decoy ─▶ its own loopback listeners, h1 and h2c)     │
#   │                         └─▶ nginx 127.0.0.1:P_TLS (ssl http2, root $WORK/www)       │
#   │ meshara-node a (run, --peer b)  ◀──── session kept up throughout ────▶ b            │
#   │ meshara-node send c → b: messages delivered before and after the probes             │
#   └─────────────────────────────────────────────────────────────────────────────────────┘
# Needs curl, openssl, python3, nginx (ci/setup installs them).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/node_lib.sh"
node_init
for t in nginx curl openssl python3; do need_tool "$t"; done
chmod 755 "$WORK" # nginx's workers (nobody, when run as root) read the site and certificate

read -r P_TLS P_NODE P_REC < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')

# ---- the site: a page, a binary file sent from its fd, a directory, a link out -------------
mkdir -p "$WORK/www/docs" "$WORK/nginx/tmp"
echo '<html><body>hello</body></html>' >"$WORK/www/index.html"
echo 'docs' >"$WORK/www/docs/index.html"
head -c 300000 /dev/urandom >"$WORK/www/blob.bin"
echo 'not for you' >"$WORK/secret.txt"
ln -s "$WORK/secret.txt" "$WORK/www/leak.txt"
chmod -R a+rX "$WORK/www"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost \
  -keyout "$WORK/nginx/ec.key" -out "$WORK/nginx/ec.crt" 2>/dev/null
chmod 644 "$WORK/nginx/ec.key" # nginx reads it as nobody; the node's copy must be 0600
cp "$WORK/nginx/ec.key" "$WORK/node.crt.key"
chmod 600 "$WORK/node.crt.key"
chmod -R a+rX "$WORK/nginx"

KEY_B=$(node_key b)
node_key a >/dev/null
node_key c >/dev/null
node_start b --listen "127.0.0.1:$P_NODE" --tls-cert "$WORK/nginx/ec.crt" \
  --tls-key "$WORK/node.crt.key" --web-root "$WORK/www" --no-port-mapping --log-level debug
grep -q "web root $WORK/www served on 127.0.0.1:" "$WORK/b.err" || fail "b did not log its site"
node_start a --listen 127.0.0.1:0 --no-port-mapping --peer "127.0.0.1:$P_NODE#$KEY_B"
wait_log "$WORK/a.err" "peer up: out key=$KEY_B" 10 || fail "a did not reach b"

send_c() {
  "$NODE" send --key "$WORK/c.key" --to "127.0.0.1:$P_NODE#$KEY_B" --message "$1" \
    --timeout 5000 >"$WORK/send.out" 2>>"$WORK/send.log" || fail "c's message '$1' failed"
  grep -q '^delivered to' "$WORK/send.out" || fail "c's message '$1' not delivered"
  wait_log "$WORK/b.err" "message from .*text=\"$1\"" 5 || fail "b did not log '$1'"
}
send_c before-probes

# ---- curl against the node alone: bytes and statuses -----------------------------------------
# get VERSION PATH [curl args...]: prints "status http_version", the body in $WORK/body
get() {
  local v=$1 path=$2
  shift 2
  rm -f "$WORK/body" "$WORK/head" # (curl leaves -o's file alone when no body comes)
  curl -k -s --max-time 10 "--http$v" -o "$WORK/body" -D "$WORK/head" \
    -w '%{http_code} %{http_version}' "$@" "https://127.0.0.1:$P_NODE$path"
}
for v in 1.1 2; do
  want_v=${v%.1}
  [ "$v" = 1.1 ] && want_v=1.1
  [ "$(get "$v" /)" = "200 $want_v" ] || fail "h$v GET /: $(get "$v" /)"
  cmp -s "$WORK/body" "$WORK/www/index.html" || fail "h$v GET / is not index.html"
  grep -qi '^server: nginx/1.22.1' "$WORK/head" || fail "h$v: no nginx Server header"
  grep -qi '^content-length: 32' "$WORK/head" || fail "h$v: wrong Content-Length"
  lm=$(sed -n 's/^[Ll]ast-[Mm]odified: //p' "$WORK/head" | tr -d '\r')
  [ "$(get "$v" / -H "If-Modified-Since: $lm")" = "304 $want_v" ] || fail "h$v: no 304"
  [ -s "$WORK/body" ] && fail "h$v: a 304 with a body"
  [ "$(get "$v" /blob.bin)" = "200 $want_v" ] || fail "h$v GET /blob.bin"
  cmp -s "$WORK/body" "$WORK/www/blob.bin" || fail "h$v: /blob.bin came back altered"
  grep -qi '^content-type: application/octet-stream' "$WORK/head" || fail "h$v: blob's type"
  [ "$(get "$v" /docs/)" = "200 $want_v" ] && cmp -s "$WORK/body" "$WORK/www/docs/index.html" ||
    fail "h$v GET /docs/ is not its index.html"
  [ "$(get "$v" /docs)" = "301 $want_v" ] || fail "h$v GET /docs: not 301"
  grep -qi "^location: https://127.0.0.1:$P_NODE/docs/" "$WORK/head" || fail "h$v: 301 Location"
  [ "$(get "$v" /missing.html)" = "404 $want_v" ] || fail "h$v GET /missing.html: not 404"
  grep -q '<title>404 Not Found</title>' "$WORK/body" || fail "h$v: not nginx's 404 page"
  [ "$(get "$v" /index.html -X POST -d x=1)" = "405 $want_v" ] || fail "h$v POST: not 405"
  [ "$(get "$v" /leak.txt)" = "403 $want_v" ] || fail "h$v: a link out of the root was served"
  grep -q 'not for you' "$WORK/body" && fail "h$v: the secret leaked"
  [ "$(get "$v" /index.html -I)" = "200 $want_v" ] || fail "h$v HEAD"
  grep -q 'hello' "$WORK/body" && fail "h$v HEAD sent a body" # (-I writes the head there)
done
[ "$(get 1.1 /../secret.txt --path-as-is)" = "400 1.1" ] || fail "h1 /../: not 400"
[ "$(get 1.1 /%2e%2e/secret.txt --path-as-is)" = "400 1.1" ] || fail "h1 /%2e%2e/: not 400"
grep -q 'not for you' "$WORK/body" && fail "the secret leaked through ../"
# keep-alive: two requests on one connection
curl -k -s --http1.1 -o /dev/null -o /dev/null -w '%{num_connects}\n' \
  "https://127.0.0.1:$P_NODE/" "https://127.0.0.1:$P_NODE/docs/" >"$WORK/conns"
[ "$(paste -sd' ' "$WORK/conns")" = "1 0" ] || fail "h1 keep-alive: connects $(cat "$WORK/conns")"

# ---- the same probes against nginx serving the same directory ------------------------------
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
}
EOF
nginx -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
NGINX=$!
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

# a real Meshara client flight to replay
python3 "$here/stealth_probe.py" record "$P_REC" "$P_NODE" "$WORK/flight.bin" >"$WORK/record.log" 2>&1 &
REC=$!
BG_PIDS+=("$REC")
wait_log "$WORK/record.log" '^recording' 5 || fail "the recording relay did not start"
"$NODE" send --key "$WORK/c.key" --to "127.0.0.1:$P_REC#$KEY_B" --ping --timeout 5000 \
  >"$WORK/rec-send.out" 2>"$WORK/rec-send.err" || fail "send through the recording relay failed"
wait "$REC" || fail "the recording relay failed"

ALL='curl h1 GET /|curl h2 GET /|curl h2 GET /missing|curl h1 POST hello path'
ALL+='|curl h2 POST hello path|s_client no ALPN, no SNI|s_client no ALPN, SNI'
ALL+='|s_client ALPN http/1.1, SNI|s_client ALPN h2, no SNI|s_client ALPN h2, SNI'
ALL+='|1 KiB random after handshake, h1|1 KiB random after handshake, h2'
ALL+='|replayed Meshara client flight'
# the site's own timers against nginx's: silence after the handshake (60 s, all at once)
ALL+='|silence after handshake, h1|silence after handshake, h2|silence after handshake, no ALPN'
rc=0
python3 "$here/stealth_probe.py" "$P_TLS" "$P_NODE" --replay "$WORK/flight.bin" --long --only "$ALL" |
  tee "$WORK/probes.txt" || rc=$?
[ "$rc" -eq 0 ] || fail "the --web-root node answers some probe differently from nginx (above)"
grep -q '^same *curl h2 GET /missing' "$WORK/probes.txt" || fail "the curl probes did not run"
grep -q '^same *replayed Meshara client flight' "$WORK/probes.txt" || fail "no replay probe"
grep -q '^same *silence after handshake, h2' "$WORK/probes.txt" || fail "no silence probe"
# nghttp -nv: the same frames and headers but for the HEADERS frame's length (nghttp2's HPACK
# encoding is shorter than nginx's: docs/stealth.md, "Known tells left"); anything else is a
# failure
if command -v nghttp >/dev/null 2>&1; then
  python3 "$here/stealth_probe.py" "$P_TLS" "$P_NODE" --only 'nghttp -nv' >"$WORK/nghttp.txt" || true
  python3 - "$WORK/nghttp.txt" <<'PY' || fail "nghttp -nv: more than the HEADERS length differs"
import re, sys
t = open(sys.argv[1]).read()
if t.startswith('same'):
    sys.exit(0)
parts = t.split('  --- node:')
if len(parts) != 2 or '  --- nginx:' not in parts[0]:
    sys.exit(1)
norm = lambda s: re.sub(r'HEADERS frame <length=\d+', 'HEADERS frame <length=N', s).strip()
a, b = norm(parts[0].split('  --- nginx:')[1]), norm(parts[1])
print('nghttp -nv: same but the HEADERS frame length' if a == b else t)
sys.exit(0 if a == b and 'HEADERS frame' in a else 1)
PY
fi

send_c after-probes
grep -q "peer down" "$WORK/a.err" && fail "a's session with b went down during the probes"
node_stop a
node_stop b
echo "PASS test_webroot_decoy"
