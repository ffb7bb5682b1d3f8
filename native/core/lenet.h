// LeNet-5 exactly as the seed article's Python class, layer for layer, with the same parameter
// names (conv1.weight, conv1.bias, ..., fc3.bias) so state_dict keys match PyTorch's.
#pragma once

#include <torch/torch.h>

namespace lenet5 {

constexpr int64_t kImageSide = 28;

struct LeNet5Impl : torch::nn::Module {
  explicit LeNet5Impl(int64_t numClasses);
  torch::Tensor forward(torch::Tensor x);

  int64_t numClasses;
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, fc3{nullptr};

 private:
  torch::Tensor convolve(torch::nn::Conv2d& layer, const torch::Tensor& x, int64_t padding);
};
TORCH_MODULE(LeNet5);

}  // namespace lenet5
