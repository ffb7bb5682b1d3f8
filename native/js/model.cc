#include "model.h"

#include <atomic>
#include <cstring>
#include <optional>
#include <random>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/ops/from_blob.h>

#include "../core/device.h"
#include "../core/export.h"
#include "../core/model.h"
#include "../core/serialization.h"
#include "../core/trainer.h"
#include "addon_data.h"
#include "dataset.h"
#include "errors.h"
#include "job.h"
#include "optimizer.h"

namespace lenet5::js {

// The model a ModelWrap shares with its running jobs; freed when the last of them lets go.
struct SharedModel {
  SharedModel(int64_t numClasses, const c10::Device& device, uint64_t id) : model(numClasses, device), id(id) {
    ++alive;
  }
  ~SharedModel() { --alive; }
  SharedModel(const SharedModel&) = delete;
  SharedModel& operator=(const SharedModel&) = delete;
  static inline std::atomic<int64_t> alive{0};

  Model model;
  uint64_t id;
  std::shared_ptr<std::atomic<bool>> cancel = std::make_shared<std::atomic<bool>>(false);
  std::atomic<bool> busy{false};
};

int64_t liveModels() { return SharedModel::alive.load(); }

namespace {

// Clears the busy flag when a job's work ends, however it ends.
struct BusyRelease {
  explicit BusyRelease(std::shared_ptr<SharedModel> core) : core(std::move(core)) {}
  ~BusyRelease() { core->busy.store(false); }
  std::shared_ptr<SharedModel> core;
};

Normalization readNormalization(const Napi::Object& options) {
  return {options.Get("mean").As<Napi::Number>().DoubleValue(), options.Get("std").As<Napi::Number>().DoubleValue()};
}

// A plain JS value as the IValue Python's pickle would hold: number -> float, bigint -> int,
// string, boolean, null, array -> list, object -> dict with string keys.
c10::IValue toIValue(const Napi::Value& value) {
  if (value.IsNull() || value.IsUndefined()) return c10::IValue();
  if (value.IsBoolean()) return value.As<Napi::Boolean>().Value();
  if (value.IsNumber()) return value.As<Napi::Number>().DoubleValue();
  if (value.IsBigInt()) {
    bool lossless = false;
    return value.As<Napi::BigInt>().Int64Value(&lossless);
  }
  if (value.IsString()) return value.As<Napi::String>().Utf8Value();
  if (value.IsArray()) {
    auto array = value.As<Napi::Array>();
    c10::impl::GenericList list(c10::AnyType::get());
    for (uint32_t i = 0; i < array.Length(); i++) list.push_back(toIValue(array.Get(i)));
    return list;
  }
  auto object = value.As<Napi::Object>();
  auto keys = object.GetPropertyNames();
  c10::impl::GenericDict dict(c10::StringType::get(), c10::AnyType::get());
  for (uint32_t i = 0; i < keys.Length(); i++) {
    auto key = keys.Get(i).As<Napi::String>();
    dict.insert(key.Utf8Value(), toIValue(object.Get(key)));
  }
  return dict;
}

Napi::Buffer<char> toBuffer(Napi::Env env, const std::string& bytes) {
  return Napi::Buffer<char>::Copy(env, bytes.data(), bytes.size());
}

Napi::Object evalResultToJs(Napi::Env env, const EvalResult& result) {
  auto out = Napi::Object::New(env);
  out.Set("loss", result.loss);
  out.Set("correct", static_cast<double>(result.correct));
  out.Set("total", static_cast<double>(result.total));
  auto confusion = Napi::Array::New(env, result.confusion.size());
  for (size_t i = 0; i < result.confusion.size(); ++i) confusion.Set(i, static_cast<double>(result.confusion[i]));
  out.Set("confusion", confusion);
  return out;
}

// Builds the model with the global CPU generator re-seeded, then restores the generator, so a
// seeded construction gives the same weights without changing other random streams.
std::unique_ptr<SharedModel> constructSeeded(int64_t numClasses, const c10::Device& device, uint64_t id,
                                             std::optional<uint64_t> seed) {
  if (!seed) return std::make_unique<SharedModel>(numClasses, device, id);
  auto generator = at::detail::getDefaultCPUGenerator();
  auto saved = generator.get_state();
  generator.set_current_seed(*seed);
  auto core = std::make_unique<SharedModel>(numClasses, at::kCPU, id);
  generator.set_state(saved);
  core->model.to(device);
  return core;
}

}  // namespace

Napi::Function ModelWrap::define(Napi::Env env) {
  return DefineClass(
      env, "NativeModel",
      {InstanceMethod("device", &ModelWrap::device), InstanceMethod("to", &ModelWrap::to),
       InstanceMethod("parameterInfo", &ModelWrap::parameterInfo), InstanceMethod("engine", &ModelWrap::engine),
       InstanceMethod("setEngine", &ModelWrap::setEngine),
       InstanceMethod("lossAndGradients", &ModelWrap::lossAndGradients),
       InstanceMethod("setParameters", &ModelWrap::setParameters),
       InstanceMethod("parameterValues", &ModelWrap::parameterValues),
       InstanceMethod("stateDictBytes", &ModelWrap::stateDictBytes),
       InstanceMethod("checkpointBytes", &ModelWrap::checkpointBytes),
       InstanceMethod("torchScriptBytes", &ModelWrap::torchScriptBytes), InstanceMethod("train", &ModelWrap::train),
       InstanceMethod("evaluate", &ModelWrap::evaluate), InstanceMethod("predict", &ModelWrap::predict),
       InstanceMethod("cancel", &ModelWrap::cancel), InstanceMethod("dispose", &ModelWrap::dispose)});
}

// new NativeModel(numClasses, device, seed | null)
ModelWrap::ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
  guarded(info.Env(), [&] {
    const int64_t numClasses = info[0].As<Napi::Number>().Int64Value();
    auto device = resolveDevice(info[1].As<Napi::String>().Utf8Value());
    std::optional<uint64_t> seed;
    if (info[2].IsNumber()) seed = static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value());
    core_ = constructSeeded(numClasses, device, addonData(info.Env()).nextModelId++, seed);
  });
}

