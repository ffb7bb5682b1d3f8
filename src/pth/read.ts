/**
 * Parsing .pth files into Python-like values (the zip in archive.ts, the pickle in unpickler.ts):
 * what this package writes, what Python's torch.save writes (a state_dict OrderedDict with
 * _metadata, or a checkpoint dict), from PyTorch 1.6 to 2.x. load.ts turns them into typed values.
 */
import { readInputFile } from '../errors.js';
import { readArchive } from './archive.js';
import { tensorToFloat32 } from './tensor.js';
import { unpickle } from './unpickler.js';
import { DTYPE_BYTES, PyDict, PyTuple, formatError, type DType, type PyTensor, type PyValue } from './values.js';

/** Containers nested deeper than this are refused (state dicts nest 4 levels). */
const MAX_DEPTH = 64;

export interface PthFile {
  path: string;
  /** Record folder inside the zip (e.g. 'archive/'). */
  prefix: string;
  records: string[];
  root: PyValue;
}

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
}

export async function readPth(path: string): Promise<PthFile> {
  const bytes = await readInputFile(path, 'ERR_LENET5_PTH_NOT_FOUND', 'Check the path, or train a model first (lenet5 train).');
  return parsePth(path, bytes);
}

/** Parses the bytes of a .pth file; `path` only names it in errors. */
export async function parsePth(path: string, bytes: Buffer): Promise<PthFile> {
  const { prefix, records } = await readArchive(path, bytes);
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
  return { path, prefix, records: [...records.keys()], root };
}

export function isTensor(value: PyValue): value is PyTensor {
  return value !== null && typeof value === 'object' && 'kind' in value && value.kind === 'tensor';
}

/** Every tensor in the file, named by its path through the containers (model_state_dict.conv1.weight). */
export function listTensors(root: PyValue): TensorInfo[] {
  const out: TensorInfo[] = [];
  const walk = (value: PyValue, name: string, depth: number): void => {
    if (depth > MAX_DEPTH) throw formatError(`Containers nest deeper than ${MAX_DEPTH} levels (or refer to themselves); not a state dict.`);
    if (isTensor(value)) out.push({ name, dtype: value.storage.dtype, shape: value.shape });
    else if (value instanceof PyDict) for (const [k, v] of value.map) walk(v, name ? `${name}.${String(k)}` : String(k), depth + 1);
    else if (Array.isArray(value) || value instanceof PyTuple) {
      (Array.isArray(value) ? value : value.items).forEach((v, i) => walk(v, name ? `${name}.${i}` : String(i), depth + 1));
    }
  };
  walk(root, '', 0);
  return out;
}

/** The non-tensor scalars at the top of a checkpoint (epoch, loss, ...), for display. */
export function topLevelScalars(root: PyValue): Record<string, number | string | boolean | null> {
  const out: Record<string, number | string | boolean | null> = {};
  if (root instanceof PyDict) {
    for (const [k, v] of root.map) {
      if (v === null || ['number', 'string', 'boolean'].includes(typeof v)) out[String(k)] = v as number | string | boolean | null;
      else if (typeof v === 'bigint') out[String(k)] = v.toString();
      else if (isTensor(v) && v.shape.length === 0) out[String(k)] = tensorToFloat32(v)[0];
    }
  }
  return out;
}

export function describeFormat(file: PthFile): string {
  const version = file.records.some((r) => r.endsWith('.format_version')) ? ', PyTorch 2.x writer' : '';
  return `PyTorch zip (torch.save >= 1.6${version}), records under ${file.prefix || '(top level)'}`;
}
