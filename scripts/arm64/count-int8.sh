#!/usr/bin/env bash
# Instructions the int8 pass executes per image on arm64, per kernel table, counted under qemu
# (no arm64 hardware here): the pass alone (scripts/arm64/int8-count.cc, cross-compiled as the
# addon's engine is: -O3, -ffp-contract=fast) runs with one instruction per translation block and
# every block's execution logged (-one-insn-per-tb -d exec,nochain), so the log has one line per
# instruction executed. Per image: (count at 8 images - count at 4) / 4, which leaves out the
# program's start and the packing of the network (the fully connected layers run 4 images a tile).
# An instruction count, not a time: it says nothing of latencies, and qemu's -cpu max runs every table.
#   scripts/arm64/count-int8.sh [qemu-aarch64]   (default: build/arm64/qemu's, from npm run check:arm64)
set -euo pipefail
cd "$(dirname "$0")/../.."
QEMU=${1:-build/arm64/qemu/usr/bin/qemu-aarch64}
BINARY=build/arm64/int8-count
ENGINE=native/core/engine
mkdir -p build/arm64
aarch64-linux-gnu-g++ -std=c++17 -O3 -DNDEBUG -ffp-contract=fast -static -pthread scripts/arm64/int8-count.cc \
  "$ENGINE"/int8.cc "$ENGINE"/int8_*.cc "$ENGINE"/worker_pool.cc -o "$BINARY"
executed() { # table, images
  "$QEMU" -one-insn-per-tb -d exec,nochain -D /dev/stdout "$BINARY" "$1" "$2" | grep -c '^Trace'
}
for table in $("$QEMU" "$BINARY" --list); do
  four=$(executed "$table" 4)
  eight=$(executed "$table" 8)
  printf '%-9s %9d instructions per image\n' "$table" $(((eight - four) / 4))
done
