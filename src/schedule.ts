/**
 * Learning-rate schedules with the exact semantics (and state_dict layout) of PyTorch's
 * torch.optim.lr_scheduler.StepLR, CosineAnnealingLR and ReduceLROnPlateau (mode 'min'), and early
 * stopping on validation loss. Each is stepped once per epoch, after it; model.train() does that
 * when given one. The arithmetic follows PyTorch's chainable (recursive) forms operation for
 * operation, so the learning rates equal Python's bit for bit.
 */
import { Lenet5Error } from './errors.js';
import type { PickleValue } from './native.js';
import { Optimizer } from './optim.js';
import type { PlainState } from './pth/load.js';
import {
  invalidArgument,
  knownKeys,
  nonNegativeInteger,
  nonNegativeNumber,
  numberInRange,
  optionsObject,
  positiveInteger,
} from './validate.js';

/** A scheduler.state_dict(): plain values, as torch.save writes them. */
export type SchedulerState = PlainState;

function stateError(problem: string): Lenet5Error {
  return new Lenet5Error('ERR_LENET5_STATE_DICT', `The lr_scheduler_state_dict ${problem}`);
}

function stateNumber(state: SchedulerState, key: string): number {
  const value = state[key];
  if (typeof value !== 'number' || Number.isNaN(value)) throw stateError(`has ${key} = ${String(value)}; expected a number.`);
  return value;
}

function stateList(state: SchedulerState, key: string): number {
  const value = state[key];
  if (!Array.isArray(value) || value.length !== 1 || typeof value[0] !== 'number') {
    throw stateError(
      `has ${key} = ${JSON.stringify(value)}; expected a list of one number (this package's optimizers have one parameter group).`,
    );
  }
  return value[0];
}

export abstract class LRScheduler {
  readonly optimizer: Optimizer;
  /** Epochs stepped so far (PyTorch's last_epoch). */
  lastEpoch = 0;
  /** The learning rate the last step set (PyTorch's get_last_lr()[0]). */
  lastLr: number;
  /** @internal Keys of stateDict() that PyTorch keeps as int, not float. */
  abstract readonly intKeys: readonly string[];

  protected constructor(optimizer: Optimizer) {
    if (!(optimizer instanceof Optimizer)) throw invalidArgument('optimizer', 'Adam or SGD instance', optimizer);
    this.optimizer = optimizer;
    this.lastLr = optimizer.lr;
  }

  /** Steps once, after an epoch. ReduceLROnPlateau needs that epoch's validation loss. */
  abstract step(validationLoss?: number): void;

  /** PyTorch's scheduler.state_dict(): Python's scheduler.load_state_dict() accepts it. */
  abstract stateDict(): SchedulerState;

  /** Restores a state_dict from this package or from Python; sets the optimizer's learning rate to the state's. */
  abstract loadStateDict(state: SchedulerState): void;

  /** E.g. "StepLR(step_size=5, gamma=0.5)", as Python would construct it. */
  abstract describe(): string;

  protected setLr(lr: number): void {
    this.optimizer.lr = lr;
    this.lastLr = lr;
  }
}

/** The part StepLR and CosineAnnealingLR share: PyTorch's LRScheduler bookkeeping. */
abstract class EpochScheduler extends LRScheduler {
  baseLr: number;
  /** PyTorch's _step_count: 1 after construction. */
  stepCount = 1;

  protected constructor(optimizer: Optimizer) {
    super(optimizer);
    this.baseLr = optimizer.lr;
  }

  /** The next learning rate, from the current one (PyTorch's get_lr after last_epoch += 1). */
  protected abstract nextLr(current: number): number;

  step(): void {
    this.stepCount += 1;
    this.lastEpoch += 1;
    this.setLr(this.nextLr(this.optimizer.lr));
  }

  protected commonState(): SchedulerState {
    return {
      base_lrs: [this.baseLr],
      last_epoch: this.lastEpoch,
      _step_count: this.stepCount,
      _is_initial: false,
      _get_lr_called_within_step: false,
      _last_lr: [this.lastLr],
    };
  }

  protected loadCommon(state: SchedulerState): void {
    this.baseLr = stateList(state, 'base_lrs');
    this.lastEpoch = stateNumber(state, 'last_epoch');
    this.stepCount = stateNumber(state, '_step_count');
    this.setLr(stateList(state, '_last_lr'));
  }
}

