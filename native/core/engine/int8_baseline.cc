// The int8 kernels in plain C++, for any CPU (arm64 runs these): 8 int32 lanes as arrays, which
// the compiler vectorises as it can. They define the primitives int8_kernels.inl needs.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "int8.h"
#include "kernels.h"

namespace lenet5::engine::int8::portable {

struct Lanes {
  int32_t v[8];
};

inline Lanes zeroLanes() { return Lanes{}; }
inline Lanes loadLanes(const void* p) {
  Lanes l;
  std::memcpy(l.v, p, sizeof(l.v));
  return l;
}
inline void pin(Lanes&) {}
inline Lanes dotQuads(Lanes acc, const uint8_t* a, Lanes w) {
  int8_t bytes[32];
  std::memcpy(bytes, w.v, 32);
  for (int l = 0; l < 8; ++l) {
    for (int j = 0; j < 4; ++j) acc.v[l] += a[j] * bytes[l * 4 + j];
  }
  return acc;
}
inline Lanes dotPairs(Lanes acc, const int16_t* a, Lanes w) {
  int16_t words[16];
  std::memcpy(words, w.v, 32);
  for (int l = 0; l < 8; ++l) acc.v[l] += a[0] * words[l * 2] + a[1] * words[l * 2 + 1];
  return acc;
}
inline Lanes maxLanes(Lanes x, Lanes y) {
  for (int l = 0; l < 8; ++l) x.v[l] = std::max(x.v[l], y.v[l]);
  return x;
}
// fround((sum + bias) * scale), as the reference computes it (Epilogue says when float32 is exact).
inline float dequantized(int32_t sum, const Epilogue& e, int c) {
  if (e.exactInFloat) return static_cast<float>(sum + e.bias[c]) * e.scale[c];
  return static_cast<float>((static_cast<double>(sum) + e.biasDouble[c]) * e.scaleDouble[c]);
}
// ONNX QuantizeLinear: x / scale in float32, rounded half to even (the default rounding mode), saturated.
inline int32_t quantized(float x, float scale, float low) {
  return static_cast<int32_t>(std::min(std::max(std::nearbyint(x / scale), low), 127.0f));
}
inline void dequantize(Lanes sums, const Epilogue& e, int c, float* out) {
  for (int l = 0; l < 8; ++l) out[l] = dequantized(sums.v[l], e, c + l);
}
inline Lanes requantized(Lanes sums, const Epilogue& e, int c) {
  for (int l = 0; l < 8; ++l) sums.v[l] = quantized(dequantized(sums.v[l], e, c + l), e.nextScale, 0);
  return sums;
}
inline void requantize(Lanes sums, const Epilogue& e, int c, uint8_t* out) {
  const Lanes q = requantized(sums, e, c);
  for (int l = 0; l < 8; ++l) out[l] = static_cast<uint8_t>(q.v[l]);
}
inline void storeChannelLast6(const Lanes* q, int pixels, uint8_t* out) {
  for (int p = 0; p < pixels; ++p) {
    for (int c = 0; c < 6; ++c) out[p * 6 + c] = static_cast<uint8_t>(q[c].v[p]);
  }
}
inline bool quantizeRow(const float* x, float scale, int16_t* out) {
  bool finite = true;
  for (int i = 0; i < kSide; ++i) {
    finite &= std::isfinite(x[i]);
    out[i] = static_cast<int16_t>(quantized(x[i], scale, -128));
  }
  return finite;
}

#define LENET5_INT8_NAME "baseline"
#include "int8_kernels.inl"
#undef LENET5_INT8_NAME

}  // namespace lenet5::engine::int8::portable
