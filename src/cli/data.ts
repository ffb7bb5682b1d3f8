/** Which data a command reads: --data PATH (IDX folder, image folder or Kaggle CSV), else Fashion-MNIST; and its splits. */
import { auto, type DataSource } from '../data/auto.js';
import { Dataset, IMAGE_PIXELS } from '../data/dataset.js';
import { Lenet5Error } from '../errors.js';
import { fashionMnistDir } from '../data/datasets.js';
import { DEFAULT_FIT, type Fit } from '../data/preprocess.js';
import { say, warn, type CommonOptions } from './output.js';
import { decodeProgress } from './progress.js';

export interface DataOptions extends CommonOptions {
  data?: string;
  /** --invert / --no-invert; unset: the model's (evaluate) or false (train). */
  invert?: boolean;
  /** Unset: the model's (evaluate) or DEFAULT_FIT (train). */
  fit?: Fit;
  onBadFile: 'error' | 'skip';
  cacheDir?: string;
  /** --no-cache */
  cache: boolean;
  valSplit: number;
  seed: number;
}

export interface Splits {
  source: DataSource;
  path: string;
  fit: Dataset;
  validation: Dataset;
  test: Dataset;
}

export function dataPath(option: string | undefined): string {
  return option ?? fashionMnistDir();
}

/** Loads --data and says what it found and which bad files it left out. */
async function loadData(options: DataOptions): Promise<{ source: DataSource; path: string }> {
  const path = dataPath(options.data);
  const progress = decodeProgress(!options.json && process.stdout.isTTY === true);
  let source: DataSource;
  try {
    source = await auto(path, {
      invert: options.invert ?? false,
      fit: options.fit ?? DEFAULT_FIT,
      onBadFile: options.onBadFile,
      cacheDir: options.cache ? options.cacheDir : null,
      onProgress: progress.update,
    });
  } finally {
    progress.stop();
  }
  say(options, `Data: ${source.description}${source.cache === 'hit' ? ', decoded images from the cache' : ''}`);
  if (source.cacheWarning) warn('ERR_LENET5_IO', source.cacheWarning);
  for (const bad of source.badFiles) say(options, `  skipped ${bad.path}: ${bad.reason}`);
  return { source, path };
}

/** The data's splits that hold images: train, val and test, in that order. */
function presentSplits(source: DataSource): Dataset[] {
  return [source.train, source.validation, source.test].filter((d): d is Dataset => d !== undefined);
}

/**
 * Train, validation and test sets: the data's own splits where it has them; otherwise held out
 * from the training data by a seeded shuffle (the same --seed and --val-split give the same split).
 */
function heldOutSplits(source: DataSource, path: string, options: DataOptions): Omit<Splits, 'source' | 'path'> {
  if (!source.train) {
    throw new Lenet5Error(
      'ERR_LENET5_DATA_NOT_FOUND',
      `${path} has no training images: it holds only ${Object.entries({ val: source.validation, test: source.test })
        .filter(([, d]) => d)
        .map(([name]) => `${name}/`)
        .join(' and ')}. Add ${path}/train/<class>/ folders, or evaluate with --split test or --split all.`,
    );
  }
  let rest = source.train;
  let test = source.test;
  if (!test) {
    [rest, test] = rest.split(1 - options.valSplit, { seed: options.seed });
    say(
      options,
      `No test split in ${path}: held out ${test.size} of ${source.train.size} training images (--val-split ${options.valSplit}, --seed ${options.seed}) as the test set.`,
    );
  }
  let validation = source.validation;
  let fit = rest;
  if (!validation) [fit, validation] = rest.split(1 - options.valSplit, { seed: options.seed });
  return { fit, validation, test };
}

export async function loadSplits(options: DataOptions): Promise<Splits> {
  const { source, path } = await loadData(options);
  return { source, path, ...heldOutSplits(source, path, options) };
}

export type EvaluationSplit = 'test' | 'val' | 'train' | 'all';

/** The images `lenet5 evaluate --split` scores: one split as train makes it, or every image of the data ('all'). */
export async function loadEvaluationSet(
  options: DataOptions,
  split: EvaluationSplit,
): Promise<{ source: DataSource; path: string; data: Dataset }> {
  const { source, path } = await loadData(options);
  if (split === 'all') return { source, path, data: concatenate(presentSplits(source), source.classes) };
  if (split === 'test' && source.test) return { source, path, data: source.test };
  const { fit, validation, test } = heldOutSplits(source, path, options);
  return { source, path, data: { test, val: validation, train: fit }[split] };
}

/** One dataset holding every image of `parts`, in order. */
function concatenate(parts: Dataset[], classes: string[]): Dataset {
  if (parts.length === 1) return parts[0];
  const arrays = parts.map((part) => part.toArrays());
  const images = new Uint8Array(arrays.reduce((n, a) => n + a.images.length, 0));
  const labels = new Uint8Array(arrays.reduce((n, a) => n + a.labels.length, 0));
  let count = 0;
  for (const a of arrays) {
    images.set(a.images, count * IMAGE_PIXELS);
    labels.set(a.labels, count);
    count += a.labels.length;
  }
  return Dataset.fromArrays({ images, labels, classes });
}
