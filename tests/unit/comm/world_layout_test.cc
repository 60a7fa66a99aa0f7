// WorldLayout built by hand: one node, two nodes with the coordinator on node 0, -np 1,
// --decode-ranks variants, devices per node smaller than the ranks per node, and every
// validation error. The MPI-derived layout is checked in tests/mpi/world_layout_mpi_test.cc.
#include "comm/world_layout.h"

#include <gtest/gtest.h>

#include <vector>

namespace sieve::comm {
namespace {

std::vector<WorldLayout> AllRanks(const std::vector<int>& node_of_rank,
                                  const std::vector<int>& decode_ranks, int devices_per_node) {
  std::vector<WorldLayout> out;
  for (int r = 0; r < static_cast<int>(node_of_rank.size()); ++r) {
    StatusOr<WorldLayout> layout =
        WorldLayout::Create(r, node_of_rank, decode_ranks, devices_per_node);
    EXPECT_TRUE(layout.ok()) << layout.status().ToString();
    if (layout.ok()) out.push_back(*layout);
  }
  return out;
}

TEST(WorldLayoutTest, OneNodeFiveRanks) {
  // mpirun -np 5 on a 4-GPU node: coordinator + 4 workers, decode = last worker.
  const std::vector<WorldLayout> all = AllRanks({0, 0, 0, 0, 0}, {}, 4);
  ASSERT_EQ(all.size(), 5u);
  for (int r = 0; r < 5; ++r) {
    const WorldLayout& l = all[r];
    EXPECT_EQ(l.Rank(), r);
    EXPECT_EQ(l.NumRanks(), 5);
    EXPECT_EQ(l.NodeIndex(), 0);
    EXPECT_EQ(l.NumNodes(), 1);
    EXPECT_EQ(l.LocalRank(), r);
    EXPECT_EQ(l.LocalSize(), 5);
    EXPECT_EQ(l.NumWorkers(), 4);
    EXPECT_EQ(l.NumGpuRanks(), 4);
    EXPECT_EQ(l.DecodeRanks(), std::vector<int>({4}));
  }
  EXPECT_TRUE(all[0].IsCoordinator());
  EXPECT_FALSE(all[0].IsWorker());
  EXPECT_EQ(all[0].WorkerIndex(), -1);
  EXPECT_EQ(all[0].GpuRank(), -1);
  EXPECT_EQ(all[0].Device(), -1);
  EXPECT_FALSE(all[0].IsDecodeNode());
  for (int r = 1; r < 5; ++r) {
    EXPECT_FALSE(all[r].IsCoordinator());
    EXPECT_TRUE(all[r].IsWorker());
    EXPECT_EQ(all[r].WorkerIndex(), r - 1);
    EXPECT_EQ(all[r].WorkerRank(r - 1), r);
    EXPECT_EQ(all[r].GpuRank(), r - 1);
    EXPECT_EQ(all[r].WorldRankOfGpuRank(r - 1), r);
    EXPECT_EQ(all[r].Device(), r - 1) << "the coordinator does not take a device";
    EXPECT_EQ(all[r].IsDecodeNode(), r == 4);
  }
}

TEST(WorldLayoutTest, TwoNodesCoordinatorOnNodeZero) {
  // sieve-launch with 4 GPUs/node on 2 nodes: node A runs ranks 0..4, node B ranks 5..8; here
  // node ids are arbitrary (7 and 3) and must be renumbered by lowest rank.
  const std::vector<int> nodes = {7, 7, 7, 7, 7, 3, 3, 3, 3};
  const std::vector<WorldLayout> all = AllRanks(nodes, {}, 4);
  ASSERT_EQ(all.size(), 9u);
  const int expect_local[] = {0, 1, 2, 3, 4, 0, 1, 2, 3};
  const int expect_device[] = {-1, 0, 1, 2, 3, 0, 1, 2, 3};
  for (int r = 0; r < 9; ++r) {
    const WorldLayout& l = all[r];
    EXPECT_EQ(l.NumNodes(), 2);
    EXPECT_EQ(l.NodeIndex(), r < 5 ? 0 : 1) << "rank " << r;
    EXPECT_EQ(l.LocalRank(), expect_local[r]) << "rank " << r;
    EXPECT_EQ(l.LocalSize(), r < 5 ? 5 : 4) << "rank " << r;
    EXPECT_EQ(l.Device(), expect_device[r]) << "rank " << r;
    EXPECT_EQ(l.DeviceOf(r), expect_device[r]);
    EXPECT_EQ(l.NodeOfRank(8), 1);
    EXPECT_EQ(l.NumWorkers(), 8);
    EXPECT_EQ(l.DecodeRanks(), std::vector<int>({8}));
  }
  EXPECT_TRUE(all[8].IsDecodeNode());
  EXPECT_EQ(all[6].ToString(),
            "rank=6/9 node=1/2 local=1/4 worker=5/8 gpu_rank=5 device=1 decode=no");
}

TEST(WorldLayoutTest, TwoNodesFiveRanksEach) {
  // 2 nodes x 5 ranks with the coordinator on node 0: node 0 has the coordinator and 4 GPU
  // ranks, node 1 has 5 GPU ranks on 4 devices, so its fifth rank wraps to device 0.
  const std::vector<WorldLayout> all = AllRanks({0, 0, 0, 0, 0, 1, 1, 1, 1, 1}, {}, 4);
  ASSERT_EQ(all.size(), 10u);
  const int expect_device[] = {-1, 0, 1, 2, 3, 0, 1, 2, 3, 0};
  for (int r = 0; r < 10; ++r) {
    EXPECT_EQ(all[r].Device(), expect_device[r]) << "rank " << r;
    EXPECT_EQ(all[r].LocalSize(), 5);
    EXPECT_EQ(all[r].LocalRank(), r % 5);
  }
  EXPECT_EQ(all[9].DecodeRanks(), std::vector<int>({9}));
}

TEST(WorldLayoutTest, InterleavedNodes) {
  // A round-robin mapping (--map-by node) still gives per-node local ranks and devices.
  const std::vector<WorldLayout> all = AllRanks({0, 1, 0, 1, 0}, {}, 2);
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all[1].NodeIndex(), 1);
  EXPECT_EQ(all[1].LocalRank(), 0);
  EXPECT_EQ(all[1].Device(), 0);
  EXPECT_EQ(all[2].LocalRank(), 1);
  EXPECT_EQ(all[2].Device(), 0) << "first GPU rank of node 0 (the coordinator excluded)";
  EXPECT_EQ(all[3].Device(), 1);
  EXPECT_EQ(all[4].Device(), 1);
}

TEST(WorldLayoutTest, SingleProcessPlaysEveryRole) {
  StatusOr<WorldLayout> l = WorldLayout::Create(0, {0}, {}, 1);
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_TRUE(l->IsCoordinator());
  EXPECT_TRUE(l->IsWorker());
  EXPECT_TRUE(l->IsDecodeNode());
  EXPECT_EQ(l->WorkerIndex(), 0);
  EXPECT_EQ(l->NumWorkers(), 1);
  EXPECT_EQ(l->GpuRank(), 0);
  EXPECT_EQ(l->NumGpuRanks(), 1);
  EXPECT_EQ(l->Device(), 0);
  EXPECT_EQ(l->DecodeRanks(), std::vector<int>({0}));
  EXPECT_EQ(l->WorkerRank(0), 0);
  // An explicit --decode-ranks 0 is accepted with one rank.
  EXPECT_TRUE(WorldLayout::Create(0, {0}, {0}, 1).ok());
}

TEST(WorldLayoutTest, DecodeRanksVariants) {
  // --decode-ranks 3,1: sorted, both decode nodes.
  const std::vector<WorldLayout> all = AllRanks({0, 0, 0, 0, 0}, {3, 1}, 4);
  ASSERT_EQ(all.size(), 5u);
  for (const WorldLayout& l : all) {
    EXPECT_EQ(l.DecodeRanks(), std::vector<int>({1, 3}));
    EXPECT_EQ(l.IsDecodeNode(), l.Rank() == 1 || l.Rank() == 3);
  }
  EXPECT_TRUE(all[0].IsDecodeRank(3));
  EXPECT_FALSE(all[0].IsDecodeRank(4));
}

TEST(WorldLayoutTest, CpuBackendHasNoDevice) {
  const std::vector<WorldLayout> all = AllRanks({0, 0, 0}, {}, 0);
  ASSERT_EQ(all.size(), 3u);
  for (const WorldLayout& l : all) EXPECT_EQ(l.Device(), -1);
  EXPECT_EQ(all[1].GpuRank(), 0) << "GPU-rank numbering does not depend on devices";
}

TEST(WorldLayoutTest, ValidationErrors) {
  auto error = [](int rank, std::vector<int> nodes, std::vector<int> decode, int devices) {
    StatusOr<WorldLayout> l = WorldLayout::Create(rank, nodes, decode, devices);
    EXPECT_FALSE(l.ok());
    if (l.ok()) return std::string();
    EXPECT_EQ(l.status().code(), StatusCode::kInvalidArgument);
    return l.status().message();
  };
  EXPECT_NE(error(0, {}, {}, 1).find("empty"), std::string::npos);
  EXPECT_NE(error(5, {0, 0, 0}, {}, 1).find("rank=5 outside [0, 3)"), std::string::npos);
  EXPECT_NE(error(-1, {0, 0, 0}, {}, 1).find("rank=-1"), std::string::npos);
  EXPECT_NE(error(0, {0, 0, 0}, {}, -2).find("devices_per_node=-2"), std::string::npos);
  EXPECT_NE(error(0, {0, -1, 0}, {}, 1).find("node_of_rank[1]=-1"), std::string::npos);
  EXPECT_NE(error(0, {0, 0, 0}, {0}, 1).find("decode rank 0 is the coordinator"),
            std::string::npos);
  EXPECT_NE(error(0, {0, 0, 0}, {3}, 1).find("decode rank 3 outside the workers [1, 2]"),
            std::string::npos);
  EXPECT_NE(error(0, {0, 0, 0}, {-4}, 1).find("decode rank -4"), std::string::npos);
  EXPECT_NE(error(0, {0, 0, 0}, {2, 1, 2}, 1).find("decode rank 2 given twice"), std::string::npos);
  EXPECT_NE(error(0, {0}, {1}, 1).find("the job has 1 rank"), std::string::npos);
}

TEST(WorldLayoutTest, ParseRankList) {
  EXPECT_EQ(*ParseRankList(""), std::vector<int>());
  EXPECT_EQ(*ParseRankList("3"), std::vector<int>({3}));
  EXPECT_EQ(*ParseRankList("7,8,1"), std::vector<int>({7, 8, 1}));
  for (const char* bad : {"a", "1,", ",1", "1,,2", "-1", "1 2", "2x"}) {
    StatusOr<std::vector<int>> r = ParseRankList(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    }
  }
}

TEST(WorldLayoutTest, EqualityIsByValue) {
  StatusOr<WorldLayout> a = WorldLayout::Create(2, {0, 0, 1}, {}, 2);
  StatusOr<WorldLayout> b = WorldLayout::Create(2, {5, 5, 9}, {}, 2);
  StatusOr<WorldLayout> c = WorldLayout::Create(1, {0, 0, 1}, {}, 2);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_FALSE(*a == *c);
}

}  // namespace
}  // namespace sieve::comm
