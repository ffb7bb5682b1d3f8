#include "allocator.h"

#include <ATen/Parallel.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace lenet5 {
namespace {
constexpr int kTrimThreshold = 256 * 1024 * 1024;
}  // namespace

void keepFreedTensorMemory() {
#if defined(__GLIBC__)
  // Allocations below 32 MiB (every LeNet-5 activation at batch sizes up to ~1000) come from the
  // heap, and up to 256 MiB of free heap is kept instead of trimmed. Setting the thresholds also
  // turns off glibc's dynamic adjustment of them. (M_TOP_PAD stays at its default: each thread's
  // arena keeps that much when trimmed, so a larger pad shows up as resident memory.)
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, kTrimThreshold);
#endif
}

void releaseFreedTensorMemory() {
#if defined(__GLIBC__)
  // malloc_trim releases free memory inside every arena, but not the free top of a thread's own
  // arena; glibc shrinks that only when a large block next to it is freed, in that thread, while
  // the top exceeds the trim threshold. So: lower the threshold, and have this thread and each of
  // LibTorch's worker threads (they allocate too) free such a block; then restore it.
  mallopt(M_TRIM_THRESHOLD, 0);
  at::parallel_for(0, at::get_num_threads(), 1, [](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      void* volatile block = malloc(256 * 1024);  // volatile: the compiler may not elide the pair
      free(block);
    }
  });
  mallopt(M_TRIM_THRESHOLD, kTrimThreshold);
  malloc_trim(0);
#endif
}

}  // namespace lenet5
