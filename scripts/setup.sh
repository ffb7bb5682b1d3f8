#!/usr/bin/env bash
# Installs what lenet5-libtorch needs on Debian/Ubuntu, then builds it. Idempotent and quiet
# when everything is already there.
#   apt: Fashion-MNIST, OpenBLAS (pthread), cmake, g++, Debian's LibTorch 1.13 + Python torch 1.13
#        (the oldest supported LibTorch, used by the compatibility tests), chromium (report tests),
#        clang-format and shellcheck (npm run lint checks native/ and the shell scripts)
#   pip: a project-local .venv with the newest PyTorch 2.x from PyPI: the LibTorch the build uses
#   npm: dependencies, the addon (cmake-js) and the TypeScript
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'setup: %s\n' "$*"; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

APT_PACKAGES=(dataset-fashion-mnist libopenblas0-pthread cmake g++ make libtorch-dev python3-torch python3-venv python3-pip chromium clang-format shellcheck)
missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    log "missing ${missing[*]}, and this is not a Debian/Ubuntu system: install the equivalents by hand (see README)."
    exit 1
  fi
  log "installing ${missing[*]} with apt-get"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The newest PyTorch 2.x from PyPI in .venv; its wheel carries the LibTorch we build against.
PYTHON="${PYTHON:-python3}"
if ! .venv/bin/python -c "import torch, numpy" >/dev/null 2>&1; then
  log "creating .venv with PyTorch from PyPI (several GB on first install)"
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check --upgrade torch numpy
fi

# npm install builds the addon (cmake-js) and compiles the TypeScript; skip it when nothing changed.
stamp=node_modules/.lenet5-installed
if [ ! -f "$stamp" ] || [ package.json -nt "$stamp" ] || [ package-lock.json -nt "$stamp" ] \
   || [ ! -f build/cmake/Release/lenet5_native.node ] || [ ! -f dist/cli/main.js ] \
   || [ -n "$(find native src CMakeLists.txt -newer "$stamp" -print -quit)" ]; then
  log "npm install (builds the native addon; a few minutes the first time)"
  # onnxruntime-node (a test dependency) would download CUDA files in its install script; its CPU build is in the package.
  npm_config_onnxruntime_node_install=skip npm install --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi
