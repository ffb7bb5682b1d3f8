// JS wrapper of core::Model: the LeNet5 object the TypeScript LeNet5 class drives. Long
// operations run as Jobs that share ownership of the model, so disposing it or letting it be
// garbage-collected mid-call never frees what a running loop still uses.
#pragma once

#include <cstdint>
#include <memory>

#include <napi.h>

namespace lenet5::js {

// The model a ModelWrap shares with its running jobs (model.cc).
struct SharedModel;
// Models not yet freed, in this process (liveModels() in JS: leak checks and tests).
int64_t liveModels();

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  explicit ModelWrap(const Napi::CallbackInfo& info);

 private:
  std::shared_ptr<SharedModel> acquire(Napi::Env env, const char* operation);
  // The model, or ERR_LENET5_DISPOSED. Enough for reading what no running job changes (device, slots).
  std::shared_ptr<SharedModel> live(Napi::Env env, const char* operation);
  // The model when no job runs on it; otherwise ERR_LENET5_BUSY.
  std::shared_ptr<SharedModel> idle(Napi::Env env, const char* operation);

  Napi::Value device(const Napi::CallbackInfo& info);
  Napi::Value to(const Napi::CallbackInfo& info);
  Napi::Value engine(const Napi::CallbackInfo& info);
  Napi::Value setEngine(const Napi::CallbackInfo& info);
  Napi::Value lossAndGradients(const Napi::CallbackInfo& info);
  Napi::Value parameterInfo(const Napi::CallbackInfo& info);
  Napi::Value setParameters(const Napi::CallbackInfo& info);
  Napi::Value parameterValues(const Napi::CallbackInfo& info);
  Napi::Value stateDictBytes(const Napi::CallbackInfo& info);
  Napi::Value checkpointBytes(const Napi::CallbackInfo& info);
  Napi::Value torchScriptBytes(const Napi::CallbackInfo& info);
  Napi::Value train(const Napi::CallbackInfo& info);
  Napi::Value evaluate(const Napi::CallbackInfo& info);
  Napi::Value predict(const Napi::CallbackInfo& info);
  Napi::Value cancel(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<SharedModel> core_;
};

}  // namespace lenet5::js
