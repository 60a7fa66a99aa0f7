#!/usr/bin/env python3
"""End-to-end test of sieve-node's service mode; run by tests/cli/service_test.sh (see there).

    python3 tests/cli/service_test.py BUILD_DIR FIXTURES_DIR TMPDIR

Four services, each `mpirun ... sieve-node --serve` on kernel-chosen loopback ports:
  main    -np 3, API key, small limits (timeouts 2 s, 40 connections, 1 MiB bodies, 5000-token
          documents, 4 MiB KV budget per rank, 4 in flight, 12 queued, decode batch 8): answers vs
          sieve-run through every client, bad input, auth, timeouts, connection limit, cancel on
          disconnect, admission, the load test, then graceful SIGTERM
  batch1  -np 3, --max-decode-batch 1: the batching comparison, then SIGINT with a 1 s grace
  batch16 -np 3, defaults: the other side of the batching comparison, and a request aborted
          (deadline) while its work order waits behind a long prefill: the worker skips it
  local   -np 1 (LocalEngine): answers vs sieve-run, a bad request, SIGTERM
Prints one line per check and exits 1 at the first failure (the service logs are printed).
"""
import concurrent.futures
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import service_util as su  # noqa: E402

BUILD, FIXTURES, TMP = sys.argv[1:4]
NODE = os.path.join(BUILD, "tools", "sieve-node")
CLIENT = os.path.join(BUILD, "tools", "sieve-client")
RUN = os.path.join(BUILD, "tools", "sieve-run")
MODEL = os.path.join(FIXTURES, "tiny-llama3")
API_KEY = "test-key-0123456789"
KEY_FILE = os.path.join(TMP, "api.key")
with open(KEY_FILE, "w") as f:
    f.write(API_KEY + "\n")
AUTH = {"Authorization": f"Bearer {API_KEY}"}

checks = 0
services = []
T0 = time.monotonic()


def ok(what):
    global checks
    checks += 1
    print(f"ok   {what}", flush=True)


def section(title):
    print(f"=== [{time.monotonic() - T0:5.1f} s] {title}", flush=True)


def fail(what):
    print(f"FAIL: {what}", flush=True)
    for s in services:
        print(f"---- {s.name} log (last 4000 bytes) ----\n{s.log_text()[-4000:]}", flush=True)
        s.kill()
    sys.exit(1)


def expect(cond, what, detail=""):
    if not cond:
        fail(f"{what}{': ' + str(detail)[:2000] if detail else ''}")
    ok(what)


# ---- requests and sieve-run's answers ----------------------------------------------------------

FACTS = ["The river Arno is {n} km long.", "Room {n} holds the archive of maps.",
         "The pass key is {n}{n}{n}.", "Lamp number {n} is broken.",
         "The baker sold {n} loaves on Tuesday.", "Train {n} leaves at dawn."]
DOC = " ".join(FACTS[i % len(FACTS)].format(n=i) for i in range(160))
QUERY = "How long is the river Arno?"
SIEVE = {"chunk_tokens": 300, "keep_chunks": 2}
R1 = {"document": DOC, "query": QUERY, "max_new_tokens": 16, "sieve": SIEVE}
LOAD_DOCS = [" ".join(FACTS[(i + k) % len(FACTS)].format(n=i * 7 + k) for i in range(12))
             for k in range(4)]
LOAD_SIEVE = {"chunk_tokens": 64, "keep_chunks": 2}


def load_request(k):
    return {"document": LOAD_DOCS[k], "query": "Which lamp is broken?", "max_new_tokens": 4,
            "sieve": LOAD_SIEVE}


def sieve_run(request):
    path = os.path.join(TMP, f"req-{abs(hash(json.dumps(request, sort_keys=True)))}.json")
    with open(path, "w") as f:
        json.dump(request, f)
    p = subprocess.run([RUN, "--model", MODEL, "--device", "cpu", "--request", path],
                       capture_output=True, timeout=120)
    if p.returncode != 0:
        fail(f"sieve-run exit {p.returncode}: {p.stdout[:500]} {p.stderr[-500:]}")
    return json.loads(p.stdout)


section("sieve-run references")
with concurrent.futures.ThreadPoolExecutor(2) as pool:
    refs = list(pool.map(sieve_run, [R1] + [load_request(k) for k in range(4)]))
REF, LOAD_REFS = refs[0], refs[1:]
expect(len(REF["generated_ids"]) == 16 and REF["accounting"]["document_tokens"] > 1000,
       f"reference: {REF['accounting']['document_tokens']} document tokens, 16 generated, "
       f"kept chunks {REF['accounting']['kept_chunks']}")
DOC_FILE = os.path.join(TMP, "doc.txt")
with open(DOC_FILE, "w") as f:
    f.write(DOC)


def same_answer(label, got):
    expect(got.get("generated_ids") == REF["generated_ids"] and got.get("text") == REF["text"],
           f"{label}: generated ids and text equal sieve-run's",
           f"got {got.get('generated_ids')} {got.get('text')!r}, want {REF['generated_ids']}")


