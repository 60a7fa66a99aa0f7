#include "worker/kv_transport.h"

#include <cstddef>
#include <list>
#include <span>

namespace sieve::worker {
namespace {

class MpiKvTransport final : public KvTransport {
 public:
  MpiKvTransport(const comm::MpiComm& world, Backend& backend) : world_(world), backend_(backend) {}

  Status PostSend(ChunkKv kv, int dest) override {
    SIEVE_RETURN_IF_ERROR(HostOnly());
    SIEVE_RETURN_IF_ERROR(backend_.Synchronize());
    pending_.emplace_back();
    Pending& p = pending_.back();
    p.kv = std::move(kv);
    p.request = world_.IsendBytes(std::span(p.kv.data.as<const std::byte>(), p.kv.data.bytes()),
                                  dest, comm::MpiTag::kKvData);
    return Status::Ok();
  }

  void ReleaseCompletedSends() override {
    for (auto it = pending_.begin(); it != pending_.end();) {
      it = it->request.Test() ? pending_.erase(it) : std::next(it);
    }
  }

  size_t pending_sends() const override { return pending_.size(); }

  Status Recv(ChunkKv* kv, int source) override {
    SIEVE_RETURN_IF_ERROR(HostOnly());
    return world_
        .RecvInto(std::span(kv->data.as<std::byte>(), kv->data.bytes()), source,
                  comm::MpiTag::kKvData)
        .status();
  }

  Status ReceivesReady() override { return Status::Ok(); }
  const char* name() const override { return "mpi"; }

 private:
  struct Pending {
    ChunkKv kv;
    comm::MpiSendRequest request;
  };

  Status HostOnly() const {
    if (backend_.kind() != DeviceKind::kCpu) {
      return Status::FailedPrecondition("the MPI KV transport moves host memory; use NCCL on GPUs");
    }
    return Status::Ok();
  }

  const comm::MpiComm& world_;
  Backend& backend_;
  std::list<Pending> pending_;
};

}  // namespace

std::unique_ptr<KvTransport> MakeMpiKvTransport(const comm::MpiComm& world, Backend& backend) {
  return std::make_unique<MpiKvTransport>(world, backend);
}

#if !SIEVE_WITH_CUDA
StatusOr<std::unique_ptr<KvTransport>> MakeNcclKvTransport(comm::MpiComm gpu_comm,
                                                           const comm::WorldLayout& layout,
                                                           Backend& backend) {
  return Status::Unavailable("this build has no CUDA/NCCL (SIEVE_ENABLE_CUDA=OFF)");
}
#endif

}  // namespace sieve::worker
