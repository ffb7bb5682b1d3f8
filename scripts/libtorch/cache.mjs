// The user cache that installs share (LibTorch folders, built addons), checked rather than trusted:
//  - every entry records the size and SHA-256 of each file it holds when it is written, and a
//    reader compares them before reuse (a disk error or an interrupted copy shows up as a mismatch);
//  - one install at a time writes an entry: a lock folder beside it, kept fresh by its holder, so a
//    lock whose holder died goes stale after a minute. PIDs are not used: an install in another PID
//    namespace (a container sharing the cache volume) holds its lock like any other;
//  - work in progress lives in temp folders that carry a marker naming their entry. They are
//    removed only by an install that holds that entry's lock, so never while their writer lives,
//    and a folder without the marker is never touched.
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** How often a lock's holder marks it fresh, and how old a mark has to be for the lock to count as abandoned. */
export const LOCK_TIMING = { refreshMs: 5_000, staleMs: 60_000, pollMs: 500 };
const TEMP_MARKER = 'lenet5-temp.json';

/** @param {string} message */
export function say(message) {
  process.stderr.write(`lenet5: ${message}\n`);
}

/** @param {string} path */
export function sha256OfFile(path) {
  const hash = createHash('sha256');
  const buffer = Buffer.alloc(4 << 20);
  const fd = openSync(path, 'r');
  try {
    for (let read; (read = readSync(fd, buffer)) > 0;) hash.update(buffer.subarray(0, read));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/**
 * What is wrong with the files of `dir` against what a manifest recorded, or undefined when they
 * match: sizes always (cheap enough for every resolve), contents too when `hashes` (seconds for
 * LibTorch's 500 MB, so only before a compile).
 * @param {string} dir @param {Record<string, { size: number, sha256: string }> | undefined} files @param {boolean} hashes
 */
export function findDamage(dir, files, hashes) {
  if (!files || Object.keys(files).length === 0) return 'its manifest records no file sizes and hashes (an older or damaged cache entry)';
  for (const [file, want] of Object.entries(files)) {
    const path = join(dir, file);
    let size;
    try {
      size = statSync(path).size;
    } catch {
      return `${file} is missing`;
    }
    if (size !== want.size) return `${file} has ${size} bytes, expected ${want.size}`;
    if (hashes && sha256OfFile(path) !== want.sha256) return `${file} has changed since it was written (its SHA-256 differs)`;
  }
  return undefined;
}

/** @param {string} root @param {string} entry */
function lockPath(root, entry) {
  return join(root, `${entry}.lock`);
}

/** Takes the lock once if it is free or abandoned; returns its release function, else undefined. @param {string} root @param {string} entry */
export function tryLock(root, entry) {
  const lock = lockPath(root, entry);
  try {
    mkdirSync(lock);
  } catch (error) {
    if (/** @type {NodeJS.ErrnoException} */ (error).code !== 'EEXIST') throw error;
    if (!isStale(lock)) return undefined;
    // Its holder stopped refreshing it a minute ago: it died. Take it over.
    rmSync(lock, { recursive: true, force: true });
    try {
      mkdirSync(lock);
    } catch {
      return undefined;
    }
  }
  const refresh = setInterval(() => {
    const now = new Date();
    try {
      utimesSync(lock, now, now);
    } catch {
      // The lock was removed under us; the release below tolerates that too.
    }
  }, LOCK_TIMING.refreshMs);
  refresh.unref();
  return () => {
    clearInterval(refresh);
    rmSync(lock, { recursive: true, force: true });
  };
}

/** @param {string} lock */
function isStale(lock) {
  try {
    return Date.now() - statSync(lock).mtimeMs > LOCK_TIMING.staleMs;
  } catch {
    return true;
  }
}

/**
 * Runs `action` while holding the lock of one cache entry, waiting for another install that holds it.
 * @template T
 * @param {string} root @param {string} entry @param {() => Promise<T> | T} action
 * @returns {Promise<T>}
 */
export async function withLock(root, entry, action) {
  mkdirSync(root, { recursive: true });
  let release = tryLock(root, entry);
  if (!release) {
    say(`waiting for another install that is writing ${join(root, entry)} (lock ${lockPath(root, entry)})`);
    while (!(release = tryLock(root, entry))) await sleep(LOCK_TIMING.pollMs);
  }
  try {
    removeTemps(root, entry);
    return await action();
  } finally {
    release();
  }
}

/**
 * A new temp folder for `entry`, marked as ours. Only call it while holding the entry's lock.
 * @param {string} root @param {string} entry
 */
export function makeTemp(root, entry) {
  const dir = join(root, `.tmp-${entry}-${randomBytes(4).toString('hex')}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, TEMP_MARKER), JSON.stringify({ entry, createdAt: new Date().toISOString() }) + '\n');
  return dir;
}

/** @param {string} path @returns {string | undefined} the entry a temp folder's marker names */
function markedEntry(path) {
  try {
    const { entry } = JSON.parse(readFileSync(join(path, TEMP_MARKER), 'utf8'));
    return typeof entry === 'string' && /^[\w.-]+$/.test(entry) ? entry : undefined;
  } catch {
    return undefined;
  }
}

/** Removes the marked temp folders of `entry`: only with its lock held, so their writers are gone. @param {string} root @param {string} entry */
function removeTemps(root, entry) {
  for (const name of readdirSync(root)) {
    const path = join(root, name);
    if (name.startsWith('.tmp-') && markedEntry(path) === entry) rmSync(path, { recursive: true, force: true });
  }
}

/**
 * Removes the temp folders that killed installs left, of every entry whose lock is free now
 * (an entry being written keeps its temps). Folders without our marker stay.
 * @param {string} root
 */
export function removeAbandonedTemps(root) {
  if (!existsSync(root)) return;
  const entries = new Set(
    readdirSync(root)
      .filter((name) => name.startsWith('.tmp-'))
      .map((name) => markedEntry(join(root, name)))
      .filter((entry) => entry !== undefined),
  );
  for (const entry of entries) {
    let release;
    try {
      release = tryLock(root, entry);
    } catch {
      continue; // A cache we may not write: nothing of ours to clean either.
    }
    if (!release) continue;
    try {
      removeTemps(root, entry);
    } finally {
      release();
    }
  }
}
