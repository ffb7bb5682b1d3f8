#!/usr/bin/env node
// The one LibTorch resolver. CMakeLists.txt, binding.gyp, scripts/build-addon.mjs and `lenet5 info`
// all ask it, so every build links the same LibTorch. The rule, in one sentence:
//   LIBTORCH if set, else the one source LENET5_LIBTORCH=pypi|python|system names, else a Python
//   whose torch imports, else PyPI's LibTorch from the cache (fetched into it unless
//   LENET5_LIBTORCH_DOWNLOAD=0), else the system one.
// A Python is LENET5_PYTHON, the package's .venv, then python3 on PATH (LIBTORCH_USE_PYTORCH=0 skips
// them, as in tch-rs). PyPI's LibTorch is fetched by scripts/libtorch/pypi.mjs (LENET5_CUDA=1: with
// the GPU libraries).
//
// Usage: find-libtorch.mjs [--json | --gyp include|libdir|libs|defines|std | --describe]
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fittingPrebuilt } from './libtorch/prebuilt.mjs';
import { PINS, cacheRoot, cachedLibtorch, hostArch, libtorchDamage, libtorchDir, librariesOnly, wantedVariant } from './libtorch/pypi.mjs';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCES = ['pypi', 'python', 'system'];

/**
 * The command that runs this build again once the user has changed what a failure message says.
 * Inside `npm install`, npm removes a package whose install script failed, so `npm rebuild` and
 * `npx lenet5` (which would ask the registry for another package of that name) cannot work then.
 */
export function retryCommand() {
  if (!projectRoot.split(sep).includes('node_modules')) return 'npm run build';
  if (process.env.npm_lifecycle_event === 'install') return 'npm install lenet5-libtorch';
  return 'npx lenet5 build --force';
}

/** Why the resolver found nothing: what it tried, and every way that works from a project that depends on this package. */
function notFoundHelp(tried) {
  const again = retryCommand();
  return `lenet5-libtorch: no LibTorch to build against. Tried, in order:
${tried.map((line) => `  - ${line}`).join('\n')}
Any one of these works; then run "${again}" again (with the variable, where one is named):
  1. Let the install fetch LibTorch ${PINS.version} from PyPI (about 550 MB once, cached in ${cacheRoot()}):
     it needs python3 with pip (Debian/Ubuntu: sudo apt-get install python3-pip) and your usual PyPI
     access (pip's own settings apply: PIP_INDEX_URL, proxies, pip.conf). LENET5_LIBTORCH_DOWNLOAD=0 forbids it.
  2. A Python that has PyTorch:    LENET5_PYTHON=/path/to/python ${again}
  3. An unpacked LibTorch:         LIBTORCH=/path/to/libtorch ${again}   (the folder with include/ and lib/)
  4. The system LibTorch:          sudo apt-get install libtorch-dev   (Debian/Ubuntu; LibTorch 1.13)`;
}

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
    cxxStandard: extra.cxxStandard ?? readCxxStandard(includeRoot),
    cxx11Abi: extra.cxx11Abi ?? readCxx11Abi([join(root, 'share/cmake/Torch'), join(libDir, 'cmake/Torch')]),
  };
}

/** @param {string} root */
function fromLibtorchEnv(root) {
  if (!existsSync(join(root, 'include/torch')) || !existsSync(join(root, 'lib'))) {
    throw new Error(
      `LIBTORCH=${root} does not look like an unpacked LibTorch: expected ${root}/include/torch and ${root}/lib.\n` +
        'Point LIBTORCH at the folder that holds include/ and lib/, or unset it to use another LibTorch.',
    );
  }
  return describeLayout('LIBTORCH', root, join(root, 'include'), join(root, 'lib'));
}

/** How long a Python may take to import torch and answer (a cold import takes seconds on a busy machine). */
const PYTHON_PROBE_TIMEOUT_MS = 60_000;

function pythonCandidates() {
  const list = [];
  if (process.env.LENET5_PYTHON) list.push(process.env.LENET5_PYTHON);
  list.push(join(projectRoot, '.venv/bin/python'), 'python3');
  return list;
}

