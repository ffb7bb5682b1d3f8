/** Your own data: image folders and Kaggle CSVs through datasets.auto and the lenet5 command. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { PNG } from 'pngjs';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { Dataset, datasets } from '../src/index.js';
import { loadImage28 } from '../src/data/image.js';
import { expectCode, pngClaiming, pngFile, rng, root, syntheticImages, tempDir, lenet5Json as runCli } from './helpers.js';

const dir = tempDir();
const cacheDir = join(dir, 'cache');
const cli = join(root, 'dist/cli/main.js');
const SHAPES = ['hline', 'ring', 'vline'] as const; // sorted, as the class names will be

function lenet5Json<T = Record<string, unknown>>(...args: string[]) {
  return runCli<T>(dir, args, { ...process.env, LENET5_CACHE_DIR: cacheDir });
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
  // Small shapes with margins around them: MNIST's centring suits them best (docs/cli.md, "Your own data").
  const train = (...extra: string[]) => trainFolder(folder, 'shapes.pth', '--fit', 'mnist', ...extra);

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
      [cli, 'train', '--data', folder, '--invert', '--fit', 'mnist', '--on-bad-file', 'skip', '--epochs', '1', '--out', join(dir, 'x.pth')],
      { cwd: dir, encoding: 'utf8', env: { ...process.env, LENET5_CACHE_DIR: cacheDir } },
    ).stdout;
    expect(lines).toContain(`skipped ${corrupt}`);
    expect(lines).toMatch(/No test split in .*: held out 12 of 120 training images/);
  });

  it('caches the decoded folder, reuses it, and decodes again when a file changes', async () => {
    // The refused run above decoded (and cached) every file, so the run with skip read the cache.
    expect(trained.data.cache).toBe('hit');
    const load = () => datasets.auto(folder, { invert: true, fit: 'mnist', onBadFile: 'skip', cacheDir });
    const hit = await load();
    expect(hit.cache).toBe('hit');
    expect(hit.badFiles).toHaveLength(1);
    const fresh = await datasets.auto(folder, { invert: true, fit: 'mnist', onBadFile: 'skip', cacheDir: null });
    expect(fresh.cache).toBe('off');
    expect(hit.train!.size).toBe(fresh.train!.size);
    // A changed file (new content and time) is decoded again; so is a fixed one.
    writeFileSync(corrupt, drawnPng('ring', rng(9)));
    utimesSync(corrupt, new Date(), new Date(Date.now() + 5000));
    const changed = await load();
    expect(changed.cache).toBe('miss');
    expect(changed.badFiles).toEqual([]);
    expect(changed.train!.size).toBe(121);
    expect((await load()).cache).toBe('hit');
  });

  it('uses train/ and test/ folders as they are', () => {
    const split = join(dir, 'split');
    drawFolder(join(split, 'train'), 30, 2);
    drawFolder(join(split, 'test'), 10, 3);
    const run = trainFolder(split, 'split.pth', '--fit', 'mnist');
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

describe('small PNGs, decoded without sharp, give what sharp gives', () => {
  /** sharp's reading of an image at full size (today's pipeline before the resize): the reference. */
  async function sharpGray(bytes: Buffer, invert = false) {
    const image = sharp(bytes)
      .flatten({ background: invert ? '#ffffff' : '#000000' })
      .grayscale()
      .extractChannel(0);
    if (invert) image.negate();
    const { data, info } = await image.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, pixels: new Uint8Array(data) };
  }
  /** The same pixels as a PGM, which always goes through sharp: loadImage28's result before the fast path. */
  const pgmOf = (gray: { width: number; height: number; pixels: Uint8Array }) =>
    Buffer.concat([Buffer.from(`P5\n${gray.width} ${gray.height}\n255\n`), gray.pixels]);
  /** A PNG (pngjs) of `colorType` whose pixels are gray `values[i]` with alpha `alphas[i]`. */
  function grayPng(width: number, height: number, colorType: 0 | 2 | 4 | 6, values: number[], alphas: number[], filterType = -1) {
    const png = new PNG({ width, height });
    for (let i = 0; i < width * height; i++) {
      png.data.fill(values[i % values.length], 4 * i, 4 * i + 3);
      png.data[4 * i + 3] = alphas[i % alphas.length];
    }
    return PNG.sync.write(png, { colorType, filterType });
  }
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);

  it('8-bit gray and gray RGB, every value, each of the five row filters, as is and inverted', async () => {
    const random = rng(3);
    const values = [...range(256), ...range(784 - 256).map(() => Math.floor(random() * 256))]; // random: every filter's cases
    for (const colorType of [0, 2] as const)
      for (const filterType of range(5))
        for (const invert of [false, true]) {
          const png = grayPng(28, 28, colorType, values, [255], filterType);
          expect(await loadImage28('x.png', png, { invert }), `type ${colorType} filter ${filterType}`).toEqual(
            (await sharpGray(png, invert)).pixels,
          );
        }
  });

  it('8-bit gray+alpha and gray RGBA, every value with every alpha (the flatten onto black, or white when inverted)', async () => {
    const pairs = range(65536);
    for (const colorType of [4, 6] as const)
      for (let start = 0; start < pairs.length; start += 784) {
        const chunk = pairs.slice(start, start + 784);
        const png = grayPng(
          28,
          28,
          colorType,
          chunk.map((p) => p >> 8),
          chunk.map((p) => p & 255),
          (start / 784) % 5,
        );
        for (const invert of [false, true])
          expect(await loadImage28('x.png', png, { invert }), `type ${colorType} from pair ${start}`).toEqual(
            (await sharpGray(png, invert)).pixels,
          );
      }
  });

  it('other sizes, up to the largest taken and beyond, with each fit, as the same pixels through sharp', async () => {
    const random = rng(5);
    const values = range(4096).map(() => Math.floor(random() * 256));
    const alphas = range(4096).map(() => (random() < 0.5 ? 255 : Math.floor(random() * 256)));
    for (const [width, height] of [
      [45, 19],
      [256, 256],
      [257, 256],
    ])
      for (const fit of ['stretch', 'pad', 'mnist'] as const)
        for (const invert of [false, true]) {
          const png = grayPng(width, height, 6, values, alphas);
          expect(await loadImage28('x.png', png, { fit, invert }), `${width}x${height} ${fit}`).toEqual(
            await loadImage28('x.pgm', pgmOf(await sharpGray(png, invert)), { fit }),
          );
        }
  });

  it('kinds it does not take (colour, 16-bit, palette, interlaced, tRNS, gAMA) are still decoded as sharp decodes them', async () => {
    const random = rng(9);
    const gray = Buffer.from(range(784).map(() => Math.floor(random() * 256)));
    /** Unfiltered rows (filter byte 0), each pixel's bytes from its gray value. */
    const rows = (pixelBytes: (v: number) => number[]) =>
      deflateSync(Buffer.from(range(28).flatMap((y) => [0, ...range(28).flatMap((x) => pixelBytes(gray[y * 28 + x]))])));
    const raw8 = rows((v) => [v]);
    const header = { width: 28, height: 28, bitDepth: 8, colourType: 0 };
    const kinds: Record<string, Buffer> = {
      colour: await sharp(Buffer.from(range(784 * 3).map(() => Math.floor(random() * 256))), {
        raw: { width: 28, height: 28, channels: 3 },
      })
        .png()
        .toBuffer(),
      '16-bit': pngFile(
        { ...header, bitDepth: 16 },
        rows((v) => [v, 255 - v]),
      ),
      palette: await sharp(gray, { raw: { width: 28, height: 28, channels: 1 } })
        .png({ palette: true, colours: 16 })
        .toBuffer(),
      interlaced: await sharp(gray, { raw: { width: 28, height: 28, channels: 1 } })
        .png({ progressive: true })
        .toBuffer(),
      tRNS: pngFile(header, raw8, [['tRNS', Buffer.from([0, gray[0]])]]),
      gAMA: pngFile(header, raw8, [['gAMA', Buffer.from([0, 0, 0x3a, 0x98])]]), // gamma 0.15
    };
    for (const [kind, png] of Object.entries(kinds))
      for (const invert of [false, true])
        expect(await loadImage28(`${kind}.png`, png, { invert }), kind).toEqual((await sharpGray(png, invert)).pixels);
  });

  it('the size limit holds before inflating: a small PNG over maxPixels, and one whose header claims 100000x100000, are refused', async () => {
    const png = grayPng(28, 28, 0, range(256), [255]);
    const small = await expectCode(loadImage28('small.png', png, { maxPixels: 100 }), 'ERR_LENET5_IMAGE');
    expect(small.message).toMatch(/small\.png: has more than 100 pixels/);
    const claims = await expectCode(loadImage28('claims.png', pngClaiming(100_000, 100_000)), 'ERR_LENET5_IMAGE');
    expect(claims.message).toMatch(/claims\.png: has more than 67108864 pixels \(8192x8192\)/);
  });

  it('a truncated or corrupted PNG is refused (ERR_LENET5_IMAGE) or decoded exactly as sharp does, at every byte', async () => {
    // Small, so that every byte can be tried in a few seconds.
    const png = grayPng(8, 8, 4, range(64), [255, 0, 128]);
    const outcome = (result: Promise<Uint8Array>) =>
      result.then(
        (pixels) => Array.from(pixels).join(','),
        (error: { code?: string }) => error.code ?? 'sharp refused',
      );
    for (let at = 8; at < png.length; at++) {
      const truncated = png.subarray(0, at);
      const flipped = Buffer.from(png);
      flipped[at] ^= 0x10;
      for (const [label, bad] of [
        [`truncated at ${at}`, truncated],
        [`byte ${at} flipped`, flipped],
      ] as const) {
        const expected = (await outcome(sharpGray(bad).then((gray) => loadImage28('bad.pgm', pgmOf(gray))))).replace(
          'sharp refused',
          'ERR_LENET5_IMAGE',
        );
        expect(await outcome(loadImage28('bad.png', bad)), label).toBe(expected);
      }
    }
  });

  it('a 28x28 PNG whose data inflates to 64 MiB (a zlib bomb) is answered as sharp answers it', async () => {
    const bomb = pngFile({ width: 28, height: 28, bitDepth: 8, colourType: 0 }, deflateSync(Buffer.alloc(64 * 1024 * 1024)));
    expect(bomb.length).toBeLessThan(100_000);
    expect(await loadImage28('bomb.png', bomb)).toEqual((await sharpGray(bomb)).pixels);
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
    expect(skipped.train!.size).toBe(1);
    await expect(datasets.auto(testCsv)).rejects.toMatchObject({ code: 'ERR_LENET5_DATA', message: expect.stringContaining('--csv') });
  });
});

