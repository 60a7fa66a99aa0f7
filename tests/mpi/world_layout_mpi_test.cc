// WorldLayout::FromMpi under mpirun: every rank derives the same cluster shape, each rank's view
// of itself matches what Create() computes for it from the gathered node numbers, decode ranks
// and errors agree across ranks, and MakeGpuComm orders its ranks by GpuRank().
// SIEVE_TEST_EXPECT_NODES=N (set by tests/mpi/two_host_test.sh) also checks the node count.
//
// Run: launch/run_mpi_test.sh build-comm/tests/sieve_mpi_tests 4 --gtest_filter='WorldLayout*'
#include "comm/world_layout.h"

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "comm/mpi_comm.h"
#include "kernels/check.h"
#include "tests/mpi/mpi_test_util.h"

namespace sieve::testing {
namespace {

using comm::WorldLayout;

class WorldLayoutMpiTest : public MpiTest {};

// The fields one rank reports about itself.
constexpr int kFields = 10;
std::vector<int> Fields(const WorldLayout& l) {
  return {l.Rank(),      l.NodeIndex(),   l.NumNodes(),
          l.LocalRank(), l.LocalSize(),   l.GpuRank(),
          l.Device(),    l.WorkerIndex(), l.IsDecodeNode() ? 1 : 0,
          l.NumRanks()};
}

TEST_F(WorldLayoutMpiTest, FromMpiAgreesAcrossRanks) {
  constexpr int kDevices = 2;
  StatusOr<WorldLayout> layout = WorldLayout::FromMpi(MPI_COMM_WORLD, {}, kDevices);
  ASSERT_TRUE(AllRanksOk(layout.ok())) << layout.status().ToString();

  const std::vector<int> mine = Fields(*layout);
  std::vector<int> all(kFields * size_);
  MPI_Allgather(mine.data(), kFields, MPI_INT, all.data(), kFields, MPI_INT, MPI_COMM_WORLD);

  // Rebuild every rank's layout from the gathered node numbers: it must equal what that rank
  // computed for itself.
  std::vector<int> node_of_rank(size_);
  for (int r = 0; r < size_; ++r) node_of_rank[r] = all[r * kFields + 1];
  long long wrong = 0;
  for (int r = 0; r < size_; ++r) {
    StatusOr<WorldLayout> expect = WorldLayout::Create(r, node_of_rank, {}, kDevices);
    if (!expect.ok()) {
      ++wrong;
      continue;
    }
    const std::vector<int> want = Fields(*expect);
    for (int f = 0; f < kFields; ++f) {
      if (all[r * kFields + f] != want[f]) {
        ++wrong;
        ADD_FAILURE() << "rank " << r << " field " << f << ": reported " << all[r * kFields + f]
                      << ", expected " << want[f];
      }
    }
  }
  // Job-wide invariants.
  wrong += layout->NumRanks() != size_;
  wrong += layout->Rank() != rank_;
  wrong += layout->NodeIndex() != 0 && rank_ == 0;  // the coordinator's node is node 0
  wrong += layout->IsCoordinator() != (rank_ == 0);
  wrong += layout->IsDecodeNode() != (rank_ == size_ - 1);
  int local_peers = 0;
  for (int r = 0; r < size_; ++r) local_peers += node_of_rank[r] == layout->NodeIndex();
  wrong += local_peers != layout->LocalSize();
  if (const char* expect_nodes = std::getenv("SIEVE_TEST_EXPECT_NODES")) {
    wrong += layout->NumNodes() != std::atoi(expect_nodes);
  }
  const long long total_wrong = AllreduceSum(wrong);
  std::printf("%s: %s\n", ProcessContextString(), layout->ToString().c_str());
  EXPECT_EQ(total_wrong, 0);
}

TEST_F(WorldLayoutMpiTest, DecodeRanksAndErrorsAgree) {
  StatusOr<WorldLayout> one = WorldLayout::FromMpi(MPI_COMM_WORLD, {1}, 1);
  ASSERT_TRUE(AllRanksOk(one.ok())) << one.status().ToString();
  EXPECT_EQ(AllreduceSum(one->IsDecodeNode() ? 1 : 0), 1);
  EXPECT_EQ(one->IsDecodeNode(), rank_ == 1);

  StatusOr<WorldLayout> bad = WorldLayout::FromMpi(MPI_COMM_WORLD, {0}, 1);
  EXPECT_TRUE(AllRanksOk(!bad.ok())) << "every rank must reject decode rank 0";
  if (!bad.ok()) {
    EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(bad.status().message().find("rank=" + std::to_string(rank_)), std::string::npos)
        << "the error names the rank that reports it: " << bad.status().message();
  }
}

TEST_F(WorldLayoutMpiTest, GpuCommIsOrderedByGpuRank) {
  StatusOr<WorldLayout> layout = WorldLayout::FromMpi(MPI_COMM_WORLD, {}, 1);
  ASSERT_TRUE(AllRanksOk(layout.ok()));
  comm::MpiComm gpu = comm::MakeGpuComm(world_, *layout);
  long long wrong = 0;
  if (layout->GpuRank() < 0) {
    wrong += !gpu.IsNull();
  } else {
    wrong += gpu.IsNull() || gpu.Rank() != layout->GpuRank() || gpu.Size() != layout->NumGpuRanks();
    // Collectives on the GPU communicator see exactly the GPU ranks.
    if (!gpu.IsNull()) {
      const std::vector<std::string> names = gpu.Gather(std::to_string(rank_), /*root=*/0);
      if (gpu.Rank() == 0) {
        for (int g = 0; g < static_cast<int>(names.size()); ++g) {
          wrong += names[g] != std::to_string(layout->WorldRankOfGpuRank(g));
        }
      }
    }
  }
  EXPECT_EQ(AllreduceSum(wrong), 0);
}

}  // namespace
}  // namespace sieve::testing
