/**
 * Turns an image file into the 28x28 grayscale pixels LeNet-5 takes. PNG, JPEG, WebP, GIF and
 * TIFF are decoded by sharp (libvips), except small gray PNGs, decoded here to the same pixels
 * (decodeSmallPng); PGM (netpbm P2/P5), which sharp does not read, is parsed here and handed to
 * sharp as raw pixels for the same grayscale conversion and resize. Nothing else is decoded,
 * whatever the file's name or the request's Content-Type says: the first bytes must be one of these
 * formats' signatures (libvips would also render SVG, where 200 hostile bytes cost minutes of CPU,
 * and decode HEIF/AVIF).
 */
import { crc32, inflateSync } from 'node:zlib';
import type { ResizeOptions, Sharp } from 'sharp';
import { DEFAULT_FIT, type ImageOptions } from './preprocess.js';
import { Lenet5Error } from '../errors.js';
import { IMAGE_PIXELS } from './dataset.js';

/**
 * Larger images are refused before decoding: a small compressed file can claim billions of pixels.
 * Files named on the command line may be camera photos; images from the network get the server's
 * lower default (decoding 8192x8192 costs about 0.35 s of CPU).
 */
const MAX_IMAGE_PIXELS = 8192 * 8192;
export const SERVE_MAX_IMAGE_PIXELS = 4096 * 4096;

/** Decoding stops after this long (sharp's timeout, whole seconds); the server passes its own, shorter bound. */
const DECODE_TIMEOUT_SECONDS = 60;
export const SERVE_DECODE_TIMEOUT_SECONDS = 5;

type Format = 'png' | 'jpeg' | 'webp' | 'gif' | 'tiff' | 'pgm';
const FORMAT_NAMES = 'PNG, JPEG, WebP, GIF, TIFF or PGM';

function startsWith(bytes: Uint8Array, offset: number, signature: string): boolean {
  return Array.from(signature).every((c, i) => bytes[offset + i] === c.charCodeAt(0));
}

/** The decoded formats by their signatures (the first bytes every such file has). */
function sniffFormat(bytes: Uint8Array): Format | undefined {
  if (startsWith(bytes, 0, '\x89PNG\r\n\x1a\n')) return 'png';
  if (startsWith(bytes, 0, '\xff\xd8\xff')) return 'jpeg';
  if (startsWith(bytes, 0, 'RIFF') && startsWith(bytes, 8, 'WEBP')) return 'webp';
  if (startsWith(bytes, 0, 'GIF87a') || startsWith(bytes, 0, 'GIF89a')) return 'gif';
  if (startsWith(bytes, 0, 'II*\0') || startsWith(bytes, 0, 'MM\0*')) return 'tiff';
  if (startsWith(bytes, 0, 'P5') || startsWith(bytes, 0, 'P2')) return 'pgm';
  return undefined;
}

/** The first bytes, in hex and as text (`3c 73 76 67 ... "<svg xmlns="`), for the refusal message. */
function describeStart(bytes: Uint8Array): string {
  const head = Array.from(bytes.subarray(0, 12));
  const text = head.map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
  return `${head.map((b) => b.toString(16).padStart(2, '0')).join(' ')} "${text}"`;
}

function imageError(file: string, problem: string): Lenet5Error {
  return new Lenet5Error('ERR_LENET5_IMAGE', `${file}: ${problem}`);
}

function tooLarge(file: string, maxPixels: number): Lenet5Error {
  const side = Math.sqrt(maxPixels);
  return imageError(
    file,
    `has more than ${maxPixels} pixels${Number.isInteger(side) ? ` (${side}x${side})` : ''}. Resize it first (the model sees 28x28).`,
  );
}

interface GrayImage {
  width: number;
  height: number;
  pixels: Uint8Array;
}

