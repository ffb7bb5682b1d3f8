/** LeNet5: the model users create, train, evaluate, run, save and load. */
import { Lenet5Error, awaitNative, callNative } from './errors.js';
import { Dataset, DEFAULT_NORMALIZATION, IMAGE_PIXELS, checkNormalization, type Normalization } from './data/dataset.js';
import { parseDevice, type DeviceName } from './device.js';
import { native, type EngineName, type NativeEvalResult, type NativeModel, type NativeTrainEvent, type PickleValue } from './native.js';
import { Adam, Optimizer } from './optim.js';
import type { ImageOptions } from './data/preprocess.js';
import { EarlyStopping, LRScheduler, ReduceLROnPlateau, pickleState, type SchedulerState } from './schedule.js';
import { readMetadata, writeMetadata, type ModelMetadata } from './metadata.js';
import { readCheckpoint, readStateDict, type LoadedTensor, type StateDict } from './pth/load.js';
import { writeFileAtomic } from './atomic-write.js';
import { lenet5ToOnnx } from './export/onnx.js';
import {
  checkBoolean,
  invalidArgument,
  knownKeys,
  nonEmptyString,
  nonNegativeInteger,
  oneOf,
  optionsObject,
  positiveInteger,
  checkSeed,
} from './validate.js';

export interface LeNet5Options {
  /** Output classes (fc3's size). Default 10. */
  numClasses?: number;
  /** Default 'cpu'. 'auto' picks cuda:0 when available. */
  device?: DeviceName;
  /** Seeds the weight initialisation (PyTorch's default init), for reproducible runs. */
  seed?: number;
  /** Class names, stored with the model. */
  classes?: string[];
  /** Pixel normalisation; train() adopts the training data's. Default mean 0.5, std 0.5. */
  normalization?: Normalization;
  /**
   * What computes training, evaluation and predictions on the CPU: 'fused' (this package's LeNet-5
   * engine, the default) or 'libtorch' (LibTorch's operators, the reference). GPUs always use
   * LibTorch. Default: the LENET5_ENGINE environment variable, else 'fused'.
   */
  engine?: EngineName;
}

const ENGINES: readonly EngineName[] = ['fused', 'libtorch'];

function defaultEngine(): EngineName {
  const fromEnvironment = process.env.LENET5_ENGINE;
  if (fromEnvironment === undefined || fromEnvironment === '') return 'fused';
  if (!(ENGINES as readonly string[]).includes(fromEnvironment)) {
    throw new Lenet5Error(
      'ERR_LENET5_INVALID_ARGUMENT',
      `Expected LENET5_ENGINE to be one of ${ENGINES.map((e) => `'${e}'`).join(', ')} but it is '${fromEnvironment}'. Unset it or fix its value.`,
    );
  }
  return fromEnvironment as EngineName;
}

export interface BatchGradients {
  /** Mean cross-entropy of the batch. */
  loss: number;
  /** d(loss)/d(parameter), by state_dict key, shaped as parameters() says (flat, row-major). */
  gradients: Record<string, Float32Array>;
}

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

export interface EvaluateResult {
  loss: number;
  accuracy: number;
  correct: number;
  total: number;
  perClassAccuracy: number[];
  /** confusionMatrix[trueClass][predictedClass] */
  confusionMatrix: number[][];
}

export interface Prediction {
  /** Most likely class per image. */
  classes: number[];
  /** Softmax probabilities per image. */
  probabilities: Float32Array[];
  logits: Float32Array[];
}

