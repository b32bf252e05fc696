/**
 * The HTTP service on Fastify: API v1 (/v1/segment, /v1/model), the probes (/livez, /readyz and
 * /health), /metrics, /openapi.json and the web page at /. Every error answers
 * `{ "error": "<one line>" }` with a 4xx/5xx status; the model and its queue live behind a
 * ModelBackend (in `beitseg serve`, a worker thread: the event loop here never computes).
 *
 * Authentication is decided on the route that matched, not on the raw URL: the router decodes
 * and normalises paths (`/%761/segment` is `/v1/segment`), so a check on the URL text can be
 * walked around. Every route needs the token unless it is declared public (deny by default).
 */
import crypto from 'node:crypto';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import type { SegModel } from '../inference/api.js';
import type { Dict } from '../config/schema.js';
import type { AutocastDType } from '../tensor/runtime.js';
import { InProcessBackend, type ModelBackend } from './backend.js';
import { HttpError, oneLine } from './errors.js';
import { labelPng, overlayPng, segmentJson, type LabelEncoding } from './encode.js';
import { decodeUpload } from './image_probe.js';
import { ServeMetrics } from './metrics.js';
import { openApiDocument, type RouteDoc } from './openapi.js';
import { registerLocalPage, registerPage } from './page.js';
import { checkBudget, checkOptions, DEFAULT_POLICY, type ServePolicy } from './policy.js';
import { requestIdOf, type RequestLog, writeRequestLog } from './request_log.js';
import { DEFAULT_SERVE_OPTIONS } from './defaults.js';

export interface ServeOptions extends Partial<ServePolicy> {
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
  /** Seconds a client has to send a whole request, headers and body (a trickled body is cut). */
  bodyTimeoutS?: number;
  /** Seconds an idle connection (no bytes either way) is kept open. */
  idleTimeoutS?: number;
  /** When set, every route but the page, the probes and /openapi.json needs `Authorization: Bearer <token>`. */
  token?: string;
  windowBatch: number;
  amp: AutocastDType | null;
  /** One JSON line per request on stdout (or to `logSink`). */
  log?: boolean;
  logSink?: (line: string) => void;
  /** Origin allowed to call the API from a browser (CORS); none by default. */
  cors?: string;
  /** beitseg's version, for /v1/model. */
  version?: string;
  /** A built "run in this browser" page (npm run build:web) to serve under /local/ (--web). */
  webDir?: string;
}

export { DEFAULT_SERVE_OPTIONS };

