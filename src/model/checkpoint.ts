/** saveCheckpoint()'s options: what a checkpoint holds beside the weights, checked and pickled. */
import type { PickleValue } from '../native.js';
import { Optimizer } from '../optim.js';
import { EarlyStopping, LRScheduler, pickleState } from '../schedule.js';
import { invalidArgument, knownKeys, nonNegativeInteger, optionsObject } from '../validate.js';

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

/** The checked options, in the form NativeModel.checkpointBytes takes them. */
export interface CheckpointContents {
  optimizer: Optimizer;
  epoch: number;
  loss: number | null;
  /** Top-level entries beside epoch, model_state_dict, optimizer_state_dict and loss. */
  extra: Record<string, PickleValue>;
}

export function checkpointContents(options: CheckpointOptions): CheckpointContents {
  const o = optionsObject('checkpoint options', options);
  knownKeys('checkpoint options', o, ['optimizer', 'epoch', 'loss', 'lrScheduler', 'earlyStopping', 'extra']);
  if (!(o.optimizer instanceof Optimizer)) throw invalidArgument('optimizer', 'Adam or SGD instance', o.optimizer);
  const epoch = nonNegativeInteger('epoch', o.epoch);
  if (o.loss !== undefined && typeof o.loss !== 'number') throw invalidArgument('loss', 'number', o.loss);
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
    // A bigint is pickled as a 64-bit Python int: one outside that range would be saved wrong.
    const int64 = typeof value === 'bigint' && value >= -(2n ** 63n) && value < 2n ** 63n;
    if (typeof value !== 'number' && !int64)
      throw invalidArgument(`extra.${key}`, 'number, or bigint from -(2n ** 63n) to 2n ** 63n - 1n', value);
    extra[key] = value;
  }
  return { optimizer: o.optimizer, epoch, loss: (o.loss as number | undefined) ?? null, extra };
}
