/**
 * The training report: loss and accuracy curves, the test confusion matrix as a heat map, a grid of
 * misclassified test images, and index.html tying them together. Charts are Vega-Lite specs
 * rendered to SVG in Node; the page needs no network.
 */
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { PNG } from 'pngjs';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import { IMAGE_PIXELS, type Dataset } from '../data/dataset.js';
import type { EpochResult, EvaluateResult, LeNet5 } from '../model.js';
import { writeFileAtomic } from '../atomic-write.js';
import { escapeHtml } from '../presentation.js';
import { percent } from './output.js';

export interface ReportInput {
  model: LeNet5;
  test: Dataset;
  history: EpochResult[];
  result: EvaluateResult;
  settings: Record<string, unknown> & { data: string };
}

/** What writeReport puts in its folder (outputs of the same command must not be these). */
export const REPORT_FILES = ['index.html', 'loss.svg', 'accuracy.svg', 'confusion.svg', 'misclassified'] as const;
const MISCLASSIFIED_SHOWN = 36;
const SCALE = 3;

async function renderSvg(spec: vl.TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  return view.toSVG();
}

function curves(history: EpochResult[]): { loss: vl.TopLevelSpec; accuracy: vl.TopLevelSpec } {
  const lossRows = history.flatMap((e) => [
    { epoch: e.epoch, series: 'train', loss: e.trainLoss },
    ...(e.valLoss === undefined ? [] : [{ epoch: e.epoch, series: 'validation', loss: e.valLoss }]),
  ]);
  const accuracyRows = history.filter((e) => e.valAccuracy !== undefined).map((e) => ({ epoch: e.epoch, accuracy: e.valAccuracy }));
  return {
    loss: {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      title: 'Loss per epoch',
      width: 420,
      height: 260,
      data: { values: lossRows },
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'epoch', type: 'quantitative', axis: { tickMinStep: 1, format: 'd' } },
        y: { field: 'loss', type: 'quantitative', scale: { zero: false } },
        color: { field: 'series', type: 'nominal', title: null },
      },
    },
    accuracy: {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      title: 'Validation accuracy per epoch',
      width: 420,
      height: 260,
      data: { values: accuracyRows },
      mark: { type: 'line', point: true, color: '#2ca02c' },
      encoding: {
        x: { field: 'epoch', type: 'quantitative', axis: { tickMinStep: 1, format: 'd' } },
        y: { field: 'accuracy', type: 'quantitative', scale: { zero: false }, axis: { format: '.1%' } },
      },
    },
  };
}

function confusionSpec(matrix: number[][], classes: string[]): vl.TopLevelSpec {
  const rows = matrix.flatMap((row, t) => row.map((count, p) => ({ actual: classes[t], predicted: classes[p], count })));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: 'Test confusion matrix',
    width: 420,
    height: 420,
    data: { values: rows },
    encoding: {
      x: { field: 'predicted', type: 'nominal', sort: classes, axis: { labelAngle: -40 } },
      y: { field: 'actual', type: 'nominal', sort: classes },
    },
    layer: [
      { mark: 'rect', encoding: { color: { field: 'count', type: 'quantitative', scale: { scheme: 'blues', type: 'symlog' } } } },
      {
        mark: { type: 'text', fontSize: 10 },
        encoding: {
          text: { field: 'count', type: 'quantitative' },
          color: { condition: { test: 'datum.count > 300', value: 'white' }, value: 'black' },
        },
      },
    ],
  };
}

function imagePng(pixels: Uint8Array): Buffer {
  const side = 28 * SCALE;
  const png = new PNG({ width: side, height: side, colorType: 0, inputColorType: 0, inputHasAlpha: false });
  const data = Buffer.alloc(side * side);
  for (let y = 0; y < side; y++)
    for (let x = 0; x < side; x++) data[y * side + x] = pixels[Math.floor(y / SCALE) * 28 + Math.floor(x / SCALE)];
  png.data = data;
  return PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false });
}

