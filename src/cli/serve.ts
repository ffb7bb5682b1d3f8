/** lenet5 serve: load a model and answer predictions over HTTP until SIGINT/SIGTERM. */
import { basename } from 'node:path';
import type { DeviceName } from '../device.js';
import { LeNet5 } from '../model.js';
import { createPredictionServer } from '../serve/server.js';
import { say, type CommonOptions } from './output.js';

interface ServeCommandOptions extends CommonOptions {
  port: number;
  host: string;
  device: DeviceName;
  maxBody: number;
  rateLimit: number;
  maxBatch: number;
}

export async function serveCommand(modelPath: string, options: ServeCommandOptions): Promise<number> {
  const model = await LeNet5.load(modelPath, { device: options.device });
  const app = await createPredictionServer(model, { maxBodyBytes: options.maxBody, rateLimit: options.rateLimit, maxBatch: options.maxBatch, modelName: basename(modelPath) });
  await app.listen({ port: options.port, host: options.host });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ ok: true, command: 'serve', url, model: modelPath, device: model.device, classes: model.classes ?? null })}\n`);
  } else {
    say(options, `Serving ${modelPath} on ${model.device} at ${url}`);
    say(options, `  GET  ${url}/         draw or drop an image`);
    say(options, `  POST ${url}/predict  image bytes (PNG, JPEG, WebP, GIF, TIFF, PGM) or JSON [784 pixels 0-255]`);
    say(options, `  GET  ${url}/healthz`);
    say(options, 'Press Ctrl-C to stop.');
  }
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await app.close();
  model.dispose();
  if (!options.json) say(options, 'Stopped.');
  return 0;
}
