// Compiles the functions between LENET5_TARGET_PUSH("features") and LENET5_TARGET_POP for those
// x86 instruction-set features, leaving the rest of the file (and every other file) for the
// default target: GCC spells this `#pragma GCC target`, clang `#pragma clang attribute`.
#pragma once

#define LENET5_PRAGMA(text) _Pragma(#text)
#if defined(__clang__)
#define LENET5_TARGET_PUSH(features) \
  LENET5_PRAGMA(clang attribute push(__attribute__((target(features))), apply_to = function))
#define LENET5_TARGET_POP LENET5_PRAGMA(clang attribute pop)
#else
#define LENET5_TARGET_PUSH(features) LENET5_PRAGMA(GCC push_options) LENET5_PRAGMA(GCC target(features))
#define LENET5_TARGET_POP LENET5_PRAGMA(GCC pop_options)
#endif
