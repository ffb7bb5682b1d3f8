// The two convolutions, per image, each laid out for the 2x2 max-pooling that follows: output
// pixel (y, x) = (2py + dy, 2px + dx) belongs to pooling phase (dy, dx), and each phase is a plane
// (conv1) or a block of pixel rows (conv2) of its own, so pooling is an element-wise max of four.
// conv1's input is split into its four row/column parity phases, where the W outputs of one phase
// row read W consecutive values.
//
// conv1: 1x28x28, zero padding 2, 6 filters of 5x5 -> 6 x 4 phases x 14 rows of 16 (14 outputs
//   and 2 lanes of spill). It runs directly on the input's phase planes (no im2col): an output
//   row of a phase is 16 consecutive floats, and so is the input each tap reads for it, so a
//   6-channel x 16-column tile of outputs stays in registers over the 25 taps.
//   forward   out[6][row] = sum over taps W[6][tap] * in(tap, row) + b     117,600 MAC
//   backward  from the pooling winners only (at most 1,176 of the 4,704 output gradients are
//             nonzero): each nonzero g at (y, x) adds g * the 5x5 input window there to its
//             channel's dW, a kernel row at a time from the zero-padded 32x32 image
//             (<= 29,400 MAC; no input gradient)
// conv2: 6x14x14, 16 filters of 6x5x5. Forward: a matrix product over the input's im2row rows
//   (one row of 150 taps per output pixel, pixels in the pooling-phase order; read in place
//   through two offset tables, not copied) with the 16 output channels along the vector lanes:
//   100 rows x 16 columns in tiles of 12 vectors on every lane width. Backward: after the max
//   pooling, each channel's 25 pooling cells pass their gradient to one output pixel each, so at
//   most 400 of the output gradient's 1,600 values are nonzero; the weight and input gradients
//   are summed from those alone, straight from and into the 14x14 planes, a kernel row (5 taps,
//   padded to whole vectors) at a time.
//   forward   out[100][16] = rows[100][150] . W^T[150][16] + b                240,000 MAC
//   backward  dW[c][ic][ky][:] += g * in[ic][y+ky][x:x+5], per nonzero g       <= 60,000 MAC
//             dIn[ic][y+ky][x:x+5] += g * W[c][ic][ky][:]                      <= 60,000 MAC
//   W^T and the widened W are packed once per call; the padded dW is summed over the call's
//   images and added to the gradient at its end.

constexpr int kConv1Row = 16;                   // one phase row of conv1's output, 14 used
constexpr int kConv1Phase = 14 * kConv1Row;     // a phase plane
constexpr int kConv1Channel = 4 * kConv1Phase;  // one output channel: 896 floats
constexpr int kConv1RowVecs = kConv1Row / kLanes;
constexpr int kInputPhases = 4 * 16 * 16;  // the zero-padded 32x32 image as four 16x16 phase planes
constexpr int kConv2Phase = 5 * 5;
constexpr int kConv2Pixels = 4 * kConv2Phase;
constexpr int kConv2Taps = 6 * 25;
constexpr int kPool1Size = 6 * 14 * 14;  // conv2's input per image
// conv2's input gradient: channels 2 floats apart, so rows stored 16 wide never overwrite the next channel.
constexpr int kPool1GradientChannel = 196 + 2;

// The output pixel (y, x) whose value pooling cell `cell` (cells in rows of `cellsPerRow`) took as
// its maximum: `which` is the window element, 0-3 row-major, which is also the pooling phase.
struct Pixel {
  int y, x;
};
constexpr Pixel pooledPixel(int cell, int which, int cellsPerRow) {
  return {2 * (cell / cellsPerRow) + (which >> 1), 2 * (cell % cellsPerRow) + (which & 1)};
}

// The image zero-padded to 32x32 and split into its four 16x16 phase planes: padded (R, C) is
// phases[((R & 1) * 2 + (C & 1)) * 256 + (R / 2) * 16 + C / 2]. The border (phase rows 0 and 15,
// columns 0 and 15) is zero and never written (set once per workspace).
inline void conv1Input(const float* image, float* phases) {
  for (int y = 0; y < kSide; ++y) {
    const float* row = image + y * kSide;
    float* even = phases + ((y & 1) * 2) * 256 + (y / 2 + 1) * 16 + 1;  // padded row y + 2, even columns
    float* odd = even + 256;
    for (int x = 0; x < kSide / 2; ++x) {
      even[x] = row[2 * x];
      odd[x] = row[2 * x + 1];
    }
  }
}