std::shared_ptr<SharedModel> ModelWrap::live(Napi::Env env, const char* operation) {
  if (!core_) {
    throw toJsError(env, {"ERR_LENET5_DISPOSED", std::string("Cannot ") + operation +
                                                     ": this model was disposed. Create or load a new model."});
  }
  return core_;
}

std::shared_ptr<SharedModel> ModelWrap::idle(Napi::Env env, const char* operation) {
  live(env, operation);
  if (core_->busy.load()) {
    throw toJsError(env, {"ERR_LENET5_BUSY", std::string("Cannot ") + operation +
                                                 ": this model is busy with another train, evaluate or predict call. "
                                                 "Await that call first (calls on one model do not queue)."});
  }
  return core_;
}

// Marks the model busy for a job; the job's BusyRelease clears it.
std::shared_ptr<SharedModel> ModelWrap::acquire(Napi::Env env, const char* operation) {
  auto core = idle(env, operation);
  core->busy.store(true);
  core->cancel->store(false);
  return core;
}

Napi::Value ModelWrap::device(const Napi::CallbackInfo& info) {
  // Jobs never move the model (to() needs it idle), so the device can be read while one runs.
  return Napi::String::New(info.Env(), live(info.Env(), "read the device")->model.device().str());
}

Napi::Value ModelWrap::to(const Napi::CallbackInfo& info) {
  auto core = idle(info.Env(), "move the model");
  guarded(info.Env(), [&] { core->model.to(resolveDevice(info[0].As<Napi::String>().Utf8Value())); });
  return info.Env().Undefined();
}

Napi::Value ModelWrap::engine(const Napi::CallbackInfo& info) {
  auto core = idle(info.Env(), "read the engine");
  return Napi::String::New(info.Env(), core->model.computeEngine() == ComputeEngine::Fused ? "fused" : "libtorch");
}

// setEngine('fused' | 'libtorch'), checked by TypeScript.
Napi::Value ModelWrap::setEngine(const Napi::CallbackInfo& info) {
  auto core = idle(info.Env(), "change the engine");
  core->model.setComputeEngine(info[0].As<Napi::String>().Utf8Value() == "libtorch" ? ComputeEngine::LibTorch
                                                                                    : ComputeEngine::Fused);
  return info.Env().Undefined();
}

