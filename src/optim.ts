/**
 * Optimizers with PyTorch's options and defaults. An optimizer keeps its state (Adam's moments,
 * SGD's momentum) across train() calls, so two calls of 5 epochs continue like one of 10. It
 * belongs to the first model it trains.
 */
import { callNative } from './errors.js';
import { native, type NativeOptimizer, type NativeOptimizerOptions } from './native.js';
import { boolean, invalid as optionsError, knownKeys, nonNegativeNumber, numberInRange, optionsObject, positiveNumber } from './validate.js';

export interface AdamOptions {
  /** Learning rate. Default 0.001. */
  lr?: number;
  /** Coefficients for the running averages of the gradient and its square. Default [0.9, 0.999]. */
  betas?: [number, number];
  /** Added to the denominator for numerical stability. Default 1e-8. */
  eps?: number;
  /** L2 penalty. Default 0. */
  weightDecay?: number;
  /** Use the AMSGrad variant. Default false. */
  amsgrad?: boolean;
}

export interface SGDOptions {
  /** Learning rate. Default 0.001. */
  lr?: number;
  /** Default 0. */
  momentum?: number;
  /** Default 0. */
  dampening?: number;
  /** Nesterov momentum (needs momentum > 0 and dampening 0). Default false. */
  nesterov?: boolean;
  /** L2 penalty. Default 0. */
  weightDecay?: number;
}

export abstract class Optimizer {
  /** @internal */
  readonly handle: NativeOptimizer;
  protected settings: NativeOptimizerOptions;

  protected constructor(settings: NativeOptimizerOptions) {
    this.settings = settings;
    this.handle = callNative(() => new (native().NativeOptimizer)(settings));
  }

  /** Optimizer steps taken so far. */
  get steps(): number {
    return this.handle.steps();
  }

  get lr(): number {
    return this.settings.lr;
  }

  /** Changes the learning rate for the following steps (a schedule can call this between epochs). */
  set lr(value: number) {
    this.settings = { ...this.settings, lr: positiveNumber('lr', value) };
    this.handle.setOptions(this.settings);
  }

  /** @internal Replaces hyperparameters, e.g. from a checkpoint's param_groups. */
  applySettings(settings: NativeOptimizerOptions): void {
    this.settings = settings;
    this.handle.setOptions(settings);
  }

  /** @internal */
  get options(): Readonly<NativeOptimizerOptions> {
    return this.settings;
  }
}

export class Adam extends Optimizer {
  constructor(options: AdamOptions = {}) {
    const o = optionsObject('Adam options', options);
    knownKeys('Adam options', o, ['lr', 'betas', 'eps', 'weightDecay', 'amsgrad']);
    const betas = o.betas ?? [0.9, 0.999];
    if (!Array.isArray(betas) || betas.length !== 2) {
      throw optionsError('betas', 'array of two numbers in [0, 1)', betas);
    }
    super({
      kind: 'adam',
      lr: o.lr === undefined ? 1e-3 : positiveNumber('lr', o.lr),
      beta1: numberInRange('betas[0]', betas[0], 0, 1, { maxExclusive: true }),
      beta2: numberInRange('betas[1]', betas[1], 0, 1, { maxExclusive: true }),
      eps: o.eps === undefined ? 1e-8 : nonNegativeNumber('eps', o.eps),
      weightDecay: o.weightDecay === undefined ? 0 : nonNegativeNumber('weightDecay', o.weightDecay),
      amsgrad: o.amsgrad === undefined ? false : boolean('amsgrad', o.amsgrad),
    });
  }
}

export class SGD extends Optimizer {
  constructor(options: SGDOptions = {}) {
    const o = optionsObject('SGD options', options);
    knownKeys('SGD options', o, ['lr', 'momentum', 'dampening', 'nesterov', 'weightDecay']);
    const momentum = o.momentum === undefined ? 0 : nonNegativeNumber('momentum', o.momentum);
    const dampening = o.dampening === undefined ? 0 : nonNegativeNumber('dampening', o.dampening);
    const nesterov = o.nesterov === undefined ? false : boolean('nesterov', o.nesterov);
    if (nesterov && (momentum <= 0 || dampening !== 0)) {
      throw optionsError('nesterov', 'momentum > 0 and dampening 0 (as PyTorch requires)', `momentum ${momentum}, dampening ${dampening}`);
    }
    super({
      kind: 'sgd',
      lr: o.lr === undefined ? 1e-3 : positiveNumber('lr', o.lr),
      momentum,
      dampening,
      nesterov,
      weightDecay: o.weightDecay === undefined ? 0 : nonNegativeNumber('weightDecay', o.weightDecay),
    });
  }
}
