#include "quantized.h"

#include <ATen/Parallel.h>

#include <cstring>
#include <vector>

#include "../core/trainer.h"
#include "errors.h"
#include "job.h"

namespace lenet5::js {
namespace {

// The layers' [outputs, inputs] (conv weights flattened), fc3's outputs being the class count.
int64_t layerSize(int layer, int64_t classes, bool outputs) {
  constexpr int64_t kShapes[4][2] = {{6, 25}, {16, 150}, {120, 400}, {84, 120}};
  if (layer == 4) return outputs ? classes : 84;
  return kShapes[layer][outputs ? 0 : 1];
}

template <typename Array>
Array element(const Napi::Object& network, const char* key, uint32_t index, size_t expected) {
  auto array = network.Get(key).As<Napi::Array>().Get(index).As<Array>();
  requireElementLength(array, expected, key);
  return array;
}

}  // namespace

Napi::Function QuantizedModelWrap::define(Napi::Env env) {
  return DefineClass(env, "NativeQuantizedModel",
                     {InstanceAccessor("kernels", &QuantizedModelWrap::kernels, nullptr),
                      InstanceMethod("predict", &QuantizedModelWrap::predict)});
}

QuantizedModelWrap::QuantizedModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<QuantizedModelWrap>(info) {
  auto env = info.Env();
  auto network = info[0].As<Napi::Object>();
  const std::string kernels = info[1].As<Napi::String>().Utf8Value();
  guarded(env, [&] {
    engine::int8::NetworkArrays arrays;
    arrays.classes = network.Get("numClasses").As<Napi::Number>().Int32Value();
    auto scales = network.Get("activationScales").As<Napi::Float32Array>();
    requireElementLength(scales, 5, "activationScales");
    std::memcpy(arrays.activationScales, scales.Data(), sizeof(arrays.activationScales));
    for (uint32_t layer = 0; layer < 5; ++layer) {
      const int64_t outputs = layerSize(layer, arrays.classes, true);
      arrays.weights[layer] =
          element<Napi::Int8Array>(network, "weights", layer, outputs * layerSize(layer, arrays.classes, false)).Data();
      arrays.weightScales[layer] = element<Napi::Float32Array>(network, "weightScales", layer, outputs).Data();
      arrays.biases[layer] = element<Napi::Int32Array>(network, "biases", layer, outputs).Data();
    }
    network_ = std::make_shared<engine::int8::Network>(arrays, kernels);
  });
}

Napi::Value QuantizedModelWrap::kernels(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), network_->kernelsName());
}

// predict(images: Uint8Array (raw, with pixelLevels) | Float32Array (normalised), count,
//         pixelLevels: Int8Array(256) | undefined) -> Promise<{ logits, probabilities, classes }>,
// as the float model's predict (its softmax, softmaxRows, in C++ too).
Napi::Value QuantizedModelWrap::predict(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const int64_t count = info[1].As<Napi::Number>().Int64Value();
  const bool raw = info[0].As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array;
  const size_t values = static_cast<size_t>(count) * 784;
  const int64_t classes = network_->classes();
  guarded(env, [&] {
    requireElementLength(info[0].As<Napi::TypedArray>(), values, "pixels");
    if (raw) requireElementLength(info[2].As<Napi::TypedArray>(), 256, "pixelLevels");
  });
  auto network = network_;
  std::vector<int8_t> levels;
  if (raw) {
    auto table = info[2].As<Napi::Int8Array>();
    levels.assign(table.Data(), table.Data() + 256);
  }
  const int threads = at::get_num_threads();
  if (count <= kInlinePredictImagesPerThread * threads) {
    auto deferred = Napi::Promise::Deferred::New(env);
    engine::int8::Input input;
    if (raw) {
      input.pixels = info[0].As<Napi::Uint8Array>().Data();
      input.pixelLevels = levels.data();
    } else {
      input.normalized = info[0].As<Napi::Float32Array>().Data();
    }
    try {
      PredictionArrays out(env, count, classes);
      network->logits(input, count, threads, out.logits.Data());
      softmaxRows(out.logits.Data(), count, classes, out.probabilities.Data(), out.classes.Data());
      deferred.Resolve(out.toJs());
    } catch (const std::exception& error) { deferred.Reject(toJsError(env, describeException(error)).Value()); }
    return deferred.Promise();
  }
  // Larger batches run on a job thread, on a copy of the input.
  auto copy = std::make_shared<const PixelsCopy>(info[0].As<Napi::TypedArray>());
  return Job::start(env, env.Undefined(), std::make_shared<std::atomic<bool>>(false), [=](Job&) {
    engine::int8::Input input;
    input.pixels = raw ? copy->pixels.data() : nullptr;
    input.pixelLevels = raw ? levels.data() : nullptr;
    input.normalized = raw ? nullptr : copy->normalized.data();
    auto out = std::make_shared<PredictionBuffers>(count, classes);
    network->logits(input, count, threads, out->logits.data());
    softmaxRows(out->logits.data(), count, classes, out->probabilities.data(), out->classes.data());
    return std::function<Napi::Value(Napi::Env)>([out](Napi::Env env) { return out->toJs(env); });
  });
}

Napi::Value int8Kernels(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto names = Napi::Array::New(env);
  uint32_t i = 0;
  for (const auto* table : engine::int8::availableKernels()) names.Set(i++, table->name);
  auto result = Napi::Object::New(env);
  result.Set("selected", engine::int8::chooseKernels("").name);
  result.Set("available", names);
  return result;
}

}  // namespace lenet5::js
