#!/usr/bin/env bash
# test_node_h2.sh — meshara-node in the seed profile's HTTP/2 framing mode (--profile seed
# --http2, ALPN h2; the web profile always frames with HTTP/2 and its TLS is curl's and
# nginx's: test_node_pair.sh, test_stealth_fp.sh):
#  1. the whole two-node scenario of test_node_pair.sh, with --http2 on every command;
#  2. ordinary HTTP/2 clients against the node, while it serves a real peer:
#       curl --http2 GET /api/v1/message → 405    nghttp GET /api/v1/message → 405
#       curl --http2 GET /other          → 404    curl --http1.1 → refused (ALPN, MESH_ERR_ALPN)
#       openssl s_client -alpn meshara/1.0 → refused: this listener only speaks h2
#     and the A–B session stays up; a message still gets through afterwards.
set -euo pipefail
here=$(dirname "$0")
NODE_FRAMING="--profile seed --http2" bash "$here/test_node_pair.sh" || exit $?

. "$here/node_lib.sh"
node_init
need_tool curl
curl --version | grep -q HTTP2 || { echo "SKIP: this curl has no HTTP/2"; exit 77; }

KEY_A=$(node_key a)
KEY_B=$(node_key b)
node_key s >/dev/null
node_start b --listen 127.0.0.1:0 --profile seed --http2 --heartbeat 400 --auth-timeout 2000
B=127.0.0.1:$PORT_b
node_start a --listen 127.0.0.1:0 --profile seed --http2 --peer "$B#$KEY_B" --heartbeat 400
wait_log "$WORK/b.err" "peer up: in key=$KEY_A" || fail "A and B did not connect over h2"

status() { # METHOD-less GET of URL path with curl's HTTP/2; prints "code version"
  curl --http2 -k -s -o /dev/null -w '%{http_code} %{http_version}' --max-time 5 \
    "https://$B$1" || true
}
got=$(status /api/v1/message)
[ "$got" = "405 2" ] || fail "curl --http2 GET /api/v1/message: '$got', expected '405 2'"
got=$(status /other)
[ "$got" = "404 2" ] || fail "curl --http2 GET /other: '$got', expected '404 2'"
echo "curl --http2: GET /api/v1/message 405, GET /other 404"

if command -v nghttp >/dev/null 2>&1; then
  nghttp -v "https://$B/api/v1/message" >"$WORK/nghttp.log" 2>&1 || true
  grep -q ':status: 405' "$WORK/nghttp.log" || fail "nghttp did not get 405"
  echo "nghttp: GET /api/v1/message 405"
fi

rc=0
curl --http1.1 -k -s -o /dev/null --max-time 5 "https://$B/api/v1/message" || rc=$?
[ "$rc" -ne 0 ] || fail "curl --http1.1 was served"
if openssl s_client -tls1_3 -alpn meshara/1.0 -connect "$B" </dev/null >"$WORK/s_client.log" 2>&1; then
  fail "s_client -alpn meshara/1.0 was accepted by an h2-only listener"
fi
[ "$(count_log "$WORK/b.err" 'closing in HANDSHAKING: MESH_ERR_ALPN')" = 2 ] ||
  fail "B did not refuse the two clients without h2 with MESH_ERR_ALPN"

[ "$(count_log "$WORK/a.err" 'peer down|connect failed')" = 0 ] || fail "A lost its session"
[ "$(count_log "$WORK/b.err" 'peer down')" = 0 ] || fail "B dropped a session"
"$NODE" send --key "$WORK/s.key" --profile seed --http2 --to "$B#$KEY_B" --message after-http >/dev/null \
  2>>"$WORK/send.log" || fail "send after the HTTP clients failed"
wait_log "$WORK/b.err" 'text="after-http"' || fail "B did not log the message"
node_stop a
node_stop b
echo "PASS test_node_h2"