// lossAndGradients(pixels: Float32Array (normalised), labels: Int32Array, count)
//   -> { loss, gradients: [Float32Array, ...] in parameterInfo() order }
Napi::Value ModelWrap::lossAndGradients(const Napi::CallbackInfo& info) {
  auto core = idle(info.Env(), "compute gradients");
  const int64_t count = info[2].As<Napi::Number>().Int64Value();
  auto pixels = info[0].As<Napi::Float32Array>();
  auto labels = info[1].As<Napi::Int32Array>();
  return guarded(info.Env(), [&] {
    requireElementLength(pixels, static_cast<size_t>(count * kImageSide * kImageSide), "pixels");
    requireElementLength(labels, static_cast<size_t>(count), "labels");
    auto input = at::from_blob(pixels.Data(), {count, 1, kImageSide, kImageSide}, at::kFloat);
    auto targets = at::from_blob(labels.Data(), {count}, at::kInt);
    const double loss = lenet5::lossAndGradients(core->model, input, targets);
    auto gradients = core->model.flatGradients().to(at::kCPU);
    auto out = Napi::Object::New(info.Env());
    out.Set("loss", loss);
    const auto& slots = core->model.slots();
    auto arrays = Napi::Array::New(info.Env(), slots.size());
    for (size_t i = 0; i < slots.size(); ++i) {
      auto values = Napi::Float32Array::New(info.Env(), slots[i].numel);
      std::memcpy(values.Data(), gradients.data_ptr<float>() + slots[i].offset, slots[i].numel * sizeof(float));
      arrays.Set(i, values);
    }
    out.Set("gradients", arrays);
    return out;
  });
}

Napi::Value ModelWrap::parameterInfo(const Napi::CallbackInfo& info) {
  auto core = live(info.Env(), "list parameters");  // names and shapes are fixed at construction
  const auto& slots = core->model.slots();
  auto out = Napi::Array::New(info.Env(), slots.size());
  for (size_t i = 0; i < slots.size(); ++i) {
    auto entry = Napi::Object::New(info.Env());
    entry.Set("name", slots[i].name);
    auto shape = Napi::Array::New(info.Env(), slots[i].shape.size());
    for (size_t d = 0; d < slots[i].shape.size(); ++d) shape.Set(d, static_cast<double>(slots[i].shape[d]));
    entry.Set("shape", shape);
    out.Set(i, entry);
  }
  return out;
}

// setParameters([Float32Array | null, ...]) in parameterInfo() order, sizes checked by TypeScript;
// null keeps that parameter's current values (a non-strict load).
Napi::Value ModelWrap::setParameters(const Napi::CallbackInfo& info) {
  auto core = idle(info.Env(), "load parameters");
  auto arrays = info[0].As<Napi::Array>();
  guarded(info.Env(), [&] {
    for (uint32_t i = 0; i < arrays.Length(); ++i) {
      if (arrays.Get(i).IsNull()) continue;
      auto values = arrays.Get(i).As<Napi::Float32Array>();
      const auto& slot = core->model.slots().at(i);
      requireElementLength(values, static_cast<size_t>(slot.numel), slot.name.c_str());
      core->model.setParameter(
          i, at::from_blob(values.Data(), {static_cast<int64_t>(values.ElementLength())}, at::kFloat));
    }
  });
  return info.Env().Undefined();
}

// parameterValues() -> [Float32Array, ...] in parameterInfo() order (CPU copies).
Napi::Value ModelWrap::parameterValues(const Napi::CallbackInfo& info) {
  auto core = idle(info.Env(), "read parameters");
  return guarded(info.Env(), [&] {
    auto state = core->model.stateDict();
    auto out = Napi::Array::New(info.Env(), state.size());
    for (size_t i = 0; i < state.size(); ++i) {
      const auto& tensor = state[i].second;
      auto values = Napi::Float32Array::New(info.Env(), tensor.numel());
      std::memcpy(values.Data(), tensor.data_ptr<float>(), tensor.numel() * sizeof(float));
      out.Set(i, values);
    }
    return out;
  });
}

Napi::Value ModelWrap::stateDictBytes(const Napi::CallbackInfo& info) {
  auto core = idle(info.Env(), "save");
  return guarded(info.Env(), [&] { return toBuffer(info.Env(), serializeToPth(stateDictValue(core->model))); });
}

