// Whole images through the network and back, a block of images at a time, on one thread.
// Convolutions and pooling run image by image with their activations in L1/L2; the fully
// connected layers run on the whole block; only what the backward pass needs is kept per image
// (pooled outputs and pooling winners, about 13 KB an image).

constexpr int kBlockImages = 64;
constexpr int kFeatures = 400;  // fc1's input: 16 x 5 x 5
constexpr int kHidden1 = 120;
constexpr int kHidden2 = 84;

// One thread's scratch memory, carved from a single allocation. Constructing it only computes
// addresses, so a null base measures the size (workspaceBytes).
struct Workspace {
  Workspace(void* memory, int classes) {
    uintptr_t cursor = reinterpret_cast<uintptr_t>(memory);
    auto take = [&cursor](size_t bytes) {
      const uintptr_t at = cursor;
      cursor += (bytes + 63) / 64 * 64;
      return at;
    };
    // kLanes floats of slack after each buffer: whole-vector loads and stores of short rows spill up to that far.
    auto floats = [&take](size_t count) { return reinterpret_cast<float*>(take((count + kLanes) * sizeof(float))); };
    image = floats(kPixels);
    imagePhases = floats(kInputPhases);
    paddedImage = floats(32 * 32 + kKernelRun);  // pool1Conv1Backward reads past its rows
    conv1 = floats(6 * kConv1Channel);
    pool1 = floats(kBlockImages * kPool1Size + kKernelRun);  // pool2Conv2Backward reads past its rows
    winner1 = floats(kBlockImages * kPool1Size);
    conv2WeightT = floats(kConv2Taps * 16);
    conv2 = floats(kConv2Pixels * 16);
    features = floats(kBlockImages * kFeatures);
    winner2 = floats(kBlockImages * kFeatures);
    hidden1 = floats(kBlockImages * kHidden1);
    hidden2 = floats(kBlockImages * kHidden2);
    logits = floats(kBlockImages * classes);
    dFeatures = floats(kBlockImages * kFeatures);
    dHidden1 = floats(kBlockImages * kHidden1);
    dHidden2 = floats(kBlockImages * kHidden2);
    conv2WideWeight = floats(kConv2WideWeights);
    dConv2PaddedWeight = floats(kConv2PaddedWeights);
    dPool1 = floats(6 * kPool1GradientChannel);
    size = cursor - reinterpret_cast<uintptr_t>(memory);
  }
  // Padding that the kernels read but never write must be zero; conv2's weight is packed as its
  // forward pass reads it.
  void prepare(const float* conv2Weight) {
    std::memset(imagePhases, 0, (kInputPhases + kLanes) * sizeof(float));
    conv2TransposeWeight(conv2Weight, conv2WeightT);
  }
  // The same for the backward pass, and its conv2 weight gradient (summed over a call) cleared.
  void prepareBackward(const float* conv2Weight) {
    std::memset(paddedImage, 0, (32 * 32 + kKernelRun) * sizeof(float));
    conv2WidenWeight(conv2Weight, conv2WideWeight);
    std::memset(dConv2PaddedWeight, 0, kConv2PaddedWeights * sizeof(float));
  }
  float *image, *imagePhases, *paddedImage, *conv1, *pool1, *conv2WeightT, *conv2, *features, *hidden1, *hidden2,
      *logits;
  float *dFeatures, *dHidden1, *dHidden2, *conv2WideWeight, *dConv2PaddedWeight, *dPool1;
  float *winner1, *winner2;  // pooling winners, 0-3
  size_t size;
};

inline size_t workspaceBytes(int classes) { return Workspace(nullptr, classes).size; }

inline void loadImage(const ImageSource& source, int64_t i, float* image) {
  const int64_t row = source.row(i);
  if (source.normalized != nullptr) {
    std::memcpy(image, source.normalized + row * kPixels, kPixels * sizeof(float));
    return;
  }
  const uint8_t* pixels = source.pixels + row * kPixels;
  for (int p = 0; p < kPixels; ++p) image[p] = static_cast<float>(pixels[p]) * source.scale + source.shift;
}

// Starts loading image i into the cache: the images of a shuffled epoch come from anywhere in the
// data set, so each costs a dozen cache misses that the previous image's work can hide.
inline void prefetchImage(const ImageSource& source, int64_t i) {
  const int64_t row = source.row(i);
  const bool floats = source.normalized != nullptr;
  const char* start = floats ? reinterpret_cast<const char*>(source.normalized + row * kPixels)
                             : reinterpret_cast<const char*>(source.pixels + row * kPixels);
  const size_t bytes = kPixels * (floats ? sizeof(float) : 1);
  for (size_t at = 0; at < bytes; at += 64) __builtin_prefetch(start + at);
  __builtin_prefetch(start + bytes - 1);
}

struct Weights {
  Weights(const float* params, const ParameterLayout& layout)
      : conv1(params + layout.conv1Weight),
        conv1Bias(params + layout.conv1Bias),
        conv2(params + layout.conv2Weight),
        conv2Bias(params + layout.conv2Bias),
        fc1(params + layout.fc1Weight),
        fc1Bias(params + layout.fc1Bias),
        fc2(params + layout.fc2Weight),
        fc2Bias(params + layout.fc2Bias),
        fc3(params + layout.fc3Weight),
        fc3Bias(params + layout.fc3Bias) {}
  const float *conv1, *conv1Bias, *conv2, *conv2Bias, *fc1, *fc1Bias, *fc2, *fc2Bias, *fc3, *fc3Bias;
};

