#!/usr/bin/env node
// Measures which preprocessing (--fit, --invert) suits which kind of image folder, to choose the
// default by measurement. It exports Fashion-MNIST (Debian's IDX files) as image folders of four
// kinds under --dir (never inside the repository), trains `lenet5 train` on each under each --fit
// (and with --invert for dark-on-light images), with every other option at its default (--epochs too,
// unless given), and prints a Markdown table of test accuracies followed by the command of every cell.
// The "defaults" column passes neither --fit nor --invert.
//
//   node scripts/measure-fit.mjs [--dir /tmp/lenet5-measure-fit] [--epochs N] [--kinds png28,jpeg-rgb,drawings,scattered]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { FASHION_MNIST_CLASSES, fashionMnistDir, findIdxFile } from '../dist/data/datasets.js';
import { readIdxImages, readIdxLabels } from '../dist/data/idx.js';
import { rng } from './rng.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist/cli/main.js');
const { values: args } = parseArgs({
  options: {
    dir: { type: 'string', default: '/tmp/lenet5-measure-fit' },
    epochs: { type: 'string' },
    kinds: { type: 'string', default: 'png28,jpeg-rgb,drawings,scattered' },
    'train-per-class': { type: 'string', default: '300' },
    'test-per-class': { type: 'string', default: '100' },
  },
});
const FITS = ['mnist', 'stretch', 'pad'];

/** 28x28 gray (light object on black) resized to `side` x `side`. */
async function scaled(pixels, side) {
  return sharp(Buffer.from(pixels), { raw: { width: 28, height: 28, channels: 1 } })
    .resize(side, side, { kernel: 'lanczos3' })
    .toColourspace('b-w') // one byte per pixel (sharp would write sRGB)
    .raw()
    .toBuffer();
}

/**
 * Each kind turns one 28x28 Fashion-MNIST image (light on black) into an image file, as a user's
 * own folder might hold it: `extension`, `darkOnLight` (whether --invert applies), and `write`.
 */
const KINDS = {
  // The dataset exported as it is: 28x28 grayscale PNG.
  png28: {
    what: '28x28 grayscale PNG (the dataset exported as it is)',
    extension: 'png',
    darkOnLight: false,
    write: (pixels, file) =>
      sharp(Buffer.from(pixels), { raw: { width: 28, height: 28, channels: 1 } })
        .png()
        .toFile(file),
  },
  // A photo-like RGB JPEG of another size and shape: the object scaled to 80x80, tinted, at a
  // random place in a 100x80 frame on a dark coloured background.
  'jpeg-rgb': {
    what: '100x80 RGB JPEG, tinted object at a random place on a dark background',
    extension: 'jpg',
    darkOnLight: false,
    write: async (pixels, file, random) => {
      const object = await scaled(pixels, 80);
      const tint = [0.5 + random() * 0.5, 0.5 + random() * 0.5, 0.5 + random() * 0.5];
      const background = [random() * 40, random() * 40, random() * 40];
      const left = Math.floor(random() * 21);
      const rgb = Buffer.alloc(100 * 80 * 3);
      for (let y = 0; y < 80; y++)
        for (let x = 0; x < 100; x++) {
          const u = x - left;
          const a = u >= 0 && u < 80 ? object[y * 80 + u] / 255 : 0;
          for (let c = 0; c < 3; c++) rgb[(y * 100 + x) * 3 + c] = Math.round(background[c] * (1 - a) + 255 * tint[c] * a);
        }
      return sharp(rgb, { raw: { width: 100, height: 80, channels: 3 } })
        .jpeg({ quality: 90 })
        .toFile(file);
    },
  },
  // Dark-on-light drawings filling their frame: inverted, 56x56 PNG.
  drawings: {
    what: '56x56 dark-on-light PNG (inverted), object filling the frame',
    extension: 'png',
    darkOnLight: true,
    write: async (pixels, file) => {
      const object = await scaled(pixels, 56);
      return sharp(Buffer.from(object.map((v) => 255 - v)), { raw: { width: 56, height: 56, channels: 1 } })
        .png()
        .toFile(file);
    },
  },
  // Dark-on-light drawings with margins: the object 28 to 56 px at a random place in a white 96x96 page.
  scattered: {
    what: '96x96 dark-on-light PNG, object 28-56 px at a random place',
    extension: 'png',
    darkOnLight: true,
    write: async (pixels, file, random) => {
      const side = 28 + Math.floor(random() * 29);
      const object = await scaled(pixels, side);
      const left = Math.floor(random() * (96 - side + 1));
      const top = Math.floor(random() * (96 - side + 1));
      const page = Buffer.alloc(96 * 96, 255);
      for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) page[(y + top) * 96 + x + left] = 255 - object[y * side + x];
      return sharp(page, { raw: { width: 96, height: 96, channels: 1 } })
        .png()
        .toFile(file);
    },
  },
};

