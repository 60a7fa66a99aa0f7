#!/usr/bin/env bash
# Runs an MPI test binary under mpirun, as CTest does for sieve_mpi_tests (STYLE rule 19):
#
#   launch/run_mpi_test.sh <binary> <np> [binary arguments...]
#   launch/run_mpi_test.sh build/tests/sieve_mpi_tests 4 --gtest_filter='MpiComm*'
#
# Uses --oversubscribe (CI machines have fewer cores than ranks), --tag-output (each line says
# [job,rank]) and --bind-to none (oversubscribed ranks must not share one core). As root, Open
# MPI needs explicit consent: this script gives it (OMPI_ALLOW_RUN_AS_ROOT*), as containers and
# CI runners often run as root.
# MPIRUN overrides the mpirun binary; SIEVE_MPIRUN_ARGS adds arguments (split on spaces).
# The exit code is mpirun's: non-zero when any rank failed a test or died.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 <binary> <np> [binary arguments...]" >&2
  exit 2
fi
binary=$1
np=$2
shift 2

if [[ ! -x "$binary" ]]; then
  echo "run_mpi_test.sh: '$binary' is not an executable" >&2
  exit 2
fi

mpirun=${MPIRUN:-mpirun}
if [[ $(id -u) -eq 0 ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1
  export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# Quiet Open MPI's warnings about missing high-speed interconnects on test machines.
export OMPI_MCA_btl_base_warn_component_unused=${OMPI_MCA_btl_base_warn_component_unused:-0}
# Plain GoogleTest output in CI logs (set GTEST_COLOR=yes to override).
export GTEST_COLOR=${GTEST_COLOR:-no}

extra=()
if [[ -n "${SIEVE_MPIRUN_ARGS:-}" ]]; then
  read -r -a extra <<<"$SIEVE_MPIRUN_ARGS"
fi

exec "$mpirun" --oversubscribe --tag-output --bind-to none -np "$np" "${extra[@]}" \
  "$binary" "$@"