export interface Server {
  app: FastifyInstance;
  /** The model behind the API (named engine for the tests that watch its queue). */
  engine: ModelBackend;
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

/** Route options: `public` routes answer without the token; `doc` goes into /openapi.json. */
declare module 'fastify' {
  interface FastifyContextConfig {
    public?: boolean;
    /** Answered while draining (the probes). */
    probe?: boolean;
    doc?: Omit<RouteDoc, 'method' | 'url' | 'schema'>;
  }
}

/** One of several models served from one process (`--model name=config,weights`), each with its own queue. */
export interface NamedBackend {
  name: string;
  backend: ModelBackend;
}

function isBackend(x: SegModel | ModelBackend): x is ModelBackend {
  return typeof (x as ModelBackend).submit === 'function';
}

const MODEL_NAME = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * The server for one model (a SegModel computed in-process, or a backend) or several named ones:
 * the first is also served at /v1/segment and /v1/model, each at /v1/models/{name}/...
 */
export async function buildServer(
  source: SegModel | ModelBackend | NamedBackend[],
  opts: ServeOptions,
): Promise<Server> {
  const models: NamedBackend[] = Array.isArray(source)
    ? source
    : [
        {
          name: 'default',
          backend: isBackend(source)
            ? source
            : new InProcessBackend(source, { capacity: opts.queue, windowBatch: opts.windowBatch, amp: opts.amp }),
        },
      ];
  if (models.length === 0) throw new Error('no model to serve');
  const byName = new Map<string, ModelBackend>();
  for (const { name, backend: b } of models) {
    if (!MODEL_NAME.test(name)) throw new Error(`model name '${name}': use letters, digits, '.', '_' or '-'`);
    if (byName.has(name)) throw new Error(`model name '${name}' given twice`);
    const n = b.description.meta.classes.length;
    if (n > 255) throw new Error(`model ${name}: ${n} classes do not fit an 8-bit label PNG`);
    byName.set(name, b);
  }
  const backend = models[0].backend;
  const policy: ServePolicy = {
    allowModes: opts.allowModes ?? DEFAULT_POLICY.allowModes,
    allowTta: opts.allowTta ?? DEFAULT_POLICY.allowTta,
    maxPixelsWhole: opts.maxPixelsWhole ?? DEFAULT_POLICY.maxPixelsWhole,
    maxWindows: opts.maxWindows ?? DEFAULT_POLICY.maxWindows,
  };
  const modeOf = (b: ModelBackend): 'slide' | 'whole' => opts.mode ?? b.description.testCfg.mode;
  for (const { backend: b } of models) {
    const mode = modeOf(b);
    if (!policy.allowModes.includes(mode))
      throw new Error(`the default mode ${mode} is not in --allow-modes ${policy.allowModes.join(',')}`);
  }
  const bodyLimit = Math.round(opts.maxBodyMb * 1024 * 1024);
  const bodyMs = Math.round((opts.bodyTimeoutS ?? DEFAULT_SERVE_OPTIONS.bodyTimeoutS) * 1000);
  const idleMs = Math.round((opts.idleTimeoutS ?? DEFAULT_SERVE_OPTIONS.idleTimeoutS) * 1000);
  const app = Fastify({
    logger: false,
    bodyLimit,
    // a whole request (headers and body) must arrive within bodyMs, checked every quarter of it
    // (Node checks every 30 s by default, which would let a trickled body hold its socket that long)
    requestTimeout: bodyMs,
    http: { connectionsCheckingInterval: Math.max(50, Math.min(1000, bodyMs / 4)), headersTimeout: bodyMs },
    keepAliveTimeout: idleMs,
    // backstop for a silent socket: longer than any answer may take (deadline + body time)
    connectionTimeout: Math.round(opts.timeoutS * 1000 + bodyMs + idleMs),
    genReqId: (raw) => requestIdOf(raw.headers['x-request-id']),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: true, allErrors: false } },
  });
  const totalDepth = (): number => models.reduce((n, m) => n + m.backend.depth, 0);
  const metrics = new ServeMetrics(totalDepth, opts.queue * models.length);
  const sink = opts.logSink ?? (opts.log ? (line: string) => process.stdout.write(`${line}\n`) : null);
  const notes = new WeakMap<FastifyRequest, Partial<RequestLog>>();
  const routes: RouteDoc[] = [];
  let draining = false;
  let inFlight = 0;
  let idleWake: (() => void) | null = null;

  await app.register(multipart, { limits: { fileSize: bodyLimit, files: 1, fields: 20, parts: 21 } });
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_req, body, done) => done(null, body));

  app.addHook('onRoute', (r) => {
    const doc = r.config?.doc;
    if (doc) routes.push({ ...doc, method: String(r.method), url: r.url, schema: r.schema as Dict | undefined });
  });
  app.addHook('onRequest', async (req, reply) => {
    void reply.header('x-request-id', req.id);
    if (opts.cors) void reply.header('access-control-allow-origin', opts.cors).header('vary', 'Origin');
    const cfg = req.routeOptions.config ?? {};
    if (draining && !cfg.probe) {
      void reply.header('connection', 'close');
      throw new HttpError(503, 'server is shutting down', { 'retry-after': '5' });
    }
    // deny by default: the matched route decides (an unmatched path needs the token too)
    if (opts.token && !cfg.public) checkBearer(req, opts.token);
  });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.observeRequest(route, reply.statusCode, reply.elapsedTime / 1000);
    if (sink) {
      const note = notes.get(req) ?? {};
      writeRequestLog(sink, {
        time: new Date().toISOString(),
        reqId: String(req.id),
        method: req.method,
        route,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
        ...note,
      });
    }
  });
  app.setErrorHandler((err: FastifyError | HttpError, req, reply) => {
    const status = statusOf(err);
    if (err instanceof HttpError) void reply.headers(err.headers);
    if (status >= 500 && !(err instanceof HttpError)) process.stderr.write(`beitseg serve: ${req.id}: ${err.stack}\n`);
    const message = oneLine(err.message);
    notes.set(req, { ...notes.get(req), reason: message });
    void reply.code(status).send({ error: message });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}` });
  });

  registerPage(app);
  const browserPage = opts.webDir ? registerLocalPage(app, opts.webDir) : null;
  const probe = { public: true, probe: true };

  app.get('/livez', { config: { ...probe, doc: { summary: 'Liveness: the process answers' } } }, async () => ({
    status: 'ok',
  }));

  const readiness = (): { ready: boolean; status: string } => {
    if (draining) return { ready: false, status: 'draining' };
    const dead = models.find((m) => !m.backend.alive);
    if (dead) return { ready: false, status: `model ${dead.name} unavailable` };
    const full = models.find((m) => m.backend.depth >= m.backend.capacity);
    if (full) return { ready: false, status: models.length > 1 ? `queue of ${full.name} full` : 'queue full' };
    return { ready: true, status: 'ok' };
  };
  app.get(
    '/readyz',
    { config: { ...probe, doc: { summary: 'Readiness: model loaded, queue not full, not draining' } } },
    async (_req, reply) => {
      const r = readiness();
      if (!r.ready) void reply.code(503);
      return { status: r.status, queue: totalDepth(), capacity: opts.queue * models.length };
    },
  );
  // the original probe, kept: 503 only while draining or without a model (a full queue is still "up")
  app.get('/health', { config: { ...probe, doc: { summary: 'Health (ok, draining)' } } }, async (_req, reply) => {
    const down = draining || models.some((m) => !m.backend.alive);
    if (down) void reply.code(503);
    return {
      status: draining ? 'draining' : down ? 'model unavailable' : 'ok',
      queue: totalDepth(),
      capacity: opts.queue * models.length,
    };
  });

  app.get('/metrics', { config: { doc: { summary: 'Prometheus metrics' } } }, async (_req, reply) => {
    void reply.type(metrics.contentType);
    return metrics.text();
  });

  app.get('/openapi.json', { config: { public: true } }, async () =>
    openApiDocument(routes, { version: opts.version ?? '0.0.0', bearer: Boolean(opts.token) }),
  );

  app.get('/v1/model', { config: { doc: { summary: 'The model, its weights and the serving settings' } } }, async () =>
    modelInfo(backend, opts, policy, modeOf(backend), browserPage),
  );

  app.get('/v1/models', { config: { doc: { summary: 'The models served, each with its queue' } } }, async () => ({
    models: models.map(({ name, backend: b }) => ({
      name,
      numClasses: b.description.meta.classes.length,
      weights: b.description.weights,
      device: b.description.device,
      queue: b.depth,
      capacity: b.capacity,
      alive: b.alive,
    })),
  }));

  const named = (name: string): ModelBackend => {
    const b = byName.get(name);
    if (!b) throw new HttpError(404, `no model named '${name}' (GET /v1/models lists them)`);
    return b;
  };
  const nameParams = {
    type: 'object',
    properties: { name: { type: 'string', pattern: MODEL_NAME.source } },
    required: ['name'],
  } as const;
  app.get<{ Params: { name: string } }>(
    '/v1/models/:name',
    { schema: { params: nameParams }, config: { doc: { summary: 'One model, as /v1/model' } } },
    async (req) => {
      const b = named(req.params.name);
      return modelInfo(b, opts, policy, modeOf(b), browserPage);
    },
  );

  if (opts.cors) {
    app.options('/*', { config: { public: true, probe: true } }, async (_req, reply) => {
      void reply
        .header('access-control-allow-methods', 'GET, POST, OPTIONS')
        .header('access-control-allow-headers', 'authorization, content-type, x-request-id')
        .header('access-control-max-age', '600')
        .code(204);
    });
  }

  const segment = async (
    backend: ModelBackend,
    req: FastifyRequest<{ Querystring: SegmentQuery }>,
    reply: FastifyReply,
  ): Promise<unknown> => {
    inFlight++;
    try {
      const deadline = Date.now() + opts.timeoutS * 1000;
      const aborter = new AbortController();
      reply.raw.on('close', () => {
        if (!reply.raw.writableEnded) aborter.abort();
      });
      const q = req.query;
      const mode = q.mode ?? modeOf(backend);
      const tta = q.tta === 'true' || q.tta === '1';
      checkOptions(policy, mode, tta);
      if (backend.depth >= backend.capacity) {
        throw new HttpError(503, `queue full (${backend.capacity} requests): retry later`, { 'retry-after': '1' });
      }
      const image = await decodeUpload(await uploadBytes(req, bodyLimit), opts.maxPixels, (h) =>
        checkBudget(policy, backend.description, mode, tta, h.width, h.height),
      );
      const seg = await backend.submit({ image, mode, tta, deadline, signal: aborter.signal });
      notes.set(req, { queueMs: seg.queueMs, computeMs: seg.computeMs, pixels: image.width * image.height });
      metrics.imageDone();
      const format = q.format ?? 'json';
      if (format === 'label') return await reply.type('image/png').send(labelPng(seg));
      if (format === 'overlay')
        return await reply
          .type('image/png')
          .send(await overlayPng(image, seg, backend.description.meta, q.opacity ?? 0.5));
      return segmentJson(seg, backend.description.meta, q.labels ?? 'png');
    } finally {
      inFlight--;
      if (inFlight === 0) idleWake?.();
    }
  };

  app.post<{ Querystring: SegmentQuery }>(
    '/v1/segment',
    {
      schema: { querystring: segmentQuerySchema },
      config: {
        doc: {
          summary: 'Segment one image (raw image bytes or a multipart file)',
          requestBody: true,
          examples: ['/v1/segment', '/v1/segment?format=label', '/v1/segment?format=overlay&opacity=0.6'],
        },
      },
    },
    async (req, reply) => segment(backend, req, reply),
  );

  app.post<{ Querystring: SegmentQuery; Params: { name: string } }>(
    '/v1/models/:name/segment',
    {
      schema: { querystring: segmentQuerySchema, params: nameParams },
      config: { doc: { summary: 'Segment one image with the named model', requestBody: true } },
    },
    async (req, reply) => segment(named(req.params.name), req, reply),
  );

  app.addHook('onClose', async () => {
    await Promise.all(models.map((m) => m.backend.close()));
  });

  const drain = async (): Promise<void> => {
    draining = true;
    if (inFlight > 0)
      await new Promise<void>((resolve) => {
        idleWake = resolve;
      });
    await Promise.all(models.map((m) => m.backend.drain()));
  };
  return { app, engine: backend, metrics, drain };
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

function modelInfo(
  backend: ModelBackend,
  opts: ServeOptions,
  policy: ServePolicy,
  mode: string,
  browserPage: string | null,
): Dict {
  const d = backend.description;
  return {
    // the "run in this browser" page (serve --web), or null
    browserPage,
    classes: d.meta.classes,
    palette: d.meta.palette,
    numClasses: d.meta.classes.length,
    device: d.device,
    weights: d.weights,
    version: opts.version ?? null,
    config: d.config,
    serving: {
      mode,
      windowBatch: opts.windowBatch,
      amp: opts.amp,
      maxPixels: opts.maxPixels,
      maxBodyMb: opts.maxBodyMb,
      queue: opts.queue,
      timeoutS: opts.timeoutS,
      auth: opts.token ? 'bearer' : 'none',
      policy,
    },
  };
}
