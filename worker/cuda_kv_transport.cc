// NcclKvTransport (see worker/kv_transport.h): KV payloads GPU to GPU over NCCL, on a stream of
// the transport's own so that no host-side synchronization ever waits for a peer.
#include <cuda_runtime_api.h>

#include <list>
#include <vector>

#include "comm/nccl_comm.h"
#include "kernels/cuda_check.h"
#include "worker/kv_transport.h"

namespace sieve::worker {
namespace {

class NcclKvTransport final : public KvTransport {
 public:
  NcclKvTransport(comm::MpiComm gpu_comm, comm::NcclComm nccl, const comm::WorldLayout& layout,
                  Backend& backend)
      : gpu_comm_(std::move(gpu_comm)), nccl_(std::move(nccl)), layout_(layout), backend_(backend) {
    SIEVE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }

  ~NcclKvTransport() override {
    cudaStreamSynchronize(stream_);
    pending_.clear();
    cudaStreamDestroy(stream_);
  }

  Status PostSend(ChunkKv kv, int dest) override {
    // The payload was written on the compute stream: the transfer stream waits for it.
    SIEVE_RETURN_IF_ERROR(WaitFor(Compute(), stream_));
    const comm::NcclComm::Transfer t =
        comm::NcclComm::Transfer::ToPeer(layout_.GpuRankOf(dest), kv.data.get(), kv.data.bytes());
    SIEVE_RETURN_IF_ERROR(nccl_.SendRecvGroup({&t, 1}, {}, stream_));
    pending_.emplace_back();
    Pending& p = pending_.back();
    p.kv = std::move(kv);
    SIEVE_CUDA_CHECK(cudaEventCreateWithFlags(&p.done, cudaEventDisableTiming));
    SIEVE_CUDA_CHECK(cudaEventRecord(p.done, stream_));
    return Status::Ok();
  }

  void ReleaseCompletedSends() override {
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (cudaEventQuery(it->done) == cudaSuccess) {
        cudaEventDestroy(it->done);
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
  }

  size_t pending_sends() const override { return pending_.size(); }

  Status Recv(ChunkKv* kv, int source) override {
    const comm::NcclComm::Transfer t = comm::NcclComm::Transfer::FromPeer(
        layout_.GpuRankOf(source), kv->data.get(), kv->data.bytes());
    return nccl_.SendRecvGroup({}, {&t, 1}, stream_);
  }

  // Waits on the host for the posted receives (they complete as soon as the senders' sends,
  // which are never blocked on this rank, are posted), so the caller can time the transfer.
  Status ReceivesReady() override {
    const cudaError_t err = cudaStreamSynchronize(stream_);
    if (err != cudaSuccess) {
      return Status::Internal(StrFormat("KV receive failed: %s", cudaGetErrorString(err)));
    }
    return WaitFor(stream_, Compute());
  }
  const char* name() const override { return "nccl"; }

  // NCCL connects a pair of ranks at their first point-to-point call, which costs ~0.1 s of
  // setup (buffers, IPC handles). Every pair that can ever move KV (each GPU rank to each decode
  // rank) is connected here, at startup, with one small transfer, so no request pays for it.
  // Collective over the GPU ranks.
  Status Connect() {
    constexpr size_t kBytes = 256;
    const int me = layout_.Rank();
    std::vector<comm::NcclComm::Transfer> sends, recvs;
    SIEVE_ASSIGN_OR_RETURN(DeviceBuffer buffer,
                           backend_.Allocate(kBytes * (layout_.NumGpuRanks() + 1)));
    char* base = buffer.as<char>();
    for (int d : layout_.DecodeRanks()) {
      if (d != me)
        sends.push_back(comm::NcclComm::Transfer::ToPeer(layout_.GpuRankOf(d), base, kBytes));
    }
    if (layout_.IsDecodeNode()) {
      for (int g = 0; g < layout_.NumGpuRanks(); ++g) {
        const int r = layout_.WorldRankOfGpuRank(g);
        if (r == me) continue;
        recvs.push_back(comm::NcclComm::Transfer::FromPeer(g, base + kBytes * (g + 1), kBytes));
      }
    }
    SIEVE_RETURN_IF_ERROR(nccl_.SendRecvGroup(sends, recvs, stream_));
    const cudaError_t err = cudaStreamSynchronize(stream_);
    if (err != cudaSuccess) {
      return Status::Internal(StrFormat("rank %d: connecting the KV transport failed: %s", me,
                                        cudaGetErrorString(err)));
    }
    return Status::Ok();
  }

 private:
  struct Pending {
    ChunkKv kv;
    cudaEvent_t done = nullptr;
  };

  cudaStream_t Compute() const { return static_cast<cudaStream_t>(backend_.native_stream()); }

  // Work queued on `waiter` after this call runs after work already queued on `producer`.
  static Status WaitFor(cudaStream_t producer, cudaStream_t waiter) {
    cudaEvent_t event;
    SIEVE_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    SIEVE_CUDA_CHECK(cudaEventRecord(event, producer));
    SIEVE_CUDA_CHECK(cudaStreamWaitEvent(waiter, event, 0));
    SIEVE_CUDA_CHECK(cudaEventDestroy(event));
    return Status::Ok();
  }

  comm::MpiComm gpu_comm_;
  comm::NcclComm nccl_;
  comm::WorldLayout layout_;
  Backend& backend_;
  cudaStream_t stream_ = nullptr;
  std::list<Pending> pending_;
};

}  // namespace

StatusOr<std::unique_ptr<KvTransport>> MakeNcclKvTransport(comm::MpiComm gpu_comm,
                                                           const comm::WorldLayout& layout,
                                                           Backend& backend) {
  if (!backend.native_stream()) {
    return Status::FailedPrecondition("the NCCL KV transport needs the CUDA backend");
  }
  SIEVE_ASSIGN_OR_RETURN(comm::NcclComm nccl, comm::NcclComm::Create(gpu_comm, layout.Device()));
  auto transport =
      std::make_unique<NcclKvTransport>(std::move(gpu_comm), std::move(nccl), layout, backend);
  SIEVE_RETURN_IF_ERROR(transport->Connect());
  return std::unique_ptr<KvTransport>(std::move(transport));
}

}  // namespace sieve::worker
