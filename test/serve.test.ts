import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeNet5 } from '../src/index.js';
import { PredictBatcher } from '../src/serve/batcher.js';
import { createPredictionServer } from '../src/serve/server.js';
import { loadImage28 } from '../src/data/image.js';
import { launchChromium, pngClaiming, root, syntheticDataset, syntheticImages, tempDir } from './helpers.js';

const dir = tempDir();
const classes = ['top bar', 'upper bar', 'lower bar', 'bottom bar'];
const images = syntheticImages(8, 4, 21).images;
const image = (n: number) => images.subarray(n * 784, (n + 1) * 784);
let model: LeNet5;

beforeAll(async () => {
  model = new LeNet5({ classes, seed: 3 });
  await model.train(syntheticDataset(512, 4), { epochs: 2, batchSize: 32, seed: 1 });
});
afterAll(() => model.dispose());

const png = (pixels: Uint8Array) =>
  sharp(pixels, { raw: { width: 28, height: 28, channels: 1 } })
    .png()
    .toBuffer();
const pgm = (pixels: Uint8Array) => Buffer.concat([Buffer.from('P5\n28 28\n255\n'), pixels]);

describe('PredictBatcher', () => {
  it("merges requests made in one turn into one forward pass, up to maxBatch, with each request's own result", async () => {
    const expected = await model.predict(images);
    const batcher = new PredictBatcher(model, { maxBatch: 3, maxQueue: 100 });
    const results = await Promise.all(Array.from({ length: 8 }, (_, n) => batcher.predict(image(n))));
    expect(batcher.stats).toEqual({ images: 8, batches: 3, largestBatch: 3, queued: 0 });
    results.forEach((r, n) => {
      expect(r.class).toBe(expected.classes[n]);
      r.probabilities.forEach((p, c) => expect(p).toBeCloseTo(expected.probabilities[n][c], 6));
    });
  });

  it('rejects with ERR_LENET5_OVERLOADED beyond maxQueue and still serves the rest', async () => {
    const batcher = new PredictBatcher(model, { maxBatch: 256, maxQueue: 5 });
    const settled = await Promise.allSettled(Array.from({ length: 8 }, (_, n) => batcher.predict(image(n))));
    expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(5);
    for (const s of settled.filter((s) => s.status === 'rejected'))
      expect((s as PromiseRejectedResult).reason.code).toBe('ERR_LENET5_OVERLOADED');
  });
});

