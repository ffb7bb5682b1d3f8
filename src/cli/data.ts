/** Which data a command reads: --data DIR (any MNIST-format folder), else Fashion-MNIST. */
import { basename } from 'node:path';
import type { Dataset } from '../data/dataset.js';
import { FASHION_MNIST_CLASSES, MNIST_CLASSES, fashionMnistDir, mnist, type Split } from '../data/datasets.js';

/** Fashion-MNIST's class names for its folders (named like Debian's), digit names for other MNIST-format folders. */
export function classNamesFor(dir: string): string[] {
  return /fashion/i.test(basename(dir)) ? [...FASHION_MNIST_CLASSES] : [...MNIST_CLASSES];
}

export function dataDir(option: string | undefined): string {
  return option ?? fashionMnistDir();
}

export async function loadSplit(dir: string, split: Split): Promise<Dataset> {
  return mnist(dir, split, { classes: classNamesFor(dir) });
}