/** Parses binary (P5) or text (P2) PGM, 8-bit or 16-bit. */
function parsePgm(file: string, bytes: Uint8Array, maxPixels: number): GrayImage {
  const binary = bytes[1] === 0x35; // P5; the caller has checked for P2 or P5
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
    // More digits than any valid size or value has: refused before they are turned into a string.
    if (pos - start > 9) throw imageError(file, `has a PGM header number with ${pos - start} digits; expected at most 9.`);
    return Number(Buffer.from(bytes.buffer, bytes.byteOffset + start, pos - start).toString('latin1'));
  };
  const width = token();
  const height = token();
  const maxValue = token();
  if (width * height > maxPixels) throw tooLarge(file, maxPixels);
  if (width < 1 || height < 1 || maxValue < 1 || maxValue > 65535) {
    throw imageError(file, `has unsupported PGM dimensions ${width}x${height} (max value ${maxValue}).`);
  }
  const pixels = new Uint8Array(width * height);
  const scale = 255 / maxValue;
  if (binary) {
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

/**
 * PNGs up to this many pixels are decoded on the event loop without sharp when they are of a kind
 * decodeSmallPng takes: a sharp call costs about 1 ms of thread hops and pipeline set-up, which made
 * the server's PNG path 8x slower than JSON pixels for 28x28 images. A 256x256 RGBA PNG (256 KiB
 * inflated) takes about 2 ms of the event loop's CPU here, about what parsing a JSON body of that
 * size takes, and less CPU in all than sharp's decode; larger images go to libvips's threads.
 */
const SMALL_PNG_MAX_PIXELS = 256 * 256;
/** Ancillary chunks that do not change the pixels; any other (gAMA, iCCP, sRGB, tRNS, ...) goes to sharp. */
const PIXEL_NEUTRAL_CHUNKS = new Set(['tEXt', 'zTXt', 'iTXt', 'pHYs', 'tIME']);
/** PNG colour types with 8-bit samples decodeSmallPng takes, by their channel count: gray, RGB, gray+alpha, RGBA. */
const PNG_CHANNELS: Partial<Record<number, number>> = { 0: 1, 2: 3, 4: 2, 6: 4 };

/** The byte a PNG filter predicts from: left (a), above (b), above-left (c). */
function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/**
 * sharp's decodeGray result, computed without sharp, for the PNGs whose result is known exactly:
 * 8-bit, not interlaced, gray or gray-looking RGB (every pixel R = G = B), with or without alpha,
 * no chunk that changes colours, at most SMALL_PNG_MAX_PIXELS. Anything else, and anything
 * malformed (a bad CRC, a truncated or over-long zlib stream, a bad filter byte), returns undefined
 * and goes to sharp, which decodes it or gives today's error. Dimensions are checked before
 * inflating, and inflating stops at the size they allow (at most 257 KiB), so a zlib bomb is cut short.
 * The alpha flattening is libvips's for 8-bit samples, checked against sharp for every value and
 * alpha pair (test/data.test.ts).
 */
function decodeSmallPng(bytes: Uint8Array, invert: boolean, maxPixels: number): GrayImage | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const chunkType = (at: number) => String.fromCharCode(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]);
  // IHDR comes first: 8 bytes of signature, then length 13 and the type.
  if (bytes.length < 33 || view.getUint32(8) !== 13 || chunkType(12) !== 'IHDR') return undefined;
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  const channels = PNG_CHANNELS[bytes[25]];
  const [bitDepth, compression, filterMethod, interlace] = [bytes[24], bytes[26], bytes[27], bytes[28]];
  if (width < 1 || height < 1 || width * height > Math.min(SMALL_PNG_MAX_PIXELS, maxPixels)) return undefined;
  if (channels === undefined || bitDepth !== 8 || compression !== 0 || filterMethod !== 0 || interlace !== 0) return undefined;

  const idat: Uint8Array[] = [];
  let pos = 8;
  let ended = false;
  let previous = '';
  while (!ended) {
    if (pos + 12 > bytes.length) return undefined;
    const length = view.getUint32(pos);
    const type = chunkType(pos + 4);
    const end = pos + 12 + length;
    if (end > bytes.length || crc32(bytes.subarray(pos + 4, end - 4)) !== view.getUint32(end - 4)) return undefined;
    if (type === 'IDAT') {
      if (idat.length > 0 && previous !== 'IDAT') return undefined; // one run of IDAT chunks, as the format requires
      idat.push(bytes.subarray(pos + 8, end - 4));
    } else if (type === 'IEND') ended = true;
    else if (pos !== 8 && !PIXEL_NEUTRAL_CHUNKS.has(type)) return undefined; // pos 8 is the IHDR read above
    previous = type;
    pos = end;
  }
  if (pos !== bytes.length || idat.length === 0) return undefined;

  const stride = width * channels;
  const size = height * (stride + 1); // each row starts with its filter byte
  const compressed = idat.length === 1 ? idat[0] : Buffer.concat(idat);
  let data: Buffer;
  try {
    const inflated = inflateSync(compressed, { maxOutputLength: size, info: true }) as unknown as {
      buffer: Buffer;
      engine: { bytesWritten: number };
    };
    // The whole stream is one zlib stream of exactly the pixels, nothing after it.
    if (inflated.buffer.length !== size || inflated.engine.bytesWritten !== compressed.length) return undefined;
    data = inflated.buffer;
  } catch {
    return undefined; // corrupt, truncated or longer than the header says
  }

  // Unfilter in place: each row's bytes become the raw samples, the filter byte stays before them.
  // One plain loop per filter type, as this runs on the event loop; the first row's "above" is zeros.
  const zeros = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const row = y * (stride + 1) + 1;
    const [prior, above] = y > 0 ? [data, row - stride - 1] : [zeros, 0];
    switch (data[row - 1]) {
      case 0: // None
        break;
      case 1: // Sub: plus the byte to the left
        for (let x = channels; x < stride; x++) data[row + x] += data[row + x - channels];
        break;
      case 2: // Up: plus the byte above
        for (let x = 0; x < stride; x++) data[row + x] += prior[above + x];
        break;
      case 3: // Average of left and above
        for (let x = 0; x < channels; x++) data[row + x] += prior[above + x] >> 1;
        for (let x = channels; x < stride; x++) data[row + x] += (data[row + x - channels] + prior[above + x]) >> 1;
        break;
      case 4: // Paeth
        for (let x = 0; x < channels; x++) data[row + x] += prior[above + x]; // paeth(0, b, 0) is b
        for (let x = channels; x < stride; x++)
          data[row + x] += paeth(data[row + x - channels], prior[above + x], prior[above + x - channels]);
        break;
      default:
        return undefined; // no such filter: sharp's error
    }
  }

  const pixels = new Uint8Array(width * height);
  const background = invert ? 255 : 0;
  const hasAlpha = channels === 2 || channels === 4;
  for (let y = 0, i = 0; y < height; y++) {
    let at = y * (stride + 1) + 1;
    for (let x = 0; x < width; x++, i++, at += channels) {
      const value = data[at];
      if (channels >= 3 && (data[at + 1] !== value || data[at + 2] !== value)) return undefined; // colour: sharp's conversion
      const alpha = hasAlpha ? data[at + channels - 1] : 255;
      // libvips's flatten: the alpha blend with the background, truncated to an integer.
      const flat = alpha === 255 ? value : Math.floor((value * alpha + background * (255 - alpha)) / 255);
      pixels[i] = invert ? 255 - flat : flat;
    }
  }
  return { width, height, pixels };
}

