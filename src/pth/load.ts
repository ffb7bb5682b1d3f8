/**
 * The one module that reads .pth files — state_dicts, checkpoints with their optimizer state, and
 * any tensor file for `inspect` — and returns plain typed values. Below it: read.ts (zip + pickle
 * to Python-like values), unpickler.ts (with allowed-globals.ts and values.ts), tensor.ts (views to
 * Float32Array), optimizer-state.ts.
 */
import { Lenet5Error } from '../errors.js';
import { readOptimizerState, type OptimizerState } from './optimizer-state.js';
import {
  describeFormat,
  isTensor,
  listTensors,
  readPth,
  topLevelScalars,
  type PthFile,
  type SharedReference,
  type TensorInfo,
} from './read.js';
import { PyDict, PyTuple, type PyTensor, type PyValue } from './values.js';

export type { SharedReference, TensorInfo } from './read.js';
export type { OptimizerState } from './optimizer-state.js';

export interface LoadedTensor extends TensorInfo {
  /** Built on first read (so names and shapes can be checked first), within the file's budget; read-only, may share memory. */
  readonly values: Float32Array;
}

export interface StateDict {
  /** In the file's order, keys without the stripped prefix. */
  tensors: LoadedTensor[];
  /** 'module.' (nn.DataParallel, DDP) or '_orig_mod.' (torch.compile) when every key had it; null otherwise. */
  strippedPrefix: string | null;
}

/** A dict of plain values (numbers, strings, booleans, None, lists of numbers), as a scheduler.state_dict() holds. */
export type PlainState = Record<string, number | string | boolean | null | number[]>;

export interface Checkpoint extends StateDict {
  optimizer: OptimizerState;
  /** Epochs completed (0 when the file does not say). */
  epoch: number;
  loss: number | null;
  /** lr_scheduler_state_dict and early_stopping_state_dict, when the checkpoint has them. */
  lrSchedulerState: PlainState | null;
  earlyStoppingState: PlainState | null;
  /** Every top-level number, string or boolean (best_val_accuracy, ...). */
  scalars: Record<string, number | string | boolean | null>;
}

export interface InspectResult {
  path: string;
  format: string;
  records: string[];
  /** epoch, loss, ... when the file is a checkpoint. */
  scalars: Record<string, number | string | boolean | null>;
  tensors: TensorInfo[];
  /** Containers the pickle reaches again by another path, listed instead of walked again. */
  shared: SharedReference[];
}

/** Prefixes wrappers add to every key; stripped (outermost first) only when all keys carry one. */
const WRAPPER_PREFIXES = ['module.', '_orig_mod.'];

function isStateDict(value: PyValue | undefined): value is PyDict {
  return value instanceof PyDict && value.map.size > 0 && [...value.map.entries()].every(([k, v]) => typeof k === 'string' && isTensor(v));
}

/** Where the weights sit: the root itself (location ''), or a checkpoint's model_state_dict / state_dict / model. */
function findStateDict(file: PthFile): { dict: PyDict; location: string } {
  if (isStateDict(file.root)) return { dict: file.root, location: '' };
  if (file.root instanceof PyDict) {
    for (const key of ['model_state_dict', 'state_dict', 'model']) {
      const value = file.root.map.get(key);
      if (isStateDict(value)) return { dict: value, location: key };
    }
  }
  throw new Lenet5Error(
    'ERR_LENET5_STATE_DICT',
    `${file.path} holds no state_dict: expected a dict of tensors (torch.save(model.state_dict(), path)) or a checkpoint ` +
      'with a model_state_dict entry. Run "lenet5 inspect" on it to see what it holds.',
  );
}

/** The chain of wrapper prefixes every name starts with, each leaving a non-empty rest; one pass over the names. */
function stripWrapperPrefixes(names: string[]): { names: string[]; prefix: string | null } {
  if (names.length === 0) return { names, prefix: null };
  const chain: string[] = [];
  for (let at = 0; ;) {
    const next = WRAPPER_PREFIXES.find((p) => names[0].startsWith(p, at) && names[0].length > at + p.length);
    if (next === undefined) break;
    chain.push(next);
    at += next.length;
  }
  let common = chain.length;
  for (const name of names) {
    let at = 0;
    let level = 0;
    while (level < common && name.startsWith(chain[level], at) && name.length > at + chain[level].length) at += chain[level++].length;
    common = level;
  }
  const prefix = chain.slice(0, common).join('');
  return { names: prefix ? names.map((name) => name.slice(prefix.length)) : names, prefix: prefix || null };
}

