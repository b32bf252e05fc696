/** `beitseg serve`: the HTTP segmentation service (src/serve) for one model. */
import type { Command } from 'commander';
import { DEFAULT_SERVE_OPTIONS } from '../serve/server.js';
import { defineCommand } from './commands.js';
import {
  addOptions,
  ampDType,
  INFERENCE_OPTIONS,
  parseNonNegativeInt,
  parsePositiveInt,
  parsePositiveNumber,
  requireWeights,
  sharedOption,
  type AmpChoice,
} from './options.js';

interface ServeCliOptions {
  config: string;
  weights?: string;
  randomWeights?: boolean;
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
}

export function register(program: Command): void {
  const cmd = defineCommand(program, 'serve');
  addOptions(
    cmd,
    INFERENCE_OPTIONS.filter((o) => o !== 'mode' && o !== 'windowBatch'),
  )
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
    .option('--log', 'log every request (JSON lines on stdout)');
  cmd.action(async (opts: ServeCliOptions) => {
    requireWeights(opts);
    const ampChoice = ampDType(opts.amp);
    const [{ initModel }, { buildServer }, { loadCliConfig }, { autoAmp }, { warnEmulatedBf16 }] = await Promise.all([
      import('../inference/api.js'),
      import('../serve/server.js'),
      import('./config_arg.js'),
      import('../inference/precision.js'),
      import('../tensor/runtime.js'),
    ]);
    const token = opts.token ?? (process.env.BEITSEG_TOKEN || undefined);
    const cfg = loadCliConfig(opts.config, opts.cfgOptions);
    const model = await initModel(cfg, opts.weights, {
      device: opts.device,
      verbose: true,
      precision: opts.quantize ? { quantize: opts.quantize } : undefined,
      cudaGraphs: opts.cudaGraphs,
    });
    if (!opts.weights) process.stderr.write('warning: --random-weights: the model has random weights\n');
    const amp = ampChoice === 'auto' ? autoAmp(model.device) : ampChoice;
    if (amp === 'bfloat16') warnEmulatedBf16(model.device);
    if (amp === 'float16' && model.device === 'cpu')
      throw new Error('--amp fp16 needs a CUDA device; on the CPU use bf16');
    const windowBatch = opts.windowBatch ?? (model.device.startsWith('cuda') ? 4 : 1);
    const server = await buildServer(model, {
      mode: opts.mode,
      maxPixels: opts.maxPixels,
      maxBodyMb: opts.maxBodyMb,
      queue: opts.queue,
      timeoutS: opts.timeoutS,
      token,
      windowBatch,
      amp,
      log: opts.log,
    });
    const address = await server.app.listen({ host: opts.host, port: opts.port });
    process.stderr.write(
      `beitseg serve: listening on ${address} (device ${model.device}, window batch ${windowBatch}` +
        `${token ? ', bearer token required' : ''})\n`,
    );
    const stop = (signal: string): void => {
      process.stderr.write(`beitseg serve: ${signal}: finishing the requests in flight, refusing new ones\n`);
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
  });
}
