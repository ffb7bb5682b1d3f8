/**
 * The decoded-image cache: one folder per data folder and preprocessing, holding each split as a
 * uint8 IDX pair plus a JSON index (class names, file list, bad files). Its name is keyed by the
 * images' paths, sizes and modification times, so any change to the folder misses the cache.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { IMAGE_PIXELS } from './dataset.js';
import { idxBytes, parseIdx } from './idx.js';

export interface CachedSplit {
  images: Uint8Array;
  labels: Uint8Array;
  /** Each image's path relative to the data folder, in the order of `images`. */
  files: string[];
}

export interface CacheEntry {
  classes: string[];
  splits: Record<string, CachedSplit>;
  badFiles: { path: string; reason: string }[];
}

/** $LENET5_CACHE_DIR, else $XDG_CACHE_HOME/lenet5-libtorch, else ~/.cache/lenet5-libtorch. */
export function defaultCacheDir(): string {
  // The same folder as scripts/libtorch/pypi.mjs's cacheRoot(), which the install uses for LibTorch.
  return resolve(process.env.LENET5_CACHE_DIR || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'lenet5-libtorch'));
}

function hash(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}

/** `<folder key>-<content key>`: the first part names the data folder, the second what it held. */
export function cacheName(dataDir: string, content: unknown): { prefix: string; name: string } {
  const prefix = hash(dataDir);
  return { prefix, name: `${prefix}-${hash(content)}` };
}

export async function readCache(cacheDir: string, name: string): Promise<CacheEntry | undefined> {
  const dir = join(cacheDir, name);
  let index: { classes: string[]; splits: Record<string, string[]>; badFiles: CacheEntry['badFiles'] };
  try {
    index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
    const splits: Record<string, CachedSplit> = {};
    for (const [split, files] of Object.entries(index.splits)) {
      const images = parseIdx(split, await readFile(join(dir, `${split}-images-idx3-ubyte`)), 3).data;
      const labels = parseIdx(split, await readFile(join(dir, `${split}-labels-idx1-ubyte`)), 1).data;
      if (labels.length !== files.length || images.length !== files.length * IMAGE_PIXELS) return undefined;
      splits[split] = { images, labels, files };
    }
    return { classes: index.classes, splits, badFiles: index.badFiles };
  } catch {
    return undefined; // missing or damaged: decode again
  }
}

/**
 * Writes the entry (into a temporary folder, then renamed) and removes older entries of the same
 * data folder. On failure (no permission, a full disk) the temporary folder is removed and the
 * error thrown: the caller treats an unwritable cache as a warning.
 */
export async function writeCache(cacheDir: string, prefix: string, name: string, entry: CacheEntry): Promise<void> {
  const temp = join(cacheDir, `${name}.tmp-${process.pid}`);
  try {
    await mkdir(temp, { recursive: true });
    for (const [split, data] of Object.entries(entry.splits)) {
      await writeFile(join(temp, `${split}-images-idx3-ubyte`), idxBytes([data.files.length, 28, 28], data.images));
      await writeFile(join(temp, `${split}-labels-idx1-ubyte`), idxBytes([data.files.length], data.labels));
    }
    const splits = Object.fromEntries(Object.entries(entry.splits).map(([split, data]) => [split, data.files]));
    await writeFile(join(temp, 'index.json'), JSON.stringify({ classes: entry.classes, splits, badFiles: entry.badFiles }));
    for (const old of await readdir(cacheDir)) {
      if (old.startsWith(`${prefix}-`) && !old.includes('.tmp-')) await rm(join(cacheDir, old), { recursive: true, force: true });
    }
    await rename(temp, join(cacheDir, name));
  } catch (error) {
    await rm(temp, { recursive: true, force: true }).catch(() => undefined);
    throw error;
  }
}