describe('evaluating your own data as the model was trained', () => {
  interface EvaluateJson {
    ok: boolean;
    split: string;
    preprocessing: { fit: string; invert: boolean } | null;
    classes: string[];
    accuracy: number;
    correct: number;
    total: number;
    perClassAccuracy: (number | null)[];
    confusionMatrix: number[][];
    error?: { code: string; message: string };
  }
  const evaluate = (...args: string[]) => lenet5Json<EvaluateJson>('evaluate', ...args);

  it('evaluate with no flags prepares images as the model was trained (--fit pad --invert): the accuracy train reported', () => {
    const folder = join(dir, 'shapes-pad');
    drawFolder(folder, 30, 5);
    const trained = trainFolder(folder, 'pad.pth', '--fit', 'pad');
    expect(trained.status, trained.stderr).toBe(0);
    const run = evaluate(join(dir, 'pad.pth'), '--data', folder);
    expect(run.status, run.stderr).toBe(0);
    expect(run.json.total).toBe(trained.json.test.total);
    expect(run.json.accuracy).toBe(trained.json.test.accuracy);
    expect(run.json.preprocessing).toEqual({ fit: 'pad', invert: true });
    // A flag overrides the model's preprocessing, and the output says so.
    const lines = spawnSync(process.execPath, [cli, 'evaluate', join(dir, 'pad.pth'), '--data', folder, '--no-invert'], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, LENET5_CACHE_DIR: cacheDir },
    }).stdout;
    expect(lines).toContain("Preprocessing: --fit pad, not the model's own (--fit pad --invert)");
  });

  // Ten classes c0..c9 (a bright bar at row band c), as 28x28 PNGs: DIR/<split>/c<label>/<n>.png.
  const { images, labels } = syntheticImages(300, 10, 11);
  const writeBars = (target: string, first: number, count: number, keep: (label: number) => boolean = () => true) => {
    for (let n = first; n < first + count; n++) {
      if (!keep(labels[n])) continue;
      mkdirSync(join(target, `c${labels[n]}`), { recursive: true });
      const png = new PNG({ width: 28, height: 28, colorType: 0, inputColorType: 0, inputHasAlpha: false });
      png.data = Buffer.from(images.subarray(n * 784, (n + 1) * 784));
      writeFileSync(
        join(target, `c${labels[n]}`, `${n}.png`),
        PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false }),
      );
    }
  };
  const bars = join(dir, 'bars');
  writeBars(join(bars, 'train'), 0, 200);
  writeBars(join(bars, 'test'), 200, 100);
  const barsModel = join(dir, 'bars.pth');
  let barsTest: TrainJson['test'] & { correct: number };
  let fullTest: EvaluateJson;

  it('the default preprocessing keeps 28x28 exports as they are; a folder holding only test/ is read as the test split', () => {
    const trained = lenet5Json<TrainJson & { test: { correct: number } }>(
      'train',
      '--data',
      bars,
      '--epochs',
      '3',
      '--batch-size',
      '8',
      '--lr',
      '0.003',
      '--out',
      barsModel,
    );
    expect(trained.status, trained.stderr).toBe(0);
    // With every option at its default (--fit stretch): the bars stay where they are, so classes stay apart.
    expect(JSON.parse(readFileSync(join(dir, 'bars.json'), 'utf8')).preprocessing).toEqual({ fit: 'stretch', invert: false });
    expect(trained.json.test.accuracy).toBeGreaterThan(0.5); // centred as MNIST (the old default), the bars all look alike: 10%
    barsTest = trained.json.test;
    const onlyTest = join(dir, 'only-test');
    writeBars(join(onlyTest, 'test'), 200, 100);
    const run = evaluate(barsModel, '--data', onlyTest);
    expect(run.status, run.stderr).toBe(0);
    expect(run.json.classes).toEqual(Array.from({ length: 10 }, (_, c) => `c${c}`));
    expect(run.json.total).toBe(100);
    expect(run.json.correct).toBe(barsTest.correct);
    fullTest = run.json;
    // Training needs training images: a clear error, not a class named "test".
    const refused = lenet5Json<TrainJson>('train', '--data', onlyTest, '--epochs', '1', '--out', join(dir, 'x.pth'));
    expect(refused.status).toBe(1);
    expect(refused.json.error?.code).toBe('ERR_LENET5_DATA_NOT_FOUND');
    expect(refused.json.error?.message).toContain('only test/');
  });

  it("a folder holding 3 of the model's 10 classes is scored on them by name", () => {
    const three = join(dir, 'three');
    writeBars(three, 200, 100, (label) => [2, 5, 7].includes(label));
    const run = evaluate(barsModel, '--data', three, '--split', 'all');
    expect(run.status, run.stderr).toBe(0);
    expect(run.json.total).toBe(30);
    // The confusion matrix is over the model's 10 classes; rows 2, 5 and 7 are those of the full test set.
    expect(run.json.confusionMatrix).toHaveLength(10);
    for (let c = 0; c < 10; c++) {
      if ([2, 5, 7].includes(c)) expect(run.json.confusionMatrix[c]).toEqual(fullTest.confusionMatrix[c]);
      else expect(run.json.confusionMatrix[c]).toEqual(new Array(10).fill(0));
    }
    expect(run.json.perClassAccuracy[0]).toBeNull(); // no images of c0: no accuracy, not NaN or 0%
    const text = spawnSync(process.execPath, [cli, 'evaluate', barsModel, '--data', three, '--split', 'all'], {
      cwd: dir,
      encoding: 'utf8',
    });
    expect(text.stdout).toMatch(/ 0 c0 +no images/);
    expect(text.stdout).not.toContain('NaN');
  });

  it('class names the model does not know are refused, listing them', () => {
    const strange = join(dir, 'strange');
    writeBars(strange, 200, 30, (label) => label === 2);
    mkdirSync(join(strange, 'zebra'));
    writeFileSync(join(strange, 'zebra', 'z.png'), readFileSync(join(strange, 'c2', readdirSync(join(strange, 'c2'))[0])));
    const run = evaluate(barsModel, '--data', strange, '--split', 'all');
    expect(run.status).toBe(1);
    expect(run.json.error?.code).toBe('ERR_LENET5_CLASSES');
    expect(run.json.error?.message).toContain('does not know: zebra.');
    expect(run.json.error?.message).toContain("The model's classes: c0, c1");
  });

  it('evaluate --split all scores every image of the data', () => {
    const run = evaluate(barsModel, '--data', bars, '--split', 'all');
    expect(run.status, run.stderr).toBe(0);
    expect(run.json.split).toBe('all');
    expect(run.json.total).toBe(300);
    expect(run.json.confusionMatrix.flat().reduce((a, b) => a + b, 0)).toBe(300);
  });

  it('the report shows the misclassified test images of an image folder', () => {
    // One small step from random weights: most test images are misclassified.
    const report = join(dir, 'bars-report');
    const run = lenet5Json<TrainJson & { test: { correct: number } }>(
      'train',
      '--data',
      bars,
      '--epochs',
      '1',
      '--batch-size',
      '1000',
      '--lr',
      '0.0001',
      '--out',
      join(dir, 'bars-1.pth'),
      '--report',
      report,
    );
    expect(run.status, run.stderr).toBe(0);
    const wrong = run.json.test.total - run.json.test.correct;
    expect(wrong).toBeGreaterThan(0);
    const shown = readdirSync(join(report, 'misclassified'));
    expect(shown).toHaveLength(Math.min(36, wrong));
    const html = readFileSync(join(report, 'index.html'), 'utf8');
    for (const file of shown) expect(html).toContain(`misclassified/${file}`);
  });
});

