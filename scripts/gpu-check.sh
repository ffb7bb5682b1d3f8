#!/usr/bin/env bash
# The prepared GPU check, for a Linux x86-64 machine with an NVIDIA GPU and Python PyTorch with
# CUDA (CMake and a C++ compiler present), possibly without Node.js or network. Prepare on a
# machine with Node: `scripts/gpu-pack.sh` (writes gpu-bundle/), and bring gpu-bundle/ and dist/
# along with the source tree. Then, on the GPU machine: `scripts/gpu-check.sh`.
# It builds the addon against that Python's LibTorch, runs the CUDA checks, benchmarks one epoch
# on the GPU against the seed's Python loop on the same GPU, and prints one JSON line. Under 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
bundle="${BUNDLE:-gpu-bundle}"
export PYTHON="${PYTHON:-python3}"
export LENET5_DATA="${LENET5_DATA:-$bundle/data}"

if ! command -v node >/dev/null; then
  mkdir -p /tmp/lenet5-node/bin
  xz -dc "$bundle/node.xz" > /tmp/lenet5-node/bin/node
  chmod +x /tmp/lenet5-node/bin/node
  export PATH="/tmp/lenet5-node/bin:$PATH"
fi
[ -d node_modules/cmake-js ] || tar xzf "$bundle/node_modules.tgz"

# Build against the Python's LibTorch (CUDA); the resolver picks python3 on PATH.
LENET5_PYTHON="$(command -v "$PYTHON")"
export LENET5_PYTHON
node node_modules/cmake-js/bin/cmake-js compile --out build/cmake --parallel "$(nproc)" >/tmp/lenet5-build.log 2>&1 \
  || { tail -40 /tmp/lenet5-build.log >&2; echo '{"error":"build failed"}'; exit 1; }
grep -m1 'lenet5: LibTorch' /tmp/lenet5-build.log >&2 || true
timeout 280 node scripts/gpu-check.mjs
