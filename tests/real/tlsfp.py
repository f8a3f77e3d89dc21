#!/usr/bin/env python3
"""tlsfp.py — TLS fingerprints from a loopback pcap, computed from the captured bytes
(test_stealth_fp.sh's JA4/JA4S: tshark 4.0 has JA3/JA3S fields but no JA4).

JA3/JA3S (Salesforce), JA4/JA4S (FoxIO spec, technical_details/JA4.md and JA4S.md), plus
the raw fields behind them and each TCP connection's record layout (direction, content
type, length, time) and how it ended (FIN/RST, from which side, when).

usage: tlsfp.py PCAP [--json] [--records N]     tlsfp.py --selftest
Only classic pcap with Ethernet (tcpdump -i lo) or raw/Linux-cooked link types.
"""
import hashlib
import json
import struct
import sys

GREASE = {0x0a0a + 0x1010 * i for i in range(16)}


def is_grease(v):
    return v in GREASE


# ---- pcap and TCP ------------------------------------------------------------------------

def read_pcap(path):
    with open(path, 'rb') as f:
        data = f.read()
    magic = struct.unpack('<I', data[:4])[0]
    if magic in (0xa1b2c3d4, 0xa1b23c4d):
        e = '<'
    elif magic in (0xd4c3b2a1, 0x4d3cb2a1):
        e = '>'
    else:
        raise SystemExit('not a classic pcap file: %s' % path)
    nano = magic in (0xa1b23c4d, 0x4d3cb2a1)
    linktype = struct.unpack(e + 'I', data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack(e + 'IIII', data[off:off + 16])
        off += 16
        pkt = data[off:off + caplen]
        off += caplen
        yield sec + frac / (1e9 if nano else 1e6), linktype, pkt


def ip_payload(linktype, pkt):
    if linktype == 1:  # Ethernet
        etype = struct.unpack('>H', pkt[12:14])[0]
        return pkt[14:] if etype == 0x0800 else None
    if linktype == 113:  # Linux cooked
        return pkt[16:] if struct.unpack('>H', pkt[14:16])[0] == 0x0800 else None
    if linktype in (101, 12):  # raw IP
        return pkt
    return None


def tcp_segments(path):
    """(time, src, dst, seq, flags, payload) for each IPv4 TCP segment."""
    for ts, lt, pkt in read_pcap(path):
        ip = ip_payload(lt, pkt)
        if not ip or ip[0] >> 4 != 4 or ip[9] != 6:
            continue
        ihl = (ip[0] & 15) * 4
        tot = struct.unpack('>H', ip[2:4])[0]
        tcp = ip[ihl:tot]
        sp, dp, seq = struct.unpack('>HHI', tcp[:8])
        doff = (tcp[12] >> 4) * 4
        flags = tcp[13]
        src = '%d.%d.%d.%d:%d' % (*ip[12:16], sp)
        dst = '%d.%d.%d.%d:%d' % (*ip[16:20], dp)
        yield ts, src, dst, seq, flags, tcp[doff:]


class Conn:
    def __init__(self, client, server, t0):
        self.client, self.server, self.t0 = client, server, t0
        self.data = {'c': bytearray(), 's': bytearray()}
        self.next_seq = {}
        self.chunks = {'c': [], 's': []}  # (stream offset, time) of each segment's first byte
        self.end = []  # (time, side, 'FIN'|'RST')


def connections(path):
    conns, order = {}, []
    for ts, src, dst, seq, flags, pay in tcp_segments(path):
        syn, fin, rst, ack = flags & 2, flags & 1, flags & 4, flags & 16
        key = tuple(sorted((src, dst)))
        c = conns.get(key)
        if syn and not ack and (c is None or c.end):
            c = conns[key] = Conn(src, dst, ts)
            order.append(c)
        if c is None:
            continue
        side = 'c' if src == c.client else 's'
        if syn:
            c.next_seq[side] = (seq + 1) & 0xffffffff
            continue
        if pay and side in c.next_seq:
            rel = (seq - c.next_seq[side]) & 0xffffffff
            have = len(c.data[side])
            if rel <= have < rel + len(pay):  # in order (loopback: no loss); skip retransmits
                c.chunks[side].append((have, ts))
                c.data[side] += pay[have - rel:]
        if fin:
            c.end.append((ts, side, 'FIN'))
        if rst:
            c.end.append((ts, side, 'RST'))
    return order


def records(buf):
    """TLS records (type, version, length, offset) in a byte stream, as far as they parse."""
    out, off = [], 0
    while off + 5 <= len(buf):
        typ, ver, ln = buf[off], struct.unpack('>H', buf[off + 1:off + 3])[0], struct.unpack(
            '>H', buf[off + 3:off + 5])[0]
        if typ not in (20, 21, 22, 23) or ver >> 8 != 3:
            out.append(('non-TLS', 0, len(buf) - off, off))
            break
        out.append((typ, ver, ln, off))
        off += 5 + ln
    return out


def time_at(chunks, off):
    t = None
    for o, ts in chunks:
        if o <= off:
            t = ts
    return t


# ---- hello parsing --------------------------------------------------------------------------

def u16s(b):
    return [struct.unpack('>H', b[i:i + 2])[0] for i in range(0, len(b) - 1, 2)]


def first_handshake(stream, want):
    """The body of the first handshake message of type want, reassembled from handshake
    records at the start of stream."""
    hs = bytearray()
    for typ, _, ln, off in records(stream):
        if typ != 22:
            break
        hs += stream[off + 5:off + 5 + ln]
        if len(hs) >= 4 and len(hs) >= 4 + int.from_bytes(hs[1:4], 'big'):
            break
    if len(hs) < 4 or hs[0] != want:
        return None
    return bytes(hs[4:4 + int.from_bytes(hs[1:4], 'big')])


def parse_exts(b):
    exts, off = [], 0
    while off + 4 <= len(b):
        t, ln = struct.unpack('>HH', b[off:off + 4])
        exts.append((t, b[off + 4:off + 4 + ln]))
        off += 4 + ln
    return exts


def parse_hello_head(body):
    """Both hellos: version, random, session id; returns the fields and where they end."""
    h = {'legacy_version': struct.unpack('>H', body[:2])[0]}
    off = 2 + 32
    h['session_id_len'] = body[off]
    return h, off + 1 + body[off]


def parse_client_hello(body):
    h, off = parse_hello_head(body)
    cs_len = struct.unpack('>H', body[off:off + 2])[0]
    h['ciphers'] = u16s(body[off + 2:off + 2 + cs_len])
    off += 2 + cs_len
    comp_len = body[off]
    h['compression'] = list(body[off + 1:off + 1 + comp_len])
    off += 1 + comp_len
    h['exts'] = parse_exts(body[off + 2:]) if off + 2 <= len(body) else []
    h['handshake_len'] = len(body)  # body, as tshark's tls.handshake.length
    d = dict(h['exts'])
    h['ext_types'] = [t for t, _ in h['exts']]
    h['ext_lens'] = [len(v) for _, v in h['exts']]
    h['sni'] = d[0][5:].decode('ascii', 'replace') if 0 in d and len(d[0]) > 5 else None
    h['alpn'] = []
    if 16 in d:
        a, i = d[16][2:], 0
        while i < len(a):
            h['alpn'].append(a[i + 1:i + 1 + a[i]].decode('latin-1'))
            i += 1 + a[i]
    h['groups'] = u16s(d[10][2:]) if 10 in d else []
    h['point_formats'] = list(d[11][1:]) if 11 in d else []
    h['sigalgs'] = u16s(d[13][2:]) if 13 in d else []
    h['versions'] = u16s(d[43][1:]) if 43 in d else []
    h['psk_modes'] = list(d[45][1:]) if 45 in d else []
    ks, i = [], 2
    if 51 in d:
        while i + 4 <= len(d[51]):
            g, ln = struct.unpack('>HH', d[51][i:i + 4])
            ks.append((g, ln))
            i += 4 + ln
    h['key_share'] = ks
    h['padding_len'] = len(d[21]) if 21 in d else None
    h['status_request'] = d[5].hex() if 5 in d else None
    h['compress_certificate'] = u16s(d[27][1:]) if 27 in d else None
    h['record_size_limit'] = struct.unpack('>H', d[28])[0] if 28 in d else None
    return h


def parse_server_hello(body):
    h, off = parse_hello_head(body)
    h['cipher'] = struct.unpack('>H', body[off:off + 2])[0]
    h['compression'] = body[off + 2]
    h['exts'] = parse_exts(body[off + 5:])
    h['ext_types'] = [t for t, _ in h['exts']]
    d = dict(h['exts'])
    h['version'] = struct.unpack('>H', d[43])[0] if 43 in d and len(d[43]) == 2 else None
    h['key_share_group'] = struct.unpack('>H', d[51][:2])[0] if 51 in d else None
    h['alpn'] = d[16][3:3 + d[16][2]].decode('latin-1') if 16 in d else None
    h['handshake_len'] = len(body)  # body, as tshark's tls.handshake.length
    return h


# ---- fingerprints ---------------------------------------------------------------------------

def ja3(h):
    ng = lambda xs: [x for x in xs if not is_grease(x)]
    s = '%d,%s,%s,%s,%s' % (h['legacy_version'], '-'.join(map(str, ng(h['ciphers']))),
                            '-'.join(map(str, ng(h['ext_types']))),
                            '-'.join(map(str, ng(h['groups']))),
                            '-'.join(map(str, h['point_formats'])))
    return s, hashlib.md5(s.encode()).hexdigest()


def ja3s(h):
    s = '%d,%d,%s' % (h['legacy_version'], h['cipher'], '-'.join(map(str, h['ext_types'])))
    return s, hashlib.md5(s.encode()).hexdigest()


VERSIONS = {0x0304: '13', 0x0303: '12', 0x0302: '11', 0x0301: '10', 0x0300: 's3',
            0x0002: 's2', 0xfeff: 'd1', 0xfefd: 'd2', 0xfefc: 'd3'}


def sha12(s):
    return hashlib.sha256(s.encode()).hexdigest()[:12]


def alpn_chars(v):
    if not v:
        return '00'
    b = v.encode('latin-1')
    isan = lambda c: 0x30 <= c <= 0x39 or 0x41 <= c <= 0x5a or 0x61 <= c <= 0x7a
    if not isan(b[0]) or not isan(b[-1]):
        x = b.hex()
        return x[0] + x[-1]
    return chr(b[0]) + chr(b[-1])


def ja4_parts(ciphers, exts, sigalgs, version, sni, alpn_first):
    """(ja4, ja4_r, ja4_o, ja4_ro) from already GREASE-free lists."""
    ver = VERSIONS.get(version, '00')
    a = 't%s%s%02d%02d%s' % (ver, 'd' if sni else 'i', min(len(ciphers), 99),
                             min(len(exts), 99), alpn_chars(alpn_first))
    hx = lambda xs: ','.join('%04x' % x for x in xs)
    cs = hx(sorted(ciphers))
    es = hx(sorted(e for e in exts if e not in (0, 16)))
    sa = hx(sigalgs)
    b = sha12(cs) if ciphers else '000000000000'
    c_raw = es + ('_' + sa if sigalgs else '')
    c = sha12(c_raw) if es else '000000000000'
    ro_c = hx(exts) + ('_' + sa if sigalgs else '')
    return ('%s_%s_%s' % (a, b, c), '%s_%s_%s' % (a, cs, c_raw),
            '%s_%s_%s' % (a, sha12(hx(ciphers)), sha12(ro_c)),
            '%s_%s_%s' % (a, hx(ciphers), ro_c))


def ja4(h):
    ng = lambda xs: [x for x in xs if not is_grease(x)]
    vs = ng(h['versions'])
    version = max(vs) if vs else h['legacy_version']
    return ja4_parts(ng(h['ciphers']), ng(h['ext_types']), ng(h['sigalgs']), version,
                     0 in h['ext_types'], h['alpn'][0] if h['alpn'] else None)


def ja4s(h):
    version = h['version'] or h['legacy_version']
    exts = h['ext_types']
    a = 't%s%02d%s' % (VERSIONS.get(version, '00'), min(len(exts), 99), alpn_chars(h['alpn']))
    raw = ','.join('%04x' % e for e in exts)
    return '%s_%04x_%s' % (a, h['cipher'], sha12(raw)), '%s_%04x_%s' % (a, h['cipher'], raw)


# ---- report ---------------------------------------------------------------------------------

TYPES = {20: 'CCS', 21: 'alert', 22: 'handshake', 23: 'appdata'}


def analyse(path, nrec):
    out = []
    for c in connections(path):
        r = {'client': c.client, 'server': c.server}
        ch = first_handshake(bytes(c.data['c']), 1)
        if ch:
            h = parse_client_hello(ch)
            rec0 = records(bytes(c.data['c']))[0]
            r['client_hello'] = {k: v for k, v in h.items() if k != 'exts'}
            r['client_hello']['record_len'] = rec0[2]
            r['client_hello']['record_version'] = '%04x' % rec0[1]
            r['ja3'], r['ja3_md5'] = ja3(h)
            r['ja4'], r['ja4_r'], r['ja4_o'], r['ja4_ro'] = ja4(h)
        sh = first_handshake(bytes(c.data['s']), 2)
        if sh:
            h = parse_server_hello(sh)
            r['server_hello'] = {k: v for k, v in h.items() if k != 'exts'}
            r['ja3s'], r['ja3s_md5'] = ja3s(h)
            r['ja4s'], r['ja4s_r'] = ja4s(h)
        recs = []
        for side in ('c', 's'):
            for typ, _, ln, off in records(bytes(c.data[side])):
                t = time_at(c.chunks[side], off)
                recs.append((t if t is not None else 0, side, TYPES.get(typ, typ), ln))
        recs.sort(key=lambda x: x[0])
        r['records'] = [('%.3f' % (t - c.t0), '%s>' % ('C' if s == 'c' else 'S'), ty, ln)
                        for t, s, ty, ln in recs[:nrec]]
        r['bytes'] = {'c': len(c.data['c']), 's': len(c.data['s'])}
        r['end'] = [('%.3f' % (t - c.t0), 'C' if s == 'c' else 'S', k) for t, s, k in c.end]
        out.append(r)
    return out


def selftest():
    # Published values in FoxIO's JA4.md / JA4S.md.
    cs = [0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
          0xc014, 0x009c, 0x009d, 0x002f, 0x0035]
    ex = [0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023,
          0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015]
    sa = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]
    j = ja4_parts(cs, ex, sa, 0x0304, True, 'h2')
    ok = [j[0] == 't13d1516h2_8daaf6152771_e5627efa2ab1',
          j[2] == 't13d1516h2_acb858a92679_18f69afefd3d',
          ja4_parts(cs, ex, [], 0x0304, True, 'h2')[0].endswith('_6d807ffa2a79')]
    s = ja4s({'version': None, 'legacy_version': 0x0303, 'ext_types': [5, 0x17, 0xff01, 0],
              'alpn': None, 'cipher': 0xc030})
    ok.append(s[0] == 't120400_c030_4e8089b08790')
    for name, v in zip(('ja4', 'ja4_o', 'ja4 no sigalgs', 'ja4s'), ok):
        print('%-15s %s' % (name, 'ok' if v else 'MISMATCH'))
    print('ja4 example ->', j[0])
    return all(ok)


