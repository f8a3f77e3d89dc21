#!/usr/bin/env python3
"""stealth_probe.py — a censor's active probes against two TLS servers, side by side: nginx
connected to directly, and a web-profile meshara-node whose decoy is that same nginx
(tests/real/test_stealth_probe.sh). Each probe runs against both at once (threads); what
came back is normalised (the Date header, the probe's own port in :authority, random TLS
fields left out) and compared, with how and when each server ended the connection.

usage: stealth_probe.py NGINX_PORT NODE_PORT [--replay FILE] [--long] [--only 'NAME|NAME...']
       stealth_probe.py record LISTEN_PORT TARGET_PORT FILE   (one connection relayed; the
       client's bytes saved to FILE: the flight --replay sends)
Prints one line per probe, "same" or "DIFFERS" with both views; exits 1 if any differs.
Probes by clients written by no one here: curl over HTTP/1.1 and HTTP/2 (a page, a missing
page, a POST to the path a Meshara hello travels on), nghttp -v when installed, openssl
s_client with and without ALPN and SNI. Raw ones (Python's ssl, OpenSSL 3.0 too): 1 KiB of
random bytes after the handshake (h1, h2), a replay of a captured Meshara client flight
(--replay: the client's bytes of a real session), and with --long silence before, during
and after the handshake (nginx's 60 s and 75 s timers). Timing: a close counts as the same
when both happen within TIME_SLACK seconds of each other.
"""
import os
import random
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time

HOST = '127.0.0.1'
TIME_SLACK = 1.5
LONG_LIMIT = 90


def run_cmd(args, stdin=b'', timeout=20):
    try:
        p = subprocess.run(args, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout)
        return p.stdout
    except subprocess.TimeoutExpired as e:
        return (e.stdout or b'') + b'\n<timeout>'


def norm_http(text, port):
    out = []
    for line in text.splitlines():
        if re.match(r'(?i)^date:', line):
            continue
        out.append(line.replace(':%d' % port, ':PORT'))
    return '\n'.join(out)


# ---- probes by ordinary clients ----------------------------------------------------------

def curl(port, *extra):
    url = 'https://%s:%d%s' % (HOST, port, extra[-1] if extra and extra[-1].startswith('/') else '/')
    args = ['curl', '-k', '-s', '-D', '-', '--max-time', '10'] + [e for e in extra if not e.startswith('/')]
    t0 = time.monotonic()
    out = run_cmd(args + [url]).decode('latin-1')
    return norm_http(out, port), time.monotonic() - t0


def nghttp(port):
    t0 = time.monotonic()
    out = run_cmd(['nghttp', '-nv', '-t', '10', 'https://%s:%d/' % (HOST, port)]).decode('latin-1')
    # the server's side only: what nghttp sends interleaves with it as the scheduler pleases
    lines, mine = [], False
    for ln in out.splitlines():
        if re.match(r'^\[\s*[0-9.]+\]', ln):
            ln = re.sub(r'^\[\s*[0-9.]+\]\s*', '', ln)
            mine = not ln.startswith('send ')
        elif not ln.startswith(' '):
            mine = True
        if mine and 'date:' not in ln and 'Certificate verification' not in ln:
            lines.append(ln)
    return norm_http('\n'.join(lines), port), time.monotonic() - t0


S_CLIENT_KEEP = re.compile(r'^(Protocol *:|New, |ALPN protocol|No ALPN|Verify return code|'
                           r'subject=|issuer=|Server public key|Peer signature type|'
                           r'HTTP/|Server:|Content-|Connection:|ETag|Accept-Ranges|'
                           r'Last-Modified|closed|read R BLOCK|<)')


def s_client(port, alpn, sni):
    args = ['openssl', 's_client', '-connect', '%s:%d' % (HOST, port), '-ign_eof']
    args += ['-alpn', alpn] if alpn else []
    args += ['-servername', sni] if sni else ['-noservername']
    req = b'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
    t0 = time.monotonic()
    out = run_cmd(args, stdin=req).decode('latin-1')
    dt = time.monotonic() - t0
    keep = [ln for ln in out.splitlines() if S_CLIENT_KEEP.match(ln)]
    # h2 answers a GET line with binary frames: their bytes as hex (s_client prints them raw)
    binary = ''.join(ch for ch in out if ord(ch) < 9 or 13 < ord(ch) < 32)
    if binary:
        keep.append('binary bytes: %d' % len(binary))
    return '\n'.join(keep), dt


