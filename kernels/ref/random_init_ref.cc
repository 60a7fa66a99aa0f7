// RandomInitRef: the CPU reference of RandomInit (kernels/random_init.h), a plain loop over the
// shared inline generator, so it writes exactly the bytes LaunchRandomInit writes on the GPU.
//
// On x86-64 CPUs with FMA the same loop is also compiled for the FMA instruction set and chosen
// at run time: the generator calls fma() explicitly, which is then one instruction instead of a
// libm call (about 3x faster), and gives the same correctly rounded results, so the bytes do not
// depend on the CPU.
//
// Tested by tests/unit/worker/random_init_test.cc.
#include "kernels/random_init.h"

#include "kernels/check.h"

namespace sieve::kernels {
namespace {

#define SIEVE_RANDOM_INIT_LOOP(args)                                 \
  for (int64_t i = 0; i < (args).n; ++i) {                           \
    StoreFromFloat((args).out, (args).dtype, static_cast<size_t>(i), \
                   RandomInitValue((args), (args).offset + i));      \
  }

void RandomInitLoop(const RandomInitArgs& args) { SIEVE_RANDOM_INIT_LOOP(args) }

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("fma"))) void RandomInitLoopFma(const RandomInitArgs& args) {
  SIEVE_RANDOM_INIT_LOOP(args)
}
#endif

#undef SIEVE_RANDOM_INIT_LOOP

}  // namespace

void RandomInitRef(const RandomInitArgs& args) {
  SIEVE_CHECK(args.n >= 0, "RandomInitRef: n=%lld must be >= 0", static_cast<long long>(args.n));
  SIEVE_CHECK(args.n == 0 || args.out != nullptr, "RandomInitRef: out is null with n=%lld",
              static_cast<long long>(args.n));
  SIEVE_CHECK(args.offset >= 0, "RandomInitRef: offset=%lld must be >= 0",
              static_cast<long long>(args.offset));
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("fma")) {
    RandomInitLoopFma(args);
    return;
  }
#endif
  RandomInitLoop(args);
}

}  // namespace sieve::kernels
