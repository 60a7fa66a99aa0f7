// NcclComm under mpirun on a GPU machine: bootstrap over the GPU ranks' MPI communicator, a ring
// of grouped sends/receives split into many pieces, AllGather and Bcast. Data are rank-dependent
// small integers; wrong values are counted per rank and summed over the job, and rank 0 prints
// bytes, time, bandwidth and #wrong on one line (STYLE rule 20).
//
// Skips (on every rank alike, so no rank waits for another) when built without CUDA, when there
// is no GPU, or when a node has more GPU ranks than devices (NCCL refuses two ranks on one GPU).
//
// Run (GPU machine): launch/run_mpi_test.sh build/tests/sieve_mpi_tests 3 --gtest_filter='Nccl*'
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <vector>

#include "comm/world_layout.h"
#include "tests/mpi/mpi_test_util.h"

#if SIEVE_WITH_CUDA
#include <cuda_runtime_api.h>

#include "comm/nccl_comm.h"
#endif

namespace sieve::testing {
namespace {

class NcclCommTest : public MpiTest {
 protected:
  void SetUp() override {
    MpiTest::SetUp();
#if SIEVE_WITH_CUDA
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess) devices = 0;
    StatusOr<comm::WorldLayout> layout = comm::WorldLayout::FromMpi(MPI_COMM_WORLD, {}, devices);
    bool usable = layout.ok() && devices > 0;
    if (usable && layout->IsWorker()) {
      // Every GPU rank of this node needs its own device.
      int gpu_ranks_here = 0;
      for (int r = 0; r < layout->NumRanks(); ++r) {
        gpu_ranks_here +=
            (r > 0 || layout->NumRanks() == 1) && layout->NodeOfRank(r) == layout->NodeIndex();
      }
      usable = gpu_ranks_here <= devices;
    }
    if (!AllRanksOk(usable)) {
      GTEST_SKIP() << "needs one CUDA device per GPU rank on every node (found " << devices
                   << " here)";
    }
    layout_.emplace(*layout);
#else
    GTEST_SKIP() << "built without CUDA (SIEVE_ENABLE_CUDA=OFF)";
#endif
  }

  std::optional<comm::WorldLayout> layout_;
};

#if SIEVE_WITH_CUDA

// Small integers exact in int32.
int32_t Value(int gpu_rank, size_t i) {
  return static_cast<int32_t>((gpu_rank * 11 + i * 5) % 241) - 120;
}

TEST_F(NcclCommTest, RingSendRecvInPieces) {
  comm::MpiComm gpu = comm::MakeGpuComm(world_, *layout_);
  long long wrong = 0;
  double seconds = 0;
  constexpr size_t kCount = 1'000'003;  // 4 MB, not a multiple of the piece size
  constexpr size_t kPiece = 64 << 10;   // 62 pieces per transfer
  if (!gpu.IsNull()) {
    StatusOr<comm::NcclComm> nccl = comm::NcclComm::Create(gpu, layout_->Device());
    ASSERT_TRUE(nccl.ok()) << nccl.status().ToString();
    const int n = nccl->Size();
    const int g = nccl->Rank();
    std::vector<int32_t> host(kCount);
    for (size_t i = 0; i < kCount; ++i) host[i] = Value(g, i);
    int32_t* send = nullptr;
    int32_t* recv = nullptr;
    cudaStream_t stream = nullptr;
    ASSERT_EQ(cudaMalloc(&send, kCount * sizeof(int32_t)), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&recv, kCount * sizeof(int32_t)), cudaSuccess);
    ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(send, host.data(), kCount * sizeof(int32_t), cudaMemcpyHostToDevice),
              cudaSuccess);
    ASSERT_EQ(cudaMemset(recv, 0xff, kCount * sizeof(int32_t)), cudaSuccess);