def client(*args, timeout=120):
    p = subprocess.run([CLIENT, *args], capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def curl(port, path, body, *extra, timeout=120):
    p = subprocess.run(["curl", "-sS", "-N", "--max-time", str(timeout), "-H",
                        f"Authorization: Bearer {API_KEY}", "-H", "Content-Type: application/json",
                        "--data-binary", "@-", *extra, f"http://127.0.0.1:{port}{path}"],
                       input=json.dumps(body).encode(), capture_output=True, timeout=timeout + 10)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def metric(svc, name):
    status, _, body = su.http_request(svc.http_host, svc.http_port, "GET", "/metrics",
                                      headers=AUTH)
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def health_ok(svc):
    status, _, body = su.http_json(svc.http_host, svc.http_port, "GET", "/health", timeout=10)
    return status == 200 and body.get("status") == "ok"


def wait_for_log(svc, pattern, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, svc.log_text())
        if m:
            return m
        time.sleep(0.1)
    return None


# ---- the main service --------------------------------------------------------------------------

section("main service: mpirun -np 3")
main = su.Service(NODE, MODEL, TMP, np=3, name="main", api_key=API_KEY, args=[
    "--api-key-file", KEY_FILE, "--max-in-flight", "4", "--max-queued", "12",
    "--max-decode-batch", "8", "--read-timeout-s", "2", "--write-timeout-s", "2",
    "--max-connections", "40", "--max-body-mb", "1", "--max-prompt-tokens", "5000",
    "--kv-budget-mb", "4", "--grace-s", "20", "--send-buffer-kb", "4"])
services.append(main)
try:
    main.start()
except RuntimeError as e:
    fail(str(e))
H, P, NP_ = main.http_host, main.http_port, main.native_port
expect(H == "127.0.0.1" and main.ready["ranks"] == 3, f"main serving on {main.ready['http']} "
       f"(native {main.ready['native']}) in {time.monotonic() - T0:.1f} s")
expect(health_ok(main), "GET /health 200 without the API key")
status, _, models = su.http_json(H, P, "GET", "/v1/models", headers=AUTH)
expect(status == 200 and models["data"][0]["id"] == "tiny-llama3", "GET /v1/models names the model")

section("answers equal sieve-run's")
code, out, err = client("--port", str(P), "--document", DOC_FILE, "--query", QUERY,
                        "--max-new-tokens", "16", "--chunk-tokens", "300", "--keep-chunks", "2",
                        "--api-key-file", KEY_FILE, "--json")
expect(code == 0, "sieve-client (HTTP) exit 0", err)
same_answer("sieve-client HTTP --json", json.loads(out))
code, out, err = client("--native", "--port", str(NP_), "--document", DOC_FILE, "--query", QUERY,
                        "--max-new-tokens", "16", "--chunk-tokens", "300", "--keep-chunks", "2",
                        "--api-key-file", KEY_FILE, "--json")
expect(code == 0, "sieve-client (native) exit 0", err)
same_answer("sieve-client native --json", json.loads(out))
expect("prefill:" in err and "accepted as" in err, "sieve-client shows acceptance and prefill "
       "progress on stderr", err)
p = subprocess.run([CLIENT, "--url", f"http://127.0.0.1:{P}", "--document", "-", "--query", QUERY,
                    "--max-new-tokens", "16", "--chunk-tokens", "300", "--keep-chunks", "2",
                    "--api-key-file", KEY_FILE], input=DOC.encode(), capture_output=True,
                   timeout=120)
out = p.stdout.decode()
expect(p.returncode == 0 and out.startswith(REF["text"]) and "KV cache" in out and
       "first token" in out, "sieve-client streams the answer (document from stdin), then the "
       "accounting table", out)

code, out, err = curl(P, "/v1/completions", {"prompt": DOC, "query": QUERY, "max_tokens": 16,
                                              "sieve": SIEVE})
body = json.loads(out)
expect(code == 0 and body["object"] == "text_completion" and
       body["choices"][0]["text"] == REF["text"] and
       body["usage"]["completion_tokens"] == 16, "curl /v1/completions: the text equals "
       "sieve-run's", out[:300])
same_answer("curl /v1/completions (sieve member)", body["sieve"])

code, out, err = curl(P, "/v1/completions", {"prompt": DOC, "query": QUERY, "max_tokens": 16,
                                              "sieve": SIEVE, "stream": True,
                                              "stream_options": {"include_usage": True}})
events = su.sse_events(out)
datas = [e[1] for e in events if e[0] == "data"]
chunks = [json.loads(d) for d in datas[:-1]]
text = "".join(c["choices"][0]["text"] for c in chunks if c["choices"])
expect(datas[-1] == "[DONE]" and text == REF["text"], "curl streaming /v1/completions: the "
       "chunks concatenate to sieve-run's text, then [DONE]", out[-500:])
final = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]][0]
same_answer("curl streaming (final chunk's sieve member)", final["sieve"])
expect(chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 16,
       "stream_options.include_usage adds a usage chunk")
expect(any(e[0] == "comment" and e[1].startswith("progress ") for e in events),
       "the stream carries prefill progress as SSE comments")

chat = {"model": "tiny-llama3", "messages": [{"role": "user", "content": DOC},
                                              {"role": "user", "content": QUERY}],
        "max_tokens": 16, "sieve": SIEVE}
code, out, err = curl(P, "/v1/chat/completions", chat)
body = json.loads(out)
expect(body["object"] == "chat.completion" and
       body["choices"][0]["message"]["content"] == REF["text"],
       "curl /v1/chat/completions: earlier messages are the document, the last the query", out[:300])