// Where tap (ky, kx) of output phase (dy, dx) reads, in conv1Input's planes, for phase row 0:
// padded (2py + dy + ky, 2px + dx + kx) for px = 0..15 is a run of 16 from this offset + py * 16.
struct Conv1Taps {
  int offset[4][25];
};
constexpr Conv1Taps conv1Taps() {
  Conv1Taps taps{};
  for (int phase = 0; phase < 4; ++phase) {
    for (int tap = 0; tap < 25; ++tap) {
      const int r = (phase >> 1) + tap / 5, c = (phase & 1) + tap % 5;
      taps.offset[phase][tap] = ((r & 1) * 2 + (c & 1)) * 256 + (r / 2) * 16 + c / 2;
    }
  }
  return taps;
}
constexpr Conv1Taps kConv1Taps = conv1Taps();

// Rows phase rows of all 6 channels from row `in` of the input planes: a tile of 6 x Rows x 16
// outputs in registers (12 vectors for AVX2 and AVX-512, 24 for NEON's 32 registers).
template <int Rows>
inline void conv1ForwardRows(const float* in, const int* offsets, const float* weight, const float* bias, float* out) {
  constexpr int kVecs = Rows * kConv1RowVecs;
  auto at = [](int j) { return (j / kConv1RowVecs) * kConv1Row + (j % kConv1RowVecs) * kLanes; };
  Vec acc[6][kVecs];
  for (int c = 0; c < 6; ++c) {
    for (int j = 0; j < kVecs; ++j) acc[c][j] = splat(bias[c]);
  }
  for (int tap = 0; tap < 25; ++tap) {
    Vec x[kVecs];
    for (int j = 0; j < kVecs; ++j) x[j] = load(in + offsets[tap] + at(j));
    for (int c = 0; c < 6; ++c) {
      const Vec w = splat(weight[c * 25 + tap]);
      for (int j = 0; j < kVecs; ++j) acc[c][j] += w * x[j];
    }
  }
  for (int c = 0; c < 6; ++c) {
    for (int j = 0; j < kVecs; ++j) store(out + c * kConv1Channel + at(j), acc[c][j]);
  }
}

// in: conv1Input's planes; out: 6 channels x 4 phases x 14 rows of kConv1Row.
inline void conv1Forward(const float* in, const float* weight, const float* bias, float* out) {
  constexpr int kRows = kLanes >= 16 ? 2 : 1;  // AVX-512: two rows, so 12 accumulators hide latency
  for (int phase = 0; phase < 4; ++phase) {
    for (int py = 0; py < 14; py += kRows) {
      conv1ForwardRows<kRows>(in + py * 16, kConv1Taps.offset[phase], weight, bias,
                              out + phase * kConv1Phase + py * kConv1Row);
    }
  }
}

// The image zero-padded to 32x32 (rows of 32; the border is zero and never written).
inline void conv1PaddedInput(const float* image, float* padded) {
  for (int y = 0; y < kSide; ++y) std::memcpy(padded + (y + 2) * 32 + 2, image + y * kSide, kSide * sizeof(float));
}

// A kernel row of conv1 or conv2 (5 taps) padded to whole vectors.
constexpr int kKernelRun = roundUpToLanes(5);
constexpr int kKernelRunVecs = kKernelRun / kLanes;

// The backward pass of conv1's ReLU, pooling and convolution for one image. pooled and winner:
// the pooled output and winners (6 x 14 x 14); dPooled: the pooled gradient (14 x 14 channels
// kPool1GradientChannel apart); padded: conv1PaddedInput of the
// image, read kKernelRun floats past each window row. Adds the weight and bias gradients.
inline void pool1Conv1Backward(const float* dPooled, const float* pooled, const float* winner, const float* padded,
                               float* dWeight, float* dBias) {
  for (int c = 0; c < 6; ++c) {
    // The cells whose ReLU passed, listed without a branch (which would be mispredicted half the time).
    int passed[196];
    int count = 0;
    for (int cell = 0; cell < 196; ++cell) {
      passed[count] = cell;
      count += pooled[c * 196 + cell] > 0;
    }
    // Two windows at a time into two sets of sums (10 or more independent chains), added at the end.
    Vec even[5][kKernelRunVecs] = {}, odd[5][kKernelRunVecs] = {};
    float biasSum = 0;
    auto addWindow = [&](int k, Vec(&acc)[5][kKernelRunVecs]) {
      const int cell = passed[k];
      const Pixel pixel = pooledPixel(cell, static_cast<int>(winner[c * 196 + cell]), 14);
      const float* window = padded + pixel.y * 32 + pixel.x;
      const float gradient = dPooled[c * kPool1GradientChannel + cell];
      const Vec g = splat(gradient);
      biasSum += gradient;
      for (int ky = 0; ky < 5; ++ky) {
        for (int v = 0; v < kKernelRunVecs; ++v) acc[ky][v] += g * load(window + ky * 32 + v * kLanes);
      }
    };
    int k = 0;
    for (; k + 2 <= count; k += 2) {
      addWindow(k, even);
      addWindow(k + 1, odd);
    }
    if (k < count) addWindow(k, even);
    dBias[c] += biasSum;
    for (int ky = 0; ky < 5; ++ky) {
      alignas(64) float row[kKernelRun];
      for (int v = 0; v < kKernelRunVecs; ++v) store(row + v * kLanes, even[ky][v] + odd[ky][v]);
      for (int kx = 0; kx < 5; ++kx) dWeight[c * 25 + ky * 5 + kx] += row[kx];
    }
  }
}

// W[16][150] -> W^T[150][16].
inline void conv2TransposeWeight(const float* weight, float* weightT) {
  for (int c = 0; c < 16; ++c) {
    for (int tap = 0; tap < kConv2Taps; ++tap) weightT[tap * 16 + c] = weight[c * kConv2Taps + tap];
  }
}

// Where conv2's output pixel p (pooling-phase order) has its 5x5 window in a 14x14 plane, and
// where tap t = ic*25 + ky*5 + kx of a window is from its corner: the input value of tap t for
// pixel p is in[corner[p] + tap[t]] (an implicit im2row: no copy of the 60 KB of rows).
struct Conv2Offsets {
  int corner[kConv2Pixels];
  int tap[kConv2Taps];
};
constexpr Conv2Offsets conv2Offsets() {
  Conv2Offsets offsets{};
  for (int p = 0; p < kConv2Pixels; ++p) {
    const Pixel pixel = pooledPixel(p % kConv2Phase, p / kConv2Phase, 5);
    offsets.corner[p] = pixel.y * 14 + pixel.x;
  }
  for (int t = 0; t < kConv2Taps; ++t) offsets.tap[t] = (t / 25) * 196 + (t % 25 / 5) * 14 + t % 5;
  return offsets;
}
constexpr Conv2Offsets kConv2Offsets = conv2Offsets();

// 16 channels of Rows output pixels from `first` on: a tile of Rows x 16 outputs in registers
// (12 vectors at every lane width) over the 150 taps, each tap one broadcast input value per pixel.
template <int Rows>
inline void conv2ForwardPixels(const float* in, int first, const float* weightT, const float* bias, float* out) {
  constexpr int kVecs = 16 / kLanes;
  Vec acc[Rows][kVecs];
  const float* window[Rows];
  for (int r = 0; r < Rows; ++r) {
    window[r] = in + kConv2Offsets.corner[first + r];
    for (int v = 0; v < kVecs; ++v) acc[r][v] = load(bias + v * kLanes);
  }
  for (int t = 0; t < kConv2Taps; ++t) {
    const int offset = kConv2Offsets.tap[t];
    Vec w[kVecs];
    for (int v = 0; v < kVecs; ++v) w[v] = load(weightT + t * 16 + v * kLanes);
    for (int r = 0; r < Rows; ++r) {
      const Vec x = splat(window[r][offset]);
      for (int v = 0; v < kVecs; ++v) acc[r][v] += x * w[v];
    }
  }
  for (int r = 0; r < Rows; ++r) {
    for (int v = 0; v < kVecs; ++v) store(out + (first + r) * 16 + v * kLanes, acc[r][v]);
  }
}

// in: conv2's input, 6 x 14 x 14; out: [100 pixels][16 channels].
inline void conv2Forward(const float* in, const float* weightT, const float* bias, float* out) {
  constexpr int kRows = 12 / (16 / kLanes);  // 6 pixels for AVX2, 12 for AVX-512, 3 for 4 lanes
  constexpr int kTail = kConv2Pixels % kRows;
  int p = 0;
  for (; p + kRows <= kConv2Pixels; p += kRows) conv2ForwardPixels<kRows>(in, p, weightT, bias, out);
  if constexpr (kTail > 0) conv2ForwardPixels<kTail>(in, p, weightT, bias, out);
}

