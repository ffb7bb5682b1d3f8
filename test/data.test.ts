/** Your own data: image folders and Kaggle CSVs through datasets.auto and the lenet5 command. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { datasets } from '../src/index.js';
import { loadImage28 } from '../src/data/image.js';
import { rng, root, syntheticImages, tempDir, lenet5Json as runCli } from './helpers.js';

const dir = tempDir();
const cacheDir = join(dir, 'cache');
const cli = join(root, 'dist/cli/main.js');
const SHAPES = ['hline', 'ring', 'vline'] as const; // sorted, as the class names will be

function lenet5Json<T = Record<string, unknown>>(...args: string[]) {
  return runCli<T>(dir, args, { ...process.env, LENET5_CACHE: cacheDir });
}

/** A dark shape drawn on a light background of random size, at a random place: what people scan or draw. */
function drawnPng(shape: (typeof SHAPES)[number], random: () => number): Buffer {
  const width = 40 + Math.floor(random() * 40);
  const height = 40 + Math.floor(random() * 40);
  const png = new PNG({ width, height });
  const size = 14 + Math.floor(random() * 16);
  const x0 = Math.floor(random() * (width - size));
  const y0 = Math.floor(random() * (height - size));
  const thick = 3 + Math.floor(random() * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const u = x - x0;
      const v = y - y0;
      const inBox = u >= 0 && v >= 0 && u < size && v < size;
      const r = Math.hypot(u - size / 2, v - size / 2);
      const ink =
        inBox &&
        (shape === 'hline'
          ? v >= size / 2 - thick / 2 && v < size / 2 + thick / 2
          : shape === 'vline'
            ? u >= size / 2 - thick / 2 && u < size / 2 + thick / 2
            : r <= size / 2 && r >= size / 2 - thick);
      const value = ink ? Math.floor(random() * 40) : 215 + Math.floor(random() * 40);
      const i = (y * width + x) * 4;
      png.data[i] = png.data[i + 1] = png.data[i + 2] = value;
      png.data[i + 3] = 255;
    }
  }
  return PNG.sync.write(png);
}

/** DIR/<shape>/<n>.png for each shape, `count` each. */
function drawFolder(target: string, count: number, seed: number): void {
  const random = rng(seed);
  for (const shape of SHAPES) {
    mkdirSync(join(target, shape), { recursive: true });
    for (let n = 0; n < count; n++) writeFileSync(join(target, shape, `${n}.png`), drawnPng(shape, random));
  }
}

interface TrainJson {
  ok: boolean;
  data: {
    format: string;
    classes: string[];
    badFiles: { path: string; reason: string }[];
    cache: string;
    train: number;
    validation: number;
    test: number;
  };
  test: { accuracy: number; total: number };
  error?: { code: string; message: string };
}

// Trains 4 small epochs on an image folder of dark-on-light drawings (the fixtures above).
const trainFolder = (data: string, out: string, ...extra: string[]) =>
  lenet5Json<TrainJson>(
    'train',
    '--data',
    data,
    '--invert',
    '--epochs',
    '4',
    '--batch-size',
    '8',
    '--lr',
    '0.003',
    '--device',
    'cpu',
    '--out',
    join(dir, out),
    ...extra,
  );

