#include "lenet.h"

#include <cmath>

#include <ATen/core/grad_mode.h>
#include <ATen/ops/conv2d.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/linear.h>
#include <ATen/ops/max_pool2d.h>
#include <ATen/ops/relu.h>
#include <ATen/ops/thnn_conv2d.h>

namespace lenet5 {
namespace {

constexpr int64_t kConv1Padding = 2;  // conv2 has none
constexpr int64_t kKernel = 5;

// A few images at a time (single-image predict, the HTTP server) run faster through LibTorch's
// im2col convolution than through oneDNN, whose per-call setup dominates at that size: 0.15 vs
// 0.33 ms for LeNet-5's forward pass on one image; from about 16 images on oneDNN is faster.
// Both compute the same convolution (outputs agree to ~1e-7).
constexpr int64_t kIm2colMaxBatch = 4;

// The parameters' indices in LeNet5::namedParameters(): weight, then bias, for each layer.
enum Layer : size_t { kConv1 = 0, kConv2 = 2, kFc1 = 4, kFc2 = 6, kFc3 = 8 };

// reset_parameters() of torch.nn's Conv2d and Linear (the same in torch::nn): kaiming_uniform_
// with a = sqrt(5) for the weight, U(-1/sqrt(fanIn), 1/sqrt(fanIn)) for the bias, drawn in this
// order, so a seeded generator gives the weights PyTorch would.
void resetParameters(at::Tensor& weight, at::Tensor& bias) {
  at::NoGradGuard noGrad;
  const int64_t fanIn = weight.numel() / weight.size(0);
  const double gain = std::sqrt(2.0 / (1 + std::pow(std::sqrt(5.0), 2)));  // calculate_gain("leaky_relu", sqrt(5))
  const double weightBound = std::sqrt(3.0) * (gain / std::sqrt(fanIn));
  weight.uniform_(-weightBound, weightBound);
  const double biasBound = 1 / std::sqrt(fanIn);
  bias.uniform_(-biasBound, biasBound);
}

}  // namespace

LeNet5::LeNet5(int64_t numClasses) : numClasses_(numClasses) {
  const std::pair<const char*, std::vector<int64_t>> layers[] = {{"conv1", {6, 1, kKernel, kKernel}},
                                                                 {"conv2", {16, 6, kKernel, kKernel}},
                                                                 {"fc1", {120, 16 * 5 * 5}},
                                                                 {"fc2", {84, 120}},
                                                                 {"fc3", {numClasses, 84}}};
  for (const auto& [name, shape] : layers) {
    auto weight = at::empty(shape);
    auto bias = at::empty({shape[0]});
    resetParameters(weight, bias);
    parameters_.emplace_back(std::string(name) + ".weight", weight.requires_grad_());
    parameters_.emplace_back(std::string(name) + ".bias", bias.requires_grad_());
  }
}

void LeNet5::to(const c10::Device& device) {
  at::NoGradGuard noGrad;
  for (auto& [name, tensor] : parameters_) tensor.set_data(tensor.to(device));
}

at::Tensor LeNet5::convolve(size_t layer, const at::Tensor& x, int64_t padding) const {
  const auto& weight = parameter(layer);
  const auto& bias = parameter(layer + 1);
  const int64_t stride[] = {1, 1};
  const int64_t paddings[] = {padding, padding};
  if (training_ || !x.is_cpu() || x.size(0) > kIm2colMaxBatch) return at::conv2d(x, weight, bias, stride, paddings);
  return at::thnn_conv2d(x, weight, {kKernel, kKernel}, bias, stride, paddings);
}

at::Tensor LeNet5::forward(const at::Tensor& input) {
  const int64_t pool[] = {2, 2};  // kernel and stride
  auto x = at::max_pool2d(at::relu(convolve(kConv1, input, kConv1Padding)), pool, pool);
  x = at::max_pool2d(at::relu(convolve(kConv2, x, 0)), pool, pool);
  x = x.view({-1, 16 * 5 * 5});
  x = at::relu(at::linear(x, parameter(kFc1), parameter(kFc1 + 1)));
  x = at::relu(at::linear(x, parameter(kFc2), parameter(kFc2 + 1)));
  return at::linear(x, parameter(kFc3), parameter(kFc3 + 1));
}

}  // namespace lenet5
