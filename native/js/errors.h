// Turns native failures into JS Errors carrying a stable `code`.
#pragma once

#include <napi.h>

#include "../core/errors.h"

namespace lenet5::js {

Napi::Error toJsError(Napi::Env env, const ErrorInfo& info);

// Typed arrays are sized by N-API's element length (their buffer view), never by a `length`
// property JavaScript can redefine: throws ERR_LENET5_SHAPE (a NativeError) unless `array` holds
// exactly `expected` elements, before any of its data is read.
void requireElementLength(const Napi::TypedArray& array, size_t expected, const char* name);

// Runs `body`, rethrowing any C++ exception as a coded JS exception.
template <typename Body>
auto guarded(Napi::Env env, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) { throw; } catch (const std::exception& error) {
    throw toJsError(env, describeException(error));
  }
}

}  // namespace lenet5::js
