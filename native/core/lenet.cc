#include "lenet.h"

namespace lenet5 {

namespace F = torch::nn::functional;

LeNet5Impl::LeNet5Impl(int64_t numClasses) : numClasses(numClasses) {
  conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 6, 5).stride(1).padding(2)));
  conv2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(6, 16, 5).stride(1)));
  fc1 = register_module("fc1", torch::nn::Linear(16 * 5 * 5, 120));
  fc2 = register_module("fc2", torch::nn::Linear(120, 84));
  fc3 = register_module("fc3", torch::nn::Linear(84, numClasses));
}

torch::Tensor LeNet5Impl::forward(torch::Tensor x) {
  x = F::max_pool2d(torch::relu(conv1->forward(x)), F::MaxPool2dFuncOptions(2).stride(2));
  x = F::max_pool2d(torch::relu(conv2->forward(x)), F::MaxPool2dFuncOptions(2).stride(2));
  x = x.view({-1, 16 * 5 * 5});
  x = torch::relu(fc1->forward(x));
  x = torch::relu(fc2->forward(x));
  return fc3->forward(x);
}

}  // namespace lenet5
