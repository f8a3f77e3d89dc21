#!/usr/bin/env bash
# tests/fuzz/capture_clienthello.sh [BIN_DIR] — regenerate the seed corpus of fuzz_clienthello
# (tests/fuzz/corpus/fuzz_clienthello/): real ClientHellos captured on loopback.
#
# `openssl s_server -msg` on 127.0.0.1 prints every record it receives as hex; for each client
# the first record (5-byte header + the ClientHello) is written as one seed file:
#   meshara_default   meshara-node send: our TLS code, ALPN meshara/1.0, SNI meshara.node
#   meshara_h2_sni    meshara-node send --http2 --sni www.example.com: ALPN h2, another SNI
#   openssl_s_client  openssl s_client -servername example.com -alpn h2,http/1.1
#   curl              curl -k https://localhost:PORT/ (curl's own ALPN list and extensions)
# BIN_DIR holds meshara-node (default: build/bin). Needs openssl and curl (ci/setup installs
# both). Only loopback is used; the server and every client are this script's children and
# are stopped on every exit path.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build/bin}
out=tests/fuzz/corpus/fuzz_clienthello
[ -x "$bin/meshara-node" ] || { echo "capture_clienthello: no $bin/meshara-node (build first)" >&2; exit 1; }
work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
openssl req -x509 -newkey ed25519 -keyout "$work/key.pem" -out "$work/cert.pem" -days 1 -nodes \
  -subj /CN=localhost >/dev/null 2>&1
"$bin/meshara-node" keygen --key "$work/node.key" >/dev/null
peer=$("$bin/meshara-node" keygen --key "$work/peer.key")

# The first record s_server printed after "<<< ... RecordHeader", with the handshake message
# that followed it, as bytes in file $2.
first_record() {
  awk '/^<<< .*RecordHeader/ {want = 1; next}
       want && /^<<< .*ClientHello/ {body = 1; next}
       want && /^(<<<|>>>)/ {if (body) exit; next}
       want && /^    [0-9a-f]/ {for (i = 1; i <= NF; i++) printf "\\x%s", $i}' "$1" > "$1.hex"
  [ -s "$1.hex" ] || { echo "capture_clienthello: no ClientHello in $1" >&2; exit 1; }
  printf '%b' "$(cat "$1.hex")" > "$2"
}

# capture NAME CLIENT-COMMAND...: one s_server for one connection, then the client.
capture() {
  local name=$1 log="$work/$1.log" port
  shift
  for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    openssl s_server -accept "127.0.0.1:$port" -cert "$work/cert.pem" -key "$work/key.pem" \
      -msg -naccept 1 -quiet > "$log" 2>&1 &
    server=$!
    sleep 0.3
    kill -0 "$server" 2>/dev/null && break
    wait "$server" 2>/dev/null || true
    server=""
  done
  [ -n "$server" ] || { echo "capture_clienthello: s_server would not start" >&2; exit 1; }
  PORT=$port timeout 10 "$@" > /dev/null 2>&1 < /dev/null || true
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=""
  first_record "$log" "$out/$name"
  echo "$out/$name: $(wc -c < "$out/$name") bytes"
}

mkdir -p "$out"
capture meshara_default sh -c "'$bin/meshara-node' send --key '$work/node.key' \
  --to \"127.0.0.1:\$PORT#$peer\" --message x --timeout 2000"
capture meshara_h2_sni sh -c "'$bin/meshara-node' send --key '$work/node.key' --http2 \
  --sni www.example.com --to \"127.0.0.1:\$PORT#$peer\" --message x --timeout 2000"
capture openssl_s_client sh -c 'openssl s_client -connect "127.0.0.1:$PORT" \
  -servername example.com -alpn h2,http/1.1'
capture curl sh -c 'curl -sk --max-time 3 --resolve "localhost:$PORT:127.0.0.1" "https://localhost:$PORT/"'
