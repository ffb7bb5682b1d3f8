// Turns the device names the JS layer has already checked for syntax ('cpu', 'cuda', 'cuda:N',
// 'auto') into a torch::Device, refusing what this LibTorch or machine cannot provide.
#pragma once

#include <string>

#include <torch/torch.h>

namespace lenet5 {

bool cudaAvailable();
int cudaDeviceCount();
torch::Device resolveDevice(const std::string& name);

}  // namespace lenet5
