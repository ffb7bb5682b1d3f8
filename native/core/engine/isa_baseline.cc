// The engine's kernels for any CPU the compiler targets by default: 4 floats a vector, which is
// SSE2 on x86-64 and NEON on arm64 (part of every ARMv8-A CPU, so arm64 needs no run-time choice).
// On arm64 the table is named "neon". Wider generic vectors do not pay there: GCC 12 keeps 8-float
// vectors on the stack between NEON instructions.
#include <algorithm>

#include "kernels.h"

namespace lenet5::engine::baseline {
#define LENET5_LANES 4
#if defined(__aarch64__)
#define LENET5_ISA_NAME "neon"
#else
#define LENET5_ISA_NAME "baseline"
#endif
#include "kernels.inl"
#undef LENET5_LANES
#undef LENET5_ISA_NAME
}  // namespace lenet5::engine::baseline
