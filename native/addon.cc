// Registers the native classes and functions. Context-aware: every environment (main thread or
// worker_threads) gets its own constructors through instance data.
#include <napi.h>

#include <ATen/Parallel.h>
#include <torch/version.h>
#include <cstdlib>
#include <mutex>

#include "core/allocator.h"
#include "core/device.h"
#include "core/engine/kernels.h"
#include "js/addon_data.h"
#include "js/dataset.h"
#include "js/errors.h"
#include "js/job.h"
#include "js/model.h"
#include "js/optimizer.h"
#include "js/quantized.h"

namespace lenet5::js {
namespace {

Napi::Value cudaIsAvailable(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), cudaAvailable()); }

Napi::Value cudaDeviceCountJs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), cudaDeviceCount());
}

Napi::Value cudaManualSeed(const Napi::CallbackInfo& info) {
  seedCuda(static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value()));
  return info.Env().Undefined();
}

Napi::Value cudaSupportJs(const Napi::CallbackInfo& info) {
  auto result = Napi::Object::New(info.Env());
  result.Set("status", cudaSupport());
  result.Set("runtime", cudaRuntimeVersion());
  return result;
}

Napi::Value getNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

Napi::Value setNumThreads(const Napi::CallbackInfo& info) {
  at::set_num_threads(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

Napi::Value torchVersion(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), TORCH_VERSION); }

// Cancels and joins this environment's running jobs. The JS layer calls it from process 'exit',
// while LibTorch is still whole; static destructors that run later would pull it out from under a
// running loop.
Napi::Value stopJobs(const Napi::CallbackInfo& info) {
  Job::stopAll(info.Env());
  return info.Env().Undefined();
}

Napi::Value liveModelsJs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(liveModels()));
}

Napi::Value parallelInfo(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), at::get_parallel_info());
}

// The instruction set of the fused engine's kernels on this CPU: "avx512", "avx2" or "baseline".
Napi::Value engineKernels(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), engine::selectKernels().name);
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  static std::once_flag atexitOnce;
  std::call_once(atexitOnce, [] {
    std::atexit([] { Job::stopAll(nullptr); });
    keepFreedTensorMemory();
    loadCudaSupport();
  });
  napi_add_env_cleanup_hook(
      env, [](void* arg) { Job::stopAll(static_cast<napi_env>(arg)); }, env);

  auto* data = new AddonData();
  env.SetInstanceData(data);
  auto dataset = DatasetWrap::define(env);
  auto optimizer = OptimizerWrap::define(env);
  auto model = ModelWrap::define(env);
  data->datasetConstructor = Napi::Persistent(dataset);
  data->optimizerConstructor = Napi::Persistent(optimizer);
  data->modelConstructor = Napi::Persistent(model);
  exports.Set("NativeDataset", dataset);
  exports.Set("NativeOptimizer", optimizer);
  exports.Set("NativeModel", model);
  exports.Set("NativeQuantizedModel", QuantizedModelWrap::define(env));
  exports.Set("int8Kernels", Napi::Function::New(env, int8Kernels));
  exports.Set("cudaIsAvailable", Napi::Function::New(env, cudaIsAvailable));
  exports.Set("cudaDeviceCount", Napi::Function::New(env, cudaDeviceCountJs));
  exports.Set("cudaSupport", Napi::Function::New(env, cudaSupportJs));
  exports.Set("cudaManualSeed", Napi::Function::New(env, cudaManualSeed));
  exports.Set("getNumThreads", Napi::Function::New(env, getNumThreads));
  exports.Set("engineKernels", Napi::Function::New(env, engineKernels));
  exports.Set("setNumThreads", Napi::Function::New(env, setNumThreads));
  exports.Set("torchVersion", Napi::Function::New(env, torchVersion));
  exports.Set("stopJobs", Napi::Function::New(env, stopJobs));
  exports.Set("parallelInfo", Napi::Function::New(env, parallelInfo));
  exports.Set("liveModels", Napi::Function::New(env, liveModelsJs));
  return exports;
}

}  // namespace
}  // namespace lenet5::js

static Napi::Object initLenet5(Napi::Env env, Napi::Object exports) { return lenet5::js::init(env, exports); }

NODE_API_MODULE(lenet5_native, initLenet5)