// conv2's weight gradient as padded kernel rows.
constexpr int kConv2PaddedWeights = 16 * 30 * kKernelRun;  // [16][6 ic x 5 ky][kKernelRun]
// conv2's weight for the input gradient, widened: kernel row (c, ic, ky) at the start of slot
// (ky, c, ic) + 1 of 16 floats, slot 0 zero, so that one unaligned load of 16 from 16 - x puts its
// 5 taps at columns x..x+4 of an input row (x <= 9) and zeros around them (slots of 16 are the
// least that keeps a neighbour's taps out). Kernel row ky's 96 slots (6 KB) are read together.
constexpr int kConv2Wide = 16;
constexpr int kConv2WideWeights = (16 * 30 + 1) * kConv2Wide;
constexpr int kInputRowVecs = 16 / kLanes;  // a 14-wide input row and 2 lanes of spill

// The vectors of an input row that a kernel row placed at column x (0-9) covers, x..x+4: from
// x / kLanes to (x + 4) / kLanes. Each distinct (first, last) pair is a span; 3 spans on 8 and on
// 4 lanes, 1 on 16.
constexpr int kRowSpans = kLanes == 16 ? 1 : 3;
constexpr int rowSpanOf(int x) {
  const int first = x / kLanes;
  return kLanes == 8 ? first + (x + 4) / kLanes : kLanes == 4 ? first : 0;
}
// The first column x whose span is `span` (its first and last vectors are those of the span).
constexpr int firstColumnOfSpan(int span) {
  int x = 0;
  while (rowSpanOf(x) != span) ++x;
  return x;
}
template <typename Body>
inline void forEachRowSpan(Body body) {
  body(std::integral_constant<int, 0>{});
  if constexpr (kRowSpans > 1) body(std::integral_constant<int, 1>{});
  if constexpr (kRowSpans > 2) body(std::integral_constant<int, 2>{});
}

// W[16][6][5][5] -> the widened rows.
inline void conv2WidenWeight(const float* weight, float* wide) {
  std::memset(wide, 0, kConv2WideWeights * sizeof(float));
  for (int c = 0; c < 16; ++c) {
    for (int ic = 0; ic < 6; ++ic) {
      for (int ky = 0; ky < 5; ++ky) {
        const int slot = (ky * 16 + c) * 6 + ic + 1;
        for (int kx = 0; kx < 5; ++kx) wide[slot * kConv2Wide + kx] = weight[((c * 6 + ic) * 5 + ky) * 5 + kx];
      }
    }
  }
}

