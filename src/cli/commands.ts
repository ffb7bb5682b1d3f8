/** lenet5 evaluate | predict | inspect | info */
import { readFile } from 'node:fs/promises';
import { Lenet5Error } from '../errors.js';
import { info } from '../info.js';
import { IMAGE_PIXELS } from '../data/dataset.js';
import { LeNet5, checkTop, rankClasses } from '../model.js';
import { inspect } from '../pth/index.js';
import { dataDir, loadSplit } from './data.js';
import { loadImage28 } from '../data/image.js';
import { errorDetails, percent, printJson, say, warn, type CommonOptions } from './output.js';

export async function evaluateCommand(modelPath: string, options: CommonOptions & { data?: string; split: 'test' | 'train' }): Promise<number> {
  const model = await LeNet5.load(modelPath);
  const dir = dataDir(options.data);
  const data = await loadSplit(dir, options.split);
  const result = await model.evaluate(data);
  const classes = model.classes ?? data.classes ?? [];
  if (options.json) {
    printJson({ ok: true, command: 'evaluate', model: modelPath, data: dir, split: options.split, classes, ...result });
  } else {
    say(options, `${options.split} set (${dir}): Loss: ${result.loss.toFixed(4)}, Accuracy: ${percent(result.accuracy)} (${result.correct}/${result.total})`);
    say(options, '\nPer-class accuracy:');
    result.perClassAccuracy.forEach((a, i) => say(options, `  ${String(i).padStart(2)} ${(classes[i] ?? '').padEnd(12)} ${percent(a)}`));
    say(options, '\nConfusion matrix (rows: true class, columns: predicted):');
    const width = Math.max(4, ...result.confusionMatrix.flat().map((v) => String(v).length + 1));
    say(options, `     ${result.confusionMatrix.map((_, i) => String(i).padStart(width)).join('')}`);
    result.confusionMatrix.forEach((row, i) => say(options, `  ${String(i).padStart(2)} ${row.map((v) => String(v).padStart(width)).join('')}`));
  }
  model.dispose();
  return 0;
}

export async function predictCommand(modelPath: string, images: string[], options: CommonOptions & { invert?: boolean; top: number }): Promise<number> {
  const model = await LeNet5.load(modelPath);
  const names = model.classNames();
  const top = checkTop('--top', options.top, names.length);
  // Each image is read on its own: one that cannot be read is reported in its place, the rest are classified.
  const loaded = await Promise.all(images.map(async (file) => {
    try {
      return { file, pixels: await loadImage28(file, await readImageFile(file), options.invert ?? false) };
    } catch (error) {
      return { file, error: errorDetails(error) };
    }
  }));
  const readable = loaded.filter((l) => l.pixels !== undefined);
  const pixels = new Uint8Array(readable.length * IMAGE_PIXELS);
  readable.forEach((l, i) => pixels.set(l.pixels!, i * IMAGE_PIXELS));
  const prediction = readable.length ? await model.predict(pixels) : undefined;
  let next = 0;
  const results = loaded.map(({ file, error }) => {
    if (error) return { image: file, error: { code: error.code, message: error.message } };
    const i = next++;
    const predicted = prediction!.classes[i];
    return { image: file, class: predicted, name: names[predicted], probability: prediction!.probabilities[i][predicted], top: rankClasses(prediction!.probabilities[i], names, top) };
  });
  const firstError = results.find((r) => r.error)?.error;
  if (options.json) {
    printJson({ ok: !firstError, command: 'predict', model: modelPath, predictions: results, ...(firstError ? { error: firstError } : {}) });
  } else {
    for (const r of results) {
      if (r.error) {
        warn(r.error.code, r.error.message);
        say(options, `${r.image}: not classified (${r.error.code})`);
      } else {
        say(options, `${r.image}: ${r.class} (${r.name}) ${percent(r.probability!)}   top: ${r.top!.map((t) => `${t.name} ${percent(t.probability)}`).join(', ')}`);
      }
    }
  }
  model.dispose();
  return firstError ? 1 : 0;
}

async function readImageFile(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    throw new Lenet5Error('ERR_LENET5_IMAGE', `Cannot read image ${file}: ${(error as Error).message}`, { cause: error });
  }
}

export async function inspectCommand(file: string, options: CommonOptions): Promise<number> {
  const result = await inspect(file);
  if (options.json) {
    printJson({ ok: true, command: 'inspect', ...result });
  } else {
    say(options, `${result.path}: ${result.format}`);
    for (const [k, v] of Object.entries(result.scalars)) say(options, `  ${k} = ${v}`);
    const width = Math.max(...result.tensors.map((t) => t.name.length), 4);
    for (const t of result.tensors) say(options, `  ${t.name.padEnd(width)}  ${t.dtype.padEnd(8)}  [${t.shape.join(', ')}]`);
    say(options, `${result.tensors.length} tensors`);
  }
  return 0;
}

export async function exportCommand(modelPath: string, options: CommonOptions & { format: 'torchscript' | 'onnx'; out?: string }): Promise<number> {
  const model = await LeNet5.load(modelPath);
  const out = options.out ?? modelPath.replace(/\.(pth|pt|ckpt)$/i, '') + (options.format === 'onnx' ? '.onnx' : '.pt');
  await model.export(out, { format: options.format });
  if (options.json) {
    printJson({ ok: true, command: 'export', model: modelPath, format: options.format, out, normalization: model.normalization, classes: model.classes ?? null });
  } else {
    say(options, `Exported ${modelPath} as ${options.format} to ${out} (input: normalised [N, 1, 28, 28], pixel -> (pixel/255 - ${model.normalization.mean}) / ${model.normalization.std}; output: logits)`);
  }
  model.dispose();
  return 0;
}

export async function infoCommand(options: CommonOptions): Promise<number> {
  const details = info();
  if (options.json) {
    printJson({ ok: true, command: 'info', ...details });
  } else {
    say(options, `${details.package} ${details.version}`);
    say(options, `Node.js ${details.node}, LibTorch ${details.libtorch}`);
    say(options, `CUDA available: ${details.cudaAvailable ? 'yes' : 'no'}, devices: ${details.cudaDeviceCount} (LibTorch CUDA support: ${details.cudaSupport}${details.cudaRuntime ? `, runtime ${details.cudaRuntime}` : ''})`);
    say(options, `CPU threads: ${details.threads}`);
  }
  return 0;
}
