#!/usr/bin/env bash
# CLI test of sieve-run (tools/sieve_run.cc): the whole pipeline through the binary, against the
# independent PyTorch reference tools/oracle.py (tests/fixtures/pipeline/oracle_dev.json).
#
#   bash tests/cli/sieve_run_test.sh BUILD_DIR FIXTURES_DIR      (CTest: ctest -L cli)
#
# 1. Every scenario of oracle_dev.json becomes a request (document_ids/query_ids from the oracle
#    file, "explain": true, keep_k -> sieve.keep_chunks, capacity -> sieve.kv_capacity,
#    calib/lam/R -> sieve.calibration layers/threshold/region, scope -> sieve.scope (absent:
#    {"strategy": "off"}), max_new -> max_new_tokens, forced -> force_continuation_ids, mode
#    full) run on tests/fixtures/tiny-llama3 with --device cpu, and the response must match:
#    chunks (tokens, kept; scores to 1e-4), kept_chunks, p0, prefill_cache, layout_prefill,
#    calibration_evicted, first_top5, generated_ids, forced_logprobs (1e-4), scope_fired_steps,
#    final_cache, final_decode_positions.
# 2. Bad requests: exit 2 with {"error": {...}} on stdout whose message names the field; a
#    request naming another model: NOT_FOUND (exit 2); a missing --model directory: exit 3.
# Prints one line per check; exits non-zero at the first mismatch. Python 3 standard library only.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BUILD_DIR FIXTURES_DIR" >&2
  exit 2
