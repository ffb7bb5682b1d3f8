#include "optimizer.h"

#include <ATen/ops/from_blob.h>

#include "../core/optimizer.h"
#include "errors.h"

namespace lenet5::js {
namespace {

// The options object was built and validated by src/optim.ts.
OptimizerOptions readOptions(const Napi::Object& o) {
  OptimizerOptions options;
  options.kind = o.Get("kind").As<Napi::String>().Utf8Value() == "sgd" ? OptimizerOptions::Kind::Sgd
                                                                       : OptimizerOptions::Kind::Adam;
  options.lr = o.Get("lr").As<Napi::Number>().DoubleValue();
  options.weightDecay = o.Get("weightDecay").As<Napi::Number>().DoubleValue();
  if (options.kind == OptimizerOptions::Kind::Adam) {
    options.beta1 = o.Get("beta1").As<Napi::Number>().DoubleValue();
    options.beta2 = o.Get("beta2").As<Napi::Number>().DoubleValue();
    options.eps = o.Get("eps").As<Napi::Number>().DoubleValue();
    options.amsgrad = o.Get("amsgrad").As<Napi::Boolean>().Value();
  } else {
    options.momentum = o.Get("momentum").As<Napi::Number>().DoubleValue();
    options.dampening = o.Get("dampening").As<Napi::Number>().DoubleValue();
    options.nesterov = o.Get("nesterov").As<Napi::Boolean>().Value();
  }
  return options;
}

}  // namespace

Napi::Function OptimizerWrap::define(Napi::Env env) {
  return DefineClass(
      env, "NativeOptimizer",
      {InstanceMethod("setOptions", &OptimizerWrap::setOptions), InstanceMethod("steps", &OptimizerWrap::steps)});
}

// new NativeOptimizer(options, state | null); state = { steps, buffers: { exp_avg: Float32Array, ... } },
// flat buffers over all parameters in order (a checkpoint's, flattened by src/optim.ts).
OptimizerWrap::OptimizerWrap(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<OptimizerWrap>(info),
      optimizer_(std::make_shared<Optimizer>(readOptions(info[0].As<Napi::Object>()))) {
  if (info[1].IsObject()) guarded(info.Env(), [&] { loadState(info[1].As<Napi::Object>()); });
}

Napi::Value OptimizerWrap::setOptions(const Napi::CallbackInfo& info) {
  optimizer_->setOptions(readOptions(info[0].As<Napi::Object>()));
  return info.Env().Undefined();
}

Napi::Value OptimizerWrap::steps(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(optimizer_->steps()));
}

void OptimizerWrap::loadState(const Napi::Object& state) {
  const int64_t steps = state.Get("steps").As<Napi::Number>().Int64Value();
  auto object = state.Get("buffers").As<Napi::Object>();
  std::map<std::string, at::Tensor> buffers;
  auto names = object.GetPropertyNames();
  for (uint32_t i = 0; i < names.Length(); ++i) {
    auto name = names.Get(i).As<Napi::String>().Utf8Value();
    auto values = object.Get(name).As<Napi::Float32Array>();
    buffers[name] = at::from_blob(values.Data(), {static_cast<int64_t>(values.ElementLength())}, at::kFloat).clone();
  }
  optimizer_->loadState(steps, std::move(buffers));
}

}  // namespace lenet5::js
