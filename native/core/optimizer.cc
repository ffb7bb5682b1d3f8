#include "optimizer.h"

#include <cmath>

#include <ATen/core/grad_mode.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/maximum.h>
#include <ATen/ops/sqrt.h>
#include <ATen/ops/zeros_like.h>

#include "errors.h"

namespace lenet5 {

void Optimizer::bind(uint64_t modelId) {
  if (boundModel_ != 0 && boundModel_ != modelId) {
    throw NativeError("ERR_LENET5_OPTIMIZER_IN_USE",
                      "This optimizer already holds state for another model. Create one optimizer per model "
                      "(new Adam(...) for each).");
  }
  boundModel_ = modelId;
}

// State buffers follow the model: created as zeros on first use, moved when the model moves.
at::Tensor& Optimizer::buffer(const std::string& name, const at::Tensor& like) {
  auto& tensor = buffers_[name];
  if (!tensor.defined()) {
    tensor = at::zeros_like(like);
  } else if (tensor.device() != like.device()) {
    tensor = tensor.to(like.device());
  }
  return tensor;
}

void Optimizer::step(Model& model) {
  at::NoGradGuard noGrad;
  auto& params = model.flatParameters();
  const auto& grads = model.flatGradients();
  ++steps_;
  if (options_.kind == OptimizerOptions::Kind::Adam) {
    adamStep(params, grads);
  } else {
    sgdStep(params, grads);
  }
}

engine::UpdatePlan Optimizer::fusedStep(Model& model) {
  const auto& o = options_;
  auto& params = model.flatParameters();
  ++steps_;
  engine::UpdatePlan plan;
  plan.params = params.data_ptr<float>();
  plan.gradientOut = model.flatGradients().data_ptr<float>();
  plan.weightDecay = static_cast<float>(o.weightDecay);
  if (o.kind == OptimizerOptions::Kind::Adam) {
    plan.kind = engine::UpdatePlan::Kind::Adam;
    plan.expAvg = buffer("exp_avg", params).data_ptr<float>();
    plan.expAvgSq = buffer("exp_avg_sq", params).data_ptr<float>();
    if (o.amsgrad) plan.maxExpAvgSq = buffer("max_exp_avg_sq", params).data_ptr<float>();
    const double step = static_cast<double>(steps_);
    plan.beta2 = static_cast<float>(o.beta2);
    plan.oneMinusBeta1 = static_cast<float>(1 - o.beta1);
    plan.oneMinusBeta2 = static_cast<float>(1 - o.beta2);
    plan.stepSize = static_cast<float>(o.lr / (1 - std::pow(o.beta1, step)));
    plan.biasCorrection2Sqrt = static_cast<float>(std::sqrt(1 - std::pow(o.beta2, step)));
    plan.eps = static_cast<float>(o.eps);
  } else {
    plan.kind = engine::UpdatePlan::Kind::Sgd;
    plan.lr = static_cast<float>(o.lr);
    if (o.momentum != 0) {
      plan.momentumFirstStep = !buffers_["momentum_buffer"].defined();
      plan.momentumBuffer = buffer("momentum_buffer", params).data_ptr<float>();
      plan.momentum = static_cast<float>(o.momentum);
      plan.oneMinusDampening = static_cast<float>(1 - o.dampening);
      plan.nesterov = o.nesterov;
    }
  }
  return plan;
}

void Optimizer::adamStep(at::Tensor& params, const at::Tensor& grads) {
  const auto& o = options_;
  auto grad = o.weightDecay != 0 ? grads.add(params, o.weightDecay) : grads;
  auto& expAvg = buffer("exp_avg", params);
  auto& expAvgSq = buffer("exp_avg_sq", params);
  expAvg.lerp_(grad, 1 - o.beta1);
  expAvgSq.mul_(o.beta2).addcmul_(grad, grad, 1 - o.beta2);
  const double step = static_cast<double>(steps_);
  const double biasCorrection1 = 1 - std::pow(o.beta1, step);
  const double biasCorrection2Sqrt = std::sqrt(1 - std::pow(o.beta2, step));
  const double stepSize = o.lr / biasCorrection1;
  if (!scratch_.defined() || scratch_.device() != params.device()) scratch_ = at::empty_like(params);
  if (o.amsgrad) {
    auto& maxExpAvgSq = buffer("max_exp_avg_sq", params);
    at::maximum_out(maxExpAvgSq, maxExpAvgSq, expAvgSq);
    at::sqrt_out(scratch_, maxExpAvgSq);
  } else {
    at::sqrt_out(scratch_, expAvgSq);
  }
  scratch_.div_(biasCorrection2Sqrt).add_(o.eps);
  params.addcdiv_(expAvg, scratch_, -stepSize);
}

void Optimizer::sgdStep(at::Tensor& params, const at::Tensor& grads) {
  const auto& o = options_;
  auto direction = o.weightDecay != 0 ? grads.add(params, o.weightDecay) : grads;
  if (o.momentum != 0) {
    auto& momentumBuffer = buffers_["momentum_buffer"];
    if (!momentumBuffer.defined()) {
      momentumBuffer = direction.clone();
    } else {
      if (momentumBuffer.device() != params.device()) momentumBuffer = momentumBuffer.to(params.device());
      momentumBuffer.mul_(o.momentum).add_(direction, 1 - o.dampening);
    }
    direction = o.nesterov ? direction.add(momentumBuffer, o.momentum) : momentumBuffer;
  }
  params.add_(direction, -o.lr);
}

void Optimizer::loadState(int64_t steps, std::map<std::string, at::Tensor> buffers) {
  steps_ = steps;
  buffers_ = std::move(buffers);
}

}  // namespace lenet5
