#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (a small standalone build of tests/fuzz) and runs each
# for a while on its seed corpus: the short CI run (CTest test fuzz.short, label fuzz) and, with a
# longer time, the long run reported in tests/fuzz/README.md.
#
#   bash tests/fuzz/run_fuzz.sh BUILD_DIR [SECONDS_PER_TARGET=25] [--prebuilt DIR]
#
# Exit 0: no crash, leak, timeout or broken invariant; 1: a finding (the reproducer is written to
# BUILD_DIR/fuzz/artifacts/ and its path printed); 77: skipped (no clang with libFuzzer here).
# The generated corpus is kept in BUILD_DIR/fuzz/corpus-<target> between runs.
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 BUILD_DIR [SECONDS_PER_TARGET] [--prebuilt DIR]" >&2
  exit 2
fi
BUILD_DIR=$(cd "$1" && pwd)
SECONDS_PER_TARGET=${2:-25}
PREBUILT=""
if [[ ${3:-} == "--prebuilt" ]]; then PREBUILT=$4; fi
HERE=$(cd "$(dirname "$0")" && pwd)
FUZZ_DIR="$BUILD_DIR/fuzz"
mkdir -p "$FUZZ_DIR/artifacts"

if [[ -z $PREBUILT ]]; then
  CLANGXX=${CLANGXX:-$(command -v clang++ || command -v clang++-14 || true)}
  if [[ -z $CLANGXX ]]; then
    echo "SKIP: no clang++ (the fuzz targets need libFuzzer)"
    exit 77
  fi
  probe="$FUZZ_DIR/probe"
  printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' \
    > "$probe.cc"
  if ! "$CLANGXX" -fsanitize=fuzzer,address "$probe.cc" -o "$probe" 2>"$probe.log"; then
    echo "SKIP: $CLANGXX cannot link -fsanitize=fuzzer (install libclang-rt-dev)"
    cat "$probe.log"
    exit 77
  fi
  start=$(date +%s)
  cmake -S "$HERE" -B "$FUZZ_DIR/build" -G Ninja -DCMAKE_CXX_COMPILER="$CLANGXX" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$FUZZ_DIR/configure.log" 2>&1 \
    || { cat "$FUZZ_DIR/configure.log"; exit 1; }
  cmake --build "$FUZZ_DIR/build" -j "${SIEVE_FUZZ_JOBS:-2}" >"$FUZZ_DIR/build.log" 2>&1 \
    || { tail -50 "$FUZZ_DIR/build.log"; exit 1; }
  echo "built the fuzz targets in $(( $(date +%s) - start )) s"
  PREBUILT="$FUZZ_DIR/build"
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for target in http native; do
  binary="$PREBUILT/sieve-fuzz-$target"
  corpus="$FUZZ_DIR/corpus-$target"
  mkdir -p "$corpus"
  echo "=== sieve-fuzz-$target for ${SECONDS_PER_TARGET} s"
  log="$FUZZ_DIR/$target.log"
  if "$binary" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
       -max_len=8192 -print_final_stats=1 -artifact_prefix="$FUZZ_DIR/artifacts/$target-" \
       "$corpus" "$HERE/corpus/$target" >"$log" 2>&1; then
    grep -E "^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)" "$log" || true
    grep -E "^#[0-9]+[[:space:]]+DONE" "$log" | tail -1 || true
  else
    status=1
    echo "FINDING in sieve-fuzz-$target:"
    grep -E "ERROR|invariant broken|SUMMARY|Test unit written" "$log" | head -20
    tail -40 "$log"
  fi
done
exit $status
