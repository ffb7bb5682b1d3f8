/** QuantizedLeNet5: an int8 model (LeNet5.quantize, lenet5 quantize) that predicts, evaluates, saves and exports. */
import type { Dataset, Normalization } from '../data/dataset.js';
import type { ImageOptions } from '../data/preprocess.js';
import { writeFileAtomic } from '../atomic-write.js';
import { awaitNative, callNative } from '../errors.js';
import { lenet5ToQdqOnnx } from '../export/onnx-int8.js';
import {
  checkEvaluateInput,
  checkPredictInput,
  evaluationResult,
  predictionFromNative,
  type EvaluateResult,
  type Prediction,
} from '../model/inference.js';
import { native, type NativePrediction, type NativeQuantizedModel, type NativeQuantizedNetwork } from '../native.js';
import { knownKeys, nonEmptyString, oneOf, optionsObject } from '../validate.js';
import { encodeInt8Model, readInt8Model, type Int8ModelInfo } from './file.js';
import { ACTIVATIONS, QUANTIZED_LAYERS, quantize, type QuantizedNetwork } from './int8.js';

export class QuantizedLeNet5 {
  readonly numClasses: number;
  readonly classes: readonly string[] | undefined;
  readonly normalization: Normalization;
  readonly preprocessing: ImageOptions | undefined;
  /** The scales, int8 weights and int32 biases (src/quantize/int8.ts describes the scheme). */
  readonly network: QuantizedNetwork;
  private readonly calibration: Int8ModelInfo['calibration'];
  private nativeModel: NativeQuantizedModel | undefined;

  constructor(network: QuantizedNetwork, info: Int8ModelInfo) {
    this.network = network;
    this.numClasses = network.numClasses;
    this.classes = info.classes ?? undefined;
    this.normalization = { ...info.normalization };
    this.preprocessing = info.preprocessing;
    this.calibration = { ...info.calibration };
  }

  /** Reads an int8 model file (what save() writes). */
  static async load(path: string): Promise<QuantizedLeNet5> {
    nonEmptyString('path', path);
    const { network, info } = await readInt8Model(path);
    return new QuantizedLeNet5(network, info);
  }

  /** Writes the int8 model file (atomically): one self-contained file, class names and normalisation included. */
  async save(path: string): Promise<void> {
    nonEmptyString('path', path);
    await writeFileAtomic(path, encodeInt8Model(this.network, this.info()));
  }

  /** Like LeNet5.predict: probabilities for Uint8Array 0-255 pixels or already-normalised Float32Array values. */
  async predict(pixels: Uint8Array | Float32Array, options: { shape?: number[] } = {}): Promise<Prediction> {
    const count = checkPredictInput(pixels, options);
    return predictionFromNative(await this.nativePredict(pixels, count), count, this.numClasses);
  }

  /** Like LeNet5.evaluate: loss, accuracy, per-class accuracy and confusion matrix of the int8 model. */
  async evaluate(dataset: Dataset, options: { batchSize?: number } = {}): Promise<EvaluateResult> {
    checkEvaluateInput(dataset, options, this.numClasses);
    const { images, labels } = dataset.toArrays();
    const { logits, classes } = await this.nativePredict(images, labels.length);
    const confusion = new Array<number>(this.numClasses * this.numClasses).fill(0);
    let loss = 0;
    let correct = 0;
    labels.forEach((label, n) => {
      const row = logits.subarray(n * this.numClasses, (n + 1) * this.numClasses);
      const max = row[classes[n]!]!;
      loss += max + Math.log(row.reduce((sum, v) => sum + Math.exp(v - max), 0)) - row[label]!;
      confusion[label * this.numClasses + classes[n]!]++;
      if (classes[n] === label) correct++;
    });
    return evaluationResult({ loss: labels.length ? loss / labels.length : 0, correct, total: labels.length, confusion }, this.numClasses);
  }

  /** 'onnx' only: a QDQ ONNX file (opset 13) computing what predict computes; takes normalised input [N, 1, 28, 28]. */
  async export(path: string, options: { format: 'onnx' }): Promise<void> {
    nonEmptyString('path', path);
    const o = optionsObject('export options', options);
    knownKeys('export options', o, ['format']);
    oneOf('format', o.format, ['onnx']);
    await writeFileAtomic(path, lenet5ToQdqOnnx(this.network));
  }

  /** Where it runs: the int8 path is CPU code. */
  get device(): string {
    return 'cpu';
  }

  /** Nothing to free by hand (the native network is freed with this object); here so the commands can treat both kinds of model alike. */
  dispose(): void {}

  /** The class names, or "0", "1", ... when the model has none. */
  classNames(): string[] {
    return this.classes ? [...this.classes] : Array.from({ length: this.numClasses }, (_, c) => String(c));
  }

  private info(): Int8ModelInfo {
    return {
      classes: this.classes ? [...this.classes] : null,
      normalization: { ...this.normalization },
      ...(this.preprocessing ? { preprocessing: { ...this.preprocessing } } : {}),
      calibration: { ...this.calibration },
    };
  }

  /**
   * The native int8 pass (built on first use, so loading and saving need no addon). Raw pixels go
   * through a table of each pixel value's int8 input: the reference's normalise-then-quantize,
   * computed here once rather than per pixel.
   */
  private nativePredict(pixels: Uint8Array | Float32Array, count: number): Promise<NativePrediction> {
    const pass = (this.nativeModel ??= callNative(() => new (native().NativeQuantizedModel)(nativeNetwork(this.network), '')));
    if (pixels instanceof Float32Array) return awaitNative(() => pass.predict(pixels, count));
    const { mean, std } = this.normalization;
    const levels = Int8Array.from({ length: 256 }, (_, v) =>
      quantize(Math.fround((v / 255 - mean) / std), this.network.activationScales.input),
    );
    return awaitNative(() => pass.predict(pixels, count, levels));
  }
}

/** The arrays the addon's NativeQuantizedModel takes, in layer order. */
export function nativeNetwork(network: QuantizedNetwork): NativeQuantizedNetwork {
  const layers = QUANTIZED_LAYERS.map((name) => network.layers[name]);
  return {
    numClasses: network.numClasses,
    activationScales: Float32Array.from(ACTIVATIONS, (a) => network.activationScales[a]),
    weights: layers.map((l) => l.weight),
    weightScales: layers.map((l) => l.weightScales),
    biases: layers.map((l) => l.bias),
  };
}
