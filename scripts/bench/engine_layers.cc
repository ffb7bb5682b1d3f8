// Per-layer roofline of the fused engine on one core: each layer's forward and backward kernels
// timed alone over a block of 64 random images, with their FLOPs and the bytes they read and
// write (compulsory traffic, once each). Times are the thread's CPU time, so other processes on a
// busy machine count less. It also measures the CPU's FP32 peak for the same vectors: 12
// independent chains of multiply-adds (enough to cover the latency of two FMA units), on one
// core and on every core at once. Built and run by `npm run bench` for the table the engine
// runs on this CPU (-march=native, less AVX-512 where the engine picks AVX2); prints one JSON object.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../../native/core/engine/kernels.h"

namespace lenet5::engine::bench {
#if defined(__AVX512F__)
#include <immintrin.h>
#define LENET5_LANES 16
#define LENET5_AVX512_MASKS
#define LENET5_ISA_NAME "avx512"
#elif defined(__AVX2__)
#include <immintrin.h>
#define LENET5_LANES 8
#define LENET5_AVX2_MASKS
#define LENET5_ISA_NAME "avx2"
#else
#define LENET5_LANES 4
#define LENET5_ISA_NAME "baseline"
#endif
#include "../../native/core/engine/kernels.inl"
}  // namespace lenet5::engine::bench

using namespace lenet5::engine::bench;

// Keeps a vector in a register without letting the compiler fold the loop.
#if defined(__x86_64__)
#define KEEP(v) "+x"(v)
#else
#define KEEP(v) "+w"(v)
#endif

// Multiply-adds on 12 independent vectors; returns a value so the loop cannot be dropped.
__attribute__((noinline)) static float fmaChains(long iterations, float seed) {
  Vec a0 = splat(seed), a1 = a0 + 1, a2 = a0 + 2, a3 = a0 + 3, a4 = a0 + 4, a5 = a0 + 5, a6 = a0 + 6, a7 = a0 + 7,
      a8 = a0 + 8, a9 = a0 + 9, a10 = a0 + 10, a11 = a0 + 11;
  const Vec mul = splat(0.999999f), add = splat(1e-7f);
  for (long i = 0; i < iterations; ++i) {
    a0 = a0 * mul + add, a1 = a1 * mul + add, a2 = a2 * mul + add, a3 = a3 * mul + add;
    a4 = a4 * mul + add, a5 = a5 * mul + add, a6 = a6 * mul + add, a7 = a7 * mul + add;
    a8 = a8 * mul + add, a9 = a9 * mul + add, a10 = a10 * mul + add, a11 = a11 * mul + add;
    __asm__(""
            : KEEP(a0), KEEP(a1), KEEP(a2), KEEP(a3), KEEP(a4), KEEP(a5), KEEP(a6), KEEP(a7), KEEP(a8), KEEP(a9),
              KEEP(a10), KEEP(a11));
  }
  return (a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11)[0];
}

// GFLOP/s of `threads` threads running fmaChains at once (wall clock), best of 3.
static double peakGflops(int threads) {
  constexpr long kIterations = 40'000'000;
  double best = 0;
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::vector<float> results(threads);
    std::vector<std::thread> team;
    const auto start = std::chrono::steady_clock::now();
    for (int t = 0; t < threads; ++t) team.emplace_back([&results, t] { results[t] = fmaChains(kIterations, 0.5f); });
    for (auto& thread : team) thread.join();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, threads * kIterations * 12.0 * kLanes * 2 / seconds / 1e9);
    if (results[0] == 12345.0f) std::printf(" ");  // uses the results
  }
  return best;
}

static double threadSeconds() {
  timespec now;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + 1e-9 * static_cast<double>(now.tv_nsec);
}
using lenet5::engine::kPixels;

int main(int argc, char** argv) {
  // --no-peak: the layers only (under an emulator the peak means nothing and takes minutes).
  const bool measurePeak = !(argc > 1 && std::string(argv[1]) == "--no-peak");
  constexpr int n = kBlockImages, classes = 10;
  std::mt19937 random(1);
  std::normal_distribution<float> normal(0, 0.1f);
  // Every buffer has kLanes floats of slack, as the engine's workspace does (copyRun spills).
  auto buffer = [](size_t size) { return std::vector<float>(size + kLanes, 0.0f); };
  auto randomVector = [&](size_t size) {
    std::vector<float> v = buffer(size);
    for (auto& x : v) x = normal(random);
    return v;
  };
  auto conv1W = randomVector(150), conv1B = randomVector(6), conv2W = randomVector(2400), conv2B = randomVector(16);
  auto fc1W = randomVector(48000), fc1B = randomVector(120), fc2W = randomVector(10080), fc2B = randomVector(84);
  auto fc3W = randomVector(840), fc3B = randomVector(10), grads = randomVector(61706);
  auto images = randomVector(n * kPixels), pool1 = randomVector(n * kPool1Size), features = randomVector(n * kFeatures);
  auto hidden1 = randomVector(n * 120), hidden2 = randomVector(n * 84), logits = randomVector(n * classes);
  auto dHidden1 = randomVector(n * 120), dHidden2 = randomVector(n * 84), dFeatures = randomVector(n * kFeatures);
  auto imagePhases = buffer(kInputPhases), paddedImage = buffer(32 * 32 + kKernelRun),
       conv1 = buffer(6 * kConv1Channel);
  auto conv2WT = buffer(kConv2Taps * 16), conv2 = buffer(kConv2Pixels * 16), conv2Wide = buffer(kConv2WideWeights),
       dConv2Padded = buffer(kConv2PaddedWeights);
  auto winner1 = buffer(n * kPool1Size), winner2 = buffer(n * kFeatures), dPool1 = buffer(6 * kPool1GradientChannel);
  std::vector<int64_t> labels(n);
  for (auto& l : labels) l = random() % classes;
  lenet5::engine::ImageSource source;

  // Fashion-MNIST-sized uint8 data for the whole training pass, so the cache misses of the real
  // loop's gathering are in its time.
  constexpr int kDatasetImages = 60000;
  auto params = randomVector(lenet5::engine::ParameterLayout(classes).total);
  std::vector<uint8_t> pixels(size_t{kDatasetImages} * kPixels);
  for (auto& p : pixels) p = static_cast<uint8_t>(random());
  std::vector<int64_t> order(kDatasetImages), datasetLabels(kDatasetImages);
  for (int i = 0; i < kDatasetImages; ++i) order[i] = i, datasetLabels[i] = random() % classes;
  std::shuffle(order.begin(), order.end(), random);
  std::vector<char> workspace(workspaceBytes(classes) + 64);
  lenet5::engine::ImageSource src;
  src.pixels = pixels.data();
  src.scale = 1.0f / 255 / 0.3f;
  src.shift = -0.3f;
  int64_t offset = 0;
  struct Row {
    const char* layer;
    double flop, bytes;
    std::function<void()> run;
  };
  const double f = sizeof(float);
  std::vector<Row> rows = {
      {"conv1 forward (direct)", 2.0 * 117600 * n, f * n * (784 + 150 + 6 * 784),
       [&] {
         for (int i = 0; i < n; ++i) {
           conv1Input(&images[i * kPixels], imagePhases.data());
           conv1Forward(imagePhases.data(), conv1W.data(), conv1B.data(), conv1.data());
         }
       }},
      {"relu + pool1 forward", 4.0 * 1176 * n, f * n * (6 * 784 + 2 * 1176),
       [&] {
         for (int i = 0; i < n; ++i) reluPool1Forward(conv1.data(), &pool1[i * kPool1Size], &winner1[i * kPool1Size]);
       }},
      {"conv2 forward (implicit im2row GEMM)", 2.0 * 240000 * n, f * n * (1176 + 2400 + 1600),
       [&] {
         for (int i = 0; i < n; ++i) {
           conv2Forward(&pool1[i * kPool1Size], conv2WT.data(), conv2B.data(), conv2.data());
         }
       }},
      {"relu + pool2 forward", 4.0 * 400 * n, f * n * (1600 + 800),
       [&] {
         for (int i = 0; i < n; ++i) reluPool2Forward(conv2.data(), &features[i * kFeatures], &winner2[i * kFeatures]);
       }},
      {"fc1-fc3 forward (block of 64)", 2.0 * (48000 + 10080 + 840) * n, f * (58920 + n * (400 + 120 + 84 + 10)),
       [&] {
         linearForward(n, 400, 120, features.data(), fc1W.data(), fc1B.data(), hidden1.data(), true);
         linearForward(n, 120, 84, hidden1.data(), fc2W.data(), fc2B.data(), hidden2.data(), true);
         linearForward(n, 84, classes, hidden2.data(), fc3W.data(), fc3B.data(), logits.data(), false);
       }},
      {"cross-entropy", 0, f * n * classes * 2,
       [&] { crossEntropy(n, classes, logits.data(), labels.data(), source, 0, 1.0f / n, true); }},
      {"fc3-fc1 backward", 4.0 * (48000 + 10080 + 840) * n, f * (2 * 58920 + n * 2 * (400 + 120 + 84 + 10)),
       [&] {
         linearBackward(n, 84, classes, hidden2.data(), fc3W.data(), logits.data(), &grads[0], &grads[840],
                        dHidden2.data());
         linearBackward(n, 120, 84, hidden1.data(), fc2W.data(), dHidden2.data(), &grads[1000], &grads[12000],
                        dHidden1.data());
         linearBackward(n, 400, 120, features.data(), fc1W.data(), dHidden1.data(), &grads[13000], &grads[61000],
                        dFeatures.data());
       }},
      {"pool2 + conv2 backward (sparse: pooling winners only)", 4.0 * 240000 * n,
       f * n * (3 * 400 + 2 * 1176 + 2 * 2400),
       [&] {
         for (int i = 0; i < n; ++i) {
           pool2Conv2Backward(&dFeatures[i * kFeatures], &features[i * kFeatures], &winner2[i * kFeatures],
                              &pool1[i * kPool1Size], conv2Wide.data(), dConv2Padded.data(), &grads[2556],
                              dPool1.data());
         }
       }},
      {"pool1 + conv1 backward (sparse: pooling winners only)", 2.0 * 117600 * n, f * n * (784 + 3 * 1176),
       [&] {
         for (int i = 0; i < n; ++i) {
           conv1PaddedInput(&images[i * kPixels], paddedImage.data());
           pool1Conv1Backward(dPool1.data(), &pool1[i * kPool1Size], &winner1[i * kPool1Size], paddedImage.data(),
                              &grads[0], &grads[150]);
         }
       }},
  };
  // Microseconds per image of run(), which handles n images: thread CPU time over at least 0.3 s.
  auto microsecondsPerImage = [](const std::function<void()>& run) {
    for (int warm = 0; warm < 20; ++warm) run();
    int reps = 0;
    const double start = threadSeconds();
    double seconds = 0;
    do {
      run();
      ++reps;
      seconds = threadSeconds() - start;
    } while (seconds < 0.3);
    return 1e6 * seconds / reps / n;
  };
  std::printf("{\"isa\":\"%s\",\"images\":%d,\"layers\":[", LENET5_ISA_NAME, n);
  for (size_t r = 0; r < rows.size(); ++r) {
    std::printf("%s{\"layer\":\"%s\",\"flopPerImage\":%.0f,\"bytesPerImage\":%.0f,\"microsecondsPerImage\":%.4f}",
                r ? "," : "", rows[r].layer, rows[r].flop / n, rows[r].bytes / n, microsecondsPerImage(rows[r].run));
  }
  // The whole training pass of a block as the engine runs it (trainImages: every layer, the image
  // loads, the weight packing), on uint8 images picked in a shuffled order.
  const double block = microsecondsPerImage([&] {
    src.index = order.data() + offset;
    offset = (offset + n) % (kDatasetImages - n);
    trainImages(params.data(), grads.data(), classes, src, datasetLabels.data(), 0, n, 1.0f / n, workspace.data());
  });
  std::printf("],\"trainingBlock\":{\"microsecondsPerImage\":%.4f}", block);
  if (!measurePeak) {
    std::printf("}\n");
    return 0;
  }
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  std::printf(",\"peak\":{\"coreGflops\":%.1f,\"allCoresGflops\":%.1f,\"cores\":%d}}\n", peakGflops(1),
              peakGflops(cores), cores);
}
