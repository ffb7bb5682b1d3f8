#include "errors.h"

namespace lenet5::js {

Napi::Error toJsError(Napi::Env env, const ErrorInfo& info) {
  auto error = Napi::Error::New(env, info.message);
  error.Set("code", Napi::String::New(env, info.code));
  return error;
}

}  // namespace lenet5::js
