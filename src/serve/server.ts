/**
 * The HTTP service on Fastify: API v1 (/v1/segment, /v1/model), /health, /metrics and the web
 * page at /. Every error answers `{ "error": "<one line>" }` with a 4xx/5xx status; the model
 * and the queue live in the SegmentEngine.
 */
import crypto from 'node:crypto';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import type { SegModel } from '../inference/api.js';
import { isDict, type Dict } from '../models/config.js';
import type { AutocastDType } from '../tensor/runtime.js';
import { HttpError, oneLine } from './errors.js';
import { SegmentEngine } from './engine.js';
import { labelPng, overlayPng, segmentJson, type LabelEncoding } from './encode.js';
import { decodeUpload } from './image_probe.js';
import { ServeMetrics } from './metrics.js';
import { registerPage } from './page.js';

export interface ServeOptions {
  /** Default test mode (default: the config's model.test_cfg.mode). */
  mode?: 'slide' | 'whole';
  /** Largest image accepted, in pixels (width x height), checked before decoding. */
  maxPixels: number;
  /** Largest request body, in MiB. */
  maxBodyMb: number;
  /** Most segmentation requests admitted at once (waiting + computing). */
  queue: number;
  /** Per-request deadline in seconds, from arrival to answer. */
  timeoutS: number;
  /** When set, API calls and /metrics need `Authorization: Bearer <token>`. */
  token?: string;
  windowBatch: number;
  amp: AutocastDType | null;
  /** Fastify's request log (pino) to stdout. */
  log?: boolean;
}

export const DEFAULT_SERVE_OPTIONS = {
  maxPixels: 40_000_000,
  maxBodyMb: 50,
  queue: 16,
  timeoutS: 120,
} as const;

export interface Server {
  app: FastifyInstance;
  engine: SegmentEngine;
  metrics: ServeMetrics;
  /** Refuses new requests (503) and resolves when the requests in flight have been answered. */
  drain(): Promise<void>;
}

interface SegmentQuery {
  format?: 'json' | 'label' | 'overlay';
  labels?: LabelEncoding;
  tta?: 'true' | 'false' | '1' | '0';
  mode?: 'slide' | 'whole';
  opacity?: number;
}

const segmentQuerySchema = {
  type: 'object',
  properties: {
    format: { type: 'string', enum: ['json', 'label', 'overlay'] },
    labels: { type: 'string', enum: ['png', 'rle', 'none'] },
    tta: { type: 'string', enum: ['true', 'false', '1', '0'] },
    mode: { type: 'string', enum: ['slide', 'whole'] },
    opacity: { type: 'number', minimum: 0, maximum: 1 },
  },
  additionalProperties: false,
} as const;

