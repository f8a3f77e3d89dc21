#!/usr/bin/env bash
# test_node_cli.sh — meshara-node's command line: key file rules (0600, never overwritten,
# refused when readable by others, corrupt, a FIFO/directory/device refused at once), pubkey,
# and exit code 2 with a clear message for each kind of bad argument (options before the
# command, an option given twice, --pool-min above the default --pool-max, an option of the
# other profile); --help lists every option and the exit codes; runtime failures (refused, key
# not found, own key as --to or --peer, unusable --peers-db, port in use) exit 1 naming the
# reason; the web profile's certificate is made once next to the key file (0600), reused,
# made anew for another key type, and an operator's chain is shown instead (bad or exposed
# files: exit 3). No command may hang.
set -euo pipefail
. "$(dirname "$0")/node_lib.sh"
node_init

# expect CODE [--] REGEX CMD... : CMD exits with CODE and its stderr matches REGEX ("--" lets
# REGEX start with a dash). A command that hangs is killed after CMD_TIMEOUT seconds and fails
# the test (exit 124 is never expected).
CMD_TIMEOUT=20
expect() {
  local code=$1 rc=0
  shift
  [ "$1" != -- ] || shift
  local re=$1
  shift
  timeout "$CMD_TIMEOUT" "$NODE" "$@" >"$WORK/cmd.out" 2>"$WORK/cmd.err" || rc=$?
  [ "$rc" -ne 124 ] || fail "'$*' still running after $CMD_TIMEOUT s"
  [ "$rc" -eq "$code" ] || fail "'$*' exited $rc, expected $code; stderr: $(cat "$WORK/cmd.err")"
  grep -Eq -- "$re" "$WORK/cmd.err" || fail "'$*': stderr lacks /$re/: $(cat "$WORK/cmd.err")"
}

# keygen: prints 64 hex chars, file mode 0600, never overwrites
key=$WORK/a.key
pub=$("$NODE" keygen --key "$key")
[[ $pub =~ ^[0-9a-f]{64}$ ]] || fail "keygen printed '$pub'"
[ "$(stat -c %a "$key")" = 600 ] || fail "key file mode $(stat -c %a "$key")"
before=$(sha256sum <"$key")
expect 3 'already exists|exists' keygen --key "$key"
[ "$(sha256sum <"$key")" = "$before" ] || fail "keygen changed an existing key file"
[ "$("$NODE" pubkey --key "$key")" = "$pub" ] || fail "pubkey differs from keygen's output"

# a second key differs
pub2=$("$NODE" keygen --key "$WORK/b.key")
[ "$pub2" != "$pub" ] || fail "two keygens gave the same key"

# key file problems: exit 3
expect 3 'not exist|not found' pubkey --key "$WORK/missing.key"
expect 3 'not exist|not found' run --key "$WORK/missing.key" --listen 127.0.0.1:0
chmod 644 "$key"
expect 3 'group or others|chmod' pubkey --key "$key"
chmod 600 "$key"
printf 'not a key\n' >"$WORK/bad.key"
chmod 600 "$WORK/bad.key"
expect 3 'bad.key' pubkey --key "$WORK/bad.key"
# a FIFO (or a directory, a device) as the key file: refused at once with the reason; a FIFO
# used to block every command for ever, waiting for a writer
mkfifo -m 600 "$WORK/fifo.key"
expect 3 'fifo.key: is a FIFO .*not a regular file' pubkey --key "$WORK/fifo.key"
expect 3 'fifo.key: is a FIFO .*not a regular file' run --key "$WORK/fifo.key" --listen 127.0.0.1:0
expect 3 'fifo.key: is a FIFO .*not a regular file' send --key "$WORK/fifo.key" --to "$pub" --ping
expect 3 'exists; not overwritten' keygen --key "$WORK/fifo.key"
expect 3 'is a directory, not a regular file' pubkey --key "$WORK"
expect 3 'is a device, not a regular file' pubkey --key /dev/null

