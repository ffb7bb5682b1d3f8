// The engine's kernels for AVX-512 CPUs: 16 floats a vector, 32 vector registers.
#include <algorithm>

#include "kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include "isa_target.h"
LENET5_TARGET_PUSH("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")
// GCC 12's own _mm512_undefined_ps() and _mm256_undefined_pd() (inside _mm512_reduce_add_ps and
// _mm512_sqrt_ps) trip -Wuninitialized and -Wmaybe-uninitialized where they are inlined (fixed
// in GCC 13, bug 105593).
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
namespace lenet5::engine::avx512 {
#define LENET5_LANES 16
#define LENET5_AVX512_MASKS
#define LENET5_ISA_NAME "avx512"
#include "kernels.inl"
#undef LENET5_LANES
#undef LENET5_ISA_NAME
#undef LENET5_AVX512_MASKS
bool supported() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
}
}  // namespace lenet5::engine::avx512
LENET5_TARGET_POP
#else
namespace lenet5::engine::avx512 {
const Kernels kKernels = {};
bool supported() { return false; }
}  // namespace lenet5::engine::avx512
#endif