// checkpointBytes(optimizer, epoch, loss | null, extra: {key: plain value})
Napi::Value ModelWrap::checkpointBytes(const Napi::CallbackInfo& info) {
  auto core = idle(info.Env(), "save a checkpoint");
  auto* optimizer = unwrapAs<OptimizerWrap>(info[0], addonData(info.Env()).optimizerConstructor, "an optimizer");
  CheckpointInfo checkpoint;
  checkpoint.epoch = info[1].As<Napi::Number>().Int64Value();
  checkpoint.hasLoss = info[2].IsNumber();
  if (checkpoint.hasLoss) checkpoint.loss = info[2].As<Napi::Number>().DoubleValue();
  auto extra = info[3].As<Napi::Object>();
  auto keys = extra.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); i++) {
    auto key = keys.Get(i).As<Napi::String>();
    checkpoint.extra.emplace_back(key.Utf8Value(), toIValue(extra.Get(key)));
  }
  return guarded(info.Env(), [&] {
    optimizer->optimizer()->bind(core->id);
    return toBuffer(info.Env(), serializeToPth(checkpointValue(core->model, *optimizer->optimizer(), checkpoint)));
  });
}

Napi::Value ModelWrap::torchScriptBytes(const Napi::CallbackInfo& info) {
  auto core = idle(info.Env(), "export");
  return guarded(info.Env(), [&] { return toBuffer(info.Env(), exportTorchScript(core->model)); });
}

// train(dataset, validation | null, optimizer, options, onEvent) -> Promise<void>
Napi::Value ModelWrap::train(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto& data = addonData(env);
  auto dataset = unwrapAs<DatasetWrap>(info[0], data.datasetConstructor, "a dataset")->dataset();
  std::shared_ptr<Dataset> validation;
  if (!info[1].IsNull()) validation = unwrapAs<DatasetWrap>(info[1], data.datasetConstructor, "a dataset")->dataset();
  auto optimizer = unwrapAs<OptimizerWrap>(info[2], data.optimizerConstructor, "an optimizer")->optimizer();
  auto o = info[3].As<Napi::Object>();
  TrainOptions options;
  options.epochs = o.Get("epochs").As<Napi::Number>().Int64Value();
  options.batchSize = o.Get("batchSize").As<Napi::Number>().Int64Value();
  options.shuffle = o.Get("shuffle").As<Napi::Boolean>().Value();
  options.seed = o.Get("seed").IsNumber() ? static_cast<uint64_t>(o.Get("seed").As<Napi::Number>().Int64Value())
                                          : std::random_device{}();
  options.initialEpoch = o.Get("initialEpoch").As<Napi::Number>().Int64Value();
  options.batchEventInterval = o.Get("batchEventInterval").As<Napi::Number>().Int64Value();
  options.stopOnNonFiniteLoss = o.Get("stopOnNonFiniteLoss").As<Napi::Boolean>().Value();
  options.evalBatchSize = o.Get("evalBatchSize").As<Napi::Number>().Int64Value();
  options.normalization = readNormalization(o);

  auto core = acquire(env, "train");
  guarded(env, [&] { optimizer->bind(core->id); });
  return Job::start(env, info[4], core->cancel, [=](Job& job) {
    BusyRelease release(core);
    TrainHooks hooks;
    hooks.cancel = job.cancelFlag();
    hooks.onBatch = [&job](const BatchEvent& e) {
      job.post([e](Napi::Env env, Napi::Value callback) {
        auto event = Napi::Object::New(env);
        event.Set("type", "batch");
        event.Set("epoch", static_cast<double>(e.epoch));
        event.Set("batch", static_cast<double>(e.batch));
        event.Set("batches", static_cast<double>(e.batches));
        event.Set("loss", e.loss);
        event.Set("imagesPerSecond", e.imagesPerSecond);
        callback.As<Napi::Function>().Call({event});
      });
    };
    hooks.onEpoch = [&job](const EpochEvent& e) {
      job.post([e](Napi::Env env, Napi::Value callback) {
        auto event = Napi::Object::New(env);
        event.Set("type", "epoch");
        event.Set("epoch", static_cast<double>(e.epoch));
        event.Set("trainLoss", e.trainLoss);
        event.Set("seconds", e.seconds);
        event.Set("imagesPerSecond", e.imagesPerSecond);
        if (e.hasValidation) event.Set("validation", evalResultToJs(env, e.validation));
        callback.As<Napi::Function>().Call({event});
      });
    };
    hooks.onNonFiniteSkipped = [&job](int64_t epoch, int64_t batch) {
      job.post([epoch, batch](Napi::Env env, Napi::Value callback) {
        auto event = Napi::Object::New(env);
        event.Set("type", "nonFinite");
        event.Set("epoch", static_cast<double>(epoch));
        event.Set("batch", static_cast<double>(batch));
        callback.As<Napi::Function>().Call({event});
      });
    };
    lenet5::train(core->model, *optimizer, *dataset, validation.get(), options, hooks);
    return std::function<Napi::Value(Napi::Env)>([](Napi::Env env) { return env.Undefined(); });
  });
}

