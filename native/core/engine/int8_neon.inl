// The int8 kernels' primitives (int8_kernels.inl lists them) on arm64's 128-bit NEON vectors, 8
// lanes as two: plain NEON (widening multiplies and pairwise adds), or with LENET5_INT8_DOTPROD the
// ARMv8.2 dot-product instruction sdot, one instruction per 4 lanes' dot products and their sums.
struct Lanes {
  int32x4_t low, high;  // lanes 0-3, 4-7
};

inline Lanes zeroLanes() { return {vdupq_n_s32(0), vdupq_n_s32(0)}; }
// (byte loads: p is an int16 row at any even offset, and ld1 of bytes needs no alignment)
inline Lanes loadLanes(const void* p) {
  const auto* bytes = static_cast<const uint8_t*>(p);
  return {vreinterpretq_s32_u8(vld1q_u8(bytes)), vreinterpretq_s32_u8(vld1q_u8(bytes + 16))};
}
// 4 bytes to every 32-bit lane.
inline int32x4_t broadcast32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return vdupq_n_s32(v);
}
// Nothing: x86's register barrier here (32 NEON registers, not 16) cost instructions, 232,884
// against 218,940 per image for the neon table (scripts/arm64/count-int8.sh).
inline void pin(Lanes&) {}
#if defined(LENET5_INT8_DOTPROD)
// The activations are 0..127 (int8.h), so they are valid s8 for the signed dot product.
inline int32x4_t dotQuads4(int32x4_t acc, int8x16_t a, int32x4_t w) {
  return vdotq_s32(acc, a, vreinterpretq_s8_s32(w));
}
#else
// u8 x s8 products in int16, their pairs summed in int16 (at most 2 x 127 x 128: no overflow, as
// activations are 0..127), then the pairs of pairs accumulated in int32 (sadalp).
inline int32x4_t dotQuads4(int32x4_t acc, int8x16_t a, int32x4_t w) {
  const int8x16_t weights = vreinterpretq_s8_s32(w);
  const int16x8_t low = vmull_s8(vget_low_s8(a), vget_low_s8(weights));
  const int16x8_t high = vmull_high_s8(a, weights);
  return vpadalq_s16(acc, vpaddq_s16(low, high));
}
#endif
inline Lanes dotQuads(Lanes acc, const uint8_t* a, Lanes w) {
  const int8x16_t quads = vreinterpretq_s8_s32(broadcast32(a));
  return {dotQuads4(acc.low, quads, w.low), dotQuads4(acc.high, quads, w.high)};
}
// The row's pairs split into first and second values (uzp1, uzp2: the same x for all 6 channels,
// so the compiler splits it once), then multiplied by a[0] and a[1] and added into int32 (smlal by
// element): 4 multiply-adds for 8 lanes. NEON has no int16 dot product.
inline Lanes dotPairs(Lanes acc, const int16_t* a, Lanes x) {
  const int16x8_t first = vuzp1q_s16(vreinterpretq_s16_s32(x.low), vreinterpretq_s16_s32(x.high));
  const int16x8_t second = vuzp2q_s16(vreinterpretq_s16_s32(x.low), vreinterpretq_s16_s32(x.high));
  const int16x4_t weights = vget_low_s16(vreinterpretq_s16_s32(broadcast32(a)));
  return {vmlal_lane_s16(vmlal_lane_s16(acc.low, vget_low_s16(first), weights, 0), vget_low_s16(second), weights, 1),
          vmlal_high_lane_s16(vmlal_high_lane_s16(acc.high, first, weights, 0), second, weights, 1)};
}
#if defined(LENET5_INT8_DOTPROD)
#define LENET5_INT8_CONV1_ROW
// conv1's kernel row ky on sdot: the row narrowed to int8 (the quantized image is -128..127), each
// lane's input gathered by tbl into one quad for taps 0-3 and one for tap 4 (its byte 4 times: the
// packed taps 5-7 are zero), times each channel's two weight quads (sdot by element). Lane m of
// phase dx reads columns 2m + dx + 0..4 of the half; the reads stay within columns 0..18 + dx.
inline void conv1Row(const PackedNetwork& net, int ky, const int16_t* row, Lanes (&acc)[6][2]) {
  static constexpr uint8_t kTaps0To3[16] = {0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7, 8, 9};
  static constexpr uint8_t kTap4[16] = {4, 4, 4, 4, 6, 6, 6, 6, 8, 8, 8, 8, 10, 10, 10, 10};
  const uint8x16_t low[2] = {vld1q_u8(kTaps0To3), vld1q_u8(kTap4)};
  // Lanes 4-7 from columns 3..18, whose byte 5 is column 8.
  const uint8x16_t high[2] = {vaddq_u8(low[0], vdupq_n_u8(5)), vaddq_u8(low[1], vdupq_n_u8(5))};
  int8x8_t weights[6];
  for (int c = 0; c < 6; ++c) weights[c] = vld1_s8(net.conv1Quads.data() + (ky * 6 + c) * 8);
  for (int dx = 0; dx < 2; ++dx) {
    const int16_t* x = row + dx;
    const int8x16_t first = vmovn_high_s16(vmovn_s16(vld1q_s16(x)), vld1q_s16(x + 8));
    const int8x16_t second = vmovn_high_s16(vmovn_s16(vld1q_s16(x + 3)), vld1q_s16(x + 11));
    int8x16_t quads[2][2];  // [lanes 0-3, 4-7][taps 0-3, tap 4]
    for (int q = 0; q < 2; ++q) {
      quads[0][q] = vqtbl1q_s8(first, low[q]);
      quads[1][q] = vqtbl1q_s8(second, high[q]);
    }
    for (int c = 0; c < 6; ++c) {
      acc[c][dx].low =
          vdotq_lane_s32(vdotq_lane_s32(acc[c][dx].low, quads[0][0], weights[c], 0), quads[0][1], weights[c], 1);
      acc[c][dx].high =
          vdotq_lane_s32(vdotq_lane_s32(acc[c][dx].high, quads[1][0], weights[c], 0), quads[1][1], weights[c], 1);
    }
  }
}
#endif
inline Lanes maxLanes(Lanes x, Lanes y) { return {vmaxq_s32(x.low, y.low), vmaxq_s32(x.high, y.high)}; }

