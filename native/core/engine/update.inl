// The optimizer step, fused with the reduction of the threads' gradients: one pass over each
// parameter reads the per-thread gradients (summed in thread order), the parameter and its
// optimizer state, and writes them back. Element-wise, so each thread updates its own slice.
// The float32 operation order follows PyTorch's single-tensor Adam/SGD kernels (lerp_, mul_ +
// addcmul_, sqrt / bias correction + eps, addcdiv_), so results agree to rounding.

inline float summedGradient(const UpdatePlan& plan, int64_t i) {
  float g = plan.threadGradients[0][i];
  for (int t = 1; t < plan.threadCount; ++t) g += plan.threadGradients[t][i];
  return g;
}

inline void adamUpdate(const UpdatePlan& plan, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const float p = plan.params[i];
    const float rawGradient = summedGradient(plan, i);
    plan.gradientOut[i] = rawGradient;
    plan.lastGood[i] = p;
    const float g = plan.weightDecay != 0 ? rawGradient + plan.weightDecay * p : rawGradient;
    // lerp_(grad, 1 - beta1), ATen's formula for weights below 0.5
    const float m = plan.expAvg[i] + plan.oneMinusBeta1 * (g - plan.expAvg[i]);
    const float v = plan.expAvgSq[i] * plan.beta2 + plan.oneMinusBeta2 * g * g;
    plan.expAvg[i] = m;
    plan.expAvgSq[i] = v;
    float second = v;
    if (plan.maxExpAvgSq != nullptr) {
      second = plan.maxExpAvgSq[i] > v ? plan.maxExpAvgSq[i] : v;
      plan.maxExpAvgSq[i] = second;
    }
    const float denominator = std::sqrt(second) / plan.biasCorrection2Sqrt + plan.eps;
    plan.params[i] = p + -plan.stepSize * m / denominator;
  }
}

inline void sgdUpdate(const UpdatePlan& plan, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const float p = plan.params[i];
    const float rawGradient = summedGradient(plan, i);
    plan.gradientOut[i] = rawGradient;
    plan.lastGood[i] = p;
    float direction = plan.weightDecay != 0 ? rawGradient + plan.weightDecay * p : rawGradient;
    if (plan.momentumBuffer != nullptr) {
      const float buffer = plan.momentumFirstStep ? direction
                                                  : plan.momentumBuffer[i] * plan.momentum + plan.oneMinusDampening * direction;
      plan.momentumBuffer[i] = buffer;
      direction = plan.nesterov ? direction + plan.momentum * buffer : buffer;
    }
    plan.params[i] = p + -plan.lr * direction;
  }
}

inline void update(const UpdatePlan& plan, int64_t begin, int64_t end) {
  switch (plan.kind) {
    case UpdatePlan::Kind::Adam: adamUpdate(plan, begin, end); break;
    case UpdatePlan::Kind::Sgd: sgdUpdate(plan, begin, end); break;
    case UpdatePlan::Kind::GradientsOnly:
      for (int64_t i = begin; i < end; ++i) plan.gradientOut[i] = summedGradient(plan, i);
      break;
  }
}