// evaluate(dataset, { batchSize, mean, std }) -> Promise<{ loss, correct, total, confusion }>
Napi::Value ModelWrap::evaluate(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto dataset = unwrapAs<DatasetWrap>(info[0], addonData(env).datasetConstructor, "a dataset")->dataset();
  auto o = info[1].As<Napi::Object>();
  const int64_t batchSize = o.Get("batchSize").As<Napi::Number>().Int64Value();
  auto normalization = readNormalization(o);
  auto core = acquire(env, "evaluate");
  return Job::start(env, env.Undefined(), core->cancel, [=](Job& job) {
    BusyRelease release(core);
    auto result = lenet5::evaluate(core->model, *dataset, batchSize, normalization, job.cancelFlag());
    return std::function<Napi::Value(Napi::Env)>([result](Napi::Env env) { return evalResultToJs(env, result); });
  });
}

// predict(pixels: Float32Array (normalised) | Uint8Array (raw), count, { mean, std })
//   -> Promise<{ logits: Float32Array, probabilities: Float32Array, classes: Int32Array }>
Napi::Value ModelWrap::predict(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  PredictInput input;
  input.count = info[1].As<Napi::Number>().Int64Value();
  input.normalization = readNormalization(info[2].As<Napi::Object>());
  const bool raw = info[0].IsTypedArray() && info[0].As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array;
  guarded(env, [&] {
    requireElementLength(info[0].As<Napi::TypedArray>(), static_cast<size_t>(input.count * kImageSide * kImageSide),
                         "pixels");
  });
  auto core = acquire(env, "predict");
  const size_t count = static_cast<size_t>(input.count);
  const size_t classes = static_cast<size_t>(core->model.numClasses());
  // A small batch on the CPU runs here, reading and writing the JavaScript arrays directly.
  // Larger inputs and GPUs go to a job thread, with a copy of the input, and their results are
  // copied out on the JS thread.
  if (input.count <= kInlinePredictImagesPerThread * at::get_num_threads() && core->model.device().is_cpu()) {
    BusyRelease release(core);
    auto deferred = Napi::Promise::Deferred::New(env);
    try {
      if (raw) {
        input.pixels = info[0].As<Napi::Uint8Array>().Data();
      } else {
        input.normalized = info[0].As<Napi::Float32Array>().Data();
      }
      PredictionArrays out(env, count, classes);
      lenet5::predict(core->model, input, {out.logits.Data(), out.probabilities.Data(), out.classes.Data()});
      deferred.Resolve(out.toJs());
    } catch (const std::exception& error) { deferred.Reject(toJsError(env, describeException(error)).Value()); }
    return deferred.Promise();
  }
  auto copy = std::make_shared<const PixelsCopy>(info[0].As<Napi::TypedArray>());
  return Job::start(env, env.Undefined(), core->cancel, [=](Job&) mutable {
    BusyRelease release(core);
    if (copy->raw()) {
      input.pixels = copy->pixels.data();
    } else {
      input.normalized = copy->normalized.data();
    }
    auto out = std::make_shared<PredictionBuffers>(count, classes);
    lenet5::predict(core->model, input, {out->logits.data(), out->probabilities.data(), out->classes.data()});
    return std::function<Napi::Value(Napi::Env)>([out](Napi::Env env) { return out->toJs(env); });
  });
}

Napi::Value ModelWrap::cancel(const Napi::CallbackInfo& info) {
  if (core_) core_->cancel->store(true);
  return info.Env().Undefined();
}

// Drops this wrapper's share of the model. A running job keeps its own share and is cancelled.
Napi::Value ModelWrap::dispose(const Napi::CallbackInfo& info) {
  if (core_) {
    core_->cancel->store(true);
    core_.reset();
  }
  return info.Env().Undefined();
}

}  // namespace lenet5::js
