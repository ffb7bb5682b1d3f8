import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { datasets } from '../src/index.js';
import { expectCode, syntheticImages, tempDir } from './helpers.js';

const dir = tempDir();

function idxImages(count: number, pixels: Uint8Array, rows = 28, cols = 28): Buffer {
  const header = Buffer.alloc(16);
  header.writeUInt32BE(0x00000803, 0);
  header.writeUInt32BE(count, 4);
  header.writeUInt32BE(rows, 8);
  header.writeUInt32BE(cols, 12);
  return Buffer.concat([header, Buffer.from(pixels)]);
}

function idxLabels(labels: Uint8Array): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(0x00000801, 0);
  header.writeUInt32BE(labels.length, 4);
  return Buffer.concat([header, Buffer.from(labels)]);
}

function write(name: string, data: Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, data);
  return path;
}

describe('IDX reader', () => {
  const { images, labels } = syntheticImages(20, 10, 3);

  it('reads plain and gzipped files, and finds the standard MNIST names in a folder', async () => {
    const data = await datasets.idx(write('i.idx3', idxImages(20, images)), write('l.idx1', idxLabels(labels)));
    expect(data.size).toBe(20);
    expect(data.numClasses).toBe(10);
    const folder = join(dir, 'mnist');
    (await import('node:fs')).mkdirSync(folder);
    writeFileSync(join(folder, 'train-images-idx3-ubyte.gz'), gzipSync(idxImages(20, images)));
    writeFileSync(join(folder, 'train-labels-idx1-ubyte'), idxLabels(labels));
    const train = await datasets.mnist(folder, 'train');
    expect(train.size).toBe(20);
    expect(train.classes?.[3]).toBe('3');
    const missing = await expectCode(datasets.mnist(folder, 'test'), 'ERR_LENET5_DATA_NOT_FOUND');
    expect(missing.message).toContain('t10k-images-idx3-ubyte');
    expect(missing.message).toContain('apt-get install dataset-fashion-mnist');
  });

  it('rejects broken files with errors naming the file and the problem', async () => {
    const labelsFile = write('ok-labels', idxLabels(labels));
    const cases: [string, Buffer, RegExp][] = [
      ['bad-magic', Buffer.concat([Buffer.from([1, 2, 8, 3]), idxImages(20, images).subarray(4)]), /magic number/],
      ['bad-type', Buffer.concat([Buffer.from([0, 0, 0x0d, 3]), idxImages(20, images).subarray(4)]), /element type 0x0d/],
      ['labels-as-images', idxLabels(labels), /has 1 dimension\(s\); expected an image file/],
      ['truncated', idxImages(20, images).subarray(0, 5000), /is 5000 bytes long, but its header \(20 x 28 x 28\) says 15696/],
      ['too-long', Buffer.concat([idxImages(20, images), Buffer.alloc(3)]), /truncated or corrupt/],
      ['wrong-size', idxImages(20, images.subarray(0, 20 * 16 * 16), 16, 16), /16x16 images; LeNet-5 here expects 28x28/],
      ['short-header', Buffer.from([0, 0]), /too short for an IDX header/],
      ['bad-gzip', Buffer.from([0x1f, 0x8b, 1, 2, 3]), /not a valid gzip file/],
    ];
    for (const [name, bytes, message] of cases) {
      const file = write(name, bytes);
      const error = await expectCode(datasets.idx(file, labelsFile), 'ERR_LENET5_DATA', name);
      expect(error.message, name).toContain(file);
      expect(error.message, name).toMatch(message);
    }
  });

  it('checks that counts match and labels fit the classes', async () => {
    const imagesFile = write('imgs', idxImages(20, images));
    const fewer = await expectCode(datasets.idx(imagesFile, write('fewer', idxLabels(labels.subarray(0, 19)))), 'ERR_LENET5_DATA');
    expect(fewer.message).toMatch(/holds 20 images but .* holds 19 labels/);
    const big = Uint8Array.from(labels);
    big[7] = 10;
    const outOfRange = await expectCode(datasets.idx(imagesFile, write('big', idxLabels(big))), 'ERR_LENET5_DATA');
    expect(outOfRange.message).toContain('label 10 at index 7 is not below the number of classes (10)');
  });
});
