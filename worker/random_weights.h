// Synthesized weights: deterministic random values for a checkpoint tensor, so that a model of
// any shape can be built (sieve-make-model) or instantiated in memory without a checkpoint.
//
// Values follow the Hugging Face Llama initialization: Norm weights are 1.0, Embedding and Linear
// weights normal(0, initializer_range). Element i of tensor `name` depends only on (seed, name,
// i), through the RandomInit kernel trio (kernels/random_init.h), so the CPU path here and
// LaunchRandomInit on a GPU produce the same bytes, and any slice can be generated on its own.
//
// Tested by tests/unit/worker/random_init_test.cc.
#pragma once

#include <cstdint>

#include "comm/status.h"
#include "kernels/dtype.h"
#include "kernels/random_init.h"
#include "worker/checkpoint.h"

namespace sieve::worker {

// The RandomInit arguments for elements [offset, offset + count) of `spec`, writing to `out`.
kernels::RandomInitArgs RandomWeightArgs(const TensorSpec& spec, uint64_t seed,
                                         float initializer_range, DType dtype, void* out,
                                         int64_t offset, int64_t count);

// Fills host_out ([spec.NumElements()] elements of `dtype`, caller-owned) with the tensor's
// values. InvalidArgument for a null buffer or a negative shape.
Status FillRandomWeight(const TensorSpec& spec, uint64_t seed, float initializer_range, DType dtype,
                        void* host_out);

// Fills host_out ([count] elements of `dtype`) with elements [offset, offset + count) of the
// tensor: the same bytes as the corresponding slice of FillRandomWeight's output. Lets callers
// split a large tensor across threads or write it in pieces.
Status FillRandomWeightSlice(const TensorSpec& spec, uint64_t seed, float initializer_range,
                             DType dtype, int64_t offset, int64_t count, void* host_out);

}  // namespace sieve::worker
