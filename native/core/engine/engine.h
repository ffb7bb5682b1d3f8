// The fused LeNet-5 CPU engine: a whole training step -- forward pass, cross-entropy, backward
// pass and optimizer update -- in two parallel regions, with no LibTorch operator in between.
//
// Threading: the batch is split into one contiguous share of images per thread (at least
// kMinImagesPerThread each); every thread runs its images through all layers and back and adds
// its weight gradients into its own buffer. The update region then gives each thread a slice of
// the parameters: it sums the threads' gradients in thread order (so results are bit-identical
// for a given thread count) and applies Adam or SGD in the same pass. Evaluation and prediction
// run the forward pass only, on chunks of images that idle threads take in turn (no shared
// state to sum, so results do not depend on which thread took which chunk), on a team the engine
// keeps between calls (inferencePool).
//
// Kernels and per-layer costs: kernels.h and the .inl files. This class is plain C++ (no
// LibTorch types); trainer.cc and optimizer.cc connect it to the model, the data and the
// optimizer state.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "kernels.h"
#include "worker_pool.h"

namespace lenet5::engine {

class Engine {
 public:
  explicit Engine(int classes);

  const Kernels& kernels() const { return kernels_; }
  int64_t parameterCount() const { return layout_.total; }

  // Gradients of the mean cross-entropy over `count` images (left in the threads' buffers for
  // step()); returns the summed loss.
  double lossAndGradients(WorkerPool& pool, const float* params, const ImageSource& source, const int64_t* labels,
                          int64_t count);
  // Sums the gradients of the last lossAndGradients() into plan.gradientOut and applies the
  // optimizer (plan.params, its state and scalars prepared by the caller). Nothing before the
  // first lossAndGradients().
  void step(WorkerPool& pool, UpdatePlan plan);
  // Logits of `count` images, row by row. A null pool runs on the calling thread.
  void forward(WorkerPool* pool, const float* params, const ImageSource& source, int64_t count, float* logits);
  // The team for forward passes (evaluate, predict): kept between calls so a call starts no
  // thread, its threads asleep while idle; rebuilt when the thread count changes.
  WorkerPool& inferencePool(int threads);
  // Summed loss and argmax of `count` labelled images, in chunks of 64 images (of `batchSize` when
  // that is smaller) that the threads take in turn; a chunk may span two batches. Once *stop is
  // set the chunks not yet started are skipped (the result is then incomplete).
  double lossAndPredictions(WorkerPool& pool, const float* params, const ImageSource& source, const int64_t* labels,
                            int64_t count, int64_t batchSize, int64_t* predicted, const std::atomic<bool>* stop);

 private:
  struct ThreadState {
    std::unique_ptr<char[], void (*)(void*)> workspace{nullptr, nullptr};
    std::vector<float> gradients;
  };
  // Thread t's scratch memory (and, for training, its gradient buffer), allocated on first use.
  ThreadState& state(int thread, bool withGradients);
  // Runs work(thread, begin, end, chunk) for consecutive chunks of `chunkImages` images (the last
  // may be shorter), each chunk on whichever thread takes it next.
  template <typename Work>
  void forEachChunk(WorkerPool& pool, int64_t count, int64_t chunkImages, Work work);
  // How many threads share a training batch of `count` images, and thread t's share.
  int threadsFor(const WorkerPool& pool, int64_t count) const;
  static int64_t shareBegin(int64_t count, int threads, int t) { return count * t / threads; }

  const Kernels& kernels_;
  ParameterLayout layout_;
  std::vector<ThreadState> threads_;
  int lastThreads_ = 0;
  std::unique_ptr<WorkerPool> inferencePool_;
};

}  // namespace lenet5::engine