describe('HTTP API', () => {
  it("POST /predict gives predict()'s answer for JSON pixels (flat, 28 rows, {pixels}), PNG and PGM bodies", async () => {
    const app = await createPredictionServer(model);
    const expected = await model.predict(image(2));
    const rows = Array.from({ length: 28 }, (_, r) => Array.from(image(2).subarray(r * 28, r * 28 + 28)));
    const bodies: [string, string | Buffer][] = [
      ['application/json', JSON.stringify(Array.from(image(2)))],
      ['application/json', JSON.stringify(rows)],
      ['application/json', JSON.stringify({ pixels: Array.from(image(2)) })],
      ['image/png', await png(image(2))],
      ['application/octet-stream', pgm(image(2))],
    ];
    for (const [type, payload] of bodies) {
      const response = await app.inject({ method: 'POST', url: '/predict?top=2', headers: { 'content-type': type }, payload });
      expect(response.statusCode, `${type}: ${response.body}`).toBe(200);
      const json = response.json();
      expect(json).toMatchObject({ ok: true, class: expected.classes[0], name: classes[expected.classes[0]] });
      expect(json.top).toHaveLength(2);
      expect(json.top[0]).toEqual({ class: json.class, name: json.name, probability: json.probability });
      (json.probabilities as number[]).forEach((p, c) => expect(p).toBeCloseTo(expected.probabilities[0][c], 6));
    }
    await app.close();
  });

  it("POST /predict prepares images as the model's training images were (its metadata) unless the query says otherwise", async () => {
    // A dark bar on a light 60x40 background: --invert and --fit both change the 28x28 pixels.
    const page = Buffer.alloc(60 * 40, 230);
    for (let y = 10; y < 30; y++) for (let x = 5; x < 15; x++) page[y * 60 + x] = 20;
    const body = await sharp(page, { raw: { width: 60, height: 40, channels: 1 } })
      .png()
      .toBuffer();
    const asTrained = await loadImage28('bar', body, { fit: 'pad', invert: true });
    const plain = await loadImage28('bar', body, { fit: 'stretch', invert: false });
    expect(asTrained).not.toEqual(plain);
    model.preprocessing = { fit: 'pad', invert: true };
    try {
      const app = await createPredictionServer(model);
      for (const [url, pixels] of [
        ['/predict', asTrained],
        ['/predict?fit=stretch&invert=0', plain],
      ] as const) {
        const response = await app.inject({ method: 'POST', url, headers: { 'content-type': 'image/png' }, payload: body });
        expect(response.statusCode, response.body).toBe(200);
        const expected = (await model.predict(pixels)).probabilities[0];
        (response.json().probabilities as number[]).forEach((p, c) => expect(p, url).toBeCloseTo(expected[c], 6));
      }
      expect((await app.inject('/')).body).toContain('<input id="invert" type="checkbox" checked>');
      await app.close();
    } finally {
      model.preprocessing = undefined;
    }
  });

  it('answers bad requests with 4xx and a JSON error code, and keeps serving', async () => {
    const app = await createPredictionServer(model, { maxBodyBytes: 64 * 1024 });
    const cases: {
      payload?: string | Buffer;
      type?: string;
      url?: string;
      method?: 'GET' | 'POST' | 'PUT';
      status: number;
      code: string;
      message: RegExp;
    }[] = [
      {
        type: 'application/json',
        payload: '[1, 2, 3]',
        status: 400,
        code: 'ERR_LENET5_SHAPE',
        message: /784 pixel values.*an array of 3 values/,
      },
      {
        type: 'application/json',
        payload: JSON.stringify(Array(784).fill(256)),
        status: 400,
        code: 'ERR_LENET5_INVALID_ARGUMENT',
        message: /value 0 is 256/,
      },
      {
        type: 'application/json',
        payload: JSON.stringify([...Array(783).fill(0), 'x']),
        status: 400,
        code: 'ERR_LENET5_INVALID_ARGUMENT',
        message: /value 783 is "x"/,
      },
      { type: 'application/json', payload: '{"pixels": null}', status: 400, code: 'ERR_LENET5_SHAPE', message: /received null/ },
      { type: 'application/json', payload: '[1, 2', status: 400, code: 'ERR_LENET5_INVALID_ARGUMENT', message: /not valid JSON/ },
      {
        type: 'image/png',
        payload: Buffer.from('not an image'),
        status: 400,
        code: 'ERR_LENET5_IMAGE',
        message: /is not a PNG, JPEG, WebP, GIF, TIFF or PGM image/,
      },
      { type: 'image/png', payload: Buffer.alloc(0), status: 400, code: 'ERR_LENET5_IMAGE', message: /empty/ },
      {
        type: 'image/png',
        payload: (await png(image(0))).subarray(0, 60), // cut inside its pixel data
        status: 400,
        code: 'ERR_LENET5_IMAGE',
        message: /cannot be decoded as an image/,
      },
      {
        type: 'image/png',
        payload: pngClaiming(50_000, 50_000),
        status: 400,
        code: 'ERR_LENET5_IMAGE',
        message: /more than 16777216 pixels/,
      },
      {
        type: 'application/octet-stream',
        payload: Buffer.from('P5\n28 28\n255\nshort'),
        status: 400,
        code: 'ERR_LENET5_IMAGE',
        message: /truncated/,
      },
      {
        type: 'image/png',
        payload: Buffer.alloc(70 * 1024),
        status: 413,
        code: 'ERR_LENET5_BODY_TOO_LARGE',
        message: /larger than 65536 bytes/,
      },
      { type: 'application/xml', payload: '<x/>', status: 415, code: 'ERR_LENET5_MEDIA_TYPE', message: /"application\/xml".*image\/png/ },
      { type: 'text/plain', payload: 'hello', status: 415, code: 'ERR_LENET5_MEDIA_TYPE', message: /"text\/plain"/ },
      {
        type: 'application/json',
        payload: JSON.stringify(Array(784).fill(0)),
        url: '/predict?top=11',
        status: 400,
        code: 'ERR_LENET5_INVALID_ARGUMENT',
        message: /\?top= to be an integer from 1 to 4/,
      },
      {
        method: 'GET',
        url: '/nowhere',
        status: 404,
        code: 'ERR_LENET5_NOT_FOUND',
        message: /Routes: GET \/, GET \/healthz, POST \/predict/,
      },
      {
        method: 'PUT',
        url: '/predict',
        type: 'application/json',
        payload: '[]',
        status: 404,
        code: 'ERR_LENET5_NOT_FOUND',
        message: /No route PUT \/predict/,
      },
    ];
    for (const c of cases) {
      const response = await app.inject({
        method: c.method ?? 'POST',
        url: c.url ?? '/predict',
        headers: c.type ? { 'content-type': c.type } : {},
        payload: c.payload,
      });
      const label = `${c.type} ${String(c.payload).slice(0, 20)}`;
      expect(response.statusCode, label).toBe(c.status);
      expect(response.headers['content-type'], label).toMatch(/^application\/json/);
      const json = response.json();
      expect(json.ok, label).toBe(false);
      expect(json.error.code, label).toBe(c.code);
      expect(json.error.message, label).toMatch(c.message);
    }
    const health = await app.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toMatchObject({ ok: true, device: 'cpu', classes, predictions: { images: 0 } });
    await app.close();
  });

  it('limits each client to --rate-limit requests per second with 429 and Retry-After', async () => {
    const app = await createPredictionServer(model, { rateLimit: 3 });
    const statuses: number[] = [];
    let limited;
    for (let i = 0; i < 6; i++) {
      const response = await app.inject({
        method: 'POST',
        url: '/predict',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify(Array.from(image(0))),
      });
      statuses.push(response.statusCode);
      if (response.statusCode === 429) limited = response;
    }
    expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
    expect(statuses).toContain(429);
    expect(limited!.json().error.code).toBe('ERR_LENET5_RATE_LIMITED');
    expect(limited!.headers['retry-after']).toBeDefined();
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    await app.close();
  });

  it('serves 64 concurrent requests over a socket, each with its own answer', async () => {
    const app = await createPredictionServer(model, { rateLimit: 0 });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const expected = await model.predict(images);
    const responses = await Promise.all(
      Array.from({ length: 64 }, async (_, i) => {
        const n = i % 8;
        const response = await fetch(`${url}/predict`, {
          method: 'POST',
          headers: { 'content-type': 'image/png' },
          body: await png(image(n)),
        });
        return { n, status: response.status, json: (await response.json()) as { class: number } };
      }),
    );
    for (const r of responses) {
      expect(r.status).toBe(200);
      expect(r.json.class).toBe(expected.classes[r.n]);
    }
    const health = (await (await fetch(`${url}/healthz`)).json()) as { predictions: { images: number } };
    expect(health.predictions.images).toBe(64);
    await app.close();
  });
});

