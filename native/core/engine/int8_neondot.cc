// The int8 kernels for arm64 CPUs with the ARMv8.2 dot-product instructions (Cortex-A55/A75 and
// later, Neoverse, Apple M1 and later): sdot, one instruction per 4 lanes' u8 x s8 dot products
// and their sums. Checked under qemu (which emulates them); not run on arm64 hardware yet.
#include <algorithm>
#include <cstring>

#include "int8.h"
#include "kernels.h"

#if defined(__aarch64__) && defined(__GNUC__)
#include <arm_neon.h>
#include <asm/hwcap.h>
#include <sys/auxv.h>
#include "isa_target.h"
// (the architecture, not just +dotprod: arm_neon.h declares sdot for armv8.2-a+dotprod, and every CPU
// with the dot product implements ARMv8.2)
LENET5_TARGET_PUSH("arch=armv8.2-a+dotprod")
namespace lenet5::engine::int8::neondot {
#define LENET5_INT8_NAME "neondot"
#define LENET5_INT8_DOTPROD
#include "int8_neon.inl"
#include "int8_kernels.inl"
#undef LENET5_INT8_CONV1_ROW
#undef LENET5_INT8_DOTPROD
#undef LENET5_INT8_NAME
}  // namespace lenet5::engine::int8::neondot
LENET5_TARGET_POP
namespace lenet5::engine::int8::neondot {
bool supported() { return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0; }
}  // namespace lenet5::engine::int8::neondot
#else
namespace lenet5::engine::int8::neondot {
const Kernels kKernels = {};
bool supported() { return false; }
}  // namespace lenet5::engine::int8::neondot
#endif
