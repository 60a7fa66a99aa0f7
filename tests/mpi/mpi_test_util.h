// Shared pieces of sieve_mpi_tests (STYLE rules 19 and 20): the MpiEnv global environment, the
// MpiTest fixture with its per-test deadline, and helpers that turn per-rank results into one
// job-wide answer.
//
// Every test in tests/mpi/ derives from MpiTest. SetUp starts a watchdog: a test still running
// after its deadline (default 60 s; SIEVE_MPI_TEST_DEADLINE_S overrides) prints which test and
// rank stalled and aborts, which makes mpirun end the job instead of hanging CI. TearDown ends
// with MPI_Barrier so no rank races into the next test. Tests count wrong values per rank and
// MPI_Allreduce the counts, so every rank reports the same verdict.
//
// Run: launch/run_mpi_test.sh build/tests/sieve_mpi_tests 4 (CTest labels mpi, np 2 and 4).
#pragma once

#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "comm/mpi_comm.h"

namespace sieve::testing {

// MPI_Init_thread in the constructor (main() needs the rank before RUN_ALL_TESTS to pick the
// printer), MPI_Finalize in TearDown, through comm::MpiRuntime.
class MpiEnv : public ::testing::Environment {
 public:
  MpiEnv(int* argc, char*** argv) : runtime_(std::make_unique<comm::MpiRuntime>(argc, argv)) {}
  void TearDown() override { runtime_.reset(); }
  const comm::MpiRuntime* runtime() const { return runtime_.get(); }

 private:
  std::unique_ptr<comm::MpiRuntime> runtime_;
};

// The world communicator's rank and size (valid between MpiEnv's construction and TearDown).
int WorldRank();
int WorldSize();

// Sum of `value` over every rank of MPI_COMM_WORLD.
long long AllreduceSum(long long value);
// True on every rank iff `ok` is true on every rank.
bool AllRanksOk(bool ok);

class MpiTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  comm::MpiComm world_ = comm::MpiComm::World();
  int rank_ = WorldRank();
  int size_ = WorldSize();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool finished_ = false;
  std::thread watchdog_;
};

}  // namespace sieve::testing
