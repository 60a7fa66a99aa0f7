#!/usr/bin/env bash
# The README's first command: set up, build, and answer a question over a ~32K-token document on
# the CPU with the shipped pass-key model.
#
# 1. scripts/setup.sh installs what is missing (Debian packages) and builds into build-cpu/.
# 2. A ~32K-token haystack with a pass key hidden a third of the way in is written
#    (scripts/make_request.py; the filler is what models/passkey-demo was trained on).
# 3. sieve-run answers it with ParallelComp (chunks of 768 tokens scored by how well they predict
#    the question; the best one kept) and prints the answer and the accounting.
# 4. For contrast, the same document with plain full attention: the model was trained on
#    1K-token windows and has never seen a position past 1024, so it fails.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh --no-cuda --build-dir build-cpu

MODEL=models/passkey-demo
RUN="./build-cpu/tools/sieve-run --model $MODEL --device cpu --request"
python3 scripts/make_request.py --words 27500 --depth 0.35 --key 58213 --keep-chunks 1 \
  > build-cpu/quickstart_parallelcomp.json
python3 scripts/make_request.py --words 27500 --depth 0.35 --key 58213 --mode full \
  > build-cpu/quickstart_full.json

echo
echo "== ParallelComp: a ~32K-token document, the pass key is 58213 =="
$RUN build-cpu/quickstart_parallelcomp.json | tee build-cpu/quickstart_response.json \
  | python3 scripts/show_response.py
echo
echo "== The same document with full attention (for contrast; about a minute on 2 cores) =="
$RUN build-cpu/quickstart_full.json | python3 scripts/show_response.py | sed -n 1p  # reads it all: no broken pipe
