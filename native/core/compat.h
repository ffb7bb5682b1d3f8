// The one place where LibTorch 1.13 (Debian, oldest supported) and 2.x differ for this addon.
#pragma once

#include <torch/version.h>

#define LENET5_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace lenet5::compat {

// Version string of the LibTorch the addon was compiled against.
inline const char* torchVersion() { return TORCH_VERSION; }

}  // namespace lenet5::compat
