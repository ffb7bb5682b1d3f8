#!/usr/bin/env node
// LibTorch from PyPI, for machines that have none: pip downloads the pinned torch wheel and the
// two NVIDIA runtime wheels its libtorch_cpu.so lists as NEEDED (wheels.json: versions and
// SHA-256), we check each file's hash, extract only what the addon needs into a per-user cache
// shared by every project, and delete the wheels. pip is the client because it already honours
// the user's index, proxy and certificate settings (PIP_INDEX_URL, pip.conf); we name no host.
//
// The cache folder appears whole or not at all: it is extracted under a temporary name and
// renamed, so two installs running at once both end with the same complete folder.
//
// Usage: pypi.mjs [--arch x64|arm64] [--cuda] [--where]   prints the LibTorch folder on stdout
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import yauzl from 'yauzl';

const here = dirname(fileURLToPath(import.meta.url));
/** @type {{ version: string, pythonVersion: string, arches: Record<string, { platforms: string[], cpu: Wheel[], cuda?: { torchTake: string[], wheels: Wheel[] } }> }} */
export const PINS = JSON.parse(readFileSync(join(here, 'wheels.json'), 'utf8'));

/** @typedef {{ requirement: string, file: string, sha256: string, take: string[] }} Wheel */

/** The folder that holds every cached LibTorch: $LENET5_CACHE_DIR, else $XDG_CACHE_HOME/lenet5-libtorch, else ~/.cache/lenet5-libtorch. */
export function cacheRoot() {
  if (process.env.LENET5_CACHE_DIR) return resolve(process.env.LENET5_CACHE_DIR);
  const base = process.env.XDG_CACHE_HOME ? resolve(process.env.XDG_CACHE_HOME) : join(homedir(), '.cache');
  return join(base, 'lenet5-libtorch');
}

/** Node's name for this machine's architecture, as wheels.json keys it. */
export function hostArch() {
  return process.arch;
}

/** 'cuda' when LENET5_CUDA=1 asks for the GPU libraries, else 'cpu'. */
export function wantedVariant() {
  return process.env.LENET5_CUDA === '1' ? 'cuda' : 'cpu';
}

/**
 * The wheels of one arch and variant: the CPU set, plus the CUDA additions for 'cuda'.
 * @param {string} arch
 * @param {'cpu' | 'cuda'} variant
 * @returns {Wheel[]}
 */
export function wheelsFor(arch, variant) {
  const pins = PINS.arches[arch];
  if (!pins) {
    throw new Error(`PyPI's LibTorch is pinned for ${Object.keys(PINS.arches).join(' and ')} only, not ${arch}.`);
  }
  if (variant === 'cpu') return pins.cpu;
  if (!pins.cuda)
    throw new Error(`No CUDA build of LibTorch is pinned for ${arch}: use a Python PyTorch with CUDA (LENET5_PYTHON) or LIBTORCH.`);
  // The GPU libraries of the same torch wheel, plus the NVIDIA wheels they load.
  const [torch, ...runtime] = pins.cpu;
  return [{ ...torch, take: [...torch.take, ...pins.cuda.torchTake] }, ...runtime, ...pins.cuda.wheels];
}

/** @param {string} arch @param {string} variant */
export function libtorchDir(arch, variant) {
  return join(cacheRoot(), `libtorch-${PINS.version}-linux-${arch}-${variant}`);
}

const MANIFEST = 'lenet5-libtorch.json';

/** The cached folder when it is complete (its manifest is written last), else undefined. @param {string} arch @param {string} variant */
export function cachedLibtorch(arch, variant) {
  const dir = libtorchDir(arch, variant);
  return existsSync(join(dir, MANIFEST)) ? dir : undefined;
}

/** @param {string} message */
function say(message) {
  process.stderr.write(`lenet5: ${message}\n`);
}