# bad arguments: exit 2, each with a message naming the problem
expect 2 'no command' 
expect 2 "unknown command 'fly'" fly --key "$key"
expect 2 'the command comes first: meshara-node pubkey --key' --key "$key" pubkey
expect 2 "no command given before '--key'" --key "$key"
expect 2 'needs --key' pubkey
expect 2 "unknown option '--bogus'" run --key "$key" --bogus
expect 2 "'--listen' needs a value" run --key "$key" --listen
expect 2 'not valid for .keygen.' keygen --key "$WORK/c.key" --listen 127.0.0.1:0
expect 2 'not valid for .run.' run --key "$key" --ping
expect 2 'not valid for .run.' run --key "$key" --listen 127.0.0.1:0 --linger 5000
expect 2 -- '--linger: expected milliseconds' send --key "$key" --to "$pub" --ping --linger 0
expect 2 -- '--listen: expected ADDR:PORT' run --key "$key" --listen 127.0.0.1
expect 2 -- '--listen: expected ADDR:PORT' run --key "$key" --listen 300.0.0.1:80
expect 2 -- '--peer: expected \[HOST=\]ADDR:PORT' run --key "$key" --peer 127.0.0.1:0#"$pub"
expect 2 'must be 64 hex' run --key "$key" --peer 127.0.0.1:9#abcd
expect 2 'must be 64 hex' run --key "$key" --peer "127.0.0.1:9#${pub:0:63}z"
expect 2 -- '--auth-timeout: expected milliseconds' run --key "$key" --listen 127.0.0.1:0 --auth-timeout 0
expect 2 -- '--heartbeat: expected milliseconds' run --key "$key" --listen 127.0.0.1:0 --heartbeat 5s
expect 2 -- '--max-handshakes: expected' run --key "$key" --listen 127.0.0.1:0 --max-handshakes 0
expect 2 -- '--alpn: expected' run --key "$key" --listen 127.0.0.1:0 --alpn 'a,,b'
expect 2 -- '--sni: expected' run --key "$key" --listen 127.0.0.1:0 --sni ''
expect 2 -- '--host-name: expected a DNS host name' run --key "$key" --listen 127.0.0.1:0 --host-name bad_name.example
expect 2 -- '--host-name: expected a DNS host name' run --key "$key" --listen 127.0.0.1:0 --host-name 10.0.0.1
expect 2 -- '--log-level: expected' run --key "$key" --listen 127.0.0.1:0 --log-level loud
expect 2 'needs --listen' run --key "$key"
expect 2 'reconnect-min' run --key "$key" --listen 127.0.0.1:0 --reconnect-min 5000 --reconnect-max 10
expect 2 'needs --to' send --key "$key" --ping
expect 2 'exactly one of' send --key "$key" --to "127.0.0.1:9#$pub" --ping --message hi
expect 2 -- '--to: expected PUBKEYHEX or \[HOST=\]ADDR:PORT#PUBKEYHEX' send --key "$key" --to 127.0.0.1:9 --ping
expect 2 'must be 64 hex' send --key "$key" --to "${pub:0:62}" --ping
expect 2 -- '--peer: expected \[HOST=\]ADDR:PORT#PUBKEYHEX' run --key "$key" --peer 127.0.0.1:9
expect 2 -- '--bootstrap: expected \[HOST=\]ADDR:PORT#PUBKEYHEX' run --key "$key" --bootstrap 127.0.0.1:9
expect 2 'the part before .=. must be a DNS host name' run --key "$key" --listen 127.0.0.1:0 \
  --bootstrap "bad_name=127.0.0.1:9#$pub"
expect 2 'the part before .=. must be a DNS host name' run --key "$key" --listen 127.0.0.1:0 \
  --relay "10.0.0.1=127.0.0.1:9#$pub"
expect 2 -- '--to: expected PUBKEYHEX or \[HOST=\]ADDR:PORT#PUBKEYHEX' send --key "$key" \
  --to "localhost=$pub" --ping
expect 2 -- '--advertise: expected ADDR:PORT' run --key "$key" --listen 127.0.0.1:0 --advertise 127.0.0.1:0
expect 2 -- '--pool-min \(9\) is above --pool-max \(4\)' run --key "$key" --listen 127.0.0.1:0 --pool-min 9 --pool-max 4
expect 2 -- '--pool-min \(100\) is above --pool-max \(64, the default\)' run --key "$key" \
  --listen 127.0.0.1:0 --pool-min 100
expect 2 -- '--stun: expected ADDR:PORT' run --key "$key" --listen 127.0.0.1:0 --stun 127.0.0.1
expect 2 -- 'too many --stun options \(at most 2\)' run --key "$key" --listen 127.0.0.1:0 \
  --stun 127.0.0.1:3478 --stun 127.0.0.2:3478 --stun 127.0.0.3:3478
expect 2 'not valid for .send.' send --key "$key" --to "$pub" --ping --stun 127.0.0.1:3478
expect 2 -- '--listen given twice' run --key "$key" --listen 127.0.0.1:0 --listen 127.0.0.1:7000
expect 2 'not valid for .send.' send --key "$key" --to "$pub" --ping --peers-db "$WORK/x.db"
expect 2 'not valid for .send.' send --key "$key" --to "$pub" --ping --no-port-mapping
expect 2 "unexpected argument 'extra'" run --key "$key" --listen 127.0.0.1:0 extra
expect 2 -- '--profile: expected web or seed' run --key "$key" --listen 127.0.0.1:0 --profile http
expect 2 -- '--alpn is a seed-profile option' run --key "$key" --listen 127.0.0.1:0 --alpn h2
expect 2 -- '--tls-cert and --tls-key go together' run --key "$key" --listen 127.0.0.1:0 \
  --tls-cert "$WORK/x.crt"
