#include "allocator.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace lenet5 {

void keepFreedTensorMemory() {
#if defined(__GLIBC__)
  // Allocations below 32 MiB (every LeNet-5 activation at batch sizes up to ~1000) come from the
  // heap, and up to 256 MiB of free heap is kept instead of trimmed. Setting the thresholds also
  // turns off glibc's dynamic adjustment of them.
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
  mallopt(M_TOP_PAD, 16 * 1024 * 1024);
#endif
}

}  // namespace lenet5