export async function buildServer(model: SegModel, opts: ServeOptions): Promise<Server> {
  if (model.meta.classes.length > 255)
    throw new Error(`${model.meta.classes.length} classes do not fit an 8-bit label PNG`);
  const bodyLimit = Math.round(opts.maxBodyMb * 1024 * 1024);
  const app = Fastify({
    logger: opts.log ?? false,
    bodyLimit,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: true, allErrors: false } },
  });
  const engine = new SegmentEngine(model, { capacity: opts.queue, windowBatch: opts.windowBatch, amp: opts.amp });
  const metrics = new ServeMetrics(() => engine.depth, opts.queue);
  const defaultMode = opts.mode ?? model.model.testCfg.mode;
  let draining = false;
  let inFlight = 0;
  let idleWake: (() => void) | null = null;

  await app.register(multipart, { limits: { fileSize: bodyLimit, files: 1, fields: 20, parts: 21 } });
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_req, body, done) => done(null, body));

  app.addHook('onRequest', async (req, reply) => {
    if (draining && req.url !== '/health') {
      reply.header('connection', 'close');
      throw new HttpError(503, 'server is shutting down', { 'retry-after': '5' });
    }
    if (opts.token && needsAuth(req.url)) checkBearer(req, opts.token);
  });
  app.addHook('onResponse', async (req, reply) => {
    metrics.observeRequest(req.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
  });
  app.setErrorHandler((err: FastifyError | HttpError, req, reply) => {
    const status = statusOf(err);
    if (err instanceof HttpError) reply.headers(err.headers);
    if (status >= 500 && !(err instanceof HttpError)) req.log.error(err);
    void reply.code(status).send({ error: oneLine(err.message) });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}` });
  });

  registerPage(app);

  app.get('/health', async (_req, reply) => {
    if (draining) void reply.code(503);
    return { status: draining ? 'draining' : 'ok', queue: engine.depth, capacity: opts.queue };
  });

  app.get('/metrics', async (_req, reply) => {
    void reply.type(metrics.contentType);
    return metrics.text();
  });

  app.get('/v1/model', async () => modelInfo(model, opts, defaultMode));

  app.post<{ Querystring: SegmentQuery }>(
    '/v1/segment',
    { schema: { querystring: segmentQuerySchema } },
    async (req, reply) => {
      inFlight++;
      try {
        const deadline = Date.now() + opts.timeoutS * 1000;
        const aborter = new AbortController();
        reply.raw.on('close', () => {
          if (!reply.raw.writableEnded) aborter.abort();
        });
        if (engine.depth >= engine.capacity) {
          throw new HttpError(503, `queue full (${engine.capacity} requests): retry later`, { 'retry-after': '1' });
        }
        const image = await decodeUpload(await uploadBytes(req, bodyLimit), opts.maxPixels);
        const q = req.query;
        const seg = await engine.submit({
          image,
          mode: q.mode ?? defaultMode,
          tta: q.tta === 'true' || q.tta === '1',
          deadline,
          signal: aborter.signal,
        });
        metrics.imageDone();
        const format = q.format ?? 'json';
        if (format === 'label') return await reply.type('image/png').send(labelPng(seg));
        if (format === 'overlay')
          return await reply.type('image/png').send(await overlayPng(image, seg, model.meta, q.opacity ?? 0.5));
        return segmentJson(seg, model.meta, q.labels ?? 'png');
      } finally {
        inFlight--;
        if (inFlight === 0) idleWake?.();
      }
    },
  );

  const drain = async (): Promise<void> => {
    draining = true;
    if (inFlight > 0)
      await new Promise<void>((resolve) => {
        idleWake = resolve;
      });
    await engine.drain();
  };
  return { app, engine, metrics, drain };
}

function needsAuth(url: string): boolean {
  return url.startsWith('/v1/') || url === '/metrics' || url.startsWith('/metrics?');
}

/** Constant-time comparison of the bearer token (hashes have equal length whatever was sent). */
function checkBearer(req: FastifyRequest, token: string): void {
  const header = req.headers.authorization ?? '';
  const match = /^Bearer\s+(.+)$/i.exec(header);
  const digest = (s: string): Buffer => crypto.createHash('sha256').update(s).digest();
  if (!match || !crypto.timingSafeEqual(digest(match[1].trim()), digest(token))) {
    throw new HttpError(401, match ? 'invalid bearer token' : 'missing Authorization: Bearer <token>', {
      'www-authenticate': 'Bearer',
    });
  }
}

/** The image bytes of a raw body or of the first file of a multipart body. */
async function uploadBytes(req: FastifyRequest, bodyLimit: number): Promise<Buffer> {
  if (req.isMultipart()) return multipartFile(req, bodyLimit);
  const body = req.body;
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (!Buffer.isBuffer(body)) {
    throw new HttpError(415, `content type ${req.headers['content-type']} is not an image: send the image bytes`);
  }
  return body;
}

/** The first file of a multipart body; a malformed body is the client's error (400), an oversized file 413. */
async function multipartFile(req: FastifyRequest, bodyLimit: number): Promise<Buffer> {
  try {
    const part = await req.file({ limits: { fileSize: bodyLimit, files: 1 } });
    if (!part) throw new HttpError(400, 'multipart body without a file part');
    return await part.toBuffer();
  } catch (e) {
    const err = e as Error & { statusCode?: number };
    if (err instanceof HttpError || (err.statusCode && err.statusCode < 500)) throw err;
    throw new HttpError(400, `malformed multipart body: ${err.message}`);
  }
}

function statusOf(err: { statusCode?: number }): number {
  const s = err.statusCode;
  return typeof s === 'number' && s >= 400 && s < 600 ? s : 500;
}

function modelInfo(m: SegModel, opts: ServeOptions, mode: string): Dict {
  const model = isDict(m.config.model) ? m.config.model : {};
  const pick = (d: unknown, keys: string[]): Dict =>
    Object.fromEntries(keys.filter((k) => isDict(d) && d[k] !== undefined).map((k) => [k, (d as Dict)[k]]));
  return {
    classes: m.meta.classes,
    palette: m.meta.palette,
    numClasses: m.meta.classes.length,
    device: m.device,
    config: {
      backbone: pick(model.backbone, ['type', 'img_size', 'patch_size', 'embed_dims', 'num_layers', 'num_heads']),
      decodeHead: pick(model.decode_head, ['type', 'channels', 'num_classes', 'align_corners']),
      testCfg: model.test_cfg ?? null,
      testResize: m.preprocess.scale,
    },
    serving: {
      mode,
      windowBatch: opts.windowBatch,
      amp: opts.amp,
      maxPixels: opts.maxPixels,
      maxBodyMb: opts.maxBodyMb,
      queue: opts.queue,
      timeoutS: opts.timeoutS,
      auth: opts.token ? 'bearer' : 'none',
    },
  };
}
