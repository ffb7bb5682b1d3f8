// The int8 pass alone, for counting the instructions each kernel table executes per image under
// qemu (scripts/arm64/count-int8.sh): a fixed random network, `images` normalised random images
// run on the calling thread with the table `kernels`; prints a checksum of the logits' bits, which
// is the same for every table (they are bit for bit the TypeScript reference).
//   int8-count KERNELS IMAGES
//   int8-count --list          the tables this CPU runs, best first
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "../../native/core/engine/int8.h"

namespace lenet5 {
// The addon's version (errors.cc) needs LibTorch; the images here are finite.
void requireFinitePixels(const float*, int64_t) {}
}  // namespace lenet5

int main(int argc, char** argv) {
  using namespace lenet5::engine::int8;
  if (argc == 2 && std::strcmp(argv[1], "--list") == 0) {
    for (const Kernels* k : availableKernels()) std::printf("%s\n", k->name);
    return 0;
  }
  if (argc != 3) {
    std::fprintf(stderr, "usage: int8-count KERNELS IMAGES | --list\n");
    return 2;
  }
  const int images = std::atoi(argv[2]);
  std::mt19937 random(5);
  const int shapes[5][2] = {{6, 25}, {16, 150}, {120, 400}, {84, 120}, {10, 84}};
  std::vector<int8_t> weights[5];
  std::vector<float> weightScales[5];
  std::vector<int32_t> biases[5];
  NetworkArrays arrays;
  arrays.classes = 10;
  const float activationScales[5] = {0.0157f, 0.05f, 0.08f, 0.1f, 0.12f};
  for (int l = 0; l < 5; ++l) {
    const auto [outputs, inputs] = shapes[l];
    for (int i = 0; i < outputs * inputs; ++i) weights[l].push_back(static_cast<int8_t>(random() % 256 - 128));
    for (int o = 0; o < outputs; ++o) {
      weightScales[l].push_back(0.5f / (128 * inputs));
      biases[l].push_back(static_cast<int32_t>(random() % 20001) - 10000);
    }
    arrays.activationScales[l] = activationScales[l];
    arrays.weights[l] = weights[l].data();
    arrays.weightScales[l] = weightScales[l].data();
    arrays.biases[l] = biases[l].data();
  }
  std::vector<float> pixels(static_cast<size_t>(images) * 784);
  std::uniform_real_distribution<float> value(-1, 1);
  for (float& p : pixels) p = value(random);
  Network network(arrays, argv[1]);
  std::vector<float> logits(static_cast<size_t>(images) * 10);
  Input input;
  input.normalized = pixels.data();
  network.logits(input, images, 1, logits.data());
  uint32_t checksum = 0;
  for (float v : logits) {
    uint32_t b;
    std::memcpy(&b, &v, 4);
    checksum = checksum * 31 + b;
  }
  std::fprintf(stderr, "%s: %d images, logits checksum %08x\n", network.kernelsName(), images, checksum);
  return 0;
}
