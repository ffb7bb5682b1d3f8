#include "trainer.h"

#include <chrono>
#include <cmath>

#include "allocator.h"
#include "errors.h"

namespace lenet5 {
namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

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

// Restores train mode however the evaluation ends.
struct EvalModeScope {
  explicit EvalModeScope(LeNet5& net) : net(net), wasTraining(net->is_training()) { net->eval(); }
  ~EvalModeScope() { net->train(wasTraining); }
  LeNet5& net;
  bool wasTraining;
};

}  // namespace

EvalResult evaluate(Model& model, Dataset& data, int64_t batchSize, const Normalization& normalization,
                    const std::atomic<bool>* cancel) {
  EvalModeScope evalMode(model.net());
  torch::InferenceMode inference;
  const auto device = model.device();
  const int64_t classes = model.numClasses();
  auto [images, labels] = data.on(device);
  const int64_t total = data.size();
  auto lossSum = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
  auto confusion = torch::zeros({classes * classes}, torch::TensorOptions().dtype(torch::kInt64).device(device));
  for (int64_t start = 0; start < total; start += batchSize) {
    throwIfCancelled(cancel, "during evaluation");
    const int64_t end = std::min(total, start + batchSize);
    auto x = normalizePixels(images.slice(0, start, end), normalization);
    auto y = labels.slice(0, start, end);
    auto logits = model.net()->forward(x);
    lossSum += torch::nn::functional::cross_entropy(
                   logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                   .to(torch::kFloat64);
    confusion += torch::bincount(y * classes + logits.argmax(1), {}, classes * classes);
  }
  EvalResult result;
  result.total = total;
  result.numClasses = classes;
  auto confusionCpu = confusion.to(torch::kCPU);
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
    torch::NoGradGuard noGrad;
    params.copy_(lastGood);
  };

  model.net()->train();
  for (int64_t epoch = options.initialEpoch + 1; epoch <= options.initialEpoch + options.epochs; ++epoch) {
    const auto epochStart = Clock::now();
    auto order = options.shuffle ? torch::randperm(total, seededGenerator(epochSeed(options.seed, epoch)), torch::kInt64)
                                 : torch::arange(total, torch::kInt64);
    order = order.to(device);
    auto lossSum = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
    auto windowLoss = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
    int64_t windowFirstBatch = 1;
    for (int64_t batch = 1; batch <= batches; ++batch) {
      throwIfCancelled(hooks.cancel, "at epoch " + std::to_string(epoch) + ", batch " + std::to_string(batch));
      auto index = order.slice(0, (batch - 1) * options.batchSize, std::min(total, batch * options.batchSize));
      auto x = normalizePixels(images.index_select(0, index), options.normalization);
      auto y = labels.index_select(0, index);
      model.flatGradients().zero_();
      auto loss = torch::nn::functional::cross_entropy(model.net()->forward(x), y);
      windowLoss += loss.detach().to(torch::kFloat64);
      const bool lastBatch = batch == batches;
      if (onCpu || batch % checkEvery == 0 || lastBatch) {
        const double value = windowLoss.item<double>();
        if (!std::isfinite(value)) {
          restoreLastGood();
          if (options.stopOnNonFiniteLoss) {
            const std::string where = windowFirstBatch == batch ? "batch " + std::to_string(batch)
                                                                : "batches " + std::to_string(windowFirstBatch) + "-" + std::to_string(batch);
            throw NativeError("ERR_LENET5_NON_FINITE_LOSS",
                              "The training loss became " + std::to_string(value) + " at epoch " + std::to_string(epoch) + ", " +
                                  where + ". The last weights that gave a finite loss are kept. Lower the learning "
                                  "rate, or check the data for extreme values.");
          }
          if (hooks.onNonFiniteSkipped) hooks.onNonFiniteSkipped(epoch, batch);
          windowLoss.zero_();
          windowFirstBatch = batch + 1;
          continue;
        }
        // The weights the window started from gave finite losses: they are the new fallback.
        torch::NoGradGuard noGrad;
        lastGood.copy_(onCpu ? params : windowStartParams);
        lossSum += windowLoss;
        windowLoss.zero_();
        windowFirstBatch = batch + 1;
      }
      loss.backward();
      optimizer.step(model);
      if (!onCpu && batch % checkEvery == 0) {
        torch::NoGradGuard noGrad;
        windowStartParams.copy_(params);
      }
      if (hooks.onBatch && options.batchEventInterval > 0 && (batch % options.batchEventInterval == 0 || lastBatch)) {
        const double seen = static_cast<double>(std::min(total, batch * options.batchSize));
        hooks.onBatch({epoch, batch, batches, (lossSum + windowLoss).item<double>() / static_cast<double>(batch),
                       seen / secondsSince(epochStart)});
      }
    }
    const double trainSeconds = secondsSince(epochStart);
    EpochEvent event{epoch, lossSum.item<double>() / static_cast<double>(batches), validation != nullptr, {}, 0,
                     static_cast<double>(total) / trainSeconds};
    if (validation != nullptr) {
      event.validation = evaluate(model, *validation, options.evalBatchSize, options.normalization, hooks.cancel);
    }
    event.seconds = secondsSince(epochStart);
    if (hooks.onEpoch) hooks.onEpoch(event);
  }
  releaseFreedTensorMemory();
}

torch::Tensor predictLogits(Model& model, const torch::Tensor& input) {
  EvalModeScope evalMode(model.net());
  torch::InferenceMode inference;
  return model.net()->forward(input.to(model.device())).to(torch::kCPU);
}

}  // namespace lenet5
