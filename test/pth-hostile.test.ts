/**
 * Issue #21 (hardening II), the file-format and native items: .pth files whose pickle shares
 * references (a DAG), names one storage thousands of times, or holds dtypes and names this reader
 * must refuse or print with care; optimizers that are not Adam or SGD; devices and FIFOs as input
 * files; typed arrays that lie about their length; thread counts. Fixtures come from the .venv's
 * PyTorch (test/python/bad_files.py) or are made here.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Adam, LeNet5, datasets, inspect, threads } from '../src/index.js';
import { stateDictOf } from '../src/pth/load.js';
import { parsePth } from '../src/pth/read.js';
import { expectCode, pythons, requirePython, root, syntheticDataset, tempDir } from './helpers.js';

const dir = tempDir();
const cli = join(root, 'dist/cli/main.js');
requirePython(pythons.current);

const OPTIMIZERS = ['RMSprop', 'Adamax', 'RAdam', 'NAdam', 'Adagrad', 'AdamW'];
const DTYPES = ['complex64', 'uint16', 'float8_e4m3fn'];
// Every fixture from one Python start (importing torch takes seconds).
execFileSync(
  pythons.current,
  [
    join(root, 'test/python/bad_files.py'),
    '--many',
    dir,
    ...['dag', 'amp', 'amp-deflated', 'amp-optimizer', 'strided-views', 'escape-names', 'epoch-string', 'epoch-huge', ...DTYPES],
    ...OPTIMIZERS.map((name) => `optimizer-${name}`),
  ],
  { stdio: 'pipe', env: { ...process.env, PYTHONWARNINGS: 'ignore' } },
);
const fixture = (kind: string) => join(dir, `${kind}.pth`);

function lenet5(args: string[], env: NodeJS.ProcessEnv = process.env) {
  return spawnSync(process.execPath, [cli, ...args], { cwd: dir, encoding: 'utf8', timeout: 60_000, env });
}

describe('High 1: shared references are walked once', () => {
  it('inspect lists the 25-level DAG of (a, a) tuples as one tensor and 25 shared references, in the CLI too', async () => {
    const dag = fixture('dag');
    // Before: 40 s, 4.4 GB, then V8's heap out-of-memory abort (2**25 paths walked as a tree).
    const human = lenet5(['inspect', dag]);
    expect(human.status, human.stderr).toBe(0);
    expect(human.stdout).toContain('1 tensors, 25 shared references');
    const json = lenet5(['inspect', dag, '--json']);
    expect(json.status, json.stderr).toBe(0);
    const listed = JSON.parse(json.stdout) as { tensors: { name: string }[]; shared: { name: string; sameAs: string }[] };
    expect(listed.tensors.map((t) => t.name)).toEqual([`x${'.0'.repeat(26)}`]);
    expect(listed.shared).toHaveLength(25);
    expect(listed.shared[0]).toEqual({ name: `x${'.0'.repeat(24)}.1`, sameAs: `x${'.0'.repeat(25)}` });
    const inProcess = await inspect(dag);
    expect(inProcess.shared).toHaveLength(25);
    await expectCode(LeNet5.load(dag), 'ERR_LENET5_STATE_DICT');
  });
});

describe('High 2: memory is bounded by what is used, not by how often the file names it', () => {
  it('3000 keys of one 4 MB storage (stored and deflated) and an optimizer state naming it 6000 times load within a memory limit', () => {
    const files = ['amp', 'amp-deflated', 'amp-optimizer'].map(fixture);
    // Before: every key became its own 4 MB Float32Array (12 GB, 24 GB for the optimizer state).
    // The child runs under an address-space limit of 8 GB, so that failure is a dead child here.
    const child = spawnSync(
      '/bin/sh',
      ['-c', `ulimit -v ${8 << 20}; exec "$0" "$@"`, process.execPath, join(root, 'test/children/load-amplified.mjs'), ...files],
      {
        encoding: 'utf8',
        timeout: 120_000,
        env: { ...process.env, LENET5_CUDA: '0' },
      },
    );
    expect(child.status, child.stderr).toBe(0);
    const { results, maxRssMb } = JSON.parse(child.stdout) as { results: Record<string, Record<string, string>>; maxRssMb: number };
    const [amp, deflated, optimizer] = files.map((file) => results[file]);
    for (const plain of [amp, deflated]) {
      expect(plain).toEqual({ load: 'ERR_LENET5_STATE_DICT', loadCheckpoint: 'ERR_LENET5_STATE_DICT', inspect: '3000 tensors' });
    }
    expect(optimizer).toEqual({ load: 'loaded', loadCheckpoint: 'ERR_LENET5_STATE_DICT', inspect: '9010 tensors' });
    expect(maxRssMb).toBeLessThan(1000);
  });

  it('the model error lists a few of the 3000 keys, not all of them', async () => {
    const error = await expectCode(LeNet5.load(fixture('amp')), 'ERR_LENET5_STATE_DICT');
    expect(error.message).toContain('k0, k1, k2');
    expect(error.message).toContain('and 2980 more');
    expect(error.message.length).toBeLessThan(1000);
  });

  it("a file's tensors are materialised within a stated budget, else ERR_LENET5_PTH_TOO_LARGE names the file", async () => {
    const bytes = readFileSync(fixture('amp'));
    // Contiguous float32 views of one storage share it: 3000 of them cost nothing against a 1 MiB budget.
    const shared = stateDictOf(await parsePth('amp.pth', bytes, { recordBytes: 1 << 30, materialisedBytes: 1 << 20 }));
    expect(shared.tensors.reduce((n, t) => n + t.values.length, 0)).toBe(3000 * (1 << 20));
    // Records that inflate past their bound are refused before they are read.
    const error = await expectCode(
      parsePth('amp.pth', bytes, { recordBytes: 1 << 20, materialisedBytes: 1 << 30 }),
      'ERR_LENET5_PTH_TOO_LARGE',
    );
    expect(error.message).toContain('amp.pth: its records inflate to more than 1048576 bytes');
  });

  it('views that need copies are charged to the budget', async () => {
    const bytes = readFileSync(fixture('strided-views'));
    const file = await parsePth('strided.pth', bytes, { recordBytes: 1 << 30, materialisedBytes: 1 << 20 });
    const { tensors } = stateDictOf(file);
    expect(tensors).toHaveLength(100);
    // Each view holds every other element of a 64 KiB storage: 32 KiB each as float32, 32 fit in 1 MiB.
    for (const tensor of tensors.slice(0, 32)) expect(tensor.values).toHaveLength(8192);
    const error = await expectCode(() => tensors[32].values, 'ERR_LENET5_PTH_TOO_LARGE');
    expect(error.message).toMatch(/^strided\.pth: its tensors take more memory than this reader allows \(1 MiB as float32\)/);
  });
});

describe('Low: dtypes, names and files', () => {
  for (const dtype of DTYPES) {
    it(`a ${dtype} tensor is an unsupported dtype, not an unsafe file`, async () => {
      const error = await expectCode(inspect(fixture(dtype)), 'ERR_LENET5_PTH_FORMAT');
      expect(error.message).toContain(`Unsupported dtype ${dtype}`);
    });
  }

  it('terminal escape codes in tensor names are printed escaped', () => {
    const run = lenet5(['inspect', fixture('escape-names')]);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).not.toContain('\x1b');
    expect(run.stdout).not.toContain('\x07');
    expect(run.stdout).toContain('\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31mred');
  });

  it('a device or a FIFO is refused as a model or IDX file, at once', async () => {
    const fifo = join(dir, 'fifo.pth');
    execFileSync('mkfifo', [fifo]);
    const soon = <T>(promise: Promise<T>) =>
      Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error('still waiting after 10 s')), 10_000))]);
    for (const path of ['/dev/zero', fifo]) {
      const error = await expectCode(soon(LeNet5.load(path)), 'ERR_LENET5_IO', path);
      expect(error.message).toContain('it is not a regular file');
      await expectCode(soon(datasets.idx(path, path)), 'ERR_LENET5_IO', path);
    }
  });
});

describe('Low: checkpoint values', () => {
  for (const [kind, shown] of [
    ['epoch-string', '"one"'],
    ['epoch-huge', '1e+30'],
  ]) {
    it(`an epoch of ${shown} is refused, naming the file, instead of resuming from 0`, async () => {
      const path = fixture(kind);
      const error = await expectCode(LeNet5.loadCheckpoint(path), 'ERR_LENET5_STATE_DICT');
      expect(error.message).toContain(`${path}: the checkpoint's epoch is ${shown}; expected the number of epochs completed`);
    });
  }
});

describe('Low: errors the caller can act on', () => {
  it('an error thrown in onBatchEnd rejects train() with that same error, not ERR_LENET5_NATIVE', async () => {
    const mine = new RangeError('stop here');
    const model = new LeNet5({ numClasses: 4, seed: 1 });
    const onBatchEnd = () => {
      throw mine;
    };
    await expect(model.train(syntheticDataset(64, 4), { epochs: 1, batchSize: 16, onBatchEnd })).rejects.toBe(mine);
    model.dispose();
  });

  it("LibTorch's failed CPU allocation is ERR_LENET5_OUT_OF_MEMORY, not ERR_LENET5_TORCH", async () => {
    // fc3 for 2**40 classes is 369 TB: more than a 47-bit address space, so no overcommit setting lets it succeed.
    const error = await expectCode(() => new LeNet5({ numClasses: 2 ** 40 }), 'ERR_LENET5_OUT_OF_MEMORY');
    expect(error.message).toMatch(/memory/);
  });
});

describe('Low: extra checkpoint values', () => {
  it('a bigint outside 64 bits is refused instead of being saved as 0; one inside is saved exactly', async () => {
    const model = new LeNet5({ seed: 1 });
    const optimizer = new Adam();
    const path = join(dir, 'extra.pth');
    const error = await expectCode(
      model.saveCheckpoint(path, { optimizer, epoch: 1, extra: { big: 2n ** 70n } }),
      'ERR_LENET5_INVALID_ARGUMENT',
    );
    expect(error.message).toContain('extra.big');
    await model.saveCheckpoint(path, { optimizer, epoch: 1, extra: { big: 2n ** 62n, small: -(2n ** 63n) } });
    expect((await inspect(path)).scalars).toMatchObject({ big: String(2n ** 62n), small: String(-(2n ** 63n)) });
    model.dispose();
  });
});

describe('Medium 10: optimizers are recognised by their whole set of keys', () => {
  for (const name of OPTIMIZERS) {
    it(`a ${name} checkpoint is refused by name, not resumed as Adam or SGD`, async () => {
      const path = fixture(`optimizer-${name}`);
      const error = await expectCode(LeNet5.loadCheckpoint(path), 'ERR_LENET5_STATE_DICT');
      expect(error.message).toContain(`${path}: the checkpoint's optimizer_state_dict is`);
      // PyTorch 2.x's AdamW is Adam's keys with decoupled_weight_decay=True.
      expect(error.message).toContain(name === 'AdamW' ? 'is AdamW (decoupled weight decay)' : `is torch.optim.${name}'s`);
    });
  }
});

describe('Medium 4: native code sizes typed arrays by their buffer', () => {
  it('a redefined length or a lying subclass is ERR_LENET5_SHAPE in predict, Dataset.fromArrays, lossAndGradients, setParameterValues', () => {
    const child = spawnSync(process.execPath, [join(root, 'test/children/lying-lengths.mjs')], { encoding: 'utf8', timeout: 60_000 });
    // Before: SIGSEGV (a read 300 MB past a 784-byte buffer), or 16 "predictions" from heap memory.
    expect(child.signal, child.stderr).toBeNull();
    expect(child.status, child.stderr).toBe(0);
    const results = JSON.parse(child.stdout) as Record<string, string>;
    expect(results).toEqual({
      predictRedefinedLength: 'ERR_LENET5_SHAPE',
      predictFloatRedefinedLength: 'ERR_LENET5_SHAPE',
      predictSubclassLength: 'ERR_LENET5_SHAPE',
      datasetRedefinedLength: 'ERR_LENET5_SHAPE',
      lossAndGradientsRedefinedLength: 'ERR_LENET5_SHAPE',
      setParameterValuesRedefinedLength: 'ERR_LENET5_SHAPE',
    });
  });
});

describe('Medium 5: thread counts', () => {
  it('threads.set takes 1 to 1024', async () => {
    const before = threads.get();
    for (const count of [0, 2 ** 31, 1e10, 2 ** 32 + 1, 60000, 1025, 1.5]) {
      const error = await expectCode(() => threads.set(count), 'ERR_LENET5_INVALID_ARGUMENT', String(count));
      expect(error.message).toContain('integer from 1 to 1024 for threads');
    }
    expect(threads.get()).toBe(before);
  });

  it('lenet5 info says what is wrong with LENET5_THREADS instead of aborting', () => {
    for (const value of ['2147483648', '60000', 'many']) {
      const run = lenet5(['info'], { ...process.env, LENET5_THREADS: value });
      expect(run.signal, value).toBeNull();
      expect(run.status, value).toBe(2);
      expect(run.stderr).toContain(`Expected integer from 1 to 1024 for LENET5_THREADS (unset it to use every core) but received`);
    }
    const good = lenet5(['info', '--json'], { ...process.env, LENET5_THREADS: '1' });
    expect(good.status, good.stderr).toBe(0);
    expect((JSON.parse(good.stdout) as { threads: number }).threads).toBe(1);
  });
});
