#include "device.h"

#include <dlfcn.h>

#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/cuda.h>
#include <cstdlib>

#include "errors.h"

namespace lenet5 {
namespace {
std::string supportStatus = "not built";
}  // namespace

// libtorch_cuda and the CUDA libraries it pulls in add about 250 MB of resident memory at load,
// so the addon links only libtorch_cpu and loads the CUDA part here, where a GPU can be used:
// when the NVIDIA driver library opens (LENET5_CUDA=1 forces the load, LENET5_CUDA=0 prevents
// it). RTLD_GLOBAL and loading before the first CUDA query are what let LibTorch find it; the
// library is found through the addon's rpath.
void loadCudaSupport() {
#if defined(LENET5_TORCH_HAS_CUDA)
  const char* setting = std::getenv("LENET5_CUDA");
  const std::string choice = setting == nullptr ? "" : setting;
  if (choice == "0") {
    supportStatus = "disabled";
    return;
  }
  if (choice != "1" && dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL) == nullptr) {
    supportStatus = "no driver";
    return;
  }
  if (dlopen("libtorch_cuda.so", RTLD_NOW | RTLD_GLOBAL) == nullptr) {
    supportStatus = std::string("failed: ") + dlerror();
    return;
  }
  supportStatus = "loaded";
#endif
}

std::string cudaSupport() { return supportStatus; }

std::string cudaRuntimeVersion() {
  if (supportStatus != "loaded") return "";
  const long version = at::detail::getCUDAHooks().versionCUDART();  // e.g. 13000
  return std::to_string(version / 1000) + "." + std::to_string(version % 1000 / 10);
}

bool cudaAvailable() { return torch::cuda::is_available(); }

int cudaDeviceCount() { return cudaAvailable() ? static_cast<int>(torch::cuda::device_count()) : 0; }

void seedCuda(uint64_t seed) {
  if (cudaAvailable()) torch::cuda::manual_seed_all(seed);
}

c10::Device resolveDevice(const std::string& name) {
  if (name == "cpu") return c10::kCPU;
  if (name == "auto") return cudaAvailable() ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  // name is "cuda" or "cuda:N" (validated in TypeScript).
  int index = name == "cuda" ? 0 : std::stoi(name.substr(5));
  if (!cudaAvailable()) {
    throw NativeError(
        "ERR_LENET5_CUDA_UNAVAILABLE",
        "Device '" + name +
            "' was requested, but CUDA is not available: the LibTorch this addon was built "
            "against has no CUDA support, or no NVIDIA GPU/driver is visible. Use device 'cpu' or 'auto', or "
            "rebuild against a CUDA LibTorch (see README, 'Install').");
  }
  int count = cudaDeviceCount();
  if (index >= count) {
    throw NativeError("ERR_LENET5_CUDA_DEVICE", "Device '" + name + "' does not exist: this machine has " +
                                                    std::to_string(count) + " CUDA device(s), numbered 0 to " +
                                                    std::to_string(count - 1) + ". Pick one of those.");
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

}  // namespace lenet5
