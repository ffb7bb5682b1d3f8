#include "engine.h"

#include <algorithm>
#include <cstdlib>

namespace lenet5::engine {
namespace {

// Fewer images than this per thread cost more in fork/join and gradient summing than they save.
constexpr int64_t kMinImagesPerThread = 8;

}  // namespace

Engine::Engine(int classes) : kernels_(selectKernels()), layout_(classes) {}

Engine::ThreadState& Engine::state(int thread) {
  if (static_cast<int>(threads_.size()) <= thread) threads_.resize(thread + 1);
  auto& s = threads_[thread];
  if (!s.workspace) {
    const size_t bytes = (kernels_.workspaceBytes(layout_.classes) + 63) / 64 * 64;
    s.workspace = {static_cast<char*>(std::aligned_alloc(64, bytes)), std::free};
    s.gradients.assign(layout_.total, 0.0f);
  }
  return s;
}

int Engine::threadsFor(const WorkerPool* pool, int64_t count) const {
  if (pool == nullptr) return 1;
  const int64_t useful = std::max<int64_t>(1, count / kMinImagesPerThread);
  return static_cast<int>(std::min<int64_t>(pool->size(), useful));
}

double Engine::lossAndGradients(WorkerPool& pool, const float* params, const ImageSource& source, const int64_t* labels,
                                int64_t count) {
  const int threads = threadsFor(&pool, count);
  for (int t = 0; t < threads; ++t) state(t);  // allocate outside the parallel region
  std::vector<double> losses(threads, 0.0);
  const float scale = 1.0f / static_cast<float>(count);
  pool.run([&](int t) {
    if (t >= threads) return;
    auto& s = threads_[t];
    std::fill(s.gradients.begin(), s.gradients.end(), 0.0f);
    losses[t] = kernels_.trainImages(params, s.gradients.data(), layout_.classes, source, labels,
                                     shareBegin(count, threads, t), shareBegin(count, threads, t + 1), scale,
                                     s.workspace.get());
  });
  lastThreads_ = threads;
  double loss = 0;
  for (double part : losses) loss += part;
  return loss;
}

void Engine::step(WorkerPool& pool, UpdatePlan plan) {
  std::vector<const float*> gradients;
  for (int t = 0; t < lastThreads_; ++t) gradients.push_back(threads_[t].gradients.data());
  plan.threadGradients = gradients.data();
  plan.threadCount = lastThreads_;
  const int threads = pool.size();
  // Slices of whole cache lines, so no two threads write the same line.
  const int64_t lines = (layout_.total + 15) / 16;
  pool.run([&](int t) {
    const int64_t begin = std::min(layout_.total, lines * t / threads * 16);
    const int64_t end = std::min(layout_.total, lines * (t + 1) / threads * 16);
    kernels_.update(plan, begin, end);
  });
}

void Engine::forward(WorkerPool* pool, const float* params, const ImageSource& source, int64_t count, float* logits) {
  const int threads = threadsFor(pool, count);
  for (int t = 0; t < threads; ++t) state(t);
  auto task = [&](int t) {
    if (t >= threads) return;
    const int64_t begin = shareBegin(count, threads, t);
    kernels_.forwardImages(params, layout_.classes, source, begin, shareBegin(count, threads, t + 1),
                           logits + begin * layout_.classes, threads_[t].workspace.get());
  };
  if (pool == nullptr) {
    task(0);
  } else {
    pool->run(task);
  }
}

double Engine::lossAndPredictions(WorkerPool& pool, const float* params, const ImageSource& source,
                                  const int64_t* labels, int64_t count, int64_t* predicted) {
  const int threads = threadsFor(&pool, count);
  for (int t = 0; t < threads; ++t) state(t);
  std::vector<double> losses(threads, 0.0);
  pool.run([&](int t) {
    if (t >= threads) return;
    losses[t] = kernels_.evaluateImages(params, layout_.classes, source, labels, shareBegin(count, threads, t),
                                        shareBegin(count, threads, t + 1), predicted, threads_[t].workspace.get());
  });
  double loss = 0;
  for (double part : losses) loss += part;
  return loss;
}

}  // namespace lenet5::engine
