/**
 * Reader for MNIST-format IDX files (`*-idx3-ubyte` images, `*-idx1-ubyte` labels), gzipped or
 * not. Pixels stay uint8: 60,000 images are 47 MB, not 188 MB of floats.
 */
import { gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import { Lenet5Error, readInputFile } from '../errors.js';

const gunzipAsync = promisify(gunzip);
const UBYTE = 0x08;
/** The largest IDX file we inflate: far above MNIST's 47 MB, far below what would exhaust memory. */
const MAX_INFLATED_BYTES = 1 << 30;

function dataError(file: string, problem: string): Lenet5Error {
  return new Lenet5Error('ERR_LENET5_DATA', `${file}: ${problem}`);
}

async function readIdxBytes(file: string): Promise<Buffer> {
  const raw = await readInputFile(
    file,
    'ERR_LENET5_DATA_NOT_FOUND',
    'Expected an MNIST-format IDX file (gzipped or not).',
    'ERR_LENET5_DATA',
  );
  return decompressIdx(file, raw);
}

/** Gunzips `raw` when it is gzip data (bounded), else returns it as it is. */
export async function decompressIdx(file: string, raw: Buffer): Promise<Buffer> {
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      return await gunzipAsync(raw, { maxOutputLength: MAX_INFLATED_BYTES });
    } catch (error) {
      throw dataError(file, `is not a valid gzip file (${(error as Error).message}). Download it again, or use the uncompressed file.`);
    }
  }
  return raw;
}

/** Parses an IDX buffer of unsigned bytes and checks that its length matches its dimensions. */
export function parseIdx(file: string, bytes: Uint8Array, expectedDims: 1 | 3): { dims: number[]; data: Uint8Array } {
  if (bytes.length < 4) throw dataError(file, `is ${bytes.length} bytes long, too short for an IDX header (4 bytes).`);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw dataError(
      file,
      'is not an IDX file: its magic number does not start with two zero bytes. Expected MNIST-format files (train-images-idx3-ubyte, ...).',
    );
  }
  if (bytes[2] !== UBYTE) {
    throw dataError(file, `holds element type 0x${bytes[2].toString(16).padStart(2, '0')}; expected unsigned bytes (0x08) as in MNIST.`);
  }
  const ndims = bytes[3];
  if (ndims !== expectedDims) {
    const kind = expectedDims === 3 ? 'an image file (idx3: count x rows x columns)' : 'a label file (idx1: count)';
    throw dataError(file, `has ${ndims} dimension(s); expected ${kind}.`);
  }
  const header = 4 + 4 * ndims;
  if (bytes.length < header) throw dataError(file, `is truncated inside its header (${bytes.length} of ${header} bytes).`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims = Array.from({ length: ndims }, (_, i) => view.getUint32(4 + 4 * i, false));
  const expectedLength = header + dims.reduce((a, b) => a * b, 1);
  if (bytes.length !== expectedLength) {
    throw dataError(
      file,
      `is ${bytes.length} bytes long, but its header (${dims.join(' x ')}) says ${expectedLength}. The file is truncated or corrupt; download it again.`,
    );
  }
  return { dims, data: bytes.subarray(header) };
}

export async function readIdxImages(file: string): Promise<{ count: number; pixels: Uint8Array }> {
  const { dims, data } = parseIdx(file, await readIdxBytes(file), 3);
  if (dims[1] !== 28 || dims[2] !== 28) throw dataError(file, `holds ${dims[1]}x${dims[2]} images; LeNet-5 here expects 28x28.`);
  return { count: dims[0], pixels: data };
}

export async function readIdxLabels(file: string): Promise<Uint8Array> {
  return parseIdx(file, await readIdxBytes(file), 1).data;
}

/** The bytes of an IDX file of unsigned bytes with the given dimensions (the inverse of parseIdx). */
export function idxBytes(dims: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt8(UBYTE, 2);
  header.writeUInt8(dims.length, 3);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, data]);
}
