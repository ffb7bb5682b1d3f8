/** A labelled set of 28x28 grayscale images, held natively as uint8. */
import { Lenet5Error, callNative } from '../errors.js';
import { native, type NativeDataset } from '../native.js';
import { invalidArgument, knownKeys, numberInRange, optionsObject, positiveInteger, checkSeed } from '../validate.js';

export const IMAGE_PIXELS = 28 * 28;

/** ToTensor() then Normalize(mean, std): pixel -> (pixel / 255 - mean) / std. */
export interface Normalization {
  mean: number;
  std: number;
}

/** The seed article's normalisation: Normalize((0.5,), (0.5,)). */
export const DEFAULT_NORMALIZATION: Normalization = Object.freeze({ mean: 0.5, std: 0.5 });

export interface DatasetInit {
  /** Raw pixels, 0-255, count x 28 x 28. */
  images: Uint8Array;
  /** One class index per image. */
  labels: Uint8Array | ArrayLike<number>;
  /** Class names; numClasses is their count. */
  classes?: string[];
  /** Number of classes when no names are given. Default: largest label + 1. */
  numClasses?: number;
  normalization?: Normalization;
}

export class Dataset {
  /** @internal */
  readonly handle: NativeDataset;
  readonly size: number;
  readonly numClasses: number;
  readonly classes: readonly string[] | undefined;
  readonly normalization: Normalization;
  /** @internal The largest label (-1 when empty), computed once: a dataset never changes. */
  readonly maxLabel: number;

  /** @internal */
  constructor(handle: NativeDataset, numClasses: number, classes: readonly string[] | undefined, normalization: Normalization) {
    this.handle = handle;
    this.size = handle.size();
    this.maxLabel = handle.maxLabel();
    this.numClasses = numClasses;
    this.classes = classes;
    this.normalization = normalization;
  }

  /** Builds a dataset from typed arrays (the data is copied). */
  static fromArrays(init: DatasetInit): Dataset {
    const o = optionsObject('dataset', init);
    knownKeys('dataset', o, ['images', 'labels', 'classes', 'numClasses', 'normalization']);
    if (!(init.images instanceof Uint8Array)) throw invalidArgument('images', 'Uint8Array of 0-255 pixels', init.images);
    if (init.images.length === 0 || init.images.length % IMAGE_PIXELS !== 0) {
      throw new Lenet5Error(
        'ERR_LENET5_SHAPE',
        `Expected images to hold N x 28 x 28 = a positive multiple of ${IMAGE_PIXELS} bytes but received ${init.images.length}`,
      );
    }
    const count = init.images.length / IMAGE_PIXELS;
    if (init.labels === null || typeof init.labels !== 'object' || typeof (init.labels as ArrayLike<number>).length !== 'number') {
      throw invalidArgument('labels', 'Uint8Array or array of class indices', init.labels);
    }
    if (init.labels.length !== count) {
      throw new Lenet5Error('ERR_LENET5_SHAPE', `Expected ${count} labels (one per image) but received ${init.labels.length}`);
    }
    const classes = init.classes === undefined ? undefined : checkClasses(init.classes);
    let maxLabel = 0;
    const labels = new Uint8Array(count);
    for (let i = 0; i < count; i++) {
      const label = init.labels[i];
      if (!Number.isInteger(label) || label < 0 || label > 255)
        throw invalidArgument(`labels[${i}]`, 'integer class index from 0 to 255', label);
      labels[i] = label;
      if (label > maxLabel) maxLabel = label;
    }
    const numClasses = classes?.length ?? (init.numClasses === undefined ? maxLabel + 1 : positiveInteger('numClasses', init.numClasses));
    if (maxLabel >= numClasses) {
      throw new Lenet5Error(
        'ERR_LENET5_DATA',
        `Label ${maxLabel} is out of range: this dataset has ${numClasses} classes (0 to ${numClasses - 1}). Fix the labels or raise numClasses.`,
      );
    }
    const handle = callNative(() => new (native().NativeDataset)(init.images, labels, count));
    return new Dataset(handle, numClasses, classes, checkNormalization(init.normalization ?? DEFAULT_NORMALIZATION));
  }

