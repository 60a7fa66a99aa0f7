#!/usr/bin/env bash
# sieve-bench eval on small LongBench- and InfiniteBench-style files:
#   1. --score-only: the metrics on given predictions must equal hand-computed values
#      (contains, exact match, SQuAD-style token F1, best over several answers, "auto").
#   2. a real run of models/passkey-demo on two pass-key records (InfiniteBench "answer" form)
#      must score 100 %.
#
#   bash tests/cli/eval_test.sh BUILD_DIR FIXTURES_DIR      (CTest: ctest -L cli)
set -euo pipefail
BUILD_DIR=$1
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BENCH="$BUILD_DIR/tools/sieve-bench"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

cat > "$TMP/scored.jsonl" <<'JSON'
{"context": "x", "input": "q", "answers": ["Paris"], "prediction": "It is Paris."}
{"context": "x", "input": "q", "answers": ["the Eiffel Tower"], "prediction": "Eiffel tower"}
{"context": "x", "input": "q", "answers": ["blue whale"], "prediction": "the largest is the blue whale of the sea"}
{"context": "x", "input": "q", "answer": ["42", "forty two"], "prediction": "The answer: 42"}
JSON
python3 - "$BENCH" "$TMP/scored.jsonl" <<'PY'
import json, subprocess, sys
bench, data = sys.argv[1:3]
def run(metric):
    p = subprocess.run([bench, "eval", "--model", "unused", "--data", data, "--metric", metric,
                        "--score-only"], capture_output=True, text=True)
    if p.returncode != 0:
        print("FAIL", p.stderr); sys.exit(1)
    lines = [json.loads(l) for l in p.stdout.splitlines()]
    return [l["score"] for l in lines[:-1]], lines[-1]
# contains: Paris yes; "eiffel tower" in "eiffel tower" yes; "blue whale" yes; 42 yes.
scores, summary = run("contains")
assert scores == [1, 1, 1, 1], scores
# em: only "Eiffel tower" == "the Eiffel Tower" after normalization.
scores, _ = run("em")
assert scores == [0, 1, 0, 0], scores
# f1: "it is paris" vs "paris": p=1/3 r=1 -> 0.5; eiffel 1.0;
# "largest is blue whale of sea" (6 words) vs "blue whale" (2): p=2/6 r=1 -> 0.5; "answer 42" vs "42" -> 2/3.
scores, summary = run("f1")
expect = [0.5, 1.0, 0.5, 2 / 3]
assert all(abs(a - b) < 1e-9 for a, b in zip(scores, expect)), scores
assert abs(summary["score_percent"] - 100 * sum(expect) / 4) < 1e-6, summary
# auto: contains when every answer is one word ("Paris"), f1 otherwise ("forty two" makes the
# last record an F1 record).
scores, summary = run("auto")
assert scores == [1, 1.0, 0.5, 2 / 3], scores
print("ok   metrics: contains, em, f1 and auto match the hand-computed values")
PY

python3 - "$ROOT" "$TMP/passkey.jsonl" <<'PY'
import json, subprocess, sys
root, out = sys.argv[1:3]
with open(out, "w") as f:
    for key, depth in ((41421, 0.3), (17320, 0.7)):
        req = json.loads(subprocess.check_output([sys.executable, f"{root}/scripts/make_request.py",
                                                  "--words", "3000", "--depth", str(depth), "--key", str(key)]))
        f.write(json.dumps({"context": req["document"], "input": "What is the pass key?",
                            "answer": [str(key)]}) + "\n")
PY
"$BENCH" eval --model "$ROOT/models/passkey-demo" --data "$TMP/passkey.jsonl" --device cpu \
  --query-template " {input} The pass key is" --keep-chunks 1 --max-new-tokens 8 > "$TMP/eval.out"
tail -1 "$TMP/eval.out"
python3 -c "import json,sys; s=json.loads(open(sys.argv[1]).read().splitlines()[-1]); sys.exit(0 if s['score_percent']==100 and s['records']==2 else 1)" "$TMP/eval.out" \
  && echo "PASS: pass-key records scored 100 %" || { echo "FAIL: $(tail -1 "$TMP/eval.out")"; exit 1; }
