// The optimizer step, fused with the reduction of the threads' gradients: one pass over each
// parameter reads the per-thread gradients (summed in thread order), the parameter and its
// optimizer state, and writes them back. Element-wise, so each thread updates its own slice, a
// vector at a time (each formula is written once, for a vector and for a single float).
// The formulas and their float32 operation order follow PyTorch's single-tensor Adam/SGD kernels
// (lerp_, mul_ + addcmul_, sqrt / bias correction + eps, addcdiv_); FMA contraction may round a
// last bit differently, so results agree to rounding, not bit for bit.

inline float loadAs(const float* p, float) { return *p; }
inline Vec loadAs(const float* p, Vec) { return load(p); }
inline void storeAs(float* p, float value) { *p = value; }
inline void storeAs(float* p, Vec value) { store(p, value); }
// As torch.maximum: NaN in either operand wins.
inline float larger(float a, float b) { return a > b || a != a ? a : b; }
inline Vec larger(Vec a, Vec b) { return (a > b || a != a) ? a : b; }
inline float squareRoot(float x) { return std::sqrt(x); }
inline Vec squareRoot(Vec x) {
#if defined(LENET5_AVX512_MASKS)
  return (Vec)_mm512_sqrt_ps((__m512)x);
#elif defined(LENET5_AVX2_MASKS)
  return (Vec)_mm256_sqrt_ps((__m256)x);
#else
  for (int i = 0; i < kLanes; ++i) x[i] = std::sqrt(x[i]);
  return x;
#endif
}

// The threads' gradients at i summed in thread order, also stored as the model's .grad.
template <typename T>
inline T summedGradient(const UpdatePlan& plan, int64_t i) {
  T g = loadAs(plan.threadGradients[0] + i, T{});
  for (int t = 1; t < plan.threadCount; ++t) g += loadAs(plan.threadGradients[t] + i, T{});
  storeAs(plan.gradientOut + i, g);
  return g;
}

template <typename T>
inline void adamAt(const UpdatePlan& plan, int64_t i) {
  const T p = loadAs(plan.params + i, T{});
  storeAs(plan.lastGood + i, p);
  T g = summedGradient<T>(plan, i);
  if (plan.weightDecay != 0) g = g + plan.weightDecay * p;
  const T expAvg = loadAs(plan.expAvg + i, T{});
  // lerp_(grad, 1 - beta1) with ATen's two formulas (weights below 0.5 and from 0.5 on)
  const T m = plan.oneMinusBeta1 < 0.5f ? expAvg + plan.oneMinusBeta1 * (g - expAvg)
                                        : g - (g - expAvg) * (1.0f - plan.oneMinusBeta1);
  const T v = loadAs(plan.expAvgSq + i, T{}) * plan.beta2 + plan.oneMinusBeta2 * g * g;
  storeAs(plan.expAvg + i, m);
  storeAs(plan.expAvgSq + i, v);
  T second = v;
  if (plan.maxExpAvgSq != nullptr) {
    second = larger(loadAs(plan.maxExpAvgSq + i, T{}), v);
    storeAs(plan.maxExpAvgSq + i, second);
  }
  const T denominator = squareRoot(second) / plan.biasCorrection2Sqrt + plan.eps;
  storeAs(plan.params + i, p + -plan.stepSize * m / denominator);
}

template <typename T>
inline void sgdAt(const UpdatePlan& plan, int64_t i) {
  const T p = loadAs(plan.params + i, T{});
  storeAs(plan.lastGood + i, p);
  T direction = summedGradient<T>(plan, i);
  if (plan.weightDecay != 0) direction = direction + plan.weightDecay * p;
  if (plan.momentumBuffer != nullptr) {
    const T buffer = plan.momentumFirstStep
                         ? direction
                         : loadAs(plan.momentumBuffer + i, T{}) * plan.momentum + plan.oneMinusDampening * direction;
    storeAs(plan.momentumBuffer + i, buffer);
    direction = plan.nesterov ? direction + plan.momentum * buffer : buffer;
  }
  storeAs(plan.params + i, p + -plan.lr * direction);
}

template <void (*Vector)(const UpdatePlan&, int64_t), void (*Scalar)(const UpdatePlan&, int64_t)>
inline void forEachParameter(const UpdatePlan& plan, int64_t begin, int64_t end) {
  int64_t i = begin;
  for (; i + kLanes <= end; i += kLanes) Vector(plan, i);
  for (; i < end; ++i) Scalar(plan, i);
}

inline void update(const UpdatePlan& plan, int64_t begin, int64_t end) {
  switch (plan.kind) {
    case UpdatePlan::Kind::Adam: forEachParameter<adamAt<Vec>, adamAt<float>>(plan, begin, end); break;
    case UpdatePlan::Kind::Sgd: forEachParameter<sgdAt<Vec>, sgdAt<float>>(plan, begin, end); break;
    case UpdatePlan::Kind::GradientsOnly:
      for (int64_t i = begin; i < end; ++i) summedGradient<float>(plan, i);
      break;
  }
}
