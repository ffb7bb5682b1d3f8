// The training and evaluation loops (the seed's, in C++): batches are gathered from the native
// dataset, normalised, and fed to the model; only progress events leave the loop.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include <ATen/core/Tensor.h>

#include "dataset.h"
#include "model.h"
#include "optimizer.h"

namespace lenet5 {

// Filled in by native/js from options src/model.ts validated and defaulted (the defaults live there).
struct TrainOptions {
  int64_t epochs{};
  int64_t batchSize{};
  bool shuffle{};
  uint64_t seed{};
  int64_t initialEpoch{};        // epochs already done; this run's epochs are numbered from initialEpoch + 1
  int64_t batchEventInterval{};  // report every N batches; 0 = no batch events
  bool stopOnNonFiniteLoss{};    // false: skip the offending batch and warn
  int64_t evalBatchSize{};
  Normalization normalization;
};

struct BatchEvent {
  int64_t epoch, batch, batches;
  double loss;  // mean training loss of the epoch so far
  double imagesPerSecond;
};

struct EvalResult {
  double loss = 0;  // mean cross-entropy per image
  int64_t correct = 0, total = 0;
  int64_t numClasses = 0;
  std::vector<int64_t> confusion;  // numClasses x numClasses, row = true class, column = predicted
};

struct EpochEvent {
  int64_t epoch;
  double trainLoss;
  bool hasValidation;
  EvalResult validation;
  double seconds, imagesPerSecond;
};

struct TrainHooks {
  std::function<void(const BatchEvent&)> onBatch;
  std::function<void(const EpochEvent&)> onEpoch;
  std::function<void(int64_t epoch, int64_t batch)> onNonFiniteSkipped;
  const std::atomic<bool>* cancel = nullptr;
};

void train(Model& model, Optimizer& optimizer, Dataset& data, Dataset* validation, const TrainOptions& options,
           const TrainHooks& hooks);
EvalResult evaluate(Model& model, Dataset& data, int64_t batchSize, const Normalization& normalization,
                    const std::atomic<bool>* cancel);
// The mean cross-entropy of already-normalised float input [N, 1, 28, 28] with `labels`; leaves
// the gradients in the model's flat gradient buffer. No optimizer step (for checks and tests).
double lossAndGradients(Model& model, const at::Tensor& input, const at::Tensor& labels);
// Images to predict: raw uint8 pixels (normalised here) or already-normalised floats, count x 28 x 28.
struct PredictInput {
  const uint8_t* pixels = nullptr;
  const float* normalized = nullptr;
  int64_t count = 0;
  Normalization normalization;
};
// Where predict() writes, in CPU memory: the logits and the softmax probabilities (count x
// numClasses each) and every image's most likely class (its first maximum; -1 where the logits
// are not finite, so no class can be named).
struct PredictOutput {
  float* logits = nullptr;
  float* probabilities = nullptr;
  int32_t* classes = nullptr;
};
void predict(Model& model, const PredictInput& input, const PredictOutput& output);
// predict()'s softmax, for logits computed elsewhere (the int8 model's): each row's probabilities in
// double (then rounded to float) and its first maximum; a row with NaN or an infinite logit gets class -1.
void softmaxRows(const float* logits, int64_t rows, int64_t classes, float* probabilities, int32_t* best);

}  // namespace lenet5
