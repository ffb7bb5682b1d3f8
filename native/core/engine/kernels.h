// The fused LeNet-5 CPU engine's kernels, behind one table per instruction set. The same
// sources (the .inl files) are compiled three times -- AVX-512, AVX2+FMA and a baseline -- by the
// isa_*.cc files, and the best table for the running CPU is chosen once, at run time.
//
// Data layout (PyTorch's, so the engine works directly on the module's flat parameter buffer):
//   parameters, flat, in state_dict order: conv1.weight [6,1,5,5], conv1.bias [6], conv2.weight
//   [16,6,5,5], conv2.bias [16], fc1.weight [120,400], fc1.bias [120], fc2.weight [84,120],
//   fc2.bias [84], fc3.weight [C,84], fc3.bias [C]; images uint8 (or normalised float) 28x28.
// Activations are per image, channel-major, as PyTorch's NCHW (fc1's input is the pooled conv2
// output flattened as view(-1, 400) does).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace lenet5::engine {

constexpr int kSide = 28;
constexpr int kPixels = kSide * kSide;
// The engine sizes its buffers with int arithmetic; models with more outputs use LibTorch's operators.
constexpr int kMaxClasses = 1 << 16;

// Offsets of each parameter inside the flat buffer (numbers of floats), for `classes` outputs.
struct ParameterLayout {
  explicit ParameterLayout(int classes) : classes(classes) {
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
  int classes;
  int64_t conv1Weight, conv1Bias, conv2Weight, conv2Bias, fc1Weight, fc1Bias, fc2Weight, fc2Bias, fc3Weight, fc3Bias;
  int64_t total;
};

// Where image i comes from: raw uint8 pixels normalised on the fly as pixel * scale + shift (the
// seed's ToTensor + Normalize folded into one multiply-add), or already-normalised floats.
// `index` (optional) maps i to a row of the pixel array, as a shuffled batch does.
struct ImageSource {
  const uint8_t* pixels = nullptr;
  const float* normalized = nullptr;
  const int64_t* index = nullptr;
  float scale = 1, shift = 0;
  int64_t row(int64_t i) const { return index != nullptr ? index[i] : i; }
};

// Adam's or SGD's update for one step, with PyTorch's formulas (torch/optim/adam.py, sgd.py,
// single-tensor path) and its float32 arithmetic order. The scalars are prepared by the caller.
struct UpdatePlan {
  enum class Kind { Adam, Sgd, GradientsOnly } kind = Kind::Adam;  // GradientsOnly: sum, no update
  float* params = nullptr;
  float* lastGood = nullptr;                      // receives the weights before the update
  float* gradientOut = nullptr;                   // receives the summed gradient (the model's .grad)
  const float* const* threadGradients = nullptr;  // summed in this order: deterministic
  int threadCount = 0;
  float weightDecay = 0;
  // Adam
  float* expAvg = nullptr;
  float* expAvgSq = nullptr;
  float* maxExpAvgSq = nullptr;  // amsgrad only
  float beta2 = 0.999f, oneMinusBeta1 = 0.1f, oneMinusBeta2 = 0.001f;
  float stepSize = 0, biasCorrection2Sqrt = 1, eps = 1e-8f;
  // SGD
  float* momentumBuffer = nullptr;  // null without momentum
  bool momentumFirstStep = false;   // the buffer starts as a copy of the first direction
  float lr = 0, momentum = 0, oneMinusDampening = 1;
  bool nesterov = false;
};

struct Kernels {
  const char* name;  // "avx512", "avx2", "baseline" ("neon" on arm64)
  // Scratch memory one thread needs (bytes, 64-byte aligned start).
  size_t (*workspaceBytes)(int classes);
  // Forward pass, cross-entropy (mean over a batch of 1/lossScale images) and backward pass for
  // images [begin, end) of `source`; gradients are added into `gradients` (flat, PyTorch order).
  // Returns the summed (unscaled) loss of those images.
  double (*trainImages)(const float* params, float* gradients, int classes, const ImageSource& source,
                        const int64_t* labels, int64_t begin, int64_t end, float lossScale, void* workspace);
  // Forward pass: logits of images [begin, end) into logits[(i - begin) * classes].
  void (*forwardImages)(const float* params, int classes, const ImageSource& source, int64_t begin, int64_t end,
                        float* logits, void* workspace);
  // Forward pass and cross-entropy: returns the summed loss of images [begin, end) and writes
  // each one's predicted class (first maximum) to predicted[i].
  double (*evaluateImages)(const float* params, int classes, const ImageSource& source, const int64_t* labels,
                           int64_t begin, int64_t end, int64_t* predicted, void* workspace);
  // Sums the threads' gradients and applies the optimizer to parameters [begin, end).
  void (*update)(const UpdatePlan& plan, int64_t begin, int64_t end);
};

// The fastest table this CPU runs; LENET5_ISA=avx512|avx2|baseline|neon picks one (for tests and
// benchmarks; an unsupported choice falls back to the best available).
const Kernels& selectKernels();
// Every table this CPU can run, best first (tests compare them).
int availableKernels(const Kernels** out, int capacity);

namespace avx512 {
extern const Kernels kKernels;
bool supported();
}  // namespace avx512
namespace avx2 {
extern const Kernels kKernels;
bool supported();
}  // namespace avx2
namespace baseline {
extern const Kernels kKernels;
}

}  // namespace lenet5::engine
