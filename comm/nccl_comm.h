// NcclComm: an owned NCCL communicator over the GPU ranks (STYLE rule 7), bootstrapped over MPI,
// with grouped, piece-bounded point-to-point transfers for moving KV to the decode node.
//
//   MpiComm gpu = MakeGpuComm(world, layout);              // comm/mpi_comm.h; null on rank 0
//   SIEVE_ASSIGN_OR_RETURN(NcclComm nccl, NcclComm::Create(gpu, layout.Device()));
//   NcclComm::Transfer send = NcclComm::Transfer::ToPeer(decode_gpu_rank, kv_ptr, kv_bytes);
//   SIEVE_RETURN_IF_ERROR(nccl.SendRecvGroup({&send, 1}, {}, stream));
//
// Create is collective over the GPU-rank communicator: its rank 0 calls ncclGetUniqueId and
// broadcasts the id with MPI, then every rank binds its device and calls ncclCommInitRank
// (blocking until all ranks have joined). NCCL ranks equal the MPI ranks of that communicator,
// i.e. WorldLayout::GpuRank().
//
// Streams and buffers: every transfer method only enqueues work on `stream` and returns (no
// synchronization); device buffers must stay valid until that work completes. Failures of the
// NCCL calls are returned as Status (comm/nccl_check.h NcclStatus, with host, rank, device and
// ncclGetLastError); invalid arguments are InvalidArgument.
//
// Built only with SIEVE_ENABLE_CUDA (nccl_*.cc). Tested by tests/mpi/nccl_comm_test.cc, which
// skips unless every GPU rank of the node has its own device.
#pragma once

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "comm/status.h"

#if SIEVE_WITH_MPI
#include "comm/mpi_comm.h"
#endif

namespace sieve::comm {

// Largest byte count of one ncclSend/ncclRecv (256 MiB): bounds each NCCL call, so a 16 GiB KV
// transfer is 64 calls rather than one (reference/anchors.md lesson 7).
inline constexpr size_t kDefaultNcclPieceBytes = size_t{256} << 20;

class NcclComm {
 public:
  // One point-to-point transfer. `data` is a device pointer on this rank's device: read for a
  // send, written for a receive. `peer` is an NCCL rank in [0, Size()). Both sides must list
  // the same byte counts, in the same order per peer, and use the same max_piece_bytes.
  struct Transfer {
    int peer = -1;
    void* data = nullptr;  // [bytes] device memory
    size_t bytes = 0;

    // A send from read-only memory (NCCL never writes a send buffer).
    static Transfer ToPeer(int peer, const void* data, size_t bytes) {
      return Transfer{peer, const_cast<void*>(data), bytes};
    }
    static Transfer FromPeer(int peer, void* data, size_t bytes) {
      return Transfer{peer, data, bytes};
    }
  };

  // A null communicator (IsNull() true).
  NcclComm() = default;
  // Destroys the communicator (ncclCommAbort instead when it holds an asynchronous error).
  ~NcclComm();
  NcclComm(NcclComm&& other) noexcept;
  NcclComm& operator=(NcclComm&& other) noexcept;
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

#if SIEVE_WITH_MPI
  // Collective over `gpu_comm` (every rank of it must call, each with its own CUDA device).
  // Sets `device` current on the calling thread. FailedPrecondition on a null communicator;
  // Unavailable / Internal when NCCL cannot build the communicator.
  static StatusOr<NcclComm> Create(const MpiComm& gpu_comm, int device);
#endif
  // The same from an id that the caller distributed itself (rank 0 of the id made it).
  static StatusOr<NcclComm> CreateFromId(const ncclUniqueId& id, int rank, int size, int device);

  ncclComm_t Handle() const { return comm_; }
  bool IsNull() const { return comm_ == nullptr; }
  int Rank() const { return rank_; }
  int Size() const { return size_; }
  int Device() const { return device_; }

  // Enqueues every send and receive on `stream` inside one ncclGroupStart/ncclGroupEnd, each
  // transfer split into pieces of at most max_piece_bytes (in order). Transfers of 0 bytes are
  // skipped. Asynchronous: returns once enqueued.
  Status SendRecvGroup(std::span<const Transfer> sends, std::span<const Transfer> recvs,
                       cudaStream_t stream, size_t max_piece_bytes = kDefaultNcclPieceBytes) const;

  // Every rank contributes `bytes_per_rank` bytes from `send`; `recv` receives Size() blocks in
  // rank order ([Size(), bytes_per_rank] device memory). Asynchronous on `stream`.
  Status AllGather(const void* send, void* recv, size_t bytes_per_rank, cudaStream_t stream) const;
  // The root's `bytes` bytes at `data` replace every rank's. Asynchronous on `stream`.
  Status Bcast(void* data, size_t bytes, int root, cudaStream_t stream) const;

  // How many NCCL calls SendRecvGroup issues for `transfers` (pure; for tests and logs).
  static int64_t PieceCount(std::span<const Transfer> transfers, size_t max_piece_bytes);

 private:
  void Destroy();

  ncclComm_t comm_ = nullptr;
  int rank_ = -1;
  int size_ = 0;
  int device_ = -1;
};

}  // namespace sieve::comm
