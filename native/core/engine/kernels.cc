#include "kernels.h"

#include <cstdlib>
#include <string>

namespace lenet5::engine {

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
    return available[0];
  }();
  return *chosen;
}

}  // namespace lenet5::engine
