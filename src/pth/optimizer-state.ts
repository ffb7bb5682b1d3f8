/**
 * Reads a Python optimizer.state_dict() (Adam or SGD, as in a checkpoint) into plain values: the
 * hyperparameters as this package's optimizer options, and each state buffer per parameter, in
 * the optimizer's parameter order (PyTorch's, which is the model's). An optimizer is recognised by
 * its whole set of param_groups keys and state buffers, so that RMSprop (which has momentum) or
 * Adamax (which has betas) is refused by name rather than resumed as something else.
 */
import { Lenet5Error } from '../errors.js';
import type { AdamOptions, SGDOptions } from '../optim-options.js';
import { isTensor } from './read.js';
import { scalarOf, type TensorMaterialiser } from './tensor.js';
import { PyDict, PyTuple, type PyValue } from './values.js';

export interface ParameterBuffer {
  shape: number[];
  /** Built on first read, after the shapes have been checked. */
  readonly values: Float32Array;
}

interface KnownOptimizer {
  /** Keys every version of PyTorch (1.6 on) writes in its param_groups. */
  required: string[];
  /** Keys later versions (or this package) add. */
  optional: string[];
  buffers: string[];
}

/** What torch.optim.Adam and SGD write, 1.13 to 2.x (and this package, which writes 2.x's). */
const KNOWN: Record<'adam' | 'sgd', KnownOptimizer> = {
  adam: {
    required: ['lr', 'betas', 'eps', 'weight_decay', 'amsgrad'],
    optional: ['maximize', 'foreach', 'capturable', 'differentiable', 'fused', 'decoupled_weight_decay'],
    buffers: ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'],
  },
  sgd: {
    required: ['lr', 'momentum', 'dampening', 'weight_decay', 'nesterov'],
    optional: ['maximize', 'foreach', 'differentiable', 'fused'],
    buffers: ['momentum_buffer'],
  },
};

/** Other torch.optim classes, each told by a param_groups key (or state buffer) no other has. */
const OTHERS: { name: string; has: string }[] = [
  { name: 'RMSprop', has: 'centered' },
  { name: 'NAdam', has: 'momentum_decay' },
  { name: 'Adagrad', has: 'lr_decay' },
  { name: 'Adadelta', has: 'rho' },
  { name: 'ASGD', has: 'lambd' },
  { name: 'Rprop', has: 'etas' },
  { name: 'LBFGS', has: 'history_size' },
  { name: 'Adamax', has: 'exp_inf' },
];

/** Keys PyTorch adds to any optimizer's param_groups: a learning-rate scheduler's starting lr. */
const ADDED_BY_SCHEDULERS = ['initial_lr'];

/** Which optimizer wrote these param_groups keys and state buffer names: Adam, SGD, or an error naming the other. */
function recognise(keys: Set<string>, buffers: Set<string>, path: string): 'adam' | 'sgd' {
  for (const kind of ['adam', 'sgd'] as const) {
    const known = KNOWN[kind];
    const allowed = new Set([...known.required, ...known.optional, ...ADDED_BY_SCHEDULERS]);
    if (
      known.required.every((key) => keys.has(key)) &&
      [...keys].every((key) => allowed.has(key)) &&
      [...buffers].every((name) => known.buffers.includes(name))
    ) {
      return kind;
    }
  }
  const other =
    OTHERS.find(({ has }) => keys.has(has) || buffers.has(has))?.name ??
    // Betas without amsgrad: RAdam has decoupled_weight_decay (2.x), SparseAdam no weight_decay; older RAdam looks like Adamax.
    (keys.has('betas') && !keys.has('amsgrad')
      ? keys.has('decoupled_weight_decay')
        ? 'RAdam'
        : keys.has('weight_decay')
          ? 'Adamax or RAdam'
          : 'SparseAdam'
      : undefined);
  const found = `param_groups keys ${[...keys].sort().join(', ')}${buffers.size ? `; state ${[...buffers].sort().join(', ')}` : ''}`;
  throw optimizerStateError(
    path,
    `is ${other ? `torch.optim.${other.replace(' or ', ' or torch.optim.')}'s` : "not Adam's or SGD's"} (${found}); this package resumes only Adam and SGD. ` +
      "Load the weights alone (LeNet5.load reads a checkpoint's model_state_dict) and train them with a new optimizer.",
  );
}

export interface OptimizerState {
  /** The checkpoint file, named in errors. */
  path: string;
  settings: { kind: 'adam'; options: AdamOptions } | { kind: 'sgd'; options: SGDOptions };
  /** How many parameters the optimizer's param_groups list. */
  parameterCount: number;
  steps: number;
  /** Buffer name (exp_avg, exp_avg_sq, max_exp_avg_sq, momentum_buffer) -> one entry per parameter. Empty before the first step. */
  buffers: Record<string, ParameterBuffer[]>;
}

