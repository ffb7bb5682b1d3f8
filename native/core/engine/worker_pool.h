// A fixed team of threads for the engine's parallel regions, one team per training or
// evaluation call. run(task) calls task(t) for every t in [0, size()) -- t = 0 on the calling
// thread -- and returns when all have finished: one fork and one join per region, nothing else.
// Between regions a worker spins for a few tens of microseconds (a training step's serial part is
// shorter) and then sleeps on a condition variable, so an idle team never holds a core while
// JavaScript or the HTTP server runs.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace lenet5::engine {

class WorkerPool {
 public:
  explicit WorkerPool(int size);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }
  // `task` must not throw.
  void run(const std::function<void(int)>& task);

 private:
  void work(int index);
  void stop();

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  const std::function<void(int)>* task_ = nullptr;
  bool stopping_ = false;
};

}  // namespace lenet5::engine
