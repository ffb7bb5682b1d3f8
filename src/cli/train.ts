/** lenet5 train: the seed's whole workflow — train with validation each epoch, test, save, report. */
import { resolve } from 'node:path';
import { Lenet5Error } from '../errors.js';
import type { DeviceName } from '../device.js';
import { metadataPath } from '../metadata.js';
import { LeNet5, type EpochResult } from '../model.js';
import { Adam, SGD, type Optimizer } from '../optim.js';
import { loadSplits, type DataOptions } from './data.js';
import { percent, printJson, say } from './output.js';
import { checkWritable, refuseOverwrite } from './paths.js';
import { epochProgress } from './progress.js';
import { writeReport } from './report.js';

export interface TrainCommandOptions extends DataOptions {
  epochs: number;
  batchSize: number;
  optimizer: 'adam' | 'sgd';
  lr: number;
  device: DeviceName;
  out: string;
  checkpoint?: string;
  resume?: string;
  report?: string;
}

export function epochLine(e: EpochResult): string {
  const validation = e.valLoss === undefined ? '' : `, Val Loss: ${e.valLoss.toFixed(4)}, Val Accuracy: ${percent(e.valAccuracy ?? 0)}`;
  return `Epoch ${e.epoch}, Train Loss: ${e.trainLoss.toFixed(4)}${validation} (${e.seconds.toFixed(1)} s, ${Math.round(e.imagesPerSecond)} images/s)`;
}

/** LeNet5.loadCheckpoint, with the command line's advice when the file is weights without training state. */
async function loadResumable(path: string, device: DeviceName) {
  try {
    return await LeNet5.loadCheckpoint(path, { device });
  } catch (error) {
    if (error instanceof Lenet5Error && error.code === 'ERR_LENET5_STATE_DICT' && /not a checkpoint|no optimizer_state_dict/.test(error.message)) {
      throw new Lenet5Error('ERR_LENET5_STATE_DICT', `${path} cannot be resumed: it holds model weights without the optimizer state and epoch count of a checkpoint. ` +
        'Resume from a file written by lenet5 train --checkpoint (or Python\'s {epoch, model_state_dict, optimizer_state_dict}), or train from scratch without --resume.', { cause: error });
    }
    throw error;
  }
}

export async function trainCommand(options: TrainCommandOptions): Promise<number> {
  // Settle the device and the outputs before minutes of data loading and training.
  new LeNet5({ device: options.device }).dispose();
  if (options.resume) await refuseOverwrite('--out', options.out, options.resume, 'checkpoint (--resume)');
  await checkWritable('--out', options.out, 'file');
  if (options.checkpoint) await checkWritable('--checkpoint', options.checkpoint, 'file');
  if (options.report) await checkWritable('--report', options.report, 'folder');
  const { source, path: dataPath, fit, validation, test } = await loadSplits(options);
  say(options, `Split: ${fit.size} train, ${validation.size} validation, ${test.size} test`);
  const batchSize = Math.min(options.batchSize, fit.size);
  if (batchSize < options.batchSize) say(options, `--batch-size ${options.batchSize} is more than the ${fit.size} training images: each epoch is one batch of ${fit.size}.`);

  let model: LeNet5;
  let optimizer: Optimizer;
  let doneEpochs = 0;
  if (options.resume) {
    const checkpoint = await loadResumable(options.resume, options.device);
    ({ model, optimizer } = checkpoint);
    doneEpochs = checkpoint.epoch;
    say(options, `Resuming from ${options.resume} after epoch ${doneEpochs}`);
    if (doneEpochs >= options.epochs) {
      throw new Lenet5Error('ERR_LENET5_INVALID_ARGUMENT', `The checkpoint has already done ${doneEpochs} epoch${doneEpochs === 1 ? '' : 's'}; --epochs ${options.epochs} asks for no more. Pass a larger --epochs.`);
    }
  } else {
    model = new LeNet5({ numClasses: source.classes.length, classes: source.classes, device: options.device, seed: options.seed });
    optimizer = options.optimizer === 'adam' ? new Adam({ lr: options.lr }) : new SGD({ lr: options.lr, momentum: 0.9 });
  }
  say(options, `Model: LeNet-5 on ${model.device}, ${optimizer instanceof Adam ? 'Adam' : 'SGD'} lr ${optimizer.lr}, batch ${batchSize}`);

  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once('SIGINT', onSigint);
  const showProgress = !options.json && process.stdout.isTTY === true;
  const progress = epochProgress(showProgress);
  const history: EpochResult[] = [];
  try {
    // One epoch per call, so a checkpoint can be written between epochs; the optimizer keeps its
    // state and the shuffle is seeded per epoch, so this equals a single multi-epoch call.
    for (let epoch = doneEpochs; epoch < options.epochs; epoch++) {
      await model.train(fit, {
        epochs: 1,
        initialEpoch: epoch,
        batchSize,
        optimizer,
        validation,
        seed: options.seed,
        signal: controller.signal,
        // Batch events cross from the training thread; ask for them only when a bar shows them.
        onBatchEnd: showProgress ? (p) => progress.update(p) : undefined,
        onEpochEnd: (e) => {
          progress.stop();
          history.push(e);
          say(options, epochLine(e));
        },
      });
      if (options.checkpoint) await model.saveCheckpoint(options.checkpoint, { optimizer, epoch: epoch + 1, loss: history[history.length - 1].trainLoss });
    }
  } catch (error) {
    progress.stop();
    if (error instanceof Lenet5Error && error.code === 'ERR_LENET5_ABORTED') {
      const kept = options.checkpoint && history.length ? ` The checkpoint ${options.checkpoint} holds epoch ${history[history.length - 1].epoch}.` : '';
      throw new Lenet5Error('ERR_LENET5_ABORTED', `Interrupted: training stopped after the current batch; ${options.out} was not written.${kept}`);
    }
    throw error;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }

  const result = await model.evaluate(test);
  say(options, `Test Loss: ${result.loss.toFixed(4)}, Test Accuracy: ${percent(result.accuracy)} (${result.correct}/${result.total})`);
  await model.save(options.out);
  say(options, `Saved ${resolve(options.out)} (metadata: ${metadataPath(options.out)})`);
  let reportIndex: string | undefined;
  if (options.report) {
    reportIndex = await writeReport(options.report, { model, test, history, result, settings: { ...options, data: dataPath } });
    say(options, `Report: ${reportIndex}`);
  }
  say(options, '\nLoad it in Python (model = the seed\'s LeNet5 class):');
  say(options, `  import torch`);
  say(options, `  model.load_state_dict(torch.load(${JSON.stringify(options.out)}, weights_only=True))`);
  if (options.json) {
    printJson({ ok: true, command: 'train', data: { format: source.format, description: source.description, classes: source.classes, badFiles: source.badFiles, cache: source.cache ?? null, train: fit.size, validation: validation.size, test: test.size }, device: model.device, epochs: history, test: result, out: resolve(options.out), checkpoint: options.checkpoint ?? null, report: reportIndex ?? null });
  }
  model.dispose();
  return 0;
}
