#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/{http,native}); stdlib only.

    python3 tests/fuzz/make_corpus.py

http seeds: first byte = entry point (0 JSON request, 1 completions body, 2 chat body, 3 raw HTTP).
native seeds: first byte = read size, then length-prefixed ClientMessage frames (protobuf encoded
by hand below, field numbers from proto/sieve.proto).
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(kind, name, data):
    d = os.path.join(HERE, "corpus", kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- http ----
FULL = {"document": "A long document.", "query": "What?", "max_new_tokens": 8,
        "temperature": 0.5, "top_p": 0.9, "top_k": 3, "seed": 7, "stop": ["\n"],
        "force_continuation_ids": [1, 2], "explain": True, "stream": True,
        "deadline_seconds": 5, "request_id": "r1", "model": "tiny-llama3",
        "sieve": {"mode": "parallelcomp", "chunk_tokens": 64, "keep_chunks": 2,
                  "kv_capacity": 16, "kv_window": 4, "kv_pool": 3,
                  "calibration": {"layers": ["sink", "none"], "threshold": 0.1, "region": 10},
                  "scope": {"strategy": "adaptive", "b1": 4, "b2": 4, "T": 16}}}
write("http", "json_minimal", b"\x00" + b'{"document": "d", "query": "q"}')
write("http", "json_full", b"\x00" + json.dumps(FULL).encode())
write("http", "json_ids", b"\x00" + b'{"document_ids": [1, 2, 3], "query_ids": [4], "sieve": {"mode": "full"}}')
COMPLETIONS = {"model": "tiny-llama3", "prompt": "The document.", "query": "Q?", "max_tokens": 4,
               "stop": "x", "n": 1, "user": "u", "echo": False, "stream": True,
               "stream_options": {"include_usage": True}, "presence_penalty": 0,
               "logit_bias": {}}
write("http", "completions", b"\x01" + json.dumps(COMPLETIONS).encode())
write("http", "completions_ids", b"\x01" + b'{"prompt": [[1, 2, 3]], "query": "q", "seed": 1}')
CHAT = {"model": "tiny-llama3", "messages": [
    {"role": "system", "content": "sys"},
    {"role": "user", "content": [{"type": "text", "text": "part"}]},
    {"role": "assistant", "content": "a", "name": "n"},
    {"role": "user", "content": "question?"}], "max_completion_tokens": 3,
    "response_format": {"type": "text"}}
write("http", "chat", b"\x02" + json.dumps(CHAT).encode())


def http_request(method, target, body=b"", headers=()):
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"] + list(headers)
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


AUTH = ("Authorization: Bearer fuzz-key",)
write("http", "http_health", b"\x03" + http_request("GET", "/health"))
write("http", "http_models", b"\x03" + http_request("GET", "/v1/models", headers=AUTH))
write("http", "http_metrics_xkey", b"\x03" + http_request("GET", "/metrics?x=1", headers=("x-api-key: fuzz-key",)))
write("http", "http_completions", b"\x03" + http_request(
    "POST", "/v1/completions", json.dumps(COMPLETIONS).encode(),
    AUTH + ("Content-Type: application/json", "Expect: 100-continue")))
write("http", "http_chat", b"\x03" + http_request("POST", "/v1/chat/completions", json.dumps(CHAT).encode(), AUTH))
chunked = (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer fuzz-key\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n10\r\n{\"prompt\": \"d\", \r\n11\r\n\"query\": \"q\"}     \r\n0\r\n\r\n")
write("http", "http_chunked", b"\x03" + chunked)
write("http", "http_noauth", b"\x03" + http_request("POST", "/v1/completions", b'{"prompt":"d","query":"q"}'))


# ---- native ----
def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, wire, payload):
    key = varint((num << 3) | wire)
    if wire == 0:
        return key + varint(payload)
    if wire == 2:
        return key + varint(len(payload)) + payload
    if wire in (1, 5):  # fixed 64 / 32 bits
        return key + payload
    raise ValueError(wire)


def s(num, text):
    return field(num, 2, text.encode() if isinstance(text, str) else text)


def packed(num, ids):
    return field(num, 2, b"".join(varint(i) for i in ids))


def frame(msg):
    return struct.pack(">I", len(msg)) + msg


scope = field(1, 0, 1) + field(2, 0, 4) + field(3, 0, 4) + field(4, 0, 16)
calib = packed(1, [1, 0]) + field(2, 5, struct.pack("<f", 0.1)) + field(3, 0, 10)
sieve = field(1, 0, 0) + field(2, 0, 64) + field(3, 0, 2) + field(4, 0, 16) + field(5, 0, 4) + \
    field(6, 0, 3) + s(7, calib) + s(8, scope)
request = s(1, "r1") + s(2, "tiny-llama3") + s(3, "A document.") + s(5, "What?") + \
    field(7, 0, 8) + field(8, 5, struct.pack("<f", 0.5)) + field(9, 5, struct.pack("<f", 0.9)) + \
    field(10, 0, 3) + field(11, 0, 7) + s(12, "\n") + packed(13, [1, 2]) + field(14, 0, 1) + \
    s(15, sieve) + field(16, 0, 1) + field(17, 1, struct.pack("<d", 5.0))
submit = field(1, 0, 1) + s(2, "fuzz-key") + s(3, request)
ids_request = s(4, packed(1, [1, 2, 3])) + s(6, packed(1, [4]))
cancel = field(1, 0, 1) + s(4, s(1, "r1"))
write("native", "submit", b"\x07" + frame(submit))
write("native", "submit_ids", b"\x00" + frame(field(1, 0, 2) + s(3, ids_request)))
write("native", "submit_cancel", b"\x03" + frame(submit) + frame(cancel))
write("native", "cancel_by_tag", b"\x1f" + frame(field(1, 0, 5) + s(4, b"")))
write("native", "empty_frame", b"\x01" + frame(b""))
write("native", "garbage_frame", b"\x02" + frame(b"\xff\xff\xff\xff\x0f"))
write("native", "oversized", b"\x04" + b"\x7f\xff\xff\xff")
write("native", "truncated", b"\x05" + frame(submit)[:-3])
