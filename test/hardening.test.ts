/**
 * Issue #13: what a new user's and an adversary's tour of the command and the server found.
 * Each test names its item. Fixtures are small (a synthetic MNIST-format folder, an untrained or
 * briefly trained model), so the file runs in seconds; servers listen on 127.0.0.1 only.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LeNet5, cuda } from '../src/index.js';
import { createPredictionServer } from '../src/serve/server.js';
import { root, syntheticImages, tempDir } from './helpers.js';

const dir = tempDir();
const cli = join(root, 'dist/cli/main.js');

interface Run { status: number | null; stdout: string; stderr: string }

function lenet5(...args: string[]): Run {
  const result = spawnSync(process.execPath, [cli, ...args], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Runs the command with its stdout pipe closed by the reader before the command writes. */
async function lenet5ClosedStdout(...args: string[]): Promise<Run> {
  const child = spawn(process.execPath, [cli, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  const [status] = await once(child, 'exit') as [number | null];
  return { status, stdout: '', stderr };
}

function writeIdx(path: string, dims: number[], data: Uint8Array): void {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(0x800 + dims.length, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  writeFileSync(path, Buffer.concat([header, data]));
}

/** A tiny MNIST-format folder (4 learnable classes) so `lenet5 train` takes a second. */
const data = join(dir, 'data');
mkdirSync(data);
for (const [prefix, count] of [['train', 200], ['t10k', 40]] as const) {
  const { images, labels } = syntheticImages(count, 4, count);
  writeIdx(join(data, `${prefix}-images-idx3-ubyte`), [count, 28, 28], images);
  writeIdx(join(data, `${prefix}-labels-idx1-ubyte`), [count], labels);
}

const modelPath = join(dir, 'model.pth');
const pgm = (n: number) => Buffer.concat([Buffer.from('P5\n28 28\n255\n'), syntheticImages(8, 4, 5).images.subarray(n * 784, (n + 1) * 784)]);
const images = Array.from({ length: 40 }, (_, n) => {
  const file = join(dir, `image${n}.pgm`);
  writeFileSync(file, pgm(n % 8));
  return file;
});
{
  const model = new LeNet5({ seed: 1 });
  await model.save(modelPath);
  model.dispose();
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function waitForHealth(url: string): Promise<Response> {
  for (let i = 0; ; i++) {
    try {
      return await fetch(`${url}/healthz`);
    } catch (error) {
      if (i > 200) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

describe('1. a closed stdout pipe', () => {
  it('every command exits quietly (no EPIPE trace) with its usual status', async () => {
    const runs: [string[], number][] = [
      [['info'], 0], [['--help'], 0], [['inspect', modelPath], 0], [['evaluate', modelPath, '--data', data], 0],
      [['predict', modelPath, ...images], 0], [['train', '--epochs', '1', '--data', data, '--out', join(dir, 'piped.pth')], 0],
    ];
    for (const [args, status] of runs) {
      const result = await lenet5ClosedStdout(...args);
      expect(result.stderr, args.join(' ')).toBe('');
      expect(result.status, args.join(' ')).toBe(status);
    }
    expect(existsSync(join(dir, 'piped.pth'))).toBe(true);
  }, 120_000);

  it('lenet5 serve keeps serving when its stdout reader goes away', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [cli, 'serve', modelPath, '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
    const exited = once(child, 'exit');
    try {
      expect((await waitForHealth(`http://127.0.0.1:${port}`)).status).toBe(200);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toEqual([0, null]);
    expect(stderr).toBe('');
  }, 60_000);
});

describe('2. reading a busy model', () => {
  it('model.device, classes and parameters() answer while a predict runs in the background', async () => {
    const model = new LeNet5({ seed: 2 });
    const running = model.predict(new Uint8Array(2000 * 784));
    expect(model.device).toBe('cpu');
    expect(model.classNames()).toHaveLength(10);
    expect(model.parameters()).toHaveLength(10);
    await running;
    model.dispose();
  });

  it('soak: /healthz is 200 on every poll during 400 concurrent predictions (loopback, bounded)', async () => {
    const model = new LeNet5({ seed: 2 });
    const app = await createPredictionServer(model, { rateLimit: 0 });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const body = JSON.stringify(Array.from(syntheticImages(1, 4, 9).images));
    let done = false;
    const polls: number[] = [];
    const poller = (async () => {
      while (!done && polls.length < 500) {
        polls.push((await fetch(`${url}/healthz`)).status);
      }
    })();
    const statuses = await Promise.all(Array.from({ length: 400 }, async () =>
      (await fetch(`${url}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).status));
    done = true;
    await poller;
    await app.close();
    model.dispose();
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(polls.length).toBeGreaterThan(0);
    expect(polls.filter((s) => s !== 200)).toEqual([]);
  }, 60_000);
});

describe('3. --json usage errors', () => {
  it('print one JSON object with ERR_LENET5_USAGE and exit 2', () => {
    const cases = [
      ['train', '--epochs', '0'], ['evaluate', modelPath, '--split', 'foo'], ['predict', modelPath, images[0], '--top', '0'],
      ['export', modelPath], ['nonsense'], ['evaluate'],
    ];
    for (const args of cases) {
      const result = lenet5(...args, '--json');
      expect(result.status, args.join(' ')).toBe(2);
      const json = JSON.parse(result.stdout);
      expect(json, args.join(' ')).toMatchObject({ ok: false, error: { code: 'ERR_LENET5_USAGE' } });
      expect(json.error.message.length).toBeGreaterThan(10);
    }
  });
});

describe('8. an empty image file', () => {
  it('names the file, says it is empty, ERR_LENET5_IMAGE', () => {
    writeFileSync(join(dir, 'empty.png'), '');
    const result = lenet5('predict', modelPath, join(dir, 'empty.png'));
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/empty\.png.*is empty.*\(ERR_LENET5_IMAGE\)/);
  });
});

describe('9. serve: bad port or host, port in use', () => {
  it('a bad --port or --host is a usage error (exit 2); a port in use says which and what to do (exit 1)', async () => {
    for (const args of [['--port', '70000'], ['--host', '999.1.1.1']]) {
      const result = lenet5('serve', modelPath, ...args, '--json');
      expect(result.status, args.join(' ')).toBe(2);
      expect(JSON.parse(result.stdout).error.code).toMatch(/^ERR_LENET5_(USAGE|INVALID_ARGUMENT)$/);
    }
    const blocker = createServer().listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const { port } = blocker.address() as { port: number };
    try {
      const result = lenet5('serve', modelPath, '--port', String(port), '--json');
      expect(result.status).toBe(1);
      expect(JSON.parse(result.stdout).error).toMatchObject({ code: 'ERR_LENET5_LISTEN' });
      expect(result.stderr).toContain(`127.0.0.1:${port} is already in use`);
      expect(result.stderr).toContain('--port');
    } finally {
      blocker.close();
    }
  });
});

describe('13. consistency of the command', () => {
  it('lenet5 with no arguments prints help to stderr and exits 2', () => {
    const result = lenet5();
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('Usage: lenet5');
    expect(result.stdout).toBe('');
  });

  it('--help and --version load no image, chart or HTTP library', () => {
    for (const args of [['--help'], ['--version'], ['train', '--help']]) {
      const trace = join(dir, `imports-${args.join('')}.txt`);
      writeFileSync(trace, '');
      const result = spawnSync(process.execPath, ['--import', join(root, 'test/children/trace-imports.mjs'), cli, ...args],
        { encoding: 'utf8', env: { ...process.env, LENET5_TRACE_IMPORTS: trace } });
      expect(result.status, result.stderr).toBe(0);
      const loaded = readFileSync(trace, 'utf8').split('\n');
      expect(loaded).toContain('commander');
      for (const heavy of ['sharp', 'vega', 'vega-lite', 'fastify']) expect(loaded, args.join(' ')).not.toContain(heavy);
    }
  });

  it('one --top rule: beyond the class count is a usage error in predict, as in serve', () => {
    const result = lenet5('predict', modelPath, images[0], '--top', '11', '--json');
    expect(result.status).toBe(2);
    expect(JSON.parse(result.stdout).error.message).toMatch(/top.*from 1 to 10.*11/);
  });

  it('one bad image among several: each image\'s own result or error in place, exit 1 at the end', () => {
    writeFileSync(join(dir, 'broken.png'), 'not a png');
    const result = lenet5('predict', modelPath, images[0], join(dir, 'broken.png'), images[1], '--json');
    expect(result.status).toBe(1);
    const json = JSON.parse(result.stdout);
    expect(json.ok).toBe(false);
    expect(json.predictions).toHaveLength(3);
    expect(json.predictions[0]).toMatchObject({ image: images[0], top: expect.any(Array) });
    expect(json.predictions[1]).toMatchObject({ image: join(dir, 'broken.png'), error: { code: 'ERR_LENET5_IMAGE' } });
    expect(json.predictions[2]).toMatchObject({ image: images[1], top: expect.any(Array) });
    const lines = lenet5('predict', modelPath, images[0], join(dir, 'broken.png'), images[1]);
    expect(lines.status).toBe(1);
    expect(lines.stdout.trim().split('\n')).toHaveLength(3);
    expect(lines.stderr).toContain('broken.png');
  });

  it('--device cuda without CUDA fails before any data is read', () => {
    if (cuda.isAvailable()) {
      console.log('13: skipped, CUDA is available here; the --device check-first test needs a machine without it');
      return;
    }
    const result = lenet5('train', '--device', 'cuda', '--data', join(dir, 'no-such-folder'), '--json');
    expect(result.status).toBe(1);
    expect(JSON.parse(result.stdout).error.code).toBe('ERR_LENET5_CUDA_UNAVAILABLE');
  });

  it('--resume with a plain state_dict says what to do on the command line; epoch counts read right', () => {
    const plain = lenet5('train', '--resume', modelPath, '--data', data, '--json');
    expect(plain.status).toBe(1);
    const message = JSON.parse(plain.stdout).error.message as string;
    expect(message).not.toContain('LeNet5.load');
    expect(message).toContain('--checkpoint');
    const checkpoint = join(dir, 'one-epoch.ckpt');
    expect(lenet5('train', '--epochs', '1', '--data', data, '--checkpoint', checkpoint, '--out', join(dir, 'c.pth')).status).toBe(0);
    const done = lenet5('train', '--resume', checkpoint, '--epochs', '1', '--data', data);
    expect(done.status).toBe(2);
    expect(done.stderr).toContain('already done 1 epoch;');
    writeFileSync(join(dir, 'cut.pth'), readFileSync(modelPath).subarray(0, 200));
    expect(lenet5('inspect', join(dir, 'cut.pth')).stderr).not.toMatch(/\.\./);
  });
});
