import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Adam, Dataset, LeNet5, SGD, inspect } from '../src/index.js';
import { expectCode, python, pythons, requirePython, syntheticDataset, syntheticImages, tempDir, writeFloat32 } from './helpers.js';

const dir = tempDir();

function sha256(values: Float32Array): string {
  return createHash('sha256')
    .update(Buffer.from(values.buffer, values.byteOffset, values.byteLength))
    .digest('hex');
}

const input = Float32Array.from(syntheticImages(3, 4, 5).images, (v) => (v / 255 - 0.5) / 0.5);
const inputFile = writeFloat32(join(dir, 'input.f32'), input);

interface CheckState {
  type: string;
  keys: string[];
  shapes: Record<string, number[]>;
  dtypes: Record<string, string>;
  devices: Record<string, string>;
  digests: Record<string, string>;
  logits: number[];
  torch: string;
}

for (const [label, interpreter] of Object.entries(pythons)) {
  describe(`interop with Python PyTorch (${label}: ${interpreter})`, () => {
    requirePython(interpreter);

    it('Node saves -> Python loads with weights_only=True, strict, same tensors bit for bit, equal logits', async () => {
      const model = new LeNet5({ seed: 21 });
      await model.train(syntheticDataset(128, 10), { epochs: 1, batchSize: 32, seed: 1 });
      const path = join(dir, `node-${label}.pth`);
      await model.save(path);
      const result = python<CheckState>(interpreter, 'check-state', path, inputFile);
      expect(result.type).toBe('dict');
      expect(result.keys).toEqual(model.parameters().map((p) => p.name));
      for (const p of model.parameters()) {
        expect(result.shapes[p.name]).toEqual(p.shape);
        expect(result.dtypes[p.name]).toBe('torch.float32');
        expect(result.devices[p.name]).toBe('cpu');
      }
      const mine = await LeNet5.load(path);
      const values = mine.parameterValues();
      model.parameters().forEach((p, i) => expect(result.digests[p.name], p.name).toBe(sha256(values[i])));
      const logits = (await model.predict(input)).logits.flatMap((row) => Array.from(row));
      logits.forEach((v, i) => expect(Math.abs(v - result.logits[i])).toBeLessThan(1e-5));
    });

    it('Python saves a state_dict (OrderedDict with _metadata) -> Node loads, equal predictions', async () => {
      const path = join(dir, `python-${label}.pth`);
      const result = python<{ logits: number[] }>(interpreter, 'save-state', path, '5', inputFile);
      const model = await LeNet5.load(path);
      expect(model.numClasses).toBe(10);
      const logits = (await model.predict(input)).logits.flatMap((row) => Array.from(row));
      logits.forEach((v, i) => expect(Math.abs(v - result.logits[i])).toBeLessThan(1e-5));
      const listed = await inspect(path);
      expect(listed.tensors.map((t) => t.name)).toEqual(model.parameters().map((p) => p.name));
    });

    it('a seeded model starts from the weights PyTorch draws after torch.manual_seed, bit for bit', async () => {
      const path = join(dir, `python-seeded-${label}.pth`);
      python(interpreter, 'save-state', path, '7', inputFile);
      const fromPython = (await LeNet5.load(path)).parameterValues();
      const seeded = new LeNet5({ seed: 7 }).parameterValues();
      seeded.forEach((values, i) => expect(sha256(values), `parameter ${i}`).toBe(sha256(fromPython[i])));
    });

    for (const kind of ['adam', 'sgd'] as const) {
      it(`Python resumes a Node ${kind} checkpoint, and Node resumes Python's: the next step matches`, async () => {
        const { images, labels } = syntheticImages(32, 10, 8);
        const imagesFile = join(dir, 'batch.u8');
        const labelsFile = join(dir, 'labels.u8');
        writeFileSync(imagesFile, images);
        writeFileSync(labelsFile, labels);
        const batch = Dataset.fromArrays({ images, labels, numClasses: 10 });
        const makeOptimizer = () => (kind === 'adam' ? new Adam({ lr: 0.001 }) : new SGD({ lr: 0.01, momentum: 0.9 }));
        const oneStep = { epochs: 1, batchSize: 32, shuffle: false };

        // Node trains 3 steps and saves a checkpoint; Python and Node each take one more step.
        const model = new LeNet5({ seed: 9 });
        const optimizer = makeOptimizer();
        await model.train(batch, { ...oneStep, epochs: 3, optimizer });
        const nodeCheckpoint = join(dir, `node-${kind}-${label}.ckpt.pth`);
        await model.saveCheckpoint(nodeCheckpoint, { optimizer, epoch: 3, loss: 0.5 });
        const pythonNext = join(dir, `python-next-${kind}-${label}.pth`);
        const stepped = python<{ epoch: number; kind: string }>(interpreter, 'step', nodeCheckpoint, imagesFile, labelsFile, pythonNext);
        expect(stepped).toMatchObject({ epoch: 3, kind });
        await model.train(batch, { ...oneStep, optimizer });
        const [nodeLogits, pythonLogits] = await Promise.all([model.predict(input), LeNet5.load(pythonNext).then((m) => m.predict(input))]);
        nodeLogits.logits
          .flatMap((r) => Array.from(r))
          .forEach((v, i) => expect(Math.abs(v - pythonLogits.logits.flatMap((r) => Array.from(r))[i])).toBeLessThan(1e-4));

        // Python trains and checkpoints; Node resumes it and takes the same next step as Python.
        const pythonCheckpoint = join(dir, `python-${kind}-${label}.ckpt.pth`);
        python(interpreter, 'save-checkpoint', pythonCheckpoint, imagesFile, labelsFile, '3', kind);
        const resumed = await LeNet5.loadCheckpoint(pythonCheckpoint);
        expect(resumed.epoch).toBe(3);
        expect(resumed.optimizer).toBeInstanceOf(kind === 'adam' ? Adam : SGD);
        if (kind === 'adam') expect(resumed.optimizer.steps).toBe(3);
        const pythonAfter = join(dir, `python-after-${kind}-${label}.pth`);
        python(interpreter, 'step', pythonCheckpoint, imagesFile, labelsFile, pythonAfter);
        await resumed.model.train(batch, { ...oneStep, optimizer: resumed.optimizer });
        const reference = await (await LeNet5.load(pythonAfter)).predict(input);
        const mine = await resumed.model.predict(input);
        mine.logits
          .flatMap((r) => Array.from(r))
          .forEach((v, i) => expect(Math.abs(v - reference.logits.flatMap((r) => Array.from(r))[i])).toBeLessThan(1e-4));
      });
    }

    it('strips a module. (DataParallel, DDP) or _orig_mod. (torch.compile) prefix from every key and says so', async () => {
      const plainPath = join(dir, `raw-plain-${label}.pth`);
      python(interpreter, 'save-raw', plainPath, 'plain');
      const plain = await LeNet5.load(plainPath);
      expect(plain.loadResult?.strippedPrefix).toBeNull();
      for (const prefix of ['module', '_orig_mod']) {
        const path = join(dir, `raw-${prefix}-${label}.pth`);
        python(interpreter, 'save-raw', path, prefix);
        const model = await LeNet5.load(path);
        expect(model.loadResult?.strippedPrefix).toBe(`${prefix}.`);
        expect(model.parameterValues()).toEqual(plain.parameterValues());
        const again = new LeNet5({ seed: 3 });
        expect(await again.loadStateDict(path)).toEqual({
          missingKeys: [],
          unexpectedKeys: [],
          mismatchedKeys: [],
          strippedPrefix: `${prefix}.`,
        });
        expect(again.parameterValues()).toEqual(plain.parameterValues());
      }
    });

    it('reads views with offsets and strides, shared storages, and float64/float16/bfloat16 weights: every value as PyTorch reads it', async () => {
      for (const kind of ['shared', 'float64', 'float16', 'bfloat16']) {
        const path = join(dir, `raw-${kind}-${label}.pth`);
        const result = python<{ values: Record<string, number[]> }>(interpreter, 'save-raw', path, kind);
        const model = await LeNet5.load(path);
        const values = model.parameterValues();
        model.parameters().forEach((p, i) => expect(Array.from(values[i]), `${kind} ${p.name}`).toEqual(result.values[p.name]));
      }
    });
  });
}

