// KvTransport: moves one kept chunk's KV (ChunkKv::data, every layer in one contiguous buffer)
// from the worker that prefilled it to the decode node. The manifest (proto KvManifest: chunk,
// entries, bytes, positions) always goes first over MPI; the payload follows:
//   MpiKvTransport   the CPU backend: host memory over MPI (tag kKvData), split below 2 GiB.
//   NcclKvTransport  the CUDA backend: device memory GPU to GPU with ncclSend/ncclRecv on a
//                    stream of its own, each call bounded in size (comm/nccl_comm.h); the
//                    compute stream waits on it through events, never the host. Every pair
//                    of ranks that can move KV is connected at startup (NCCL connects lazily,
//                    ~0.1 s per pair), so the first request does not pay for it.
// Nothing here blocks the host on a peer: sends are posted and owned by the transport until they
// complete (ReleaseCompletedSends polls), so two ranks that both send and receive (a decode node
// that is also a worker) cannot deadlock. Receives are posted in manifest order on both sides,
// which is what MPI's and NCCL's point-to-point matching need.
//
// Tested by the sieve-node tests (tests/cli/sieve_node_test.sh) and on GPUs by bench/gpu_check.sh.
#pragma once

#include <memory>

#include "comm/mpi_comm.h"
#include "comm/status.h"
#include "comm/world_layout.h"
#include "worker/backend.h"
#include "worker/kv_cache.h"

namespace sieve::worker {

class KvTransport {
 public:
  virtual ~KvTransport() = default;
  // Posts the send of kv.data to world rank `dest` (after the caller sent its manifest) and keeps
  // `kv` alive until the bytes have left. Work already queued on the backend that writes `kv` is
  // ordered before the send.
  virtual Status PostSend(ChunkKv kv, int dest) = 0;
  // Frees the buffers of sends that have completed; never blocks.
  virtual void ReleaseCompletedSends() = 0;
  virtual size_t pending_sends() const = 0;
  // Receives `kv->data` (allocated by the caller from the manifest) from world rank `source`.
  // The data is usable by backend work queued after ReceivesReady().
  virtual Status Recv(ChunkKv* kv, int source) = 0;
  // Returns once every posted receive has completed (the transfer time ends here).
  virtual Status ReceivesReady() = 0;
  virtual const char* name() const = 0;
};

std::unique_ptr<KvTransport> MakeMpiKvTransport(const comm::MpiComm& world, Backend& backend);

// Creates the NCCL communicator over `gpu_comm` (comm::MakeGpuComm: every rank but the
// coordinator); collective over those ranks. Unavailable without CUDA.
StatusOr<std::unique_ptr<KvTransport>> MakeNcclKvTransport(comm::MpiComm gpu_comm,
                                                           const comm::WorldLayout& layout,
                                                           Backend& backend);

}  // namespace sieve::worker
