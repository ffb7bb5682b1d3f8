#include "trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>

#include <ATen/Parallel.h>
#include <ATen/TensorOperators.h>
#include <ATen/core/Reduction.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/bincount.h>
#include <ATen/ops/cross_entropy_loss.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/randperm.h>
#include <ATen/ops/zeros.h>
#include <c10/core/InferenceMode.h>

#include "allocator.h"
#include "engine/engine.h"
#include "errors.h"

namespace lenet5 {
namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// One independent shuffle stream per epoch, so resuming at epoch k repeats an uninterrupted run.
uint64_t epochSeed(uint64_t seed, int64_t epoch) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(epoch);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void throwIfCancelled(const std::atomic<bool>* cancel, const std::string& where) {
  if (cancel != nullptr && cancel->load()) {
    throw NativeError("ERR_LENET5_ABORTED", "The operation was aborted " + where + ".");
  }
}

// The fused engine runs as many threads as LibTorch's intra-op setting (threads.set(), LENET5_THREADS).
int engineThreads() { return at::get_num_threads(); }

// Up to this many images, the fused engine's forward pass runs on the calling thread.
constexpr int64_t kInlineForwardImages = 32;

// Restores train mode however the evaluation ends.
struct EvalModeScope {
  explicit EvalModeScope(LeNet5& net) : net(net), wasTraining(net.isTraining()) { net.setTraining(false); }
  ~EvalModeScope() { net.setTraining(wasTraining); }
  LeNet5& net;
  bool wasTraining;
};

// The fused engine reads uint8 pixels and normalises them as normalizePixels() does.
engine::ImageSource pixelSource(const uint8_t* pixels, const Normalization& normalization) {
  engine::ImageSource source;
  source.pixels = pixels;
  source.scale = static_cast<float>(1.0 / (255.0 * normalization.std));
  source.shift = static_cast<float>(-normalization.mean / normalization.std);
  return source;
}

// The engine indexes logits and the confusion matrix by label without checks: TypeScript refuses
// such data first; this keeps a direct native call from writing out of bounds.
void checkLabels(Dataset& data, int64_t classes) {
  if (data.maxLabel() >= classes) {
    const int64_t label = data.maxLabel();
    throw NativeError("ERR_LENET5_DATA", "The data has label " + std::to_string(label) + ", but this model has " +
                                             std::to_string(classes) + " classes (0 to " + std::to_string(classes - 1) +
                                             "). Use a model with numClasses " + std::to_string(label + 1) +
                                             " or more.");
  }
}

EvalResult evaluateFused(Model& model, Dataset& data, int64_t batchSize, const Normalization& normalization,
                         const std::atomic<bool>* cancel) {
  const int64_t classes = model.numClasses();
  checkLabels(data, classes);
  auto [images, labels] = data.on(at::kCPU);
  images = images.contiguous();
  labels = labels.contiguous();
  auto& fused = model.fusedEngine();
  auto& pool = fused.inferencePool(engineThreads());
  const float* params = model.flatParameters().data_ptr<float>();
  const int64_t* labelData = labels.data_ptr<int64_t>();
  EvalResult result;
  result.total = data.size();
  result.numClasses = classes;
  result.confusion.assign(classes * classes, 0);
  // Batches are independent: the threads take chunks of up to 64 images (a whole batch when batches
  // are smaller) in turn, so a small batch size still keeps every thread busy; a cancel stops them
  // within a chunk.
  throwIfCancelled(cancel, "during evaluation");
  std::vector<int64_t> predicted(std::max<int64_t>(result.total, 1));
  const double lossSum = fused.lossAndPredictions(pool, params, pixelSource(images.data_ptr<uint8_t>(), normalization),
                                                  labelData, result.total, batchSize, predicted.data(), cancel);
  throwIfCancelled(cancel, "during evaluation");
  for (int64_t i = 0; i < result.total; ++i) ++result.confusion[labelData[i] * classes + predicted[i]];
  for (int64_t c = 0; c < classes; ++c) result.correct += result.confusion[c * classes + c];
  result.loss = result.total > 0 ? lossSum / static_cast<double>(result.total) : 0.0;
  return result;
}

}  // namespace

