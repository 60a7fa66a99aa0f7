"""Helpers of the service tests (tests/cli/service_test.py) and the load tool (tools/sieve_load.py):
starting a sieve-node service under mpirun, HTTP and server-sent events over http.client, and
the native protocol's frames (protobuf encoded and decoded by hand, field numbers from
proto/sieve.proto). Python 3 standard library only; loopback addresses only.
"""
import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import time


# ---- a service under mpirun --------------------------------------------------------------------

class Service:
    """`mpirun -np N sieve-node --serve ...` on loopback ports chosen by the kernel."""

    def __init__(self, node, model, workdir, np=3, args=(), name="svc", api_key=None):
        self.node, self.model, self.np, self.args, self.name = node, model, np, list(args), name
        self.ready_file = os.path.join(workdir, f"{name}.ready.json")
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.api_key = api_key
        self.proc = None
        self.ready = None

    def start(self, timeout=90):
        if os.path.exists(self.ready_file):
            os.remove(self.ready_file)
        cmd = ["mpirun", "-np", str(self.np), "--oversubscribe", self.node, "--model", self.model,
               "--device", "cpu", "--serve", "--listen", "127.0.0.1:0",
               "--native-listen", "127.0.0.1:0", "--ready-file", self.ready_file,
               "--log-level", "info", *self.args]
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode} while starting:\n"
                                   + self.log_text()[-3000:])
            if os.path.exists(self.ready_file):
                with open(self.ready_file) as f:
                    self.ready = json.load(f)
                break
            time.sleep(0.05)
        else:
            self.kill()
            raise RuntimeError(f"{self.name} not ready within {timeout} s:\n" + self.log_text()[-3000:])
        self.http_host, self.http_port = split_address(self.ready["http"])
        self.native_host, self.native_port = split_address(self.ready["native"])
        self.pid = self.ready["pid"]
        return self

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def signal_rank0(self, signo):
        os.kill(self.pid, signo)

    def wait(self, timeout):
        """The job's exit code, or None if it is still running after `timeout` seconds."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=60):
        """SIGTERM to rank 0 (the graceful path); returns mpirun's exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.signal_rank0(signal.SIGTERM)
        code = self.wait(timeout)
        if code is None:
            self.kill()
        return code

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)


def split_address(address):
    host, port = address.rsplit(":", 1)
    return host, int(port)


# ---- HTTP --------------------------------------------------------------------------------------

def http_request(host, port, method, path, body=None, headers=None, timeout=60):
    """(status, headers dict with lower-case names, body bytes)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        hdrs = {"Content-Type": "application/json"} if data is not None else {}
        hdrs.update(headers or {})
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def http_json(host, port, method, path, body=None, headers=None, timeout=60):
    status, hdrs, data = http_request(host, port, method, path, body, headers, timeout)
    try:
        parsed = json.loads(data) if data else None
    except ValueError:
        parsed = None
    return status, hdrs, parsed


def sse_events(stream):
    """Splits server-sent-event text into ("data", payload) and ("comment", text) tuples."""
    events, data = [], []
    for line in stream.split("\n"):
        line = line.rstrip("\r")
        if line == "":
            if data:
                events.append(("data", "\n".join(data)))
            data = []
        elif line.startswith(":"):
            events.append(("comment", line[1:].strip()))
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
    return events


class SseStream:
    """A streaming POST whose events are read as they arrive (for timing and disconnects)."""

    def __init__(self, host, port, path, body, headers=None, timeout=60):
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(headers or {})
        self.conn.request("POST", path, body=json.dumps(body).encode(), headers=hdrs)
        self.resp = self.conn.getresponse()
        self.buffer = ""

    def events(self):
        """Yields (arrival time, kind, payload) until the stream ends."""
        while True:
            chunk = self.resp.read1(65536)
            if not chunk:
                return
            now = time.monotonic()
            self.buffer += chunk.decode("utf-8", "replace")
            while "\n\n" in self.buffer:
                block, self.buffer = self.buffer.split("\n\n", 1)
                for kind, payload in sse_events(block + "\n\n"):
                    yield now, kind, payload

    def close(self):
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError):
            pass
        self.conn.close()


# ---- the native protocol -----------------------------------------------------------------------

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb_field(num, value):
    """One protobuf field: int -> varint, bytes/str -> length-delimited, float -> fixed32."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    if isinstance(value, float):
        return varint((num << 3) | 5) + struct.pack("<f", value)
    if isinstance(value, str):
        value = value.encode()
    return varint((num << 3) | 2) + varint(len(value)) + value


