/** Which data a command reads: --data PATH (IDX folder, image folder or Kaggle CSV), else Fashion-MNIST; and its splits. */
import { auto, type DataSource } from '../data/auto.js';
import type { Dataset } from '../data/dataset.js';
import { fashionMnistDir } from '../data/datasets.js';
import type { Fit } from '../data/preprocess.js';
import { say, warn, type CommonOptions } from './output.js';
import { decodeProgress } from './progress.js';

export interface DataOptions extends CommonOptions {
  data?: string;
  invert?: boolean;
  fit: Fit;
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
      fit: options.fit,
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

/**
 * Train, validation and test sets: the data's own splits where it has them; otherwise held out
 * from the training data by a seeded shuffle (the same --seed and --val-split give the same split).
 */
export async function loadSplits(options: DataOptions): Promise<Splits> {
  const { source, path } = await loadData(options);
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
  return { source, path, fit, validation, test };
}
