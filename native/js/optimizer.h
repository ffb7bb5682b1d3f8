// JS wrapper of core::Optimizer: new NativeOptimizer({ kind: 'adam' | 'sgd', lr, ... }, state | null).
#pragma once

#include <memory>

#include <napi.h>

namespace lenet5 {
class Optimizer;
}  // namespace lenet5

namespace lenet5::js {

class OptimizerWrap : public Napi::ObjectWrap<OptimizerWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  explicit OptimizerWrap(const Napi::CallbackInfo& info);
  const std::shared_ptr<Optimizer>& optimizer() const { return optimizer_; }

 private:
  Napi::Value setOptions(const Napi::CallbackInfo& info);
  Napi::Value steps(const Napi::CallbackInfo& info);
  void loadState(const Napi::Object& state);

  std::shared_ptr<Optimizer> optimizer_;
};

}  // namespace lenet5::js
