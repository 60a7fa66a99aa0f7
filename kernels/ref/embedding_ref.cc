// CPU reference for kernels/embedding.h.
#include "kernels/embedding.h"

namespace sieve::kernels {

void EmbeddingRef(const EmbeddingArgs& args) {
  for (int64_t t = 0; t < args.num_tokens; ++t) {
    const int64_t id = args.ids[t];
    const bool valid = id >= 0 && id < args.vocab;
    for (int64_t c = 0; c < args.hidden; ++c) {
      const float v = valid ? LoadAsFloat(args.table, args.table_dtype, id * args.hidden + c) : 0.f;
      StoreFromFloat(args.out, args.out_dtype, t * args.hidden + c, v);
    }
  }
}

}  // namespace sieve::kernels
