// CPU reference for kernels/silu_mul.h.
#include <cmath>

#include "kernels/silu_mul.h"

namespace sieve::kernels {

void SiluMulRef(const SiluMulArgs& args) {
  const int64_t block = args.block > 0 ? args.block : args.inter;
#pragma omp parallel for if (args.rows > 16)
  for (int64_t r = 0; r < args.rows; ++r) {
    for (int64_t i = 0; i < args.inter; ++i) {
      const int64_t gate = r * 2 * args.inter + SwigluGateIndex(i, block);
      const float g = LoadAsFloat(args.gate_up, args.dtype, gate);
      const float u = LoadAsFloat(args.gate_up, args.dtype, gate + block);
      const float silu = g / (1.f + std::exp(-g));
      StoreFromFloat(args.out, args.dtype, r * args.inter + i, silu * u);
    }
  }
}

}  // namespace sieve::kernels
