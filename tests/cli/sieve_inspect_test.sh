#!/usr/bin/env bash
# CLI test of sieve-inspect (tools/sieve_inspect.cc) against the Hugging Face references.
#
#   bash tests/cli/sieve_inspect_test.sh BUILD_DIR FIXTURES_DIR      (CTest: ctest -L cli)
#
# 1. tokenize (text on stdin, with and without --bos) and detokenize (--ids, with and without
#    --skip-special) on cases of llama3.1-tokenizer/cases.jsonl: ASCII, CR/LF runs, emoji split
#    across tokens, CJK, combining marks, special-token text, the empty string and the ~150 KB
#    document; ids must be equal and the text byte for byte.
# 2. forward on every case of tiny-llama3/reference.json (ids + positions, including positions
#    restarting at 0 and far positions): "logprobs" against <case>.logprobs and "hidden_last"
#    against the last row of <case>.hidden from reference.safetensors (max-abs error over
#    max-abs <= 1e-4), "last_logits_top" ids equal to the top 10 of <case>.last_logits and its
#    logits within 1e-4 of them.
# 3. Errors (unknown command, bad --ids, ids outside the vocabulary, mismatched --positions,
#    missing model): non-zero exit, a message on stderr, nothing on stdout.
# Prints one line per check; exits non-zero at the first mismatch. Python 3 standard library only
# (the safetensors header is read with struct + json).
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BUILD_DIR FIXTURES_DIR" >&2
  exit 2
fi
BUILD_DIR=$1
FIXTURES_DIR=$2
INSPECT="$BUILD_DIR/tools/sieve-inspect"
[[ -x "$INSPECT" ]] || { echo "FAIL: $INSPECT not built" >&2; exit 1; }

python3 - "$INSPECT" "$FIXTURES_DIR" <<'PYTHON'
import concurrent.futures
import json
import os
import struct
import subprocess
import sys

inspect, fixtures = sys.argv[1:3]
model = os.path.join(fixtures, "tiny-llama3")
checks = 0


def fail(what):
    print(f"FAIL: {what}", flush=True)
    sys.exit(1)


def ok(what):
    global checks
    checks += 1
    print(f"ok   {what}", flush=True)


def run(args, stdin=b""):
    p = subprocess.run([inspect, *args], input=stdin, capture_output=True, timeout=120)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def parse_json(name, result):
    code, out, err = result
    if code != 0:
        fail(f"{name}: exit {code}: {err[-1000:]}")
    try:
        return json.loads(out)
    except json.JSONDecodeError as e:
        fail(f"{name}: stdout is not JSON ({e}): {out[:300]!r}")


def run_json(name, args, stdin=b""):
    return parse_json(name, run(args, stdin))


def ids_arg(ids):
    return ",".join(str(i) for i in ids)


# ---- 1. tokenize / detokenize ------------------------------------------------------------------
cases = [json.loads(line) for line in
         open(os.path.join(fixtures, "llama3.1-tokenizer", "cases.jsonl"), encoding="utf-8")
         if line.strip()]
by_text = {c["text"]: c for c in cases}
wanted = ["Hello, world!", "", "\n\n\nnewlines\r\n", "emoji \U0001F600\U0001F600 \U0001F680",
          "\u6771\u4eac\u30bf\u30ef\u30fc\u306f\u9ad8\u3044", "\u00dcn\u00efc\u00f6d\u00e9 \u00f1",
          "<|begin_of_text|> is special"]
selected = [by_text[t] for t in wanted]
big = max(cases, key=lambda c: len(c["text"]))
if len(big["text"]) < 100000:
    fail("cases.jsonl has no ~150 KB case")
selected.append(big)

# --bos on a few (it only prepends <|begin_of_text|>; each run costs a tokenizer load).
with_bos = {"Hello, world!", "", "<|begin_of_text|> is special"}
# The tools are started two at a time (most of each run is loading the tokenizer); results are
# checked in order.
pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2))
jobs = []
for c in selected:
    text = c["text"].encode("utf-8")
    jobs.append((c, pool.submit(run, ["tokenize", "--model", model], text),
                 pool.submit(run, ["tokenize", "--model", model, "--bos"], text)
                 if c["text"] in with_bos else None,
                 None if c is big or not c["ids"] else  # too long for one argument / empty
                 pool.submit(run, ["detokenize", "--model", model, "--ids", ids_arg(c["ids"])])))