expect 2 -- '--cert-type: expected ecdsa or rsa' run --key "$key" --listen 127.0.0.1:0 --cert-type dsa
expect 2 -- '--tls-cert is a web-profile option' run --key "$key" --listen 127.0.0.1:0 \
  --profile seed --tls-cert "$WORK/x.crt" --tls-key "$WORK/x.key"
expect 2 -- "--cert-type is for a certificate made here" run --key "$key" --listen 127.0.0.1:0 \
  --cert-type rsa --tls-cert "$WORK/x.crt" --tls-key "$WORK/x.key"
expect 2 -- '--web-root and --web-upstream\(-h2\) exclude each other' run --key "$key" \
  --listen 127.0.0.1:0 --web-root "$WORK" --web-upstream 127.0.0.1:8080
expect 2 -- '--web-root is a web-profile option' run --key "$key" --listen 127.0.0.1:0 \
  --profile seed --web-root "$WORK"
expect 2 -- '--web-root: empty file name' run --key "$key" --listen 127.0.0.1:0 --web-root ''
expect 1 -- 'cannot serve --web-root .*/none: MESH_ERR_NOT_FOUND' run --key "$key" \
  --listen 127.0.0.1:0 --no-port-mapping --web-root "$WORK/none"
# --turn: the three options together; the password file refused like a key file (exit 3)
expect 2 -- '--turn, --turn-user and --turn-pass-file go together' run --key "$key" \
  --listen 127.0.0.1:0 --turn 127.0.0.1:3478
expect 2 -- '--turn: expected ADDR:PORT' run --key "$key" --listen 127.0.0.1:0 --turn 127.0.0.1 \
  --turn-user u --turn-pass-file "$WORK/turn.pass"
printf 'secret\n' >"$WORK/turn.pass"
chmod 640 "$WORK/turn.pass"
expect 3 'password file .*turn.pass: is accessible by group or others; run chmod 600' run \
  --key "$key" --listen 127.0.0.1:0 --turn 127.0.0.1:3478 --turn-user u --turn-pass-file "$WORK/turn.pass"
: >"$WORK/empty.pass"
chmod 600 "$WORK/empty.pass"
expect 3 'empty.pass: is empty' run --key "$key" --listen 127.0.0.1:0 --turn 127.0.0.1:3478 \
  --turn-user u --turn-pass-file "$WORK/empty.pass"
expect 3 'missing.pass: does not exist' send --key "$key" --to "$pub2" --ping \
  --turn 127.0.0.1:3478 --turn-user u --turn-pass-file "$WORK/missing.pass"
[ "$(sha256sum <"$key")" = "$before" ] || fail "a failed command touched the key file"

# --help: exit 0, every option and the exit codes
"$NODE" --help >"$WORK/help.txt" || fail "--help exited $?"
for word in keygen pubkey run send --key --listen --peer --to --message --ping --timeout \
  --bootstrap --mdns --peers-db --no-port-mapping --advertise --pool-min --pool-max --maintain \
  --max-handshakes --reconnect-min --reconnect-max --http2 --sni --host-name --alpn --profile \
  --tls-cert --tls-key --cert-type --turn --turn-user --turn-pass-file \
  --connect-timeout --handshake-timeout --auth-timeout --heartbeat --log-level 'Exit codes'; do
  grep -q -- "$word" "$WORK/help.txt" || fail "--help does not mention $word"
done
"$NODE" run --help | cmp -s - "$WORK/help.txt" || fail "'run --help' differs from --help"

# an unused port: connect refused → send exits 1 naming the reason
expect 1 'MESH_ERR_REFUSED' send --key "$key" --to 127.0.0.1:1#"$pub2" --ping --timeout 3000
expect 1 "is this node.s own key" send --key "$key" --to "$pub" --ping
expect 1 -- "--peer is this node.s own key" run --key "$key" --listen 127.0.0.1:0 \
  --peer "127.0.0.1:9#$pub"
# a peer store that cannot be opened: exit 1 naming the file
expect 1 'cannot open --peers-db /nonexistent/dir/p.db' run --key "$key" --listen 127.0.0.1:0 \
  --peers-db /nonexistent/dir/p.db