/** Names the tensors holding NaN or infinity; throws ERR_LENET5_NON_FINITE unless `allow` is true. */
function checkFiniteTensors(tensors: LoadedTensor[], path: string, allow: unknown): void {
  if (allow !== undefined && checkBoolean('allowNonFinite', allow)) return;
  const bad = tensors
    .map((t) => {
      const nan = t.values.reduce((n, v) => n + (Number.isNaN(v) ? 1 : 0), 0);
      const infinite = t.values.reduce((n, v) => n + (v === Infinity || v === -Infinity ? 1 : 0), 0);
      return { name: t.name, nan, infinite };
    })
    .filter((t) => t.nan + t.infinite > 0);
  if (bad.length) {
    throw new Lenet5Error(
      'ERR_LENET5_NON_FINITE',
      `${path} holds weights that are not finite: ${bad.map((t) => `${t.name} (${t.nan} NaN, ${t.infinite} infinite)`).join(', ')}. ` +
        'Such a model outputs NaN for every image. Use weights saved before training diverged, or load them anyway with { allowNonFinite: true } (lenet5 --allow-non-finite).',
    );
  }
}

export interface CheckpointOptions {
  optimizer: Optimizer;
  /** Epochs completed. */
  epoch: number;
  loss?: number;
  /** Saved as lr_scheduler_state_dict, in PyTorch's scheduler.state_dict() layout. */
  lrScheduler?: LRScheduler;
  /** Saved as early_stopping_state_dict (patience, min_delta, best, best_epoch, num_bad_epochs). */
  earlyStopping?: EarlyStopping;
  /** Further top-level numbers, e.g. { best_val_accuracy: 0.9, best_epoch: 3n }: numbers become Python floats, bigints ints. */
  extra?: Record<string, number | bigint>;
}

export interface LoadedCheckpoint {
  model: LeNet5;
  optimizer: Optimizer;
  epoch: number;
  loss: number | null;
  /** The checkpoint's lr_scheduler_state_dict (this package's or Python's); schedulerFromState() rebuilds it. */
  lrSchedulerState: SchedulerState | null;
  earlyStoppingState: SchedulerState | null;
  /** Every top-level number, string or boolean of the checkpoint. */
  scalars: Record<string, number | string | boolean | null>;
}

export interface LoadStateResult {
  missingKeys: string[];
  unexpectedKeys: string[];
  /** Present in both but with different shapes (skipped when non-strict). */
  mismatchedKeys: string[];
  /** 'module.' (nn.DataParallel, DDP) or '_orig_mod.' (torch.compile) when the file's keys all had it and it was removed; else null. */
  strippedPrefix: string | null;
}

