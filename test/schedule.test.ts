/** Learning-rate schedules, early stopping and save-best, checked against PyTorch's own classes. */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  Adam,
  CosineAnnealingLR,
  EarlyStopping,
  LeNet5,
  ReduceLROnPlateau,
  StepLR,
  schedulerFromState,
  type LRScheduler,
} from '../src/index.js';
import { pickleState } from '../src/schedule.js';
import { pythons, requirePython, root, syntheticDataset, syntheticImages, tempDir, lenet5Json as runCli } from './helpers.js';

const dir = tempDir();
const cli = join(root, 'dist/cli/main.js');
requirePython(pythons.current);

type Typed = Record<string, [unknown, string]>;

interface PythonSchedule {
  lrs: number[];
  state: Typed;
  early_stopping?: Record<string, number>;
  cases: { lrs: number[]; state: Typed }[];
}

function pyschedule(...args: string[]): PythonSchedule {
  const out = execFileSync(pythons.current, [join(root, 'test/python/schedule.py'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, PYTHONWARNINGS: 'ignore' },
  });
  return JSON.parse(out.trim().split('\n').pop() as string);
}

/** What Python's pickle would hold for this package's state_dict: value and type name per key. */
function typedState(scheduler: LRScheduler): Typed {
  const plain = (v: unknown): unknown => (v === Infinity ? 'inf' : typeof v === 'bigint' ? Number(v) : Array.isArray(v) ? v.map(plain) : v);
  const type = (v: unknown) =>
    typeof v === 'bigint'
      ? 'int'
      : typeof v === 'number'
        ? 'float'
        : typeof v === 'string'
          ? 'str'
          : typeof v === 'boolean'
            ? 'bool'
            : Array.isArray(v)
              ? 'list'
              : 'NoneType';
  return Object.fromEntries(
    Object.entries(pickleState(scheduler.stateDict(), scheduler.intKeys)).map(([k, v]) => [k, [plain(v), type(v)]]),
  );
}

function lenet5Json<T = Record<string, unknown>>(...args: string[]) {
  return runCli<T>(dir, args);
}

interface TrainJson {
  epochs: { epoch: number; lr: number; valLoss: number; valAccuracy: number }[];
  earlyStopping: { stoppedEpoch: number | null; reason: string | null } | null;
  best: { epoch: number; valAccuracy: number } | null;
  test: { accuracy: number };
  error?: { code: string; message: string };
}

// A validation loss that falls, stalls, wobbles and falls again: every branch of ReduceLROnPlateau.
const METRICS = [1, 0.9, 0.9, 0.95, 0.91, 0.85, 0.85, 0.86, 0.87, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.79999, 0.8, 0.7, 0.8];

