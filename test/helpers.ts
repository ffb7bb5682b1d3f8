/** Shared test fixtures: data the tests make themselves, temp folders, and real Python PyTorch. */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, expect } from 'vitest';
import { Dataset, Lenet5Error, type ErrorCode } from '../src/index.js';
import { rng } from '../scripts/rng.mjs';

export { rng };

export const root = resolve(import.meta.dirname, '..');

/** A fresh temp folder, removed after the file's tests. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'lenet5-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Awaits `action` (a promise, or a function that throws or rejects) and checks it fails with a Lenet5Error of `code`. */
export async function expectCode(action: Promise<unknown> | (() => unknown), code: ErrorCode, label?: string): Promise<Lenet5Error> {
  let caught: unknown;
  try {
    await (typeof action === 'function' ? action() : action);
  } catch (error) {
    caught = error;
  }
  expect(caught, `${label ? `${label}: ` : ''}expected a Lenet5Error with code ${code}`).toBeInstanceOf(Lenet5Error);
  expect((caught as Lenet5Error).code, label).toBe(code);
  return caught as Lenet5Error;
}

/**
 * A learnable synthetic task: class c is a bright horizontal bar at row band c (of `classes`)
 * on a noisy background.
 */
export function syntheticImages(count: number, classes = 4, seed = 1): { images: Uint8Array; labels: Uint8Array } {
  const random = rng(seed);
  const images = new Uint8Array(count * 784);
  const labels = new Uint8Array(count);
  const band = Math.floor(28 / classes);
  for (let n = 0; n < count; n++) {
    const label = n % classes;
    labels[n] = label;
    for (let p = 0; p < 784; p++) {
      const row = Math.floor(p / 28);
      const inBar = row >= label * band && row < label * band + band;
      images[n * 784 + p] = Math.min(255, Math.floor(random() * 60) + (inBar ? 180 : 0));
    }
  }
  return { images, labels };
}

export function syntheticDataset(count: number, classes = 4, seed = 1): Dataset {
  const { images, labels } = syntheticImages(count, classes, seed);
  return Dataset.fromArrays({ images, labels, numClasses: classes });
}

/** The project's Python with PyTorch 2.x, and Debian's with 1.13. Both are required: setup.sh installs them. */
export const pythons = {
  current: process.env.LENET5_PYTHON ?? join(root, '.venv/bin/python'),
  debian: '/usr/bin/python3',
};

export function requirePython(python: string): void {
  try {
    execFileSync(python, ['-c', 'import torch'], { stdio: 'ignore' });
  } catch {
    throw new Error(`${python} cannot import torch. Run scripts/setup.sh (it installs PyTorch in .venv and Debian's python3-torch).`);
  }
}

/** Runs test/python/interop.py and parses its JSON. */
export function python<T = Record<string, unknown>>(interpreter: string, ...args: string[]): T {
  const out = execFileSync(interpreter, [join(root, 'test/python/interop.py'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, PYTHONWARNINGS: 'ignore' },
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(out.trim().split('\n').pop() as string) as T;
}

export function writeFloat32(path: string, values: Float32Array): string {
  writeFileSync(path, Buffer.from(values.buffer, values.byteOffset, values.byteLength));
  return path;
}

/** Debian's headless Chromium (setup.sh installs it), driven by playwright-core; no network is used. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
}

/** A PNG file from its IHDR fields and its compressed pixel rows (IDAT), with `ancillary` chunks (type, data) between them. */
export function pngFile(
  header: { width: number; height: number; bitDepth: number; colourType: number },
  idat: Buffer,
  ancillary: [string, Buffer][] = [],
): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(header.width, 0);
  ihdr.writeUInt32BE(header.height, 4);
  ihdr[8] = header.bitDepth;
  ihdr[9] = header.colourType; // compression, filter and interlace stay 0
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    ...ancillary.map(([type, data]) => chunk(type, data)),
    chunk('IDAT', idat),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A valid PNG header that claims width x height pixels with almost no data: a decompression bomb. */
export function pngClaiming(width: number, height: number): Buffer {
  return pngFile({ width, height, bitDepth: 8, colourType: 0 }, deflateSync(Buffer.alloc(1000)));
}

function writeIdx(path: string, dims: number[], data: Uint8Array): void {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(0x800 + dims.length, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  writeFileSync(path, Buffer.concat([header, data]));
}

/** A tiny MNIST-format folder DIR/data (4 learnable classes, 200 training and 40 test images) so `lenet5 train` takes a second. */
export function tinyMnistFolder(dir: string): string {
  const data = join(dir, 'data');
  mkdirSync(data);
  for (const [prefix, count] of [
    ['train', 200],
    ['t10k', 40],
  ] as const) {
    const { images, labels } = syntheticImages(count, 4, count);
    writeIdx(join(data, `${prefix}-images-idx3-ubyte`), [count, 28, 28], images);
    writeIdx(join(data, `${prefix}-labels-idx1-ubyte`), [count], labels);
  }
  return data;
}

/** Runs `lenet5 ARGS --json` (the built dist/) in `cwd`: exactly one JSON object on stdout, parsed. */
export function lenet5Json<T = Record<string, unknown>>(
  cwd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): { status: number | null; json: T; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [join(root, 'dist/cli/main.js'), ...args, '--json'], {
    cwd,
    encoding: 'utf8',
    timeout: 120_000,
    env,
  });
  let json: T;
  try {
    json = JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(`stdout is not one JSON object:\n${result.stdout}\nstderr:\n${result.stderr}`);
  }
  return { status: result.status, json, stdout: result.stdout, stderr: result.stderr };
}