function toStateDict(dict: PyDict, file: PthFile): StateDict {
  const { names, prefix } = stripWrapperPrefixes([...dict.map.keys()].map(String));
  const tensors = [...dict.map.values()].map((value, i): LoadedTensor => {
    const tensor = value as PyTensor;
    const name = names[i];
    return {
      name,
      dtype: tensor.storage.dtype,
      shape: tensor.shape,
      get values() {
        return file.materialiser.values(tensor, name);
      },
    };
  });
  return { tensors, strippedPrefix: prefix };
}

/** The model weights of a parsed file (a state_dict or a checkpoint's); exported for the fuzzer. */
export function stateDictOf(file: PthFile): StateDict {
  return toStateDict(findStateDict(file).dict, file);
}

/** The weights in a .pth file: a state_dict (Python's or this package's) or a checkpoint's model_state_dict. */
export async function readStateDict(path: string): Promise<StateDict> {
  return stateDictOf(await readPth(path));
}

/** A checkpoint {epoch, model_state_dict, optimizer_state_dict, loss}, this package's or Python's. */
export async function readCheckpoint(path: string): Promise<Checkpoint> {
  const file = await readPth(path);
  const { dict, location } = findStateDict(file);
  if (location === '') {
    throw new Lenet5Error(
      'ERR_LENET5_STATE_DICT',
      `${path} is a plain state_dict, not a checkpoint: it has no optimizer state or epoch. Use LeNet5.load() for it.`,
    );
  }
  const optimizerValue = (file.root as PyDict).map.get('optimizer_state_dict');
  if (optimizerValue === undefined) {
    throw new Lenet5Error(
      'ERR_LENET5_STATE_DICT',
      `${path} has model weights but no optimizer_state_dict, so training cannot resume exactly. Use LeNet5.load() and a new optimizer.`,
    );
  }
  const scalars = topLevelScalars(file.root);
  return {
    ...toStateDict(dict, file),
    optimizer: readOptimizerState(optimizerValue, file),
    epoch: epochsCompleted(path, scalars.epoch),
    loss: typeof scalars.loss === 'number' ? scalars.loss : null,
    lrSchedulerState: plainState(file, 'lr_scheduler_state_dict'),
    earlyStoppingState: plainState(file, 'early_stopping_state_dict'),
    scalars,
  };
}

/** A checkpoint's epoch entry: a whole number of epochs (0 when absent); anything else would resume from the wrong place. */
function epochsCompleted(path: string, epoch: number | string | boolean | null | undefined): number {
  if (epoch === undefined) return 0;
  if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 0) {
    throw new Lenet5Error(
      'ERR_LENET5_STATE_DICT',
      `${path}: the checkpoint's epoch is ${JSON.stringify(epoch)}; expected the number of epochs completed (0, 1, 2, ...). ` +
        "In Python, save it as an int: torch.save({'epoch': epoch, ...}, path).",
    );
  }
  return epoch;
}

/** A checkpoint's dict entry of plain values; null when absent. Python ints (even big ones) become numbers. */
function plainState(file: PthFile, name: string): PlainState | null {
  const value = (file.root as PyDict).map.get(name);
  if (value === undefined || value === null) return null;
  if (!(value instanceof PyDict)) throw new Lenet5Error('ERR_LENET5_STATE_DICT', `${file.path}: the checkpoint's ${name} is not a dict.`);
  const plain = (v: PyValue): number | string | boolean | null | undefined =>
    typeof v === 'bigint'
      ? Number(v)
      : v === null || ['number', 'string', 'boolean'].includes(typeof v)
        ? (v as number | string | boolean | null)
        : undefined;
  const state: PlainState = {};
  for (const [key, v] of value.map) {
    const items = Array.isArray(v) ? v : v instanceof PyTuple ? v.items : undefined;
    if (items) state[String(key)] = items.map((item) => Number(plain(item)));
    else if (plain(v) !== undefined) state[String(key)] = plain(v) as number | string | boolean | null;
  }
  return state;
}

/** Lists a .pth file's tensors (name, dtype, shape) and format without building a model. */
export async function inspect(path: string): Promise<InspectResult> {
  const file = await readPth(path);
  return {
    path,
    format: describeFormat(file),
    records: file.records,
    scalars: topLevelScalars(file.root),
    ...listTensors(file.root),
  };
}
