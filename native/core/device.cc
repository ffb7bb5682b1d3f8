#include "device.h"

#include "errors.h"

namespace lenet5 {

bool cudaAvailable() { return torch::cuda::is_available(); }

int cudaDeviceCount() { return cudaAvailable() ? static_cast<int>(torch::cuda::device_count()) : 0; }

torch::Device resolveDevice(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name == "auto") return cudaAvailable() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  // name is "cuda" or "cuda:N" (validated in TypeScript).
  int index = name == "cuda" ? 0 : std::stoi(name.substr(5));
  if (!cudaAvailable()) {
    throw NativeError("ERR_LENET5_CUDA_UNAVAILABLE",
                      "Device '" + name + "' was requested, but CUDA is not available: the LibTorch this addon was built "
                      "against has no CUDA support, or no NVIDIA GPU/driver is visible. Use device 'cpu' or 'auto', or "
                      "rebuild against a CUDA LibTorch (see README, 'Installing').");
  }
  int count = cudaDeviceCount();
  if (index >= count) {
    throw NativeError("ERR_LENET5_CUDA_DEVICE",
                      "Device '" + name + "' does not exist: this machine has " + std::to_string(count) +
                          " CUDA device(s), numbered 0 to " + std::to_string(count - 1) + ". Pick one of those.");
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

}  // namespace lenet5
