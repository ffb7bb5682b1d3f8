/** Ready-made datasets: any folder of MNIST-format files, and Fashion-MNIST. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Lenet5Error } from '../errors.js';
import { oneOf } from '../validate.js';
import { Dataset, IMAGE_PIXELS, type Normalization } from './dataset.js';
import { readIdxImages, readIdxLabels } from './idx.js';

export const FASHION_MNIST_CLASSES = Object.freeze([
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
]);
export const MNIST_CLASSES = Object.freeze(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);

/** Debian's dataset-fashion-mnist package puts the files here. */
export const DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

export type Split = 'train' | 'test';

export interface LoadOptions {
  classes?: string[];
  normalization?: Normalization;
}

/** Reads an image file and a label file in IDX format (gzipped or not). */
export async function idx(imagesFile: string, labelsFile: string, options: LoadOptions = {}): Promise<Dataset> {
  const [{ pixels }, labels] = await Promise.all([readIdxImages(imagesFile), readIdxLabels(labelsFile)]);
  if (labels.length !== pixels.length / IMAGE_PIXELS) {
    throw new Lenet5Error(
      'ERR_LENET5_DATA',
      `${imagesFile} holds ${pixels.length / IMAGE_PIXELS} images but ${labelsFile} holds ${labels.length} labels; they must match. Check that the two files belong together.`,
    );
  }
  const classes = options.classes;
  const numClasses = classes?.length ?? 10;
  const bad = labels.findIndex((label) => label >= numClasses);
  if (bad >= 0) {
    throw new Lenet5Error(
      'ERR_LENET5_DATA',
      `${labelsFile}: label ${labels[bad]} at index ${bad} is not below the number of classes (${numClasses}). Pass the class names (classes) if this dataset has more classes.`,
    );
  }
  return Dataset.fromArrays({ images: pixels, labels, numClasses, classes, normalization: options.normalization });
}

/** `dir/base` or `dir/base.gz`, whichever exists. */
export function findIdxFile(dir: string, base: string): string | undefined {
  return [base, `${base}.gz`].map((name) => join(dir, name)).find((path) => existsSync(path));
}

/** A folder with the standard MNIST file names (train-images-idx3-ubyte[.gz], t10k-...). */
export async function mnist(dir: string, split: Split = 'train', options: LoadOptions = {}): Promise<Dataset> {
  oneOf('split', split, ['train', 'test']);
  const prefix = split === 'train' ? 'train' : 't10k';
  const images = findIdxFile(dir, `${prefix}-images-idx3-ubyte`);
  const labels = findIdxFile(dir, `${prefix}-labels-idx1-ubyte`);
  if (!images || !labels) {
    throw new Lenet5Error(
      'ERR_LENET5_DATA_NOT_FOUND',
      `No ${split} data in ${dir}: expected ${prefix}-images-idx3-ubyte[.gz] and ${prefix}-labels-idx1-ubyte[.gz]. ` +
        `Install Debian's Fashion-MNIST (sudo apt-get install dataset-fashion-mnist, files in ${DEBIAN_FASHION_MNIST_DIR}), ` +
        'or point to any folder of MNIST-format files (--data DIR or LENET5_DATA=DIR).',
    );
  }
  return idx(images, labels, { classes: options.classes ?? [...MNIST_CLASSES], normalization: options.normalization });
}

/** The folder Fashion-MNIST is read from: LENET5_DATA, else Debian's package folder. */
export function fashionMnistDir(): string {
  return process.env.LENET5_DATA ?? DEBIAN_FASHION_MNIST_DIR;
}

export async function fashionMnist(split: Split = 'train', options: LoadOptions & { dir?: string } = {}): Promise<Dataset> {
  return mnist(options.dir ?? fashionMnistDir(), split, { ...options, classes: options.classes ?? [...FASHION_MNIST_CLASSES] });
}
