// The int8 kernels for AVX2 CPUs: vpmaddubsw + vpmaddwd.
#include <algorithm>
#include <cstring>

#include "int8.h"
#include "kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include "isa_target.h"
LENET5_TARGET_PUSH("avx2,fma")
namespace lenet5::engine::int8::avx2 {
#define LENET5_INT8_NAME "avx2"
#include "int8_x86.inl"
#include "int8_kernels.inl"
#undef LENET5_INT8_NAME
bool supported() { return __builtin_cpu_supports("avx2"); }
}  // namespace lenet5::engine::int8::avx2
LENET5_TARGET_POP
#else
namespace lenet5::engine::int8::avx2 {
const Kernels kKernels = {};
bool supported() { return false; }
}  // namespace lenet5::engine::int8::avx2
#endif