// fround((sums + bias) * scale) for lanes c..c+3, as the reference computes it (Epilogue says when
// float32 is exact).
inline float32x4_t dequantized4(int32x4_t sums, const Epilogue& e, int c) {
  if (e.exactInFloat)
    return vmulq_f32(vcvtq_f32_s32(vaddq_s32(sums, vld1q_s32(e.bias.data() + c))), vld1q_f32(e.scale.data() + c));
  const float64x2_t low =
      vmulq_f64(vaddq_f64(vcvtq_f64_s64(vmovl_s32(vget_low_s32(sums))), vld1q_f64(e.biasDouble.data() + c)),
                vld1q_f64(e.scaleDouble.data() + c));
  const float64x2_t high =
      vmulq_f64(vaddq_f64(vcvtq_f64_s64(vmovl_high_s32(sums)), vld1q_f64(e.biasDouble.data() + c + 2)),
                vld1q_f64(e.scaleDouble.data() + c + 2));
  return vcvt_high_f32_f64(vcvt_f32_f64(low), high);
}
inline void dequantize(Lanes sums, const Epilogue& e, int c, float* out) {
  vst1q_f32(out, dequantized4(sums.low, e, c));
  vst1q_f32(out + 4, dequantized4(sums.high, e, c + 4));
}
// x / scale in float32, rounded half to even (frintn), saturated: ONNX QuantizeLinear, as int32.
inline int32x4_t quantized(float32x4_t x, float scale, float low) {
  const float32x4_t q = vrndnq_f32(vdivq_f32(x, vdupq_n_f32(scale)));
  return vcvtq_s32_f32(vminq_f32(vmaxq_f32(q, vdupq_n_f32(low)), vdupq_n_f32(127)));
}
// ReLU is the saturation's lower bound: quantize is non-decreasing and maps 0 to 0.
inline Lanes requantized(Lanes sums, const Epilogue& e, int c) {
  return {quantized(dequantized4(sums.low, e, c), e.nextScale, 0),
          quantized(dequantized4(sums.high, e, c + 4), e.nextScale, 0)};
}
inline void requantize(Lanes sums, const Epilogue& e, int c, uint8_t* out) {
  const Lanes q = requantized(sums, e, c);
  vst1_u8(out, vmovn_u16(vreinterpretq_u16_s16(vmovn_high_s32(vmovn_s32(q.low), q.high))));
}
// 28 values as 7 vectors of 4. x - x is 0 for a finite x and NaN for NaN and both infinities.
inline bool quantizeRow(const float* x, float scale, int16_t* out) {
  uint32x4_t finite = vdupq_n_u32(~0u);
  for (int i = 0; i < kSide; i += 4) {
    const float32x4_t v = vld1q_f32(x + i);
    finite = vandq_u32(finite, vceqq_f32(vsubq_f32(v, v), vdupq_n_f32(0)));
    vst1_s16(out + i, vmovn_s32(quantized(v, scale, -128)));
  }
  return vminvq_u32(finite) == ~0u;
}
// Channels 2k and 2k + 1 of 8 pixels as 16-bit words: c[2k] | c[2k + 1] << 8 (sli), the low
// halves of the 32-bit lanes gathered (uzp1).
inline uint16x8_t channelPair(const Lanes& even, const Lanes& odd) {
  return vuzp1q_u16(vreinterpretq_u16_s32(vsliq_n_s32(even.low, odd.low, 8)),
                    vreinterpretq_u16_s32(vsliq_n_s32(even.high, odd.high, 8)));
}
// st3 interleaves the 3 channel pairs: 8 pixels of 6 bytes, 48 bytes in one store. Fewer pixels
// go through a buffer, so nothing past the last pixel is written.
inline void storeChannelLast6(const Lanes* q, int pixels, uint8_t* out) {
  const uint16x8x3_t pairs = {{channelPair(q[0], q[1]), channelPair(q[2], q[3]), channelPair(q[4], q[5])}};
  if (pixels == 8) {
    vst3q_u16(reinterpret_cast<uint16_t*>(out), pairs);
    return;
  }
  uint16_t words[24];
  vst3q_u16(words, pairs);
  std::memcpy(out, words, pixels * 6);
}
