/**
 * Reads a Python optimizer.state_dict() (Adam or SGD, as in a checkpoint) into plain values: the
 * hyperparameters as this package's optimizer options, and each state buffer per parameter, in
 * the optimizer's parameter order (PyTorch's, which is the model's).
 */
import { Lenet5Error } from '../errors.js';
import type { AdamOptions, SGDOptions } from '../optim-options.js';
import { isTensor } from './read.js';
import { tensorToFloat32 } from './tensor.js';
import { PyDict, PyTuple, type PyValue } from './values.js';

export interface ParameterBuffer {
  shape: number[];
  values: Float32Array;
}

export interface OptimizerState {
  settings: { kind: 'adam'; options: AdamOptions } | { kind: 'sgd'; options: SGDOptions };
  /** How many parameters the optimizer's param_groups list. */
  parameterCount: number;
  steps: number;
  /** Buffer name (exp_avg, exp_avg_sq, max_exp_avg_sq, momentum_buffer) -> one entry per parameter. Empty before the first step. */
  buffers: Record<string, ParameterBuffer[]>;
}

function stateError(problem: string): Lenet5Error {
  return new Lenet5Error('ERR_LENET5_STATE_DICT', `The checkpoint's optimizer_state_dict ${problem}`);
}

function number(group: PyDict, key: string, fallback?: number): number {
  const value = group.map.get(key);
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw stateError(`has ${key} = ${String(value)}; expected a number.`);
  return value;
}

function flag(group: PyDict, key: string): boolean {
  const value = group.map.get(key);
  return value === true;
}

function scalar(value: PyValue, what: string): number {
  if (typeof value === 'number') return value;
  if (isTensor(value) && value.shape.length === 0) return tensorToFloat32(value)[0];
  throw stateError(`has a ${what} that is not a number.`);
}

export function readOptimizerState(value: PyValue): OptimizerState {
  if (!(value instanceof PyDict)) throw stateError('is not a dict.');
  const state = value.map.get('state');
  const groups = value.map.get('param_groups');
  if (!(state instanceof PyDict) || !Array.isArray(groups)) throw stateError('lacks "state" and "param_groups".');
  if (groups.length !== 1 || !(groups[0] instanceof PyDict))
    throw stateError(`has ${groups.length} parameter groups; this model uses exactly one.`);
  const group = groups[0];
  if (group.map.get('maximize') === true) throw stateError('uses maximize=True, which this package does not support.');
  const params = group.map.get('params');
  if (!Array.isArray(params)) throw stateError('lists no parameters.');

  let settings: OptimizerState['settings'];
  const betas = group.map.get('betas');
  if (betas instanceof PyTuple && betas.items.length === 2) {
    if (flag(group, 'decoupled_weight_decay'))
      throw stateError('is AdamW (decoupled weight decay), which this package does not implement.');
    settings = {
      kind: 'adam',
      options: {
        lr: number(group, 'lr'),
        betas: [scalar(betas.items[0], 'beta'), scalar(betas.items[1], 'beta')],
        eps: number(group, 'eps'),
        weightDecay: number(group, 'weight_decay', 0),
        amsgrad: flag(group, 'amsgrad'),
      },
    };
  } else if (group.map.has('momentum')) {
    settings = {
      kind: 'sgd',
      options: {
        lr: number(group, 'lr'),
        momentum: number(group, 'momentum'),
        dampening: number(group, 'dampening', 0),
        nesterov: flag(group, 'nesterov'),
        weightDecay: number(group, 'weight_decay', 0),
      },
    };
  } else {
    throw stateError('is neither Adam nor SGD (no betas or momentum in param_groups).');
  }

  const perParameter = params.map((id) => state.map.get(typeof id === 'number' ? id : -1));
  const present = perParameter.filter((entry) => entry !== undefined);
  const result: OptimizerState = { settings, parameterCount: params.length, steps: 0, buffers: {} };
  if (present.length === 0) return result;
  if (present.length !== params.length || !perParameter.every((entry) => entry instanceof PyDict)) {
    throw stateError('has state for some parameters but not all.');
  }
  const entries = perParameter as PyDict[];
  if (settings.kind === 'adam') {
    const stepValues = entries.map((entry) => scalar(entry.map.get('step') ?? null, 'step'));
    if (stepValues.some((s) => s !== stepValues[0] || !Number.isInteger(s) || s < 0))
      throw stateError('has differing step counts across parameters.');
    result.steps = stepValues[0];
  }
  const names = [...entries[0].map.keys()].filter((k) => k !== 'step' && entries[0].map.get(k) !== null).map(String);
  for (const name of names) {
    result.buffers[name] = entries.map((entry, i) => {
      const tensor = entry.map.get(name) ?? null;
      if (!isTensor(tensor)) throw stateError(`has no ${name} tensor for parameter ${i}.`);
      return { shape: tensor.shape, values: tensorToFloat32(tensor) };
    });
  }
  return result;
}