/** ERR_LENET5_STATE_DICT for a problem with the optimizer state of checkpoint `path` (also used by optim.ts). */
export function optimizerStateError(path: string, problem: string): Lenet5Error {
  return new Lenet5Error('ERR_LENET5_STATE_DICT', `${path}: the checkpoint's optimizer_state_dict ${problem}`);
}

function number(group: PyDict, key: string, path: string): number {
  const value = group.map.get(key);
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw optimizerStateError(path, `has ${key} = ${String(value)}; expected a number.`);
  return value;
}

function flag(group: PyDict, key: string): boolean {
  const value = group.map.get(key);
  return value === true;
}

function scalar(value: PyValue, what: string, path: string): number {
  if (typeof value === 'number') return value;
  if (isTensor(value) && value.shape.length === 0) return scalarOf(value);
  throw optimizerStateError(path, `has a ${what} that is not a number.`);
}

/** The optimizer state of checkpoint `file.path`; its buffers are built by `file.materialiser` when read. */
export function readOptimizerState(value: PyValue, file: { path: string; materialiser: TensorMaterialiser }): OptimizerState {
  const { path, materialiser } = file;
  const stateError = (problem: string) => optimizerStateError(path, problem);
  if (!(value instanceof PyDict)) throw stateError('is not a dict.');
  const state = value.map.get('state');
  const groups = value.map.get('param_groups');
  if (!(state instanceof PyDict) || !Array.isArray(groups)) throw stateError('lacks "state" and "param_groups".');
  if (groups.length !== 1 || !(groups[0] instanceof PyDict))
    throw stateError(`has ${groups.length} parameter groups; this model uses exactly one.`);
  const group = groups[0];
  const params = group.map.get('params');
  if (!Array.isArray(params)) throw stateError('lists no parameters.');
  const perParameter = params.map((id) => state.map.get(typeof id === 'number' ? id : -1));
  const present = perParameter.filter((entry) => entry !== undefined);
  // Each distinct entry once: the memo lets every parameter name the same dict.
  const bufferNames = new Set(
    [...new Set(present)].flatMap((entry) =>
      entry instanceof PyDict ? [...entry.map.keys()].filter((k) => k !== 'step').map(String) : [],
    ),
  );
  const kind = recognise(new Set([...group.map.keys()].filter((k) => k !== 'params').map(String)), bufferNames, path);
  if (group.map.get('maximize') === true) throw stateError('uses maximize=True, which this package does not support.');

  let settings: OptimizerState['settings'];
  if (kind === 'adam') {
    const betas = group.map.get('betas');
    if (!(betas instanceof PyTuple && betas.items.length === 2)) throw stateError(`has betas = ${String(betas)}; expected two numbers.`);
    if (flag(group, 'decoupled_weight_decay'))
      throw stateError('is AdamW (decoupled weight decay), which this package does not implement.');
    settings = {
      kind: 'adam',
      options: {
        lr: number(group, 'lr', path),
        betas: [scalar(betas.items[0], 'beta', path), scalar(betas.items[1], 'beta', path)],
        eps: number(group, 'eps', path),
        weightDecay: number(group, 'weight_decay', path),
        amsgrad: flag(group, 'amsgrad'),
      },
    };
  } else {
    settings = {
      kind: 'sgd',
      options: {
        lr: number(group, 'lr', path),
        momentum: number(group, 'momentum', path),
        dampening: number(group, 'dampening', path),
        nesterov: flag(group, 'nesterov'),
        weightDecay: number(group, 'weight_decay', path),
      },
    };
  }

  const result: OptimizerState = { path, settings, parameterCount: params.length, steps: 0, buffers: {} };
  if (present.length === 0) return result;
  if (present.length !== params.length || !perParameter.every((entry) => entry instanceof PyDict)) {
    throw stateError('has state for some parameters but not all.');
  }
  const entries = perParameter as PyDict[];
  if (settings.kind === 'adam') {
    const stepValues = entries.map((entry) => scalar(entry.map.get('step') ?? null, 'step', path));
    if (stepValues.some((s) => s !== stepValues[0] || !Number.isInteger(s) || s < 0))
      throw stateError('has differing step counts across parameters.');
    result.steps = stepValues[0];
  }
  // At most the optimizer's few known buffer names (recognise() checked), so this is linear in the parameters.
  for (const name of bufferNames) {
    if (entries.every((entry) => entry.map.get(name) === null)) continue; // SGD without momentum: momentum_buffer None
    result.buffers[name] = entries.map((entry, i) => {
      const tensor = entry.map.get(name) ?? null;
      if (!isTensor(tensor)) throw stateError(`has no ${name} tensor for parameter ${i}.`);
      const bufferName = `optimizer_state_dict.state.${i}.${name}`;
      return {
        shape: tensor.shape,
        get values() {
          return materialiser.values(tensor, bufferName);
        },
      };
    });
  }
  return result;
}
