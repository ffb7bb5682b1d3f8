// The int8 forward pass (int8.h describes the layout), written once over a few primitives that
// each int8_*.cc file defines for its instruction set before including this, inside its namespace:
//   Lanes                      8 int32 lanes
//   zeroLanes()                all 0
//   loadLanes(p)               32 bytes (packed weights, or a conv1 input row)
//   dotQuads(acc, a, w)        acc[l] + sum_j a[j] * w[4l + j]: a 4 u8 (broadcast), w s8
//   dotPairs(acc, a, x)        acc[l] + a[0] * x[2l] + a[1] * x[2l + 1]: a 2 int16 (broadcast), x int16
//   pin(acc)                   keeps a running sum as written (a register, no reassociation)
//   maxLanes(x, y)
//   requantized(sums, e, c)    quantize(relu(fround((sums + bias) * scale)), nextScale) as int32
//                              lanes, with lanes c..c+7 of epilogue e
//   requantize(sums, e, c, out)  the same as 8 bytes
//   storeChannelLast6(q, n, out) out[p * 6 + c] = q[c][p] for pixels p < n (may write 2 bytes past)
//   dequantize(sums, e, c, out)  8 floats: fround((sums + bias) * scale)
//   quantizeRow(x, scale, out)   28 int16: quantize(x[i], scale); false when an x[i] is NaN or infinite
// and, where it defines LENET5_INT8_CONV1_ROW, conv1Row(net, ky, row, acc): conv1's kernel row ky
// its own way (arm64's sdot table, on net.conv1Quads) instead of the int16 pairs below.

// The input image, quantized, into rows 2..29 (columns 2..29) of the zero-bordered conv1 input;
// false when a normalised value is NaN or infinite.
inline bool loadImage(const PackedNetwork& net, const Input& input, int64_t i, int16_t* image) {
  bool finite = true;
  for (int y = 0; y < kSide; ++y) {
    int16_t* row = image + (y + 2) * kImageStride + 2;
    if (input.normalized != nullptr) {
      finite &= quantizeRow(input.normalized + i * kPixels + y * kSide, net.inputScale, row);
    } else {
      const uint8_t* pixels = input.pixels + i * kPixels + y * kSide;
      for (int x = 0; x < kSide; ++x) row[x] = input.pixelLevels[pixels[x]];
    }
  }
  return finite;
}

// conv1 + ReLU + 2x2 max pool: 14x14x6 u8, channel-last. Lanes are 8 output pixels of one
// pooling phase (dy, dx) and pooled row py; the image row read as 32-bit lanes holds the pairs
// (x[2m + dx + 2p], x[2m + dx + 2p + 1]) for lanes m (taps kx = 2p and 2p + 1; the odd phase one
// int16 further on), so each tap pair is one unaligned load and one broadcast weight pair. One
// pass a row phase dy holds all 6 channels x the 2 column phases (12 sums, the 2 inputs and a
// weight: 15 of AVX2's 16 registers), so each input is loaded once for 6 channels; the pooled
// value is the maximum over the 4 phases.
inline void conv1(const PackedNetwork& net, const int16_t* image, uint8_t* out) {
  for (int py = 0; py < 14; ++py) {
    for (int half = 0; half < 2; ++half) {  // pooled columns 0-7, then 8-13 (2 lanes unused)
      Lanes rowMax[2][6];                   // per row phase dy and channel: the maximum over the column phases
      for (int dy = 0; dy < 2; ++dy) {
        Lanes acc[6][2];
        for (auto& channel : acc) {
          for (auto& a : channel) a = zeroLanes();
        }
        for (int ky = 0; ky < 5; ++ky) {
          const int16_t* row = image + (2 * py + dy + ky) * kImageStride + 16 * half;
#if defined(LENET5_INT8_CONV1_ROW)
          conv1Row(net, ky, row, acc);  // the table's own (int8_neon.inl with the dot product)
#else
          for (int pair = 0; pair < 3; ++pair) {
            Lanes x[2];
            for (int dx = 0; dx < 2; ++dx) {
              x[dx] = loadLanes(row + 2 * pair + dx);
              pin(x[dx]);
            }
            for (int c = 0; c < 6; ++c) {
              const int16_t* w = net.conv1.data() + (c * 15 + ky * 3 + pair) * 2;
              for (int dx = 0; dx < 2; ++dx) {
                acc[c][dx] = dotPairs(acc[c][dx], w, x[dx]);
                pin(acc[c][dx]);
              }
            }
          }
#endif
        }
        for (int c = 0; c < 6; ++c) rowMax[dy][c] = maxLanes(acc[c][0], acc[c][1]);
      }
      Lanes pooled[6];
      for (int c = 0; c < 6; ++c)
        pooled[c] = requantized(maxLanes(rowMax[0][c], rowMax[1][c]), net.epilogues[0], c * 8);
      storeChannelLast6(pooled, half ? 6 : 8, out + (py * 14 + 8 * half) * 6);
    }
  }
}

