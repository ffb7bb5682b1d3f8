// The int8 kernels for every arm64 CPU: NEON's widening multiplies (smull) and pairwise adds
// (addp, sadalp), the AVX2 table's scheme on two 128-bit vectors.
#include <algorithm>
#include <cstring>

#include "int8.h"
#include "kernels.h"

#if defined(__aarch64__) && defined(__GNUC__)
#include <arm_neon.h>
namespace lenet5::engine::int8::neon {
#define LENET5_INT8_NAME "neon"
#include "int8_neon.inl"
#include "int8_kernels.inl"
#undef LENET5_INT8_NAME
bool supported() { return true; }  // NEON is part of every ARMv8-A CPU
}  // namespace lenet5::engine::int8::neon
#else
namespace lenet5::engine::int8::neon {
const Kernels kKernels = {};
bool supported() { return false; }
}  // namespace lenet5::engine::int8::neon
#endif