export class StepLR extends EpochScheduler {
  readonly intKeys = ['step_size', 'last_epoch', '_step_count'];
  stepSize: number;
  gamma: number;

  /** Multiplies the learning rate by gamma every stepSize epochs. */
  constructor(optimizer: Optimizer, options: { stepSize: number; gamma?: number }) {
    super(optimizer);
    const o = optionsObject('StepLR options', options);
    knownKeys('StepLR options', o, ['stepSize', 'gamma']);
    this.stepSize = positiveInteger('stepSize', o.stepSize);
    this.gamma = o.gamma === undefined ? 0.1 : nonNegativeNumber('gamma', o.gamma);
  }

  describe(): string {
    return `StepLR(step_size=${this.stepSize}, gamma=${this.gamma})`;
  }

  protected nextLr(current: number): number {
    return this.lastEpoch === 0 || this.lastEpoch % this.stepSize !== 0 ? current : current * this.gamma;
  }

  stateDict(): SchedulerState {
    return { step_size: this.stepSize, gamma: this.gamma, ...this.commonState() };
  }

  loadStateDict(state: SchedulerState): void {
    this.stepSize = stateNumber(state, 'step_size');
    this.gamma = stateNumber(state, 'gamma');
    this.loadCommon(state);
  }
}

export class CosineAnnealingLR extends EpochScheduler {
  readonly intKeys = ['T_max', 'last_epoch', '_step_count'];
  tMax: number;
  etaMin: number;

  /** Anneals from the initial learning rate to etaMin over tMax epochs along a half cosine (and back up, after). */
  constructor(optimizer: Optimizer, options: { tMax: number; etaMin?: number }) {
    super(optimizer);
    const o = optionsObject('CosineAnnealingLR options', options);
    knownKeys('CosineAnnealingLR options', o, ['tMax', 'etaMin']);
    this.tMax = positiveInteger('tMax', o.tMax);
    this.etaMin = o.etaMin === undefined ? 0 : nonNegativeNumber('etaMin', o.etaMin);
  }

  describe(): string {
    return `CosineAnnealingLR(T_max=${this.tMax}, eta_min=${this.etaMin})`;
  }

  protected nextLr(current: number): number {
    const { lastEpoch: e, tMax: t, etaMin, baseLr } = this;
    if (this.stepCount === 1 && e > 0) return etaMin + ((baseLr - etaMin) * (1 + Math.cos((e * Math.PI) / t))) / 2;
    if ((((e - 1 - t) % (2 * t)) + 2 * t) % (2 * t) === 0) return current + ((baseLr - etaMin) * (1 - Math.cos(Math.PI / t))) / 2;
    return ((1 + Math.cos((Math.PI * e) / t)) / (1 + Math.cos((Math.PI * (e - 1)) / t))) * (current - etaMin) + etaMin;
  }

  stateDict(): SchedulerState {
    return { T_max: this.tMax, eta_min: this.etaMin, ...this.commonState() };
  }

  loadStateDict(state: SchedulerState): void {
    this.tMax = stateNumber(state, 'T_max');
    this.etaMin = stateNumber(state, 'eta_min');
    this.loadCommon(state);
  }
}

export class ReduceLROnPlateau extends LRScheduler {
  factor: number;
  patience: number;
  threshold: number;
  cooldown: number;
  minLr: number;
  eps: number;
  best = Infinity;
  numBadEpochs = 0;
  cooldownCounter = 0;

  /** mode 'min', threshold_mode 'rel': multiplies the learning rate by factor after more than `patience` epochs without improvement. */
  constructor(
    optimizer: Optimizer,
    options: { patience?: number; factor?: number; threshold?: number; cooldown?: number; minLr?: number; eps?: number } = {},
  ) {
    super(optimizer);
    const o = optionsObject('ReduceLROnPlateau options', options);
    knownKeys('ReduceLROnPlateau options', o, ['patience', 'factor', 'threshold', 'cooldown', 'minLr', 'eps']);
    this.factor = o.factor === undefined ? 0.1 : numberInRange('factor', o.factor, 0, 1, { maxExclusive: true });
    this.patience = o.patience === undefined ? 10 : nonNegativeInteger('patience', o.patience);
    this.threshold = o.threshold === undefined ? 1e-4 : nonNegativeNumber('threshold', o.threshold);
    this.cooldown = o.cooldown === undefined ? 0 : nonNegativeInteger('cooldown', o.cooldown);
    this.minLr = o.minLr === undefined ? 0 : nonNegativeNumber('minLr', o.minLr);
    this.eps = o.eps === undefined ? 1e-8 : nonNegativeNumber('eps', o.eps);
  }

