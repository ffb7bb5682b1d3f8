#include "allocator.h"

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
  // turns off glibc's dynamic adjustment of them.
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, kTrimThreshold);
  mallopt(M_TOP_PAD, 16 * 1024 * 1024);
#endif
}

void releaseFreedTensorMemory() {
#if defined(__GLIBC__)
  // malloc_trim releases free memory inside every arena, but not the free top of the calling
  // thread's arena when that is not the main one; glibc shrinks that only when a large block next
  // to it is freed while the top exceeds the trim threshold. So: lower the threshold, free such a
  // block, restore it.
  mallopt(M_TRIM_THRESHOLD, 0);
  void* volatile block = malloc(256 * 1024);  // volatile: the compiler may not elide the pair
  free(block);
  mallopt(M_TRIM_THRESHOLD, kTrimThreshold);
  malloc_trim(0);
#endif
}

}  // namespace lenet5
