/**
 * Parsing .pth files into Python-like values (the zip in archive.ts, the pickle in unpickler.ts):
 * what this package writes, what Python's torch.save writes (a state_dict OrderedDict with
 * _metadata, or a checkpoint dict), from PyTorch 1.6 to 2.x. load.ts turns them into typed values.
 */
import { readInputFile } from '../errors.js';
import { readArchive } from './archive.js';
import { TensorMaterialiser, scalarOf } from './tensor.js';
import { unpickle } from './unpickler.js';
import { int8ModelError, isInt8Model } from '../quantize/file.js';
import { DTYPE_BYTES, PyDict, PyTuple, formatError, type DType, type PyTensor, type PyValue } from './values.js';

/** Containers nested deeper than this are refused (state dicts nest 4 levels). */
const MAX_DEPTH = 64;

/**
 * What one file may cost: its records once inflated (the file itself is bounded by
 * MAX_INPUT_FILE_BYTES), and the Float32Arrays built from its tensors. A LeNet-5 checkpoint with
 * 10 classes needs about 1 MiB of each.
 */
export interface PthLimits {
  recordBytes: number;
  materialisedBytes: number;
}

export const PTH_LIMITS: PthLimits = { recordBytes: 1 << 30, materialisedBytes: 1 << 30 };

export interface PthFile {
  path: string;
  /** Record folder inside the zip (e.g. 'archive/'). */
  prefix: string;
  records: string[];
  root: PyValue;
  /** Builds the tensors' values on demand, each view once, within PthLimits.materialisedBytes. */
  materialiser: TensorMaterialiser;
}

/** A container reached again by another path (a shared reference): listed, not walked twice. */
export interface SharedReference {
  name: string;
  sameAs: string;
}

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
}

export async function readPth(path: string): Promise<PthFile> {
  const bytes = await readInputFile(
    path,
    'ERR_LENET5_PTH_NOT_FOUND',
    'Check the path, or train a model first (lenet5 train).',
    'ERR_LENET5_PTH_TOO_LARGE',
  );
  return parsePth(path, bytes);
}

/** Parses the bytes of a .pth file; `path` only names it in errors. */
export async function parsePth(path: string, bytes: Buffer, limits: PthLimits = PTH_LIMITS): Promise<PthFile> {
  if (isInt8Model(bytes)) throw int8ModelError(path);
  const { prefix, records } = await readArchive(path, bytes, limits.recordBytes);
  const root = unpickle(records.get(`${prefix}data.pkl`) as Uint8Array, (key, dtype, numel) => {
    const record = records.get(`${prefix}data/${key}`);
    if (!record) throw formatError(`${path}: the pickle refers to storage ${key}, but the record ${prefix}data/${key} is missing.`);
    const needed = numel * DTYPE_BYTES[dtype];
    if (record.length < needed) {
      throw formatError(
        `${path}: storage record ${prefix}data/${key} holds ${record.length} bytes, but its ${numel} ${dtype} elements need ${needed}. The file is truncated or corrupt.`,
      );
    }
    return record;
  });
  return { path, prefix, records: [...records.keys()], root, materialiser: new TensorMaterialiser(path, limits.materialisedBytes) };
}

export function isTensor(value: PyValue): value is PyTensor {
  return value !== null && typeof value === 'object' && 'kind' in value && value.kind === 'tensor';
}

/**
 * Every tensor in the file, named by its path through the containers (model_state_dict.conv1.weight).
 * Pickle's memo lets one container appear under many paths (a DAG, or a cycle): each is walked
 * once, and its later paths are listed as shared references, so the work is bounded by the file.
 */
export function listTensors(root: PyValue): { tensors: TensorInfo[]; shared: SharedReference[] } {
  const tensors: TensorInfo[] = [];
  const shared: SharedReference[] = [];
  const walked = new Map<PyDict | PyValue[] | PyTuple, string>();
  const walk = (value: PyValue, name: string, depth: number): void => {
    if (isTensor(value)) {
      tensors.push({ name, dtype: value.storage.dtype, shape: value.shape });
      return;
    }
    if (!(value instanceof PyDict || value instanceof PyTuple || Array.isArray(value))) return;
    const first = walked.get(value);
    if (first !== undefined) {
      shared.push({ name, sameAs: first });
      return;
    }
    walked.set(value, name);
    if (depth > MAX_DEPTH) throw formatError(`Containers nest deeper than ${MAX_DEPTH} levels; not a state dict.`);
    const child = (key: PyValue) => (name ? `${name}.${String(key)}` : String(key));
    if (value instanceof PyDict) for (const [k, v] of value.map) walk(v, child(k), depth + 1);
    else (Array.isArray(value) ? value : value.items).forEach((v, i) => walk(v, child(i), depth + 1));
  };
  walk(root, '', 0);
  return { tensors, shared };
}

/** The non-tensor scalars at the top of a checkpoint (epoch, loss, ...), for display. */
export function topLevelScalars(root: PyValue): Record<string, number | string | boolean | null> {
  const out: Record<string, number | string | boolean | null> = {};
  if (root instanceof PyDict) {
    for (const [k, v] of root.map) {
      if (v === null || ['number', 'string', 'boolean'].includes(typeof v)) out[String(k)] = v as number | string | boolean | null;
      else if (typeof v === 'bigint') out[String(k)] = v.toString();
      else if (isTensor(v) && v.shape.length === 0) out[String(k)] = scalarOf(v);
    }
  }
  return out;
}

export function describeFormat(file: PthFile): string {
  const version = file.records.some((r) => r.endsWith('.format_version')) ? ', PyTorch 2.x writer' : '';
  return `PyTorch zip (torch.save >= 1.6${version}), records under ${file.prefix || '(top level)'}`;
}
