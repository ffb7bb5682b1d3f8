#!/usr/bin/env node
// LibTorch from PyPI, for machines that have none: pip downloads the pinned torch wheel and the
// two NVIDIA runtime wheels its libtorch_cpu.so lists as NEEDED (wheels.json: versions and
// SHA-256), we check each file's hash, extract only what the addon needs into a per-user cache
// shared by every project, and delete the wheels. pip is the client because it already honours
// the user's index, proxy and certificate settings (PIP_INDEX_URL, pip.conf); we name no host.
//
// The cache folder appears whole or not at all: it is extracted into a temp folder and renamed,
// one install at a time (a lock per folder, scripts/libtorch/cache.mjs). Its manifest records the
// size and SHA-256 of every file; a folder that no longer matches is fetched again.
//
// An install that will use the package's prebuilt addon needs LibTorch's libraries only, not its
// 9,572 headers (most of the extraction's files and time): --libraries-only leaves them out and the
// manifest says so (`headers: false`); a later compile fetches the folder again with them.
//
// Usage: pypi.mjs [--arch x64|arm64] [--cuda] [--libraries-only] [--where]   prints the LibTorch folder on stdout
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, statfsSync, writeFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findDamage, makeTemp, removeAbandonedTemps, say, sha256OfFile, withLock } from './cache.mjs';

const here = dirname(fileURLToPath(import.meta.url));
/** @type {{ version: string, cxxStandard: number, pythonVersion: string, arches: Record<string, { megabytes: Record<string, { download: number, peak: number }>, platforms: string[], cpu: Wheel[], cuda?: { torchTake: string[], wheels: Wheel[] } }> }} */
export const PINS = JSON.parse(readFileSync(join(here, 'wheels.json'), 'utf8'));

/** @typedef {{ requirement: string, file: string, sha256: string, take: string[] }} Wheel */

/**
 * The folder that holds every cached LibTorch: $LENET5_CACHE_DIR, else $XDG_CACHE_HOME/lenet5-libtorch,
 * else ~/.cache/lenet5-libtorch. Never a relative path: npm runs the install inside the package,
 * which it deletes when the install fails, so a relative LENET5_CACHE_DIR is taken from the folder
 * npm was started in, a relative XDG_CACHE_HOME is ignored (as the XDG spec says), and an empty
 * HOME falls back to the user's home in the password database.
 */
export function cacheRoot() {
  if (process.env.LENET5_CACHE_DIR) return resolve(process.env.INIT_CWD ?? process.cwd(), process.env.LENET5_CACHE_DIR);
  const xdg = process.env.XDG_CACHE_HOME;
  if (xdg && isAbsolute(xdg)) return join(xdg, 'lenet5-libtorch');
  const home = [homedir, () => userInfo().homedir].map(tryHome).find((dir) => dir && isAbsolute(dir));
  if (!home) {
    throw new Error(
      'lenet5-libtorch: no folder for the LibTorch cache: HOME is empty and this user has no home folder.\n' +
        'Set LENET5_CACHE_DIR to an absolute path (or HOME), then install again.',
    );
  }
  return join(home, '.cache', 'lenet5-libtorch');
}

/** @param {() => string} read */
function tryHome(read) {
  try {
    return read();
  } catch {
    return undefined;
  }
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
/** The wheel's folder of C++ headers: only a compile reads them. */
const HEADERS = 'torch/include/';

/** @param {string} dir @returns {{ headers?: boolean, files?: Record<string, { size: number, sha256: string }> } | undefined} */
function readManifest(dir) {
  try {
    return JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * What is wrong with the cached folder `dir`, or undefined when it is whole: its manifest (written
 * last) must be there and every file it lists must have the recorded size (and SHA-256, when `hashes`).
 * @param {string} dir @param {boolean} hashes
 */
export function libtorchDamage(dir, hashes) {
  if (!existsSync(dir)) return 'it is not there';
  const manifest = readManifest(dir);
  if (!manifest) return `it has no readable manifest (${MANIFEST}): a half-written or half-removed folder`;
  return findDamage(dir, manifest.files, hashes);
}

/** Whether the cached folder `dir` was fetched without LibTorch's headers (for a prebuilt addon). @param {string} dir */
export function librariesOnly(dir) {
  return readManifest(dir)?.headers === false;
}

/** The cached folder when it is complete and its files have the sizes recorded, else undefined. @param {string} arch @param {string} variant */
export function cachedLibtorch(arch, variant) {
  const dir = libtorchDir(arch, variant);
  return libtorchDamage(dir, false) ? undefined : dir;
}

/** Seconds a Python may take to say whether it has pip. */
const PIP_PROBE_TIMEOUT_MS = 30_000;

/**
 * The Python whose pip downloads: LENET5_PYTHON, else python3, else python. Each is asked in
 * isolated mode (-I: no script folder, no user site, no PYTHON* variables) from a neutral folder,
 * so a json.py or pip.py in the caller's folder never runs; it counts only if it answers like pip.
 * @param {string} cwd
 */
function findPip(cwd) {
  const candidates = process.env.LENET5_PYTHON ? [process.env.LENET5_PYTHON] : ['python3', 'python'];
  const answers = [];
  for (const python of candidates) {
    const probe = spawnSync(python, ['-I', '-m', 'pip', '--version'], {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: PIP_PROBE_TIMEOUT_MS,
    });
    if (probe.status === 0 && /^pip \d/.test(probe.stdout)) return python;
    const failure = /** @type {NodeJS.ErrnoException | undefined} */ (probe.error);
    answers.push(
      failure?.code === 'ETIMEDOUT'
        ? `${python} did not answer within ${PIP_PROBE_TIMEOUT_MS / 1000} s`
        : failure
          ? `${python}: ${failure.message}`
          : probe.status === 0
            ? `${python} is not a Python with pip (it answered "${probe.stdout.trim().split('\n')[0].slice(0, 80)}")`
            : `${python} -m pip --version failed (exit ${probe.status ?? probe.signal})`,
    );
  }
  throw new Error(
    `pip is needed to fetch LibTorch from PyPI, and none of ${candidates.join(', ')} has it: ${answers.join('; ')}.\n` +
      'Install it (Debian/Ubuntu: sudo apt-get install python3-pip), point LENET5_PYTHON at a Python that has pip, or provide a LibTorch another way (see below).',
  );
}

/** Runs a command with its output on our stderr, without blocking the event loop (the cache lock stays fresh). @param {string} command @param {string[]} args @param {string} cwd */
function run(command, args, cwd) {
  return new Promise((ok, fail) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 2, 2] });
    child.on('error', fail);
    child.on('close', (code, signal) => ok(code ?? signal));
  });
}