/** A pixel counts as ink for the bounding box when it is at least this share of the brightest one. */
const INK_SHARE = 0.25;

/** Decodes to one grayscale channel, light-on-dark, at full size. */
async function decodeGray(
  file: string,
  bytes: Uint8Array,
  invert: boolean,
  limits: { maxPixels: number; timeoutSeconds: number },
): Promise<GrayImage> {
  const { maxPixels, timeoutSeconds } = limits;
  if (bytes.length === 0) throw imageError(file, `is empty (0 bytes). Expected the bytes of a ${FORMAT_NAMES} image.`);
  const format = sniffFormat(bytes);
  // libvips would take SVG, HEIF, AVIF and more; an SVG render cannot be stopped by sharp's timeout.
  if (format === undefined) {
    throw imageError(
      file,
      `is not a ${FORMAT_NAMES} image (it starts with ${describeStart(bytes)}); only those formats are decoded (no SVG, HEIF or AVIF). Convert it to PNG first.`,
    );
  }
  const smallPng = format === 'png' ? decodeSmallPng(bytes, invert, maxPixels) : undefined;
  if (smallPng) return smallPng;
  const pgm = format === 'pgm' ? parsePgm(file, bytes, maxPixels) : undefined;
  const sharp = await loadSharp();
  try {
    const image: Sharp = pgm
      ? sharp(pgm.pixels, { raw: { width: pgm.width, height: pgm.height, channels: 1 }, limitInputPixels: maxPixels })
      : sharp(bytes, { limitInputPixels: maxPixels });
    image.timeout({ seconds: timeoutSeconds });
    // Every per-pixel step runs in libvips's threads: a large image does not hold the event loop.
    image
      .flatten({ background: invert ? '#ffffff' : '#000000' })
      .grayscale()
      .extractChannel(0);
    if (invert) image.negate();
    const { data, info } = await image.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, pixels: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  } catch (error) {
    const message = (error as Error).message;
    if (/pixel limit/.test(message)) throw tooLarge(file, maxPixels);
    if (/timeout/i.test(message))
      throw imageError(file, `took more than ${timeoutSeconds} s to decode; it was stopped. Send a smaller or simpler image.`);
    throw imageError(file, `cannot be decoded as an image (${message}). Supported: ${FORMAT_NAMES}.`);
  }
}

