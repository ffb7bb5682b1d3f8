/** evaluate() and predict(): their input checks, and their results made from the addon's raw numbers. */
import { Lenet5Error } from '../errors.js';
import { Dataset, IMAGE_PIXELS } from '../data/dataset.js';
import type { NativeEvalResult, NativePrediction } from '../native.js';
import { invalidArgument, knownKeys, optionsObject, positiveInteger } from '../validate.js';
import { shapeOf } from './checks.js';

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
  /** Softmax probabilities per image (views of one buffer, as are the logits). */
  probabilities: Float32Array[];
  logits: Float32Array[];
}

/** Checks evaluate()'s arguments; returns the batch size. */
export function checkEvaluateInput(dataset: unknown, options: { batchSize?: number }, numClasses: number): number {
  if (!(dataset instanceof Dataset)) throw invalidArgument('dataset', 'Dataset', dataset);
  const o = optionsObject('evaluate options', options);
  knownKeys('evaluate options', o, ['batchSize']);
  const batchSize = o.batchSize === undefined ? 1000 : positiveInteger('batchSize', o.batchSize);
  if (dataset.maxLabel >= numClasses) {
    throw new Lenet5Error(
      'ERR_LENET5_DATA',
      `The dataset has label ${dataset.maxLabel}, but this model has ${numClasses} classes. Evaluate with a model trained on these classes.`,
    );
  }
  return batchSize;
}

export function evaluationResult(raw: NativeEvalResult, numClasses: number): EvaluateResult {
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

/** Checks predict()'s arguments; returns the number of images. */
export function checkPredictInput(pixels: unknown, options: { shape?: number[] }): number {
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
  // Float32Array values must be finite: the addon checks them while it copies them (a scan here
  // would cost more than the forward pass), rejecting with ERR_LENET5_INVALID_ARGUMENT.
  return pixels.length / IMAGE_PIXELS;
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

/**
 * Splits the addon's flat arrays into per-image views (no copies). Outputs that are not finite
 * name no class: they reject with ERR_LENET5_NON_FINITE.
 */
export function predictionFromNative(raw: NativePrediction, count: number, numClasses: number): Prediction {
  const nonFinite: number[] = [];
  const classes = Array.from(raw.classes);
  classes.forEach((c, n) => {
    if (c < 0) nonFinite.push(n);
  });
  if (nonFinite.length > 0) {
    throw new Lenet5Error(
      'ERR_LENET5_NON_FINITE',
      `The model's outputs are not finite (NaN or infinite) for ${nonFinite.length} of ${count} image(s) (index ${nonFinite.slice(0, 5).join(', ')}${nonFinite.length > 5 ? ', ...' : ''}), so no class can be named: its weights are not finite or too large. Use weights saved before training diverged.`,
    );
  }
  const rows = (values: Float32Array) => Array.from({ length: count }, (_, n) => values.subarray(n * numClasses, (n + 1) * numClasses));
  return { classes, probabilities: rows(raw.probabilities), logits: rows(raw.logits) };
}
