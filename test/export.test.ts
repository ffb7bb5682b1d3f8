import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { LeNet5, info } from '../src/index.js';
import { launchChromium, pythons, requirePython, root, syntheticDataset, syntheticImages, tempDir, writeFloat32 } from './helpers.js';

const dir = tempDir();
const input = Float32Array.from(syntheticImages(3, 4, 6).images, (v) => (v / 255 - 0.5) / 0.5);

async function trainedModel(): Promise<LeNet5> {
  const model = new LeNet5({ seed: 12 });
  await model.train(syntheticDataset(128, 10), { epochs: 1, batchSize: 32, seed: 1 });
  return model;
}

function flat(rows: Float32Array[]): number[] {
  return rows.flatMap((row) => Array.from(row));
}

describe('export', () => {
  it("TorchScript: torch.jit.load in Python (same PyTorch version as this LibTorch) gives predict's logits within 1e-5", async () => {
    // A TorchScript file is read by the PyTorch it was written with or newer, so the reader matches the addon's LibTorch.
    const python = info().libtorch.startsWith('1.') ? pythons.debian : pythons.current;
    requirePython(python);
    const model = await trainedModel();
    const path = join(dir, 'lenet5.pt');
    await model.export(path, { format: 'torchscript' });
    const inputFile = writeFloat32(join(dir, 'input.f32'), input);
    const script =
      'import sys, json, torch; m = torch.jit.load(sys.argv[1]); x = torch.frombuffer(bytearray(open(sys.argv[2], "rb").read()), dtype=torch.float32).reshape(-1, 1, 28, 28); ' +
      'print(json.dumps({"logits": m(x).flatten().tolist(), "names": [n for n, _ in m.named_parameters()]}))';
    const out = JSON.parse(
      execFileSync(python, ['-c', script, path, inputFile], { encoding: 'utf8', env: { ...process.env, PYTHONWARNINGS: 'ignore' } })
        .trim()
        .split('\n')
        .pop() as string,
    );
    expect(out.names).toEqual(model.parameters().map((p) => p.name));
    const expected = flat((await model.predict(input)).logits);
    (out.logits as number[]).forEach((v, i) => expect(Math.abs(v - expected[i])).toBeLessThan(1e-5));
  });

  it('ONNX: runs in onnxruntime-node with a dynamic batch, logits within 1e-4 of predict', async () => {
    const model = await trainedModel();
    const path = join(dir, 'lenet5.onnx');
    await model.export(path, { format: 'onnx' });
    const session = await ort.InferenceSession.create(path);
    expect(session.inputNames).toEqual(['input']);
    for (const count of [1, 3]) {
      const x = input.subarray(0, count * 784);
      const result = await session.run({ input: new ort.Tensor('float32', x, [count, 1, 28, 28]) });
      const expected = flat((await model.predict(x)).logits);
      expect(result.logits.dims).toEqual([count, 10]);
      Array.from(result.logits.data as Float32Array).forEach((v, i) => expect(Math.abs(v - expected[i])).toBeLessThan(1e-4));
    }
  });

  it('ONNX: the same file runs in a browser through onnxruntime-web (headless Chromium, WebAssembly), logits within 1e-4', async () => {
    const model = await trainedModel();
    const path = join(dir, 'browser.onnx');
    await model.export(path, { format: 'onnx' });
    // The page, onnxruntime-web's files and the model come from this process; anything else is refused.
    const origin = 'http://lenet5.test';
    const ortDist = join(root, 'node_modules/onnxruntime-web/dist');
    const types: Record<string, string> = {
      '.js': 'text/javascript',
      '.mjs': 'text/javascript',
      '.wasm': 'application/wasm',
      '.html': 'text/html',
    };
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.route('**/*', async (route) => {
        const url = new URL(route.request().url());
        if (url.origin !== origin) return route.abort();
        if (url.pathname === '/')
          return route.fulfill({ contentType: types['.html'], body: '<!doctype html><script src="/ort/ort.wasm.min.js"></script>' });
        if (url.pathname === '/lenet5.onnx') return route.fulfill({ contentType: 'application/octet-stream', body: readFileSync(path) });
        if (url.pathname.startsWith('/ort/'))
          return route.fulfill({ contentType: types[extname(url.pathname)], body: readFileSync(join(ortDist, url.pathname.slice(5))) });
        return route.fulfill({ status: 404 });
      });
      await page.goto(`${origin}/`);
      const result = await page.evaluate(async (values) => {
        const ortWeb = (globalThis as unknown as { ort: typeof import('onnxruntime-web') }).ort;
        ortWeb.env.wasm.numThreads = 1;
        ortWeb.env.wasm.wasmPaths = '/ort/';
        const session = await ortWeb.InferenceSession.create('/lenet5.onnx', { executionProviders: ['wasm'] });
        const output = await session.run({
          input: new ortWeb.Tensor('float32', Float32Array.from(values), [values.length / 784, 1, 28, 28]),
        });
        return { dims: output.logits.dims, logits: Array.from(output.logits.data as Float32Array) };
      }, Array.from(input));
      expect(result.dims).toEqual([3, 10]);
      const expected = flat((await model.predict(input)).logits);
      result.logits.forEach((v, i) => expect(Math.abs(v - expected[i])).toBeLessThan(1e-4));
    } finally {
      await browser.close();
    }
  });

  it('lenet5 export writes both formats from the command line', async () => {
    const modelPath = join(dir, 'cli.pth');
    await (await trainedModel()).save(modelPath);
    for (const format of ['onnx', 'torchscript']) {
      const out = execFileSync(process.execPath, [join(root, 'dist/cli/main.js'), 'export', modelPath, '--format', format, '--json'], {
        encoding: 'utf8',
      });
      const json = JSON.parse(out);
      expect(json).toMatchObject({ ok: true, format, normalization: { mean: 0.5, std: 0.5 } });
      expect(json.out).toMatch(format === 'onnx' ? /cli\.onnx$/ : /cli\.pt$/);
    }
  });
});
