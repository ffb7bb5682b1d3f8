/** QuantizedLeNet5: an int8 model (LeNet5.quantize, lenet5 quantize) that predicts, evaluates, saves and exports. */
import type { Dataset, Normalization } from '../data/dataset.js';
import type { ImageOptions } from '../data/preprocess.js';
import { writeFileAtomic } from '../atomic-write.js';
import { lenet5ToQdqOnnx } from '../export/onnx-int8.js';
import {
  checkEvaluateInput,
  checkPredictInput,
  evaluationResult,
  predictionFromLogits,
  requireFinitePixels,
  type EvaluateResult,
  type Prediction,
} from '../model/inference.js';
import { knownKeys, nonEmptyString, oneOf, optionsObject } from '../validate.js';
import { encodeInt8Model, readInt8Model, type Int8ModelInfo } from './file.js';
import { int8Logits, type QuantizedNetwork } from './int8.js';

export class QuantizedLeNet5 {
  readonly numClasses: number;
  readonly classes: readonly string[] | undefined;
  readonly normalization: Normalization;
  readonly preprocessing: ImageOptions | undefined;
  /** The scales, int8 weights and int32 biases (src/quantize/int8.ts describes the scheme). */
  readonly network: QuantizedNetwork;
  private readonly calibration: Int8ModelInfo['calibration'];

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
    requireFinitePixels(pixels);
    return predictionFromLogits(int8Logits(this.network, this.normalised(pixels), count), count, this.numClasses);
  }

  /** Like LeNet5.evaluate: loss, accuracy, per-class accuracy and confusion matrix of the int8 model. */
  async evaluate(dataset: Dataset, options: { batchSize?: number } = {}): Promise<EvaluateResult> {
    checkEvaluateInput(dataset, options, this.numClasses);
    const { images, labels } = dataset.toArrays();
    const logits = int8Logits(this.network, this.normalised(images), labels.length);
    const confusion = new Array<number>(this.numClasses * this.numClasses).fill(0);
    let loss = 0;
    let correct = 0;
    labels.forEach((label, n) => {
      const row = logits.subarray(n * this.numClasses, (n + 1) * this.numClasses);
      const max = row.reduce((a, b) => Math.max(a, b), -Infinity);
      const logSum = max + Math.log(row.reduce((sum, v) => sum + Math.exp(v - max), 0));
      loss += logSum - row[label];
      const predicted = row.indexOf(max);
      confusion[label * this.numClasses + predicted]++;
      if (predicted === label) correct++;
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

  /** Nothing native to free; here so the commands can treat both kinds of model alike. */
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

  private normalised(pixels: Uint8Array | Float32Array): Float32Array {
    if (pixels instanceof Float32Array) return pixels;
    const { mean, std } = this.normalization;
    const out = new Float32Array(pixels.length);
    for (let i = 0; i < pixels.length; i++) out[i] = (pixels[i] / 255 - mean) / std;
    return out;
  }
}