// Forward pass of images [first, first + n) into ws.logits. For training it keeps what the
// backward pass needs (every image's pooled conv1 output and both layers' pooling winners);
// inference reuses one image's buffers, so a block's activations stay in L1/L2.
template <bool Training>
inline void forwardBlock(const Weights& w, int classes, const ImageSource& source, int64_t first, int n,
                         Workspace& ws) {
  for (int i = 0; i < n; ++i) {
    float* pool1 = Training ? ws.pool1 + i * kPool1Size : ws.pool1;
    if (i + 1 < n) prefetchImage(source, first + i + 1);
    loadImage(source, first + i, ws.image);
    conv1Input(ws.image, ws.imagePhases);
    conv1Forward(ws.imagePhases, w.conv1, w.conv1Bias, ws.conv1);
    reluPool1Forward(ws.conv1, pool1, Training ? ws.winner1 + i * kPool1Size : nullptr);
    conv2Forward(pool1, ws.conv2WeightT, w.conv2Bias, ws.conv2);
    reluPool2Forward(ws.conv2, ws.features + i * kFeatures, Training ? ws.winner2 + i * kFeatures : nullptr);
  }
  linearForward(n, kFeatures, kHidden1, ws.features, w.fc1, w.fc1Bias, ws.hidden1, true);
  linearForward(n, kHidden1, kHidden2, ws.hidden1, w.fc2, w.fc2Bias, ws.hidden2, true);
  linearForward(n, kHidden2, classes, ws.hidden2, w.fc3, w.fc3Bias, ws.logits, false);
}

// Backward pass of the block whose forward pass (and dLogits, in ws.logits) is in `ws`.
inline void backwardBlock(const Weights& w, float* gradients, const ParameterLayout& layout, const ImageSource& source,
                          int64_t first, int n, Workspace& ws) {
  const int classes = layout.classes;
  linearBackward(n, kHidden2, classes, ws.hidden2, w.fc3, ws.logits, gradients + layout.fc3Weight,
                 gradients + layout.fc3Bias, ws.dHidden2);
  reluBackward(n * kHidden2, ws.hidden2, ws.dHidden2);
  linearBackward(n, kHidden1, kHidden2, ws.hidden1, w.fc2, ws.dHidden2, gradients + layout.fc2Weight,
                 gradients + layout.fc2Bias, ws.dHidden1);
  reluBackward(n * kHidden1, ws.hidden1, ws.dHidden1);
  linearBackward(n, kFeatures, kHidden1, ws.features, w.fc1, ws.dHidden1, gradients + layout.fc1Weight,
                 gradients + layout.fc1Bias, ws.dFeatures);
  for (int i = 0; i < n; ++i) {
    pool2Conv2Backward(ws.dFeatures + i * kFeatures, ws.features + i * kFeatures, ws.winner2 + i * kFeatures,
                       ws.pool1 + i * kPool1Size, ws.conv2WideWeight, ws.dConv2PaddedWeight,
                       gradients + layout.conv2Bias, ws.dPool1);
    if (i + 1 < n) prefetchImage(source, first + i + 1);
    loadImage(source, first + i, ws.image);
    conv1PaddedInput(ws.image, ws.paddedImage);
    pool1Conv1Backward(ws.dPool1, ws.pool1 + i * kPool1Size, ws.winner1 + i * kPool1Size, ws.paddedImage,
                       gradients + layout.conv1Weight, gradients + layout.conv1Bias);
  }
}

inline double trainImages(const float* params, float* gradients, int classes, const ImageSource& source,
                          const int64_t* labels, int64_t begin, int64_t end, float lossScale, void* memory) {
  const ParameterLayout layout(classes);
  const Weights w(params, layout);
  Workspace ws(memory, classes);
  ws.prepare(w.conv2);
  ws.prepareBackward(w.conv2);
  double loss = 0;
  for (int64_t first = begin; first < end; first += kBlockImages) {
    const int n = static_cast<int>(std::min<int64_t>(kBlockImages, end - first));
    forwardBlock<true>(w, classes, source, first, n, ws);
    loss += crossEntropy(n, classes, ws.logits, labels, source, first, lossScale, true);
    backwardBlock(w, gradients, layout, source, first, n, ws);
  }
  conv2AddWeightGradient(ws.dConv2PaddedWeight, gradients + layout.conv2Weight);
  return loss;
}

inline void forwardImages(const float* params, int classes, const ImageSource& source, int64_t begin, int64_t end,
                          float* logits, void* memory) {
  const ParameterLayout layout(classes);
  const Weights w(params, layout);
  Workspace ws(memory, classes);
  ws.prepare(w.conv2);
  for (int64_t first = begin; first < end; first += kBlockImages) {
    const int n = static_cast<int>(std::min<int64_t>(kBlockImages, end - first));
    forwardBlock<false>(w, classes, source, first, n, ws);
    std::memcpy(logits + (first - begin) * classes, ws.logits, static_cast<size_t>(n) * classes * sizeof(float));
  }
}

inline double evaluateImages(const float* params, int classes, const ImageSource& source, const int64_t* labels,
                             int64_t begin, int64_t end, int64_t* predicted, void* memory) {
  const ParameterLayout layout(classes);
  const Weights w(params, layout);
  Workspace ws(memory, classes);
  ws.prepare(w.conv2);
  double loss = 0;
  for (int64_t first = begin; first < end; first += kBlockImages) {
    const int n = static_cast<int>(std::min<int64_t>(kBlockImages, end - first));
    forwardBlock<false>(w, classes, source, first, n, ws);
    for (int i = 0; i < n; ++i) predicted[first + i] = firstMaximum(ws.logits + i * classes, classes);
    loss += crossEntropy(n, classes, ws.logits, labels, source, first, 1.0f, false);
  }
  return loss;
}

const Kernels kKernels = {LENET5_ISA_NAME, workspaceBytes, trainImages, forwardImages, evaluateImages, update};