  /**
   * Splits into two datasets, the first holding `fraction` of the items, chosen by a seeded
   * shuffle (same seed, same split).
   */
  split(fraction: number, options: { seed?: number } = {}): [Dataset, Dataset] {
    numberInRange('fraction', fraction, 0, 1, { minExclusive: true, maxExclusive: true });
    const o = optionsObject('split options', options);
    knownKeys('split options', o, ['seed']);
    const seed = o.seed === undefined ? 0 : checkSeed('seed', o.seed);
    const firstCount = Math.round(this.size * fraction);
    if (firstCount === 0 || firstCount === this.size) {
      throw new Lenet5Error(
        'ERR_LENET5_DATA',
        `Splitting ${this.size} items at ${fraction} leaves one side empty; use a fraction that keeps at least one item on each side.`,
      );
    }
    const [first, rest] = callNative(() => this.handle.split(firstCount, seed));
    return [this.derive(first), this.derive(rest)];
  }

  /** The number of images (the same as `size`). */
  get length(): number {
    return this.size;
  }

  /** Image `index` (784 raw 0-255 pixels, row-major 28x28, a copy) and its label. */
  get(index: number): { pixels: Uint8Array; label: number } {
    if (!Number.isInteger(index) || index < 0 || index >= this.size)
      throw invalidArgument('index', `integer from 0 to ${this.size - 1}`, index);
    const { images, labels } = callNative(() => this.handle.toArrays(index, 1));
    return { pixels: images, label: labels[0] };
  }

  /** Every image (N x 784 raw pixels) and label, copied out: what `fromArrays` takes, and what `predict` takes. */
  toArrays(): { images: Uint8Array; labels: Uint8Array } {
    return callNative(() => this.handle.toArrays(0, this.size));
  }

  /**
   * The same images labelled by the indices of their class names in `classes` (e.g. a model's), so
   * a folder holding some of a model's classes is scored by name. Names `classes` lacks are an
   * ERR_LENET5_CLASSES error listing them.
   */
  withClasses(classes: readonly string[]): Dataset {
    const target = checkClasses(classes);
    if (!this.classes) {
      throw new Lenet5Error(
        'ERR_LENET5_CLASSES',
        'This dataset has no class names, so its labels cannot be matched to classes by name. Give it classes (Dataset.fromArrays({ classes })) or use it by index.',
      );
    }
    const unknown = this.classes.filter((name) => !target.includes(name));
    if (unknown.length > 0) {
      throw new Lenet5Error(
        'ERR_LENET5_CLASSES',
        `The data has ${unknown.length} class(es) that the model does not know: ${unknown.join(', ')}. ` +
          `The model's classes: ${target.join(', ')}. Rename or remove those class folders, or use a model trained on them.`,
      );
    }
    if (this.classes.length === target.length && this.classes.every((name, i) => name === target[i])) return this;
    const toTarget = this.classes.map((name) => target.indexOf(name));
    const { images, labels } = this.toArrays();
    return Dataset.fromArrays({
      images,
      labels: labels.map((label) => toTarget[label]),
      classes: [...target],
      normalization: this.normalization,
    });
  }

  /** A copy that normalises with other statistics. */
  withNormalization(normalization: Normalization): Dataset {
    return new Dataset(this.handle, this.numClasses, this.classes, checkNormalization(normalization));
  }

  private derive(handle: NativeDataset): Dataset {
    return new Dataset(handle, this.numClasses, this.classes, this.normalization);
  }
}

export function checkNormalization(value: unknown): Normalization {
  const o = optionsObject('normalization', value);
  const mean = numberInRange('normalization.mean', o.mean, -1e6, 1e6);
  const std = numberInRange('normalization.std', o.std, 0, 1e6, { minExclusive: true });
  return { mean, std };
}

function checkClasses(classes: unknown): string[] {
  if (!Array.isArray(classes) || classes.length === 0 || classes.length > 256 || !classes.every((c) => typeof c === 'string')) {
    throw invalidArgument('classes', 'array of 1 to 256 class names', classes);
  }
  return classes;
}
