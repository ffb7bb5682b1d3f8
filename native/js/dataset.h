// JS wrapper of core::Dataset: new NativeDataset(images: Uint8Array, labels: Uint8Array, count).
#pragma once

#include <memory>

#include <napi.h>

namespace lenet5 {
class Dataset;
}  // namespace lenet5

namespace lenet5::js {

class DatasetWrap : public Napi::ObjectWrap<DatasetWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  explicit DatasetWrap(const Napi::CallbackInfo& info);
  const std::shared_ptr<Dataset>& dataset() const { return dataset_; }

 private:
  static Napi::Object wrap(Napi::Env env, std::shared_ptr<Dataset> dataset);
  Napi::Value size(const Napi::CallbackInfo& info);
  Napi::Value maxLabel(const Napi::CallbackInfo& info);
  Napi::Value split(const Napi::CallbackInfo& info);
  Napi::Value toArrays(const Napi::CallbackInfo& info);

  std::shared_ptr<Dataset> dataset_;
};

}  // namespace lenet5::js
