// A LeNet5 on one device, with all parameters (and their gradients) living in one flat buffer,
// so the optimizer updates 61,706 floats with a handful of ops instead of ten per-tensor loops.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "engine/engine.h"
#include "lenet.h"

namespace lenet5 {

struct ParameterSlot {
  std::string name;  // PyTorch state_dict key, e.g. "conv1.weight"
  std::vector<int64_t> shape;
  int64_t offset = 0;  // into the flat buffer
  int64_t numel = 0;
};

// What computes training steps, evaluation and predictions on the CPU: the fused engine
// (native/core/engine/, the default) or LibTorch's operators (the reference; always used on GPUs).
enum class ComputeEngine { Fused, LibTorch };

class Model {
 public:
  Model(int64_t numClasses, const c10::Device& device);

  void to(const c10::Device& device);
  const c10::Device& device() const { return device_; }
  int64_t numClasses() const { return net_.numClasses(); }
  LeNet5& net() { return net_; }

  const std::vector<ParameterSlot>& slots() const { return slots_; }
  at::Tensor& flatParameters() { return flatParameters_; }
  at::Tensor& flatGradients() { return flatGradients_; }
  // Named CPU copies of the parameters, detached: what a state_dict holds.
  std::vector<std::pair<std::string, at::Tensor>> stateDict() const;
  // Copies float32 values (already checked for names and shapes) into parameter `slot`.
  void setParameter(size_t slot, const at::Tensor& values);

  void setComputeEngine(ComputeEngine engine) { computeEngine_ = engine; }
  ComputeEngine computeEngine() const { return computeEngine_; }
  bool usesFusedEngine() const {
    return computeEngine_ == ComputeEngine::Fused && device_.is_cpu() && numClasses() <= engine::kMaxClasses;
  }
  // The fused engine's scratch memory and kernels for this model, created on first use.
  engine::Engine& fusedEngine();

 private:
  void flatten();

  LeNet5 net_;
  c10::Device device_;
  std::vector<ParameterSlot> slots_;
  at::Tensor flatParameters_;
  at::Tensor flatGradients_;
  ComputeEngine computeEngine_ = ComputeEngine::Fused;
  std::unique_ptr<engine::Engine> fusedEngine_;
};

}  // namespace lenet5
