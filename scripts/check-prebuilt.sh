#!/usr/bin/env bash
# The prebuilt addon on an old userland (docs/development.md, "Prebuilt addons"): the package as
# `npm pack` makes it is installed here without scripts into a fresh project, which is copied into
# ROOT (a Debian 11 root, say, with Node in it); there, in a private mount namespace that shows it
# this user's LibTorch cache and the Fashion-MNIST files, the package's own install script must
# pick the prebuilt addon and its load test pass, then `lenet5 info` and one epoch of
# `lenet5 train` must run. Nothing is compiled: the root needs no compiler.
#
# Usage: sudo scripts/check-prebuilt.sh [ROOT]      (ROOT defaults to $LENET5_PREBUILD_ROOT)
set -euo pipefail
cd "$(dirname "$0")/.."

root=${1:-${LENET5_PREBUILD_ROOT:-}}
log() { printf 'check-prebuilt: %s\n' "$*"; }
if [ -z "$root" ] || [ ! -x "$root/usr/local/bin/node" ]; then
  log "usage: $0 ROOT, a userland with Node at ROOT/usr/local/bin/node (docs/development.md says how to make one)"
  exit 2
fi
[ "$(id -u)" -eq 0 ] || { log "needs root (chroot and bind mounts)"; exit 2; }
data=${LENET5_DATA:-/usr/share/datasets/fashion-mnist}
cache=$(dirname "$(node scripts/libtorch/pypi.mjs --where)")

work=$(mktemp -d)
project="$root/lenet5-check-prebuilt"
trap 'rm -rf "$work" "$project"' EXIT
log "packing (prepack builds the prebuilt addon if the native sources changed)"
npm pack --silent --pack-destination "$work" >/dev/null
node scripts/libtorch/pypi.mjs >/dev/null # the LibTorch the install will pick, in this user's cache
mkdir -p "$work/project" && cd "$work/project"
npm init -y >/dev/null
npm install --silent --no-audit --no-fund --ignore-scripts "$work"/lenet5-libtorch-*.tgz
cp -a "$work/project" "$project"

# The inner script expands its own arguments, in the new mount namespace.
# shellcheck disable=SC2016
unshare --mount --propagation private bash -euo pipefail -c '
  root=$1 cache=$2 data=$3
  for dir in /dev /proc "$cache" "$data"; do mkdir -p "$root$dir"; mount --rbind "$dir" "$root$dir"; done
  chroot "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LENET5_CACHE_DIR="$cache" LENET5_DATA="$data" \
    LIBTORCH_USE_PYTORCH=0 bash -euo pipefail -c "
      echo \"check-prebuilt: in \$(. /etc/os-release && echo \$PRETTY_NAME), \$(ldd --version | head -1)\"
      cd /lenet5-check-prebuilt/node_modules/lenet5-libtorch
      log=\$(node scripts/build-addon.mjs 2>&1) && echo \"\$log\"
      grep -q \"using the prebuilt addon\" <<<\"\$log\"
      cd /lenet5-check-prebuilt
      node node_modules/.bin/lenet5 info
      node node_modules/.bin/lenet5 train --epochs 1 --out /lenet5-check-prebuilt/m.pth 2>&1 | grep -E \"^(Epoch|Test)\"
    "
' check "$root" "$cache" "$data"
log "passed"