EvalResult evaluate(Model& model, Dataset& data, int64_t batchSize, const Normalization& normalization,
                    const std::atomic<bool>* cancel) {
  if (model.usesFusedEngine()) return evaluateFused(model, data, batchSize, normalization, cancel);
  EvalModeScope evalMode(model.net());
  c10::InferenceMode inference;
  const auto device = model.device();
  const int64_t classes = model.numClasses();
  auto [images, labels] = data.on(device);
  const int64_t total = data.size();
  auto lossSum = at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(device));
  auto confusion = at::zeros({classes * classes}, at::TensorOptions().dtype(at::kLong).device(device));
  for (int64_t start = 0; start < total; start += batchSize) {
    throwIfCancelled(cancel, "during evaluation");
    const int64_t end = std::min(total, start + batchSize);
    auto x = normalizePixels(images.slice(0, start, end), normalization);
    auto y = labels.slice(0, start, end);
    auto logits = model.net().forward(x);
    lossSum += at::cross_entropy_loss(logits, y, {}, at::Reduction::Sum).to(at::kDouble);
    confusion += at::bincount(y * classes + logits.argmax(1), {}, classes * classes);
  }
  EvalResult result;
  result.total = total;
  result.numClasses = classes;
  auto confusionCpu = confusion.to(at::kCPU);
  result.confusion.assign(confusionCpu.data_ptr<int64_t>(), confusionCpu.data_ptr<int64_t>() + classes * classes);
  for (int64_t c = 0; c < classes; ++c) result.correct += result.confusion[c * classes + c];
  result.loss = total > 0 ? lossSum.item<double>() / static_cast<double>(total) : 0.0;
  releaseFreedTensorMemory();
  return result;
}

void train(Model& model, Optimizer& optimizer, Dataset& data, Dataset* validation, const TrainOptions& options,
           const TrainHooks& hooks) {
  const auto device = model.device();
  const bool onCpu = device.is_cpu();
  auto [images, labels] = data.on(device);
  const int64_t total = data.size();
  const int64_t batches = (total + options.batchSize - 1) / options.batchSize;
  // Losses are checked for NaN/Inf before they can spoil the weights. On the CPU a check costs
  // nothing, so every batch is checked. On a GPU each check waits for the device, so a window of
  // batches is checked at once. `lastGood` holds the newest weights known to give a finite loss.
  const int64_t checkEvery = onCpu ? 1 : 50;
  auto& params = model.flatParameters();
  auto lastGood = params.detach().clone();
  auto windowStartParams = params.detach().clone();
  auto restoreLastGood = [&] {
    at::NoGradGuard noGrad;
    params.copy_(lastGood);
  };
  // The fused engine computes a batch's loss and gradients in one call and saves `lastGood` in
  // its update pass; LibTorch's operators build the graph, and backward() runs after the check.
  engine::Engine* fused = model.usesFusedEngine() ? &model.fusedEngine() : nullptr;
  if (fused != nullptr) checkLabels(data, model.numClasses());
  std::optional<engine::WorkerPool> pool;
  std::optional<engine::ImageSource> source;
  if (fused != nullptr) {
    images = images.contiguous();
    labels = labels.contiguous();
    pool.emplace(engineThreads());
    source = pixelSource(images.data_ptr<uint8_t>(), options.normalization);
  }

  model.net().setTraining(true);
  for (int64_t epoch = options.initialEpoch + 1; epoch <= options.initialEpoch + options.epochs; ++epoch) {
    const auto epochStart = Clock::now();
    auto order = options.shuffle ? at::randperm(total, seededGenerator(epochSeed(options.seed, epoch)), at::kLong)
                                 : at::arange(total, at::kLong);
    order = order.to(device);
    auto lossSum = at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(device));
    auto windowLoss = at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(device));
    int64_t windowFirstBatch = 1;
    for (int64_t batch = 1; batch <= batches; ++batch) {
      throwIfCancelled(hooks.cancel, "at epoch " + std::to_string(epoch) + ", batch " + std::to_string(batch));
      const int64_t first = (batch - 1) * options.batchSize;
      const int64_t count = std::min(total, batch * options.batchSize) - first;
      at::Tensor loss;
      if (fused != nullptr) {
        source->index = order.data_ptr<int64_t>() + first;
        const double summed =
            fused->lossAndGradients(*pool, params.data_ptr<float>(), *source, labels.data_ptr<int64_t>(), count);
        windowLoss += summed / static_cast<double>(count);
      } else {
        auto index = order.slice(0, first, first + count);
        auto x = normalizePixels(images.index_select(0, index), options.normalization);
        auto y = labels.index_select(0, index);
        model.flatGradients().zero_();
        loss = at::cross_entropy_loss(model.net().forward(x), y);
        windowLoss += loss.detach().to(at::kDouble);
      }
      const bool lastBatch = batch == batches;
      if (onCpu || batch % checkEvery == 0 || lastBatch) {
        const double value = windowLoss.item<double>();
        if (!std::isfinite(value)) {
          restoreLastGood();
          if (options.stopOnNonFiniteLoss) {
            const std::string where = windowFirstBatch == batch
                                          ? "batch " + std::to_string(batch)
                                          : "batches " + std::to_string(windowFirstBatch) + "-" + std::to_string(batch);
            throw NativeError("ERR_LENET5_NON_FINITE_LOSS",
                              "The training loss became " + std::to_string(value) + " at epoch " +
                                  std::to_string(epoch) + ", " + where +
                                  ". The last weights that gave a finite loss are kept. Lower the learning "
                                  "rate, or check the data for extreme values.");
          }
          if (hooks.onNonFiniteSkipped) hooks.onNonFiniteSkipped(epoch, batch);
          windowLoss.zero_();
          windowFirstBatch = batch + 1;
          continue;
        }
        // The weights the window started from gave finite losses: they are the new fallback.
        if (fused == nullptr) {
          at::NoGradGuard noGrad;
          lastGood.copy_(onCpu ? params : windowStartParams);
        }
        lossSum += windowLoss;
        windowLoss.zero_();
        windowFirstBatch = batch + 1;
      }
      if (fused != nullptr) {
        auto plan = optimizer.fusedStep(model);
        plan.lastGood = lastGood.data_ptr<float>();
        fused->step(*pool, plan);
      } else {
        loss.backward();
        optimizer.step(model);
      }
      if (!onCpu && batch % checkEvery == 0) {
        at::NoGradGuard noGrad;
        windowStartParams.copy_(params);
      }
      if (hooks.onBatch && options.batchEventInterval > 0 && (batch % options.batchEventInterval == 0 || lastBatch)) {
        const double seen = static_cast<double>(std::min(total, batch * options.batchSize));
        hooks.onBatch({epoch, batch, batches, (lossSum + windowLoss).item<double>() / static_cast<double>(batch),
                       seen / secondsSince(epochStart)});
      }
    }
    const double trainSeconds = secondsSince(epochStart);
    EpochEvent event{epoch,
                     lossSum.item<double>() / static_cast<double>(batches),
                     validation != nullptr,
                     {},
                     0,
                     static_cast<double>(total) / trainSeconds};
    if (validation != nullptr) {
      event.validation = evaluate(model, *validation, options.evalBatchSize, options.normalization, hooks.cancel);
    }
    event.seconds = secondsSince(epochStart);
    if (hooks.onEpoch) hooks.onEpoch(event);
  }
  releaseFreedTensorMemory();
}

