// NcclComm: bootstrap over MPI, grouped piece-bounded send/recv. See nccl_comm.h.
// Built only with SIEVE_ENABLE_CUDA. Tested by tests/mpi/nccl_comm_test.cc (GPU machines).
#include "comm/nccl_comm.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "comm/log.h"
#include "comm/nccl_check.h"

namespace sieve::comm {
namespace {

Status CudaStatus(cudaError_t err, const char* stmt) {
  if (err == cudaSuccess) return Status::Ok();
  return Status::Unavailable(
      StrFormat("[%s] CUDA %s failed: %s", ProcessContextString(), stmt, cudaGetErrorString(err)));
}

}  // namespace

NcclComm::~NcclComm() { Destroy(); }

void NcclComm::Destroy() {
  if (comm_ == nullptr) return;
  ncclResult_t async_error = ncclSuccess;
  const ncclResult_t query = ncclCommGetAsyncError(comm_, &async_error);
  if (query != ncclSuccess || async_error != ncclSuccess) {
    // A communicator in error cannot finish its pending work: abort rather than hang.
    SIEVE_LOG_WARN("aborting NCCL communicator after an asynchronous error", "error=\"%s\"",
                   ncclGetErrorString(query != ncclSuccess ? query : async_error));
    SIEVE_NCCL_CHECK_COMM(comm_, ncclCommAbort(comm_));
  } else {
    SIEVE_NCCL_CHECK_COMM(comm_, ncclCommDestroy(comm_));
  }
  comm_ = nullptr;
  rank_ = -1;
  size_ = 0;
  device_ = -1;
}

NcclComm::NcclComm(NcclComm&& other) noexcept
    : comm_(std::exchange(other.comm_, nullptr)),
      rank_(std::exchange(other.rank_, -1)),
      size_(std::exchange(other.size_, 0)),
      device_(std::exchange(other.device_, -1)) {}

NcclComm& NcclComm::operator=(NcclComm&& other) noexcept {
  if (this != &other) {
    Destroy();
    comm_ = std::exchange(other.comm_, nullptr);
    rank_ = std::exchange(other.rank_, -1);
    size_ = std::exchange(other.size_, 0);
    device_ = std::exchange(other.device_, -1);
  }
  return *this;
}

#if SIEVE_WITH_MPI
StatusOr<NcclComm> NcclComm::Create(const MpiComm& gpu_comm, int device) {
  if (gpu_comm.IsNull()) {
    return Status::FailedPrecondition(StrFormat(
        "[%s] NcclComm::Create on a null communicator (expected the GPU ranks' communicator; "
        "the coordinator takes no part)",
        ProcessContextString()));
  }
  // Rank 0 makes the id; an empty broadcast tells the others that it failed, so nobody hangs.
  std::string id_bytes;
  Status id_status;
  if (gpu_comm.Rank() == 0) {
    ncclUniqueId id;
    id_status = internal::NcclStatus(ncclGetUniqueId(&id), nullptr, "ncclGetUniqueId(&id)");
    if (id_status.ok()) id_bytes.assign(reinterpret_cast<const char*>(&id), sizeof(id));
  }
  gpu_comm.Bcast(&id_bytes, /*root=*/0);
  if (!id_status.ok()) return id_status;
  if (id_bytes.size() != sizeof(ncclUniqueId)) {
    return Status::Unavailable(StrFormat(
        "[%s] GPU rank 0 could not create the NCCL unique id (got %zu bytes, expected %zu)",
        ProcessContextString(), id_bytes.size(), sizeof(ncclUniqueId)));
  }
  ncclUniqueId id;
  std::memcpy(&id, id_bytes.data(), sizeof(id));
  return CreateFromId(id, gpu_comm.Rank(), gpu_comm.Size(), device);
}
#endif

StatusOr<NcclComm> NcclComm::CreateFromId(const ncclUniqueId& id, int rank, int size, int device) {
  if (size <= 0 || rank < 0 || rank >= size || device < 0) {
    return Status::InvalidArgument(
        StrFormat("[%s] NcclComm: rank=%d size=%d device=%d (expected 0 <= rank < size, "
                  "device >= 0)",
                  ProcessContextString(), rank, size, device));
  }
  SIEVE_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(device), "cudaSetDevice(device)"));
  NcclComm out;
  SIEVE_RETURN_IF_ERROR(
      internal::NcclStatus(ncclCommInitRank(&out.comm_, size, id, rank), nullptr,
                           "ncclCommInitRank(&comm, size, id, rank)")
          .WithContext(StrFormat("NCCL rank %d/%d on device %d", rank, size, device)));
  out.rank_ = rank;
  out.size_ = size;
  out.device_ = device;
  SIEVE_LOG_DEBUG("NCCL communicator ready", "nccl_rank=%d size=%d device=%d", rank, size, device);
  return out;
}