describe('image folders', () => {
  const folder = join(dir, 'shapes');
  drawFolder(folder, 40, 1);
  const corrupt = join(folder, 'ring', 'broken.png');
  writeFileSync(corrupt, Buffer.from('\x89PNG\r\n\x1a\nnot really a png', 'latin1')); // a PNG signature, then garbage
  const train = (...extra: string[]) => trainFolder(folder, 'shapes.pth', ...extra);

  it('refuses a folder with a corrupt file by default, naming the file and the way out', () => {
    const run = train();
    expect(run.status).toBe(1);
    expect(run.json.error?.code).toBe('ERR_LENET5_BAD_FILES');
    expect(run.json.error?.message).toContain(corrupt);
    expect(run.json.error?.message).toContain('--on-bad-file skip');
  });

  let trained: TrainJson;
  it('with --on-bad-file skip trains on the rest, holds out a test split, and beats chance on it', () => {
    const run = train('--on-bad-file', 'skip');
    expect(run.status, run.stderr).toBe(0);
    trained = run.json;
    expect(trained.data.format).toBe('image-folder');
    expect(trained.data.classes).toEqual([...SHAPES]);
    expect(trained.data.badFiles).toEqual([{ path: corrupt, reason: expect.stringContaining('cannot be decoded') }]);
    // 120 good images: 12 held out as the test set, 11 of the rest for validation.
    expect(trained.data.test + trained.data.validation + trained.data.train).toBe(120);
    expect(trained.data.test).toBe(12);
    expect(trained.test.accuracy).toBeGreaterThan(0.75);
    const metadata = JSON.parse(readFileSync(join(dir, 'shapes.json'), 'utf8'));
    expect(metadata.classes).toEqual([...SHAPES]);
    expect(metadata.preprocessing).toEqual({ fit: 'mnist', invert: true });
    const lines = spawnSync(
      process.execPath,
      [cli, 'train', '--data', folder, '--invert', '--on-bad-file', 'skip', '--epochs', '1', '--out', join(dir, 'x.pth')],
      { cwd: dir, encoding: 'utf8', env: { ...process.env, LENET5_CACHE: cacheDir } },
    ).stdout;
    expect(lines).toContain(`skipped ${corrupt}`);
    expect(lines).toMatch(/No test split in .*: held out 12 of 120 training images/);
  });

  it('caches the decoded folder, reuses it, and decodes again when a file changes', async () => {
    // The refused run above decoded (and cached) every file, so the run with skip read the cache.
    expect(trained.data.cache).toBe('hit');
    const load = () => datasets.auto(folder, { invert: true, onBadFile: 'skip', cacheDir });
    const hit = await load();
    expect(hit.cache).toBe('hit');
    expect(hit.badFiles).toHaveLength(1);
    const fresh = await datasets.auto(folder, { invert: true, onBadFile: 'skip', cacheDir: null });
    expect(fresh.cache).toBe('off');
    expect(hit.train.size).toBe(fresh.train.size);
    // A changed file (new content and time) is decoded again; so is a fixed one.
    writeFileSync(corrupt, drawnPng('ring', rng(9)));
    utimesSync(corrupt, new Date(), new Date(Date.now() + 5000));
    const changed = await load();
    expect(changed.cache).toBe('miss');
    expect(changed.badFiles).toEqual([]);
    expect(changed.train.size).toBe(121);
    expect((await load()).cache).toBe('hit');
  });

  it('uses train/ and test/ folders as they are', () => {
    const split = join(dir, 'split');
    drawFolder(join(split, 'train'), 30, 2);
    drawFolder(join(split, 'test'), 10, 3);
    const run = trainFolder(split, 'split.pth');
    expect(run.status, run.stderr).toBe(0);
    expect(run.json.data.test).toBe(30);
    expect(run.json.data.train + run.json.data.validation).toBe(90);
    expect(run.json.test.accuracy).toBeGreaterThan(0.75);
  });

  it('predicts a folder into a CSV of path, class, name and probability', () => {
    const images = join(dir, 'to-predict');
    drawFolder(images, 4, 4);
    const out = join(dir, 'predictions.csv');
    // No --invert or --fit: predict prepares the images as the model's training images were (its metadata).
    const run = lenet5Json('predict', join(dir, 'shapes.pth'), images, '--out', out);
    expect(run.status, run.stderr).toBe(0);
    const rows = readFileSync(out, 'utf8').trim().split('\n');
    expect(rows[0]).toBe('path,class,name,probability');
    expect(rows).toHaveLength(13);
    const right = rows.slice(1).filter((row) => {
      const [path, , name] = row.split(',');
      return path.includes(`/${name}/`);
    });
    expect(right.length).toBeGreaterThan(8);
  });
});