  describe(): string {
    return `ReduceLROnPlateau(mode='min', patience=${this.patience}, factor=${this.factor})`;
  }

  get intKeys(): readonly string[] {
    // Python keeps min_lr as given: PyTorch's default 0 is an int.
    const minLr = Number.isInteger(this.minLr) ? ['default_min_lr', 'min_lrs'] : [];
    return ['patience', 'cooldown', 'last_epoch', 'cooldown_counter', 'num_bad_epochs', ...minLr];
  }

  step(validationLoss?: number): void {
    if (typeof validationLoss !== 'number')
      throw invalidArgument(
        'validationLoss',
        'number (ReduceLROnPlateau steps on the validation loss; train with a validation set)',
        validationLoss,
      );
    this.lastEpoch += 1;
    if (validationLoss < this.best * (1 - this.threshold)) {
      this.best = validationLoss;
      this.numBadEpochs = 0;
    } else {
      this.numBadEpochs += 1;
    }
    if (this.cooldownCounter > 0) {
      this.cooldownCounter -= 1;
      this.numBadEpochs = 0;
    }
    if (this.numBadEpochs > this.patience) {
      const old = this.optimizer.lr;
      const next = Math.max(old * this.factor, this.minLr);
      if (old - next > this.eps) this.setLr(next);
      this.cooldownCounter = this.cooldown;
      this.numBadEpochs = 0;
    }
  }

  stateDict(): SchedulerState {
    return {
      factor: this.factor,
      default_min_lr: this.minLr,
      min_lrs: [this.minLr],
      patience: this.patience,
      cooldown: this.cooldown,
      eps: this.eps,
      last_epoch: this.lastEpoch,
      _last_lr: [this.lastLr],
      mode_worse: Infinity,
      mode: 'min',
      threshold: this.threshold,
      threshold_mode: 'rel',
      best: this.best,
      cooldown_counter: this.cooldownCounter,
      num_bad_epochs: this.numBadEpochs,
    };
  }

  loadStateDict(state: SchedulerState): void {
    if (state.mode !== 'min' || state.threshold_mode !== 'rel') {
      throw stateError(
        `has mode ${String(state.mode)}, threshold_mode ${String(state.threshold_mode)}; this package supports mode 'min' with threshold_mode 'rel'.`,
      );
    }
    this.factor = stateNumber(state, 'factor');
    this.minLr = stateList(state, 'min_lrs');
    this.patience = stateNumber(state, 'patience');
    this.cooldown = stateNumber(state, 'cooldown');
    this.eps = stateNumber(state, 'eps');
    this.lastEpoch = stateNumber(state, 'last_epoch');
    this.threshold = stateNumber(state, 'threshold');
    this.best = stateNumber(state, 'best');
    this.cooldownCounter = stateNumber(state, 'cooldown_counter');
    this.numBadEpochs = stateNumber(state, 'num_bad_epochs');
    if (Array.isArray(state._last_lr)) this.lastLr = stateList(state, '_last_lr');
  }
}

/** Builds the scheduler a state_dict belongs to (recognised by its keys) and loads the state. */
export function schedulerFromState(optimizer: Optimizer, state: SchedulerState): LRScheduler {
  let scheduler: LRScheduler;
  if ('step_size' in state) scheduler = new StepLR(optimizer, { stepSize: 1 });
  else if ('T_max' in state) scheduler = new CosineAnnealingLR(optimizer, { tMax: 1 });
  else if ('num_bad_epochs' in state && 'factor' in state) scheduler = new ReduceLROnPlateau(optimizer);
  else throw stateError(`has the keys ${Object.keys(state).join(', ')}; expected StepLR's, CosineAnnealingLR's or ReduceLROnPlateau's.`);
  scheduler.loadStateDict(state);
  return scheduler;
}

