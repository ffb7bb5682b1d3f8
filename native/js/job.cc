#include "job.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <optional>
#include <vector>

#include "errors.h"

namespace lenet5::js {
namespace {

// Threads that run jobs, kept and reused: starting a thread costs about 160 us here (LibTorch's
// thread-locals) and applying the intra-op setting to it 90 us more, which is more than the
// forward pass of a 64-image predict. A job never waits for another: when every thread is busy
// (a long training run), a new one starts.
class JobThreads {
 public:
  void submit(std::function<void()> task) {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(task));
    if (static_cast<int>(queue_.size()) > idle_) {
      threads_.emplace_back([this] { loop(); });
    } else {
      wake_.notify_one();
    }
  }

  // Ends the threads once the queue is empty (process exit: every job has been cancelled).
  void stop() {
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
      threads.swap(threads_);
    }
    wake_.notify_all();
    for (auto& thread : threads) thread.join();
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      ++idle_;
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      --idle_;
      if (queue_.empty()) return;  // stopping
      auto task = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> threads_;
  int idle_ = 0;
  bool stopping_ = false;
};

JobThreads& jobThreads() {
  static auto* threads = new JobThreads();  // never destroyed: stopAll(nullptr) ends its threads at exit
  return *threads;
}

// Jobs whose work has not returned yet; a job leaves when its work returns, and `finished` wakes
// whoever waits for it in stopAll.
std::mutex registryMutex;
std::condition_variable finished;
std::map<Job*, std::shared_ptr<Job>> registry;

}  // namespace

Napi::Promise Job::start(Napi::Env env, Napi::Value onProgress, std::shared_ptr<std::atomic<bool>> cancel, Work work) {
  auto job = std::shared_ptr<Job>(new Job(env, std::move(cancel)));
  job->deferred_ = std::make_unique<Napi::Promise::Deferred>(env);
  auto callback = onProgress.IsFunction() ? onProgress.As<Napi::Function>()
                                          : Napi::Function::New(env, [](const Napi::CallbackInfo&) {});
  job->tsfn_ = Napi::ThreadSafeFunction::New(env, callback, "lenet5-job", 0, 1);
  {
    std::lock_guard<std::mutex> lock(registryMutex);
    registry[job.get()] = job;
  }
  // The intra-op thread count (threads.set()) as this JS thread sees it; OpenMP keeps one per thread.
  const int threads = at::get_num_threads();
  jobThreads().submit([job, threads, work = std::move(work)] {
    if (at::get_num_threads() != threads) at::init_num_threads();  // applies the process-wide setting
    std::function<Napi::Value(Napi::Env)> result;
    std::optional<ErrorInfo> error;
    try {
      result = work(*job);
    } catch (const std::exception& e) { error = describeException(e); } catch (...) {
      error = ErrorInfo{"ERR_LENET5_NATIVE", "An unknown native error occurred."};
    }
    auto self = job;
    job->tsfn_.NonBlockingCall(
        [self, result, error](Napi::Env env, Napi::Function) { self->finish(env, result, error ? &*error : nullptr); });
    job->tsfn_.Release();
    {
      std::lock_guard<std::mutex> lock(registryMutex);
      registry.erase(job.get());
    }
    finished.notify_all();
  });
  return job->deferred_->Promise();
}

void Job::post(Event event) {
  auto self = shared_from_this();
  tsfn_.NonBlockingCall([self, event = std::move(event)](Napi::Env env, Napi::Function callback) {
    if (self->callbackError_) return;
    try {
      event(env, callback);
    } catch (const Napi::Error& error) {
      // A progress callback threw: stop the job and reject with that error.
      self->callbackError_ = std::make_unique<Napi::ObjectReference>(Napi::Persistent(error.Value()));
      self->cancel_->store(true);
    }
  });
}

void Job::finish(Napi::Env env, const std::function<Napi::Value(Napi::Env)>& result, const ErrorInfo* error) {
  Napi::HandleScope scope(env);
  if (callbackError_) {
    deferred_->Reject(callbackError_->Value());
    return;
  }
  if (error != nullptr) {
    deferred_->Reject(toJsError(env, *error).Value());
    return;
  }
  try {
    deferred_->Resolve(result(env));
  } catch (const Napi::Error& e) { deferred_->Reject(e.Value()); }
}

namespace {

Napi::Object predictionToJs(Napi::Env env, const Napi::Float32Array& logits, const Napi::Float32Array& probabilities,
                            const Napi::Int32Array& classes) {
  auto result = Napi::Object::New(env);
  result.Set("logits", logits);
  result.Set("probabilities", probabilities);
  result.Set("classes", classes);
  return result;
}

}  // namespace

PredictionArrays::PredictionArrays(Napi::Env env, size_t rows, size_t classes)
    : logits(Napi::Float32Array::New(env, rows * classes)),
      probabilities(Napi::Float32Array::New(env, rows * classes)),
      classes(Napi::Int32Array::New(env, rows)) {}

Napi::Object PredictionArrays::toJs() const { return predictionToJs(logits.Env(), logits, probabilities, classes); }

PredictionBuffers::PredictionBuffers(size_t rows, size_t classes)
    : logits(rows * classes), probabilities(rows * classes), classes(rows) {}

Napi::Object PredictionBuffers::toJs(Napi::Env env) const {
  return predictionToJs(env, copyToJs<Napi::Float32Array>(env, logits),
                        copyToJs<Napi::Float32Array>(env, probabilities), copyToJs<Napi::Int32Array>(env, classes));
}

PixelsCopy::PixelsCopy(const Napi::TypedArray& array) {
  if (array.TypedArrayType() == napi_uint8_array) {
    auto bytes = array.As<Napi::Uint8Array>();
    pixels.assign(bytes.Data(), bytes.Data() + bytes.ElementLength());
  } else {
    auto floats = array.As<Napi::Float32Array>();
    normalized.assign(floats.Data(), floats.Data() + floats.ElementLength());
  }
}

void Job::stopAll(napi_env env) {
  auto belongs = [env](const Job& job) { return env == nullptr || job.env_ == env; };
  {
    std::unique_lock<std::mutex> lock(registryMutex);
    for (auto& [raw, job] : registry) {
      if (belongs(*job)) job->cancel_->store(true);
    }
    finished.wait(lock, [&] {
      return std::none_of(registry.begin(), registry.end(), [&](const auto& entry) { return belongs(*entry.second); });
    });
  }
  if (env == nullptr) jobThreads().stop();
}

}  // namespace lenet5::js
