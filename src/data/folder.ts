/**
 * Image folders: one subfolder per class (DIR/<class>/*.png ...), optionally below train/, val/
 * and test/. Images are decoded in parallel by sharp into MNIST-style 28x28 uint8 and cached.
 */
import { availableParallelism } from 'node:os';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { Lenet5Error, type ErrorCode } from '../errors.js';
import { cacheName, defaultCacheDir, readCache, writeCache, type CacheEntry, type CachedSplit } from './cache.js';
import { Dataset, IMAGE_PIXELS } from './dataset.js';
import { loadImage28 } from './image.js';
import type { ImageOptions } from './preprocess.js';

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff', '.pgm'];
const FOLDER_SPLITS = ['train', 'val', 'test'] as const;
export type FolderSplit = (typeof FOLDER_SPLITS)[number];

export interface BadFile {
  path: string;
  reason: string;
}

export interface DecodeOptions extends ImageOptions {
  /** 'error' (default): a file that cannot be decoded fails the load. 'skip': leave it out and list it. */
  onBadFile?: 'error' | 'skip';
  /** Called as images are decoded. */
  onProgress?: (done: number, total: number) => void;
}

export interface FolderOptions extends DecodeOptions {
  /** Where decoded folders are cached; null turns the cache off. Default: $LENET5_CACHE or ~/.cache/lenet5-libtorch. */
  cacheDir?: string | null;
}

export interface FolderData {
  classes: string[];
  /** The splits the folder has: always train; val and test when those folders exist. */
  splits: Partial<Record<FolderSplit, Dataset>> & { train: Dataset };
  /** Each split's image paths (relative to the folder), in dataset order. */
  files: Partial<Record<FolderSplit, string[]>>;
  badFiles: BadFile[];
  cache: 'hit' | 'miss' | 'off';
}

function isImageFile(name: string): boolean {
  const lower = name.toLowerCase();
  return !name.startsWith('.') && IMAGE_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

async function subfolders(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
}

/** Image files under `dir` (recursively), sorted. */
export async function imageFilesIn(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && isImageFile(e.name))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/** Decodes files in parallel into one pixel buffer; files that fail are returned as bad, in order. */
export async function decodeImages(
  files: string[],
  options: DecodeOptions = {},
): Promise<{ pixels: Uint8Array; ok: boolean[]; badFiles: BadFile[] }> {
  const pixels = new Uint8Array(files.length * IMAGE_PIXELS);
  const ok = new Array<boolean>(files.length).fill(false);
  const reasons = new Map<number, string>();
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < files.length) {
      const i = next++;
      try {
        pixels.set(await loadImage28(files[i], await readFile(files[i]), options), i * IMAGE_PIXELS);
        ok[i] = true;
      } catch (error) {
        reasons.set(i, (error as Error).message.replace(`${files[i]}: `, ''));
      }
      options.onProgress?.(++done, files.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(files.length, availableParallelism() * 2) }, worker));
  const badFiles = [...reasons.entries()].sort((a, b) => a[0] - b[0]).map(([i, reason]) => ({ path: files[i], reason }));
  if (badFiles.length > 0 && (options.onBadFile ?? 'error') === 'error') throw badFilesError(badFiles);
  return { pixels, ok, badFiles };
}

export function badFilesError(badFiles: BadFile[], code: ErrorCode = 'ERR_LENET5_BAD_FILES'): Lenet5Error {
  const shown = badFiles
    .slice(0, 10)
    .map((b) => `\n  ${b.path}: ${b.reason}`)
    .join('');
  const more = badFiles.length > 10 ? `\n  ... and ${badFiles.length - 10} more` : '';
  return new Lenet5Error(
    code,
    `${badFiles.length} file(s) could not be read:${shown}${more}\nFix or remove them${code === 'ERR_LENET5_BAD_FILES' ? ", or pass --on-bad-file skip (onBadFile: 'skip') to leave them out" : ''}.`,
  );
}

/** The class folders per split: DIR/train/<class>, DIR/val/<class>, DIR/test/<class>, or DIR/<class>. */
async function layout(dir: string): Promise<Partial<Record<FolderSplit, string>>> {
  const top = await subfolders(dir);
  if (top.includes('train') && (await subfolders(join(dir, 'train'))).length > 0) {
    return Object.fromEntries(FOLDER_SPLITS.filter((s) => top.includes(s)).map((s) => [s, join(dir, s)]));
  }
  return { train: dir };
}

