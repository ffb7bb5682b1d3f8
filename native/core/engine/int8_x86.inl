// The int8 kernels' primitives (int8_kernels.inl lists them) on 256-bit x86 vectors: AVX2, or
// with LENET5_INT8_VNNI the AVX-512 VNNI instructions that fuse a dot product and its sum.
using Lanes = __m256i;

inline Lanes zeroLanes() { return _mm256_setzero_si256(); }
inline Lanes loadLanes(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
// 4 bytes to every lane, straight from memory (vpbroadcastd m32: one load). GCC before 11 lacks
// _mm_loadu_si32; its set1 of a loaded int goes through a general register (slower, same result).
inline Lanes broadcast32(const void* p) {
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 11
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
#else
  return _mm256_broadcastd_epi32(_mm_loadu_si32(p));
#endif
}
// Keeps a running sum in its register as written: without it GCC reassociates the integer
// additions of a tile into trees that need more than 16 registers, and spills.
inline void pin(Lanes& acc) { asm("" : "+x"(acc)); }
inline Lanes dotQuads(Lanes acc, const uint8_t* a, Lanes w) {
#if defined(LENET5_INT8_VNNI)
  return _mm256_dpbusd_epi32(acc, broadcast32(a), w);
#else
  // u8 x s8 pairs summed in int16 cannot saturate here: activations are 0..127 (int8.h).
  const Lanes pairs = _mm256_maddubs_epi16(broadcast32(a), w);
  return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
#endif
}
inline Lanes dotPairs(Lanes acc, const int16_t* a, Lanes w) {
#if defined(LENET5_INT8_VNNI)
  return _mm256_dpwssd_epi32(acc, broadcast32(a), w);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(broadcast32(a), w));
#endif
}
inline Lanes maxLanes(Lanes x, Lanes y) { return _mm256_max_epi32(x, y); }

// fround((sums + bias) * scale), as the reference computes it (Epilogue says when float32 is exact).
inline __m256 dequantized(Lanes sums, const Epilogue& e, int c) {
  if (e.exactInFloat) {
    const __m256 exact = _mm256_cvtepi32_ps(_mm256_add_epi32(sums, loadLanes(e.bias.data() + c)));
    return _mm256_mul_ps(exact, _mm256_loadu_ps(e.scale.data() + c));
  }
  const __m256d low = _mm256_mul_pd(
      _mm256_add_pd(_mm256_cvtepi32_pd(_mm256_castsi256_si128(sums)), _mm256_loadu_pd(e.biasDouble.data() + c)),
      _mm256_loadu_pd(e.scaleDouble.data() + c));
  const __m256d high = _mm256_mul_pd(_mm256_add_pd(_mm256_cvtepi32_pd(_mm256_extracti128_si256(sums, 1)),
                                                   _mm256_loadu_pd(e.biasDouble.data() + c + 4)),
                                     _mm256_loadu_pd(e.scaleDouble.data() + c + 4));
  return _mm256_set_m128(_mm256_cvtpd_ps(high), _mm256_cvtpd_ps(low));
}
inline void dequantize(Lanes sums, const Epilogue& e, int c, float* out) {
  _mm256_storeu_ps(out, dequantized(sums, e, c));
}
// x / scale in float32, rounded half to even, saturated: ONNX QuantizeLinear, as int32 lanes.
inline __m256i quantized(__m256 x, float scale, float low) {
  const __m256 q =
      _mm256_round_ps(_mm256_div_ps(x, _mm256_set1_ps(scale)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  return _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(q, _mm256_set1_ps(low)), _mm256_set1_ps(127)));
}
// ReLU is the saturation's lower bound: quantize is non-decreasing and maps 0 to 0.
inline Lanes requantized(Lanes sums, const Epilogue& e, int c) {
  return quantized(dequantized(sums, e, c), e.nextScale, 0);
}
inline void requantize(Lanes sums, const Epilogue& e, int c, uint8_t* out) {
  const __m256i q = requantized(sums, e, c);
  const __m128i words = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packus_epi16(words, words));
}
// 28 values as 8 + 8 + 8 + 8, the last vector overlapping the third (same values written twice).
// x - x is 0 for a finite x and NaN for NaN and both infinities.
inline bool quantizeRow(const float* x, float scale, int16_t* out) {
  __m256 finite = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
  for (int i : {0, 8, 16, 20}) {
    const __m256 v = _mm256_loadu_ps(x + i);
    finite = _mm256_and_ps(finite, _mm256_cmp_ps(_mm256_sub_ps(v, v), _mm256_setzero_ps(), _CMP_EQ_OQ));
    const __m256i q = quantized(v, scale, -128);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                     _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1)));
  }
  return _mm256_movemask_ps(finite) == 0xff;
}
// Pixel p's 6 channels as 8 bytes (c0..c5 and two zeros), one store each in increasing order, so
// each store's 2 zero bytes are overwritten by the next pixel's (or a later row's) store.
inline void storeChannelLast6(const Lanes* q, int pixels, uint8_t* out) {
  const __m256i low = _mm256_or_si256(_mm256_or_si256(q[0], _mm256_slli_epi32(q[1], 8)),
                                      _mm256_or_si256(_mm256_slli_epi32(q[2], 16), _mm256_slli_epi32(q[3], 24)));
  const __m256i high = _mm256_or_si256(q[4], _mm256_slli_epi32(q[5], 8));
  alignas(32) uint64_t words[8];
  // Within each 128-bit half: unpacklo takes pixels 0, 1 (4, 5), unpackhi pixels 2, 3 (6, 7).
  _mm256_store_si256(reinterpret_cast<__m256i*>(words), _mm256_unpacklo_epi32(low, high));
  _mm256_store_si256(reinterpret_cast<__m256i*>(words + 4), _mm256_unpackhi_epi32(low, high));
  constexpr int kWordOf[8] = {0, 1, 4, 5, 2, 3, 6, 7};
  for (int p = 0; p < pixels; ++p) std::memcpy(out + p * 6, &words[kWordOf[p]], 8);
}
