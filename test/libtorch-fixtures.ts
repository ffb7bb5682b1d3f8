// Stand-ins for the PyPI LibTorch fetch (scripts/libtorch/pypi.mjs), shared by the tests of the
// resolver, the fetch and the install script: a cached LibTorch folder and a pip.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { root } from './helpers.js';

export const pins = JSON.parse(readFileSync(join(root, 'scripts/libtorch/wheels.json'), 'utf8')) as {
  version: string;
  arches: Record<string, { cpu: { file: string }[] }>;
};

/** The folder name of this machine's CPU LibTorch in the cache. */
export const libtorchName = `libtorch-${pins.version}-linux-${process.arch}-cpu`;

/**
 * Makes `cache` hold a complete PyPI LibTorch folder as the fetch leaves it: a stand-in header and
 * library (`lib/libc10.so`, 17 bytes), and the manifest that records their sizes and SHA-256; with
 * `headers: false`, as a fetch for the prebuilt addon leaves it (the library only).
 */
export function writeLibtorchCache(cache: string, { headers = true } = {}): string {
  const libtorch = join(cache, libtorchName);
  const files: Record<string, { size: number; sha256: string }> = {};
  for (const [file, text] of [
    ...(headers
      ? [
          ['include/torch/csrc/api/include/torch/torch.h', '#pragma once\n'],
          ['include/torch/csrc/api/include/torch/all.h', '#error "C++20 or later compiler required"\n'],
        ]
      : []),
    ['lib/libc10.so', 'ELF and then some'],
  ]) {
    mkdirSync(dirname(join(libtorch, file)), { recursive: true });
    writeFileSync(join(libtorch, file), text);
    files[file] = { size: text.length, sha256: createHash('sha256').update(text).digest('hex') };
  }
  writeFileSync(join(libtorch, 'lenet5-libtorch.json'), JSON.stringify({ version: pins.version, cxx11Abi: true, headers, files }));
  return cache;
}

/** A stand-in python at `path`: `-m pip --version` answers like pip, `-m pip download -d DIR` writes the pinned file names with `content`. */
export function writeFakePython(path: string, content: string): string {
  const files = pins.arches[process.arch].cpu.map((wheel) => wheel.file);
  writeFileSync(
    path,
    `#!/bin/sh
case "$*" in *--version*) echo "pip 24.0 (a stand-in)"; exit 0;; esac
while [ $# -gt 0 ]; do [ "$1" = "-d" ] && out="$2"; shift; done
for f in ${files.join(' ')}; do printf '%s' '${content}' > "$out/$f"; done
`,
  );
  chmodSync(path, 0o755);
  return path;
}

/**
 * Compiles (with cc) into `dir` a stand-in for an addon built against the headers of another
 * LibTorch than the libraries it finds (1.13's headers, 2.x's lib/): it loads when symbols are bound
 * lazily, and calls one, `lenet5_symbol_of_other_headers`, that nothing defines. Returns its path.
 */
export function writeUnboundAddon(dir: string): string {
  const source = join(dir, 'other-headers.c');
  writeFileSync(
    source,
    `typedef void *napi_env;
typedef void *napi_value;
void lenet5_symbol_of_other_headers(void);
napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  if (!env) lenet5_symbol_of_other_headers();
  return exports;
}
`,
  );
  const addon = join(dir, 'other-headers.node');
  execFileSync('cc', ['-shared', '-fPIC', '-o', addon, source]);
  return addon;
}
