// The two convolutions, per image, each laid out for the 2x2 max-pooling that follows: output
// pixel (y, x) = (2py + dy, 2px + dx) belongs to pooling phase (dy, dx), and each phase is a plane
// (conv1) or a block of pixel rows (conv2) of its own, so pooling is an element-wise max of four. The input is split
// into its four row/column parity phases, where the W outputs of one phase row read W consecutive values.
//
// conv1: 1x28x28, zero padding 2, 6 filters of 5x5 -> 6 x 4 phases x 14 rows of 16 (14 outputs
//   and 2 lanes of spill). It runs directly on the input's phase planes (no im2col): an output
//   row of a phase is 16 consecutive floats, and so is the input each tap reads for it, so a
//   6-channel x 16-column tile of outputs stays in registers over the 25 taps.
//   forward   out[6][row] = sum over taps W[6][tap] * in(tap, row) + b     117,600 MAC
//   backward  dW[6][25]  += sum over rows dOut[6][row] . in(tap, row)      117,600 MAC
//             (no input gradient; dOut's spill lanes are zero)
// conv2: 6x14x14, 16 filters of 6x5x5, matrix products over the input's im2row rows (one row of
//   150 taps per output pixel, pixels in the pooling-phase order) with the 16 output channels
//   along the vector lanes: 100 rows x 16 columns tiles without remainder on every lane width,
//   where the channel-major product (16 rows x 100 columns) left part-filled tiles.
//   forward   out[100][16]  = rows[100][150] . W^T[150][16] + b            240,000 MAC
//   backward  dW^T[150][16] += rows^T . dOut[100][16]                      240,000 MAC
//             dCols[150][100] = W^T . dOut (channel-major), then col2im     240,000 MAC
//   W^T is packed once per call; dW^T is summed over the call's images and added to the gradient
//   (PyTorch's [16][150]) at its end. The rows are rebuilt for the backward pass rather than kept
//   for the whole block (60 KB an image).

constexpr int kConv1Row = 16;                   // one phase row of conv1's output, 14 used
constexpr int kConv1Phase = 14 * kConv1Row;     // a phase plane
constexpr int kConv1Channel = 4 * kConv1Phase;  // one output channel: 896 floats
constexpr int kConv1RowVecs = kConv1Row / kLanes;
constexpr int kInputPhases = 4 * 16 * 16;  // the zero-padded 32x32 image as four 16x16 phase planes
constexpr int kConv2Phase = 5 * 5;
constexpr int kConv2Pixels = 4 * kConv2Phase;
constexpr int kConv2Stride = roundUpToLanes(kConv2Pixels);
constexpr int kConv2Taps = 6 * 25;
constexpr int kPool1Size = 6 * 14 * 14;  // conv2's input per image

// Copies `Count` consecutive floats a whole vector at a time: it reads and writes up to the next
// multiple of kLanes, spilling past the run. Callers write runs in increasing address order, so
// each spill is overwritten by the next run, and every workspace buffer has kLanes floats of
// slack for the last one. Masked stores would avoid the spill, but on AMD's Zen cores
// vmaskmovps to memory is microcoded: it made im2col 3-5x slower than this.
template <int Count>
inline void copyRun(const float* src, float* dst) {
  for (int x = 0; x < Count; x += kLanes) store(dst + x, load(src + x));
}

