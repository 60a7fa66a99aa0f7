// WorldLayout: who every rank of the sieve-node job is, as pure rank arithmetic (STYLE rule 8).
//
// One mpirun job runs every role. Rank 0 is the coordinator (CPU only); ranks 1..N are the
// workers, one GPU each (or the CPU backend); the decode node is one or more of the workers (by
// default the last one). With -np 1 the single process plays every role: it is the coordinator,
// worker 0, the decode node and GPU rank 0.
//
// "GPU ranks" are every rank except the coordinator (with -np 1: the single rank). They form the
// communicator that carries NCCL traffic (MakeGpuComm in comm/mpi_comm.h), and GpuRank() is the
// rank inside it. Device() is the CUDA device a GPU rank uses: its index among the GPU ranks of
// its own node (the coordinator excluded when it shares the node), modulo devices_per_node.
//
// The class is a value built from plain data, so tests construct any cluster shape by hand:
//
//   // 2 nodes x 5 ranks, coordinator on node 0, 4 GPUs per node:
//   auto layout = WorldLayout::Create(/*rank=*/6, {0,0,0,0,0,1,1,1,1,1}, /*decode_ranks=*/{}, 4);
//   layout->NodeIndex() == 1, layout->LocalRank() == 1, layout->Device() == 1,
//   layout->WorkerIndex() == 5, layout->GpuRank() == 5, layout->IsDecodeNode() == false.
//
// FromMpi (built only with SIEVE_ENABLE_MPI, comm/mpi_world_layout.cc) derives node_of_rank with
// MPI_Comm_split_type(MPI_COMM_TYPE_SHARED) and calls Create. Everything else in the system takes
// `const WorldLayout&`. No method blocks or allocates except Create/FromMpi and ToString.
//
// Tested by tests/unit/comm/world_layout_test.cc (by hand) and
// tests/mpi/world_layout_mpi_test.cc (FromMpi agrees across ranks).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "comm/status.h"

#if SIEVE_WITH_MPI
#include <mpi.h>
#endif

namespace sieve::comm {

class WorldLayout {
 public:
  // Validates and builds the layout of `rank`.
  //   node_of_rank[r]   an identifier of the node rank r runs on (any non-negative integers; equal
  //                     values mean the same node). Nodes are numbered 0.. in the order of their
  //                     lowest rank, so the coordinator's node is node 0.
  //   decode_ranks      ranks that run the decode node; empty = the last worker (rank 0 with -np
  //                     1). Each must be a worker (1..NumRanks()-1; with -np 1 only 0) and appear
  //                     once. Stored sorted.
  //   devices_per_node  CUDA devices visible on each node; 0 = the CPU backend (Device() is -1).
  // Errors are InvalidArgument naming the bad value and what was expected.
  static StatusOr<WorldLayout> Create(int rank, std::vector<int> node_of_rank,
                                      std::vector<int> decode_ranks, int devices_per_node);

#if SIEVE_WITH_MPI
  // Collective over `comm` (every rank must call it; blocks until all have). Finds each rank's
  // node with MPI_Comm_split_type(MPI_COMM_TYPE_SHARED) and an allgather, then calls Create with
  // the caller's rank in `comm`. Every rank gets the same node numbering. Defined in
  // comm/mpi_world_layout.cc.
  static StatusOr<WorldLayout> FromMpi(MPI_Comm comm, std::vector<int> decode_ranks,
                                       int devices_per_node);
#endif

  // This process's rank and the job size.
  int Rank() const { return rank_; }
  int NumRanks() const { return static_cast<int>(node_index_.size()); }

  // Rank among the ranks of this node (coordinator included), and how many ranks the node has.
  int LocalRank() const { return local_rank_; }
  int LocalSize() const { return local_size_; }

  // Node number (0 = the coordinator's node) and the number of nodes in the job.
  int NodeIndex() const { return node_index_[rank_]; }
  int NumNodes() const { return num_nodes_; }
  // Node number of any rank r in [0, NumRanks()).
  int NodeOfRank(int r) const { return node_index_[r]; }

  // Rank 0 is the coordinator; every other rank (and the only rank with -np 1) is a worker.
  bool IsCoordinator() const { return rank_ == 0; }
  bool IsWorker() const { return rank_ > 0 || NumRanks() == 1; }
  // 0-based index among the workers (rank - 1; 0 with -np 1); -1 on a multi-rank coordinator.
  int WorkerIndex() const { return WorkerIndexOf(rank_); }
  int NumWorkers() const { return NumRanks() == 1 ? 1 : NumRanks() - 1; }
  // The world rank of worker w in [0, NumWorkers()).
  int WorkerRank(int w) const { return NumRanks() == 1 ? 0 : w + 1; }

  // Decode ranks, sorted; never empty.
  bool IsDecodeNode() const { return IsDecodeRank(rank_); }
  bool IsDecodeRank(int r) const;
  const std::vector<int>& DecodeRanks() const { return decode_ranks_; }

  // Rank within the communicator of GPU ranks (all ranks but the coordinator; with -np 1 the
  // single rank is GPU rank 0); -1 on a multi-rank coordinator.
  int GpuRank() const { return IsWorker() ? WorkerIndex() : -1; }
  int NumGpuRanks() const { return NumWorkers(); }
  // World rank of GPU rank g (the inverse of GpuRank()).
  int WorldRankOfGpuRank(int g) const { return WorkerRank(g); }
  // GPU rank of world rank r (-1 for a multi-rank coordinator).
  int GpuRankOf(int r) const { return WorkerIndexOf(r); }

  // The CUDA device this rank uses, or -1 (a multi-rank coordinator, or the CPU backend).
  int Device() const { return DeviceOf(rank_); }
  // Same for any rank r (what the coordinator reports for a worker).
  int DeviceOf(int r) const;
  int DevicesPerNode() const { return devices_per_node_; }

  // "rank=6/10 node=1/2 local=1/5 worker=5/9 gpu_rank=5 device=1 decode=no".
  std::string ToString() const;

  friend bool operator==(const WorldLayout&, const WorldLayout&) = default;

 private:
  WorldLayout() = default;
  int WorkerIndexOf(int r) const {
    if (NumRanks() == 1) return 0;
    return r == 0 ? -1 : r - 1;
  }

  int rank_ = 0;
  std::vector<int> node_index_;  // [num_ranks] normalized node number of each rank
  std::vector<int> gpu_local_;   // [num_ranks] index among the node's GPU ranks; -1: coordinator
  std::vector<int> decode_ranks_;
  int num_nodes_ = 0;
  int local_rank_ = 0;
  int local_size_ = 0;
  int devices_per_node_ = 0;
};

// Parses a --decode-ranks value: comma-separated non-negative integers ("3", "7,8"); "" gives
// an empty list. InvalidArgument names the bad item. Range checks happen in Create.
StatusOr<std::vector<int>> ParseRankList(std::string_view text);

}  // namespace sieve::comm
