// Errors the native core raises on purpose. Each carries a stable code that the JS layer
// exposes as `error.code`; any other exception becomes ERR_LENET5_TORCH.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace lenet5 {

class NativeError : public std::runtime_error {
 public:
  NativeError(std::string code, const std::string& message) : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

// Classifies any exception thrown by LibTorch or the core into (code, message).
struct ErrorInfo {
  std::string code;
  std::string message;
};
ErrorInfo describeException(const std::exception& error);

// Throws ERR_LENET5_INVALID_ARGUMENT naming the first value of normalised input that is NaN or
// infinite. Checked natively rather than in TypeScript: a JavaScript scan of a large batch costs
// more than its forward pass.
void requireFinitePixels(const float* values, int64_t count);

}  // namespace lenet5
