/** The Python values the unpickler builds: containers, tensors and their storages, and the allowed callables. */
import { Lenet5Error } from '../errors.js';

export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}

/** A Python dict or OrderedDict. Keys are strings or integers in state dicts. */
export class PyDict {
  readonly map = new Map<PyKey, PyValue>();
}

/** A storage referenced by a tensor: raw little-endian bytes from one zip record. */
export interface PyStorage {
  kind: 'storage';
  dtype: DType;
  key: string;
  numel: number;
  bytes: Uint8Array;
}

export interface PyTensor {
  kind: 'tensor';
  storage: PyStorage;
  offset: number;
  shape: number[];
  stride: number[];
}

export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';
export type PyKey = string | number | bigint | boolean | null;
export type PyValue = PyKey | Uint8Array | PyValue[] | PyTuple | PyDict | PyTensor | PyStorage | PyGlobal | PyStorageType;

/** An allowed callable, as it sits on the stack between GLOBAL and REDUCE. */
export interface PyGlobal {
  kind: 'global';
  name: string;
  call(args: PyValue[]): PyValue;
}

export interface PyStorageType {
  kind: 'storageType';
  dtype: DType;
}

export const DTYPE_BYTES: Record<DType, number> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

export function formatError(message: string): Lenet5Error {
  return new Lenet5Error('ERR_LENET5_PTH_FORMAT', message);
}

export function isTuple(value: PyValue): value is PyTuple {
  return value instanceof PyTuple;
}
