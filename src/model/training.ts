/** Training's inputs: train()'s options (types, checks, defaults) and the events it reports, and lossAndGradients()'s batch check. */
import { Lenet5Error } from '../errors.js';
import { Dataset, IMAGE_PIXELS } from '../data/dataset.js';
import type { NativeTrainEvent } from '../native.js';
import { Adam, Optimizer } from '../optim.js';
import { EarlyStopping, LRScheduler, ReduceLROnPlateau } from '../schedule.js';
import {
  checkBoolean,
  checkSeed,
  invalidArgument,
  knownKeys,
  nonNegativeInteger,
  oneOf,
  optionsObject,
  positiveInteger,
} from '../validate.js';

export interface BatchProgress {
  epoch: number;
  batch: number;
  batches: number;
  /** Mean training loss of this epoch so far. */
  loss: number;
  imagesPerSecond: number;
}

export interface EpochResult {
  epoch: number;
  /** The learning rate this epoch trained with. */
  lr: number;
  trainLoss: number;
  valLoss?: number;
  valAccuracy?: number;
  seconds: number;
  imagesPerSecond: number;
}

export type History = EpochResult[];

export interface TrainOptions {
  /** Default 10. */
  epochs?: number;
  /** Default 64. */
  batchSize?: number;
  /** Reshuffle every epoch. Default true. */
  shuffle?: boolean;
  /** Default: a new Adam({ lr: 0.001 }) for this call. Pass one to keep its state across calls. */
  optimizer?: Optimizer;
  /** Evaluated after every epoch. */
  validation?: Dataset;
  /** Makes the shuffle order (and so a CPU run) reproducible bit for bit. */
  seed?: number;
  /** Epochs already done (when resuming); numbering and shuffling continue from there. Default 0. */
  initialEpoch?: number;
  signal?: AbortSignal;
  onBatchEnd?: (progress: BatchProgress) => void;
  onEpochEnd?: (result: EpochResult) => void;
  /** Report onBatchEnd every N batches. Default 1 on CPU, 20 on CUDA (each report waits for the GPU). */
  batchEventInterval?: number;
  /** 'error' (default): stop with ERR_LENET5_NON_FINITE_LOSS. 'skip': skip that batch, warn through onNonFiniteLoss, continue. */
  nonFiniteLoss?: 'error' | 'skip';
  onNonFiniteLoss?: (where: { epoch: number; batch: number }) => void;
  /** Stepped after every epoch (ReduceLROnPlateau with the validation loss). Build it on the same optimizer. */
  lrScheduler?: LRScheduler;
  /** Stops before `epochs` when the validation loss stops improving; see its stoppedEpoch and reason. */
  earlyStopping?: EarlyStopping;
}

/** TrainOptions checked, with every default filled in. */
export interface TrainSettings {
  epochs: number;
  batchSize: number;
  shuffle: boolean;
  seed: number | null;
  initialEpoch: number;
  optimizer: Optimizer;
  validation: Dataset | undefined;
  signal: AbortSignal | undefined;
  lrScheduler: LRScheduler | undefined;
  earlyStopping: EarlyStopping | undefined;
  nonFiniteLoss: 'error' | 'skip';
  /** 0: no batch events. */
  batchEventInterval: number;
}

/** What the checks need to know of the model being trained. */
interface TrainedModel {
  readonly numClasses: number;
  readonly device: string;
}

