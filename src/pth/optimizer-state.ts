/**
 * Converts a Python optimizer.state_dict() (Adam or SGD, as in a checkpoint) into the flat
 * buffers and settings of this package's optimizers. Parameter indices follow the model's
 * parameter order, as PyTorch's do.
 */
import { Lenet5Error } from '../errors.js';
import type { NativeOptimizerOptions } from '../native.js';
import { numelOf, tensorToFloat32 } from './tensor.js';
import { PyDict, PyTuple, type PyValue } from './unpickler.js';
import { isTensor } from './read.js';

export interface OptimizerState {
  settings: NativeOptimizerOptions;
  steps: number;
  buffers: Record<string, Float32Array>;
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

export function readOptimizerState(value: PyValue, slots: { name: string; shape: number[] }[]): OptimizerState {
  if (!(value instanceof PyDict)) throw stateError('is not a dict.');
  const state = value.map.get('state');
  const groups = value.map.get('param_groups');
  if (!(state instanceof PyDict) || !Array.isArray(groups)) throw stateError('lacks "state" and "param_groups".');
  if (groups.length !== 1 || !(groups[0] instanceof PyDict)) throw stateError(`has ${groups.length} parameter groups; this model uses exactly one.`);
  const group = groups[0];
  if (group.map.get('maximize') === true) throw stateError('uses maximize=True, which this package does not support.');
  const params = group.map.get('params');
  if (!Array.isArray(params) || params.length !== slots.length) {
    throw stateError(`lists ${Array.isArray(params) ? params.length : 'no'} parameters; LeNet-5 has ${slots.length}.`);
  }

  let settings: NativeOptimizerOptions;
  const betas = group.map.get('betas');
  if (betas instanceof PyTuple && betas.items.length === 2) {
    if (flag(group, 'decoupled_weight_decay')) throw stateError('is AdamW (decoupled weight decay), which this package does not implement.');
    settings = {
      kind: 'adam', lr: number(group, 'lr'), beta1: scalar(betas.items[0], 'beta'), beta2: scalar(betas.items[1], 'beta'),
      eps: number(group, 'eps'), weightDecay: number(group, 'weight_decay', 0), amsgrad: flag(group, 'amsgrad'),
    };
  } else if (group.map.has('momentum')) {
    settings = {
      kind: 'sgd', lr: number(group, 'lr'), momentum: number(group, 'momentum'), dampening: number(group, 'dampening', 0),
      nesterov: flag(group, 'nesterov'), weightDecay: number(group, 'weight_decay', 0),
    };
  } else {
    throw stateError('is neither Adam nor SGD (no betas or momentum in param_groups).');
  }

  const perSlot = params.map((id) => state.map.get(typeof id === 'number' ? id : -1));
  const present = perSlot.filter((entry) => entry !== undefined);
  if (present.length === 0) return { settings, steps: 0, buffers: {} };
  if (present.length !== slots.length || !perSlot.every((entry) => entry instanceof PyDict)) {
    throw stateError('has state for some parameters but not all.');
  }
  const entries = perSlot as PyDict[];
  const names = [...entries[0].map.keys()].filter((k) => k !== 'step' && entries[0].map.get(k) !== null).map(String);
  let steps = 0;
  if (settings.kind === 'adam') {
    const stepValues = entries.map((entry) => scalar(entry.map.get('step') ?? null, 'step'));
    if (stepValues.some((s) => s !== stepValues[0] || !Number.isInteger(s) || s < 0)) throw stateError('has differing step counts across parameters.');
    steps = stepValues[0];
  }
  const total = slots.reduce((sum, slot) => sum + numelOf(slot.shape), 0);
  const buffers: Record<string, Float32Array> = {};
  for (const name of names) {
    const flat = new Float32Array(total);
    let offset = 0;
    entries.forEach((entry, i) => {
      const tensor = entry.map.get(name) ?? null;
      const expected = slots[i].shape;
      if (!isTensor(tensor) || tensor.shape.join(',') !== expected.join(',')) {
        throw stateError(`has ${name} for ${slots[i].name} with shape [${isTensor(tensor) ? tensor.shape.join(', ') : '?'}]; expected [${expected.join(', ')}].`);
      }
      flat.set(tensorToFloat32(tensor), offset);
      offset += numelOf(expected);
    });
    buffers[name] = flat;
  }
  return { settings, steps, buffers };
}
