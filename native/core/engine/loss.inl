// Cross-entropy on logits (F.cross_entropy: log_softmax then nll_loss), in float like PyTorch:
// loss = max + log(sum(exp(z - max))) - z[label]. With `scale` = 1 / batch size, dZ = scale *
// (softmax(z) - onehot(label)) replaces the logits in place when `gradient` is set.
// Returns the block's summed loss (in double, as the training loop accumulates it).
inline double crossEntropy(int n, int classes, float* logits, const int64_t* labels, const ImageSource& source,
                           int64_t first, float scale, bool gradient) {
  double total = 0;
  for (int i = 0; i < n; ++i) {
    float* z = logits + i * classes;
    const int64_t label = labels[source.row(first + i)];
    float max = z[0];
    for (int c = 1; c < classes; ++c) max = z[c] > max ? z[c] : max;
    float sum = 0;
    for (int c = 0; c < classes; ++c) sum += std::exp(z[c] - max);
    const float logSum = std::log(sum);
    total += static_cast<double>(logSum - (z[label] - max));
    if (gradient) {
      for (int c = 0; c < classes; ++c) z[c] = scale * (std::exp(z[c] - max - logSum) - (c == label ? 1.0f : 0.0f));
    }
  }
  return total;
}

// The predicted class: the first maximum, as torch.argmax returns (NaN counts as the maximum).
inline int64_t firstMaximum(const float* z, int classes) {
  int64_t best = 0;
  for (int c = 1; c < classes; ++c) {
    if (z[c] > z[best] || (std::isnan(z[c]) && !std::isnan(z[best]))) best = c;
  }
  return best;
}
