#include "errors.h"

namespace lenet5::js {

Napi::Error toJsError(Napi::Env env, const ErrorInfo& info) {
  auto error = Napi::Error::New(env, info.message);
  error.Set("code", Napi::String::New(env, info.code));
  return error;
}

void requireElementLength(const Napi::TypedArray& array, size_t expected, const char* name) {
  if (array.ElementLength() == expected) return;
  throw NativeError("ERR_LENET5_SHAPE", std::string("Expected ") + name + " to hold " + std::to_string(expected) +
                                            " values but its buffer holds " + std::to_string(array.ElementLength()) +
                                            ". Its length property does not match its data (a redefined length or "
                                            "a subclass?); pass a plain typed array.");
}

}  // namespace lenet5::js
