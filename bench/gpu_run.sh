#!/usr/bin/env bash
# One device call's worth of GPU work, by phase: everything this project measures on a GPU.
#
#   bash bench/gpu_run.sh PHASE...      phases: probe train bench quality scaling nccl
#
#   probe     what the machine has (GPU, CUDA, MPI, NCCL, compilers)
#   build     build the binaries here from SIEVE_SRC (a clean `git archive` of the measured commit)
#   unit      the GPU cases of the unit tests
#   train     tools/train_passkey.py -> $OUT/passkey-demo (the shipped demo model)
#   bench     issue "CUDA backend": GEMM rate, attention kernel, prefill of the Llama-3.1-8B shapes
#             (parallel mode, 8K chunks, and our full attention), decode ms/token, and the
#             PyTorch/HF baseline (../shared/tools/hf_baseline.py) in the same call
#   prefill   the 128K prefill alone: cuBLASLt candidates per projection, bf16 vs fp32 residual
#   quality   pass-key accuracy on the GPU, 1K..128K, every mode (models/passkey-demo)
#   scaling   sieve-bench scaling on every visible GPU (1, 2, 4, ...) + the NCCL p2p rate
#   throughput  sieve-node --serve on every visible GPU, 8 documents of 32K..128K through
#             tools/sieve_load.py, concurrently and one at a time
#   consistency  every oracle scenario through sieve-node on 1, 2 and 4 GPUs: kept chunks and
#             generated ids must agree across GPU counts (bf16: they are compared with each
#             other, not with the float32 oracle)
#
# Binaries: the build phase's, else build-gpu/ when it exists, else SIEVE_BIN (default .carry/bin: built on the
# development machine with `cmake -S . -B build-cuda -DSIEVE_USE_OPENBLAS=OFF`, CUDA 13, sm_90a),
# with .carry/lib (and .carry/lib-mpi when the machine has no Open MPI) on the library path.
# Results: $OUT/*.jsonl, *.json, *.png, unit_gpu.log (at most 8 files come back from a device call:
# scratch files go to /tmp) and a summary on stdout.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
# The binaries of build-gpu/ in one folder, as .carry/bin lays them out.
collect_bins() {
  mkdir -p /tmp/sieve-bin
  cp build-gpu/tools/sieve-{bench,node,run} build-gpu/tests/sieve_unit_tests \
    build-gpu/tests/sieve-{attention,gemm,gemm-swiglu}-bench /tmp/sieve-bin/ 2>/dev/null
  BIN=/tmp/sieve-bin
}
BIN=${SIEVE_BIN:-.carry/bin}
if [[ -x build-gpu/tools/sieve-bench && -z ${SIEVE_BIN:-} ]]; then collect_bins; fi
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib:${LD_LIBRARY_PATH:-}
if ! ldconfig -p | grep -q "libmpi.so.40 "; then export LD_LIBRARY_PATH=$PWD/.carry/lib-mpi:$LD_LIBRARY_PATH; fi
export NCCL_NVLS_ENABLE=0 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MODEL8B=tests/fixtures/llama3.1-8b
HF_BASELINE=${HF_BASELINE:-.carry/hf_baseline.py}
[[ -f $HF_BASELINE ]] || HF_BASELINE=../shared/tools/hf_baseline.py
say() { echo "[gpu_run $(date -u +%T)] $*"; }