fi
BUILD_DIR=$1
FIXTURES_DIR=$2
SIEVE_RUN="$BUILD_DIR/tools/sieve-run"
[[ -x "$SIEVE_RUN" ]] || { echo "FAIL: $SIEVE_RUN not built" >&2; exit 1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

SIEVE_CLI_DIR="$(cd "$(dirname "$0")" && pwd)" python3 - "$SIEVE_RUN" "$FIXTURES_DIR" "$TMP" <<'PYTHON'
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile

sieve_run, fixtures, tmp = sys.argv[1:4]
model = os.path.join(fixtures, "tiny-llama3")
oracle = json.load(open(os.path.join(fixtures, "pipeline", "oracle_dev.json")))
sys.path.insert(0, os.environ["SIEVE_CLI_DIR"])
import oracle_compare as oc  # noqa: E402
from oracle_compare import expect_close, expect_equal, fail, ok  # noqa: E402,F401


def run(request, *extra, model_dir=model):
    """Runs sieve-run on `request` (a dict, or raw bytes); returns (exit code, stdout, stderr)."""
    fd, path = tempfile.mkstemp(suffix=".json", dir=tmp)
    os.close(fd)
    with open(path, "wb") as f:
        f.write(request if isinstance(request, bytes) else json.dumps(request).encode())
    p = subprocess.run([sieve_run, "--model", model_dir, "--device", "cpu", "--request", path,
                        *extra], capture_output=True, timeout=120)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


# ---- 1. every oracle scenario ------------------------------------------------------------------
# Two runs at a time (each spends a good part of its time loading the tokenizer, single-threaded);
# the results are checked in scenario order.
pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
runs = {name: pool.submit(run, oc.request_for(oracle, scenario["params"]))
        for name, scenario in oracle["scenarios"].items()}
for name, scenario in oracle["scenarios"].items():
    print(f"--- scenario {name}: {json.dumps(scenario['params'])}", flush=True)
    code, out, err = runs[name].result()
    if code != 0:
        fail(f"{name}: exit {code}\nstdout: {out[:2000]}\nstderr: {err[-2000:]}")
    try:
        r = json.loads(out)
    except json.JSONDecodeError as e:
        fail(f"{name}: stdout is not JSON ({e}): {out[:500]}")
    oc.check_scenario(name, oracle, scenario, r)

# ---- 2. bad requests ---------------------------------------------------------------------------
print("--- bad requests", flush=True)
base = {"document_ids": oracle["document_ids"][:40], "query_ids": oracle["query_ids"],
        "max_new_tokens": 2, "sieve": {"chunk_tokens": 20}}


def with_fields(**fields):
    req = json.loads(json.dumps(base))
    for key, value in fields.items():
        req[key] = value
    return req


def expect_error(name, request, exit_code, code, fragments, model_dir=model):
    got_exit, out, err = run(request, model_dir=model_dir)
    if got_exit != exit_code:
        fail(f"{name}: exit {got_exit}, want {exit_code}\nstdout: {out[:500]}\nstderr: {err[-500:]}")
    try:
        e = json.loads(out)["error"]
    except (json.JSONDecodeError, KeyError, TypeError):
        fail(f"{name}: stdout is not an error JSON: {out[:500]}")
    if e.get("code") != code:
        fail(f"{name}: code {e.get('code')}, want {code}: {e}")
    want_status = {"INVALID_ARGUMENT": 400, "NOT_FOUND": 404, "PAYLOAD_TOO_LARGE": 413}.get(code)
    if want_status is not None and e.get("status") != want_status:
        fail(f"{name}: status {e.get('status')}, want {want_status}")
    for f in fragments:
        if f not in e.get("message", ""):
            fail(f"{name}: '{f}' not in message '{e.get('message')}'")
    ok(f"{name}: exit {exit_code}, {code}: {e['message'][:100]}")


# The base request itself is fine (so each case below fails for its own reason).
code, out, err = run(base)
if code != 0:
    fail(f"base request: exit {code}: {out[:500]} {err[-500:]}")
ok("base request for the error cases runs")

INVALID = "INVALID_ARGUMENT"
expect_error("invalid JSON", b'{"document_ids": [1, 2], "query_ids": }', 2, INVALID,
             ["invalid JSON at byte 38"])
expect_error("invalid UTF-8", b'{"document": "a\xc3\x28", "query": "q"}', 2, INVALID,
             ["UTF-8", "at byte 15"])
expect_error("body not an object", b"[1, 2, 3]", 2, INVALID, ["expected a JSON object"])
expect_error("max_new_tokens as a string", with_fields(max_new_tokens="5"), 2, INVALID,
             ["max_new_tokens", "expected an integer"])
expect_error("max_new_tokens 0", with_fields(max_new_tokens=0), 2, INVALID, ["max_new_tokens"])
expect_error("top_p 1.5", with_fields(top_p=1.5), 2, INVALID, ["top_p"])
expect_error("unknown top-level field", with_fields(max_tokens=5), 2, INVALID,
             ["unknown field 'max_tokens'"])
expect_error("unknown nested field", with_fields(sieve={"scope": {"bar": 1}}), 2, INVALID,
             ["unknown field 'sieve.scope.bar'"])
expect_error("sieve not an object", with_fields(sieve=[]), 2, INVALID,
             ["sieve: expected an object"])
expect_error("kv_pool even", with_fields(sieve={"kv_pool": 6}), 2, INVALID,
             ["sieve.kv_pool: must be odd, got 6"])
expect_error("unknown mode", with_fields(sieve={"mode": "fast"}), 2, INVALID, ["sieve.mode"])
expect_error("missing query", {"document": "some text"}, 2, INVALID, ["query: required"])
expect_error("document and document_ids", with_fields(document="text"), 2, INVALID,
             ["document, document_ids"])
expect_error("negative token id", with_fields(query_ids=[5, -1]), 2, INVALID, ["query_ids[1]"])
# Checks that need the model: the vocabulary (128256) and the layer count (2).
expect_error("token id outside the vocabulary", with_fields(document_ids=[1, 2, 128256]), 2,
             INVALID, ["document_ids[2]", "128256"])
expect_error("forced id outside the vocabulary", with_fields(force_continuation_ids=[5, 999999]),
             2, INVALID, ["force_continuation_ids[1]"])
expect_error("calibration layer count",
             with_fields(sieve={"chunk_tokens": 20, "calibration": {"layers": ["all"]}}), 2,
             INVALID, ["sieve.calibration.layers", "(2)"])
expect_error("adaptive T <= b2",
             with_fields(sieve={"chunk_tokens": 20,
                                "scope": {"strategy": "adaptive", "b1": 4, "b2": 8, "T": 8}}),
             2, INVALID, ["sieve.scope.T"])
# A document over the 32 MiB limit: 413, before the model is touched.
big = b'{"document": "' + b"a" * ((32 << 20) + 1) + b'", "query": "q"}'
expect_error("document over the limit", big, 2, "PAYLOAD_TOO_LARGE", ["document"])
expect_error("request naming another model", with_fields(model="llama-70b"), 2, "NOT_FOUND",
             ["llama-70b", "tiny-llama3"])
# A bad request is reported before the model is loaded: exit 2 even with no model.
expect_error("bad request, missing model", with_fields(top_k=-1), 2, INVALID, ["top_k"],
             model_dir=os.path.join(tmp, "no-such-model"))

# ---- 3. the model directory --------------------------------------------------------------------
code, out, err = run(base, model_dir=os.path.join(tmp, "no-such-model"))
if code != 3:
    fail(f"missing --model dir: exit {code}, want 3\nstdout: {out[:500]}\nstderr: {err[-500:]}")
try:
    json.loads(out)["error"]["message"]
except (json.JSONDecodeError, KeyError, TypeError):
    fail(f"missing --model dir: stdout is not an error JSON: {out[:500]}")
ok("missing --model dir: exit 3 with an error JSON")

p = subprocess.run([sieve_run, "--model", model], capture_output=True, text=True)
if p.returncode != 2:
    fail(f"missing --request: exit {p.returncode}, want 2")
ok("missing --request: exit 2")
p = subprocess.run([sieve_run, "--model", model, "--request", os.path.join(tmp, "nope.json")],
                   capture_output=True, text=True)
if p.returncode != 2 or "--request" not in p.stdout:
    fail(f"unreadable --request file: exit {p.returncode}, stdout {p.stdout[:300]}")
ok("unreadable --request file: exit 2 naming --request")

print(f"PASS: {oc.checks} checks", flush=True)
PYTHON
