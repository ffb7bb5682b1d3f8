/** Materialises a pickled tensor view as a contiguous Float32Array, whatever its storage dtype. */
import { DTYPE_BYTES, type PyTensor } from './values.js';

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

export function tensorToFloat32(tensor: PyTensor): Float32Array {
  const { storage, shape, stride, offset } = tensor;
  const numel = numelOf(shape);
  const out = new Float32Array(numel);
  const view = new DataView(storage.bytes.buffer, storage.bytes.byteOffset, storage.bytes.byteLength);
  const size = DTYPE_BYTES[storage.dtype];
  const read: (index: number) => number = {
    float32: (i: number) => view.getFloat32(i * size, true),
    float64: (i: number) => view.getFloat64(i * size, true),
    float16: (i: number) => float16(view.getUint16(i * size, true)),
    bfloat16: (i: number) => {
      const widened = new DataView(new ArrayBuffer(4));
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
  // Walk the view in row-major order with an odometer over the dimensions.
  const index = new Array<number>(shape.length).fill(0);
  let position = offset;
  for (let n = 0; n < numel; n++) {
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
