/**
 * The prediction server behind `lenet5 serve`: POST /predict (an image or JSON pixels), GET /healthz
 * and GET / (a page to draw or drop an image). Fastify bounds bodies and parses them;
 * @fastify/rate-limit bounds each client's request rate; PredictBatcher merges concurrent requests
 * into one forward pass. Every failure is a 4xx/5xx JSON body {ok: false, error: {code, message}}.
 */
import rateLimit from '@fastify/rate-limit';
import { STATUS_CODES } from 'node:http';
import { availableParallelism } from 'node:os';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { IMAGE_PIXELS } from '../data/dataset.js';
import { SERVE_DECODE_TIMEOUT_SECONDS, SERVE_MAX_IMAGE_PIXELS, loadImage28 } from '../data/image.js';
import { FITS } from '../data/preprocess.js';
import { Lenet5Error } from '../errors.js';
import type { LeNet5 } from '../model.js';
import type { QuantizedLeNet5 } from '../quantize/model.js';
import { checkTop, rankClasses } from '../presentation.js';
import { oneOf } from '../validate.js';
import { PredictBatcher } from './batcher.js';
import { DecodeGate } from './decode-gate.js';
import { pageHtml } from './page.js';

export interface ServeOptions {
  /** Largest accepted request body in bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** POST /predict requests per second allowed per client address; 0 turns the limit off (default 100). */
  rateLimit?: number;
  /** Most images in one forward pass (default 256). */
  maxBatch?: number;
  /** Most images waiting for the model before requests get 503 (default 1024). */
  maxQueue?: number;
  /** A whole request (headers and body) must arrive within this many milliseconds, else 408 (default 30000). */
  requestTimeoutMs?: number;
  /** Largest image accepted, in pixels (width x height), checked before decoding (default 4096 x 4096). */
  maxImagePixels?: number;
  /** Decoding one image stops after this many whole seconds, answered with 400 (default 5). */
  decodeTimeoutSeconds?: number;
  /** Shown by GET /healthz. */
  modelName?: string;
}

const IMAGE_TYPES = [
  'image/png',
  'image/jpeg',
  'image/webp',
  'image/gif',
  'image/tiff',
  'image/x-portable-graymap',
  'image/x-portable-anymap',
  'application/octet-stream',
];
const ACCEPTED = `${IMAGE_TYPES.join(', ')} (image bytes) or application/json (784 pixel values 0-255, or 0-1 with ?scale=1)`;
/** Image bodies waiting for a decode slot (each up to maxBodyBytes in memory) before requests get 503. */
const MAX_WAITING_DECODES = 256;
const STATUS: Partial<Record<string, number>> = {
  ERR_LENET5_INVALID_ARGUMENT: 400,
  ERR_LENET5_SHAPE: 400,
  ERR_LENET5_IMAGE: 400,
  ERR_LENET5_NOT_FOUND: 404,
  ERR_LENET5_BODY_TOO_LARGE: 413,
  ERR_LENET5_MEDIA_TYPE: 415,
  ERR_LENET5_RATE_LIMITED: 429,
  ERR_LENET5_OVERLOADED: 503,
};

/** The error a client sees: status, stable code and a message that says what to send instead. */
function httpError(error: unknown, maxBodyBytes: number, contentType: string): { status: number; code: string; message: string } {
  if (!(error instanceof Error)) return { status: 500, code: 'ERR_LENET5_INTERNAL', message: String(error) };
  if (error instanceof Lenet5Error) return { status: STATUS[error.code] ?? 500, code: error.code, message: error.message };
  switch ((error as FastifyError).code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        status: 413,
        code: 'ERR_LENET5_BODY_TOO_LARGE',
        message: `The request body is larger than ${maxBodyBytes} bytes. Send a smaller image (the model sees 28x28 pixels).`,
      };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, code: 'ERR_LENET5_MEDIA_TYPE', message: `Unsupported Content-Type "${contentType}". Send ${ACCEPTED}.` };
  }
  const status = (error as FastifyError).statusCode ?? 500;
  if (status === 429) return { status, code: 'ERR_LENET5_RATE_LIMITED', message: `Too many requests from this address: ${error.message}.` };
  if (status >= 400 && status < 500)
    return { status, code: 'ERR_LENET5_INVALID_ARGUMENT', message: `Bad request: ${error.message}. Send ${ACCEPTED}.` };
  return { status: 500, code: 'ERR_LENET5_INTERNAL', message: error.message };
}

