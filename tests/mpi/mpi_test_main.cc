// main() of sieve_mpi_tests: installs MpiEnv, keeps rank 0's full GoogleTest output and, on the
// other ranks, prints only failures (each line already tagged [job,rank] by mpirun
// --tag-output). Also the MpiTest fixture's watchdog and the Allreduce helpers.
// Run through launch/run_mpi_test.sh (CTest: mpi.np2, mpi.np4).
#include <cstdio>
#include <cstdlib>

#include "kernels/check.h"
#include "tests/mpi/mpi_test_util.h"

namespace sieve::testing {
namespace {

// Prints failed assertions and failed tests only.
class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::printf("rank %d: %s:%d: Failure\n%s\n", rank_,
                result.file_name() ? result.file_name() : "?", result.line_number(),
                result.summary());
    std::fflush(stdout);
  }
  void OnTestEnd(const ::testing::TestInfo& info) override {
    if (!info.result()->Failed()) return;
    std::printf("rank %d: [  FAILED  ] %s.%s\n", rank_, info.test_suite_name(), info.name());
    std::fflush(stdout);
  }

 private:
  int rank_;
};

std::chrono::seconds TestDeadline() {
  if (const char* text = std::getenv("SIEVE_MPI_TEST_DEADLINE_S")) {
    const long seconds = std::strtol(text, nullptr, 10);
    if (seconds > 0) return std::chrono::seconds(seconds);
  }
  return std::chrono::seconds(60);
}

}  // namespace

int WorldRank() {
  int rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

int WorldSize() {
  int size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

long long AllreduceSum(long long value) {
  long long sum = 0;
  MPI_Allreduce(&value, &sum, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
  return sum;
}

bool AllRanksOk(bool ok) { return AllreduceSum(ok ? 0 : 1) == 0; }

void MpiTest::SetUp() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string name = std::string(info->test_suite_name()) + "." + info->name();
  const std::chrono::seconds deadline = TestDeadline();
  watchdog_ = std::thread([this, name, deadline] {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, deadline, [this] { return finished_; })) {
      std::fprintf(stderr,
                   "[%s] test %s exceeded its deadline of %lld s on rank %d (a rank is stuck "
                   "or dead); aborting the job\n",
                   ProcessContextString(), name.c_str(), static_cast<long long>(deadline.count()),
                   rank_);
      std::fflush(stderr);
      std::abort();
    }
  });
}

void MpiTest::TearDown() {
  world_.Barrier();
  {
    std::lock_guard<std::mutex> lock(mu_);
    finished_ = true;
  }
  cv_.notify_all();
  watchdog_.join();
}

}  // namespace sieve::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  auto* env = new sieve::testing::MpiEnv(&argc, &argv);
  ::testing::AddGlobalTestEnvironment(env);  // GoogleTest owns it
  const int rank = sieve::testing::WorldRank();
  if (rank != 0) {
    ::testing::TestEventListeners& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new sieve::testing::FailurePrinter(rank));
  }
  if (rank == 0) {
    std::printf(
        "sieve_mpi_tests: %d ranks, %s\n", sieve::testing::WorldSize(),
        std::string(sieve::comm::MpiRuntime::ThreadLevelName(env->runtime()->ProvidedThreadLevel()))
            .c_str());
  }
  return RUN_ALL_TESTS();
}
