#!/usr/bin/env bash
# End-to-end test of the service mode of sieve-node (tools/sieve_node.cc --serve,
# coordinator/service.h) under mpirun on the CPU backend with tests/fixtures/tiny-llama3, through
# sieve-client (HTTP and native), curl (completions, streaming, chat) and raw sockets; every
# answer must equal sieve-run's. Covers every bad-input class, the API key, timeouts, the
# connection limit, cancel on disconnect (KV freed on the decode node), admission (429 by queue,
# tokens and KV memory, 413), decode batching (--max-decode-batch), the one-process service
# (-np 1), graceful SIGTERM / SIGINT shutdown, and a load test of 32 clients x 10 requests.
# The checks are in tests/cli/service_test.py; each prints one line.
#
#   bash tests/cli/service_test.sh BUILD_DIR FIXTURES_DIR      (CTest: ctest -L cli)
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BUILD_DIR FIXTURES_DIR" >&2
  exit 2
fi
BUILD_DIR=$(cd "$1" && pwd)
FIXTURES_DIR=$(cd "$2" && pwd)
for tool in sieve-node sieve-client sieve-run; do
  if [[ ! -x "$BUILD_DIR/tools/$tool" ]]; then
    echo "SKIP: $BUILD_DIR/tools/$tool not built (sieve-node needs SIEVE_ENABLE_MPI=ON)"
    exit 77
  fi
done
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# Three ranks share two cores: OpenMP threads of the CPU backend that spin-wait for a descheduled
# partner make decoding ten times slower at random (and the timing checks flaky); one each.
export OMP_NUM_THREADS=1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
timeout 900 python3 "$(dirname "$0")/service_test.py" "$BUILD_DIR" "$FIXTURES_DIR" "$TMP"
