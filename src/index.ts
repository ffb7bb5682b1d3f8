/** lenet5-libtorch: LeNet-5 on LibTorch for Node.js. */
export { LeNet5 } from './model.js';
export type {
  LeNet5Options,
  TrainOptions,
  History,
  EpochResult,
  BatchProgress,
  EvaluateResult,
  Prediction,
  CheckpointOptions,
  LoadedCheckpoint,
  LoadStateResult,
  BatchGradients,
} from './model.js';
export { QuantizedLeNet5 } from './quantize/model.js';
export type { EngineName } from './native.js';
export { Adam, SGD, Optimizer } from './optim.js';
export { StepLR, CosineAnnealingLR, ReduceLROnPlateau, LRScheduler, EarlyStopping, schedulerFromState } from './schedule.js';
export type { SchedulerState } from './schedule.js';
export type { AdamOptions, SGDOptions } from './optim.js';
export { cuda, threads } from './device.js';
export type { DeviceName } from './device.js';
export { Dataset, DEFAULT_NORMALIZATION } from './data/dataset.js';
export type { DatasetInit, Normalization } from './data/dataset.js';
export * as datasets from './data/index.js';
export { inspect } from './pth/load.js';
export type { InspectResult, TensorInfo } from './pth/load.js';
export { Lenet5Error } from './errors.js';
export type { ErrorCode } from './errors.js';
export { info } from './info.js';