def main():
    args = sys.argv[1:]
    if args[:1] == ['--selftest']:
        sys.exit(0 if selftest() else 1)
    nrec = int(args[args.index('--records') + 1]) if '--records' in args else 30
    res = analyse(args[0], nrec)
    if '--json' in args:
        print(json.dumps(res, indent=1))
        return
    for r in res:
        print('== %s -> %s  bytes C>%d S>%d  end %s' % (r['client'], r['server'], r['bytes']['c'],
                                                      r['bytes']['s'], r['end']))
        for k in ('ja3_md5', 'ja3', 'ja4', 'ja4_r', 'ja4_ro', 'ja3s_md5', 'ja3s', 'ja4s',
                  'ja4s_r'):
            if k in r:
                print('  %-7s %s' % (k, r[k]))
        if 'client_hello' in r:
            h = r['client_hello']
            hx = lambda xs: ','.join('%04x' % x for x in xs)
            print('  CH record %d (+5 header) handshake body %d, record version %s, session_id %d, sni %s'
                  % (h['record_len'], h['handshake_len'], h['record_version'],
                     h['session_id_len'], h['sni']))
            print('  CH exts(len) %s' % ' '.join('%d(%d)' % x for x in zip(h['ext_types'],
                                                                          h['ext_lens'])))
            print('  CH alpn %s groups %s' % (h['alpn'], hx(h['groups'])))
            print('  CH versions %s key_share %s psk_modes %s padding %s status_request %s '
                  'compress_cert %s' % (hx(h['versions']), ['%04x/%d' % k for k in h['key_share']],
                                        h['psk_modes'], h['padding_len'], h['status_request'],
                                        h['compress_certificate']))
            print('  CH sigalgs %s' % hx(h['sigalgs']))
        if 'server_hello' in r:
            h = r['server_hello']
            print('  SH handshake %d session_id %d cipher %04x exts %s version %s group %s' % (
                h['handshake_len'], h['session_id_len'], h['cipher'], h['ext_types'],
                h['version'] and '%04x' % h['version'], h['key_share_group'] and
                '%04x' % h['key_share_group']))
        print('  records: ' + ' '.join('%s%s%s:%d' % (t, d, ty, ln) for t, d, ty, ln in
                                       r['records']))


if __name__ == '__main__':
    main()
