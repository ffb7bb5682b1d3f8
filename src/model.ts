/** LeNet5: the model users create, train, evaluate, run, save and load. */
import { Lenet5Error, awaitNative, callNative } from './errors.js';
import { DEFAULT_NORMALIZATION, Dataset, IMAGE_PIXELS, checkNormalization, type Normalization } from './data/dataset.js';
import { parseDevice, type DeviceName } from './device.js';
import { native, type EngineName, type NativeModel } from './native.js';
import { Optimizer } from './optim.js';
import type { ImageOptions } from './data/preprocess.js';
import type { SchedulerState } from './schedule.js';
import { readMetadata, writeMetadata, type ModelMetadata } from './metadata.js';
import { readCheckpoint, readStateDict, type StateDict } from './pth/load.js';
import { writeFileAtomic } from './atomic-write.js';
import { lenet5ToOnnx } from './export/onnx.js';
import { QuantizedLeNet5 } from './quantize/model.js';
import { quantizeNetwork } from './quantize/int8.js';
import { checkBoolean, invalidArgument, knownKeys, nonEmptyString, oneOf, optionsObject, positiveInteger, checkSeed } from './validate.js';
import { checkLabelledBatch, checkTrainOptions, trainEventHandler, type History, type TrainOptions } from './model/training.js';
import {
  checkEvaluateInput,
  checkPredictInput,
  evaluationResult,
  predictionFromNative,
  type EvaluateResult,
  type Prediction,
} from './model/inference.js';
import { checkpointContents, type CheckpointOptions } from './model/checkpoint.js';
import { checkFiniteTensors, matchStateDict, numClassesOf, type LoadStateResult } from './model/checks.js';

