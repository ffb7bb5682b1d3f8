// Turns the device names the JS layer has already checked for syntax ('cpu', 'cuda', 'cuda:N',
// 'auto') into a c10::Device, refusing what this LibTorch or machine cannot provide.
#pragma once

#include <cstdint>
#include <string>

#include <c10/core/Device.h>

namespace lenet5 {

// Loads LibTorch's CUDA kernels (libtorch_cuda) where an NVIDIA driver is installed. Must run
// before anything asks LibTorch about CUDA: it decides once, at the first question.
void loadCudaSupport();
// "loaded", "not built" (CPU-only LibTorch), "no driver", "disabled" (LENET5_CUDA=0) or "failed: <why>".
std::string cudaSupport();
// The CUDA runtime version LibTorch's CUDA kernels were built with ("13.0"), or "" when not loaded.
std::string cudaRuntimeVersion();
bool cudaAvailable();
int cudaDeviceCount();
// Seeds the random generators of every GPU (nothing without CUDA).
void seedCuda(uint64_t seed);
c10::Device resolveDevice(const std::string& name);

}  // namespace lenet5
