#!/usr/bin/env bash
# Builds the addon with AddressSanitizer (+ LeakSanitizer) into build/asan and runs the native-heavy
# tests with it: model (training, abort, busy, dispose, non-finite) and reliability (kills, exit,
# concurrency, workers, memory). Node itself is not instrumented, so the ASan runtime is preloaded;
# the tests that start Python are left out, since the preload would reach Python's torch too. Leaks are reported only when their stack passes through this addon's code
# (native/): LibTorch and Node keep process-lifetime allocations on purpose.
#   scripts/asan.sh            (about 5 minutes to build on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${ASAN_SKIP_BUILD:-}" ] || npx cmake-js compile --out build/asan --CDLENET5_SANITIZE=ON --parallel "$(nproc)" > /tmp/lenet5-asan-build.log 2>&1 \
  || { tail -30 /tmp/lenet5-asan-build.log; exit 1; }
libasan="$(g++ -print-file-name=libasan.so)"
suppressions="$(mktemp)"
# Report a leak only if one of its frames is in lenet5_native.node's own sources.
cat > "$suppressions" <<'SUPP'
leak:libtorch
leak:libc10
leak:libgomp
leak:libcu
leak:libnv
leak:/usr/bin/node
leak:libstdc++
SUPP
export LD_PRELOAD="$libasan"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_odr_violation=0:protect_shadow_gap=0:replace_intrin=0:detect_container_overflow=0"
export LSAN_OPTIONS="suppressions=$suppressions:print_suppressions=0"
export LENET5_ADDON="build/asan/Release/lenet5_native.node"
npx vitest run test/model.test.ts test/reliability.test.ts "$@"