// The backward pass of conv2's ReLU, pooling and convolution for one image. dPooled, pooled and
// winner: the pooled gradient, output and winners (16 x 25); in: conv2's input (6 x 14 x 14), read
// kKernelRun floats past its rows. Adds the weight gradient to dPaddedWeight (padded rows; the
// padding lanes collect products of those extra floats and are never read) and the bias gradient
// to dBias, and writes the input's gradient to dIn: 6 channels kPool1GradientChannel apart, rows
// of 14 stored 16 wide (each spills 2 floats onto the next row, stored after it, or the gap).
inline void pool2Conv2Backward(const float* dPooled, const float* pooled, const float* winner, const float* in,
                               const float* wideWeight, float* dPaddedWeight, float* dBias, float* dIn) {
  // The output gradients where the ReLU passed them, at the winner's pixel (y, x), by channel.
  struct Nonzero {
    float gradient;
    int channel, y, x;
  };
  Nonzero nonzero[16 * kConv2Phase];
  int channelStart[17];
  int count = 0;
  for (int c = 0; c < 16; ++c) {
    channelStart[c] = count;
    float biasSum = 0;
    for (int cell = 0; cell < kConv2Phase; ++cell) {  // branch-free: the test is unpredictable
      const int at = c * kConv2Phase + cell;
      const bool passes = pooled[at] > 0;
      const Pixel pixel = pooledPixel(cell, static_cast<int>(winner[at]), 5);
      nonzero[count] = {dPooled[at], c, pixel.y, pixel.x};
      count += passes;
      biasSum += passes ? dPooled[at] : 0.0f;
    }
    dBias[c] += biasSum;
  }
  channelStart[16] = count;

  // Weight gradient: each nonzero adds g * in[ic][y + ky][x .. x + 4] to row (ic, ky) of its
  // channel's kernel, kWeightChannels input channels (15 or more independent sums) at a time.
  constexpr int kWeightChannels = kKernelRunVecs == 1 ? 3 : 2;
  for (int c = 0; c < 16; ++c) {
    float* dWeight = dPaddedWeight + c * 30 * kKernelRun;
    for (int ic = 0; ic < 6; ic += kWeightChannels) {
      Vec acc[kWeightChannels][5][kKernelRunVecs];
      for (int i = 0; i < kWeightChannels; ++i) {
        for (int ky = 0; ky < 5; ++ky) {
          for (int v = 0; v < kKernelRunVecs; ++v)
            acc[i][ky][v] = load(dWeight + ((ic + i) * 5 + ky) * kKernelRun + v * kLanes);
        }
      }
      for (int k = channelStart[c]; k < channelStart[c + 1]; ++k) {
        const Vec g = splat(nonzero[k].gradient);
        const float* window = in + ic * 196 + nonzero[k].y * 14 + nonzero[k].x;
        for (int i = 0; i < kWeightChannels; ++i) {
          for (int ky = 0; ky < 5; ++ky) {
            for (int v = 0; v < kKernelRunVecs; ++v) acc[i][ky][v] += g * load(window + i * 196 + ky * 14 + v * kLanes);
          }
        }
      }
      for (int i = 0; i < kWeightChannels; ++i) {
        for (int ky = 0; ky < 5; ++ky) {
          for (int v = 0; v < kKernelRunVecs; ++v)
            store(dWeight + ((ic + i) * 5 + ky) * kKernelRun + v * kLanes, acc[i][ky][v]);
        }
      }
    }
  }

  // Input gradient: for each kernel row ky (so that one ky's weights, 6 KB, stay in L1), each input
  // row Y of several input channels is summed in registers from every nonzero at output row
  // y = Y - ky (g * W[c][ic][ky] at columns x..x+4) onto what earlier kernel rows left there, with
  // multiply-adds only on the row's vectors that columns x..x+4 fall in: the nonzeros are sorted
  // by output row and by that span.
  struct Tap {
    float gradient;
    int offset;  // of the nonzero's widened kernel row in kernel row 0's slots, minus x
  };
  int bucketStart[10 * kRowSpans + 1] = {};
  auto bucketOf = [](const Nonzero& n) { return n.y * kRowSpans + rowSpanOf(n.x); };
  for (int k = 0; k < count; ++k) ++bucketStart[bucketOf(nonzero[k]) + 1];
  for (int b = 0; b < 10 * kRowSpans; ++b) bucketStart[b + 1] += bucketStart[b];
  Tap sorted[16 * kConv2Phase];
  int next[10 * kRowSpans];
  std::memcpy(next, bucketStart, sizeof(next));
  for (int k = 0; k < count; ++k) {
    sorted[next[bucketOf(nonzero[k])]++] = {nonzero[k].gradient,
                                            nonzero[k].channel * 6 * kConv2Wide + 16 - nonzero[k].x};
  }
  constexpr int kChannelsAtOnce = kInputRowVecs >= 4 ? 3 : 6;  // 12 or more independent sums
  for (int ky = 0; ky < 5; ++ky) {
    for (int first = 0; first < 6; first += kChannelsAtOnce) {
      const float* weights = wideWeight + (ky * 16 * 6 + first) * kConv2Wide;
      for (int y = 0; y < 10; ++y) {
        const int row = y + ky;
        const bool firstTouch = ky == 0 || y == 9;  // rows 0-9 first at ky 0, row 9 + ky first at ky
        Vec acc[kChannelsAtOnce][kInputRowVecs];
        for (int i = 0; i < kChannelsAtOnce; ++i) {
          for (int v = 0; v < kInputRowVecs; ++v)
            acc[i][v] =
                firstTouch ? splat(0.0f) : load(dIn + (first + i) * kPool1GradientChannel + row * 14 + v * kLanes);
        }
        forEachRowSpan([&](auto span) {
          constexpr int kFirst = firstColumnOfSpan(span) / kLanes, kLast = (firstColumnOfSpan(span) + 4) / kLanes;
          const int bucket = y * kRowSpans + span;
          for (int k = bucketStart[bucket]; k < bucketStart[bucket + 1]; ++k) {
            const Vec g = splat(sorted[k].gradient);
            const float* taps = weights + sorted[k].offset;
            for (int i = 0; i < kChannelsAtOnce; ++i) {
              for (int v = kFirst; v <= kLast; ++v) acc[i][v] += g * load(taps + i * kConv2Wide + v * kLanes);
            }
          }
        });
        for (int i = 0; i < kChannelsAtOnce; ++i) {
          for (int v = 0; v < kInputRowVecs; ++v)
            store(dIn + (first + i) * kPool1GradientChannel + row * 14 + v * kLanes, acc[i][v]);
        }
      }
    }
  }
}

// dWeight[16][6][5][5] += the padded rows' first 5 lanes.
inline void conv2AddWeightGradient(const float* dPaddedWeight, float* dWeight) {
  for (int row = 0; row < 16 * 30; ++row) {
    for (int kx = 0; kx < 5; ++kx) dWeight[row * 5 + kx] += dPaddedWeight[row * kKernelRun + kx];
  }
}
