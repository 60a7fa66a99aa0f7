// CudaBackend: the CUDA kernels of kernels/*.cu on one stream per worker. (Issue 4: until the
// kernels land, the factory reports the backend as unavailable.)
#include <cuda_runtime_api.h>

#include "worker/backend.h"

namespace sieve::worker {

int CudaDeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) return 0;
  return count;
}

StatusOr<std::unique_ptr<Backend>> MakeCudaBackend(int device) {
  return Status::Unavailable("the CUDA backend is not implemented yet");
}

}  // namespace sieve::worker
