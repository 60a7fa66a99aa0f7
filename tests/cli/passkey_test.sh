#!/usr/bin/env bash
# The shipped pass-key model (models/passkey-demo) answers ~8K-token haystacks through sieve-run
# on the CPU: three documents, the needle near the start, the middle and the end, each with its
# own key; ParallelComp with k = 1 must return the key.
#
#   bash tests/cli/passkey_test.sh BUILD_DIR FIXTURES_DIR      (CTest: ctest -L cli)
set -euo pipefail
BUILD_DIR=$1
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
MODEL="$ROOT/models/passkey-demo"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
for spec in "0.1 31415" "0.5 27182" "0.9 16180"; do
  read -r depth key <<< "$spec"
  python3 "$ROOT/scripts/make_request.py" --words 7000 --depth "$depth" --key "$key" --seed "$key" \
    --keep-chunks 1 > "$TMP/req.json"
  "$BUILD_DIR/tools/sieve-run" --model "$MODEL" --device cpu --request "$TMP/req.json" > "$TMP/out.json"
  result=$(python3 - "$TMP/out.json" "$key" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
a = r["accounting"]
ok = sys.argv[2] in r["text"]
print(f"{'ok  ' if ok else 'FAIL'} depth key={sys.argv[2]} answer={r['text']!r} tokens={a['document_tokens']} "
      f"chunks={len(a['chunks'])} kept={a['kept_chunks']}")
sys.exit(0 if ok else 1)
PY
) || fail=1
  echo "$result (depth $depth)"
done
[[ $fail -eq 0 ]] && echo "PASS: 3 haystacks answered" || { echo "FAIL"; exit 1; }
