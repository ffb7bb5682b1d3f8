// The engine's kernels built at 4, 8 and 16 lanes with GCC's generic vectors (no instruction-set
// intrinsics), so the logic of every table's lane width -- including AVX-512's 16, which CPUs
// without AVX-512 cannot run -- is checked on any machine: training images' loss and gradients
// and the forward pass's logits of each width are printed as one JSON object for
// test/engine.test.ts to compare.
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "../../native/core/engine/kernels.h"

#define LENET5_ISA_NAME "generic"
namespace lanes4 {
using namespace lenet5::engine;
#define LENET5_LANES 4
#include "../../native/core/engine/kernels.inl"
#undef LENET5_LANES
}  // namespace lanes4
namespace lanes8 {
using namespace lenet5::engine;
#define LENET5_LANES 8
#include "../../native/core/engine/kernels.inl"
#undef LENET5_LANES
}  // namespace lanes8
namespace lanes16 {
using namespace lenet5::engine;
#define LENET5_LANES 16
#include "../../native/core/engine/kernels.inl"
#undef LENET5_LANES
}  // namespace lanes16

int main() {
  using namespace lenet5::engine;
  constexpr int kClasses = 10, kImages = 70;  // a whole block of 64 and a partial one
  const ParameterLayout layout(kClasses);
  std::mt19937 random(7);
  std::normal_distribution<float> normal(0, 0.1f);
  std::vector<float> params(layout.total);
  for (auto& p : params) p = normal(random);
  std::vector<uint8_t> pixels(kImages * kPixels);
  for (auto& p : pixels) p = static_cast<uint8_t>(random() % 256);
  std::vector<int64_t> labels(kImages);
  for (auto& l : labels) l = static_cast<int64_t>(random() % kClasses);
  ImageSource source;
  source.pixels = pixels.data();
  source.scale = 1 / 255.0f / 0.353f;
  source.shift = -0.286f / 0.353f;

  const Kernels* tables[] = {&lanes4::kKernels, &lanes8::kKernels, &lanes16::kKernels};
  std::printf("{");
  for (int t = 0; t < 3; ++t) {
    const Kernels& kernels = *tables[t];
    std::vector<char> memory(kernels.workspaceBytes(kClasses) + 64);
    void* workspace = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(memory.data()) + 63) / 64 * 64);
    std::vector<float> gradients(layout.total, 0.0f), logits(kImages * kClasses);
    const double loss = kernels.trainImages(params.data(), gradients.data(), kClasses, source, labels.data(), 0,
                                            kImages, 1.0f / kImages, workspace);
    kernels.forwardImages(params.data(), kClasses, source, 0, kImages, logits.data(), workspace);
    std::printf("%s\"%d\":{\"loss\":%.9g,\"gradients\":[", t ? "," : "", 4 << t, loss);
    for (size_t i = 0; i < gradients.size(); ++i) std::printf("%s%.9g", i ? "," : "", gradients[i]);
    std::printf("],\"logits\":[");
    for (size_t i = 0; i < logits.size(); ++i) std::printf("%s%.9g", i ? "," : "", logits[i]);
    std::printf("]}");
  }
  std::printf("}\n");
}
