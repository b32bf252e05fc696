/**
 * `beitseg serve`: the HTTP segmentation service (src/serve) for one model, computed in a worker
 * thread (serve/model_host.ts) so the event loop keeps answering while the model computes.
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { DEFAULT_POLICY } from '../serve/policy.js';
import { DEFAULT_SERVE_OPTIONS } from '../serve/defaults.js';
import type { NamedBackend } from '../serve/server.js';
import { CONFIG_HELP } from './config_help.js';
import { defineCommand } from './commands.js';
import {
  addOptions,
  ampDType,
  INFERENCE_OPTIONS,
  parseNonNegativeInt,
  parsePositiveInt,
  parsePositiveNumber,
  sharedOption,
  UsageError,
  type AmpChoice,
} from './options.js';

interface ServeCliOptions {
  config?: string;
  weights?: string;
  randomWeights?: boolean;
  model: ModelSpec[];
  host: string;
  port: number;
  device?: string;
  amp?: AmpChoice;
  mode?: 'slide' | 'whole';
  maxPixels: number;
  maxBodyMb: number;
  queue: number;
  timeoutS: number;
  token?: string;
  windowBatch?: number;
  log?: boolean;
  quantize?: 'int8';
  cudaGraphs?: boolean;
  cfgOptions?: string[];
  allowModes: ('slide' | 'whole')[];
  allowTta: boolean;
  maxPixelsWhole: number;
  maxWindows: number;
  bodyTimeoutS: number;
  idleTimeoutS: number;
  drainTimeoutS: number;
  cors?: string;
  web?: string;
}

function parseModes(v: string): ('slide' | 'whole')[] {
  const modes = v.split(',').map((m) => m.trim());
  if (modes.length === 0 || modes.some((m) => m !== 'slide' && m !== 'whole'))
    throw new InvalidArgumentError(`expected a comma-separated list of slide and whole, got '${v}'`);
  return [...new Set(modes)] as ('slide' | 'whole')[];
}

function packageVersion(): string {
  const file = new URL('../../../package.json', import.meta.url);
  try {
    return String((JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: unknown }).version ?? 'unknown');
  } catch {
    return 'unknown';
  }
}

interface ModelSpec {
  name: string;
  config: string;
  weights?: string;
}

/** `name=config[,weights]` (repeatable) */
function parseModelSpec(v: string, prev: ModelSpec[]): ModelSpec[] {
  const m = /^([A-Za-z0-9._-]{1,64})=([^,]+)(?:,(.+))?$/.exec(v);
  if (!m) throw new InvalidArgumentError(`expected name=config[,weights], got '${v}'`);
  if (prev.some((p) => p.name === m[1])) throw new InvalidArgumentError(`model name '${m[1]}' given twice`);
  return [...prev, { name: m[1], config: m[2], weights: m[3] }];
}

