/**
 * Image folders: one subfolder per class (DIR/<class>/*.png ...), optionally below train/, val/
 * and test/. Images are decoded in parallel by sharp into MNIST-style 28x28 uint8 and cached.
 */
import { availableParallelism } from 'node:os';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { Lenet5Error, type ErrorCode } from '../errors.js';
import { cacheName, defaultCacheDir, readCache, writeCache, type CacheEntry, type CachedSplit } from './cache.js';
import { Dataset, IMAGE_PIXELS } from './dataset.js';
import { loadImage28 } from './image.js';
import { DEFAULT_FIT, type ImageOptions } from './preprocess.js';

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
  /** Where decoded folders are cached; null turns the cache off. Default: $LENET5_CACHE_DIR, else $XDG_CACHE_HOME/lenet5-libtorch, else ~/.cache/lenet5-libtorch. */
  cacheDir?: string | null;
}

export interface FolderData {
  classes: string[];
  /** The splits the folder has: train/, val/ and test/ where they exist; a folder without them is all train. */
  splits: Partial<Record<FolderSplit, Dataset>>;
  /** Each split's image paths (relative to the folder), in dataset order. */
  files: Partial<Record<FolderSplit, string[]>>;
  badFiles: BadFile[];
  cache: 'hit' | 'miss' | 'off';
  /** Why the decoded images could not be cached (a warning: the data loaded all the same). */
  cacheWarning?: string;
}

function isImageFile(name: string): boolean {
  const lower = name.toLowerCase();
  return !name.startsWith('.') && IMAGE_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

/**
 * A folder's subfolders and image files, symbolic links followed. What cannot be read (a folder
 * without permission, a link to nothing, an image name that is not a file) is listed as bad, never
 * dropped in silence.
 */
async function folderEntries(dir: string): Promise<{ folders: string[]; images: string[]; bad: BadFile[] }> {
  const found = { folders: [] as string[], images: [] as string[], bad: [] as BadFile[] };
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    found.bad.push({ path: dir, reason: `this folder cannot be read (${(error as Error).message})` });
    return found;
  }
  for (const entry of entries) {
    // Hidden files and links (editor locks like .#name link to nothing) are not data.
    if (entry.name.startsWith('.') && !entry.isDirectory()) continue;
    const path = join(dir, entry.name);
    let target: { isDirectory(): boolean; isFile(): boolean } = entry;
    if (entry.isSymbolicLink()) {
      try {
        target = await stat(path);
      } catch (error) {
        found.bad.push({ path, reason: `is a symbolic link that cannot be followed (${(error as Error).message})` });
        continue;
      }
    }
    if (target.isDirectory()) found.folders.push(entry.name);
    else if (isImageFile(entry.name)) {
      if (target.isFile()) found.images.push(path);
      else found.bad.push({ path, reason: 'is not a regular file' });
    }
  }
  found.folders.sort();
  return found;
}

async function subfolders(dir: string): Promise<string[]> {
  return (await folderEntries(dir)).folders.filter((name) => !name.startsWith('.'));
}

/**
 * Image files under `dir` (recursively, through symbolic links, each real folder once), sorted,
 * and the entries that could not be read.
 */
export async function imageFilesIn(dir: string): Promise<{ files: string[]; bad: BadFile[] }> {
  const files: string[] = [];
  const bad: BadFile[] = [];
  const visited = new Set<string>();
  const walk = async (folder: string): Promise<void> => {
    const real = await realpath(folder).catch(() => folder);
    if (visited.has(real)) return; // a link back to a folder already walked
    visited.add(real);
    const entries = await folderEntries(folder);
    for (const file of entries.images) files.push(file); // a loop: spreading 100,000+ names overflows the stack
    bad.push(...entries.bad);
    for (const name of entries.folders) await walk(join(folder, name));
  };
  await walk(dir);
  return { files: files.sort(), bad };
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

/**
 * The class folders per split: DIR/train/<class>, DIR/val/<class>, DIR/test/<class> (any of them,
 * e.g. test/ alone), or DIR/<class>. A train/, val/ or test/ holding subfolders makes DIR a split layout.
 */
async function layout(dir: string): Promise<Partial<Record<FolderSplit, string>>> {
  const top = await subfolders(dir);
  const present = FOLDER_SPLITS.filter((s) => top.includes(s));
  const holdClasses = await Promise.all(present.map(async (s) => (await subfolders(join(dir, s))).length > 0));
  if (holdClasses.some(Boolean)) return Object.fromEntries(present.map((s) => [s, join(dir, s)]));
  return { train: dir };
}

/** Loads an image folder (see the module comment); class names are the folder names, sorted. */
export async function imageFolder(dir: string, options: FolderOptions = {}): Promise<FolderData> {
  const root = resolve(dir);
  const splitDirs = await layout(root);
  const classSet = new Set<string>();
  // Entries that cannot be listed are bad files like those that cannot be decoded (not cached: listed each run).
  const unlisted: BadFile[] = [];
  for (const splitDir of Object.values(splitDirs)) {
    const entries = await folderEntries(splitDir);
    for (const c of entries.folders) if (!c.startsWith('.')) classSet.add(c);
    unlisted.push(...entries.bad);
  }
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
      // A split without this class's folder has no images of it.
      if (!(await stat(classDir).catch(() => undefined))) continue;
      const found = await imageFilesIn(classDir);
      for (const file of found.files) {
        files.push(file);
        labels.push(label);
      }
      unlisted.push(...found.bad);
    }
    if (files.length === 0)
      throw new Lenet5Error('ERR_LENET5_DATA_NOT_FOUND', `${splitDir} has class folders but no images (${IMAGE_EXTENSIONS.join(', ')}).`);
    listing[split] = { files, labels };
  }

  const all = Object.values(listing).flatMap((l) => l.files);
  const cacheDir = options.cacheDir === undefined ? defaultCacheDir() : options.cacheDir;
  const preprocessing = { invert: options.invert ?? false, fit: options.fit ?? DEFAULT_FIT };
  let cached: CacheEntry | undefined;
  let key: { prefix: string; name: string } | undefined;
  let cacheWarning: string | undefined;
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
    if (cacheDir !== null && key) {
      try {
        await writeCache(cacheDir, key.prefix, key.name, entry);
      } catch (error) {
        cacheWarning = `The decoded images could not be cached in ${cacheDir} (${(error as Error).message}); they will be decoded again next time. Pass --cache-dir (cacheDir) with a writable folder, or --no-cache (cacheDir: null).`;
      }
    }
  }
  const badFiles = [
    ...unlisted.map((b) => ({ path: join(dir, relative(root, b.path)), reason: b.reason })),
    ...entry.badFiles.map((b) => ({ path: join(dir, b.path), reason: b.reason })),
  ];
  if (badFiles.length > 0 && (options.onBadFile ?? 'error') === 'error') throw badFilesError(badFiles);
  const datasets: Partial<Record<FolderSplit, Dataset>> = {};
  for (const [split, data] of Object.entries(entry.splits) as [FolderSplit, CachedSplit][]) {
    if (data.files.length === 0)
      throw new Lenet5Error('ERR_LENET5_DATA', `Every image of ${splitDirs[split]} is bad; nothing is left to load.`);
    datasets[split] = Dataset.fromArrays({ images: data.images, labels: data.labels, classes });
  }
  return {
    classes,
    splits: datasets,
    files: Object.fromEntries(Object.entries(entry.splits).map(([s, d]) => [s, d.files])),
    badFiles,
    cache: cacheDir === null ? 'off' : cached ? 'hit' : 'miss',
    cacheWarning,
  };
}