/** The first `perClass` images of each class from an IDX pair. */
async function pickPerClass(split, perClass) {
  const dir = fashionMnistDir();
  const prefix = split === 'train' ? 'train' : 't10k';
  const imagesFile = findIdxFile(dir, `${prefix}-images-idx3-ubyte`);
  const labelsFile = findIdxFile(dir, `${prefix}-labels-idx1-ubyte`);
  if (!imagesFile || !labelsFile)
    throw new Error(`No Fashion-MNIST ${split} files in ${dir} (sudo apt-get install dataset-fashion-mnist).`);
  const { pixels } = await readIdxImages(imagesFile);
  const labels = await readIdxLabels(labelsFile);
  const taken = new Array(FASHION_MNIST_CLASSES.length).fill(0);
  const picked = [];
  for (let i = 0; i < labels.length; i++) {
    if (taken[labels[i]] >= perClass) continue;
    taken[labels[i]]++;
    picked.push({ index: i, label: labels[i], pixels: pixels.subarray(i * 784, (i + 1) * 784) });
  }
  return picked;
}

/** DIR/<kind>/{train,test}/<class>/<index>.<ext>; written once (a marker file says it is complete). */
async function exportKind(name, kind, splits) {
  const target = join(args.dir, 'data', name);
  const done = join(target, '.complete');
  if (existsSync(done)) return target;
  const random = rng(1);
  for (const [split, images] of Object.entries(splits)) {
    for (const className of FASHION_MNIST_CLASSES) mkdirSync(join(target, split, className.replace('/', '-')), { recursive: true });
    for (const { index, label, pixels } of images) {
      const className = FASHION_MNIST_CLASSES[label].replace('/', '-');
      await kind.write(pixels, join(target, split, className, `${index}.${kind.extension}`), random);
    }
  }
  writeFileSync(done, '');
  return target;
}

/** Runs lenet5 train with `flags` and returns [test accuracy, the command]. */
function train(data, name, flags) {
  const out = join(args.dir, 'models', `${name}${flags.join('').replace(/[^a-z]/g, '-')}.pth`);
  const epochs = args.epochs ? ['--epochs', args.epochs] : [];
  const argv = ['train', '--data', data, ...flags, ...epochs, '--no-cache', '--out', out, '--json'];
  const result = JSON.parse(execFileSync(process.execPath, [cli, ...argv], { encoding: 'utf8', maxBuffer: 64 << 20 }));
  return [result.test.accuracy, `lenet5 ${argv.filter((a) => a !== '--json').join(' ')}`];
}

mkdirSync(join(args.dir, 'models'), { recursive: true });
const splits = {
  train: await pickPerClass('train', Number(args['train-per-class'])),
  test: await pickPerClass('test', Number(args['test-per-class'])),
};
const rows = [];
const commands = [];
for (const name of args.kinds.split(',')) {
  const kind = KINDS[name];
  if (!kind) throw new Error(`Unknown kind ${name}; expected one of ${Object.keys(KINDS).join(', ')}`);
  const data = await exportKind(name, kind, splits);
  for (const invert of kind.darkOnLight ? [false, true] : [false]) {
    const cells = [];
    // "defaults": no --fit and no --invert, whatever the package's defaults are at the time.
    const variants = invert ? FITS.map((fit) => ['--fit', fit, '--invert']) : [[], ...FITS.map((fit) => ['--fit', fit])];
    for (const flags of variants) {
      const [accuracy, command] = train(data, name, flags);
      cells.push(`${(accuracy * 100).toFixed(1)}%`);
      commands.push(command);
      process.stderr.write(`${(accuracy * 100).toFixed(2)}%  ${command}\n`);
    }
    rows.push(`| ${name}${invert ? ' + `--invert`' : ''} | ${kind.what} | ${invert ? '' : cells.shift()} | ${cells.join(' | ')} |`);
  }
}
const perClass = `${args['train-per-class']}/${args['test-per-class']} per class`;
console.log(`Test accuracy, Fashion-MNIST exported as image folders (${perClass}), ${args.epochs ?? 'the default'} epochs:\n`);
console.log('| folder | images | defaults | `--fit mnist` | `--fit stretch` | `--fit pad` |');
console.log('|---|---|---|---|---|---|');
for (const row of rows) console.log(row);
console.log('\nCommands, in the order of the cells (left to right, top to bottom):\n');
for (const command of commands) console.log(`    ${command}`);