export function register(program: Command): void {
  const cmd = defineCommand(program, 'serve');
  addOptions(
    cmd,
    INFERENCE_OPTIONS.filter((o) => o !== 'config' && o !== 'mode' && o !== 'windowBatch'),
  )
    .addOption(new Option('--config <file>', `${CONFIG_HELP} (or --model)`))
    .addOption(
      sharedOption('mode', { help: "default test mode, whole or slide (default: the config's); per request: ?mode=" }),
    )
    .addOption(
      sharedOption('windowBatch', {
        help: 'slide windows per forward pass, across requests (default 4 on a GPU, 1 on the CPU)',
        default: undefined,
      }),
    )
    .option('--host <host>', 'address to bind (0.0.0.0 exposes the service to the network)', '127.0.0.1')
    .option('--port <n>', 'port (0 picks a free one)', parseNonNegativeInt, 8080)
    .option(
      '--max-pixels <n>',
      'largest image in pixels, checked before decoding',
      parsePositiveInt,
      DEFAULT_SERVE_OPTIONS.maxPixels,
    )
    .option('--max-body-mb <n>', 'largest request body in MiB', parsePositiveNumber, DEFAULT_SERVE_OPTIONS.maxBodyMb)
    .option(
      '--queue <n>',
      'most requests waiting or computing; more answer 503',
      parsePositiveInt,
      DEFAULT_SERVE_OPTIONS.queue,
    )
    .option(
      '--timeout-s <s>',
      'per-request deadline in seconds (504 when passed)',
      parsePositiveNumber,
      DEFAULT_SERVE_OPTIONS.timeoutS,
    )
    .option('--token <token>', 'require Authorization: Bearer <token> on the API and /metrics (or set BEITSEG_TOKEN)')
    .option(
      '--model <name=config,weights>',
      'serve this model at /v1/models/<name>/ (repeatable; the first is also /v1/segment); in place of --config',
      parseModelSpec,
      [],
    )
    .option('--log', 'log every request (one JSON line each on stdout)')
    .option('--allow-modes <modes>', 'test modes a request may ask for: slide,whole', parseModes, [
      ...DEFAULT_POLICY.allowModes,
    ])
    .option('--no-allow-tta', 'refuse ?tta=true (400)')
    .option(
      '--max-pixels-whole <n>',
      'most pixels of a mode=whole request (400 above)',
      parsePositiveInt,
      DEFAULT_POLICY.maxPixelsWhole,
    )
    .option(
      '--max-windows <n>',
      'most slide windows of one request (400 above)',
      parsePositiveInt,
      DEFAULT_POLICY.maxWindows,
    )
    .option(
      '--body-timeout-s <s>',
      'seconds a client has to send a whole request (408 and the connection closed after)',
      parsePositiveNumber,
      DEFAULT_SERVE_OPTIONS.bodyTimeoutS,
    )
    .option(
      '--idle-timeout-s <s>',
      'seconds an idle keep-alive connection stays open',
      parsePositiveNumber,
      DEFAULT_SERVE_OPTIONS.idleTimeoutS,
    )
    .option(
      '--drain-timeout-s <s>',
      'on SIGTERM/SIGINT, seconds to finish the requests in flight before exiting anyway',
      parsePositiveNumber,
      30,
    )
    .option('--cors <origin>', 'allow browser calls from this origin (CORS is off by default)')
    .option(
      '--web <dir>',
      'also serve the "run in this browser" page built by `npm run build:web -- --out DIR --model m.onnx` ' +
        'under /local/ (public, like /: anyone who reaches the page can download that model)',
    );
  cmd.action(async (opts: ServeCliOptions) => {
    const [{ ModelHost, weightsFileInfo }, { buildServer }, { loadCliConfig }, precision, runtime] = await Promise.all([
      import('../serve/model_host.js'),
      import('../serve/server.js'),
      import('./config_arg.js'),
      import('../inference/precision.js'),
      import('../tensor/runtime.js'),
    ]);
    const ampChoice = ampDType(opts.amp);
    // auto resolves on the device the models will run on (bf16 where the CPU computes it natively)
    const amp = ampChoice === 'auto' ? precision.autoAmp(runtime.resolveDevice(opts.device)) : ampChoice;
    if (amp === 'bfloat16') runtime.warnEmulatedBf16(runtime.resolveDevice(opts.device));
    const token = opts.token ?? (process.env.BEITSEG_TOKEN || undefined);
    if (opts.config && opts.model.length > 0)
      throw new UsageError('give --config (one model) or --model (several), not both');
    if (!opts.config && opts.model.length === 0)
      throw new UsageError('--config <file> (or --model name=config,weights) is required');
    const specs: ModelSpec[] = opts.config
      ? [{ name: 'default', config: opts.config, weights: opts.weights }]
      : opts.model;
    const unweighted = specs.filter((m) => !m.weights).map((m) => m.name);
    if (unweighted.length > 0 && !opts.randomWeights) {
      throw new UsageError(
        `no weights given for model(s) ${unweighted.join(', ')}: pass --weights FILE (or name=config,weights), ` +
          'or --random-weights to run on random weights',
      );
    }
    const cuda = (opts.device ?? '').startsWith('cuda');
    if (amp === 'float16' && opts.device === 'cpu')
      throw new Error('--amp fp16 needs a CUDA device; on the CPU use bf16');
    const windowBatch = opts.windowBatch ?? (cuda ? 4 : 1);
    const models: NamedBackend[] = [];
    const closeAll = (): Promise<unknown> => Promise.all(models.map((m) => m.backend.close()));
    try {
      for (const spec of specs) {
        // each model in its own worker thread, with its own queue
        const host = await ModelHost.start({
          config: loadCliConfig(spec.config, opts.cfgOptions),
          weights: spec.weights,
          weightsFile: await weightsFileInfo(spec.weights),
          device: opts.device,
          quantize: opts.quantize,
          cudaGraphs: opts.cudaGraphs,
          capacity: opts.queue,
          windowBatch,
          amp,
        });
        models.push({ name: spec.name, backend: host });
        if (!spec.weights)
          process.stderr.write(`warning: model ${spec.name}: no weights given: the model has random weights\n`);
      }
    } catch (e) {
      await closeAll();
      throw e;
    }
    const device = models[0].backend.description.device;
    if (amp === 'float16' && device === 'cpu') {
      await closeAll();
      throw new Error('--amp fp16 needs a CUDA device; on the CPU use bf16');
    }
    const server = await buildServer(models, {
      mode: opts.mode,
      maxPixels: opts.maxPixels,
      maxBodyMb: opts.maxBodyMb,
      queue: opts.queue,
      timeoutS: opts.timeoutS,
      bodyTimeoutS: opts.bodyTimeoutS,
      idleTimeoutS: opts.idleTimeoutS,
      token,
      windowBatch,
      amp,
      log: opts.log,
      cors: opts.cors,
      allowModes: opts.allowModes,
      allowTta: opts.allowTta,
      maxPixelsWhole: opts.maxPixelsWhole,
      maxWindows: opts.maxWindows,
      version: packageVersion(),
      webDir: opts.web,
    });
    const stop = (signal: string): void => {
      process.stderr.write(`beitseg serve: ${signal}: finishing the requests in flight, refusing new ones\n`);
      const giveUp = setTimeout(() => {
        const left = server.engine.depth;
        process.stderr.write(
          `beitseg serve: drain timeout (${opts.drainTimeoutS} s): ${left} requests unfinished, exiting\n`,
        );
        // not process.exit: tearing down the worker's environment in the middle of a forward pass
        // aborts inside the addon; the stragglers are abandoned anyway, so the process ends at once
        process.kill(process.pid, 'SIGKILL');
      }, opts.drainTimeoutS * 1000);
      giveUp.unref();
      server
        .drain()
        .then(() => server.app.close())
        .then(
          () => {
            process.stderr.write('beitseg serve: stopped\n');
            process.exit(0);
          },
          (e: unknown) => {
            process.stderr.write(`beitseg serve: error while stopping: ${(e as Error).message}\n`);
            process.exit(1);
          },
        );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    // Reloading weights in place is not supported: SIGHUP (a closed terminal, a reload by habit)
    // must not kill the server, so it is logged and ignored (restart the process to change weights).
    process.on('SIGHUP', () => process.stderr.write('beitseg serve: SIGHUP ignored (restart to load new weights)\n'));
    // the handlers are in place before the address is announced (a supervisor may signal at once)
    const address = await server.app.listen({ host: opts.host, port: opts.port });
    process.stderr.write(
      `beitseg serve: listening on ${address} (device ${device}, window batch ${windowBatch}` +
        `${models.length > 1 ? `, models ${models.map((m) => m.name).join(', ')}` : ''}` +
        `${token ? ', bearer token required' : ''})\n`,
    );
  });
}