function shapeOf(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function evaluationResult(raw: NativeEvalResult, numClasses: number): EvaluateResult {
  const confusionMatrix = Array.from({ length: numClasses }, (_, t) => raw.confusion.slice(t * numClasses, (t + 1) * numClasses));
  const perClassAccuracy = confusionMatrix.map((row, t) => {
    const count = row.reduce((a, b) => a + b, 0);
    return count === 0 ? NaN : row[t] / count;
  });
  return {
    loss: raw.loss,
    accuracy: raw.total === 0 ? 0 : raw.correct / raw.total,
    correct: raw.correct,
    total: raw.total,
    perClassAccuracy,
    confusionMatrix,
  };
}

export class LeNet5 {
  readonly numClasses: number;
  classes: readonly string[] | undefined;
  normalization: Normalization;
  /** How images were made 28x28 for training (set by lenet5 train for image folders; saved in the metadata); predict's default. */
  preprocessing: ImageOptions | undefined;
  /** What the last load from a file (load, loadStateDict, loadCheckpoint) found; undefined before any. */
  loadResult: LoadStateResult | undefined;
  private handle: NativeModel;

  constructor(options: LeNet5Options = {}) {
    const o = optionsObject('LeNet5 options', options);
    knownKeys('LeNet5 options', o, ['numClasses', 'device', 'seed', 'classes', 'normalization', 'engine']);
    this.classes = o.classes === undefined ? undefined : checkClassNames(o.classes);
    this.numClasses = o.numClasses === undefined ? (this.classes?.length ?? 10) : positiveInteger('numClasses', o.numClasses);
    if (this.classes && this.classes.length !== this.numClasses) {
      throw new Lenet5Error(
        'ERR_LENET5_INVALID_ARGUMENT',
        `Expected ${this.numClasses} class names (numClasses) but received ${this.classes.length}`,
      );
    }
    this.normalization = o.normalization === undefined ? { ...DEFAULT_NORMALIZATION } : checkNormalization(o.normalization);
    const device = o.device === undefined ? 'cpu' : parseDevice('device', o.device);
    const seed = o.seed === undefined ? null : checkSeed('seed', o.seed);
    const engine = o.engine === undefined ? defaultEngine() : oneOf('engine', o.engine, ENGINES);
    this.handle = callNative(() => new (native().NativeModel)(this.numClasses, device, seed));
    this.handle.setEngine(engine);
  }

  /** 'fused' or 'libtorch': see LeNet5Options.engine. Settable between calls. */
  get engine(): EngineName {
    return callNative(() => this.handle.engine());
  }

  set engine(engine: EngineName) {
    const checked = oneOf('engine', engine, ENGINES);
    callNative(() => this.handle.setEngine(checked));
  }

  /**
   * The mean cross-entropy of one batch and every parameter's gradient, without changing the
   * weights (what one training step would compute). `pixels` are already normalised floats,
   * [N, 28, 28] or [N, 1, 28, 28] flattened; `labels` has N class indices. Runs synchronously.
   */
  lossAndGradients(pixels: Float32Array, labels: ArrayLike<number>): BatchGradients {
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
      if (!(Number.isInteger(label) && label! >= 0 && label! < this.numClasses)) {
        throw new Lenet5Error('ERR_LENET5_INVALID_ARGUMENT', `Expected labels between 0 and ${this.numClasses - 1} but received ${label}`);
      }
    }
    const raw = callNative(() => this.handle.lossAndGradients(pixels, targets, count));
    const gradients: Record<string, Float32Array> = {};
    this.parameters().forEach((parameter, i) => {
      gradients[parameter.name] = raw.gradients[i]!;
    });
    return { loss: raw.loss, gradients };
  }

  /** The device the model lives on, e.g. 'cpu' or 'cuda:0'. Readable while a call runs. */
  get device(): string {
    return callNative(() => this.handle.device());
  }

  /** Moves the model (and, at its next step, its optimizer's state) to another device. */
  to(device: DeviceName): this {
    const name = parseDevice('device', device);
    callNative(() => this.handle.to(name));
    return this;
  }

  /** Parameter names and shapes, equal to PyTorch's state_dict of the seed's class. Readable while a call runs. */
  parameters(): { name: string; shape: number[] }[] {
    return callNative(() => this.handle.parameterInfo());
  }

  /** CPU copies of the parameter values, in parameters() order (row-major, as PyTorch stores them). */
  parameterValues(): Float32Array[] {
    return callNative(() => this.handle.parameterValues());
  }

  /** Replaces every parameter's values, given in parameters() order and shapes (row-major, as parameterValues() returns them). */
  setParameterValues(values: Float32Array[]): void {
    const parameters = this.parameters();
    if (!Array.isArray(values) || values.length !== parameters.length) {
      throw new Lenet5Error(
        'ERR_LENET5_INVALID_ARGUMENT',
        `Expected an array of ${parameters.length} Float32Arrays (one per parameter, in parameters() order) but received ${Array.isArray(values) ? `${values.length} items` : typeof values}`,
      );
    }
    parameters.forEach(({ name, shape }, i) => {
      const size = shape.reduce((a, b) => a * b, 1);
      if (!(values[i] instanceof Float32Array) || values[i]!.length !== size) {
        throw new Lenet5Error(
          'ERR_LENET5_INVALID_ARGUMENT',
          `Expected ${name} as a Float32Array of ${size} values (shape [${shape.join(', ')}]) but received ${values[i] instanceof Float32Array ? `${values[i]!.length} values` : typeof values[i]}`,
        );
      }
    });
    callNative(() => this.handle.setParameters(values));
  }

  async train(dataset: Dataset, options: TrainOptions = {}): Promise<History> {
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
    const onCuda = this.device.startsWith('cuda');
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
      if (data && data.maxLabel >= this.numClasses) {
        throw new Lenet5Error(
          'ERR_LENET5_DATA',
          `The ${name} has label ${data.maxLabel}, but this model has ${this.numClasses} classes (0 to ${this.numClasses - 1}). Create the model with numClasses: ${data.maxLabel + 1} or more.`,
        );
      }
    }
    if (signal?.aborted) throw new Lenet5Error('ERR_LENET5_ABORTED', 'Training was aborted before it started.');

    this.normalization = { ...dataset.normalization };
    this.classes ??= dataset.classes?.length === this.numClasses ? dataset.classes : undefined;
    const history: History = [];
    const onAbort = () => this.handle.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    const run = (count: number, done: number) =>
      awaitNative(() =>
        this.handle.train(
          dataset.handle,
          validation?.handle ?? null,
          optimizer.handle,
          {
            epochs: count,
            batchSize,
            shuffle,
            seed,
            initialEpoch: done,
            batchEventInterval,
            stopOnNonFiniteLoss: nonFiniteLoss === 'error',
            evalBatchSize: 1000,
            ...this.normalization,
          },
          (event: NativeTrainEvent) => {
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
          },
        ),
      );
    try {
      if (!lrScheduler && !earlyStopping) {
        await run(epochs, initialEpoch);
      } else {
        // One native call per epoch, so the learning rate can change in between; the shuffle is
        // seeded per epoch number, so this trains exactly like one call of `epochs` epochs.
        for (let done = initialEpoch; done < initialEpoch + epochs; done++) {
          await run(1, done);
          const valLoss = history[history.length - 1].valLoss as number;
          lrScheduler?.step(valLoss);
          if (earlyStopping?.step(valLoss, done + 1)) break;
        }
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    return history;
  }

  /** Loss, accuracy, per-class accuracy and confusion matrix, in eval mode without gradients. */
  async evaluate(dataset: Dataset, options: { batchSize?: number } = {}): Promise<EvaluateResult> {
    if (!(dataset instanceof Dataset)) throw invalidArgument('dataset', 'Dataset', dataset);
    const o = optionsObject('evaluate options', options);
    knownKeys('evaluate options', o, ['batchSize']);
    const batchSize = o.batchSize === undefined ? 1000 : positiveInteger('batchSize', o.batchSize);
    if (dataset.maxLabel >= this.numClasses) {
      throw new Lenet5Error(
        'ERR_LENET5_DATA',
        `The dataset has label ${dataset.maxLabel}, but this model has ${this.numClasses} classes. Evaluate with a model trained on these classes.`,
      );
    }
    const raw = await awaitNative(() => this.handle.evaluate(dataset.handle, { batchSize, ...this.normalization }));
    return evaluationResult(raw, this.numClasses);
  }

  /**
   * Class probabilities for images: Uint8Array of raw 0-255 pixels (normalised like the training
   * data) or Float32Array of already-normalised values, N x 28 x 28 (or N x 1 x 28 x 28) long.
   */
  async predict(pixels: Uint8Array | Float32Array, options: { shape?: number[] } = {}): Promise<Prediction> {
    if (!(pixels instanceof Uint8Array) && !(pixels instanceof Float32Array)) {
      throw invalidArgument('pixels', 'Uint8Array (0-255) or Float32Array (normalised)', pixels);
    }
    const o = optionsObject('predict options', options);
    knownKeys('predict options', o, ['shape']);
    if (o.shape !== undefined) checkInputShape(o.shape, pixels.length);
    if (pixels.length === 0 || pixels.length % IMAGE_PIXELS !== 0) {
      throw new Lenet5Error(
        'ERR_LENET5_SHAPE',
        `Expected input of shape [N, 28, 28] or [N, 1, 28, 28] (a positive multiple of ${IMAGE_PIXELS} values) but received ${pixels.length} values`,
      );
    }
    if (pixels instanceof Float32Array) {
      const bad = pixels.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0)
        throw new Lenet5Error(
          'ERR_LENET5_INVALID_ARGUMENT',
          `Expected finite pixel values but pixels[${bad}] is ${pixels[bad]}. Replace NaN/Infinity before predicting.`,
        );
    }
    const count = pixels.length / IMAGE_PIXELS;
    const logits = await awaitNative(() => this.handle.predict(pixels, count, this.normalization));
    const rows: Float32Array[] = [];
    const probabilities: Float32Array[] = [];
    const classes: number[] = [];
    for (let n = 0; n < count; n++) {
      const row = logits.slice(n * this.numClasses, (n + 1) * this.numClasses);
      const max = Math.max(...row);
      const exp = row.map((v) => Math.exp(v - max));
      const sum = exp.reduce((a, b) => a + b, 0);
      rows.push(row);
      probabilities.push(exp.map((v) => v / sum));
      classes.push(row.indexOf(max));
    }
    return { classes, probabilities, logits: rows };
  }

  /**
   * Writes the weights as a PyTorch state_dict file (atomically), plus a small JSON file beside it
   * (same name, .json) with the class names and normalisation.
   */
  async save(path: string): Promise<void> {
    nonEmptyString('path', path);
    const bytes = callNative(() => this.handle.stateDictBytes());
    await writeFileAtomic(path, bytes);
    await writeMetadata(path, this.metadata());
  }

  /** Writes {epoch, model_state_dict, optimizer_state_dict, loss}, the layout Python checkpoints use. */
  async saveCheckpoint(path: string, options: CheckpointOptions): Promise<void> {
    nonEmptyString('path', path);
    const o = optionsObject('checkpoint options', options);
    knownKeys('checkpoint options', o, ['optimizer', 'epoch', 'loss', 'lrScheduler', 'earlyStopping', 'extra']);
    if (!(o.optimizer instanceof Optimizer)) throw invalidArgument('optimizer', 'Adam or SGD instance', o.optimizer);
    const epoch = nonNegativeInteger('epoch', o.epoch);
    if (o.loss !== undefined && typeof o.loss !== 'number') throw invalidArgument('loss', 'number', o.loss);
    const optimizer = o.optimizer;
    const extra: Record<string, PickleValue> = {};
    if (o.lrScheduler !== undefined) {
      if (!(o.lrScheduler instanceof LRScheduler))
        throw invalidArgument('lrScheduler', 'StepLR, CosineAnnealingLR or ReduceLROnPlateau', o.lrScheduler);
      extra.lr_scheduler_state_dict = pickleState(o.lrScheduler.stateDict(), o.lrScheduler.intKeys);
    }
    if (o.earlyStopping !== undefined) {
      if (!(o.earlyStopping instanceof EarlyStopping)) throw invalidArgument('earlyStopping', 'EarlyStopping', o.earlyStopping);
      extra.early_stopping_state_dict = pickleState(o.earlyStopping.stateDict(), EarlyStopping.intKeys);
    }
    for (const [key, value] of Object.entries(optionsObject('extra', o.extra ?? {}))) {
      if (typeof value !== 'number' && typeof value !== 'bigint') throw invalidArgument(`extra.${key}`, 'number or bigint', value);
      extra[key] = value;
    }
    const bytes = callNative(() => this.handle.checkpointBytes(optimizer.handle, epoch, (o.loss as number | undefined) ?? null, extra));
    await writeFileAtomic(path, bytes);
    await writeMetadata(path, this.metadata());
  }

  /**
   * Loads weights from a .pth file (this package's, Python's state_dict, or a checkpoint's
   * model_state_dict). strict (default): any missing, unexpected or mis-shaped key fails the load,
   * all reported together. Non-strict: loads what matches and reports the rest.
   */
  async loadStateDict(path: string, options: { strict?: boolean; allowNonFinite?: boolean } = {}): Promise<LoadStateResult> {
    nonEmptyString('path', path);
    const o = optionsObject('loadStateDict options', options);
    knownKeys('loadStateDict options', o, ['strict', 'allowNonFinite']);
    const strict = o.strict === undefined ? true : checkBoolean('strict', o.strict);
    const stateDict = await readStateDict(path);
    checkFiniteTensors(stateDict.tensors, path, o.allowNonFinite);
    const result = this.applyStateDict(stateDict, strict, path);
    const metadata = await readMetadata(path);
    if (metadata) this.adoptMetadata(metadata);
    return result;
  }

  /** Builds a model from a .pth file; numClasses comes from fc3.weight. */
  static async load(path: string, options: { device?: DeviceName; strict?: boolean; allowNonFinite?: boolean } = {}): Promise<LeNet5> {
    nonEmptyString('path', path);
    const o = optionsObject('load options', options);
    knownKeys('load options', o, ['device', 'strict', 'allowNonFinite']);
    const strict = o.strict === undefined ? true : checkBoolean('strict', o.strict);
    const stateDict = await readStateDict(path);
    checkFiniteTensors(stateDict.tensors, path, o.allowNonFinite);
    const model = await LeNet5.fromStateDict(stateDict, path, o.device as DeviceName | undefined);
    model.applyStateDict(stateDict, strict, path);
    return model;
  }

  /** Loads a checkpoint (this package's or Python's) with its optimizer, ready to resume training. */
  static async loadCheckpoint(path: string, options: { device?: DeviceName } = {}): Promise<LoadedCheckpoint> {
    nonEmptyString('path', path);
    const o = optionsObject('loadCheckpoint options', options);
    knownKeys('loadCheckpoint options', o, ['device']);
    const checkpoint = await readCheckpoint(path);
    checkFiniteTensors(checkpoint.tensors, path, false);
    const model = await LeNet5.fromStateDict(checkpoint, path, o.device as DeviceName | undefined);
    model.applyStateDict(checkpoint, true, path);
    const optimizer = Optimizer.fromCheckpoint(checkpoint.optimizer, model.parameters());
    const { epoch, loss, lrSchedulerState, earlyStoppingState, scalars } = checkpoint;
    return { model, optimizer, epoch, loss, lrSchedulerState, earlyStoppingState, scalars };
  }

  /**
   * Exports for deployment: 'torchscript' (a TorchScript module that torch.jit.load and LibTorch's
   * torch::jit::load run) or 'onnx' (opset 13, dynamic batch; runs in ONNX Runtime). Both take
   * normalised input [N, 1, 28, 28] and return logits; normalise with model.normalization.
   */
  async export(path: string, options: { format: 'torchscript' | 'onnx' }): Promise<void> {
    nonEmptyString('path', path);
    const o = optionsObject('export options', options);
    knownKeys('export options', o, ['format']);
    const format = oneOf('format', o.format, ['torchscript', 'onnx']);
    let bytes: Uint8Array;
    if (format === 'torchscript') {
      bytes = callNative(() => this.handle.torchScriptBytes());
    } else {
      const values = this.parameterValues();
      bytes = lenet5ToOnnx(
        this.parameters().map((p, i) => ({ ...p, values: values[i] })),
        this.numClasses,
        native().torchVersion(),
      );
    }
    await writeFileAtomic(path, bytes);
    await writeMetadata(path, this.metadata());
  }

  /** Frees the native model now. Methods of a disposed model throw ERR_LENET5_DISPOSED. */
  dispose(): void {
    this.handle.dispose();
  }

  /** The class names, or "0", "1", ... when the model has none. */
  classNames(): string[] {
    return this.classes ? [...this.classes] : Array.from({ length: this.numClasses }, (_, c) => String(c));
  }

  /** What save() writes beside the weights (the .json file): class names, normalisation, input shape. */
  metadata(): ModelMetadata {
    return {
      format: 'lenet5-libtorch/1',
      numClasses: this.numClasses,
      classes: this.classes ? [...this.classes] : null,
      normalization: { ...this.normalization },
      inputShape: [1, 28, 28],
      ...(this.preprocessing ? { preprocessing: { ...this.preprocessing } } : {}),
    };
  }

  private adoptMetadata(metadata: ModelMetadata): void {
    if (metadata.classes?.length === this.numClasses) this.classes = metadata.classes;
    this.normalization = metadata.normalization;
    this.preprocessing = metadata.preprocessing;
  }

  private static async fromStateDict({ tensors }: StateDict, path: string, device: DeviceName | undefined): Promise<LeNet5> {
    const fc3 = tensors.find((t) => t.name === 'fc3.weight');
    if (!fc3 || fc3.shape.length !== 2 || fc3.shape[0] < 1) {
      throw new Lenet5Error(
        'ERR_LENET5_STATE_DICT',
        `${path} has no usable fc3.weight, so it is not a LeNet-5 state_dict. Keys found: ${tensors.map((t) => t.name).join(', ')}`,
      );
    }
    const metadata = await readMetadata(path);
    const model = new LeNet5({ numClasses: fc3.shape[0], device: device ?? 'cpu' });
    if (metadata) model.adoptMetadata(metadata);
    return model;
  }

  private applyStateDict({ tensors, strippedPrefix }: StateDict, strict: boolean, path: string): LoadStateResult {
    const slots = this.parameters();
    const byName = new Map(tensors.map((t) => [t.name, t]));
    const missingKeys = slots.filter((s) => !byName.has(s.name)).map((s) => s.name);
    const unexpectedKeys = tensors.filter((t) => !slots.some((s) => s.name === t.name)).map((t) => t.name);
    const mismatched = slots.filter((s) => byName.has(s.name) && shapeOf(byName.get(s.name)!.shape) !== shapeOf(s.shape));
    const mismatchedKeys = mismatched.map((s) => s.name);
    if (strict && (missingKeys.length || unexpectedKeys.length || mismatched.length)) {
      const parts = [
        missingKeys.length ? `Missing key(s) in state_dict: ${missingKeys.map((k) => `"${k}"`).join(', ')}.` : '',
        unexpectedKeys.length ? `Unexpected key(s) in state_dict: ${unexpectedKeys.map((k) => `"${k}"`).join(', ')}.` : '',
        ...mismatched.map(
          (s) =>
            `size mismatch for ${s.name}: copying a param with shape ${shapeOf(byName.get(s.name)!.shape)} from checkpoint, the shape in current model is ${shapeOf(s.shape)}.`,
        ),
      ].filter(Boolean);
      throw new Lenet5Error(
        'ERR_LENET5_STATE_DICT',
        `Error(s) in loading state_dict for LeNet5 from ${path}:\n\t${parts.join('\n\t')}\nUse { strict: false } to load the matching tensors only.`,
      );
    }
    // Parameters the file cannot provide (null) keep their current values.
    const skipped = new Set(mismatchedKeys.concat(missingKeys));
    callNative(() => this.handle.setParameters(slots.map((s) => (skipped.has(s.name) ? null : byName.get(s.name)!.values))));
    this.loadResult = { missingKeys, unexpectedKeys, mismatchedKeys, strippedPrefix };
    return this.loadResult;
  }
}

function checkInputShape(shape: unknown, length: number): void {
  const ok =
    Array.isArray(shape) &&
    shape.every((d) => Number.isSafeInteger(d) && d > 0) &&
    ((shape.length === 3 && shape[1] === 28 && shape[2] === 28) ||
      (shape.length === 4 && shape[1] === 1 && shape[2] === 28 && shape[3] === 28));
  if (!ok) {
    throw new Lenet5Error(
      'ERR_LENET5_SHAPE',
      `Expected input shape [N, 28, 28] or [N, 1, 28, 28] but received ${Array.isArray(shape) ? shapeOf(shape) : String(shape)}`,
    );
  }
  const elements = (shape as number[]).reduce((a, b) => a * b, 1);
  if (elements !== length) {
    throw new Lenet5Error('ERR_LENET5_SHAPE', `Input shape ${shapeOf(shape as number[])} needs ${elements} values but received ${length}`);
  }
}

function checkClassNames(classes: unknown): string[] {
  if (!Array.isArray(classes) || classes.length === 0 || !classes.every((c) => typeof c === 'string')) {
    throw invalidArgument('classes', 'non-empty array of class names', classes);
  }
  return classes;
}
