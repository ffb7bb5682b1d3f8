// Per-environment state (the addon is context-aware: it loads in worker_threads too).
#pragma once

#include <napi.h>

namespace lenet5::js {

struct AddonData {
  Napi::FunctionReference datasetConstructor;
  Napi::FunctionReference optimizerConstructor;
  Napi::FunctionReference modelConstructor;
  uint64_t nextModelId = 1;
};

inline AddonData& addonData(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

// Unwraps `value` as an instance of the wrapped class T, or throws a TypeError naming `what`.
template <typename T>
T* unwrapAs(Napi::Value value, Napi::FunctionReference& constructor, const char* what) {
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(constructor.Value())) {
    throw Napi::TypeError::New(value.Env(), std::string("Expected ") + what);
  }
  return T::Unwrap(value.As<Napi::Object>());
}

}  // namespace lenet5::js