/** Writes the report into `dir` (each file atomically) and returns the path of its index.html. */
export async function writeReport(dir: string, input: ReportInput): Promise<string> {
  const { model, history, result, settings } = input;
  const classes = model.classNames();
  await mkdir(join(dir, 'misclassified'), { recursive: true });
  const { loss, accuracy } = curves(history);
  await writeFileAtomic(join(dir, 'loss.svg'), Buffer.from(await renderSvg(loss)));
  await writeFileAtomic(join(dir, 'accuracy.svg'), Buffer.from(await renderSvg(accuracy)));
  await writeFileAtomic(join(dir, 'confusion.svg'), Buffer.from(await renderSvg(confusionSpec(result.confusionMatrix, classes))));

  // The first misclassified test images, whatever the data was read from (IDX, image folder, CSV).
  const { images, labels } = input.test.toArrays();
  const prediction = await model.predict(images);
  const wrong: { index: number; actual: number; predicted: number; confidence: number }[] = [];
  for (let i = 0; i < labels.length && wrong.length < MISCLASSIFIED_SHOWN; i++) {
    const predicted = prediction.classes[i];
    if (predicted !== labels[i]) wrong.push({ index: i, actual: labels[i], predicted, confidence: prediction.probabilities[i][predicted] });
  }
  for (const w of wrong)
    await writeFileAtomic(
      join(dir, 'misclassified', `${w.index}.png`),
      imagePng(images.subarray(w.index * IMAGE_PIXELS, (w.index + 1) * IMAGE_PIXELS)),
    );
  const settingsRows = Object.entries(settings)
    .filter(([, v]) => v !== undefined && typeof v !== 'object')
    .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(String(v))}</td></tr>`)
    .join('');
  const epochRows = history
    .map(
      (e) =>
        `<tr><td>${e.epoch}</td><td>${Number(e.lr.toPrecision(6))}</td><td>${e.trainLoss.toFixed(4)}</td><td>${e.valLoss?.toFixed(4) ?? ''}</td>` +
        `<td>${e.valAccuracy === undefined ? '' : percent(e.valAccuracy)}</td><td>${e.seconds.toFixed(1)}</td><td>${Math.round(e.imagesPerSecond)}</td></tr>`,
    )
    .join('');
  const classRows = classes
    .map((name, i) => `<tr><td>${escapeHtml(name)}</td><td>${percent(result.perClassAccuracy[i] || 0)}</td></tr>`)
    .join('');
  const grid = wrong
    .map(
      (w) =>
        `<figure><img src="misclassified/${w.index}.png" alt="test image ${w.index}" width="84" height="84">` +
        `<figcaption>#${w.index}<br>true: ${escapeHtml(classes[w.actual])}<br>predicted: ${escapeHtml(classes[w.predicted])} (${percent(w.confidence)})</figcaption></figure>`,
    )
    .join('');
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>LeNet-5 training report</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1100px}
h1{margin-bottom:.2rem} .metrics{display:flex;gap:2rem;margin:1rem 0} .metric{font-size:1.6rem;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:1rem} .charts img{border:1px solid #ddd}
table{border-collapse:collapse;margin:1rem 0} th,td{border:1px solid #ddd;padding:.25rem .6rem;text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:.5rem} figure{margin:0;width:110px;font-size:.75rem} figure img{image-rendering:pixelated;background:#000}
</style></head><body>
<h1>LeNet-5 training report</h1>
<p>${escapeHtml(new Date().toISOString())} · device ${escapeHtml(model.device)}</p>
<div class="metrics"><div><div class="metric" id="test-accuracy">${percent(result.accuracy)}</div>test accuracy</div>
<div><div class="metric">${result.loss.toFixed(4)}</div>test loss</div><div><div class="metric">${result.total}</div>test images</div></div>
<h2>Curves</h2><div class="charts"><img class="chart" src="loss.svg" alt="loss curves"><img class="chart" src="accuracy.svg" alt="accuracy curve"></div>
<h2>Confusion matrix (test)</h2><div class="charts"><img class="chart" src="confusion.svg" alt="confusion matrix"></div>
<h2>Per-class accuracy</h2><table><tr><th>class</th><th>accuracy</th></tr>${classRows}</table>
${wrong.length ? `<h2>Misclassified test images (first ${wrong.length})</h2><div class="grid">${grid}</div>` : ''}
<h2>Epochs</h2><table><tr><th>epoch</th><th>learning rate</th><th>train loss</th><th>val loss</th><th>val accuracy</th><th>seconds</th><th>images/s</th></tr>${epochRows}</table>
<h2>Settings</h2><table>${settingsRows}</table>
</body></html>
`;
  const index = join(dir, 'index.html');
  await writeFileAtomic(index, Buffer.from(html));
  return resolve(index);
}
