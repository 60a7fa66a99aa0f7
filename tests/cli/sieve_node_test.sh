#!/usr/bin/env bash
# CLI test of sieve-node (tools/sieve_node.cc) under mpirun on the CPU backend.
#
#   bash tests/cli/sieve_node_test.sh BUILD_DIR FIXTURES_DIR      (CTest: ctest -L cli)
#
# 1. Every scenario of oracle_dev.json, as one batch of requests (one JSON per line), through
#    mpirun -np 1 (every role in one process), 2 (one worker that is also the decode node),
#    3 and 4 (two and three workers, the last one decoding) and -np 4 with --decode-ranks 1:
#    every response must match the oracle exactly as sieve-run's do (tests/cli/oracle_compare.py),
#    so kept chunks and generated ids are the same for every N; and -np 9 (eight workers and a
#    coordinator, the rank count of one 8-GPU node) the same.
# 2. A rank that dies mid-request (--debug-fail-rank 2) ends the job within 30 s with a non-zero
#    exit and a message naming the rank; nothing hangs.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BUILD_DIR FIXTURES_DIR" >&2
  exit 2
fi
BUILD_DIR=$1
FIXTURES_DIR=$2
NODE="$BUILD_DIR/tools/sieve-node"
if [[ ! -x "$NODE" ]]; then
  echo "SKIP: $NODE not built (SIEVE_ENABLE_MPI=OFF)"
  exit 77
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

SIEVE_CLI_DIR="$(cd "$(dirname "$0")" && pwd)" python3 - "$NODE" "$FIXTURES_DIR" "$TMP" <<'PYTHON'
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.environ["SIEVE_CLI_DIR"])
import oracle_compare as oc  # noqa: E402

node, fixtures, tmp = sys.argv[1:4]
model = os.path.join(fixtures, "tiny-llama3")
oracle = json.load(open(os.path.join(fixtures, "pipeline", "oracle_dev.json")))
names = list(oracle["scenarios"])
batch = os.path.join(tmp, "requests.jsonl")
with open(batch, "w") as f:
    for name in names:
        req = oc.request_for(oracle, oracle["scenarios"][name]["params"])
        req["request_id"] = name
        f.write(json.dumps(req) + "\n")


def mpirun(np, *extra, timeout=300):
    cmd = ["mpirun", "-np", str(np), "--oversubscribe", node, "--model", model, "--device", "cpu",
           "--request", batch, *extra]
    start = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode(), time.monotonic() - start


for np, extra in [(1, []), (2, []), (3, []), (4, []), (4, ["--decode-ranks", "1"]), (9, [])]:
    label = f"np={np}{' ' + ' '.join(extra) if extra else ''}"
    print(f"=== mpirun {label}", flush=True)
    code, out, err, secs = mpirun(np, *extra)
    if code != 0:
        oc.fail(f"{label}: exit {code}\nstdout: {out[:1000]}\nstderr: {err[-3000:]}")
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    oc.expect_equal(f"{label}: one response per request", len(lines), len(names))
    for name, r in zip(names, lines):
        oc.expect_equal(f"{label} {name}: request_id", r.get("request_id"), name)
        oc.check_scenario(f"{label} {name}", oracle, oracle["scenarios"][name], r)
    workers = max(1, np - 1)
    oc.expect_equal(f"{label}: workers reported", lines[0]["accounting"]["workers"], workers)
    print(f"ok   {label}: {len(names)} scenarios in {secs:.1f} s", flush=True)

print("=== a rank that dies mid-request", flush=True)
code, out, err, secs = mpirun(4, "--debug-fail-rank", "2", timeout=60)
if code == 0:
    oc.fail("the job with a dead rank exited 0")
if secs > 30:
    oc.fail(f"the job with a dead rank took {secs:.1f} s to end (limit 30 s)")
if "rank 2" not in err:
    oc.fail(f"no message names rank 2; stderr: {err[-2000:]}")
oc.ok(f"dead rank 2: job ended in {secs:.1f} s with exit {code}, stderr names the rank")
print(f"PASS: {oc.checks} checks", flush=True)
PYTHON
