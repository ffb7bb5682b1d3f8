#include "errors.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>

namespace lenet5 {

ErrorInfo describeException(const std::exception& error) {
  if (auto* native = dynamic_cast<const NativeError*>(&error)) return {native->code(), native->what()};
  if (auto* torchError = dynamic_cast<const c10::Error*>(&error)) {
    // what_without_backtrace keeps LibTorch's message and drops its C++ stack dump.
    std::string message = torchError->what_without_backtrace();
    // CUDA says "out of memory"; LibTorch's CPU allocator "not enough memory" (2.x) or "can't allocate memory" (1.13).
    const bool outOfMemory = dynamic_cast<const c10::OutOfMemoryError*>(&error) != nullptr ||
                             message.find("out of memory") != std::string::npos ||
                             message.find("not enough memory") != std::string::npos ||
                             message.find("can't allocate memory") != std::string::npos;
    if (outOfMemory) {
      return {"ERR_LENET5_OUT_OF_MEMORY",
              "The device ran out of memory: " + message +
                  ". Use a smaller batchSize, or free memory held by other models (dispose())."};
    }
    return {"ERR_LENET5_TORCH", "LibTorch error: " + message};
  }
  if (dynamic_cast<const std::bad_alloc*>(&error) != nullptr) {
    return {"ERR_LENET5_OUT_OF_MEMORY", "Out of host memory. Use a smaller dataset or batchSize."};
  }
  return {"ERR_LENET5_NATIVE", error.what()};
}

void requireFinitePixels(const float* values, int64_t count) {
  const float* bad = std::find_if(values, values + count, [](float v) { return !std::isfinite(v); });
  if (bad == values + count) return;
  const std::string value = std::isnan(*bad) ? "NaN" : *bad > 0 ? "Infinity" : "-Infinity";
  throw NativeError("ERR_LENET5_INVALID_ARGUMENT", "Expected finite pixel values but pixels[" +
                                                       std::to_string(bad - values) + "] is " + value +
                                                       ". Replace NaN/Infinity before predicting.");
}

}  // namespace lenet5