for c, plain, bos, detok in jobs:
    label = repr(c["text"][:24]) + (f"... ({len(c['text'])} chars)" if len(c["text"]) > 24 else "")
    got = parse_json(f"tokenize {label}", plain.result())["ids"]
    if got != c["ids"]:
        fail(f"tokenize {label}: got {got[:20]}, want {c['ids'][:20]}")
    ok(f"tokenize {label}: {len(got)} ids")
    if bos is not None:
        got = parse_json(f"tokenize --bos {label}", bos.result())["ids"]
        if got != c["ids_bos"]:
            fail(f"tokenize --bos {label}: got {got[:20]}, want {c['ids_bos'][:20]}")
        ok(f"tokenize --bos {label}: {got[:3]}...")
    if detok is None:
        continue
    got = parse_json(f"detokenize {label}", detok.result())["text"]
    if got != c["text"]:
        fail(f"detokenize {label}: got {got!r}, want {c['text']!r}")
    ok(f"detokenize {label}")

got = run_json("detokenize with BOS", ["detokenize", "--model", model,
                                       "--ids", ids_arg(by_text["Hello, world!"]["ids_bos"])])
if got["text"] != "<|begin_of_text|>Hello, world!":
    fail(f"detokenize with BOS: got {got['text']!r}")
ok("detokenize keeps special tokens by default")
got = run_json("detokenize --skip-special", ["detokenize", "--model", model, "--skip-special",
                                             "--ids", "128000,9906,11,1917,0,128009"])
if got["text"] != "Hello, world!":
    fail(f"detokenize --skip-special: got {got['text']!r}")
ok("detokenize --skip-special drops special tokens")

# ---- 2. forward against reference.safetensors --------------------------------------------------
ref_path = os.path.join(model, "reference.safetensors")
with open(ref_path, "rb") as f:
    header_len = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(header_len))
    data = f.read()


def tensor(name):
    """(flat list of floats, shape) of an F32 tensor, or None if absent."""
    if name not in header:
        return None
    entry = header[name]
    if entry["dtype"] != "F32":
        fail(f"{name}: dtype {entry['dtype']}, expected F32")
    begin, end = entry["data_offsets"]
    return list(struct.unpack(f"<{(end - begin) // 4}f", data[begin:end])), entry["shape"]


def rel_error(got, want):
    if len(got) != len(want):
        return float("inf")
    scale = max((abs(w) for w in want), default=0.0)
    diff = max((abs(g - w) for g, w in zip(got, want)), default=0.0)
    return diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf"))


reference = json.load(open(os.path.join(model, "reference.json")))
forwards = {name: pool.submit(run, ["forward", "--model", model, "--device", "cpu",
                                     "--ids", ids_arg(case["ids"]),
                                     "--positions", ids_arg(case["positions"])])
            for name, case in reference["cases"].items()}