code, out, err = curl(P, "/v1/chat/completions", dict(chat, stream=True))
chunks = [json.loads(d) for k, d in su.sse_events(out) if k == "data" and d != "[DONE]"]
text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
expect(chunks[0]["choices"][0]["delta"].get("role") == "assistant" and text == REF["text"],
       "curl streaming chat: role chunk, then deltas equal to sieve-run's text")

# ---- bad input: each gets its code and names the field; the service keeps serving --------------

section("bad input")


def bad(label, body, want_status, want_code, fragment, path="/v1/completions", headers=None):
    hdrs = dict(AUTH)
    hdrs.update(headers or {})
    status, _, data = su.http_request(H, P, "POST", path, body=body, headers=hdrs)
    try:
        err = json.loads(data)["error"]
    except (ValueError, KeyError, TypeError):
        fail(f"{label}: no JSON error body: {status} {data[:300]!r}")
    good = (status == want_status and err["code"] == want_code and fragment in err["message"])
    expect(good and health_ok(main), f"{label}: {status} {err['code']} \"{err['message'][:90]}\"; "
           "/health still OK", f"{status} {err}")


bad("invalid JSON", b'{"prompt": "d", "query": ', 400, "INVALID_ARGUMENT", "invalid JSON at byte")
bad("not an object", b'[1, 2]', 400, "INVALID_ARGUMENT", "expected a JSON object")
bad("wrong type", {"prompt": "d", "query": "q", "max_tokens": "16"}, 400, "INVALID_ARGUMENT",
    "max_tokens: expected an integer, got a string")
bad("wrong type (nested)", {"prompt": "d", "query": "q", "sieve": {"keep_chunks": [1]}}, 400,
    "INVALID_ARGUMENT", "sieve.keep_chunks: expected an integer, got an array")
bad("unknown field", {"prompt": "d", "query": "q", "frobnicate": 1}, 400, "INVALID_ARGUMENT",
    "unknown field 'frobnicate'")
bad("unknown nested field", {"prompt": "d", "query": "q", "sieve": {"scope": {"b3": 1}}}, 400,
    "INVALID_ARGUMENT", "unknown field 'sieve.scope.b3'")
bad("missing query", {"prompt": "d"}, 400, "INVALID_ARGUMENT", "query: required")
bad("empty document", {"prompt": "", "query": "q"}, 400, "INVALID_ARGUMENT", "prompt: empty")
bad("empty document (sieve-run field)", {"document": "", "query": "q"}, 400, "INVALID_ARGUMENT",
    "document: empty")
bad("chat without a document", {"messages": [{"role": "user", "content": "q"}]}, 400,
    "INVALID_ARGUMENT", "messages: no document", path="/v1/chat/completions")
bad("invalid UTF-8", b'{"prompt": "caf\xc3\x28", "query": "q"}', 400, "INVALID_ARGUMENT",
    "invalid UTF-8 in JSON at byte")
bad("number out of range", {"prompt": "d", "query": "q", "max_tokens": 0}, 400,
    "INVALID_ARGUMENT", "max_tokens: must be an integer in [1, 32768]")
bad("number out of range (nested)", {"prompt": "d", "query": "q", "sieve": {"kv_pool": 6}}, 400,
    "INVALID_ARGUMENT", "sieve.kv_pool: must be odd, got 6")
bad("number out of range (float)", {"prompt": "d", "query": "q", "top_p": 1.5}, 400,
    "INVALID_ARGUMENT", "top_p: must be in (0, 1]")
bad("unknown model", {"prompt": "d", "query": "q", "model": "gpt-4"}, 404, "NOT_FOUND",
    "model: 'gpt-4' is not served here (this service runs 'tiny-llama3')")
bad("n != 1", {"prompt": "d", "query": "q", "n": 3}, 400, "INVALID_ARGUMENT", "n: only 1")
bad("document over the token limit", {"prompt": "word " * 6000, "query": "q"}, 413,
    "PAYLOAD_TOO_LARGE", "tokens exceed the limit of 5000")
bad("KV cache over the budget", {"prompt": "d", "query": "q", "max_tokens": 20000,
                                  "sieve": {"scope": {"strategy": "off"}}}, 429,
    "RESOURCE_EXHAUSTED", "KV cache: the request needs ~")
status, _, data = su.http_request(H, P, "GET", "/v2/models", headers=AUTH)
expect(status == 404 and b"no such endpoint" in data, "unknown path: 404")
status, hdrs, data = su.http_request(H, P, "GET", "/v1/completions", headers=AUTH)
expect(status == 405 and hdrs.get("allow") == "POST", "wrong method: 405 with Allow: POST")

# A body over 1 MiB: refused from its Content-Length before the body is read (curl waits for
# the 100-continue that never comes, and gets the 413 instead).
big = {"prompt": "x" * (1100 * 1024), "query": "q"}
code, out, err = curl(P, "/v1/completions", big, "-w", "\n%{http_code}")
expect(out.rstrip().endswith("413") and "PAYLOAD_TOO_LARGE" in out and health_ok(main),
       "a 1.1 MiB body: 413 PAYLOAD_TOO_LARGE before the body is read; /health OK", out[-300:])

section("API key")
status, hdrs, data = su.http_request(H, P, "POST", "/v1/completions",
                                     body={"prompt": "d", "query": "q"})