/** sharp (libvips) loads on the first image, not when the command starts. */
async function loadSharp() {
  return (await import('sharp')).default;
}

async function resizeGray(pixels: Uint8Array, width: number, height: number, resize: ResizeOptions & { width: number; height: number }) {
  const sharp = await loadSharp();
  const { data, info } = await sharp(pixels, { raw: { width, height, channels: 1 } })
    .resize(resize)
    .toColourspace('b-w')
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, pixels: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/**
 * The bounding box of the ink: pixels at least INK_SHARE of the brightest one. Plain loops over
 * the typed array, each row scanned from the right only up to the box found so far: this runs on
 * the event loop (a 4096x4096 image held it about 1 s with reduce and per-pixel Math.min/max).
 */
function inkBox(
  pixels: Uint8Array,
  width: number,
  height: number,
): { left: number; top: number; right: number; bottom: number } | undefined {
  let brightest = 0;
  for (let i = 0; i < pixels.length; i++) if (pixels[i] > brightest) brightest = pixels[i];
  const threshold = Math.max(1, INK_SHARE * brightest);
  let left = width,
    right = -1,
    top = -1,
    bottom = -1;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    let first = 0;
    while (first < width && pixels[row + first] < threshold) first++;
    if (first === width) continue; // no ink in this row
    if (top < 0) top = y;
    bottom = y;
    if (first < left) left = first;
    let last = width - 1;
    while (last > right && pixels[row + last] < threshold) last--;
    if (last > right) right = last;
  }
  return top < 0 ? undefined : { left, top, right, bottom };
}

/** MNIST's preprocessing: crop to the ink, fit into 20x20, centre the centre of mass in 28x28. */
async function mnistStyle(gray: GrayImage): Promise<Uint8Array> {
  const { width, height, pixels } = gray;
  const out = new Uint8Array(IMAGE_PIXELS);
  const ink = inkBox(pixels, width, height);
  if (!ink) return out; // nothing drawn: an empty (black) image
  const { left, top, right, bottom } = ink;
  const sharp = await loadSharp();
  const crop = await sharp(pixels, { raw: { width, height, channels: 1 } })
    .extract({ left, top, width: right - left + 1, height: bottom - top + 1 })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const box = await resizeGray(new Uint8Array(crop.data), crop.info.width, crop.info.height, {
    width: 20,
    height: 20,
    fit: 'inside',
    kernel: 'lanczos3',
  });
  let mass = 0,
    sumX = 0,
    sumY = 0;
  for (let y = 0; y < box.height; y++) {
    for (let x = 0; x < box.width; x++) {
      const v = box.pixels[y * box.width + x];
      mass += v;
      sumX += v * x;
      sumY += v * y;
    }
  }
  const centreX = mass > 0 ? sumX / mass : (box.width - 1) / 2;
  const centreY = mass > 0 ? sumY / mass : (box.height - 1) / 2;
  // Shift so the centre of mass lands on the field's centre, keeping the whole box inside 28x28.
  const offsetX = Math.min(28 - box.width, Math.max(0, Math.round(13.5 - centreX)));
  const offsetY = Math.min(28 - box.height, Math.max(0, Math.round(13.5 - centreY)));
  for (let y = 0; y < box.height; y++) out.set(box.pixels.subarray(y * box.width, (y + 1) * box.width), (y + offsetY) * 28 + offsetX);
  return out;
}

/**
 * 784 bytes, row-major, 0 = black (MNIST's light-on-dark). Images over `maxPixels` are refused
 * before decoding; decoding stops after `timeoutSeconds`.
 */
export async function loadImage28(
  file: string,
  bytes: Uint8Array,
  options: ImageOptions & { maxPixels?: number; timeoutSeconds?: number } = {},
): Promise<Uint8Array> {
  const gray = await decodeGray(file, bytes, options.invert ?? false, {
    maxPixels: options.maxPixels ?? MAX_IMAGE_PIXELS,
    timeoutSeconds: options.timeoutSeconds ?? DECODE_TIMEOUT_SECONDS,
  });
  const fit = options.fit ?? DEFAULT_FIT;
  if (fit === 'mnist') return mnistStyle(gray);
  // sharp's resize of a 28x28 image to 28x28 returns it unchanged, for 'stretch' and 'pad' alike.
  if (gray.width === 28 && gray.height === 28) return new Uint8Array(gray.pixels);
  const resized = await resizeGray(gray.pixels, gray.width, gray.height, {
    width: 28,
    height: 28,
    fit: fit === 'pad' ? 'contain' : 'fill',
    background: '#000000',
  });
  return new Uint8Array(resized.pixels);
}