// The four parity phases (even/odd rows x even/odd columns) of a Side x Side plane, each
// (Side/2)^2, joined back into the plane: plane[r][c] =
// phases[((r & 1) * 2 + (c & 1)) * (Side/2)^2 + (r / 2) * (Side/2) + c / 2].
template <int Side>
inline void joinPhases(const float* phases, float* plane) {
  constexpr int half = Side / 2;
  for (int r = 0; r < Side; ++r) {
    for (int c = 0; c < Side; ++c)
      plane[r * Side + c] = phases[((r & 1) * 2 + (c & 1)) * half * half + (r / 2) * half + c / 2];
  }
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

// Taps taps [first, first + Taps) of the weight gradient for all 6 channels: each of the 6 x Taps
// dot products runs over every output row in vector lanes and is summed across lanes once.
template <int Taps>
inline void conv1WeightGradient(const float* dOut, const float* in, int first, float* dWeight) {
  Vec acc[6][Taps] = {};
  for (int phase = 0; phase < 4; ++phase) {
    const int* offsets = kConv1Taps.offset[phase] + first;
    for (int py = 0; py < 14; ++py) {
      for (int j = 0; j < kConv1RowVecs; ++j) {
        const int row = phase * kConv1Phase + py * kConv1Row + j * kLanes;
        Vec g[6];
        for (int c = 0; c < 6; ++c) g[c] = load(dOut + c * kConv1Channel + row);
        for (int t = 0; t < Taps; ++t) {
          const Vec x = load(in + offsets[t] + py * 16 + j * kLanes);
          for (int c = 0; c < 6; ++c) acc[c][t] += g[c] * x;
        }
      }
    }
  }
  for (int c = 0; c < 6; ++c) {
    for (int t = 0; t < Taps; ++t) dWeight[c * 25 + first + t] += laneSum(acc[c][t]);
  }
}

// dOut: 6 x 4 phases x 14 rows of kConv1Row with zero spill lanes; in: conv1Input's planes.
inline void conv1Backward(const float* dOut, const float* in, float* dWeight, float* dBias) {
  for (int c = 0; c < 6; ++c) dBias[c] += rowSum(dOut + c * kConv1Channel, kConv1Channel);
  for (int first = 0; first < 24; first += 2) conv1WeightGradient<2>(dOut, in, first, dWeight);
  conv1WeightGradient<1>(dOut, in, 24, dWeight);
}

// W[16][150] -> W^T[150][16].
inline void conv2TransposeWeight(const float* weight, float* weightT) {
  for (int c = 0; c < 16; ++c) {
    for (int tap = 0; tap < kConv2Taps; ++tap) weightT[tap * 16 + c] = weight[c * kConv2Taps + tap];
  }
}

// rows: conv2Rows of the input; out: [100 pixels][16 channels].
inline void conv2Forward(const float* rows, const float* weightT, const float* bias, float* out) {
  for (int p = 0; p < kConv2Pixels; ++p) std::memcpy(out + p * 16, bias, 16 * sizeof(float));
  productAccumulate(kConv2Pixels, 16, kConv2Taps, rows, kConv2Taps, 1, weightT, 16, out, 16, true);
}

// conv2's col2im for one input channel, into its phase-split gradient (4 planes of 7x7): input
// pixel (2R + pr, 2C + pc) collects, for every r = dy + ky = 2rh + pr and c = dx + kx = 2ch + pc,
// the column entries of output pixel (R - rh, C - ch). Each 7-wide destination row is summed in a
// register from shifted runs of 5 columns and stored once: no read-modify-write of memory. The
// loops unroll completely, so every bound, address offset and mask is a constant.
inline void conv2Col2im(const float* dCols, float* dPhases) {
#pragma GCC unroll 8
  for (int parity = 0; parity < 4; ++parity) {
    const int pr = parity >> 1, pc = parity & 1;
#pragma GCC unroll 8
    for (int row = 0; row < 7; ++row) {
      float* dst = dPhases + parity * 49 + row * 7;
      if constexpr (kLanes >= 8) {
        Vec sum = {};
#pragma GCC unroll 8
        for (int rh = 0; rh < 3; ++rh) {
          const int py = row - rh, r = 2 * rh + pr;
          if (py < 0 || py > 4 || r > 5) continue;
#pragma GCC unroll 8
          for (int ch = 0; ch < 3; ++ch) {
            const int c = 2 * ch + pc;
            if (c > 5) continue;
#pragma GCC unroll 8
            for (int ky = r > 0 ? r - 1 : 0; ky <= (r < 4 ? r : 4); ++ky) {
#pragma GCC unroll 8
              for (int kx = c > 0 ? c - 1 : 0; kx <= (c < 4 ? c : 4); ++kx) {
                const int phase = (r - ky) * 2 + (c - kx);
                sum += loadShifted(dCols + (ky * 5 + kx) * kConv2Stride + phase * kConv2Phase + py * 5, 5, ch);
              }
            }
          }
        }
        storeFirst(dst, sum, 7);
      } else {
        float sum[7] = {};
        for (int rh = 0; rh < 3; ++rh) {
          const int py = row - rh, r = 2 * rh + pr;
          if (py < 0 || py > 4 || r > 5) continue;
          for (int ch = 0; ch < 3; ++ch) {
            const int c = 2 * ch + pc;
            if (c > 5) continue;
            for (int ky = r > 0 ? r - 1 : 0; ky <= (r < 4 ? r : 4); ++ky) {
              for (int kx = c > 0 ? c - 1 : 0; kx <= (c < 4 ? c : 4); ++kx) {
                const float* run =
                    dCols + (ky * 5 + kx) * kConv2Stride + ((r - ky) * 2 + (c - kx)) * kConv2Phase + py * 5;
                for (int x = 0; x < 5; ++x) sum[x + ch] += run[x];
              }
            }
          }
        }
        std::memcpy(dst, sum, sizeof(sum));
      }
    }
  }
}

// conv2's im2row, for its forward pass and weight gradient: rows[p][ic*25 + ky*5 + kx] =
// in[ic][y+ky][x+kx] for output pixel p = (y, x) in the pooling-phase order. Each row is 30 runs
// of 5 consecutive input values.
inline void conv2Rows(const float* in, float* rows) {
  for (int phase = 0; phase < 4; ++phase) {
    for (int py = 0; py < 5; ++py) {
      for (int px = 0; px < 5; ++px) {
        float* row = rows + (phase * kConv2Phase + py * 5 + px) * kConv2Taps;
        const float* corner = in + (2 * py + (phase >> 1)) * 14 + 2 * px + (phase & 1);
        for (int ic = 0; ic < 6; ++ic) {
          for (int ky = 0; ky < 5; ++ky) copyRun<5>(corner + ic * 196 + ky * 14, row + ic * 25 + ky * 5);
        }
      }
    }
  }
}

// The gradient of conv2's output twice: dOutT[100][16] (pixel-major, for the weight gradient)
// and dOut[16][kConv2Stride] (channel-major, padding columns zero, for the input gradient); rows:
// conv2Rows of the input. Adds the weight gradient into dWeightT[150][16] and the bias gradient,
// and writes the gradient of conv2's input into dIn[6][14][14]. dCols, dPhases: scratch.
inline void conv2Backward(const float* dOutT, const float* dOut, const float* rows, const float* weight,
                          float* dWeightT, float* dBias, float* dCols, float* dPhases, float* dIn) {
  for (int c = 0; c < 16; ++c) dBias[c] += rowSum(dOut + c * kConv2Stride, kConv2Stride);
  productAccumulate(kConv2Taps, 16, kConv2Pixels, rows, 1, kConv2Taps, dOutT, 16, dWeightT, 16, true);
  productAccumulate(kConv2Taps, kConv2Stride, 16, weight, 1, kConv2Taps, dOut, kConv2Stride, dCols, kConv2Stride,
                    false);
  // col2im: each column entry is added back to the input pixel it was copied from.
  for (int ic = 0; ic < 6; ++ic) {
    conv2Col2im(dCols + ic * 25 * kConv2Stride, dPhases);
    joinPhases<14>(dPhases, dIn + ic * 196);
  }
}

// dWeight[16][150] += dWeightT[150][16].
inline void conv2AddWeightGradient(const float* dWeightT, float* dWeight) {
  for (int c = 0; c < 16; ++c) {
    for (int tap = 0; tap < kConv2Taps; ++tap) dWeight[c * kConv2Taps + tap] += dWeightT[tap * 16 + c];
  }
}