describe('lenet5 serve', () => {
  it('listens, prints its URL as one JSON line, answers, and stops cleanly on SIGTERM', async () => {
    const modelPath = join(dir, 'served.pth');
    await model.save(modelPath);
    const child = spawn(process.execPath, [join(root, 'dist/cli/main.js'), 'serve', modelPath, '--port', '0', '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = once(child, 'exit');
    try {
      const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
      const started = JSON.parse(line);
      expect(started).toMatchObject({ ok: true, command: 'serve', device: 'cpu', classes });
      const response = await fetch(`${started.url}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'image/x-portable-graymap' },
        body: pgm(image(1)),
      });
      expect(response.status).toBe(200);
      expect(((await response.json()) as { class: number }).class).toBe((await model.predict(image(1))).classes[0]);
      expect((await fetch(`${started.url}/healthz`)).status).toBe(200);
    } finally {
      child.kill('SIGTERM');
    }
    const [code] = (await exited) as [number | null];
    expect(code).toBe(0);
  });

  it('the page: the invert box follows the model, an error clears the last prediction, a chosen file clears the canvas (headless Chromium)', async () => {
    const app = await createPredictionServer(model);
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 900, height: 600 } });
      await page.goto(url);
      // The model has no preprocessing metadata (light-on-dark, like MNIST): the box starts unchecked.
      expect(await page.isChecked('#invert')).toBe(false);
      const box = (await page.locator('#canvas').boundingBox())!;
      await page.mouse.move(box.x + 60, box.y + 140);
      await page.mouse.down();
      await page.mouse.move(box.x + 220, box.y + 140, { steps: 10 });
      await page.mouse.up();
      await page.waitForFunction(() => document.body.dataset.predicted !== undefined);
      expect(await page.locator('#bars .bar').count()).toBe(classes.length);
      const inked = () =>
        page.evaluate(() => {
          const canvas = document.getElementById('canvas') as HTMLCanvasElement;
          return canvas
            .getContext('2d')!
            .getImageData(0, 0, canvas.width, canvas.height)
            .data.some((v, i) => i % 4 !== 3 && v > 0);
        });
      expect(await inked()).toBe(true);
      // A file that is not an image: the error shows, and no prediction stays beside it.
      await page.evaluate(() => delete document.body.dataset.predicted);
      await page.setInputFiles('#file', { name: 'broken.png', mimeType: 'image/png', buffer: Buffer.from('not an image') });
      await page.waitForFunction(() => document.body.dataset.predicted !== undefined);
      expect(await page.evaluate(() => document.body.dataset.predicted)).toBe('error');
      expect(await page.locator('#error').textContent()).toContain('ERR_LENET5_IMAGE');
      expect(await page.locator('#name').textContent()).toBe('—');
      expect(await page.locator('#bars .bar').count()).toBe(0);
      // Choosing the file cleared the drawing: the canvas is not what was predicted any more.
      expect(await inked()).toBe(false);
    } finally {
      await browser.close();
      await app.close();
    }
  });

  it('the page: drawing and choosing a file each show a prediction over the class names (headless Chromium)', async () => {
    // LENET5_SERVE_MODEL serves a real model instead (docs/serve.png is taken with the Fashion-MNIST one).
    const served = process.env.LENET5_SERVE_MODEL ? await LeNet5.load(process.env.LENET5_SERVE_MODEL) : model;
    const names = served.classes ?? classes;
    const app = await createPredictionServer(served);
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 900, height: 600 } });
      const foreign: string[] = [];
      const errors: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith(url) && !r.url().startsWith('blob:')) foreign.push(r.url());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      await page.goto(url);
      expect(await page.title()).toMatch(/LeNet-5/);

      // A file chosen on the page: its prediction is predict()'s for the same pixels.
      await page.uncheck('#invert');
      await page.setInputFiles('#file', { name: 'bar.png', mimeType: 'image/png', buffer: await png(image(2)) });
      await page.waitForFunction(() => document.body.dataset.predicted !== undefined);
      const expected = (await served.predict(image(2))).classes[0];
      expect(await page.evaluate(() => document.body.dataset.predicted)).toBe(String(expected));
      expect(await page.locator('#name').textContent()).toBe(names[expected]);
      await page.evaluate(() => {
        delete document.body.dataset.predicted;
      });
      // A drawing (two legs joined at the top, like trousers): some class, with one bar per class name.
      const box = (await page.locator('#canvas').boundingBox())!;
      await page.mouse.move(box.x + 105, box.y + 255);
      await page.mouse.down();
      for (const [x, y] of [
        [110, 30],
        [170, 30],
        [175, 255],
      ])
        await page.mouse.move(box.x + x, box.y + y, { steps: 10 });
      await page.mouse.up();
      await page.waitForFunction(() => document.body.dataset.predicted !== undefined);
      expect(await page.locator('#error').textContent()).toBe('');
      expect(names).toContain(await page.locator('#name').textContent());
      expect(await page.locator('#bars .bar').count()).toBe(names.length);
      expect(await page.locator('#bars .bar.top').count()).toBe(1);
      // The bars are drawn to scale: the top class has the widest.
      const widths = await page.$$eval('#bars .fill', (fills) => fills.map((f) => f.getBoundingClientRect().width));
      const topIndex = names.indexOf((await page.locator('#name').textContent())!);
      expect(widths[topIndex]).toBeGreaterThan(0);
      expect(widths[topIndex]).toBe(Math.max(...widths));

      expect(foreign).toEqual([]);
      expect(errors).toEqual([]);
      if (process.env.LENET5_SCREENSHOT) await page.screenshot({ path: process.env.LENET5_SCREENSHOT });
    } finally {
      await browser.close();
      await app.close();
      if (served !== model) served.dispose();
    }
  });
});