/** The Python whose pip downloads: LENET5_PYTHON, else python3, else python. */
function findPip() {
  const candidates = process.env.LENET5_PYTHON ? [process.env.LENET5_PYTHON] : ['python3', 'python'];
  for (const python of candidates) {
    const probe = spawnSync(python, ['-m', 'pip', '--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    if (probe.status === 0) return python;
  }
  throw new Error(
    `pip is needed to fetch LibTorch from PyPI, and none of ${candidates.join(', ')} has it ("python3 -m pip --version" failed).\n` +
      'Install it (Debian/Ubuntu: sudo apt-get install python3-pip), or provide a LibTorch another way (see below).',
  );
}

/** @param {string} path */
async function sha256Of(path) {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/**
 * Extracts the members `take` names from a wheel: torch/include/... to include/..., any .../lib/NAME to lib/NAME.
 * @param {string} wheelPath @param {string[]} take @param {string} dest
 * @returns {Promise<number>} bytes written
 */
async function extract(wheelPath, take, dest) {
  const zip = await new Promise((ok, fail) =>
    yauzl.open(wheelPath, { lazyEntries: true }, (error, file) => (error ? fail(error) : ok(file))),
  );
  let written = 0;
  const missing = new Set(take.filter((member) => !member.endsWith('/')));
  try {
    await new Promise((ok, fail) => {
      zip.on('error', fail);
      zip.on('end', ok);
      zip.on('entry', (entry) => {
        const name = entry.fileName;
        const wanted = !name.endsWith('/') && take.some((member) => (member.endsWith('/') ? name.startsWith(member) : name === member));
        if (!wanted) return zip.readEntry();
        missing.delete(name);
        const target = name.startsWith('torch/include/')
          ? join(dest, 'include', name.slice('torch/include/'.length))
          : join(dest, 'lib', name.slice(name.lastIndexOf('/') + 1));
        if (!resolve(target).startsWith(resolve(dest) + '/'))
          return fail(new Error(`${wheelPath}: member ${name} would be written outside ${dest}`));
        mkdirSync(dirname(target), { recursive: true });
        zip.openReadStream(entry, (error, stream) => {
          if (error) return fail(error);
          pipeline(stream, createWriteStream(target, { mode: target.endsWith('.h') ? 0o644 : 0o755 }))
            .then(() => {
              written += entry.uncompressedSize;
              zip.readEntry();
            })
            .catch(fail);
        });
      });
      zip.readEntry();
    });
  } finally {
    zip.close();
  }
  if (missing.size > 0) throw new Error(`${wheelPath} lacks ${[...missing].join(', ')}: wheels.json does not match this wheel.`);
  return written;
}

/** Removes temporary folders that installs killed midway left behind (their process is gone). */
function removeAbandonedTemps(root) {
  if (!existsSync(root)) return;
  for (const name of readdirSync(root)) {
    const match = name.match(/^\.tmp-(\d+)-/);
    if (!match) continue;
    let alive = true;
    try {
      process.kill(Number(match[1]), 0);
    } catch (error) {
      alive = /** @type {NodeJS.ErrnoException} */ (error).code === 'EPERM';
    }
    if (!alive) rmSync(join(root, name), { recursive: true, force: true });
  }
}

/**
 * Returns the cached LibTorch folder for `arch` and `variant`, fetching it first when it is missing.
 * @param {{ arch?: string, variant?: 'cpu' | 'cuda' }} [options]
 * @returns {Promise<string>}
 */
export async function provisionLibtorch({ arch = hostArch(), variant = wantedVariant() } = {}) {
  const cached = cachedLibtorch(arch, variant);
  if (cached) return cached;
  const wheels = wheelsFor(arch, variant);
  const pins = PINS.arches[arch];
  const root = cacheRoot();
  mkdirSync(root, { recursive: true });
  removeAbandonedTemps(root);
  const temp = join(root, `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const downloads = join(temp, 'wheels');
  const staged = join(temp, 'libtorch');
  mkdirSync(downloads, { recursive: true });
  try {
    const python = findPip();
    const requirements = join(temp, 'requirements.txt');
    writeFileSync(requirements, wheels.map((wheel) => `${wheel.requirement} --hash=sha256:${wheel.sha256}\n`).join(''));
    say(
      `fetching LibTorch ${PINS.version} (${variant === 'cuda' ? 'CUDA' : 'CPU'}, linux-${arch}) from PyPI with ${python} -m pip: ${wheels.length} wheels`,
    );
    const started = Date.now();
    const args = ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--require-hashes', '--disable-pip-version-check'];
    args.push('--python-version', PINS.pythonVersion, '--implementation', 'cp', ...pins.platforms.flatMap((p) => ['--platform', p]));
    args.push('-r', requirements, '-d', downloads);
    if (!process.stderr.isTTY) args.push('--progress-bar', 'off', '--quiet');
    // pip's progress bar goes to its stdout; send it to our stderr so that stdout stays ours.
    const pip = spawnSync(python, args, { stdio: ['ignore', 2, 2] });
    if (pip.status !== 0) throw new Error(`${python} -m pip download failed (exit ${pip.status ?? pip.signal}); its message is above.`);
    let downloaded = 0;
    for (const wheel of wheels) {
      const path = join(downloads, wheel.file);
      if (!existsSync(path)) throw new Error(`pip did not save ${wheel.file} (found: ${readdirSync(downloads).join(', ')}).`);
      const actual = await sha256Of(path);
      if (actual !== wheel.sha256) throw new Error(`${wheel.file} has SHA-256 ${actual}, expected ${wheel.sha256}: refusing it.`);
      downloaded += statSync(path).size;
    }
    say(`downloaded ${(downloaded / 1e6).toFixed(0)} MB in ${((Date.now() - started) / 1000).toFixed(0)} s; SHA-256 of each wheel checked`);
    let extracted = 0;
    for (const wheel of wheels) {
      extracted += await extract(join(downloads, wheel.file), wheel.take, staged);
      rmSync(join(downloads, wheel.file));
    }
    const manifest = { version: PINS.version, arch, variant, cxx11Abi: true, wheels: wheels.map(({ file, sha256 }) => ({ file, sha256 })) };
    writeFileSync(join(staged, MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
    const dir = libtorchDir(arch, variant);
    try {
      renameSync(staged, dir);
    } catch (error) {
      // Another install finished the same folder first: use theirs.
      if (!cachedLibtorch(arch, variant)) throw error;
    }
    say(`LibTorch ${PINS.version} ready in ${dir} (${(extracted / 1e6).toFixed(0)} MB)`);
    return dir;
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}

async function main(argv) {
  const arch = argv.includes('--arch') ? argv[argv.indexOf('--arch') + 1] : hostArch();
  const variant = argv.includes('--cuda') ? 'cuda' : wantedVariant();
  if (argv.includes('--where')) {
    console.log(libtorchDir(arch, variant));
    return;
  }
  try {
    console.log(await provisionLibtorch({ arch, variant }));
  } catch (error) {
    say(error instanceof Error ? error.message : String(error));
    process.exit(1);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main(process.argv.slice(2));
