/**
 * The int8 model file (lenet5 quantize and QuantizedLeNet5.save write it). Not a .pth: PyTorch has no
 * loader for this scheme, and a .pth stays float32 so Python loads it as before.
 *
 *   bytes 0-7    "LENET5Q8" (the magic; the float loaders recognise it and name this format)
 *   bytes 8-11   header length H, uint32 little-endian
 *   bytes 12..   H bytes of UTF-8 JSON: Int8Header below
 *   then         the tensors' bytes, little-endian, each at its `offset` from the end of the header:
 *                <layer>.weight int8, <layer>.weight_scale float32 (one per output channel),
 *                <layer>.bias int32 (scale: the layer's input scale x weight_scale)
 *
 * The activation scales are JSON numbers: each is a float32 value, which a double prints and
 * parses back exactly.
 */
import { Lenet5Error, readInputFile } from '../errors.js';
import { checkNormalization, type Normalization } from '../data/dataset.js';
import { FITS, type ImageOptions } from '../data/preprocess.js';
import { ACTIVATIONS, QUANTIZED_LAYERS, type ActivationName, type LayerName, type QuantizedLayer, type QuantizedNetwork } from './int8.js';

export const INT8_MAGIC = Buffer.from('LENET5Q8', 'latin1');
export const INT8_FORMAT_VERSION = 1;

/** Everything an int8 model knows besides its network: what a float model keeps in its .json metadata. */
export interface Int8ModelInfo {
  classes: string[] | null;
  normalization: Normalization;
  preprocessing?: ImageOptions;
  /** How the activation scales were measured. */
  calibration: { method: 'max-abs'; images: number };
}

type DType = 'int8' | 'int32' | 'float32';
interface TensorEntry {
  name: string;
  dtype: DType;
  shape: number[];
  offset: number;
}

interface Int8Header extends Int8ModelInfo {
  format: 'lenet5-libtorch/int8';
  version: number;
  numClasses: number;
  activationScales: Record<ActivationName, number>;
  tensors: TensorEntry[];
}

const ARRAYS = { int8: Int8Array, int32: Int32Array, float32: Float32Array } as const;

export function isInt8Model(bytes: Uint8Array): boolean {
  return bytes.length >= INT8_MAGIC.length && INT8_MAGIC.every((b, i) => bytes[i] === b);
}

/** The error the float loaders (LeNet5.load, the .pth reader) give for an int8 model file. */
export function int8ModelError(path: string): Lenet5Error {
  return new Lenet5Error(
    'ERR_LENET5_INT8_MODEL',
    `${path} is an int8 model (written by lenet5 quantize), not a float32 .pth. Load it with QuantizedLeNet5.load(path) (lenet5 evaluate, predict, serve and export --int8 take it as it is), or load the float .pth it was quantized from.`,
  );
}

/** The tensors an int8 model file holds, in file order. */
export function storedTensors(
  network: QuantizedNetwork,
): { name: string; dtype: DType; shape: number[]; values: Int8Array | Int32Array | Float32Array }[] {
  return QUANTIZED_LAYERS.flatMap((name) => {
    const layer = network.layers[name];
    return [
      { name: `${name}.weight`, dtype: 'int8' as const, shape: layer.shape, values: layer.weight },
      { name: `${name}.weight_scale`, dtype: 'float32' as const, shape: [layer.shape[0]], values: layer.weightScales },
      { name: `${name}.bias`, dtype: 'int32' as const, shape: [layer.shape[0]], values: layer.bias },
    ];
  });
}

export function encodeInt8Model(network: QuantizedNetwork, info: Int8ModelInfo): Buffer {
  const tensors: TensorEntry[] = [];
  const chunks: Buffer[] = [];
  let offset = 0;
  const add = (name: string, dtype: DType, shape: number[], values: Int8Array | Int32Array | Float32Array) => {
    const padding = (4 - (offset % 4)) % 4; // int32 and float32 start 4-byte aligned
    chunks.push(Buffer.alloc(padding));
    offset += padding;
    tensors.push({ name, dtype, shape, offset });
    chunks.push(Buffer.from(values.buffer, values.byteOffset, values.byteLength)); // this package runs on little-endian CPUs only
    offset += values.byteLength;
  };
  for (const t of storedTensors(network)) add(t.name, t.dtype, t.shape, t.values);
  const header: Int8Header = {
    format: 'lenet5-libtorch/int8',
    version: INT8_FORMAT_VERSION,
    numClasses: network.numClasses,
    ...info,
    activationScales: network.activationScales,
    tensors,
  };
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(4);
  length.writeUInt32LE(json.length);
  return Buffer.concat([INT8_MAGIC, length, json, ...chunks]);
}

function formatError(path: string, problem: string): Lenet5Error {
  return new Lenet5Error(
    'ERR_LENET5_INT8_FORMAT',
    `${path} is not a valid int8 model: ${problem}. Quantize the float model again (lenet5 quantize).`,
  );
}