// conv2 + ReLU + 2x2 max pool: 5x5x16 u8, channel-last, fc1's input.
inline void conv2(const PackedNetwork& net, const uint8_t* in, uint8_t* out) {
  for (int py = 0; py < 5; ++py) {
    for (int px = 0; px < 5; ++px) {
      Lanes acc[2][4];
      for (auto& group : acc) {
        for (auto& a : group) a = zeroLanes();
      }
      const uint8_t* corner = in + (2 * py * 14 + 2 * px) * 6;
      for (int ky = 0; ky < 5; ++ky) {
        for (int quad = 0; quad < 8; ++quad) {
          const int8_t* w = net.conv2.data() + (ky * 8 + quad) * 64;
          const Lanes w0 = loadLanes(w), w1 = loadLanes(w + 32);
          const uint8_t* at = corner + ky * 14 * 6 + quad * 4;
          for (int phase = 0; phase < 4; ++phase) {
            const uint8_t* a = at + ((phase >> 1) * 14 + (phase & 1)) * 6;
            acc[0][phase] = dotQuads(acc[0][phase], a, w0);
            acc[1][phase] = dotQuads(acc[1][phase], a, w1);
          }
        }
      }
      for (int g = 0; g < 2; ++g) {
        requantize(maxLanes(maxLanes(acc[g][0], acc[g][1]), maxLanes(acc[g][2], acc[g][3])), net.epilogues[1], g * 8,
                   out + (py * 5 + px) * 16 + g * 8);
      }
    }
  }
}

// Images x Groups outputs of a linear layer: Images rows of `in` (quads u8 quads each, `inStride`
// apart) times groups [group, group + Groups) of `weights`; finish(image, group, sums) takes each.
template <int Images, int Groups, typename Finish>
inline void linearTile(const uint8_t* in, int inStride, int quads, const int8_t* weights, int groups, int group,
                       Finish finish) {
  Lanes acc[Images][Groups];
  for (auto& row : acc) {
    for (auto& a : row) a = zeroLanes();
  }
  for (int q = 0; q < quads; ++q) {
    Lanes w[Groups];
    for (int g = 0; g < Groups; ++g) w[g] = loadLanes(weights + (static_cast<size_t>(q) * groups + group + g) * 32);
    for (int i = 0; i < Images; ++i) {
      for (int g = 0; g < Groups; ++g) acc[i][g] = dotQuads(acc[i][g], in + i * inStride + q * 4, w[g]);
    }
  }
  for (int i = 0; i < Images; ++i) {
    for (int g = 0; g < Groups; ++g) finish(i, group + g, acc[i][g]);
  }
}

// A linear layer over n images, in tiles of 4 images x 2 groups of outputs (8 accumulators: the
// weights of a tile are loaded once for 4 images).
template <typename Finish>
inline void linear(int n, const uint8_t* in, int inStride, int inputs, const std::vector<int8_t>& weights, int groups,
                   Finish finish) {
  const int quads = inputs / 4;
  for (int group = 0; group < groups; group += 2) {
    for (int first = 0; first < n; first += 4) {
      const uint8_t* rows = in + first * inStride;
      auto at = [&](int i, int g, Lanes sums) { finish(first + i, g, sums); };
      const bool two = group + 1 < groups;
      switch (std::min(4, n - first)) {
        case 4:
          two ? linearTile<4, 2>(rows, inStride, quads, weights.data(), groups, group, at)
              : linearTile<4, 1>(rows, inStride, quads, weights.data(), groups, group, at);
          break;
        case 3:
          two ? linearTile<3, 2>(rows, inStride, quads, weights.data(), groups, group, at)
              : linearTile<3, 1>(rows, inStride, quads, weights.data(), groups, group, at);
          break;
        case 2:
          two ? linearTile<2, 2>(rows, inStride, quads, weights.data(), groups, group, at)
              : linearTile<2, 1>(rows, inStride, quads, weights.data(), groups, group, at);
          break;
        default:
          two ? linearTile<1, 2>(rows, inStride, quads, weights.data(), groups, group, at)
              : linearTile<1, 1>(rows, inStride, quads, weights.data(), groups, group, at);
      }
    }
  }
}

inline bool forwardImages(const PackedNetwork& net, const Input& input, int64_t begin, int64_t end, float* logits,
                          Workspace& ws) {
  const int classes = net.classes;
  bool finite = true;
  for (int64_t first = begin; first < end; first += kBlockImages) {
    const int n = static_cast<int>(std::min<int64_t>(kBlockImages, end - first));
    for (int i = 0; i < n; ++i) {
      finite &= loadImage(net, input, first + i, ws.image);
      conv1(net, ws.image, ws.pool1);
      conv2(net, ws.pool1, ws.features + i * 400);
    }
    linear(n, ws.features, 400, 400, net.fc1, 15,
           [&](int i, int g, Lanes sums) { requantize(sums, net.epilogues[2], g * 8, ws.hidden1 + i * 120 + g * 8); });
    linear(n, ws.hidden1, 120, 120, net.fc2, 11, [&](int i, int g, Lanes sums) {
      requantize(sums, net.epilogues[3], g * 8, ws.hidden2 + i * kHidden2Stride + g * 8);
    });
    float* out = logits + (first - begin) * classes;
    linear(n, ws.hidden2, kHidden2Stride, 84, net.fc3, net.classGroups, [&](int i, int g, Lanes sums) {
      float values[8];
      dequantize(sums, net.epilogues[4], g * 8, values);
      std::memcpy(out + i * classes + g * 8, values, std::min(8, classes - g * 8) * sizeof(float));
    });
  }
  return finite;
}

const Kernels kKernels = {LENET5_INT8_NAME, forwardImages};