/** @param {string[]} tried */
function fromPython(tried) {
  if (process.env.LIBTORCH_USE_PYTORCH === '0') {
    tried.push('a Python with PyTorch: skipped (LIBTORCH_USE_PYTORCH=0)');
    return undefined;
  }
  const probe =
    'import json, os, torch; print(json.dumps({"root": os.path.dirname(torch.__file__), ' +
    '"version": torch.__version__.split("+")[0], "abi": bool(torch.compiled_with_cxx11_abi())}))';
  for (const python of pythonCandidates()) {
    if (python.includes('/') && !existsSync(python)) {
      tried.push(`${python}: not there`);
      continue;
    }
    let found;
    try {
      // Isolated (-I) and from the root folder: a json.py or torch.py in the caller's folder must not run.
      const out = execFileSync(python, ['-I', '-c', probe], {
        cwd: '/',
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: PYTHON_PROBE_TIMEOUT_MS,
      });
      found = JSON.parse(out.trim().split('\n').pop() ?? '');
    } catch (error) {
      const timedOut = /** @type {NodeJS.ErrnoException} */ (error).code === 'ETIMEDOUT';
      tried.push(timedOut ? `${python}: did not answer within ${PYTHON_PROBE_TIMEOUT_MS / 1000} s` : `${python}: no "import torch"`);
      continue;
    }
    const includeRoot = join(found.root, 'include');
    if (!existsSync(join(includeRoot, 'torch/csrc/api/include/torch/torch.h'))) {
      tried.push(`${python}: its torch ${found.version} has no C++ headers`);
      continue;
    }
    return describeLayout(`python (${python})`, found.root, includeRoot, join(found.root, 'lib'), {
      version: found.version,
      cxx11Abi: found.abi,
    });
  }
  return undefined;
}

/** Whether the user cache holds an addon another project built against the LibTorch folder `dir`, which an install would reuse without compiling. @param {string} dir */
function addonSharedFor(dir) {
  const addons = join(cacheRoot(), 'addons');
  if (!existsSync(addons)) return false;
  return readdirSync(addons).some((key) => {
    try {
      return JSON.parse(readFileSync(join(addons, key, 'lenet5_native.json'), 'utf8')).libtorch.root === dir;
    } catch {
      return false;
    }
  });
}

/** @param {string} command @returns {string | undefined} the first line of `command --version`, when it runs */
function versionOf(command) {
  const probe = spawnSync(command, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 30_000 });
  return probe.status === 0 ? probe.stdout.split('\n')[0] : undefined;
}

/**
 * node-gyp's command, for a machine without cmake: npm's own copy during an npm script (npm names it
 * in npm_config_node_gyp), else one this package can resolve (a clone's devDependency), else undefined.
 */
export function nodeGypScript() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return fromNpm;
  try {
    return join(dirname(createRequire(import.meta.url).resolve('node-gyp/package.json')), 'bin/node-gyp.js');
  } catch {
    return undefined;
  }
}

/**
 * How this machine can compile the addon: cmake-js (cmake >= 3.19), else node-gyp over binding.gyp
 * (make and python3, which node-gyp's gyp runs); both need a C++ compiler (CXX, else c++). Returns
 * the tool, or what is missing.
 * @returns {{ tool: 'cmake-js' | 'node-gyp' } | { missing: string[] }}
 */
function buildTool() {
  const compiler = process.env.CXX || 'c++';
  const compilerMissing = versionOf(compiler)
    ? []
    : [`a C++ compiler (${process.env.CXX ? `CXX=${compiler} does not run` : 'no c++ on PATH'})`];
  const cmake = versionOf('cmake');
  const [major = 0, minor = 0] = (cmake?.match(/(\d+)\.(\d+)/) ?? []).slice(1).map(Number);
  if (cmake && (major > 3 || (major === 3 && minor >= 19)))
    return compilerMissing.length ? { missing: compilerMissing } : { tool: 'cmake-js' };
  const nodeGypMissing = [...(nodeGypScript() ? [] : ['node-gyp']), ...['make', 'python3'].filter((tool) => !versionOf(tool))];
  if (nodeGypMissing.length === 0) return compilerMissing.length ? { missing: compilerMissing } : { tool: 'node-gyp' };
  const cmakeFound = cmake ? `found ${cmake}` : 'not found on PATH';
  return { missing: [`cmake >= 3.19 (${cmakeFound}; node-gyp, the fallback, lacks ${nodeGypMissing.join(' and ')})`, ...compilerMissing] };
}

/**
 * The tool that will compile the addon (buildTool); throws, saying what is missing, when this
 * machine cannot compile it. Called before a compile, and before a long download that only a
 * compile would use.
 * @param {string} when
 * @returns {'cmake-js' | 'node-gyp'}
 */
export function checkBuildTools(when) {
  const found = buildTool();
  if ('tool' in found) return found.tool;
  throw new Error(
    `lenet5-libtorch: the addon has to be compiled on this machine, and it lacks ${found.missing.join(' and ')}; checked ${when}.\n` +
      `Install them (Debian/Ubuntu: sudo apt-get install cmake g++; Fedora: sudo dnf install cmake gcc-c++), then run "${retryCommand()}" again.`,
  );
}

