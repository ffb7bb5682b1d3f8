// The two small matrix products every layer is built from, register-blocked for LeNet-5's
// sizes (no packing: every operand is at most a few hundred KB and is read from L1/L2).
//
//   productAccumulate: C[M][N] (+)= A(M x K) . B[K][N]. A is read through strides
//     (a(m, k) = A[m * aRow + k * aCol]) so a transposed operand needs no copy. The inner loop
//     broadcasts one element of A and multiplies a row segment of B: a tile of up to 6 rows x 2
//     vectors of C stays in registers for the whole K loop (the classic 6x16 / 6x32 SGEMM tile).
//   productDot: C[M][N] (+)= A[M][K] . B[N][K]^T: dot products along K, a tile of 4 x 3 of them
//     accumulates in vectors and each is summed across lanes once at the end.

// `last` = lanes used in the tile's last vector (kLanes unless Partial).
template <int Rows, int Vecs, bool Partial>
inline void productAccumulateTile(int K, const float* A, int aRow, int aCol, const float* B, int ldb, float* C, int ldc,
                                  bool accumulate, int last) {
  Vec acc[Rows][Vecs];
  for (int r = 0; r < Rows; ++r) {
    for (int v = 0; v < Vecs; ++v) {
      const bool partial = Partial && v == Vecs - 1;
      acc[r][v] = !accumulate ? Vec{}
                  : partial   ? loadFirst(C + r * ldc + v * kLanes, last)
                              : load(C + r * ldc + v * kLanes);
    }
  }
  for (int k = 0; k < K; ++k) {
    Vec b[Vecs];
    for (int v = 0; v < Vecs; ++v) {
      b[v] = (Partial && v == Vecs - 1) ? loadFirst(B + k * ldb + v * kLanes, last) : load(B + k * ldb + v * kLanes);
    }
    for (int r = 0; r < Rows; ++r) {
      const Vec a = splat(A[r * aRow + k * aCol]);
      for (int v = 0; v < Vecs; ++v) acc[r][v] += a * b[v];
    }
  }
  for (int r = 0; r < Rows; ++r) {
    for (int v = 0; v < Vecs; ++v) {
      if (Partial && v == Vecs - 1) {
        storeFirst(C + r * ldc + v * kLanes, acc[r][v], last);
      } else {
        store(C + r * ldc + v * kLanes, acc[r][v]);
      }
    }
  }
}

template <int Rows>
inline void productAccumulateRows(int N, int K, const float* A, int aRow, int aCol, const float* B, int ldb, float* C,
                                  int ldc, bool accumulate) {
  int n = 0;
  for (; n + 2 * kLanes <= N; n += 2 * kLanes) {
    productAccumulateTile<Rows, 2, false>(K, A, aRow, aCol, B + n, ldb, C + n, ldc, accumulate, kLanes);
  }
  const int rest = N - n;
  if (rest > kLanes) {
    productAccumulateTile<Rows, 2, true>(K, A, aRow, aCol, B + n, ldb, C + n, ldc, accumulate, rest - kLanes);
  } else if (rest == kLanes) {
    productAccumulateTile<Rows, 1, false>(K, A, aRow, aCol, B + n, ldb, C + n, ldc, accumulate, kLanes);
  } else if (rest > 0) {
    productAccumulateTile<Rows, 1, true>(K, A, aRow, aCol, B + n, ldb, C + n, ldc, accumulate, rest);
  }
}

inline void productAccumulate(int M, int N, int K, const float* A, int aRow, int aCol, const float* B, int ldb,
                              float* C, int ldc, bool accumulate) {
  for (int m = 0; m < M; m += 6) {
    const float* a = A + m * aRow;
    float* c = C + m * ldc;
    switch (M - m) {
      case 1: productAccumulateRows<1>(N, K, a, aRow, aCol, B, ldb, c, ldc, accumulate); break;
      case 2: productAccumulateRows<2>(N, K, a, aRow, aCol, B, ldb, c, ldc, accumulate); break;
      case 3: productAccumulateRows<3>(N, K, a, aRow, aCol, B, ldb, c, ldc, accumulate); break;
      case 4: productAccumulateRows<4>(N, K, a, aRow, aCol, B, ldb, c, ldc, accumulate); break;
      case 5: productAccumulateRows<5>(N, K, a, aRow, aCol, B, ldb, c, ldc, accumulate); break;
      default: productAccumulateRows<6>(N, K, a, aRow, aCol, B, ldb, c, ldc, accumulate); break;
    }
  }
}

template <int Rows, int Cols>
inline void productDotTile(int K, const float* A, int lda, const float* B, int ldb, float* C, int ldc,
                           bool accumulate) {
  Vec acc[Rows][Cols] = {};
  int k = 0;
  for (; k + kLanes <= K; k += kLanes) {
    Vec b[Cols];
    for (int c = 0; c < Cols; ++c) b[c] = load(B + c * ldb + k);
    for (int r = 0; r < Rows; ++r) {
      const Vec a = load(A + r * lda + k);
      for (int c = 0; c < Cols; ++c) acc[r][c] += a * b[c];
    }
  }
  if (k < K) {
    const int tail = K - k;
    Vec b[Cols];
    for (int c = 0; c < Cols; ++c) b[c] = loadFirst(B + c * ldb + k, tail);
    for (int r = 0; r < Rows; ++r) {
      const Vec a = loadFirst(A + r * lda + k, tail);
      for (int c = 0; c < Cols; ++c) acc[r][c] += a * b[c];
    }
  }
  for (int r = 0; r < Rows; ++r) {
    for (int c = 0; c < Cols; ++c) {
      const float dot = laneSum(acc[r][c]);
      C[r * ldc + c] = accumulate ? C[r * ldc + c] + dot : dot;
    }
  }
}

template <int Rows>
inline void productDotRows(int N, int K, const float* A, int lda, const float* B, int ldb, float* C, int ldc,
                           bool accumulate) {
  int n = 0;
  for (; n + 3 <= N; n += 3) productDotTile<Rows, 3>(K, A, lda, B + n * ldb, ldb, C + n, ldc, accumulate);
  if (N - n == 2) productDotTile<Rows, 2>(K, A, lda, B + n * ldb, ldb, C + n, ldc, accumulate);
  if (N - n == 1) productDotTile<Rows, 1>(K, A, lda, B + n * ldb, ldb, C + n, ldc, accumulate);
}

inline void productDot(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C, int ldc,
                       bool accumulate) {
  for (int m = 0; m < M; m += 4) {
    const float* a = A + m * lda;
    float* c = C + m * ldc;
    switch (M - m) {
      case 1: productDotRows<1>(N, K, a, lda, B, ldb, c, ldc, accumulate); break;
      case 2: productDotRows<2>(N, K, a, lda, B, ldb, c, ldc, accumulate); break;
      case 3: productDotRows<3>(N, K, a, lda, B, ldb, c, ldc, accumulate); break;
      default: productDotRows<4>(N, K, a, lda, B, ldb, c, ldc, accumulate); break;
    }
  }
}