namespace {

// Writes the logits, count x numClasses.
void predictLogits(Model& model, const PredictInput& input, float* logits) {
  if (model.usesFusedEngine()) {
    engine::ImageSource source;
    if (input.pixels != nullptr) {
      source = pixelSource(input.pixels, input.normalization);
    } else {
      source.normalized = input.normalized;
    }
    // A few images take microseconds: waking threads for them would cost more.
    auto& fused = model.fusedEngine();
    engine::WorkerPool* pool = input.count > kInlineForwardImages ? &fused.inferencePool(engineThreads()) : nullptr;
    fused.forward(pool, model.flatParameters().data_ptr<float>(), source, input.count, logits);
    return;
  }
  EvalModeScope evalMode(model.net());
  c10::InferenceMode inference;
  auto x =
      input.pixels != nullptr
          ? normalizePixels(
                at::from_blob(const_cast<uint8_t*>(input.pixels), {input.count, kImageSide, kImageSide}, at::kByte),
                input.normalization)
          : at::from_blob(const_cast<float*>(input.normalized), {input.count, 1, kImageSide, kImageSide}, at::kFloat);
  auto out = model.net().forward(x.to(model.device())).to(at::kCPU).contiguous();
  std::memcpy(logits, out.data_ptr<float>(), out.numel() * sizeof(float));
}

}  // namespace

void softmaxRows(const float* logits, int64_t rows, int64_t classes, float* probabilities, int32_t* best) {
  for (int64_t n = 0; n < rows; ++n) {
    const float* z = logits + n * classes;
    float* p = probabilities + n * classes;
    int64_t top = 0;
    bool finite = true;
    for (int64_t c = 0; c < classes; ++c) {
      finite = finite && std::isfinite(z[c]);
      if (z[c] > z[top]) top = c;
    }
    double sum = 0;
    for (int64_t c = 0; c < classes; ++c) sum += std::exp(static_cast<double>(z[c]) - z[top]);
    for (int64_t c = 0; c < classes; ++c) p[c] = static_cast<float>(std::exp(static_cast<double>(z[c]) - z[top]) / sum);
    best[n] = finite ? static_cast<int32_t>(top) : -1;
  }
}

void predict(Model& model, const PredictInput& input, const PredictOutput& output) {
  if (input.normalized != nullptr) requireFinitePixels(input.normalized, input.count * kImageSide * kImageSide);
  predictLogits(model, input, output.logits);
  softmaxRows(output.logits, input.count, model.numClasses(), output.probabilities, output.classes);
}

double lossAndGradients(Model& model, const at::Tensor& input, const at::Tensor& labels) {
  auto x = input.contiguous();
  auto y = labels.to(at::kLong).contiguous();
  const int64_t count = x.size(0);
  if (model.usesFusedEngine()) {
    if (count > 0 && (y.min().item<int64_t>() < 0 || y.max().item<int64_t>() >= model.numClasses())) {
      throw NativeError("ERR_LENET5_DATA",
                        "Labels must be between 0 and " + std::to_string(model.numClasses() - 1) + ".");
    }
    engine::ImageSource source;
    source.normalized = x.data_ptr<float>();
    engine::WorkerPool pool(engineThreads());
    auto& fused = model.fusedEngine();
    const double loss =
        fused.lossAndGradients(pool, model.flatParameters().data_ptr<float>(), source, y.data_ptr<int64_t>(), count);
    engine::UpdatePlan sumOnly;
    sumOnly.kind = engine::UpdatePlan::Kind::GradientsOnly;
    sumOnly.gradientOut = model.flatGradients().data_ptr<float>();
    fused.step(pool, sumOnly);
    return loss / static_cast<double>(count);
  }
  model.net().setTraining(true);
  model.flatGradients().zero_();
  auto loss = at::cross_entropy_loss(model.net().forward(x.to(model.device())), y.to(model.device()));
  loss.backward();
  return loss.item<double>();
}

}  // namespace lenet5
