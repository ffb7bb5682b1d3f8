#include "kernels.h"

#include <cstdlib>
#include <string>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace lenet5::engine {
namespace {

// AMD's Zen 4 (family 19h; Zen 3, the same family, has no AVX-512) runs each 512-bit operation as
// two 256-bit halves: AVX-512 adds no multiply-adds per cycle there, and the AVX2 table, whose tiles
// load two weight vectors per broadcast input instead of one, trained 10% faster (2-core EPYC,
// family 25 model 17: 68k vs 62k images/s; every layer but conv1's forward pass faster).
bool splitsAvx512() {
#if defined(__x86_64__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__builtin_cpu_is("amd") || !__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
  const unsigned family = ((eax >> 8) & 0xf) + ((eax >> 20) & 0xff);  // AMD's base family is 0xf, extended added
  return family == 0x19;
#else
  return false;
#endif
}

}  // namespace

int availableKernels(const Kernels** out, int capacity) {
  int count = 0;
  if (avx512::supported() && count < capacity) out[count++] = &avx512::kKernels;
  if (avx2::supported() && count < capacity) out[count++] = &avx2::kKernels;
  if (count < capacity) out[count++] = &baseline::kKernels;
  return count;
}

const Kernels& selectKernels() {
  static const Kernels* chosen = [] {
    const Kernels* available[3];
    const int count = availableKernels(available, 3);
    const char* wanted = std::getenv("LENET5_ISA");
    for (int i = 0; wanted != nullptr && i < count; ++i) {
      if (std::string(wanted) == available[i]->name) return available[i];
    }
    if (available[0] == &avx512::kKernels && avx2::supported() && splitsAvx512()) return &avx2::kKernels;
    return available[0];
  }();
  return *chosen;
}

}  // namespace lenet5::engine
