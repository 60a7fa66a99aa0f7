// Synthesized weights on the CPU (worker/random_weights.h).
//
// Tested by tests/unit/worker/random_init_test.cc.
#include "worker/random_weights.h"

namespace sieve::worker {

kernels::RandomInitArgs RandomWeightArgs(const TensorSpec& spec, uint64_t seed,
                                         float initializer_range, DType dtype, void* out,
                                         int64_t offset, int64_t count) {
  const bool is_norm = spec.kind == TensorKind::kNorm;
  kernels::RandomInitArgs args{};
  args.out = out;
  args.dtype = dtype;
  args.n = count;
  args.seed = seed;
  args.stream = kernels::TensorStreamId(spec.name);
  args.mean = is_norm ? 1.0f : 0.0f;
  args.stddev = is_norm ? 0.0f : initializer_range;
  args.constant = is_norm;
  args.offset = offset;
  return args;
}

Status FillRandomWeightSlice(const TensorSpec& spec, uint64_t seed, float initializer_range,
                             DType dtype, int64_t offset, int64_t count, void* host_out) {
  for (const int64_t d : spec.shape) {
    if (d < 0) {
      return Status::InvalidArgument(StrFormat("tensor '%s': negative dim in shape %s",
                                               spec.name.c_str(),
                                               ShapeToString(spec.shape).c_str()));
    }
  }
  const int64_t total = spec.NumElements();
  if (offset < 0 || count < 0 || offset > total || count > total - offset) {
    return Status::InvalidArgument(
        StrFormat("tensor '%s': slice [%lld, %lld) is outside its %lld elements", spec.name.c_str(),
                  static_cast<long long>(offset), static_cast<long long>(offset + count),
                  static_cast<long long>(total)));
  }
  if (count > 0 && host_out == nullptr) {
    return Status::InvalidArgument(StrFormat("tensor '%s': null output buffer", spec.name.c_str()));
  }
  kernels::RandomInitRef(
      RandomWeightArgs(spec, seed, initializer_range, dtype, host_out, offset, count));
  return Status::Ok();
}

Status FillRandomWeight(const TensorSpec& spec, uint64_t seed, float initializer_range, DType dtype,
                        void* host_out) {
  for (const int64_t d : spec.shape) {
    if (d < 0) {
      return Status::InvalidArgument(StrFormat("tensor '%s': negative dim in shape %s",
                                               spec.name.c_str(),
                                               ShapeToString(spec.shape).c_str()));
    }
  }
  return FillRandomWeightSlice(spec, seed, initializer_range, dtype, 0, spec.NumElements(),
                               host_out);
}

}  // namespace sieve::worker
