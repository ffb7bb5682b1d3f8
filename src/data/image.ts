/**
 * Turns an image file into the 28x28 grayscale pixels LeNet-5 takes. PNG, JPEG, WebP, GIF and
 * TIFF are decoded by sharp (libvips); PGM (netpbm P2/P5), which sharp does not read, is parsed
 * here and handed to sharp as raw pixels for the same grayscale conversion and resize.
 */
import type { Sharp } from 'sharp';
import { Lenet5Error } from '../errors.js';

/** Larger images are refused before decoding: a small compressed file can claim billions of pixels. */
const MAX_INPUT_PIXELS = 8192 * 8192;

function imageError(file: string, problem: string): Lenet5Error {
  return new Lenet5Error('ERR_LENET5_IMAGE', `${file}: ${problem}`);
}

/** Parses binary (P5) or text (P2) PGM, 8-bit or 16-bit. */
export function parsePgm(file: string, bytes: Uint8Array): { width: number; height: number; pixels: Uint8Array } {
  const magic = String.fromCharCode(bytes[0] ?? 0, bytes[1] ?? 0);
  if (magic !== 'P5' && magic !== 'P2') throw imageError(file, 'is not a PGM file (expected P2 or P5).');
  let pos = 2;
  const token = (): number => {
    for (;;) {
      while (pos < bytes.length && /\s/.test(String.fromCharCode(bytes[pos]))) pos++;
      if (bytes[pos] === 0x23) {
        while (pos < bytes.length && bytes[pos] !== 0x0a) pos++;
        continue;
      }
      break;
    }
    const start = pos;
    while (pos < bytes.length && /[0-9]/.test(String.fromCharCode(bytes[pos]))) pos++;
    if (start === pos) throw imageError(file, 'has a malformed PGM header.');
    return Number(String.fromCharCode(...bytes.subarray(start, pos)));
  };
  const width = token();
  const height = token();
  const maxValue = token();
  if (width < 1 || height < 1 || width * height > MAX_INPUT_PIXELS || maxValue < 1 || maxValue > 65535) {
    throw imageError(file, `has unsupported PGM dimensions ${width}x${height} (max value ${maxValue}).`);
  }
  const pixels = new Uint8Array(width * height);
  const scale = 255 / maxValue;
  if (magic === 'P5') {
    pos++; // the single whitespace after the header
    const size = maxValue > 255 ? 2 : 1;
    if (bytes.length < pos + width * height * size) throw imageError(file, 'is truncated: fewer pixels than its header says.');
    for (let i = 0; i < pixels.length; i++) {
      const value = size === 2 ? (bytes[pos + 2 * i] << 8) | bytes[pos + 2 * i + 1] : bytes[pos + i];
      pixels[i] = Math.round(value * scale);
    }
  } else {
    for (let i = 0; i < pixels.length; i++) pixels[i] = Math.round(Math.min(token(), maxValue) * scale);
  }
  return { width, height, pixels };
}

/** 784 bytes, row-major, 0 = black. `invert` turns dark-on-light drawings into MNIST's light-on-dark. */
export async function loadImage28(file: string, bytes: Uint8Array, invert: boolean): Promise<Uint8Array> {
  if (bytes.length === 0) throw imageError(file, 'is empty (0 bytes). Expected the bytes of a PNG, JPEG, WebP, GIF, TIFF or PGM image.');
  const isPgm = bytes[0] === 0x50 && (bytes[1] === 0x35 || bytes[1] === 0x32);
  const pgm = isPgm ? parsePgm(file, bytes) : undefined;
  // sharp (libvips) loads on the first image, not when the command starts.
  const { default: sharp } = await import('sharp');
  try {
    const image: Sharp = pgm
      ? sharp(pgm.pixels, { raw: { width: pgm.width, height: pgm.height, channels: 1 }, limitInputPixels: MAX_INPUT_PIXELS })
      : sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS });
    const pipeline = image.flatten({ background: invert ? '#ffffff' : '#000000' }).grayscale().resize(28, 28, { fit: 'fill' });
    const { data, info } = await (invert ? pipeline.negate() : pipeline).raw().toBuffer({ resolveWithObject: true });
    if (info.width !== 28 || info.height !== 28 || data.length !== 784 * info.channels) throw new Error('unexpected decoded size');
    return info.channels === 1 ? new Uint8Array(data) : Uint8Array.from({ length: 784 }, (_, i) => data[i * info.channels]);
  } catch (error) {
    if (/pixel limit/.test((error as Error).message)) throw imageError(file, 'has more than 8192x8192 pixels. Resize it first (the model sees 28x28).');
    throw imageError(file, `cannot be decoded as an image (${(error as Error).message}). Supported: PNG, JPEG, WebP, GIF, TIFF, PGM.`);
  }
}
