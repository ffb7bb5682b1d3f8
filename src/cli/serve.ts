/** lenet5 serve: load a model and answer predictions over HTTP until SIGINT/SIGTERM. */
import { basename } from 'node:path';
import type { DeviceName } from '../device.js';
import { createPredictionServer } from '../serve/server.js';
import { Lenet5Error } from '../errors.js';
import { loadModel } from './load.js';
import { UsageError, say, type CommonOptions } from './output.js';

interface ServeCommandOptions extends CommonOptions {
  port: number;
  host: string;
  device: DeviceName;
  maxBody: number;
  rateLimit: number;
  maxBatch: number;
  maxImagePixels: number;
  decodeTimeout: number;
  allowNonFinite?: boolean;
}

const SHUTDOWN_GRACE_MS = 5000;

/** Why the server could not listen, and what to do: a host that is not this machine's is a usage error. */
function listenError(error: unknown, host: string, port: number): Error {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  switch ((error as NodeJS.ErrnoException).code) {
    case 'EADDRINUSE':
      return new Lenet5Error(
        'ERR_LENET5_LISTEN',
        `${where} is already in use by another program. Stop that program, or pick another port with --port (--port 0 picks a free one).`,
        { cause: error },
      );
    case 'EACCES':
      return new Lenet5Error(
        'ERR_LENET5_LISTEN',
        `Not allowed to listen on ${where} (ports below 1024 need privileges). Pick a port from 1024 to 65535 with --port.`,
        { cause: error },
      );
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
      return new UsageError(
        `Cannot listen on --host ${host}: it is not an address of this machine (${(error as Error).message}). Expected 127.0.0.1, ::1, 0.0.0.0 (every interface) or one of this machine's addresses.`,
      );
  }
  return error as Error;
}

export async function serveCommand(modelPath: string, options: ServeCommandOptions): Promise<number> {
  const model = await loadModel(modelPath, { device: options.device, allowNonFinite: options.allowNonFinite });
  const app = await createPredictionServer(model, {
    maxBodyBytes: options.maxBody,
    rateLimit: options.rateLimit,
    maxBatch: options.maxBatch,
    maxImagePixels: options.maxImagePixels,
    decodeTimeoutSeconds: options.decodeTimeout,
    modelName: basename(modelPath),
  });
  try {
    await app.listen({ port: options.port, host: options.host });
  } catch (error) {
    model.dispose();
    throw listenError(error, options.host, options.port);
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
  if (options.json) {
    process.stdout.write(
      `${JSON.stringify({ ok: true, command: 'serve', url, model: modelPath, device: model.device, classes: model.classes ?? null })}\n`,
    );
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
  // New connections are refused now; requests in flight get a few seconds, then every socket is
  // closed. A second signal stops at once.
  say(options, `Stopping: finishing requests in flight for up to ${SHUTDOWN_GRACE_MS / 1000} s (Ctrl-C again stops at once).`);
  const now = () => {
    process.stderr.write('lenet5: stopped at once; requests in flight were cut off\n');
    process.exit(1);
  };
  process.once('SIGINT', now);
  process.once('SIGTERM', now);
  const cutOff = setTimeout(() => app.server.closeAllConnections(), SHUTDOWN_GRACE_MS);
  await app.close();
  clearTimeout(cutOff);
  model.dispose();
  if (!options.json) say(options, 'Stopped.');
  return 0;
}
