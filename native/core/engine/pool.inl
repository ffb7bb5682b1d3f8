// ReLU followed by 2x2 max-pooling with stride 2 (torch.relu, then F.max_pool2d), fused and
// vectorised over the four phases the convolutions write (conv.inl): window element q of output
// cell j is phase q's element j. The forward pass keeps each cell's winner (0-3,
// row-major in the window); ties go to the first maximum and NaN wins, as in PyTorch's
// max_pool2d kernel, so gradients are routed where PyTorch routes them.

inline Vec reluVec(Vec x) { return (x > 0 || x != x) ? x : Vec{}; }
inline float relu(float x) { return x > 0 || x != x ? x : 0.0f; }

// Lane by lane, the ReLU'd maximum of a window's four values load(0..3) and which of them won.
template <typename Load>
inline void reluMaxOfFour(Load load, Vec& best, Vec& which) {
  best = reluVec(load(0));
  which = Vec{};
  for (int q = 1; q < 4; ++q) {
    const Vec value = reluVec(load(q));
    const auto takes = value > best || value != value;
    best = takes ? value : best;
    which = takes ? splat(static_cast<float>(q)) : which;
  }
}

// conv2's ReLU and pooling: in is conv2's output [4 phases x 25 cells][16 channels]; out and
// winner (0.0-3.0, kept in float lanes) are channel-major 16 x 25, as fc1 reads its input.
// Inference passes no winner array: only the backward pass needs them.
inline void reluPool2Forward(const float* in, float* out, float* winner) {
  for (int cell = 0; cell < kConv2Phase; ++cell) {
    for (int c = 0; c < 16; c += kLanes) {
      Vec best, which;
      reluMaxOfFour([&](int q) { return load(in + (q * kConv2Phase + cell) * 16 + c); }, best, which);
      for (int lane = 0; lane < kLanes; ++lane) {
        out[(c + lane) * kConv2Phase + cell] = best[lane];
        if (winner != nullptr) winner[(c + lane) * kConv2Phase + cell] = which[lane];
      }
    }
  }
}

// conv1's ReLU and pooling: the same, over its phase planes of 14 rows of kConv1Row (conv.inl),
// into compact 14x14 channels. Whole vectors per row: the 2 spill lanes land on the start of the
// next row, which is written next (the buffers have slack for the last).
inline void reluPool1Forward(const float* in, float* out, float* winner) {
  for (int c = 0; c < 6; ++c) {
    for (int py = 0; py < 14; ++py) {
      for (int j = 0; j < kConv1RowVecs; ++j) {
        const float* planes = in + c * kConv1Channel + py * kConv1Row + j * kLanes;
        Vec best, which;
        reluMaxOfFour([planes](int q) { return load(planes + q * kConv1Phase); }, best, which);
        const int at = c * 196 + py * 14 + j * kLanes;
        store(out + at, best);
        if (winner != nullptr) store(winner + at, which);
      }
    }
  }
}
