#include "int8.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>

#include "../errors.h"
#include "kernels.h"

namespace lenet5::engine::int8 {
namespace {

constexpr int kLanes = 8;
constexpr int kFeatures = 400, kHidden1 = 120, kHidden2 = 84;
// Up to this many images run on the calling thread alone; larger batches go to the team in
// chunks of at most kChunkImages, taken in turn by whichever thread is free. Small chunks keep the
// threads' shares even at the end of a batch (64-image chunks left one thread waiting for the
// other's last chunk, up to half a millisecond a call); the fully connected layers of 16 images
// still reuse each weight tile 16 times.
constexpr int64_t kInlineImages = 32;
constexpr int64_t kChunkImages = 16;

int groupsOf(int outputs) { return (outputs + kLanes - 1) / kLanes; }

// A linear layer's weight [outputs][inputs] as [inputs/4 quads][groups][8 lanes][4]; `column(k)`
// is the PyTorch column that feeds packed input k.
template <typename Column>
std::vector<int8_t> packLinear(const int8_t* weight, int outputs, int inputs, Column column) {
  const int groups = groupsOf(outputs);
  std::vector<int8_t> packed(static_cast<size_t>(inputs / 4) * groups * kLanes * 4, 0);
  for (int k = 0; k < inputs; ++k) {
    for (int o = 0; o < outputs; ++o) {
      packed[((static_cast<size_t>(k / 4) * groups + o / kLanes) * kLanes + o % kLanes) * 4 + k % 4] =
          weight[static_cast<size_t>(o) * inputs + column(k)];
    }
  }
  return packed;
}

// `repeat`: each channel's constants for that many consecutive lanes (conv1's lanes are pixels).
// `inputs`: products per sum, each at most 128 x 128 in magnitude.
Epilogue epilogue(const NetworkArrays& arrays, int layer, int outputs, int inputs, float nextScale, int repeat = 1) {
  const int lanes = repeat == 1 ? groupsOf(outputs) * kLanes : outputs * repeat;
  Epilogue e;
  e.bias.assign(lanes, 0);
  e.scale.assign(lanes, 0.0f);
  e.nextScale = nextScale;
  int64_t largestBias = 0;
  for (int c = 0; c < outputs; ++c) {
    largestBias = std::max<int64_t>(largestBias, std::abs(static_cast<int64_t>(arrays.biases[layer][c])));
    for (int r = 0; r < repeat; ++r) {
      e.bias[c * repeat + r] = arrays.biases[layer][c];
      // float32 x float32 rounded to float32, as the reference's Math.fround(inputScale * s).
      e.scale[c * repeat + r] = arrays.activationScales[layer] * arrays.weightScales[layer][c];
    }
  }
  e.exactInFloat = largestBias + static_cast<int64_t>(inputs) * 128 * 128 <= (int64_t{1} << 24);
  e.biasDouble.assign(e.bias.begin(), e.bias.end());
  e.scaleDouble.assign(e.scale.begin(), e.scale.end());
  return e;
}

PackedNetwork pack(const NetworkArrays& a) {
  PackedNetwork p;
  p.classes = a.classes;
  p.classGroups = groupsOf(a.classes);
  p.inputScale = a.activationScales[0];
  p.conv1.assign(6 * 15 * 2, 0);
  for (int c = 0; c < 6; ++c) {
    for (int ky = 0; ky < 5; ++ky) {
      for (int kx = 0; kx < 5; ++kx)
        p.conv1[(c * 15 + ky * 3 + kx / 2) * 2 + kx % 2] = a.weights[0][c * 25 + ky * 5 + kx];
    }
  }
  p.conv1Quads.assign(5 * 6 * 8, 0);
  for (int ky = 0; ky < 5; ++ky) {
    for (int c = 0; c < 6; ++c) {
      for (int kx = 0; kx < 5; ++kx) p.conv1Quads[(ky * 6 + c) * 8 + kx] = a.weights[0][c * 25 + ky * 5 + kx];
    }
  }
  p.conv2.assign(5 * 8 * 2 * kLanes * 4, 0);
  for (int c = 0; c < 16; ++c) {
    for (int ic = 0; ic < 6; ++ic) {
      for (int ky = 0; ky < 5; ++ky) {
        for (int kx = 0; kx < 5; ++kx) {
          const int k = kx * 6 + ic;  // the byte of the 30-byte input run (channel-last)
          p.conv2[(((ky * 8 + k / 4) * 2 + c / kLanes) * kLanes + c % kLanes) * 4 + k % 4] =
              a.weights[1][((c * 6 + ic) * 5 + ky) * 5 + kx];
        }
      }
    }
  }
  // Packed input k = pixel * 16 + channel (channel-last); PyTorch's view(-1, 400) is channel * 25 + pixel.
  p.fc1 = packLinear(a.weights[2], kHidden1, kFeatures, [](int k) { return (k % 16) * 25 + k / 16; });
  p.fc2 = packLinear(a.weights[3], kHidden2, kHidden1, [](int k) { return k; });
  p.fc3 = packLinear(a.weights[4], a.classes, kHidden2, [](int k) { return k; });
  p.epilogues[0] = epilogue(a, 0, 6, 25, a.activationScales[1], kLanes);
  p.epilogues[1] = epilogue(a, 1, 16, 150, a.activationScales[2]);
  p.epilogues[2] = epilogue(a, 2, kHidden1, kFeatures, a.activationScales[3]);
  p.epilogues[3] = epilogue(a, 3, kHidden2, kHidden1, a.activationScales[4]);
  p.epilogues[4] = epilogue(a, 4, a.classes, kHidden2, 1);
  return p;
}

}  // namespace

std::vector<const Kernels*> availableKernels() {
  std::vector<const Kernels*> tables;
  if (avx512vnni::supported()) tables.push_back(&avx512vnni::kKernels);
  if (avx2::supported()) tables.push_back(&avx2::kKernels);
  if (neondot::supported()) tables.push_back(&neondot::kKernels);
  if (neon::supported()) tables.push_back(&neon::kKernels);
  tables.push_back(&portable::kKernels);
  return tables;
}

const Kernels& chooseKernels(const std::string& name) {
  const auto available = availableKernels();
  const char* fromEnvironment = std::getenv("LENET5_ISA");
  const std::string wanted = name.empty() && fromEnvironment != nullptr ? fromEnvironment : name;
  std::string names;
  for (const Kernels* k : available) {
    if (wanted == k->name) return *k;
    names += (names.empty() ? "" : ", ") + std::string(k->name);
  }
  // LENET5_ISA names the float engine's tables too: one the int8 pass lacks means the best.
  if (name.empty()) return *available.front();
  throw NativeError("ERR_LENET5_INVALID_ARGUMENT",
                    "This CPU has no int8 kernels named \"" + name + "\". It runs: " + names + ".");
}

Network::Network(const NetworkArrays& arrays, const std::string& kernels)
    : packed_(pack(arrays)), kernels_(&chooseKernels(kernels)) {}

void Network::logits(const Input& input, int64_t count, int threads, float* logits) {
  std::unique_lock<std::mutex> team(mutex_, std::defer_lock);
  if (count <= kInlineImages || threads <= 1 || !team.try_lock()) {
    // The calling thread alone, on its own scratch memory: a caller never waits for a batch that
    // holds the team (the JS thread runs up to 32 images a thread inline, native/js/quantized.cc).
    thread_local std::unique_ptr<Workspace> own;
    if (!own) own = std::make_unique<Workspace>();
    if (!kernels_->forwardImages(packed_, input, 0, count, logits, *own))
      requireFinitePixels(input.normalized, count * kPixels);
    return;
  }
  const int64_t classes = packed_.classes;
  while (static_cast<int>(workspaces_.size()) < threads) workspaces_.push_back(std::make_unique<Workspace>());
  if (!pool_ || pool_->size() != threads) {
    pool_.reset();  // its threads end before new ones start
    pool_ = std::make_unique<WorkerPool>(threads);
  }
  // Each image's logits do not depend on its chunk, so a small batch is split evenly.
  const int64_t chunkImages = std::min(kChunkImages, (count + threads - 1) / threads);
  const int64_t chunks = (count + chunkImages - 1) / chunkImages;
  std::atomic<int64_t> next{0};
  std::atomic<bool> finite{true};
  pool_->run([&](int t) {
    for (int64_t chunk = next.fetch_add(1); chunk < chunks; chunk = next.fetch_add(1)) {
      const int64_t begin = chunk * chunkImages;
      if (!kernels_->forwardImages(packed_, input, begin, std::min(count, begin + chunkImages),
                                   logits + begin * classes, *workspaces_[t]))
        finite = false;
    }
  });
  // The error names the first such value; the scan runs only when there is one.
  if (!finite) requireFinitePixels(input.normalized, count * kPixels);
}

}  // namespace lenet5::engine::int8
