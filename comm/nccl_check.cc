// The NCCL reporters behind SIEVE_NCCL_CHECK and NcclStatus. See nccl_check.h.
// Built only with SIEVE_ENABLE_CUDA. Exercised by tests/mpi/nccl_comm_test.cc.
#include "comm/nccl_check.h"

#include <cstdio>
#include <string>

namespace sieve::internal {
namespace {

std::string NcclMessage(ncclResult_t result, ncclComm_t comm) {
  const char* last = ncclGetLastError(comm);
  std::string text = ncclGetErrorString(result);
  text += StrFormat(" (ncclResult_t %d)", static_cast<int>(result));
  if (last != nullptr && last[0] != '\0') {
    text += "; last error: ";
    text += last;
  }
  return text;
}

}  // namespace

void FatalNcclError(ncclResult_t result, ncclComm_t comm, const char* stmt, const char* file,
                    int line, const char* func) {
  const std::string message = NcclMessage(result, comm);
  FatalApiError("NCCL", stmt, message.c_str(), file, line, func);
}

Status NcclStatus(ncclResult_t result, ncclComm_t comm, const char* stmt) {
  if (result == ncclSuccess) return Status::Ok();
  const std::string message = StrFormat("[%s] NCCL %s failed: %s", ProcessContextString(), stmt,
                                        NcclMessage(result, comm).c_str());
  if (result == ncclRemoteError || result == ncclSystemError) return Status::Unavailable(message);
  if (result == ncclInvalidArgument || result == ncclInvalidUsage) {
    return Status::InvalidArgument(message);
  }
  return Status::Internal(message);
}

}  // namespace sieve::internal
