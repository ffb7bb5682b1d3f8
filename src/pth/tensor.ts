/**
 * Materialises pickled tensor views as Float32Arrays, whatever their storage dtype, within a
 * budget per file: a file's pickle can name one storage thousands of times (3,000 keys of one
 * 4 MB storage would otherwise be 12 GB of copies), so views are built on demand, once each, and a
 * contiguous view of a float32 storage is a window on it, not a copy.
 */
import { endianness } from 'node:os';
import { Lenet5Error } from '../errors.js';
import { DTYPE_BYTES, type PyStorage, type PyTensor } from './values.js';

function float16(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

function numelOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Reads element `index` of a storage as a number. */
function elementReader(storage: PyStorage): (index: number) => number {
  const view = new DataView(storage.bytes.buffer, storage.bytes.byteOffset, storage.bytes.byteLength);
  const size = DTYPE_BYTES[storage.dtype];
  const widened = new DataView(new ArrayBuffer(4));
  return {
    float32: (i: number) => view.getFloat32(i * size, true),
    float64: (i: number) => view.getFloat64(i * size, true),
    float16: (i: number) => float16(view.getUint16(i * size, true)),
    bfloat16: (i: number) => {
      widened.setUint32(0, view.getUint16(i * size, true) << 16, true);
      return widened.getFloat32(0, true);
    },
    int64: (i: number) => Number(view.getBigInt64(i * size, true)),
    int32: (i: number) => view.getInt32(i * size, true),
    int16: (i: number) => view.getInt16(i * size, true),
    int8: (i: number) => view.getInt8(i * size),
    uint8: (i: number) => view.getUint8(i * size),
    bool: (i: number) => (view.getUint8(i * size) ? 1 : 0),
  }[storage.dtype];
}

/** The value of a tensor with one element (a 0-d tensor such as Adam's step), read without materialising anything. */
export function scalarOf(tensor: PyTensor): number {
  return elementReader(tensor.storage)(tensor.offset);
}

function isContiguous({ shape, stride }: PyTensor): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expected) return false;
    expected *= shape[d];
  }
  return true;
}

/** Copies a view's elements in row-major order (an odometer over the dimensions). */
function gather(tensor: PyTensor, read: (index: number) => number): Float32Array {
  const { shape, stride } = tensor;
  const out = new Float32Array(numelOf(shape));
  const index = new Array<number>(shape.length).fill(0);
  let position = tensor.offset;
  for (let n = 0; n < out.length; n++) {
    out[n] = read(position);
    for (let d = shape.length - 1; d >= 0; d--) {
      index[d]++;
      position += stride[d];
      if (index[d] < shape[d]) break;
      position -= stride[d] * shape[d];
      index[d] = 0;
    }
  }
  return out;
}

const MIB = 1024 * 1024;
/** Storages are little-endian; on such a machine an aligned float32 record is usable as it is. */
const LITTLE_ENDIAN = endianness() === 'LE';

/**
 * Turns the tensors of one file into Float32Arrays, each view once, charging every byte it
 * allocates to `limitBytes`; past it, ERR_LENET5_PTH_TOO_LARGE names the file and the bound.
 * The arrays may share memory with each other and with the file's records: read them, never write.
 */
export class TensorMaterialiser {
  private spentBytes = 0;
  /** float32 storages as Float32Arrays: the record itself when aligned, else one copy. */
  private readonly float32Storages = new Map<PyStorage, Float32Array>();
  /** Views already built, per storage, by offset, shape and stride. */
  private readonly views = new Map<PyStorage, Map<string, Float32Array>>();

  constructor(
    private readonly path: string,
    readonly limitBytes: number,
  ) {}

  values(tensor: PyTensor, name: string): Float32Array {
    const { storage } = tensor;
    const numel = numelOf(tensor.shape);
    if (storage.dtype === 'float32' && isContiguous(tensor)) {
      return this.float32Storage(storage, name).subarray(tensor.offset, tensor.offset + numel);
    }
    let built = this.views.get(storage);
    if (!built) this.views.set(storage, (built = new Map()));
    const key = `${tensor.offset}|${tensor.shape.join(',')}|${tensor.stride.join(',')}`;
    let values = built.get(key);
    if (!values) {
      this.charge(numel * 4, name);
      values = gather(tensor, elementReader(storage));
      built.set(key, values);
    }
    return values;
  }

  private float32Storage(storage: PyStorage, name: string): Float32Array {
    let values = this.float32Storages.get(storage);
    if (!values) {
      const { bytes } = storage;
      if (bytes.byteOffset % 4 === 0 && LITTLE_ENDIAN) {
        values = new Float32Array(bytes.buffer, bytes.byteOffset, storage.numel);
      } else {
        this.charge(storage.numel * 4, name);
        values = new Float32Array(bytes.slice(0, storage.numel * 4).buffer);
      }
      this.float32Storages.set(storage, values);
    }
    return values;
  }

  private charge(bytes: number, name: string): void {
    if (this.spentBytes + bytes > this.limitBytes) {
      throw new Lenet5Error(
        'ERR_LENET5_PTH_TOO_LARGE',
        `${this.path}: its tensors take more memory than this reader allows (${Math.round(this.limitBytes / MIB)} MiB as float32): ` +
          `${Math.round(this.spentBytes / MIB)} MiB built, and ${name} needs ${Math.ceil(bytes / MIB)} MiB more. ` +
          'A LeNet-5 model with 10 classes takes 0.25 MiB; this file is much larger, or it repeats its tensors as different views.',
      );
    }
    this.spentBytes += bytes;
  }
}