describe("learning-rate schedules equal PyTorch's over 20 epochs", () => {
  const cases: [string, Record<string, number>, (o: Adam) => LRScheduler][] = [
    ['step', { step_size: 3, gamma: 0.5, lr: 0.01 }, (o) => new StepLR(o, { stepSize: 3, gamma: 0.5 })],
    ['cosine', { T_max: 20, lr: 0.001 }, (o) => new CosineAnnealingLR(o, { tMax: 20 })],
    ['cosine', { T_max: 7, eta_min: 0.0001, lr: 0.01 }, (o) => new CosineAnnealingLR(o, { tMax: 7, etaMin: 0.0001 })],
    ['plateau', { patience: 2, factor: 0.5, lr: 0.01 }, (o) => new ReduceLROnPlateau(o, { patience: 2, factor: 0.5 })],
    [
      'plateau',
      { patience: 0, factor: 0.3, cooldown: 1, min_lr: 0.0005, lr: 0.01 },
      (o) => new ReduceLROnPlateau(o, { patience: 0, factor: 0.3, cooldown: 1, minLr: 0.0005 }),
    ],
  ];
  // One Python process for all cases: importing torch takes seconds.
  const python = pyschedule('states', JSON.stringify(cases.map(([kind, args]) => [kind, args])), JSON.stringify(METRICS)).cases;
  for (const [i, [kind, args, make]] of cases.entries()) {
    it(`${kind} ${JSON.stringify(args)}: the same learning rate every epoch, and the same state_dict`, () => {
      const optimizer = new Adam({ lr: args.lr });
      const scheduler = make(optimizer);
      const lrs: number[] = [];
      for (const metric of METRICS) {
        lrs.push(optimizer.lr);
        scheduler.step(metric);
      }
      expect(lrs).toEqual(python[i].lrs);
      expect(new Set(lrs).size).toBeGreaterThan(2); // the schedule did change the rate
      expect(typedState(scheduler)).toEqual(python[i].state);
    });
  }

  it('--lr-schedule refuses what it cannot parse, showing the forms it takes', () => {
    const result = spawnSync(process.execPath, [cli, 'train', '--lr-schedule', 'step:5', '--data', join(dir, 'none')], {
      encoding: 'utf8',
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('step:STEP_SIZE:GAMMA, cosine[:T_MAX[:ETA_MIN]] or plateau:PATIENCE:FACTOR');
  });
});

describe('training with schedules, early stopping and save-best', () => {
  const { images, labels } = syntheticImages(240, 4, 7);
  const header = Array.from({ length: 784 }, (_, i) => `pixel${i}`).join(',');
  const csv = join(dir, 'train.csv');
  writeFileSync(
    csv,
    `label,${header}\n${Array.from({ length: 240 }, (_, n) => `${labels[n]},${Array.from(images.subarray(n * 784, (n + 1) * 784)).join(',')}`).join('\n')}\n`,
  );
  const train = (...args: string[]) => lenet5Json<TrainJson>('train', '--data', csv, '--batch-size', '16', '--device', 'cpu', ...args);

  it('one epoch per call (as schedules run) trains bit-identically to one call of N epochs', async () => {
    const data = syntheticDataset(300, 4, 3);
    const [fit, validation] = data.split(0.8, { seed: 1 });
    const paths: string[] = [];
    for (const perEpoch of [false, true]) {
      const model = new LeNet5({ numClasses: 4, seed: 2 });
      const optimizer = new Adam({ lr: 0.002 });
      await model.train(fit, {
        epochs: 3,
        batchSize: 32,
        seed: 4,
        optimizer,
        validation,
        earlyStopping: perEpoch ? new EarlyStopping({ patience: 99 }) : undefined,
      });
      paths.push(join(dir, `same-${perEpoch}.pth`));
      await model.save(paths[paths.length - 1]);
      model.dispose();
    }
    expect(readFileSync(paths[1]).equals(readFileSync(paths[0]))).toBe(true);
  });

  it("a schedule sets each epoch's learning rate, shown in the history and the epoch line", () => {
    const run = train('--epochs', '3', '--lr', '0.004', '--lr-schedule', 'step:1:0.5', '--out', join(dir, 'step.pth'));
    expect(run.status, run.stderr).toBe(0);
    expect(run.json.epochs.map((e) => e.lr)).toEqual([0.004, 0.002, 0.001]);
    const lines = spawnSync(
      process.execPath,
      [cli, 'train', '--data', csv, '--epochs', '2', '--lr-schedule', 'cosine', '--out', join(dir, 'c.pth')],
      { cwd: dir, encoding: 'utf8' },
    );
    expect(lines.stdout).toContain('Learning-rate schedule: CosineAnnealingLR(T_max=2, eta_min=0)');
    expect(lines.stdout).toMatch(/^Epoch 2, .*\(lr 0\.0005, /m);
  });

  it('--early-stop stops when the validation loss stalls, and says when and why', () => {
    // A learning rate this small cannot lower the loss by 0.01: epoch 1 sets the best, 2 and 3 miss it.
    const run = train('--epochs', '10', '--lr', '1e-9', '--early-stop', '2', '--min-delta', '0.01', '--out', join(dir, 'early.pth'));
    expect(run.status, run.stderr).toBe(0);
    expect(run.json.epochs).toHaveLength(3);
    expect(run.json.earlyStopping).toEqual({
      stoppedEpoch: 3,
      reason: expect.stringContaining('has not improved by more than 0.01 for 2 epoch(s)'),
    });
    const lines = spawnSync(
      process.execPath,
      [
        cli,
        'train',
        '--data',
        csv,
        '--epochs',
        '10',
        '--lr',
        '1e-9',
        '--early-stop',
        '2',
        '--min-delta',
        '0.01',
        '--out',
        join(dir, 'early.pth'),
      ],
      { cwd: dir, encoding: 'utf8' },
    );
    expect(lines.stdout).toMatch(
      /Early stopping after epoch 3: validation loss has not improved by more than 0\.01 for 2 epoch\(s\) \(best \d\.\d{4} at epoch 1\)/,
    );
  });

  it('--save-best tests and saves the epoch with the best validation accuracy', () => {
    const out = join(dir, 'best.pth');
    // A learning rate too high to settle: validation accuracy rises, then falls back.
    const run = train('--epochs', '5', '--lr', '0.05', '--save-best', '--out', out);
    expect(run.status, run.stderr).toBe(0);
    const accuracies = run.json.epochs.map((e) => e.valAccuracy);
    const bestEpoch = accuracies.indexOf(Math.max(...accuracies)) + 1;
    expect(run.json.best).toEqual({ epoch: bestEpoch, valAccuracy: Math.max(...accuracies) });
    expect(bestEpoch).toBeLessThan(5);
    const evaluate = (split: string) => lenet5Json<{ accuracy: number }>('evaluate', out, '--data', csv, '--split', split).json.accuracy;
    expect(evaluate('val')).toBe(Math.max(...accuracies));
    expect(evaluate('test')).toBe(run.json.test.accuracy);
  });

  it("a Node checkpoint's schedule resumes in Python, and in Node, with the same learning rates", () => {
    const checkpoint = join(dir, 'node-ckpt.pth');
    const first = train(
      '--epochs',
      '3',
      '--lr',
      '0.01',
      '--lr-schedule',
      'cosine:5:0.001',
      '--early-stop',
      '4',
      '--checkpoint',
      checkpoint,
      '--out',
      join(dir, 'a.pth'),
    );
    expect(first.status, first.stderr).toBe(0);
    const python = pyschedule('resume', checkpoint, JSON.stringify([1, 1, 1]));
    const [reference] = pyschedule(
      'states',
      JSON.stringify([['cosine', { T_max: 5, eta_min: 0.001, lr: 0.01 }]]),
      JSON.stringify([1, 1, 1, 1, 1, 1]),
    ).cases;
    expect(python.state).toMatchObject({ T_max: [5, 'int'], last_epoch: [3, 'int'], _last_lr: [[reference.lrs[3]], 'list'] });
    expect(python.early_stopping).toMatchObject({ patience: 4, num_bad_epochs: expect.any(Number) });
    expect(python.lrs).toEqual(reference.lrs.slice(3));
    const resumed = train('--epochs', '6', '--resume', checkpoint, '--early-stop', '4', '--out', join(dir, 'b.pth'));
    expect(resumed.status, resumed.stderr).toBe(0);
    expect([...first.json.epochs, ...resumed.json.epochs].map((e) => e.lr)).toEqual(reference.lrs);
  });

  it("a Python checkpoint's scheduler resumes in Node with Python's learning rates", async () => {
    const checkpoint = join(dir, 'python-ckpt.pth');
    pyschedule('save', checkpoint, 'step', JSON.stringify({ step_size: 2, gamma: 0.5, lr: 0.01 }), '[1,1,1]');
    const [reference] = pyschedule(
      'states',
      JSON.stringify([['step', { step_size: 2, gamma: 0.5, lr: 0.01 }]]),
      JSON.stringify([1, 1, 1, 1, 1, 1]),
    ).cases;
    const resumed = train('--epochs', '6', '--resume', checkpoint, '--out', join(dir, 'c.pth'));
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.json.epochs.map((e) => e.lr)).toEqual(reference.lrs.slice(3));
    // ReduceLROnPlateau's state holds strings (mode) and infinity (mode_worse): it loads too, with its reduced rate.
    const plateau = join(dir, 'python-plateau.pth');
    pyschedule('save', plateau, 'plateau', JSON.stringify({ patience: 1, factor: 0.5, lr: 0.01 }), '[1, 0.9, 0.95, 0.96]');
    const loaded = await LeNet5.loadCheckpoint(plateau);
    const scheduler = schedulerFromState(loaded.optimizer, loaded.lrSchedulerState!);
    expect(scheduler.describe()).toBe("ReduceLROnPlateau(mode='min', patience=1, factor=0.5)");
    expect([loaded.optimizer.lr, scheduler.lastLr, loaded.lrSchedulerState!.mode_worse]).toEqual([0.005, 0.005, Infinity]);
  });
});
