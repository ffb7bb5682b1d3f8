#include "lenet.h"

namespace lenet5 {

namespace F = torch::nn::functional;

constexpr int64_t kConv1Padding = 2;  // conv2 has none

LeNet5Impl::LeNet5Impl(int64_t numClasses) : numClasses(numClasses) {
  conv1 =
      register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 6, 5).stride(1).padding(kConv1Padding)));
  conv2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(6, 16, 5).stride(1)));
  fc1 = register_module("fc1", torch::nn::Linear(16 * 5 * 5, 120));
  fc2 = register_module("fc2", torch::nn::Linear(120, 84));
  fc3 = register_module("fc3", torch::nn::Linear(84, numClasses));
}

// A few images at a time (single-image predict, the HTTP server) run faster through LibTorch's
// im2col convolution than through oneDNN, whose per-call setup dominates at that size: 0.15 vs
// 0.33 ms for LeNet-5's forward pass on one image; from about 16 images on oneDNN is faster.
// Both compute the same convolution (outputs agree to ~1e-7).
constexpr int64_t kIm2colMaxBatch = 4;

// `padding` is the layer's own, passed in: its options hold it as a variant whose type differs
// across LibTorch versions.
torch::Tensor LeNet5Impl::convolve(torch::nn::Conv2d& layer, const torch::Tensor& x, int64_t padding) {
  if (is_training() || !x.is_cpu() || x.size(0) > kIm2colMaxBatch) return layer->forward(x);
  return at::thnn_conv2d(x, layer->weight, layer->options.kernel_size(), layer->bias, layer->options.stride(),
                         {padding, padding});
}

torch::Tensor LeNet5Impl::forward(torch::Tensor x) {
  x = F::max_pool2d(torch::relu(convolve(conv1, x, kConv1Padding)), F::MaxPool2dFuncOptions(2).stride(2));
  x = F::max_pool2d(torch::relu(convolve(conv2, x, 0)), F::MaxPool2dFuncOptions(2).stride(2));
  x = x.view({-1, 16 * 5 * 5});
  x = torch::relu(fc1->forward(x));
  x = torch::relu(fc2->forward(x));
  return fc3->forward(x);
}

}  // namespace lenet5
