// Per-layer profile of the int8 pass (native/core/engine/int8*): each layer's AVX2 kernel timed
// alone over a block of 64 images of a random network, in thread CPU time (other processes on a
// busy machine count less), best of `rounds` x 20 repetitions, and the whole pass for comparison.
// Not part of `npm run bench`; build and run it by hand from the package root:
//   g++ -O3 -std=c++17 -pthread -ffp-contract=fast -Wno-psabi -o build/int8_layers scripts/bench/int8_layers.cc
//     native/core/engine/worker_pool.cc native/core/engine/int8_*.cc
//   build/int8_layers 20
// It includes int8.cc itself to reach pack(), which the engine keeps private.
#include <immintrin.h>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>

#include "../../native/core/engine/int8.cc"
#include "../../native/core/engine/isa_target.h"
#include "../../native/core/engine/kernels.h"

LENET5_TARGET_PUSH("avx2,fma")
namespace lenet5::engine::int8::profile {
#define LENET5_INT8_NAME "avx2"
#include "../../native/core/engine/int8_x86.inl"
#include "../../native/core/engine/int8_kernels.inl"
#undef LENET5_INT8_NAME
}  // namespace lenet5::engine::int8::profile
LENET5_TARGET_POP

// int8.cc names it for a non-finite input; these inputs are finite (errors.cc needs LibTorch).
namespace lenet5 {
void requireFinitePixels(const float*, int64_t) {}
}  // namespace lenet5

using lenet5::engine::kPixels;
using namespace lenet5::engine::int8;
using namespace lenet5::engine::int8::profile;

static double threadSeconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 20;
  std::mt19937 random(1);
  std::uniform_int_distribution<int> weight(-127, 127), bias(-2000, 2000);
  constexpr int kShapes[5][2] = {{6, 25}, {16, 150}, {120, 400}, {84, 120}, {10, 84}};
  std::vector<int8_t> weights[5];
  std::vector<float> weightScales[5];
  std::vector<int32_t> biases[5];
  NetworkArrays arrays;
  arrays.classes = 10;
  for (int layer = 0; layer < 5; ++layer) {
    arrays.activationScales[layer] = layer == 0 ? 0.02f : 0.05f;
    weights[layer].resize(kShapes[layer][0] * kShapes[layer][1]);
    for (auto& w : weights[layer]) w = static_cast<int8_t>(weight(random));
    weightScales[layer].assign(kShapes[layer][0], 0.0005f);
    biases[layer].resize(kShapes[layer][0]);
    for (auto& b : biases[layer]) b = bias(random);
    arrays.weights[layer] = weights[layer].data();
    arrays.weightScales[layer] = weightScales[layer].data();
    arrays.biases[layer] = biases[layer].data();
  }
  const PackedNetwork net = pack(arrays);
  constexpr int n = kBlockImages;
  std::vector<float> images(n * kPixels);
  std::normal_distribution<float> pixel(0, 1);
  for (auto& x : images) x = pixel(random);
  Input input;
  input.normalized = images.data();
  auto ws = std::make_unique<Workspace>();
  std::memset(ws.get(), 0, sizeof(Workspace));
  std::vector<uint8_t> pooled(n * 14 * 14 * 6 + 64);  // conv1's outputs, one image after another
  std::vector<float> logits(n * 10);
  const char* names[] = {"input", "conv1", "conv2", "fc1", "fc2", "fc3", "whole pass"};
  double best[7];
  for (double& b : best) b = 1e9;
  for (int round = 0; round < rounds * 20; ++round) {
    double t[8];
    t[0] = threadSeconds();
    for (int i = 0; i < n; ++i) loadImage(net, input, i, ws->image);
    t[1] = threadSeconds();
    for (int i = 0; i < n; ++i) conv1(net, ws->image, pooled.data() + i * 14 * 14 * 6);
    t[2] = threadSeconds();
    for (int i = 0; i < n; ++i) conv2(net, pooled.data() + i * 14 * 14 * 6, ws->features + i * 400);
    t[3] = threadSeconds();
    linear(n, ws->features, 400, 400, net.fc1, 15,
           [&](int i, int g, Lanes s) { requantize(s, net.epilogues[2], g * 8, ws->hidden1 + i * 120 + g * 8); });
    t[4] = threadSeconds();
    linear(n, ws->hidden1, 120, 120, net.fc2, 11, [&](int i, int g, Lanes s) {
      requantize(s, net.epilogues[3], g * 8, ws->hidden2 + i * kHidden2Stride + g * 8);
    });
    t[5] = threadSeconds();
    linear(n, ws->hidden2, kHidden2Stride, 84, net.fc3, net.classGroups, [&](int i, int g, Lanes s) {
      float values[8];
      dequantize(s, net.epilogues[4], g * 8, values);
      std::memcpy(logits.data() + i * 10 + g * 8, values, std::min(8, 10 - g * 8) * sizeof(float));
    });
    t[6] = threadSeconds();
    forwardImages(net, input, 0, n, logits.data(), *ws);
    t[7] = threadSeconds();
    for (int k = 0; k < 7; ++k) best[k] = std::min(best[k], t[k + 1] - t[k]);
  }
  for (int k = 0; k < 7; ++k) std::printf("%-10s %5.2f us an image\n", names[k], best[k] / n * 1e6);
}