export type { BatchProgress, EpochResult, History, TrainOptions } from './model/training.js';
export type { EvaluateResult, Prediction } from './model/inference.js';
export type { CheckpointOptions } from './model/checkpoint.js';
export type { LoadStateResult } from './model/checks.js';

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
    const { targets, count } = checkLabelledBatch(pixels, labels, this.numClasses);
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
    const settings = checkTrainOptions(this, dataset, options);
    const { optimizer, validation, signal, lrScheduler, earlyStopping } = settings;
    this.normalization = { ...dataset.normalization };
    this.classes ??= dataset.classes?.length === this.numClasses ? dataset.classes : undefined;
    const history: History = [];
    const onAbort = () => this.handle.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    const onEvent = trainEventHandler(options, optimizer, history);
    const run = (count: number, done: number) =>
      awaitNative(() =>
        this.handle.train(
          dataset.handle,
          validation?.handle ?? null,
          optimizer.handle,
          {
            epochs: count,
            batchSize: settings.batchSize,
            shuffle: settings.shuffle,
            seed: settings.seed,
            initialEpoch: done,
            batchEventInterval: settings.batchEventInterval,
            stopOnNonFiniteLoss: settings.nonFiniteLoss === 'error',
            evalBatchSize: 1000,
            ...this.normalization,
          },
          onEvent,
        ),
      );
    try {
      if (!lrScheduler && !earlyStopping) {
        await run(settings.epochs, settings.initialEpoch);
      } else {
        // One native call per epoch, so the learning rate can change in between; the shuffle is
        // seeded per epoch number, so this trains exactly like one call of `epochs` epochs.
        for (let done = settings.initialEpoch; done < settings.initialEpoch + settings.epochs; done++) {
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
    const batchSize = checkEvaluateInput(dataset, options, this.numClasses);
    const raw = await awaitNative(() => this.handle.evaluate(dataset.handle, { batchSize, ...this.normalization }));
    return evaluationResult(raw, this.numClasses);
  }

  /**
   * Class probabilities for images: Uint8Array of raw 0-255 pixels (normalised like the training
   * data) or Float32Array of already-normalised values, N x 28 x 28 (or N x 1 x 28 x 28) long.
   */
  async predict(pixels: Uint8Array | Float32Array, options: { shape?: number[] } = {}): Promise<Prediction> {
    const count = checkPredictInput(pixels, options);
    const raw = await awaitNative(() => this.handle.predict(pixels, count, this.normalization));
    return predictionFromNative(raw, count, this.numClasses);
  }

  /**
   * Static post-training int8 quantization (src/quantize/int8.ts has the scheme): per-channel int8
   * weights, and per-tensor activation scales measured on the first `images` images of `dataset`
   * (default 1000; training images, not the test set). The float model is unchanged.
   */
  async quantize(dataset: Dataset, options: { images?: number } = {}): Promise<QuantizedLeNet5> {
    if (!(dataset instanceof Dataset)) throw invalidArgument('dataset', 'Dataset (calibration images)', dataset);
    const o = optionsObject('quantize options', options);
    knownKeys('quantize options', o, ['images']);
    const count = Math.min(o.images === undefined ? 1000 : positiveInteger('images', o.images), dataset.size);
    if (count === 0) throw new Lenet5Error('ERR_LENET5_DATA', 'The calibration dataset holds no images. Give it some training images.');
    const pixels = dataset.toArrays().images.subarray(0, count * IMAGE_PIXELS);
    const { mean, std } = this.normalization;
    const calibration = Float32Array.from(pixels, (v) => (v / 255 - mean) / std);
    const values = this.parameterValues();
    const network = quantizeNetwork(
      this.parameters().map((p, i) => ({ ...p, values: values[i] })),
      calibration,
    );
    return new QuantizedLeNet5(network, {
      classes: this.classes ? [...this.classes] : null,
      normalization: { ...this.normalization },
      ...(this.preprocessing ? { preprocessing: { ...this.preprocessing } } : {}),
      calibration: { method: 'max-abs', images: count },
    });
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
    const { optimizer, epoch, loss, extra } = checkpointContents(options);
    const bytes = callNative(() => this.handle.checkpointBytes(optimizer.handle, epoch, loss, extra));
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
    const result = this.applyStateDict(await readStateDict(path), strict, path, o.allowNonFinite);
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
    const model = await LeNet5.fromStateDict(stateDict, path, o.device as DeviceName | undefined);
    model.applyStateDict(stateDict, strict, path, o.allowNonFinite);
    return model;
  }

  /** Loads a checkpoint (this package's or Python's) with its optimizer, ready to resume training. */
  static async loadCheckpoint(path: string, options: { device?: DeviceName } = {}): Promise<LoadedCheckpoint> {
    nonEmptyString('path', path);
    const o = optionsObject('loadCheckpoint options', options);
    knownKeys('loadCheckpoint options', o, ['device']);
    const checkpoint = await readCheckpoint(path);
    const model = await LeNet5.fromStateDict(checkpoint, path, o.device as DeviceName | undefined);
    model.applyStateDict(checkpoint, true, path, false);
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

  private static async fromStateDict(stateDict: StateDict, path: string, device: DeviceName | undefined): Promise<LeNet5> {
    const numClasses = numClassesOf(stateDict, path);
    const metadata = await readMetadata(path);
    const model = new LeNet5({ numClasses, device: device ?? 'cpu' });
    if (metadata) model.adoptMetadata(metadata);
    return model;
  }

  /** Names and shapes first, then the values of the matching tensors only: finite (unless allowed), then set. */
  private applyStateDict(stateDict: StateDict, strict: boolean, path: string, allowNonFinite: unknown): LoadStateResult {
    const parameters = this.parameters();
    const { values, result } = matchStateDict(stateDict, parameters, strict, path);
    checkFiniteTensors(
      parameters.flatMap(({ name }, i) => (values[i] ? [{ name, values: values[i] }] : [])),
      path,
      allowNonFinite,
    );
    callNative(() => this.handle.setParameters(values));
    this.loadResult = result;
    return this.loadResult;
  }
}

function checkClassNames(classes: unknown): string[] {
  if (!Array.isArray(classes) || classes.length === 0 || !classes.every((c) => typeof c === 'string')) {
    throw invalidArgument('classes', 'non-empty array of class names', classes);
  }
  return classes;
}
