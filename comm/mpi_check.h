// SIEVE_MPI_CHECK: fatal MPI failures (STYLE rule 10), reported through the shared reporter
// sieve::internal::FatalApiError with MPI_Error_string's text, then std::abort(), which ends the
// whole mpirun job.
//
//   SIEVE_MPI_CHECK(MPI_Send(buf, n, MPI_BYTE, dest, tag, comm));
//
// MPI calls only return an error code when the communicator's error handler is MPI_ERRORS_RETURN;
// MpiRuntime (comm/mpi_comm.h) installs it on MPI_COMM_WORLD, and communicators split from it
// inherit it. Only translation units built with SIEVE_ENABLE_MPI include this header.
//
// Exercised by every MPI call in comm/mpi_comm.cc (tests/mpi/mpi_comm_test.cc).
#pragma once

#include <mpi.h>

#include "kernels/check.h"

namespace sieve::internal {

// Prints "MPI error ... <stmt>: <MPI_Error_string(code)> (error class N)" with host and rank,
// then aborts. Out of line so the macro stays small.
[[noreturn]] void FatalMpiError(int code, const char* stmt, const char* file, int line,
                                const char* func);

}  // namespace sieve::internal

#define SIEVE_MPI_CHECK(stmt)                                                                \
  do {                                                                                       \
    const int sieve_mpi_err_ = (stmt);                                                       \
    if (sieve_mpi_err_ != MPI_SUCCESS) [[unlikely]] {                                        \
      ::sieve::internal::FatalMpiError(sieve_mpi_err_, #stmt, __FILE__, __LINE__, __func__); \
    }                                                                                        \
  } while (0)
