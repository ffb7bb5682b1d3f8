// The engine's kernels for AVX2 + FMA CPUs: 8 floats a vector.
#include <algorithm>

#include "kernels.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#pragma GCC push_options
#pragma GCC target("avx2,fma")
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
#pragma GCC pop_options
#else
namespace lenet5::engine::avx2 {
const Kernels kKernels = {};
bool supported() { return false; }
}  // namespace lenet5::engine::avx2
#endif