# a key nobody knows, with no mesh to ask: MESH_ERR_NOT_FOUND
expect 1 'MESH_ERR_NOT_FOUND' send --key "$key" --to "$pub2" --message hi --timeout 3000
# a port in use: exit 1 naming the address
node_start a --listen 127.0.0.1:0
expect 1 "cannot listen on 127.0.0.1:$PORT_a" run --key "$key" --listen "127.0.0.1:$PORT_a"
node_stop a
# the web profile's default port is 443: without CAP_NET_BIND_SERVICE the bind is refused
# (EACCES) and the error says what to grant or to pass instead. Root loses the capability
# through setpriv; the case is skipped where the node could really bind 0.0.0.0:443.
no_cap=skip
if [ "$(id -u)" != 0 ] && [ "$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)" -gt 443 ]; then
  no_cap=
elif [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
  no_cap="setpriv --bounding-set -net_bind_service"
fi
if [ "$no_cap" = skip ]; then
  echo "skipping the port-443 case: the node could bind 0.0.0.0:443 here"
else
  rc=0
  # shellcheck disable=SC2086 # no_cap is a command prefix, split on purpose
  timeout "$CMD_TIMEOUT" $no_cap "$NODE" run --key "$key" --peer "127.0.0.1:9#$pub2" \
    >"$WORK/cmd.out" 2>"$WORK/cmd.err" || rc=$?
  [ "$rc" -eq 1 ] || fail "run on the default port exited $rc, expected 1: $(cat "$WORK/cmd.err")"
  grep -q 'cannot listen on 0.0.0.0:443: MESH_ERR_PERM' "$WORK/cmd.err" &&
    grep -q 'binding port 443 needs CAP_NET_BIND_SERVICE.*--listen ADDR:PORT' "$WORK/cmd.err" ||
    fail "no clear error for port 443: $(cat "$WORK/cmd.err")"
fi

# the web profile's certificate, kept next to the key file
served() { # the SHA-256 fingerprint of the certificate a TLS client receives from port $1
  openssl s_client -connect "127.0.0.1:$1" </dev/null 2>/dev/null |
    openssl x509 -noout -fingerprint -sha256
}
held() { openssl x509 -in "$1" -noout -fingerprint -sha256; }
[ "$(stat -c %a "$key.crt") $(stat -c %a "$key.crt.key")" = "600 600" ] ||
  fail "certificate files not 0600: $(stat -c %a "$key.crt" "$key.crt.key")"
openssl x509 -in "$key.crt" -noout -text | grep -q 'Public Key Algorithm: id-ecPublicKey' ||
  fail "the certificate made is not ECDSA"
first=$(held "$key.crt")
node_start a --listen 127.0.0.1:0
[ "$(served "$PORT_a")" = "$first" ] || fail "the node does not show the certificate it keeps"
node_stop a
[ "$(held "$key.crt")" = "$first" ] || fail "a restart made a new certificate"
node_start a --listen 127.0.0.1:0 --cert-type rsa
node_stop a
openssl x509 -in "$key.crt" -noout -text | grep -q 'Public Key Algorithm: rsaEncryption' ||
  fail "--cert-type rsa did not make an RSA certificate"
grep -q 'certificate file .*a.key.crt: another type of key' "$WORK/a.err" ||
  fail "the new RSA certificate was not logged"
# the operator's own chain and key (group-readable, as Debian's ssl-cert group has them)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj /CN=op.example.org -keyout "$WORK/op.key" -out "$WORK/op.crt" 2>/dev/null
chmod 640 "$WORK/op.key"
ln -s "$WORK/op.crt" "$WORK/op-link.crt" # links followed: certificate managers use them
node_start a --listen 127.0.0.1:0 --tls-cert "$WORK/op-link.crt" --tls-key "$WORK/op.key"
[ "$(served "$PORT_a")" = "$(held "$WORK/op.crt")" ] || fail "--tls-cert is not what is shown"
node_stop a
chmod 644 "$WORK/op.key"
expect 3 'op.key: is accessible by others' run --key "$key" --listen 127.0.0.1:0 \
  --tls-cert "$WORK/op.crt" --tls-key "$WORK/op.key"
chmod 600 "$WORK/op.key"
expect 3 'are not a PEM certificate chain and its key' run --key "$key" --listen 127.0.0.1:0 \
  --tls-cert "$WORK/op.crt" --tls-key "$key.crt.key"
expect 3 'missing.crt: does not exist' run --key "$key" --listen 127.0.0.1:0 \
  --tls-cert "$WORK/missing.crt" --tls-key "$WORK/op.key"
# our own files: a link or loose permissions are refused as for the key file
chmod 644 "$key.crt"
expect 3 'a.key.crt: is accessible by group or others' run --key "$key" --listen 127.0.0.1:0
rm "$key.crt"
ln -s "$WORK/op.crt" "$key.crt"
expect 3 'a.key.crt: is a symbolic link' run --key "$key" --listen 127.0.0.1:0
[ "$(sha256sum <"$key")" = "$before" ] || fail "the certificate's making touched the key file"
echo "PASS test_node_cli"
