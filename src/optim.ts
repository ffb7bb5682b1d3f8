/**
 * Optimizers with PyTorch's options and defaults. An optimizer keeps its state (Adam's moments,
 * SGD's momentum) across train() calls, so two calls of 5 epochs continue like one of 10. It
 * belongs to the first model it trains.
 */
import { callNative } from './errors.js';
import { native, type NativeOptimizer, type NativeOptimizerOptions, type NativeOptimizerState } from './native.js';
import type { AdamOptions, SGDOptions } from './optim-options.js';
import type { OptimizerState } from './pth/load.js';
import { optimizerStateError } from './pth/optimizer-state.js';
import { checkBoolean, invalidArgument, knownKeys, nonNegativeNumber, numberInRange, optionsObject } from './validate.js';

export type { AdamOptions, SGDOptions } from './optim-options.js';

export abstract class Optimizer {
  /** @internal */
  readonly handle: NativeOptimizer;
  protected settings: NativeOptimizerOptions;

  protected constructor(settings: NativeOptimizerOptions, state: NativeOptimizerState | null) {
    this.settings = settings;
    this.handle = callNative(() => new (native().NativeOptimizer)(settings, state));
  }

  /** @internal A checkpoint's optimizer, for a model with these parameters (in order). */
  static fromCheckpoint(state: OptimizerState, parameters: readonly { name: string; shape: number[] }[]): Optimizer {
    const restored = flattenState(state, parameters);
    return state.settings.kind === 'adam' ? new Adam(state.settings.options, restored) : new SGD(state.settings.options, restored);
  }

  /** Optimizer steps taken so far. */
  get steps(): number {
    return this.handle.steps();
  }

  get lr(): number {
    return this.settings.lr;
  }

  /** Changes the learning rate for the following steps (a schedule does this between epochs). 0 is allowed, as in PyTorch: a cosine schedule with etaMin 0 ends there. */
  set lr(value: number) {
    this.settings = { ...this.settings, lr: nonNegativeNumber('lr', value) };
    this.handle.setOptions(this.settings);
  }
}

/** Checks the checkpoint's per-parameter buffers against the model's parameters and concatenates them. */
function flattenState(state: OptimizerState, parameters: readonly { name: string; shape: number[] }[]): NativeOptimizerState {
  if (state.parameterCount !== parameters.length)
    throw optimizerStateError(state.path, `lists ${state.parameterCount} parameters; LeNet-5 has ${parameters.length}.`);
  const sizes = parameters.map((p) => p.shape.reduce((a, b) => a * b, 1));
  const total = sizes.reduce((a, b) => a + b, 0);
  const buffers: Record<string, Float32Array> = {};
  for (const [name, perParameter] of Object.entries(state.buffers)) {
    const flat = new Float32Array(total);
    let offset = 0;
    perParameter.forEach((buffer, i) => {
      const expected = parameters[i].shape;
      if (buffer.shape.join(',') !== expected.join(',')) {
        throw optimizerStateError(
          state.path,
          `has ${name} for ${parameters[i].name} with shape [${buffer.shape.join(', ')}]; expected [${expected.join(', ')}].`,
        );
      }
      flat.set(buffer.values, offset);
      offset += sizes[i];
    });
    buffers[name] = flat;
  }
  return { steps: state.steps, buffers };
}

export class Adam extends Optimizer {
  /** `restored` is internal: a checkpoint's state (see Optimizer.fromCheckpoint). */
  constructor(options: AdamOptions = {}, restored: NativeOptimizerState | null = null) {
    const o = optionsObject('Adam options', options);
    knownKeys('Adam options', o, ['lr', 'betas', 'eps', 'weightDecay', 'amsgrad']);
    const betas = o.betas ?? [0.9, 0.999];
    if (!Array.isArray(betas) || betas.length !== 2) {
      throw invalidArgument('betas', 'array of two numbers in [0, 1)', betas);
    }
    super(
      {
        kind: 'adam',
        lr: o.lr === undefined ? 1e-3 : nonNegativeNumber('lr', o.lr),
        beta1: numberInRange('betas[0]', betas[0], 0, 1, { maxExclusive: true }),
        beta2: numberInRange('betas[1]', betas[1], 0, 1, { maxExclusive: true }),
        eps: o.eps === undefined ? 1e-8 : nonNegativeNumber('eps', o.eps),
        weightDecay: o.weightDecay === undefined ? 0 : nonNegativeNumber('weightDecay', o.weightDecay),
        amsgrad: o.amsgrad === undefined ? false : checkBoolean('amsgrad', o.amsgrad),
      },
      restored,
    );
  }
}

export class SGD extends Optimizer {
  /** `restored` is internal: a checkpoint's state (see Optimizer.fromCheckpoint). */
  constructor(options: SGDOptions = {}, restored: NativeOptimizerState | null = null) {
    const o = optionsObject('SGD options', options);
    knownKeys('SGD options', o, ['lr', 'momentum', 'dampening', 'nesterov', 'weightDecay']);
    const momentum = o.momentum === undefined ? 0 : nonNegativeNumber('momentum', o.momentum);
    const dampening = o.dampening === undefined ? 0 : nonNegativeNumber('dampening', o.dampening);
    const nesterov = o.nesterov === undefined ? false : checkBoolean('nesterov', o.nesterov);
    if (nesterov && (momentum <= 0 || dampening !== 0)) {
      throw invalidArgument(
        'nesterov',
        'momentum > 0 and dampening 0 (as PyTorch requires)',
        `momentum ${momentum}, dampening ${dampening}`,
      );
    }
    super(
      {
        kind: 'sgd',
        lr: o.lr === undefined ? 1e-3 : nonNegativeNumber('lr', o.lr),
        momentum,
        dampening,
        nesterov,
        weightDecay: o.weightDecay === undefined ? 0 : nonNegativeNumber('weightDecay', o.weightDecay),
      },
      restored,
    );
  }
}