expect(status == 401 and hdrs.get("www-authenticate") == "Bearer" and b"missing API key" in data,
       "no key: 401 with WWW-Authenticate: Bearer")
status, _, data = su.http_request(H, P, "GET", "/metrics",
                                  headers={"Authorization": "Bearer test-key-0123456788"})
expect(status == 401 and b"invalid API key" in data, "wrong key (one character off): 401")
status, _, _ = su.http_request(H, P, "GET", "/v1/models", headers={"x-api-key": API_KEY})
expect(status == 200, "x-api-key header accepted")
wrong_key = os.path.join(TMP, "wrong.key")
with open(wrong_key, "w") as f:
    f.write("nope\n")
code, out, err = client("--port", str(P), "--document", DOC_FILE, "--query", "q",
                        "--api-key-file", wrong_key)
expect(code == 3 and "401" in err, "sieve-client with a wrong key: exit 3 (authentication)", err)
code, out, err = client("--native", "--port", str(NP_), "--document", DOC_FILE, "--query", "q")
expect(code == 3 and "UNAUTHENTICATED" in err, "sieve-client --native without a key: exit 3", err)

section("sieve-client exit codes")
code, out, err = client("--port", str(P), "--document", DOC_FILE, "--query", "q",
                        "--api-key-file", KEY_FILE, "--keep-chunks", "0")
expect(code == 2 and "sieve.keep_chunks" in err, "bad request (checked locally): exit 2", err)
code, out, err = client("--port", str(P), "--document", DOC_FILE, "--query", "q",
                        "--api-key-file", KEY_FILE, "--model", "other")
expect(code == 2 and "404" in err, "unknown model: exit 2", err)
with open(os.path.join(TMP, "scope_off.json"), "w") as f:
    json.dump({"sieve": {"scope": {"strategy": "off"}}}, f)
code, out, err = client("--port", str(P), "--document", DOC_FILE, "--query", "q",
                        "--api-key-file", KEY_FILE, "--max-new-tokens", "20000",
                        "--request-json", os.path.join(TMP, "scope_off.json"))
expect(code == 4 and "429" in err, "rejected by admission (429): exit 4", err)
words = os.path.join(TMP, "words.txt")
with open(words, "w") as f:
    f.write("word " * 6000)
code, out, err = client("--native", "--port", str(NP_), "--api-key-file", KEY_FILE,
                        "--document", words, "--query", "q")
expect(code == 4 and "PAYLOAD_TOO_LARGE" in err, "document over the token limit (413): exit 4",
       err)
code, out, err = client("--port", str(P), "--document", DOC_FILE, "--query", "q",
                        "--api-key-file", KEY_FILE, "--deadline-s", "0.001",
                        "--max-new-tokens", "200")
expect(code == 5 and "DEADLINE_EXCEEDED" in err, "a deadline that passes: exit 5 (server)", err)
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    dead_port = s.getsockname()[1]
code, out, err = client("--port", str(dead_port), "--document", DOC_FILE, "--query", "q")
expect(code == 6, "nothing listening: exit 6 (connection)", err)

# ---- the native protocol's bad frames ----------------------------------------------------------

section("native protocol: bad frames")
good_request = su.generate_request("A short document about lamps.", "Which lamp?", 3)
c = su.NativeConnection(H, NP_)
c.send(su.frame(b"\xff\xff\xff\xff\x0f garbage"))
e = c.next_event()
expect(e["kind"] == "error" and e["code"] == "INVALID_ARGUMENT" and
       "not a valid ClientMessage" in e["message"], "malformed protobuf: INVALID_ARGUMENT event", e)
c.send(su.frame(b""))
e = c.next_event()
expect(e["kind"] == "error" and "neither submit nor cancel" in e["message"],
       "empty frame: INVALID_ARGUMENT event", e)
bad_pool = su.generate_request("doc", "q", 3, sieve=su.pb_field(6, 6))
c.send(su.frame(su.client_submit(5, bad_pool, API_KEY)))
e = c.next_event()
expect(e["kind"] == "error" and e["tag"] == 5 and "sieve.kv_pool: must be odd" in e["message"],
       "invalid request in a valid frame: INVALID_ARGUMENT naming sieve.kv_pool", e)
c.send(su.frame(su.client_submit(6, su.generate_request([1, -3], "q", 3), API_KEY)))
e = c.next_event()
expect(e["kind"] == "error" and "document_ids[1]" in e["message"], "negative token id named", e)
c.send(su.frame(su.client_submit(7, su.generate_request("doc", "q", 3) + su.pb_field(2, "gpt-4"),
                                 API_KEY)))
e = c.next_event()
expect(e["kind"] == "error" and e["code"] == "NOT_FOUND", "unknown model: NOT_FOUND", e)
c.send(su.frame(su.client_submit(8, good_request, API_KEY)))
events = c.until_final()
expect([x["kind"] for x in events][0] == "accepted" and events[-1]["kind"] == "response" and
       all(x["tag"] == 8 for x in events), "the same connection still serves a good request "
       "(accepted ... response, tag echoed)", events)
c.send(su.frame(su.client_submit(9, su.generate_request("doc words", "q", 2000, stream=True,
                                                        sieve=su.pb_field(8, su.pb_field(1, 3))),
                                 API_KEY)))