def pb_packed(num, ids):
    return pb_field(num, b"".join(varint(i & 0xFFFFFFFFFFFFFFFF) for i in ids))


def generate_request(document, query, max_new_tokens=None, request_id=None, stream=False,
                     sieve=b""):
    """GenerateRequest bytes (document/query: str for text, list for ids)."""
    out = b""
    if request_id:
        out += pb_field(1, request_id)
    out += pb_field(3, document) if isinstance(document, (str, bytes)) else pb_field(4, pb_packed(1, document))
    out += pb_field(5, query) if isinstance(query, (str, bytes)) else pb_field(6, pb_packed(1, query))
    if max_new_tokens is not None:
        out += pb_field(7, max_new_tokens)
    if sieve:
        out += pb_field(15, sieve)
    if stream:
        out += pb_field(16, 1)
    return out


def client_submit(tag, request, api_key=None):
    out = pb_field(1, tag)
    if api_key:
        out += pb_field(2, api_key)
    return out + pb_field(3, request)


def client_cancel(tag, request_id="", api_key=None):
    out = pb_field(1, tag)
    if api_key:
        out += pb_field(2, api_key)
    return out + pb_field(4, pb_field(1, request_id) if request_id else b"")


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


def pb_decode(data):
    """{field number: [values]}: varints as int, length-delimited as bytes, fixed as bytes."""
    fields, i = {}, 0
    while i < len(data):
        key, i = read_varint(data, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, i = read_varint(data, i)
        elif wire == 2:
            n, i = read_varint(data, i)
            value, i = data[i:i + n], i + n
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        fields.setdefault(num, []).append(value)
    return fields


def read_varint(data, i):
    shift = value = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def packed_ints(raw):
    out, i = [], 0
    while i < len(raw):
        v, i = read_varint(raw, i)
        out.append(v)
    return out


ERROR_CODES = {1: "CANCELLED", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND",
               8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION", 13: "INTERNAL",
               14: "UNAVAILABLE", 15: "DATA_LOSS", 16: "UNAUTHENTICATED", 100: "PAYLOAD_TOO_LARGE"}


def decode_event(payload):
    """A ServerEvent as a dict: tag, request_id, kind, and the kind's fields."""
    f = pb_decode(payload)
    event = {"tag": f.get(1, [0])[0], "request_id": f.get(2, [b""])[0].decode()}
    if 3 in f:
        event["kind"] = "accepted"
    elif 4 in f:
        p = pb_decode(f[4][0])
        event.update(kind="progress", done=p.get(1, [0])[0], total=p.get(2, [0])[0])
    elif 5 in f:
        event.update(kind="token", text=pb_decode(f[5][0]).get(1, [b""])[0].decode("utf-8", "replace"))
    elif 6 in f:
        r = pb_decode(f[6][0])
        ids = []
        for raw in r.get(3, []):
            ids += packed_ints(raw) if isinstance(raw, bytes) else [raw]
        event.update(kind="response", text=r.get(2, [b""])[0].decode("utf-8", "replace"),
                     generated_ids=ids, finish_reason=r.get(5, [b""])[0].decode())
    elif 7 in f:
        e = pb_decode(f[7][0])
        event.update(kind="error", code=ERROR_CODES.get(e.get(1, [0])[0], str(e.get(1, [0])[0])),
                     message=e.get(2, [b""])[0].decode("utf-8", "replace"))
    return event


class NativeConnection:
    """A raw native-protocol connection: send bytes, read events."""

    def __init__(self, host, port, timeout=30):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buffer = b""

    def send(self, data):
        self.sock.sendall(data)

    def next_event(self, timeout=30):
        """The next ServerEvent dict, or None when the service closed the connection."""
        self.sock.settimeout(timeout)
        while True:
            if len(self.buffer) >= 4:
                (n,) = struct.unpack(">I", self.buffer[:4])
                if len(self.buffer) >= 4 + n:
                    payload, self.buffer = self.buffer[4:4 + n], self.buffer[4 + n:]
                    return decode_event(payload)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buffer += chunk

    def until_final(self, timeout=60):
        """Every event up to the first response or error (or the close)."""
        events = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            e = self.next_event(timeout=max(0.1, deadline - time.monotonic()))
            if e is None:
                break
            events.append(e)
            if e.get("kind") in ("response", "error"):
                break
        return events

    def closed_by_peer(self, timeout=10):
        """True when the service closes the connection within `timeout` (pending data drained)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except (socket.timeout, TimeoutError):
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()
