// Adam and SGD with PyTorch's update rules (torch/optim/adam.py and sgd.py, single-tensor path),
// applied to the model's flat parameter buffer. Its state is kept under Python's names, so
// checkpoints move between Node and Python (serialization.cc writes the state_dict layout).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <ATen/core/Tensor.h>

#include "engine/kernels.h"
#include "model.h"

namespace lenet5 {

// Filled in by native/js from options src/optim.ts validated and defaulted (the defaults live there).
struct OptimizerOptions {
  enum class Kind { Adam, Sgd } kind = Kind::Adam;
  double lr{};
  double weightDecay{};
  // Adam
  double beta1{}, beta2{}, eps{};
  bool amsgrad{};
  // SGD
  double momentum{}, dampening{};
  bool nesterov{};
};

class Optimizer {
 public:
  explicit Optimizer(OptimizerOptions options) : options_(options) {}

  const OptimizerOptions& options() const { return options_; }
  void setOptions(const OptimizerOptions& options) { options_ = options; }
  int64_t steps() const { return steps_; }

  // Claims the optimizer for one model (its state only makes sense for those parameters).
  void bind(uint64_t modelId);
  void step(Model& model);
  // The same step for the fused engine: counts it, makes sure the state buffers exist (CPU) and
  // returns the update's scalars and state pointers; the engine sums the gradients and applies it.
  engine::UpdatePlan fusedStep(Model& model);

  // Flat state buffers covering all parameters in order, under Python's state names (exp_avg, ...).
  const std::map<std::string, at::Tensor>& buffers() const { return buffers_; }
  // Replaces the state: `buffers` maps a Python state name (exp_avg, momentum_buffer, ...) to a
  // flat float32 CPU tensor covering all parameters in order.
  void loadState(int64_t steps, std::map<std::string, at::Tensor> buffers);

 private:
  at::Tensor& buffer(const std::string& name, const at::Tensor& like);
  void adamStep(at::Tensor& params, const at::Tensor& grads);
  void sgdStep(at::Tensor& params, const at::Tensor& grads);

  OptimizerOptions options_;
  uint64_t boundModel_ = 0;
  int64_t steps_ = 0;
  std::map<std::string, at::Tensor> buffers_;
  at::Tensor scratch_;
};

}  // namespace lenet5