first = c.next_event()
c.send(su.frame(su.client_cancel(9, api_key=API_KEY)))
events = [first] + c.until_final()
expect(events[-1]["kind"] == "error" and events[-1]["code"] == "CANCELLED",
       "Cancel (by tag): the request ends CANCELLED", events[-1])
c.send(b"\x7f\xff\xff\xff")
e = c.next_event()
expect(e["kind"] == "error" and e["code"] == "PAYLOAD_TOO_LARGE" and c.closed_by_peer(),
       "oversized frame length: PAYLOAD_TOO_LARGE, then the connection closes", e)
c.close()
c = su.NativeConnection(H, NP_)
c.send(su.frame(su.client_submit(1, good_request, API_KEY))[:-5])
t = time.monotonic()
e = c.next_event(timeout=10)
took = time.monotonic() - t
expect(e and e["code"] == "DEADLINE_EXCEEDED" and "did not complete" in e["message"] and
       1.5 < took < 6 and c.closed_by_peer(), f"truncated frame, client stalls: "
       f"DEADLINE_EXCEEDED after {took:.1f} s (read timeout 2 s), then closed", e)
c.close()
c = su.NativeConnection(H, NP_)
c.send(su.frame(su.client_submit(1, good_request, API_KEY))[:-5])
c.sock.shutdown(socket.SHUT_WR)
expect(c.closed_by_peer() and wait_for_log(main, r"native stream ended inside a frame.*"
                                                 r"truncated frame 1") and health_ok(main),
       "truncated frame, client closes: logged as truncated; /health OK")
c.close()
c = su.NativeConnection(H, NP_)
c.send(su.frame(su.client_submit(1, good_request)))
e = c.next_event()
expect(e["code"] == "UNAUTHENTICATED" and c.closed_by_peer(), "native submit without the key: "
       "UNAUTHENTICATED, connection closed", e)
c.close()

# ---- slow clients, idle connections, the connection limit --------------------------------------

section("timeouts and the connection limit")


def raw_exchange(data, wait=10):
    """Sends `data`, then reads until the service closes; (reply bytes, seconds)."""
    s = socket.create_connection((H, P), timeout=wait)
    s.sendall(data)
    t, reply = time.monotonic(), b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
    except (socket.timeout, TimeoutError, ConnectionResetError):
        pass
    s.close()
    return reply, time.monotonic() - t


reply, took = raw_exchange(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Le")
expect(reply.startswith(b"HTTP/1.1 408") and 1.5 < took < 6, f"half a request head, then a "
       f"stall: 408 after {took:.1f} s and the connection closed", reply[:200])
reply, took = raw_exchange(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                           + API_KEY.encode() + b"\r\nContent-Length: 100\r\n\r\n{\"prompt\"")
expect(reply.startswith(b"HTTP/1.1 408") and b"read timeout" in reply and 1.5 < took < 6,
       f"half a body, then a stall: 408 after {took:.1f} s", reply[:200])
reply, took = raw_exchange(b"")
expect(reply == b"" and 1.5 < took < 6, f"an idle connection is closed after {took:.1f} s")
reply, took = raw_exchange(b"GARBAGE\r\n\r\n")
expect(reply.startswith(b"HTTP/1.1 400") and b"malformed HTTP request" in reply,
       "malformed HTTP: 400", reply[:200])
reply, took = raw_exchange(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 +
                           b"\r\n\r\n")
expect(reply.startswith(b"HTTP/1.1 431"), "oversized header: 431", reply[:120])

# A client that stops reading a long stream: the write timeout closes it and cancels its request.
cancelled_before = metric(main, 'sieve_requests_total{outcome="cancelled"}')
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
s.connect((H, P))
body = json.dumps({"prompt": "lamp " * 50, "query": "q", "max_tokens": 6000, "stream": True,
                   "sieve": {"scope": {"strategy": "off"}}}).encode()
s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
          b"Authorization: Bearer " + API_KEY.encode() + b"\r\nContent-Length: " +
          str(len(body)).encode() + b"\r\n\r\n" + body)
m = wait_for_log(main, r"client gone: cancelling its request.*why=\"write timeout", timeout=60)
s.close()
expect(m is not None, "a client that stops reading: write timeout (2 s), connection closed, "
       "request cancelled")

idle = []
for _ in range(40):
    idle.append(socket.create_connection((H, P), timeout=10))
