// Every kernel of the engine, in dependency order. Included once per instruction set by the
// isa_*.cc files, inside that instruction set's namespace (LENET5_LANES and LENET5_ISA_NAME set).
#include "simd.inl"
#include "gemm.inl"
#include "conv.inl"
#include "pool.inl"
#include "linear.inl"
#include "loss.inl"
#include "update.inl"
#include "pipeline.inl"