/** The float LeNet-5 shapes for `numClasses`, which every int8 file must have. */
function expectedShape(name: LayerName, numClasses: number): number[] {
  return { conv1: [6, 1, 5, 5], conv2: [16, 6, 5, 5], fc1: [120, 400], fc2: [84, 120], fc3: [numClasses, 84] }[name];
}

export function decodeInt8Model(path: string, bytes: Uint8Array): { network: QuantizedNetwork; info: Int8ModelInfo } {
  if (!isInt8Model(bytes)) throw formatError(path, 'it does not start with "LENET5Q8"');
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerEnd = 12 + (view.length >= 12 ? view.readUInt32LE(8) : Infinity);
  if (headerEnd > view.length) throw formatError(path, 'the file is shorter than its header says (cut short?)');
  let header: Int8Header;
  try {
    header = JSON.parse(view.toString('utf8', 12, headerEnd)) as Int8Header;
  } catch (error) {
    throw formatError(path, `its header is not JSON (${(error as Error).message})`);
  }
  if (header?.format !== 'lenet5-libtorch/int8' || header.version !== INT8_FORMAT_VERSION) {
    throw formatError(
      path,
      `its header says format ${JSON.stringify(header?.format)} version ${JSON.stringify(header?.version)}, this package reads lenet5-libtorch/int8 version ${INT8_FORMAT_VERSION}`,
    );
  }
  const numClasses = header.numClasses;
  if (!Number.isSafeInteger(numClasses) || numClasses < 1) throw formatError(path, `numClasses is ${JSON.stringify(numClasses)}`);
  const scales = header.activationScales ?? {};
  for (const a of ACTIVATIONS) {
    const s = (scales as Record<string, unknown>)[a];
    // float32 values, as quantize() makes them: the native int8 pass divides by them in float32.
    if (typeof s !== 'number' || !(s > 0) || !Number.isFinite(s) || Math.fround(s) !== s) {
      throw formatError(path, `activation scale ${a} is ${JSON.stringify(s)} (expected a positive float32 value)`);
    }
  }
  const entries = new Map((Array.isArray(header.tensors) ? header.tensors : []).map((t) => [t?.name, t]));
  const tensor = <D extends DType>(name: string, dtype: D, shape: number[]): InstanceType<(typeof ARRAYS)[D]> => {
    const entry = entries.get(name);
    if (!entry || entry.dtype !== dtype || JSON.stringify(entry.shape) !== JSON.stringify(shape)) {
      throw formatError(path, `expected tensor ${name} as ${dtype} [${shape.join(', ')}]`);
    }
    const Array = ARRAYS[dtype];
    const count = shape.reduce((a, b) => a * b, 1);
    const start = headerEnd + entry.offset;
    if (!Number.isSafeInteger(entry.offset) || entry.offset < 0 || start + count * Array.BYTES_PER_ELEMENT > view.length) {
      throw formatError(path, `tensor ${name} lies outside the file (cut short?)`);
    }
    // A copy: aligned for the typed array, and independent of the file's buffer.
    const copy = new Uint8Array(view.subarray(start, start + count * Array.BYTES_PER_ELEMENT));
    return new Array(copy.buffer) as InstanceType<(typeof ARRAYS)[D]>;
  };
  const layers = Object.fromEntries(
    QUANTIZED_LAYERS.map((name): [LayerName, QuantizedLayer] => {
      const shape = expectedShape(name, numClasses);
      const weightScales = tensor(`${name}.weight_scale`, 'float32', [shape[0]]);
      const bad = weightScales.findIndex((s) => !(s > 0) || !Number.isFinite(s));
      if (bad >= 0) throw formatError(path, `${name}.weight_scale[${bad}] is ${weightScales[bad]}`);
      return [
        name,
        { shape, weight: tensor(`${name}.weight`, 'int8', shape), weightScales, bias: tensor(`${name}.bias`, 'int32', [shape[0]]) },
      ];
    }),
  ) as Record<LayerName, QuantizedLayer>;
  let normalization: Normalization;
  try {
    normalization = checkNormalization(header.normalization);
  } catch (error) {
    throw formatError(path, (error as Error).message);
  }
  const classes =
    Array.isArray(header.classes) && header.classes.length === numClasses && header.classes.every((c) => typeof c === 'string')
      ? header.classes
      : null;
  const p = header.preprocessing;
  const preprocessing = p && FITS.includes(p.fit as never) && typeof p.invert === 'boolean' ? { fit: p.fit, invert: p.invert } : undefined;
  const images = Number(header.calibration?.images);
  return {
    network: { numClasses, activationScales: { ...scales }, layers },
    info: { classes, normalization, preprocessing, calibration: { method: 'max-abs', images: Number.isSafeInteger(images) ? images : 0 } },
  };
}

export async function readInt8Model(path: string): Promise<{ network: QuantizedNetwork; info: Int8ModelInfo }> {
  const bytes = await readInputFile(
    path,
    'ERR_LENET5_PTH_NOT_FOUND',
    'Check the path, or quantize a model first (lenet5 quantize).',
    'ERR_LENET5_PTH_TOO_LARGE',
  );
  return decodeInt8Model(path, bytes);
}
