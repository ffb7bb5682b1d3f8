#include "worker_pool.h"

#include <chrono>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace lenet5::engine {
namespace {

// How long a thread polls before it sleeps or yields: longer than the serial part of a training
// step (a few microseconds), far shorter than anything JavaScript would notice.
constexpr auto kSpin = std::chrono::microseconds(50);

inline void relax() {
#if defined(__x86_64__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// Polls `done` for up to kSpin; true if it became true.
template <typename Done>
bool spinUntil(Done done) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (int i = 0;; ++i) {
    if (done()) return true;
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > deadline) return false;
    relax();
  }
}

}  // namespace

WorkerPool::WorkerPool(int size) {
  try {
    for (int i = 1; i < size; ++i) workers_.emplace_back([this, i] { work(i); });
  } catch (...) {
    stop();  // the threads that did start, before the members they use go away
    throw;
  }
}

WorkerPool::~WorkerPool() { stop(); }

void WorkerPool::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& worker : workers_) worker.join();
}

void WorkerPool::run(const std::function<void(int)>& task) {
  if (workers_.empty()) {
    task(0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    task_ = &task;
    pending_.store(static_cast<int>(workers_.size()));
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  task(0);
  auto allDone = [this] { return pending_.load(std::memory_order_acquire) == 0; };
  while (!spinUntil(allDone)) std::this_thread::yield();
}

void WorkerPool::work(int index) {
  uint64_t seen = 0;
  for (;;) {
    auto started = [this, seen] { return generation_.load(std::memory_order_acquire) != seen; };
    if (!spinUntil(started)) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, started);
    }
    const std::function<void(int)>* task;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
      seen = generation_.load();
      task = task_;
    }
    (*task)(index);
    pending_.fetch_sub(1, std::memory_order_release);
  }
}

}  // namespace lenet5::engine
