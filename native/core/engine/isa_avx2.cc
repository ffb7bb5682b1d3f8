// The engine's kernels for AVX2 + FMA CPUs: 8 floats a vector.
#include <algorithm>

#include "kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include "isa_target.h"
LENET5_TARGET_PUSH("avx2,fma")
namespace lenet5::engine::avx2 {
#define LENET5_LANES 8
#define LENET5_AVX2_MASKS
#define LENET5_ISA_NAME "avx2"
#include "kernels.inl"
#undef LENET5_LANES
#undef LENET5_ISA_NAME
#undef LENET5_AVX2_MASKS
bool supported() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
}  // namespace lenet5::engine::avx2
LENET5_TARGET_POP
#else
namespace lenet5::engine::avx2 {
const Kernels kKernels = {};
bool supported() { return false; }
}  // namespace lenet5::engine::avx2
#endif