/** Loads an image folder (see the module comment); class names are the folder names, sorted. */
export async function imageFolder(dir: string, options: FolderOptions = {}): Promise<FolderData> {
  const root = resolve(dir);
  const splitDirs = await layout(root);
  const classSet = new Set<string>();
  for (const splitDir of Object.values(splitDirs)) for (const c of await subfolders(splitDir)) classSet.add(c);
  const classes = [...classSet].sort();
  if (classes.length === 0) {
    throw new Lenet5Error(
      'ERR_LENET5_DATA_NOT_FOUND',
      `${dir} has no class folders. Expected one subfolder per class (${dir}/<class>/*.png), optionally below train/ and test/.`,
    );
  }
  if (classes.length > 256)
    throw new Lenet5Error('ERR_LENET5_DATA', `${dir} has ${classes.length} class folders; at most 256 are supported.`);
  const listing: Partial<Record<FolderSplit, { files: string[]; labels: number[] }>> = {};
  for (const [split, splitDir] of Object.entries(splitDirs) as [FolderSplit, string][]) {
    const files: string[] = [];
    const labels: number[] = [];
    for (const [label, name] of classes.entries()) {
      const classDir = join(splitDir, name);
      const found = await imageFilesIn(classDir).catch(() => []);
      files.push(...found);
      labels.push(...found.map(() => label));
    }
    if (files.length === 0)
      throw new Lenet5Error('ERR_LENET5_DATA_NOT_FOUND', `${splitDir} has class folders but no images (${IMAGE_EXTENSIONS.join(', ')}).`);
    listing[split] = { files, labels };
  }

  const all = Object.values(listing).flatMap((l) => l.files);
  const cacheDir = options.cacheDir === undefined ? defaultCacheDir() : options.cacheDir;
  const preprocessing = { invert: options.invert ?? false, fit: options.fit ?? 'mnist' };
  let cached: CacheEntry | undefined;
  let key: { prefix: string; name: string } | undefined;
  if (cacheDir !== null) {
    const stats = await Promise.all(
      all.map(async (f) => {
        const s = await stat(f);
        return [relative(root, f), s.size, s.mtimeMs];
      }),
    );
    key = cacheName(root, { version: 1, preprocessing, classes, stats });
    cached = await readCache(cacheDir, key.name);
  }
  let entry: CacheEntry;
  if (cached) {
    entry = cached;
    options.onProgress?.(all.length, all.length);
  } else {
    // Every file is decoded (and cached) whatever the policy, so a later run with --on-bad-file skip hits the cache.
    const decoded = await decodeImages(all, { ...preprocessing, onBadFile: 'skip', onProgress: options.onProgress });
    const splits: Record<string, CachedSplit> = {};
    let offset = 0;
    for (const [split, { files, labels }] of Object.entries(listing)) {
      const keep = files.map((_, i) => decoded.ok[offset + i]);
      const kept = files.map((_, i) => i).filter((i) => keep[i]);
      const images = new Uint8Array(kept.length * IMAGE_PIXELS);
      kept.forEach((i, k) =>
        images.set(decoded.pixels.subarray((offset + i) * IMAGE_PIXELS, (offset + i + 1) * IMAGE_PIXELS), k * IMAGE_PIXELS),
      );
      splits[split] = { images, labels: Uint8Array.from(kept, (i) => labels[i]), files: kept.map((i) => relative(root, files[i])) };
      offset += files.length;
    }
    entry = { classes, splits, badFiles: decoded.badFiles.map((b) => ({ path: relative(root, b.path), reason: b.reason })) };
    if (cacheDir !== null && key) await writeCache(cacheDir, key.prefix, key.name, entry);
  }
  const badFiles = entry.badFiles.map((b) => ({ path: join(dir, b.path), reason: b.reason }));
  if (badFiles.length > 0 && (options.onBadFile ?? 'error') === 'error') throw badFilesError(badFiles);
  const datasets: Partial<Record<FolderSplit, Dataset>> = {};
  for (const [split, data] of Object.entries(entry.splits) as [FolderSplit, CachedSplit][]) {
    if (data.files.length === 0)
      throw new Lenet5Error('ERR_LENET5_DATA', `Every image of ${splitDirs[split]} is bad; nothing is left to load.`);
    datasets[split] = Dataset.fromArrays({ images: data.images, labels: data.labels, classes });
  }
  return {
    classes,
    splits: datasets as FolderData['splits'],
    files: Object.fromEntries(Object.entries(entry.splits).map(([s, d]) => [s, d.files])),
    badFiles,
    cache: cacheDir === null ? 'off' : cached ? 'hit' : 'miss',
  };
}