describe('.pth loading: strictness, checkpoints, inspection', () => {
  it('reports missing, unexpected and mis-shaped keys together (strict), and loads the rest non-strict', async () => {
    const path = join(dir, 'classes3.pth');
    await new LeNet5({ numClasses: 3, seed: 1 }).save(path);
    const model = new LeNet5({ numClasses: 10, seed: 2 });
    const error = await expectCode(model.loadStateDict(path), 'ERR_LENET5_STATE_DICT');
    expect(error.message).toContain(
      'size mismatch for fc3.weight: copying a param with shape [3, 84] from checkpoint, the shape in current model is [10, 84]',
    );
    expect(error.message).toContain('size mismatch for fc3.bias');
    const result = await model.loadStateDict(path, { strict: false });
    expect(result.mismatchedKeys).toEqual(['fc3.weight', 'fc3.bias']);
    expect(result.missingKeys).toEqual([]);
    const loaded = await LeNet5.load(path);
    expect(loaded.numClasses).toBe(3);
  });

  it('saves checkpoints in PyTorch layout and inspects them', async () => {
    const model = new LeNet5({ seed: 1 });
    const optimizer = new Adam({ amsgrad: true });
    await model.train(syntheticDataset(64, 10), { epochs: 1, batchSize: 32, optimizer });
    const path = join(dir, 'checkpoint.pth');
    await model.saveCheckpoint(path, { optimizer, epoch: 1, loss: 1.25 });
    const listed = await inspect(path);
    expect(listed.scalars).toMatchObject({ epoch: 1, loss: 1.25 });
    expect(listed.format).toMatch(/PyTorch zip/);
    const names = listed.tensors.map((t) => t.name);
    expect(names).toContain('model_state_dict.conv1.weight');
    expect(names).toContain('optimizer_state_dict.state.0.exp_avg');
    expect(names).toContain('optimizer_state_dict.state.9.max_exp_avg_sq');
    expect(listed.tensors.find((t) => t.name === 'optimizer_state_dict.state.0.step')).toEqual({
      name: 'optimizer_state_dict.state.0.step',
      dtype: 'float32',
      shape: [],
    });
    const loaded = await LeNet5.load(path);
    expect((await loaded.predict(syntheticImages(1).images)).logits).toEqual((await model.predict(syntheticImages(1).images)).logits);
  });

  it('writes atomically: a failed save rejects with the OS error and leaves the existing file intact', async () => {
    const folder = join(dir, 'locked');
    mkdirSync(folder);
    const path = join(folder, 'model.pth');
    await new LeNet5({ seed: 1 }).save(path);
    const before = readFileSync(path);
    // Make the folder refuse new files: immutable for root (who ignores permissions), read-only otherwise.
    const asRoot = process.getuid?.() === 0;
    const lock = (on: boolean) => (asRoot ? execFileSync('chattr', [on ? '+i' : '-i', folder]) : chmodSync(folder, on ? 0o500 : 0o700));
    lock(true);
    try {
      const error = await expectCode(new LeNet5({ seed: 2 }).save(path), 'ERR_LENET5_IO');
      expect(error.message).toMatch(/EPERM|EACCES/);
      expect(error.message).toContain('Any existing file there is unchanged');
    } finally {
      lock(false);
    }
    expect(readFileSync(path).equals(before)).toBe(true);
    expect(readdirSync(folder).sort()).toEqual(['model.json', 'model.pth']);
  });
});
