// A labelled image set held natively as uint8 (N x 28 x 28) plus int64 labels. Batches are
// gathered and normalised here, so nothing crosses into JavaScript per batch.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

namespace lenet5 {

// ToTensor() then Normalize(mean, std), as the seed's torchvision pipeline does (values from TypeScript).
struct Normalization {
  double mean{};
  double std{};
};

// uint8 pixels [N, 28, 28] (or [N, 1, 28, 28]) -> float [N, 1, 28, 28] on the same device.
at::Tensor normalizePixels(const at::Tensor& pixels, const Normalization& normalization);

class Dataset {
 public:
  Dataset(at::Tensor images, at::Tensor labels);

  int64_t size() const { return labels_.size(0); }
  // The whole dataset on `device`, copied there once and kept (uint8 stays small: 47 MB for 60k).
  std::pair<at::Tensor, at::Tensor> on(const c10::Device& device);
  std::shared_ptr<Dataset> subset(const at::Tensor& indices) const;
  // Reproducible random split: the first `firstCount` shuffled items, then the rest.
  std::pair<std::shared_ptr<Dataset>, std::shared_ptr<Dataset>> split(int64_t firstCount, uint64_t seed) const;
  int64_t maxLabel() const;
  // Copies items [start, start + count) into `images` (count x 784 bytes) and `labels` (count bytes).
  void copyOut(int64_t start, int64_t count, uint8_t* images, uint8_t* labels) const;

 private:
  at::Tensor images_;  // uint8 [N, 28, 28], CPU
  at::Tensor labels_;  // int64 [N], CPU
  std::mutex cacheMutex_;
  std::map<std::string, std::pair<at::Tensor, at::Tensor>> deviceCopies_;
};

// A CPU generator seeded for one purpose, so runs with the same seed repeat bit for bit.
at::Generator seededGenerator(uint64_t seed);

}  // namespace lenet5
