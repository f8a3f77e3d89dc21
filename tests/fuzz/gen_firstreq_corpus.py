#!/usr/bin/env python3
"""gen_firstreq_corpus.py — writes tests/fuzz/corpus/fuzz_firstreq/: first flights a web server
sees after its TLS handshake. A Meshara-shaped flight (preface, SETTINGS, WINDOW_UPDATE, the
hello request with a padded hello envelope as body, the way meshara-node's web client sends
it), its halves and variants with one thing wrong, and what other clients send (curl's h2 GET,
HTTP/1.1, garbage). HPACK as literals without indexing (RFC 7541 §6.2.2)."""
import os
import struct
import sys

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(typ, flags, sid, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([typ, flags]) + struct.pack(">I", sid) + payload


def lit(name, value):
    def s(b):
        assert len(b) < 127
        return bytes([len(b)]) + b
    return b"\x00" + s(name.encode()) + s(value.encode())


def headers(fields):
    return b"".join(lit(n, v) for n, v in fields)


def hello_body():
    hello = b"\x08\x01" + b"\x12\x20" + bytes(range(32)) + b"\x18\x01" + b"\x22\x40" + bytes(64)
    env = b"\x08\x01" + b"\x52" + bytes([len(hello)]) + hello
    blk = struct.pack(">I", len(env)) + env
    return blk + bytes(256 - len(blk))


SETTINGS = frame(4, 0, 0, struct.pack(">HI", 3, 100) + struct.pack(">HI", 4, 33554432) + struct.pack(">HI", 2, 0))
WU = frame(8, 0, 0, struct.pack(">I", 33488897))
BODY = hello_body()
REQ = [(":method", "POST"), (":path", "/api/v1/events"), (":scheme", "https"), (":authority", "localhost"),
       ("user-agent", "curl/7.88.1"), ("accept", "*/*"), ("content-type", "application/octet-stream"),
       ("content-length", str(len(BODY)))]
HEADERS = frame(1, 4, 1, headers(REQ))
DATA = frame(0, 1, 1, BODY)
HELLO = PREFACE + SETTINGS + WU + HEADERS + DATA

seeds = {
    "hello": HELLO,
    "hello_two_data": PREFACE + SETTINGS + WU + HEADERS + frame(0, 0, 1, BODY[:100]) + frame(0, 1, 1, BODY[100:]),
    "hello_half": HELLO[: len(HELLO) // 2],
    "hello_padded_data": PREFACE + SETTINGS + HEADERS + frame(0, 9, 1, b"\x05" + BODY + bytes(5)),
    "hello_ping_between": PREFACE + SETTINGS + frame(6, 0, 0, bytes(8)) + HEADERS + DATA,
    "hello_continuation": PREFACE + SETTINGS + frame(1, 0, 1, headers(REQ)[:20]) + frame(9, 4, 1, headers(REQ)[20:]) + DATA,
    "hello_stream3": PREFACE + SETTINGS + frame(1, 4, 3, headers(REQ)) + frame(0, 1, 3, BODY),
    "hello_bad_length": PREFACE + SETTINGS + frame(1, 4, 1, headers(REQ[:-1] + [("content-length", "7")])) + DATA,
    "curl_get": PREFACE + SETTINGS + WU + frame(1, 5, 1, headers([(":method", "GET"), (":path", "/"), (":scheme", "https"),
                                                                  (":authority", "localhost"), ("user-agent", "curl/7.88.1"), ("accept", "*/*")])),
    "http11_get": b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
    "garbage": bytes((i * 151 + 7) & 0xFF for i in range(1024)),
    "preface_only": PREFACE,
    "settings_push2": PREFACE + frame(4, 0, 0, struct.pack(">HI", 2, 2)),
}

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "fuzz_firstreq")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