int64_t NcclComm::PieceCount(std::span<const Transfer> transfers, size_t max_piece_bytes) {
  if (max_piece_bytes == 0) return -1;
  int64_t pieces = 0;
  for (const Transfer& t : transfers) {
    pieces += static_cast<int64_t>((t.bytes + max_piece_bytes - 1) / max_piece_bytes);
  }
  return pieces;
}

Status NcclComm::SendRecvGroup(std::span<const Transfer> sends, std::span<const Transfer> recvs,
                               cudaStream_t stream, size_t max_piece_bytes) const {
  if (comm_ == nullptr) {
    return Status::FailedPrecondition(
        StrFormat("[%s] SendRecvGroup on a null NcclComm", ProcessContextString()));
  }
  if (max_piece_bytes == 0) {
    return Status::InvalidArgument(
        StrFormat("[%s] SendRecvGroup: max_piece_bytes=0 (expected > 0)", ProcessContextString()));
  }
  auto validate = [&](std::span<const Transfer> list, const char* kind) -> Status {
    for (size_t i = 0; i < list.size(); ++i) {
      const Transfer& t = list[i];
      if (t.peer < 0 || t.peer >= size_) {
        return Status::InvalidArgument(
            StrFormat("[%s] SendRecvGroup: %s %zu has peer %d (expected an NCCL rank in [0, %d))",
                      ProcessContextString(), kind, i, t.peer, size_));
      }
      if (t.bytes > 0 && t.data == nullptr) {
        return Status::InvalidArgument(
            StrFormat("[%s] SendRecvGroup: %s %zu to/from peer %d has %zu bytes at nullptr",
                      ProcessContextString(), kind, i, t.peer, t.bytes));
      }
    }
    return Status::Ok();
  };
  SIEVE_RETURN_IF_ERROR(validate(sends, "send"));
  SIEVE_RETURN_IF_ERROR(validate(recvs, "recv"));

  SIEVE_RETURN_IF_ERROR(internal::NcclStatus(ncclGroupStart(), comm_, "ncclGroupStart()"));
  // On a failure inside the group, stop issuing but always close the group.
  Status first_error;
  auto issue = [&](std::span<const Transfer> list, bool is_send) {
    for (const Transfer& t : list) {
      auto* base = static_cast<char*>(t.data);
      for (size_t offset = 0; offset < t.bytes && first_error.ok(); offset += max_piece_bytes) {
        const size_t n = std::min(max_piece_bytes, t.bytes - offset);
        first_error =
            is_send
                ? internal::NcclStatus(ncclSend(base + offset, n, ncclUint8, t.peer, comm_, stream),
                                       comm_, "ncclSend(piece, n, ncclUint8, peer, comm, stream)")
                : internal::NcclStatus(ncclRecv(base + offset, n, ncclUint8, t.peer, comm_, stream),
                                       comm_, "ncclRecv(piece, n, ncclUint8, peer, comm, stream)");
      }
      if (!first_error.ok()) return;
    }
  };
  issue(sends, /*is_send=*/true);
  issue(recvs, /*is_send=*/false);
  const Status end = internal::NcclStatus(ncclGroupEnd(), comm_, "ncclGroupEnd()");
  if (!first_error.ok()) return first_error;
  return end;
}

Status NcclComm::AllGather(const void* send, void* recv, size_t bytes_per_rank,
                           cudaStream_t stream) const {
  if (comm_ == nullptr) {
    return Status::FailedPrecondition(
        StrFormat("[%s] AllGather on a null NcclComm", ProcessContextString()));
  }
  return internal::NcclStatus(ncclAllGather(send, recv, bytes_per_rank, ncclUint8, comm_, stream),
                              comm_, "ncclAllGather(send, recv, bytes, ncclUint8, comm, stream)");
}

Status NcclComm::Bcast(void* data, size_t bytes, int root, cudaStream_t stream) const {
  if (comm_ == nullptr) {
    return Status::FailedPrecondition(
        StrFormat("[%s] Bcast on a null NcclComm", ProcessContextString()));
  }
  if (root < 0 || root >= size_) {
    return Status::InvalidArgument(StrFormat("[%s] NcclComm::Bcast: root=%d (expected [0, %d))",
                                             ProcessContextString(), root, size_));
  }
  return internal::NcclStatus(ncclBroadcast(data, data, bytes, ncclUint8, root, comm_, stream),
                              comm_,
                              "ncclBroadcast(data, data, bytes, ncclUint8, root, comm, stream)");
}

}  // namespace sieve::comm
