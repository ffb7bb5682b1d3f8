#include "kernels.h"

#include <cstdlib>
#include <string>

namespace lenet5::engine {

ParameterLayout::ParameterLayout(int classes) : classes(classes) {
  int64_t offset = 0;
  auto next = [&offset](int64_t size) {
    const int64_t at = offset;
    offset += size;
    return at;
  };
  conv1Weight = next(6 * 25);
  conv1Bias = next(6);
  conv2Weight = next(16 * 150);
  conv2Bias = next(16);
  fc1Weight = next(120 * 400);
  fc1Bias = next(120);
  fc2Weight = next(84 * 120);
  fc2Bias = next(84);
  fc3Weight = next(static_cast<int64_t>(classes) * 84);
  fc3Bias = next(classes);
  total = offset;
}

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
