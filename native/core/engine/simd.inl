// One SIMD vector of kLanes floats (16 for AVX-512, 8 for AVX2, 4 for the baseline and NEON). Included inside
// an isa_*.cc file's namespace, after its `#pragma GCC target`: GCC's vector extensions then
// compile to that instruction set, so every kernel has one source for all of them.

constexpr int kLanes = LENET5_LANES;
typedef float Vec __attribute__((vector_size(kLanes * sizeof(float))));
typedef float UnalignedVec __attribute__((vector_size(kLanes * sizeof(float)), aligned(4), may_alias));

#if defined(LENET5_AVX2_MASKS)
// 8 all-ones lanes then 8 zero lanes: the mask for the first n lanes starts at 8 - n.
alignas(64) constexpr int32_t kTailMasks[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
#endif

inline Vec load(const float* p) { return *reinterpret_cast<const UnalignedVec*>(p); }
inline void store(float* p, Vec v) { *reinterpret_cast<UnalignedVec*>(p) = v; }
// x - 0 is x for every x (0 + x is not, for -0), so compilers drop the subtraction and broadcast x
// straight from memory into the multiply-add (vbroadcastss m32, NEON's fmla by element).
inline Vec splat(float x) { return x - Vec{}; }
// The first `count` lanes from memory, the rest zero (a row's tail); masked where the
// instruction set has masked loads, so a tail costs one instruction.
inline Vec loadFirst(const float* p, int count) {
#if defined(LENET5_AVX512_MASKS)
  return (Vec)_mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << count) - 1), p);
#elif defined(LENET5_AVX2_MASKS)
  return (Vec)_mm256_maskload_ps(p, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kTailMasks + 8 - count)));
#else
  Vec v = {};
  for (int i = 0; i < count; ++i) v[i] = p[i];
  return v;
#endif
}
inline void storeFirst(float* p, Vec v, int count) {
#if defined(LENET5_AVX512_MASKS)
  _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << count) - 1), (__m512)v);
#elif defined(LENET5_AVX2_MASKS)
  _mm256_maskstore_ps(p, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kTailMasks + 8 - count)), (__m256)v);
#else
  for (int i = 0; i < count; ++i) p[i] = v[i];
#endif
}
// Lanes summed in a fixed order (a fixed tree with AVX-512), so results are reproducible.
inline float laneSum(Vec v) {
#if defined(LENET5_AVX512_MASKS)
  return _mm512_reduce_add_ps((__m512)v);
#endif
  float sum = 0;
  for (int i = 0; i < kLanes; ++i) sum += v[i];
  return sum;
}
constexpr int roundUpToLanes(int n) { return (n + kLanes - 1) / kLanes * kLanes; }
