#include "dataset.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/ops/randperm.h>

#include <cstring>

namespace lenet5 {

at::Tensor normalizePixels(const at::Tensor& pixels, const Normalization& normalization) {
  // (x / 255 - mean) / std, folded into one multiply-add.
  const double scale = 1.0 / (255.0 * normalization.std);
  const double shift = -normalization.mean / normalization.std;
  return pixels.to(at::kFloat).mul_(scale).add_(shift).view({-1, 1, 28, 28});
}

Dataset::Dataset(at::Tensor images, at::Tensor labels) : images_(std::move(images)), labels_(std::move(labels)) {}

std::pair<at::Tensor, at::Tensor> Dataset::on(const c10::Device& device) {
  if (device.is_cpu()) return {images_, labels_};
  std::lock_guard<std::mutex> lock(cacheMutex_);
  auto key = device.str();
  auto found = deviceCopies_.find(key);
  if (found == deviceCopies_.end()) {
    found = deviceCopies_.emplace(key, std::make_pair(images_.to(device), labels_.to(device))).first;
  }
  return found->second;
}

std::shared_ptr<Dataset> Dataset::subset(const at::Tensor& indices) const {
  return std::make_shared<Dataset>(images_.index_select(0, indices), labels_.index_select(0, indices));
}

std::pair<std::shared_ptr<Dataset>, std::shared_ptr<Dataset>> Dataset::split(int64_t firstCount, uint64_t seed) const {
  auto generator = seededGenerator(seed);
  auto order = at::randperm(size(), generator, at::kLong);
  return {subset(order.slice(0, 0, firstCount)), subset(order.slice(0, firstCount))};
}

int64_t Dataset::maxLabel() const { return size() == 0 ? -1 : labels_.max().item<int64_t>(); }

void Dataset::copyOut(int64_t start, int64_t count, uint8_t* images, uint8_t* labels) const {
  auto imageSlice = images_.slice(0, start, start + count).contiguous();
  std::memcpy(images, imageSlice.data_ptr<uint8_t>(), static_cast<size_t>(imageSlice.numel()));
  auto labelSlice = labels_.slice(0, start, start + count).to(at::kByte).contiguous();
  std::memcpy(labels, labelSlice.data_ptr<uint8_t>(), static_cast<size_t>(count));
}

at::Generator seededGenerator(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

}  // namespace lenet5
