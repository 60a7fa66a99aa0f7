#!/usr/bin/env bash
# Sets up a Debian 12 machine for Sieve, then configures and builds it.
#
#   scripts/setup.sh            install what is missing, configure, build (Release) into build/
#   scripts/setup.sh --test     ... and run the test suite (CTest); this is what .ci/run does
#
# Options: --build-dir DIR (default build), --no-cuda (skip the CUDA backend even if nvcc exists),
#          --jobs N (default: all cores), --skip-install (never call apt-get).
# Idempotent: packages already present are not reinstalled and the build is incremental.
# Installs from Debian's own repositories only; needs root or sudo when something is missing.
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=build
RUN_TESTS=0
CUDA_FLAG=()
SKIP_INSTALL=0
JOBS=$(nproc)
while [[ $# -gt 0 ]]; do
  case "$1" in
    --test) RUN_TESTS=1 ;;
    --build-dir) BUILD_DIR=$2; shift ;;
    --no-cuda) CUDA_FLAG=(-DSIEVE_ENABLE_CUDA=OFF) ;;
    --jobs) JOBS=$2; shift ;;
    --skip-install) SKIP_INSTALL=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '[setup] %s\n' "$*" >&2; }

PACKAGES=(
  build-essential cmake ninja-build pkg-config git python3
  libboost1.81-dev            # Asio, Beast, JSON (header-only use)
  libprotobuf-dev protobuf-compiler
  libopenmpi-dev openmpi-bin
  libgtest-dev
  libopenblas-dev             # CPU GEMM
  iproute2                    # network namespaces for the two-host test
  curl                        # the service test talks HTTP through it
  clang libclang-rt-dev       # libFuzzer: the short fuzz run of the service's parsers
)

if [[ $SKIP_INSTALL -eq 0 ]]; then
  missing=()
  for pkg in "${PACKAGES[@]}"; do
    [[ $pkg == \#* ]] && continue
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    log "installing: ${missing[*]}"
    SUDO=()
    [[ $(id -u) -ne 0 ]] && SUDO=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -q
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    log "all packages present"
  fi
fi

# CUDA 13 lives in /usr/local/cuda on our machines; CMake finds nvcc there if it is not on PATH.
if [[ -x /usr/local/cuda/bin/nvcc && -z "${CUDACXX:-}" ]] && ! command -v nvcc >/dev/null; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi

log "configuring $BUILD_DIR"
mkdir -p "$BUILD_DIR"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "${CUDA_FLAG[@]}" >"$BUILD_DIR/configure.log" 2>&1 \
  || { cat "$BUILD_DIR/configure.log" >&2; exit 1; }
log "building with $JOBS jobs"
cmake --build "$BUILD_DIR" -j "$JOBS"

if [[ $RUN_TESTS -eq 1 ]]; then
  # mpirun refuses root unless told; CI runs as root.
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  log "running tests"
  ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" --timeout 900
fi