/**
 * Extracts the members `take` names from a wheel (scripts/libtorch/extract-wheel.py: torch/include/...
 * to include/..., any .../lib/NAME to lib/NAME) with the Python that fetched it.
 * @param {string} python @param {string} wheelPath @param {string[]} take @param {string} dest
 * @returns {Promise<Record<string, { size: number, sha256: string }>>} each file written, for the manifest
 */
async function extract(python, wheelPath, take, dest) {
  const script = join(here, 'extract-wheel.py');
  const child = spawn(python, ['-I', script, wheelPath, dest, JSON.stringify(take)], { cwd: dest, stdio: ['ignore', 'pipe', 2] });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (text) => (out += text));
  const status = await new Promise((ok, fail) => {
    child.on('error', fail);
    child.on('close', (code, signal) => ok(code ?? signal));
  });
  if (status !== 0) throw new Error(`Extracting ${basename(wheelPath)} with ${python} failed (exit ${status}); its message is above.`);
  return JSON.parse(out);
}

/**
 * Returns the cached LibTorch folder for `arch` and `variant`, fetching it first when it is missing
 * or damaged (sizes checked; SHA-256 too when `hashes`), or lacks the headers that `headers` asks for.
 * @param {{ arch?: string, variant?: 'cpu' | 'cuda', hashes?: boolean, headers?: boolean }} [options]
 * @returns {Promise<string>}
 */
export async function provisionLibtorch({ arch = hostArch(), variant = wantedVariant(), hashes = false, headers = true } = {}) {
  const dir = libtorchDir(arch, variant);
  const root = cacheRoot();
  removeAbandonedTemps(root);
  const usable = () => !libtorchDamage(dir, hashes) && !(headers && librariesOnly(dir));
  if (usable()) return dir;
  const wheels = wheelsFor(arch, variant);
  // Under the lock: another install may have fetched it meanwhile, or may be fetching it now.
  return withLock(root, basename(dir), async () => {
    if (usable()) return dir;
    const damage = libtorchDamage(dir, hashes);
    if (damage && existsSync(dir)) {
      say(`the cached LibTorch ${dir} is damaged: ${damage}. Fetching it again.`);
      rmSync(dir, { recursive: true, force: true });
    } else if (!damage) {
      // Whole, and maybe in use by the prebuilt addon of a running project: it stays until the new folder replaces it.
      say(
        `the cached LibTorch ${dir} holds its libraries only (fetched for the prebuilt addon), and compiling needs its headers too. Fetching it again with them.`,
      );
    }
    checkFreeSpace(root, PINS.arches[arch].megabytes[variant].peak);
    const temp = makeTemp(root, basename(dir));
    try {
      const take = (/** @type {Wheel} */ wheel) => (headers ? wheel.take : wheel.take.filter((member) => !member.startsWith(HEADERS)));
      return await fetchInto(
        temp,
        dir,
        wheels.map((wheel) => ({ ...wheel, take: take(wheel) })),
        arch,
        variant,
        headers,
      );
    } finally {
      rmSync(temp, { recursive: true, force: true });
    }
  });
}

/**
 * Throws before a download that would fill the disk midway (pip's bare ENOSPC names neither the
 * folder nor the size needed).
 * @param {string} root @param {number} neededMB
 */
