// The engine's kernels for any CPU the compiler targets by default (SSE2 on x86-64, NEON on
// arm64): 4 floats a vector.
#include <algorithm>

#include "kernels.h"

namespace lenet5::engine::baseline {
#define LENET5_LANES 4
#define LENET5_ISA_NAME "baseline"
#include "kernels.inl"
#undef LENET5_LANES
#undef LENET5_ISA_NAME
}  // namespace lenet5::engine::baseline