/** Checks train()'s arguments against each other and the model; throws the first problem found. */
export function checkTrainOptions(model: TrainedModel, dataset: unknown, options: TrainOptions): TrainSettings {
  if (!(dataset instanceof Dataset)) throw invalidArgument('dataset', 'Dataset', dataset);
  const o = optionsObject('train options', options);
  knownKeys('train options', o, [
    'epochs',
    'batchSize',
    'shuffle',
    'optimizer',
    'validation',
    'seed',
    'initialEpoch',
    'signal',
    'onBatchEnd',
    'onEpochEnd',
    'batchEventInterval',
    'nonFiniteLoss',
    'onNonFiniteLoss',
    'lrScheduler',
    'earlyStopping',
  ]);
  const epochs = o.epochs === undefined ? 10 : positiveInteger('epochs', o.epochs);
  // A batch larger than the dataset is one batch of the whole dataset.
  const batchSize = Math.min(o.batchSize === undefined ? 64 : positiveInteger('batchSize', o.batchSize), Math.max(dataset.size, 1));
  const shuffle = o.shuffle === undefined ? true : checkBoolean('shuffle', o.shuffle);
  const seed = o.seed === undefined ? null : checkSeed('seed', o.seed);
  const initialEpoch = o.initialEpoch === undefined ? 0 : nonNegativeInteger('initialEpoch', o.initialEpoch);
  const optimizer = o.optimizer === undefined ? new Adam() : o.optimizer;
  if (!(optimizer instanceof Optimizer)) throw invalidArgument('optimizer', 'Adam or SGD instance', optimizer);
  const validation = o.validation;
  if (validation !== undefined && !(validation instanceof Dataset)) throw invalidArgument('validation', 'Dataset', validation);
  for (const name of ['onBatchEnd', 'onEpochEnd', 'onNonFiniteLoss'] as const) {
    if (o[name] !== undefined && typeof o[name] !== 'function') throw invalidArgument(name, 'function', o[name]);
  }
  const signal = o.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArgument('signal', 'AbortSignal', signal);
  const lrScheduler = o.lrScheduler as LRScheduler | undefined;
  if (lrScheduler !== undefined && !(lrScheduler instanceof LRScheduler))
    throw invalidArgument('lrScheduler', 'StepLR, CosineAnnealingLR or ReduceLROnPlateau', lrScheduler);
  if (lrScheduler && lrScheduler.optimizer !== optimizer) {
    throw new Lenet5Error(
      'ERR_LENET5_INVALID_ARGUMENT',
      'The lrScheduler was built on another optimizer than the one training uses. Build it on the optimizer you pass (new StepLR(optimizer, ...)).',
    );
  }
  const earlyStopping = o.earlyStopping as EarlyStopping | undefined;
  if (earlyStopping !== undefined && !(earlyStopping instanceof EarlyStopping))
    throw invalidArgument('earlyStopping', 'EarlyStopping', earlyStopping);
  if ((earlyStopping || lrScheduler instanceof ReduceLROnPlateau) && !validation) {
    throw new Lenet5Error(
      'ERR_LENET5_INVALID_ARGUMENT',
      'Early stopping and ReduceLROnPlateau watch the validation loss, but no validation set was given. Pass validation: a Dataset.',
    );
  }
  const nonFiniteLoss = o.nonFiniteLoss === undefined ? 'error' : oneOf('nonFiniteLoss', o.nonFiniteLoss, ['error', 'skip']);
  const onCuda = model.device.startsWith('cuda');
  const batchEventInterval =
    options.onBatchEnd === undefined
      ? 0
      : o.batchEventInterval === undefined
        ? onCuda
          ? 20
          : 1
        : positiveInteger('batchEventInterval', o.batchEventInterval);
  for (const [name, data] of [
    ['dataset', dataset],
    ['validation', validation],
  ] as const) {
    if (data && data.maxLabel >= model.numClasses) {
      throw new Lenet5Error(
        'ERR_LENET5_DATA',
        `The ${name} has label ${data.maxLabel}, but this model has ${model.numClasses} classes (0 to ${model.numClasses - 1}). Create the model with numClasses: ${data.maxLabel + 1} or more.`,
      );
    }
  }
  if (signal?.aborted) throw new Lenet5Error('ERR_LENET5_ABORTED', 'Training was aborted before it started.');
  return {
    epochs,
    batchSize,
    shuffle,
    seed,
    initialEpoch,
    optimizer,
    validation,
    signal,
    lrScheduler,
    earlyStopping,
    nonFiniteLoss,
    batchEventInterval,
  };
}

/** Turns the native loop's events into the caller's callbacks, appending each epoch to `history`. */
export function trainEventHandler(options: TrainOptions, optimizer: Optimizer, history: History): (event: NativeTrainEvent) => void {
  return (event) => {
    if (event.type === 'batch') {
      options.onBatchEnd?.({
        epoch: event.epoch,
        batch: event.batch,
        batches: event.batches,
        loss: event.loss,
        imagesPerSecond: event.imagesPerSecond,
      });
    } else if (event.type === 'epoch') {
      const result: EpochResult = {
        epoch: event.epoch,
        lr: optimizer.lr,
        trainLoss: event.trainLoss,
        seconds: event.seconds,
        imagesPerSecond: event.imagesPerSecond,
      };
      if (event.validation) {
        result.valLoss = event.validation.loss;
        result.valAccuracy = event.validation.correct / event.validation.total;
      }
      history.push(result);
      options.onEpochEnd?.(result);
    } else {
      options.onNonFiniteLoss?.({ epoch: event.epoch, batch: event.batch });
    }
  };
}

/** Checks lossAndGradients()'s batch: N normalised 28x28 images and N labels below numClasses. */
export function checkLabelledBatch(pixels: unknown, labels: ArrayLike<number>, numClasses: number): { targets: Int32Array; count: number } {
  if (!(pixels instanceof Float32Array)) throw invalidArgument('pixels', 'Float32Array', pixels);
  if (pixels.length === 0 || pixels.length % IMAGE_PIXELS !== 0) {
    throw new Lenet5Error(
      'ERR_LENET5_INVALID_ARGUMENT',
      `Expected pixels to hold a positive multiple of ${IMAGE_PIXELS} values (28x28 images) but received ${pixels.length}`,
    );
  }
  const count = pixels.length / IMAGE_PIXELS;
  if (labels.length !== count) {
    throw new Lenet5Error('ERR_LENET5_INVALID_ARGUMENT', `Expected ${count} labels (one per image) but received ${labels.length}`);
  }
  const targets = Int32Array.from(labels);
  for (let i = 0; i < count; i++) {
    const label = labels[i];
    if (!(Number.isInteger(label) && label! >= 0 && label! < numClasses)) {
      throw new Lenet5Error('ERR_LENET5_INVALID_ARGUMENT', `Expected labels between 0 and ${numClasses - 1} but received ${label}`);
    }
  }
  return { targets, count };
}