function describeJson(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length} values`;
  if (typeof value === 'object') {
    const keys = Object.keys(value);
    return keys.length
      ? `an object with the key(s) ${keys
          .slice(0, 5)
          .map((k) => JSON.stringify(k))
          .join(', ')} but no "pixels"`
      : 'an empty object';
  }
  return `a ${typeof value}`;
}

/**
 * JSON bodies: 784 values, 28 rows of 28, or {"pixels": either, "scale"?: 1 | 255}. Values are 0-255
 * like MNIST's bytes, or 0-1 when ?scale=1 (or "scale": 1) says so. Values that all lie in [0, 1]
 * without a scale are refused: read as 0-255 they are a black image and a confident wrong answer.
 */
function pixelsFromJson(body: unknown, scaleQuery?: unknown): Uint8Array {
  const object = body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : undefined;
  const value = object && Object.hasOwn(object, 'pixels') ? object.pixels : body;
  const flat =
    Array.isArray(value) && value.length === 28 && value.every((row) => Array.isArray(row)) ? (value as unknown[][]).flat() : value;
  const expected =
    'Expected a JSON array of 784 pixel values from 0 to 255 (row-major 28x28, 0 = black; 0 to 1 with ?scale=1), 28 arrays of 28, or {"pixels": [...]}';
  if (!Array.isArray(flat) || flat.length !== IMAGE_PIXELS) {
    throw new Lenet5Error(
      'ERR_LENET5_SHAPE',
      `${expected} but received ${Array.isArray(flat) ? `an array of ${flat.length} values` : describeJson(value)}.`,
    );
  }
  const scaleValue = scaleQuery ?? (object && Object.hasOwn(object, 'scale') ? object.scale : undefined);
  const scale = scaleValue === undefined ? undefined : Number(scaleValue);
  if (scale !== undefined && scale !== 1 && scale !== 255) {
    throw new Lenet5Error(
      'ERR_LENET5_INVALID_ARGUMENT',
      `Expected scale to be 1 (values 0-1) or 255 (values 0-255) but received ${JSON.stringify(scaleValue)}.`,
    );
  }
  const max = scale ?? 255;
  for (let i = 0; i < IMAGE_PIXELS; i++) {
    const v = flat[i];
    if (typeof v !== 'number' || !(v >= 0 && v <= max)) {
      throw new Lenet5Error(
        'ERR_LENET5_INVALID_ARGUMENT',
        `${expected} but value ${i} is ${typeof v === 'number' ? String(v) : (JSON.stringify(v) ?? String(v))}${max === 1 ? ' (above 1 with scale 1)' : ''}.`,
      );
    }
  }
  const values = flat as number[];
  if (scale === undefined && values.every((v) => v <= 1) && values.some((v) => v > 0)) {
    throw new Lenet5Error(
      'ERR_LENET5_INVALID_ARGUMENT',
      'All 784 values are between 0 and 1: they look like pixels scaled to 0-1, but values are read as 0-255 unless told otherwise. ' +
        'Send ?scale=1 (or "scale": 1 beside "pixels") for 0-1 values, or ?scale=255 if these really are 0-255 values.',
    );
  }
  return Uint8Array.from(values, (v) => Math.round((v * 255) / max));
}

/**
 * Errors Node's HTTP parser raises before a request reaches Fastify (a request timeout, oversized
 * or malformed headers), answered in the same JSON format as every other error.
 */
function clientError(error: NodeJS.ErrnoException, socket: Duplex, requestTimeout: number): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [
          408,
          'ERR_LENET5_TIMEOUT',
          `The request did not arrive within ${requestTimeout / 1000} s (headers within ${Math.min(10_000, requestTimeout) / 1000} s). Send the whole request at once.`,
        ]
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? [
            431,
            'ERR_LENET5_INVALID_ARGUMENT',
            'The request headers are larger than the server accepts (16 KiB). Send fewer or shorter headers.',
          ]
        : [400, 'ERR_LENET5_INVALID_ARGUMENT', `The request is not valid HTTP (${error.code ?? error.message}).`];
  const body = JSON.stringify({ ok: false, error: { code, message } });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

function flag(value: unknown): boolean {
  return value === '' || value === '1' || value === 'true';
}

export async function createPredictionServer(model: LeNet5 | QuantizedLeNet5, options: ServeOptions = {}): Promise<FastifyInstance> {
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  const maxImagePixels = options.maxImagePixels ?? SERVE_MAX_IMAGE_PIXELS;
  const decodeTimeoutSeconds = options.decodeTimeoutSeconds ?? SERVE_DECODE_TIMEOUT_SECONDS;
  const requestsPerSecond = options.rateLimit ?? 100;
  const batcher = new PredictBatcher(model, { maxBatch: options.maxBatch ?? 256, maxQueue: options.maxQueue ?? 1024 });
  const decodes = new DecodeGate({ concurrency: Math.min(4, availableParallelism()), maxWaiting: MAX_WAITING_DECODES });
  const classes = model.classNames();
  const started = Date.now();
  const page = pageHtml(classes, { invert: model.preprocessing?.invert ?? false });

  // A whole request (headers and body) must arrive within requestTimeout, so slow clients cannot
  // hold sockets. Node checks the deadlines every connectionsCheckingInterval (30 s by default,
  // which let a trickling client stay 60 s); headers get at most 10 s.
  const requestTimeout = options.requestTimeoutMs ?? 30_000;
  const app = Fastify({
    logger: false,
    bodyLimit: maxBodyBytes,
    requestTimeout,
    // Node's own answer to a request without Host is a 400 with no body; the hook below gives ours.
    http: {
      requestTimeout,
      headersTimeout: Math.min(10_000, requestTimeout),
      connectionsCheckingInterval: Math.min(1000, requestTimeout),
      requireHostHeader: false,
    },
    clientErrorHandler: (error, socket) => clientError(error, socket, requestTimeout),
    // While closing, requests already on an open connection are answered (with Connection: close),
    // not refused with Fastify's own 503 body: a stop drains them.
    return503OnClosing: false,
  });
  app.addHook('onRequest', (request, reply, done) => {
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      void reply.code(400).send({
        ok: false,
        error: { code: 'ERR_LENET5_INVALID_ARGUMENT', message: 'The request has no Host header, which HTTP/1.1 requires. Send one.' },
      });
      return;
    }
    done();
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(IMAGE_TYPES, { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  // JSON.parse, so that a body's real problem can be named: a scalar, 1e309 (Infinity), a
  // "__proto__" key (an own property here; only "pixels" and "scale" are ever read).
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, text, done) => {
    try {
      done(null, { json: JSON.parse(text as string) as unknown });
    } catch (error) {
      done(
        new Lenet5Error('ERR_LENET5_INVALID_ARGUMENT', `The body is not valid JSON (${(error as Error).message}). Send ${ACCEPTED}.`),
        undefined,
      );
    }
  });
  app.setErrorHandler((error, request, reply) => {
    const { status, code, message } = httpError(error, maxBodyBytes, request.headers['content-type'] ?? '');
    void reply.code(status).send({ ok: false, error: { code, message } });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({
      ok: false,
      error: {
        code: 'ERR_LENET5_NOT_FOUND',
        message: `No route ${request.method} ${request.url.split('?')[0]}. Routes: GET /, GET /healthz, POST /predict.`,
      },
    });
  });
  await app.register(rateLimit, { global: false });
  app.addHook('preClose', (done) => {
    decodes.close();
    done();
  });

  app.get('/', (_request, reply) => {
    void reply
      .type('text/html; charset=utf-8')
      .header(
        'content-security-policy',
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; connect-src 'self'",
      )
      .send(page);
  });

  app.get('/healthz', () => ({
    ok: true,
    model: options.modelName ?? null,
    device: model.device,
    classes,
    normalization: model.normalization,
    uptimeSeconds: Math.round((Date.now() - started) / 1000),
    predictions: batcher.stats,
  }));

  const rateLimitConfig = requestsPerSecond > 0 ? { max: requestsPerSecond, timeWindow: 1000 } : (false as const);
  app.post('/predict', { config: { rateLimit: rateLimitConfig } }, async (request) => {
    const query = request.query as Record<string, unknown>;
    const top = checkTop('?top=', query.top, classes.length);
    const body = request.body as Buffer | { json: unknown } | undefined;
    let pixels: Uint8Array;
    if (Buffer.isBuffer(body)) {
      // As the model's training images were prepared (its metadata), unless the query says otherwise.
      const fit = query.fit === undefined ? model.preprocessing?.fit : oneOf('?fit=', query.fit, FITS);
      const invert = query.invert === undefined ? (model.preprocessing?.invert ?? false) : flag(query.invert);
      pixels = await decodes.run(() =>
        loadImage28('request body', body, { invert, fit, maxPixels: maxImagePixels, timeoutSeconds: decodeTimeoutSeconds }),
      );
    } else if (body !== undefined) {
      pixels = pixelsFromJson(body.json, query.scale);
    } else {
      throw new Lenet5Error(
        'ERR_LENET5_MEDIA_TYPE',
        `Unsupported Content-Type "${request.headers['content-type'] ?? ''}". Send ${ACCEPTED}.`,
      );
    }
    const prediction = await batcher.predict(pixels);
    return {
      ok: true,
      class: prediction.class,
      name: classes[prediction.class],
      probability: prediction.probabilities[prediction.class],
      top: rankClasses(prediction.probabilities, classes, top),
      probabilities: prediction.probabilities,
    };
  });
  return app;
}