for name, case in reference["cases"].items():
    ids, positions = case["ids"], case["positions"]
    label = f"forward {name} ({len(ids)} tokens at {positions[0]}..{positions[-1]})"
    out = parse_json(label, forwards[name].result())
    lp = tensor(f"{name}.logprobs")
    want_lp = lp[0] if lp else []  # a one-token case has no next-token log-probs
    if len(out["logprobs"]) != len(ids) - 1 or len(want_lp) != len(ids) - 1:
        fail(f"{label}: {len(out['logprobs'])} logprobs, reference {len(want_lp)}, "
             f"want {len(ids) - 1}")
    err = rel_error(out["logprobs"], want_lp)
    if err > 1e-4:
        fail(f"{label}: logprobs error {err:.3g} > 1e-4")
    ok(f"{label}: logprobs error {err:.2g}")
    hidden, shape = tensor(f"{name}.hidden")
    width = shape[1]
    last = hidden[-width:]
    if len(out["hidden_last"]) != width:
        fail(f"{label}: hidden_last has {len(out['hidden_last'])} values, want {width}")
    err = rel_error(out["hidden_last"], last)
    if err > 1e-4:
        fail(f"{label}: hidden_last error {err:.3g} > 1e-4")
    ok(f"{label}: hidden_last error {err:.2g}")
    logits, _ = tensor(f"{name}.last_logits")
    top = sorted(range(len(logits)), key=lambda i: (-logits[i], i))[:10]
    got_top = out["last_logits_top"]
    if [t[0] for t in got_top] != top:
        fail(f"{label}: last_logits_top ids {[t[0] for t in got_top]}, want {top}")
    scale = max(abs(v) for v in logits)
    worst = max(abs(t[1] - logits[t[0]]) for t in got_top) / scale
    if worst > 1e-4:
        fail(f"{label}: last_logits_top logits error {worst:.3g} > 1e-4")
    ok(f"{label}: last_logits_top ids match the reference top 10 (logit error {worst:.2g})")

# ---- 3. errors ---------------------------------------------------------------------------------


failures = []


def expect_failure(name, args, stdin=b"", exit_code=2, fragments=()):
    failures.append((name, pool.submit(run, args, stdin), exit_code, fragments))


def check_failure(name, result, exit_code, fragments):
    code, out, err = result
    if code == 0 or (exit_code is not None and code != exit_code):
        fail(f"{name}: exit {code}, want {exit_code}; stderr: {err[-300:]}")
    if out:
        fail(f"{name}: stdout should be empty, got {out[:200]!r}")
    if not err.strip():
        fail(f"{name}: no message on stderr")
    for f in fragments:
        if f not in err:
            fail(f"{name}: '{f}' not in stderr: {err[-300:]}")
    ok(f"{name}: exit {code}, stderr: {err.strip().splitlines()[-1][:100]}")


expect_failure("unknown command", ["summarize", "--model", model], fragments=["summarize"])
expect_failure("no command", ["--model", model])
expect_failure("unknown option", ["tokenize", "--model", model, "--frobnicate", "1"],
               fragments=["--frobnicate"])
expect_failure("bad --ids (detokenize)", ["detokenize", "--model", model, "--ids", "1,x,3"],
               fragments=["--ids", "'x'"])
expect_failure("bad --ids (forward)", ["forward", "--model", model, "--ids", "128000,,5"],
               fragments=["--ids"])
expect_failure("--ids missing (detokenize)", ["detokenize", "--model", model],
               fragments=["--ids"])
expect_failure("id outside the vocabulary (detokenize)",
               ["detokenize", "--model", model, "--ids", "5,128256"], fragments=["128256"])
expect_failure("id outside the vocabulary (forward)",
               ["forward", "--model", model, "--device", "cpu", "--ids", "128000,128256"],
               fragments=["128256"])
expect_failure("negative id (forward)",
               ["forward", "--model", model, "--device", "cpu", "--ids", "128000,-4"],
               fragments=["-4"])
expect_failure("--positions count", ["forward", "--model", model, "--device", "cpu",
                                     "--ids", "128000,5,6", "--positions", "0,1"],
               fragments=["--positions"])
expect_failure("invalid UTF-8 on stdin (tokenize)", ["tokenize", "--model", model],
               stdin=b"ab\xc3\x28", fragments=["UTF-8"])
expect_failure("missing model (tokenize)", ["tokenize", "--model", "/nonexistent/model"],
               stdin=b"hi", exit_code=3)
expect_failure("missing model (forward)",
               ["forward", "--model", "/nonexistent/model", "--ids", "128000"], exit_code=3)
expect_failure("--model missing", ["tokenize"], stdin=b"hi", fragments=["--model"])

for name, future, exit_code, fragments in failures:
    check_failure(name, future.result(), exit_code, fragments)
pool.shutdown()

print(f"PASS: {checks} checks", flush=True)
PYTHON