for phase in "$@"; do
  case $phase in
    probe)
      say "probe"
      nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader
      for t in nvcc cmake mpirun protoc g++ python3; do printf '%-8s %s\n' "$t" "$(command -v $t || echo missing)"; done
      ldconfig -p | grep -E "libnccl|libmpi.so|libprotobuf.so|libopenblas" | head
      ls /usr/include/boost/version.hpp /usr/include/gtest 2>&1 | head -3
      ;;
    build)
      # Builds the GPU binaries here from SIEVE_SRC (default: this tree; e.g. a `git archive` of
      # one commit unpacked, so what is measured is exactly that commit) into build-gpu/ (kept
      # while the machine stays warm) and uses them in the phases after this one. With
      # SIEVE_EXPORT_BINS=1 the binaries are also copied to $OUT, to carry to another machine.
      src=${SIEVE_SRC:-.}
      say "build $src (sm_90a)"
      cmake -S "$src" -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_CUDA_ARCHITECTURES=90a -DSIEVE_BUILD_BENCH=ON -DSIEVE_USE_OPENBLAS=OFF \
        >/tmp/sieve-build.log 2>&1 &&
        cmake --build build-gpu -j "$(nproc)" --target sieve-bench sieve-node sieve-run \
          sieve_unit_tests sieve-attention-bench sieve-gemm-bench sieve-gemm-swiglu-bench \
          >>/tmp/sieve-build.log 2>&1
      if [[ $? -ne 0 ]]; then say "build FAILED"; grep -E "error|FAILED" -A3 /tmp/sieve-build.log | head -40; exit 1; fi
      collect_bins
      if [[ ${SIEVE_EXPORT_BINS:-0} == 1 ]]; then cp /tmp/sieve-bin/* "$OUT/"; strip "$OUT"/sieve* 2>/dev/null; fi
      say "built in $SECONDS s"
      ;;
    unit)
      # The unit tests' GPU cases (every kernel against its CPU reference, the CUDA backend
      # against the CPU backend, the pipeline on the GPU against the oracle).
      unit=$BIN/sieve_unit_tests
      [[ -x $unit ]] || unit=build-gpu/tests/sieve_unit_tests
      say "unit tests, GPU cases ($unit)"
      SIEVE_FIXTURES=$PWD/tests/fixtures "$unit" --gtest_brief=1 \
        --gtest_filter="${UNIT_FILTER:-*}" >"$OUT/unit_gpu.log" 2>&1
      say "unit tests exited $?"; grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED TEST" "$OUT/unit_gpu.log" | head -20
      ;;
    train)
      say "train the pass-key demo model"
      PYTHONUNBUFFERED=1 python3 tools/train_passkey.py --out "$OUT/passkey-demo" --minutes "${TRAIN_MINUTES:-6}" 2>&1 \
        | grep -vE "^\{\"step\": [0-9]*[1-9]00," | tail -40
      ;;
    bench)
      say "bench: GEMM, attention, prefill, decode (Llama-3.1-8B shapes, random weights)"
      "$BIN/sieve-bench" gemm --device cuda | tee "$OUT/bench.jsonl"
      "$BIN/sieve-attention-bench" 2>&1 | tail -12
      "$BIN/sieve-gemm-bench" 2>&1 | tail -12
      "$BIN/sieve-gemm-swiglu-bench" 2>&1 | tail -16
      "$BIN/sieve-bench" prefill --model $MODEL8B --random-weights 0 --device cuda \
        --tokens 32768,65536,131072 --chunk-tokens 8192 --mode parallel --reps 3 --breakdown | tee -a "$OUT/bench.jsonl"
      "$BIN/sieve-bench" prefill --model $MODEL8B --random-weights 0 --device cuda \
        --tokens 32768,65536,131072 --mode full --reps 1 | tee -a "$OUT/bench.jsonl"
      # What two of the choices are worth: GEMM tuning, and an fp32 residual.
      for choice in "--gemm-tuning on" "--residual-dtype f32"; do
        "$BIN/sieve-bench" prefill --model $MODEL8B --random-weights 0 --device cuda \
          --tokens 131072 --chunk-tokens 8192 --mode parallel --reps 3 $choice | tee -a "$OUT/bench.jsonl"
      done
      "$BIN/sieve-bench" decode --model $MODEL8B --random-weights 0 --device cuda \
        --prompt-tokens 24576 --steps 64 --breakdown | tee -a "$OUT/bench.jsonl"
      say "HF baseline"
      LENGTHS=${HF_LENGTHS:-32768,131072} DECODE_STEPS=32 PYTHONUNBUFFERED=1 python3 "$HF_BASELINE" 2>&1 \
        | grep '^{' | tee "$OUT/hf_baseline.jsonl"
      ;;
    prefill)
      # The 128K prefill alone, for iterating on it: every cuBLASLt candidate of the four
      # projections at one forward's rows, then the prefill with the bf16 (default) and the fp32
      # residual stream, with the per-op breakdown, then decode.
      say "prefill: GEMM candidates, 128K prefill by residual dtype"
      [[ ${GEMM_ROWS:-32768} != 0 ]] &&
        "$BIN/sieve-gemm-bench" prefill "${GEMM_ROWS:-32768}" 2>&1 | tee "$OUT/gemm_candidates.txt"
      for residual in bf16 f32; do
        "$BIN/sieve-bench" prefill --model $MODEL8B --random-weights 0 --device cuda \
          --tokens 131072 --chunk-tokens 8192 --mode parallel --reps 3 --breakdown \
          --residual-dtype $residual | tee -a "$OUT/prefill.jsonl"
      done
      "$BIN/sieve-bench" decode --model $MODEL8B --random-weights 0 --device cuda \
        --prompt-tokens 24576 --steps 64 --breakdown | tee -a "$OUT/prefill.jsonl"
      ;;
    quality)
      # Issue "pass-key model" (bench/RESULTS.md section 3): ParallelComp at every length and
      # depth (20 haystacks each), then the other modes (10 each).
      say "pass-key quality on the GPU, 1K..128K"
      depths=0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1
      "$BIN/sieve-bench" quality --model models/passkey-demo --device cuda --depths $depths \
        --lengths 1024,2048,4096,8192,16384,32768,65536,131072 --samples 20 \
        --modes parallelcomp_k1,parallelcomp_k3 --out "$OUT/quality_parallelcomp.json" 2>&1 | tail -4
      "$BIN/sieve-bench" quality --model models/passkey-demo --device cuda --depths $depths \
        --lengths 1024,2048,8192,32768,131072 --samples 10 \
        --modes full,truncated,parallel,compress,calibrate --out "$OUT/quality_modes.json" 2>&1 | tail -8
      ;;
    scaling)
      n=$(nvidia-smi -L | wc -l)
      gpus=1; g=2; while [[ $g -le $n ]]; do gpus="$gpus,$g"; g=$((g * 2)); done
      say "NCCL point-to-point"
      mpirun -np 2 --allow-run-as-root -x NCCL_NVLS_ENABLE=0 -x LD_LIBRARY_PATH "$BIN/sieve-bench" nccl \
        | tee "$OUT/nccl.jsonl"
      say "scaling on $gpus GPUs"; mkdir -p /tmp/sieve-scaling
      "$BIN/sieve-bench" scaling --model $MODEL8B --random-weights 0 --gpus "$gpus" \
        --tokens "${SCALING_TOKENS:-32768,65536,131072}" --node "$BIN/sieve-node" --work-dir /tmp/sieve-scaling \
        --out "$OUT/scaling.json" --png "$OUT/scaling.png" --reps 2
      ;;
    throughput)
      # Issue "service": a stream of 8 documents of 32K..128K tokens through the HTTP front end of
      # sieve-node --serve on every visible GPU, concurrently and then one at a time
      # (tools/sieve_load.py), Llama-3.1-8B shapes with random weights.
      n=$(nvidia-smi -L | wc -l)
      say "service throughput on $n GPUs"
      ready=/tmp/sieve-ready.json service_log=/tmp/sieve-service.log
      rm -f $ready
      mpirun -np $((n + 1)) --allow-run-as-root -x NCCL_NVLS_ENABLE=0 -x LD_LIBRARY_PATH \
        "$BIN/sieve-node" --model $MODEL8B --random-weights 0 --device cuda --serve \
        --listen 127.0.0.1:18080 --native-listen off --ready-file $ready \
        --max-prompt-tokens 262144 --grace-s 5 >$service_log 2>&1 &
      mpirun_pid=$!
      for _ in $(seq 600); do [[ -s $ready ]] && break; sleep 0.5; done
      if [[ ! -s $ready ]]; then say "service did not start"; tail -30 $service_log; kill $mpirun_pid; continue; fi
      # One short request first: the first forward pays cuBLAS / NCCL initialization.
      python3 tools/sieve_load.py --url http://127.0.0.1:18080 --lengths 8192 --max-new-tokens 4 \
        --skip-sequential >/dev/null
      python3 tools/sieve_load.py --url http://127.0.0.1:18080 --requests 8 --min-tokens 32768 \
        --max-tokens 131072 --max-new-tokens 32 --out "$OUT/throughput.json" >/dev/null
      python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); [print(k, {m: r[k][m] for m in ("wall_s","requests_per_s","client_ttft_s","server_ttft_s","prefill_s")}) for k in ("concurrent","sequential")]' "$OUT/throughput.json"
      curl -s http://127.0.0.1:18080/metrics | grep -E "^sieve_(requests|kv_bytes)" | head -20
      kill -TERM "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' $ready)"
      wait $mpirun_pid; say "service exited $?"; grep -iE "error|warn" $service_log | head -5
      ;;
    consistency)
      n=$(nvidia-smi -L | wc -l)
      say "consistency across GPU counts (tiny model, every oracle scenario)"
      SIEVE_CLI_DIR=tests/cli python3 - "$BIN/sieve-node" "$n" "$OUT" <<'PY'
import json, os, subprocess, sys
sys.path.insert(0, os.environ["SIEVE_CLI_DIR"])
import oracle_compare as oc
node, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
oracle = json.load(open("tests/fixtures/pipeline/oracle_dev.json"))
path = os.path.join(out, "consistency.jsonl")
with open(path, "w") as f:
    for name, sc in oracle["scenarios"].items():
        req = oc.request_for(oracle, sc["params"]); req["request_id"] = name
        f.write(json.dumps(req) + "\n")
runs = {}
for g in [x for x in (1, 2, 4, 8) if x <= n]:
    p = subprocess.run(["mpirun", "-np", str(g + 1), "--allow-run-as-root", "-x", "NCCL_NVLS_ENABLE=0",
                        "-x", "LD_LIBRARY_PATH", node, "--model", "tests/fixtures/tiny-llama3",
                        "--device", "cuda", "--request", path], capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        print(f"{g} GPUs: exit {p.returncode}\n{p.stderr[-3000:]}"); sys.exit(1)
    runs[g] = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
base = min(runs)
for g, rs in runs.items():
    same_kept = all(a["accounting"]["kept_chunks"] == b["accounting"]["kept_chunks"] for a, b in zip(rs, runs[base]))
    same_ids = all(a["generated_ids"] == b["generated_ids"] for a, b in zip(rs, runs[base]))
    vs_oracle = sum(r["accounting"]["kept_chunks"] == sc["result"]["kept_chunks"]
                    for r, sc in zip(rs, oracle["scenarios"].values()))
    print(f"{g} GPUs: {len(rs)} scenarios, kept chunks same as {base} GPU: {same_kept}, "
          f"generated ids same: {same_ids}, kept chunks equal to the fp32 oracle: {vs_oracle}/{len(rs)}")
PY
      ;;
    *) echo "unknown phase $phase" >&2; exit 2 ;;
  esac
done
say "done"
