#!/usr/bin/env node
// npm run bench:serve: an HTTP load test of `lenet5 serve` over loopback with autocannon, bounded in
// time (about 40 s), written to its section of BENCHMARKS.md. The server runs with --rate-limit 0
// (the per-client limit would otherwise answer most of a single load generator's requests with 429).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import sharp from 'sharp';
import { fashionMnistDir, findIdxFile } from '../dist/data/datasets.js';
import { readIdxImages } from '../dist/data/idx.js';
import { LeNet5 } from '../dist/index.js';
import { writeSection } from './bench/sections.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: { duration: { type: 'string', default: '10' }, out: { type: 'string', default: join(root, 'BENCHMARKS.md') } },
});
const duration = Number(args.duration);

// Weights do not change the cost of a forward pass: an untrained model with a fixed seed will do.
const dir = mkdtempSync(join(tmpdir(), 'lenet5-bench-serve-'));
const modelPath = join(dir, 'model.pth');
const model = new LeNet5({ seed: 0 });
await model.save(modelPath);
model.dispose();

// A real Fashion-MNIST test image as the request body, as JSON pixels and as a PNG.
const testImagesFile = findIdxFile(fashionMnistDir(), 't10k-images-idx3-ubyte');
if (!testImagesFile)
  throw new Error(`No Fashion-MNIST test images in ${fashionMnistDir()}: install dataset-fashion-mnist or set LENET5_DATA.`);
const { pixels: testImages } = await readIdxImages(testImagesFile);
const pixels = testImages.subarray(0, 784);
const jsonBody = JSON.stringify(Array.from(pixels));
const pngBody = await sharp(Buffer.from(pixels), { raw: { width: 28, height: 28, channels: 1 } })
  .png()
  .toBuffer();

const server = spawn(process.execPath, [join(root, 'dist/cli/main.js'), 'serve', modelPath, '--port', '0', '--rate-limit', '0', '--json'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const [line] = await once(createInterface({ input: server.stdout }), 'line');
const { url } = JSON.parse(line);

async function load(name, connections, contentType, body) {
  const result = await autocannon({
    url: `${url}/predict`,
    method: 'POST',
    headers: { 'content-type': contentType },
    body,
    connections,
    duration,
  });
  const row = {
    name,
    connections,
    requestsPerSecond: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    ok: result['2xx'],
    failed: result.non2xx + result.errors + result.timeouts,
  };
  console.log(
    `${name}, ${connections} connection(s): ${Math.round(row.requestsPerSecond)} requests/s, p50 ${row.p50} ms, p99 ${row.p99} ms, ${row.failed} failed`,
  );
  return row;
}

const healthz = async () => {
  const response = await fetch(`${url}/healthz`);
  const body = await response.json();
  if (!response.ok) throw new Error(`GET /healthz answered ${response.status}: ${JSON.stringify(body)}`);
  return body.predictions;
};
try {
  await autocannon({
    url: `${url}/predict`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: jsonBody,
    connections: 4,
    duration: 2,
  }); // warm-up
  const before = await healthz();
  const rows = [
    await load('JSON pixels', 1, 'application/json', jsonBody),
    await load('JSON pixels', 32, 'application/json', jsonBody),
    await load('PNG image', 32, 'image/png', pngBody),
  ];
  const after = await healthz();
  const meanBatch = (after.images - before.images) / (after.batches - before.batches);
  // Both at 32 connections in this run: the ratio, unlike the rates, survives a noisy machine.
  const pngPerJson = rows[2].requestsPerSecond / rows[1].requestsPerSecond;
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const lines = [
    '## HTTP serving (`npm run bench:serve`)',
    '',
    `Latest run ${new Date().toISOString().slice(0, 10)}: \`lenet5 serve\` (CPU, --rate-limit 0) and autocannon on the same machine (${cpu}, ${cpus().length} cores; they share them), loopback, ${duration} s per row, one 28x28 Fashion-MNIST image per request.`,
    '',
    '| request body | connections | requests/s | latency p50 | latency p99 | failed |',
    '|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.name} | ${r.connections} | ${Math.round(r.requestsPerSecond)} | ${r.p50} ms | ${r.p99} ms | ${r.failed} |`),
    '',
    `PNG bodies were answered at ${pngPerJson.toFixed(2)}x the requests/s of JSON pixels (32 connections each).`,
    '',
    `Dynamic batching: ${after.images - before.images} images in ${after.batches - before.batches} forward passes (mean batch ${meanBatch.toFixed(2)}, largest ${after.largestBatch}).`,
  ];
  writeSection(args.out, 'serve', lines);
  console.log(lines.join('\n'));
} finally {
  server.kill('SIGTERM');
  await once(server, 'exit');
  rmSync(dir, { recursive: true, force: true });
}