describe('Dataset gives its images and labels back', () => {
  const { images, labels } = syntheticImages(50, 5, 3);
  const classes = ['a', 'b', 'c', 'd', 'e'];
  const data = Dataset.fromArrays({ images, labels, classes });

  it('length, classes, get(i) and toArrays() return what fromArrays took', async () => {
    expect(data.length).toBe(50);
    expect(data.classes).toEqual(classes);
    const item = data.get(7);
    expect(item.label).toBe(labels[7]);
    expect(item.pixels).toEqual(images.subarray(7 * 784, 8 * 784));
    expect(data.toArrays()).toEqual({ images, labels });
    // A split's items are some of the original ones, and get() agrees with toArrays() there too.
    const [first] = data.split(0.6, { seed: 1 });
    const arrays = first.toArrays();
    expect(first.get(29).pixels).toEqual(arrays.images.subarray(29 * 784, 30 * 784));
    await expectCode(() => data.get(50), 'ERR_LENET5_INVALID_ARGUMENT');
    await expectCode(() => data.get(1.5), 'ERR_LENET5_INVALID_ARGUMENT');
  });

  it('withClasses relabels by name and refuses names it lacks', async () => {
    const relabelled = data.withClasses(['x', 'e', 'a', 'd', 'c', 'b']);
    expect(relabelled.numClasses).toBe(6);
    expect(relabelled.get(0).label).toBe(2); // "a"
    expect(relabelled.get(4).label).toBe(1); // "e"
    const error = await expectCode(() => data.withClasses(['a', 'b']), 'ERR_LENET5_CLASSES');
    expect(error.message).toContain('does not know: c, d, e.');
  });
});
