#!/usr/bin/env bash
# GPU check: configure and build Sieve with CUDA for Hopper (sm_90a) and the benchmarks, run the
# whole unit-test binary (GPU cases included) and then every benchmark that was built.
#
#   bash bench/gpu_check.sh            # from the repository root, on a machine with a GPU
#
# Logs go to ${OUT:-/tmp/out}: cmake.log, build.log, unit_tests.log (+ unit_tests.xml),
# bench_<name>.log and summary.txt. Exit status: non-zero if the build, a test or a benchmark's
# validation failed.
set -uo pipefail

OUT_DIR="${OUT:-/tmp/out}"
BUILD_DIR="${BUILD_DIR:-build-gpu}"
JOBS="${JOBS:-16}"
mkdir -p "${OUT_DIR}"
SUMMARY="${OUT_DIR}/summary.txt"
: > "${SUMMARY}"
status=0

log() { echo "$*" | tee -a "${SUMMARY}"; }

log "== gpu_check $(date -u +%FT%TZ) on $(hostname)"
if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "${SUMMARY}"
fi

if ! cmake -S . -B "${BUILD_DIR}" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_ARCHITECTURES=90a -DSIEVE_BUILD_BENCH=ON > "${OUT_DIR}/cmake.log" 2>&1; then
  log "configure FAILED (see cmake.log)"
  tail -30 "${OUT_DIR}/cmake.log"
  exit 1
fi
if ! cmake --build "${BUILD_DIR}" -j"${JOBS}" > "${OUT_DIR}/build.log" 2>&1; then
  log "build FAILED (see build.log)"
  grep -E "error|FAILED" "${OUT_DIR}/build.log" | head -30
  exit 1
fi
log "build OK"

UNIT="./${BUILD_DIR}/tests/sieve_unit_tests"
if [[ -x "${UNIT}" ]]; then
  "${UNIT}" --gtest_output="xml:${OUT_DIR}/unit_tests.xml" > "${OUT_DIR}/unit_tests.log" 2>&1
  rc=$?
  passed=$(grep -cE '^\[       OK \]' "${OUT_DIR}/unit_tests.log")
  failed=$(grep -cE '^\[  FAILED  \] [A-Za-z]' "${OUT_DIR}/unit_tests.log")
  skipped=$(grep -cE '^\[  SKIPPED \] [A-Za-z]' "${OUT_DIR}/unit_tests.log")
  log "unit tests: rc=${rc} passed=${passed} failed=${failed} skipped=${skipped}"
  grep -E '^\[  FAILED  \] [A-Za-z]' "${OUT_DIR}/unit_tests.log" | sort -u | tee -a "${SUMMARY}"
  grep -E '^\[  SKIPPED \] [A-Za-z]' "${OUT_DIR}/unit_tests.log" | sort -u | tee -a "${SUMMARY}"
  [[ ${rc} -ne 0 ]] && status=1
else
  log "unit tests: ${UNIT} missing"
  status=1
fi

shopt -s nullglob
for bench in "./${BUILD_DIR}"/tests/sieve-*-bench; do
  name=$(basename "${bench}")
  log "== ${name}"
  "${bench}" > "${OUT_DIR}/bench_${name}.log" 2>&1
  rc=$?
  tee -a "${SUMMARY}" < "${OUT_DIR}/bench_${name}.log"
  if [[ ${rc} -ne 0 ]]; then
    log "${name}: rc=${rc} (validation failure or error)"
    status=1
  fi
done

log "== done, status ${status}"
exit ${status}
