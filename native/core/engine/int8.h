// LeNet-5's int8 forward pass (the scheme at the top of src/quantize/int8.ts), natively: the
// same logits as the TypeScript reference int8Logits, bit for bit. Integer sums are exact in
// any order; the float steps (bias, dequantize, ReLU, quantize) are the reference's, in its
// order and precision. Max pooling runs on the integer sums, before they are dequantized: every
// step from a sum to its int8 value is non-decreasing, so the maximum commutes with them, and
// only a quarter of the values are requantized.
//
// Kernel layout (every table shares it; pack() in int8.cc builds it once): output channels in
// groups of 8, one 32-bit lane each; a lane sums 4 consecutive u8 x s8 products ("quads", AVX2
// vpmaddubsw + vpmaddwd, AVX-512 VNNI vpdpbusd, NEON smull + addp + sadalp, arm64's sdot) or, for
// conv1 whose input is signed, 2 int16 x int16 products ("pairs", vpmaddwd / vpdpwssd, NEON smlal).
// Activations are stored channel-last, so an output pixel's inputs are runs of consecutive bytes
// broadcast 4 at a time:
//   conv1 (the exception: lanes are output pixels, as conv1() in int8_kernels.inl says): the image
//     as int16, zero-padded to 32 rows of kImageStride; per channel 5 rows x 3 weight pairs
//     (taps kx 0-1, 2-3, 4 and a zero weight); its epilogue holds each channel's constants 8 times.
//     arm64's sdot table reads the same image as int8 quads, its weights from conv1Quads.
//   conv2: input 14x14x6 u8 (channel-last); per output pixel 5 rows of 30 consecutive bytes, read
//     as 8 quads (the 2 bytes past the run meet zero weights); 16 channels in 2 groups.
//   fc1/fc2/fc3: quads along the input features (fc1's columns permuted to the channel-last
//     order of conv2's pooled output), outputs in groups of 8.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "worker_pool.h"

namespace lenet5::engine::int8 {

// The quantized network as the file and QuantizedNetwork hold it (PyTorch's layouts): weights
// row-major [out, in(, 5, 5)], per-channel weight scales, int32 biases, and the activation
// scales of the input and the four ReLUs. Pointers are borrowed for the constructor's duration.
struct NetworkArrays {
  int classes = 0;
  float activationScales[5] = {};
  const int8_t* weights[5] = {};
  const float* weightScales[5] = {};
  const int32_t* biases[5] = {};
};

// One layer's requantization constants, per output lane (padding lanes: bias and scale 0).
// The reference computes (sum + bias) x scale in double, then rounds to float32. When every
// |sum + bias| is below 2^24 (true unless a bias is huge), float32 gives the same bits: the sum
// converts exactly and the exact product of two float32 values, rounded once, is what double
// rounds to float32. Otherwise the kernels take the double path.
struct Epilogue {
  bool exactInFloat = true;
  std::vector<int32_t> bias;
  std::vector<float> scale;        // inputScale x weightScale[c], float32
  std::vector<double> biasDouble;  // the same, widened, for the double path
  std::vector<double> scaleDouble;
  float nextScale = 1;  // the activation scale the output is quantized with (not fc3)
};

struct PackedNetwork {
  int classes = 0;
  int classGroups = 0;  // fc3's outputs in groups of 8
  float inputScale = 1;
  std::vector<int16_t> conv1;  // [6 channels][15 pairs][2]
  std::vector<int8_t> conv2;   // [5 rows][8 quads][2 groups][8 lanes][4]
  std::vector<int8_t> fc1;     // [100 quads][15 groups][8][4]
  std::vector<int8_t> fc2;     // [30 quads][11 groups][8][4]
  std::vector<int8_t> fc3;     // [21 quads][classGroups][8][4]
  Epilogue epilogues[5];
  std::vector<int8_t> conv1Quads;  // [5 rows][6 channels][8]: taps 0-4 and 3 zeros (arm64's sdot table)
};

// Where image i comes from: raw pixels through a 256-entry table of their quantized values (what
// the reference's normalise-then-quantize gives each pixel value), or normalised floats.
struct Input {
  const uint8_t* pixels = nullptr;
  const int8_t* pixelLevels = nullptr;  // 256 entries, with `pixels`
  const float* normalized = nullptr;
};

constexpr int kImageStride = 36;    // a padded conv1 input row: 2 + 28 + 2, and the last pair's reach
constexpr int kBlockImages = 64;    // images whose fully connected layers run together
constexpr int kHidden2Stride = 88;  // fc2's 84 outputs, padded to whole groups of 8

// One thread's scratch memory. Bytes that the kernels read but never write (the image's zero
// border, the slack after pool1 that the last pixel's quads reach into) are zero from the start.
struct Workspace {
  alignas(64) int16_t image[32 * kImageStride];
  alignas(64) uint8_t pool1[14 * 14 * 6 + 64];
  alignas(64) uint8_t features[kBlockImages * 400];
  alignas(64) uint8_t hidden1[kBlockImages * 120];
  alignas(64) uint8_t hidden2[kBlockImages * kHidden2Stride];
};

struct Kernels {
  const char* name;  // "avx512vnni", "avx2", "neondot", "neon" or "baseline" (plain C++, for any CPU)
  // Logits of images [begin, end) into logits[(i - begin) * classes]; false when a normalised
  // input value was NaN or infinite (the logits are then meaningless).
  bool (*forwardImages)(const PackedNetwork& network, const Input& input, int64_t begin, int64_t end, float* logits,
                        Workspace& workspace);
};

// Every table this CPU runs, best first.
std::vector<const Kernels*> availableKernels();
// The table called `name`, or for an empty name the best (LENET5_ISA=avx2|neon|baseline, ... picks one,
// as it does for the float engine). Throws ERR_LENET5_INVALID_ARGUMENT for a name this CPU does
// not run.
const Kernels& chooseKernels(const std::string& name);

class Network {
 public:
  // `kernels`: as chooseKernels() takes it.
  Network(const NetworkArrays& arrays, const std::string& kernels);

  const char* kernelsName() const { return kernels_->name; }
  int classes() const { return packed_.classes; }
  // Logits of `count` images, count x classes. Throws ERR_LENET5_INVALID_ARGUMENT naming the first
  // normalised value that is NaN or infinite (checked as the pass reads the input: a separate scan
  // cost a few percent of the pass). Batches run on a team of `threads` threads kept
  // between calls (as the float predict does), one batch at a time; a few images, or a batch that
  // finds the team busy, run on the calling thread alone at once.
  void logits(const Input& input, int64_t count, int threads, float* logits);

 private:
  PackedNetwork packed_;
  const Kernels* kernels_;
  std::mutex mutex_;
  std::unique_ptr<WorkerPool> pool_;
  std::vector<std::unique_ptr<Workspace>> workspaces_;  // the team's, one a thread, made before it runs
};

namespace avx512vnni {
extern const Kernels kKernels;
bool supported();
}  // namespace avx512vnni
namespace avx2 {
extern const Kernels kKernels;
bool supported();
}  // namespace avx2
namespace neondot {
extern const Kernels kKernels;
bool supported();
}  // namespace neondot
namespace neon {
extern const Kernels kKernels;
bool supported();
}  // namespace neon
namespace portable {
extern const Kernels kKernels;
}

}  // namespace lenet5::engine::int8
