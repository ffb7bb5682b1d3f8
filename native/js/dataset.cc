#include "dataset.h"

#include <ATen/ops/from_blob.h>

#include "../core/dataset.h"
#include "../core/lenet.h"
#include "addon_data.h"
#include "errors.h"

namespace lenet5::js {

Napi::Function DatasetWrap::define(Napi::Env env) {
  return DefineClass(
      env, "NativeDataset",
      {InstanceMethod("size", &DatasetWrap::size), InstanceMethod("maxLabel", &DatasetWrap::maxLabel),
       InstanceMethod("split", &DatasetWrap::split), InstanceMethod("toArrays", &DatasetWrap::toArrays)});
}

// The TypeScript layer has checked the arrays' lengths; an External constructs from an existing core dataset.
DatasetWrap::DatasetWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DatasetWrap>(info) {
  if (info[0].IsExternal()) {
    dataset_ = *info[0].As<Napi::External<std::shared_ptr<Dataset>>>().Data();
    return;
  }
  guarded(info.Env(), [&] {
    auto images = info[0].As<Napi::Uint8Array>();
    auto labels = info[1].As<Napi::Uint8Array>();
    const int64_t count = info[2].As<Napi::Number>().Int64Value();
    requireElementLength(images, static_cast<size_t>(count * kImageSide * kImageSide), "images");
    requireElementLength(labels, static_cast<size_t>(count), "labels");
    auto imageTensor = at::from_blob(images.Data(), {count, kImageSide, kImageSide}, at::kByte).clone();
    auto labelTensor = at::from_blob(labels.Data(), {count}, at::kByte).to(at::kLong);
    dataset_ = std::make_shared<Dataset>(std::move(imageTensor), std::move(labelTensor));
  });
}

Napi::Object DatasetWrap::wrap(Napi::Env env, std::shared_ptr<Dataset> dataset) {
  auto external =
      Napi::External<std::shared_ptr<Dataset>>::New(env, new std::shared_ptr<Dataset>(std::move(dataset)),
                                                    [](Napi::Env, std::shared_ptr<Dataset>* data) { delete data; });
  return addonData(env).datasetConstructor.New({external});
}

Napi::Value DatasetWrap::size(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(dataset_->size()));
}

Napi::Value DatasetWrap::maxLabel(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(dataset_->maxLabel()));
}

// split(firstCount, seed) -> [first, rest]
Napi::Value DatasetWrap::split(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    const int64_t firstCount = info[0].As<Napi::Number>().Int64Value();
    const uint64_t seed = static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value());
    auto [first, rest] = dataset_->split(firstCount, seed);
    auto pair = Napi::Array::New(info.Env(), 2);
    pair.Set(0u, wrap(info.Env(), first));
    pair.Set(1u, wrap(info.Env(), rest));
    return pair;
  });
}

// toArrays(start, count) -> { images: Uint8Array (count x 784), labels: Uint8Array (count) }: copies.
Napi::Value DatasetWrap::toArrays(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    const int64_t start = info[0].As<Napi::Number>().Int64Value();
    const int64_t count = info[1].As<Napi::Number>().Int64Value();
    auto images = Napi::Uint8Array::New(info.Env(), static_cast<size_t>(count * kImageSide * kImageSide));
    auto labels = Napi::Uint8Array::New(info.Env(), static_cast<size_t>(count));
    dataset_->copyOut(start, count, images.Data(), labels.Data());
    auto arrays = Napi::Object::New(info.Env());
    arrays.Set("images", images);
    arrays.Set("labels", labels);
    return arrays;
  });
}

}  // namespace lenet5::js
