// The fully connected layers over a block of n images at once, in PyTorch's layout
// (W[out][in], y = x W^T + b), so each weight matrix is read once per block, not per image.
//   forward   Y[n][out]   = X[n][in] . W^T + b            (dot products along `in`)
//   backward  dW[out][in] += dY^T . X, db += sum dY       (rows of X scaled and added)
//             dX[n][in]    = dY . W
// fc1 (400->120) holds 48,000 of the network's 61,706 weights (192 KB): per image it costs
// 48,000 MAC forward and 96,000 backward, shared over the block's images.

inline void linearForward(int n, int in, int out, const float* X, const float* weight, const float* bias, float* Y,
                          bool applyRelu) {
  for (int i = 0; i < n; ++i) std::memcpy(Y + i * out, bias, out * sizeof(float));
  productDot(n, out, in, X, in, weight, in, Y, out, true);
  if (applyRelu) {
    int i = 0;
    for (; i + kLanes <= n * out; i += kLanes) store(Y + i, reluVec(load(Y + i)));
    for (; i < n * out; ++i) Y[i] = relu(Y[i]);
  }
}

// dY is the gradient of the layer's output (already through the ReLU that follows it, if any).
// dX may be null (not needed for the first layer's input).
inline void linearBackward(int n, int in, int out, const float* X, const float* weight, const float* dY, float* dWeight,
                           float* dBias, float* dX) {
  for (int i = 0; i < n; ++i) {
    for (int o = 0; o < out; ++o) dBias[o] += dY[i * out + o];
  }
  productAccumulate(out, in, n, dY, 1, out, X, in, dWeight, in, true);
  if (dX != nullptr) productAccumulate(n, in, out, dY, out, 1, weight, in, dX, in, false);
}

// Gradient through a ReLU, given its output: passes where the output is positive.
inline void reluBackward(int count, const float* y, float* dY) {
  int i = 0;
  for (; i + kLanes <= count; i += kLanes) store(dY + i, load(y + i) > 0 ? load(dY + i) : Vec{});
  for (; i < count; ++i) dY[i] = y[i] > 0 ? dY[i] : 0.0f;
}
