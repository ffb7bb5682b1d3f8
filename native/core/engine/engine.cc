#include "engine.h"

#include <algorithm>
#include <atomic>
#include <new>
#include <cstdlib>

namespace lenet5::engine {
namespace {

// Fewer images than this per thread cost more in fork/join and gradient summing than they save.
constexpr int64_t kMinImagesPerThread = 8;
// Forward passes hand out images in chunks of at most this many to whichever thread is free, so
// a thread that the OS deschedules on a busy machine delays one chunk, not half the work.
// Evaluation uses this size or its batch size, whichever is smaller: its summed loss is added in
// chunk order, so it does not depend on the thread count.
constexpr int64_t kChunkImages = 64;

}  // namespace

Engine::Engine(int classes) : kernels_(selectKernels()), layout_(classes) {}

Engine::ThreadState& Engine::state(int thread, bool withGradients) {
  if (static_cast<int>(threads_.size()) <= thread) threads_.resize(thread + 1);
  auto& s = threads_[thread];
  if (!s.workspace) {
    const size_t bytes = (kernels_.workspaceBytes(layout_.classes) + 63) / 64 * 64;
    std::unique_ptr<char[], void (*)(void*)> workspace{static_cast<char*>(std::aligned_alloc(64, bytes)), std::free};
    if (!workspace) throw std::bad_alloc();
    s.workspace = std::move(workspace);
  }
  if (withGradients && s.gradients.size() != static_cast<size_t>(layout_.total))
    s.gradients.assign(layout_.total, 0.0f);
  return s;
}

int Engine::threadsFor(const WorkerPool& pool, int64_t count) const {
  const int64_t useful = std::max<int64_t>(1, count / kMinImagesPerThread);
  return static_cast<int>(std::min<int64_t>(pool.size(), useful));
}

double Engine::lossAndGradients(WorkerPool& pool, const float* params, const ImageSource& source, const int64_t* labels,
                                int64_t count) {
  const int threads = threadsFor(pool, count);
  for (int t = 0; t < threads; ++t) state(t, true);  // allocate outside the parallel region
  std::vector<double> losses(threads, 0.0);
  const float scale = 1.0f / static_cast<float>(count);
  pool.run([&](int t) {
    if (t >= threads) return;
    auto& s = threads_[t];
    std::fill(s.gradients.begin(), s.gradients.end(), 0.0f);
    losses[t] =
        kernels_.trainImages(params, s.gradients.data(), layout_.classes, source, labels, shareBegin(count, threads, t),
                             shareBegin(count, threads, t + 1), scale, s.workspace.get());
  });
  lastThreads_ = threads;
  double loss = 0;
  for (double part : losses) loss += part;
  return loss;
}

void Engine::step(WorkerPool& pool, UpdatePlan plan) {
  if (lastThreads_ == 0) return;  // no gradients computed yet
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

WorkerPool& Engine::inferencePool(int threads) {
  if (!inferencePool_ || inferencePool_->size() != threads) {
    inferencePool_.reset();  // its threads end before new ones start
    inferencePool_ = std::make_unique<WorkerPool>(threads);
  }
  return *inferencePool_;
}

void Engine::forward(WorkerPool* pool, const float* params, const ImageSource& source, int64_t count, float* logits) {
  if (pool == nullptr) {
    kernels_.forwardImages(params, layout_.classes, source, 0, count, logits, state(0, false).workspace.get());
    return;
  }
  // Each image's logits are the same whatever chunk it is in, so a batch smaller than
  // kChunkImages per thread is split evenly over the threads.
  const int64_t perThread = (count + pool->size() - 1) / pool->size();
  forEachChunk(*pool, count, std::min(kChunkImages, perThread), [&](int t, int64_t begin, int64_t end, int64_t) {
    kernels_.forwardImages(params, layout_.classes, source, begin, end, logits + begin * layout_.classes,
                           threads_[t].workspace.get());
  });
}

double Engine::lossAndPredictions(WorkerPool& pool, const float* params, const ImageSource& source,
                                  const int64_t* labels, int64_t count, int64_t batchSize, int64_t* predicted,
                                  const std::atomic<bool>* stop) {
  const int64_t chunkImages = std::min(batchSize, kChunkImages);
  std::vector<double> losses((count + chunkImages - 1) / chunkImages, 0.0);
  forEachChunk(pool, count, chunkImages, [&](int t, int64_t begin, int64_t end, int64_t chunk) {
    if (stop != nullptr && stop->load(std::memory_order_relaxed)) return;  // the rest is skipped, a chunk at a time
    losses[chunk] = kernels_.evaluateImages(params, layout_.classes, source, labels, begin, end, predicted,
                                            threads_[t].workspace.get());
  });
  double loss = 0;
  for (double part : losses) loss += part;  // in chunk order: the same sum whichever thread ran a chunk
  return loss;
}

template <typename Work>
void Engine::forEachChunk(WorkerPool& pool, int64_t count, int64_t chunkImages, Work work) {
  for (int t = 0; t < pool.size(); ++t) state(t, false);
  const int64_t chunks = (count + chunkImages - 1) / chunkImages;
  if (chunks <= 1) {  // waking the team for one chunk (evaluate at a small batch size) costs more than it saves
    if (count > 0) work(0, 0, count, 0);
    return;
  }
  std::atomic<int64_t> next{0};
  pool.run([&](int t) {
    for (int64_t chunk = next.fetch_add(1); chunk < chunks; chunk = next.fetch_add(1)) {
      work(t, chunk * chunkImages, std::min(count, (chunk + 1) * chunkImages), chunk);
    }
  });
}

}  // namespace lenet5::engine