    const comm::NcclComm::Transfer to_next =
        comm::NcclComm::Transfer::ToPeer((g + 1) % n, send, kCount * sizeof(int32_t));
    const comm::NcclComm::Transfer from_prev =
        comm::NcclComm::Transfer::FromPeer((g + n - 1) % n, recv, kCount * sizeof(int32_t));
    EXPECT_EQ(comm::NcclComm::PieceCount({&to_next, 1}, kPiece), 62);
    const auto start = std::chrono::steady_clock::now();
    Status status = nccl->SendRecvGroup({&to_next, 1}, {&from_prev, 1}, stream, kPiece);
    ASSERT_TRUE(status.ok()) << status.ToString();
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    std::vector<int32_t> got(kCount);
    ASSERT_EQ(cudaMemcpy(got.data(), recv, kCount * sizeof(int32_t), cudaMemcpyDeviceToHost),
              cudaSuccess);
    const int prev = (g + n - 1) % n;
    for (size_t i = 0; i < kCount; ++i) wrong += got[i] != Value(prev, i);

    // Bad arguments are Status values, not crashes.
    const comm::NcclComm::Transfer bad = comm::NcclComm::Transfer::ToPeer(n, send, 4);
    EXPECT_EQ(nccl->SendRecvGroup({&bad, 1}, {}, stream).code(), StatusCode::kInvalidArgument);

    cudaFree(send);
    cudaFree(recv);
    cudaStreamDestroy(stream);
  }
  const long long total_wrong = AllreduceSum(wrong);
  if (layout_->GpuRank() == 0) {
    std::printf("nccl ring: %zu bytes/rank in pieces of %zu, %.3f ms, %.2f GB/s, #wrong %lld\n",
                kCount * sizeof(int32_t), kPiece, seconds * 1e3,
                kCount * sizeof(int32_t) / seconds / 1e9, total_wrong);
  }
  EXPECT_EQ(total_wrong, 0);
}

TEST_F(NcclCommTest, AllGatherAndBcast) {
  comm::MpiComm gpu = comm::MakeGpuComm(world_, *layout_);
  long long wrong = 0;
  if (!gpu.IsNull()) {
    StatusOr<comm::NcclComm> nccl = comm::NcclComm::Create(gpu, layout_->Device());
    ASSERT_TRUE(nccl.ok()) << nccl.status().ToString();
    const int n = nccl->Size();
    const int g = nccl->Rank();
    constexpr size_t kPerRank = 257;
    std::vector<int32_t> mine(kPerRank);
    for (size_t i = 0; i < kPerRank; ++i) mine[i] = Value(g, i);
    int32_t* send = nullptr;
    int32_t* all = nullptr;
    ASSERT_EQ(cudaMalloc(&send, kPerRank * sizeof(int32_t)), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&all, n * kPerRank * sizeof(int32_t)), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(send, mine.data(), kPerRank * sizeof(int32_t), cudaMemcpyHostToDevice),
              cudaSuccess);
    ASSERT_TRUE(nccl->AllGather(send, all, kPerRank * sizeof(int32_t), nullptr).ok());
    ASSERT_TRUE(nccl->Bcast(send, kPerRank * sizeof(int32_t), /*root=*/n - 1, nullptr).ok());
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    std::vector<int32_t> got(n * kPerRank);
    ASSERT_EQ(cudaMemcpy(got.data(), all, got.size() * sizeof(int32_t), cudaMemcpyDeviceToHost),
              cudaSuccess);
    for (int r = 0; r < n; ++r) {
      for (size_t i = 0; i < kPerRank; ++i) wrong += got[r * kPerRank + i] != Value(r, i);
    }
    ASSERT_EQ(cudaMemcpy(mine.data(), send, kPerRank * sizeof(int32_t), cudaMemcpyDeviceToHost),
              cudaSuccess);
    for (size_t i = 0; i < kPerRank; ++i) wrong += mine[i] != Value(n - 1, i);
    cudaFree(send);
    cudaFree(all);
  }
  EXPECT_EQ(AllreduceSum(wrong), 0);
}

#else

TEST_F(NcclCommTest, RequiresCuda) {}  // SetUp skips

#endif

}  // namespace
}  // namespace sieve::testing
