#include "job.h"

#include <ATen/Parallel.h>

#include <map>
#include <mutex>
#include <optional>

#include "errors.h"

namespace lenet5::js {
namespace {

// Jobs whose thread has not been joined yet. Whoever erases a job from here joins its thread.
std::mutex registryMutex;
std::map<Job*, std::shared_ptr<Job>> registry;

std::shared_ptr<Job> takeFromRegistry(Job* job) {
  std::lock_guard<std::mutex> lock(registryMutex);
  auto found = registry.find(job);
  if (found == registry.end()) return nullptr;
  auto owned = found->second;
  registry.erase(found);
  return owned;
}

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
  job->thread_ = std::thread([job, work = std::move(work)] {
    at::init_num_threads();  // OpenMP thread counts are per thread: apply the process-wide setting here
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
  if (auto owned = takeFromRegistry(this)) {
    if (thread_.joinable()) thread_.join();
  }
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

void Job::stopAll(napi_env env) {
  std::vector<std::shared_ptr<Job>> stopping;
  {
    std::lock_guard<std::mutex> lock(registryMutex);
    for (auto it = registry.begin(); it != registry.end();) {
      if (env == nullptr || it->second->env_ == env) {
        stopping.push_back(it->second);
        it = registry.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& job : stopping) job->cancel_->store(true);
  for (auto& job : stopping) {
    if (job->thread_.joinable()) job->thread_.join();
  }
}

}  // namespace lenet5::js
