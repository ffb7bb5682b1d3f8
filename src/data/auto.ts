/** datasets.auto(path): recognises MNIST IDX files, an image folder or Kaggle's CSV, and says which it found. */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Lenet5Error } from '../errors.js';
import { readKaggleCsv } from './csv.js';
import { Dataset } from './dataset.js';
import { DEBIAN_FASHION_MNIST_DIR, FASHION_MNIST_CLASSES, MNIST_CLASSES, findIdxFile, mnist } from './datasets.js';
import { imageFolder, type BadFile, type FolderOptions } from './folder.js';

const whatToPass =
  'Pass a folder of MNIST IDX files (train-images-idx3-ubyte[.gz], ...), an image folder (one subfolder per class) or a Kaggle CSV. ' +
  `For Fashion-MNIST install Debian's package (sudo apt-get install dataset-fashion-mnist, files in ${DEBIAN_FASHION_MNIST_DIR}).`;

export interface DataSource {
  format: 'idx' | 'image-folder' | 'csv';
  /** What was found, in words, e.g. "image folder data/ (3 classes: a, b, c; splits: train, test)". */
  description: string;
  classes: string[];
  /** Absent when an image folder has only val/ or test/. */
  train?: Dataset;
  /** Present when the data has its own validation split (an image folder's val/). */
  validation?: Dataset;
  /** Present when the data has its own test split. */
  test?: Dataset;
  /** Files (or CSV rows) left out under onBadFile 'skip'. */
  badFiles: BadFile[];
  /** Image folders only: whether the decoded images came from the cache. */
  cache?: 'hit' | 'miss' | 'off';
  /** Image folders only: why the decoded images could not be cached (the data loaded all the same). */
  cacheWarning?: string;
}

/** Fashion-MNIST's class names for folders named like it (Debian's), digit names for other IDX folders. */
function classNamesFor(dir: string): string[] {
  return /fashion/i.test(basename(dir)) ? [...FASHION_MNIST_CLASSES] : [...MNIST_CLASSES];
}

async function fromCsv(file: string, options: FolderOptions): Promise<DataSource> {
  const csv = await readKaggleCsv(file, options);
  if (!csv.labels) {
    throw new Lenet5Error(
      'ERR_LENET5_DATA',
      `${file} has no label column (pixel0,... only: Kaggle's test.csv). Train on the labelled train.csv; predict test.csv with lenet5 predict MODEL --csv ${file} --out submission.csv.`,
    );
  }
  const maxLabel = csv.labels.reduce((a, b) => Math.max(a, b), 0);
  const classes = maxLabel < 10 ? [...MNIST_CLASSES] : Array.from({ length: maxLabel + 1 }, (_, c) => String(c));
  const train = Dataset.fromArrays({ images: csv.pixels, labels: csv.labels, classes });
  return { format: 'csv', description: `Kaggle CSV ${file} (${csv.count} labelled images)`, classes, train, badFiles: csv.badRows };
}

/**
 * Loads whatever `path` holds: a .csv file; a folder with MNIST IDX files; a folder with Kaggle's
 * train.csv; or an image folder (one subfolder per class, optionally below train/, val/, test/).
 */
export async function auto(path: string, options: FolderOptions = {}): Promise<DataSource> {
  if (!existsSync(path)) {
    throw new Lenet5Error('ERR_LENET5_DATA_NOT_FOUND', `${path} does not exist. ${whatToPass}`);
  }
  if (statSync(path).isFile()) {
    if (path.toLowerCase().endsWith('.csv')) return fromCsv(path, options);
    throw new Lenet5Error(
      'ERR_LENET5_DATA',
      `${path} is a file but not a .csv. Pass a folder (MNIST IDX files or one subfolder per class) or a Kaggle CSV file.`,
    );
  }
  if (findIdxFile(path, 'train-images-idx3-ubyte')) {
    const classes = classNamesFor(path);
    const hasTest = findIdxFile(path, 't10k-images-idx3-ubyte') !== undefined;
    const [train, test] = await Promise.all([mnist(path, 'train', { classes }), hasTest ? mnist(path, 'test', { classes }) : undefined]);
    return {
      format: 'idx',
      description: `MNIST IDX files in ${path}${hasTest ? '' : ' (no t10k test files)'}`,
      classes,
      train,
      test,
      badFiles: [],
    };
  }
  if (existsSync(join(path, 'train.csv'))) return fromCsv(join(path, 'train.csv'), options);
  if (!readdirSync(path, { withFileTypes: true }).some((e) => e.isDirectory())) {
    throw new Lenet5Error(
      'ERR_LENET5_DATA_NOT_FOUND',
      `${path} holds no MNIST IDX files, no train.csv and no class folders. ${whatToPass}`,
    );
  }
  const folder = await imageFolder(path, options);
  const splits = Object.keys(folder.splits);
  const classList = folder.classes.length > 8 ? `${folder.classes.slice(0, 8).join(', ')}, ...` : folder.classes.join(', ');
  return {
    format: 'image-folder',
    description: `image folder ${path} (${folder.classes.length} classes: ${classList}; ${splits.length > 1 || !folder.splits.train ? `splits: ${splits.join(', ')}` : 'no train/test subfolders'})`,
    classes: folder.classes,
    train: folder.splits.train,
    validation: folder.splits.val,
    test: folder.splits.test,
    badFiles: folder.badFiles,
    cache: folder.cache,
    cacheWarning: folder.cacheWarning,
  };
}
