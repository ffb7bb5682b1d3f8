// Runs one long operation (train, evaluate, predict) on a thread of the addon's own, kept between
// jobs, so it neither blocks the event loop nor holds one of libuv's four pool threads for minutes.
// Progress events and the result reach JS in order through a thread-safe function. Jobs still running when the process
// exits, or when a worker thread's environment is torn down, are cancelled and waited for first, so
// LibTorch is never torn down under a running loop.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <cstring>
#include <memory>
#include <vector>

#include <napi.h>

#include "../core/errors.h"

namespace lenet5::js {

class Job : public std::enable_shared_from_this<Job> {
 public:
  // Called on the JS thread with the progress callback (possibly undefined).
  using Event = std::function<void(Napi::Env, Napi::Value callback)>;
  // Runs on the job's thread; returns the function that builds the JS result on the JS thread.
  using Work = std::function<std::function<Napi::Value(Napi::Env)>(Job&)>;

  static Napi::Promise start(Napi::Env env, Napi::Value onProgress, std::shared_ptr<std::atomic<bool>> cancel,
                             Work work);

  // From the job's thread: queue an event for the JS thread. Never blocks.
  void post(Event event);
  const std::atomic<bool>* cancelFlag() const { return cancel_.get(); }

  // Cancels the jobs of `env` and waits until their work has returned (nullptr: all jobs, then the
  // job threads end). Used at exit and env teardown.
  static void stopAll(napi_env env);

 private:
  Job(Napi::Env env, std::shared_ptr<std::atomic<bool>> cancel) : env_(env), cancel_(std::move(cancel)) {}
  void finish(Napi::Env env, const std::function<Napi::Value(Napi::Env)>& result, const ErrorInfo* error);

  napi_env env_;
  std::shared_ptr<std::atomic<bool>> cancel_;
  Napi::ThreadSafeFunction tsfn_;
  std::unique_ptr<Napi::Promise::Deferred> deferred_;
  std::unique_ptr<Napi::ObjectReference> callbackError_;  // JS thread only
};

// Up to this many images per intra-op thread, a CPU predict (float or int8) runs on the JS thread
// with its model's team: about half a millisecond, while handing the work to a job thread and its
// result back costs 0.1-0.3 ms.
constexpr int64_t kInlinePredictImagesPerThread = 32;

// predict()'s input copied for a job thread (the JavaScript array may change once the call has
// returned): raw uint8 pixels or normalised floats, whichever the caller passed.
struct PixelsCopy {
  explicit PixelsCopy(const Napi::TypedArray& array);
  bool raw() const { return !pixels.empty(); }
  std::vector<uint8_t> pixels;
  std::vector<float> normalized;
};

// A job's result made into a JavaScript typed array on the JS thread.
template <typename Array, typename T>
Array copyToJs(Napi::Env env, const std::vector<T>& values) {
  auto array = Array::New(env, values.size());
  std::memcpy(array.Data(), values.data(), values.size() * sizeof(T));
  return array;
}

// predict()'s result (the float and the int8 model's), { logits, probabilities, classes } for `rows`
// images of `classes` classes: JavaScript arrays that a call on the JS thread writes in place...
struct PredictionArrays {
  PredictionArrays(Napi::Env env, size_t rows, size_t classes);
  Napi::Object toJs() const;
  Napi::Float32Array logits, probabilities;
  Napi::Int32Array classes;
};
// ...or memory of its own that a job thread writes, copied into JavaScript arrays on the JS thread.
struct PredictionBuffers {
  PredictionBuffers(size_t rows, size_t classes);
  Napi::Object toJs(Napi::Env env) const;
  std::vector<float> logits, probabilities;
  std::vector<int32_t> classes;
};

}  // namespace lenet5::js