function checkFreeSpace(root, neededMB) {
  const { bavail, bsize } = statfsSync(root);
  const freeMB = (bavail * bsize) / 1e6;
  if (freeMB >= neededMB) return;
  throw new Error(
    `Fetching LibTorch needs about ${(neededMB / 1000).toFixed(2)} GB free in ${root} while it runs, and it has ${(freeMB / 1000).toFixed(2)} GB.\n` +
      'Free some space there, or set LENET5_CACHE_DIR to a folder on a disk with room, then install again.',
  );
}

/**
 * Downloads and checks the wheels in `temp`, extracts them there and renames the result to `dir`.
 * @param {string} temp @param {string} dir @param {Wheel[]} wheels @param {string} arch @param {string} variant
 * @param {boolean} headers whether `wheels` take the headers (recorded in the manifest)
 */
async function fetchInto(temp, dir, wheels, arch, variant, headers) {
  const pins = PINS.arches[arch];
  const downloads = join(temp, 'wheels');
  const staged = join(temp, 'libtorch');
  mkdirSync(downloads, { recursive: true });
  const python = findPip(temp);
  const requirements = join(temp, 'requirements.txt');
  writeFileSync(requirements, wheels.map((wheel) => `${wheel.requirement} --hash=sha256:${wheel.sha256}\n`).join(''));
  const { download } = pins.megabytes[variant];
  say(
    `fetching LibTorch ${PINS.version} (${variant === 'cuda' ? 'CUDA' : 'CPU'}, linux-${arch}) from PyPI with ${python} -m pip: ` +
      `${wheels.length} wheels, about ${download} MB${headers ? '' : '; its libraries only, as the prebuilt addon needs no headers'}`,
  );
  if (variant === 'cuda' && !existsSync('/proc/driver/nvidia/version')) {
    say(
      'LENET5_CUDA=1, but this machine has no NVIDIA driver: the CUDA libraries will be unused here until one is installed (unset it for the CPU ones).',
    );
  }
  const started = Date.now();
  const args = ['-I', '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--require-hashes', '--disable-pip-version-check'];
  args.push('--python-version', PINS.pythonVersion, '--implementation', 'cp', ...pins.platforms.flatMap((p) => ['--platform', p]));
  args.push('-r', requirements, '-d', downloads);
  if (!process.stderr.isTTY) args.push('--progress-bar', 'off', '--quiet');
  // pip's progress bar goes to its stdout; send it to our stderr so that stdout stays ours.
  const status = await run(python, args, temp);
  if (status !== 0) throw new Error(`${python} -m pip download failed (exit ${status}); its message is above.`);
  let downloaded = 0;
  for (const wheel of wheels) {
    const path = join(downloads, wheel.file);
    if (!existsSync(path)) throw new Error(`pip did not save ${wheel.file} (found: ${readdirSync(downloads).join(', ')}).`);
    const actual = sha256OfFile(path);
    if (actual !== wheel.sha256) throw new Error(`${wheel.file} has SHA-256 ${actual}, expected ${wheel.sha256}: refusing it.`);
    downloaded += statSync(path).size;
  }
  say(`downloaded ${(downloaded / 1e6).toFixed(0)} MB in ${((Date.now() - started) / 1000).toFixed(0)} s; SHA-256 of each wheel checked`);
  const extracting = Date.now();
  mkdirSync(staged);
  /** @type {Record<string, { size: number, sha256: string }>} */
  const files = {};
  for (const wheel of wheels) {
    Object.assign(files, await extract(python, join(downloads, wheel.file), wheel.take, staged));
    rmSync(join(downloads, wheel.file));
  }
  const extracted = Object.values(files).reduce((sum, file) => sum + file.size, 0);
  const manifest = {
    version: PINS.version,
    arch,
    variant,
    cxx11Abi: true,
    headers,
    wheels: wheels.map(({ file, sha256 }) => ({ file, sha256 })),
    files,
  };
  writeFileSync(join(staged, MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
  // A folder still there is whole (a damaged one was removed first): swapped out in one rename, then deleted with the temp folder.
  if (existsSync(dir)) renameSync(dir, join(temp, 'replaced'));
  renameSync(staged, dir);
  say(
    `LibTorch ${PINS.version} ready in ${dir} (${(extracted / 1e6).toFixed(0)} MB, extracted in ${((Date.now() - extracting) / 1000).toFixed(0)} s)`,
  );
  return dir;
}

async function main(argv) {
  const arch = argv.includes('--arch') ? argv[argv.indexOf('--arch') + 1] : hostArch();
  const variant = argv.includes('--cuda') ? 'cuda' : wantedVariant();
  if (argv.includes('--where')) {
    console.log(libtorchDir(arch, variant));
    return;
  }
  try {
    console.log(await provisionLibtorch({ arch, variant, headers: !argv.includes('--libraries-only') }));
  } catch (error) {
    say(error instanceof Error ? error.message : String(error));
    process.exit(1);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main(process.argv.slice(2));