time.sleep(0.3)
reply, _ = raw_exchange(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
expect(reply.startswith(b"HTTP/1.1 429") and b"too many connections (limit 40)" in reply,
       "41st connection with 40 idle ones open: 429 and closed", reply[:200])
closed = 0
for s in idle:
    try:
        s.settimeout(8)
        if s.recv(1) == b"":
            closed += 1
    except (OSError, TimeoutError):
        pass
    s.close()
expect(closed == 40 and health_ok(main), "the 40 idle connections are closed by the read "
       "timeout; new connections are served again", closed)
rejected = metric(main, 'sieve_connections_rejected_total{protocol="http"}')
expect(rejected >= 1, f"/metrics counts {rejected:.0f} refused connection(s)")

# ---- a client that disconnects cancels its request, and the decode node frees its KV -----------

section("cancel on disconnect")
stream = su.SseStream(H, P, "/v1/completions", {"prompt": "lamp " * 200, "query": "q",
                                                 "max_tokens": 3000, "stream": True,
                                                 "sieve": {"scope": {"strategy": "off"}}},
                      headers=AUTH)
rid = None
for _, kind, payload in stream.events():
    if kind == "data":
        rid = json.loads(payload)["id"]
        break
stream.close()
m1 = wait_for_log(main, r"client gone: cancelling its request.*id=" + re.escape(rid))
m2 = wait_for_log(main, r"rank=2 .*msg=\"(request stopped early: decode KV freed|dropped request:"
                        r" decode state freed)\" rank=2 id=" + re.escape(rid))
expect(m1 and m2, f"HTTP client gone mid-stream: request {rid} cancelled, the decode node "
       "(rank 2) freed its KV")
c = su.NativeConnection(H, NP_)
c.send(su.frame(su.client_submit(3, su.generate_request("lamp " * 200, "q", 3000, stream=True,
                                                        sieve=su.pb_field(8, su.pb_field(1, 3))),
                                 API_KEY)))
e = c.next_event()
nid = e["request_id"]
c.next_event()
c.close()
m1 = wait_for_log(main, r"client gone: cancelling its request.*id=" + re.escape(nid))
m2 = wait_for_log(main, r"rank=2 .*decode (KV|state) freed\" rank=2 id=" + re.escape(nid))
expect(m1 and m2, f"native client gone: request {nid} cancelled, the decode node freed its KV")
deadline = time.monotonic() + 10
while time.monotonic() < deadline and metric(main, 'sieve_requests_total{outcome="cancelled"}') < cancelled_before + 3:
    time.sleep(0.1)
cancelled = metric(main, 'sieve_requests_total{outcome="cancelled"}')
expect(cancelled >= cancelled_before + 3, f"/metrics: cancelled outcomes {cancelled_before:.0f} "
       f"-> {cancelled:.0f}")
deadline = time.monotonic() + 10
while time.monotonic() < deadline and metric(main, "sieve_requests_in_flight") != 0:
    time.sleep(0.1)
expect(metric(main, "sieve_requests_in_flight") == 0 and metric(main, "sieve_queue_depth") == 0,
       "nothing left in flight or queued")

# ---- the load test -----------------------------------------------------------------------------

section("load: 32 concurrent clients x 10 requests")
health_log, stop_health = [], threading.Event()


def watch_health():
    while not stop_health.is_set():
        t = time.monotonic()
        try:
            status, _, body = su.http_json(H, P, "GET", "/health", timeout=10)
        except OSError as e:
            status, body = str(e), None
        health_log.append((status, time.monotonic() - t))
        stop_health.wait(0.2)


def load_client(i):
    results = []
    conn = None
    for j in range(10):
        k = (i + j) % 4
        stream = (i + j) % 3 == 0
        req = dict(load_request(k), stream=stream)
        t = time.monotonic()
        try:
            if conn is None:
                conn = su.http.client.HTTPConnection(H, P, timeout=120)
            conn.request("POST", "/v1/completions", body=json.dumps(req),
                         headers=dict(AUTH, **{"Content-Type": "application/json"}))
            resp = conn.getresponse()
            data = resp.read().decode("utf-8", "replace")
            status = resp.status
            if resp.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except Exception as e:  # noqa: BLE001 (any failure is a finding, reported below)
            results.append(("exception", repr(e), time.monotonic() - t))
            conn = None
            continue
        took = time.monotonic() - t
        if status == 200 and stream:
            events = su.sse_events(data)
            chunks = [json.loads(d) for kind, d in events if kind == "data" and d != "[DONE]"]
            errors = [c for c in chunks if "error" in c]
            if errors:
                results.append(("stream-error", errors[0]["error"], took))
                continue
            text = "".join(c["choices"][0]["text"] for c in chunks if c.get("choices"))
            right = text == LOAD_REFS[k]["text"] and events[-1] == ("data", "[DONE]")
            results.append(("ok" if right else "wrong", text, took))
        elif status == 200:
            text = json.loads(data)["choices"][0]["text"]
            results.append(("ok" if text == LOAD_REFS[k]["text"] else "wrong", text, took))
        elif status == 429:
            results.append(("429", json.loads(data)["error"]["message"], took))
        else:
            results.append((f"http-{status}", data[:200], took))
    if conn:
        conn.close()
    return results


watcher = threading.Thread(target=watch_health)
watcher.start()
t_load = time.monotonic()
with concurrent.futures.ThreadPoolExecutor(32) as pool:
    futures = [pool.submit(load_client, i) for i in range(32)]
    done, pending = concurrent.futures.wait(futures, timeout=300)
load_s = time.monotonic() - t_load
stop_health.set()
watcher.join(15)
expect(not pending, f"every client finished its 10 requests within 300 s ({load_s:.1f} s)")
results = [r for f in futures for r in f.result()]
kinds = {}
for kind, _, _ in results:
    kinds[kind] = kinds.get(kind, 0) + 1
lat_ok = sorted(t for kind, _, t in results if kind == "ok")
reasons = {}
for kind, message, _ in results:
    if kind == "429":
        key = message.split(";")[0].split("(")[0].strip()[:60]
        reasons[key] = reasons.get(key, 0) + 1
print(f"     load: {len(results)} requests in {load_s:.1f} s: {kinds}; 429 reasons: {reasons}",
      flush=True)
if lat_ok:
    print(f"     latency of completed requests: p50 {statistics.median(lat_ok):.2f} s, "
          f"p90 {lat_ok[int(0.9 * (len(lat_ok) - 1))]:.2f} s, max {lat_ok[-1]:.2f} s", flush=True)
expect(len(results) == 320 and set(kinds) <= {"ok", "429"},
       "320 requests: each completed with sieve-run's answer or was refused with 429 (none lost, "
       "none wrong, none hung)", {k: v for k, v in kinds.items()} | {"sample": [
           r for r in results if r[0] not in ("ok", "429")][:3]})
expect(kinds.get("ok", 0) >= 32, f"{kinds.get('ok', 0)} of 320 completed")
bad_health = [h for h in health_log if h[0] != 200]
expect(health_log and not bad_health and max(t for _, t in health_log) < 5,
       f"/health answered 200 throughout ({len(health_log)} probes, slowest "
       f"{max(t for _, t in health_log):.2f} s)", bad_health[:5])
ok_count = metric(main, 'sieve_requests_total{outcome="ok"}')
rejected_count = metric(main, 'sieve_requests_total{outcome="rejected"}')
expect(ok_count >= kinds.get("ok", 0) and rejected_count >= kinds.get("429", 0),
       f"/metrics agrees: {ok_count:.0f} ok, {rejected_count:.0f} rejected; TTFT histogram count "
       f"{metric(main, 'sieve_ttft_seconds_count'):.0f}, KV bytes moved "
       f"{metric(main, 'sieve_kv_bytes_moved_total'):.0f}")

# ---- graceful shutdown: SIGTERM lets the running request finish --------------------------------

section("SIGTERM: drain, then exit 0")
stream = su.SseStream(H, P, "/v1/completions", {"prompt": "lamp " * 50, "query": "q",
                                                 "max_tokens": 300, "stream": True,
                                                 "sieve": {"scope": {"strategy": "off"}}},
                      headers=AUTH)
texts, final = [], None
events = stream.events()
for _, kind, payload in events:
    if kind == "data":
        texts.append(json.loads(payload))
        break
t_signal = time.monotonic()
main.signal_rank0(signal.SIGTERM)
time.sleep(0.5)
try:
    status, _, _ = su.http_request(H, P, "GET", "/health", timeout=5)
    refused = status == 503
except OSError:
    refused = True
expect(refused, "after SIGTERM new connections are refused (or /health says draining)")
for _, kind, payload in events:
    if kind == "data" and payload != "[DONE]":
        chunk = json.loads(payload)
        if chunk.get("choices") and chunk["choices"][0]["finish_reason"]:
            final = chunk
stream.close()
expect(final is not None and final["sieve"]["accounting"]["generated_tokens"] == 300,
       "the request in flight at SIGTERM completed (300 tokens)", final and final.get("sieve"))
code = main.wait(60)
log = main.log_text()
expect(code == 0 and "[sieve] SIGTERM: no longer accepting" in log and
       "node shutting down\" rank=1" in log and "node shutting down\" rank=2" in log,
       f"the job exited 0 {time.monotonic() - t_signal:.1f} s after SIGTERM; every rank shut "
       "down", log[-1500:])
services.remove(main)

# ---- decode batching: --max-decode-batch 1 against 8 -------------------------------------------

section("decode batching and SIGINT")
b1 = su.Service(NODE, MODEL, TMP, np=3, name="batch1", args=["--max-decode-batch", "1",
                                                               "--grace-s", "1"])
services.append(b1)
b1.start()


def overlap(svc, headers=None):
    """Tokens of request B streamed before request A (started first) finished."""
    timeline, lock = [], threading.Lock()
    started = threading.Event()

    def run(name, delay):
        if delay:
            started.wait(30)
        s = su.SseStream(svc.http_host, svc.http_port, "/v1/completions",
                         {"prompt": f"lamp {name} " * 40, "query": "q", "max_tokens": 400,
                          "stream": True, "sieve": {"scope": {"strategy": "off"}}},
                         headers=headers)
        for t, kind, payload in s.events():
            if kind != "data" or payload == "[DONE]":
                continue
            chunk = json.loads(payload)
            with lock:
                timeline.append((t, name, bool(chunk["choices"][0]["finish_reason"])))
            started.set()
        s.close()

    threads = [threading.Thread(target=run, args=("A", False)),
               threading.Thread(target=run, args=("B", True))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    a_end = max(t for t, name, last in timeline if name == "A" and last)
    return sum(1 for t, name, last in timeline if name == "B" and t < a_end)


interleaved_1 = overlap(b1)
# With one request per decode step B gets its first token (from its query prefill) and waits;
# a few more may be read before A's last event only because the two streams are read by
# different threads.
expect(interleaved_1 < 40, f"--max-decode-batch 1: request B streamed {interleaved_1} of 400 "
       "tokens while A decoded (one request per decode step)")
# The main service is gone: a fresh one with the default batch (16) for the comparison.
b16 = su.Service(NODE, MODEL, TMP, np=3, name="batch16")
services.append(b16)
b16.start()
interleaved_16 = overlap(b16)
expect(interleaved_16 > 150, f"--max-decode-batch 16: B streamed {interleaved_16} of 400 tokens "
       "while A decoded (both in one decode step: batched)")

# An abort that passes its queued work order: a long document keeps the workers busy (~4 s on two
# cores); a short request behind it misses its 0.5 s deadline while its work order is still
# queued at a worker. The abort is a control message and is taken first, so the worker skips that
# prefill; the long request and the next one are answered.
long_reply = {}


def long_request():
    long_reply["status"] = su.http_json(b16.http_host, b16.http_port, "POST", "/v1/completions",
                                        {"prompt": "lamp " * 60000, "query": "q",
                                         "max_tokens": 2}, timeout=300)[0]


long_thread = threading.Thread(target=long_request)
long_thread.start()
time.sleep(0.5)
late, _, late_body = su.http_json(b16.http_host, b16.http_port, "POST", "/v1/completions",
                                  {"prompt": "lamp " * 200, "query": "q", "max_tokens": 2,
                                   "deadline_seconds": 0.5})
long_thread.join()
skipped = wait_for_log(b16, r"dropped request: (work order skipped|prefill discarded)")
after = su.http_json(b16.http_host, b16.http_port, "POST", "/v1/completions",
                     {"prompt": "lamp " * 200, "query": "q", "max_tokens": 2})[0]
expect(late == 504 and long_reply.get("status") == 200 and skipped and after == 200,
       "a request whose deadline passes while its work order is queued behind a long prefill: "
       "504, the worker skips its prefill, the long request and the next one are answered",
       (late, late_body, long_reply, after))
b16.stop()
services.remove(b16)

stream = su.SseStream(b1.http_host, b1.http_port, "/v1/completions",
                      {"prompt": "lamp " * 50, "query": "q", "max_tokens": 8000, "stream": True,
                       "sieve": {"scope": {"strategy": "off"}}})
events = stream.events()
for _, kind, payload in events:
    if kind == "data":
        break
t_signal = time.monotonic()
b1.signal_rank0(signal.SIGINT)
error = None
for _, kind, payload in events:
    if kind == "data" and payload != "[DONE]" and "error" in json.loads(payload):
        error = json.loads(payload)["error"]
stream.close()
expect(error and error["code"] == "UNAVAILABLE" and "shut down" in error["message"],
       f"SIGINT with --grace-s 1: the long request is failed with UNAVAILABLE after "
       f"{time.monotonic() - t_signal:.1f} s", error)
code = b1.wait(60)
expect(code == 0, f"the job exited 0 after SIGINT ({time.monotonic() - t_signal:.1f} s)",
       b1.log_text()[-1500:])
services.remove(b1)

# ---- one process: -np 1 runs every role in-process (LocalEngine) -------------------------------

section("one-process service: mpirun -np 1")
local = su.Service(NODE, MODEL, TMP, np=1, name="local", args=["--max-queued", "4"])
services.append(local)
local.start()
code, out, err = client("--port", str(local.http_port), "--document", DOC_FILE, "--query", QUERY,
                        "--max-new-tokens", "16", "--chunk-tokens", "300", "--keep-chunks", "2",
                        "--json")
expect(code == 0, "-np 1: sieve-client (HTTP) exit 0", err)
same_answer("-np 1 sieve-client HTTP", json.loads(out))
code, out, err = client("--native", "--port", str(local.native_port), "--document", DOC_FILE,
                        "--query", QUERY, "--max-new-tokens", "16", "--chunk-tokens", "300",
                        "--keep-chunks", "2", "--json")
same_answer("-np 1 sieve-client native", json.loads(out))
status, _, body = su.http_json(local.http_host, local.http_port, "POST", "/v1/completions",
                               {"prompt": "d", "query": "q", "sieve": {"mode": "fast"}})
expect(status == 400 and "sieve.mode: unknown mode 'fast'" in body["error"]["message"] and
       health_ok(local), "-np 1: a bad request is 400 naming the field; /health OK")
stream = su.SseStream(local.http_host, local.http_port, "/v1/completions",
                      {"prompt": "lamp " * 50, "query": "q", "max_tokens": 3000, "stream": True,
                       "sieve": {"scope": {"strategy": "off"}}})
for _, kind, payload in stream.events():
    if kind == "data":
        lid = json.loads(payload)["id"]
        break
stream.close()
expect(wait_for_log(local, r"request failed\" id=" + re.escape(lid) + r" error=\"CANCELLED"),
       "-np 1: a client that disconnects cancels its request")
LOAD_TOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools",
                         "sieve_load.py")
p = subprocess.run([sys.executable, LOAD_TOOL, "--url", f"http://127.0.0.1:{local.http_port}",
                    "--lengths", "300,150,600", "--max-new-tokens", "2", "--chunk-tokens", "100"],
                   capture_output=True, timeout=120)
report = json.loads(p.stdout) if p.returncode == 0 else {}
expect(p.returncode == 0 and report["concurrent"]["completed"] == 3 and
       report["sequential"]["completed"] == 3 and report["concurrent"]["client_ttft_s"]["p50"] and
       report["sequential"]["server_ttft_s"]["p99"] and "throughput_speedup" in report,
       "tools/sieve_load.py: 3 documents concurrently and one at a time; requests/s and TTFT "
       "percentiles reported", p.stderr.decode()[-1000:])
expect(local.stop() == 0, "-np 1: SIGTERM, exit 0")
services.remove(local)

print(f"PASS: {checks} checks in {time.monotonic() - T0:.0f} s", flush=True)