/**
 * Reads `step:STEP_SIZE:GAMMA`, `cosine[:T_MAX[:ETA_MIN]]` (T_MAX defaults to `epochs`) or
 * `plateau:PATIENCE:FACTOR`, as the --lr-schedule flag takes them, and returns what builds that
 * scheduler on an optimizer (so a bad spec fails before any data is read).
 */
export function parseSchedule(spec: string, epochs: number): (optimizer: Optimizer) => LRScheduler {
  const [kind, ...args] = spec.split(':');
  const numbers = args.map((a) => (a.trim() === '' ? NaN : Number(a)));
  if (!numbers.some(Number.isNaN)) {
    if (kind === 'step' && numbers.length === 2) return (o) => new StepLR(o, { stepSize: numbers[0], gamma: numbers[1] });
    if (kind === 'cosine' && numbers.length <= 2)
      return (o) => new CosineAnnealingLR(o, { tMax: numbers[0] ?? epochs, etaMin: numbers[1] });
    if (kind === 'plateau' && numbers.length === 2) return (o) => new ReduceLROnPlateau(o, { patience: numbers[0], factor: numbers[1] });
  }
  throw new Lenet5Error(
    'ERR_LENET5_INVALID_ARGUMENT',
    `Expected --lr-schedule step:STEP_SIZE:GAMMA, cosine[:T_MAX[:ETA_MIN]] or plateau:PATIENCE:FACTOR (e.g. step:5:0.5, cosine, plateau:2:0.1) but received "${spec}".`,
  );
}

/** Stops training when the validation loss has not improved by more than minDelta for `patience` epochs. */
export class EarlyStopping {
  /** @internal Keys of stateDict() saved as int. */
  static readonly intKeys = ['patience', 'best_epoch', 'num_bad_epochs'];
  patience: number;
  minDelta: number;
  best = Infinity;
  /** Epoch (1-based) of the best validation loss so far; 0 before the first step. */
  bestEpoch = 0;
  numBadEpochs = 0;
  /** The epoch training stopped after, once it has. */
  stoppedEpoch: number | undefined;

  constructor(options: { patience: number; minDelta?: number }) {
    const o = optionsObject('EarlyStopping options', options);
    knownKeys('EarlyStopping options', o, ['patience', 'minDelta']);
    this.patience = positiveInteger('patience', o.patience);
    this.minDelta = o.minDelta === undefined ? 0 : nonNegativeNumber('minDelta', o.minDelta);
  }

  /** Records an epoch's validation loss; true when training should stop now. */
  step(validationLoss: number, epoch: number): boolean {
    if (validationLoss < this.best - this.minDelta) {
      this.best = validationLoss;
      this.bestEpoch = epoch;
      this.numBadEpochs = 0;
    } else {
      this.numBadEpochs += 1;
    }
    if (this.numBadEpochs >= this.patience) this.stoppedEpoch = epoch;
    return this.stoppedEpoch !== undefined;
  }

  /** Why training stopped, in words. */
  get reason(): string {
    return `validation loss has not improved by more than ${this.minDelta} for ${this.patience} epoch(s) (best ${this.best.toFixed(4)} at epoch ${this.bestEpoch})`;
  }

  stateDict(): SchedulerState {
    return {
      patience: this.patience,
      min_delta: this.minDelta,
      best: this.best,
      best_epoch: this.bestEpoch,
      num_bad_epochs: this.numBadEpochs,
    };
  }

  loadStateDict(state: SchedulerState): void {
    this.best = stateNumber(state, 'best');
    this.bestEpoch = stateNumber(state, 'best_epoch');
    this.numBadEpochs = stateNumber(state, 'num_bad_epochs');
  }
}

/** @internal A state for the addon's pickler: the int keys become bigints (Python ints), other numbers floats. */
export function pickleState(state: SchedulerState, intKeys: readonly string[]): Record<string, PickleValue> {
  const int = (value: number | string | boolean | null) => (typeof value === 'number' ? BigInt(value) : value);
  return Object.fromEntries(
    Object.entries(state).map(([key, value]) => [key, !intKeys.includes(key) ? value : Array.isArray(value) ? value.map(int) : int(value)]),
  );
}