describe('MNIST-style preprocessing', () => {
  it('fits the drawing into 20x20 and centres its centre of mass in 28x28', async () => {
    // A 10x30 white bar near the corner of a 100x100 black image.
    const png = new PNG({ width: 100, height: 100 });
    for (let y = 0; y < 100; y++)
      for (let x = 0; x < 100; x++) {
        const i = (y * 100 + x) * 4;
        png.data[i] = png.data[i + 1] = png.data[i + 2] = x >= 5 && x < 15 && y >= 60 && y < 90 ? 255 : 0;
        png.data[i + 3] = 255;
      }
    const pixels = await loadImage28('bar.png', PNG.sync.write(png), { fit: 'mnist' });
    let mass = 0,
      sx = 0,
      sy = 0,
      rows = 0;
    for (let y = 0; y < 28; y++) {
      let rowInk = false;
      for (let x = 0; x < 28; x++) {
        const v = pixels[y * 28 + x];
        mass += v;
        sx += v * x;
        sy += v * y;
        if (v > 128) rowInk = true;
      }
      if (rowInk) rows++;
    }
    expect(rows).toBe(20);
    expect(Math.abs(sx / mass - 13.5)).toBeLessThan(1);
    expect(Math.abs(sy / mass - 13.5)).toBeLessThan(1);
    const stretched = await loadImage28('bar.png', PNG.sync.write(png), { fit: 'stretch' });
    expect(stretched[5 * 28 + 14]).toBe(0); // the plain resize keeps the bar in its corner
  });
});

describe("Kaggle's digit-recognizer CSV", () => {
  const { images, labels } = syntheticImages(240, 4, 5);
  const header = Array.from({ length: 784 }, (_, i) => `pixel${i}`).join(',');
  const row = (n: number) => Array.from(images.subarray(n * 784, (n + 1) * 784)).join(',');
  const trainCsv = join(dir, 'train.csv');
  const testCsv = join(dir, 'test.csv');
  writeFileSync(trainCsv, `label,${header}\n${Array.from({ length: 200 }, (_, n) => `${labels[n]},${row(n)}`).join('\n')}\n`);
  writeFileSync(testCsv, `${header}\r\n${Array.from({ length: 40 }, (_, n) => row(200 + n)).join('\r\n')}\r\n`);

  it('trains from train.csv and writes a Kaggle submission for test.csv', () => {
    const model = join(dir, 'kaggle.pth');
    const run = lenet5Json<TrainJson>(
      'train',
      '--data',
      trainCsv,
      '--epochs',
      '2',
      '--batch-size',
      '16',
      '--device',
      'cpu',
      '--out',
      model,
    );
    expect(run.status, run.stderr).toBe(0);
    expect(run.json.data.format).toBe('csv');
    expect(run.json.test.accuracy).toBeGreaterThan(0.5);
    const out = join(dir, 'submission.csv');
    const predicted = lenet5Json('predict', model, '--csv', testCsv, '--out', out);
    expect(predicted.status, predicted.stderr).toBe(0);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    expect(lines[0]).toBe('ImageId,Label');
    expect(lines).toHaveLength(41);
    expect(lines[1]).toMatch(/^1,\d$/);
    const right = lines.slice(1).filter((line, n) => line === `${n + 1},${labels[200 + n]}`);
    expect(right.length).toBeGreaterThan(20);
  });

  it('says which row is malformed, and what a test.csv is for', async () => {
    const bad = join(dir, 'bad.csv');
    writeFileSync(bad, `label,${header}\n1,${row(0)}\n2,${row(1).replace(/^\d+/, '300')}\n`);
    await expect(datasets.auto(bad)).rejects.toMatchObject({
      code: 'ERR_LENET5_BAD_FILES',
      message: expect.stringContaining('line 3 holds "300"'),
    });
    const skipped = await datasets.auto(bad, { onBadFile: 'skip' });
    expect(skipped.train.size).toBe(1);
    await expect(datasets.auto(testCsv)).rejects.toMatchObject({ code: 'ERR_LENET5_DATA', message: expect.stringContaining('--csv') });
  });
});
