// JS wrapper of engine::int8::Network: the native half of QuantizedLeNet5 (src/quantize/model.ts).
// The network is immutable once built; a call that outlives the wrapper (garbage-collected
// mid-predict) keeps it alive through its shared pointer.
#pragma once

#include <memory>

#include <napi.h>

#include "../core/engine/int8.h"

namespace lenet5::js {

class QuantizedModelWrap : public Napi::ObjectWrap<QuantizedModelWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  // (network: { numClasses, activationScales: Float32Array(5), weights: Int8Array[5],
  //   weightScales: Float32Array[5], biases: Int32Array[5] }, kernels: string ('' for the best))
  explicit QuantizedModelWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value kernels(const Napi::CallbackInfo& info);
  Napi::Value predict(const Napi::CallbackInfo& info);

  std::shared_ptr<engine::int8::Network> network_;
};

// { selected: the int8 kernel table a model gets by default, available: every one this CPU runs, best first }.
Napi::Value int8Kernels(const Napi::CallbackInfo& info);

}  // namespace lenet5::js