/** PyPI's LibTorch from the cache; fetched into it first when `fetch` allows. @param {string[]} tried @param {boolean} fetch */
function fromPypi(tried, fetch) {
  const arch = hostArch();
  const variant = wantedVariant();
  let dir = cachedLibtorch(arch, variant);
  if (!dir && !fetch) {
    const damage = libtorchDamage(libtorchDir(arch, variant), false);
    tried.push(
      `PyPI's LibTorch ${PINS.version} in ${libtorchDir(arch, variant)}: ${damage}, and LENET5_LIBTORCH_DOWNLOAD=0 forbids fetching it`,
    );
    return undefined;
  }
  if (!dir) {
    // Only a compile needs the tools and LibTorch's headers: the package's prebuilt addon, or one another
    // project built, needs its libraries only (a compile later fetches the folder again with its headers).
    const prebuilt = fittingPrebuilt({ version: PINS.version, cuda: variant === 'cuda', cxx11Abi: true });
    const librariesOnly = 'addon' in prebuilt || addonSharedFor(libtorchDir(arch, variant));
    if (!librariesOnly) checkBuildTools(`before downloading LibTorch ${PINS.version} (about 550 MB)`);
    // The fetch is asynchronous (pip, hashing, unzip); this resolver answers build tools synchronously.
    const fetcher = spawnSync(
      process.execPath,
      [join(projectRoot, 'scripts/libtorch/pypi.mjs'), ...(librariesOnly ? ['--libraries-only'] : [])],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    if (fetcher.status !== 0) {
      tried.push(`PyPI's LibTorch ${PINS.version}: fetching it failed (the reason is printed above)`);
      return undefined;
    }
    dir = fetcher.stdout.trim();
  }
  const manifest = JSON.parse(readFileSync(join(dir, 'lenet5-libtorch.json'), 'utf8'));
  return describeLayout('pypi', dir, join(dir, 'include'), join(dir, 'lib'), {
    version: manifest.version,
    cxx11Abi: manifest.cxx11Abi,
    cxxStandard: PINS.cxxStandard,
  });
}

/** @param {string[]} tried */
function fromSystem(tried) {
  const includeRoot = '/usr/include';
  const libDirs = [
    '/usr/lib',
    ...readdirSync('/usr/lib')
      .filter((d) => d.endsWith('-linux-gnu'))
      .map((d) => join('/usr/lib', d)),
  ];
  const libDir = libDirs.find((dir) => existsSync(join(dir, 'libtorch.so')));
  if (!existsSync(join(includeRoot, 'torch/csrc/api/include/torch/torch.h')) || !libDir) {
    tried.push('the system LibTorch (libtorch-dev): not installed');
    return undefined;
  }
  return describeLayout('system', '/usr', includeRoot, libDir);
}

/** The LibTorch to build against, by the rule at the top of this file; throws the help text when there is none. */
export function findLibtorch() {
  if (process.env.LIBTORCH) return fromLibtorchEnv(process.env.LIBTORCH);
  const only = process.env.LENET5_LIBTORCH;
  if (only && !SOURCES.includes(only)) {
    throw new Error(
      `LENET5_LIBTORCH=${only} is not a LibTorch source: expected one of ${SOURCES.join(', ')}, or leave it unset to try them in turn.`,
    );
  }
  const fetch = process.env.LENET5_LIBTORCH_DOWNLOAD !== '0';
  const tried = [];
  const found = only
    ? { pypi: () => fromPypi(tried, fetch), python: () => fromPython(tried), system: () => fromSystem(tried) }[only]()
    : (fromPython(tried) ?? fromPypi(tried, fetch) ?? fromSystem(tried));
  if (!found) throw new Error(notFoundHelp(only ? [`LENET5_LIBTORCH=${only}: that source only`, ...tried] : tried));
  return found;
}

/** One line naming a resolved LibTorch: version, CUDA or not, source and folder. @param {ReturnType<typeof findLibtorch>} found */
export function describeLibtorch(found) {
  return `LibTorch ${found.version} (${found.cuda ? 'CUDA' : 'CPU only'}) from ${found.source}: ${found.libDir}`;
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
  // --json and --gyp answer a compile (CMakeLists.txt, binding.gyp): without headers it would fall back on
  // whatever /usr/include holds. build-addon.mjs fetches them first; a compile started another way stops here.
  if (mode !== '--describe' && found.source === 'pypi' && librariesOnly(found.root)) {
    console.error(
      `lenet5-libtorch: the cached LibTorch ${found.root} holds its libraries only (fetched for the prebuilt addon), without the headers a compile needs.\n` +
        `Build with "${retryCommand()}", which fetches it again with its headers first.`,
    );
    process.exit(1);
  }
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
    console.log(describeLibtorch(found));
  } else {
    console.log(JSON.stringify(found));
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main(process.argv.slice(2));
