// How the process's C allocator treats LibTorch's CPU tensors.
#pragma once

namespace lenet5 {

// Keeps freed tensor memory in the heap for reuse instead of returning it to the OS after every
// batch. Each training step allocates and frees activations of around a megabyte; with glibc's
// defaults they are mmap'd or trimmed and faulted in again each time (a quarter of the CPU time
// went to the kernel). PyTorch's CPU tuning guide suggests jemalloc or tcmalloc via LD_PRELOAD for
// the same reason; an addon cannot preload, so glibc is told directly. No-op on other C libraries.
void keepFreedTensorMemory();

// Returns the memory kept above to the OS. Called when a training run or an evaluation ends, so
// the process does not stay at its peak between calls. Each thread that trains may get its own
// glibc arena, and without this each would keep its working set.
void releaseFreedTensorMemory();

}  // namespace lenet5
