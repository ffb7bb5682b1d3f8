#!/usr/bin/env node
// The one LibTorch resolver. CMakeLists.txt, binding.gyp and `lenet5 info` all ask it, so every
// build path links the same LibTorch. Lookup order (as tch-rs does it):
//   1. LIBTORCH=<dir>            an unpacked official LibTorch (CPU or CUDA)
//   2. a Python whose torch imports: the project's .venv, then python3 on PATH
//      (LIBTORCH_USE_PYTORCH=0 skips this step; LENET5_PYTHON names another Python)
//   3. the system LibTorch (Debian/Ubuntu libtorch-dev)
//
// Usage: find-libtorch.mjs [--json | --gyp include|libdir|libs|defines | --describe]
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const HELP = `No LibTorch was found. Provide one of these, then run npm install again:
  1. LIBTORCH=/path/to/libtorch   an unpacked LibTorch zip (CPU or CUDA build)
  2. a Python with PyTorch:       python3 -m venv .venv && .venv/bin/pip install torch
                                  (or any python3 on PATH whose "import torch" works;
                                  LENET5_PYTHON=/path/to/python picks one explicitly)
  3. the system LibTorch:         sudo apt-get install libtorch-dev   (Debian/Ubuntu)
scripts/setup.sh installs 2 and 3 for you on Debian/Ubuntu.`;

// LibTorch >= 2.10 keeps the numbers in torch/headeronly/version.h (the API's version.h includes it).
function readVersion(includeDir) {
  const header = ['torch/headeronly/version.h', 'torch/csrc/api/include/torch/version.h']
    .map((name) => join(includeDir, name))
    .find((path) => existsSync(path));
  if (!header) return undefined;
  const text = readFileSync(header, 'utf8');
  const part = (name) => text.match(new RegExp(`#define TORCH_VERSION_${name}\\s+(\\d+)`))?.[1];
  return [part('MAJOR'), part('MINOR'), part('PATCH')].join('.');
}

// TorchConfig.cmake records the C++ ABI the library was built with.
function readCxx11Abi(cmakeDirs) {
  for (const dir of cmakeDirs) {
    const config = join(dir, 'TorchConfig.cmake');
    if (!existsSync(config)) continue;
    const match = readFileSync(config, 'utf8').match(/_GLIBCXX_USE_CXX11_ABI=(\d)/);
    if (match) return match[1] === '1';
  }
  return true;
}

// Newer LibTorch headers refuse anything older than C++20; older ones are written for C++17.
function readCxxStandard(includeRoot) {
  const header = join(includeRoot, 'torch/csrc/api/include/torch/all.h');
  return existsSync(header) && readFileSync(header, 'utf8').includes('C++20 or later') ? 20 : 17;
}

function describeLayout(source, root, includeRoot, libDir, extra = {}) {
  const includeDirs = [includeRoot, join(includeRoot, 'torch/csrc/api/include')];
  const cuda = existsSync(join(libDir, 'libtorch_cuda.so'));
  // torch_cuda is not linked: the addon loads it at run time where a GPU driver exists (native/core/device.cc).
  const libs = ['torch_cpu', 'c10'];
  return {
    source,
    root,
    includeDirs,
    libDir,
    libs,
    cuda,
    version: extra.version ?? readVersion(includeRoot) ?? 'unknown',
    cxxStandard: readCxxStandard(includeRoot),
    cxx11Abi: extra.cxx11Abi ?? readCxx11Abi([join(root, 'share/cmake/Torch'), join(libDir, 'cmake/Torch')]),
  };
}

function fromLibtorchEnv() {
  const root = process.env.LIBTORCH;
  if (!root) return undefined;
  if (!existsSync(join(root, 'include/torch')) || !existsSync(join(root, 'lib'))) {
    throw new Error(
      `LIBTORCH=${root} does not look like an unpacked LibTorch: expected ${root}/include/torch and ${root}/lib.\n` +
        'Point LIBTORCH at the folder that holds include/ and lib/, or unset it to use another LibTorch.',
    );
  }
  return describeLayout('LIBTORCH', root, join(root, 'include'), join(root, 'lib'));
}

function pythonCandidates() {
  const list = [];
  if (process.env.LENET5_PYTHON) list.push(process.env.LENET5_PYTHON);
  list.push(join(projectRoot, '.venv/bin/python'), 'python3');
  return list;
}

function fromPython() {
  if (process.env.LIBTORCH_USE_PYTORCH === '0') return undefined;
  const probe =
    'import json, os, torch; print(json.dumps({"root": os.path.dirname(torch.__file__), ' +
    '"version": torch.__version__.split("+")[0], "abi": bool(torch.compiled_with_cxx11_abi())}))';
  for (const python of pythonCandidates()) {
    if (python.includes('/') && !existsSync(python)) continue;
    let found;
    try {
      const out = execFileSync(python, ['-c', probe], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60_000 });
      found = JSON.parse(out.trim().split('\n').pop() ?? '');
    } catch {
      continue;
    }
    const includeRoot = join(found.root, 'include');
    if (!existsSync(join(includeRoot, 'torch/csrc/api/include/torch/torch.h'))) continue; // a torch without C++ headers
    return describeLayout(`python (${python})`, found.root, includeRoot, join(found.root, 'lib'), {
      version: found.version,
      cxx11Abi: found.abi,
    });
  }
  return undefined;
}

function fromSystem() {
  const includeRoot = '/usr/include';
  if (!existsSync(join(includeRoot, 'torch/csrc/api/include/torch/torch.h'))) return undefined;
  const libDirs = [
    '/usr/lib',
    ...readdirSync('/usr/lib')
      .filter((d) => d.endsWith('-linux-gnu'))
      .map((d) => join('/usr/lib', d)),
  ];
  const libDir = libDirs.find((dir) => existsSync(join(dir, 'libtorch.so')));
  if (!libDir) return undefined;
  return describeLayout('system', '/usr', includeRoot, libDir);
}

export function findLibtorch() {
  const found = fromLibtorchEnv() ?? fromPython() ?? fromSystem();
  if (!found) throw new Error(HELP);
  return found;
}

function main(argv) {
  let found;
  try {
    found = findLibtorch();
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  }
  const [mode, what] = argv;
  if (mode === '--gyp') {
    const values = {
      include: found.includeDirs,
      libdir: [found.libDir],
      libs: found.libs.map((lib) => `-l${lib}`),
      defines: [`_GLIBCXX_USE_CXX11_ABI=${found.cxx11Abi ? 1 : 0}`, ...(found.cuda ? ['LENET5_TORCH_HAS_CUDA'] : [])],
      std: [`-std=c++${found.cxxStandard}`],
    }[what];
    if (!values) {
      console.error(`Unknown --gyp value ${what}; expected include, libdir, libs, defines or std`);
      process.exit(2);
    }
    console.log(values.join(' '));
  } else if (mode === '--describe') {
    console.log(`LibTorch ${found.version} (${found.cuda ? 'CUDA' : 'CPU only'}) from ${found.source}: ${found.libDir}`);
  } else {
    console.log(JSON.stringify(found));
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main(process.argv.slice(2));