# ---- raw probes ----------------------------------------------------------------------------

def tls_conn(port, alpn):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    if alpn:
        c.set_alpn_protocols(alpn)
    raw = socket.create_connection((HOST, port))
    s = c.wrap_socket(raw, server_hostname=None, suppress_ragged_eofs=False)
    return s


def read_to_close(s, limit):
    """Everything until the server ends the connection: (bytes, how, seconds)."""
    t0 = time.monotonic()
    s.settimeout(limit)
    got = b''
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return got, 'close_notify' if isinstance(s, ssl.SSLSocket) else 'FIN', time.monotonic() - t0
            got += d
    except ssl.SSLZeroReturnError:
        return got, 'close_notify', time.monotonic() - t0
    except ssl.SSLEOFError:
        return got, 'EOF without close_notify', time.monotonic() - t0
    except ConnectionResetError:
        return got, 'RST', time.monotonic() - t0
    except socket.timeout:
        return got, 'open at %d s' % limit, time.monotonic() - t0
    except ssl.SSLError as e:
        return got, 'TLS error %s' % e.reason, time.monotonic() - t0


def h2_frames(b):
    out, off = [], 0
    while off + 9 <= len(b):
        ln = int.from_bytes(b[off:off + 3], 'big')
        typ, fl = b[off + 3], b[off + 4]
        sid = int.from_bytes(b[off + 5:off + 9], 'big') & 0x7fffffff
        p = b[off + 9:off + 9 + ln]
        d = 'type=%d fl=%#x sid=%d len=%d' % (typ, fl, sid, ln)
        if typ in (4, 7, 8):  # SETTINGS, GOAWAY, WINDOW_UPDATE: their payload too
            d += ' ' + p.hex()
        out.append(d)
        off += 9 + ln
    if off < len(b):
        out.append('+%d bytes' % (len(b) - off))
    return '\n'.join(out)


JUNK = random.Random(20261204).randbytes(1024)


def junk(port, alpn, h2):
    s = tls_conn(port, [alpn])
    s.sendall(JUNK)
    got, how, dt = read_to_close(s, 20)
    view = h2_frames(got) if h2 else norm_http(got.decode('latin-1'), port)
    return view + '\nend: ' + how, dt


def silence(port, alpn):
    s = tls_conn(port, [alpn] if alpn else None)
    got, how, dt = read_to_close(s, LONG_LIMIT)
    return (h2_frames(got) if alpn == 'h2' else repr(got)) + '\nend: ' + how, dt


def raw(port, data):
    s = socket.create_connection((HOST, port))
    if data:
        s.sendall(data)
    got, how, dt = read_to_close(s, LONG_LIMIT if not data or len(data) < 200 else 20)
    return got, how, dt


def records(b):
    """TLS records: type and length (lengths within 2 bytes are the same: an ECDSA
    signature's DER length varies 70-72)."""
    out, off = [], 0
    while off + 5 <= len(b):
        ln = int.from_bytes(b[off + 3:off + 5], 'big')
        out.append((b[off], ln))
        off += 5 + ln
    return out


def replay(port, flight):
    got, how, dt = raw(port, flight)
    return {'records': records(got), 'end': how}, dt


def half_hello(port):
    hello = bytes.fromhex('1603010200010001fc0303') + bytes(89)
    got, how, dt = raw(port, hello)
    return 'got %d bytes\nend: %s' % (len(got), how), dt


def silence_tcp(port):
    got, how, dt = raw(port, b'')
    return 'got %d bytes\nend: %s' % (len(got), how), dt


# ---- comparison ----------------------------------------------------------------------------

def same_view(a, b):
    if isinstance(a, dict):  # a replay: records with the signature's slack
        ra, rb = a['records'], b['records']
        return a['end'] == b['end'] and len(ra) == len(rb) and all(
            x[0] == y[0] and abs(x[1] - y[1]) <= 2 for x, y in zip(ra, rb))
    return a == b


def probes(args):
    flight = open(args['replay'], 'rb').read() if args.get('replay') else None
    p = {
        'curl h1 GET /': lambda port: curl(port, '--http1.1', '/'),
        'curl h2 GET /': lambda port: curl(port, '/'),
        'curl h2 GET /missing': lambda port: curl(port, '/missing'),
        'curl h1 POST hello path': lambda port: curl(port, '--http1.1', '--data-binary', 'x',
                                                     '/api/v1/events'),
        'curl h2 POST hello path': lambda port: curl(port, '--data-binary', 'x', '-H',
                                                     'content-type: application/octet-stream',
                                                     '/api/v1/events'),
        's_client no ALPN, no SNI': lambda port: s_client(port, None, None),
        's_client no ALPN, SNI': lambda port: s_client(port, None, 'localhost'),
        's_client ALPN http/1.1, SNI': lambda port: s_client(port, 'http/1.1', 'localhost'),
        's_client ALPN h2, no SNI': lambda port: s_client(port, 'h2', None),
        's_client ALPN h2, SNI': lambda port: s_client(port, 'h2', 'localhost'),
        '1 KiB random after handshake, h1': lambda port: junk(port, 'http/1.1', False),
        '1 KiB random after handshake, h2': lambda port: junk(port, 'h2', True),
    }
    if shutil.which('nghttp'):
        p['nghttp -nv'] = nghttp
    if flight:
        p['replayed Meshara client flight'] = lambda port: replay(port, flight)
    if args.get('long'):
        p['silence, TCP only'] = silence_tcp
        p['half a ClientHello, then silence'] = half_hello
        p['silence after handshake, h1'] = lambda port: silence(port, 'http/1.1')
        p['silence after handshake, h2'] = lambda port: silence(port, 'h2')
        p['silence after handshake, no ALPN'] = lambda port: silence(port, None)
    if args.get('only'):
        p = {k: v for k, v in p.items() if k in args['only']}
    return p


def record(listen_port, target_port, path):
    """Relay one connection from listen_port to target_port; save what the client sent."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((HOST, listen_port))
    ls.listen(1)
    print('recording', flush=True)
    c, _ = ls.accept()
    u = socket.create_connection((HOST, target_port))
    sent = bytearray()

    def pump(a, b, keep):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                if keep is not None:
                    keep.extend(d)
                b.sendall(d)
        except OSError:
            pass
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    t = threading.Thread(target=pump, args=(u, c, None))
    t.start()
    pump(c, u, sent)
    t.join(10)
    with open(path, 'wb') as f:
        f.write(bytes(sent))
    return 0


def main(argv):
    if len(argv) == 5 and argv[1] == 'record':
        return record(int(argv[2]), int(argv[3]), argv[4])
    if len(argv) < 3:
        print(__doc__)
        return 2
    args = {'nginx': int(argv[1]), 'node': int(argv[2])}
    i = 3
    while i < len(argv):
        if argv[i] == '--replay':
            args['replay'] = argv[i + 1]
            i += 1
        elif argv[i] == '--long':
            args['long'] = True
        elif argv[i] == '--only':
            args['only'] = argv[i + 1].split('|')
            i += 1
        i += 1
    todo = probes(args)
    res = {}

    def one(name, target):
        try:
            res[(name, target)] = todo[name](args[target])
        except Exception as e:  # a probe that breaks is a difference, not a crash
            res[(name, target)] = ('probe failed: %r' % e, 0.0)

    # Two waves, each all at once: the quick probes, then the replay and the silent ones. A
    # node keeps at most 8 pending handshakes per source address (docs/stealth.md, "Known
    # tells"): a ninth connection from 127.0.0.1 while silent ones wait would reset one.
    slow = [n for n in todo if n.startswith(('silence', 'half', 'replayed'))]
    for wave in ([n for n in todo if n not in slow], slow):
        threads = [threading.Thread(target=one, args=(n, t)) for n in wave for t in ('nginx', 'node')]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    bad = 0
    for name in todo:
        (va, ta), (vb, tb) = res[(name, 'nginx')], res[(name, 'node')]
        ok = same_view(va, vb) and abs(ta - tb) <= TIME_SLACK
        bad += not ok
        print('%-8s %-36s nginx %.2f s, node %.2f s' % ('same' if ok else 'DIFFERS', name, ta, tb))
        if not ok or os.environ.get('PROBE_VERBOSE'):
            for who, v in (('nginx', va), ('node', vb)):
                print('  --- %s:' % who)
                print('\n'.join('    ' + ln for ln in str(v).splitlines()))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
